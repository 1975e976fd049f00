//! The processes procman started: their ids, domains, kernel handles,
//! who waits for them and, once they end, their exit status until someone
//! collects it.
//!
//! A waiter is a process, and each one that WAITs for a running process gets
//! an exit event of its own (kqueue's one registration per watcher and
//! target, rather than one shared object). Events count, and EVENT_WAIT
//! takes a signal: with one event shared by all waiters, one of them could
//! take the others' wake-ups. Repeated WAITs by the same waiter hand out its
//! event again, so they cost procman nothing new; how many processes one
//! waiter watches at once is bounded.

use abi::procman::ProcmanError;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Ended processes whose status is kept for WAIT; the oldest go first.
pub const MAX_ZOMBIES: usize = 256;

/// The most running processes one process may watch (WAIT for) at once:
/// each watch holds one of procman's descriptors until the watched process
/// or the waiter ends.
pub const MAX_WATCHES_PER_PROCESS: usize = 16;

/// One process's watch of a running process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The exit event (procman's descriptor; the waiter holds copies).
    pub event: u32,
    /// WAIT replies that handed the event out: it is signalled once for
    /// each, so every thread of the waiter that waits on one wakes.
    pub waits: u32,
}

/// What procman knows of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRecord {
    /// Index of its program in the policy.
    pub program: usize,
    /// Index of its domain in the policy.
    pub domain: usize,
    /// procman's handle on it (a descriptor), while it runs.
    pub handle: Option<u32>,
    /// Its exit status, once it ended.
    pub status: Option<u32>,
    /// Its waiters' watches, by waiter process id (empty once it ended).
    pub watchers: BTreeMap<u32, Watch>,
    /// The process that SPAWNed it (0: procman started it itself).
    pub parent: u32,
    /// Its signal state: group, session, dispositions, stop
    /// (`crate::signals`, ABI.md §7a.8).
    pub signals: crate::signals::SignalRecord,
}

/// What a process's end leaves procman to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The handle to close.
    pub handle: Option<u32>,
    /// Its waiters' watches: signal each event `waits` times, then close it.
    pub watches: Vec<Watch>,
    /// The events of the watches it held on processes still running: close
    /// them (no one is left to wake).
    pub abandoned: Vec<u32>,
}

/// What a WAIT finds, before procman acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitPlan {
    /// The process ended with this status.
    Ended(u32),
    /// The waiter watches it already: hand out its event again.
    Watching(u32),
    /// The waiter may watch it: make an event, hand it out and
    /// [`ProcessTable::record_wait`] it.
    NewWatch,
}

/// The table, keyed by process id (never reused while procman runs).
#[derive(Debug, Default)]
pub struct ProcessTable {
    next_pid: u32,
    records: BTreeMap<u32, ProcessRecord>,
    /// Ended processes, oldest first.
    zombies: Vec<u32>,
}

impl ProcessTable {
    /// An empty table; the first id is 1.
    pub const fn new() -> Self {
        Self {
            next_pid: 1,
            records: BTreeMap::new(),
            zombies: Vec::new(),
        }
    }

    /// Records a new running process and returns its id.
    pub fn add(&mut self, program: usize, domain: usize, handle: u32) -> u32 {
        let pid = self.next_pid;
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        self.records.insert(
            pid,
            ProcessRecord {
                program,
                domain,
                handle: Some(handle),
                status: None,
                watchers: BTreeMap::new(),
                parent: 0,
                signals: crate::signals::SignalRecord::leader(pid),
            },
        );
        pid
    }

    /// The records of the processes with ids above `after`, in id order.
    pub fn after(&self, after: u32) -> impl Iterator<Item = (u32, &ProcessRecord)> {
        self.records
            .range(after.saturating_add(1)..)
            .map(|(pid, record)| (*pid, record))
    }

    /// The record of `pid`.
    pub fn get(&self, pid: u32) -> Option<&ProcessRecord> {
        self.records.get(&pid)
    }

    /// The record of `pid`, to change.
    pub fn get_mut(&mut self, pid: u32) -> Option<&mut ProcessRecord> {
        self.records.get_mut(&pid)
    }

