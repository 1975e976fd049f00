//! The protocol between `ipc-test` and its helper processes (the
//! `ipc-test-helper` program, `src/main.rs`); both trap through userlib's
//! raw layer (`userlib::raw`).
//!
//! `ipc-test` SPAWNs `ipc-test-helper` with the name of a [`role`] as its
//! argument bytes. Every role serves a door whose owner reference is its
//! descriptor 1, so the test only ever calls
//! its helpers: when a helper dies, the test's call fails with PEER_DIED
//! instead of hanging. Replies follow the usual convention (msgRetVal,
//! msgErrno, then the payload at offset 8).
//!
//! The helpers hold no kernel capability (ABI.md §6): SPAWN gives a child
//! only what its slots carry.
#![no_std]

use abi::TrapArgs;
use abi::function::{Function, USER_BASE};
use abi::message::DescriptorSlot;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The program's name in the boot archive.
pub const PROGRAM: &str = "ipc-test-helper";

/// The roles, passed as the argument bytes.
pub mod role {
    /// Process B of the three-process transfer: serves [`super::RELAY`] on
    /// descriptor 1; descriptor 2 is a client reference to the signaller.
    pub const RELAY: &str = "relay";
    /// Process C of the three-process transfer: serves [`super::FORWARD`]
    /// and [`super::GIVE_BACK`] on descriptor 1.
    pub const SIGNALLER: &str = "signaller";
}

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

/// msgErrno of a helper's error reply: the function is not one it serves.
pub const UNKNOWN_FUNCTION: u32 = abi::error::FIRST_SERVER_ERROR;
/// msgErrno of a helper's error reply: the request is malformed.
pub const BAD_REQUEST: u32 = abi::error::FIRST_SERVER_ERROR + 1;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_layouts_are_fixed() {
        assert_eq!(size_of::<Registers>(), 32);
        assert_eq!(size_of::<ArrivedSlot>(), 32);
        assert_eq!(size_of::<SignalReport>(), 32 + 32);
        assert_eq!(size_of::<RelayReport>(), 32 + 32 + 32 + 64);
    }
}
