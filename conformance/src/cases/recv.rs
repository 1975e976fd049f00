//! MSG-RECV: RECEIVE (ABI.md §4.2): its return registers, its entry checks
//! (sizes, descriptor, kind, ownership, D11), a receive buffer smaller than
//! the message (D3), and receiving again without replying.
//!
//! Refusals are made with a message queued on the door, so that a RECEIVE
//! that wrongly got through returns it instead of waiting.

use abi::function::{RECEIVE, USER_BASE};
use abi::{Descriptor, DescriptorSlot, Error, Rights, TrapArgs};

use super::kit::{
    self, Answer, MAX, UNTOUCHED, USER_CALL, error, finished, queued, receive, replied,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Door, Failed};
use crate::expect::{Expect, Field, function_bits, sizes};
use crate::peer::Step;
use userlib::raw::Buffer;

/// RECEIVE with `arg1` and `arg3` into a fresh buffer while a message is
/// queued on a door; the queued call is answered afterwards.
fn refuse(
    context: &mut Context,
    arg1: impl FnOnce(&mut Context, &Door) -> Result<Descriptor, Failed>,
    arg3: u64,
) -> Outcome {
    let door = context.user_door()?;
    let call = queued(context, door.client, b"queued", 16)?;
    let descriptor = arg1(context, &door)?;
    let mut buffer = Buffer::filled(UNTOUCHED);
    let registers = buffer.trap(0, function_bits(RECEIVE.0), u64::from(descriptor.0), arg3)?;
    if registers.arg0 != 0xffff_ffff {
        // It got through: answer the call it took.
        let _ = kit::reply(&mut buffer, &Answer::default());
    } else {
        let (_, mut served) = receive(door.owner, MAX)?;
        kit::reply(&mut served, &Answer::default())?;
    }
    let _ = finished(context, &call, "the queued caller")?;
    Ok(context.observe(registers))
}

