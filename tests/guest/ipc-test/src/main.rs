//! ipc-test: the in-guest test of what the kernel does for a whole system
//! rather than for one trap (the ABI's rules, one trap at a time, are the
//! conformance suite's: `conformance/`, and `tests/guest/REMOVED_CHECKS.md`
//! says which case took over each check that was here). Booted as the
//! first process (`init=ipc-test qemu-exit`), it SPAWNs its helper
//! processes (`ipc-test-helper`, `echo`, `ipc-fuzz`), prints one line per
//! check, `ok   <name>` or `FAIL <name>: expected X, got Y`, then
//! `ipc-test: N passed, M failed`, and ends the machine with DEBUG_EXIT(0
//! if nothing failed, else 1).
//!
//! The checks are grouped by area, one module each, run in this order:
//! [`transfer`] (an event passed between three processes), [`scheduling`]
//! (YIELD and the threads of one priority), [`smp`] (an UNMAP seen on
//! another CPU, and the stress test of every CPU), [`signals`] (100,000
//! interruptions of threads in IPC; `signal-interruptions=N` on the
//! command line sets another count, as the KVM boot cases do); the death of a process
//! in each phase of a call is the conformance suite's (MSG-DEATH-001 to
//! 012). Register-exact checks go through the raw trap layer
//! (`userlib::raw`); [`fixture`] holds what the checks share. A check that
//! waits on a helper only ever *calls* it, so a helper that dies fails the
//! call (PEER_DIED) instead of hanging the test.
//!
//! As the first process it starts with the three kernel capabilities as
//! its descriptors 1-3 (ABI.md §7): userlib's DOOR_CREATE, SPAWN and
//! DEBUG_EXIT are sent to them, and its helpers hold none (but for the
//! fuzzer, which gets SEND-only copies of two of them).
//!
//! Its argument bytes are the kernel command line. With `fuzz-seed=S`,
//! `fuzz-traps=N` or `fuzz-seconds=T` on it (what `cargo xtask fuzz` and
//! the fuzzer's boot case of `cargo xtask test` boot), it runs the [`fuzz`]
//! checks only, with those parameters: two racing `ipc-fuzz` processes,
//! then echo still answers and the kernel's counters are back. The fuzzer
//! is a boot case of its own so that its length can follow the
//! accelerator (its traps are slow under nested KVM).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod check;
mod fixture;
mod fuzz;
mod scheduling;
mod signals;
mod smp;
mod transfer;

use tally::{Lines, Tally};
use userlib::{Startup, println};

use crate::check::Check;
use crate::fixture::Fixture;

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// Every area's checks, in the order they run.
const AREAS: &[&[Check]] = &[
    transfer::CHECKS,
    scheduling::CHECKS,
    smp::CHECKS,
    signals::CHECKS,
];

fn run(startup: Startup) -> i32 {
    let cmdline = core::str::from_utf8(startup.arguments).unwrap_or("");
    let mut fixture = Fixture::new();
    let mut areas: &[&[Check]] = match ipc_fuzz::parse_command_line(cmdline) {
        Ok(None) => AREAS,
        Ok(Some((seed, traps, seconds))) => {
            fixture.fuzz_parameters = fuzz::Parameters {
                seed,
                traps,
                seconds,
            };
            println!(
                "ipc-test: fuzz only: seed {seed:#x}, {traps} traps, {seconds} s limit (0: none)"
            );
            &[fuzz::CHECKS]
        }
        Err(word) => {
            println!("ipc-test: not a number: {word}");
            &[]
        }
    };
    match signals::parse_command_line(cmdline) {
        Ok(Some(count)) => fixture.signal_interruptions = count,
        Ok(None) => {}
        Err(word) => {
            println!("ipc-test: not a number: {word}");
            areas = &[];
        }
    }
    let total: usize = areas.iter().map(|area| area.len()).sum();
    println!("ipc-test: {total} checks");
    let mut tally = Tally::new("ipc-test", Lines::Bare);
    if total == 0 {
        tally.count_failure();
    }
    for check in areas.iter().flat_map(|area| area.iter()) {
        tally.check(check.name, (check.run)(&mut fixture));
    }
    // Returns only if refused (not booted with qemu-exit, or without the
    // machine-control capability the first process starts with).
    tally.exit()
}
