//! MSG-SHELL: what the shell's pipelines rely on (ABI.md §7a.6, D80,
//! D82), checked by building the pipelines by hand: the utilities
//! (`yes`, `head`, `cat`) started with pipe ends as their standard
//! streams, the runner closing its copies as the shell does, and a file
//! stream at each end.

use abi::file::{CREATE, TRUNCATE};
use abi::procman::ProcmanError;
use abi::stream::{STDERR, StdStream};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::file::Files;
use userlib::pipe::pipe;
use userlib::procman;

use super::pipe::{fail, read_exactly, wait};
use crate::case::Case;
use crate::context::Failed;
use crate::expect::Expect;

fn spawn(
    program: &str,
    arguments: &str,
    stdin: StdStream,
    stdout: StdStream,
) -> Result<u32, Failed> {
    let streams = [stdin, stdout, userlib::stdio::inherit(STDERR)];
    procman::spawn_with_streams(program, arguments.as_bytes(), &[], streams)
        .map_err(|e| Failed(format!("SPAWN {program}: {e}")))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SHELL-001",
        rule: "yes | head -n 3 built as the shell builds it (the runner closes its copies once both run) ends: head writes exactly three lines and exits 0, yes meets the broken pipe and exits 141",
        section: "7a.6",
        decisions: &["D82"],
        expect: Expect::registers("yes's status", 141, 0, 0, 0),
        run: |context| {
            let (yes_read, yes_write) = pipe().map_err(|e| fail("pipe()", e))?;
            let (out_read, out_write) = pipe().map_err(|e| fail("pipe()", e))?;
            let yes = spawn(
                "yes",
                "",
                StdStream::NONE,
                StdStream::pipe(yes_write.pipe()),
            )?;
            drop(yes_write);
            let head = spawn(
                "head",
                "-n 3",
                StdStream::pipe(yes_read.pipe()),
                StdStream::pipe(out_write.pipe()),
            )?;
            drop(yes_read);
            drop(out_write);
            let out = read_exactly(&out_read, 64)?;
            context.check(out == b"y\ny\ny\n", &format!("head wrote {out:?}"));
            context.check(wait(head)? == 0, "head did not exit 0");
            let status = wait(yes)?;
            Ok(context.observe_value(u64::from(status)))
        },
    },
    Case {
        id: "MSG-SHELL-002",
        rule: "cat < /tmp/x > /tmp/y built as the shell builds it (a read stream as stdin, a write stream as stdout): once cat ended and both done events are signalled, /tmp/y holds exactly /tmp/x's bytes",
        section: "7a.6",
        decisions: &["D80", "D82"],
        expect: Expect::registers("/tmp/y's size", 5000, 0, 0, 0),
        run: |context| {
            let files = Files::connect().map_err(|e| Failed(format!("/tmp: {}", e.name())))?;
            let bytes: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
            {
                let mut file = files
                    .open("/tmp/s002x", CREATE | TRUNCATE)
                    .map_err(|e| Failed(format!("OPEN: {}", e.name())))?;
                file.write_all(&bytes)
                    .map_err(|e| Failed(format!("WRITE: {}", e.name())))?;
            }
            let (input, input_done) = files
                .read_stream("/tmp/s002x")
                .map_err(|e| Failed(format!("STREAM: {}", e.name())))?;
            let (output, output_done) = files
                .write_stream("/tmp/s002y", CREATE | TRUNCATE)
                .map_err(|e| Failed(format!("STREAM: {}", e.name())))?;
            let cat = spawn(
                "cat",
                "",
                StdStream::pipe(input.pipe()),
                StdStream::pipe(output.pipe()),
            )?;
            drop(input);
            drop(output);
            context.check(wait(cat)? == 0, "cat did not exit 0");
            input_done.wait()?;
            output_done.wait()?;
            let mut copy = Vec::new();
            let mut file = files
                .open("/tmp/s002y", 0)
                .map_err(|e| Failed(format!("OPEN: {}", e.name())))?;
            let mut piece = [0u8; 1024];
            loop {
                let n = file
                    .read(&mut piece)
                    .map_err(|e| Failed(format!("READ: {}", e.name())))?;
                if n == 0 {
                    break;
                }
                copy.extend_from_slice(&piece[..n]);
            }
            context.check(copy == bytes, "the copy differs from the file");
            let _ = files.unlink("/tmp/s002x");
            let _ = files.unlink("/tmp/s002y");
            Ok(context.observe_value(copy.len() as u64))
        },
    },
    Case {
        id: "MSG-SHELL-003",
        rule: "cd /tmp; cat a as the shell runs it: after CHDIR /tmp the runner SPAWNs cat with the relative name, which cat's file layer resolves against the directory it inherited, and cat writes exactly /tmp's file; a name climbing above / stays at /",
        section: "7a.8",
        decisions: &["D95"],
        expect: Expect::registers("cat's bytes", 7, 0, 0, 0),
        run: |context| {
            let files = Files::connect().map_err(|e| Failed(format!("/tmp: {}", e.name())))?;
            {
                let mut file = files
                    .open("/tmp/s003", CREATE | TRUNCATE)
                    .map_err(|e| Failed(format!("OPEN: {}", e.name())))?;
                file.write_all(b"s003 a\n")
                    .map_err(|e| Failed(format!("WRITE: {}", e.name())))?;
            }
            procman::chdir("/tmp").map_err(|e| Failed(format!("CHDIR: {e}")))?;
            let relative = super::ns::output_of("cat", "s003");
            let climbing = super::ns::output_of("cat", "../../tmp/./s003");
            procman::chdir("/").map_err(|e| Failed(format!("CHDIR: {e}")))?;
            let (bytes, status) = relative?;
            context.check(status == 0, &format!("cat s003 ended with {status}"));
            context.check(bytes == b"s003 a\n", &format!("cat s003 wrote {bytes:?}"));
            let (again, status) = climbing?;
            context.check(
                status == 0 && again == bytes,
                &format!("cat ../../tmp/./s003: {status} {again:?}"),
            );
            let _ = files.unlink("/tmp/s003");
            Ok(context.observe_value(bytes.len() as u64))
        },
    },
    Case {
        id: "MSG-SHELL-004",
        rule: "a hung-up terminal lets its slave go: after PTY_CLOSE the pair's pump ends with it (not with the slave's close), so the slave's output pipe loses its reader and a write of 64 KiB fails with PM_BROKEN_PIPE instead of being drained",
        section: "7a.7",
        decisions: &[],
        expect: Expect::registers(
            "the slave's write",
            u32::MAX as u64,
            ProcmanError::BrokenPipe as u64,
            0,
            0,
        ),
        run: |context| {
            let terminal = super::pty::terminal(context)?;
            terminal
                .pair
                .close()
                .map_err(|e| Failed(format!("PTY_CLOSE: {e:?}")))?;
            let stdout = terminal
                .stdout
                .as_ref()
                .ok_or_else(|| Failed(String::from("no slave stdout")))?;
            let outcome = stdout.write_all(&alloc::vec![b'o'; 64 * 1024]);
            let mut chunk = [0u8; 8];
            let read = terminal.stdin.read(&mut chunk);
            context.check(read == Ok(0), &format!("the slave's read gave {read:?}"));
            Ok(context.observe(super::pipe::unit(&outcome)))
        },
    },
    Case {
        id: "MSG-SHELL-005",
        rule: "a background job's lines land above the line being typed: the slave writes its prompt, the master types ab, the slave writes a whole line; the master gets the line erased, the line, then the prompt and ab drawn again; with nothing typed, output goes out as it is",
        section: "7a.7",
        decisions: &["D94"],
        expect: Expect::registers("the redrawn bytes", 12, 0, 0, 0),
        run: |context| {
            let terminal = super::pty::terminal(context)?;
            let stdout = terminal
                .stdout
                .as_ref()
                .ok_or_else(|| Failed(String::from("no slave stdout")))?;
            let write = |bytes: &[u8]| stdout.write_all(bytes).map_err(|e| fail("write", e));
            write(b"$ ")?;
            let prompt = terminal.master_output(2)?;
            context.check(prompt == b"$ ", &format!("the prompt: {prompt:?}"));
            terminal.type_bytes(b"ab")?;
            let echo = terminal.master_output(2)?;
            context.check(echo == b"ab", &format!("the echo: {echo:?}"));
            write(b"bg\n")?;
            let expected = b"\r\x1b[Kbg\r\n$ ab";
            let redrawn = terminal.master_output(expected.len())?;
            context.check(redrawn == expected, &format!("the redraw: {redrawn:?}"));
            // The line handed over; output with nothing typed is as it is.
            terminal.type_bytes(b"\r")?;
            let end = terminal.master_output(2)?;
            context.check(end == b"\r\n", &format!("the line's end: {end:?}"));
            let mut line = [0u8; 8];
            let read = terminal.stdin.read(&mut line);
            context.check(
                read == Ok(3) && &line[..3] == b"ab\n",
                &format!("the slave read {read:?}"),
            );
            write(b"x\n")?;
            let plain = terminal.master_output(3)?;
            context.check(plain == b"x\r\n", &format!("plain output: {plain:?}"));
            Ok(context.observe_value(redrawn.len() as u64))
        },
    },
];
