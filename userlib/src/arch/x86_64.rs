//! Every line of assembly in userlib, and so in every user program: the
//! process entry `_start`, the thread entries, the trap (`syscall`),
//! `abort`, the bounds of the image's writable segment (for
//! `crate::raw`'s checks), and the machine probes test suites use
//! (`crate::probe`, the time-stamp counter).
//!
//! SysV x86_64 rule these stubs keep: a function is entered with
//! `rsp + 8` a multiple of 16 (the `call` pushed an 8-byte return address
//! onto a 16-byte aligned stack). The kernel starts a thread at its entry
//! with `rsp` itself 16-byte aligned (abi::process), so each stub realigns
//! defensively and enters Rust with a `call`.

use abi::TrapArgs;

/// Executes the trap: one `syscall` with arg0-arg3 in rax, rdi, rsi, rdx
/// (abi::trap); the results come back in the same four registers.
///
/// # Safety
/// The kernel reads and writes the buffer `args.arg2`/`args.arg3`
/// describe: it must be memory the caller owns (readable and writable) for
/// the whole call, or memory no Rust code uses; the call may transfer
/// descriptors into or out of the process.
#[inline(always)]
pub(crate) unsafe fn trap(args: TrapArgs) -> TrapArgs {
    let (mut arg0, mut arg1, mut arg2, mut arg3) = (args.arg0, args.arg1, args.arg2, args.arg3);
    // SAFETY: the kernel's SYSCALL contract: it clobbers rcx and r11 (the
    // instruction stores RIP and RFLAGS there), writes the four argument
    // registers and preserves everything else, including the stack; the
    // memory it touches is the buffer the caller vouched for.
    unsafe {
        core::arch::asm!(
            "syscall",
            inout("rax") arg0,
            inout("rdi") arg1,
            inout("rsi") arg2,
            inout("rdx") arg3,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    TrapArgs {
        arg0,
        arg1,
        arg2,
        arg3,
    }
}

unsafe extern "C" {
    /// The first byte of the image's writable segment (`link.ld`).
    static __userlib_data_start: u8;
    /// One past its last byte.
    static __userlib_data_end: u8;
}

/// The image's writable segment (`.data`, `.bss`): the only part of the
/// image the kernel could write through a msgPtr.
pub(crate) fn writable_image() -> core::ops::Range<u64> {
    let start = (&raw const __userlib_data_start).expose_provenance() as u64;
    let end = (&raw const __userlib_data_end).expose_provenance() as u64;
    start..end
}

/// The time-stamp counter.
#[inline(always)]
pub(crate) fn timestamp() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter; the kernel leaves
    // CR4.TSD clear, so it is allowed in ring 3.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Ends the process from a state where no kernel call is possible:
/// `ud2` raises #UD, and the kernel ends a process that faults.
pub(crate) fn abort() -> ! {
    // SAFETY: `ud2` touches no memory and no register; it only faults.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

// `_start`: rdi = argument bytes, rsi = their length, rdx = the number of
// initial descriptors (abi::process); they are already where the SysV
// calling convention wants `runtime::start`'s three arguments. rbp = 0 ends
// frame-pointer walks here; `ud2` stops a return that must never happen.
//
// `userlib_thread_start`: the kernel passes THREAD_CREATE's argument in rdi,
// which is `thread::thread_main`'s first argument.
core::arch::global_asm!(
    ".pushsection .text._start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call {start}",
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
    "",
    ".pushsection .text.userlib_thread_start, \"ax\", @progbits",
    ".global userlib_thread_start",
    ".type userlib_thread_start, @function",
    "userlib_thread_start:",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call {thread}",
    "    ud2",
    ".size userlib_thread_start, . - userlib_thread_start",
    ".popsection",
    "",
    ".pushsection .text.userlib_raw_thread_start, \"ax\", @progbits",
    ".global userlib_raw_thread_start",
    ".type userlib_raw_thread_start, @function",
    "userlib_raw_thread_start:",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    mov rax, [rdi]",
    "    mov rdi, [rdi + 8]",
    "    call rax",
    "    ud2",
    ".size userlib_raw_thread_start, . - userlib_raw_thread_start",
    ".popsection",
    "",
    ".pushsection .text.userlib_upcall_entry, \"ax\", @progbits",
    ".global userlib_upcall_entry",
    ".type userlib_upcall_entry, @function",
    "userlib_upcall_entry:",
    "    and rsp, -16",
    "    call {upcall}",
    "    ud2",
    ".size userlib_upcall_entry, . - userlib_upcall_entry",
    ".popsection",
    start = sym crate::runtime::start,
    thread = sym crate::thread::thread_main,
    upcall = sym crate::upcall::dispatch,
);

// `userlib_upcall_entry`: the kernel enters it with rdi = signal, rsi =
// info, rdx = the frame's address (ABI.md §6.10), already `dispatch`'s
// three arguments; `dispatch` never returns (it sends UPCALL_RETURN).

// `userlib_raw_thread_start`: rdi points at a `thread::RawEntry`
// (function, argument); the stub calls `function(argument)` without
// touching the heap, for threads that must not allocate.

unsafe extern "C" {
    /// The thread entry stub above; never called from Rust, only named.
    fn userlib_thread_start() -> !;
    /// The raw thread entry stub above; only named.
    fn userlib_raw_thread_start() -> !;
    /// The upcall handler stub above; only named.
    fn userlib_upcall_entry() -> !;
}

/// The address UPCALL_REGISTER should name as the handler.
pub(crate) fn upcall_entry_address() -> u64 {
    (userlib_upcall_entry as *const ()).expose_provenance() as u64
}

/// Where the upcall probe writes what it saw (17 words: the registers in
/// `UPCALL_PATTERNS` order, RFLAGS, then RSP before and after).
static UPCALL_PROBE_OUT: [core::sync::atomic::AtomicU64; 18] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 18];

/// See `crate::probe::upcall_register_probe`.
pub(crate) fn upcall_register_probe(flags: u64) -> crate::probe::UpcallProbe {
    use crate::probe::UPCALL_PATTERNS as P;
    let flags = (flags & crate::probe::USER_FLAGS) | 0x2;
    // SAFETY: the block saves and restores rbx and rbp itself (LLVM
    // reserves them), declares every other register it changes, clears DF
    // (cld) before Rust code runs again, keeps the stack balanced, and
    // writes only UPCALL_PROBE_OUT (atomics, through their addresses); it
    // reads UPCALL_PROBE_FLAG, which other threads store to.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "mov qword ptr [rip + {out} + 128], rsp",
            "push r8",
            "popfq",
            "movabs rax, {p0}",
            "movabs rbx, {p1}",
            "movabs rdx, {p3}",
            "movabs rsi, {p4}",
            "movabs rdi, {p5}",
            "movabs rbp, {p6}",
            "movabs r8, {p7}",
            "movabs r9, {p8}",
            "movabs r10, {p9}",
            "movabs r11, {p10}",
            "movabs r12, {p11}",
            "movabs r13, {p12}",
            "movabs r14, {p13}",
            "movabs r15, {p14}",
            "2:",
            "mov rcx, qword ptr [rip + {flag}]",
            "jrcxz 2b",
            "mov qword ptr [rip + {out}], rax",
            "mov qword ptr [rip + {out} + 8], rbx",
            "mov qword ptr [rip + {out} + 16], rcx",
            "mov qword ptr [rip + {out} + 24], rdx",
            "mov qword ptr [rip + {out} + 32], rsi",
            "mov qword ptr [rip + {out} + 40], rdi",
            "mov qword ptr [rip + {out} + 48], rbp",
            "mov qword ptr [rip + {out} + 56], r8",
            "mov qword ptr [rip + {out} + 64], r9",
            "mov qword ptr [rip + {out} + 72], r10",
            "mov qword ptr [rip + {out} + 80], r11",
            "mov qword ptr [rip + {out} + 88], r12",
            "mov qword ptr [rip + {out} + 96], r13",
            "mov qword ptr [rip + {out} + 104], r14",
            "mov qword ptr [rip + {out} + 112], r15",
            "pushfq",
            "pop qword ptr [rip + {out} + 120]",
            "mov qword ptr [rip + {out} + 136], rsp",
            "cld",
            "pop rbp",
            "pop rbx",
            out = sym UPCALL_PROBE_OUT,
            flag = sym crate::probe::UPCALL_PROBE_FLAG,
            p0 = const P[0],
            p1 = const P[1],
            p3 = const P[3],
            p4 = const P[4],
            p5 = const P[5],
            p6 = const P[6],
            p7 = const P[7],
            p8 = const P[8],
            p9 = const P[9],
            p10 = const P[10],
            p11 = const P[11],
            p12 = const P[12],
            p13 = const P[13],
            p14 = const P[14],
            inout("r8") flags => _,
            out("rax") _,
            out("rcx") _,
            out("rdx") _,
            out("rsi") _,
            out("rdi") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
        );
    }
    let word = |i: usize| UPCALL_PROBE_OUT[i].load(core::sync::atomic::Ordering::Acquire);
    let mut after = [0u64; 15];
    for (i, slot) in after.iter_mut().enumerate() {
        *slot = word(i);
    }
    crate::probe::UpcallProbe {
        after,
        flags: word(15),
        stack: [word(16), word(17)],
    }
}

