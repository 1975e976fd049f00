//! MSG-PSIG: procman's signals, process groups and sessions (ABI.md
//! §7a.9, §9 D70-D72, D83-D85): each default action, catching through
//! `userlib::signal` (the peer's handler), ignoring, KILL and STOP refusing
//! both, group signals reaching every member and nobody else, the rules of
//! groups and sessions, permission refusals that change nothing, WAIT_JOB
//! of a stopped child and the CHLD notice, SIGPIPE both ways, and save and
//! end both ways.
//!
//! A result is observed as registers: arg0 the value (a status, a count, a
//! state) or -1 with arg1 procman's error. A refusal is checked against the
//! kernel's counters and procman's process list before and after.

use abi::kcall::KernelCounters;
use abi::procman::{PROCESS_RUNNING, ProcessEntry, ProcmanError};
use abi::signal::{
    CHLD, CONT, INT, JOB_CONTINUED, JOB_EXITED, JOB_RUNNING, JOB_STOPPED, KILL, PIPE, SAVE, STOP,
    TERM, TSTP, USR1, USR2, action,
};
use abi::{Error, TrapArgs};
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use userlib::client::CallError;
use userlib::kernel;
use userlib::signal::{self, JobState};

use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;

use super::pipe::{counted, refused, registers, wait};

fn failed(what: &str, e: CallError) -> Failed {
    Failed(format!("{what}: {e}"))
}

/// WAIT_JOB once, without waiting: (state, status).
pub(super) fn job_state(pid: u32) -> Result<(u32, u32), Failed> {
    let reply = userlib::procman::PROCMAN
        .wait_job(abi::signal::GroupRequest::new(pid))
        .map_err(|e| failed("WAIT_JOB", CallError::from(e)))?;
    Ok((reply.header.state, reply.header.status))
}

/// What a refusal must leave as it was: the kernel's counters and every
/// process procman lists (state, status), and the groups of `pids`.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    counters: KernelCounters,
    processes: Vec<(u32, u32, u32)>,
    groups: Vec<Result<(u32, u32), u32>>,
}

fn snapshot(context: &mut Context, pids: &[u32]) -> Result<Snapshot, Failed> {
    context.settle();
    let processes = userlib::procman::processes()
        .map_err(|e| failed("PROCESS_LIST", e))?
        .iter()
        .map(|e| (e.pid, e.state, e.status))
        .collect();
    let groups = pids
        .iter()
        .map(|pid| {
            signal::group_of(*pid)
                .map(|g| (g.group, g.session))
                .map_err(|e| e.errno())
        })
        .collect();
    Ok(Snapshot {
        counters: kernel::counters()?,
        processes,
        groups,
    })
}

/// Runs `refuse`, which must be refused, and checks that nothing changed.
fn refusal(
    context: &mut Context,
    pids: &[u32],
    refuse: impl FnOnce() -> Result<(), CallError>,
) -> Outcome {
    let before = snapshot(context, pids)?;
    let outcome = refuse();
    let after = snapshot(context, pids)?;
    if after != before {
        context.fail(format!(
            "the refusal changed something: before {before:?}, after {after:?}"
        ));
    }
    Ok(context.observe(registers(&outcome, |_| 0)))
}

/// A running process of another session that the runner did not start
/// (one procman started at boot).
pub(super) fn stranger() -> Result<ProcessEntry, Failed> {
    let own = signal::own_pid().map_err(|e| failed("PROCESS_ID", e))?;
    userlib::procman::processes()
        .map_err(|e| failed("PROCESS_LIST", e))?
        .into_iter()
        .find(|e| e.state == PROCESS_RUNNING && e.pid != own && e.parent == 0)
        .ok_or_else(|| {
            Failed(alloc::string::String::from(
                "no process of another session runs",
            ))
        })
}

