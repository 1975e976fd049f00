//! The console protocol and the terminal logic the console server runs.
//!
//! - [`ConsoleClient`] / [`ConsoleServer`]: WRITE (bytes to the terminal)
//!   and READ_LINE (the next line typed, blocking until there is one),
//!   declared once with `userlib::interface!`.
//! - [`LineDiscipline`]: canonical input: echo, backspace, kill line (^U),
//!   end of input (^D on an empty line); a finished line is handed over
//!   whole, never a partial one.
//! - [`Screen`]: what is on the terminal's current line, so a kernel log
//!   line that arrives while a prompt or half-typed input is there is
//!   written on a line of its own and the partial line drawn again below
//!   it (ABI.md §6.7, D46).
//!
//! Pure logic, no I/O: the server (`src/main.rs`) owns the UART and the
//! kernel log; nothing here may touch a port or block.
#![no_std]

extern crate alloc;

use abi::error::FIRST_SERVER_ERROR;
use abi::function::{Function, USER_BASE};
use alloc::vec::Vec;
use userlib::interface::InterfaceError;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// WRITE's function number.
pub const WRITE: Function = Function(USER_BASE);

/// READ_LINE's function number.
pub const READ_LINE: Function = Function(USER_BASE + 1);

/// The longest input line (its `\n` not counted): typing past it rings
/// nothing and is dropped.
pub const MAX_INPUT_LINE: usize = 255;

/// The most bytes one WRITE carries.
pub const MAX_WRITE: usize = 4000;

/// READ_LINE's reply header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ReadLineReply {
    /// [`LINE`]: the bytes are a line (without its `\n`); [`END`]: the
    /// input ended (^D on an empty line), no bytes.
    pub status: u32,
    /// Zero.
    pub reserved: u32,
}

/// [`ReadLineReply::status`]: a line.
pub const LINE: u32 = 0;
/// [`ReadLineReply::status`]: the end of input.
pub const END: u32 = 1;

userlib::interface! {
    /// Calls the console server: `ConsoleClient::new(door)`, `door` the
    /// client reference the console gives the programs it starts (their
    /// descriptor 1).
    pub client ConsoleClient;
    /// The console server's side.
    pub server ConsoleServer;
    error ConsoleError;

    /// WRITE: bytes for the terminal (at most [`MAX_WRITE`]), written in
    /// one piece, never split by a kernel log line.
    fn write(WRITE) request(bytes) reply();

    /// READ_LINE: waits for the next line typed (canonical input) and
    /// returns it without its `\n`, or [`END`].
    fn read_line(READ_LINE) request() reply(header: ReadLineReply, bytes);
}

/// The console server's refusals (msgErrno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ConsoleError {
    /// The function number is none of the above.
    UnknownFunction = FIRST_SERVER_ERROR,
    /// The caller's buffer has no room for the reply.
    ReplyDoesNotFit = FIRST_SERVER_ERROR + 1,
    /// The request's data or descriptors do not match its function.
    BadRequest = FIRST_SERVER_ERROR + 2,
    /// WRITE of more than [`MAX_WRITE`] bytes.
    TooLong = FIRST_SERVER_ERROR + 3,
}

impl InterfaceError for ConsoleError {
    const BAD_REQUEST: Self = ConsoleError::BadRequest;
    const UNKNOWN_FUNCTION: Self = ConsoleError::UnknownFunction;
    const REPLY_DOES_NOT_FIT: Self = ConsoleError::ReplyDoesNotFit;

    fn number(self) -> u32 {
        self as u32
    }

    fn from_number(number: u32) -> Option<Self> {
        [
            ConsoleError::UnknownFunction,
            ConsoleError::ReplyDoesNotFit,
            ConsoleError::BadRequest,
            ConsoleError::TooLong,
        ]
        .into_iter()
        .find(|e| *e as u32 == number)
    }

    fn name(self) -> &'static str {
        match self {
            ConsoleError::UnknownFunction => "CONSOLE_UNKNOWN_FUNCTION",
            ConsoleError::ReplyDoesNotFit => "CONSOLE_REPLY_DOES_NOT_FIT",
            ConsoleError::BadRequest => "CONSOLE_BAD_REQUEST",
            ConsoleError::TooLong => "CONSOLE_TOO_LONG",
        }
    }
}

/// What typing finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completed {
    /// A line, without its `\n`.
    Line(Vec<u8>),
    /// ^D on an empty line: the end of input.
    End,
}

/// Backspace as typed: BS or DEL.
const BACKSPACE: [u8; 2] = [0x08, 0x7f];
/// ^U: erase the line.
const KILL_LINE: u8 = 0x15;
/// ^D: end of input on an empty line.
const END_OF_INPUT: u8 = 0x04;
/// What erases one character on the terminal.
const ERASE: &[u8] = b"\x08 \x08";

/// Canonical input: the line being typed.
#[derive(Debug, Default)]
pub struct LineDiscipline {
    line: Vec<u8>,
    /// The last byte was a CR: a LF right after it ends nothing more.
    after_cr: bool,
}

