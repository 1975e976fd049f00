//! MSG-PAGER: special memory objects and their pagers (ABI.md §6.4, §9
//! D20-D22). The runner is the pager (it owns the door) and the peer the
//! process that touches the pages: its ACCESS blocks in the page fault
//! until the runner answers the PAGE_REQUEST the kernel delivered. Each
//! case checks the request's registers and bytes, a supply (DATA, FRAME,
//! FORWARD) and what the peer then reads, a failure ending the peer, or a
//! refusal that changes nothing (the kernel's counters, free frames
//! included, read right before and after) and leaves the request held
//! (the peer still waits, and a later DATA reply still supplies it).
//!
//! The runner never touches a special page itself (it owns the pager's
//! door: its own fault there would end it, D22); where it maps one, only
//! the kernel reaches the mapping (a trap's buffer).

use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use abi::kcall::protection::{READ, WRITE};
use abi::kcall::{
    KernelCounters, MemoryMapRequest, MemoryRangeRequest, PageSupply, PagerCreateRequest,
    memory_flags,
};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, PAGE_BYTES, Rights, TrapArgs};
use userlib::kernel;
use userlib::raw::{Buffer, RawPages};
use zerocopy::IntoBytes;

use super::kit::{self, Answer, SENDER_FILL};
use crate::case::{Case, Outcome};
use crate::context::{Context, Door, Failed, Job};
use crate::expect::{Expect, Field, Value, sizes};
use crate::peer::{Accessed, Peer, Step, message};

const PAGE: u64 = PAGE_BYTES;
const RW: u32 = READ | WRITE;

/// Where the peer maps the special objects (far from the MEM cases').
const MAP_AT: u64 = 0x0000_5100_0000_0000;
/// Where the runner maps one (only the kernel touches it).
const RUNNER_AT: u64 = MAP_AT + 0x10_0000;

/// The cookie every object of these cases is created with.
const COOKIE: u64 = 0x0BAD_CAFE_0000_0017;
const COOKIE_BYTES: [u8; 8] = COOKIE.to_le_bytes();

/// PAGE_REQUEST's function number.
const PAGE_REQUEST: i32 = KernelFunction::PageRequest as i32;

/// RECEIVE's arg3 for a page request: the reply may fill a whole message,
/// the request is 24 bytes.
const REQUEST_SIZES: u64 = sizes(4095, 24, 0);

/// The peer's descriptor for the object a case gives it.
const PEER_OBJECT: u32 = 2;

/// The first bytes of a successful kernel reply.
const OK_HEADER: [u8; 8] = [0; 8];

/// A pager door of the runner, a special object on it (all pages missing)
/// and a peer holding the object, mapped read-write at [`MAP_AT`].
struct Paging {
    door: Door,
    object: Descriptor,
    peer: Peer,
}

fn create(context: &mut Context, door: Descriptor, pages: u32) -> Result<Descriptor, Failed> {
    let object = kernel::pager_create(door, pages, COOKIE)?;
    Ok(context.adopt(object.into_raw()))
}

fn map_request(address: u64, length: u64, protection: u32) -> Vec<u8> {
    Vec::from(MemoryMapRequest::new(address, 0, length, protection).as_bytes())
}

fn paging(context: &mut Context, pages: u32) -> Result<Paging, Failed> {
    let door = context.user_door()?;
    let object = create(context, door.client, pages)?;
    let peer = context.peer(&[DescriptorSlot::copy(object, Rights::MEMORY)])?;
    peer_maps(&peer, PEER_OBJECT, u64::from(pages) * PAGE)?;
    Ok(Paging { door, object, peer })
}

/// The peer maps its descriptor `object` at [`MAP_AT`].
pub(super) fn peer_maps(peer: &Peer, object: u32, length: u64) -> Result<(), Failed> {
    let mapped = peer.trap(Step::send(
        KernelFunction::MemoryMap.function(),
        object,
        &map_request(MAP_AT, length, RW),
        &[],
        64,
    ))?;
    match mapped.registers.kernel_error() {
        None => Ok(()),
        Some(error) => Err(Failed(alloc::format!(
            "the peer's MEMORY_MAP failed: {}",
            error.name()
        ))),
    }
}

/// The peer writes `write` at `MAP_AT + offset`, then reads `read` bytes
/// there, on a job of the runner; returns once the peer is blocked (or done).
pub(super) fn touch(
    context: &mut Context,
    peer: Peer,
    offset: u64,
    write: &[u8],
    read: usize,
) -> Result<Job<Result<Accessed, Failed>>, Failed> {
    let write = write.to_vec();
    let job = context.job(move || peer.access(MAP_AT + offset, &write, read))?;
    context.settle();
    Ok(job)
}

