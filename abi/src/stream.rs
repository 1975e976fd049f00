//! Byte streams (seed 003's pipes, seed 001's sockets, standard streams;
//! ABI.md §7a.3): procman's pipe protocol (functions 0x430-0x434), its
//! standard-stream and socket protocol (0x435-0x43A) and the layout of the
//! byte ring every stream carries its bytes in.
//!
//! A pipe is a memory object of [`PIPE_PAGES`] pages and three kernel
//! events that procman makes and hands to the holders of its ends; procman
//! keeps the record of who holds which end, so end of file and a broken
//! pipe follow closes and deaths it sees, never what a caller claims.
//!
//! This module must never hold code that touches the ring: that is
//! `userlib::stream`'s; here are only the numbers and the layout.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::Function;

/// Make a pipe: empty request -> [`PipeReply`]; slots 0-3: the ring's
/// memory object, its data, room and lock events. The caller holds one
/// read end and one write end.
pub const PIPE_CREATE: Function = Function(0x430);
/// Give up one reference of an end: [`PipeEndRequest`] -> nothing.
pub const PIPE_CLOSE: Function = Function(0x431);
/// Give process `pid` one reference of an end the caller holds:
/// [`PipeGrantRequest`] -> nothing. The grantee holds it from now on (it
/// counts for end of file) and fetches its descriptors with PIPE_OPEN.
pub const PIPE_GRANT: Function = Function(0x432);
/// Take the descriptors of an end granted to the caller:
/// [`PipeEndRequest`] -> [`PipeReply`], slots as PIPE_CREATE's.
pub const PIPE_OPEN: Function = Function(0x433);
/// procman's stream table in numbers: empty -> [`StreamTableReply`].
pub const STREAM_TABLE: Function = Function(0x434);

/// The caller's standard streams as SPAWN gave them: empty ->
/// [`StdioReply`] (no descriptors).
pub const STDIO: Function = Function(0x435);
/// Take the descriptors of standard stream `stream` (0 stdin, 1 stdout,
/// 2 stderr): [`StdioOpenRequest`] -> [`StdioOpenReply`]; slots: a pipe's
/// four (as PIPE_OPEN's) or a socket's seven (as SOCKET_CREATE's).
pub const STDIO_OPEN: Function = Function(0x436);
/// Make a socket at a port (0: procman picks a free one):
/// [`SocketRequest`] -> [`SocketReply`], msgRetVal the port; slots 0-6:
/// the socket's memory object, then ring A's data, room and lock events,
/// then ring B's. The caller holds the creator side.
pub const SOCKET_CREATE: Function = Function(0x438);
/// Connect to the socket at a port: [`SocketRequest`] -> [`SocketReply`],
/// slots as SOCKET_CREATE's. The caller holds the connector side.
pub const SOCKET_CONNECT: Function = Function(0x439);
/// Give up one reference of the caller's side of the socket at a port:
/// [`SocketRequest`] -> nothing.
pub const SOCKET_CLOSE: Function = Function(0x43A);

/// POSIX's `PIPE_BUF`: a write of at most this many bytes reaches the
/// reader whole, never interleaved with another writer's bytes.
pub const PIPE_BUF: usize = 512;
/// A pipe's memory object: a header page, then the ring's data page.
pub const PIPE_PAGES: u32 = 2;
/// Where a pipe's ring data starts in its memory object.
pub const PIPE_DATA_OFFSET: u64 = 4096;
/// A pipe's ring capacity in bytes (a power of two, so the free-running
/// u32 indices stay correct across their wrap).
pub const PIPE_CAPACITY: u32 = 4096;

/// The read end.
pub const READ_END: u32 = 1;
/// The write end.
pub const WRITE_END: u32 = 2;

/// Ring flag: every write end is gone (closed or its holder ended):
/// the reader gets end of file once the ring is empty. Set by procman only.
pub const WRITERS_GONE: u32 = 1 << 0;
/// Ring flag: every read end is gone: a write fails (broken pipe). Set by
/// procman only.
pub const READERS_GONE: u32 = 1 << 1;
/// Ring flag (sockets), with [`WRITERS_GONE`]: the writing side's last
/// holder ended without closing: after the buffered bytes a read fails
/// with `PM_PEER_DIED` instead of end of stream.
pub const WRITER_DIED: u32 = 1 << 2;
/// Ring flag (sockets), with [`READERS_GONE`]: the reading side's last
/// holder ended without closing: a write fails with `PM_PEER_DIED`.
pub const READER_DIED: u32 = 1 << 3;

