//! ipc-bench: IPC round trips measured in the guest with RDTSC.
//!
//! `cargo xtask bench` boots it as the first process (`init=ipc-bench
//! qemu-exit bench-iterations=N`), so it may create doors, spawn and end
//! the machine, and it gets the kernel command line as its arguments. It
//! creates a user door, spawns `ipc-bench-server` with the door's owner
//! reference moved in as descriptor 1, and then times, one call at a time
//! (RDTSC right before and right after the raw `userlib::ipc::send`), the
//! rows below; each row runs a warm-up of [`WARM_UP`] calls first and then
//! N measured calls (`bench-iterations=N`, default
//! [`ipc_bench::DEFAULT_ITERATIONS`]), sorts the samples and prints one
//! line in the format of `ipc_bench` (`src/lib.rs`): nearest-rank median,
//! 10th and 90th percentile in TSC ticks (instructions under
//! `-icount shift=0`, cycles under KVM). Then `bench: done` and
//! DEBUG_EXIT(0); a failure prints `bench: error ...` and ends the machine
//! with failure.
//!
//! Rows:
//! - `rdtsc-empty`: two RDTSCs back to back, the measurement's own cost;
//! - `trap-null`: a SEND of the unused kernel function 0 to the NULL
//!   target, which the kernel refuses with INVALID_FUNCTION: the cheapest
//!   trap there is (entry, dispatch, exit);
//! - `roundtrip-N`, N = 0, 64, 1024, 4000: a SEND of N data bytes to the
//!   door (total size N, so the reply exactly fits), the server's
//!   REPLY_RECEIVE answering with the same N bytes, back to the caller;
//! - `roundtrip-desc`: no data and one descriptor each way: the request
//!   COPIES an event to the server, whose reply MOVES that new reference
//!   back. The caller closes the reference it got back after the second
//!   RDTSC, outside the measured window, so neither table grows.
//! - `pager-fault`: one page fault resolved by a pager: a read of a page of
//!   a special memory object (ABI.md §6.4) that no pager has supplied,
//!   from the fault to the retried read, through the PAGE_REQUEST to a
//!   second `ipc-bench-server` (started as a pager, `userlib::pager`) and
//!   its DATA supply. Each sample reads a fresh one-page object, created
//!   and mapped before the first RDTSC and closed after the second; the
//!   pattern the pager computed is checked on every page.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::function::{Function, USER_BASE};
use abi::message::SLOT_SIZE;
use abi::{Descriptor, DescriptorSlot, Error, MessageSizes, ObjectKind, Rights};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use ipc_bench::{DONE, ERROR, LINE_PREFIX, PairLine, Percentiles, RowLine, WARM_UP};
use userlib::ipc;
use userlib::kernel::{self, DoorKind};
use userlib::{OwnedDescriptor, Startup, println};
use zerocopy::{FromBytes, IntoBytes};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The boot-archive name of the server program.
const SERVER: &str = "ipc-bench-server";

/// The function number of every call to the bench door (the server ignores it).
const BENCH: Function = Function(USER_BASE);

/// An unused kernel function number: the kernel answers INVALID_FUNCTION.
const UNUSED_KERNEL_FUNCTION: Function = Function(0);

/// The data sizes of the `roundtrip-N` rows.
const PAYLOADS: [u16; 4] = [0, 64, 1024, 4000];

/// The security type of the bench door (only stored by the kernel).
const DOOR_SECURITY_TYPE: u32 = 0;

/// The time-stamp counter.
#[inline(always)]
fn tsc() -> u64 {
    userlib::raw::timestamp()
}

/// How one row is measured.
#[derive(Clone, Copy, Debug)]
struct Bench {
    /// Measured calls per row.
    iterations: usize,
}

impl Bench {
    /// Runs `once` [`WARM_UP`] times, then `iterations` times keeping what
    /// each returns (the ticks of one call).
    fn measure(self, mut once: impl FnMut() -> Result<u64, String>) -> Result<Percentiles, String> {
        for _ in 0..WARM_UP {
            once()?;
        }
        let mut samples = Vec::with_capacity(self.iterations);
        for _ in 0..self.iterations {
            samples.push(once()?);
        }
        samples.sort_unstable();
        Ok(Percentiles::of_sorted(&samples))
    }

    fn report(self, name: &str, payload: u16, descriptors: u8, stats: Percentiles) {
        let line = RowLine {
            name,
            payload: payload.into(),
            descriptors: descriptors.into(),
            iterations: self.iterations,
            stats,
        };
        println!("{line}");
    }
}

fn run(startup: Startup) -> i32 {
    let verdict = match bench(startup.arguments) {
        Ok(()) => {
            println!("{LINE_PREFIX}{DONE}");
            0
        }
        Err(reason) => {
            println!("{LINE_PREFIX}{ERROR} {reason}");
            1
        }
    };
    let error = kernel::debug_exit(verdict);
    println!("bench: DEBUG_EXIT refused ({error}); boot with init=ipc-bench qemu-exit");
    1
}

