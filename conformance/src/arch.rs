//! Every line of assembly in the suite, for what a message cannot express:
//! which registers a trap preserves (ABI.md §1), whether a software
//! interrupt is a way into the kernel (§9 D12), a CPU exception on demand
//! (§7), and the entry of a thread at a priority other than userlib's
//! default (the runner's sentinel).
//!
//! SysV x86_64 rule the thread entry keeps: a function is entered with
//! `rsp + 8` a multiple of 16; the kernel starts a thread with `rsp` itself
//! 16-byte aligned (ABI.md §7), so the stub enters Rust with a `call`.
//!
//! On the host (where nothing runs) the functions are stand-ins that only
//! keep the crate building.

use abi::TrapArgs;

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
core::arch::global_asm!(
    ".pushsection .text.conformance_sentinel_start, \"ax\", @progbits",
    ".global conformance_sentinel_start",
    ".type conformance_sentinel_start, @function",
    "conformance_sentinel_start:",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call {sentinel}",
    "    ud2",
    ".size conformance_sentinel_start, . - conformance_sentinel_start",
    ".popsection",
    sentinel = sym crate::runner::sentinel_main,
);

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
unsafe extern "C" {
    /// The stub above; only its address is used.
    fn conformance_sentinel_start() -> !;
}

/// The address THREAD_CREATE starts the sentinel at.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn sentinel_entry() -> u64 {
    (conformance_sentinel_start as *const ()).expose_provenance() as u64
}

/// The registers a trap must preserve, in [`RegisterProbe`] order.
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

/// Host stand-in: nothing to probe.
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
pub fn register_probe(_set_flags: bool) -> RegisterProbe {
    RegisterProbe::default()
}

/// Loads [`PATTERNS`] and, with `set_flags`, the [`USER_FLAGS`] (else clears
/// them), then traps with `arg0 = -1` (INVALID_FUNCTION: no memory is
/// touched) and records what came back.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn register_probe(set_flags: bool) -> RegisterProbe {
    let mut out = [0u64; 12];
    let (mut rax, mut rdi, mut rsi, mut rdx) = (0xffff_ffffu64, 0u64, 0u64, 0u64);
    let flags: u64 = if set_flags { USER_FLAGS | 0x2 } else { 0x2 };
    // SAFETY: the block saves and restores rbx and rbp itself (LLVM
    // reserves them), declares every other register it changes, leaves DF
    // clear (cld) before Rust code runs again, keeps the stack balanced, and
    // writes only `out` (through rcx). The trap touches no memory (arg0 = -1
    // fails before any buffer is looked at).
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "push rcx",
            "mov [rcx + 80], rsp",
            "push r8",
            "popfq",
            "movabs rbx, {p0}",
            "movabs rbp, {p1}",
            "movabs r8, {p2}",
            "movabs r9, {p3}",
            "movabs r10, {p4}",
            "movabs r12, {p5}",
            "movabs r13, {p6}",
            "movabs r14, {p7}",
            "movabs r15, {p8}",
            "syscall",
            "pushfq",
            "cld",
            "mov rcx, [rsp + 8]",
            "pop qword ptr [rcx + 72]",
            "mov [rcx + 88], rsp",
            "mov [rcx], rbx",
            "mov [rcx + 8], rbp",
            "mov [rcx + 16], r8",
            "mov [rcx + 24], r9",
            "mov [rcx + 32], r10",
            "mov [rcx + 40], r12",
            "mov [rcx + 48], r13",
            "mov [rcx + 56], r14",
            "mov [rcx + 64], r15",
            "add rsp, 8",
            "pop rbp",
            "pop rbx",
            p0 = const PATTERNS[0],
            p1 = const PATTERNS[1],
            p2 = const PATTERNS[2],
            p3 = const PATTERNS[3],
            p4 = const PATTERNS[4],
            p5 = const PATTERNS[5],
            p6 = const PATTERNS[6],
            p7 = const PATTERNS[7],
            p8 = const PATTERNS[8],
            inout("rcx") out.as_mut_ptr() => _,
            inout("r8") flags => _,
            inout("rax") rax,
            inout("rdi") rdi,
            inout("rsi") rsi,
            inout("rdx") rdx,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
        );
    }
    let mut after = [0u64; 9];
    after.copy_from_slice(&out[..9]);
    RegisterProbe {
        after,
        flags: out[9],
        stack: [out[10], out[11]],
        result: TrapArgs {
            arg0: rax,
            arg1: rdi,
            arg2: rsi,
            arg3: rdx,
        },
    }
}

/// `int 0x80`. ABI.md §9 D12: there is no such way into the kernel, so the
/// CPU raises an exception and the process ends (§7); this returns only if
/// a kernel let it through.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn software_interrupt() {
    // SAFETY: a software interrupt touches no memory of ours; if a kernel
    // handled it and returned, it may have changed any caller-saved
    // register, which `clobber_abi` declares.
    unsafe { core::arch::asm!("int 0x80", clobber_abi("C")) }
}

/// `ud2`: an invalid-opcode exception, which ends the process (§7).
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn invalid_opcode() -> ! {
    // SAFETY: `ud2` touches no memory and no register; it only faults.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Host stand-in.
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
pub fn software_interrupt() {}

/// Host stand-in: ends the (host) process.
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
pub fn invalid_opcode() -> ! {
    userlib::kernel::process_exit(1)
}
