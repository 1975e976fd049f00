//! Suspending and resuming a whole process (ABI.md §6.10, PROCESS_SUSPEND
//! and PROCESS_RESUME): the uncatchable stop of job control and of a
//! debugger, which must not depend on the process's cooperation.
//!
//! A suspended process's threads do not run. A ready one leaves the run
//! queues; a running one stops at its next way out of the kernel (another
//! CPU's is kicked into it); a blocked one stays blocked, and when its call
//! completes meanwhile it is made ready as usual but *held*: its return
//! registers wait in `Thread::resume` and it joins a run queue only when
//! the process resumes. It must never lose or duplicate a completed call,
//! and never let a held thread reach a CPU. A suspended process counts one
//! in `Kernel::attention`, so the IPC fast path stands aside and pays
//! nothing for this (ABI.md §6.10, D68).

use crate::kernel::Kernel;
use crate::process::ProcessId;
use crate::thread::{ThreadId, ThreadState};

impl Kernel {
    /// PROCESS_SUSPEND's effect (everything checked): true when the
    /// process was suspended already (nothing changes then).
    pub(crate) fn suspend_process(&mut self, process: ProcessId) -> bool {
        let Some(p) = self.processes.get_mut(process) else {
            return false;
        };
        if p.suspended {
            return true;
        }
        p.suspended = true;
        self.attention += 1;
        // By index: the list is the process's, and copying it would allocate.
        for index in 0..p.threads.len() {
            let Some(thread) = self.thread_of(process, index) else {
                break;
            };
            let Some(t) = self.threads.get_mut(thread) else {
                continue;
            };
            match t.state {
                ThreadState::Ready if self.handoff != Some(thread) => {
                    t.held = true;
                    self.scheduler.remove(thread);
                }
                ThreadState::Running if self.current != Some(thread) => {
                    // On another CPU: it enters the kernel (the KICK IPI)
                    // and stops on its way out (`park_if_suspended`).
                    self.kick_cpu_running(thread);
                }
                // The current thread stops on its way out; a blocked one
                // is held when it is woken (`Kernel::make_ready`).
                _ => {}
            }
        }
        false
    }

    /// PROCESS_RESUME's effect: true when the process was suspended; its
    /// held threads join run queues (room for each was made when it was
    /// created, so this never allocates).
    pub(crate) fn resume_process(&mut self, process: ProcessId) -> bool {
        let Some(p) = self.processes.get_mut(process) else {
            return false;
        };
        if !p.suspended {
            return false;
        }
        p.suspended = false;
        self.attention = self.attention.saturating_sub(1);
        for index in 0..p.threads.len() {
            let Some(thread) = self.thread_of(process, index) else {
                break;
            };
            if let Some(t) = self.threads.get_mut(thread)
                && t.held
            {
                t.held = false;
                // Not suspended any more: it joins a queue as any thread
                // made ready does.
                self.make_ready(thread);
            }
        }
        true
    }

    /// The `index`th thread of `process` (walking a process's threads by
    /// index while the kernel changes them: no copy of the list).
    fn thread_of(&self, process: ProcessId, index: usize) -> Option<ThreadId> {
        self.processes.get(process)?.threads.get(index).copied()
    }

    /// On the way back to user space: `thread` (the current one) stops
    /// when its process is suspended; true when it did (another must be
    /// picked).
    pub(crate) fn park_if_suspended(&mut self, thread: ThreadId) -> bool {
        let suspended = self
            .threads
            .get(thread)
            .and_then(|t| self.processes.get(t.process))
            .is_some_and(|p| p.suspended);
        if suspended && self.current == Some(thread) {
            self.current = None;
            self.make_ready(thread);
        }
        suspended
    }

    /// Whether `thread`'s process is suspended (false at once while no
    /// process is: the count is in `attention`).
    #[inline]
    pub(crate) fn suspended_thread(&self, thread: ThreadId) -> bool {
        self.attention != 0
            && self
                .threads
                .get(thread)
                .and_then(|t| self.processes.get(t.process))
                .is_some_and(|p| p.suspended)
    }

    /// Whether `process` is suspended (host tests and invariants).
    pub fn is_suspended(&self, process: ProcessId) -> bool {
        self.processes.get(process).is_some_and(|p| p.suspended)
    }
}
