//! The refusals a trap's four registers decide alone: reserved bits, bad
//! sizes, a SEND of a number no kernel function has, or of a door number
//! to the NULL target. They need no kernel state, so the arch layer answers
//! them on entry without the kernel lock and without the scheduler (the
//! null trap's path), and two CPUs refusing at once never wait for each
//! other.
//!
//! It must never refuse a trap the operations would accept, nor with
//! another error than theirs, nor decide anything that depends on a table,
//! a thread or a buffer: the slow path (`Kernel::trap`) stays the
//! reference, and a host test (`tests/refusal.rs`) runs both over random
//! registers in a random world and compares the result and the whole
//! state.

use abi::function::FunctionRange;
use abi::trap::Call;
use abi::{Error, TrapArgs};

/// The trap decoded, or the error `Kernel::trap` answers `args` with
/// whatever the kernel's state, when the registers alone decide it. The
/// arch layer answers an `Err` at once and hands an `Ok` to
/// [`crate::kernel::Kernel::trap_decoded`], so a trap is decoded once.
#[inline]
pub fn screen(args: &TrapArgs) -> Result<Call, Error> {
    let call = args.decode()?;
    let Call::Send(send) = call else {
        return Ok(call);
    };
    let refusal = match send.function.range() {
        FunctionRange::Invalid => Error::InvalidFunction,
        FunctionRange::Kernel if send.function.kernel_function().is_none() => {
            Error::InvalidFunction
        }
        FunctionRange::System | FunctionRange::User if send.target.is_null() => {
            Error::FunctionOutOfRange
        }
        // A call the kernel runs checks its sizes itself: not twice.
        _ => return Ok(call),
    };
    // The operations check the sizes before the function: so here.
    send.sizes.layout()?;
    Err(refusal)
}

/// The error of [`screen`], if the registers alone refuse the trap.
pub fn refused_by_registers(args: &TrapArgs) -> Option<Error> {
    screen(args).err()
}
