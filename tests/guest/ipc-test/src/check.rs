//! A check, what it returns, and the helpers that compare what the kernel
//! did with what ABI.md says it must do.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt::{self, Debug, Display};

use abi::{Error, MessageSizes, TrapArgs};

use crate::fixture::Fixture;

/// One line of the report.
#[derive(Debug)]
pub struct Check {
    /// Printed after `ok   ` or `FAIL `.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(&mut Fixture) -> Outcome,
}

/// What a check returns.
pub type Outcome = Result<(), Failure>;

/// Why a check failed: printed as `expected {expected}, got {got}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What ABI.md demands (with the step it concerns).
    pub expected: String,
    /// What happened.
    pub got: String,
}

/// What the tally prints after `FAIL <name>: `.
impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, got {}", self.expected, self.got)
    }
}

impl Failure {
    /// A failure of step `what`.
    pub fn new(what: impl Display, expected: impl Display, got: impl Display) -> Self {
        Failure {
            expected: format!("{what}: {expected}"),
            got: got.to_string(),
        }
    }
}

/// Trap registers as the report prints them: arg0 as -1 or hex, arg1 with
/// its error name after a failure, arg3 as `t<total>/d<data>/n<slots>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Registers(pub TrapArgs);

impl Display for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TrapArgs {
            arg0,
            arg1,
            arg2,
            arg3,
        } = self.0;
        let failed = arg0 == 0xffff_ffff;
        if failed {
            write!(f, "{{-1, ")?;
        } else {
            write!(f, "{{{arg0:#x}, ")?;
        }
        match u32::try_from(arg1).ok().and_then(Error::from_number) {
            Some(error) if failed => write!(f, "{}({arg1}), ", error.name())?,
            _ => write!(f, "{arg1:#x}, ")?,
        }
        write!(f, "{arg2:#x}, {:?}}}", Sizes(arg3))
    }
}

impl Debug for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

/// An `arg3` as the report prints it: `t<total>/d<data>/n<slots>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sizes(pub u64);

impl Debug for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes = MessageSizes::from_bits(self.0);
        if self.0 >> 32 == 0 {
            write!(
                f,
                "t{}/d{}/n{}",
                sizes.total_size(),
                sizes.data_size(),
                sizes.descriptor_count()
            )
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

/// The trap of step `what` returned exactly `expected`.
pub fn expect_registers(what: impl Display, got: TrapArgs, expected: TrapArgs) -> Outcome {
    if got == expected {
        Ok(())
    } else {
        Err(Failure::new(what, Registers(expected), Registers(got)))
    }
}

/// The trap of step `what` failed with exactly `error` (ABI.md §3).
pub fn expect_error(what: impl Display, got: TrapArgs, error: Error) -> Outcome {
    expect_registers(what, got, TrapArgs::error(error))
}

/// Step `what` produced `expected`.
pub fn expect_eq<T: PartialEq + Debug>(what: impl Display, got: T, expected: T) -> Outcome {
    if got == expected {
        Ok(())
    } else {
        Err(Failure::new(
            what,
            format!("{expected:?}"),
            format!("{got:?}"),
        ))
    }
}

/// `condition` holds for step `what`; `got` describes what was seen.
pub fn ensure(what: impl Display, condition: bool, expected: &str, got: impl Display) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(Failure::new(what, expected, got))
    }
}

/// A step that prepares a check (not the thing checked) must succeed.
pub trait Setup<T> {
    /// The value, or a failure naming the step.
    fn setup(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: Display> Setup<T> for Result<T, E> {
    fn setup(self, what: &str) -> Result<T, Failure> {
        self.map_err(|error| Failure::new(what, "success", error))
    }
}

impl<T> Setup<T> for Option<T> {
    fn setup(self, what: &str) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::new(what, "a value", "nothing"))
    }
}