/// A pager's reply: msgRetVal and msgErrno 0, the supply, then `bytes`.
pub(super) fn supply(how: PageSupply, bytes: &[u8]) -> Vec<u8> {
    let mut data = alloc::vec![0u8; 8];
    data.extend_from_slice(how.as_bytes());
    data.extend_from_slice(bytes);
    data
}

/// An error reply with `errno`.
fn error_reply(errno: Error) -> Vec<u8> {
    let mut data = Vec::from(u32::MAX.to_le_bytes());
    data.extend_from_slice(&(errno as u32).to_le_bytes());
    data
}

/// The runner receives the page request queued on `owner`; checks it is one.
pub(super) fn take_request(
    context: &mut Context,
    owner: Descriptor,
) -> Result<(kit::Served, Buffer), Failed> {
    let (served, buffer) = kit::receive(owner, 4095)?;
    context.check(
        served.received.arg0 == u64::from(PAGE_REQUEST as u32),
        &alloc::format!(
            "the pager's RECEIVE got {}, not a PAGE_REQUEST",
            crate::context::describe_registers(&served.received)
        ),
    );
    Ok((served, buffer))
}

/// The peer's ACCESS once it is done (a failure if it still waits).
pub(super) fn access_result(
    context: &mut Context,
    job: &Job<Result<Accessed, Failed>>,
) -> Result<Accessed, Failed> {
    kit::finished(context, job, "the peer's access")
}

/// Checks the peer read `expected` (its ACCESS succeeded).
pub(super) fn check_read(context: &mut Context, accessed: &Accessed, expected: &[u8]) {
    context.check(
        accessed.registers.kernel_error().is_none() && accessed.bytes == expected,
        &alloc::format!(
            "the peer's access returned {} and read {:?}, expected {:?}",
            crate::context::describe_registers(&accessed.registers),
            accessed.bytes,
            expected
        ),
    );
}

/// Checks the peer's ACCESS ended with PEER_DIED: the peer is gone.
fn check_peer_ended(context: &mut Context, accessed: &Accessed) {
    context.check(
        accessed.registers == TrapArgs::error(Error::PeerDied),
        &alloc::format!(
            "the peer's access returned {}, expected PEER_DIED (the peer ended)",
            crate::context::describe_registers(&accessed.registers)
        ),
    );
}

/// A kernel function trapped from a fresh buffer with the kernel's counters
/// read right before and after: a refusal must leave them equal.
fn refused_kcall(
    context: &mut Context,
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
) -> Outcome {
    let mut buffer = Buffer::filled(SENDER_FILL);
    let (bytes, arg3) = message(request, &[], 64);
    buffer.put(0, &bytes);
    let before = kernel::counters()?;
    let registers = buffer.send(function.function(), target, arg3);
    let after = kernel::counters()?;
    unchanged(context, function.name(), before, after);
    Ok(context.observe(registers))
}

fn unchanged(context: &mut Context, what: &str, before: KernelCounters, after: KernelCounters) {
    context.check(
        before == after,
        &alloc::format!(
            "a refused {what} changed the kernel's counters from {before:?} to {after:?}"
        ),
    );
}

/// A supply refused with the error the case expects: the pager's REPLY
/// with `answer` (built once the request is held) changes nothing, the
/// peer still waits, and a DATA reply then still supplies the page.
fn refused_supply(
    context: &mut Context,
    answer: impl FnOnce(&mut Context) -> Result<Answer, Failed>,
) -> Outcome {
    let paging = paging(context, 1)?;
    let job = touch(context, paging.peer, 0, &[], 5)?;
    let (_, mut buffer) = take_request(context, paging.door.owner)?;
    let answer = answer(context)?;
    let before = kernel::counters()?;
    let registers = kit::reply(&mut buffer, &answer)?;
    let after = kernel::counters()?;
    unchanged(context, "supply", before, after);
    context.settle();
    context.check(
        !job.finished(),
        "the peer's access ended though the refused reply left the request held",
    );
    let late = kit::reply(
        &mut buffer,
        &Answer::data(&supply(PageSupply::data(), b"later")),
    )?;
    context.check(
        late == TrapArgs::default(),
        "the DATA reply after the refusal was not accepted",
    );
    let accessed = access_result(context, &job)?;
    check_read(context, &accessed, b"later");
    Ok(context.observe(registers))
}

