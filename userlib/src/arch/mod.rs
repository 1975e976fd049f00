//! The machine-dependent part of the runtime, and the only place with
//! assembly: the trap, the entry points, `abort` and the probes. The guest uses `x86_64`; the host gets stand-ins so that the
//! portable code above builds and tests there.

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub(crate) use x86_64::{
    abort, fpu_probe, invalid_opcode, port_read_u8, port_write_u8, raw_thread_entry_address,
    register_probe, set_fpu_probe, software_interrupt, thread_entry_address, timestamp, trap,
    upcall_entry_address, upcall_register_probe, writable_image,
};

#[cfg(not(target_os = "none"))]
mod host;
#[cfg(not(target_os = "none"))]
pub(crate) use host::{
    abort, fpu_probe, invalid_opcode, port_read_u8, port_write_u8, raw_thread_entry_address,
    register_probe, set_fpu_probe, software_interrupt, thread_entry_address, timestamp, trap,
    upcall_entry_address, upcall_register_probe, writable_image,
};
