//! Host tests of typed interfaces: a test interface's dispatch (through
//! `serve`'s `answer`, so the bytes are those a caller would receive), its
//! stub against the fake kernel, both ends through a [`Loopback`], and
//! procman's declaration against the wire format of ABI.md §7a.

use alloc::vec::Vec;
use std::cell::RefCell;
use std::rc::Rc;

use abi::procman::ProcmanError;
use abi::procman::{
    CREATE_OBJECT, CreateObjectRequest, LIST, ListReply, NameRequest, OPEN, ProcessReply, SPAWN,
    SpawnProgramRequest, UNLINK, WAIT, WaitReply, WaitRequest,
};
use abi::{KernelFunction, TransferMode, TrapArgs};
use zerocopy::KnownLayout;

use super::*;
use crate::fake_kernel::{self, FakeCall};
use crate::procman::{self, ProcmanServer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Pair {
    a: u32,
    b: u32,
}

crate::interface_error! {
    /// The test interface's errors.
    enum TestError {
        /// An undeclared function.
        Unknown = 0x1000 => "TEST_UNKNOWN",
        /// A malformed request.
        Bad = 0x1001 => "TEST_BAD",
        /// No room for the reply.
        Full = 0x1002 => "TEST_FULL",
        /// A method's own refusal.
        Refused = 0x1003 => "TEST_REFUSED",
    }
    unknown_function: Unknown,
    reply_does_not_fit: Full,
    bad_request: Bad,
}

#[test]
fn declared_errors_keep_their_numbers_names_and_roles() {
    let all = [
        (TestError::Unknown, 0x1000, "TEST_UNKNOWN"),
        (TestError::Bad, 0x1001, "TEST_BAD"),
        (TestError::Full, 0x1002, "TEST_FULL"),
        (TestError::Refused, 0x1003, "TEST_REFUSED"),
    ];
    for (error, number, name) in all {
        assert_eq!(error.number(), number);
        assert_eq!(TestError::from_number(number), Some(error));
        assert_eq!(error.name(), name);
    }
    assert_eq!(TestError::from_number(0x1004), None);
    assert_eq!(TestError::from_number(0xfff), None);
    assert_eq!(TestError::UNKNOWN_FUNCTION, TestError::Unknown);
    assert_eq!(TestError::BAD_REQUEST, TestError::Bad);
    assert_eq!(TestError::REPLY_DOES_NOT_FIT, TestError::Full);
}

crate::interface! {
    /// The test interface's stub.
    client TestClient;
    /// The test interface's server side.
    server TestServer;
    error TestError;

    /// Swaps the pair, sends the bytes back reversed; msgRetVal = their length.
    fn swap(Function(0x8000)) request(header: Pair, bytes) reply(header: Pair, bytes);
    /// One descriptor, moved back.
    fn give(Function(0x8001)) request(descriptors: 1) reply(descriptors: 0..=2);
    /// Nothing; counts in the cookie.
    fn ping(Function(0x8002)) request() reply();
    /// 0: refused, 1: a kernel error, n: n << 32.
    fn refuse(Function(0x8003)) request(header: u32) reply(header: u64);
}

#[derive(Debug, Default)]
struct Tester {
    calls: u32,
}

impl TestServer for Tester {
    fn swap(
        &mut self,
        call: &mut Call<'_>,
        header: Pair,
        bytes: &[u8],
    ) -> Result<Pair, Refusal<TestError>> {
        self.calls += 1;
        let reversed: Vec<u8> = bytes.iter().rev().copied().collect();
        call.push_bytes(&reversed).map_err(|_| TestError::Full)?;
        call.set_value(bytes.len() as u32);
        Ok(Pair {
            a: header.b,
            b: header.a,
        })
    }

    fn give(
        &mut self,
        call: &mut Call<'_>,
        descriptors: &mut Arrived<'_>,
    ) -> Result<(), Refusal<TestError>> {
        self.calls += 1;
        let slot = descriptors.slot(0).ok_or(TestError::Bad)?;
        let descriptor = descriptors.take(0).ok_or(TestError::Bad)?;
        call.push_move(descriptor, Rights(slot.rights))
            .map_err(|_| TestError::Full)?;
        Ok(())
    }

    fn ping(&mut self, call: &mut Call<'_>) -> Result<(), Refusal<TestError>> {
        self.calls += 1;
        call.set_cookie(call.cookie() + 1);
        Ok(())
    }

    fn refuse(&mut self, _call: &mut Call<'_>, header: u32) -> Result<u64, Refusal<TestError>> {
        self.calls += 1;
        match header {
            0 => Err(TestError::Refused.into()),
            1 => Err(Error::TableFull.into()),
            n => Ok(u64::from(n) << 32),
        }
    }
}

/// What a caller receives for one call answered by `server`.
#[derive(Debug, PartialEq, Eq)]
struct Answered {
    data: Vec<u8>,
    slots: Vec<DescriptorSlot>,
    cookie: u64,
}

impl Answered {
    fn errno(&self) -> Option<u32> {
        (self.data.len() == 8 && self.data[..4] == [0xff; 4])
            .then(|| u32::from_le_bytes([self.data[4], self.data[5], self.data[6], self.data[7]]))
    }
}

/// Answers one call to `server` as `serve` would, the caller's buffer
/// being `budget` bytes.
fn answer_one<S: Server>(
    server: &mut S,
    function: i32,
    data: &[u8],
    slots: &[DescriptorSlot],
    budget: u16,
) -> Answered {
    let mut message = Message::new();
    assert!(message.push_data(data).is_ok());
    for slot in slots {
        assert!(message.push_descriptor(*slot).is_ok());
    }
    let sizes = message.sizes().with_total_size(budget);
    let mut request = message.into_buffer();
    let mut reply = MessageBuffer::new();
    let received = Received {
        function: Function(function),
        cookie: 5,
        sizes,
    };
    let (cookie, sizes) = answer(server, received, &mut request.0, &mut reply.0);
    let mut arrived: Message<&mut [u8]> = Message::over(&mut reply.0[..]);
    assert!(arrived.set_arrived(sizes).is_ok());
    let slots = (0..usize::from(sizes.descriptor_count()))
        .filter_map(|index| arrived.descriptor_slot(index))
        .collect();
    Answered {
        data: arrived.data().to_vec(),
        slots,
        cookie,
    }
}

fn slot(descriptor: u32) -> DescriptorSlot {
    DescriptorSlot::copy(Descriptor(descriptor), Rights::SEND.union(Rights::TRANSFER))
}

#[test]
fn dispatch_decodes_the_request_and_encodes_the_reply() {
    let mut tester = Tester::default();
    let mut request = Pair { a: 1, b: 2 }.as_bytes().to_vec();
    request.extend_from_slice(b"abc");
    let answered = answer_one(&mut tester.server(), 0x8000, &request, &[], 4095);
    assert_eq!(
        answered.data,
        b"\x03\0\0\0\0\0\0\0\x02\0\0\0\x01\0\0\0cba".to_vec()
    );
    assert_eq!(answered.cookie, 5);

    let moved = answer_one(&mut tester.server(), 0x8001, &[], &[slot(6)], 4095);
    assert_eq!(moved.data, [0; 8]);
    assert_eq!(
        moved
            .slots
            .iter()
            .map(|s| (s.descriptor, s.rights, s.mode))
            .collect::<Vec<_>>(),
        [(6, slot(6).rights, TransferMode::Move as u32)]
    );

    let pinged = answer_one(&mut tester.server(), 0x8002, &[], &[], 64);
    assert_eq!((pinged.data, pinged.cookie), ([0; 8].to_vec(), 6));
    let value = answer_one(&mut tester.server(), 0x8003, &7u32.to_le_bytes(), &[], 64);
    assert_eq!(value.data[8..], (7u64 << 32).to_le_bytes());
    assert_eq!(tester.calls, 4);
}

#[test]
fn malformed_requests_get_bad_request_and_never_reach_the_method() {
    let mut tester = Tester::default();
    let bad = Some(TestError::Bad as u32);
    let header = Pair { a: 1, b: 2 };
    let cases: [(i32, &[u8], &[DescriptorSlot]); 7] = [
        // Shorter than the header.
        (0x8000, &header.as_bytes()[..7], &[]),
        // Descriptors where none are declared.
        (0x8000, header.as_bytes(), &[slot(6)]),
        // Data where none is declared.
        (0x8001, b"x", &[slot(6)]),
        // Fewer and more descriptors than declared.
        (0x8001, &[], &[]),
        (0x8001, &[], &[slot(6), slot(7)]),
        (0x8002, b"x", &[]),
        // Bytes after a header that takes none.
        (0x8003, b"\x07\0\0\0\0", &[]),
    ];
    for (function, data, slots) in cases {
        let answered = answer_one(&mut tester.server(), function, data, slots, 4095);
        assert_eq!(answered.errno(), bad, "function {function:#x}, {data:?}");
        assert!(answered.slots.is_empty());
    }
    assert_eq!(tester.calls, 0);
    let unknown = answer_one(&mut tester.server(), 0x8010, &[], &[], 4095);
    assert_eq!(unknown.errno(), Some(TestError::Unknown as u32));
}

#[test]
fn descriptors_of_a_refused_request_are_closed() {
    let closed: Rc<RefCell<Vec<u32>>> = Rc::default();
    let record = closed.clone();
    let answered = fake_kernel::run(
        move |call: &mut FakeCall| {
            assert_eq!(call.function(), KernelFunction::Close.function());
            let descriptor = u32::read_from_prefix(call.data()).map_or(0, |(d, _)| d);
            record.borrow_mut().push(descriptor);
            call.reply_ok(&[], &[])
        },
        || {
            let mut tester = Tester::default();
            answer_one(&mut tester.server(), 0x8001, &[], &[slot(6), slot(7)], 4095)
        },
    );
    assert_eq!(answered.errno(), Some(TestError::Bad as u32));
    assert_eq!(*closed.borrow(), [6, 7]);
}

#[test]
fn a_reply_header_that_does_not_fit_is_refused_before_the_method() {
    let mut tester = Tester::default();
    // 8 bytes of status and 4 of room: the u64 header does not fit.
    let answered = answer_one(&mut tester.server(), 0x8003, &7u32.to_le_bytes(), &[], 12);
    assert_eq!(answered.errno(), Some(TestError::Full as u32));
    assert_eq!(tester.calls, 0);
    // The header fits, the bytes do not: the method's own refusal.
    let mut request = Pair { a: 1, b: 2 }.as_bytes().to_vec();
    request.extend_from_slice(b"abc");
    let answered = answer_one(&mut tester.server(), 0x8000, &request, &[], 18);
    assert_eq!(answered.errno(), Some(TestError::Full as u32));
    assert_eq!(tester.calls, 1);
}

#[test]
fn refusals_carry_the_interface_or_the_kernel_number() {
    let mut tester = Tester::default();
    let refused = answer_one(&mut tester.server(), 0x8003, &0u32.to_le_bytes(), &[], 64);
    assert_eq!(refused.errno(), Some(TestError::Refused as u32));
    let kernel = answer_one(&mut tester.server(), 0x8003, &1u32.to_le_bytes(), &[], 64);
    assert_eq!(kernel.errno(), Some(Error::TableFull as u32));
}

#[test]
fn a_call_pushes_only_what_the_reply_declares() {
    let mut buffer = [0u8; 64];
    let mut call = Call {
        cookie: 0,
        reply_cookie: 0,
        value: 0,
        shape: Shape {
            bytes: false,
            min_descriptors: 0,
            max_descriptors: 1,
        },
        reply: Message::over(&mut buffer[..]),
    };
    assert_eq!(call.push_bytes(b"x"), Err(MessageError::Full));
    assert_eq!(call.push_copy(Descriptor(3), Rights::SEND), Ok(()));
    assert_eq!(
        call.push_copy(Descriptor(4), Rights::SEND),
        Err(MessageError::TooManyDescriptors)
    );
    assert_eq!(call.room(), 64 - 16);
}

#[test]
fn stubs_encode_the_declared_request_and_decode_the_reply() {
    let client = TestClient::new(Descriptor(3));
    let replied = fake_kernel::run(
        |call: &mut FakeCall| {
            assert_eq!(call.function(), Function(0x8000));
            assert_eq!(call.target(), Descriptor(3));
            assert_eq!(call.sizes().total_size(), 4095);
            assert_eq!(call.data(), b"\x01\0\0\0\x02\0\0\0xy");
            assert!(call.slots().is_empty());
            let sizes = call.write_reply(b"\x02\0\0\0\0\0\0\0\x05\0\0\0\x06\0\0\0zz", &[]);
            TrapArgs::replied(2, 0, sizes)
        },
        || client.swap(Pair { a: 1, b: 2 }, b"xy"),
    );
    let replied = replied.ok();
    assert_eq!(
        replied.as_ref().map(|r| (r.value, r.header, r.bytes())),
        Some((2, Pair { a: 5, b: 6 }, &b"zz"[..]))
    );

    let given = fake_kernel::run(
        |call: &mut FakeCall| {
            assert_eq!(call.data(), b"");
            assert_eq!(call.slots(), [slot(7)]);
            call.reply_ok(&[], &[slot(9)])
        },
        || {
            client
                .give(&[slot(7)])
                .map(|mut reply| reply.take_descriptor(0).map(OwnedDescriptor::into_raw))
        },
    );
    assert_eq!(given, Ok(Some(Descriptor(9))));
}

#[test]
fn stubs_decode_error_replies_into_the_interface_error() {
    let client = TestClient::new(Descriptor(3));
    let error_reply = |errno: u32| {
        fake_kernel::run(
            move |call: &mut FakeCall| {
                let mut data = [0xff; 8];
                data[4..].copy_from_slice(&errno.to_le_bytes());
                let sizes = call.write_reply(&data, &[]);
                TrapArgs::replied(u32::MAX, errno, sizes)
            },
            || client.ping().map(|reply| reply.value),
        )
    };
    assert_eq!(
        error_reply(0x1003),
        Err(ClientError::Interface(TestError::Refused))
    );
    assert_eq!(
        error_reply(Error::TableFull as u32),
        Err(ClientError::ServerKernel(Error::TableFull))
    );
    assert_eq!(error_reply(0x1234), Err(ClientError::Unknown(0x1234)));
    let kernel = fake_kernel::run(
        |_: &mut FakeCall| TrapArgs::error(Error::PeerDied),
        || client.ping().map(|reply| reply.value),
    );
    assert_eq!(kernel, Err(ClientError::Kernel(Error::PeerDied)));
    assert_eq!(
        CallError::from(ClientError::Interface(TestError::Refused)),
        CallError::Server(0x1003)
    );
    assert_eq!(
        CallError::from(ClientError::<TestError>::BadReply),
        CallError::Kernel(Error::BadSizes)
    );
    assert_eq!(
        ClientError::Interface(TestError::Refused).to_string(),
        "server error TEST_REFUSED (0x1003)"
    );
}

#[test]
fn replies_of_the_wrong_shape_are_bad_replies_and_their_descriptors_closed() {
    let client = TestClient::new(Descriptor(3));
    // A u64 header declared, 4 bytes sent.
    let short = fake_kernel::run(
        |call: &mut FakeCall| call.reply_ok(&[1, 2, 3, 4], &[]),
        || client.refuse(9).map(|reply| reply.header),
    );
    assert_eq!(short, Err(ClientError::BadReply));
    // No bytes declared.
    let long = fake_kernel::run(
        |call: &mut FakeCall| call.reply_ok(b"x", &[]),
        || client.ping().map(|reply| reply.value),
    );
    assert_eq!(long, Err(ClientError::BadReply));
    // No status words at all.
    let empty = fake_kernel::run(
        |_: &mut FakeCall| TrapArgs::replied(0, 0, MessageSizes::new()),
        || client.ping().map(|reply| reply.value),
    );
    assert_eq!(empty, Err(ClientError::BadReply));
    // Three descriptors where at most two are declared: all are closed.
    let closed: Rc<RefCell<Vec<u32>>> = Rc::default();
    let record = closed.clone();
    let many = fake_kernel::run(
        move |call: &mut FakeCall| {
            if call.function() == KernelFunction::Close.function() {
                record
                    .borrow_mut()
                    .push(u32::read_from_prefix(call.data()).map_or(0, |(d, _)| d));
                return call.reply_ok(&[], &[]);
            }
            call.reply_ok(&[], &[slot(10), slot(11), slot(12)])
        },
        || client.give(&[slot(7)]).map(|reply| reply.value),
    );
    assert_eq!(many, Err(ClientError::BadReply));
    assert_eq!(*closed.borrow(), [10, 11, 12]);
}

#[test]
fn a_loopback_runs_the_server_behind_the_stub() {
    let mut tester = Tester::default();
    let client = TestClient::over(Loopback::new(tester.server()));
    let swapped = client.swap(Pair { a: 1, b: 2 }, b"abc");
    assert_eq!(
        swapped.as_ref().map(|r| (r.value, r.header, r.bytes())),
        Ok((3, Pair { a: 2, b: 1 }, &b"cba"[..]))
    );
    drop(swapped);
    for _ in 0..3 {
        assert!(client.ping().is_ok());
    }
    assert_eq!(client.transport().cookie(), 3);
    assert_eq!(
        client.refuse(0).map(|r| r.header),
        Err(ClientError::Interface(TestError::Refused))
    );
    assert_eq!(client.refuse(5).map(|r| r.header), Ok(5 << 32));
    let given = client
        .give(&[slot(7)])
        .map(|mut reply| reply.take_descriptor(0).map(OwnedDescriptor::into_raw));
    assert_eq!(given, Ok(Some(Descriptor(7))));
    // What the stub cannot send: an unknown function, a malformed request.
    let mut message = Message::new();
    assert_eq!(
        client.transport().call(Function(0x8010), &mut message),
        Err(CallError::Server(TestError::Unknown as u32))
    );
    assert!(message.push_data(b"x").is_ok());
    assert_eq!(
        client.transport().call(Function(0x8002), &mut message),
        Err(CallError::Server(TestError::Bad as u32))
    );
    drop(client);
    assert_eq!(tester.calls, 7);
}

/// Answers every procman function with an empty success, counting calls.
#[derive(Debug, Default)]
struct FakeProcman {
    calls: u32,
}

impl ProcmanServer for FakeProcman {
    fn create_object(
        &mut self,
        _: &mut Call<'_>,
        _: CreateObjectRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn open(
        &mut self,
        _: &mut Call<'_>,
        _: NameRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn unlink(
        &mut self,
        _: &mut Call<'_>,
        _: NameRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn list(
        &mut self,
        _: &mut Call<'_>,
        _: NameRequest,
        _: &[u8],
    ) -> Result<ListReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(ListReply::default())
    }

    fn spawn(
        &mut self,
        call: &mut Call<'_>,
        _: SpawnProgramRequest,
        _: &[u8],
        descriptors: &mut Arrived<'_>,
    ) -> Result<ProcessReply, Refusal<ProcmanError>> {
        self.calls += 1;
        for index in 0..descriptors.len() {
            let _ = descriptors.take(index).map(OwnedDescriptor::into_raw);
        }
        call.set_value(4);
        Ok(ProcessReply::new(4))
    }

    fn wait(
        &mut self,
        _: &mut Call<'_>,
        _: WaitRequest,
    ) -> Result<WaitReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(WaitReply::default())
    }

    fn portal(
        &mut self,
        _: &mut Call<'_>,
        _: abi::portal::PortalRequest,
        _: &[u8],
    ) -> Result<abi::portal::PortalReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::portal::PortalReply::default())
    }

    fn portal_size(
        &mut self,
        _: &mut Call<'_>,
        _: abi::portal::PortalSizeRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn portal_release(
        &mut self,
        _: &mut Call<'_>,
        _: NameRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn portal_unlink(
        &mut self,
        _: &mut Call<'_>,
        _: NameRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn portal_table(
        &mut self,
        _: &mut Call<'_>,
    ) -> Result<abi::portal::PortalTableReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::portal::PortalTableReply::default())
    }

    fn pipe_create(
        &mut self,
        _: &mut Call<'_>,
    ) -> Result<abi::stream::PipeReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::PipeReply::default())
    }

    fn pipe_close(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::PipeEndRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn pipe_grant(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::PipeGrantRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn pipe_open(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::PipeEndRequest,
    ) -> Result<abi::stream::PipeReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::PipeReply::default())
    }

    fn stream_table(
        &mut self,
        _: &mut Call<'_>,
    ) -> Result<abi::stream::StreamTableReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::StreamTableReply::default())
    }

    fn stdio(
        &mut self,
        _: &mut Call<'_>,
    ) -> Result<abi::stream::StdioReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::StdioReply::default())
    }

    fn stdio_open(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::StdioOpenRequest,
    ) -> Result<abi::stream::StdioOpenReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::StdioOpenReply::default())
    }

    fn socket_create(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::SocketRequest,
    ) -> Result<abi::stream::SocketReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::SocketReply::default())
    }

    fn socket_connect(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::SocketRequest,
    ) -> Result<abi::stream::SocketReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::stream::SocketReply::default())
    }

    fn socket_close(
        &mut self,
        _: &mut Call<'_>,
        _: abi::stream::SocketRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn device_ports(
        &mut self,
        _: &mut Call<'_>,
        _: abi::procman::IoPortsRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn device_interrupt(
        &mut self,
        _: &mut Call<'_>,
        _: abi::procman::InterruptLineRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn console_log(&mut self, _: &mut Call<'_>) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn process_list(
        &mut self,
        _: &mut Call<'_>,
        _: abi::procman::ProcessListRequest,
    ) -> Result<abi::procman::ProcessListReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::procman::ProcessListReply::default())
    }

    fn kill(
        &mut self,
        _: &mut Call<'_>,
        _: abi::procman::KillRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn name_list(
        &mut self,
        _: &mut Call<'_>,
        _: abi::namespace::NameListRequest,
        _: &[u8],
    ) -> Result<abi::namespace::NameListReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::namespace::NameListReply::default())
    }

    fn chdir(
        &mut self,
        _: &mut Call<'_>,
        _: NameRequest,
        _: &[u8],
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn getcwd(
        &mut self,
        _: &mut Call<'_>,
    ) -> Result<abi::namespace::DirectoryReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::namespace::DirectoryReply::default())
    }

    fn signal(
        &mut self,
        _: &mut Call<'_>,
        _: abi::signal::SignalRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn signal_action(
        &mut self,
        _: &mut Call<'_>,
        _: abi::signal::SignalActionRequest,
    ) -> Result<abi::signal::SignalActionReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::signal::SignalActionReply::default())
    }

    fn set_group(
        &mut self,
        _: &mut Call<'_>,
        _: abi::signal::SetGroupRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }

    fn new_session(
        &mut self,
        _: &mut Call<'_>,
    ) -> Result<abi::signal::GroupReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::signal::GroupReply::default())
    }

    fn group_of(
        &mut self,
        _: &mut Call<'_>,
        _: abi::signal::GroupRequest,
    ) -> Result<abi::signal::GroupReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::signal::GroupReply::default())
    }

    fn wait_job(
        &mut self,
        _: &mut Call<'_>,
        _: abi::signal::GroupRequest,
    ) -> Result<abi::signal::JobReply, Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(abi::signal::JobReply::default())
    }

    fn save_and_end(
        &mut self,
        _: &mut Call<'_>,
        _: abi::signal::GroupRequest,
    ) -> Result<(), Refusal<ProcmanError>> {
        self.calls += 1;
        Ok(())
    }
}

