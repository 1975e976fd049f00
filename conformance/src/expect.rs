//! Expectations and the judge: what a trap must return, written as data
//! (so the table can be printed and checked on the host), and the
//! comparison of an [`Observed`] trap with it, bit for bit.
//!
//! A register is an exact 64-bit value, except two things a case cannot
//! know before it runs: the buffer address it used ([`Value::MsgPtr`]) and a
//! number the kernel picks by a documented rule, such as "the lowest free
//! descriptor" ([`Value::Var`], bound by the case while it runs).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use abi::{Error, MessageSizes, TrapArgs};

/// One expected 64-bit (or, in a buffer, 32-bit) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Exactly this.
    Is(u64),
    /// The msgPtr of the observed trap.
    MsgPtr,
    /// A value the case binds while it runs (documented where it is bound).
    Var(&'static str),
}

/// The four registers after the observed trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    /// rax.
    pub arg0: Value,
    /// rdi.
    pub arg1: Value,
    /// rsi.
    pub arg2: Value,
    /// rdx.
    pub arg3: Value,
}

/// Bytes expected in the observed buffer, at some offset from msgPtr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Exactly these bytes.
    Bytes(&'static [u8]),
    /// `length` bytes, each `byte` (for example bytes the kernel must not touch).
    Fill {
        /// How many.
        length: u16,
        /// Their value.
        byte: u8,
    },
    /// `length` bytes of [`pattern`] with `seed`.
    Pattern {
        /// How many.
        length: u16,
        /// The pattern's seed.
        seed: u8,
    },
    /// A little-endian `u32`.
    Word(Value),
    /// A little-endian `u64`.
    Quad(Value),
    /// A 16-byte descriptor slot (ABI.md §1.3); `mode: None` when ABI.md
    /// leaves the mode open (the kernel's own reply slots).
    Slot {
        /// Offset 0: the descriptor.
        descriptor: Value,
        /// Offset 4: the rights.
        rights: u32,
        /// Offset 8: the mode.
        mode: Option<u32>,
    },
}

impl Field {
    /// The bytes it covers.
    pub const fn length(&self) -> usize {
        match self {
            Field::Bytes(bytes) => bytes.len(),
            Field::Fill { length, .. } | Field::Pattern { length, .. } => *length as usize,
            Field::Word(_) => 4,
            Field::Quad(_) => 8,
            Field::Slot { .. } => 16,
        }
    }
}

/// What the observed trap must return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// Which trap is observed, e.g. `SEND` or `the receiver's RECEIVE`.
    pub observed: &'static str,
    /// Its registers on return.
    pub registers: Registers,
    /// Bytes at offsets from its msgPtr afterwards.
    pub buffer: &'static [(u16, Field)],
}

/// `arg3` with these sizes (ABI.md §1.1).
pub use abi::message::sizes;

/// `arg0` for a function number: its 32 bits, the upper half zero.
pub const fn function_bits(function: i32) -> u64 {
    abi::Function(function).bits()
}

/// Byte `index` of the test pattern with `seed`.
pub const fn pattern(seed: u8, index: usize) -> u8 {
    (index as u8)
        .wrapping_mul(31)
        .wrapping_add((index >> 8) as u8)
        .wrapping_add(seed)
}

impl Expect {
    /// Exactly these registers, nothing about the buffer.
    pub const fn registers(
        observed: &'static str,
        arg0: u64,
        arg1: u64,
        arg2: u64,
        arg3: u64,
    ) -> Self {
        Expect {
            observed,
            registers: Registers {
                arg0: Value::Is(arg0),
                arg1: Value::Is(arg1),
                arg2: Value::Is(arg2),
                arg3: Value::Is(arg3),
            },
            buffer: &[],
        }
    }

    /// A kernel-detected failure (ABI.md §3): `-1`, the error, 0, 0.
    pub const fn error(observed: &'static str, error: Error) -> Self {
        let args = TrapArgs::error(error);
        Self::registers(observed, args.arg0, args.arg1, args.arg2, args.arg3)
    }

    /// A completed SEND (ABI.md §3): msgRetVal, msgErrno, 0, and the reply's
    /// data size and descriptor count with total size 0.
    pub const fn replied(
        observed: &'static str,
        ret_val: u32,
        errno: u32,
        data: u16,
        count: u8,
    ) -> Self {
        Self::registers(
            observed,
            ret_val as u64,
            errno as u64,
            0,
            sizes(0, data, count),
        )
    }

