//! The server side: implement [`Server`] and hand it to [`serve`], which
//! receives each call, gives it to [`Server::handle`] as a [`Request`]
//! with an empty reply [`Message`], sends the reply and waits for the next
//! call, all with one REPLY_RECEIVE per call.
//!
//! Reply convention (the same as the kernel's replies): msgRetVal,
//! msgErrno, then the payload the handler built, then its descriptor
//! slots. [`Response::Reply`] sets msgRetVal and msgErrno = 0;
//! [`Response::Error`] sends msgRetVal = -1, msgErrno and nothing else,
//! which [`crate::call`] reports as [`crate::CallError::Server`].
//!
//! The loop uses two 4095-byte buffers and alternates them: a request is
//! read from one while the reply is built in the other, and REPLY_RECEIVE
//! receives the next request into the buffer the reply went out of.

use abi::function::Function;
use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::{Descriptor, DescriptorSlot, Error, MessageSizes, TransferMode};
use zerocopy::FromBytes;

use crate::descriptor::OwnedDescriptor;
use crate::ipc::{self, ReceiveError, Received, capacity_of};
use crate::message::{Message, MessageBuffer};
use crate::println;
use crate::runtime::program_name;

/// A server: answers one request at a time.
pub trait Server {
    /// Answers `request`. The reply's payload and descriptors go into
    /// `reply`, whose capacity is what the caller's buffer has room for
    /// after msgRetVal and msgErrno, so a push that would not fit fails
    /// here rather than in the kernel.
    ///
    /// Descriptors that arrived with the request and were not taken
    /// ([`Request::take_descriptor`]) are closed once the handler returns.
    fn handle(&mut self, request: &mut Request<'_>, reply: &mut Message<&mut [u8]>) -> Response;
}

impl<F> Server for F
where
    F: FnMut(&mut Request<'_>, &mut Message<&mut [u8]>) -> Response,
{
    fn handle(&mut self, request: &mut Request<'_>, reply: &mut Message<&mut [u8]>) -> Response {
        self(request, reply)
    }
}

/// How to answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Success: msgRetVal = this value (not `u32::MAX`, which reads as -1),
    /// msgErrno = 0, then the reply message's payload and descriptors.
    Reply(u32),
    /// Failure: msgRetVal = -1, msgErrno = this number and no payload; the
    /// reply message is discarded (descriptors it moved are closed).
    /// Server-defined numbers start at `abi::error::FIRST_SERVER_ERROR`.
    Error(u32),
}

/// A call being answered: the function, the caller's cookie, the message.
#[derive(Debug)]
pub struct Request<'a> {
    function: Function,
    cookie: u64,
    reply_cookie: u64,
    sender_sizes: MessageSizes,
    message: Message<&'a mut [u8]>,
}

impl<'a> Request<'a> {
    /// A request that arrived with `received` in `buffer` (what [`serve`]
    /// builds; public so that servers can be unit-tested without a kernel).
    pub fn new(received: Received, buffer: &'a mut [u8]) -> Self {
        let mut message = Message::over(buffer);
        if message.set_arrived(received.sizes).is_err() {
            // The kernel never delivers more than the buffer holds.
            message.clear();
        }
        Request {
            function: received.function,
            cookie: received.cookie,
            reply_cookie: received.cookie,
            sender_sizes: received.sizes,
            message,
        }
    }

    /// The function the caller asked for.
    pub fn function(&self) -> Function {
        self.function
    }

    /// The cookie stored in the caller's reference (a fresh reference's
    /// is 0); a server keeps per-client state in it.
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// Sets the cookie the reply stores into the caller's reference
    /// (without a call to this, the reply stores the cookie back unchanged).
    pub fn set_cookie(&mut self, cookie: u64) {
        self.reply_cookie = cookie;
    }

    /// The cookie the reply will store.
    pub fn reply_cookie(&self) -> u64 {
        self.reply_cookie
    }

    /// The caller's buffer size: the most the reply can occupy, header
    /// included.
    pub fn reply_budget(&self) -> u16 {
        self.sender_sizes.total_size()
    }