#[test]
fn procman_dispatch_refuses_malformed_requests() {
    let mut procman = FakeProcman::default();
    let bad = Some(ProcmanError::BadRequest as u32);
    let name = NameRequest::new(b"/a");
    let mut open = name.as_bytes().to_vec();
    open.extend_from_slice(b"/a");
    let mut server = procman.server();
    assert_eq!(
        answer_one(&mut server, OPEN.0, &open[..4], &[], 4095).errno(),
        bad
    );
    assert_eq!(
        answer_one(&mut server, CREATE_OBJECT.0, &open, &[slot(6)], 4095).errno(),
        bad
    );
    assert_eq!(
        answer_one(&mut server, WAIT.0, &[0; 9], &[], 4095).errno(),
        bad
    );
    assert_eq!(
        answer_one(&mut server, 0x406, &[], &[], 4095).errno(),
        Some(ProcmanError::UnknownFunction as u32)
    );
    // SPAWN takes descriptors; msgRetVal and the header carry the pid.
    let spawned = answer_one(
        &mut server,
        SPAWN.0,
        SpawnProgramRequest::new(b"p", b"").as_bytes(),
        &[slot(6), slot(7)],
        4095,
    );
    assert_eq!(spawned.data, b"\x04\0\0\0\0\0\0\0\x04\0\0\0\0\0\0\0");
    assert_eq!(
        answer_one(&mut server, OPEN.0, &open, &[], 4095).errno(),
        None
    );
    drop(server);
    assert_eq!(procman.calls, 2);
}

