//! Memory objects (DESIGN §5: "a set of frames with a size"), their
//! mappings, copy-on-write, and the user page faults that resolve it.
//!
//! The core owns the whole model; the machine only hands out, frees,
//! copies and maps frames (`crate::machine`).
//!
//! - An **anonymous** object holds one frame per page, zero-filled when it
//!   is made and charged to its creator ([`PAGE_COST`] a page, beside the
//!   object's own cost). Frames are reference-counted
//!   ([`FrameRecord::shares`]): a **copy-on-write child** (MEMORY_COW)
//!   starts with its parent's frames, each then held by both; a write to a
//!   shared page through a mapping of either object gives that object a
//!   copy of its own. The child is charged as a full copy up front, so
//!   making the copy never fails for the quota (only when the machine has
//!   no frame left, which ends the writer).
//! - A **direct** object is a physical range (MMIO, firmware tables): no
//!   frame of the kernel's, nothing to free, never shared, never a
//!   copy-on-write parent. Ranges that hold RAM the kernel owns are refused.
//! - A **mapping** ([`Region`]) shows a range of an object's pages in a
//!   range of a process's space. It holds one reference to the object, so
//!   an object lives while it is mapped even with every descriptor closed,
//!   and it remembers the widest protection the reference it was made
//!   through allowed (PROTECT may not go past it). A page is mapped
//!   writable only when its mapping allows writes and the frame is its
//!   object's alone: a shared frame is mapped read-only, and the write
//!   fault ([`Kernel::page_fault`]) or a kernel write into it
//!   ([`Kernel::writable_after_copy`]) makes the copy.
//! - A frame goes back to the machine when the last object holding it
//!   goes; an object goes with its last reference, descriptor or mapping.

use abi::kcall::protection;
use abi::{Descriptor, Error, Rights};
use alloc::vec::Vec;

use crate::arena::Id;
use crate::boot_info::MemoryMap;
use crate::kernel::Kernel;
use crate::machine::{Machine, PageFault, PageMapping};
use crate::object::{Object, ObjectBody, ObjectId};
use crate::page_tables;
use crate::phys::{PAGE_SIZE as PAGE, PhysRange};
use crate::process::ProcessId;

/// A frame record's id.
pub type FrameId = Id<FrameRecord>;

/// A frame of an anonymous memory object and how many objects hold it.
#[derive(Debug)]
pub struct FrameRecord {
    /// Its physical address.
    pub physical: u64,
    /// The objects whose page it is: more than one while copy-on-write
    /// shares it.
    pub shares: u32,
}

/// What a memory object's pages are.
#[derive(Debug)]
pub enum MemoryFrames {
    /// Kernel frames, one per page.
    Anonymous(Vec<FrameId>),
    /// Pages a pager supplies when they are first touched (`crate::pager`).
    Special(crate::pager::Special),
    /// The physical range `[base, base + pages * PAGE_SIZE)`.
    Direct {
        /// The first byte.
        base: u64,
        /// Its length in pages.
        pages: u64,
        /// Whether it holds RAM (mapped cacheable) rather than device
        /// memory (mapped uncached), as the kernel's direct map does.
        cached: bool,
    },
}

/// A memory object.
#[derive(Debug)]
pub struct MemoryObject {
    /// Its pages.
    pub frames: MemoryFrames,
    /// Bytes charged for its pages beyond the object's own cost (given back
    /// to the creator, if it still lives, when the object goes).
    pub charge: u64,
}

impl MemoryObject {
    /// Its size in pages.
    pub fn pages(&self) -> u64 {
        match &self.frames {
            MemoryFrames::Anonymous(frames) => frames.len() as u64,
            MemoryFrames::Special(special) => special.pages.len() as u64,
            MemoryFrames::Direct { pages, .. } => *pages,
        }
    }

    /// The frame record of page `index`, if the object holds one there
    /// (never for a direct object, nor a special page not yet supplied).
    pub fn frame_at(&self, index: u64) -> Option<FrameId> {
        let index = usize::try_from(index).ok()?;
        match &self.frames {
            MemoryFrames::Anonymous(frames) => frames.get(index).copied(),
            MemoryFrames::Special(special) => special.pages.get(index).copied().flatten(),
            MemoryFrames::Direct { .. } => None,
        }
    }

