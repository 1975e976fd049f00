//! What the checks share: helper processes started on first use, doors of
//! the test's own, worker threads, and small raw kernel calls.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;

use abi::function::{Function, USER_BASE};
use abi::kcall::{DescriptorInfo, DescriptorRequest, REPLY_PAYLOAD_OFFSET};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::{Descriptor, Error, KernelFunction, ObjectKind, Rights, TrapArgs};
use ipc_test_helper::role;
use spin::Mutex;
use userlib::kernel::{self, DoorKind};
use userlib::raw::Buffer;
use userlib::{OwnedDescriptor, println};
use zerocopy::IntoBytes;

use crate::check::{Failure, Outcome, Setup, expect_registers};
use crate::fuzz::FuzzOutcome;
use crate::transfer::RelayOutcome;

/// The state shared by the checks; helpers start when a check first needs them.
#[derive(Default)]
pub struct Fixture {
    /// How many descriptors this process started with (rdx at entry).
    pub initial_descriptors: u32,
    server: Option<Spawned>,
    echo: Option<Spawned>,
    /// The three-process transfer, made once, examined by several checks.
    pub relay: Option<Result<RelayOutcome, Failure>>,
    /// The fuzzer's run, made once, examined by several checks.
    pub fuzz: Option<Result<FuzzOutcome, Failure>>,
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

    /// A client reference to the helper in role `server`.
    pub fn server(&mut self) -> Result<Descriptor, Failure> {
        started(&mut self.server, || spawn_helper(role::SERVER, &[])).map(|s| s.client())
    }

