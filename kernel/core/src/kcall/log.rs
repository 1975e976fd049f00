//! The kernel log's handover to user space (ABI.md §6.7): LOG_TAKE on the
//! machine-control capability, LOG_READ on the kernel-log object it
//! returns, the signal when lines arrive, and the port's return to the
//! kernel when that object goes.
//!
//! Policy only: the ring itself is `crate::log`, and the machine holds it
//! beside the serial port ([`Machine::log_take`] and the others), because
//! the kernel's own lines are written where no `Kernel` is at hand. Never
//! blocks on the reader: the ring makes room by dropping its oldest lines.

use abi::kcall::{LogReadReply, LogTakeRequest, MAX_LOG_READ, REPLY_PAYLOAD_OFFSET};
use abi::{Descriptor, Error, MessageSizes, Rights, TrapArgs};
use zerocopy::IntoBytes;

use super::{Call, KernelReply};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::object::{ObjectBody, ObjectId};

/// LOG_TAKE: the kernel's lines go to the ring from now on, `event` is
/// signalled as they arrive, and the reply's slot holds the kernel-log
/// object (the one way to read them, and to give the port back).
pub(super) fn log_take(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: LogTakeRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    let reference = *kernel
        .process(call.process)?
        .table
        .get(Descriptor(r.event))?;
    kernel
        .objects
        .get_mut(reference.object)
        .and_then(|o| o.event_mut())
        .ok_or(Error::WrongObjectType)?;
    if !reference.rights.contains(Rights::SIGNAL) {
        return Err(Error::MissingRight);
    }
    if kernel.kernel_log.is_some() {
        return Err(Error::LogTaken);
    }
    let descriptor = kernel.create_referenced(
        call.process,
        ObjectBody::KernelLog(reference.object),
        Rights::KERNEL_LOG,
    )?;
    let object = kernel.process(call.process)?.table.get(descriptor)?.object;
    kernel.retain(reference.object);
    kernel.kernel_log = Some(object);
    machine.log_take();
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::KERNEL_LOG)]),
    )
}

/// LOG_READ: as many whole lines from the ring's head as the buffer holds
/// (at most [`MAX_LOG_READ`] bytes), and the lines lost since the last
/// read. The lines leave the ring only once they are in the buffer.
pub(super) fn log_read(
    _kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    call.no_request()?;
    let reference = call.target()?;
    if !reference.rights.contains(Rights::SEND) {
        return Err(Error::MissingRight);
    }
    let header_end = REPLY_PAYLOAD_OFFSET + size_of::<LogReadReply>();
    let room = usize::from(call.layout.total_size)
        .saturating_sub(header_end)
        .min(MAX_LOG_READ);
    let mut lines = [0u8; MAX_LOG_READ];
    let peeked = machine.log_peek(&mut lines[..room]);
    machine.write_user(
        call.space,
        call.buffer + header_end as u64,
        &lines[..peeked.bytes],
    )?;
    let reply = LogReadReply {
        lines: peeked.lines,
        lost: peeked.lost,
    };
    let mut head = [0u8; REPLY_PAYLOAD_OFFSET + size_of::<LogReadReply>()];
    head[..4].copy_from_slice(&(peeked.bytes as u32).to_le_bytes());
    head[REPLY_PAYLOAD_OFFSET..].copy_from_slice(reply.as_bytes());
    machine.write_user(call.space, call.buffer, &head)?;
    machine.log_consume(peeked.bytes);
    let sizes = MessageSizes::new().with_data_size((header_end + peeked.bytes) as u16);
    Ok(Some(TrapArgs::replied(peeked.bytes as u32, 0, sizes)))
}

impl Kernel {
    /// Lines arrived in the ring since the last look: the kernel-log
    /// object's event is signalled once. The arch layer calls this at the
    /// end of every trap and interrupt, after its own lines are written.
    pub fn log_signal(&mut self, machine: &mut impl Machine) {
        if !machine.log_arrived() {
            return;
        }
        let Some(object) = self.kernel_log else {
            return;
        };
        if let Some(ObjectBody::KernelLog(event)) = self.objects.get(object).map(|o| &o.body) {
            let event = *event;
            let _ = self.signal_event(machine, event);
        }
    }

    /// The kernel-log object went: the port is the kernel's again (the
    /// lines still in the ring are written first), and its event is let go.
    pub(crate) fn log_gone(&mut self, machine: &mut impl Machine, event: ObjectId) {
        self.kernel_log = None;
        machine.log_give_back();
        self.release_with(machine, event);
    }
}