    /// Every frame record it holds, once per page.
    pub fn frame_ids(&self) -> impl Iterator<Item = FrameId> + '_ {
        let (anonymous, special): (&[FrameId], &[Option<FrameId>]) = match &self.frames {
            MemoryFrames::Anonymous(frames) => (frames, &[]),
            MemoryFrames::Special(special) => (&[], &special.pages),
            MemoryFrames::Direct { .. } => (&[], &[]),
        };
        anonymous
            .iter()
            .copied()
            .chain(special.iter().flatten().copied())
    }

    /// The special object's pager state, if it is one.
    pub fn special(&self) -> Option<&crate::pager::Special> {
        match &self.frames {
            MemoryFrames::Special(special) => Some(special),
            _ => None,
        }
    }

    /// The special object's pager state, to change it.
    pub fn special_mut(&mut self) -> Option<&mut crate::pager::Special> {
        match &mut self.frames {
            MemoryFrames::Special(special) => Some(special),
            _ => None,
        }
    }

    /// Whether it is a direct physical range.
    pub fn is_direct(&self) -> bool {
        matches!(self.frames, MemoryFrames::Direct { .. })
    }
}

/// Kernel memory charged per page of an anonymous object or a
/// copy-on-write child: the frame, its record and its slot in the object.
pub const PAGE_COST: u64 = PAGE + 32;

/// Kernel memory charged per mapping of a memory object (its record).
pub const REGION_COST: u64 = 64;

/// One mapping of a memory object in a process's space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Its first address (page-aligned).
    pub start: u64,
    /// Its length in pages.
    pub pages: u64,
    /// The object mapped (the mapping holds one reference to it).
    pub object: ObjectId,
    /// The object's page mapped at `start`.
    pub offset: u64,
    /// Its protection (`abi::kcall::protection` bits).
    pub protection: u32,
    /// The widest protection the reference it was made through allowed.
    pub allowed: u32,
}

impl Region {
    /// One past its last address.
    pub const fn end(&self) -> u64 {
        self.start + self.pages * PAGE
    }

    /// The object page mapped at `address` (inside the mapping).
    pub const fn page_of(&self, address: u64) -> u64 {
        self.offset + (address - self.start) / PAGE
    }

    /// Where the object's page `page` (inside the mapping) is mapped.
    pub const fn address_of(&self, page: u64) -> u64 {
        self.start + (page - self.offset) * PAGE
    }

    /// Its part from `address` (a page boundary inside it) on.
    const fn from(self, address: u64) -> Region {
        Region {
            start: address,
            pages: (self.end() - address) / PAGE,
            offset: self.page_of(address),
            ..self
        }
    }

    /// Its part below `address` (a page boundary inside it).
    const fn below(self, address: u64) -> Region {
        Region {
            pages: (address - self.start) / PAGE,
            ..self
        }
    }

    /// Whether `address` lies strictly inside it (a cut there splits it).
    const fn straddles(&self, address: u64) -> bool {
        self.start < address && address < self.end()
    }
}

/// What became of a user page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A copy-on-write page was made writable: the thread retries.
    Resolved,
    /// No mapping allows the access: the faulting process ends.
    Violation,
    /// A copy was due and the machine had no frame (or a page request
    /// found no room): the faulting process ends.
    OutOfMemory,
    /// A special page was missing: the thread waits for its pager
    /// (`crate::pager`), and another thread was chosen to run.
    Waiting,
    /// A special page was missing and its pager's door is closed: the
    /// faulting process ends.
    PagerGone,
    /// A special page was missing and the faulting process owns the door of
    /// its pager, which would wait on itself: the process ends.
    PagerSelf,
}

impl Fault {
    /// Why the process ends, for the kernel's log ("" when it goes on).
    pub const fn reason(self) -> &'static str {
        match self {
            Fault::Resolved | Fault::Waiting => "",
            Fault::Violation => "no mapping allows the access",
            Fault::OutOfMemory => "no frame or room for the copy or the page request",
            Fault::PagerGone => "the pager of the special page touched is gone",
            Fault::PagerSelf => "a pager touched a special page that it supplies itself",
        }
    }
}

/// Whether `range` holds RAM the kernel owns: the frames it allocates
/// from (usable RAM), the kernel image and boot modules, and the boot
/// loader's structures it keeps. Firmware tables (ACPI), reserved ranges,
/// device memory and holes in the map are not the kernel's.
pub fn holds_kernel_ram(map: &MemoryMap, range: PhysRange) -> bool {
    use crate::boot_info::MemoryKind;
    map.regions().iter().any(|region| {
        matches!(
            region.kind,
            MemoryKind::Usable | MemoryKind::KernelAndModules | MemoryKind::BootloaderReclaimable
        ) && region.range.overlaps(&range)
    })
}