/// Whether `pid` still runs, in procman's list.
pub(super) fn running(pid: u32) -> Result<bool, Failed> {
    Ok(userlib::procman::processes()
        .map_err(|e| failed("PROCESS_LIST", e))?
        .iter()
        .any(|e| e.pid == pid && e.state == PROCESS_RUNNING))
}

/// A signal that must be delivered (SIGNAL succeeds).
fn send(pid: u32, number: u32) -> Result<(), Failed> {
    signal::kill(pid, number).map_err(|e| failed("SIGNAL", e))
}

/// The peer `pid` ends with `number`: its status as WAIT reports it.
fn ended_by(context: &mut Context, number: u32) -> Outcome {
    let (_peer, pid) = context.procman_peer()?;
    send(pid, number)?;
    let status = wait(pid)?;
    Ok(context.observe_value(u64::from(status)))
}

/// A peer whose standard output is a pipe nobody reads any more (the
/// runner's ends closed once the peer holds its own), PIPE at its default.
fn stdout_peer(context: &mut Context) -> Result<(crate::peer::Peer, u32), Failed> {
    let (reader, writer) = userlib::pipe::pipe().map_err(|e| Failed(format!("pipe: {e:?}")))?;
    let streams = [
        abi::stream::StdStream::NONE,
        abi::stream::StdStream::pipe(writer.pipe()),
        abi::stream::StdStream::NONE,
    ];
    let (peer, pid) = context.procman_peer_with_streams(streams)?;
    drop(writer);
    drop(reader);
    context.settle();
    Ok((peer, pid))
}

/// Whether the peer's answer was the stream error PM_BROKEN_PIPE.
fn broken_pipe(answer: &Result<(), Failed>) -> bool {
    matches!(answer, Err(e) if e.0.contains(&format!("{:#x}", ProcmanError::BrokenPipe as u32)))
}

/// The last CHLD the runner's handler took, and how many.
static CHLD_INFO: AtomicU64 = AtomicU64::new(0);
static CHLD_COUNT: AtomicU64 = AtomicU64::new(0);

fn on_chld(_signal: u32, info: u64, _frame: &mut abi::upcall::UpcallFrame) {
    CHLD_INFO.store(info, Ordering::SeqCst);
    CHLD_COUNT.fetch_add(1, Ordering::SeqCst);
}

