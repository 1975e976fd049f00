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
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::function::{Function, USER_BASE};
use abi::message::SLOT_SIZE;
use abi::{Descriptor, DescriptorSlot, Error, MessageSizes, ObjectKind, Rights};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ipc_bench::{DONE, ERROR, LINE_PREFIX, Percentiles, RowLine, WARM_UP};
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
    Ok(())
}

/// Creates the bench door and spawns the server with its owner reference;
/// returns the client reference and the server's process handle.
fn start_server() -> Result<(OwnedDescriptor, OwnedDescriptor), Error> {
    let door = kernel::door_create(DoorKind::User, DOOR_SECURITY_TYPE)?;
    // A slot may only grant rights the reference holds; a move keeps RECEIVE.
    let owner_rights = door.owner.info()?.rights;
    let owner = door.owner.into_raw();
    let server = kernel::spawn(SERVER, &[], &[DescriptorSlot::moving(owner, owner_rights)])?;
    Ok((door.client, server))
}

fn trap_null(bench: Bench, buffer: &mut [u8]) -> Result<Percentiles, String> {
    let sizes = MessageSizes::new();
    bench.measure(|| {
        let start = tsc();
        let result = ipc::send(UNUSED_KERNEL_FUNCTION, Descriptor::NULL, buffer, sizes);
        let end = tsc();
        match result {
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
