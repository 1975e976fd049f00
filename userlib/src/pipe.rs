//! POSIX-style pipes (seed 003; ABI.md §7a.3): [`pipe`] asks procman for
//! one and gives its read end ([`PipeReader`]) and write end
//! ([`PipeWriter`]); an end is given to another process with `grant` and
//! taken there with `open`. Writes of at most `abi::stream::PIPE_BUF`
//! bytes are atomic; a read returns what is there or blocks; end of file
//! once every write end is gone; a write with every read end gone fails
//! with [`StreamError::BrokenPipe`]. Both ends implement `embedded-io`'s
//! `Read` / `Write`.
//!
//! Dropping an end closes it (PIPE_CLOSE). This module must never pass
//! an end's descriptors on itself: ends move only through procman.

use abi::stream::{
    PIPE_DATA_OFFSET, PIPE_PAGES, PipeEndRequest, PipeGrantRequest, PipeReply, READ_END, WRITE_END,
};
use abi::{Error, PAGE_BYTES};
use alloc::sync::Arc;

use crate::client::CallError;
use crate::interface::Replied;
use crate::procman::PROCMAN;
use crate::stream::{MappedRing, Ring, RingEvents, StreamError};

#[derive(Debug)]
struct PipeShared {
    pipe: u32,
    ring: Ring<MappedRing>,
}

/// A pipe's read end.
#[derive(Debug)]
pub struct PipeReader {
    shared: Arc<PipeShared>,
    open: bool,
}

/// A pipe's write end.
#[derive(Debug)]
pub struct PipeWriter {
    shared: Arc<PipeShared>,
    open: bool,
}

fn shared(mut reply: Replied<PipeReply>) -> Result<Arc<PipeShared>, StreamError> {
    let missing = StreamError::Call(CallError::Kernel(Error::BadSizes));
    let pipe = reply.header.pipe;
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
    // The mapping holds the object.
    drop(object);
    let capacity = memory.capacity();
    Ok(Arc::new(PipeShared {
        pipe,
        ring: Ring::new(memory, capacity, events)?,
    }))
}

/// A new pipe: its read end and its write end (PIPE_CREATE).
pub fn pipe() -> Result<(PipeReader, PipeWriter), StreamError> {
    let reply = PROCMAN.pipe_create()?;
    let pipe = reply.header.pipe;
    match shared(reply) {
        Ok(shared) => Ok((
            PipeReader {
                shared: shared.clone(),
                open: true,
            },
            PipeWriter { shared, open: true },
        )),
        Err(e) => {
            let _ = close(pipe, READ_END);
            let _ = close(pipe, WRITE_END);
            Err(e)
        }
    }
}

fn close(pipe: u32, end: u32) -> Result<(), StreamError> {
    PROCMAN.pipe_close(PipeEndRequest::new(pipe, end))?;
    Ok(())
}

fn grant(pipe: u32, end: u32, pid: u32) -> Result<(), StreamError> {
    PROCMAN.pipe_grant(PipeGrantRequest::new(pipe, end, pid))?;
    Ok(())
}

fn open(pipe: u32, end: u32) -> Result<Arc<PipeShared>, StreamError> {
    let reply = PROCMAN.pipe_open(PipeEndRequest::new(pipe, end))?;
    shared(reply).inspect_err(|_| {
        let _ = close(pipe, end);
    })
}

impl PipeReader {
    /// Opens the read end of `pipe` that was granted to this process.
    pub fn open(pipe: u32) -> Result<Self, StreamError> {
        Ok(PipeReader {
            shared: open(pipe, READ_END)?,
            open: true,
        })
    }

    /// The pipe's number.
    pub fn pipe(&self) -> u32 {
        self.shared.pipe
    }

    /// Gives process `pid` a read end of this pipe (it opens it with
    /// [`PipeReader::open`]).
    pub fn grant(&self, pid: u32) -> Result<(), StreamError> {
        grant(self.shared.pipe, READ_END, pid)
    }

    /// Reads what is there, at most `out.len()` bytes, blocking while the
    /// pipe is empty; 0 is end of file.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.shared.ring.read(out)
    }

    /// As [`PipeReader::read`], with the read position after the bytes
    /// (`Ring::read_positioned`).
    pub fn read_positioned(&self, out: &mut [u8]) -> Result<(usize, u32), StreamError> {
        self.shared.ring.read_positioned(out)
    }

    /// As [`PipeReader::read_positioned`], but `None` once `stop()` says
    /// so (`Ring::read_positioned_or_stop`; make it true, then
    /// [`PipeReader::wake_reader`]).
    pub fn read_positioned_or_stop(
        &self,
        out: &mut [u8],
        stop: impl Fn() -> bool,
    ) -> Result<Option<(usize, u32)>, StreamError> {
        self.shared.ring.read_positioned_or_stop(out, stop)
    }

    /// Wakes a reader of this process waiting in
    /// [`PipeReader::read_positioned_or_stop`].
    pub fn wake_reader(&self) {
        self.shared.ring.wake_reader();
    }

    /// Reads what is there without blocking: `None` when the pipe is
    /// empty (`Ring::try_read`).
    pub fn try_read(&self, out: &mut [u8]) -> Result<Option<(usize, u32)>, StreamError> {
        self.shared.ring.try_read(out)
    }

    /// Bytes in the pipe now.
    pub fn held(&self) -> u32 {
        self.shared.ring.held()
    }

    /// Closes this end, returning procman's answer.
    pub fn close(mut self) -> Result<(), StreamError> {
        self.open = false;
        close(self.shared.pipe, READ_END)
    }
}

impl PipeWriter {
    /// Opens the write end of `pipe` that was granted to this process.
    pub fn open(pipe: u32) -> Result<Self, StreamError> {
        Ok(PipeWriter {
            shared: open(pipe, WRITE_END)?,
            open: true,
        })
    }

    /// The pipe's number.
    pub fn pipe(&self) -> u32 {
        self.shared.pipe
    }

    /// Gives process `pid` a write end of this pipe.
    pub fn grant(&self, pid: u32) -> Result<(), StreamError> {
        grant(self.shared.pipe, WRITE_END, pid)
    }

    /// Writes all of `bytes` (atomically when at most `PIPE_BUF`),
    /// blocking for room.
    pub fn write_all(&self, bytes: &[u8]) -> Result<(), StreamError> {
        self.shared.ring.write_all(bytes)
    }

    /// Bytes in the pipe now.
    pub fn held(&self) -> u32 {
        self.shared.ring.held()
    }

    /// Closes this end, returning procman's answer.
    pub fn close(mut self) -> Result<(), StreamError> {
        self.open = false;
        close(self.shared.pipe, WRITE_END)
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        if self.open {
            let _ = close(self.shared.pipe, READ_END);
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        if self.open {
            let _ = close(self.shared.pipe, WRITE_END);
        }
    }
}

impl embedded_io::ErrorType for PipeReader {
    type Error = StreamError;
}

impl embedded_io::ErrorType for PipeWriter {
    type Error = StreamError;
}

impl embedded_io::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        PipeReader::read(self, buf)
    }
}

impl embedded_io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        // The inherent write (the trait's write_all would call back here).
        PipeWriter::write_all(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}
