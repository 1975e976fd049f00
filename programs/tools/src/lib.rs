//! The utilities the shell runs: `cat`, `wc`, `head`, `yes`, `cpus`. Their logic
//! is here, over embedded-io's `Read` and `Write` (a standard stream, a
//! file under `/tmp`, a byte slice in the tests), with their argument
//! parsing; `programs/{cat,wc,head,yes}` are a few lines each that call
//! [`main`] with their name.
//!
//! Every utility ends when its output's readers are gone: a write that
//! fails ends it (status [`BROKEN_PIPE_STATUS`] for a broken pipe, as a
//! POSIX shell reports a SIGPIPE death), so `yes | head -n 3` ends. This
//! crate must never print to the kernel log itself: messages go to
//! stderr (`eprintln!`, which falls back to the log only when the process
//! has no stderr).
#![no_std]

extern crate alloc;

pub mod cpus;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use embedded_io::{ErrorKind, Read, Write};

/// The status of a utility whose output's readers are gone (128 + 13,
/// SIGPIPE's number, as POSIX shells report it).
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// The bytes one read or write moves.
const PIECE: usize = 512;

/// Why a utility stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Its output's readers are gone.
    BrokenPipe,
    /// A message for stderr, and the status.
    Failed(String, i32),
}

impl Stop {
    fn write<E: embedded_io::Error>(error: E) -> Stop {
        match error.kind() {
            ErrorKind::BrokenPipe => Stop::BrokenPipe,
            kind => Stop::Failed(format!("write: {kind:?}"), 1),
        }
    }

    fn read<E: core::fmt::Debug>(what: &str, error: E) -> Stop {
        Stop::Failed(format!("{what}: {error:?}"), 1)
    }
}

/// Writes all of `bytes`.
fn put<W: Write>(output: &mut W, bytes: &[u8]) -> Result<(), Stop> {
    output.write_all(bytes).map_err(Stop::write)
}

/// `cat`: copies `input` to `output` until end of file.
pub fn cat<R: Read, W: Write>(what: &str, input: &mut R, output: &mut W) -> Result<(), Stop> {
    let mut piece = [0u8; PIECE];
    loop {
        let n = input.read(&mut piece).map_err(|e| Stop::read(what, e))?;
        if n == 0 {
            return Ok(());
        }
        put(output, &piece[..n])?;
    }
}

/// What `wc` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `\n` bytes.
    pub lines: u64,
    /// Runs of bytes other than ASCII white space.
    pub words: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Counts `input` until end of file.
pub fn count<R: Read>(what: &str, input: &mut R) -> Result<Counts, Stop> {
    let mut counts = Counts::default();
    let mut in_word = false;
    let mut piece = [0u8; PIECE];
    loop {
        let n = input.read(&mut piece).map_err(|e| Stop::read(what, e))?;
        if n == 0 {
            return Ok(counts);
        }
        for &byte in &piece[..n] {
            counts.bytes += 1;
            if byte == b'\n' {
                counts.lines += 1;
            }
            let space = byte.is_ascii_whitespace();
            if !space && !in_word {
                counts.words += 1;
            }
            in_word = !space;
        }
    }
}

/// Which counts `wc` shows (all three when no option is given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WcColumns {
    /// `-l`.
    pub lines: bool,
    /// `-w`.
    pub words: bool,
    /// `-c`.
    pub bytes: bool,
}

/// `wc`'s line for `counts` (and `name`, for a file): one number alone
/// when one option was given, else each right-aligned in 7 columns.
pub fn wc_line(columns: WcColumns, counts: Counts, name: Option<&str>) -> String {
    let shown: Vec<u64> = [
        (columns.lines, counts.lines),
        (columns.words, counts.words),
        (columns.bytes, counts.bytes),
    ]
    .iter()
    .filter(|(shown, _)| *shown)
    .map(|(_, n)| *n)
    .collect();
    let mut line = match shown.as_slice() {
        [one] => format!("{one}"),
        all => all
            .iter()
            .map(|n| format!("{n:>7}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    if let Some(name) = name {
        line.push(' ');
        line.push_str(name);
    }
    line.push('\n');
    line
}

/// `wc`'s options and files.
pub fn wc_arguments<'a>(words: &[&'a str]) -> Result<(WcColumns, Vec<&'a str>), String> {
    let mut columns = WcColumns {
        lines: false,
        words: false,
        bytes: false,
    };
    let mut files = Vec::new();
    for word in words {
        match *word {
            "-l" => columns.lines = true,
            "-w" => columns.words = true,
            "-c" => columns.bytes = true,
            option if option.starts_with('-') && option.len() > 1 => {
                return Err(format!(
                    "unknown option {option} (usage: wc [-l|-w|-c] [FILE...])"
                ));
            }
            file => files.push(file),
        }
    }
    if !(columns.lines || columns.words || columns.bytes) {
        columns = WcColumns {
            lines: true,
            words: true,
            bytes: true,
        };
    }
    Ok((columns, files))
}

