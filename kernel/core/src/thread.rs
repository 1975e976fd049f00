//! Threads and the states the IPC engine moves them through.

use abi::function::Function;
use abi::{Descriptor, MessageSizes, TrapArgs};

use crate::arena::Id;
use crate::object::ObjectId;
use crate::process::ProcessId;

/// A thread's id.
pub type ThreadId = Id<Thread>;

/// Each thread's kernel stack (the arch layer maps it; traps run on it).
pub const KERNEL_STACK_BYTES: u64 = 32 * 1024;

/// Kernel memory charged per thread: its kernel stack, and a page for its
/// bookkeeping and the page tables its stack needs.
pub const THREAD_COST: u64 = KERNEL_STACK_BYTES + crate::phys::PAGE_SIZE;

/// A call in flight: everything the kernel needs from the SEND to deliver
/// the message and, later, the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The function number.
    pub function: Function,
    /// The caller's buffer.
    pub buffer: u64,
    /// The caller's sizes (validated).
    pub sizes: MessageSizes,
    /// The door called.
    pub door: ObjectId,
    /// The caller's descriptor for the door, and its installation
    /// generation, so the reply's cookie lands on that very reference.
    pub via: Descriptor,
    /// See `via`.
    pub via_generation: u64,
    /// The reference's cookie at the time of the call.
    pub cookie: u64,
}

/// Where a thread is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Runnable, in a run queue.
    Ready,
    /// On the CPU.
    Running,
    /// Queued on a door, waiting to be received.
    Sending(CallRecord),
    /// Received by `server`, waiting for its reply.
    AwaitingReply {
        /// The call.
        call: CallRecord,
        /// The thread holding it.
        server: ThreadId,
    },
    /// Blocked in RECEIVE.
    Receiving {
        /// The door.
        door: ObjectId,
        /// The receive buffer.
        buffer: u64,
        /// Its size.
        total_size: u16,
        /// It got here through REPLY_RECEIVE, whose reply half is done: a
        /// failure of the receive half says so with `REPLY_DELIVERED`.
        after_reply: bool,
    },
    /// Blocked in a page fault on a special page its pager has not supplied
    /// yet (`crate::pager`); when it is, the thread retries the access.
    Paging {
        /// The special memory object.
        object: ObjectId,
        /// The page.
        page: u64,
    },
    /// Blocked in EVENT_WAIT.
    Waiting {
        /// The event.
        event: ObjectId,
        /// Where the kernel's reply goes when the event is signalled.
        buffer: u64,
    },
}

/// The message a server thread received and has not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// Nothing to answer.
    Nothing,
    /// The caller waits for the answer.
    Call {
        /// The waiting caller.
        caller: ThreadId,
        /// The door it came through (REPLY_RECEIVE receives there next).
        door: ObjectId,
    },
    /// The caller died; the answer goes nowhere (CALLER_GONE).
    Cancelled {
        /// The door it came through.
        door: ObjectId,
    },
    /// A page request of a special object (`crate::pager`): the reply
    /// supplies the page, forwards the request, or fails the faulting
    /// threads.
    Page {
        /// The special memory object.
        object: ObjectId,
        /// The page asked for.
        page: u64,
        /// The door the request came through.
        door: ObjectId,
    },
    /// A kernel notice: any reply is accepted and discarded.
    Notice {
        /// The door it came through.
        door: ObjectId,
    },
}

/// A thread.
#[derive(Debug)]
pub struct Thread {
    /// Its process.
    pub process: ProcessId,
    /// Its process's address space, copied here (a process keeps one
    /// space for its whole life) so the IPC fast path reaches both ends'
    /// memory without looking their processes up.
    pub space: crate::process::SpaceId,
    /// The priority it runs at, 0 (lowest) to `abi::kcall::MAX_PRIORITY`:
    /// its own, or higher while it serves a call from a higher-priority
    /// thread (priority inheritance: no middle-priority thread can hold up
    /// a high-priority caller by starving its server).
    pub priority: u8,
    /// Its own priority (THREAD_CREATE's).
    pub base_priority: u8,
    /// Where it is.
    pub state: ThreadState,
    /// The message it must answer.
    pub holding: Holding,
    /// Registers to deliver when it next returns to user space.
    pub resume: Option<TrapArgs>,
    /// The CPUs it may run on, a bit per CPU index (THREAD_AFFINITY;
    /// every CPU when created).
    pub affinity: u64,
    /// Its interruption, signals and upcall handler (`crate::interrupt`).
    pub signals: SignalState,
    /// Ready while its process is suspended: kept out of the run queues
    /// (its trap's return kept in `resume`) until the process resumes.
    pub held: bool,
}

