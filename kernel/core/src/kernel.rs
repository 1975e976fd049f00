//! The kernel's state and its one entry point for traps.
//!
//! [`Kernel`] owns every process, thread and object. The arch layer calls
//! [`Kernel::trap`] with the current thread's four trap registers, then asks
//! which thread runs next ([`Kernel::current`]) and which registers to give
//! it ([`Kernel::take_resume`]). Nothing here blocks: a thread that must
//! wait is parked in a state and another thread is chosen.
//!
//! Decode, then invoke: every operation validates everything it can before
//! it changes any state, so a refused call leaves nothing half done.

use abi::trap::Call;
use abi::{Error, TrapArgs};
use alloc::vec::Vec;

use crate::arena::Arena;
use crate::machine::Machine;
use crate::object::{Object, ObjectBody, ObjectId};
use crate::process::{Process, ProcessId};
use crate::scheduler::Scheduler;
use crate::thread::{Holding, Thread, ThreadId, ThreadState};

/// What an operation asks of the trap's return.
pub(crate) type Outcome = Result<Option<TrapArgs>, Error>;

/// The kernel.
#[derive(Debug, Default)]
pub struct Kernel {
    pub(crate) processes: Arena<Process>,
    pub(crate) threads: Arena<Thread>,
    pub(crate) objects: Arena<Object>,
    pub(crate) scheduler: Scheduler,
    /// The thread on the CPU that is in the kernel (the one holding the
    /// kernel lock, ABI.md §6.9).
    pub(crate) current: Option<ThreadId>,
    /// Which CPU is in the kernel ([`Kernel::enter`]; 0 with one CPU).
    pub(crate) cpu: usize,
    /// The thread each CPU runs, by CPU index, while that CPU is outside
    /// the kernel ([`Kernel::enter`] moves a CPU's entry into `current`,
    /// [`Kernel::leave`] back). Empty with one CPU (the host tests).
    pub(crate) cpus: Vec<Option<ThreadId>>,
    /// CPUs (a bit each) whose thread was taken away while they were
    /// outside the kernel: the arch layer interrupts them
    /// ([`Kernel::take_kicks`]).
    pub(crate) kicks: u64,
    /// A thread to run next in preference to the run queues (IPC handoff).
    pub(crate) handoff: Option<ThreadId>,
    /// The process manager: the one process that may send process-manager
    /// functions to doors.
    pub(crate) process_manager: Option<ProcessId>,
    /// The door NULL-target process-manager calls are routed to.
    pub(crate) process_manager_door: Option<ObjectId>,
    /// Processes that ended since the arch layer last asked, with their status.
    pub(crate) exited: Vec<(ProcessId, u32)>,
    /// Reused for the descriptor slots of each transfer (no allocation per message).
    pub(crate) slot_scratch: Vec<abi::DescriptorSlot>,
    /// Timer ticks taken (CLOCK).
    pub(crate) ticks: u64,
    /// The user output stream on the console (DEBUG_WRITE).
    pub(crate) user_output: crate::console::UserOutput,
    /// The frames of anonymous memory objects and how many objects share
    /// each (`crate::memory_object`).
    pub(crate) frames: Arena<crate::memory_object::FrameRecord>,
    /// Processes ended by a failed page request (their manager cookie and
    /// why), until the arch layer logs them (`crate::pager`).
    pub(crate) pager_log: Vec<(u64, crate::pager::PagerFailure)>,
    /// The interrupt object each ISA line is delivered to, if any.
    pub(crate) interrupt_lines: [Option<ObjectId>; abi::kcall::ISA_INTERRUPT_LINES as usize],
    /// The kernel-log object while user space holds the log (LOG_TAKE).
    pub(crate) kernel_log: Option<ObjectId>,
    /// The shared memory objects (`crate::smo`).
    pub(crate) smos: Arena<crate::smo::Smo>,
    /// Threads with an interruption not taken or a signal to deliver
    /// (`crate::interrupt`), plus one for each suspended process
    /// (`crate::suspend`): while it is 0 the IPC fast path and the
    /// return to user space check nothing else.
    pub(crate) attention: usize,
    /// Processes ended because an upcall frame could not be written (their
    /// manager cookie and the frame's address), until the arch layer logs them.
    pub(crate) upcall_log: Vec<(u64, u64)>,
    /// Host tests: the fast path's switch and its count.
    #[cfg(test)]
    pub(crate) fast_path_test: FastPathTest,
}

