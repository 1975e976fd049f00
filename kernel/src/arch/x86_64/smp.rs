//! Application processors: starting them on either boot path (Limine's MP
//! response: write each parked CPU's `goto_address`; PVH: INIT-SIPI-SIPI
//! from the MADT into a real-mode trampoline page below 1 MiB), each one's
//! own setup (GDT/TSS and IST stacks, per-CPU block, IDT, LAPIC and its
//! timer) and the idle loop it then runs, halted between interrupts.
//!
//! It must never let an application processor into the kernel core: until
//! the kernel runs under a lock every CPU takes (ABI.md §6.9), the only
//! trap an application processor handles is its own timer tick, counted
//! here ([`ap_trap`]), and everything else on it is a kernel bug.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::acpi::Processor;
use super::trap::{SPURIOUS_VECTOR, TIMER_TICKS, TIMER_VECTOR, TrapFrame};
use super::{cpu, fpu, gdt, idt, kernel_stack, lapic, memory, syscall};

/// The most CPUs the kernel keeps track of (the boot CPU included); more
/// are left offline, with a line in the boot log.
pub const MAX_CPUS: usize = 64;

/// The physical page the trampoline is copied to: below 1 MiB (a STARTUP
/// IPI names a page there), in conventional memory that the frame
/// allocator never hands out (`LOW_MEMORY_FLOOR`) and that holds nothing
/// once the boot paths have copied out their loader's structures.
const TRAMPOLINE_PAGE: u8 = 0x08;
const TRAMPOLINE_ADDRESS: u64 = (TRAMPOLINE_PAGE as u64) << 12;
/// Where in the trampoline page the PML4 it enters long mode with is
/// written (a 32-bit physical address; see the `ap_trampoline_tables` label).
const TRAMPOLINE_TABLES_OFFSET: u64 = 0xff8;

/// Online CPUs, the boot CPU included.
static ONLINE: AtomicU32 = AtomicU32::new(1);

/// Timer interrupts taken by each CPU, by index.
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

// What the next application processor starts with, read by `ap_enter`.
// One set, since processors are started one at a time: the boot CPU
// writes them, starts one processor and waits until it is online (it has
// read them by then) before the next.
#[unsafe(no_mangle)]
static AP_LAUNCH_CR3: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static AP_LAUNCH_STACK: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static AP_LAUNCH_INDEX: AtomicU64 = AtomicU64::new(0);

/// How many CPUs are online.
pub fn online() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

