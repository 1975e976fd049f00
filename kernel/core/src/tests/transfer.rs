//! Descriptor transfer: copy and move, rights, slot errors, full tables,
//! descriptors travelling through three processes.

use abi::descriptor::MAX_DESCRIPTORS;
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights, TrapArgs};

use crate::object::ObjectBody;

use super::fake_machine::*;
use super::harness::*;

// 11. descriptor transfer

#[test]
fn a_copied_descriptor_stays_with_the_sender_and_a_moved_one_leaves() {
    let mut f = fixture(false, 1);
    let (s, c, sp, cp) = (f.s(), f.c(0), f.sp(), f.cp(0));
    let e1 = f.w.event_create(c);
    let e2 = f.w.event_create(c);
    let slots = [
        DescriptorSlot::copy(e1, Rights::EVENT),
        DescriptorSlot::moving(e2, Rights::EVENT),
    ];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 2));
    assert_eq!(f.w.open_descriptors(cp), 2, "REF and e1");
    assert!(f.w.reference(cp, e1).is_some());
    assert_eq!(f.w.reference(cp, e2), None);
    assert_eq!(f.w.open_descriptors(sp), 3, "OWNER and two events");
    let (o1, o2) = (f.w.object_of(cp, e1), f.w.object_of(sp, Descriptor(3)));
    assert_eq!(f.w.object_of(sp, Descriptor(2)), o1);
    assert_eq!(f.w.k.objects.get(o1).map(|o| o.references), Some(2));
    assert_eq!(f.w.k.objects.get(o2).map(|o| o.references), Some(1));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn delivered_slots_carry_the_receivers_descriptor_and_the_granted_rights() {
    let mut f = fixture(false, 1);
    let (s, c, sp, cp) = (f.s(), f.c(0), f.sp(), f.cp(0));
    let e1 = f.w.event_create(c);
    let e2 = f.w.event_create(c);
    let signal_only = Rights::SIGNAL;
    let wait_transfer = Rights::WAIT.union(Rights::TRANSFER);
    let slots = [
        DescriptorSlot::copy(e1, signal_only),
        DescriptorSlot::moving(e2, wait_transfer),
    ];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 2));
    assert_eq!(f.w.peek(sp, RBUF, 1), b"d");
    assert_eq!(
        f.w.slot_at(sp, RBUF + 8),
        DescriptorSlot::copy(Descriptor(2), signal_only)
    );
    assert_eq!(
        f.w.slot_at(sp, RBUF + 24),
        DescriptorSlot::moving(Descriptor(3), wait_transfer)
    );
    assert_eq!(
        f.w.reference(sp, Descriptor(2)).map(|r| r.rights),
        Some(signal_only)
    );
    assert_eq!(
        f.w.reference(sp, Descriptor(3)).map(|r| r.rights),
        Some(wait_transfer)
    );
    assert_eq!(
        f.w.reference(cp, e1).map(|r| r.rights),
        Some(Rights::EVENT),
        "the sender keeps its rights"
    );
    // The sender's own buffer is not rewritten.
    assert_eq!(f.w.slot_at(cp, SBUF + 8), slots[0]);
    // Attenuated rights stick: without TRANSFER the server cannot pass it on.
    assert_eq!(
        f.w.info(s, Descriptor(2)),
        Ok((ObjectKind::Event as u32, signal_only.0))
    );
    let back = [DescriptorSlot::copy(Descriptor(2), signal_only)];
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&back)),
        err(Error::NotTransferable)
    );
    let back = [DescriptorSlot::copy(Descriptor(3), Rights::WAIT)];
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"ok", 64).slots(&back)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 2, 1));
    assert_eq!(
        f.w.slot_at(cp, SBUF + 8),
        DescriptorSlot::copy(e2, Rights::WAIT),
        "lowest free number"
    );
    assert_eq!(f.w.reference(cp, e2).map(|r| r.rights), Some(Rights::WAIT));
    f.w.assert_invariants();
}

#[test]
fn a_slot_granting_rights_the_sender_lacks_is_rights_exceeded() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::copy(e, Rights::SEND)];
    assert_eq!(send_slots(&mut f, &slots), err(Error::RightsExceeded));
    let with_receive = Rights::EVENT.union(Rights::RECEIVE);
    for slot in [
        DescriptorSlot::moving(e, Rights::SEND),
        DescriptorSlot::copy(e, with_receive),
        DescriptorSlot::moving(e, with_receive),
    ] {
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&[slot])),
            err(Error::RightsExceeded)
        );
    }
    assert_eq!(
        f.w.reference(f.cp(0), e).map(|r| r.rights),
        Some(Rights::EVENT)
    );
    f.w.assert_invariants();
}

