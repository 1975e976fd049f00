//! MSG-PTY: pseudo terminals (ABI.md §7a.7, decisions D49-D51, D74,
//! D86, D87): a pair's slave is standard streams (two pipes), its master
//! the door; canonical and raw input, echo, output processing, the window
//! size, the foreground group, ^C refused for a group out of reach, ^D's
//! end of file, the master's death, and every refusal (nothing changes).
//! What ^C and ^Z do to a group the server may signal is area JOB's.
//!
//! Each case starts its own standalone pty server (`pty`), handing it the
//! owner reference of a door the runner made, so no name is shared between
//! cases; the runner's client reference is the manager reference, which
//! PTY_OPEN turns into the pair's. The runner is the slave: it opens the
//! slave's pipe ends granted to it. The server is KILLed and waited for
//! when the case ends. Results are registers: arg0 a count or value, or -1
//! with arg1 the error number.

use abi::procman::ProcmanError;
use abi::pty::{
    DEFAULT_WINDOW, ForegroundGroup, MAX_MASTER_WRITE, MODE_ALL, MODE_DEFAULT, PtyCounters,
    PtyMode, PtyOpenReply, PtyOpenRequest, WindowSize, errors,
};
use abi::{DescriptorSlot, Rights, TrapArgs};
use alloc::format;
use alloc::vec::Vec;
use pty::service::PTY_SECURITY_TYPE;
use pty::{PtyClient, PtyError};
use userlib::interface::ClientError;
use userlib::pipe::{PipeReader, PipeWriter};
use userlib::stream::StreamError;
use userlib::{OwnedDescriptor, kernel, procman};

use super::pipe::{counted, fail, ok, read_exactly};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;

/// A pty server of the case's own, one pair opened on it, the runner its
/// slave.
pub(super) struct Terminal {
    server: u32,
    pub(super) pair: PtyClient,
    opened: PtyOpenReply,
    ready: OwnedDescriptor,
    /// The slave's stdin (the input pipe's read end).
    pub(super) stdin: PipeReader,
    /// The slave's stdout (the output pipe's write end).
    pub(super) stdout: Option<PipeWriter>,
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Ends every pair of the case's server; its door goes with it.
        if procman::kill(self.server).is_ok() {
            let _ = procman::wait(self.server);
        }
        let _ = kernel::close(*self.pair.transport());
    }
}

fn client_fail(what: &str, error: ClientError<PtyError>) -> Failed {
    Failed(format!("{what}: {error:?}"))
}

/// A manager reference to a new pty server's door, and the server's pid.
fn server(context: &mut Context) -> Result<(PtyClient, u32), Failed> {
    let door = procman::create_object(None, false, PTY_SECURITY_TYPE)
        .map_err(|e| Failed(format!("CREATE_OBJECT: {e}")))?;
    let owner = door.owner.into_raw();
    let pid = procman::spawn(
        "pty",
        &[],
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    )
    .map_err(|e| Failed(format!("SPAWN pty: {e}")))?;
    let client = door.client.into_raw();
    context.settle();
    Ok((PtyClient::new(client), pid))
}

/// A pty server with one pair whose slave is the runner.
pub(super) fn terminal(context: &mut Context) -> Result<Terminal, Failed> {
    let (pair, server) = server(context)?;
    let own = kernel::process_id().map_err(|e| Failed(format!("PROCESS_ID: {e}")))? as u32;
    let mut reply = match pair.open(PtyOpenRequest::new(own)) {
        Ok(reply) => reply,
        Err(error) => {
            let _ = procman::kill(server);
            return Err(client_fail("PTY_OPEN", error));
        }
    };
    let opened = reply.header;
    let ready = reply
        .take_descriptor(0)
        .ok_or_else(|| Failed("PTY_OPEN gave no event".into()))?;
    let stdin = PipeReader::open(opened.input_pipe).map_err(|e| fail("PIPE_OPEN stdin", e))?;
    let stdout = PipeWriter::open(opened.output_pipe).map_err(|e| fail("PIPE_OPEN stdout", e))?;
    Ok(Terminal {
        server,
        pair,
        opened,
        ready,
        stdin,
        stdout: Some(stdout),
    })
}

