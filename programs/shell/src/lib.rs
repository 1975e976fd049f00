//! The shell's logic: read a line at the prompt, run it, report.
//!
//! Its input and output are one small trait, [`Terminal`] (today the
//! console server's READ_LINE and WRITE; standard streams later), and
//! everything it asks of the system is another, [`System`] (procman's
//! LIST, PROCESS_LIST, SPAWN, WAIT, KILL), so the commands are host-tested
//! against fakes of both. A failing child, a refused spawn, a bad command:
//! each prints one clear line and the shell goes on; nothing a child does
//! ends the shell.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What the shell shows when it waits for a line.
pub const PROMPT: &str = "hinge$ ";

/// The status a process that faulted ends with (ABI.md §6.1).
pub const FAULTED: u32 = u32::MAX;

/// A line read at the prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A line, without its `\n`.
    Line(String),
    /// The input ended.
    End,
}

/// Where the shell reads and writes.
pub trait Terminal {
    /// Writes `text` as it is.
    fn write(&mut self, text: &str);
    /// Waits for the next line; `Err` with a reason when reading fails.
    fn read_line(&mut self) -> Result<Input, String>;
}

/// One process as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: u32,
    /// Who started it (0: procman).
    pub parent: u32,
    /// Its program.
    pub name: String,
    /// Its security domain.
    pub domain: String,
    /// `running`, or `exited` with the status kept for WAIT.
    pub state: String,
}

/// What the shell asks of the system; errors are the names of the errors
/// the system answered with (`PM_SPAWN_DENIED`, ...).
pub trait System {
    /// The entries of a namespace directory.
    fn list(&mut self, directory: &str) -> Result<Vec<String>, String>;
    /// Every process procman knows.
    fn processes(&mut self) -> Result<Vec<ProcessInfo>, String>;
    /// Starts `program` with `arguments`; its process id.
    fn spawn(&mut self, program: &str, arguments: &str) -> Result<u32, String>;
    /// Waits for `pid` to end; its status.
    fn wait(&mut self, pid: u32) -> Result<u32, String>;
    /// Ends `pid`.
    fn kill(&mut self, pid: u32) -> Result<(), String>;
}

/// What a line asks next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Prompt again.
    Continue,
    /// Leave the session with this status.
    Exit(u32),
}

/// The shell's state: the last command's status and the jobs running in
/// the background.
#[derive(Debug, Default)]
pub struct Shell {
    status: u32,
    jobs: Vec<(u32, String)>,
}

const HELP: &str = "\
commands: echo WORDS, ls [PATH], ps, kill PID, wait [PID], help, exit [STATUS]
PROGRAM [ARGS] [&]: run a program of the boot archive (in the background with &)
$? is the last command's status
";

impl Shell {
    /// A shell whose last status is 0, with no jobs.
    pub fn new() -> Self {
        Shell::default()
    }

    /// The last command's status.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Prompts and runs lines until the input ends or `exit`; the
    /// session's status.
    pub fn session(&mut self, terminal: &mut impl Terminal, system: &mut impl System) -> u32 {
        loop {
            terminal.write(PROMPT);
            match terminal.read_line() {
                Ok(Input::Line(line)) => {
                    if let Flow::Exit(status) = self.run_line(&line, terminal, system) {
                        return status;
                    }
                }
                Ok(Input::End) => return self.status,
                Err(reason) => {
                    terminal.write(&format!("shell: cannot read a line: {reason}\n"));
                    return 1;
                }
            }
        }
    }

