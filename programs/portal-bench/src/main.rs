//! portal-bench: moves 1 MiB from one process to another through a
//! share-point and through 4000-byte messages, and prints one bench row for
//! each in `ipc_bench`'s row format (`cargo xtask bench` reads them and
//! reports bytes per instruction under `--accel tcg-icount`).
//!
//! It needs procman (share-points are procman's), so `cargo xtask bench`
//! boots it second, with `init=procman run=portal-bench qemu-exit`; its
//! exit status ends the machine. The same binary is the receiving process
//! (`portal-bench-server`, argument `server`): procman starts it with the
//! owner reference of a door the bench made, it attaches the share-point
//! and serves two functions, typed (`interface!`):
//! - DRAIN: take the share-point's lock, copy its 1 MiB out into the
//!   server's own memory, unlock, reply empty;
//! - CARRY: a message of up to 4000 bytes, copied into the server's own
//!   memory at the offset its header names; reply empty.
//!
//! One sample moves the whole MiB: the share-point row is the writer's
//! lock, copy in, unlock and one DRAIN call; the message row is 263 CARRY
//! calls (262 of 4000 bytes and one of 576). Each row runs [`WARM_UP`]
//! unmeasured samples, then [`SAMPLES`].
//!
//! It also measures streams (ABI.md §7a.3): 1 MiB through a pipe and
//! through a socket to the same receiving program (roles `pipe-sink`,
//! `socket-sink PORT`: read the MiB, answer one byte), and 64-byte
//! ping-pongs over a pair of pipes (its stdin and stdout) and over a socket
//! (roles `pipe-echo`, `socket-echo PORT`), beside the Linux pipe and
//! socketpair rows.
//!
//! It must never be started by hand outside a procman boot (it has no
//! kernel capability and asks procman for everything).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::error::FIRST_SERVER_ERROR;
use abi::function::{Function, USER_BASE};
use abi::stream::StdStream;
use abi::{DescriptorSlot, Rights};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ipc_bench::{DONE, ERROR, LINE_PREFIX, Percentiles, RowLine};
use userlib::interface::{Call, Refusal};
use userlib::pipe::{PipeReader, PipeWriter, pipe};
use userlib::portal::SharePoint;
use userlib::socket::Socket;
use userlib::stream::StreamError;
use userlib::{Startup, println, stdio};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// Bytes moved by one sample.
const MIB: usize = 1 << 20;
/// The largest message data a CARRY sends.
const CHUNK: usize = 4000;
/// The share-point both processes attach.
const SHARE_POINT: &str = "/shm/portal-bench";
/// The server's manifest entry.
const SERVER: &str = "portal-bench-server";
/// Unmeasured samples per row.
const WARM_UP: usize = 3;
/// Measured samples per row.
const SAMPLES: usize = 21;
/// The security type of the bench's door (the manifest's `bench`).
const DOOR_TYPE: u32 = 2;

/// DRAIN's function number.
const DRAIN: Function = Function(USER_BASE);
/// CARRY's function number.
const CARRY: Function = Function(USER_BASE + 1);

userlib::interface! {
    /// Calls the receiving process.
    pub client SinkClient;
    /// The receiving process's side.
    pub server SinkServer;
    error SinkError;

    /// DRAIN: copy the share-point's data out, under its lock.
    fn drain(DRAIN) request() reply();
    /// CARRY: `header` is the offset in the MiB, `bytes` the data there.
    fn carry(CARRY) request(header: u32, bytes) reply();
}

userlib::interface_error! {
    /// The receiving process's refusals.
    pub enum SinkError {
        /// An unknown function.
        UnknownFunction = FIRST_SERVER_ERROR => "UNKNOWN_FUNCTION",
        /// No room for the reply.
        ReplyDoesNotFit = FIRST_SERVER_ERROR + 1 => "REPLY_DOES_NOT_FIT",
        /// A malformed request, or data past the MiB.
        BadRequest = FIRST_SERVER_ERROR + 2 => "BAD_REQUEST",
        /// The share-point refused (its lock or its bounds).
        SharePoint = FIRST_SERVER_ERROR + 3 => "SHARE_POINT",
    }
    unknown_function: UnknownFunction,
    reply_does_not_fit: ReplyDoesNotFit,
    bad_request: BadRequest,
}

