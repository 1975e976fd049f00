//! User address spaces: a PML4 whose upper half is the kernel's (the same
//! PDPT pointers, so kernel mappings are shared) and whose lower half maps
//! the process's 4 KiB user pages.
//!
//! A user page either owns its frame (MAP_ANONYMOUS, program images: the
//! frame is freed when the page is unmapped) or shows a memory object's
//! frame ([`AddressSpace::map_frame`]): its entry carries the software bit
//! [`BORROWED`], and unmapping it, or destroying the space, leaves the
//! frame to the object (the kernel core frees it when the object goes).

use core::cell::Cell;
use core::ops::Range;

use abi::Error;
use x86_64::VirtAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTable, PageTableFlags, PhysFrame};

use super::memory::{ZeroedFrames, direct_map, free_frame};

/// The software bit (one of those the CPU ignores, SDM vol. 3, 4.5) that
/// marks a leaf entry whose frame belongs to a memory object, not to the
/// mapping.
pub const BORROWED: PageTableFlags = PageTableFlags::BIT_9;

/// The bits of a leaf entry that PROTECT keeps: whose frame it is and how
/// it is cached.
const KEPT_BY_PROTECT: PageTableFlags = BORROWED
    .union(PageTableFlags::NO_CACHE)
    .union(PageTableFlags::WRITE_THROUGH);

/// The page table at physical `frame`, through the direct map.
///
/// # Safety
/// `frame` must hold a page table owned by the caller's address space, with
/// no other live reference to it.
unsafe fn table(frame: PhysFrame) -> &'static mut PageTable {
    // SAFETY: guaranteed by the caller; the direct map covers all RAM.
    unsafe { &mut *(direct_map(frame.start_address().as_u64()) as *mut PageTable) }
}

/// The first index in `range` whose entry of `entries` is in use (see
/// [`kernel_core::page_tables::first_in_use`]).
fn next_in_use(entries: &PageTable, range: Range<usize>) -> Option<usize> {
    // SAFETY: `PageTable` is `repr(C)` around `[PageTableEntry; 512]` and
    // `PageTableEntry` is `repr(transparent)` around a `u64`: the same
    // bytes, read only.
    let words = unsafe { &*core::ptr::from_ref(entries).cast::<[u64; 512]>() };
    kernel_core::page_tables::first_in_use(words, range)
}

/// An empty slot of the translation cache: not page-aligned, so no page
/// equals it.
const NO_PAGE: u64 = u64::MAX;

/// One process's page tables.
#[derive(Debug)]
pub struct AddressSpace {
    pml4: PhysFrame,
    /// The last two translations (a software TLB): IPC touches the same
    /// buffer pages call after call, and a hit skips the four-level walk.
    /// Each is a virtual page (bit 0 set when every level allows writes;
    /// [`NO_PAGE`] when empty) and its frame. Every change to
    /// this space's mappings goes through `&mut self` methods, which empty it.
    recent_pages: [Cell<u64>; 2],
    recent_frames: [Cell<u64>; 2],
    /// Page-table frames allocated under the PML4 so far (never decreases):
    /// the machine reports each mapping's share so the kernel can charge it.
    tables_made: u64,
}

impl AddressSpace {
    /// An empty user half over the kernel's upper half (`kernel_pml4`).
    pub fn new(kernel_pml4: PhysFrame) -> Result<Self, Error> {
        let pml4 = x86_64::structures::paging::FrameAllocator::allocate_frame(&mut ZeroedFrames)
            .ok_or(Error::OutOfMemory)?;
        // SAFETY: `pml4` is fresh; the kernel's PML4 is only read.
        let (new, kernel) = unsafe { (table(pml4), table(kernel_pml4)) };
        for slot in 256..512 {
            new[slot] = kernel[slot].clone();
        }
        Ok(Self {
            pml4,
            recent_pages: [Cell::new(NO_PAGE), Cell::new(NO_PAGE)],
            recent_frames: [Cell::new(0), Cell::new(0)],
            tables_made: 0,
        })
    }

