//! Standard streams (ABI.md §7a.3, decision D38): the stdin, stdout and
//! stderr procman's SPAWN gave this process (pipe ends or a socket side
//! the parent held), opened once by the start-up code before `main`
//! (STDIO, then STDIO_OPEN for each stream given). [`stdin`], [`stdout`]
//! and [`stderr`] are handles implementing embedded-io's `Read` / `Write`:
//! without a stream, stdin reads end of file and stdout and stderr go to
//! the kernel console, which is also where `print!` / `println!` (stdout)
//! and `eprint!` / `eprintln!` (stderr) write then.
//!
//! To give a child its streams, name ends this process holds:
//! `procman::spawn_with_streams(program, arguments, &[], [StdStream::pipe(reader.pipe()), ...])`
//! (a pipe's read end for stdin, write ends for the others, a socket side
//! by its port); [`inherit`] names this process's own stream `n`, to pass
//! it on. This module never opens a stream after start-up and never
//! spins: a process without streams pays one procman call at start.

use abi::stream::{
    PIPE_DATA_OFFSET, PIPE_PAGES, STDERR, STDIN, STDOUT, STREAM_NONE, STREAM_PIPE, STREAM_SOCKET,
    StdStream, StdioOpenRequest,
};
use abi::{Error, PAGE_BYTES};

use crate::client::CallError;
use crate::kernel;
use crate::procman::PROCMAN;
use crate::socket::{Socket, socket_rings};
use crate::stream::{MappedRing, Ring, RingEvents, StreamError};

/// One opened standard stream.
#[derive(Debug)]
enum Opened {
    /// A pipe end's ring.
    Pipe(Ring<MappedRing>),
    /// A socket side.
    Socket(Socket),
}

impl Opened {
    fn write_all(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let written = match self {
            Opened::Pipe(ring) => ring.write_all(bytes),
            Opened::Socket(socket) => socket.send(bytes),
        };
        // SIGPIPE first (ABI.md §7a.9, D84): by default it ends this
        // process (status 141); ignored or caught, the write returns the
        // broken pipe.
        if written == Err(StreamError::BrokenPipe) {
            crate::signal::broken_pipe();
        }
        written
    }

    fn read(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        match self {
            Opened::Pipe(ring) => ring.read(out),
            Opened::Socket(socket) => socket.receive(out),
        }
    }
}

/// What the start-up found: each stream as SPAWN named it and, when it
/// could be opened, its ring.
#[derive(Debug, Default)]
struct Streams {
    named: [StdStream; 3],
    opened: [Option<Opened>; 3],
}

static STREAMS: spin::Once<Streams> = spin::Once::new();

fn open(stream: u32) -> Result<Opened, StreamError> {
    let mut reply = PROCMAN.stdio_open(StdioOpenRequest::new(stream))?;
    let missing = StreamError::Call(CallError::Kernel(Error::BadSizes));
    let header = reply.header;
    match header.kind {
        STREAM_PIPE => {
            let object = reply.take_descriptor(0).ok_or(missing)?;
            let events = RingEvents {
                data: reply.take_descriptor(1).ok_or(missing)?,
                room: reply.take_descriptor(2).ok_or(missing)?,
                lock: reply.take_descriptor(3).ok_or(missing)?,
            };
            let memory = MappedRing::map(
                object.descriptor(),
                u64::from(PIPE_PAGES) * PAGE_BYTES,
                0,
                PIPE_DATA_OFFSET,
            )?;
            let capacity = memory.capacity();
            Ok(Opened::Pipe(Ring::new(memory, capacity, events)?))
        }
        STREAM_SOCKET => {
            let (send, receive) = socket_rings(header.end, |i| reply.take_descriptor(i))?;
            Ok(Opened::Socket(Socket::from_rings(
                header.number,
                header.end,
                send,
                receive,
            )))
        }
        _ => Err(StreamError::BadRing),
    }
}

