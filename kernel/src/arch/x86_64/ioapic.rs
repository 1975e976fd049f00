//! The I/O APIC: routes the ISA interrupt lines that INTERRUPT_CREATE
//! hands to user-space drivers to this CPU, masks a line when it fires
//! (until the driver acknowledges) and unmasks it again.
//!
//! Every line starts masked and only a line an interrupt object holds is
//! ever unmasked: the kernel itself takes no device interrupt through here
//! (its timer is the local APIC's). ISA line `n` arrives on vector
//! [`LINE_VECTOR_BASE`]` + n`, on the GSI and with the polarity and
//! trigger mode the MADT's overrides give (ISA default: edge, active high).

use super::acpi::Platform;
use super::lapic;

/// The vector of ISA line 0; lines 0-15 use the next 16 vectors.
pub const LINE_VECTOR_BASE: u8 = 0x50;

/// The ISA lines.
const LINES: usize = abi::kcall::ISA_INTERRUPT_LINES as usize;

const REGISTER_SELECT: u64 = 0x00;
const REGISTER_WINDOW: u64 = 0x10;
const REGISTER_VERSION: u32 = 0x01;
const REDIRECTION_TABLE: u32 = 0x10;
const MASKED: u32 = 1 << 16;
const LEVEL_TRIGGERED: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;

/// Where one ISA line arrives.
#[derive(Clone, Copy, Debug)]
struct Line {
    /// The redirection-table entry (the GSI minus the I/O APIC's base).
    entry: u32,
    /// The entry's low word without the mask bit: vector, polarity, trigger.
    low: u32,
}

/// The I/O APIC serving the ISA lines, and how each line is wired.
#[derive(Debug)]
struct IoApic {
    /// Its registers, through the direct map (uncached: not RAM).
    registers: u64,
    lines: [Option<Line>; LINES],
}

impl IoApic {
    fn read(&self, register: u32) -> u32 {
        // SAFETY: `registers` is the I/O APIC's register page in the
        // direct map (device memory, mapped uncached); the select/window
        // pair is only used with the kernel lock held, interrupts off.
        unsafe {
            core::ptr::write_volatile((self.registers + REGISTER_SELECT) as *mut u32, register);
            core::ptr::read_volatile((self.registers + REGISTER_WINDOW) as *const u32)
        }
    }

    fn write(&self, register: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::write_volatile((self.registers + REGISTER_SELECT) as *mut u32, register);
            core::ptr::write_volatile((self.registers + REGISTER_WINDOW) as *mut u32, value);
        }
    }

    fn set_entry(&self, line: Line, masked: bool, destination: u32) {
        let register = REDIRECTION_TABLE + 2 * line.entry;
        self.write(register + 1, destination << 24);
        self.write(register, line.low | if masked { MASKED } else { 0 });
    }
}

static IO_APIC: spin::Mutex<Option<IoApic>> = spin::Mutex::new(None);

/// Finds the I/O APIC that serves the ISA lines and masks every one of
/// its entries. Without one, INTERRUPT_CREATE is refused.
pub fn init(platform: &Platform, direct_map_offset: u64) {
    let default_gsi = |line: usize| {
        platform
            .isa_overrides
            .iter()
            .find(|o| usize::from(o.line) == line)
            .map_or(line as u32, |o| o.gsi)
    };
    let Some(chip) = platform
        .io_apics
        .iter()
        .find(|chip| chip.gsi_base <= default_gsi(0))
    else {
        return;
    };
    let mut io_apic = IoApic {
        registers: direct_map_offset + u64::from(chip.address),
        lines: [None; LINES],
    };
    let entries = ((io_apic.read(REGISTER_VERSION) >> 16) & 0xff) + 1;
    for entry in 0..entries {
        io_apic.write(REDIRECTION_TABLE + 2 * entry, MASKED);
    }
    for (line, slot) in io_apic.lines.iter_mut().enumerate() {
        let wiring = platform
            .isa_overrides
            .iter()
            .find(|o| usize::from(o.line) == line);
        let gsi = wiring.map_or(line as u32, |o| o.gsi);
        let flags = wiring.map_or(0, |o| o.flags);
        let Some(entry) = gsi.checked_sub(chip.gsi_base).filter(|e| *e < entries) else {
            continue;
        };
        // MPS INTI flags: polarity 0b11 = active low, trigger 0b11 = level;
        // 0b00 means the bus's default (ISA: active high, edge).
        let mut low = u32::from(LINE_VECTOR_BASE) + line as u32;
        if flags & 0b11 == 0b11 {
            low |= ACTIVE_LOW;
        }
        if (flags >> 2) & 0b11 == 0b11 {
            low |= LEVEL_TRIGGERED;
        }
        *slot = Some(Line { entry, low });
    }
    *IO_APIC.lock() = Some(io_apic);
}

/// Routes ISA `line` to this CPU, unmasked; false when there is no I/O
/// APIC (or it does not serve the line).
pub fn route(line: u8) -> bool {
    set_masked(line, false)
}

/// Masks or unmasks a line; false when it cannot be routed.
pub fn set_masked(line: u8, masked: bool) -> bool {
    let guard = IO_APIC.lock();
    let Some(io_apic) = guard.as_ref() else {
        return false;
    };
    let Some(Some(wiring)) = io_apic.lines.get(usize::from(line)).copied() else {
        return false;
    };
    io_apic.set_entry(wiring, masked, lapic::id());
    true
}

/// The ISA line that arrives on `vector`, if it is one of theirs.
pub fn line_of_vector(vector: u64) -> Option<u8> {
    vector
        .checked_sub(u64::from(LINE_VECTOR_BASE))
        .filter(|line| *line < LINES as u64)
        .map(|line| line as u8)
}
