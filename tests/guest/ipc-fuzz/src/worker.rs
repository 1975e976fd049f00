//! A racing worker: draws trap numbers from the process's counter and,
//! for each, makes a random trap (most of the time) or takes a racing
//! action against what the other threads and the other process are doing
//! with the same descriptors and buffers: UNMAP, PROTECT and MAP_ANONYMOUS
//! of arena pages, calls with a manifest of their slots' rights, DUPLICATE
//! and DESCRIPTOR_INFO probes, EVENT_WAIT and EVENT_SIGNAL on the shared
//! alarm, YIELD, THREAD_EXIT.
//!
//! The random traps' registers are biased so that most traps look almost
//! right: function numbers of real kernel functions, of echo's functions
//! and of the four ranges' edges; the fodder descriptors; buffers inside
//! the arena (with well-formed kernel requests and descriptor slots in
//! them more often than not); and for the rest null, kernel-half,
//! non-canonical, read-only and random addresses, wrong sizes and set
//! reserved bits. What the random traps never do (each would end or park
//! the thread, or wreck the memory the program runs on), the actions do
//! in a controlled way: THREAD_CREATE, THREAD_EXIT, PROCESS_EXIT,
//! EVENT_WAIT, UNMAP and PROTECT appear in random traps only with reserved
//! bits set in `arg0`, which the kernel must refuse before looking at the
//! number; DEBUG_WRITE always gets a data size of 0; the kept descriptors
//! and the memory the program runs on are out of reach.

use alloc::boxed::Box;

use abi::function::{Function, PROCESS_MANAGER_BASE, SYSTEM_BASE, USER_BASE};
use abi::kcall::{
    ArchiveReadReply, ArchiveReadRequest, CookieRequest, DescriptorRequest, DoorCreateRequest,
    ExitRequest, KernelCounters, MapReply, MapRequest, REPLY_PAYLOAD_OFFSET, SpawnRequest,
    protection,
};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset, message_extent};
use abi::process::{USER_END, USER_IMAGE_BASE, USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP};
use abi::{
    Descriptor, Error, KernelFunction, MessageSizes, PAGE_BYTES, PAGE_SIZE, Rights, TrapArgs,
};
use ipc_fuzz::{
    ALARM, Action, BELL, BOOT_ARCHIVE, LAST_FODDER, MANIFEST_SLOTS, Manifest, OTHER_SERVED,
    OWN_SERVED, PROCESS_CONTROL, REPLY_MAGIC, REQUEST_MAGIC, TRACKED, Violation, is_kept,
};
use userlib::kernel;
use userlib::raw::{self, Buffer};
use zerocopy::IntoBytes;

use crate::context::{Context, Returned, entry_of, operation, returned, words};
use crate::shared::{ABRUPT_EXITS, ARENA_PAGES, ARENA_SIZE};

/// How a racing thread ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// It waits on the reaper door, so that its stack can be unmapped.
    Reap,
    /// It exits at once, whatever it holds (its stack stays mapped).
    Abrupt,
}

/// The kernel functions the random traps never call with a valid `arg0`
/// (see the module documentation for why).
const SKIPPED: &[KernelFunction] = &[
    KernelFunction::ThreadCreate,
    KernelFunction::ThreadExit,
    KernelFunction::ProcessExit,
    KernelFunction::EventWait,
    KernelFunction::Unmap,
    KernelFunction::Protect,
];

/// The kernel functions the random traps call with plausible requests.
const CALLED: &[KernelFunction] = &[
    KernelFunction::Close,
    KernelFunction::Duplicate,
    KernelFunction::DescriptorInfo,
    KernelFunction::Yield,
    KernelFunction::MapAnonymous,
    KernelFunction::EventCreate,
    KernelFunction::EventSignal,
    KernelFunction::DebugWrite,
    KernelFunction::DebugExit,
    KernelFunction::Counters,
    KernelFunction::Clock,
    KernelFunction::DoorCreate,
    KernelFunction::Spawn,
    KernelFunction::ProcessSetCookie,
    KernelFunction::ManagerRegister,
    KernelFunction::ArchiveRead,
];

/// The kernel functions sent to a kernel capability (ABI.md §6).
const CAPABILITY_FUNCTIONS: &[KernelFunction] = &[
    KernelFunction::DoorCreate,
    KernelFunction::Spawn,
    KernelFunction::ManagerRegister,
    KernelFunction::ArchiveRead,
    KernelFunction::DebugExit,
];

/// Where MAP_ANONYMOUS requests with an address aim, and the actions UNMAP
/// and PROTECT: nothing else lives there.
pub const MAP_PLAYGROUND: u64 = 0x0000_3000_0000_0000;
/// How far the playground reaches (the coordinator unmaps all of it now and then).
pub const PLAYGROUND_SIZE: u64 = 1 << 40;

/// Every this many trap numbers a worker signals [`BELL`].
const BELL_EVERY: u64 = 64;

/// Never written by this program; the kernel must refuse it as a buffer.
static READ_ONLY: [u8; PAGE_SIZE] = [0x5a; PAGE_SIZE];

/// A worker's state.
#[derive(Debug)]
pub struct Worker<'a> {
    cx: &'a mut Context,
    /// A buffer of its own, for the traps whose results it checks.
    buffer: Box<Buffer>,
}

