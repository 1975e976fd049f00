//! ipc-fuzz: makes many traps with random registers from a process that
//! holds no kernel capability and counts what each returned; the kernel must answer every one
//! with a result or an error, never a panic, a hang or damage to another
//! process. The protocol with `ipc-test` (arguments, initial descriptors,
//! report) is in `lib.rs`.
//!
//! The registers come from a xorshift64 PRNG seeded from the arguments,
//! biased so that most traps look almost right: function numbers of real
//! kernel functions, of echo's functions and of the four ranges' edges;
//! descriptors 0 to 8 (the fodder); buffers inside the fuzzer's *arena*
//! (pages it mapped for this at a fixed address, followed by unmapped
//! memory), with well-formed kernel requests and descriptor slots in them
//! more often than not; and for the rest null, kernel-half, non-canonical,
//! read-only and random addresses, wrong sizes and set reserved bits.
//!
//! What the random traps never do (each would legitimately end or park the
//! fuzzer, or wreck the memory it runs on):
//! - the kernel functions in [`SKIPPED`]: THREAD_CREATE (a thread at a
//!   random entry faults and ends the process), THREAD_EXIT and
//!   PROCESS_EXIT (end it), EVENT_WAIT (parks it on an event nobody
//!   signals), UNMAP and PROTECT (take away its code, stack or heap). They
//!   still appear with reserved bits set in `arg0`, which the kernel must
//!   refuse before looking at the number;
//! - DEBUG_WRITE with data (it always gets a data size of 0, so that random
//!   bytes do not flood the console);
//! - descriptors 9 and 10 (the echo reference kept for the final check and
//!   the lifeline door), and buffers in the memory the program itself runs
//!   on (its image, stack and heap): random addresses there are moved into
//!   the arena.
//!
//! Replies that bring in descriptors above the fodder range are closed at
//! once, so the table stays small; descriptors that land in the fodder
//! range become fodder. Every 512 traps the fuzzer looks at its fodder
//! again: left alone it drifts to events (door references get closed or
//! moved away, EVENT_CREATE and DUPLICATE fill the holes), so when fewer
//! than two door references are left it adds a DUPLICATE of descriptor 9.
//! These housekeeping calls are ordinary userlib calls, not counted as
//! random traps.
//!
//! The capability functions (DOOR_CREATE, SPAWN, MANAGER_REGISTER,
//! ARCHIVE_READ, DEBUG_EXIT) and PROCESS_SET_COOKIE take an object, not the
//! NULL target (ABI.md §6); the fuzzer sends them to the NULL target a third
//! of the time and to its descriptors otherwise. Holding no capability, it
//! must see each of the capability functions refused by the target checks,
//! which come before the request and buffer checks: a result other than
//! FUNCTION_OUT_OF_RANGE (NULL) or BAD_DESCRIPTOR / WRONG_OBJECT_TYPE (a
//! descriptor) for one with well-formed registers counts as a violation.
#![cfg_attr(target_os = "none", no_std, no_main)]

use abi::function::{Function, PROCESS_MANAGER_BASE, SYSTEM_BASE, USER_BASE};
use abi::kcall::{
    ArchiveReadReply, ArchiveReadRequest, CookieRequest, DescriptorRequest, DoorCreateRequest,
    ExitRequest, KernelCounters, MapReply, MapRequest, REPLY_PAYLOAD_OFFSET, SpawnRequest,
    protection,
};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset, message_extent};
use abi::process::{USER_END, USER_IMAGE_BASE, USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP};
use abi::{
    Descriptor, Error, KernelFunction, MessageSizes, ObjectKind, PAGE_BYTES, PAGE_SIZE, Rights,
    TrapArgs,
};
use ipc_fuzz::{
    COUNTED_ERRORS, ECHO, ECHO_ANSWERED, ECHO_KERNEL_ERROR, ECHO_WRONG_ANSWER, FuzzArguments,
    FuzzReport, INITIAL_DESCRIPTORS, LAST_FODDER, LIFELINE, PROGRAM, REPORT,
};
use userlib::raw::{self, Buffer, RawPages};
use userlib::{Message, Startup, kernel, println};
use zerocopy::{FromBytes, IntoBytes};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The kernel functions the random traps never call with a valid `arg0`
/// (see the crate documentation for why).
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
    KernelFunction::DoorCreate,
    KernelFunction::Spawn,
    KernelFunction::ProcessSetCookie,
    KernelFunction::ManagerRegister,
    KernelFunction::ArchiveRead,
];

