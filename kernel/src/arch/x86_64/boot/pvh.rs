//! PVH boot: turns Xen's `hvm_start_info` (version 1) into `BootInfo`.
//!
//! QEMU's memory map does not mark the kernel image, the initrd (our boot
//! archive) or the start-info structures as used; the kernel image and the
//! archive are reserved through `BootInfo` and everything else we need is
//! copied out here, before the frame allocator exists.

use kernel_core::boot_info::{
    BootInfo, BootPath, CommandLine, MemoryKind, MemoryMap, MemoryRegion,
};
use kernel_core::phys::PhysRange;
use zerocopy::{FromBytes, Immutable, KnownLayout};

use super::pvh_entry::PVH_DIRECT_MAP_OFFSET;

/// `hvm_start_info.magic` ("xEn3" with the 0x80 bit of 'E' set).
const START_INFO_MAGIC: u32 = 0x336e_c578;

/// The kernel's load address, fixed by the linker script (LMA).
const KERNEL_PHYSICAL_BASE: u64 = 0x20_0000;

#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct ModuleEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct MemoryMapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// The bytes at physical `address`, seen through the stub's direct map.
///
/// # Safety
/// `[address, address + len)` must be RAM below 4 GiB (the stub's direct map)
/// that nothing writes while the slice lives.
unsafe fn physical_bytes(address: u64, len: usize) -> &'static [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts((PVH_DIRECT_MAP_OFFSET + address) as *const u8, len) }
}

fn read<T: FromBytes + KnownLayout + Immutable>(address: u64) -> Option<T> {
    if address == 0 || address >= (1 << 32) - core::mem::size_of::<T>() as u64 {
        return None;
    }
    // SAFETY: the loader's structures lie in low RAM, which the stub maps; the
    // range was checked to stay below 4 GiB.
    let bytes = unsafe { physical_bytes(address, core::mem::size_of::<T>()) };
    T::read_from_bytes(bytes).ok()
}

/// The Rust entry of the PVH path, called by the 32-bit stub in long mode.
pub extern "C" fn pvh_main(start_info_address: u64) -> ! {
    crate::console::init();
    let Some(start) = read::<StartInfo>(start_info_address) else {
        crate::arch::x86_64::cpu::fatal(format_args!(
            "PVH start info at {start_info_address:#x} is unreadable"
        ));
    };
    if start.magic != START_INFO_MAGIC || start.version < 1 {
        crate::arch::x86_64::cpu::fatal(format_args!(
            "PVH start info has magic {:#x} version {} (want {START_INFO_MAGIC:#x}, version >= 1)",
            start.magic, start.version
        ));
    }

    let mut memory_map = MemoryMap::new();
    for index in 0..u64::from(start.memmap_entries) {
        let address = start.memmap_paddr + index * core::mem::size_of::<MemoryMapEntry>() as u64;
        if let Some(entry) = read::<MemoryMapEntry>(address) {
            memory_map.push(MemoryRegion {
                range: PhysRange::from_start_len(entry.addr, entry.size),
                kind: MemoryKind::from_e820(entry.kind),
            });
        }
    }

    let boot_archive = (start.nr_modules > 0)
        .then(|| read::<ModuleEntry>(start.modlist_paddr))
        .flatten()
        .map(|module| PhysRange::from_start_len(module.paddr, module.size));

    let command_line = match start.cmdline_paddr {
        0 => CommandLine::default(),
        address if address < (1 << 32) - 256 => {
            // SAFETY: QEMU places the command line in low RAM; at most the
            // capacity is read and `CommandLine::new` stops at the NUL.
            CommandLine::new(unsafe {
                physical_bytes(address, kernel_core::boot_info::MAX_COMMAND_LINE)
            })
        }
        _ => CommandLine::default(),
    };

    crate::arch::x86_64::cpu::configure_stop(&command_line);

    let (virtual_start, virtual_end) = super::kernel_virtual_range();
    let info = BootInfo {
        path: BootPath::Pvh,
        memory_map,
        direct_map_offset: PVH_DIRECT_MAP_OFFSET,
        kernel_image: PhysRange::from_start_len(KERNEL_PHYSICAL_BASE, virtual_end - virtual_start),
        boot_archive,
        rsdp: (start.rsdp_paddr != 0).then_some(start.rsdp_paddr),
        command_line,
    };
    crate::boot::kernel_main(&info)
}
