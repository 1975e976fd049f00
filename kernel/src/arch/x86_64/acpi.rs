//! What ACPI tells us about the machine, through the `acpi` crate: the MADT's
//! processors and I/O APICs. Tables are read through the direct map.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use super::memory::direct_map;

/// Maps ACPI tables by pointing into the direct map (which covers them).
#[derive(Clone, Copy, Debug)]
struct DirectMapHandler;

impl AcpiHandler for DirectMapHandler {
    unsafe fn map_physical_region<T>(
        &self,
        physical: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virtual_address = direct_map(physical as u64) as *mut T;
        // The direct map never places anything at address 0.
        let pointer = NonNull::new(virtual_address).unwrap_or(NonNull::dangling());
        // SAFETY: the direct map covers all physical memory, including the
        // firmware's ACPI regions; the mapping is never torn down.
        unsafe { PhysicalMapping::new(physical, pointer, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// A processor the MADT lists.
#[derive(Debug, Clone, Copy)]
pub struct Processor {
    /// Its local APIC ID.
    pub apic_id: u32,
    /// Whether it is enabled (or can be brought online).
    pub usable: bool,
}

/// An I/O APIC the MADT lists.
#[derive(Debug, Clone, Copy)]
pub struct IoApic {
    /// Its ID.
    pub id: u8,
    /// The physical address of its registers.
    pub address: u32,
    /// The first global system interrupt it serves.
    pub gsi_base: u32,
}

/// An ISA interrupt the MADT says is wired differently from the default
/// (its own GSI, edge-triggered, active high).
#[derive(Debug, Clone, Copy)]
pub struct IsaOverride {
    /// The ISA line.
    pub line: u8,
    /// The global system interrupt it arrives on.
    pub gsi: u32,
    /// MPS INTI flags: polarity in bits 0-1, trigger mode in bits 2-3.
    pub flags: u16,
}

/// The interrupt topology from the MADT.
#[derive(Debug, Default)]
pub struct Platform {
    /// The physical address of the local APICs' registers.
    pub local_apic_address: u64,
    /// Every processor listed.
    pub processors: Vec<Processor>,
    /// Every I/O APIC listed.
    pub io_apics: Vec<IoApic>,
    /// ISA interrupt source overrides.
    pub isa_overrides: Vec<IsaOverride>,
}

/// Why ACPI discovery failed.
#[derive(Debug)]
pub enum DiscoveryError {
    /// The boot path gave no RSDP and none was found in low memory.
    NoRsdp,
    /// The `acpi` crate rejected the tables.
    Tables(acpi::AcpiError),
}

impl core::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DiscoveryError::NoRsdp => write!(f, "no RSDP from the boot path or in low memory"),
            DiscoveryError::Tables(error) => write!(f, "tables rejected: {error:?}"),
        }
    }
}

/// Finds the RSDP in the BIOS areas when the boot path gave none.
fn scan_for_rsdp() -> Option<u64> {
    let bios_area = 0xe_0000u64;
    // SAFETY: the direct map covers low memory; the BIOS area is read-only ROM
    // or RAM that nothing writes.
    let area = unsafe { core::slice::from_raw_parts(direct_map(bios_area) as *const u8, 0x2_0000) };
    kernel_core::rsdp::find(area).map(|offset| bios_area + offset as u64)
}

/// The RSDP's physical address: the boot path's, or found in the BIOS area.
pub fn find_rsdp(from_boot: Option<u64>) -> Option<u64> {
    from_boot.or_else(scan_for_rsdp)
}

/// Reads the MADT, starting from `rsdp` (or a scan of low memory).
pub fn discover(rsdp: Option<u64>) -> Result<Platform, DiscoveryError> {
    let rsdp = find_rsdp(rsdp).ok_or(DiscoveryError::NoRsdp)?;
    // SAFETY: `rsdp` came from the boot path or from a checksummed signature.
    let tables = unsafe { AcpiTables::from_rsdp(DirectMapHandler, rsdp as usize) }
        .map_err(DiscoveryError::Tables)?;
    let madt = tables
        .find_table::<Madt>()
        .map_err(DiscoveryError::Tables)?;
    let madt = madt.get();
    let mut platform = Platform {
        local_apic_address: u64::from(madt.local_apic_address),
        ..Platform::default()
    };
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(apic) => {
                let flags = apic.flags;
                platform.processors.push(Processor {
                    apic_id: u32::from(apic.apic_id),
                    usable: flags & 0b11 != 0, // enabled or online-capable
                })
            }
            MadtEntry::LocalX2Apic(apic) => {
                let flags = apic.flags;
                platform.processors.push(Processor {
                    apic_id: apic.x2apic_id,
                    usable: flags & 0b11 != 0,
                })
            }
            MadtEntry::IoApic(io) => platform.io_apics.push(IoApic {
                id: io.io_apic_id,
                address: io.io_apic_address,
                gsi_base: io.global_system_interrupt_base,
            }),
            MadtEntry::LocalApicAddressOverride(o) => {
                platform.local_apic_address = o.local_apic_address
            }
            MadtEntry::InterruptSourceOverride(o) if o.bus == 0 => {
                platform.isa_overrides.push(IsaOverride {
                    line: o.irq,
                    gsi: o.global_system_interrupt,
                    flags: o.flags,
                })
            }
            _ => {}
        }
    }
    Ok(platform)
}