/// The kernel functions sent to a kernel capability (ABI.md §6), which the
/// fuzzer does not hold.
const CAPABILITY_FUNCTIONS: &[KernelFunction] = &[
    KernelFunction::DoorCreate,
    KernelFunction::Spawn,
    KernelFunction::ManagerRegister,
    KernelFunction::ArchiveRead,
    KernelFunction::DebugExit,
];

/// Every this many traps the fuzzer looks at its fodder again (the random
/// traps close, move and replace it: left alone, it drifts to events).
const REFRESH_EVERY: u64 = 512;

/// Where the arena lies: far from everything else, followed by unmapped memory.
const ARENA_BASE: u64 = 0x0000_2000_0000_0000;
/// The arena's size: room for a whole 4095-byte buffer at many offsets.
const ARENA_PAGES: u64 = 4;
/// The arena's size in bytes.
const ARENA_SIZE: u64 = ARENA_PAGES * PAGE_BYTES;
/// Where MAP_ANONYMOUS requests with an address aim.
const MAP_PLAYGROUND: u64 = 0x0000_3000_0000_0000;

/// Never written by this program; the kernel must refuse it as a buffer.
static READ_ONLY: [u8; PAGE_SIZE] = [0x5a; PAGE_SIZE];

fn run(startup: Startup) -> i32 {
    let Some(arguments) = FuzzArguments::read_from_bytes(startup.arguments).ok() else {
        println!(
            "{PROGRAM}: bad arguments ({} bytes)",
            startup.arguments.len()
        );
        return 2;
    };
    if startup.descriptors != INITIAL_DESCRIPTORS {
        println!(
            "{PROGRAM}: started with {} descriptors, expected {INITIAL_DESCRIPTORS}",
            startup.descriptors
        );
        return 2;
    }
    let arena = match Arena::map() {
        Ok(arena) => arena,
        Err(error) => {
            println!("{PROGRAM}: cannot map the arena: {error}");
            return 2;
        }
    };
    let mut fuzzer = Fuzzer {
        rng: Rng::new(arguments.seed),
        arena,
        report: FuzzReport::default(),
        doors: [0; LAST_FODDER as usize],
        door_count: 0,
    };
    for call in 0..arguments.calls {
        if call % REFRESH_EVERY == 0 {
            fuzzer.refresh_fodder();
        }
        fuzzer.one_trap();
    }
    fuzzer.report.echo_check = check_echo();
    answer_the_lifeline(&fuzzer.report)
}

/// The final ordinary call: ECHO through the kept reference.
fn check_echo() -> u64 {
    const TEXT: &[u8] = b"ipc-fuzz: still talking to echo";
    let mut message = Message::new();
    if message.push_data(TEXT).is_err() {
        return ECHO_WRONG_ANSWER;
    }
    match userlib::call(ECHO, echo::ECHO, &mut message) {
        Ok(reply) if reply.ret_val as usize == TEXT.len() && message.payload() == TEXT => {
            ECHO_ANSWERED
        }
        Ok(reply) => ECHO_WRONG_ANSWER | u64::from(reply.ret_val),
        Err(error) => ECHO_KERNEL_ERROR | u64::from(error.errno()),
    }
}

