//! Application processors: starting them on either boot path (Limine's MP
//! response: write each parked CPU's `goto_address`; PVH: INIT-SIPI-SIPI
//! from the MADT into a real-mode trampoline page below 1 MiB), each one's
//! own setup (GDT/TSS and IST stacks, per-CPU block, IDT, LAPIC and its
//! timer) and the idle loop it then runs, halted between interrupts.
//!
//! Once user space runs, every CPU runs user threads under the kernel
//! lock (`kernel_lock.rs`, ABI.md §6.9); this file keeps what each CPU's
//! peers need to know without that lock: its APIC ID (to interrupt it),
//! whether it runs a thread or idles, and its dispatch count. It must
//! never let an application processor into the kernel core without the
//! lock: before user space starts, the only trap an application processor
//! handles is its own timer tick (`trap.rs`: an idle CPU's tick never
//! takes the lock).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::acpi::Processor;
use super::trap::{KICK_VECTOR, TIMER_TICKS, WAKE_VECTOR};
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

/// Each CPU's local APIC ID, by index (written before it comes online).
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Bit `i` set while CPU `i` runs a user thread (clear: its idle loop).
/// Written by the CPU itself under the kernel lock; read without it by
/// its timer (an idle CPU's tick never takes the lock) and by the lock
/// holder. One word, so that "is any other CPU idle?" on every way out of
/// the kernel is one load.
static BUSY: AtomicU64 = AtomicU64::new(0);
/// Whether each CPU was sent a wake-up it has not yet answered (so a
/// second one is not sent). Set by the lock holder, cleared by the CPU
/// once it holds the lock.
static KICKED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// User threads each CPU switched to (CPU_COUNTERS).
static DISPATCHES: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Records the boot CPU's APIC ID (index 0).
pub fn init_boot_cpu() {
    APIC_IDS[0].store(lapic::id(), Ordering::Relaxed);
}

/// Whether CPU `index` runs a user thread.
pub fn is_busy(index: usize) -> bool {
    index < MAX_CPUS && (BUSY.load(Ordering::Acquire) >> index) & 1 != 0
}

/// Records whether this CPU (`index`) runs a user thread from now on.
pub fn set_busy(index: usize, busy: bool) {
    if index < MAX_CPUS {
        if busy {
            BUSY.fetch_or(1 << index, Ordering::Release);
        } else {
            BUSY.fetch_and(!(1 << index), Ordering::Release);
        }
    }
}

/// Counts a switch of CPU `index` to a user thread.
#[inline]
pub fn count_dispatch(index: usize) {
    if let Some(d) = DISPATCHES.get(index) {
        d.fetch_add(1, Ordering::Relaxed);
    }
}

/// User threads CPU `index` switched to so far.
pub fn dispatches(index: usize) -> u64 {
    DISPATCHES
        .get(index)
        .map_or(0, |d| d.load(Ordering::Relaxed))
}

/// Logs, for each CPU, how many times it switched to a user thread (as
/// the machine stops): the boot log's proof that every CPU ran threads.
pub fn report_dispatches() {
    for index in 0..(online() as usize).min(MAX_CPUS) {
        kprintln!("cpu {index}: {} user thread dispatches", dispatches(index));
    }
    if online() > 1 {
        kprintln!(
            "kernel lock: {} halts waiting for it",
            super::kernel_lock::sleeps()
        );
    }
}

/// CPU `index` is in the kernel: a wake-up sent to it is answered.
pub fn answered(index: usize) {
    // Read first: most entries were not kicked, and a store would take
    // the line from the other CPUs that read it.
    if let Some(k) = KICKED.get(index)
        && k.load(Ordering::Relaxed)
    {
        k.store(false, Ordering::Relaxed);
    }
}

/// Interrupts CPU `index` (KICK_VECTOR): it enters the kernel, serving a
/// stall request on the way, and picks a thread if it has none.
pub fn kick(index: usize) {
    if let Some(id) = APIC_IDS.get(index) {
        if let Some(k) = KICKED.get(index) {
            k.store(true, Ordering::Relaxed);
        }
        lapic::send_fixed(id.load(Ordering::Relaxed), KICK_VECTOR);
    }
}

/// Interrupts CPU `index` with [`WAKE_VECTOR`]: ends its halt waiting for
/// the kernel lock (kernel_lock.rs); anywhere else it only returns.
pub fn wake(index: usize) {
    if let Some(id) = APIC_IDS.get(index) {
        lapic::send_fixed(id.load(Ordering::Relaxed), WAKE_VECTOR);
    }
}

/// The online CPUs other than `me` that run no user thread, a bit each:
/// the ones a ready thread could wake. Asked first on every way out of
/// the kernel, so that the run queue is looked at only when some CPU
/// could take from it (with one CPU, never).
pub fn idle_others(me: usize) -> u64 {
    // CPUs come online in index order: the first `online` bits.
    let online = u64::MAX >> (64 - online().clamp(1, MAX_CPUS as u32));
    online & !BUSY.load(Ordering::Acquire) & !(1 << (me % MAX_CPUS))
}

/// Wakes up to `ready` CPUs among `idle` ([`idle_others`]) and `wanted`
/// (a bit per CPU some ready thread may run on) that were not already
/// woken: ready threads wait in the run queue for them.
pub fn wake_idle(idle: u64, ready: usize, wanted: u64) {
    let mut left = ready;
    let mut candidates = idle & wanted;
    while candidates != 0 && left != 0 {
        let index = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        left -= 1;
        if KICKED
            .get(index)
            .is_some_and(|k| !k.load(Ordering::Relaxed))
        {
            kick(index);
        }
    }
}

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
    init_boot_cpu();
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
    APIC_IDS[index as usize].store(apic_id, Ordering::Relaxed);
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
    gdt::init_ap(index);
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
