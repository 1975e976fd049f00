//! The shell program: [`shell::Shell`] on the console server's terminal
//! (its descriptor 1, a client reference the console gave it) and on
//! procman. It must never exit because of a child: every failure is a
//! line on the terminal; the session ends at the end of input or `exit`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod plumbing;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use abi::Error;
use abi::procman::{KILLED, PROCESS_RUNNING, ProcessEntry, ProcmanError};
use console::{ConsoleClient, END, MAX_WRITE};
use plumbing::Plumbing;
use shell::{DoneId, FileInfo, Input, ProcessInfo, Shell, StreamId, System, Terminal};
use userlib::interface::ClientError;
use userlib::{CallError, Startup, println, procman};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The console server's terminal.
struct Console(ConsoleClient);

impl Terminal for Console {
    fn write(&mut self, text: &str) {
        for piece in text.as_bytes().chunks(MAX_WRITE) {
            // Nowhere to report a terminal that cannot be written.
            let _ = self.0.write(piece);
        }
    }

    fn read_line(&mut self) -> Result<Input, String> {
        match self.0.read_line() {
            Ok(reply) if reply.header.status == END => Ok(Input::End),
            Ok(reply) => Ok(Input::Line(String::from_utf8_lossy(reply.bytes()).into())),
            Err(ClientError::Interface(error)) => Err(alloc::format!("{error:?}")),
            Err(error) => Err(alloc::format!("{error:?}")),
        }
    }
}

/// procman, for the shell, and the pipes and file streams it holds.
struct Procman {
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

impl System for Procman {
    fn list(&mut self, directory: &str) -> Result<Vec<String>, String> {
        procman::list(directory)
            .map(|(names, _)| names)
            .map_err(named)
    }

    fn processes(&mut self) -> Result<Vec<ProcessInfo>, String> {
        procman::processes()
            .map(|entries| entries.iter().map(info).collect())
            .map_err(named)
    }

    fn spawn(&mut self, program: &str, arguments: &str) -> Result<u32, String> {
        procman::spawn(program, arguments.as_bytes(), &[]).map_err(named)
    }

    fn wait(&mut self, pid: u32) -> Result<u32, String> {
        procman::wait(pid).map_err(named)
    }

    fn kill(&mut self, pid: u32) -> Result<(), String> {
        procman::kill(pid).map_err(named)
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
    let Some(door) = startup.take_descriptor(1) else {
        println!("shell: no terminal (descriptor 1): start me from the console");
        return 1;
    };
    let mut terminal = Console(ConsoleClient::new(door.into_raw()));
    let status = Shell::new().session(
        &mut terminal,
        &mut Procman {
            plumbing: Plumbing::default(),
        },
    );
    status as i32
}
