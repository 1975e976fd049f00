//! One function per kernel function (`abi::KernelFunction`, range
//! `0x0-0x3FF`) but the three trap operations (see [`crate::ipc`]).
//!
//! A kernel function is an ordinary SEND to the NULL target or to the
//! object it acts on (an event, a process handle, a kernel capability:
//! ABI.md §6 "Targets"): the request struct
//! (`abi::kcall`) is the message data; on success the kernel replies like a
//! server, msgRetVal, msgErrno (0), then the reply struct at
//! `REPLY_PAYLOAD_OFFSET`, and new descriptors in the reply's slots; on
//! failure the trap returns the kernel error. Each call here uses a small
//! stack buffer big enough for its request and its reply.

use abi::function::KernelFunction;
use abi::kcall::{
    self, ArchiveReadReply, ArchiveReadRequest, ClockReply, CookieRequest, DirectRequest,
    DoorCreateRequest, ExitRequest, KernelCounters, MachineInfo, MapReply, MemoryCreateRequest,
    MemoryInfo, MemoryMapRequest, MemoryRangeRequest, ProcessIdReply, ProcessMapRequest,
    ProcessStartRequest, SmoCopyRequest, SmoPassRequest, SmoReply, SmoRequest, SmoShareRequest,
    SpawnRequest, ThreadCreateRequest,
};
use abi::{Descriptor, DescriptorSlot, Error, ObjectKind, Rights};
use zerocopy::{FromBytes, IntoBytes};

use crate::arch;
use crate::descriptor::OwnedDescriptor;
use crate::ipc;
use crate::message::{CAPACITY, Message};

/// Reported when a kernel reply is shorter than its documented layout
/// (a kernel bug): the reply's sizes do not fit what was asked.
const SHORT_REPLY: Error = Error::BadSizes;

/// The buffer of a kernel call with a fixed-size request and reply: the
/// largest (COUNTERS: 8 + 48 bytes) fits.
const SMALL: usize = 64;

/// Sends `message` as kernel function `function` to `target`; on success
/// the message holds the reply and the result is msgRetVal.
fn kernel_call<B: AsRef<[u8]> + AsMut<[u8]>>(
    function: KernelFunction,
    target: Descriptor,
    message: &mut Message<B>,
) -> Result<u32, Error> {
    let sizes = message.sizes();
    let reply = ipc::send(function.function(), target, message.buffer_mut(), sizes)?;
    message.set_arrived(reply.sizes).map_err(|_| SHORT_REPLY)?;
    Ok(reply.ret_val)
}

