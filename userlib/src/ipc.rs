//! The four trap operations with typed arguments and results, over a
//! borrowed buffer: the only place where userlib hands the kernel an
//! address. Each function checks that the sizes it passes stay inside the
//! slice it was given, so the kernel never touches memory the caller does
//! not own; everything else (layout, descriptors, rights) the kernel checks.
//!
//! Decoding follows the ABI: a failed trap returns `arg0 = -1`,
//! `arg1 = error`, `arg3 = 0` (RECEIVE_BUFFER_TOO_SMALL: `arg3` = the waiting
//! message's sizes). A server's error reply also has `msgRetVal = -1` but
//! always at least 8 bytes of data, so a SEND's result is a kernel error only
//! when its data size is 0.

use abi::function::{Function, KernelFunction};
use abi::message::MAX_TOTAL_SIZE;
use abi::{Descriptor, Error, MessageSizes, TrapArgs};

use crate::arch;

/// What a completed SEND returned: the reply's first two words and sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// msgRetVal: the reply's first 32-bit word (0 with less than 4 bytes).
    pub ret_val: u32,
    /// msgErrno: the reply's second word (0 with less than 8 bytes).
    pub errno: u32,
    /// The reply's data size and descriptor count (total size 0).
    pub sizes: MessageSizes,
}

impl Reply {
    /// msgRetVal as a signed value.
    pub const fn value(&self) -> i32 {
        self.ret_val as i32
    }

    /// Whether this is a server's error reply: msgRetVal -1 and at least
    /// 8 bytes of data (so msgErrno is meaningful).
    pub fn is_error(&self) -> bool {
        self.value() == -1 && self.sizes.data_size() >= 8
    }
}

/// What RECEIVE (or REPLY_RECEIVE) delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The function the caller asked for.
    pub function: Function,
    /// The cookie stored in the caller's reference.
    pub cookie: u64,
    /// The caller's sizes: data size and descriptor count of the message
    /// now in the buffer, and the caller's total size, the reply budget.
    pub sizes: MessageSizes,
}

/// Why RECEIVE (or the receive half of REPLY_RECEIVE) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveError {
    /// RECEIVE_BUFFER_TOO_SMALL: the message stays queued; these are its sizes.
    BufferTooSmall(MessageSizes),
    /// Any other error.
    Kernel(Error),
    /// REPLY_RECEIVE delivered its reply (arg2 = `REPLY_DELIVERED`), then
    /// its receive half failed with this error.
    AfterReply(Error),
}

impl From<ReceiveError> for Error {
    fn from(error: ReceiveError) -> Error {
        match error {
            ReceiveError::BufferTooSmall(_) => Error::ReceiveBufferTooSmall,
            ReceiveError::Kernel(error) | ReceiveError::AfterReply(error) => error,
        }
    }
}

impl core::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReceiveError::BufferTooSmall(sizes) => write!(
                f,
                "{} (the message needs {} bytes of data and {} descriptors)",
                Error::ReceiveBufferTooSmall,
                sizes.data_size(),
                sizes.descriptor_count()
            ),
            ReceiveError::Kernel(error) => write!(f, "{error}"),
            ReceiveError::AfterReply(error) => write!(f, "{error} (after the reply was delivered)"),
        }
    }
}

/// The error an error number names. A number this userlib does not know
/// (only possible with a newer kernel) is reported as INVALID_ARGUMENT,
/// since `abi::Error` has no "unknown" value.
pub fn error_from_number(number: u64) -> Error {
    u32::try_from(number)
        .ok()
        .and_then(Error::from_number)
        .unwrap_or(Error::InvalidArgument)
}

/// The buffer size a slice offers: its length, at most 4095.
pub fn capacity_of(buffer: &[u8]) -> u16 {
    u16::try_from(buffer.len()).map_or(MAX_TOTAL_SIZE, |length| length.min(MAX_TOTAL_SIZE))
}

/// The address the kernel gets for `buffer`.
fn address_of(buffer: &mut [u8]) -> u64 {
    buffer.as_mut_ptr().expose_provenance() as u64
}

