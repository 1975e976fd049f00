//! Host tests of the kernel core: a fake [`Machine`] (address spaces as maps of
//! 4 KiB pages), a harness that drives [`Kernel::trap`] thread by thread,
//! one test per rule of DESIGN.md §4-5 and the ABI, a leak check, and a
//! property test that throws random traps at several threads of several
//! processes and checks the kernel's invariants after each one.
//!
//! Expected values are written out from the ABI, never computed by the code
//! under test. A test that found a bug in the core carries
//! `#[ignore = "BUG: ..."]` until the core is fixed.

mod abi_rules;
mod allocation_failure;
mod buffers;
mod cpus;
mod devices;
mod fake_machine;
mod fast_path;
mod functions;
mod harness;
mod interrupt;
mod ipc;
mod kernel_functions;
mod kernel_log;
mod leaks;
mod loading;
mod memory;
mod pager;
mod process_manager;
mod random;
mod refusal;
mod smo;
mod suspend;
mod transfer;
