//! The echo protocol: the function and error numbers the echo server
//! (`src/main.rs`, the example to copy when writing a server) answers, for
//! its clients to import. It must stay plain constants: no runtime code.
//!
//! Every reply follows the userlib server convention: msgRetVal, msgErrno
//! (0), then the payload described below. An error reply is msgRetVal -1
//! with one of the error numbers below in msgErrno and no payload.
#![no_std]

use abi::error::FIRST_SERVER_ERROR;
use abi::function::{Function, USER_BASE};

/// The name the echo server registers with procman.
pub const NAME: &str = "/srv/echo";

/// The security type of the echo door (its number in the manifest's `types`).
pub const SECURITY_TYPE: u32 = 1;

/// Request: any data, no descriptors. Reply: msgRetVal = the data's
/// length, payload = the same data (so the caller's buffer needs 8 bytes
/// more than the data). Descriptors sent along are closed.
pub const ECHO: Function = Function(USER_BASE);

/// Request: nothing. Reply: payload = the cookie of the caller's reference
/// (a `u64`); the reply sets that cookie to the value plus one, so each
/// client reference counts its own calls (a fresh reference starts at 0).
pub const COUNT: Function = Function(USER_BASE + 1);

/// Request: any number of descriptors. Reply: msgRetVal = their number,
/// and every one of them moved back, with the rights it arrived with (they
/// need the TRANSFER right to travel back).
pub const RETURN_DESCRIPTORS: Function = Function(USER_BASE + 2);

/// msgErrno: the function number is none of the above.
pub const UNKNOWN_FUNCTION: u32 = FIRST_SERVER_ERROR;

/// msgErrno: the caller's buffer has no room for the reply (ECHO needs the
/// data's length plus 8; RETURN_DESCRIPTORS 8 plus 16 per descriptor).
pub const REPLY_DOES_NOT_FIT: u32 = FIRST_SERVER_ERROR + 1;
