//! Special memory objects and their pagers (ABI.md §6.4): PAGER_CREATE,
//! the PAGE_REQUEST a fault on a missing page sends to the pager's door,
//! the DATA, FRAME and FORWARD supplies, error replies, the pager's death
//! and abandon, several threads on one page, a process killed while it
//! waits, the pager's own fault, kernel copies into missing pages, the
//! holes of special mappings, and each refusal changing nothing.

use abi::kcall::protection::{READ, WRITE};
use abi::kcall::{
    MAX_PAGER_HOPS, MemoryRangeRequest, PAGE_SUPPLY_DATA, PageRequest, PageSupply,
    PagerCreateRequest, memory_flags,
};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights, TrapArgs};
use proptest::prelude::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::machine::{Machine, PageFault};
use crate::memory_object::{Fault, PAGE_COST};
use crate::object::OBJECT_COST;
use crate::pager::PagerFailure;
use crate::process::DESCRIPTOR_COST;
use crate::thread::{Holding, ThreadId, ThreadState};

use super::fake_machine::*;
use super::harness::*;

const RW: u32 = READ | WRITE;
const AT: u64 = 0x2000_0000;
const AT2: u64 = 0x3000_0000;
const COOKIE: u64 = 0xC0FFEE;
const PAGE_REQUEST: i32 = KernelFunction::PageRequest as i32;
/// What a RECEIVE of a page request returns in arg3: 24 / 24 / 0.
const REQUEST: u16 = size_of::<PageRequest>() as u16;

fn refused(w: &mut World, expected: Error, call: impl FnOnce(&mut World) -> Result<(), Error>) {
    let before = w.snapshot();
    assert_eq!(call(w), Err(expected));
    assert_eq!(w.snapshot(), before, "a refusal changed something");
    w.assert_invariants();
}

fn pager_create(
    w: &mut World,
    t: ThreadId,
    door: Descriptor,
    pages: u32,
) -> Result<Descriptor, Error> {
    let request = PagerCreateRequest::new(pages, COOKIE);
    w.new_descriptor(t, KernelFunction::PagerCreate, door, request.as_bytes())
}

/// `t` touches `address` as the CPU would, when its access faults: the
/// kernel resolves it, parks the thread, or ends its process.
fn touch(w: &mut World, t: ThreadId, address: u64, write: bool) -> Fault {
    let space = w.space(w.process_of(t));
    let fault = PageFault {
        address,
        present: w.m.page(space, address).is_some(),
        write,
        execute: false,
    };
    w.run(t);
    let outcome = w.k.page_fault(&mut w.m, fault);
    if !matches!(outcome, Fault::Resolved | Fault::Waiting) {
        w.k.fault(&mut w.m);
    }
    outcome
}

/// What `t` reads at `address` without a fault (None: it would fault).
fn visible(w: &World, t: ThreadId, address: u64, length: usize) -> Option<Vec<u8>> {
    let p = w.process_of(t);
    w.m.access(w.space(p), address, length as u64, false).ok()?;
    Some(w.peek(p, address, length))
}

/// A pager's reply: header, supply, then `bytes`.
fn supply(how: PageSupply, bytes: &[u8]) -> Vec<u8> {
    let mut data = vec![0u8; 8];
    data.extend_from_slice(how.as_bytes());
    data.extend_from_slice(bytes);
    data
}

fn error_reply(errno: u32) -> Vec<u8> {
    let mut data = u32::MAX.to_le_bytes().to_vec();
    data.extend_from_slice(&errno.to_le_bytes());
    data
}

/// The server of a fixture, the pager of an object client 0 made on the
/// door and mapped at AT (`pages` pages, read-write).
struct Paged {
    f: Fixture,
    object: Descriptor,
}

fn paged(pages: u32) -> Paged {
    let mut f = fixture(false, 2);
    let c = f.c(0);
    let object = match pager_create(&mut f.w, c, REF, pages) {
        Ok(d) => d,
        Err(e) => panic!("PAGER_CREATE: {e}"),
    };
    let length = u64::from(pages) * PAGE;
    assert_eq!(f.w.memory_map(c, object, AT, 0, length, RW), Ok(AT));
    f.w.assert_invariants();
    Paged { f, object }
}

/// The pager receives the next page request; its data.
fn receive_request(w: &mut World, s: ThreadId) -> PageRequest {
    let regs = w.receive(s, OWNER, RBUF, 64);
    let Some(regs) = regs else {
        panic!("no page request queued");
    };
    assert_eq!(
        regs,
        received(PAGE_REQUEST, COOKIE, 4095, REQUEST, 0).unwrap_or_default()
    );
    let bytes = w.peek(w.process_of(s), RBUF, usize::from(REQUEST));
    match PageRequest::read_from_bytes(&bytes) {
        Ok(r) => r,
        Err(_) => panic!("page request bytes {bytes:?}"),
    }
}

