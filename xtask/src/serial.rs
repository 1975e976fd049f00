//! Watching the guest's serial console as it arrives: every line is logged
//! (and echoed if asked), a line matching `--until` ends the watch, and so
//! does a deadline. The stream is any reader, so the logic is tested on fake
//! consoles without QEMU.

use regex::Regex;
use std::io::{BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// Reads `reader` line by line on a thread of its own and sends each line
/// (without its line ending, invalid UTF-8 replaced) until end of file.
/// The kernel marks each line of user output ([`abi::kcall::USER_OUTPUT_MARK`]);
/// the mark is removed here, so logs and checks read what programs printed.
/// A line is what a terminal would show of it ([`Screen`]): a carriage
/// return not followed by a newline starts the line again, and escape
/// sequences and backspaces do what they do on a terminal.
pub fn spawn_line_reader<R: Read + Send + 'static>(reader: R) -> Receiver<String> {
    spawn_console_reader(reader, None).0
}

/// [`spawn_line_reader`], typing `typist`'s lines at the shell's prompts
/// if given; the join handle returns the session's transcript (every line
/// that is neither marked user output nor the kernel's, from the first
/// prompt on).
pub fn spawn_console_reader<R: Read + Send + 'static>(
    reader: R,
    mut typist: Option<Typist>,
) -> (Receiver<String>, JoinHandle<Vec<String>>) {
    let (sender, receiver) = mpsc::channel();
    let handle = thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut screen = Screen::default();
        let mut transcript = Vec::new();
        let mut chunk = [0u8; 4096];
        'reading: loop {
            let count = match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            };
            for &byte in &chunk[..count] {
                if let Some(line) = screen.feed(byte)
                    && !deliver(line, &sender, typist.as_mut(), &mut transcript)
                {
                    break 'reading;
                }
            }
            if let Some(typist) = typist.as_mut() {
                typist.type_at_prompt(screen.current());
            }
        }
        if let Some(line) = screen.finish() {
            deliver(line, &sender, typist.as_mut(), &mut transcript);
        }
        transcript
    });
    (receiver, handle)
}

/// Sends one line on (its mark removed) and notes it for the typist and
/// the transcript; false when no one listens any more.
fn deliver(
    line: String,
    sender: &mpsc::Sender<String>,
    typist: Option<&mut Typist>,
    transcript: &mut Vec<String>,
) -> bool {
    let marked = line.strip_prefix(abi::kcall::USER_OUTPUT_MARK);
    if let Some(typist) = typist {
        if line.starts_with(typist.prompt) {
            typist.prompts += 1;
        }
        typist.saw_line(&line);
        if typist.prompts > 0 && marked.is_none() && !line.starts_with("hinge: ") {
            transcript.push(line.clone());
        }
    }
    sender.send(marked.unwrap_or(&line).to_owned()).is_ok()
}

/// What a terminal shows of the serial console: the lines finished and
/// the one being written.
#[derive(Debug, Default)]
pub struct Screen {
    current: Vec<u8>,
    after_cr: bool,
    escape: Escape,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    Started,
    Sequence,
}

impl Screen {
    /// Takes one byte; a finished line (without its line ending).
    pub fn feed(&mut self, byte: u8) -> Option<String> {
        let after_cr = std::mem::take(&mut self.after_cr);
        match (self.escape, byte) {
            (_, b'\n') => {
                self.escape = Escape::None;
                let line = String::from_utf8_lossy(&self.current).into_owned();
                self.current.clear();
                return Some(line);
            }
            (_, b'\r') => {
                self.after_cr = true;
                return None;
            }
            _ if after_cr => self.current.clear(),
            _ => {}
        }
        match (self.escape, byte) {
            (Escape::None, 0x1b) => self.escape = Escape::Started,
            (Escape::Started, b'[') => self.escape = Escape::Sequence,
            (Escape::Started, _) => self.escape = Escape::None,
            (Escape::Sequence, 0x40..=0x7e) => self.escape = Escape::None,
            (Escape::Sequence, _) => {}
            (Escape::None, 0x08) => {
                self.current.pop();
            }
            (Escape::None, byte) => self.current.push(byte),
        }
        None
    }

    /// The line being written, as shown.
    pub fn current(&self) -> String {
        String::from_utf8_lossy(&self.current).into_owned()
    }

    /// The end of the stream: the unfinished line, if any.
    pub fn finish(&mut self) -> Option<String> {
        (!self.current.is_empty()).then(|| {
            let line = String::from_utf8_lossy(&self.current).into_owned();
            self.current.clear();
            line
        })
    }
}

