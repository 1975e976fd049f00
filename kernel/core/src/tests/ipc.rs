//! SEND, RECEIVE and REPLY: delivery, cookies, queueing, replies too large,
//! receive buffers too small, nothing to reply, abandoned calls, death, and
//! RECEIVE's descriptor.

use abi::descriptor::MAX_DESCRIPTORS;
use abi::function::Function;
use abi::{Descriptor, DescriptorSlot, Error, Rights, TrapArgs};

use crate::thread::{Holding, ThreadState};

use super::fake_machine::*;
use super::harness::*;

// 1. SEND, RECEIVE, REPLY

#[test]
fn send_to_a_waiting_receiver_delivers_at_once_and_hands_off() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let sp = f.sp();
    f.w.fill(sp, RBUF, 256, 0xee);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    let data = pattern(20);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, &data, 64)), None);
    assert_eq!(f.w.k.current(), Some(s), "direct handoff to the receiver");
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 20, 0));
    assert_eq!(f.w.peek(sp, RBUF, 20), data);
    assert_eq!(
        f.w.peek(sp, RBUF + 24, 64),
        vec![0xee; 64],
        "nothing past the message"
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { server, .. } if server == s));
    assert_eq!(f.w.resume(c), None);
    f.w.assert_invariants();
}

#[test]
fn reply_delivers_ret_val_and_errno_by_data_size() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let reply_data = pattern(20);
    // (data size, msgRetVal, msgErrno) as the ABI defines them.
    let cases: [(u16, u32, u32); 6] = [
        (0, 0, 0),
        (3, 0, 0),
        (4, 0x0403_0201, 0),
        (7, 0x0403_0201, 0),
        (8, 0x0403_0201, 0x0807_0605),
        (20, 0x0403_0201, 0x0807_0605),
    ];
    for (n, ret_val, errno) in cases {
        f.w.fill(cp, SBUF, 64, 0xcc);
        assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
        assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"question", 64)), None);
        assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 8, 0));
        let data = &reply_data[..usize::from(n)];
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, data, 32)),
            Some(TrapArgs::default()),
            "REPLY returns all zeros (data {n})"
        );
        assert_eq!(f.w.k.current(), Some(s), "the replier keeps running");
        assert_eq!(f.w.state(c), ThreadState::Ready);
        assert_eq!(f.w.resume(c), replied(ret_val, errno, n, 0), "data {n}");
        assert_eq!(f.w.peek(cp, SBUF, usize::from(n)), data);
        // Past the reply (data and padding) the caller's buffer is as it was.
        let end = usize::from(n).div_ceil(8) * 8;
        let mut before = [0xcc; 64];
        before[..8].copy_from_slice(b"question");
        assert_eq!(
            f.w.peek(cp, SBUF + end as u64, 64 - end),
            before[end..].to_vec(),
            "nothing written past the reply (data {n})"
        );
    }
    f.w.assert_invariants();
}

#[test]
fn reply_receive_with_an_empty_queue_hands_back_to_the_caller() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"ping", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 4, 0));
    assert_eq!(f.w.reply_receive(s, 0, msg(RBUF, b"pong", 512)), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    assert_eq!(
        f.w.k.current(),
        Some(c),
        "direct handoff back to the caller"
    );
    assert_eq!(f.w.resume(c), replied(0x676e_6f70, 0, 4, 0));
    f.w.assert_invariants();
}

#[test]
fn reply_receive_with_a_queued_caller_receives_it_at_once() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"first", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"second", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 5, 0)
    );
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 512)),
        received(USER_FN, 0, 64, 6, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 6), b"second");
    assert_eq!(f.w.resume(c0), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

// 2. cookies

#[test]
fn reply_cookie_is_stored_in_the_callers_reference_and_delivered_with_the_next_call() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let first =
        f.w.round_trip(c, REF, USER_FN, s, OWNER, 0xdead_beef_0000_0001);
    assert_eq!(first.arg1, 0, "a new reference's cookie is 0");
    assert_eq!(
        f.w.reference(cp, REF).map(|r| r.cookie),
        Some(0xdead_beef_0000_0001)
    );
    let second = f.w.round_trip(c, REF, USER_FN, s, OWNER, u64::MAX);
    assert_eq!(second.arg1, 0xdead_beef_0000_0001);
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(u64::MAX));
    let third = f.w.round_trip(c, REF, USER_FN, s, OWNER, 5);
    assert_eq!(third.arg1, u64::MAX, "cookies are 64 bits wide");
    f.w.assert_invariants();
}

