//! The harness: a [`World`] that drives [`Kernel::trap`] thread by thread,
//! writes and reads message buffers, makes kernel calls, checks the kernel's
//! invariants after every step, and the door fixtures most tests start from.

use std::collections::{HashMap, HashSet};

use abi::descriptor::MAX_DESCRIPTORS;
use abi::function::Function;
use abi::kcall::{
    DescriptorInfo, DescriptorRequest, DoorCreateRequest, ExitRequest, KernelCounters,
    SpawnRequest, ThreadCreateRequest,
};
use abi::message::descriptor_offset;
use abi::process::USER_STACK_TOP;
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, MessageSizes, Rights, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

use crate::descriptor_table::Reference;
use crate::kernel::Kernel;
use crate::machine::PageFault;
use crate::memory_object::{Fault, REGION_COST};
use crate::object::{OBJECT_COST, ObjectBody, ObjectId};
use crate::process::{DESCRIPTOR_COST, ProcessId, SpaceId};
use crate::thread::{Holding, THREAD_COST, ThreadId, ThreadState};

use super::fake_machine::*;

/// A message buffer as the harness writes it: data, then slots at the
/// aligned offset, inside `total` bytes at `buf`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Msg<'a> {
    pub(super) buf: u64,
    pub(super) data: &'a [u8],
    pub(super) slots: &'a [DescriptorSlot],
    pub(super) total: u16,
}

pub(super) fn msg(buf: u64, data: &[u8], total: u16) -> Msg<'_> {
    Msg {
        buf,
        data,
        slots: &[],
        total,
    }
}

impl<'a> Msg<'a> {
    pub(super) fn slots(self, slots: &'a [DescriptorSlot]) -> Self {
        Msg { slots, ..self }
    }

    pub(super) fn sizes(&self) -> MessageSizes {
        sizes(self.total, self.data.len() as u16, self.slots.len() as u8)
    }
}

pub(super) fn sizes(total: u16, data: u16, count: u8) -> MessageSizes {
    match MessageSizes::from_fields(total, data, count) {
        Ok(s) => s,
        Err(e) => panic!("sizes {total}/{data}/{count}: {e}"),
    }
}

pub(super) fn err(e: Error) -> Option<TrapArgs> {
    Some(TrapArgs::error(e))
}

/// The registers of a completed SEND whose reply had `data` bytes and `count` slots.
pub(super) fn replied(ret_val: u32, errno: u32, data: u16, count: u8) -> Option<TrapArgs> {
    Some(TrapArgs::replied(ret_val, errno, sizes(0, data, count)))
}

/// A kernel function's successful return: msgRetVal, msgErrno 0, 8 + payload bytes.
pub(super) fn kernel_ok(ret_val: u32, payload: u16, count: u8) -> Option<TrapArgs> {
    replied(ret_val, 0, 8 + payload, count)
}

/// A kernel reply read back from the caller's buffer.
#[derive(Debug)]
pub(super) struct KReply {
    pub(super) regs: TrapArgs,
    pub(super) payload: Vec<u8>,
    pub(super) slots: Vec<DescriptorSlot>,
}

/// A spawned process: its first thread and init's handle on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Child {
    pub(super) process: ProcessId,
    pub(super) thread: ThreadId,
    pub(super) handle: Descriptor,
}

/// The kernel, the fake machine, and the first process (holding the capabilities).
#[derive(Debug)]
pub(super) struct World {
    pub(super) k: Kernel,
    pub(super) m: FakeMachine,
    pub(super) init: ProcessId,
    pub(super) init_thread: ThreadId,
    /// What each trap of `random::apply` returned to its thread at once.
    pub(super) results: Vec<Option<TrapArgs>>,
    /// Set by an allocation-failure test: the next trap runs with the
    /// kernel heap's allocation `n` failing (`test_allocator::fail_at`).
    pub(super) fail_allocation: Option<u64>,
    /// What that trap did, for the test to judge.
    pub(super) failure_trial: Option<FailureTrial>,
}

/// One trap run with an allocation failing (see [`World::fail_allocation`]).
#[derive(Debug)]
pub(super) struct FailureTrial {
    /// The whole state (kernel and machine) just before the trap and just
    /// after it, its result taken.
    pub(super) before: String,
    pub(super) after: String,
    /// The trap's result: its registers, or None if the thread blocked.
    pub(super) result: Option<TrapArgs>,
    pub(super) run: test_allocator::Run,
}

impl World {
    pub(super) fn new() -> Self {
        let mut m = FakeMachine::new();
        let mut k = Kernel::new();
        let init = match k.spawn_initial(&mut m, b"init", &[]) {
            Ok(p) => p,
            Err(e) => panic!("spawn_initial: {e}"),
        };
        let Some(init_thread) = k.current() else {
            panic!("spawn_initial left no current thread")
        };
        World {
            k,
            m,
            init,
            init_thread,
            results: Vec::new(),
            fail_allocation: None,
            failure_trial: None,
        }
    }

    pub(super) fn process_of(&self, t: ThreadId) -> ProcessId {
        match self.k.threads.get(t) {
            Some(th) => th.process,
            None => panic!("thread {t:?} is gone"),
        }
    }

    pub(super) fn space(&self, p: ProcessId) -> SpaceId {
        match self.k.processes.get(p) {
            Some(p) => p.space,
            None => panic!("process {p:?} is gone"),
        }
    }

    pub(super) fn alive(&self, t: ThreadId) -> bool {
        self.k.threads.contains(t)
    }

    pub(super) fn process_alive(&self, p: ProcessId) -> bool {
        self.k.processes.contains(p)
    }

    pub(super) fn state(&self, t: ThreadId) -> ThreadState {
        match self.k.threads.get(t) {
            Some(th) => th.state,
            None => panic!("thread {t:?} is gone"),
        }
    }

    pub(super) fn holding(&self, t: ThreadId) -> Holding {
        match self.k.threads.get(t) {
            Some(th) => th.holding,
            None => panic!("thread {t:?} is gone"),
        }
    }

    pub(super) fn runnable(&self, t: ThreadId) -> bool {
        self.k.threads.get(t).is_some_and(|th| {
            matches!(th.state, ThreadState::Ready | ThreadState::Running) && !th.held
        })
    }

    pub(super) fn poke(&mut self, p: ProcessId, address: u64, bytes: &[u8]) {
        let space = self.space(p);
        if let Err(e) = self.m.copy_in(space, address, bytes) {
            panic!("poke {address:#x}: {e}");
        }
    }

    pub(super) fn peek(&self, p: ProcessId, address: u64, length: usize) -> Vec<u8> {
        let mut bytes = vec![0; length];
        if let Err(e) = self.m.copy_out(self.space(p), address, &mut bytes) {
            panic!("peek {address:#x}: {e}");
        }
        bytes
    }

    pub(super) fn fill(&mut self, p: ProcessId, address: u64, length: usize, byte: u8) {
        self.poke(p, address, &vec![byte; length]);
    }

