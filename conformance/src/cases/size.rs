//! MSG-SIZE: arg3's three fields and the buffer layout (ABI.md §1.1, §1.2,
//! §4.1 step 2): total size 0, exact fits and one byte over, the padding
//! before the descriptors (which counts even without descriptors), 4095,
//! data larger than the total, descriptors past the total, and what of the
//! buffer travels.

use abi::function::USER_BASE;
use abi::{Descriptor, DescriptorSlot, Error, Rights, TrapArgs};
use userlib::kernel::DoorKind;

use super::kit::{self, Answer, MAX, SENDER_FILL, UNTOUCHED, finished, pattern, server};
use crate::case::{Case, Outcome};
use crate::context::Context;
use crate::expect::{Expect, Field, function_bits, sizes};
use userlib::raw::{self, Buffer};

/// SEND with `arg3` and `content` to a dead user door (a size error comes
/// before step 11's PEER_DIED).
fn refuse(context: &mut Context, arg3: u64, content: &[u8]) -> Outcome {
    let client = context.dead_door(DoorKind::User)?;
    let registers = kit::send_raw(function_bits(USER_BASE), u64::from(client.0), arg3, content)?;
    Ok(context.observe(registers))
}

/// SEND `content` at `offset` of a buffer filled with [`SENDER_FILL`], with
/// msgPtr at `offset` and `arg3`, to a live user door whose server replies
/// with nothing; the server's RECEIVE is observed.
fn deliver(context: &mut Context, offset: usize, content: &[u8], arg3: u64) -> Outcome {
    let door = context.user_door()?;
    let server = server(context, door.owner, MAX, Some(Answer::default()))?;
    context.settle();
    let mut buffer = Buffer::filled(SENDER_FILL);
    buffer.put(offset, content);
    let call = buffer.trap(
        offset,
        function_bits(USER_BASE),
        u64::from(door.client.0),
        arg3,
    )?;
    let served = finished(context, &server, "the server")?;
    context.check_registers("the caller's SEND", &call, &kit::replied(0, 0, 0, 0));
    Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
}