/// Checks that `sizes` stays inside `buffer`, the condition under which
/// handing both to the kernel is sound.
fn fits(buffer: &[u8], sizes: MessageSizes) -> Result<(), Error> {
    if usize::from(sizes.total_size()) > buffer.len() {
        return Err(Error::BadSizes);
    }
    Ok(())
}

/// Runs a trap whose buffer is `buffer` and whose `arg3` total size is
/// at most `buffer.len()` (checked by every caller).
fn trap_on(buffer: &mut [u8], args: TrapArgs) -> TrapArgs {
    debug_assert_eq!(args.arg2, address_of(buffer));
    debug_assert!(usize::from(MessageSizes::from_bits(args.arg3).total_size()) <= buffer.len());
    // SAFETY: `args` names `buffer` and a total size within it (every
    // caller checked it with `fits` or built it from `capacity_of`); the
    // exclusive borrow of `buffer` lasts for the whole trap, so the kernel
    // reads and writes only memory this call owns.
    unsafe { arch::trap(args) }
}

/// SEND: calls `function` on `target` with the message in `buffer`
/// described by `sizes`, and waits for the reply, which the kernel writes
/// into the same buffer (at most `sizes.total_size()` bytes of it).
///
/// `function` must not be RECEIVE, REPLY or REPLY_RECEIVE
/// (`INVALID_FUNCTION`); `sizes` must stay inside `buffer` (`BAD_SIZES`).
pub fn send(
    function: Function,
    target: Descriptor,
    buffer: &mut [u8],
    sizes: MessageSizes,
) -> Result<Reply, Error> {
    decode_send(PreparedSend::new(function, target, buffer, sizes)?.trap())
}

/// A SEND with its arguments checked, ready to trap: [`PreparedSend::trap`]
/// is the trap alone and gives back the raw result registers, for
/// [`decode_send`] later. A bench measures exactly the trap this way, and
/// a caller repeating one call checks its arguments once.
#[derive(Debug)]
pub struct PreparedSend<'buffer> {
    buffer: &'buffer mut [u8],
    args: TrapArgs,
}

impl<'buffer> PreparedSend<'buffer> {
    /// Checks the call as [`send`] does (`INVALID_FUNCTION`, `BAD_SIZES`).
    pub fn new(
        function: Function,
        target: Descriptor,
        buffer: &'buffer mut [u8],
        sizes: MessageSizes,
    ) -> Result<Self, Error> {
        if matches!(
            function.kernel_function(),
            Some(KernelFunction::Receive | KernelFunction::Reply | KernelFunction::ReplyReceive)
        ) {
            return Err(Error::InvalidFunction);
        }
        fits(buffer, sizes)?;
        let args = TrapArgs::send(function, target, address_of(buffer), sizes);
        Ok(Self { buffer, args })
    }

    /// Traps; the result registers, undecoded.
    #[inline(always)]
    pub fn trap(&mut self) -> TrapArgs {
        trap_on(self.buffer, self.args)
    }
}

/// The result registers of a SEND.
pub fn decode_send(result: TrapArgs) -> Result<Reply, Error> {
    let sizes = MessageSizes::from_bits(result.arg3);
    if result.value() == -1 && sizes.data_size() == 0 {
        return Err(result
            .kernel_error()
            .unwrap_or_else(|| error_from_number(result.arg1)));
    }
    Ok(Reply {
        ret_val: result.arg0 as u32,
        errno: result.arg1 as u32,
        sizes,
    })
}

/// RECEIVE: waits for a message on the door whose owner reference is
/// `door`, into `buffer` (at most 4095 bytes of it are offered).
pub fn receive(door: Descriptor, buffer: &mut [u8]) -> Result<Received, ReceiveError> {
    let args = TrapArgs::receive(door, address_of(buffer), capacity_of(buffer));
    decode_received(trap_on(buffer, args))
}

/// REPLY: answers the message this thread holds with the message in
/// `buffer` described by `sizes`, storing `cookie` into the caller's
/// reference.
pub fn reply(cookie: u64, buffer: &mut [u8], sizes: MessageSizes) -> Result<(), Error> {
    fits(buffer, sizes)?;
    let args = TrapArgs::reply(cookie, address_of(buffer), sizes, false);
    let result = trap_on(buffer, args);
    if result.value() == -1 {
        return Err(error_from_number(result.arg1));
    }
    Ok(())
}

