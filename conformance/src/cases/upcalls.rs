//! MSG-UPCALL: signals delivered to upcall handlers (ABI.md §6.10, §9
//! D66-D68): every register and the flags surviving a handler, the frame
//! the kernel builds, a handler interrupting a blocked RECEIVE while the
//! server goes on serving, masks and pending sets, nested signals,
//! UPCALL_REGISTER, SIGNAL_MASK and UPCALL_RETURN refusals (a forged frame
//! never sets more than user-mode state), and a bad handler stack ending
//! only its process.

use alloc::format;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::upcall::{
    SignalMaskReply, SignalMaskRequest, UpcallFrame, UpcallRegisterRequest, UpcallReturnRequest,
    UserRegisters, mask_how,
};
use abi::{Descriptor, Error, KernelFunction, TrapArgs};
use spin::Mutex;
use userlib::probe::{UPCALL_PATTERNS, UPCALL_PROBE_FLAG, USER_FLAGS};
use userlib::upcall;
use zerocopy::{FromBytes, IntoBytes};

use super::kit::{self, Answer, MAX, USER_CALL};
use super::sig::{interrupt, interrupt_ok};
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::Expect;

/// The signals the cases use.
const SIG_A: u32 = 10;
const SIG_B: u32 = 12;
/// How many interruptions the register probe's runner sends before it
/// gives up (a few land before the probe's loop; one in it suffices).
const MAX_TRIES: u32 = 100_000;

/// A trace of handler entries and exits, 8 bits an event (newest lowest).
static TRACE: AtomicU64 = AtomicU64::new(0);
/// Handler runs.
static RUNS: AtomicU64 = AtomicU64::new(0);
/// The last handler's (signal, info).
static LAST: Mutex<(u32, u64)> = Mutex::new((0, 0));
/// The frame the last handler saw.
static FRAME: Mutex<Option<UpcallFrame>> = Mutex::new(None);

fn reset() {
    TRACE.store(0, Ordering::SeqCst);
    RUNS.store(0, Ordering::SeqCst);
    *LAST.lock() = (0, 0);
    *FRAME.lock() = None;
    UPCALL_PROBE_FLAG.store(0, Ordering::SeqCst);
}

fn trace(event: u64) {
    let _ = TRACE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t << 8 | event));
}

/// Records what it was given.
fn recording(signal: u32, info: u64, frame: &mut UpcallFrame) {
    *LAST.lock() = (signal, info);
    *FRAME.lock() = Some(*frame);
    RUNS.fetch_add(1, Ordering::SeqCst);
}

/// The register probe's handler: once the frame shows the probe's loop
/// (every pattern loaded), it records the frame and ends the loop.
fn probe_handler(_signal: u32, _info: u64, frame: &mut UpcallFrame) {
    let r = frame.registers;
    let loaded = [
        r.rax, r.rbx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14,
        r.r15,
    ];
    let expected = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14].map(|i| UPCALL_PATTERNS[i]);
    if loaded == expected && r.rcx == 0 && UPCALL_PROBE_FLAG.load(Ordering::SeqCst) == 0 {
        *FRAME.lock() = Some(*frame);
        UPCALL_PROBE_FLAG.store(UPCALL_PATTERNS[2], Ordering::SeqCst);
    }
}

/// A runs B inside itself: A in (1), B (2), A out (3).
fn nesting_a(_signal: u32, _info: u64, _frame: &mut UpcallFrame) {
    trace(1);
    // userlib's call (a 64-byte buffer), not kit's (pages of stack): the
    // handler runs on the stack of a kit::send that is still in progress.
    let _ = upcall::interrupt(Descriptor::NULL, SIG_B, 0);
    // B is delivered as this call returns: before A goes on.
    trace(3);
}

fn nesting_b(_signal: u32, _info: u64, _frame: &mut UpcallFrame) {
    trace(2);
}