/// `head`: the first `lines` lines of `input` (all of it if shorter),
/// then it stops reading.
pub fn head<R: Read, W: Write>(
    what: &str,
    input: &mut R,
    output: &mut W,
    lines: u64,
) -> Result<(), Stop> {
    let mut left = lines;
    let mut piece = [0u8; PIECE];
    while left > 0 {
        let n = input.read(&mut piece).map_err(|e| Stop::read(what, e))?;
        if n == 0 {
            return Ok(());
        }
        let mut end = n;
        for (i, &byte) in piece[..n].iter().enumerate() {
            if byte == b'\n' {
                left -= 1;
                if left == 0 {
                    end = i + 1;
                    break;
                }
            }
        }
        put(output, &piece[..end])?;
    }
    Ok(())
}

/// `head`'s line count (`-n N`, default 10) and files.
pub fn head_arguments<'a>(words: &[&'a str]) -> Result<(u64, Vec<&'a str>), String> {
    let mut lines = 10;
    let mut files = Vec::new();
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        match *word {
            "-n" => {
                let n = rest.next().ok_or("-n needs a number")?;
                lines = n.parse().map_err(|_| format!("-n: not a number: {n}"))?;
            }
            option if option.starts_with('-') && option.len() > 1 => {
                return Err(format!(
                    "unknown option {option} (usage: head [-n N] [FILE...])"
                ));
            }
            file => files.push(file),
        }
    }
    Ok((lines, files))
}

/// `yes`: `word` (default `y`) and a newline, again and again, until a
/// write fails; what failed. Lines go in whole writes of at most 512
/// bytes (PIPE_BUF), so a reader never sees half a line between two.
pub fn yes<W: Write>(output: &mut W, word: &str) -> Stop {
    let mut line = String::from(if word.is_empty() { "y" } else { word });
    line.push('\n');
    let mut block = Vec::new();
    while block.len() + line.len() <= PIECE || block.is_empty() {
        block.extend_from_slice(line.as_bytes());
    }
    loop {
        if let Err(stop) = put(output, &block) {
            return stop;
        }
    }
}

/// Runs utility `program` (`cat`, `wc`, `head`, `yes`) with the argument
/// bytes SPAWN gave it, on this process's standard streams and the files
/// its arguments name under `/tmp`; its exit status.
pub fn main(program: &str, arguments: &[u8]) -> i32 {
    let Ok(text) = core::str::from_utf8(arguments) else {
        userlib::eprintln!("{program}: the arguments are not UTF-8");
        return 2;
    };
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let result = match program {
        "cat" => each_input(&words, |what, input| {
            cat(what, input, &mut userlib::stdio::stdout())
        }),
        "wc" => match wc_arguments(&words) {
            Ok((columns, files)) => each_input(&files, |what, input| {
                let counts = count(what, input)?;
                let name = (what != "stdin").then_some(what);
                put(
                    &mut userlib::stdio::stdout(),
                    wc_line(columns, counts, name).as_bytes(),
                )
            }),
            Err(usage) => Err(Stop::Failed(usage, 2)),
        },
        "head" => match head_arguments(&words) {
            Ok((lines, files)) => each_input(&files, |what, input| {
                head(what, input, &mut userlib::stdio::stdout(), lines)
            }),
            Err(usage) => Err(Stop::Failed(usage, 2)),
        },
        "yes" => Err(yes(&mut userlib::stdio::stdout(), &words.join(" "))),
        "cpus" => cpus::run(&words),
        other => Err(Stop::Failed(format!("no utility {other}"), 2)),
    };
    match result {
        Ok(()) => 0,
        Err(Stop::BrokenPipe) => BROKEN_PIPE_STATUS,
        Err(Stop::Failed(message, status)) => {
            userlib::eprintln!("{program}: {message}");
            status
        }
    }
}

/// A utility's input: a file under `/tmp` or standard input.
enum Input<'f> {
    Stdin(userlib::stdio::Stdin),
    File(userlib::file::File<'f>),
}

impl embedded_io::ErrorType for Input<'_> {
    type Error = userlib::file::FsError;
}

impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        match self {
            Input::Stdin(stdin) => stdin.read(out).map_err(Into::into),
            Input::File(file) => file.read(out),
        }
    }
}

