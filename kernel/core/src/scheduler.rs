//! Scheduling policy: fixed priorities, round-robin within a priority,
//! a run queue per CPU.
//!
//! The highest-priority ready thread runs; a timer tick moves the running
//! thread behind the others of its priority. IPC bypasses this on purpose:
//! a SEND to a waiting receiver and a reply to a waiting caller switch
//! straight to the partner (the caller lends its time slice to the call).
//!
//! Each CPU has its own queues (ABI.md §6.9, D53): a thread made ready
//! goes to the queue of a CPU it may run on (the kernel chooses which:
//! `Kernel::make_ready`), and a CPU picks from its own queue first. It
//! takes a thread from another CPU's queue (work stealing, the balancing)
//! when that thread outranks everything in its own, when its own has
//! nothing at that priority (an idle CPU takes whatever waits anywhere),
//! or when the other thread has waited [`STEAL_AFTER`] enqueues longer
//! than its own first one (so no thread starves behind a busy CPU). The
//! priority order is therefore exact across CPUs. All of it runs under
//! the kernel lock; nothing here is shared without it.

use abi::Error;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::thread::ThreadId;

/// Number of priority levels (0 lowest).
pub const LEVELS: usize = abi::kcall::MAX_PRIORITY as usize + 1;

/// How many enqueues longer than a CPU's own first thread another CPU's
/// thread of the same priority must have waited for the CPU to take it
/// instead (stealing for fairness, not only when idle).
pub const STEAL_AFTER: u64 = 8;

/// One CPU's ready threads, a FIFO per priority level, each with the
/// number of its enqueue (its age).
#[derive(Debug)]
struct CpuQueue {
    levels: [VecDeque<(u64, ThreadId)>; LEVELS],
    /// Bit `p` set when `levels[p]` is non-empty.
    occupied: u32,
}

impl CpuQueue {
    const fn new() -> Self {
        Self {
            levels: [const { VecDeque::new() }; LEVELS],
            occupied: 0,
        }
    }

    /// Makes room for `needed` threads at `level`.
    fn reserve(&mut self, level: usize, needed: usize) -> Result<(), Error> {
        let queue = &mut self.levels[level];
        queue
            .try_reserve(needed.saturating_sub(queue.len()))
            .map_err(|_| Error::OutOfMemory)
    }

    /// The first thread at `level` that `allowed` accepts: its place and
    /// its enqueue number.
    fn first_at(&self, level: usize, allowed: &impl Fn(ThreadId) -> bool) -> Option<(usize, u64)> {
        if self.occupied & (1 << level) == 0 {
            return None;
        }
        let queue = &self.levels[level];
        // The front is the common answer: no search.
        match queue.front() {
            Some((age, thread)) if allowed(*thread) => Some((0, *age)),
            _ => queue
                .iter()
                .position(|(_, t)| allowed(*t))
                .and_then(|at| queue.get(at).map(|(age, _)| (at, *age))),
        }
    }

    /// Takes the thread at place `at` of `level`.
    fn take(&mut self, level: usize, at: usize) -> Option<ThreadId> {
        let queue = &mut self.levels[level];
        let thread = queue.remove(at).map(|(_, thread)| thread);
        if queue.is_empty() {
            self.occupied &= !(1 << level);
        }
        thread
    }
}

/// The run queues: one per CPU (one in all before the arch layer names
/// the CPUs, as in the host tests).
#[derive(Debug)]
pub struct Scheduler {
    cpus: Vec<CpuQueue>,
    /// Threads in all the queues (asked on every way out of the kernel
    /// with several CPUs: counted, not summed).
    queued: usize,
    /// Threads queued at each level, over every CPU.
    per_level: [usize; LEVELS],
    /// Bit `p` set when some CPU has a thread queued at level `p`.
    occupied: u32,
    /// Threads admitted at each level: every CPU's queue has room for
    /// them all (a thread may be queued on any CPU).
    admitted: [usize; LEVELS],
    /// Enqueues so far: the next one's number.
    enqueues: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    /// Empty queues (those of one CPU until [`Scheduler::set_cpu_count`]).
    pub const fn new() -> Self {
        Self {
            cpus: Vec::new(),
            queued: 0,
            per_level: [0; LEVELS],
            occupied: 0,
            admitted: [0; LEVELS],
            enqueues: 0,
        }
    }

