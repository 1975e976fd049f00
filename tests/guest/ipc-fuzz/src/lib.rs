//! The protocol of `ipc-fuzz` (the program is `src/main.rs`): how
//! `ipc-test` starts it, which descriptors it starts with, what it reports,
//! and the few rules its two processes share (the cookie family, the
//! manifest of a tracked call).
//!
//! `ipc-test` SPAWNs two fuzzer processes with a [`FuzzArguments`] each:
//! the *primary* ([`Role::Primary`]), which makes the random traps asked
//! for, and the *partner* ([`Role::Partner`]), which races it until told
//! to stop. Each starts with the descriptors of [`LAYOUT`] (the primary,
//! with [`FLAG_CAPABILITIES`], also with SEND-only copies of the
//! process-control and boot-archive capabilities):
//! - 1 to [`LAST_FODDER`] are *fodder*, the references the random traps
//!   aim at: client references to an echo door with various rights,
//!   references to an event, echo's process handle, a dead door, client
//!   references to the door each fuzzer serves ([`SERVE`]), the owner of a
//!   door nobody serves and a client of the other process's such door;
//! - the rest are *kept* out of the random traps' reach: a client of echo
//!   for the final check ([`ECHO`]), the owner of the lifeline door
//!   ([`LIFELINE`]), the owner of the door its server threads serve
//!   ([`SERVE`]) and clients of both served doors ([`OWN_SERVED`],
//!   [`OTHER_SERVED`]), a door its ending threads are reaped through
//!   ([`REAPER_OWNER`], [`REAPER_CLIENT`]), three events shared by both
//!   processes ([`ALARM`], [`STOP`], [`BELL`]) and the capabilities.
//!
//! After its traps each fuzzer calls echo through [`ECHO`], then RECEIVEs
//! on its lifeline: `ipc-test`'s call of [`REPORT`] (made right after the
//! SPAWNs and queued until then) gets a [`FuzzReport`]. The fuzzer then
//! exits, which kills the lifeline door, so a second call on it returns
//! PEER_DIED once the fuzzer is gone. The primary signals [`STOP`] when its
//! traps are done (and `ipc-test` does after its report, in case the
//! primary died): the partner's traps end then.
//!
//! Without capabilities, every capability function a fuzzer sends with
//! well-formed registers (DOOR_CREATE, SPAWN, MANAGER_REGISTER,
//! ARCHIVE_READ, DEBUG_EXIT) to anything but a capability it holds must be
//! refused by the target checks: FUNCTION_OUT_OF_RANGE for the NULL
//! target, BAD_DESCRIPTOR or WRONG_OBJECT_TYPE for a descriptor
//! ([`FuzzReport::capability_traps`]). The capabilities the primary holds
//! lack TRANSFER and DUPLICATE, so they never leave it.
#![no_std]

use abi::function::{Function, USER_BASE};
use abi::{Descriptor, ObjectKind, Rights};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The program's name in the boot archive.
pub const PROGRAM: &str = "ipc-fuzz";

/// [`FuzzArguments::magic`]: arguments without it (a random SPAWN of the
/// fuzzer by the fuzzer) make the program exit at once, silently.
pub const MAGIC: u64 = 0x7a7a_7566_2d63_7069;

/// What a fuzzer process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Role {
    /// Makes [`FuzzArguments::traps`] random traps (or stops at
    /// [`FuzzArguments::ticks`]), then signals [`STOP`].
    Primary = 1,
    /// Makes random traps until [`STOP`] is signalled.
    Partner = 2,
}

impl Role {
    /// The role with this number.
    pub const fn from_number(number: u32) -> Option<Role> {
        match number {
            1 => Some(Role::Primary),
            2 => Some(Role::Partner),
            _ => None,
        }
    }

    /// How reports name it.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Partner => "partner",
        }
    }
}

/// [`FuzzArguments::flags`]: the process starts with SEND-only copies of
/// the process-control and boot-archive capabilities ([`PROCESS_CONTROL`],
/// [`BOOT_ARCHIVE`]), so DOOR_CREATE, SPAWN and ARCHIVE_READ run their
/// bodies.
pub const FLAG_CAPABILITIES: u32 = 1;

