//! The protocol between `ipc-test` and its helper processes (the
//! `ipc-test-helper` program, `src/main.rs`); both trap through userlib's
//! raw layer (`userlib::raw`).
//!
//! `ipc-test` SPAWNs `ipc-test-helper` with the name of a [`role`] as its
//! argument bytes. Every role but [`role::CALL_THEN_DIE`] serves a door
//! whose owner reference is its descriptor 1, so the test only ever calls
//! its helpers: when a helper dies, the test's call fails with PEER_DIED
//! instead of hanging. Replies follow the usual convention (msgRetVal,
//! msgErrno, then the payload at offset 8), except [`REPLY_BYTES`], whose
//! reply is exactly the bytes asked for.
//!
//! The helpers hold no kernel capability (ABI.md §6) unless the test passes
//! one among their descriptors: SPAWN gives a child only what its slots
//! carry.
#![no_std]

use abi::TrapArgs;
use abi::function::{Function, USER_BASE};
use abi::message::DescriptorSlot;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The program's name in the boot archive.
pub const PROGRAM: &str = "ipc-test-helper";

/// The roles, passed as the argument bytes.
pub mod role {
    /// Serves [`super::REPLY_BYTES`], [`super::INSPECT`],
    /// [`super::COOKIE`], [`super::KEEP`] and [`super::COUNT_ARRIVED`] on
    /// descriptor 1 with raw RECEIVE / REPLY / REPLY_RECEIVE traps.
    pub const SERVER: &str = "server";
    /// Process B of the three-process transfer: serves [`super::RELAY`] on
    /// descriptor 1; descriptor 2 is a client reference to the signaller.
    pub const RELAY: &str = "relay";
    /// Process C of the three-process transfer: serves [`super::FORWARD`]
    /// and [`super::GIVE_BACK`] on descriptor 1.
    pub const SIGNALLER: &str = "signaller";
    /// Tries the capability functions (ABI.md §6) without holding the
    /// capability: DOOR_CREATE, SPAWN, DEBUG_EXIT, ARCHIVE_READ and
    /// MANAGER_REGISTER to the NULL target, DOOR_CREATE and DEBUG_EXIT to
    /// descriptor 1 (its door's owner reference), SPAWN to
    /// [`super::NOT_HELD`]; and, when it was started with a descriptor 2
    /// (a process-control capability the test passed on), DOOR_CREATE
    /// sent to that. Then answers [`super::REPORT`] on descriptor 1 with a
    /// [`super::ProbeReport`].
    pub const PROBE: &str = "probe";
    /// On the first call on descriptor 1: maps a page, makes it read-only,
    /// signals the event that is descriptor 2 and writes to the page, which
    /// must end the process. Answers with a [`super::FaultReport`] only if
    /// a step before the write failed.
    pub const FAULT: &str = "fault";
    /// Receives one call on descriptor 1, then exits without answering it.
    pub const EXIT_ON_CALL: &str = "exit-on-call";
    /// RECEIVEs on descriptor 1 with a buffer of size 0: it fails with
    /// RECEIVE_BUFFER_TOO_SMALL as soon as a call is queued, and the helper
    /// exits, leaving that call queued on a door that dies.
    pub const EXIT_WHEN_QUEUED: &str = "exit-when-queued";
    /// Descriptor 1 is a client reference to a door of the test,
    /// descriptor 2 the owner reference of the helper's own door. A second
    /// thread calls [`super::DOOMED_CALL`] through descriptor 1 (a call
    /// never answered in time); the first thread exits the process on the
    /// first call on descriptor 2.
    pub const CALL_THEN_DIE: &str = "call-then-die";
}

