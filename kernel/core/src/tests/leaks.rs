//! Nothing left behind: churns of spawns, calls and exits; and nothing
//! allocated where a failed allocation could stop a death.

use abi::kcall::{DescriptorRequest, ExitRequest};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use crate::thread::ThreadId;

use super::fake_machine::*;
use super::harness::*;

// 15. no leaks

#[test]
fn a_churn_of_spawns_calls_and_exits_leaves_nothing_behind() {
    let mut w = World::new();
    let init = w.init_thread;
    let before = w.counters();
    let charged = w.charged(w.init);
    let open = w.open_descriptors(w.init);
    for round in 0..4 {
        let (owner, client) = w.door_create(init, round % 2 == 1);
        let function = if round % 2 == 1 { SYSTEM_FN } else { USER_FN };
        let server = w.spawn_ok(
            b"server",
            &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
        );
        let c1 = w.spawn_ok(
            b"client",
            &[DescriptorSlot::copy(client, Rights::DOOR_CLIENT)],
        );
        let last = if round % 2 == 0 {
            DescriptorSlot::copy(client, Rights::DOOR_CLIENT)
        } else {
            DescriptorSlot::moving(client, Rights::DOOR_CLIENT)
        };
        let c2 = w.spawn_ok(b"client", &[last]);
        // A call that carries an event to the server and one back.
        let e = w.event_create(c1.thread);
        assert_eq!(w.receive(server.thread, OWNER, RBUF, 512), None);
        let slots = [DescriptorSlot::moving(e, Rights::EVENT)];
        assert_eq!(
            w.send(
                c1.thread,
                function,
                REF,
                msg(SBUF, b"take", 64).slots(&slots)
            ),
            None
        );
        assert_eq!(w.resume(server.thread), received(function, 0, 64, 4, 1));
        let back = [DescriptorSlot::copy(Descriptor(2), Rights::WAIT)];
        assert_eq!(
            w.reply(server.thread, 9, msg(RBUF, b"back", 64).slots(&back)),
            Some(TrapArgs::default())
        );
        assert_eq!(w.resume(c1.thread), replied(0x6b63_6162, 0, 4, 1));
        // c1: a second thread blocked on the event, a third queued on the door.
        let waiter = w.thread_create(c1.thread);
        assert_eq!(
            w.send(
                waiter,
                KernelFunction::EventWait as i32,
                Descriptor(2),
                msg(KBUF + 0x800, &[], 64)
            ),
            None
        );
        let caller = w.thread_create(c1.thread);
        assert_eq!(
            w.send(caller, function, REF, msg(SBUF + 0x800, b"q", 64)),
            None
        );
        // The server takes c1's second call; c2's call queues behind it.
        assert_eq!(
            w.receive(server.thread, OWNER, RBUF, 512),
            received(function, 9, 64, 1, 0)
        );
        assert_eq!(w.resume(caller), None);
        let c2_helper = w.thread_create(c2.thread);
        assert_eq!(w.send(c2.thread, function, REF, msg(SBUF, b"q2", 64)), None);
        match round {
            0 => {
                w.exit_process(server.thread, 0);
                assert_eq!(w.resume(caller), err(Error::PeerDied));
                assert_eq!(w.resume(c2.thread), err(Error::PeerDied));
                w.exit_process(c1.thread, 0);
                w.exit_process(c2.thread, 0);
            }
            1 => {
                w.exit_process(c1.thread, 0);
                // c2's call is still queued: another thread ends its process.
                w.exit_process(c2_helper, 0);
                assert_eq!(
                    w.reply(server.thread, 0, msg(RBUF, &[], 0)),
                    err(Error::CallerGone)
                );
                let helper = w.thread_create(server.thread);
                assert_eq!(w.receive(helper, OWNER, RBUF + 0x800, 64), None);
                w.exit_process(server.thread, 0);
            }
            2 => {
                // The server closes its door with callers queued, then exits.
                assert_eq!(Some(w.close(server.thread, OWNER)), kernel_ok(0, 0, 0));
                assert_eq!(w.resume(c2.thread), err(Error::PeerDied));
                w.exit_process(c2.thread, 0);
                w.exit_process(server.thread, 0);
                assert_eq!(w.resume(caller), err(Error::PeerDied));
                w.exit_process(c1.thread, 0);
            }
            _ => {
                // Everything dies at once, in spawn order.
                w.exit_process(server.thread, 0);
                assert_eq!(w.resume(caller), err(Error::PeerDied));
                assert_eq!(w.resume(c2.thread), err(Error::PeerDied));
                let t = w.thread_create(c2.thread);
                w.exit_thread(c2.thread, 0);
                w.exit_process(t, 0);
                w.exit_process(c1.thread, 0);
            }
        }
        for child in [server, c1, c2] {
            assert_eq!(Some(w.close(init, child.handle)), kernel_ok(0, 0, 0));
        }
        if round % 2 == 0 {
            // The client reference was copied: init still holds it.
            assert_eq!(Some(w.close(init, client)), kernel_ok(0, 0, 0));
        }
        // Spawn failures leave nothing either.
        assert_eq!(w.spawn(b"nonesuch", b"x", &[]), Err(Error::InvalidArgument));
        let _ = w.k.take_exited();
        w.assert_invariants();
    }
    assert_eq!(w.counters(), before);
    assert_eq!(w.charged(w.init), charged);
    assert_eq!(w.open_descriptors(w.init), open);
}

