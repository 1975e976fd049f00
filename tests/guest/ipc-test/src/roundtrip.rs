//! Area 1: SEND, RECEIVE, REPLY and REPLY_RECEIVE between the test and a
//! helper server in another process, msgRetVal and msgErrno for every
//! reply length, REPLY_RECEIVE's `arg2`, and cookies.

use alloc::format;
use alloc::vec::Vec;

use abi::function::Function;
use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::trap::REPLY_DELIVERED;
use abi::{Descriptor, Error, Rights, TrapArgs};
use ipc_test_helper::{
    COOKIE, COUNT_ARRIVED, INSPECT, Inspection, REPLY_BYTES, ReplyBytesRequest, VIA_RECEIVE,
    VIA_REPLY_RECEIVE, pattern_byte, reply_mode,
};
use userlib::raw::Buffer;
use userlib::{Message, OwnedDescriptor};

use crate::check::{
    Check, Failure, Outcome, Registers, Setup, expect_eq, expect_error, expect_registers,
};
use crate::fixture::{Fixture, SCRATCH_CALL, ScratchDoor, duplicate, spawn_caller, spawn_worker};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "round trip: RECEIVE returns the function, the cookie, the server's msgPtr and the sender's sizes",
        run: receive_registers,
    },
    Check {
        name: "round trip: reply data of 0-3 bytes gives msgRetVal 0 and msgErrno 0",
        run: |fixture| reply_lengths(fixture, &[0, 1, 3]),
    },
    Check {
        name: "round trip: reply data of 4-7 bytes gives msgRetVal = word 0 and msgErrno 0",
        run: |fixture| reply_lengths(fixture, &[4, 5, 7]),
    },
    // 4088 is the most data a message can carry: align8(msgDataSize) must
    // fit msgTotalSize (ABI.md §1.2), and align8(4089) = 4096.
    Check {
        name: "round trip: reply data of 8+ bytes gives msgRetVal = word 0 and msgErrno = word 1",
        run: |fixture| reply_lengths(fixture, &[8, 12, 100, 4088]),
    },
    Check {
        name: "round trip: REPLY returns 0, 0, 0, 0 and the next call arrives by RECEIVE",
        run: reply_returns_zeros,
    },
    Check {
        name: "round trip: REPLY_RECEIVE answers and receives the next call",
        run: reply_receive_receives,
    },
    Check {
        name: "round trip: a reply bigger than the caller's buffer fails with REPLY_TOO_LARGE and the caller waits for one that fits",
        run: reply_too_large,
    },
    Check {
        name: "REPLY_RECEIVE: a receive half that fails at once (door dead) returns arg2 = 1",
        run: reply_receive_door_dead,
    },
    Check {
        name: "REPLY_RECEIVE: a receive half that meets a too-big message returns arg2 = 1 and its sizes",
        run: reply_receive_too_small,
    },
    Check {
        name: "REPLY_RECEIVE: a waiting receive half that fails (door died, owner moved, message too big) returns arg2 = 1",
        run: reply_receive_woken,
    },
    Check {
        name: "cookies: a new reference starts at 0 and a reply sets all 64 bits",
        run: cookies_start_at_zero,
    },
    Check {
        name: "cookies: a DUPLICATE'd reference has its own cookie",
        run: cookies_per_reference,
    },
    Check {
        name: "cookies: a COPY'd reference starts at 0, a MOVE'd one keeps its cookie",
        run: cookies_travel,
    },
    Check {
        name: "cookies: REPLY stores into the reference called through, not a new one that reuses its number",
        run: cookie_follows_the_reference,
    },
];

/// The INSPECT reply's data size.
const INSPECTION_REPLY: u16 = (REPLY_PAYLOAD_OFFSET + size_of::<Inspection>()) as u16;

