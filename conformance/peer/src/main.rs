//! conformance-peer: the helper process of the conformance suite. The
//! runner SPAWNs it with the owner reference of a control door as
//! descriptor 1 (then the case's descriptors) and drives it through calls
//! on that door: one step now (TRAP), a script on a new thread (START) and
//! its results (JOIN), descriptors to keep (TAKE), a full descriptor table
//! (FILL_TABLE), its end (EXIT), a CPU exception (FAULT: an invalid
//! opcode, `int 0x80`, a write to a read-only page) or an access to memory
//! it mapped (ACCESS). The protocol is `conformance::peer`.
//!
//! It never opens a descriptor that outlives a command (a job's thread
//! handle is closed at once), so its table is exactly what the case gave it
//! plus what the case's steps install; and it never closes what arrives.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::PAGE_SIZE;
use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::kcall::protection;
use abi::message::descriptor_offset;
use abi::{Descriptor, Error, MessageSizes, Rights, TrapArgs};
use conformance::expect::sizes;
use conformance::peer::{
    self, ARG2_IN_BUFFER, AccessRequest, BAD_COMMAND, FILL, JOB_DONE, JOB_IDLE, JOB_RUNNING, JOBS,
    StepHeader, StepResult, command, fault,
};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;
use userlib::raw::{Buffer, RawPages};
use userlib::{Startup, kernel};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The control door's owner reference.
const CONTROL: Descriptor = Descriptor(1);
/// A job thread's stack.
const JOB_STACK: usize = 32 * 1024;
/// The room for a control reply's payload: the runner offers 4095 bytes,
/// and a reply's extent is its data rounded up to 8, so at most 4088 bytes
/// of data, 8 of them msgRetVal and msgErrno.
const REPLY_ROOM: usize = PAGE_SIZE - 8 - REPLY_PAYLOAD_OFFSET;

/// A job slot.
#[derive(Debug, Default)]
enum Job {
    #[default]
    Idle,
    Running,
    Done(Vec<StepResult>),
}

type Jobs = [Arc<Mutex<Job>>; JOBS as usize];

/// What a command answers: msgRetVal, msgErrno and the payload after them.
struct Answer {
    ret_val: u32,
    errno: u32,
    payload: Vec<u8>,
}

impl Answer {
    fn value(ret_val: u32) -> Self {
        Answer {
            ret_val,
            errno: 0,
            payload: Vec::new(),
        }
    }

    fn error(errno: u32) -> Self {
        Answer {
            ret_val: u32::MAX,
            errno,
            payload: Vec::new(),
        }
    }
}

/// Runs one step on `buffer`.
fn run_step(buffer: &mut Buffer, step: &StepHeader, write: &[u8]) -> StepResult {
    if step.flags & FILL != 0 {
        buffer.fill(step.fill as u8);
    }
    buffer.put(step.write_at as usize, write);
    let offset = step.arg2 as usize;
    let registers = if step.flags & ARG2_IN_BUFFER != 0 {
        buffer.trap(offset, step.arg0, step.arg1, step.arg3).ok()
    } else {
        None
    };
    StepResult {
        // Registers no kernel returns (upper halves set): the step was refused here.
        registers: registers.unwrap_or(TrapArgs {
            arg0: u64::MAX,
            arg1: u64::MAX,
            arg2: u64::MAX,
            arg3: u64::MAX,
        }),
        msg_ptr: buffer.address() + step.arg2,
        snapshot: buffer.snapshot(step.snapshot as usize),
    }
}

/// Runs a script's steps on a fresh buffer.
fn run_script(steps: &[(StepHeader, Vec<u8>)]) -> Vec<StepResult> {
    let mut buffer = Buffer::filled(0);
    steps
        .iter()
        .map(|(step, write)| run_step(&mut buffer, step, write))
        .collect()
}