/// Host tests: every call takes the slow path when `slow_only` (the fast
/// path's reference); `hits` counts the calls the fast path took. Shown as
/// nothing in the kernel's `Debug`, so two kernels that differ only here
/// print the same.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct FastPathTest {
    pub(crate) slow_only: bool,
    pub(crate) hits: u64,
    /// Hits that carried descriptors.
    pub(crate) descriptor_hits: u64,
}

#[cfg(test)]
impl core::fmt::Debug for FastPathTest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FastPathTest")
    }
}

impl Kernel {
    /// An empty kernel.
    pub fn new() -> Self {
        Self::default()
    }

    /// The thread that runs when the trap returns (None: idle).
    pub fn current(&self) -> Option<ThreadId> {
        self.current
    }

    /// Makes room for `count` CPUs (at boot, before the first thread).
    /// CPUs beyond 64 are never entered (an affinity mask has 64 bits).
    pub fn set_cpu_count(&mut self, count: usize) -> Result<(), Error> {
        let count = count.min(64);
        self.cpus
            .try_reserve(count.saturating_sub(self.cpus.len()))
            .map_err(|_| Error::OutOfMemory)?;
        self.cpus.resize(count.max(self.cpus.len()), None);
        self.scheduler.set_cpu_count(self.cpus.len())
    }

    /// CPU `cpu` entered the kernel (it holds the kernel lock): its thread
    /// becomes [`Kernel::current`] until [`Kernel::leave`].
    pub fn enter(&mut self, cpu: usize) {
        if let Some(slot) = self.cpus.get(cpu) {
            self.cpu = cpu;
            self.current = *slot;
        }
    }

    /// The CPU in the kernel leaves it (before it lets the lock go): its
    /// current thread is recorded as that CPU's.
    pub fn leave(&mut self) {
        if let Some(slot) = self.cpus.get_mut(self.cpu) {
            *slot = self.current;
        }
    }

    /// The CPUs whose running thread was taken away (it ended, or its
    /// process did) while they were outside the kernel, a bit each:
    /// they must enter it to pick another.
    pub fn take_kicks(&mut self) -> u64 {
        core::mem::take(&mut self.kicks)
    }

    /// How many CPUs run a user thread (the one in the kernel counted by
    /// its current thread).
    pub fn running_count(&self) -> usize {
        let others = self
            .cpus
            .iter()
            .enumerate()
            .filter(|(cpu, thread)| *cpu != self.cpu && thread.is_some())
            .count();
        others + usize::from(self.current.is_some())
    }

    /// How many threads are ready and run nowhere.
    pub fn ready_count(&self) -> usize {
        self.scheduler.ready()
    }

    /// The CPUs some ready thread may run on, a bit each (0: none ready):
    /// the idle ones among them are worth waking.
    pub fn wanted_cpus(&self) -> u64 {
        if self.scheduler.ready() == 0 {
            return 0;
        }
        self.scheduler
            .iter()
            .filter_map(|t| self.threads.get(t))
            .fold(0, |mask, t| mask | t.affinity)
    }

    /// Picks a thread for the CPU in the kernel if it has none (a CPU
    /// woken to take ready work).
    pub fn schedule(&mut self) {
        self.reschedule();
    }

