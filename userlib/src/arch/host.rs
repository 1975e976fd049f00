//! Host stand-ins for the guest's assembly: there is no kernel on the
//! host, so every trap fails with `INVALID_FUNCTION` (unit tests install a
//! scripted fake kernel instead, see `fake_kernel`).

use abi::TrapArgs;

/// The host's trap: the fake kernel under `cargo test`, a failure otherwise.
///
/// # Safety
/// The same contract as the guest's trap (the fake kernel reads and writes
/// the buffer the registers describe).
pub(crate) unsafe fn trap(args: TrapArgs) -> TrapArgs {
    #[cfg(test)]
    {
        crate::fake_kernel::trap(args)
    }
    #[cfg(not(test))]
    {
        let _ = args;
        TrapArgs::error(abi::Error::InvalidFunction)
    }
}

/// The host has no process to fault.
pub(crate) fn abort() -> ! {
    panic!("userlib: abort (no kernel on the host)")
}

/// No thread entry on the host.
pub(crate) fn thread_entry_address() -> u64 {
    0
}

/// No raw thread entry on the host.
pub(crate) fn raw_thread_entry_address() -> u64 {
    0
}

/// Host stand-in: nothing to probe.
pub(crate) fn register_probe(_set_flags: bool) -> crate::probe::RegisterProbe {
    crate::probe::RegisterProbe::default()
}

/// Host stand-in.
pub(crate) fn software_interrupt() {}

/// Host stand-in: a port nobody drives reads all ones.
pub(crate) fn port_read_u8(_port: u16) -> u8 {
    0xff
}

/// Host stand-in: the write goes nowhere.
pub(crate) fn port_write_u8(_port: u16, _value: u8) {}

/// Host stand-in: the registers are not touched.
pub(crate) fn set_fpu_probe(_state: crate::probe::FpuProbe) {}

/// Host stand-in: the state a new thread starts with.
pub(crate) fn fpu_probe() -> crate::probe::FpuProbe {
    crate::probe::FpuProbe::INITIAL
}

/// Host stand-in.
pub(crate) fn invalid_opcode() -> ! {
    abort()
}

/// The host image has no segment the stand-in kernel could write.
pub(crate) fn writable_image() -> core::ops::Range<u64> {
    0..0
}

/// Host stand-in: no time-stamp counter is read.
pub(crate) fn timestamp() -> u64 {
    0
}

/// No upcall entry on the host.
pub(crate) fn upcall_entry_address() -> u64 {
    0
}

/// Host stand-in: nothing to probe.
pub(crate) fn upcall_register_probe(_flags: u64) -> crate::probe::UpcallProbe {
    crate::probe::UpcallProbe::default()
}
