//! Pseudo terminals (seed 003; ABI.md §7a.7): the numbers and layouts of
//! the pty server's two doors. The *manager* door (`/dev/ptmx`) makes
//! pairs ([`PTY_OPEN`]); each pair has a door of its own (`/dev/pty/N`)
//! for the master's bytes and the terminal's controls.
//!
//! The slave side of a pair is not a door: it is standard streams (D38).
//! The pair's input is a pipe whose read end the pty grants to the slave
//! (its stdin) and whose write end the server keeps, writing cooked input
//! into it; its output is a pipe whose write end the slave gets (stdout
//! and stderr) and whose read end the server drains. Function numbers are
//! `USER_BASE + 0x455..` and errors `0x1194..` (a server's errors, from
//! `FIRST_SERVER_ERROR` on, never met by another server's).
//!
//! This module must never hold logic: the line discipline is the pty
//! crate's; here are only the numbers and the layouts.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::{Function, USER_BASE};

/// Manager door: make a pair: [`PtyOpenRequest`] -> [`PtyOpenReply`];
/// slot 0: a client reference to the pair's door, slot 1: the event the
/// pair signals when output waits for MASTER_READ.
pub const PTY_OPEN: Function = Function(USER_BASE + 0x455);
/// Pair door: bytes typed at the terminal (at most [`MAX_MASTER_WRITE`]),
/// through the line discipline: bytes -> nothing.
pub const PTY_MASTER_WRITE: Function = Function(USER_BASE + 0x456);
/// Pair door: the terminal's output waiting (echo and the slave's output,
/// processed), as much as the reply has room for, never blocking: empty
/// -> [`MasterReadReply`], bytes.
pub const PTY_MASTER_READ: Function = Function(USER_BASE + 0x457);
/// Pair door: set the terminal's mode: [`PtyMode`] -> nothing.
pub const PTY_SET_MODE: Function = Function(USER_BASE + 0x458);
/// Pair door: the terminal's mode: empty -> [`PtyMode`].
pub const PTY_GET_MODE: Function = Function(USER_BASE + 0x459);
/// Pair door: set the window size: [`WindowSize`] -> nothing.
pub const PTY_SET_WINDOW: Function = Function(USER_BASE + 0x45A);
/// Pair door: the window size: empty -> [`WindowSize`].
pub const PTY_GET_WINDOW: Function = Function(USER_BASE + 0x45B);
/// Pair door: the foreground process group, which ^C and ^Z signal:
/// [`ForegroundGroup`] -> nothing (group 0: none).
pub const PTY_SET_FOREGROUND: Function = Function(USER_BASE + 0x45C);
/// Pair door: the foreground process group: empty -> [`ForegroundGroup`].
pub const PTY_GET_FOREGROUND: Function = Function(USER_BASE + 0x45D);
/// Pair door: end the pair: its slave reads end of file and its writes
/// fail with a broken pipe; the pair's name goes. Empty -> nothing.
pub const PTY_CLOSE: Function = Function(USER_BASE + 0x45E);
/// Pair door: what the pair has counted: empty -> [`PtyCounters`].
pub const PTY_COUNTERS: Function = Function(USER_BASE + 0x45F);

/// The most pairs one pty server holds at once.
pub const MAX_PAIRS: usize = 8;
/// The most bytes one MASTER_WRITE carries.
pub const MAX_MASTER_WRITE: usize = 1024;
/// The most output bytes a pair keeps for MASTER_READ; output past it
/// waits in the slave's pipe (the slave's writes block), never dropped.
pub const MAX_MASTER_OUTPUT: usize = 4096;
/// The longest canonical input line (its `\n` not counted): bytes typed
/// past it are dropped and not echoed.
pub const MAX_INPUT_LINE: usize = 255;

/// [`PtyMode::flags`]: canonical input (lines, edited: erase, kill line,
/// ^D end of file); without it, raw: each byte goes to the slave as typed.
pub const MODE_CANONICAL: u32 = 1 << 0;
/// [`PtyMode::flags`]: typed bytes are echoed.
pub const MODE_ECHO: u32 = 1 << 1;
/// [`PtyMode::flags`]: ^C and ^Z are recognised (not passed to the slave).
pub const MODE_SIGNALS: u32 = 1 << 2;
/// [`PtyMode::flags`]: output `\n` becomes `\r\n`.
pub const MODE_OUTPUT_CRLF: u32 = 1 << 3;
/// Every flag a mode may carry; any other bit is `PTY_BAD_MODE`.
pub const MODE_ALL: u32 = MODE_CANONICAL | MODE_ECHO | MODE_SIGNALS | MODE_OUTPUT_CRLF;
/// A new pair's mode: canonical, echo, signals, `\r\n` output.
pub const MODE_DEFAULT: u32 = MODE_ALL;

/// A new pair's window: 24 rows of 80 columns.
pub const DEFAULT_WINDOW: WindowSize = WindowSize::new(24, 80);

