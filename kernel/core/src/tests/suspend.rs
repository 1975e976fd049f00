//! PROCESS_SUSPEND and PROCESS_RESUME (ABI.md §6.10, `crate::suspend`):
//! a ready, a running (on another CPU) and a blocked thread of a suspended
//! process in each blocking operation; a call completed while suspended is
//! delivered after the resume, exactly once; idempotence; refusals that
//! change nothing; a suspended process that ends; the fast path standing
//! aside only while some process is suspended.

use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use crate::thread::{ThreadId, ThreadState};

use super::fake_machine::*;
use super::harness::*;

/// PROCESS_SUSPEND or PROCESS_RESUME by `t` through `handle`: msgRetVal.
fn control(w: &mut World, t: ThreadId, f: KernelFunction, handle: Descriptor) -> u32 {
    let regs = w.kcall(t, f, handle, &[]);
    assert_eq!(regs.kernel_error(), None, "{f:?}");
    regs.arg0 as u32
}

fn suspend(w: &mut World, t: ThreadId, handle: Descriptor) -> u32 {
    control(w, t, KernelFunction::ProcessSuspend, handle)
}

fn resume(w: &mut World, t: ThreadId, handle: Descriptor) -> u32 {
    control(w, t, KernelFunction::ProcessResume, handle)
}

/// The way back to user space, as the arch layer takes it after every trap.
fn leave_kernel(w: &mut World) {
    w.k.prepare_return(&mut w.m);
}

fn queued(w: &mut World, t: ThreadId) -> bool {
    w.k.scheduler.iter().any(|x| x == t)
}

fn held(w: &World, t: ThreadId) -> bool {
    w.k.threads.get(t).is_some_and(|th| th.held)
}

#[test]
fn a_ready_thread_leaves_the_run_queue_and_comes_back_on_resume() {
    let mut f = fixture(false, 1);
    let (c, init) = (f.c(0), f.w.init_thread);
    let handle = f.clients[0].handle;
    assert!(queued(&mut f.w, c), "a new thread is ready");
    assert_eq!(suspend(&mut f.w, init, handle), 0);
    assert!(!queued(&mut f.w, c) && held(&f.w, c));
    f.w.assert_invariants();
    assert_eq!(resume(&mut f.w, init, handle), 1);
    assert!(queued(&mut f.w, c) && !held(&f.w, c));
    assert_eq!(f.w.k.attention, 0);
    f.w.assert_invariants();
}

#[test]
fn suspend_is_idempotent_and_one_resume_undoes_it() {
    let mut f = fixture(false, 1);
    let init = f.w.init_thread;
    let (handle, p) = (f.clients[0].handle, f.cp(0));
    assert_eq!(
        resume(&mut f.w, init, handle),
        0,
        "resume of a running process"
    );
    assert_eq!(f.w.k.attention, 0);
    assert_eq!(suspend(&mut f.w, init, handle), 0);
    let once = (f.w.k.processes.describe(), f.w.k.threads.describe());
    assert_eq!(
        suspend(&mut f.w, init, handle),
        1,
        "suspend of a suspended process"
    );
    let twice = (f.w.k.processes.describe(), f.w.k.threads.describe());
    assert!(once == twice, "a second suspend changes nothing");
    assert_eq!(f.w.k.attention, 1, "counted once");
    assert_eq!(resume(&mut f.w, init, handle), 1);
    assert!(!f.w.k.is_suspended(p));
    assert_eq!(resume(&mut f.w, init, handle), 0, "resume is idempotent");
    assert_eq!(f.w.k.attention, 0);
    f.w.assert_invariants();
}

#[test]
fn a_reply_delivered_while_suspended_arrives_after_resume_exactly_once() {
    let mut f = fixture(false, 1);
    let (s, c, init) = (f.s(), f.c(0), f.w.init_thread);
    let handle = f.clients[0].handle;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"call", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 4, 0));
    assert_eq!(suspend(&mut f.w, init, handle), 0);
    // The server answers: the caller is woken but held.
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"\x05\0\0\0\0\0\0\0answer", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.state(c), ThreadState::Ready);
    assert!(held(&f.w, c) && !queued(&mut f.w, c));
    leave_kernel(&mut f.w);
    assert_ne!(f.w.k.current, Some(c));
    f.w.assert_invariants();
    // The reply waits in the thread, untouched by the suspension.
    let kept = f.w.k.threads.get(c).and_then(|t| t.resume);
    assert_eq!(kept, replied(5, 0, 14, 0));
    assert_eq!(resume(&mut f.w, init, handle), 1);
    assert!(queued(&mut f.w, c));
    assert_eq!(f.w.resume(c), replied(5, 0, 14, 0));
    assert_eq!(f.w.resume(c), None, "delivered once");
    assert_eq!(f.w.peek(f.cp(0), SBUF + 8, 6), b"answer");
    f.w.assert_invariants();
}

