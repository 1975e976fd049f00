//! Kernel functions on shared memory objects (ABI.md §6.5): SMO_SHARE,
//! SMO_CLAIM, SMO_PASS, SMO_READ and SMO_WRITE (PROCESS_ID, where a process
//! learns the id others name it by, is `processes.rs`'s). All take the NULL
//! target: an SMO is named by its number and a process by its process id, and the
//! caller is always the kernel's own record of who traps, never what the
//! request says. Each decodes its request whole (RESERVED_BITS first),
//! then `crate::smo` checks and acts.

use abi::Error;
use abi::kcall::{SmoCopyRequest, SmoPassRequest, SmoReply, SmoRequest, SmoShareRequest};
use zerocopy::IntoBytes;

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::smo::Direction;

/// SMO_SHARE: a new SMO of the caller's memory for the process with the
/// request's id; its number in the reply.
pub(super) fn share(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: SmoShareRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    let id = kernel.smo_share(call.process, r.target, r.address, r.size, r.permissions)?;
    let reply = SmoReply::new(id);
    kernel.reply_to(machine, call, KernelReply::payload(reply.as_bytes()))
}

/// SMO_CLAIM: the owner destroys an SMO.
pub(super) fn claim(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: SmoRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    kernel.smo_claim(call.process, r.id)?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// SMO_PASS: the target hands an SMO on.
pub(super) fn pass(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: SmoPassRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    kernel.smo_pass(call.process, r.id, r.target)?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// SMO_READ (`Direction::Read`) and SMO_WRITE (`Direction::Write`).
pub(super) fn copy(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
    direction: Direction,
) -> Outcome {
    let r: SmoCopyRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    kernel.smo_copy(machine, call.process, direction, r)?;
    kernel.reply_to(machine, call, NO_REPLY)
}