/// A RECEIVE offering `total` while a call of `data` in a buffer of `sender_total` is queued.
fn too_small(context: &mut Context, data: &[u8], sender_total: u16, total: u16) -> Outcome {
    let door = context.user_door()?;
    let call = queued(context, door.client, data, sender_total)?;
    let (small, _) = receive(door.owner, total)?;
    let (served, mut buffer) = receive(door.owner, MAX)?;
    context.check(
        served.received.arg0 != 0xffff_ffff,
        "a RECEIVE with a big enough buffer did not get the message",
    );
    kit::reply(&mut buffer, &Answer::default())?;
    let _ = finished(context, &call, "the caller")?;
    Ok(context.observe(small.received))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-RECV-001",
        rule: "RECEIVE returns the function, the cookie, the receiver's msgPtr and the sender's sizes (its total, not the receiver's)",
        section: "4.2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(200, 10, 0))
            .with_buffer(&[
                (0, Field::Bytes(b"0123456789")),
                (
                    16,
                    Field::Fill {
                        length: 32,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"0123456789", 200)?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-RECV-002",
        rule: "RECEIVE with a data size in arg3 is BAD_SIZES",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadSizes),
        run: |context| refuse(context, |_, door| Ok(door.owner), sizes(64, 1, 0)),
    },
    Case {
        id: "MSG-RECV-003",
        rule: "RECEIVE with a descriptor count in arg3 is BAD_SIZES",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadSizes),
        run: |context| refuse(context, |_, door| Ok(door.owner), sizes(64, 0, 1)),
    },
    Case {
        id: "MSG-RECV-004",
        rule: "RECEIVE on a closed descriptor is BAD_DESCRIPTOR",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadDescriptor),
        run: |context| {
            refuse(
                context,
                |context, _| {
                    let event = context.event()?;
                    context.close(event)?;
                    Ok(event)
                },
                sizes(64, 0, 0),
            )
        },
    },
    Case {
        id: "MSG-RECV-005",
        rule: "RECEIVE on descriptor 0 (NULL) is BAD_DESCRIPTOR",
        section: "4.2",
        decisions: &["D4"],
        expect: Expect::error("RECEIVE", Error::BadDescriptor),
        run: |context| refuse(context, |_, _| Ok(Descriptor::NULL), sizes(64, 0, 0)),
    },
    Case {
        id: "MSG-RECV-006",
        rule: "RECEIVE on an event is WRONG_OBJECT_TYPE",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::WrongObjectType),
        run: |context| refuse(context, |context, _| context.event(), sizes(64, 0, 0)),
    },
    Case {
        id: "MSG-RECV-007",
        rule: "RECEIVE on a client reference, which does not own the door, is NOT_OWNER",
        section: "4.2",
        decisions: &["D11"],
        expect: Expect::error("RECEIVE", Error::NotOwner),
        run: |context| refuse(context, |_, door| Ok(door.client), sizes(64, 0, 0)),
    },
    Case {
        id: "MSG-RECV-008",
        rule: "RECEIVE on a thread handle is WRONG_OBJECT_TYPE",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::WrongObjectType),
        run: |context| {
            refuse(
                context,
                |context, _| {
                    let thread = userlib::spawn_thread(|| {}, 16 * 1024)?;
                    Ok(context.adopt(thread.into_raw()))
                },
                sizes(64, 0, 0),
            )
        },
    },
    Case {
        id: "MSG-RECV-009",
        rule: "a receive buffer smaller than the message's extent (16 > 15) is RECEIVE_BUFFER_TOO_SMALL with the message's sizes in arg3",
        section: "4.2",
        decisions: &["D3"],
        expect: Expect::error("RECEIVE", Error::ReceiveBufferTooSmall).with_arg3(sizes(64, 16, 0)),
        run: |context| too_small(context, &[7; 16], 64, 15),
    },
    Case {
        id: "MSG-RECV-010",
        rule: "after RECEIVE_BUFFER_TOO_SMALL the message stays at the head of the queue: a RECEIVE with room gets it",
        section: "4.2",
        decisions: &["D3"],
        expect: Expect::received("the second RECEIVE", USER_BASE, 0, sizes(64, 16, 0)).with_buffer(
            &[(
                0,
                Field::Fill {
                    length: 16,
                    byte: 7,
                },
            )],
        ),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, &[7; 16], 64)?;
            let (small, _) = receive(door.owner, 15)?;
            context.check_registers(
                "the first RECEIVE",
                &small.received,
                &TrapArgs {
                    arg3: sizes(64, 16, 0),
                    ..error(Error::ReceiveBufferTooSmall)
                },
            );
            let (served, mut buffer) = receive(door.owner, 16)?;
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-RECV-011",
        rule: "a receiver already waiting with a small buffer is woken with RECEIVE_BUFFER_TOO_SMALL when the message arrives; the message is queued",
        section: "4.2",
        decisions: &["D3"],
        expect: Expect::error("the waiting RECEIVE", Error::ReceiveBufferTooSmall)
            .with_arg3(sizes(64, 16, 0)),
        run: |context| {
            let door = context.user_door()?;
            let owner = door.owner;
            let waiting = context.job(move || receive(owner, 8).map(|(served, _)| served))?;
            context.settle();
            let call = queued(context, door.client, &[3; 16], 64)?;
            let waited = finished(context, &waiting, "the waiting receiver")?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..16) == Some(&[3; 16][..]),
                "the message was not queued after waking the small receiver",
            );
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe(waited.received))
        },
    },
    Case {
        id: "MSG-RECV-012",
        rule: "a 5-byte message does not fit a receive buffer of 4: RECEIVE_BUFFER_TOO_SMALL with its sizes",
        section: "4.2",
        decisions: &["D3"],
        expect: Expect::error("RECEIVE", Error::ReceiveBufferTooSmall).with_arg3(sizes(16, 5, 0)),
        run: |context| too_small(context, b"abcde", 16, 4),
    },
    Case {
        id: "MSG-RECV-013",
        rule: "a receive buffer of exactly the extent (5 for 5 bytes without slots: no padding) is enough; nothing past it is written",
        section: "1.2",
        decisions: &["D13"],
        expect: Expect::received("RECEIVE", USER_BASE, 0, sizes(16, 5, 0)).with_buffer(&[
            (0, Field::Bytes(b"abcde")),
            (
                5,
                Field::Fill {
                    length: 59,
                    byte: UNTOUCHED,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"abcde", 16)?;
            let (served, mut buffer) = receive(door.owner, 5)?;
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-RECV-014",
        rule: "an empty message is received into a receive buffer of size 0 at a null msgPtr (never touched)",
        section: "1.2",
        decisions: &[],
        expect: Expect::received("RECEIVE", USER_BASE, 0, sizes(16, 0, 0)),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, &[], 16)?;
            let args = TrapArgs {
                arg0: function_bits(RECEIVE.0),
                arg1: u64::from(door.owner.0),
                arg2: 0,
                arg3: 0,
            };
            let registers = userlib::raw::trap_at(args, None)?;
            let mut buffer = Buffer::filled(0);
            let answered = kit::reply(&mut buffer, &Answer::default())?;
            context.check_registers("the REPLY", &answered, &TrapArgs::default());
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(registers, 0, alloc::vec::Vec::new()))
        },
    },
    Case {
        id: "MSG-RECV-015",
        rule: "a server thread that RECEIVEs again without replying fails its held caller with ABANDONED and gets the next call",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("the abandoned caller's SEND", Error::Abandoned),
        run: |context| {
            let door = context.user_door()?;
            let first = queued(context, door.client, b"first", 64)?;
            let (_, _) = receive(door.owner, MAX)?;
            let second = queued(context, door.client, b"second", 64)?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..6) == Some(&b"second"[..]),
                "the second RECEIVE did not get the second call",
            );
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &second, "the second caller")?;
            let first = finished(context, &first, "the abandoned caller")?;
            Ok(context.observe(first.registers))
        },
    },
    Case {
        id: "MSG-RECV-016",
        rule: "a thread waiting in RECEIVE fails with NOT_OWNER when its process moves the owner reference away",
        section: "4.2",
        decisions: &["D11"],
        expect: Expect::error("the waiting RECEIVE", Error::NotOwner),
        run: |context| {
            let door = context.user_door()?;
            let owner = door.owner;
            let waiting = context.job(move || receive(owner, MAX).map(|(served, _)| served))?;
            context.settle();
            let peer = context.peer(&[])?;
            let numbers = peer.take(&[DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER)])?;
            context.forget(door.owner);
            context.check(
                numbers == [2],
                &alloc::format!("the owner reference arrived in the peer as {numbers:?}, not [2]"),
            );
            let waited = finished(context, &waiting, "the waiting receiver")?;
            Ok(context.observe(waited.received))
        },
    },
    Case {
        id: "MSG-RECV-017",
        rule: "the process the owner reference moved to receives the door's calls",
        section: "4.2",
        decisions: &["D11"],
        expect: Expect::received("the new owner's RECEIVE", USER_BASE, 0, sizes(64, 5, 0))
            .with_buffer(&[(0, Field::Bytes(b"moved"))]),
        run: |context| {
            let door = context.user_door()?;
            let peer = context.peer(&[])?;
            let numbers = peer.take(&[DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER)])?;
            context.forget(door.owner);
            let owner = numbers.first().copied().unwrap_or(0);
            peer.start(
                0,
                &[
                    Step::receive(owner, MAX, UNTOUCHED),
                    Step::reply(0, &[], &[]),
                ],
            )?;
            context.settle();
            let call = kit::send(USER_CALL, door.client, b"moved", &[], 64)?;
            context.check_registers("the SEND", &call.registers, &replied(0, 0, 0, 0));
            kit::peer_received(context, &peer)
        },
    },
    Case {
        id: "MSG-RECV-018",
        rule: "after moving the owner reference away, its old number is closed: RECEIVE on it is BAD_DESCRIPTOR",
        section: "4.2",
        decisions: &["D11"],
        expect: Expect::error("RECEIVE", Error::BadDescriptor),
        run: |context| {
            let door = context.user_door()?;
            let peer = context.peer(&[])?;
            peer.take(&[DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER)])?;
            context.forget(door.owner);
            let (served, _) = receive(door.owner, MAX)?;
            Ok(context.observe(served.received))
        },
    },
    Case {
        id: "MSG-RECV-019",
        rule: "only the extent must fit the receive buffer: a 4-byte message from a 4095-byte buffer is received into 16 bytes, arg3 reporting the sender's total 4095",
        section: "4.2",
        decisions: &[],
        expect: Expect::received("RECEIVE", USER_BASE, 0, sizes(MAX, 4, 0)).with_buffer(&[
            (0, Field::Bytes(b"four")),
            (
                4,
                Field::Fill {
                    length: 60,
                    byte: UNTOUCHED,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"four", MAX)?;
            let (served, mut buffer) = receive(door.owner, 16)?;
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-RECV-020",
        rule: "an owner reference cannot be duplicated: DUPLICATE of it is MISSING_RIGHT (it has no DUPLICATE right)",
        section: "1.5",
        decisions: &["D11"],
        expect: Expect::error("DUPLICATE", Error::MissingRight),
        run: |context| {
            use zerocopy::IntoBytes;
            let door = context.user_door()?;
            let request = abi::kcall::DescriptorRequest::new(door.owner, Rights::DOOR_OWNER);
            let call = kit::send(
                abi::KernelFunction::Duplicate.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-RECV-021",
        rule: "with a slot the padding counts: 5 bytes of data, 3 of padding and a slot occupy 24, so a receive buffer of 23 is RECEIVE_BUFFER_TOO_SMALL",
        section: "4.2",
        decisions: &["D3", "D13"],
        expect: Expect::error("RECEIVE", Error::ReceiveBufferTooSmall).with_arg3(sizes(64, 5, 1)),
        run: |context| {
            let door = context.user_door()?;
            let event = context.event()?;
            let call = kit::caller(
                context,
                USER_CALL,
                door.client,
                b"abcde",
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
                64,
            )?;
            context.settle();
            let (small, _) = receive(door.owner, 23)?;
            let (served, mut buffer) = receive(door.owner, 24)?;
            context.check(
                served.received.arg0 != 0xffff_ffff,
                "a RECEIVE of 24 bytes did not get the message",
            );
            if let Some(number) = served.bytes.get(8..12) {
                let copy = u32::from_le_bytes([number[0], number[1], number[2], number[3]]);
                if copy != 0 {
                    context.adopt(Descriptor(copy));
                }
            }
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &call, "the caller")?;
            Ok(context.observe(small.received))
        },
    },
];
