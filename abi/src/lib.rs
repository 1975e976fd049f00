//! The ABI of the hinge microkernel: every type, number and layout that
//! crosses the trap between user space and the kernel lives here and only
//! here. The kernel, procman, servers, `userlib`, the conformance suite and
//! the host tools all import it; none of them restates a number.
//!
//! This crate must never depend on the kernel or on user-space runtime code,
//! and it must build with `no_std` on the host and on `x86_64-unknown-none`.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod debug_exit;