    /// Whether `ancestor` started `pid`, or started a process that did,
    /// and so on up (decision D73: KILL, and SIGNAL by D70, reach a
    /// caller's descendants, so the terminal's pty server, which started
    /// the shell, may signal the shell's jobs). A chain broken by a reaped record ends the
    /// walk: what procman no longer knows counts as no relation.
    pub fn is_ancestor(&self, ancestor: u32, pid: u32) -> bool {
        let mut at = pid;
        // Each step goes to an older id (a parent exists before its child),
        // so the walk ends; the bound only makes that plain.
        for _ in 0..=self.records.len() {
            let Some(record) = self.records.get(&at) else {
                return false;
            };
            if record.parent == 0 {
                return false;
            }
            if record.parent == ancestor {
                return true;
            }
            at = record.parent;
        }
        false
    }

    /// How many running processes `waiter` watches.
    pub fn watches_of(&self, waiter: u32) -> usize {
        self.records
            .values()
            .filter(|r| r.watchers.contains_key(&waiter))
            .count()
    }

    /// What WAIT by process `waiter` for process `pid` finds; nothing
    /// changes until [`ProcessTable::record_wait`]. A new watch past
    /// [`MAX_WATCHES_PER_PROCESS`] is refused.
    pub fn plan_wait(&self, waiter: u32, pid: u32) -> Result<WaitPlan, ProcmanError> {
        let record = self.records.get(&pid).ok_or(ProcmanError::NoSuchProcess)?;
        if let Some(status) = record.status {
            return Ok(WaitPlan::Ended(status));
        }
        if let Some(watch) = record.watchers.get(&waiter) {
            return Ok(WaitPlan::Watching(watch.event));
        }
        if self.watches_of(waiter) >= MAX_WATCHES_PER_PROCESS {
            return Err(ProcmanError::TooManyWaits);
        }
        Ok(WaitPlan::NewWatch)
    }

    /// Records that a WAIT by `waiter` for `pid` handed out `event`: the
    /// waiter's own (counted once more) or, when [`ProcessTable::plan_wait`]
    /// said [`WaitPlan::NewWatch`], a new one. It is checked again; a
    /// refusal changes nothing.
    pub fn record_wait(&mut self, waiter: u32, pid: u32, event: u32) -> Result<(), ProcmanError> {
        let plan = self.plan_wait(waiter, pid)?;
        let record = self
            .records
            .get_mut(&pid)
            .ok_or(ProcmanError::NoSuchProcess)?;
        match plan {
            WaitPlan::Ended(_) => Err(ProcmanError::NoSuchProcess),
            WaitPlan::Watching(own) if own != event => Err(ProcmanError::BadRequest),
            WaitPlan::Watching(_) => {
                if let Some(watch) = record.watchers.get_mut(&waiter) {
                    watch.waits = watch.waits.saturating_add(1);
                }
                Ok(())
            }
            WaitPlan::NewWatch => {
                record.watchers.insert(waiter, Watch { event, waits: 1 });
                Ok(())
            }
        }
    }

    /// Running processes.
    pub fn running(&self) -> usize {
        self.records.values().filter(|r| r.status.is_none()).count()
    }

