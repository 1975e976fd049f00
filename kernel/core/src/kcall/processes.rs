//! Kernel functions on whole processes: SPAWN, PROCESS_EXIT,
//! PROCESS_SET_COOKIE, PROCESS_ID (ABI.md §6.5), and the three a loader
//! builds a process with (ABI.md §6.8): PROCESS_CREATE (an empty process
//! on the process-control capability), PROCESS_MAP (a memory object into
//! it) and PROCESS_START (its first thread), both sent to the handle
//! PROCESS_CREATE returned. What goes where is the loader's (procman's)
//! decision; this file only checks that it stays inside the rights the
//! loader holds, and that a process is built before it runs, never after.
//! It must never parse a program.

use abi::kcall::{
    CookieRequest, DEFAULT_PRIORITY, ProcessIdReply, ProcessMapRequest, ProcessStartRequest,
    SpawnRequest,
};
use abi::process::{MAX_ARGUMENT_BYTES, USER_END};
use abi::{Descriptor, Error, Rights};
use zerocopy::{FromBytes, IntoBytes};

use super::memory::{check_map_protection, check_range};
use super::memory_objects::object_range;
use super::threads::{exit_code, room_for_a_handle};
use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::lifecycle::DEFAULT_MEMORY_LIMIT;
use crate::machine::{Machine, UserStart};
use crate::object::{Object, ObjectBody};
use crate::process::ProcessId;

/// The live process the target handle names (PEER_DIED once it ended).
fn target_process(kernel: &Kernel, call: &Call<'_>) -> Result<ProcessId, Error> {
    let handle = call.target()?;
    let process = match kernel.objects.get(handle.object).map(|o| &o.body) {
        Some(ObjectBody::Process(process)) => *process,
        _ => return Err(Error::WrongObjectType),
    };
    kernel.process(process).map_err(|_| Error::PeerDied)?;
    Ok(process)
}

/// The initial descriptor count of a process that has not started
/// (PROCESS_STARTED otherwise).
fn unstarted(kernel: &Kernel, process: ProcessId) -> Result<u32, Error> {
    kernel
        .process(process)?
        .unstarted
        .ok_or(Error::ProcessStarted)
}

/// PROCESS_CREATE: a process with an empty address space, the message's
/// slots as its descriptors 1..=n and no thread, and a handle to it. It
/// ends, unstarted, when the last reference to its handle goes.
pub(super) fn create(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    call.no_request()?;
    let mut slots = alloc::vec::Vec::new();
    kernel.read_slots(machine, call.space, call.buffer, call.layout, &mut slots)?;
    kernel.check_slots(call.process, &slots)?;
    if kernel
        .processes
        .get(call.process)
        .is_some_and(|p| p.table.room() == 0)
    {
        return Err(Error::TableFull);
    }
    // The handle's heap first, so no failure after a descriptor moved
    // except the ones that undo the child.
    kernel.reserve_object(call.process, 1)?;
    let parent = call.process;
    let child = kernel.create_empty_process(machine, DEFAULT_MEMORY_LIMIT, slots.len(), 1)?;
    let made = kernel
        .install_initial_descriptors(parent, child, &slots)
        .and_then(|installed| {
            kernel.process_mut(child)?.unstarted = Some(installed);
            kernel.create_handle(parent, ObjectBody::Process(child))
        });
    match made {
        Ok(descriptor) => kernel.reply_to(
            machine,
            call,
            KernelReply::descriptors(&[(descriptor, Rights::HANDLE)]),
        ),
        Err(error) => {
            kernel.discard_process(machine, child);
            Err(error)
        }
    }
}

