//! The kernel console: text on COM1, behind one lock, until user space
//! takes the log over (LOG_TAKE, ABI.md §6.7); from then on the lines go
//! to the log ring (`kernel_core::log`) the console server reads, and only
//! a panic writes to the port.
//!
//! The kernel runs with interrupts disabled, so the lock is only contended
//! by a panic on the same CPU, which takes the port over instead of waiting.

use core::fmt::{self, Write};

use abi::kcall::LOG_RING_BYTES;
use kernel_core::log::{KernelLog, Peeked, Source};

use crate::arch::x86_64::serial::SerialPort;

/// The port and the log ring that replaces it once taken.
struct Console {
    port: SerialPort,
    log: KernelLog<LOG_RING_BYTES>,
}

static CONSOLE: spin::Mutex<Console> = spin::Mutex::new(Console {
    port: SerialPort::COM1,
    log: KernelLog::new(),
});

/// Prepares COM1 (115200 8N1). Safe to call more than once.
pub fn init() {
    CONSOLE.lock().port.init();
}

/// The kernel's own text, as one source of the log.
struct KernelText<'a>(&'a mut Console);

impl Write for KernelText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let Console { port, log } = &mut *self.0;
        log.write(Source::Kernel, s.as_bytes(), |bytes| {
            port.write_bytes(bytes)
        });
        Ok(())
    }
}

#[doc(hidden)]
pub fn write_fmt(args: fmt::Arguments<'_>) {
    // A console write that fails has nowhere to report to; drop it.
    let _ = KernelText(&mut CONSOLE.lock()).write_fmt(args);
}

/// User output (DEBUG_WRITE), already marked line by line.
pub fn write_user(bytes: &[u8]) {
    let Console { port, log } = &mut *CONSOLE.lock();
    log.write(Source::User, bytes, |bytes| port.write_bytes(bytes));
}

/// LOG_TAKE: lines go to the ring from now on.
pub fn log_take() {
    CONSOLE.lock().log.take();
}

/// The kernel-log object went: the ring's lines go to the port, which is
/// the kernel's again.
pub fn log_give_back() {
    let Console { port, log } = &mut *CONSOLE.lock();
    log.give_back(|bytes| port.write_bytes(bytes));
}

/// LOG_READ's look at the ring's head.
pub fn log_peek(out: &mut [u8]) -> Peeked {
    CONSOLE.lock().log.peek(out)
}

/// LOG_READ's lines reached the reader.
pub fn log_consume(bytes: usize) {
    CONSOLE.lock().log.consume(bytes);
}

/// Whether lines entered the ring since the last call.
pub fn log_arrived() -> bool {
    CONSOLE.lock().log.take_arrived()
}

/// Writes from a panic: never waits for a lock a dead context may hold.
/// When the lock is free and the log was taken, the lines no one read yet
/// go out first.
pub fn write_fmt_panicking(args: fmt::Arguments<'_>) {
    if let Some(mut console) = CONSOLE.try_lock() {
        let Console { port, log } = &mut *console;
        log.give_back(|bytes| port.write_bytes(bytes));
    }
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