    /// A timer tick on a CPU other than the boot CPU: preemption as in
    /// [`Kernel::tick`], but the clock (CLOCK) counts the boot CPU's
    /// ticks alone.
    pub fn tick_secondary(&mut self) {
        self.preempt();
    }

    /// A bit for each online CPU (one when the arch layer named none).
    pub(crate) fn online_mask(&self) -> u64 {
        match self.cpus.len() {
            0 | 1 => 1,
            64.. => u64::MAX,
            n => (1 << n) - 1,
        }
    }

    /// The other CPU (not the one in the kernel) that runs `thread`
    /// outside the kernel, if one does.
    pub(crate) fn cpu_running(&self, thread: ThreadId) -> Option<usize> {
        self.cpus
            .iter()
            .enumerate()
            .position(|(cpu, running)| cpu != self.cpu && *running == Some(thread))
    }

    /// Makes the other CPU that runs `thread`, if any, enter the kernel
    /// (the arch layer sends it the KICK IPI, [`Kernel::take_kicks`]).
    pub(crate) fn kick_cpu_running(&mut self, thread: ThreadId) {
        if let Some(cpu) = self.cpu_running(thread) {
            self.kicks |= 1 << cpu;
        }
    }

    /// Whether `thread` may run on the CPU in the kernel.
    #[inline(always)]
    pub(crate) fn runs_here(&self, thread: &Thread) -> bool {
        (thread.affinity >> self.cpu) & 1 != 0
    }

    /// The registers to deliver to `thread` as it returns to user space.
    pub fn take_resume(&mut self, thread: ThreadId) -> Option<TrapArgs> {
        self.threads.get_mut(thread).and_then(|t| t.resume.take())
    }

    /// The address space `thread` runs in.
    pub fn space_of(&self, thread: ThreadId) -> Option<crate::process::SpaceId> {
        let process = self.threads.get(thread)?.process;
        Some(self.processes.get(process)?.space)
    }

    /// The longest-waiting process that ended and has not been taken yet,
    /// with its exit status. (The list keeps its capacity: room for every
    /// live process's entry is reserved when the process is created.)
    pub fn pop_exited(&mut self) -> Option<(ProcessId, u32)> {
        if self.exited.is_empty() {
            None
        } else {
            Some(self.exited.remove(0))
        }
    }

    /// Every process that ended and has not been taken yet.
    #[cfg(test)]
    pub(crate) fn take_exited(&mut self) -> Vec<(ProcessId, u32)> {
        core::mem::take(&mut self.exited)
    }

    /// Whether a process ended and has not been taken yet.
    pub fn has_exited(&self) -> bool {
        !self.exited.is_empty()
    }

    /// The number of live processes.
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Live counts, for COUNTERS and leak checks.
    pub fn counters(&self) -> abi::kcall::KernelCounters {
        abi::kcall::KernelCounters {
            processes: self.processes.len() as u64,
            threads: self.threads.len() as u64,
            objects: self.objects.len() as u64,
            descriptors: self
                .processes
                .ids()
                .filter_map(|p| self.processes.get(p))
                .map(|p| p.table.open() as u64)
                .sum(),
            charged_bytes: self
                .processes
                .ids()
                .filter_map(|p| self.processes.get(p))
                .map(|p| p.charged)
                .sum(),
            free_frames: 0,
        }
    }

    /// Handles a trap by the current thread.
    pub fn trap(&mut self, machine: &mut impl Machine, args: TrapArgs) {
        self.trap_decoded(machine, crate::refusal::screen(&args));
    }