    /// The last-level table that maps `address` (user half), making the
    /// missing tables above it (zeroed, counted in `tables_made`). Every
    /// entry on the way gets `parents` (present, user, and writable when
    /// the page is): a write needs R/W at every level. OUT_OF_MEMORY when a
    /// table could not be had, and then the tables this call made are
    /// freed again, so nothing changed; BAD_ADDRESS_RANGE on a huge page.
    ///
    /// A plain walk instead of the `x86_64` crate's generic mapper: every
    /// page a process maps or loads comes through here.
    fn leaf_table_making(
        &mut self,
        address: u64,
        parents: PageTableFlags,
    ) -> Result<PhysFrame, Error> {
        // The tables made so far: (table holding the entry, index, new table).
        let mut made: [Option<(PhysFrame, usize, PhysFrame)>; 3] = [None; 3];
        let mut frame = self.pml4;
        for (level, shift) in [39u32, 30, 21].into_iter().enumerate() {
            let index = ((address >> shift) & 0x1ff) as usize;
            // SAFETY: a table of this space, which `&mut self` holds
            // exclusively.
            let entry = unsafe { &mut table(frame)[index] };
            if entry.is_unused() {
                let Some(child) =
                    x86_64::structures::paging::FrameAllocator::allocate_frame(&mut ZeroedFrames)
                else {
                    for &(holder, index, child) in made.iter().rev().flatten() {
                        // SAFETY: as above; the entry this call set.
                        unsafe { table(holder)[index].set_unused() };
                        free_frame(child);
                        self.tables_made -= 1;
                    }
                    return Err(Error::OutOfMemory);
                };
                entry.set_frame(child, parents);
                self.tables_made += 1;
                made[level] = Some((frame, index, child));
                frame = child;
            } else {
                if !entry.flags().contains(parents) {
                    entry.set_flags(entry.flags() | parents);
                }
                frame = entry.frame().map_err(|_| Error::BadAddressRange)?;
            }
        }
        Ok(frame)
    }

    /// Points the absent leaf entry for `address` at `frame` with `flags`
    /// (which hold present and user); the page-table bytes made for it.
    /// BAD_ADDRESS_RANGE when something is mapped there, OUT_OF_MEMORY when
    /// a table could not be had; either way nothing changed.
    fn map_leaf(
        &mut self,
        address: u64,
        frame: PhysFrame,
        flags: PageTableFlags,
    ) -> Result<u64, Error> {
        let parents = flags
            & (PageTableFlags::PRESENT
                | PageTableFlags::USER_ACCESSIBLE
                | PageTableFlags::WRITABLE);
        let made_before = self.tables_made;
        let leaf = self.leaf_table_making(address, parents)?;
        // SAFETY: the last-level table of this space, held exclusively.
        let entry = unsafe { &mut table(leaf)[((address >> 12) & 0x1ff) as usize] };
        if !entry.is_unused() {
            // Present already: so were the tables above it, none was made.
            return Err(Error::BadAddressRange);
        }
        // The page was not present, and the CPU caches no not-present
        // entry (Intel SDM 4.10.4.3): nothing to flush.
        entry.set_frame(frame, flags);
        Ok((self.tables_made - made_before) * abi::PAGE_BYTES)
    }

    /// Maps one zeroed page at `address` (page-aligned, user half).
    /// OUT_OF_MEMORY when the page or a table for it could not be had,
    /// BAD_ADDRESS_RANGE when something is mapped there.
    pub fn map_zeroed(&mut self, address: u64, flags: PageTableFlags) -> Result<PhysFrame, Error> {
        self.forget_translations();
        let frame = x86_64::structures::paging::FrameAllocator::allocate_frame(&mut ZeroedFrames)
            .ok_or(Error::OutOfMemory)?;
        let flags = flags | PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE;
        match self.map_leaf(address, frame, flags) {
            Ok(_) => Ok(frame),
            Err(error) => {
                free_frame(frame);
                Err(error)
            }
        }
    }

    /// Maps the memory object's frame `frame` at `address` (page-aligned,
    /// user half, unmapped) with `flags` (plus present, user and
    /// [`BORROWED`]); the page-table bytes it allocated. BAD_ADDRESS_RANGE
    /// when something is mapped there, OUT_OF_MEMORY when a table could not
    /// be had.
    pub fn map_frame(
        &mut self,
        address: u64,
        frame: PhysFrame,
        flags: PageTableFlags,
    ) -> Result<u64, Error> {
        self.forget_translations();
        let flags = flags | PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE | BORROWED;
        self.map_leaf(address, frame, flags)
    }