#[test]
fn a_descriptor_without_transfer_right_is_not_transferable() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let Ok(kept) = f.w.duplicate(c, e, Rights::SIGNAL.union(Rights::WAIT)) else {
        panic!("DUPLICATE failed")
    };
    let slots = [DescriptorSlot::copy(kept, Rights::SIGNAL)];
    assert_eq!(send_slots(&mut f, &slots), err(Error::NotTransferable));
    let slots = [DescriptorSlot::moving(kept, Rights::NONE)];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        err(Error::NotTransferable)
    );
    assert!(f.w.reference(f.cp(0), kept).is_some());
    f.w.assert_invariants();
}

#[test]
fn copying_a_receive_right_is_not_transferable() {
    // A second door, owned by the fixture's client, passed to the server.
    let mut f = fixture(false, 1);
    let init = f.w.init_thread;
    let (owner2, _client2) = f.w.door_create(init, false);
    // Init cannot copy the owner reference to a child either.
    assert_eq!(
        f.w.spawn(
            b"client",
            &[],
            &[DescriptorSlot::copy(owner2, Rights::DOOR_OWNER)]
        ),
        Err(Error::NotTransferable)
    );
    let child = match f.w.spawn(
        b"client",
        &[],
        &[
            DescriptorSlot::copy(f.init_ref, Rights::DOOR_CLIENT),
            DescriptorSlot::moving(owner2, Rights::DOOR_OWNER),
        ],
    ) {
        Ok(child) => child,
        Err(e) => panic!("SPAWN: {e}"),
    };
    // The child (a client of the fixture's door) holds an owner reference.
    let owner_in_child = Descriptor(2);
    assert_eq!(
        f.w.info(child.thread, owner_in_child),
        Ok((ObjectKind::UserDoor as u32, Rights::DOOR_OWNER.0))
    );
    let s = f.s();
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    let slots = [DescriptorSlot::copy(owner_in_child, Rights::DOOR_OWNER)];
    assert_eq!(
        f.w.send(
            child.thread,
            USER_FN,
            REF,
            msg(SBUF, b"d", 128).slots(&slots)
        ),
        err(Error::NotTransferable)
    );
    let slots = [DescriptorSlot::moving(owner_in_child, Rights::TRANSFER)];
    assert_eq!(
        f.w.send(
            child.thread,
            USER_FN,
            REF,
            msg(SBUF, b"d", 128).slots(&slots)
        ),
        err(Error::NotTransferable)
    );
    // Moving it works, and the server becomes the door's owner.
    let slots = [DescriptorSlot::moving(owner_in_child, Rights::DOOR_OWNER)];
    assert_eq!(
        f.w.send(
            child.thread,
            USER_FN,
            REF,
            msg(SBUF, b"d", 128).slots(&slots)
        ),
        None
    );
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 128, 1, 1));
    assert_eq!(
        f.w.slot_at(f.sp(), RBUF + 8),
        DescriptorSlot::moving(Descriptor(2), Rights::DOOR_OWNER)
    );
    let door = f.w.object_of(f.sp(), Descriptor(2));
    assert!(matches!(
        f.w.k.objects.get(door).map(|o| &o.body),
        Some(ObjectBody::Door(d)) if d.owner == Some(f.server.process)
    ));
    f.w.assert_invariants();
}

#[test]
fn a_descriptor_moved_twice_or_moved_and_copied_is_duplicate_slot() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let cases = [
        [
            DescriptorSlot::moving(e, Rights::EVENT),
            DescriptorSlot::moving(e, Rights::EVENT),
        ],
        [
            DescriptorSlot::moving(e, Rights::EVENT),
            DescriptorSlot::copy(e, Rights::SIGNAL),
        ],
        [
            DescriptorSlot::copy(e, Rights::SIGNAL),
            DescriptorSlot::moving(e, Rights::EVENT),
        ],
    ];
    assert_eq!(send_slots(&mut f, &cases[0]), err(Error::DuplicateSlot));
    for slots in &cases[1..] {
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(slots)),
            err(Error::DuplicateSlot)
        );
    }
    assert!(f.w.reference(f.cp(0), e).is_some());
    // Copied twice is fine: two new references.
    let slots = [
        DescriptorSlot::copy(e, Rights::SIGNAL),
        DescriptorSlot::copy(e, Rights::WAIT),
    ];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    let s = f.s();
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 128, 1, 2));
    assert_eq!(
        f.w.slot_at(f.sp(), RBUF + 8),
        DescriptorSlot::copy(Descriptor(2), Rights::SIGNAL)
    );
    assert_eq!(
        f.w.slot_at(f.sp(), RBUF + 24),
        DescriptorSlot::copy(Descriptor(3), Rights::WAIT)
    );
    f.w.assert_invariants();
}

