//! procman's signals, process groups and sessions (ABI.md §7a.9): each
//! process's group, session, dispositions and stop, who may signal whom
//! (D70), what a signal does to a process (D71), POSIX's rules for
//! groups and sessions (D72) and the stop a waiter learns of (D83).
//!
//! Plain decisions on the process table, tested on the host; the server
//! applies them with kernel calls (PROCESS_KILL, PROCESS_SUSPEND,
//! PROCESS_RESUME, THREAD_INTERRUPT). Nothing here trusts what a caller
//! says of itself, and a refused request must change nothing: every check
//! comes before the first change.

use abi::procman::ProcmanError;
use abi::signal::{
    CONT, DefaultAction, KILL, MAX_SIGNAL, SIGNAL_GROUP, STOP, SignalRequest, action,
    default_action, is_uncatchable, signal_bit as bit, terminated_status,
};
use alloc::vec::Vec;

use crate::processes::{ProcessRecord, ProcessTable, Watch};

/// One process's signal state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalRecord {
    /// Its process group (the pid of the group's leader).
    pub group: u32,
    /// Its session (the pid of the session's leader).
    pub session: u32,
    /// The signals it ignores, a bit each.
    pub ignored: u64,
    /// The signals it catches, a bit each.
    pub caught: u64,
    /// The signal that stopped it, while it is stopped (suspended).
    pub stopped: Option<u32>,
}

impl SignalRecord {
    /// A process procman started itself: the leader of its own session
    /// and group, every signal at its default.
    pub const fn leader(pid: u32) -> Self {
        SignalRecord {
            group: pid,
            session: pid,
            ignored: 0,
            caught: 0,
            stopped: None,
        }
    }

    /// A child SPAWNed by a process with `parent`'s state: its group and
    /// session, and what it ignores; caught signals go back to their
    /// default (the child runs another program: spawn is fork and exec).
    pub const fn inherited(parent: &SignalRecord) -> Self {
        SignalRecord {
            group: parent.group,
            session: parent.session,
            ignored: parent.ignored,
            caught: 0,
            stopped: None,
        }
    }

    /// Its disposition of `signal` (one of `abi::signal::action`).
    pub const fn action(&self, signal: u32) -> u32 {
        let bit = bit(signal);
        if self.caught & bit != 0 {
            action::CATCH
        } else if self.ignored & bit != 0 {
            action::IGNORE
        } else {
            action::DEFAULT
        }
    }
}

/// What procman does to one process for one signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing (ignored, a default of ignore, a stop of a stopped process,
    /// or signal 0).
    Nothing,
    /// PROCESS_KILL with this status (`128 + signal`).
    Terminate(u32),
    /// PROCESS_SUSPEND; the signal is the stop's.
    Stop(u32),
    /// PROCESS_RESUME when stopped, then the handler when `catch`.
    Continue {
        /// The process catches CONT.
        catch: bool,
    },
    /// THREAD_INTERRUPT with the signal on the process handle.
    Catch,
}

/// What `signal` does to a process in state `record` (D71): KILL and STOP
/// whatever it set; CONT always continues a stopped process (and runs a
/// handler if caught); otherwise ignore, catch, or the default action.
pub fn plan(record: &SignalRecord, signal: u32) -> Delivery {
    let stop = |signal| {
        if record.stopped.is_some() {
            Delivery::Nothing
        } else {
            Delivery::Stop(signal)
        }
    };
    match signal {
        0 => Delivery::Nothing,
        KILL => Delivery::Terminate(terminated_status(KILL)),
        STOP => stop(STOP),
        CONT => Delivery::Continue {
            catch: record.caught & bit(CONT) != 0,
        },
        _ => match record.action(signal) {
            action::CATCH => Delivery::Catch,
            action::IGNORE => Delivery::Nothing,
            _ => match default_action(signal) {
                DefaultAction::Terminate => Delivery::Terminate(terminated_status(signal)),
                DefaultAction::Stop => stop(signal),
                DefaultAction::Ignore | DefaultAction::Continue => Delivery::Nothing,
            },
        },
    }
}

/// Whether a process procman still runs (not ended).
fn live(record: &ProcessRecord) -> bool {
    record.status.is_none() && record.handle.is_some()
}

