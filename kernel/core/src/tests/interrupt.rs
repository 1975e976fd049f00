//! THREAD_INTERRUPT in each state a thread can be in, the interruption a
//! running thread keeps for its next blocking call, the upcall frame and
//! UPCALL_RETURN's checks, masks, refusals that change nothing, and a
//! property test of interruptions racing calls (ABI.md §6.10).

use abi::process::{USER_END, USER_STACK_TOP};
use abi::trap::{CALL_RECEIVED, REPLY_DELIVERED};
use abi::upcall::{
    FORCED_RFLAGS, RED_ZONE, SignalMaskReply, SignalMaskRequest, ThreadInterruptRequest,
    UPCALL_FRAME_BYTES, UpcallFrame, UpcallRegisterRequest, UpcallReturnRequest, UserRegisters,
    mask_how,
};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use proptest::prelude::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::object::ObjectBody;
use crate::thread::{Holding, ThreadId, ThreadState};

use super::fake_machine::*;
use super::harness::*;

const HANDLER: u64 = IMAGE + 0x100;

/// Panics with the first line where two whole states differ.
fn same_state(before: &str, after: &str, what: &str) {
    if before != after {
        let line = before
            .lines()
            .zip(after.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b);
        panic!("{what} changed the state: first difference {line:?}");
    }
}

fn interrupted(arg2: u64) -> Option<TrapArgs> {
    Some(TrapArgs {
        arg2,
        ..TrapArgs::error(Error::Interrupted)
    })
}

/// THREAD_INTERRUPT by `t` on `target` with `signal` and `info`.
fn interrupt(w: &mut World, t: ThreadId, target: Descriptor, signal: u32, info: u64) -> TrapArgs {
    let request = ThreadInterruptRequest::new(signal, info);
    w.kcall(
        t,
        KernelFunction::ThreadInterrupt,
        target,
        request.as_bytes(),
    )
}

fn interrupt_ok(w: &mut World, t: ThreadId, target: Descriptor, signal: u32) {
    let regs = interrupt(w, t, target, signal, 0);
    assert_eq!(Some(regs), kernel_ok(0, 0, 0), "THREAD_INTERRUPT");
}

/// A new thread of init's process and init's handle on it.
fn init_thread_with_handle(w: &mut World) -> (ThreadId, Descriptor) {
    let init = w.init_thread;
    let before: Vec<_> =
        w.k.processes
            .get(w.init)
            .map(|p| p.threads.clone())
            .unwrap_or_default();
    let t = w.thread_create(init);
    assert!(!before.contains(&t));
    let handle = (1..64)
        .map(Descriptor)
        .find(|d| {
            w.reference(w.init, *d).is_some_and(|r| {
                matches!(w.k.objects.get(r.object).map(|o| &o.body), Some(ObjectBody::Thread(x)) if *x == t)
            })
        })
        .expect("init holds a handle to its new thread");
    (t, handle)
}

#[test]
fn a_queued_send_is_withdrawn_and_the_server_never_sees_it() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let client = f.clients[0].handle;
    let init = f.w.init_thread;
    // A descriptor the message would move stays with the sender.
    let event = f.w.event_create(c);
    let slots = [DescriptorSlot::moving(event, Rights::EVENT)];
    let before = f.w.counters();
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"never", 64).slots(&slots)),
        None
    );
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    interrupt_ok(&mut f.w, init, client, 0);
    assert_eq!(f.w.resume(c), interrupted(0));
    assert!(
        f.w.reference(cp, event).is_some(),
        "the slot's descriptor stayed"
    );
    assert_eq!(f.w.counters(), before);
    // The server finds nothing: it blocks.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    f.w.assert_invariants();
}

