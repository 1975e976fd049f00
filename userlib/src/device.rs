//! What a user-space driver touches directly: I/O ports (once the kernel
//! granted them with IO_PORT_GRANT; an ungranted port faults and the
//! process ends). Interrupts come as events: [`crate::kernel::interrupt_create`]
//! and [`crate::kernel::interrupt_ack`].
//!
//! Safe functions: a port access cannot break this process's memory, and
//! the kernel decides which ports it may reach.

/// A byte from I/O port `port`.
pub fn read_u8(port: u16) -> u8 {
    crate::arch::port_read_u8(port)
}

/// A byte to I/O port `port`.
pub fn write_u8(port: u16, value: u8) {
    crate::arch::port_write_u8(port, value)
}
