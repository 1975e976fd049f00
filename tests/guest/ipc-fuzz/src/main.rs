//! ipc-fuzz: racing threads in two processes making random traps and
//! racing actions against shared descriptors, buffers and doors, with a
//! semantic oracle; the kernel must answer every trap with a result or an
//! error, never a panic, a hang or damage to another process, and keep the
//! ABI's promises while it does. The protocol with `ipc-test` (arguments,
//! initial descriptors, report) is in `lib.rs`.
//!
//! Each process has:
//! - *workers* (2 to 4 by the seed in the primary, 2 in the partner), each drawing trap numbers from the
//!   process's counter and making a random trap or a racing action for each
//!   (`worker.rs`): the workers share the descriptor table and the arena,
//!   and the two processes share doors (each calls the other's served door
//!   and its fodder door) and two events;
//! - 2 *server threads* (`server.rs`) serving [`SERVE`] with real held
//!   messages;
//! - the *coordinator* (this file, the first thread): it starts the
//!   threads, replaces those that end (reaping each through the reaper
//!   door, so its stack can be unmapped), refreshes the fodder, breaks
//!   stalls (when no racing thread's trap returned for a while it closes
//!   the fodder's owner references and signals the alarm), stops the run
//!   and tears it down: it closes every descriptor but the kept ones,
//!   which must end every call still waiting (a call that does not end
//!   within [`TEARDOWN_TICKS`] is a violation: the slot shows its trap).
//!
//! Interleavings come from the timer and the IPC handoffs, and vary with
//! the seed through the threads' choices (YIELDs among them). The oracle
//! (`context.rs`, `worker.rs`, `server.rs`): return conventions; rights
//! never grow (every DESCRIPTOR_INFO within what a reference of its kind
//! can hold, the kept and initial descriptors exactly as given, DUPLICATE
//! and transferred slots exactly as asked); cookies are only ever 0 or set
//! by a fuzzer server's REPLY; every trap returns exactly once, and every
//! call ends once what it waits for is gone. Each violation is recorded
//! with the trap number and the thread's slot, and printed with the seed.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod context;
mod rng;
mod server;
mod shared;
mod worker;

use core::sync::atomic::Ordering;

use abi::function::USER_BASE;
use abi::kcall::{DEFAULT_PRIORITY, REPLY_PAYLOAD_OFFSET};
use abi::message::MAX_TOTAL_SIZE;
use abi::{Descriptor, Error, Function, KernelFunction, PAGE_BYTES, Rights, TrapArgs};
use ipc_fuzz::{
    ALARM, BELL, ECHO, ECHO_ANSWERED, ECHO_KERNEL_ERROR, ECHO_WRONG_ANSWER, FuzzArguments,
    FuzzReport, LAST_FODDER, LAYOUT, LIFELINE, OTHER_SERVED, OWN_SERVED, PROGRAM, REAPER_CLIENT,
    REAPER_OWNER, REPORT, Role, SERVE, STOP, Violation, is_kept,
};
use spin::Once;
use userlib::raw::Buffer;
use userlib::thread::RawEntry;
use userlib::{Message, Startup, kernel, println};
use zerocopy::FromBytes;

use crate::context::{Context, entry_of};
use crate::rng::mix;
use crate::shared::{Arena, SLOTS, Shared, SlotKind, SlotState};
use crate::worker::{End, MAP_PLAYGROUND, PLAYGROUND_SIZE};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The process's shared state, set once before any thread starts.
static SHARED: Once<Shared> = Once::new();

/// The coordinator's slot in [`Shared::slots`] (no thread is started in it).
const COORDINATOR: usize = SLOTS - 1;
/// A racing thread's stack.
const STACK: u64 = 32 * 1024;
/// Every this many ticks the coordinator refreshes the fodder list,
/// checks the kept descriptors and clears the playground.
const REFRESH_TICKS: u64 = 8;
/// No racing thread's trap returned for this many ticks: a stall.
const STALL_TICKS: u64 = 30;
/// The teardown's limit: every call must have ended by then.
const TEARDOWN_TICKS: u64 = 1000;
/// Descriptors the coordinator sweeps (closes, but for the kept ones).
const SWEEP_TOP: u32 = 96;
/// The primary prints a progress line every this many traps.
const PROGRESS_EVERY: u64 = 1_000_000;

/// The entry of each slot's threads.
static ENTRIES: [RawEntry; SLOTS - 1] = [
    slot_entry(0),
    slot_entry(1),
    slot_entry(2),
    slot_entry(3),
    slot_entry(4),
    slot_entry(5),
    slot_entry(6),
];