fn bench(arguments: &[u8]) -> Result<(), String> {
    let command_line = core::str::from_utf8(arguments)
        .map_err(|_| String::from("the command line is not UTF-8"))?;
    let bench = Bench {
        iterations: ipc_bench::iterations(command_line).map_err(|error| format!("{error}"))?,
    };
    if image::cmdline::has_word(command_line, ipc_bench::SCALING_KEY) {
        return scaling(bench);
    }
    let (door, _server) = start_server().map_err(|error| format!("starting {SERVER}: {error}"))?;
    let door = door.descriptor();
    // One page, page-aligned, so a 4000-byte message never straddles a page.
    let mut page = userlib::raw::Buffer::new();
    let buffer = page.bytes_mut();

    let empty = bench.measure(|| {
        let start = tsc();
        let end = tsc();
        Ok(end - start)
    })?;
    bench.report("rdtsc-empty", 0, 0, empty);
    bench.report("trap-null", 0, 0, trap_null(bench, buffer)?);
    for payload in PAYLOADS {
        let stats = roundtrip(bench, door, buffer, payload)?;
        bench.report(&format!("roundtrip-{payload}"), payload, 0, stats);
    }
    let stats = roundtrip_descriptor(bench, door, buffer)?;
    bench.report("roundtrip-desc", 0, 1, stats);
    bench.report("pager-fault", 0, 0, pager_fault(bench)?);
    Ok(())
}

/// Creates the bench door and spawns the server with its owner reference;
/// returns the client reference and the server's process handle.
fn start_server() -> Result<(OwnedDescriptor, OwnedDescriptor), Error> {
    start_server_with(&[])
}

/// [`start_server`] with the server's `arguments`.
fn start_server_with(arguments: &[u8]) -> Result<(OwnedDescriptor, OwnedDescriptor), Error> {
    let door = kernel::door_create(DoorKind::User, DOOR_SECURITY_TYPE)?;
    // A slot may only grant rights the reference holds; a move keeps RECEIVE.
    let owner_rights = door.owner.info()?.rights;
    let owner = door.owner.into_raw();
    let server = kernel::spawn(
        SERVER,
        arguments,
        &[DescriptorSlot::moving(owner, owner_rights)],
    )?;
    Ok((door.client, server))
}

/// The `pager-fault` row (see the crate's documentation).
fn pager_fault(bench: Bench) -> Result<Percentiles, String> {
    let (door, _pager) = start_server_with(ipc_bench::PAGER_ARGUMENT)
        .map_err(|error| format!("starting the pager: {error}"))?;
    let mut cookie = 0u64;
    bench.measure(|| {
        cookie += 1;
        let object = kernel::pager_create(door.descriptor(), 1, cookie)
            .map_err(|error| format!("pager-fault: PAGER_CREATE: {error}"))?;
        let pages = userlib::raw::RawPages::map_object(
            object.descriptor(),
            0,
            0,
            abi::PAGE_BYTES,
            abi::kcall::protection::READ,
        )
        .map_err(|error| format!("pager-fault: MEMORY_MAP: {error}"))?;
        let mut first = [0u8; 1];
        let start = tsc();
        let read = pages.read(pages.base(), &mut first);
        let end = tsc();
        let mut page = [0u8; ipc_bench::PAGER_PATTERN_BYTES + 1];
        let supplied = read && pages.read(pages.base(), &mut page);
        let expected = |index: usize| ipc_bench::pager_pattern(cookie, 0, index);
        let intact = page[..ipc_bench::PAGER_PATTERN_BYTES]
            .iter()
            .enumerate()
            .all(|(index, byte)| *byte == expected(index))
            && page[ipc_bench::PAGER_PATTERN_BYTES] == 0;
        if !supplied || !intact {
            return Err(format!(
                "pager-fault: page of object {cookie} reads {page:?}, not the pager's pattern"
            ));
        }
        Ok(end - start)
    })
}

fn trap_null(bench: Bench, buffer: &mut [u8]) -> Result<Percentiles, String> {
    let sizes = MessageSizes::new();
    let mut call = ipc::PreparedSend::new(UNUSED_KERNEL_FUNCTION, Descriptor::NULL, buffer, sizes)
        .map_err(|error| format!("trap-null: {error}"))?;
    bench.measure(|| {
        // The window holds the trap alone: its result is decoded after
        // the second RDTSC (as Linux's getppid row holds no decoding).
        let start = tsc();
        let registers = call.trap();
        let end = tsc();
        match ipc::decode_send(registers) {
            Err(Error::InvalidFunction) => Ok(end - start),
            other => Err(format!(
                "trap-null: expected INVALID_FUNCTION, got {other:?}"
            )),
        }
    })
}