impl Kernel {
    /// How `object`'s page `index` is mapped by a mapping with `protection`:
    /// never writable while the frame is shared.
    pub(crate) fn page_mapping(
        &self,
        object: ObjectId,
        index: u64,
        protection: u32,
    ) -> Option<PageMapping> {
        let memory = self.objects.get(object)?.memory()?;
        match &memory.frames {
            MemoryFrames::Anonymous(_) | MemoryFrames::Special(_) => {
                let record = self.frames.get(memory.frame_at(index)?)?;
                let protection = if record.shares > 1 {
                    protection & !protection::WRITE
                } else {
                    protection
                };
                Some(PageMapping {
                    frame: record.physical,
                    protection,
                    cached: true,
                })
            }
            MemoryFrames::Direct {
                base,
                pages,
                cached,
            } => (index < *pages).then_some(PageMapping {
                frame: base + index * PAGE,
                protection,
                cached: *cached,
            }),
        }
    }

    /// Refuses before any work when `process`'s table has no room for the
    /// new object's reference.
    pub(crate) fn room_for_reference(&self, process: ProcessId) -> Result<(), Error> {
        if self.process(process)?.table.room() == 0 {
            return Err(Error::TableFull);
        }
        Ok(())
    }

    /// MEMORY_CREATE's work: an anonymous object of `pages` zeroed frames,
    /// charged to `process`, and its reference there (rights `MEMORY`).
    pub(crate) fn create_anonymous(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        pages: u64,
    ) -> Result<Descriptor, Error> {
        self.room_for_reference(process)?;
        let count = usize::try_from(pages).map_err(|_| Error::OutOfMemory)?;
        let charge = pages.checked_mul(PAGE_COST).ok_or(Error::OutOfMemory)?;
        // The charge first, so a request past the limit takes nothing; then
        // the heap (the frame list, the object, its reference, the frame
        // records), so running out of it takes no frame.
        self.process_mut(process)?.charge(charge)?;
        let mut frames = Vec::new();
        let reserved = frames
            .try_reserve_exact(count)
            .map_err(|_| Error::OutOfMemory)
            .and_then(|()| self.reserve_object(process, 1))
            .and_then(|()| self.frames.reserve(count));
        if let Err(error) = reserved {
            self.uncharge(process, charge);
            return Err(error);
        }
        for _ in 0..count {
            let made = machine.allocate_frame().and_then(|physical| {
                self.frames
                    .insert(FrameRecord {
                        physical,
                        shares: 1,
                    })
                    .inspect_err(|_| machine.free_frame(physical))
            });
            match made {
                Ok(frame) => frames.push(frame),
                Err(error) => {
                    self.drop_frames(machine, &frames);
                    self.uncharge(process, charge);
                    return Err(error);
                }
            }
        }
        self.install_memory(
            machine,
            process,
            MemoryFrames::Anonymous(frames),
            charge,
            Rights::MEMORY,
        )
    }