/// The argument bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FuzzArguments {
    /// [`MAGIC`].
    pub magic: u64,
    /// The PRNG seed (0 is replaced by a fixed non-zero value). Both
    /// processes get the same one: it also keys the cookie family.
    pub seed: u64,
    /// The random traps to make (the primary; the partner's is ignored).
    pub traps: u64,
    /// Stop after this many CLOCK ticks even if the traps are not all made
    /// (0: no limit).
    pub ticks: u64,
    /// A [`Role`] number.
    pub role: u32,
    /// [`FLAG_CAPABILITIES`] or 0.
    pub flags: u32,
}

impl FuzzArguments {
    /// The role, if the magic and the role are valid.
    pub fn role(&self) -> Option<Role> {
        if self.magic != MAGIC {
            return None;
        }
        Role::from_number(self.role)
    }

    /// Whether the process holds the two capabilities.
    pub fn capabilities(&self) -> bool {
        self.flags & FLAG_CAPABILITIES != 0
    }

    /// How many descriptors it starts with.
    pub fn initial_descriptors(&self) -> u32 {
        if self.capabilities() {
            LAYOUT.len() as u32
        } else {
            LAST_KEPT_COMMON
        }
    }
}

/// The last fodder descriptor: the random traps use descriptors 0 to 12.
pub const LAST_FODDER: u32 = 12;
/// A client reference to the echo door, never touched by the random traps.
pub const ECHO: Descriptor = Descriptor(13);
/// The owner reference of the lifeline door.
pub const LIFELINE: Descriptor = Descriptor(14);
/// The owner reference of the door this process's server threads serve
/// (descriptor 9 of this process and 10 of the other are clients of it).
pub const SERVE: Descriptor = Descriptor(15);
/// A client of that door, kept: tracked calls and some random calls go
/// through it, and the fodder gets copies of it when its doors run low.
pub const OWN_SERVED: Descriptor = Descriptor(16);
/// A client of the door the other process serves, kept likewise.
pub const OTHER_SERVED: Descriptor = Descriptor(17);
/// The owner reference of the reaper door: a thread that ends receives a
/// call on it and exits holding it, so the caller (the coordinator) learns
/// that the thread, and the use of its stack, are over (PEER_DIED).
pub const REAPER_OWNER: Descriptor = Descriptor(18);
/// A client reference to the reaper door.
pub const REAPER_CLIENT: Descriptor = Descriptor(19);
/// An event both processes hold: the only one their threads wait on
/// (EVENT_WAIT), and signal; the coordinators signal it at the end.
pub const ALARM: Descriptor = Descriptor(20);
/// An event both processes hold: signalled when the primary's traps are done.
pub const STOP: Descriptor = Descriptor(21);
/// An event both processes hold: the coordinators wait on it, and every
/// racing thread of either process signals it now and then (and an idle
/// thread does when nothing else runs), so a coordinator wakes to find a
/// stall of its process even while the other keeps the processor busy.
pub const BELL: Descriptor = Descriptor(22);
/// The last descriptor both roles start with.
pub const LAST_KEPT_COMMON: u32 = 22;
/// A copy of the process-control capability with SEND only (with
/// [`FLAG_CAPABILITIES`]).
pub const PROCESS_CONTROL: Descriptor = Descriptor(23);
/// A copy of the boot-archive capability with SEND only.
pub const BOOT_ARCHIVE: Descriptor = Descriptor(24);

/// Whether the random traps must leave `descriptor` alone.
pub const fn is_kept(descriptor: u32) -> bool {
    descriptor > LAST_FODDER && descriptor <= BOOT_ARCHIVE.0
}

/// What an initial descriptor is: its kind and rights. Descriptor `n` is
/// `LAYOUT[n - 1]` (SPAWN installs the slots as 1..=n in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initial {
    /// The kind of object.
    pub kind: ObjectKind,
    /// The rights the reference is given.
    pub rights: Rights,
    /// Which object (see [`Source`]).
    pub source: Source,
}

