//! The IPC fast path: the two halves of the common round trip, each done
//! in one pass with the few lookups it needs, no heap, no run queue and one
//! copy of the message.
//!
//! - **Call**: a SEND to a user or system door, through a reference with
//!   SEND, whose longest-waiting receiver is blocked in RECEIVE (or
//!   REPLY_RECEIVE) with a buffer large enough, at a priority no lower than
//!   the caller's; the caller's buffer takes the reply without a
//!   copy-on-write copy. The receiver runs next.
//! - **Reply and wait**: a REPLY_RECEIVE by a server holding a call made
//!   through a door reference (not routed to the process manager), whose
//!   caller's buffer takes the reply, and whose door has no other call or
//!   notice queued: the caller runs next, the server waits.
//!
//! Either may carry descriptors: they go through the slow path's own
//! transfer (`Kernel::transfer_message_with`, every check before anything
//! moves), except a move of a door's owner reference, whose hand-over wakes
//! that door's receivers: the slow path's.
//!
//! Everything else, and every error, is the slow path's (`crate::ipc`),
//! which stays the reference: the fast path decides from state it only
//! reads, and when it declines it has changed nothing (at most it wrote
//! the first bytes of a message into a buffer the slow path then writes
//! again the same way). What it does on success is exactly what the slow
//! path does for the same call: a host test (`tests/fast_path.rs`) runs
//! both over the same random traps and compares every result and the
//! whole kernel and machine state after each.

use abi::function::FunctionRange;
use abi::trap::{ReplyArgs, SendArgs};
use abi::{Rights, TrapArgs};

use crate::ipc::{Delivered, End};
use crate::kernel::Kernel;
use crate::machine::{Machine, MessageCopy};
use crate::object::ObjectBody;
use crate::thread::{CallRecord, Holding, ThreadId, ThreadState};

impl Kernel {
    /// The call half; false when it is not the common case (nothing changed).
    #[inline(always)]
    pub(crate) fn fast_call(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        args: &SendArgs,
    ) -> bool {
        if args.sizes.descriptor_count() == 0 {
            self.fast_call_data(machine, caller, args)
        } else {
            self.fast_call_with_descriptors(machine, caller, args)
        }
    }

    /// The call half of a data-only message: each thread, the door and
    /// the caller's process looked up once, and the borrows kept from the
    /// decision to the commit (the copy needs only the machine).
    #[inline(always)]
    fn fast_call_data(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        args: &SendArgs,
    ) -> bool {
        #[cfg(test)]
        if self.fast_path_test.slow_only {
            return false;
        }
        let system = match args.function.range() {
            FunctionRange::User => false,
            FunctionRange::System => true,
            _ => return false,
        };
        let Ok(layout) = args.sizes.layout() else {
            return false;
        };
        let Some(c) = self.threads.get(caller) else {
            return false;
        };
        let (space, caller_priority) = (c.space, c.priority);
        let Some(p) = self.processes.get(c.process) else {
            return false;
        };
        let Ok((reference, generation)) = p.table.get_with_generation(args.target) else {
            return false;
        };
        if !reference.rights.contains(Rights::SEND) {
            return false;
        }
        let door_id = reference.object;
        let Some(object) = self.objects.get_mut(door_id) else {
            return false;
        };
        let ObjectBody::Door(door) = &mut object.body else {
            return false;
        };
        if door.system != system || door.owner.is_none() {
            return false;
        }
        let Some(&receiver) = door.receivers.front() else {
            return false;
        };
        let Some((c, r)) = self.threads.get_pair_mut(caller, receiver) else {
            return false;
        };
        let ThreadState::Receiving {
            buffer, total_size, ..
        } = r.state
        else {
            return false;
        };
        // The call switches on the caller's CPU (ABI.md §6.9): a
        // receiver pinned elsewhere takes the slow path, which queues it.
        if r.priority < caller_priority
            || layout.used > total_size
            || (r.affinity >> self.cpu) & 1 == 0
        {
            return false;
        }
        let mut head = [0u8; 8];
        let copy = MessageCopy {
            from_space: space,
            from: args.buffer,
            checked: usize::from(layout.total_size),
            to_space: r.space,
            to: buffer,
            length: usize::from(layout.data_size),
        };
        if machine.check_and_copy(copy, &mut head).is_err() {
            return false;
        }
        // Delivered: from here on exactly the slow path's changes.
        door.receivers.pop_front();
        // The receiver's blocked reference on the door goes with it.
        object.references = object.references.saturating_sub(1);
        let call = CallRecord {
            function: args.function,
            buffer: args.buffer,
            sizes: args.sizes,
            door: door_id,
            via: args.target,
            via_generation: generation,
            cookie: reference.cookie,
        };
        c.state = ThreadState::AwaitingReply {
            call,
            server: receiver,
        };
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
        self.current = Some(receiver);
        #[cfg(test)]
        {
            self.fast_path_test.hits += 1;
        }
        true
    }

