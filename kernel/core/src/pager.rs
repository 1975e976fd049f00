//! Special memory objects and their pagers (issue 9, "Special / pagers";
//! ABI.md §6.4): an object whose pages a server supplies the first time a
//! thread touches them.
//!
//! A user fault on a missing page becomes a PAGE_REQUEST on the pager's
//! door; the faulting thread blocks (`ThreadState::Paging`), and so does
//! every other thread that touches the same page meanwhile: one request
//! per page is in flight. The pager's REPLY supplies the page (DATA: bytes
//! into a fresh frame; FRAME: a frame of its own memory object, shared
//! copy-on-write), forwards the request to the next pager's door (at most
//! `MAX_PAGER_HOPS` times), or, as an error reply, ends the faulting
//! processes. A supplied page stays with the object, so no later fault
//! asks again.
//!
//! Nothing waits forever: a request whose pager door dies, whose server
//! thread dies or receives again without replying ends the processes
//! waiting on it (each logged, [`PagerFailure`]). A request holds one
//! reference to its object and one to the door it is queued at or was
//! received through, so a process killed while it waits frees nothing of
//! anyone else's and leaks nothing: the reply still lands in the object.
//!
//! Must never block inside the kernel: a kernel copy into or out of a
//! missing page is BAD_BUFFER, and a pager's own fault on a page its door
//! supplies ends it instead of waiting on itself.

use abi::kcall::{MAX_PAGER_HOPS, PageRequest, PageSupply, REPLY_PAYLOAD_OFFSET, page_supply};
use abi::trap::ReplyArgs;
use abi::{Descriptor, Error, KernelFunction, MessageLayout, MessageSizes, Rights, TrapArgs};
use alloc::vec::Vec;
use zerocopy::{FromBytes, IntoBytes};

use crate::kernel::{Kernel, Outcome};
use crate::machine::{Machine, PageFault};
use crate::memory_object::{Fault, FrameId, FrameRecord, MemoryFrames, PAGE_COST};
use crate::object::{Object, ObjectId};
use crate::page_tables;
use crate::phys::PAGE_SIZE as PAGE;
use crate::process::ProcessId;
use crate::thread::{Holding, ThreadId, ThreadState};

/// A special object's pager state.
#[derive(Debug)]
pub struct Special {
    /// The door page requests go to first (one reference held).
    pub pager: ObjectId,
    /// Delivered with each request (PAGER_CREATE's).
    pub cookie: u64,
    /// One entry per page: its frame once supplied.
    pub pages: Vec<Option<FrameId>>,
    /// The requests in flight, one per page at most.
    pub requests: Vec<PageRequestRecord>,
}

/// A page request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequestRecord {
    /// The page asked for.
    pub page: u64,
    /// The door it is queued at, or was received through (one reference held).
    pub door: ObjectId,
    /// FORWARDs so far.
    pub hops: u32,
    /// The access of the fault that started it (`protection` bits).
    pub access: u32,
    /// The pager thread holding it, once received.
    pub server: Option<ThreadId>,
}

/// Why processes waiting on a page ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagerFailure {
    /// The pager answered with this error number.
    ErrorReply(u32),
    /// The pager's door closed, or its server thread ended, first.
    PagerGone,
    /// The pager thread received again without answering.
    Abandoned,
}

impl PagerFailure {
    /// For the kernel's log.
    pub const fn reason(self) -> &'static str {
        match self {
            PagerFailure::ErrorReply(_) => "its pager answered a page request with an error",
            PagerFailure::PagerGone => "its pager went away during a page request",
            PagerFailure::Abandoned => "its pager received again without answering a page request",
        }
    }
}

/// Processes ended by a failed page request, kept for the log (the oldest
/// go first when the arch layer does not take them).
pub(crate) const MAX_PAGER_LOG: usize = 64;

/// The data size of a PAGE_REQUEST.
const REQUEST_SIZE: u16 = size_of::<PageRequest>() as u16;

