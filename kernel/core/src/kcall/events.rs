//! Kernel functions on events: EVENT_CREATE, EVENT_SIGNAL and EVENT_WAIT.
//! An event counts signals nobody waited for and wakes its waiters in the
//! order they came; the count remaining is the wait's msgRetVal.

use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::{Error, Rights, TrapArgs};

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::object::{Event, ObjectBody, ObjectId};
use crate::process::SpaceId;
use crate::thread::{ThreadId, ThreadState};

/// EVENT_CREATE: a new event with a count of zero, and a reference with
/// every event right.
pub(super) fn create(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    call.no_request()?;
    let descriptor = kernel.create_referenced(
        call.process,
        ObjectBody::Event(Event::default()),
        Rights::EVENT,
    )?;
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::EVENT)]),
    )
}

/// The target event, if the caller's reference carries `needed`.
fn target_event(kernel: &mut Kernel, call: &Call<'_>, needed: Rights) -> Result<ObjectId, Error> {
    call.no_request()?;
    let reference = call.target()?;
    kernel
        .objects
        .get_mut(reference.object)
        .and_then(|o| o.event_mut())
        .ok_or(Error::WrongObjectType)?;
    if !reference.rights.contains(needed) {
        return Err(Error::MissingRight);
    }
    Ok(reference.object)
}

/// EVENT_SIGNAL: wakes the longest waiter, or counts the signal.
pub(super) fn signal(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let event = target_event(kernel, call, Rights::SIGNAL)?;
    kernel.signal_event(machine, event)?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// EVENT_WAIT: takes a counted signal, or blocks until one comes.
pub(super) fn wait(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let event = target_event(kernel, call, Rights::WAIT)?;
    kernel.wait_event(machine, call.caller, call.space, call.buffer, event)
}

impl Kernel {
    /// Wakes `event`'s longest waiter with its reply, or counts the signal.
    /// A waiter whose reply cannot be written (its buffer went away while
    /// it waited) wakes with that error and does not use the signal up: it
    /// goes to the next waiter, or is counted (issue 15, finding 10).
    pub(crate) fn signal_event(
        &mut self,
        machine: &mut impl Machine,
        event: ObjectId,
    ) -> Result<(), Error> {
        loop {
            let e = self
                .objects
                .get_mut(event)
                .and_then(|o| o.event_mut())
                .ok_or(Error::WrongObjectType)?;
            let Some(waiter) = e.waiters.pop_front() else {
                e.count = e.count.saturating_add(1);
                return Ok(());
            };
            let remaining = e.count;
            // The reference the wait held; the caller's keeps the event alive.
            self.release(event);
            let space = self.space_of(waiter);
            let buffer = match self.threads.get(waiter).map(|t| t.state) {
                Some(ThreadState::Waiting { buffer, .. }) => buffer,
                _ => 0,
            };
            let registers = match space {
                Some(space) => {
                    match self.kernel_reply(machine, space, buffer, remaining, NO_REPLY) {
                        // The buffer may have become copy-on-write while the
                        // thread waited: its copy is made, as for any write.
                        Err(Error::BadBuffer) => self
                            .writable_after_copy(machine, space, buffer, REPLY_PAYLOAD_OFFSET)
                            .and_then(|()| {
                                self.kernel_reply(machine, space, buffer, remaining, NO_REPLY)
                            }),
                        done => done,
                    }
                }
                None => Ok(None),
            };
            match registers {
                Ok(Some(registers)) => {
                    self.wake(waiter, registers);
                    return Ok(());
                }
                // A waiter without a space has no process left to wake.
                Ok(None) => {}
                Err(error) => self.wake(waiter, TrapArgs::error(error)),
            }
        }
    }

    /// Takes one counted signal of `event` for `caller`, or parks it.
    fn wait_event(
        &mut self,
        machine: &mut impl Machine,
        caller: ThreadId,
        space: SpaceId,
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
        if self.take_interruption(caller) {
            return Err(Error::Interrupted);
        }
        let Some(e) = self.objects.get_mut(event).and_then(|o| o.event_mut()) else {
            return Err(Error::WrongObjectType);
        };
        e.waiters.push_back(caller);
        self.retain(event);
        self.block(caller, ThreadState::Waiting { event, buffer });
        Ok(None)
    }
}
