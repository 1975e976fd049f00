//! MSG-SLOT: descriptor slots (ABI.md §1.3, §1.4, §1.5, §4.1 step 10 and
//! delivery): each refusal and the order of the checks within a slot, move
//! and copy, rights attenuation, the same descriptor twice (§9 D9), the
//! receiver's table full (§9 D10), the lowest free number, and the check
//! again at delivery.
//!
//! Refusals go to dead doors (slot checks come before step 11); deliveries
//! go to a peer whose table is known: descriptor 1 its control door, 2 the
//! owner reference of the door the runner calls, so the first descriptor it
//! receives is 3.

use abi::{Descriptor, DescriptorSlot, Error, ObjectKind, Rights};
use userlib::kernel::DoorKind;

use super::kit::{
    self, Answer, MAX, PEER_FREE, UNTOUCHED, USER_CALL, finished, info, peer_door, peer_info,
    peer_received, peer_serves, queued, receive, replied,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value, function_bits, sizes};

/// SEND with `slots` (no data) to `client`, a dead user door's (made first
/// in each case, so that a descriptor the case closes afterwards is not
/// reused by the door).
fn refuse(context: &mut Context, client: Descriptor, slots: &[DescriptorSlot]) -> Outcome {
    let call = kit::send(USER_CALL, client, &[], slots, 64)?;
    Ok(context.observe(call.registers))
}

/// [`refuse`], and the sender must still hold `kept` afterwards (`what`
/// says what failed if not).
fn refuse_keeping(
    context: &mut Context,
    client: Descriptor,
    slots: &[DescriptorSlot],
    kept: Descriptor,
    what: &str,
) -> Outcome {
    let observed = refuse(context, client, slots);
    context.check(info(kept).is_ok(), what);
    observed
}

/// An event reference with `rights` (a duplicate of a new event).
fn event_with(context: &mut Context, rights: Rights) -> Result<Descriptor, Failed> {
    let event = context.event()?;
    context.duplicate(event, rights)
}

/// Sends `data` and `slots` to a peer waiting in RECEIVE; returns the peer's
/// RECEIVE and checks the SEND completed.
fn deliver(context: &mut Context, data: &[u8], slots: &[DescriptorSlot]) -> Outcome {
    let peer = peer_door(context)?;
    peer_serves(&peer, MAX)?;
    context.settle();
    let call = kit::send(USER_CALL, peer.client, data, slots, 64)?;
    context.check_registers("the SEND", &call.registers, &replied(0, 0, 0, 0));
    let observed = peer_received(context, &peer.peer)?;
    Ok(observed)
}

