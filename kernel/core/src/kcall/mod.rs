//! The kernel functions (range `0x0-0x3FF`, other than the three trap
//! operations): ordinary SENDs whose server is the kernel itself.
//!
//! Decode, then invoke, the seL4 way: [`Kernel::kernel_function`] decodes
//! what every function shares (the target object and the caller's right to
//! it, the buffer, the request bytes, room for the reply) and hands a
//! [`Call`] to one function per kernel function, grouped by the kind of
//! object it acts on (one file each). Each function decodes the rest of its
//! request completely before it acts, so a refused request changes nothing.
//! Replies follow the message format: msgRetVal, msgErrno (0), the payload
//! at `REPLY_PAYLOAD_OFFSET`, new descriptors in the reply slots.

mod descriptors;
pub mod devices;
mod doors;
mod events;
mod log;
mod memory;
mod memory_objects;
mod processes;
mod signals;
mod smo;
mod system;
mod threads;

use abi::kcall::{
    ArchiveReadReply, ClockReply, DescriptorInfo, KernelCounters, LogReadReply, MachineInfo,
    MapReply, MemoryInfo, ProcessIdReply, REPLY_PAYLOAD_OFFSET, SmoReply,
};
use abi::message::{DescriptorSlot, descriptor_offset, message_extent};
use abi::trap::SendArgs;
use abi::{
    Descriptor, Error, KernelFunction, MessageLayout, MessageSizes, ObjectKind, Rights, TrapArgs,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::descriptor_table::Reference;
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::object::ObjectBody;
use crate::process::{ProcessId, SpaceId};
use crate::thread::ThreadId;

/// The kind of object a kernel function is sent to; `None` for the NULL target.
fn required_target(function: KernelFunction) -> Option<ObjectKind> {
    match function {
        KernelFunction::EventSignal | KernelFunction::EventWait => Some(ObjectKind::Event),
        KernelFunction::ProcessSetCookie
        | KernelFunction::ProcessKill
        | KernelFunction::ProcessSuspend
        | KernelFunction::ProcessResume
        | KernelFunction::ProcessMap
        | KernelFunction::ProcessStart => Some(ObjectKind::Process),
        KernelFunction::DoorCreate
        | KernelFunction::Spawn
        | KernelFunction::ProcessCreate
        | KernelFunction::ManagerRegister => Some(ObjectKind::ProcessControl),
        KernelFunction::ArchiveRead => Some(ObjectKind::BootArchive),
        KernelFunction::DebugExit
        | KernelFunction::MachineInfo
        | KernelFunction::MemoryDirect
        | KernelFunction::IoPortGrant
        | KernelFunction::InterruptCreate
        | KernelFunction::LogTake => Some(ObjectKind::MachineControl),
        KernelFunction::MemoryMap | KernelFunction::MemoryCow | KernelFunction::MemoryInfo => {
            Some(ObjectKind::Memory)
        }
        // A door of either kind (`kind_fits`).
        KernelFunction::PagerCreate => Some(ObjectKind::UserDoor),
        KernelFunction::InterruptAck => Some(ObjectKind::Interrupt),
        KernelFunction::LogRead => Some(ObjectKind::KernelLog),
        // A thread or a process handle (`kind_fits`), or NULL (the caller).
        KernelFunction::ThreadInterrupt => Some(ObjectKind::Thread),
        _ => None,
    }
}

/// The payload size and descriptor count of each function's reply, checked
/// against the caller's buffer before anything happens.
fn reply_shape(function: KernelFunction) -> (usize, u8) {
    match function {
        KernelFunction::DescriptorInfo => (size_of::<DescriptorInfo>(), 0),
        KernelFunction::MapAnonymous | KernelFunction::MemoryMap => (size_of::<MapReply>(), 0),
        KernelFunction::MemoryInfo => (size_of::<MemoryInfo>(), 0),
        KernelFunction::MachineInfo => (size_of::<MachineInfo>(), 0),
        KernelFunction::Counters => (size_of::<KernelCounters>(), 0),
        KernelFunction::Clock => (size_of::<ClockReply>(), 0),
        KernelFunction::SmoShare => (size_of::<SmoReply>(), 0),
        KernelFunction::ProcessId => (size_of::<ProcessIdReply>(), 0),
        KernelFunction::CpuCounters => (size_of::<abi::kcall::CpuCountersReply>(), 0),
        KernelFunction::SignalMask => (size_of::<abi::upcall::SignalMaskReply>(), 0),
        KernelFunction::Duplicate
        | KernelFunction::ThreadCreate
        | KernelFunction::EventCreate
        | KernelFunction::MemoryCreate
        | KernelFunction::MemoryCow
        | KernelFunction::MemoryDirect
        | KernelFunction::PagerCreate
        | KernelFunction::InterruptCreate
        | KernelFunction::LogTake
        | KernelFunction::Spawn
        | KernelFunction::ProcessCreate => (0, 1),
        KernelFunction::DoorCreate => (0, 2),
        KernelFunction::ArchiveRead => (size_of::<ArchiveReadReply>(), 0),
        // The header and room for the longest line (`log::log_read`).
        KernelFunction::LogRead => (size_of::<LogReadReply>() + abi::kcall::MAX_LOG_LINE, 0),
        _ => (0, 0),
    }
}

/// Whether an object of `actual` kind is a target of `required` kind: a
/// door target may be a user or a system door.
fn kind_fits(required: ObjectKind, actual: ObjectKind) -> bool {
    required == actual
        || (required == ObjectKind::UserDoor && actual == ObjectKind::SystemDoor)
        || (required == ObjectKind::Thread && actual == ObjectKind::Process)
}

/// Requests up to this size are read onto the stack.
const SMALL_REQUEST: usize = 64;

/// The largest kernel reply: header, the biggest payload, two slots.
const LARGEST_REPLY: usize = 128;

/// One kernel function call, decoded as far as every function shares.
struct Call<'a> {
    /// The calling thread.
    caller: ThreadId,
    /// Its process.
    process: ProcessId,
    /// Its address space, where the buffer lies.
    space: SpaceId,
    /// The caller's message buffer: the request in, the reply out.
    buffer: u64,
    /// The buffer's sizes as the caller gave them.
    layout: MessageLayout,
    /// The caller's reference to the target object (`None`: the NULL target),
    /// already checked to be of the kind the function needs.
    target: Option<Reference>,
    /// The request's data bytes.
    data: &'a [u8],
}

