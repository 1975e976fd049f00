//! The four operations: SEND, RECEIVE, REPLY, REPLY_RECEIVE, and the
//! message transfer between two address spaces that they share.
//!
//! Messages are copied at the rendezvous, never buffered in the kernel: a
//! queued caller keeps its message in its own buffer until a server
//! receives it, so a queued call costs the kernel no memory, and descriptors
//! are checked and moved at the moment of delivery.

use abi::function::FunctionRange;
use abi::message::{DescriptorSlot, SLOT_SIZE};
use abi::trap::REPLY_DELIVERED;
use abi::trap::{ReceiveArgs, ReplyArgs, SendArgs};
use abi::{Descriptor, Error, MessageLayout, MessageSizes, Rights, TransferMode, TrapArgs};
use alloc::vec::Vec;
use zerocopy::{FromBytes, IntoBytes};

use crate::descriptor_table::Reference;
use crate::kernel::{Kernel, Outcome};
use crate::machine::{CopyFault, Machine};
use crate::object::ObjectId;
use crate::process::{DESCRIPTOR_COST, ProcessId};
use crate::thread::{CallRecord, Holding, ThreadId, ThreadState};

/// Notices kept for a process manager that does not receive them.
pub(crate) const MAX_NOTICES: usize = 4096;

/// Makes sure one more entry fits in `queue` without allocating later
/// (OUT_OF_MEMORY when it cannot grow). Inline, and only a comparison when
/// there is room: threads block on doors on every call.
#[inline(always)]
pub(crate) fn room_for_one<T>(queue: &mut alloc::collections::VecDeque<T>) -> Result<(), Error> {
    if queue.len() < queue.capacity() {
        return Ok(());
    }
    queue.try_reserve(1).map_err(|_| Error::OutOfMemory)
}

/// Copies the first `length` bytes of a message from `source` to
/// `destination`, putting (up to) the first 8 in `head`; a fault is the
/// side's BAD_BUFFER.
#[inline(always)]
fn copy_data(
    machine: &mut impl Machine,
    source: End,
    destination: End,
    length: u16,
    head: &mut [u8; 8],
) -> Result<(), Failure> {
    if length == 0 {
        return Ok(());
    }
    machine
        .copy_between(
            source.space,
            source.buffer,
            destination.space,
            destination.buffer,
            usize::from(length),
            head,
        )
        .map_err(|fault| match fault {
            CopyFault::Source => Failure::Source(Error::BadBuffer),
            CopyFault::Destination => Failure::Destination(Error::BadBuffer),
        })
}

/// Which side of a transfer a failure belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The side whose buffer and descriptors are read.
    Source(Error),
    /// The side whose buffer is written.
    Destination(Error),
}

/// One end of a transfer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct End {
    pub process: ProcessId,
    pub space: crate::process::SpaceId,
    pub buffer: u64,
}

/// What a completed transfer delivered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivered {
    /// Data size and descriptor count (total size 0).
    pub sizes: MessageSizes,
    /// msgRetVal and msgErrno as the data defines them.
    pub ret_val: u32,
    pub errno: u32,
}

impl Delivered {
    /// What a message of `layout` whose first bytes are `head` delivers.
    fn of(layout: MessageLayout, head: &[u8; 8]) -> Self {
        let data = &head[..usize::from(layout.data_size).min(8)];
        Delivered {
            sizes: MessageSizes::new()
                .with_data_size(layout.data_size)
                .with_descriptor_count(layout.descriptor_count),
            ret_val: abi::trap::ret_val_of(data),
            errno: abi::trap::errno_of(data),
        }
    }
}

/// The door a SEND goes to, and the caller's reference to it with that
/// reference's installation generation (`None`: routed to the process
/// manager's door).
struct DoorTarget {
    door: ObjectId,
    via: Option<(Reference, u64)>,
}