    /// Points the memory-object page mapped at `address` at `frame` with
    /// `flags` (plus present, user and [`BORROWED`]) and drops its
    /// translation from the TLB. BAD_ADDRESS_RANGE when no such page is
    /// mapped there.
    pub fn remap_frame(
        &mut self,
        address: u64,
        frame: PhysFrame,
        flags: PageTableFlags,
    ) -> Result<(), Error> {
        self.forget_translations();
        let flags = flags | PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE | BORROWED;
        let entry = self.leaf_entry(address).ok_or(Error::BadAddressRange)?;
        if !entry.flags().contains(BORROWED) {
            return Err(Error::BadAddressRange);
        }
        entry.set_addr(frame.start_address(), flags);
        if flags.contains(PageTableFlags::WRITABLE) {
            self.allow_writes_above(address);
        }
        x86_64::instructions::tlb::flush(VirtAddr::new(address));
        Ok(())
    }

    /// The present leaf entry mapping `address` (user half), if any.
    fn leaf_entry(
        &mut self,
        address: u64,
    ) -> Option<&mut x86_64::structures::paging::page_table::PageTableEntry> {
        if address >= abi::process::USER_END {
            return None;
        }
        let mut frame = self.pml4;
        for shift in [39u32, 30, 21] {
            let index = ((address >> shift) & 0x1ff) as usize;
            // SAFETY: a table of this space, which `&mut self` holds
            // exclusively; the user half has no huge pages, so a present
            // entry above the last level points to a table.
            let entry = unsafe { &table(frame)[index] };
            frame = entry.frame().ok()?;
        }
        // SAFETY: as above: the last-level table of this space.
        let entry = unsafe { &mut table(frame)[((address >> 12) & 0x1ff) as usize] };
        (!entry.is_unused()).then_some(entry)
    }

    /// Unmaps every page in `[start, end)` (page-aligned, user half), frees
    /// their frames (not memory objects' frames, which stay theirs) and any
    /// page table left empty; the bytes freed.
    ///
    /// Walks the tables rather than the addresses, so the cost follows what
    /// is mapped, not the length asked for: unmapping the whole user half
    /// of a small process is as cheap as unmapping what it holds. Emptied
    /// tables are freed (and counted in the bytes freed: the kernel charged
    /// them), so a map/unmap loop over fresh addresses never piles them up.
    pub fn unmap_range(&mut self, start: u64, end: u64) -> u64 {
        self.forget_translations();
        let done = unmap_in(self.pml4, 4, 0, start, end.min(abi::process::USER_END));
        if done.changed && Cr3::read_raw().0 == self.pml4 {
            // One full flush (user pages are not global) also drops the
            // paging-structure caches for the tables just freed.
            // SAFETY: reloading the active PML4 changes no mapping.
            unsafe { Cr3::write(self.pml4, Cr3Flags::empty()) };
        }
        done.freed
    }

    /// The lowest mapped page in `[start, end)` (user half), if any; like
    /// [`AddressSpace::unmap_range`] it skips absent tables whole.
    pub fn first_mapped(&self, start: u64, end: u64) -> Option<u64> {
        first_present(self.pml4, 4, 0, start, end.min(abi::process::USER_END))
    }

    /// Page-table frames allocated under the PML4 since the space was made.
    pub fn tables_made(&self) -> u64 {
        self.tables_made
    }

    /// Changes the flags of the mapped page at `address`.
    ///
    /// A write needs R/W at every level (Intel SDM vol. 3, 4.6), and the
    /// tables above a page keep the flags of the first page mapped under
    /// them: making a page writable first lets writes through its parents.
    /// A writable parent grants nothing by itself; each page's own entry
    /// still decides.
    ///
    /// A memory object's page stays the object's and keeps its caching
    /// ([`KEPT_BY_PROTECT`]).
    pub fn set_flags(&mut self, address: u64, flags: PageTableFlags) -> Result<(), Error> {
        self.forget_translations();
        let flags = flags | PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE;
        let entry = self.leaf_entry(address).ok_or(Error::BadAddressRange)?;
        let flags = flags | (entry.flags() & KEPT_BY_PROTECT);
        entry.set_flags(flags);
        if flags.contains(PageTableFlags::WRITABLE) {
            self.allow_writes_above(address);
        }
        x86_64::instructions::tlb::flush(VirtAddr::new(address));
        Ok(())
    }