    /// The process handle of the helper in role `server`.
    pub fn server_process(&mut self) -> Result<Descriptor, Failure> {
        started(&mut self.server, || spawn_helper(role::SERVER, &[])).map(|s| s.process())
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

/// The bytes of a `DescriptorRequest`.
pub fn descriptor_request(descriptor: Descriptor, rights: u32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(DescriptorRequest::new(descriptor, abi::Rights(rights)).as_bytes());
    bytes
}

/// DESCRIPTOR_INFO by raw trap: the registers and, if it completed, the payload.
pub fn info(descriptor: Descriptor) -> (TrapArgs, Option<DescriptorInfo>) {
    let (result, buffer) = kcall(
        KernelFunction::DescriptorInfo,
        Descriptor::NULL,
        &descriptor_request(descriptor, 0),
        64,
    );
    let payload = (!result.is_kernel_failure())
        .then(|| buffer.get::<DescriptorInfo>(REPLY_PAYLOAD_OFFSET))
        .flatten();
    (result, payload)
}

/// DESCRIPTOR_INFO of `descriptor` says `kind` and `rights`, in a 16-byte reply.
pub fn expect_info(
    what: &str,
    descriptor: Descriptor,
    kind: ObjectKind,
    rights: Rights,
) -> Outcome {
    let (result, payload) = info(descriptor);
    expect_registers(
        format!("DESCRIPTOR_INFO of {what}"),
        result,
        TrapArgs::completed(0, 0, 16, 0),
    )?;
    let expected = DescriptorInfo {
        kind: kind as u32,
        rights: rights.0,
    };
    crate::check::expect_eq(
        format!("DESCRIPTOR_INFO of {what}: kind and rights"),
        payload,
        Some(expected),
    )
}

/// DUPLICATE (for setting a check up).
pub fn duplicate(descriptor: Descriptor, rights: Rights) -> Result<OwnedDescriptor, Failure> {
    kernel::duplicate(descriptor, rights).setup("DUPLICATE")
}

/// A new event (for setting a check up).
pub fn event() -> Result<OwnedDescriptor, Failure> {
    kernel::event_create().setup("EVENT_CREATE")
}

/// Answers whatever message this thread holds with an error reply
/// (NOTHING_TO_REPLY, ignored, when it holds none).
pub fn release_held() {
    let mut buffer = Buffer::new();
    buffer.put_value(0, &[u32::MAX, Error::Abandoned as u32]);
    let _ = buffer.reply(0, abi::message::sizes(8, 8, 0));
}

/// A door of the test's own, for checks where the test is the server.
/// Dropping it answers any message this thread still holds and closes
/// both references, which fails every caller still queued.
#[derive(Debug)]
pub struct ScratchDoor {
    owner: Option<OwnedDescriptor>,
    client: OwnedDescriptor,
}

impl ScratchDoor {
    /// A new user door.
    pub fn new() -> Result<Self, Failure> {
        let door = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
        Ok(ScratchDoor {
            owner: Some(door.owner),
            client: door.client,
        })
    }

    /// The owner reference (NULL once closed or given away).
    pub fn owner(&self) -> Descriptor {
        self.owner
            .as_ref()
            .map_or(Descriptor::NULL, OwnedDescriptor::descriptor)
    }

    /// The client reference.
    pub fn client(&self) -> Descriptor {
        self.client.descriptor()
    }

    /// Closes the owner reference, which kills the door.
    pub fn close_owner(&mut self) -> Result<(), Failure> {
        match self.owner.take() {
            Some(owner) => owner.close().setup("CLOSE of the owner reference"),
            None => Ok(()),
        }
    }

    /// Forgets the owner reference (it was moved away in a message).
    pub fn owner_moved(&mut self) {
        if let Some(owner) = self.owner.take() {
            let _ = owner.into_raw();
        }
    }
}

impl Drop for ScratchDoor {
    fn drop(&mut self) {
        release_held();
    }
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

/// What a calling worker saw: the registers and its buffer.
pub type Called = (TrapArgs, Box<Buffer>);

/// A worker that SENDs `function` to `target` with `data`, offering `total` bytes.
pub fn spawn_caller(
    target: Descriptor,
    function: Function,
    data: &[u8],
    total: u16,
) -> Result<Worker<Called>, Failure> {
    let mut buffer = Box::new(Buffer::new());
    buffer.put_value(0, data);
    let data_size = u16::try_from(data.len()).unwrap_or(MAX_TOTAL_SIZE);
    spawn_worker(move || {
        let result = buffer.send(function, target, abi::message::sizes(total, data_size, 0));
        (result, buffer)
    })
}

/// The function number of the calls test threads make on scratch doors.
pub const SCRATCH_CALL: Function = Function(USER_BASE + 0x70);

/// A scratch door with one call queued on it, so that a RECEIVE that
/// should fail cannot hang the test if the kernel wrongly lets it through
/// (it would get this call instead).
#[derive(Debug)]
pub struct QueuedCall {
    /// The door.
    pub door: ScratchDoor,
    caller: Option<Worker<Called>>,
    taken: bool,
}

impl QueuedCall {
    /// Creates the door and queues the call (YIELD lets the caller run
    /// until it blocks in its SEND).
    pub fn new() -> Result<Self, Failure> {
        let door = ScratchDoor::new()?;
        let caller = spawn_caller(door.client(), SCRATCH_CALL, &[7; 8], 64)?;
        kernel::yield_now().setup("YIELD")?;
        Ok(QueuedCall {
            door,
            caller: Some(caller),
            taken: false,
        })
    }

    /// A RECEIVE-like trap that should fail: if it received the queued
    /// call after all, the call is answered so nothing hangs.
    pub fn trap_expecting_failure(
        &mut self,
        args: impl FnOnce(&mut Buffer) -> TrapArgs,
    ) -> TrapArgs {
        let mut buffer = Buffer::new();
        let result = args(&mut buffer);
        if result.arg0 != 0xffff_ffff {
            release_held();
            self.taken = true;
        }
        result
    }

    /// Receives the queued call (if nothing took it), answers it and
    /// waits for the caller.
    pub fn finish(mut self) -> Outcome {
        if !self.taken {
            let mut buffer = Buffer::new();
            let received = buffer.receive(self.door.owner(), MAX_TOTAL_SIZE);
            let expected = TrapArgs {
                arg0: SCRATCH_CALL.bits(),
                arg1: 0,
                arg2: buffer.address(),
                arg3: abi::message::sizes(64, 8, 0),
            };
            expect_registers("RECEIVE of the queued call", received, expected)?;
            let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
            expect_registers("REPLY to the queued call", replied, TrapArgs::default())?;
        }
        let caller = self.caller.take().setup("the queued caller")?;
        let (result, _) = caller.join()?;
        if self.taken {
            return Ok(());
        }
        expect_registers(
            "the queued caller's result",
            result,
            TrapArgs::completed(0, 0, 0, 0),
        )
    }
}

/// YIELDs a few times, so that threads of the test that are merely ready
/// (a worker that was joined still has to run its THREAD_EXIT) get to end
/// before a check counts threads.
pub fn settle() {
    for _ in 0..4 {
        let _ = kernel::yield_now();
    }
}

/// YIELDs until `condition` holds, at most `tries` times; whether it held.
pub fn yield_until(tries: u32, condition: impl Fn() -> bool) -> bool {
    for _ in 0..tries {
        if condition() {
            return true;
        }
        let _ = kernel::yield_now();
    }
    condition()
}

/// The page size.
pub const PAGE: u64 = abi::PAGE_BYTES;