/// The highest socket port.
pub const MAX_PORT: u32 = 65535;
/// SOCKET_CREATE of port 0 picks the first free port from here (cycling
/// through `FIRST_EPHEMERAL_PORT..=MAX_PORT`).
pub const FIRST_EPHEMERAL_PORT: u32 = 49152;
/// A socket's memory object: a header page (ring A's header at offset 0,
/// ring B's at [`SOCKET_RING_B_HEADER`]), ring A's data page, ring B's.
pub const SOCKET_PAGES: u32 = 3;
/// Where ring B's header lies in a socket's memory object.
pub const SOCKET_RING_B_HEADER: u64 = 64;
/// Where ring A's data starts (creator to connector).
pub const SOCKET_RING_A_DATA: u64 = 4096;
/// Where ring B's data starts (connector to creator).
pub const SOCKET_RING_B_DATA: u64 = 8192;
/// Each of a socket's rings' capacity in bytes.
pub const SOCKET_CAPACITY: u32 = 4096;
/// The socket side that created it: writes ring A, reads ring B.
pub const CREATOR: u32 = 1;
/// The socket side that connected: writes ring B, reads ring A.
pub const CONNECTOR: u32 = 2;

/// A standard stream's kind: none (stdin reads end of file, stdout and
/// stderr go to the kernel console).
pub const STREAM_NONE: u32 = 0;
/// A standard stream's kind: a pipe end (stdin a read end, stdout and
/// stderr write ends); `number` is the pipe.
pub const STREAM_PIPE: u32 = 1;
/// A standard stream's kind: the side of a socket the caller holds;
/// `number` is its port.
pub const STREAM_SOCKET: u32 = 2;
/// Standard input's stream number.
pub const STDIN: u32 = 0;
/// Standard output's stream number.
pub const STDOUT: u32 = 1;
/// Standard error's stream number.
pub const STDERR: u32 = 2;

/// One standard stream of SPAWN's request and STDIO's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StdStream {
    /// [`STREAM_NONE`], [`STREAM_PIPE`] or [`STREAM_SOCKET`].
    pub kind: u32,
    /// The pipe's number or the socket's port (0 for none).
    pub number: u32,
}

impl StdStream {
    /// No stream.
    pub const NONE: StdStream = StdStream {
        kind: STREAM_NONE,
        number: 0,
    };

    /// An end of pipe `pipe` (the read end for stdin, the write end for
    /// stdout and stderr).
    pub const fn pipe(pipe: u32) -> Self {
        StdStream {
            kind: STREAM_PIPE,
            number: pipe,
        }
    }

    /// The caller's side of the socket at `port`.
    pub const fn socket(port: u32) -> Self {
        StdStream {
            kind: STREAM_SOCKET,
            number: port,
        }
    }
}

/// STDIO's reply payload: the caller's three standard streams.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StdioReply {
    /// stdin, stdout, stderr.
    pub streams: [StdStream; 3],
}

/// STDIO_OPEN.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StdioOpenRequest {
    /// [`STDIN`], [`STDOUT`] or [`STDERR`].
    pub stream: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

impl StdioOpenRequest {
    /// The request for standard stream `stream`.
    pub const fn new(stream: u32) -> Self {
        StdioOpenRequest {
            stream,
            reserved: 0,
        }
    }
}

/// STDIO_OPEN's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StdioOpenReply {
    /// [`STREAM_PIPE`] or [`STREAM_SOCKET`].
    pub kind: u32,
    /// The pipe's number or the socket's port.
    pub number: u32,
    /// The pipe end ([`READ_END`], [`WRITE_END`]) or the socket side
    /// ([`CREATOR`], [`CONNECTOR`]).
    pub end: u32,
    /// The ring capacity (each ring's, for a socket).
    pub capacity: u32,
}

/// SOCKET_CREATE, SOCKET_CONNECT, SOCKET_CLOSE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SocketRequest {
    /// The port (0 for SOCKET_CREATE: any free one).
    pub port: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

impl SocketRequest {
    /// The request naming `port`.
    pub const fn new(port: u32) -> Self {
        SocketRequest { port, reserved: 0 }
    }
}

/// SOCKET_CREATE's and SOCKET_CONNECT's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SocketReply {
    /// The socket's port.
    pub port: u32,
    /// The caller's side: [`CREATOR`] or [`CONNECTOR`].
    pub side: u32,
    /// Each ring's capacity.
    pub capacity: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// The header of a byte ring (ABI.md §7a.3), at offset 0 of a pipe's
/// memory object. Every field is a 32-bit word touched atomically.
///
/// `head` counts every byte ever written and `tail` every byte ever read,
/// both free-running modulo 2^32; a byte at index `i` lives at data offset
/// `i % capacity`. Empty: `head == tail`; full: `head - tail == capacity`
/// (wrapping subtraction). The capacity is a power of two of at most
/// 2^31, so `head - tail` is always the number of bytes held.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RingHeader {
    /// Bytes ever written (only a writer holding the lock moves it).
    pub head: u32,
    /// Bytes ever read (only a reader holding the lock moves it).
    pub tail: u32,
    /// Data bytes (a power of two).
    pub capacity: u32,
    /// [`WRITERS_GONE`], [`READERS_GONE`].
    pub flags: u32,
    /// Readers that announced they will wait on the data event.
    pub readers_waiting: u32,
    /// Writers that announced they will wait on the room event.
    pub writers_waiting: u32,
    /// The lock word (0 free; else 1 + the lockers waiting), as a
    /// share-point's (decision D23), with the lock event.
    pub lock: u32,
    /// The process id of the lock's holder (0 while free), so procman can
    /// free a lock whose holder ended.
    pub lock_owner: u32,
    /// Reserved, zero.
    pub reserved: [u32; 8],
}