    /// The physical address behind a user virtual address, if it is mapped
    /// user-accessible (and writable, when `write`).
    ///
    /// A plain four-level walk: this runs for every page of every message,
    /// so it reads the entries directly instead of going through the
    /// `x86_64` crate's generic translator. A user access needs the U/S bit
    /// at every level, and a write the R/W bit at every level (CR0.WP is
    /// set, so the kernel honours them too: Intel SDM vol. 3, 4.6).
    ///
    /// The cache's hit is inlined into the caller; the walk is not.
    #[inline(always)]
    pub fn translate(&self, address: u64, write: bool) -> Option<u64> {
        let page = address & !0xfff;
        // A hit: the page, and bit 0 (writable) at least what is asked.
        // An empty slot holds `NO_PAGE`, which no page equals; a cached
        // page passed the walk's checks, so it is a user page.
        let hit = |cached: u64| cached & !1 == page && cached & 1 >= u64::from(write);
        if hit(self.recent_pages[0].get()) {
            return Some(self.recent_frames[0].get() + (address & 0xfff));
        }
        if hit(self.recent_pages[1].get()) {
            return Some(self.recent_frames[1].get() + (address & 0xfff));
        }
        self.walk(address, write)
    }

    /// [`AddressSpace::translate`] past the cache: the walk, whose result
    /// the cache keeps.
    #[inline(never)]
    fn walk(&self, address: u64, write: bool) -> Option<u64> {
        const PRESENT: u64 = 1 << 0;
        const WRITABLE: u64 = 1 << 1;
        const USER: u64 = 1 << 2;
        const FRAME: u64 = 0x000f_ffff_ffff_f000;
        if address >= abi::process::USER_END {
            return None;
        }
        let page = address & !0xfff;
        let mut writable = WRITABLE;
        let required = if write {
            PRESENT | USER | WRITABLE
        } else {
            PRESENT | USER
        };
        let offset = super::memory::direct_map_offset();
        let mut table = self.pml4.start_address().as_u64();
        for shift in [39u32, 30, 21, 12] {
            let index = (address >> shift) & 0x1ff;
            // SAFETY: `table` is a page table of this space (the PML4, or a
            // frame a present entry of it points to), reached through the
            // direct map; entries are 8-byte aligned. The user half holds
            // only 4 KiB pages (map_zeroed never makes huge ones), so every
            // present entry above the last level points to a table.
            let entry =
                unsafe { core::ptr::read(((offset + table) as *const u64).add(index as usize)) };
            if entry & required != required {
                return None;
            }
            writable &= entry;
            table = entry & FRAME;
        }
        self.recent_pages[1].set(self.recent_pages[0].get());
        self.recent_frames[1].set(self.recent_frames[0].get());
        self.recent_pages[0].set(page | u64::from(writable != 0));
        self.recent_frames[0].set(table);
        Some(table + (address & 0xfff))
    }

    /// Sets R/W in the PML4, PDPT and PD entries above `address` (present
    /// ones; an absent level ends the walk). The caller flushes the page,
    /// which also drops the paging-structure caches for it (SDM 4.10.4.1).
    fn allow_writes_above(&mut self, address: u64) {
        let mut frame = self.pml4;
        for shift in [39u32, 30, 21] {
            let index = ((address >> shift) & 0x1ff) as usize;
            // SAFETY: a table of this space, which `&mut self` holds
            // exclusively; the user half has no huge pages, so a present
            // entry above the last level points to a table.
            let entry = unsafe { &mut table(frame)[index] };
            let Ok(next) = entry.frame() else {
                return;
            };
            entry.set_flags(entry.flags() | PageTableFlags::WRITABLE);
            frame = next;
        }
    }

    /// Empties the translation cache (a mapping of this space changed).
    fn forget_translations(&mut self) {
        for slot in &self.recent_pages {
            slot.set(NO_PAGE);
        }
    }

    /// Whether this CPU runs on the space's tables now.
    pub fn is_loaded(&self) -> bool {
        super::paging::current_root() == self.pml4.start_address().as_u64()
    }