    /// Handles a trap by the current thread, decoded (or refused) by
    /// [`crate::refusal::screen`]. True when the IPC fast path took it:
    /// then the CPU went from the caller to its partner and nothing else
    /// happened (no thread ended, was queued, logged or signalled), so
    /// the arch layer's exit has nothing to look at but the switch.
    pub fn trap_decoded(&mut self, machine: &mut impl Machine, call: Result<Call, Error>) -> bool {
        let Some(caller) = self.current else {
            return false;
        };
        let outcome = match call {
            Err(error) => Err(error),
            // The common round trip's two halves take the fast path
            // (`crate::fastpath`): it hands the CPU over itself.
            Ok(Call::Send(send))
                if self.attention == 0 && self.fast_call(machine, caller, &send) =>
            {
                return true;
            }
            Ok(Call::ReplyReceive(reply))
                if self.attention == 0 && self.fast_reply_wait(machine, caller, &reply) =>
            {
                return true;
            }
            Ok(Call::Send(send)) => self.send(machine, caller, send),
            Ok(Call::Receive(receive)) => self.receive(machine, caller, receive),
            Ok(Call::Reply(reply)) => self.reply(machine, caller, reply),
            Ok(Call::ReplyReceive(reply)) => self.reply_receive(machine, caller, reply),
        };
        match outcome {
            Ok(Some(registers)) => self.set_resume(caller, registers),
            Ok(None) => {}
            Err(error) => self.set_resume(caller, TrapArgs::error(error)),
        }
        self.reschedule();
        false
    }

    /// A timer tick: the running thread yields to ready threads of its priority or above.
    pub fn tick(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        self.preempt();
    }

    /// The running thread yields to ready threads of its priority or above.
    fn preempt(&mut self) {
        if let Some(thread) = self.current {
            let priority = self.threads.get(thread).map_or(0, |t| t.priority);
            if self.scheduler.has_ready_at_or_above(priority) {
                self.make_ready(thread);
                self.current = None;
            }
        }
        self.reschedule();
    }

    /// The current thread faulted: its process ends (status `u32::MAX`).
    pub fn fault(&mut self, machine: &mut impl Machine) {
        if let Some(thread) = self.current
            && let Some(process) = self.threads.get(thread).map(|t| t.process)
        {
            self.end_process(machine, process, u32::MAX);
        }
        self.reschedule();
    }

    // ----- helpers shared by the operations -----