#[test]
fn a_slot_with_an_unknown_mode_is_bad_slot() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    for mode in [2, 3, u32::MAX] {
        let slot = DescriptorSlot {
            mode,
            ..DescriptorSlot::copy(e, Rights::SIGNAL)
        };
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&[slot])),
            err(Error::BadSlot)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_slot_with_reserved_bits_is_reserved_bits() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let reserved = DescriptorSlot {
        reserved: 1,
        ..DescriptorSlot::copy(e, Rights::SIGNAL)
    };
    let undefined_right = DescriptorSlot {
        rights: 1 << 6,
        ..DescriptorSlot::copy(e, Rights::SIGNAL)
    };
    for slot in [reserved, undefined_right] {
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&[slot])),
            err(Error::ReservedBits)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_slot_naming_no_descriptor_is_bad_descriptor() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for d in [0, 7, MAX_DESCRIPTORS + 1] {
        let slots = [DescriptorSlot::copy(Descriptor(d), Rights::NONE)];
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
            err(Error::BadDescriptor)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn slots_are_checked_again_at_delivery() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let helper = f.w.thread_create(c);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::moving(e, Rights::EVENT)];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    // Another thread of the caller closes the descriptor before delivery.
    assert_eq!(f.w.close(helper, e), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        None,
        "the bad call is not delivered"
    );
    assert_eq!(f.w.resume(c), err(Error::BadDescriptor));
    assert_eq!(f.w.open_descriptors(f.sp()), 1);
    f.w.assert_invariants();
}

#[test]
fn a_full_receiver_table_is_table_full_for_a_sender_meeting_a_waiting_receiver() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    fill_table(&mut f.w, s);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::moving(e, Rights::EVENT)];
    assert_eq!(send_slots(&mut f, &slots), err(Error::TableFull));
    assert_eq!(f.w.reference(cp, e).map(|r| r.rights), Some(Rights::EVENT));
    assert_eq!(f.w.open_descriptors(cp), 2);
    // The receiver still waits and takes a message without descriptors.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"plain", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn a_full_receiver_table_is_table_full_for_a_queued_sender() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    fill_table(&mut f.w, s);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::copy(e, Rights::SIGNAL)];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.resume(c), err(Error::TableFull));
    assert_eq!(f.w.reference(cp, e).map(|r| r.rights), Some(Rights::EVENT));
    f.w.assert_invariants();
}

#[test]
fn descriptors_travel_through_three_processes() {
    // A calls B's door, B calls C's door; an event created by A ends in C.
    let mut w = World::new();
    let init = w.init_thread;
    let (b_owner, b_client) = w.door_create(init, false);
    let (c_owner, c_client) = w.door_create(init, false);
    let b = w.spawn_ok(
        b"server",
        &[
            DescriptorSlot::moving(b_owner, Rights::DOOR_OWNER),
            DescriptorSlot::moving(c_client, Rights::DOOR_CLIENT),
        ],
    );
    let c = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(c_owner, Rights::DOOR_OWNER)],
    );
    let a = w.spawn_ok(
        b"client",
        &[DescriptorSlot::moving(b_client, Rights::DOOR_CLIENT)],
    );
    let event = w.event_create(a.thread);
    let object = w.object_of(a.process, event);

    assert_eq!(w.receive(b.thread, Descriptor(1), RBUF, 512), None);
    let slots = [DescriptorSlot::moving(event, Rights::EVENT)];
    assert_eq!(
        w.send(
            a.thread,
            USER_FN,
            Descriptor(1),
            msg(SBUF, b"", 64).slots(&slots)
        ),
        None
    );
    assert_eq!(w.resume(b.thread), received(USER_FN, 0, 64, 0, 1));
    let in_b = Descriptor(w.slot_at(b.process, RBUF).descriptor);
    assert_eq!(in_b, Descriptor(3));
    assert_eq!(
        w.reply(b.thread, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(w.resume(a.thread), replied(0, 0, 0, 0));
    assert_eq!(w.open_descriptors(a.process), 1);

    assert_eq!(w.receive(c.thread, Descriptor(1), RBUF, 512), None);
    let slots = [DescriptorSlot::copy(
        in_b,
        Rights::WAIT.union(Rights::TRANSFER),
    )];
    assert_eq!(
        w.send(
            b.thread,
            USER_FN,
            Descriptor(2),
            msg(SBUF, b"", 64).slots(&slots)
        ),
        None
    );
    assert_eq!(w.resume(c.thread), received(USER_FN, 0, 64, 0, 1));
    let in_c = Descriptor(w.slot_at(c.process, RBUF).descriptor);
    assert_eq!(in_c, Descriptor(2));
    assert_eq!(w.object_of(b.process, in_b), object);
    assert_eq!(w.object_of(c.process, in_c), object);
    assert_eq!(w.k.objects.get(object).map(|o| o.references), Some(2));
    assert_eq!(
        w.reply(c.thread, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(w.resume(b.thread), replied(0, 0, 0, 0));

    // The same event: B signals, C consumes.
    let signal = w.kcall(b.thread, KernelFunction::EventSignal, in_b, &[]);
    assert_eq!(Some(signal), kernel_ok(0, 0, 0));
    let wait = w.kcall(c.thread, KernelFunction::EventWait, in_c, &[]);
    assert_eq!(Some(wait), kernel_ok(0, 0, 0));
    // C was given WAIT only.
    assert_eq!(
        w.kcall(c.thread, KernelFunction::EventSignal, in_c, &[]),
        TrapArgs::error(Error::MissingRight)
    );
    w.assert_invariants();
}
