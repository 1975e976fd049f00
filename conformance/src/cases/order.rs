//! MSG-ORDER: the order in which waiting callers are served (ABI.md §4.1,
//! §4.2): first come, first served, whatever reference or process they
//! call from, and a message too large for the receive buffer keeps its
//! place at the head (§9 D3).

use abi::function::USER_BASE;
use abi::{DescriptorSlot, Error, Rights};

use super::kit::{self, Answer, MAX, USER_CALL, finished, queued, receive};
use crate::case::Case;
use crate::expect::{Expect, Field, sizes};
use crate::peer::Step;

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-ORDER-001",
        rule: "three callers queued in the order A, B, C are received in that order",
        section: "4.1",
        decisions: &[],
        expect: Expect::received("the third RECEIVE", USER_BASE, 0, sizes(64, 1, 0))
            .with_buffer(&[(0, Field::Bytes(b"C"))]),
        run: |context| {
            let door = context.user_door()?;
            let mut calls = alloc::vec::Vec::new();
            for name in [b"A", b"B", b"C"] {
                calls.push(queued(context, door.client, name, 64)?);
            }
            let mut last = None;
            for name in [b"A", b"B", b"C"] {
                let (served, mut buffer) = receive(door.owner, MAX)?;
                context.check(
                    served.bytes.first() == name.first(),
                    &alloc::format!("expected {} next", char::from(name[0])),
                );
                kit::reply(&mut buffer, &Answer::default())?;
                last = Some(served);
            }
            for call in &calls {
                let _ = finished(context, call, "a caller")?;
            }
            let last = last.unwrap_or_default();
            Ok(context.observe_buffer(last.received, last.msg_ptr, last.bytes))
        },
    },
    Case {
        id: "MSG-ORDER-002",
        rule: "arrival order holds across references and processes: a call through the client, one from a peer, one through a duplicate",
        section: "4.1",
        decisions: &[],
        expect: Expect::received("the third RECEIVE", USER_BASE, 0, sizes(64, 1, 0))
            .with_buffer(&[(0, Field::Bytes(b"3"))]),
        run: |context| {
            let door = context.user_door()?;
            let copy = context.duplicate(door.client, Rights::SEND)?;
            let first = queued(context, door.client, b"1", 64)?;
            let peer = context.peer(&[DescriptorSlot::copy(door.client, Rights::SEND)])?;
            peer.start(0, &[Step::send(USER_CALL, 2, b"2", &[], 64)])?;
            context.settle();
            let third = queued(context, copy, b"3", 64)?;
            let mut last = None;
            for name in [b"1", b"2", b"3"] {
                let (served, mut buffer) = receive(door.owner, MAX)?;
                context.check(
                    served.bytes.first() == name.first(),
                    &alloc::format!("expected call {} next", char::from(name[0])),
                );
                kit::reply(&mut buffer, &Answer::default())?;
                last = Some(served);
            }
            let _ = finished(context, &first, "the first caller")?;
            let _ = finished(context, &third, "the third caller")?;
            let _ = kit::peer_results(context, &peer, 0)?;
            let last = last.unwrap_or_default();
            Ok(context.observe_buffer(last.received, last.msg_ptr, last.bytes))
        },
    },
    Case {
        id: "MSG-ORDER-003",
        rule: "a message too large for the receive buffer stays at the head: a small RECEIVE reports its sizes, not the small message behind it",
        section: "4.2",
        decisions: &["D3"],
        expect: Expect::error("the small RECEIVE", Error::ReceiveBufferTooSmall)
            .with_arg3(sizes(64, 32, 0)),
        run: |context| {
            let door = context.user_door()?;
            let big = queued(context, door.client, &[1; 32], 64)?;
            let small = queued(context, door.client, b"tiny", 64)?;
            let (refused, _) = receive(door.owner, 16)?;
            for (length, what) in [(32usize, "the large message"), (4, "the small one")] {
                let (served, mut buffer) = receive(door.owner, MAX)?;
                let size = abi::MessageSizes::from_bits(served.received.arg3).data_size();
                context.check(
                    usize::from(size) == length,
                    &alloc::format!("expected {what} next, got {size} bytes"),
                );
                kit::reply(&mut buffer, &Answer::default())?;
            }
            let _ = finished(context, &big, "the large caller")?;
            let _ = finished(context, &small, "the small caller")?;
            Ok(context.observe(refused.received))
        },
    },
];
