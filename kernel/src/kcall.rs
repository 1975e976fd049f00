//! The kernel functions (range `0x0-0x3FF`, other than the three trap
//! operations): ordinary SENDs whose server is the kernel itself.
//!
//! Each function decodes its whole request and checks that the caller's
//! buffer can take the reply before it acts, so a refused request changes
//! nothing. Replies follow the message format: msgRetVal, msgErrno (0), the
//! payload at `REPLY_PAYLOAD_OFFSET`, new descriptors in the reply slots.

use abi::kcall::{
    ArchiveReadReply, ArchiveReadRequest, CookieRequest, DescriptorInfo, DescriptorRequest,
    DoorCreateRequest, ExitRequest, MAX_PRIORITY, MapReply, MapRequest, REPLY_PAYLOAD_OFFSET,
    SpawnRequest, ThreadCreateRequest, protection,
};
use abi::message::{DescriptorSlot, descriptor_offset, message_extent};
use abi::process::{MAX_ARGUMENT_BYTES, USER_END};
use abi::trap::SendArgs;
use abi::{
    Descriptor, Error, KernelFunction, MessageLayout, MessageSizes, ObjectKind, Rights, TrapArgs,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::machine::{Machine, UserStart};
use crate::object::{Door, Event, ObjectBody, ObjectId};
use crate::process::ProcessId;
use crate::state::{Kernel, Outcome};
use crate::thread::{ThreadId, ThreadState};

/// The kind of object a kernel function is sent to; `None` for the NULL target.
fn required_target(function: KernelFunction) -> Option<ObjectKind> {
    match function {
        KernelFunction::EventSignal | KernelFunction::EventWait => Some(ObjectKind::Event),
        KernelFunction::ProcessSetCookie => Some(ObjectKind::Process),
        KernelFunction::DoorCreate | KernelFunction::Spawn | KernelFunction::ManagerRegister => {
            Some(ObjectKind::ProcessControl)
        }
        KernelFunction::ArchiveRead => Some(ObjectKind::BootArchive),
        KernelFunction::DebugExit => Some(ObjectKind::MachineControl),
        _ => None,
    }
}

/// Requests up to this size are read onto the stack.
const SMALL_REQUEST: usize = 64;

/// The largest kernel reply: header, the biggest payload, two slots.
const LARGEST_REPLY: usize = 128;

/// A kernel reply being assembled: payload bytes and new descriptors.
struct KernelReply<'a> {
    payload: &'a [u8],
    descriptors: &'a [(Descriptor, Rights)],
}

const NO_REPLY: KernelReply<'static> = KernelReply {
    payload: &[],
    descriptors: &[],
};

/// The bytes a kernel reply with this payload and slot count occupies.
fn reply_extent(payload: usize, slots: u8) -> u16 {
    message_extent((REPLY_PAYLOAD_OFFSET + payload) as u16, slots)
}

/// Parses a fixed-size request: the data must be exactly one `T`.
fn request<T: FromBytes + KnownLayout + Immutable>(data: &[u8]) -> Result<T, Error> {
    T::read_from_bytes(data).map_err(|_| Error::BadSizes)
}

fn check_range(address: u64, length: u64) -> Result<(), Error> {
    let aligned = address.is_multiple_of(4096) && length.is_multiple_of(4096);
    let end = address.checked_add(length).ok_or(Error::BadAddressRange)?;
    if !aligned || length == 0 {
        return Err(Error::InvalidArgument);
    }
    if end > USER_END {
        return Err(Error::BadAddressRange);
    }
    Ok(())
}

fn check_protection(bits: u32, reserved: u32) -> Result<(), Error> {
    if reserved != 0 || bits & !protection::ALL != 0 {
        return Err(Error::ReservedBits);
    }
    Ok(())
}

