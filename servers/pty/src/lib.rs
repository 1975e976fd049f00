//! Pseudo terminals (seed 003; ABI.md §7a.7): the pty protocol, the line
//! discipline and the server that runs pairs.
//!
//! - [`PtyClient`] / [`PtyServer`]: the pty door's protocol, declared once
//!   with `userlib::interface!` (numbers and layouts in `abi::pty`). A
//!   reference with cookie 0 is a *manager* reference: PTY_OPEN makes a
//!   pair and turns that very reference into the pair's (its cookie then
//!   names the pair); every other function needs a pair's reference.
//! - [`discipline`]: canonical and raw input, echo, ^C / ^Z / ^D, output
//!   processing: pure logic, host-tested.
//! - [`service`]: the pairs themselves (pipes for the slave, a thread
//!   draining each pair's output, the door's threads), run by the
//!   standalone `pty` program and by the console server, whose own
//!   terminal is the first pair.
//!
//! Nothing here may block the kernel or trust a caller's numbers: a pair is
//! found only through the cookie the server stored.
#![no_std]

extern crate alloc;

pub mod current_line;
pub mod discipline;
pub mod service;

use abi::pty::{
    ForegroundGroup, MasterReadReply, PTY_CLOSE, PTY_COUNTERS, PTY_GET_FOREGROUND, PTY_GET_MODE,
    PTY_GET_WINDOW, PTY_MASTER_READ, PTY_MASTER_WRITE, PTY_OPEN, PTY_SET_FOREGROUND, PTY_SET_MODE,
    PTY_SET_WINDOW, PtyCounters, PtyMode, PtyOpenReply, PtyOpenRequest, WindowSize, errors,
};

userlib::interface_error! {
    /// The pty server's refusals (msgErrno), numbered in `abi::pty::errors`.
    pub enum PtyError {
        /// The function number is none of the door's.
        UnknownFunction = errors::UNKNOWN_FUNCTION => "PTY_UNKNOWN_FUNCTION",
        /// The caller's buffer has no room for the reply.
        ReplyDoesNotFit = errors::REPLY_DOES_NOT_FIT => "PTY_REPLY_DOES_NOT_FIT",
        /// The request's shape is not its function's, a reserved field is
        /// not zero, or the reference is not of the kind the function
        /// needs (a pair's for pair functions, a manager's for PTY_OPEN).
        BadRequest = errors::BAD_REQUEST => "PTY_BAD_REQUEST",
        /// PTY_OPEN with every pair in use.
        NoFreePair = errors::NO_FREE_PAIR => "PTY_NO_FREE_PAIR",
        /// A mode flag outside `MODE_ALL`.
        BadMode = errors::BAD_MODE => "PTY_BAD_MODE",
        /// A window of zero rows or columns.
        BadWindow = errors::BAD_WINDOW => "PTY_BAD_WINDOW",
        /// A foreground group with no live process (D86).
        BadForeground = errors::BAD_FOREGROUND => "PTY_BAD_FOREGROUND",
        /// MASTER_WRITE past `MAX_MASTER_WRITE`.
        TooLong = errors::TOO_LONG => "PTY_TOO_LONG",
        /// The pair was closed.
        Closed = errors::CLOSED => "PTY_CLOSED",
        /// procman refused what a pair needs (pipes, grants).
        NoResources = errors::NO_RESOURCES => "PTY_NO_RESOURCES",
    }
    unknown_function: UnknownFunction,
    reply_does_not_fit: ReplyDoesNotFit,
    bad_request: BadRequest,
}

userlib::interface! {
    /// Calls a pty server: `PtyClient::new(reference)`, a manager reference
    /// (`procman::open("/dev/ptmx")`) or a pair's.
    pub client PtyClient;
    /// The pty server's side.
    pub server PtyServer;
    error PtyError;

    /// PTY_OPEN (manager reference): a new pair whose slave ends go to
    /// process `slave`; the reference used becomes the pair's. Slot 0: the
    /// event signalled when output waits for MASTER_READ.
    fn open(PTY_OPEN) request(header: PtyOpenRequest) reply(header: PtyOpenReply, descriptors: 1);

    /// PTY_MASTER_WRITE: bytes typed at the terminal.
    fn master_write(PTY_MASTER_WRITE) request(bytes) reply();

    /// PTY_MASTER_READ: the output waiting, never blocking.
    fn master_read(PTY_MASTER_READ) request() reply(header: MasterReadReply, bytes);

    /// PTY_SET_MODE.
    fn set_mode(PTY_SET_MODE) request(header: PtyMode) reply();

    /// PTY_GET_MODE.
    fn get_mode(PTY_GET_MODE) request() reply(header: PtyMode);

    /// PTY_SET_WINDOW.
    fn set_window(PTY_SET_WINDOW) request(header: WindowSize) reply();

    /// PTY_GET_WINDOW.
    fn get_window(PTY_GET_WINDOW) request() reply(header: WindowSize);

    /// PTY_SET_FOREGROUND: the process group ^C and ^Z signal (0: none).
    /// Waits while a ^C is being acted on, so a job's output flushed by ^C
    /// never takes what the shell writes after it cleared its job.
    fn set_foreground(PTY_SET_FOREGROUND) request(header: ForegroundGroup) reply();

    /// PTY_GET_FOREGROUND.
    fn get_foreground(PTY_GET_FOREGROUND) request() reply(header: ForegroundGroup);

    /// PTY_CLOSE: hangs the pair up.
    fn close(PTY_CLOSE) request() reply();

    /// PTY_COUNTERS.
    fn counters(PTY_COUNTERS) request() reply(header: PtyCounters);
}
