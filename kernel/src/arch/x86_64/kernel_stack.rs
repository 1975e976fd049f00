//! Thread kernel stacks, each in its own slot of a reserved upper-half
//! region with unmapped pages below it: a kernel stack overflow faults on
//! the guard (the CPU then takes the double fault on its IST stack and
//! reports it) instead of silently overwriting the heap. Stacks are mapped
//! from single frames, so creating a thread never needs contiguous memory,
//! and running out of frames is an error for the caller, not a halt.
//!
//! The region sits in PML4 slot 510, whose PDPT `paging` made at boot, so
//! its mappings appear in every address space at once.

use abi::Error;
use alloc::vec::Vec;
use x86_64::VirtAddr;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, Size4KiB,
};

use super::memory::{Frames, direct_map, direct_map_offset, free_frame, kernel_pml4};

/// The bytes of one kernel stack.
pub const STACK_BYTES: u64 = kernel_core::thread::KERNEL_STACK_BYTES;
/// One slot: the stack at its top, the rest (32 KiB) never mapped.
const SLOT_BYTES: u64 = 64 * 1024;
/// The region: PML4 slot 510, below the kernel image's slot 511 and far
/// above the direct map (which would need 127 TiB of RAM to reach it).
const REGION_BASE: u64 = 0xffff_ff00_0000_0000;
/// Slots in the region's 512 GiB.
const SLOTS: u32 = ((512u64 << 30) / SLOT_BYTES) as u32;

/// Slot numbers returned by dropped stacks (unordered), and the next
/// never-used one.
static SLOT_POOL: spin::Mutex<(Vec<u32>, u32)> = spin::Mutex::new((Vec::new(), 0));

/// The lowest free slot: slots stay packed at the bottom of the region, so
/// the page tables that map them (one per 32 slots, kept once made) follow
/// the most threads ever alive at once, not the order threads ended in.
fn take_slot() -> Result<u32, Error> {
    let mut pool = SLOT_POOL.lock();
    if let Some((index, _)) = pool.0.iter().enumerate().min_by_key(|(_, slot)| **slot) {
        return Ok(pool.0.swap_remove(index));
    }
    if pool.1 == SLOTS {
        return Err(Error::OutOfMemory);
    }
    // Reserve room first, so returning the slot later cannot fail.
    pool.0.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
    pool.1 += 1;
    Ok(pool.1 - 1)
}

fn return_slot(slot: u32) {
    // `take_slot` reserved room for every slot handed out.
    SLOT_POOL.lock().0.push(slot);
}

/// The kernel's page tables, for changes in the stack region only.
fn kernel_mapper() -> Option<OffsetPageTable<'static>> {
    let pml4 = kernel_pml4()?;
    // SAFETY: the kernel PML4 is reached through the direct map; only the
    // stack region's lower tables change through it (its PML4 entry exists
    // from boot), under the system lock, on the only CPU.
    let table = unsafe { &mut *(direct_map(pml4.start_address().as_u64()) as *mut PageTable) };
    // SAFETY: all physical memory is mapped at the direct-map offset.
    Some(unsafe { OffsetPageTable::new(table, VirtAddr::new(direct_map_offset())) })
}

/// One thread's kernel stack; dropping it unmaps it and frees its frames.
#[derive(Debug)]
pub struct KernelStack {
    slot: u32,
}

impl KernelStack {
    /// Maps a fresh stack, or OUT_OF_MEMORY when frames or slots run out.
    pub fn allocate() -> Result<Self, Error> {
        let stack = KernelStack { slot: take_slot()? };
        let mut mapper = kernel_mapper().ok_or(Error::OutOfMemory)?;
        let flags = PageTableFlags::PRESENT
            | PageTableFlags::WRITABLE
            | PageTableFlags::NO_EXECUTE
            | PageTableFlags::GLOBAL;
        for page in stack.pages() {
            // Not zeroed: a stack's old contents are never read.
            let frame = Frames.allocate_frame().ok_or(Error::OutOfMemory)?;
            // SAFETY: a fresh frame at an address of this stack's slot,
            // which nothing else maps; dropping `stack` on an error below
            // unmaps what was mapped so far.
            match unsafe { mapper.map_to(page, frame, flags, &mut Frames) } {
                // Not present before, so not cached (Intel SDM 4.10.4.3).
                Ok(flush) => flush.ignore(),
                Err(_) => {
                    free_frame(frame);
                    return Err(Error::OutOfMemory);
                }
            }
        }
        Ok(stack)
    }

