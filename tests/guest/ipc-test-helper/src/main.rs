//! ipc-test-helper: the other processes of the in-guest IPC test. Its
//! argument bytes name its [`role`](ipc_test_helper::role) (the protocol of
//! each is in `lib.rs`). It is always spawned by `ipc-test`, holds no kernel
//! capability, and serves a door whose owner reference is its first
//! descriptor. The relay and the signaller use raw
//! RECEIVE / REPLY_RECEIVE traps rather than userlib's server loop, so that
//! they can report exactly what the kernel handed them.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;

use abi::function::Function;
use abi::kcall::{DescriptorInfo, DescriptorRequest, REPLY_PAYLOAD_OFFSET};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE, message_extent};
use abi::trap::REPLY_DELIVERED;
use abi::{Descriptor, Error, KernelFunction, MessageSizes, Rights, TrapArgs};
use ipc_test_helper::{
    ArrivedSlot, BAD_REQUEST, FORWARD, GIVE_BACK, PROGRAM, RELAY, Registers, RelayReport,
    SignalReport, UNKNOWN_FUNCTION, role,
};
use userlib::raw::Buffer;
use userlib::{Startup, kernel, println};
use zerocopy::IntoBytes;

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The door every serving role serves: its owner reference.
const DOOR: Descriptor = Descriptor(1);
/// The second initial descriptor (what it is depends on the role).
const SECOND: Descriptor = Descriptor(2);

fn run(startup: Startup) -> i32 {
    let role = core::str::from_utf8(startup.arguments).unwrap_or("");
    let needed = match role {
        role::RELAY => 2,
        _ => 1,
    };
    if startup.descriptors < needed {
        println!(
            "{PROGRAM} ({role}): started with {} descriptors, needs {needed}",
            startup.descriptors
        );
        return 2;
    }
    match role {
        role::RELAY => serve(role, &mut relay),
        role::SIGNALLER => serve(role, &mut Signaller::default()),
        _ => {
            println!("{PROGRAM}: unknown role {role:?}");
            2
        }
    }
}

/// One received call, as the server loop hands it to a handler.
struct Call<'a> {
    /// What RECEIVE or REPLY_RECEIVE returned.
    registers: TrapArgs,
    buffer: &'a Buffer,
}

impl Call<'_> {
    fn function(&self) -> Function {
        Function(self.registers.arg0 as u32 as i32)
    }

    fn cookie(&self) -> u64 {
        self.registers.arg1
    }

    fn sizes(&self) -> MessageSizes {
        MessageSizes::from_bits(self.registers.arg3)
    }

    fn slot_count(&self) -> usize {
        usize::from(self.sizes().descriptor_count())
    }

    fn slot(&self, index: usize) -> Option<DescriptorSlot> {
        if index >= self.slot_count() {
            return None;
        }
        self.buffer.slot(self.sizes().data_size(), index)
    }

    /// Closes every descriptor that arrived, but slot `keep`.
    fn close_arrived(&self, keep: Option<usize>) {
        for index in (0..self.slot_count()).filter(|index| Some(*index) != keep) {
            if let Some(slot) = self.slot(index) {
                let _ = kernel::close(Descriptor(slot.descriptor));
            }
        }
    }
}

/// A handler's answer to one call (the caller's cookie is left as it is).
struct Answer {
    /// The reply data (header included).
    data: Vec<u8>,
    /// The reply's slots.
    slots: Vec<DescriptorSlot>,
}

impl Answer {
    /// msgRetVal `value`, msgErrno 0, then `payload`.
    fn ok(value: u32, payload: &[u8]) -> Self {
        let mut data = Vec::with_capacity(REPLY_PAYLOAD_OFFSET + payload.len());
        data.extend_from_slice(&value.to_le_bytes());
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(payload);
        Answer {
            data,
            slots: Vec::new(),
        }
    }

    /// An error reply: msgRetVal -1, msgErrno `errno`.
    fn error(errno: u32) -> Self {
        let mut answer = Answer::ok(u32::MAX, &[]);
        answer.data[4..8].copy_from_slice(&errno.to_le_bytes());
        answer
    }
}

