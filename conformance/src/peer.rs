//! The protocol between the runner and `conformance-peer`, the helper
//! process that plays the other side of a call when a case needs a second
//! process: a server whose descriptor table the case knows, a client whose
//! death the case causes, a table that is full.
//!
//! The runner SPAWNs the peer with the owner reference of a fresh *control
//! door* moved in as descriptor 1, then the case's own descriptors as 2, 3,
//! ... (in slot order), so the peer's table is known exactly: it opens
//! nothing else that outlives a command (a job's thread handle is closed at
//! once). It holds no kernel capability unless a case passes one among its
//! descriptors (ABI.md §6: a process without one has nothing to send
//! DOOR_CREATE, SPAWN, MANAGER_REGISTER, ARCHIVE_READ or DEBUG_EXIT to).
//! The peer's main thread serves the control door; each command is one
//! call:
//!
//! | command | request | reply |
//! | --- | --- | --- |
//! | [`command::TRAP`] | a script of one step | its [`StepResult`] |
//! | [`command::START`] | a script for job slot `job` | at once; the steps run on a new thread |
//! | [`command::JOIN`] | `u32` job slot | msgRetVal [`JOB_RUNNING`] or [`JOB_DONE`] with the results |
//! | [`command::TAKE`] | descriptor slots | msgRetVal = how many; payload = the peer's numbers (`u32` each) |
//! | [`command::FILL_TABLE`] | `u32` n | fills the table with DUPLICATEs, then closes the n highest; msgRetVal = the lowest free number (0: none) |
//! | [`command::EXIT`] | `u32` code | replied, then PROCESS_EXIT |
//! | [`command::FAULT`] | `u32` kind ([`fault`]) | none if the process ended; msgRetVal 1 if it survived |
//! | [`command::ACCESS`] | [`AccessRequest`], then the bytes to write | the bytes read; none if the process ended (the write faulted) |
//! | [`command::ACTION`] | `u32` signal, `u32` action (`abi::signal::action`), `u32` status | msgRetVal the previous action; a caught signal's handler counts it, or ends the process with `status` when not 0 |
//! | [`command::CAUGHT`] | `u32` signal | msgRetVal how often it was caught; payload its last information word (`u64`) |
//! | [`command::STDOUT_WRITE`] | - | msgRetVal 0 when one byte went to standard output, else -1 and the stream's error number (none if a signal ended the process) |
//! | [`command::RAISE`] | `u32` signal | msgRetVal 0 once `userlib::signal::raise` returned (after a CONT, for a stop), else -1 and procman's error |
//!
//! JOIN never blocks: the runner first waits until the whole system is idle
//! (`Context::settle`), so a job that is still running then is blocked, and
//! the case decides whether that is right. Replies follow the usual
//! convention (msgRetVal, msgErrno, payload at offset 8); a command the peer
//! cannot carry out gets msgRetVal -1 and msgErrno [`BAD_COMMAND`] or the
//! kernel error it met.

use alloc::format;
use alloc::vec::Vec;

use abi::error::FIRST_SERVER_ERROR;
use abi::function::{Function, USER_BASE};
use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::{Descriptor, DescriptorSlot, TrapArgs};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::context::Failed;
use crate::expect::sizes;
use abi::PAGE_SIZE;
use userlib::raw::Buffer;

/// The peer's entry name in the boot archive.
pub const PROGRAM: &str = "conformance-peer";

/// The control commands (user function numbers on the control door).
pub mod command {
    use super::{Function, USER_BASE};

