//! procman-test: the in-guest test of the process manager. Boot with
//! `init=procman run=procman-test qemu-exit`: procman starts the manifest's
//! servers and this program (domain `tests`), and ends the machine with its
//! exit status.
//!
//! It proves each allowed and each refused operation of the policy from
//! processes in different domains (the `procman-probe` binary, listed in the
//! manifest once per domain), that refusals change nothing, that names
//! vanish with their owner, and, with a churn of spawn / open / exit cycles,
//! that the kernel's counters come back to where they were.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::function::{Function, SYSTEM_BASE, USER_BASE};
use abi::procman::ProcmanError;
use abi::{DescriptorSlot, Error, Rights};
use alloc::format;
use alloc::string::String;
use tally::{Lines, Tally};
use userlib::{CallError, Event, Message, Startup, call, println, procman};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// Spawn / open / exit cycles after the warm-up.
const CHURN_CYCLES: u32 = 1000;
/// Cycles before the baseline is taken: procman keeps the status of the last
/// 256 ended processes, so its own memory settles after that many.
const WARM_UP_CYCLES: u32 = 300;
/// The `test` security type (manifest `types`: echo = 1, bench = 2, test = 3).
const TEST_TYPE: u32 = 3;

/// [`Tally::expect`] of a status.
fn expect_status(r: &mut Tally, name: &str, expected: i32, got: i32) {
    r.expect(
        name,
        expected == got,
        format!("expected status {expected:#x}, got {got:#x}"),
    );
}

fn code(e: ProcmanError) -> i32 {
    e as i32
}

fn call_status<T>(result: Result<T, CallError>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(CallError::Server(code)) => code as i32,
        Err(CallError::Kernel(error)) => error as i32,
    }
}

/// Runs `probe` (a probe program, i.e. a domain) with `argument`; its exit status.
fn probe(probe: &str, argument: &str) -> i32 {
    probe_with(probe, argument, &[])
}

fn probe_with(probe: &str, argument: &str, descriptors: &[DescriptorSlot]) -> i32 {
    match procman::spawn(probe, argument.as_bytes(), descriptors) {
        Ok(pid) => match procman::wait(pid) {
            Ok(status) => status as i32,
            Err(error) => {
                println!("procman-test: WAIT {pid} failed: {error}");
                -1
            }
        },
        Err(error) => {
            println!("procman-test: SPAWN {probe} failed: {error}");
            -1
        }
    }
}

fn listing(directory: &str) -> String {
    match procman::list(directory) {
        Ok((names, _)) => names.join(","),
        Err(error) => format!("error {error}"),
    }
}

fn counters() -> Option<abi::kcall::KernelCounters> {
    userlib::kernel::counters().ok()
}

