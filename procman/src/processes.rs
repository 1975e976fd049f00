//! The processes procman started: their ids, domains, kernel handles and,
//! once they end, their exit status until someone collects it.

use abi::procman::ProcmanError;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Ended processes whose status is kept for WAIT; the oldest go first.
pub const MAX_ZOMBIES: usize = 256;

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
    /// Its exit event (procman's descriptor), made at the first WAIT and
    /// shared by every later one, so waiting costs procman one descriptor
    /// per watched process however often it is asked.
    pub exit_event: Option<u32>,
    /// WAIT replies that handed out the event: it is signalled once for
    /// each when the process ends.
    pub waits: u32,
}

/// What a process's end leaves procman to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The handle to close.
    pub handle: Option<u32>,
    /// The exit event to signal `waits` times, then close.
    pub exit_event: Option<u32>,
    /// How many waiters hold the event.
    pub waits: u32,
}

/// What a WAIT finds, before procman acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitPlan {
    /// The process ended with this status.
    Ended(u32),
    /// Hand out this exit event (procman's descriptor) again.
    Watching(u32),
    /// Make an exit event, hand it out and [`ProcessTable::record_wait`] it.
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
                exit_event: None,
                waits: 0,
            },
        );
        pid
    }

    /// The record of `pid`.
    pub fn get(&self, pid: u32) -> Option<&ProcessRecord> {
        self.records.get(&pid)
    }

    /// The record of `pid`, to change.
    pub fn get_mut(&mut self, pid: u32) -> Option<&mut ProcessRecord> {
        self.records.get_mut(&pid)
    }

    /// What WAIT by process `waiter` for process `pid` finds; nothing
    /// changes until [`ProcessTable::record_wait`].
    pub fn plan_wait(&self, _waiter: u32, pid: u32) -> Result<WaitPlan, ProcmanError> {
        let record = self.records.get(&pid).ok_or(ProcmanError::NoSuchProcess)?;
        Ok(match (record.status, record.exit_event) {
            (Some(status), _) => WaitPlan::Ended(status),
            (None, Some(event)) => WaitPlan::Watching(event),
            (None, None) => WaitPlan::NewWatch,
        })
    }

    /// Records that a WAIT by `waiter` for `pid` handed out `event` (the one
    /// [`ProcessTable::plan_wait`] named, or a new one): it is signalled for
    /// that WAIT when `pid` ends.
    pub fn record_wait(&mut self, _waiter: u32, pid: u32, event: u32) -> Result<(), ProcmanError> {
        let record = self
            .records
            .get_mut(&pid)
            .filter(|r| r.status.is_none())
            .ok_or(ProcmanError::NoSuchProcess)?;
        record.exit_event = Some(event);
        record.waits = record.waits.saturating_add(1);
        Ok(())
    }

    /// Running processes.
    pub fn running(&self) -> usize {
        self.records.values().filter(|r| r.status.is_none()).count()
    }

    /// Marks `pid` ended with `status` (keeping at most [`MAX_ZOMBIES`]
    /// ended records); what is left to close and signal, or `None` when it
    /// is unknown or already ended.
    pub fn exited(&mut self, pid: u32, status: u32) -> Option<Ended> {
        let record = self.records.get_mut(&pid)?;
        if record.status.is_some() {
            return None;
        }
        record.status = Some(status);
        let ended = Ended {
            handle: record.handle.take(),
            exit_event: record.exit_event.take(),
            waits: core::mem::take(&mut record.waits),
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

    #[test]
    fn ids_are_unique_and_exits_hand_back_what_to_close() {
        let mut table = ProcessTable::new();
        let a = table.add(0, 1, 10);
        let b = table.add(1, 2, 11);
        assert_ne!(a, b);
        if let Some(r) = table.get_mut(a) {
            r.exit_event = Some(30);
            r.waits = 2;
        }
        assert_eq!(table.running(), 2);
        assert_eq!(
            table.exited(a, 3),
            Some(Ended {
                handle: Some(10),
                exit_event: Some(30),
                waits: 2
            })
        );
        assert_eq!(table.exited(a, 4), None, "a process ends once");
        assert_eq!(table.get(a).and_then(|r| r.status), Some(3));
        assert_eq!(table.running(), 1);
        assert_eq!(table.exited(99, 0), None);
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
