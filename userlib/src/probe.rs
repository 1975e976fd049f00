//! Machine probes for test suites (the conformance suite): what a message
//! cannot express. Which registers and flags a trap preserves (ABI.md §1),
//! a software interrupt (not a way into the kernel, §9 D12) and a CPU
//! exception on demand (§7). Programs other than tests have no use for them.

use abi::TrapArgs;

/// The registers a trap must preserve, in [`RegisterProbe::after`] order.
pub const PRESERVED: [&str; 9] = ["rbx", "rbp", "r8", "r9", "r10", "r12", "r13", "r14", "r15"];

/// The values the probe loads into [`PRESERVED`] before the trap.
pub const PATTERNS: [u64; 9] = [
    0x0b0b_0b0b_1234_5678,
    0x0505_0505_8765_4321,
    0x0808_0808_a5a5_a5a5,
    0x0909_0909_5a5a_5a5a,
    0x1010_1010_f0f0_f0f0,
    0x1212_1212_0f0f_0f0f,
    0x1313_1313_cccc_cccc,
    0x1414_1414_3333_3333,
    0x1515_1515_9999_9999,
];

/// The RFLAGS bits a user program may set and the trap must preserve:
/// CF, PF, AF, ZF, SF, DF, OF.
pub const USER_FLAGS: u64 = 0x0cd5;

/// What one probe saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterProbe {
    /// [`PRESERVED`] after the trap.
    pub after: [u64; 9],
    /// RFLAGS after the trap.
    pub flags: u64,
    /// rsp just before and just after the trap.
    pub stack: [u64; 2],
    /// The trap's result registers.
    pub result: TrapArgs,
}

/// Loads [`PATTERNS`] and, with `set_flags`, the [`USER_FLAGS`] (else clears
/// them), then traps with `arg0 = -1` (INVALID_FUNCTION: no memory is
/// touched) and records what came back. On the host: all zeros.
pub fn register_probe(set_flags: bool) -> RegisterProbe {
    crate::arch::register_probe(set_flags)
}

/// Part of a thread's x87/MMX/SSE state, which the kernel keeps per thread:
/// no thread sees another's (ABI.md §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpuProbe {
    /// XMM0's low 64 bits.
    pub xmm0: u64,
    /// The x87 control word.
    pub fcw: u16,
    /// The SSE control and status register.
    pub mxcsr: u32,
}

impl FpuProbe {
    /// What a new thread starts with (FNINIT's control word, MXCSR's reset
    /// value, zero registers).
    pub const INITIAL: FpuProbe = FpuProbe {
        xmm0: 0,
        fcw: 0x037f,
        mxcsr: 0x1f80,
    };

    /// A state unlike [`FpuProbe::INITIAL`] in every field, marked with
    /// `mark`: double precision and round-toward-zero.
    pub const fn marked(mark: u64) -> FpuProbe {
        FpuProbe {
            xmm0: mark,
            fcw: 0x027f,
            mxcsr: 0x7f80,
        }
    }
}

/// Loads `state` into the calling thread's XMM0, x87 control word and MXCSR.
pub fn set_fpu(state: FpuProbe) {
    crate::arch::set_fpu_probe(state)
}

/// The calling thread's XMM0, x87 control word and MXCSR.
pub fn fpu() -> FpuProbe {
    crate::arch::fpu_probe()
}

/// `int 0x80`; returns only if a kernel let it through.
pub fn software_interrupt() {
    crate::arch::software_interrupt()
}

/// `ud2`: an invalid-opcode exception, which ends the process.
pub fn invalid_opcode() -> ! {
    crate::arch::invalid_opcode()
}

/// The values [`upcall_register_probe`] loads into every general register
/// but RSP, in `abi::upcall::UserRegisters` order (RAX, RBX, RCX, RDX, RSI,
/// RDI, RBP, R8-R15). RCX is the spin loop's register: it holds 0 while it
/// waits and [`UPCALL_PATTERNS`]`[2]` once the handler stored that value in
/// [`UPCALL_PROBE_FLAG`].
pub const UPCALL_PATTERNS: [u64; 15] = [
    0x0a0a_0a0a_0000_0001,
    0x0b0b_0b0b_0000_0002,
    0x0c0c_0c0c_0000_0003,
    0x0d0d_0d0d_0000_0004,
    0x0e0e_0e0e_0000_0005,
    0x0f0f_0f0f_0000_0006,
    0x1111_1111_0000_0007,
    0x0808_0808_0000_0008,
    0x0909_0909_0000_0009,
    0x1010_1010_0000_000a,
    0x1111_1111_0000_000b,
    0x1212_1212_0000_000c,
    0x1313_1313_0000_000d,
    0x1414_1414_0000_000e,
    0x1515_1515_0000_000f,
];

/// What the probe's spin loop waits for: a handler stores
/// [`UPCALL_PATTERNS`]`[2]` here (any non-zero value ends the loop).
pub static UPCALL_PROBE_FLAG: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// What [`upcall_register_probe`] saw after its wait.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpcallProbe {
    /// Every general register but RSP, in [`UPCALL_PATTERNS`] order.
    pub after: [u64; 15],
    /// RFLAGS after the wait.
    pub flags: u64,
    /// RSP before and after the wait.
    pub stack: [u64; 2],
}

/// Loads [`UPCALL_PATTERNS`] and `flags` (user bits, [`USER_FLAGS`]) into
/// the registers and spins, changing none of them, until
/// [`UPCALL_PROBE_FLAG`] is non-zero: a thread interrupted there (its
/// handler stores the flag) shows what the upcall and its return kept.
/// On the host: all zeros at once.
pub fn upcall_register_probe(flags: u64) -> UpcallProbe {
    crate::arch::upcall_register_probe(flags)
}