#[test]
fn a_queued_send_stays_queued_and_is_served_while_suspended() {
    let mut f = fixture(false, 1);
    let (s, c, init) = (f.s(), f.c(0), f.w.init_thread);
    let handle = f.clients[0].handle;
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_eq!(suspend(&mut f.w, init, handle), 0);
    assert!(
        matches!(f.w.state(c), ThreadState::Sending(_)),
        "still queued"
    );
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 256),
        received(USER_FN, 0, 64, 1, 0)
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    assert_eq!(
        f.w.reply(s, 3, msg(RBUF, b"", 64)),
        Some(TrapArgs::default())
    );
    assert!(held(&f.w, c));
    f.w.assert_invariants();
    assert_eq!(resume(&mut f.w, init, handle), 1);
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn a_server_blocked_in_receive_is_not_handed_the_cpu_while_suspended() {
    let mut f = fixture(false, 1);
    let (s, c, init) = (f.s(), f.c(0), f.w.init_thread);
    let server = f.server.handle;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(suspend(&mut f.w, init, server), 0);
    let hits = f.w.k.fast_path_test.hits;
    // The call is received (the message copied) but the server is held.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"work", 64)), None);
    assert_eq!(f.w.k.fast_path_test.hits, hits, "the fast path stood aside");
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    assert!(held(&f.w, s));
    leave_kernel(&mut f.w);
    assert_ne!(f.w.k.current, Some(s));
    f.w.assert_invariants();
    assert_eq!(resume(&mut f.w, init, server), 1);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 4, 0));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    // No process suspended: the fast path takes the next round trip.
    assert_eq!(f.w.k.attention, 0);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"next", 64)), None);
    assert_eq!(f.w.k.fast_path_test.hits, hits + 1, "the fast path again");
    f.w.assert_invariants();
}

#[test]
fn reply_receive_completed_while_suspended_is_held() {
    let mut f = fixture(false, 1);
    let (s, c, init) = (f.s(), f.c(0), f.w.init_thread);
    let server = f.server.handle;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"x", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(f.w.reply_receive(s, 0, msg(RBUF, b"ok", 256)), None);
    assert_eq!(f.w.resume(c), replied(0, 0, 2, 0));
    assert_eq!(suspend(&mut f.w, init, server), 0);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"yz", 64)), None);
    assert!(held(&f.w, s));
    f.w.assert_invariants();
    assert_eq!(resume(&mut f.w, init, server), 1);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 2, 0));
    f.w.assert_invariants();
}

