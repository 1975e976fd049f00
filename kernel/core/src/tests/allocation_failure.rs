//! The kernel heap running out on the main operations (issue 15): each
//! operation is run again and again from the same start, with its first,
//! second, ... heap allocation failing (`test_allocator`, the host tests'
//! global allocator), until it runs without reaching the failing one. Each
//! failure must refuse the trap with OUT_OF_MEMORY and leave the whole
//! state (every kernel table, queue, thread and object, the fake machine's
//! frames, page maps, bytes and console) exactly as it was, the invariants
//! holding; the last run must end as a run with no failure does.
//!
//! Only the kernel's own allocations fail: the fake machine stands for
//! hardware and allocates unfailing (`test_allocator::unfailing`).

use abi::kcall::{
    DescriptorRequest, DoorCreateRequest, MemoryCreateRequest, MemoryMapRequest,
    MemoryRangeRequest, SpawnRequest, ThreadCreateRequest, protection,
};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use crate::thread::ThreadId;

use super::fake_machine::*;
use super::harness::*;

/// What a case's operation needs besides the world its setup made.
#[derive(Clone, Copy, Debug, Default)]
struct Names {
    thread: Option<ThreadId>,
    /// Another thread a case names (the caller of a queued call).
    other: Option<ThreadId>,
    descriptor: Descriptor,
    address: u64,
}

/// Whom a failed allocation refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// The trap itself: OUT_OF_MEMORY, and the whole state as it was.
    Trap,
    /// The queued call a RECEIVE takes (its transfer's heap, like a
    /// SEND's, is the message's): that caller (`Names::other`) is woken
    /// with OUT_OF_MEMORY, its references where they were, and the
    /// RECEIVE goes on as if the call had not been queued (it waits).
    QueuedCall,
}

/// Runs `operation` (exactly one trap, through the harness) on the world
/// `setup` makes, first with no failure, then with allocation 1, 2, ... of
/// its trap failing until the trap no longer reaches the failing one.
/// Returns how many allocations the trap makes.
fn each_allocation_fails(
    name: &str,
    setup: impl Fn() -> (World, Names),
    operation: impl Fn(&mut World, Names) -> Option<TrapArgs>,
) -> u64 {
    allocations_fail(name, Refused::Trap, setup, operation)
}

fn allocations_fail(
    name: &str,
    refused: Refused,
    setup: impl Fn() -> (World, Names),
    operation: impl Fn(&mut World, Names) -> Option<TrapArgs>,
) -> u64 {
    test_allocator::trace_failures(std::env::var_os("TRACE_ALLOCATION_FAILURES").is_some());
    let trial = |n: u64| {
        let (mut w, names) = setup();
        // No spare room anywhere: each insertion the operation makes must
        // allocate, so each is a place where the heap can fail.
        w.k.release_spare_heap();
        w.fail_allocation = Some(n);
        let returned = operation(&mut w, names);
        let Some(trial) = w.failure_trial.take() else {
            panic!("{name}: the operation made no trap")
        };
        assert_eq!(returned, trial.result, "{name}");
        assert!(w.fail_allocation.is_none(), "{name}: more than one trap");
        w.assert_invariants();
        (w, names, trial)
    };
    let (_, _, reference) = trial(0);
    assert_ne!(
        reference.result.and_then(|r| r.kernel_error()),
        Some(Error::OutOfMemory),
        "{name}: out of memory with no allocation failing"
    );
    let allocations = reference.run.allocations;
    for n in 1..=allocations + 1 {
        let (mut w, names, t) = trial(n);
        if n > allocations {
            assert!(!t.run.failed, "{name}: allocation {n} of {allocations}");
            assert_eq!(t.result, reference.result, "{name}: no failure reached");
            break;
        }
        assert!(t.run.failed, "{name}: allocation {n} never came");
        let at = format!("{name}: allocation {n} of {allocations} failed");
        match refused {
            Refused::Trap => {
                assert_eq!(t.result, err(Error::OutOfMemory), "{at}");
                if t.before != t.after {
                    panic!(
                        "{at} and the state changed:\n{}",
                        first_difference(&t.before, &t.after)
                    );
                }
            }
            Refused::QueuedCall => {
                let (fresh, _) = setup();
                let Some(caller) = names.other else {
                    panic!("{name}: no caller named")
                };
                let (receiver, rp, cp) = (names.t(), w.process_of(names.t()), w.process_of(caller));
                assert_eq!(t.result, None, "{at}: the receiver waits");
                assert!(
                    matches!(
                        w.state(receiver),
                        crate::thread::ThreadState::Receiving { .. }
                    ),
                    "{at}"
                );
                assert_eq!(w.resume(caller), err(Error::OutOfMemory), "{at}");
                for p in [rp, cp] {
                    assert_eq!(w.charged(p), fresh.charged(p), "{at}");
                    assert_eq!(w.open_descriptors(p), fresh.open_descriptors(p), "{at}");
                }
                let kept = |world: &World| {
                    world
                        .reference(cp, names.descriptor)
                        .map(|r| (r.object, r.rights))
                };
                assert_eq!(kept(&w), kept(&fresh), "{at}: the moved reference");
                assert!(kept(&w).is_some(), "{at}");
            }
        }
    }
    allocations
}

