//! exhaust-test: runs the machine out of each kind of kernel resource, end
//! to end (issue 15, "exhaustion"). Booted as the first process
//! (`init=exhaust-test`) in a small machine (the boot case gives QEMU
//! 64 MiB), it takes memory, events (descriptors), doors, threads and
//! processes until the kernel refuses, checks that every refusal is
//! OUT_OF_MEMORY or TABLE_FULL, that with memory exhausted every kind of
//! request is refused with nothing changed, and that once everything is
//! given back the kernel's counters are where they were and a call through
//! a door is still served.
//!
//! Processes, threads, objects and descriptors must be back at the end of
//! every round. Charges and free frames must settle: the process's own
//! heap and the kernel's page tables for kernel stacks reach a high-water
//! mark over the first rounds and keep it, so rounds repeat until two in a
//! row end with the same charges and free frames (a leak would lose more
//! with every round and fail).
//!
//! Started with the argument `child`, it is one of the processes of the
//! process round: it waits on the event it was given as descriptor 1, then
//! ends.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use abi::kcall::{KernelCounters, protection};
use abi::{DescriptorSlot, Error, PAGE_BYTES, Rights};
use tally::{Lines, Tally};
use userlib::kernel::{self, DoorKind};
use userlib::thread::RawEntry;
use userlib::{Startup, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

const PROGRAM: &str = "exhaust-test";
const CHILD: &[u8] = b"child";
/// The argument of a child that ends at once.
const EXIT: &[u8] = b"exit";
const MIB: u64 = 1 << 20;
const RW: u32 = protection::READ | protection::WRITE;
/// Where the round of threads maps their stacks: one page each.
const STACKS: u64 = 0x0000_2000_0000_0000;
/// The stack of the thread tried while memory is gone.
const SPARE_STACK: u64 = 0x0000_2100_0000_0000;
/// The stack of the server thread that shows a door is still served.
const SERVER_STACK: u64 = 0x0000_2100_0001_0000;
/// The most rounds before the counters must have settled.
const MAX_ROUNDS: u32 = 6;
/// The most threads the thread round tries.
const MAX_THREADS: u64 = 4096;

fn counters() -> Result<KernelCounters, alloc::string::String> {
    kernel::counters().map_err(|error| alloc::format!("COUNTERS: {error:?}"))
}

/// A refusal the kernel may give when a resource runs out.
fn is_exhaustion(error: Error) -> bool {
    matches!(error, Error::OutOfMemory | Error::TableFull)
}

/// Everything but the free frames.
fn same_holdings(a: &KernelCounters, b: &KernelCounters) -> bool {
    (
        a.processes,
        a.threads,
        a.objects,
        a.descriptors,
        a.charged_bytes,
    ) == (
        b.processes,
        b.threads,
        b.objects,
        b.descriptors,
        b.charged_bytes,
    )
}

/// Processes, threads, objects and descriptors: what a round must give back
/// exactly. (Its charges can keep the process heap's high-water mark, and
/// the free frames the kernel's: both are compared between rounds.)
fn same_objects(a: &KernelCounters, b: &KernelCounters) -> bool {
    (a.processes, a.threads, a.objects, a.descriptors)
        == (b.processes, b.threads, b.objects, b.descriptors)
}

/// Takes `take` until it fails; the failure must be an exhaustion error.
/// Returns what was taken.
fn take_all<T>(
    what: &str,
    limit: usize,
    mut take: impl FnMut() -> Result<T, Error>,
) -> Result<Vec<T>, alloc::string::String> {
    // The whole capacity at once: every round then makes the same heap
    // allocations, whatever it takes, so the process's own heap (charged
    // to it) reaches its high-water mark in the first round.
    let mut taken = Vec::with_capacity(limit);
    loop {
        if taken.len() == limit {
            return Err(alloc::format!("{what}: still no refusal after {limit}"));
        }
        match take() {
            Ok(item) => taken.push(item),
            Err(error) if is_exhaustion(error) => return Ok(taken),
            Err(error) => {
                return Err(alloc::format!(
                    "{what}: refused with {error:?} after {} (not OUT_OF_MEMORY or TABLE_FULL)",
                    taken.len()
                ));
            }
        }
    }
}

/// Maps 1 MiB pieces, then single pages, until the machine says no; the
/// pieces with their lengths.
fn fill_memory() -> Result<Vec<(u64, u64)>, alloc::string::String> {
    let mut pieces: Vec<(u64, u64)> = take_all("MAP_ANONYMOUS of 1 MiB", 1024, || {
        kernel::map_anonymous(0, MIB, RW)
    })?
    .into_iter()
    .map(|at| (at, MIB))
    .collect();
    let pages = take_all("MAP_ANONYMOUS of a page", 1024, || {
        kernel::map_anonymous(0, PAGE_BYTES, RW)
    })?;
    pieces.extend(pages.into_iter().map(|at| (at, PAGE_BYTES)));
    Ok(pieces)
}

fn free_memory(pieces: &[(u64, u64)]) {
    for (at, length) in pieces {
        let _ = kernel::unmap(*at, *length);
    }
}

/// Runs `attempt` with memory gone: it is refused with OUT_OF_MEMORY or
/// TABLE_FULL and the counters do not move, or (the kernel found room in
/// its own heap, which needs no new frame) it succeeds and is undone.
fn refused_or_undone<T>(
    what: &str,
    attempt: impl FnOnce() -> Result<T, Error>,
) -> Result<(), alloc::string::String> {
    let before = counters()?;
    match attempt() {
        Ok(done) => {
            drop(done);
            Ok(())
        }
        Err(error) if is_exhaustion(error) => {
            let after = counters()?;
            if same_holdings(&before, &after) && before.free_frames == after.free_frames {
                Ok(())
            } else {
                Err(alloc::format!(
                    "{what}'s refusal changed the counters: {before:?} -> {after:?}"
                ))
            }
        }
        Err(error) => Err(alloc::format!("{what} with memory gone: {error:?}")),
    }
}

/// Yields until the kernel counts at most `threads` threads again: a
/// thread that counted itself out in ENDED may not have reached its
/// THREAD_EXIT yet (preempted between the two), and its stack must stay
/// mapped until it has.
fn threads_gone(threads: u64) -> Result<(), alloc::string::String> {
    while counters()?.threads > threads {
        let _ = kernel::yield_now();
    }
    Ok(())
}

/// Threads of the thread round count themselves out here.
static ENDED: AtomicU32 = AtomicU32::new(0);

extern "C" fn thread_ends(_: u64) -> ! {
    ENDED.fetch_add(1, Ordering::SeqCst);
    kernel::thread_exit(0)
}

static THREAD_ENTRY: RawEntry = RawEntry {
    function: thread_ends,
    argument: 0,
};

/// Creates threads (each with a page of stack) until refused, then lets
/// them all end.
fn thread_round() -> Result<usize, alloc::string::String> {
    ENDED.store(0, Ordering::SeqCst);
    let threads = counters()?.threads;
    // Stacks are mapped page by page, so that running out of memory for a
    // stack is a refusal too.
    let mut created = 0u64;
    let result = take_all("THREAD_CREATE", MAX_THREADS as usize, || {
        let page = STACKS + created * 2 * PAGE_BYTES;
        kernel::map_anonymous(page, PAGE_BYTES, RW)?;
        // Created at our priority: they run, one at a time, when we yield.
        match userlib::thread::spawn_raw_on(
            &THREAD_ENTRY,
            page + PAGE_BYTES,
            abi::kcall::DEFAULT_PRIORITY,
        ) {
            Ok(handle) => {
                created += 1;
                Ok(handle)
            }
            Err(error) => {
                let _ = kernel::unmap(page, PAGE_BYTES);
                Err(error)
            }
        }
    });
    // Each YIELD lets every ready thread of our priority run first.
    while u64::from(ENDED.load(Ordering::SeqCst)) < created {
        let _ = kernel::yield_now();
    }
    let handles = result?;
    drop(handles);
    threads_gone(threads)?;
    let _ = kernel::unmap(STACKS, MAX_THREADS * 2 * PAGE_BYTES);
    Ok(created as usize)
}

/// Spawns children until refused, then ends them all.
fn process_round() -> Result<usize, alloc::string::String> {
    let event = kernel::event_create().map_err(|e| alloc::format!("EVENT_CREATE: {e:?}"))?;
    let before = counters()?.processes;
    // Every child started is released and awaited, whatever refused the
    // next one: a wrong refusal must not strand them and fail every check
    // after this one too.
    let mut children = Vec::with_capacity(1024);
    let outcome = take_all("SPAWN", 1024, || {
        kernel::spawn(
            PROGRAM,
            CHILD,
            &[DescriptorSlot::copy(event.descriptor(), Rights::EVENT)],
        )
        .map(|child| children.push(child))
    });
    for _ in &children {
        let _ = kernel::event_signal(event.descriptor());
    }
    let count = children.len();
    drop(children);
    while counters()?.processes > before {
        let _ = kernel::yield_now();
    }
    outcome.map(|_| count)
}

/// The door the server thread of [`still_serves`] receives on.
static SERVED_DOOR: AtomicU32 = AtomicU32::new(0);

/// Answers one call with msgRetVal 7, then ends.
extern "C" fn serve_once(_: u64) -> ! {
    let owner = abi::Descriptor(SERVED_DOOR.load(Ordering::SeqCst));
    let mut buffer = [0u8; 64];
    if let Ok(received) = userlib::ipc::receive(owner, &mut buffer) {
        buffer[..4].copy_from_slice(&7u32.to_le_bytes());
        buffer[4..8].fill(0);
        let _ = userlib::ipc::reply(received.cookie, &mut buffer, abi::MessageSizes::of(8, 8, 0));
    }
    ENDED.fetch_add(1, Ordering::SeqCst);
    kernel::thread_exit(0)
}

static SERVER_ENTRY: RawEntry = RawEntry {
    function: serve_once,
    argument: 0,
};

/// A door served by a thread of ours answers a call: the kernel still
/// serves IPC after the exhaustion. (Raw threads on stacks mapped here and
/// unmapped after, so nothing is left behind.)
fn still_serves() -> Result<(), alloc::string::String> {
    let door =
        kernel::door_create(DoorKind::User, 0).map_err(|e| alloc::format!("DOOR_CREATE: {e:?}"))?;
    SERVED_DOOR.store(door.owner.descriptor().0, Ordering::SeqCst);
    ENDED.store(0, Ordering::SeqCst);
    let threads = counters()?.threads;
    kernel::map_anonymous(SERVER_STACK, 4 * PAGE_BYTES, RW)
        .map_err(|e| alloc::format!("the server's stack: {e:?}"))?;
    let server = userlib::thread::spawn_raw_on(
        &SERVER_ENTRY,
        SERVER_STACK + 4 * PAGE_BYTES,
        abi::kcall::DEFAULT_PRIORITY,
    )
    .map_err(|e| alloc::format!("a server thread: {e:?}"))?;
    let mut buffer = [0u8; 64];
    buffer[..3].copy_from_slice(&[1, 2, 3]);
    let reply = userlib::ipc::send(
        abi::function::Function(abi::function::USER_BASE),
        door.client.descriptor(),
        &mut buffer,
        abi::MessageSizes::of(64, 3, 0),
    );
    while ENDED.load(Ordering::SeqCst) == 0 {
        let _ = kernel::yield_now();
    }
    drop(server);
    threads_gone(threads)?;
    let _ = kernel::unmap(SERVER_STACK, 4 * PAGE_BYTES);
    match reply {
        Ok(reply) if reply.ret_val == 7 => Ok(()),
        other => Err(alloc::format!("the call: {other:?}")),
    }
}

/// One round of every resource; the counters at its end.
fn round(tally: &mut Tally, number: u32, start: &KernelCounters) -> Option<KernelCounters> {
    let label = |what: &str| alloc::format!("round {number}: {what}");
    // A stack page for the thread tried while memory is gone.
    if let Err(error) = kernel::map_anonymous(SPARE_STACK, PAGE_BYTES, RW) {
        tally.check(
            &label("a spare stack page"),
            Err(alloc::format!("{error:?}")),
        );
        return None;
    }
    let memory = fill_memory();
    let refusals = memory.as_ref().map_err(Clone::clone).and_then(|pieces| {
        // With memory gone a mapping is refused; every other request is
        // refused with nothing changed, or served from the kernel heap's
        // free room and undone.
        let page = kernel::map_anonymous(0, PAGE_BYTES, RW);
        let checks = [
            match page {
                Err(Error::OutOfMemory) => Ok(()),
                other => Err(alloc::format!(
                    "MAP_ANONYMOUS of a page with memory gone: {other:?}"
                )),
            },
            refused_or_undone("EVENT_CREATE", kernel::event_create),
            refused_or_undone("DOOR_CREATE", || kernel::door_create(DoorKind::User, 0)),
            refused_or_undone("THREAD_CREATE", || {
                ENDED.store(0, Ordering::SeqCst);
                let thread = userlib::thread::spawn_raw_on(
                    &THREAD_ENTRY,
                    SPARE_STACK + PAGE_BYTES,
                    abi::kcall::DEFAULT_PRIORITY,
                )?;
                while ENDED.load(Ordering::SeqCst) == 0 {
                    let _ = kernel::yield_now();
                }
                Ok(thread)
            }),
            refused_or_undone("SPAWN", || {
                let before = kernel::counters()?.processes;
                let child = kernel::spawn(PROGRAM, EXIT, &[])?;
                // A child that started ends at once; wait for it.
                while kernel::counters()?.processes > before {
                    let _ = kernel::yield_now();
                }
                Ok(child)
            }),
        ];
        free_memory(pieces);
        if pieces.len() < 8 {
            return Err(alloc::format!(
                "only {} pieces could be mapped",
                pieces.len()
            ));
        }
        checks.into_iter().collect::<Result<Vec<()>, _>>().map(drop)
    });
    tally.check(
        &label("memory runs out, and then every request is refused with nothing changed"),
        refusals,
    );
    let events = take_all("EVENT_CREATE", 4096, kernel::event_create).map(|events| {
        let count = events.len();
        drop(events);
        count
    });
    tally.check(
        &label("events until the table or memory is full"),
        events.and_then(|count| {
            if count < 100 {
                Err(alloc::format!("only {count} events"))
            } else {
                Ok(())
            }
        }),
    );
    let doors = take_all("DOOR_CREATE", 4096, || {
        kernel::door_create(DoorKind::User, 0)
    })
    .map(|doors| {
        let count = doors.len();
        drop(doors);
        count
    });
    tally.check(
        &label("doors until the table or memory is full"),
        doors.and_then(|count| {
            if count < 100 {
                Err(alloc::format!("only {count} doors"))
            } else {
                Ok(())
            }
        }),
    );
    let threads = thread_round();
    tally.check(
        &label("threads until memory runs out, then they all end"),
        threads.and_then(|count| {
            if count < 50 {
                Err(alloc::format!("only {count} threads"))
            } else {
                Ok(())
            }
        }),
    );
    tally.check(
        &label("processes until memory runs out, then they all end"),
        process_round().and_then(|count| {
            if count < 4 {
                Err(alloc::format!("only {count} processes"))
            } else {
                Ok(())
            }
        }),
    );
    tally.check(&label("a door is still served"), still_serves());
    let _ = kernel::unmap(SPARE_STACK, PAGE_BYTES);
    let end = counters();
    tally.check(
        &label("processes, threads, objects and descriptors are back"),
        end.clone().and_then(|end| {
            if same_objects(start, &end) {
                Ok(())
            } else {
                Err(alloc::format!("{start:?} -> {end:?}"))
            }
        }),
    );
    end.ok()
}

fn run(mut startup: Startup) -> i32 {
    if startup.arguments == EXIT {
        return 0;
    }
    if startup.arguments == CHILD {
        // One of the process round's children: wait for the word, then end.
        if let Some(event) = startup.take_descriptor(1) {
            let _ = kernel::event_wait(event.descriptor());
        }
        return 0;
    }
    let mut tally = Tally::new("exhaust-test", Lines::Prefixed);
    let start = match counters() {
        Ok(start) => start,
        Err(why) => {
            println!("exhaust-test: {why}");
            return 1;
        }
    };
    // Rounds until two in a row end with the same charges and free frames
    // (at most MAX_ROUNDS): the process heap and the kernel's own tables
    // reach a high-water mark and stay there, where a leak would lose more
    // with every round.
    let mut previous = round(&mut tally, 1, &start);
    let mut settled = None;
    for number in 2..=MAX_ROUNDS {
        let end = round(&mut tally, number, &start);
        match (&previous, &end) {
            (Some(a), Some(b))
                if a.charged_bytes == b.charged_bytes && a.free_frames == b.free_frames =>
            {
                settled = Some(number);
                break;
            }
            _ => previous = end,
        }
    }
    tally.check(
        "two rounds in a row end with the same charges and free frames (no leak)",
        match settled {
            Some(number) => {
                println!("exhaust-test: settled after round {number}");
                Ok(())
            }
            None => Err(alloc::format!(
                "after {MAX_ROUNDS} rounds the counters still moved: {:?}",
                previous
            )),
        },
    );
    // The first process's status is the machine's verdict.
    tally.summary()
}
