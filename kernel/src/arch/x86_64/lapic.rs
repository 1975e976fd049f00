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
    write(REG_TPR, 0); // accept every priority class
    write(REG_SVR, SVR_APIC_ENABLE | u32::from(SPURIOUS_VECTOR));
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
    write(REG_LVT_TIMER, LVT_TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, initial.min(u64::from(u32::MAX)) as u32);
    TimerSetup {
        counts_per_10ms,
        calibrated: measured.is_some(),
        hz,
    }
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
