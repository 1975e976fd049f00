//! The local APIC in xAPIC (MMIO) mode: enabling it, end-of-interrupt, and
//! the periodic timer that will preempt user threads.
//!
//! xAPIC rather than x2APIC because QEMU 7.2's TCG does not emulate x2APIC.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::trap::{SPURIOUS_VECTOR, TIMER_VECTOR};

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: u64 = 0x20;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
const REG_ICR_LOW: u64 = 0x300;
const REG_ICR_HIGH: u64 = 0x310;

/// ICR delivery modes (SDM vol. 3, 11.6.1), with level "assert" (bit 14).
const ICR_INIT: u32 = 0b101 << 8 | 1 << 14;
const ICR_STARTUP: u32 = 0b110 << 8 | 1 << 14;
const ICR_FIXED: u32 = 1 << 14;
/// ICR bit 12: the previous IPI is still being sent.
const ICR_SEND_PENDING: u32 = 1 << 12;

const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const SVR_APIC_ENABLE: u32 = 1 << 8;
/// Divide configuration 0b0011: the timer counts at bus clock / 16.
const TIMER_DIVIDE_BY_16: u32 = 0x3;

/// The PIT's input clock in Hz, the reference the APIC timer is calibrated against.
const PIT_HZ: u64 = 1_193_182;
/// The calibration window.
const CALIBRATION_MS: u64 = 10;
/// Used when the PIT never reaches terminal count (e.g. no PIT emulated):
/// a typical QEMU bus clock of 1 GHz / 16 gives this many counts in 10 ms.
const FALLBACK_COUNTS_PER_10MS: u32 = 625_000;

/// Virtual address of the APIC's register page (in the direct map).
static REGISTERS: AtomicU64 = AtomicU64::new(0);

/// The physical address of the local APIC's registers (IA32_APIC_BASE).
pub fn physical_base() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; reading it has no side effects.
    let value = unsafe { Msr::new(IA32_APIC_BASE).read() };
    value & 0x000f_ffff_ffff_f000
}

fn read(register: u64) -> u32 {
    let base = REGISTERS.load(Ordering::Relaxed);
    // SAFETY: `init` stored the direct-map address of this CPU's APIC page,
    // mapped uncached; APIC registers are 32-bit, 16-byte aligned.
    unsafe { core::ptr::read_volatile((base + register) as *const u32) }
}

fn write(register: u64, value: u32) {
    let base = REGISTERS.load(Ordering::Relaxed);
    // SAFETY: as in `read`; writes to these registers touch no memory.
    unsafe { core::ptr::write_volatile((base + register) as *mut u32, value) }
}

/// Enables this CPU's local APIC with its registers at `direct_map_offset +
/// physical_base()` (which the caller has mapped uncached).
pub fn init(direct_map_offset: u64) {
    REGISTERS.store(direct_map_offset + physical_base(), Ordering::Relaxed);
    enable();
}

/// Enables the local APIC of the CPU running this. Every CPU's APIC
/// answers at the same address (each sees its own), so an application
/// processor only needs this after the boot CPU's [`init`].
pub fn enable() {
    write(REG_TPR, 0); // accept every priority class
    write(REG_SVR, SVR_APIC_ENABLE | u32::from(SPURIOUS_VECTOR));
}