impl Terminal {
    /// Types `bytes` at the master.
    pub(super) fn type_bytes(&self, bytes: &[u8]) -> Result<(), Failed> {
        self.pair
            .master_write(bytes)
            .map(drop)
            .map_err(|e| client_fail("PTY_MASTER_WRITE", e))
    }

    /// What the master reads, waiting on the pair's event until `length`
    /// bytes came (or the output ended).
    pub(super) fn master_output(&self, length: usize) -> Result<Vec<u8>, Failed> {
        let mut all = Vec::new();
        while all.len() < length {
            let reply = self
                .pair
                .master_read()
                .map_err(|e| client_fail("PTY_MASTER_READ", e))?;
            all.extend_from_slice(reply.bytes());
            if reply.header.ended != 0 {
                break;
            }
            if all.len() < length {
                kernel::event_wait(self.ready.descriptor())
                    .map_err(|e| Failed(format!("WAIT: {e}")))?;
            }
        }
        Ok(all)
    }

    /// What the master reads now, without waiting.
    fn master_now(&self) -> Result<Vec<u8>, Failed> {
        self.pair
            .master_read()
            .map(|reply| reply.bytes().to_vec())
            .map_err(|e| client_fail("PTY_MASTER_READ", e))
    }

    pub(super) fn counters(&self) -> Result<PtyCounters, Failed> {
        self.pair
            .counters()
            .map(|reply| reply.header)
            .map_err(|e| client_fail("PTY_COUNTERS", e))
    }
}

/// A pty call's result as registers.
pub(super) fn registers<T>(outcome: &Result<T, ClientError<PtyError>>) -> TrapArgs {
    match outcome {
        Ok(_) => TrapArgs::default(),
        Err(e) => TrapArgs {
            arg0: u64::from(u32::MAX),
            arg1: u64::from(e.errno()),
            ..TrapArgs::default()
        },
    }
}

pub(super) const fn refused(what: &'static str, error: u32) -> Expect {
    Expect::registers(what, u32::MAX as u64, error as u64, 0, 0)
}

fn value(value: u64) -> TrapArgs {
    TrapArgs {
        arg0: value,
        ..TrapArgs::default()
    }
}

/// What a refusal must leave as it was: the pair's mode, window,
/// foreground job and counters.
fn pair_state(
    terminal: &Terminal,
) -> Result<(PtyMode, WindowSize, ForegroundGroup, PtyCounters), Failed> {
    let mode = terminal
        .pair
        .get_mode()
        .map_err(|e| client_fail("PTY_GET_MODE", e))?
        .header;
    let window = terminal
        .pair
        .get_window()
        .map_err(|e| client_fail("PTY_GET_WINDOW", e))?
        .header;
    let job = terminal
        .pair
        .get_foreground()
        .map_err(|e| client_fail("PTY_GET_FOREGROUND", e))?
        .header;
    Ok((mode, window, job, terminal.counters()?))
}