    /// Switches this CPU to the space.
    #[inline]
    pub fn activate(&self) {
        if super::paging::current_root() != self.pml4.start_address().as_u64() {
            // SAFETY: the upper half is the kernel's, so the kernel code, data
            // and stacks stay mapped.
            unsafe { Cr3::write(self.pml4, Cr3Flags::empty()) };
        }
    }

    /// Frees every user page and lower-half table, then the PML4. The caller
    /// must not be running on this space.
    pub fn destroy(self) {
        // The caller is not on this space, so no TLB entry of it is live
        // (user pages are not global).
        unmap_in(self.pml4, 4, 0, 0, abi::process::USER_END);
        free_frame(self.pml4);
    }
}

/// The bytes of address space one entry of a table at `level` covers
/// (4 = PML4 ... 1 = page table).
fn entry_span(level: u8) -> u64 {
    1 << (12 + 9 * (u32::from(level) - 1))
}

/// The indices of the entries of the table at `level` (based at `base`)
/// that cover part of `[start, end)`; empty when none does.
fn indices_within(level: u8, base: u64, start: u64, end: u64) -> Range<usize> {
    let span = entry_span(level);
    let first = (start.saturating_sub(base) / span).min(512) as usize;
    let past = if end <= base {
        0
    } else {
        ((end - 1 - base) / span + 1).min(512) as usize
    };
    first..past.max(first)
}

/// See [`AddressSpace::first_mapped`]; `frame` is a table at `level`
/// covering addresses from `base`.
fn first_present(frame: PhysFrame, level: u8, base: u64, start: u64, end: u64) -> Option<u64> {
    // SAFETY: a table of the caller's space, only read here.
    let entries = unsafe { table(frame) };
    let span = entry_span(level);
    let within = indices_within(level, base, start, end);
    let mut from = within.start;
    while let Some(index) = next_in_use(entries, from..within.end) {
        from = index + 1;
        let Ok(child) = entries[index].frame() else {
            continue;
        };
        let at = base + index as u64 * span;
        if level == 1 {
            return Some(at);
        }
        if let Some(found) = first_present(child, level - 1, at, start, end) {
            return Some(found);
        }
    }
    None
}

/// What [`unmap_in`] did under one table.
#[derive(Clone, Copy, Default)]
struct Unmapped {
    /// Bytes of frames freed: pages the mappings owned, and emptied tables.
    freed: u64,
    /// Whether any entry was cleared (the TLB must forget them).
    changed: bool,
    /// Whether the table is now empty.
    empty: bool,
}

/// See [`AddressSpace::unmap_range`]: what was freed under the table
/// `frame` at `level` (covering addresses from `base`). A memory object's
/// page ([`BORROWED`]) is unmapped, its frame neither freed nor counted.
/// The caller flushes the TLB.
fn unmap_in(frame: PhysFrame, level: u8, base: u64, start: u64, end: u64) -> Unmapped {
    // SAFETY: a table of the caller's space, which it holds exclusively.
    let entries = unsafe { table(frame) };
    let span = entry_span(level);
    let within = indices_within(level, base, start, end);
    let mut done = Unmapped::default();
    // Whether an entry in the range stays (a table below that kept pages).
    let mut kept = false;
    let mut from = within.start;
    while let Some(index) = next_in_use(entries, from..within.end) {
        from = index + 1;
        let Ok(child) = entries[index].frame() else {
            kept = true;
            continue;
        };
        if level == 1 {
            if !entries[index].flags().contains(BORROWED) {
                free_frame(child);
                done.freed += abi::PAGE_BYTES;
            }
            entries[index].set_unused();
            done.changed = true;
        } else {
            let below = unmap_in(child, level - 1, base + index as u64 * span, start, end);
            done.freed += below.freed;
            done.changed |= below.changed;
            if below.empty {
                entries[index].set_unused();
                free_frame(child);
                done.freed += abi::PAGE_BYTES;
            } else {
                kept = true;
            }
        }
    }
    // The PML4 is never freed here, and its upper half is the kernel's.
    // Inside the range only `kept` can say an entry is left, so only the
    // entries outside it are read: none when a whole table is unmapped
    // (a process's end), the first present one otherwise.
    done.empty = level < 4
        && !kept
        && next_in_use(entries, 0..within.start).is_none()
        && next_in_use(entries, within.end..512).is_none();
    done
}
