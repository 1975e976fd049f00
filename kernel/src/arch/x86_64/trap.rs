//! Trap entry: one 16-byte stub per vector pushes the vector number (and a
//! zero where the CPU pushes no error code), then `trap_entry` saves every
//! general-purpose register into a [`TrapFrame`] on the current stack and
//! calls [`trap_dispatch`], the single safe Rust handler.
//!
//! `trap_dispatch` returns the frame to resume, so a later scheduler can
//! switch threads by returning another thread's saved frame.

use core::arch::global_asm;

use super::syscall::{self, SYSCALL_VECTOR};
use super::system::{self, Event};
use super::{ioapic, lapic};

/// Vector of the local APIC timer (above the remapped, masked PIC range 0x20-0x2f).
pub const TIMER_VECTOR: u8 = 0x40;
/// Vector of the IPI one CPU sends another (`smp::kick`): enter the kernel
/// (serving a stall request on the way) and pick a thread if idle.
pub const KICK_VECTOR: u8 = 0x41;
/// Vector of the IPI that wakes a CPU halted waiting for the kernel lock
/// (kernel_lock.rs). The highest priority class: such a CPU masks every
/// lower one (task priority), so no other interrupt is taken while it
/// waits; they stay pending until it leaves the kernel.
pub const WAKE_VECTOR: u8 = 0xf0;
/// The vector a frame is given once the core set every register of it
/// (an upcall's entry or return, ABI.md §6.10): not a SYSCALL's, so it
/// returns through IRETQ, which restores RCX and R11 as well. No interrupt
/// has this number (vectors end at 0xFF).
pub const RESTORED_VECTOR: u64 = 0x101;
/// Vector of the local APIC's spurious interrupt (low nibble all ones, as
/// older APICs require).
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// The registers saved on trap entry, in the order `trap_entry` pushes them,
/// followed by what the stub and the CPU pushed.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TrapFrame {
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
    /// Pushed by the stub.
    pub vector: u64,
    /// Pushed by the CPU for vectors 8, 10-14, 17, 21, 29, 30; zero otherwise.
    pub error_code: u64,
    // The CPU's interrupt frame (always all five fields in 64-bit mode).
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Whether the trap came from ring 3.
    pub fn is_from_user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

// The stubs: `trap_stubs + 16 * vector` is the handler of `vector`.
// Vectors 8, 10-14, 17, 21, 29 and 30 get an error code from the CPU (Intel
// SDM vol. 3, table 6-1); the others push a zero so the frame has one shape.
// On entry from ring 3 the user GS base is swapped out for the kernel's
// (SWAPGS) so that per-CPU data is reachable; CS in the CPU frame tells which.
// An entry from ring 3 also clears RFLAGS.AC (bit 18), which user code may
// have set and interrupt delivery keeps (SDM vol. 3, 6.12.1.3): with AC set,
// SMAP would not apply. PUSHFQ/POPFQ rather than CLAC: CLAC is #UD without
// SMAP, and this machine's nested KVM (PVM) cannot emulate it.
global_asm!(
    r#"
    .section .text
    .p2align 4
    .global trap_stubs
trap_stubs:
    .set vector, 0
    .rept 256
    .p2align 4
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    pushq $vector
    .else
    pushq $0
    pushq $vector
    .endif
    jmp trap_entry
    .set vector, vector + 1
    .endr

trap_entry:
    testb $3, 24(%rsp)
    jz trap_save
    swapgs
    pushfq
    andl $~0x40000, (%rsp)
    popfq
    .global trap_save
trap_save:
    pushq %r15
    pushq %r14
    pushq %r13
    pushq %r12
    pushq %r11
    pushq %r10
    pushq %r9
    pushq %r8
    pushq %rbp
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %rcx
    pushq %rbx
    pushq %rax
    movq %rsp, %rdi
    cld
    call {dispatch}
    .global trap_restore
trap_restore:
    movq %rax, %rsp
    // The kernel lock goes only now, on the stack of the context resumed
    // (kernel_lock.rs): the one left is free for another CPU to resume.
    cmpq $0, %gs:24
    je 4f
    movq $0, %gs:24
    // One locked decrement clears the held bit; what is left are the CPUs
    // halted waiting for the lock, to be woken (kernel_lock.rs).
    lock decq KERNEL_LOCK(%rip)
    jz 4f
    movq %rsp, %rbx
    andq $-16, %rsp
    call {wake}
    movq %rbx, %rsp
4:
    // A frame a SYSCALL made returns through SYSRET when its return
    // address is a user address (SYSRET to a non-canonical RIP would fault
    // in ring 0): RCX and R11 are the RIP and RFLAGS slots, which is what
    // SYSCALL left in them. Anything else (an interrupt, an exception, the
    // kernel's own frames) returns through IRETQ.
    cmpq ${syscall_vector}, 120(%rsp)
    jne 3f
    movq 136(%rsp), %rcx
    movabsq ${user_end}, %r11
    cmpq %r11, %rcx
    jae 3f
    popq %rax
    popq %rbx
    addq $8, %rsp
    popq %rdx
    popq %rsi
    popq %rdi
    popq %rbp
    popq %r8
    popq %r9
    popq %r10
    addq $8, %rsp
    popq %r12
    popq %r13
    popq %r14
    popq %r15
    movq 32(%rsp), %r11
    movq 40(%rsp), %rsp
    swapgs
    sysretq
3:
    popq %rax
    popq %rbx
    popq %rcx
    popq %rdx
    popq %rsi
    popq %rdi
    popq %rbp
    popq %r8
    popq %r9
    popq %r10
    popq %r11
    popq %r12
    popq %r13
    popq %r14
    popq %r15
    testb $3, 24(%rsp)
    jz 2f
    swapgs
2:
    addq $16, %rsp
    iretq
    "#,
    dispatch = sym trap_entry_dispatch,
    wake = sym super::kernel_lock::wake_sleepers,
    syscall_vector = const SYSCALL_VECTOR,
    user_end = const abi::process::USER_END,
    options(att_syntax)
);

