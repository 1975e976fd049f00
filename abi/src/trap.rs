//! The four trap registers on entry and on return, and their decoding.
//!
//! x86_64: one `syscall` instruction; arg0 = rax, arg1 = rdi, arg2 = rsi,
//! arg3 = rdx. rcx and r11 are clobbered by the instruction; every other
//! register is preserved. Results come back in the same four registers.
//!
//! 32-bit fields (`arg0`'s function or return value, `arg3`'s sizes, the
//! descriptor in `arg1` for SEND and RECEIVE) occupy the low 32 bits; on
//! entry the upper 32 bits of those registers are reserved and must be zero,
//! on return the kernel writes them as zero.

use crate::Error;
use crate::descriptor::Descriptor;
use crate::function::{Function, KernelFunction};
use crate::message::MessageSizes;

/// The four registers as they cross the trap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapArgs {
    /// rax: function on entry; function, return value or -1 on return.
    pub arg0: u64,
    /// rdi: target / receive descriptor or cookie on entry; cookie, errno on return.
    pub arg1: u64,
    /// rsi: message buffer address.
    pub arg2: u64,
    /// rdx: [`MessageSizes`].
    pub arg3: u64,
}

/// SEND's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendArgs {
    /// The function number (never RECEIVE, REPLY or REPLY_RECEIVE).
    pub function: Function,
    /// The target descriptor (NULL for kernel and procman functions).
    pub target: Descriptor,
    /// The buffer's user address.
    pub buffer: u64,
    /// The buffer's sizes (not yet validated against each other).
    pub sizes: MessageSizes,
}

/// RECEIVE's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveArgs {
    /// The owner reference of the door to receive from.
    pub door: Descriptor,
    /// The receive buffer's user address.
    pub buffer: u64,
    /// The receive buffer's size.
    pub total_size: u16,
}

/// REPLY's and REPLY_RECEIVE's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyArgs {
    /// Stored into the caller's reference.
    pub cookie: u64,
    /// The reply buffer (and, for REPLY_RECEIVE, the next receive buffer).
    pub buffer: u64,
    /// The reply's sizes; for REPLY_RECEIVE the total is also the receive size.
    pub sizes: MessageSizes,
}

/// A decoded trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Any function number but the three below.
    Send(SendArgs),
    /// RECEIVE.
    Receive(ReceiveArgs),
    /// REPLY.
    Reply(ReplyArgs),
    /// REPLY_RECEIVE: REPLY, then RECEIVE on the door the answered message
    /// came through, into the same buffer (ABI.md, REPLY_RECEIVE).
    ReplyReceive(ReplyArgs),
}

const HIGH_HALF: u64 = 0xffff_ffff_0000_0000;

impl TrapArgs {
    /// Decodes the entry registers. Checks reserved bits only; sizes, buffers
    /// and descriptors are checked by the operation.
    pub fn decode(&self) -> Result<Call, Error> {
        if self.arg0 & HIGH_HALF != 0 || self.arg3 & HIGH_HALF != 0 {
            return Err(Error::ReservedBits);
        }
        let function = Function(self.arg0 as u32 as i32);
        let sizes = MessageSizes::from_bits(self.arg3);
        // Only three numbers are not SENDs; look no further for the rest.
        let operation = match function.0 {
            1..=3 => function.kernel_function(),
            _ => None,
        };
        match operation {
            Some(KernelFunction::Receive) => {
                if self.arg1 & HIGH_HALF != 0 {
                    return Err(Error::ReservedBits);
                }
                if sizes.data_size() != 0 || sizes.descriptor_count() != 0 {
                    return Err(Error::BadSizes);
                }
                Ok(Call::Receive(ReceiveArgs {
                    door: Descriptor(self.arg1 as u32),
                    buffer: self.arg2,
                    total_size: sizes.total_size(),
                }))
            }
            Some(KernelFunction::Reply) => Ok(Call::Reply(ReplyArgs {
                cookie: self.arg1,
                buffer: self.arg2,
                sizes,
            })),
            Some(KernelFunction::ReplyReceive) => Ok(Call::ReplyReceive(ReplyArgs {
                cookie: self.arg1,
                buffer: self.arg2,
                sizes,
            })),
            _ => {
                if self.arg1 & HIGH_HALF != 0 {
                    return Err(Error::ReservedBits);
                }
                Ok(Call::Send(SendArgs {
                    function,
                    target: Descriptor(self.arg1 as u32),
                    buffer: self.arg2,
                    sizes,
                }))
            }
        }
    }

