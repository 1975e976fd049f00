//! What the checks share: helper processes started on first use, worker
//! threads, and small raw kernel calls.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;

use abi::kcall::{DescriptorInfo, DescriptorRequest, REPLY_PAYLOAD_OFFSET};
use abi::message::DescriptorSlot;
use abi::{Descriptor, KernelFunction, Rights, TrapArgs};
use spin::Mutex;
use userlib::kernel::{self, DoorKind};
use userlib::raw::Buffer;
use userlib::{OwnedDescriptor, println};
use zerocopy::IntoBytes;

use crate::check::{Failure, Setup};
use crate::fuzz::{FuzzOutcome, Parameters};
use crate::transfer::RelayOutcome;

/// The state shared by the checks; helpers start when a check first needs them.
#[derive(Default)]
pub struct Fixture {
    echo: Option<Spawned>,
    /// The three-process transfer, made once, examined by several checks.
    pub relay: Option<Result<RelayOutcome, Failure>>,
    /// The fuzzer's run, made once, examined by several checks.
    pub fuzz: Option<Result<FuzzOutcome, Failure>>,
    /// What the fuzzer runs with (the defaults, or `cargo xtask fuzz`'s).
    pub fuzz_parameters: Parameters,
    /// The signal stress check's interruptions (0: its default,
    /// `signals::INTERRUPTIONS`; the command line's `signal-interruptions=N`).
    pub signal_interruptions: u64,
}

impl core::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

impl Fixture {
    /// Nothing started yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client reference to an echo server of the test's own.
    pub fn echo(&mut self) -> Result<Descriptor, Failure> {
        started(&mut self.echo, || {
            spawn_server("echo", &[], DoorKind::User, &[])
        })
        .map(|s| s.client())
    }

    /// The echo server's process handle.
    pub fn echo_process(&mut self) -> Result<Descriptor, Failure> {
        started(&mut self.echo, || {
            spawn_server("echo", &[], DoorKind::User, &[])
        })
        .map(|s| s.process())
    }
}

fn started(
    slot: &mut Option<Spawned>,
    start: impl FnOnce() -> Result<Spawned, Failure>,
) -> Result<&Spawned, Failure> {
    if slot.is_none() {
        *slot = Some(start()?);
    }
    slot.as_ref().setup("starting a helper")
}

/// A process that serves a door of the test's making.
#[derive(Debug)]
pub struct Spawned {
    /// A client reference to its door.
    pub client: OwnedDescriptor,
    /// Its process handle.
    pub process: OwnedDescriptor,
}

impl Spawned {
    /// The client reference's number.
    pub fn client(&self) -> Descriptor {
        self.client.descriptor()
    }

    /// The process handle's number.
    pub fn process(&self) -> Descriptor {
        self.process.descriptor()
    }
}

/// Creates a door of `kind` and SPAWNs `program` with `arguments`, the
/// door's owner reference moved in as descriptor 1 and `more` after it.
pub fn spawn_server(
    program: &str,
    arguments: &[u8],
    kind: DoorKind,
    more: &[DescriptorSlot],
) -> Result<Spawned, Failure> {
    let door = kernel::door_create(kind, 0).setup("DOOR_CREATE")?;
    let mut slots = vec![DescriptorSlot::moving(
        door.owner.descriptor(),
        Rights::DOOR_OWNER,
    )];
    slots.extend_from_slice(more);
    let process = kernel::spawn(program, arguments, &slots).setup(&format!(
        "SPAWN of {program} {:?}",
        core::str::from_utf8(arguments)
    ))?;
    // The owner reference left with the SPAWN.
    let _ = door.owner.into_raw();
    Ok(Spawned {
        client: door.client,
        process,
    })
}

/// [`spawn_server`] of `ipc-test-helper` in `role`, with a user door.
pub fn spawn_helper(role: &str, more: &[DescriptorSlot]) -> Result<Spawned, Failure> {
    spawn_server(
        ipc_test_helper::PROGRAM,
        role.as_bytes(),
        DoorKind::User,
        more,
    )
}

/// A kernel function by raw trap: the request is the data, `total` the
/// buffer size offered. Returns the registers and the buffer with the reply.
pub fn kcall(
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
    total: u16,
) -> (TrapArgs, Box<Buffer>) {
    let mut buffer = Box::new(Buffer::new());
    let result = buffer.kernel_call(function, target, request, total);
    (result, buffer)
}

/// DESCRIPTOR_INFO by raw trap: the registers and, if it completed, the payload.
pub fn info(descriptor: Descriptor) -> (TrapArgs, Option<DescriptorInfo>) {
    let request = DescriptorRequest::new(descriptor, Rights::NONE);
    let (result, buffer) = kcall(
        KernelFunction::DescriptorInfo,
        Descriptor::NULL,
        request.as_bytes(),
        64,
    );
    let payload = (!result.is_kernel_failure())
        .then(|| buffer.get::<DescriptorInfo>(REPLY_PAYLOAD_OFFSET))
        .flatten();
    (result, payload)
}

/// A new event (for setting a check up).
pub fn event() -> Result<OwnedDescriptor, Failure> {
    kernel::event_create().setup("EVENT_CREATE")
}

/// The stack of a worker thread.
const WORKER_STACK: usize = 64 * 1024;

/// A thread of the test running one piece of work; [`Worker::join`]
/// waits for its result.
pub struct Worker<T> {
    done: Option<OwnedDescriptor>,
    result: Arc<Mutex<Option<T>>>,
    _thread: OwnedDescriptor,
}

impl<T> core::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// Starts a thread (ready, behind the threads of its priority) that runs `work`.
pub fn spawn_worker<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<Worker<T>, Failure> {
    let done = event()?;
    let signal = done.descriptor();
    let result = Arc::new(Mutex::new(None));
    let theirs = Arc::clone(&result);
    let thread = userlib::spawn_thread(
        move || {
            let value = work();
            *theirs.lock() = Some(value);
            if let Err(error) = kernel::event_signal(signal) {
                println!("ipc-test: a worker could not signal its end: {error}");
            }
        },
        WORKER_STACK,
    )
    .setup("THREAD_CREATE of a worker")?;
    Ok(Worker {
        done: Some(done),
        result,
        _thread: thread,
    })
}

impl<T> Worker<T> {
    /// Waits until the work is done and returns its result. Only call it
    /// when the work cannot be blocked for ever.
    pub fn join(mut self) -> Result<T, Failure> {
        let done = self.done.take().setup("the worker's event")?;
        kernel::event_wait(done.descriptor()).setup("EVENT_WAIT for a worker")?;
        drop(done);
        self.result.lock().take().setup("the worker's result")
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        // Not joined: the thread may still signal the event, so its number
        // must not be reused for anything else.
        if let Some(done) = self.done.take() {
            let _ = done.into_raw();
        }
    }
}

/// YIELDs until every other thread of the system is blocked or gone
/// (CPU_COUNTERS: the caller the only thread running, none ready), so that
/// a thread of the test that is merely ready or still running (a worker
/// that was joined still has to run its THREAD_EXIT, maybe on another CPU)
/// has ended before a check counts threads. No number of YIELDs is enough
/// for that on several CPUs; the bound on tries only keeps a thread that
/// never blocks from hanging the test (the count that follows reports it).
pub fn settle() {
    for _ in 0..1_000_000u32 {
        let _ = kernel::yield_now();
        if kernel::others_blocked() {
            return;
        }
    }
}