/// Runs a worker until the process stops (or it decides to exit).
pub fn run(cx: &mut Context) -> End {
    let mut worker = Worker {
        cx,
        buffer: Box::new(Buffer::new()),
    };
    worker.run()
}

impl Worker<'_> {
    fn run(&mut self) -> End {
        let shared = self.cx.shared;
        loop {
            if shared.stopping() {
                return End::Reap;
            }
            let number = shared
                .next_trap
                .fetch_add(1, core::sync::atomic::Ordering::SeqCst);
            if number >= shared.budget {
                shared.request_stop();
                let _ = kernel::event_signal(BELL);
                return End::Reap;
            }
            self.cx.trap = number;
            if number.is_multiple_of(BELL_EVERY) {
                // Wakes a coordinator (of either process) to look around.
                let entry = entry_of(KernelFunction::EventSignal, BELL);
                let _ = self.cx.bracket(entry, || kernel::event_signal(BELL));
            }
            let choice = self.cx.rng.below(1000);
            let action = match choice {
                0..760 => {
                    self.random_trap();
                    continue;
                }
                760..790 => Action::Yield,
                790..805 => Action::Unmap,
                805..820 => Action::Protect,
                820..850 => Action::Remap,
                850..860 => Action::Playground,
                860..900 => Action::TrackedCall,
                900..925 => Action::DuplicateProbe,
                925..950 => Action::InfoProbe,
                950..965 => Action::Wait,
                965..990 => Action::Signal,
                990..999 => Action::MapUnmap,
                _ => Action::ThreadExit,
            };
            self.cx.counts.actions[action as usize] += 1;
            match action {
                Action::Yield => {
                    let entry = entry_of(KernelFunction::Yield, Descriptor::NULL);
                    let _ = self.cx.bracket(entry, kernel::yield_now);
                }
                Action::Unmap => {
                    let first = self.cx.rng.below(ARENA_PAGES as u64) as usize;
                    let count = 1 + self.cx.rng.below(2) as usize;
                    let arena = &shared.arena;
                    let entry = entry_of(KernelFunction::Unmap, Descriptor::NULL);
                    let _ = self.cx.bracket(entry, || arena.unmap(first, count));
                }
                Action::Protect => {
                    let first = self.cx.rng.below(ARENA_PAGES as u64) as usize;
                    let count = 1 + self.cx.rng.below(2) as usize;
                    let bits = self.cx.rng.pick(&[
                        protection::READ,
                        protection::READ | protection::EXECUTE,
                        protection::READ | protection::WRITE,
                    ]);
                    let arena = &shared.arena;
                    let entry = entry_of(KernelFunction::Protect, Descriptor::NULL);
                    let _ = self.cx.bracket(entry, || arena.protect(first, count, bits));
                }
                Action::Remap => {
                    let page = self.cx.rng.below(ARENA_PAGES as u64) as usize;
                    let arena = &shared.arena;
                    let entry = entry_of(KernelFunction::MapAnonymous, Descriptor::NULL);
                    let _ = self.cx.bracket(entry, || arena.restore(page));
                }
                Action::Playground => self.playground(),
                Action::TrackedCall => self.tracked_call(),
                Action::DuplicateProbe => self.duplicate_probe(),
                Action::InfoProbe => {
                    let descriptor = match self.cx.rng.below(10) {
                        0..7 => self.cx.rng.below(u64::from(LAST_FODDER) + 1) as u32,
                        _ => self.cx.rng.below(64) as u32,
                    };
                    let _ = self.cx.info(descriptor);
                }
                Action::Wait => self.wait(),
                Action::Signal => {
                    let entry = entry_of(KernelFunction::EventSignal, ALARM);
                    let _ = self.cx.bracket(entry, || kernel::event_signal(ALARM));
                }
                Action::MapUnmap => self.map_unmap(),
                Action::ThreadExit => {
                    // A quarter of the exits are abrupt: whatever the
                    // thread holds (a message a random RECEIVE gave it)
                    // goes with it.
                    let abrupt = self.cx.rng.chance(25)
                        && shared
                            .abrupt_exits
                            .load(core::sync::atomic::Ordering::SeqCst)
                            < ABRUPT_EXITS;
                    return if abrupt { End::Abrupt } else { End::Reap };
                }
            }
        }
    }

    /// UNMAP or PROTECT of a range of the playground (where random
    /// MAP_ANONYMOUS requests with an address land).
    fn playground(&mut self) {
        let address = MAP_PLAYGROUND + self.cx.rng.below(68) * PAGE_BYTES;
        let length = (1 + self.cx.rng.below(4)) * PAGE_BYTES;
        if self.cx.rng.chance(50) {
            let entry = entry_of(KernelFunction::Unmap, Descriptor::NULL);
            let _ = self.cx.bracket(entry, || kernel::unmap(address, length));
        } else {
            let bits = self.cx.rng.below(u64::from(protection::ALL) + 1) as u32;
            let entry = entry_of(KernelFunction::Protect, Descriptor::NULL);
            let _ = self
                .cx
                .bracket(entry, || kernel::protect(address, length, bits));
        }
    }

    /// MAP_ANONYMOUS where the kernel chooses, then UNMAP of what it gave
    /// (the reply lands in this thread's own stack buffer, so the address
    /// is exact).
    fn map_unmap(&mut self) {
        let length = (1 + self.cx.rng.below(4)) * PAGE_BYTES;
        let bits = self.cx.rng.pick(&[
            protection::READ,
            protection::READ | protection::WRITE,
            protection::READ | protection::EXECUTE,
        ]);
        let entry = entry_of(KernelFunction::MapAnonymous, Descriptor::NULL);
        let mapped = self
            .cx
            .bracket(entry, || kernel::map_anonymous(0, length, bits));
        if let Ok(address) = mapped {
            let entry = entry_of(KernelFunction::Unmap, Descriptor::NULL);
            let _ = self.cx.bracket(entry, || kernel::unmap(address, length));
        }
    }

    /// EVENT_WAIT on the shared alarm, its reply buffer in the arena (where
    /// another thread may unmap it meanwhile) or in this thread's own.
    fn wait(&mut self) {
        let sizes = MessageSizes::of(16, 0, 0);
        let shared = self.cx.shared;
        if self.cx.rng.chance(50) {
            let address = shared.arena.base() + self.cx.rng.below(ARENA_SIZE - 16);
            let args = TrapArgs::send(KernelFunction::EventWait.function(), ALARM, address, sizes);
            let result = self
                .cx
                .bracket(args, || raw::trap_at(args, Some(shared.arena.pages())));
            if let Ok(result) = result {
                self.judge_plain(args, result);
            }
        } else {
            let args = TrapArgs::send(
                KernelFunction::EventWait.function(),
                ALARM,
                self.buffer.address(),
                sizes,
            );
            let buffer = &mut self.buffer;
            let result = self.cx.bracket(args, || {
                buffer.send(
                    KernelFunction::EventWait.function(),
                    ALARM,
                    sizes.into_bits(),
                )
            });
            self.judge_plain(args, result);
        }
    }

    /// Checks the return conventions of an action's trap.
    fn judge_plain(&mut self, args: TrapArgs, result: TrapArgs) {
        if returned(args, result) == Returned::Broken {
            self.cx
                .violation(Violation::Convention, args, words(result));
        }
    }

    /// DUPLICATE of a fodder descriptor, bracketed by CLOCK: when no tick
    /// came between (so no other thread ran, ABI.md §6 "Clock"), the
    /// DESCRIPTOR_INFO before it tells exactly what the copy may be.
    fn duplicate_probe(&mut self) {
        let descriptor = 1 + self.cx.rng.below(u64::from(LAST_FODDER)) as u32;
        let asked = Rights(self.cx.rng.below(u64::from(Rights::ALL.0) + 1) as u32 & Rights::ALL.0);
        let Some(before) = self.cx.clock() else {
            return;
        };
        let source = self.cx.info(descriptor);
        let request = DescriptorRequest::new(Descriptor(descriptor), asked);
        let args = TrapArgs::send(
            KernelFunction::Duplicate.function(),
            Descriptor::NULL,
            self.buffer.address(),
            MessageSizes::of(64, 8, 0),
        );
        let buffer = &mut self.buffer;
        let result = self.cx.bracket(args, || {
            buffer.kernel_call(
                KernelFunction::Duplicate,
                Descriptor::NULL,
                request.as_bytes(),
                64,
            )
        });
        let judged = returned(args, result);
        let copy = match judged {
            Returned::Completed => self.buffer.slot(8, 0),
            Returned::Broken => {
                self.cx
                    .violation(Violation::Convention, args, words(result));
                None
            }
            _ => None,
        };
        let copy_info = copy.map(|slot| (slot, self.cx.info(slot.descriptor)));
        let after = self.cx.clock();
        if after == Some(before) {
            self.cx.counts.rights_checked += 1;
            let consistent = match (source, judged, copy_info) {
                (Err(Error::BadDescriptor), Returned::Failed(n), _) => {
                    n == Error::BadDescriptor as u64
                }
                (Err(_), _, _) => false,
                (Ok(info), Returned::Completed, Some((slot, Ok(copied)))) => {
                    info.rights.contains(Rights::DUPLICATE)
                        && info.rights.contains(asked)
                        && !asked.contains(Rights::RECEIVE)
                        && slot.rights == asked.0
                        && copied.rights == asked
                        && copied.kind == info.kind
                }
                (Ok(_), Returned::Completed, _) => false,
                (Ok(info), Returned::Failed(n), _) => match Error::from_number(n as u32) {
                    Some(Error::MissingRight) => !info.rights.contains(Rights::DUPLICATE),
                    Some(Error::RightsExceeded) => !info.rights.contains(asked),
                    Some(Error::NotTransferable) => asked.contains(Rights::RECEIVE),
                    Some(Error::BadDescriptor) => false,
                    _ => true,
                },
                (Ok(_), _, _) => true,
            };
            if !consistent {
                let source = source.map_or(u64::MAX, |info| {
                    u64::from(info.rights.0) | info.kind.map_or(0, |kind| (kind as u64) << 32)
                });
                let copied = copy_info.map_or(u64::MAX, |(_, info)| {
                    info.map_or(u64::MAX - 1, |info| u64::from(info.rights.0))
                });
                self.cx.violation(
                    Violation::Duplicate,
                    args,
                    [source, u64::from(asked.0), result.arg1, copied],
                );
            }
        }
        if let Some(slot) = copy {
            let entry = entry_of(KernelFunction::Close, Descriptor(slot.descriptor));
            let _ = self
                .cx
                .bracket(entry, || kernel::close(Descriptor(slot.descriptor)));
        }
    }

    /// A call with a manifest: slots of fodder descriptors, each asking for
    /// rights the reference was just seen to hold (or more, now and then),
    /// to a door of the fodder (most often a served one). A fuzzer server's
    /// reply names its own slots' rights and this call's nonce.
    fn tracked_call(&mut self) {
        let shared = self.cx.shared;
        let target = match (self.cx.rng.below(100), shared.door(self.cx.rng.next())) {
            (0..40, _) | (_, None) => self.cx.rng.pick(&[OWN_SERVED.0, OTHER_SERVED.0]),
            (40..85, Some(door)) => door,
            _ => self.cx.rng.pick(&[9, 10]),
        };
        let count = match self.cx.rng.below(10) {
            0..4 => 0,
            4..7 => 1,
            7..9 => 2,
            _ => 1 + self.cx.rng.below(MANIFEST_SLOTS as u64),
        } as usize;
        let nonce = (shared.role as u64) << 62 | self.cx.trap;
        let mut manifest = Manifest {
            magic: REQUEST_MAGIC,
            count: count as u32,
            reserved: 0,
            nonce,
            rights: [0; MANIFEST_SLOTS],
        };
        let extra = self.cx.rng.below(64) as u16;
        let data = size_of::<Manifest>() as u16 + extra;
        let mut slots = [DescriptorSlot::copy(Descriptor::NULL, Rights::NONE); MANIFEST_SLOTS];
        for (index, slot) in slots.iter_mut().enumerate().take(count) {
            let descriptor = 1 + self.cx.rng.below(u64::from(LAST_FODDER)) as u32;
            let moving = self.cx.rng.chance(15);
            let held = self
                .cx
                .info(descriptor)
                .map_or(Rights::ALL, |info| info.rights);
            let rights = if moving {
                held
            } else {
                let mask = if self.cx.rng.chance(95) {
                    self.cx.rng.next() as u32 & Rights::ALL.0
                } else {
                    Rights::ALL.0
                };
                Rights(held.0 & mask & !Rights::RECEIVE.0)
            };
            manifest.rights[index] = rights.0;
            *slot = if moving {
                DescriptorSlot::moving(Descriptor(descriptor), rights)
            } else {
                DescriptorSlot::copy(Descriptor(descriptor), rights)
            };
        }
        let extent = message_extent(data, count as u8);
        let total = if self.cx.rng.chance(90) {
            MAX_TOTAL_SIZE
        } else {
            extent + self.cx.rng.below(u64::from(MAX_TOTAL_SIZE - extent) + 1) as u16
        };
        self.buffer.put_value(0, &manifest);
        for (index, slot) in slots.iter().enumerate().take(count) {
            self.buffer.put_slot_of(data, index, *slot);
        }
        let sizes = MessageSizes::of(total, data, count as u8);
        let args = TrapArgs::send(TRACKED, Descriptor(target), self.buffer.address(), sizes);
        let buffer = &mut self.buffer;
        let result = self.cx.bracket(args, || {
            buffer.send(TRACKED, Descriptor(target), sizes.into_bits())
        });
        match returned(args, result) {
            Returned::Completed => {
                let reply = MessageSizes::from_bits(result.arg3);
                self.check_reply(args, result, nonce);
                for index in 0..usize::from(reply.descriptor_count()) {
                    if let Some(slot) = self.buffer.slot(reply.data_size(), index) {
                        self.cx.close_arrival(slot.descriptor);
                    }
                }
            }
            Returned::Failed(_) => {}
            _ => self
                .cx
                .violation(Violation::Convention, args, words(result)),
        }
    }

    /// The reply of a tracked call: if a fuzzer server wrote it (its
    /// manifest), it answers this call and its slots arrived with the
    /// rights it names.
    fn check_reply(&mut self, args: TrapArgs, result: TrapArgs, nonce: u64) {
        let reply = MessageSizes::from_bits(result.arg3);
        let data = usize::from(reply.data_size());
        if data < REPLY_PAYLOAD_OFFSET + size_of::<Manifest>() {
            return;
        }
        let Some(manifest) = self.buffer.get::<Manifest>(REPLY_PAYLOAD_OFFSET) else {
            return;
        };
        if manifest.magic != REPLY_MAGIC {
            return;
        }
        if manifest.nonce != nonce {
            self.cx.violation(
                Violation::WrongReply,
                args,
                [manifest.nonce, nonce, result.arg3, 0],
            );
            return;
        }
        let count = usize::from(reply.descriptor_count());
        if manifest.count as usize != count || count > MANIFEST_SLOTS {
            self.cx.violation(
                Violation::Transfer,
                args,
                [u64::from(manifest.count), count as u64, result.arg3, 0],
            );
            return;
        }
        for index in 0..count {
            let granted = self
                .buffer
                .slot(reply.data_size(), index)
                .map_or(u32::MAX, |slot| slot.rights);
            self.cx.counts.rights_checked += 1;
            if granted != manifest.rights[index] {
                self.cx.violation(
                    Violation::Transfer,
                    args,
                    [
                        index as u64,
                        u64::from(manifest.rights[index]),
                        u64::from(granted),
                        result.arg3,
                    ],
                );
            }
        }
    }

    /// Makes one random trap and records its result.
    fn random_trap(&mut self) {
        let (args, explicit_capability) = self.random_registers();
        let shared = self.cx.shared;
        // `random_registers` only lets `arg2` name the arena, READ_ONLY
        // (which the kernel must refuse to write), or addresses outside
        // this program's image, stacks and heap; userlib checks it again,
        // and a trap it refuses is not counted.
        let result = self
            .cx
            .bracket(args, || raw::trap_at(args, Some(shared.arena.pages())));
        let Ok(result) = result else {
            return;
        };
        self.cx.counts.calls += 1;
        let must_refuse = (!explicit_capability)
            .then(|| capability_trap(args))
            .flatten();
        let judged = returned(args, result);
        if let Some(null) = must_refuse {
            self.cx.counts.capability_traps += 1;
            let expected: &[Error] = if null {
                &[Error::FunctionOutOfRange]
            } else {
                &[Error::BadDescriptor, Error::WrongObjectType]
            };
            if !expected
                .iter()
                .any(|error| result == TrapArgs::error(*error))
            {
                self.cx
                    .violation(Violation::Capability, args, words(result));
            }
        }
        match judged {
            Returned::Failed(number) => self.cx.count_error(number),
            Returned::Completed => {
                self.cx.counts.completed += 1;
                if explicit_capability {
                    let body = match operation(args.arg0) {
                        Some(KernelFunction::DoorCreate) => Some(0),
                        Some(KernelFunction::Spawn) => Some(1),
                        Some(KernelFunction::ArchiveRead) => Some(2),
                        _ => None,
                    };
                    if let Some(body) = body {
                        self.cx.counts.capability_completed[body] += 1;
                    }
                }
                let sizes = MessageSizes::from_bits(result.arg3);
                self.close_arrivals(args.arg2, sizes);
            }
            Returned::Received => {
                self.cx.counts.completed += 1;
                self.cx.check_cookie(args, result);
                let sizes = MessageSizes::from_bits(result.arg3);
                self.close_arrivals(args.arg2, sizes);
            }
            Returned::Replied => self.cx.counts.completed += 1,
            Returned::Broken => {
                self.cx.counts.completed += 1;
                self.cx
                    .violation(Violation::Convention, args, words(result));
            }
        }
    }

    /// Closes the descriptors a message in the arena brought in above the
    /// fodder (the slots are read back from the arena, where other threads
    /// may have written meanwhile: a wrong number is one more racing CLOSE).
    fn close_arrivals(&mut self, buffer: u64, sizes: MessageSizes) {
        let count = sizes.descriptor_count();
        if count == 0 {
            return;
        }
        let first = buffer.wrapping_add(u64::from(descriptor_offset(sizes.data_size())));
        for index in 0..u64::from(count) {
            let at = first.wrapping_add(index * u64::from(SLOT_SIZE));
            if let Some(descriptor) = self.cx.shared.arena.read_u32(at) {
                self.cx.close_arrival(descriptor);
            }
        }
    }

    /// One set of entry registers, with the message it names written into
    /// the arena when the buffer lies there; and whether its target is a
    /// capability this process holds, chosen on purpose.
    fn random_registers(&mut self) -> (TrapArgs, bool) {
        if self.cx.rng.chance(4) {
            let arg0 = self.function_bits();
            let arg1 = match operation(arg0) {
                Some(KernelFunction::Reply | KernelFunction::ReplyReceive) => self.cx.cookie(),
                _ => sanitize_descriptor_register(self.cx.rng.next()),
            };
            let args = TrapArgs {
                arg0,
                arg1,
                arg2: self.buffer(),
                arg3: self.cx.rng.next(),
            };
            return (args, false);
        }
        let arg0 = self.function_bits();
        let operation = operation(arg0);
        let mut explicit = false;
        let arg1 = match operation {
            Some(KernelFunction::Reply | KernelFunction::ReplyReceive) => self.cx.cookie(),
            Some(f)
                if self.cx.shared.capabilities
                    && CAPABILITY_FUNCTIONS.contains(&f)
                    && f != KernelFunction::ManagerRegister
                    && f != KernelFunction::DebugExit
                    && self.cx.rng.chance(50) =>
            {
                // The capability the function needs, now and then the other.
                let right = match f {
                    KernelFunction::ArchiveRead => BOOT_ARCHIVE,
                    _ => PROCESS_CONTROL,
                };
                let wrong = if right == BOOT_ARCHIVE {
                    PROCESS_CONTROL
                } else {
                    BOOT_ARCHIVE
                };
                let target = if self.cx.rng.chance(85) { right } else { wrong };
                explicit = target == right;
                u64::from(target.0)
            }
            _ if self.cx.rng.chance(2) => sanitize_descriptor_register(
                u64::from(self.descriptor()) | (self.cx.rng.next() << 32),
            ),
            // Most kernel functions take the NULL target.
            Some(f) if takes_null(f) && self.cx.rng.chance(85) => 0,
            // The others take an object; the NULL target is refused.
            Some(f) if !takes_null(f) && self.cx.rng.chance(33) => 0,
            // Door calls mostly go to the references that can SEND (or
            // to the dead door).
            None if arg0 >> 32 == 0
                && (arg0 as u32) >= USER_BASE as u32
                && self.cx.rng.chance(60) =>
            {
                match self.cx.shared.door(self.cx.rng.next()) {
                    // The served doors through the kept clients, chosen on
                    // purpose (the fodder's copies of them come and go).
                    _ if self.cx.rng.chance(25) => {
                        u64::from(self.cx.rng.pick(&[OWN_SERVED.0, OTHER_SERVED.0]))
                    }
                    Some(door) => u64::from(door),
                    None => u64::from(self.descriptor()),
                }
            }
            _ => u64::from(self.descriptor()),
        };
        let arg2 = self.buffer();
        let plausible = operation.filter(|f| CALLED.contains(f) && self.cx.rng.chance(70));
        let (data, total, count) = match plausible {
            Some(function) => self.kernel_request(function, arg2),
            None => self.random_message(arg2),
        };
        let (data, count) = match operation {
            Some(KernelFunction::DebugWrite) => (0, count),
            // RECEIVE takes a total size only; mostly give it just that.
            Some(KernelFunction::Receive) if self.cx.rng.chance(60) => (0, 0),
            _ => (data, count),
        };
        let mut arg3 = abi::message::sizes(total, data, count);
        if self.cx.rng.chance(2) {
            arg3 |= self.cx.rng.next() << 32;
        }
        self.write_slots(arg2, data, count, arg0);
        (
            TrapArgs {
                arg0,
                arg1,
                arg2,
                arg3,
            },
            explicit,
        )
    }

    /// A function number (`arg0`), never a [`SKIPPED`] one with a clear upper half.
    fn function_bits(&mut self) -> u64 {
        let rng = &mut self.cx.rng;
        loop {
            let number: i64 = match rng.below(100) {
                0..45 => i64::from(rng.pick(CALLED) as i32),
                45..55 => i64::from(
                    rng.pick(&[
                        abi::function::RECEIVE,
                        abi::function::REPLY,
                        abi::function::REPLY_RECEIVE,
                    ])
                    .0,
                ),
                55..75 => i64::from(USER_BASE) + rng.below(8) as i64,
                75..80 => i64::from(USER_BASE) + rng.below(0x7fff_8000) as i64,
                80..84 => i64::from(SYSTEM_BASE) + rng.below(0x7000) as i64,
                84..88 => i64::from(PROCESS_MANAGER_BASE) + rng.below(0xc00) as i64,
                88..92 => rng.below(0x400) as i64,
                92..96 => i64::from(rng.pick(&[-1, i32::MIN, -2, -0x8000])),
                _ => return rng.next(),
            };
            let mut bits = u64::from(number as i32 as u32);
            if rng.chance(2) {
                bits |= rng.next() << 32;
            }
            let skipped = bits >> 32 == 0
                && Function(number as i32)
                    .kernel_function()
                    .is_some_and(|f| SKIPPED.contains(&f));
            if !skipped {
                return bits;
            }
        }
    }

    /// A descriptor number: mostly the fodder, never a kept one.
    fn descriptor(&mut self) -> u32 {
        let rng = &mut self.cx.rng;
        let descriptor = match rng.below(100) {
            0..80 => rng.below(u64::from(LAST_FODDER) + 1) as u32,
            80..90 => ipc_fuzz::BOOT_ARCHIVE.0 + 1 + rng.below(30) as u32,
            90..95 => rng.pick(&[1024, 1025, u32::MAX, 0x8000_0000]),
            _ => rng.next() as u32,
        };
        sanitize_descriptor(descriptor)
    }

    /// A buffer address (`arg2`).
    fn buffer(&mut self) -> u64 {
        let arena = &self.cx.shared.arena;
        let rng = &mut self.cx.rng;
        match rng.below(100) {
            0..70 => arena.base() + rng.below(ARENA_SIZE - PAGE_BYTES),
            70..78 => arena.end() - 1 - rng.below(PAGE_BYTES),
            78..82 => 0,
            82..85 => rng.below(USER_IMAGE_BASE),
            85..88 => 0xffff_8000_0000_0000 | rng.next(),
            88..91 => 0x0000_8000_0000_0000 + rng.below(1 << 40),
            91..95 => READ_ONLY.as_ptr().expose_provenance() as u64 + rng.below(2048),
            _ => match rng.next() {
                address if is_own_memory(address) => {
                    arena.base() + (address % (ARENA_SIZE - PAGE_BYTES))
                }
                address => address,
            },
        }
    }

    /// Writes a plausible request of `function` at `buffer`; returns the
    /// data size, a total size (usually big enough for the reply) and the
    /// descriptor count.
    fn kernel_request(&mut self, function: KernelFunction, buffer: u64) -> (u16, u16, u8) {
        let mut request = [0u8; 64];
        let mut slots = 0u8;
        let capabilities = self.cx.shared.capabilities;
        let (length, reply) = match function {
            KernelFunction::Close | KernelFunction::DescriptorInfo | KernelFunction::Duplicate => {
                let rights = if function == KernelFunction::Duplicate || self.cx.rng.chance(5) {
                    self.rights()
                } else {
                    0
                };
                let r =
                    DescriptorRequest::new(abi::Descriptor(self.descriptor()), abi::Rights(rights));
                request[..8].copy_from_slice(r.as_bytes());
                let reply = match function {
                    KernelFunction::DescriptorInfo => 16,
                    KernelFunction::Duplicate => 8 + 16,
                    _ => 8,
                };
                (8, reply)
            }
            KernelFunction::MapAnonymous => {
                let rng = &mut self.cx.rng;
                // Where the kernel chooses only rarely and small: nothing
                // unmaps those (the map-unmap action covers that case).
                let placed = rng.per_mille(2);
                let address = if placed {
                    0
                } else if rng.chance(85) {
                    MAP_PLAYGROUND + rng.below(64) * PAGE_BYTES
                } else {
                    rng.next()
                };
                let length = if placed || rng.chance(90) {
                    (1 + if placed { 0 } else { rng.below(4) }) * PAGE_BYTES
                } else {
                    rng.next() >> (40 + rng.below(24))
                };
                let r = MapRequest::new(
                    address,
                    length,
                    if rng.chance(90) {
                        rng.below(u64::from(protection::ALL) + 1) as u32
                    } else {
                        rng.next() as u32
                    },
                )
                .with_reserved(if rng.chance(95) { 0 } else { 1 });
                request[..24].copy_from_slice(r.as_bytes());
                (24, 8 + size_of::<MapReply>())
            }
            KernelFunction::DebugExit => {
                let r = ExitRequest::new(self.cx.rng.next() as u32)
                    .with_reserved(if self.cx.rng.chance(90) { 0 } else { 1 });
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8)
            }
            KernelFunction::DoorCreate => {
                let r = DoorCreateRequest::with_kind_number(
                    self.cx.rng.below(3) as u32,
                    self.cx.rng.next() as u32,
                );
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8 + 32)
            }
            KernelFunction::Spawn => {
                // With the capability, never a server (echo would serve a
                // door it was given forever): the fuzzer itself, which
                // exits at once without its magic, and names that fail.
                let names: [&[u8]; 4] = if capabilities {
                    [b"ipc-fuzz", b"nope", b"", b"ipc-fuzz"]
                } else {
                    [b"ipc-fuzz", b"echo", b"nope", b""]
                };
                let name = self.cx.rng.pick(&names);
                let arguments = self.cx.rng.below(16) as usize;
                let r = SpawnRequest::with_lengths(name.len() as u32, arguments as u32);
                request[..8].copy_from_slice(r.as_bytes());
                request[8..8 + name.len()].copy_from_slice(name);
                slots = self.cx.rng.below(3) as u8;
                (8 + name.len() + arguments, 8 + 16)
            }
            KernelFunction::ProcessSetCookie => {
                let r = CookieRequest::new(self.cx.rng.next());
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8)
            }
            KernelFunction::ManagerRegister => {
                let rights = if self.cx.rng.chance(95) {
                    0
                } else {
                    self.rights()
                };
                let r =
                    DescriptorRequest::new(abi::Descriptor(self.descriptor()), abi::Rights(rights));
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8)
            }
            KernelFunction::ArchiveRead => {
                let names: [&[u8]; 4] = [b"ipc-fuzz", b"echo", b"nope", b""];
                let name = self.cx.rng.pick(&names);
                let r = ArchiveReadRequest::with_name_length(
                    name.len() as u32,
                    if self.cx.rng.chance(80) {
                        self.cx.rng.below(1 << 16)
                    } else {
                        self.cx.rng.next()
                    },
                )
                .with_reserved(if self.cx.rng.chance(95) { 0 } else { 1 });
                request[..16].copy_from_slice(r.as_bytes());
                request[16..16 + name.len()].copy_from_slice(name);
                (16 + name.len(), 8 + size_of::<ArchiveReadReply>() + 64)
            }
            KernelFunction::Counters => (0, 8 + size_of::<KernelCounters>()),
            KernelFunction::Clock => (0, 24),
            _ => (0, 8),
        };
        let length = length.min(request.len());
        self.cx.shared.arena.write(buffer, &request[..length]);
        let needed = usize::from(message_extent(length as u16, slots)).max(reply);
        let total = if self.cx.rng.chance(90) {
            needed + self.cx.rng.below(64) as usize
        } else {
            self.cx.rng.below(needed as u64 + 1) as usize
        };
        (
            length as u16,
            total.min(usize::from(MAX_TOTAL_SIZE)) as u16,
            slots,
        )
    }

    /// Random sizes and random data at `buffer`.
    fn random_message(&mut self, buffer: u64) -> (u16, u16, u8) {
        let rng = &mut self.cx.rng;
        let total = match rng.below(100) {
            0..10 => 0,
            10..70 => rng.below(513),
            70..90 => 512 + rng.below(u64::from(MAX_TOTAL_SIZE) - 511),
            _ => u64::from(MAX_TOTAL_SIZE),
        } as u16;
        let data = if rng.chance(85) {
            rng.below(u64::from(total) + 1) as u16
        } else {
            rng.below(u64::from(MAX_TOTAL_SIZE) + 1) as u16
        };
        let count = match rng.below(100) {
            0..70 => 0,
            70..90 => 1 + rng.below(2),
            90..97 => 3 + rng.below(2),
            _ => rng.below(256),
        } as u8;
        let arena = &self.cx.shared.arena;
        if arena.contains(buffer, 1) {
            let mut bytes = [0u8; MAX_TOTAL_SIZE as usize];
            for chunk in bytes[..usize::from(data)].chunks_mut(8) {
                let word = rng.next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            // Kernel requests with random bytes still never name a kept descriptor.
            let first = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            bytes[..4].copy_from_slice(&sanitize_descriptor(first).to_le_bytes());
            arena.write(buffer, &bytes[..usize::from(data)]);
        }
        (data, total, count)
    }

    /// Writes `count` random slots (at most 8; the rest keep whatever the
    /// arena holds) after `data` bytes at `buffer`.
    fn write_slots(&mut self, buffer: u64, data: u16, count: u8, function: u64) {
        let arena = &self.cx.shared.arena;
        if !arena.contains(buffer, 1) {
            return;
        }
        let returns = function == echo::RETURN_DESCRIPTORS.bits();
        let first = buffer + u64::from(descriptor_offset(data));
        for index in 0..u64::from(count.min(8)) {
            let mut rights = if self.cx.rng.chance(90) {
                self.rights()
            } else {
                self.cx.rng.next() as u32
            };
            if returns && self.cx.rng.chance(90) {
                // Echo must be able to move them back.
                rights |= Rights::TRANSFER.0;
            }
            let slot = DescriptorSlot {
                descriptor: self.descriptor(),
                rights,
                mode: if self.cx.rng.chance(90) {
                    self.cx.rng.below(2) as u32
                } else {
                    self.cx.rng.next() as u32
                },
                reserved: if self.cx.rng.chance(95) { 0 } else { 1 },
            };
            self.cx
                .shared
                .arena
                .write(first + index * u64::from(SLOT_SIZE), slot.as_bytes());
        }
        // Slots beyond the eighth hold old arena bytes: keep the kept
        // descriptors out of them too.
        for index in 8..u64::from(count) {
            let at = first + index * u64::from(SLOT_SIZE);
            if let Some(descriptor) = arena.read_u32(at)
                && descriptor != sanitize_descriptor(descriptor)
            {
                arena.write(at, &sanitize_descriptor(descriptor).to_le_bytes());
            }
        }
    }

    /// Rights bits: mostly defined ones, sometimes reserved ones.
    fn rights(&mut self) -> u32 {
        if self.cx.rng.chance(95) {
            self.cx.rng.below(u64::from(Rights::ALL.0) + 1) as u32 & Rights::ALL.0
        } else {
            self.cx.rng.next() as u32
        }
    }
}

