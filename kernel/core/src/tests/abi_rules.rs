//! ABI.md's finer rules: the order of checks, REPLY_RECEIVE, scheduling,
//! limits, routing to the process manager.

use abi::descriptor::MAX_DESCRIPTORS;
use abi::function::Function;
use abi::kcall::{MapRequest, ThreadCreateRequest, protection};
use abi::process::USER_STACK_TOP;
use abi::trap::REPLY_DELIVERED;
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, MessageSizes, Rights, TrapArgs};
use zerocopy::IntoBytes;

use crate::object::{OBJECT_COST, ObjectBody};
use crate::process::DESCRIPTOR_COST;
use crate::thread::ThreadId;
use crate::thread::ThreadState;

use super::fake_machine::*;
use super::harness::*;

// ABI.md: check order, REPLY_RECEIVE, scheduling, limits, procman

#[test]
fn send_checks_run_in_the_documented_order() {
    // ABI.md §4.1: each pair breaks two checks; the earlier one must win.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let e = f.w.event_create(c);
    let Ok(mute) = f.w.duplicate(c, REF, Rights::TRANSFER) else {
        panic!("DUPLICATE failed")
    };
    let bad_slot = [DescriptorSlot {
        mode: 2,
        ..DescriptorSlot::copy(e, Rights::SIGNAL)
    }];
    let send = |function: i32, target: Descriptor, buf: u64, s: MessageSizes| {
        TrapArgs::send(Function(function), target, buf, s)
    };
    let cases = [
        // 1 before 2
        (
            TrapArgs {
                arg1: 1 << 40,
                ..send(USER_FN, REF, SBUF, sizes(8, 9, 0))
            },
            Error::ReservedBits,
        ),
        // 2 before 3
        (send(-1, REF, SBUF, sizes(8, 9, 0)), Error::BadSizes),
        // 3 before 5
        (
            send(-1, Descriptor(50), SBUF, sizes(8, 0, 0)),
            Error::InvalidFunction,
        ),
        // 4 before 9
        (
            send(USER_FN, Descriptor::NULL, UNMAPPED, sizes(8, 0, 0)),
            Error::FunctionOutOfRange,
        ),
        // 5 before 9
        (
            send(USER_FN, Descriptor(50), UNMAPPED, sizes(8, 0, 0)),
            Error::BadDescriptor,
        ),
        // 6 before 7
        (
            send(SYSTEM_FN, e, SBUF, sizes(8, 0, 0)),
            Error::WrongObjectType,
        ),
        // 7 before 8
        (
            send(SYSTEM_FN, mute, SBUF, sizes(8, 0, 0)),
            Error::FunctionOutOfRange,
        ),
        // 8 before 9
        (
            send(USER_FN, mute, UNMAPPED, sizes(8, 0, 0)),
            Error::MissingRight,
        ),
    ];
    for (args, error) in cases {
        assert_eq!(f.w.trap(c, args), err(error), "{args:x?}");
    }
    // 9 before 10
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(IMAGE, b"d", 64).slots(&bad_slot)),
        err(Error::BadBuffer)
    );
    // 10 before 11
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 64).slots(&bad_slot)),
        err(Error::BadSlot)
    );
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 64)),
        err(Error::PeerDied)
    );
    f.w.assert_invariants();
}

#[test]
fn receive_checks_run_in_the_documented_order() {
    // ABI.md §4.2: reserved bits, descriptor, door, RECEIVE right, buffer.
    let mut f = fixture(false, 1);
    let s = f.s();
    let e = f.w.event_create(s);
    let receive = TrapArgs::receive(Descriptor(50), UNMAPPED, 64);
    assert_eq!(
        f.w.trap(
            s,
            TrapArgs {
                arg1: 1 << 33,
                ..receive
            }
        ),
        err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.receive(s, Descriptor(50), UNMAPPED, 64),
        err(Error::BadDescriptor)
    );
    assert_eq!(f.w.receive(s, e, UNMAPPED, 64), err(Error::WrongObjectType));
    let c = f.c(0);
    assert_eq!(f.w.receive(c, REF, UNMAPPED, 64), err(Error::NotOwner));
    assert_eq!(f.w.receive(s, OWNER, UNMAPPED, 64), err(Error::BadBuffer));
    f.w.assert_invariants();
}

