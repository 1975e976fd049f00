//! The SYSCALL entry and the per-CPU block it needs.
//!
//! SYSCALL (Intel SDM vol. 2B) loads CS/SS from IA32_STAR, RIP from
//! IA32_LSTAR, saves the user RIP in RCX and RFLAGS in R11, and clears the
//! RFLAGS bits set in IA32_FMASK. It does not switch stacks: the stub swaps
//! in the kernel GS base (SWAPGS), parks the user RSP in the per-CPU block,
//! loads the current thread's kernel stack from it, and builds the same
//! `TrapFrame` an interrupt would, so one exit path (`iretq`) and one
//! context-switch mechanism serve both.

use core::arch::global_asm;
use core::cell::UnsafeCell;

use x86_64::VirtAddr;
use x86_64::registers::model_specific::{
    Efer, EferFlags, GsBase, KernelGsBase, LStar, SFMask, Star,
};
use x86_64::registers::rflags::RFlags;

use super::gdt;
use super::trap::TrapFrame;

/// `TrapFrame::vector` of a frame built by the SYSCALL stub (no real vector is this large).
pub const SYSCALL_VECTOR: u64 = 0x100;

/// The per-CPU block GS points at in kernel mode. The stubs and the
/// functions below reach its fields by offset, so their order is fixed.
#[repr(C)]
pub struct PerCpu {
    /// Offset 0: the top of the current thread's kernel stack.
    kernel_stack_top: UnsafeCell<u64>,
    /// Offset 8: the user RSP during SYSCALL entry.
    user_stack_scratch: UnsafeCell<u64>,
    /// Offset 16: which CPU this is (0: the boot CPU; application
    /// processors in the order they were started). Written once, before
    /// GS points here.
    index: u64,
    /// Offset 24: non-zero while this CPU holds the kernel lock;
    /// `trap_restore` lets the lock go when it finds it set.
    holds_lock: UnsafeCell<u64>,
    /// Offset 32: where this CPU's TSS keeps RSP0 (`gdt::kernel_stack_slot`),
    /// set before GS points here.
    tss_rsp0: UnsafeCell<*mut u64>,
}

// SAFETY: each CPU touches only its own block, with interrupts disabled.
unsafe impl Sync for PerCpu {}

static BOOT_CPU: PerCpu = PerCpu {
    kernel_stack_top: UnsafeCell::new(0),
    user_stack_scratch: UnsafeCell::new(0),
    index: 0,
    holds_lock: UnsafeCell::new(0),
    tss_rsp0: UnsafeCell::new(core::ptr::null_mut()),
};

/// The index of the CPU running this (0 for the boot CPU), read from the
/// per-CPU block in one instruction.
///
/// Valid in kernel mode once [`init`] (or [`init_ap`]) ran on this CPU:
/// every kernel entry from ring 3 swaps the kernel GS base in first, and
/// kernel code never swaps it back before its exit.
#[inline]
pub fn cpu_index() -> u64 {
    let index: u64;
    // SAFETY: GS points at this CPU's `PerCpu` (see above); offset 16 is
    // its `index`, which never changes after the block is published.
    unsafe {
        core::arch::asm!("mov {}, gs:[16]", out(reg) index, options(nostack, preserves_flags, readonly))
    };
    index
}

/// Sets the kernel stack SYSCALL and ring-3 interrupts switch to, on this
/// CPU: the block's `kernel_stack_top` and the TSS's RSP0.
#[inline]
pub fn set_kernel_stack(top: u64) {
    // SAFETY: GS points at this CPU's own block (see `cpu_index`), which
    // only this CPU uses, and not concurrently: the kernel runs with
    // interrupts disabled. Offset 0 is `kernel_stack_top`, offset 32 the
    // address of this CPU's TSS.RSP0 (set by `init_with`; the CPU reads it
    // only on a ring change; an unaligned store is fine on x86).
    unsafe {
        core::arch::asm!(
            "mov gs:[0], {top}",
            "mov {slot}, gs:[32]",
            "mov [{slot}], {top}",
            top = in(reg) top,
            slot = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
}

/// Records whether this CPU holds the kernel lock (`kernel_lock.rs`).
pub fn set_holds_lock(holds: bool) {
    let value = u64::from(holds);
    // SAFETY: as in `set_kernel_stack`; offset 24 is `holds_lock`.
    unsafe {
        core::arch::asm!("mov gs:[24], {}", in(reg) value, options(nostack, preserves_flags))
    };
}

/// Enables SYSCALL/SYSRET and points GS at the boot CPU's per-CPU block.
pub fn init() {
    init_with(&BOOT_CPU);
}

/// Enables SYSCALL/SYSRET on application processor `index` and points GS
/// at a per-CPU block of its own (allocated here and kept for good).
pub fn init_ap(index: u64) {
    let block: &'static PerCpu = alloc::boxed::Box::leak(alloc::boxed::Box::new(PerCpu {
        kernel_stack_top: UnsafeCell::new(0),
        user_stack_scratch: UnsafeCell::new(0),
        index,
        holds_lock: UnsafeCell::new(0),
        tss_rsp0: UnsafeCell::new(core::ptr::null_mut()),
    }));
    init_with(block);
}

