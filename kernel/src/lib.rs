//! The portable core of the hinge kernel: everything the kernel decides that
//! does not depend on the CPU. It builds for the bare-metal target (where the
//! `kernel` binary's arch layer drives it) and for the host, where `cargo
//! test` exercises every rule, property tests included.
//!
//! This crate must never touch hardware, use inline assembly, or contain
//! `unsafe` code: that lives in the binary's `arch` layer, which converts raw
//! machine state into the typed values these modules take.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod arena;
pub mod boot_info;
pub mod descriptor_table;
pub mod frame_allocator;
pub mod ipc;
#[cfg(test)]
mod ipc_tests;
pub mod kcall;
pub mod lifecycle;
pub mod machine;
pub mod memory_map;
pub mod object;
pub mod phys;
pub mod placement;
pub mod process;
pub mod program;
pub mod rsdp;
pub mod scheduler;
pub mod state;
pub mod thread;
