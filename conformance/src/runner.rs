//! The in-guest runner: every case of [`crate::cases::CASES`] on a thread
//! of its own, one line per case, the closing `N passed, M failed`.
//!
//! Output (the host's `cargo xtask conformance` parses it):
//!
//! ```text
//! conformance: 323 cases
//! ok   MSG-SIZE-001 §1.2 a buffer of total size 0 is never touched ...
//! FAIL MSG-SIZE-002 §1.2 ... -- SEND: arg1 expected 0x7 (BAD_SIZES), got 0xd (PEER_DIED)
//! 322 passed, 1 failed
//! ```
//!
//! No case can stop the run. The runner keeps a *sentinel* thread at
//! priority 0: on one CPU with fixed priorities (the kernel's scheduler) it
//! only runs when every other thread of the system is blocked; with
//! several it also asks the kernel that no other CPU runs a thread and
//! none is ready (CPU_COUNTERS, ABI.md §6.9). Then either a
//! case asked to [`settle`] (it is woken: the system is idle), or the case's
//! thread is blocked with nothing left that could wake it: the case is
//! reported as hung (`FAIL ... -- hung: ...`) and the run goes on with the
//! next one. A case that hangs leaves its threads blocked for good; every
//! case builds its own doors and peers, so the others do not notice.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use abi::Descriptor;
use spin::Mutex;
use userlib::kernel;
use userlib::println;

use crate::case::{Case, Outcome};
use crate::context::Context;
use crate::expect::mismatches;

/// The stack of a case's thread.
const CASE_STACK: usize = 64 * 1024;
/// The sentinel's stack.
#[cfg_attr(not(all(target_arch = "x86_64", target_os = "none")), allow(dead_code))]
const SENTINEL_STACK: u64 = 16 * 1024;

/// Set by [`settle`] before it waits; cleared by the sentinel when it wakes it.
static SETTLE_REQUESTED: AtomicBool = AtomicBool::new(false);
/// The event [`settle`] waits on (0: no sentinel, settle only yields).
static SETTLE_EVENT: AtomicU32 = AtomicU32::new(0);
/// The event the runner waits on while a case runs.
static CASE_EVENT: AtomicU32 = AtomicU32::new(0);
/// The event a case's thread waits on before it starts: the runner signals
/// it once it has closed the thread's handle, so that the handle's number is
/// free again before the case opens anything (a case predicts descriptor
/// numbers: "the lowest free").
static START_EVENT: AtomicU32 = AtomicU32::new(0);
/// The number of descriptors the runner started with (rdx at entry,
/// ABI.md §7), recorded by `main` for the case that checks it.
static INITIAL_DESCRIPTORS: AtomicU32 = AtomicU32::new(u32::MAX);

/// Records the number of descriptors the runner started with.
pub fn set_initial_descriptors(count: u32) {
    INITIAL_DESCRIPTORS.store(count, Ordering::Release);
}

/// The number of descriptors the runner started with (`u32::MAX` if never
/// recorded).
pub fn initial_descriptors() -> u32 {
    INITIAL_DESCRIPTORS.load(Ordering::Acquire)
}

/// `(case index << 2) | phase`.
static STATE: AtomicU64 = AtomicU64::new(IDLE);

const IDLE: u64 = 0;
const RUNNING: u64 = 1;
const DONE: u64 = 2;
const HUNG: u64 = 3;
const PHASE: u64 = 3;

const fn state(index: usize, phase: u64) -> u64 {
    ((index as u64) << 2) | phase
}

/// Waits until every other thread in the system is blocked (see the
/// module docs); without a sentinel (the host), yields once.
pub fn settle() {
    let event = SETTLE_EVENT.load(Ordering::Acquire);
    if event == 0 {
        let _ = kernel::yield_now();
        return;
    }
    SETTLE_REQUESTED.store(true, Ordering::Release);
    let _ = kernel::event_wait(Descriptor(event));
}

/// The sentinel: whenever it runs and every other thread is blocked. On
/// one CPU it knows that by running (priority 0); with several, other CPUs
/// may run threads beside it, so it asks the kernel
/// ([`kernel::others_blocked`]). It must not
/// allocate (a thread of priority 16 spinning on the heap lock would never
/// let it finish) and must not print.
#[cfg_attr(not(all(target_arch = "x86_64", target_os = "none")), allow(dead_code))]
pub(crate) extern "C" fn sentinel_main(_argument: u64) -> ! {
    // No process signal is ever for the sentinel (see `main`).
    let _ = userlib::signal::block(u64::MAX);
    loop {
        let _ = kernel::yield_now();
        if !kernel::others_blocked() {
            continue;
        }
        if SETTLE_REQUESTED.swap(false, Ordering::AcqRel) {
            let _ = kernel::event_signal(Descriptor(SETTLE_EVENT.load(Ordering::Acquire)));
            continue;
        }
        let now = STATE.load(Ordering::Acquire);
        if now & PHASE == RUNNING
            && STATE
                .compare_exchange(
                    now,
                    (now & !PHASE) | HUNG,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            let _ = kernel::event_signal(Descriptor(CASE_EVENT.load(Ordering::Acquire)));
        }
    }
}

