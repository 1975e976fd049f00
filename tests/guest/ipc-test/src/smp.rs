//! Several CPUs (ABI.md §6.9): an UNMAP on one CPU that a thread of the
//! same process on another CPU sees at once (it faults, its process ends),
//! and the stress test: threads of several processes on every CPU
//! mapping, unmapping and calling, two of the processes ending while their
//! threads are at work, then the kernel's counters back where they were and
//! every CPU having run user threads. Both also hold with one CPU.

use alloc::format;
use alloc::vec::Vec;

use abi::kcall::KernelCounters;
use abi::message::DescriptorSlot;
use abi::{Error, Rights};
use ipc_test_helper::{
    PREPARE, STALE, STRESS_RESULT, STRESS_ROUNDS, STRESS_WORKERS, UNMAP_NOW, role,
};
use userlib::kernel;
use userlib::raw::Buffer;

use crate::check::{Check, Failure, Outcome, Setup, expect_eq, expect_error};
use crate::fixture::{Fixture, settle, spawn_helper};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "UNMAP: a thread of the process on another CPU faults at its next access once UNMAP returned (its process ends), never reads on",
        run: unmap_seen_on_another_cpu,
    },
    Check {
        name: "stress: threads of four processes on every CPU map, unmap and call; two processes end mid-work; counters back, every CPU dispatched",
        run: stress,
    },
];

/// Calls `function` on `client` with 8 bytes; the registers and msgRetVal.
fn call(client: abi::Descriptor, function: abi::function::Function) -> (abi::TrapArgs, u32) {
    let mut buffer = Buffer::new();
    buffer.put_value(0, &0u64);
    let result = buffer.send(function, client, abi::message::sizes(64, 8, 0));
    let ret_val = buffer.get::<u32>(0).unwrap_or(u32::MAX);
    (result, ret_val)
}

fn unmap_seen_on_another_cpu(_: &mut Fixture) -> Outcome {
    let helper = spawn_helper(role::UNMAP_READER, &[])?;
    let (prepared, running) = call(helper.client(), PREPARE);
    if prepared.arg0 == 0xffff_ffff || running != 1 {
        return Err(Failure::new(
            "the reader thread",
            "running",
            format!("{prepared:?}, {running}"),
        ));
    }
    let (result, ret_val) = call(helper.client(), UNMAP_NOW);
    if result.arg0 != 0xffff_ffff && ret_val == STALE {
        return Err(Failure::new(
            "the reader after the UNMAP",
            "a fault",
            "two more reads through the old translation",
        ));
    }
    expect_error(
        "the UNMAP call (the reader's fault ended the helper)",
        result,
        Error::PeerDied,
    )
}

/// The live counts, read after waiting (YIELDs) until `processes` are left.
fn counters_with(processes: u64) -> Result<KernelCounters, Failure> {
    for _ in 0..100_000 {
        let counters = kernel::counters().setup("COUNTERS")?;
        if counters.processes <= processes {
            return Ok(counters);
        }
        let _ = kernel::yield_now();
    }
    kernel::counters().setup("COUNTERS")
}

fn stress(_: &mut Fixture) -> Outcome {
    let online = kernel::cpu_counters(0).setup("CPU_COUNTERS")?.online;
    let mut dispatched = Vec::with_capacity(online as usize);
    for cpu in 0..online {
        dispatched.push(kernel::cpu_counters(cpu).setup("CPU_COUNTERS")?.dispatches);
    }
    let roles = [
        role::STRESS,
        role::STRESS_DIE,
        role::STRESS,
        role::STRESS_DIE,
    ];
    let mut helpers = Vec::with_capacity(roles.len());
    settle();
    let before = kernel::counters().setup("COUNTERS")?;
    for role in roles {
        let own = kernel::door_create(kernel::DoorKind::User, 0).setup("DOOR_CREATE")?;
        let slots = [
            DescriptorSlot::moving(own.owner.descriptor(), Rights::DOOR_OWNER),
            DescriptorSlot::moving(own.client.descriptor(), Rights::SEND),
        ];
        helpers.push(spawn_helper(role, &slots)?);
        // Both references left with the SPAWN.
        let _ = (own.owner.into_raw(), own.client.into_raw());
    }
    let mut right = 0;
    for (helper, role) in helpers.iter().zip(roles) {
        let (result, rounds) = call(helper.client(), STRESS_RESULT);
        if role == role::STRESS {
            if result.arg0 == 0xffff_ffff {
                return Err(Failure::new(
                    "a stress helper's result",
                    "a reply",
                    format!("{result:?}"),
                ));
            }
            right += rounds;
        } else {
            expect_error(
                "the result of a helper that ended itself",
                result,
                Error::PeerDied,
            )?;
        }
    }
    drop(helpers);
    let after = counters_with(before.processes)?;
    expect_eq(
        "rounds (map, write, call, read back, unmap) that went right in the two whole helpers",
        right,
        2 * STRESS_WORKERS * STRESS_ROUNDS,
    )?;
    expect_eq("the kernel's counters after the stress", after, before)?;
    // Exact, not a matter of timing: each stress worker moves to every CPU
    // in turn (THREAD_AFFINITY per round, ipc-test-helper's `stress`).
    for (cpu, before) in dispatched.iter().enumerate() {
        let now = kernel::cpu_counters(cpu as u32)
            .setup("CPU_COUNTERS")?
            .dispatches;
        if online > 1 && now <= *before {
            return Err(Failure::new(
                format!("CPU {cpu}'s dispatches during the stress"),
                format!("more than {before}"),
                now,
            ));
        }
    }
    Ok(())
}