    /// Run one step now and answer with its result.
    pub const TRAP: Function = Function(USER_BASE + 0x100);
    /// Run a script on a new thread; answer at once.
    pub const START: Function = Function(USER_BASE + 0x101);
    /// Report a job's state and results.
    pub const JOIN: Function = Function(USER_BASE + 0x102);
    /// Keep the descriptors that arrive with this call; answer with their numbers.
    pub const TAKE: Function = Function(USER_BASE + 0x103);
    /// Fill the descriptor table, then free the n highest numbers.
    pub const FILL_TABLE: Function = Function(USER_BASE + 0x104);
    /// Answer, then end the process.
    pub const EXIT: Function = Function(USER_BASE + 0x105);
    /// Raise a CPU exception without answering.
    pub const FAULT: Function = Function(USER_BASE + 0x106);
    /// Write, then read, memory the peer mapped (a memory object's
    /// mapping, outside the memory its Rust code uses).
    pub const ACCESS: Function = Function(USER_BASE + 0x107);
    /// Set a signal's disposition through `userlib::signal` (catch:
    /// a handler that counts it, or ends the process with a status).
    pub const ACTION: Function = Function(USER_BASE + 0x108);
    /// How often the handler caught a signal, and its last information word.
    pub const CAUGHT: Function = Function(USER_BASE + 0x109);
    /// Write one byte to standard output.
    pub const STDOUT_WRITE: Function = Function(USER_BASE + 0x10A);
    /// Send a signal to itself (SIGNAL to its own pid).
    pub const RAISE: Function = Function(USER_BASE + 0x10B);
}

/// ACCESS: write `write` bytes (which follow) at `address`, then read
/// `read` bytes there. The range must lie outside the memory the peer's
/// Rust code uses (`userlib::raw::is_foreign`), else BAD_COMMAND; a write
/// or read the mapping does not allow ends the peer.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct AccessRequest {
    /// Where.
    pub address: u64,
    /// Bytes read after the write.
    pub read: u32,
    /// Bytes written first (they follow the request).
    pub write: u32,
}

/// FAULT's kinds.
pub mod fault {
    /// `ud2`: an invalid-opcode exception.
    pub const INVALID_OPCODE: u32 = 0;
    /// `int 0x80`: a software interrupt, the classic emulation hook that
    /// ABI.md §9 D12 says hinge does not provide.
    pub const INT_80: u32 = 1;
    /// A write to a page of its own that it has just PROTECTed read-only
    /// (a page fault). If a step before the write fails, it answers with
    /// that error; if it survives the write, msgRetVal 1.
    pub const WRITE_READ_ONLY: u32 = 2;
    /// `in al, dx` from [`PROBE_PORT`]: a #GP that ends it unless the port
    /// was granted (IO_PORT_GRANT); if it survives, msgRetVal 1.
    pub const READ_PORT: u32 = 3;
    /// The port READ_PORT reads: 0x80, the POST-code port, which nothing
    /// in the system uses.
    pub const PROBE_PORT: u16 = 0x80;
}

/// msgErrno of a command the peer could not carry out.
pub const BAD_COMMAND: u32 = FIRST_SERVER_ERROR;
/// JOIN's msgRetVal: the job has not finished.
pub const JOB_RUNNING: u32 = 1;
/// JOIN's msgRetVal: the job finished; the results follow.
pub const JOB_DONE: u32 = 2;
/// JOIN's msgRetVal: nothing was started in that slot.
pub const JOB_IDLE: u32 = 0;
/// Job slots.
pub const JOBS: u32 = 4;
/// Steps in one script.
pub const MAX_STEPS: usize = 4;

/// [`StepHeader::flags`]: arg2 is an offset into the job's buffer.
pub const ARG2_IN_BUFFER: u32 = 1 << 0;
/// [`StepHeader::flags`]: fill the whole buffer with `fill` before the step.
pub const FILL: u32 = 1 << 1;

/// A script: `count` steps for job slot `job` (TRAP ignores `job`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ScriptHeader {
    /// The job slot.
    pub job: u32,
    /// The number of steps that follow.
    pub count: u32,
}

/// One step: a trap with these registers on the job's buffer (a page),
/// after writing `write_len` bytes (which follow the header, padded to 8)
/// at `write_at`; afterwards the first `snapshot` bytes of the buffer are
/// reported.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StepHeader {
    /// rax.
    pub arg0: u64,
    /// rdi.
    pub arg1: u64,
    /// rsi: an offset into the job's buffer ([`ARG2_IN_BUFFER`] is always
    /// set: the peer only traps on its own buffers).
    pub arg2: u64,
    /// rdx.
    pub arg3: u64,
    /// [`ARG2_IN_BUFFER`], [`FILL`].
    pub flags: u32,
    /// The byte of [`FILL`].
    pub fill: u32,
    /// Where the written bytes go.
    pub write_at: u32,
    /// How many bytes are written.
    pub write_len: u32,
    /// How many bytes of the buffer are reported afterwards.
    pub snapshot: u32,
    /// Zero.
    pub reserved: u32,
}

