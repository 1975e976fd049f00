//! The fast path against the slow path (`crate::fastpath`): two identical
//! worlds run the same random traps, one with the fast path and one with
//! every call on the slow path; after each trap the registers it returned
//! and the whole kernel and machine state (their `Debug` forms, which
//! print every field) must be the same. And the common round trip does
//! take the fast path.

use abi::{Descriptor, DescriptorSlot, KernelFunction, Rights, TrapArgs};

use crate::thread::Holding;
use proptest::prelude::*;

use super::fake_machine::DATA;
use super::harness::*;
use super::random::{apply, op, random_world};

/// The state of a world: the kernel and the machine, every field (the
/// arenas' entries one by one, the machine's contexts in thread order).
fn state(w: &World) -> (String, String) {
    use core::fmt::Write as _;
    let k = &w.k;
    let mut kernel = format!("{k:?}\n");
    for p in k.processes.ids() {
        let _ = writeln!(kernel, "{p:?}: {:?}", k.processes.get(p));
    }
    for t in k.threads.ids() {
        let _ = writeln!(kernel, "{t:?}: {:?}", k.threads.get(t));
    }
    for o in k.objects.ids() {
        let _ = writeln!(kernel, "{o:?}: {:?}", k.objects.get(o));
    }
    for f in k.frames.ids() {
        let _ = writeln!(kernel, "{f:?}: {:?}", k.frames.get(f));
    }
    let m = &w.m;
    let mut contexts: Vec<String> = m
        .contexts
        .iter()
        .map(|(t, c)| format!("{t:?}: {c:?}"))
        .collect();
    contexts.sort();
    let machine = format!(
        "{:?}\n{:?}\n{contexts:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        m.spaces, m.hints, m.console, m.anomalies, m.frames, m.free_list, m.io_ports
    );
    (kernel, machine)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_fast_path_does_exactly_what_the_slow_path_does(ops in prop::collection::vec(op(), 1..80)) {
        let mut fast = random_world();
        let mut slow = random_world();
        slow.k.fast_path_test.slow_only = true;
        prop_assert!(state(&fast) == state(&slow), "the two worlds start apart");
        for (i, op) in ops.iter().enumerate() {
            apply(&mut fast, op);
            apply(&mut slow, op);
            prop_assert_eq!(&fast.results, &slow.results, "results after op {} {:?}", i, op);
            let (fast_state, slow_state) = (state(&fast), state(&slow));
            if fast_state != slow_state {
                let (a, b) = if fast_state.0 == slow_state.0 {
                    (fast_state.1, slow_state.1)
                } else {
                    (fast_state.0, slow_state.0)
                };
                let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(0);
                let around = |text: &str| text.get(at.saturating_sub(200)..(at + 200).min(text.len())).unwrap_or_default().to_owned();
                prop_assert!(false, "state after op {} {:?} differs at {}:\nfast ...{}...\nslow ...{}...", i, op, at, around(&a), around(&b));
            }
        }
        prop_assert_eq!(slow.k.fast_path_test.hits, 0);
    }
}

#[test]
fn a_round_trip_takes_the_fast_path_both_ways() {
    let mut f = fixture(false, 1);
    let before = f.w.k.fast_path_test.hits;
    let (s, c) = (f.s(), f.c(0));
    let _ = f.w.receive(s, OWNER, DATA, 64);
    let _ = f.w.send(c, f.function, REF, msg(DATA, b"ping", 64));
    assert_eq!(f.w.k.fast_path_test.hits, before + 1, "the call");
    let _ = f.w.resume(s);
    let _ = f.w.reply_receive(s, 7, msg(DATA, b"pong", 64));
    assert_eq!(f.w.k.fast_path_test.hits, before + 2, "the reply");
    assert_eq!(
        f.w.resume(c),
        replied(u32::from_le_bytes(*b"pong"), 0, 4, 0)
    );
    f.w.assert_invariants();
}

#[test]
fn many_random_traps_take_the_fast_path() {
    // The property above is only worth something if its traps reach the
    // fast path: a fixed run of the same generator must hit it often.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let ops = prop::collection::vec(op(), 200..201)
        .new_tree(&mut runner)
        .map(|tree| proptest::strategy::ValueTree::current(&tree))
        .unwrap_or_default();
    let mut w = random_world();
    for op in &ops {
        apply(&mut w, op);
    }
    assert!(
        w.k.fast_path_test.hits >= 5,
        "only {} fast-path calls",
        w.k.fast_path_test.hits
    );
}

