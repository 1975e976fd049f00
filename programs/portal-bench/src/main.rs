//! portal-bench: moves 1 MiB from one process to another through a
//! share-point and through 4000-byte messages, and prints one bench row for
//! each in `ipc_bench`'s row format (`cargo xtask bench` reads them and
//! reports bytes per instruction under `--accel tcg-icount`).
//!
//! It needs procman (share-points are procman's), so `cargo xtask bench`
//! boots it second, with `init=procman run=portal-bench qemu-exit`; its
//! exit status ends the machine. The same binary is the receiving process
//! (`portal-bench-server`, argument `server`): procman starts it with the
//! owner reference of a door the bench made, it attaches the share-point
//! and serves two functions, typed (`interface!`):
//! - DRAIN: take the share-point's lock, copy its 1 MiB out into the
//!   server's own memory, unlock, reply empty;
//! - CARRY: a message of up to 4000 bytes, copied into the server's own
//!   memory at the offset its header names; reply empty.
//!
//! One sample moves the whole MiB: the share-point row is the writer's
//! lock, copy in, unlock and one DRAIN call; the message row is 263 CARRY
//! calls (262 of 4000 bytes and one of 576). Each row runs [`WARM_UP`]
//! unmeasured samples, then [`SAMPLES`].
//!
//! It must never be started by hand outside a procman boot (it has no
//! kernel capability and asks procman for everything).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::error::FIRST_SERVER_ERROR;
use abi::function::{Function, USER_BASE};
use abi::{DescriptorSlot, Rights};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ipc_bench::{DONE, ERROR, LINE_PREFIX, Percentiles, RowLine};
use userlib::interface::{Call, Refusal};
use userlib::portal::SharePoint;
use userlib::{Startup, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// Bytes moved by one sample.
const MIB: usize = 1 << 20;
/// The largest message data a CARRY sends.
const CHUNK: usize = 4000;
/// The share-point both processes attach.
const SHARE_POINT: &str = "/shm/portal-bench";
/// The server's manifest entry.
const SERVER: &str = "portal-bench-server";
/// Unmeasured samples per row.
const WARM_UP: usize = 3;
/// Measured samples per row.
const SAMPLES: usize = 21;
/// The security type of the bench's door (the manifest's `bench`).
const DOOR_TYPE: u32 = 2;

/// DRAIN's function number.
const DRAIN: Function = Function(USER_BASE);
/// CARRY's function number.
const CARRY: Function = Function(USER_BASE + 1);

userlib::interface! {
    /// Calls the receiving process.
    pub client SinkClient;
    /// The receiving process's side.
    pub server SinkServer;
    error SinkError;

    /// DRAIN: copy the share-point's data out, under its lock.
    fn drain(DRAIN) request() reply();
    /// CARRY: `header` is the offset in the MiB, `bytes` the data there.
    fn carry(CARRY) request(header: u32, bytes) reply();
}

userlib::interface_error! {
    /// The receiving process's refusals.
    pub enum SinkError {
        /// An unknown function.
        UnknownFunction = FIRST_SERVER_ERROR => "UNKNOWN_FUNCTION",
        /// No room for the reply.
        ReplyDoesNotFit = FIRST_SERVER_ERROR + 1 => "REPLY_DOES_NOT_FIT",
        /// A malformed request, or data past the MiB.
        BadRequest = FIRST_SERVER_ERROR + 2 => "BAD_REQUEST",
        /// The share-point refused (its lock or its bounds).
        SharePoint = FIRST_SERVER_ERROR + 3 => "SHARE_POINT",
    }
    unknown_function: UnknownFunction,
    reply_does_not_fit: ReplyDoesNotFit,
    bad_request: BadRequest,
}

/// The receiving process: the share-point and where the bytes land.
struct Sink {
    point: SharePoint,
    landed: Vec<u8>,
}

impl SinkServer for Sink {
    fn drain(&mut self, _call: &mut Call<'_>) -> Result<(), Refusal<SinkError>> {
        let guard = self.point.lock().map_err(|_| SinkError::SharePoint)?;
        guard
            .read_bytes(0, &mut self.landed)
            .map_err(|_| SinkError::SharePoint)?;
        Ok(())
    }

    fn carry(
        &mut self,
        _call: &mut Call<'_>,
        offset: u32,
        bytes: &[u8],
    ) -> Result<(), Refusal<SinkError>> {
        let start = offset as usize;
        let target = self
            .landed
            .get_mut(start..start + bytes.len())
            .ok_or(SinkError::BadRequest)?;
        target.copy_from_slice(bytes);
        Ok(())
    }
}

fn run(mut startup: Startup) -> i32 {
    if startup.arguments.starts_with(b"server") {
        let Some(door) = startup.take_descriptor(1) else {
            println!("portal-bench-server: started without a door");
            return 1;
        };
        let point = match SharePoint::attach(SHARE_POINT) {
            Ok(point) => point,
            Err(e) => {
                println!("portal-bench-server: attach: {e:?}");
                return 1;
            }
        };
        let mut sink = Sink {
            point,
            landed: alloc::vec![0; MIB],
        };
        let error = sink.serve(&door);
        println!("portal-bench-server: serving stopped: {error}");
        return 1;
    }
    match bench() {
        Ok(()) => {
            println!("{LINE_PREFIX}{DONE}");
            0
        }
        Err(reason) => {
            println!("{LINE_PREFIX}{ERROR} {reason}");
            1
        }
    }
}

fn measure(mut once: impl FnMut() -> Result<u64, String>) -> Result<Percentiles, String> {
    for _ in 0..WARM_UP {
        once()?;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        samples.push(once()?);
    }
    samples.sort_unstable();
    Ok(Percentiles::of_sorted(&samples))
}

fn report(name: &str, stats: Percentiles) {
    let line = RowLine {
        name,
        payload: MIB as u32,
        descriptors: 0,
        iterations: SAMPLES,
        stats,
    };
    println!("{line}");
}

fn bench() -> Result<(), String> {
    let point = SharePoint::create(SHARE_POINT, MIB as u64, 0)
        .map_err(|e| format!("creating the share-point: {e:?}"))?;
    let door = userlib::procman::create_object(None, false, DOOR_TYPE)
        .map_err(|e| format!("CREATE_OBJECT: {e}"))?;
    let owner = door.owner.into_raw();
    userlib::procman::spawn(
        SERVER,
        &[],
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    )
    .map_err(|e| format!("spawning {SERVER}: {e}"))?;
    let sink = SinkClient::new(door.client.descriptor());
    let source: Vec<u8> = (0..MIB).map(|i| (i * 7 + 1) as u8).collect();

    let shared = measure(|| {
        let start = userlib::raw::timestamp();
        {
            let guard = point.lock().map_err(|e| format!("lock: {e:?}"))?;
            guard
                .write_bytes(0, &source)
                .map_err(|e| format!("write: {e:?}"))?;
        }
        sink.drain().map_err(|e| format!("DRAIN: {e:?}"))?;
        Ok(userlib::raw::timestamp() - start)
    })?;
    report("move-1mib-sharepoint", shared);

    let messages = measure(|| {
        let start = userlib::raw::timestamp();
        for (index, chunk) in source.chunks(CHUNK).enumerate() {
            sink.carry((index * CHUNK) as u32, chunk)
                .map_err(|e| format!("CARRY: {e:?}"))?;
        }
        Ok(userlib::raw::timestamp() - start)
    })?;
    report("move-1mib-messages", messages);
    Ok(())
}