impl Kernel {
    /// PAGER_CREATE's work: a special object of `pages` missing pages whose
    /// requests go to `door`, charged to `process` as if every page were
    /// supplied (so a supply never fails for the quota), and its
    /// reference there (rights `MEMORY`).
    pub(crate) fn create_special(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        door: ObjectId,
        pages: u64,
        cookie: u64,
    ) -> Result<Descriptor, Error> {
        self.room_for_reference(process)?;
        let count = usize::try_from(pages).map_err(|_| Error::OutOfMemory)?;
        let charge = pages.checked_mul(PAGE_COST).ok_or(Error::OutOfMemory)?;
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(count)
            .map_err(|_| Error::OutOfMemory)?;
        slots.resize(count, None);
        self.process_mut(process)?.charge(charge)?;
        self.retain(door);
        let special = Special {
            pager: door,
            cookie,
            pages: slots,
            requests: Vec::new(),
        };
        self.install_memory(
            machine,
            process,
            MemoryFrames::Special(special),
            charge,
            Rights::MEMORY,
        )
    }

    /// A user fault on a page that is not present: a special page not
    /// supplied yet, touched as its mapping allows, asks its pager and the
    /// thread waits; anything else is the process's fault.
    pub(crate) fn missing_page(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        process: ProcessId,
        fault: PageFault,
    ) -> Fault {
        use abi::kcall::protection::{EXECUTE, READ, WRITE};
        let Some((_, &region)) = self
            .processes
            .get(process)
            .and_then(|p| p.region_at(fault.address))
        else {
            return Fault::Violation;
        };
        let access = if fault.execute {
            EXECUTE
        } else if fault.write {
            WRITE
        } else {
            READ
        };
        if region.protection & access == 0 {
            return Fault::Violation;
        }
        let page = region.page_of(fault.address);
        let object = region.object;
        let Some(special) = self.special(object) else {
            return Fault::Violation;
        };
        if special
            .pages
            .get(page as usize)
            .is_some_and(Option::is_some)
        {
            // Supplied, and not shown here: its page tables could not be
            // had when it arrived.
            self.show_supplied_page(machine, object, page);
            let shown = self
                .processes
                .get(process)
                .is_some_and(|p| machine.check_user(p.space, fault.address, 1, false).is_ok());
            return if shown {
                Fault::Resolved
            } else {
                Fault::OutOfMemory
            };
        }
        let pager = special.pager;
        let in_flight = special.requests.iter().any(|r| r.page == page);
        if !in_flight {
            match self.door(pager).map(|d| d.owner) {
                Ok(Some(owner)) if owner == process => return Fault::PagerSelf,
                Ok(Some(_)) => {}
                _ => return Fault::PagerGone,
            }
            let room = self
                .door(pager)
                .and_then(|d| crate::ipc::room_for_one(&mut d.page_requests))
                .and_then(|()| {
                    self.special_mut(object)
                        .ok_or(Error::WrongObjectType)?
                        .requests
                        .try_reserve(1)
                        .map_err(|_| Error::OutOfMemory)
                });
            if room.is_err() {
                return Fault::OutOfMemory;
            }
            if let Some(special) = self.special_mut(object) {
                special.requests.push(PageRequestRecord {
                    page,
                    door: pager,
                    hops: 0,
                    access,
                    server: None,
                });
            }
            self.retain(object);
            self.retain(pager);
            if let Ok(door) = self.door(pager) {
                door.page_requests.push_back((object, page));
            }
        }
        self.block(thread, ThreadState::Paging { object, page });
        if !in_flight {
            self.offer_page_requests(machine, pager);
        }
        self.reschedule();
        Fault::Waiting
    }

    fn special(&self, object: ObjectId) -> Option<&Special> {
        self.objects.get(object)?.memory()?.special()
    }

    fn special_mut(&mut self, object: ObjectId) -> Option<&mut Special> {
        self.objects.get_mut(object)?.memory_mut()?.special_mut()
    }

    fn request_record(&self, object: ObjectId, page: u64) -> Option<PageRequestRecord> {
        self.special(object)?
            .requests
            .iter()
            .find(|r| r.page == page)
            .copied()
    }

    /// Hands the door's queued page requests to threads waiting in RECEIVE
    /// on it, as a SEND would.
    fn offer_page_requests(&mut self, machine: &mut impl Machine, door_id: ObjectId) {
        loop {
            let Ok(door) = self.door(door_id) else { return };
            if door.page_requests.is_empty() {
                return;
            }
            let Some(receiver) = door.receivers.pop_front() else {
                return;
            };
            self.release(door_id);
            let Some(ThreadState::Receiving {
                buffer, total_size, ..
            }) = self.threads.get(receiver).map(|t| t.state)
            else {
                continue;
            };
            match self.receive_page_request(machine, receiver, door_id, buffer, total_size) {
                Ok(Some(registers)) => self.wake(receiver, registers),
                Ok(None) => return,
                Err(error) => self.wake(receiver, TrapArgs::error(error)),
            }
        }
    }