unsafe extern "C" {
    /// The first of the 256 trap stubs (each 16 bytes long).
    pub safe static trap_stubs: [u8; 256 * 16];
}

/// The handler address of `vector`.
pub fn stub_address(vector: u8) -> u64 {
    trap_stubs.as_ptr() as u64 + 16 * u64::from(vector)
}

/// Called by `trap_entry` with the saved frame; returns the frame to resume.
///
/// The frame is touched only through short-lived borrows that end before
/// [`system::handle`] runs: it reads the frame into values, and the system
/// later writes the registers of whichever thread resumes (possibly this
/// very frame) through its own pointer. No reference to the frame is alive
/// across that write.
extern "C" fn trap_entry_dispatch(frame: *mut TrapFrame) -> *mut TrapFrame {
    let cpu = syscall::cpu_index();
    // SAFETY: `trap_entry` passes a pointer to the frame it just pushed on
    // the current stack; nothing else refers to it while this borrow lives
    // (it ends before `system::handle` is called).
    let (vector, from_user) = unsafe { ((*frame).vector, (*frame).is_from_user_mode()) };
    let event = match vector {
        SYSCALL_VECTOR => match kernel_core::refusal::screen(&syscall_arguments(frame)) {
            Ok(call) => Event::Syscall(call),
            Err(error) => return refuse(frame, error),
        },
        vector if let Some(line) = ioapic::line_of_vector(vector) => {
            // Masked before the end of interrupt, so that a level-triggered
            // line still asserted cannot come straight back: its driver
            // acknowledges (INTERRUPT_ACK) once it served the device.
            ioapic::set_masked(line, true);
            lapic::end_of_interrupt();
            Event::Interrupt(line)
        }
        vector if vector == u64::from(TIMER_VECTOR) => {
            super::smp::count_tick(cpu);
            lapic::end_of_interrupt();
            if cpu != 0 {
                // An idle application processor has nothing to preempt:
                // it goes back to sleep without the kernel lock (a CPU
                // with work to take is sent a KICK_VECTOR instead).
                if !super::smp::is_busy(cpu as usize) {
                    return frame;
                }
                Event::SecondaryTick
            } else {
                TIMER_TICKS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                Event::Tick
            }
        }
        vector if vector == u64::from(KICK_VECTOR) => {
            lapic::end_of_interrupt();
            Event::Kick
        }
        vector if vector < 32 && from_user && vector != 2 && vector != 18 => {
            // Only a user fault can be an unprivileged SYSCALL (see there).
            // SAFETY: as above; the borrow ends with the call.
            if syscall::completes_unprivileged_syscall(unsafe { &mut *frame }) {
                match kernel_core::refusal::screen(&syscall_arguments(frame)) {
                    Ok(call) => Event::Syscall(call),
                    Err(error) => return refuse(frame, error),
                }
            } else {
                // SAFETY: as above; the fields are copied out.
                let f = unsafe { &*frame };
                let mut fault = UserFault {
                    vector: f.vector,
                    rip: f.rip,
                    error_code: f.error_code,
                    address: 0,
                };
                if vector == PAGE_FAULT_VECTOR {
                    fault.address = x86_64::registers::control::Cr2::read_raw();
                    Event::PageFault(fault)
                } else {
                    Event::UserFault(fault)
                }
            }
        }
        _ => {
            // SAFETY: as above; the borrow ends with the call.
            trap_dispatch(unsafe { &*frame });
            return frame;
        }
    };
    system::handle(frame, event)
}