    /// MEMORY_COW's work: a child of `parent`'s pages `[offset, offset +
    /// pages)` (checked by the caller to lie inside an anonymous object)
    /// sharing their frames, charged to `process` as a full copy, and its
    /// reference there. The parent's mappings of those pages lose write
    /// access to them: the next write copies.
    pub(crate) fn create_cow(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        parent: ObjectId,
        offset: u64,
        pages: u64,
    ) -> Result<Descriptor, Error> {
        self.room_for_reference(process)?;
        let memory = self
            .objects
            .get(parent)
            .and_then(Object::memory)
            .ok_or(Error::WrongObjectType)?;
        let MemoryFrames::Anonymous(frames) = &memory.frames else {
            return Err(Error::InvalidArgument);
        };
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(offset + pages).ok())
            .and_then(|(first, end)| frames.get(first..end))
            .ok_or(Error::InvalidArgument)?;
        if range
            .iter()
            .any(|id| self.frames.get(*id).is_none_or(|r| r.shares == u32::MAX))
        {
            return Err(Error::OutOfMemory);
        }
        let mut shared = Vec::new();
        shared
            .try_reserve_exact(range.len())
            .map_err(|_| Error::OutOfMemory)?;
        shared.extend_from_slice(range);
        self.reserve_object(process, 1)?;
        let charge = pages.checked_mul(PAGE_COST).ok_or(Error::OutOfMemory)?;
        self.process_mut(process)?.charge(charge)?;
        for id in &shared {
            if let Some(record) = self.frames.get_mut(*id) {
                record.shares += 1;
            }
        }
        let child = self.install_memory(
            machine,
            process,
            MemoryFrames::Anonymous(shared),
            charge,
            Rights::MEMORY,
        )?;
        self.refresh_object_pages(machine, parent, offset, offset + pages);
        Ok(child)
    }

    /// MEMORY_DIRECT's work: an object over the physical pages `[base, base
    /// + pages * PAGE_SIZE)` (checked by the caller to be aligned and below
    /// the physical limit), refused with KERNEL_RAM when they hold RAM the
    /// kernel owns, and its reference in `process` (rights `DIRECT_MEMORY`).
    pub(crate) fn create_direct(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        base: u64,
        pages: u64,
    ) -> Result<Descriptor, Error> {
        let range = PhysRange::from_start_len(base, pages * PAGE);
        if holds_kernel_ram(machine.memory_map(), range) {
            return Err(Error::KernelRam);
        }
        self.room_for_reference(process)?;
        let cached = machine.memory_map().holds_ram(range);
        self.install_memory(
            machine,
            process,
            MemoryFrames::Direct {
                base,
                pages,
                cached,
            },
            0,
            Rights::DIRECT_MEMORY,
        )
    }

    /// Makes the memory object of `frames` (whose `charge` `process` already
    /// pays) and `process`'s reference to it with `rights`. On failure the
    /// frames' shares are dropped and the charge is given back: nothing
    /// is left changed.
    pub(crate) fn install_memory(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        frames: MemoryFrames,
        charge: u64,
        rights: Rights,
    ) -> Result<Descriptor, Error> {
        // The object is made empty, so that a failure to make it cannot
        // drop the frames with it; they move in once it exists.
        let shell = MemoryObject {
            frames: MemoryFrames::Anonymous(Vec::new()),
            charge: 0,
        };
        let object = match self.create_object(process, ObjectBody::Memory(shell)) {
            Ok(object) => object,
            Err(error) => {
                match &frames {
                    MemoryFrames::Anonymous(frames) => self.drop_frames(machine, frames),
                    MemoryFrames::Special(special) => {
                        self.release(special.pager);
                    }
                    MemoryFrames::Direct { .. } => {}
                }
                self.uncharge(process, charge);
                return Err(error);
            }
        };
        if let Some(memory) = self.objects.get_mut(object).and_then(Object::memory_mut) {
            *memory = MemoryObject { frames, charge };
        }
        match self.install_reference(process, object, rights) {
            Ok(descriptor) => Ok(descriptor),
            Err(error) => {
                // Nothing refers to it yet: count one and drop it to free it.
                self.retain(object);
                self.release_with(machine, object);
                Err(error)
            }
        }
    }

    /// Lets go of one share of each frame; those no object holds any more
    /// go back to the machine.
    pub(crate) fn drop_frames(&mut self, machine: &mut impl Machine, frames: &[FrameId]) {
        for id in frames {
            let Some(record) = self.frames.get_mut(*id) else {
                continue;
            };
            record.shares = record.shares.saturating_sub(1);
            if record.shares == 0
                && let Some(record) = self.frames.remove(*id)
            {
                machine.free_frame(record.physical);
            }
        }
    }

    /// Frees what a memory object that lost its last reference held.
    pub(crate) fn free_memory(
        &mut self,
        machine: &mut impl Machine,
        charged_to: ProcessId,
        memory: MemoryObject,
    ) {
        match &memory.frames {
            MemoryFrames::Anonymous(frames) => self.drop_frames(machine, frames),
            MemoryFrames::Special(special) => {
                // Requests hold the object, so none is in flight now.
                for frame in special.pages.iter().flatten() {
                    self.drop_frames(machine, &[*frame]);
                }
                self.release(special.pager);
            }
            MemoryFrames::Direct { .. } => {}
        }
        self.uncharge(charged_to, memory.charge);
    }

    /// Drops a reference to `object`; if it was the last, the object goes,
    /// and a memory object's frames with it (an interrupt object's line
    /// with it).
    pub(crate) fn release_with(&mut self, machine: &mut impl Machine, object: ObjectId) {
        if let Some(removed) = self.release(object) {
            match removed.body {
                ObjectBody::Memory(memory) => {
                    self.free_memory(machine, removed.charged_to, memory);
                }
                ObjectBody::Interrupt(interrupt) => self.interrupt_gone(machine, interrupt),
                ObjectBody::KernelLog(event) => self.log_gone(machine, event),
                // A process built by PROCESS_CREATE that no one can start
                // any more ends: nothing could reach it (ABI.md §6.8).
                ObjectBody::Process(process)
                    if self
                        .processes
                        .get(process)
                        .is_some_and(|p| p.unstarted.is_some()) =>
                {
                    self.end_process(machine, process, u32::MAX);
                }
                _ => {}
            }
        }
    }

    /// Gives back `bytes` of `process`'s charge (if it still lives).
    pub(crate) fn uncharge(&mut self, process: ProcessId, bytes: u64) {
        if let Some(p) = self.processes.get_mut(process) {
            p.uncharge(bytes);
        }
    }

    /// MEMORY_MAP's work: maps `object`'s pages `[offset, offset + pages)`
    /// (checked by the caller) at `address`, or where the kernel places
    /// them, in `process` with `protection`, remembering `allowed`; returns
    /// where. The mapping's record and the most page tables it can need are
    /// charged first; what the tables did not take is given back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map_object(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        object: ObjectId,
        address: Option<u64>,
        offset: u64,
        pages: u64,
        protection: u32,
        allowed: u32,
    ) -> Result<u64, Error> {
        let space = self.process(process)?.space;
        let length = pages * PAGE;
        let at = self.find_room_clear(machine, process, address, length)?;
        let tables = page_tables::bound(Some(at), length);
        let charge = tables + REGION_COST;
        let p = self.process_mut(process)?;
        p.regions.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        p.charge(charge)?;
        let mut made = 0;
        let special = self
            .objects
            .get(object)
            .and_then(Object::memory)
            .is_some_and(|m| m.special().is_some());
        for index in 0..pages {
            let page = self.page_mapping(object, offset + index, protection);
            if page.is_none() && special {
                // Not supplied yet: its first touch asks the pager.
                continue;
            }
            let mapped = page
                .ok_or(Error::InvalidArgument)
                .and_then(|page| machine.map_page(space, at + index * PAGE, page));
            match mapped {
                Ok(table_bytes) => made += table_bytes,
                Err(error) => {
                    // Only tables this call made can be emptied: the pages
                    // it mapped are the object's, so nothing else is freed.
                    let _ = machine.unmap(space, at, index * PAGE);
                    self.uncharge(process, charge);
                    return Err(error);
                }
            }
        }
        let region = Region {
            start: at,
            pages,
            object,
            offset,
            protection,
            allowed,
        };
        let p = self.process_mut(process)?;
        let index = p.regions.partition_point(|r| r.start < at);
        p.regions.insert(index, region);
        p.uncharge(tables.saturating_sub(made));
        self.retain(object);
        if address.is_none() {
            machine.placed(space, at, length);
        }
        Ok(at)
    }

    /// UNMAP's work: unmaps `[start, start + length)` (checked by the
    /// caller) in `process`, anonymous memory and mappings of memory
    /// objects alike. An object's frames stay with the object; a mapping
    /// wholly inside the range goes (and with it its reference to the
    /// object), one across an end is trimmed, and one across both ends
    /// becomes two, whose second record is charged first.
    pub(crate) fn unmap_range(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        start: u64,
        length: u64,
    ) -> Result<(), Error> {
        let end = start.checked_add(length).ok_or(Error::BadAddressRange)?;
        let p = self.process_mut(process)?;
        let space = p.space;
        let split = p
            .regions
            .iter()
            .any(|r| r.straddles(start) && r.straddles(end));
        let extra = if split { REGION_COST } else { 0 };
        if split {
            p.regions.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
            p.charge(REGION_COST)?;
        }
        let freed = match machine.unmap(space, start, length) {
            Ok(freed) => freed,
            Err(error) => {
                self.uncharge(process, extra);
                return Err(error);
            }
        };
        self.uncharge(process, freed);
        self.cut_regions(machine, process, start, end);
        Ok(())
    }

    /// Takes `[start, end)` out of `process`'s mappings (the machine has
    /// unmapped it already). Room for a split was reserved by the caller.
    fn cut_regions(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        start: u64,
        end: u64,
    ) {
        loop {
            let Some(p) = self.processes.get_mut(process) else {
                return;
            };
            let index = p.regions.partition_point(|r| r.end() <= start);
            let Some(&region) = p.regions.get(index).filter(|r| r.start < end) else {
                return;
            };
            if region.straddles(start) && region.straddles(end) {
                p.regions[index] = region.below(start);
                p.regions.insert(index + 1, region.from(end));
                self.retain(region.object);
                return;
            } else if region.straddles(start) {
                p.regions[index] = region.below(start);
            } else if region.straddles(end) {
                p.regions[index] = region.from(end);
                return;
            } else {
                p.regions.remove(index);
                p.uncharge(REGION_COST);
                self.release_with(machine, region.object);
            }
        }
    }

    /// PROTECT's work: `protection` over `[start, start + length)` (checked
    /// by the caller), which must be wholly mapped (BAD_ADDRESS_RANGE) and
    /// within what each mapping of a memory object in it allows
    /// (MISSING_RIGHT). Mappings across an end of the range are split, their
    /// new records charged first; shared frames stay read-only.
    pub(crate) fn protect_range(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        start: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        let end = start.checked_add(length).ok_or(Error::BadAddressRange)?;
        let p = self.process_mut(process)?;
        let space = p.space;
        let inside = |r: &Region| r.start < end && start < r.end();
        if p.regions
            .iter()
            .any(|r| inside(r) && protection & !r.allowed != 0)
        {
            return Err(Error::MissingRight);
        }
        let splits = p
            .regions
            .iter()
            .map(|r| u64::from(r.straddles(start)) + u64::from(r.straddles(end)))
            .sum::<u64>();
        p.regions
            .try_reserve(splits as usize)
            .map_err(|_| Error::OutOfMemory)?;
        p.charge(splits * REGION_COST)?;
        let protected = if self.maps_special(process) {
            // The holes of special mappings are mapped as far as PROTECT
            // goes: the machine protects the rest, checked whole first.
            self.outside_special(process, start, end, |at, length| {
                machine
                    .check_user(space, at, length as usize, false)
                    .map_err(|_| Error::BadAddressRange)
            })
            .and_then(|()| {
                self.outside_special(process, start, end, |at, length| {
                    machine.protect(space, at, length, protection)
                })
            })
        } else {
            machine.protect(space, start, length, protection)
        };
        if let Err(error) = protected {
            self.uncharge(process, splits * REGION_COST);
            return Err(error);
        }
        self.split_region_at(process, start);
        self.split_region_at(process, end);
        let mut index = self
            .process(process)?
            .regions
            .partition_point(|r| r.end() <= start);
        while let Some(region) = self
            .processes
            .get_mut(process)
            .and_then(|p| p.regions.get_mut(index))
            .filter(|r| r.start < end)
        {
            region.protection = protection;
            let region = *region;
            for page in region.offset..region.offset + region.pages {
                if let Some(mapping) = self.page_mapping(region.object, page, protection) {
                    let _ = machine.remap_page(space, region.address_of(page), mapping);
                }
            }
            index += 1;
        }
        Ok(())
    }

    /// Splits the mapping of `process` across `address` in two (room and
    /// charge reserved by the caller).
    fn split_region_at(&mut self, process: ProcessId, address: u64) {
        let Some(p) = self.processes.get_mut(process) else {
            return;
        };
        let index = p.regions.partition_point(|r| r.end() <= address);
        let Some(&region) = p.regions.get(index).filter(|r| r.straddles(address)) else {
            return;
        };
        p.regions[index] = region.below(address);
        p.regions.insert(index + 1, region.from(address));
        self.retain(region.object);
    }

    /// Maps `object`'s pages `[first, end)` again wherever any process maps
    /// them, as they are now (a frame replaced, or shared or no longer).
    pub(crate) fn refresh_object_pages(
        &self,
        machine: &mut impl Machine,
        object: ObjectId,
        first: u64,
        end: u64,
    ) {
        for process in self.processes.ids() {
            let Some(p) = self.processes.get(process) else {
                continue;
            };
            for region in p.regions.iter().filter(|r| r.object == object) {
                for page in first.max(region.offset)..end.min(region.offset + region.pages) {
                    if let Some(mapping) = self.page_mapping(object, page, region.protection) {
                        let _ = machine.remap_page(p.space, region.address_of(page), mapping);
                    }
                }
            }
        }
    }

    /// A user page fault of the current thread: a write to a page whose
    /// mapping allows writes is resolved (the page's frame copied first if
    /// it is shared); anything else is the process's fault, which the
    /// caller then ends ([`Kernel::fault`]).
    pub fn page_fault(&mut self, machine: &mut impl Machine, fault: PageFault) -> Fault {
        let Some(thread) = self.current else {
            return Fault::Violation;
        };
        let Ok(process) = self.process_of(thread) else {
            return Fault::Violation;
        };
        if !fault.present {
            return self.missing_page(machine, thread, process, fault);
        }
        if !fault.write || fault.execute {
            return Fault::Violation;
        }
        self.resolve_write(machine, process, fault.address)
    }

    /// Makes the page at `address` of `process` writable if a mapping of a
    /// memory object there allows writes: its object gets a frame of its
    /// own (a copy) if it shares it, and every mapping of that page is
    /// brought up to date.
    pub(crate) fn resolve_write(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        address: u64,
    ) -> Fault {
        let Some((_, &region)) = self
            .processes
            .get(process)
            .and_then(|p| p.region_at(address))
        else {
            return Fault::Violation;
        };
        if region.protection & protection::WRITE == 0 {
            return Fault::Violation;
        }
        let page = region.page_of(address);
        let memory = self.objects.get(region.object).and_then(Object::memory);
        if memory.is_some_and(|m| m.special().is_some() && m.frame_at(page).is_none()) {
            // A special page not supplied yet: only a user fault asks the
            // pager; a kernel write into it is BAD_BUFFER (ABI.md §6.4).
            return Fault::Violation;
        }
        let shared = memory
            .and_then(|memory| memory.frame_at(page))
            .and_then(|id| self.frames.get(id).map(|record| (id, record)))
            .filter(|(_, record)| record.shares > 1)
            .map(|(id, record)| (id, record.physical));
        if let Some((id, physical)) = shared {
            let Ok(copy) = machine.allocate_frame() else {
                return Fault::OutOfMemory;
            };
            let Ok(new) = self.frames.insert(FrameRecord {
                physical: copy,
                shares: 1,
            }) else {
                machine.free_frame(copy);
                return Fault::OutOfMemory;
            };
            machine.copy_frame(physical, copy);
            if let Some(record) = self.frames.get_mut(id) {
                record.shares -= 1;
            }
            match self
                .objects
                .get_mut(region.object)
                .and_then(Object::memory_mut)
                .map(|memory| &mut memory.frames)
            {
                Some(MemoryFrames::Anonymous(frames)) => {
                    if let Some(slot) = frames.get_mut(page as usize) {
                        *slot = new;
                    }
                }
                Some(MemoryFrames::Special(special)) => {
                    if let Some(slot) = special.pages.get_mut(page as usize) {
                        *slot = Some(new);
                    }
                }
                _ => {}
            }
        }
        self.refresh_object_pages(machine, region.object, page, page + 1);
        Fault::Resolved
    }

    /// The kernel is about to write `[address, address + length)` of
    /// `space` (a message or a reply) and found it not writable: the
    /// copy-on-write pages in it whose mappings allow writes get their
    /// copies, as a user write would, and the range is checked again.
    #[cold]
    #[inline(never)]
    pub(crate) fn writable_after_copy(
        &mut self,
        machine: &mut impl Machine,
        space: crate::process::SpaceId,
        address: u64,
        length: usize,
    ) -> Result<(), Error> {
        let process = self
            .processes
            .ids()
            .find(|p| self.processes.get(*p).is_some_and(|p| p.space == space))
            .ok_or(Error::BadBuffer)?;
        let end = address.saturating_add(length as u64);
        let mut page = address & !(PAGE - 1);
        while page < end {
            let writable = self
                .processes
                .get(process)
                .and_then(|p| p.region_at(page))
                .is_some_and(|(_, r)| r.protection & protection::WRITE != 0);
            if writable {
                let _ = self.resolve_write(machine, process, page);
            }
            let Some(next) = page.checked_add(PAGE) else {
                break;
            };
            page = next;
        }
        machine.check_user(space, address, length, true)
    }
}