#[test]
fn an_event_signalled_while_suspended_wakes_the_waiter_after_resume() {
    let mut w = World::new();
    let init = w.init_thread;
    let event = w.event_create(init);
    let child = w.spawn_ok(b"client", &[DescriptorSlot::copy(event, Rights::EVENT)]);
    let c = child.thread;
    assert_eq!(
        w.send(
            c,
            KernelFunction::EventWait as i32,
            Descriptor(1),
            msg(KBUF, &[], KTOTAL)
        ),
        None
    );
    assert!(matches!(w.state(c), ThreadState::Waiting { .. }));
    assert_eq!(suspend(&mut w, init, child.handle), 0);
    assert_eq!(
        Some(w.kcall(init, KernelFunction::EventSignal, event, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.state(c), ThreadState::Ready);
    assert!(held(&w, c));
    w.assert_invariants();
    assert_eq!(resume(&mut w, init, child.handle), 1);
    assert_eq!(w.resume(c), kernel_ok(0, 0, 0));
    w.assert_invariants();
}

#[test]
fn an_interruption_of_a_suspended_blocked_thread_waits_for_resume() {
    let mut f = fixture(false, 1);
    let (s, init) = (f.s(), f.w.init_thread);
    let server = f.server.handle;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(suspend(&mut f.w, init, server), 0);
    let request = abi::upcall::ThreadInterruptRequest::new(0, 0);
    let regs = f.w.kcall(
        init,
        KernelFunction::ThreadInterrupt,
        server,
        request.as_bytes(),
    );
    assert_eq!(regs.kernel_error(), None);
    assert!(held(&f.w, s));
    f.w.assert_invariants();
    assert_eq!(resume(&mut f.w, init, server), 1);
    assert_eq!(f.w.resume(s), err(Error::Interrupted));
    f.w.assert_invariants();
}

#[test]
fn a_thread_running_on_another_cpu_is_kicked_and_stops_there() {
    let mut f = fixture(false, 1);
    let (c, init) = (f.c(0), f.w.init_thread);
    let handle = f.clients[0].handle;
    f.w.k.set_cpu_count(2).expect("two CPUs");
    // CPU 1 takes the client and leaves the kernel running it.
    let current0 = f.w.k.current.take();
    f.w.k.enter(1);
    f.w.k.scheduler.remove(c);
    f.w.k.current = Some(c);
    if let Some(t) = f.w.k.threads.get_mut(c) {
        t.state = ThreadState::Running;
    }
    f.w.k.leave();
    // CPU 0 runs init, which suspends the client's process.
    f.w.k.enter(0);
    f.w.k.current = current0;
    f.w.k.leave();
    f.w.k.enter(0);
    assert_eq!(suspend(&mut f.w, init, handle), 0);
    assert_eq!(f.w.k.take_kicks(), 1 << 1, "CPU 1 is kicked");
    assert_eq!(
        f.w.state(c),
        ThreadState::Running,
        "until it enters the kernel"
    );
    f.w.k.leave();
    // CPU 1 enters for the kick and leaves without the client.
    f.w.k.enter(1);
    f.w.k.schedule();
    leave_kernel(&mut f.w);
    assert_ne!(f.w.k.current, Some(c));
    assert!(held(&f.w, c));
    f.w.k.leave();
    f.w.k.enter(0);
    f.w.assert_invariants();
    assert_eq!(resume(&mut f.w, init, handle), 1);
    assert!(queued(&mut f.w, c));
    f.w.assert_invariants();
}

#[test]
fn a_suspended_process_that_ends_gives_back_its_attention() {
    let mut f = fixture(false, 1);
    let init = f.w.init_thread;
    let (handle, p) = (f.clients[0].handle, f.cp(0));
    assert_eq!(suspend(&mut f.w, init, handle), 0);
    assert_eq!(f.w.k.attention, 1);
    let kill = abi::kcall::ExitRequest::new(9);
    let regs =
        f.w.kcall(init, KernelFunction::ProcessKill, handle, kill.as_bytes());
    assert_eq!(regs.kernel_error(), None);
    assert!(!f.w.process_alive(p));
    assert_eq!(f.w.k.attention, 0);
    // Its handle now names a dead process.
    let regs = f.w.kcall(init, KernelFunction::ProcessResume, handle, &[]);
    assert_eq!(Some(regs), err(Error::PeerDied));
    f.w.assert_invariants();
}

#[test]
fn refusals_change_nothing() {
    let mut f = fixture(false, 1);
    let init = f.w.init_thread;
    let handle = f.clients[0].handle;
    let ip = f.w.init;
    let event = f.w.event_create(init);
    let weak =
        f.w.duplicate(init, handle, Rights::TRANSFER)
            .expect("duplicate");
    for function in [
        KernelFunction::ProcessSuspend,
        KernelFunction::ProcessResume,
    ] {
        let cases: [(Descriptor, &[u8], Error); 5] = [
            (event, &[], Error::WrongObjectType),
            (weak, &[], Error::MissingRight),
            (Descriptor(200), &[], Error::BadDescriptor),
            (Descriptor::NULL, &[], Error::FunctionOutOfRange),
            (handle, &[0u8; 8], Error::BadSizes),
        ];
        for (target, data, error) in cases {
            f.w.write_msg(ip, msg(KBUF, data, KTOTAL));
            let before = f.w.whole_state();
            let regs = f.w.kcall(init, function, target, data);
            assert_eq!(Some(regs), err(error), "{function:?} to {target:?}");
            let after = f.w.whole_state();
            assert!(
                before == after,
                "{function:?} refused with {error:?} changed the state"
            );
        }
    }
    f.w.assert_invariants();
}
