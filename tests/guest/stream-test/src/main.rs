//! stream-test: the in-guest test of streams (issue 10). Boot with
//! `init=procman run=stream-test qemu-exit`: procman starts this program
//! (domain `tests`), which starts its helpers as `stream-child` (the same
//! binary, domain `users`, its role in its arguments) with their standard
//! streams on pipes and sockets (ABI.md §7a.3), and ends the machine with
//! its exit status.
//!
//! It proves, byte-exact by checksums: a producer | filter | consumer
//! chain of three processes over pipes moving 1 MiB; a client and server
//! moving 1 MiB each way over a socket; several writers on one pipe whose
//! `PIPE_BUF` records all arrive whole; a child's println on its stdout
//! pipe, and stdin end of file; and that 1,000 create / connect / stream /
//! close cycles leave procman's stream table and the kernel's counters
//! exactly where they were. It must never judge by timing.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::kcall::KernelCounters;
use abi::stream::{PIPE_BUF, StdStream, StreamTableReply};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::pipe::{PipeReader, PipeWriter, pipe};
use userlib::procman::{self, PROCMAN};
use userlib::socket::Socket;
use userlib::stream::StreamError;
use userlib::{Startup, kernel, println, stdio};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The helpers' manifest entry.
const CHILD: &str = "stream-child";
/// Bytes through the chain and each way through the socket.
const MIB: usize = 1 << 20;
/// Bytes the producer writes: a MiB and an odd tail, so no size lines up.
const CHAIN_BYTES: usize = MIB + 4093;
/// Writers on one pipe and the records each writes.
const WRITERS: u8 = 4;
const RECORDS: u16 = 150;
/// Create / connect / stream / close cycles after the warm-up.
const CYCLES: u32 = 1000;
const WARM_UP: u32 = 20;
/// Bytes each cycle moves each way.
const CYCLE_BYTES: usize = 64;

fn run(startup: Startup) -> i32 {
    let arguments = core::str::from_utf8(startup.arguments).unwrap_or("");
    let mut words = arguments.split_whitespace();
    match words.next() {
        None => driver(),
        Some(role) => child(role, words.collect()),
    }
}

// --- the helpers ---------------------------------------------------------

/// FNV-1a, 64 bits.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}
const FNV_START: u64 = 0xCBF2_9CE4_8422_2325;

/// The producer's byte at index `i`.
fn produced(i: usize) -> u8 {
    (i ^ (i >> 9) ^ (i >> 17)) as u8
}

/// The filter's transformation.
fn filtered(b: u8) -> u8 {
    b.rotate_left(3) ^ 0xA5
}