/// Waits for `ipc-test`'s REPORT call on the lifeline and answers it.
fn answer_the_lifeline(report: &FuzzReport) -> i32 {
    let mut buffer = Buffer::new();
    let received = buffer.receive(LIFELINE, MAX_TOTAL_SIZE);
    if received.arg0 != REPORT.bits() {
        println!(
            "{PROGRAM}: the lifeline brought {:#x}/{:#x}, not REPORT",
            received.arg0, received.arg1
        );
        return 1;
    }
    buffer.put_value(0, &[0u32, 0u32]);
    buffer.put_value(REPLY_PAYLOAD_OFFSET, report);
    let size = (REPLY_PAYLOAD_OFFSET + size_of::<FuzzReport>()) as u16;
    let replied = buffer.reply(received.arg1, abi::message::sizes(size, size, 0));
    if replied != TrapArgs::default() {
        println!("{PROGRAM}: the report's REPLY returned {:#x?}", replied);
        return 1;
    }
    0
}

/// xorshift64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..bound` (bound > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The pages the random buffers mostly point into: userlib's [`RawPages`]
/// at a fixed address, written only through copies, and by the kernel's
/// replies.
struct Arena {
    pages: RawPages,
    base: u64,
}

impl Arena {
    fn map() -> Result<Self, Error> {
        let pages = RawPages::map_at(ARENA_BASE, ARENA_PAGES)?;
        Ok(Arena {
            base: pages.base(),
            pages,
        })
    }

    fn end(&self) -> u64 {
        self.pages.end()
    }

    fn contains(&self, address: u64, length: u64) -> bool {
        self.pages.contains(address, length)
    }

    /// Writes the part of `bytes` at `address` that lies in the arena.
    fn write(&self, address: u64, bytes: &[u8]) {
        self.pages.write_clipped(address, bytes);
    }

    /// Reads the `u32` at `address`, if it lies in the arena.
    fn read_u32(&self, address: u64) -> Option<u32> {
        let mut bytes = [0u8; 4];
        self.pages
            .read(address, &mut bytes)
            .then(|| u32::from_le_bytes(bytes))
    }
}

/// The fuzzer's state.
struct Fuzzer {
    rng: Rng,
    arena: Arena,
    report: FuzzReport,
    /// The fodder descriptors that are door references with SEND.
    doors: [u32; LAST_FODDER as usize],
    door_count: usize,
}

impl Fuzzer {
    /// Finds the fodder's door references again and, if fewer than two are
    /// left, adds a client reference to echo (a DUPLICATE of the kept
    /// one), closing a non-door to make room. Not counted as random traps.
    fn refresh_fodder(&mut self) {
        self.door_count = 0;
        let mut others = 0;
        let mut free = 0;
        for descriptor in 1..=LAST_FODDER {
            match kernel::descriptor_info(Descriptor(descriptor)) {
                Ok(info)
                    if matches!(
                        info.kind,
                        Some(ObjectKind::UserDoor | ObjectKind::SystemDoor)
                    ) && info.rights.contains(Rights::SEND) =>
                {
                    self.doors[self.door_count] = descriptor;
                    self.door_count += 1;
                }
                Ok(_) => others = descriptor,
                Err(_) => free += 1,
            }
        }
        if self.door_count >= 2 {
            return;
        }
        if free == 0 && others != 0 {
            let _ = kernel::close(Descriptor(others));
        }
        if let Ok(copy) = kernel::duplicate(ECHO, Rights::DOOR_CLIENT) {
            let descriptor = copy.descriptor().0;
            if descriptor <= LAST_FODDER {
                self.doors[self.door_count] = copy.into_raw().0;
                self.door_count += 1;
            }
        }
    }

    /// Makes one random trap and records its result.
    fn one_trap(&mut self) {
        let args = self.random_trap();
        // `random_trap` only lets `arg2` name the arena, READ_ONLY (which
        // the kernel must refuse to write), or addresses outside this
        // program's image, stack and heap (null, low, kernel-half,
        // non-canonical, or random ones moved away from them); userlib
        // checks it again, and a trap it refuses is not counted.
        let Ok(result) = raw::trap_at(args, Some(&self.arena.pages)) else {
            return;
        };
        self.report.calls += 1;
        self.record(args, result);
    }