/// Warms the kernel heap for a case that counts frames: a special object
/// made, supplied through a peer and closed.
fn warm_up(context: &mut Context) -> Result<(), Failed> {
    let paging = paging(context, 1)?;
    let job = touch(context, paging.peer, 0, &[], 1)?;
    let (_, mut buffer) = take_request(context, paging.door.owner)?;
    kit::reply(
        &mut buffer,
        &Answer::data(&supply(PageSupply::data(), b"w")),
    )?;
    access_result(context, &job)?;
    Ok(())
}

/// MSG-PAGER-037's sequence: a peer faults on a special page, its second
/// thread ends the process while the first waits, the pager's DATA supply
/// comes after; everything is closed again. The runner's thread that drives
/// the peer's ACCESS exists before the first count and after the second
/// (a thread's stack stays mapped when it ends, ABI-wise the runner's own
/// memory), so the two counts bracket the kernel's side alone. Returns the
/// supply's registers and the counts.
fn ended_while_waiting(
    context: &mut Context,
) -> Result<(TrapArgs, KernelCounters, KernelCounters), Failed> {
    type Shared<T> = Arc<Mutex<Option<T>>>;
    let go = context.event()?;
    let peer_slot: Shared<Peer> = Arc::new(Mutex::new(None));
    let result_slot: Shared<Result<Accessed, Failed>> = Arc::new(Mutex::new(None));
    let (peers, results) = (peer_slot.clone(), result_slot.clone());
    context.job(move || {
        let _ = kernel::event_wait(go);
        let accessed = match peers.lock().take() {
            Some(peer) => peer.access(MAP_AT, &[], 1),
            None => Err(Failed(alloc::string::String::from("no peer to drive"))),
        };
        *results.lock() = Some(accessed);
        let _ = kernel::event_wait(go);
    })?;
    context.settle();
    let before = kernel::counters()?;
    let door = context.user_door()?;
    let object = create(context, door.client, 1)?;
    let event = context.event()?;
    // The peer: the object (2) and an event (3) its second thread waits
    // on before it ends the process.
    let peer = context.peer(&[
        DescriptorSlot::copy(object, Rights::MEMORY),
        DescriptorSlot::copy(event, Rights::EVENT),
    ])?;
    peer_maps(&peer, PEER_OBJECT, PAGE)?;
    let exit = abi::kcall::ExitRequest::new(5);
    peer.start(
        1,
        &[
            Step::send(KernelFunction::EventWait.function(), 3, &[], &[], 64),
            Step::send(
                KernelFunction::ProcessExit.function(),
                0,
                exit.as_bytes(),
                &[],
                64,
            ),
        ],
    )?;
    *peer_slot.lock() = Some(peer);
    kernel::event_signal(go)?;
    context.settle();
    let (_, mut buffer) = take_request(context, door.owner)?;
    kernel::event_signal(event)?;
    context.settle();
    match result_slot.lock().take() {
        Some(Ok(accessed)) => check_peer_ended(context, &accessed),
        Some(Err(failed)) => return Err(failed),
        None => context.fail(alloc::string::String::from(
            "the peer's access still waits after its process ended",
        )),
    }
    let registers = kit::reply(
        &mut buffer,
        &Answer::data(&supply(PageSupply::data(), b"late")),
    )?;
    for descriptor in [
        peer.control,
        peer.process,
        event,
        object,
        door.owner,
        door.client,
    ] {
        context.close(descriptor)?;
    }
    context.settle();
    let after = kernel::counters()?;
    kernel::event_signal(go)?;
    context.close(go)?;
    context.settle();
    Ok((registers, before, after))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PAGER-001",
        rule: "PAGER_CREATE, sent to a door with SEND, replies one slot: the special memory object at the lowest free number with MEMORY rights",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::replied("PAGER_CREATE", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("object"),
                    rights: Rights::MEMORY.0,
                    mode: None,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            let object = context.lowest_free(1)?[0];
            context.bind("object", u64::from(object));
            let request = PagerCreateRequest::new(2, COOKIE);
            let call = kit::send(
                KernelFunction::PagerCreate.function(),
                door.client,
                request.as_bytes(),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                context.adopt(Descriptor(object));
            }
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-PAGER-002",
        rule: "MEMORY_INFO of a special object: its pages and flags SPECIAL (bit 1)",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::replied("MEMORY_INFO", 0, 0, 24, 0).with_buffer(&[
            (8, Field::Quad(Value::Is(3))),
            (16, Field::Word(Value::Is(memory_flags::SPECIAL as u64))),
            (20, Field::Word(Value::Is(0))),
        ]),
        run: |context| {
            let door = context.user_door()?;
            let object = create(context, door.client, 3)?;
            let call = kit::send(KernelFunction::MemoryInfo.function(), object, &[], &[], 64)?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-PAGER-003",
        rule: "PAGER_CREATE takes no frame (its pages are missing until supplied) but charges the creator for every page, and adds one object and one descriptor",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::replied("PAGER_CREATE", 0, 0, 8, 1),
        run: |context| {
            warm_up(context)?;
            let door = context.user_door()?;
            let object = context.lowest_free(1)?[0];
            let request = PagerCreateRequest::new(3, COOKIE);
            let mut buffer = Buffer::filled(SENDER_FILL);
            let (bytes, arg3) = message(request.as_bytes(), &[], 64);
            buffer.put(0, &bytes);
            let before = kernel::counters()?;
            let registers = buffer.send(KernelFunction::PagerCreate.function(), door.client, arg3);
            let after = kernel::counters()?;
            if registers.kernel_error().is_none() {
                context.adopt(Descriptor(object));
            }
            context.check(
                after.free_frames == before.free_frames,
                &alloc::format!(
                    "free frames went from {} to {}",
                    before.free_frames,
                    after.free_frames
                ),
            );
            context.check(
                (after.objects, after.descriptors) == (before.objects + 1, before.descriptors + 1),
                &alloc::format!("objects and descriptors went from {before:?} to {after:?}"),
            );
            context.check(
                after.charged_bytes >= before.charged_bytes + 3 * PAGE,
                "the creator was not charged for the pages",
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PAGER-004",
        rule: "a read of a missing page by another process becomes a PAGE_REQUEST on the pager's door: arg0 0x081, arg1 the object's cookie, sizes 4095 / 24 / 0, data PageRequest{cookie, offset 0, access READ, hops 0}",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::received("the pager's RECEIVE", PAGE_REQUEST, COOKIE, REQUEST_SIZES)
            .with_buffer(&[
                (0, Field::Bytes(&COOKIE_BYTES)),
                (8, Field::Quad(Value::Is(0))),
                (16, Field::Word(Value::Is(READ as u64))),
                (20, Field::Word(Value::Is(0))),
            ]),
        run: |context| {
            let paging = paging(context, 2)?;
            let job = touch(context, paging.peer, 3, &[], 4)?;
            context.check(
                !job.finished(),
                "the peer's read of a missing page did not wait",
            );
            let (served, mut buffer) = kit::receive(paging.door.owner, 4095)?;
            kit::reply(&mut buffer, &Answer::data(&supply(PageSupply::data(), &[])))?;
            access_result(context, &job)?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-PAGER-005",
        rule: "a write to a missing page asks for it with access WRITE and the page's offset (page 1 of 2)",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::received("the pager's RECEIVE", PAGE_REQUEST, COOKIE, REQUEST_SIZES)
            .with_buffer(&[
                (0, Field::Bytes(&COOKIE_BYTES)),
                (8, Field::Quad(Value::Is(PAGE))),
                (16, Field::Word(Value::Is(WRITE as u64))),
            ]),
        run: |context| {
            let paging = paging(context, 2)?;
            let job = touch(context, paging.peer, PAGE + 8, b"w", 1)?;
            let (served, mut buffer) = kit::receive(paging.door.owner, 4095)?;
            kit::reply(&mut buffer, &Answer::data(&supply(PageSupply::data(), &[])))?;
            let accessed = access_result(context, &job)?;
            check_read(context, &accessed, b"w");
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-PAGER-006",
        rule: "a DATA supply is accepted (REPLY returns zeros); the waiting thread resumes and reads the supplied bytes, zero past them",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::reply_done("the pager's REPLY"),
        run: |context| {
            let paging = paging(context, 1)?;
            let job = touch(context, paging.peer, 0, &[], 12)?;
            let (_, mut buffer) = take_request(context, paging.door.owner)?;
            let registers = kit::reply(
                &mut buffer,
                &Answer::data(&supply(PageSupply::data(), b"pager")),
            )?;
            let accessed = access_result(context, &job)?;
            check_read(context, &accessed, b"pager\0\0\0\0\0\0\0");
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PAGER-007",
        rule: "a FRAME supply shares the frame of a page of the pager's own memory object: no frame is taken (the mapper's page tables exist), and the peer reads what the pager wrote there",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::reply_done("the pager's REPLY"),
        run: |context| {
            warm_up(context)?;
            let own = context.adopt(kernel::memory_create(2)?.into_raw());
            {
                let pages = RawPages::map_object(own, RUNNER_AT, 0, 2 * PAGE, RW)?;
                pages.write(RUNNER_AT + PAGE, b"pager's frame");
            }
            let paging = paging(context, 2)?;
            // Page 0 first, so that the peer's page tables there exist (13
            // bytes read, as below: the runner's heap already has room for
            // what the second access allocates).
            let first = touch(context, paging.peer, 0, &[], 13)?;
            let (_, mut buffer) = take_request(context, paging.door.owner)?;
            kit::reply(&mut buffer, &Answer::data(&supply(PageSupply::data(), &[])))?;
            access_result(context, &first)?;
            // The REPLY below wakes the job driving the peer's access, which
            // may run at once on any CPU (on the runner's, a tick lets a
            // thread of its priority in). Its thread ends only after both
            // counts: an ended thread's kernel stack counts as free at once,
            // which no pinning or waiting can keep out of the window.
            let counted = context.event()?;
            let peer = paging.peer;
            let job = context.job(move || {
                let accessed = peer.access(MAP_AT + PAGE, &[], 13);
                let _ = kernel::event_wait(counted);
                accessed
            })?;
            context.settle();
            let (_, mut buffer) = take_request(context, paging.door.owner)?;
            let before = kernel::counters()?;
            let registers = kit::reply(
                &mut buffer,
                &Answer::data(&supply(PageSupply::frame(own, PAGE), &[])),
            )?;
            let after = kernel::counters()?;
            kernel::event_signal(counted)?;
            context.check(
                after.free_frames == before.free_frames,
                &alloc::format!(
                    "a FRAME supply took frames: {} before, {} after",
                    before.free_frames,
                    after.free_frames
                ),
            );
            let accessed = access_result(context, &job)?;
            check_read(context, &accessed, b"pager's frame");
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PAGER-008",
        rule: "a supplied page stays with the object: a later access (another process's new mapping) asks the pager nothing",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::error("the second RECEIVE, once the door closes", Error::PeerDied),
        run: |context| {
            let paging = paging(context, 1)?;
            let job = touch(context, paging.peer, 0, &[], 1)?;
            let (_, mut buffer) = take_request(context, paging.door.owner)?;
            kit::reply(
                &mut buffer,
                &Answer::data(&supply(PageSupply::data(), b"kept")),
            )?;
            access_result(context, &job)?;
            // A second peer maps the object and reads: no request comes.
            let second = context.peer(&[DescriptorSlot::copy(paging.object, Rights::MEMORY)])?;
            peer_maps(&second, PEER_OBJECT, PAGE)?;
            let waiting = kit::server(context, paging.door.owner, 4095, None)?;
            let read = touch(context, second, 0, &[], 4)?;
            let accessed = access_result(context, &read)?;
            check_read(context, &accessed, b"kept");
            context.check(!waiting.finished(), "the pager was asked again");
            context.close(paging.door.owner)?;
            let served = kit::finished(context, &waiting, "the pager's RECEIVE")?;
            Ok(context.observe(served.received))
        },
    },
    Case {
        id: "MSG-PAGER-009",
        rule: "an error reply to a page request is accepted (REPLY returns zeros) and ends the faulting process",
        section: "6.4",
        decisions: &["D21"],
        expect: Expect::reply_done("the pager's error REPLY"),
        run: |context| {
            let paging = paging(context, 1)?;
            let job = touch(context, paging.peer, 0, &[], 1)?;
            let (_, mut buffer) = take_request(context, paging.door.owner)?;
            let registers = kit::reply(
                &mut buffer,
                &Answer::data(&error_reply(Error::InvalidArgument)),
            )?;
            let accessed = access_result(context, &job)?;
            check_peer_ended(context, &accessed);
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PAGER-010",
        rule: "the pager's door closing while a page request is queued on it ends the faulting process: nothing waits forever",
        section: "6.4",
        decisions: &["D21"],
        expect: Expect::error("the peer's ACCESS", Error::PeerDied),
        run: |context| {
            let paging = paging(context, 1)?;
            let job = touch(context, paging.peer, 0, &[], 1)?;
            context.close(paging.door.owner)?;
            let accessed = access_result(context, &job)?;
            Ok(context.observe(accessed.registers))
        },
    },
    Case {
        id: "MSG-PAGER-011",
        rule: "a pager thread that receives again without answering the page request it holds ends the faulting process",
        section: "6.4",
        decisions: &["D21"],
        expect: Expect::error("the peer's ACCESS", Error::PeerDied),
        run: |context| {
            let paging = paging(context, 1)?;
            let job = touch(context, paging.peer, 0, &[], 1)?;
            let owner = paging.door.owner;
            let pager = context.job(move || {
                let (first, _) = kit::receive(owner, 4095)?;
                let (second, _) = kit::receive(owner, 4095)?;
                Ok::<_, Failed>((first.received, second.received))
            })?;
            let accessed = access_result(context, &job)?;
            context.close(owner)?;
            let (first, second) = kit::finished(context, &pager, "the pager")?;
            context.check(
                first.arg0 == u64::from(PAGE_REQUEST as u32),
                "the pager's first RECEIVE was not the page request",
            );
            context.check(
                second == TrapArgs::error(Error::PeerDied),
                "the pager's second RECEIVE got something",
            );
            Ok(context.observe(accessed.registers))
        },
    },
    Case {
        id: "MSG-PAGER-012",
        rule: "a FORWARD supply sends the request on to the door it names: its RECEIVE gets the same request with hops 1, and its DATA supply reaches the peer",
        section: "6.4",
        decisions: &["D20"],
        expect: Expect::received(
            "the second pager's RECEIVE",
            PAGE_REQUEST,
            COOKIE,
            REQUEST_SIZES,
        )
        .with_buffer(&[
            (0, Field::Bytes(&COOKIE_BYTES)),
            (8, Field::Quad(Value::Is(0))),
            (16, Field::Word(Value::Is(READ as u64))),
            (20, Field::Word(Value::Is(1))),
        ]),
        run: |context| {
            let paging = paging(context, 1)?;
            let next = context.user_door()?;
            let job = touch(context, paging.peer, 0, &[], 6)?;
            let (_, mut buffer) = take_request(context, paging.door.owner)?;
            let forwarded = kit::reply(
                &mut buffer,
                &Answer::data(&supply(PageSupply::forward(next.client), &[])),
            )?;
            context.check(forwarded == TrapArgs::default(), "the FORWARD was refused");
            let (served, mut second) = kit::receive(next.owner, 4095)?;
            kit::reply(
                &mut second,
                &Answer::data(&supply(PageSupply::data(), b"second")),
            )?;
            let accessed = access_result(context, &job)?;
            check_read(context, &accessed, b"second");
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-PAGER-013",
        rule: "a supply without the PageSupply header (8 bytes, msgErrno 0) is BAD_SIZES and changes nothing; the request stays held",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::BadSizes),
        run: |context| refused_supply(context, |_| Ok(Answer::data(&[0; 8]))),
    },
    Case {
        id: "MSG-PAGER-014",
        rule: "a supply of an unknown kind (how 9) is INVALID_ARGUMENT and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::InvalidArgument),
        run: |context| {
            refused_supply(context, |_| {
                Ok(Answer::data(&supply(
                    PageSupply {
                        how: 9,
                        ..PageSupply::data()
                    },
                    &[],
                )))
            })
        },
    },
    Case {
        id: "MSG-PAGER-015",
        rule: "a DATA supply with its descriptor field set is RESERVED_BITS and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::ReservedBits),
        run: |context| {
            refused_supply(context, |_| {
                Ok(Answer::data(&supply(
                    PageSupply {
                        descriptor: 1,
                        ..PageSupply::data()
                    },
                    &[],
                )))
            })
        },
    },
    Case {
        id: "MSG-PAGER-016",
        rule: "a FRAME supply naming a descriptor that is not open is BAD_DESCRIPTOR and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::BadDescriptor),
        run: |context| {
            refused_supply(context, |context| {
                let closed = context.lowest_free(1)?[0];
                Ok(Answer::data(&supply(
                    PageSupply::frame(Descriptor(closed), 0),
                    &[],
                )))
            })
        },
    },
    Case {
        id: "MSG-PAGER-017",
        rule: "a FRAME supply naming an event is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::WrongObjectType),
        run: |context| {
            refused_supply(context, |context| {
                let event = context.event()?;
                Ok(Answer::data(&supply(PageSupply::frame(event, 0), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-018",
        rule: "a FRAME supply through a memory reference without MAP_READ is MISSING_RIGHT and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::MissingRight),
        run: |context| {
            refused_supply(context, |context| {
                let own = context.adopt(kernel::memory_create(1)?.into_raw());
                let blind = context.duplicate(own, Rights::TRANSFER)?;
                Ok(Answer::data(&supply(PageSupply::frame(blind, 0), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-019",
        rule: "a FRAME supply of a page past the end of the pager's object is INVALID_ARGUMENT and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::InvalidArgument),
        run: |context| {
            refused_supply(context, |context| {
                let own = context.adopt(kernel::memory_create(1)?.into_raw());
                Ok(Answer::data(&supply(PageSupply::frame(own, PAGE), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-020",
        rule: "a FRAME supply of a special object's page that is itself missing is INVALID_ARGUMENT and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::InvalidArgument),
        run: |context| {
            refused_supply(context, |context| {
                let door = context.user_door()?;
                let missing = create(context, door.client, 1)?;
                Ok(Answer::data(&supply(PageSupply::frame(missing, 0), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-021",
        rule: "a FORWARD through a door reference without SEND (an owner reference) is MISSING_RIGHT and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::MissingRight),
        run: |context| {
            refused_supply(context, |context| {
                let next = context.user_door()?;
                Ok(Answer::data(&supply(PageSupply::forward(next.owner), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-022",
        rule: "a FORWARD to a door whose owner closed it is PEER_DIED and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::PeerDied),
        run: |context| {
            refused_supply(context, |context| {
                let dead = context.dead_door(kernel::DoorKind::User)?;
                Ok(Answer::data(&supply(PageSupply::forward(dead), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-023",
        rule: "a supply with a descriptor slot is BAD_SIZES and changes nothing (descriptors never travel to the kernel)",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::BadSizes),
        run: |context| {
            refused_supply(context, |context| {
                let event = context.event()?;
                Ok(Answer {
                    cookie: 0,
                    data: supply(PageSupply::data(), &[]),
                    slots: alloc::vec![DescriptorSlot::copy(event, Rights::EVENT)],
                })
            })
        },
    },
    Case {
        id: "MSG-PAGER-024",
        rule: "a FORWARD naming a memory object is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("the pager's REPLY", Error::WrongObjectType),
        run: |context| {
            refused_supply(context, |context| {
                let own = context.adopt(kernel::memory_create(1)?.into_raw());
                Ok(Answer::data(&supply(PageSupply::forward(own), &[])))
            })
        },
    },
    Case {
        id: "MSG-PAGER-025",
        rule: "PAGER_CREATE of 0 pages is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("PAGER_CREATE", Error::InvalidArgument),
        run: |context| {
            let door = context.user_door()?;
            let request = PagerCreateRequest::new(0, COOKIE);
            refused_kcall(
                context,
                KernelFunction::PagerCreate,
                door.client,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-026",
        rule: "PAGER_CREATE with its reserved field set is RESERVED_BITS and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("PAGER_CREATE", Error::ReservedBits),
        run: |context| {
            let door = context.user_door()?;
            let request = PagerCreateRequest::new(1, COOKIE).with_reserved(1);
            refused_kcall(
                context,
                KernelFunction::PagerCreate,
                door.client,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-027",
        rule: "PAGER_CREATE sent to an event is WRONG_OBJECT_TYPE and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("PAGER_CREATE", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            let request = PagerCreateRequest::new(1, COOKIE);
            refused_kcall(
                context,
                KernelFunction::PagerCreate,
                event,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-028",
        rule: "PAGER_CREATE through a door's owner reference (no SEND) is MISSING_RIGHT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("PAGER_CREATE", Error::MissingRight),
        run: |context| {
            let door = context.user_door()?;
            let request = PagerCreateRequest::new(1, COOKIE);
            refused_kcall(
                context,
                KernelFunction::PagerCreate,
                door.owner,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-029",
        rule: "PAGER_CREATE on a door whose owner closed it is PEER_DIED and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("PAGER_CREATE", Error::PeerDied),
        run: |context| {
            let dead = context.dead_door(kernel::DoorKind::User)?;
            let request = PagerCreateRequest::new(1, COOKIE);
            refused_kcall(
                context,
                KernelFunction::PagerCreate,
                dead,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-030",
        rule: "PAGER_CREATE sent to the NULL target is FUNCTION_OUT_OF_RANGE and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("PAGER_CREATE", Error::FunctionOutOfRange),
        run: |context| {
            let request = PagerCreateRequest::new(1, COOKIE);
            refused_kcall(
                context,
                KernelFunction::PagerCreate,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-031",
        rule: "a kernel write into a missing special page (a kernel function's reply there) is BAD_BUFFER: the kernel never waits for a pager, and no request is made",
        section: "6.4",
        decisions: &["D22"],
        expect: Expect::error("COUNTERS", Error::BadBuffer),
        run: |context| {
            let door = context.user_door()?;
            let object = create(context, door.client, 1)?;
            let pages = RawPages::map_object(object, RUNNER_AT, 0, PAGE, RW)?;
            let waiting = kit::server(context, door.owner, 4095, None)?;
            context.settle();
            let registers = pages.trap(TrapArgs::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                RUNNER_AT,
                abi::MessageSizes::from_bits(sizes(64, 0, 0)),
            ))?;
            context.settle();
            context.check(!waiting.finished(), "the pager was asked for the page");
            drop(pages);
            context.close(door.owner)?;
            kit::finished(context, &waiting, "the pager's RECEIVE")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PAGER-032",
        rule: "PAGE_REQUEST (0x081) is a notice only the kernel sends: sent, it is INVALID_FUNCTION",
        section: "6",
        decisions: &[],
        expect: Expect::error("SEND of 0x081", Error::InvalidFunction),
        run: |context| {
            let call = kit::send(
                KernelFunction::PageRequest.function(),
                Descriptor::NULL,
                &[],
                &[],
                64,
            )?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-PAGER-033",
        rule: "a pager touching a missing page of an object its own door pages ends (logged) instead of waiting on itself",
        section: "6.4",
        decisions: &["D22"],
        expect: Expect::error("the peer's ACCESS", Error::PeerDied),
        run: |context| {
            let door = context.user_door()?;
            let object = create(context, door.client, 1)?;
            // The peer owns the door (its descriptor 2) and maps the object (3).
            let peer = context.peer(&[
                DescriptorSlot::moving(door.owner, Rights::DOOR_OWNER),
                DescriptorSlot::copy(object, Rights::MEMORY),
            ])?;
            context.forget(door.owner);
            peer_maps(&peer, 3, PAGE)?;
            let job = touch(context, peer, 0, &[], 1)?;
            let accessed = access_result(context, &job)?;
            Ok(context.observe(accessed.registers))
        },
    },
    Case {
        id: "MSG-PAGER-034",
        rule: "MEMORY_COW of a special object is INVALID_ARGUMENT and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("MEMORY_COW", Error::InvalidArgument),
        run: |context| {
            let door = context.user_door()?;
            let object = create(context, door.client, 1)?;
            let request = MemoryRangeRequest::new(0, PAGE);
            refused_kcall(
                context,
                KernelFunction::MemoryCow,
                object,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-035",
        rule: "a MAP_ANONYMOUS at a fixed address inside a special mapping's missing pages is BAD_ADDRESS_RANGE and changes nothing",
        section: "6.4",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::BadAddressRange),
        run: |context| {
            let door = context.user_door()?;
            let object = create(context, door.client, 4)?;
            let _pages = RawPages::map_object(object, RUNNER_AT, 0, 4 * PAGE, RW)?;
            let request = abi::kcall::MapRequest::new(RUNNER_AT + PAGE, PAGE, RW);
            refused_kcall(
                context,
                KernelFunction::MapAnonymous,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-PAGER-036",
        rule: "a page request is received before the calls queued on the pager's door, even those queued before it",
        section: "6.4",
        decisions: &[],
        expect: Expect::received(
            "the pager's first RECEIVE",
            PAGE_REQUEST,
            COOKIE,
            REQUEST_SIZES,
        ),
        run: |context| {
            let paging = paging(context, 1)?;
            let call = kit::queued(context, paging.door.client, b"call", 64)?;
            let job = touch(context, paging.peer, 0, &[], 1)?;
            let (served, mut buffer) = kit::receive(paging.door.owner, 4095)?;
            kit::reply(
                &mut buffer,
                &Answer::data(&supply(PageSupply::data(), b"x")),
            )?;
            access_result(context, &job)?;
            let (then, mut second) = kit::receive(paging.door.owner, 4095)?;
            context.check(
                then.received.arg0 == u64::from(kit::USER_CALL.0 as u32),
                "the queued call was not received next",
            );
            kit::reply(&mut second, &Answer::data(&[0; 8]))?;
            kit::finished(context, &call, "the queued call")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-PAGER-037",
        rule: "a process that ends while its thread waits for a page takes nothing with it: the pager's later DATA supply is accepted, and once the door and the object are closed the kernel's objects, descriptors, charge and free frames are back where they were",
        section: "6.4",
        decisions: &["D21"],
        expect: Expect::reply_done("the pager's REPLY after the faulting process ended"),
        run: |context| {
            // Once to warm the runner's heap and the kernel's, then measured.
            ended_while_waiting(context)?;
            let (registers, before, after) = ended_while_waiting(context)?;
            context.check(
                after == before,
                &alloc::format!("the kernel's counters went from {before:?} to {after:?}"),
            );
            Ok(context.observe(registers))
        },
    },
];
