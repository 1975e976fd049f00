//! The shell's logic: read a line at the prompt, run it, report.
//!
//! Its input and output are one small trait, [`Terminal`] (today the
//! console server's READ_LINE and WRITE; standard streams later), and
//! everything it asks of the system is another, [`System`] (procman's
//! LIST, PROCESS_LIST, SPAWN, WAIT_JOB, KILL, signals and groups, the
//! terminal's foreground group, pipes, and the RAM file server under
//! `/tmp`), so the commands are host-tested against fakes of both.
//! Job control (D76, D88, D89): each line's processes form a process group of
//! their own, the terminal's foreground group while the shell waits for
//! them; a job stopped by ^Z, or started with `&`, stays in the job table
//! (`jobs.rs`) for `jobs`, `fg`, `bg`, `kill %N` and `wait`.
//! A line is a pipeline (`pipeline.rs`: `a | b | c`, `<`, `>`, `>>`,
//! `&`): the shell makes a pipe between each two stages, gives each stage
//! its ends as standard streams (its own stdin and stdout, inherited, at
//! the pipeline's ends when nothing is redirected), closes its copies,
//! waits for every stage, then for every file stream to be finished
//! (D80: the file holds every byte once it is), and keeps the last
//! stage's status. A failing child, a refused spawn, a missing file, a bad
//! line: each prints one clear line and the shell goes on; nothing a child
//! does ends the shell.
#![no_std]

extern crate alloc;

pub mod jobs;
pub mod listing;
pub mod pipeline;

pub use jobs::ProcessState;
use jobs::{Job, JobTable};
pub use listing::NameInfo;
use pipeline::{Pipeline, Stage, absolute, parse};

use alloc::format;
use alloc::string::String;
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
    /// The entries of a namespace directory, with kinds and owners.
    fn names(&mut self, directory: &str) -> Result<Vec<NameInfo>, String>;
    /// Makes `path` (absolute, clean) the shell's working directory where
    /// the system keeps it, so the programs it starts inherit it.
    fn set_directory(&mut self, path: &str) -> Result<(), String>;
    /// Every process procman knows.
    fn processes(&mut self) -> Result<Vec<ProcessInfo>, String>;
    /// Starts `program` with `arguments`; its process id.
    fn spawn(&mut self, program: &str, arguments: &str) -> Result<u32, String>;
    /// Waits until `pid` ends or is stopped (WAIT_JOB, a `waitpid` with
    /// WUNTRACED): never [`ProcessState::Running`].
    fn wait_job(&mut self, pid: u32) -> Result<ProcessState, String>;
    /// How `pid` stands now (WAIT_JOB once, never waiting).
    fn poll(&mut self, pid: u32) -> Result<ProcessState, String>;
    /// Ends `pid` (procman's KILL).
    fn kill(&mut self, pid: u32) -> Result<(), String>;
    /// Sends `signal` to process `pid`.
    fn signal(&mut self, pid: u32, signal: u32) -> Result<(), String>;
    /// Sends `signal` to every process of group `group`.
    fn signal_group(&mut self, group: u32, signal: u32) -> Result<(), String>;
    /// Moves `pid` into group `group` (0: a new group `pid` leads).
    fn set_group(&mut self, pid: u32, group: u32) -> Result<(), String>;
    /// Makes `group` the terminal's foreground group (0: none), which ^C
    /// and ^Z signal. A terminal that refuses only loses the keys for
    /// this job, so there is no error to report.
    fn set_foreground(&mut self, group: u32);

    /// A new pipe: its read end and its write end, held by the shell.
    fn pipe(&mut self) -> Result<(StreamId, StreamId), String>;
    /// The file at `path` (under `/tmp`) as a read end the file server
    /// fills, and the stream's done signal.
    fn read_file(&mut self, path: &str) -> Result<(StreamId, DoneId), String>;
    /// The file at `path` (made if missing; emptied first unless
    /// `append`) as a write end the file server drains into it, and the
    /// stream's done signal.
    fn write_file(&mut self, path: &str, append: bool) -> Result<(StreamId, DoneId), String>;
    /// Starts `program` with `arguments` and these ends as its stdin and
    /// stdout (`None`: the shell's own, inherited); stderr is the
    /// shell's. Its process id.
    fn start(
        &mut self,
        program: &str,
        arguments: &str,
        stdin: Option<StreamId>,
        stdout: Option<StreamId>,
    ) -> Result<u32, String>;
    /// Writes all of `bytes` to a write end the shell holds.
    fn write_to(&mut self, stream: StreamId, bytes: &[u8]) -> Result<(), String>;
    /// Closes an end the shell holds.
    fn close(&mut self, stream: StreamId);
    /// Waits until a file stream is finished.
    fn finish(&mut self, done: DoneId) -> Result<(), String>;
    /// The entries of a directory under `/tmp`.
    fn files(&mut self, directory: &str) -> Result<Vec<FileInfo>, String>;
    /// Whether `path` under `/tmp` is a directory.
    fn is_directory(&mut self, path: &str) -> Result<bool, String>;
}

/// A pipe end the shell holds, as [`System`] numbers it.
pub type StreamId = u32;
/// A file stream's done signal, as [`System`] numbers it.
pub type DoneId = u32;

/// An entry of a directory under `/tmp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Its name.
    pub name: String,
    /// A directory (else a file).
    pub directory: bool,
    /// A file's bytes, a directory's entries.
    pub size: u64,
}

/// The file server's mount point.
pub const FILES: &str = "/tmp";

fn under_files(path: &str) -> bool {
    path == FILES || path.starts_with("/tmp/")
}

/// What a line asks next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Prompt again.
    Continue,
    /// Leave the session with this status.
    Exit(u32),
}

/// The shell's state: the last command's status, the jobs in the
/// background or stopped, and the current directory.
#[derive(Debug)]
pub struct Shell {
    status: u32,
    jobs: JobTable,
    directory: String,
}

impl Default for Shell {
    fn default() -> Self {
        Shell {
            status: 0,
            jobs: JobTable::default(),
            directory: String::from("/"),
        }
    }
}

const HELP: &str = "\
commands: echo WORDS, ls [PATH], cd [DIR], pwd, ps, help, exit [STATUS]
jobs: jobs, fg [%N], bg [%N], wait [%N|PID], kill [-SIGNAL] %N|PID (^Z stops, ^C interrupts)
PROGRAM [ARGS]: run a program of the boot archive (cat, wc, head, yes, echo-client, ...)
A | B | C: a pipeline; < FILE, > FILE, >> FILE: redirects (files live under /tmp)
LINE &: in the background; $? is the last command's status
";