/// Which object an initial descriptor names (for `ipc-test`, which builds them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The echo server's door.
    Echo,
    /// The event both fuzzers share as fodder.
    Event,
    /// The echo server's process handle.
    EchoProcess,
    /// A door whose owner reference is closed.
    DeadDoor,
    /// The door this process serves ([`SERVE`]).
    OwnServed,
    /// The door the other process serves.
    OtherServed,
    /// A door of this process's fodder: nobody serves it.
    OwnFodderDoor,
    /// The other process's fodder door.
    OtherFodderDoor,
    /// The lifeline door.
    Lifeline,
    /// This process's reaper door.
    Reaper,
    /// The shared [`ALARM`] event.
    Alarm,
    /// The shared [`STOP`] event.
    Stop,
    /// The shared [`BELL`] event.
    Bell,
    /// The process-control capability.
    ProcessControl,
    /// The boot-archive capability.
    BootArchive,
}

const fn initial(kind: ObjectKind, rights: Rights, source: Source) -> Initial {
    Initial {
        kind,
        rights,
        source,
    }
}

const DOOR: ObjectKind = ObjectKind::UserDoor;
const EVENT: ObjectKind = ObjectKind::Event;

/// Every initial descriptor, in order (descriptor 1 first).
pub const LAYOUT: [Initial; 24] = [
    initial(DOOR, Rights::DOOR_CLIENT, Source::Echo),
    initial(DOOR, Rights::SEND, Source::Echo),
    initial(
        DOOR,
        Rights(Rights::TRANSFER.0 | Rights::DUPLICATE.0),
        Source::Echo,
    ),
    initial(EVENT, Rights::EVENT, Source::Event),
    initial(
        EVENT,
        Rights(Rights::SIGNAL.0 | Rights::TRANSFER.0),
        Source::Event,
    ),
    initial(
        EVENT,
        Rights(Rights::WAIT.0 | Rights::DUPLICATE.0),
        Source::Event,
    ),
    initial(ObjectKind::Process, Rights::HANDLE, Source::EchoProcess),
    initial(DOOR, Rights::DOOR_CLIENT, Source::DeadDoor),
    initial(DOOR, Rights::DOOR_CLIENT, Source::OwnServed),
    initial(DOOR, Rights::DOOR_CLIENT, Source::OtherServed),
    initial(DOOR, Rights::DOOR_OWNER, Source::OwnFodderDoor),
    initial(DOOR, Rights::DOOR_CLIENT, Source::OtherFodderDoor),
    // Kept.
    initial(DOOR, Rights::DOOR_CLIENT, Source::Echo),
    initial(DOOR, Rights::DOOR_OWNER, Source::Lifeline),
    initial(DOOR, Rights::DOOR_OWNER, Source::OwnServed),
    initial(DOOR, Rights::DOOR_CLIENT, Source::OwnServed),
    initial(DOOR, Rights::DOOR_CLIENT, Source::OtherServed),
    initial(DOOR, Rights::DOOR_OWNER, Source::Reaper),
    initial(DOOR, Rights::DOOR_CLIENT, Source::Reaper),
    initial(EVENT, Rights::EVENT, Source::Alarm),
    initial(EVENT, Rights::EVENT, Source::Stop),
    initial(EVENT, Rights::EVENT, Source::Bell),
    initial(
        ObjectKind::ProcessControl,
        Rights::SEND,
        Source::ProcessControl,
    ),
    initial(ObjectKind::BootArchive, Rights::SEND, Source::BootArchive),
];

/// `ipc-test`'s call on the lifeline door: the reply payload is a [`FuzzReport`].
pub const REPORT: Function = Function(USER_BASE + 0x100);

/// A *tracked call*: a call to a served door whose data starts with a
/// [`Manifest`] ([`REQUEST_MAGIC`]) naming the rights asked for in each
/// slot; a fuzzer server checks that each arrived with exactly those. Its
/// reply (payload after msgRetVal and msgErrno) carries a manifest
/// ([`REPLY_MAGIC`]) of its own slots and the request's nonce, which the
/// caller checks: the reply is its own call's, and its slots arrived with
/// the rights asked for.
pub const TRACKED: Function = Function(USER_BASE + 0x200);

