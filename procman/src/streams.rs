//! The pipe table (seed 003's pipes; ABI.md §7a.3): each live pipe's
//! descriptors in procman's table (its ring's memory object and its data,
//! room and lock events), and every end reference a process holds, opened
//! (it has the descriptors) or only granted. End of file and a broken pipe
//! follow from these records alone: a side is gone when no process holds
//! a reference of it any more, by PIPE_CLOSE or by its end.
//!
//! Every request is checked before anything changes, so a refusal changes
//! nothing. This module never makes a kernel call and never trusts what a
//! caller says about itself: callers are the process ids procman gave them.

use abi::procman::ProcmanError;
use abi::stream::{READ_END, WRITE_END};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// End references one process may hold at once (opened or granted).
pub const MAX_ENDS_PER_PROCESS: usize = 64;

/// procman's descriptors of one pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeEntry {
    /// The ring's memory object.
    pub object: u32,
    /// The data event (readers wait on it).
    pub data: u32,
    /// The room event (writers wait on it).
    pub room: u32,
    /// The header lock's event.
    pub lock: u32,
}

impl PipeEntry {
    /// Its descriptors, to close when the pipe goes.
    pub fn descriptors(&self) -> [u32; 4] {
        [self.object, self.data, self.room, self.lock]
    }
}

/// One end reference held by a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EndRecord {
    pid: u32,
    pipe: u32,
    end: u32,
    opened: bool,
}

/// A side of a pipe whose last reference went: procman sets its flag in
/// the ring and wakes the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideGone {
    /// The pipe.
    pub pipe: u32,
    /// The side ([`READ_END`] or [`WRITE_END`]).
    pub end: u32,
}

/// What a close or a process's end changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Sides whose last reference went (of pipes that live on or not).
    pub sides: Vec<SideGone>,
    /// Pipes no process holds any end of any more: procman closes their
    /// descriptors and forgets them.
    pub freed: Vec<(u32, PipeEntry)>,
    /// Pipes the ended process may hold the ring lock of (it might have
    /// died holding it): procman frees it if the owner word names it.
    pub touched: Vec<u32>,
}

/// Every pipe and every end reference.
#[derive(Debug, Default)]
pub struct PipeTable {
    pipes: BTreeMap<u32, PipeEntry>,
    ends: Vec<EndRecord>,
    last: u32,
}

fn check_end(end: u32) -> Result<(), ProcmanError> {
    if end == READ_END || end == WRITE_END {
        Ok(())
    } else {
        Err(ProcmanError::PipeBadEnd)
    }
}

