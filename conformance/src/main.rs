//! The conformance runner: the first process of a boot with
//! `init=conformance qemu-exit`. It runs every case of the table (see the
//! `conformance` library and README.md), prints one line per case and
//! `N passed, M failed`, then ends the machine through DEBUG_EXIT: 0 when
//! every case passed, 1 otherwise.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;

use conformance::Case;
use userlib::{Startup, kernel, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

fn run(startup: Startup) -> i32 {
    conformance::runner::set_initial_descriptors(startup.descriptors);
    // Started by procman with the argument `procman`: the areas that speak
    // procman's protocol; as the first process: all the others.
    let under_procman = startup.arguments.starts_with(b"procman");
    if under_procman {
        // A process signal (CHLD in MSG-PSIG-022) goes to the first thread
        // that does not mask it: never this one, which only waits for the
        // cases' threads (ABI.md §6.10, D63).
        let _ = userlib::signal::block(u64::MAX);
    }
    let cases: Vec<&'static Case> = conformance::cases::all()
        .filter(|case| conformance::cases::needs_procman(case.id) == under_procman)
        .collect();
    let (_, failed) = conformance::runner::run_all(&cases);
    let code = u32::from(failed != 0);
    if under_procman {
        // procman passes this status to DEBUG_EXIT (it was started by run=).
        return code as i32;
    }
    let refused = kernel::debug_exit(code);
    println!(
        "conformance: DEBUG_EXIT refused ({}); boot with qemu-exit",
        refused.name()
    );
    code as i32
}