/// Whether `function` is called on the NULL target (ABI.md §6: all but the
/// event functions, PROCESS_SET_COOKIE, the capability functions and the
/// three trap operations).
fn takes_null(function: KernelFunction) -> bool {
    !matches!(
        function,
        KernelFunction::EventSignal
            | KernelFunction::EventWait
            | KernelFunction::ProcessSetCookie
            | KernelFunction::Receive
            | KernelFunction::Reply
            | KernelFunction::ReplyReceive
    ) && !CAPABILITY_FUNCTIONS.contains(&function)
}

/// For a trap of a capability function whose registers pass ABI.md §4.1
/// steps 1 and 2 (upper halves of arg0, arg1 and arg3 clear, the sizes
/// within the total), sent to anything but the capability it needs (which
/// random traps never name: only [`Worker::random_registers`] does, on
/// purpose): whether its target is NULL. The target checks come next (§6)
/// and must refuse it. `None` for any other trap.
fn capability_trap(args: TrapArgs) -> Option<bool> {
    let capability = operation(args.arg0).is_some_and(|f| CAPABILITY_FUNCTIONS.contains(&f));
    let well_formed = args.arg1 >> 32 == 0 && MessageSizes::from_bits(args.arg3).layout().is_ok();
    (capability && well_formed).then_some(args.arg1 == 0)
}

