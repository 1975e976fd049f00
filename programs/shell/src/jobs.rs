//! The shell's job table (ABI.md §7a.7, D88, D89): each job is a command
//! or a whole pipeline in a process group of its own, numbered `[N]` from
//! 1 (one past the highest number in use, as POSIX shells do). A job is
//! in the table while it runs in the background or is stopped; the
//! *current* job (`+`, what `fg` and `bg` take without a `%N`) is the one
//! most recently stopped or put in the background.
//!
//! Pure bookkeeping: what a job's processes did is the shell's to learn
//! (WAIT_JOB through [`crate::System`]) and to record here.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::DoneId;

/// How one of a job's processes stands, as WAIT_JOB tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessState {
    /// It runs.
    Running,
    /// It ended with this status.
    Exited(u32),
    /// It is stopped by this signal.
    Stopped(u32),
}

/// A command or pipeline the shell started, in its own process group.
#[derive(Debug)]
pub struct Job {
    /// `[N]`; 0 until the job enters the table.
    pub number: u32,
    /// Its process group (the first stage's pid); 0 when none could be
    /// made (the first stage ended before SET_GROUP): then nothing
    /// signals it as a group, and each process is signalled alone.
    pub group: u32,
    /// Its processes, stage by stage (built-in stages have none).
    pub pids: Vec<u32>,
    /// Each process's end once the shell learned it: its status, or why
    /// waiting for it failed.
    pub ends: Vec<Option<Result<u32, String>>>,
    /// Its file streams, finished once every process ended.
    pub dones: Vec<DoneId>,
    /// The last stage's status when it is a built-in.
    pub built_in_status: Option<u32>,
    /// The line as typed (without `&`).
    pub name: String,
    /// Stopped (by the signal), as last learned.
    pub stopped: Option<u32>,
}

impl Job {
    /// A job of `pids` in `group`, none of them known to have ended.
    pub fn new(name: &str, group: u32, pids: Vec<u32>, dones: Vec<DoneId>) -> Self {
        Job {
            number: 0,
            group,
            ends: pids.iter().map(|_| None).collect(),
            pids,
            dones,
            built_in_status: None,
            name: String::from(name),
            stopped: None,
        }
    }

    /// Every process ended.
    pub fn ended(&self) -> bool {
        self.ends.iter().all(Option::is_some)
    }

    /// The processes whose end is not known yet.
    pub fn unended(&self) -> Vec<(usize, u32)> {
        self.pids
            .iter()
            .enumerate()
            .filter(|(index, _)| self.ends[*index].is_none())
            .map(|(index, pid)| (index, *pid))
            .collect()
    }

    /// Records what WAIT_JOB said of process `index`.
    pub fn learn(&mut self, index: usize, state: Result<ProcessState, String>) {
        match state {
            Ok(ProcessState::Running) => {}
            Ok(ProcessState::Exited(status)) => self.ends[index] = Some(Ok(status)),
            Ok(ProcessState::Stopped(signal)) => self.stopped = Some(signal),
            Err(error) => self.ends[index] = Some(Err(error)),
        }
    }

    /// The job's status once it ended: the last stage's (a built-in's, or
    /// its last process's); `Err` when waiting for that process failed.
    pub fn status(&self) -> Result<u32, String> {
        if let Some(status) = self.built_in_status {
            return Ok(status);
        }
        match self.ends.last() {
            Some(Some(end)) => end.clone(),
            _ => Ok(0),
        }
    }

    /// How `jobs` and the reports name its state.
    pub fn state_word(&self) -> String {
        if self.ended() {
            match self.status() {
                Ok(0) => String::from("Done"),
                Ok(crate::FAULTED) => String::from("Faulted"),
                Ok(status) => format!("Exit {status}"),
                Err(error) => format!("Lost ({error})"),
            }
        } else if self.stopped.is_some() {
            String::from("Stopped")
        } else {
            String::from("Running")
        }
    }
}

/// The jobs in the background or stopped, the current one last.
#[derive(Debug, Default)]
pub struct JobTable {
    jobs: Vec<Job>,
}

impl JobTable {
    /// Puts `job` in the table as the current job, numbering it if new;
    /// its number.
    pub fn add(&mut self, mut job: Job) -> u32 {
        if job.number == 0 {
            job.number = self.jobs.iter().map(|j| j.number).max().unwrap_or(0) + 1;
        }
        let number = job.number;
        self.jobs.push(job);
        number
    }