/// Answers a trap its registers alone refuse (`kernel_core::refusal`):
/// the error goes into the frame and the thread goes on, without the
/// kernel lock or the scheduler: the refusal reads and changes no kernel
/// state, and the trapping thread stays the one to run.
fn refuse(frame: *mut TrapFrame, error: abi::Error) -> *mut TrapFrame {
    let registers = abi::TrapArgs::error(error);
    // SAFETY: `frame` is the trap's saved frame (see `trap_entry_dispatch`);
    // no other reference to it is alive.
    let f = unsafe { &mut *frame };
    f.rax = registers.arg0;
    f.rdi = registers.arg1;
    f.rsi = registers.arg2;
    f.rdx = registers.arg3;
    frame
}

/// The page-fault exception (#PF).
const PAGE_FAULT_VECTOR: u64 = 14;

/// The four trap registers of a SYSCALL frame, copied out.
fn syscall_arguments(frame: *const TrapFrame) -> abi::TrapArgs {
    // SAFETY: `frame` is the trap's saved frame (see `trap_entry_dispatch`);
    // the borrow ends when the registers are copied.
    let f = unsafe { &*frame };
    abi::TrapArgs {
        arg0: f.rax,
        arg1: f.rdi,
        arg2: f.rsi,
        arg3: f.rdx,
    }
}

/// What a user-mode exception reports before its process ends.
#[derive(Debug, Clone, Copy)]
pub struct UserFault {
    /// The exception vector.
    pub vector: u64,
    /// Where it happened.
    pub rip: u64,
    /// The CPU's error code (0 for vectors without one).
    pub error_code: u64,
    /// The address a page fault accessed (CR2), 0 for other exceptions.
    pub address: u64,
}

impl UserFault {
    /// The page fault as the core takes it: the address and the error
    /// code's P, W/R and I/D bits (SDM vol. 3, 4.7).
    pub fn page_fault(&self) -> kernel_core::machine::PageFault {
        kernel_core::machine::PageFault {
            address: self.address,
            present: self.error_code & 1 != 0,
            write: self.error_code & 2 != 0,
            execute: self.error_code & 16 != 0,
        }
    }
}

unsafe extern "C" {
    /// Restores `frame` (pointer in RAX) and returns from the trap.
    fn trap_restore() -> !;
}

/// Leaves the boot stack for good: restores `frame` as if a trap returned to it.
pub fn enter(frame: *mut TrapFrame) -> ! {
    // SAFETY: `frame` is a complete saved context on its own kernel stack
    // (see system::switch); `trap_restore` takes it in RAX and never returns.
    unsafe {
        core::arch::asm!("jmp {restore}", restore = sym trap_restore, in("rax") frame, options(noreturn))
    }
}

/// Number of local APIC timer interrupts taken since boot.
pub static TIMER_TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub(super) fn trap_dispatch(frame: &TrapFrame) {
    match frame.vector as u8 {
        SPURIOUS_VECTOR => {} // no EOI for spurious interrupts (SDM 11.9)
        // It only ends a halt waiting for the kernel lock (or finds it
        // over); taken without the lock, like everything here.
        WAKE_VECTOR => lapic::end_of_interrupt(),
        vector if vector < 32 => fatal_exception(frame),
        vector => {
            kprintln!("unexpected interrupt vector {vector:#x}");
            lapic::end_of_interrupt();
        }
    }
}

/// The architectural name of an exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error (#DE)",
        1 => "debug (#DB)",
        2 => "non-maskable interrupt",
        3 => "breakpoint (#BP)",
        4 => "overflow (#OF)",
        5 => "bound range exceeded (#BR)",
        6 => "invalid opcode (#UD)",
        7 => "device not available (#NM)",
        8 => "double fault (#DF)",
        10 => "invalid TSS (#TS)",
        11 => "segment not present (#NP)",
        12 => "stack-segment fault (#SS)",
        13 => "general protection (#GP)",
        14 => "page fault (#PF)",
        16 => "x87 floating-point error (#MF)",
        17 => "alignment check (#AC)",
        18 => "machine check (#MC)",
        19 => "SIMD floating-point (#XM)",
        20 => "virtualization (#VE)",
        21 => "control protection (#CP)",
        _ => "reserved exception",
    }
}

/// Reports a CPU exception with every register and stops: a kernel bug, or
/// an NMI or machine check. (A user-mode exception ends the faulting
/// process instead; see the dispatch above.)
fn fatal_exception(frame: &TrapFrame) -> ! {
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    if let Some(slot) =
        super::kernel_stack::guard_slot(cr2).filter(|_| matches!(frame.vector, 8 | 14))
    {
        kprintln!(
            "kernel stack overflow: cr2 {cr2:#x} is a guard page below the stack of slot {slot}"
        );
    }
    let f = frame;
    panic!(
        "CPU exception {} {} in {} mode, error code {:#x}\n  rip {:#018x} cs {:#x} rflags {:#x} rsp {:#018x} ss {:#x} cr2 {:#018x}\n  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}\n  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}\n  r13 {:#018x} r14 {:#018x} r15 {:#018x}",
        f.vector,
        exception_name(f.vector),
        if f.is_from_user_mode() {
            "user"
        } else {
            "kernel"
        },
        f.error_code,
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        cr2,
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
    );
}