/// Sends an IPI (`command`: the ICR's low word) to the APIC `apic_id` and
/// waits until the APIC has sent it.
fn send_ipi(apic_id: u32, command: u32) {
    write(REG_ICR_HIGH, apic_id << 24);
    write(REG_ICR_LOW, command);
    while read(REG_ICR_LOW) & ICR_SEND_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Sends INIT to `apic_id`: the processor resets and waits for a STARTUP.
pub fn send_init(apic_id: u32) {
    send_ipi(apic_id, ICR_INIT);
}

/// Sends STARTUP to `apic_id`: a processor waiting after INIT starts in
/// real mode at physical `page * 4096` (CS = page << 8, IP = 0).
pub fn send_startup(apic_id: u32, page: u8) {
    send_ipi(apic_id, ICR_STARTUP | u32::from(page));
}

/// Sends a fixed interrupt `vector` to `apic_id` (an IPI between CPUs).
pub fn send_fixed(apic_id: u32, vector: u8) {
    // Fixed delivery (0b000), physical destination, level "assert".
    send_ipi(apic_id, ICR_FIXED | u32::from(vector));
}

/// This CPU's APIC ID.
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// Signals the end of the interrupt being handled.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// How the timer was set up.
#[derive(Debug, Clone, Copy)]
pub struct TimerSetup {
    /// APIC timer counts (at bus clock / 16) per 10 ms.
    pub counts_per_10ms: u32,
    /// Whether the PIT calibration worked (otherwise a fixed estimate was used).
    pub calibrated: bool,
    /// The requested tick frequency.
    pub hz: u32,
}

/// The timer's rate once started (ticks per second).
static TIMER_HZ: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The rate [`start_timer`] set (0 before it ran).
pub fn timer_hz() -> u32 {
    TIMER_HZ.load(Ordering::Relaxed)
}

/// Calibrates the APIC timer against the PIT and starts it in periodic mode
/// at `hz` ticks per second on [`TIMER_VECTOR`].
pub fn start_timer(hz: u32) -> TimerSetup {
    TIMER_HZ.store(hz, Ordering::Relaxed);
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    let measured = measure_counts_per_10ms();
    let counts_per_10ms = measured.unwrap_or(FALLBACK_COUNTS_PER_10MS);
    let initial = (u64::from(counts_per_10ms) * 100 / u64::from(hz.max(1))).max(1);
    let initial = initial.min(u64::from(u32::MAX)) as u32;
    TIMER_INITIAL_COUNT.store(initial, Ordering::Relaxed);
    write(REG_LVT_TIMER, LVT_TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, initial);
    TimerSetup {
        counts_per_10ms,
        calibrated: measured.is_some(),
        hz,
    }
}

/// The initial count [`start_timer`] found for its rate.
static TIMER_INITIAL_COUNT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Starts this CPU's timer at the boot CPU's rate: every local APIC timer
/// runs off the same bus clock, so the boot CPU's calibration holds (and
/// the PIT, which calibrated it, is not the application processors' to use).
pub fn start_timer_like_boot_cpu() {
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    write(
        REG_TIMER_INITIAL,
        TIMER_INITIAL_COUNT.load(Ordering::Relaxed).max(1),
    );
}

/// Counts how far the APIC timer runs while PIT channel 2 counts down 10 ms.
fn measure_counts_per_10ms() -> Option<u32> {
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    let pit_count = (PIT_HZ * CALIBRATION_MS / 1000) as u16;
    // SAFETY: port 0x61 bit 0 gates PIT channel 2 (bit 1, the speaker, is
    // kept off); 0x43/0x42 program channel 2 in mode 0 (interrupt on terminal
    // count, lobyte/hibyte). Bit 5 of 0x61 reads channel 2's output, which
    // rises at terminal count. None of this touches memory.
    unsafe {
        let value = gate.read() & !0x02;
        gate.write(value & !0x01);
        command.write(0b1011_0000);
        channel2.write(pit_count as u8);
        channel2.write((pit_count >> 8) as u8);
        gate.write(value | 0x01); // rising gate edge starts the countdown
    }
    write(REG_TIMER_INITIAL, u32::MAX);
    let mut reached = false;
    for _ in 0..50_000_000u32 {
        // SAFETY: reading port 0x61 has no side effects.
        if unsafe { gate.read() } & 0x20 != 0 {
            reached = true;
            break;
        }
    }
    let elapsed = u32::MAX - read(REG_TIMER_CURRENT);
    write(REG_TIMER_INITIAL, 0);
    (reached && elapsed > 0).then_some(elapsed)
}