    pub(super) fn slot_at(&self, p: ProcessId, address: u64) -> DescriptorSlot {
        match DescriptorSlot::read_from_bytes(&self.peek(p, address, 16)) {
            Ok(slot) => slot,
            Err(_) => panic!("slot at {address:#x}"),
        }
    }

    /// Writes the data and slots of `m` (where they are mapped).
    pub(super) fn write_msg(&mut self, p: ProcessId, m: Msg<'_>) {
        let space = self.space(p);
        let _ = self.m.copy_in(space, m.buf, m.data);
        let at = m.buf + u64::from(descriptor_offset(m.data.len() as u16));
        for (i, slot) in m.slots.iter().enumerate() {
            let _ = self.m.copy_in(space, at + 16 * i as u64, slot.as_bytes());
        }
    }

    pub(super) fn reference(&self, p: ProcessId, d: Descriptor) -> Option<Reference> {
        self.k
            .processes
            .get(p)
            .and_then(|p| p.table.get(d).ok())
            .copied()
    }

    pub(super) fn object_of(&self, p: ProcessId, d: Descriptor) -> ObjectId {
        match self.reference(p, d) {
            Some(r) => r.object,
            None => panic!("descriptor {d:?} is not open in {p:?}"),
        }
    }

    pub(super) fn open_descriptors(&self, p: ProcessId) -> usize {
        self.k.processes.get(p).map_or(0, |p| p.table.open())
    }

    pub(super) fn charged(&self, p: ProcessId) -> u64 {
        self.k.processes.get(p).map_or(0, |p| p.charged)
    }

    /// Makes `t` the current thread, as a scheduler decision would.
    pub(super) fn run(&mut self, t: ThreadId) {
        if self.k.current == Some(t) {
            return;
        }
        let state = self.state(t);
        assert!(
            matches!(state, ThreadState::Ready | ThreadState::Running),
            "thread {t:?} cannot run: {state:?}"
        );
        assert!(
            !self.k.threads.get(t).is_some_and(|th| th.held),
            "thread {t:?} is held: its process is suspended"
        );
        if let Some(previous) = self.k.current.take() {
            self.k.make_ready(previous);
        }
        self.k.scheduler.remove(t);
        self.k.current = Some(t);
        if let Some(th) = self.k.threads.get_mut(t) {
            th.state = ThreadState::Running;
        }
    }

    /// Runs one trap by `t`; returns its registers if it returns at once.
    pub(super) fn trap(&mut self, t: ThreadId, args: TrapArgs) -> Option<TrapArgs> {
        self.run(t);
        if let Some(stale) = self.k.take_resume(t) {
            panic!("thread {t:?} had an unread result {stale:?}");
        }
        let Some(n) = self.fail_allocation.take() else {
            self.k.trap(&mut self.m, args);
            // As the arch layer does after every trap: lines logged wake
            // the log's reader.
            self.k.log_signal(&mut self.m);
            return self.k.take_resume(t);
        };
        let before = self.whole_state();
        let ((), run) = test_allocator::fail_at(n, || self.k.trap(&mut self.m, args));
        let result = self.k.take_resume(t);
        self.failure_trial = Some(FailureTrial {
            before,
            after: self.whole_state(),
            result,
            run,
        });
        result
    }

    /// Everything the kernel and the fake machine hold (tables, queues,
    /// threads, objects, frames, page maps and their bytes, the console),
    /// as text: what a refused trap must leave exactly as it was.
    pub(super) fn whole_state(&self) -> String {
        let k = &self.k;
        format!(
            "processes:\n{}threads:\n{}objects:\n{}frames:\n{}{k:#?}\n{:#?}",
            k.processes.describe(),
            k.threads.describe(),
            k.objects.describe(),
            k.frames.describe(),
            self.m
        )
    }

    /// The registers a blocked thread was woken with.
    pub(super) fn resume(&mut self, t: ThreadId) -> Option<TrapArgs> {
        self.k.take_resume(t)
    }

    pub(super) fn send(
        &mut self,
        t: ThreadId,
        function: i32,
        target: Descriptor,
        m: Msg<'_>,
    ) -> Option<TrapArgs> {
        let p = self.process_of(t);
        self.write_msg(p, m);
        self.trap(
            t,
            TrapArgs::send(Function(function), target, m.buf, m.sizes()),
        )
    }

    pub(super) fn receive(
        &mut self,
        t: ThreadId,
        door: Descriptor,
        buf: u64,
        total: u16,
    ) -> Option<TrapArgs> {
        self.trap(t, TrapArgs::receive(door, buf, total))
    }

    pub(super) fn reply(&mut self, t: ThreadId, cookie: u64, m: Msg<'_>) -> Option<TrapArgs> {
        let p = self.process_of(t);
        self.write_msg(p, m);
        self.trap(t, TrapArgs::reply(cookie, m.buf, m.sizes(), false))
    }

    pub(super) fn reply_receive(
        &mut self,
        t: ThreadId,
        cookie: u64,
        m: Msg<'_>,
    ) -> Option<TrapArgs> {
        let p = self.process_of(t);
        self.write_msg(p, m);
        self.trap(t, TrapArgs::reply(cookie, m.buf, m.sizes(), true))
    }

    /// A kernel function that must return at once.
    pub(super) fn kcall_msg(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        m: Msg<'_>,
    ) -> TrapArgs {
        match self.send(t, f as i32, target, m) {
            Some(regs) => regs,
            None => panic!("{f:?} by {t:?} did not return"),
        }
    }

    pub(super) fn kcall(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        data: &[u8],
    ) -> TrapArgs {
        self.kcall_msg(t, f, target, msg(KBUF, data, KTOTAL))
    }

    pub(super) fn parse_reply(&self, p: ProcessId, buf: u64, regs: TrapArgs) -> KReply {
        let s = MessageSizes::from_bits(regs.arg3);
        let data = self.peek(p, buf, usize::from(s.data_size()));
        assert_eq!(
            data.get(..4).map(<[u8]>::to_vec),
            Some(regs.arg0.to_le_bytes()[..4].to_vec()),
            "word 0 of the reply is msgRetVal"
        );
        let payload = data.get(8..).map_or_else(Vec::new, <[u8]>::to_vec);
        let at = buf + u64::from(descriptor_offset(s.data_size()));
        let slots = (0..u64::from(s.descriptor_count()))
            .map(|i| self.slot_at(p, at + 16 * i))
            .collect();
        KReply {
            regs,
            payload,
            slots,
        }
    }

    /// A kernel function that must succeed.
    pub(super) fn kcall_ok(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        data: &[u8],
    ) -> KReply {
        let regs = self.kcall(t, f, target, data);
        if let Some(e) = regs.kernel_error() {
            panic!("{f:?} by {t:?} failed: {e}");
        }
        let p = self.process_of(t);
        self.parse_reply(p, KBUF, regs)
    }

