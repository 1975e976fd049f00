//! Kernel functions on threads and processes: THREAD_CREATE, THREAD_EXIT,
//! PROCESS_EXIT, YIELD, SPAWN and PROCESS_SET_COOKIE.

use abi::kcall::{CookieRequest, ExitRequest, MAX_PRIORITY, SpawnRequest, ThreadCreateRequest};
use abi::process::{MAX_ARGUMENT_BYTES, USER_END};
use abi::{Error, Rights};
use zerocopy::FromBytes;

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::{Machine, UserStart};
use crate::object::ObjectBody;

/// An exit request: the status, nothing in the reserved word.
pub(super) fn exit_code(call: &Call<'_>) -> Result<u32, Error> {
    let r: ExitRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    Ok(r.code)
}

/// Refuses a request that needs one more descriptor in the caller's full table.
fn room_for_a_handle(kernel: &Kernel, call: &Call<'_>) -> Result<(), Error> {
    if kernel
        .processes
        .get(call.process)
        .is_some_and(|p| p.table.room() == 0)
    {
        return Err(Error::TableFull);
    }
    Ok(())
}

/// THREAD_CREATE: a ready thread in the caller's process, at no higher
/// priority than the caller's, and a handle to it.
pub(super) fn thread_create(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: ThreadCreateRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    let own_priority = kernel
        .threads
        .get(call.caller)
        .map_or(0, |t| u32::from(t.base_priority));
    if r.priority > MAX_PRIORITY || r.priority > own_priority {
        return Err(Error::InvalidArgument);
    }
    if r.entry >= USER_END || r.stack_top >= USER_END || !r.stack_top.is_multiple_of(16) {
        return Err(Error::InvalidArgument);
    }
    room_for_a_handle(kernel, call)?;
    let start = UserStart {
        entry: r.entry,
        stack_pointer: r.stack_top,
        arg0: r.argument,
        arg1: 0,
        arg2: 0,
    };
    // The handle's heap and the thread's first: after this, running out of
    // heap cannot undo a thread that already exists.
    kernel.reserve_object(call.process, 1)?;
    kernel.reserve_thread(call.process, r.priority as u8)?;
    let thread = kernel.create_thread(machine, call.process, start, r.priority as u8)?;
    match kernel.create_handle(call.process, ObjectBody::Thread(thread)) {
        Ok(descriptor) => kernel.reply_to(
            machine,
            call,
            KernelReply::descriptors(&[(descriptor, Rights::HANDLE)]),
        ),
        Err(error) => {
            kernel.end_thread(machine, thread, 0);
            Err(error)
        }
    }
}

/// THREAD_EXIT: ends the calling thread (no reply).
pub(super) fn thread_exit(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let code = exit_code(call)?;
    kernel.end_thread(machine, call.caller, code);
    Ok(None)
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
    if !handle.rights.contains(abi::Rights::SEND) {
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

/// YIELD: the caller goes to the back of its run queue, its reply ready.
pub(super) fn yield_now(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    call.no_request()?;
    if let Some(registers) = kernel.reply_to(machine, call, NO_REPLY)? {
        kernel.set_resume(call.caller, registers);
    }
    kernel.make_ready(call.caller);
    kernel.current = None;
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