/// The little-endian word at `at` of a reply of `length` pattern bytes (0
/// if the reply is shorter than `at + 4`).
fn pattern_word(length: u16, at: usize) -> u32 {
    if usize::from(length) < at + 4 {
        return 0;
    }
    u32::from_le_bytes([
        pattern_byte(at),
        pattern_byte(at + 1),
        pattern_byte(at + 2),
        pattern_byte(at + 3),
    ])
}

/// Asks the helper for a reply of `length` pattern bytes, answered in `mode`.
fn reply_bytes(server: Descriptor, length: u16, mode: u16, total: u16) -> (TrapArgs, Buffer) {
    let mut buffer = Buffer::new();
    buffer.put_value(0, &ReplyBytesRequest { length, mode });
    let result = buffer.send(REPLY_BYTES, server, abi::message::sizes(total, 4, 0));
    (result, buffer)
}

/// INSPECT with `data`: the registers and the inspection.
fn inspect(server: Descriptor, data: &[u8], total: u16) -> (TrapArgs, Inspection) {
    let mut buffer = Buffer::new();
    buffer.put_value(0, data);
    let result = buffer.send(
        INSPECT,
        server,
        abi::message::sizes(total, data.len() as u16, 0),
    );
    let inspection = buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();
    (result, inspection)
}

fn receive_registers(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    // A fresh reference: its cookie is 0 whatever other checks did.
    let fresh = duplicate(server, Rights::DOOR_CLIENT)?;
    let data = b"hello, server";
    let (result, inspection) = inspect(fresh.descriptor(), data, 200);
    expect_registers(
        "the INSPECT reply",
        result,
        TrapArgs::completed(0, 0, INSPECTION_REPLY, 0),
    )?;
    let expected = TrapArgs {
        arg0: INSPECT.bits(),
        arg1: 0,
        arg2: inspection.buffer,
        arg3: abi::message::sizes(200, data.len() as u16, 0),
    };
    expect_registers(
        "RECEIVE's registers in the server",
        inspection.received.into(),
        expected,
    )?;
    expect_eq(
        "the data the server received",
        &inspection.data_prefix[..data.len()],
        &data[..],
    )
}

fn reply_lengths(fixture: &mut Fixture, lengths: &[u16]) -> Outcome {
    let server = fixture.server()?;
    for &length in lengths {
        let (result, buffer) =
            reply_bytes(server, length, reply_mode::REPLY_RECEIVE, MAX_TOTAL_SIZE);
        let expected =
            TrapArgs::completed(pattern_word(length, 0), pattern_word(length, 4), length, 0);
        expect_registers(format!("a reply of {length} bytes"), result, expected)?;
        let pattern: Vec<u8> = (0..usize::from(length)).map(pattern_byte).collect();
        expect_eq(
            format!("the {length} bytes of the reply"),
            &buffer.bytes()[..usize::from(length)],
            &pattern[..],
        )?;
    }
    Ok(())
}

fn reply_returns_zeros(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let (result, _) = reply_bytes(server, 4, reply_mode::REPLY_THEN_RECEIVE, 64);
    expect_registers(
        "a reply sent with REPLY",
        result,
        TrapArgs::completed(pattern_word(4, 0), 0, 4, 0),
    )?;
    let (result, inspection) = inspect(server, &[], MAX_TOTAL_SIZE);
    expect_registers(
        "INSPECT",
        result,
        TrapArgs::completed(0, 0, INSPECTION_REPLY, 0),
    )?;
    expect_registers(
        "what the server's REPLY returned",
        inspection.last_reply.into(),
        TrapArgs::default(),
    )?;
    expect_eq(
        "how the next call arrived (0: RECEIVE)",
        inspection.via,
        VIA_RECEIVE,
    )
}

