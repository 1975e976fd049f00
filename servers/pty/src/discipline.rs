//! The line discipline of one pseudo terminal: what a typed byte does in
//! the terminal's mode (ABI.md §7a.7) and how output is processed.
//!
//! Canonical mode: printable bytes gather in the line being edited (echoed
//! when echo is on); CR or LF hands the line and its `\n` to the slave (CR
//! LF counts once); backspace (BS or DEL) and kill line (^U) edit the line;
//! ^D hands over what is typed without a `\n`, and on an empty line is the
//! end of file. Raw mode: each byte goes to the slave as typed. In both,
//! with signals on, ^C and ^Z are not input but [`Control`]s the server
//! acts on (the pending line is discarded).
//!
//! Pure logic: no I/O, no blocking, nothing here may touch a pipe or a
//! door; the server applies the [`Effects`] in order.

use abi::pty::{MAX_INPUT_LINE, MODE_CANONICAL, MODE_ECHO, MODE_OUTPUT_CRLF, MODE_SIGNALS};
use alloc::vec::Vec;

/// Backspace as typed: BS or DEL.
pub const BACKSPACE: [u8; 2] = [0x08, 0x7f];
/// ^U: erase the line.
pub const KILL_LINE: u8 = 0x15;
/// ^D: end of file on an empty line.
pub const END_OF_FILE: u8 = 0x04;
/// ^C: interrupt the foreground job.
pub const INTERRUPT: u8 = 0x03;
/// ^Z: suspend the foreground job.
pub const SUSPEND: u8 = 0x1a;
/// What erases one character on the terminal.
pub const ERASE: &[u8] = b"\x08 \x08";

/// A typed byte the server must act on beyond the effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// ^C with signals on.
    Interrupt,
    /// ^Z with signals on.
    Suspend,
    /// ^D on an empty canonical line: the slave's input ends.
    EndOfFile,
}

impl Control {
    /// What the terminal shows for it once the server acted (the line
    /// ends, so the next output starts a line of its own).
    pub fn echo(self) -> &'static [u8] {
        match self {
            Control::Interrupt => b"^C\n",
            Control::Suspend => b"^Z\n",
            Control::EndOfFile => b"",
        }
    }

    /// The signal it sends to the terminal's foreground process group
    /// (D87): ^C SIGINT, ^Z SIGTSTP; ^D none.
    pub fn signal(self) -> Option<u32> {
        match self {
            Control::Interrupt => Some(abi::signal::INT),
            Control::Suspend => Some(abi::signal::TSTP),
            Control::EndOfFile => None,
        }
    }
}

/// What typed bytes produced, in order of kinds: the echo for the terminal
/// and the bytes for the slave's input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// For the terminal (before output processing).
    pub echo: Vec<u8>,
    /// For the slave's input.
    pub to_slave: Vec<u8>,
}

impl Effects {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.echo.is_empty() && self.to_slave.is_empty()
    }

    /// Forgets what was done.
    pub fn clear(&mut self) {
        self.echo.clear();
        self.to_slave.clear();
    }
}

/// One terminal's input state: its mode and the line being edited.
#[derive(Debug)]
pub struct Discipline {
    mode: u32,
    line: Vec<u8>,
    /// The last byte was a CR: a LF right after it ends nothing more.
    after_cr: bool,
}

impl Discipline {
    /// A terminal in `mode` (`MODE_*` bits), nothing typed.
    pub const fn new(mode: u32) -> Self {
        Discipline {
            mode,
            line: Vec::new(),
            after_cr: false,
        }
    }

    /// The mode.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// Changes the mode. Leaving canonical mode hands the line typed so
    /// far to the slave (as ^D would), so nothing typed is lost.
    pub fn set_mode(&mut self, mode: u32, effects: &mut Effects) {
        if self.mode & MODE_CANONICAL != 0 && mode & MODE_CANONICAL == 0 {
            effects.to_slave.append(&mut self.line);
        }
        self.mode = mode;
        self.after_cr = false;
    }

    /// The line being edited (canonical mode).
    pub fn pending(&self) -> &[u8] {
        &self.line
    }

    /// Discards the line being edited (^C, ^Z).
    pub fn discard(&mut self) {
        self.line.clear();
    }

    fn echo(&self, effects: &mut Effects, bytes: &[u8]) {
        if self.mode & MODE_ECHO != 0 {
            effects.echo.extend_from_slice(bytes);
        }
    }