/// The socket server's byte at index `i`.
fn served(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

/// One writer's record `seq`: its id, the sequence number, then bytes
/// that depend on both, so a torn or mixed record shows.
fn record(writer: u8, seq: u16) -> [u8; PIPE_BUF] {
    let mut r = [0u8; PIPE_BUF];
    r[0] = writer;
    r[1..3].copy_from_slice(&seq.to_le_bytes());
    for (j, b) in r[3..].iter_mut().enumerate() {
        *b = (usize::from(writer) * 31 + usize::from(seq) * 7 + j) as u8;
    }
    r
}

fn number(words: &[&str], index: usize) -> usize {
    words.get(index).and_then(|w| w.parse().ok()).unwrap_or(0)
}

/// Reads standard input to its end, handing each piece to `each`.
fn drain_stdin(mut each: impl FnMut(&[u8]) -> Result<(), StreamError>) -> Result<(), StreamError> {
    let mut buffer = alloc::vec![0u8; 4096];
    loop {
        let n = stdio::stdin().read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        each(&buffer[..n])?;
    }
}

/// Receives exactly `out.len()` bytes from `socket`.
fn receive_exactly(socket: &Socket, out: &mut [u8]) -> Result<(), StreamError> {
    let mut got = 0;
    while got < out.len() {
        let n = socket.receive(&mut out[got..])?;
        if n == 0 {
            return Err(StreamError::BrokenPipe);
        }
        got += n;
    }
    Ok(())
}

fn child(role: &str, words: Vec<&str>) -> i32 {
    let outcome: Result<(), StreamError> = match role {
        // Its stdout is the parent's pipe, or the console.
        "hello" => {
            println!("stream-child: hello");
            Ok(())
        }
        // stdin to stdout, then how many bytes it saw.
        "count" => {
            let mut total = 0usize;
            let result = drain_stdin(|bytes| {
                total += bytes.len();
                Ok(())
            });
            println!("count {total}");
            result
        }
        "producer" => {
            let total = number(&words, 0);
            let mut chunk = [0u8; 4096];
            let mut at = 0;
            let mut result = Ok(());
            while at < total && result.is_ok() {
                let n = chunk.len().min(total - at);
                for (j, b) in chunk[..n].iter_mut().enumerate() {
                    *b = produced(at + j);
                }
                result = stdio::stdout().write_all(&chunk[..n]);
                at += n;
            }
            result
        }
        "filter" => {
            let mut out = alloc::vec![0u8; 4096];
            drain_stdin(|bytes| {
                for (o, b) in out.iter_mut().zip(bytes) {
                    *o = filtered(*b);
                }
                stdio::stdout().write_all(&out[..bytes.len()])
            })
        }
        "consumer" => {
            let (mut total, mut hash) = (0usize, FNV_START);
            let result = drain_stdin(|bytes| {
                total += bytes.len();
                hash = fnv(hash, bytes);
                Ok(())
            });
            println!("consumer {total} {hash:016x}");
            result
        }
        "writer" => {
            let writer = number(&words, 0) as u8;
            let records = number(&words, 1) as u16;
            (0..records).try_for_each(|seq| stdio::stdout().write_all(&record(writer, seq)))
        }
        // stdout and stderr, in that order (the same pipe shows both).
        "both" => {
            println!("out");
            userlib::eprintln!("err");
            Ok(())
        }
        // Which streams it has, as its exit status: 1 stdin, 2 stdout,
        // 4 stderr (after a line to stdout, or the console).
        "where" => {
            println!("stream-child: where");
            let connected = |s| i32::from(stdio::is_connected(s));
            return connected(abi::stream::STDIN)
                | connected(abi::stream::STDOUT) << 1
                | connected(abi::stream::STDERR) << 2;
        }
        // A second STDIO_OPEN of stdout: its refusal's number is the status.
        "reopen" => {
            let request = abi::stream::StdioOpenRequest::new(abi::stream::STDOUT);
            return match PROCMAN.stdio_open(request) {
                Ok(_) => 0,
                Err(e) => status_of(e.into()),
            };
        }
        "sock-peer" => sock_peer(number(&words, 0) as u32, number(&words, 1)),
        // Connects, sends its text, closes.
        "sock-send" => (|| {
            let socket = Socket::connect(number(&words, 0) as u32)?;
            socket.send(words.get(1).copied().unwrap_or("").as_bytes())?;
            socket.close()
        })(),
        // Connects, sends `LEN` bytes, ends without closing (a death).
        "sock-exit" => (|| {
            let socket = Socket::connect(number(&words, 0) as u32)?;
            socket.send(&alloc::vec![b'd'; number(&words, 1)])?;
            core::mem::forget(socket);
            Ok(())
        })(),
        // Creates a socket at `PORT`, says `r` on stdout, waits for end of
        // file on stdin, ends without closing.
        "sock-create-exit" => (|| {
            let socket = Socket::create(number(&words, 0) as u32)?;
            stdio::stdout().write_all(b"r")?;
            drain_stdin(|_| Ok(()))?;
            core::mem::forget(socket);
            Ok(())
        })(),
        // Connects by name (OPEN of `/sock/<port>`), sends its text, closes.
        "sock-open-send" => (|| {
            let socket = Socket::open(words.first().copied().unwrap_or(""))?;
            socket.send(words.get(1).copied().unwrap_or("").as_bytes())?;
            socket.close()
        })(),
        // Its working directory (GETCWD) on stdout: what SPAWN handed on.
        "cwd" => userlib::procman::getcwd()
            .map_err(StreamError::Call)
            .and_then(|path| stdio::stdout().write_all(path.as_bytes())),
        "cycler" => cycler(),
        _ => {
            println!("stream-child: unknown role {role}");
            return 2;
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            println!("stream-child: {role} failed: {e:?}");
            1
        }
    }
}

/// Connects to `port`, receives `length` bytes, sends back their hash
/// and `length` bytes of its own, closes.
fn sock_peer(port: u32, length: usize) -> Result<(), StreamError> {
    let socket = Socket::connect(port)?;
    let mut buffer = alloc::vec![0u8; 4096];
    let (mut got, mut hash) = (0usize, FNV_START);
    while got < length {
        let n = socket.receive(&mut buffer[..(length - got).min(4096)])?;
        if n == 0 {
            return Err(StreamError::BrokenPipe);
        }
        hash = fnv(hash, &buffer[..n]);
        got += n;
    }
    socket.send(&hash.to_le_bytes())?;
    let mut at = 0;
    while at < length {
        let n = buffer.len().min(length - at);
        for (j, b) in buffer[..n].iter_mut().enumerate() {
            *b = served(at + j);
        }
        socket.send(&buffer[..n])?;
        at += n;
    }
    socket.close()
}

/// For each port read from stdin: connects, echoes `CYCLE_BYTES` bytes,
/// closes, and acknowledges on stdout once everything of the socket is
/// gone from this process.
fn cycler() -> Result<(), StreamError> {
    loop {
        let mut port = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = stdio::stdin().read(&mut port[got..])?;
            if n == 0 {
                return Ok(());
            }
            got += n;
        }
        {
            let socket = Socket::connect(u32::from_le_bytes(port))?;
            let mut bytes = [0u8; CYCLE_BYTES];
            receive_exactly(&socket, &mut bytes)?;
            socket.send(&bytes)?;
            socket.close()?;
        }
        stdio::stdout().write_all(b"k")?;
    }
}

