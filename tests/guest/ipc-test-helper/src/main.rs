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
    ArrivedSlot, BAD_REQUEST, FORWARD, GIVE_BACK, PREPARE, PROGRAM, RELAY, Registers, RelayReport,
    STALE, STRESS_RESULT, STRESS_ROUNDS, STRESS_WORKERS, SignalReport, UNKNOWN_FUNCTION, UNMAP_NOW,
    role,
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
        role::STRESS | role::STRESS_DIE => 3,
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
        role::UNMAP_READER => unmap_reader(),
        role::STRESS => stress(false),
        role::STRESS_DIE => stress(true),
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

/// How many YIELDs a wait for another thread may take (it always runs, on
/// its own CPU or, with one CPU, when this one yields).
const MAX_WAIT: u32 = 200_000;

/// One page.
const PAGE: u64 = abi::PAGE_SIZE as u64;

/// Yields until `counter` reaches `target`; whether it did.
fn wait_for(counter: &core::sync::atomic::AtomicU64, target: u64) -> bool {
    for _ in 0..MAX_WAIT {
        if counter.load(core::sync::atomic::Ordering::SeqCst) >= target {
            return true;
        }
        let _ = kernel::yield_now();
    }
    false
}

/// RECEIVEs the next call on [`DOOR`] and answers it with `ret_val`
/// (8 bytes) once `work` returned it; false when receiving failed.
fn answer_next(buffer: &mut Buffer, expected: Function, work: impl FnOnce() -> u32) -> bool {
    let received = buffer.receive(DOOR, MAX_TOTAL_SIZE);
    if received.arg0 == 0xffff_ffff || received.arg0 as i32 != expected.0 {
        return false;
    }
    let ret_val = work();
    buffer.put_value(0, &u64::from(ret_val));
    let _ = buffer.reply(0, abi::message::sizes(8, 8, 0));
    true
}

/// The `unmap-reader` role (see `role::UNMAP_READER`).
fn unmap_reader() -> i32 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let online = kernel::cpu_counters(0).map_or(1, |c| c.online);
    let _ = kernel::set_affinity(1);
    let rw = abi::kcall::protection::READ | abi::kcall::protection::WRITE;
    let Ok(page) = kernel::map_anonymous(0, PAGE, rw) else {
        println!("{PROGRAM} (unmap-reader): no page");
        return 1;
    };
    let reader = userlib::spawn_thread(
        move || {
            let _ = kernel::set_affinity(1 << (online - 1));
            let Ok(view) = userlib::raw::RawPages::claim(page, PAGE) else {
                return;
            };
            let mut byte = [0u8; 1];
            loop {
                view.read(page, &mut byte);
                PASSES.fetch_add(1, Ordering::SeqCst);
                if online == 1 {
                    let _ = kernel::yield_now();
                }
            }
        },
        userlib::thread::DEFAULT_STACK_SIZE,
    );
    if let Err(error) = reader {
        println!("{PROGRAM} (unmap-reader): no reader thread: {error}");
        return 1;
    }
    let mut buffer = Buffer::new();
    if !answer_next(&mut buffer, PREPARE, || u32::from(wait_for(&PASSES, 2))) {
        return 1;
    }
    answer_next(&mut buffer, UNMAP_NOW, || {
        if kernel::unmap(page, PAGE).is_err() {
            return 1;
        }
        // The reader's next access faults and ends this process; two more
        // passes mean it read through a translation the UNMAP left behind.
        let after = PASSES.load(Ordering::SeqCst);
        if wait_for(&PASSES, after + 2) {
            STALE
        } else {
            0
        }
    });
    1
}