/// The byte at `index` of a `payload`-byte message (never 0xff at the
/// start, so msgRetVal is never -1).
fn pattern(index: usize, payload: u16) -> u8 {
    (index as u8)
        .wrapping_mul(7)
        .wrapping_add(payload as u8 | 1)
        & 0x7f
}

fn roundtrip(
    bench: Bench,
    door: Descriptor,
    buffer: &mut [u8],
    payload: u16,
) -> Result<Percentiles, String> {
    let length = usize::from(payload);
    for (index, byte) in buffer[..length].iter_mut().enumerate() {
        *byte = pattern(index, payload);
    }
    let sizes = MessageSizes::new()
        .with_total_size(payload)
        .with_data_size(payload);
    let stats = bench.measure(|| {
        let start = tsc();
        let result = ipc::send(BENCH, door, buffer, sizes);
        let end = tsc();
        let reply = result.map_err(|error| format!("roundtrip-{payload}: SEND failed: {error}"))?;
        if reply.sizes.data_size() != payload || reply.sizes.descriptor_count() != 0 {
            return Err(format!(
                "roundtrip-{payload}: the reply has {} bytes and {} descriptors",
                reply.sizes.data_size(),
                reply.sizes.descriptor_count()
            ));
        }
        Ok(end - start)
    })?;
    let intact = buffer[..length]
        .iter()
        .enumerate()
        .all(|(index, byte)| *byte == pattern(index, payload));
    if !intact {
        return Err(format!(
            "roundtrip-{payload}: the reply's data differs from the request's"
        ));
    }
    Ok(stats)
}

fn roundtrip_descriptor(
    bench: Bench,
    door: Descriptor,
    buffer: &mut [u8],
) -> Result<Percentiles, String> {
    let event = kernel::event_create().map_err(|error| format!("EVENT_CREATE: {error}"))?;
    // TRANSFER lets the server move its copy back.
    let rights = Rights::EVENT;
    let slot = DescriptorSlot::copy(event.descriptor(), rights);
    let slot_size = usize::from(SLOT_SIZE);
    let sizes = MessageSizes::new()
        .with_total_size(SLOT_SIZE)
        .with_descriptor_count(1);
    let stats = bench.measure(|| {
        buffer[..slot_size].copy_from_slice(slot.as_bytes());
        let start = tsc();
        let result = ipc::send(BENCH, door, buffer, sizes);
        let end = tsc();
        let reply = result.map_err(|error| format!("roundtrip-desc: SEND failed: {error}"))?;
        let back = DescriptorSlot::read_from_bytes(&buffer[..slot_size]).unwrap_or_default();
        if reply.sizes.descriptor_count() != 1 || back.descriptor == 0 || back.rights != rights.0 {
            return Err(format!(
                "roundtrip-desc: the reply has {} descriptors, slot {back:?}",
                reply.sizes.descriptor_count()
            ));
        }
        kernel::close(Descriptor(back.descriptor))
            .map_err(|error| format!("roundtrip-desc: CLOSE: {error}"))?;
        Ok(end - start)
    })?;
    // Once more, unmeasured, to check that what comes back is the event.
    buffer[..slot_size].copy_from_slice(slot.as_bytes());
    ipc::send(BENCH, door, buffer, sizes)
        .map_err(|error| format!("roundtrip-desc: SEND failed: {error}"))?;
    let back = DescriptorSlot::read_from_bytes(&buffer[..slot_size]).unwrap_or_default();
    let info = kernel::descriptor_info(Descriptor(back.descriptor))
        .map_err(|error| format!("roundtrip-desc: DESCRIPTOR_INFO: {error}"))?;
    if info.kind != Some(ObjectKind::Event) {
        return Err(format!(
            "roundtrip-desc: descriptor {} came back as {:?}, not an event",
            back.descriptor, info.kind
        ));
    }
    kernel::close(Descriptor(back.descriptor))
        .map_err(|error| format!("roundtrip-desc: CLOSE: {error}"))?;
    Ok(stats)
}

/// What the threads of one scaling measurement share with the bench's
/// main thread.
struct Pairs {
    /// Clients done with their warm-up.
    ready: AtomicUsize,
    /// Set once every client is ready: the measured round trips start.
    go: AtomicBool,
    /// Clients done with their measured round trips.
    done: AtomicUsize,
    /// Each client's measured ticks and the CPU it ran on (0: failed).
    ticks: [AtomicU64; 4],
    cpus: [AtomicU64; 4],
    /// Signalled by the last client ready, and by the last client done.
    all_ready: userlib::Event,
    all_done: userlib::Event,
}