/// REPLY_RECEIVE: [`reply`], then [`receive`] into the same buffer
/// (`sizes.total_size()` is the receive size) on the door the answered
/// message came through.
///
/// If the reply fails (except CALLER_GONE, which the kernel ignores) the
/// trap returns that error ([`ReceiveError::Kernel`]) and receives nothing;
/// an error of the receive, after a reply that was delivered, is
/// [`ReceiveError::AfterReply`] (or [`ReceiveError::BufferTooSmall`]).
pub fn reply_receive(
    cookie: u64,
    buffer: &mut [u8],
    sizes: MessageSizes,
) -> Result<Received, ReceiveError> {
    fits(buffer, sizes).map_err(ReceiveError::Kernel)?;
    let args = TrapArgs::reply(cookie, address_of(buffer), sizes, true);
    decode_received(trap_on(buffer, args))
}

/// The result registers of a RECEIVE or REPLY_RECEIVE. No message carries
/// function -1, so `arg0 = -1` always means failure.
pub fn decode_received(result: TrapArgs) -> Result<Received, ReceiveError> {
    if result.value() == -1 {
        return Err(match error_from_number(result.arg1) {
            Error::ReceiveBufferTooSmall => {
                ReceiveError::BufferTooSmall(MessageSizes::from_bits(result.arg3))
            }
            error if result.arg2 == abi::trap::REPLY_DELIVERED => ReceiveError::AfterReply(error),
            error => ReceiveError::Kernel(error),
        });
    }
    Ok(Received {
        function: Function(result.value()),
        cookie: result.arg1,
        sizes: MessageSizes::from_bits(result.arg3),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(total: u16, data: u16, count: u8) -> MessageSizes {
        MessageSizes::from_fields(total, data, count).unwrap_or_default()
    }

    #[test]
    fn send_results_tell_kernel_errors_from_error_replies() {
        assert_eq!(
            decode_send(TrapArgs::error(Error::BadDescriptor)),
            Err(Error::BadDescriptor)
        );
        let error_reply = decode_send(TrapArgs::replied(u32::MAX, 0x1001, sizes(0, 8, 0)));
        assert!(error_reply.is_ok_and(|reply| reply.is_error() && reply.errno == 0x1001));
        let short = decode_send(TrapArgs::replied(u32::MAX, 0, sizes(0, 4, 0)));
        assert!(short.is_ok_and(|reply| reply.value() == -1 && !reply.is_error()));
        // An error number from the future is still an error.
        assert_eq!(
            decode_send(TrapArgs {
                arg1: 999,
                ..TrapArgs::error(Error::BadSizes)
            }),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn receive_results_carry_the_waiting_sizes() {
        let waiting = sizes(100, 90, 1);
        assert_eq!(
            decode_received(TrapArgs::receive_too_small(waiting)),
            Err(ReceiveError::BufferTooSmall(waiting))
        );
        assert_eq!(
            decode_received(TrapArgs::error(Error::NotOwner)),
            Err(ReceiveError::Kernel(Error::NotOwner))
        );
        assert_eq!(
            decode_received(TrapArgs::received(Function(0x8001), u64::MAX, 0, waiting)),
            Ok(Received {
                function: Function(0x8001),
                cookie: u64::MAX,
                sizes: waiting
            })
        );
    }

    #[test]
    fn sizes_beyond_the_buffer_never_reach_the_kernel() {
        let mut buffer = [0u8; 16];
        assert_eq!(
            send(
                Function(0x8000),
                Descriptor(1),
                &mut buffer,
                sizes(17, 0, 0)
            ),
            Err(Error::BadSizes)
        );
        assert_eq!(reply(0, &mut buffer, sizes(32, 0, 0)), Err(Error::BadSizes));
        assert_eq!(
            send(
                abi::function::REPLY,
                Descriptor(1),
                &mut buffer,
                sizes(16, 0, 0)
            ),
            Err(Error::InvalidFunction)
        );
        assert_eq!(capacity_of(&[0u8; 5000]), MAX_TOTAL_SIZE);
    }
}