impl PipeTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live pipes.
    pub fn pipes(&self) -> usize {
        self.pipes.len()
    }

    /// End references held, over every process.
    pub fn ends(&self) -> usize {
        self.ends.len()
    }

    /// Descriptors procman holds for pipes.
    pub fn descriptors(&self) -> usize {
        self.pipes.len() * 4
    }

    /// The entry of `pipe`.
    pub fn get(&self, pipe: u32) -> Option<&PipeEntry> {
        self.pipes.get(&pipe)
    }

    fn held_by(&self, pid: u32) -> usize {
        self.ends.iter().filter(|r| r.pid == pid).count()
    }

    /// Whether `pid` may create a pipe (two more end references).
    pub fn check_create(&self, pid: u32) -> Result<(), ProcmanError> {
        if self.held_by(pid) + 2 > MAX_ENDS_PER_PROCESS {
            return Err(ProcmanError::TooManyPipeEnds);
        }
        Ok(())
    }

    /// Records a new pipe whose creator `pid` holds both ends, opened;
    /// its number (never 0, never one in use). Call [`Self::check_create`] first.
    pub fn insert(&mut self, pid: u32, entry: PipeEntry) -> u32 {
        let mut pipe = self.last;
        loop {
            pipe = pipe.wrapping_add(1);
            if pipe != 0 && !self.pipes.contains_key(&pipe) {
                break;
            }
        }
        self.last = pipe;
        self.pipes.insert(pipe, entry);
        for end in [READ_END, WRITE_END] {
            self.ends.push(EndRecord {
                pid,
                pipe,
                end,
                opened: true,
            });
        }
        pipe
    }

    fn position(&self, pid: u32, pipe: u32, end: u32, opened: Option<bool>) -> Option<usize> {
        self.ends.iter().position(|r| {
            r.pid == pid && r.pipe == pipe && r.end == end && opened.is_none_or(|o| r.opened == o)
        })
    }

    fn check(&self, pipe: u32, end: u32) -> Result<(), ProcmanError> {
        check_end(end)?;
        if !self.pipes.contains_key(&pipe) {
            return Err(ProcmanError::NoSuchPipe);
        }
        Ok(())
    }

    /// PIPE_CLOSE: `pid` gives up one reference of `end` (an opened one
    /// before a granted one).
    pub fn close(&mut self, pid: u32, pipe: u32, end: u32) -> Result<Released, ProcmanError> {
        self.check(pipe, end)?;
        let index = self
            .position(pid, pipe, end, Some(true))
            .or_else(|| self.position(pid, pipe, end, None))
            .ok_or(ProcmanError::NotPipeHolder)?;
        self.ends.swap_remove(index);
        let mut released = Released::default();
        self.settle(pipe, end, &mut released);
        Ok(released)
    }

    /// PIPE_GRANT: `pid`, holding `end` opened, gives `to` (a live process
    /// other than itself: `to_lives` is the server's word on it) one
    /// reference.
    pub fn grant(
        &mut self,
        pid: u32,
        pipe: u32,
        end: u32,
        to: u32,
        to_lives: bool,
    ) -> Result<(), ProcmanError> {
        self.check(pipe, end)?;
        if self.position(pid, pipe, end, Some(true)).is_none() {
            return Err(ProcmanError::NotPipeHolder);
        }
        if to == pid {
            return Err(ProcmanError::PipeGrantSelf);
        }
        if !to_lives {
            return Err(ProcmanError::NoSuchProcess);
        }
        if self.held_by(to) >= MAX_ENDS_PER_PROCESS {
            return Err(ProcmanError::TooManyPipeEnds);
        }
        self.ends.push(EndRecord {
            pid: to,
            pipe,
            end,
            opened: false,
        });
        Ok(())
    }

    /// Whether `pid` holds a reference (opened or granted) of `end` of
    /// `pipe`: a standard stream it may give a child (SPAWN).
    pub fn check_holds(&self, pid: u32, pipe: u32, end: u32) -> Result<(), ProcmanError> {
        self.check(pipe, end)?;
        self.position(pid, pipe, end, None)
            .map(|_| ())
            .ok_or(ProcmanError::NotPipeHolder)
    }

    /// Gives the new process `to` one granted reference of `end` of
    /// `pipe`, a standard stream its parent holds (checked with
    /// [`Self::check_holds`]; a new process holds at most three, far
    /// below the bound).
    pub fn grant_stream(&mut self, pipe: u32, end: u32, to: u32) {
        if self.pipes.contains_key(&pipe) {
            self.ends.push(EndRecord {
                pid: to,
                pipe,
                end,
                opened: false,
            });
        }
    }

    /// PIPE_OPEN: `pid` takes the descriptors of a granted reference.
    pub fn open(&mut self, pid: u32, pipe: u32, end: u32) -> Result<PipeEntry, ProcmanError> {
        self.check(pipe, end)?;
        let index = self
            .position(pid, pipe, end, Some(false))
            .ok_or(ProcmanError::PipeNotGranted)?;
        self.ends[index].opened = true;
        self.pipes
            .get(&pipe)
            .copied()
            .ok_or(ProcmanError::NoSuchPipe)
    }

    /// Undoes an [`Self::open`] whose reply could not be sent.
    pub fn unopen(&mut self, pid: u32, pipe: u32, end: u32) {
        if let Some(index) = self.position(pid, pipe, end, Some(true)) {
            self.ends[index].opened = false;
        }
    }

    /// Process `pid` ended: every reference it held goes.
    pub fn exited(&mut self, pid: u32) -> Released {
        let mut released = Released::default();
        let mut held: Vec<(u32, u32)> = Vec::new();
        self.ends.retain(|r| {
            if r.pid == pid {
                held.push((r.pipe, r.end));
                false
            } else {
                true
            }
        });
        held.sort_unstable();
        held.dedup();
        for &(pipe, end) in &held {
            if !released.touched.contains(&pipe) {
                released.touched.push(pipe);
            }
            self.settle(pipe, end, &mut released);
        }
        released
    }

    /// After a reference of `end` of `pipe` went: the side's and the
    /// pipe's fate.
    fn settle(&mut self, pipe: u32, end: u32, released: &mut Released) {
        let side_left = self.ends.iter().any(|r| r.pipe == pipe && r.end == end);
        if !side_left {
            released.sides.push(SideGone { pipe, end });
        }
        let any_left = self.ends.iter().any(|r| r.pipe == pipe);
        if !any_left && let Some(entry) = self.pipes.remove(&pipe) {
            released.freed.push((pipe, entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENTRY: PipeEntry = PipeEntry {
        object: 1,
        data: 2,
        room: 3,
        lock: 4,
    };

    #[test]
    fn a_side_goes_with_its_last_reference_and_the_pipe_with_both() {
        let mut table = PipeTable::new();
        let pipe = table.insert(7, ENTRY);
        assert_ne!(pipe, 0);
        assert_eq!(table.grant(7, pipe, WRITE_END, 8, true), Ok(()));
        assert_eq!(
            table.open(8, pipe, WRITE_END),
            Ok(ENTRY),
            "the granted end opens"
        );
        assert_eq!(
            table.open(8, pipe, WRITE_END),
            Err(ProcmanError::PipeNotGranted)
        );
        let released = table.close(7, pipe, WRITE_END).expect("held");
        assert!(released.sides.is_empty(), "8 still writes");
        let released = table.exited(8);
        assert_eq!(
            released.sides,
            [SideGone {
                pipe,
                end: WRITE_END
            }]
        );
        assert!(released.freed.is_empty());
        let released = table.close(7, pipe, READ_END).expect("held");
        assert_eq!(released.freed, [(pipe, ENTRY)]);
        assert_eq!((table.pipes(), table.ends()), (0, 0));
    }

    #[test]
    fn refusals_change_nothing() {
        let mut table = PipeTable::new();
        let pipe = table.insert(7, ENTRY);
        let before = (table.pipes(), table.ends());
        assert_eq!(
            table.close(7, pipe, 3).map(|_| ()),
            Err(ProcmanError::PipeBadEnd)
        );
        assert_eq!(
            table.close(7, pipe + 1, READ_END).map(|_| ()),
            Err(ProcmanError::NoSuchPipe)
        );
        assert_eq!(
            table.close(8, pipe, READ_END).map(|_| ()),
            Err(ProcmanError::NotPipeHolder)
        );
        assert_eq!(
            table.grant(8, pipe, READ_END, 9, true),
            Err(ProcmanError::NotPipeHolder)
        );
        assert_eq!(
            table.grant(7, pipe, READ_END, 7, true),
            Err(ProcmanError::PipeGrantSelf)
        );
        assert_eq!(
            table.open(7, pipe, READ_END),
            Err(ProcmanError::PipeNotGranted)
        );
        assert_eq!((table.pipes(), table.ends()), before);
        for _ in 0..31 {
            table.insert(7, ENTRY);
        }
        assert_eq!(table.check_create(7), Err(ProcmanError::TooManyPipeEnds));
        assert_eq!(
            table.grant(8, pipe, READ_END, 7, true),
            Err(ProcmanError::NotPipeHolder)
        );
        table.grant(7, pipe, READ_END, 8, true).expect("8 has room");
    }

    proptest! {
        /// Random creates, grants, opens, closes and exits: a side is
        /// reported gone exactly when its last reference goes, a pipe is
        /// freed exactly when it has no reference left, and once every
        /// process has ended nothing is left.
        #[test]
        fn sides_and_pipes_go_exactly_with_their_last_reference(
            steps in proptest::collection::vec((0u8..5, 1u32..5, 0usize..8, 1u32..3, 1u32..5), 1..120)
        ) {
            let mut table = PipeTable::new();
            let mut live: Vec<u32> = Vec::new();
            for (kind, pid, which, end, to) in steps {
                let pipe = live.get(which % live.len().max(1)).copied().unwrap_or(1);
                let released = match kind {
                    0 => {
                        if table.check_create(pid).is_ok() {
                            live.push(table.insert(pid, ENTRY));
                        }
                        Released::default()
                    }
                    1 => { let _ = table.grant(pid, pipe, end, to, true); Released::default() }
                    2 => { let _ = table.open(pid, pipe, end); Released::default() }
                    3 => table.close(pid, pipe, end).unwrap_or_default(),
                    _ => table.exited(pid),
                };
                for side in &released.sides {
                    prop_assert!(!table.ends.iter().any(|r| r.pipe == side.pipe && r.end == side.end));
                }
                for (pipe, _) in &released.freed {
                    prop_assert!(table.get(*pipe).is_none());
                    live.retain(|p| p != pipe);
                }
                for pipe in &live {
                    prop_assert!(table.ends.iter().any(|r| r.pipe == *pipe));
                }
                prop_assert_eq!(table.pipes(), live.len());
            }
            for pid in 1..5 {
                table.exited(pid);
            }
            prop_assert_eq!((table.pipes(), table.ends()), (0, 0));
        }
    }
}
