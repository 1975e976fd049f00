//! MSG-ORDER: the order in which waiting callers are served (ABI.md §4.1,
//! §4.2): first come, first served, whatever reference or process they
//! call from, and a message too large for the receive buffer keeps its
//! place at the head (§9 D3); and a server runs at its caller's priority.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use abi::function::USER_BASE;
use abi::{Descriptor, DescriptorSlot, Error, MessageSizes, Rights};
use userlib::thread::RawEntry;

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
    Case {
        id: "MSG-ORDER-004",
        rule: "no priority inversion through IPC: a server thread of priority 2 serving a call from priority 16 runs at 16 until it replies, so its YIELD does not let a ready thread of priority 5 run",
        section: "4.1",
        decisions: &[],
        expect: Expect::replied("the call to the priority-2 server", 0, 0, 8, 0),
        run: |context| {
            let door = context.user_door()?;
            let event = context.adopt(userlib::kernel::event_create()?.into_raw());
            let go = context.adopt(userlib::kernel::event_create()?.into_raw());
            INHERIT_DOOR.store(door.owner.0, Ordering::SeqCst);
            INHERIT_EVENT.store(event.0, Ordering::SeqCst);
            INHERIT_GO.store(go.0, Ordering::SeqCst);
            MIDDLE_RAN.store(false, Ordering::SeqCst);
            static LOW: RawEntry = RawEntry {
                function: low_priority_server,
                argument: 0,
            };
            static MIDDLE: RawEntry = RawEntry {
                function: middle_priority_thread,
                argument: 0,
            };
            let low = userlib::thread::spawn_raw(&LOW, RAW_STACK, 2)?;
            context.adopt(low.into_raw());
            // The server signals when it starts; nothing at priority 5
            // exists yet. The priority-5 thread then waits until the server
            // holds the call and lets it go: whatever the timer does, the
            // server has inherited 16 by then (a call that arrives before
            // the server's RECEIVE is queued and served the same way).
            userlib::kernel::event_wait(event)?;
            let middle = userlib::thread::spawn_raw(&MIDDLE, RAW_STACK, 5)?;
            context.adopt(middle.into_raw());
            let call = kit::send(USER_CALL, door.client, b"inherit", &[], 64)?;
            // The middle thread and the server each signal once when done.
            for _ in 0..2 {
                userlib::kernel::event_wait(event)?;
            }
            context.check(
                MIDDLE_RAN.load(Ordering::SeqCst),
                "the priority-5 thread never ran",
            );
            Ok(context.observe(call.registers))
        },
    },
];

/// MSG-ORDER-004's threads are raw (no heap: a thread of priority 2 must
/// never hold the heap's lock while one of 16 waits for it) and learn their
/// descriptors here.
static INHERIT_DOOR: AtomicU32 = AtomicU32::new(0);
static INHERIT_EVENT: AtomicU32 = AtomicU32::new(0);
/// The event the server lets the priority-5 thread go with.
static INHERIT_GO: AtomicU32 = AtomicU32::new(0);
/// Set by the priority-5 thread when it runs.
static MIDDLE_RAN: AtomicBool = AtomicBool::new(false);
/// The raw threads' stacks.
const RAW_STACK: u64 = 16 * 1024;

/// Signals that it started, receives one call, lets the priority-5 thread
/// go, YIELDs, and replies msgRetVal 1 if that thread ran meanwhile, else 0.
extern "C" fn low_priority_server(_: u64) -> ! {
    let door = Descriptor(INHERIT_DOOR.load(Ordering::SeqCst));
    let event = Descriptor(INHERIT_EVENT.load(Ordering::SeqCst));
    let _ = userlib::kernel::event_signal(event);
    let mut buffer = [0u8; 64];
    if let Ok(received) = userlib::ipc::receive(door, &mut buffer) {
        let _ = userlib::kernel::event_signal(Descriptor(INHERIT_GO.load(Ordering::SeqCst)));
        let _ = userlib::kernel::yield_now();
        let ran = u32::from(MIDDLE_RAN.load(Ordering::SeqCst));
        buffer[..4].copy_from_slice(&ran.to_le_bytes());
        buffer[4..8].fill(0);
        let _ = userlib::ipc::reply(received.cookie, &mut buffer, MessageSizes::of(8, 8, 0));
    }
    let _ = userlib::kernel::event_signal(event);
    userlib::kernel::thread_exit(0)
}

/// Waits until the server lets it go, notes that it ran, signals, ends.
extern "C" fn middle_priority_thread(_: u64) -> ! {
    let _ = userlib::kernel::event_wait(Descriptor(INHERIT_GO.load(Ordering::SeqCst)));
    MIDDLE_RAN.store(true, Ordering::SeqCst);
    let _ = userlib::kernel::event_signal(Descriptor(INHERIT_EVENT.load(Ordering::SeqCst)));
    userlib::kernel::thread_exit(0)
}
