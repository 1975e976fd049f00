//! Sockets (seed 001's 1-to-1 mailboxes; ABI.md §7a.3): [`Socket::create`]
//! makes one at a port (0: procman picks a free one), [`Socket::connect`]
//! is the one other process that talks to it. Each side sends on its own
//! ring and receives on the other's, both in one memory object procman
//! hands only to the socket's two sides (never to anyone else), through
//! the same `crate::stream` layer pipes use: a send blocks while the ring
//! is full, a receive until there is data; the peer's close is end of
//! stream after the buffered bytes, its death `StreamError::PeerDied`.
//!
//! A [`Socket`] may be cloned (a thread each for sending and receiving);
//! the last clone's drop closes it (SOCKET_CLOSE). This module must never
//! pass the socket's descriptors on itself: sides move only through procman.

use abi::stream::{
    CONNECTOR, CREATOR, SOCKET_CAPACITY, SOCKET_PAGES, SOCKET_RING_A_DATA, SOCKET_RING_B_DATA,
    SOCKET_RING_B_HEADER, SocketReply, SocketRequest,
};
use abi::{Error, PAGE_BYTES};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::client::CallError;
use crate::descriptor::OwnedDescriptor;
use crate::interface::Replied;
use crate::procman::PROCMAN;
use crate::stream::{MappedRing, Ring, RingEvents, StreamError};

#[derive(Debug)]
struct Inner {
    port: u32,
    side: u32,
    send: Ring<MappedRing>,
    receive: Ring<MappedRing>,
    open: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.open.swap(false, Ordering::AcqRel) {
            let _ = PROCMAN.socket_close(SocketRequest::new(self.port));
        }
    }
}

/// One side of a socket.
#[derive(Clone, Debug)]
pub struct Socket {
    inner: Arc<Inner>,
}

/// The rings of a socket side from its seven descriptors (the memory
/// object, ring A's data, room and lock events, ring B's): the ring it
/// sends on and the one it receives on.
pub(crate) fn socket_rings(
    side: u32,
    mut take: impl FnMut(usize) -> Option<OwnedDescriptor>,
) -> Result<(Ring<MappedRing>, Ring<MappedRing>), StreamError> {
    let missing = StreamError::Call(CallError::Kernel(Error::BadSizes));
    let object = take(0).ok_or(missing)?;
    let mut events = |first: usize| -> Result<RingEvents, StreamError> {
        Ok(RingEvents {
            data: take(first).ok_or(missing)?,
            room: take(first + 1).ok_or(missing)?,
            lock: take(first + 2).ok_or(missing)?,
        })
    };
    let a_events = events(1)?;
    let b_events = events(4)?;
    // One mapping for both rings; it holds the object.
    let a_memory = MappedRing::map(
        object.descriptor(),
        u64::from(SOCKET_PAGES) * PAGE_BYTES,
        0,
        SOCKET_RING_A_DATA,
    )?;
    let b_memory = a_memory.view(SOCKET_RING_B_HEADER, SOCKET_RING_B_DATA)?;
    let ring = |memory: MappedRing, events: RingEvents| {
        let capacity = memory.capacity();
        Ring::new(memory, capacity, events)
    };
    let a = ring(a_memory, a_events)?;
    let b = ring(b_memory, b_events)?;
    Ok(if side == CREATOR { (a, b) } else { (b, a) })
}

impl Socket {
    fn from_reply(mut reply: Replied<SocketReply>) -> Result<Self, StreamError> {
        let port = reply.header.port;
        let side = reply.header.side;
        let rings = socket_rings(side, |i| reply.take_descriptor(i));
        match rings {
            Ok((send, receive)) => Ok(Self::from_rings(port, side, send, receive)),
            Err(e) => {
                let _ = PROCMAN.socket_close(SocketRequest::new(port));
                Err(e)
            }
        }
    }

