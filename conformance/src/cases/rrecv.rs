//! MSG-RRECV: REPLY_RECEIVE (ABI.md §4.4): nothing held, the order of its
//! checks, the reply and the next message in one trap, a reply half that
//! fails (nothing received, arg2 = 0) and a receive half that fails after
//! the reply was delivered (arg2 = REPLY_DELIVERED).

use abi::function::USER_BASE;
use abi::trap::REPLY_DELIVERED;
use abi::{DescriptorSlot, Error, Rights, TrapArgs};

use super::kit::{self, Answer, CallJob, MAX, USER_CALL, finished, queued, receive, replied};
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, sizes};
use crate::peer::message;
use userlib::raw::Buffer;

/// REPLY_RECEIVE from `buffer` answering with `data`, offering `total` for
/// the next message.
fn reply_receive(
    buffer: &mut Buffer,
    cookie: u64,
    data: &[u8],
    total: u16,
) -> Result<TrapArgs, Failed> {
    let (bytes, arg3) = message(data, &[], total);
    buffer.put(0, &bytes);
    Ok(buffer.reply_receive(cookie, arg3))
}

/// A door with a call of "first" (total `total`) held by this thread.
fn hold(
    context: &mut Context,
    total: u16,
) -> Result<(crate::context::Door, CallJob, Buffer), Failed> {
    let door = context.user_door()?;
    let call = queued(context, door.client, b"first", total)?;
    let (_, buffer) = receive(door.owner, MAX)?;
    Ok((door, call, buffer))
}

/// A server thread of the runner that received a call of "first" on a new
/// door and answered it with REPLY_RECEIVE (reply "done", `total` bytes
/// offered for the next message), which now waits in its receive half:
/// the caller's answer is checked, and that the server has not returned.
/// Returns the door and the server's job (its REPLY_RECEIVE's registers).
fn waiting_receive_half(
    context: &mut Context,
    total: u16,
) -> Result<
    (
        crate::context::Door,
        crate::context::Job<Result<TrapArgs, Failed>>,
    ),
    Failed,