    fn record(&mut self, args: TrapArgs, result: TrapArgs) {
        let sizes = MessageSizes::from_bits(result.arg3);
        let kernel_error = result.arg0 == 0xffff_ffff && sizes.data_size() == 0;
        let operation = (args.arg0 >> 32 == 0)
            .then(|| Function(args.arg0 as u32 as i32).kernel_function())
            .flatten();
        let receives = matches!(
            operation,
            Some(KernelFunction::Receive | KernelFunction::ReplyReceive)
        );
        let trap_operation = receives || operation == Some(KernelFunction::Reply);
        let upper_clear = result.arg0 >> 32 == 0 && result.arg3 >> 32 == 0;
        let capability_refused = capability_trap(args).map(|null| {
            self.report.capability_traps += 1;
            let expected: &[Error] = if null {
                &[Error::FunctionOutOfRange]
            } else {
                &[Error::BadDescriptor, Error::WrongObjectType]
            };
            kernel_error
                && expected
                    .iter()
                    .any(|error| result == TrapArgs::error(*error))
        });
        if capability_refused == Some(false) {
            self.report.capability_violations += 1;
        }
        let conforms = if kernel_error {
            let number = result.arg1;
            self.report.errors[(number as usize).min(COUNTED_ERRORS - 1)] += 1;
            let arg2_ok =
                result.arg2 == 0 || (receives && result.arg2 == abi::trap::REPLY_DELIVERED);
            let arg3_ok =
                result.arg3 == 0 || (receives && number == Error::ReceiveBufferTooSmall as u64);
            upper_clear && arg2_ok && arg3_ok && Error::from_number(number as u32).is_some()
        } else {
            self.report.completed += 1;
            // The fuzzer owns no door and never holds a message, so RECEIVE,
            // REPLY and REPLY_RECEIVE can only fail; a completed SEND
            // returns arg2 = 0 and a total size of 0.
            self.close_arrivals(args, result);
            !trap_operation && upper_clear && result.arg2 == 0 && sizes.total_size() == 0
        };
        if !conforms || capability_refused == Some(false) {
            if self.report.violations == 0 {
                self.report.first_violation_entry = [args.arg0, args.arg1, args.arg2, args.arg3];
                self.report.first_violation_result =
                    [result.arg0, result.arg1, result.arg2, result.arg3];
            }
            self.report.violations += 1;
        }
    }

    /// Closes the descriptors a completed SEND brought in above the fodder
    /// range (the reply's slots lie in the arena, where the kernel wrote them).
    fn close_arrivals(&mut self, args: TrapArgs, result: TrapArgs) {
        let sizes = MessageSizes::from_bits(result.arg3);
        let count = sizes.descriptor_count();
        if count == 0 {
            return;
        }
        let slots = args.arg2 + u64::from(descriptor_offset(sizes.data_size()));
        for index in 0..u64::from(count) {
            let Some(descriptor) = self.arena.read_u32(slots + index * u64::from(SLOT_SIZE)) else {
                continue;
            };
            if descriptor > LIFELINE.0 && kernel::close(Descriptor(descriptor)).is_ok() {
                self.report.closed_arrivals += 1;
            }
        }
    }