#[test]
fn procman_functions_keep_the_wire_format() {
    let mut out = [0u8; 64];
    let created = fake_kernel::run(
        move |call: &mut FakeCall| {
            assert_eq!(
                (call.function(), call.target()),
                (CREATE_OBJECT, Descriptor::NULL)
            );
            let length = CreateObjectRequest::encode(true, 3, b"/srv/x", &mut out);
            assert_eq!(Some(call.data()), length.map(|l| &out[..l]));
            call.reply_ok(&[], &[slot(10), slot(11)])
        },
        || {
            procman::create_object(Some("/srv/x"), true, 3)
                .map(|o| (o.owner.into_raw(), o.client.into_raw()))
        },
    );
    assert_eq!(created, Ok((Descriptor(10), Descriptor(11))));

    let opened = fake_kernel::run(
        move |call: &mut FakeCall| {
            assert_eq!(call.function(), OPEN);
            assert_eq!(call.data(), b"\x02\0\0\0\0\0\0\0/a");
            call.reply_ok(&[], &[slot(12)])
        },
        || procman::open("/a").map(OwnedDescriptor::into_raw),
    );
    assert_eq!(opened, Ok(Descriptor(12)));

    let unlinked = fake_kernel::run(
        move |call: &mut FakeCall| {
            assert_eq!(call.function(), UNLINK);
            assert_eq!(call.data(), b"\x02\0\0\0\0\0\0\0/a");
            let errno = ProcmanError::NotNameOwner as u32;
            let mut data = [0xff; 8];
            data[4..].copy_from_slice(&errno.to_le_bytes());
            let sizes = call.write_reply(&data, &[]);
            TrapArgs::replied(u32::MAX, errno, sizes)
        },
        || procman::unlink("/a"),
    );
    assert_eq!(
        unlinked,
        Err(CallError::Server(ProcmanError::NotNameOwner as u32))
    );

    let listed = fake_kernel::run(
        move |call: &mut FakeCall| {
            assert_eq!(call.function(), LIST);
            assert_eq!(call.data(), b"\x01\0\0\0\0\0\0\0/");
            let mut payload = ListReply {
                count: 3,
                truncated: 1,
            }
            .as_bytes()
            .to_vec();
            payload.extend_from_slice(b"a\nb/\n");
            call.reply_ok(&payload, &[])
        },
        || procman::list("/"),
    );
    assert_eq!(listed, Ok((alloc::vec!["a".into(), "b/".into()], true)));

    let spawned = fake_kernel::run(
        move |call: &mut FakeCall| {
            assert_eq!(call.function(), SPAWN);
            let length = SpawnProgramRequest::encode(b"p", b"xy", &mut out);
            assert_eq!(Some(call.data()), length.map(|l| &out[..l]));
            assert_eq!(call.slots(), [slot(6)]);
            let mut data = 4u32.to_le_bytes().to_vec();
            data.extend_from_slice(&[0; 4]);
            data.extend_from_slice(ProcessReply::new(4).as_bytes());
            let sizes = call.write_reply(&data, &[]);
            TrapArgs::replied(4, 0, sizes)
        },
        || procman::spawn("p", b"xy", &[slot(6)]),
    );
    assert_eq!(spawned, Ok(4));
}

