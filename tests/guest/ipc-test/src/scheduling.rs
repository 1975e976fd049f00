//! YIELD and the threads of one priority. YIELD's reply is an ABI rule
//! (the conformance suite's MSG-KCALL-057); that it hands the CPU to a
//! ready thread of the same priority is the scheduler's policy, which
//! ABI.md does not state, so it is checked here.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

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
/// How many are tried to find them: a round is not judged only when a
/// tick ran the fresh worker to its mark before our YIELD could.
const MAX_ATTEMPTS: u32 = 200;

/// The CPU's switches to user threads across one YIELD that handed the CPU
/// to another thread: to it, and back to us. A YIELD that kept the CPU
/// makes none (a trap that returns to its caller is no switch).
const DISPATCHES_OF_A_SWITCH: u64 = 2;

fn yield_runs_others(_: &mut Fixture) -> Outcome {
    // Each round makes a fresh worker of the same priority on our CPU (a
    // new thread gets its creator's affinity, ABI.md §6.9): ready, and it
    // has never run. Our YIELD must hand it the CPU. Whether it did is
    // read from the kernel's count of the CPU's switches to user threads
    // (CPU_COUNTERS), not from the worker's own progress: a tick can stop
    // the worker between its dispatch and any mark it makes (the earlier
    // check, a counting worker, failed under load for that reason), but it
    // cannot take back a dispatch. A tick or another thread only adds
    // dispatches, so no timing makes a working YIELD fail here; the
    // scheduler's exact order is the host test `yield_runs_the_next_ready_
    // thread_of_its_priority`.
    kernel::set_affinity(BOOT_CPU).setup("THREAD_AFFINITY to the boot CPU")?;
    let mut results = [TrapArgs::default(); ROUNDS as usize];
    let (mut judged, mut not_run, mut attempts) = (0usize, 0, 0);
    while judged < results.len() && attempts < MAX_ATTEMPTS {
        attempts += 1;
        let finished = Arc::new(AtomicBool::new(false));
        let mark = Arc::clone(&finished);
        let worker = spawn_worker(move || mark.store(true, Ordering::SeqCst))?;
        let before = dispatches()?;
        // A tick since THREAD_CREATE may have run it to its end already:
        // then there is nothing left for YIELD to run, and the round is
        // not judged.
        let finished_before = finished.load(Ordering::SeqCst);
        let result = kcall(KernelFunction::Yield, Descriptor::NULL, &[], 64).0;
        let after = dispatches()?;
        worker.join()?;
        if finished_before {
            continue;
        }
        results[judged] = result;
        judged += 1;
        if after.wrapping_sub(before) < DISPATCHES_OF_A_SWITCH {
            not_run += 1;
        }
    }
    let _ = kernel::set_affinity(u64::MAX);
    expect_eq(
        "YIELDs judged (the fresh worker not finished before them)",
        judged,
        results.len(),
    )?;
    for result in results {
        expect_registers("YIELD", result, TrapArgs::completed(0, 0, 8, 0))?;
    }
    expect_eq("YIELDs that did not switch to the ready worker", not_run, 0)
}

/// The boot CPU's switches to user threads so far.
fn dispatches() -> Result<u64, crate::check::Failure> {
    kernel::cpu_counters(0)
        .map(|counters| counters.dispatches)
        .setup("CPU_COUNTERS of the boot CPU")
}
