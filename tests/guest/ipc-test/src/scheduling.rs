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
const ROUNDS: usize = 5;

/// The CPU's switches to user threads across one YIELD that handed the CPU
/// to another thread: to it, and back to us. A YIELD that kept the CPU
/// makes none (a trap that returns to its caller is no switch).
const DISPATCHES_OF_A_SWITCH: u64 = 2;

/// Lets a spinning worker end: set when dropped, so that no early return
/// leaves it spinning.
struct Release(Arc<AtomicBool>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn yield_runs_others(_: &mut Fixture) -> Outcome {
    // Each round makes a fresh worker of the same priority on our CPU (a
    // new thread gets its creator's affinity, ABI.md §6.9) that spins
    // until we release it after our YIELD: whenever the YIELD comes, the
    // worker is ready, even if a tick ran it before (it cannot have
    // finished). Our YIELD must hand it the CPU; a tick hands it back.
    // Whether the YIELD did is read from the kernel's count of the CPU's
    // switches to user threads (CPU_COUNTERS), not from the worker's own
    // progress. A tick or another thread only adds dispatches, so no
    // timing makes a working YIELD fail here (an earlier version skipped
    // rounds whose worker a tick had run to its end, and under a slow
    // hypervisor nearly every round was skipped); the scheduler's exact
    // order is the host test `yield_runs_the_next_ready_thread_of_its_priority`.
    kernel::set_affinity(BOOT_CPU).setup("THREAD_AFFINITY to the boot CPU")?;
    let mut results = [TrapArgs::default(); ROUNDS];
    let mut not_run = 0;
    for result in &mut results {
        let release = Release(Arc::new(AtomicBool::new(false)));
        let released = Arc::clone(&release.0);
        let worker = spawn_worker(move || {
            while !released.load(Ordering::SeqCst) {
                core::hint::spin_loop();
            }
        })?;
        let before = dispatches()?;
        *result = kcall(KernelFunction::Yield, Descriptor::NULL, &[], 64).0;
        let after = dispatches()?;
        drop(release);
        worker.join()?;
        if after.wrapping_sub(before) < DISPATCHES_OF_A_SWITCH {
            not_run += 1;
        }
    }
    let _ = kernel::set_affinity(u64::MAX);
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
