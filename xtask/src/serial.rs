//! Watching the guest's serial console as it arrives: every line is logged
//! (and echoed if asked), a line matching `--until` ends the watch, and so
//! does a deadline. The stream is any reader, so the logic is tested on fake
//! consoles without QEMU.

use regex::Regex;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// Reads `reader` line by line on a thread of its own and sends each line
/// (without its line ending, invalid UTF-8 replaced) until end of file.
/// The kernel marks each line of user output ([`abi::kcall::USER_OUTPUT_MARK`]);
/// the mark is removed here, so logs and checks read what programs printed.
pub fn spawn_line_reader<R: Read + Send + 'static>(reader: R) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    let text = text
                        .strip_prefix(abi::kcall::USER_OUTPUT_MARK)
                        .unwrap_or(text);
                    if sender.send(text.to_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    receiver
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
    fn the_collector_gathers_everything() {
        let collected = spawn_collector(Cursor::new("warning: x\nwarning: y"), false);
        assert_eq!(
            collected.join().expect("thread"),
            "warning: x\nwarning: y\n"
        );
    }
}
