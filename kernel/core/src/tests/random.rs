//! Random traps from several threads of several processes, the kernel's
//! invariants checked after each one (a property test).

use abi::function::Function;
use abi::kcall::{
    DescriptorRequest, DirectRequest, DoorCreateRequest, ExitRequest, KernelCounters, MapRequest,
    MemoryCreateRequest, MemoryMapRequest, MemoryRangeRequest, SpawnRequest, ThreadCreateRequest,
};
use abi::message::descriptor_offset;
use abi::process::{USER_END, USER_MAP_BASE, USER_STACK_TOP};
use abi::{Descriptor, DescriptorSlot, KernelFunction, Rights, TrapArgs};
use proptest::prelude::*;
use zerocopy::IntoBytes;

use crate::process::ProcessId;
use crate::thread::{Holding, ThreadId};

use super::fake_machine::*;
use super::harness::*;

// 16. random traps

#[derive(Clone, Copy, Debug)]
pub(super) struct SlotSpec {
    descriptor: u32,
    rights: u32,
    mode: u32,
    reserved: u32,
}

impl SlotSpec {
    fn slot(self) -> DescriptorSlot {
        DescriptorSlot {
            descriptor: self.descriptor,
            rights: self.rights,
            mode: self.mode,
            reserved: self.reserved,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    /// Any registers at all.
    Raw {
        thread: usize,
        args: TrapArgs,
    },
    /// A SEND with well-formed registers and possibly bad slots.
    Send {
        thread: usize,
        function: i32,
        target: u32,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
    },
    Receive {
        thread: usize,
        door: u32,
        total: u16,
    },
    Reply {
        thread: usize,
        cookie: u64,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
        and_receive: bool,
    },
    Kernel {
        thread: usize,
        function: usize,
        a: u32,
        b: u32,
        c: u64,
    },
    /// A call through one of the door references the world starts with,
    /// usually with a function the door accepts.
    Call {
        thread: usize,
        target: u32,
        matching: bool,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
    },
    /// A thread holding a message answers it; else an owner receives.
    Serve {
        pick: usize,
        cookie: u64,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
        and_receive: bool,
        total: u16,
    },
    NewThread {
        thread: usize,
        priority: u32,
    },
    /// Init spawns a client with copies of some of its references.
    InitSpawn {
        mask: u8,
    },
    Tick,
    /// Only every fourth `thread` value faults, so processes die less often.
    Fault {
        thread: usize,
    },
    /// A user write, as the CPU does it: a copy-on-write page is copied,
    /// a write nothing allows ends the process (every fourth only, as
    /// above).
    Write {
        thread: usize,
        address: u64,
    },
}

fn slot_spec() -> impl Strategy<Value = SlotSpec> {
    (
        0u32..8,
        prop_oneof![
            Just(Rights::DOOR_CLIENT.0),
            Just(Rights::EVENT.0),
            Just(Rights::DOOR_OWNER.0),
            Just(Rights::SIGNAL.0),
            0u32..64,
            Just(1 << 6),
        ],
        prop_oneof![4 => 0u32..2, 1 => Just(2u32)],
        prop_oneof![9 => Just(0u32), 1 => Just(1u32)],
    )
        .prop_map(|(descriptor, rights, mode, reserved)| SlotSpec {
            descriptor,
            rights,
            mode,
            reserved,
        })
}

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0u64..0x800).prop_map(|o| DATA + o),
        1 => Just(0u64),
        1 => Just(IMAGE),
        1 => Just(UNMAPPED),
        1 => Just(DATA_END - 16),
        1 => Just(USER_END - 16),
        1 => Just(KERNEL_HALF),
        1 => Just(u64::MAX - 3),
        1 => Just(USER_MAP_BASE),
        1 => any::<u64>(),
    ]
}

