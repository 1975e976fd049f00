//! Physical memory, the kernel page tables and the kernel heap, set up from
//! `BootInfo` in that order.
//!
//! The frame allocator's logic is the portable `kernel_core::frame_allocator`;
//! this module only gives it storage (a bitmap in the first free range that
//! fits) and a lock.

use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, Ordering};

use kernel_core::boot_info::BootInfo;
use kernel_core::frame_allocator::FrameAllocator;
use kernel_core::memory_map::{LOW_MEMORY_FLOOR, UsableRanges};
use kernel_core::phys::{PAGE_SIZE, PhysRange};
use talc::{OomHandler, Span, Talc, Talck};
use x86_64::PhysAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use super::paging;

/// The kernel heap's first arena; it grows on demand in steps of at least
/// [`HEAP_GROWTH`].
const INITIAL_HEAP: u64 = 2 * 1024 * 1024;
const HEAP_GROWTH: u64 = 1024 * 1024;

/// Where physical address 0 appears in the kernel's address space.
static DIRECT_MAP_OFFSET: AtomicU64 = AtomicU64::new(0);

static USABLE: spin::Once<UsableRanges> = spin::Once::new();

/// The kernel's PML4, whose upper half every address space shares.
static KERNEL_PML4: spin::Once<PhysFrame> = spin::Once::new();

/// The kernel's PML4 (after `init`).
pub fn kernel_pml4() -> Option<PhysFrame> {
    KERNEL_PML4.get().copied()
}

/// The physical frame allocator, once `init` has run.
pub static FRAMES: spin::Mutex<Option<FrameAllocator<'static>>> = spin::Mutex::new(None);

/// Bytes claimed by the kernel heap so far.
static HEAP_BYTES: AtomicU64 = AtomicU64::new(0);

/// Grows the heap with contiguous frames from the frame allocator.
#[derive(Debug)]
pub struct GrowFromFrames;

impl OomHandler for GrowFromFrames {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let bytes = (layout.size() as u64 + layout.align() as u64 + PAGE_SIZE)
            .max(HEAP_GROWTH)
            .next_multiple_of(PAGE_SIZE);
        let physical = FRAMES
            .lock()
            .as_mut()
            .and_then(|frames| frames.allocate_contiguous(bytes / PAGE_SIZE, PAGE_SIZE))
            .ok_or(())?;
        let base = direct_map(physical) as *mut u8;
        // SAFETY: the frames were just taken from the allocator for the heap
        // alone and are mapped (writable) by the direct map.
        unsafe { talc.claim(Span::from_base_size(base, bytes as usize)) }?;
        HEAP_BYTES.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

#[global_allocator]
static HEAP: Talck<spin::Mutex<()>, GrowFromFrames> = Talc::new(GrowFromFrames).lock();

/// Where physical address 0 appears in the kernel's address space.
pub fn direct_map_offset() -> u64 {
    DIRECT_MAP_OFFSET.load(Ordering::Relaxed)
}

/// The virtual address of physical `address` in the direct map.
pub fn direct_map(address: u64) -> u64 {
    DIRECT_MAP_OFFSET.load(Ordering::Relaxed) + address
}

/// Copies `length` bytes from `source` to `destination`, which may overlap
/// (a process sending to itself): a message's copy, inline and in eight-byte
/// steps (REP MOVSQ, then REP MOVSB for the tail) rather than through the
/// generic `memmove`, whose entry costs as much as a 64-byte copy.
///
/// # Safety
/// Both ranges must be valid for `length` bytes, `source` for reads and
/// `destination` for writes.
#[inline(always)]
pub unsafe fn copy_bytes(source: *const u8, destination: *mut u8, length: usize) {
    // A forward copy is exact unless the destination starts inside the
    // source; then (a rare self-send) the generic one copies backwards.
    if (destination as usize).wrapping_sub(source as usize) < length {
        // SAFETY: the caller's contract; `copy` allows overlap.
        unsafe { core::ptr::copy(source, destination, length) };
        return;
    }
    // SAFETY: the caller's contract; the destination does not start inside
    // the source, so each byte is read before anything overwrites it.
    // The kernel runs with RFLAGS.DF clear (SYSCALL's mask, `cld` on entry).
    unsafe {
        core::arch::asm!(
            "rep movsq",
            "mov ecx, {tail:e}",
            "rep movsb",
            tail = in(reg) length & 7,
            inout("rcx") length / 8 => _,
            inout("rsi") source => _,
            inout("rdi") destination => _,
            options(nostack, preserves_flags)
        )
    };
}

/// The boot archive's bytes, read through the direct map (after `init`,
/// which reserves the archive's frames: they are never handed out, and
/// nothing writes them).
pub fn boot_archive_bytes(info: &BootInfo) -> Option<&'static [u8]> {
    let range = info.boot_archive?;
    // SAFETY: `init` reserved the archive's frames (never handed out) and
    // the direct map maps them for the kernel's lifetime; nothing writes them.
    Some(unsafe {
        core::slice::from_raw_parts(direct_map(range.start) as *const u8, range.len() as usize)
    })
}