#[test]
fn a_round_trip_with_descriptors_takes_the_fast_path_both_ways() {
    // The bench's roundtrip-desc: an event copied to the server, the
    // server's new reference moved back. The first round trip gives the
    // tables and the slot scratch their room (the fast path takes no
    // heap); the second takes the fast path both ways.
    let mut f = fixture(false, 1);
    let (s, c, sp, cp) = (f.s(), f.c(0), f.sp(), f.cp(0));
    let event = f.w.event_create(c);
    let _ = f.w.receive(s, OWNER, DATA, 64);
    for round in 0..2u64 {
        let before = f.w.k.fast_path_test.hits;
        let slots = [DescriptorSlot::copy(event, Rights::EVENT)];
        let _ =
            f.w.send(c, f.function, REF, msg(DATA, b"", 64).slots(&slots));
        assert_eq!(
            f.w.resume(s),
            Some(TrapArgs::received(
                abi::Function(f.function),
                round * 7, // the cookie the first reply set
                DATA,
                sizes(64, 0, 1)
            ))
        );
        let theirs = f.w.slot_at(sp, DATA);
        assert_eq!(
            f.w.object_of(sp, Descriptor(theirs.descriptor)),
            f.w.object_of(cp, event)
        );
        let back = [DescriptorSlot::moving(
            Descriptor(theirs.descriptor),
            Rights::EVENT,
        )];
        let _ = f.w.reply_receive(s, 7, msg(DATA, b"", 64).slots(&back));
        assert_eq!(f.w.resume(c), replied(0, 0, 0, 1));
        if round == 1 {
            assert_eq!(f.w.k.fast_path_test.hits, before + 2, "both halves");
        }
        let returned = f.w.slot_at(cp, DATA);
        assert_eq!(
            f.w.reference(sp, Descriptor(theirs.descriptor)),
            None,
            "moved away"
        );
        assert_eq!(
            f.w.object_of(cp, Descriptor(returned.descriptor)),
            f.w.object_of(cp, event)
        );
        assert_eq!(
            f.w.close(c, Descriptor(returned.descriptor)).kernel_error(),
            None
        );
    }
    f.w.assert_invariants();
}

#[test]
fn moving_a_door_owner_reference_takes_the_slow_path() {
    // The hand-over wakes the door's receivers: the slow path's work.
    let mut f = fixture(false, 1);
    let (s, sp, init) = (f.s(), f.sp(), f.w.init_thread);
    let (owner, _client) = f.w.door_create(init, false);
    let _ = f.w.receive(s, OWNER, DATA, 64);
    let before = f.w.k.fast_path_test.hits;
    let slots = [DescriptorSlot::moving(owner, Rights::DOOR_OWNER)];
    let _ = f.w.send(
        init,
        f.function,
        f.init_ref,
        msg(DATA, b"", 64).slots(&slots),
    );
    assert_eq!(f.w.k.fast_path_test.hits, before, "declined");
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::received(
            abi::Function(f.function),
            0,
            DATA,
            sizes(64, 0, 1)
        ))
    );
    let theirs = f.w.slot_at(sp, DATA);
    assert!(
        f.w.reference(sp, Descriptor(theirs.descriptor))
            .is_some_and(|r| r.rights.contains(Rights::RECEIVE)),
        "the server owns the new door"
    );
    f.w.assert_invariants();
}

/// One step of a server and two clients passing descriptors both ways.
#[derive(Clone, Debug)]
enum DescriptorOp {
    /// Client 0 or 1 calls the door with `data` bytes and `slots`.
    Call {
        client: usize,
        data: u8,
        slots: Vec<(u32, u32, u32)>,
    },
    /// The server receives into a buffer of `total` bytes.
    Receive { total: u16 },
    /// The server answers the call it holds (and waits again).
    Answer {
        data: u8,
        slots: Vec<(u32, u32, u32)>,
        and_receive: bool,
    },
    /// Thread `who` (clients 0, 1, the server 2) closes a descriptor.
    Close { who: usize, descriptor: u32 },
    /// Thread `who` makes an event.
    Event { who: usize },
}

fn descriptor_op() -> impl Strategy<Value = DescriptorOp> {
    // Descriptor numbers 0..7 (0 and unopen ones fail), rights that fit
    // and that do not, copies, moves and a bad mode.
    let slot = (
        prop_oneof![4 => 1u32..4, 1 => 0u32..7],
        prop_oneof![
            8 => Just(Rights::EVENT.0),
            1 => Just(Rights::SIGNAL.0 | Rights::TRANSFER.0),
            2 => Just(Rights::DOOR_CLIENT.0),
            1 => Just(Rights::DOOR_OWNER.0),
            1 => 0u32..64,
        ],
        prop_oneof![8 => 0u32..2, 1 => Just(2u32)],
    )
        // Descriptor 1 (the door: a client's reference, the server's
        // owner reference) is only ever copied, so the traffic goes on.
        .prop_map(|(descriptor, rights, mode)| {
            let mode = if descriptor == 1 { 0 } else { mode };
            (descriptor, rights, mode)
        });
    prop_oneof![
        5 => (0usize..2, 0u8..24, prop::collection::vec(slot.clone(), 0..3))
            .prop_map(|(client, data, slots)| DescriptorOp::Call { client, data, slots }),
        4 => prop_oneof![6 => Just(256u16), 1 => Just(40u16), 1 => Just(0u16)]
            .prop_map(|total| DescriptorOp::Receive { total }),
        5 => (0u8..24, prop_oneof![1 => Just(Vec::new()), 2 => prop::collection::vec(slot, 1..2)], any::<bool>())
            .prop_map(|(data, slots, and_receive)| DescriptorOp::Answer { data, slots, and_receive }),
        1 => (0usize..3, 2u32..7).prop_map(|(who, descriptor)| DescriptorOp::Close { who, descriptor }),
        2 => (0usize..3).prop_map(|who| DescriptorOp::Event { who }),
    ]
}

