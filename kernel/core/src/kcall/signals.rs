//! Kernel functions of interruption and upcalls (ABI.md §6.10):
//! THREAD_INTERRUPT, UPCALL_REGISTER, UPCALL_RETURN and SIGNAL_MASK. What
//! they do to threads is `crate::interrupt`'s; this file decodes and
//! checks requests, and must never change anything before every check passed.

use abi::process::USER_END;
use abi::upcall::{
    MAX_SIGNAL, SignalMaskReply, SignalMaskRequest, ThreadInterruptRequest, UpcallRegisterRequest,
    UpcallReturnRequest,
};
use abi::{Error, Rights};
use zerocopy::IntoBytes;

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::object::ObjectBody;
use crate::thread::UpcallHandler;

/// THREAD_INTERRUPT: the target thread (a thread handle), one thread of
/// the target process (a process handle), or the caller (NULL target).
pub(super) fn thread_interrupt(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: ThreadInterruptRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    if r.signal > MAX_SIGNAL {
        return Err(Error::NoSuchSignal);
    }
    let thread = match call.target {
        None => call.caller,
        Some(reference) => {
            if !reference.rights.contains(Rights::SEND) {
                return Err(Error::MissingRight);
            }
            match kernel.objects.get(reference.object).map(|o| &o.body) {
                Some(ObjectBody::Thread(thread)) => {
                    kernel.threads.get(*thread).ok_or(Error::PeerDied)?;
                    *thread
                }
                Some(ObjectBody::Process(process)) => kernel
                    .thread_for_signal(*process, r.signal)
                    .ok_or(Error::PeerDied)?,
                _ => return Err(Error::WrongObjectType),
            }
        }
    };
    // The reply first: interrupting cannot touch the caller's buffer.
    let registers = kernel.reply_to(machine, call, NO_REPLY)?;
    kernel.interrupt_thread(thread, r.signal, r.info);
    Ok(registers)
}

/// UPCALL_REGISTER: the caller's handler and its stack.
pub(super) fn upcall_register(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: UpcallRegisterRequest = call.request()?;
    if r.entry >= USER_END {
        return Err(Error::InvalidArgument);
    }
    if r.stack_size != 0
        && r.stack_base
            .checked_add(r.stack_size)
            .is_none_or(|end| end > USER_END)
    {
        return Err(Error::InvalidArgument);
    }
    let registers = kernel.reply_to(machine, call, NO_REPLY)?;
    if let Some(t) = kernel.threads.get_mut(call.caller) {
        t.signals.handler = (r.entry != 0).then_some(UpcallHandler {
            entry: r.entry,
            stack_base: r.stack_base,
            stack_size: r.stack_size,
        });
    }
    kernel.note_attention(call.caller);
    Ok(registers)
}

/// UPCALL_RETURN: no reply; the caller resumes the frame's state.
pub(super) fn upcall_return(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: UpcallReturnRequest = call.request()?;
    kernel.upcall_return(machine, call.caller, r.frame)?;
    Ok(None)
}

/// SIGNAL_MASK: the caller's mask changes; the reply has the previous
/// mask and the pending set.
pub(super) fn signal_mask(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: SignalMaskRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    if r.how > abi::upcall::mask_how::UNBLOCK {
        return Err(Error::InvalidArgument);
    }
    let (previous, pending) = kernel
        .threads
        .get(call.caller)
        .map(|t| (t.signals.mask, t.signals.pending))
        .ok_or(Error::InvalidArgument)?;
    // The reply before the change, so a buffer that cannot take it changes nothing.
    let reply = SignalMaskReply { previous, pending };
    let registers = kernel.reply_to(machine, call, KernelReply::payload(reply.as_bytes()))?;
    kernel.set_signal_mask(call.caller, r.how, r.mask)?;
    Ok(registers)
}