    pub(crate) fn set_resume(&mut self, thread: ThreadId, registers: TrapArgs) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.resume = Some(registers);
        }
    }

    /// Puts a thread at the back of a run queue: that of the CPU
    /// [`Kernel::queue_for`] chooses; or, its process suspended, holds it
    /// out of the queues until the process resumes (`crate::suspend`; a
    /// suspended process counts in `attention`).
    pub(crate) fn make_ready(&mut self, thread: ThreadId) {
        let Some(affinity) = self.threads.get(thread).map(|t| t.affinity) else {
            return;
        };
        // The thread this CPU runs (a yield, a preemption) stays here when
        // it may: the others are placed.
        let cpu = if self.current == Some(thread) && (affinity >> self.cpu) & 1 != 0 {
            self.cpu
        } else {
            self.queue_for(affinity)
        };
        if let Some(t) = self.threads.get_mut(thread) {
            t.state = ThreadState::Ready;
            if self.attention != 0 && self.processes.get(t.process).is_some_and(|p| p.suspended) {
                t.held = true;
                return;
            }
            self.scheduler.enqueue(thread, t.priority, cpu);
        }
    }

    /// The CPU whose queue a thread that may run on `affinity` joins: an
    /// idle one it may run on with nothing queued (balancing as threads
    /// wake: the arch layer wakes idle CPUs that ready threads may use),
    /// else the CPU in the kernel when it may run there (its caches hold
    /// what the waker touched), else the first CPU of its mask. With one
    /// CPU: 0.
    pub(crate) fn queue_for(&self, affinity: u64) -> usize {
        if self.cpus.len() <= 1 {
            return 0;
        }
        let allowed = affinity & self.online_mask();
        let idle = self
            .cpus
            .iter()
            .enumerate()
            .filter(|(cpu, thread)| {
                *cpu != self.cpu && thread.is_none() && self.scheduler.is_empty_on(*cpu)
            })
            .fold(0u64, |mask, (cpu, _)| mask | 1 << cpu);
        if allowed & idle != 0 {
            (allowed & idle).trailing_zeros() as usize
        } else if (allowed >> self.cpu) & 1 != 0 || allowed == 0 {
            self.cpu
        } else {
            allowed.trailing_zeros() as usize
        }
    }

    /// Unblocks a thread with `registers` as its trap's return. A thread
    /// failed in the receive half of a REPLY_RECEIVE learns that its reply
    /// half was done (ABI.md §4.4).
    pub(crate) fn wake(&mut self, thread: ThreadId, mut registers: TrapArgs) {
        let after_reply = matches!(
            self.threads.get(thread).map(|t| t.state),
            Some(ThreadState::Receiving {
                after_reply: true,
                ..
            })
        );
        if after_reply && registers.value() == -1 {
            registers.arg2 = abi::trap::REPLY_DELIVERED;
        }
        self.set_resume(thread, registers);
        self.make_ready(thread);
    }

    /// Unblocks a thread that should run as soon as the current one stops
    /// (the partner of an IPC exchange).
    pub(crate) fn wake_for_handoff(&mut self, thread: ThreadId, registers: TrapArgs) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        t.resume = Some(registers);
        t.state = ThreadState::Ready;
        if self.suspended_thread(thread) {
            // Its process is suspended: held, not handed the CPU.
            self.make_ready(thread);
            return;
        }
        if let Some(previous) = self.handoff.replace(thread) {
            self.make_ready(previous);
        }
    }

    /// Raises `server`, which starts serving a call, to `caller_priority`
    /// when that is higher than its own, with room in that run queue made
    /// first (a queue never allocates when a thread is made ready). Without
    /// the room (the heap is exhausted) the server keeps its priority.
    pub(crate) fn inherit_priority(&mut self, server: ThreadId, caller_priority: u8) {
        let Some(s) = self.threads.get(server) else {
            return;
        };
        if caller_priority <= s.priority {
            return;
        }
        let previous = s.priority;
        if self.scheduler.admit(caller_priority).is_err() {
            return;
        }
        if let Some(s) = self.threads.get_mut(server) {
            if s.is_boosted() {
                self.scheduler.dismiss(previous);
            }
            s.priority = caller_priority;
        }
    }

    /// `thread` (the one running) stops serving: back to its own priority.
    #[inline]
    pub(crate) fn end_service(&mut self, thread: ThreadId) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.holding = Holding::Nothing;
            if t.is_boosted() {
                let boosted = t.priority;
                t.priority = t.base_priority;
                self.scheduler.dismiss(boosted);
            }
        }
    }

    /// Parks the current thread in `state`.
    pub(crate) fn block(&mut self, thread: ThreadId, state: ThreadState) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.state = state;
        }
        if self.current == Some(thread) {
            self.current = None;
        }
    }

    /// Chooses the thread to run when the current one stopped.
    pub(crate) fn reschedule(&mut self) {
        // The common case, a call that neither blocked nor woke a partner:
        // the caller runs on, and a current thread is always Running.
        if self.handoff.is_none() && self.current.is_some() {
            debug_assert!(
                self.current
                    .and_then(|t| self.threads.get(t))
                    .is_some_and(|t| t.state == ThreadState::Running)
            );
            return;
        }
        if let Some(partner) = self.handoff.take()
            && let Some(partner_priority) = self.threads.get(partner).map(|t| t.priority)
        {
            let here = self.threads.get(partner).is_some_and(|t| self.runs_here(t));
            match self.current {
                // A partner pinned to other CPUs waits for one of them.
                _ if !here => self.make_ready(partner),
                // The common IPC case: the partner takes the CPU at once.
                None => {
                    self.current = Some(partner);
                    if let Some(t) = self.threads.get_mut(partner) {
                        t.state = ThreadState::Running;
                    }
                    return;
                }
                // A partner that outranks the running thread takes the CPU.
                Some(running)
                    if self
                        .threads
                        .get(running)
                        .is_some_and(|t| t.priority < partner_priority) =>
                {
                    self.make_ready(running);
                    self.current = Some(partner);
                }
                Some(_) => self.make_ready(partner),
            }
        }
        if self.current.is_none() {
            let (cpu, threads) = (self.cpu, &self.threads);
            self.current = self.scheduler.pick(cpu, |t| {
                threads.get(t).is_none_or(|t| (t.affinity >> cpu) & 1 != 0)
            });
        }
        if let Some(thread) = self.current
            && let Some(t) = self.threads.get_mut(thread)
        {
            t.state = ThreadState::Running;
        }
    }

    pub(crate) fn process_of(&self, thread: ThreadId) -> Result<ProcessId, Error> {
        self.threads
            .get(thread)
            .map(|t| t.process)
            .ok_or(Error::InvalidArgument)
    }

    /// The live process `process` (INVALID_ARGUMENT: it is gone, which a
    /// caller's own process never is while it runs).
    pub(crate) fn process(&self, process: ProcessId) -> Result<&Process, Error> {
        self.processes.get(process).ok_or(Error::InvalidArgument)
    }

    /// The live process `process`, to change it.
    pub(crate) fn process_mut(&mut self, process: ProcessId) -> Result<&mut Process, Error> {
        self.processes
            .get_mut(process)
            .ok_or(Error::InvalidArgument)
    }

    /// Adds a reference to an object.
    pub(crate) fn retain(&mut self, object: ObjectId) {
        if let Some(o) = self.objects.get_mut(object) {
            o.references += 1;
        }
    }

    /// Drops a reference; the last one frees the object, which is returned
    /// (a memory object's frames are then for the caller to free:
    /// [`Kernel::release_with`] does, wherever one may go).
    pub(crate) fn release(&mut self, object: ObjectId) -> Option<Object> {
        let o = self.objects.get_mut(object)?;
        o.references = o.references.saturating_sub(1);
        if o.references != 0 {
            return None;
        }
        let o = self.objects.remove(object)?;
        if let Some(p) = self.processes.get_mut(o.charged_to) {
            p.uncharge(crate::object::OBJECT_COST);
        }
        Some(o)
    }

    /// Checks that the kernel may write `[address, address + length)` of
    /// `space`: BAD_BUFFER unless it is writable user memory, or
    /// copy-on-write memory a mapping allows writes to (then copied now, as
    /// a user write would). The IPC path pays only the machine's check:
    /// everything else is on the failure path.
    #[inline(always)]
    pub(crate) fn check_writable(
        &mut self,
        machine: &mut impl Machine,
        space: crate::process::SpaceId,
        address: u64,
        length: usize,
    ) -> Result<(), Error> {
        if machine.check_user(space, address, length, true).is_ok() {
            return Ok(());
        }
        self.writable_after_copy(machine, space, address, length)
    }

    /// The door behind `object` (WRONG_OBJECT_TYPE otherwise).
    pub(crate) fn door(&mut self, object: ObjectId) -> Result<&mut crate::object::Door, Error> {
        self.objects
            .get_mut(object)
            .and_then(Object::door_mut)
            .ok_or(Error::WrongObjectType)
    }

    /// Creates an object charged to `process` (OUT_OF_MEMORY past its limit).
    /// Heap room for one new object and `references` new references in
    /// `process`'s table, taken before an operation makes anything, so a
    /// heap that cannot grow refuses it (OUT_OF_MEMORY) with nothing
    /// changed: the object's insert and the installs after it cannot fail
    /// for want of heap.
    pub(crate) fn reserve_object(
        &mut self,
        process: ProcessId,
        references: usize,
    ) -> Result<(), Error> {
        self.objects.reserve(1)?;
        self.process_mut(process)?.table.reserve(references)
    }

    pub(crate) fn create_object(
        &mut self,
        process: ProcessId,
        body: ObjectBody,
    ) -> Result<ObjectId, Error> {
        self.process_mut(process)?
            .charge(crate::object::OBJECT_COST)?;
        let inserted = self.objects.insert(Object {
            body,
            references: 0,
            charged_to: process,
        });
        if inserted.is_err()
            && let Some(p) = self.processes.get_mut(process)
        {
            p.uncharge(crate::object::OBJECT_COST);
        }
        inserted
    }

    /// Ends whatever `thread` is blocked in, for its process's death.
    pub(crate) fn cancel_thread(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get(thread) else {
            return;
        };
        let (state, holding) = (t.state, t.holding);
        match state {
            ThreadState::Ready => self.scheduler.remove(thread),
            ThreadState::Running => {
                if self.current == Some(thread) {
                    self.current = None;
                } else if let Some(cpu) = self.cpu_running(thread) {
                    // It runs on another CPU, which must stop running it.
                    self.cpus[cpu] = None;
                    self.kicks |= 1 << cpu;
                }
            }
            ThreadState::Sending(call) => {
                if let Ok(door) = self.door(call.door) {
                    door.senders.retain(|t| *t != thread);
                }
                self.release(call.door);
            }
            ThreadState::AwaitingReply { call, server } => {
                if let Some(s) = self.threads.get_mut(server)
                    && s.holding
                        == (Holding::Call {
                            caller: thread,
                            door: call.door,
                        })
                {
                    s.holding = Holding::Cancelled { door: call.door };
                }
            }
            ThreadState::Receiving { door, .. } => {
                if let Ok(d) = self.door(door) {
                    d.receivers.retain(|t| *t != thread);
                }
                self.release(door);
            }
            ThreadState::Waiting { event, .. } => {
                if let Some(e) = self.objects.get_mut(event).and_then(Object::event_mut) {
                    e.waiters.retain(|t| *t != thread);
                }
                self.release(event);
            }
            // The request stays: its reply still supplies the object's page.
            ThreadState::Paging { .. } => {}
        }
        if self.handoff == Some(thread) {
            self.handoff = None;
        }
        if let Holding::Call { caller, .. } = holding {
            self.wake(caller, TrapArgs::error(Error::PeerDied));
        }
        if let Some(t) = self.threads.get_mut(thread) {
            t.holding = Holding::Nothing;
        }
    }
}