/// A step's outcome: the registers, the msgPtr used and `snapshot_len`
/// bytes of the buffer (which follow, padded to 8).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ResultHeader {
    /// rax after the trap.
    pub arg0: u64,
    /// rdi.
    pub arg1: u64,
    /// rsi.
    pub arg2: u64,
    /// rdx.
    pub arg3: u64,
    /// The msgPtr the trap was given.
    pub msg_ptr: u64,
    /// Bytes of buffer that follow.
    pub snapshot_len: u32,
    /// Zero.
    pub reserved: u32,
}

/// A step, as the runner builds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The registers and what to do around the trap.
    pub header: StepHeader,
    /// The bytes written into the buffer first.
    pub write: Vec<u8>,
}

/// A step's outcome, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepResult {
    /// The registers on return.
    pub registers: TrapArgs,
    /// The msgPtr used.
    pub msg_ptr: u64,
    /// The buffer from its start, afterwards.
    pub snapshot: Vec<u8>,
}

impl Step {
    /// A trap with `arg2` = the job's buffer + `offset`.
    pub fn in_buffer(arg0: u64, arg1: u64, offset: u64, arg3: u64) -> Self {
        Step {
            header: StepHeader {
                arg0,
                arg1,
                arg2: offset,
                arg3,
                flags: ARG2_IN_BUFFER,
                ..StepHeader::default()
            },
            write: Vec::new(),
        }
    }

    /// RECEIVE on the peer's descriptor `door`, offering `total` bytes;
    /// the buffer is filled with `fill` first and fully reported.
    pub fn receive(door: u32, total: u16, fill: u8) -> Self {
        Step::in_buffer(
            abi::function::RECEIVE.bits(),
            u64::from(door),
            0,
            sizes(total, 0, 0),
        )
        .filled(fill)
        .snapshot(usize::from(total).max(64))
    }

    /// SEND of `function` through the peer's descriptor `target`, with
    /// `data` and `slots` in a buffer of `total` bytes.
    pub fn send(
        function: Function,
        target: u32,
        data: &[u8],
        slots: &[DescriptorSlot],
        total: u16,
    ) -> Self {
        let (bytes, arg3) = message(data, slots, total);
        Step::in_buffer(function.bits(), u64::from(target), 0, arg3)
            .writing(0, &bytes)
            .snapshot(usize::from(total))
    }

    /// REPLY with `data` and `slots` (the reply's total = its extent), storing `cookie`.
    pub fn reply(cookie: u64, data: &[u8], slots: &[DescriptorSlot]) -> Self {
        let extent = abi::message::message_extent(data.len() as u16, slots.len() as u8);
        let (bytes, arg3) = message(data, slots, extent);
        Step::in_buffer(abi::function::REPLY.bits(), cookie, 0, arg3).writing(0, &bytes)
    }

    /// The same, with the buffer filled with `byte` first.
    pub fn filled(mut self, byte: u8) -> Self {
        self.header.flags |= FILL;
        self.header.fill = u32::from(byte);
        self
    }

    /// The same, writing `bytes` at `at` first.
    pub fn writing(mut self, at: usize, bytes: &[u8]) -> Self {
        self.header.write_at = at as u32;
        self.header.write_len = bytes.len() as u32;
        self.write = bytes.to_vec();
        self
    }

    /// The same, reporting `length` bytes of the buffer afterwards.
    pub fn snapshot(mut self, length: usize) -> Self {
        self.header.snapshot = length.min(PAGE_SIZE) as u32;
        self
    }
}

/// A message's bytes (data; with slots, zero padding and the slots) and its
/// `arg3` with `total`.
pub fn message(data: &[u8], slots: &[DescriptorSlot], total: u16) -> (Vec<u8>, u64) {
    let data_size = data.len() as u16;
    let mut bytes = data.to_vec();
    if !slots.is_empty() {
        bytes.resize(usize::from(abi::message::descriptor_offset(data_size)), 0);
    }
    for slot in slots {
        bytes.extend_from_slice(slot.as_bytes());
    }
    (bytes, sizes(total, data_size, slots.len() as u8))
}

fn pad8(length: usize) -> usize {
    length.next_multiple_of(8)
}