/// Built-ins that change the shell itself: never part of a pipeline.
const CONTROL: &[&str] = &["exit", "cd", "kill", "wait", "jobs", "fg", "bg"];

/// The signals `kill -NAME` knows (any number 1-63 works as `-N`).
const SIGNAL_NAMES: &[(&str, u32)] = &[
    ("HUP", abi::signal::HUP),
    ("INT", abi::signal::INT),
    ("QUIT", abi::signal::QUIT),
    ("KILL", abi::signal::KILL),
    ("USR1", abi::signal::USR1),
    ("USR2", abi::signal::USR2),
    ("TERM", abi::signal::TERM),
    ("CONT", abi::signal::CONT),
    ("STOP", abi::signal::STOP),
    ("TSTP", abi::signal::TSTP),
];

impl Shell {
    /// A shell whose last status is 0, with no jobs, in `/`.
    pub fn new() -> Self {
        Shell::default()
    }

    /// A shell in `directory` (its inherited working directory).
    pub fn in_directory(directory: &str) -> Self {
        Shell {
            directory: String::from(directory),
            ..Shell::default()
        }
    }

    /// The current directory.
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// The last command's status.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Prompts and runs lines until the input ends or `exit`; the
    /// session's status.
    pub fn session(&mut self, terminal: &mut impl Terminal, system: &mut impl System) -> u32 {
        loop {
            self.report_jobs(terminal, system);
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
        let pipeline = match parse(line, self.status) {
            Ok(Some(pipeline)) => pipeline,
            Ok(None) => return Flow::Continue,
            Err(error) => {
                terminal.write(&format!("shell: {}\n", error.0));
                self.status = 2;
                return Flow::Continue;
            }
        };
        let first = pipeline.stages[0].words[0].as_str();
        let simple = pipeline.stages.len() == 1
            && !pipeline.background
            && pipeline.stages[0].input.is_none()
            && pipeline.stages[0].output.is_none();
        let result = if CONTROL.contains(&first) && simple {
            let words: Vec<&str> = pipeline.stages[0]
                .words
                .iter()
                .map(String::as_str)
                .collect();
            match self.control(&words, terminal, system) {
                Some(flow) => return flow,
                None => return Flow::Continue,
            }
        } else if let Some(control) = pipeline
            .stages
            .iter()
            .map(|stage| stage.words[0].as_str())
            .find(|word| CONTROL.contains(word))
        {
            Err(format!(
                "{control}: not in a pipeline, a redirect or the background"
            ))
        } else {
            let name = line.trim().trim_end_matches('&').trim_end();
            self.run_pipeline(&pipeline, name, terminal, system)
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

    /// `exit`, `cd`, `kill`, `wait`, `jobs`, `fg`, `bg`: `Some` ends the
    /// line with that flow.
    fn control(
        &mut self,
        words: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Option<Flow> {
        let (command, arguments) = words.split_first()?;
        let result = match *command {
            "exit" => {
                return Some(match arguments {
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
                });
            }
            "cd" => self.cd(arguments, system),
            "kill" => self.kill(arguments, terminal, system),
            "jobs" => self.list_jobs(arguments, terminal, system),
            "fg" => self.fg(arguments, terminal, system),
            "bg" => self.bg(arguments, terminal, system),
            _ => self.wait(arguments, terminal, system),
        };
        self.status = match result {
            Ok(status) => status,
            Err(message) => {
                terminal.write(&format!("shell: {message}\n"));
                1
            }
        };
        Some(Flow::Continue)
    }

    fn cd(&mut self, arguments: &[&str], system: &mut impl System) -> Result<u32, String> {
        let target = match arguments {
            [] => String::from(FILES),
            [path] => absolute(&self.directory, path),
            _ => return Err("cd: one directory at most".into()),
        };
        if target != "/" && !under_files(&target) {
            return Err(format!("cd {target}: only / and directories under /tmp"));
        }
        if target != "/" {
            match system.is_directory(&target) {
                Ok(true) => {}
                Ok(false) => return Err(format!("cd {target}: not a directory")),
                Err(error) => return Err(format!("cd {target}: {error}")),
            }
        }
        system
            .set_directory(&target)
            .map_err(|error| format!("cd {target}: {error}"))?;
        self.directory = target;
        Ok(0)
    }

    /// A built-in that writes text: its text and status, or `None` when
    /// `words` names a program.
    fn output(
        &mut self,
        words: &[&str],
        system: &mut impl System,
    ) -> Option<Result<String, String>> {
        let (command, arguments) = words.split_first()?;
        Some(match *command {
            "echo" => Ok(format!("{}\n", arguments.join(" "))),
            "help" => Ok(String::from(HELP)),
            "pwd" => Ok(format!("{}\n", self.directory)),
            "ls" => self.ls(arguments, system),
            "ps" => self.ps(arguments, system),
            _ => return None,
        })
    }

    /// Runs a pipeline: its status (the last stage's).
    fn run_pipeline(
        &mut self,
        pipeline: &Pipeline,
        name: &str,
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let mut dones = Vec::new();
        // The files first: a missing one starts nothing.
        let first = &pipeline.stages[0];
        let mut next_input = match &first.input {
            Some(path) => {
                let path = absolute(&self.directory, path);
                let (stream, done) = system
                    .read_file(&path)
                    .map_err(|error| format!("{path}: {error}"))?;
                dones.push(done);
                Some(stream)
            }
            None => None,
        };
        let last = pipeline.stages.len() - 1;
        let mut output = match &pipeline.stages[last].output {
            Some(output) => {
                let path = absolute(&self.directory, &output.path);
                match system.write_file(&path, output.append) {
                    Ok((stream, done)) => {
                        dones.push(done);
                        Some(stream)
                    }
                    Err(error) => {
                        if let Some(stream) = next_input {
                            system.close(stream);
                        }
                        let _ = self.finish_all(&dones, system);
                        return Err(format!("{path}: {error}"));
                    }
                }
            }
            None => None,
        };
        let mut pids = Vec::new();
        let mut group = 0;
        let mut last_status = None;
        let mut failure = None;
        for (index, stage) in pipeline.stages.iter().enumerate() {
            let input = next_input.take();
            let (stdout, read_end) = if index == last {
                (output.take(), None)
            } else {
                match system.pipe() {
                    Ok((read, write)) => (Some(write), Some(read)),
                    Err(error) => {
                        if let Some(stream) = input {
                            system.close(stream);
                        }
                        failure = Some(format!("pipe: {error}"));
                        break;
                    }
                }
            };
            next_input = read_end;
            let started = self.stage(stage, input, stdout, terminal, system);
            // The stage has its own references now (procman granted them).
            for stream in [input, stdout].into_iter().flatten() {
                system.close(stream);
            }
            match started {
                Ok(Started::Process(pid)) => {
                    // D88: the job's own group, led by its first process,
                    // made by the shell right after each SPAWN. A process
                    // runs in the shell's group until then; nothing
                    // signals that group (it is never the foreground), so
                    // only a stage that ended first misses its group.
                    if group == 0 {
                        if system.set_group(pid, 0).is_ok() {
                            group = pid;
                        }
                    } else {
                        let _ = system.set_group(pid, group);
                    }
                    pids.push(pid);
                }
                Ok(Started::BuiltIn(status)) => {
                    if index == last {
                        last_status = Some(status);
                    }
                }
                Err(message) => {
                    failure = Some(message);
                    break;
                }
            }
        }
        if let Some(stream) = next_input {
            system.close(stream);
        }
        if let Some(stream) = output {
            // Never handed to a stage (one before it failed): closing it
            // ends its file stream.
            system.close(stream);
        }
        let mut job = Job::new(name, group, pids, dones);
        job.built_in_status = last_status;
        if pipeline.background && failure.is_none() && !job.pids.is_empty() {
            // `[N] PID`, the last stage's pid, as POSIX shells show it.
            let last = job.pids.last().copied().unwrap_or(0);
            let number = self.jobs.add(job);
            terminal.write(&format!("[{number}] {last}\n"));
            return Ok(0);
        }
        let waited = self.run_foreground(job, false, terminal, system);
        if let Some(message) = failure {
            return Err(message);
        }
        waited
    }

    /// Waits for `job` as the terminal's foreground group (D76), after
    /// sending its group CONT when `resume`: its status once it ended, or,
    /// when it stopped, the stopping status (128 + the signal) with the
    /// job kept in the table and `[N]+ Stopped  line` shown.
    fn run_foreground(
        &mut self,
        mut job: Job,
        resume: bool,
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        if job.group != 0 {
            system.set_foreground(job.group);
        }
        if resume {
            job.stopped = None;
            // A group whose processes all ended meanwhile has nobody to
            // continue: the waits below learn their ends.
            let _ = send_to_job(&job, abi::signal::CONT, system);
        }
        for (index, pid) in job.unended() {
            let state = system
                .wait_job(pid)
                .map_err(|error| format!("wait {pid}: {error}"));
            job.learn(index, state);
            if job.stopped.is_some() {
                break;
            }
        }
        // Clearing it waits for a ^C being acted on (D74); at the prompt
        // no group is in the foreground, so ^C and ^Z there signal nobody.
        if job.group != 0 {
            system.set_foreground(0);
        }
        if let Some(signal) = job.stopped {
            let name = job.name.clone();
            let number = self.jobs.add(job);
            terminal.write(&format!("[{number}]+ Stopped  {name}\n"));
            return Ok(abi::signal::terminated_status(signal));
        }
        let finished = self.finish_all(&job.dones, system);
        let status = job.status()?;
        finished?;
        if status != 0 && job.built_in_status.is_none() {
            let last = job.name.rsplit('|').next().unwrap_or("").trim();
            let program = last.split_whitespace().next().unwrap_or(last);
            terminal.write(&format!("shell: {}\n", ended(program, status)));
        }
        Ok(status)
    }

    /// Learns, without waiting, what each job's processes did since.
    fn refresh(&mut self, system: &mut impl System) {
        for job in self.jobs.iter_mut() {
            // Stopped only while one of its processes still is (a CONT
            // from elsewhere, `kill -CONT`, resumes it).
            job.stopped = None;
            for (index, pid) in job.unended() {
                let state = system.poll(pid);
                job.learn(index, state);
            }
        }
    }

    /// Before each prompt: the jobs that ended since are shown
    /// (`[N]  Done  line`) and leave the table, their file streams
    /// finished; a background job that stopped is shown once.
    fn report_jobs(&mut self, terminal: &mut impl Terminal, system: &mut impl System) {
        let before: Vec<(u32, bool)> = self
            .jobs
            .iter()
            .map(|job| (job.number, job.stopped.is_some()))
            .collect();
        self.refresh(system);
        for number in self.jobs.numbers() {
            let Some(job) = self.jobs.get_mut(number) else {
                continue;
            };
            let was_stopped = before.iter().any(|(n, stopped)| *n == number && *stopped);
            let (ended, stopped) = (job.ended(), job.stopped.is_some());
            if ended {
                if let Some(job) = self.jobs.take(number) {
                    let line = self.done_line(&job, system);
                    terminal.write(&line);
                }
            } else if stopped && !was_stopped {
                let line = format!("[{number}]+ Stopped  {}\n", job.name);
                terminal.write(&line);
            }
        }
    }

    /// An ended job's line, its file streams finished first.
    fn done_line(&self, job: &Job, system: &mut impl System) -> String {
        let finished = self.finish_all(&job.dones, system);
        match finished {
            Ok(()) => format!("[{}]  {}  {}\n", job.number, job.state_word(), job.name),
            Err(error) => format!(
                "[{}]  {}  {}: {error}\n",
                job.number,
                job.state_word(),
                job.name
            ),
        }
    }

    /// Waits for every file stream; the first failure.
    fn finish_all(&self, dones: &[DoneId], system: &mut impl System) -> Result<(), String> {
        let mut result = Ok(());
        for done in dones {
            if let Err(error) = system.finish(*done)
                && result.is_ok()
            {
                result = Err(format!("a file stream: {error}"));
            }
        }
        result
    }

    /// Runs one stage with these ends (the caller closes them after).
    fn stage(
        &mut self,
        stage: &Stage,
        input: Option<StreamId>,
        output: Option<StreamId>,
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<Started, String> {
        let words: Vec<&str> = stage.words.iter().map(String::as_str).collect();
        match self.output(&words, system) {
            Some(Ok(text)) => {
                match output {
                    Some(stream) => system
                        .write_to(stream, text.as_bytes())
                        .map_err(|error| format!("{}: write: {error}", words[0]))?,
                    None => terminal.write(&text),
                }
                Ok(Started::BuiltIn(0))
            }
            Some(Err(message)) => {
                terminal.write(&format!("shell: {message}\n"));
                Ok(Started::BuiltIn(1))
            }
            None => {
                let (program, arguments) = (words[0], arguments_of(&words));
                let started = if input.is_none() && output.is_none() {
                    system.spawn(program, &arguments)
                } else {
                    system.start(program, &arguments, input, output)
                };
                started
                    .map(Started::Process)
                    .map_err(|error| format!("{program}: {error}"))
            }
        }
    }

    fn ls(&mut self, arguments: &[&str], system: &mut impl System) -> Result<String, String> {
        let directory = match arguments {
            [] => self.directory.clone(),
            [directory] => absolute(&self.directory, directory),
            _ => return Err("ls: one path at most".into()),
        };
        if under_files(&directory) {
            let entries = system
                .files(&directory)
                .map_err(|error| format!("ls {directory}: {error}"))?;
            Ok(listing::files(&entries))
        } else {
            let entries = system
                .names(&directory)
                .map_err(|error| format!("ls {directory}: {error}"))?;
            Ok(listing::names(&entries))
        }
    }

    fn ps(&mut self, arguments: &[&str], system: &mut impl System) -> Result<String, String> {
        if !arguments.is_empty() {
            return Err("ps: no arguments".into());
        }
        let processes = system.processes().map_err(|error| format!("ps: {error}"))?;
        let mut text = String::from("  PID PARENT DOMAIN   STATE        NAME\n");
        for p in processes {
            text.push_str(&format!(
                "{:>5} {:>6} {:<8} {:<12} {}\n",
                p.pid, p.parent, p.domain, p.state, p.name
            ));
        }
        Ok(text)
    }

    /// `kill PID` ends a process (procman's KILL); `kill %N` sends TERM
    /// to job N's group; `kill -SIGNAL %N|PID` (a name or a number) sends
    /// that signal.
    fn kill(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let (signal, target) = match arguments {
            [target] => (None, *target),
            [flag, target] if flag.starts_with('-') => (Some(signal_named(&flag[1..])?), *target),
            _ => return Err("kill: [-SIGNAL] %N or a process id".into()),
        };
        if target.starts_with('%') {
            let number = self.jobs.find("kill", Some(target))?;
            let job = self
                .jobs
                .get(number)
                .ok_or_else(|| format!("kill: {target}: no such job"))?;
            let signal = signal.unwrap_or(abi::signal::TERM);
            send_to_job(job, signal, system).map_err(|error| format!("kill {error}"))?;
            // A stopped job gets CONT after it, as POSIX shells do, so it
            // acts on the signal now (a default TERM ends it at once).
            let stops = [abi::signal::STOP, abi::signal::TSTP, abi::signal::CONT];
            if job.stopped.is_some() && !stops.contains(&signal) {
                // The signal may have ended the group already: then there
                // is nobody to continue, which is no failure.
                let _ = send_to_job(job, abi::signal::CONT, system);
            }
            return Ok(0);
        }
        let pid: u32 = target
            .parse()
            .map_err(|_| format!("kill: not a process id: {target}"))?;
        match signal {
            Some(signal) => system
                .signal(pid, signal)
                .map_err(|error| format!("kill {pid}: {error}"))?,
            None => {
                system
                    .kill(pid)
                    .map_err(|error| format!("kill {pid}: {error}"))?;
                terminal.write(&format!("[{pid}] killed\n"));
            }
        }
        Ok(0)
    }

    /// `wait`: every job that runs; `wait %N` or `wait PID` (of a job or
    /// any child): until it ends or stops, then shown as at the prompt.
    fn wait(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let numbers: Vec<u32> = match arguments {
            [] => {
                self.refresh(system);
                let mut numbers = self.jobs.numbers();
                numbers.retain(|n| self.jobs.get_mut(*n).is_some_and(|j| j.stopped.is_none()));
                numbers
            }
            [spec] if spec.starts_with('%') => alloc::vec![self.jobs.find("wait", Some(spec))?],
            [pid] => {
                let pid: u32 = pid
                    .parse()
                    .map_err(|_| format!("wait: not a process id: {pid}"))?;
                let number = self
                    .jobs
                    .numbers()
                    .into_iter()
                    .find(|n| self.jobs.get_mut(*n).is_some_and(|j| j.pids.contains(&pid)));
                match number {
                    Some(number) => alloc::vec![number],
                    None => {
                        let job =
                            Job::new(&format!("process {pid}"), 0, alloc::vec![pid], Vec::new());
                        let number = self.jobs.add(job);
                        alloc::vec![number]
                    }
                }
            }
            _ => return Err("wait: one job or process id at most".into()),
        };
        let mut last = 0;
        let mut failure = None;
        for number in numbers {
            let Some(mut job) = self.jobs.take(number) else {
                continue;
            };
            job.stopped = None;
            for (index, pid) in job.unended() {
                let state = system.wait_job(pid);
                job.learn(index, state.map_err(|error| format!("wait {pid}: {error}")));
                if job.stopped.is_some() {
                    break;
                }
            }
            if let Some(signal) = job.stopped {
                last = abi::signal::terminated_status(signal);
                let name = job.name.clone();
                self.jobs.add(job);
                terminal.write(&format!("[{number}]+ Stopped  {name}\n"));
                continue;
            }
            match job.status() {
                Ok(status) => {
                    let line = self.done_line(&job, system);
                    terminal.write(&line);
                    last = status;
                }
                Err(message) => {
                    let _ = self.finish_all(&job.dones, system);
                    failure = Some(message);
                }
            }
        }
        match failure {
            Some(message) => Err(message),
            None => Ok(last),
        }
    }

    /// `jobs`: each job in the table, `[N]+ Running|Stopped|Done  line`;
    /// the ended ones are shown here once and leave it.
    fn list_jobs(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        if !arguments.is_empty() {
            return Err("jobs: no arguments".into());
        }
        self.refresh(system);
        for number in self.jobs.numbers() {
            let Some(job) = self.jobs.get(number) else {
                continue;
            };
            if job.ended() {
                if let Some(job) = self.jobs.take(number) {
                    let line = self.done_line(&job, system);
                    terminal.write(&line);
                }
            } else {
                terminal.write(&self.jobs.line(job));
            }
        }
        Ok(0)
    }

    /// The job `command` names: its one argument (`%N`), or the current
    /// job without one.
    fn job_argument(&self, command: &str, arguments: &[&str]) -> Result<u32, String> {
        match arguments {
            [] => self.jobs.find(command, None),
            [spec] => self.jobs.find(command, Some(spec)),
            _ => Err(format!("{command}: one job at most")),
        }
    }

    /// `fg [%N]`: the job (the current one by default) becomes the
    /// terminal's foreground group, is sent CONT and waited for.
    fn fg(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let number = self.job_argument("fg", arguments)?;
        let job = self
            .jobs
            .take(number)
            .ok_or_else(|| format!("fg: %{number}: no such job"))?;
        terminal.write(&format!("{}\n", job.name));
        self.run_foreground(job, true, terminal, system)
    }

    /// `bg [%N]`: the stopped job (the current one by default) is sent
    /// CONT and runs on in the background.
    fn bg(
        &mut self,
        arguments: &[&str],
        terminal: &mut impl Terminal,
        system: &mut impl System,
    ) -> Result<u32, String> {
        let number = self.job_argument("bg", arguments)?;
        let job = self
            .jobs
            .get_mut(number)
            .ok_or_else(|| format!("bg: %{number}: no such job"))?;
        if job.stopped.is_none() {
            return Err(format!("bg: %{number}: already running"));
        }
        job.stopped = None;
        let job: &Job = job;
        let name = job.name.clone();
        send_to_job(job, abi::signal::CONT, system).map_err(|error| format!("bg {error}"))?;
        self.jobs.make_current(number);
        terminal.write(&format!("[{number}]+ {name} &\n"));
        Ok(0)
    }
}

/// `signal` to `job`: to its group, or to each process still running
/// when it has none.
fn send_to_job(job: &Job, signal: u32, system: &mut impl System) -> Result<(), String> {
    if job.group != 0 {
        return system
            .signal_group(job.group, signal)
            .map_err(|error| format!("%{}: {error}", job.number));
    }
    for (_, pid) in job.unended() {
        system
            .signal(pid, signal)
            .map_err(|error| format!("%{}: {error}", job.number))?;
    }
    Ok(())
}

/// A signal `kill -X` names: a name of [`SIGNAL_NAMES`] (with or without
/// `SIG`) or a number 1-63.
fn signal_named(word: &str) -> Result<u32, String> {
    if let Ok(number) = word.parse::<u32>() {
        if (1..=abi::upcall::MAX_SIGNAL).contains(&number) {
            return Ok(number);
        }
        return Err(format!("kill: no such signal: {word}"));
    }
    let name = word.strip_prefix("SIG").unwrap_or(word);
    SIGNAL_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, number)| *number)
        .ok_or_else(|| format!("kill: no such signal: {word}"))
}

/// What a stage became.
enum Started {
    /// A process, to wait for.
    Process(u32),
    /// A built-in that ran, with its status.
    BuiltIn(u32),
}

/// A program's argument bytes: its words after the first, joined by
/// spaces.
fn arguments_of(words: &[&str]) -> String {
    words[1..].join(" ")
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
    /// Pipes are byte queues; a program runs whole when it starts (the
    /// stages start left to right, so its input is there): `cat` copies
    /// its stdin to its stdout, `count` writes the number of bytes of its
    /// stdin, `shout` writes `HI` three times; what goes to no stream is
    /// the kernel log. Files live in `files`; a written file's bytes land
    /// when the stream is finished. Jobs: `stopper` stops (TSTP, as if ^Z
    /// was typed) the first time it is waited for and ends with 0 once
    /// continued; `quick` has ended by the first look at it; every other
    /// program runs until waited for or signalled.
    #[derive(Default)]
    struct FakeSystem {
        statuses: BTreeMap<String, u32>,
        running: BTreeMap<u32, String>,
        next: u32,
        killed: Vec<u32>,
        /// SET_GROUP: process -> group.
        groups: BTreeMap<u32, u32>,
        /// Stopped processes and the signal.
        stopped: BTreeMap<u32, u32>,
        /// Processes a signal ended, with the status.
        ended: BTreeMap<u32, u32>,
        /// `stopper`s that stopped once already.
        stopped_once: Vec<u32>,
        /// Every foreground group the shell set, in order.
        foreground: Vec<u32>,
        /// Every group signal sent: (group, signal).
        group_signals: Vec<(u32, u32)>,
        /// Stream id -> (pipe, is the write end).
        ends: BTreeMap<u32, (u32, bool)>,
        pipes: BTreeMap<u32, Vec<u8>>,
        /// Done id -> the file a write stream fills and its pipe.
        dones: BTreeMap<u32, Option<(String, u32, bool)>>,
        files: BTreeMap<String, Vec<u8>>,
        directories: Vec<String>,
        log: String,
        /// The directory the shell set for its children.
        working_directory: String,
    }

    impl FakeSystem {
        /// What `signal` does to a running process.
        fn apply(&mut self, pid: u32, signal: u32) {
            match signal {
                abi::signal::CONT => {
                    self.stopped.remove(&pid);
                }
                abi::signal::STOP | abi::signal::TSTP => {
                    self.stopped.insert(pid, signal);
                }
                _ => {
                    self.stopped.remove(&pid);
                    self.ended.insert(pid, 128 + signal);
                }
            }
        }
        /// A process's end once it is known; the process then goes.
        fn end_of(&mut self, pid: u32) -> Option<u32> {
            let name = self.running.get(&pid)?.clone();
            let status = if self.killed.contains(&pid) {
                FAULTED
            } else if let Some(status) = self.ended.get(&pid) {
                *status
            } else {
                self.statuses[&name]
            };
            self.running.remove(&pid);
            Some(status)
        }
        fn id(&mut self) -> u32 {
            self.next += 1;
            self.next
        }
        fn run(&mut self, program: &str, stdin: Option<u32>, stdout: Option<u32>) {
            let input = stdin
                .and_then(|s| self.ends.get(&s).copied())
                .map(|(pipe, _)| core::mem::take(self.pipes.entry(pipe).or_default()))
                .unwrap_or_default();
            let output = match program {
                "cat" => input,
                "count" => std::format!("{}\n", input.len()).into_bytes(),
                "shout" => b"HI\nHI\nHI\n".to_vec(),
                _ => Vec::new(),
            };
            match stdout.and_then(|s| self.ends.get(&s).copied()) {
                Some((pipe, _)) => self.pipes.entry(pipe).or_default().extend(output),
                None => self.log.push_str(&String::from_utf8_lossy(&output)),
            }
        }
    }

    impl System for FakeSystem {
        fn names(&mut self, directory: &str) -> Result<Vec<NameInfo>, String> {
            let entry = |name: &str, kind, owner: u32| NameInfo {
                name: name.into(),
                kind,
                type_name: if owner == 0 { "" } else { "echo" }.into(),
                owner,
                program: if owner == 0 { "" } else { "echo" }.into(),
            };
            match directory {
                "/" => Ok(vec![entry("srv", "dir", 0)]),
                "/srv" => Ok(vec![entry("echo", "door", 1)]),
                _ => Err("PM_NO_SUCH_NAME".into()),
            }
        }
        fn set_directory(&mut self, path: &str) -> Result<(), String> {
            self.working_directory = path.into();
            Ok(())
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
        fn wait_job(&mut self, pid: u32) -> Result<ProcessState, String> {
            let name = self.running.get(&pid).ok_or("PM_NO_SUCH_PROCESS")?.clone();
            if let Some(signal) = self.stopped.get(&pid) {
                return Ok(ProcessState::Stopped(*signal));
            }
            if name == "stopper"
                && !self.stopped_once.contains(&pid)
                && !self.ended.contains_key(&pid)
            {
                self.stopped_once.push(pid);
                self.stopped.insert(pid, abi::signal::TSTP);
                return Ok(ProcessState::Stopped(abi::signal::TSTP));
            }
            Ok(ProcessState::Exited(self.end_of(pid).unwrap_or(0)))
        }
        fn poll(&mut self, pid: u32) -> Result<ProcessState, String> {
            let name = self.running.get(&pid).ok_or("PM_NO_SUCH_PROCESS")?.clone();
            if let Some(signal) = self.stopped.get(&pid) {
                return Ok(ProcessState::Stopped(*signal));
            }
            if name == "quick" || self.ended.contains_key(&pid) || self.killed.contains(&pid) {
                return Ok(ProcessState::Exited(self.end_of(pid).unwrap_or(0)));
            }
            Ok(ProcessState::Running)
        }
        fn kill(&mut self, pid: u32) -> Result<(), String> {
            if !self.running.contains_key(&pid) {
                return Err("PM_NO_SUCH_PROCESS".into());
            }
            self.killed.push(pid);
            Ok(())
        }
        fn signal(&mut self, pid: u32, signal: u32) -> Result<(), String> {
            if !self.running.contains_key(&pid) {
                return Err("PM_NO_SUCH_PROCESS".into());
            }
            self.apply(pid, signal);
            Ok(())
        }
        fn signal_group(&mut self, group: u32, signal: u32) -> Result<(), String> {
            let members: Vec<u32> = self
                .running
                .keys()
                .copied()
                .filter(|pid| self.groups.get(pid) == Some(&group))
                .collect();
            if members.is_empty() {
                return Err("PM_NO_SUCH_GROUP".into());
            }
            self.group_signals.push((group, signal));
            for pid in members {
                self.apply(pid, signal);
            }
            Ok(())
        }
        fn set_group(&mut self, pid: u32, group: u32) -> Result<(), String> {
            if !self.running.contains_key(&pid) {
                return Err("PM_NO_SUCH_PROCESS".into());
            }
            let group = if group == 0 { pid } else { group };
            if group != pid && !self.groups.values().any(|g| *g == group) {
                return Err("PM_NO_SUCH_GROUP".into());
            }
            self.groups.insert(pid, group);
            Ok(())
        }
        fn set_foreground(&mut self, group: u32) {
            self.foreground.push(group);
        }
        fn pipe(&mut self) -> Result<(StreamId, StreamId), String> {
            let pipe = self.id();
            let (read, write) = (self.id(), self.id());
            self.ends.insert(read, (pipe, false));
            self.ends.insert(write, (pipe, true));
            Ok((read, write))
        }
        fn read_file(&mut self, path: &str) -> Result<(StreamId, DoneId), String> {
            let bytes = self.files.get(path).cloned().ok_or("FILE_NOT_FOUND")?;
            let (read, write) = self.pipe()?;
            self.write_to(write, &bytes)?;
            self.close(write);
            let done = self.id();
            self.dones.insert(done, None);
            Ok((read, done))
        }
        fn write_file(&mut self, path: &str, append: bool) -> Result<(StreamId, DoneId), String> {
            if path.ends_with("/nodir/x") {
                return Err("FILE_NOT_FOUND".into());
            }
            let (read, write) = self.pipe()?;
            let pipe = self.ends[&read].0;
            self.close(read);
            let done = self.id();
            self.dones.insert(done, Some((path.into(), pipe, append)));
            Ok((write, done))
        }
        fn start(
            &mut self,
            program: &str,
            arguments: &str,
            stdin: Option<StreamId>,
            stdout: Option<StreamId>,
        ) -> Result<u32, String> {
            let pid = self.spawn(program, arguments)?;
            self.run(program, stdin, stdout);
            Ok(pid)
        }
        fn write_to(&mut self, stream: StreamId, bytes: &[u8]) -> Result<(), String> {
            match self.ends.get(&stream) {
                Some((pipe, true)) => {
                    self.pipes
                        .entry(*pipe)
                        .or_default()
                        .extend_from_slice(bytes);
                    Ok(())
                }
                _ => Err("not a write end".into()),
            }
        }
        fn close(&mut self, stream: StreamId) {
            assert!(self.ends.remove(&stream).is_some(), "closed {stream} twice");
        }
        fn finish(&mut self, done: DoneId) -> Result<(), String> {
            let Some(target) = self.dones.remove(&done).ok_or("finished twice")? else {
                return Ok(());
            };
            let (path, pipe, append) = target;
            let bytes = self.pipes.remove(&pipe).unwrap_or_default();
            let file = self.files.entry(path).or_default();
            if !append {
                file.clear();
            }
            file.extend(bytes);
            Ok(())
        }
        fn files(&mut self, directory: &str) -> Result<Vec<FileInfo>, String> {
            if directory != "/tmp" {
                return Err("FILE_NOT_FOUND".into());
            }
            Ok(self
                .files
                .iter()
                .map(|(name, bytes)| FileInfo {
                    name: name.trim_start_matches("/tmp/").into(),
                    directory: false,
                    size: bytes.len() as u64,
                })
                .chain(self.directories.iter().map(|name| FileInfo {
                    name: name.trim_start_matches("/tmp/").into(),
                    directory: true,
                    size: 0,
                }))
                .collect())
        }
        fn is_directory(&mut self, path: &str) -> Result<bool, String> {
            if path == "/tmp" || self.directories.iter().any(|d| d == path) {
                return Ok(true);
            }
            if self.files.contains_key(path) {
                return Ok(false);
            }
            Err("FILE_NOT_FOUND".into())
        }
    }

    fn session(lines: &[&str]) -> (String, u32) {
        let (output, status, _) = session_with(lines);
        (output, status)
    }

    /// The session's output, status, and the fake system after it (every
    /// stream closed and every file stream finished, checked here).
    fn session_with(lines: &[&str]) -> (String, u32, FakeSystem) {
        let mut terminal = FakeTerminal {
            input: lines.iter().map(|l| Input::Line((*l).into())).collect(),
            output: String::new(),
        };
        let mut system = FakeSystem::default();
        for (program, status) in [
            ("good", 0),
            ("bad", 3),
            ("cat", 0),
            ("count", 0),
            ("shout", 0),
            ("stopper", 0),
            ("quick", 0),
            ("forever", 0),
        ] {
            system.statuses.insert(program.into(), status);
        }
        system.directories.push("/tmp/d".into());
        let status = Shell::new().session(&mut terminal, &mut system);
        assert!(
            system.ends.is_empty(),
            "streams left open: {:?}",
            system.ends
        );
        (terminal.output, status, system)
    }

    #[test]
    fn a_session_prompts_runs_and_reports() {
        let (output, status) = session(&["echo hello  world", "ls /", "good", "echo $?"]);
        assert_eq!(
            output,
            "hinge$ hello world\nhinge$ KIND   TYPE       PID PROGRAM      NAME\n\
             dir                                srv/\n\
             hinge$ hinge$ 0\nhinge$ "
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
            "ls /srv",
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
             hinge$ KIND   TYPE       PID PROGRAM      NAME\n\
             door   echo         1 echo         echo\n\
             hinge$ shell: kill 99: PM_NO_SUCH_PROCESS\n\
             hinge$ shell: kill: not a process id: x\n\
             hinge$ shell: exit: one status at most\n\
             hinge$ shell: exit: not a status: x\n\
             hinge$ hinge$ "
        );
        assert_eq!(status, 0, "the last command's status ends the session");
    }

    #[test]
    fn redirects_and_pipelines_move_the_bytes() {
        let (output, status, system) = session_with(&[
            "echo hello > /tmp/a",
            "cat /tmp/a",
            "cat < /tmp/a | count",
            "shout | cat | cat > /tmp/b",
            "echo more >> /tmp/b",
            "cd /tmp",
            "pwd",
            "echo x>rel",
            "ls",
            "cat < a | cat >> b",
            "echo $?",
        ]);
        assert_eq!(
            output,
            "hinge$ hinge$ hinge$ hinge$ hinge$ hinge$ hinge$ /tmp\n\
             hinge$ hinge$ file       6 a\nfile      14 b\nfile       2 rel\ndir        0 d/\n\
             hinge$ hinge$ 0\nhinge$ "
        );
        assert_eq!(status, 0);
        assert_eq!(system.files["/tmp/a"], b"hello\n");
        assert_eq!(system.files["/tmp/b"], b"HI\nHI\nHI\nmore\nhello\n");
        assert_eq!(system.files["/tmp/rel"], b"x\n");
        // `cd` told the system, so the programs it starts inherit /tmp.
        assert_eq!(system.working_directory, "/tmp");
        // `cat /tmp/a` has no streams: the fake's cat reads nothing; the
        // pipeline's count went to the shell's own stdout (the log here).
        assert_eq!(system.log, "6\n");
        assert!(system.dones.is_empty(), "a file stream was never finished");
    }

    #[test]
    fn redirect_and_pipeline_errors_are_reported_and_start_nothing() {
        let (output, status, system) = session_with(&[
            "cat < /tmp/missing | count",
            "echo $?",
            "shout > /tmp/nodir/x",
            "good | forbidden | cat",
            "cat |",
            "cd /srv",
            "cd /tmp/missing",
            "cd /tmp/a",
            "echo a > /tmp/a",
            "cd /tmp/a",
            "ls /tmp/zzz",
            "wait | cat",
            "bad | good",
            "good | bad",
        ]);
        assert_eq!(
            output,
            "hinge$ shell: /tmp/missing: FILE_NOT_FOUND\n\
             hinge$ 1\n\
             hinge$ shell: /tmp/nodir/x: FILE_NOT_FOUND\n\
             hinge$ shell: forbidden: PM_SPAWN_DENIED\n\
             hinge$ shell: a command is missing after |\n\
             hinge$ shell: cd /srv: only / and directories under /tmp\n\
             hinge$ shell: cd /tmp/missing: FILE_NOT_FOUND\n\
             hinge$ shell: cd /tmp/a: FILE_NOT_FOUND\n\
             hinge$ hinge$ shell: cd /tmp/a: not a directory\n\
             hinge$ shell: ls /tmp/zzz: FILE_NOT_FOUND\n\
             hinge$ shell: wait: not in a pipeline, a redirect or the background\n\
             hinge$ hinge$ shell: bad exited with status 3\n\
             hinge$ "
        );
        assert_eq!(status, 3);
        assert!(
            system.running.is_empty(),
            "a started stage was not waited for"
        );
    }

    #[test]
    fn background_pipelines_keep_their_files_until_waited_for() {
        let (output, _, system) =
            session_with(&["shout | cat > /tmp/j &", "ls /tmp", "wait", "ls /tmp"]);
        assert_eq!(
            output,
            "hinge$ [1] 9\n\
             hinge$ dir        0 d/\n\
             hinge$ [1]  Done  shout | cat > /tmp/j\n\
             hinge$ file       9 j\ndir        0 d/\n\
             hinge$ "
        );
        assert!(system.dones.is_empty());
    }

    #[test]
    fn background_jobs_are_waited_for_and_killed() {
        let (output, status) = session(&["good &", "bad &", "ps", "kill 2", "wait", "exit 7"]);
        assert_eq!(
            output,
            "hinge$ [1] 1\n\
             hinge$ [2] 2\n\
             hinge$   PID PARENT DOMAIN   STATE        NAME\n    \
             1      0 users    running      good\n    \
             2      0 users    running      bad\n\
             hinge$ [2] killed\n\
             [2]  Faulted  bad\n\
             hinge$ [1]  Done  good\n\
             hinge$ "
        );
        assert_eq!(status, 7);
    }

    #[test]
    fn a_stopped_job_returns_to_the_prompt_and_fg_resumes_it_in_its_group() {
        let (output, _, system) = session_with(&["stopper", "echo $?", "jobs", "fg", "echo $?"]);
        assert_eq!(
            output,
            "hinge$ [1]+ Stopped  stopper\n\
             hinge$ 148\n\
             hinge$ [1]+ Stopped  stopper\n\
             hinge$ stopper\n\
             hinge$ 0\n\
             hinge$ "
        );
        // Its own group, the foreground while waited for, none after.
        assert_eq!(system.groups.get(&1), Some(&1));
        assert_eq!(system.foreground, vec![1, 0, 1, 0]);
        assert_eq!(system.group_signals, vec![(1, abi::signal::CONT)]);
    }

    #[test]
    fn bg_continues_a_stopped_job_in_the_background() {
        let (output, _, system) = session_with(&["stopper", "bg", "jobs", "bg", "wait", "jobs"]);
        assert_eq!(
            output,
            "hinge$ [1]+ Stopped  stopper\n\
             hinge$ [1]+ stopper &\n\
             hinge$ [1]+ Running  stopper\n\
             hinge$ shell: bg: %1: already running\n\
             hinge$ [1]  Done  stopper\n\
             hinge$ hinge$ "
        );
        // bg never makes the job the terminal's foreground.
        assert_eq!(system.foreground, vec![1, 0]);
        assert_eq!(system.group_signals, vec![(1, abi::signal::CONT)]);
    }

    #[test]
    fn job_control_errors_are_reported_and_change_nothing() {
        let (output, _, system) = session_with(&[
            "fg",
            "bg",
            "fg %9",
            "stopper",
            "bg %2",
            "fg x",
            "fg %1 %2",
            "kill %3",
            "kill -FOO %1",
            "kill -64 %1",
            "kill -STOP",
            "jobs extra",
            "jobs | cat",
            "echo $?",
        ]);
        assert_eq!(
            output,
            "hinge$ shell: fg: no current job\n\
             hinge$ shell: bg: no current job\n\
             hinge$ shell: fg: %9: no such job\n\
             hinge$ [1]+ Stopped  stopper\n\
             hinge$ shell: bg: %2: no such job\n\
             hinge$ shell: fg: x: no such job\n\
             hinge$ shell: fg: one job at most\n\
             hinge$ shell: kill: %3: no such job\n\
             hinge$ shell: kill: no such signal: FOO\n\
             hinge$ shell: kill: no such signal: 64\n\
             hinge$ shell: kill: not a process id: -STOP\n\
             hinge$ shell: jobs: no arguments\n\
             hinge$ shell: jobs: not in a pipeline, a redirect or the background\n\
             hinge$ 1\n\
             hinge$ "
        );
        assert!(system.group_signals.is_empty());
        assert_eq!(system.stopped.get(&1), Some(&abi::signal::TSTP));
    }

    #[test]
    fn jobs_are_numbered_listed_and_killed_by_group() {
        let (output, _, system) = session_with(&[
            "forever &",
            "forever | cat &",
            "jobs",
            "kill %1",
            "jobs",
            "forever &",
        ]);
        assert_eq!(
            output,
            "hinge$ [1] 1\n\
             hinge$ [2] 6\n\
             hinge$ [1]  Running  forever\n\
             [2]+ Running  forever | cat\n\
             hinge$ [1]  Exit 143  forever\n\
             hinge$ [2]+ Running  forever | cat\n\
             hinge$ [3] 7\n\
             hinge$ "
        );
        // A pipeline is one group, led by its first process.
        assert_eq!(system.groups.get(&5), Some(&5));
        assert_eq!(system.groups.get(&6), Some(&5));
        assert_eq!(system.group_signals, vec![(1, abi::signal::TERM)]);
        // Background jobs never become the foreground.
        assert!(system.foreground.is_empty());
    }

    #[test]
    fn kill_signals_stop_and_continue_background_jobs() {
        let (output, _, system) = session_with(&[
            "forever &",
            "kill -STOP %1",
            "jobs",
            "kill -SIGCONT %%",
            "jobs",
            "kill -15 1",
        ]);
        assert_eq!(
            output,
            "hinge$ [1] 1\n\
             hinge$ [1]+ Stopped  forever\n\
             hinge$ [1]+ Stopped  forever\n\
             hinge$ hinge$ [1]+ Running  forever\n\
             hinge$ [1]  Exit 143  forever\n\
             hinge$ "
        );
        assert_eq!(
            system.group_signals,
            vec![(1, abi::signal::STOP), (1, abi::signal::CONT)]
        );
    }

    #[test]
    fn killing_a_stopped_job_continues_it_so_it_ends() {
        let (output, _, system) = session_with(&["stopper", "kill %1", "jobs"]);
        assert_eq!(
            output,
            "hinge$ [1]+ Stopped  stopper\n\
             hinge$ [1]  Exit 143  stopper\n\
             hinge$ hinge$ "
        );
        assert_eq!(
            system.group_signals,
            vec![(1, abi::signal::TERM), (1, abi::signal::CONT)]
        );
    }

    #[test]
    fn a_background_job_that_ended_is_reported_before_the_next_prompt() {
        let (output, _) = session(&["quick &", "echo hi", "wait"]);
        assert_eq!(
            output,
            "hinge$ [1] 1\n[1]  Done  quick\nhinge$ hi\nhinge$ hinge$ "
        );
    }

    #[test]
    fn a_stopped_pipeline_is_one_job_and_wait_shows_it_stopped() {
        let (output, _, system) =
            session_with(&["stopper | cat", "wait %1", "wait", "fg %1", "wait 99"]);
        assert_eq!(
            output,
            "hinge$ [1]+ Stopped  stopper | cat\n\
             hinge$ [1]+ Stopped  stopper | cat\n\
             hinge$ hinge$ stopper | cat\n\
             hinge$ shell: wait 99: PM_NO_SUCH_PROCESS\n\
             hinge$ "
        );
        // The pipe is ids 1-3: stopper is 4 and leads, cat (5) joins it.
        assert_eq!(system.groups.get(&4), Some(&4));
        assert_eq!(system.groups.get(&5), Some(&4));
        assert_eq!(system.foreground, vec![4, 0, 4, 0]);
    }
}