/// Request: [`ReplyBytesRequest`]. Reply: exactly `length` bytes of
/// [`pattern_byte`]s (0 to 4095; no header), answered as `mode` says. If
/// the caller's buffer cannot take it, the REPLY fails with REPLY_TOO_LARGE
/// and the helper answers with an error reply (-1, that error).
pub const REPLY_BYTES: Function = Function(USER_BASE);
/// Request: anything. Reply payload: an [`Inspection`] of the request.
/// The arrived descriptors are closed.
pub const INSPECT: Function = Function(USER_BASE + 1);
/// Request: a `u64`. Reply payload: the cookie the call arrived with (a
/// `u64`); the reply sets the caller's cookie to the request's value.
pub const COOKIE: Function = Function(USER_BASE + 2);
/// Request: descriptors. Closes them; msgRetVal = how many arrived.
pub const KEEP: Function = Function(USER_BASE + 3);
/// Request: client references to an echo door. Calls echo's COUNT
/// through each (which returns that reference's cookie), then closes them.
/// Reply payload: one `u64` cookie per descriptor (`u64::MAX` if the call
/// failed).
pub const COUNT_ARRIVED: Function = Function(USER_BASE + 4);
/// To the relay: one descriptor slot (an event). The relay describes it,
/// moves it to the signaller with FORWARD, CLOSEs it (which must fail: it
/// was moved) and answers with a [`RelayReport`].
pub const RELAY: Function = Function(USER_BASE + 5);
/// To the signaller: one descriptor slot (an event). The signaller
/// describes it, signals it, keeps it and answers with a [`SignalReport`].
pub const FORWARD: Function = Function(USER_BASE + 6);
/// To the signaller: the event FORWARD left there comes back in reply slot
/// 0, moved, with the SIGNAL right only.
pub const GIVE_BACK: Function = Function(USER_BASE + 7);
/// To the probe: reply payload is its [`ProbeReport`].
pub const REPORT: Function = Function(USER_BASE + 8);
/// The call the second thread of [`role::CALL_THEN_DIE`] makes.
pub const DOOMED_CALL: Function = Function(USER_BASE + 9);

/// msgErrno of a helper's error reply: the function is not one it serves.
pub const UNKNOWN_FUNCTION: u32 = abi::error::FIRST_SERVER_ERROR;
/// msgErrno of a helper's error reply: the request is malformed.
pub const BAD_REQUEST: u32 = abi::error::FIRST_SERVER_ERROR + 1;

/// Byte `index` of a [`REPLY_BYTES`] reply.
pub const fn pattern_byte(index: usize) -> u8 {
    (index as u8).wrapping_mul(0x1d).wrapping_add(0x11)
}

/// How a helper answers [`REPLY_BYTES`].
pub mod reply_mode {
    /// One REPLY_RECEIVE: answers and waits for the next call.
    pub const REPLY_RECEIVE: u16 = 0;
    /// A REPLY (whose registers [`super::INSPECT`] reports next), then a
    /// RECEIVE.
    pub const REPLY_THEN_RECEIVE: u16 = 1;
}

/// [`REPLY_BYTES`]' request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ReplyBytesRequest {
    /// The reply's data size.
    pub length: u16,
    /// A [`reply_mode`].
    pub mode: u16,
}

/// The four trap registers, as a message carries them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Registers {
    /// rax.
    pub arg0: u64,
    /// rdi.
    pub arg1: u64,
    /// rsi.
    pub arg2: u64,
    /// rdx.
    pub arg3: u64,
}

impl From<TrapArgs> for Registers {
    fn from(t: TrapArgs) -> Self {
        Registers {
            arg0: t.arg0,
            arg1: t.arg1,
            arg2: t.arg2,
            arg3: t.arg3,
        }
    }
}

impl From<Registers> for TrapArgs {
    fn from(r: Registers) -> Self {
        TrapArgs {
            arg0: r.arg0,
            arg1: r.arg1,
            arg2: r.arg2,
            arg3: r.arg3,
        }
    }
}

/// A descriptor slot as it arrived, and what DESCRIPTOR_INFO said of the
/// descriptor it delivered.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ArrivedSlot {
    /// The slot as the kernel rewrote it.
    pub slot: DescriptorSlot,
    /// DESCRIPTOR_INFO's kind (0 if it failed).
    pub kind: u32,
    /// DESCRIPTOR_INFO's rights.
    pub rights: u32,
    /// DESCRIPTOR_INFO's error number (0: it succeeded).
    pub info_error: u32,
    /// Zero.
    pub reserved: u32,
}

/// How many arrived slots an [`Inspection`] describes.
pub const INSPECTED_SLOTS: usize = 2;

/// [`INSPECT`]'s reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Inspection {
    /// The registers RECEIVE (or REPLY_RECEIVE) returned for this call.
    pub received: Registers,
    /// The msgPtr the helper received into.
    pub buffer: u64,
    /// 0: the call came by RECEIVE; 1: by REPLY_RECEIVE.
    pub via: u64,
    /// The registers the helper's last REPLY returned (all zero before any).
    pub last_reply: Registers,
    /// The first bytes of the request data.
    pub data_prefix: [u8; 16],
    /// The number of arrived slots.
    pub slot_count: u64,
    /// The first [`INSPECTED_SLOTS`] of them.
    pub slots: [ArrivedSlot; INSPECTED_SLOTS],
}