/// Where two states differ: the section each differing line is in, and
/// the line before and after (the first 12 differences).
fn first_difference(before: &str, after: &str) -> String {
    let (a, b): (Vec<_>, Vec<_>) = (before.lines().collect(), after.lines().collect());
    let mut section = "";
    let mut out = format!("{} lines before, {} after\n", a.len(), b.len());
    let mut shown = 0;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if !x.starts_with(' ') {
            section = x;
        }
        if x != y && shown < 12 {
            out.push_str(&format!("in {section:?}, line {i}:\n  - {x}\n  + {y}\n"));
            shown += 1;
        }
    }
    out
}

/// A fixture whose server waits in RECEIVE.
fn server_waiting(clients: usize) -> Fixture {
    let mut f = fixture(false, clients);
    assert_eq!(f.w.receive(f.s(), OWNER, RBUF, 512), None);
    f
}

impl Names {
    /// The thread that makes the trap.
    fn t(self) -> ThreadId {
        match self.thread {
            Some(t) => t,
            None => panic!("a case without its thread"),
        }
    }
}

fn with_names(w: World, names: Names) -> (World, Names) {
    (w, names)
}

#[test]
fn ipc_refuses_a_failed_allocation_with_nothing_changed() {
    let mut counts = Vec::new();
    // SEND delivered at once to a waiting server.
    counts.push(each_allocation_fails(
        "SEND to a waiting server",
        || {
            let f = server_waiting(1);
            let names = Names {
                thread: Some(f.c(0)),
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| {
            let c = n.t();
            w.send(c, USER_FN, REF, msg(SBUF, b"hello", 64))
        },
    ));
    // SEND queued on a door nobody receives on yet.
    counts.push(each_allocation_fails(
        "SEND queued",
        || {
            let f = fixture(false, 1);
            let names = Names {
                thread: Some(f.c(0)),
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| {
            let c = n.t();
            w.send(c, USER_FN, REF, msg(SBUF, b"hello", 64))
        },
    ));
    // SEND moving an event and copying the door reference to a waiting
    // server: two descriptors installed in the server's table.
    counts.push(each_allocation_fails(
        "SEND with descriptors to a waiting server",
        || {
            let mut f = server_waiting(1);
            let c = f.c(0);
            let event = f.w.event_create(c);
            let names = Names {
                thread: Some(c),
                descriptor: event,
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| {
            let c = n.t();
            let slots = [
                DescriptorSlot::moving(n.descriptor, Rights::EVENT),
                DescriptorSlot::copy(REF, Rights::SEND),
            ];
            w.send(c, USER_FN, REF, msg(SBUF, b"take", 64).slots(&slots))
        },
    ));
    // RECEIVE with nothing queued: the server waits.
    counts.push(each_allocation_fails(
        "RECEIVE (waits)",
        || {
            let f = fixture(false, 1);
            let names = Names {
                thread: Some(f.s()),
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| w.receive(n.t(), OWNER, RBUF, 512),
    ));
    // RECEIVE of a queued call carrying a descriptor.
    counts.push(allocations_fail(
        "RECEIVE of a queued call with a descriptor",
        Refused::QueuedCall,
        || {
            let mut f = fixture(false, 1);
            let c = f.c(0);
            let event = f.w.event_create(c);
            let slots = [DescriptorSlot::moving(event, Rights::EVENT)];
            assert_eq!(
                f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64).slots(&slots)),
                None
            );
            let names = Names {
                thread: Some(f.s()),
                other: Some(c),
                descriptor: event,
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| w.receive(n.t(), OWNER, RBUF, 512),
    ));
    // REPLY carrying a new event reference back to the caller.
    counts.push(each_allocation_fails(
        "REPLY with a descriptor",
        || {
            let mut f = fixture(false, 1);
            let (s, c) = (f.s(), f.c(0));
            let event = f.w.event_create(s);
            assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
            assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"ask", 64)), None);
            assert!(f.w.resume(s).is_some());
            let names = Names {
                thread: Some(s),
                descriptor: event,
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| {
            let slots = [DescriptorSlot::copy(n.descriptor, Rights::WAIT)];
            let s = n.t();
            w.reply(s, 7, msg(RBUF, b"back", 64).slots(&slots))
        },
    ));
    // REPLY_RECEIVE: the reply, then the next queued call.
    counts.push(each_allocation_fails(
        "REPLY_RECEIVE",
        || {
            let mut f = server_waiting(2);
            let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
            assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"one", 64)), None);
            assert!(f.w.resume(s).is_some());
            assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"two", 64)), None);
            let names = Names {
                thread: Some(s),
                ..Names::default()
            };
            with_names(f.w, names)
        },
        |w, n| w.reply_receive(n.t(), 5, msg(RBUF, b"r", 512)),
    ));
    eprintln!("allocations per IPC operation: {counts:?}");
    // A data-only call delivered at once and a REPLY_RECEIVE that takes a
    // queued data-only call never allocate (the hot path); every other
    // operation here needs heap (a queue's room, a table's entries, the
    // slot scratch) at least once.
    let (hot, others): (Vec<_>, Vec<_>) = counts
        .iter()
        .enumerate()
        .partition(|(i, _)| [0, counts.len() - 1].contains(i));
    assert!(hot.iter().all(|(_, n)| **n == 0), "{counts:?}");
    assert!(others.iter().all(|(_, n)| **n > 0), "{counts:?}");
}

/// A world whose init makes the kernel call.
fn init_world() -> (World, Names) {
    let w = World::new();
    let names = Names {
        thread: Some(w.init_thread),
        ..Names::default()
    };
    (w, names)
}

#[test]
fn kernel_functions_refuse_a_failed_allocation_with_nothing_changed() {
    let mut counts = Vec::new();
    counts.push(each_allocation_fails("DOOR_CREATE", init_world, |w, n| {
        let request = DoorCreateRequest::new(false, 7);
        let t = n.t();
        Some(w.kcall(
            t,
            KernelFunction::DoorCreate,
            CAP_PROCESS,
            request.as_bytes(),
        ))
    }));
    counts.push(each_allocation_fails("EVENT_CREATE", init_world, |w, n| {
        let t = n.t();
        Some(w.kcall(t, KernelFunction::EventCreate, Descriptor::NULL, &[]))
    }));
    counts.push(each_allocation_fails(
        "EVENT_WAIT (waits)",
        || {
            let (mut w, mut names) = init_world();
            names.descriptor = w.event_create(w.init_thread);
            (w, names)
        },
        |w, n| {
            let t = n.t();
            let wait = KernelFunction::EventWait as i32;
            w.send(t, wait, n.descriptor, msg(KBUF, &[], 64))
        },
    ));
    counts.push(each_allocation_fails(
        "THREAD_CREATE",
        init_world,
        |w, n| {
            let request = ThreadCreateRequest::new(
                IMAGE,
                abi::process::USER_STACK_TOP - 0x8000,
                0,
                abi::kcall::DEFAULT_PRIORITY,
            );
            let t = n.t();
            Some(w.kcall(
                t,
                KernelFunction::ThreadCreate,
                Descriptor::NULL,
                request.as_bytes(),
            ))
        },
    ));
    counts.push(each_allocation_fails(
        "SPAWN with a descriptor",
        || {
            let (mut w, mut names) = init_world();
            names.descriptor = w.event_create(w.init_thread);
            (w, names)
        },
        |w, n| {
            let name = b"worker";
            let data = encoded(|out| SpawnRequest::encode(name, b"abc", out));
            let slots = [DescriptorSlot::copy(n.descriptor, Rights::EVENT)];
            let t = n.t();
            let m = msg(KBUF, &data, KTOTAL).slots(&slots);
            Some(w.kcall_msg(t, KernelFunction::Spawn, CAP_PROCESS, m))
        },
    ));
    counts.push(each_allocation_fails(
        "DUPLICATE",
        || {
            let (mut w, mut names) = init_world();
            names.descriptor = w.event_create(w.init_thread);
            (w, names)
        },
        |w, n| {
            let request = DescriptorRequest::new(n.descriptor, Rights::WAIT);
            let t = n.t();
            Some(w.kcall(
                t,
                KernelFunction::Duplicate,
                Descriptor::NULL,
                request.as_bytes(),
            ))
        },
    ));
    eprintln!("allocations per kernel function: {counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}

#[test]
fn memory_functions_refuse_a_failed_allocation_with_nothing_changed() {
    let mut counts = Vec::new();
    counts.push(each_allocation_fails(
        "MAP_ANONYMOUS",
        init_world,
        |w, n| {
            let request = abi::kcall::map_anonymous(0, 3 * PAGE, protection::READ);
            let t = n.t();
            Some(w.kcall(
                t,
                KernelFunction::MapAnonymous,
                Descriptor::NULL,
                request.as_bytes(),
            ))
        },
    ));
    // A memory object's mapping is a region of the process: PROTECT or
    // UNMAP of its middle page makes one region three, or two.
    let object_mapped = || {
        let (mut w, mut names) = init_world();
        let t = w.init_thread;
        let memory = w.memory_ok(t, 3);
        let rw = protection::READ | protection::WRITE;
        names.address = match w.memory_map(t, memory, 0, 0, 3 * PAGE, rw) {
            Ok(address) => address,
            Err(e) => panic!("MEMORY_MAP: {e}"),
        };
        (w, names)
    };
    counts.push(each_allocation_fails(
        "PROTECT splitting an object's mapping",
        object_mapped,
        |w, n| {
            let request = abi::kcall::protect(n.address + PAGE, PAGE, protection::READ);
            let t = n.t();
            Some(w.kcall(
                t,
                KernelFunction::Protect,
                Descriptor::NULL,
                request.as_bytes(),
            ))
        },
    ));
    counts.push(each_allocation_fails(
        "UNMAP splitting an object's mapping",
        object_mapped,
        |w, n| {
            let request = abi::kcall::unmap(n.address + PAGE, PAGE);
            let t = n.t();
            Some(w.kcall(
                t,
                KernelFunction::Unmap,
                Descriptor::NULL,
                request.as_bytes(),
            ))
        },
    ));
    counts.push(each_allocation_fails(
        "MEMORY_CREATE",
        init_world,
        |w, n| {
            let request = MemoryCreateRequest::new(3);
            let t = n.t();
            Some(w.kcall(
                t,
                KernelFunction::MemoryCreate,
                Descriptor::NULL,
                request.as_bytes(),
            ))
        },
    ));
    let with_memory = || {
        let (mut w, mut names) = init_world();
        names.descriptor = w.memory_ok(w.init_thread, 3);
        (w, names)
    };
    counts.push(each_allocation_fails("MEMORY_MAP", with_memory, |w, n| {
        let request = MemoryMapRequest::new(0, 0, 3 * PAGE, protection::READ | protection::WRITE);
        let t = n.t();
        Some(w.kcall(
            t,
            KernelFunction::MemoryMap,
            n.descriptor,
            request.as_bytes(),
        ))
    }));
    counts.push(each_allocation_fails("MEMORY_COW", with_memory, |w, n| {
        let request = MemoryRangeRequest::new(PAGE, 2 * PAGE);
        let t = n.t();
        Some(w.kcall(
            t,
            KernelFunction::MemoryCow,
            n.descriptor,
            request.as_bytes(),
        ))
    }));
    eprintln!("allocations per memory function: {counts:?}");
    // MAP_ANONYMOUS takes frames and page tables, never kernel heap; every
    // other one allocates.
    assert_eq!(counts.first(), Some(&0), "{counts:?}");
    assert!(counts.iter().skip(1).all(|&n| n > 0), "{counts:?}");
}

/// A request past the process's memory limit is refused before the kernel
/// takes any heap for it (MEMORY_CREATE of 2^20 pages would otherwise grow
/// the heap by its frame list, taking machine frames that never come
/// back: conformance MSG-MEM-021 saw the free frames drop).
#[test]
fn a_memory_create_past_the_limit_takes_no_heap() {
    let (mut w, names) = init_world();
    let request = MemoryCreateRequest::new(1 << 20);
    w.fail_allocation = Some(0);
    let regs = w.kcall(
        names.t(),
        KernelFunction::MemoryCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(regs.kernel_error(), Some(Error::OutOfMemory));
    let Some(trial) = w.failure_trial.take() else {
        panic!("no trap")
    };
    assert_eq!(trial.run.allocations, 0);
    assert_eq!(trial.before, trial.after);
}