/// SAVE_AND_END of a peer that set SAVE's action to `action` (with the
/// status its handler ends with), or left it at its default: its status.
fn saved_and_ended(context: &mut Context, action: Option<(u32, u32)>) -> Outcome {
    let (peer, pid) = context.procman_peer()?;
    if let Some((action, status)) = action {
        peer.action(SAVE, action, status)?;
    }
    signal::save_and_end(pid).map_err(|e| failed("SAVE_AND_END", e))?;
    let status = wait(pid)?;
    Ok(context.observe_value(u64::from(status)))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PSIG-001",
        rule: "TERM left at its default ends the process with status 143 (128 + 15)",
        section: "7a.9",
        decisions: &["D71"],
        expect: counted("WAIT's status", 143),
        run: |context| ended_by(context, TERM),
    },
    Case {
        id: "MSG-PSIG-002",
        rule: "KILL ends the process with status 137 (128 + 9)",
        section: "7a.9",
        decisions: &["D71"],
        expect: counted("WAIT's status", 137),
        run: |context| ended_by(context, KILL),
    },
    Case {
        id: "MSG-PSIG-003",
        rule: "INT (^C) left at its default ends the process with status 130",
        section: "7a.9",
        decisions: &["D71"],
        expect: counted("WAIT's status", 130),
        run: |context| ended_by(context, INT),
    },
    Case {
        id: "MSG-PSIG-004",
        rule: "TSTP left at its default stops the process: WAIT_JOB reports it stopped by TSTP (20)",
        section: "7a.9",
        decisions: &["D71", "D83"],
        expect: Expect::registers("WAIT_JOB", JOB_STOPPED as u64, TSTP as u64, 0, 0),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            send(pid, TSTP)?;
            let (state, status) = job_state(pid)?;
            send(pid, CONT)?;
            Ok(context.observe(TrapArgs {
                arg0: u64::from(state),
                arg1: u64::from(status),
                ..TrapArgs::default()
            }))
        },
    },
    Case {
        id: "MSG-PSIG-005",
        rule: "a process STOP stopped does not run: its control door's call is answered only after CONT",
        section: "7a.9",
        decisions: &["D69", "D71"],
        expect: counted("the control call's count", 0),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            send(pid, STOP)?;
            let job = context.job(move || peer.caught(USR1))?;
            context.settle();
            context.check(
                !job.finished(),
                "a stopped process answered its control door",
            );
            send(pid, CONT)?;
            context.settle();
            let answer = job
                .take()
                .unwrap_or_else(|| Err(Failed("no answer".into())))?;
            Ok(context.observe_value(u64::from(answer.0)))
        },
    },
    Case {
        id: "MSG-PSIG-006",
        rule: "CONT resumes a stopped process: WAIT_JOB then reports it running",
        section: "7a.9",
        decisions: &["D71", "D83"],
        expect: Expect::registers("WAIT_JOB after CONT", JOB_RUNNING as u64, 0, 0, 0),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            send(pid, STOP)?;
            send(pid, CONT)?;
            let (state, status) = job_state(pid)?;
            Ok(context.observe(TrapArgs {
                arg0: u64::from(state),
                arg1: u64::from(status),
                ..TrapArgs::default()
            }))
        },
    },
    Case {
        id: "MSG-PSIG-007",
        rule: "a caught signal runs the process's handler (userlib::signal::catch) once, with SIGNAL's information word",
        section: "7a.9",
        decisions: &["D71"],
        expect: Expect::registers("the handler's count and info", 1, 0x5157, 0, 0),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let previous = peer.action(USR1, action::CATCH, 0)?;
            context.check(previous == action::DEFAULT, "USR1 was not at its default");
            signal::kill_with(pid, USR1, 0x5157).map_err(|e| failed("SIGNAL", e))?;
            context.settle();
            let (count, info) = peer.caught(USR1)?;
            Ok(context.observe(TrapArgs {
                arg0: u64::from(count),
                arg1: info,
                ..TrapArgs::default()
            }))
        },
    },
    Case {
        id: "MSG-PSIG-008",
        rule: "an ignored TERM does nothing: the process runs on and answers its control door",
        section: "7a.9",
        decisions: &["D71"],
        expect: counted("the handler's count", 0),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            peer.action(TERM, action::IGNORE, 0)?;
            send(pid, TERM)?;
            context.settle();
            context.check(running(pid)?, "the process ended");
            let (count, _) = peer.caught(TERM)?;
            Ok(context.observe_value(u64::from(count)))
        },
    },
    Case {
        id: "MSG-PSIG-009",
        rule: "SIGNAL_ACTION that would ignore KILL is PM_UNCATCHABLE and changes nothing",
        section: "7a.9",
        decisions: &["D71"],
        expect: refused("SIGNAL_ACTION", ProcmanError::Uncatchable),
        run: |context| {
            refusal(context, &[0], || {
                signal::set_action(KILL, signal::Action::Ignore).map(|_| ())
            })
        },
    },
    Case {
        id: "MSG-PSIG-010",
        rule: "SIGNAL_ACTION that would catch STOP is PM_UNCATCHABLE and changes nothing",
        section: "7a.9",
        decisions: &["D71"],
        expect: refused("SIGNAL_ACTION", ProcmanError::Uncatchable),
        run: |context| {
            refusal(context, &[0], || {
                signal::set_action(STOP, signal::Action::Catch).map(|_| ())
            })
        },
    },
    Case {
        id: "MSG-PSIG-011",
        rule: "SIGNAL_ACTION with an action above CATCH (2) is PM_BAD_ACTION and changes nothing",
        section: "7a.9",
        decisions: &[],
        expect: refused("SIGNAL_ACTION", ProcmanError::BadAction),
        run: |context| {
            refusal(context, &[0], || {
                userlib::procman::PROCMAN
                    .signal_action(abi::signal::SignalActionRequest::new(USR1, 3))
                    .map(|_| ())
                    .map_err(CallError::from)
            })
        },
    },
    Case {
        id: "MSG-PSIG-012",
        rule: "SIGNAL with number 64 is PM_NO_SUCH_SIGNAL and changes nothing",
        section: "7a.9",
        decisions: &[],
        expect: refused("SIGNAL", ProcmanError::NoSuchSignal),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            refusal(context, &[pid], || signal::kill(pid, 64))
        },
    },
    Case {
        id: "MSG-PSIG-013",
        rule: "a group SIGNAL reaches every member of the group and nobody else",
        section: "7a.9",
        decisions: &["D70", "D72"],
        expect: counted("the second member's status", 143),
        run: |context| {
            let (_a, first) = context.procman_peer()?;
            let (_b, second) = context.procman_peer()?;
            let (_c, outsider) = context.procman_peer()?;
            signal::set_group(first, 0).map_err(|e| failed("SET_GROUP", e))?;
            signal::set_group(second, first).map_err(|e| failed("SET_GROUP", e))?;
            signal::kill_group(first, TERM).map_err(|e| failed("group SIGNAL", e))?;
            context.check(
                wait(first)? == 143,
                "the group's leader did not end with 143",
            );
            let status = wait(second)?;
            context.settle();
            context.check(running(outsider)?, "a process outside the group ended");
            context.check(
                running(signal::own_pid().map_err(|e| failed("id", e))?)?,
                "?",
            );
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-PSIG-014",
        rule: "SET_GROUP of a process that is neither the caller nor its child is PM_GROUP_DENIED and changes nothing",
        section: "7a.9",
        decisions: &["D72"],
        expect: refused("SET_GROUP", ProcmanError::GroupDenied),
        run: |context| {
            let other = stranger()?.pid;
            refusal(context, &[other], || signal::set_group(other, 0))
        },
    },
    Case {
        id: "MSG-PSIG-015",
        rule: "NEW_SESSION by a group leader (the runner, which procman started) is PM_SESSION_LEADER and changes nothing",
        section: "7a.9",
        decisions: &["D72"],
        expect: refused("NEW_SESSION", ProcmanError::SessionLeader),
        run: |context| refusal(context, &[0], || signal::new_session().map(|_| ())),
    },
    Case {
        id: "MSG-PSIG-016",
        rule: "SET_GROUP into a group with no live member in the session is PM_NO_SUCH_GROUP and changes nothing",
        section: "7a.9",
        decisions: &["D72"],
        expect: refused("SET_GROUP", ProcmanError::NoSuchGroup),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            refusal(context, &[pid], || signal::set_group(pid, 0xFFFF_0000))
        },
    },
    Case {
        id: "MSG-PSIG-017",
        rule: "SET_GROUP of a session leader (the caller itself) is PM_SESSION_LEADER and changes nothing",
        section: "7a.9",
        decisions: &["D72"],
        expect: refused("SET_GROUP", ProcmanError::SessionLeader),
        run: |context| refusal(context, &[0], || signal::set_group(0, 0)),
    },
    Case {
        id: "MSG-PSIG-018",
        rule: "SIGNAL to a process of another session that is not a descendant is PM_SIGNAL_DENIED and changes nothing",
        section: "7a.9",
        decisions: &["D70"],
        expect: refused("SIGNAL", ProcmanError::SignalDenied),
        run: |context| {
            let other = stranger()?.pid;
            refusal(context, &[other], || signal::kill(other, TERM))
        },
    },
    Case {
        id: "MSG-PSIG-019",
        rule: "a group SIGNAL to a group out of reach is PM_SIGNAL_DENIED and reaches nobody",
        section: "7a.9",
        decisions: &["D70"],
        expect: refused("group SIGNAL", ProcmanError::SignalDenied),
        run: |context| {
            let other = stranger()?.pid;
            let group = signal::group_of(other)
                .map_err(|e| failed("GROUP_OF", e))?
                .group;
            refusal(context, &[other], || signal::kill_group(group, TERM))
        },
    },
    Case {
        id: "MSG-PSIG-020",
        rule: "a SPAWNed child is in its parent's group and session (GROUP_OF)",
        section: "7a.9",
        decisions: &["D72"],
        expect: counted("the child's group equals the parent's, and its session", 1),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            let own = signal::group_of(0).map_err(|e| failed("GROUP_OF", e))?;
            let child = signal::group_of(pid).map_err(|e| failed("GROUP_OF", e))?;
            let own_pid = signal::own_pid().map_err(|e| failed("id", e))?;
            context.check(own.group == own_pid, "the runner does not lead its group");
            Ok(context.observe_value(u64::from(child == own)))
        },
    },
    Case {
        id: "MSG-PSIG-021",
        rule: "a waiter blocked in WAIT_JOB wakes when the child stops, and learns the stopping signal",
        section: "7a.9",
        decisions: &["D83"],
        expect: Expect::registers("wait_job", JOB_STOPPED as u64, TSTP as u64, 0, 0),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            let job = context.job(move || signal::wait_job(pid))?;
            context.settle();
            context.check(!job.finished(), "WAIT_JOB of a running child returned");
            send(pid, TSTP)?;
            context.settle();
            let state = job.take();
            send(pid, CONT)?;
            let observed = match state {
                Some(Ok(JobState::Stopped(signal))) => TrapArgs {
                    arg0: u64::from(JOB_STOPPED),
                    arg1: u64::from(signal),
                    ..TrapArgs::default()
                },
                Some(Ok(JobState::Exited(status))) => TrapArgs {
                    arg0: u64::from(JOB_EXITED),
                    arg1: u64::from(status),
                    ..TrapArgs::default()
                },
                Some(Err(e)) => registers::<(), _>(&Err(e), |_| 0),
                None => return Err(Failed("the waiter did not wake".into())),
            };
            Ok(context.observe(observed))
        },
    },
    Case {
        id: "MSG-PSIG-022",
        rule: "a parent that catches CHLD learns a child's end: info is the child's pid | 1 << 32",
        section: "7a.9",
        decisions: &["D83"],
        expect: counted("the CHLD info matches the child's end", 1),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            // The main thread masks CHLD; a waiting thread takes it.
            let previous = signal::block(signal::bit(CHLD))?;
            userlib::upcall::set_handler(CHLD, Some(on_chld));
            let event = context.event()?;
            let before = CHLD_COUNT.load(Ordering::SeqCst);
            let waiter = context.job(move || {
                let _ = userlib::upcall::register_thread(None);
                let _ = signal::unblock(signal::bit(CHLD));
                kernel::event_wait(event)
            })?;
            context.settle();
            let caught = signal::set_action(CHLD, signal::Action::Catch);
            if let Err(e) = caught {
                let _ = signal::unblock(signal::bit(CHLD) & !previous);
                return Err(failed("SIGNAL_ACTION", e));
            }
            peer.exit()?;
            context.settle();
            let _ = wait(pid)?;
            let _ = signal::set_action(CHLD, signal::Action::Default);
            let _ = signal::unblock(signal::bit(CHLD) & !previous);
            let woke = waiter.take();
            context.check(
                woke == Some(Err(Error::Interrupted)),
                "the waiting thread was not interrupted by CHLD",
            );
            let count = CHLD_COUNT.load(Ordering::SeqCst) - before;
            context.check(count == 1, &format!("CHLD was caught {count} times"));
            let info = CHLD_INFO.load(Ordering::SeqCst);
            let expected = u64::from(pid) | u64::from(JOB_EXITED) << 32;
            Ok(context.observe_value(u64::from(info == expected)))
        },
    },
    Case {
        id: "MSG-PSIG-023",
        rule: "a write to standard output, a pipe with no reader, raises PIPE on the writer, which by default ends it with status 141",
        section: "7a.9",
        decisions: &["D84"],
        expect: counted("the writer's status", 141),
        run: |context| {
            let (peer, pid) = stdout_peer(context)?;
            // The peer ends on its write: the control call fails.
            let _ = peer.stdout_write();
            let status = wait(pid)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-PSIG-024",
        rule: "with PIPE ignored, a write to standard output with no reader just fails with PM_BROKEN_PIPE",
        section: "7a.9",
        decisions: &["D84"],
        expect: counted(
            "the write failed with PM_BROKEN_PIPE and the writer runs",
            1,
        ),
        run: |context| {
            let (peer, pid) = stdout_peer(context)?;
            peer.action(PIPE, action::IGNORE, 0)?;
            let answer = peer.stdout_write();
            context.settle();
            let broken = broken_pipe(&answer);
            context.check(
                broken,
                &format!("the write did not fail with PM_BROKEN_PIPE: {answer:?}"),
            );
            Ok(context.observe_value(u64::from(broken && running(pid)?)))
        },
    },
    Case {
        id: "MSG-PSIG-025",
        rule: "with PIPE caught, the writer's handler runs once and the write fails with PM_BROKEN_PIPE",
        section: "7a.9",
        decisions: &["D84"],
        expect: counted("the handler's count", 1),
        run: |context| {
            let (peer, _pid) = stdout_peer(context)?;
            peer.action(PIPE, action::CATCH, 0)?;
            let answer = peer.stdout_write();
            context.check(
                broken_pipe(&answer),
                &format!("the peer's write did not fail with PM_BROKEN_PIPE: {answer:?}"),
            );
            let (count, _) = peer.caught(PIPE)?;
            Ok(context.observe_value(u64::from(count)))
        },
    },
    Case {
        id: "MSG-PSIG-026",
        rule: "SAVE_AND_END of a process that catches SAVE lets its handler end it with its own status",
        section: "7a.9",
        decisions: &["D85"],
        expect: counted("WAIT's status", 42),
        run: |context| saved_and_ended(context, Some((action::CATCH, 42))),
    },
    Case {
        id: "MSG-PSIG-027",
        rule: "SAVE_AND_END of a process that ignores SAVE ends it at once with SAVE_TIMED_OUT (137)",
        section: "7a.9",
        decisions: &["D85"],
        expect: counted("WAIT's status", 137),
        run: |context| saved_and_ended(context, Some((action::IGNORE, 0))),
    },
    Case {
        id: "MSG-PSIG-028",
        rule: "SAVE_AND_END of a process that leaves SAVE at its default ends it with 158 (128 + 30)",
        section: "7a.9",
        decisions: &["D85"],
        expect: counted("WAIT's status", 158),
        run: |context| saved_and_ended(context, None),
    },
    Case {
        id: "MSG-PSIG-029",
        rule: "SAVE_AND_END of a process out of reach is PM_SIGNAL_DENIED and changes nothing",
        section: "7a.9",
        decisions: &["D70", "D85"],
        expect: refused("SAVE_AND_END", ProcmanError::SignalDenied),
        run: |context| {
            let other = stranger()?.pid;
            refusal(context, &[other], || signal::save_and_end(other))
        },
    },
    Case {
        id: "MSG-PSIG-030",
        rule: "SIGNAL 0 only checks: it succeeds and the process runs on",
        section: "7a.9",
        decisions: &["D70"],
        expect: counted("SIGNAL 0", 0),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            let outcome = signal::kill(pid, 0);
            context.settle();
            context.check(running(pid)?, "signal 0 ended the process");
            Ok(context.observe(registers(&outcome, |_| 0)))
        },
    },
    Case {
        id: "MSG-PSIG-031",
        rule: "a caught signal sent to a stopped process runs its handler only after CONT",
        section: "7a.9",
        decisions: &["D69", "D71"],
        expect: counted("the handler's count after CONT", 1),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            peer.action(USR2, action::CATCH, 0)?;
            send(pid, TSTP)?;
            send(pid, USR2)?;
            context.settle();
            send(pid, CONT)?;
            context.settle();
            let (count, _) = peer.caught(USR2)?;
            Ok(context.observe_value(u64::from(count)))
        },
    },
    Case {
        id: "MSG-PSIG-032",
        rule: "a parent that catches CHLD learns a child's stop and its continue: info is the child's pid | 2 << 32, then pid | 3 << 32",
        section: "7a.9",
        decisions: &["D83"],
        expect: counted("both CHLD infos match", 1),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            // The main thread masks CHLD; a waiting thread takes each one.
            let previous = signal::block(signal::bit(CHLD))?;
            userlib::upcall::set_handler(CHLD, Some(on_chld));
            let before = CHLD_COUNT.load(Ordering::SeqCst);
            let caught = signal::set_action(CHLD, signal::Action::Catch);
            if let Err(e) = caught {
                let _ = signal::unblock(signal::bit(CHLD) & !previous);
                return Err(failed("SIGNAL_ACTION", e));
            }
            let mut infos = Vec::new();
            for (number, state) in [(STOP, JOB_STOPPED), (CONT, JOB_CONTINUED)] {
                let event = context.event()?;
                let waiter = context.job(move || {
                    let _ = userlib::upcall::register_thread(None);
                    let _ = signal::unblock(signal::bit(CHLD));
                    kernel::event_wait(event)
                })?;
                context.settle();
                send(pid, number)?;
                context.settle();
                context.check(
                    waiter.take() == Some(Err(Error::Interrupted)),
                    &format!(
                        "the waiting thread was not interrupted by CHLD after signal {number}"
                    ),
                );
                infos.push((
                    CHLD_INFO.load(Ordering::SeqCst),
                    u64::from(pid) | u64::from(state) << 32,
                ));
            }
            let _ = signal::set_action(CHLD, signal::Action::Default);
            let _ = signal::unblock(signal::bit(CHLD) & !previous);
            peer.exit()?;
            let _ = wait(pid)?;
            let count = CHLD_COUNT.load(Ordering::SeqCst) - before;
            context.check(
                count == 2,
                &format!("CHLD was caught {count} times, not twice"),
            );
            for (info, expected) in &infos {
                context.check(
                    info == expected,
                    &format!("CHLD's info {info:#x}, not {expected:#x}"),
                );
            }
            Ok(context.observe_value(u64::from(
                infos.iter().all(|(info, expected)| info == expected),
            )))
        },
    },
    Case {
        id: "MSG-PSIG-033",
        rule: "SAVE_AND_END of a process whose SAVE handler does not end it: the handler runs and the process lives on, until procman ends it past SAVE_BOUND_TICKS with SAVE_TIMED_OUT (137)",
        section: "7a.9",
        decisions: &["D85"],
        expect: counted("WAIT's status", 137),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            // Status 0: the handler counts SAVE and returns.
            peer.action(SAVE, action::CATCH, 0)?;
            signal::save_and_end(pid).map_err(|e| failed("SAVE_AND_END", e))?;
            // Alive and answering after the request (an ignorer would be
            // gone at once), its handler run once: the end can only come
            // from the bound.
            let (caught, _) = peer.caught(SAVE)?;
            if caught != 1 {
                return Err(Failed(format!(
                    "the SAVE handler ran {caught} times before the bound, not once"
                )));
            }
            let status = wait(pid)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
];