/// [`Manifest::magic`] of a request. Requests and replies differ, so a
/// request manifest that a random trap copies back as a reply is never
/// taken for one (the servers write reply manifests only into buffers of
/// their own, never into the shared arena).
pub const REQUEST_MAGIC: u64 = 0x7473_6575_7165_726d;
/// [`Manifest::magic`] of a reply.
pub const REPLY_MAGIC: u64 = 0x796c_7065_7274_6d6d;
/// The most slots a manifest names.
pub const MANIFEST_SLOTS: usize = 4;

/// The rights a tracked message's sender asked for in each slot.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Manifest {
    /// [`REQUEST_MAGIC`] or [`REPLY_MAGIC`].
    pub magic: u64,
    /// Slots named (at most [`MANIFEST_SLOTS`]): the message's descriptor count.
    pub count: u32,
    /// Zero.
    pub reserved: u32,
    /// The call's number, unique in the run: a reply carries its request's.
    pub nonce: u64,
    /// The rights asked for in slot `i`.
    pub rights: [u32; MANIFEST_SLOTS],
}

/// The cookie a fuzzer server's REPLY stores for value `x` (ABI.md §5):
/// `x` in the upper half, a check word keyed by `key` in the lower, so that
/// a server can tell whether a cookie it receives is one some fuzzer
/// server set (or 0, a new reference's).
pub const fn family_cookie(key: u32, x: u32) -> u64 {
    ((x as u64) << 32) | check_word(key, x) as u64
}

/// Whether `cookie` is 0 or one [`family_cookie`] makes with `key`.
pub const fn is_family_cookie(key: u32, cookie: u64) -> bool {
    cookie == 0 || cookie as u32 == check_word(key, (cookie >> 32) as u32)
}

const fn check_word(key: u32, x: u32) -> u32 {
    let mut h = (x as u64 ^ ((key as u64) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    // Never 0, so a cookie with x = 0 is not the new reference's 0.
    (h as u32) | 1
}

/// The cookie key of a seed (both processes derive the same one).
pub const fn cookie_key(seed: u64) -> u32 {
    let h = seed.wrapping_mul(0xd6e8_feb8_6659_fd93);
    (h ^ (h >> 32)) as u32
}

/// Error numbers counted one by one; larger (unknown) numbers are counted
/// in the last entry of [`FuzzReport::errors`].
pub const COUNTED_ERRORS: usize = 32;

/// What the semantic oracle found wrong, by kind ([`FuzzReport::violations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Violation {
    /// A result broke the ABI's return conventions (ABI.md §3).
    Convention = 0,
    /// A capability function was not refused by its target (ABI.md §6).
    Capability = 1,
    /// DESCRIPTOR_INFO showed rights no reference of that kind can hold, a
    /// capability the process was never given, or a kept or initial
    /// descriptor with rights other than it was given.
    Rights = 2,
    /// A DUPLICATE gave a copy with rights other than asked, of another
    /// kind, or from a reference without those rights (ABI.md §1.5).
    Duplicate = 3,
    /// A delivered slot granted rights other than its sender asked for, or
    /// the installed reference holds other rights than its slot says.
    Transfer = 4,
    /// A server received a cookie no fuzzer server set (ABI.md §5).
    Cookie = 5,
    /// A trap returned twice.
    DoubleReturn = 6,
    /// A tracked call got the reply of another call.
    WrongReply = 7,
    /// A call did not end although everything it could wait for was gone.
    NeverEnded = 8,
    /// The fuzzer could not do what it needs to check anything (a thread,
    /// its memory, a kept descriptor refused).
    Setup = 9,
}

/// How many [`Violation`] kinds there are.
pub const VIOLATION_KINDS: usize = 10;

impl Violation {
    /// Every kind, by number.
    pub const ALL: [Violation; VIOLATION_KINDS] = [
        Violation::Convention,
        Violation::Capability,
        Violation::Rights,
        Violation::Duplicate,
        Violation::Transfer,
        Violation::Cookie,
        Violation::DoubleReturn,
        Violation::WrongReply,
        Violation::NeverEnded,
        Violation::Setup,
    ];

    /// The kind with this number.
    pub fn from_number(number: u32) -> Option<Violation> {
        Self::ALL.get(number as usize).copied()
    }

    /// How reports name it.
    pub const fn name(self) -> &'static str {
        match self {
            Violation::Convention => "return convention",
            Violation::Capability => "capability not refused",
            Violation::Rights => "rights grew",
            Violation::Duplicate => "DUPLICATE rights",
            Violation::Transfer => "transferred rights",
            Violation::Cookie => "cookie not set by a REPLY",
            Violation::DoubleReturn => "trap returned twice",
            Violation::WrongReply => "reply of another call",
            Violation::NeverEnded => "call never ended",
            Violation::Setup => "fuzzer setup",
        }
    }
}

