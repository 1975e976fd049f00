//! MSG-SEND: a call from start to end (ABI.md §3, §4.1): delivered to a
//! waiting receiver or queued for a later one, what the receiver sees,
//! blocking until the reply, and what the caller's registers and buffer
//! hold when it returns.

use abi::function::USER_BASE;

use super::kit::{self, Answer, MAX, SENDER_FILL, USER_CALL, finished, queued, receive, server};
use crate::case::Case;
use crate::expect::{Expect, Field, sizes};

/// Every byte value once.
const ALL_BYTES: [u8; 256] = {
    let mut bytes = [0u8; 256];
    let mut index = 0;
    while index < 256 {
        bytes[index] = index as u8;
        index += 1;
    }
    bytes
};

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SEND-001",
        rule: "a call to a door whose server waits in RECEIVE is delivered at once: function, cookie, msgPtr, the sender's sizes",
        section: "4.1",
        decisions: &[],
        expect: Expect::received(
            "the waiting server's RECEIVE",
            USER_BASE,
            0,
            sizes(32, 6, 0),
        )
        .with_buffer(&[(0, Field::Bytes(b"direct"))]),
        run: |context| {
            let door = context.user_door()?;
            let (call, served) =
                kit::round_trip(context, door, USER_CALL, b"direct", 32, Answer::default())?;
            context.check_registers("the SEND", &call.registers, &kit::replied(0, 0, 0, 0));
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-SEND-002",
        rule: "a call made before any server waits is queued and delivered, unchanged, to the next RECEIVE",
        section: "4.1",
        decisions: &[],
        expect: Expect::received("the later RECEIVE", USER_BASE, 0, sizes(32, 6, 0))
            .with_buffer(&[(0, Field::Bytes(b"queued"))]),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"queued", 32)?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-SEND-003",
        rule: "a completed SEND returns msgRetVal, msgErrno, arg2 = 0 (not msgPtr) and arg3 = total 0 | the reply's data size | its slot count",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 1, 0, 12, 0),
        run: |context| {
            let door = context.user_door()?;
            let answer = Answer::data(&[1, 0, 0, 0, 0, 0, 0, 0, b'd', b'o', b'n', b'e']);
            let (call, _) = kit::round_trip(context, door, USER_CALL, b"request", 64, answer)?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-SEND-004",
        rule: "the reply lands at msgPtr + 0 over the request; the caller's bytes past the reply's extent are left as they were",
        section: "4.3",
        decisions: &[],
        expect: Expect::replied("SEND", 0x0403_0201, 0x0807_0605, 8, 0).with_buffer(&[
            (0, Field::Bytes(&[1, 2, 3, 4, 5, 6, 7, 8])),
            (
                8,
                Field::Fill {
                    length: 24,
                    byte: 0x11,
                },
            ),
            (
                32,
                Field::Fill {
                    length: 32,
                    byte: SENDER_FILL,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            let answer = Answer::data(&[1, 2, 3, 4, 5, 6, 7, 8]);
            let (call, _) = kit::round_trip(context, door, USER_CALL, &[0x11; 32], 64, answer)?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-SEND-005",
        rule: "SEND blocks until the reply: the caller is still blocked while the server holds its call, and returns once it is answered",
        section: "4.1",
        decisions: &[],
        expect: Expect::replied("the caller's SEND", 42, 0, 4, 0),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"wait", 64)?;
            let (_, mut buffer) = receive(door.owner, MAX)?;
            context.settle();
            context.check(!call.finished(), "the caller returned before the reply");
            kit::reply(&mut buffer, &Answer::data(&42u32.to_le_bytes()))?;
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SEND-006",
        rule: "the message data is delivered byte for byte: all 256 byte values arrive unchanged",
        section: "4.1",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(300, 256, 0))
            .with_buffer(&[(0, Field::Bytes(&ALL_BYTES))]),
        run: |context| {
            let door = context.user_door()?;
            let server = server(context, door.owner, MAX, Some(Answer::default()))?;
            context.settle();
            let call = kit::send(USER_CALL, door.client, &ALL_BYTES, &[], 300)?;
            context.check_registers("the SEND", &call.registers, &kit::replied(0, 0, 0, 0));
            let served = finished(context, &server, "the server")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
];
