//! The fuzzer. `ipc-fuzz` (it holds no kernel capability) makes at
//! least 100,000 traps with random registers against an echo server of the
//! test's own, then reports its counts over its lifeline door and exits
//! (see `ipc-fuzz`'s `lib.rs`). The test checks the report (every
//! capability function refused by its target, ABI.md §6), that echo still
//! answers, and that COUNTERS are back where they were once the fuzzer is
//! gone: nothing it did left objects, descriptors or threads behind.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use abi::kcall::{KernelCounters, REPLY_PAYLOAD_OFFSET};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::{Error, KernelFunction, Rights, TrapArgs};
use ipc_fuzz::{ECHO_ANSWERED, FuzzArguments, FuzzReport, INITIAL_DESCRIPTORS, REPORT};
use userlib::kernel::{self, DoorKind};
use userlib::raw::Buffer;
use userlib::{CallError, Message, println};
use zerocopy::IntoBytes;

use crate::check::{Check, Failure, Outcome, Registers, Setup, ensure, expect_eq, expect_error};
use crate::fixture::{Fixture, event, kcall, settle};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "fuzz: ipc-fuzz made at least 100000 random traps and reported its counts",
        run: enough_calls,
    },
    Check {
        name: "fuzz: every random trap's result followed the return conventions (ABI.md §3)",
        run: conventions_kept,
    },
    Check {
        name: "fuzz: every well-formed capability function the fuzzer sent (it holds no capability) was refused by its target: FUNCTION_OUT_OF_RANGE, BAD_DESCRIPTOR, WRONG_OBJECT_TYPE",
        run: capabilities_refused,
    },
    Check {
        name: "fuzz: the fuzzer's own ECHO call after the random traps was answered",
        run: fuzzer_echo_answered,
    },
    Check {
        name: "fuzz: the fuzzer exited afterwards and its lifeline door died (PEER_DIED)",
        run: fuzzer_exited,
    },
    Check {
        name: "fuzz: the echo server still answers ipc-test",
        run: echo_still_answers,
    },
    Check {
        name: "fuzz: COUNTERS back to the starting values once the fuzzer is gone (no runaway)",
        run: no_runaway,
    },
];

/// The fuzzer's seed: fixed, so that a failure can be replayed.
const SEED: u64 = 0x1bad_5eed_cafe_f00d;
/// The random traps it makes.
const CALLS: u64 = 100_000;
/// How far the free frames may drift (the test's own heap may grow).
const FRAME_SLACK: u64 = 256;

/// What the fuzzer run produced.
#[derive(Debug)]
pub struct FuzzOutcome {
    /// The REPORT call on the lifeline and the report in its reply.
    report_call: TrapArgs,
    report: Option<FuzzReport>,
    /// The second REPORT call, after the fuzzer exited.
    second_call: TrapArgs,
    /// The test's own ECHO afterwards: msgRetVal and whether the data came back.
    echo: Result<(u32, bool), CallError>,
    before: KernelCounters,
    after: KernelCounters,
}

fn counters() -> Result<KernelCounters, Failure> {
    let (result, buffer) = kcall(KernelFunction::Counters, abi::Descriptor::NULL, &[], 64);
    if result.is_kernel_failure() {
        return Err(Failure::new("COUNTERS", "a reply", Registers(result)));
    }
    buffer.get(REPLY_PAYLOAD_OFFSET).setup("the counters")
}

/// Runs the fuzzer once.
fn run(fixture: &mut Fixture) -> Result<FuzzOutcome, Failure> {
    let echo = fixture.echo()?;
    let echo_process = fixture.echo_process()?;
    settle();
    let before = counters()?;
    let (report_call, report, second_call) = {
        let event = event()?;
        let dead = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
        dead.owner.close().setup("CLOSE of the owner reference")?;
        let lifeline = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
        let copy = DescriptorSlot::copy;
        let slots = [
            copy(echo, Rights::DOOR_CLIENT),
            copy(echo, Rights::SEND),
            copy(echo, Rights(Rights::TRANSFER.0 | Rights::DUPLICATE.0)),
            copy(event.descriptor(), Rights::EVENT),
            copy(
                event.descriptor(),
                Rights(Rights::SIGNAL.0 | Rights::TRANSFER.0),
            ),
            copy(
                event.descriptor(),
                Rights(Rights::WAIT.0 | Rights::DUPLICATE.0),
            ),
            copy(echo_process, Rights::HANDLE),
            copy(dead.client.descriptor(), Rights::DOOR_CLIENT),
            copy(echo, Rights::DOOR_CLIENT),
            DescriptorSlot::moving(lifeline.owner.descriptor(), Rights::DOOR_OWNER),
        ];
        debug_assert_eq!(slots.len(), INITIAL_DESCRIPTORS as usize);
        let arguments = FuzzArguments {
            seed: SEED,
            calls: CALLS,
        };
        let process = kernel::spawn(ipc_fuzz::PROGRAM, arguments.as_bytes(), &slots)
            .setup("SPAWN of ipc-fuzz")?;
        let _ = lifeline.owner.into_raw();
        let mut buffer = Buffer::new();
        let report_call = buffer.send(
            REPORT,
            lifeline.client.descriptor(),
            abi::message::sizes(MAX_TOTAL_SIZE, 0, 0),
        );
        let report = (!report_call.is_kernel_failure())
            .then(|| buffer.get::<FuzzReport>(REPLY_PAYLOAD_OFFSET))
            .flatten();
        let second_call = buffer.send(
            REPORT,
            lifeline.client.descriptor(),
            abi::message::sizes(MAX_TOTAL_SIZE, 0, 0),
        );
        drop((event, dead.client, lifeline.client, process));
        (report_call, report, second_call)
    };
    let text = b"ipc-test: after the fuzzer";
    let mut message = Message::new();
    let echo_result = match message.push_data(text) {
        Ok(_) => userlib::call(echo, echo::ECHO, &mut message)
            .map(|reply| (reply.ret_val, message.payload() == text)),
        Err(_) => Err(CallError::Kernel(Error::BadSizes)),
    };
    let after = counters()?;
    Ok(FuzzOutcome {
        report_call,
        report,
        second_call,
        echo: echo_result,
        before,
        after,
    })
}