/// Timer interrupts CPU `index` has taken so far.
pub fn ticks(index: usize) -> u64 {
    TICKS.get(index).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Counts a timer interrupt on CPU `index`.
pub fn count_tick(index: u64) {
    if let Some(ticks) = TICKS.get(index as usize) {
        ticks.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the processors to start come from.
pub enum Processors<'a> {
    /// Limine's MP response: processors parked by the loader.
    Limine(&'static [&'static limine::mp::Cpu], u32),
    /// The MADT's processors (PVH): started here with INIT-SIPI-SIPI.
    Madt(&'a [Processor]),
}

/// Starts every other processor, one at a time, and returns how many CPUs
/// are online. A processor that does not come up within a second is
/// reported and left alone.
pub fn start_application_processors(processors: Processors<'_>) -> u32 {
    let Some(pml4) = memory::kernel_pml4() else {
        return online();
    };
    AP_LAUNCH_CR3.store(pml4.start_address().as_u64(), Ordering::Relaxed);
    let boot_apic_id = lapic::id();
    match processors {
        Processors::Limine(cpus, bsp_lapic_id) => {
            for cpu in cpus.iter().filter(|cpu| cpu.lapic_id != bsp_lapic_id) {
                let Some(index) = prepare_launch(cpu.lapic_id) else {
                    break;
                };
                // The parked processor jumps to `ap_enter` at once; the write
                // orders the launch values before it.
                cpu.goto_address.write(ap_enter);
                wait_online(index, cpu.lapic_id, 100);
            }
        }
        Processors::Madt(processors) => {
            install_trampoline();
            for processor in processors
                .iter()
                .filter(|p| p.usable && p.apic_id != boot_apic_id)
            {
                let Some(index) = prepare_launch(processor.apic_id) else {
                    break;
                };
                // SDM vol. 3, 9.4.4.1: INIT, 10 ms, STARTUP, and a second
                // STARTUP if the first was missed (one already started
                // ignores it: it no longer waits for one).
                lapic::send_init(processor.apic_id);
                wait_ticks(1);
                lapic::send_startup(processor.apic_id, TRAMPOLINE_PAGE);
                if !wait_online(index, processor.apic_id, 0) {
                    wait_ticks(1);
                    lapic::send_startup(processor.apic_id, TRAMPOLINE_PAGE);
                    if !wait_online(index, processor.apic_id, 100) {
                        kprintln!("cpu {index} (apic id {}) did not start", processor.apic_id);
                    }
                }
            }
        }
    }
    online()
}

/// Allocates the next processor's stack and index; `None` (logged) when
/// there is no room for another CPU.
fn prepare_launch(apic_id: u32) -> Option<u64> {
    let index = u64::from(online());
    if index as usize >= MAX_CPUS {
        kprintln!("cpu with apic id {apic_id} left offline: at most {MAX_CPUS} CPUs");
        return None;
    }
    let stack = match kernel_stack::KernelStack::allocate() {
        Ok(stack) => stack,
        Err(error) => {
            kprintln!("cpu with apic id {apic_id} left offline: no stack ({error:?})");
            return None;
        }
    };
    AP_LAUNCH_STACK.store(stack.top(), Ordering::Relaxed);
    AP_LAUNCH_INDEX.store(index, Ordering::Relaxed);
    // The stack is the processor's for good: its idle loop runs on it.
    core::mem::forget(stack);
    core::sync::atomic::fence(Ordering::SeqCst);
    Some(index)
}

/// Waits (halted between timer ticks) until CPU `index` is online, at most
/// `ticks` more ticks after the current one; whether it came.
fn wait_online(index: u64, apic_id: u32, ticks: u64) -> bool {
    let deadline = TIMER_TICKS.load(Ordering::Relaxed) + ticks + 1;
    while u64::from(online()) <= index {
        if TIMER_TICKS.load(Ordering::Relaxed) >= deadline {
            if ticks > 0 {
                kprintln!("cpu {index} (apic id {apic_id}) did not come online");
            }
            return false;
        }
        cpu::wait_for_interrupt();
    }
    true
}

/// Waits until at least `count` whole timer periods have passed.
fn wait_ticks(count: u64) {
    let deadline = TIMER_TICKS.load(Ordering::Relaxed) + count + 1;
    while TIMER_TICKS.load(Ordering::Relaxed) < deadline {
        cpu::wait_for_interrupt();
    }
}

/// Copies the trampoline to its page and writes the tables it uses.
fn install_trampoline() {
    let code = ap_trampoline_code();
    if code.len() > TRAMPOLINE_TABLES_OFFSET as usize {
        cpu::fatal(format_args!("the AP trampoline overlaps its tables' slot"));
    }
    let page = memory::direct_map(TRAMPOLINE_ADDRESS) as *mut u8;
    let tables = super::boot::pvh_entry::boot_tables_physical() as u32;
    // SAFETY: the trampoline page is conventional memory below 1 MiB that
    // nothing else uses (see TRAMPOLINE_PAGE), mapped by the direct map;
    // the code is shorter than the offset of the tables' slot (checked
    // above).
    unsafe {
        core::ptr::copy_nonoverlapping(code.as_ptr(), page, code.len());
        core::ptr::write_volatile(
            page.add(TRAMPOLINE_TABLES_OFFSET as usize) as *mut u32,
            tables,
        );
    }
}

fn ap_trampoline_code() -> &'static [u8] {
    // Taking the addresses of extern statics is safe; the bytes between
    // them are the assembled trampoline in .rodata.
    let start = &raw const ap_trampoline_start;
    let end = &raw const ap_trampoline_end;
    let len = end as usize - start as usize;
    // SAFETY: both labels delimit the trampoline's bytes, which are
    // read-only data for the kernel's lifetime.
    unsafe { core::slice::from_raw_parts(start, len) }
}

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    /// The 64-bit entry of every application processor (see the assembly).
    fn ap_enter(cpu: &limine::mp::Cpu) -> !;
}