    /// [`Kernel::fast_call`] of a message with descriptors, out of line.
    #[cold]
    #[inline(never)]
    fn fast_call_with_descriptors(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        args: &SendArgs,
    ) -> bool {
        #[cfg(test)]
        if self.fast_path_test.slow_only {
            return false;
        }
        let system = match args.function.range() {
            FunctionRange::User => false,
            FunctionRange::System => true,
            _ => return false,
        };
        let Ok(layout) = args.sizes.layout() else {
            return false;
        };
        let Some(c) = self.threads.get(caller) else {
            return false;
        };
        let (process, space, caller_priority) = (c.process, c.space, c.priority);
        let Some(p) = self.processes.get(process) else {
            return false;
        };
        let Ok((reference, generation)) = p.table.get_with_generation(args.target) else {
            return false;
        };
        if !reference.rights.contains(Rights::SEND) {
            return false;
        }
        let door_id = reference.object;
        let Some(ObjectBody::Door(door)) = self.objects.get(door_id).map(|o| &o.body) else {
            return false;
        };
        if door.system != system || door.owner.is_none() {
            return false;
        }
        let Some(&receiver) = door.receivers.front() else {
            return false;
        };
        let Some(r) = self.threads.get(receiver) else {
            return false;
        };
        let ThreadState::Receiving {
            buffer, total_size, ..
        } = r.state
        else {
            return false;
        };
        // The call switches on the caller's CPU (ABI.md §6.9): a
        // receiver pinned elsewhere takes the slow path, which queues it.
        if r.priority < caller_priority || layout.used > total_size || !self.runs_here(r) {
            return false;
        }
        let (receiver_process, receiver_space) = (r.process, r.space);
        if layout.total_size > 0
            && machine
                .check_user(space, args.buffer, usize::from(layout.total_size), true)
                .is_err()
        {
            return false;
        }
        // Descriptors: the slow path's own transfer, all or nothing,
        // before the receiver leaves the queue (a failure changed
        // nothing, and the slow path meets it again).
        let source = End {
            process,
            space,
            buffer: args.buffer,
        };
        let destination = End {
            process: receiver_process,
            space: receiver_space,
            buffer,
        };
        if self
            .fast_transfer(machine, source, layout, destination, total_size)
            .is_none()
        {
            return false;
        }
        // Delivered: from here on exactly the slow path's changes.
        if let Some(object) = self.objects.get_mut(door_id) {
            if let ObjectBody::Door(door) = &mut object.body {
                door.receivers.pop_front();
            }
            // The receiver's blocked reference on the door goes with it.
            object.references = object.references.saturating_sub(1);
        }
        let call = CallRecord {
            function: args.function,
            buffer: args.buffer,
            sizes: args.sizes,
            door: door_id,
            via: args.target,
            via_generation: generation,
            cookie: reference.cookie,
        };
        if let Some(c) = self.threads.get_mut(caller) {
            c.state = ThreadState::AwaitingReply {
                call,
                server: receiver,
            };
        }
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
        }
        self.current = Some(receiver);
        #[cfg(test)]
        {
            self.fast_path_test.hits += 1;
            self.fast_path_test.descriptor_hits += u64::from(layout.descriptor_count != 0);
        }
        true
    }

    /// The reply-and-wait half; false when it is not the common case
    /// (nothing changed).
    #[inline(always)]
    pub(crate) fn fast_reply_wait(
        &mut self,
        machine: &mut impl Machine,
        server: ThreadId,
        args: &ReplyArgs,
    ) -> bool {
        if args.sizes.descriptor_count() == 0 {
            self.fast_reply_wait_data(machine, server, args)
        } else {
            self.fast_reply_wait_with_descriptors(machine, server, args)
        }
    }

    /// The reply-and-wait half of a data-only reply: both threads, the
    /// door and the caller's process looked up once each.
    #[inline(always)]
    fn fast_reply_wait_data(
        &mut self,
        machine: &mut impl Machine,
        server: ThreadId,
        args: &ReplyArgs,
    ) -> bool {
        #[cfg(test)]
        if self.fast_path_test.slow_only {
            return false;
        }
        let Ok(layout) = args.sizes.layout() else {
            return false;
        };
        let Some(Holding::Call {
            caller,
            door: door_id,
        }) = self.threads.get(server).map(|s| s.holding)
        else {
            return false;
        };
        let Some((s, c)) = self.threads.get_pair_mut(server, caller) else {
            return false;
        };
        let ThreadState::AwaitingReply { call, .. } = c.state else {
            return false;
        };
        if (c.affinity >> self.cpu) & 1 == 0
            || call.via.is_null()
            || layout.used > call.sizes.total_size()
        {
            return false;
        }
        // The receive half must block at once: the door alive and still
        // this process's, nothing queued on it, room for one more receiver.
        let Some(object) = self.objects.get_mut(door_id) else {
            return false;
        };
        let ObjectBody::Door(door) = &mut object.body else {
            return false;
        };
        if door.owner != Some(s.process)
            || !door.senders.is_empty()
            || !door.notices.is_empty()
            || !door.page_requests.is_empty()
            || door.receivers.len() == door.receivers.capacity()
        {
            return false;
        }
        let total_size = args.sizes.total_size();
        let mut head = [0u8; 8];
        let copy = MessageCopy {
            from_space: s.space,
            from: args.buffer,
            checked: usize::from(total_size),
            to_space: c.space,
            to: call.buffer,
            length: usize::from(layout.data_size),
        };
        if machine.check_and_copy(copy, &mut head).is_err() {
            return false;
        }
        let data = &head[..usize::from(layout.data_size).min(8)];
        // Delivered: from here on exactly the slow path's changes.
        if let Some(p) = self.processes.get_mut(c.process) {
            p.table
                .set_cookie(call.via, call.via_generation, call.door, args.cookie);
        }
        // The service ends (`Kernel::end_service`).
        s.holding = Holding::Nothing;
        if s.is_boosted() {
            let boosted = s.priority;
            s.priority = s.base_priority;
            self.scheduler.dismiss(boosted);
        }
        c.resume = Some(TrapArgs::replied(
            abi::trap::ret_val_of(data),
            abi::trap::errno_of(data),
            abi::MessageSizes::new().with_data_size(layout.data_size),
        ));
        c.state = ThreadState::Running;
        object.references += 1;
        door.receivers.push_back(server);
        s.state = ThreadState::Receiving {
            door: door_id,
            buffer: args.buffer,
            total_size,
            after_reply: true,
        };
        self.current = Some(caller);
        #[cfg(test)]
        {
            self.fast_path_test.hits += 1;
        }
        true
    }

    /// [`Kernel::fast_reply_wait`] of a reply with descriptors, out of line.
    #[cold]
    #[inline(never)]
    fn fast_reply_wait_with_descriptors(
        &mut self,
        machine: &mut impl Machine,
        server: ThreadId,
        args: &ReplyArgs,
    ) -> bool {
        #[cfg(test)]
        if self.fast_path_test.slow_only {
            return false;
        }
        let Ok(layout) = args.sizes.layout() else {
            return false;
        };
        let Some(s) = self.threads.get(server) else {
            return false;
        };
        let Holding::Call {
            caller,
            door: door_id,
        } = s.holding
        else {
            return false;
        };
        let (process, space) = (s.process, s.space);
        let Some(c) = self.threads.get(caller) else {
            return false;
        };
        let ThreadState::AwaitingReply { call, .. } = c.state else {
            return false;
        };
        if !self.runs_here(c) {
            return false;
        }
        let caller_process = c.process;
        if call.via.is_null() || layout.used > call.sizes.total_size() {
            return false;
        }
        let caller_space = c.space;
        // The receive half must block at once: the door alive and still
        // this process's, nothing queued on it, room for one more receiver.
        let Some(ObjectBody::Door(door)) = self.objects.get(door_id).map(|o| &o.body) else {
            return false;
        };
        if door.owner != Some(process)
            || !door.senders.is_empty()
            || !door.notices.is_empty()
            || !door.page_requests.is_empty()
            || door.receivers.len() == door.receivers.capacity()
        {
            return false;
        }
        let total_size = args.sizes.total_size();
        if total_size > 0
            && machine
                .check_user(space, args.buffer, usize::from(total_size), true)
                .is_err()
        {
            return false;
        }
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
        let Some(Delivered { ret_val, errno, .. }) = self.fast_transfer(
            machine,
            source,
            layout,
            destination,
            call.sizes.total_size(),
        ) else {
            return false;
        };
        // Delivered: from here on exactly the slow path's changes.
        if let Some(p) = self.processes.get_mut(caller_process) {
            p.table
                .set_cookie(call.via, call.via_generation, call.door, args.cookie);
        }
        self.end_service(server);
        let registers = TrapArgs::replied(
            ret_val,
            errno,
            abi::MessageSizes::new()
                .with_data_size(layout.data_size)
                .with_descriptor_count(layout.descriptor_count),
        );
        if let Some(c) = self.threads.get_mut(caller) {
            c.resume = Some(registers);
            c.state = ThreadState::Running;
        }
        if let Some(object) = self.objects.get_mut(door_id) {
            object.references += 1;
            if let ObjectBody::Door(door) = &mut object.body {
                door.receivers.push_back(server);
            }
        }
        if let Some(s) = self.threads.get_mut(server) {
            s.state = ThreadState::Receiving {
                door: door_id,
                buffer: args.buffer,
                total_size,
                after_reply: true,
            };
        }
        self.current = Some(caller);
        #[cfg(test)]
        {
            self.fast_path_test.hits += 1;
            self.fast_path_test.descriptor_hits += u64::from(layout.descriptor_count != 0);
        }
        true
    }

    /// A message with descriptors, moved by the slow path's transfer
    /// (none of a door's owner reference); None when it declined, having
    /// changed nothing.
    #[inline(always)]
    fn fast_transfer(
        &mut self,
        machine: &mut impl Machine,
        source: End,
        layout: abi::MessageLayout,
        destination: End,
        destination_total: u16,
    ) -> Option<Delivered> {
        self.transfer_message_with(
            machine,
            source,
            layout,
            destination,
            destination_total,
            true,
        )
        .ok()
    }
}