/// Applies `op` if its thread can trap; returns what every thread got.
fn apply_descriptor_op(f: &mut Fixture, op: &DescriptorOp) -> Vec<Option<TrapArgs>> {
    let threads = [f.c(0), f.c(1), f.s()];
    let slots_of = |specs: &[(u32, u32, u32)]| -> Vec<DescriptorSlot> {
        specs
            .iter()
            .map(|&(descriptor, rights, mode)| DescriptorSlot {
                descriptor,
                rights,
                mode,
                reserved: 0,
            })
            .collect()
    };
    let mut results = Vec::new();
    match op {
        DescriptorOp::Call {
            client,
            data,
            slots,
        } => {
            let t = threads[*client];
            if f.w.runnable(t) {
                let slots = slots_of(slots);
                let bytes = vec![*data; usize::from(*data)];
                let m = msg(DATA, &bytes, 256).slots(&slots);
                results.push(f.w.send(t, f.function, REF, m));
            }
        }
        DescriptorOp::Receive { total } => {
            let s = f.s();
            if f.w.runnable(s) && f.w.holding(s) == Holding::Nothing {
                results.push(f.w.receive(s, OWNER, DATA, *total));
            }
        }
        DescriptorOp::Answer {
            data,
            slots,
            and_receive,
        } => {
            let s = f.s();
            if f.w.runnable(s) && f.w.holding(s) != Holding::Nothing {
                let slots = slots_of(slots);
                let bytes = vec![*data; usize::from(*data)];
                let m = msg(DATA, &bytes, 256).slots(&slots);
                results.push(if *and_receive {
                    f.w.reply_receive(s, u64::from(*data), m)
                } else {
                    f.w.reply(s, u64::from(*data), m)
                });
            }
        }
        DescriptorOp::Close { who, descriptor } => {
            let t = threads[*who];
            if f.w.runnable(t) {
                results.push(Some(f.w.close(t, Descriptor(*descriptor))));
            }
        }
        DescriptorOp::Event { who } => {
            let t = threads[*who];
            if f.w.runnable(t) {
                let made =
                    f.w.kcall(t, KernelFunction::EventCreate, Descriptor::NULL, &[]);
                results.push(Some(made));
            }
        }
    }
    for t in threads {
        results.push(f.w.resume(t));
    }
    results
}

/// Two clients with two events each, the server with one.
fn descriptor_world(slow_only: bool) -> Fixture {
    let mut f = fixture(false, 2);
    f.w.k.fast_path_test.slow_only = slow_only;
    for t in [f.c(0), f.c(0), f.c(1), f.c(1), f.s()] {
        let _ = f.w.event_create(t);
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn descriptor_transfers_on_the_fast_path_do_exactly_what_the_slow_path_does(
        ops in prop::collection::vec(descriptor_op(), 1..60)
    ) {
        let mut fast = descriptor_world(false);
        let mut slow = descriptor_world(true);
        prop_assert!(state(&fast.w) == state(&slow.w), "the two worlds start apart");
        for (i, op) in ops.iter().enumerate() {
            let a = apply_descriptor_op(&mut fast, op);
            let b = apply_descriptor_op(&mut slow, op);
            prop_assert_eq!(a, b, "results after op {} {:?}", i, op);
            prop_assert!(state(&fast.w) == state(&slow.w), "state after op {} {:?} differs", i, op);
        }
        prop_assert_eq!(slow.w.k.fast_path_test.hits, 0);
        fast.w.assert_invariants();
    }
}

#[test]
fn random_descriptor_traffic_takes_the_fast_path() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let ops = prop::collection::vec(descriptor_op(), 400..401)
        .new_tree(&mut runner)
        .map(|tree| proptest::strategy::ValueTree::current(&tree))
        .unwrap_or_default();
    let mut f = descriptor_world(false);
    for op in &ops {
        apply_descriptor_op(&mut f, op);
    }
    assert!(
        f.w.k.fast_path_test.descriptor_hits >= 8,
        "only {} fast-path calls with descriptors ({} in all)",
        f.w.k.fast_path_test.descriptor_hits,
        f.w.k.fast_path_test.hits
    );
}
