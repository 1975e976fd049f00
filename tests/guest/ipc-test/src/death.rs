//! Death, in each phase of a call, of a whole process: a server that exits
//! fails the calls it had queued or in service with PEER_DIED; a client
//! that dies cancels its call, so the server's REPLY gets CALLER_GONE
//! (which REPLY_RECEIVE ignores) and a queued call of the dead client is
//! never delivered. (A receiver whose door is closed or moves away while it
//! waits is the conformance suite's MSG-DEATH-006 and MSG-RECV-016.)

use alloc::format;

use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::{Error, Rights, TrapArgs};
use ipc_test_helper::{DOOMED_CALL, LAST_CALL, role};
use userlib::OwnedDescriptor;
use userlib::kernel::{self, DoorKind};
use userlib::raw::Buffer;

use crate::check::{Check, Failure, Outcome, Setup, expect_error, expect_registers};
use crate::fixture::{Fixture, SCRATCH_CALL, ScratchDoor, spawn_caller, spawn_helper};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "PEER_DIED: the server process exits while serving the call",
        run: exit_in_service,
    },
    Check {
        name: "PEER_DIED: the server process exits while the call is queued",
        run: exit_while_queued,
    },
    Check {
        name: "CALLER_GONE: REPLY to a caller whose process exited; the message is dropped",
        run: caller_gone,
    },
    Check {
        name: "CALLER_GONE: REPLY_RECEIVE ignores it and receives the next call",
        run: reply_receive_after_caller_gone,
    },
    Check {
        name: "a queued call of a process that exited is cancelled, never delivered",
        run: dead_client_call_cancelled,
    },
];

fn exit_in_service(_: &mut Fixture) -> Outcome {
    let helper = spawn_helper(role::EXIT_ON_CALL, &[])?;
    let mut buffer = Buffer::new();
    buffer.put_value(0, b"last words");
    let result = buffer.send(LAST_CALL, helper.client(), abi::message::sizes(64, 10, 0));
    expect_error(
        "the call the helper received before exiting",
        result,
        Error::PeerDied,
    )
}

fn exit_while_queued(_: &mut Fixture) -> Outcome {
    let helper = spawn_helper(role::EXIT_WHEN_QUEUED, &[])?;
    let mut buffer = Buffer::new();
    buffer.put_value(0, b"queued");
    let result = buffer.send(LAST_CALL, helper.client(), abi::message::sizes(64, 6, 0));
    expect_error(
        "the call queued when the helper exited",
        result,
        Error::PeerDied,
    )
}

/// A `call-then-die` helper: its second thread calls `door`; returns a
/// client reference to the helper's own door (a call there makes it
/// exit) and its process handle.
fn doomed_caller(door: &ScratchDoor) -> Result<(OwnedDescriptor, OwnedDescriptor), Failure> {
    let own = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
    let process = kernel::spawn(
        ipc_test_helper::PROGRAM,
        role::CALL_THEN_DIE.as_bytes(),
        &[
            DescriptorSlot::copy(door.client(), Rights::DOOR_CLIENT),
            DescriptorSlot::moving(own.owner.descriptor(), Rights::DOOR_OWNER),
        ],
    )
    .setup("SPAWN of call-then-die")?;
    let _ = own.owner.into_raw();
    Ok((own.client, process))
}

/// Makes the `call-then-die` helper exit (a call on its door).
fn end(helper: &OwnedDescriptor) -> Outcome {
    let mut buffer = Buffer::new();
    let result = buffer.send(
        LAST_CALL,
        helper.descriptor(),
        abi::message::sizes(64, 0, 0),
    );
    expect_error(
        "the call that makes the helper exit",
        result,
        Error::PeerDied,
    )
}

/// The doomed call as RECEIVE returns it.
fn doomed(buffer: &mut Buffer) -> TrapArgs {
    TrapArgs {
        arg0: DOOMED_CALL.bits(),
        arg1: 0,
        arg2: buffer.address(),
        arg3: abi::message::sizes(64, 8, 0),
    }
}

fn caller_gone(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let (helper, _process) = doomed_caller(&door)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_registers(
        "RECEIVE of the helper's call",
        received,
        doomed(&mut buffer),
    )?;
    end(&helper)?;
    expect_error(
        "REPLY to the dead helper's call",
        buffer.reply(0, abi::message::sizes(8, 8, 0)),
        Error::CallerGone,
    )?;
    expect_error(
        "a second REPLY",
        buffer.reply(0, abi::message::sizes(8, 8, 0)),
        Error::NothingToReply,
    )
}

fn reply_receive_after_caller_gone(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let (helper, _process) = doomed_caller(&door)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_registers(
        "RECEIVE of the helper's call",
        received,
        doomed(&mut buffer),
    )?;
    end(&helper)?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[8; 8], 64)?;
    let next = buffer.reply_receive(0, abi::message::sizes(MAX_TOTAL_SIZE, 8, 0));
    let expected = TrapArgs {
        arg0: SCRATCH_CALL.bits(),
        arg1: 0,
        arg2: buffer.address(),
        arg3: abi::message::sizes(64, 8, 0),
    };
    expect_registers(
        "REPLY_RECEIVE to the dead helper's call (receives the next call)",
        next,
        expected,
    )?;
    expect_registers(
        "REPLY to the next call",
        buffer.reply(0, abi::message::sizes(0, 0, 0)),
        TrapArgs::default(),
    )?;
    let (result, _) = caller.join()?;
    expect_registers(
        "the next caller's result",
        result,
        TrapArgs::completed(0, 0, 0, 0),
    )
}

fn dead_client_call_cancelled(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let (helper, _process) = doomed_caller(&door)?;
    let mut buffer = Buffer::new();
    // Size 0: returns (RECEIVE_BUFFER_TOO_SMALL) as soon as the call is queued.
    let queued = buffer.receive(door.owner(), 0);
    expect_registers(
        "RECEIVE of 0 bytes with the helper's call queued",
        queued,
        TrapArgs {
            arg3: abi::message::sizes(64, 8, 0),
            ..TrapArgs::error(Error::ReceiveBufferTooSmall)
        },
    )?;
    end(&helper)?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[9; 8], 64)?;
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    let expected = TrapArgs {
        arg0: SCRATCH_CALL.bits(),
        arg1: 0,
        arg2: buffer.address(),
        arg3: abi::message::sizes(64, 8, 0),
    };
    expect_registers(
        format!(
            "the RECEIVE after the helper died (not its call {:#x})",
            DOOMED_CALL.0
        ),
        received,
        expected,
    )?;
    expect_registers(
        "REPLY to the live call",
        buffer.reply(0, abi::message::sizes(0, 0, 0)),
        TrapArgs::default(),
    )?;
    let (result, _) = caller.join()?;
    expect_registers(
        "the live caller's result",
        result,
        TrapArgs::completed(0, 0, 0, 0),
    )
}