fn reply_receive_receives(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let (result, _) = reply_bytes(server, 8, reply_mode::REPLY_RECEIVE, 64);
    expect_registers(
        "a reply sent with REPLY_RECEIVE",
        result,
        TrapArgs::completed(pattern_word(8, 0), pattern_word(8, 4), 8, 0),
    )?;
    let (result, inspection) = inspect(server, b"next", 300);
    expect_registers(
        "INSPECT",
        result,
        TrapArgs::completed(0, 0, INSPECTION_REPLY, 0),
    )?;
    expect_eq(
        "how the next call arrived (1: REPLY_RECEIVE)",
        inspection.via,
        VIA_REPLY_RECEIVE,
    )?;
    let expected = TrapArgs {
        arg0: INSPECT.bits(),
        arg1: inspection.received.arg1,
        arg2: inspection.buffer,
        arg3: abi::message::sizes(300, 4, 0),
    };
    expect_registers(
        "REPLY_RECEIVE's registers in the server",
        inspection.received.into(),
        expected,
    )
}

fn reply_too_large(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    // 32 bytes into 16: the helper's REPLY_RECEIVE fails, and it answers
    // with an error reply carrying that error (8 bytes fit).
    let (result, _) = reply_bytes(server, 32, reply_mode::REPLY_RECEIVE, 16);
    expect_registers(
        "a 32-byte reply to a 16-byte buffer (then the helper's error reply)",
        result,
        TrapArgs::completed(u32::MAX, Error::ReplyTooLarge as u32, 8, 0),
    )?;
    // The same from inside the test, with the replier's registers.
    let door = ScratchDoor::new()?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[1; 8], 16)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_eq("RECEIVE of the call", received.arg0, SCRATCH_CALL.bits())?;
    for (index, byte) in buffer.bytes_mut()[..32].iter_mut().enumerate() {
        *byte = pattern_byte(index);
    }
    let too_large = buffer.reply(0, abi::message::sizes(32, 32, 0));
    expect_error(
        "REPLY of 32 bytes to a 16-byte buffer",
        too_large,
        Error::ReplyTooLarge,
    )?;
    let fits = buffer.reply(0, abi::message::sizes(16, 16, 0));
    expect_registers(
        "the REPLY of 16 bytes that follows",
        fits,
        TrapArgs::default(),
    )?;
    let (result, reply) = caller.join()?;
    expect_registers(
        "the caller's result",
        result,
        TrapArgs::completed(pattern_word(16, 0), pattern_word(16, 4), 16, 0),
    )?;
    expect_eq(
        "the caller's reply bytes",
        &reply.bytes()[..16],
        &buffer.bytes()[..16],
    )
}

fn reply_receive_door_dead(_: &mut Fixture) -> Outcome {
    let mut door = ScratchDoor::new()?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[2; 8], 64)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_eq("RECEIVE of the call", received.arg0, SCRATCH_CALL.bits())?;
    door.close_owner()?;
    let result = buffer.reply_receive(0, abi::message::sizes(64, 0, 0));
    expect_registers(
        "REPLY_RECEIVE on a door whose owner reference was closed",
        result,
        TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::error(Error::PeerDied)
        },
    )?;
    // Closing the owner reference failed the call in service (ABI.md §4.1).
    let (result, _) = caller.join()?;
    expect_registers(
        "the caller's result",
        result,
        TrapArgs::error(Error::PeerDied),
    )
}

