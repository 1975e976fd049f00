//! The shell program: [`shell::Shell`] on its standard streams (the
//! terminal's slave, ABI.md §7a.7: lines read from stdin, everything
//! written to stdout) and on procman. Children inherit its stdin, stdout
//! and stderr, so what they print lands on the terminal in order with the
//! shell's own lines. Its descriptor 1, when given, is its terminal's pair
//! reference: the shell makes the job it waits for the terminal's
//! foreground process group, which ^C interrupts and ^Z stops (D86-D89).
//! It leads a session of its own (NEW_SESSION at start, D88). It must
//! never exit because of a child: every failure is a line on the terminal;
//! the session ends at the end of input or `exit`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod plumbing;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use abi::Error;
use abi::namespace::{KIND_DIRECTORY, KIND_MOUNT, KIND_SOCKET, NameListEntry};
use abi::procman::{KILLED, PROCESS_RUNNING, ProcessEntry, ProcmanError};
use abi::pty::ForegroundGroup;
use abi::stream::{STDERR, STDIN, STDOUT};
use plumbing::Plumbing;
use pty::PtyClient;
use shell::{
    DoneId, FileInfo, Input, NameInfo, ProcessInfo, ProcessState, Shell, StreamId, System, Terminal,
};
use userlib::{CallError, Startup, procman, signal, stdio};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The longest line kept while waiting for its `\n`: a longer one is
/// handed over as it is (the terminal's own lines are shorter).
const MAX_LINE: usize = 4096;

/// The shell's standard streams.
#[derive(Default)]
struct Streams {
    /// Bytes read and not yet handed over as a line.
    pending: Vec<u8>,
}

impl Terminal for Streams {
    fn write(&mut self, text: &str) {
        // Nowhere to report a terminal that cannot be written.
        let _ = stdio::stdout().write_all(text.as_bytes());
    }

    fn read_line(&mut self) -> Result<Input, String> {
        let mut chunk = [0u8; 256];
        loop {
            if let Some(at) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Ok(Input::Line(String::from_utf8_lossy(&line[..at]).into()));
            }
            if self.pending.len() >= MAX_LINE {
                let line = core::mem::take(&mut self.pending);
                return Ok(Input::Line(String::from_utf8_lossy(&line).into()));
            }
            match stdio::stdin().read(&mut chunk) {
                // End of file: what is left is a last line without its `\n`.
                Ok(0) if self.pending.is_empty() => return Ok(Input::End),
                Ok(0) => {
                    let line = core::mem::take(&mut self.pending);
                    return Ok(Input::Line(String::from_utf8_lossy(&line).into()));
                }
                Ok(count) => self.pending.extend_from_slice(&chunk[..count]),
                Err(error) => return Err(alloc::format!("{error:?}")),
            }
        }
    }
}

/// procman, for the shell, the terminal's pair for its foreground job,
/// and the pipes and file streams the shell holds.
struct Procman {
    terminal: Option<PtyClient>,
    plumbing: Plumbing,
}

/// The name of the error procman or the kernel answered with.
fn named(error: CallError) -> String {
    match error {
        CallError::Kernel(error) => error.name().into(),
        CallError::Server(errno) => ProcmanError::from_number(errno)
            .map(ProcmanError::name)
            .or_else(|| Error::from_number(errno).map(Error::name))
            .map_or_else(|| alloc::format!("error {errno:#x}"), Into::into),
    }
}

fn text(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into()
}

fn info(entry: &ProcessEntry) -> ProcessInfo {
    let state = match (entry.state, entry.status) {
        (PROCESS_RUNNING, _) => "running".to_string(),
        (_, KILLED) => "killed".to_string(),
        (_, shell::FAULTED) => "faulted".to_string(),
        (_, status) => alloc::format!("exited {status}"),
    };
    ProcessInfo {
        pid: entry.pid,
        parent: entry.parent,
        name: text(&entry.name),
        domain: text(&entry.domain),
        state,
    }
}

/// A NAME_LIST record as `ls` shows it.
fn name_info(entry: &NameListEntry) -> NameInfo {
    NameInfo {
        name: String::from_utf8_lossy(entry.name()).into(),
        kind: match entry.kind {
            KIND_DIRECTORY => "dir",
            KIND_MOUNT => "mount",
            KIND_SOCKET => "socket",
            _ => "door",
        },
        type_name: text(&entry.type_name),
        owner: entry.owner,
        program: text(&entry.program),
    }
}

