//! MSG-JOB: job control (ABI.md §7a.7 and §7a.9, decisions D74-D76,
//! D83, D86-D89): a terminal's foreground process group, what ^C and ^Z
//! typed at a standalone pty server do to it (SIGINT and SIGTSTP through
//! procman's group SIGNAL), and the procman steps a shell's `fg`, `bg` and
//! `kill %N` take (CONT to a group, TERM then CONT to a stopped one), with
//! a process stopping itself.
//!
//! Each case starts its own pty server (`pty::terminal`, the runner its
//! slave) and peers: SPAWNed by the runner, so they are in the runner's
//! session, as is the pty server, which may therefore signal them (D70);
//! each peer leads a group of its own (SET_GROUP, as the shell makes a
//! job's group). A result is registers: arg0 a value, or -1 with arg1 the
//! error.

use abi::TrapArgs;
use abi::pty::{ForegroundGroup, errors};
use abi::signal::{CONT, INT, JOB_RUNNING, JOB_STOPPED, STOP, TERM, TSTP, action};
use alloc::format;
use userlib::signal;

use super::pipe::{counted, wait};
use super::psig::{job_state, running};
use super::pty::{Terminal, refused, registers, terminal};
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::Expect;
use crate::peer::Peer;

/// A peer leading a group of its own (its pid), as the shell puts a job.
fn job_peer(context: &mut Context) -> Result<(Peer, u32), Failed> {
    let (peer, pid) = context.procman_peer()?;
    signal::set_group(pid, 0).map_err(|e| Failed(format!("SET_GROUP {pid}: {e}")))?;
    Ok((peer, pid))
}

/// Makes `group` the terminal's foreground group.
fn foreground(terminal: &Terminal, group: u32) -> Result<(), Failed> {
    terminal
        .pair
        .set_foreground(ForegroundGroup::new(group))
        .map(drop)
        .map_err(|e| Failed(format!("PTY_SET_FOREGROUND {group}: {e:?}")))
}

/// A group SIGNAL that must be delivered.
fn send_group(group: u32, number: u32) -> Result<(), Failed> {
    signal::kill_group(group, number).map_err(|e| Failed(format!("group SIGNAL {number}: {e}")))
}