/// One entry of a typed script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keys {
    /// A line, typed with its `\n` at the next prompt.
    Line(String),
    /// A control key typed at the next prompt (`@key ^D`).
    KeyAtPrompt(u8),
    /// A control key typed once the `count`-th line reading exactly
    /// `line` was shown since the previous entry was typed
    /// (`@after 3 y ^C`): typing into a running program, never by timing.
    After { count: usize, line: String, key: u8 },
}

/// A control key written `^X` (`^C`, `^D`, `^Z`, ...).
fn control_key(word: &str) -> Option<u8> {
    match word.as_bytes() {
        [b'^', letter @ b'@'..=b'_'] => Some(letter - b'@'),
        [b'^', letter @ b'a'..=b'z'] => Some(letter - b'a' + 1),
        _ => None,
    }
}

impl Keys {
    /// One script line: `@key ^X`, `@after N LINE ^X`, or a line to type.
    /// A malformed `@` entry is an error naming it.
    pub fn parse(entry: &str) -> Result<Keys, String> {
        let bad = || format!("bad script entry {entry:?}: `@key ^X` or `@after N LINE ^X`");
        if let Some(rest) = entry.strip_prefix("@key ") {
            return control_key(rest.trim())
                .map(Keys::KeyAtPrompt)
                .ok_or_else(bad);
        }
        if let Some(rest) = entry.strip_prefix("@after ") {
            let (count, rest) = rest.split_once(' ').ok_or_else(bad)?;
            let (line, key) = rest.rsplit_once(' ').ok_or_else(bad)?;
            let count = count.parse().ok().filter(|c| *c > 0).ok_or_else(bad)?;
            let key = control_key(key).ok_or_else(bad)?;
            return Ok(Keys::After {
                count,
                line: line.to_string(),
                key,
            });
        }
        if entry.starts_with('@') {
            return Err(bad());
        }
        Ok(Keys::Line(entry.to_string()))
    }
}

/// Types a script at the shell's prompts: line `k` once the `k`-th prompt
/// stands alone on the current line (the shell waits for input) and every
/// earlier prompt's line is finished, never by timing; a key entry once
/// the output line it waits for was shown ([`Keys`]); then ^D (end of
/// input) at the next prompt.
pub struct Typist {
    entries: std::collections::VecDeque<Keys>,
    prompt: &'static str,
    writer: Box<dyn std::io::Write + Send>,
    /// Finished lines that started with the prompt.
    prompts: usize,
    /// Entries typed at a prompt, ^D included.
    typed: usize,
    /// Lines the front `@after` entry waits for seen since it came to the
    /// front.
    seen: usize,
    ended: bool,
}

impl Typist {
    /// Types `lines` (script entries, [`Keys::parse`]) into `writer` at
    /// each `prompt`. Panics on a malformed entry: scripts are checked
    /// with [`Keys::parse`] before a run starts.
    pub fn new(
        lines: impl IntoIterator<Item = String>,
        prompt: &'static str,
        writer: Box<dyn std::io::Write + Send>,
    ) -> Self {
        Typist {
            entries: lines
                .into_iter()
                .map(|line| Keys::parse(&line).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
            prompt,
            writer,
            prompts: 0,
            typed: 0,
            seen: 0,
            ended: false,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // A guest that stopped reading is seen by the caller's deadline.
        let _ = self.writer.write_all(bytes);
        let _ = self.writer.flush();
    }

    /// A finished line of output: the front `@after` entry counts it.
    fn saw_line(&mut self, line: &str) {
        let Some(Keys::After {
            count,
            line: wanted,
            key,
        }) = self.entries.front()
        else {
            return;
        };
        if line != wanted {
            return;
        }
        self.seen += 1;
        if self.seen == *count {
            let key = *key;
            self.entries.pop_front();
            self.seen = 0;
            self.send(&[key]);
        }
    }

    fn type_at_prompt(&mut self, current: String) {
        if self.ended || current != self.prompt || self.prompts != self.typed {
            return;
        }
        let bytes = match self.entries.front() {
            Some(Keys::After { .. }) => return,
            Some(Keys::Line(line)) => format!("{line}\n").into_bytes(),
            Some(Keys::KeyAtPrompt(key)) => vec![*key],
            None => {
                self.ended = true;
                vec![0x04]
            }
        };
        self.entries.pop_front();
        self.typed += 1;
        self.send(&bytes);
    }
}

impl std::fmt::Debug for Typist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typist")
            .field("entries", &self.entries)
            .field("prompts", &self.prompts)
            .field("typed", &self.typed)
            .finish()
    }
}

