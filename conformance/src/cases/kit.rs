//! What the cases share: the function numbers they call doors with, callers
//! and servers on threads of the runner, and waiting for them.

use alloc::format;
use alloc::vec::Vec;

use abi::function::{Function, SYSTEM_BASE, USER_BASE};
use abi::{Descriptor, DescriptorSlot, TrapArgs};

use crate::context::{Context, Failed, Job};
use crate::peer::message;
use userlib::raw::Buffer;

/// The user function the cases call user doors with (USER_BASE).
pub const USER_CALL: Function = Function(USER_BASE);
/// The system function the cases call system doors with (SYSTEM_BASE).
pub const SYSTEM_CALL: Function = Function(SYSTEM_BASE);
/// The largest msgTotalSize.
pub const MAX: u16 = abi::message::MAX_TOTAL_SIZE;
/// What receive buffers are filled with, so untouched bytes show.
pub const UNTOUCHED: u8 = 0x5a;
/// What senders' buffers are filled with before the message is written.
pub const SENDER_FILL: u8 = 0xee;

/// A SEND as its caller saw it.
#[derive(Clone, Debug, Default)]
pub struct Call {
    /// The registers on return.
    pub registers: TrapArgs,
    /// The msgPtr.
    pub msg_ptr: u64,
    /// The whole buffer afterwards.
    pub bytes: Vec<u8>,
}

/// SEND from this thread: a buffer filled with [`SENDER_FILL`], then the
/// message (data, zero padding, slots) at offset 0, offering `total`.
pub fn send(
    function: Function,
    target: Descriptor,
    data: &[u8],
    slots: &[DescriptorSlot],
    total: u16,
) -> Result<Call, Failed> {
    let mut buffer = Buffer::filled(SENDER_FILL);
    let (bytes, arg3) = message(data, slots, total);
    buffer.put(0, &bytes);
    let registers = buffer.send(function, target, arg3);
    Ok(Call {
        registers,
        msg_ptr: buffer.address(),
        bytes: buffer.snapshot(abi::PAGE_SIZE),
    })
}

/// SEND with these raw registers from a buffer holding `content` (the rest
/// [`SENDER_FILL`]).
pub fn send_raw(arg0: u64, arg1: u64, arg3: u64, content: &[u8]) -> Result<TrapArgs, Failed> {
    let mut buffer = Buffer::filled(SENDER_FILL);
    buffer.put(0, content);
    Ok(buffer.trap(0, arg0, arg1, arg3)?)
}

/// A caller on a thread of the runner.
pub type CallJob = Job<Result<Call, Failed>>;

/// [`send`] on a new thread of the runner.
pub fn caller(
    context: &mut Context,
    function: Function,
    target: Descriptor,
    data: &[u8],
    slots: &[DescriptorSlot],
    total: u16,
) -> Result<CallJob, Failed> {
    let data = data.to_vec();
    let slots = slots.to_vec();
    context.job(move || send(function, target, &data, &slots, total))
}

/// What a server thread saw.
#[derive(Clone, Debug, Default)]
pub struct Served {
    /// RECEIVE's registers.
    pub received: TrapArgs,
    /// Its msgPtr.
    pub msg_ptr: u64,
    /// The whole buffer after the RECEIVE (before the reply was written).
    pub bytes: Vec<u8>,
    /// REPLY's registers, if it replied.
    pub replied: Option<TrapArgs>,
}

/// A reply: its cookie and data (and slots), its total the extent.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The cookie stored into the caller's reference.
    pub cookie: u64,
    /// The data.
    pub data: Vec<u8>,
    /// The slots.
    pub slots: Vec<DescriptorSlot>,
}

impl Answer {
    /// A reply of `data`, cookie 0.
    pub fn data(data: &[u8]) -> Self {
        Answer {
            cookie: 0,
            data: data.to_vec(),
            slots: Vec::new(),
        }
    }

    /// An empty reply storing `cookie`.
    pub fn cookie(cookie: u64) -> Self {
        Answer {
            cookie,
            ..Answer::default()
        }
    }
}

/// RECEIVE on `owner` from this thread into a buffer filled with
/// [`UNTOUCHED`], offering `total`.
pub fn receive(owner: Descriptor, total: u16) -> Result<(Served, Buffer), Failed> {
    let mut buffer = Buffer::filled(UNTOUCHED);
    let received = buffer.receive(owner, total);
    let served = Served {
        received,
        msg_ptr: buffer.address(),
        bytes: buffer.snapshot(abi::PAGE_SIZE),
        replied: None,
    };
    Ok((served, buffer))
}