    pub(crate) fn from_rings(
        port: u32,
        side: u32,
        send: Ring<MappedRing>,
        receive: Ring<MappedRing>,
    ) -> Self {
        Socket {
            inner: Arc::new(Inner {
                port,
                side,
                send,
                receive,
                open: AtomicBool::new(true),
            }),
        }
    }

    /// CreateSocket: a socket at `port` (0: any free port); this process
    /// holds its creator side.
    pub fn create(port: u32) -> Result<Self, StreamError> {
        Self::from_reply(PROCMAN.socket_create(SocketRequest::new(port))?)
    }

    /// ConnectSocket: this process becomes the connector of the socket at
    /// `port` (never 0; a socket has one connector).
    pub fn connect(port: u32) -> Result<Self, StreamError> {
        Self::from_reply(PROCMAN.socket_connect(SocketRequest::new(port))?)
    }

    /// Connects by name: OPEN of `/sock/<port>` is SOCKET_CONNECT of that
    /// port (ABI.md §7a.8, D96), with its refusals. A name procman
    /// answers with a door instead (not a socket) is `PM_NO_SUCH_SOCKET`,
    /// the door's reference closed.
    pub fn open(name: &str) -> Result<Self, StreamError> {
        let bytes = name.as_bytes();
        let mut reply = PROCMAN.open(abi::procman::NameRequest::new(bytes), bytes)?;
        if reply.descriptor_count() != 7 {
            return Err(StreamError::Call(CallError::Server(
                abi::procman::ProcmanError::NoSuchSocket as u32,
            )));
        }
        let port = reply.value;
        match socket_rings(CONNECTOR, |i| reply.take_descriptor(i)) {
            Ok((send, receive)) => Ok(Self::from_rings(port, CONNECTOR, send, receive)),
            Err(e) => {
                let _ = PROCMAN.socket_close(SocketRequest::new(port));
                Err(e)
            }
        }
    }

    /// The socket's port.
    pub fn port(&self) -> u32 {
        self.inner.port
    }

    /// This side: `abi::stream::CREATOR` or `CONNECTOR`.
    pub fn side(&self) -> u32 {
        self.inner.side
    }

    /// Each ring's capacity.
    pub fn capacity(&self) -> u32 {
        SOCKET_CAPACITY
    }

    /// Sends all of `bytes`, blocking while the ring is full (at most
    /// `PIPE_BUF` bytes go in whole).
    pub fn send(&self, bytes: &[u8]) -> Result<(), StreamError> {
        self.inner.send.write_all(bytes)
    }

    /// SendByte.
    pub fn send_byte(&self, byte: u8) -> Result<(), StreamError> {
        self.send(&[byte])
    }

    /// Receives what is there (at most `out.len()` bytes), blocking while
    /// there is nothing; 0 is end of stream (the peer closed).
    pub fn receive(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.inner.receive.read(out)
    }

    /// ReadByte: the next byte, `None` at end of stream.
    pub fn read_byte(&self) -> Result<Option<u8>, StreamError> {
        let mut byte = [0u8; 1];
        Ok((self.receive(&mut byte)? == 1).then_some(byte[0]))
    }

    /// Bytes waiting to be received now.
    pub fn pending(&self) -> u32 {
        self.inner.receive.held()
    }

    /// Bytes sent and not yet received by the peer.
    pub fn unreceived(&self) -> u32 {
        self.inner.send.held()
    }

    /// CloseSocket: gives up this process's side now (every clone is
    /// closed with it), returning procman's answer.
    pub fn close(&self) -> Result<(), StreamError> {
        if self.inner.open.swap(false, Ordering::AcqRel) {
            PROCMAN.socket_close(SocketRequest::new(self.inner.port))?;
        }
        Ok(())
    }
}

impl embedded_io::ErrorType for Socket {
    type Error = StreamError;
}

impl embedded_io::Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        self.receive(buf)
    }
}

impl embedded_io::Write for Socket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        self.send(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}