/// The racing actions the threads take besides random traps, counted in
/// [`FuzzReport::actions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    /// UNMAP of arena pages other threads' traps may be using.
    Unmap = 0,
    /// PROTECT of arena pages (read-only, or back to writable).
    Protect = 1,
    /// MAP_ANONYMOUS of unmapped arena pages again.
    Remap = 2,
    /// UNMAP or PROTECT of the playground, where random MAP_ANONYMOUS aims.
    Playground = 3,
    /// A call with a manifest of the rights of its slots.
    TrackedCall = 4,
    /// DUPLICATE of a fodder descriptor, checked against DESCRIPTOR_INFO.
    DuplicateProbe = 5,
    /// DESCRIPTOR_INFO of any descriptor, checked against its kind's rights.
    InfoProbe = 6,
    /// EVENT_WAIT on [`ALARM`].
    Wait = 7,
    /// EVENT_SIGNAL of [`ALARM`].
    Signal = 8,
    /// YIELD.
    Yield = 9,
    /// THREAD_EXIT of a racing thread (a new one takes its place).
    ThreadExit = 10,
    /// MAP_ANONYMOUS where the kernel chooses, then UNMAP of it.
    MapUnmap = 11,
}

/// How many [`Action`] kinds there are.
pub const ACTIONS: usize = 12;

impl Action {
    /// How reports name it.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Unmap => "unmap",
            Action::Protect => "protect",
            Action::Remap => "remap",
            Action::Playground => "playground",
            Action::TrackedCall => "tracked-call",
            Action::DuplicateProbe => "duplicate-probe",
            Action::InfoProbe => "info-probe",
            Action::Wait => "wait",
            Action::Signal => "signal",
            Action::Yield => "yield",
            Action::ThreadExit => "thread-exit",
            Action::MapUnmap => "map-unmap",
        }
    }

    /// Every kind, by number.
    pub const ALL: [Action; ACTIONS] = [
        Action::Unmap,
        Action::Protect,
        Action::Remap,
        Action::Playground,
        Action::TrackedCall,
        Action::DuplicateProbe,
        Action::InfoProbe,
        Action::Wait,
        Action::Signal,
        Action::Yield,
        Action::ThreadExit,
        Action::MapUnmap,
    ];
}

/// The capability functions whose bodies the primary reaches, counted in
/// [`FuzzReport::capability_completed`]: DOOR_CREATE, SPAWN, ARCHIVE_READ.
pub const CAPABILITY_BODIES: usize = 3;

/// The first violation a process saw: enough to find it again.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FirstViolation {
    /// The [`Violation`] number (meaningful when the count is not 0).
    pub kind: u32,
    /// The thread slot that saw it (7: the coordinator, the first thread).
    pub slot: u32,
    /// The process's trap number at the time (the random traps are
    /// numbered from 0 in the order their threads draw them).
    pub trap: u64,
    /// The trap's registers on entry.
    pub entry: [u64; 4],
    /// And on return (or what the check compared).
    pub result: [u64; 4],
}