#[test]
fn a_duplicated_reference_has_its_own_cookie() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    f.w.round_trip(c, REF, USER_FN, s, OWNER, 41);
    let Ok(copy) = f.w.duplicate(c, REF, Rights::DOOR_CLIENT) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!(f.w.round_trip(c, copy, USER_FN, s, OWNER, 99).arg1, 0);
    assert_eq!(f.w.round_trip(c, REF, USER_FN, s, OWNER, 41).arg1, 41);
    assert_eq!(f.w.round_trip(c, copy, USER_FN, s, OWNER, 99).arg1, 99);
    assert_eq!(f.w.reference(cp, copy).map(|r| r.cookie), Some(99));
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(41));
    f.w.assert_invariants();
}

#[test]
fn a_copied_reference_starts_at_cookie_zero_and_a_moved_one_keeps_its_cookie() {
    // Door A: server S, client C. Door B: owned by X, C holds a reference.
    let mut w = World::new();
    let init = w.init_thread;
    let (a_owner, a_client) = w.door_create(init, false);
    let (b_owner, b_client) = w.door_create(init, false);
    let s = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(a_owner, Rights::DOOR_OWNER)],
    );
    let x = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(b_owner, Rights::DOOR_OWNER)],
    );
    let c = w.spawn_ok(
        b"client",
        &[
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(b_client, Rights::DOOR_CLIENT),
        ],
    );
    let (a, b) = (Descriptor(1), Descriptor(2));
    w.round_trip(c.thread, a, USER_FN, s.thread, OWNER, 77);
    let Ok(a2) = w.duplicate(c.thread, a, Rights::DOOR_CLIENT) else {
        panic!("DUPLICATE failed")
    };
    w.round_trip(c.thread, a2, USER_FN, s.thread, OWNER, 88);
    // C passes a copy of `a` (cookie 77) and moves `a2` (cookie 88) to X.
    assert_eq!(w.receive(x.thread, OWNER, RBUF, 512), None);
    let slots = [
        DescriptorSlot::copy(a, Rights::DOOR_CLIENT),
        DescriptorSlot::moving(a2, Rights::DOOR_CLIENT),
    ];
    assert_eq!(
        w.send(c.thread, USER_FN, b, msg(SBUF, &[], 64).slots(&slots)),
        None
    );
    assert_eq!(w.resume(x.thread), received(USER_FN, 0, 64, 0, 2));
    let copied = Descriptor(w.slot_at(x.process, RBUF).descriptor);
    let moved = Descriptor(w.slot_at(x.process, RBUF + 16).descriptor);
    assert_eq!((copied, moved), (Descriptor(2), Descriptor(3)));
    assert_eq!(w.reference(x.process, copied).map(|r| r.cookie), Some(0));
    assert_eq!(w.reference(x.process, moved).map(|r| r.cookie), Some(88));
    assert_eq!(w.reference(c.process, a2), None, "moved away");
    assert_eq!(
        w.reference(c.process, a).map(|r| r.cookie),
        Some(77),
        "the original keeps its own"
    );
    assert_eq!(
        w.reply(x.thread, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(w.resume(c.thread), replied(0, 0, 0, 0));
    // X calls S through both.
    assert_eq!(
        w.round_trip(x.thread, copied, USER_FN, s.thread, OWNER, 1)
            .arg1,
        0
    );
    assert_eq!(
        w.round_trip(x.thread, moved, USER_FN, s.thread, OWNER, 2)
            .arg1,
        88
    );
    w.assert_invariants();
}

// 3. queueing

#[test]
fn send_without_a_receiver_blocks_the_caller() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"hello", 64)), None);
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_ne!(f.w.k.current(), Some(c));
    assert_eq!(f.w.resume(c), None);
    f.w.assert_invariants();
}

