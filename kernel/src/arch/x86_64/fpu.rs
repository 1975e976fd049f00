//! The x87, MMX and SSE registers of user threads: saved and restored in
//! FXSAVE format (512 bytes) when another user thread takes the CPU, so no
//! thread sees another's values (issue 15, finding 2: they used to pass
//! between processes, a leak and a covert channel).
//!
//! The kernel is built soft-float and never touches these registers, so
//! they hold the state of the last user thread that ran: switching to the
//! idle loop and back to the same thread costs nothing, and a switch
//! between two threads costs one FXSAVE and one FXRSTOR (eager switching,
//! as current Linux does; lazy switching through CR0.TS would trap on
//! first use, which this machine's nested KVM emulates slowly).

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

/// One thread's saved registers (Intel SDM vol. 1, 10.5.1: FXSAVE area).
#[repr(C, align(16))]
pub struct FpuState(pub [u8; 512]);

/// The bytes an [`FpuState`] occupies at the top of a kernel stack.
pub const STATE_BYTES: u64 = size_of::<FpuState>() as u64;

/// The state a new thread starts with: what FNINIT and a reset MXCSR
/// give (FCW 0x037F: every x87 exception masked, 64-bit precision; MXCSR
/// 0x1F80: every SSE exception masked, round to nearest), every register 0.
pub const INITIAL: FpuState = {
    let mut bytes = [0u8; 512];
    // FCW at offset 0.
    bytes[0] = 0x7f;
    bytes[1] = 0x03;
    // MXCSR at offset 24.
    bytes[24] = 0x80;
    bytes[25] = 0x1f;
    FpuState(bytes)
};

/// Lets user code use x87, MMX and SSE with the kernel saving their state:
/// CR0.EM clear (no emulation trap), CR0.MP set (WAIT honours TS), CR0.TS
/// clear, CR4.OSFXSR (FXSAVE covers the XMM registers; SSE allowed) and
/// CR4.OSXMMEXCPT (SSE exceptions are #XM, which ends the process like any
/// user fault).
pub fn enable() {
    // SAFETY: these bits change what user code may execute and what FXSAVE
    // saves; the kernel uses none of these registers.
    unsafe {
        Cr0::update(|flags| {
            flags.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            flags.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|flags| {
            flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
        });
    }
}

/// Saves the registers into `state`.
pub fn save(state: &mut FpuState) {
    // SAFETY: FXSAVE64 writes exactly the 512 bytes of `state`, which is
    // 16-byte aligned as it requires; enable() ran, so it cannot fault.
    unsafe {
        core::arch::asm!("fxsave64 [{}]", in(reg) state as *mut FpuState, options(nostack, preserves_flags))
    };
}

/// Loads the registers from `state`.
pub fn restore(state: &FpuState) {
    // SAFETY: FXRSTOR64 reads the 512 bytes of `state` (16-byte aligned);
    // every state comes from INITIAL or a FXSAVE, so its reserved MXCSR
    // bits are clear and it cannot fault.
    unsafe {
        core::arch::asm!("fxrstor64 [{}]", in(reg) state as *const FpuState, options(nostack, preserves_flags, readonly))
    };
}
