//! Building a process from outside (ABI.md §6.8): PROCESS_CREATE,
//! PROCESS_MAP, PROCESS_START, each refusal changing nothing, the child
//! never widening what its loader mapped, and an unstarted process ending
//! with the last reference to its handle (or its creator) with every frame
//! and charge back.

use abi::kcall::protection::{EXECUTE, READ, WRITE};
use abi::kcall::{ProcessMapRequest, ProcessStartRequest};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use crate::machine::Machine;
use crate::process::ProcessId;
use crate::thread::ThreadId;

use super::fake_machine::*;
use super::harness::*;

const TEXT: u64 = 0x50_0000;
/// The child's data: where the harness keeps its kernel-call buffer, so
/// the child can make calls once it runs.
const DATA_AT: u64 = KBUF & !0xfff;
/// Where init maps the objects it fills.
const INIT_AT: u64 = 0x2000_0000;

/// PROCESS_CREATE by init with `slots`: the handle and the process.
fn create(w: &mut World, slots: &[DescriptorSlot]) -> Result<(Descriptor, ProcessId), Error> {
    let t = w.init_thread;
    let regs = w.kcall_msg(
        t,
        KernelFunction::ProcessCreate,
        CAP_PROCESS,
        msg(KBUF, &[], KTOTAL).slots(slots),
    );
    if let Some(e) = regs.kernel_error() {
        return Err(e);
    }
    let reply = w.parse_reply(w.init, KBUF, regs);
    let handle = Descriptor(reply.slots[0].descriptor);
    let object = w.object_of(w.init, handle);
    match w.k.objects.get(object).map(|o| &o.body) {
        Some(crate::object::ObjectBody::Process(p)) => Ok((handle, *p)),
        other => panic!("PROCESS_CREATE handle names {other:?}"),
    }
}

fn process_map(w: &mut World, handle: Descriptor, request: ProcessMapRequest) -> Result<(), Error> {
    let t = w.init_thread;
    let regs = w.kcall(t, KernelFunction::ProcessMap, handle, request.as_bytes());
    regs.kernel_error().map_or(Ok(()), Err)
}

fn process_start(
    w: &mut World,
    handle: Descriptor,
    request: ProcessStartRequest,
) -> Result<(), Error> {
    let t = w.init_thread;
    let regs = w.kcall(t, KernelFunction::ProcessStart, handle, request.as_bytes());
    regs.kernel_error().map_or(Ok(()), Err)
}

/// A memory object of `pages` pages whose first bytes are `bytes`, made
/// and filled by init (mapped at `INIT_AT`, unmapped again).
fn filled(w: &mut World, pages: u32, bytes: &[u8]) -> Descriptor {
    let t = w.init_thread;
    let memory = w.memory_ok(t, pages);
    let length = u64::from(pages) * PAGE;
    assert_eq!(
        w.memory_map(t, memory, INIT_AT, 0, length, READ | WRITE),
        Ok(INIT_AT)
    );
    assert!(w.user_write(t, INIT_AT, bytes));
    assert_eq!(w.unmap(t, INIT_AT, length), Ok(()));
    memory
}

fn the_thread(w: &World, p: ProcessId) -> ThreadId {
    match w.k.processes.get(p).map(|p| p.threads.as_slice()) {
        Some([t]) => *t,
        other => panic!("threads {other:?}"),
    }
}

/// What a successful CLOSE returns.
fn closed() -> TrapArgs {
    kernel_ok(0, 0, 0).unwrap_or_default()
}

const START: ProcessStartRequest = ProcessStartRequest::new(TEXT, 0x7fff_0000, 0x7fff_0010, 5);