#[test]
fn a_call_being_served_returns_call_received_and_the_reply_is_caller_gone() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let client = f.clients[0].handle;
    let init = f.w.init_thread;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"work", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 4, 0));
    interrupt_ok(&mut f.w, init, client, 0);
    assert_eq!(f.w.resume(c), interrupted(CALL_RECEIVED));
    assert!(matches!(f.w.holding(s), Holding::Cancelled { .. }));
    assert_eq!(
        f.w.reply(s, 9, msg(RBUF, b"late", 64)),
        err(Error::CallerGone)
    );
    // The caller's next call is an ordinary one.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"again", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn a_blocked_receive_returns_interrupted_and_leaves_the_door() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let server = f.server.handle;
    let init = f.w.init_thread;
    let before = f.w.counters();
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    interrupt_ok(&mut f.w, init, server, 0);
    assert_eq!(f.w.resume(s), interrupted(0));
    assert_eq!(f.w.counters(), before);
    // A call now queues (no receiver left on the door).
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    // The server goes on serving.
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 256),
        received(USER_FN, 0, 64, 1, 0)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_interrupted_in_its_receive_half_says_reply_delivered() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let server = f.server.handle;
    let init = f.w.init_thread;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"x", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(f.w.reply_receive(s, 0, msg(RBUF, b"ok", 256)), None);
    assert_eq!(f.w.resume(c), replied(0, 0, 2, 0));
    interrupt_ok(&mut f.w, init, server, 0);
    assert_eq!(f.w.resume(s), interrupted(REPLY_DELIVERED));
    f.w.assert_invariants();
}

#[test]
fn a_blocked_event_wait_returns_interrupted_and_the_signal_is_counted() {
    let mut w = World::new();
    let init = w.init_thread;
    let (t, handle) = init_thread_with_handle(&mut w);
    let event = w.event_create(init);
    assert_eq!(
        w.send(
            t,
            KernelFunction::EventWait as i32,
            event,
            msg(KBUF, &[], KTOTAL)
        ),
        None
    );
    assert!(matches!(w.state(t), ThreadState::Waiting { .. }));
    interrupt_ok(&mut w, init, handle, 0);
    assert_eq!(w.resume(t), interrupted(0));
    // The next signal is counted, not taken by the interrupted waiter.
    assert_eq!(
        Some(w.kcall(init, KernelFunction::EventSignal, event, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventWait, event, &[])),
        kernel_ok(0, 0, 0)
    );
    w.assert_invariants();
}

#[test]
fn a_running_thread_keeps_the_interruption_for_its_next_blocking_call() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let server = f.server.handle;
    let init = f.w.init_thread;
    // The server runs (it is ready): the interruption waits.
    interrupt_ok(&mut f.w, init, server, 0);
    assert!(f.w.k.threads.get(s).is_some_and(|t| t.signals.interrupted));
    // A RECEIVE that finds a message does not block: it takes it and
    // leaves the interruption pending.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"m", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 256),
        received(USER_FN, 0, 64, 1, 0)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"", 64)),
        Some(TrapArgs::default())
    );
    let _ = f.w.resume(c);
    // The one that would block returns INTERRUPTED at once, and only once.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), err(Error::Interrupted));
    assert_eq!(f.w.k.attention, 0);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    f.w.assert_invariants();
}

#[test]
fn a_pending_interruption_ends_a_send_before_the_waiting_server_sees_it() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let client = f.clients[0].handle;
    let init = f.w.init_thread;
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    interrupt_ok(&mut f.w, init, client, 0);
    let hits = f.w.k.fast_path_test.hits;
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"no", 64)),
        interrupted(0)
    );
    assert_eq!(f.w.k.fast_path_test.hits, hits, "the fast path stood aside");
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    // Taken once: the next call goes through (the fast path again).
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"yes", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 3, 0));
    f.w.assert_invariants();
}

#[test]
fn self_interruption_through_the_null_target() {
    let mut w = World::new();
    let init = w.init_thread;
    let event = w.event_create(init);
    interrupt_ok(&mut w, init, Descriptor::NULL, 0);
    assert_eq!(
        Some(w.kcall(init, KernelFunction::EventWait, event, &[])),
        err(Error::Interrupted)
    );
    w.assert_invariants();
}