fn reply_data(w: &mut World, s: ThreadId, data: &[u8]) -> Option<TrapArgs> {
    w.reply(s, 0, msg(SBUF, data, 4095))
}

// ----- PAGER_CREATE -----

#[test]
fn a_special_object_is_charged_as_full_and_takes_no_frame() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let cp = f.cp(0);
    let (charged, frames) = (f.w.charged(cp), f.w.m.free_frames());
    let d = pager_create(&mut f.w, c, REF, 3);
    let Ok(d) = d else { panic!("{d:?}") };
    assert_eq!(f.w.m.free_frames(), frames, "no frame until supplied");
    assert_eq!(
        f.w.charged(cp) - charged,
        OBJECT_COST + 3 * PAGE_COST + DESCRIPTOR_COST
    );
    assert_eq!(
        f.w.info(c, d),
        Ok((ObjectKind::Memory as u32, Rights::MEMORY.0))
    );
    assert_eq!(f.w.memory_info(c, d), Ok((3, memory_flags::SPECIAL)));
    // Nothing is mapped until touched.
    assert_eq!(f.w.memory_map(c, d, AT, 0, 3 * PAGE, RW), Ok(AT));
    assert_eq!(visible(&f.w, c, AT, 1), None);
    f.w.assert_invariants();
    assert!(f.w.unmap(c, AT, 3 * PAGE).is_ok());
    assert_eq!(f.w.close(c, d), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!((f.w.charged(cp), f.w.m.free_frames()), (charged, frames));
    f.w.assert_invariants();
}

#[test]
fn create_refusals_change_nothing() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let event = f.w.event_create(c);
    refused(&mut f.w, Error::InvalidArgument, |w| {
        pager_create(w, c, REF, 0).map(|_| ())
    });
    refused(&mut f.w, Error::ReservedBits, |w| {
        let request = PagerCreateRequest::new(1, 0).with_reserved(1);
        w.new_descriptor(c, KernelFunction::PagerCreate, REF, request.as_bytes())
            .map(|_| ())
    });
    refused(&mut f.w, Error::BadSizes, |w| {
        w.new_descriptor(c, KernelFunction::PagerCreate, REF, &[1, 0, 0, 0])
            .map(|_| ())
    });
    refused(&mut f.w, Error::FunctionOutOfRange, |w| {
        pager_create(w, c, Descriptor::NULL, 1).map(|_| ())
    });
    refused(&mut f.w, Error::WrongObjectType, |w| {
        pager_create(w, c, event, 1).map(|_| ())
    });
    refused(&mut f.w, Error::BadDescriptor, |w| {
        pager_create(w, c, Descriptor(77), 1).map(|_| ())
    });
    // The owner reference has no SEND.
    refused(&mut f.w, Error::MissingRight, |w| {
        pager_create(w, s, OWNER, 1).map(|_| ())
    });
    refused(&mut f.w, Error::OutOfMemory, |w| {
        pager_create(w, c, REF, 1 << 20).map(|_| ())
    });
    fill_table(&mut f.w, c);
    refused(&mut f.w, Error::TableFull, |w| {
        pager_create(w, c, REF, 1).map(|_| ())
    });
    // A closed door.
    let sp = f.sp();
    f.w.exit_process(s, 0);
    assert!(!f.w.process_alive(sp));
    let init = f.w.init_thread;
    let init_ref = f.init_ref;
    refused(&mut f.w, Error::PeerDied, |w| {
        pager_create(w, init, init_ref, 1).map(|_| ())
    });
}

#[test]
fn a_special_object_has_no_copy_on_write_child() {
    let mut p = paged(1);
    let c = p.f.c(0);
    let object = p.object;
    refused(&mut p.f.w, Error::InvalidArgument, |w| {
        let request = MemoryRangeRequest::new(0, PAGE);
        w.new_descriptor(c, KernelFunction::MemoryCow, object, request.as_bytes())
            .map(|_| ())
    });
}

// ----- the request and the DATA supply -----

