//! Interrupting threads and upcalls (ABI.md §6.10): what THREAD_INTERRUPT
//! does to a thread in each state, the interruption a thread takes at its
//! next blocking point, the signals pending on it and its mask, the upcall
//! frame built on its user stack as it returns to user space, and
//! UPCALL_RETURN's checks of a frame the user may have forged.
//!
//! It must never lose or duplicate a call: a call interrupted ends exactly
//! once (INTERRUPTED, or its normal result when the interruption comes too
//! late), and a refused request changes nothing. It must never let a frame
//! set anything but user-mode state.

use abi::process::USER_END;
use abi::trap::CALL_RECEIVED;
use abi::upcall::{
    FORCED_RFLAGS, RED_ZONE, UPCALL_FRAME_BYTES, USER_RFLAGS, UpcallFrame, UserRegisters,
};
use abi::{Error, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

use crate::kernel::Kernel;
use crate::machine::Machine;
use crate::object::Object;
use crate::thread::{Holding, ThreadId, ThreadState};

/// Why an upcall could not be entered: the process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallFailure {
    /// The frame's bytes at this address are not writable user memory.
    StackNotWritable(u64),
    /// The frame would not fit on the alternate stack.
    StackOverflow(u64),
}

impl UpcallFailure {
    /// The address concerned.
    pub const fn address(self) -> u64 {
        match self {
            UpcallFailure::StackNotWritable(a) | UpcallFailure::StackOverflow(a) => a,
        }
    }
}

use abi::upcall::signal_bit as bit;

impl Kernel {
    /// Recounts `thread` in [`Kernel::attention`] after its signal state changed.
    pub(crate) fn note_attention(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        let needs = t.signals.needs_attention();
        if needs != t.signals.counted {
            t.signals.counted = needs;
            if needs {
                self.attention += 1;
            } else {
                self.attention = self.attention.saturating_sub(1);
            }
        }
    }

    /// At a blocking point: true (and the interruption is taken) when
    /// `thread` has one pending, so its call returns INTERRUPTED instead of
    /// blocking.
    #[inline]
    pub(crate) fn take_interruption(&mut self, thread: ThreadId) -> bool {
        if self.attention == 0 {
            return false;
        }
        let Some(t) = self.threads.get_mut(thread) else {
            return false;
        };
        if !t.signals.interrupted {
            return false;
        }
        t.signals.interrupted = false;
        self.note_attention(thread);
        true
    }