#[test]
fn refusals_change_nothing() {
    let mut f = fixture(false, 1);
    let init = f.w.init_thread;
    let client = f.clients[0].handle;
    let event = f.w.event_create(init);
    let weak =
        f.w.duplicate(init, client, Rights::TRANSFER)
            .expect("duplicate");
    let cases: [(Descriptor, ThreadInterruptRequest, Error); 5] = [
        (
            client,
            ThreadInterruptRequest {
                reserved: 1,
                ..ThreadInterruptRequest::new(0, 0)
            },
            Error::ReservedBits,
        ),
        (
            client,
            ThreadInterruptRequest::new(64, 0),
            Error::NoSuchSignal,
        ),
        (
            event,
            ThreadInterruptRequest::new(0, 0),
            Error::WrongObjectType,
        ),
        (weak, ThreadInterruptRequest::new(0, 0), Error::MissingRight),
        (
            Descriptor(200),
            ThreadInterruptRequest::new(0, 0),
            Error::BadDescriptor,
        ),
    ];
    for (target, request, error) in cases {
        let ip = f.w.init;
        f.w.write_msg(ip, msg(KBUF, request.as_bytes(), KTOTAL));
        let before = f.w.whole_state();
        let regs = f.w.kcall(
            init,
            KernelFunction::ThreadInterrupt,
            target,
            request.as_bytes(),
        );
        assert_eq!(Some(regs), err(error), "{request:?} to {target:?}");
        same_state(&before, &f.w.whole_state(), "a refusal");
    }
    // A thread that ended: PEER_DIED.
    let (t, handle) = init_thread_with_handle(&mut f.w);
    f.w.exit_thread(t, 0);
    let regs = interrupt(&mut f.w, init, handle, 0, 0);
    assert_eq!(Some(regs), err(Error::PeerDied));
    f.w.assert_invariants();
}

fn register(w: &mut World, t: ThreadId, request: UpcallRegisterRequest) {
    let regs = w.kcall(
        t,
        KernelFunction::UpcallRegister,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(Some(regs), kernel_ok(0, 0, 0), "UPCALL_REGISTER");
}

fn frame_of(w: &World, t: ThreadId, at: u64) -> UpcallFrame {
    let p = w.process_of(t);
    UpcallFrame::read_from_bytes(&w.peek(p, at, UPCALL_FRAME_BYTES as usize)).expect("frame")
}

fn regs_of(w: &World, t: ThreadId) -> UserRegisters {
    use crate::machine::Machine;
    w.m.user_registers(t).expect("a context")
}

#[test]
fn an_upcall_saves_every_register_and_upcall_return_restores_them() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let server = f.server.handle;
    let init = f.w.init_thread;
    register(&mut f.w, s, UpcallRegisterRequest::new(HANDLER));
    let saved = UserRegisters {
        rax: 1,
        rbx: 2,
        rcx: 3,
        rdx: 4,
        rsi: 5,
        rdi: 6,
        rbp: 7,
        r8: 8,
        r9: 9,
        r10: 10,
        r11: 11,
        r12: 12,
        r13: 13,
        r14: 14,
        r15: 15,
        rip: IMAGE + 0x40,
        rflags: FORCED_RFLAGS | 0x8d5,
        rsp: USER_STACK_TOP - 0x1008,
    };
    {
        use crate::machine::Machine;
        f.w.m.set_user_registers(s, &saved);
    }
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    interrupt_ok(&mut f.w, init, server, 10);
    // The trap's return (INTERRUPTED) is part of what the frame saves.
    f.w.run(s);
    f.w.k.prepare_return(&mut f.w.m);
    let entered = regs_of(&f.w, s);
    let frame_at = (saved.rsp - RED_ZONE - UPCALL_FRAME_BYTES) & !15;
    assert_eq!(entered.rip, HANDLER);
    assert_eq!(entered.rsp, frame_at - 8);
    assert_eq!((entered.rdi, entered.rsi, entered.rdx), (10, 0, frame_at));
    assert_eq!(entered.rflags, FORCED_RFLAGS);
    let frame = frame_of(&f.w, s, frame_at);
    let expected = UserRegisters {
        rax: TrapArgs::error(Error::Interrupted).arg0,
        rdi: Error::Interrupted as u64,
        rsi: 0,
        rdx: 0,
        ..saved
    };
    assert_eq!(
        frame,
        UpcallFrame {
            signal: 10,
            reserved: 0,
            info: 0,
            mask: 0,
            registers: expected
        }
    );
    assert_eq!(
        f.w.peek(f.sp(), frame_at - 8, 8),
        vec![0; 8],
        "the return slot"
    );
    assert_eq!(f.w.k.threads.get(s).map(|t| t.signals.mask), Some(1 << 10));
    assert_eq!(f.w.resume(s), None, "the trap return went into the frame");
    // Back from the handler: every register as saved, the mask restored.
    let request = UpcallReturnRequest::new(frame_at);
    assert_eq!(
        f.w.send(
            s,
            KernelFunction::UpcallReturn as i32,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL)
        ),
        None
    );
    assert_eq!(regs_of(&f.w, s), expected);
    assert_eq!(f.w.k.threads.get(s).map(|t| t.signals.mask), Some(0));
    assert_eq!(f.w.k.attention, 0);
    // And it serves on.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"hi", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 2, 0));
    f.w.assert_invariants();
}