#[test]
fn a_loader_builds_a_process_that_runs_what_it_mapped() {
    let mut w = World::new();
    let init = w.init_thread;
    let event = w.event_create(init);
    let event_object = w.object_of(w.init, event);
    let text = filled(&mut w, 1, b"\x90\x90text");
    let data = filled(&mut w, 2, b"data");
    let (handle, child) = match create(&mut w, &[DescriptorSlot::moving(event, Rights::EVENT)]) {
        Ok(made) => made,
        Err(e) => panic!("PROCESS_CREATE: {e}"),
    };
    // The event moved into the child as its descriptor 1; no thread yet.
    assert!(
        w.reference(w.init, event)
            .is_none_or(|r| r.object != event_object)
    );
    assert_eq!(w.object_of(child, Descriptor(1)), event_object);
    assert!(
        w.k.processes
            .get(child)
            .is_some_and(|p| p.threads.is_empty())
    );
    assert_eq!(
        process_map(
            &mut w,
            handle,
            ProcessMapRequest::new(text, TEXT, 0, PAGE, READ | EXECUTE)
        ),
        Ok(())
    );
    assert_eq!(
        process_map(
            &mut w,
            handle,
            ProcessMapRequest::new(data, DATA_AT, 0, 2 * PAGE, READ | WRITE)
        ),
        Ok(())
    );
    assert_eq!(w.peek(child, TEXT, 6), b"\x90\x90text".to_vec());
    assert_eq!(w.peek(child, DATA_AT, 4), b"data".to_vec());
    assert_eq!(process_start(&mut w, handle, START), Ok(()));
    let thread = the_thread(&w, child);
    let space = w.space(child);
    let start = w.m.contexts.get(&thread).map(|(s, start)| (*s, *start));
    assert_eq!(
        start,
        Some((
            space,
            crate::machine::UserStart {
                entry: TEXT,
                stack_pointer: 0x7fff_0000,
                arg0: 0x7fff_0010,
                arg1: 5,
                arg2: 1,
            }
        ))
    );
    // Built before it runs, never after.
    let before = w.snapshot();
    assert_eq!(
        process_start(&mut w, handle, START),
        Err(Error::ProcessStarted)
    );
    assert_eq!(
        process_map(
            &mut w,
            handle,
            ProcessMapRequest::new(text, 0x50_0000, 0, PAGE, READ)
        ),
        Err(Error::ProcessStarted)
    );
    assert_eq!(w.snapshot(), before);
    // The child may narrow, never widen, what its loader mapped, though
    // the loader's reference allowed more.
    assert_eq!(
        w.protect(thread, TEXT, PAGE, READ | WRITE),
        Err(Error::MissingRight)
    );
    assert_eq!(w.protect(thread, TEXT, PAGE, READ), Ok(()));
    assert_eq!(w.protect(thread, TEXT, PAGE, READ | EXECUTE), Ok(()));
    assert!(w.user_write(thread, DATA_AT + PAGE, b"mine"));
    // A started process does not end with its handle.
    assert_eq!(w.close(init, handle), closed());
    assert!(w.alive(thread));
    w.assert_invariants();
}