impl ProcessTable {
    /// The live record of `pid`.
    fn live(&self, pid: u32) -> Result<&ProcessRecord, ProcmanError> {
        self.get(pid)
            .filter(|r| live(r))
            .ok_or(ProcmanError::NoSuchProcess)
    }

    /// Whether `caller` may signal `target` (D70): itself, a descendant
    /// (D73's rule), or a process of its own session.
    pub fn may_signal(&self, caller: u32, target: u32) -> bool {
        if caller == target || self.is_ancestor(caller, target) {
            return true;
        }
        match (self.live(caller), self.live(target)) {
            (Ok(c), Ok(t)) => c.signals.session == t.signals.session,
            _ => false,
        }
    }

    /// The processes SIGNAL by `caller` reaches, every check made: the
    /// request's shape, the signal's number, the target's existence, and
    /// permission for every one (a group signal is refused whole when one
    /// member may not be signalled).
    pub fn signal_targets(
        &self,
        caller: u32,
        request: &SignalRequest,
    ) -> Result<Vec<u32>, ProcmanError> {
        if request.reserved != 0 || request.flags & !SIGNAL_GROUP != 0 {
            return Err(ProcmanError::BadRequest);
        }
        if request.signal > MAX_SIGNAL {
            return Err(ProcmanError::NoSuchSignal);
        }
        if request.flags & SIGNAL_GROUP == 0 {
            self.live(request.pid)?;
            if !self.may_signal(caller, request.pid) {
                return Err(ProcmanError::SignalDenied);
            }
            return Ok(alloc::vec![request.pid]);
        }
        let group = if request.pid == 0 {
            self.live(caller)?.signals.group
        } else {
            request.pid
        };
        let members: Vec<u32> = self
            .after(0)
            .filter(|(_, r)| live(r) && r.signals.group == group)
            .map(|(pid, _)| pid)
            .collect();
        if members.is_empty() {
            return Err(ProcmanError::NoSuchGroup);
        }
        if members.iter().any(|&pid| !self.may_signal(caller, pid)) {
            return Err(ProcmanError::SignalDenied);
        }
        Ok(members)
    }

    /// SIGNAL_ACTION: `pid`'s disposition of `signal` becomes `act`; the
    /// previous one.
    pub fn set_action(&mut self, pid: u32, signal: u32, act: u32) -> Result<u32, ProcmanError> {
        if signal == 0 || signal > MAX_SIGNAL {
            return Err(ProcmanError::NoSuchSignal);
        }
        if act > action::CATCH {
            return Err(ProcmanError::BadAction);
        }
        if is_uncatchable(signal) && act != action::DEFAULT {
            return Err(ProcmanError::Uncatchable);
        }
        self.live(pid)?;
        let record = self.get_mut(pid).ok_or(ProcmanError::NoSuchProcess)?;
        let previous = record.signals.action(signal);
        let b = bit(signal);
        record.signals.ignored &= !b;
        record.signals.caught &= !b;
        match act {
            action::IGNORE => record.signals.ignored |= b,
            action::CATCH => record.signals.caught |= b,
            _ => {}
        }
        Ok(previous)
    }

    /// A child `child` SPAWNed by `parent` takes its signal state (D72).
    pub fn inherit(&mut self, child: u32, parent: u32) {
        let Some(state) = self.get(parent).map(|p| p.signals) else {
            return;
        };
        if let Some(record) = self.get_mut(child) {
            record.signals = SignalRecord::inherited(&state);
        }
    }

    /// SET_GROUP by `caller` (D72, POSIX's setpgid): `pid` (0: the caller)
    /// is the caller or its child, in the caller's session, not a session
    /// leader; `group` (0: `pid`'s own new group) is `pid` or a group that
    /// has a live member in that session.
    pub fn set_group(&mut self, caller: u32, pid: u32, group: u32) -> Result<(), ProcmanError> {
        let pid = if pid == 0 { caller } else { pid };
        let session = self.live(caller)?.signals.session;
        let target = self.live(pid)?;
        if pid != caller && target.parent != caller {
            return Err(ProcmanError::GroupDenied);
        }
        if target.signals.session != session {
            return Err(ProcmanError::GroupDenied);
        }
        if target.signals.session == pid {
            return Err(ProcmanError::SessionLeader);
        }
        let group = if group == 0 { pid } else { group };
        if group != pid
            && !self
                .after(0)
                .any(|(_, r)| live(r) && r.signals.group == group && r.signals.session == session)
        {
            return Err(ProcmanError::NoSuchGroup);
        }
        if let Some(record) = self.get_mut(pid) {
            record.signals.group = group;
        }
        Ok(())
    }

