//! The hinge kernel image. This binary is the thin, machine-specific layer:
//! the boot entry points, the x86_64 arch code (descriptor tables, traps,
//! paging, the local APIC) and the glue that hands typed values to the
//! portable core in the `kernel` library.
//!
//! It must never make a policy decision of its own that the portable core
//! could make and test on the host, and every `unsafe` block in it is small
//! and carries a `// SAFETY:` line. On the host it builds as an empty program
//! so that workspace-wide tests and lints cover the crate.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
mod acpi_tables;
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod memory;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
mod system;

#[cfg(not(target_os = "none"))]
fn main() {}