    /// One set of entry registers, with the message it names written into
    /// the arena when the buffer lies there.
    fn random_trap(&mut self) -> TrapArgs {
        if self.rng.chance(4) {
            return TrapArgs {
                arg0: self.function_bits(),
                arg1: self.rng.next(),
                arg2: self.buffer(),
                arg3: self.rng.next(),
            };
        }
        let arg0 = self.function_bits();
        let operation = (arg0 >> 32 == 0)
            .then(|| Function(arg0 as u32 as i32).kernel_function())
            .flatten();
        let arg1 = match operation {
            Some(KernelFunction::Reply | KernelFunction::ReplyReceive) => self.rng.next(),
            _ if self.rng.chance(2) => u64::from(self.descriptor()) | (self.rng.next() << 32),
            // Most kernel functions take the NULL target.
            Some(f) if takes_null(f) && self.rng.chance(85) => 0,
            // The others take an object; the NULL target is refused.
            Some(f) if !takes_null(f) && self.rng.chance(33) => 0,
            // Door calls mostly go to the references that can SEND (or
            // to the dead door).
            None if arg0 >> 32 == 0
                && (arg0 as u32) >= USER_BASE as u32
                && self.door_count > 0
                && self.rng.chance(60) =>
            {
                u64::from(self.rng.pick(&self.doors[..self.door_count]))
            }
            _ => u64::from(self.descriptor()),
        };
        let arg2 = self.buffer();
        let plausible = operation.filter(|f| CALLED.contains(f) && self.rng.chance(70));
        let (data, total, count) = match plausible {
            Some(function) => self.kernel_request(function, arg2),
            None => self.random_message(arg2),
        };
        let (data, count) = match operation {
            Some(KernelFunction::DebugWrite) => (0, count),
            // RECEIVE takes a total size only; mostly give it just that.
            Some(KernelFunction::Receive) if self.rng.chance(60) => (0, 0),
            _ => (data, count),
        };
        let mut arg3 = abi::message::sizes(total, data, count);
        if self.rng.chance(2) {
            arg3 |= self.rng.next() << 32;
        }
        self.write_slots(arg2, data, count, arg0);
        TrapArgs {
            arg0,
            arg1: sanitize_descriptor_register(arg1),
            arg2,
            arg3,
        }
    }

