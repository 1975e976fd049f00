//! The fuzzer. Two `ipc-fuzz` processes race each other and echo: the
//! *primary*, holding SEND-only copies of the process-control and
//! boot-archive capabilities, makes the random traps asked for (100,000
//! in `cargo xtask test` under TCG, `ipc_fuzz::TEST_TRAPS_KVM` under KVM,
//! with the fixed seed `ipc_fuzz::TEST_SEED` so that a failure can be
//! replayed; `cargo xtask fuzz` boots `ipc-test` with another seed and
//! count on the command line, see `ipc_fuzz::parse_command_line`), and the
//! unprivileged *partner* races it until it is done. Each has racing
//! worker threads, server threads serving a door the other calls, and a
//! semantic oracle (see `ipc-fuzz`'s `main.rs`); each reports its counts
//! over its lifeline door and exits. The test checks the reports (no
//! violation of any kind, every kind of racing action and the server side
//! reached, capability functions refused by their target without the
//! capability and run with it), that echo still answers, and that
//! COUNTERS are back where they were once both are gone: nothing they did
//! left processes, threads, objects, descriptors or charged memory behind.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use abi::kcall::{KernelCounters, REPLY_PAYLOAD_OFFSET};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::process::{FIRST_BOOT_ARCHIVE, FIRST_PROCESS_CONTROL};
use abi::{Descriptor, Error, KernelFunction, Rights, TrapArgs};
use ipc_fuzz::{
    Action, CAPABILITY_BODIES, ECHO_ANSWERED, FLAG_CAPABILITIES, FuzzArguments, FuzzReport, LAYOUT,
    MAGIC, REPORT, RESULT_PREFIX, Role, Source, Violation,
};
use userlib::kernel::{self, Door, DoorKind};
use userlib::raw::Buffer;
use userlib::{CallError, Message, OwnedDescriptor, println};
use zerocopy::IntoBytes;

use crate::check::{Check, Failure, Outcome, Registers, Setup, ensure, expect_eq, expect_error};
use crate::fixture::{Fixture, event, kcall, settle};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "fuzz: two ipc-fuzz processes with racing threads made the random traps asked for (100000 in cargo xtask test under TCG) and reported their counts",
        run: enough_traps,
    },
    Check {
        name: "fuzz: every random trap's result followed the return conventions (ABI.md §3)",
        run: conventions_kept,
    },
    Check {
        name: "fuzz: every well-formed capability function sent to anything but the capability it needs was refused by its target: FUNCTION_OUT_OF_RANGE, BAD_DESCRIPTOR, WRONG_OBJECT_TYPE",
        run: capabilities_refused,
    },
    Check {
        name: "fuzz: holding SEND-only process-control and boot-archive capabilities, the primary ran DOOR_CREATE, SPAWN and ARCHIVE_READ",
        run: capability_bodies_reached,
    },
    Check {
        name: "fuzz: the racing actions ran against the random traps: UNMAP, PROTECT and MAP_ANONYMOUS of shared buffers, tracked calls, probes, EVENT_WAIT and EVENT_SIGNAL, YIELD, THREAD_EXIT (and the threads replaced and reaped)",
        run: racing_actions_ran,
    },
    Check {
        name: "fuzz: the server threads received real calls and answered them (REPLY, REPLY_RECEIVE), abandoned some and exited holding some",
        run: server_side_reached,
    },
    Check {
        name: "fuzz: rights never grew (DESCRIPTOR_INFO within what a reference of its kind can hold, kept descriptors as given, DUPLICATE and transferred slots exactly as asked)",
        run: rights_never_grew,
    },
    Check {
        name: "fuzz: every cookie a server received was 0 or one a fuzzer server's REPLY set (ABI.md §5)",
        run: cookies_only_by_reply,
    },
    Check {
        name: "fuzz: every trap returned exactly once, with its own call's reply, and every call ended once what it waited for was gone",
        run: calls_ended_once,
    },
    Check {
        name: "fuzz: the fuzzers set up everything they check with (threads, reaping, kept descriptors)",
        run: fuzzers_set_up,
    },
    Check {
        name: "fuzz: each fuzzer's own ECHO call after the random traps was answered",
        run: fuzzer_echo_answered,
    },
    Check {
        name: "fuzz: both fuzzers exited afterwards and their lifeline doors died (PEER_DIED)",
        run: fuzzers_exited,
    },
    Check {
        name: "fuzz: the echo server still answers ipc-test",
        run: echo_still_answers,
    },
    Check {
        name: "fuzz: COUNTERS back to the starting values once both fuzzers are gone: processes, threads, objects, descriptors, charged bytes (no runaway)",
        run: no_runaway,
    },
];