/// Runs `each` on every file of `files` in turn (standard input when
/// there is none); the first failure ends the run.
fn each_input(
    files: &[&str],
    mut each: impl FnMut(&str, &mut Input<'_>) -> Result<(), Stop>,
) -> Result<(), Stop> {
    if files.is_empty() {
        return each("stdin", &mut Input::Stdin(userlib::stdio::stdin()));
    }
    let tmp = userlib::file::Files::connect()
        .map_err(|e| Stop::Failed(format!("/tmp: {}", e.name()), 1))?;
    for path in files {
        let file = tmp
            .open(path, 0)
            .map_err(|e| Stop::Failed(format!("{path}: {}", e.name()), 1))?;
        each(path, &mut Input::File(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;
    use core::convert::Infallible;

    /// A reader handing out `pieces` one read at a time.
    struct Pieces(Vec<Vec<u8>>);

    impl embedded_io::ErrorType for Pieces {
        type Error = Infallible;
    }

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> Result<usize, Infallible> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = &mut self.0[0];
            let n = piece.len().min(out.len());
            out[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    /// A writer whose readers go after `room` bytes.
    struct Sink {
        written: Vec<u8>,
        room: usize,
    }

    #[derive(Debug)]
    struct Broken;

    impl embedded_io::Error for Broken {
        fn kind(&self) -> ErrorKind {
            ErrorKind::BrokenPipe
        }
    }

    impl embedded_io::ErrorType for Sink {
        type Error = Broken;
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> Result<usize, Broken> {
            if self.written.len() >= self.room {
                return Err(Broken);
            }
            self.written.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> Result<(), Broken> {
            Ok(())
        }
    }

    fn sink() -> Sink {
        Sink {
            written: Vec::new(),
            room: usize::MAX,
        }
    }

    #[test]
    fn cat_copies_every_piece() {
        let mut out = sink();
        let mut input = Pieces(vec![b"hel".to_vec(), b"lo\n".to_vec(), vec![7; 1000]]);
        assert_eq!(cat("stdin", &mut input, &mut out), Ok(()));
        let mut expected = b"hello\n".to_vec();
        expected.extend_from_slice(&[7; 1000]);
        assert_eq!(out.written, expected);
    }

    #[test]
    fn wc_counts_across_pieces() {
        let mut input = Pieces(vec![b"hello wo".to_vec(), b"rld\n  two\n".to_vec()]);
        let counts = count("stdin", &mut input);
        assert_eq!(
            counts,
            Ok(Counts {
                lines: 2,
                words: 3,
                bytes: 18
            })
        );
        let all = wc_arguments(&[]).map(|(c, _)| c).expect("no options");
        assert_eq!(
            wc_line(
                all,
                Counts {
                    lines: 2,
                    words: 3,
                    bytes: 18
                },
                None
            ),
            "      2       3      18\n"
        );
        let (bytes, files) = wc_arguments(&["-c", "/tmp/a"]).expect("-c");
        assert_eq!(files, ["/tmp/a"]);
        assert_eq!(
            wc_line(
                bytes,
                Counts {
                    lines: 2,
                    words: 3,
                    bytes: 18
                },
                Some("/tmp/a")
            ),
            "18 /tmp/a\n"
        );
        assert!(wc_arguments(&["-x"]).is_err());
    }

    #[test]
    fn head_stops_after_its_lines_and_reads_no_further() {
        let mut input = Pieces(vec![b"1\n2\n3\n4\n".to_vec(), b"5\n".to_vec()]);
        let mut out = sink();
        assert_eq!(head("stdin", &mut input, &mut out, 3), Ok(()));
        assert_eq!(out.written, b"1\n2\n3\n");
        assert_eq!(
            input.0,
            [b"5\n".to_vec()],
            "head read past its lines' piece"
        );
        assert_eq!(head_arguments(&["-n", "3"]), Ok((3, vec![])));
        assert_eq!(head_arguments(&["/tmp/a"]), Ok((10, vec!["/tmp/a"])));
        assert!(head_arguments(&["-n"]).is_err());
        assert!(head_arguments(&["-n", "x"]).is_err());
        let mut short = Pieces(vec![b"only\n".to_vec()]);
        let mut out = sink();
        assert_eq!(head("stdin", &mut short, &mut out, 3), Ok(()));
        assert_eq!(out.written, b"only\n");
    }

    #[test]
    fn yes_writes_whole_lines_until_its_readers_go() {
        let mut out = Sink {
            written: Vec::new(),
            room: 2000,
        };
        assert_eq!(yes(&mut out, "hi"), Stop::BrokenPipe);
        assert!(out.written.len() >= 2000);
        assert!(out.written.chunks(3).all(|line| line == b"hi\n"));
        let mut out = Sink {
            written: Vec::new(),
            room: 1,
        };
        assert_eq!(yes(&mut out, ""), Stop::BrokenPipe);
        assert!(out.written.starts_with(b"y\ny\n"));
    }
}