/// The scaling run (`bench-scaling`): for N = 1, 2, 4 (at most the online
/// CPUs), N clients, each pinned to its own CPU and calling its own
/// server (a SEND runs the server on the caller's CPU, D54, so a pair
/// stays on one CPU), make `iterations` 64-byte round trips at once; one
/// line per pair. The clients start together (each warms up first, then
/// waits for the last to be ready) and are timed each on its own.
fn scaling(bench: Bench) -> Result<(), String> {
    let online = kernel::cpu_counters(0)
        .map_err(|error| format!("CPU_COUNTERS: {error}"))?
        .online as usize;
    println!("{LINE_PREFIX}{}{}", ipc_bench::TSC_RATE_KEY, tsc_rate()?);
    for pairs in ipc_bench::PAIR_COUNTS.into_iter().filter(|n| *n <= online) {
        let shared = alloc::sync::Arc::new(Pairs {
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            done: AtomicUsize::new(0),
            ticks: Default::default(),
            cpus: Default::default(),
            all_ready: userlib::Event::create()
                .map_err(|error| format!("EVENT_CREATE: {error}"))?,
            all_done: userlib::Event::create().map_err(|error| format!("EVENT_CREATE: {error}"))?,
        });
        let mut servers = Vec::new();
        for pair in 0..pairs {
            let (door, server) =
                start_server().map_err(|error| format!("starting {SERVER}: {error}"))?;
            servers.push(server);
            let shared = shared.clone();
            let iterations = bench.iterations;
            userlib::spawn_thread(
                move || scaling_client(&shared, pairs, pair, door, iterations),
                userlib::thread::DEFAULT_STACK_SIZE,
            )
            .map_err(|error| format!("THREAD_CREATE: {error}"))?;
        }
        shared
            .all_ready
            .wait()
            .map_err(|error| format!("EVENT_WAIT: {error}"))?;
        shared.go.store(true, Ordering::Release);
        shared
            .all_done
            .wait()
            .map_err(|error| format!("EVENT_WAIT: {error}"))?;
        for pair in 0..pairs {
            let ticks = shared.ticks[pair].load(Ordering::Acquire);
            if ticks == 0 {
                return Err(format!("scaling: pair {pair} of {pairs} failed"));
            }
            let line = PairLine {
                pairs,
                pair,
                cpu: shared.cpus[pair].load(Ordering::Acquire) as u32,
                round_trips: bench.iterations,
                ticks,
            };
            println!("{line}");
        }
        // The servers stay, idle in RECEIVE on doors nobody calls any
        // more (their clients' references ended with the clients).
        drop(servers);
    }
    Ok(())
}

/// One client of a scaling run: pinned to CPU `pair`, warms up, waits for
/// the others, then times its round trips.
fn scaling_client(
    shared: &Pairs,
    pairs: usize,
    pair: usize,
    door: OwnedDescriptor,
    iterations: usize,
) {
    let payload = ipc_bench::SCALING_PAYLOAD;
    let sizes = MessageSizes::new()
        .with_total_size(payload)
        .with_data_size(payload);
    let mut page = userlib::raw::Buffer::new();
    let buffer = page.bytes_mut();
    let pinned = kernel::set_affinity(1 << pair).is_ok();
    let mut failed = !pinned;
    for _ in 0..WARM_UP {
        failed |= ipc::send(BENCH, door.descriptor(), buffer, sizes).is_err();
    }
    if shared.ready.fetch_add(1, Ordering::AcqRel) + 1 == pairs {
        let _ = shared.all_ready.signal();
    }
    while !shared.go.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let start = tsc();
    for _ in 0..iterations {
        failed |= ipc::send(BENCH, door.descriptor(), buffer, sizes).is_err();
    }
    let end = tsc();
    let cpu = kernel::cpu_counters(0).map_or(u32::MAX, |c| c.caller_cpu);
    failed |= cpu as usize != pair;
    if !failed {
        shared.ticks[pair].store((end - start).max(1), Ordering::Release);
        shared.cpus[pair].store(u64::from(cpu), Ordering::Release);
    }
    if shared.done.fetch_add(1, Ordering::AcqRel) + 1 == pairs {
        let _ = shared.all_done.signal();
    }
}

/// The TSC's ticks per second, against the kernel's clock: the ticks
/// between two clock ticks a second apart.
fn tsc_rate() -> Result<u64, String> {
    let clock = || kernel::clock().map_err(|error| format!("CLOCK: {error}"));
    let first = clock()?;
    // Start on a clock tick's edge.
    let mut now = clock()?;
    while now.ticks == first.ticks {
        now = clock()?;
    }
    let (start_ticks, start) = (now.ticks, tsc());
    let hz = u64::from(now.hz.max(1));
    while now.ticks < start_ticks + hz {
        now = clock()?;
    }
    Ok(tsc() - start)
}