    /// Runs one line.
    pub fn run_line(
        &mut self,
        line: &str,
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Flow {
        let status = self.status.to_string();
        let words: Vec<&str> = line
            .split_ascii_whitespace()
            .map(|word| if word == "$?" { status.as_str() } else { word })
            .collect();
        let Some((&command, arguments)) = words.split_first() else {
            return Flow::Continue;
        };
        let result = match command {
            "echo" => {
                terminal.write(&format!("{}\n", arguments.join(" ")));
                Ok(0)
            }
            "help" => {
                terminal.write(HELP);
                Ok(0)
            }
            "exit" => {
                return match arguments {
                    [] => Flow::Exit(self.status),
                    [status] => match status.parse() {
                        Ok(status) => Flow::Exit(status),
                        Err(_) => {
                            terminal.write(&format!("shell: exit: not a status: {status}\n"));
                            self.status = 2;
                            Flow::Continue
                        }
                    },
                    _ => {
                        terminal.write("shell: exit: one status at most\n");
                        self.status = 2;
                        Flow::Continue
                    }
                };
            }
            "ls" => self.ls(arguments, terminal, system),
            "ps" => self.ps(arguments, terminal, system),
            "kill" => self.kill(arguments, terminal, system),
            "wait" => self.wait(arguments, terminal, system),
            program => self.run(program, arguments, terminal, system),
        };
        self.status = match result {
            Ok(status) => status,
            Err(message) => {
                terminal.write(&format!("shell: {message}\n"));
                1
            }
        };
        Flow::Continue
    }

    fn ls(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let directory = match arguments {
            [] => "/",
            [directory] => directory,
            _ => return Err("ls: one path at most".into()),
        };
        let entries = system
            .list(directory)
            .map_err(|error| format!("ls {directory}: {error}"))?;
        for entry in entries {
            terminal.write(&format!("{entry}\n"));
        }
        Ok(0)
    }

    fn ps(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        if !arguments.is_empty() {
            return Err("ps: no arguments".into());
        }
        let processes = system.processes().map_err(|error| format!("ps: {error}"))?;
        terminal.write("  PID PARENT DOMAIN   STATE        NAME\n");
        for p in processes {
            terminal.write(&format!(
                "{:>5} {:>6} {:<8} {:<12} {}\n",
                p.pid, p.parent, p.domain, p.state, p.name
            ));
        }
        Ok(0)
    }

    fn kill(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let [pid] = arguments else {
            return Err("kill: one process id".into());
        };
        let pid: u32 = pid
            .parse()
            .map_err(|_| format!("kill: not a process id: {pid}"))?;
        system
            .kill(pid)
            .map_err(|error| format!("kill {pid}: {error}"))?;
        terminal.write(&format!("[{pid}] killed\n"));
        Ok(0)
    }

    fn wait(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let pids: Vec<u32> = match arguments {
            [] => self.jobs.iter().map(|(pid, _)| *pid).collect(),
            [pid] => alloc::vec![
                pid.parse()
                    .map_err(|_| format!("wait: not a process id: {pid}"))?
            ],
            _ => return Err("wait: one process id at most".into()),
        };
        let mut last = 0;
        for pid in pids {
            let status = system
                .wait(pid)
                .map_err(|error| format!("wait {pid}: {error}"))?;
            let name = self
                .jobs
                .iter()
                .find(|(job, _)| *job == pid)
                .map_or_else(|| format!("process {pid}"), |(_, name)| name.clone());
            self.jobs.retain(|(job, _)| *job != pid);
            terminal.write(&format!("[{pid}] {}\n", ended(&name, status)));
            last = status;
        }
        Ok(last)
    }

    fn run(
        &mut self,
        program: &str,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let (background, arguments) = match arguments.split_last() {
            Some((&"&", rest)) => (true, rest),
            _ => (false, arguments),
        };
        let pid = system
            .spawn(program, &arguments.join(" "))
            .map_err(|error| format!("{program}: {error}"))?;
        if background {
            self.jobs.push((pid, program.into()));
            terminal.write(&format!("[{pid}] {program}\n"));
            return Ok(0);
        }
        let status = system
            .wait(pid)
            .map_err(|error| format!("{program}: wait: {error}"))?;
        if status != 0 {
            terminal.write(&format!("shell: {}\n", ended(program, status)));
        }
        Ok(status)
    }
}

/// How a process ended, in words.
fn ended(name: &str, status: u32) -> String {
    match status {
        FAULTED => format!("{name} faulted"),
        status => format!("{name} exited with status {status}"),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;

    #[derive(Default)]
    struct FakeTerminal {
        input: Vec<Input>,
        output: String,
    }

    impl Terminal for FakeTerminal {
        fn write(&mut self, text: &str) {
            self.output.push_str(text);
        }
        fn read_line(&mut self) -> Result<Input, String> {
            if self.input.is_empty() {
                return Ok(Input::End);
            }
            Ok(self.input.remove(0))
        }
    }

    /// Programs and their statuses; `forbidden` is refused by policy.
    #[derive(Default)]
    struct FakeSystem {
        statuses: BTreeMap<String, u32>,
        running: BTreeMap<u32, String>,
        next: u32,
        killed: Vec<u32>,
    }

    impl System for FakeSystem {
        fn list(&mut self, directory: &str) -> Result<Vec<String>, String> {
            match directory {
                "/" => Ok(vec!["srv/".into()]),
                "/srv" => Ok(vec!["echo".into()]),
                _ => Err("PM_NO_SUCH_NAME".into()),
            }
        }
        fn processes(&mut self) -> Result<Vec<ProcessInfo>, String> {
            Ok(self
                .running
                .iter()
                .map(|(pid, name)| ProcessInfo {
                    pid: *pid,
                    parent: 0,
                    name: name.clone(),
                    domain: "users".into(),
                    state: "running".into(),
                })
                .collect())
        }
        fn spawn(&mut self, program: &str, _arguments: &str) -> Result<u32, String> {
            if program == "forbidden" {
                return Err("PM_SPAWN_DENIED".into());
            }
            if !self.statuses.contains_key(program) {
                return Err("PM_NO_SUCH_PROGRAM".into());
            }
            self.next += 1;
            self.running.insert(self.next, program.into());
            Ok(self.next)
        }
        fn wait(&mut self, pid: u32) -> Result<u32, String> {
            let name = self.running.remove(&pid).ok_or("PM_NO_SUCH_PROCESS")?;
            Ok(if self.killed.contains(&pid) {
                FAULTED
            } else {
                self.statuses[&name]
            })
        }
        fn kill(&mut self, pid: u32) -> Result<(), String> {
            if !self.running.contains_key(&pid) {
                return Err("PM_NO_SUCH_PROCESS".into());
            }
            self.killed.push(pid);
            Ok(())
        }
    }

    fn session(lines: &[&str]) -> (String, u32) {
        let mut terminal = FakeTerminal {
            input: lines.iter().map(|l| Input::Line((*l).into())).collect(),
            output: String::new(),
        };
        let mut system = FakeSystem::default();
        system.statuses.insert("good".into(), 0);
        system.statuses.insert("bad".into(), 3);
        let status = Shell::new().session(&mut terminal, &mut system);
        (terminal.output, status)
    }

    #[test]
    fn a_session_prompts_runs_and_reports() {
        let (output, status) = session(&["echo hello  world", "ls /", "good", "echo $?"]);
        assert_eq!(
            output,
            "hinge$ hello world\nhinge$ srv/\nhinge$ hinge$ 0\nhinge$ "
        );
        assert_eq!(status, 0);
    }

    #[test]
    fn failures_are_reported_and_the_shell_goes_on() {
        let (output, status) = session(&[
            "forbidden",
            "echo $?",
            "bad",
            "echo $?",
            "nosuch x",
            "ls /nope",
            "kill 99",
            "kill x",
            "exit 1 2",
            "exit x",
            "good",
        ]);
        assert_eq!(
            output,
            "hinge$ shell: forbidden: PM_SPAWN_DENIED\n\
             hinge$ 1\n\
             hinge$ shell: bad exited with status 3\n\
             hinge$ 3\n\
             hinge$ shell: nosuch: PM_NO_SUCH_PROGRAM\n\
             hinge$ shell: ls /nope: PM_NO_SUCH_NAME\n\
             hinge$ shell: kill 99: PM_NO_SUCH_PROCESS\n\
             hinge$ shell: kill: not a process id: x\n\
             hinge$ shell: exit: one status at most\n\
             hinge$ shell: exit: not a status: x\n\
             hinge$ hinge$ "
        );
        assert_eq!(status, 0, "the last command's status ends the session");
    }

    #[test]
    fn background_jobs_are_waited_for_and_killed() {
        let (output, status) = session(&["good &", "bad &", "ps", "kill 2", "wait", "exit 7"]);
        assert_eq!(
            output,
            "hinge$ [1] good\n\
             hinge$ [2] bad\n\
             hinge$   PID PARENT DOMAIN   STATE        NAME\n    \
             1      0 users    running      good\n    \
             2      0 users    running      bad\n\
             hinge$ [2] killed\n\
             hinge$ [1] good exited with status 0\n[2] bad faulted\n\
             hinge$ "
        );
        assert_eq!(status, 7);
    }
}
