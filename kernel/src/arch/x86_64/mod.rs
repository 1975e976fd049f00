//! The x86_64 layer: everything that touches registers, descriptor tables,
//! page tables, ports, physical memory or the local APIC, and the only
//! place in the kernel with `unsafe` code. Each file is one mechanism.
//!
//! Calls go down from here into `kernel_core` and never back up into the
//! binary, with two exceptions that are leaves: the loader entries in
//! `boot/` call `crate::boot::kernel_main` once, and every file may log
//! through `crate::console`. The trap path is `trap` -> `system::handle` ->
//! `kernel_core::kernel::Kernel::trap` and back.
pub mod acpi;
pub mod address_space;
pub mod boot;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod kernel_lock;
pub mod kernel_stack;
pub mod lapic;
pub mod machine;
pub mod memory;
pub mod paging;
pub mod pic;
pub mod selftest;
pub mod serial;
pub mod smp;
pub mod syscall;
pub mod system;
pub mod trap;