#[test]
fn upcall_return_takes_only_user_state_from_a_forged_frame() {
    let mut w = World::new();
    let init = w.init_thread;
    let base = UserRegisters {
        rip: IMAGE,
        rsp: USER_STACK_TOP - 64,
        rflags: FORCED_RFLAGS,
        ..Default::default()
    };
    for (registers, refused) in [
        (
            UserRegisters {
                rip: USER_END,
                ..base
            },
            true,
        ),
        (
            UserRegisters {
                rip: KERNEL_HALF,
                ..base
            },
            true,
        ),
        (
            UserRegisters {
                rsp: u64::MAX - 7,
                ..base
            },
            true,
        ),
        // IOPL 3, TF, NT, VM, IF clear: only the user bits are taken.
        (
            UserRegisters {
                rflags: 0x3000 | 0x100 | 0x4000 | 0x2_0000 | 0x8d5,
                ..base
            },
            false,
        ),
    ] {
        let frame = UpcallFrame {
            signal: 1,
            reserved: 0,
            info: 0,
            mask: 0,
            registers,
        };
        w.poke(w.init, DATA + 0x800, frame.as_bytes());
        let request = UpcallReturnRequest::new(DATA + 0x800);
        let ip = w.init;
        w.write_msg(ip, msg(KBUF, request.as_bytes(), KTOTAL));
        let before = w.whole_state();
        let result = w.send(
            init,
            KernelFunction::UpcallReturn as i32,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL),
        );
        if refused {
            assert_eq!(result, err(Error::BadUpcallFrame));
            same_state(&before, &w.whole_state(), "a refused frame");
        } else {
            assert_eq!(result, None);
            assert_eq!(regs_of(&w, init).rflags, FORCED_RFLAGS | 0x8d5);
        }
    }
    // An unreadable frame: BAD_BUFFER.
    let request = UpcallReturnRequest::new(UNMAPPED);
    let result = w.send(
        init,
        KernelFunction::UpcallReturn as i32,
        Descriptor::NULL,
        msg(KBUF, request.as_bytes(), KTOTAL),
    );
    assert_eq!(result, err(Error::BadBuffer));
    w.assert_invariants();
}