    /// The request message.
    pub fn message(&self) -> &Message<&'a mut [u8]> {
        &self.message
    }

    /// The request message, mutable (to take descriptors, or to reuse data).
    pub fn message_mut(&mut self) -> &mut Message<&'a mut [u8]> {
        &mut self.message
    }

    /// The request data.
    pub fn data(&self) -> &[u8] {
        self.message.data()
    }

    /// A value read from the request data at `offset`.
    pub fn read<T: FromBytes>(&self, offset: usize) -> Option<T> {
        self.message.read(offset)
    }

    /// The number of descriptors that arrived.
    pub fn descriptor_count(&self) -> usize {
        usize::from(self.message.descriptor_count())
    }

    /// Arrived slot `index`: this process's new descriptor and the rights granted.
    pub fn descriptor_slot(&self, index: usize) -> Option<DescriptorSlot> {
        self.message.descriptor_slot(index)
    }

    /// Takes ownership of the descriptor that arrived in slot `index`.
    pub fn take_descriptor(&mut self, index: usize) -> Option<OwnedDescriptor> {
        self.message.take_descriptor(index)
    }
}

/// Serves the door whose owner reference is `door` with `server`, forever:
/// RECEIVE, then for each call [`Server::handle`] and REPLY_RECEIVE.
///
/// Returns only when receiving fails (the door is gone, `door` is not its
/// owner reference, ...), with that error.
///
/// When a reply fails (the ABI's REPLY_RECEIVE does not receive then, and
/// the caller stays blocked), the loop closes the descriptors the reply
/// would have moved (they were the handler's to give away), logs the error,
/// answers the caller with an error reply whose msgErrno is that
/// `abi::Error`'s number (if the caller's buffer has room for one) and
/// RECEIVEs again. When the reply went out and the receive half failed
/// (arg2 = `REPLY_DELIVERED`), it RECEIVEs again at once, which meets the
/// same error and ends the loop.
pub fn serve<S: Server + ?Sized>(door: &OwnedDescriptor, server: &mut S) -> Error {
    let mut first = MessageBuffer::new();
    let mut second = MessageBuffer::new();
    let mut request_buffer: &mut [u8] = &mut first.0;
    let mut reply_buffer: &mut [u8] = &mut second.0;
    let mut next = ipc::receive(door.descriptor(), request_buffer);
    loop {
        let received = match next {
            Ok(received) => received,
            Err(error) => return error.into(),
        };
        let (cookie, sizes) = answer(server, received, request_buffer, reply_buffer);
        next = match ipc::reply_receive(cookie, reply_buffer, sizes) {
            Ok(received) => {
                core::mem::swap(&mut request_buffer, &mut reply_buffer);
                Ok(received)
            }
            // The caller ended (or was interrupted, ABI.md §6.10) while it
            // was served: nobody is left to tell, and nothing failed here.
            Err(ReceiveError::Kernel(Error::CallerGone)) => {
                close_moved(reply_buffer, sizes);
                ipc::receive(door.descriptor(), request_buffer)
            }
            Err(ReceiveError::Kernel(error)) => {
                close_moved(reply_buffer, sizes);
                println!(
                    "{}: reply to function {:#x} failed: {}",
                    program_name(),
                    received.function.0,
                    error
                );
                fail_caller(cookie, received, error, reply_buffer);
                ipc::receive(door.descriptor(), request_buffer)
            }
            Err(ReceiveError::AfterReply(_) | ReceiveError::BufferTooSmall(_)) => {
                ipc::receive(door.descriptor(), request_buffer)
            }
        };
    }
}

/// Runs the handler on one request and writes the reply into
/// `reply_buffer`; returns the reply's cookie and sizes (total: the whole
/// buffer, the next receive's size).
pub(crate) fn answer<S: Server + ?Sized>(
    server: &mut S,
    received: Received,
    request_buffer: &mut [u8],
    reply_buffer: &mut [u8],
) -> (u64, MessageSizes) {
    let total = capacity_of(reply_buffer);
    let budget = usize::from(received.sizes.total_size().min(total));
    let mut request = Request::new(received, request_buffer);
    let (header, rest) = reply_buffer.split_at_mut(REPLY_PAYLOAD_OFFSET);
    let payload_room = budget.saturating_sub(REPLY_PAYLOAD_OFFSET);
    let mut reply = Message::over(&mut rest[..payload_room]);
    let response = server.handle(&mut request, &mut reply);
    request.message.discard();
    let (data_size, descriptor_count) = if budget < REPLY_PAYLOAD_OFFSET {
        // seed 004: the caller left no room for even a status; it gets an
        // empty reply (msgRetVal 0) rather than none at all.
        reply.discard();
        (0, 0)
    } else {
        match response {
            Response::Reply(value) => {
                write_header(header, value, 0);
                (
                    REPLY_PAYLOAD_OFFSET as u16 + reply.data_size(),
                    reply.descriptor_count(),
                )
            }
            Response::Error(errno) => {
                reply.discard();
                write_header(header, u32::MAX, errno);
                (REPLY_PAYLOAD_OFFSET as u16, 0)
            }
        }
    };
    let sizes = MessageSizes::new()
        .with_total_size(total)
        .with_data_size(data_size)
        .with_descriptor_count(descriptor_count);
    (request.reply_cookie, sizes)
}