#[test]
fn a_fault_asks_the_pager_and_its_data_becomes_the_page() {
    let mut p = paged(2);
    let (s, c) = (p.f.s(), p.f.c(0));
    // The pager waits first: the request reaches it at once.
    assert_eq!(p.f.w.receive(s, OWNER, RBUF, 64), None);
    assert_eq!(touch(&mut p.f.w, c, AT + PAGE + 5, false), Fault::Waiting);
    assert_eq!(
        p.f.w.state(c),
        ThreadState::Paging {
            object: p.f.w.object_of(p.f.cp(0), p.object),
            page: 1
        }
    );
    assert_eq!(
        p.f.w.resume(s),
        received(PAGE_REQUEST, COOKIE, 4095, REQUEST, 0)
    );
    let bytes = p.f.w.peek(p.f.sp(), RBUF, 24);
    let request = PageRequest::read_from_bytes(&bytes);
    assert_eq!(request.ok(), Some(PageRequest::new(COOKIE, PAGE, READ, 0)));
    p.f.w.assert_invariants();
    let frames = p.f.w.m.free_frames();
    let data = supply(PageSupply::data(), b"computed page");
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    assert_eq!(p.f.w.m.free_frames(), frames - 1, "one frame for the page");
    // The client retries its read: the page is there, zero past the data.
    assert!(p.f.w.runnable(c));
    assert_eq!(p.f.w.resume(c), None, "a fault's retry gets no registers");
    assert_eq!(
        visible(&p.f.w, c, AT + PAGE, 13),
        Some(b"computed page".to_vec())
    );
    assert_eq!(visible(&p.f.w, c, AT + PAGE + 13, 100), Some(vec![0; 100]));
    // Writable as mapped, the frame being the object's alone.
    assert!(p.f.w.user_write(c, AT + PAGE, b"C"));
    // The other page is still missing.
    assert_eq!(visible(&p.f.w, c, AT, 1), None);
    p.f.w.assert_invariants();
}

#[test]
fn a_resident_page_is_never_asked_for_again() {
    let mut p = paged(1);
    let (s, c, c1) = (p.f.s(), p.f.c(0), p.f.c(1));
    assert_eq!(touch(&mut p.f.w, c, AT, true), Fault::Waiting);
    let request = receive_request(&mut p.f.w, s);
    assert_eq!(request.access, WRITE);
    let data = supply(PageSupply::data(), &[0xAB; PAGE_SUPPLY_DATA]);
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    // Another process given the object maps the supplied page at once.
    let slots = [DescriptorSlot::copy(p.object, Rights::MEMORY)];
    let sent =
        p.f.w
            .send(c, USER_FN, REF, msg(SBUF, b"m", 128).slots(&slots));
    assert_eq!(sent, None, "queued: the pager is not receiving");
    let regs = p.f.w.receive(s, OWNER, RBUF, 512);
    assert!(regs.is_some());
    assert_eq!(
        reply_data(&mut p.f.w, s, &[0; 8]),
        Some(TrapArgs::default())
    );
    let theirs = Descriptor(p.f.w.slot_at(p.f.sp(), RBUF + 8).descriptor);
    let _ = c1;
    assert_eq!(p.f.w.memory_map(s, theirs, AT2, 0, PAGE, READ), Ok(AT2));
    let last = PAGE_SUPPLY_DATA as u64;
    assert_eq!(visible(&p.f.w, s, AT2 + last - 1, 2), Some(vec![0xAB, 0]));
    assert!(
        p.f.w
            .k
            .door(p.f.w.object_of(p.f.sp(), OWNER))
            .is_ok_and(|d| d.page_requests.is_empty())
    );
    p.f.w.assert_invariants();
}