    /// Hands the oldest page request queued on the door to `thread`
    /// (receiving into `buffer` of `total_size`): RECEIVE's answer.
    pub(crate) fn receive_page_request(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        door_id: ObjectId,
        buffer: u64,
        total_size: u16,
    ) -> Outcome {
        let Some(&(object, page)) = self.door(door_id)?.page_requests.front() else {
            return Ok(None);
        };
        // The total is the room the reply has: a whole message.
        let sizes = MessageSizes::new()
            .with_total_size(abi::message::MAX_TOTAL_SIZE)
            .with_data_size(REQUEST_SIZE);
        if total_size < REQUEST_SIZE {
            return Ok(Some(TrapArgs::receive_too_small(sizes)));
        }
        let record = self.request_record(object, page);
        let cookie = self.special(object).map_or(0, |s| s.cookie);
        let request = PageRequest::new(
            cookie,
            page * PAGE,
            record.map_or(0, |r| r.access),
            record.map_or(0, |r| r.hops),
        );
        let process = self.process_of(thread)?;
        let space = self.process(process)?.space;
        machine.write_user(space, buffer, request.as_bytes())?;
        self.door(door_id)?.page_requests.pop_front();
        if let Some(r) = self
            .special_mut(object)
            .and_then(|s| s.requests.iter_mut().find(|r| r.page == page))
        {
            r.server = Some(thread);
        }
        if let Some(t) = self.threads.get_mut(thread) {
            t.holding = Holding::Page {
                object,
                page,
                door: door_id,
            };
        }
        let function = KernelFunction::PageRequest.function();
        Ok(Some(TrapArgs::received(function, cookie, buffer, sizes)))
    }