/// [`Inspection::via`]: the call came by RECEIVE.
pub const VIA_RECEIVE: u64 = 0;
/// [`Inspection::via`]: the call came by REPLY_RECEIVE.
pub const VIA_REPLY_RECEIVE: u64 = 1;

/// [`FORWARD`]'s reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SignalReport {
    /// The event as it arrived at the signaller.
    pub arrived: ArrivedSlot,
    /// The registers of its EVENT_SIGNAL.
    pub signal: Registers,
}

/// [`RELAY`]'s reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RelayReport {
    /// The event as it arrived at the relay.
    pub arrived: ArrivedSlot,
    /// The registers of the relay's FORWARD call (a MOVE of the event).
    pub forward: Registers,
    /// The registers of the relay's CLOSE of the moved descriptor.
    pub close_after_move: Registers,
    /// The signaller's answer.
    pub signaller: SignalReport,
}

/// A descriptor number the probe never holds (its table has 1, maybe 2,
/// and the two the delegated DOOR_CREATE adds).
pub const NOT_HELD: u32 = 1000;

/// [`REPORT`]'s reply payload: the registers each capability function
/// returned to the probe, which holds no capability of its own.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProbeReport {
    /// DOOR_CREATE of a user door, to the NULL target.
    pub door_create: Registers,
    /// SPAWN of this very program, to the NULL target.
    pub spawn: Registers,
    /// DEBUG_EXIT with a failure code, to the NULL target.
    pub debug_exit: Registers,
    /// ARCHIVE_READ of this very program, to the NULL target.
    pub archive_read: Registers,
    /// MANAGER_REGISTER of its door, to the NULL target.
    pub manager_register: Registers,
    /// DOOR_CREATE of a user door, to descriptor 1 (a door's owner reference).
    pub door_create_to_door: Registers,
    /// DEBUG_EXIT with a failure code, to descriptor 1.
    pub debug_exit_to_door: Registers,
    /// SPAWN of this very program, to [`NOT_HELD`].
    pub spawn_to_unopened: Registers,
    /// DOOR_CREATE of a user door, to descriptor 2 when the probe was
    /// started with one (all zero otherwise).
    pub delegated_door_create: Registers,
    /// That DOOR_CREATE's reply slots, as they came back (the probe then
    /// closes both descriptors).
    pub delegated_slots: [DescriptorSlot; 2],
}

/// The steps of [`role::FAULT`].
pub mod fault_step {
    /// MAP_ANONYMOUS of one page, read-write.
    pub const MAP: u32 = 1;
    /// The first write, before PROTECT.
    pub const WRITE: u32 = 2;
    /// PROTECT to READ.
    pub const PROTECT: u32 = 3;
    /// Reading the page back after PROTECT.
    pub const READ_BACK: u32 = 4;
    /// EVENT_SIGNAL of descriptor 2.
    pub const SIGNAL: u32 = 5;
    /// The process survived the write to the read-only page.
    pub const SURVIVED: u32 = 6;
}

/// [`role::FAULT`]'s reply payload, sent only when a step failed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FaultReport {
    /// The [`fault_step`] that failed.
    pub step: u32,
    /// Its error number (or the unexpected byte read back).
    pub error: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_layouts_are_fixed() {
        assert_eq!(size_of::<Registers>(), 32);
        assert_eq!(size_of::<ArrivedSlot>(), 32);
        assert_eq!(size_of::<Inspection>(), 32 + 16 + 32 + 16 + 8 + 64);
        assert_eq!(size_of::<RelayReport>(), 32 + 32 + 32 + 64);
        assert_eq!(size_of::<ProbeReport>(), 9 * 32 + 2 * 16);
    }

    #[test]
    fn the_pattern_starts_with_distinct_words() {
        let word = |at: usize| {
            u32::from_le_bytes([
                pattern_byte(at),
                pattern_byte(at + 1),
                pattern_byte(at + 2),
                pattern_byte(at + 3),
            ])
        };
        assert_ne!(word(0), 0);
        assert_ne!(word(4), 0);
        assert_ne!(word(0), word(4));
    }
}