    /// A successful REPLY: all four registers 0.
    pub const fn reply_done(observed: &'static str) -> Self {
        Self::registers(observed, 0, 0, 0, 0)
    }

    /// A successful RECEIVE (ABI.md §3): the function, the cookie, msgPtr and
    /// the sender's sizes.
    pub const fn received(
        observed: &'static str,
        function: i32,
        cookie: u64,
        sender_sizes: u64,
    ) -> Self {
        Expect {
            observed,
            registers: Registers {
                arg0: Value::Is(function_bits(function)),
                arg1: Value::Is(cookie),
                arg2: Value::MsgPtr,
                arg3: Value::Is(sender_sizes),
            },
            buffer: &[],
        }
    }

    /// The same registers, and these buffer bytes.
    pub const fn with_buffer(self, buffer: &'static [(u16, Field)]) -> Self {
        Expect { buffer, ..self }
    }

    /// The same, with `arg1` bound at run time.
    pub const fn with_arg1(self, arg1: Value) -> Self {
        Expect {
            registers: Registers {
                arg1,
                ..self.registers
            },
            ..self
        }
    }

    /// The same, with another `arg2` (REPLY_RECEIVE's `REPLY_DELIVERED`).
    pub const fn with_arg2(self, arg2: u64) -> Self {
        Expect {
            registers: Registers {
                arg2: Value::Is(arg2),
                ..self.registers
            },
            ..self
        }
    }

    /// The same, with another `arg3` (RECEIVE_BUFFER_TOO_SMALL's sizes).
    pub const fn with_arg3(self, arg3: u64) -> Self {
        Expect {
            registers: Registers {
                arg3: Value::Is(arg3),
                ..self.registers
            },
            ..self
        }
    }

    /// The same, with `arg3` bound at run time (sizes that depend on what
    /// the case found, such as a listing's length).
    pub const fn with_arg3_var(self, name: &'static str) -> Self {
        Expect {
            registers: Registers {
                arg3: Value::Var(name),
                ..self.registers
            },
            ..self
        }
    }

    /// One line: the registers and the buffer bytes, as README.md and the
    /// JSON report show them.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let _ = write!(text, "{}: ", self.observed);
        let registers = [
            self.registers.arg0,
            self.registers.arg1,
            self.registers.arg2,
            self.registers.arg3,
        ];
        let arg0 = match self.registers.arg0 {
            Value::Is(value) => Some(value),
            _ => None,
        };
        for (index, value) in registers.iter().enumerate() {
            if index > 0 {
                text.push(' ');
            }
            let _ = write!(text, "arg{index}={}", show_value(*value));
            if let Value::Is(bits) = value {
                text.push_str(&annotation(index, bits, arg0));
            }
        }
        for (offset, field) in self.buffer {
            let end = usize::from(*offset) + field.length();
            let _ = write!(text, "; [{offset}..{end}]={}", show_field(field));
        }
        text
    }
}

fn show_value(value: Value) -> String {
    match value {
        Value::Is(bits) => format!("{bits:#x}"),
        Value::MsgPtr => String::from("msgPtr"),
        Value::Var(name) => format!("${name}"),
    }
}

fn show_field(field: &Field) -> String {
    match field {
        Field::Bytes(bytes) => hex(bytes),
        Field::Fill { length, byte } => format!("{length}x{byte:02x}"),
        Field::Pattern { length, seed } => format!("pattern(seed {seed:#04x}, {length} bytes)"),
        Field::Word(value) => format!("u32 {}", show_value(*value)),
        Field::Quad(value) => format!("u64 {}", show_value(*value)),
        Field::Slot {
            descriptor,
            rights,
            mode,
        } => {
            let mode = match mode {
                Some(mode) => format!("{mode}"),
                None => String::from("any"),
            };
            format!(
                "slot{{descriptor {}, rights {rights:#x}, mode {mode}, reserved 0}}",
                show_value(*descriptor)
            )
        }
    }
}

/// Bytes as `01 02 ff`, the first 24 and a count of the rest.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::new();
    for (index, byte) in bytes.iter().take(24).enumerate() {
        if index > 0 {
            text.push(' ');
        }
        let _ = write!(text, "{byte:02x}");
    }
    if bytes.len() > 24 {
        let _ = write!(text, " ... ({} bytes)", bytes.len());
    }
    text
}