    pub(super) fn door_create(&mut self, t: ThreadId, system: bool) -> (Descriptor, Descriptor) {
        let request = DoorCreateRequest::new(system, 7);
        let reply = self.kcall_ok(
            t,
            KernelFunction::DoorCreate,
            CAP_PROCESS,
            request.as_bytes(),
        );
        assert_eq!(reply.slots.len(), 2);
        assert_eq!(reply.slots[0].rights, Rights::DOOR_OWNER.0);
        assert_eq!(reply.slots[1].rights, Rights::DOOR_CLIENT.0);
        (
            Descriptor(reply.slots[0].descriptor),
            Descriptor(reply.slots[1].descriptor),
        )
    }

    pub(super) fn event_create(&mut self, t: ThreadId) -> Descriptor {
        let reply = self.kcall_ok(t, KernelFunction::EventCreate, Descriptor::NULL, &[]);
        assert_eq!(reply.slots.len(), 1);
        Descriptor(reply.slots[0].descriptor)
    }

    pub(super) fn duplicate(
        &mut self,
        t: ThreadId,
        d: Descriptor,
        rights: Rights,
    ) -> Result<Descriptor, Error> {
        let request = DescriptorRequest::new(d, rights);
        let regs = self.kcall(
            t,
            KernelFunction::Duplicate,
            Descriptor::NULL,
            request.as_bytes(),
        );
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        assert_eq!(reply.slots.len(), 1);
        assert_eq!(reply.slots[0].rights, rights.0);
        Ok(Descriptor(reply.slots[0].descriptor))
    }

    pub(super) fn close(&mut self, t: ThreadId, d: Descriptor) -> TrapArgs {
        let request = DescriptorRequest::new(d, Rights::NONE);
        self.kcall(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            request.as_bytes(),
        )
    }

    pub(super) fn info(&mut self, t: ThreadId, d: Descriptor) -> Result<(u32, u32), Error> {
        let request = DescriptorRequest::new(d, Rights::NONE);
        let regs = self.kcall(
            t,
            KernelFunction::DescriptorInfo,
            Descriptor::NULL,
            request.as_bytes(),
        );
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        match DescriptorInfo::read_from_bytes(&reply.payload) {
            Ok(info) => Ok((info.kind, info.rights)),
            Err(_) => panic!("DESCRIPTOR_INFO payload {:?}", reply.payload),
        }
    }

    pub(super) fn thread_create(&mut self, t: ThreadId) -> ThreadId {
        self.thread_create_at(t, abi::kcall::DEFAULT_PRIORITY)
    }

    /// A thread of `t`'s process at `priority`.
    pub(super) fn thread_create_at(&mut self, t: ThreadId, priority: u32) -> ThreadId {
        let request = ThreadCreateRequest::new(IMAGE, USER_STACK_TOP - 0x8000, 0, priority);
        let reply = self.kcall_ok(
            t,
            KernelFunction::ThreadCreate,
            Descriptor::NULL,
            request.as_bytes(),
        );
        assert_eq!(reply.slots.len(), 1);
        let p = self.process_of(t);
        let object = self.object_of(p, Descriptor(reply.slots[0].descriptor));
        match self.k.objects.get(object).map(|o| &o.body) {
            Some(ObjectBody::Thread(thread)) => *thread,
            other => panic!("THREAD_CREATE handle names {other:?}"),
        }
    }