/// REPLY with `answer` from `buffer`.
pub fn reply(buffer: &mut Buffer, answer: &Answer) -> Result<TrapArgs, Failed> {
    let extent = abi::message::message_extent(answer.data.len() as u16, answer.slots.len() as u8);
    let (bytes, arg3) = message(&answer.data, &answer.slots, extent);
    buffer.put(0, &bytes);
    Ok(buffer.reply(answer.cookie, arg3))
}

/// A server on a new thread of the runner: RECEIVE on `owner` offering
/// `total`, then, if there is an `answer`, REPLY with it.
pub fn server(
    context: &mut Context,
    owner: Descriptor,
    total: u16,
    answer: Option<Answer>,
) -> Result<Job<Result<Served, Failed>>, Failed> {
    context.job(move || {
        let (mut served, mut buffer) = receive(owner, total)?;
        if let Some(answer) = answer
            && served.received.arg0 != 0xffff_ffff
        {
            served.replied = Some(reply(&mut buffer, &answer)?);
        }
        Ok(served)
    })
}

/// Waits until the system is idle, then takes what `job` returned; a job
/// still blocked then is a failure of the case ("`what` is still blocked").
pub fn finished<T>(
    context: &mut Context,
    job: &Job<Result<T, Failed>>,
    what: &str,
) -> Result<T, Failed> {
    context.settle();
    match job.take() {
        Some(result) => result,
        None => Err(Failed(format!("{what} is still blocked"))),
    }
}

/// [`finished`] for a job whose value is not a `Result`.
pub fn finished_value<T>(context: &mut Context, job: &Job<T>, what: &str) -> Result<T, Failed> {
    context.settle();
    job.take()
        .ok_or_else(|| Failed(format!("{what} is still blocked")))
}

/// One call to `target` served by a server thread that replies with
/// `answer`: returns what the caller and the server saw.
pub fn round_trip(
    context: &mut Context,
    door: crate::context::Door,
    function: Function,
    data: &[u8],
    total: u16,
    answer: Answer,
) -> Result<(Call, Served), Failed> {
    let server = server(context, door.owner, MAX, Some(answer))?;
    context.settle();
    let call = send(function, door.client, data, &[], total)?;
    let served = finished(context, &server, "the server")?;
    Ok((call, served))
}

/// A call to `client` that is left queued (nobody receives yet).
pub fn queued(
    context: &mut Context,
    client: Descriptor,
    data: &[u8],
    total: u16,
) -> Result<CallJob, Failed> {
    let job = caller(context, USER_CALL, client, data, &[], total)?;
    context.settle();
    Ok(job)
}

/// The registers of a kernel-detected failure.
pub const fn error(error: abi::Error) -> TrapArgs {
    TrapArgs::error(error)
}

/// The registers of a completed SEND.
pub const fn replied(ret_val: u32, errno: u32, data: u16, count: u8) -> TrapArgs {
    TrapArgs::completed(ret_val, errno, data, count)
}

/// `count` bytes of the test pattern with `seed`.
pub fn pattern(seed: u8, count: usize) -> Vec<u8> {
    (0..count)
        .map(|index| crate::expect::pattern(seed, index))
        .collect()
}

/// A peer that owns a door: its descriptor 2 is the owner reference, so
/// the first descriptor delivered to it is 3.
#[derive(Clone, Copy, Debug)]
pub struct PeerDoor {
    /// The peer.
    pub peer: crate::peer::Peer,
    /// The runner's client reference to the peer's door.
    pub client: Descriptor,
}

/// The peer's descriptor for its door's owner reference.
pub const PEER_DOOR: u32 = 2;
/// The first number free in a [`PeerDoor`]'s table.
pub const PEER_FREE: u32 = 3;

/// Starts a peer owning a new user door.
pub fn peer_door(context: &mut Context) -> Result<PeerDoor, Failed> {
    let door = context.user_door()?;
    let peer = context.peer(&[DescriptorSlot::moving(door.owner, abi::Rights::DOOR_OWNER)])?;
    context.forget(door.owner);
    Ok(PeerDoor {
        peer,
        client: door.client,
    })
}

/// Starts job 0 on the peer: RECEIVE on its door offering `total` (buffer
/// filled with [`UNTOUCHED`]), then REPLY with nothing.
pub fn peer_serves(peer_door: &PeerDoor, total: u16) -> Result<(), Failed> {
    use crate::peer::Step;
    peer_door.peer.start(
        0,
        &[
            Step::receive(PEER_DOOR, total, UNTOUCHED),
            Step::reply(0, &[], &[]),
        ],
    )
}