const EVENT_SIGNAL: u32 = Rights::SIGNAL.0 | Rights::TRANSFER.0;

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SLOT-001",
        rule: "a slot whose reserved field (offset 12) is not zero is RESERVED_BITS",
        section: "1.3",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            refuse(
                context,
                client,
                &[DescriptorSlot {
                    reserved: 1,
                    ..DescriptorSlot::copy(event, Rights::SIGNAL)
                }],
            )
        },
    },
    Case {
        id: "MSG-SLOT-002",
        rule: "a slot granting an undefined right (bit 6) is RESERVED_BITS (as is bit 31 with SIGNAL)",
        section: "1.5",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            let top = DescriptorSlot::copy(event, Rights(1 << 31 | Rights::SIGNAL.0));
            let call = kit::send(USER_CALL, client, &[], &[top], 64)?;
            context.check_registers(
                "a slot granting bit 31 and SIGNAL",
                &call.registers,
                &kit::error(Error::ReservedBits),
            );
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(event, Rights(1 << 6))],
            )
        },
    },
    Case {
        id: "MSG-SLOT-003",
        rule: "a slot whose mode is neither COPY (0) nor MOVE (1) is BAD_SLOT",
        section: "1.3",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSlot),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            // The largest mode too.
            let largest = DescriptorSlot {
                mode: u32::MAX,
                ..DescriptorSlot::copy(event, Rights::SIGNAL)
            };
            let call = kit::send(USER_CALL, client, &[], &[largest], 64)?;
            context.check_registers(
                "a slot with mode 0xFFFFFFFF",
                &call.registers,
                &kit::error(Error::BadSlot),
            );
            refuse(
                context,
                client,
                &[DescriptorSlot {
                    mode: 2,
                    ..DescriptorSlot::copy(event, Rights::SIGNAL)
                }],
            )
        },
    },
    Case {
        id: "MSG-SLOT-004",
        rule: "a slot naming a closed descriptor is BAD_DESCRIPTOR",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            context.close(event)?;
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-005",
        rule: "a slot naming descriptor 0 (the NULL target, never a reference) is BAD_DESCRIPTOR",
        section: "1.4",
        decisions: &["D4"],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(Descriptor::NULL, Rights::NONE)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-006",
        rule: "a slot naming a reference without TRANSFER is NOT_TRANSFERABLE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::NotTransferable),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = event_with(context, Rights::SIGNAL.union(Rights::WAIT))?;
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-007",
        rule: "a slot granting a right the reference does not hold (SEND on an event) is RIGHTS_EXCEEDED",
        section: "1.5",
        decisions: &[],
        expect: Expect::error("SEND", Error::RightsExceeded),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(event, Rights::SEND)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-008",
        rule: "copying a door's owner reference with RECEIVE is NOT_TRANSFERABLE: RECEIVE is only ever moved (with RECEIVE | TRANSFER, and with RECEIVE alone)",
        section: "4.1",
        decisions: &["D11"],
        expect: Expect::error("SEND", Error::NotTransferable),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let door = context.user_door()?;
            let alone = DescriptorSlot::copy(door.owner, Rights::RECEIVE);
            let call = kit::send(USER_CALL, client, &[], &[alone], 64)?;
            context.check_registers(
                "a COPY of the owner reference granting RECEIVE alone",
                &call.registers,
                &kit::error(Error::NotTransferable),
            );
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(door.owner, Rights::DOOR_OWNER)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-009",
        rule: "moving a door's owner reference without RECEIVE in the granted rights (dropping it) is NOT_TRANSFERABLE",
        section: "4.1",
        decisions: &["D11"],
        expect: Expect::error("SEND", Error::NotTransferable),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let door = context.user_door()?;
            refuse(
                context,
                client,
                &[DescriptorSlot::moving(door.owner, Rights::TRANSFER)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-010",
        rule: "the same descriptor copied in two slots is allowed: the receiver gets two new references, 3 and 4, each with the rights its slot granted",
        section: "4.1",
        decisions: &["D9"],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 2),
        )
        .with_buffer(&[
            (
                0,
                Field::Slot {
                    descriptor: Value::Is(3),
                    rights: Rights::SEND.0,
                    mode: Some(0),
                },
            ),
            (
                16,
                Field::Slot {
                    descriptor: Value::Is(4),
                    rights: Rights::SEND.0 | Rights::TRANSFER.0,
                    mode: Some(0),
                },
            ),
        ]),
        run: |context| {
            let door = context.dead_door(DoorKind::User)?;
            deliver(
                context,
                &[],
                &[
                    DescriptorSlot::copy(door, Rights::SEND),
                    DescriptorSlot::copy(door, Rights::SEND.union(Rights::TRANSFER)),
                ],
            )
        },
    },
    Case {
        id: "MSG-SLOT-011",
        rule: "the same descriptor moved in one slot and copied in another is DUPLICATE_SLOT",
        section: "4.1",
        decisions: &["D9"],
        expect: Expect::error("SEND", Error::DuplicateSlot),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            refuse(
                context,
                client,
                &[
                    DescriptorSlot::moving(event, Rights::EVENT),
                    DescriptorSlot::copy(event, Rights::SIGNAL),
                ],
            )
        },
    },
    Case {
        id: "MSG-SLOT-012",
        rule: "the same descriptor moved in two slots is DUPLICATE_SLOT, and the sender keeps it",
        section: "4.1",
        decisions: &["D9"],
        expect: Expect::error("SEND", Error::DuplicateSlot),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            let slot = DescriptorSlot::moving(event, Rights::EVENT);
            refuse_keeping(
                context,
                client,
                &[slot, slot],
                event,
                "the sender lost the descriptor of the refused slots",
            )
        },
    },
    Case {
        id: "MSG-SLOT-013",
        rule: "within a slot, RESERVED_BITS comes before BAD_SLOT (reserved field set and mode 7)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            refuse(
                context,
                client,
                &[DescriptorSlot {
                    descriptor: event.0,
                    rights: 0,
                    mode: 7,
                    reserved: 1,
                }],
            )
        },
    },
    Case {
        id: "MSG-SLOT-014",
        rule: "within a slot, BAD_SLOT comes before BAD_DESCRIPTOR (mode 2 and a closed descriptor)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSlot),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            context.close(event)?;
            refuse(
                context,
                client,
                &[DescriptorSlot {
                    mode: 2,
                    ..DescriptorSlot::copy(event, Rights::NONE)
                }],
            )
        },
    },
    Case {
        id: "MSG-SLOT-015",
        rule: "within a slot, NOT_TRANSFERABLE comes before RIGHTS_EXCEEDED (no TRANSFER, and SEND granted)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::NotTransferable),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = event_with(context, Rights::SIGNAL)?;
            refuse(
                context,
                client,
                &[DescriptorSlot::copy(event, Rights::SEND)],
            )
        },
    },
    Case {
        id: "MSG-SLOT-016",
        rule: "a read-only buffer holding a bad slot is BAD_BUFFER (step 9 before step 10)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            use zerocopy::IntoBytes;
            let slot = DescriptorSlot {
                mode: 9,
                ..DescriptorSlot::default()
            };
            let pages = context.test_pages(slot.as_bytes())?;
            let client = context.dead_door(DoorKind::User)?;
            let args = abi::TrapArgs {
                arg0: function_bits(abi::function::USER_BASE),
                arg1: u64::from(client.0),
                arg2: pages.read_only,
                arg3: sizes(16, 0, 1),
            };
            Ok(context.observe(pages.trap(args)?))
        },
    },
    Case {
        id: "MSG-SLOT-017",
        rule: "a good slot followed by a bad one: the error of the second, and the move in the first does not happen",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            let gone = context.event()?;
            context.close(gone)?;
            refuse_keeping(
                context,
                client,
                &[
                    DescriptorSlot::moving(event, Rights::EVENT),
                    DescriptorSlot::copy(gone, Rights::SIGNAL),
                ],
                event,
                "the descriptor of the first (moving) slot left the sender",
            )
        },
    },
    Case {
        id: "MSG-SLOT-018",
        rule: "a delivered COPY slot is rewritten with the receiver's new descriptor, the rights granted, mode 0, reserved 0; it sits after the padding (offset 8 after 5 bytes of data); the sender keeps its reference",
        section: "1.3",
        decisions: &[],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 5, 1),
        )
        .with_buffer(&[
            (0, Field::Bytes(b"hello")),
            (
                8,
                Field::Slot {
                    descriptor: Value::Is(PEER_FREE as u64),
                    rights: EVENT_SIGNAL,
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
        ]),
        run: |context| {
            let event = context.event()?;
            let observed = deliver(
                context,
                b"hello",
                &[DescriptorSlot::copy(event, Rights(EVENT_SIGNAL))],
            );
            context.check(
                info(event).is_ok(),
                "the sender lost its reference after a COPY",
            );
            observed
        },
    },
    Case {
        id: "MSG-SLOT-019",
        rule: "a delivered MOVE slot keeps mode 1; the sender's descriptor is gone afterwards (BAD_DESCRIPTOR), another reference of the sender to the same event stays",
        section: "1.3",
        decisions: &[],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 1),
        )
        .with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Is(PEER_FREE as u64),
                rights: Rights::EVENT.0,
                mode: Some(1),
            },
        )]),
        run: |context| {
            let original = context.event()?;
            let event = context.duplicate(original, Rights::EVENT)?;
            let observed = deliver(
                context,
                &[],
                &[DescriptorSlot::moving(event, Rights::EVENT)],
            );
            context.forget(event);
            context.check(
                info(event) == Err(Error::BadDescriptor),
                "the sender still holds the descriptor it moved",
            );
            context.check(
                info(original) == Ok((ObjectKind::Event as u32, Rights::EVENT.0)),
                "the sender's other reference to the event did not stay as it was",
            );
            observed
        },
    },
    Case {
        id: "MSG-SLOT-020",
        rule: "rights are attenuated: a client reference copied with SEND only arrives, and stays, with SEND only",
        section: "1.5",
        decisions: &[],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 1),
        )
        .with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Is(PEER_FREE as u64),
                rights: Rights::SEND.0,
                mode: Some(0),
            },
        )]),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let peer = peer_door(context)?;
            peer_serves(&peer, MAX)?;
            context.settle();
            let call = kit::send(
                USER_CALL,
                peer.client,
                &[],
                &[DescriptorSlot::copy(client, Rights::SEND)],
                64,
            )?;
            context.check_registers("the SEND", &call.registers, &replied(0, 0, 0, 0));
            let observed = peer_received(context, &peer.peer)?;
            let described = peer_info(&peer.peer, PEER_FREE)?;
            context.check(
                described == Ok((ObjectKind::UserDoor as u32, Rights::SEND.0)),
                &alloc::format!("the peer's DESCRIPTOR_INFO of the copy: {described:?}"),
            );
            Ok(observed)
        },
    },
    Case {
        id: "MSG-SLOT-021",
        rule: "granting no rights at all is a subset too: the copy arrives with rights 0",
        section: "1.5",
        decisions: &[],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 1),
        )
        .with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Is(PEER_FREE as u64),
                rights: 0,
                mode: Some(0),
            },
        )]),
        run: |context| {
            let event = context.event()?;
            deliver(context, &[], &[DescriptorSlot::copy(event, Rights::NONE)])
        },
    },
    Case {
        id: "MSG-SLOT-022",
        rule: "a MOVE may grant a subset: a client reference moved with SEND | TRANSFER arrives with those rights",
        section: "1.5",
        decisions: &[],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 1),
        )
        .with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Is(PEER_FREE as u64),
                rights: Rights::SEND.0 | Rights::TRANSFER.0,
                mode: Some(1),
            },
        )]),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let observed = deliver(
                context,
                &[],
                &[DescriptorSlot::moving(
                    client,
                    Rights::SEND.union(Rights::TRANSFER),
                )],
            );
            context.forget(client);
            observed
        },
    },
    Case {
        id: "MSG-SLOT-023",
        rule: "the receiver's table is full: the sender fails with TABLE_FULL and keeps the descriptor it tried to move; the receiver still waits and gets the next message",
        section: "4.1",
        decisions: &["D10"],
        expect: Expect::error("the SEND with a slot", Error::TableFull),
        run: |context| {
            let event = context.event()?;
            let peer = peer_door(context)?;
            peer_serves(&peer, MAX)?;
            peer.peer.fill_table(0)?;
            // Full means up to the last number: it holds one of the copies.
            let last = kit::peer_info(&peer.peer, abi::descriptor::MAX_DESCRIPTORS)?;
            context.check(
                last.is_ok_and(|(kind, _)| kind == ObjectKind::Event as u32),
                &alloc::format!(
                    "the peer's descriptor {} after FILL_TABLE is not an event: {last:x?}",
                    abi::descriptor::MAX_DESCRIPTORS
                ),
            );
            let refused = kit::send(
                USER_CALL,
                peer.client,
                b"slot",
                &[DescriptorSlot::moving(event, Rights::EVENT)],
                64,
            )?;
            context.check(
                info(event).is_ok(),
                "the sender lost the descriptor of the refused move",
            );
            let next = kit::send(USER_CALL, peer.client, b"next", &[], 64)?;
            context.check_registers(
                "the next SEND, without slots",
                &next.registers,
                &replied(0, 0, 0, 0),
            );
            let received = peer_received(context, &peer.peer)?;
            context.check(
                received.buffer.get(..4) == Some(&b"next"[..]),
                "the receiver did not get the next message",
            );
            Ok(context.observe(refused.registers))
        },
    },
    Case {
        id: "MSG-SLOT-024",
        rule: "room for one descriptor but two slots: TABLE_FULL and neither is installed (the next single slot gets the one free number)",
        section: "4.1",
        decisions: &["D10"],
        expect: Expect::error("the SEND with two slots", Error::TableFull),
        run: |context| {
            let (one, two) = (context.event()?, context.event()?);
            let peer = peer_door(context)?;
            peer_serves(&peer, MAX)?;
            let free = peer.peer.fill_table(1)?;
            let refused = kit::send(
                USER_CALL,
                peer.client,
                &[],
                &[
                    DescriptorSlot::copy(one, Rights::SIGNAL),
                    DescriptorSlot::copy(two, Rights::SIGNAL),
                ],
                64,
            )?;
            let single = kit::send(
                USER_CALL,
                peer.client,
                &[],
                &[DescriptorSlot::copy(one, Rights::SIGNAL)],
                64,
            )?;
            context.check_registers(
                "the SEND with one slot",
                &single.registers,
                &replied(0, 0, 0, 0),
            );
            let received = peer_received(context, &peer.peer)?;
            context.check(
                received.buffer.get(..4) == Some(&free.to_le_bytes()[..]),
                &alloc::format!(
                    "the single slot did not arrive as descriptor {free}, the one free number"
                ),
            );
            Ok(context.observe(refused.registers))
        },
    },
    Case {
        id: "MSG-SLOT-025",
        rule: "room for exactly one descriptor: one slot is delivered, at the one free number (1024, the last valid descriptor)",
        section: "1.4",
        decisions: &["D4", "D10"],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 1),
        )
        .with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Var("free"),
                rights: Rights::SIGNAL.0,
                mode: Some(0),
            },
        )]),
        run: |context| {
            let event = context.event()?;
            let peer = peer_door(context)?;
            peer_serves(&peer, MAX)?;
            let free = peer.peer.fill_table(1)?;
            context.bind("free", u64::from(free));
            context.check(
                free == abi::descriptor::MAX_DESCRIPTORS,
                &alloc::format!("the one free number is {free}, not 1024"),
            );
            let call = kit::send(
                USER_CALL,
                peer.client,
                &[],
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
                64,
            )?;
            context.check_registers("the SEND", &call.registers, &replied(0, 0, 0, 0));
            let received = peer_received(context, &peer.peer)?;
            Ok(context.observe_buffer(received.registers, received.msg_ptr, received.buffer))
        },
    },
    Case {
        id: "MSG-SLOT-026",
        rule: "slots are checked again at delivery: a queued sender whose slot's descriptor was closed meanwhile fails with BAD_DESCRIPTOR; the receiver gets the next call",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("the first caller's SEND", Error::BadDescriptor),
        run: |context| {
            let door = context.user_door()?;
            let event = context.event()?;
            let first = kit::caller(
                context,
                USER_CALL,
                door.client,
                b"first",
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
                64,
            )?;
            context.settle();
            context.close(event)?;
            let second = queued(context, door.client, b"second", 64)?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..6) == Some(&b"second"[..]),
                "the receiver did not get the second call",
            );
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &second, "the second caller")?;
            let first = finished(context, &first, "the first caller")?;
            Ok(context.observe(first.registers))
        },
    },
    Case {
        id: "MSG-SLOT-027",
        rule: "a new reference takes the lowest free number: with descriptor 2 closed in the peer, a copy arrives as 2",
        section: "1.4",
        decisions: &[],
        expect: Expect::received(
            "the peer's RECEIVE",
            abi::function::USER_BASE,
            0,
            sizes(64, 0, 1),
        )
        .with_buffer(&[(
            0,
            Field::Slot {
                descriptor: Value::Is(2),
                rights: Rights::SIGNAL.0,
                mode: Some(0),
            },
        )]),
        run: |context| {
            use crate::peer::Step;
            use zerocopy::IntoBytes;
            let event = context.event()?;
            let door = context.user_door()?;
            // The peer: 1 control, 2 a copy of the event, 3 the door's owner reference.
            let peer = context.peer(&[
                DescriptorSlot::copy(event, Rights::EVENT),
                DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER),
            ])?;
            context.forget(door.owner);
            let close = abi::kcall::DescriptorRequest::new(abi::Descriptor(2), abi::Rights::NONE);
            let closed = peer.trap(Step::send(
                abi::KernelFunction::Close.function(),
                0,
                close.as_bytes(),
                &[],
                64,
            ))?;
            context.check_registers(
                "the peer's CLOSE of 2",
                &closed.registers,
                &replied(0, 0, 8, 0),
            );
            peer.start(
                0,
                &[Step::receive(3, MAX, UNTOUCHED), Step::reply(0, &[], &[])],
            )?;
            context.settle();
            let call = kit::send(
                USER_CALL,
                door.client,
                &[],
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
                64,
            )?;
            context.check_registers("the SEND", &call.registers, &replied(0, 0, 0, 0));
            peer_received(context, &peer)
        },
    },
    Case {
        id: "MSG-SLOT-028",
        rule: "a MOVE slot granting a right the reference does not hold (WAIT from SIGNAL | TRANSFER | DUPLICATE) is RIGHTS_EXCEEDED, and the sender keeps the descriptor",
        section: "1.5",
        decisions: &[],
        expect: Expect::error("SEND", Error::RightsExceeded),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = event_with(
                context,
                Rights::SIGNAL
                    .union(Rights::TRANSFER)
                    .union(Rights::DUPLICATE),
            )?;
            let more = Rights::SIGNAL.union(Rights::WAIT).union(Rights::TRANSFER);
            refuse_keeping(
                context,
                client,
                &[DescriptorSlot::moving(event, more)],
                event,
                "the sender lost the descriptor of the refused move",
            )
        },
    },
    Case {
        id: "MSG-SLOT-029",
        rule: "the same descriptor copied in one slot and moved in a later one is DUPLICATE_SLOT, and the sender keeps it",
        section: "4.1",
        decisions: &["D9"],
        expect: Expect::error("SEND", Error::DuplicateSlot),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let event = context.event()?;
            refuse_keeping(
                context,
                client,
                &[
                    DescriptorSlot::copy(event, Rights::SIGNAL),
                    DescriptorSlot::moving(event, Rights::EVENT),
                ],
                event,
                "the sender lost the descriptor of the refused slots",
            )
        },
    },
];