// The trampoline, assembled here and copied to TRAMPOLINE_ADDRESS before
// use (every address in it is `TRAMPOLINE_ADDRESS + label - start`): a
// STARTUP IPI starts the processor in real mode at its first byte. It
// loads its own GDT, enters protected mode, then long mode with the PVH
// stub's tables (which map this page one to one and the kernel image at
// its link address), and jumps to `ap_enter` in the higher half.
//
// `ap_enter` (Limine's processors jump there directly, with the loader's
// tables, which also map the kernel image) turns on NXE, which the
// kernel's tables need, loads them, takes the stack the boot CPU
// allocated and calls `ap_main` with the processor's index.
global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .global ap_trampoline_start
    .global ap_trampoline_end
    .code16
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl ({base} + ap_trampoline_gdt_pointer - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, ${base} + ap_trampoline_32 - ap_trampoline_start

    .code32
ap_trampoline_32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax                 /* PAE */
    orl $0x20, %eax
    movl %eax, %cr4
    movl ({base} + {tables_offset}), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx          /* EFER: LME and NXE */
    rdmsr
    orl $0x900, %eax
    wrmsr
    movl %cr0, %eax                 /* PG, WP, PE */
    orl $0x80010001, %eax
    movl %eax, %cr0
    ljmpl $0x18, ${base} + ap_trampoline_64 - ap_trampoline_start

    .code64
ap_trampoline_64:
    movabsq $ap_enter, %rax
    jmpq *%rax

    .p2align 3
ap_trampoline_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08: 32-bit ring-0 code */
    .quad 0x00cf92000000ffff        /* 0x10: ring-0 data */
    .quad 0x00af9a000000ffff        /* 0x18: 64-bit ring-0 code */
ap_trampoline_gdt_pointer:
    .word ap_trampoline_gdt_pointer - ap_trampoline_gdt - 1
    .long {base} + ap_trampoline_gdt - ap_trampoline_start
ap_trampoline_end:

    .section .text
    .global ap_enter
ap_enter:
    cli
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x800, %eax
    wrmsr
    movq AP_LAUNCH_CR3(%rip), %rax
    movq %rax, %cr3
    movq AP_LAUNCH_STACK(%rip), %rsp
    movq AP_LAUNCH_INDEX(%rip), %rdi
    xorl %ebp, %ebp
    call {ap_main}
    ud2
    "#,
    base = const TRAMPOLINE_ADDRESS,
    tables_offset = const TRAMPOLINE_TABLES_OFFSET,
    ap_main = sym ap_main,
    options(att_syntax)
);

/// An application processor's setup on its own stack, then its idle loop.
extern "C" fn ap_main(index: u64) -> ! {
    cpu::enable_paging_features();
    gdt::init_ap();
    // GS before the IDT: the trap path reads the CPU's index through GS.
    syscall::init_ap(index);
    idt::load();
    fpu::enable();
    cpu::enable_user_memory_protections();
    lapic::enable();
    lapic::start_timer_like_boot_cpu();
    kprintln!("cpu {index} online (apic id {})", lapic::id());
    ONLINE.fetch_add(1, Ordering::Release);
    cpu::idle_loop()
}

/// A trap on an application processor (`index` > 0): its timer is
/// counted, a spurious interrupt ignored; anything else stops the kernel
/// (no user thread runs here yet, so it is a kernel bug).
pub fn ap_trap(index: u64, frame: *mut TrapFrame) -> *mut TrapFrame {
    // SAFETY: the frame the trap stub just pushed on this CPU's stack; the
    // borrow ends here.
    let vector = unsafe { (*frame).vector };
    match vector {
        v if v == u64::from(TIMER_VECTOR) => {
            count_tick(index);
            lapic::end_of_interrupt();
        }
        v if v == u64::from(SPURIOUS_VECTOR) => {}
        // SAFETY: as above.
        _ => super::trap::trap_dispatch(unsafe { &*frame }),
    }
    frame
}