const fn slot_entry(slot: u64) -> RawEntry {
    RawEntry {
        function: thread_entry,
        argument: slot,
    }
}

/// The partner's thread that waits for [`STOP`].
static WATCHER: RawEntry = RawEntry {
    function: watch_stop,
    argument: 0,
};

/// The thread that rings [`BELL`] when everything is blocked.
static TICKER: RawEntry = RawEntry {
    function: idle_ticker,
    argument: 0,
};

fn shared() -> &'static Shared {
    SHARED.get().unwrap_or_else(|| kernel::process_exit(3))
}

fn run(startup: Startup) -> i32 {
    let Some(arguments) = FuzzArguments::read_from_bytes(startup.arguments).ok() else {
        // A random SPAWN of this program by a fuzzer: nothing to do.
        return 2;
    };
    let Some(role) = arguments.role() else {
        return 2;
    };
    if startup.descriptors != arguments.initial_descriptors() {
        println!(
            "{PROGRAM}: started with {} descriptors, expected {}",
            startup.descriptors,
            arguments.initial_descriptors()
        );
        return 2;
    }
    let arena = match Arena::map() {
        Ok(arena) => arena,
        Err(error) => {
            println!("{PROGRAM}: cannot map the arena: {error}");
            return 2;
        }
    };
    // The primary races with 2 to 4 workers (by the seed), the partner
    // with 2: it only has to keep the primary's doors and events busy.
    let workers = match role {
        Role::Primary => 2 + (mix(arguments.seed) % 3) as usize,
        Role::Partner => 2,
    };
    let shared = SHARED.call_once(|| Shared::new(arguments, role, arena, workers));
    let mut cx = Context::new(shared, COORDINATOR, 0);
    check_initial(&mut cx);
    let started = cx.clock().unwrap_or(0);
    if role == Role::Partner {
        match userlib::thread::spawn_raw(&WATCHER, 16 * 1024, DEFAULT_PRIORITY) {
            Ok(handle) => drop(handle),
            Err(error) => {
                println!("{PROGRAM}: cannot start the stop watcher: {error}");
                setup_failed(&mut cx, 1);
            }
        }
    }
    match userlib::thread::spawn_raw(&TICKER, 16 * 1024, DEFAULT_PRIORITY - 1) {
        Ok(handle) => drop(handle),
        Err(error) => {
            println!("{PROGRAM}: cannot start the idle ticker: {error}");
            setup_failed(&mut cx, 4);
        }
    }
    coordinate(&mut cx, started);
    teardown(&mut cx, started);
    let mut report = shared.report();
    report.add(&cx.counts);
    report.traps = shared.next_trap.load(Ordering::SeqCst).min(shared.budget);
    report.ticks = cx.clock().unwrap_or(started).saturating_sub(started);
    report.echo_check = check_echo();
    answer_the_lifeline(&report)
}

/// Records that the fuzzer could not set something up.
fn setup_failed(cx: &mut Context, what: u64) {
    cx.violation(Violation::Setup, TrapArgs::default(), [what, 0, 0, 0]);
}

/// The initial descriptors must be exactly what `ipc-test` gave
/// ([`LAYOUT`]): the rights oracle starts from them.
fn check_initial(cx: &mut Context) {
    let count = cx.shared.args.initial_descriptors();
    for descriptor in 1..=count {
        let expected = LAYOUT[(descriptor - 1) as usize];
        let info = cx.info(descriptor);
        let exact = info
            .is_ok_and(|info| info.kind == Some(expected.kind) && info.rights == expected.rights);
        if !exact {
            let seen = info.map_or(u64::MAX, |info| {
                u64::from(info.rights.0) | info.kind.map_or(0, |kind| (kind as u64) << 32)
            });
            cx.violation(
                Violation::Rights,
                entry_of(KernelFunction::DescriptorInfo, Descriptor(descriptor)),
                [u64::from(descriptor), seen, u64::from(expected.rights.0), 0],
            );
        }
    }
}

