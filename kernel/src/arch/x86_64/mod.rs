//! The x86_64 layer: everything that touches registers, descriptor tables,
//! page tables, ports or the local APIC. Each file is one mechanism.
pub mod address_space;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod kernel_stack;
pub mod lapic;
pub mod paging;
pub mod pic;
pub mod pvh;
pub mod serial;
pub mod syscall;
pub mod trap;