fn reply_receive_too_small(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let small = spawn_caller(door.client(), SCRATCH_CALL, &[3; 8], 64)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_eq(
        "RECEIVE of the first call",
        received.arg0,
        SCRATCH_CALL.bits(),
    )?;
    let big = spawn_caller(door.client(), Function(SCRATCH_CALL.0 + 1), &[4; 100], 200)?;
    // A second thread of ours RECEIVEs with size 0: it returns
    // RECEIVE_BUFFER_TOO_SMALL once the 100-byte call is queued (and
    // leaves it queued), so the REPLY_RECEIVE below meets it at once.
    let owner = door.owner();
    // Made here: a worker that allocated before its trap could be
    // held up on the heap lock or a MAP_ANONYMOUS and lose its turn.
    let mut watcher_buffer = Buffer::new();
    let watcher = spawn_worker(move || watcher_buffer.receive(owner, 0))?;
    let queued = watcher.join()?;
    expect_registers(
        "the other thread's RECEIVE of 0 bytes",
        queued,
        TrapArgs {
            arg3: abi::message::sizes(200, 100, 0),
            ..TrapArgs::error(Error::ReceiveBufferTooSmall)
        },
    )?;
    let result = buffer.reply_receive(0, abi::message::sizes(16, 0, 0));
    let expected = TrapArgs {
        arg0: 0xffff_ffff,
        arg1: Error::ReceiveBufferTooSmall as u64,
        arg2: REPLY_DELIVERED,
        arg3: abi::message::sizes(200, 100, 0),
    };
    let outcome = expect_registers(
        "REPLY_RECEIVE (16 bytes) with a 100-byte message queued",
        result,
        expected,
    );
    // Whatever it returned, the big call is still queued: serve it.
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
    outcome?;
    expect_eq(
        "RECEIVE of the second call",
        received.arg0,
        (Function(SCRATCH_CALL.0 + 1)).bits(),
    )?;
    expect_registers("REPLY to it", replied, TrapArgs::default())?;
    let (first, _) = small.join()?;
    expect_registers(
        "the first caller's result",
        first,
        TrapArgs::completed(0, 0, 0, 0),
    )?;
    let (second, _) = big.join()?;
    expect_registers(
        "the second caller's result",
        second,
        TrapArgs::completed(0, 0, 0, 0),
    )
}

/// How the receive half of a waiting REPLY_RECEIVE is made to fail.
#[derive(Clone, Copy, Debug)]
enum Wakeup {
    /// The owner reference is closed: PEER_DIED.
    DoorDies,
    /// The owner reference moves to another process: NOT_OWNER.
    OwnerMoves,
    /// A message too big for the 16-byte buffer arrives: RECEIVE_BUFFER_TOO_SMALL.
    BigMessage,
}

/// A worker of the test serves one call of ours with REPLY_RECEIVE (16
/// bytes), then its receive half waits until `wakeup` ends it. Returns
/// what that REPLY_RECEIVE returned and what ABI.md §4.4 says it must.
fn woken_reply_receive(wakeup: Wakeup) -> Result<(TrapArgs, TrapArgs), Failure> {
    let mut door = ScratchDoor::new()?;
    let owner = door.owner();
    // Made here: a worker that allocated before its trap could be
    // held up on the heap lock or a MAP_ANONYMOUS and lose its turn.
    let mut buffer = Buffer::new();
    let server = spawn_worker(move || {
        let received = buffer.receive(owner, MAX_TOTAL_SIZE);
        let waited = buffer.reply_receive(0, abi::message::sizes(16, 0, 0));
        (received, waited)
    })?;
    let mut buffer = Buffer::new();
    let called = buffer.send(SCRATCH_CALL, door.client(), abi::message::sizes(64, 0, 0));
    expect_registers(
        "our call, answered by REPLY_RECEIVE",
        called,
        TrapArgs::completed(0, 0, 0, 0),
    )?;
    // The worker now waits in the receive half.
    let (error, sizes) = match wakeup {
        Wakeup::DoorDies => {
            door.close_owner()?;
            (Error::PeerDied, 0)
        }
        Wakeup::OwnerMoves => {
            let helper = userlib::kernel::spawn(
                ipc_test_helper::PROGRAM,
                ipc_test_helper::role::EXIT_ON_CALL.as_bytes(),
                &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
            )
            .setup("SPAWN with the owner reference")?;
            door.owner_moved();
            drop(helper);
            (Error::NotOwner, 0)
        }
        Wakeup::BigMessage => {
            let big = spawn_caller(door.client(), SCRATCH_CALL, &[4; 100], 200)?;
            // Wait for the worker, then serve the big call it left queued.
            let outcome = server.join()?;
            let received = buffer.receive(owner, MAX_TOTAL_SIZE);
            let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
            expect_eq(
                "RECEIVE of the big call",
                received.arg0,
                SCRATCH_CALL.bits(),
            )?;
            expect_registers("REPLY to it", replied, TrapArgs::default())?;
            big.join()?;
            let expected = TrapArgs {
                arg2: REPLY_DELIVERED,
                arg3: abi::message::sizes(200, 100, 0),
                ..TrapArgs::error(Error::ReceiveBufferTooSmall)
            };
            expect_eq("the worker's RECEIVE", outcome.0.arg0, SCRATCH_CALL.bits())?;
            return Ok((outcome.1, expected));
        }
    };
    let (received, waited) = server.join()?;
    if matches!(wakeup, Wakeup::OwnerMoves) {
        // The helper serves the door now: a call ends it.
        let _ = buffer.send(INSPECT, door.client(), abi::message::sizes(64, 0, 0));
    }
    expect_eq("the worker's RECEIVE", received.arg0, SCRATCH_CALL.bits())?;
    let expected = TrapArgs {
        arg2: REPLY_DELIVERED,
        arg3: sizes,
        ..TrapArgs::error(error)
    };
    Ok((waited, expected))
}