/// What a register value means, in brackets: the error name of a failed
/// trap's arg1, the three fields of arg3.
fn annotation(index: usize, bits: &u64, arg0: Option<u64>) -> String {
    match index {
        1 if arg0 == Some(0xffff_ffff) => {
            match u32::try_from(*bits).ok().and_then(Error::from_number) {
                Some(error) => format!(" ({})", error.name()),
                None => String::new(),
            }
        }
        3 if *bits != 0 && *bits >> 32 == 0 => {
            let sizes = MessageSizes::from_bits(*bits);
            format!(
                " (total {}, data {}, {} slots)",
                sizes.total_size(),
                sizes.data_size(),
                sizes.descriptor_count()
            )
        }
        _ => String::new(),
    }
}

/// A trap as a case saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The four registers on return.
    pub registers: TrapArgs,
    /// The msgPtr the trap was given.
    pub msg_ptr: u64,
    /// The buffer from msgPtr on, afterwards (as much as the case captured).
    pub buffer: Vec<u8>,
    /// Values bound while the case ran.
    pub vars: Vec<(&'static str, u64)>,
}

impl Observed {
    /// Registers alone (no buffer was captured).
    pub fn registers(registers: TrapArgs) -> Self {
        Observed {
            registers,
            ..Observed::default()
        }
    }

    /// Registers, the msgPtr and the buffer bytes.
    pub fn with_buffer(registers: TrapArgs, msg_ptr: u64, buffer: Vec<u8>) -> Self {
        Observed {
            registers,
            msg_ptr,
            buffer,
            vars: Vec::new(),
        }
    }

    fn resolve(&self, value: Value) -> Result<u64, String> {
        match value {
            Value::Is(bits) => Ok(bits),
            Value::MsgPtr => Ok(self.msg_ptr),
            Value::Var(name) => self
                .vars
                .iter()
                .find(|(bound, _)| *bound == name)
                .map(|(_, value)| *value)
                .ok_or_else(|| format!("${name} was never bound")),
        }
    }
}

/// Every difference between `observed` and `expect`, one sentence each
/// (empty: the trap did exactly what ABI.md says).
pub fn mismatches(expect: &Expect, observed: &Observed) -> Vec<String> {
    let mut found = Vec::new();
    let expected = [
        expect.registers.arg0,
        expect.registers.arg1,
        expect.registers.arg2,
        expect.registers.arg3,
    ];
    let actual = [
        observed.registers.arg0,
        observed.registers.arg1,
        observed.registers.arg2,
        observed.registers.arg3,
    ];
    let expected_arg0 = observed.resolve(expect.registers.arg0).ok();
    for (index, (want, got)) in expected.iter().zip(actual).enumerate() {
        match observed.resolve(*want) {
            Ok(bits) if bits == got => {}
            Ok(bits) => found.push(format!(
                "{}: arg{index} expected {bits:#x}{}, got {got:#x}{}",
                expect.observed,
                annotation(index, &bits, expected_arg0),
                annotation(index, &got, Some(observed.registers.arg0)),
            )),
            Err(problem) => found.push(format!("{}: arg{index}: {problem}", expect.observed)),
        }
    }
    for (offset, field) in expect.buffer {
        let start = usize::from(*offset);
        let end = start + field.length();
        let want = match expected_bytes(field, observed) {
            Ok(bytes) => bytes,
            Err(problem) => {
                found.push(format!(
                    "{}: buffer[{start}..{end}]: {problem}",
                    expect.observed
                ));
                continue;
            }
        };
        match observed.buffer.get(start..end) {
            None => found.push(format!(
                "{}: buffer[{start}..{end}] not observed (only {} bytes were captured)",
                expect.observed,
                observed.buffer.len()
            )),
            Some(got) if slot_matches(field, &want, got) => {}
            Some(got) => {
                let first = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(0);
                let from = start + first;
                let shown = (first..want.len().min(first + 16)).collect::<Vec<_>>();
                let pick = |bytes: &[u8]| {
                    hex(&shown
                        .iter()
                        .filter_map(|&i| bytes.get(i).copied())
                        .collect::<Vec<u8>>())
                };
                found.push(format!(
                    "{}: buffer[{start}..{end}] expected {}, got {} (first difference at byte {from}: expected {}, got {})",
                    expect.observed,
                    show_field(field),
                    hex(got),
                    pick(&want),
                    pick(got)
                ));
            }
        }
    }
    found
}