/// What `init` set up, for the boot banner.
#[derive(Debug, Clone, Copy)]
pub struct MemorySummary {
    /// Free bytes handed to the frame allocator.
    pub usable_bytes: u64,
    /// Number of disjoint usable ranges.
    pub usable_ranges: usize,
    /// Frames still free after the page tables and the heap were set up.
    pub free_frames: u64,
    /// The kernel heap's size.
    pub heap_bytes: u64,
}

/// Why memory could not be set up.
#[derive(Debug)]
pub enum MemoryError {
    /// No usable range can hold the frame bitmap.
    NoRoomForBitmap,
    /// Building the page tables failed.
    Paging(paging::PagingError),
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemoryError::NoRoomForBitmap => write!(f, "no usable range can hold the frame bitmap"),
            MemoryError::Paging(error) => write!(f, "kernel page tables: {error}"),
        }
    }
}

/// Frames straight from the allocator, not zeroed: for page tables (the
/// `x86_64` crate zeroes each table it creates) and kernel stacks.
#[derive(Debug)]
pub struct Frames;

// SAFETY: every frame returned comes from the allocator, unused by anyone else.
unsafe impl x86_64::structures::paging::FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let physical = FRAMES.lock().as_mut()?.allocate()?;
        Some(PhysFrame::containing_address(PhysAddr::new(physical)))
    }
}

/// Zeroed frames: for user pages and new PML4s, whose old contents must
/// not show.
#[derive(Debug)]
pub struct ZeroedFrames;

// SAFETY: as for `Frames`; the frame is zeroed before it is handed out.
unsafe impl x86_64::structures::paging::FrameAllocator<Size4KiB> for ZeroedFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let frame = Frames.allocate_frame()?;
        let physical = frame.start_address().as_u64();
        // SAFETY: a fresh frame, reached through the direct map.
        unsafe { core::ptr::write_bytes(direct_map(physical) as *mut u8, 0, PAGE_SIZE as usize) };
        Some(frame)
    }
}

/// Gives `frame` back to the allocator.
pub fn free_frame(frame: PhysFrame) {
    if let Some(frames) = FRAMES.lock().as_mut() {
        // A failure would mean the frame was never ours; nothing to do.
        let _ = frames.free(frame.start_address().as_u64());
    }
}

/// Sets up the frame allocator, switches to the kernel's page tables and
/// gives the heap its first arena.
pub fn init(info: &BootInfo) -> Result<MemorySummary, MemoryError> {
    DIRECT_MAP_OFFSET.store(info.direct_map_offset, Ordering::Relaxed);
    let mut reserved = [info.kernel_image, PhysRange::default()];
    if let Some(archive) = info.boot_archive {
        reserved[1] = archive;
    }
    let mut usable = UsableRanges::compute(&info.memory_map, &reserved, LOW_MEMORY_FLOOR);
    let usable_bytes = usable.total_bytes();
    let bitmap_range = FrameAllocator::place_bitmap(&usable).ok_or(MemoryError::NoRoomForBitmap)?;
    let words = FrameAllocator::bitmap_words_for(usable.ranges());
    usable.exclude(bitmap_range);
    let usable = USABLE.call_once(|| usable);
    // SAFETY: `bitmap_range` was just removed from the usable set, so no frame
    // allocation will ever hand it out; it is RAM mapped by the direct map, and
    // big enough for `words` words (place_bitmap sized it).
    let bitmap = unsafe {
        core::slice::from_raw_parts_mut(direct_map(bitmap_range.start) as *mut u64, words)
    };
    *FRAMES.lock() = Some(FrameAllocator::new(bitmap, usable.ranges()));

    let pml4 = paging::build_kernel_tables(info, &mut Frames).map_err(MemoryError::Paging)?;
    super::cpu::enable_paging_features();
    // SAFETY: the tables map the kernel image, the direct map (which holds
    // the boot stack of either path and every structure in use) as before,
    // and the paging features they rely on were just enabled.
    unsafe { paging::activate(pml4) };
    KERNEL_PML4.call_once(|| pml4);

    let heap = FRAMES
        .lock()
        .as_mut()
        .and_then(|frames| frames.allocate_contiguous(INITIAL_HEAP / PAGE_SIZE, PAGE_SIZE));
    if let Some(physical) = heap {
        let base = direct_map(physical) as *mut u8;
        // SAFETY: frames taken for the heap alone, mapped writable by the direct map.
        if unsafe {
            HEAP.lock()
                .claim(Span::from_base_size(base, INITIAL_HEAP as usize))
        }
        .is_ok()
        {
            HEAP_BYTES.fetch_add(INITIAL_HEAP, Ordering::Relaxed);
        }
    }

    let free_frames = FRAMES.lock().as_ref().map_or(0, |f| f.free_frames());
    Ok(MemorySummary {
        usable_bytes,
        usable_ranges: usable.ranges().len(),
        free_frames,
        heap_bytes: HEAP_BYTES.load(Ordering::Relaxed),
    })
}