#[test]
fn every_refusal_has_its_error_and_changes_nothing() {
    let mut w = World::new();
    let init = w.init_thread;
    let memory = filled(&mut w, 2, b"x");
    let read_only = match w.duplicate(init, memory, Rights(Rights::MAP_READ.0)) {
        Ok(d) => d,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    let event = w.event_create(init);
    let (handle, _) = match create(&mut w, &[]) {
        Ok(made) => made,
        Err(e) => panic!("PROCESS_CREATE: {e}"),
    };
    assert_eq!(
        process_map(
            &mut w,
            handle,
            ProcessMapRequest::new(memory, TEXT, 0, PAGE, READ)
        ),
        Ok(())
    );
    let no_send = match w.duplicate(init, handle, Rights(Rights::DUPLICATE.0)) {
        Ok(d) => d,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    let map = |memory, address, offset, length, protection| {
        ProcessMapRequest::new(memory, address, offset, length, protection)
    };
    let cases: Vec<(Descriptor, ProcessMapRequest, Error)> = vec![
        (
            handle,
            map(memory, DATA_AT, 0, PAGE, READ | 8),
            Error::ReservedBits,
        ),
        (
            handle,
            map(memory, DATA_AT, 0, PAGE, WRITE),
            Error::InvalidArgument,
        ),
        (
            handle,
            map(memory, 0, 0, PAGE, READ),
            Error::InvalidArgument,
        ),
        (
            handle,
            map(memory, DATA_AT + 1, 0, PAGE, READ),
            Error::InvalidArgument,
        ),
        (
            handle,
            map(memory, DATA_AT, 0, 0, READ),
            Error::InvalidArgument,
        ),
        (
            handle,
            map(memory, DATA_AT, PAGE, 2 * PAGE, READ),
            Error::InvalidArgument,
        ),
        (
            handle,
            map(memory, DATA_AT, 100, PAGE, READ),
            Error::InvalidArgument,
        ),
        (
            handle,
            map(memory, abi::process::USER_END, 0, PAGE, READ),
            Error::BadAddressRange,
        ),
        (
            handle,
            map(Descriptor(999), DATA_AT, 0, PAGE, READ),
            Error::BadDescriptor,
        ),
        (
            handle,
            map(event, DATA_AT, 0, PAGE, READ),
            Error::WrongObjectType,
        ),
        (
            handle,
            map(read_only, DATA_AT, 0, PAGE, READ | WRITE),
            Error::MissingRight,
        ),
        (
            handle,
            map(memory, TEXT, 0, PAGE, READ),
            Error::BadAddressRange,
        ),
        (
            no_send,
            map(memory, DATA_AT, 0, PAGE, READ),
            Error::MissingRight,
        ),
        (
            event,
            map(memory, DATA_AT, 0, PAGE, READ),
            Error::WrongObjectType,
        ),
        (
            CAP_PROCESS,
            map(memory, DATA_AT, 0, PAGE, READ),
            Error::WrongObjectType,
        ),
    ];
    for (target, request, expected) in cases {
        let before = w.snapshot();
        assert_eq!(
            process_map(&mut w, target, request),
            Err(expected),
            "{request:?}"
        );
        assert_eq!(w.snapshot(), before, "{request:?}");
    }
    let starts = [
        (
            handle,
            ProcessStartRequest::new(abi::process::USER_END, 0x7fff_0000, 0, 0),
        ),
        (handle, ProcessStartRequest::new(TEXT, 0x7fff_0008, 0, 0)),
        (
            handle,
            ProcessStartRequest::new(TEXT, abi::process::USER_END, 0, 0),
        ),
        (
            handle,
            ProcessStartRequest::new(TEXT, 0x7fff_0000, u64::MAX, 2),
        ),
        (
            handle,
            ProcessStartRequest::new(TEXT, 0x7fff_0000, abi::process::USER_END, 1),
        ),
    ];
    for (target, request) in starts {
        let before = w.snapshot();
        assert_eq!(
            process_start(&mut w, target, request),
            Err(Error::InvalidArgument)
        );
        assert_eq!(w.snapshot(), before, "{request:?}");
    }
    let before = w.snapshot();
    assert_eq!(
        process_start(&mut w, no_send, START),
        Err(Error::MissingRight)
    );
    // PROCESS_CREATE takes no request bytes.
    let regs = w.kcall(init, KernelFunction::ProcessCreate, CAP_PROCESS, &[0; 8]);
    assert_eq!(regs, TrapArgs::error(Error::BadSizes));
    assert_eq!(w.snapshot(), before);
    w.assert_invariants();
}

#[test]
fn an_unstarted_process_ends_with_its_last_handle_and_gives_everything_back() {
    let mut w = World::new();
    let init = w.init_thread;
    let before = (w.counters(), w.m.free_frames(), w.charged(w.init));
    let memory = filled(&mut w, 3, b"image");
    let (handle, child) = match create(&mut w, &[]) {
        Ok(made) => made,
        Err(e) => panic!("PROCESS_CREATE: {e}"),
    };
    assert_eq!(
        process_map(
            &mut w,
            handle,
            ProcessMapRequest::new(memory, TEXT, 0, 3 * PAGE, READ)
        ),
        Ok(())
    );
    let copy = match w.duplicate(init, handle, Rights::HANDLE) {
        Ok(d) => d,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    assert_eq!(w.close(init, memory), closed());
    // The child's mapping keeps the object.
    assert_eq!(w.peek(child, TEXT, 5), b"image".to_vec());
    assert_eq!(w.close(init, handle), closed());
    assert!(w.process_alive(child), "a second handle keeps it");
    assert_eq!(w.close(init, copy), closed());
    assert!(!w.process_alive(child));
    assert_eq!((w.counters(), w.m.free_frames(), w.charged(w.init)), before);
    w.assert_invariants();
}

#[test]
fn a_creator_that_ends_takes_its_unstarted_processes_with_it() {
    let mut w = World::new();
    let loader = w.spawn_ok(b"worker", &[]);
    // The loader needs the process-control capability: init passes a copy.
    let before = (w.counters(), w.m.free_frames());
    let cap = match w.duplicate(w.init_thread, CAP_PROCESS, Rights::CAPABILITY) {
        Ok(d) => d,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    let loader2 = w.spawn_ok(
        b"client",
        &[DescriptorSlot::moving(cap, Rights::CAPABILITY)],
    );
    let regs = w.kcall_msg(
        loader2.thread,
        KernelFunction::ProcessCreate,
        Descriptor(1),
        msg(KBUF, &[], KTOTAL),
    );
    assert_eq!(regs.kernel_error(), None);
    assert_eq!(w.k.processes.len(), 4);
    w.exit_process(loader2.thread, 0);
    assert_eq!(w.close(w.init_thread, loader2.handle), closed());
    assert_eq!(
        w.k.processes.len(),
        2,
        "the unstarted child ended with its creator"
    );
    assert_eq!((w.counters(), w.m.free_frames()), before);
    assert!(w.alive(loader.thread));
    w.assert_invariants();
}
