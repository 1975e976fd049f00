//! The terminal's current line, for output that arrives while a person is
//! editing a line (ABI.md §7a.7, decision D94): a background job's lines
//! are written on lines of their own, above the line being edited, which
//! is drawn again below them — the slave's own partial line (the shell's
//! prompt) and the echo of what is typed — as the console does for the
//! kernel's log lines. Pure logic: the pump applies it under the pair's
//! lock. It must never drop, reorder or change the slave's bytes: only
//! whole lines are drawn this way, any other output goes out as it is.

use alloc::vec::Vec;

/// Returns the cursor to the line's start and erases the line (CR, then
/// ANSI "erase to end of line").
pub const CLEAR_LINE: &[u8] = b"\r\x1b[K";

/// The longest partial line kept to draw again; past it nothing is drawn
/// again until the next line starts.
pub const MAX_PARTIAL: usize = 256;

/// What the slave wrote since its last `\n` (processed, as shown).
#[derive(Debug, Default)]
pub struct CurrentLine {
    partial: Vec<u8>,
    /// The partial line outgrew [`MAX_PARTIAL`].
    overflowed: bool,
}

impl CurrentLine {
    /// A line with nothing on it.
    pub const fn new() -> Self {
        CurrentLine {
            partial: Vec::new(),
            overflowed: false,
        }
    }

    /// The slave's part of the current line.
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// Echo (processed) went to the terminal: a line end in it (a line
    /// handed over, ^C) starts a new line, the old one scrolled up.
    pub fn echoed(&mut self, echo: &[u8]) {
        if echo.contains(&b'\n') {
            self.partial.clear();
            self.overflowed = false;
        }
    }

    /// The slave's `output` (processed) arrives while `editing` (the echo
    /// of the line being edited; empty when nothing is, or echo is off) is
    /// on the line: what the terminal gets, appended to `out`. Whole lines
    /// with something being edited go above the current line, which is
    /// then drawn again; anything else goes out as it is.
    pub fn output(&mut self, output: &[u8], editing: &[u8], out: &mut Vec<u8>) {
        let whole = output.last() == Some(&b'\n');
        if whole && !editing.is_empty() && !self.overflowed {
            out.extend_from_slice(CLEAR_LINE);
            out.extend_from_slice(output);
            // The line shows the slave's partial line again: it stays.
            out.extend_from_slice(&self.partial);
            out.extend_from_slice(editing);
            return;
        }
        out.extend_from_slice(output);
        let tail = match output.iter().rposition(|b| *b == b'\n') {
            Some(at) => {
                self.partial.clear();
                self.overflowed = false;
                &output[at + 1..]
            }
            None => output,
        };
        if self.partial.len() + tail.len() > MAX_PARTIAL {
            self.overflowed = true;
        } else {
            self.partial.extend_from_slice(tail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_lines_go_above_the_line_being_edited() {
        let mut line = CurrentLine::new();
        let mut out = Vec::new();
        line.output(b"hinge$ ", b"", &mut out);
        assert_eq!(out, b"hinge$ ");
        out.clear();
        // The person typed "ec"; a background job writes two lines.
        line.output(b"y\r\ny\r\n", b"ec", &mut out);
        assert_eq!(out, b"\r\x1b[Ky\r\ny\r\nhinge$ ec");
        assert_eq!(line.partial(), b"hinge$ ");
        // A partial line goes out as it is.
        out.clear();
        line.output(b"z", b"ec", &mut out);
        assert_eq!(out, b"z");
        // Nothing typed: output as it is.
        let mut fresh = CurrentLine::new();
        out.clear();
        fresh.output(b"hinge$ ", b"", &mut out);
        fresh.output(b"y\r\n", b"", &mut out);
        assert_eq!(out, b"hinge$ y\r\n");
        // The typed line ends: the prompt is no longer on the line.
        line.echoed(b"\r\n");
        assert_eq!(line.partial(), b"");
    }

    #[test]
    fn a_long_partial_line_is_not_drawn_again() {
        let mut line = CurrentLine::new();
        let mut out = Vec::new();
        line.output(&[b'p'; MAX_PARTIAL + 1], b"", &mut out);
        out.clear();
        line.output(b"y\r\n", b"ec", &mut out);
        assert_eq!(out, b"y\r\n");
    }

    /// What a terminal shows: finished lines and the current one.
    fn shown(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let (mut lines, mut line) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at..].starts_with(CLEAR_LINE) {
                line.clear();
                at += CLEAR_LINE.len();
                continue;
            }
            match bytes[at] {
                b'\n' => lines.push(core::mem::take(&mut line)),
                b'\r' => {}
                byte => line.push(byte),
            }
            at += 1;
        }
        (lines, line)
    }

    proptest! {
        /// Whole lines written while something is typed: the terminal
        /// shows every line the slave wrote, in order, each whole, and the
        /// current line is the prompt and what is typed.
        #[test]
        fn every_line_shows_whole_and_the_edited_line_stays(
            lines in prop::collection::vec(prop::collection::vec(b'a'..=b'z', 0..12), 1..8),
            typed in prop::collection::vec(b'a'..=b'z', 1..10),
        ) {
            let mut line = CurrentLine::new();
            let mut out = Vec::new();
            line.output(b"$ ", b"", &mut out);
            out.extend_from_slice(&typed);
            for text in &lines {
                let mut output = text.clone();
                output.extend_from_slice(b"\r\n");
                line.output(&output, &typed, &mut out);
            }
            let (finished, current) = shown(&out);
            prop_assert_eq!(&finished, &lines);
            let mut expected = b"$ ".to_vec();
            expected.extend_from_slice(&typed);
            prop_assert_eq!(current, expected);
        }
    }
}
