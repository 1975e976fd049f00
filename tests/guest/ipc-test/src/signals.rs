//! Interruptions and signals against IPC (ABI.md §6.10): the stress test.
//! Client threads call a server thread of the same process without pause
//! while the test sends 100,000 THREAD_INTERRUPTs (half of them with a
//! signal their handlers take) to clients and server alike, blocked or
//! running. Every call must end exactly once: answered, INTERRUPTED before
//! the server saw it (arg2 0), or INTERRUPTED while served (CALL_RECEIVED),
//! which the server's REPLY must see as CALLER_GONE; and the kernel's
//! counters must be where they were.
//!
//! The count is exact, never a duration: `signal-interruptions=N` on the
//! command line replaces it (the KVM boot cases use fewer, since a trap
//! costs some 0.75 ms under this machine's nested KVM; TCG runs all of
//! them in about a second). It must never spin on a lock a handler could
//! hold, nor give its workers a stack a handler frame on top of a call
//! could overflow.

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use abi::function::Function;
use abi::trap::CALL_RECEIVED;
use abi::upcall::UpcallFrame;
use abi::{Descriptor, Error, TrapArgs};
use userlib::kernel::{self, DoorKind};
use userlib::raw::Buffer;
use userlib::upcall;

use crate::check::{Check, Failure, Outcome, Setup};
use crate::fixture::Fixture;

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[Check {
    name: "signals: 100,000 interruptions (or signal-interruptions=N) of clients and a server in IPC; every call ends once (answered, INTERRUPTED unseen, or CALL_RECEIVED against the server's CALLER_GONE); counters back",
    run: stress,
}];

/// Interruptions sent, unless the command line says otherwise.
pub const INTERRUPTIONS: u64 = 100_000;
/// The command-line word that sets another count.
const COUNT_KEY: &str = "signal-interruptions";

/// The count `signal-interruptions=N` on `cmdline` asks for (decimal), if
/// any; the word itself when N is not a number above 0.
pub fn parse_command_line(cmdline: &str) -> Result<Option<u64>, &str> {
    let mut found = None;
    for word in cmdline.split_ascii_whitespace() {
        if let Some(value) = word
            .strip_prefix(COUNT_KEY)
            .and_then(|w| w.strip_prefix('='))
        {
            let count = value.parse::<u64>().ok().filter(|n| *n > 0).ok_or(word)?;
            found = Some(count);
        }
    }
    Ok(found)
}
/// Client threads.
const CLIENTS: usize = 3;
/// A worker's stack: a `Buffer::new` passes its page through the stack,
/// and handler frames go on top of whatever call was interrupted.
const WORKER_STACK: usize = 64 * 1024;
/// The signal half the interruptions carry.
const SIGNAL: u32 = 20;
/// The call clients make, and the one that ends the server.
const CALL: Function = Function(abi::function::USER_BASE);
const QUIT: Function = Function(abi::function::USER_BASE + 1);

/// Handler runs, every thread together.
static HANDLED: AtomicU64 = AtomicU64::new(0);