#[test]
fn threads_faulting_on_one_page_share_one_request() {
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    let c2 = p.f.w.thread_create(c);
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    assert_eq!(touch(&mut p.f.w, c2, AT + 8, true), Fault::Waiting);
    let door = p.f.w.object_of(p.f.sp(), OWNER);
    assert_eq!(p.f.w.k.door(door).map(|d| d.page_requests.len()), Ok(1));
    p.f.w.assert_invariants();
    receive_request(&mut p.f.w, s);
    assert_eq!(p.f.w.receive(s, OWNER, RBUF, 64), None, "no second request");
    // That RECEIVE abandoned the request: both threads' process ends.
    assert!(!p.f.w.process_alive(p.f.cp(0)));
    assert_eq!(
        p.f.w.k.pop_pager_failure().map(|(_, f)| f),
        Some(PagerFailure::Abandoned)
    );
    p.f.w.assert_invariants();

    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    let c2 = p.f.w.thread_create(c);
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    assert_eq!(touch(&mut p.f.w, c2, AT + 8, true), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    let data = supply(PageSupply::data(), b"both");
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    assert!(p.f.w.runnable(c) && p.f.w.runnable(c2));
    assert_eq!(visible(&p.f.w, c2, AT, 4), Some(b"both".to_vec()));
    p.f.w.assert_invariants();
}

// ----- the FRAME supply -----

#[test]
fn a_frame_of_the_pagers_object_is_shared_copy_on_write() {
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    let own = p.f.w.memory_ok(s, 2);
    assert_eq!(p.f.w.memory_map(s, own, AT2, 0, 2 * PAGE, RW), Ok(AT2));
    assert!(p.f.w.user_write(s, AT2 + PAGE, b"from the pager's memory"));
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    let frames = p.f.w.m.free_frames();
    let data = supply(PageSupply::frame(own, PAGE), &[]);
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    assert_eq!(
        p.f.w.m.free_frames(),
        frames,
        "the frame is shared, not copied"
    );
    assert_eq!(
        visible(&p.f.w, c, AT, 23),
        Some(b"from the pager's memory".to_vec())
    );
    p.f.w.assert_invariants();
    // Either side's write copies; the other keeps what it saw.
    assert!(p.f.w.user_write(c, AT, b"client"));
    assert_eq!(visible(&p.f.w, s, AT2 + PAGE, 6), Some(b"from t".to_vec()));
    assert!(p.f.w.user_write(s, AT2 + PAGE, b"pager!"));
    assert_eq!(visible(&p.f.w, c, AT, 6), Some(b"client".to_vec()));
    p.f.w.assert_invariants();
}

// ----- FORWARD -----

#[test]
fn a_pager_forwards_the_request_down_the_chain() {
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    // A second pager: init's door, its owner kept by init.
    let init = p.f.w.init_thread;
    let (owner2, client2) = p.f.w.door_create(init, false);
    // The first pager gets a client reference to the second's door.
    let slots = [DescriptorSlot::copy(client2, Rights::DOOR_CLIENT)];
    assert_eq!(p.f.w.receive(s, OWNER, RBUF, 512), None);
    let init_ref = p.f.init_ref;
    assert_eq!(
        p.f.w
            .send(init, USER_FN, init_ref, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    assert!(p.f.w.resume(s).is_some());
    let next = Descriptor(p.f.w.slot_at(p.f.sp(), RBUF + 8).descriptor);
    assert_eq!(
        reply_data(&mut p.f.w, s, &[0; 8]),
        Some(TrapArgs::default())
    );
    assert!(p.f.w.resume(init).is_some());

    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    let forward = supply(PageSupply::forward(next), &[]);
    assert_eq!(
        reply_data(&mut p.f.w, s, &forward),
        Some(TrapArgs::default())
    );
    assert!(matches!(p.f.w.state(c), ThreadState::Paging { .. }));
    p.f.w.assert_invariants();
    // The second pager receives it, one hop on.
    let regs = p.f.w.receive(init, owner2, RBUF, 64);
    assert_eq!(regs, received(PAGE_REQUEST, COOKIE, 4095, REQUEST, 0));
    let bytes = p.f.w.peek(p.f.w.init, RBUF, 24);
    let request = PageRequest::read_from_bytes(&bytes);
    assert_eq!(request.map(|r| r.hops).ok(), Some(1));
    let data = supply(PageSupply::data(), b"second");
    assert_eq!(
        reply_data(&mut p.f.w, init, &data),
        Some(TrapArgs::default())
    );
    assert_eq!(visible(&p.f.w, c, AT, 6), Some(b"second".to_vec()));
    p.f.w.assert_invariants();
}

#[test]
fn a_request_forwarded_too_often_is_refused_and_stays_held() {
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    // The pager forwards to its own door through a client reference.
    let own = match p.f.w.duplicate(c, REF, Rights::DOOR_CLIENT) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let slots = [DescriptorSlot::moving(own, Rights::DOOR_CLIENT)];
    assert_eq!(p.f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(
        p.f.w
            .send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    assert!(p.f.w.resume(s).is_some());
    let itself = Descriptor(p.f.w.slot_at(p.f.sp(), RBUF + 8).descriptor);
    assert_eq!(
        reply_data(&mut p.f.w, s, &[0; 8]),
        Some(TrapArgs::default())
    );
    assert!(p.f.w.resume(c).is_some());
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    let forward = supply(PageSupply::forward(itself), &[]);
    for hop in 0..MAX_PAGER_HOPS {
        assert_eq!(receive_request(&mut p.f.w, s).hops, hop);
        assert_eq!(
            reply_data(&mut p.f.w, s, &forward),
            Some(TrapArgs::default())
        );
    }
    assert_eq!(receive_request(&mut p.f.w, s).hops, MAX_PAGER_HOPS);
    refused(&mut p.f.w, Error::InvalidArgument, |w| {
        w.reply(s, 0, msg(SBUF, &forward, 4095))
            .and_then(|r| r.kernel_error())
            .map_or(Ok(()), Err)
    });
    // An answer still supplies it.
    let data = supply(PageSupply::data(), b"at last");
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    assert_eq!(visible(&p.f.w, c, AT, 7), Some(b"at last".to_vec()));
    p.f.w.assert_invariants();
}

// ----- refusals of a supply -----

#[test]
fn supply_refusals_change_nothing_and_the_request_stays_held() {
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    let own = p.f.w.memory_ok(s, 1);
    let missing = match pager_create(&mut p.f.w, c, REF, 1) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let event = p.f.w.event_create(s);
    let read_nothing = match p.f.w.duplicate(s, own, Rights::TRANSFER) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let _ = missing;
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    let cases: Vec<(Error, Vec<u8>)> = vec![
        (Error::BadSizes, vec![]),
        (Error::BadSizes, vec![0; 7]),
        (Error::BadSizes, vec![0; 8]),
        (
            Error::BadSizes,
            supply(PageSupply::data(), &[])[..23].to_vec(),
        ),
        (
            Error::InvalidArgument,
            supply(
                PageSupply {
                    how: 9,
                    ..PageSupply::data()
                },
                &[],
            ),
        ),
        (
            Error::ReservedBits,
            supply(
                PageSupply {
                    descriptor: 1,
                    ..PageSupply::data()
                },
                &[],
            ),
        ),
        (
            Error::ReservedBits,
            supply(
                PageSupply {
                    offset: PAGE,
                    ..PageSupply::forward(OWNER)
                },
                &[],
            ),
        ),
        (
            Error::BadDescriptor,
            supply(PageSupply::frame(Descriptor(900), 0), &[]),
        ),
        (
            Error::WrongObjectType,
            supply(PageSupply::frame(event, 0), &[]),
        ),
        (
            Error::MissingRight,
            supply(PageSupply::frame(read_nothing, 0), &[]),
        ),
        (
            Error::InvalidArgument,
            supply(PageSupply::frame(own, PAGE), &[]),
        ),
        (
            Error::InvalidArgument,
            supply(PageSupply::frame(own, 5), &[]),
        ),
        (
            Error::WrongObjectType,
            supply(PageSupply::forward(own), &[]),
        ),
        // The owner reference has no SEND.
        (Error::MissingRight, supply(PageSupply::forward(OWNER), &[])),
        (
            Error::BadDescriptor,
            supply(PageSupply::forward(Descriptor(900)), &[]),
        ),
    ];
    for (expected, data) in cases {
        refused(&mut p.f.w, expected, |w| {
            w.reply(s, 0, msg(SBUF, &data, 4095))
                .and_then(|r| r.kernel_error())
                .map_or(Ok(()), Err)
        });
        assert!(matches!(p.f.w.holding(s), Holding::Page { .. }));
        assert!(matches!(p.f.w.state(c), ThreadState::Paging { .. }));
    }
    // Slots in the reply.
    let slots = [DescriptorSlot::copy(own, Rights::MEMORY)];
    let data = supply(PageSupply::data(), &[]);
    refused(&mut p.f.w, Error::BadSizes, |w| {
        w.reply(s, 0, msg(SBUF, &data, 4000).slots(&slots))
            .and_then(|r| r.kernel_error())
            .map_or(Ok(()), Err)
    });
    // No frame left for DATA.
    p.f.w.m.frame_limit = Some(0);
    refused(&mut p.f.w, Error::OutOfMemory, |w| {
        w.reply(s, 0, msg(SBUF, &data, 4095))
            .and_then(|r| r.kernel_error())
            .map_or(Ok(()), Err)
    });
    p.f.w.m.frame_limit = None;
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    assert_eq!(visible(&p.f.w, c, AT, 4), Some(vec![0; 4]));
    p.f.w.assert_invariants();
}

// ----- failures: nothing waits forever -----

#[test]
fn an_error_reply_ends_the_faulting_process_and_the_pager_goes_on() {
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    let cp = p.f.cp(0);
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    assert_eq!(
        reply_data(&mut p.f.w, s, &error_reply(Error::InvalidArgument as u32)),
        Some(TrapArgs::default())
    );
    assert!(!p.f.w.process_alive(cp));
    assert_eq!(
        p.f.w.k.pop_pager_failure().map(|(_, f)| f),
        Some(PagerFailure::ErrorReply(Error::InvalidArgument as u32))
    );
    assert!(p.f.w.process_alive(p.f.sp()));
    assert_eq!(p.f.w.holding(s), Holding::Nothing);
    p.f.w.assert_invariants();
}

#[test]
fn the_pagers_death_ends_the_processes_waiting_on_it() {
    // Queued, not received yet.
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    p.f.w.exit_process(s, 0);
    assert!(!p.f.w.process_alive(p.f.cp(0)));
    assert_eq!(
        p.f.w.k.pop_pager_failure().map(|(_, f)| f),
        Some(PagerFailure::PagerGone)
    );
    p.f.w.assert_invariants();
    // Received and being served.
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    p.f.w.exit_process(s, 0);
    assert!(!p.f.w.process_alive(p.f.cp(0)));
    p.f.w.assert_invariants();
    // Its serving thread alone exits.
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    let s2 = p.f.w.thread_create(s);
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    p.f.w.exit_thread(s, 0);
    assert!(!p.f.w.process_alive(p.f.cp(0)));
    assert!(p.f.w.alive(s2));
    p.f.w.assert_invariants();
    // A fault on a page of a dead pager's object ends at once.
    let c1 = p.f.c(1);
    let _ = c1;
    let mut p = paged(1);
    let (s, c) = (p.f.s(), p.f.c(0));
    p.f.w.exit_process(s, 0);
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::PagerGone);
    assert!(!p.f.w.process_alive(p.f.cp(0)));
    p.f.w.assert_invariants();
}

#[test]
fn a_process_killed_while_it_waits_loses_nothing_and_leaks_nothing() {
    let mut p = paged(1);
    let (s, c, c1) = (p.f.s(), p.f.c(0), p.f.c(1));
    let cp = p.f.cp(0);
    let start = p.f.w.m.free_frames();
    // The other client's own memory, which must come through untouched.
    let theirs = p.f.w.memory_ok(c1, 1);
    assert_eq!(p.f.w.memory_map(c1, theirs, AT2, 0, PAGE, RW), Ok(AT2));
    assert!(p.f.w.user_write(c1, AT2, b"mine"));
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    receive_request(&mut p.f.w, s);
    // The faulting process is killed (its last thread in another... here
    // by its parent's view: init ends it through its handle's death path).
    p.f.w.k.end_process(&mut p.f.w.m, cp, 9);
    p.f.w.assert_invariants();
    // The pager's reply still lands, in an object nobody holds any more.
    let data = supply(PageSupply::data(), b"late");
    assert_eq!(reply_data(&mut p.f.w, s, &data), Some(TrapArgs::default()));
    p.f.w.assert_invariants();
    assert_eq!(visible(&p.f.w, c1, AT2, 4), Some(b"mine".to_vec()));
    // The object went with its last reference: only c1's frame is taken.
    assert_eq!(p.f.w.m.free_frames(), start - 1);
    assert!(p.f.w.k.pop_pager_failure().is_none());
}

#[test]
fn a_pager_touching_a_page_it_supplies_ends_instead_of_waiting_on_itself() {
    let mut f = fixture(false, 1);
    let s = f.s();
    // The server makes a special object on its own door (a client
    // reference to it) and touches it.
    let c = f.c(0);
    let d = match pager_create(&mut f.w, c, REF, 1) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let slots = [DescriptorSlot::copy(d, Rights::MEMORY)];
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    assert!(f.w.resume(s).is_some());
    let theirs = Descriptor(f.w.slot_at(f.sp(), RBUF + 8).descriptor);
    assert_eq!(
        f.w.reply(s, 0, msg(SBUF, &[0; 8], 128)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.memory_map(s, theirs, AT, 0, PAGE, READ), Ok(AT));
    assert_eq!(touch(&mut f.w, s, AT, false), Fault::PagerSelf);
    assert!(!f.w.process_alive(f.sp()));
    f.w.assert_invariants();
}

// ----- kernel copies and the holes of special mappings -----

#[test]
fn a_kernel_copy_into_a_missing_page_is_bad_buffer_and_asks_nobody() {
    let mut p = paged(2);
    let (s, c) = (p.f.s(), p.f.c(0));
    // A kernel function's reply into a missing page.
    refused(&mut p.f.w, Error::BadBuffer, |w| {
        let regs = w.trap(
            c,
            TrapArgs::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                AT,
                sizes(128, 0, 0),
            ),
        );
        regs.and_then(|r| r.kernel_error()).map_or(Ok(()), Err)
    });
    // A call whose buffer lies there.
    refused(&mut p.f.w, Error::BadBuffer, |w| {
        let regs = w.trap(
            c,
            TrapArgs::send(
                abi::function::Function(USER_FN),
                REF,
                AT + PAGE,
                sizes(64, 0, 0),
            ),
        );
        regs.and_then(|r| r.kernel_error()).map_or(Ok(()), Err)
    });
    let door = p.f.w.object_of(p.f.sp(), OWNER);
    assert_eq!(p.f.w.k.door(door).map(|d| d.page_requests.len()), Ok(0));
    let _ = s;
}

#[test]
fn nothing_is_mapped_into_the_holes_and_protect_covers_them() {
    let mut p = paged(4);
    let c = p.f.c(0);
    // A fixed mapping into a hole is refused.
    refused(&mut p.f.w, Error::BadAddressRange, |w| {
        let request = abi::kcall::MapRequest::new(AT + PAGE, PAGE, RW);
        let regs = w.kcall(
            c,
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            request.as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    });
    let other = p.f.w.memory_ok(c, 1);
    refused(&mut p.f.w, Error::BadAddressRange, |w| {
        w.memory_map(c, other, AT + 2 * PAGE, 0, PAGE, READ)
            .map(|_| ())
    });
    // PROTECT over the holes narrows the mapping; a later supply obeys it.
    assert_eq!(p.f.w.protect(c, AT, 4 * PAGE, READ), Ok(()));
    assert_eq!(touch(&mut p.f.w, c, AT, true), Fault::Violation);
    assert!(!p.f.w.process_alive(p.f.cp(0)));
    p.f.w.assert_invariants();
}

#[test]
fn placed_mappings_keep_clear_of_the_holes() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let d = match pager_create(&mut f.w, c, REF, 8) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    // Placed where the kernel chooses: the first placed mapping.
    let placed = f.w.memory_map(c, d, 0, 0, 8 * PAGE, RW);
    let Ok(at) = placed else { panic!("{placed:?}") };
    // The next placements must not fall into its (unmapped) pages.
    for _ in 0..4 {
        let request = abi::kcall::MapRequest::new(0, PAGE, RW);
        let reply = f.w.kcall_ok(
            c,
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            request.as_bytes(),
        );
        let address = u64::from_le_bytes(reply.payload[..8].try_into().unwrap_or_default());
        assert!(
            address + PAGE <= at || address >= at + 8 * PAGE,
            "{address:#x} in the holes"
        );
        let object = f.w.memory_ok(c, 1);
        let placed = f.w.memory_map(c, object, 0, 0, PAGE, READ);
        let Ok(address) = placed else {
            panic!("{placed:?}")
        };
        assert!(
            address + PAGE <= at || address >= at + 8 * PAGE,
            "{address:#x} in the holes"
        );
    }
    f.w.assert_invariants();
}

// ----- a churn with leaks counted -----

#[test]
fn a_thousand_faults_served_and_failed_leave_nothing_behind() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let cp = f.cp(0);
    let start = (f.w.m.free_frames(), f.w.charged(cp), f.w.k.counters());
    for round in 0..1000u32 {
        let d = match pager_create(&mut f.w, c, REF, 2) {
            Ok(d) => d,
            Err(e) => panic!("round {round}: {e}"),
        };
        assert_eq!(f.w.memory_map(c, d, AT, 0, 2 * PAGE, RW), Ok(AT));
        let page = u64::from(round % 2);
        assert_eq!(
            touch(&mut f.w, c, AT + page * PAGE, round % 3 == 0),
            Fault::Waiting
        );
        let request = receive_request(&mut f.w, s);
        assert_eq!(request.offset, page * PAGE);
        if round % 5 == 4 {
            // Served after an abandoned-looking refusal: a bad reply first.
            assert_eq!(
                reply_data(&mut f.w, s, &[0; 8]),
                Some(TrapArgs::error(Error::BadSizes))
            );
        }
        let data = supply(PageSupply::data(), &round.to_le_bytes());
        assert_eq!(reply_data(&mut f.w, s, &data), Some(TrapArgs::default()));
        assert_eq!(
            visible(&f.w, c, AT + page * PAGE, 4),
            Some(round.to_le_bytes().to_vec())
        );
        assert!(f.w.unmap(c, AT, 2 * PAGE).is_ok());
        assert_eq!(f.w.close(c, d), kernel_ok(0, 0, 0).unwrap_or_default());
        if round % 100 == 0 {
            f.w.assert_invariants();
        }
    }
    let end = (f.w.m.free_frames(), f.w.charged(cp), f.w.k.counters());
    assert_eq!(end, start);
    f.w.assert_invariants();
}

#[test]
fn a_server_answering_a_call_receives_the_page_request_queued_meanwhile() {
    let mut p = paged(1);
    let (s, c, c1) = (p.f.s(), p.f.c(0), p.f.c(1));
    assert_eq!(p.f.w.receive(s, OWNER, RBUF, 4095), None);
    assert_eq!(p.f.w.send(c1, USER_FN, REF, msg(SBUF, b"call", 64)), None);
    assert!(p.f.w.resume(s).is_some());
    assert_eq!(touch(&mut p.f.w, c, AT, false), Fault::Waiting);
    // The answer and the next receive: the page request, not a wait (the
    // IPC fast path must leave this case to the slow one).
    let regs = p.f.w.reply_receive(s, 0, msg(RBUF, b"answer", 4095));
    assert_eq!(regs, received(PAGE_REQUEST, COOKIE, 4095, REQUEST, 0));
    assert!(p.f.w.resume(c1).is_some());
    p.f.w.assert_invariants();
}

// ----- random sequences -----

/// One step of a random pager sequence.
#[derive(Clone, Copy, Debug)]
enum PagerOp {
    /// Client `client` touches page `page` (a write or a read).
    Touch {
        client: usize,
        page: u64,
        write: bool,
    },
    /// The pager receives (when it holds a request: it abandons it).
    Receive,
    /// The pager answers the request it holds: 0 DATA, 1 FRAME of its own
    /// object, 2 FORWARD to its own door, 3 an error reply, 4 a refused
    /// (malformed) supply.
    Supply(u8),
    /// Client `client`'s process ends, whatever it was doing.
    Kill { client: usize },
    /// Client `client` closes its reference to its object (its mapping
    /// keeps the object).
    Close { client: usize },
}

fn pager_op() -> impl Strategy<Value = PagerOp> {
    prop_oneof![
        4 => (0usize..2, 0u64..3, any::<bool>())
            .prop_map(|(client, page, write)| PagerOp::Touch { client, page, write }),
        3 => Just(PagerOp::Receive),
        4 => (0u8..5).prop_map(PagerOp::Supply),
        1 => (0usize..2).prop_map(|client| PagerOp::Kill { client }),
        1 => (0usize..2).prop_map(|client| PagerOp::Close { client }),
    ]
}

/// The world of a random sequence: a pager (the fixture's server, with a
/// memory object of its own and a client reference to its own door) and
/// two clients, each mapping a 3-page special object of their own at AT.
struct Random {
    f: Fixture,
    objects: [Option<Descriptor>; 2],
    own: Descriptor,
    itself: Descriptor,
}

fn random_world() -> Random {
    let mut f = fixture(false, 2);
    let s = f.s();
    let own = f.w.memory_ok(s, 3);
    assert_eq!(f.w.memory_map(s, own, AT2, 0, 3 * PAGE, RW), Ok(AT2));
    assert!(f.w.user_write(s, AT2 + PAGE, b"own"));
    // A client reference to its own door, for FORWARD.
    let c = f.c(0);
    let copy = match f.w.duplicate(c, REF, Rights::DOOR_CLIENT) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let slots = [DescriptorSlot::moving(copy, Rights::DOOR_CLIENT)];
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    assert!(f.w.resume(s).is_some());
    let itself = Descriptor(f.w.slot_at(f.sp(), RBUF + 8).descriptor);
    assert_eq!(
        f.w.reply(s, 0, msg(SBUF, &[0; 8], 128)),
        Some(TrapArgs::default())
    );
    assert!(f.w.resume(c).is_some());
    let mut objects = [None, None];
    for (client, slot) in objects.iter_mut().enumerate() {
        let t = f.c(client);
        let d = match pager_create(&mut f.w, t, REF, 3) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(f.w.memory_map(t, d, AT, 0, 3 * PAGE, RW), Ok(AT));
        *slot = Some(d);
    }
    Random {
        f,
        objects,
        own,
        itself,
    }
}

fn apply_pager_op(r: &mut Random, op: PagerOp) {
    let s = r.f.s();
    let _ = r.f.w.resume(s);
    match op {
        PagerOp::Touch {
            client,
            page,
            write,
        } => {
            let t = r.f.c(client);
            if r.f.w.runnable(t) {
                let _ = r.f.w.resume(t);
                let space = r.f.w.space(r.f.w.process_of(t));
                let address = AT + page * PAGE;
                if r.f.w.m.access(space, address, 1, write).is_err() {
                    touch(&mut r.f.w, t, address, write);
                }
            }
        }
        PagerOp::Receive => {
            if r.f.w.runnable(s) {
                let _ = r.f.w.receive(s, OWNER, RBUF, 4095);
            }
        }
        PagerOp::Supply(how) => {
            if r.f.w.runnable(s) && matches!(r.f.w.holding(s), Holding::Page { .. }) {
                let data = match how {
                    0 => supply(PageSupply::data(), b"random"),
                    1 => supply(PageSupply::frame(r.own, PAGE), &[]),
                    2 => supply(PageSupply::forward(r.itself), &[]),
                    3 => error_reply(Error::InvalidArgument as u32),
                    _ => supply(PageSupply::frame(r.own, 5), &[]),
                };
                let _ = r.f.w.reply(s, 0, msg(SBUF, &data, 4095));
            }
        }
        PagerOp::Kill { client } => {
            let p = r.f.cp(client);
            if r.f.w.process_alive(p) {
                r.f.w.k.end_process(&mut r.f.w.m, p, 9);
                r.f.w.k.reschedule();
            }
        }
        PagerOp::Close { client } => {
            let t = r.f.c(client);
            if r.f.w.runnable(t)
                && let Some(d) = r.objects[client].take()
            {
                let _ = r.f.w.resume(t);
                r.f.w.close(t, d);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random faults, receives, supplies of every kind (and refused ones),
    /// abandons, error replies, kills and closes keep every invariant
    /// after each step (requests against doors, waiting threads and
    /// holders, references, frames against their holders, charges); once
    /// the clients and the pager have ended no object frame is left.
    #[test]
    fn random_pager_sequences_keep_every_invariant(ops in prop::collection::vec(pager_op(), 1..40)) {
        let mut r = random_world();
        for (i, op) in ops.iter().enumerate() {
            apply_pager_op(&mut r, *op);
            let violations = r.f.w.violations();
            prop_assert!(violations.is_empty(), "after op {} {:?}:\n{}", i, op, violations.join("\n"));
        }
        for p in [r.f.cp(0), r.f.cp(1), r.f.sp()] {
            if r.f.w.process_alive(p) {
                r.f.w.k.end_process(&mut r.f.w.m, p, 0);
            }
        }
        r.f.w.k.reschedule();
        let violations = r.f.w.violations();
        prop_assert!(violations.is_empty(), "at the end:\n{}", violations.join("\n"));
        prop_assert!(r.f.w.m.frames.is_empty(), "object frames left: {:?}", r.f.w.m.frames.keys());
        prop_assert!(r.f.w.k.frames.is_empty());
    }
}