    /// Marks `pid` ended with `status` (keeping at most [`MAX_ZOMBIES`]
    /// ended records) and ends its watches, both ways; what is left to close
    /// and signal, or `None` when it is unknown or already ended.
    pub fn exited(&mut self, pid: u32, status: u32) -> Option<Ended> {
        let record = self.records.get_mut(&pid)?;
        if record.status.is_some() {
            return None;
        }
        record.status = Some(status);
        let handle = record.handle.take();
        let watches = core::mem::take(&mut record.watchers)
            .into_values()
            .collect();
        let abandoned = self
            .records
            .values_mut()
            .filter_map(|r| r.watchers.remove(&pid))
            .map(|watch| watch.event)
            .collect();
        let ended = Ended {
            handle,
            watches,
            abandoned,
        };
        self.zombies.push(pid);
        while self.zombies.len() > MAX_ZOMBIES {
            let oldest = self.zombies.remove(0);
            self.records.remove(&oldest);
        }
        Some(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_unique_and_exits_hand_back_what_to_close() {
        let mut table = ProcessTable::new();
        let a = table.add(0, 1, 10);
        let b = table.add(1, 2, 11);
        assert_ne!(a, b);
        assert_eq!(table.record_wait(b, a, 30), Ok(()));
        assert_eq!(table.record_wait(b, a, 30), Ok(()));
        assert_eq!(table.running(), 2);
        assert_eq!(
            table.exited(a, 3),
            Some(Ended {
                handle: Some(10),
                watches: vec![Watch {
                    event: 30,
                    waits: 2
                }],
                abandoned: vec![],
            })
        );
        assert_eq!(table.exited(a, 4), None, "a process ends once");
        assert_eq!(table.get(a).and_then(|r| r.status), Some(3));
        assert_eq!(table.running(), 1);
        assert_eq!(table.exited(99, 0), None);
    }

    #[test]
    fn each_waiter_has_its_own_event_and_a_bound() {
        let mut table = ProcessTable::new();
        let watched = table.add(0, 0, 10);
        let (a, b) = (table.add(0, 0, 11), table.add(0, 0, 12));
        assert_eq!(table.plan_wait(a, watched), Ok(WaitPlan::NewWatch));
        assert_eq!(table.record_wait(a, watched, 30), Ok(()));
        // Another waiter never gets a's event: it could take a's wake-up.
        assert_eq!(table.plan_wait(b, watched), Ok(WaitPlan::NewWatch));
        assert_eq!(table.record_wait(b, watched, 31), Ok(()));
        // A waiter's repeated WAITs cost nothing new: its own event again.
        for _ in 0..1000 {
            assert_eq!(table.plan_wait(a, watched), Ok(WaitPlan::Watching(30)));
            assert_eq!(table.record_wait(a, watched, 30), Ok(()));
        }
        assert_eq!(table.plan_wait(b, watched), Ok(WaitPlan::Watching(31)));

        // One waiter watches at most MAX_WATCHES_PER_PROCESS processes.
        let mut others = Vec::new();
        for i in 1..MAX_WATCHES_PER_PROCESS as u32 {
            let pid = table.add(0, 0, 100 + i);
            assert_eq!(table.plan_wait(a, pid), Ok(WaitPlan::NewWatch));
            assert_eq!(table.record_wait(a, pid, 200 + i), Ok(()));
            others.push(pid);
        }
        let one_more = table.add(0, 0, 99);
        assert_eq!(
            table.plan_wait(a, one_more),
            Err(ProcmanError::TooManyWaits)
        );
        assert_eq!(
            table.record_wait(a, one_more, 299),
            Err(ProcmanError::TooManyWaits),
            "recording checks the bound too"
        );
        // Those it watches already are still fine, and others are not limited.
        assert_eq!(table.plan_wait(a, watched), Ok(WaitPlan::Watching(30)));
        assert_eq!(table.plan_wait(b, one_more), Ok(WaitPlan::NewWatch));
        // A watched process's end frees a place.
        assert!(table.exited(others[0], 0).is_some());
        assert_eq!(table.plan_wait(a, others[0]), Ok(WaitPlan::Ended(0)));
        assert_eq!(table.plan_wait(a, one_more), Ok(WaitPlan::NewWatch));
    }

    #[test]
    fn an_end_wakes_each_waiter_as_often_as_it_asked_and_frees_its_own_watches() {
        let mut table = ProcessTable::new();
        let (x, y, a, b) = (
            table.add(0, 0, 1),
            table.add(0, 0, 2),
            table.add(0, 0, 3),
            table.add(0, 0, 4),
        );
        for (waiter, watched, event) in [(a, x, 30), (a, x, 30), (a, x, 30), (b, x, 31)] {
            assert_eq!(table.record_wait(waiter, watched, event), Ok(()));
        }
        assert_eq!(table.record_wait(a, y, 32), Ok(()));
        assert_eq!(
            table.record_wait(y, y, 33),
            Ok(()),
            "a process may watch itself"
        );
        assert_eq!(
            table.record_wait(a, x, 99),
            Err(ProcmanError::BadRequest),
            "a watch keeps its event"
        );
        let ended = table.exited(x, 5).expect("x runs");
        assert_eq!(
            ended.watches,
            [
                Watch {
                    event: 30,
                    waits: 3
                },
                Watch {
                    event: 31,
                    waits: 1
                }
            ]
        );
        assert_eq!(ended.abandoned, []);
        assert_eq!(table.watches_of(a), 1);
        // a's end: its watch of y goes (its event is closed, not signalled).
        let ended = table.exited(a, 0).expect("a runs");
        assert_eq!((ended.watches, ended.abandoned), (vec![], vec![32]));
        assert_eq!(table.watches_of(a), 0);
        // y's watch of itself is handed back once, as a watch.
        let ended = table.exited(y, 0).expect("y runs");
        assert_eq!(
            (ended.watches, ended.abandoned),
            (
                vec![Watch {
                    event: 33,
                    waits: 1
                }],
                vec![]
            )
        );
        assert_eq!(
            table.record_wait(b, x, 31),
            Err(ProcmanError::NoSuchProcess)
        );
    }

    proptest! {
        /// Whatever WAITs and ends: a waiter is only ever handed its own
        /// event, watches stay within the bound, and every event procman
        /// made comes back exactly once, to be closed, when the watched
        /// process or the waiter ends.
        #[test]
        fn watches_are_private_bounded_and_never_leak(
            // Few waiters and rare ends, so waiters reach the bound.
            ops in prop::collection::vec((0u8..32, 0usize..3, 0usize..20), 0..300)
        ) {
            let mut table = ProcessTable::new();
            let pids: Vec<u32> = (0..20).map(|i| table.add(0, 0, i)).collect();
            let mut given: BTreeMap<(u32, u32), u32> = BTreeMap::new();
            let mut closed: Vec<u32> = Vec::new();
            let mut next_event = 1000;
            for (op, i, j) in ops {
                let (waiter, watched) = (pids[i], pids[j]);
                if op != 0 {
                    let waiter_runs = table.get(waiter).is_some_and(|r| r.status.is_none());
                    if !waiter_runs {
                        continue; // procman refuses dead callers before this
                    }
                    match table.plan_wait(waiter, watched) {
                        Ok(WaitPlan::NewWatch) => {
                            prop_assert!(!given.contains_key(&(waiter, watched)));
                            next_event += 1;
                            prop_assert_eq!(table.record_wait(waiter, watched, next_event), Ok(()));
                            given.insert((waiter, watched), next_event);
                        }
                        Ok(WaitPlan::Watching(event)) => {
                            prop_assert_eq!(given.get(&(waiter, watched)), Some(&event));
                            prop_assert_eq!(table.record_wait(waiter, watched, event), Ok(()));
                        }
                        Ok(WaitPlan::Ended(_)) => {}
                        Err(e) => {
                            prop_assert_eq!(e, ProcmanError::TooManyWaits);
                            prop_assert_eq!(table.watches_of(waiter), MAX_WATCHES_PER_PROCESS);
                        }
                    }
                } else if let Some(ended) = table.exited(watched, 0) {
                    closed.extend(ended.watches.iter().map(|w| w.event));
                    closed.extend(ended.abandoned);
                    given.retain(|(w, t), _| *w != watched && *t != watched);
                }
                for pid in &pids {
                    prop_assert!(table.watches_of(*pid) <= MAX_WATCHES_PER_PROCESS);
                }
            }
            // Everything ends: every event made is closed exactly once.
            for pid in &pids {
                if let Some(ended) = table.exited(*pid, 0) {
                    closed.extend(ended.watches.iter().map(|w| w.event));
                    closed.extend(ended.abandoned);
                }
            }
            closed.sort_unstable();
            let made: Vec<u32> = (1001..=next_event).collect();
            prop_assert_eq!(closed, made);
        }
    }

    #[test]
    fn ancestors_are_the_parent_chain_and_nothing_else() {
        let mut table = ProcessTable::new();
        let console = table.add(0, 0, 10);
        let shell = table.add(0, 0, 11);
        let child = table.add(0, 0, 12);
        let other = table.add(0, 0, 13);
        table.get_mut(shell).expect("shell").parent = console;
        table.get_mut(child).expect("child").parent = shell;
        assert!(table.is_ancestor(shell, child));
        assert!(table.is_ancestor(console, child));
        assert!(table.is_ancestor(console, shell));
        assert!(!table.is_ancestor(child, shell), "a child is no ancestor");
        assert!(!table.is_ancestor(other, child), "a stranger is none");
        assert!(!table.is_ancestor(child, child), "nor is a process itself");
        assert!(!table.is_ancestor(0, child), "procman's 0 is no caller");
        assert!(
            !table.is_ancestor(console, 99),
            "an unknown process has none"
        );
    }

    #[test]
    fn zombies_are_bounded() {
        let mut table = ProcessTable::new();
        let first = table.add(0, 0, 1);
        assert!(table.exited(first, 0).is_some());
        for i in 0..MAX_ZOMBIES as u32 {
            let pid = table.add(0, 0, i);
            assert!(table.exited(pid, 0).is_some());
        }
        assert_eq!(table.get(first), None, "the oldest zombie was dropped");
        assert_eq!(table.records.len(), MAX_ZOMBIES);
    }
}
