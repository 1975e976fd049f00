//! Scheduling policy: fixed priorities, round-robin within a priority.
//!
//! The highest-priority ready thread runs; a timer tick moves the running
//! thread behind the others of its priority. IPC bypasses this on purpose:
//! a SEND to a waiting receiver and a reply to a waiting caller switch
//! straight to the partner (the caller lends its time slice to the call).

use abi::Error;
use alloc::collections::VecDeque;

use crate::thread::ThreadId;

/// Number of priority levels (0 lowest).
pub const LEVELS: usize = abi::kcall::MAX_PRIORITY as usize + 1;

/// The run queues.
#[derive(Debug)]
pub struct Scheduler {
    queues: [VecDeque<ThreadId>; LEVELS],
    /// Bit `p` set when queue `p` is non-empty.
    occupied: u32,
    /// Threads in all the queues (asked on every way out of the kernel
    /// with several CPUs: counted, not summed).
    queued: usize,
    /// Threads admitted at each level: its queue has room for them all.
    admitted: [usize; LEVELS],
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    /// Empty queues.
    pub const fn new() -> Self {
        Self {
            queues: [const { VecDeque::new() }; LEVELS],
            occupied: 0,
            queued: 0,
            admitted: [0; LEVELS],
        }
    }

    /// Makes room for one more thread at `priority` (when it is created),
    /// so that [`Scheduler::enqueue`] of admitted threads never allocates;
    /// OUT_OF_MEMORY when the heap cannot grow.
    pub fn admit(&mut self, priority: u8) -> Result<(), Error> {
        let level = usize::from(priority).min(LEVELS - 1);
        let needed = self.admitted[level] + 1;
        let queue = &mut self.queues[level];
        queue
            .try_reserve(needed.saturating_sub(queue.len()))
            .map_err(|_| Error::OutOfMemory)?;
        self.admitted[level] = needed;
        Ok(())
    }

    /// Makes sure the next [`Scheduler::admit`] at `priority` cannot fail
    /// for want of heap, admitting nothing yet.
    pub fn reserve(&mut self, priority: u8) -> Result<(), Error> {
        let level = usize::from(priority).min(LEVELS - 1);
        let needed = self.admitted[level] + 1;
        let queue = &mut self.queues[level];
        queue
            .try_reserve(needed.saturating_sub(queue.len()))
            .map_err(|_| Error::OutOfMemory)
    }

    /// Gives back what [`Scheduler::admit`] reserved (the thread is gone).
    pub fn dismiss(&mut self, priority: u8) {
        let level = usize::from(priority).min(LEVELS - 1);
        self.admitted[level] = self.admitted[level].saturating_sub(1);
    }

    /// Makes `thread` ready at `priority`, behind the threads already there.
    pub fn enqueue(&mut self, thread: ThreadId, priority: u8) {
        let level = usize::from(priority).min(LEVELS - 1);
        self.queues[level].push_back(thread);
        self.occupied |= 1 << level;
        self.queued += 1;
    }

    /// Takes the next thread to run.
    pub fn pick(&mut self) -> Option<ThreadId> {
        let level = self.highest()?;
        let thread = self.queues[level].pop_front();
        if self.queues[level].is_empty() {
            self.occupied &= !(1 << level);
        }
        self.queued -= usize::from(thread.is_some());
        thread
    }

    /// Takes the first thread, highest priority first, that `allowed`
    /// accepts (the CPU picking it is one it may run on); the others stay
    /// where they are. With several CPUs sharing these queues (ABI.md
    /// §6.9) a thread pinned elsewhere is passed over, not lost.
    pub fn pick_where(&mut self, allowed: impl Fn(ThreadId) -> bool) -> Option<ThreadId> {
        let mut levels = self.occupied;
        while levels != 0 {
            let level = 31 - levels.leading_zeros() as usize;
            levels &= !(1 << level);
            if let Some(at) = self.queues[level].iter().position(|t| allowed(*t)) {
                let thread = self.queues[level].remove(at);
                if self.queues[level].is_empty() {
                    self.occupied &= !(1 << level);
                }
                self.queued -= usize::from(thread.is_some());
                return thread;
            }
        }
        None
    }