impl Call<'_> {
    /// The request as one fixed-size `T`: the data must be exactly one.
    fn request<T: FromBytes + KnownLayout + Immutable>(&self) -> Result<T, Error> {
        T::read_from_bytes(self.data).map_err(|_| Error::BadSizes)
    }

    /// Refuses any request data: for functions that take none.
    fn no_request(&self) -> Result<(), Error> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(Error::BadSizes)
        }
    }

    /// The target reference, for functions whose [`required_target`] is set
    /// (the dispatcher guarantees it then).
    fn target(&self) -> Result<Reference, Error> {
        self.target.ok_or(Error::FunctionOutOfRange)
    }
}

/// A kernel reply being assembled: payload bytes and new descriptors.
struct KernelReply<'a> {
    payload: &'a [u8],
    descriptors: &'a [(Descriptor, Rights)],
}

const NO_REPLY: KernelReply<'static> = KernelReply {
    payload: &[],
    descriptors: &[],
};

impl<'a> KernelReply<'a> {
    /// A reply carrying only `payload`.
    fn payload(payload: &'a [u8]) -> Self {
        KernelReply {
            payload,
            descriptors: &[],
        }
    }

    /// A reply carrying only new descriptors.
    fn descriptors(descriptors: &'a [(Descriptor, Rights)]) -> Self {
        KernelReply {
            payload: &[],
            descriptors,
        }
    }
}