/// The receiving process: the share-point and where the bytes land.
struct Sink {
    point: SharePoint,
    landed: Vec<u8>,
}

impl SinkServer for Sink {
    fn drain(&mut self, _call: &mut Call<'_>) -> Result<(), Refusal<SinkError>> {
        let guard = self.point.lock().map_err(|_| SinkError::SharePoint)?;
        guard
            .read_bytes(0, &mut self.landed)
            .map_err(|_| SinkError::SharePoint)?;
        Ok(())
    }

    fn carry(
        &mut self,
        _call: &mut Call<'_>,
        offset: u32,
        bytes: &[u8],
    ) -> Result<(), Refusal<SinkError>> {
        let start = offset as usize;
        let target = self
            .landed
            .get_mut(start..start + bytes.len())
            .ok_or(SinkError::BadRequest)?;
        target.copy_from_slice(bytes);
        Ok(())
    }
}

/// Unmeasured and measured samples of the 1 MiB stream rows.
const STREAM_WARM_UP: usize = 2;
const STREAM_SAMPLES: usize = 9;
/// Bytes each way of a ping-pong round, and how many rounds.
const PING: usize = 64;
const PING_WARM_UP: usize = 200;
const PING_ROUNDS: usize = 2000;

/// A byte stream to or from the other process: a pipe pair or a socket.
trait Stream {
    fn put(&self, bytes: &[u8]) -> Result<(), StreamError>;
    fn get(&self, out: &mut [u8]) -> Result<usize, StreamError>;

    /// Reads exactly `out.len()` bytes (end of stream is an error).
    fn get_exactly(&self, out: &mut [u8]) -> Result<(), StreamError> {
        let mut got = 0;
        while got < out.len() {
            match self.get(&mut out[got..])? {
                0 => return Err(StreamError::BrokenPipe),
                n => got += n,
            }
        }
        Ok(())
    }
}

/// This process's standard streams (the receiving roles').
struct Stdio;

impl Stream for Stdio {
    fn put(&self, bytes: &[u8]) -> Result<(), StreamError> {
        stdio::stdout().write_all(bytes)
    }
    fn get(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        stdio::stdin().read(out)
    }
}

/// The bench's ends of the two pipes to a receiving role.
struct Pipes {
    to: PipeWriter,
    from: PipeReader,
}

impl Stream for Pipes {
    fn put(&self, bytes: &[u8]) -> Result<(), StreamError> {
        self.to.write_all(bytes)
    }
    fn get(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.from.read(out)
    }
}

impl Stream for Socket {
    fn put(&self, bytes: &[u8]) -> Result<(), StreamError> {
        self.send(bytes)
    }
    fn get(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.receive(out)
    }
}

/// The sink: reads MiB after MiB, answering one byte after each, until
/// end of stream.
fn sink(stream: &dyn Stream) -> Result<(), StreamError> {
    let mut buffer = alloc::vec![0u8; 4096];
    loop {
        let mut got = 0;
        while got < MIB {
            let n = stream.get(&mut buffer[..(MIB - got).min(4096)])?;
            if n == 0 {
                return Ok(());
            }
            got += n;
        }
        stream.put(b"k")?;
    }
}

/// The echo: sends back what it gets until end of stream.
fn echo(stream: &dyn Stream) -> Result<(), StreamError> {
    let mut buffer = [0u8; 256];
    loop {
        let n = stream.get(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        stream.put(&buffer[..n])?;
    }
}

/// A receiving role: its result as an exit status.
fn role(arguments: &str) -> i32 {
    let mut words = arguments.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    let port: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let result = match role {
        "pipe-sink" => sink(&Stdio),
        "pipe-echo" => echo(&Stdio),
        "socket-sink" | "socket-echo" => Socket::connect(port).and_then(|socket| {
            let result = if role == "socket-sink" {
                sink(&socket)
            } else {
                echo(&socket)
            };
            result.and_then(|()| socket.close())
        }),
        _ => return 2,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            println!("portal-bench-server: {role}: {e:?}");
            1
        }
    }
}