    pub(super) fn exit_process(&mut self, t: ThreadId, code: u32) {
        let p = self.process_of(t);
        let request = ExitRequest::new(code);
        let result = self.send(
            t,
            KernelFunction::ProcessExit as i32,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL),
        );
        assert_eq!(result, None, "PROCESS_EXIT returned");
        assert!(
            !self.process_alive(p),
            "PROCESS_EXIT left the process alive"
        );
    }

    pub(super) fn exit_thread(&mut self, t: ThreadId, code: u32) {
        let request = ExitRequest::new(code);
        let result = self.send(
            t,
            KernelFunction::ThreadExit as i32,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL),
        );
        assert_eq!(result, None, "THREAD_EXIT returned");
        assert!(!self.alive(t), "THREAD_EXIT left the thread alive");
    }

    /// SPAWN by init.
    pub(super) fn spawn(
        &mut self,
        name: &[u8],
        args: &[u8],
        slots: &[DescriptorSlot],
    ) -> Result<Child, Error> {
        let data = encoded(|out| SpawnRequest::encode(name, args, out));
        let t = self.init_thread;
        let regs = self.kcall_msg(
            t,
            KernelFunction::Spawn,
            CAP_PROCESS,
            msg(KBUF, &data, KTOTAL).slots(slots),
        );
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        assert_eq!(regs, kernel_ok(0, 0, 1).unwrap_or_default());
        let reply = self.parse_reply(self.init, KBUF, regs);
        let handle = Descriptor(reply.slots[0].descriptor);
        let object = self.object_of(self.init, handle);
        let process = match self.k.objects.get(object).map(|o| &o.body) {
            Some(ObjectBody::Process(p)) => *p,
            other => panic!("SPAWN handle names {other:?}"),
        };
        let thread = match self.k.processes.get(process).map(|p| p.threads.as_slice()) {
            Some([t]) => *t,
            other => panic!("spawned process threads {other:?}"),
        };
        Ok(Child {
            process,
            thread,
            handle,
        })
    }

    pub(super) fn spawn_ok(&mut self, name: &[u8], slots: &[DescriptorSlot]) -> Child {
        match self.spawn(name, &[], slots) {
            Ok(child) => child,
            Err(e) => panic!("SPAWN {:?}: {e}", String::from_utf8_lossy(name)),
        }
    }

    /// One complete call: `server` receives on `owner`, `client` sends
    /// `function` through `via`, `server` replies with `cookie`. Returns
    /// the registers the server received.
    pub(super) fn round_trip(
        &mut self,
        client: ThreadId,
        via: Descriptor,
        function: i32,
        server: ThreadId,
        owner: Descriptor,
        cookie: u64,
    ) -> TrapArgs {
        assert_eq!(self.receive(server, owner, RBUF, 512), None);
        assert_eq!(
            self.send(client, function, via, msg(SBUF, b"ping", 64)),
            None
        );
        let Some(received) = self.resume(server) else {
            panic!("the server received nothing")
        };
        assert_eq!(
            self.reply(server, cookie, msg(RBUF, &[], 0)),
            Some(TrapArgs::default())
        );
        assert_eq!(self.resume(client), replied(0, 0, 0, 0));
        received
    }

    pub(super) fn counters(&self) -> (KernelCounters, usize, usize) {
        (
            self.k.counters(),
            self.m.spaces.len(),
            self.m.contexts.len(),
        )
    }

    pub(super) fn assert_invariants(&mut self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "invariants broken:\n{}",
            violations.join("\n")
        );
    }

    /// Every rule the kernel's state must keep between traps.
    pub(super) fn violations(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        let k = &self.k;
        let queued: Vec<ThreadId> = k.scheduler.iter().collect();
        // A queued thread waits where it may run (else it could starve).
        for cpu in 0..k.scheduler.cpu_count() {
            for t in k.scheduler.queued_on(cpu) {
                if k.threads
                    .get(t)
                    .is_some_and(|th| (th.affinity >> cpu) & 1 == 0)
                {
                    v.push(format!(
                        "{t:?} is queued on CPU {cpu}, outside its affinity"
                    ));
                }
            }
        }
        // A thread's copy of its process's space is the process's (the
        // fast path reads it instead of the process), and its process lives.
        for t in k.threads.ids() {
            if let Some(th) = k.threads.get(t) {
                match k.processes.get(th.process) {
                    Some(p) if p.space == th.space => {}
                    Some(p) => v.push(format!(
                        "{t:?} has space {}, its process {}",
                        th.space, p.space
                    )),
                    None => v.push(format!("{t:?} outlived its process")),
                }
            }
        }
        // Run-queue room: one place at each thread's own priority, and one
        // more at the priority a call raised it to.
        let mut admitted = [0usize; crate::scheduler::LEVELS];
        for t in k.threads.ids() {
            if let Some(th) = k.threads.get(t) {
                admitted[usize::from(th.base_priority)] += 1;
                if th.is_boosted() {
                    admitted[usize::from(th.priority)] += 1;
                    if th.priority < th.base_priority
                        || !matches!(th.holding, Holding::Call { .. } | Holding::Cancelled { .. })
                    {
                        v.push(format!(
                            "{t:?} runs at {} without serving a higher call",
                            th.priority
                        ));
                    }
                }
            }
        }
        for (level, count) in admitted.iter().enumerate() {
            if k.scheduler.admitted(level) != *count {
                v.push(format!(
                    "run queue {level} has room for {} threads, {count} may use it",
                    k.scheduler.admitted(level)
                ));
            }
        }
        let queued_set: HashSet<ThreadId> = queued.iter().copied().collect();
        if queued_set.len() != queued.len() {
            v.push(format!("a thread is queued twice: {queued:?}"));
        }
        for &t in &queued {
            match k.threads.get(t) {
                None => v.push(format!("dead thread {t:?} in the run queue")),
                Some(th) if th.state != ThreadState::Ready => {
                    v.push(format!("queued thread {t:?} is {:?}", th.state));
                }
                Some(_) => {}
            }
        }
        if k.current.is_none() && !queued.is_empty() {
            v.push(format!("idle with ready threads {queued:?}"));
        }
        if k.handoff.is_some() {
            v.push(format!("handoff left set: {:?}", k.handoff));
        }
        if let Some(c) = k.current {
            match k.threads.get(c) {
                None => v.push(format!("current thread {c:?} is dead")),
                Some(th) if th.state != ThreadState::Running => {
                    v.push(format!("current thread {c:?} is {:?}", th.state));
                }
                Some(_) => {}
            }
            if queued_set.contains(&c) {
                v.push(format!("current thread {c:?} is also queued"));
            }
        }

        // The slow path's attention: one per thread counted, one per
        // suspended process.
        let counted = k
            .threads
            .ids()
            .filter(|t| k.threads.get(*t).is_some_and(|th| th.signals.counted))
            .count();
        let suspended = k
            .processes
            .ids()
            .filter(|p| k.processes.get(*p).is_some_and(|p| p.suspended))
            .count();
        if k.attention != counted + suspended {
            v.push(format!(
                "attention {} for {counted} counted threads and {suspended} suspended processes",
                k.attention
            ));
        }

        // Threads and what they are blocked on.
        let mut blocked_on: HashMap<ObjectId, u32> = HashMap::new();
        for t in k.threads.ids() {
            let Some(th) = k.threads.get(t) else { continue };
            match k.processes.get(th.process) {
                None => v.push(format!("thread {t:?} of dead process {:?}", th.process)),
                Some(p) if !p.threads.contains(&t) => {
                    v.push(format!("thread {t:?} missing from its process's list"));
                }
                Some(_) => {}
            }
            let suspended = k.processes.get(th.process).is_some_and(|p| p.suspended);
            if th.held {
                if th.state != ThreadState::Ready || !suspended || queued_set.contains(&t) {
                    v.push(format!(
                        "held thread {t:?} is {:?}, queued {}, its process suspended {suspended}",
                        th.state,
                        queued_set.contains(&t)
                    ));
                }
            } else if suspended && th.state == ThreadState::Ready {
                v.push(format!(
                    "{t:?} of a suspended process is ready and not held"
                ));
            }
            if suspended && k.current == Some(t) {
                v.push(format!("{t:?} of a suspended process is current"));
            }
            match th.state {
                ThreadState::Ready if !queued_set.contains(&t) && !th.held => {
                    v.push(format!("ready thread {t:?} is in no run queue"));
                }
                // Current, or what another CPU runs outside the kernel.
                ThreadState::Running if k.current != Some(t) && k.cpu_running(t).is_none() => {
                    v.push(format!("thread {t:?} is Running but not current"));
                }
                ThreadState::Sending(call) => {
                    *blocked_on.entry(call.door).or_default() += 1;
                    if call.sizes.layout().is_err() {
                        v.push(format!("sender {t:?} holds invalid sizes"));
                    }
                    match k.objects.get(call.door).map(|o| &o.body) {
                        Some(ObjectBody::Door(d)) => {
                            let n = d.senders.iter().filter(|s| **s == t).count();
                            if n != 1 {
                                v.push(format!("sender {t:?} is queued {n} times on its door"));
                            }
                            if d.owner.is_none() {
                                v.push(format!("sender {t:?} waits on a dead door"));
                            }
                        }
                        other => v.push(format!("sender {t:?} sends to {other:?}")),
                    }
                }
                ThreadState::AwaitingReply { call, server } => {
                    let expected = Holding::Call {
                        caller: t,
                        door: call.door,
                    };
                    if k.threads.get(server).map(|s| s.holding) != Some(expected) {
                        v.push(format!(
                            "caller {t:?} awaits {server:?}, which does not hold its call"
                        ));
                    }
                }
                ThreadState::Receiving { door, .. } => {
                    *blocked_on.entry(door).or_default() += 1;
                    match k.objects.get(door).map(|o| &o.body) {
                        Some(ObjectBody::Door(d)) => {
                            let n = d.receivers.iter().filter(|r| **r == t).count();
                            if n != 1 {
                                v.push(format!("receiver {t:?} is queued {n} times"));
                            }
                            if d.owner != Some(th.process) {
                                v.push(format!("receiver {t:?} does not own its door"));
                            }
                        }
                        other => v.push(format!("receiver {t:?} receives on {other:?}")),
                    }
                }
                ThreadState::Waiting { event, .. } => {
                    *blocked_on.entry(event).or_default() += 1;
                    match k.objects.get(event).map(|o| &o.body) {
                        Some(ObjectBody::Event(e)) => {
                            let n = e.waiters.iter().filter(|w| **w == t).count();
                            if n != 1 {
                                v.push(format!("waiter {t:?} is queued {n} times"));
                            }
                        }
                        other => v.push(format!("waiter {t:?} waits on {other:?}")),
                    }
                }
                _ => {}
            }
            if let ThreadState::Paging { object, page } = th.state {
                let in_flight = k
                    .objects
                    .get(object)
                    .and_then(|o| o.memory())
                    .and_then(|m| m.special())
                    .is_some_and(|s| s.requests.iter().any(|r| r.page == page));
                if !in_flight {
                    v.push(format!(
                        "{t:?} waits on page {page} of {object:?}, not asked for"
                    ));
                }
            }
            if let Holding::Page { object, page, door } = th.holding {
                let record = k
                    .objects
                    .get(object)
                    .and_then(|o| o.memory())
                    .and_then(|m| m.special())
                    .and_then(|s| s.requests.iter().find(|r| r.page == page));
                if !record.is_some_and(|r| r.server == Some(t) && r.door == door) {
                    v.push(format!(
                        "{t:?} holds page {page} of {object:?}, recorded {record:?}"
                    ));
                }
            }
            if let Holding::Call { caller, door } = th.holding {
                match k.threads.get(caller).map(|c| c.state) {
                    Some(ThreadState::AwaitingReply { call, server })
                        if server == t && call.door == door => {}
                    other => v.push(format!(
                        "server {t:?} holds a call from {caller:?}, which is {other:?}"
                    )),
                }
            }
        }

        // Tables, charges, and references per object: a special object
        // holds its pager door, each page request its object and its door.
        let mut referenced: HashMap<ObjectId, u32> = HashMap::new();
        let mut queued_requests: HashSet<(ObjectId, u64)> = HashSet::new();
        for o in k.objects.ids() {
            if let Some(ObjectBody::Door(d)) = k.objects.get(o).map(|o| &o.body) {
                for &(object, page) in &d.page_requests {
                    if !queued_requests.insert((object, page)) {
                        v.push(format!("page {page} of {object:?} queued twice"));
                    }
                }
            }
            let Some(special) = k
                .objects
                .get(o)
                .and_then(|o| o.memory())
                .and_then(|m| m.special())
            else {
                continue;
            };
            *referenced.entry(special.pager).or_default() += 1;
            for r in &special.requests {
                *referenced.entry(o).or_default() += 1;
                *referenced.entry(r.door).or_default() += 1;
                if special.pages.get(r.page as usize) != Some(&None) {
                    v.push(format!("{o:?} asks for page {} it has or lacks", r.page));
                }
                let queued = k.objects.get(r.door).and_then(|d| match &d.body {
                    ObjectBody::Door(d) => Some(d.page_requests.contains(&(o, r.page))),
                    _ => None,
                });
                if queued != Some(r.server.is_none()) {
                    v.push(format!("request {r:?} of {o:?}: queued {queued:?}"));
                }
                if let Some(server) = r.server {
                    let expected = Holding::Page {
                        object: o,
                        page: r.page,
                        door: r.door,
                    };
                    if k.threads.get(server).map(|t| t.holding) != Some(expected) {
                        v.push(format!(
                            "request {r:?} of {o:?}: its server does not hold it"
                        ));
                    }
                }
            }
        }
        let mut receive_refs: HashMap<ObjectId, Vec<ProcessId>> = HashMap::new();
        for p in k.processes.ids() {
            let Some(process) = k.processes.get(p) else {
                continue;
            };
            let mut open = 0u64;
            for d in 1..=MAX_DESCRIPTORS {
                let Ok(r) = process.table.get(Descriptor(d)) else {
                    continue;
                };
                open += 1;
                *referenced.entry(r.object).or_default() += 1;
                if !k.objects.contains(r.object) {
                    v.push(format!("{p:?} descriptor {d} names a freed object"));
                }
                if r.rights.has_reserved_bits() {
                    v.push(format!("{p:?} descriptor {d} has reserved rights"));
                }
                if r.rights.contains(Rights::RECEIVE) {
                    receive_refs.entry(r.object).or_default().push(p);
                }
            }
            for region in &process.regions {
                *referenced.entry(region.object).or_default() += 1;
            }

            if open != process.table.open() as u64 {
                v.push(format!(
                    "{p:?} table counts {} open, holds {open}",
                    process.table.open()
                ));
            }
            let mut seen = HashSet::new();
            for &t in &process.threads {
                if !seen.insert(t) {
                    v.push(format!("{p:?} lists thread {t:?} twice"));
                }
                if k.threads.get(t).map(|th| th.process) != Some(p) {
                    v.push(format!("{p:?} lists thread {t:?}, not its own"));
                }
            }
            let objects = k
                .objects
                .ids()
                .filter(|o| k.objects.get(*o).is_some_and(|o| o.charged_to == p))
                .count() as u64;
            let memory: u64 = k
                .objects
                .ids()
                .filter_map(|o| k.objects.get(o))
                .filter(|o| o.charged_to == p)
                .filter_map(|o| o.memory())
                .map(|m| m.charge)
                .sum();
            let smos = k
                .smos
                .ids()
                .filter(|id| k.smos.get(*id).is_some_and(|s| s.owner == p))
                .count() as u64;
            let expected = self.m.mapped_bytes(process.space)
                + abi::kcall::smo::COST * smos
                + DESCRIPTOR_COST * open
                + THREAD_COST * process.threads.len() as u64
                + OBJECT_COST * objects
                + memory
                + REGION_COST * process.regions.len() as u64;
            if process.charged != expected {
                v.push(format!(
                    "{p:?} is charged {} bytes, holds {expected}",
                    process.charged
                ));
            }
        }
        // SMOs: owned by a live process, aimed at a live one or at none,
        // inside the user half, with known permissions.
        for id in k.smos.ids() {
            let Some(smo) = k.smos.get(id) else { continue };
            if !k.processes.contains(smo.owner) {
                v.push(format!("SMO {id:?} outlives its owner {:?}", smo.owner));
            }
            if let Some(target) = smo.target
                && !k.processes.contains(target)
            {
                v.push(format!("SMO {id:?} aims at the ended {target:?}"));
            }
            if smo.size == 0
                || smo
                    .address
                    .checked_add(smo.size)
                    .is_none_or(|e| e > abi::process::USER_END)
                || smo.permissions == 0
                || smo.permissions & !abi::kcall::smo::ALL != 0
            {
                v.push(format!("SMO {id:?} is malformed: {smo:?}"));
            }
            if crate::smo::number_of(id) >= abi::kcall::smo::ID_LIMIT {
                v.push(format!("SMO {id:?} has a number past the limit"));
            }
        }
        // The kernel-log object holds its event, and is the kernel's one.
        for o in k.objects.ids() {
            if let Some(crate::object::ObjectBody::KernelLog(event)) =
                k.objects.get(o).map(|object| &object.body)
            {
                *referenced.entry(*event).or_default() += 1;
                if k.kernel_log != Some(o) {
                    v.push(format!("kernel-log object {o:?} is not the kernel's"));
                }
            }
        }
        if let Some(o) = k.kernel_log
            && !matches!(
                k.objects.get(o).map(|object| &object.body),
                Some(crate::object::ObjectBody::KernelLog(_))
            )
        {
            v.push(format!("the kernel's log {o:?} is not a kernel-log object"));
        }
        if k.kernel_log.is_some() != self.m.log.is_taken() {
            v.push("the log is taken exactly while a kernel-log object lives".into());
        }
        // An interrupt object holds its event, and its line in the table.
        for o in k.objects.ids() {
            if let Some(crate::object::ObjectBody::Interrupt(interrupt)) =
                k.objects.get(o).map(|object| &object.body)
            {
                *referenced.entry(interrupt.event).or_default() += 1;
                if k.interrupt_lines.get(usize::from(interrupt.line)) != Some(&Some(o)) {
                    v.push(format!(
                        "interrupt object {o:?} is not its line {}'s",
                        interrupt.line
                    ));
                }
            }
        }
        for (line, holder) in k.interrupt_lines.iter().enumerate() {
            if let Some(o) = holder
                && !k.objects.contains(*o)
            {
                v.push(format!("line {line} names a freed interrupt object"));
            }
        }
        for o in k.objects.ids() {
            let Some(object) = k.objects.get(o) else {
                continue;
            };
            let expected =
                referenced.get(&o).copied().unwrap_or(0) + blocked_on.get(&o).copied().unwrap_or(0);
            if object.references != expected || expected == 0 {
                v.push(format!(
                    "object {o:?} ({:?}) counts {} references, has {expected}",
                    object.kind(),
                    object.references
                ));
            }
            let owners = receive_refs.remove(&o).unwrap_or_default();
            match &object.body {
                ObjectBody::Door(d) => {
                    let expected_owners: Vec<ProcessId> = d.owner.into_iter().collect();
                    if owners != expected_owners {
                        v.push(format!(
                            "door {o:?} owner {:?}, RECEIVE references in {owners:?}",
                            d.owner
                        ));
                    }
                    for s in &d.senders {
                        if !matches!(k.threads.get(*s).map(|t| t.state),
                            Some(ThreadState::Sending(call)) if call.door == o)
                        {
                            v.push(format!(
                                "door {o:?} queues {s:?}, which is not sending to it"
                            ));
                        }
                    }
                    for r in &d.receivers {
                        if !matches!(k.threads.get(*r).map(|t| t.state),
                            Some(ThreadState::Receiving { door, .. }) if door == o)
                        {
                            v.push(format!(
                                "door {o:?} lists receiver {r:?}, not receiving on it"
                            ));
                        }
                    }
                }
                ObjectBody::Event(e) => {
                    for w in &e.waiters {
                        if !matches!(k.threads.get(*w).map(|t| t.state),
                            Some(ThreadState::Waiting { event, .. }) if event == o)
                        {
                            v.push(format!("event {o:?} lists waiter {w:?}, not waiting on it"));
                        }
                    }
                    if !e.waiters.is_empty() && e.count > 0 {
                        v.push(format!("event {o:?} has count {} and waiters", e.count));
                    }
                }
                _ => {
                    if !owners.is_empty() {
                        v.push(format!("non-door {o:?} has RECEIVE references"));
                    }
                }
            }
        }
        for (o, owners) in receive_refs {
            v.push(format!(
                "dangling RECEIVE references to {o:?} in {owners:?}"
            ));
        }

        // The machine mirrors the kernel.
        let spaces: HashSet<SpaceId> = k
            .processes
            .ids()
            .filter_map(|p| k.processes.get(p).map(|p| p.space))
            .collect();
        let machine_spaces: HashSet<SpaceId> = self.m.spaces.keys().copied().collect();
        if spaces != machine_spaces {
            v.push(format!(
                "spaces: kernel {spaces:?}, machine {machine_spaces:?}"
            ));
        }
        let threads: HashSet<ThreadId> = k.threads.ids().collect();
        let contexts: HashSet<ThreadId> = self.m.contexts.keys().copied().collect();
        if threads != contexts {
            v.push(format!(
                "threads: kernel {threads:?}, machine contexts {contexts:?}"
            ));
        }
        v.extend(self.memory_violations());
        v.extend(self.m.anomalies.iter().cloned());
        v
    }

    /// The rules of memory objects: frame records and the machine's
    /// frames agree one for one, each record counts exactly the objects
    /// holding it, and every mapping of an object is in the machine's
    /// tables as the core says it must be (frame, protection, caching),
    /// with no other object page mapped anywhere.
    pub(super) fn memory_violations(&self) -> Vec<String> {
        let (k, m) = (&self.k, &self.m);
        let mut v = Vec::new();
        let mut holders: HashMap<u64, u32> = HashMap::new();
        for o in k.objects.ids() {
            let Some(memory) = k.objects.get(o).and_then(|o| o.memory()) else {
                continue;
            };
            for id in memory.frame_ids() {
                match k.frames.get(id) {
                    Some(record) => *holders.entry(record.physical).or_default() += 1,
                    None => v.push(format!("memory object {o:?} holds a freed frame record")),
                }
            }
        }
        let mut physicals = HashSet::new();
        for id in k.frames.ids() {
            let Some(record) = k.frames.get(id) else {
                continue;
            };
            if !physicals.insert(record.physical) {
                v.push(format!("frame {:#x} has two records", record.physical));
            }
            let held = holders.get(&record.physical).copied().unwrap_or(0);
            if record.shares == 0 || record.shares != held {
                v.push(format!(
                    "frame {:#x} counts {} shares, held by {held} objects",
                    record.physical, record.shares
                ));
            }
            if !m.frames.contains_key(&record.physical) {
                v.push(format!(
                    "frame {:#x} is recorded but the machine has it free",
                    record.physical
                ));
            }
        }
        for frame in m.frames.keys() {
            if !physicals.contains(frame) {
                v.push(format!(
                    "frame {frame:#x} is handed out and recorded nowhere (a leak)"
                ));
            }
        }
        for p in k.processes.ids() {
            let Some(process) = k.processes.get(p) else {
                continue;
            };
            let mut mapped = HashSet::new();
            let mut last_end = 0;
            for region in &process.regions {
                if region.start < last_end || region.pages == 0 {
                    v.push(format!("{p:?} mappings overlap or are empty: {region:?}"));
                }
                last_end = region.end();
                let size = k
                    .objects
                    .get(region.object)
                    .and_then(|o| o.memory())
                    .map(|m| m.pages());
                match size {
                    None => v.push(format!("{p:?} maps {:?}, no memory object", region.object)),
                    Some(size) if region.offset + region.pages > size => {
                        v.push(format!("{p:?} maps past its object's end: {region:?}"));
                    }
                    Some(_) => {}
                }
                if region.protection & !region.allowed != 0
                    || region.protection & abi::kcall::protection::READ == 0
                {
                    v.push(format!(
                        "{p:?} mapping with protection past its rights: {region:?}"
                    ));
                }
                for page in region.offset..region.offset + region.pages {
                    let address = region.address_of(page);
                    mapped.insert(address);
                    let expected = k.page_mapping(region.object, page, region.protection);
                    let actual = m.page(process.space, address).map(|page| {
                        page.borrowed
                            .map(|(frame, cached)| (frame, page.protection, cached))
                    });
                    // A page whose frame stopped being shared may still be
                    // mapped without WRITE: its next write fault adds it.
                    let lagging = expected.map(|e| {
                        Some((
                            e.frame,
                            e.protection & !abi::kcall::protection::WRITE,
                            e.cached,
                        ))
                    });
                    let expected = expected.map(|e| Some((e.frame, e.protection, e.cached)));
                    if actual != expected && actual != lagging {
                        v.push(format!(
                            "{p:?} page {address:#x} of {region:?}: machine {actual:?}, core {expected:?}"
                        ));
                    }
                }
            }
            if let Some(map) = m.spaces.get(&process.space) {
                for (address, page) in map {
                    if page.borrowed.is_some() && !mapped.contains(address) {
                        v.push(format!(
                            "{p:?} has an object page at {address:#x} no mapping holds"
                        ));
                    }
                }
            }
        }
        v
    }

    // ----- memory objects -----

    /// MEMORY_CREATE of `pages` pages by `t`.
    pub(super) fn memory_create(&mut self, t: ThreadId, pages: u32) -> Result<Descriptor, Error> {
        let request = abi::kcall::MemoryCreateRequest::new(pages);
        self.new_descriptor(
            t,
            KernelFunction::MemoryCreate,
            Descriptor::NULL,
            request.as_bytes(),
        )
    }

    /// MEMORY_CREATE that must succeed.
    pub(super) fn memory_ok(&mut self, t: ThreadId, pages: u32) -> Descriptor {
        match self.memory_create(t, pages) {
            Ok(d) => d,
            Err(e) => panic!("MEMORY_CREATE of {pages} pages: {e}"),
        }
    }

    /// A kernel function whose reply is one new descriptor.
    pub(super) fn new_descriptor(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        data: &[u8],
    ) -> Result<Descriptor, Error> {
        let regs = self.kcall(t, f, target, data);
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        assert_eq!(reply.slots.len(), 1, "{f:?} replies one descriptor");
        Ok(Descriptor(reply.slots[0].descriptor))
    }

    /// MEMORY_MAP through `d`.
    pub(super) fn memory_map(
        &mut self,
        t: ThreadId,
        d: Descriptor,
        address: u64,
        offset: u64,
        length: u64,
        protection: u32,
    ) -> Result<u64, Error> {
        let request = abi::kcall::MemoryMapRequest::new(address, offset, length, protection);
        let regs = self.kcall(t, KernelFunction::MemoryMap, d, request.as_bytes());
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        match abi::kcall::MapReply::read_from_bytes(&reply.payload) {
            Ok(mapped) => Ok(mapped.address),
            Err(_) => panic!("MEMORY_MAP payload {:?}", reply.payload),
        }
    }

    /// MEMORY_COW of `d`'s bytes `[offset, offset + length)`.
    pub(super) fn memory_cow(
        &mut self,
        t: ThreadId,
        d: Descriptor,
        offset: u64,
        length: u64,
    ) -> Result<Descriptor, Error> {
        let request = abi::kcall::MemoryRangeRequest::new(offset, length);
        self.new_descriptor(t, KernelFunction::MemoryCow, d, request.as_bytes())
    }

    /// MEMORY_INFO of `d`: (pages, flags).
    pub(super) fn memory_info(&mut self, t: ThreadId, d: Descriptor) -> Result<(u64, u32), Error> {
        let regs = self.kcall(t, KernelFunction::MemoryInfo, d, &[]);
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        match abi::kcall::MemoryInfo::read_from_bytes(&reply.payload) {
            Ok(info) => Ok((info.pages, info.flags)),
            Err(_) => panic!("MEMORY_INFO payload {:?}", reply.payload),
        }
    }

    /// MEMORY_DIRECT sent to `capability`.
    pub(super) fn memory_direct(
        &mut self,
        t: ThreadId,
        capability: Descriptor,
        physical: u64,
        length: u64,
    ) -> Result<Descriptor, Error> {
        let request = abi::kcall::DirectRequest::new(physical, length);
        self.new_descriptor(
            t,
            KernelFunction::MemoryDirect,
            capability,
            request.as_bytes(),
        )
    }

    /// UNMAP by `t`: the error, if any.
    pub(super) fn unmap(&mut self, t: ThreadId, address: u64, length: u64) -> Result<(), Error> {
        let request = abi::kcall::unmap(address, length);
        let regs = self.kcall(
            t,
            KernelFunction::Unmap,
            Descriptor::NULL,
            request.as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    }

    /// PROTECT by `t`: the error, if any.
    pub(super) fn protect(
        &mut self,
        t: ThreadId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        let request = abi::kcall::protect(address, length, protection);
        let regs = self.kcall(
            t,
            KernelFunction::Protect,
            Descriptor::NULL,
            request.as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    }

    /// `t` writes `bytes` at `address` as the CPU would: a write the page
    /// does not allow faults, and the kernel resolves the fault or ends the
    /// process. Whether the write happened (false: the process ended).
    pub(super) fn user_write(&mut self, t: ThreadId, address: u64, bytes: &[u8]) -> bool {
        for (i, byte) in bytes.iter().enumerate() {
            let at = address + i as u64;
            let mut faults = 0;
            loop {
                let space = self.space(self.process_of(t));
                if self.m.access(space, at, 1, true).is_ok() {
                    let _ = self.m.copy_in(space, at, &[*byte]);
                    break;
                }
                faults += 1;
                assert!(
                    faults < 3,
                    "the kernel resolved a fault at {at:#x} that repeats"
                );
                let fault = PageFault {
                    address: at,
                    present: self.m.page(space, at).is_some(),
                    write: true,
                    execute: false,
                };
                self.run(t);
                if self.k.page_fault(&mut self.m, fault) != Fault::Resolved {
                    self.k.fault(&mut self.m);
                    return false;
                }
            }
        }
        true
    }

    /// `t` reads `length` bytes at `address` as the CPU would (None: the
    /// read faulted and the process ended).
    pub(super) fn user_read(
        &mut self,
        t: ThreadId,
        address: u64,
        length: usize,
    ) -> Option<Vec<u8>> {
        let space = self.space(self.process_of(t));
        if self.m.access(space, address, length as u64, false).is_err() {
            let fault = PageFault {
                address,
                present: self.m.page(space, address).is_some(),
                write: false,
                execute: false,
            };
            self.run(t);
            assert_ne!(self.k.page_fault(&mut self.m, fault), Fault::Resolved);
            self.k.fault(&mut self.m);
            return None;
        }
        Some(self.peek(self.process_of(t), address, length))
    }

    /// What a refused call must leave as it was: the kernel's counts, each
    /// process's charge and table, the machine's free frames and pages.
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            counters: self.k.counters(),
            charged: self
                .k
                .processes
                .ids()
                .filter_map(|p| {
                    self.k
                        .processes
                        .get(p)
                        .map(|q| (p, q.charged, q.table.open(), q.regions.clone()))
                })
                .collect(),
            free_frames: crate::machine::Machine::free_frames(&self.m),
            smos: self
                .k
                .smos
                .ids()
                .filter_map(|id| self.k.smos.get(id).map(|s| (id, *s)))
                .collect(),
            io_ports: self
                .k
                .processes
                .ids()
                .filter_map(|p| self.k.processes.get(p).map(|q| (p, q.io_ports)))
                .collect(),
            machine_ports: self
                .m
                .io_ports
                .iter()
                .map(|(space, ranges)| (*space, ranges.clone()))
                .collect(),
            interrupt_lines: self.k.interrupt_lines.to_vec(),
            kernel_log: self.k.kernel_log,
            log: (self.m.log.is_taken(), self.m.log.held_bytes()),
            unmasked_lines: self.m.unmasked_lines.iter().copied().collect(),
            pages: self
                .m
                .spaces
                .iter()
                .map(|(space, map)| {
                    (
                        *space,
                        map.iter()
                            .map(|(a, p)| (*a, p.protection, p.borrowed))
                            .collect(),
                    )
                })
                .collect(),
        }
    }
}