/// Collects all of `reader` on a thread of its own (for QEMU's stderr),
/// echoing each line to our stderr if `echo`.
pub fn spawn_collector<R: Read + Send + 'static>(reader: R, echo: bool) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut collected = String::new();
        for line in spawn_line_reader(reader) {
            if echo {
                eprintln!("{line}");
            }
            collected.push_str(&line);
            collected.push('\n');
        }
        collected
    })
}

/// How to watch a console.
#[derive(Debug)]
pub struct Watch<'a> {
    /// End as soon as a line matches.
    pub until: Option<&'a Regex>,
    /// End when this instant passes.
    pub deadline: Option<Instant>,
    /// Print each line to our stdout as it arrives.
    pub echo: bool,
}

/// Why a watch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// This line matched `until`.
    Matched(String),
    /// The console closed (the guest's QEMU exited) with no match.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// Consumes lines from `lines` into `log` until a match, the end of the
/// stream or the deadline, whichever comes first.
pub fn watch(lines: &Receiver<String>, watch: &Watch<'_>, log: &mut String) -> WatchEnd {
    loop {
        let next = match watch.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                lines.recv_timeout(left)
            }
            None => lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let line = match next {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => return WatchEnd::TimedOut,
            Err(RecvTimeoutError::Disconnected) => return WatchEnd::Closed,
        };
        if watch.echo {
            println!("{line}");
        }
        log.push_str(&line);
        log.push('\n');
        if watch.until.is_some_and(|until| until.is_match(&line)) {
            return WatchEnd::Matched(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn quiet(until: Option<&Regex>, deadline: Option<Instant>) -> Watch<'_> {
        Watch {
            until,
            deadline,
            echo: false,
        }
    }

    #[test]
    fn stops_at_the_first_matching_line() {
        let console = Cursor::new("booting\r\nboot path: pvh\nhinge: ready\nafter\n");
        let lines = spawn_line_reader(console);
        let until = Regex::new("ready$").expect("regex");
        let mut log = String::new();
        let end = watch(&lines, &quiet(Some(&until), None), &mut log);
        assert_eq!(end, WatchEnd::Matched("hinge: ready".into()));
        assert_eq!(log, "booting\nboot path: pvh\nhinge: ready\n");
    }

    #[test]
    fn user_output_is_read_without_its_mark() {
        let console = Cursor::new("hinge: ready\n| echo: registered /srv/echo\n||x\n");
        let lines = spawn_line_reader(console);
        let mut log = String::new();
        let end = watch(&lines, &quiet(None, None), &mut log);
        assert_eq!(end, WatchEnd::Closed);
        assert_eq!(log, "hinge: ready\necho: registered /srv/echo\n||x\n");
    }

    #[test]
    fn reports_the_end_of_the_console_without_a_match() {
        let lines = spawn_line_reader(Cursor::new(b"one\ntwo without newline".to_vec()));
        let until = Regex::new("never").expect("regex");
        let mut log = String::new();
        assert_eq!(
            watch(&lines, &quiet(Some(&until), None), &mut log),
            WatchEnd::Closed
        );
        assert_eq!(log, "one\ntwo without newline\n");
    }

    #[test]
    fn survives_bytes_that_are_not_utf8() {
        let lines = spawn_line_reader(Cursor::new(b"a\xffb\n".to_vec()));
        let mut log = String::new();
        assert_eq!(
            watch(&lines, &quiet(None, None), &mut log),
            WatchEnd::Closed
        );
        assert_eq!(log, "a\u{fffd}b\n");
    }

    #[test]
    fn times_out_on_a_silent_console_and_keeps_what_came_before() {
        // A socket pair stands in for QEMU: it says one line and then hangs.
        let (mut guest, host) = UnixStream::pair().expect("socket pair");
        guest.write_all(b"stuck here\n").expect("write");
        let lines = spawn_line_reader(host);
        let mut log = String::new();
        let deadline = Some(Instant::now() + Duration::from_millis(200));
        let until = Regex::new("ready").expect("regex");
        assert_eq!(
            watch(&lines, &quiet(Some(&until), deadline), &mut log),
            WatchEnd::TimedOut
        );
        assert_eq!(log, "stuck here\n");
        drop(guest);
    }

    #[test]
    fn lines_read_as_a_terminal_shows_them() {
        let mut screen = Screen::default();
        let shown: Vec<String> = b"one\r\nhinge$ ec\r\x1b[K| log line\r\nhinge$ ecx\x08 \x08ho\r\n"
            .iter()
            .filter_map(|b| screen.feed(*b))
            .collect();
        assert_eq!(shown, ["one", "| log line", "hinge$ echo"]);
    }

    /// A fake guest: answers each line typed with its echo, a reply and a
    /// prompt, as the shell does, with a log line drawn around the prompt.
    #[test]
    fn the_typist_types_at_prompts_and_ends_with_eot() {
        let (mut guest, host) = UnixStream::pair().expect("socket pair");
        let typed = guest.try_clone().expect("clone");
        guest
            .write_all(b"hinge: ready\r\n$ \r\x1b[K| late\r\n$ ")
            .expect("write");
        let typist = Typist::new(
            ["a".to_string(), "b".to_string()],
            "$ ",
            Box::new(host.try_clone().expect("clone")),
        );
        let (lines, transcript) = spawn_console_reader(host, Some(typist));
        let mut input = std::io::BufReader::new(typed);
        for expected in ["a\n", "b\n"] {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut input, &mut line).expect("typed");
            assert_eq!(line, expected);
            guest
                .write_all(format!("{}\r\nout {}\r\n$ ", line.trim(), line.trim()).as_bytes())
                .expect("write");
        }
        let mut eot = [0u8; 1];
        std::io::Read::read_exact(&mut input, &mut eot).expect("eot");
        assert_eq!(eot, [0x04]);
        drop(guest);
        drop(input);
        let log: Vec<String> = lines.iter().collect();
        assert_eq!(
            log,
            ["hinge: ready", "late", "$ a", "out a", "$ b", "out b", "$ "]
        );
        assert_eq!(
            transcript.join().expect("reader"),
            ["$ a", "out a", "$ b", "out b", "$ "]
        );
    }

    #[test]
    fn script_entries_parse_or_name_what_is_wrong() {
        assert_eq!(Keys::parse("ls /"), Ok(Keys::Line("ls /".into())));
        assert_eq!(Keys::parse("@key ^D"), Ok(Keys::KeyAtPrompt(0x04)));
        assert_eq!(
            Keys::parse("@after 3 y ^C"),
            Ok(Keys::After {
                count: 3,
                line: "y".into(),
                key: 0x03
            })
        );
        assert_eq!(
            Keys::parse("@after 1 two words ^z"),
            Ok(Keys::After {
                count: 1,
                line: "two words".into(),
                key: 0x1a
            })
        );
        for bad in [
            "@after 0 y ^C",
            "@after x y ^C",
            "@after 3 y C",
            "@key",
            "@nope",
        ] {
            assert!(Keys::parse(bad).is_err(), "{bad}");
        }
    }

    /// A fake guest running `yes`: the typist types ^C after the third
    /// `y` line, whatever comes before or after it, and never at a prompt.
    #[test]
    fn the_typist_types_a_key_after_the_line_it_waits_for() {
        let (mut guest, host) = UnixStream::pair().expect("socket pair");
        let typed = guest.try_clone().expect("clone");
        guest.write_all(b"$ ").expect("write");
        let typist = Typist::new(
            ["yes".to_string(), "@after 3 y ^C".to_string()],
            "$ ",
            Box::new(host.try_clone().expect("clone")),
        );
        let (lines, transcript) = spawn_console_reader(host, Some(typist));
        let mut input = std::io::BufReader::new(typed);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut input, &mut line).expect("typed");
        assert_eq!(line, "yes\n");
        // Two y lines and a partial one: nothing is typed yet.
        guest.write_all(b"yes\r\ny\r\nyy\r\ny\r\ny").expect("write");
        guest.write_all(b"\r\n").expect("write");
        let mut key = [0u8; 1];
        std::io::Read::read_exact(&mut input, &mut key).expect("^C");
        assert_eq!(key, [0x03]);
        guest.write_all(b"^C\r\n$ ").expect("write");
        std::io::Read::read_exact(&mut input, &mut key).expect("eot");
        assert_eq!(key, [0x04]);
        drop(guest);
        drop(input);
        drop(lines);
        assert_eq!(
            transcript.join().expect("reader"),
            ["$ yes", "y", "yy", "y", "y", "^C", "$ "]
        );
    }

    #[test]
    fn the_collector_gathers_everything() {
        let collected = spawn_collector(Cursor::new("warning: x\nwarning: y"), false);
        assert_eq!(
            collected.join().expect("thread"),
            "warning: x\nwarning: y\n"
        );
    }
}