    /// THREAD_INTERRUPT's effect on `thread` (everything checked): the
    /// signal (if any) becomes pending; unless the thread masks it, the
    /// thread's blocked call ends with INTERRUPTED, or, running or ready,
    /// it keeps the interruption for its next blocking call or upcall.
    pub(crate) fn interrupt_thread(&mut self, thread: ThreadId, signal: u32, info: u64) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        if signal != 0 {
            t.signals.pending |= bit(signal);
            t.signals.info[signal as usize] = info;
            if t.signals.mask & bit(signal) != 0 {
                self.note_attention(thread);
                return;
            }
        }
        match t.state {
            ThreadState::Sending(call) => {
                // Not received yet: withdrawn, the server never sees it
                // and its descriptors never left the sender.
                if let Ok(door) = self.door(call.door) {
                    door.senders.retain(|s| *s != thread);
                }
                self.release(call.door);
                self.wake(thread, TrapArgs::error(Error::Interrupted));
            }
            ThreadState::AwaitingReply { call, server } => {
                // Received: the server keeps the message, its REPLY gets
                // CALLER_GONE (D64).
                if let Some(s) = self.threads.get_mut(server)
                    && s.holding
                        == (Holding::Call {
                            caller: thread,
                            door: call.door,
                        })
                {
                    s.holding = Holding::Cancelled { door: call.door };
                }
                self.wake(
                    thread,
                    TrapArgs {
                        arg2: CALL_RECEIVED,
                        ..TrapArgs::error(Error::Interrupted)
                    },
                );
            }
            ThreadState::Receiving { door, .. } => {
                if let Ok(d) = self.door(door) {
                    d.receivers.retain(|r| *r != thread);
                }
                self.release(door);
                // `wake` adds REPLY_DELIVERED after a REPLY_RECEIVE's reply.
                self.wake(thread, TrapArgs::error(Error::Interrupted));
            }
            ThreadState::Waiting { event, .. } => {
                if let Some(e) = self.objects.get_mut(event).and_then(Object::event_mut) {
                    e.waiters.retain(|w| *w != thread);
                }
                self.release(event);
                self.wake(thread, TrapArgs::error(Error::Interrupted));
            }
            ThreadState::Ready | ThreadState::Running | ThreadState::Paging { .. } => {
                if let Some(t) = self.threads.get_mut(thread) {
                    t.signals.interrupted = true;
                }
                self.kick_if_elsewhere(thread);
            }
        }
        self.note_attention(thread);
    }

    /// A thread running on another CPU with a signal to take there is
    /// made to enter the kernel (the KICK IPI), whose return enters its
    /// handler.
    fn kick_if_elsewhere(&mut self, thread: ThreadId) {
        if self
            .threads
            .get(thread)
            .is_none_or(|t| t.signals.deliverable() == 0)
        {
            return;
        }
        self.kick_cpu_running(thread);
    }

    /// The thread of `process` a process-wide signal goes to: the first
    /// that does not mask it, else the first.
    pub(crate) fn thread_for_signal(
        &self,
        process: crate::process::ProcessId,
        signal: u32,
    ) -> Option<ThreadId> {
        let p = self.processes.get(process)?;
        p.threads
            .iter()
            .copied()
            .find(|t| {
                self.threads
                    .get(*t)
                    .is_some_and(|t| signal == 0 || t.signals.mask & bit(signal) == 0)
            })
            .or_else(|| p.threads.first().copied())
    }

    /// Called by the arch layer once it knows which thread the CPU in the
    /// kernel returns to (before it writes that thread's trap return):
    /// that thread enters its upcall handler if a signal is deliverable.
    /// A frame that cannot be written ends the process (logged through
    /// [`Kernel::pop_upcall_failure`]) and another thread is picked.
    #[inline(always)]
    pub fn prepare_return(&mut self, machine: &mut impl Machine) {
        if self.attention != 0 {
            self.prepare_return_slow(machine);
        }
    }

    #[cold]
    #[inline(never)]
    fn prepare_return_slow(&mut self, machine: &mut impl Machine) {
        if self.current.is_none() {
            self.reschedule();
        }
        while let Some(thread) = self.current {
            // A thread of a suspended process stops here (`crate::suspend`).
            if self.park_if_suspended(thread) {
                self.reschedule();
                continue;
            }
            match self.enter_upcall(machine, thread) {
                Ok(()) => return,
                Err(failure) => {
                    let Some(process) = self.threads.get(thread).map(|t| t.process) else {
                        return;
                    };
                    let cookie = self.processes.get(process).map_or(0, |p| p.manager_cookie);
                    if self.upcall_log.try_reserve(1).is_ok() {
                        self.upcall_log.push((cookie, failure.address()));
                    }
                    self.end_process(machine, process, u32::MAX);
                    self.reschedule();
                }
            }
        }
    }

    /// A process ended because its upcall frame could not be written:
    /// its manager cookie and the frame's address.
    pub fn pop_upcall_failure(&mut self) -> Option<(u64, u64)> {
        self.upcall_log.pop()
    }

    /// Enters `thread`'s handler with its lowest deliverable signal, if
    /// any: the frame (signal, information, mask, every user register as
    /// the thread would have resumed, its pending trap return included)
    /// goes on its stack, and it resumes at the handler.
    fn enter_upcall(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
    ) -> Result<(), UpcallFailure> {
        let Some(t) = self.threads.get(thread) else {
            return Ok(());
        };
        let deliverable = t.signals.deliverable();
        let Some(handler) = t.signals.handler.filter(|_| deliverable != 0) else {
            return Ok(());
        };
        let signal = deliverable.trailing_zeros();
        let (info, mask, process) = (t.signals.info[signal as usize], t.signals.mask, t.process);
        let Some(space) = self.processes.get(process).map(|p| p.space) else {
            return Ok(());
        };
        let Some(mut registers) = machine.user_registers(thread) else {
            return Ok(());
        };
        if let Some(resume) = self.threads.get(thread).and_then(|t| t.resume) {
            registers.rax = resume.arg0;
            registers.rdi = resume.arg1;
            registers.rsi = resume.arg2;
            registers.rdx = resume.arg3;
        }
        let on_alternate = handler.stack_size != 0;
        let alternate_top = handler.stack_base.wrapping_add(handler.stack_size);
        let top = if on_alternate && !(handler.stack_base..alternate_top).contains(&registers.rsp) {
            alternate_top
        } else {
            registers.rsp.wrapping_sub(RED_ZONE)
        };
        let frame_at = top.wrapping_sub(UPCALL_FRAME_BYTES) & !15;
        let slot = frame_at.wrapping_sub(8);
        if on_alternate && (slot < handler.stack_base || slot > top) {
            return Err(UpcallFailure::StackOverflow(slot));
        }
        if slot >= USER_END || slot > top {
            return Err(UpcallFailure::StackNotWritable(slot));
        }
        let frame = UpcallFrame {
            signal,
            reserved: 0,
            info,
            mask,
            registers,
        };
        let length = (UPCALL_FRAME_BYTES + 8) as usize;
        self.check_writable(machine, space, slot, length)
            .map_err(|_| UpcallFailure::StackNotWritable(slot))?;
        machine
            .write_user(space, slot, &0u64.to_le_bytes())
            .and_then(|()| machine.write_user(space, frame_at, frame.as_bytes()))
            .map_err(|_| UpcallFailure::StackNotWritable(slot))?;
        let entered = UserRegisters {
            rip: handler.entry,
            rsp: slot,
            rdi: u64::from(signal),
            rsi: info,
            rdx: frame_at,
            rflags: FORCED_RFLAGS,
            ..registers
        };
        machine.set_user_registers(thread, &entered);
        if let Some(t) = self.threads.get_mut(thread) {
            t.resume = None;
            t.signals.pending &= !bit(signal);
            t.signals.mask |= bit(signal);
            // The handler runs at once: the interruption is taken.
            t.signals.interrupted = false;
        }
        self.note_attention(thread);
        Ok(())
    }

    /// UPCALL_RETURN: `thread` resumes the state the frame at `frame`
    /// holds, with only user-mode flags and its mask restored.
    pub(crate) fn upcall_return(
        &mut self,
        machine: &mut impl Machine,
        thread: ThreadId,
        frame: u64,
    ) -> Result<(), Error> {
        let process = self.process_of(thread)?;
        let space = self.process(process)?.space;
        let mut bytes = [0u8; UPCALL_FRAME_BYTES as usize];
        if frame >= USER_END {
            return Err(Error::BadBuffer);
        }
        machine.read_user(space, frame, &mut bytes)?;
        let saved = UpcallFrame::read_from_bytes(&bytes).map_err(|_| Error::BadBuffer)?;
        let mut registers = saved.registers;
        if registers.rip >= USER_END || registers.rsp >= USER_END {
            return Err(Error::BadUpcallFrame);
        }
        registers.rflags = (registers.rflags & USER_RFLAGS) | FORCED_RFLAGS;
        machine.set_user_registers(thread, &registers);
        if let Some(t) = self.threads.get_mut(thread) {
            t.resume = None;
            t.signals.mask = saved.mask & !1;
        }
        self.note_attention(thread);
        Ok(())
    }

    /// SIGNAL_MASK: the caller's new mask; its previous mask and what is
    /// pending.
    pub(crate) fn set_signal_mask(
        &mut self,
        thread: ThreadId,
        how: u32,
        mask: u64,
    ) -> Result<(u64, u64), Error> {
        let t = self.threads.get_mut(thread).ok_or(Error::InvalidArgument)?;
        let previous = t.signals.mask;
        t.signals.mask = match how {
            abi::upcall::mask_how::SET => mask,
            abi::upcall::mask_how::BLOCK => previous | mask,
            abi::upcall::mask_how::UNBLOCK => previous & !mask,
            _ => return Err(Error::InvalidArgument),
        } & !1;
        let pending = t.signals.pending;
        self.note_attention(thread);
        Ok((previous, pending))
    }
}