impl Kernel {
    /// SEND: kernel functions, process-manager routing, or a door call.
    pub(crate) fn send(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        args: SendArgs,
    ) -> Outcome {
        let layout = args.sizes.layout()?;
        match args.function.range() {
            FunctionRange::Invalid => Err(Error::InvalidFunction),
            FunctionRange::Kernel => match args.function.kernel_function() {
                Some(function) => self.kernel_function(machine, caller, function, args, layout),
                None => Err(Error::InvalidFunction),
            },
            FunctionRange::ProcessManager if args.target.is_null() => {
                let door = self.process_manager_door.ok_or(Error::PeerDied)?;
                let process = self.process_of(caller)?;
                let target = DoorTarget { door, via: None };
                self.call_door(machine, caller, process, args, layout, target)
            }
            _ if args.target.is_null() => Err(Error::FunctionOutOfRange),
            _ => {
                let process = self.process_of(caller)?;
                let table = &self.process(process)?.table;
                let (reference, generation) = table.get_with_generation(args.target)?;
                let target = DoorTarget {
                    door: reference.object,
                    via: Some((reference, generation)),
                };
                self.call_door(machine, caller, process, args, layout, target)
            }
        }
    }

    /// A SEND to a door by `caller` of `process`.
    fn call_door(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        process: ProcessId,
        args: SendArgs,
        layout: MessageLayout,
        target: DoorTarget,
    ) -> Outcome {
        let DoorTarget { door: door_id, via } = target;
        let p = self.process(process)?;
        let (space, manager_cookie) = (p.space, p.manager_cookie);
        let is_process_manager = self.process_manager == Some(process);
        let door = self.door(door_id)?;
        let accepted = match args.function.range() {
            FunctionRange::System => door.system,
            FunctionRange::User => !door.system,
            FunctionRange::ProcessManager => is_process_manager || via.is_none(),
            _ => false,
        };
        let alive = door.owner.is_some();
        if !accepted {
            return Err(Error::FunctionOutOfRange);
        }
        if let Some((reference, _)) = via
            && !reference.rights.contains(Rights::SEND)
        {
            return Err(Error::MissingRight);
        }
        if layout.total_size > 0 {
            self.check_writable(machine, space, args.buffer, usize::from(layout.total_size))?;
        }
        if layout.descriptor_count > 0 {
            let mut slots = core::mem::take(&mut self.slot_scratch);
            let checked = self
                .read_slots(machine, space, args.buffer, layout, &mut slots)
                .and_then(|()| self.check_slots(process, &slots));
            slots.clear();
            self.slot_scratch = slots;
            checked?;
        }
        if !alive {
            return Err(Error::PeerDied);
        }
        // A SEND always waits: a pending interruption ends it here, before
        // any server sees it (ABI.md §6.10).
        if self.take_interruption(caller) {
            return Err(Error::Interrupted);
        }
        let call = CallRecord {
            function: args.function,
            buffer: args.buffer,
            sizes: args.sizes,
            door: door_id,
            via: if via.is_some() {
                args.target
            } else {
                Descriptor::NULL
            },
            via_generation: via.map_or(0, |(_, g)| g),
            // Routed to procman: the cookie procman gave the process.
            cookie: via.map_or(manager_cookie, |(reference, _)| reference.cookie),
        };
        let source = End {
            process,
            space,
            buffer: args.buffer,
        };
        // Take the longest-waiting receiver; its blocked reference on the
        // door goes with it (the owner's keeps the door alive).
        while let Some(object) = self.objects.get_mut(door_id)
            && let Some(receiver) = object.door_mut().and_then(|d| d.receivers.pop_front())
        {
            object.references = object.references.saturating_sub(1);
            let Some(r) = self.threads.get(receiver) else {
                continue;
            };
            let ThreadState::Receiving {
                buffer, total_size, ..
            } = r.state
            else {
                continue;
            };
            let receiver_process = r.process;
            let Some(receiver_space) = self.processes.get(receiver_process).map(|p| p.space) else {
                continue;
            };
            let destination = End {
                process: receiver_process,
                space: receiver_space,
                buffer,
            };
            match self.deliver(machine, source, layout, destination, total_size) {
                Ok(_) => {
                    let mut caller_priority = 0;
                    if let Some(c) = self.threads.get_mut(caller) {
                        c.state = ThreadState::AwaitingReply {
                            call,
                            server: receiver,
                        };
                        caller_priority = c.priority;
                    }
                    // The receiver takes the CPU straight away (the caller
                    // lends it its time slice), at the caller's priority if
                    // that is higher.
                    let mut outranked = false;
                    if let Some(r) = self.threads.get_mut(receiver) {
                        r.holding = Holding::Call {
                            caller,
                            door: door_id,
                        };
                        r.resume = Some(TrapArgs::received(
                            call.function,
                            call.cookie,
                            buffer,
                            call.sizes,
                        ));
                        r.state = ThreadState::Running;
                        outranked = caller_priority > r.priority;
                    }
                    if outranked {
                        self.inherit_priority(receiver, caller_priority);
                    }
                    if self
                        .threads
                        .get(receiver)
                        .is_some_and(|r| self.runs_here(r))
                        && !self.suspended_thread(receiver)
                    {
                        self.current = Some(receiver);
                    } else {
                        // Pinned to other CPUs (ABI.md §6.9): it waits
                        // for one of them; the caller's CPU picks anew.
                        // Its process suspended: held (`crate::suspend`).
                        self.make_ready(receiver);
                        self.current = None;
                    }
                    return Ok(None);
                }
                Err(Failure::Source(error)) => {
                    self.retain(door_id);
                    self.door(door_id)?.receivers.push_front(receiver);
                    return Err(error);
                }
                Err(Failure::Destination(Error::ReceiveBufferTooSmall)) => {
                    // This receiver learns the size; another may fit.
                    self.wake(receiver, TrapArgs::receive_too_small(call.sizes));
                }
                Err(Failure::Destination(error)) => self.wake(receiver, TrapArgs::error(error)),
            }
        }
        room_for_one(&mut self.door(door_id)?.senders)?;
        self.retain(door_id);
        self.door(door_id)?.senders.push_back(caller);
        self.block(caller, ThreadState::Sending(call));
        Ok(None)
    }