fn reply_receive_woken(_: &mut Fixture) -> Outcome {
    let mut wrong = Vec::new();
    for wakeup in [Wakeup::DoorDies, Wakeup::OwnerMoves, Wakeup::BigMessage] {
        let (got, expected) = woken_reply_receive(wakeup)?;
        if got != expected {
            wrong.push((wakeup, Registers(expected), Registers(got)));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let list = |pick: fn(&(Wakeup, Registers, Registers)) -> Registers| {
        wrong
            .iter()
            .map(|entry| format!("{:?} {}", entry.0, pick(entry)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(Failure::new(
        "the waiting REPLY_RECEIVE's return",
        list(|entry| entry.1),
        list(|entry| entry.2),
    ))
}

/// COOKIE through `reference`: returns the cookie the call arrived with
/// and stores `new`.
fn swap_cookie(reference: Descriptor, new: u64) -> Result<u64, crate::check::Failure> {
    let mut buffer = Buffer::new();
    buffer.put_value(0, &new);
    let result = buffer.send(COOKIE, reference, abi::message::sizes(64, 8, 0));
    expect_registers("COOKIE", result, TrapArgs::completed(0, 0, 16, 0))?;
    buffer
        .get(REPLY_PAYLOAD_OFFSET)
        .setup("the cookie in the reply")
}

const COOKIE_A: u64 = 0xfedc_ba98_7654_3210;
const COOKIE_B: u64 = 0x8000_0000_0000_0001;

fn cookies_start_at_zero(fixture: &mut Fixture) -> Outcome {
    let reference = duplicate(fixture.server()?, Rights::DOOR_CLIENT)?;
    let reference = reference.descriptor();
    expect_eq(
        "the first cookie of a new reference",
        swap_cookie(reference, COOKIE_A)?,
        0,
    )?;
    expect_eq(
        "the cookie set by the first reply",
        swap_cookie(reference, COOKIE_B)?,
        COOKIE_A,
    )?;
    expect_eq(
        "the cookie set by the second reply",
        swap_cookie(reference, 0)?,
        COOKIE_B,
    )
}

fn cookies_per_reference(fixture: &mut Fixture) -> Outcome {
    let first = duplicate(fixture.server()?, Rights::DOOR_CLIENT)?;
    expect_eq(
        "a new reference's cookie",
        swap_cookie(first.descriptor(), COOKIE_A)?,
        0,
    )?;
    let second = duplicate(first.descriptor(), Rights::DOOR_CLIENT)?;
    expect_eq(
        "the cookie of a DUPLICATE of a reference with a cookie",
        swap_cookie(second.descriptor(), COOKIE_B)?,
        0,
    )?;
    expect_eq(
        "the original's cookie after its duplicate's changed",
        swap_cookie(first.descriptor(), 1)?,
        COOKIE_A,
    )?;
    expect_eq(
        "the duplicate's cookie after the original's changed",
        swap_cookie(second.descriptor(), 2)?,
        COOKIE_B,
    )
}

/// Calls echo's COUNT `times` through `reference`: its cookie becomes `times`.
fn count(reference: Descriptor, times: u64) -> Outcome {
    for _ in 0..times {
        let mut message = Message::new();
        userlib::call(reference, echo::COUNT, &mut message).setup("echo's COUNT")?;
    }
    Ok(())
}

fn cookies_travel(fixture: &mut Fixture) -> Outcome {
    let echo = fixture.echo()?;
    let server = fixture.server()?;
    let copied = duplicate(echo, Rights::DOOR_CLIENT)?;
    count(copied.descriptor(), 3)?;
    let moved = duplicate(echo, Rights::DOOR_CLIENT)?;
    count(moved.descriptor(), 5)?;
    let moved = OwnedDescriptor::into_raw(moved);
    let mut buffer = Buffer::new();
    buffer.put_slot_of(
        0,
        0,
        DescriptorSlot::copy(copied.descriptor(), Rights::DOOR_CLIENT),
    );
    buffer.put_slot_of(0, 1, DescriptorSlot::moving(moved, Rights::DOOR_CLIENT));
    let result = buffer.send(COUNT_ARRIVED, server, abi::message::sizes(256, 0, 2));
    expect_registers(
        "COUNT_ARRIVED",
        result,
        TrapArgs::completed(2, 0, 8 + 16, 0),
    )?;
    let cookies: [u64; 2] = buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();
    expect_eq(
        "the cookies the helper's copy (cookie 3 here) and moved reference (cookie 5) showed",
        cookies,
        [0, 5],
    )?;
    // The copy kept its own cookie here.
    let mut message = Message::new();
    userlib::call(copied.descriptor(), echo::COUNT, &mut message).setup("echo's COUNT")?;
    expect_eq(
        "the cookie of the reference that was copied",
        message.read_payload::<u64>(0),
        Some(3),
    )
}

fn cookie_follows_the_reference(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let first = duplicate(door.client(), Rights::DOOR_CLIENT)?.into_raw();
    let caller = spawn_caller(first, SCRATCH_CALL, &[1; 8], 64)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_eq("RECEIVE of the call", received.arg0, SCRATCH_CALL.bits())?;
    // While the call is served, its reference is closed and a new one
    // takes its number.
    userlib::kernel::close(first).setup("CLOSE of the caller's reference")?;
    let mut spares = Vec::new();
    let reused = loop {
        let copy = duplicate(door.client(), Rights::DOOR_CLIENT)?;
        if copy.descriptor() == first {
            break copy;
        }
        if spares.len() > 1024 {
            return Err(Failure::new(
                "DUPLICATE",
                "the closed number again",
                "other numbers",
            ));
        }
        spares.push(copy);
    };
    drop(spares);
    expect_registers(
        "REPLY with a cookie",
        buffer.reply(0xc00c_1e00_0000_0001, abi::message::sizes(0, 0, 0)),
        TrapArgs::default(),
    )?;
    let (result, _) = caller.join()?;
    expect_registers(
        "the caller's result",
        result,
        TrapArgs::completed(0, 0, 0, 0),
    )?;
    let second = spawn_caller(reused.descriptor(), SCRATCH_CALL, &[2; 8], 64)?;
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
    second.join()?;
    expect_registers("REPLY to the second call", replied, TrapArgs::default())?;
    expect_eq(
        "the cookie of the new reference with the old number",
        received.arg1,
        0,
    )
}