/// The shared run.
fn outcome(fixture: &mut Fixture) -> Result<&FuzzOutcome, Failure> {
    if fixture.fuzz.is_none() {
        let outcome = run(fixture);
        fixture.fuzz = Some(outcome);
    }
    fixture
        .fuzz
        .as_ref()
        .setup("the fuzzer run")?
        .as_ref()
        .map_err(Clone::clone)
}

/// The report, or why there is none.
fn report(fixture: &mut Fixture) -> Result<FuzzReport, Failure> {
    let outcome = outcome(fixture)?;
    let size = (REPLY_PAYLOAD_OFFSET + size_of::<FuzzReport>()) as u16;
    crate::check::expect_registers(
        "the REPORT call on the lifeline",
        outcome.report_call,
        TrapArgs::completed(0, 0, size, 0),
    )?;
    outcome.report.setup("the report")
}

/// One line with the counts, largest first.
fn summary(report: &FuzzReport) -> String {
    let mut errors: Vec<(u64, usize)> = report
        .errors
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(number, count)| (*count, number))
        .collect();
    errors.sort_unstable_by(|a, b| b.cmp(a));
    let mut line = format!(
        "ipc-fuzz: {} traps (seed {SEED:#x}): {} completed",
        report.calls, report.completed
    );
    for (count, number) in errors {
        let name = Error::from_number(number as u32).map_or("unknown", Error::name);
        let _ = write!(line, ", {name} {count}");
    }
    let _ = write!(
        line,
        "; {} arrivals closed; {} capability-function traps, {} not refused by their target",
        report.closed_arrivals, report.capability_traps, report.capability_violations
    );
    line
}

fn enough_calls(fixture: &mut Fixture) -> Outcome {
    let report = report(fixture)?;
    println!("     {}", summary(&report));
    ensure(
        "the random traps the fuzzer made",
        report.calls >= CALLS
            && report.calls == report.completed + report.errors.iter().sum::<u64>(),
        "at least 100000, each counted once",
        format!(
            "{} ({} completed, {} errors)",
            report.calls,
            report.completed,
            report.errors.iter().sum::<u64>()
        ),
    )
}

fn conventions_kept(fixture: &mut Fixture) -> Outcome {
    let report = report(fixture)?;
    let registers = |r: [u64; 4]| {
        Registers(TrapArgs {
            arg0: r[0],
            arg1: r[1],
            arg2: r[2],
            arg3: r[3],
        })
    };
    ensure(
        "results that broke the return conventions",
        report.violations == 0,
        "none",
        format!(
            "{} (the first: {} returned {})",
            report.violations,
            registers(report.first_violation_entry),
            registers(report.first_violation_result)
        ),
    )
}

/// At least this many of the random traps send a capability function
/// with well-formed registers (about one in ten do).
const CAPABILITY_TRAPS: u64 = 1000;

fn capabilities_refused(fixture: &mut Fixture) -> Outcome {
    let report = report(fixture)?;
    ensure(
        "well-formed capability-function traps",
        report.capability_traps >= CAPABILITY_TRAPS,
        "at least 1000",
        report.capability_traps,
    )?;
    expect_eq(
        "capability-function traps not refused by their target (ABI.md §6)",
        report.capability_violations,
        0,
    )
}

fn fuzzer_echo_answered(fixture: &mut Fixture) -> Outcome {
    let report = report(fixture)?;
    let check = report.echo_check;
    ensure(
        "the fuzzer's ECHO through its kept reference",
        check == ECHO_ANSWERED,
        "the data back",
        match check >> 32 {
            1 => format!(
                "error {}",
                Error::from_number(check as u32).map_or("(server error)", Error::name)
            ),
            _ => format!("a wrong answer (msgRetVal {})", check as u32),
        },
    )
}

fn fuzzer_exited(fixture: &mut Fixture) -> Outcome {
    let outcome = outcome(fixture)?;
    expect_error(
        "the second REPORT call on the lifeline",
        outcome.second_call,
        Error::PeerDied,
    )
}

fn echo_still_answers(fixture: &mut Fixture) -> Outcome {
    let outcome = outcome(fixture)?;
    let text_length = b"ipc-test: after the fuzzer".len() as u32;
    expect_eq(
        "ipc-test's ECHO (msgRetVal, same data)",
        outcome.echo.map_err(|error| format!("{error}")),
        Ok((text_length, true)),
    )
}

fn no_runaway(fixture: &mut Fixture) -> Outcome {
    let outcome = outcome(fixture)?;
    let (before, after) = (outcome.before, outcome.after);
    let counts = |c: &KernelCounters| (c.processes, c.threads, c.objects, c.descriptors);
    expect_eq(
        "processes, threads, objects, descriptors (before the fuzzer, after it)",
        counts(&after),
        counts(&before),
    )?;
    ensure(
        "free frames",
        after.free_frames + FRAME_SLACK >= before.free_frames,
        "back within 256 frames of the start",
        format!(
            "{} before, {} after (charged bytes {} before, {} after)",
            before.free_frames, after.free_frames, before.charged_bytes, after.charged_bytes
        ),
    )
}