/// The protection of memory being mapped: defined bits only, and READ,
/// since x86_64 page tables cannot express a present page that is not
/// readable (ABI.md §6, "Memory").
fn check_map_protection(bits: u32, reserved: u32) -> Result<(), Error> {
    check_protection(bits, reserved)?;
    if bits & protection::READ == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

impl Kernel {
    /// Runs kernel function `args.function` for `caller`.
    pub(crate) fn kernel_function(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        args: SendArgs,
        layout: MessageLayout,
    ) -> Outcome {
        let function = args
            .function
            .kernel_function()
            .ok_or(Error::InvalidFunction)?;
        let process = self.process_of(caller)?;
        // Which object the function is sent to; the capability targets are
        // the authority ("privilege" is holding one).
        let target = match (required_target(function), args.target.is_null()) {
            (None, true) => None,
            (None, false) | (Some(_), true) => return Err(Error::FunctionOutOfRange),
            (Some(kind), false) => {
                let p = self.process(process)?;
                let reference = *p.table.get(args.target)?;
                let object = self
                    .objects
                    .get(reference.object)
                    .ok_or(Error::BadDescriptor)?;
                if object.kind() != kind {
                    return Err(Error::WrongObjectType);
                }
                if matches!(object.body, ObjectBody::Capability(_))
                    && !reference.rights.contains(Rights::SEND)
                {
                    return Err(Error::MissingRight);
                }
                Some(reference)
            }
        };
        if function != KernelFunction::Spawn && layout.descriptor_count != 0 {
            return Err(Error::BadSizes);
        }
        let space = self.process(process)?.space;
        if layout.total_size > 0 {
            machine.check_user(space, args.buffer, usize::from(layout.total_size), true)?;
        }
        // Fixed requests are small; only DEBUG_WRITE and SPAWN carry more,
        // and those go to the heap rather than zeroing a page per call.
        let mut small = [0u8; SMALL_REQUEST];
        let mut large = alloc::vec::Vec::new();
        let data_size = usize::from(layout.data_size);
        let data: &mut [u8] = if data_size <= SMALL_REQUEST {
            &mut small[..data_size]
        } else {
            large
                .try_reserve_exact(data_size)
                .map_err(|_| Error::OutOfMemory)?;
            large.resize(data_size, 0);
            &mut large
        };
        machine.read_user(space, args.buffer, data)?;
        let data: &[u8] = data;

        // The reply must fit before anything happens.
        let (payload_size, reply_slots) = match function {
            KernelFunction::DescriptorInfo => (size_of::<DescriptorInfo>(), 0),
            KernelFunction::MapAnonymous => (size_of::<MapReply>(), 0),
            KernelFunction::Counters => (size_of::<abi::kcall::KernelCounters>(), 0),
            KernelFunction::Duplicate
            | KernelFunction::ThreadCreate
            | KernelFunction::EventCreate
            | KernelFunction::Spawn => (0, 1),
            KernelFunction::DoorCreate => (0, 2),
            KernelFunction::ArchiveRead => (size_of::<ArchiveReadReply>(), 0),
            _ => (0, 0),
        };
        if reply_extent(payload_size, reply_slots) > layout.total_size {
            return Err(Error::BadSizes);
        }

        match function {
            KernelFunction::Receive | KernelFunction::Reply | KernelFunction::ReplyReceive => {
                Err(Error::InvalidFunction)
            }
            KernelFunction::Close => {
                let r: DescriptorRequest = request(data)?;
                if r.rights != 0 {
                    return Err(Error::ReservedBits);
                }
                self.close(process, Descriptor(r.descriptor))?;
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::Duplicate => {
                let r: DescriptorRequest = request(data)?;
                let rights = Rights(r.rights);
                if rights.has_reserved_bits() {
                    return Err(Error::ReservedBits);
                }
                let p = self.process(process)?;
                let reference = *p.table.get(Descriptor(r.descriptor))?;
                if !reference.rights.contains(Rights::DUPLICATE) {
                    return Err(Error::MissingRight);
                }
                if !reference.rights.contains(rights) {
                    return Err(Error::RightsExceeded);
                }
                if rights.contains(Rights::RECEIVE) {
                    return Err(Error::NotTransferable);
                }
                let copy = self.install_reference(process, reference.object, rights)?;
                let reply = KernelReply {
                    payload: &[],
                    descriptors: &[(copy, rights)],
                };
                self.kernel_reply(machine, space, args.buffer, 0, reply)
            }
            KernelFunction::DescriptorInfo => {
                let r: DescriptorRequest = request(data)?;
                if r.rights != 0 {
                    return Err(Error::ReservedBits);
                }
                let p = self.process(process)?;
                let reference = *p.table.get(Descriptor(r.descriptor))?;
                let kind = self
                    .objects
                    .get(reference.object)
                    .map(|o| o.kind())
                    .ok_or(Error::BadDescriptor)?;
                let info = DescriptorInfo {
                    kind: kind as u32,
                    rights: reference.rights.0,
                };
                let reply = KernelReply {
                    payload: info.as_bytes(),
                    descriptors: &[],
                };
                self.kernel_reply(machine, space, args.buffer, 0, reply)
            }
            KernelFunction::ThreadCreate => {
                let r: ThreadCreateRequest = request(data)?;
                if r.reserved != 0 {
                    return Err(Error::ReservedBits);
                }
                let own_priority = self
                    .threads
                    .get(caller)
                    .map_or(0, |t| u32::from(t.priority));
                if r.priority > MAX_PRIORITY || r.priority > own_priority {
                    return Err(Error::InvalidArgument);
                }
                if r.entry >= USER_END || r.stack_top >= USER_END || !r.stack_top.is_multiple_of(16)
                {
                    return Err(Error::InvalidArgument);
                }
                if self
                    .processes
                    .get(process)
                    .is_some_and(|p| p.table.room() == 0)
                {
                    return Err(Error::TableFull);
                }
                let start = UserStart {
                    entry: r.entry,
                    stack_pointer: r.stack_top,
                    arg0: r.argument,
                    arg1: 0,
                    arg2: 0,
                };
                let thread = self.create_thread(machine, process, start, r.priority as u8)?;
                match self.create_handle(process, ObjectBody::Thread(thread)) {
                    Ok(descriptor) => {
                        let rights = Rights::HANDLE;
                        let reply = KernelReply {
                            payload: &[],
                            descriptors: &[(descriptor, rights)],
                        };
                        self.kernel_reply(machine, space, args.buffer, 0, reply)
                    }
                    Err(error) => {
                        self.end_thread(machine, thread, 0);
                        Err(error)
                    }
                }
            }
            KernelFunction::ThreadExit => {
                let r: ExitRequest = request(data)?;
                if r.reserved != 0 {
                    return Err(Error::ReservedBits);
                }
                self.end_thread(machine, caller, r.code);
                Ok(None)
            }
            KernelFunction::ProcessExit => {
                let r: ExitRequest = request(data)?;
                if r.reserved != 0 {
                    return Err(Error::ReservedBits);
                }
                self.end_process(machine, process, r.code);
                Ok(None)
            }
            KernelFunction::Yield => {
                if !data.is_empty() {
                    return Err(Error::BadSizes);
                }
                let registers = self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)?;
                if let Some(registers) = registers {
                    self.set_resume(caller, registers);
                }
                self.make_ready(caller);
                self.current = None;
                Ok(None)
            }
            KernelFunction::MapAnonymous => {
                let r: MapRequest = request(data)?;
                check_map_protection(r.protection, r.reserved)?;
                check_range(r.address, r.length)?;
                let p = self.process_mut(process)?;
                p.charge(r.length)?;
                let at = (r.address != 0).then_some(r.address);
                match machine.map_anonymous(space, at, r.length, r.protection) {
                    Ok(address) => {
                        let reply = MapReply { address };
                        let reply = KernelReply {
                            payload: reply.as_bytes(),
                            descriptors: &[],
                        };
                        self.kernel_reply(machine, space, args.buffer, 0, reply)
                    }
                    Err(error) => {
                        if let Some(p) = self.processes.get_mut(process) {
                            p.uncharge(r.length);
                        }
                        Err(error)
                    }
                }
            }
            KernelFunction::Unmap => {
                let r: MapRequest = request(data)?;
                check_protection(r.protection, r.reserved)?;
                if r.protection != 0 {
                    return Err(Error::ReservedBits);
                }
                check_range(r.address, r.length)?;
                let freed = machine.unmap(space, r.address, r.length)?;
                if let Some(p) = self.processes.get_mut(process) {
                    p.uncharge(freed);
                }
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::Protect => {
                let r: MapRequest = request(data)?;
                check_map_protection(r.protection, r.reserved)?;
                check_range(r.address, r.length)?;
                machine.protect(space, r.address, r.length, r.protection)?;
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::EventCreate => {
                if !data.is_empty() {
                    return Err(Error::BadSizes);
                }
                let descriptor = self.create_referenced(
                    process,
                    ObjectBody::Event(Event::default()),
                    Rights::EVENT,
                )?;
                let reply = KernelReply {
                    payload: &[],
                    descriptors: &[(descriptor, Rights::EVENT)],
                };
                self.kernel_reply(machine, space, args.buffer, 0, reply)
            }
            KernelFunction::EventSignal | KernelFunction::EventWait => {
                if !data.is_empty() {
                    return Err(Error::BadSizes);
                }
                let p = self.process(process)?;
                let reference = *p.table.get(args.target)?;
                let needed = if function == KernelFunction::EventSignal {
                    Rights::SIGNAL
                } else {
                    Rights::WAIT
                };
                self.objects
                    .get_mut(reference.object)
                    .and_then(|o| o.event_mut())
                    .ok_or(Error::WrongObjectType)?;
                if !reference.rights.contains(needed) {
                    return Err(Error::MissingRight);
                }
                if function == KernelFunction::EventSignal {
                    self.signal_event(machine, reference.object)?;
                    self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
                } else {
                    self.wait_event(machine, caller, space, args.buffer, reference.object)
                }
            }
            KernelFunction::DebugWrite => {
                machine.console_write(data);
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::DebugExit => {
                let r: ExitRequest = request(data)?;
                if r.reserved != 0 {
                    return Err(Error::ReservedBits);
                }
                machine.debug_exit(r.code == 0)?;
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::Counters => {
                if !data.is_empty() {
                    return Err(Error::BadSizes);
                }
                let counters = abi::kcall::KernelCounters {
                    free_frames: machine.free_frames(),
                    ..self.counters()
                };
                let reply = KernelReply {
                    payload: counters.as_bytes(),
                    descriptors: &[],
                };
                self.kernel_reply(machine, space, args.buffer, 0, reply)
            }
            KernelFunction::DoorCreate => {
                let r: DoorCreateRequest = request(data)?;
                if r.system > 1 {
                    return Err(Error::InvalidArgument);
                }
                let p = self.process(process)?;
                if p.table.room() < 2 {
                    return Err(Error::TableFull);
                }
                let door = Door::new(process, r.system == 1, r.security_type);
                let owner_rights = Rights::DOOR_OWNER;
                let owner =
                    self.create_referenced(process, ObjectBody::Door(door), owner_rights)?;
                let object = self
                    .processes
                    .get(process)
                    .and_then(|p| p.table.get(owner).ok())
                    .map(|r| r.object);
                let client = match object {
                    Some(object) => self.install_reference(process, object, Rights::DOOR_CLIENT),
                    None => Err(Error::InvalidArgument),
                };
                let client = match client {
                    Ok(client) => client,
                    Err(error) => {
                        let _ = self.close(process, owner);
                        return Err(error);
                    }
                };
                let reply = KernelReply {
                    payload: &[],
                    descriptors: &[(owner, owner_rights), (client, Rights::DOOR_CLIENT)],
                };
                self.kernel_reply(machine, space, args.buffer, 0, reply)
            }
            KernelFunction::ProcessExited => Err(Error::InvalidFunction),
            KernelFunction::ProcessSetCookie => {
                let r: CookieRequest = request(data)?;
                let handle = target.ok_or(Error::FunctionOutOfRange)?;
                let target = match self.objects.get(handle.object).map(|o| &o.body) {
                    Some(ObjectBody::Process(target)) => *target,
                    _ => return Err(Error::WrongObjectType),
                };
                let target = self.processes.get_mut(target).ok_or(Error::PeerDied)?;
                target.manager_cookie = r.cookie;
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::ManagerRegister => {
                let r: DescriptorRequest = request(data)?;
                if r.rights != 0 {
                    return Err(Error::ReservedBits);
                }
                let p = self.process(process)?;
                let reference = *p.table.get(Descriptor(r.descriptor))?;
                self.door(reference.object)?;
                if !reference.rights.contains(Rights::RECEIVE) {
                    return Err(Error::NotOwner);
                }
                // Room for every notice it may have to hold, so an exit is
                // never lost to a failed allocation.
                self.door(reference.object)?
                    .notices
                    .try_reserve(crate::ipc::MAX_NOTICES)
                    .map_err(|_| Error::OutOfMemory)?;
                self.process_manager = Some(process);
                self.process_manager_door = Some(reference.object);
                self.kernel_reply(machine, space, args.buffer, 0, NO_REPLY)
            }
            KernelFunction::ArchiveRead => {
                let header: ArchiveReadRequest = ArchiveReadRequest::read_from_prefix(data)
                    .map(|(r, _)| r)
                    .map_err(|_| Error::BadSizes)?;
                let name_end =
                    size_of::<ArchiveReadRequest>().saturating_add(header.name_length as usize);
                if name_end != data.len() || header.reserved != 0 {
                    return Err(if header.reserved != 0 {
                        Error::ReservedBits
                    } else {
                        Error::BadSizes
                    });
                }
                let name = &data[size_of::<ArchiveReadRequest>()..name_end];
                self.archive_read(
                    machine,
                    space,
                    args.buffer,
                    layout.total_size,
                    name,
                    header.offset,
                )
            }
            KernelFunction::Spawn => {
                let header: SpawnRequest = SpawnRequest::read_from_prefix(data)
                    .map(|(r, _)| r)
                    .map_err(|_| Error::BadSizes)?;
                let name_end = 8usize.saturating_add(header.name_length as usize);
                let end = name_end.saturating_add(header.argument_length as usize);
                if end != data.len() || header.name_length == 0 {
                    return Err(Error::BadSizes);
                }
                if header.argument_length as usize > MAX_ARGUMENT_BYTES {
                    return Err(Error::InvalidArgument);
                }
                let name = &data[8..name_end];
                let arguments = &data[name_end..end];
                let mut slots = alloc::vec::Vec::new();
                self.read_slots(machine, space, args.buffer, layout, &mut slots)?;
                self.check_slots(process, &slots)?;
                if self
                    .processes
                    .get(process)
                    .is_some_and(|p| p.table.room() == 0)
                {
                    return Err(Error::TableFull);
                }
                let (child, _) = self.create_process(
                    machine,
                    name,
                    arguments,
                    crate::lifecycle::DEFAULT_MEMORY_LIMIT,
                    |kernel, child| kernel.install_initial_descriptors(process, child, &slots),
                )?;
                let descriptor = self.create_handle(process, ObjectBody::Process(child))?;
                let rights = Rights::HANDLE;
                let reply = KernelReply {
                    payload: &[],
                    descriptors: &[(descriptor, rights)],
                };
                self.kernel_reply(machine, space, args.buffer, 0, reply)
            }
        }
    }

    /// ARCHIVE_READ: the reply header, then as much of the file from
    /// `offset` as fits the caller's buffer.
    fn archive_read(
        &mut self,
        machine: &mut impl Machine,
        space: crate::process::SpaceId,
        buffer: u64,
        total_size: u16,
        name: &[u8],
        offset: u64,
    ) -> Outcome {
        let header_end = REPLY_PAYLOAD_OFFSET + size_of::<ArchiveReadReply>();
        let room = usize::from(total_size).saturating_sub(header_end);
        let mut chunk = [0u8; 256];
        let mut copied = 0usize;
        let mut size = machine.read_archive(name, offset, &mut [])?.0;
        while copied < room {
            let want = (room - copied).min(chunk.len());
            let (file_size, got) =
                machine.read_archive(name, offset + copied as u64, &mut chunk[..want])?;
            size = file_size;
            if got == 0 {
                break;
            }
            machine.write_user(space, buffer + (header_end + copied) as u64, &chunk[..got])?;
            copied += got;
        }
        let mut head = [0u8; 16];
        head[REPLY_PAYLOAD_OFFSET..].copy_from_slice(&size.to_le_bytes());
        machine.write_user(space, buffer, &head)?;
        let sizes = MessageSizes::new().with_data_size((header_end + copied) as u16);
        Ok(Some(TrapArgs::replied(0, 0, sizes)))
    }

    /// Creates an object and the caller's first reference to it.
    fn create_referenced(
        &mut self,
        process: ProcessId,
        body: ObjectBody,
        rights: Rights,
    ) -> Result<Descriptor, Error> {
        let object = self.create_object(process, body)?;
        match self.install_reference(process, object, rights) {
            Ok(descriptor) => Ok(descriptor),
            Err(error) => {
                // Nothing refers to it yet: count one and drop it to free it.
                self.retain(object);
                self.release(object);
                Err(error)
            }
        }
    }

    /// Writes a kernel reply into the caller's buffer and returns the SEND's
    /// return registers.
    fn kernel_reply(
        &mut self,
        machine: &mut impl Machine,
        space: crate::process::SpaceId,
        buffer: u64,
        ret_val: u32,
        reply: KernelReply<'_>,
    ) -> Outcome {
        let data_size = REPLY_PAYLOAD_OFFSET + reply.payload.len();
        let mut bytes = [0u8; LARGEST_REPLY];
        bytes[..4].copy_from_slice(&ret_val.to_le_bytes());
        bytes[REPLY_PAYLOAD_OFFSET..data_size].copy_from_slice(reply.payload);
        let slots_at = usize::from(descriptor_offset(data_size as u16));
        for (index, (descriptor, rights)) in reply.descriptors.iter().enumerate() {
            let slot = DescriptorSlot::copy(*descriptor, *rights);
            let at = slots_at + index * 16;
            bytes[at..at + 16].copy_from_slice(slot.as_bytes());
        }
        let used = usize::from(reply_extent(
            reply.payload.len(),
            reply.descriptors.len() as u8,
        ));
        machine.write_user(space, buffer, &bytes[..used])?;
        let sizes = MessageSizes::new()
            .with_data_size(data_size as u16)
            .with_descriptor_count(reply.descriptors.len() as u8);
        Ok(Some(TrapArgs::replied(ret_val, 0, sizes)))
    }

    fn signal_event(&mut self, machine: &mut impl Machine, event: ObjectId) -> Result<(), Error> {
        let e = self
            .objects
            .get_mut(event)
            .and_then(|o| o.event_mut())
            .ok_or(Error::WrongObjectType)?;
        match e.waiters.pop_front() {
            Some(waiter) => {
                let remaining = e.count;
                self.release(event);
                let space = self.space_of(waiter);
                let buffer = match self.threads.get(waiter).map(|t| t.state) {
                    Some(ThreadState::Waiting { buffer, .. }) => buffer,
                    _ => 0,
                };
                let registers = match space {
                    Some(space) => self.kernel_reply(machine, space, buffer, remaining, NO_REPLY),
                    None => Ok(None),
                };
                match registers {
                    Ok(Some(registers)) => self.wake(waiter, registers),
                    Ok(None) => {}
                    Err(error) => self.wake(waiter, TrapArgs::error(error)),
                }
            }
            None => e.count = e.count.saturating_add(1),
        }
        Ok(())
    }

    fn wait_event(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        space: crate::process::SpaceId,
        buffer: u64,
        event: ObjectId,
    ) -> Outcome {
        let e = self
            .objects
            .get_mut(event)
            .and_then(|o| o.event_mut())
            .ok_or(Error::WrongObjectType)?;
        if e.count > 0 {
            e.count -= 1;
            let remaining = e.count;
            return self.kernel_reply(machine, space, buffer, remaining, NO_REPLY);
        }
        crate::ipc::room_for_one(&mut e.waiters)?;
        e.waiters.push_back(caller);
        self.retain(event);
        self.block(caller, ThreadState::Waiting { event, buffer });
        Ok(None)
    }
}