impl LineDiscipline {
    /// Nothing typed.
    pub const fn new() -> Self {
        LineDiscipline {
            line: Vec::new(),
            after_cr: false,
        }
    }

    /// Takes one typed byte: appends what the terminal should show to
    /// `echo` and returns a finished line or the end of input.
    pub fn feed(&mut self, byte: u8, echo: &mut Vec<u8>) -> Option<Completed> {
        let after_cr = core::mem::take(&mut self.after_cr);
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                echo.push(b'\n');
                Some(Completed::Line(core::mem::take(&mut self.line)))
            }
            byte if BACKSPACE.contains(&byte) => {
                if self.line.pop().is_some() {
                    echo.extend_from_slice(ERASE);
                }
                None
            }
            KILL_LINE => {
                for _ in self.line.drain(..) {
                    echo.extend_from_slice(ERASE);
                }
                None
            }
            END_OF_INPUT if self.line.is_empty() => Some(Completed::End),
            // Other control characters (^D inside a line among them) do
            // nothing.
            0..=0x1f => None,
            byte => {
                if self.line.len() < MAX_INPUT_LINE {
                    self.line.push(byte);
                    echo.push(byte);
                }
                None
            }
        }
    }

    /// The line typed so far.
    pub fn pending(&self) -> &[u8] {
        &self.line
    }
}

/// The most bytes of the current line the screen keeps to draw again.
pub const MAX_PARTIAL: usize = 512;

/// The terminal's current line: what was written since the last `\n`.
#[derive(Debug, Default)]
pub struct Screen {
    partial: Vec<u8>,
}

/// Returns the cursor to the line's start and erases the line (CR, then
/// ANSI "erase to end of line").
pub const CLEAR_LINE: &[u8] = b"\r\x1b[K";

impl Screen {
    /// An empty line.
    pub const fn new() -> Self {
        Screen {
            partial: Vec::new(),
        }
    }

    /// `bytes` written to the terminal as they are; appends them to `out`.
    pub fn write(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(bytes);
        match bytes.iter().rposition(|b| *b == b'\n') {
            Some(at) => {
                self.partial.clear();
                self.remember(&bytes[at + 1..]);
            }
            None => self.remember(bytes),
        }
    }

