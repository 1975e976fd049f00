//! The kernel's own page tables, built once at boot and shared (upper half)
//! by every address space.
//!
//! Layout of the upper half:
//! - the direct map: all physical memory at `direct_map_offset`, 2 MiB pages,
//!   no-execute; pages that hold no RAM (MMIO: the local and I/O APICs) are
//!   uncached;
//! - the kernel image at 0xffffffff80000000 with 4 KiB pages: text read-only
//!   executable, rodata read-only, data and bss writable no-execute.
//!
//! Every upper-half PML4 slot gets its PDPT now, so later kernel mappings
//! appear in every address space that copied these slots.

use kernel_core::boot_info::BootInfo;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size2MiB,
    Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
const TWO_MIB: u64 = 2 * 1024 * 1024;
const FOUR_GIB: u64 = 4 * 1024 * 1024 * 1024;

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

/// Why the kernel page tables could not be built.
#[derive(Debug)]
pub enum PagingError {
    /// The frame allocator ran dry.
    OutOfFrames,
    /// A page was already mapped (a bug in the layout above).
    Overlap(u64),
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PagingError::OutOfFrames => write!(f, "out of physical frames"),
            PagingError::Overlap(address) => write!(f, "page {address:#x} mapped twice"),
        }
    }
}

fn section(start: &u8, end: &u8) -> (u64, u64) {
    (start as *const u8 as u64, end as *const u8 as u64)
}

/// Builds the kernel's page tables and returns the PML4 frame.
pub fn build_kernel_tables(
    info: &BootInfo,
    frames: &mut impl FrameAllocator<Size4KiB>,
) -> Result<PhysFrame, PagingError> {
    let offset = info.direct_map_offset;
    let pml4_frame = frames.allocate_frame().ok_or(PagingError::OutOfFrames)?;
    let pml4_pointer = (offset + pml4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: the frame was just allocated for us alone and the current
    // (bootloader's) tables map it at the same direct-map offset.
    let pml4 = unsafe { &mut *pml4_pointer };
    pml4.zero();
    // SAFETY: all physical memory is mapped at `offset` by the current tables,
    // and will be by the new ones (built below) for as long as they are used.
    let mut mapper = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(offset)) };

    // Everything below 4 GiB (RAM, ACPI, the APICs) and all RAM above it;
    // not the huge reserved windows firmware lists up high (QEMU: 1 TiB).
    let top = info
        .memory_map
        .regions()
        .iter()
        .filter(|r| r.kind != kernel_core::boot_info::MemoryKind::Reserved)
        .map(|r| r.range.end)
        .max()
        .unwrap_or(0)
        .max(FOUR_GIB)
        .next_multiple_of(TWO_MIB);
    for physical in (0..top).step_by(TWO_MIB as usize) {
        let mut flags = PageTableFlags::PRESENT
            | PageTableFlags::WRITABLE
            | PageTableFlags::NO_EXECUTE
            | PageTableFlags::GLOBAL;
        let range = kernel_core::phys::PhysRange {
            start: physical,
            end: physical + TWO_MIB,
        };
        if !info.memory_map.holds_ram(range) {
            flags |= PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH;
        }
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(offset + physical));
        let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(physical));
        // SAFETY: the direct map aliases physical memory by design; the new
        // tables are not active yet, so nothing is unmapped under anyone.
        unsafe { mapper.map_to(page, frame, flags, frames) }
            .map_err(|_| PagingError::Overlap(offset + physical))?
            .ignore();
    }

    // SAFETY: only the addresses of linker-defined symbols are taken.
    let sections = unsafe {
        [
            (section(&__text_start, &__text_end), PageTableFlags::empty()),
            (
                section(&__rodata_start, &__rodata_end),
                PageTableFlags::NO_EXECUTE,
            ),
            (
                section(&__data_start, &__data_end),
                PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
            ),
        ]
    };
    for ((start, end), extra) in sections {
        let flags = PageTableFlags::PRESENT | PageTableFlags::GLOBAL | extra;
        let mut virtual_address = start & !(abi::PAGE_BYTES - 1);
        while virtual_address < end {
            let physical = info.kernel_image.start + (virtual_address - KERNEL_VMA);
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virtual_address));
            let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(physical));
            // SAFETY: maps the kernel image where it is linked, with the
            // permissions its sections need; not active yet.
            unsafe { mapper.map_to(page, frame, flags, frames) }
                .map_err(|_| PagingError::Overlap(virtual_address))?
                .ignore();
            virtual_address += abi::PAGE_BYTES;
        }
    }

    let pml4 = mapper.level_4_table_mut();
    for slot in 256..512 {
        if pml4[slot].is_unused() {
            let pdpt = frames.allocate_frame().ok_or(PagingError::OutOfFrames)?;
            let pointer = (offset + pdpt.start_address().as_u64()) as *mut PageTable;
            // SAFETY: a frame fresh from the allocator, reached through the direct map.
            unsafe { (*pointer).zero() };
            pml4[slot].set_frame(pdpt, PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
        }
    }
    Ok(pml4_frame)
}

/// CR3 as it is (the PML4's address: the kernel sets no PCID or flag
/// bits), read without building a `PhysFrame`: the switch path compares it
/// on every trap.
#[inline]
pub fn current_root() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe {
        core::arch::asm!("mov {}, cr3", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Switches this CPU to the kernel tables (a no-op when already there).
///
/// # Safety
/// `pml4` must come from [`build_kernel_tables`] for this boot: it maps the
/// kernel image, the current stack (in the image or the direct map) and the
/// direct map exactly as the tables being replaced did. The paging features
/// those tables rely on (NX, WP, global pages) must already be on:
/// [`super::cpu::enable_paging_features`], once at boot.
pub unsafe fn activate(pml4: PhysFrame) {
    use x86_64::registers::control::{Cr3, Cr3Flags};
    if current_root() != pml4.start_address().as_u64() {
        // SAFETY: guaranteed by the caller; every address in use stays valid.
        unsafe { Cr3::write(pml4, Cr3Flags::empty()) };
    }
}