/// A SEND of total size 0 with msgPtr `pointer`, served with an empty reply.
fn empty_at(context: &mut Context, pointer: u64) -> Outcome {
    let door = context.user_door()?;
    let server = server(context, door.owner, MAX, Some(Answer::default()))?;
    context.settle();
    let args = TrapArgs {
        arg0: function_bits(USER_BASE),
        arg1: u64::from(door.client.0),
        arg2: pointer,
        arg3: 0,
    };
    // Total size 0: the kernel touches no memory at msgPtr.
    let registers = raw::trap_at(args, None)?;
    let served = finished(context, &server, "the server")?;
    let expected = TrapArgs::received(kit::USER_CALL, 0, served.msg_ptr, abi::MessageSizes::new());
    context.check_registers("the server's RECEIVE", &served.received, &expected);
    Ok(context.observe(registers))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SIZE-001",
        rule: "a buffer of total size 0 is never touched: msgPtr null, no data, no slots is delivered and answered",
        section: "1.2",
        decisions: &[],
        expect: Expect::replied("SEND", 0, 0, 0, 0),
        run: |context| empty_at(context, 0),
    },
    Case {
        id: "MSG-SIZE-002",
        rule: "a buffer of total size 0 may point anywhere, even into the kernel half",
        section: "1.2",
        decisions: &[],
        expect: Expect::replied("SEND", 0, 0, 0, 0),
        run: |context| empty_at(context, 0xffff_8000_0000_0000),
    },
    Case {
        id: "MSG-SIZE-003",
        rule: "data size 1 with total size 0 is BAD_SIZES",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| refuse(context, sizes(0, 1, 0), &[]),
    },
    Case {
        id: "MSG-SIZE-004",
        rule: "one descriptor slot (16 bytes) in a total of 15 is BAD_SIZES: descriptors past the total",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| refuse(context, sizes(15, 0, 1), &[]),
    },
    Case {
        id: "MSG-SIZE-005",
        rule: "data exactly as large as the total (48 of 48) is delivered whole",
        section: "1.2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(48, 48, 0))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 48,
                        seed: 5,
                    },
                ),
                (
                    48,
                    Field::Fill {
                        length: 16,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, &pattern(5, 48), sizes(48, 48, 0)),
    },
    Case {
        id: "MSG-SIZE-006",
        rule: "data one byte larger than the total (49 of 48) is BAD_SIZES",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| refuse(context, sizes(48, 49, 0), &[]),
    },
    Case {
        id: "MSG-SIZE-007",
        rule: "without descriptors there is no padding: 41 bytes of data fit a total of 41 and the receiver's bytes from 41 on are untouched",
        section: "1.2",
        decisions: &["D13"],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(41, 41, 0))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 41,
                        seed: 7,
                    },
                ),
                (
                    41,
                    Field::Fill {
                        length: 23,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, &pattern(7, 41), sizes(41, 41, 0)),
    },
    Case {
        id: "MSG-SIZE-008",
        rule: "41 bytes of data in a total of 48 are delivered; the receiver's bytes past the extent (41, no padding without slots) are untouched",
        section: "1.2",
        decisions: &["D13"],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(48, 41, 0))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 41,
                        seed: 8,
                    },
                ),
                (
                    41,
                    Field::Fill {
                        length: 64,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, &pattern(8, 41), sizes(48, 41, 0)),
    },
    Case {
        id: "MSG-SIZE-009",
        rule: "13 bytes of data, 3 of padding and 2 slots fill a total of 48 exactly and are delivered, the slots at offset 16",
        section: "1.2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(48, 13, 2))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 13,
                        seed: 9,
                    },
                ),
                (
                    16,
                    Field::Slot {
                        descriptor: crate::Value::Var("first"),
                        rights: Rights::SIGNAL.0,
                        mode: Some(0),
                    },
                ),
                (
                    32,
                    Field::Slot {
                        descriptor: crate::Value::Var("second"),
                        rights: Rights::WAIT.0,
                        mode: Some(0),
                    },
                ),
                (
                    48,
                    Field::Fill {
                        length: 16,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| {
            let (one, two) = (context.event()?, context.event()?);
            let slots = [
                DescriptorSlot::copy(one, Rights::SIGNAL),
                DescriptorSlot::copy(two, Rights::WAIT),
            ];
            let door = context.user_door()?;
            let server = server(context, door.owner, MAX, Some(Answer::default()))?;
            context.settle();
            // The copies land in the runner's own table, at its lowest free numbers.
            let free = context.lowest_free(2)?;
            let call = kit::send(kit::USER_CALL, door.client, &pattern(9, 13), &slots, 48);
            for (name, number) in ["first", "second"].into_iter().zip(free) {
                context.adopt(Descriptor(number));
                context.bind(name, u64::from(number));
            }
            let served = finished(context, &server, "the server")?;
            context.check_registers(
                "the caller's SEND",
                &call?.registers,
                &kit::replied(0, 0, 0, 0),
            );
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-SIZE-010",
        rule: "13 bytes of data and 2 slots in a total of 47 (one short) is BAD_SIZES (as are 9 bytes and a slot in 24, 4095 bytes and a slot in 4095, 4000 bytes and 7 slots in 4095)",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| {
            for arg3 in [sizes(24, 9, 1), sizes(MAX, MAX, 1), sizes(MAX, 4000, 7)] {
                let refused = refuse(context, arg3, &[])?;
                context.check_registers(
                    &alloc::format!("SEND with arg3 {arg3:#x}"),
                    &refused.registers,
                    &kit::error(Error::BadSizes),
                );
            }
            refuse(context, sizes(47, 13, 2), &[])
        },
    },
    Case {
        id: "MSG-SIZE-011",
        rule: "4088 bytes of data in a total of 4095 are delivered whole",
        section: "1.1",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(4095, 4088, 0))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 4088,
                        seed: 11,
                    },
                ),
                (
                    4088,
                    Field::Fill {
                        length: 8,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, &pattern(11, 4088), sizes(MAX, 4088, 0)),
    },
    Case {
        id: "MSG-SIZE-012",
        rule: "the largest message: 4095 bytes of data in a total of 4095 are delivered whole (no padding without descriptors)",
        section: "1.2",
        decisions: &["D13"],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(4095, 4095, 0))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 4095,
                        seed: 12,
                    },
                ),
                (
                    4095,
                    Field::Fill {
                        length: 1,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, &pattern(12, 4095), sizes(MAX, MAX, 0)),
    },
    Case {
        id: "MSG-SIZE-013",
        rule: "4095 bytes of data in a total of 4094 is BAD_SIZES (one over, at the top of the range)",
        section: "1.2",
        decisions: &["D13"],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| refuse(context, sizes(4094, MAX, 0), &[]),
    },
    Case {
        id: "MSG-SIZE-014",
        rule: "255 slots need 4080 bytes: a total of 4079 is BAD_SIZES",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| refuse(context, sizes(4079, 0, 255), &[]),
    },
    Case {
        id: "MSG-SIZE-015",
        rule: "255 slots fit a total of 4080; then the first slot, naming descriptor 0, is BAD_DESCRIPTOR",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let mut buffer = Buffer::filled(0);
            let registers = buffer.trap(
                0,
                function_bits(USER_BASE),
                u64::from(client.0),
                sizes(4080, 0, 255),
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-SIZE-016",
        rule: "reserved bits and bad sizes together are RESERVED_BITS (step 1 before step 2)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| refuse(context, sizes(0, 1, 0) | 1 << 33, &[]),
    },
    Case {
        id: "MSG-SIZE-017",
        rule: "without descriptors the extent is the data alone: the sender's bytes right after 5 bytes of data do not travel",
        section: "4.1",
        decisions: &["D13"],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(32, 5, 0))
            .with_buffer(&[
                (0, Field::Bytes(b"hinge")),
                (
                    5,
                    Field::Fill {
                        length: 35,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, b"hinge", sizes(32, 5, 0)),
    },
    Case {
        id: "MSG-SIZE-018",
        rule: "only the extent is copied: the sender's bytes between the extent (16) and its total (64) do not travel",
        section: "4.1",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(64, 16, 0))
            .with_buffer(&[
                (
                    0,
                    Field::Pattern {
                        length: 16,
                        seed: 18,
                    },
                ),
                (
                    16,
                    Field::Fill {
                        length: 64,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 0, &pattern(18, 16), sizes(64, 16, 0)),
    },
    Case {
        id: "MSG-SIZE-019",
        rule: "msgPtr needs no alignment: a message at buffer + 3 is delivered intact",
        section: "1.2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(32, 7, 0))
            .with_buffer(&[
                (0, Field::Bytes(b"aligned")),
                (
                    7,
                    Field::Fill {
                        length: 25,
                        byte: UNTOUCHED,
                    },
                ),
            ]),
        run: |context| deliver(context, 3, b"aligned", sizes(32, 7, 0)),
    },
    Case {
        id: "MSG-SIZE-020",
        rule: "with descriptors the padding is part of the extent: the sender's 3 padding bytes after 5 bytes of data arrive as they were, the slot at offset 8",
        section: "1.2",
        decisions: &["D13"],
        expect: Expect::received("the peer's RECEIVE", USER_BASE, 0, sizes(64, 5, 1)).with_buffer(
            &[
                (0, Field::Bytes(b"hinge")),
                (
                    5,
                    Field::Fill {
                        length: 3,
                        byte: SENDER_FILL,
                    },
                ),
                (
                    8,
                    Field::Slot {
                        descriptor: crate::Value::Is(kit::PEER_FREE as u64),
                        rights: Rights::SIGNAL.0,
                        mode: Some(0),
                    },
                ),
                (
                    24,
                    Field::Fill {
                        length: 40,
                        byte: UNTOUCHED,
                    },
                ),
            ],
        ),
        run: |context| {
            let event = context.event()?;
            let peer = kit::peer_door(context)?;
            kit::peer_serves(&peer, MAX)?;
            context.settle();
            let mut buffer = Buffer::filled(SENDER_FILL);
            buffer.put(0, b"hinge");
            buffer.put_slot(8, DescriptorSlot::copy(event, Rights::SIGNAL));
            let call = buffer.send(kit::USER_CALL, peer.client, sizes(64, 5, 1));
            context.check_registers("the SEND", &call, &kit::replied(0, 0, 0, 0));
            kit::peer_received(context, &peer.peer)
        },
    },
];
