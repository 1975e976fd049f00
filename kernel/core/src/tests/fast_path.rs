//! The fast path against the slow path (`crate::fastpath`): two identical
//! worlds run the same random traps, one with the fast path and one with
//! every call on the slow path; after each trap the registers it returned
//! and the whole kernel and machine state (their `Debug` forms, which
//! print every field) must be the same. And the common round trip does
//! take the fast path.

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