fn run(mut startup: Startup) -> i32 {
    if let Ok(arguments) = core::str::from_utf8(startup.arguments)
        && (arguments.starts_with("pipe-") || arguments.starts_with("socket-"))
    {
        return role(arguments);
    }
    if startup.arguments.starts_with(b"server") {
        let Some(door) = startup.take_descriptor(1) else {
            println!("portal-bench-server: started without a door");
            return 1;
        };
        let point = match SharePoint::attach(SHARE_POINT) {
            Ok(point) => point,
            Err(e) => {
                println!("portal-bench-server: attach: {e:?}");
                return 1;
            }
        };
        let mut sink = Sink {
            point,
            landed: alloc::vec![0; MIB],
        };
        let error = sink.serve(&door);
        println!("portal-bench-server: serving stopped: {error}");
        return 1;
    }
    match bench() {
        Ok(()) => {
            println!("{LINE_PREFIX}{DONE}");
            0
        }
        Err(reason) => {
            println!("{LINE_PREFIX}{ERROR} {reason}");
            1
        }
    }
}

fn measure(mut once: impl FnMut() -> Result<u64, String>) -> Result<Percentiles, String> {
    for _ in 0..WARM_UP {
        once()?;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        samples.push(once()?);
    }
    samples.sort_unstable();
    Ok(Percentiles::of_sorted(&samples))
}

fn report(name: &str, stats: Percentiles) {
    let line = RowLine {
        name,
        payload: MIB as u32,
        descriptors: 0,
        iterations: SAMPLES,
        stats,
    };
    println!("{line}");
}

fn bench() -> Result<(), String> {
    let point = SharePoint::create(SHARE_POINT, MIB as u64, 0)
        .map_err(|e| format!("creating the share-point: {e:?}"))?;
    let door = userlib::procman::create_object(None, false, DOOR_TYPE)
        .map_err(|e| format!("CREATE_OBJECT: {e}"))?;
    let owner = door.owner.into_raw();
    userlib::procman::spawn(
        SERVER,
        &[],
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    )
    .map_err(|e| format!("spawning {SERVER}: {e}"))?;
    let sink = SinkClient::new(door.client.descriptor());
    let source: Vec<u8> = (0..MIB).map(|i| (i * 7 + 1) as u8).collect();

    let shared = measure(|| {
        let start = userlib::raw::timestamp();
        {
            let guard = point.lock().map_err(|e| format!("lock: {e:?}"))?;
            guard
                .write_bytes(0, &source)
                .map_err(|e| format!("write: {e:?}"))?;
        }
        sink.drain().map_err(|e| format!("DRAIN: {e:?}"))?;
        Ok(userlib::raw::timestamp() - start)
    })?;
    report("move-1mib-sharepoint", shared);

    let messages = measure(|| {
        let start = userlib::raw::timestamp();
        for (index, chunk) in source.chunks(CHUNK).enumerate() {
            sink.carry((index * CHUNK) as u32, chunk)
                .map_err(|e| format!("CARRY: {e:?}"))?;
        }
        Ok(userlib::raw::timestamp() - start)
    })?;
    report("move-1mib-messages", messages);
    streams(&source)
}

fn sample_rounds(
    warm_up: usize,
    samples: usize,
    mut once: impl FnMut() -> Result<u64, String>,
) -> Result<Percentiles, String> {
    for _ in 0..warm_up {
        once()?;
    }
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        taken.push(once()?);
    }
    taken.sort_unstable();
    Ok(Percentiles::of_sorted(&taken))
}

/// One sample of a MiB: from the first byte sent to the sink's answer.
fn move_mib(stream: &dyn Stream, source: &[u8]) -> Result<u64, String> {
    let start = userlib::raw::timestamp();
    for chunk in source.chunks(4096) {
        stream.put(chunk).map_err(|e| format!("send: {e:?}"))?;
    }
    let mut answer = [0u8; 1];
    stream
        .get_exactly(&mut answer)
        .map_err(|e| format!("the sink's answer: {e:?}"))?;
    Ok(userlib::raw::timestamp() - start)
}