/// A raises A again once: the second waits until the first returned.
fn repeating_a(_signal: u32, _info: u64, _frame: &mut UpcallFrame) {
    trace(1);
    if RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        let _ = upcall::interrupt(Descriptor::NULL, SIG_A, 0);
    }
    trace(3);
}

/// The register probe on a thread of its own, interrupted until a signal
/// lands in its loop: the probe and the frame its handler saw.
fn run_probe(
    context: &mut Context,
    flags: u64,
) -> Result<(userlib::probe::UpcallProbe, UpcallFrame), Failed> {
    reset();
    upcall::set_handler(SIG_A, Some(probe_handler));
    let (job, handle) = context.job_with_handle(move || {
        upcall::register_thread(None).map(|()| userlib::probe::upcall_register_probe(flags))
    })?;
    let mut tries = 0;
    while UPCALL_PROBE_FLAG.load(Ordering::SeqCst) == 0 && tries < MAX_TRIES {
        interrupt(handle, SIG_A, 0x1234)?;
        userlib::kernel::yield_now()?;
        tries += 1;
    }
    let probe = kit::finished_value(context, &job, "the probe")??;
    upcall::set_handler(SIG_A, None);
    let frame = FRAME.lock().ok_or_else(|| {
        Failed(format!(
            "no signal landed in the probe's loop ({tries} tries)"
        ))
    })?;
    Ok((probe, frame))
}

/// The answer of [`interrupted_server`]: msgRetVal 0, msgErrno 0, then
/// the payload at `REPLY_PAYLOAD_OFFSET` (ABI.md §3).
const SERVED: &[u8] = b"\0\0\0\0\0\0\0\0served";

/// A server thread that registers for upcalls, RECEIVEs, and after an
/// INTERRUPTED receives again and answers the call it gets; it returns the
/// first RECEIVE's registers.
fn interrupted_server(
    context: &mut Context,
    owner: Descriptor,
) -> Result<(crate::context::Job<Result<TrapArgs, Failed>>, Descriptor), Failed> {
    let job = context.job_with_handle(move || {
        upcall::register_thread(None)?;
        let (first, _) = kit::receive(owner, MAX)?;
        let (_, mut buffer) = kit::receive(owner, MAX)?;
        kit::reply(&mut buffer, &Answer::data(SERVED))?;
        Ok(first.received)
    })?;
    context.settle();
    Ok(job)
}

/// A peer whose control thread registers a handler with `stack` as its
/// alternate stack, then is interrupted with a signal: whether its process
/// is gone (PROCESS_KILL's registers).
fn peer_with_stack(context: &mut Context, base: u64, size: u64) -> Result<TrapArgs, Failed> {
    let peer = context.peer(&[])?;
    let request = UpcallRegisterRequest::with_stack(abi::process::USER_IMAGE_BASE, base, size);
    let registered = peer.trap(crate::peer::Step::send(
        KernelFunction::UpcallRegister.function(),
        0,
        request.as_bytes(),
        &[],
        64,
    ))?;
    context.check(
        registered.registers == kit::replied(0, 0, 8, 0),
        "the peer's UPCALL_REGISTER",
    );
    context.settle();
    interrupt_ok(context, peer.process, SIG_A)?;
    context.settle();
    let kill = kit::send(
        KernelFunction::ProcessKill.function(),
        peer.process,
        abi::kcall::ExitRequest::new(0).as_bytes(),
        &[],
        64,
    )?;
    Ok(kill.registers)
}

const DONE: Expect = Expect::replied("THREAD_INTERRUPT", 0, 0, 8, 0);

