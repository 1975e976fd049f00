//! A 16550 UART driven by polling: the kernel's only output device.

use core::fmt;

use x86_64::instructions::port::Port;

/// A 16550-compatible serial port at an I/O base.
#[derive(Debug)]
pub struct SerialPort {
    base: u16,
}

impl SerialPort {
    /// COM1, where QEMU's `-serial` sends its first port.
    pub const COM1: SerialPort = SerialPort { base: 0x3f8 };

    /// 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on, no interrupts.
    pub fn init(&mut self) {
        self.write_register(1, 0x00); // IER: no interrupts, we poll
        self.write_register(3, 0x80); // LCR: DLAB on to set the divisor
        self.write_register(0, 0x01); // divisor low: 115200 / 1
        self.write_register(1, 0x00); // divisor high
        self.write_register(3, 0x03); // LCR: 8N1, DLAB off
        self.write_register(2, 0xc7); // FCR: enable and clear FIFOs, 14-byte threshold
        self.write_register(4, 0x03); // MCR: DTR + RTS
    }

    fn write_byte(&mut self, byte: u8) {
        // LSR bit 5: the transmit holding register is empty. Bounded so that a
        // missing UART cannot hang the kernel.
        for _ in 0..100_000 {
            if self.read_register(5) & 0x20 != 0 {
                break;
            }
        }
        self.write_register(0, byte);
    }

    fn write_register(&mut self, offset: u16, value: u8) {
        let mut port = Port::<u8>::new(self.base + offset);
        // SAFETY: the UART registers at COM1 have no memory side effects.
        unsafe { port.write(value) };
    }

    fn read_register(&mut self, offset: u16) -> u8 {
        let mut port = Port::<u8>::new(self.base + offset);
        // SAFETY: reading LSR or RBR has no memory side effects.
        unsafe { port.read() }
    }
}

impl SerialPort {
    /// Writes `bytes`, each `\n` as `\r\n`.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }
}

impl fmt::Write for SerialPort {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