#[test]
fn a_masked_signal_stays_pending_and_interrupts_nothing() {
    let mut w = World::new();
    let init = w.init_thread;
    let (t, handle) = init_thread_with_handle(&mut w);
    register(&mut w, t, UpcallRegisterRequest::new(HANDLER));
    let request = SignalMaskRequest::new(mask_how::BLOCK, 1 << 5);
    let reply = w.kcall_ok(
        t,
        KernelFunction::SignalMask,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(
        reply.payload,
        SignalMaskReply {
            previous: 0,
            pending: 0
        }
        .as_bytes()
    );
    let event = w.event_create(init);
    assert_eq!(
        w.send(
            t,
            KernelFunction::EventWait as i32,
            event,
            msg(KBUF, &[], KTOTAL)
        ),
        None
    );
    interrupt_ok(&mut w, init, handle, 5);
    assert!(
        matches!(w.state(t), ThreadState::Waiting { .. }),
        "still waiting"
    );
    assert_eq!(w.k.attention, 0);
    assert_eq!(
        Some(w.kcall(init, KernelFunction::EventSignal, event, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(t), kernel_ok(0, 0, 0));
    // Unmasked, it is delivered on the way back from SIGNAL_MASK.
    let request = SignalMaskRequest::new(mask_how::UNBLOCK, 1 << 5);
    let reply = w.kcall_ok(
        t,
        KernelFunction::SignalMask,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(
        reply.payload,
        SignalMaskReply {
            previous: 1 << 5,
            pending: 1 << 5
        }
        .as_bytes()
    );
    assert_eq!(w.k.attention, 1);
    w.k.prepare_return(&mut w.m);
    assert_eq!(regs_of(&w, t).rip, HANDLER);
    assert_eq!(regs_of(&w, t).rdi, 5);
    w.assert_invariants();
}

#[test]
fn a_bad_handler_stack_ends_the_process_not_the_kernel() {
    for stack in [(UNMAPPED, 0x1000), (DATA + 0x10, 0x40)] {
        let mut f = fixture(false, 1);
        let (s, sp) = (f.s(), f.sp());
        let server = f.server.handle;
        let init = f.w.init_thread;
        register(
            &mut f.w,
            s,
            UpcallRegisterRequest::with_stack(HANDLER, stack.0, stack.1),
        );
        assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
        interrupt_ok(&mut f.w, init, server, 3);
        f.w.run(s);
        f.w.k.prepare_return(&mut f.w.m);
        assert!(!f.w.process_alive(sp), "the process ended");
        assert!(f.w.k.pop_upcall_failure().is_some(), "with a reason to log");
        assert_ne!(f.w.k.current(), Some(s));
        f.w.assert_invariants();
    }
}

#[test]
fn a_process_signal_goes_to_a_thread_that_does_not_mask_it() {
    let mut w = World::new();
    let init = w.init_thread;
    let child = w.spawn_ok(b"worker", &[]);
    let second = w.thread_create(child.thread);
    let request = SignalMaskRequest::new(mask_how::BLOCK, 1 << 7);
    let _ = w.kcall_ok(
        child.thread,
        KernelFunction::SignalMask,
        Descriptor::NULL,
        request.as_bytes(),
    );
    interrupt_ok(&mut w, init, child.handle, 7);
    let pending = |w: &World, t| w.k.threads.get(t).map(|t| t.signals.pending);
    assert_eq!(pending(&w, second), Some(1 << 7));
    assert_eq!(pending(&w, child.thread), Some(0));
    w.assert_invariants();
}

#[derive(Clone, Debug)]
enum Step {
    /// Client `i` calls.
    Call(usize),
    /// The server receives (or replies and receives).
    Serve,
    /// The server replies.
    Reply,
    /// Init interrupts client `i` (or the server, at `clients`).
    Interrupt(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize).prop_map(Step::Call),
        Just(Step::Serve),
        Just(Step::Reply),
        (0..4usize).prop_map(Step::Interrupt),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random interleavings of calls, service and interruptions: every
    /// call ends exactly once (answered or INTERRUPTED), the server sees
    /// only calls not withdrawn, and everything is back at the end.
    #[test]
    fn every_call_ends_exactly_once(steps in proptest::collection::vec(step(), 1..60)) {
        let mut f = fixture(false, 3);
        let s = f.s();
        let init = f.w.init_thread;
        let before = f.w.counters();
        // Per client: calls made, answered, interrupted.
        let mut made = [0u32; 3];
        let mut ended = [0u32; 3];
        let mut in_call = [false; 3];
        let mut serving: Option<usize> = None;
        let mut receiving = false;
        let collect = |f: &mut Fixture, ended: &mut [u32; 3], in_call: &mut [bool; 3]| {
            for i in 0..3 {
                let c = f.c(i);
                if let Some(regs) = f.w.resume(c) {
                    assert!(in_call[i], "a result without a call: {regs:?}");
                    let ok = regs == replied(0, 0, 0, 0).unwrap_or_default()
                        || regs.kernel_error() == Some(Error::Interrupted);
                    assert!(ok, "unexpected end {regs:?}");
                    in_call[i] = false;
                    ended[i] += 1;
                }
            }
        };
        for st in steps {
            match st {
                Step::Call(i) if !in_call[i] => {
                    let c = f.c(i);
                    made[i] += 1;
                    in_call[i] = true;
                    if let Some(regs) = f.w.send(c, USER_FN, REF, msg(SBUF, &[i as u8], 64)) {
                        assert_eq!(regs.kernel_error(), Some(Error::Interrupted));
                        in_call[i] = false;
                        ended[i] += 1;
                    }
                }
                Step::Serve if serving.is_none() && !receiving => {
                    let r = f.w.receive(s, OWNER, RBUF, 256);
                    match r {
                        None => receiving = true,
                        Some(regs) if regs.kernel_error() == Some(Error::Interrupted) => {}
                        Some(regs) => {
                            let i = usize::from(f.w.peek(f.sp(), RBUF, 1)[0]);
                            assert!(in_call[i], "the server got a withdrawn call ({regs:?})");
                            serving = Some(i);
                        }
                    }
                }
                Step::Reply if serving.is_some() => {
                    let r = f.w.reply(s, 0, msg(RBUF, &[], 64));
                    assert!(r == Some(TrapArgs::default()) || r == err(Error::CallerGone), "{r:?}");
                    serving = None;
                }
                Step::Interrupt(i) => {
                    let target = if i < 3 { f.clients[i].handle } else { f.server.handle };
                    interrupt_ok(&mut f.w, init, target, 0);
                }
                _ => {}
            }
            if receiving {
                match f.w.resume(s) {
                    None => {}
                    Some(regs) if regs.kernel_error() == Some(Error::Interrupted) => receiving = false,
                    Some(_) => {
                        receiving = false;
                        let i = usize::from(f.w.peek(f.sp(), RBUF, 1)[0]);
                        assert!(in_call[i], "the server got a withdrawn call");
                        serving = Some(i);
                    }
                }
            }
            collect(&mut f, &mut ended, &mut in_call);
            f.w.assert_invariants();
        }
        // Finish: answer what is held, interrupt what still waits.
        if serving.is_some() {
            let _ = f.w.reply(s, 0, msg(RBUF, &[], 64));
        }
        for (i, calling) in in_call.iter().enumerate() {
            if *calling {
                let handle = f.clients[i].handle;
                interrupt_ok(&mut f.w, init, handle, 0);
            }
        }
        if receiving {
            let handle = f.server.handle;
            interrupt_ok(&mut f.w, init, handle, 0);
            let _ = f.w.resume(s);
        }
        collect(&mut f, &mut ended, &mut in_call);
        prop_assert_eq!(made, ended, "every call ended exactly once");
        // Interruptions left pending on running threads are taken here.
        for t in [f.s(), f.c(0), f.c(1), f.c(2)] {
            let _ = f.w.k.take_interruption(t);
        }
        prop_assert_eq!(f.w.k.attention, 0);
        prop_assert_eq!(f.w.counters(), before);
    }
}