/// Asks procman for this process's streams and opens them (the start-up
/// code's, once, before `main`). A process procman did not start (or
/// procman itself, which starts before there is a process manager) has
/// none: the answer is a refusal.
pub fn init() {
    STREAMS.call_once(|| {
        let mut streams = Streams::default();
        if let Ok(reply) = PROCMAN.stdio() {
            streams.named = reply.header.streams;
            for (index, named) in streams.named.iter().enumerate() {
                if named.kind != STREAM_NONE {
                    streams.opened[index] = open(index as u32).ok();
                }
            }
        }
        streams
    });
}

/// Closes every standard stream (the start-up code's, once `main`
/// returned): a process that ends by returning closes its streams, so a
/// socket's peer reads end of stream rather than `PM_PEER_DIED`, which is
/// kept for a process that faults or exits in the middle (decision D62).
pub fn close_all() {
    let Some(streams) = STREAMS.get() else {
        return;
    };
    for (index, (named, opened)) in streams.named.iter().zip(&streams.opened).enumerate() {
        match opened {
            Some(Opened::Pipe(_)) => {
                let end = if index as u32 == STDIN {
                    abi::stream::READ_END
                } else {
                    abi::stream::WRITE_END
                };
                let _ = PROCMAN.pipe_close(abi::stream::PipeEndRequest::new(named.number, end));
            }
            Some(Opened::Socket(socket)) => {
                let _ = socket.close();
            }
            None => {}
        }
    }
}

fn opened(stream: u32) -> Option<&'static Opened> {
    STREAMS.get()?.opened.get(stream as usize)?.as_ref()
}

/// Standard stream `stream` (`abi::stream::STDIN`, `STDOUT`, `STDERR`) as
/// SPAWN named it (kind `STREAM_NONE` when there is none): give it to a
/// child to let the child share it.
pub fn inherit(stream: u32) -> StdStream {
    STREAMS
        .get()
        .and_then(|s| s.named.get(stream as usize).copied())
        .unwrap_or(StdStream::NONE)
}

/// Whether standard stream `stream` is a pipe or socket (else the console,
/// or end of file for stdin).
pub fn is_connected(stream: u32) -> bool {
    opened(stream).is_some()
}

/// Writes `bytes` to standard stream `stream`, or to the console when it
/// has none. At most `PIPE_BUF` bytes go in whole.
pub fn write_stream(stream: u32, bytes: &[u8]) -> Result<(), StreamError> {
    match opened(stream) {
        Some(s) => s.write_all(bytes),
        None => {
            for chunk in bytes.chunks(abi::kcall::MAX_DEBUG_WRITE) {
                kernel::debug_write(chunk)?;
            }
            Ok(())
        }
    }
}

/// Standard input.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stdin;
/// Standard output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stdout;
/// Standard error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

/// Standard input: reads what is there, blocking while the stream is
/// empty; 0 is end of file (and always, without a stream).
pub fn stdin() -> Stdin {
    Stdin
}

/// Standard output.
pub fn stdout() -> Stdout {
    Stdout
}

/// Standard error.
pub fn stderr() -> Stderr {
    Stderr
}

impl Stdin {
    /// Reads what is there (at most `out.len()` bytes); 0 is end of file.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        match opened(STDIN) {
            Some(s) => s.read(out),
            None => Ok(0),
        }
    }
}

impl Stdout {
    /// Writes all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> Result<(), StreamError> {
        write_stream(STDOUT, bytes)
    }
}

impl Stderr {
    /// Writes all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> Result<(), StreamError> {
        write_stream(STDERR, bytes)
    }
}

impl embedded_io::ErrorType for Stdin {
    type Error = StreamError;
}
impl embedded_io::ErrorType for Stdout {
    type Error = StreamError;
}
impl embedded_io::ErrorType for Stderr {
    type Error = StreamError;
}

impl embedded_io::Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        Stdin::read(self, buf)
    }
}

impl embedded_io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        Self::write_all(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

impl embedded_io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        Self::write_all(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}
