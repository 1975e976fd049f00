//! ipc-test: the in-guest IPC test. Booted as the first process
//! (`init=ipc-test qemu-exit`), it checks every IPC operation, kernel
//! function and error path of ABI.md on the real kernel, with helper
//! processes it SPAWNs (`ipc-test-helper`, `echo`, `ipc-fuzz`). It prints
//! one line per check, `ok   <name>` or `FAIL <name>: expected X, got Y`,
//! then `ipc-test: N passed, M failed`, and ends the machine with
//! DEBUG_EXIT(0 if nothing failed, else 1).
//!
//! The checks are grouped by area, one module each, run in this order:
//! [`roundtrip`] (the four operations and cookies), [`transfer`]
//! (descriptors between three processes), [`errors`] (every error a user
//! program can provoke), [`kernel_functions`], [`death`] (processes that
//! exit mid-call) and [`fuzz`]. Register-exact checks go through the raw
//! trap layer (`ipc_test_helper::raw`); [`fixture`] holds what the checks
//! share. A check that waits on a helper only ever *calls* it, so a helper
//! that dies fails the call (PEER_DIED) instead of hanging the test.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod check;
mod death;
mod errors;
mod fixture;
mod fuzz;
mod kernel_functions;
mod roundtrip;
mod transfer;

use userlib::{Startup, kernel, println};

use crate::check::Check;
use crate::fixture::Fixture;

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// Every area's checks, in the order they run.
const AREAS: &[&[Check]] = &[
    roundtrip::CHECKS,
    transfer::CHECKS,
    errors::CHECKS,
    kernel_functions::CHECKS,
    death::CHECKS,
    fuzz::CHECKS,
];

fn run(_startup: Startup) -> i32 {
    let total: usize = AREAS.iter().map(|area| area.len()).sum();
    println!("ipc-test: {total} checks");
    let mut fixture = Fixture::new();
    let (mut passed, mut failed) = (0u32, 0u32);
    for check in AREAS.iter().flat_map(|area| area.iter()) {
        match (check.run)(&mut fixture) {
            Ok(()) => {
                passed += 1;
                println!("ok   {}", check.name);
            }
            Err(failure) => {
                failed += 1;
                println!(
                    "FAIL {}: expected {}, got {}",
                    check.name, failure.expected, failure.got
                );
            }
        }
    }
    println!("ipc-test: {passed} passed, {failed} failed");
    let code = u32::from(failed != 0);
    // Returns only if refused (not booted with qemu-exit, or not the
    // first process).
    let refused = kernel::debug_exit(code);
    println!("ipc-test: DEBUG_EXIT refused: {refused}");
    code as i32
}