/// PROCESS_MAP: maps part of a memory object the caller holds into the
/// target process, which has not started, at a fixed address. The
/// protection is no wider than the caller's reference allows, and it is
/// also the most the child may PROTECT the mapping to: a loader that maps
/// shared text read-only knows no child can make it writable.
pub(super) fn map(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: ProcessMapRequest = call.request()?;
    check_map_protection(r.protection, 0)?;
    if r.address == 0 {
        return Err(Error::InvalidArgument);
    }
    check_range(r.address, r.length)?;
    let child = target_process(kernel, call)?;
    unstarted(kernel, child)?;
    let reference = *kernel
        .process(call.process)?
        .table
        .get(Descriptor(r.memory))?;
    let memory = kernel
        .objects
        .get(reference.object)
        .and_then(Object::memory)
        .ok_or(Error::WrongObjectType)?;
    let (first, pages) = object_range(r.offset, r.length, memory.pages())?;
    if r.protection & !reference.rights.protection() != 0 {
        return Err(Error::MissingRight);
    }
    kernel.map_object(
        machine,
        child,
        reference.object,
        Some(r.address),
        first,
        pages,
        r.protection,
        r.protection,
    )?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// PROCESS_START: the target's first thread, at the default priority,
/// with the start state of ABI.md §7 (rdx: its initial descriptors).
pub(super) fn start(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: ProcessStartRequest = call.request()?;
    let arguments_end = r.argument_address.checked_add(r.argument_length);
    if r.entry >= USER_END
        || r.stack_pointer >= USER_END
        || !r.stack_pointer.is_multiple_of(16)
        || arguments_end.is_none_or(|end| end > USER_END)
    {
        return Err(Error::InvalidArgument);
    }
    let child = target_process(kernel, call)?;
    let descriptors = unstarted(kernel, child)?;
    let priority = DEFAULT_PRIORITY as u8;
    kernel.reserve_thread(child, priority)?;
    let start = UserStart {
        entry: r.entry,
        stack_pointer: r.stack_pointer,
        arg0: r.argument_address,
        arg1: r.argument_length,
        arg2: u64::from(descriptors),
    };
    // The first thread of a new process may run on every CPU (§6.9).
    kernel.create_thread(machine, child, start, priority, u64::MAX)?;
    kernel.process_mut(child)?.unstarted = None;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// PROCESS_EXIT: ends the caller's whole process (no reply).
pub(super) fn process_exit(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let code = exit_code(call)?;
    kernel.end_process(machine, call.process, code);
    Ok(None)
}

/// SPAWN: a new process running a boot-archive program, with the request's
/// descriptor slots as its first descriptors, and a handle to it.
pub(super) fn spawn(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let data = call.data;
    let header: SpawnRequest = SpawnRequest::read_from_prefix(data)
        .map(|(r, _)| r)
        .map_err(|_| Error::BadSizes)?;
    let name_start = size_of::<SpawnRequest>();
    let name_end = name_start.saturating_add(header.name_length as usize);
    let end = name_end.saturating_add(header.argument_length as usize);
    if end != data.len() || header.name_length == 0 {
        return Err(Error::BadSizes);
    }
    if header.argument_length as usize > MAX_ARGUMENT_BYTES {
        return Err(Error::InvalidArgument);
    }
    let name = &data[name_start..name_end];
    let arguments = &data[name_end..end];
    let mut slots = alloc::vec::Vec::new();
    kernel.read_slots(machine, call.space, call.buffer, call.layout, &mut slots)?;
    kernel.check_slots(call.process, &slots)?;
    room_for_a_handle(kernel, call)?;
    // The handle's heap first, so no failure after the child exists.
    kernel.reserve_object(call.process, 1)?;
    let parent = call.process;
    let (child, _) = kernel.create_process(
        machine,
        name,
        arguments,
        crate::lifecycle::DEFAULT_MEMORY_LIMIT,
        slots.len(),
        |kernel, child| kernel.install_initial_descriptors(parent, child, &slots),
    )?;
    let descriptor = kernel.create_handle(call.process, ObjectBody::Process(child))?;
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::HANDLE)]),
    )
}

/// PROCESS_SET_COOKIE: the cookie the process manager sees on the target
/// process's calls (sent to a process handle).
pub(super) fn process_set_cookie(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: CookieRequest = call.request()?;
    let handle = call.target()?;
    let target = match kernel.objects.get(handle.object).map(|o| &o.body) {
        Some(ObjectBody::Process(target)) => *target,
        _ => return Err(Error::WrongObjectType),
    };
    let target = kernel.processes.get_mut(target).ok_or(Error::PeerDied)?;
    target.manager_cookie = r.cookie;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// PROCESS_ID: the caller's own process id (0 when procman gave none).
pub(super) fn process_id(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    call.no_request()?;
    let id = kernel.process(call.process)?.manager_cookie;
    let reply = ProcessIdReply { id };
    kernel.reply_to(machine, call, KernelReply::payload(reply.as_bytes()))
}

/// PROCESS_KILL: the process a handle (with SEND) names ends with the
/// request's status, as if it had called PROCESS_EXIT: its manager gets
/// the notice. The caller's own process ends without a reply.
pub(super) fn process_kill(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let code = exit_code(call)?;
    let handle = call.target()?;
    let target = match kernel.objects.get(handle.object).map(|o| &o.body) {
        Some(ObjectBody::Process(target)) => *target,
        _ => return Err(Error::WrongObjectType),
    };
    if !handle.rights.contains(Rights::SEND) {
        return Err(Error::MissingRight);
    }
    kernel.processes.get(target).ok_or(Error::PeerDied)?;
    if target == call.process {
        kernel.end_process(machine, target, code);
        return Ok(None);
    }
    // The reply first: ending the target cannot touch the caller's buffer.
    let registers = kernel.reply_to(machine, call, NO_REPLY)?;
    kernel.end_process(machine, target, code);
    Ok(registers)
}

/// The process a PROCESS_SUSPEND or PROCESS_RESUME handle names (live).
fn suspend_target(kernel: &Kernel, call: &Call<'_>) -> Result<ProcessId, Error> {
    call.no_request()?;
    let handle = call.target()?;
    let target = match kernel.objects.get(handle.object).map(|o| &o.body) {
        Some(ObjectBody::Process(target)) => *target,
        _ => return Err(Error::WrongObjectType),
    };
    kernel.processes.get(target).ok_or(Error::PeerDied)?;
    Ok(target)
}

/// PROCESS_SUSPEND: the process stops (`crate::suspend`); msgRetVal 1 when
/// it was suspended already (idempotent: not a count, one RESUME undoes any
/// number of SUSPENDs).
pub(super) fn process_suspend(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let target = suspend_target(kernel, call)?;
    let already = kernel.is_suspended(target);
    // The reply first: suspending cannot touch the caller's buffer.
    let registers = kernel.kernel_reply(
        machine,
        call.space,
        call.buffer,
        u32::from(already),
        NO_REPLY,
    )?;
    kernel.suspend_process(target);
    Ok(registers)
}

/// PROCESS_RESUME: the process runs again; msgRetVal 1 when it was
/// suspended, 0 when it ran already (nothing changes then).
pub(super) fn process_resume(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let target = suspend_target(kernel, call)?;
    let was = kernel.is_suspended(target);
    let registers =
        kernel.kernel_reply(machine, call.space, call.buffer, u32::from(was), NO_REPLY)?;
    kernel.resume_process(target);
    Ok(registers)
}