    /// Gives each of `count` CPUs its queues, with room for every thread
    /// admitted so far (at boot, before the first thread).
    pub fn set_cpu_count(&mut self, count: usize) -> Result<(), Error> {
        let count = count.max(1);
        self.cpus
            .try_reserve(count.saturating_sub(self.cpus.len()))
            .map_err(|_| Error::OutOfMemory)?;
        while self.cpus.len() < count {
            let mut queue = CpuQueue::new();
            for (level, admitted) in self.admitted.iter().enumerate() {
                queue.reserve(level, *admitted)?;
            }
            self.cpus.push(queue);
        }
        Ok(())
    }

    /// How many CPUs have queues.
    pub fn cpu_count(&self) -> usize {
        self.cpus.len().max(1)
    }

    /// The queues of `cpu` (the first CPU's for an index it does not
    /// have), made on first use.
    fn queue_mut(&mut self, cpu: usize) -> Result<&mut CpuQueue, Error> {
        if self.cpus.is_empty() {
            self.set_cpu_count(1)?;
        }
        let index = if cpu < self.cpus.len() { cpu } else { 0 };
        self.cpus.get_mut(index).ok_or(Error::OutOfMemory)
    }

    /// Makes room for one more thread at `priority` (when it is created),
    /// so that [`Scheduler::enqueue`] of admitted threads never allocates;
    /// OUT_OF_MEMORY when the heap cannot grow.
    pub fn admit(&mut self, priority: u8) -> Result<(), Error> {
        self.reserve(priority)?;
        let level = usize::from(priority).min(LEVELS - 1);
        self.admitted[level] += 1;
        Ok(())
    }

    /// Makes sure the next [`Scheduler::admit`] at `priority` cannot fail
    /// for want of heap, admitting nothing yet.
    pub fn reserve(&mut self, priority: u8) -> Result<(), Error> {
        let level = usize::from(priority).min(LEVELS - 1);
        let needed = self.admitted[level] + 1;
        if self.cpus.is_empty() {
            self.set_cpu_count(1)?;
        }
        for queue in &mut self.cpus {
            queue.reserve(level, needed)?;
        }
        Ok(())
    }

    /// Gives back what [`Scheduler::admit`] reserved (the thread is gone).
    pub fn dismiss(&mut self, priority: u8) {
        let level = usize::from(priority).min(LEVELS - 1);
        self.admitted[level] = self.admitted[level].saturating_sub(1);
    }

    /// Makes `thread` ready at `priority` on `cpu`'s queue, behind the
    /// threads already there. (An admitted thread's place was reserved:
    /// this never allocates then.)
    pub fn enqueue(&mut self, thread: ThreadId, priority: u8, cpu: usize) {
        let level = usize::from(priority).min(LEVELS - 1);
        let age = self.enqueues;
        let Ok(queue) = self.queue_mut(cpu) else {
            return;
        };
        queue.levels[level].push_back((age, thread));
        queue.occupied |= 1 << level;
        self.enqueues += 1;
        self.per_level[level] += 1;
        self.occupied |= 1 << level;
        self.queued += 1;
    }

    /// Takes the next thread for `cpu`: at the highest priority where a
    /// thread `allowed` accepts (the CPU may run it) waits, the first of
    /// `cpu`'s own queue, unless another CPU's first such thread has
    /// waited [`STEAL_AFTER`] enqueues longer or `cpu` has none there
    /// (then the longest-waiting of the others'). Threads not allowed are
    /// passed over, not lost.
    pub fn pick(&mut self, cpu: usize, allowed: impl Fn(ThreadId) -> bool) -> Option<ThreadId> {
        let count = self.cpus.len();
        if count == 0 {
            return None;
        }
        let own = if cpu < count { cpu } else { 0 };
        let mut levels = self.occupied;
        while levels != 0 {
            let level = 31 - levels.leading_zeros() as usize;
            levels &= !(1 << level);
            let mine = self.cpus[own].first_at(level, &allowed);
            let mut oldest: Option<(usize, usize, u64)> = None;
            for step in 1..count {
                let index = (own + step) % count;
                if let Some((at, age)) = self.cpus[index].first_at(level, &allowed)
                    && oldest.is_none_or(|(_, _, best)| age < best)
                {
                    oldest = Some((index, at, age));
                }
            }
            let (index, at) = match (mine, oldest) {
                (Some((at, age)), Some((other, other_at, other_age))) => {
                    if other_age.saturating_add(STEAL_AFTER) < age {
                        (other, other_at)
                    } else {
                        (own, at)
                    }
                }
                (Some((at, _)), None) => (own, at),
                (None, Some((other, other_at, _))) => (other, other_at),
                (None, None) => continue,
            };
            let thread = self.cpus[index].take(level, at);
            if thread.is_some() {
                self.per_level[level] -= 1;
                if self.per_level[level] == 0 {
                    self.occupied &= !(1 << level);
                }
                self.queued -= 1;
            }
            return thread;
        }
        None
    }