/// Waits for the peer's job `job` and returns its results.
pub fn peer_results(
    context: &mut Context,
    peer: &crate::peer::Peer,
    job: u32,
) -> Result<Vec<crate::peer::StepResult>, Failed> {
    context.settle();
    match peer.join(job)? {
        Some(results) => Ok(results),
        None => Err(Failed(format!("the peer's job {job} is still blocked"))),
    }
}

/// The peer's first step of job 0, as an observation.
pub fn peer_received(
    context: &mut Context,
    peer: &crate::peer::Peer,
) -> Result<crate::expect::Observed, Failed> {
    let results = peer_results(context, peer, 0)?;
    let first = results
        .into_iter()
        .next()
        .ok_or_else(|| Failed(alloc::string::String::from("the peer's job ran no step")))?;
    Ok(context.observe_buffer(first.registers, first.msg_ptr, first.snapshot))
}

/// DESCRIPTOR_INFO of the peer's descriptor `descriptor`: (kind, rights),
/// or the kernel's error registers.
pub fn peer_info(
    peer: &crate::peer::Peer,
    descriptor: u32,
) -> Result<Result<(u32, u32), TrapArgs>, Failed> {
    use zerocopy::IntoBytes;
    let request =
        abi::kcall::DescriptorRequest::new(abi::Descriptor(descriptor), abi::Rights::NONE);
    let step = crate::peer::Step::send(
        abi::KernelFunction::DescriptorInfo.function(),
        0,
        request.as_bytes(),
        &[],
        64,
    );
    let result = peer.trap(step)?;
    if result.registers.arg0 == 0xffff_ffff {
        return Ok(Err(result.registers));
    }
    let word = |at: usize| {
        result
            .snapshot
            .get(at..at + 4)
            .map_or(u32::MAX, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    Ok(Ok((word(8), word(12))))
}

/// A peer asked to raise the CPU exception `kind` (`crate::peer::fault`):
/// the observation of the control call it held, which must have failed
/// with PEER_DIED because the process ended; a later call to its control
/// door must fail so too.
pub fn peer_faults(context: &mut Context, kind: u32) -> crate::case::Outcome {
    let peer = context.peer(&[])?;
    let registers = peer.fault(kind)?;
    context.settle();
    let again = send(USER_CALL, peer.control, &[], &[], 0)?;
    context.check_registers(
        "a later call to the peer's control door",
        &again.registers,
        &error(abi::Error::PeerDied),
    );
    Ok(context.observe(registers))
}

/// DESCRIPTOR_INFO of the runner's `descriptor`: (kind, rights) or the error.
pub fn info(descriptor: Descriptor) -> Result<(u32, u32), abi::Error> {
    userlib::kernel::descriptor_info(descriptor)
        .map(|info| (info.kind.map_or(0, |kind| kind as u32), info.rights.0))
}

/// A kernel function trapped from a fresh buffer, the kernel's counters
/// read right before and right after the trap (nothing is allocated in
/// between, so nothing else moves them).
#[derive(Debug)]
pub struct Measured {
    pub call: Call,
    pub before: abi::kcall::KernelCounters,
    pub after: abi::kcall::KernelCounters,
}

/// `function` to `target` with `request`, measured ([`Measured`]).
pub fn measured(
    function: abi::KernelFunction,
    target: Descriptor,
    request: &[u8],
    total: u16,
) -> Result<Measured, Failed> {
    let mut buffer = Buffer::filled(SENDER_FILL);
    let (bytes, arg3) = message(request, &[], total);
    buffer.put(0, &bytes);
    let before = userlib::kernel::counters()?;
    let registers = buffer.send(function.function(), target, arg3);
    let after = userlib::kernel::counters()?;
    Ok(Measured {
        call: Call {
            registers,
            msg_ptr: buffer.address(),
            bytes: buffer.snapshot(abi::PAGE_SIZE),
        },
        before,
        after,
    })
}

/// `function` to `target`, which must be refused and change nothing: the
/// kernel's counts of objects, descriptors, charged bytes and free frames
/// are the same after as before.
pub fn refused(
    context: &mut Context,
    function: abi::KernelFunction,
    target: Descriptor,
    request: &[u8],
) -> crate::case::Outcome {
    let m = measured(function, target, request, 64)?;
    context.check(
        m.before == m.after,
        &alloc::format!(
            "a refused {} changed the kernel's counters from {:?} to {:?}",
            function.name(),
            m.before,
            m.after
        ),
    );
    Ok(context.observe(m.call.registers))
}
