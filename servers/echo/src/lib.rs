//! The echo protocol: the echo server's name, function numbers and errors,
//! and its interface, declared once with `userlib::interface!`, which gives
//! the client stub [`EchoClient`] (for clients) and the trait
//! [`EchoServer`] (which `src/main.rs`, the example to copy when writing a
//! server, implements). Nothing here runs on its own.
//!
//! Every reply follows the userlib server convention: msgRetVal, msgErrno
//! (0), then the payload described below. An error reply is msgRetVal -1
//! with an [`EchoError`] number in msgErrno and no payload. A request whose
//! data or descriptors do not match its function's declaration (COUNT with
//! data, ECHO with descriptors, ...) gets [`EchoError::BadRequest`].
#![no_std]

use abi::error::FIRST_SERVER_ERROR;
use abi::function::{Function, USER_BASE};

/// The name the echo server registers with procman.
pub const NAME: &str = "/srv/echo";

/// The security type of the echo door (its number in the manifest's `types`).
pub const SECURITY_TYPE: u32 = 1;

/// ECHO's function number.
pub const ECHO: Function = Function(USER_BASE);

/// COUNT's function number.
pub const COUNT: Function = Function(USER_BASE + 1);

/// RETURN_DESCRIPTORS' function number.
pub const RETURN_DESCRIPTORS: Function = Function(USER_BASE + 2);

userlib::interface! {
    /// Calls the echo server: `EchoClient::new(door)`, `door` a client
    /// reference to its door (procman's OPEN of [`NAME`] gives one).
    pub client EchoClient;
    /// The echo server's side: one method per function.
    pub server EchoServer;
    error EchoError;

    /// ECHO: any data, no descriptors. Reply: msgRetVal = the data's
    /// length, bytes = the same data (so the caller's buffer needs 8 bytes
    /// more than the data).
    fn echo(ECHO) request(bytes) reply(bytes);

    /// COUNT: nothing. Reply: header = the cookie of the caller's
    /// reference (a `u64`); the reply sets that cookie to the value plus
    /// one, so each client reference counts its own calls (a fresh
    /// reference starts at 0).
    fn count(COUNT) request() reply(header: u64);

    /// RETURN_DESCRIPTORS: up to 255 descriptors and no data. Reply:
    /// msgRetVal = their number, and every one of them moved back, with
    /// the rights it arrived with (they need the TRANSFER right to travel
    /// back).
    fn return_descriptors(RETURN_DESCRIPTORS)
        request(descriptors: 0..=255)
        reply(descriptors: 0..=255);
}

userlib::interface_error! {
    /// The echo server's refusals (msgErrno).
    pub enum EchoError {
        /// The function number is none of the above.
        UnknownFunction = FIRST_SERVER_ERROR => "ECHO_UNKNOWN_FUNCTION",
        /// The caller's buffer has no room for the reply (ECHO needs the
        /// data's length plus 8, COUNT 16, RETURN_DESCRIPTORS 8 plus 16 per
        /// descriptor).
        ReplyDoesNotFit = FIRST_SERVER_ERROR + 1 => "ECHO_REPLY_DOES_NOT_FIT",
        /// The request's data or descriptors do not match its function.
        BadRequest = FIRST_SERVER_ERROR + 2 => "ECHO_BAD_REQUEST",
    }
    unknown_function: UnknownFunction,
    reply_does_not_fit: ReplyDoesNotFit,
    bad_request: BadRequest,
}