    /// Encodes SEND's entry registers.
    pub const fn send(
        function: Function,
        target: Descriptor,
        buffer: u64,
        sizes: MessageSizes,
    ) -> Self {
        TrapArgs {
            arg0: function.bits(),
            arg1: target.0 as u64,
            arg2: buffer,
            arg3: sizes.into_bits(),
        }
    }

    /// Encodes RECEIVE's entry registers.
    pub const fn receive(door: Descriptor, buffer: u64, total_size: u16) -> Self {
        let sizes = MessageSizes::of(total_size, 0, 0);
        TrapArgs {
            arg0: crate::function::RECEIVE.bits(),
            arg1: door.0 as u64,
            arg2: buffer,
            arg3: sizes.into_bits(),
        }
    }

    /// Encodes REPLY's (or, with `and_receive`, REPLY_RECEIVE's) entry registers.
    pub const fn reply(cookie: u64, buffer: u64, sizes: MessageSizes, and_receive: bool) -> Self {
        let function = if and_receive {
            crate::function::REPLY_RECEIVE
        } else {
            crate::function::REPLY
        };
        TrapArgs {
            arg0: function.bits(),
            arg1: cookie,
            arg2: buffer,
            arg3: sizes.into_bits(),
        }
    }

    /// Encodes REPLY_RECEIVE's entry registers.
    pub const fn reply_receive(cookie: u64, buffer: u64, sizes: MessageSizes) -> Self {
        Self::reply(cookie, buffer, sizes, true)
    }

    /// The return registers of a failed trap: -1, the error, zeros.
    pub const fn error(error: Error) -> Self {
        TrapArgs {
            arg0: 0xffff_ffff,
            arg1: error as u64,
            arg2: 0,
            arg3: 0,
        }
    }

    /// The return registers of RECEIVE_BUFFER_TOO_SMALL: like [`Self::error`]
    /// but `arg3` carries the waiting message's sizes.
    pub const fn receive_too_small(sender_sizes: MessageSizes) -> Self {
        TrapArgs {
            arg3: sender_sizes.into_bits(),
            ..Self::error(Error::ReceiveBufferTooSmall)
        }
    }

    /// The return registers of a successful RECEIVE.
    pub const fn received(
        function: Function,
        cookie: u64,
        buffer: u64,
        sender_sizes: MessageSizes,
    ) -> Self {
        TrapArgs {
            arg0: function.bits(),
            arg1: cookie,
            arg2: buffer,
            arg3: sender_sizes.into_bits(),
        }
    }

    /// The return registers of a completed SEND: msgRetVal, msgErrno, 0, and
    /// the reply's data size and descriptor count (total size 0).
    pub const fn replied(ret_val: u32, errno: u32, reply_sizes: MessageSizes) -> Self {
        TrapArgs {
            arg0: ret_val as u64,
            arg1: errno as u64,
            arg2: 0,
            arg3: reply_sizes.with_total_size(0).into_bits(),
        }
    }

    /// [`Self::replied`] with the reply's data size and descriptor count.
    pub const fn completed(ret_val: u32, errno: u32, data_size: u16, descriptor_count: u8) -> Self {
        Self::replied(
            ret_val,
            errno,
            MessageSizes::of(0, data_size, descriptor_count),
        )
    }

    /// `arg0` as a signed 32-bit value (-1 on failure).
    pub const fn value(&self) -> i32 {
        self.arg0 as u32 as i32
    }

    /// Whether these return registers are a failed trap (`arg0 = -1` with
    /// no reply data), not a completed SEND whose reply says -1.
    pub fn is_kernel_failure(&self) -> bool {
        self.value() == -1 && MessageSizes::from_bits(self.arg3).data_size() == 0
    }

    /// The error of a failed trap: `Some` when `arg0` is -1, `arg3`'s data
    /// size is 0, and `arg1` names a kernel error.
    pub fn kernel_error(&self) -> Option<Error> {
        if self.value() != -1 || MessageSizes::from_bits(self.arg3).data_size() != 0 {
            return None;
        }
        Error::from_number(self.arg1 as u32)
    }
}

/// `arg2` of a failed REPLY_RECEIVE whose reply half was delivered (only the
/// receive half failed); a failed REPLY_RECEIVE with `arg2 = 0` did nothing.
pub const REPLY_DELIVERED: u64 = 1;

/// `arg2` of a SEND that failed with INTERRUPTED after its server had
/// received it (ABI.md §6.10): the server may have acted on it, and its
/// REPLY gets CALLER_GONE. (0: the call was withdrawn unseen.)
pub const CALL_RECEIVED: u64 = 2;

/// msgRetVal: the first 32-bit word of the reply data if it has at least 4
/// bytes, else 0.
pub fn ret_val_of(reply_data: &[u8]) -> u32 {
    word(reply_data, 0)
}