/// See [`World::snapshot`].
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    counters: KernelCounters,
    charged: Vec<(ProcessId, u64, usize, Vec<crate::memory_object::Region>)>,
    free_frames: u64,
    smos: Vec<(crate::smo::SmoId, crate::smo::Smo)>,
    pages: Vec<(SpaceId, Vec<PageState>)>,
    /// Each process's granted ports, and the machine's view of them.
    io_ports: Vec<(ProcessId, crate::kcall::devices::IoPorts)>,
    machine_ports: Vec<(SpaceId, Vec<crate::kcall::devices::IoRange>)>,
    /// The lines interrupt objects hold, and the lines the machine has unmasked.
    interrupt_lines: Vec<Option<crate::object::ObjectId>>,
    kernel_log: Option<crate::object::ObjectId>,
    log: (bool, usize),
    unmasked_lines: Vec<u8>,
}

/// A page of a snapshot: address, protection, the object frame it shows.
type PageState = (u64, u32, Option<(u64, bool)>);

/// The owner reference in a fixture's server, and the client reference in
/// each fixture client.
pub(super) const OWNER: Descriptor = Descriptor(1);
pub(super) const REF: Descriptor = Descriptor(1);

/// A door created by init, its owner moved to `server`, a copy of the
/// client reference in each client (init keeps its own).
#[derive(Debug)]
pub(super) struct Fixture {
    pub(super) w: World,
    pub(super) server: Child,
    pub(super) clients: Vec<Child>,
    /// Init's own client reference to the door.
    pub(super) init_ref: Descriptor,
    pub(super) function: i32,
}