/// The pty server's errors (msgErrno), from `0x1194`.
pub mod errors {
    /// The function number is none of the door's.
    pub const UNKNOWN_FUNCTION: u32 = 0x1194;
    /// The caller's buffer has no room for the reply.
    pub const REPLY_DOES_NOT_FIT: u32 = 0x1195;
    /// The request's data or descriptors do not match its function, or a
    /// reserved field is not zero.
    pub const BAD_REQUEST: u32 = 0x1196;
    /// PTY_OPEN with [`super::MAX_PAIRS`] pairs open.
    pub const NO_FREE_PAIR: u32 = 0x1197;
    /// PTY_SET_MODE with a flag outside [`super::MODE_ALL`].
    pub const BAD_MODE: u32 = 0x1198;
    /// PTY_SET_WINDOW with zero rows or zero columns.
    pub const BAD_WINDOW: u32 = 0x1199;
    /// PTY_SET_FOREGROUND of a group that is none: procman knows no live
    /// process in it (D86).
    pub const BAD_FOREGROUND: u32 = 0x119A;
    /// PTY_MASTER_WRITE of more than [`super::MAX_MASTER_WRITE`] bytes.
    pub const TOO_LONG: u32 = 0x119B;
    /// The pair was closed (PTY_CLOSE): only PTY_CLOSE answers again.
    pub const CLOSED: u32 = 0x119C;
    /// PTY_OPEN: procman refused the pair's pipes, grants or name (its
    /// error is in the server's log).
    pub const NO_RESOURCES: u32 = 0x119D;
}

/// PTY_OPEN's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PtyOpenRequest {
    /// The process the slave's pipe ends are granted to (it opens them
    /// with PIPE_OPEN, or names them in a SPAWN's streams).
    pub slave: u32,
    /// Zero.
    pub reserved: u32,
}

impl PtyOpenRequest {
    /// A pair whose slave ends go to process `slave`.
    pub const fn new(slave: u32) -> Self {
        PtyOpenRequest { slave, reserved: 0 }
    }
}

/// PTY_OPEN's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PtyOpenReply {
    /// The pair's number N (its door is `/dev/pty/N`).
    pub pair: u32,
    /// The pipe whose read end is the slave's stdin (granted).
    pub input_pipe: u32,
    /// The pipe whose write end is the slave's stdout and stderr (granted).
    pub output_pipe: u32,
    /// Zero.
    pub reserved: u32,
}

/// PTY_MASTER_READ's reply header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MasterReadReply {
    /// 1: the slave's output ended (every write end gone) and nothing is
    /// left to read; 0 otherwise.
    pub ended: u32,
    /// Zero.
    pub reserved: u32,
}

/// PTY_SET_MODE's request, PTY_GET_MODE's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PtyMode {
    /// `MODE_*` bits.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
}

impl PtyMode {
    /// A mode of `flags`.
    pub const fn new(flags: u32) -> Self {
        PtyMode { flags, reserved: 0 }
    }
}

/// PTY_SET_WINDOW's request, PTY_GET_WINDOW's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WindowSize {
    /// Rows (at least 1).
    pub rows: u16,
    /// Columns (at least 1).
    pub columns: u16,
    /// Zero.
    pub reserved: u32,
}

impl WindowSize {
    /// A window of `rows` by `columns`.
    pub const fn new(rows: u16, columns: u16) -> Self {
        WindowSize {
            rows,
            columns,
            reserved: 0,
        }
    }
}

/// PTY_SET_FOREGROUND's request, PTY_GET_FOREGROUND's reply: the
/// terminal's foreground process group (tcsetpgrp's), which ^C and ^Z
/// signal (D86).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ForegroundGroup {
    /// The group's id (its leader's pid); 0: no foreground group.
    pub group: u32,
    /// Zero.
    pub reserved: u32,
}

impl ForegroundGroup {
    /// Group `group` in the foreground (0: none).
    pub const fn new(group: u32) -> Self {
        ForegroundGroup { group, reserved: 0 }
    }

    /// No foreground group: ^C and ^Z signal nobody.
    pub const NONE: ForegroundGroup = ForegroundGroup::new(0);
}

/// PTY_COUNTERS' reply: what a pair has seen since it was opened.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PtyCounters {
    /// ^C recognised.
    pub interrupts: u32,
    /// ^Z recognised.
    pub suspends: u32,
    /// ^C and ^Z whose signal procman delivered to the foreground group
    /// (one per key, however many processes the group has).
    pub signalled: u32,
    /// ^C and ^Z whose group SIGNAL procman refused (PM_SIGNAL_DENIED: a
    /// member out of the server's reach; PM_NO_SUCH_GROUP: no live
    /// member left), so nothing was delivered.
    pub signal_refused: u32,
    /// Bytes handed to the slave's input.
    pub input_bytes: u32,
    /// Bytes of the slave's output taken from its pipe.
    pub output_bytes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_foreground_group_is_group_zero() {
        assert_eq!(ForegroundGroup::NONE, ForegroundGroup::default());
        assert_eq!(ForegroundGroup::new(7).group, 7);
        assert_eq!(size_of::<ForegroundGroup>(), 8);
    }

    #[test]
    fn numbers_are_in_the_terminal_block() {
        for function in [PTY_OPEN, PTY_COUNTERS] {
            assert!((USER_BASE + 0x455..=USER_BASE + 0x46F).contains(&function.0));
        }
        assert!((0x1194..=0x11AF).contains(&errors::UNKNOWN_FUNCTION));
        assert!((0x1194..=0x11AF).contains(&errors::NO_RESOURCES));
        assert_eq!(MODE_DEFAULT & !MODE_ALL, 0);
    }
}