fn run(_startup: Startup) -> i32 {
    let mut r = Tally::new("procman-test", Lines::Bare);
    let users = "probe-users";
    let servers = "probe-servers";

    // The echo server (started by procman) registers /srv/echo; wait for it.
    let mut echo_up = false;
    for _ in 0..1000 {
        if listing("/srv").split(',').any(|n| n == "echo") {
            echo_up = true;
            break;
        }
        let _ = userlib::kernel::yield_now();
    }
    r.expect(
        "echo registered /srv/echo at boot",
        echo_up,
        listing("/srv"),
    );

    // Objects of our own (domain tests): a test-type name others may not open.
    let secret = procman::create_object(Some("/test/secret"), false, TEST_TYPE);
    expect_status(
        &mut r,
        "tests may create a test-type object under /test/",
        0,
        call_status(secret.as_ref().map(drop).map_err(|e| *e)),
    );
    let system = procman::create_object(Some("/test/system"), true, TEST_TYPE);
    expect_status(
        &mut r,
        "tests may create a system object",
        0,
        call_status(system.as_ref().map(drop).map_err(|e| *e)),
    );

    // Function ranges follow the object kind.
    if let (Ok(user_object), Ok(system_object)) = (&secret, &system) {
        let mut message = Message::new();
        let into_system = call(
            system_object.client.descriptor(),
            Function(USER_BASE),
            &mut message,
        );
        expect_status(
            &mut r,
            "a system object refuses USER_BASE functions",
            Error::FunctionOutOfRange as i32,
            call_status(into_system),
        );
        let mut message = Message::new();
        let into_user = call(
            user_object.client.descriptor(),
            Function(SYSTEM_BASE),
            &mut message,
        );
        expect_status(
            &mut r,
            "a user object refuses SYSTEM_BASE functions",
            Error::FunctionOutOfRange as i32,
            call_status(into_user),
        );
    }

    // Domain users: may open echo objects, nothing else.
    expect_status(
        &mut r,
        "users may not create objects",
        code(ProcmanError::CreateDenied),
        probe(users, "create:/srv/u"),
    );
    expect_status(
        &mut r,
        "users may not create system objects (create is checked first)",
        code(ProcmanError::CreateDenied),
        probe(users, "create-system:/srv/u"),
    );
    expect_status(
        &mut r,
        "users may open an echo object",
        0,
        probe(users, "open:/srv/echo"),
    );
    expect_status(
        &mut r,
        "users may not open a test object",
        code(ProcmanError::OpenDenied),
        probe(users, "open:/test/secret"),
    );
    expect_status(
        &mut r,
        "opening a missing name",
        code(ProcmanError::NoSuchName),
        probe(users, "open:/srv/none"),
    );
    expect_status(
        &mut r,
        "opening a malformed name",
        code(ProcmanError::BadName),
        probe(users, "open:srv"),
    );
    expect_status(
        &mut r,
        "users may not spawn",
        code(ProcmanError::SpawnDenied),
        probe(users, "spawn:echo-client"),
    );
    expect_status(
        &mut r,
        "only the owner unlinks a name",
        code(ProcmanError::NotNameOwner),
        probe(users, "unlink:/srv/echo"),
    );

    // Domain servers: user objects of type echo under /srv/.
    expect_status(
        &mut r,
        "servers may create a user object under /srv/",
        0,
        probe(servers, "create:/srv/s1"),
    );
    expect_status(
        &mut r,
        "servers may not create system objects",
        code(ProcmanError::SystemObjectDenied),
        probe(servers, "create-system:/srv/s2"),
    );
    expect_status(
        &mut r,
        "servers may not register outside /srv/",
        code(ProcmanError::NameDenied),
        probe(servers, "create:/dev/s3"),
    );
    expect_status(
        &mut r,
        "a taken name is refused",
        code(ProcmanError::NameExists),
        probe(servers, "create:/srv/echo"),
    );
    expect_status(
        &mut r,
        "servers may not create test-type objects",
        code(ProcmanError::TypeDenied),
        probe(servers, &format!("create-type:{TEST_TYPE}:/srv/s4")),
    );
    expect_status(
        &mut r,
        "servers may create anonymous echo objects",
        0,
        probe(servers, "create-anonymous:1"),
    );
    expect_status(
        &mut r,
        "servers may not open anything",
        code(ProcmanError::OpenDenied),
        probe(servers, "open:/srv/echo"),
    );

    // The names of the dead vanish: /srv/s1's creator has exited.
    r.expect(
        "an exited creator's name is gone",
        !listing("/srv").split(',').any(|n| n == "s1"),
        listing("/srv"),
    );

    // A name lives exactly as long as its owner.
    match Event::create() {
        Ok(release) => {
            let slot = DescriptorSlot::copy(
                release.descriptor().descriptor(),
                Rights(Rights::WAIT.0 | Rights::TRANSFER.0),
            );
            match procman::spawn(servers, b"hold:/srv/held", &[slot]) {
                Ok(pid) => {
                    let mut seen = false;
                    for _ in 0..1000 {
                        if listing("/srv").split(',').any(|n| n == "held") {
                            seen = true;
                            break;
                        }
                        let _ = userlib::kernel::yield_now();
                    }
                    r.expect("a live owner's name is listed", seen, listing("/srv"));
                    let _ = release.signal();
                    let status = procman::wait(pid).map(|s| s as i32).unwrap_or(-1);
                    expect_status(&mut r, "the holder exits cleanly", 0, status);
                    r.expect(
                        "its name vanished with it",
                        !listing("/srv").split(',').any(|n| n == "held"),
                        listing("/srv"),
                    );
                }
                Err(error) => r.expect("spawn the holder", false, format!("{error}")),
            }
        }
        Err(error) => r.expect("create the release event", false, format!("{error}")),
    }

    // Listing, unlinking, unknown programs and processes.
    let root = listing("/");
    r.expect(
        "the root lists its directories",
        root.contains("srv/") && root.contains("test/"),
        root,
    );
    expect_status(
        &mut r,
        "the owner unlinks its name",
        0,
        call_status(procman::unlink("/test/secret")),
    );
    expect_status(
        &mut r,
        "an unlinked name is gone",
        code(ProcmanError::NoSuchName),
        call_status(procman::open("/test/secret")),
    );
    expect_status(
        &mut r,
        "spawning a missing program",
        code(ProcmanError::NoSuchProgram),
        call_status(procman::spawn("nothing", b"", &[])),
    );
    expect_status(
        &mut r,
        "waiting for a missing process",
        code(ProcmanError::NoSuchProcess),
        call_status(procman::wait(0xdead)),
    );

    // Refusals change nothing.
    let before = (counters(), listing("/"), listing("/srv"));
    for _ in 0..10 {
        let _ = procman::create_object(Some("/srv/echo"), false, 1);
        let _ = procman::open("/srv/none");
        let _ = procman::unlink("/srv/echo");
    }
    let after = (counters(), listing("/"), listing("/srv"));
    r.expect(
        "refused requests change nothing",
        before.0.is_some() && before == after,
        format!("{before:?} vs {after:?}"),
    );

    // Churn: spawn / open / exit; the kernel's counters come back.
    let mut failures = 0;
    for _ in 0..WARM_UP_CYCLES {
        failures += u32::from(probe(users, "open:/srv/echo") != 0);
    }
    let baseline = counters();
    let started = userlib::kernel::clock().ok();
    for _ in 0..CHURN_CYCLES {
        failures += u32::from(probe(users, "open:/srv/echo") != 0);
    }
    let finished = userlib::kernel::clock().ok();
    let end = counters();
    // The cost of a spawn / open / exit cycle, for the record (not a
    // check: it depends on the machine).
    if let (Some(a), Some(b)) = (started, finished) {
        println!(
            "procman-test: {CHURN_CYCLES} churn cycles took {} ticks at {} Hz",
            b.ticks - a.ticks,
            b.hz
        );
    }
    r.expect(
        "every churn cycle spawned, opened and exited",
        failures == 0,
        format!(
            "{failures} of {} cycles failed",
            WARM_UP_CYCLES + CHURN_CYCLES
        ),
    );
    match (baseline, end) {
        (Some(b), Some(e)) => {
            let same = (
                b.processes,
                b.threads,
                b.objects,
                b.descriptors,
                b.charged_bytes,
            ) == (
                e.processes,
                e.threads,
                e.objects,
                e.descriptors,
                e.charged_bytes,
            );
            r.expect(
                &format!("after {CHURN_CYCLES} cycles the kernel's counters are back"),
                same,
                format!("before {b:?}, after {e:?}"),
            );
        }
        _ => r.expect("COUNTERS", false, String::from("unavailable")),
    }
    r.expect(
        "the namespace holds nothing of the dead",
        listing("/srv") == "echo",
        listing("/srv"),
    );

    r.summary()
}