pub(super) fn fixture(system: bool, clients: usize) -> Fixture {
    let mut w = World::new();
    let init = w.init_thread;
    let (owner, client_ref) = w.door_create(init, system);
    let server = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    );
    let clients = (0..clients)
        .map(|_| {
            w.spawn_ok(
                b"client",
                &[DescriptorSlot::copy(client_ref, Rights::DOOR_CLIENT)],
            )
        })
        .collect();
    Fixture {
        w,
        server,
        clients,
        init_ref: client_ref,
        function: if system { SYSTEM_FN } else { USER_FN },
    }
}

impl Fixture {
    pub(super) fn s(&self) -> ThreadId {
        self.server.thread
    }

    pub(super) fn c(&self, i: usize) -> ThreadId {
        self.clients[i].thread
    }

    pub(super) fn sp(&self) -> ProcessId {
        self.server.process
    }

    pub(super) fn cp(&self, i: usize) -> ProcessId {
        self.clients[i].process
    }
}

/// Registers of a message delivered with `cookie`, `data` bytes and `count`
/// slots from a `total`-byte buffer into the server's RBUF.
pub(super) fn received(
    function: i32,
    cookie: u64,
    total: u16,
    data: u16,
    count: u8,
) -> Option<TrapArgs> {
    Some(TrapArgs::received(
        Function(function),
        cookie,
        RBUF,
        sizes(total, data, count),
    ))
}