/// Starts the sentinel at priority 0.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
fn start_sentinel() -> Result<(), abi::Error> {
    // A raw thread: its start takes nothing from the heap (see sentinel_main).
    static SENTINEL: userlib::thread::RawEntry = userlib::thread::RawEntry {
        function: sentinel_main,
        argument: 0,
    };
    let thread = userlib::thread::spawn_raw(&SENTINEL, SENTINEL_STACK, 0)?;
    drop(thread);
    Ok(())
}

#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
fn start_sentinel() -> Result<(), abi::Error> {
    Err(abi::Error::InvalidFunction)
}

/// A case's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything as ABI.md says.
    Pass,
    /// These differences (or the reason it could not run).
    Fail(Vec<String>),
}

/// The verdict of a case that ran to its end.
pub fn judge(case: &Case, outcome: Outcome, problems: Vec<String>) -> Verdict {
    let mut found = match outcome {
        Ok(observed) => mismatches(&case.expect, &observed),
        Err(failed) => alloc::vec![alloc::format!("setup failed: {}", failed.0)],
    };
    found.extend(problems);
    if found.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(found)
    }
}

/// Runs one case on its own thread (a case that hangs fails).
fn run_one(index: usize, case: &'static Case) -> Verdict {
    let slot: Arc<Mutex<Option<Verdict>>> = Arc::new(Mutex::new(None));
    let result = slot.clone();
    STATE.store(state(index, RUNNING), Ordering::Release);
    let thread = userlib::spawn_thread(
        move || {
            let _ = kernel::event_wait(Descriptor(START_EVENT.load(Ordering::Acquire)));
            let mut context = Context::new();
            let outcome = (case.run)(&mut context);
            context.finish();
            let verdict = judge(case, outcome, context.take_problems());
            *result.lock() = Some(verdict);
            if STATE
                .compare_exchange(
                    state(index, RUNNING),
                    state(index, DONE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                let _ = kernel::event_signal(Descriptor(CASE_EVENT.load(Ordering::Acquire)));
            }
        },
        CASE_STACK,
    );
    match thread {
        Ok(thread) => {
            drop(thread);
            let _ = kernel::event_signal(Descriptor(START_EVENT.load(Ordering::Acquire)));
        }
        Err(error) => {
            STATE.store(IDLE, Ordering::Release);
            return Verdict::Fail(alloc::vec![alloc::format!(
                "setup failed: the case's thread could not start: {}",
                error.name()
            )]);
        }
    }
    let _ = kernel::event_wait(Descriptor(CASE_EVENT.load(Ordering::Acquire)));
    let end = STATE.swap(IDLE, Ordering::AcqRel);
    if end & PHASE == DONE {
        // The case's thread signalled and is on its way out; on another
        // CPU it may not have ended yet. The next case starts once it has,
        // so that no case counts a thread or a charge of the one before
        // (MSG-MEM-015 saw the kernel's thread count fall by one inside a
        // refused MEMORY_MAP, 4 CPUs under KVM).
        settle();
    }
    match end & PHASE {
        DONE => slot.lock().take().unwrap_or_else(|| {
            Verdict::Fail(alloc::vec![String::from(
                "the case ended without a verdict"
            )])
        }),
        _ => Verdict::Fail(alloc::vec![String::from(
            "hung: the case's thread stayed blocked with every other thread of the system blocked too"
        )]),
    }
}

/// Runs every case; returns (passed, failed).
pub fn run_all(cases: &[&'static Case]) -> (usize, usize) {
    let events = (
        kernel::event_create(),
        kernel::event_create(),
        kernel::event_create(),
    );
    let (Ok(settle_event), Ok(case_event), Ok(start_event)) = events else {
        println!("conformance: cannot create the runner's events");
        return (0, cases.len());
    };
    SETTLE_EVENT.store(settle_event.into_raw().0, Ordering::Release);
    CASE_EVENT.store(case_event.into_raw().0, Ordering::Release);
    START_EVENT.store(start_event.into_raw().0, Ordering::Release);
    if let Err(error) = start_sentinel() {
        println!(
            "conformance: cannot start the sentinel thread: {}",
            error.name()
        );
        return (0, cases.len());
    }
    println!("conformance: {} cases", cases.len());
    let (mut passed, mut failed) = (0, 0);
    for (index, case) in cases.iter().enumerate() {
        match run_one(index, case) {
            Verdict::Pass => {
                passed += 1;
                println!("ok   {} §{} {}", case.id, case.section, case.rule);
            }
            Verdict::Fail(reasons) => {
                failed += 1;
                println!(
                    "FAIL {} §{} {} -- {}",
                    case.id,
                    case.section,
                    case.rule,
                    reasons.join("; ")
                );
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    (passed, failed)
}