/// The bytes a kernel reply with this payload and slot count occupies.
fn reply_extent(payload: usize, slots: u8) -> u16 {
    message_extent((REPLY_PAYLOAD_OFFSET + payload) as u16, slots)
}

impl Kernel {
    /// Runs kernel function `function` (`args.function`, decoded by
    /// `Kernel::send`, which refuses an unused number itself) for
    /// `caller`. Never inlined into
    /// `Kernel::send`: the door path keeps a frame of its own size however
    /// many kernel functions there are.
    #[inline(never)]
    pub(crate) fn kernel_function(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        function: KernelFunction,
        args: SendArgs,
        layout: MessageLayout,
    ) -> Outcome {
        let process = self.process_of(caller)?;
        // Which object the function is sent to; the capability targets are
        // the authority ("privilege" is holding one).
        let target = match (required_target(function), args.target.is_null()) {
            (None, true) => None,
            // THREAD_INTERRUPT's NULL target is the caller.
            (Some(_), true) if function == KernelFunction::ThreadInterrupt => None,
            (None, false) | (Some(_), true) => return Err(Error::FunctionOutOfRange),
            (Some(kind), false) => {
                let p = self.process(process)?;
                let reference = *p.table.get(args.target)?;
                let object = self
                    .objects
                    .get(reference.object)
                    .ok_or(Error::BadDescriptor)?;
                if !kind_fits(kind, object.kind()) {
                    return Err(Error::WrongObjectType);
                }
                // SEND is the right to invoke kernel functions on a
                // capability or a handle; events check SIGNAL and WAIT,
                // memory objects their memory rights.
                if matches!(
                    object.body,
                    ObjectBody::Capability(_)
                        | ObjectBody::Process(_)
                        | ObjectBody::Door(_)
                        | ObjectBody::Thread(_)
                ) && !reference.rights.contains(Rights::SEND)
                {
                    return Err(Error::MissingRight);
                }
                Some(reference)
            }
        };
        let takes_slots = matches!(
            function,
            KernelFunction::Spawn | KernelFunction::ProcessCreate
        );
        if !takes_slots && layout.descriptor_count != 0 {
            return Err(Error::BadSizes);
        }
        let space = self.process(process)?.space;
        if layout.total_size > 0 {
            self.check_writable(machine, space, args.buffer, usize::from(layout.total_size))?;
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

        // The reply must fit before anything happens.
        let (payload_size, reply_slots) = reply_shape(function);
        if reply_extent(payload_size, reply_slots) > layout.total_size {
            return Err(Error::BadSizes);
        }

        let call = Call {
            caller,
            process,
            space,
            buffer: args.buffer,
            layout,
            target,
            data,
        };
        match function {
            KernelFunction::Receive | KernelFunction::Reply | KernelFunction::ReplyReceive => {
                Err(Error::InvalidFunction)
            }
            KernelFunction::Close => descriptors::close(self, machine, &call),
            KernelFunction::Duplicate => descriptors::duplicate(self, machine, &call),
            KernelFunction::DescriptorInfo => descriptors::info(self, machine, &call),
            KernelFunction::ThreadCreate => threads::thread_create(self, machine, &call),
            KernelFunction::ThreadExit => threads::thread_exit(self, machine, &call),
            KernelFunction::ProcessExit => processes::process_exit(self, machine, &call),
            KernelFunction::Yield => threads::yield_now(self, machine, &call),
            KernelFunction::ThreadAffinity => threads::affinity(self, machine, &call),
            KernelFunction::CpuCounters => threads::cpu_counters(self, machine, &call),
            KernelFunction::Spawn => processes::spawn(self, machine, &call),
            KernelFunction::ProcessSetCookie => processes::process_set_cookie(self, machine, &call),
            KernelFunction::MapAnonymous => memory::map_anonymous(self, machine, &call),
            KernelFunction::Unmap => memory::unmap(self, machine, &call),
            KernelFunction::Protect => memory::protect(self, machine, &call),
            KernelFunction::MemoryCreate => memory_objects::create(self, machine, &call),
            KernelFunction::MemoryMap => memory_objects::map(self, machine, &call),
            KernelFunction::MemoryCow => memory_objects::cow(self, machine, &call),
            KernelFunction::MemoryInfo => memory_objects::info(self, machine, &call),
            KernelFunction::MemoryDirect => memory_objects::direct(self, machine, &call),
            KernelFunction::PagerCreate => memory_objects::pager_create(self, machine, &call),
            KernelFunction::EventCreate => events::create(self, machine, &call),
            KernelFunction::EventSignal => events::signal(self, machine, &call),
            KernelFunction::EventWait => events::wait(self, machine, &call),
            KernelFunction::DoorCreate => doors::create(self, machine, &call),
            KernelFunction::ManagerRegister => doors::manager_register(self, machine, &call),
            // A notice only the kernel sends (to the process manager).
            KernelFunction::ProcessExited | KernelFunction::PageRequest => {
                Err(Error::InvalidFunction)
            }
            KernelFunction::DebugWrite => system::debug_write(self, machine, &call),
            KernelFunction::DebugExit => system::debug_exit(self, machine, &call),
            KernelFunction::Counters => system::counters(self, machine, &call),
            KernelFunction::Clock => system::clock(self, machine, &call),
            KernelFunction::MachineInfo => system::machine_info(self, machine, &call),
            KernelFunction::IoPortGrant => devices::io_port_grant(self, machine, &call),
            KernelFunction::InterruptCreate => devices::interrupt_create(self, machine, &call),
            KernelFunction::InterruptAck => devices::interrupt_ack(self, machine, &call),
            KernelFunction::LogTake => log::log_take(self, machine, &call),
            KernelFunction::LogRead => log::log_read(self, machine, &call),
            KernelFunction::ProcessKill => processes::process_kill(self, machine, &call),
            KernelFunction::ArchiveRead => system::archive_read(self, machine, &call),
            KernelFunction::SmoShare => smo::share(self, machine, &call),
            KernelFunction::SmoClaim => smo::claim(self, machine, &call),
            KernelFunction::SmoPass => smo::pass(self, machine, &call),
            KernelFunction::SmoRead => smo::copy(self, machine, &call, crate::smo::Direction::Read),
            KernelFunction::SmoWrite => {
                smo::copy(self, machine, &call, crate::smo::Direction::Write)
            }
            KernelFunction::ProcessId => processes::process_id(self, machine, &call),
            KernelFunction::ProcessCreate => processes::create(self, machine, &call),
            KernelFunction::ProcessMap => processes::map(self, machine, &call),
            KernelFunction::ProcessStart => processes::start(self, machine, &call),
            KernelFunction::ThreadInterrupt => signals::thread_interrupt(self, machine, &call),
            KernelFunction::UpcallRegister => signals::upcall_register(self, machine, &call),
            KernelFunction::UpcallReturn => signals::upcall_return(self, machine, &call),
            KernelFunction::SignalMask => signals::signal_mask(self, machine, &call),
            KernelFunction::ProcessSuspend => processes::process_suspend(self, machine, &call),
            KernelFunction::ProcessResume => processes::process_resume(self, machine, &call),
        }
    }

    /// Writes `reply` into the caller's buffer and returns the SEND's
    /// return registers.
    fn reply_to(
        &mut self,
        machine: &mut impl Machine,
        call: &Call<'_>,
        reply: KernelReply<'_>,
    ) -> Outcome {
        self.kernel_reply(machine, call.space, call.buffer, 0, reply)
    }

    /// Writes a kernel reply into a buffer of `space` and returns the SEND's
    /// return registers.
    fn kernel_reply(
        &mut self,
        machine: &mut impl Machine,
        space: SpaceId,
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

    /// Creates an object and the caller's first reference to it.
    fn create_referenced(
        &mut self,
        process: ProcessId,
        body: ObjectBody,
        rights: Rights,
    ) -> Result<Descriptor, Error> {
        self.reserve_object(process, 1)?;
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
}
