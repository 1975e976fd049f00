//! Descriptors between three processes. The test (A) COPYs an
//! event with reduced rights to the relay (B), which MOVEs it on to the
//! signaller (C), which signals it; C then MOVEs it back to A with the
//! SIGNAL right only. A checks that what came back after the three hops is
//! its own event with the rights the last hop granted: C's signal and its
//! own through the returned reference reach its EVENT_WAIT, and a WAIT
//! through that reference is MISSING_RIGHT. (Each hop's rule on its own,
//! between two processes, is a conformance case: MSG-SLOT-018 to
//! MSG-SLOT-022, MSG-REPLY-017, MSG-FUNC-043, MSG-KCALL-051; the checks of
//! each hop that stood here are listed in `tests/guest/REMOVED_CHECKS.md`.)

use abi::kcall::{DescriptorInfo, REPLY_PAYLOAD_OFFSET};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::{Descriptor, Error, KernelFunction, ObjectKind, Rights, TransferMode, TrapArgs};
use ipc_test_helper::{GIVE_BACK, RELAY, RelayReport, SignalReport, role};
use userlib::OwnedDescriptor;
use userlib::raw::Buffer;

use crate::check::{
    Check, Failure, Outcome, Registers, Setup, expect_eq, expect_error, expect_registers,
};
use crate::fixture::{Fixture, event, info, kcall, spawn_helper};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[Check {
    name: "transfer: the event A COPYs to B, B MOVEs to C and C MOVEs back is A's own, with the rights of the last hop (signals through it reach A's EVENT_WAIT, a WAIT through it is MISSING_RIGHT)",
    run: the_event_comes_back_along_the_chain,
}];

/// The rights A grants B.
const GRANTED: Rights = Rights(Rights::SIGNAL.0 | Rights::TRANSFER.0);

/// What the exchange produced, for the checks to examine.
#[derive(Debug)]
pub struct RelayOutcome {
    /// A's SEND of RELAY to B.
    relay: TrapArgs,
    /// B's report (with C's inside).
    report: RelayReport,
    /// A's SEND of GIVE_BACK to C.
    give_back: TrapArgs,
    /// The slot the event came back in.
    returned_slot: Option<DescriptorSlot>,
    /// DESCRIPTOR_INFO of the returned event.
    returned_info: (TrapArgs, Option<DescriptorInfo>),
    /// EVENT_SIGNAL through the returned event, EVENT_WAIT on A's event
    /// twice (the second only if the first left a count).
    own_signal: TrapArgs,
    first_wait: TrapArgs,
    second_wait: Option<TrapArgs>,
    /// EVENT_WAIT through the returned event (after another signal, so a
    /// kernel that wrongly allows it does not block).
    wait_through_returned: TrapArgs,
    _keep: [OwnedDescriptor; 5],
    _returned: Option<OwnedDescriptor>,
}