/// msgRetVal and msgErrno.
fn write_header(header: &mut [u8], ret_val: u32, errno: u32) {
    header[..4].copy_from_slice(&ret_val.to_le_bytes());
    header[4..8].copy_from_slice(&errno.to_le_bytes());
}

/// After a failed reply: closes the descriptors its slots would have moved,
/// which stayed in this process's table.
fn close_moved(buffer: &[u8], sizes: MessageSizes) {
    let first = usize::from(abi::message::descriptor_offset(sizes.data_size()));
    for index in 0..usize::from(sizes.descriptor_count()) {
        let at = first + index * usize::from(abi::message::SLOT_SIZE);
        let slot = buffer
            .get(at..)
            .and_then(|bytes| DescriptorSlot::read_from_prefix(bytes).ok())
            .map(|(slot, _)| slot);
        if let Some(slot) = slot
            && slot.mode == TransferMode::Move as u32
        {
            drop(OwnedDescriptor::from_raw(Descriptor(slot.descriptor)));
        }
    }
}

/// After a failed reply: an error reply carrying the error, so the caller
/// does not wait until the next RECEIVE abandons it.
fn fail_caller(cookie: u64, received: Received, error: Error, buffer: &mut [u8]) {
    if usize::from(received.sizes.total_size()) < REPLY_PAYLOAD_OFFSET {
        return;
    }
    write_header(buffer, u32::MAX, error as u32);
    let sizes = MessageSizes::new()
        .with_total_size(capacity_of(buffer))
        .with_data_size(REPLY_PAYLOAD_OFFSET as u16);
    // NOTHING_TO_REPLY here means the reply had gone out after all.
    let _ = ipc::reply(cookie, buffer, sizes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_kernel::{self, FakeCall};
    use abi::function::{RECEIVE, REPLY, REPLY_RECEIVE};
    use abi::{Descriptor, Rights, TransferMode, TrapArgs};
    use alloc::vec::Vec;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Echoes the data, counts in the cookie, returns descriptors.
    fn handler(request: &mut Request<'_>, reply: &mut Message<&mut [u8]>) -> Response {
        match request.function().0 {
            0x8000 => match reply.push_data(request.data()) {
                Ok(_) => Response::Reply(request.data().len() as u32),
                Err(_) => Response::Error(0x1001),
            },
            0x8001 => {
                request.set_cookie(request.cookie() + 1);
                Response::Reply(0)
            }
            0x8002 => {
                for index in 0..request.descriptor_count() {
                    let rights = request
                        .descriptor_slot(index)
                        .map_or(Rights::NONE, |s| Rights(s.rights));
                    if let Some(descriptor) = request.take_descriptor(index) {
                        let _ = reply.push_move(descriptor, rights);
                    }
                }
                Response::Reply(0)
            }
            _ => Response::Error(0x1000),
        }
    }

    fn sizes(total: u16, data: u16, count: u8) -> MessageSizes {
        MessageSizes::from_fields(total, data, count).unwrap_or_default()
    }

    #[test]
    fn answers_build_header_payload_and_cookie() {
        let mut request_buffer = [0u8; 4095];
        let mut reply_buffer = [0u8; 4095];
        request_buffer[..3].copy_from_slice(b"abc");
        let received = Received {
            function: Function(0x8000),
            cookie: 7,
            sizes: sizes(64, 3, 0),
        };
        let mut server = handler;
        let (cookie, reply) = answer(
            &mut server,
            received,
            &mut request_buffer,
            &mut reply_buffer,
        );
        assert_eq!((cookie, reply), (7, sizes(4095, 11, 0)));
        assert_eq!(&reply_buffer[..11], b"\x03\0\0\0\0\0\0\0abc");

        // Too big for the caller's 10-byte buffer: an error reply instead.
        let small = Received {
            sizes: sizes(10, 3, 0),
            ..received
        };
        let (_, reply) = answer(&mut server, small, &mut request_buffer, &mut reply_buffer);
        assert_eq!(reply, sizes(4095, 8, 0));
        assert_eq!(&reply_buffer[..8], b"\xff\xff\xff\xff\x01\x10\0\0");

        let count = Received {
            function: Function(0x8001),
            ..received
        };
        assert_eq!(
            answer(&mut server, count, &mut request_buffer, &mut reply_buffer).0,
            8
        );
    }

    #[test]
    fn arrived_descriptors_go_back_moved_with_their_rights() {
        let mut request_buffer = [0u8; 4095];
        let mut reply_buffer = [0u8; 4095];
        let slot = DescriptorSlot::copy(Descriptor(6), Rights::SEND.union(Rights::TRANSFER));
        request_buffer[..16].copy_from_slice(zerocopy::IntoBytes::as_bytes(&slot));
        let received = Received {
            function: Function(0x8002),
            cookie: 0,
            sizes: sizes(100, 0, 1),
        };
        let mut server = handler;
        let (_, reply) = answer(
            &mut server,
            received,
            &mut request_buffer,
            &mut reply_buffer,
        );
        assert_eq!(reply, sizes(4095, 8, 1));
        let sent = DescriptorSlot::read_from_bytes(&reply_buffer[8..24]).ok();
        assert_eq!(
            sent.map(|s| (s.descriptor, s.rights, s.mode)),
            Some((6, slot.rights, TransferMode::Move as u32))
        );
    }

    #[test]
    fn requests_alternate_between_the_two_buffers() {
        let addresses: Rc<RefCell<Vec<u64>>> = Rc::default();
        let record = addresses.clone();
        let mut step = 0;
        let error = fake_kernel::run(
            move |call: &mut FakeCall| {
                if call.function() == abi::KernelFunction::DebugWrite.function() {
                    return call.reply_ok(&[], &[]);
                }
                step += 1;
                record.borrow_mut().push(call.args.arg2);
                match (step, call.function()) {
                    (1, RECEIVE) => call.deliver(Function(0x8000), 1, b"one", 64),
                    (2, REPLY_RECEIVE) => {
                        assert_eq!(call.data(), b"\x03\0\0\0\0\0\0\0one");
                        assert_eq!(call.args.arg1, 1);
                        call.deliver(Function(0x8001), 5, b"second", 64)
                    }
                    (3, REPLY_RECEIVE) => {
                        assert_eq!(call.data(), b"\0\0\0\0\0\0\0\0");
                        assert_eq!(call.args.arg1, 6);
                        TrapArgs::error(Error::PeerDied)
                    }
                    (4, REPLY) => TrapArgs::error(Error::NothingToReply),
                    (5, RECEIVE) => TrapArgs::error(Error::PeerDied),
                    other => panic!("unexpected trap {other:?}"),
                }
            },
            || {
                let door = OwnedDescriptor::from_raw(Descriptor(4));
                let error = door.as_ref().map(|door| serve(door, &mut handler));
                let _ = door.map(OwnedDescriptor::into_raw);
                error
            },
        );
        assert_eq!(error, Some(Error::PeerDied));
        let addresses = addresses.borrow();
        // Received into A, replied from B (receiving into B), replied from A.
        assert_ne!(addresses[0], addresses[1]);
        assert_eq!(addresses[0], addresses[2]);
    }

    #[test]
    fn a_failed_reply_answers_with_an_error_and_receives_again() {
        let log: Rc<RefCell<Vec<(i32, MessageSizes, u64)>>> = Rc::default();
        let record = log.clone();
        let mut step = 0;
        let error = fake_kernel::run(
            move |call: &mut FakeCall| {
                step += 1;
                if call.function() != abi::KernelFunction::DebugWrite.function() {
                    record
                        .borrow_mut()
                        .push((call.function().0, call.sizes(), call.args.arg1));
                }
                match (step, call.function()) {
                    (1, RECEIVE) => call.deliver(Function(0x8000), 41, b"hi", 64),
                    (2, REPLY_RECEIVE) => {
                        assert_eq!(call.data(), b"\x02\0\0\0\0\0\0\0hi");
                        TrapArgs::error(Error::ReplyTooLarge)
                    }
                    (_, f) if f == abi::KernelFunction::DebugWrite.function() => {
                        call.reply_ok(&[], &[])
                    }
                    (4, REPLY) => {
                        assert_eq!(call.data(), b"\xff\xff\xff\xff\x0b\0\0\0");
                        TrapArgs::default()
                    }
                    (5, RECEIVE) => TrapArgs::error(Error::PeerDied),
                    other => panic!("unexpected trap {other:?}"),
                }
            },
            || {
                let door = OwnedDescriptor::from_raw(Descriptor(4));
                let error = door.as_ref().map(|door| serve(door, &mut handler));
                let _ = door.map(OwnedDescriptor::into_raw);
                error
            },
        );
        assert_eq!(error, Some(Error::PeerDied));
        let log = log.borrow();
        let functions: Vec<i32> = log.iter().map(|(f, _, _)| *f).collect();
        assert_eq!(functions, [RECEIVE.0, REPLY_RECEIVE.0, REPLY.0, RECEIVE.0]);
        // The reply kept the caller's cookie and offered the whole buffer.
        assert_eq!(log[1].2, 41);
        assert_eq!(log[1].1.total_size(), 4095);
        assert_eq!(log[0].2, 4);
    }

    #[test]
    fn a_failed_reply_closes_what_it_would_have_moved_and_a_delivered_one_does_not() {
        type Log = Rc<RefCell<Vec<(i32, Vec<u8>)>>>;
        let log: Log = Rc::default();
        let record = log.clone();
        let mut step = 0;
        let error = fake_kernel::run(
            move |call: &mut FakeCall| {
                if call.function() == abi::KernelFunction::DebugWrite.function() {
                    return call.reply_ok(&[], &[]);
                }
                step += 1;
                record
                    .borrow_mut()
                    .push((call.function().0, call.data().to_vec()));
                let arrived =
                    DescriptorSlot::copy(Descriptor(6), Rights::SEND.union(Rights::TRANSFER));
                match (step, call.function()) {
                    (1, RECEIVE) => {
                        let sizes = call.write_reply(&[], &[arrived]).with_total_size(64);
                        TrapArgs::received(Function(0x8002), 1, call.args.arg2, sizes)
                    }
                    (2, REPLY_RECEIVE) => {
                        // The handler moves descriptor 6 back; the reply fails.
                        let slots = call.slots();
                        assert_eq!(slots.len(), 1);
                        assert_eq!(slots[0].mode, TransferMode::Move as u32);
                        TrapArgs::error(Error::NotTransferable)
                    }
                    // CLOSE of 6, then the error reply to the caller.
                    (3, f) if f == abi::KernelFunction::Close.function() => call.reply_ok(&[], &[]),
                    (4, REPLY) => TrapArgs::default(),
                    (5, RECEIVE) => call.deliver(Function(0x8000), 2, b"ok", 64),
                    // Delivered, then the receive half fails: no error reply.
                    (6, REPLY_RECEIVE) => TrapArgs {
                        arg2: abi::trap::REPLY_DELIVERED,
                        ..TrapArgs::error(Error::PeerDied)
                    },
                    (7, RECEIVE) => TrapArgs::error(Error::PeerDied),
                    other => panic!("unexpected trap {other:?}"),
                }
            },
            || {
                let door = OwnedDescriptor::from_raw(Descriptor(4));
                let error = door.as_ref().map(|door| serve(door, &mut handler));
                let _ = door.map(OwnedDescriptor::into_raw);
                error
            },
        );
        assert_eq!(error, Some(Error::PeerDied));
        let log = log.borrow();
        let functions: Vec<i32> = log.iter().map(|(f, _)| *f).collect();
        let close = abi::KernelFunction::Close.function().0;
        assert_eq!(
            functions,
            [
                RECEIVE.0,
                REPLY_RECEIVE.0,
                close,
                REPLY.0,
                RECEIVE.0,
                REPLY_RECEIVE.0,
                RECEIVE.0
            ]
        );
        assert_eq!(
            log[2].1.get(..4),
            Some(&6u32.to_le_bytes()[..]),
            "CLOSE names 6"
        );
    }
}