/// The address THREAD_CREATE should start a raw thread at.
pub(crate) fn raw_thread_entry_address() -> u64 {
    (userlib_raw_thread_start as *const ()).expose_provenance() as u64
}

/// Loads [`PATTERNS`] and, with `set_flags`, the [`crate::probe::USER_FLAGS`] (else clears
/// them), then traps with `arg0 = -1` (INVALID_FUNCTION: no memory is
/// touched) and records what came back.
pub(crate) fn register_probe(set_flags: bool) -> crate::probe::RegisterProbe {
    let mut out = [0u64; 12];
    let (mut rax, mut rdi, mut rsi, mut rdx) = (0xffff_ffffu64, 0u64, 0u64, 0u64);
    let flags: u64 = if set_flags {
        crate::probe::USER_FLAGS | 0x2
    } else {
        0x2
    };
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
            p0 = const crate::probe::PATTERNS[0],
            p1 = const crate::probe::PATTERNS[1],
            p2 = const crate::probe::PATTERNS[2],
            p3 = const crate::probe::PATTERNS[3],
            p4 = const crate::probe::PATTERNS[4],
            p5 = const crate::probe::PATTERNS[5],
            p6 = const crate::probe::PATTERNS[6],
            p7 = const crate::probe::PATTERNS[7],
            p8 = const crate::probe::PATTERNS[8],
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
    crate::probe::RegisterProbe {
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

/// Loads `state` into XMM0 (low 64 bits, the rest zero), the x87 control
/// word and MXCSR.
pub(crate) fn set_fpu_probe(state: crate::probe::FpuProbe) {
    let words: [u32; 2] = [u32::from(state.fcw), state.mxcsr];
    // SAFETY: reads `words` (8 bytes on our stack) and changes XMM0, the
    // x87 control word and MXCSR, which the block declares or which no
    // Rust code of this soft-float target uses.
    unsafe {
        core::arch::asm!(
            "movq xmm0, {xmm}",
            "fldcw [{words}]",
            "ldmxcsr [{words} + 4]",
            xmm = in(reg) state.xmm0,
            words = in(reg) words.as_ptr(),
            out("xmm0") _,
            options(nostack, preserves_flags, readonly),
        )
    }
}

/// Reads XMM0's low 64 bits, the x87 control word and MXCSR.
pub(crate) fn fpu_probe() -> crate::probe::FpuProbe {
    let mut words = [0u32; 2];
    let xmm0: u64;
    // SAFETY: writes `words` (8 bytes on our stack) and a general register;
    // reads XMM0 (declared, so Rust keeps nothing there across the block).
    unsafe {
        core::arch::asm!(
            "movq {xmm}, xmm0",
            "fnstcw [{words}]",
            "stmxcsr [{words} + 4]",
            xmm = out(reg) xmm0,
            words = in(reg) words.as_mut_ptr(),
            out("xmm0") _,
            options(nostack, preserves_flags),
        )
    }
    crate::probe::FpuProbe {
        xmm0,
        fcw: words[0] as u16,
        mxcsr: words[1],
    }
}

/// `int 0x80`: a software interrupt (not a way into this kernel).
pub(crate) fn software_interrupt() {
    // SAFETY: a software interrupt touches no memory of ours; if a kernel
    // handled it and returned, it may have changed any caller-saved
    // register, which `clobber_abi` declares.
    unsafe { core::arch::asm!("int 0x80", clobber_abi("C")) }
}

/// `in al, dx`: a byte from I/O port `port`. Faults (and so ends the
/// process) unless the kernel granted the port (IO_PORT_GRANT).
pub(crate) fn port_read_u8(port: u16) -> u8 {
    let value: u8;
    // SAFETY: `in` touches no memory; without the port's grant the CPU
    // raises #GP and the kernel ends the process.
    unsafe {
        core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// `out dx, al`: a byte to I/O port `port` (faults like [`port_read_u8`]).
pub(crate) fn port_write_u8(port: u16, value: u8) {
    // SAFETY: as in `port_read_u8`.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// `ud2`: an invalid-opcode exception.
pub(crate) fn invalid_opcode() -> ! {
    abort()
}

/// The address THREAD_CREATE should start a userlib thread at.
pub(crate) fn thread_entry_address() -> u64 {
    (userlib_thread_start as *const ()).expose_provenance() as u64
}