/// Runs the exchange (once; the checks share it).
fn exchange() -> Result<RelayOutcome, Failure> {
    let signaller = spawn_helper(role::SIGNALLER, &[])?;
    let relay = spawn_helper(
        role::RELAY,
        &[DescriptorSlot::copy(
            signaller.client(),
            Rights::DOOR_CLIENT,
        )],
    )?;
    let event = event()?;

    let mut buffer = Buffer::new();
    buffer.put_slot_of(0, 0, DescriptorSlot::copy(event.descriptor(), GRANTED));
    let sent = buffer.send(
        RELAY,
        relay.client(),
        abi::message::sizes(MAX_TOTAL_SIZE, 0, 1),
    );
    let report: RelayReport = buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();

    let mut buffer = Buffer::new();
    let give_back = buffer.send(
        GIVE_BACK,
        signaller.client(),
        abi::message::sizes(MAX_TOTAL_SIZE, 0, 0),
    );
    let returned_slot = (give_back.arg3 == abi::message::sizes(0, 8, 1))
        .then(|| buffer.slot(8, 0))
        .flatten();
    let returned =
        returned_slot.and_then(|slot| OwnedDescriptor::from_raw(Descriptor(slot.descriptor)));
    let returned_number = returned
        .as_ref()
        .map_or(Descriptor::NULL, OwnedDescriptor::descriptor);
    let returned_info = info(returned_number);

    let (own_signal, _) = kcall(KernelFunction::EventSignal, returned_number, &[], 64);
    let (first_wait, _) = kcall(KernelFunction::EventWait, event.descriptor(), &[], 64);
    let second_wait = (first_wait == TrapArgs::completed(1, 0, 8, 0))
        .then(|| kcall(KernelFunction::EventWait, event.descriptor(), &[], 64).0);
    let _ = kcall(KernelFunction::EventSignal, returned_number, &[], 64);
    let (wait_through_returned, _) = kcall(KernelFunction::EventWait, returned_number, &[], 64);
    if wait_through_returned == TrapArgs::error(Error::MissingRight) {
        // Take back the count the extra signal left.
        let _ = kcall(KernelFunction::EventWait, event.descriptor(), &[], 64);
    }
    Ok(RelayOutcome {
        relay: sent,
        report,
        give_back,
        returned_slot,
        returned_info,
        own_signal,
        first_wait,
        second_wait,
        wait_through_returned,
        _keep: [
            event,
            relay.client,
            relay.process,
            signaller.client,
            signaller.process,
        ],
        _returned: returned,
    })
}

/// The shared exchange.
fn outcome(fixture: &mut Fixture) -> Result<&RelayOutcome, Failure> {
    fixture
        .relay
        .get_or_insert_with(exchange)
        .as_ref()
        .map_err(Clone::clone)
}

fn the_event_comes_back_along_the_chain(fixture: &mut Fixture) -> Outcome {
    let outcome = outcome(fixture)?;
    expect_registers(
        "A's SEND of RELAY",
        outcome.relay,
        TrapArgs::completed(
            0,
            0,
            (REPLY_PAYLOAD_OFFSET + size_of::<RelayReport>()) as u16,
            0,
        ),
    )?;
    expect_registers(
        "B's SEND of FORWARD (a MOVE) to C",
        outcome.report.forward.into(),
        TrapArgs::completed(
            0,
            0,
            (REPLY_PAYLOAD_OFFSET + size_of::<SignalReport>()) as u16,
            0,
        ),
    )?;
    expect_registers(
        "A's SEND of GIVE_BACK to C",
        outcome.give_back,
        TrapArgs::completed(0, 0, 8, 1),
    )?;
    let slot = outcome.returned_slot.setup("the reply slot")?;
    expect_eq(
        "the reply slot (rights, mode, reserved)",
        (slot.rights, slot.mode, slot.reserved),
        (Rights::SIGNAL.0, TransferMode::Move as u32, 0),
    )?;
    expect_registers(
        "DESCRIPTOR_INFO of the returned event",
        outcome.returned_info.0,
        TrapArgs::completed(0, 0, 16, 0),
    )?;
    expect_eq(
        "the returned event (kind, rights)",
        outcome.returned_info.1.map(|i| (i.kind, i.rights)),
        Some((ObjectKind::Event as u32, Rights::SIGNAL.0)),
    )?;
    expect_error(
        "EVENT_WAIT through the returned event",
        outcome.wait_through_returned,
        Error::MissingRight,
    )?;
    expect_registers(
        "C's EVENT_SIGNAL",
        outcome.report.signaller.signal.into(),
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    expect_registers(
        "A's EVENT_SIGNAL through the returned event",
        outcome.own_signal,
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    expect_registers(
        "A's first EVENT_WAIT (C's and A's signals: one left)",
        outcome.first_wait,
        TrapArgs::completed(1, 0, 8, 0),
    )?;
    expect_eq(
        "A's second EVENT_WAIT (none left)",
        outcome.second_wait.map(Registers),
        Some(Registers(TrapArgs::completed(0, 0, 8, 0))),
    )
}
