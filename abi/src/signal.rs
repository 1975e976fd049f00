//! procman's signals, process groups and sessions (ABI.md §7a.9): the
//! signal numbers and what each does by default, the requests and replies
//! of SIGNAL, SIGNAL_ACTION, SET_GROUP, NEW_SESSION, GROUP_OF, WAIT_JOB and
//! SAVE_AND_END. The kernel knows signal numbers only (§6.10); their
//! meaning is here and procman's. It must never hold state.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::Function;

/// Send a signal to a process or a process group: `SignalRequest`.
pub const SIGNAL: Function = Function(0x470);
/// Set the caller's disposition of a signal: `SignalActionRequest` ->
/// `SignalActionReply` (the previous one).
pub const SIGNAL_ACTION: Function = Function(0x471);
/// Move a process (the caller or its child) into a group: `SetGroupRequest`.
pub const SET_GROUP: Function = Function(0x472);
/// Make the caller the leader of a new session and group: empty ->
/// `GroupReply`.
pub const NEW_SESSION: Function = Function(0x473);
/// A process's group and session: `GroupRequest` -> `GroupReply`.
pub const GROUP_OF: Function = Function(0x474);
/// Whether a process ended or is stopped: `GroupRequest{pid}` ->
/// `JobReply`; while it runs, slot 0 is the caller's own event for it
/// (WAIT's), signalled when it ends or stops.
pub const WAIT_JOB: Function = Function(0x475);
/// Ask a process to save and end: the signal [`SAVE`], and past the bound
/// (`SAVE_BOUND_TICKS`) procman ends it: `GroupRequest{pid}`.
pub const SAVE_AND_END: Function = Function(0x476);

/// Hang-up (default: terminate).
pub const HUP: u32 = 1;
/// Interrupt, ^C (default: terminate).
pub const INT: u32 = 2;
/// Quit (default: terminate).
pub const QUIT: u32 = 3;
/// Kill: terminate, never caught or ignored.
pub const KILL: u32 = 9;
/// User signal 1 (default: terminate).
pub const USR1: u32 = 10;
/// User signal 2 (default: terminate).
pub const USR2: u32 = 12;
/// A write to a pipe with no reader (default: terminate, status 141).
pub const PIPE: u32 = 13;
/// Alarm (default: terminate).
pub const ALRM: u32 = 14;
/// Terminate (default: terminate).
pub const TERM: u32 = 15;
/// A child ended, stopped or continued (default: ignore); info = the
/// child's pid | the `JOB_*` state << 32.
pub const CHLD: u32 = 17;
/// Continue a stopped process (it always continues; default: nothing more).
pub const CONT: u32 = 18;
/// Stop: suspend, never caught or ignored.
pub const STOP: u32 = 19;
/// Terminal stop, ^Z (default: stop).
pub const TSTP: u32 = 20;
/// Background read from the terminal (default: stop).
pub const TTIN: u32 = 21;
/// Background write to the terminal (default: stop).
pub const TTOU: u32 = 22;
/// Save and end (seed 001's logout; default: terminate).
pub const SAVE: u32 = 30;

/// The highest signal number and a signal's bit in a set: the kernel's
/// (ABI.md §6.10), one definition for both protocols.
pub use crate::upcall::{MAX_SIGNAL, signal_bit};

/// What a signal does to a process that neither ignores nor catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// The process ends with status `128 + signal`.
    Terminate,
    /// Nothing.
    Ignore,
    /// The process is suspended (PROCESS_SUSPEND).
    Stop,
    /// A stopped process resumes (PROCESS_RESUME).
    Continue,
}

/// The default action of signal `signal` (1-63): STOP, TSTP, TTIN and TTOU
/// stop, CONT continues, CHLD and the numbers above 31 (unnamed, the
/// real-time range) are ignored, every other terminates.
pub const fn default_action(signal: u32) -> DefaultAction {
    match signal {
        STOP | TSTP | TTIN | TTOU => DefaultAction::Stop,
        CONT => DefaultAction::Continue,
        CHLD | 32.. => DefaultAction::Ignore,
        _ => DefaultAction::Terminate,
    }
}

/// Whether a process may not ignore or catch `signal` (KILL, STOP).
pub const fn is_uncatchable(signal: u32) -> bool {
    matches!(signal, KILL | STOP)
}

/// The exit status of a process a signal ended (as a shell reports it).
pub const fn terminated_status(signal: u32) -> u32 {
    128 + signal
}

/// The status of a process that did not end within the bound after
/// SAVE_AND_END (or ignores SAVE): procman ended it.
pub const SAVE_TIMED_OUT: u32 = terminated_status(KILL);

/// How long a process has to end after SAVE_AND_END, in CLOCK ticks
/// (100 a second): five seconds.
pub const SAVE_BOUND_TICKS: u64 = 500;

/// SIGNAL's `flags`: `pid` names a process group.
pub const SIGNAL_GROUP: u32 = 1 << 0;