fn word(data: &[u8]) -> Option<u32> {
    data.get(..4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// TRAP: one step now.
fn trap_now(data: &[u8]) -> Answer {
    let Some((_, steps)) = peer::decode_script(data) else {
        return Answer::error(BAD_COMMAND);
    };
    let steps: Vec<(StepHeader, Vec<u8>)> =
        steps.into_iter().map(|(s, w)| (s, w.to_vec())).collect();
    let results = run_script(&steps);
    Answer {
        ret_val: 0,
        errno: 0,
        payload: peer::encode_results(&results, REPLY_ROOM),
    }
}

/// START: a script on a new thread.
fn start(jobs: &Jobs, data: &[u8]) -> Answer {
    let Some((job, steps)) = peer::decode_script(data) else {
        return Answer::error(BAD_COMMAND);
    };
    let Some(slot) = jobs.get(job as usize) else {
        return Answer::error(BAD_COMMAND);
    };
    if matches!(*slot.lock(), Job::Running) {
        return Answer::error(BAD_COMMAND);
    }
    let steps: Vec<(StepHeader, Vec<u8>)> =
        steps.into_iter().map(|(s, w)| (s, w.to_vec())).collect();
    *slot.lock() = Job::Running;
    let done = slot.clone();
    match userlib::spawn_thread(
        move || {
            let results = run_script(&steps);
            *done.lock() = Job::Done(results);
        },
        JOB_STACK,
    ) {
        // The handle is closed now, before the runner's next step can
        // deliver a descriptor here, so the table stays as the case expects.
        Ok(thread) => {
            drop(thread);
            Answer::value(0)
        }
        Err(error) => {
            *slot.lock() = Job::Idle;
            Answer::error(error as u32)
        }
    }
}

/// JOIN: a job's state and results.
fn join(jobs: &Jobs, data: &[u8]) -> Answer {
    let Some(slot) = word(data).and_then(|job| jobs.get(job as usize)) else {
        return Answer::error(BAD_COMMAND);
    };
    match &*slot.lock() {
        Job::Idle => Answer::value(JOB_IDLE),
        Job::Running => Answer::value(JOB_RUNNING),
        Job::Done(results) => Answer {
            ret_val: JOB_DONE,
            errno: 0,
            payload: peer::encode_results(results, REPLY_ROOM),
        },
    }
}

/// TAKE: the numbers of the descriptors that arrived (kept).
fn take(buffer: &Buffer, sizes: MessageSizes) -> Answer {
    let at = usize::from(descriptor_offset(sizes.data_size()));
    let mut payload = Vec::new();
    for index in 0..usize::from(sizes.descriptor_count()) {
        let slot = at + 16 * index;
        if let Some(number) = buffer.bytes().get(slot..slot + 4) {
            payload.extend_from_slice(number);
        }
    }
    Answer {
        ret_val: u32::from(sizes.descriptor_count()),
        errno: 0,
        payload,
    }
}

/// FILL_TABLE: DUPLICATEs of a new event until the table is full, then the
/// `free` highest numbers closed; answers the lowest free number (0: none).
fn fill_table(data: &[u8]) -> Answer {
    let Some(free) = word(data) else {
        return Answer::error(BAD_COMMAND);
    };
    let event = match kernel::event_create() {
        Ok(event) => event.into_raw(),
        Err(error) => return Answer::error(error as u32),
    };
    let mut copies = Vec::new();
    loop {
        match kernel::duplicate(event, Rights::EVENT) {
            Ok(copy) => copies.push(copy.into_raw()),
            Err(Error::TableFull) => break,
            Err(error) => return Answer::error(error as u32),
        }
    }
    let mut lowest = 0;
    for _ in 0..free {
        let Some(copy) = copies.pop() else {
            return Answer::error(BAD_COMMAND);
        };
        if let Err(error) = kernel::close(copy) {
            return Answer::error(error as u32);
        }
        lowest = copy.0;
    }
    Answer::value(lowest)
}

/// FAULT of kind WRITE_READ_ONLY: a page mapped, written, PROTECTed to
/// READ (its byte still there), then written again, which must end the
/// process. Answers only if a step failed (its error) or the process
/// survived the write (msgRetVal 1).
fn write_read_only() -> Answer {
    let page = match RawPages::map(1) {
        Ok(page) => page,
        Err(error) => return Answer::error(error as u32),
    };
    let address = page.base();
    page.write(address, &[0x5a]);
    if let Err(error) = page.protect(address, abi::PAGE_BYTES, protection::READ) {
        return Answer::error(error as u32);
    }
    let mut back = [0u8];
    if !page.read(address, &mut back) || back[0] != 0x5a {
        return Answer::error(BAD_COMMAND);
    }
    // The page is read-only now: this write faults and ends the process.
    page.write(address, &[0xa5]);
    Answer::value(1)
}

/// ACCESS: writes the request's bytes at its address, then reads there
/// (a write or read the mapping does not allow ends the process).
fn access(data: &[u8]) -> Answer {
    use zerocopy::FromBytes;
    let Ok((request, bytes)) = AccessRequest::read_from_prefix(data) else {
        return Answer::error(BAD_COMMAND);
    };
    let (write, read) = (request.write as usize, request.read as usize);
    let Some(bytes) = bytes.get(..write) else {
        return Answer::error(BAD_COMMAND);
    };
    let length = write.max(read) as u64;
    let Ok(pages) = userlib::raw::RawPages::claim(request.address, length) else {
        return Answer::error(BAD_COMMAND);
    };
    if !pages.write(request.address, bytes) {
        return Answer::error(BAD_COMMAND);
    }
    let mut payload = alloc::vec![0u8; read.min(REPLY_ROOM)];
    if !pages.read(request.address, &mut payload) {
        return Answer::error(BAD_COMMAND);
    }
    Answer {
        ret_val: 0,
        errno: 0,
        payload,
    }
}

/// Each signal's catches, its last information word, and the status its
/// handler ends the process with (0: it only counts).
static CAUGHT: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];
static INFO: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static EXIT_WITH: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

fn on_signal(signal: u32, info: u64, _frame: &mut abi::upcall::UpcallFrame) {
    let index = (signal & 63) as usize;
    INFO[index].store(info, Ordering::SeqCst);
    CAUGHT[index].fetch_add(1, Ordering::SeqCst);
    let status = EXIT_WITH[index].load(Ordering::SeqCst);
    if status != 0 {
        kernel::process_exit(status);
    }
}

/// ACTION: a disposition through `userlib::signal`.
fn action(data: &[u8]) -> Answer {
    let words: Vec<u32> = data
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let [signal, act, status] = words[..] else {
        return Answer::error(BAD_COMMAND);
    };
    EXIT_WITH[(signal & 63) as usize].store(status, Ordering::SeqCst);
    let result = match act {
        abi::signal::action::CATCH => userlib::signal::catch(signal, on_signal),
        abi::signal::action::IGNORE => userlib::signal::ignore(signal),
        _ => userlib::signal::default(signal),
    };
    match result {
        Ok(previous) => Answer::value(match previous {
            userlib::signal::Action::Default => abi::signal::action::DEFAULT,
            userlib::signal::Action::Ignore => abi::signal::action::IGNORE,
            userlib::signal::Action::Catch => abi::signal::action::CATCH,
        }),
        Err(error) => Answer::error(error.errno()),
    }
}

/// CAUGHT: a signal's count and last information word.
fn caught(data: &[u8]) -> Answer {
    let Some(signal) = word(data) else {
        return Answer::error(BAD_COMMAND);
    };
    let index = (signal & 63) as usize;
    Answer {
        ret_val: CAUGHT[index].load(Ordering::SeqCst),
        errno: 0,
        payload: INFO[index].load(Ordering::SeqCst).to_le_bytes().to_vec(),
    }
}

/// STDOUT_WRITE: one byte to standard output.
fn stdout_write() -> Answer {
    match userlib::stdio::stdout().write_all(b"x") {
        Ok(()) => Answer::value(0),
        Err(error) => Answer::error(error.errno()),
    }
}

/// Sends `answer` as the reply to the held control call.
fn reply(buffer: &mut Buffer, cookie: u64, answer: &Answer) {
    let mut data = Vec::with_capacity(REPLY_PAYLOAD_OFFSET + answer.payload.len());
    data.extend_from_slice(&answer.ret_val.to_le_bytes());
    data.extend_from_slice(&answer.errno.to_le_bytes());
    data.extend_from_slice(&answer.payload);
    data.truncate(REPLY_PAYLOAD_OFFSET + REPLY_ROOM);
    buffer.put(0, &data);
    let length = data.len() as u16;
    let _ = buffer.reply(
        cookie,
        sizes(abi::message::descriptor_offset(length), length, 0),
    );
}

fn run(_startup: Startup) -> i32 {
    let jobs: Jobs = core::array::from_fn(|_| Arc::new(Mutex::new(Job::Idle)));
    let mut buffer = Buffer::filled(0);
    loop {
        let received = buffer.receive(CONTROL, (PAGE_SIZE - 1) as u16);
        // A caught signal ran its handler on this thread: serve on.
        if received.arg0 == 0xffff_ffff && received.arg1 == Error::Interrupted as u64 {
            continue;
        }
        if received.arg0 == 0xffff_ffff {
            // The control door is gone (or broken): nothing more to serve.
            return 2;
        }
        let function = received.arg0 as u32 as i32;
        let message = MessageSizes::from_bits(received.arg3);
        let data = buffer.bytes()[..usize::from(message.data_size())].to_vec();
        let answer = match abi::function::Function(function) {
            command::TRAP => trap_now(&data),
            command::START => start(&jobs, &data),
            command::JOIN => join(&jobs, &data),
            command::TAKE => take(&buffer, message),
            command::FILL_TABLE => fill_table(&data),
            command::EXIT => {
                reply(&mut buffer, received.arg1, &Answer::value(0));
                kernel::process_exit(word(&data).unwrap_or(0));
            }
            command::ACCESS => access(&data),
            command::ACTION => action(&data),
            command::CAUGHT => caught(&data),
            command::STDOUT_WRITE => stdout_write(),
            command::RAISE => match word(&data) {
                Some(signal) => match userlib::signal::raise(signal) {
                    Ok(()) => Answer::value(0),
                    Err(error) => Answer::error(error.errno()),
                },
                None => Answer::error(BAD_COMMAND),
            },
            command::FAULT => match word(&data) {
                Some(fault::INVALID_OPCODE) => userlib::probe::invalid_opcode(),
                Some(fault::INT_80) => {
                    userlib::probe::software_interrupt();
                    Answer::value(1)
                }
                Some(fault::WRITE_READ_ONLY) => write_read_only(),
                Some(fault::READ_PORT) => {
                    let _ = userlib::device::read_u8(fault::PROBE_PORT);
                    Answer::value(1)
                }
                _ => Answer::error(BAD_COMMAND),
            },
            _ => Answer::error(BAD_COMMAND),
        };
        reply(&mut buffer, received.arg1, &answer);
    }
}
