//! Signals as a process sees them (ABI.md §7a.9): a sigaction-like
//! registration that ties procman's disposition (SIGNAL_ACTION) to the
//! kernel's upcall handler ([`crate::upcall`]), masks, kill and raise,
//! process groups and sessions, waiting for a job that may stop, save and
//! end, and a retrying wrapper for calls a handler may interrupt.
//!
//! It must never leave procman catching a signal that this process has no
//! handler for: [`catch`] installs the handler before it asks procman.

use abi::Error;
use abi::signal::{
    GroupReply, GroupRequest, JOB_EXITED, JOB_STOPPED, SetGroupRequest, SignalActionRequest,
    SignalRequest, action,
};
use abi::upcall::mask_how;

use crate::client::CallError;
use crate::procman::PROCMAN;
pub use crate::upcall::{Handler, retry};

/// What a process does with a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The signal's default action (`abi::signal::default_action`).
    Default,
    /// Ignored.
    Ignore,
    /// Caught: the handler runs on a thread that does not mask it.
    Catch,
}

impl Action {
    const fn number(self) -> u32 {
        match self {
            Action::Default => action::DEFAULT,
            Action::Ignore => action::IGNORE,
            Action::Catch => action::CATCH,
        }
    }

    const fn from_number(number: u32) -> Action {
        match number {
            action::IGNORE => Action::Ignore,
            action::CATCH => Action::Catch,
            _ => Action::Default,
        }
    }
}

/// SIGNAL_ACTION: `signal`'s disposition; the previous one. For
/// [`Action::Catch`] use [`catch`], which installs the handler first.
pub fn set_action(signal: u32, what: Action) -> Result<Action, CallError> {
    let reply = PROCMAN.signal_action(SignalActionRequest::new(signal, what.number()))?;
    Ok(Action::from_number(reply.header.previous))
}

/// sigaction: `handler` runs for `signal` on the calling thread (its
/// upcall is registered here; other threads that should take signals call
/// [`crate::upcall::register_thread`]), then procman is told to catch it.
pub fn catch(signal: u32, handler: Handler) -> Result<Action, CallError> {
    crate::upcall::set_handler(signal, Some(handler));
    crate::upcall::register_thread(None).map_err(CallError::Kernel)?;
    set_action(signal, Action::Catch)
}

/// Ignores `signal` (KILL and STOP cannot be: `PM_UNCATCHABLE`).
pub fn ignore(signal: u32) -> Result<Action, CallError> {
    set_action(signal, Action::Ignore)
}

/// Back to `signal`'s default action.
pub fn default(signal: u32) -> Result<Action, CallError> {
    set_action(signal, Action::Default)
}

/// Masks `signals` (a bit each) on the calling thread: caught ones wait,
/// pending, until unmasked. The previous mask.
pub fn block(signals: u64) -> Result<u64, Error> {
    crate::upcall::mask(mask_how::BLOCK, signals).map(|r| r.previous)
}

/// Unmasks `signals` on the calling thread (pending ones are delivered as
/// the call returns). The previous mask.
pub fn unblock(signals: u64) -> Result<u64, Error> {
    crate::upcall::mask(mask_how::UNBLOCK, signals).map(|r| r.previous)
}

/// The bit of `signal` in a mask (0 for a number above 63).
pub use abi::signal::signal_bit as bit;

/// SIGNAL: `signal` to process `pid` with `info`.
pub fn kill(pid: u32, signal: u32) -> Result<(), CallError> {
    PROCMAN.signal(SignalRequest::process(pid, signal, 0))?;
    Ok(())
}

/// SIGNAL with an information word.
pub fn kill_with(pid: u32, signal: u32, info: u64) -> Result<(), CallError> {
    PROCMAN.signal(SignalRequest::process(pid, signal, info))?;
    Ok(())
}

/// SIGNAL to every process of group `group` (0: the caller's).
pub fn kill_group(group: u32, signal: u32) -> Result<(), CallError> {
    PROCMAN.signal(SignalRequest::group(group, signal, 0))?;
    Ok(())
}

/// This process's id (procman's).
pub fn own_pid() -> Result<u32, CallError> {
    let id = crate::kernel::process_id().map_err(CallError::Kernel)?;
    u32::try_from(id).map_err(|_| CallError::Kernel(Error::InvalidArgument))
}

/// raise: `signal` to this process. A caught signal interrupts this very
/// call (its handler has run when it returns): that is success.
pub fn raise(signal: u32) -> Result<(), CallError> {
    match kill(own_pid()?, signal) {
        Err(CallError::Kernel(Error::Interrupted)) => Ok(()),
        other => other,
    }
}

/// SET_GROUP: moves `pid` (0: this process) into `group` (0: a new group
/// it leads).
pub fn set_group(pid: u32, group: u32) -> Result<(), CallError> {
    PROCMAN.set_group(SetGroupRequest::new(pid, group))?;
    Ok(())
}

/// NEW_SESSION: this process leads a new session and group; its
/// (group, session).
pub fn new_session() -> Result<GroupReply, CallError> {
    Ok(PROCMAN.new_session()?.header)
}

/// GROUP_OF: `pid`'s (0: this process's) group and session.
pub fn group_of(pid: u32) -> Result<GroupReply, CallError> {
    Ok(PROCMAN.group_of(GroupRequest::new(pid))?.header)
}

/// How a job ended or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// It ended with this status.
    Exited(u32),
    /// It is stopped by this signal.
    Stopped(u32),
}

/// WAIT_JOB until process `pid` ends or stops (a shell's `waitpid` with
/// WUNTRACED).
pub fn wait_job(pid: u32) -> Result<JobState, CallError> {
    loop {
        let mut reply = PROCMAN.wait_job(GroupRequest::new(pid))?;
        match reply.header.state {
            JOB_EXITED => return Ok(JobState::Exited(reply.header.status)),
            JOB_STOPPED => return Ok(JobState::Stopped(reply.header.status)),
            _ => {}
        }
        let event = reply
            .take_descriptor(0)
            .ok_or(CallError::Kernel(Error::BadSizes))?;
        drop(reply);
        crate::kernel::event_wait(event.descriptor())?;
    }
}

/// WAIT_JOB once, never waiting: how process `pid` stands now (`None`:
/// it runs). A shell's report of its background jobs before a prompt.
pub fn job_now(pid: u32) -> Result<Option<JobState>, CallError> {
    // While it runs, the reply's event (slot 0) is dropped with the reply.
    let reply = PROCMAN.wait_job(GroupRequest::new(pid))?;
    Ok(match reply.header.state {
        JOB_EXITED => Some(JobState::Exited(reply.header.status)),
        JOB_STOPPED => Some(JobState::Stopped(reply.header.status)),
        _ => None,
    })
}

/// SAVE_AND_END: asks process `pid` to save and end (the signal
/// `abi::signal::SAVE`); procman ends it past the bound.
pub fn save_and_end(pid: u32) -> Result<(), CallError> {
    PROCMAN.save_and_end(GroupRequest::new(pid))?;
    Ok(())
}

/// A write found its pipe's readers gone: SIGPIPE to this process (D84).
/// On the host (tests of the rings) there is no procman to ask.
pub(crate) fn broken_pipe() {
    #[cfg(target_os = "none")]
    let _ = raise(abi::signal::PIPE);
}