    /// REPLY to a page request held by `thread`: supplies the page,
    /// forwards the request, or (an error reply) ends the processes
    /// waiting on it. A refused reply changes nothing: the request stays
    /// held and its threads keep waiting.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer_page(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        args: ReplyArgs,
        layout: MessageLayout,
        buffer_checked: bool,
        object: ObjectId,
        page: u64,
    ) -> Outcome {
        let process = self.process_of(thread)?;
        let space = self.process(process)?.space;
        if layout.total_size > 0 && !buffer_checked {
            machine.check_user(space, args.buffer, usize::from(layout.total_size), false)?;
        }
        if layout.descriptor_count != 0 || usize::from(layout.data_size) < REPLY_PAYLOAD_OFFSET {
            return Err(Error::BadSizes);
        }
        let mut head = [0u8; REPLY_PAYLOAD_OFFSET];
        machine.read_user(space, args.buffer, &mut head)?;
        let errno = abi::trap::errno_of(&head);
        if errno != 0 {
            self.end_service(thread);
            self.fail_page_request(machine, object, page, PagerFailure::ErrorReply(errno));
            return Ok(Some(TrapArgs::default()));
        }
        let header_end = REPLY_PAYLOAD_OFFSET + size_of::<PageSupply>();
        if usize::from(layout.data_size) < header_end {
            return Err(Error::BadSizes);
        }
        let mut raw = [0u8; size_of::<PageSupply>()];
        machine.read_user(space, args.buffer + REPLY_PAYLOAD_OFFSET as u64, &mut raw)?;
        let supply = PageSupply::read_from_bytes(&raw).map_err(|_| Error::BadSizes)?;
        match supply.how {
            page_supply::DATA => {
                if supply.descriptor != 0 || supply.offset != 0 {
                    return Err(Error::ReservedBits);
                }
                let data = args.buffer + header_end as u64;
                let length = usize::from(layout.data_size) - header_end;
                let frame = self.frame_from_user(machine, space, data, length)?;
                self.end_service(thread);
                self.install_supplied(machine, object, page, frame);
            }
            page_supply::FRAME => {
                let (source, index) = self.supplied_frame(process, supply)?;
                let frame = source.1;
                if let Some(record) = self.frames.get_mut(frame) {
                    record.shares += 1;
                }
                self.end_service(thread);
                // The pager's own mappings of the page lose WRITE: both
                // objects share the frame copy-on-write from now on.
                self.refresh_object_pages(machine, source.0, index, index + 1);
                self.install_supplied(machine, object, page, frame);
            }
            page_supply::FORWARD => {
                if supply.offset != 0 {
                    return Err(Error::ReservedBits);
                }
                self.forward(machine, thread, process, supply, object, page)?;
            }
            _ => return Err(Error::InvalidArgument),
        }
        Ok(Some(TrapArgs::default()))
    }

    /// A fresh frame holding `length` bytes of `space` from `data`, the
    /// rest zero (OUT_OF_MEMORY, BAD_BUFFER; nothing kept on failure).
    fn frame_from_user(
        &mut self,
        machine: &mut impl Machine,
        space: crate::process::SpaceId,
        data: u64,
        length: usize,
    ) -> Result<FrameId, Error> {
        let physical = machine.allocate_frame()?;
        let mut bounce = [0u8; 256];
        let mut done = 0;
        while done < length {
            let chunk = (length - done).min(bounce.len());
            if let Err(error) = machine.read_user(space, data + done as u64, &mut bounce[..chunk]) {
                machine.free_frame(physical);
                return Err(error);
            }
            machine.write_frame(physical, done, &bounce[..chunk]);
            done += chunk;
        }
        self.frames
            .insert(FrameRecord {
                physical,
                shares: 1,
            })
            .inspect_err(|_| machine.free_frame(physical))
    }

    /// The frame a FRAME supply names: page `offset` of a memory object of
    /// the pager's (MAP_READ needed), which must hold a frame there.
    fn supplied_frame(
        &self,
        process: ProcessId,
        supply: PageSupply,
    ) -> Result<((ObjectId, FrameId), u64), Error> {
        let reference = *self
            .process(process)?
            .table
            .get(Descriptor(supply.descriptor))?;
        let memory = self
            .objects
            .get(reference.object)
            .and_then(Object::memory)
            .ok_or(Error::WrongObjectType)?;
        if !reference.rights.contains(Rights::MAP_READ) {
            return Err(Error::MissingRight);
        }
        if !supply.offset.is_multiple_of(PAGE) || supply.offset / PAGE >= memory.pages() {
            return Err(Error::InvalidArgument);
        }
        let index = supply.offset / PAGE;
        let frame = memory.frame_at(index).ok_or(Error::InvalidArgument)?;
        if self.frames.get(frame).is_none_or(|r| r.shares == u32::MAX) {
            return Err(Error::OutOfMemory);
        }
        Ok(((reference.object, frame), index))
    }

    /// FORWARD: the request held by `thread` goes to the door the supply
    /// names (SEND needed, alive), as received by nobody yet.
    fn forward(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        process: ProcessId,
        supply: PageSupply,
        object: ObjectId,
        page: u64,
    ) -> Result<(), Error> {
        let reference = *self
            .process(process)?
            .table
            .get(Descriptor(supply.descriptor))?;
        let next = reference.object;
        let alive = self.door(next)?.owner.is_some();
        if !reference.rights.contains(Rights::SEND) {
            return Err(Error::MissingRight);
        }
        if !alive {
            return Err(Error::PeerDied);
        }
        let record = self
            .request_record(object, page)
            .ok_or(Error::NothingToReply)?;
        if record.hops >= MAX_PAGER_HOPS {
            return Err(Error::InvalidArgument);
        }
        crate::ipc::room_for_one(&mut self.door(next)?.page_requests)?;
        if let Some(r) = self
            .special_mut(object)
            .and_then(|s| s.requests.iter_mut().find(|r| r.page == page))
        {
            r.door = next;
            r.hops += 1;
            r.server = None;
        }
        self.retain(next);
        self.release(record.door);
        self.door(next)?.page_requests.push_back((object, page));
        self.end_service(thread);
        self.offer_page_requests(machine, next);
        Ok(())
    }

    /// The page arrived: it stays with the object, every mapping shows it,
    /// and the threads waiting on it retry their access.
    fn install_supplied(
        &mut self,
        machine: &mut impl Machine,
        object: ObjectId,
        page: u64,
        frame: FrameId,
    ) {
        let Some(record) = self.take_request(object, page) else {
            self.drop_frames(machine, &[frame]);
            return;
        };
        if let Some(slot) = self
            .special_mut(object)
            .and_then(|s| s.pages.get_mut(page as usize))
        {
            *slot = Some(frame);
        }
        self.release(record.door);
        // A walk by slot, not a collected list: nothing here allocates.
        for index in 0..self.threads.slot_count() {
            let Some(t) = self.threads.id_at(index) else {
                continue;
            };
            let waiting = matches!(
                self.threads.get(t).map(|t| t.state),
                Some(ThreadState::Paging { object: o, page: p }) if o == object && p == page
            );
            if waiting {
                // No registers: the thread goes back to the faulting access.
                self.make_ready(t);
            }
        }
        self.show_supplied_page(machine, object, page);
        self.release_with(machine, object);
    }

    /// Maps a page just supplied wherever the object is mapped over it; the
    /// page tables that takes are charged to the mapping process, and a
    /// process past its limit (or a machine out of frames) is left without
    /// it: its touch then ends it (OUT_OF_MEMORY), nothing else does.
    fn show_supplied_page(&mut self, machine: &mut impl Machine, object: ObjectId, page: u64) {
        for index in 0..self.processes.slot_count() {
            let Some(process) = self.processes.id_at(index) else {
                continue;
            };
            let mut at = 0;
            while let Some((space, region)) = self.processes.get(process).and_then(|p| {
                p.regions
                    .iter()
                    .skip(at)
                    .find(|r| r.object == object && r.offset <= page && page < r.offset + r.pages)
                    .map(|r| (p.space, *r))
            }) {
                at = self.processes.get(process).map_or(usize::MAX, |p| {
                    p.regions.partition_point(|r| r.start <= region.start)
                });
                let Some(mapping) = self.page_mapping(object, page, region.protection) else {
                    continue;
                };
                let address = region.address_of(page);
                if machine.check_user(space, address, 1, false).is_ok() {
                    let _ = machine.remap_page(space, address, mapping);
                    continue;
                }
                let room = self.processes.get(process).is_some_and(|p| {
                    p.charged
                        .saturating_add(page_tables::bound(Some(address), PAGE))
                        <= p.limit
                });
                if !room {
                    continue;
                }
                if let Ok(tables) = machine.map_page(space, address, mapping)
                    && let Some(p) = self.processes.get_mut(process)
                {
                    p.charged = p.charged.saturating_add(tables);
                }
            }
        }
    }

    /// Takes the request for `page` out of the object's list.
    fn take_request(&mut self, object: ObjectId, page: u64) -> Option<PageRequestRecord> {
        let special = self.special_mut(object)?;
        let index = special.requests.iter().position(|r| r.page == page)?;
        Some(special.requests.remove(index))
    }

    /// The request for `page` failed: the processes of the threads waiting
    /// on it end (logged), and its references go. The caller has taken it
    /// off its door's queue or out of its server's hands.
    pub(crate) fn fail_page_request(
        &mut self,
        machine: &mut impl Machine,
        object: ObjectId,
        page: u64,
        failure: PagerFailure,
    ) {
        let Some(record) = self.take_request(object, page) else {
            return;
        };
        self.release(record.door);
        for index in 0..self.threads.slot_count() {
            let Some(t) = self.threads.id_at(index) else {
                continue;
            };
            let Some(th) = self.threads.get(t) else {
                continue;
            };
            let waiting = matches!(th.state,
                ThreadState::Paging { object: o, page: p } if o == object && p == page);
            if !waiting {
                continue;
            }
            let process = th.process;
            let cookie = self.processes.get(process).map_or(0, |p| p.manager_cookie);
            if self.pager_log.len() >= MAX_PAGER_LOG {
                self.pager_log.remove(0);
            }
            if self.pager_log.try_reserve(1).is_ok() {
                self.pager_log.push((cookie, failure));
            }
            self.end_process(machine, process, u32::MAX);
        }
        self.release_with(machine, object);
    }

    /// The door's owner reference closed: every page request queued on it
    /// or held by a thread that received it there fails.
    pub(crate) fn fail_door_page_requests(&mut self, machine: &mut impl Machine, door: ObjectId) {
        while let Some((object, page)) = self
            .door(door)
            .ok()
            .and_then(|d| d.page_requests.pop_front())
        {
            self.fail_page_request(machine, object, page, PagerFailure::PagerGone);
        }
        for index in 0..self.threads.slot_count() {
            let Some(server) = self.threads.id_at(index) else {
                continue;
            };
            let Some(s) = self.threads.get_mut(server) else {
                continue;
            };
            let Holding::Page {
                object,
                page,
                door: via,
            } = s.holding
            else {
                continue;
            };
            if via != door {
                continue;
            }
            s.holding = Holding::Cancelled { door };
            self.fail_page_request(machine, object, page, PagerFailure::PagerGone);
        }
    }

    /// Requests whose server thread ended (its process died, or it exited)
    /// fail: nothing waits on a pager that is gone.
    pub(crate) fn fail_orphaned_page_requests(&mut self, machine: &mut impl Machine) {
        loop {
            let orphan = self.objects.ids().find_map(|o| {
                let special = self.special(o)?;
                let r = special.requests.iter().find(|r| {
                    r.server.is_some_and(|s| {
                        !self.threads.contains(s) || !self.holds_request(s, o, r.page)
                    })
                })?;
                Some((o, r.page))
            });
            let Some((object, page)) = orphan else {
                return;
            };
            self.fail_page_request(machine, object, page, PagerFailure::PagerGone);
        }
    }

    fn holds_request(&self, thread: ThreadId, object: ObjectId, page: u64) -> bool {
        matches!(self.threads.get(thread).map(|t| t.holding),
            Some(Holding::Page { object: o, page: p, .. }) if o == object && p == page)
    }

    /// Whether `process` maps a special object: its mappings may then have
    /// holes (pages not supplied) that the machine's page tables show as
    /// free, which nothing else may be mapped into.
    pub(crate) fn maps_special(&self, process: ProcessId) -> bool {
        self.processes
            .get(process)
            .is_some_and(|p| p.regions.iter().any(|r| self.special(r.object).is_some()))
    }

    /// [`Machine::find_room`], also keeping clear of `process`'s mappings
    /// of memory objects (their holes): a fixed range that overlaps one is
    /// BAD_ADDRESS_RANGE; a placed one goes above the machine's choice, past
    /// each mapping in its way and a guard page.
    pub(crate) fn find_room_clear(
        &self,
        machine: &impl Machine,
        process: ProcessId,
        address: Option<u64>,
        length: u64,
    ) -> Result<u64, Error> {
        let p = self.process(process)?;
        let space = p.space;
        let at = machine.find_room(space, address, length)?;
        if !self.maps_special(process) {
            return Ok(at);
        }
        let clear = |at: u64, guard: u64| {
            let (low, high) = (at.saturating_sub(guard), at.saturating_add(length + guard));
            !p.regions.iter().any(|r| r.start < high && low < r.end())
        };
        if address.is_some() {
            return if clear(at, 0) {
                Ok(at)
            } else {
                Err(Error::BadAddressRange)
            };
        }
        if clear(at, PAGE) {
            return Ok(at);
        }
        // Past each mapping, lowest first: the first spot where the machine
        // sees the range and its guards free and no mapping lies.
        p.regions
            .iter()
            .map(|r| r.end() + PAGE)
            .filter(|candidate| *candidate >= at)
            .find(|&candidate| {
                clear(candidate, PAGE)
                    && machine
                        .find_room(space, Some(candidate - PAGE), length + 2 * PAGE)
                        .is_ok()
                    && candidate + length + PAGE <= crate::placement::MAP_AREA_END
            })
            .ok_or(Error::BadAddressRange)
    }

    /// The parts of `[start, end)` that no mapping of a special object
    /// covers, lowest first, given to `each` until it fails.
    pub(crate) fn outside_special(
        &self,
        process: ProcessId,
        start: u64,
        end: u64,
        mut each: impl FnMut(u64, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let p = self.process(process)?;
        let mut cursor = start;
        for r in p
            .regions
            .iter()
            .filter(|r| r.start < end && start < r.end() && self.special(r.object).is_some())
        {
            if r.start > cursor {
                each(cursor, r.start - cursor)?;
            }
            cursor = cursor.max(r.end());
        }
        if cursor < end {
            each(cursor, end - cursor)?;
        }
        Ok(())
    }

    /// The oldest logged end of a process by a failed page request: its
    /// manager cookie and why.
    pub fn pop_pager_failure(&mut self) -> Option<(u64, PagerFailure)> {
        if self.pager_log.is_empty() {
            None
        } else {
            Some(self.pager_log.remove(0))
        }
    }
}