pub(super) fn pattern(n: usize) -> Vec<u8> {
    (1..=n).map(|i| i as u8).collect()
}

/// The request data an abi encoder writes (`encode(out)`), as a vector.
pub(super) fn encoded(encode: impl FnOnce(&mut [u8]) -> Option<usize>) -> Vec<u8> {
    let mut data = vec![0; usize::from(abi::message::MAX_TOTAL_SIZE)];
    let length = encode(&mut data).expect("the request fits a message");
    data.truncate(length);
    data
}

/// Fills `t`'s process table with events up to MAX_DESCRIPTORS.
pub(super) fn fill_table(w: &mut World, t: ThreadId) {
    let p = w.process_of(t);
    while w.open_descriptors(p) < MAX_DESCRIPTORS as usize {
        w.event_create(t);
    }
    assert_eq!(
        w.kcall(t, KernelFunction::EventCreate, Descriptor::NULL, &[]),
        TrapArgs::error(Error::TableFull)
    );
}

/// Client 0 sends `slots` (after one byte of data) to the waiting server;
/// returns the server's RECEIVE registers.
pub(super) fn send_slots(f: &mut Fixture, slots: &[DescriptorSlot]) -> Option<TrapArgs> {
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    match f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(slots)) {
        None => f.w.resume(s),
        Some(error) => {
            // The server still waits; the caller got the error at once.
            assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
            Some(error)
        }
    }
}

