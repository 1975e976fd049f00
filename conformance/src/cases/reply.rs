//! MSG-REPLY: REPLY (ABI.md §4.3): nothing held, a second REPLY, its
//! registers and the caller's, its checks in order, a reply larger than the
//! caller's buffer (§9 D1), descriptors in replies and a caller whose table
//! is full (D10 for replies).

use abi::function::{REPLY, USER_BASE};
use abi::{DescriptorSlot, Error, Rights, TrapArgs};

use super::kit::{
    self, Answer, Call, CallJob, MAX, SENDER_FILL, USER_CALL, error, finished, info, queued,
    receive, replied,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value, function_bits, sizes};
use crate::peer::Step;
use userlib::raw::Buffer;

/// A call of "ping" in a buffer of `total`, held by this thread.
fn hold(context: &mut Context, total: u16) -> Result<(CallJob, Buffer), Failed> {
    let door = context.user_door()?;
    let call = queued(context, door.client, b"ping", total)?;
    let (served, buffer) = receive(door.owner, MAX)?;
    context.check(
        served.received.arg0 == function_bits(USER_BASE),
        "the server did not receive the call",
    );
    Ok((call, buffer))
}

/// REPLY from `buffer` with `arg3`, its content `bytes` at 0.
fn reply_raw(
    buffer: &mut Buffer,
    bytes: &[u8],
    cookie: u64,
    arg3: u64,
) -> Result<TrapArgs, Failed> {
    buffer.put(0, bytes);
    Ok(buffer.trap(0, function_bits(REPLY.0), cookie, arg3)?)
}

/// The caller must still be blocked; then `answer` reaches it.
fn then_answer(
    context: &mut Context,
    call: &CallJob,
    buffer: &mut Buffer,
    answer: &Answer,
) -> Result<Call, Failed> {
    context.settle();
    context.check(
        !call.finished(),
        "the caller returned although no reply was delivered",
    );
    let done = kit::reply(buffer, answer)?;
    context.check_registers("the REPLY that fits", &done, &TrapArgs::default());
    finished(context, call, "the caller")
}

/// A peer calling the runner's door through its descriptor 2; the runner
/// holds the call. Returns the peer and the receive buffer.
fn peer_caller(context: &mut Context) -> Result<(crate::peer::Peer, Buffer), Failed> {
    let door = context.user_door()?;
    let peer = context.peer(&[DescriptorSlot::copy(door.client, Rights::SEND)])?;
    peer.start(0, &[Step::send(USER_CALL, 2, b"give", &[], 64)])?;
    context.settle();
    let (served, buffer) = receive(door.owner, MAX)?;
    context.check(
        served.bytes.get(..4) == Some(&b"give"[..]),
        "the runner did not receive the peer's call",
    );
    Ok((peer, buffer))
}