pub(super) fn raw_args() -> impl Strategy<Value = TrapArgs> {
    let arg0 = prop_oneof![
        3 => 0u64..0x80,
        1 => Just(0x8000u64),
        1 => Just(0x1000u64),
        1 => Just(0x400u64),
        1 => Just(0xffff_ffffu64),
        1 => any::<u32>().prop_map(u64::from),
        1 => any::<u64>(),
    ];
    let arg1 = prop_oneof![4 => 0u64..8, 1 => any::<u64>()];
    let arg3 = prop_oneof![
        4 => (0u16..4096, 0u16..300, 0u8..4).prop_map(|(t, d, n)| sizes(t, d, n).into_bits()),
        1 => any::<u64>(),
    ];
    (arg0, arg1, address(), arg3).prop_map(|(arg0, arg1, arg2, arg3)| TrapArgs {
        arg0,
        arg1,
        arg2,
        arg3,
    })
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let thread = 0usize..64;
    prop_oneof![
        3 => (thread.clone(), raw_args()).prop_map(|(thread, args)| Op::Raw { thread, args }),
        4 => (
            thread.clone(),
            prop_oneof![4 => Just(USER_FN), 2 => Just(SYSTEM_FN), 1 => Just(0x400), 1 => 0i32..0x80, 1 => any::<i32>()],
            prop_oneof![6 => 0u32..8, 1 => any::<u32>()],
            0u16..64,
            prop::collection::vec(slot_spec(), 0..3),
            -16i32..64,
        )
            .prop_map(|(thread, function, target, data, slots, spare)| Op::Send {
                thread, function, target, data, slots, spare,
            }),
        3 => (thread.clone(), 0u32..6, prop_oneof![0u16..200, Just(4095u16)])
            .prop_map(|(thread, door, total)| Op::Receive { thread, door, total }),
        3 => (
            thread.clone(),
            prop_oneof![0u64..4, any::<u64>()],
            0u16..64,
            prop::collection::vec(slot_spec(), 0..2),
            -16i32..64,
            any::<bool>(),
        )
            .prop_map(|(thread, cookie, data, slots, spare, and_receive)| Op::Reply {
                thread, cookie, data, slots, spare, and_receive,
            }),
        4 => (thread.clone(), 0usize..64, any::<u32>(), any::<u32>(), any::<u64>())
            .prop_map(|(thread, function, a, b, c)| Op::Kernel { thread, function, a, b, c }),
        8 => smart_op(),
        1 => Just(Op::Tick),
        1 => thread.clone().prop_map(|thread| Op::Fault { thread }),
        2 => (
            thread,
            prop_oneof![
                2 => (0u64..0x3000).prop_map(|o| 0x2000_0000 + o),
                1 => (0u64..0x3000).prop_map(|o| USER_MAP_BASE + o),
                1 => Just(DATA),
                1 => Just(IMAGE),
            ],
        )
            .prop_map(|(thread, address)| Op::Write { thread, address }),
    ]
}

fn smart_op() -> impl Strategy<Value = Op> {
    let thread = 0usize..64;
    prop_oneof![
        4 => (
            thread.clone(),
            1u32..4,
            prop_oneof![4 => Just(true), 1 => Just(false)],
            0u16..64,
            prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(slot_spec(), 0..3)],
            0i32..64,
        )
            .prop_map(|(thread, target, matching, data, slots, spare)| Op::Call {
                thread, target, matching, data, slots, spare,
            }),
        4 => (
            thread.clone(),
            prop_oneof![0u64..4, any::<u64>()],
            0u16..64,
            prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(slot_spec(), 0..2)],
            -8i32..64,
            any::<bool>(),
            prop_oneof![4 => 64u16..512, 1 => 0u16..64],
        )
            .prop_map(|(pick, cookie, data, slots, spare, and_receive, total)| Op::Serve {
                pick, cookie, data, slots, spare, and_receive, total,
            }),
        1 => (thread, 0u32..20).prop_map(|(thread, priority)| Op::NewThread { thread, priority }),
        1 => any::<u8>().prop_map(|mask| Op::InitSpawn { mask }),
    ]
}

