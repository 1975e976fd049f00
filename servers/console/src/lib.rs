//! The terminal logic the console server runs around the pty it hosts.
//!
//! - [`Screen`]: what is on the terminal's current line, so a kernel log
//!   line that arrives while a prompt or half-typed input is there is
//!   written on a line of its own and the partial line drawn again below
//!   it (ABI.md §6.7, D46).
//!
//! The line discipline is the pty's (`pty::discipline`, ABI.md §7a.7): the
//! console is the master of its first pair. Pure logic, no I/O: the server
//! (`src/main.rs`) owns the UART and the kernel log; nothing here may touch
//! a port or block.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;

/// Erases one character on the terminal (what the pty echoes for a
/// backspace).
pub const ERASE: &[u8] = b"\x08 \x08";

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
    use proptest::prelude::*;

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
    }
}