    /// Every ready thread, highest priority first (CPU by CPU within a
    /// priority).
    pub fn iter(&self) -> impl Iterator<Item = ThreadId> + '_ {
        (0..LEVELS).rev().flat_map(move |level| {
            self.cpus
                .iter()
                .flat_map(move |queue| queue.levels[level].iter().map(|(_, t)| *t))
        })
    }

    /// The threads queued on `cpu`, highest priority first.
    pub fn queued_on(&self, cpu: usize) -> impl Iterator<Item = ThreadId> + '_ {
        self.cpus.get(cpu).into_iter().flat_map(|queue| {
            queue
                .levels
                .iter()
                .rev()
                .flat_map(|level| level.iter().map(|(_, t)| *t))
        })
    }

    /// Whether `cpu`'s own queue is empty.
    pub fn is_empty_on(&self, cpu: usize) -> bool {
        self.cpus.get(cpu).is_none_or(|queue| queue.occupied == 0)
    }

    /// How many threads are ready.
    pub fn ready(&self) -> usize {
        self.queued
    }

    /// Whether a thread of at least `priority` is ready on any CPU (so a
    /// tick should preempt a running thread of that priority).
    pub fn has_ready_at_or_above(&self, priority: u8) -> bool {
        self.highest()
            .is_some_and(|level| level >= usize::from(priority))
    }

    /// How many threads [`Scheduler::admit`] made room for at `level`.
    pub fn admitted(&self, level: usize) -> usize {
        self.admitted.get(level).copied().unwrap_or(0)
    }

    /// Removes `thread` wherever it is queued.
    pub fn remove(&mut self, thread: ThreadId) {
        for queue in &mut self.cpus {
            for level in 0..LEVELS {
                if let Some(at) = queue.levels[level].iter().position(|(_, t)| *t == thread) {
                    queue.levels[level].remove(at);
                    if queue.levels[level].is_empty() {
                        queue.occupied &= !(1 << level);
                    }
                    self.queued -= 1;
                    self.per_level[level] -= 1;
                    if self.per_level[level] == 0 {
                        self.occupied &= !(1 << level);
                    }
                }
            }
        }
    }

    fn highest(&self) -> Option<usize> {
        (self.occupied != 0).then(|| 31 - self.occupied.leading_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any(_: ThreadId) -> bool {
        true
    }

    #[test]
    fn highest_priority_first_then_round_robin() {
        let ids = crate::thread::test_ids(4);
        let mut s = Scheduler::new();
        s.admit(1).expect("room");
        s.enqueue(ids[0], 1, 0);
        s.enqueue(ids[1], 5, 0);
        s.enqueue(ids[3], 1, 0);
        assert!(s.has_ready_at_or_above(5));
        assert!(!s.has_ready_at_or_above(6));
        assert_eq!(s.pick(0, any), Some(ids[1]));
        assert_eq!(s.pick(0, any), Some(ids[0]));
        s.enqueue(ids[0], 1, 0);
        assert_eq!(s.pick(0, any), Some(ids[3]), "round robin within a level");
        assert_eq!(s.pick(0, any), Some(ids[0]));
        assert_eq!(s.pick(0, any), None);
        s.enqueue(ids[2], 40, 0); // clamped to the top level
        assert!(s.has_ready_at_or_above(31));
        s.remove(ids[2]);
        assert_eq!(s.pick(0, any), None);
        assert!(!s.has_ready_at_or_above(0));
    }

    #[test]
    fn pick_passes_over_threads_not_allowed() {
        let ids = crate::thread::test_ids(3);
        let mut s = Scheduler::new();
        s.admit(5).expect("room");
        s.enqueue(ids[0], 5, 0);
        s.enqueue(ids[1], 5, 0);
        s.enqueue(ids[2], 1, 0);
        assert_eq!(s.ready(), 3);
        assert_eq!(s.pick(0, |t| t != ids[0]), Some(ids[1]));
        assert_eq!(s.pick(0, |t| t == ids[2]), Some(ids[2]));
        assert_eq!(s.pick(0, |t| t == ids[2]), None, "nothing allowed");
        assert_eq!(s.ready(), 1);
        assert!(s.has_ready_at_or_above(5));
        assert_eq!(s.pick(0, any), Some(ids[0]));
        assert!(!s.has_ready_at_or_above(0), "the level's bit is cleared");
    }

    #[test]
    fn own_queue_first_then_stealing_by_priority() {
        let ids = crate::thread::test_ids(5);
        let mut s = Scheduler::new();
        s.set_cpu_count(3).expect("room");
        s.enqueue(ids[0], 3, 1);
        s.enqueue(ids[1], 3, 0);
        s.enqueue(ids[2], 3, 2);
        s.enqueue(ids[3], 7, 2);
        s.enqueue(ids[4], 1, 1);
        assert_eq!(s.queued_on(2).collect::<Vec<_>>(), [ids[3], ids[2]]);
        // A higher priority anywhere outranks the CPU's own queue.
        assert_eq!(
            s.pick(1, any),
            Some(ids[3]),
            "stolen: it outranks CPU 1's own"
        );
        // At one priority the CPU's own thread comes first...
        assert_eq!(s.pick(1, any), Some(ids[0]));
        // ...then the longest-waiting of the others', before its own
        // lower ones.
        assert_eq!(s.pick(1, any), Some(ids[1]), "queued before ids[2]");
        assert_eq!(s.pick(1, any), Some(ids[2]));
        assert_eq!(
            s.pick(0, any),
            Some(ids[4]),
            "an idle CPU takes what waits anywhere"
        );
        assert_eq!(s.ready(), 0);
        assert_eq!(s.pick(2, any), None);
    }

    #[test]
    fn a_thread_behind_a_busy_cpu_is_taken_after_steal_after_enqueues() {
        let ids = crate::thread::test_ids(2);
        let (waiting, yielder) = (ids[0], ids[1]);
        let mut s = Scheduler::new();
        s.set_cpu_count(2).expect("room");
        // CPU 1 is busy with something else; `waiting` sits in its queue.
        s.enqueue(waiting, 4, 1);
        // CPU 0 runs `yielder`, which yields again and again.
        let mut turns = 0;
        loop {
            s.enqueue(yielder, 4, 0);
            let picked = s.pick(0, any);
            if picked == Some(waiting) {
                break;
            }
            assert_eq!(picked, Some(yielder));
            turns += 1;
            assert!(turns <= STEAL_AFTER, "starved behind CPU 1");
        }
        assert_eq!(turns, STEAL_AFTER, "its own queue first until then");
    }

    #[test]
    fn admitted_threads_enqueue_without_allocating() {
        let ids = crate::thread::test_ids(10);
        let mut s = Scheduler::new();
        s.set_cpu_count(2).expect("room");
        for _ in &ids {
            s.admit(3).expect("the test heap has room");
        }
        let capacities: Vec<usize> = s.cpus.iter().map(|q| q.levels[3].capacity()).collect();
        assert!(
            capacities.iter().all(|c| *c >= ids.len()),
            "every CPU has room for all"
        );
        for id in &ids {
            s.enqueue(*id, 3, 1);
        }
        let after: Vec<usize> = s.cpus.iter().map(|q| q.levels[3].capacity()).collect();
        assert_eq!(after, capacities);
        for _ in &ids {
            s.dismiss(3);
        }
        assert_eq!(s.admitted[3], 0);
        // A CPU added later gets room for the threads admitted so far.
        s.admit(4).expect("room");
        s.set_cpu_count(3).expect("room");
        assert!(s.cpus[2].levels[4].capacity() >= 1);
    }

    /// One step of [`queues_stay_consistent`]: which operation, on which
    /// thread, level or CPU.
    #[derive(Clone, Debug)]
    enum Step {
        Enqueue(usize, u8, usize),
        Pick(usize),
        PickOnly(usize, usize),
        Remove(usize),
    }

    const CPUS: usize = 3;

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..8usize, 0..40u8, 0..CPUS + 1).prop_map(|(t, p, c)| Step::Enqueue(t, p, c)),
            (0..CPUS + 1).prop_map(Step::Pick),
            (0..CPUS, 0..8usize).prop_map(|(c, t)| Step::PickOnly(c, t)),
            (0..8usize).prop_map(Step::Remove),
        ]
    }

    /// A list of (enqueue number, thread) per CPU and level.
    type Model = [[Vec<(u64, ThreadId)>; LEVELS]; CPUS];

    /// The model's pick: at the highest level with an allowed thread on
    /// any CPU, the own CPU's first allowed one unless another CPU's first
    /// allowed one is older by more than STEAL_AFTER, or there is none
    /// of its own (then the oldest of the others').
    fn model_pick(
        model: &mut Model,
        cpu: usize,
        allowed: impl Fn(ThreadId) -> bool,
    ) -> Option<ThreadId> {
        let own = if cpu < CPUS { cpu } else { 0 };
        for level in (0..LEVELS).rev() {
            let first = |c: usize, model: &Model| {
                model[c][level]
                    .iter()
                    .position(|(_, t)| allowed(*t))
                    .map(|at| (c, at, model[c][level][at].0))
            };
            let mine = first(own, model);
            let others = (0..CPUS)
                .filter(|c| *c != own)
                .filter_map(|c| first(c, model))
                .min_by_key(|(_, _, age)| *age);
            let chosen = match (mine, others) {
                (Some(m), Some(o)) => {
                    if o.2 + STEAL_AFTER < m.2 {
                        o
                    } else {
                        m
                    }
                }
                (Some(m), None) => m,
                (None, Some(o)) => o,
                (None, None) => continue,
            };
            return Some(model[chosen.0][level].remove(chosen.1).1);
        }
        None
    }

    proptest! {
        /// Against a model (a list per CPU and level): the count, the
        /// occupied bits and every pick agree, whatever the operations.
        #[test]
        fn queues_stay_consistent(steps in proptest::collection::vec(step(), 0..200)) {
            let ids = crate::thread::test_ids(8);
            let mut s = Scheduler::new();
            s.set_cpu_count(CPUS).expect("room");
            let mut model: Model = core::array::from_fn(|_| core::array::from_fn(|_| Vec::new()));
            let mut enqueues = 0u64;
            for step in steps {
                match step {
                    Step::Enqueue(t, p, c) => {
                        // A thread is queued once at most, as in the kernel.
                        if model.iter().flatten().flatten().all(|(_, x)| *x != ids[t]) {
                            s.enqueue(ids[t], p, c);
                            // A CPU the scheduler does not have: the first's.
                            let cpu = if c < CPUS { c } else { 0 };
                            model[cpu][usize::from(p).min(LEVELS - 1)].push((enqueues, ids[t]));
                            enqueues += 1;
                        }
                    }
                    Step::Pick(c) => {
                        let expected = model_pick(&mut model, c, any);
                        prop_assert_eq!(s.pick(c, any), expected);
                    }
                    Step::PickOnly(c, t) => {
                        let expected = model_pick(&mut model, c, |x| x == ids[t]);
                        prop_assert_eq!(s.pick(c, |x| x == ids[t]), expected);
                    }
                    Step::Remove(t) => {
                        s.remove(ids[t]);
                        for q in model.iter_mut().flatten() {
                            q.retain(|(_, x)| *x != ids[t]);
                        }
                    }
                }
                let count: usize = model.iter().flatten().map(Vec::len).sum();
                prop_assert_eq!(s.ready(), count);
                let highest = (0..LEVELS).rev().find(|l| model.iter().any(|c| !c[*l].is_empty()));
                prop_assert_eq!(s.highest(), highest);
                prop_assert_eq!(s.iter().count(), count);
                for (cpu, levels) in model.iter().enumerate() {
                    let expected: Vec<ThreadId> = levels.iter().rev().flatten().map(|(_, t)| *t).collect();
                    prop_assert_eq!(s.queued_on(cpu).collect::<Vec<_>>(), expected);
                    let bits = levels.iter().enumerate().fold(0u32, |b, (l, q)| b | (u32::from(!q.is_empty()) << l));
                    prop_assert_eq!(s.cpus[cpu].occupied, bits);
                }
            }
        }
    }
}