/// What a fuzzer process did and found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FuzzReport {
    /// The [`Role`] number.
    pub role: u32,
    /// Racing threads that made random traps (at a time).
    pub workers: u32,
    /// Traps the racing threads drew (random traps and racing actions).
    pub traps: u64,
    /// Of those, random traps made.
    pub calls: u64,
    /// Of those, random traps that returned without a kernel error.
    pub completed: u64,
    /// Kernel errors of the random traps by number (index 0 unused; unknown
    /// numbers in the last).
    pub errors: [u64; COUNTED_ERRORS],
    /// Racing actions by [`Action`] number.
    pub actions: [u64; ACTIONS],
    /// Traps the server threads made (RECEIVE, REPLY, REPLY_RECEIVE).
    pub server_traps: u64,
    /// Messages the server threads received.
    pub received: u64,
    /// Replies that reached their caller.
    pub replied: u64,
    /// Messages a server thread received again without answering (ABANDONED).
    pub abandoned: u64,
    /// Server threads that exited holding a message.
    pub server_exits: u64,
    /// Cookies the servers checked against the family.
    pub cookies_checked: u64,
    /// Rights the oracle checked (DESCRIPTOR_INFO results, DUPLICATE probes
    /// judged, delivered slots).
    pub rights_checked: u64,
    /// Of the capability functions sent to a capability the process holds:
    /// DOOR_CREATE, SPAWN, ARCHIVE_READ that completed.
    pub capability_completed: [u64; CAPABILITY_BODIES],
    /// Random traps of a capability function with well-formed registers
    /// to anything but a held capability (each must be refused by the target).
    pub capability_traps: u64,
    /// Threads started (besides the first of each slot) to replace ended ones.
    pub respawns: u64,
    /// Ended threads reaped (their stacks unmapped).
    pub reaped: u64,
    /// Times the coordinator found every racing thread blocked and closed
    /// the owner references of the fodder (and signalled [`ALARM`]).
    pub stall_breaks: u64,
    /// Descriptors closed because a reply brought them in above the fodder.
    pub closed_arrivals: u64,
    /// Every trap the process's threads made (random traps, actions and
    /// the oracle's own calls, servers and coordinator included).
    pub kernel_traps: u64,
    /// Rounds of the coordinator's loop (a YIELD and a CLOCK each).
    pub rounds: u64,
    /// Violations by [`Violation`] number.
    pub violations: [u64; VIOLATION_KINDS],
    /// The first of them.
    pub first: FirstViolation,
    /// The final ECHO call through [`ECHO`]: [`ECHO_ANSWERED`], or
    /// [`ECHO_KERNEL_ERROR`] / [`ECHO_WRONG_ANSWER`] in the upper half with
    /// the error number or msgRetVal in the lower half.
    pub echo_check: u64,
    /// CLOCK ticks from the first trap to the end of the teardown.
    pub ticks: u64,
}

impl Default for FuzzReport {
    fn default() -> Self {
        FuzzReport {
            role: 0,
            workers: 0,
            traps: 0,
            calls: 0,
            completed: 0,
            errors: [0; COUNTED_ERRORS],
            actions: [0; ACTIONS],
            server_traps: 0,
            received: 0,
            replied: 0,
            abandoned: 0,
            server_exits: 0,
            cookies_checked: 0,
            rights_checked: 0,
            capability_completed: [0; CAPABILITY_BODIES],
            capability_traps: 0,
            respawns: 0,
            reaped: 0,
            stall_breaks: 0,
            closed_arrivals: 0,
            kernel_traps: 0,
            rounds: 0,
            violations: [0; VIOLATION_KINDS],
            first: FirstViolation::default(),
            echo_check: 0,
            ticks: 0,
        }
    }
}

impl FuzzReport {
    /// All violations.
    pub fn violation_count(&self) -> u64 {
        self.violations.iter().sum()
    }