fn init_with(block: &'static PerCpu) {
    // SAFETY: GS does not point at the block yet, so nothing else reads
    // it; this CPU's GDT and TSS are loaded (gdt::init runs first).
    unsafe { *block.tss_rsp0.get() = gdt::kernel_stack_slot(block.index) };
    let fmask = RFlags::INTERRUPT_FLAG // the kernel runs with interrupts off
        | RFlags::TRAP_FLAG            // no single-stepping into the kernel
        | RFlags::DIRECTION_FLAG       // the ABI wants DF clear
        | RFlags::ALIGNMENT_CHECK      // no AC surprises on kernel accesses
        | RFlags::NESTED_TASK; // IRETQ with NT set would #GP
    // SAFETY: STAR's selectors are the GDT's (see gdt.rs for the SYSRET
    // ordering); LSTAR is our stub; GS base is our per-CPU block while in the
    // kernel, the user's (0) in KERNEL_GS_BASE until the first SWAPGS.
    unsafe {
        Star::write(
            gdt::USER_CODE,
            gdt::USER_DATA,
            gdt::KERNEL_CODE,
            gdt::KERNEL_DATA,
        )
        .unwrap_or_else(|_| panic!("GDT order does not suit SYSCALL/SYSRET"));
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(fmask);
        GsBase::write(VirtAddr::from_ptr(block));
        KernelGsBase::write(VirtAddr::new(0));
        Efer::update(|flags| *flags |= EferFlags::SYSTEM_CALL_EXTENSIONS);
    }
}

unsafe extern "C" {
    fn syscall_entry();
}

/// RFLAGS bits a user thread may hold (CF PF AF ZF SF TF DF OF AC ID and the
/// reserved bit 1); IF is always set on return to user mode.
const USER_RFLAGS_MASK: u64 = 0x0025_0dd7;

/// Completes a SYSCALL that a hypervisor left unprivileged.
///
/// This machine's nested KVM (PVM) executes a guest user's SYSCALL without
/// the switch to ring 0: RCX and R11 get the return RIP and RFLAGS, FMASK is
/// applied and RIP becomes LSTAR, but CPL stays 3, so the first instruction
/// of `syscall_entry` faults as a user-mode fetch of a supervisor page. That
/// fault frame holds every user register, so the call is finished here: the
/// frame is turned into the one the stub would have built (return to RCX
/// with the flags from R11) and handled as a system call. A user program
/// that jumps to LSTAR on purpose gains nothing a SYSCALL would not give it,
/// as long as the return address is a user address: a real SYSCALL always
/// sets RCX to one, while a jump sets any RCX, and IRETQ to a non-canonical
/// RIP would fault in ring 0. Such a frame is left a user fault.
pub fn completes_unprivileged_syscall(frame: &mut TrapFrame) -> bool {
    const PAGE_FAULT: u64 = 14;
    // Present, user mode, instruction fetch.
    const USER_FETCH_OF_SUPERVISOR_PAGE: u64 = 0b1_0101;
    let is_it = frame.vector == PAGE_FAULT
        && frame.is_from_user_mode()
        && frame.rip == syscall_entry as *const () as u64
        && frame.error_code & USER_FETCH_OF_SUPERVISOR_PAGE == USER_FETCH_OF_SUPERVISOR_PAGE
        && frame.rcx < abi::process::USER_END;
    if is_it {
        frame.vector = SYSCALL_VECTOR;
        frame.error_code = 0;
        frame.rip = frame.rcx;
        frame.rflags = (frame.r11 & USER_RFLAGS_MASK) | RFlags::INTERRUPT_FLAG.bits();
    }
    is_it
}

global_asm!(
    r#"
    .section .text
    .global syscall_entry
syscall_entry:
    swapgs
    movq %rsp, %gs:8
    movq %gs:0, %rsp
    pushq ${user_data}
    pushq %gs:8
    pushq %r11
    pushq ${user_code}
    pushq %rcx
    pushq $0
    pushq ${vector}
    jmp trap_save
    "#,
    user_data = const gdt::USER_DATA.0 as u64,
    user_code = const gdt::USER_CODE.0 as u64,
    vector = const SYSCALL_VECTOR,
    options(att_syntax)
);
