//! The hinge kernel image. This binary is the thin, machine-specific layer
//! around `kernel_core`: the boot sequence (`boot`), the console, the panic
//! handler, and `arch/x86_64` (loader entries, descriptor tables, traps,
//! paging, physical memory, the local APIC, and the `Machine` the portable
//! core runs on).
//!
//! It must never make a policy decision of its own that the portable core
//! could make and test on the host. `unsafe` code is denied here and allowed
//! only under `arch/`, where every block is small and carries a `// SAFETY:`
//! line. On the host it builds as an empty program so that workspace-wide
//! tests and lints cover the crate.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod panic;

#[cfg(not(target_os = "none"))]
fn main() {}