    /// Adds `other`'s counts (a thread's) to these; the first violation is
    /// kept by the caller, not here.
    pub fn add(&mut self, other: &FuzzReport) {
        fn sum<const N: usize>(into: &mut [u64; N], from: &[u64; N]) {
            for (a, b) in into.iter_mut().zip(from) {
                *a += b;
            }
        }
        self.calls += other.calls;
        self.completed += other.completed;
        sum(&mut self.errors, &other.errors);
        sum(&mut self.actions, &other.actions);
        self.server_traps += other.server_traps;
        self.received += other.received;
        self.replied += other.replied;
        self.abandoned += other.abandoned;
        self.server_exits += other.server_exits;
        self.cookies_checked += other.cookies_checked;
        self.rights_checked += other.rights_checked;
        sum(&mut self.capability_completed, &other.capability_completed);
        self.capability_traps += other.capability_traps;
        self.respawns += other.respawns;
        self.reaped += other.reaped;
        self.stall_breaks += other.stall_breaks;
        self.closed_arrivals += other.closed_arrivals;
        self.kernel_traps += other.kernel_traps;
        self.rounds += other.rounds;
        sum(&mut self.violations, &other.violations);
    }
}

/// [`FuzzReport::echo_check`]: echo answered the final call correctly.
pub const ECHO_ANSWERED: u64 = 0;
/// [`FuzzReport::echo_check`] (upper half): the call failed with a kernel error.
pub const ECHO_KERNEL_ERROR: u64 = 1 << 32;
/// [`FuzzReport::echo_check`] (upper half): echo's answer was not the data sent.
pub const ECHO_WRONG_ANSWER: u64 = 2 << 32;

/// The kernel command-line words `cargo xtask fuzz` boots `ipc-test` with
/// (`init=ipc-test fuzz-seed=S fuzz-traps=N fuzz-seconds=T qemu-exit`):
/// `ipc-test` then runs its fuzz checks only, with these parameters.
pub const SEED_KEY: &str = "fuzz-seed";
/// The primary's random traps.
pub const TRAPS_KEY: &str = "fuzz-traps";
/// The guest-time limit in seconds (0 or absent: none).
pub const SECONDS_KEY: &str = "fuzz-seconds";

/// The fuzz parameters on a command line, if any of the keys is there:
/// (seed, traps, seconds). A number is decimal or `0x` hexadecimal;
/// `Err` names the word that is not one.
pub fn parse_command_line(cmdline: &str) -> Result<Option<(u64, u64, u64)>, &str> {
    let mut found = None::<(Option<u64>, Option<u64>, Option<u64>)>;
    for word in cmdline.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let index = match key {
            SEED_KEY => 0,
            TRAPS_KEY => 1,
            SECONDS_KEY => 2,
            _ => continue,
        };
        let number = parse_number(value).ok_or(word)?;
        let entry = found.get_or_insert((None, None, None));
        match index {
            0 => entry.0 = Some(number),
            1 => entry.1 = Some(number),
            _ => entry.2 = Some(number),
        }
    }
    Ok(found.map(|(seed, traps, seconds)| {
        (
            seed.unwrap_or(0),
            traps.unwrap_or(DEFAULT_TRAPS),
            seconds.unwrap_or(0),
        )
    }))
}

/// The primary's random traps when the command line names none.
pub const DEFAULT_TRAPS: u64 = 1_000_000;

/// The seed of the fuzzer's boot case in `cargo xtask test`: fixed, so
/// that a failure there is replayed.
pub const TEST_SEED: u64 = 0x1bad_5eed_cafe_f00d;
/// The primary's random traps in that boot case under TCG.
pub const TEST_TRAPS: u64 = 100_000;
/// The primary's random traps in that boot case under nested KVM, where a
/// trap costs some 0.75 ms of host time (TEST_TRAPS would take minutes).
pub const TEST_TRAPS_KVM: u64 = 10_000;