    /// Takes one typed byte: its effects go to `effects`; a [`Control`]
    /// the server must act on before the next byte.
    pub fn feed(&mut self, byte: u8, effects: &mut Effects) -> Option<Control> {
        let after_cr = core::mem::take(&mut self.after_cr);
        if self.mode & MODE_SIGNALS != 0 {
            let control = match byte {
                INTERRUPT => Some(Control::Interrupt),
                SUSPEND => Some(Control::Suspend),
                _ => None,
            };
            if control.is_some() {
                self.discard();
                return control;
            }
        }
        if self.mode & MODE_CANONICAL == 0 {
            effects.to_slave.push(byte);
            self.echo(effects, &[byte]);
            return None;
        }
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                self.echo(effects, b"\n");
                effects.to_slave.append(&mut self.line);
                effects.to_slave.push(b'\n');
                None
            }
            byte if BACKSPACE.contains(&byte) => {
                if self.line.pop().is_some() {
                    self.echo(effects, ERASE);
                }
                None
            }
            KILL_LINE => {
                for _ in 0..self.line.len() {
                    self.echo(effects, ERASE);
                }
                self.line.clear();
                None
            }
            END_OF_FILE if self.line.is_empty() => Some(Control::EndOfFile),
            END_OF_FILE => {
                effects.to_slave.append(&mut self.line);
                None
            }
            // Tab is text; other control bytes do nothing in a line.
            b'\t' | 0x20..=0xff => {
                if self.line.len() < MAX_INPUT_LINE {
                    self.line.push(byte);
                    self.echo(effects, &[byte]);
                }
                None
            }
            _ => None,
        }
    }
}