/// A slot whose mode is open matches whatever mode is there.
fn slot_matches(field: &Field, want: &[u8], got: &[u8]) -> bool {
    match field {
        Field::Slot { mode: None, .. } => {
            want.get(..8) == got.get(..8) && want.get(12..) == got.get(12..)
        }
        _ => want == got,
    }
}

fn expected_bytes(field: &Field, observed: &Observed) -> Result<Vec<u8>, String> {
    Ok(match field {
        Field::Bytes(bytes) => bytes.to_vec(),
        Field::Fill { length, byte } => alloc::vec![*byte; usize::from(*length)],
        Field::Pattern { length, seed } => (0..usize::from(*length))
            .map(|i| pattern(*seed, i))
            .collect(),
        Field::Word(value) => {
            let bits = observed.resolve(*value)?;
            u32::try_from(bits)
                .map_err(|_| format!("{bits:#x} does not fit 32 bits"))?
                .to_le_bytes()
                .to_vec()
        }
        Field::Quad(value) => observed.resolve(*value)?.to_le_bytes().to_vec(),
        Field::Slot {
            descriptor,
            rights,
            mode,
        } => {
            let descriptor = u32::try_from(observed.resolve(*descriptor)?)
                .map_err(|_| String::from("descriptor does not fit 32 bits"))?;
            let mut bytes = Vec::with_capacity(16);
            bytes.extend_from_slice(&descriptor.to_le_bytes());
            bytes.extend_from_slice(&rights.to_le_bytes());
            bytes.extend_from_slice(&mode.unwrap_or(0).to_le_bytes());
            bytes.extend_from_slice(&0u32.to_le_bytes());
            bytes
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_registers_pass_and_differences_are_named() {
        let expect = Expect::error("SEND", Error::BadSizes);
        let good = Observed::registers(TrapArgs::error(Error::BadSizes));
        assert!(mismatches(&expect, &good).is_empty());
        let bad = Observed::registers(TrapArgs::error(Error::PeerDied));
        let found = mismatches(&expect, &bad);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("BAD_SIZES") && found[0].contains("PEER_DIED"),
            "{}",
            found[0]
        );
        // A sign-extended -1 is not -1.
        let extended = Observed::registers(TrapArgs {
            arg0: u64::MAX,
            ..TrapArgs::error(Error::BadSizes)
        });
        assert_eq!(mismatches(&expect, &extended).len(), 1);
    }

    #[test]
    fn buffer_fields_and_variables() {
        static FIELDS: [(u16, Field); 3] = [
            (0, Field::Bytes(&[1, 2, 3])),
            (
                3,
                Field::Fill {
                    length: 2,
                    byte: 0x5a,
                },
            ),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("new"),
                    rights: 6,
                    mode: None,
                },
            ),
        ];
        let expect = Expect::received("RECEIVE", 0x8000, 0, sizes(64, 3, 1)).with_buffer(&FIELDS);
        let mut buffer = alloc::vec![1, 2, 3, 0x5a, 0x5a, 0, 0, 0];
        buffer.extend_from_slice(&[4, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut observed = Observed::with_buffer(
            TrapArgs::received(
                abi::Function(0x8000),
                0,
                0x1000,
                MessageSizes::from_bits(sizes(64, 3, 1)),
            ),
            0x1000,
            buffer,
        );
        let unbound = mismatches(&expect, &observed);
        assert!(
            unbound.iter().any(|m| m.contains("$new was never bound")),
            "{unbound:?}"
        );
        observed.vars.push(("new", 4));
        assert_eq!(mismatches(&expect, &observed), Vec::<String>::new());
        observed.buffer[4] = 0;
        let found = mismatches(&expect, &observed);
        assert!(found[0].contains("byte 4"), "{found:?}");
    }

    #[test]
    fn descriptions_name_errors_and_sizes() {
        let text = Expect::error("SEND", Error::BadBuffer).describe();
        assert_eq!(
            text,
            "SEND: arg0=0xffffffff arg1=0x8 (BAD_BUFFER) arg2=0x0 arg3=0x0"
        );
        let text = Expect::replied("SEND", 1, 0, 8, 1).describe();
        assert!(
            text.ends_with("arg3=0x801 (total 0, data 8, 1 slots)"),
            "{text}"
        );
    }
}