    /// RECEIVE.
    pub(crate) fn receive(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        args: ReceiveArgs,
    ) -> Outcome {
        let process = self.process_of(thread)?;
        let reference = *self.process(process)?.table.get(args.door)?;
        self.door(reference.object)?;
        if !reference.rights.contains(Rights::RECEIVE) {
            return Err(Error::NotOwner);
        }
        let space = self.process(process)?.space;
        if args.total_size > 0 {
            self.check_writable(machine, space, args.buffer, usize::from(args.total_size))?;
        }
        self.abandon_held_message(machine, thread);
        self.receive_on(
            machine,
            thread,
            reference.object,
            args.buffer,
            args.total_size,
            false,
        )
    }

    /// A server thread that receives again without replying fails its caller.
    fn abandon_held_message(&mut self, machine: &mut impl Machine, thread: ThreadId) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        let holding = t.holding;
        self.end_service(thread);
        match holding {
            Holding::Call { caller, .. } => self.wake(caller, TrapArgs::error(Error::Abandoned)),
            Holding::Page { object, page, .. } => {
                self.fail_page_request(machine, object, page, crate::pager::PagerFailure::Abandoned)
            }
            _ => {}
        }
    }

    /// Takes the first deliverable queued call, or parks the thread.
    pub(crate) fn receive_on(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        door_id: ObjectId,
        buffer: u64,
        total_size: u16,
        after_reply: bool,
    ) -> Outcome {
        let process = self.process_of(thread)?;
        // The door may have been freed while its message was in service.
        let Some(object) = self.objects.get_mut(door_id) else {
            return Err(Error::PeerDied);
        };
        let door = object.door_mut().ok_or(Error::WrongObjectType)?;
        match door.owner {
            None => return Err(Error::PeerDied),
            Some(owner) if owner != process => return Err(Error::NotOwner),
            Some(_) => {}
        }
        if let Some(notice) = door.notices.front().copied() {
            return self.receive_notice(machine, thread, door_id, notice, buffer, total_size);
        }
        if !door.page_requests.is_empty() {
            return self.receive_page_request(machine, thread, door_id, buffer, total_size);
        }
        let space = self.process(process)?.space;
        while let Some(&sender) = self.door(door_id)?.senders.front() {
            let Some(ThreadState::Sending(call)) = self.threads.get(sender).map(|t| t.state) else {
                self.door(door_id)?.senders.pop_front();
                continue;
            };
            let layout = call.sizes.layout()?;
            let sender_process = self.process_of(sender)?;
            let sender_space = self.process(sender_process)?.space;
            let source = End {
                process: sender_process,
                space: sender_space,
                buffer: call.buffer,
            };
            let destination = End {
                process,
                space,
                buffer,
            };
            match self.deliver(machine, source, layout, destination, total_size) {
                Ok(_) => {
                    self.door(door_id)?.senders.pop_front();
                    self.release(door_id);
                    let mut sender_priority = 0;
                    if let Some(s) = self.threads.get_mut(sender) {
                        s.state = ThreadState::AwaitingReply {
                            call,
                            server: thread,
                        };
                        sender_priority = s.priority;
                    }
                    if let Some(t) = self.threads.get_mut(thread) {
                        t.holding = Holding::Call {
                            caller: sender,
                            door: door_id,
                        };
                    }
                    self.inherit_priority(thread, sender_priority);
                    let cookie = self.delivery_cookie(sender, &call);
                    return Ok(Some(TrapArgs::received(
                        call.function,
                        cookie,
                        buffer,
                        call.sizes,
                    )));
                }
                Err(Failure::Destination(Error::ReceiveBufferTooSmall)) => {
                    return Ok(Some(TrapArgs::receive_too_small(call.sizes)));
                }
                Err(Failure::Destination(error)) => return Err(error),
                Err(Failure::Source(error)) => {
                    self.door(door_id)?.senders.pop_front();
                    self.release(door_id);
                    self.wake(sender, TrapArgs::error(error));
                }
            }
        }
        room_for_one(&mut self.door(door_id)?.receivers)?;
        // Nothing to receive: a pending interruption ends the wait before it starts.
        if self.take_interruption(thread) {
            return Err(Error::Interrupted);
        }
        self.retain(door_id);
        self.door(door_id)?.receivers.push_back(thread);
        self.block(
            thread,
            ThreadState::Receiving {
                door: door_id,
                buffer,
                total_size,
                after_reply,
            },
        );
        Ok(None)
    }

    /// The cookie a queued call delivers: the one its reference (or, for a
    /// call routed to procman, its process) holds now, since a reply or
    /// PROCESS_SET_COOKIE may have changed it while the call waited.
    fn delivery_cookie(&self, sender: ThreadId, call: &CallRecord) -> u64 {
        let Some(process) = self
            .threads
            .get(sender)
            .and_then(|t| self.processes.get(t.process))
        else {
            return call.cookie;
        };
        if call.via.is_null() {
            return process.manager_cookie;
        }
        match process.table.get_with_generation(call.via) {
            Ok((reference, generation))
                if generation == call.via_generation && reference.object == call.door =>
            {
                reference.cookie
            }
            _ => call.cookie,
        }
    }

    /// Hands the oldest kernel notice of the door to a receiving thread.
    fn receive_notice(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        door_id: ObjectId,
        notice: abi::kcall::ProcessExitNotice,
        buffer: u64,
        total_size: u16,
    ) -> Outcome {
        let size = size_of::<abi::kcall::ProcessExitNotice>() as u16;
        let sizes = MessageSizes::new()
            .with_total_size(size)
            .with_data_size(size);
        if total_size < size {
            return Ok(Some(TrapArgs::receive_too_small(sizes)));
        }
        let process = self.process_of(thread)?;
        let space = self.process(process)?.space;
        machine.write_user(space, buffer, notice.as_bytes())?;
        self.door(door_id)?.notices.pop_front();
        if let Some(t) = self.threads.get_mut(thread) {
            t.holding = Holding::Notice { door: door_id };
        }
        let function = abi::KernelFunction::ProcessExited.function();
        Ok(Some(TrapArgs::received(function, 0, buffer, sizes)))
    }

    /// Queues a kernel notice on the process manager's door and hands it to
    /// a waiting receiver at once if there is one.
    pub(crate) fn post_notice(
        &mut self,
        machine: &mut impl Machine,
        notice: abi::kcall::ProcessExitNotice,
    ) {
        let Some(door_id) = self.process_manager_door else {
            return;
        };
        let Ok(door) = self.door(door_id) else { return };
        if door.notices.len() >= MAX_NOTICES {
            return; // procman is not receiving; the oldest notices stay
        }
        door.notices.push_back(notice);
        while let Some(receiver) = self
            .door(door_id)
            .ok()
            .and_then(|d| d.receivers.pop_front())
        {
            let Some(ThreadState::Receiving {
                buffer, total_size, ..
            }) = self.threads.get(receiver).map(|t| t.state)
            else {
                continue;
            };
            self.release(door_id);
            match self.receive_notice(machine, receiver, door_id, notice, buffer, total_size) {
                Ok(Some(registers)) => {
                    let delivered = registers.value() != -1;
                    self.wake(receiver, registers);
                    if delivered {
                        return;
                    }
                }
                Ok(None) => return,
                Err(error) => self.wake(receiver, TrapArgs::error(error)),
            }
        }
    }

    /// REPLY.
    pub(crate) fn reply(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        args: ReplyArgs,
    ) -> Outcome {
        self.answer(machine, thread, args, false)
    }

    /// REPLY's work; `buffer_checked` when REPLY_RECEIVE already checked the
    /// whole buffer (writable, so readable too).
    fn answer(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        args: ReplyArgs,
        buffer_checked: bool,
    ) -> Outcome {
        let layout = args.sizes.layout()?;
        // One lookup of each thread: its holding or state, and its process.
        let (holding, process) = self
            .threads
            .get(thread)
            .map_or((Holding::Nothing, None), |t| (t.holding, Some(t.process)));
        let caller = match holding {
            Holding::Nothing => return Err(Error::NothingToReply),
            Holding::Cancelled { .. } => {
                self.end_service(thread);
                return Err(Error::CallerGone);
            }
            Holding::Notice { .. } => {
                // Kernel notices take no answer; the reply is discarded.
                self.end_service(thread);
                return Ok(Some(TrapArgs::default()));
            }
            Holding::Page { object, page, .. } => {
                return self.answer_page(
                    machine,
                    thread,
                    args,
                    layout,
                    buffer_checked,
                    object,
                    page,
                );
            }
            Holding::Call { caller, .. } => caller,
        };
        let Some((ThreadState::AwaitingReply { call, .. }, caller_process)) =
            self.threads.get(caller).map(|t| (t.state, t.process))
        else {
            return Err(Error::CallerGone);
        };
        let process = process.ok_or(Error::InvalidArgument)?;
        let space = self.process(process)?.space;
        if layout.total_size > 0 && !buffer_checked {
            machine.check_user(space, args.buffer, usize::from(layout.total_size), false)?;
        }
        // seed 004: a reply larger than the sender's buffer fails back to the
        // replier, and the sender stays blocked until a reply that fits.
        if layout.used > call.sizes.total_size() {
            return Err(Error::ReplyTooLarge);
        }
        let caller_space = self.process(caller_process)?.space;
        let source = End {
            process,
            space,
            buffer: args.buffer,
        };
        let destination = End {
            process: caller_process,
            space: caller_space,
            buffer: call.buffer,
        };
        let delivered = match self.deliver(
            machine,
            source,
            layout,
            destination,
            call.sizes.total_size(),
        ) {
            Ok(delivered) => delivered,
            Err(Failure::Source(error)) => return Err(error),
            Err(Failure::Destination(error)) => {
                self.end_service(thread);
                self.wake(caller, TrapArgs::error(error));
                return Ok(Some(TrapArgs::default()));
            }
        };
        let routed_to_manager = call.via.is_null() && self.process_manager_door == Some(call.door);
        if let Some(p) = self.processes.get_mut(caller_process) {
            if routed_to_manager {
                p.manager_cookie = args.cookie;
            } else {
                p.table
                    .set_cookie(call.via, call.via_generation, call.door, args.cookie);
            }
        }
        self.end_service(thread);
        let registers = TrapArgs::replied(delivered.ret_val, delivered.errno, delivered.sizes);
        self.wake_for_handoff(caller, registers);
        Ok(Some(TrapArgs::default()))
    }

    /// REPLY_RECEIVE: REPLY, then RECEIVE on the door the answered message
    /// came through. CALLER_GONE from the reply is not an error here.
    pub(crate) fn reply_receive(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        args: ReplyArgs,
    ) -> Outcome {
        args.sizes.layout()?;
        let door = match self.threads.get(thread).map(|t| t.holding) {
            Some(
                Holding::Call { door, .. }
                | Holding::Cancelled { door }
                | Holding::Notice { door }
                | Holding::Page { door, .. },
            ) => door,
            _ => return Err(Error::NothingToReply),
        };
        let process = self.process_of(thread)?;
        let space = self.process(process)?.space;
        let total_size = args.sizes.total_size();
        if total_size > 0 {
            self.check_writable(machine, space, args.buffer, usize::from(total_size))?;
        }
        match self.answer(machine, thread, args, true) {
            Ok(_) | Err(Error::CallerGone) => {}
            Err(error) => return Err(error),
        }
        // The held message is done with; if the receive half fails, arg2 = 1 says so.
        match self.receive_on(machine, thread, door, args.buffer, total_size, true) {
            Err(error) => Ok(Some(TrapArgs {
                arg2: REPLY_DELIVERED,
                ..TrapArgs::error(error)
            })),
            Ok(Some(registers)) if registers.value() == -1 => Ok(Some(TrapArgs {
                arg2: REPLY_DELIVERED,
                ..registers
            })),
            outcome => outcome,
        }
    }

    /// Reads a message's slots from user memory into `out`.
    pub(crate) fn read_slots(
        &self,
        machine: &impl Machine,
        space: crate::process::SpaceId,
        buffer: u64,
        layout: MessageLayout,
        out: &mut Vec<DescriptorSlot>,
    ) -> Result<(), Error> {
        out.clear();
        let count = usize::from(layout.descriptor_count);
        if out.capacity() < count {
            out.try_reserve(count).map_err(|_| Error::OutOfMemory)?;
        }
        let mut raw = [0u8; SLOT_SIZE as usize];
        for index in 0..u64::from(layout.descriptor_count) {
            let at = buffer + u64::from(layout.descriptor_offset) + index * u64::from(SLOT_SIZE);
            machine.read_user(space, at, &mut raw)?;
            out.push(DescriptorSlot::read_from_bytes(&raw).map_err(|_| Error::BadSizes)?);
        }
        Ok(())
    }

    /// Checks every slot against the sending process's table, changing nothing.
    pub(crate) fn check_slots(
        &self,
        process: ProcessId,
        slots: &[DescriptorSlot],
    ) -> Result<(), Error> {
        let p = self.process(process)?;
        for (index, slot) in slots.iter().enumerate() {
            let request = slot.request()?;
            let reference = p.table.get(request.descriptor)?;
            if !reference.rights.contains(Rights::TRANSFER) {
                return Err(Error::NotTransferable);
            }
            if !reference.rights.contains(request.rights) {
                return Err(Error::RightsExceeded);
            }
            let moves_ownership = reference.rights.contains(Rights::RECEIVE);
            match request.mode {
                TransferMode::Copy if request.rights.contains(Rights::RECEIVE) => {
                    return Err(Error::NotTransferable);
                }
                TransferMode::Move
                    if moves_ownership && !request.rights.contains(Rights::RECEIVE) =>
                {
                    return Err(Error::NotTransferable);
                }
                _ => {}
            }
            let moved_twice = slots.iter().enumerate().any(|(other, o)| {
                other != index
                    && o.descriptor == slot.descriptor
                    && (request.mode == TransferMode::Move || o.mode == TransferMode::Move as u32)
            });
            if moved_twice {
                return Err(Error::DuplicateSlot);
            }
        }
        Ok(())
    }

    /// [`Kernel::transfer_message`], and when the destination's buffer was
    /// not writable, once more after its copy-on-write pages got their
    /// copies: it may have become copy-on-write since its thread checked it
    /// (a child made of the memory under it while it waited). The failed
    /// transfer moved no descriptor (every check comes first).
    #[inline(always)]
    pub(crate) fn deliver(
        &mut self,
        machine: &mut impl Machine,
        source: End,
        layout: MessageLayout,
        destination: End,
        destination_total: u16,
    ) -> Result<Delivered, Failure> {
        match self.transfer_message(machine, source, layout, destination, destination_total) {
            Err(Failure::Destination(Error::BadBuffer)) => {
                self.deliver_after_copy(machine, source, layout, destination, destination_total)
            }
            done => done,
        }
    }

    #[cold]
    #[inline(never)]
    fn deliver_after_copy(
        &mut self,
        machine: &mut impl Machine,
        source: End,
        layout: MessageLayout,
        destination: End,
        destination_total: u16,
    ) -> Result<Delivered, Failure> {
        self.writable_after_copy(
            machine,
            destination.space,
            destination.buffer,
            usize::from(layout.used),
        )
        .map_err(Failure::Destination)?;
        self.transfer_message(machine, source, layout, destination, destination_total)
    }

    /// Copies a message (data and descriptors) from `source` to
    /// `destination`, all or nothing: everything is checked before the first
    /// byte moves. The data goes straight from one address space to the
    /// other; only the slots pass through the kernel.
    pub(crate) fn transfer_message(
        &mut self,
        machine: &mut impl Machine,
        source: End,
        layout: MessageLayout,
        destination: End,
        destination_total: u16,
    ) -> Result<Delivered, Failure> {
        self.transfer_message_with(
            machine,
            source,
            layout,
            destination,
            destination_total,
            false,
        )
    }

    /// [`Kernel::transfer_message`]; for the fast path (`fast`), a transfer
    /// that would need the heap (no room reserved in the destination's
    /// table or the slot scratch) or that moves a door's owner reference
    /// (whose hand-over wakes that door's receivers) fails before anything
    /// moves, and the slow path does it.
    #[inline(always)]
    pub(crate) fn transfer_message_with(
        &mut self,
        machine: &mut impl Machine,
        source: End,
        layout: MessageLayout,
        destination: End,
        destination_total: u16,
        fast: bool,
    ) -> Result<Delivered, Failure> {
        if layout.used > destination_total {
            return Err(Failure::Destination(Error::ReceiveBufferTooSmall));
        }
        let mut head = [0u8; 8];
        if layout.descriptor_count == 0 {
            // The common case: data only, one pass, nothing else to check.
            copy_data(machine, source, destination, layout.data_size, &mut head)?;
            return Ok(Delivered::of(layout, &head));
        }
        let slots_at = u64::from(layout.descriptor_offset);
        let mut slots = core::mem::take(&mut self.slot_scratch);
        // The data and the padding go straight across after the checks; a
        // fault on either side stops the transfer before any descriptor moves.
        let checked = self
            .check_transfer(machine, source, layout, destination, &mut slots, fast)
            .and_then(|()| {
                copy_data(
                    machine,
                    source,
                    destination,
                    layout.descriptor_offset,
                    &mut head,
                )
            });
        if let Err(failure) = checked {
            // The scratch keeps its room, never a message's slots.
            slots.clear();
            self.slot_scratch = slots;
            return Err(failure);
        }
        // Everything is checked and the data is across: move the descriptors.
        for (index, slot) in slots.iter().enumerate() {
            let Ok(request) = slot.request() else {
                continue;
            };
            let Ok(installed) =
                self.transfer_reference(source.process, destination.process, request)
            else {
                continue;
            };
            let rewritten = DescriptorSlot {
                descriptor: installed.0,
                rights: request.rights.0,
                mode: request.mode as u32,
                reserved: 0,
            };
            let at = destination.buffer + slots_at + (index * usize::from(SLOT_SIZE)) as u64;
            // Cannot fail: the slot area was checked writable.
            let _ = machine.write_user(destination.space, at, rewritten.as_bytes());
        }
        slots.clear();
        self.slot_scratch = slots;
        Ok(Delivered::of(layout, &head))
    }

    /// The checks of a transfer's descriptors, which change nothing a
    /// failure would have to undo: the slots are valid for the source, the
    /// destination has room, memory and heap for them, and its slot area is
    /// writable. After this, [`Kernel::transfer_reference`] of each slot
    /// cannot fail.
    fn check_transfer(
        &mut self,
        machine: &impl Machine,
        source: End,
        layout: MessageLayout,
        destination: End,
        slots: &mut Vec<DescriptorSlot>,
        fast: bool,
    ) -> Result<(), Failure> {
        // The fast path's refusals: the slow path will do it (the error
        // value is never seen).
        let declined = Failure::Source(Error::OutOfMemory);
        if fast && slots.capacity() < usize::from(layout.descriptor_count) {
            return Err(declined);
        }
        self.read_slots(machine, source.space, source.buffer, layout, slots)
            .map_err(Failure::Source)?;
        self.check_slots(source.process, slots)
            .map_err(Failure::Source)?;
        if fast
            && slots
                .iter()
                .any(|slot| Rights(slot.rights).contains(Rights::RECEIVE))
        {
            return Err(declined);
        }
        let d = self
            .processes
            .get_mut(destination.process)
            .ok_or(Failure::Destination(Error::PeerDied))?;
        if d.table.room() < slots.len() {
            return Err(Failure::Source(Error::TableFull));
        }
        let cost = DESCRIPTOR_COST * slots.len() as u64;
        if d.charged.saturating_add(cost) > d.limit {
            return Err(Failure::Source(Error::OutOfMemory));
        }
        if fast {
            if !d.table.has_room_reserved(slots.len()) {
                return Err(declined);
            }
        } else {
            d.table.reserve(slots.len()).map_err(Failure::Source)?;
        }
        let slots_length = slots.len() * usize::from(SLOT_SIZE);
        let slots_at = destination.buffer + u64::from(layout.descriptor_offset);
        machine
            .check_user(destination.space, slots_at, slots_length, true)
            .map_err(Failure::Destination)
    }

    /// Moves or copies one checked reference between tables.
    pub(crate) fn transfer_reference(
        &mut self,
        from: ProcessId,
        to: ProcessId,
        request: abi::message::SlotRequest,
    ) -> Result<Descriptor, Error> {
        let source = self.process_mut(from)?;
        let reference = match request.mode {
            TransferMode::Move => {
                let r = source.table.remove(request.descriptor)?;
                source.uncharge(DESCRIPTOR_COST);
                Reference {
                    rights: request.rights,
                    ..r
                }
            }
            TransferMode::Copy => {
                let r = *source.table.get(request.descriptor)?;
                self.retain(r.object);
                Reference {
                    object: r.object,
                    rights: request.rights,
                    cookie: 0,
                }
            }
        };
        if request.mode == TransferMode::Move && reference.rights.contains(Rights::RECEIVE) {
            self.hand_over_door(reference.object, from, to);
        }
        let destination = self.process_mut(to)?;
        destination.charged = destination.charged.saturating_add(DESCRIPTOR_COST);
        destination.table.install(reference)
    }

    /// The owner reference of a door moved to another process: threads of the
    /// old owner still waiting in RECEIVE on it fail with NOT_OWNER.
    fn hand_over_door(&mut self, door_id: ObjectId, from: ProcessId, to: ProcessId) {
        let Ok(door) = self.door(door_id) else { return };
        door.owner = Some(to);
        if from == to {
            return;
        }
        let waiting = core::mem::take(&mut door.receivers);
        for receiver in waiting {
            self.release(door_id);
            self.wake(receiver, TrapArgs::error(Error::NotOwner));
        }
    }
}
