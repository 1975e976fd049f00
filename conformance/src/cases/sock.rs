//! MSG-SOCK: seed 001's 1-to-1 sockets through procman (ABI.md §7a.3,
//! decisions D40, D41, D62): ports (0, taken, out of range), the one
//! connector, strangers, bytes both ways, full and empty rings, end of
//! stream after a close, `PM_PEER_DIED` after a death (blocked on either
//! side, as creator and as connector), close orders, and every refusal with
//! its own error and nothing changed (procman's tables and the kernel's
//! counters).
//!
//! The other side is a `stream-child` (tests/guest/stream-test) told its
//! role by its arguments, or the conformance peer making raw calls.

use abi::procman::ProcmanError;
use abi::stream::{
    CONNECTOR, CREATOR, FIRST_EPHEMERAL_PORT, MAX_PORT, SOCKET_CAPACITY, SOCKET_CLOSE,
    SOCKET_CONNECT, SocketRequest, StdStream,
};
use abi::{ObjectKind, TrapArgs, message::message_extent};
use alloc::format;
use alloc::vec::Vec;
use userlib::client::CallError;
use userlib::kernel;
use userlib::procman::{self, PROCMAN};
use userlib::socket::Socket;
use userlib::stream::StreamError;
use zerocopy::IntoBytes;