/// A script's bytes.
pub fn encode_script(job: u32, steps: &[Step]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let header = ScriptHeader {
        job,
        count: steps.len() as u32,
    };
    bytes.extend_from_slice(header.as_bytes());
    for step in steps {
        bytes.extend_from_slice(step.header.as_bytes());
        bytes.extend_from_slice(&step.write);
        bytes.resize(pad8(bytes.len()), 0);
    }
    bytes
}

/// A decoded script: its job slot and each step with the bytes it writes.
pub type Script<'a> = (u32, Vec<(StepHeader, &'a [u8])>);

/// A script's job slot and steps (`None`: malformed or too many steps).
pub fn decode_script(bytes: &[u8]) -> Option<Script<'_>> {
    let (header, mut rest) = ScriptHeader::read_from_prefix(bytes).ok()?;
    if header.count as usize > MAX_STEPS {
        return None;
    }
    let mut steps = Vec::new();
    for _ in 0..header.count {
        let (step, after) = StepHeader::read_from_prefix(rest).ok()?;
        let length = step.write_len as usize;
        let write = after.get(..length)?;
        rest = after.get(pad8(length)..).unwrap_or_default();
        steps.push((step, write));
    }
    Some((header.job, steps))
}

/// Results' bytes: a `u64` count, then each header and its snapshot
/// (padded to 8). Every header fits; the snapshots are cut, in order, so
/// that the whole is at most `capacity` bytes.
pub fn encode_results(results: &[StepResult], capacity: usize) -> Vec<u8> {
    let headers = 8 + results.len() * size_of::<ResultHeader>();
    let mut room = capacity.saturating_sub(headers) & !7;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(results.len() as u64).to_le_bytes());
    for result in results {
        let length = result.snapshot.len().min(room);
        room -= pad8(length);
        let header = ResultHeader {
            arg0: result.registers.arg0,
            arg1: result.registers.arg1,
            arg2: result.registers.arg2,
            arg3: result.registers.arg3,
            msg_ptr: result.msg_ptr,
            snapshot_len: length as u32,
            reserved: 0,
        };
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&result.snapshot[..length]);
        bytes.resize(pad8(bytes.len()), 0);
    }
    bytes
}

/// Results from their bytes.
pub fn decode_results(bytes: &[u8]) -> Option<Vec<StepResult>> {
    let (count, mut rest) = u64::read_from_prefix(bytes).ok()?;
    let mut results = Vec::new();
    for _ in 0..count.min(MAX_STEPS as u64) {
        let (header, after) = ResultHeader::read_from_prefix(rest).ok()?;
        let length = header.snapshot_len as usize;
        let snapshot = after.get(..length)?.to_vec();
        rest = after.get(pad8(length)..).unwrap_or_default();
        results.push(StepResult {
            registers: TrapArgs {
                arg0: header.arg0,
                arg1: header.arg1,
                arg2: header.arg2,
                arg3: header.arg3,
            },
            msg_ptr: header.msg_ptr,
            snapshot,
        });
    }
    Some(results)
}

/// What an ACCESS brought back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accessed {
    /// The control call's registers.
    pub registers: TrapArgs,
    /// The bytes the peer read (empty when the call failed).
    pub bytes: Vec<u8>,
}

/// A running peer, from the runner's side.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// The runner's client reference to the peer's control door.
    pub control: Descriptor,
    /// The runner's handle on the peer process.
    pub process: Descriptor,
}

/// What a control call brought back.
struct Answer {
    registers: TrapArgs,
    payload: Vec<u8>,
    slots: Vec<u8>,
}