/// Keeps the kept descriptors out of the random traps (moved into the fodder).
pub fn sanitize_descriptor(descriptor: u32) -> u32 {
    if is_kept(descriptor) {
        descriptor - LAST_FODDER
    } else {
        descriptor
    }
}

/// [`sanitize_descriptor`] for a register whose low half is a descriptor
/// (with a non-zero upper half the kernel refuses it anyway).
fn sanitize_descriptor_register(register: u64) -> u64 {
    if register >> 32 == 0 {
        u64::from(sanitize_descriptor(register as u32))
    } else {
        register
    }
}

/// Whether `address` may lie in memory this program runs on: its image,
/// the region where userlib maps its heap and thread stacks, or its stack.
fn is_own_memory(address: u64) -> bool {
    const IMAGE_END: u64 = 0x1000_0000;
    const HEAP_REGION: u64 = 1 << 36;
    (USER_IMAGE_BASE..IMAGE_END).contains(&address)
        || (USER_MAP_BASE..USER_MAP_BASE + HEAP_REGION).contains(&address)
        || (USER_STACK_TOP - 4 * USER_STACK_SIZE..USER_END).contains(&address)
}

/// The manifest in a buffer, if it has one of `magic` at `offset`.
pub fn manifest_at(buffer: &Buffer, offset: usize, magic: u64) -> Option<Manifest> {
    buffer
        .get::<Manifest>(offset)
        .filter(|manifest| manifest.magic == magic)
}
