//! The one byte-ring layer every stream (pipes now, sockets later) moves
//! its bytes through (ABI.md §7a.3): a ring of `capacity` bytes whose
//! header (`abi::stream::RingHeader`) holds free-running u32 indices —
//! empty when `head == tail`, full when `head - tail == capacity` — in
//! memory several processes map.
//!
//! Two layers: the index arithmetic and the copies ([`ring_write`],
//! [`ring_read`]) over any [`RingMemory`], tested on the host against a
//! model; and [`Ring`], which adds the header's lock (held only while
//! copying, never while blocked) and blocking through kernel events: a
//! reader with nothing to read announces itself in `readers_waiting` and
//! waits on the data event; a writer that just published bytes signals
//! the data event once for each announced reader (and the reverse with the
//! room event). An announcement is made before the final check, and every
//! publication precedes its swap of the count, so no wake-up is lost; a
//! surplus signal only costs a waiter one more look. Nobody spins.
//!
//! End of stream and a broken pipe are procman's to declare (the ring's
//! flags, set when it sees the last end of a side close or die); this
//! module only reads them. It must never trust the shared header beyond
//! its bounds: every copy is clamped to the capacity it cached at start.

use abi::stream::{
    PIPE_BUF, READER_DIED, READERS_GONE, RingHeader, WRITER_DIED, WRITERS_GONE, field, ring_used,
};
use abi::{Descriptor, Error};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::client::CallError;
use crate::descriptor::OwnedDescriptor;
use crate::kernel;
use crate::raw::RawPages;

/// The shared memory of one ring: its header words and its data bytes.
pub trait RingMemory {
    /// The header word at byte offset `field` (one of `abi::stream::field`).
    fn word(&self, field: u64) -> &AtomicU32;
    /// Copies `bytes` to data offset `offset` (`offset + len <= capacity`).
    fn copy_in(&self, offset: u32, bytes: &[u8]);
    /// Copies data bytes from `offset` into `out`.
    fn copy_out(&self, offset: u32, out: &mut [u8]);
}

/// Why a stream operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// Every read end is gone: nobody will ever read what is written.
    BrokenPipe,
    /// The other side of a socket ended without closing it.
    PeerDied,
    /// procman or the kernel refused (its number kept).
    Call(CallError),
    /// The ring's header does not describe a usable ring (a capacity that
    /// is not a power of two or does not fit its memory).
    BadRing,
}

impl StreamError {
    /// Its error number: PM_BROKEN_PIPE, the refusal's, or INVALID_ARGUMENT
    /// for a bad ring.
    pub fn errno(&self) -> u32 {
        match self {
            StreamError::BrokenPipe => abi::procman::ProcmanError::BrokenPipe as u32,
            StreamError::PeerDied => abi::procman::ProcmanError::PeerDied as u32,
            StreamError::Call(e) => e.errno(),
            StreamError::BadRing => Error::InvalidArgument as u32,
        }
    }
}

impl From<CallError> for StreamError {
    fn from(error: CallError) -> Self {
        StreamError::Call(error)
    }
}

impl<E: crate::interface::InterfaceError> From<crate::interface::ClientError<E>> for StreamError {
    fn from(error: crate::interface::ClientError<E>) -> Self {
        StreamError::Call(error.into())
    }
}

impl From<Error> for StreamError {
    fn from(error: Error) -> Self {
        StreamError::Call(CallError::Kernel(error))
    }
}

impl embedded_io::Error for StreamError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            StreamError::BrokenPipe => embedded_io::ErrorKind::BrokenPipe,
            StreamError::PeerDied => embedded_io::ErrorKind::ConnectionReset,
            StreamError::BadRing => embedded_io::ErrorKind::InvalidData,
            StreamError::Call(_) => embedded_io::ErrorKind::Other,
        }
    }
}

/// Bytes free in a ring of `capacity` with indices `head`, `tail`
/// (0 when a peer left them inconsistent: more used than capacity).
pub fn ring_free(head: u32, tail: u32, capacity: u32) -> u32 {
    capacity.saturating_sub(ring_used(head, tail))
}

/// Bytes held, clamped to `capacity` (a scribbling peer cannot make a
/// copy leave the data).
pub fn ring_held(head: u32, tail: u32, capacity: u32) -> u32 {
    ring_used(head, tail).min(capacity)
}

