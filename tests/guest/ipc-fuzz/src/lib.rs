//! The protocol of `ipc-fuzz` (the program is `src/main.rs`): how
//! `ipc-test` starts it and what it reports.
//!
//! `ipc-test` SPAWNs `ipc-fuzz` with a [`FuzzArguments`] as the argument
//! bytes and [`INITIAL_DESCRIPTORS`] descriptors: 1 to 8 are *fodder*, the
//! references the random traps aim at (client references to an echo door
//! with various rights, events, a process handle, a dead door), 9 is a
//! client reference to the same echo door that the fuzzer keeps out of the
//! random traps' reach, and 10 is the owner reference of the *lifeline*
//! door, equally out of reach. After its random traps the fuzzer calls echo
//! through descriptor 9, then RECEIVEs on the lifeline: `ipc-test`'s call
//! of [`REPORT`] (made right after the SPAWN and queued until then) gets a
//! [`FuzzReport`]. The fuzzer then exits, which kills the lifeline door, so
//! a second call on it returns PEER_DIED once the fuzzer is gone.
//!
//! The fuzzer holds no kernel capability (ABI.md §6): none of its
//! descriptors is one, and nothing it calls hands one out. So every
//! capability function it sends with well-formed registers (DOOR_CREATE,
//! SPAWN, MANAGER_REGISTER, ARCHIVE_READ, DEBUG_EXIT) must be refused by its
//! target: FUNCTION_OUT_OF_RANGE for the NULL target, BAD_DESCRIPTOR or
//! WRONG_OBJECT_TYPE for a descriptor ([`FuzzReport::capability_traps`]).
#![no_std]

use abi::Descriptor;
use abi::function::{Function, USER_BASE};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The program's name in the boot archive.
pub const PROGRAM: &str = "ipc-fuzz";

/// The argument bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FuzzArguments {
    /// The PRNG seed (0 is replaced by a fixed non-zero value).
    pub seed: u64,
    /// How many random traps to make.
    pub calls: u64,
}

/// The last fodder descriptor: the random traps use descriptors 0 to 8.
pub const LAST_FODDER: u32 = 8;
/// A client reference to the echo door, never touched by the random traps.
pub const ECHO: Descriptor = Descriptor(9);
/// The owner reference of the lifeline door, never touched by the random traps.
pub const LIFELINE: Descriptor = Descriptor(10);
/// How many descriptors the fuzzer starts with.
pub const INITIAL_DESCRIPTORS: u32 = 10;

/// `ipc-test`'s call on the lifeline door: the reply payload is a [`FuzzReport`].
pub const REPORT: Function = Function(USER_BASE + 0x100);

/// Error numbers counted one by one; larger (unknown) numbers are counted
/// in the last entry of [`FuzzReport::errors`].
pub const COUNTED_ERRORS: usize = 32;

/// What the fuzzer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FuzzReport {
    /// Random traps made.
    pub calls: u64,
    /// Of those, traps that returned without a kernel error.
    pub completed: u64,
    /// Kernel errors by number (index 0 unused; unknown numbers in the last).
    pub errors: [u64; COUNTED_ERRORS],
    /// Results that broke the ABI's return conventions (ABI.md §3).
    pub violations: u64,
    /// The first such trap's registers on entry.
    pub first_violation_entry: [u64; 4],
    /// And on return.
    pub first_violation_result: [u64; 4],
    /// Descriptors the fuzzer closed because a reply brought them in above
    /// its fodder range (so that its table stays small).
    pub closed_arrivals: u64,
    /// The final ECHO call through [`ECHO`]: [`ECHO_ANSWERED`], or
    /// [`ECHO_KERNEL_ERROR`] / [`ECHO_WRONG_ANSWER`] in the upper half with
    /// the error number or msgRetVal in the lower half.
    pub echo_check: u64,
    /// Random traps of a capability function with well-formed registers
    /// (upper halves clear, sizes within the total), each of which the
    /// target checks must refuse (see the crate documentation).
    pub capability_traps: u64,
    /// Of those, the ones that were not refused that way (also counted in
    /// [`FuzzReport::violations`], and the first of all violations is kept).
    pub capability_violations: u64,
}

impl Default for FuzzReport {
    fn default() -> Self {
        FuzzReport {
            calls: 0,
            completed: 0,
            errors: [0; COUNTED_ERRORS],
            violations: 0,
            first_violation_entry: [0; 4],
            first_violation_result: [0; 4],
            closed_arrivals: 0,
            echo_check: 0,
            capability_traps: 0,
            capability_violations: 0,
        }
    }
}

/// [`FuzzReport::echo_check`]: echo answered the final call correctly.
pub const ECHO_ANSWERED: u64 = 0;
/// [`FuzzReport::echo_check`] (upper half): the call failed with a kernel error.
pub const ECHO_KERNEL_ERROR: u64 = 1 << 32;
/// [`FuzzReport::echo_check`] (upper half): echo's answer was not the data sent.
pub const ECHO_WRONG_ANSWER: u64 = 2 << 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_fits_a_message() {
        assert_eq!(
            size_of::<FuzzReport>(),
            8 * (2 + COUNTED_ERRORS + 1 + 8 + 2 + 2)
        );
        assert!(size_of::<FuzzReport>() + 8 < usize::from(abi::message::MAX_TOTAL_SIZE));
        assert_eq!(size_of::<FuzzArguments>(), 16);
    }
}