    /// NEW_SESSION by `pid` (POSIX's setsid): refused to a group leader;
    /// it leads a new session and a new group. Its (group, session).
    pub fn new_session(&mut self, pid: u32) -> Result<(u32, u32), ProcmanError> {
        if self.live(pid)?.signals.group == pid {
            return Err(ProcmanError::SessionLeader);
        }
        let record = self.get_mut(pid).ok_or(ProcmanError::NoSuchProcess)?;
        record.signals.group = pid;
        record.signals.session = pid;
        Ok((pid, pid))
    }

    /// GROUP_OF: `pid`'s (group, session), while it runs.
    pub fn group_of(&self, pid: u32) -> Result<(u32, u32), ProcmanError> {
        let r = self.live(pid)?;
        Ok((r.signals.group, r.signals.session))
    }

    /// `pid` stopped with `signal`: its waiters' watches, to wake once for
    /// each WAIT or WAIT_JOB that handed their event out since (their
    /// counts restart, D83). Empty when it was stopped already.
    pub fn stopped(&mut self, pid: u32, signal: u32) -> Vec<Watch> {
        let Some(record) = self.get_mut(pid) else {
            return Vec::new();
        };
        if record.signals.stopped.is_some() {
            return Vec::new();
        }
        record.signals.stopped = Some(signal);
        record
            .watchers
            .values_mut()
            .map(|w| {
                let woken = *w;
                w.waits = 0;
                woken
            })
            .collect()
    }