/// Copies as much of `bytes` as fits after `head` and returns the new
/// head and how many it copied; the caller holds the lock and publishes
/// the head. `capacity` is a power of two.
pub fn ring_write<M: RingMemory + ?Sized>(
    memory: &M,
    capacity: u32,
    head: u32,
    tail: u32,
    bytes: &[u8],
) -> (u32, usize) {
    let count = (ring_free(head, tail, capacity) as usize).min(bytes.len());
    let at = head & (capacity - 1);
    let first = count.min((capacity - at) as usize);
    memory.copy_in(at, &bytes[..first]);
    memory.copy_in(0, &bytes[first..count]);
    (head.wrapping_add(count as u32), count)
}

/// Copies as many held bytes from `tail` as `out` takes and returns the
/// new tail and how many it copied; the caller holds the lock and
/// publishes the tail.
pub fn ring_read<M: RingMemory + ?Sized>(
    memory: &M,
    capacity: u32,
    head: u32,
    tail: u32,
    out: &mut [u8],
) -> (u32, usize) {
    let count = (ring_held(head, tail, capacity) as usize).min(out.len());
    let at = tail & (capacity - 1);
    let first = count.min((capacity - at) as usize);
    memory.copy_out(at, &mut out[..first]);
    memory.copy_out(0, &mut out[first..count]);
    (tail.wrapping_add(count as u32), count)
}

/// A ring's memory mapped in this process: the header at the mapping's
/// start, the data at `data_offset`.
#[derive(Debug)]
pub struct MappedRing {
    /// Shared by the rings of one memory object (a socket's two).
    pages: Arc<RawPages>,
    length: u64,
    header: u64,
    data: u64,
    capacity: u32,
}

impl MappedRing {
    /// Maps `pages` bytes of memory object `object` and checks the ring
    /// whose header is at `header` and data at `data` (offsets in it).
    pub fn map(
        object: Descriptor,
        length: u64,
        header: u64,
        data: u64,
    ) -> Result<Self, StreamError> {
        let pages = RawPages::map_object(
            object,
            0,
            0,
            length,
            abi::kcall::protection::READ | abi::kcall::protection::WRITE,
        )?;
        Self::over(Arc::new(pages), length, header, data)
    }

    /// Another ring in the same mapping (a socket's other direction),
    /// whose header is at `header` and data at `data`.
    pub fn view(&self, header: u64, data: u64) -> Result<Self, StreamError> {
        Self::over(self.pages.clone(), self.length, header, data)
    }

    fn over(
        pages: Arc<RawPages>,
        length: u64,
        header: u64,
        data: u64,
    ) -> Result<Self, StreamError> {
        let capacity = pages
            .word(pages.base() + header + field::CAPACITY)
            .map(|w| w.load(Ordering::Acquire))
            .ok_or(StreamError::BadRing)?;
        if !capacity.is_power_of_two()
            || capacity > 1 << 31
            || data
                .checked_add(u64::from(capacity))
                .is_none_or(|end| end > length)
            || header + core::mem::size_of::<RingHeader>() as u64 > length
        {
            return Err(StreamError::BadRing);
        }
        Ok(MappedRing {
            pages,
            length,
            header,
            data,
            capacity,
        })
    }

    /// The capacity read when it was mapped.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
}

/// A word every mapped header has (checked by [`MappedRing::map`]).
static NO_WORD: AtomicU32 = AtomicU32::new(0);

impl RingMemory for MappedRing {
    fn word(&self, field: u64) -> &AtomicU32 {
        // Always inside (checked at map time); the fallback keeps a bad
        // offset from ever faulting.
        self.pages
            .word(self.pages.base() + self.header + field)
            .unwrap_or(&NO_WORD)
    }

    fn copy_in(&self, offset: u32, bytes: &[u8]) {
        self.pages
            .copy_in(self.pages.base() + self.data + u64::from(offset), bytes);
    }

    fn copy_out(&self, offset: u32, out: &mut [u8]) {
        self.pages
            .copy_out(self.pages.base() + self.data + u64::from(offset), out);
    }
}

