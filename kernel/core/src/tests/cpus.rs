//! Several CPUs under the one kernel lock (ABI.md §6.9, D53): where a
//! thread made ready is queued, what each CPU picks, stealing by an idle
//! CPU, affinity. The arch layer's part (the lock, IPIs) is not here: each
//! test enters the kernel CPU by CPU as the lock would let them.

use super::fake_machine::RBUF;
use super::harness::*;
use crate::thread::{ThreadId, ThreadState};

/// A world with `count` CPUs; CPU 0 is in the kernel running init.
fn world_with_cpus(count: usize) -> World {
    let mut w = World::new();
    if let Err(e) = w.k.set_cpu_count(count) {
        panic!("set_cpu_count: {e}");
    }
    w
}

/// CPU `cpu` enters the kernel, picks a thread if it has none, and
/// leaves; CPU 0 (init's) is in the kernel again. The thread `cpu` runs.
fn dispatch(w: &mut World, cpu: usize) -> Option<ThreadId> {
    w.k.leave();
    w.k.enter(cpu);
    w.k.schedule();
    let running = w.k.current();
    w.k.leave();
    w.k.enter(0);
    running
}

#[test]
fn new_threads_go_to_idle_cpus_one_each() {
    let mut w = world_with_cpus(3);
    let init = w.init_thread;
    let first = w.thread_create(init);
    let second = w.thread_create(init);
    assert_eq!(w.k.scheduler.queued_on(1).collect::<Vec<_>>(), [first]);
    assert_eq!(w.k.scheduler.queued_on(2).collect::<Vec<_>>(), [second]);
    assert!(w.k.scheduler.is_empty_on(0));
    // Every CPU busy now: the third waits on the creator's CPU.
    let third = w.thread_create(init);
    assert_eq!(w.k.scheduler.queued_on(0).collect::<Vec<_>>(), [third]);
    assert_eq!(dispatch(&mut w, 1), Some(first));
    assert_eq!(dispatch(&mut w, 2), Some(second));
    assert_eq!(w.k.ready_count(), 1);
    assert_eq!(w.k.running_count(), 3, "init, first and second run");
    w.assert_invariants();
}

#[test]
fn an_idle_cpu_steals_what_waits_elsewhere() {
    let mut w = world_with_cpus(3);
    let init = w.init_thread;
    let (owner, _client) = w.door_create(init, false);
    let receiver = w.thread_create(init);
    let other = w.thread_create(init);
    assert_eq!(dispatch(&mut w, 1), Some(receiver));
    assert_eq!(dispatch(&mut w, 2), Some(other));
    let waiting = w.thread_create(init);
    assert_eq!(w.k.scheduler.queued_on(0).collect::<Vec<_>>(), [waiting]);
    // The receiver blocks on CPU 1, which then takes CPU 0's queued thread.
    w.k.leave();
    w.k.enter(1);
    assert_eq!(w.receive(receiver, owner, RBUF, 64), None);
    assert!(matches!(w.state(receiver), ThreadState::Receiving { .. }));
    assert_eq!(w.k.current(), Some(waiting), "stolen from CPU 0's queue");
    assert_eq!(w.k.ready_count(), 0);
    w.assert_invariants();
}

