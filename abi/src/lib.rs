//! The ABI of the hinge microkernel: every type, number and layout that
//! crosses the trap between user space and the kernel lives here and only
//! here. The kernel, procman, servers, `userlib`, the conformance suite and
//! the host tools all import it; none of them restates a number.
//!
//! `ABI.md` beside this crate is the normative specification; the items here
//! are its executable form.
//!
//! This crate must never depend on the kernel or on user-space runtime code,
//! and it must build with `no_std` on the host and on `x86_64-unknown-none`.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod debug_exit;
pub mod descriptor;
pub mod error;
pub mod file;
pub mod function;
pub mod kcall;
pub mod message;
pub mod namespace;
pub mod portal;
pub mod process;
pub mod procman;
pub mod pty;
pub mod signal;
pub mod stream;
pub mod trap;
pub mod upcall;

pub use descriptor::{Descriptor, ObjectKind, Rights};
pub use error::Error;
pub use function::{Function, FunctionRange, KernelFunction};
pub use message::{DescriptorSlot, MessageLayout, MessageSizes, TransferMode};
pub use process::{PAGE_BYTES, PAGE_SIZE};
pub use trap::TrapArgs;
