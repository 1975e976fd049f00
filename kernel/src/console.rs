//! The kernel console: text on COM1, behind one lock.
//!
//! The kernel runs with interrupts disabled, so the lock is only contended
//! by a panic on the same CPU, which takes the port over instead of waiting.

use core::fmt::{self, Write};

use crate::arch::x86_64::serial::SerialPort;

static CONSOLE: spin::Mutex<SerialPort> = spin::Mutex::new(SerialPort::COM1);

/// Prepares COM1 (115200 8N1). Safe to call more than once.
pub fn init() {
    CONSOLE.lock().init();
}

#[doc(hidden)]
pub fn write_fmt(args: fmt::Arguments<'_>) {
    // A console write that fails has nowhere to report to; drop it.
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Writes from a panic: never waits for a lock a dead context may hold.
pub fn write_fmt_panicking(args: fmt::Arguments<'_>) {
    let mut port = SerialPort::COM1;
    let _ = port.write_fmt(args);
}

/// Prints to the kernel console.
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the kernel console, prefixed with `hinge: `.
macro_rules! kprintln {
    () => { $crate::console::write_fmt(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!("hinge: {}\n", format_args!($($arg)*)))
    };
}