/// The peer's call, once answered.
fn peer_call(context: &mut Context, peer: &crate::peer::Peer) -> Outcome {
    kit::peer_received(context, peer)
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-REPLY-001",
        rule: "REPLY with no received message held is NOTHING_TO_REPLY",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::NothingToReply),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.reply(0, sizes(8, 8, 0));
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-002",
        rule: "a second REPLY to the same message is NOTHING_TO_REPLY",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("the second REPLY", Error::NothingToReply),
        run: |context| {
            let (call, mut buffer) = hold(context, 64)?;
            let first = kit::reply(&mut buffer, &Answer::data(b"one"))?;
            context.check_registers("the first REPLY", &first, &TrapArgs::default());
            let second = kit::reply(&mut buffer, &Answer::data(b"two"))?;
            let call = finished(context, &call, "the caller")?;
            context.check(
                call.bytes.get(..3) == Some(&b"one"[..]),
                "the caller did not get the first reply",
            );
            Ok(context.observe(second))
        },
    },
    Case {
        id: "MSG-REPLY-003",
        rule: "a successful REPLY returns 0 in all four registers",
        section: "3",
        decisions: &[],
        expect: Expect::reply_done("REPLY"),
        run: |context| {
            let (call, mut buffer) = hold(context, 64)?;
            let registers = kit::reply(
                &mut buffer,
                &Answer {
                    cookie: 77,
                    data: alloc::vec![9; 20],
                    slots: alloc::vec::Vec::new(),
                },
            )?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-004",
        rule: "the caller returns with the reply: msgRetVal, msgErrno, 0, the reply's sizes, and the reply's bytes in its buffer",
        section: "4.3",
        decisions: &[],
        expect: Expect::replied("the caller's SEND", 0x1122_3344, 0x5566_7788, 12, 0).with_buffer(
            &[(
                0,
                Field::Bytes(&[
                    0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, b'p', b'a', b'y', b'!',
                ]),
            )],
        ),
        run: |context| {
            let (call, mut buffer) = hold(context, 64)?;
            kit::reply(
                &mut buffer,
                &Answer::data(&[
                    0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, b'p', b'a', b'y', b'!',
                ]),
            )?;
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-REPLY-005",
        rule: "REPLY with data larger than its own total is BAD_SIZES; the caller stays blocked and a good reply then reaches it",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::BadSizes),
        run: |context| {
            let (call, mut buffer) = hold(context, 64)?;
            let registers = reply_raw(&mut buffer, &[0; 16], 0, sizes(8, 16, 0))?;
            let _ = then_answer(context, &call, &mut buffer, &Answer::data(b"ok"))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-006",
        rule: "REPLY with bad sizes and nothing held is BAD_SIZES (the sizes are checked first)",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::BadSizes),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.reply(0, sizes(8, 16, 0));
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-007",
        rule: "a reply larger than the caller's buffer (24 > 16) fails back to the replier with REPLY_TOO_LARGE",
        section: "4.3",
        decisions: &["D1"],
        expect: Expect::error("REPLY", Error::ReplyTooLarge),
        run: |context| {
            let (call, mut buffer) = hold(context, 16)?;
            let registers = kit::reply(&mut buffer, &Answer::data(&[1; 24]))?;
            let _ = then_answer(context, &call, &mut buffer, &Answer::data(b"fits"))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-008",
        rule: "after REPLY_TOO_LARGE the caller is not told and stays blocked; a reply that fits then reaches it",
        section: "4.3",
        decisions: &["D1"],
        expect: Expect::replied("the caller's SEND", 0x7374_6966, 0, 4, 0)
            .with_buffer(&[(0, Field::Bytes(b"fits"))]),
        run: |context| {
            let (call, mut buffer) = hold(context, 16)?;
            let refused = kit::reply(&mut buffer, &Answer::data(&[1; 24]))?;
            context.check_registers(
                "the REPLY that is too large",
                &refused,
                &error(Error::ReplyTooLarge),
            );
            let call = then_answer(context, &call, &mut buffer, &Answer::data(b"fits"))?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-REPLY-009",
        rule: "after REPLY_TOO_LARGE an error reply (msgRetVal -1, msgErrno, 8 bytes) reaches the caller",
        section: "4.3",
        decisions: &["D1", "D2"],
        expect: Expect::replied("the caller's SEND", u32::MAX, 0x1001, 8, 0),
        run: |context| {
            let (call, mut buffer) = hold(context, 16)?;
            let refused = kit::reply(&mut buffer, &Answer::data(&[1; 24]))?;
            context.check_registers(
                "the REPLY that is too large",
                &refused,
                &error(Error::ReplyTooLarge),
            );
            let mut data = alloc::vec::Vec::from(u32::MAX.to_le_bytes());
            data.extend_from_slice(&0x1001u32.to_le_bytes());
            let call = then_answer(context, &call, &mut buffer, &Answer::data(&data))?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-REPLY-010",
        rule: "a reply whose extent equals the caller's total (16 of 16) is delivered",
        section: "4.3",
        decisions: &["D1"],
        expect: Expect::replied("the caller's SEND", 0x0202_0202, 0x0202_0202, 16, 0).with_buffer(
            &[(
                0,
                Field::Fill {
                    length: 16,
                    byte: 2,
                },
            )],
        ),
        run: |context| {
            let (call, mut buffer) = hold(context, 16)?;
            let registers = kit::reply(&mut buffer, &Answer::data(&[2; 16]))?;
            context.check_registers("the REPLY", &registers, &TrapArgs::default());
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-REPLY-011",
        rule: "a reply's padding counts when it carries a slot: 1 byte of data and a slot occupy 24, too large for a caller's total of 23",
        section: "4.3",
        decisions: &["D1", "D13"],
        expect: Expect::error("REPLY", Error::ReplyTooLarge),
        run: |context| {
            let (call, mut buffer) = hold(context, 23)?;
            let event = context.event()?;
            let answer = Answer {
                cookie: 0,
                data: alloc::vec![3],
                slots: alloc::vec![DescriptorSlot::copy(event, Rights::SIGNAL)],
            };
            let registers = kit::reply(&mut buffer, &answer)?;
            let _ = then_answer(context, &call, &mut buffer, &Answer::data(&[3; 23]))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-012",
        rule: "a reply slot naming a closed descriptor is BAD_DESCRIPTOR to the replier; the caller stays blocked",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::BadDescriptor),
        run: |context| {
            let (call, mut buffer) = hold(context, 64)?;
            let gone = context.event()?;
            context.close(gone)?;
            let answer = Answer {
                cookie: 0,
                data: alloc::vec::Vec::new(),
                slots: alloc::vec![DescriptorSlot::copy(gone, Rights::SIGNAL)],
            };
            let registers = kit::reply(&mut buffer, &answer)?;
            let _ = then_answer(context, &call, &mut buffer, &Answer::data(b"ok"))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-013",
        rule: "a reply's COPY slot reaches the caller rewritten with its new descriptor (3 in the peer); arg3 counts the slot",
        section: "4.3",
        decisions: &[],
        expect: Expect::replied("the peer's SEND", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (
                8,
                Field::Slot {
                    descriptor: Value::Is(3),
                    rights: Rights::SIGNAL.0 | Rights::TRANSFER.0,
                    mode: Some(0),
                },
            ),
        ]),
        run: |context| {
            let event = context.event()?;
            let (peer, mut buffer) = peer_caller(context)?;
            let answer = Answer {
                cookie: 0,
                data: alloc::vec![0; 8],
                slots: alloc::vec![DescriptorSlot::copy(
                    event,
                    Rights::SIGNAL.union(Rights::TRANSFER)
                )],
            };
            let registers = kit::reply(&mut buffer, &answer)?;
            context.check_registers("the REPLY", &registers, &TrapArgs::default());
            context.check(
                info(event).is_ok(),
                "the replier lost the descriptor it copied",
            );
            peer_call(context, &peer)
        },
    },
    Case {
        id: "MSG-REPLY-014",
        rule: "a reply with a slot for a caller whose table is full is TABLE_FULL to the replier; the caller stays blocked and a reply without slots reaches it",
        section: "4.3",
        decisions: &["D10"],
        expect: Expect::error("REPLY", Error::TableFull),
        run: |context| {
            let event = context.event()?;
            let (peer, mut buffer) = peer_caller(context)?;
            peer.fill_table(0)?;
            let answer = Answer {
                cookie: 0,
                data: alloc::vec::Vec::new(),
                slots: alloc::vec![DescriptorSlot::moving(event, Rights::EVENT)],
            };
            let registers = kit::reply(&mut buffer, &answer)?;
            context.check(
                info(event).is_ok(),
                "the replier lost the descriptor of the refused move",
            );
            context.settle();
            context.check(
                peer.join(0)?.is_none(),
                "the caller returned although no reply was delivered",
            );
            let done = kit::reply(&mut buffer, &Answer::data(b"none"))?;
            context.check_registers("the REPLY without slots", &done, &TrapArgs::default());
            let answered = kit::peer_results(context, &peer, 0)?;
            let expected = replied(u32::from_le_bytes(*b"none"), 0, 4, 0);
            context.check(
                answered.first().map(|r| r.registers) == Some(expected),
                "the caller did not get the reply without slots",
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-REPLY-015",
        rule: "an empty reply (total 0, msgPtr null) returns zeros to the caller and leaves its buffer as it was",
        section: "4.3",
        decisions: &[],
        expect: Expect::replied("the caller's SEND", 0, 0, 0, 0).with_buffer(&[
            (0, Field::Bytes(b"ping")),
            (
                4,
                Field::Fill {
                    length: 60,
                    byte: SENDER_FILL,
                },
            ),
        ]),
        run: |context| {
            let (call, _buffer) = hold(context, 64)?;
            let args = TrapArgs {
                arg0: function_bits(REPLY.0),
                arg1: 0,
                arg2: 0,
                arg3: 0,
            };
            let registers = userlib::raw::trap_at(args, None)?;
            context.check_registers("the REPLY", &registers, &TrapArgs::default());
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-REPLY-016",
        rule: "the reply may come from another buffer than the one the message was received in",
        section: "4.3",
        decisions: &[],
        expect: Expect::replied("the caller's SEND", 0x6568_746f, 0, 6, 0)
            .with_buffer(&[(0, Field::Bytes(b"other\0"))]),
        run: |context| {
            let (call, _buffer) = hold(context, 64)?;
            let mut other = Buffer::filled(0);
            let registers = kit::reply(&mut other, &Answer::data(b"other\0"))?;
            context.check_registers("the REPLY", &registers, &TrapArgs::default());
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-REPLY-017",
        rule: "a reply's MOVE slot takes the descriptor out of the replier's table and into the caller's (mode 1)",
        section: "4.3",
        decisions: &[],
        expect: Expect::replied("the peer's SEND", 0, 0, 0, 1).with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Is(3),
                rights: Rights::EVENT.0,
                mode: Some(1),
            },
        )]),
        run: |context| {
            let event = context.event()?;
            let (peer, mut buffer) = peer_caller(context)?;
            let answer = Answer {
                cookie: 0,
                data: alloc::vec::Vec::new(),
                slots: alloc::vec![DescriptorSlot::moving(event, Rights::EVENT)],
            };
            let registers = kit::reply(&mut buffer, &answer)?;
            context.check_registers("the REPLY", &registers, &TrapArgs::default());
            context.forget(event);
            context.check(
                info(event) == Err(Error::BadDescriptor),
                "the replier still holds the descriptor it moved",
            );
            peer_call(context, &peer)
        },
    },
];