/// The `stress` and `stress-die` roles (see `role::STRESS`).
fn stress(die: bool) -> i32 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static ROUNDS_RIGHT: AtomicU64 = AtomicU64::new(0);
    // Its own door, from the test (a helper holds no capability to make one).
    let (owner, client) = (SECOND, Descriptor(3));
    // Signalled by each worker after its first round and at its end: the
    // first thread blocks on them rather than spin beside the workers.
    let (Ok(first_round), Ok(finished)) = (kernel::event_create(), kernel::event_create()) else {
        println!("{PROGRAM} (stress): no events");
        return 1;
    };
    let (first_round, finished) = (first_round.into_raw(), finished.into_raw());
    // The server thread: echoes every call until the process ends.
    let server = userlib::spawn_thread(
        move || {
            let mut buffer = Buffer::new();
            let mut result = buffer.receive(owner, 64);
            // Every call carries 8 bytes, echoed back as they came.
            while result.arg0 != 0xffff_ffff {
                result = buffer.reply_receive(0, abi::message::sizes(64, 8, 0));
            }
        },
        userlib::thread::DEFAULT_STACK_SIZE,
    );
    if server.is_err() {
        println!("{PROGRAM} (stress): no server thread");
        return 1;
    }
    // Each round runs on the next CPU in turn (THREAD_AFFINITY returns on
    // the CPU asked for): every CPU dispatches a worker during the stress
    // whatever the timing, which the test checks exactly.
    let online = kernel::cpu_counters(0).map_or(1, |c| c.online.max(1));
    for worker in 0..STRESS_WORKERS {
        let started = userlib::spawn_thread(
            move || {
                for round in 0..STRESS_ROUNDS {
                    let cpu = (worker + round) % online;
                    let right = match kernel::set_affinity(1 << cpu)
                        .map_err(|e| alloc::format!("THREAD_AFFINITY to CPU {cpu}: {e}"))
                        .and_then(|()| stress_round(worker, round, client))
                    {
                        Ok(()) => true,
                        Err(what) => {
                            println!("{PROGRAM} (stress): worker {worker} round {round}: {what}");
                            false
                        }
                    };
                    if right {
                        ROUNDS_RIGHT.fetch_add(1, Ordering::SeqCst);
                    }
                    if round == 0 {
                        let _ = kernel::event_signal(first_round);
                    }
                }
                let _ = kernel::event_signal(finished);
            },
            userlib::thread::DEFAULT_STACK_SIZE,
        );
        if started.is_err() {
            println!("{PROGRAM} (stress): no worker thread");
            return 1;
        }
    }
    if die {
        // Ends the process while its threads map, call and unmap, on
        // whichever CPUs they run.
        let _ = kernel::event_wait(first_round);
        kernel::process_exit(7)
    }
    for _ in 0..STRESS_WORKERS {
        let _ = kernel::event_wait(finished);
    }
    let mut buffer = Buffer::new();
    answer_next(&mut buffer, STRESS_RESULT, || {
        ROUNDS_RIGHT.load(Ordering::SeqCst) as u32
    });
    0
}

/// One stress round: map two pages, write a value into the second, call
/// the helper's own server with it (the echo must be the value), read it
/// back, unmap; what went wrong, if anything.
fn stress_round(worker: u32, round: u32, client: Descriptor) -> Result<(), alloc::string::String> {
    use alloc::format;
    let pages = userlib::raw::RawPages::map(2).map_err(|e| format!("MAP_ANONYMOUS: {e}"))?;
    let address = pages.base();
    let value = u64::from(worker << 16 | round).to_le_bytes();
    pages.write(address + PAGE, &value);
    let mut buffer = Buffer::new();
    buffer.put(0, &value);
    let call = buffer.send(STRESS_RESULT, client, abi::message::sizes(64, 8, 0));
    if call.arg0 == 0xffff_ffff {
        return Err(format!("the call: {call:?}"));
    }
    let echoed = buffer.get::<[u8; 8]>(0);
    if echoed != Some(value) {
        return Err(format!("the echo: {echoed:?}, sent {value:?}"));
    }
    let mut back = [0u8; 8];
    pages.read(address + PAGE, &mut back);
    if back != value {
        return Err(format!(
            "read back {back:?} at {address:#x}, wrote {value:?}"
        ));
    }
    let unmapped = pages.unmap(address, 2 * PAGE);
    // Already unmapped: dropping the pages would unmap again, maybe another
    // thread's new mapping placed there meanwhile.
    core::mem::forget(pages);
    unmapped.map_err(|e| format!("UNMAP of {address:#x}: {e}"))
}