/// Starts the threads and keeps them going until the run stops.
fn coordinate(cx: &mut Context, started: u64) {
    let shared = cx.shared;
    let limit = shared.args.ticks;
    let mut next_refresh = 0;
    let mut last_progress = (u64::MAX, started);
    let mut next_report = PROGRESS_EVERY;
    loop {
        reap(cx);
        start_threads(cx);
        cx.counts.rounds += 1;
        // Until a worker (of either process), the idle ticker or the end
        // of the run rings.
        if kernel::event_wait(BELL).is_err() {
            let _ = kernel::yield_now();
        }
        let now = cx.clock().unwrap_or(0);
        if limit != 0 && now.saturating_sub(started) >= limit {
            shared.request_stop();
        }
        if shared.next_trap.load(Ordering::SeqCst) >= shared.budget {
            shared.request_stop();
        }
        if shared.stopping() {
            return;
        }
        if now >= next_refresh {
            refresh(cx);
            next_refresh = now + REFRESH_TICKS;
        }
        let progress = shared.progress.load(Ordering::SeqCst);
        if progress != last_progress.0 {
            last_progress = (progress, now);
        } else if now.saturating_sub(last_progress.1) >= STALL_TICKS {
            break_stall(cx);
            last_progress = (progress, now);
        }
        let traps = shared.next_trap.load(Ordering::SeqCst);
        if shared.role == Role::Primary && traps >= next_report {
            let report = shared.report();
            println!(
                "{PROGRAM}[primary]: {traps} traps, {} violations, {} ticks",
                report.violation_count(),
                now.saturating_sub(started)
            );
            next_report = traps + PROGRESS_EVERY;
        }
    }
}

/// Starts a thread in every free slot (workers first, then servers).
fn start_threads(cx: &mut Context) {
    let shared = cx.shared;
    if shared.stopping() {
        return;
    }
    let threads = shared.workers + shared.servers;
    for (slot, (s, entry)) in shared.slots.iter().zip(&ENTRIES).enumerate().take(threads) {
        if s.state() != SlotState::Free {
            continue;
        }
        let kind = if slot < shared.workers {
            SlotKind::Worker
        } else {
            SlotKind::Server
        };
        s.kind.store(kind as u32, Ordering::SeqCst);
        let incarnation = s.incarnation.fetch_add(1, Ordering::SeqCst);
        s.stack_top.store(0, Ordering::SeqCst);
        s.set_state(SlotState::Running);
        let record = entry_of(KernelFunction::ThreadCreate, Descriptor::NULL);
        match cx.bracket(record, || {
            userlib::thread::spawn_raw(entry, STACK, DEFAULT_PRIORITY)
        }) {
            Ok(handle) => {
                drop(handle);
                if incarnation > 0 {
                    cx.counts.respawns += 1;
                }
            }
            Err(_) => {
                s.set_state(SlotState::Free);
                return;
            }
        }
    }
}

/// Reaps every thread waiting on the reaper door: a call on it is taken
/// by one of them, which exits holding it, so the call fails with
/// PEER_DIED once that thread is gone; then its stack is unmapped.
fn reap(cx: &mut Context) {
    let shared = cx.shared;
    let mut buffer = [0u8; 16];
    while shared.slots[..SLOTS - 1]
        .iter()
        .any(|slot| slot.state() == SlotState::Reaping)
    {
        let entry = TrapArgs::send(
            Function(USER_BASE),
            REAPER_CLIENT,
            0,
            abi::MessageSizes::of(16, 0, 0),
        );
        let result = cx.bracket(entry, || {
            userlib::ipc::send(
                Function(USER_BASE),
                REAPER_CLIENT,
                &mut buffer,
                abi::MessageSizes::of(16, 0, 0),
            )
        });
        let slot = shared.reaped_slot.swap(u32::MAX, Ordering::SeqCst) as usize;
        if result != Err(Error::PeerDied) || slot >= SLOTS - 1 {
            setup_failed(cx, 2);
            return;
        }
        let s = &shared.slots[slot];
        let top = s.stack_top.swap(0, Ordering::SeqCst);
        if top != 0 {
            let entry = entry_of(KernelFunction::Unmap, Descriptor::NULL);
            let _ = cx.bracket(entry, || kernel::unmap(top - STACK, STACK));
        }
        s.set_state(SlotState::Free);
        cx.counts.reaped += 1;
    }
}

/// The entry of a slot's thread: notes where its stack ends (the first
/// frame lies right below the top the stack was mapped with), then runs.
extern "C" fn thread_entry(slot: u64) -> ! {
    let marker = 0u8;
    let address = core::hint::black_box(core::ptr::addr_of!(marker)).addr() as u64;
    run_slot(slot as usize, address)
}