/// A refusal's number, as an exit status.
fn status_of(error: userlib::CallError) -> i32 {
    error.errno() as i32
}

// --- the driver ----------------------------------------------------------

struct Results {
    passed: u32,
    failed: u32,
}

impl Results {
    fn check(&mut self, name: &str, ok: bool, detail: String) {
        if ok {
            self.passed += 1;
            println!("ok   {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail}");
        }
    }
}

fn spawn(arguments: &str, streams: [StdStream; 3]) -> Result<u32, String> {
    procman::spawn_with_streams(CHILD, arguments.as_bytes(), &[], streams)
        .map_err(|e| format!("SPAWN {arguments}: {e}"))
}

fn new_pipe() -> Result<(PipeReader, PipeWriter), String> {
    pipe().map_err(|e| format!("pipe(): {e:?}"))
}

/// Reads `reader` to its end.
fn read_all(reader: &PipeReader) -> Result<Vec<u8>, String> {
    let mut all = Vec::new();
    let mut buffer = alloc::vec![0u8; 4096];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(all),
            Ok(n) => all.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(format!("read: {e:?}")),
        }
    }
}

fn wait(pid: u32) -> Result<u32, String> {
    procman::wait(pid).map_err(|e| format!("WAIT {pid}: {e}"))
}

/// One check of the driver: `Err` says what went wrong.
type Test = fn() -> Result<(), String>;

fn driver() -> i32 {
    let mut results = Results {
        passed: 0,
        failed: 0,
    };
    let tests: [(&str, Test); 6] = [
        (
            "a child's println reaches its stdout pipe byte-exact",
            hello_on_a_pipe,
        ),
        (
            "a child without stdout prints to the console; without stdin reads end of file",
            no_streams,
        ),
        (
            "producer | filter | consumer over pipes moves 1 MiB byte-exact",
            chain,
        ),
        (
            "several writers on one pipe: every PIPE_BUF record arrives whole",
            writers,
        ),
        (
            "a client and a server move 1 MiB each way over a socket",
            socket_both_ways,
        ),
        (
            "1,000 create / connect / stream / close cycles give everything back",
            cycles,
        ),
    ];
    for (name, test) in tests {
        match test() {
            Ok(()) => results.check(name, true, String::new()),
            Err(detail) => results.check(name, false, detail),
        }
    }
    println!(
        "stream-test: {} passed, {} failed",
        results.passed, results.failed
    );
    i32::from(results.failed != 0)
}

fn hello_on_a_pipe() -> Result<(), String> {
    let (reader, writer) = new_pipe()?;
    let pid = spawn(
        "hello",
        [
            StdStream::NONE,
            StdStream::pipe(writer.pipe()),
            StdStream::NONE,
        ],
    )?;
    drop(writer);
    let text = read_all(&reader)?;
    let status = wait(pid)?;
    if text != b"stream-child: hello\n" || status != 0 {
        return Err(format!("got {text:?}, status {status}"));
    }
    Ok(())
}

