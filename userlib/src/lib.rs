//! The hinge user runtime: what every user program links.
//!
//! It owns the process start-up (`_start`, [`Startup`], [`entry!`]), the
//! heap (a `talc` global allocator that grows with MAP_ANONYMOUS), the panic
//! handler, [`print!`]/[`println!`] to stdout or through DEBUG_WRITE, standard streams ([`stdio`]), sockets ([`socket`]), and the typed layer
//! over the four trap operations: [`ipc`] (the operations with checked
//! buffers), [`raw`] (the one raw trap layer, for test suites), [`kernel`] (one function per kernel function), owning
//! descriptors ([`OwnedDescriptor`]), message buffers ([`Message`]), client
//! calls ([`call`]), the server loop ([`serve`]), typed server interfaces
//! ([`interface!`]: a protocol declared once gives a client stub and a
//! server trait), [`Event`]s and threads ([`spawn_thread`]), and shared memory objects ([`smo`]: Sartoris' `share_mem` family and its typed form).
//!
//! It must never restate the ABI: every number, layout and register
//! encoding comes from `abi` (re-exported as [`abi`]). It must never contain
//! inline assembly outside `arch/x86_64.rs` (the trap itself included), never hold `unsafe` outside small functions that
//! say why they are sound, and never leave a program blocked on an error it
//! could report: failures come back as `abi::Error` or [`CallError`].
//!
//! Everything that only makes sense in the guest (the entry point, the
//! panic handler, the global allocator) is compiled for `target_os = "none"`
//! alone; the rest builds on the host, where the trap answers
//! `INVALID_FUNCTION` (and, in unit tests, a scripted fake kernel), so the
//! message logic is tested with `cargo test -p userlib`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

extern crate alloc;

pub use abi;

mod arch;
pub mod capability;
pub mod client;
pub mod descriptor;
pub mod device;
pub mod event;
pub mod file;
#[cfg(target_os = "none")]
mod heap;
pub mod interface;
pub mod ipc;
pub mod kernel;
pub mod loader;
pub mod message;
pub mod pager;
#[cfg(target_os = "none")]
mod panic;
pub mod pipe;
pub mod portal;
pub mod print;
pub mod probe;
pub mod procman;
pub mod raw;
pub mod runtime;
pub mod server;
pub mod shm;
pub mod signal;
pub mod smo;
pub mod socket;
pub mod stdio;
pub mod stream;
pub mod thread;
pub mod upcall;

pub use client::{CallError, call};
pub use descriptor::OwnedDescriptor;
pub use event::Event;
pub use ipc::{Received, Reply};
pub use message::{Message, MessageBuffer, MessageError};
pub use runtime::{Startup, program_name};
pub use server::{Request, Response, Server, serve};
pub use thread::spawn_thread;

/// Names the program's main function: `userlib::entry!(main);` with
/// `fn main(startup: Startup) -> i32`. The value it returns is the
/// process's exit code (PROCESS_EXIT).
///
/// On the host the macro only type-checks `main`, so a program crate also
/// builds (as an empty host binary) in the workspace.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The program's entry, called by userlib's start-up code.
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        fn __userlib_main(startup: $crate::Startup) -> i32 {
            $crate::runtime::set_program_name(&env!("CARGO_BIN_NAME"));
            let main: fn($crate::Startup) -> i32 = $main;
            main(startup)
        }

        #[cfg(not(target_os = "none"))]
        const _: fn($crate::Startup) -> i32 = $main;
    };
}

/// Formats its arguments to standard output when the process has one
/// ([`stdio`]), else to the kernel console (DEBUG_WRITE), in writes of at
/// most 256 bytes.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::print::print_arguments(format_args!($($arg)*))
    };
}

/// [`print!`] followed by a newline; a line of up to 512 bytes is one
/// DEBUG_WRITE, so lines from different threads never interleave.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print::print_arguments(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::print_arguments(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Formats its arguments to standard error when the process has one, else
/// to the kernel console.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::print::eprint_arguments(format_args!($($arg)*))
    };
}

/// [`eprint!`] followed by a newline.
#[macro_export]
macro_rules! eprintln {
    () => {
        $crate::print::eprint_arguments(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::eprint_arguments(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod fake_kernel;
