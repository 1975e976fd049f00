//! The interrupt descriptor table: all 256 vectors point at their trap stub.

use core::cell::UnsafeCell;

use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use super::{gdt, trap};

/// A 64-bit interrupt gate (Intel SDM vol. 3, figure 6-8).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    /// Bits 0-2: the IST slot (0 = no stack switch unless the privilege changes).
    ist: u8,
    /// Present, DPL, type 0xE (interrupt gate: IF is cleared on entry, which is
    /// what keeps the kernel non-preemptible).
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn interrupt_gate(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: gdt::KERNEL_CODE.0,
            ist,
            attributes: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; 256]>);

// SAFETY: written once by `init` on the boot CPU before interrupts are
// enabled and before any other CPU starts; afterwards only CPUs read it.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([Gate::MISSING; 256]));

/// Fills the IDT and loads it on this CPU.
pub fn init() {
    // SAFETY: see `Idt`'s Sync: single writer, before first use.
    let gates = unsafe { &mut *IDT.0.get() };
    for (vector, gate) in gates.iter_mut().enumerate() {
        let ist = match vector {
            8 => gdt::DOUBLE_FAULT_IST,
            2 => gdt::NMI_IST,
            18 => gdt::MACHINE_CHECK_IST,
            _ => 0,
        };
        *gate = Gate::interrupt_gate(trap::stub_address(vector as u8), ist);
    }
    load();
}

/// Loads the (shared, already filled) IDT on this CPU: an application
/// processor's only step.
pub fn load() {
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: VirtAddr::from_ptr(IDT.0.get()),
    };
    // SAFETY: the table is a static holding 256 valid gates to our stubs.
    unsafe { lidt(&pointer) };
}
