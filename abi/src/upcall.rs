//! Interrupting threads and upcalls (ABI.md §6.10): THREAD_INTERRUPT's
//! request, the upcall handler's registration, the frame the kernel builds
//! on the user stack and UPCALL_RETURN takes back, and SIGNAL_MASK.
//!
//! The kernel knows signal *numbers* (bits of a 64-bit set) and masks, never
//! what a signal means: that is procman's protocol (ABI.md §7a.8).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Signal numbers are 1..=63 (bit `n` of a signal set); 0 is a plain
/// interruption that carries no signal.
pub const MAX_SIGNAL: u32 = 63;

/// The bit of `signal` in a signal set or mask (0 for a number above
/// [`MAX_SIGNAL`], which no set holds).
pub const fn signal_bit(signal: u32) -> u64 {
    if signal > MAX_SIGNAL { 0 } else { 1 << signal }
}

/// Bytes below the interrupted RSP the kernel leaves alone before it builds
/// an upcall frame on the same stack (the System V red zone).
pub const RED_ZONE: u64 = 128;

/// The RFLAGS bits user code may set and UPCALL_RETURN restores: CF, PF,
/// AF, ZF, SF, DF, OF, AC and ID. Every other bit is the kernel's: IF and
/// the always-one bit 1 are set, the rest (TF, IOPL, NT, RF, VM, VIF, VIP)
/// cleared, whatever a frame says.
pub const USER_RFLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x4_0000 | 0x20_0000;

/// RFLAGS always set in user mode: IF (interrupts) and bit 1.
pub const FORCED_RFLAGS: u64 = 0x200 | 0x2;

/// THREAD_INTERRUPT's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ThreadInterruptRequest {
    /// 0: interrupt only; 1..=63: also make this signal pending.
    pub signal: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Handed to the handler with the signal (the latest one for a signal
    /// already pending).
    pub info: u64,
}

impl ThreadInterruptRequest {
    /// Interrupt with `signal` (0: none) and `info`.
    pub const fn new(signal: u32, info: u64) -> Self {
        ThreadInterruptRequest {
            signal,
            reserved: 0,
            info,
        }
    }
}

/// UPCALL_REGISTER's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct UpcallRegisterRequest {
    /// The handler's address (0: none; signals then stay pending).
    pub entry: u64,
    /// The alternate stack's lowest address (with `stack_size` 0: none,
    /// frames go on the interrupted stack).
    pub stack_base: u64,
    /// Its size in bytes.
    pub stack_size: u64,
}

impl UpcallRegisterRequest {
    /// Handler `entry`, frames on the interrupted thread's own stack.
    pub const fn new(entry: u64) -> Self {
        UpcallRegisterRequest {
            entry,
            stack_base: 0,
            stack_size: 0,
        }
    }

    /// Handler `entry`, frames on `[stack_base, stack_base + stack_size)`.
    pub const fn with_stack(entry: u64, stack_base: u64, stack_size: u64) -> Self {
        UpcallRegisterRequest {
            entry,
            stack_base,
            stack_size,
        }
    }
}

/// UPCALL_RETURN's request: where the frame is (what the handler got in
/// its third argument).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct UpcallReturnRequest {
    /// The frame's address.
    pub frame: u64,
}

impl UpcallReturnRequest {
    /// Return through the frame at `frame`.
    pub const fn new(frame: u64) -> Self {
        UpcallReturnRequest { frame }
    }
}

/// SIGNAL_MASK's `how`.
pub mod mask_how {
    /// The mask becomes `mask`.
    pub const SET: u32 = 0;
    /// The signals of `mask` are added.
    pub const BLOCK: u32 = 1;
    /// The signals of `mask` are removed.
    pub const UNBLOCK: u32 = 2;
}

/// SIGNAL_MASK's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SignalMaskRequest {
    /// [`mask_how`].
    pub how: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// A bit per signal (bit 0 is ignored: it is no signal).
    pub mask: u64,
}

impl SignalMaskRequest {
    /// `how` with `mask`.
    pub const fn new(how: u32, mask: u64) -> Self {
        SignalMaskRequest {
            how,
            reserved: 0,
            mask,
        }
    }
}

/// SIGNAL_MASK's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SignalMaskReply {
    /// The mask before the call.
    pub previous: u64,
    /// The signals pending on the thread after the call (not yet delivered).
    pub pending: u64,
}

/// A thread's user-mode registers, as an upcall frame saves them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
#[allow(missing_docs)]
pub struct UserRegisters {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub rsp: u64,
}

/// The frame the kernel writes on the user stack before it enters the
/// handler (at a 16-byte aligned address; the handler's return-address
/// slot, 0, is the 8 bytes below it).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct UpcallFrame {
    /// The signal delivered.
    pub signal: u32,
    /// Zero.
    pub reserved: u32,
    /// Its information word.
    pub info: u64,
    /// The thread's signal mask before the handler (UPCALL_RETURN restores
    /// it; during the handler the signal itself is masked too).
    pub mask: u64,
    /// Everything the thread had in user mode when it was interrupted.
    pub registers: UserRegisters,
}

/// The frame's size.
pub const UPCALL_FRAME_BYTES: u64 = core::mem::size_of::<UpcallFrame>() as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(UPCALL_FRAME_BYTES, 168);
        assert_eq!(size_of::<ThreadInterruptRequest>(), 16);
        assert_eq!(size_of::<UpcallRegisterRequest>(), 24);
        assert_eq!(size_of::<SignalMaskRequest>(), 16);
        assert_eq!(USER_RFLAGS & FORCED_RFLAGS, 0);
        assert_eq!(USER_RFLAGS & 0x3000, 0, "IOPL is never the user's");
    }
}