#[test]
fn queued_senders_are_received_in_fifo_order() {
    let mut f = fixture(false, 3);
    let s = f.s();
    for i in 0..3 {
        let data = vec![b'a' + i as u8; 10 + i];
        assert_eq!(f.w.send(f.c(i), USER_FN, REF, msg(SBUF, &data, 64)), None);
    }
    for i in 0..3 {
        assert_eq!(
            f.w.receive(s, OWNER, RBUF, 512),
            received(USER_FN, 0, 64, 10 + i as u16, 0),
            "message {i}"
        );
        assert_eq!(f.w.peek(f.sp(), RBUF, 10 + i), vec![b'a' + i as u8; 10 + i]);
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, &[], 0)),
            Some(TrapArgs::default())
        );
        assert_eq!(f.w.resume(f.c(i)), replied(0, 0, 0, 0));
    }
    f.w.assert_invariants();
}

// 4. reply too large

#[test]
fn reply_larger_than_the_callers_buffer_fails_the_replier_and_keeps_the_caller_blocked() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"12345678", 16)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 16, 8, 0));
    let big = pattern(24);
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &big, 64)),
        err(Error::ReplyTooLarge)
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    assert!(matches!(f.w.holding(s), Holding::Call { caller, .. } if caller == c));
    assert_eq!(f.w.resume(c), None);
    // 17 bytes of data occupy 24 with padding: still too large.
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &big[..17], 64)),
        err(Error::ReplyTooLarge)
    );
    assert_eq!(
        f.w.reply(s, 3, msg(RBUF, &big[..16], 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0x0403_0201, 0x0807_0605, 16, 0));
    assert_eq!(f.w.peek(cp, SBUF, 16), big[..16].to_vec());
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(3));
    f.w.assert_invariants();
}

// 5. receive buffer too small

#[test]
fn receive_buffer_smaller_than_the_queued_message_leaves_it_queued() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let data = pattern(100);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, &data, 128)), None);
    let too_small = Some(TrapArgs::receive_too_small(sizes(128, 100, 0)));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 64), too_small);
    // Without descriptors there is no padding (ABI.md D13): 100 bytes need 100.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 99), too_small);
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 100),
        received(USER_FN, 0, 128, 100, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 100), data);
    f.w.assert_invariants();
}

#[test]
fn a_message_too_big_for_a_blocked_receiver_wakes_it_with_the_sizes_and_stays_queued() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 32), None);
    let data = pattern(100);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, &data, 128)), None);
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::receive_too_small(sizes(128, 100, 0)))
    );
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_eq!(f.w.resume(c), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 128),
        received(USER_FN, 0, 128, 100, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 100), data);
    f.w.assert_invariants();
}

#[test]
fn a_too_small_receiver_does_not_hold_up_a_capable_one() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 32), None);
    assert_eq!(f.w.receive(s2, OWNER, RBUF + 0x800, 512), None);
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, &pattern(100), 128)),
        None
    );
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::receive_too_small(sizes(128, 100, 0)))
    );
    assert_eq!(
        f.w.resume(s2),
        Some(TrapArgs::received(
            Function(USER_FN),
            0,
            RBUF + 0x800,
            sizes(128, 100, 0)
        )),
        "the receiver whose buffer fits gets the message"
    );
    f.w.assert_invariants();
}

// 6. nothing to reply

#[test]
fn reply_with_nothing_pending_is_nothing_to_reply() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 64)),
        err(Error::NothingToReply)
    );
    f.w.round_trip(c, REF, USER_FN, s, OWNER, 0);
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    // A client never holds a message.
    assert_eq!(
        f.w.reply(c, 0, msg(SBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

// 7. abandon

#[test]
fn receiving_again_without_replying_abandons_the_previous_caller() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"one", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"two", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 3, 0)
    );
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 3, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 3), b"two");
    assert_eq!(f.w.resume(c0), err(Error::Abandoned));
    assert_eq!(f.w.state(c0), ThreadState::Ready);
    // Abandoned even when the new RECEIVE blocks.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.resume(c1), err(Error::Abandoned));
    // A RECEIVE that fails its checks abandons nothing.
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"three", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(
        f.w.receive(s, Descriptor(9), RBUF, 512),
        err(Error::BadDescriptor)
    );
    assert!(matches!(f.w.state(c0), ThreadState::AwaitingReply { .. }));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c0), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

