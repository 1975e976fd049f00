//! The legacy 8259 PIC pair: remapped away from the exception vectors, then
//! masked for good. The local APIC (and later the I/O APIC) replaces it.

use x86_64::instructions::port::Port;

/// Vector base the PICs are moved to before masking, so a spurious PIC
/// interrupt can never look like a CPU exception (vectors 0-31).
pub const PIC_VECTOR_BASE: u8 = 0x20;

/// Remaps both PICs to `PIC_VECTOR_BASE..+16` and masks every line.
pub fn remap_and_mask() {
    let mut master_command = Port::<u8>::new(0x20);
    let mut master_data = Port::<u8>::new(0x21);
    let mut slave_command = Port::<u8>::new(0xa0);
    let mut slave_data = Port::<u8>::new(0xa1);
    // SAFETY: the ICW1-ICW4 initialisation sequence of the 8259 (ICW1: init +
    // ICW4 needed; ICW2: vector base; ICW3: cascade on IRQ2; ICW4: 8086 mode),
    // followed by masking all lines via OCW1. No memory is involved.
    unsafe {
        master_command.write(0x11);
        slave_command.write(0x11);
        master_data.write(PIC_VECTOR_BASE);
        slave_data.write(PIC_VECTOR_BASE + 8);
        master_data.write(0x04);
        slave_data.write(0x02);
        master_data.write(0x01);
        slave_data.write(0x01);
        master_data.write(0xff);
        slave_data.write(0xff);
    }
}