/// msgErrno: the second 32-bit word if the reply data has at least 8 bytes, else 0.
pub fn errno_of(reply_data: &[u8]) -> u32 {
    word(reply_data, 4)
}

fn word(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(bytes) => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decode_routes_the_three_reserved_numbers() {
        let s = MessageSizes::from_fields(64, 0, 0).unwrap_or_default();
        assert!(matches!(
            TrapArgs::receive(Descriptor(4), 0x1000, 64).decode(),
            Ok(Call::Receive(_))
        ));
        assert!(
            matches!(TrapArgs::reply(7, 0x1000, s, false).decode(), Ok(Call::Reply(r)) if r.cookie == 7)
        );
        assert!(matches!(
            TrapArgs::reply(u64::MAX, 0, s, true).decode(),
            Ok(Call::ReplyReceive(_))
        ));
        let send = TrapArgs::send(Function(0x8000), Descriptor(3), 0x2000, s);
        assert_eq!(
            send.decode(),
            Ok(Call::Send(SendArgs {
                function: Function(0x8000),
                target: Descriptor(3),
                buffer: 0x2000,
                sizes: s
            }))
        );
    }

    #[test]
    fn reserved_bits_are_rejected() {
        let ok = TrapArgs::send(Function(0x8000), Descriptor(3), 0, MessageSizes::new());
        assert_eq!(
            TrapArgs {
                arg0: ok.arg0 | 1 << 32,
                ..ok
            }
            .decode(),
            Err(Error::ReservedBits)
        );
        assert_eq!(
            TrapArgs {
                arg1: ok.arg1 | 1 << 63,
                ..ok
            }
            .decode(),
            Err(Error::ReservedBits)
        );
        assert_eq!(
            TrapArgs {
                arg3: 1 << 40,
                ..ok
            }
            .decode(),
            Err(Error::ReservedBits)
        );
        let recv = TrapArgs::receive(Descriptor(1), 0, 0);
        assert_eq!(
            TrapArgs {
                arg1: 1 << 32,
                ..recv
            }
            .decode(),
            Err(Error::ReservedBits)
        );
        assert_eq!(
            TrapArgs {
                arg3: 1 << 8,
                ..recv
            }
            .decode(),
            Err(Error::BadSizes)
        );
        assert_eq!(TrapArgs { arg3: 1, ..recv }.decode(), Err(Error::BadSizes));
        // -1 sign-extended to 64 bits is not -1 in the low half with zeros above.
        assert_eq!(
            TrapArgs {
                arg0: u64::MAX,
                ..ok
            }
            .decode(),
            Err(Error::ReservedBits)
        );
    }

    #[test]
    fn ret_val_and_errno_follow_the_data_size() {
        assert_eq!((ret_val_of(&[1, 2, 3]), errno_of(&[1, 2, 3])), (0, 0));
        assert_eq!(
            (
                ret_val_of(&[1, 0, 0, 0, 9, 9, 9]),
                errno_of(&[1, 0, 0, 0, 9, 9, 9])
            ),
            (1, 0)
        );
        assert_eq!(errno_of(&[0, 0, 0, 0, 5, 0, 0, 0, 1]), 5);
    }

    #[test]
    fn kernel_errors_are_told_apart_from_error_replies() {
        let e = TrapArgs::error(Error::BadBuffer);
        assert_eq!(e.kernel_error(), Some(Error::BadBuffer));
        let reply = TrapArgs::replied(
            u32::MAX,
            Error::BadBuffer as u32,
            MessageSizes::new().with_data_size(8),
        );
        assert_eq!(reply.value(), -1);
        assert_eq!(reply.kernel_error(), None);
    }

    proptest! {
        /// Decoding never panics, and whatever decodes re-encodes to the same registers.
        #[test]
        fn decode_is_total_and_round_trips(arg0 in any::<u64>(), arg1 in any::<u64>(), arg2 in any::<u64>(), arg3 in any::<u64>()) {
            let args = TrapArgs { arg0, arg1, arg2, arg3 };
            if let Ok(call) = args.decode() {
                let again = match call {
                    Call::Send(s) => TrapArgs::send(s.function, s.target, s.buffer, s.sizes),
                    Call::Receive(r) => TrapArgs::receive(r.door, r.buffer, r.total_size),
                    Call::Reply(r) => TrapArgs::reply(r.cookie, r.buffer, r.sizes, false),
                    Call::ReplyReceive(r) => TrapArgs::reply(r.cookie, r.buffer, r.sizes, true),
                };
                prop_assert_eq!(again, args);
            }
        }
    }
}