#[inline(never)]
fn run_slot(slot: usize, marker: u64) -> ! {
    let shared = shared();
    let s = &shared.slots[slot];
    let top = marker.next_multiple_of(PAGE_BYTES);
    if top - marker <= 512 {
        s.stack_top.store(top, Ordering::SeqCst);
    }
    let incarnation = s.incarnation.load(Ordering::SeqCst);
    let mut cx = Context::new(shared, slot, incarnation);
    let end = match s.kind() {
        SlotKind::Worker => worker::run(&mut cx),
        SlotKind::Server => server::run(&mut cx),
    };
    shared.add(&cx.counts);
    if end == End::Reap {
        s.set_state(SlotState::Reaping);
        let mut buffer = [0u8; 64];
        for _ in 0..3 {
            if userlib::ipc::receive(REAPER_OWNER, &mut buffer).is_ok() {
                shared.reaped_slot.store(slot as u32, Ordering::SeqCst);
                kernel::thread_exit(0);
            }
        }
        shared.violation(
            Violation::Setup,
            slot,
            shared.current_trap(),
            TrapArgs::default(),
            [3, 0, 0, 0],
        );
    }
    // Gone without being reaped: its stack stays mapped.
    shared.abrupt_exits.fetch_add(1, Ordering::SeqCst);
    s.stack_top.store(0, Ordering::SeqCst);
    s.set_state(SlotState::Free);
    kernel::thread_exit(0)
}

/// The partner's stop watcher: waits for [`STOP`], then stops the run.
extern "C" fn watch_stop(_: u64) -> ! {
    let shared = shared();
    loop {
        match kernel::event_wait(STOP) {
            Ok(_) => break,
            Err(_) => {
                let _ = kernel::yield_now();
            }
        }
    }
    shared.request_stop();
    let _ = kernel::event_signal(BELL);
    kernel::thread_exit(0)
}

/// Runs only when no thread of the normal priority is ready anywhere
/// (everything is blocked): rings [`BELL`] every few ticks, so that the
/// coordinators wake and find the stall.
extern "C" fn idle_ticker(_: u64) -> ! {
    let shared = shared();
    let mut last = 0;
    while !shared.stopping() {
        let _ = kernel::yield_now();
        if let Ok(clock) = kernel::clock()
            && clock.ticks >= last + STALL_TICKS / 3
        {
            last = clock.ticks;
            let _ = kernel::event_signal(BELL);
        }
    }
    kernel::thread_exit(0)
}

/// Finds the fodder's door references again (for the random SENDs), adds
/// a client of echo or a served door when fewer than three are left, checks the kept
/// descriptors, clears the playground and closes what piled up above the
/// kept descriptors.
fn refresh(cx: &mut Context) {
    let shared = cx.shared;
    let mut doors = [0u32; LAST_FODDER as usize];
    let mut count = 0;
    let mut other = 0;
    let mut free = 0;
    for descriptor in 1..=LAST_FODDER {
        match cx.info(descriptor) {
            Ok(info)
                if matches!(
                    info.kind,
                    Some(abi::ObjectKind::UserDoor | abi::ObjectKind::SystemDoor)
                ) && info.rights.contains(Rights::SEND) =>
            {
                doors[count] = descriptor;
                count += 1;
            }
            Ok(_) => other = descriptor,
            Err(_) => free += 1,
        }
    }
    if count < 3 {
        if free == 0 && other != 0 {
            let _ = kernel::close(Descriptor(other));
        }
        let source = cx.rng.pick(&[ECHO, OWN_SERVED, OTHER_SERVED]);
        if let Ok(copy) = kernel::duplicate(source, Rights::DOOR_CLIENT) {
            let descriptor = copy.into_raw().0;
            if descriptor <= LAST_FODDER {
                doors[count] = descriptor;
                count += 1;
            } else {
                let _ = kernel::close(Descriptor(descriptor));
            }
        }
    }
    shared.set_doors(&doors[..count]);
    check_kept(cx);
    let entry = entry_of(KernelFunction::Unmap, Descriptor::NULL);
    let _ = cx.bracket(entry, || kernel::unmap(MAP_PLAYGROUND, PLAYGROUND_SIZE));
    for descriptor in ipc_fuzz::BOOT_ARCHIVE.0 + 1..=SWEEP_TOP {
        let _ = kernel::close(Descriptor(descriptor));
    }
    let page = cx.rng.below(shared::ARENA_PAGES as u64) as usize;
    let _ = shared.arena.restore(page);
}

/// The kept descriptors are exactly as given: no random trap reaches
/// them, and rights never grow.
fn check_kept(cx: &mut Context) {
    let last = cx.shared.args.initial_descriptors();
    for descriptor in LAST_FODDER + 1..=last {
        let expected = LAYOUT[(descriptor - 1) as usize];
        let info = cx.info(descriptor);
        if !info
            .is_ok_and(|info| info.kind == Some(expected.kind) && info.rights == expected.rights)
        {
            let seen = info.map_or(u64::MAX, |info| u64::from(info.rights.0));
            cx.violation(
                Violation::Rights,
                entry_of(KernelFunction::DescriptorInfo, Descriptor(descriptor)),
                [u64::from(descriptor), seen, u64::from(expected.rights.0), 1],
            );
        }
    }
}