// 8. death

#[test]
fn server_exit_fails_its_queued_and_in_service_callers_with_peer_died() {
    let mut f = fixture(false, 3);
    let s = f.s();
    let sp = f.sp();
    for i in 0..3 {
        assert_eq!(f.w.send(f.c(i), USER_FN, REF, msg(SBUF, b"x", 64)), None);
    }
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 1, 0)
    );
    f.w.exit_process(s, 9);
    for i in 0..3 {
        assert_eq!(f.w.resume(f.c(i)), err(Error::PeerDied), "caller {i}");
        assert_eq!(f.w.state(f.c(i)), ThreadState::Ready);
    }
    assert!(f.w.k.take_exited().contains(&(sp, 9)));
    // Nothing can call the dead door any more.
    assert_eq!(
        f.w.send(f.c(0), USER_FN, REF, msg(SBUF, b"x", 64)),
        err(Error::PeerDied)
    );
    f.w.assert_invariants();
}

#[test]
fn client_death_while_queued_removes_the_call_from_the_queue() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let helper = f.w.thread_create(c0);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"doomed", 64)), None);
    f.w.exit_process(helper, 1);
    assert!(!f.w.alive(c0));
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        None,
        "the dead call is not delivered"
    );
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"alive", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(f.w.peek(f.sp(), RBUF, 5), b"alive");
    f.w.assert_invariants();
}

#[test]
fn client_death_in_service_makes_reply_caller_gone() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let helper = f.w.thread_create(c);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"x", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    f.w.exit_process(helper, 1);
    assert!(matches!(f.w.holding(s), Holding::Cancelled { .. }));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"late", 64)),
        err(Error::CallerGone)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"late", 64)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_ignores_caller_gone_and_receives() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let h0 = f.w.thread_create(c0);
    let h1 = f.w.thread_create(c1);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"first", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"second", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 5, 0)
    );
    f.w.exit_process(h0, 1);
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, b"late", 512)),
        received(USER_FN, 0, 64, 6, 0)
    );
    // And with nothing queued it blocks.
    f.w.exit_process(h1, 1);
    assert_eq!(f.w.reply_receive(s, 0, msg(RBUF, &[], 512)), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    f.w.assert_invariants();
}

#[test]
fn closing_the_owner_reference_fails_queued_and_later_callers() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"x", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"y", 64)), None);
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.resume(c0), err(Error::PeerDied));
    assert_eq!(f.w.resume(c1), err(Error::PeerDied));
    assert_eq!(
        f.w.send(c0, USER_FN, REF, msg(SBUF, b"x", 64)),
        err(Error::PeerDied)
    );
    f.w.assert_invariants();
}

#[test]
fn closing_the_owner_reference_wakes_its_waiting_receivers_with_peer_died() {
    let mut f = fixture(false, 1);
    let s = f.s();
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s2, OWNER, RBUF, 512), None);
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.resume(s2), err(Error::PeerDied));
    f.w.assert_invariants();
}

// 9. RECEIVE's descriptor

#[test]
fn receive_on_a_client_reference_is_not_owner() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(f.w.receive(c, REF, SBUF, 64), err(Error::NotOwner));
    f.w.assert_invariants();
}

#[test]
fn receive_on_an_event_is_wrong_object_type() {
    let mut f = fixture(false, 1);
    let s = f.s();
    let e = f.w.event_create(s);
    assert_eq!(f.w.receive(s, e, RBUF, 64), err(Error::WrongObjectType));
    f.w.assert_invariants();
}

#[test]
fn receive_on_a_bad_descriptor_is_bad_descriptor() {
    let mut f = fixture(false, 1);
    let s = f.s();
    for d in [0, 2, 77, MAX_DESCRIPTORS, MAX_DESCRIPTORS + 1, u32::MAX] {
        assert_eq!(
            f.w.receive(s, Descriptor(d), RBUF, 64),
            err(Error::BadDescriptor),
            "{d}"
        );
    }
    f.w.assert_invariants();
}
