//! Kernel functions on threads: THREAD_CREATE, THREAD_EXIT, YIELD,
//! THREAD_AFFINITY and CPU_COUNTERS (the functions on whole processes are
//! `processes.rs`'s).

use abi::kcall::{ExitRequest, MAX_PRIORITY, ThreadCreateRequest};
use abi::process::USER_END;
use abi::{Error, Rights};
use zerocopy::IntoBytes;

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
pub(super) fn room_for_a_handle(kernel: &Kernel, call: &Call<'_>) -> Result<(), Error> {
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
    // A new thread may run where its creator may (ABI.md §6.9).
    let affinity = kernel
        .threads
        .get(call.caller)
        .map_or(u64::MAX, |t| t.affinity);
    let thread = kernel.create_thread(machine, call.process, start, r.priority as u8, affinity)?;
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

/// THREAD_AFFINITY: the caller may run only on the online CPUs of the
/// mask; when the CPU it runs on is not one, it moves now (it is queued
/// for the others and returns on one of them).
pub(super) fn affinity(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let request: abi::kcall::AffinityRequest = call.request()?;
    let mask = request.mask & kernel.online_mask();
    if mask == 0 {
        return Err(Error::NoSuchCpu);
    }
    let registers = kernel.reply_to(machine, call, NO_REPLY)?;
    if let Some(t) = kernel.threads.get_mut(call.caller) {
        t.affinity = mask;
    }
    if (mask >> kernel.cpu) & 1 == 0 {
        if let Some(registers) = registers {
            kernel.set_resume(call.caller, registers);
        }
        kernel.make_ready(call.caller);
        kernel.current = None;
        return Ok(None);
    }
    Ok(registers)
}

/// CPU_COUNTERS: one CPU's dispatch count, how many are online, and which
/// one the caller runs on.
pub(super) fn cpu_counters(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let request: abi::kcall::CpuRequest = call.request()?;
    let online = kernel.cpus.len().max(1);
    if request.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    if request.cpu as usize >= online {
        return Err(Error::NoSuchCpu);
    }
    let reply = abi::kcall::CpuCountersReply {
        dispatches: machine.dispatches(request.cpu as usize),
        online: online as u32,
        caller_cpu: kernel.cpu as u32,
        running: kernel.running_count() as u32,
        ready: kernel.ready_count() as u32,
    };
    kernel.reply_to(machine, call, KernelReply::payload(reply.as_bytes()))
}
