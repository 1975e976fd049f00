//! Byte streams (seed 003's pipes; ABI.md §7a.3): procman's pipe protocol
//! (functions 0x430-0x434) and the layout of the byte ring every stream
//! carries its bytes in.
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
    /// Descriptors procman holds for pipes (4 each).
    pub descriptors: u32,
    /// Reserved, zero.
    pub reserved: u32,
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
        for f in [PIPE_CREATE, PIPE_CLOSE, PIPE_GRANT, PIPE_OPEN, STREAM_TABLE] {
            assert_eq!(f.range(), crate::FunctionRange::ProcessManager);
        }
        assert_eq!(
            PipeGrantRequest::new(1, 2, 3).as_bytes(),
            b"\x01\0\0\0\x02\0\0\0\x03\0\0\0\0\0\0\0"
        );
    }
}