/// A new thread with `handlers` signals itself with SIG_A; the handlers'
/// trace must be `expected` (`order` says it in words). The thread's
/// SEND result is what the case observes.
fn traced_self_signal(
    context: &mut Context,
    handlers: &[(u32, upcall::Handler)],
    expected: u64,
    order: &str,
) -> crate::case::Outcome {
    reset();
    for (signal, handler) in handlers {
        upcall::set_handler(*signal, Some(*handler));
    }
    let (job, _) = context.job_with_handle(move || {
        upcall::register_thread(None)?;
        interrupt(Descriptor::NULL, SIG_A, 0)
    })?;
    let registers = kit::finished_value(context, &job, "the thread")??;
    let trace = TRACE.load(Ordering::SeqCst);
    context.check(
        trace == expected,
        &format!("trace {trace:#x}, expected {order}"),
    );
    for (signal, _) in handlers {
        upcall::set_handler(*signal, None);
    }
    Ok(context.observe(registers))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-UPCALL-001",
        rule: "every general register (RAX-R15 but RSP) survives a signal handler entered in the middle of user code, and UPCALL_RETURN resumes there",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::replied("COUNTERS after the probe", 0, 0, 56, 0),
        run: |context| {
            let (probe, _) = run_probe(context, USER_FLAGS)?;
            context.check(
                probe.after == UPCALL_PATTERNS,
                &format!("registers after the handler {:x?}", probe.after),
            );
            context.check(
                probe.stack[0] == probe.stack[1],
                &format!(
                    "rsp {:#x} before, {:#x} after",
                    probe.stack[0], probe.stack[1]
                ),
            );
            let call = kit::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                &[],
                &[],
                64,
            )?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-UPCALL-002",
        rule: "the flags survive a handler: CF PF AF ZF SF DF OF set, and all of them clear",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::replied("COUNTERS after the probes", 0, 0, 56, 0),
        run: |context| {
            for flags in [USER_FLAGS, 0] {
                let (probe, _) = run_probe(context, flags)?;
                context.check(
                    probe.flags & (USER_FLAGS | 0x200) == flags | 0x200,
                    &format!(
                        "flags {:#x} set, {:#x} after the handler",
                        flags, probe.flags
                    ),
                );
            }
            let call = kit::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                &[],
                &[],
                64,
            )?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-UPCALL-003",
        rule: "the upcall frame holds the signal, its info word, the mask before the handler (0) and the interrupted registers, RSP and flags",
        section: "6.10",
        decisions: &["D66", "D67"],
        expect: Expect::replied("COUNTERS after the probe", 0, 0, 56, 0),
        run: |context| {
            let (probe, frame) = run_probe(context, USER_FLAGS)?;
            context.check(
                (frame.signal, frame.info, frame.mask) == (SIG_A, 0x1234, 0),
                &format!(
                    "signal {} info {:#x} mask {:#x}",
                    frame.signal, frame.info, frame.mask
                ),
            );
            let r = frame.registers;
            context.check(r.rcx == 0, "the loop register in the frame");
            context.check(
                r.rsp == probe.stack[0],
                &format!("frame rsp {:#x}, probe rsp {:#x}", r.rsp, probe.stack[0]),
            );
            context.check(
                r.rflags & USER_FLAGS == USER_FLAGS,
                &format!("frame rflags {:#x}", r.rflags),
            );
            let call = kit::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                &[],
                &[],
                64,
            )?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-UPCALL-004",
        rule: "a signal to a thread blocked in RECEIVE runs its handler (signal and info as sent), the RECEIVE returns INTERRUPTED, and the server goes on serving: a call is answered",
        section: "6.10",
        decisions: &["D66"],
        expect: Expect::replied("the call after the signal", 0, 0, 14, 0),
        run: |context| {
            reset();
            upcall::set_handler(SIG_B, Some(recording));
            let door = context.user_door()?;
            let (job, handle) = interrupted_server(context, door.owner)?;
            interrupt_ok(context, handle, SIG_B)?;
            context.settle();
            // One lock, released before the check: a guard living through
            // the whole statement would deadlock its own second lock.
            let seen = *LAST.lock();
            context.check(seen == (SIG_B, 0), &format!("the handler saw {seen:?}"));
            let call = kit::send(USER_CALL, door.client, b"after", &[], 64)?;
            context.check(
                call.bytes.get(..SERVED.len()) == Some(SERVED),
                "the answer's bytes",
            );
            let first = kit::finished_value(context, &job, "the server")??;
            context.check(
                first.kernel_error() == Some(Error::Interrupted),
                "the first RECEIVE was not INTERRUPTED",
            );
            upcall::set_handler(SIG_B, None);
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-UPCALL-005",
        rule: "the frame of a signal that interrupted a RECEIVE holds the INTERRUPTED return: RAX 0xFFFFFFFF, RDI 71",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::error("the interrupted RECEIVE", Error::Interrupted),
        run: |context| {
            reset();
            upcall::set_handler(SIG_B, Some(recording));
            let door = context.user_door()?;
            let (job, handle) = interrupted_server(context, door.owner)?;
            interrupt(handle, SIG_B, 99)?;
            context.settle();
            let frame = FRAME
                .lock()
                .ok_or_else(|| Failed(alloc::string::String::from("the handler did not run")))?;
            let r = frame.registers;
            context.check(
                (r.rax, r.rdi) == (0xffff_ffff, Error::Interrupted as u64),
                &format!("frame rax {:#x} rdi {:#x}", r.rax, r.rdi),
            );
            context.check(frame.info == 99, "the info word");
            let _ = kit::send(USER_CALL, door.client, b"x", &[], 64)?;
            let first = kit::finished_value(context, &job, "the server")??;
            upcall::set_handler(SIG_B, None);
            Ok(context.observe(first))
        },
    },
    Case {
        id: "MSG-UPCALL-006",
        rule: "a masked signal interrupts nothing: a thread blocked in EVENT_WAIT stays blocked and its handler does not run until it unmasks the signal",
        section: "6.10",
        decisions: &["D66"],
        expect: Expect::replied("the EVENT_WAIT", 0, 0, 8, 0),
        run: |context| {
            reset();
            upcall::set_handler(SIG_A, Some(recording));
            let event = context.event()?;
            let (job, handle) = context.job_with_handle(move || {
                upcall::register_thread(None)?;
                upcall::mask(mask_how::BLOCK, 1 << SIG_A)?;
                let wait = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
                let unmasked = upcall::mask(mask_how::UNBLOCK, 1 << SIG_A)?;
                Ok::<_, Failed>((wait.registers, unmasked))
            })?;
            context.settle();
            interrupt_ok(context, handle, SIG_A)?;
            context.settle();
            context.check(!job.finished(), "the masked signal woke the waiter");
            context.check(
                RUNS.load(Ordering::SeqCst) == 0,
                "the handler ran while masked",
            );
            userlib::kernel::event_signal(event)?;
            let (wait, unmasked) = kit::finished_value(context, &job, "the waiter")??;
            context.check(
                unmasked
                    == SignalMaskReply {
                        previous: 1 << SIG_A,
                        pending: 1 << SIG_A,
                    },
                &format!("SIGNAL_MASK {unmasked:?}"),
            );
            context.check(
                RUNS.load(Ordering::SeqCst) == 1,
                "the handler did not run once unmasked",
            );
            upcall::set_handler(SIG_A, None);
            Ok(context.observe(wait))
        },
    },
    Case {
        id: "MSG-UPCALL-007",
        rule: "SIGNAL_MASK replies the previous mask and the pending set (24 bytes); bit 0 is no signal and is ignored",
        section: "6.10",
        decisions: &["D66"],
        expect: Expect::replied("SIGNAL_MASK SET 0", 0, 0, 24, 0),
        run: |context| {
            let set = SignalMaskRequest::new(mask_how::SET, 0b1011);
            let _ = kit::send(
                KernelFunction::SignalMask.function(),
                Descriptor::NULL,
                set.as_bytes(),
                &[],
                64,
            )?;
            let clear = SignalMaskRequest::new(mask_how::SET, 0);
            let call = kit::send(
                KernelFunction::SignalMask.function(),
                Descriptor::NULL,
                clear.as_bytes(),
                &[],
                64,
            )?;
            let reply = SignalMaskReply::read_from_prefix(&call.bytes[8..])
                .map(|(r, _)| r)
                .unwrap_or_default();
            context.check(
                reply
                    == SignalMaskReply {
                        previous: 0b1010,
                        pending: 0,
                    },
                &format!("{reply:?}"),
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-UPCALL-008",
        rule: "SIGNAL_MASK with how 3 is INVALID_ARGUMENT and changes nothing",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("SIGNAL_MASK", Error::InvalidArgument),
        run: |context| {
            let request = SignalMaskRequest::new(3, 1 << 4);
            let outcome = kit::refused(
                context,
                KernelFunction::SignalMask,
                Descriptor::NULL,
                request.as_bytes(),
            );
            let now = upcall::mask(mask_how::BLOCK, 0)?;
            context.check(now.previous == 0, "the mask changed");
            outcome
        },
    },
    Case {
        id: "MSG-UPCALL-009",
        rule: "SIGNAL_MASK with its reserved field set is RESERVED_BITS",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("SIGNAL_MASK", Error::ReservedBits),
        run: |context| {
            let request = SignalMaskRequest {
                reserved: 1,
                ..SignalMaskRequest::new(mask_how::SET, 0)
            };
            kit::refused(
                context,
                KernelFunction::SignalMask,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-UPCALL-010",
        rule: "UPCALL_REGISTER with an entry in the kernel half is INVALID_ARGUMENT",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("UPCALL_REGISTER", Error::InvalidArgument),
        run: |context| {
            let request = UpcallRegisterRequest::new(0xffff_8000_0000_0000);
            kit::refused(
                context,
                KernelFunction::UpcallRegister,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-UPCALL-011",
        rule: "UPCALL_REGISTER with an alternate stack range that wraps is INVALID_ARGUMENT",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("UPCALL_REGISTER", Error::InvalidArgument),
        run: |context| {
            let request = UpcallRegisterRequest::with_stack(0x40_0000, u64::MAX - 0xfff, 0x2000);
            kit::refused(
                context,
                KernelFunction::UpcallRegister,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-UPCALL-012",
        rule: "UPCALL_RETURN with a forged frame whose RIP is in the kernel half is BAD_UPCALL_FRAME and changes nothing",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::error("UPCALL_RETURN", Error::BadUpcallFrame),
        run: |context| {
            forged_return(
                context,
                UserRegisters {
                    rip: 0xffff_8000_0010_0000,
                    rsp: 0x10_0000,
                    ..UserRegisters::default()
                },
            )
        },
    },
    Case {
        id: "MSG-UPCALL-013",
        rule: "UPCALL_RETURN with a forged frame whose RSP is not canonical is BAD_UPCALL_FRAME and changes nothing",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::error("UPCALL_RETURN", Error::BadUpcallFrame),
        run: |context| {
            forged_return(
                context,
                UserRegisters {
                    rip: 0x40_0000,
                    rsp: 0x8000_0000_0000_0000,
                    ..UserRegisters::default()
                },
            )
        },
    },
    Case {
        id: "MSG-UPCALL-014",
        rule: "UPCALL_RETURN with a frame address that is not mapped is BAD_BUFFER",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("UPCALL_RETURN", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[])?;
            let request = UpcallReturnRequest::new(pages.unmapped);
            kit::refused(
                context,
                KernelFunction::UpcallReturn,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-UPCALL-015",
        rule: "nested signals: a signal raised inside another's handler runs its own handler at once, before the first handler goes on",
        section: "6.10",
        decisions: &["D66"],
        expect: DONE,
        run: |context| {
            traced_self_signal(
                context,
                &[(SIG_A, nesting_a), (SIG_B, nesting_b)],
                0x01_02_03,
                "A in, B, A out",
            )
        },
    },
    Case {
        id: "MSG-UPCALL-016",
        rule: "a signal raised again inside its own handler waits (masked) until that handler returned, then runs",
        section: "6.10",
        decisions: &["D66"],
        expect: DONE,
        run: |context| {
            traced_self_signal(
                context,
                &[(SIG_A, repeating_a)],
                0x01_03_01_03,
                "A in, A out, A in, A out",
            )
        },
    },
    Case {
        id: "MSG-UPCALL-017",
        rule: "a signal sent before the thread has a handler stays pending (SIGNAL_MASK shows it) and runs once a handler is registered",
        section: "6.10",
        decisions: &["D66"],
        expect: DONE,
        run: |context| {
            reset();
            upcall::set_handler(SIG_B, Some(recording));
            let (job, _) = context.job_with_handle(move || {
                let sent = interrupt(Descriptor::NULL, SIG_B, 5);
                // The kept interruption goes with an EVENT_WAIT that returns at once.
                let pending = upcall::mask(mask_how::BLOCK, 0)?;
                let before = RUNS.load(Ordering::SeqCst);
                upcall::register_thread(None)?;
                Ok::<_, Failed>((sent?, pending, before, RUNS.load(Ordering::SeqCst)))
            })?;
            let (sent, pending, before, after) = kit::finished_value(context, &job, "the thread")??;
            context.check(
                pending.pending == 1 << SIG_B,
                &format!("pending {:#x}", pending.pending),
            );
            context.check(
                (before, after) == (0, 1),
                &format!("handler runs {before} before, {after} after registering"),
            );
            context.check(*LAST.lock() == (SIG_B, 5), "signal and info");
            upcall::set_handler(SIG_B, None);
            Ok(context.observe(sent))
        },
    },
    Case {
        id: "MSG-UPCALL-018",
        rule: "a handler's alternate stack that is not mapped ends its process (status 0xFFFFFFFF, the kernel goes on): PROCESS_KILL then finds it gone (PEER_DIED)",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::error("PROCESS_KILL of the peer", Error::PeerDied),
        run: |context| {
            let registers = peer_with_stack(context, 0x10_0000, 0x1000)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-UPCALL-019",
        rule: "an alternate stack too small for the frame (overflow on delivery) ends its process: PROCESS_KILL then finds it gone (PEER_DIED)",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::error("PROCESS_KILL of the peer", Error::PeerDied),
        run: |context| {
            let registers = peer_with_stack(context, abi::process::USER_IMAGE_BASE, 64)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-UPCALL-020",
        rule: "a handler's alternate stack in read-only memory (the program's text) ends its process: PROCESS_KILL then finds it gone (PEER_DIED)",
        section: "6.10",
        decisions: &["D67"],
        expect: Expect::error("PROCESS_KILL of the peer", Error::PeerDied),
        run: |context| {
            let registers = peer_with_stack(context, abi::process::USER_IMAGE_BASE, 0x1000)?;
            Ok(context.observe(registers))
        },
    },
];

/// UPCALL_RETURN through a frame holding `registers` (in a buffer the
/// runner owns), which must be refused and change nothing.
fn forged_return(context: &mut Context, registers: UserRegisters) -> crate::case::Outcome {
    let frame = UpcallFrame {
        signal: SIG_A,
        reserved: 0,
        info: 0,
        mask: 0,
        registers,
    };
    let mut buffer = userlib::raw::Buffer::filled(0);
    buffer.put(0, frame.as_bytes());
    let request = UpcallReturnRequest::new(buffer.address());
    let outcome = kit::refused(
        context,
        KernelFunction::UpcallReturn,
        Descriptor::NULL,
        request.as_bytes(),
    );
    let _ = &buffer;
    outcome
}