#[test]
fn reply_checks_run_in_the_documented_order() {
    // ABI.md §4.3: reserved bits, sizes, a held message, its caller, the
    // buffer, the caller's total, the slots, the caller's table.
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let reply = TrapArgs::reply(0, UNMAPPED, sizes(64, 0, 0), false);
    assert_eq!(
        f.w.trap(
            s,
            TrapArgs {
                arg3: reply.arg3 | 1 << 32,
                ..reply
            }
        ),
        err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, UNMAPPED, sizes(8, 9, 0), false)),
        err(Error::BadSizes)
    );
    assert_eq!(f.w.trap(s, reply), err(Error::NothingToReply));
    // A held message whose caller died, and a bad buffer: CALLER_GONE.
    let helper = f.w.thread_create(c0);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"q", 16)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 16, 1, 0));
    f.w.exit_process(helper, 0);
    assert_eq!(f.w.trap(s, reply), err(Error::CallerGone));
    // A live caller: bad buffer before too large, too large before slots.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"q", 16)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 16, 1, 0));
    let bad_slot = [DescriptorSlot {
        mode: 2,
        ..DescriptorSlot::copy(Descriptor(1), Rights::NONE)
    }];
    assert_eq!(
        f.w.reply(s, 0, msg(UNMAPPED, &pattern(24), 64)),
        err(Error::BadBuffer)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &pattern(16), 64).slots(&bad_slot)),
        err(Error::ReplyTooLarge)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&bad_slot)),
        err(Error::BadSlot)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c1), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn reply_receive_checks_its_sizes_before_the_held_message() {
    let mut f = fixture(false, 1);
    let s = f.s();
    let reply = TrapArgs::reply(0, RBUF, sizes(64, 0, 0), true);
    assert_eq!(
        f.w.trap(
            s,
            TrapArgs {
                arg3: reply.arg3 | 1 << 32,
                ..reply
            }
        ),
        err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, RBUF, sizes(8, 9, 0), true)),
        err(Error::BadSizes)
    );
}

#[test]
fn reply_receive_whose_receive_half_fails_says_the_reply_was_delivered() {
    // ABI.md §4.4: the door died after the message was received.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(f.w.close(s2, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    // The door died with the call in service: the caller fails at once
    // (ABI.md §4.1), and the held message is dropped.
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, b"answer!!", 512)),
        Some(TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::error(Error::PeerDied)
        })
    );
    // A failed reply half delivers nothing and says so with arg2 = 0.
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 512)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_on_a_door_freed_during_the_call_is_peer_died() {
    // The owner reference is closed and the caller's process drops its last
    // client reference while the call is in service: the door object is gone.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let (s2, helper) = (f.w.thread_create(s), f.w.thread_create(c));
    let init = f.w.init_thread;
    let init_ref = f.init_ref;
    assert_eq!(
        f.w.close(init, init_ref),
        kernel_ok(0, 0, 0).unwrap_or_default()
    );
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(f.w.close(s2, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    assert_eq!(
        f.w.close(helper, REF),
        kernel_ok(0, 0, 0).unwrap_or_default()
    );
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 512)),
        Some(TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::error(Error::PeerDied)
        })
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_into_a_buffer_too_small_for_the_next_message_says_the_reply_was_delivered() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(
        f.w.send(c1, USER_FN, REF, msg(SBUF, &pattern(100), 128)),
        None
    );
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 1, 0)
    );
    let result = f.w.reply_receive(s, 0, msg(RBUF, b"ok", 64));
    assert_eq!(
        f.w.resume(c0),
        replied(0, 0, 2, 0),
        "the reply was delivered"
    );
    assert_eq!(
        result,
        Some(TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::receive_too_small(sizes(128, 100, 0))
        })
    );
}