/// A thread's upcall handler (UPCALL_REGISTER).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpcallHandler {
    /// The handler's address.
    pub entry: u64,
    /// The alternate stack, `[stack_base, stack_base + stack_size)`
    /// (size 0: frames go on the interrupted stack).
    pub stack_base: u64,
    /// See `stack_base`.
    pub stack_size: u64,
}

/// What THREAD_INTERRUPT left for a thread (ABI.md §6.10).
#[derive(Clone, PartialEq, Eq)]
pub struct SignalState {
    /// An interruption not taken yet: the thread's next blocking call (or
    /// its next upcall) takes it.
    pub interrupted: bool,
    /// Signals pending, a bit each (bit 0 unused).
    pub pending: u64,
    /// Signals it masks: they stay pending and interrupt nothing.
    pub mask: u64,
    /// The latest information word of each pending signal.
    pub info: [u64; 64],
    /// Its upcall handler.
    pub handler: Option<UpcallHandler>,
    /// Whether the kernel's attention count counts it.
    pub counted: bool,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            interrupted: false,
            pending: 0,
            mask: 0,
            info: [0; 64],
            handler: None,
            counted: false,
        }
    }
}

impl core::fmt::Debug for SignalState {
    // The information words of pending signals only (the rest is noise).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let pending = self.pending;
        let info = (0..64usize)
            .filter(|&n| pending >> n & 1 != 0)
            .map(|n| (n, self.info[n]));
        f.debug_struct("SignalState")
            .field("interrupted", &self.interrupted)
            .field("pending", &format_args!("{pending:#x}"))
            .field("mask", &format_args!("{:#x}", self.mask))
            .field("info", &f_list(info))
            .field("handler", &self.handler)
            .field("counted", &self.counted)
            .finish()
    }
}

/// A list shown by `Debug` without collecting it.
fn f_list<I: Iterator<Item = (usize, u64)> + Clone>(items: I) -> impl core::fmt::Debug {
    struct List<I>(I);
    impl<I: Iterator<Item = (usize, u64)> + Clone> core::fmt::Debug for List<I> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_list().entries(self.0.clone()).finish()
        }
    }
    List(items)
}

impl SignalState {
    /// The signals a handler would take now.
    pub const fn deliverable(&self) -> u64 {
        if self.handler.is_some() {
            self.pending & !self.mask
        } else {
            0
        }
    }

    /// Whether the thread needs the kernel's attention on its way back to
    /// user space (an interruption or a signal to deliver).
    pub const fn needs_attention(&self) -> bool {
        self.interrupted || self.deliverable() != 0
    }
}

impl Thread {
    /// Whether it runs above its own priority (serving a higher caller).
    pub const fn is_boosted(&self) -> bool {
        self.priority != self.base_priority
    }
}

/// `n` distinct thread ids, for tests of code that only compares ids.
#[cfg(test)]
pub(crate) fn test_ids(n: usize) -> alloc::vec::Vec<ThreadId> {
    let mut processes: crate::arena::Arena<crate::process::Process> = crate::arena::Arena::new();
    let process = processes
        .insert(crate::process::Process::new(0, 0))
        .expect("a test arena has room");
    let mut threads: crate::arena::Arena<Thread> = crate::arena::Arena::new();
    (0..n)
        .map(|_| {
            threads
                .insert(Thread {
                    process,
                    space: 0,
                    priority: 0,
                    base_priority: 0,
                    state: ThreadState::Ready,
                    affinity: u64::MAX,
                    holding: Holding::Nothing,
                    resume: None,
                    signals: SignalState::default(),
                    held: false,
                })
                .expect("a test arena has room")
        })
        .collect()
}