/// Something that answers calls.
trait Handler {
    fn handle(&mut self, call: &Call<'_>) -> Answer;
}

impl<F: FnMut(&Call<'_>) -> Answer> Handler for F {
    fn handle(&mut self, call: &Call<'_>) -> Answer {
        self(call)
    }
}

/// The raw server loop on [`DOOR`]: RECEIVE, then for each call the
/// handler's answer by REPLY_RECEIVE. Returns when receiving fails (the
/// door is gone).
fn serve(role: &str, handler: &mut impl Handler) -> i32 {
    let mut buffer = Buffer::new();
    let mut result = buffer.receive(DOOR, MAX_TOTAL_SIZE);
    loop {
        if result.arg0 == 0xffff_ffff {
            println!("{PROGRAM} ({role}): receive failed: {}", describe(result));
            return 1;
        }
        let call = Call {
            registers: result,
            buffer: &buffer,
        };
        let budget = call.sizes().total_size();
        let cookie = call.cookie();
        let mut answer = handler.handle(&call);
        let extent = u16::try_from(answer.data.len())
            .ok()
            .and_then(|size| u8::try_from(answer.slots.len()).ok().map(|n| (size, n)))
            .filter(|&(size, n)| size <= MAX_TOTAL_SIZE && message_extent(size, n) <= budget);
        if extent.is_none() {
            // The caller left no room for this answer: an empty reply.
            close_slots(&answer.slots);
            answer.data.clear();
            answer.slots.clear();
        }
        let arg3 = write_message(&mut buffer, &answer.data, &answer.slots);
        let next = buffer.reply_receive(cookie, arg3);
        if next.arg0 != 0xffff_ffff {
            result = next;
        } else if next.arg2 == REPLY_DELIVERED {
            println!("{PROGRAM} ({role}): receive failed: {}", describe(next));
            return 1;
        } else {
            fail_caller(cookie, next.arg1, budget, &answer.slots, &mut buffer);
            result = buffer.receive(DOOR, MAX_TOTAL_SIZE);
        }
    }
}

/// After a reply the kernel refused (the caller still waits): an error
/// reply carrying the error, or an empty one if even that does not fit.
fn fail_caller(
    cookie: u64,
    error: u64,
    budget: u16,
    slots: &[DescriptorSlot],
    buffer: &mut Buffer,
) {
    close_slots(slots);
    let answer = Answer::error(u32::try_from(error).unwrap_or(u32::MAX));
    let data: &[u8] = if usize::from(budget) >= answer.data.len() {
        &answer.data
    } else {
        &[]
    };
    let arg3 = write_message(buffer, data, &[]);
    let _ = buffer.reply(cookie, arg3);
}

/// Writes a message into `buffer`; returns its `arg3` (the whole buffer
/// as total size).
fn write_message(buffer: &mut Buffer, data: &[u8], slots: &[DescriptorSlot]) -> u64 {
    let size = u16::try_from(data.len()).unwrap_or(MAX_TOTAL_SIZE);
    buffer.put_value(0, data);
    for (index, slot) in slots.iter().enumerate() {
        buffer.put_slot_of(size, index, *slot);
    }
    abi::message::sizes(
        MAX_TOTAL_SIZE,
        size,
        u8::try_from(slots.len()).unwrap_or(u8::MAX),
    )
}

/// Closes the descriptors an answer that is not sent would have moved.
fn close_slots(slots: &[DescriptorSlot]) {
    for slot in slots {
        let _ = kernel::close(Descriptor(slot.descriptor));
    }
}

/// A short text for a failed trap's registers.
fn describe(result: TrapArgs) -> &'static str {
    u32::try_from(result.arg1)
        .ok()
        .and_then(Error::from_number)
        .map_or("unknown error", Error::name)
}

/// A slot as it arrived, with DESCRIPTOR_INFO of its descriptor.
fn arrived(slot: DescriptorSlot) -> ArrivedSlot {
    let mut buffer = Buffer::new();
    let request = DescriptorRequest::new(abi::Descriptor(slot.descriptor), abi::Rights::NONE);
    let result = buffer.kernel_call(
        KernelFunction::DescriptorInfo,
        Descriptor::NULL,
        request.as_bytes(),
        64,
    );
    if result.is_kernel_failure() {
        return ArrivedSlot {
            slot,
            info_error: result.arg1 as u32,
            ..ArrivedSlot::default()
        };
    }
    let info: DescriptorInfo = buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();
    ArrivedSlot {
        slot,
        kind: info.kind,
        rights: info.rights,
        info_error: 0,
        reserved: 0,
    }
}

/// The `relay` role (process B): RELAY moves the event on to the
/// signaller (descriptor 2) and reports what each side saw.
fn relay(call: &Call<'_>) -> Answer {
    if call.function() != RELAY {
        call.close_arrived(None);
        return Answer::error(UNKNOWN_FUNCTION);
    }
    let Some(slot) = call.slot(0) else {
        return Answer::error(BAD_REQUEST);
    };
    call.close_arrived(Some(0));
    let arrived = arrived(slot);
    let mut buffer = Buffer::new();
    let moving = DescriptorSlot::moving(Descriptor(slot.descriptor), Rights(slot.rights));
    buffer.put_slot_of(0, 0, moving);
    let forward = buffer.send(FORWARD, SECOND, abi::message::sizes(MAX_TOTAL_SIZE, 0, 1));
    let signaller: SignalReport = buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();
    let close = DescriptorRequest::new(abi::Descriptor(slot.descriptor), abi::Rights::NONE);
    let close_after_move = buffer.kernel_call(
        KernelFunction::Close,
        Descriptor::NULL,
        close.as_bytes(),
        64,
    );
    let report = RelayReport {
        arrived,
        forward: Registers::from(forward),
        close_after_move: Registers::from(close_after_move),
        signaller,
    };
    Answer::ok(0, report.as_bytes())
}

/// The `signaller` role (process C): keeps the event FORWARD brings and
/// signals it; GIVE_BACK moves it to the caller.
#[derive(Default)]
struct Signaller {
    event: Option<Descriptor>,
}

impl Handler for Signaller {
    fn handle(&mut self, call: &Call<'_>) -> Answer {
        match call.function() {
            FORWARD => {
                let Some(slot) = call.slot(0) else {
                    return Answer::error(BAD_REQUEST);
                };
                call.close_arrived(Some(0));
                let arrived = arrived(slot);
                let event = Descriptor(slot.descriptor);
                let mut buffer = Buffer::new();
                let signal = buffer.kernel_call(KernelFunction::EventSignal, event, &[], 64);
                if let Some(previous) = self.event.replace(event) {
                    let _ = kernel::close(previous);
                }
                let report = SignalReport {
                    arrived,
                    signal: Registers::from(signal),
                };
                Answer::ok(0, report.as_bytes())
            }
            GIVE_BACK => {
                call.close_arrived(None);
                let Some(event) = self.event.take() else {
                    return Answer::error(BAD_REQUEST);
                };
                let mut answer = Answer::ok(0, &[]);
                answer
                    .slots
                    .push(DescriptorSlot::moving(event, Rights::SIGNAL));
                answer
            }
            _ => {
                call.close_arrived(None);
                Answer::error(UNKNOWN_FUNCTION)
            }
        }
    }
}