use super::pipe::{
    count, counted, fail, new_pipe, ok, pattern, read_all, refused, registers, snapshot, table,
    unchanged, unit, wait,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;
use crate::peer::{Peer, Step};

/// The helper program.
const CHILD: &str = "stream-child";

fn spawn(arguments: &str) -> Result<u32, Failed> {
    procman::spawn_with_streams(CHILD, arguments.as_bytes(), &[], [StdStream::NONE; 3])
        .map_err(|e| Failed(format!("SPAWN {arguments}: {e}")))
}

fn create(port: u32) -> Result<Socket, Failed> {
    Socket::create(port).map_err(|e| fail("SOCKET_CREATE", e))
}

fn raw_create(port: u32) -> Result<(), StreamError> {
    let _reply = PROCMAN.socket_create(SocketRequest::new(port))?;
    Ok(())
}

fn raw_connect(port: u32) -> Result<(), StreamError> {
    let _reply = PROCMAN.socket_connect(SocketRequest::new(port))?;
    Ok(())
}

fn raw_close(request: SocketRequest) -> Result<(), StreamError> {
    PROCMAN.socket_close(request)?;
    Ok(())
}

/// A refusal observed with nothing changed.
fn refusal(context: &mut Context, call: impl Fn() -> Result<(), StreamError>) -> Outcome {
    let before = snapshot(context)?;
    let outcome = call();
    unchanged(context, &before)?;
    Ok(context.observe(unit(&outcome)))
}

/// The peer's raw SOCKET_CONNECT (or SOCKET_CLOSE) of `port`.
fn peer_call(peer: &Peer, function: abi::Function, port: u32) -> Result<TrapArgs, Failed> {
    let result = peer.trap(Step::send(
        function,
        0,
        SocketRequest::new(port).as_bytes(),
        &[],
        message_extent(24, 7),
    ))?;
    Ok(result.registers)
}

const fn peer_refused(error: ProcmanError) -> Expect {
    Expect::replied("the peer's call", u32::MAX, error as u32, 8, 0)
}

/// Receives until end of stream or an error: the bytes and how it ended.
fn receive_all(socket: &Socket) -> (Vec<u8>, Result<usize, StreamError>) {
    let mut all = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match socket.receive(&mut buffer) {
            Ok(0) => return (all, Ok(0)),
            Ok(n) => all.extend_from_slice(&buffer[..n]),
            Err(e) => return (all, Err(e)),
        }
    }
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SOCK-001",
        rule: "SOCKET_CREATE of port 0 picks a free port from 49152 (msgRetVal), gives the creator side, the memory object and six events; procman records one socket, one end, seven descriptors",
        section: "7a.3",
        decisions: &["D40", "D41"],
        expect: ok("SOCKET_CREATE"),
        run: |context| {
            let before = table()?;
            let made = PROCMAN.socket_create(SocketRequest::new(0));
            let after = table()?;
            let outcome = match made {
                Ok(mut reply) => {
                    let port = reply.header.port;
                    context.check(
                        reply.value == port && (FIRST_EPHEMERAL_PORT..=MAX_PORT).contains(&port),
                        "the port is not msgRetVal or not from 49152",
                    );
                    context.check(reply.header.side == CREATOR, "the side is not CREATOR");
                    context.check(reply.header.capacity == SOCKET_CAPACITY, "the capacity");
                    let kinds: Vec<_> = (0..7)
                        .map(|i| {
                            reply
                                .take_descriptor(i)
                                .and_then(|d| kernel::descriptor_info(d.descriptor()).ok())
                                .and_then(|info| info.kind)
                        })
                        .collect();
                    context.check(
                        kinds[0] == Some(ObjectKind::Memory)
                            && kinds[1..].iter().all(|k| *k == Some(ObjectKind::Event)),
                        "the slots are not a memory object and six events",
                    );
                    context.check(
                        after.sockets == before.sockets + 1
                            && after.socket_ends == before.socket_ends + 1
                            && after.descriptors == before.descriptors + 7,
                        "the table did not grow by one socket, one end, seven descriptors",
                    );
                    raw_close(SocketRequest::new(port))
                }
                Err(e) => Err(StreamError::from(e)),
            };
            context.check(table()? == before, "closing did not free the socket");
            Ok(context.observe(unit(&outcome)))
        },
    },
    Case {
        id: "MSG-SOCK-002",
        rule: "SOCKET_CREATE of a free port gets that port; LIST of /sock names it",
        section: "7a.3",
        decisions: &["D40"],
        expect: counted("the port", 7001),
        run: |context| {
            let socket = create(7001)?;
            let (names, _) = procman::list("/sock").map_err(|e| Failed(format!("LIST: {e}")))?;
            context.check(names.iter().any(|n| n == "7001"), "LIST /sock lacks 7001");
            Ok(context.observe_value(u64::from(socket.port())))
        },
    },
    Case {
        id: "MSG-SOCK-003",
        rule: "SOCKET_CREATE of a taken port is PM_PORT_TAKEN, changing nothing",
        section: "7a.3",
        decisions: &["D40"],
        expect: refused("SOCKET_CREATE", ProcmanError::PortTaken),
        run: |context| {
            let _socket = create(7002)?;
            refusal(context, || raw_create(7002))
        },
    },
    Case {
        id: "MSG-SOCK-004",
        rule: "SOCKET_CREATE of a port above 65535 is PM_SOCKET_BAD_PORT, changing nothing",
        section: "7a.3",
        decisions: &["D40"],
        expect: refused("SOCKET_CREATE", ProcmanError::SocketBadPort),
        run: |context| refusal(context, || raw_create(MAX_PORT + 1)),
    },
    Case {
        id: "MSG-SOCK-005",
        rule: "SOCKET_CONNECT of port 0 is PM_SOCKET_BAD_PORT (0 picks nothing to connect to), changing nothing",
        section: "7a.3",
        decisions: &["D40"],
        expect: refused("SOCKET_CONNECT", ProcmanError::SocketBadPort),
        run: |context| refusal(context, || raw_connect(0)),
    },
    Case {
        id: "MSG-SOCK-006",
        rule: "SOCKET_CONNECT of a port no socket has is PM_NO_SUCH_SOCKET, changing nothing",
        section: "7a.3",
        decisions: &[],
        expect: refused("SOCKET_CONNECT", ProcmanError::NoSuchSocket),
        run: |context| refusal(context, || raw_connect(7003)),
    },
    Case {
        id: "MSG-SOCK-007",
        rule: "SOCKET_CONNECT by the socket's creator is PM_SOCKET_SELF_CONNECT, changing nothing",
        section: "7a.3",
        decisions: &["D40"],
        expect: refused("SOCKET_CONNECT", ProcmanError::SocketSelfConnect),
        run: |context| {
            let socket = create(0)?;
            let port = socket.port();
            refusal(context, || raw_connect(port))
        },
    },
    Case {
        id: "MSG-SOCK-008",
        rule: "a second connector is refused with PM_SOCKET_CONNECTED (sockets are 1 to 1), changing nothing",
        section: "7a.3",
        decisions: &["D40"],
        expect: peer_refused(ProcmanError::SocketConnected),
        run: |context| {
            let socket = create(0)?;
            let port = socket.port();
            let (first, _) = context.procman_peer()?;
            let (second, _) = context.procman_peer()?;
            let connected = peer_call(&first, SOCKET_CONNECT, port)?;
            context.check(
                connected.arg0 == u64::from(port) && connected.arg1 == 0,
                "the first connector was refused",
            );
            let before = snapshot(context)?;
            let third = peer_call(&second, SOCKET_CONNECT, port)?;
            unchanged(context, &before)?;
            Ok(context.observe(third))
        },
    },
    Case {
        id: "MSG-SOCK-009",
        rule: "SOCKET_CLOSE by a stranger (holding no side) is PM_NOT_SOCKET_END, changing nothing",
        section: "7a.3",
        decisions: &["D41"],
        expect: peer_refused(ProcmanError::NotSocketEnd),
        run: |context| {
            let socket = create(0)?;
            let port = socket.port();
            let (stranger, _) = context.procman_peer()?;
            let before = snapshot(context)?;
            let closed = peer_call(&stranger, SOCKET_CLOSE, port)?;
            unchanged(context, &before)?;
            Ok(context.observe(closed))
        },
    },
    Case {
        id: "MSG-SOCK-010",
        rule: "SOCKET_CLOSE with its reserved field set is PM_BAD_REQUEST, changing nothing",
        section: "7a.3",
        decisions: &[],
        expect: refused("SOCKET_CLOSE", ProcmanError::BadRequest),
        run: |context| {
            let socket = create(0)?;
            let mut request = SocketRequest::new(socket.port());
            request.reserved = 1;
            refusal(context, || raw_close(request))
        },
    },
    Case {
        id: "MSG-SOCK-011",
        rule: "SOCKET_CLOSE of port 0 is PM_SOCKET_BAD_PORT, changing nothing",
        section: "7a.3",
        decisions: &["D40"],
        expect: refused("SOCKET_CLOSE", ProcmanError::SocketBadPort),
        run: |context| refusal(context, || raw_close(SocketRequest::new(0))),
    },
    Case {
        id: "MSG-SOCK-012",
        rule: "a process holds at most 16 socket end references: the SOCKET_CREATE past them is PM_TOO_MANY_SOCKET_ENDS, changing nothing",
        section: "7a.3",
        decisions: &["D41"],
        expect: refused("SOCKET_CREATE", ProcmanError::TooManySocketEnds),
        run: |context| {
            let mut held = Vec::new();
            for _ in 0..16 {
                held.push(create(0)?);
            }
            let outcome = refusal(context, || raw_create(0));
            drop(held);
            outcome
        },
    },
    Case {
        id: "MSG-SOCK-013",
        rule: "bytes go both ways byte-exact: the creator sends 10,000, the connector returns their hash and 10,000 of its own",
        section: "7a.3",
        decisions: &["D41"],
        expect: counted("the bytes back", 10_000),
        run: |context| {
            let socket = create(0)?;
            let pid = spawn(&format!("sock-peer {} 10000", socket.port()))?;
            let sent = pattern(9, 10_000);
            socket.send(&sent).map_err(|e| fail("send", e))?;
            let (back, end) = receive_all(&socket);
            context.check(end == Ok(0), "no end of stream after the connector's close");
            context.check(back.len() == 10_008, "not 8 + 10,000 bytes came back");
            let hash = sent.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
            });
            context.check(
                back.get(..8) == Some(&hash.to_le_bytes()[..]),
                "the connector's hash of the bytes differs",
            );
            let served: Vec<u8> = (0..10_000usize)
                .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
                .collect();
            context.check(back.get(8..) == Some(&served[..]), "the bytes back differ");
            context.check(wait(pid)? == 0, "the connector failed");
            Ok(context.observe_value(back.len().saturating_sub(8) as u64))
        },
    },
    Case {
        id: "MSG-SOCK-014",
        rule: "the peer's close gives end of stream (a receive of 0) after the buffered bytes",
        section: "7a.3",
        decisions: &["D62"],
        expect: counted("the receive after the bytes", 0),
        run: |context| {
            let socket = create(0)?;
            let pid = spawn(&format!("sock-send {} hello", socket.port()))?;
            context.check(wait(pid)? == 0, "the connector failed");
            let (bytes, end) = receive_all(&socket);
            context.check(bytes == b"hello", "the buffered bytes were lost");
            Ok(context.observe(count(&end)))
        },
    },
    Case {
        id: "MSG-SOCK-015",
        rule: "an empty ring blocks a receive until the peer sends; byte forms: read_byte gives each byte, then None at end of stream",
        section: "7a.3",
        decisions: &["D32"],
        expect: counted("the blocked read_byte", b'a' as u64),
        run: |context| {
            let socket = create(0)?;
            let port = socket.port();
            let reader = socket.clone();
            let job = context.job(move || reader.read_byte())?;
            context.settle();
            context.check(!job.finished(), "a receive on an empty ring did not block");
            let pid = spawn(&format!("sock-send {port} abc"))?;
            context.check(wait(pid)? == 0, "the connector failed");
            context.settle();
            let first = job.take().unwrap_or(Err(StreamError::BadRing));
            let rest = [socket.read_byte(), socket.read_byte(), socket.read_byte()];
            context.check(
                rest == [Ok(Some(b'b')), Ok(Some(b'c')), Ok(None)],
                "the byte forms differ",
            );
            Ok(context.observe(registers(&first, |b: &Option<u8>| {
                b.map_or(u64::MAX, u64::from)
            })))
        },
    },
    Case {
        id: "MSG-SOCK-016",
        rule: "a full ring (head - tail == capacity) blocks a send until the peer receives",
        section: "7a.3",
        decisions: &["D32"],
        expect: ok("the blocked send"),
        run: |context| {
            let socket = create(0)?;
            socket
                .send(&pattern(0, SOCKET_CAPACITY as usize))
                .map_err(|e| fail("filling send", e))?;
            context.check(
                socket.unreceived() == SOCKET_CAPACITY,
                "the ring is not full",
            );
            let sender = socket.clone();
            let job = context.job(move || sender.send(&pattern(0, 100)))?;
            context.settle();
            context.check(!job.finished(), "a send to a full ring did not block");
            let length = SOCKET_CAPACITY as usize + 100;
            let pid = spawn(&format!("sock-peer {} {length}", socket.port()))?;
            let (back, _) = receive_all(&socket);
            context.check(
                back.len() == 8 + length,
                "the connector did not get every byte",
            );
            context.check(wait(pid)? == 0, "the connector failed");
            context.settle();
            let sent = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(unit(&sent)))
        },
    },
    Case {
        id: "MSG-SOCK-017",
        rule: "the peer's death wakes a receive blocked on the empty ring with PM_PEER_DIED",
        section: "7a.3",
        decisions: &["D62"],
        expect: refused("the blocked receive", ProcmanError::PeerDied),
        run: |context| {
            let socket = create(0)?;
            let port = socket.port();
            let reader = socket.clone();
            let job = context.job(move || {
                let mut out = [0u8; 8];
                reader.receive(&mut out)
            })?;
            context.settle();
            context.check(!job.finished(), "the receive did not block");
            let pid = spawn(&format!("sock-exit {port} 0"))?;
            wait(pid)?;
            context.settle();
            let received = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(count(&received)))
        },
    },
    Case {
        id: "MSG-SOCK-018",
        rule: "after the peer's death the buffered bytes come first, then PM_PEER_DIED",
        section: "7a.3",
        decisions: &["D62"],
        expect: refused("the receive after the bytes", ProcmanError::PeerDied),
        run: |context| {
            let socket = create(0)?;
            let pid = spawn(&format!("sock-exit {} 5", socket.port()))?;
            wait(pid)?;
            let (bytes, end) = receive_all(&socket);
            context.check(bytes == b"ddddd", "the buffered bytes were lost");
            Ok(context.observe(count(&end)))
        },
    },
    Case {
        id: "MSG-SOCK-019",
        rule: "the peer's death wakes a send blocked on the full ring with PM_PEER_DIED",
        section: "7a.3",
        decisions: &["D62"],
        expect: refused("the blocked send", ProcmanError::PeerDied),
        run: |context| {
            let socket = create(0)?;
            socket
                .send(&pattern(0, SOCKET_CAPACITY as usize))
                .map_err(|e| fail("filling send", e))?;
            let sender = socket.clone();
            let job = context.job(move || sender.send(b"more"))?;
            context.settle();
            context.check(!job.finished(), "the send did not block");
            let pid = spawn(&format!("sock-exit {} 0", socket.port()))?;
            wait(pid)?;
            context.settle();
            let sent = job.take().unwrap_or(Err(StreamError::BadRing));
            Ok(context.observe(unit(&sent)))
        },
    },
    Case {
        id: "MSG-SOCK-020",
        rule: "as the connector: the creator's death wakes a blocked receive with PM_PEER_DIED",
        section: "7a.3",
        decisions: &["D62"],
        expect: refused("the blocked receive", ProcmanError::PeerDied),
        run: |context| {
            let port = 7004;
            let (control, feed) = new_pipe()?;
            let (ready, said) = new_pipe()?;
            let pid = procman::spawn_with_streams(
                CHILD,
                format!("sock-create-exit {port}").as_bytes(),
                &[],
                [
                    StdStream::pipe(control.pipe()),
                    StdStream::pipe(said.pipe()),
                    StdStream::NONE,
                ],
            )
            .map_err(|e| Failed(format!("SPAWN: {e}")))?;
            drop((control, said));
            let mut r = [0u8; 1];
            context.check(ready.read(&mut r) == Ok(1), "the creator never said ready");
            let socket = Socket::connect(port).map_err(|e| fail("connect", e))?;
            context.check(socket.side() == CONNECTOR, "the side is not CONNECTOR");
            let reader = socket.clone();
            let job = context.job(move || {
                let mut out = [0u8; 8];
                reader.receive(&mut out)
            })?;
            context.settle();
            context.check(!job.finished(), "the receive did not block");
            feed.close().map_err(|e| fail("close", e))?;
            wait(pid)?;
            context.settle();
            let received = job.take().unwrap_or(Err(StreamError::BadRing));
            let _ = read_all(&ready)?;
            Ok(context.observe(count(&received)))
        },
    },
    Case {
        id: "MSG-SOCK-021",
        rule: "the peer's close (not death) makes a send fail with PM_BROKEN_PIPE",
        section: "7a.3",
        decisions: &["D62"],
        expect: refused("the send", ProcmanError::BrokenPipe),
        run: |context| {
            let socket = create(0)?;
            let pid = spawn(&format!("sock-send {} x", socket.port()))?;
            wait(pid)?;
            let sent = socket.send(b"late");
            Ok(context.observe(unit(&sent)))
        },
    },
    Case {
        id: "MSG-SOCK-022",
        rule: "close orders: the socket lives until both sides closed, in either order, and then procman's records and the kernel's objects and frames are back",
        section: "7a.3",
        decisions: &["D41"],
        expect: ok("the last SOCKET_CLOSE"),
        run: |context| {
            let base = table()?;
            // The creator first: the connector (a peer) keeps it alive.
            let socket = create(0)?;
            let port = socket.port();
            let (peer, _) = context.procman_peer()?;
            let connected = peer_call(&peer, SOCKET_CONNECT, port)?;
            context.check(connected.arg1 == 0, "the peer could not connect");
            socket.close().map_err(|e| fail("close", e))?;
            drop(socket);
            context.check(
                table()?.sockets == base.sockets + 1,
                "the socket went with one side",
            );
            let closed = peer_call(&peer, SOCKET_CLOSE, port)?;
            context.check(closed.arg1 == 0, "the peer's close failed");
            context.check(table()? == base, "the socket stayed after both closes");
            let _ = peer.exit();
            // No connector: the creator's close gives everything back.
            let before = snapshot(context)?;
            let lone = create(0)?;
            let last = lone.close();
            drop(lone);
            unchanged(context, &before)?;
            Ok(context.observe(unit(&last)))
        },
    },
    Case {
        id: "MSG-SOCK-023",
        rule: "OPEN of /sock/<port> is SOCKET_CONNECT of that port: a child that opens the name by OPEN gets the connector side (msgRetVal the port, seven descriptors) and its bytes reach the creator, then end of stream",
        section: "7a.8",
        decisions: &["D96"],
        expect: counted("the bytes received", 5),
        run: |context| {
            let socket = create(7202)?;
            let child = spawn("sock-open-send /sock/7202 hello")?;
            let (bytes, end) = receive_all(&socket);
            context.check(end == Ok(0), &format!("the stream ended with {end:?}"));
            context.check(bytes == b"hello", &format!("received {bytes:?}"));
            context.check(wait(child)? == 0, "the child could not open /sock/7202");
            socket.close().map_err(|e| fail("close", e))?;
            Ok(context.observe_value(bytes.len() as u64))
        },
    },
    Case {
        id: "MSG-SOCK-024",
        rule: "/sock is procman's: CREATE_OBJECT of /sock/<port> (or /sock) is PM_NAME_RESERVED even for a domain that may register there, and changes nothing (procman's tables, the kernel's counters, the listing of /sock)",
        section: "7a.8",
        decisions: &["D96"],
        expect: refused("CREATE_OBJECT", ProcmanError::NameReserved),
        run: |context| {
            let socket = create(7203)?;
            let listed = procman::name_list("/sock").map_err(|e| Failed(format!("{e}")))?;
            let before = snapshot(context)?;
            let plain = procman::create_object(Some("/sock"), false, 3).map(drop);
            let outcome = procman::create_object(Some("/sock/7204"), false, 3).map(drop);
            unchanged(context, &before)?;
            let after = procman::name_list("/sock").map_err(|e| Failed(format!("{e}")))?;
            context.check(after == listed, "the listing of /sock changed");
            context.check(
                plain.as_ref().err().map(CallError::errno)
                    == Some(ProcmanError::NameReserved as u32),
                &format!("CREATE_OBJECT /sock: {plain:?}"),
            );
            drop(socket);
            Ok(context.observe(unit(&outcome.map_err(StreamError::Call))))
        },
    },
    Case {
        id: "MSG-SOCK-025",
        rule: "OPEN of /sock/<port> with no socket there is PM_NO_SUCH_SOCKET, of the creator's own socket PM_SOCKET_SELF_CONNECT, of a name under /sock that is no port (/sock/0, /sock/07, /sock/x) PM_NO_SUCH_NAME; each changes nothing",
        section: "7a.8",
        decisions: &["D96"],
        expect: refused("OPEN", ProcmanError::NoSuchSocket),
        run: |context| {
            let socket = create(7205)?;
            let before = snapshot(context)?;
            let own = Socket::open("/sock/7205").map(drop);
            let not_ports: Vec<_> = ["/sock/0", "/sock/07", "/sock/x", "/sock/65536"]
                .iter()
                .map(|name| Socket::open(name).map(drop))
                .collect();
            let outcome = Socket::open("/sock/7206").map(drop);
            unchanged(context, &before)?;
            context.check(
                unit(&own).arg1 == ProcmanError::SocketSelfConnect as u64,
                &format!("OPEN of its own socket: {own:?}"),
            );
            for refusal in &not_ports {
                context.check(
                    unit(refusal).arg1 == ProcmanError::NoSuchName as u64,
                    &format!("OPEN of a name that is no port: {refusal:?}"),
                );
            }
            drop(socket);
            Ok(context.observe(unit(&outcome)))
        },
    },
];