/// Bytes of a [`RingHeader`].
pub const RING_HEADER_SIZE: usize = core::mem::size_of::<RingHeader>();

impl RingHeader {
    /// A new empty ring of `capacity` bytes.
    pub const fn new(capacity: u32) -> Self {
        RingHeader {
            head: 0,
            tail: 0,
            capacity,
            flags: 0,
            readers_waiting: 0,
            writers_waiting: 0,
            lock: 0,
            lock_owner: 0,
            reserved: [0; 8],
        }
    }
}

/// Where each header word lies (for atomic access in the mapped ring).
pub mod field {
    use super::RingHeader;
    /// `head`.
    pub const HEAD: u64 = core::mem::offset_of!(RingHeader, head) as u64;
    /// `tail`.
    pub const TAIL: u64 = core::mem::offset_of!(RingHeader, tail) as u64;
    /// `capacity`.
    pub const CAPACITY: u64 = core::mem::offset_of!(RingHeader, capacity) as u64;
    /// `flags`.
    pub const FLAGS: u64 = core::mem::offset_of!(RingHeader, flags) as u64;
    /// `readers_waiting`.
    pub const READERS_WAITING: u64 = core::mem::offset_of!(RingHeader, readers_waiting) as u64;
    /// `writers_waiting`.
    pub const WRITERS_WAITING: u64 = core::mem::offset_of!(RingHeader, writers_waiting) as u64;
    /// `lock`.
    pub const LOCK: u64 = core::mem::offset_of!(RingHeader, lock) as u64;
    /// `lock_owner`.
    pub const LOCK_OWNER: u64 = core::mem::offset_of!(RingHeader, lock_owner) as u64;
}

/// PIPE_CLOSE, PIPE_OPEN.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PipeEndRequest {
    /// The pipe's number (from PIPE_CREATE).
    pub pipe: u32,
    /// [`READ_END`] or [`WRITE_END`].
    pub end: u32,
}

/// PIPE_GRANT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PipeGrantRequest {
    /// The pipe's number.
    pub pipe: u32,
    /// [`READ_END`] or [`WRITE_END`].
    pub end: u32,
    /// The process that gets it.
    pub pid: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// PIPE_CREATE's and PIPE_OPEN's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PipeReply {
    /// The pipe's number (never 0).
    pub pipe: u32,
    /// The ring's capacity in bytes.
    pub capacity: u32,
}

/// STREAM_TABLE's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StreamTableReply {
    /// Live pipes.
    pub pipes: u32,
    /// End references held (opened or only granted), over every process.
    pub ends: u32,
    /// Descriptors procman holds for pipes (4 each) and sockets (7 each).
    pub descriptors: u32,
    /// Live sockets.
    pub sockets: u32,
    /// Socket end references held (opened or only granted), over every
    /// process.
    pub socket_ends: u32,
    /// Processes with a standard-stream record (given streams at SPAWN).
    pub stdio: u32,
}

impl PipeEndRequest {
    /// The request for `end` of `pipe`.
    pub const fn new(pipe: u32, end: u32) -> Self {
        PipeEndRequest { pipe, end }
    }
}

impl PipeGrantRequest {
    /// The request giving `pid` one reference of `end` of `pipe`.
    pub const fn new(pipe: u32, end: u32, pid: u32) -> Self {
        PipeGrantRequest {
            pipe,
            end,
            pid,
            reserved: 0,
        }
    }
}

/// Bytes held by a ring with indices `head` and `tail`.
pub const fn ring_used(head: u32, tail: u32) -> u32 {
    head.wrapping_sub(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_64_bytes_and_the_capacity_a_power_of_two() {
        assert_eq!(RING_HEADER_SIZE, 64);
        assert!(PIPE_CAPACITY.is_power_of_two());
        assert!(PIPE_BUF as u32 <= PIPE_CAPACITY);
        assert_eq!(
            PIPE_DATA_OFFSET + u64::from(PIPE_CAPACITY),
            u64::from(PIPE_PAGES) * crate::PAGE_BYTES
        );
        assert_eq!(ring_used(3, u32::MAX - 1), 5);
        assert_eq!(
            SOCKET_RING_B_DATA + u64::from(SOCKET_CAPACITY),
            u64::from(SOCKET_PAGES) * crate::PAGE_BYTES
        );
        assert!(SOCKET_RING_B_HEADER >= RING_HEADER_SIZE as u64);
        for f in [
            PIPE_CREATE,
            PIPE_CLOSE,
            PIPE_GRANT,
            PIPE_OPEN,
            STREAM_TABLE,
            STDIO,
            STDIO_OPEN,
            SOCKET_CREATE,
            SOCKET_CONNECT,
            SOCKET_CLOSE,
        ] {
            assert_eq!(f.range(), crate::FunctionRange::ProcessManager);
        }
        assert_eq!(
            PipeGrantRequest::new(1, 2, 3).as_bytes(),
            b"\x01\0\0\0\x02\0\0\0\x03\0\0\0\0\0\0\0"
        );
    }
}
