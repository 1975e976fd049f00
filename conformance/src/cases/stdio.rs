//! MSG-STDIO: standard streams through procman's SPAWN (ABI.md §7a.3,
//! decisions D38, D39): a child's println on its stdout pipe, stderr,
//! the console without a stream, stdin's end of file, a socket side as a
//! stream, and every refusal of a bad stream argument (nothing changes: no
//! child starts, procman's tables and the kernel's counters stay).
//!
//! The children are `stream-child` (tests/guest/stream-test), told their
//! role by their arguments.

use abi::message::message_extent;
use abi::procman::ProcmanError;
use abi::stream::{SOCKET_CREATE, STDOUT, STREAM_NONE, SocketRequest, StdStream, StdioOpenRequest};
use alloc::vec::Vec;
use userlib::procman::{self, PROCMAN};
use userlib::socket::Socket;
use userlib::stream::StreamError;
use zerocopy::IntoBytes;

use super::pipe::{
    counted, fail, new_pipe, ok, read_all, refused, registers, snapshot, unchanged, unit, wait,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::peer::Step;

/// The helper program.
const CHILD: &str = "stream-child";

fn spawn(arguments: &str, streams: [StdStream; 3]) -> Result<u32, StreamError> {
    procman::spawn_with_streams(CHILD, arguments.as_bytes(), &[], streams)
        .map_err(StreamError::Call)
}

/// Runs `role` with stdout on a new pipe (and `stdin`); what it wrote.
fn output_of(role: &str, stdin: StdStream) -> Result<(Vec<u8>, u32), Failed> {
    let (reader, writer) = new_pipe()?;
    let pid = spawn(
        role,
        [stdin, StdStream::pipe(writer.pipe()), StdStream::NONE],
    )
    .map_err(|e| fail("SPAWN", e))?;
    drop(writer);
    let text = read_all(&reader)?;
    Ok((text, wait(pid)?))
}

/// A refused SPAWN of `hello` with `streams`, nothing changed.
fn refused_spawn(context: &mut Context, streams: [StdStream; 3]) -> Outcome {
    let before = snapshot(context)?;
    let outcome = spawn("hello", streams).map(|_| ());
    unchanged(context, &before)?;
    Ok(context.observe(unit(&outcome)))
}

/// A STDIO_OPEN by this process (which has no streams).
fn stdio_open(stream: u32) -> Result<(), StreamError> {
    PROCMAN.stdio_open(StdioOpenRequest::new(stream))?;
    Ok(())
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-STDIO-001",
        rule: "a child's println reaches the pipe SPAWN gave it as stdout, byte-exact (20 bytes)",
        section: "7a.3",
        decisions: &["D38", "D39"],
        expect: counted("the bytes read", 20),
        run: |context| {
            let (text, status) = output_of("hello", StdStream::NONE)?;
            context.check(text == b"stream-child: hello\n", "the line differs");
            context.check(status == 0, "the child failed");
            Ok(context.observe_value(text.len() as u64))
        },
    },
    Case {
        id: "MSG-STDIO-002",
        rule: "println goes to stdout and eprintln to stderr: with both on one pipe, the lines arrive in order",
        section: "7a.3",
        decisions: &["D39"],
        expect: counted("the bytes read", 8),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let out = StdStream::pipe(writer.pipe());
            let pid = spawn("both", [StdStream::NONE, out, out]).map_err(|e| fail("SPAWN", e))?;
            drop(writer);
            let text = read_all(&reader)?;
            context.check(text == b"out\nerr\n", "stdout and stderr lines differ");
            context.check(wait(pid)? == 0, "the child failed");
            Ok(context.observe_value(text.len() as u64))
        },
    },
    Case {
        id: "MSG-STDIO-003",
        rule: "a child given no streams has none connected (it prints to the kernel console) and runs as before",
        section: "7a.3",
        decisions: &["D39"],
        expect: counted("the child's status (connected streams)", 0),
        run: |context| {
            let pid = spawn("where", [StdStream::NONE; 3]).map_err(|e| fail("SPAWN", e))?;
            let status = wait(pid)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-STDIO-004",
        rule: "a child given stdin, stdout and stderr has all three opened before main (status 1 | 2 | 4)",
        section: "7a.3",
        decisions: &["D38"],
        expect: counted("the child's status (connected streams)", 7),
        run: |context| {
            let (input, _keep) = new_pipe()?;
            let (reader, writer) = new_pipe()?;
            let out = StdStream::pipe(writer.pipe());
            let pid = spawn("where", [StdStream::pipe(input.pipe()), out, out])
                .map_err(|e| fail("SPAWN", e))?;
            drop(writer);
            let text = read_all(&reader)?;
            context.check(
                text == b"stream-child: where\n",
                "its line did not reach the pipe",
            );
            let status = wait(pid)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-STDIO-005",
        rule: "stdin on a pipe: the child reads what was written and then end of file once the parent closes its write end",
        section: "7a.3",
        decisions: &["D38"],
        expect: ok("the child's report"),
        run: |context| {
            let (input, feed) = new_pipe()?;
            let stdin = StdStream::pipe(input.pipe());
            feed.write_all(b"12345").map_err(|e| fail("write", e))?;
            let (reader, writer) = new_pipe()?;
            let pid = spawn(
                "count",
                [stdin, StdStream::pipe(writer.pipe()), StdStream::NONE],
            )
            .map_err(|e| fail("SPAWN", e))?;
            drop((input, writer));
            feed.close().map_err(|e| fail("close", e))?;
            let text = read_all(&reader)?;
            let status = wait(pid)?;
            context.check(
                text == b"count 5\n",
                "the child did not see 5 bytes then end of file",
            );
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-STDIO-006",
        rule: "without a stdin stream a read is end of file at once",
        section: "7a.3",
        decisions: &["D39"],
        expect: ok("the child's report"),
        run: |context| {
            let (text, status) = output_of("count", StdStream::NONE)?;
            context.check(
                text == b"count 0\n",
                "stdin without a stream was not end of file",
            );
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-STDIO-007",
        rule: "a stream kind other than NONE, PIPE and SOCKET is PM_STDIO_BAD_KIND: no child, nothing changed",
        section: "7a.3",
        decisions: &["D38"],
        expect: refused("SPAWN", ProcmanError::StdioBadKind),
        run: |context| {
            let bad = StdStream { kind: 3, number: 0 };
            refused_spawn(context, [StdStream::NONE, bad, StdStream::NONE])
        },
    },
    Case {
        id: "MSG-STDIO-008",
        rule: "a NONE stream with a number is PM_STDIO_BAD_KIND: no child, nothing changed",
        section: "7a.3",
        decisions: &["D38"],
        expect: refused("SPAWN", ProcmanError::StdioBadKind),
        run: |context| {
            let bad = StdStream {
                kind: STREAM_NONE,
                number: 1,
            };
            refused_spawn(context, [bad, StdStream::NONE, StdStream::NONE])
        },
    },
    Case {
        id: "MSG-STDIO-009",
        rule: "stdin naming a pipe whose read end the caller no longer holds is PM_NOT_PIPE_HOLDER: no child, nothing changed",
        section: "7a.3",
        decisions: &["D33", "D38"],
        expect: refused("SPAWN", ProcmanError::NotPipeHolder),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let pipe = reader.pipe();
            reader.close().map_err(|e| fail("close", e))?;
            let outcome = refused_spawn(
                context,
                [StdStream::pipe(pipe), StdStream::NONE, StdStream::NONE],
            );
            drop(writer);
            outcome
        },
    },
    Case {
        id: "MSG-STDIO-010",
        rule: "stdout naming a number no live pipe has is PM_NO_SUCH_PIPE: no child, nothing changed",
        section: "7a.3",
        decisions: &["D38"],
        expect: refused("SPAWN", ProcmanError::NoSuchPipe),
        run: |context| {
            refused_spawn(
                context,
                [
                    StdStream::NONE,
                    StdStream::pipe(0xFFFF_FFF0),
                    StdStream::NONE,
                ],
            )
        },
    },
    Case {
        id: "MSG-STDIO-011",
        rule: "a socket stream on a port no socket has is PM_NO_SUCH_SOCKET: no child, nothing changed",
        section: "7a.3",
        decisions: &["D38"],
        expect: refused("SPAWN", ProcmanError::NoSuchSocket),
        run: |context| {
            refused_spawn(
                context,
                [StdStream::NONE, StdStream::socket(4321), StdStream::NONE],
            )
        },
    },
    Case {
        id: "MSG-STDIO-012",
        rule: "a socket stream on another process's socket is PM_NOT_SOCKET_END: a side is passed on only by a holder",
        section: "7a.3",
        decisions: &["D38", "D41"],
        expect: refused("SPAWN", ProcmanError::NotSocketEnd),
        run: |context| {
            let (peer, _) = context.procman_peer()?;
            let created = peer.trap(Step::send(
                SOCKET_CREATE,
                0,
                SocketRequest::new(0).as_bytes(),
                &[],
                message_extent(24, 7),
            ))?;
            let port = created.registers.arg0 as u32;
            context.check(
                created.registers.arg1 == 0 && port != 0,
                "the peer's SOCKET_CREATE failed",
            );
            let outcome = refused_spawn(
                context,
                [StdStream::NONE, StdStream::socket(port), StdStream::NONE],
            );
            let _ = peer.exit();
            outcome
        },
    },
    Case {
        id: "MSG-STDIO-013",
        rule: "STDIO_OPEN of a stream other than 0, 1, 2 is PM_STDIO_BAD_STREAM, changing nothing",
        section: "7a.3",
        decisions: &[],
        expect: refused("STDIO_OPEN", ProcmanError::StdioBadStream),
        run: |context| {
            let before = snapshot(context)?;
            let outcome = stdio_open(3);
            unchanged(context, &before)?;
            Ok(context.observe(unit(&outcome)))
        },
    },
    Case {
        id: "MSG-STDIO-014",
        rule: "STDIO_OPEN of a stream SPAWN did not give the caller is PM_NO_STDIO_STREAM, changing nothing",
        section: "7a.3",
        decisions: &["D38"],
        expect: refused("STDIO_OPEN", ProcmanError::NoStdioStream),
        run: |context| {
            let before = snapshot(context)?;
            let outcome = stdio_open(STDOUT);
            unchanged(context, &before)?;
            Ok(context.observe(unit(&outcome)))
        },
    },
    Case {
        id: "MSG-STDIO-015",
        rule: "a second STDIO_OPEN of a stream the start-up opened is PM_STDIO_OPENED (the child's exit status)",
        section: "7a.3",
        decisions: &["D38"],
        expect: counted("the child's status", ProcmanError::StdioOpened as u64),
        run: |context| {
            let (_, status) = output_of("reopen", StdStream::NONE)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-STDIO-016",
        rule: "STDIO of a process given no streams names three NONE streams",
        section: "7a.3",
        decisions: &["D38"],
        expect: ok("STDIO"),
        run: |context| {
            let reply = PROCMAN.stdio().map_err(StreamError::from);
            let outcome = reply.map(|r| {
                context.check(
                    r.header.streams == [StdStream::NONE; 3],
                    "a stream is named",
                );
            });
            Ok(context.observe(unit(&outcome)))
        },
    },
    Case {
        id: "MSG-STDIO-017",
        rule: "a socket side as stdout: the child's println reaches the socket's other side, then end of stream when it returns from main",
        section: "7a.3",
        decisions: &["D38", "D41", "D62"],
        expect: counted("the read after the line", 0),
        run: |context| {
            let socket = Socket::create(0).map_err(|e| fail("create", e))?;
            let port = socket.port();
            // `count` holds its stdout (the creator side) until its stdin
            // ends, which this case decides.
            let (input, feed) = new_pipe()?;
            let pid = spawn(
                "count",
                [
                    StdStream::pipe(input.pipe()),
                    StdStream::socket(port),
                    StdStream::NONE,
                ],
            )
            .map_err(|e| fail("SPAWN", e))?;
            drop(input);
            // Only the child holds the creator side now: this process may connect.
            socket.close().map_err(|e| fail("close", e))?;
            let other = Socket::connect(port).map_err(|e| fail("connect", e))?;
            feed.write_all(b"abc").map_err(|e| fail("write", e))?;
            feed.close().map_err(|e| fail("close", e))?;
            let mut line = Vec::new();
            let mut buffer = [0u8; 64];
            let last = loop {
                match other.receive(&mut buffer) {
                    Ok(0) => break Ok(0),
                    Ok(n) => line.extend_from_slice(&buffer[..n]),
                    Err(e) => break Err(e),
                }
            };
            context.check(line == b"count 3\n", "the line differs");
            context.check(wait(pid)? == 0, "the child failed");
            Ok(context.observe(registers(&last, |n: &usize| *n as u64)))
        },
    },
];