fn no_streams() -> Result<(), String> {
    let pid = spawn("hello", [StdStream::NONE; 3])?;
    let status = wait(pid)?;
    // stdin none: `count` sees end of file at once and says so on its
    // stdout pipe.
    let (reader, writer) = new_pipe()?;
    let counter = spawn(
        "count",
        [
            StdStream::NONE,
            StdStream::pipe(writer.pipe()),
            StdStream::NONE,
        ],
    )?;
    drop(writer);
    let text = read_all(&reader)?;
    let counted = wait(counter)?;
    if status != 0 || counted != 0 || text != b"count 0\n" {
        return Err(format!(
            "statuses {status}, {counted}; the counter said {text:?}"
        ));
    }
    Ok(())
}

fn chain() -> Result<(), String> {
    let (raw_out, raw_in) = new_pipe()?;
    let (filtered_out, filtered_in) = new_pipe()?;
    let (result_out, result_in) = new_pipe()?;
    let producer = spawn(
        &format!("producer {CHAIN_BYTES}"),
        [
            StdStream::NONE,
            StdStream::pipe(raw_in.pipe()),
            StdStream::NONE,
        ],
    )?;
    let filter = spawn(
        "filter",
        [
            StdStream::pipe(raw_out.pipe()),
            StdStream::pipe(filtered_in.pipe()),
            StdStream::NONE,
        ],
    )?;
    let consumer = spawn(
        "consumer",
        [
            StdStream::pipe(filtered_out.pipe()),
            StdStream::pipe(result_in.pipe()),
            StdStream::NONE,
        ],
    )?;
    // Only the children hold the chain's ends now: end of file flows down.
    drop((raw_out, raw_in, filtered_out, filtered_in, result_in));
    let said = read_all(&result_out)?;
    let statuses = [wait(producer)?, wait(filter)?, wait(consumer)?];
    let mut hash = FNV_START;
    for i in 0..CHAIN_BYTES {
        hash = fnv(hash, &[filtered(produced(i))]);
    }
    let expected = format!("consumer {CHAIN_BYTES} {hash:016x}\n");
    if said != expected.as_bytes() || statuses != [0, 0, 0] {
        return Err(format!(
            "the consumer said {:?}, expected {expected:?}; statuses {statuses:?}",
            String::from_utf8_lossy(&said)
        ));
    }
    Ok(())
}

fn writers() -> Result<(), String> {
    let (reader, writer) = new_pipe()?;
    let mut pids = Vec::new();
    for w in 1..=WRITERS {
        pids.push(spawn(
            &format!("writer {w} {RECORDS}"),
            [
                StdStream::NONE,
                StdStream::pipe(writer.pipe()),
                StdStream::NONE,
            ],
        )?);
    }
    drop(writer);
    let all = read_all(&reader)?;
    for pid in pids {
        let status = wait(pid)?;
        if status != 0 {
            return Err(format!("writer {pid} ended with {status}"));
        }
    }
    let expected_records = usize::from(WRITERS) * usize::from(RECORDS);
    if all.len() != expected_records * PIPE_BUF {
        return Err(format!(
            "{} bytes, expected {}",
            all.len(),
            expected_records * PIPE_BUF
        ));
    }
    let mut next = [0u16; WRITERS as usize + 1];
    let mut interleaved = false;
    let mut last_writer = 0;
    for (index, chunk) in all.chunks(PIPE_BUF).enumerate() {
        let writer = chunk[0];
        let seq = u16::from_le_bytes([chunk[1], chunk[2]]);
        if writer == 0 || writer > WRITERS || seq != next[usize::from(writer)] {
            return Err(format!(
                "record {index}: writer {writer}, sequence {seq}: out of order"
            ));
        }
        if chunk != record(writer, seq) {
            return Err(format!("record {index} of writer {writer} is torn"));
        }
        next[usize::from(writer)] += 1;
        interleaved |= last_writer != 0 && last_writer != writer;
        last_writer = writer;
    }
    println!("stream-test: {expected_records} records whole; writers interleaved: {interleaved}");
    Ok(())
}