#[cfg(test)]
impl Kernel {
    /// Gives back the spare capacity of every collection the kernel grows,
    /// fallibly, right before it adds to it (arena slots, descriptor
    /// tables, thread and region lists, door and event queues), so the next
    /// operation must allocate for each: the allocation-failure tests start
    /// from here. Room reserved as a promise is kept (the run queues'
    /// admissions, the exit list, the process manager's notices, the
    /// arenas' free lists), since paths that must never allocate rely on it.
    pub(crate) fn release_spare_heap(&mut self) {
        self.processes.release_spare_slots();
        self.threads.release_spare_slots();
        self.objects.release_spare_slots();
        self.frames.release_spare_slots();
        let processes: alloc::vec::Vec<_> = self.processes.ids().collect();
        for id in processes {
            if let Some(p) = self.processes.get_mut(id) {
                p.table.release_spare_entries();
                p.threads.shrink_to_fit();
                p.regions.shrink_to_fit();
            }
        }
        let objects: alloc::vec::Vec<_> = self.objects.ids().collect();
        for id in objects {
            match self.objects.get_mut(id).map(|o| &mut o.body) {
                Some(ObjectBody::Door(door)) => {
                    door.senders.shrink_to_fit();
                    door.receivers.shrink_to_fit();
                }
                Some(ObjectBody::Event(event)) => event.waiters.shrink_to_fit(),
                _ => {}
            }
        }
        self.slot_scratch.shrink_to_fit();
    }
}