/// A kernel call whose request is `request` (possibly empty), in a small
/// stack buffer; `read` takes what it needs from the reply.
fn small_call<T>(
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
    read: impl FnOnce(u32, &mut Message<&mut [u8]>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut buffer = [0u8; SMALL];
    let mut message = Message::over(&mut buffer[..]);
    message.push_data(request).map_err(|_| Error::BadSizes)?;
    let ret_val = kernel_call(function, target, &mut message)?;
    let result = read(ret_val, &mut message);
    // Descriptors nobody asked for would otherwise leak.
    message.discard();
    result
}

/// The reply struct at the payload offset.
fn payload<T: FromBytes>(message: &Message<&mut [u8]>) -> Result<T, Error> {
    message.read_payload(0).ok_or(SHORT_REPLY)
}

/// The descriptor in reply slot `index`.
fn reply_descriptor(
    message: &mut Message<&mut [u8]>,
    index: usize,
) -> Result<OwnedDescriptor, Error> {
    message.take_descriptor(index).ok_or(SHORT_REPLY)
}

/// CLOSE: removes `descriptor` from this process's table. Closing a
/// door's owner reference ends the door.
pub fn close(descriptor: Descriptor) -> Result<(), Error> {
    let request = kcall::close(descriptor);
    small_call(
        KernelFunction::Close,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// DUPLICATE: a new descriptor for the object `descriptor` names, with
/// `rights` (a subset of its rights).
pub fn duplicate(descriptor: Descriptor, rights: Rights) -> Result<OwnedDescriptor, Error> {
    let request = kcall::duplicate(descriptor, rights);
    small_call(
        KernelFunction::Duplicate,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// What DESCRIPTOR_INFO tells about a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescriptorInfo {
    /// The kind of object it names (`None`: a kind this userlib does not know).
    pub kind: Option<ObjectKind>,
    /// The rights the reference holds.
    pub rights: Rights,
}

/// DESCRIPTOR_INFO: the kind of object `descriptor` names and its rights.
pub fn descriptor_info(descriptor: Descriptor) -> Result<DescriptorInfo, Error> {
    let request = kcall::descriptor_info(descriptor);
    small_call(
        KernelFunction::DescriptorInfo,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| {
            let info: abi::kcall::DescriptorInfo = payload(reply)?;
            Ok(DescriptorInfo {
                kind: ObjectKind::from_number(info.kind),
                rights: Rights(info.rights),
            })
        },
    )
}

/// THREAD_CREATE: starts a thread in this process at `entry` with
/// `rsp = stack_top` (16-byte aligned) and `rdi = argument`, at `priority`
/// (at most the caller's). Most code wants [`crate::spawn_thread`].
pub fn thread_create(
    entry: u64,
    stack_top: u64,
    argument: u64,
    priority: u32,
) -> Result<OwnedDescriptor, Error> {
    let request = ThreadCreateRequest::new(entry, stack_top, argument, priority);
    small_call(
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// Sends an exit request that does not return; if the kernel refuses it,
/// the process faults instead, so these never return either way.
fn exit(function: KernelFunction, code: u32) -> ! {
    let request = ExitRequest::new(code);
    let _ = small_call(
        function,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    );
    arch::abort()
}

/// THREAD_EXIT: ends the calling thread (the last thread's exit ends the
/// process with `code`).
pub fn thread_exit(code: u32) -> ! {
    exit(KernelFunction::ThreadExit, code)
}

/// PROCESS_EXIT: ends the calling process with `code`.
pub fn process_exit(code: u32) -> ! {
    exit(KernelFunction::ProcessExit, code)
}

/// YIELD: gives up the rest of the time slice.
pub fn yield_now() -> Result<(), Error> {
    small_call(KernelFunction::Yield, Descriptor::NULL, &[], |_, _| Ok(()))
}

/// MAP_ANONYMOUS: maps `length` bytes (a non-zero multiple of `abi::PAGE_SIZE`) of
/// zeroed memory with `protection` (`abi::kcall::protection` bits) at
/// `address`, or where the kernel chooses if `address` is 0; returns where.
pub fn map_anonymous(address: u64, length: u64, protection: u32) -> Result<u64, Error> {
    let request = kcall::map_anonymous(address, length, protection);
    small_call(
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| payload::<MapReply>(reply).map(|mapped| mapped.address),
    )
}

/// UNMAP: unmaps `length` bytes at `address` (both page-aligned).
pub fn unmap(address: u64, length: u64) -> Result<(), Error> {
    let request = kcall::unmap(address, length);
    small_call(
        KernelFunction::Unmap,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// PROTECT: changes the protection of a mapped range.
pub fn protect(address: u64, length: u64, protection: u32) -> Result<(), Error> {
    let request = kcall::protect(address, length, protection);
    small_call(
        KernelFunction::Protect,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// MEMORY_CREATE: a new anonymous memory object of `pages` zero-filled
/// pages, charged to this process (ABI.md §6.2); its reference has every
/// memory right (`Rights::MEMORY`).
pub fn memory_create(pages: u32) -> Result<OwnedDescriptor, Error> {
    let request = MemoryCreateRequest::new(pages);
    small_call(
        KernelFunction::MemoryCreate,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// MEMORY_MAP: maps `length` bytes of the memory object `object` from
/// `offset` at `address` (0: where the kernel chooses) with `protection`,
/// which the reference's memory rights must allow; returns where. Most
/// code wants [`crate::raw::RawPages::map_object`], which reads and writes
/// the mapping and unmaps it when dropped.
pub fn memory_map(
    object: Descriptor,
    address: u64,
    offset: u64,
    length: u64,
    protection: u32,
) -> Result<u64, Error> {
    let request = MemoryMapRequest::new(address, offset, length, protection);
    small_call(
        KernelFunction::MemoryMap,
        object,
        request.as_bytes(),
        |_, reply| payload::<MapReply>(reply).map(|mapped| mapped.address),
    )
}

/// MEMORY_COW: a copy-on-write child of the memory object's bytes
/// `[offset, offset + length)` (needs MAP_READ); it shares their frames
/// until either side writes.
pub fn memory_cow(object: Descriptor, offset: u64, length: u64) -> Result<OwnedDescriptor, Error> {
    let request = MemoryRangeRequest::new(offset, length);
    small_call(
        KernelFunction::MemoryCow,
        object,
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// MEMORY_INFO: the memory object's size in pages and its flags
/// (`abi::kcall::memory_flags`).
pub fn memory_info(object: Descriptor) -> Result<MemoryInfo, Error> {
    small_call(KernelFunction::MemoryInfo, object, &[], |_, reply| {
        payload(reply)
    })
}

/// MEMORY_DIRECT (sent to this process's machine-control capability): a
/// memory object over the physical range `[physical, physical + length)`,
/// for device registers and firmware tables; RAM the kernel owns is
/// refused with `KERNEL_RAM`.
pub fn memory_direct(physical: u64, length: u64) -> Result<OwnedDescriptor, Error> {
    let request = DirectRequest::new(physical, length);
    small_call(
        KernelFunction::MemoryDirect,
        crate::capability::of(ObjectKind::MachineControl),
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// PAGER_CREATE (sent to a door with SEND: the pager's): a special memory
/// object of `pages` pages that the pager behind `door` supplies when they
/// are first touched, each PAGE_REQUEST carrying `cookie` (ABI.md §6.4);
/// charged to this process like an anonymous object, its reference has
/// every memory right. Serve the door with [`crate::pager::PagerServer`].
pub fn pager_create(door: Descriptor, pages: u32, cookie: u64) -> Result<OwnedDescriptor, Error> {
    let request = abi::kcall::PagerCreateRequest::new(pages, cookie);
    small_call(
        KernelFunction::PagerCreate,
        door,
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// MACHINE_INFO (sent to this process's machine-control capability): what
/// the kernel learnt of the machine at boot, the ACPI RSDP's address.
pub fn machine_info() -> Result<MachineInfo, Error> {
    small_call(
        KernelFunction::MachineInfo,
        crate::capability::of(ObjectKind::MachineControl),
        &[],
        |_, reply| payload(reply),
    )
}

/// IO_PORT_GRANT (sent to this process's machine-control capability):
/// the process `process` names (a handle with SEND; `Descriptor::NULL`:
/// this process) may use the `count` ports from `first` with `in` / `out`
/// ([`crate::device`]).
pub fn io_port_grant(process: Descriptor, first: u16, count: u16) -> Result<(), Error> {
    let request = abi::kcall::IoPortRequest::new(process, first, count);
    small_call(
        KernelFunction::IoPortGrant,
        crate::capability::of(ObjectKind::MachineControl),
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// INTERRUPT_CREATE (sent to this process's machine-control capability):
/// ISA interrupt `line` signals `event` (which needs SIGNAL) each time it
/// fires, and stays masked until [`interrupt_ack`]; the interrupt object.
pub fn interrupt_create(line: u32, event: Descriptor) -> Result<OwnedDescriptor, Error> {
    let request = abi::kcall::InterruptRequest::new(line, event);
    small_call(
        KernelFunction::InterruptCreate,
        crate::capability::of(ObjectKind::MachineControl),
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// INTERRUPT_ACK: the delivery was served; the line is unmasked again.
pub fn interrupt_ack(interrupt: Descriptor) -> Result<(), Error> {
    small_call(KernelFunction::InterruptAck, interrupt, &[], |_, _| Ok(()))
}

/// LOG_TAKE (sent to this process's machine-control capability): the
/// kernel's lines go to its log ring from now on, `event` (which needs
/// SIGNAL) is signalled as they arrive; the kernel-log object, whose last
/// CLOSE gives COM1 back to the kernel (ABI.md §6.7).
pub fn log_take(event: Descriptor) -> Result<OwnedDescriptor, Error> {
    let request = abi::kcall::LogTakeRequest::new(event);
    small_call(
        KernelFunction::LogTake,
        crate::capability::of(ObjectKind::MachineControl),
        request.as_bytes(),
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// What one LOG_READ gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRead {
    /// Bytes of whole lines copied into the caller's `out`.
    pub bytes: usize,
    /// Lines among them.
    pub lines: u32,
    /// Lines the ring dropped since the last read.
    pub lost: u32,
}

/// LOG_READ on the kernel-log object: whole lines into `out` (as many as
/// fit, at most `MAX_LOG_READ` bytes), taken out of the ring. `out` needs
/// room for one longest line (`MAX_LOG_LINE`), else `BAD_SIZES`.
pub fn log_read(log: Descriptor, out: &mut [u8]) -> Result<LogRead, Error> {
    let mut buffer = [0u8; CAPACITY];
    let mut message = Message::over(&mut buffer[..]);
    // Room for what `out` takes, so no line leaves the ring unread.
    let room = (abi::kcall::REPLY_PAYLOAD_OFFSET + size_of::<abi::kcall::LogReadReply>())
        .saturating_add(out.len())
        .min(CAPACITY);
    let sizes = message.sizes().with_total_size(room as u16);
    let reply = ipc::send(
        KernelFunction::LogRead.function(),
        log,
        message.buffer_mut(),
        sizes,
    )?;
    message.set_arrived(reply.sizes).map_err(|_| SHORT_REPLY)?;
    let header: abi::kcall::LogReadReply = message.read_payload(0).ok_or(SHORT_REPLY)?;
    let bytes = message
        .payload()
        .get(size_of::<abi::kcall::LogReadReply>()..)
        .unwrap_or(&[]);
    let count = bytes.len().min(out.len());
    out[..count].copy_from_slice(&bytes[..count]);
    Ok(LogRead {
        bytes: count,
        lines: header.lines,
        lost: header.lost,
    })
}

/// PROCESS_KILL: the process `handle` names (SEND) ends with `status`.
pub fn process_kill(handle: Descriptor, status: u32) -> Result<(), Error> {
    small_call(
        KernelFunction::ProcessKill,
        handle,
        abi::kcall::ExitRequest::new(status).as_bytes(),
        |_, _| Ok(()),
    )
}

/// PROCESS_SUSPEND: none of the threads of the process `handle` names
/// (SEND) runs until [`process_resume`]; whether it was suspended already
/// (ABI.md §6.10).
pub fn process_suspend(handle: Descriptor) -> Result<bool, Error> {
    small_call(KernelFunction::ProcessSuspend, handle, &[], |ret_val, _| {
        Ok(ret_val != 0)
    })
}

/// PROCESS_RESUME: the process `handle` names runs again; whether it was
/// suspended.
pub fn process_resume(handle: Descriptor) -> Result<bool, Error> {
    small_call(KernelFunction::ProcessResume, handle, &[], |ret_val, _| {
        Ok(ret_val != 0)
    })
}

/// EVENT_CREATE: a new counting event (count 0). Most code wants
/// [`crate::Event::create`].
pub fn event_create() -> Result<OwnedDescriptor, Error> {
    small_call(
        KernelFunction::EventCreate,
        Descriptor::NULL,
        &[],
        |_, reply| reply_descriptor(reply, 0),
    )
}

/// EVENT_SIGNAL: adds one to the event's count, waking one waiter.
pub fn event_signal(event: Descriptor) -> Result<(), Error> {
    small_call(KernelFunction::EventSignal, event, &[], |_, _| Ok(()))
}

/// EVENT_WAIT: waits until the event's count is positive and takes one;
/// returns the count left.
pub fn event_wait(event: Descriptor) -> Result<u32, Error> {
    small_call(KernelFunction::EventWait, event, &[], |ret_val, _| {
        Ok(ret_val)
    })
}

/// The bytes one DEBUG_WRITE of [`debug_write`] carries.
const DEBUG_CHUNK: usize = kcall::MAX_DEBUG_WRITE;

/// DEBUG_WRITE: writes `text` to the kernel console, in pieces of
/// 512 bytes (each copied into a writable buffer that also takes the reply).
pub fn debug_write(text: &[u8]) -> Result<(), Error> {
    let mut buffer = [0u8; DEBUG_CHUNK];
    for piece in text.chunks(DEBUG_CHUNK) {
        buffer[..piece.len()].copy_from_slice(piece);
        debug_write_in(&mut buffer, piece.len())?;
    }
    Ok(())
}

/// DEBUG_WRITE of the first `length` bytes of `buffer`, whose whole length
/// (at least 8, for the reply) is the message's total size.
pub fn debug_write_in(buffer: &mut [u8], length: usize) -> Result<(), Error> {
    let mut message = Message::over(buffer);
    message
        .set_data_size(u16::try_from(length).map_err(|_| Error::BadSizes)?)
        .map_err(|_| Error::BadSizes)?;
    kernel_call(KernelFunction::DebugWrite, Descriptor::NULL, &mut message).map(|_| ())
}

/// DEBUG_EXIT: ends the machine with a test verdict (0 = success);
/// needs the machine-control capability, and works only when the kernel
/// was booted with `qemu-exit`.
/// Returns only the error that refused it.
pub fn debug_exit(code: u32) -> Error {
    let request = ExitRequest::new(code);
    match small_call(
        KernelFunction::DebugExit,
        crate::capability::of(ObjectKind::MachineControl),
        request.as_bytes(),
        |_, _| Ok(()),
    ) {
        Ok(()) => Error::InvalidFunction,
        Err(error) => error,
    }
}

/// COUNTERS: what the kernel holds right now.
pub fn counters() -> Result<KernelCounters, Error> {
    small_call(
        KernelFunction::Counters,
        Descriptor::NULL,
        &[],
        |_, reply| payload(reply),
    )
}

/// SMO_SHARE: shares `[address, address + size)` of this process's memory
/// with the process whose id is `target`, with `permissions`
/// (`abi::kcall::smo` bits); returns the SMO's number. [`crate::smo`] has
/// the typed and the Sartoris-style API over it.
pub fn smo_share(target: u64, address: u64, size: u64, permissions: u32) -> Result<u32, Error> {
    let request = SmoShareRequest::new(target, address, size, permissions);
    small_call(
        KernelFunction::SmoShare,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| payload::<SmoReply>(reply).map(|r| r.id),
    )
}

/// SMO_CLAIM: destroys an SMO this process created.
pub fn smo_claim(id: u32) -> Result<(), Error> {
    let request = SmoRequest::new(id);
    small_call(
        KernelFunction::SmoClaim,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// SMO_PASS: hands an SMO this process is the target of to the process
/// whose id is `target`.
pub fn smo_pass(id: u32, target: u64) -> Result<(), Error> {
    let request = SmoPassRequest::new(id, target);
    small_call(
        KernelFunction::SmoPass,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// SMO_READ: copies `dest.len()` bytes (at most `abi::kcall::smo::MAX_COPY`)
/// at `offset` of the SMO into `dest`.
pub fn smo_read(id: u32, offset: u64, dest: &mut [u8]) -> Result<(), Error> {
    let request = SmoCopyRequest::new(id, offset, dest.len() as u64, dest.as_mut_ptr() as u64);
    small_call(
        KernelFunction::SmoRead,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// SMO_WRITE: copies `src` (at most `abi::kcall::smo::MAX_COPY` bytes) to
/// `offset` of the SMO.
pub fn smo_write(id: u32, offset: u64, src: &[u8]) -> Result<(), Error> {
    let request = SmoCopyRequest::new(id, offset, src.len() as u64, src.as_ptr() as u64);
    small_call(
        KernelFunction::SmoWrite,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// PROCESS_ID: this process's id, the one procman gave it (SPAWN's reply
/// tells the parent the same number); 0 when none was given.
pub fn process_id() -> Result<u64, Error> {
    small_call(
        KernelFunction::ProcessId,
        Descriptor::NULL,
        &[],
        |_, reply| payload::<ProcessIdReply>(reply).map(|r| r.id),
    )
}

/// THREAD_AFFINITY: the calling thread runs only on the online CPUs of
/// `mask` (a bit per CPU index) from now on; it returns on one of them.
pub fn set_affinity(mask: u64) -> Result<(), Error> {
    let request = abi::kcall::AffinityRequest::new(mask);
    small_call(
        KernelFunction::ThreadAffinity,
        Descriptor::NULL,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// CPU_COUNTERS: CPU `cpu`'s dispatch count, how many CPUs are online, and
/// the CPU the caller runs on.
pub fn cpu_counters(cpu: u32) -> Result<abi::kcall::CpuCountersReply, Error> {
    let request = abi::kcall::CpuRequest::new(cpu);
    small_call(
        KernelFunction::CpuCounters,
        Descriptor::NULL,
        request.as_bytes(),
        |_, reply| payload(reply),
    )
}

/// Whether every other thread of the system is blocked or gone, as the
/// kernel saw it at the call: the caller's CPU the only one running a user
/// thread, and no thread ready (CPU_COUNTERS). A kernel without
/// CPU_COUNTERS runs one CPU: the answer is then yes, and only the
/// caller's priority can make it true (the conformance runner's sentinel
/// runs at priority 0).
pub fn others_blocked() -> bool {
    match cpu_counters(0) {
        Ok(counters) => counters.running <= 1 && counters.ready == 0,
        Err(_) => true,
    }
}

/// CLOCK: timer ticks since boot and their rate.
pub fn clock() -> Result<ClockReply, Error> {
    small_call(KernelFunction::Clock, Descriptor::NULL, &[], |_, reply| {
        payload(reply)
    })
}

/// The kind of door DOOR_CREATE makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoorKind {
    /// Accepts USER_BASE functions.
    User,
    /// Accepts SYSTEM_BASE functions.
    System,
}

/// The two references DOOR_CREATE returns.
#[derive(Debug)]
pub struct Door {
    /// The owner reference: RECEIVE on it; can be moved, never copied.
    pub owner: OwnedDescriptor,
    /// A client reference: SEND through it.
    pub client: OwnedDescriptor,
}

/// DOOR_CREATE (sent to this process's process-control capability): a new door of `kind` with `security_type`.
pub fn door_create(kind: DoorKind, security_type: u32) -> Result<Door, Error> {
    let request = DoorCreateRequest::new(kind == DoorKind::System, security_type);
    small_call(
        KernelFunction::DoorCreate,
        crate::capability::of(ObjectKind::ProcessControl),
        request.as_bytes(),
        |_, reply| {
            let owner = reply_descriptor(reply, 0)?;
            let client = reply_descriptor(reply, 1)?;
            Ok(Door { owner, client })
        },
    )
}

/// SPAWN (sent to this process's process-control capability): starts the boot-archive program `name` with
/// `arguments` (at most `abi::process::MAX_ARGUMENT_BYTES`); the
/// `descriptors` slots are transferred into the child as its descriptors
/// `1..=n`, in order. Returns the child's process descriptor.
///
/// Descriptors moved by the slots leave this process only if SPAWN
/// succeeds.
pub fn spawn(
    name: &str,
    arguments: &[u8],
    descriptors: &[DescriptorSlot],
) -> Result<OwnedDescriptor, Error> {
    let request = SpawnRequest::new(name.as_bytes(), arguments);
    let mut buffer = [0u8; CAPACITY];
    let mut message = Message::over(&mut buffer[..]);
    let built = (|| {
        message
            .push(&request)?
            .push_data(name.as_bytes())?
            .push_data(arguments)?;
        for slot in descriptors {
            message.push_descriptor(*slot)?;
        }
        Ok::<_, crate::MessageError>(())
    })();
    built.map_err(|_| Error::BadSizes)?;
    kernel_call(
        KernelFunction::Spawn,
        crate::capability::of(ObjectKind::ProcessControl),
        &mut message,
    )?;
    let process = reply_descriptor(&mut message, 0);
    message.discard();
    process
}

/// PROCESS_CREATE (needs the process-control capability): an empty
/// process with `descriptors` as its descriptors 1..=n and no thread, and
/// its handle. It ends, unstarted, when the last reference to the handle
/// goes; a loader fills it with [`process_map`] and runs it with
/// [`process_start`] (ABI.md §6.8). Descriptors moved by the slots leave
/// this process only if it succeeds.
pub fn process_create(descriptors: &[DescriptorSlot]) -> Result<OwnedDescriptor, Error> {
    let mut buffer = [0u8; CAPACITY];
    let mut message = Message::over(&mut buffer[..]);
    for slot in descriptors {
        message
            .push_descriptor(*slot)
            .map_err(|_| Error::BadSizes)?;
    }
    kernel_call(
        KernelFunction::ProcessCreate,
        crate::capability::of(ObjectKind::ProcessControl),
        &mut message,
    )?;
    let process = reply_descriptor(&mut message, 0);
    message.discard();
    process
}

/// PROCESS_MAP (on the handle of a process that has not started): maps
/// `length` bytes of `memory` from `offset` at `address` in it, with
/// `protection`, which is also the most it may ever PROTECT them to.
pub fn process_map(
    process: Descriptor,
    memory: Descriptor,
    address: u64,
    offset: u64,
    length: u64,
    protection: u32,
) -> Result<(), Error> {
    let request = ProcessMapRequest::new(memory, address, offset, length, protection);
    small_call(
        KernelFunction::ProcessMap,
        process,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// PROCESS_START (on the handle of a process that has not started): its
/// first thread, with the start state of ABI.md §7.
pub fn process_start(process: Descriptor, start: ProcessStartRequest) -> Result<(), Error> {
    small_call(
        KernelFunction::ProcessStart,
        process,
        start.as_bytes(),
        |_, _| Ok(()),
    )
}

/// PROCESS_SET_COOKIE (on a process handle): the cookie `process`'s NULL-target
/// process-manager calls will carry.
pub fn process_set_cookie(process: Descriptor, cookie: u64) -> Result<(), Error> {
    let request = CookieRequest::new(cookie);
    small_call(
        KernelFunction::ProcessSetCookie,
        process,
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// MANAGER_REGISTER (sent to this process's process-control capability): become the process manager, serving the
/// door whose owner reference is `door`.
pub fn manager_register(door: Descriptor) -> Result<(), Error> {
    let request = kcall::manager_register(door);
    small_call(
        KernelFunction::ManagerRegister,
        crate::capability::of(ObjectKind::ProcessControl),
        request.as_bytes(),
        |_, _| Ok(()),
    )
}

/// ARCHIVE_READ (sent to this process's boot-archive capability): reads boot-archive file `name` from `offset`
/// into `out`; returns the file's size and the bytes read.
pub fn archive_read(name: &str, offset: u64, out: &mut [u8]) -> Result<(u64, usize), Error> {
    let request = ArchiveReadRequest::new(name.as_bytes(), offset);
    let mut buffer = [0u8; CAPACITY];
    let mut message = Message::over(&mut buffer[..]);
    message
        .push(&request)
        .and_then(|m| m.push_data(name.as_bytes()))
        .map_err(|_| Error::BadSizes)?;
    // Let the kernel fill the whole buffer.
    let sizes = message.sizes().with_total_size(CAPACITY as u16);
    let reply = ipc::send(
        KernelFunction::ArchiveRead.function(),
        crate::capability::of(ObjectKind::BootArchive),
        message.buffer_mut(),
        sizes,
    )?;
    message.set_arrived(reply.sizes).map_err(|_| SHORT_REPLY)?;
    let header: ArchiveReadReply = message.read_payload(0).ok_or(SHORT_REPLY)?;
    let bytes = message
        .payload()
        .get(size_of::<ArchiveReadReply>()..)
        .unwrap_or(&[]);
    let count = bytes.len().min(out.len());
    out[..count].copy_from_slice(&bytes[..count]);
    Ok((header.size, count))
}

/// Reads a whole boot-archive file (needs the boot-archive capability).
pub fn archive_read_all(name: &str) -> Result<alloc::vec::Vec<u8>, Error> {
    let mut contents = alloc::vec::Vec::new();
    let mut chunk = [0u8; CAPACITY];
    loop {
        let (size, count) = archive_read(name, contents.len() as u64, &mut chunk)?;
        contents.extend_from_slice(&chunk[..count]);
        if count == 0 || contents.len() as u64 >= size {
            return Ok(contents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_kernel::{self, FakeCall};
    use abi::message::MessageSizes;

    #[test]
    fn map_anonymous_sends_its_request_and_reads_the_address() {
        let result = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.function(), KernelFunction::MapAnonymous.function());
                assert_eq!(call.target(), Descriptor::NULL);
                let request = abi::kcall::MapRequest::read_from_bytes(call.data());
                assert_eq!(request.ok(), Some(kcall::map_anonymous(0, 0x40000, 3)));
                call.reply_ok(
                    MapReply {
                        address: 0x1000_0000_0000,
                    }
                    .as_bytes(),
                    &[],
                )
            },
            || map_anonymous(0, 0x40000, 3),
        );
        assert_eq!(result, Ok(0x1000_0000_0000));
    }

    #[test]
    fn memory_functions_send_their_requests_to_their_targets() {
        let mapped = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.function(), KernelFunction::MemoryMap.function());
                assert_eq!(call.target(), Descriptor(6));
                let request = MemoryMapRequest::read_from_bytes(call.data());
                assert_eq!(
                    request.ok(),
                    Some(MemoryMapRequest::new(0, 0x2000, 0x1000, 1))
                );
                call.reply_ok(MapReply { address: 0x5000 }.as_bytes(), &[])
            },
            || memory_map(Descriptor(6), 0, 0x2000, 0x1000, 1),
        );
        assert_eq!(mapped, Ok(0x5000));
        let child = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.function(), KernelFunction::MemoryCow.function());
                assert_eq!(call.target(), Descriptor(6));
                assert_eq!(call.data(), MemoryRangeRequest::new(0, 0x3000).as_bytes());
                call.reply_ok(&[], &[DescriptorSlot::copy(Descriptor(7), Rights::MEMORY)])
            },
            || memory_cow(Descriptor(6), 0, 0x3000).map(OwnedDescriptor::into_raw),
        );
        assert_eq!(child, Ok(Descriptor(7)));
        let created = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.target(), Descriptor::NULL);
                assert_eq!(call.data(), MemoryCreateRequest::new(4).as_bytes());
                call.reply_ok(&[], &[DescriptorSlot::copy(Descriptor(8), Rights::MEMORY)])
            },
            || memory_create(4).map(OwnedDescriptor::into_raw),
        );
        assert_eq!(created, Ok(Descriptor(8)));
        let info = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.sizes().data_size(), 0);
                let info = MemoryInfo {
                    pages: 4,
                    flags: kcall::memory_flags::DIRECT,
                    reserved: 0,
                };
                call.reply_ok(info.as_bytes(), &[])
            },
            || memory_info(Descriptor(8)).map(|info| (info.pages, info.flags)),
        );
        assert_eq!(info, Ok((4, kcall::memory_flags::DIRECT)));
    }

    #[test]
    fn door_create_takes_both_reply_slots() {
        let result = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.data(), DoorCreateRequest::new(false, 7).as_bytes());
                call.reply_ok(
                    &[],
                    &[
                        DescriptorSlot::copy(Descriptor(5), Rights::ALL),
                        DescriptorSlot::copy(Descriptor(6), Rights::SEND),
                    ],
                )
            },
            || {
                door_create(DoorKind::User, 7)
                    .map(|door| (door.owner.into_raw(), door.client.into_raw()))
            },
        );
        assert_eq!(result, Ok((Descriptor(5), Descriptor(6))));
    }

    #[test]
    fn spawn_lays_out_name_arguments_and_slots() {
        let result = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.sizes().data_size(), 8 + 4 + 3);
                assert_eq!(
                    &call.data()[..8],
                    SpawnRequest::new(b"echo", b"abc").as_bytes()
                );
                assert_eq!(&call.data()[8..], b"echoabc");
                assert_eq!(
                    call.slots(),
                    [DescriptorSlot::moving(Descriptor(2), Rights::SEND)]
                );
                call.reply_ok(
                    &[],
                    &[DescriptorSlot::copy(Descriptor(8), Rights::TRANSFER)],
                )
            },
            || {
                spawn(
                    "echo",
                    b"abc",
                    &[DescriptorSlot::moving(Descriptor(2), Rights::SEND)],
                )
                .map(OwnedDescriptor::into_raw)
            },
        );
        assert_eq!(result, Ok(Descriptor(8)));
    }

    #[test]
    fn kernel_errors_and_short_replies_are_errors() {
        let refused = fake_kernel::run(
            |_: &mut FakeCall| abi::TrapArgs::error(Error::NotPermitted),
            || door_create(DoorKind::System, 0).map(|_| ()),
        );
        assert_eq!(refused, Err(Error::NotPermitted));
        let short = fake_kernel::run(|call: &mut FakeCall| call.reply_ok(&[], &[]), counters);
        assert_eq!(short, Err(SHORT_REPLY));
    }

    #[test]
    fn event_wait_returns_the_count_left_and_targets_the_event() {
        let left = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.target(), Descriptor(12));
                assert_eq!(call.sizes().data_size(), 0);
                call.write_reply(&[3, 0, 0, 0, 0, 0, 0, 0], &[]);
                abi::TrapArgs::replied(3, 0, MessageSizes::new().with_data_size(8))
            },
            || event_wait(Descriptor(12)),
        );
        assert_eq!(left, Ok(3));
    }

    #[test]
    fn debug_write_splits_long_text() {
        let seen = std::rc::Rc::new(core::cell::RefCell::new(alloc::vec::Vec::new()));
        let record = seen.clone();
        let result = fake_kernel::run(
            move |call: &mut FakeCall| {
                record.borrow_mut().push(call.data().len());
                call.reply_ok(&[], &[])
            },
            || debug_write(&[b'x'; 1100]),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(*seen.borrow(), [256, 256, 256, 256, 76]);
    }
}