/// Output processing in `mode`: the slave's bytes as the terminal gets
/// them (`\n` as `\r\n` with [`MODE_OUTPUT_CRLF`]), appended to `out`.
pub fn process_output(mode: u32, bytes: &[u8], out: &mut Vec<u8>) {
    if mode & MODE_OUTPUT_CRLF == 0 {
        out.extend_from_slice(bytes);
        return;
    }
    for &byte in bytes {
        if byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use abi::pty::{MODE_ALL, MODE_DEFAULT};
    use alloc::vec;
    use proptest::prelude::*;

    /// Feeds `bytes`; the effects and the controls met.
    fn typed(mode: u32, bytes: &[u8]) -> (Effects, Vec<Control>) {
        let mut discipline = Discipline::new(mode);
        let mut effects = Effects::default();
        let controls = bytes
            .iter()
            .filter_map(|b| discipline.feed(*b, &mut effects))
            .collect();
        (effects, controls)
    }

    #[test]
    fn canonical_lines_are_echoed_and_handed_over_whole() {
        let (effects, controls) = typed(MODE_DEFAULT, b"ls /\recho hi\n");
        assert_eq!(effects.to_slave, b"ls /\necho hi\n");
        assert_eq!(effects.echo, b"ls /\necho hi\n");
        assert!(controls.is_empty());
        // Nothing reaches the slave before the line ends.
        assert_eq!(typed(MODE_DEFAULT, b"half").0.to_slave, b"");
    }

    #[test]
    fn cr_lf_ends_one_line_and_empty_lines_are_lines() {
        assert_eq!(typed(MODE_DEFAULT, b"a\r\nb\r\n").0.to_slave, b"a\nb\n");
        assert_eq!(typed(MODE_DEFAULT, b"\n\n").0.to_slave, b"\n\n");
    }

    #[test]
    fn backspace_and_kill_line_edit_the_line() {
        let (effects, _) = typed(MODE_DEFAULT, b"lx\x7fs\x08s /\n");
        assert_eq!(effects.to_slave, b"ls /\n");
        assert_eq!(effects.echo, b"lx\x08 \x08s\x08 \x08s /\n");
        let (effects, _) = typed(MODE_DEFAULT, b"rm -rf\x15ps\n");
        assert_eq!(effects.to_slave, b"ps\n");
        assert!(effects.echo.starts_with(b"rm -rf\x08 \x08"));
        assert_eq!(typed(MODE_DEFAULT, b"\x7f\x08").0, Effects::default());
    }

    #[test]
    fn control_d_is_end_of_file_only_on_an_empty_line() {
        assert_eq!(typed(MODE_DEFAULT, b"\x04").1, vec![Control::EndOfFile]);
        let (effects, controls) = typed(MODE_DEFAULT, b"ab\x04");
        assert_eq!(
            effects.to_slave, b"ab",
            "^D hands over the line without \\n"
        );
        assert!(controls.is_empty());
    }

    #[test]
    fn signals_discard_the_line_and_are_never_input() {
        let (effects, controls) = typed(MODE_DEFAULT, b"yes\x03ls\x1a\n");
        assert_eq!(controls, vec![Control::Interrupt, Control::Suspend]);
        assert_eq!(effects.to_slave, b"\n");
        // Without signals, canonical mode ignores them; raw mode passes them.
        let quiet = MODE_DEFAULT & !MODE_SIGNALS;
        assert!(typed(quiet, b"\x03").1.is_empty());
        assert_eq!(
            typed(quiet & !MODE_CANONICAL, b"\x03\x1a").0.to_slave,
            b"\x03\x1a"
        );
        // Raw with signals still recognises them.
        let (effects, controls) = typed(MODE_SIGNALS, b"a\x03b");
        assert_eq!(effects.to_slave, b"ab");
        assert_eq!(controls, vec![Control::Interrupt]);
    }

    #[test]
    fn interrupt_and_suspend_send_int_and_tstp_and_end_of_file_nothing() {
        assert_eq!(Control::Interrupt.signal(), Some(abi::signal::INT));
        assert_eq!(Control::Suspend.signal(), Some(abi::signal::TSTP));
        assert_eq!(Control::EndOfFile.signal(), None);
        assert_eq!(Control::Suspend.echo(), b"^Z\n");
    }

    #[test]
    fn raw_mode_passes_every_byte_and_echoes_only_with_echo() {
        let (effects, _) = typed(0, b"a\r\x04\x7f");
        assert_eq!(effects.to_slave, b"a\r\x04\x7f");
        assert_eq!(effects.echo, b"");
        assert_eq!(typed(MODE_ECHO, b"ab").0.echo, b"ab");
    }

    #[test]
    fn leaving_canonical_mode_hands_the_line_over() {
        let mut discipline = Discipline::new(MODE_DEFAULT);
        let mut effects = Effects::default();
        for b in b"abc" {
            discipline.feed(*b, &mut effects);
        }
        effects.clear();
        discipline.set_mode(MODE_ECHO, &mut effects);
        assert_eq!(effects.to_slave, b"abc");
        assert_eq!(discipline.pending(), b"");
    }

    #[test]
    fn a_line_is_bounded() {
        let long = vec![b'x'; MAX_INPUT_LINE + 10];
        let (effects, _) = typed(MODE_DEFAULT, &long);
        assert_eq!(effects.echo.len(), MAX_INPUT_LINE);
        let mut discipline = Discipline::new(MODE_DEFAULT);
        let mut effects = Effects::default();
        for b in &long {
            discipline.feed(*b, &mut effects);
        }
        assert_eq!(discipline.pending().len(), MAX_INPUT_LINE);
    }

    #[test]
    fn output_processing_turns_lf_into_cr_lf_only_when_asked() {
        let mut out = Vec::new();
        process_output(MODE_DEFAULT, b"a\nb\n", &mut out);
        assert_eq!(out, b"a\r\nb\r\n");
        out.clear();
        process_output(MODE_ALL & !MODE_OUTPUT_CRLF, b"a\n", &mut out);
        assert_eq!(out, b"a\n");
    }

    proptest! {
        /// Canonical mode against a model: the slave gets exactly the
        /// lines typed with every edit applied (each with its `\n`, or cut
        /// by ^D), no control byte ever reaches it, ^C / ^Z discard the
        /// line, and echo shows exactly the printable bytes kept.
        #[test]
        fn canonical_input_matches_its_model(
            bytes in prop::collection::vec(
                prop::sample::select(b"ab \t\r\n\x08\x7f\x15\x04\x03\x1a\x01".to_vec()), 0..200),
        ) {
            let mut discipline = Discipline::new(MODE_DEFAULT);
            let mut effects = Effects::default();
            let (mut model_line, mut model_slave) = (Vec::new(), Vec::new());
            let mut after_cr = false;
            for &b in &bytes {
                let control = discipline.feed(b, &mut effects);
                let was_cr = core::mem::take(&mut after_cr);
                match b {
                    b'\n' if was_cr => prop_assert_eq!(control, None),
                    b'\r' | b'\n' => {
                        after_cr = b == b'\r';
                        model_slave.append(&mut model_line);
                        model_slave.push(b'\n');
                    }
                    0x08 | 0x7f => { model_line.pop(); }
                    0x15 => model_line.clear(),
                    0x04 if model_line.is_empty() => prop_assert_eq!(control, Some(Control::EndOfFile)),
                    0x04 => model_slave.append(&mut model_line),
                    0x03 => { prop_assert_eq!(control, Some(Control::Interrupt)); model_line.clear(); }
                    0x1a => { prop_assert_eq!(control, Some(Control::Suspend)); model_line.clear(); }
                    b'\t' | 0x20..=0xff => model_line.push(b),
                    _ => prop_assert_eq!(control, None),
                }
                prop_assert_eq!(discipline.pending(), &model_line[..]);
                prop_assert_eq!(&effects.to_slave, &model_slave);
            }
            prop_assert!(effects.to_slave.iter().all(|b| *b == b'\n' || *b == b'\t' || *b >= 0x20));
        }

        /// Raw mode without signals is the identity on input, whatever the
        /// bytes; with echo the echo is the input too.
        #[test]
        fn raw_mode_is_transparent(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let (effects, controls) = typed(MODE_ECHO, &bytes);
            prop_assert!(controls.is_empty());
            prop_assert_eq!(&effects.to_slave, &bytes);
            prop_assert_eq!(&effects.echo, &bytes);
        }

        /// Output processing keeps every byte and adds a CR before each LF.
        #[test]
        fn output_processing_adds_only_carriage_returns(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            process_output(MODE_DEFAULT, &bytes, &mut out);
            let expected: Vec<u8> = bytes
                .iter()
                .flat_map(|b| if *b == b'\n' { vec![b'\r', b'\n'] } else { vec![*b] })
                .collect();
            prop_assert_eq!(out, expected);
        }
    }
}