/// Builds the request data of kernel function `kf` from random numbers.
fn kernel_request(
    kf: KernelFunction,
    a: u32,
    b: u32,
    c: u64,
) -> (Descriptor, Vec<u8>, Vec<DescriptorSlot>) {
    let descriptor = a % 10;
    match kf {
        KernelFunction::Close | KernelFunction::Duplicate | KernelFunction::DescriptorInfo => {
            let rights = if b.is_multiple_of(4) { b } else { b % 64 };
            (
                Descriptor::NULL,
                DescriptorRequest::new(Descriptor(descriptor), Rights(rights))
                    .as_bytes()
                    .to_vec(),
                Vec::new(),
            )
        }
        KernelFunction::ThreadCreate => {
            let request = ThreadCreateRequest::new(
                IMAGE,
                USER_STACK_TOP - (c % 8) * PAGE - u64::from(b % 2) * 8,
                c,
                a % 20,
            )
            .with_reserved(u32::from(b.is_multiple_of(7)));
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::ThreadExit | KernelFunction::ProcessExit | KernelFunction::DebugExit => {
            let request = ExitRequest::new(a).with_reserved(u32::from(b.is_multiple_of(7)));
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::MapAnonymous | KernelFunction::Unmap | KernelFunction::Protect => {
            let address = [0, USER_MAP_BASE, DATA, UNMAPPED, c & !(PAGE - 1)][(a % 5) as usize];
            let request = MapRequest::new(address, u64::from(b % 4) * PAGE, (c % 9) as u32);
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::DoorCreate => {
            let request = DoorCreateRequest::with_kind_number(a % 3, b);
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::Spawn => {
            let name: &[u8] = if a.is_multiple_of(3) {
                b"nonesuch"
            } else {
                b"client"
            };
            let data = encoded(|out| SpawnRequest::encode(name, &[], out));
            let slots = (0..b % 3)
                .map(|i| DescriptorSlot {
                    descriptor: (b / 3 + i) % 8,
                    rights: [Rights::DOOR_CLIENT.0, Rights::EVENT.0, Rights::DOOR_OWNER.0]
                        [((c >> i) % 3) as usize],
                    mode: ((c >> (8 + i)) % 2) as u32,
                    reserved: 0,
                })
                .collect();
            (Descriptor::NULL, data, slots)
        }
        KernelFunction::EventSignal | KernelFunction::EventWait => {
            (Descriptor(descriptor), Vec::new(), Vec::new())
        }
        KernelFunction::DebugWrite => (Descriptor::NULL, b"x".to_vec(), Vec::new()),
        KernelFunction::MemoryCreate => {
            let request =
                MemoryCreateRequest::new(a % 4).with_reserved(u32::from(b.is_multiple_of(7)));
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::MemoryMap => {
            let address = [0, 0x2000_0000, DATA, 0x2000_1000][(b % 4) as usize];
            let request = MemoryMapRequest::new(
                address,
                (c % 3) * PAGE,
                u64::from(b % 3) * PAGE,
                ((c >> 8) % 9) as u32,
            );
            (
                Descriptor(descriptor),
                request.as_bytes().to_vec(),
                Vec::new(),
            )
        }
        KernelFunction::MemoryCow => {
            let request = MemoryRangeRequest::new((c % 3) * PAGE, u64::from(b % 3) * PAGE);
            (
                Descriptor(descriptor),
                request.as_bytes().to_vec(),
                Vec::new(),
            )
        }
        KernelFunction::MemoryDirect => {
            let physical = [DEVICE, RSDP & !(PAGE - 1), FRAME_BASE, 0x7fe_0000][(b % 4) as usize];
            let request = DirectRequest::new(physical, (1 + c % 2) * PAGE);
            let target = if a.is_multiple_of(2) {
                CAP_MACHINE
            } else {
                Descriptor(descriptor)
            };
            (target, request.as_bytes().to_vec(), Vec::new())
        }
        // A process handle now and then (init holds its children's).
        KernelFunction::ProcessSuspend | KernelFunction::ProcessResume => {
            (Descriptor(descriptor), Vec::new(), Vec::new())
        }
        _ => (
            Descriptor(if b.is_multiple_of(5) { descriptor } else { 0 }),
            Vec::new(),
            Vec::new(),
        ),
    }
}

/// A world of five processes: init (privileged), a server owning a user and
/// a system door, two clients, and threads blocked in various ways.
pub(super) fn random_world() -> World {
    let mut w = World::new();
    let init = w.init_thread;
    let (a_owner, a_client) = w.door_create(init, false);
    let (b_owner, b_client) = w.door_create(init, true);
    let e = w.event_create(init);
    // Op::InitSpawn relies on these numbers (after init's three capabilities).
    assert_eq!(
        (a_client, b_client, e),
        (Descriptor(5), Descriptor(7), Descriptor(8))
    );
    let server = w.spawn_ok(
        b"server",
        &[
            DescriptorSlot::moving(a_owner, Rights::DOOR_OWNER),
            DescriptorSlot::moving(b_owner, Rights::DOOR_OWNER),
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(e, Rights::EVENT),
        ],
    );
    let c1 = w.spawn_ok(
        b"client",
        &[
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(b_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(e, Rights::EVENT),
        ],
    );
    let c2 = w.spawn_ok(
        b"client",
        &[
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(b_client, Rights::DOOR_CLIENT),
        ],
    );
    w.thread_create(server.thread);
    w.thread_create(c1.thread);
    w.thread_create(c2.thread);
    w
}

/// Runs one op; returns without effect when the chosen thread cannot trap.
pub(super) fn apply(w: &mut World, op: &Op) {
    let threads: Vec<ThreadId> = w.k.threads.ids().filter(|t| w.runnable(*t)).collect();
    let pick = |i: usize| threads.get(i % threads.len().max(1)).copied();
    let buffer = |t: ThreadId| DATA + u64::from(t.index() % 4) * PAGE;
    let trap = |w: &mut World, t: ThreadId, args: TrapArgs| {
        w.run(t);
        let _ = w.k.take_resume(t);
        w.k.trap(&mut w.m, args);
        let result = w.k.take_resume(t);
        w.results.push(result);
    };
    let total = |data: u16, count: usize, spare: i32| {
        let used = i32::from(descriptor_offset(data)) + 16 * count as i32;
        (used + spare).clamp(0, 4095) as u16
    };
    let write = |w: &mut World, t: ThreadId, buf: u64, data: u16, slots: &[DescriptorSlot]| {
        if let Some(space) = w.k.space_of(t) {
            let bytes: Vec<u8> = (0..data).map(|i| i as u8).collect();
            let _ = w.m.copy_in(space, buf, &bytes);
            let at = buf + u64::from(descriptor_offset(data));
            for (i, slot) in slots.iter().enumerate() {
                let _ = w.m.copy_in(space, at + 16 * i as u64, slot.as_bytes());
            }
        }
    };
    match op {
        Op::Raw { thread, args } => {
            if let Some(t) = pick(*thread) {
                trap(w, t, *args);
            }
        }
        Op::Send {
            thread,
            function,
            target,
            data,
            slots,
            spare,
        } => {
            if let Some(t) = pick(*thread) {
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t);
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(
                    w,
                    t,
                    TrapArgs::send(Function(*function), Descriptor(*target), buf, s),
                );
            }
        }
        Op::Receive {
            thread,
            door,
            total,
        } => {
            if let Some(t) = pick(*thread) {
                let buf = buffer(t) + 0x800;
                trap(w, t, TrapArgs::receive(Descriptor(*door), buf, *total));
            }
        }
        Op::Reply {
            thread,
            cookie,
            data,
            slots,
            spare,
            and_receive,
        } => {
            if let Some(t) = pick(*thread) {
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t) + 0x800;
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(w, t, TrapArgs::reply(*cookie, buf, s, *and_receive));
            }
        }
        Op::Kernel {
            thread,
            function,
            a,
            b,
            c,
        } => {
            if let Some(t) = pick(*thread) {
                let kf = KernelFunction::ALL[function % KernelFunction::ALL.len()];
                let (target, data, slots) = kernel_request(kf, *a, *b, *c);
                let buf = DATA + 0x4000 + u64::from(t.index() % 4) * 0x800;
                write(w, t, buf, data.len() as u16, &slots);
                let used =
                    i32::from(descriptor_offset(data.len() as u16)) + 16 * slots.len() as i32;
                let spare = if c % 11 == 0 { 0 } else { 120 };
                let s = sizes((used + spare) as u16, data.len() as u16, slots.len() as u8);
                trap(w, t, TrapArgs::send(kf.function(), target, buf, s));
            }
        }
        Op::Call {
            thread,
            target,
            matching,
            data,
            slots,
            spare,
        } => {
            if let Some(t) = pick(*thread) {
                // Clients hold A (user) at 1 and B (system) at 2; the server A at 3.
                let function = match (*target == 2) == *matching {
                    true => SYSTEM_FN,
                    false => USER_FN,
                };
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t);
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(
                    w,
                    t,
                    TrapArgs::send(Function(function), Descriptor(*target), buf, s),
                );
            }
        }
        Op::Serve {
            pick: which,
            cookie,
            data,
            slots,
            spare,
            and_receive,
            total: receive_total,
        } => {
            let holders: Vec<ThreadId> = threads
                .iter()
                .copied()
                .filter(|t| w.holding(*t) != Holding::Nothing)
                .collect();
            if let Some(&t) = holders.get(which % holders.len().max(1)) {
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t) + 0x800;
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(w, t, TrapArgs::reply(*cookie, buf, s, *and_receive));
            } else {
                let owners: Vec<(ThreadId, Descriptor)> = threads
                    .iter()
                    .flat_map(|t| (1..=3).map(move |d| (*t, Descriptor(d))))
                    .filter(|(t, d)| {
                        w.reference(w.process_of(*t), *d)
                            .is_some_and(|r| r.rights.contains(Rights::RECEIVE))
                    })
                    .collect();
                if let Some(&(t, d)) = owners.get(which % owners.len().max(1)) {
                    let buf = buffer(t) + 0x800;
                    trap(w, t, TrapArgs::receive(d, buf, *receive_total));
                }
            }
        }
        Op::NewThread { thread, priority } => {
            if let Some(t) = pick(*thread) {
                let request =
                    ThreadCreateRequest::new(IMAGE, USER_STACK_TOP - 0x2000, 0, *priority);
                let buf = DATA + 0x4000 + u64::from(t.index() % 4) * 0x800;
                write(w, t, buf, 32, &[]);
                let _ =
                    w.k.space_of(t)
                        .map(|space| w.m.copy_in(space, buf, request.as_bytes()));
                let s = sizes(64, 32, 0);
                trap(
                    w,
                    t,
                    TrapArgs::send(
                        KernelFunction::ThreadCreate.function(),
                        Descriptor::NULL,
                        buf,
                        s,
                    ),
                );
            }
        }
        Op::InitSpawn { mask } => {
            let t = w.init_thread;
            if w.runnable(t) {
                // Init's own references: A client 5, B client 7, the event 8.
                let candidates = [
                    DescriptorSlot::copy(Descriptor(5), Rights::DOOR_CLIENT),
                    DescriptorSlot::copy(Descriptor(7), Rights::DOOR_CLIENT),
                    DescriptorSlot::copy(Descriptor(8), Rights::EVENT),
                ];
                let slots: Vec<DescriptorSlot> = candidates
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, s)| *s)
                    .collect();
                let data = encoded(|out| SpawnRequest::encode(b"client", &[], out));
                let buf = DATA + 0x6000;
                let _ = w.k.space_of(t).map(|space| w.m.copy_in(space, buf, &data));
                let at = buf + u64::from(descriptor_offset(data.len() as u16));
                for (i, slot) in slots.iter().enumerate() {
                    let _ =
                        w.k.space_of(t)
                            .map(|space| w.m.copy_in(space, at + 16 * i as u64, slot.as_bytes()));
                }
                let s = sizes(256, data.len() as u16, slots.len() as u8);
                trap(
                    w,
                    t,
                    TrapArgs::send(KernelFunction::Spawn.function(), CAP_PROCESS, buf, s),
                );
            }
        }
        Op::Tick => w.k.tick(),
        Op::Write { thread, address } => {
            if let Some(t) = pick(*thread) {
                let space = w.space(w.process_of(t));
                let allowed = w.m.access(space, *address, 1, true).is_ok()
                    || w.k
                        .processes
                        .get(w.process_of(t))
                        .and_then(|p| p.region_at(*address))
                        .is_some_and(|(_, r)| r.protection & abi::kcall::protection::WRITE != 0);
                if allowed || thread % 4 == 0 {
                    let _ = w.user_write(t, *address, b"w");
                }
            }
        }
        Op::Fault { thread } => {
            if thread % 4 != 0 {
                return;
            }
            if let Some(t) = pick(*thread) {
                w.run(t);
                w.k.fault(&mut w.m);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Random traps by random threads never panic the kernel, every state
    /// between traps keeps the invariants, and ending every process frees
    /// everything.
    #[test]
    fn random_traps_keep_the_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let mut w = random_world();
        let violations = w.violations();
        prop_assert!(violations.is_empty(), "initial state: {:?}", violations);
        for (i, op) in ops.iter().enumerate() {
            apply(&mut w, op);
            let violations = w.violations();
            prop_assert!(violations.is_empty(), "after op {} {:?}:\n{}", i, op, violations.join("\n"));
        }
        let processes: Vec<ProcessId> = w.k.processes.ids().collect();
        for p in processes {
            w.k.end_process(&mut w.m, p, 0);
        }
        let violations = w.violations();
        prop_assert!(violations.is_empty(), "after teardown:\n{}", violations.join("\n"));
        prop_assert_eq!(w.k.counters(), KernelCounters::default());
        prop_assert!(w.m.spaces.is_empty() && w.m.contexts.is_empty());
    }
}
