//! The client side of a call: [`call`] sends a [`Message`] and turns the
//! answer into a [`Reply`] or a [`CallError`].

use abi::error::FIRST_SERVER_ERROR;
use abi::function::Function;
use abi::{Descriptor, Error};

use crate::ipc::{self, Reply};
use crate::message::Message;

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The kernel refused or could not complete the call (`arg0 = -1`,
    /// `arg1 = error`, no data): bad descriptor, missing right, the server
    /// died, ...
    Kernel(Error),
    /// The server answered with an error reply: msgRetVal -1 and this
    /// msgErrno. Servers number their own errors from
    /// `abi::error::FIRST_SERVER_ERROR`; a smaller number is the
    /// `abi::Error` the server met while answering (see
    /// [`crate::server::serve`]).
    Server(u32),
}

impl CallError {
    /// The error number, whichever side reported it.
    pub fn errno(&self) -> u32 {
        match self {
            CallError::Kernel(error) => *error as u32,
            CallError::Server(errno) => *errno,
        }
    }
}

impl From<Error> for CallError {
    fn from(error: Error) -> Self {
        CallError::Kernel(error)
    }
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            CallError::Kernel(error) => write!(f, "kernel error {error}"),
            CallError::Server(errno) if errno < FIRST_SERVER_ERROR => {
                match Error::from_number(errno) {
                    Some(error) => write!(f, "server error {error}"),
                    None => write!(f, "server error {errno:#x}"),
                }
            }
            CallError::Server(errno) => write!(f, "server error {errno:#x}"),
        }
    }
}

/// Calls `function` on `target` with `message` and waits for the reply.
///
/// The whole buffer is msgTotalSize, so the reply may be as large as the
/// buffer. On success `message` holds the reply (see
/// [`Message::payload`], [`Message::take_descriptor`]); clear it before
/// building the next request. An error reply's descriptors (it should carry
/// none) are closed. On a kernel error the message is left as it was sent.
pub fn call<B: AsRef<[u8]> + AsMut<[u8]>>(
    target: Descriptor,
    function: Function,
    message: &mut Message<B>,
) -> Result<Reply, CallError> {
    let sizes = message.sizes();
    let reply = ipc::send(function, target, message.buffer_mut(), sizes)?;
    message
        .set_arrived(reply.sizes)
        .map_err(|_| CallError::Kernel(Error::BadSizes))?;
    if reply.is_error() {
        message.discard();
        return Err(CallError::Server(reply.errno));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_kernel::{self, FakeCall};
    use abi::{DescriptorSlot, MessageSizes, Rights, TrapArgs};

    #[test]
    fn a_reply_replaces_the_request_in_the_buffer() {
        let (result, message) = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.function(), Function(0x8005));
                assert_eq!(call.target(), Descriptor(3));
                assert_eq!(call.sizes().total_size(), 4095);
                assert_eq!(call.data(), b"hello");
                let mut reply = alloc::vec![2, 0, 0, 0, 0, 0, 0, 0];
                reply.extend_from_slice(b"HELLO");
                let sizes =
                    call.write_reply(&reply, &[DescriptorSlot::copy(Descriptor(9), Rights::SEND)]);
                TrapArgs::replied(2, 0, sizes)
            },
            || {
                let mut message = crate::Message::new();
                let _ = message.push_data(b"hello");
                (call(Descriptor(3), Function(0x8005), &mut message), message)
            },
        );
        let mut message = message;
        assert!(
            result.is_ok_and(|reply| reply.ret_val == 2 && reply.sizes.descriptor_count() == 1)
        );
        assert_eq!(message.payload(), b"HELLO");
        assert_eq!(
            message
                .take_descriptor(0)
                .map(crate::OwnedDescriptor::into_raw),
            Some(Descriptor(9))
        );
    }

    #[test]
    fn error_replies_and_kernel_errors_are_told_apart() {
        let server = fake_kernel::run(
            |call: &mut FakeCall| {
                let sizes = call.write_reply(&[0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0, 0], &[]);
                TrapArgs::replied(u32::MAX, 0x1001, sizes)
            },
            || call(Descriptor(3), Function(0x8000), &mut crate::Message::new()),
        );
        assert_eq!(server, Err(CallError::Server(0x1001)));
        let kernel = fake_kernel::run(
            |_: &mut FakeCall| TrapArgs::error(Error::PeerDied),
            || call(Descriptor(3), Function(0x8000), &mut crate::Message::new()),
        );
        assert_eq!(kernel, Err(CallError::Kernel(Error::PeerDied)));
        // A value of -1 with less than 8 bytes of data is an ordinary reply.
        let plain = fake_kernel::run(
            |_: &mut FakeCall| {
                TrapArgs::replied(u32::MAX, 0, MessageSizes::new().with_data_size(4))
            },
            || call(Descriptor(3), Function(0x8000), &mut crate::Message::new()),
        );
        assert!(plain.is_ok_and(|reply| reply.value() == -1));
    }

    #[test]
    fn call_errors_print_their_names() {
        assert_eq!(
            CallError::Server(Error::ReplyTooLarge as u32).to_string(),
            "server error REPLY_TOO_LARGE (reply does not fit the sender's buffer)"
        );
        assert_eq!(CallError::Server(0x1000).to_string(), "server error 0x1000");
        assert!(
            CallError::Kernel(Error::PeerDied)
                .to_string()
                .starts_with("kernel error PEER_DIED")
        );
    }
}