/// The three events of a ring.
#[derive(Debug)]
pub struct RingEvents {
    /// Signalled for readers waiting for bytes (or end of stream).
    pub data: OwnedDescriptor,
    /// Signalled for writers waiting for room (or a broken pipe).
    pub room: OwnedDescriptor,
    /// The header lock's event (a share-point lock's, D23).
    pub lock: OwnedDescriptor,
}

/// A ring with its events: blocking reads and writes.
#[derive(Debug)]
pub struct Ring<M: RingMemory> {
    memory: M,
    capacity: u32,
    events: RingEvents,
    /// This process's id, written as the lock's owner.
    pid: u32,
}

/// The header's lock, held.
struct RingLock<'a, M: RingMemory> {
    ring: &'a Ring<M>,
}

impl<M: RingMemory> Drop for RingLock<'_, M> {
    fn drop(&mut self) {
        let memory = &self.ring.memory;
        memory.word(field::LOCK_OWNER).store(0, Ordering::Relaxed);
        if memory.word(field::LOCK).fetch_sub(1, Ordering::Release) > 1 {
            let _ = kernel::event_signal(self.ring.events.lock.descriptor());
        }
    }
}

/// Signals `event` once for each waiter announced in header word `field`.
fn wake<M: RingMemory>(memory: &M, field: u64, event: &OwnedDescriptor) {
    let waiting = memory.word(field).swap(0, Ordering::SeqCst);
    for _ in 0..waiting {
        let _ = kernel::event_signal(event.descriptor());
    }
}

impl<M: RingMemory> Ring<M> {
    /// A ring over `memory` of `capacity` bytes (a power of two) with its events.
    pub fn new(memory: M, capacity: u32, events: RingEvents) -> Result<Self, StreamError> {
        if !capacity.is_power_of_two() {
            return Err(StreamError::BadRing);
        }
        let pid = kernel::process_id().unwrap_or(0) as u32;
        Ok(Ring {
            memory,
            capacity,
            events,
            pid,
        })
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    fn lock(&self) -> Result<RingLock<'_, M>, StreamError> {
        let lock = self.memory.word(field::LOCK);
        if lock.fetch_add(1, Ordering::Acquire) != 0 {
            // The holder's unlock signals once for us; a signal before we
            // wait is counted, so none is lost.
            if let Err(e) = kernel::event_wait(self.events.lock.descriptor()) {
                lock.fetch_sub(1, Ordering::Release);
                return Err(e.into());
            }
        }
        self.memory
            .word(field::LOCK_OWNER)
            .store(self.pid, Ordering::Relaxed);
        Ok(RingLock { ring: self })
    }

    fn load(&self, field: u64) -> u32 {
        self.memory.word(field).load(Ordering::SeqCst)
    }

    /// Writes all of `bytes`, blocking for room; a write of at most
    /// `PIPE_BUF` bytes goes into the ring in one piece (it waits until
    /// that much is free), a longer one in whatever pieces fit. Fails with
    /// [`StreamError::BrokenPipe`] once every reader is gone (after the
    /// bytes already written, which it then counts as lost).
    pub fn write_all(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let whole = bytes.len() <= PIPE_BUF;
        let mut done = 0;
        while done < bytes.len() {
            let need = if whole { bytes.len() as u32 } else { 1 };
            {
                let _guard = self.lock()?;
                let flags = self.load(field::FLAGS);
                if flags & READERS_GONE != 0 {
                    return Err(if flags & READER_DIED != 0 {
                        StreamError::PeerDied
                    } else {
                        StreamError::BrokenPipe
                    });
                }
                let head = self.load(field::HEAD);
                let tail = self.load(field::TAIL);
                if ring_free(head, tail, self.capacity) >= need {
                    let (head, count) =
                        ring_write(&self.memory, self.capacity, head, tail, &bytes[done..]);
                    self.memory.word(field::HEAD).store(head, Ordering::SeqCst);
                    done += count;
                    drop(_guard);
                    wake(&self.memory, field::READERS_WAITING, &self.events.data);
                    continue;
                }
                // Announced before the lock goes and before the last look.
                self.memory
                    .word(field::WRITERS_WAITING)
                    .fetch_add(1, Ordering::SeqCst);
            }
            let head = self.load(field::HEAD);
            let tail = self.load(field::TAIL);
            if ring_free(head, tail, self.capacity) >= need
                || self.load(field::FLAGS) & READERS_GONE != 0
            {
                continue;
            }
            kernel::event_wait(self.events.room.descriptor())?;
        }
        Ok(())
    }