    fn remember(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == 0x08 {
                self.partial.pop();
            } else if self.partial.len() < MAX_PARTIAL {
                self.partial.push(byte);
            }
        }
        // An erased character is written as BS, space, BS: what is left
        // after it ends with the space, which drawing again must not show.
        while self.partial.ends_with(b" \x08") {
            self.partial.truncate(self.partial.len() - 2);
        }
    }

    /// Whole `lines` (each ending with `\n`) of the kernel's log: on a line
    /// of their own, the current line erased first and drawn again after
    /// them, so nothing is split.
    pub fn log_lines(&mut self, lines: &[u8], out: &mut Vec<u8>) {
        if self.partial.is_empty() {
            out.extend_from_slice(lines);
            return;
        }
        out.extend_from_slice(CLEAR_LINE);
        out.extend_from_slice(lines);
        out.extend_from_slice(&self.partial);
    }

    /// What the current line shows.
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn typed(bytes: &[u8]) -> (Vec<Completed>, Vec<u8>) {
        let mut discipline = LineDiscipline::new();
        let mut echo = Vec::new();
        let done = bytes
            .iter()
            .filter_map(|b| discipline.feed(*b, &mut echo))
            .collect();
        (done, echo)
    }

    #[test]
    fn lines_are_echoed_and_handed_over_whole() {
        let (done, echo) = typed(b"ls /\recho hi\n");
        assert_eq!(
            done,
            vec![
                Completed::Line(b"ls /".to_vec()),
                Completed::Line(b"echo hi".to_vec())
            ]
        );
        assert_eq!(echo, b"ls /\necho hi\n");
    }

    #[test]
    fn cr_lf_ends_one_line_not_two() {
        let (done, _) = typed(b"a\r\nb\r\n");
        assert_eq!(
            done,
            vec![
                Completed::Line(b"a".to_vec()),
                Completed::Line(b"b".to_vec())
            ]
        );
        let (done, _) = typed(b"\n\n");
        assert_eq!(done.len(), 2, "empty lines are lines");
    }

    #[test]
    fn backspace_and_kill_line_edit_before_the_line_is_handed_over() {
        let (done, echo) = typed(b"lx\x7fs\x08s /\n");
        assert_eq!(done, vec![Completed::Line(b"ls /".to_vec())]);
        assert_eq!(echo, b"lx\x08 \x08s\x08 \x08s /\n");
        let (done, echo) = typed(b"rm -rf\x15ps\n");
        assert_eq!(done, vec![Completed::Line(b"ps".to_vec())]);
        assert!(echo.starts_with(b"rm -rf\x08 \x08"));
        // Backspace on an empty line shows nothing.
        assert_eq!(typed(b"\x7f\x08").1, b"");
    }

    #[test]
    fn end_of_input_only_on_an_empty_line() {
        assert_eq!(typed(b"\x04").0, vec![Completed::End]);
        assert_eq!(typed(b"ab\x04\n").0, vec![Completed::Line(b"ab".to_vec())]);
    }

    #[test]
    fn a_line_is_bounded() {
        let long = vec![b'x'; MAX_INPUT_LINE + 10];
        let mut discipline = LineDiscipline::new();
        let mut echo = Vec::new();
        for b in &long {
            discipline.feed(*b, &mut echo);
        }
        assert_eq!(discipline.pending().len(), MAX_INPUT_LINE);
        assert_eq!(echo.len(), MAX_INPUT_LINE);
    }

    #[test]
    fn a_log_line_never_lands_inside_the_prompt() {
        let mut screen = Screen::new();
        let mut out = Vec::new();
        screen.write(b"done\nhinge$ ", &mut out);
        screen.write(b"ec", &mut out);
        out.clear();
        screen.log_lines(b"| procman: started x\n", &mut out);
        assert_eq!(out, b"\r\x1b[K| procman: started x\nhinge$ ec");
        assert_eq!(screen.partial(), b"hinge$ ec");
        // At the start of a line the lines go out as they are.
        screen.write(b"ho\n", &mut out);
        out.clear();
        screen.log_lines(b"hinge: x\n", &mut out);
        assert_eq!(out, b"hinge: x\n");
    }

    #[test]
    fn erased_characters_are_not_drawn_again() {
        let mut screen = Screen::new();
        let mut out = Vec::new();
        screen.write(b"$ ab", &mut out);
        screen.write(ERASE, &mut out);
        assert_eq!(screen.partial(), b"$ a");
    }

    /// What a terminal shows: finished lines and the current one (CR
    /// returns to the line's start, `ESC [K` erases to its end, BS moves
    /// back).
    fn shown(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let (mut lines, mut line, mut column) = (Vec::new(), Vec::new(), 0usize);
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                b'\n' => {
                    lines.push(core::mem::take(&mut line));
                    column = 0;
                }
                b'\r' => column = 0,
                0x08 => column = column.saturating_sub(1),
                0x1b if bytes[at..].starts_with(b"\x1b[K") => {
                    line.truncate(column);
                    at += 2;
                }
                byte => {
                    if column < line.len() {
                        line[column] = byte;
                    } else {
                        line.push(byte);
                    }
                    column += 1;
                }
            }
            at += 1;
        }
        (lines, line)
    }

    proptest! {
        /// However output, echo and log lines interleave, a terminal shows
        /// every log line whole on a line of its own, and without them it
        /// shows exactly what it would have shown had no log line come.
        #[test]
        fn log_lines_never_split_a_line(
            steps in prop::collection::vec(
                (any::<bool>(), prop::collection::vec(prop::sample::select(b"ab \n".to_vec()), 0..12)),
                0..30,
            ),
        ) {
            let mut screen = Screen::new();
            let mut plain = Screen::new();
            let (mut out, mut plain_out) = (Vec::new(), Vec::new());
            let mut logged = Vec::new();
            for (index, (log, bytes)) in steps.iter().enumerate() {
                if *log {
                    let line = alloc::format!("L{index}\n");
                    screen.log_lines(line.as_bytes(), &mut out);
                    logged.push(alloc::format!("L{index}").into_bytes());
                } else {
                    screen.write(bytes, &mut out);
                    plain.write(bytes, &mut plain_out);
                }
            }
            let (lines, current) = shown(&out);
            let (plain_lines, plain_current) = shown(&plain_out);
            let log_lines: Vec<Vec<u8>> = lines.iter().filter(|l| l.starts_with(b"L")).cloned().collect();
            prop_assert_eq!(log_lines, logged);
            let others: Vec<Vec<u8>> = lines.into_iter().filter(|l| !l.starts_with(b"L")).collect();
            prop_assert_eq!(others, plain_lines);
            prop_assert_eq!(current, plain_current);
        }

        /// Whatever is typed, the lines handed over plus the line pending
        /// are the printable bytes typed, with every edit applied, and no
        /// line holds a control byte.
        #[test]
        fn handed_over_lines_hold_no_control_bytes(
            bytes in prop::collection::vec(prop::sample::select(b"ab \r\n\x08\x7f\x15\x04\x03".to_vec()), 0..200),
        ) {
            let mut discipline = LineDiscipline::new();
            let mut echo = Vec::new();
            let mut model: Vec<u8> = Vec::new();
            let mut after_cr = false;
            for &b in &bytes {
                let done = discipline.feed(b, &mut echo);
                let was_cr = core::mem::take(&mut after_cr);
                match b {
                    b'\n' if was_cr => prop_assert_eq!(done, None),
                    b'\r' | b'\n' => {
                        after_cr = b == b'\r';
                        prop_assert_eq!(done, Some(Completed::Line(core::mem::take(&mut model))));
                    }
                    0x08 | 0x7f => { model.pop(); }
                    0x15 => model.clear(),
                    0x04 if model.is_empty() => prop_assert_eq!(done, Some(Completed::End)),
                    0..=0x1f => prop_assert_eq!(done, None),
                    _ => model.push(b),
                }
                prop_assert_eq!(discipline.pending(), &model[..]);
                prop_assert!(model.iter().all(|b| *b >= 0x20));
            }
        }
    }
}