/// SIGNAL_ACTION's actions.
pub mod action {
    /// The default action.
    pub const DEFAULT: u32 = 0;
    /// Ignored: delivered to nobody.
    pub const IGNORE: u32 = 1;
    /// Caught: delivered with THREAD_INTERRUPT to a thread that does not
    /// mask it, whose upcall handler runs it (`userlib::signal`).
    pub const CATCH: u32 = 2;
}

/// WAIT_JOB's states.
pub const JOB_RUNNING: u32 = 0;
/// Ended: `status` is its exit status.
pub const JOB_EXITED: u32 = 1;
/// Stopped: `status` is the signal that stopped it.
pub const JOB_STOPPED: u32 = 2;
/// Continued (only in CHLD's info; WAIT_JOB says running).
pub const JOB_CONTINUED: u32 = 3;

/// SIGNAL's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SignalRequest {
    /// The process, or with [`SIGNAL_GROUP`] the group (0: the caller's own).
    pub pid: u32,
    /// [`SIGNAL_GROUP`] or 0.
    pub flags: u32,
    /// The signal, 1-63 (0: only ask whether it would be allowed).
    pub signal: u32,
    /// Zero.
    pub reserved: u32,
    /// The information word a handler gets.
    pub info: u64,
}

impl SignalRequest {
    /// `signal` to process `pid`.
    pub const fn process(pid: u32, signal: u32, info: u64) -> Self {
        SignalRequest {
            pid,
            flags: 0,
            signal,
            reserved: 0,
            info,
        }
    }

    /// `signal` to every process of group `group` (0: the caller's).
    pub const fn group(group: u32, signal: u32, info: u64) -> Self {
        SignalRequest {
            pid: group,
            flags: SIGNAL_GROUP,
            signal,
            reserved: 0,
            info,
        }
    }
}

/// SIGNAL_ACTION's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SignalActionRequest {
    /// The signal, 1-63.
    pub signal: u32,
    /// One of [`action`].
    pub action: u32,
}

impl SignalActionRequest {
    /// Set `signal`'s disposition to `action`.
    pub const fn new(signal: u32, action: u32) -> Self {
        SignalActionRequest { signal, action }
    }
}

/// SIGNAL_ACTION's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SignalActionReply {
    /// The previous action.
    pub previous: u32,
    /// Zero.
    pub reserved: u32,
}

/// SET_GROUP's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SetGroupRequest {
    /// The process to move (0: the caller).
    pub pid: u32,
    /// The group (0: a new group led by `pid`).
    pub group: u32,
}

impl SetGroupRequest {
    /// Moves `pid` into `group`.
    pub const fn new(pid: u32, group: u32) -> Self {
        SetGroupRequest { pid, group }
    }
}

/// GROUP_OF's, WAIT_JOB's and SAVE_AND_END's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct GroupRequest {
    /// The process (0: the caller, for GROUP_OF).
    pub pid: u32,
    /// Zero.
    pub reserved: u32,
}

impl GroupRequest {
    /// About process `pid`.
    pub const fn new(pid: u32) -> Self {
        GroupRequest { pid, reserved: 0 }
    }
}

/// GROUP_OF's and NEW_SESSION's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct GroupReply {
    /// Its group (the pid of the group's leader).
    pub group: u32,
    /// Its session (the pid of the session's leader).
    pub session: u32,
}

/// WAIT_JOB's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct JobReply {
    /// [`JOB_RUNNING`], [`JOB_EXITED`] or [`JOB_STOPPED`].
    pub state: u32,
    /// The exit status, or the signal that stopped it.
    pub status: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_defaults() {
        assert_eq!(size_of::<SignalRequest>(), 24);
        assert_eq!(size_of::<SignalActionRequest>(), 8);
        assert_eq!(size_of::<SetGroupRequest>(), 8);
        assert_eq!(size_of::<GroupRequest>(), 8);
        assert_eq!(size_of::<GroupReply>(), 8);
        assert_eq!(size_of::<JobReply>(), 8);
        assert_eq!(
            SignalRequest::group(7, INT, 9).as_bytes(),
            b"\x07\0\0\0\x01\0\0\0\x02\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\0"
        );
        assert_eq!(default_action(TSTP), DefaultAction::Stop);
        assert_eq!(default_action(CHLD), DefaultAction::Ignore);
        assert_eq!(default_action(PIPE), DefaultAction::Terminate);
        assert_eq!(default_action(CONT), DefaultAction::Continue);
        assert_eq!(terminated_status(PIPE), 141);
        assert!(is_uncatchable(KILL) && is_uncatchable(STOP) && !is_uncatchable(TSTP));
        for f in [
            SIGNAL,
            SIGNAL_ACTION,
            SET_GROUP,
            NEW_SESSION,
            GROUP_OF,
            WAIT_JOB,
            SAVE_AND_END,
        ] {
            assert_eq!(f.range(), crate::FunctionRange::ProcessManager);
            assert!((0x470..=0x48F).contains(&f.0));
        }
    }
}