/// Sends `function` from client 0; if it queued, serves it and checks the
/// server saw that very number.
pub(super) fn accepted(f: &mut Fixture, function: i32) -> bool {
    let (s, c) = (f.s(), f.c(0));
    match f.w.send(c, function, REF, msg(SBUF, &[], 8)) {
        None => {
            assert_eq!(
                f.w.receive(s, OWNER, RBUF, 64),
                received(function, 0, 8, 0, 0)
            );
            assert_eq!(
                f.w.reply(s, 0, msg(RBUF, &[], 0)),
                Some(TrapArgs::default())
            );
            assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
            true
        }
        Some(regs) => {
            // A function that must go to a kernel object of another kind is
            // WRONG_OBJECT_TYPE; anything else the door refuses.
            let wrong_kind = KernelFunction::from_number(function).is_some_and(|f| {
                matches!(
                    f,
                    KernelFunction::EventSignal
                        | KernelFunction::EventWait
                        | KernelFunction::ProcessSetCookie
                        | KernelFunction::DoorCreate
                        | KernelFunction::Spawn
                        | KernelFunction::ProcessCreate
                        | KernelFunction::ProcessMap
                        | KernelFunction::ProcessStart
                        | KernelFunction::ManagerRegister
                        | KernelFunction::ArchiveRead
                        | KernelFunction::DebugExit
                        | KernelFunction::MachineInfo
                        | KernelFunction::MemoryDirect
                        | KernelFunction::MemoryMap
                        | KernelFunction::MemoryCow
                        | KernelFunction::MemoryInfo
                )
            });
            let expected = if wrong_kind {
                Error::WrongObjectType
            } else {
                Error::FunctionOutOfRange
            };
            assert_eq!(regs, TrapArgs::error(expected), "{function:#x}");
            false
        }
    }
}