    /// Takes job `number` out of the table.
    pub fn take(&mut self, number: u32) -> Option<Job> {
        let index = self.jobs.iter().position(|j| j.number == number)?;
        Some(self.jobs.remove(index))
    }

    /// The number of the job a `%N` (`%%`, `%+`: the current job; none:
    /// the current job) names, or the message for one that names none.
    pub fn find(&self, command: &str, spec: Option<&str>) -> Result<u32, String> {
        let current = || {
            self.jobs
                .last()
                .map(|j| j.number)
                .ok_or_else(|| format!("{command}: no current job"))
        };
        match spec {
            None | Some("%%") | Some("%+") => current(),
            Some(spec) => spec
                .strip_prefix('%')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| self.jobs.iter().any(|j| j.number == *n))
                .ok_or_else(|| format!("{command}: {spec}: no such job")),
        }
    }

    /// The job numbered `number`.
    pub fn get(&self, number: u32) -> Option<&Job> {
        self.jobs.iter().find(|j| j.number == number)
    }

    /// The job numbered `number`, to change.
    pub fn get_mut(&mut self, number: u32) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.number == number)
    }

    /// Makes job `number` the current one.
    pub fn make_current(&mut self, number: u32) {
        if let Some(job) = self.take(number) {
            self.jobs.push(job);
        }
    }

    /// Every job, current last.
    pub fn iter(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter()
    }

    /// Every job, current last, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Job> {
        self.jobs.iter_mut()
    }

    /// The numbers in the table, lowest first.
    pub fn numbers(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = self.jobs.iter().map(|j| j.number).collect();
        numbers.sort_unstable();
        numbers
    }

    /// The current job's number.
    pub fn current(&self) -> Option<u32> {
        self.jobs.last().map(|j| j.number)
    }

    /// `[N]+ State  name`: `+` marks the current job.
    pub fn line(&self, job: &Job) -> String {
        let mark = if self.current() == Some(job.number) {
            '+'
        } else {
            ' '
        };
        format!(
            "[{}]{mark} {}  {}\n",
            job.number,
            job.state_word(),
            job.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn job(name: &str, pid: u32) -> Job {
        Job::new(name, pid, vec![pid], Vec::new())
    }

    #[test]
    fn numbers_go_one_past_the_highest_and_restart_when_empty() {
        let mut table = JobTable::default();
        assert_eq!(table.add(job("a", 5)), 1);
        assert_eq!(table.add(job("b", 6)), 2);
        assert_eq!(table.add(job("c", 7)), 3);
        assert!(table.take(2).is_some());
        assert_eq!(table.add(job("d", 8)), 4);
        for n in table.numbers() {
            table.take(n);
        }
        assert_eq!(table.add(job("e", 9)), 1);
    }

    #[test]
    fn specs_name_the_current_job_or_one_by_number() {
        let mut table = JobTable::default();
        assert_eq!(table.find("fg", None), Err("fg: no current job".into()));
        table.add(job("a", 5));
        table.add(job("b", 6));
        assert_eq!(table.find("fg", None), Ok(2));
        assert_eq!(table.find("fg", Some("%%")), Ok(2));
        assert_eq!(table.find("fg", Some("%1")), Ok(1));
        assert_eq!(
            table.find("fg", Some("%9")),
            Err("fg: %9: no such job".into())
        );
        assert_eq!(
            table.find("bg", Some("1")),
            Err("bg: 1: no such job".into())
        );
        table.make_current(1);
        assert_eq!(table.current(), Some(1));
    }

    #[test]
    fn a_job_learns_its_ends_and_names_its_state() {
        let mut job = Job::new("a | b", 5, vec![5, 6], Vec::new());
        assert_eq!(job.state_word(), "Running");
        job.learn(0, Ok(ProcessState::Stopped(20)));
        assert_eq!(job.state_word(), "Stopped");
        job.stopped = None;
        job.learn(0, Ok(ProcessState::Exited(0)));
        assert_eq!(job.unended(), vec![(1, 6)]);
        job.learn(1, Ok(ProcessState::Exited(143)));
        assert!(job.ended());
        assert_eq!(job.state_word(), "Exit 143");
        let mut lost = job_of_error();
        lost.learn(0, Err("PM_NO_SUCH_PROCESS".into()));
        assert_eq!(lost.status(), Err("PM_NO_SUCH_PROCESS".into()));
    }

    fn job_of_error() -> Job {
        job("x", 3)
    }
}
