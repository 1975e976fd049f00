//! MSG-UPCALL: signals delivered to upcall handlers (ABI.md §6.10, §9
//! D66-D68): every register and the flags surviving a handler, the frame
//! the kernel builds, a handler interrupting a blocked RECEIVE while the
//! server goes on serving, masks and pending sets, nested signals,
//! UPCALL_REGISTER, SIGNAL_MASK and UPCALL_RETURN refusals (a forged frame
//! never sets more than user-mode state), and a bad handler stack ending
//! only its process.

use alloc::format;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::upcall::UpcallFrame;
use abi::{Descriptor, KernelFunction};
use spin::Mutex;
use userlib::probe::{UPCALL_PATTERNS, UPCALL_PROBE_FLAG, USER_FLAGS};
use userlib::upcall;

use super::kit;
use super::sig::interrupt;
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::Expect;

/// The signals the cases use.
const SIG_A: u32 = 10;
/// How many interruptions the register probe's runner sends before it
/// gives up (a few land before the probe's loop; one in it suffices).
const MAX_TRIES: u32 = 100_000;

/// Handler runs.
static RUNS: AtomicU64 = AtomicU64::new(0);
/// The last handler's (signal, info).
static LAST: Mutex<(u32, u64)> = Mutex::new((0, 0));
/// The frame the last handler saw.
static FRAME: Mutex<Option<UpcallFrame>> = Mutex::new(None);

fn reset() {
    RUNS.store(0, Ordering::SeqCst);
    *LAST.lock() = (0, 0);
    *FRAME.lock() = None;
    UPCALL_PROBE_FLAG.store(0, Ordering::SeqCst);
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
];