    /// A function number (`arg0`), never a [`SKIPPED`] one with a clear upper half.
    fn function_bits(&mut self) -> u64 {
        loop {
            let number: i64 = match self.rng.below(100) {
                0..45 => i64::from(self.rng.pick(CALLED) as i32),
                45..55 => i64::from(
                    self.rng
                        .pick(&[
                            abi::function::RECEIVE,
                            abi::function::REPLY,
                            abi::function::REPLY_RECEIVE,
                        ])
                        .0,
                ),
                55..75 => i64::from(USER_BASE) + self.rng.below(8) as i64,
                75..80 => i64::from(USER_BASE) + self.rng.below(0x7fff_8000) as i64,
                80..84 => i64::from(SYSTEM_BASE) + self.rng.below(0x7000) as i64,
                84..88 => i64::from(PROCESS_MANAGER_BASE) + self.rng.below(0xc00) as i64,
                88..92 => self.rng.below(0x400) as i64,
                92..96 => i64::from(self.rng.pick(&[-1, i32::MIN, -2, -0x8000])),
                _ => return self.rng.next(),
            };
            let mut bits = u64::from(number as i32 as u32);
            if self.rng.chance(2) {
                bits |= self.rng.next() << 32;
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

    /// A descriptor number: mostly 0 to 8, never 9 or 10.
    fn descriptor(&mut self) -> u32 {
        let descriptor = match self.rng.below(100) {
            0..80 => self.rng.below(u64::from(LAST_FODDER) + 1) as u32,
            80..90 => LIFELINE.0 + 1 + self.rng.below(30) as u32,
            90..95 => self.rng.pick(&[1024, 1025, u32::MAX, 0x8000_0000]),
            _ => self.rng.next() as u32,
        };
        sanitize_descriptor(descriptor)
    }

    /// A buffer address (`arg2`).
    fn buffer(&mut self) -> u64 {
        let arena = &self.arena;
        match self.rng.below(100) {
            0..70 => arena.base + self.rng.below(ARENA_SIZE - PAGE_BYTES),
            70..78 => arena.end() - 1 - self.rng.below(PAGE_BYTES),
            78..82 => 0,
            82..85 => self.rng.below(USER_IMAGE_BASE),
            85..88 => 0xffff_8000_0000_0000 | self.rng.next(),
            88..91 => 0x0000_8000_0000_0000 + self.rng.below(1 << 40),
            91..95 => READ_ONLY.as_ptr().expose_provenance() as u64 + self.rng.below(2048),
            _ => match self.rng.next() {
                address if is_own_memory(address) => {
                    arena.base + (address % (ARENA_SIZE - PAGE_BYTES))
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
        let (length, reply) = match function {
            KernelFunction::Close | KernelFunction::DescriptorInfo | KernelFunction::Duplicate => {
                let rights = if function == KernelFunction::Duplicate || self.rng.chance(5) {
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
                let address = match self.rng.below(10) {
                    0..6 => 0,
                    6..9 => MAP_PLAYGROUND + self.rng.below(64) * PAGE_BYTES,
                    _ => self.rng.next(),
                };
                let length = if self.rng.chance(85) {
                    (1 + self.rng.below(4)) * PAGE_BYTES
                } else {
                    self.rng.next() >> self.rng.below(64)
                };
                let r = MapRequest::new(
                    address,
                    length,
                    if self.rng.chance(90) {
                        self.rng.below(u64::from(protection::ALL) + 1) as u32
                    } else {
                        self.rng.next() as u32
                    },
                )
                .with_reserved(if self.rng.chance(95) { 0 } else { 1 });
                request[..24].copy_from_slice(r.as_bytes());
                (24, 8 + size_of::<MapReply>())
            }
            KernelFunction::DebugExit => {
                let r = ExitRequest::new(self.rng.next() as u32)
                    .with_reserved(if self.rng.chance(90) { 0 } else { 1 });
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8)
            }
            KernelFunction::DoorCreate => {
                let r = DoorCreateRequest::with_kind_number(
                    self.rng.below(3) as u32,
                    self.rng.next() as u32,
                );
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8 + 32)
            }
            KernelFunction::Spawn => {
                let names: [&[u8]; 4] = [b"ipc-fuzz", b"echo", b"nope", b""];
                let name = self.rng.pick(&names);
                let arguments = self.rng.below(16) as usize;
                let r = SpawnRequest::with_lengths(name.len() as u32, arguments as u32);
                request[..8].copy_from_slice(r.as_bytes());
                request[8..8 + name.len()].copy_from_slice(name);
                slots = self.rng.below(3) as u8;
                (8 + name.len() + arguments, 8 + 16)
            }
            KernelFunction::ProcessSetCookie => {
                let r = CookieRequest::new(self.rng.next());
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8)
            }
            KernelFunction::ManagerRegister => {
                let r = DescriptorRequest::new(
                    abi::Descriptor(self.descriptor()),
                    abi::Rights(if self.rng.chance(95) {
                        0
                    } else {
                        self.rights()
                    }),
                );
                request[..8].copy_from_slice(r.as_bytes());
                (8, 8)
            }
            KernelFunction::ArchiveRead => {
                let names: [&[u8]; 4] = [b"ipc-fuzz", b"echo", b"nope", b""];
                let name = self.rng.pick(&names);
                let r = ArchiveReadRequest::with_name_length(
                    name.len() as u32,
                    if self.rng.chance(80) {
                        self.rng.below(1 << 16)
                    } else {
                        self.rng.next()
                    },
                )
                .with_reserved(if self.rng.chance(95) { 0 } else { 1 });
                request[..16].copy_from_slice(r.as_bytes());
                request[16..16 + name.len()].copy_from_slice(name);
                (16 + name.len(), 8 + size_of::<ArchiveReadReply>() + 64)
            }
            KernelFunction::Counters => (0, 8 + size_of::<KernelCounters>()),
            _ => (0, 8),
        };
        let length = length.min(request.len());
        self.arena.write(buffer, &request[..length]);
        let needed = usize::from(message_extent(length as u16, slots)).max(reply);
        let total = if self.rng.chance(90) {
            needed + self.rng.below(64) as usize
        } else {
            self.rng.below(needed as u64 + 1) as usize
        };
        (
            length as u16,
            total.min(usize::from(MAX_TOTAL_SIZE)) as u16,
            slots,
        )
    }

    /// Random sizes and random data at `buffer`.
    fn random_message(&mut self, buffer: u64) -> (u16, u16, u8) {
        let total = match self.rng.below(100) {
            0..10 => 0,
            10..70 => self.rng.below(513),
            70..90 => 512 + self.rng.below(u64::from(MAX_TOTAL_SIZE) - 511),
            _ => u64::from(MAX_TOTAL_SIZE),
        } as u16;
        let data = if self.rng.chance(85) {
            self.rng.below(u64::from(total) + 1) as u16
        } else {
            self.rng.below(u64::from(MAX_TOTAL_SIZE) + 1) as u16
        };
        let count = match self.rng.below(100) {
            0..70 => 0,
            70..90 => 1 + self.rng.below(2),
            90..97 => 3 + self.rng.below(2),
            _ => self.rng.below(256),
        } as u8;
        if self.arena.contains(buffer, 1) {
            let mut bytes = [0u8; MAX_TOTAL_SIZE as usize];
            for chunk in bytes[..usize::from(data)].chunks_mut(8) {
                let word = self.rng.next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            // Kernel requests with random bytes still never name 9 or 10.
            let first = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            bytes[..4].copy_from_slice(&sanitize_descriptor(first).to_le_bytes());
            self.arena.write(buffer, &bytes[..usize::from(data)]);
        }
        (data, total, count)
    }

    /// Writes `count` random slots (at most 8; the rest keep whatever the
    /// arena holds) after `data` bytes at `buffer`.
    fn write_slots(&mut self, buffer: u64, data: u16, count: u8, function: u64) {
        if !self.arena.contains(buffer, 1) {
            return;
        }
        let returns = function == echo::RETURN_DESCRIPTORS.bits();
        let first = buffer + u64::from(descriptor_offset(data));
        for index in 0..u64::from(count.min(8)) {
            let mut rights = if self.rng.chance(90) {
                self.rights()
            } else {
                self.rng.next() as u32
            };
            if returns && self.rng.chance(90) {
                // Echo must be able to move them back.
                rights |= Rights::TRANSFER.0;
            }
            let slot = DescriptorSlot {
                descriptor: self.descriptor(),
                rights,
                mode: if self.rng.chance(90) {
                    self.rng.below(2) as u32
                } else {
                    self.rng.next() as u32
                },
                reserved: if self.rng.chance(95) { 0 } else { 1 },
            };
            self.arena
                .write(first + index * u64::from(SLOT_SIZE), slot.as_bytes());
        }
        // Slots beyond the eighth hold old arena bytes: keep 9 and 10 out of them too.
        for index in 8..u64::from(count) {
            let at = first + index * u64::from(SLOT_SIZE);
            if let Some(descriptor) = self.arena.read_u32(at)
                && descriptor != sanitize_descriptor(descriptor)
            {
                self.arena
                    .write(at, &sanitize_descriptor(descriptor).to_le_bytes());
            }
        }
    }

    /// Rights bits: mostly defined ones, sometimes reserved ones.
    fn rights(&mut self) -> u32 {
        if self.rng.chance(95) {
            self.rng.below(u64::from(Rights::ALL.0) + 1) as u32 & Rights::ALL.0
        } else {
            self.rng.next() as u32
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
/// within the total): whether its target is NULL. The target checks come
/// next (§6), so the fuzzer, which holds no capability, must be refused by
/// them. `None` for any other trap.
fn capability_trap(args: TrapArgs) -> Option<bool> {
    let capability = args.arg0 >> 32 == 0
        && Function(args.arg0 as u32 as i32)
            .kernel_function()
            .is_some_and(|function| CAPABILITY_FUNCTIONS.contains(&function));
    let well_formed = args.arg1 >> 32 == 0 && MessageSizes::from_bits(args.arg3).layout().is_ok();
    (capability && well_formed).then_some(args.arg1 == 0)
}

/// Keeps descriptors 9 and 10 (the kept echo reference and the lifeline)
/// out of the random traps.
fn sanitize_descriptor(descriptor: u32) -> u32 {
    if descriptor == ECHO.0 || descriptor == LIFELINE.0 {
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