/// Issue 15: no priority inversion through IPC. A server serving a
/// higher-priority caller runs at the caller's priority until it replies: a
/// ready thread between the two cannot take the CPU from it at a tick.
#[test]
fn a_server_runs_at_its_callers_priority_until_it_replies() {
    let mut f = fixture(false, 1);
    let (s, c, init) = (f.s(), f.c(0), f.w.init_thread);
    let low = f.w.thread_create_at(s, 4);
    let middle = f.w.thread_create_at(init, 10);
    let priorities =
        |w: &World, t: ThreadId| w.k.threads.get(t).map(|t| (t.priority, t.base_priority));
    // Everything else at 16 waits, so only the middle thread is ready.
    for t in [s, init] {
        let e = f.w.event_create(t);
        let wait = f.w.send(
            t,
            KernelFunction::EventWait as i32,
            e,
            msg(KBUF + 0x800, &[], 64),
        );
        assert_eq!(wait, None);
    }
    assert_eq!(f.w.receive(low, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.k.current(), Some(low));
    assert_eq!(
        priorities(&f.w, low),
        Some((16, 4)),
        "raised to the caller's 16"
    );
    f.w.assert_invariants();
    // A tick: the middle thread (10) is ready, but the server now runs at 16.
    f.w.k.tick();
    assert_eq!(
        f.w.k.current(),
        Some(low),
        "the middle thread did not preempt"
    );
    assert!(f.w.runnable(middle));
    assert_eq!(f.w.resume(low), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(
        f.w.reply(low, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(
        priorities(&f.w, low),
        Some((4, 4)),
        "back to its own after the reply"
    );
    assert_eq!(f.w.k.current(), Some(c));
    assert_eq!(f.w.resume(c), Some(TrapArgs::default()));
    f.w.assert_invariants();
    // The same through a queued call, and an abandoned one gives the
    // priority back too.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"r", 64)), None);
    f.w.run(low);
    assert!(f.w.receive(low, OWNER, RBUF, 512).is_some());
    assert_eq!(priorities(&f.w, low), Some((16, 4)));
    assert_eq!(
        f.w.receive(low, OWNER, RBUF, 512),
        None,
        "abandons and waits"
    );
    assert_eq!(f.w.resume(c), err(Error::Abandoned));
    assert_eq!(priorities(&f.w, low), Some((4, 4)));
    f.w.assert_invariants();
    // A server that dies raised gives back both places.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"s", 64)), None);
    assert_eq!(priorities(&f.w, low), Some((16, 4)));
    assert!(f.w.resume(low).is_some());
    f.w.exit_thread(low, 0);
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    f.w.assert_invariants();
}

#[test]
fn reply_to_a_caller_that_outranks_the_server_runs_the_caller_next() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let request = ThreadCreateRequest::new(IMAGE, USER_STACK_TOP - 0x4000, 0, 4);
    let reply = f.w.kcall_ok(
        s,
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    let low = match f
        .w
        .k
        .objects
        .get(f.w.object_of(f.sp(), Descriptor(reply.slots[0].descriptor)))
        .map(|o| &o.body)
    {
        Some(ObjectBody::Thread(t)) => *t,
        other => panic!("not a thread: {other:?}"),
    };
    assert_eq!(f.w.receive(low, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(
        f.w.k.current(),
        Some(low),
        "SEND hands off even to a lower priority"
    );
    assert_eq!(f.w.resume(low), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(
        f.w.reply(low, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(
        f.w.k.current(),
        Some(c),
        "the caller (priority 16) outranks the server (4)"
    );
}

#[test]
fn a_caller_whose_buffer_vanished_fails_with_bad_buffer() {
    // ABI.md §4.1: BAD_BUFFER while blocked, when the caller's own memory changed.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let helper = f.w.thread_create(c);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let unmap = MapRequest::new(SBUF, PAGE, 0);
    assert_eq!(
        Some(f.w.kcall(
            helper,
            KernelFunction::Unmap,
            Descriptor::NULL,
            unmap.as_bytes()
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"answer", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), err(Error::BadBuffer));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_slot_errors_go_to_the_replier_and_the_caller_stays_blocked() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let helper = f.w.thread_create(c);
    let e = f.w.event_create(s);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let bad = [
        (
            DescriptorSlot {
                mode: 2,
                ..DescriptorSlot::copy(e, Rights::SIGNAL)
            },
            Error::BadSlot,
        ),
        (DescriptorSlot::copy(e, Rights::SEND), Error::RightsExceeded),
        (
            DescriptorSlot::copy(Descriptor(9), Rights::NONE),
            Error::BadDescriptor,
        ),
        (
            DescriptorSlot::copy(OWNER, Rights::DOOR_OWNER),
            Error::NotTransferable,
        ),
    ];
    for (slot, error) in bad {
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&[slot])),
            err(error)
        );
        assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    }
    // The caller's table is full: TABLE_FULL to the replier.
    fill_table(&mut f.w, helper);
    let slot = [DescriptorSlot::copy(e, Rights::SIGNAL)];
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&slot)),
        err(Error::TableFull)
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    assert_eq!(f.w.open_descriptors(cp), MAX_DESCRIPTORS as usize);
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"ok", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 2, 0));
    f.w.assert_invariants();
}

#[test]
fn a_reply_cookie_lands_only_on_the_reference_the_caller_used() {
    // ABI.md §4.3: not on a later reference that reused its number.
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let helper = f.w.thread_create(c);
    let Ok(via) = f.w.duplicate(c, REF, Rights::DOOR_CLIENT) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, via, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(
        f.w.close(helper, via),
        kernel_ok(0, 0, 0).unwrap_or_default()
    );
    assert_eq!(
        f.w.duplicate(helper, REF, Rights::DOOR_CLIENT),
        Ok(via),
        "the number is reused"
    );
    assert_eq!(
        f.w.reply(s, 55, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    assert_eq!(f.w.reference(cp, via).map(|r| r.cookie), Some(0));
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(0));
    f.w.assert_invariants();
}

#[test]
fn moving_the_owner_reference_away_fails_waiting_receivers_with_not_owner() {
    // ABI.md §4.2 and D11.
    let mut w = World::new();
    let init = w.init_thread;
    let (owner, client) = w.door_create(init, false);
    let waiter = w.thread_create(init);
    assert_eq!(w.receive(waiter, owner, RBUF + 0x800, 64), None);
    let server = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    );
    assert_eq!(w.resume(waiter), err(Error::NotOwner));
    let c = w.spawn_ok(
        b"client",
        &[DescriptorSlot::moving(client, Rights::DOOR_CLIENT)],
    );
    w.round_trip(c.thread, REF, USER_FN, server.thread, OWNER, 1);
    w.assert_invariants();
}

#[test]
fn a_receiver_over_its_memory_limit_makes_the_sender_out_of_memory() {
    // ABI.md §4.1: the receiver's process is over its limit -> OUT_OF_MEMORY to the sender.
    let mut f = fixture(false, 1);
    let (s, c, sp) = (f.s(), f.c(0), f.sp());
    let limit = crate::lifecycle::DEFAULT_MEMORY_LIMIT;
    let room = limit - f.w.charged(sp);
    let pages = (room - crate::page_tables::bound(None, room)) / PAGE;
    let request = MapRequest::new(0, pages * PAGE, protection::READ);
    let regs = f.w.kcall(
        s,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(Some(regs), kernel_ok(0, 8, 0));
    let e = loop {
        let e = f.w.event_create(s);
        if limit - f.w.charged(sp) < OBJECT_COST + DESCRIPTOR_COST {
            break e;
        }
    };
    while limit - f.w.charged(sp) >= DESCRIPTOR_COST {
        assert!(f.w.duplicate(s, e, Rights::SIGNAL).is_ok());
    }
    assert_eq!(f.w.duplicate(s, e, Rights::SIGNAL), Err(Error::OutOfMemory));
    assert_eq!(
        f.w.kcall(s, KernelFunction::EventCreate, Descriptor::NULL, &[]),
        TrapArgs::error(Error::OutOfMemory)
    );
    let mine = f.w.event_create(c);
    let slot = [DescriptorSlot::copy(mine, Rights::SIGNAL)];
    assert_eq!(send_slots(&mut f, &slot), err(Error::OutOfMemory));
    // Without descriptors the call goes through.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    f.w.assert_invariants();
}

#[test]
fn process_manager_functions_route_to_procman_and_only_procman_sends_them_to_doors() {
    // ABI.md §2 and D6. Nothing in the trap ABI names procman yet, so the
    // harness sets the kernel's fields: client 0 is procman, and the
    // fixture's door is where NULL-target 0x400 calls go.
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let door = f.w.object_of(f.sp(), OWNER);
    f.w.k.process_manager = Some(f.cp(0));
    f.w.k.process_manager_door = Some(door);
    assert!(accepted(&mut f, 0x400), "procman sends its range to a door");
    assert_eq!(
        f.w.send(c1, 0x400, REF, msg(SBUF, &[], 8)),
        err(Error::FunctionOutOfRange),
        "others may not"
    );
    f.w.round_trip(c1, REF, USER_FN, s, OWNER, 33);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(
        f.w.send(c1, 0x7ff, Descriptor::NULL, msg(SBUF, b"hi", 64)),
        None
    );
    assert_eq!(
        f.w.resume(s),
        received(0x7ff, 0, 64, 2, 0),
        "routed with cookie 0, not that of any reference"
    );
    assert_eq!(
        f.w.reply(s, 7, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c1), replied(0, 0, 0, 0));
    assert_eq!(f.w.reference(f.cp(1), REF).map(|r| r.cookie), Some(33));
    // Procman's door closes: the route is gone.
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.k.process_manager_door, None);
    assert_eq!(
        f.w.send(c1, 0x400, Descriptor::NULL, msg(SBUF, &[], 8)),
        err(Error::PeerDied)
    );
    f.w.exit_process(c0, 0);
    assert_eq!(f.w.k.process_manager, None);
    f.w.assert_invariants();
}

#[test]
fn event_signal_wakes_the_longest_waiter_first() {
    let mut w = World::new();
    let t = w.init_thread;
    let e = w.event_create(t);
    let first = w.thread_create(t);
    let second = w.thread_create(t);
    let wait = KernelFunction::EventWait as i32;
    assert_eq!(w.send(first, wait, e, msg(KBUF + 0x400, &[], 64)), None);
    assert_eq!(w.send(second, wait, e, msg(KBUF + 0x800, &[], 64)), None);
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(first), kernel_ok(0, 0, 0));
    assert!(matches!(w.state(second), ThreadState::Waiting { .. }));
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(second), kernel_ok(0, 0, 0));
    w.assert_invariants();
}
