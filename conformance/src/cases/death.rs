//! MSG-DEATH: the end of a peer in each phase of a call (ABI.md §4.1, §4.2,
//! §4.3, §4.4, §7, §9 D7): the server's door closed or its process ended
//! (by exit or by a CPU exception) while a call is queued or being served,
//! while a thread waits in RECEIVE; the caller ended while its call is
//! queued or held. Nothing blocks forever because a peer died.

use abi::function::USER_BASE;
use abi::{DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};

use super::kit::{
    self, Answer, MAX, PEER_DOOR, USER_CALL, error, finished, peer_door, queued, receive,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, sizes};
use crate::peer::{Step, fault};
use userlib::raw::Buffer;

/// A call to a peer's door that the peer's job 0 holds (received, not
/// answered) when `hold` is true, or that stays queued; then `end` ends the
/// peer; the caller's SEND. A holding job then waits on an event nobody
/// signals, so its thread is alive (and the call unanswered) until `end`:
/// the caller must fail because the process ended, not because the thread
/// holding its call did.
fn server_ends(
    context: &mut Context,
    hold: bool,
    end: fn(&crate::peer::Peer) -> Result<(), Failed>,
) -> Outcome {
    let door = context.user_door()?;
    let event = context.adopt(userlib::kernel::event_create()?.into_raw());
    let peer = context.peer(&[
        DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER),
        DescriptorSlot::copy(event, Rights::EVENT),
    ])?;
    context.forget(door.owner);
    if hold {
        let wait = KernelFunction::EventWait.function();
        peer.start(
            0,
            &[
                Step::receive(PEER_DOOR, MAX, 0),
                Step::send(wait, PEER_DOOR + 1, &[], &[], 16),
            ],
        )?;
        context.settle();
    }
    let call = kit::caller(context, USER_CALL, door.client, b"doomed", &[], 64)?;
    context.settle();
    if hold {
        context.check(
            peer.join(0)?.is_none(),
            "the peer's job was not still holding the call (waiting on its event)",
        );
        context.check(!call.finished(), "the call ended before the server did");
    }
    end(&peer)?;
    let call = finished(context, &call, "the caller")?;
    Ok(context.observe(call.registers))
}

/// A peer whose job 0 calls the runner's door through its descriptor 2
/// with "doomed"; the runner holds the call when `hold`, else it stays
/// queued. Returns the peer, and the receive buffer when held.
fn caller_peer(
    context: &mut Context,
    door: &crate::context::Door,
    hold: bool,
) -> Result<(crate::peer::Peer, Option<Buffer>), Failed> {
    let peer = context.peer(&[DescriptorSlot::copy(door.client, Rights::SEND)])?;
    peer.start(0, &[Step::send(USER_CALL, 2, b"doomed", &[], 64)])?;
    context.settle();
    let buffer = if hold {
        let (served, buffer) = receive(door.owner, MAX)?;
        context.check(
            served.bytes.get(..6) == Some(&b"doomed"[..]),
            "the runner did not receive the peer's call",
        );
        Some(buffer)
    } else {
        None
    };
    Ok((peer, buffer))
}

fn exit(peer: &crate::peer::Peer) -> Result<(), Failed> {
    peer.exit()
}