/// One ping-pong round of `PING` bytes.
fn ping(stream: &dyn Stream, out: &[u8; PING], back: &mut [u8; PING]) -> Result<u64, String> {
    let start = userlib::raw::timestamp();
    stream.put(out).map_err(|e| format!("ping: {e:?}"))?;
    stream
        .get_exactly(back)
        .map_err(|e| format!("pong: {e:?}"))?;
    Ok(userlib::raw::timestamp() - start)
}

fn report_rows(name: &str, payload: usize, iterations: usize, stats: Percentiles) {
    let line = RowLine {
        name,
        payload: payload as u32,
        descriptors: 0,
        iterations,
        stats,
    };
    println!("{line}");
}

/// Starts the receiving role `role` with its stdin and stdout on two new
/// pipes; the bench's ends.
fn piped(role: &str) -> Result<(Pipes, u32), String> {
    let (their_in, to) = pipe().map_err(|e| format!("pipe: {e:?}"))?;
    let (from, their_out) = pipe().map_err(|e| format!("pipe: {e:?}"))?;
    let pid = userlib::procman::spawn_with_streams(
        SERVER,
        role.as_bytes(),
        &[],
        [
            StdStream::pipe(their_in.pipe()),
            StdStream::pipe(their_out.pipe()),
            StdStream::NONE,
        ],
    )
    .map_err(|e| format!("spawning {SERVER} {role}: {e}"))?;
    Ok((Pipes { to, from }, pid))
}

/// Starts the receiving role `role` connected to a new socket.
fn socketed(role: &str) -> Result<(Socket, u32), String> {
    let socket = Socket::create(0).map_err(|e| format!("socket: {e:?}"))?;
    let pid = userlib::procman::spawn(SERVER, format!("{role} {}", socket.port()).as_bytes(), &[])
        .map_err(|e| format!("spawning {SERVER} {role}: {e}"))?;
    Ok((socket, pid))
}

/// Ends a role by closing the bench's side and waits for it.
fn finish(pid: u32) -> Result<(), String> {
    match userlib::procman::wait(pid) {
        Ok(0) => Ok(()),
        Ok(status) => Err(format!("{SERVER} ended with {status}")),
        Err(e) => Err(format!("WAIT: {e}")),
    }
}

fn streams(source: &[u8]) -> Result<(), String> {
    let (pipes, pid) = piped("pipe-sink")?;
    let stats = sample_rounds(STREAM_WARM_UP, STREAM_SAMPLES, || move_mib(&pipes, source))?;
    report_rows("move-1mib-pipe", MIB, STREAM_SAMPLES, stats);
    drop(pipes);
    finish(pid)?;

    let (socket, pid) = socketed("socket-sink")?;
    let stats = sample_rounds(STREAM_WARM_UP, STREAM_SAMPLES, || move_mib(&socket, source))?;
    report_rows("move-1mib-socket", MIB, STREAM_SAMPLES, stats);
    socket.close().map_err(|e| format!("close: {e:?}"))?;
    finish(pid)?;

    let out: [u8; PING] = core::array::from_fn(|i| i as u8);
    let mut back = [0u8; PING];
    let (pipes, pid) = piped("pipe-echo")?;
    let stats = sample_rounds(PING_WARM_UP, PING_ROUNDS, || ping(&pipes, &out, &mut back))?;
    report_rows("pingpong-pipe-64", PING, PING_ROUNDS, stats);
    drop(pipes);
    finish(pid)?;

    let (socket, pid) = socketed("socket-echo")?;
    let stats = sample_rounds(PING_WARM_UP, PING_ROUNDS, || ping(&socket, &out, &mut back))?;
    report_rows("pingpong-socket-64", PING, PING_ROUNDS, stats);
    socket.close().map_err(|e| format!("close: {e:?}"))?;
    finish(pid)
}
