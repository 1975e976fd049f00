//! YIELD and the threads of one priority. YIELD's reply is an ABI rule
//! (the conformance suite's MSG-KCALL-057); that it hands the CPU to a
//! ready thread of the same priority is the scheduler's policy, which
//! ABI.md does not state, so it is checked here.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use abi::{Descriptor, KernelFunction, TrapArgs};
use userlib::kernel;

use crate::check::{Check, Outcome, Setup, expect_eq, expect_registers};
use crate::fixture::{Fixture, kcall, spawn_worker};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[Check {
    name: "YIELD: returns 0 and lets a ready thread of the same priority run, every time",
    run: yield_runs_others,
}];

/// THREAD_AFFINITY's mask of the boot CPU alone.
const BOOT_CPU: u64 = 1;

/// How many YIELDs are judged.
const ROUNDS: u32 = 5;
/// How many are tried to find them (a tick spoils about one in ten under
/// this machine's nested KVM, almost none under TCG).
const MAX_ATTEMPTS: u32 = 200;

fn yield_runs_others(_: &mut Fixture) -> Outcome {
    // A worker of the same priority that counts and YIELDs until told to
    // stop: it is always ready, so each of our YIELDs must let it run, and
    // its count must have moved when our YIELD returns.
    // Both on the boot CPU: on several CPUs the worker would otherwise run
    // beside us rather than in our YIELD (the policy checked is one CPU's).
    kernel::set_affinity(BOOT_CPU).setup("THREAD_AFFINITY to the boot CPU")?;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (counter, stopped) = (Arc::clone(&count), Arc::clone(&stop));
    let worker = spawn_worker(move || {
        let _ = kernel::set_affinity(BOOT_CPU);
        while !stopped.load(Ordering::SeqCst) {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = kernel::yield_now();
        }
    })?;
    // A tick between the worker's count and its own YIELD would let us
    // YIELD to a worker whose next step is that YIELD, so its count would
    // not move: only rounds with no tick in them (CLOCK the same before and
    // after) are judged.
    let mut results = [TrapArgs::default(); ROUNDS as usize];
    let (mut judged, mut not_run, mut attempts) = (0usize, 0, 0);
    while judged < results.len() && attempts < MAX_ATTEMPTS {
        attempts += 1;
        let ticks = kernel::clock().map(|clock| clock.ticks);
        let before = count.load(Ordering::SeqCst);
        let result = kcall(KernelFunction::Yield, Descriptor::NULL, &[], 64).0;
        let moved = count.load(Ordering::SeqCst) != before;
        if ticks.is_err() || kernel::clock().map(|clock| clock.ticks) != ticks {
            continue;
        }
        results[judged] = result;
        judged += 1;
        if !moved {
            not_run += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    worker.join()?;
    let _ = kernel::set_affinity(u64::MAX);
    expect_eq(
        "YIELDs judged (with no timer tick in them)",
        judged,
        results.len(),
    )?;
    for result in results {
        expect_registers("YIELD", result, TrapArgs::completed(0, 0, 8, 0))?;
    }
    expect_eq(
        "YIELDs after which the ready worker had not run",
        not_run,
        0,
    )
}