/// Checks that the master shows `echo` (a control key's) next.
fn echoed(context: &mut Context, terminal: &Terminal, echo: &[u8]) -> Result<(), Failed> {
    let shown = terminal.master_output(echo.len())?;
    context.check(shown == echo, &format!("the echo was {shown:?}"));
    Ok(())
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-JOB-001",
        rule: "^C sends INT to the terminal's foreground group: a child leading that group ends with 130 (128 + INT), a child of another group runs on; signalled 1, interrupts 1, ^C echoed",
        section: "7a.7",
        decisions: &["D86", "D87"],
        expect: counted("the foreground child's status", 130),
        run: |context| {
            let terminal = terminal(context)?;
            let (_job, pid) = job_peer(context)?;
            let (_other, bystander) = job_peer(context)?;
            foreground(&terminal, pid)?;
            terminal.type_bytes(b"\x03")?;
            let status = wait(pid)?;
            echoed(context, &terminal, b"^C\r\n")?;
            let counters = terminal.counters()?;
            context.check(
                counters.interrupts == 1 && counters.signalled == 1 && counters.signal_refused == 0,
                &format!("the counters: {counters:?}"),
            );
            context.check(running(bystander)?, "^C reached a process of another group");
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-JOB-002",
        rule: "^Z sends TSTP to the foreground group: WAIT_JOB answers stopped by TSTP; CONT to the group (the shell's fg and bg) resumes it and WAIT_JOB answers running; suspends 1, signalled 1, ^Z echoed",
        section: "7a.7",
        decisions: &["D75", "D76", "D87", "D88"],
        expect: Expect::registers("WAIT_JOB after ^Z", JOB_STOPPED as u64, TSTP as u64, 0, 0),
        run: |context| {
            let terminal = terminal(context)?;
            let (_job, pid) = job_peer(context)?;
            foreground(&terminal, pid)?;
            terminal.type_bytes(b"\x1a")?;
            let (state, status) = job_state(pid)?;
            echoed(context, &terminal, b"^Z\r\n")?;
            let counters = terminal.counters()?;
            context.check(
                counters.suspends == 1 && counters.signalled == 1,
                &format!("the counters: {counters:?}"),
            );
            send_group(pid, CONT)?;
            let (resumed, _) = job_state(pid)?;
            context.check(
                resumed == JOB_RUNNING,
                &format!("after CONT WAIT_JOB answered state {resumed}"),
            );
            Ok(context.observe(TrapArgs {
                arg0: u64::from(state),
                arg1: u64::from(status),
                ..TrapArgs::default()
            }))
        },
    },
    Case {
        id: "MSG-JOB-003",
        rule: "a foreground process that catches INT runs its handler once on ^C and lives",
        section: "7a.7",
        decisions: &["D71", "D87"],
        expect: counted("the handler's count", 1),
        run: |context| {
            let terminal = terminal(context)?;
            let (peer, pid) = job_peer(context)?;
            peer.action(INT, action::CATCH, 0)?;
            foreground(&terminal, pid)?;
            terminal.type_bytes(b"\x03")?;
            echoed(context, &terminal, b"^C\r\n")?;
            context.settle();
            let (count, _) = peer.caught(INT)?;
            context.check(running(pid)?, "the process that catches INT ended");
            Ok(context.observe_value(u64::from(count)))
        },
    },
    Case {
        id: "MSG-JOB-004",
        rule: "with the foreground group set and then cleared (group 0), ^C signals nobody: the former group runs on, interrupts 1, signalled 0, signal_refused 0",
        section: "7a.7",
        decisions: &["D86"],
        expect: counted("signalled + signal_refused", 0),
        run: |context| {
            let terminal = terminal(context)?;
            let (_job, pid) = job_peer(context)?;
            foreground(&terminal, pid)?;
            foreground(&terminal, 0)?;
            terminal.type_bytes(b"\x03")?;
            echoed(context, &terminal, b"^C\r\n")?;
            context.settle();
            let counters = terminal.counters()?;
            context.check(
                counters.interrupts == 1,
                &format!("the counters: {counters:?}"),
            );
            context.check(running(pid)?, "^C with no foreground group ended a process");
            Ok(context.observe_value(u64::from(counters.signalled + counters.signal_refused)))
        },
    },
    Case {
        id: "MSG-JOB-005",
        rule: "a process that stops itself (SIGNAL STOP to its own pid) is stopped: WAIT_JOB answers stopped by STOP and its SIGNAL does not return until its parent sends CONT, then returns 0",
        section: "7a.9",
        decisions: &["D83"],
        expect: Expect::registers(
            "WAIT_JOB of the self-stopped",
            JOB_STOPPED as u64,
            STOP as u64,
            0,
            0,
        ),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let raised = context.job(move || peer.raise(STOP))?;
            context.settle();
            let (state, status) = job_state(pid)?;
            context.check(!raised.finished(), "the stopped process's SIGNAL returned");
            signal::kill(pid, CONT).map_err(|e| Failed(format!("SIGNAL CONT: {e}")))?;
            context.settle();
            let answer = raised.take();
            context.check(
                matches!(answer, Some(Ok(registers)) if registers.arg0 == 0),
                &format!("after CONT the raise answered {answer:?}"),
            );
            Ok(context.observe(TrapArgs {
                arg0: u64::from(state),
                arg1: u64::from(status),
                ..TrapArgs::default()
            }))
        },
    },
    Case {
        id: "MSG-JOB-006",
        rule: "TERM then CONT to a stopped group (the shell's kill %N of a stopped job) ends it with 143 (128 + TERM)",
        section: "7a.9",
        decisions: &["D89"],
        expect: counted("the job's status", 143),
        run: |context| {
            let (_job, pid) = job_peer(context)?;
            send_group(pid, TSTP)?;
            let (state, _) = job_state(pid)?;
            context.check(
                state == JOB_STOPPED,
                &format!("after TSTP the state is {state}"),
            );
            send_group(pid, TERM)?;
            // The TERM may have ended the group already: then CONT finds
            // no live member, which the shell does not report either.
            let _ = signal::kill_group(pid, CONT);
            let status = wait(pid)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-JOB-007",
        rule: "PTY_SET_FOREGROUND of a group whose last member ended is PTY_BAD_FOREGROUND and leaves the foreground group as it was",
        section: "7a.7",
        decisions: &["D86"],
        expect: refused("PTY_SET_FOREGROUND", errors::BAD_FOREGROUND),
        run: |context| {
            let terminal = terminal(context)?;
            let (_live, group) = job_peer(context)?;
            foreground(&terminal, group)?;
            let (peer, pid) = job_peer(context)?;
            peer.exit()?;
            wait(pid)?;
            let outcome = terminal.pair.set_foreground(ForegroundGroup::new(pid));
            let now = terminal.pair.get_foreground().map(|r| r.header);
            context.check(
                now == Ok(ForegroundGroup::new(group)),
                &format!("the refusal changed the foreground group: {now:?}"),
            );
            Ok(context.observe(registers(&outcome)))
        },
    },
    Case {
        id: "MSG-JOB-008",
        rule: "^C reaches every member of the foreground group: two children in one group (the second moved into the first's, as the shell builds a pipeline's group) both end with 130",
        section: "7a.7",
        decisions: &["D87", "D88"],
        expect: counted("both statuses are 130", 1),
        run: |context| {
            let terminal = terminal(context)?;
            let (_first, leader) = job_peer(context)?;
            let (_second, member) = context.procman_peer()?;
            signal::set_group(member, leader)
                .map_err(|e| Failed(format!("SET_GROUP {member} {leader}: {e}")))?;
            foreground(&terminal, leader)?;
            terminal.type_bytes(b"\x03")?;
            let statuses = [wait(leader)?, wait(member)?];
            context.check(
                statuses == [130, 130],
                &format!("the statuses: {statuses:?}"),
            );
            Ok(context.observe_value(u64::from(statuses == [130, 130])))
        },
    },
];
