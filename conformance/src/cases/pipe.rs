//! MSG-PIPE: POSIX-style pipes through procman (ABI.md §7a.3, seed 003):
//! creation, order and atomicity of writes, full and empty rings, end of
//! file, broken pipe, grants to other processes, every refusal, and the
//! death of the process holding the other end while one side is blocked.
//!
//! Each case observes a result as registers: arg0 the count (or 0) for
//! success, else -1 with arg1 the error number. A refusal is checked to
//! change nothing: procman's pipe table and the kernel's counters.

use abi::kcall::KernelCounters;
use abi::procman::ProcmanError;
use abi::stream::{
    PIPE_BUF, PIPE_CAPACITY, PipeEndRequest, PipeGrantRequest, READ_END, StreamTableReply,
    WRITE_END,
};
use abi::{ObjectKind, TrapArgs};
use alloc::format;
use alloc::vec::Vec;
use userlib::kernel;
use userlib::pipe::{PipeReader, PipeWriter, pipe};
use userlib::procman::PROCMAN;
use userlib::stream::StreamError;

use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;

/// What must not move when a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) table: StreamTableReply,
    pub(super) counters: KernelCounters,
}

pub(super) fn table() -> Result<StreamTableReply, Failed> {
    PROCMAN
        .stream_table()
        .map(|reply| reply.header)
        .map_err(|e| Failed(format!("STREAM_TABLE: {e:?}")))
}

pub(super) fn snapshot(context: &mut Context) -> Result<Snapshot, Failed> {
    context.settle();
    Ok(Snapshot {
        table: table()?,
        counters: kernel::counters()?,
    })
}

pub(super) fn unchanged(context: &mut Context, before: &Snapshot) -> Result<(), Failed> {
    let after = snapshot(context)?;
    if after != *before {
        context.fail(format!(
            "the refusal changed something: before {before:?}, after {after:?}"
        ));
    }
    Ok(())
}

/// An error a typed call of the stream, file or procman protocols
/// returns: its number, for the registers a case observes.
pub(super) trait Errno {
    fn errno(&self) -> u32;
}

impl Errno for StreamError {
    fn errno(&self) -> u32 {
        StreamError::errno(self)
    }
}

impl Errno for userlib::client::CallError {
    fn errno(&self) -> u32 {
        userlib::client::CallError::errno(self)
    }
}

impl Errno for userlib::file::FsError {
    fn errno(&self) -> u32 {
        userlib::file::FsError::errno(self)
    }
}

/// A result as registers: `value` in arg0, or -1 and the error number.
pub(super) fn registers<T, E: Errno>(
    outcome: &Result<T, E>,
    value: impl Fn(&T) -> u64,
) -> TrapArgs {
    match outcome {
        Ok(v) => TrapArgs {
            arg0: value(v),
            ..TrapArgs::default()
        },
        Err(e) => TrapArgs {
            arg0: u64::from(u32::MAX),
            arg1: u64::from(e.errno()),
            arg2: 0,
            arg3: 0,
        },
    }
}

pub(super) fn unit(outcome: &Result<(), StreamError>) -> TrapArgs {
    registers(outcome, |_| 0)
}

pub(super) fn count(outcome: &Result<usize, StreamError>) -> TrapArgs {
    registers(outcome, |n| *n as u64)
}

pub(super) const fn ok(what: &'static str) -> Expect {
    Expect::registers(what, 0, 0, 0, 0)
}

pub(super) const fn counted(what: &'static str, n: u64) -> Expect {
    Expect::registers(what, n, 0, 0, 0)
}

pub(super) const fn refused(what: &'static str, error: ProcmanError) -> Expect {
    Expect::registers(what, u32::MAX as u64, error as u64, 0, 0)
}

pub(super) fn fail(what: &str, e: StreamError) -> Failed {
    Failed(format!("{what}: {e:?}"))
}

/// WAIT for `pid`: its exit status.
pub(super) fn wait(pid: u32) -> Result<u32, Failed> {
    userlib::procman::wait(pid).map_err(|e| Failed(format!("WAIT {pid}: {e}")))
}