    /// Every ready thread, highest priority first.
    pub fn iter(&self) -> impl Iterator<Item = ThreadId> + '_ {
        self.queues
            .iter()
            .rev()
            .flat_map(|queue| queue.iter().copied())
    }

    /// How many threads are ready.
    pub fn ready(&self) -> usize {
        self.queued
    }

    /// Whether a thread of at least `priority` is ready (so a tick should
    /// preempt a running thread of that priority).
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
        for level in 0..LEVELS {
            if let Some(at) = self.queues[level].iter().position(|t| *t == thread) {
                self.queues[level].remove(at);
                self.queued -= 1;
                if self.queues[level].is_empty() {
                    self.occupied &= !(1 << level);
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

    #[test]
    fn highest_priority_first_then_round_robin() {
        let ids = crate::thread::test_ids(4);
        let mut s = Scheduler::new();
        s.enqueue(ids[0], 1);
        s.enqueue(ids[1], 5);
        s.enqueue(ids[3], 1);
        assert!(s.has_ready_at_or_above(5));
        assert!(!s.has_ready_at_or_above(6));
        assert_eq!(s.pick(), Some(ids[1]));
        assert_eq!(s.pick(), Some(ids[0]));
        s.enqueue(ids[0], 1);
        assert_eq!(s.pick(), Some(ids[3]), "round robin within a level");
        assert_eq!(s.pick(), Some(ids[0]));
        assert_eq!(s.pick(), None);
        s.enqueue(ids[2], 40); // clamped to the top level
        assert!(s.has_ready_at_or_above(31));
        s.remove(ids[2]);
        assert_eq!(s.pick(), None);
        assert!(!s.has_ready_at_or_above(0));
    }

    #[test]
    fn pick_where_passes_over_threads_not_allowed() {
        let ids = crate::thread::test_ids(3);
        let mut s = Scheduler::new();
        s.enqueue(ids[0], 5);
        s.enqueue(ids[1], 5);
        s.enqueue(ids[2], 1);
        assert_eq!(s.ready(), 3);
        assert_eq!(s.pick_where(|t| t != ids[0]), Some(ids[1]));
        assert_eq!(s.pick_where(|t| t == ids[2]), Some(ids[2]));
        assert_eq!(s.pick_where(|t| t == ids[2]), None, "nothing allowed");
        assert_eq!(s.ready(), 1);
        assert!(s.has_ready_at_or_above(5));
        assert_eq!(s.pick(), Some(ids[0]));
        assert!(!s.has_ready_at_or_above(0), "the level's bit is cleared");
    }

    #[test]
    fn admitted_threads_enqueue_without_allocating() {
        let ids = crate::thread::test_ids(10);
        let mut s = Scheduler::new();
        for _ in &ids {
            s.admit(3).expect("the test heap has room");
        }
        let capacity = s.queues[3].capacity();
        assert!(capacity >= ids.len());
        for id in &ids {
            s.enqueue(*id, 3);
        }
        assert_eq!(s.queues[3].capacity(), capacity);
        for _ in &ids {
            s.dismiss(3);
        }
        assert_eq!(s.admitted[3], 0);
    }

    /// One step of [`queues_stay_consistent`]: which operation, on which
    /// thread or level.
    #[derive(Clone, Debug)]
    enum Step {
        Enqueue(usize, u8),
        Pick,
        PickWhere(usize),
        Remove(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..8usize, 0..40u8).prop_map(|(t, p)| Step::Enqueue(t, p)),
            Just(Step::Pick),
            (0..8usize).prop_map(Step::PickWhere),
            (0..8usize).prop_map(Step::Remove),
        ]
    }

    proptest! {
        /// Against a model (one list per level): the count, the occupied
        /// bits and every pick agree, whatever the operations.
        #[test]
        fn queues_stay_consistent(steps in proptest::collection::vec(step(), 0..200)) {
            let ids = crate::thread::test_ids(8);
            let mut s = Scheduler::new();
            let mut model: [alloc::vec::Vec<ThreadId>; LEVELS] =
                core::array::from_fn(|_| alloc::vec::Vec::new());
            for step in steps {
                match step {
                    Step::Enqueue(t, p) => {
                        // A thread is queued once at most, as in the kernel.
                        if model.iter().all(|q| !q.contains(&ids[t])) {
                            s.enqueue(ids[t], p);
                            model[usize::from(p).min(LEVELS - 1)].push(ids[t]);
                        }
                    }
                    Step::Pick => {
                        let expected = model.iter_mut().rev().find(|q| !q.is_empty()).map(|q| q.remove(0));
                        prop_assert_eq!(s.pick(), expected);
                    }
                    Step::PickWhere(t) => {
                        let expected = model.iter_mut().rev().find_map(|q| {
                            q.iter().position(|x| *x == ids[t]).map(|at| q.remove(at))
                        });
                        prop_assert_eq!(s.pick_where(|x| x == ids[t]), expected);
                    }
                    Step::Remove(t) => {
                        s.remove(ids[t]);
                        for q in &mut model {
                            q.retain(|x| *x != ids[t]);
                        }
                    }
                }
                let count: usize = model.iter().map(alloc::vec::Vec::len).sum();
                prop_assert_eq!(s.ready(), count);
                let highest = model.iter().rposition(|q| !q.is_empty());
                prop_assert_eq!(s.highest(), highest);
                prop_assert_eq!(s.iter().count(), count);
            }
        }
    }
}