#[test]
fn procman_wait_waits_on_its_exit_event_then_asks_again() {
    let mut step = 0;
    let status = fake_kernel::run(
        move |call: &mut FakeCall| {
            step += 1;
            match step {
                1 => {
                    assert_eq!(call.function(), WAIT);
                    assert_eq!(call.data(), WaitRequest::new(4).as_bytes());
                    call.reply_ok(WaitReply::default().as_bytes(), &[slot(12)])
                }
                2 => {
                    assert_eq!(
                        (call.function(), call.target()),
                        (KernelFunction::EventWait.function(), Descriptor(12))
                    );
                    TrapArgs::replied(0, 0, call.write_reply(&[0; 8], &[]))
                }
                3 => {
                    assert_eq!(call.function(), KernelFunction::Close.function());
                    call.reply_ok(&[], &[])
                }
                _ => {
                    assert_eq!(call.function(), WAIT);
                    let reply = WaitReply {
                        exited: 1,
                        status: 7,
                    };
                    call.reply_ok(reply.as_bytes(), &[])
                }
            }
        },
        || procman::wait(4),
    );
    assert_eq!(status, Ok(7));
}

#[test]
fn serve_runs_the_dispatch_in_the_server_loop() {
    use abi::function::{RECEIVE, REPLY_RECEIVE};
    let mut step = 0;
    let mut tester = Tester::default();
    let error = fake_kernel::run(
        move |call: &mut FakeCall| {
            step += 1;
            match (step, call.function()) {
                (1, RECEIVE) => call.deliver(Function(0x8002), 41, b"", 64),
                (2, REPLY_RECEIVE) => {
                    // ping's empty reply, and the cookie it counted.
                    assert_eq!((call.data(), call.args.arg1), (&[0u8; 8][..], 42));
                    TrapArgs {
                        arg2: abi::trap::REPLY_DELIVERED,
                        ..TrapArgs::error(Error::PeerDied)
                    }
                }
                (3, RECEIVE) => TrapArgs::error(Error::PeerDied),
                other => panic!("unexpected trap {other:?}"),
            }
        },
        || {
            let door = OwnedDescriptor::from_raw(Descriptor(4));
            let error = door.as_ref().map(|door| tester.serve(door));
            let _ = door.map(OwnedDescriptor::into_raw);
            (error, tester.calls)
        },
    );
    assert_eq!(error, (Some(Error::PeerDied), 1));
}
