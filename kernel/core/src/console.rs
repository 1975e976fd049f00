//! What user programs write to the kernel console (DEBUG_WRITE), kept
//! apart from the kernel's own lines: every line of user output starts
//! with [`abi::kcall::USER_OUTPUT_MARK`], so no program can pass a line off
//! as the kernel's (`hinge: ...`), and a DEBUG_WRITE carries at most
//! [`abi::kcall::MAX_DEBUG_WRITE`] bytes, so none holds the CPU long on a
//! polled serial port (issue 15, finding 4).

use abi::kcall::USER_OUTPUT_MARK;

/// Where the user output stream stands: at the start of a line or not.
#[derive(Debug)]
pub struct UserOutput {
    at_line_start: bool,
}

impl Default for UserOutput {
    fn default() -> Self {
        Self::new()
    }
}

impl UserOutput {
    /// A stream at the start of a line.
    pub const fn new() -> Self {
        UserOutput {
            at_line_start: true,
        }
    }

    /// Passes `bytes` to `emit` in pieces, with the mark before each line's
    /// first byte.
    pub fn write(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        for line in bytes.split_inclusive(|byte| *byte == b'\n') {
            if self.at_line_start {
                emit(USER_OUTPUT_MARK.as_bytes());
            }
            emit(line);
            self.at_line_start = line.ends_with(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn marked(writes: &[&[u8]]) -> Vec<u8> {
        let mut out = UserOutput::new();
        let mut text = Vec::new();
        for bytes in writes {
            out.write(bytes, |piece| text.extend_from_slice(piece));
        }
        text
    }

    #[test]
    fn every_line_is_marked_once_however_it_is_split() {
        let mark = USER_OUTPUT_MARK;
        let whole = marked(&[b"echo: one\nhinge: two\n"]);
        assert_eq!(
            whole,
            format!("{mark}echo: one\n{mark}hinge: two\n").into_bytes()
        );
        assert_eq!(marked(&[b"echo: o", b"ne\nhin", b"ge: two\n"]), whole);
        assert_eq!(marked(&[b"", b"\n"]), format!("{mark}\n").into_bytes());
    }

    proptest! {
        /// Whatever the split, a line starts with the mark, and removing the
        /// marks gives the bytes written.
        #[test]
        fn marks_start_lines_and_nothing_else_changes(
            text in prop::collection::vec(prop::sample::select(b"ab\n".to_vec()), 0..64),
            cuts in prop::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([text.len()]) {
                pieces.push(&text[at..cut]);
                at = cut;
            }
            let out = marked(&pieces);
            let expected = marked(&[&text]);
            prop_assert_eq!(&out, &expected);
            let mark = USER_OUTPUT_MARK.as_bytes();
            let mut unmarked = Vec::new();
            let mut rest: &[u8] = &out;
            let mut line_start = true;
            while !rest.is_empty() {
                if line_start {
                    prop_assert!(rest.starts_with(mark));
                    rest = &rest[mark.len()..];
                }
                let byte = rest[0];
                unmarked.push(byte);
                rest = &rest[1..];
                line_start = byte == b'\n';
            }
            prop_assert_eq!(unmarked, text);
        }
    }
}