    /// The address just past the stack's mapped pages.
    fn end(&self) -> u64 {
        REGION_BASE + (u64::from(self.slot) + 1) * SLOT_BYTES
    }

    /// The initial stack pointer: below the thread's saved FPU state, which
    /// occupies the top of the stack's pages.
    pub fn top(&self) -> u64 {
        self.end() - super::fpu::STATE_BYTES
    }

    /// Where the thread's x87/MMX/SSE state is saved: the top
    /// STATE_BYTES of the stack's pages, mapped while the stack lives,
    /// 16-byte aligned (the end is page-aligned) and used for nothing else
    /// (the stack pointer starts below them).
    pub fn fpu_area(&self) -> *mut super::fpu::FpuState {
        self.top() as *mut super::fpu::FpuState
    }

    fn pages(&self) -> impl Iterator<Item = Page<Size4KiB>> {
        let bottom = self.end() - STACK_BYTES;
        (0..STACK_BYTES / abi::PAGE_BYTES).map(move |index| {
            Page::containing_address(VirtAddr::new(bottom + index * abi::PAGE_BYTES))
        })
    }
}

/// The slot whose guard pages hold `address`, if it is in one: a fault
/// there is a kernel stack overflow.
pub fn guard_slot(address: u64) -> Option<u64> {
    let offset = address.checked_sub(REGION_BASE)?;
    let slot = offset / SLOT_BYTES;
    (slot < u64::from(SLOTS) && offset % SLOT_BYTES < SLOT_BYTES - STACK_BYTES).then_some(slot)
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        if let Some(mut mapper) = kernel_mapper() {
            for page in self.pages() {
                // Pages a failed `allocate` never mapped are skipped.
                if let Ok((frame, flush)) = mapper.unmap(page) {
                    // INVLPG drops the global entry in this CPU's TLB.
                    flush.flush();
                    free_frame(frame);
                }
            }
        }
        return_slot(self.slot);
        // Other CPUs' TLBs may hold these pages (global entries) until
        // they flush, which they do before the slot can be theirs.
        super::kernel_lock::kernel_mapping_removed();
    }
}

/// The `selftest=kernel-stack-overflow` boot test: recurses on a fresh
/// kernel stack until it runs into the guard below it. The page fault
/// cannot push its frame there, so the CPU raises a double fault, which
/// runs on its IST stack and reports (a fatal kernel error, as it must be).
pub fn overflow_one() -> ! {
    let Ok(stack) = KernelStack::allocate() else {
        super::cpu::fatal(format_args!("self-test: no kernel stack"));
    };
    kprintln!(
        "self-test: overflowing the kernel stack {:#x}..{:#x}",
        stack.top() - STACK_BYTES,
        stack.top()
    );
    let top = stack.top();
    core::mem::forget(stack);
    // SAFETY: moves to a mapped, unused kernel stack and never returns to
    // the old one; the recursion below ends in a fault by design.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "call {recurse}",
            "ud2",
            top = in(reg) top,
            recurse = sym recurse,
            options(noreturn)
        )
    }
}

/// Uses 512 bytes of stack a level, forever.
#[allow(unconditional_recursion, reason = "it must run into the guard page")]
extern "C" fn recurse() -> u64 {
    let mut frame = [0u8; 512];
    core::hint::black_box(&mut frame);
    recurse().wrapping_add(u64::from(core::hint::black_box(frame)[0]))
}