fn socket_both_ways() -> Result<(), String> {
    let socket = Socket::create(0).map_err(|e| format!("create: {e:?}"))?;
    let port = socket.port();
    let peer = spawn(&format!("sock-peer {port} {MIB}"), [StdStream::NONE; 3])?;
    let mut chunk = alloc::vec![0u8; 4096];
    let mut hash = FNV_START;
    let mut at = 0;
    while at < MIB {
        let n = chunk.len().min(MIB - at);
        for (j, b) in chunk[..n].iter_mut().enumerate() {
            *b = produced(at + j);
        }
        hash = fnv(hash, &chunk[..n]);
        socket
            .send(&chunk[..n])
            .map_err(|e| format!("send: {e:?}"))?;
        at += n;
    }
    let mut theirs = [0u8; 8];
    receive_exactly(&socket, &mut theirs).map_err(|e| format!("hash: {e:?}"))?;
    let (mut got, mut back) = (0usize, FNV_START);
    loop {
        let n = socket
            .receive(&mut chunk)
            .map_err(|e| format!("receive: {e:?}"))?;
        if n == 0 {
            break;
        }
        back = fnv(back, &chunk[..n]);
        got += n;
    }
    let mut expected = FNV_START;
    for i in 0..MIB {
        expected = fnv(expected, &[served(i)]);
    }
    let status = wait(peer)?;
    socket.close().map_err(|e| format!("close: {e:?}"))?;
    if u64::from_le_bytes(theirs) != hash || got != MIB || back != expected || status != 0 {
        return Err(format!(
            "the server's hash {:#x} (sent {hash:#x}), {got} bytes back, hash {back:#x} (expected {expected:#x}), status {status}",
            u64::from_le_bytes(theirs)
        ));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    table: StreamTableReply,
    counters: KernelCounters,
}

fn snapshot() -> Result<Snapshot, String> {
    Ok(Snapshot {
        table: PROCMAN
            .stream_table()
            .map_err(|e| format!("STREAM_TABLE: {e}"))?
            .header,
        counters: kernel::counters().map_err(|e| format!("COUNTERS: {e}"))?,
    })
}

/// `count` cycles with the cycler: create a socket, send it the port,
/// stream both ways, wait for its close (end of stream), close, and wait
/// for its acknowledgement that it let go of everything.
fn cycle(count: u32, control: &PipeWriter, acks: &PipeReader) -> Result<(), String> {
    for n in 0..count {
        if n % 100 == 99 {
            println!("stream-test: cycle {}", n + 1);
        }
        let socket = Socket::create(0).map_err(|e| format!("cycle {n}: create: {e:?}"))?;
        let bytes: [u8; CYCLE_BYTES] = core::array::from_fn(|i| (i as u32 + n) as u8);
        socket
            .send(&bytes)
            .map_err(|e| format!("cycle {n}: send: {e:?}"))?;
        control
            .write_all(&socket.port().to_le_bytes())
            .map_err(|e| format!("cycle {n}: control: {e:?}"))?;
        let mut back = [0u8; CYCLE_BYTES];
        receive_exactly(&socket, &mut back).map_err(|e| format!("cycle {n}: receive: {e:?}"))?;
        let mut end = [0u8; 1];
        let eof = socket.receive(&mut end);
        socket
            .close()
            .map_err(|e| format!("cycle {n}: close: {e:?}"))?;
        let mut ack = [0u8; 1];
        let acked = acks.read(&mut ack);
        if back != bytes || eof != Ok(0) || acked != Ok(1) {
            return Err(format!(
                "cycle {n}: echo {}, end {eof:?}, ack {acked:?}",
                back == bytes
            ));
        }
    }
    Ok(())
}

fn cycles() -> Result<(), String> {
    let (control_out, control_in) = new_pipe()?;
    let (acks_out, acks_in) = new_pipe()?;
    let cycler = spawn(
        "cycler",
        [
            StdStream::pipe(control_out.pipe()),
            StdStream::pipe(acks_in.pipe()),
            StdStream::NONE,
        ],
    )?;
    drop((control_out, acks_in));
    // The warm-up grows every heap and table to its working size.
    cycle(WARM_UP, &control_in, &acks_out)?;
    let before = snapshot()?;
    cycle(CYCLES, &control_in, &acks_out)?;
    let after = snapshot()?;
    drop(control_in);
    let status = wait(cycler)?;
    if before != after || status != 0 {
        return Err(format!(
            "before {before:?}, after {after:?}, the cycler's status {status}"
        ));
    }
    Ok(())
}