impl System for Procman {
    fn names(&mut self, directory: &str) -> Result<Vec<NameInfo>, String> {
        procman::name_list(directory)
            .map(|entries| entries.iter().map(name_info).collect())
            .map_err(named)
    }

    fn set_directory(&mut self, path: &str) -> Result<(), String> {
        procman::chdir(path).map_err(named)
    }

    fn processes(&mut self) -> Result<Vec<ProcessInfo>, String> {
        procman::processes()
            .map(|entries| entries.iter().map(info).collect())
            .map_err(named)
    }

    fn spawn(&mut self, program: &str, arguments: &str) -> Result<u32, String> {
        // The child shares the shell's streams (D38's inherit).
        let streams = [
            stdio::inherit(STDIN),
            stdio::inherit(STDOUT),
            stdio::inherit(STDERR),
        ];
        procman::spawn_with_streams(program, arguments.as_bytes(), &[], streams).map_err(named)
    }

    fn wait_job(&mut self, pid: u32) -> Result<ProcessState, String> {
        match signal::wait_job(pid).map_err(named)? {
            signal::JobState::Exited(status) => Ok(ProcessState::Exited(status)),
            signal::JobState::Stopped(signal) => Ok(ProcessState::Stopped(signal)),
        }
    }

    fn poll(&mut self, pid: u32) -> Result<ProcessState, String> {
        Ok(match signal::job_now(pid).map_err(named)? {
            None => ProcessState::Running,
            Some(signal::JobState::Exited(status)) => ProcessState::Exited(status),
            Some(signal::JobState::Stopped(signal)) => ProcessState::Stopped(signal),
        })
    }

    fn kill(&mut self, pid: u32) -> Result<(), String> {
        procman::kill(pid).map_err(named)
    }

    fn signal(&mut self, pid: u32, number: u32) -> Result<(), String> {
        signal::kill(pid, number).map_err(named)
    }

    fn signal_group(&mut self, group: u32, number: u32) -> Result<(), String> {
        signal::kill_group(group, number).map_err(named)
    }

    fn set_group(&mut self, pid: u32, group: u32) -> Result<(), String> {
        signal::set_group(pid, group).map_err(named)
    }

    fn set_foreground(&mut self, group: u32) {
        // A group that already ended is PTY_BAD_FOREGROUND: nothing to
        // signal then, and the wait that follows learns its end.
        if let Some(terminal) = &self.terminal {
            let _ = terminal.set_foreground(ForegroundGroup::new(group));
        }
    }

    fn pipe(&mut self) -> Result<(StreamId, StreamId), String> {
        self.plumbing.pipe()
    }

    fn read_file(&mut self, path: &str) -> Result<(StreamId, DoneId), String> {
        self.plumbing.read_file(path)
    }

    fn write_file(&mut self, path: &str, append: bool) -> Result<(StreamId, DoneId), String> {
        self.plumbing.write_file(path, append)
    }

    fn start(
        &mut self,
        program: &str,
        arguments: &str,
        stdin: Option<StreamId>,
        stdout: Option<StreamId>,
    ) -> Result<u32, String> {
        self.plumbing.start(program, arguments, stdin, stdout)
    }

    fn write_to(&mut self, stream: StreamId, bytes: &[u8]) -> Result<(), String> {
        self.plumbing.write_to(stream, bytes)
    }

    fn close(&mut self, stream: StreamId) {
        self.plumbing.close(stream);
    }

    fn finish(&mut self, done: DoneId) -> Result<(), String> {
        self.plumbing.finish(done)
    }

    fn files(&mut self, directory: &str) -> Result<Vec<FileInfo>, String> {
        self.plumbing.list(directory)
    }

    fn is_directory(&mut self, path: &str) -> Result<bool, String> {
        self.plumbing.is_directory(path)
    }
}

fn run(mut startup: Startup) -> i32 {
    // D88: a session of its own, so its jobs' groups are its to make. A
    // shell that leads a group already is refused (PM_SESSION_LEADER):
    // one procman started leads its own session and group anyway, one a
    // shell started as a job stays in that shell's session; either way
    // its children are its own and in its session, so SET_GROUP works.
    let _ = signal::new_session();
    let terminal = startup
        .take_descriptor(1)
        .map(|pair| PtyClient::new(pair.into_raw()));
    let mut system = Procman {
        terminal,
        plumbing: Plumbing::default(),
    };
    // The directory it inherited (D95): `/` unless its parent changed it.
    let directory = procman::getcwd().unwrap_or_else(|_| String::from("/"));
    Shell::in_directory(&directory).session(&mut Streams::default(), &mut system) as i32
}