/// A decimal or `0x` hexadecimal number.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The line prefix of a fuzzer's summary in `ipc-test`'s output, which
/// `cargo xtask fuzz` reads: `fuzz-result: role=R traps=N calls=C
/// violations=V seed=S first=...`.
pub const RESULT_PREFIX: &str = "fuzz-result:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_fits_a_message() {
        assert!(size_of::<FuzzReport>() + 8 < usize::from(abi::message::MAX_TOTAL_SIZE));
        assert_eq!(size_of::<FuzzArguments>(), 40);
        assert_eq!(size_of::<Manifest>(), 40);
    }

    #[test]
    fn the_layout_names_every_kept_descriptor() {
        assert_eq!(LAYOUT.len() as u32, BOOT_ARCHIVE.0);
        assert_eq!(LAYOUT[(ECHO.0 - 1) as usize].source, Source::Echo);
        assert_eq!(LAYOUT[(LIFELINE.0 - 1) as usize].source, Source::Lifeline);
        assert_eq!(LAYOUT[(SERVE.0 - 1) as usize].source, Source::OwnServed);
        assert_eq!(LAYOUT[(SERVE.0 - 1) as usize].rights, Rights::DOOR_OWNER);
        assert_eq!(
            LAYOUT[(OWN_SERVED.0 - 1) as usize].source,
            Source::OwnServed
        );
        assert_eq!(
            LAYOUT[(OTHER_SERVED.0 - 1) as usize].source,
            Source::OtherServed
        );
        assert_eq!(LAYOUT[(REAPER_OWNER.0 - 1) as usize].source, Source::Reaper);
        assert_eq!(LAYOUT[(ALARM.0 - 1) as usize].source, Source::Alarm);
        assert_eq!(LAYOUT[(STOP.0 - 1) as usize].source, Source::Stop);
        assert_eq!(LAYOUT[(BELL.0 - 1) as usize].source, Source::Bell);
        assert_eq!(
            LAYOUT[(PROCESS_CONTROL.0 - 1) as usize].kind,
            ObjectKind::ProcessControl
        );
        assert!((1..=LAST_FODDER).all(|d| !is_kept(d)));
        assert!((LAST_FODDER + 1..=BOOT_ARCHIVE.0).all(is_kept));
        assert!(!is_kept(0) && !is_kept(BOOT_ARCHIVE.0 + 1));
        // No capability is transferable: it can never leave the primary.
        for entry in LAYOUT {
            if matches!(
                entry.kind,
                ObjectKind::ProcessControl | ObjectKind::BootArchive
            ) {
                assert!(!entry.rights.contains(Rights::TRANSFER));
                assert!(!entry.rights.contains(Rights::DUPLICATE));
            }
        }
    }

    #[test]
    fn family_cookies_are_recognised_and_random_ones_are_not() {
        let key = cookie_key(0x1bad_5eed);
        for x in [0, 1, 2, 0xffff_ffff, 0x1234_5678] {
            assert!(is_family_cookie(key, family_cookie(key, x)));
            assert_ne!(family_cookie(key, x), 0);
        }
        assert!(is_family_cookie(key, 0));
        let mut random = 0x9e37_79b9_7f4a_7c15u64;
        let mut accepted = 0;
        for _ in 0..10_000 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            accepted += u32::from(is_family_cookie(key, random));
        }
        assert_eq!(accepted, 0);
        // Another seed's family is another family.
        let other = cookie_key(0x1bad_5eee);
        assert!(!is_family_cookie(other, family_cookie(key, 7)));
    }

    #[test]
    fn the_command_line_gives_the_parameters() {
        assert_eq!(parse_command_line("init=ipc-test qemu-exit"), Ok(None));
        assert_eq!(
            parse_command_line("init=ipc-test fuzz-seed=0x1f fuzz-traps=500 qemu-exit"),
            Ok(Some((0x1f, 500, 0)))
        );
        assert_eq!(
            parse_command_line("fuzz-seconds=30"),
            Ok(Some((0, DEFAULT_TRAPS, 30)))
        );
        assert_eq!(
            parse_command_line("fuzz-traps=lots"),
            Err("fuzz-traps=lots")
        );
        assert_eq!(parse_number("0XfF"), Some(255));
        assert_eq!(parse_number("12"), Some(12));
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn violations_and_actions_have_names_by_number() {
        for (number, kind) in Violation::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, number);
            assert_eq!(Violation::from_number(number as u32), Some(*kind));
            assert!(!kind.name().is_empty());
        }
        for (number, action) in Action::ALL.iter().enumerate() {
            assert_eq!(*action as usize, number);
        }
    }
}