    /// `pid` continued; whether it was stopped.
    pub fn continued(&mut self, pid: u32) -> bool {
        self.get_mut(pid)
            .is_some_and(|r| r.signals.stopped.take().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::signal::{CHLD, INT, PIPE, TERM, TSTP, USR1};

    /// procman's table with: 1 (console, leader), 2 = child of 1 (shell),
    /// 3 and 4 = children of 2, 5 another boot process.
    fn table() -> ProcessTable {
        let mut t = ProcessTable::new();
        for handle in 1..=5 {
            t.add(0, 0, handle);
        }
        for (child, parent) in [(2, 1), (3, 2), (4, 2)] {
            if let Some(r) = t.get_mut(child) {
                r.parent = parent;
            }
            t.inherit(child, parent);
        }
        t
    }

    #[test]
    fn defaults_ignore_catch_and_the_uncatchable() {
        let mut r = SignalRecord::leader(1);
        assert_eq!(plan(&r, TERM), Delivery::Terminate(143));
        assert_eq!(plan(&r, PIPE), Delivery::Terminate(141));
        assert_eq!(plan(&r, CHLD), Delivery::Nothing);
        assert_eq!(plan(&r, TSTP), Delivery::Stop(TSTP));
        assert_eq!(plan(&r, CONT), Delivery::Continue { catch: false });
        r.ignored = bit(TERM);
        r.caught = bit(USR1) | bit(CONT);
        assert_eq!(plan(&r, TERM), Delivery::Nothing);
        assert_eq!(plan(&r, USR1), Delivery::Catch);
        assert_eq!(plan(&r, CONT), Delivery::Continue { catch: true });
        r.stopped = Some(TSTP);
        assert_eq!(plan(&r, STOP), Delivery::Nothing, "stopped already");
        assert_eq!(plan(&r, KILL), Delivery::Terminate(137));
    }

    #[test]
    fn actions_refuse_kill_and_stop_and_change_nothing_when_refused() {
        let mut t = table();
        assert_eq!(t.set_action(3, INT, action::IGNORE), Ok(action::DEFAULT));
        assert_eq!(t.set_action(3, INT, action::CATCH), Ok(action::IGNORE));
        let before = t.get(3).map(|r| r.signals);
        assert_eq!(
            t.set_action(3, KILL, action::IGNORE),
            Err(ProcmanError::Uncatchable)
        );
        assert_eq!(
            t.set_action(3, STOP, action::CATCH),
            Err(ProcmanError::Uncatchable)
        );
        assert_eq!(
            t.set_action(3, 64, action::IGNORE),
            Err(ProcmanError::NoSuchSignal)
        );
        assert_eq!(
            t.set_action(3, 0, action::IGNORE),
            Err(ProcmanError::NoSuchSignal)
        );
        assert_eq!(t.set_action(3, INT, 3), Err(ProcmanError::BadAction));
        assert_eq!(t.get(3).map(|r| r.signals), before);
        assert_eq!(t.set_action(3, KILL, action::DEFAULT), Ok(action::DEFAULT));
    }

    #[test]
    fn who_may_signal_whom() {
        let mut t = table();
        assert!(t.may_signal(1, 3), "an ancestor");
        assert!(t.may_signal(3, 3), "itself");
        assert!(t.may_signal(3, 4), "its session");
        assert!(!t.may_signal(5, 3), "another session");
        assert!(!t.may_signal(3, 5));
        let refused = t.signal_targets(5, &SignalRequest::process(3, TERM, 0));
        assert_eq!(refused, Err(ProcmanError::SignalDenied));
        // The shell leads its own session: the console is no longer in
        // it, and stays its ancestor.
        assert_eq!(t.new_session(2), Ok((2, 2)));
        assert!(!t.may_signal(2, 1));
        assert!(t.may_signal(1, 2));
    }

    #[test]
    fn group_signals_reach_every_member_and_nobody_else() {
        let mut t = table();
        assert_eq!(t.new_session(2), Ok((2, 2)));
        // 3 and 4 still in the console's group: move them under 3's.
        assert_eq!(
            t.set_group(2, 3, 0),
            Err(ProcmanError::GroupDenied),
            "other session"
        );
        t.inherit(3, 2);
        t.inherit(4, 2);
        assert_eq!(t.set_group(2, 3, 0), Ok(()));
        assert_eq!(t.set_group(2, 4, 3), Ok(()));
        assert_eq!(
            t.signal_targets(2, &SignalRequest::group(3, INT, 0)),
            Ok(alloc::vec![3, 4])
        );
        assert_eq!(
            t.signal_targets(2, &SignalRequest::group(9, INT, 0)),
            Err(ProcmanError::NoSuchGroup)
        );
        // A member another may not signal refuses the whole group.
        assert_eq!(
            t.signal_targets(5, &SignalRequest::group(3, INT, 0)),
            Err(ProcmanError::SignalDenied)
        );
    }

    #[test]
    fn group_and_session_rules() {
        let mut t = table();
        assert_eq!(
            t.new_session(1),
            Err(ProcmanError::SessionLeader),
            "a group leader"
        );
        assert_eq!(
            t.set_group(2, 1, 0),
            Err(ProcmanError::GroupDenied),
            "its parent"
        );
        assert_eq!(
            t.set_group(1, 3, 0),
            Err(ProcmanError::GroupDenied),
            "a grandchild"
        );
        assert_eq!(t.set_group(2, 1, 0), Err(ProcmanError::GroupDenied));
        let before: Vec<_> = t.after(0).map(|(_, r)| r.signals).collect();
        assert_eq!(t.set_group(2, 3, 77), Err(ProcmanError::NoSuchGroup));
        assert_eq!(t.set_group(1, 1, 0), Err(ProcmanError::SessionLeader));
        let after: Vec<_> = t.after(0).map(|(_, r)| r.signals).collect();
        assert_eq!(before, after, "refusals change nothing");
        assert_eq!(t.group_of(3), Ok((1, 1)));
        assert_eq!(t.group_of(99), Err(ProcmanError::NoSuchProcess));
    }

    #[test]
    fn a_stop_wakes_each_waiter_once_and_restarts_its_count() {
        let mut t = table();
        assert_eq!(t.record_wait(2, 3, 40), Ok(()));
        assert_eq!(t.record_wait(2, 3, 40), Ok(()));
        let woken = t.stopped(3, TSTP);
        assert_eq!(
            woken,
            alloc::vec![Watch {
                event: 40,
                waits: 2
            }]
        );
        assert!(t.stopped(3, TSTP).is_empty(), "stopped already");
        assert!(t.continued(3));
        assert!(!t.continued(3));
        let ended = t.exited(3, 0).map(|e| e.watches);
        assert_eq!(
            ended,
            Some(alloc::vec![Watch {
                event: 40,
                waits: 0
            }])
        );
    }
}