/// `call` refused, observed with the pair's state checked unchanged.
fn refusal<T>(
    context: &mut Context,
    terminal: &Terminal,
    call: impl Fn(&Terminal) -> Result<T, ClientError<PtyError>>,
) -> Outcome {
    let before = pair_state(terminal)?;
    let outcome = call(terminal);
    let after = pair_state(terminal)?;
    context.check(
        before == after,
        &format!("the refusal changed the pair: before {before:?}, after {after:?}"),
    );
    Ok(context.observe(registers(&outcome)))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PTY-001",
        rule: "PTY_OPEN on a manager reference makes pair 0: two distinct pipes whose slave ends the named process opens, one event; the pair starts canonical with echo, signals and CR LF output, a 24x80 window and no foreground job",
        section: "7a.7",
        decisions: &["D49", "D50"],
        expect: counted("the pair's number", 0),
        run: |context| {
            let terminal = terminal(context)?;
            let opened = terminal.opened;
            context.check(
                opened.input_pipe != 0
                    && opened.output_pipe != 0
                    && opened.input_pipe != opened.output_pipe
                    && opened.reserved == 0,
                &format!("the pipes: {opened:?}"),
            );
            let (mode, window, job, _) = pair_state(&terminal)?;
            context.check(mode.flags == MODE_DEFAULT, &format!("mode {mode:?}"));
            context.check(window == DEFAULT_WINDOW, &format!("window {window:?}"));
            context.check(job == ForegroundGroup::NONE, &format!("job {job:?}"));
            Ok(context.observe(value(u64::from(opened.pair))))
        },
    },
    Case {
        id: "MSG-PTY-002",
        rule: "canonical input: the slave reads a line only once it ends, with backspace applied (\"ab DEL c CR\" reads \"ac\\n\"); the master reads the echo with the erase and CR LF",
        section: "7a.7",
        decisions: &["D50"],
        expect: counted("the bytes the slave read", 3),
        run: |context| {
            let terminal = terminal(context)?;
            terminal.type_bytes(b"ab\x7fc")?;
            context.check(
                terminal.stdin.held() == 0,
                "the slave got bytes before the line ended",
            );
            terminal.type_bytes(b"\r")?;
            let line = read_exactly(&terminal.stdin, 3)?;
            context.check(line == b"ac\n", &format!("the slave read {line:?}"));
            let echo = terminal.master_output(8)?;
            context.check(
                echo == b"ab\x08 \x08c\r\n",
                &format!("the echo was {echo:?}"),
            );
            Ok(context.observe(value(line.len() as u64)))
        },
    },
    Case {
        id: "MSG-PTY-003",
        rule: "output processing: what the slave writes to stdout reaches the master in order with each \\n as \\r\\n",
        section: "7a.7",
        decisions: &["D50", "D51"],
        expect: counted("the bytes the master read", 7),
        run: |context| {
            let terminal = terminal(context)?;
            let stdout = terminal.stdout.as_ref().ok_or(Failed("no stdout".into()))?;
            stdout.write_all(b"x\n").map_err(|e| fail("write", e))?;
            stdout.write_all(b"yz\n").map_err(|e| fail("write", e))?;
            let shown = terminal.master_output(7)?;
            context.check(
                shown == b"x\r\nyz\r\n",
                &format!("the master read {shown:?}"),
            );
            Ok(context.observe(value(shown.len() as u64)))
        },
    },
    Case {
        id: "MSG-PTY-004",
        rule: "raw mode (PTY_SET_MODE 0): every byte typed reaches the slave at once and as it is (^C and CR included), nothing is echoed, and PTY_GET_MODE reads 0",
        section: "7a.7",
        decisions: &["D50"],
        expect: counted("the bytes the slave read", 3),
        run: |context| {
            let terminal = terminal(context)?;
            terminal
                .pair
                .set_mode(PtyMode::new(0))
                .map_err(|e| client_fail("PTY_SET_MODE", e))?;
            terminal.type_bytes(b"\x03a\r")?;
            let bytes = read_exactly(&terminal.stdin, 3)?;
            context.check(bytes == b"\x03a\r", &format!("the slave read {bytes:?}"));
            let echo = terminal.master_now()?;
            context.check(echo.is_empty(), &format!("raw mode echoed {echo:?}"));
            let mode = terminal.pair.get_mode().map(|r| r.header.flags);
            context.check(mode == Ok(0), &format!("PTY_GET_MODE gave {mode:?}"));
            let counters = terminal.counters()?;
            context.check(counters.interrupts == 0, "^C counted in raw mode");
            Ok(context.observe(value(bytes.len() as u64)))
        },
    },
    Case {
        id: "MSG-PTY-005",
        rule: "PTY_SET_MODE with a flag outside MODE_ALL is PTY_BAD_MODE and changes nothing",
        section: "7a.7",
        decisions: &[],
        expect: refused("PTY_SET_MODE", errors::BAD_MODE),
        run: |context| {
            let terminal = terminal(context)?;
            refusal(context, &terminal, |t| {
                t.pair.set_mode(PtyMode::new(MODE_ALL | 1 << 9))
            })
        },
    },
    Case {
        id: "MSG-PTY-006",
        rule: "PTY_SET_WINDOW then PTY_GET_WINDOW gives the size set (50 rows, 132 columns)",
        section: "7a.7",
        decisions: &[],
        expect: ok("PTY_SET_WINDOW"),
        run: |context| {
            let terminal = terminal(context)?;
            let set = terminal.pair.set_window(WindowSize::new(50, 132));
            let got = terminal.pair.get_window().map(|r| r.header);
            context.check(
                got == Ok(WindowSize::new(50, 132)),
                &format!("PTY_GET_WINDOW gave {got:?}"),
            );
            Ok(context.observe(registers(&set)))
        },
    },
    Case {
        id: "MSG-PTY-007",
        rule: "PTY_SET_WINDOW with zero columns is PTY_BAD_WINDOW and changes nothing",
        section: "7a.7",
        decisions: &[],
        expect: refused("PTY_SET_WINDOW", errors::BAD_WINDOW),
        run: |context| {
            let terminal = terminal(context)?;
            refusal(context, &terminal, |t| {
                t.pair.set_window(WindowSize::new(24, 0))
            })
        },
    },
    Case {
        id: "MSG-PTY-008",
        rule: "^D on an empty canonical line ends the slave's input: after the line typed before it, the slave reads end of file",
        section: "7a.7",
        decisions: &["D50"],
        expect: counted("the bytes read before end of file", 2),
        run: |context| {
            let terminal = terminal(context)?;
            terminal.type_bytes(b"a\n\x04")?;
            let mut all = Vec::new();
            let mut chunk = [0u8; 16];
            loop {
                match terminal.stdin.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => all.extend_from_slice(&chunk[..n]),
                    Err(e) => return Err(fail("read", e)),
                }
            }
            context.check(all == b"a\n", &format!("the slave read {all:?}"));
            Ok(context.observe(value(all.len() as u64)))
        },
    },
    Case {
        id: "MSG-PTY-009",
        rule: "the master gone (its server ended): the slave reads end of file and its write fails with PM_BROKEN_PIPE",
        section: "7a.7",
        decisions: &["D50"],
        expect: Expect::registers(
            "the slave's write",
            u32::MAX as u64,
            ProcmanError::BrokenPipe as u64,
            0,
            0,
        ),
        run: |context| {
            let terminal = terminal(context)?;
            procman::kill(terminal.server).map_err(|e| Failed(format!("KILL: {e}")))?;
            procman::wait(terminal.server).map_err(|e| Failed(format!("WAIT: {e}")))?;
            let mut chunk = [0u8; 8];
            let read = terminal.stdin.read(&mut chunk);
            context.check(read == Ok(0), &format!("the slave's read gave {read:?}"));
            let stdout = terminal.stdout.as_ref().ok_or(Failed("no stdout".into()))?;
            let write = stdout.write_all(b"lost\n");
            context.check(
                write == Err(StreamError::BrokenPipe),
                &format!("the write gave {write:?}"),
            );
            Ok(context.observe(super::pipe::unit(&write)))
        },
    },
    Case {
        id: "MSG-PTY-010",
        rule: "a pair function on a manager reference (cookie 0) is PTY_BAD_REQUEST, and PTY_OPEN on a pair's reference is too; neither makes a pair",
        section: "7a.7",
        decisions: &["D49"],
        expect: refused("PTY_GET_MODE", errors::BAD_REQUEST),
        run: |context| {
            let terminal = terminal(context)?;
            let again = terminal.pair.open(PtyOpenRequest::new(1)).map(drop);
            context.check(
                again == Err(ClientError::Interface(PtyError::BadRequest)),
                &format!("PTY_OPEN on the pair's reference gave {again:?}"),
            );
            let (manager, server) = server(context)?;
            let outcome = manager.get_mode().map(drop);
            let _ = procman::kill(server);
            let _ = procman::wait(server);
            let _ = kernel::close(*manager.transport());
            Ok(context.observe(registers(&outcome)))
        },
    },
    Case {
        id: "MSG-PTY-011",
        rule: "PTY_SET_FOREGROUND of a group with no live process is PTY_BAD_FOREGROUND and changes nothing; a reserved field set is PTY_BAD_REQUEST; a live group (the runner's) is read back, and group 0 clears it",
        section: "7a.7",
        decisions: &["D74", "D86"],
        expect: refused("PTY_SET_FOREGROUND", errors::BAD_FOREGROUND),
        run: |context| {
            let terminal = terminal(context)?;
            let own = kernel::process_id().map_err(|e| Failed(format!("PROCESS_ID: {e}")))? as u32;
            let reserved = terminal.pair.set_foreground(ForegroundGroup {
                group: own,
                reserved: 1,
            });
            context.check(
                reserved.as_ref().map(drop) == Err(&ClientError::Interface(PtyError::BadRequest)),
                &format!("a reserved field set gave {reserved:?}"),
            );
            let set = terminal.pair.set_foreground(ForegroundGroup::new(own));
            let got = terminal.pair.get_foreground().map(|r| r.header);
            context.check(
                set.is_ok() && got == Ok(ForegroundGroup::new(own)),
                &format!("the group read back: {got:?}"),
            );
            let cleared = terminal.pair.set_foreground(ForegroundGroup::NONE);
            let got = terminal.pair.get_foreground().map(|r| r.header);
            context.check(
                cleared.is_ok() && got == Ok(ForegroundGroup::NONE),
                &format!("the group cleared: {got:?}"),
            );
            refusal(context, &terminal, |t| {
                t.pair.set_foreground(ForegroundGroup::new(0xFFFF_0000))
            })
        },
    },
    Case {
        id: "MSG-PTY-012",
        rule: "^C signals only what procman lets the pty server signal: a foreground group of another session that is not its descendant (a process procman started) is refused whole (signal_refused 1, signalled 0, interrupts 1, that process runs on), the line typed is discarded and ^C is echoed",
        section: "7a.7",
        decisions: &["D70", "D87"],
        expect: counted("the group SIGNALs refused", 1),
        run: |context| {
            let terminal = terminal(context)?;
            let stranger = super::psig::stranger()?.pid;
            let group = userlib::signal::group_of(stranger)
                .map_err(|e| Failed(format!("GROUP_OF: {e}")))?
                .group;
            terminal
                .pair
                .set_foreground(ForegroundGroup::new(group))
                .map_err(|e| client_fail("PTY_SET_FOREGROUND", e))?;
            terminal.type_bytes(b"ab\x03c\n")?;
            let line = read_exactly(&terminal.stdin, 2)?;
            context.check(line == b"c\n", &format!("the slave read {line:?}"));
            let echo = terminal.master_output(11)?;
            context.check(
                echo == b"ab\r\n^C\r\nc\r\n",
                &format!("the echo was {echo:?}"),
            );
            let counters = terminal.counters()?;
            context.check(
                counters.interrupts == 1 && counters.signalled == 0,
                &format!("the counters: {counters:?}"),
            );
            context.check(
                super::psig::running(stranger)?,
                "the process out of reach was ended",
            );
            Ok(context.observe(value(u64::from(counters.signal_refused))))
        },
    },
    Case {
        id: "MSG-PTY-013",
        rule: "PTY_CLOSE hangs the pair up: the slave reads end of file, and the pair's reference then gets PTY_CLOSED",
        section: "7a.7",
        decisions: &["D49"],
        expect: refused("PTY_GET_MODE", errors::CLOSED),
        run: |context| {
            let terminal = terminal(context)?;
            terminal
                .pair
                .close()
                .map_err(|e| client_fail("PTY_CLOSE", e))?;
            let mut chunk = [0u8; 8];
            let read = terminal.stdin.read(&mut chunk);
            context.check(read == Ok(0), &format!("the slave's read gave {read:?}"));
            let outcome = terminal.pair.get_mode().map(drop);
            Ok(context.observe(registers(&outcome)))
        },
    },
    Case {
        id: "MSG-PTY-014",
        rule: "PTY_MASTER_WRITE of more than MAX_MASTER_WRITE bytes is PTY_TOO_LONG and types nothing",
        section: "7a.7",
        decisions: &[],
        expect: refused("PTY_MASTER_WRITE", errors::TOO_LONG),
        run: |context| {
            let terminal = terminal(context)?;
            let long = alloc::vec![b'x'; MAX_MASTER_WRITE + 1];
            let outcome = refusal(context, &terminal, |t| t.pair.master_write(&long));
            let echo = terminal.master_now()?;
            context.check(echo.is_empty(), &format!("something was echoed: {echo:?}"));
            outcome
        },
    },
];