#[test]
fn a_server_thread_exiting_with_a_held_message_fails_its_caller() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s2, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s2), received(USER_FN, 0, 64, 1, 0));
    f.w.exit_thread(s2, 0);
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    // The door itself lives on with the server's other thread.
    f.w.round_trip(c, REF, USER_FN, s, OWNER, 0);
    f.w.assert_invariants();
}

#[test]
fn a_fault_ends_the_whole_process_and_fails_its_callers() {
    // ABI.md §7: a CPU exception in user mode ends the whole process.
    let mut f = fixture(false, 2);
    let (s, c0, c1, sp) = (f.s(), f.c(0), f.c(1), f.sp());
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"a", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"b", 64)), None);
    assert_eq!(
        f.w.receive(s2, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 1, 0)
    );
    f.w.run(s);
    f.w.k.fault(&mut f.w.m);
    assert!(!f.w.process_alive(sp));
    assert_eq!(f.w.k.take_exited(), vec![(sp, u32::MAX)]);
    assert_eq!(f.w.resume(c0), err(Error::PeerDied));
    assert_eq!(f.w.resume(c1), err(Error::PeerDied));
    assert!(f.w.k.current().is_some(), "another thread runs");
    f.w.assert_invariants();
}

/// Traps for `t` with `args` and counts the heap allocations the kernel
/// made on this thread (the fake machine's own are exempt: it stands for
/// hardware, see `test_allocator::unfailing`).
fn allocations_of_trap(w: &mut World, t: ThreadId, args: TrapArgs) -> u64 {
    w.run(t);
    let ((), allocations) = test_allocator::count(|| w.k.trap(&mut w.m, args));
    allocations
}

/// Issue 15, finding 6 and ABI.md §8: nothing a death does allocates, so
/// no failed allocation can stop it. A server that dies holding a call with
/// another queued, and a door whose
/// owner reference is closed while a call through it is being served.
#[test]
fn a_death_and_a_door_closed_in_service_never_allocate() {
    let mut f = fixture(false, 3);
    let (s, function) = (f.s(), f.function);
    // Client 0's call in service, client 1's queued.
    assert_eq!(
        f.w.send(f.c(0), function, REF, msg(SBUF, b"served", 64)),
        None
    );
    assert!(f.w.receive(s, OWNER, RBUF, 256).is_some());
    assert_eq!(
        f.w.send(f.c(1), function, REF, msg(SBUF, b"queued", 64)),
        None
    );
    // The request the server's PROCESS_EXIT reads, written beforehand (the
    // fake machine allocates a page on its first write).
    let exit = ExitRequest::new(3);
    let sp = f.sp();
    f.w.write_msg(sp, msg(KBUF, exit.as_bytes(), KTOTAL));
    let args = TrapArgs::send(
        KernelFunction::ProcessExit.function(),
        Descriptor::NULL,
        KBUF,
        msg(KBUF, exit.as_bytes(), KTOTAL).sizes(),
    );
    assert_eq!(allocations_of_trap(&mut f.w, s, args), 0);
    assert!(!f.w.process_alive(sp));
    assert_eq!(f.w.resume(f.c(0)), err(Error::PeerDied));
    assert_eq!(f.w.resume(f.c(1)), err(Error::PeerDied));
    f.w.assert_invariants();

    // The owner reference closed by its own server while it serves a call.
    let mut f = fixture(false, 1);
    let (s, function) = (f.s(), f.function);
    assert_eq!(
        f.w.send(f.c(0), function, REF, msg(SBUF, b"served", 64)),
        None
    );
    assert!(f.w.receive(s, OWNER, RBUF, 256).is_some());
    let close = DescriptorRequest::new(OWNER, Rights::NONE);
    let sp = f.sp();
    f.w.write_msg(sp, msg(KBUF, close.as_bytes(), KTOTAL));
    let args = TrapArgs::send(
        KernelFunction::Close.function(),
        Descriptor::NULL,
        KBUF,
        msg(KBUF, close.as_bytes(), KTOTAL).sizes(),
    );
    assert_eq!(allocations_of_trap(&mut f.w, s, args), 0);
    assert_eq!(f.w.resume(f.c(0)), err(Error::PeerDied));
    f.w.assert_invariants();
}