impl Peer {
    /// A control call: `data` and `slots` out, the answer back.
    fn call(
        &self,
        function: Function,
        data: &[u8],
        slots: &[DescriptorSlot],
    ) -> Result<Answer, Failed> {
        let mut buffer = Buffer::filled(0);
        let total = (PAGE_SIZE - 1) as u16;
        let (bytes, arg3) = message(data, slots, total);
        buffer.put(0, &bytes);
        let registers = buffer.send(function, self.control, arg3);
        if registers.kernel_error().is_some() {
            return Err(Failed(format!(
                "the peer's control call {:#x} failed: {}",
                function.0,
                crate::context::describe_registers(&registers)
            )));
        }
        let reply = abi::MessageSizes::from_bits(registers.arg3);
        let data_size = usize::from(reply.data_size());
        let payload = buffer
            .bytes()
            .get(REPLY_PAYLOAD_OFFSET..data_size)
            .unwrap_or_default()
            .to_vec();
        let slots_at = usize::from(abi::message::descriptor_offset(reply.data_size()));
        let slots = buffer
            .bytes()
            .get(slots_at..slots_at + 16 * usize::from(reply.descriptor_count()))
            .unwrap_or_default()
            .to_vec();
        if registers.arg0 == 0xffff_ffff && data_size >= 8 {
            return Err(Failed(format!(
                "the peer refused command {:#x} (errno {:#x})",
                function.0, registers.arg1
            )));
        }
        Ok(Answer {
            registers,
            payload,
            slots,
        })
    }

    /// Runs one step on the peer's main thread and returns its result
    /// (the step must not block).
    pub fn trap(&self, step: Step) -> Result<StepResult, Failed> {
        let answer = self.call(command::TRAP, &encode_script(0, &[step]), &[])?;
        decode_results(&answer.payload)
            .and_then(|results| results.into_iter().next())
            .ok_or_else(|| {
                Failed(format!(
                    "the peer's TRAP answer is malformed ({} bytes)",
                    answer.payload.len()
                ))
            })
    }

    /// Starts `steps` on a new thread of the peer, in job slot `job`.
    pub fn start(&self, job: u32, steps: &[Step]) -> Result<(), Failed> {
        self.call(command::START, &encode_script(job, steps), &[])
            .map(|_| ())
    }

    /// The results of job `job` if it finished (`None`: still running).
    pub fn join(&self, job: u32) -> Result<Option<Vec<StepResult>>, Failed> {
        let answer = self.call(command::JOIN, &job.to_le_bytes(), &[])?;
        match answer.registers.arg0 as u32 {
            JOB_DONE => decode_results(&answer.payload).map(Some).ok_or_else(|| {
                Failed(alloc::string::String::from(
                    "the peer's JOIN answer is malformed",
                ))
            }),
            JOB_RUNNING => Ok(None),
            state => Err(Failed(format!(
                "peer job {job} was never started (state {state})"
            ))),
        }
    }

    /// Hands the peer these slots (the runner's descriptors); returns the
    /// numbers they got in the peer's table.
    pub fn take(&self, slots: &[DescriptorSlot]) -> Result<Vec<u32>, Failed> {
        let answer = self.call(command::TAKE, &[], slots)?;
        let _ = answer.slots;
        Ok(answer
            .payload
            .chunks_exact(4)
            .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
            .collect())
    }

    /// Fills the peer's table, then frees its `free` highest numbers;
    /// returns the lowest free number (0 when none is free).
    pub fn fill_table(&self, free: u32) -> Result<u32, Failed> {
        let answer = self.call(command::FILL_TABLE, &free.to_le_bytes(), &[])?;
        Ok(answer.registers.arg0 as u32)
    }

    /// Ends the peer process (it answers first).
    pub fn exit(&self) -> Result<(), Failed> {
        self.call(command::EXIT, &0u32.to_le_bytes(), &[])
            .map(|_| ())
    }

    /// Sets the peer's disposition of `signal` (catching it counts it, or
    /// ends the peer with `status` when not 0); the previous action.
    pub fn action(&self, signal: u32, action: u32, status: u32) -> Result<u32, Failed> {
        let mut request = Vec::with_capacity(12);
        for word in [signal, action, status] {
            request.extend_from_slice(&word.to_le_bytes());
        }
        let answer = self.call(command::ACTION, &request, &[])?;
        Ok(answer.registers.arg0 as u32)
    }

    /// How often the peer's handler caught `signal`, and its last info word.
    pub fn caught(&self, signal: u32) -> Result<(u32, u64), Failed> {
        let answer = self.call(command::CAUGHT, &signal.to_le_bytes(), &[])?;
        let info = answer.payload.get(..8).map_or(0, |b| {
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        });
        Ok((answer.registers.arg0 as u32, info))
    }