/// Every racing thread is blocked: closes the owner references among the
/// descriptors (the doors nobody serves die, failing their callers) and
/// signals the alarm for every waiter.
fn break_stall(cx: &mut Context) {
    cx.counts.stall_breaks += 1;
    for descriptor in 1..=SWEEP_TOP {
        if is_kept(descriptor) {
            continue;
        }
        if let Ok(info) = cx.info(descriptor)
            && info.rights.contains(Rights::RECEIVE)
        {
            let _ = kernel::close(Descriptor(descriptor));
        }
    }
    for _ in 0..SLOTS {
        let _ = kernel::event_signal(ALARM);
    }
}

/// Stops the run: every descriptor but the kept ones is closed (and the
/// served door), the alarm signalled, and every thread must end and be
/// reaped within [`TEARDOWN_TICKS`]; a thread still inside a trap then is
/// a call that never ended.
fn teardown(cx: &mut Context, started: u64) {
    let shared = cx.shared;
    shared.request_stop();
    if shared.role == Role::Primary {
        // The partner's traps end with the primary's.
        let _ = kernel::event_signal(STOP);
    }
    let _ = started;
    let begun = cx.clock().unwrap_or(0);
    let mut served_closed = false;
    loop {
        for descriptor in 1..=SWEEP_TOP {
            if !is_kept(descriptor) {
                let _ = kernel::close(Descriptor(descriptor));
            }
        }
        if !served_closed {
            // The server threads' RECEIVE fails with PEER_DIED.
            served_closed = kernel::close(SERVE).is_ok();
        }
        for _ in 0..SLOTS {
            let _ = kernel::event_signal(ALARM);
        }
        reap(cx);
        let running = shared.slots[..SLOTS - 1]
            .iter()
            .any(|slot| slot.state() != SlotState::Free);
        if !running {
            return;
        }
        let now = cx.clock().unwrap_or(begun);
        if now.saturating_sub(begun) > TEARDOWN_TICKS {
            for (index, slot) in shared.slots[..SLOTS - 1].iter().enumerate() {
                if slot.state() != SlotState::Free && slot.in_trap.load(Ordering::SeqCst) {
                    let [arg0, arg1, arg2, arg3] = slot.entry();
                    shared.violation(
                        Violation::NeverEnded,
                        index,
                        slot.trap.load(Ordering::SeqCst),
                        TrapArgs {
                            arg0,
                            arg1,
                            arg2,
                            arg3,
                        },
                        [now - begun, 0, 0, 0],
                    );
                }
            }
            return;
        }
        for _ in 0..8 {
            let _ = kernel::yield_now();
        }
    }
}

/// The final ordinary call: ECHO through the kept reference.
fn check_echo() -> u64 {
    const TEXT: &[u8] = b"ipc-fuzz: still talking to echo";
    let mut message = Message::new();
    if message.push_data(TEXT).is_err() {
        return ECHO_WRONG_ANSWER;
    }
    match userlib::call(ECHO, echo::ECHO, &mut message) {
        Ok(reply) if reply.ret_val as usize == TEXT.len() && message.payload() == TEXT => {
            ECHO_ANSWERED
        }
        Ok(reply) => ECHO_WRONG_ANSWER | u64::from(reply.ret_val),
        Err(error) => ECHO_KERNEL_ERROR | u64::from(error.errno()),
    }
}

/// Waits for `ipc-test`'s REPORT call on the lifeline and answers it.
fn answer_the_lifeline(report: &FuzzReport) -> i32 {
    let mut buffer = Buffer::new();
    let received = buffer.receive(LIFELINE, MAX_TOTAL_SIZE);
    if received.arg0 != REPORT.bits() {
        println!(
            "{PROGRAM}: the lifeline brought {:#x}/{:#x}, not REPORT",
            received.arg0, received.arg1
        );
        return 1;
    }
    buffer.put_value(0, &[0u32, 0u32]);
    buffer.put_value(REPLY_PAYLOAD_OFFSET, report);
    let size = (REPLY_PAYLOAD_OFFSET + size_of::<FuzzReport>()) as u16;
    let replied = buffer.reply(received.arg1, abi::message::sizes(size, size, 0));
    if replied != TrapArgs::default() {
        println!("{PROGRAM}: the report's REPLY returned {:#x?}", replied);
        return 1;
    }
    0
}
