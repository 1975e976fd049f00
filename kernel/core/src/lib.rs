//! `kernel-core`: the portable core of the hinge kernel, everything the
//! kernel decides that does not depend on the CPU: the object model,
//! descriptor tables, the IPC state machine and transfers, the kernel
//! functions (one file per object kind under `kcall/`), scheduling policy,
//! process and thread lifecycle, frame bookkeeping, memory objects and
//! copy-on-write (`memory_object`), shared memory objects (`smo`), placement of mappings and
//! boot-information parsing. It builds for the bare-metal target, where
//! the `kernel` binary's arch layer drives it through [`kernel::Kernel`] and
//! implements [`machine::Machine`] for it, and for the host, where `cargo
//! test` exercises every rule against a fake machine, property tests
//! included.
//!
//! This crate must never touch hardware, use inline assembly, or contain
//! `unsafe` code (forbidden below): that lives in the binary's
//! `arch/x86_64`, which converts raw machine state into the typed values
//! these modules take.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod arena;
pub mod boot_info;
pub mod console;
pub mod descriptor_table;
pub mod fastpath;
pub mod frame_allocator;
pub mod interrupt;
pub mod ipc;
pub mod kcall;
pub mod kernel;
pub mod lifecycle;
pub mod log;
pub mod machine;
pub mod memory_map;
pub mod memory_object;
pub mod object;
pub mod page_tables;
pub mod pager;
pub mod phys;
pub mod placement;
pub mod process;
pub mod refusal;
pub mod rsdp;
pub mod scheduler;
pub mod smo;
pub mod suspend;
#[cfg(test)]
mod tests;
pub mod thread;
