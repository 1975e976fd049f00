//! Every line of assembly in userlib: the process entry `_start`, the
//! thread entry, the trap (a wrapper of `abi::trap::invoke`) and `abort`.
//!
//! SysV x86_64 rule these stubs keep: a function is entered with
//! `rsp + 8` a multiple of 16 (the `call` pushed an 8-byte return address
//! onto a 16-byte aligned stack). The kernel starts a thread at its entry
//! with `rsp` itself 16-byte aligned (abi::process), so each stub realigns
//! defensively and enters Rust with a `call`.

use abi::TrapArgs;

/// Executes the trap.
///
/// # Safety
/// As [`abi::trap::invoke`]: the buffer that `args.arg2`/`args.arg3`
/// describe must be memory the caller owns (readable and writable) for the
/// whole call.
#[inline(always)]
pub(crate) unsafe fn trap(args: TrapArgs) -> TrapArgs {
    // SAFETY: the caller upholds `invoke`'s contract (this function's own).
    unsafe { abi::trap::invoke(args) }
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
    start = sym crate::runtime::start,
    thread = sym crate::thread::thread_main,
);

unsafe extern "C" {
    /// The thread entry stub above; never called from Rust, only named.
    fn userlib_thread_start() -> !;
}

/// The address THREAD_CREATE should start a userlib thread at.
pub(crate) fn thread_entry_address() -> u64 {
    (userlib_thread_start as *const ()).expose_provenance() as u64
}