    /// Reads what is there (at most `out.len()` bytes), blocking while the
    /// ring is empty; 0 is end of stream (every writer gone and the ring
    /// empty) or an empty `out`.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.read_positioned(out).map(|(count, _)| count)
    }

    /// As [`Ring::read`], with the ring's read position after the bytes
    /// read (its free-running tail index): a reader that shares the ring
    /// with another reader of its own process tells by it which bytes came
    /// before a point the other marked with [`Ring::try_read`].
    pub fn read_positioned(&self, out: &mut [u8]) -> Result<(usize, u32), StreamError> {
        loop {
            if let Some(read) = self.read_or_announce(out, true)? {
                return Ok(read);
            }
            if self.load(field::HEAD) != self.load(field::TAIL)
                || self.load(field::FLAGS) & WRITERS_GONE != 0
            {
                continue;
            }
            kernel::event_wait(self.events.data.descriptor())?;
        }
    }

    /// As [`Ring::read_positioned`], but `None` instead of waiting (on)
    /// once `stop()` says so, which it asks before each look and before
    /// each wait: the thread that makes `stop()` true then calls
    /// [`Ring::wake_reader`], whose signal the event keeps, so a reader
    /// about to wait or waiting looks again and stops. (A pty's pump ends
    /// this way when its master hangs up.)
    pub fn read_positioned_or_stop(
        &self,
        out: &mut [u8],
        stop: impl Fn() -> bool,
    ) -> Result<Option<(usize, u32)>, StreamError> {
        loop {
            if stop() {
                return Ok(None);
            }
            if let Some(read) = self.read_or_announce(out, true)? {
                return Ok(Some(read));
            }
            if self.load(field::HEAD) != self.load(field::TAIL)
                || self.load(field::FLAGS) & WRITERS_GONE != 0
                || stop()
            {
                continue;
            }
            kernel::event_wait(self.events.data.descriptor())?;
        }
    }

    /// Wakes this process's reader waiting in
    /// [`Ring::read_positioned_or_stop`] (or makes its next wait return).
    pub fn wake_reader(&self) {
        let _ = kernel::event_signal(self.events.data.descriptor());
    }

    /// Reads what is there without blocking: `None` when the ring is empty
    /// (end of stream or not), else the count and the read position after
    /// it, as [`Ring::read_positioned`]. An empty `out` reads nothing and
    /// gives the position.
    pub fn try_read(&self, out: &mut [u8]) -> Result<Option<(usize, u32)>, StreamError> {
        if out.is_empty() {
            return Ok(Some((0, self.load(field::TAIL))));
        }
        match self.read_or_announce(out, false)? {
            Some((0, _)) => Ok(None),
            other => Ok(other),
        }
    }

    /// One look under the lock: the bytes there (count and the position
    /// after them), end of stream as a count of 0, or `None` with the
    /// reader announced as waiting when `announce` (the caller then waits
    /// on the data event).
    fn read_or_announce(
        &self,
        out: &mut [u8],
        announce: bool,
    ) -> Result<Option<(usize, u32)>, StreamError> {
        if out.is_empty() {
            return Ok(Some((0, self.load(field::TAIL))));
        }
        let guard = self.lock()?;
        // The flag first: bytes written before the last close are in the
        // ring by the time procman sets it.
        let flags = self.load(field::FLAGS);
        let gone = flags & WRITERS_GONE != 0;
        let head = self.load(field::HEAD);
        let tail = self.load(field::TAIL);
        if ring_held(head, tail, self.capacity) > 0 {
            let (tail, count) = ring_read(&self.memory, self.capacity, head, tail, out);
            self.memory.word(field::TAIL).store(tail, Ordering::SeqCst);
            drop(guard);
            wake(&self.memory, field::WRITERS_WAITING, &self.events.room);
            return Ok(Some((count, tail)));
        }
        if gone {
            // A peer that died is an error, one that closed the end of the
            // stream (after the buffered bytes either way).
            if flags & WRITER_DIED != 0 {
                return Err(StreamError::PeerDied);
            }
            return Ok(Some((0, tail)));
        }
        if !announce {
            return Ok(None);
        }
        self.memory
            .word(field::READERS_WAITING)
            .fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }

    /// Bytes in the ring now (a snapshot).
    pub fn held(&self) -> u32 {
        ring_held(
            self.load(field::HEAD),
            self.load(field::TAIL),
            self.capacity,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    use proptest::prelude::*;

    struct HostRing {
        words: [AtomicU32; 16],
        data: RefCell<Vec<u8>>,
    }

    impl HostRing {
        fn new(capacity: u32) -> Self {
            HostRing {
                words: core::array::from_fn(|_| AtomicU32::new(0)),
                data: RefCell::new(alloc::vec![0; capacity as usize]),
            }
        }
    }

    impl RingMemory for HostRing {
        fn word(&self, field: u64) -> &AtomicU32 {
            &self.words[field as usize / 4]
        }
        fn copy_in(&self, offset: u32, bytes: &[u8]) {
            let offset = offset as usize;
            self.data.borrow_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        fn copy_out(&self, offset: u32, out: &mut [u8]) {
            let offset = offset as usize;
            out.copy_from_slice(&self.data.borrow()[offset..offset + out.len()]);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write(Vec<u8>),
        Read(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Write),
            (0usize..40).prop_map(Op::Read),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every write and read against a VecDeque of the same capacity,
        /// with the indices starting just below their wrap.
        #[test]
        fn the_ring_behaves_as_a_bounded_queue(
            capacity_log in 0u32..6,
            start in (u32::MAX - 100)..=u32::MAX,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let capacity = 1u32 << capacity_log;
            let memory = HostRing::new(capacity);
            let (mut head, mut tail) = (start, start);
            let mut model: VecDeque<u8> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Write(bytes) => {
                        let room = capacity as usize - model.len();
                        prop_assert_eq!(ring_free(head, tail, capacity) as usize, room);
                        let (new_head, count) = ring_write(&memory, capacity, head, tail, &bytes);
                        prop_assert_eq!(count, bytes.len().min(room));
                        model.extend(&bytes[..count]);
                        head = new_head;
                    }
                    Op::Read(length) => {
                        let mut out = alloc::vec![0u8; length];
                        let (new_tail, count) = ring_read(&memory, capacity, head, tail, &mut out);
                        prop_assert_eq!(count, length.min(model.len()));
                        let expected: Vec<u8> = model.drain(..count).collect();
                        prop_assert_eq!(&out[..count], &expected[..]);
                        tail = new_tail;
                    }
                }
                prop_assert_eq!(ring_used(head, tail) as usize, model.len());
                prop_assert_eq!(head == tail, model.is_empty());
                prop_assert_eq!(ring_free(head, tail, capacity) == 0, model.len() == capacity as usize);
            }
        }
    }

    #[test]
    fn a_scribbled_header_never_moves_a_copy_out_of_the_data() {
        let memory = HostRing::new(8);
        // More used than the capacity: a peer wrote nonsense.
        assert_eq!(ring_free(100, 0, 8), 0);
        assert_eq!(ring_held(100, 0, 8), 8);
        let mut out = [0u8; 32];
        let (_, count) = ring_read(&memory, 8, 100, 0, &mut out);
        assert_eq!(count, 8);
        let (_, count) = ring_write(&memory, 8, 100, 0, &[1; 32]);
        assert_eq!(count, 0);
    }

    #[test]
    fn full_and_empty_across_the_wrap() {
        let memory = HostRing::new(4);
        let start = u32::MAX - 1;
        let (head, count) = ring_write(&memory, 4, start, start, b"abcdef");
        assert_eq!(count, 4);
        assert_eq!(head, 2);
        assert_eq!(ring_free(head, start, 4), 0);
        let mut out = [0u8; 4];
        let (tail, count) = ring_read(&memory, 4, head, start, &mut out);
        assert_eq!((tail, count, &out), (2, 4, b"abcd"));
        assert_eq!(ring_used(head, tail), 0);
    }

    #[test]
    fn stream_errors_have_distinct_numbers() {
        assert_ne!(
            StreamError::BrokenPipe.errno(),
            StreamError::BadRing.errno()
        );
        assert_eq!(
            embedded_io::Error::kind(&StreamError::BrokenPipe),
            embedded_io::ErrorKind::BrokenPipe
        );
    }
}