#[test]
fn a_cpu_outside_the_mask_never_takes_the_thread() {
    let mut w = world_with_cpus(3);
    let init = w.init_thread;
    let (owner, _client) = w.door_create(init, false);
    let receiver = w.thread_create(init);
    let busy = w.thread_create(init);
    assert_eq!(dispatch(&mut w, 1), Some(receiver));
    assert_eq!(dispatch(&mut w, 2), Some(busy));
    let pinned = w.thread_create(init);
    w.k.scheduler.remove(pinned);
    if let Some(t) = w.k.threads.get_mut(pinned) {
        t.affinity = 1 << 2;
    }
    w.k.make_ready(pinned);
    assert_eq!(
        w.k.scheduler.queued_on(2).collect::<Vec<_>>(),
        [pinned],
        "queued on the one CPU it may run on, though that one is busy"
    );
    // CPU 1's thread blocks: CPU 1 passes over the pinned thread.
    w.k.leave();
    w.k.enter(1);
    assert_eq!(w.receive(receiver, owner, RBUF, 64), None);
    assert_eq!(w.k.current(), None, "CPU 1 may not run it: idle");
    w.k.leave();
    assert_eq!(w.k.scheduler.queued_on(2).collect::<Vec<_>>(), [pinned]);
    // CPU 2 takes it once its own thread stops.
    w.k.enter(2);
    w.k.tick_secondary();
    assert_eq!(w.k.current(), Some(pinned));
    // The preempted thread waits where it ran; the idle CPU 1 (which the
    // arch layer wakes: it may run a ready thread) takes it.
    assert_eq!(w.k.scheduler.queued_on(2).collect::<Vec<_>>(), [busy]);
    w.k.leave();
    w.k.enter(1);
    w.k.schedule();
    assert_eq!(w.k.current(), Some(busy), "stolen by the idle CPU");
    w.k.leave();
    w.k.enter(0);
    w.assert_invariants();
}

#[test]
fn a_higher_priority_thread_elsewhere_outranks_the_own_queue() {
    let mut w = world_with_cpus(2);
    let init = w.init_thread;
    let low = w.thread_create_at(init, 2);
    assert_eq!(w.k.scheduler.queued_on(1).collect::<Vec<_>>(), [low]);
    assert_eq!(dispatch(&mut w, 1), Some(low));
    let high = w.thread_create_at(init, 9);
    let low_too = w.thread_create_at(init, 2);
    assert_eq!(
        w.k.scheduler.queued_on(0).collect::<Vec<_>>(),
        [high, low_too]
    );
    // CPU 1's tick: its thread goes behind, and the higher one from CPU 0's
    // queue runs there (priority order holds across CPUs).
    w.k.leave();
    w.k.enter(1);
    w.k.tick_secondary();
    assert_eq!(w.k.current(), Some(high));
    assert_eq!(w.k.scheduler.queued_on(1).collect::<Vec<_>>(), [low]);
    w.k.leave();
    w.k.enter(0);
    w.assert_invariants();
}

/// YIELD hands the CPU to the first ready thread of the caller's priority
/// on its CPU, and the caller waits behind it: the order exactly (the
/// in-guest check of the same policy can only count switches, since ticks
/// interleave there).
#[test]
fn yield_runs_the_next_ready_thread_of_its_priority() {
    for cpus in [1, 4] {
        let mut w = world_with_cpus(cpus);
        let init = w.init_thread;
        let pin = abi::kcall::AffinityRequest::new(1);
        let reply = w.kcall(
            init,
            abi::KernelFunction::ThreadAffinity,
            abi::Descriptor::NULL,
            zerocopy::IntoBytes::as_bytes(&pin),
        );
        assert_eq!(reply.arg1, 0, "THREAD_AFFINITY to CPU 0");
        let worker = w.thread_create(init);
        let priority = |w: &World, t: ThreadId| w.k.threads.get(t).map(|t| t.priority);
        assert_eq!(priority(&w, worker), priority(&w, init));
        assert_eq!(w.k.scheduler.queued_on(0).collect::<Vec<_>>(), [worker]);
        w.kcall(init, abi::KernelFunction::Yield, abi::Descriptor::NULL, &[]);
        assert_eq!(w.k.current(), Some(worker), "{cpus} CPUs: the worker runs");
        assert_eq!(w.k.scheduler.queued_on(0).collect::<Vec<_>>(), [init]);
        w.kcall(
            worker,
            abi::KernelFunction::Yield,
            abi::Descriptor::NULL,
            &[],
        );
        assert_eq!(w.k.current(), Some(init), "{cpus} CPUs: and hands it back");
        assert_eq!(w.k.scheduler.queued_on(0).collect::<Vec<_>>(), [worker]);
        w.assert_invariants();
    }
}