/// Everything `reader` gives until end of file.
pub(super) fn read_all(reader: &userlib::pipe::PipeReader) -> Result<Vec<u8>, Failed> {
    let mut all = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(all),
            Ok(n) => all.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(fail("read", e)),
        }
    }
}

pub(super) fn new_pipe() -> Result<(PipeReader, PipeWriter), Failed> {
    pipe().map_err(|e| fail("pipe()", e))
}

fn close(pipe: u32, end: u32) -> Result<(), StreamError> {
    PROCMAN.pipe_close(PipeEndRequest::new(pipe, end))?;
    Ok(())
}

fn grant(request: PipeGrantRequest) -> Result<(), StreamError> {
    PROCMAN.pipe_grant(request)?;
    Ok(())
}

fn open(pipe: u32, end: u32) -> Result<(), StreamError> {
    let _reply = PROCMAN.pipe_open(PipeEndRequest::new(pipe, end))?;
    Ok(())
}

/// Bytes `seed, seed + 1, ...` (mod 251, so a shift shows).
pub(super) fn pattern(seed: usize, length: usize) -> Vec<u8> {
    (0..length).map(|i| ((seed + i) % 251) as u8).collect()
}

/// Reads until `length` bytes came (or end of file).
pub(super) fn read_exactly(reader: &PipeReader, length: usize) -> Result<Vec<u8>, Failed> {
    let mut out = alloc::vec![0u8; length];
    let mut got = 0;
    while got < length {
        let n = reader.read(&mut out[got..]).map_err(|e| fail("read", e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    out.truncate(got);
    Ok(out)
}

/// A refusal observed with nothing changed.
fn refusal(context: &mut Context, call: impl Fn() -> Result<(), StreamError>) -> Outcome {
    let before = snapshot(context)?;
    let outcome = call();
    unchanged(context, &before)?;
    Ok(context.observe(unit(&outcome)))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PIPE-001",
        rule: "PIPE_CREATE gives a pipe (a number, never 0, as msgRetVal) with its ring's memory object and three events; procman records one pipe, two ends and four descriptors",
        section: "7a.3",
        decisions: &["D32", "D33"],
        expect: ok("PIPE_CREATE"),
        run: |context| {
            let before = table()?;
            let made = PROCMAN.pipe_create();
            let after = table()?;
            let outcome = match made {
                Ok(mut reply) => {
                    context.check(
                        reply.value != 0 && reply.value == reply.header.pipe,
                        "the pipe's number is not msgRetVal or is 0",
                    );
                    context.check(
                        reply.header.capacity == PIPE_CAPACITY,
                        "the capacity is not PIPE_CAPACITY",
                    );
                    let kinds: Vec<_> = (0..4)
                        .map(|i| {
                            reply
                                .take_descriptor(i)
                                .and_then(|d| kernel::descriptor_info(d.descriptor()).ok())
                                .and_then(|info| info.kind)
                        })
                        .collect();
                    context.check(
                        kinds[0] == Some(ObjectKind::Memory)
                            && kinds[1..].iter().all(|k| *k == Some(ObjectKind::Event)),
                        "the slots are not a memory object and three events",
                    );
                    context.check(
                        after.pipes == before.pipes + 1
                            && after.ends == before.ends + 2
                            && after.descriptors == before.descriptors + 4,
                        "the table did not grow by one pipe, two ends, four descriptors",
                    );
                    let pipe = reply.header.pipe;
                    let _ = close(pipe, READ_END);
                    let _ = close(pipe, WRITE_END);
                    Ok(())
                }
                Err(e) => Err(StreamError::from(e)),
            };
            context.check(
                table()? == before,
                "closing both ends did not free the pipe",
            );
            Ok(context.observe(unit(&outcome)))
        },
    },
    Case {
        id: "MSG-PIPE-002",
        rule: "bytes come out of a pipe in the order they went in",
        section: "7a.3",
        decisions: &["D32"],
        expect: counted("read", 11),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            writer.write_all(b"hello").map_err(|e| fail("write", e))?;
            writer.write_all(b" world").map_err(|e| fail("write", e))?;
            let mut out = [0u8; 64];
            let read = reader.read(&mut out);
            context.check(
                out[..11] == *b"hello world",
                "the bytes came out changed or out of order",
            );
            Ok(context.observe(count(&read)))
        },
    },
    Case {
        id: "MSG-PIPE-003",
        rule: "a read returns what is there (fewer bytes than asked) without waiting for more",
        section: "7a.3",
        decisions: &["D32"],
        expect: counted("read", 3),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            writer.write_all(b"abc").map_err(|e| fail("write", e))?;
            let mut out = [0u8; 100];
            let read = reader.read(&mut out);
            Ok(context.observe(count(&read)))
        },
    },
    Case {
        id: "MSG-PIPE-004",
        rule: "after the last write end closes, the reader gets the buffered bytes first, then end of file (0)",
        section: "7a.3",
        decisions: &["D34"],
        expect: counted("the read after the buffered bytes", 0),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            writer
                .write_all(b"0123456789")
                .map_err(|e| fail("write", e))?;
            writer.close().map_err(|e| fail("close", e))?;
            let mut out = [0u8; 4];
            context.check(
                reader.read(&mut out) == Ok(4) && out == *b"0123",
                "the first read lost bytes",
            );
            let mut rest = [0u8; 100];
            context.check(
                reader.read(&mut rest) == Ok(6) && rest[..6] == *b"456789",
                "the second read lost bytes",
            );
            let read = reader.read(&mut rest);
            Ok(context.observe(count(&read)))
        },
    },
    Case {
        id: "MSG-PIPE-005",
        rule: "a write with every read end closed fails with PM_BROKEN_PIPE and writes nothing",
        section: "7a.3",
        decisions: &["D35"],
        expect: refused("write", ProcmanError::BrokenPipe),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            reader.close().map_err(|e| fail("close", e))?;
            let written = writer.write_all(b"lost");
            context.check(writer.held() == 0, "bytes went into a pipe nobody reads");
            Ok(context.observe(unit(&written)))
        },
    },
    Case {
        id: "MSG-PIPE-006",
        rule: "a full ring (head - tail == capacity) blocks a writer until a read makes room",
        section: "7a.3",
        decisions: &["D32"],
        expect: ok("the blocked write"),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            writer
                .write_all(&pattern(0, PIPE_CAPACITY as usize))
                .map_err(|e| fail("filling write", e))?;
            context.check(
                writer.held() == PIPE_CAPACITY,
                "the ring does not hold its capacity",
            );
            let job = context.job(move || writer.write_all(b"x"))?;
            context.settle();
            context.check(!job.finished(), "a write to a full ring did not block");
            let mut one = [0u8; 1];
            context.check(
                reader.read(&mut one) == Ok(1) && one[0] == 0,
                "the first byte is wrong",
            );
            context.settle();
            let written = job.take().unwrap_or(Err(StreamError::BadRing));
            let rest = read_exactly(&reader, PIPE_CAPACITY as usize)?;
            let mut expected = pattern(1, PIPE_CAPACITY as usize - 1);
            expected.push(b'x');
            context.check(
                rest == expected,
                "the ring's bytes are wrong after the wrap",
            );
            Ok(context.observe(unit(&written)))
        },
    },
    Case {
        id: "MSG-PIPE-007",
        rule: "an empty ring (head == tail) blocks a reader until a write",
        section: "7a.3",
        decisions: &["D32"],
        expect: counted("the blocked read", 1),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let job = context.job(move || {
                let mut one = [0u8; 8];
                reader.read(&mut one).map(|n| (n, one[0]))
            })?;
            context.settle();
            context.check(!job.finished(), "a read of an empty ring did not block");
            writer.write_all(b"z").map_err(|e| fail("write", e))?;
            context.settle();
            let read = job.take().unwrap_or(Err(StreamError::BadRing));
            context.check(
                matches!(read, Ok((1, b'z'))),
                "the woken reader got the wrong byte",
            );
            Ok(context.observe(count(&read.map(|(n, _)| n))))
        },
    },
    Case {
        id: "MSG-PIPE-008",
        rule: "a write of PIPE_BUF bytes waits until all of it fits: none of it goes in while less room is free",
        section: "7a.3",
        decisions: &["D36"],
        expect: ok("the atomic write"),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let filler = PIPE_CAPACITY as usize - 100;
            writer
                .write_all(&pattern(0, filler))
                .map_err(|e| fail("filling write", e))?;
            let record = pattern(7, PIPE_BUF);
            let copy = record.clone();
            let job = context.job(move || writer.write_all(&copy))?;
            context.settle();
            context.check(!job.finished(), "the record's write did not wait for room");
            context.check(
                reader.held() == filler as u32,
                "part of the record went in (it was torn)",
            );
            let head = read_exactly(&reader, PIPE_BUF)?;
            context.check(head == pattern(0, PIPE_BUF), "the filler came out wrong");
            context.settle();
            let written = job.take().unwrap_or(Err(StreamError::BadRing));
            let rest = read_exactly(&reader, filler - PIPE_BUF + PIPE_BUF)?;
            context.check(
                rest[filler - PIPE_BUF..] == record[..],
                "the record came out torn",
            );
            Ok(context.observe(unit(&written)))
        },
    },
    Case {
        id: "MSG-PIPE-009",
        rule: "a write over PIPE_BUF goes in as room allows (in pieces) and the reader gets every byte in order",
        section: "7a.3",
        decisions: &["D36"],
        expect: ok("the large write"),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let filler = PIPE_CAPACITY as usize - 100;
            writer
                .write_all(&pattern(0, filler))
                .map_err(|e| fail("filling write", e))?;
            let big = pattern(3, 3 * PIPE_CAPACITY as usize);
            let copy = big.clone();
            let job = context.job(move || writer.write_all(&copy))?;
            context.settle();
            context.check(!job.finished(), "the large write did not block");
            context.check(
                reader.held() == PIPE_CAPACITY,
                "the large write did not fill the free room first",
            );
            let all = read_exactly(&reader, filler + big.len())?;
            context.settle();
            let written = job.take().unwrap_or(Err(StreamError::BadRing));
            context.check(
                all[..filler] == pattern(0, filler)[..] && all[filler..] == big[..],
                "bytes lost or reordered",
            );
            Ok(context.observe(unit(&written)))
        },
    },
    Case {
        id: "MSG-PIPE-010",
        rule: "PIPE_CLOSE of an end other than 1 or 2 is PM_PIPE_BAD_END, changing nothing",
        section: "7a.3",
        decisions: &[],
        expect: refused("PIPE_CLOSE", ProcmanError::PipeBadEnd),
        run: |context| {
            let (reader, _writer) = new_pipe()?;
            let pipe = reader.pipe();
            refusal(context, || close(pipe, 3))
        },
    },
    Case {
        id: "MSG-PIPE-011",
        rule: "PIPE_CLOSE of a number no live pipe has is PM_NO_SUCH_PIPE, changing nothing",
        section: "7a.3",
        decisions: &[],
        expect: refused("PIPE_CLOSE", ProcmanError::NoSuchPipe),
        run: |context| refusal(context, || close(0, READ_END)),
    },
    Case {
        id: "MSG-PIPE-012",
        rule: "PIPE_CLOSE of an end the caller no longer holds is PM_NOT_PIPE_HOLDER, changing nothing",
        section: "7a.3",
        decisions: &["D33"],
        expect: refused("the second PIPE_CLOSE", ProcmanError::NotPipeHolder),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let pipe = reader.pipe();
            reader.close().map_err(|e| fail("close", e))?;
            let outcome = refusal(context, || close(pipe, READ_END));
            drop(writer);
            outcome
        },
    },
    Case {
        id: "MSG-PIPE-013",
        rule: "PIPE_GRANT to the caller itself is PM_PIPE_GRANT_SELF, changing nothing",
        section: "7a.3",
        decisions: &["D33"],
        expect: refused("PIPE_GRANT", ProcmanError::PipeGrantSelf),
        run: |context| {
            let (reader, _writer) = new_pipe()?;
            let pid = kernel::process_id()? as u32;
            let pipe = reader.pipe();
            refusal(context, || {
                grant(PipeGrantRequest::new(pipe, READ_END, pid))
            })
        },
    },
    Case {
        id: "MSG-PIPE-014",
        rule: "PIPE_GRANT to a process that does not live is PM_NO_SUCH_PROCESS, changing nothing",
        section: "7a.3",
        decisions: &["D33"],
        expect: refused("PIPE_GRANT", ProcmanError::NoSuchProcess),
        run: |context| {
            let (reader, _writer) = new_pipe()?;
            let pipe = reader.pipe();
            refusal(context, || {
                grant(PipeGrantRequest::new(pipe, READ_END, 0xFFFF_0000))
            })
        },
    },
    Case {
        id: "MSG-PIPE-015",
        rule: "PIPE_OPEN of an end never granted to the caller is PM_PIPE_NOT_GRANTED, changing nothing",
        section: "7a.3",
        decisions: &["D33"],
        expect: refused("PIPE_OPEN", ProcmanError::PipeNotGranted),
        run: |context| {
            let (reader, _writer) = new_pipe()?;
            let pipe = reader.pipe();
            refusal(context, || open(pipe, WRITE_END))
        },
    },
    Case {
        id: "MSG-PIPE-016",
        rule: "PIPE_GRANT of an end the caller does not hold is PM_NOT_PIPE_HOLDER (a process cannot hand out what it lacks), changing nothing",
        section: "7a.3",
        decisions: &["D33"],
        expect: refused("PIPE_GRANT", ProcmanError::NotPipeHolder),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let (reader, writer) = new_pipe()?;
            let pipe = reader.pipe();
            writer.close().map_err(|e| fail("close", e))?;
            let outcome = refusal(context, || {
                grant(PipeGrantRequest::new(pipe, WRITE_END, pid))
            });
            let _ = peer.exit();
            outcome
        },
    },
    Case {
        id: "MSG-PIPE-017",
        rule: "PIPE_GRANT with its reserved field set is PM_BAD_REQUEST, changing nothing",
        section: "7a.3",
        decisions: &[],
        expect: refused("PIPE_GRANT", ProcmanError::BadRequest),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let (reader, _writer) = new_pipe()?;
            let pipe = reader.pipe();
            let mut request = PipeGrantRequest::new(pipe, READ_END, pid);
            request.reserved = 1;
            let outcome = refusal(context, || grant(request));
            let _ = peer.exit();
            outcome
        },
    },
    Case {
        id: "MSG-PIPE-018",
        rule: "a process holds at most 64 end references: the PIPE_CREATE past them is PM_TOO_MANY_PIPE_ENDS, changing nothing",
        section: "7a.3",
        decisions: &["D37"],
        expect: refused("PIPE_CREATE", ProcmanError::TooManyPipeEnds),
        run: |context| {
            let mut held = Vec::new();
            for _ in 0..32 {
                held.push(new_pipe()?);
            }
            let outcome = refusal(context, || {
                PROCMAN.pipe_create()?;
                Ok(())
            });
            drop(held);
            outcome
        },
    },
    Case {
        id: "MSG-PIPE-019",
        rule: "a write end granted to another process counts: the reader blocks after the creator's write end closes, and gets end of file when that process dies",
        section: "7a.3",
        decisions: &["D33", "D34"],
        expect: counted("the blocked read", 0),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let (reader, writer) = new_pipe()?;
            writer.grant(pid).map_err(|e| fail("grant", e))?;
            writer.close().map_err(|e| fail("close", e))?;
            let job = context.job(move || {
                let mut out = [0u8; 8];
                reader.read(&mut out)
            })?;
            context.settle();
            context.check(
                !job.finished(),
                "the read did not block while another process holds a write end",
            );
            peer.exit()?;
            context.settle();
            let read = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(count(&read)))
        },
    },
    Case {
        id: "MSG-PIPE-020",
        rule: "a writer blocked on a full ring whose only reader is another process fails with PM_BROKEN_PIPE when that process dies",
        section: "7a.3",
        decisions: &["D33", "D35"],
        expect: refused("the blocked write", ProcmanError::BrokenPipe),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let (reader, writer) = new_pipe()?;
            reader.grant(pid).map_err(|e| fail("grant", e))?;
            reader.close().map_err(|e| fail("close", e))?;
            writer
                .write_all(&pattern(0, PIPE_CAPACITY as usize))
                .map_err(|e| fail("filling write", e))?;
            let job = context.job(move || writer.write_all(b"more"))?;
            context.settle();
            context.check(!job.finished(), "a write to a full ring did not block");
            peer.exit()?;
            context.settle();
            let written = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(unit(&written)))
        },
    },
    Case {
        id: "MSG-PIPE-021",
        rule: "closing the write end wakes a reader blocked on the empty ring with end of file",
        section: "7a.3",
        decisions: &["D34"],
        expect: counted("the blocked read", 0),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            let job = context.job(move || {
                let mut out = [0u8; 8];
                reader.read(&mut out)
            })?;
            context.settle();
            context.check(!job.finished(), "the read did not block");
            writer.close().map_err(|e| fail("close", e))?;
            context.settle();
            let read = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(count(&read)))
        },
    },
    Case {
        id: "MSG-PIPE-022",
        rule: "closing the read end wakes a writer blocked on the full ring with PM_BROKEN_PIPE",
        section: "7a.3",
        decisions: &["D35"],
        expect: refused("the blocked write", ProcmanError::BrokenPipe),
        run: |context| {
            let (reader, writer) = new_pipe()?;
            writer
                .write_all(&pattern(0, PIPE_CAPACITY as usize))
                .map_err(|e| fail("filling write", e))?;
            let job = context.job(move || writer.write_all(b"y"))?;
            context.settle();
            context.check(!job.finished(), "the write did not block");
            reader.close().map_err(|e| fail("close", e))?;
            context.settle();
            let written = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(unit(&written)))
        },
    },
    Case {
        id: "MSG-PIPE-023",
        rule: "in either close order, closing both ends gives back procman's records and descriptors and the kernel's objects and frames",
        section: "7a.3",
        decisions: &["D33"],
        expect: ok("the last PIPE_CLOSE"),
        run: |context| {
            let before = snapshot(context)?;
            let (reader, writer) = new_pipe()?;
            writer.write_all(b"data").map_err(|e| fail("write", e))?;
            writer.close().map_err(|e| fail("close", e))?;
            let first = reader.close();
            unchanged(context, &before)?;
            let (reader, writer) = new_pipe()?;
            reader.close().map_err(|e| fail("close", e))?;
            let second = writer.close();
            unchanged(context, &before)?;
            context.check(
                first.is_ok(),
                "the reader's close after the writer's failed",
            );
            Ok(context.observe(unit(&second)))
        },
    },
    Case {
        id: "MSG-PIPE-024",
        rule: "a granted end is held from the grant on and goes when its grantee dies without opening it",
        section: "7a.3",
        decisions: &["D33"],
        expect: ok("the table after the grantee's end"),
        run: |context| {
            let (peer, pid) = context.procman_peer()?;
            let (reader, writer) = new_pipe()?;
            let before = table()?;
            reader.grant(pid).map_err(|e| fail("grant", e))?;
            let granted = table()?;
            context.check(
                granted.ends == before.ends + 1,
                "the grant did not add an end reference",
            );
            peer.exit()?;
            context.settle();
            let after = table()?;
            context.check(after == before, "the dead grantee's end reference stayed");
            drop((reader, writer));
            Ok(context.observe(TrapArgs::default()))
        },
    },
    Case {
        id: "MSG-PIPE-025",
        rule: "the ends implement embedded-io's Read and Write: a write of 600 bytes reports 600 and a read gets them",
        section: "7a.3",
        decisions: &["D32"],
        expect: counted("embedded_io::Write::write", 600),
        run: |context| {
            use embedded_io::{Read, Write};
            let (mut reader, mut writer) = new_pipe()?;
            let bytes = pattern(5, 600);
            let written = Write::write(&mut writer, &bytes);
            let mut out = alloc::vec![0u8; 600];
            let mut got = 0;
            while got < 600 {
                match Read::read(&mut reader, &mut out[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            context.check(out == bytes, "the bytes read differ");
            Ok(context.observe(count(&written)))
        },
    },
];