> {
    let door = context.user_door()?;
    let first = queued(context, door.client, b"first", 64)?;
    let owner = door.owner;
    let server = context.job(move || {
        let (_, mut buffer) = receive(owner, MAX)?;
        reply_receive(&mut buffer, 0, b"done", total)
    })?;
    let answered = finished(context, &first, "the first caller")?;
    context.check_registers(
        "the first caller's SEND (answered by the REPLY_RECEIVE)",
        &answered.registers,
        &replied(u32::from_le_bytes(*b"done"), 0, 4, 0),
    );
    context.check(
        !server.finished(),
        "REPLY_RECEIVE returned with no call queued (its receive half should wait)",
    );
    Ok((door, server))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-RRECV-001",
        rule: "REPLY_RECEIVE with no received message held is NOTHING_TO_REPLY (arg2 0: nothing was received)",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::NothingToReply),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = reply_receive(&mut buffer, 0, b"", MAX)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-002",
        rule: "REPLY_RECEIVE with bad sizes and nothing held is BAD_SIZES (the sizes are checked before the held message)",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::BadSizes),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.reply_receive(0, sizes(8, 9, 0));
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-003",
        rule: "REPLY_RECEIVE answers the held call and returns the next one in the same buffer: function, cookie, msgPtr, its sizes",
        section: "4.4",
        decisions: &[],
        expect: Expect::received("REPLY_RECEIVE", USER_BASE, 0, sizes(64, 6, 0))
            .with_buffer(&[(0, Field::Bytes(b"second"))]),
        run: |context| {
            let (door, first, mut buffer) = hold(context, 64)?;
            let second = queued(context, door.client, b"second", 64)?;
            let registers = reply_receive(&mut buffer, 0, b"done", MAX)?;
            let answered = finished(context, &first, "the first caller")?;
            context.check_registers(
                "the first caller's SEND",
                &answered.registers,
                &replied(u32::from_le_bytes(*b"done"), 0, 4, 0),
            );
            let observed = context.observe_buffer(registers, buffer.address(), buffer.snapshot(64));
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &second, "the second caller")?;
            Ok(observed)
        },
    },
    Case {
        id: "MSG-RRECV-004",
        rule: "REPLY_RECEIVE waits when no call is queued, and returns the next call when it comes",
        section: "4.4",
        decisions: &[],
        expect: Expect::received("REPLY_RECEIVE", USER_BASE, 0, sizes(32, 5, 0))
            .with_buffer(&[(0, Field::Bytes(b"later"))]),
        run: |context| {
            let door = context.user_door()?;
            let first = queued(context, door.client, b"first", 64)?;
            let owner = door.owner;
            // One thread both holds the first call and REPLY_RECEIVEs.
            let server = context.job(move || {
                let (_, mut buffer) = receive(owner, MAX)?;
                let registers = reply_receive(&mut buffer, 0, b"", MAX)?;
                let snapshot = buffer.snapshot(64);
                let _ = kit::reply(&mut buffer, &Answer::default());
                Ok((registers, buffer.address(), snapshot))
            })?;
            let _ = finished(context, &first, "the first caller")?;
            context.check(
                !server.finished(),
                "REPLY_RECEIVE returned with no call queued",
            );
            let later = kit::send(USER_CALL, door.client, b"later", &[], 32)?;
            context.check_registers("the later SEND", &later.registers, &replied(0, 0, 0, 0));
            let (registers, address, snapshot) = finished(context, &server, "the server")?;
            Ok(context.observe_buffer(registers, address, snapshot))
        },
    },
    Case {
        id: "MSG-RRECV-005",
        rule: "when the next message does not fit, the reply is still delivered and REPLY_RECEIVE fails with RECEIVE_BUFFER_TOO_SMALL, arg2 = 1 (REPLY_DELIVERED), arg3 = its sizes",
        section: "4.4",
        decisions: &["D3"],
        expect: Expect::error("REPLY_RECEIVE", Error::ReceiveBufferTooSmall)
            .with_arg2(REPLY_DELIVERED)
            .with_arg3(sizes(64, 32, 0)),
        run: |context| {
            let (door, first, mut buffer) = hold(context, 64)?;
            let second = queued(context, door.client, &[4; 32], 64)?;
            let registers = reply_receive(&mut buffer, 0, b"ok", 16)?;
            let answered = finished(context, &first, "the first caller")?;
            context.check_registers(
                "the first caller's SEND",
                &answered.registers,
                &replied(0, 0, 2, 0),
            );
            let (served, mut next) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..32) == Some(&[4; 32][..]),
                "the message that did not fit was not left queued",
            );
            kit::reply(&mut next, &Answer::default())?;
            let _ = finished(context, &second, "the second caller")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-006",
        rule: "when the reply half fails (REPLY_TOO_LARGE) nothing is received (arg2 0); the caller stays blocked and the message stays held",
        section: "4.4",
        decisions: &["D1"],
        expect: Expect::error("REPLY_RECEIVE", Error::ReplyTooLarge),
        run: |context| {
            let (_, first, mut buffer) = hold(context, 16)?;
            let registers = reply_receive(&mut buffer, 0, &[5; 24], MAX)?;
            context.settle();
            context.check(
                !first.finished(),
                "the caller returned although the reply was refused",
            );
            let done = kit::reply(&mut buffer, &Answer::data(b"held"))?;
            context.check_registers(
                "a REPLY to the message still held",
                &done,
                &TrapArgs::default(),
            );
            let answered = finished(context, &first, "the caller")?;
            context.check_registers(
                "the caller's SEND (answered by the later REPLY)",
                &answered.registers,
                &kit::replied(u32::from_le_bytes(*b"held"), 0, 4, 0),
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-007",
        rule: "when the door died while its message was held (owner reference closed), REPLY_RECEIVE fails with PEER_DIED and arg2 = 1",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::PeerDied).with_arg2(REPLY_DELIVERED),
        run: |context| {
            let (door, first, mut buffer) = hold(context, 64)?;
            context.close(door.owner)?;
            let registers = reply_receive(&mut buffer, 0, b"bye", MAX)?;
            let caller = finished(context, &first, "the caller")?;
            context.check_registers(
                "the caller's SEND (its door died while the call was held)",
                &caller.registers,
                &kit::error(Error::PeerDied),
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-008",
        rule: "when the owner reference moved away while its message was held, the reply is delivered and REPLY_RECEIVE fails with NOT_OWNER, arg2 = 1",
        section: "4.4",
        decisions: &["D11"],
        expect: Expect::error("REPLY_RECEIVE", Error::NotOwner).with_arg2(REPLY_DELIVERED),
        run: |context| {
            let (door, first, mut buffer) = hold(context, 64)?;
            let peer = context.peer(&[])?;
            peer.take(&[DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER)])?;
            context.forget(door.owner);
            let registers = reply_receive(&mut buffer, 0, b"moved", MAX)?;
            let answered = finished(context, &first, "the caller")?;
            context.check_registers(
                "the caller's SEND",
                &answered.registers,
                &replied(u32::from_le_bytes(*b"move"), 0, 5, 0),
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-009",
        rule: "a REPLY_RECEIVE waiting in its receive half fails with PEER_DIED and arg2 = 1 when the door's owner reference is closed",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("the waiting REPLY_RECEIVE", Error::PeerDied)
            .with_arg2(REPLY_DELIVERED),
        run: |context| {
            let (door, server) = waiting_receive_half(context, MAX)?;
            context.close(door.owner)?;
            let registers = finished(context, &server, "the waiting REPLY_RECEIVE")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-010",
        rule: "a REPLY_RECEIVE waiting in its receive half fails with NOT_OWNER and arg2 = 1 when its process moves the owner reference to another process",
        section: "4.4",
        decisions: &["D11"],
        expect: Expect::error("the waiting REPLY_RECEIVE", Error::NotOwner)
            .with_arg2(REPLY_DELIVERED),
        run: |context| {
            let (door, server) = waiting_receive_half(context, MAX)?;
            let peer = context.peer(&[])?;
            peer.take(&[DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER)])?;
            context.forget(door.owner);
            let registers = finished(context, &server, "the waiting REPLY_RECEIVE")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-RRECV-011",
        rule: "a REPLY_RECEIVE waiting in its receive half with a 16-byte buffer is woken by a 32-byte message with RECEIVE_BUFFER_TOO_SMALL, arg2 = 1, arg3 = its sizes; the message stays queued",
        section: "4.4",
        decisions: &["D3"],
        expect: Expect::error("the waiting REPLY_RECEIVE", Error::ReceiveBufferTooSmall)
            .with_arg2(REPLY_DELIVERED)
            .with_arg3(sizes(64, 32, 0)),
        run: |context| {
            let (door, server) = waiting_receive_half(context, 16)?;
            let big = kit::caller(context, USER_CALL, door.client, &[4; 32], &[], 64)?;
            let registers = finished(context, &server, "the waiting REPLY_RECEIVE")?;
            let (served, mut next) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..32) == Some(&[4; 32][..]),
                "the message that did not fit was not left queued",
            );
            kit::reply(&mut next, &Answer::default())?;
            let _ = finished(context, &big, "the big caller")?;
            Ok(context.observe(registers))
        },
    },
];