fn crash(peer: &crate::peer::Peer) -> Result<(), Failed> {
    let registers = peer.fault(fault::INVALID_OPCODE)?;
    if registers == TrapArgs::error(Error::PeerDied) {
        Ok(())
    } else {
        Err(Failed(alloc::format!(
            "the peer survived ud2: {}",
            crate::context::describe_registers(&registers)
        )))
    }
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-DEATH-001",
        rule: "a SEND to a door whose owner reference was closed is PEER_DIED (step 11)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::PeerDied),
        run: |context| {
            let client = context.dead_door(userlib::kernel::DoorKind::User)?;
            let call = kit::send(USER_CALL, client, b"late", &[], 64)?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-DEATH-002",
        rule: "a queued call fails with PEER_DIED when the door's owner reference is closed",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("the queued caller's SEND", Error::PeerDied),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"queued", 64)?;
            context.close(door.owner)?;
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-DEATH-003",
        rule: "a queued call fails with PEER_DIED when the server's process exits (the kernel closes its references)",
        section: "4.1",
        decisions: &["D7"],
        expect: Expect::error("the caller's SEND", Error::PeerDied),
        run: |context| server_ends(context, false, exit),
    },
    Case {
        id: "MSG-DEATH-004",
        rule: "a call being served fails with PEER_DIED when the server's process exits",
        section: "4.1",
        decisions: &["D7"],
        expect: Expect::error("the caller's SEND", Error::PeerDied),
        run: |context| server_ends(context, true, exit),
    },
    Case {
        id: "MSG-DEATH-005",
        rule: "a call being served fails with PEER_DIED when the server's process ends on a CPU exception",
        section: "7",
        decisions: &["D7"],
        expect: Expect::error("the caller's SEND", Error::PeerDied),
        run: |context| server_ends(context, true, crash),
    },
    Case {
        id: "MSG-DEATH-006",
        rule: "a thread waiting in RECEIVE fails with PEER_DIED when the door's owner reference is closed",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("the waiting RECEIVE", Error::PeerDied),
        run: |context| {
            let door = context.user_door()?;
            let owner = door.owner;
            let waiting = context.job(move || receive(owner, MAX).map(|(served, _)| served))?;
            context.settle();
            context.close(door.owner)?;
            let waited = finished(context, &waiting, "the waiting receiver")?;
            Ok(context.observe(waited.received))
        },
    },
    Case {
        id: "MSG-DEATH-007",
        rule: "REPLY to a call whose caller's process died meanwhile is CALLER_GONE",
        section: "4.3",
        decisions: &["D7"],
        expect: Expect::error("REPLY", Error::CallerGone),
        run: |context| {
            let door = context.user_door()?;
            let (peer, buffer) = caller_peer(context, &door, true)?;
            let mut buffer =
                buffer.ok_or_else(|| Failed(alloc::string::String::from("no call held")))?;
            peer.exit()?;
            context.settle();
            let registers = kit::reply(&mut buffer, &Answer::data(b"too late"))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-DEATH-008",
        rule: "after CALLER_GONE the held message is dropped: another REPLY is NOTHING_TO_REPLY",
        section: "4.3",
        decisions: &["D7"],
        expect: Expect::error("the second REPLY", Error::NothingToReply),
        run: |context| {
            let door = context.user_door()?;
            let (peer, buffer) = caller_peer(context, &door, true)?;
            let mut buffer =
                buffer.ok_or_else(|| Failed(alloc::string::String::from("no call held")))?;
            peer.exit()?;
            context.settle();
            let first = kit::reply(&mut buffer, &Answer::data(b"too late"))?;
            context.check_registers("the first REPLY", &first, &error(Error::CallerGone));
            let registers = kit::reply(&mut buffer, &Answer::data(b"again"))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-DEATH-009",
        rule: "REPLY_RECEIVE ignores CALLER_GONE: it goes on to receive the next call",
        section: "4.4",
        decisions: &["D7"],
        expect: Expect::received("REPLY_RECEIVE", USER_BASE, 0, sizes(64, 4, 0))
            .with_buffer(&[(0, Field::Bytes(b"next"))]),
        run: |context| {
            let door = context.user_door()?;
            let (peer, buffer) = caller_peer(context, &door, true)?;
            let mut buffer =
                buffer.ok_or_else(|| Failed(alloc::string::String::from("no call held")))?;
            peer.exit()?;
            context.settle();
            let next = queued(context, door.client, b"next", 64)?;
            let registers = buffer.reply_receive(0, sizes(MAX, 0, 0));
            let observed = context.observe_buffer(registers, buffer.address(), buffer.snapshot(64));
            if registers.arg0 != 0xffff_ffff {
                kit::reply(&mut buffer, &Answer::default())?;
            }
            let next = finished(context, &next, "the next caller")?;
            context.check_registers(
                "the next caller's result",
                &next.registers,
                &kit::replied(0, 0, 0, 0),
            );
            Ok(observed)
        },
    },
    Case {
        id: "MSG-DEATH-010",
        rule: "a queued call whose caller's process died is dropped: the next RECEIVE gets the call queued behind it",
        section: "4.2",
        decisions: &["D7"],
        expect: Expect::received("RECEIVE", USER_BASE, 0, sizes(64, 6, 0))
            .with_buffer(&[(0, Field::Bytes(b"behind"))]),
        run: |context| {
            let door = context.user_door()?;
            let (peer, _) = caller_peer(context, &door, false)?;
            let behind = queued(context, door.client, b"behind", 64)?;
            peer.exit()?;
            context.settle();
            let (served, mut buffer) = receive(door.owner, MAX)?;
            if served.received.arg0 != 0xffff_ffff {
                kit::reply(&mut buffer, &Answer::default())?;
            }
            let behind = finished(context, &behind, "the caller behind")?;
            context.check_registers(
                "the result of the call behind",
                &behind.registers,
                &kit::replied(0, 0, 0, 0),
            );
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-DEATH-011",
        rule: "when a process exits the kernel closes its references: the door it owned is dead and a new SEND is PEER_DIED",
        section: "9",
        decisions: &["D7"],
        expect: Expect::error("SEND", Error::PeerDied),
        run: |context| {
            let peer = peer_door(context)?;
            peer.peer.exit()?;
            context.settle();
            let call = kit::send(USER_CALL, peer.client, b"anyone?", &[], 64)?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-DEATH-012",
        rule: "a call being served fails with PEER_DIED when the door's owner reference is closed (ABI.md §4.1, §8: queued or served)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("the caller's SEND", Error::PeerDied),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"served", 64)?;
            let (_, mut buffer) = receive(door.owner, MAX)?;
            context.close(door.owner)?;
            context.settle();
            if let Some(call) = call.take() {
                return Ok(context.observe(call?.registers));
            }
            context.fail(alloc::string::String::from(
                "the caller was still blocked after the owner reference was closed (it returned only when the held message was answered)",
            ));
            kit::reply(&mut buffer, &Answer::data(b"late"))?;
            let call = finished(context, &call, "the caller")?;
            Ok(context.observe(call.registers))
        },
    },
];