/// How far the free frames may drift (the test's own heap may grow).
const FRAME_SLACK: u64 = 256;
/// Below this many traps a run is too short to require every action and
/// capability body to have happened.
const FULL_RUN: u64 = 50_000;

/// What the fuzz checks run with: the command line's parameters, or the
/// test's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parameters {
    /// The seed.
    pub seed: u64,
    /// The primary's random traps.
    pub traps: u64,
    /// The guest-time limit in seconds (0: none).
    pub seconds: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            seed: ipc_fuzz::TEST_SEED,
            traps: ipc_fuzz::TEST_TRAPS,
            seconds: 0,
        }
    }
}

/// One fuzzer process's run.
#[derive(Debug)]
struct Run {
    /// The REPORT call on its lifeline and the report in its reply.
    report_call: TrapArgs,
    report: Option<FuzzReport>,
    /// The second REPORT call, after it exited.
    second_call: TrapArgs,
}

/// What the fuzzer run produced.
#[derive(Debug)]
pub struct FuzzOutcome {
    parameters: Parameters,
    primary: Run,
    partner: Run,
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

/// The objects both fuzzers are given references to.
struct Objects {
    echo: Descriptor,
    echo_process: Descriptor,
    event: OwnedDescriptor,
    dead: OwnedDescriptor,
    alarm: OwnedDescriptor,
    stop: OwnedDescriptor,
    bell: OwnedDescriptor,
}

/// The doors of one fuzzer process.
struct Doors {
    served: Door,
    fodder: Door,
    lifeline: Door,
    reaper: Door,
}

impl Doors {
    fn new() -> Result<Self, Failure> {
        let door = || kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE");
        Ok(Doors {
            served: door()?,
            fodder: door()?,
            lifeline: door()?,
            reaper: door()?,
        })
    }
}

/// The SPAWN slots of a fuzzer ([`LAYOUT`], the first `count` entries):
/// references to `objects`, to its own doors (owners moved) and to the
/// other's.
fn slots(objects: &Objects, own: &Doors, other: &Doors, count: u32) -> Vec<DescriptorSlot> {
    let copy = DescriptorSlot::copy;
    let moving = DescriptorSlot::moving;
    LAYOUT[..count as usize]
        .iter()
        .map(|entry| {
            let rights = entry.rights;
            let owner = rights.contains(Rights::RECEIVE);
            let door = |door: &Door| {
                if owner {
                    moving(door.owner.descriptor(), rights)
                } else {
                    copy(door.client.descriptor(), rights)
                }
            };
            match entry.source {
                Source::Echo => copy(objects.echo, rights),
                Source::Event => copy(objects.event.descriptor(), rights),
                Source::EchoProcess => copy(objects.echo_process, rights),
                Source::DeadDoor => copy(objects.dead.descriptor(), rights),
                Source::OwnServed => door(&own.served),
                Source::OtherServed => door(&other.served),
                Source::OwnFodderDoor => door(&own.fodder),
                Source::OtherFodderDoor => door(&other.fodder),
                Source::Lifeline => door(&own.lifeline),
                Source::Reaper => door(&own.reaper),
                Source::Alarm => copy(objects.alarm.descriptor(), rights),
                Source::Stop => copy(objects.stop.descriptor(), rights),
                Source::Bell => copy(objects.bell.descriptor(), rights),
                Source::ProcessControl => copy(FIRST_PROCESS_CONTROL, rights),
                Source::BootArchive => copy(FIRST_BOOT_ARCHIVE, rights),
            }
        })
        .collect()
}

/// SPAWNs a fuzzer in `role`.
fn spawn(
    parameters: Parameters,
    role: Role,
    objects: &Objects,
    own: &Doors,
    other: &Doors,
) -> Result<OwnedDescriptor, Failure> {
    let arguments = FuzzArguments {
        magic: MAGIC,
        seed: parameters.seed,
        traps: parameters.traps,
        ticks: parameters.seconds * 100,
        role: role as u32,
        flags: if role == Role::Primary {
            FLAG_CAPABILITIES
        } else {
            0
        },
    };
    let slots = slots(objects, own, other, arguments.initial_descriptors());
    kernel::spawn(ipc_fuzz::PROGRAM, arguments.as_bytes(), &slots)
        .setup(&format!("SPAWN of the {} ipc-fuzz", role.name()))
}

/// REPORT on a lifeline, then REPORT again (PEER_DIED once the fuzzer is gone).
fn collect(lifeline: Descriptor) -> Run {
    let mut buffer = Buffer::new();
    let sizes = abi::message::sizes(MAX_TOTAL_SIZE, 0, 0);
    let report_call = buffer.send(REPORT, lifeline, sizes);
    let report = (!report_call.is_kernel_failure())
        .then(|| buffer.get::<FuzzReport>(REPLY_PAYLOAD_OFFSET))
        .flatten();
    let second_call = buffer.send(REPORT, lifeline, sizes);
    Run {
        report_call,
        report,
        second_call,
    }
}

/// Runs the fuzzers once.
fn run(fixture: &mut Fixture) -> Result<FuzzOutcome, Failure> {
    let parameters = fixture.fuzz_parameters;
    let echo = fixture.echo()?;
    let echo_process = fixture.echo_process()?;
    settle();
    let before = counters()?;
    let (primary, partner) = {
        let dead = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
        dead.owner.close().setup("CLOSE of the owner reference")?;
        let objects = Objects {
            echo,
            echo_process,
            event: event()?,
            dead: dead.client,
            alarm: event()?,
            stop: event()?,
            bell: event()?,
        };
        let doors = [Doors::new()?, Doors::new()?];
        let primary = spawn(parameters, Role::Primary, &objects, &doors[0], &doors[1])?;
        let partner = spawn(parameters, Role::Partner, &objects, &doors[1], &doors[0])?;
        let mut clients = Vec::new();
        for door in doors {
            // The owner references left with the SPAWNs.
            for owner in [
                door.served.owner,
                door.fodder.owner,
                door.lifeline.owner,
                door.reaper.owner,
            ] {
                let _ = owner.into_raw();
            }
            clients.push(door.lifeline.client);
            drop((door.served.client, door.fodder.client, door.reaper.client));
        }
        let primary_run = collect(clients[0].descriptor());
        // The partner stops when the primary's traps are done; in case the
        // primary died first, tell it here too.
        let _ = kernel::event_signal(objects.stop.descriptor());
        let partner_run = collect(clients[1].descriptor());
        drop((objects, clients, primary, partner));
        (primary_run, partner_run)
    };
    settle();
    let text = b"ipc-test: after the fuzzer";
    let mut message = Message::new();
    let echo_result = match message.push_data(text) {
        Ok(_) => userlib::call(echo, echo::ECHO, &mut message)
            .map(|reply| (reply.ret_val, message.payload() == text)),
        Err(_) => Err(CallError::Kernel(Error::BadSizes)),
    };
    let after = counters()?;
    Ok(FuzzOutcome {
        parameters,
        primary,
        partner,
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

/// The two reports, or why there are none.
fn reports(fixture: &mut Fixture) -> Result<(Parameters, [FuzzReport; 2]), Failure> {
    let outcome = outcome(fixture)?;
    let size = (REPLY_PAYLOAD_OFFSET + size_of::<FuzzReport>()) as u16;
    let mut reports = [FuzzReport::default(), FuzzReport::default()];
    for (run, report) in [&outcome.primary, &outcome.partner]
        .into_iter()
        .zip(&mut reports)
    {
        crate::check::expect_registers(
            "the REPORT call on a fuzzer's lifeline",
            run.report_call,
            TrapArgs::completed(0, 0, size, 0),
        )?;
        *report = run.report.setup("the report")?;
    }
    Ok((outcome.parameters, reports))
}

/// One line with the counts, largest first.
fn summary(report: &FuzzReport, seed: u64) -> String {
    let role = Role::from_number(report.role).map_or("?", Role::name);
    let mut errors: Vec<(u64, usize)> = report
        .errors
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(number, count)| (*count, number))
        .collect();
    errors.sort_unstable_by(|a, b| b.cmp(a));
    let mut line = format!(
        "ipc-fuzz[{role}]: {} traps (seed {seed:#x}, {} workers, {} ticks): {} random, {} completed",
        report.traps, report.workers, report.ticks, report.calls, report.completed
    );
    for (count, number) in errors {
        let name = Error::from_number(number as u32).map_or("unknown", Error::name);
        let _ = write!(line, ", {name} {count}");
    }
    let _ = write!(line, "; actions");
    for action in Action::ALL {
        let _ = write!(
            line,
            " {} {}",
            action.name(),
            report.actions[action as usize]
        );
    }
    let _ = write!(
        line,
        "; server {} traps, {} received, {} replied, {} abandoned, {} exits; {} cookies and {} rights checked; {} capability traps refused, bodies {:?}; {} respawns, {} reaped, {} stall breaks, {} arrivals closed; {} traps in all, {} coordinator rounds",
        report.server_traps,
        report.received,
        report.replied,
        report.abandoned,
        report.server_exits,
        report.cookies_checked,
        report.rights_checked,
        report.capability_traps,
        report.capability_completed,
        report.respawns,
        report.reaped,
        report.stall_breaks,
        report.closed_arrivals,
        report.kernel_traps,
        report.rounds
    );
    line
}

/// The machine-readable line `cargo xtask fuzz` reads.
fn result_line(report: &FuzzReport, seed: u64) -> String {
    let role = Role::from_number(report.role).map_or("?", Role::name);
    let first = &report.first;
    let first = if report.violation_count() == 0 {
        String::from("none")
    } else {
        let kind = Violation::from_number(first.kind).map_or("?", Violation::name);
        format!(
            "\"{kind}\"@trap{}/slot{} entry={} result={}",
            first.trap,
            first.slot,
            hex_words(&first.entry),
            hex_words(&first.result)
        )
    };
    format!(
        "{RESULT_PREFIX} role={role} seed={seed:#x} traps={} calls={} violations={} ticks={} first={first}",
        report.traps,
        report.calls,
        report.violation_count(),
        report.ticks
    )
}

/// `[0x1,0x2,...]`, on one line.
fn hex_words(words: &[u64; 4]) -> String {
    let mut text = String::from("[");
    for (index, word) in words.iter().enumerate() {
        let _ = write!(text, "{}{word:#x}", if index == 0 { "" } else { "," });
    }
    text.push(']');
    text
}

fn enough_traps(fixture: &mut Fixture) -> Outcome {
    let (parameters, reports) = reports(fixture)?;
    for report in &reports {
        println!("     {}", summary(report, parameters.seed));
        println!("{}", result_line(report, parameters.seed));
    }
    let [primary, partner] = reports;
    let time_limited = parameters.seconds != 0;
    let counted = |r: &FuzzReport| r.calls == r.completed + r.errors.iter().sum::<u64>();
    ensure(
        "the traps the primary made (and the partner, racing it)",
        (primary.traps == parameters.traps || (time_limited && primary.traps > 0))
            && partner.traps > 0
            && counted(&primary)
            && counted(&partner),
        "as many as asked, each random trap counted once",
        format!(
            "primary {} of {} ({} random: {} completed, {} errors), partner {}",
            primary.traps,
            parameters.traps,
            primary.calls,
            primary.completed,
            primary.errors.iter().sum::<u64>(),
            partner.traps
        ),
    )
}

/// Both processes' count of violations of `kinds`.
fn violations(reports: &[FuzzReport; 2], kinds: &[Violation]) -> u64 {
    reports
        .iter()
        .map(|report| {
            kinds
                .iter()
                .map(|kind| report.violations[*kind as usize])
                .sum::<u64>()
        })
        .sum()
}

/// No violation of `kinds` in either process; the first one if there is.
fn no_violations(fixture: &mut Fixture, what: &str, kinds: &[Violation]) -> Outcome {
    let (parameters, reports) = reports(fixture)?;
    let count = violations(&reports, kinds);
    if count == 0 {
        return Ok(());
    }
    let first = reports
        .iter()
        .filter(|report| {
            kinds
                .iter()
                .any(|kind| report.violations[*kind as usize] > 0)
        })
        .map(|report| result_line(report, parameters.seed))
        .next()
        .unwrap_or_default();
    Err(Failure::new(
        what,
        "none",
        format!("{count} (the first of all in that process: {first})"),
    ))
}

fn conventions_kept(fixture: &mut Fixture) -> Outcome {
    no_violations(
        fixture,
        "results that broke the return conventions",
        &[Violation::Convention],
    )
}

/// At least this many of the random traps send a capability function
/// with well-formed registers to a target that must refuse it.
const CAPABILITY_TRAPS: u64 = 1000;

fn capabilities_refused(fixture: &mut Fixture) -> Outcome {
    let (parameters, reports) = reports(fixture)?;
    let traps: u64 = reports.iter().map(|r| r.capability_traps).sum();
    if parameters.traps >= FULL_RUN {
        ensure(
            "well-formed capability-function traps to other targets",
            traps >= CAPABILITY_TRAPS,
            "at least 1000",
            traps,
        )?;
    }
    no_violations(
        fixture,
        "capability-function traps not refused by their target (ABI.md §6)",
        &[Violation::Capability],
    )
}

fn capability_bodies_reached(fixture: &mut Fixture) -> Outcome {
    let (parameters, [primary, partner]) = reports(fixture)?;
    expect_eq(
        "capability functions the partner (no capability) completed",
        partner.capability_completed,
        [0; CAPABILITY_BODIES],
    )?;
    if parameters.traps < FULL_RUN {
        return Ok(());
    }
    ensure(
        "DOOR_CREATE, SPAWN, ARCHIVE_READ the primary completed",
        primary.capability_completed.iter().all(|count| *count > 0),
        "each at least once",
        format!("{:?}", primary.capability_completed),
    )
}

fn racing_actions_ran(fixture: &mut Fixture) -> Outcome {
    let (parameters, reports) = reports(fixture)?;
    if parameters.traps < FULL_RUN {
        return Ok(());
    }
    let total = |f: fn(&FuzzReport) -> u64| reports.iter().map(f).sum::<u64>();
    let missing: Vec<&str> = Action::ALL
        .iter()
        .filter(|action| {
            reports
                .iter()
                .map(|r| r.actions[**action as usize])
                .sum::<u64>()
                == 0
        })
        .map(|action| action.name())
        .collect();
    ensure(
        "racing actions of each kind (both processes), threads replaced and reaped",
        missing.is_empty() && total(|r| r.respawns) > 0 && total(|r| r.reaped) > 0,
        "each at least once",
        format!(
            "none of {missing:?}; {} respawns, {} reaped",
            total(|r| r.respawns),
            total(|r| r.reaped)
        ),
    )
}

fn server_side_reached(fixture: &mut Fixture) -> Outcome {
    let (parameters, reports) = reports(fixture)?;
    let total = |f: fn(&FuzzReport) -> u64| reports.iter().map(f).sum::<u64>();
    let counts = [
        total(|r| r.received),
        total(|r| r.replied),
        total(|r| r.abandoned),
        total(|r| r.server_exits),
    ];
    let enough = if parameters.traps >= FULL_RUN {
        counts.iter().all(|count| *count > 0)
    } else {
        counts[0] > 0
    };
    ensure(
        "messages received, replies delivered, abandoned, server exits holding one",
        enough,
        "each at least once",
        format!("{counts:?}"),
    )
}

fn rights_never_grew(fixture: &mut Fixture) -> Outcome {
    let (_, reports) = reports(fixture)?;
    let checked: u64 = reports.iter().map(|r| r.rights_checked).sum();
    ensure("rights the oracle checked", checked > 0, "some", checked)?;
    no_violations(
        fixture,
        "rights that grew",
        &[Violation::Rights, Violation::Duplicate, Violation::Transfer],
    )
}

fn cookies_only_by_reply(fixture: &mut Fixture) -> Outcome {
    let (_, reports) = reports(fixture)?;
    let checked: u64 = reports.iter().map(|r| r.cookies_checked).sum();
    ensure("cookies the servers checked", checked > 0, "some", checked)?;
    no_violations(
        fixture,
        "cookies no fuzzer server set",
        &[Violation::Cookie],
    )
}

fn calls_ended_once(fixture: &mut Fixture) -> Outcome {
    no_violations(
        fixture,
        "traps that returned twice or with another call's reply, calls that never ended",
        &[
            Violation::DoubleReturn,
            Violation::WrongReply,
            Violation::NeverEnded,
        ],
    )
}

fn fuzzers_set_up(fixture: &mut Fixture) -> Outcome {
    no_violations(fixture, "setup failures", &[Violation::Setup])
}

fn fuzzer_echo_answered(fixture: &mut Fixture) -> Outcome {
    let (_, reports) = reports(fixture)?;
    for report in reports {
        let check = report.echo_check;
        ensure(
            "a fuzzer's ECHO through its kept reference",
            check == ECHO_ANSWERED,
            "the data back",
            match check >> 32 {
                1 => format!(
                    "error {}",
                    Error::from_number(check as u32).map_or("(server error)", Error::name)
                ),
                _ => format!("a wrong answer (msgRetVal {})", check as u32),
            },
        )?;
    }
    Ok(())
}

fn fuzzers_exited(fixture: &mut Fixture) -> Outcome {
    let outcome = outcome(fixture)?;
    expect_error(
        "the second REPORT call on the primary's lifeline",
        outcome.primary.second_call,
        Error::PeerDied,
    )?;
    expect_error(
        "the second REPORT call on the partner's lifeline",
        outcome.partner.second_call,
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
    let counts = |c: &KernelCounters| {
        (
            c.processes,
            c.threads,
            c.objects,
            c.descriptors,
            c.charged_bytes,
        )
    };
    expect_eq(
        "processes, threads, objects, descriptors, charged bytes (before the fuzzers, after them)",
        counts(&after),
        counts(&before),
    )?;
    ensure(
        "free frames",
        after.free_frames + FRAME_SLACK >= before.free_frames,
        "back within 256 frames of the start",
        format!("{} before, {} after", before.free_frames, after.free_frames),
    )
}