    /// Asks the peer to send `signal` to itself; answered once its
    /// `raise` returned (for STOP: once something sent it CONT).
    pub fn raise(&self, signal: u32) -> Result<TrapArgs, Failed> {
        self.call(command::RAISE, &signal.to_le_bytes(), &[])
            .map(|answer| answer.registers)
    }

    /// Asks the peer to write one byte to its standard output.
    pub fn stdout_write(&self) -> Result<(), Failed> {
        self.call(command::STDOUT_WRITE, &[], &[]).map(|_| ())
    }

    /// Asks the peer to write `write` at `address` (a mapping it made),
    /// then read `read` bytes there: the control call's registers and the
    /// bytes read (a kernel error, PEER_DIED, when the access faulted and
    /// the peer ended).
    pub fn access(&self, address: u64, write: &[u8], read: usize) -> Result<Accessed, Failed> {
        let request = AccessRequest {
            address,
            read: read as u32,
            write: write.len() as u32,
        };
        let mut data = Vec::from(request.as_bytes());
        data.extend_from_slice(write);
        let mut buffer = Buffer::filled(0);
        let total = (PAGE_SIZE - 1) as u16;
        let (bytes, arg3) = message(&data, &[], total);
        buffer.put(0, &bytes);
        let registers = buffer.send(command::ACCESS, self.control, arg3);
        let reply = abi::MessageSizes::from_bits(registers.arg3);
        if registers.kernel_error().is_none() && registers.arg0 == 0xffff_ffff {
            return Err(Failed(format!(
                "the peer refused ACCESS at {address:#x} (errno {:#x})",
                registers.arg1
            )));
        }
        let bytes = buffer
            .bytes()
            .get(REPLY_PAYLOAD_OFFSET..usize::from(reply.data_size()))
            .unwrap_or_default()
            .to_vec();
        Ok(Accessed { registers, bytes })
    }

    /// Asks the peer to raise a CPU exception of `kind`; returns the
    /// registers of this control call (PEER_DIED when the process ended).
    pub fn fault(&self, kind: u32) -> Result<TrapArgs, Failed> {
        let mut buffer = Buffer::filled(0);
        buffer.put(0, &kind.to_le_bytes());
        Ok(buffer.send(command::FAULT, self.control, sizes(64, 4, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_round_trip() {
        let steps = [
            Step::receive(2, 64, 0x5a),
            Step::send(
                Function(0x8000),
                3,
                b"hello",
                &[DescriptorSlot::copy(Descriptor(4), abi::Rights::SEND)],
                128,
            ),
        ];
        let bytes = encode_script(2, &steps);
        let (job, decoded) = decode_script(&bytes).unwrap_or_default();
        assert_eq!(job, 2);
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].0, steps[0].header);
        assert_eq!(decoded[1].0, steps[1].header);
        assert_eq!(decoded[1].1, &steps[1].write[..]);
        assert_eq!(&decoded[1].1[..5], b"hello");
        assert_eq!(&decoded[1].1[8..12], &4u32.to_le_bytes());
        assert!(decode_script(&bytes[..bytes.len() - 8]).is_none());
    }

    #[test]
    fn results_round_trip_and_fit_their_capacity() {
        let results = alloc::vec![
            StepResult {
                registers: TrapArgs::error(abi::Error::BadSizes),
                msg_ptr: 0x1000,
                snapshot: alloc::vec![7; 100],
            },
            StepResult {
                registers: TrapArgs::default(),
                msg_ptr: 0x2000,
                snapshot: alloc::vec![9; 4000],
            },
        ];
        let bytes = encode_results(&results, 4080);
        assert!(bytes.len() <= 4080);
        let decoded = decode_results(&bytes).unwrap_or_default();
        assert_eq!(decoded[0], results[0]);
        assert_eq!(decoded[1].msg_ptr, 0x2000);
        assert!(decoded[1].snapshot.len() < 4000 && decoded[1].snapshot.iter().all(|b| *b == 9));
    }

    #[test]
    fn messages_put_slots_after_the_padding() {
        let (bytes, arg3) = message(
            &[1, 2, 3],
            &[DescriptorSlot::moving(Descriptor(9), abi::Rights::SEND)],
            64,
        );
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[3..8], &[0; 5]);
        assert_eq!(&bytes[8..12], &9u32.to_le_bytes());
        assert_eq!(arg3, sizes(64, 3, 1));
    }
}