fn count(_signal: u32, _info: u64, _frame: &mut UpcallFrame) {
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

#[derive(Default)]
struct ClientCounts {
    calls: AtomicU64,
    answered: AtomicU64,
    unseen: AtomicU64,
    received: AtomicU64,
    other: AtomicU64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    ready: AtomicU64,
    done: AtomicU64,
    clients: [ClientCounts; CLIENTS],
    served: AtomicU64,
    replied: AtomicU64,
    caller_gone: AtomicU64,
    receive_interrupted: AtomicU64,
    server_other: AtomicU64,
}

fn value(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

fn client(shared: Arc<Shared>, index: usize, door: Descriptor, start: Descriptor, end: Descriptor) {
    let mut buffer = Buffer::new();
    let counts = &shared.clients[index];
    let _ = upcall::register_thread(None);
    shared.ready.fetch_add(1, Ordering::SeqCst);
    let _ = upcall::retry(|| kernel::event_wait(start));
    while !shared.stop.load(Ordering::SeqCst) {
        buffer.put_value(0, &(index as u64));
        counts.calls.fetch_add(1, Ordering::SeqCst);
        let result = buffer.send(CALL, door, abi::message::sizes(64, 8, 0));
        let counter = match result.kernel_error() {
            None if result == TrapArgs::completed(0, 0, 0, 0) => &counts.answered,
            Some(Error::Interrupted) if result.arg2 == 0 => &counts.unseen,
            Some(Error::Interrupted) if result.arg2 == CALL_RECEIVED => &counts.received,
            _ => &counts.other,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
    shared.done.fetch_add(1, Ordering::SeqCst);
    let _ = upcall::retry(|| kernel::event_wait(end));
}

fn server(shared: Arc<Shared>, owner: Descriptor, end: Descriptor) {
    let mut buffer = Buffer::new();
    let _ = upcall::register_thread(None);
    shared.ready.fetch_add(1, Ordering::SeqCst);
    loop {
        let received = buffer.receive(owner, 64);
        if received.kernel_error() == Some(Error::Interrupted) {
            shared.receive_interrupted.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        if received.value() == -1 {
            shared.server_other.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        shared.served.fetch_add(1, Ordering::SeqCst);
        let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
        let counter = match replied.kernel_error() {
            None => &shared.replied,
            Some(Error::CallerGone) => &shared.caller_gone,
            Some(_) => &shared.server_other,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        if received.arg0 == QUIT.bits() {
            break;
        }
    }
    let _ = upcall::retry(|| kernel::event_wait(end));
}

fn wait_for(counter: &AtomicU64, target: u64) -> Result<(), Failure> {
    for _ in 0..10_000_000u32 {
        if value(counter) >= target {
            return Ok(());
        }
        let _ = kernel::yield_now();
    }
    Err(Failure::new(
        "the worker threads",
        format!("{target} of them"),
        value(counter),
    ))
}

fn stress(fixture: &mut Fixture) -> Outcome {
    let interruptions = match fixture.signal_interruptions {
        0 => INTERRUPTIONS,
        n => n,
    };
    HANDLED.store(0, Ordering::SeqCst);
    upcall::set_handler(SIGNAL, Some(count));
    let door = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
    let start = kernel::event_create().setup("EVENT_CREATE")?;
    let end = kernel::event_create().setup("EVENT_CREATE")?;
    let shared = Arc::new(Shared::default());
    let mut handles = Vec::new();
    let (client_door, start_event, end_event) = (
        door.client.descriptor(),
        start.descriptor(),
        end.descriptor(),
    );
    for index in 0..CLIENTS {
        let shared = shared.clone();
        let handle = userlib::spawn_thread(
            move || client(shared, index, client_door, start_event, end_event),
            WORKER_STACK,
        )
        .setup("a client thread")?;
        handles.push(handle);
    }
    let owner = door.owner.descriptor();
    let s = shared.clone();
    let server_handle = userlib::spawn_thread(move || server(s, owner, end_event), WORKER_STACK)
        .setup("the server thread")?;
    wait_for(&shared.ready, CLIENTS as u64 + 1)?;
    let before = kernel::counters().setup("COUNTERS")?;
    for _ in 0..CLIENTS {
        kernel::event_signal(start_event).setup("EVENT_SIGNAL")?;
    }
    let targets: Vec<Descriptor> = handles
        .iter()
        .map(|h| h.descriptor())
        .chain([server_handle.descriptor()])
        .collect();
    let mut refused = 0u32;
    for i in 0..interruptions {
        let target = targets[i as usize % targets.len()];
        let signal = if i % 2 == 0 { 0 } else { SIGNAL };
        if upcall::interrupt(target, signal, i).is_err() {
            refused += 1;
        }
        if i % 8 == 7 {
            let _ = kernel::yield_now();
        }
    }
    shared.stop.store(true, Ordering::SeqCst);
    wait_for(&shared.done, CLIENTS as u64)?;
    // Ends the server (a call no interruption reaches any more).
    let mut quit = Buffer::new();
    let ended = upcall::retry(|| {
        let r = quit.send(QUIT, client_door, abi::message::sizes(64, 0, 0));
        match r.kernel_error() {
            Some(e) => Err(e),
            None => Ok(r),
        }
    });
    crate::check::expect_eq("the QUIT call", ended.map(|_| ()), Ok(()))?;
    // QUIT's answer reaches us as soon as the server's REPLY made it; the
    // server counts that REPLY after it, maybe on another CPU, and then
    // blocks: settle waits for that.
    crate::fixture::settle();
    let after = kernel::counters().setup("COUNTERS")?;
    for _ in 0..=CLIENTS {
        kernel::event_signal(end_event).setup("EVENT_SIGNAL")?;
    }
    upcall::set_handler(SIGNAL, None);
    // The judgement.
    let sum = |f: fn(&ClientCounts) -> &AtomicU64| {
        shared.clients.iter().map(|c| value(f(c))).sum::<u64>()
    };
    let (calls, answered, unseen, received, other) = (
        sum(|c| &c.calls),
        sum(|c| &c.answered),
        sum(|c| &c.unseen),
        sum(|c| &c.received),
        sum(|c| &c.other),
    );
    let report = format!(
        "{interruptions} interruptions, {calls} calls: {answered} answered, {unseen} INTERRUPTED unseen, {received} CALL_RECEIVED, {other} other; server: {} served, {} replied, {} CALLER_GONE, {} RECEIVE interrupted, {} other; {} handler runs; {refused} refused",
        value(&shared.served),
        value(&shared.replied),
        value(&shared.caller_gone),
        value(&shared.receive_interrupted),
        value(&shared.server_other),
        value(&HANDLED),
    );
    userlib::println!("ipc-test: signals: {report}");
    let consistent = refused == 0
        && other == 0
        && value(&shared.server_other) == 0
        && calls == answered + unseen + received
        && value(&shared.replied) == answered + 1
        && value(&shared.caller_gone) == received
        && value(&shared.served) == value(&shared.replied) + value(&shared.caller_gone)
        && unseen + received > 0
        && value(&HANDLED) > 0;
    if !consistent {
        return Err(Failure::new(
            "every call ending exactly once",
            "consistent counts",
            report,
        ));
    }
    if before != after {
        return Err(Failure::new(
            "COUNTERS",
            format!("{before:?}"),
            format!("{after:?}"),
        ));
    }
    Ok(())
}
