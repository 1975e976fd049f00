//! Memory objects: MEMORY_CREATE, MEMORY_MAP, MEMORY_COW, MEMORY_INFO,
//! MEMORY_DIRECT and MACHINE_INFO, UNMAP and PROTECT over their mappings,
//! the write fault that resolves copy-on-write, each refusal changing
//! nothing, frames counted back exactly, and a property test of random
//! sequences of all of it.

use abi::kcall::protection::{EXECUTE, READ, WRITE};
use abi::kcall::{MemoryCreateRequest, MemoryMapRequest, PHYSICAL_END, memory_flags};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights, TrapArgs};
use proptest::prelude::*;
use zerocopy::IntoBytes;

use crate::machine::Machine;
use crate::memory_object::{PAGE_COST, REGION_COST};
use crate::object::OBJECT_COST;
use crate::process::DESCRIPTOR_COST;
use crate::thread::ThreadId;

use super::fake_machine::*;
use super::harness::*;

const RW: u32 = READ | WRITE;
/// Where the tests map objects at fixed addresses (nothing else is there).
const AT: u64 = 0x2000_0000;
const AT2: u64 = 0x3000_0000;

fn free(w: &World) -> u64 {
    w.m.free_frames()
}

/// A refused call (`call`) must leave everything as it was.
fn refused(w: &mut World, expected: Error, call: impl FnOnce(&mut World) -> Result<(), Error>) {
    let before = w.snapshot();
    assert_eq!(call(w), Err(expected));
    assert_eq!(w.snapshot(), before, "a refusal changed something");
    w.assert_invariants();
}

// ----- MEMORY_CREATE -----

#[test]
fn a_new_object_is_zeroed_frames_charged_to_its_creator() {
    let mut w = World::new();
    let t = w.init_thread;
    let (charged, frames) = (w.charged(w.init), free(&w));
    let d = w.memory_ok(t, 3);
    assert_eq!(free(&w), frames - 3, "three frames taken");
    assert_eq!(
        w.charged(w.init) - charged,
        OBJECT_COST + 3 * PAGE_COST + DESCRIPTOR_COST
    );
    assert_eq!(
        w.info(t, d),
        Ok((ObjectKind::Memory as u32, Rights::MEMORY.0))
    );
    assert_eq!(w.memory_info(t, d), Ok((3, 0)));
    let at = w.memory_map(t, d, AT, 0, 3 * PAGE, READ);
    assert_eq!(at, Ok(AT));
    assert_eq!(
        w.user_read(t, AT, 3 * PAGE as usize),
        Some(vec![0; 3 * PAGE as usize])
    );
    w.assert_invariants();
    assert!(w.unmap(t, AT, 3 * PAGE).is_ok());
    assert_eq!(w.close(t, d), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!((w.charged(w.init), free(&w)), (charged, frames));
    w.assert_invariants();
}

#[test]
fn create_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    refused(&mut w, Error::InvalidArgument, |w| {
        w.memory_create(t, 0).map(|_| ())
    });
    refused(&mut w, Error::ReservedBits, |w| {
        let request = MemoryCreateRequest::new(1).with_reserved(1);
        w.new_descriptor(
            t,
            KernelFunction::MemoryCreate,
            Descriptor::NULL,
            request.as_bytes(),
        )
        .map(|_| ())
    });
    refused(&mut w, Error::BadSizes, |w| {
        w.new_descriptor(
            t,
            KernelFunction::MemoryCreate,
            Descriptor::NULL,
            &[1, 0, 0, 0],
        )
        .map(|_| ())
    });
    // Past the creator's limit (the first process's 512 MiB).
    refused(&mut w, Error::OutOfMemory, |w| {
        w.memory_create(t, 1 << 20).map(|_| ())
    });
    // More frames than the machine has: the ones taken go back.
    w.m.frame_limit = Some(5);
    refused(&mut w, Error::OutOfMemory, |w| {
        w.memory_create(t, 6).map(|_| ())
    });
    w.m.frame_limit = None;
    // Sent to an object instead of the NULL target.
    refused(&mut w, Error::FunctionOutOfRange, |w| {
        let request = MemoryCreateRequest::new(1);
        w.new_descriptor(
            t,
            KernelFunction::MemoryCreate,
            CAP_MACHINE,
            request.as_bytes(),
        )
        .map(|_| ())
    });
    fill_table(&mut w, t);
    refused(&mut w, Error::TableFull, |w| {
        w.memory_create(t, 2).map(|_| ())
    });
}

// ----- MEMORY_MAP, UNMAP, PROTECT -----

#[test]
fn two_mappings_show_the_same_frames() {
    let mut w = World::new();
    let t = w.init_thread;
    let d = w.memory_ok(t, 2);
    assert_eq!(w.memory_map(t, d, AT, 0, 2 * PAGE, RW), Ok(AT));
    // The second page alone, where the kernel chooses.
    let placed = w.memory_map(t, d, 0, PAGE, PAGE, READ);
    let Ok(placed) = placed else {
        panic!("placed MEMORY_MAP: {placed:?}")
    };
    assert!(placed >= abi::process::USER_MAP_BASE);
    assert!(w.user_write(t, AT + PAGE + 5, b"shared"));
    assert_eq!(w.user_read(t, placed + 5, 6), Some(b"shared".to_vec()));
    w.assert_invariants();
}

#[test]
fn a_server_maps_what_a_client_created_with_the_rights_it_was_given() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let d = f.w.memory_ok(c, 1);
    assert!(f.w.memory_map(c, d, AT, 0, PAGE, RW).is_ok());
    assert!(f.w.user_write(c, AT, b"request"));
    // Attenuated on the way: the server may only read.
    let slots = [DescriptorSlot::copy(
        d,
        Rights::MAP_READ.union(Rights::TRANSFER),
    )];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 1));
    let theirs = Descriptor(2);
    assert_eq!(
        f.w.info(s, theirs),
        Ok((
            ObjectKind::Memory as u32,
            Rights::MAP_READ.0 | Rights::TRANSFER.0
        ))
    );
    refused(&mut f.w, Error::MissingRight, |w| {
        w.memory_map(s, theirs, AT2, 0, PAGE, RW).map(|_| ())
    });
    assert_eq!(f.w.memory_map(s, theirs, AT2, 0, PAGE, READ), Ok(AT2));
    assert_eq!(f.w.user_read(s, AT2, 7), Some(b"request".to_vec()));
    // PROTECT may not go past what the mapping's reference allowed.
    refused(&mut f.w, Error::MissingRight, |w| {
        w.protect(s, AT2, PAGE, RW)
    });
    // The server's write to its read-only mapping is its own fault.
    let sp = f.sp();
    assert!(!f.w.user_write(s, AT2, b"x"));
    assert!(!f.w.process_alive(sp));
    f.w.assert_invariants();
    // The client's mapping and data are untouched.
    assert_eq!(f.w.user_read(c, AT, 7), Some(b"request".to_vec()));
    f.w.assert_invariants();
}

#[test]
fn map_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let d = w.memory_ok(t, 2);
    let event = w.event_create(t);
    let read_only = match w.duplicate(t, d, Rights::MAP_READ) {
        Ok(copy) => copy,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    assert_eq!(w.memory_map(t, d, AT, 0, PAGE, READ), Ok(AT));
    let cases: [(Error, MemoryMapRequest, Descriptor); 13] = [
        (
            Error::ReservedBits,
            MemoryMapRequest::new(AT2, 0, PAGE, READ).with_reserved(1),
            d,
        ),
        (
            Error::ReservedBits,
            MemoryMapRequest::new(AT2, 0, PAGE, READ | 8),
            d,
        ),
        (
            Error::InvalidArgument,
            MemoryMapRequest::new(AT2, 0, PAGE, WRITE),
            d,
        ),
        (
            Error::InvalidArgument,
            MemoryMapRequest::new(AT2 + 1, 0, PAGE, READ),
            d,
        ),
        (
            Error::InvalidArgument,
            MemoryMapRequest::new(AT2, 1, PAGE, READ),
            d,
        ),
        (
            Error::InvalidArgument,
            MemoryMapRequest::new(AT2, 0, 0, READ),
            d,
        ),
        (
            Error::InvalidArgument,
            MemoryMapRequest::new(AT2, PAGE, 2 * PAGE, READ),
            d,
        ),
        (
            Error::InvalidArgument,
            MemoryMapRequest::new(AT2, u64::MAX - PAGE + 1, PAGE, READ),
            d,
        ),
        (
            Error::BadAddressRange,
            MemoryMapRequest::new(AT, PAGE, PAGE, READ),
            d,
        ),
        (
            Error::BadAddressRange,
            MemoryMapRequest::new(DATA, 0, PAGE, READ),
            d,
        ),
        (
            Error::BadAddressRange,
            MemoryMapRequest::new(abi::process::USER_END, 0, PAGE, READ),
            d,
        ),
        (
            Error::MissingRight,
            MemoryMapRequest::new(AT2, 0, PAGE, RW),
            read_only,
        ),
        (
            Error::WrongObjectType,
            MemoryMapRequest::new(AT2, 0, PAGE, READ),
            event,
        ),
    ];
    for (expected, request, target) in cases {
        refused(&mut w, expected, |w| {
            let regs = w.kcall(t, KernelFunction::MemoryMap, target, request.as_bytes());
            regs.kernel_error().map_or(Ok(()), Err)
        });
    }
    refused(&mut w, Error::FunctionOutOfRange, |w| {
        let request = MemoryMapRequest::new(AT2, 0, PAGE, READ);
        let regs = w.kcall(
            t,
            KernelFunction::MemoryMap,
            Descriptor::NULL,
            request.as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    });
    refused(&mut w, Error::BadDescriptor, |w| {
        let request = MemoryMapRequest::new(AT2, 0, PAGE, READ);
        let regs = w.kcall(
            t,
            KernelFunction::MemoryMap,
            Descriptor(999),
            request.as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    });
    // A child with a small limit cannot pay for a mapping's tables.
    let child = w.spawn_ok(b"client", &[DescriptorSlot::copy(d, Rights::MEMORY)]);
    let p = child.process;
    if let Some(process) = w.k.processes.get_mut(p) {
        process.limit = process.charged + REGION_COST;
    }
    refused(&mut w, Error::OutOfMemory, |w| {
        w.memory_map(child.thread, Descriptor(1), AT2, 0, PAGE, READ)
            .map(|_| ())
    });
}

#[test]
fn an_object_lives_while_mapped_and_its_frames_go_with_the_last_reference() {
    let mut w = World::new();
    let t = w.init_thread;
    let (frames, charged) = (free(&w), w.charged(w.init));
    let d = w.memory_ok(t, 4);
    assert_eq!(w.memory_map(t, d, AT, 0, 4 * PAGE, RW), Ok(AT));
    assert!(w.user_write(t, AT + 3 * PAGE, b"kept"));
    assert_eq!(w.close(t, d), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(free(&w), frames - 4, "the mapping holds the object");
    assert_eq!(w.user_read(t, AT + 3 * PAGE, 4), Some(b"kept".to_vec()));
    // Unmapping the middle splits the mapping; no frame goes.
    assert!(w.unmap(t, AT + PAGE, 2 * PAGE).is_ok());
    assert_eq!(free(&w), frames - 4);
    assert_eq!(w.k.processes.get(w.init).map(|p| p.regions.len()), Some(2));
    assert_eq!(w.user_read(t, AT + 3 * PAGE, 4), Some(b"kept".to_vec()));
    w.assert_invariants();
    assert!(w.unmap(t, AT, PAGE).is_ok());
    assert_eq!(free(&w), frames - 4, "one mapping left");
    assert!(w.unmap(t, AT + 3 * PAGE, PAGE).is_ok());
    assert_eq!((free(&w), w.charged(w.init)), (frames, charged));
    assert_eq!(w.k.counters().objects, 3, "only the capabilities are left");
    w.assert_invariants();
}

#[test]
fn unmap_over_anonymous_memory_and_an_object_mapping_frees_only_the_anonymous_pages() {
    let mut w = World::new();
    let t = w.init_thread;
    let frames = free(&w);
    let d = w.memory_ok(t, 1);
    assert_eq!(w.memory_map(t, d, AT, 0, PAGE, RW), Ok(AT));
    let regs = w.kcall(
        t,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        abi::kcall::map_anonymous(AT + PAGE, PAGE, RW).as_bytes(),
    );
    assert_eq!(regs.kernel_error(), None);
    assert!(w.unmap(t, AT, 2 * PAGE).is_ok());
    assert_eq!(free(&w), frames - 1, "the object still holds its frame");
    w.assert_invariants();
    assert_eq!(w.close(t, d), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(free(&w), frames);
    w.assert_invariants();
}

#[test]
fn protect_narrows_and_widens_within_the_rights_and_splits_mappings() {
    let mut w = World::new();
    let t = w.init_thread;
    let d = w.memory_ok(t, 3);
    assert_eq!(w.memory_map(t, d, AT, 0, 3 * PAGE, READ), Ok(AT));
    assert!(w.protect(t, AT + PAGE, PAGE, RW).is_ok());
    assert_eq!(w.k.processes.get(w.init).map(|p| p.regions.len()), Some(3));
    assert!(w.user_write(t, AT + PAGE, b"w"));
    let p = w.init;
    w.assert_invariants();
    assert!(w.protect(t, AT, 3 * PAGE, READ | EXECUTE).is_ok());
    w.assert_invariants();
    // A range with a hole is refused before anything changes.
    refused(&mut w, Error::BadAddressRange, |w| {
        w.protect(t, AT, 4 * PAGE, READ)
    });
    assert!(!w.user_write(t, AT + PAGE, b"w"), "no longer writable");
    assert!(!w.process_alive(p));
}

// ----- copy-on-write -----

#[test]
fn a_cow_child_shares_frames_until_either_side_writes() {
    let mut w = World::new();
    let t = w.init_thread;
    let frames = free(&w);
    let parent = w.memory_ok(t, 3);
    assert_eq!(w.memory_map(t, parent, AT, 0, 3 * PAGE, RW), Ok(AT));
    for page in 0..3 {
        assert!(w.user_write(t, AT + page * PAGE, &[b'p', page as u8]));
    }
    let charged = w.charged(w.init);
    let child = match w.memory_cow(t, parent, 0, 3 * PAGE) {
        Ok(child) => child,
        Err(e) => panic!("MEMORY_COW: {e}"),
    };
    assert_eq!(free(&w), frames - 3, "no frame copied yet");
    assert_eq!(
        w.charged(w.init) - charged,
        OBJECT_COST + 3 * PAGE_COST + DESCRIPTOR_COST,
        "the child is charged as a full copy"
    );
    assert_eq!(
        w.info(t, child),
        Ok((ObjectKind::Memory as u32, Rights::MEMORY.0))
    );
    assert_eq!(w.memory_map(t, child, AT2, 0, 3 * PAGE, RW), Ok(AT2));
    w.assert_invariants();
    // The parent's mapping lost write access to the shared pages.
    let space = w.space(w.init);
    assert_eq!(w.m.page_protection(space, AT), Some(READ));
    // The child writes page 0: one copy, the parent keeps its bytes.
    assert!(w.user_write(t, AT2, b"c"));
    assert_eq!(free(&w), frames - 4);
    assert_eq!(w.user_read(t, AT, 2), Some(vec![b'p', 0]));
    assert_eq!(w.user_read(t, AT2, 2), Some(vec![b'c', 0]));
    // The parent writes page 1: another copy; the child keeps the old bytes.
    assert!(w.user_write(t, AT + PAGE, b"P"));
    assert_eq!(free(&w), frames - 5);
    assert_eq!(w.user_read(t, AT2 + PAGE, 2), Some(vec![b'p', 1]));
    assert_eq!(w.user_read(t, AT + PAGE, 2), Some(vec![b'P', 1]));
    // Page 0 of the parent is its own again (the child copied away): a
    // write needs no copy.
    assert!(w.user_write(t, AT, b"q"));
    assert_eq!(free(&w), frames - 5);
    // Page 2 is still shared.
    assert_eq!(w.user_read(t, AT2 + 2 * PAGE, 2), Some(vec![b'p', 2]));
    w.assert_invariants();
    // Everything goes back.
    assert!(w.unmap(t, AT, 3 * PAGE).is_ok());
    assert!(w.unmap(t, AT2, 3 * PAGE).is_ok());
    assert_eq!(w.close(t, parent), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(free(&w), frames - 3, "the child holds three frames");
    assert_eq!(w.close(t, child), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(free(&w), frames);
    w.assert_invariants();
}

#[test]
fn cow_from_both_sides_in_two_processes() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let frames = free(&f.w);
    let d = f.w.memory_ok(c, 2);
    assert!(f.w.memory_map(c, d, AT, 0, 2 * PAGE, RW).is_ok());
    assert!(f.w.user_write(c, AT, b"original"));
    let child = match f.w.memory_cow(c, d, 0, 2 * PAGE) {
        Ok(child) => child,
        Err(e) => panic!("MEMORY_COW: {e}"),
    };
    // The child goes to the server, which writes its copy.
    let slots = [DescriptorSlot::moving(child, Rights::MEMORY)];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 1));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    assert_eq!(
        f.w.memory_map(s, Descriptor(2), AT2, 0, 2 * PAGE, RW),
        Ok(AT2)
    );
    assert_eq!(f.w.user_read(s, AT2, 8), Some(b"original".to_vec()));
    assert!(f.w.user_write(s, AT2, b"server's"));
    assert_eq!(free(&f.w), frames - 3);
    assert!(f.w.user_write(c, AT + PAGE, b"client's"));
    assert_eq!(free(&f.w), frames - 4);
    assert_eq!(f.w.user_read(c, AT, 8), Some(b"original".to_vec()));
    assert_eq!(f.w.user_read(s, AT2 + PAGE, 8), Some(vec![0; 8]));
    f.w.assert_invariants();
    // The server dies: its copy goes, the client's memory stays.
    f.w.exit_process(s, 0);
    assert_eq!(free(&f.w), frames - 2);
    assert_eq!(f.w.user_read(c, AT + PAGE, 8), Some(b"client's".to_vec()));
    f.w.assert_invariants();
    f.w.exit_process(c, 0);
    assert_eq!(free(&f.w), frames);
    f.w.assert_invariants();
}

#[test]
fn a_message_delivered_into_a_cow_page_copies_it_first() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let d = f.w.memory_ok(s, 1);
    assert!(f.w.memory_map(s, d, AT, 0, PAGE, RW).is_ok());
    assert!(f.w.user_write(s, AT, &[0xaa; 16]));
    let child = match f.w.memory_cow(s, d, 0, PAGE) {
        Ok(child) => child,
        Err(e) => panic!("MEMORY_COW: {e}"),
    };
    // The server's receive buffer is the shared page, mapped read-only.
    assert_eq!(f.w.receive(s, OWNER, AT, 64), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"ping", 64)), None);
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::received(
            abi::function::Function(USER_FN),
            0,
            AT,
            sizes(64, 4, 0)
        ))
    );
    assert_eq!(f.w.user_read(s, AT, 4), Some(b"ping".to_vec()));
    // The child kept the bytes from before.
    assert!(f.w.memory_map(s, child, AT2, 0, PAGE, READ).is_ok());
    assert_eq!(f.w.user_read(s, AT2, 4), Some(vec![0xaa; 4]));
    f.w.assert_invariants();
}

#[test]
fn a_receive_buffer_that_became_cow_while_waiting_is_copied_at_delivery() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let d = f.w.memory_ok(s, 1);
    assert!(f.w.memory_map(s, d, AT, 0, PAGE, RW).is_ok());
    assert!(f.w.user_write(s, AT, &[0xaa; 8]));
    let helper = f.w.thread_create(s);
    // The server waits with its buffer in the object's page ...
    assert_eq!(f.w.receive(s, OWNER, AT, 64), None);
    // ... and another of its threads makes the page copy-on-write.
    let child = f.w.memory_cow(helper, d, 0, PAGE);
    let Ok(child) = child else {
        panic!("MEMORY_COW: {child:?}")
    };
    let space = f.w.space(f.sp());
    assert_eq!(f.w.m.page_protection(space, AT), Some(READ));
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"ping", 64)), None);
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::received(
            abi::function::Function(USER_FN),
            0,
            AT,
            sizes(64, 4, 0)
        ))
    );
    assert_eq!(f.w.user_read(helper, AT, 4), Some(b"ping".to_vec()));
    assert!(f.w.memory_map(helper, child, AT2, 0, PAGE, READ).is_ok());
    assert_eq!(f.w.user_read(helper, AT2, 4), Some(vec![0xaa; 4]));
    f.w.assert_invariants();
}

#[test]
fn an_event_waiters_buffer_that_became_cow_while_waiting_is_copied_at_the_signal() {
    let mut w = World::new();
    let t = w.init_thread;
    let helper = w.thread_create(t);
    let d = w.memory_ok(t, 1);
    let event = w.event_create(t);
    assert!(w.memory_map(t, d, AT, 0, PAGE, RW).is_ok());
    assert!(w.user_write(t, AT, &[0xbb; 8]));
    assert_eq!(
        w.send(t, KernelFunction::EventWait as i32, event, msg(AT, &[], 64)),
        None
    );
    let child = w.memory_cow(helper, d, 0, PAGE);
    assert!(child.is_ok());
    let regs = w.kcall(helper, KernelFunction::EventSignal, event, &[]);
    assert_eq!(regs.kernel_error(), None);
    assert_eq!(w.resume(t), kernel_ok(0, 0, 0));
    assert_eq!(
        w.user_read(helper, AT, 8),
        Some(vec![0; 8]),
        "the reply's header"
    );
    w.assert_invariants();
}

#[test]
fn cow_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let d = w.memory_ok(t, 2);
    let no_read = match w.duplicate(t, d, Rights::MAP_WRITE.union(Rights::TRANSFER)) {
        Ok(copy) => copy,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    let cow = |offset, length, target| {
        move |w: &mut World| w.memory_cow(t, target, offset, length).map(|_| ())
    };
    refused(&mut w, Error::InvalidArgument, cow(0, 0, d));
    refused(&mut w, Error::InvalidArgument, cow(1, PAGE, d));
    refused(&mut w, Error::InvalidArgument, cow(PAGE, 2 * PAGE, d));
    refused(&mut w, Error::MissingRight, cow(0, PAGE, no_read));
    refused(&mut w, Error::BadSizes, |w| {
        w.new_descriptor(t, KernelFunction::MemoryCow, d, &[0; 8])
            .map(|_| ())
    });
    let direct = match w.memory_direct(t, CAP_MACHINE, DEVICE, PAGE) {
        Ok(direct) => direct,
        Err(e) => panic!("MEMORY_DIRECT: {e}"),
    };
    refused(&mut w, Error::InvalidArgument, cow(0, PAGE, direct));
    if let Some(process) = w.k.processes.get_mut(w.init) {
        process.limit = process.charged + PAGE_COST;
    }
    refused(&mut w, Error::OutOfMemory, cow(0, 2 * PAGE, d));
}

#[test]
fn a_write_to_a_cow_page_without_a_frame_left_ends_the_writer_and_leaks_nothing() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let frames = free(&f.w);
    let d = f.w.memory_ok(c, 1);
    assert!(f.w.memory_map(c, d, AT, 0, PAGE, RW).is_ok());
    let child = f.w.memory_cow(c, d, 0, PAGE);
    assert!(child.is_ok());
    f.w.m.frame_limit = Some(f.w.m.frames.len() as u64);
    let cp = f.cp(0);
    assert!(!f.w.user_write(c, AT, b"x"));
    assert!(!f.w.process_alive(cp));
    f.w.m.frame_limit = None;
    assert_eq!(free(&f.w), frames);
    f.w.assert_invariants();
}

#[test]
fn faults_outside_mappings_or_against_their_protection_end_the_process() {
    let mut f = fixture(false, 2);
    let (c0, c1) = (f.c(0), f.c(1));
    let (p0, p1) = (f.cp(0), f.cp(1));
    // A write to an unmapped page.
    assert!(!f.w.user_write(c0, UNMAPPED, b"x"));
    assert!(!f.w.process_alive(p0));
    // A write to anonymous read-only memory (no object there).
    assert!(!f.w.user_write(c1, IMAGE, b"x"));
    assert!(!f.w.process_alive(p1));
    f.w.assert_invariants();
}

// ----- MEMORY_DIRECT, MACHINE_INFO -----

#[test]
fn the_rsdp_is_read_through_a_direct_mapping() {
    let mut w = World::new();
    let t = w.init_thread;
    let frames = free(&w);
    let regs = w.kcall(t, KernelFunction::MachineInfo, CAP_MACHINE, &[]);
    assert_eq!(Some(regs), kernel_ok(0, 8, 0));
    let reply = w.parse_reply(w.init, KBUF, regs);
    assert_eq!(reply.payload, RSDP.to_le_bytes());
    let page = RSDP & !(PAGE - 1);
    let d = match w.memory_direct(t, CAP_MACHINE, page, PAGE) {
        Ok(d) => d,
        Err(e) => panic!("MEMORY_DIRECT: {e}"),
    };
    assert_eq!(
        w.info(t, d),
        Ok((ObjectKind::Memory as u32, Rights::DIRECT_MEMORY.0))
    );
    assert_eq!(w.memory_info(t, d), Ok((1, memory_flags::DIRECT)));
    let at = w.memory_map(t, d, 0, 0, PAGE, READ);
    let Ok(at) = at else {
        panic!("MEMORY_MAP of the direct object: {at:?}")
    };
    assert_eq!(
        w.user_read(t, at + (RSDP - page), 8),
        Some(b"RSD PTR ".to_vec())
    );
    let space = w.space(w.init);
    assert_eq!(
        w.m.page(space, at).and_then(|p| p.borrowed),
        Some((page, false)),
        "the BIOS area holds no RAM: mapped uncached"
    );
    assert_eq!(free(&w), frames, "a direct object takes no frame");
    w.assert_invariants();
    assert!(w.unmap(t, at, PAGE).is_ok());
    assert_eq!(w.close(t, d), kernel_ok(0, 0, 0).unwrap_or_default());
    w.assert_invariants();
}

#[test]
fn device_memory_and_firmware_tables_are_mapped_as_the_direct_map_maps_them() {
    let mut w = World::new();
    let t = w.init_thread;
    let device = w.memory_direct(t, CAP_MACHINE, DEVICE, PAGE);
    let acpi = w.memory_direct(t, CAP_MACHINE, 0x7fe_0000, 2 * PAGE);
    let (Ok(device), Ok(acpi)) = (device, acpi) else {
        panic!("MEMORY_DIRECT: {device:?} {acpi:?}")
    };
    assert_eq!(w.memory_map(t, device, AT, 0, PAGE, RW), Ok(AT));
    assert_eq!(w.memory_map(t, acpi, AT2, 0, 2 * PAGE, READ), Ok(AT2));
    let space = w.space(w.init);
    assert_eq!(
        w.m.page(space, AT).and_then(|p| p.borrowed),
        Some((DEVICE, false))
    );
    assert_eq!(
        w.m.page(space, AT2 + PAGE).and_then(|p| p.borrowed),
        Some((0x7fe_1000, true))
    );
    assert!(w.user_write(t, AT, b"mmio"));
    assert_eq!(w.user_read(t, AT, 4), Some(b"mmio".to_vec()));
    // Device memory is never executable: the rights say so.
    refused(&mut w, Error::MissingRight, |w| {
        w.memory_map(t, device, AT2 + 0x10_0000, 0, PAGE, READ | EXECUTE)
            .map(|_| ())
    });
    w.assert_invariants();
}

#[test]
fn direct_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let direct = |physical, length| {
        move |w: &mut World| {
            w.memory_direct(t, CAP_MACHINE, physical, length)
                .map(|_| ())
        }
    };
    // RAM the kernel owns: usable RAM (where frames come from), the kernel
    // image and modules, and a range that only touches them.
    refused(&mut w, Error::KernelRam, direct(FRAME_BASE, PAGE));
    refused(&mut w, Error::KernelRam, direct(0, PAGE));
    refused(&mut w, Error::KernelRam, direct(0x8000_0000, PAGE));
    refused(&mut w, Error::KernelRam, direct(0x9_e000, 0x4_0000));
    refused(&mut w, Error::KernelRam, direct(0x7fd_f000, 2 * PAGE));
    refused(&mut w, Error::InvalidArgument, direct(DEVICE + 1, PAGE));
    refused(&mut w, Error::InvalidArgument, direct(DEVICE, 1));
    refused(&mut w, Error::InvalidArgument, direct(DEVICE, 0));
    refused(&mut w, Error::InvalidArgument, direct(PHYSICAL_END, PAGE));
    refused(
        &mut w,
        Error::InvalidArgument,
        direct(u64::MAX - PAGE + 1, PAGE),
    );
    refused(&mut w, Error::WrongObjectType, |w| {
        w.memory_direct(t, CAP_PROCESS, DEVICE, PAGE).map(|_| ())
    });
    refused(&mut w, Error::FunctionOutOfRange, |w| {
        w.memory_direct(t, Descriptor::NULL, DEVICE, PAGE)
            .map(|_| ())
    });
    refused(&mut w, Error::FunctionOutOfRange, |w| {
        let regs = w.kcall(t, KernelFunction::MachineInfo, Descriptor::NULL, &[]);
        regs.kernel_error().map_or(Ok(()), Err)
    });
    let no_send = match w.duplicate(t, CAP_MACHINE, Rights::TRANSFER) {
        Ok(copy) => copy,
        Err(e) => panic!("DUPLICATE: {e}"),
    };
    refused(&mut w, Error::MissingRight, |w| {
        w.memory_direct(t, no_send, DEVICE, PAGE).map(|_| ())
    });
    // A process without the capability has nothing to send it to.
    let child = w.spawn_ok(b"client", &[]);
    refused(&mut w, Error::FunctionOutOfRange, |w| {
        w.memory_direct(child.thread, Descriptor::NULL, DEVICE, PAGE)
            .map(|_| ())
    });
}

// ----- whole lives -----

#[test]
fn a_process_ending_with_mappings_and_descriptors_frees_what_only_it_held() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let frames = free(&f.w);
    let shared = f.w.memory_ok(c, 2);
    let private = f.w.memory_ok(c, 3);
    assert!(f.w.memory_map(c, shared, AT, 0, 2 * PAGE, RW).is_ok());
    assert!(f.w.memory_map(c, private, AT2, 0, 3 * PAGE, RW).is_ok());
    assert!(f.w.user_write(c, AT, b"both"));
    let slots = [DescriptorSlot::copy(shared, Rights::MEMORY)];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 1));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    assert!(
        f.w.memory_map(s, Descriptor(2), AT, 0, 2 * PAGE, READ)
            .is_ok()
    );
    let cp = f.cp(0);
    f.w.exit_process(c, 0);
    assert!(!f.w.process_alive(cp));
    assert_eq!(free(&f.w), frames - 2, "the private object went");
    assert_eq!(f.w.user_read(s, AT, 4), Some(b"both".to_vec()));
    f.w.assert_invariants();
}

/// The churn: 1,000 cycles of create, map, share, copy-on-write
/// write, unmap and close across two processes end with free frames,
/// objects and descriptors exactly where they started.
#[test]
fn churn_ends_where_it_started() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let (sp, cp) = (f.sp(), f.cp(0));
    let before = (
        free(&f.w),
        f.w.k.counters(),
        f.w.charged(sp),
        f.w.charged(cp),
    );
    for round in 0..1000u32 {
        let d = f.w.memory_ok(c, 1 + round % 3);
        assert!(f.w.memory_map(c, d, AT, 0, PAGE, RW).is_ok());
        assert!(f.w.user_write(c, AT, &round.to_le_bytes()));
        let child = match f.w.memory_cow(c, d, 0, PAGE) {
            Ok(child) => child,
            Err(e) => panic!("round {round}: MEMORY_COW: {e}"),
        };
        let slots = [DescriptorSlot::moving(child, Rights::MEMORY)];
        assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 1));
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, &[], 0)),
            Some(TrapArgs::default())
        );
        assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
        let theirs = Descriptor(2);
        assert!(f.w.memory_map(s, theirs, AT2, 0, PAGE, RW).is_ok());
        assert!(f.w.user_write(s, AT2, b"copy"));
        assert!(f.w.user_write(c, AT + 4, b"mine"));
        assert_eq!(f.w.user_read(s, AT2 + 4, 4), Some(vec![0; 4]));
        assert!(f.w.unmap(s, AT2, PAGE).is_ok());
        assert_eq!(f.w.close(s, theirs), kernel_ok(0, 0, 0).unwrap_or_default());
        assert!(f.w.unmap(c, AT, PAGE).is_ok());
        assert_eq!(f.w.close(c, d), kernel_ok(0, 0, 0).unwrap_or_default());
        if round % 100 == 0 {
            f.w.assert_invariants();
        }
    }
    let after = (
        free(&f.w),
        f.w.k.counters(),
        f.w.charged(sp),
        f.w.charged(cp),
    );
    assert_eq!(after, before);
    f.w.assert_invariants();
}

// ----- random sequences -----

#[derive(Clone, Debug)]
enum MemOp {
    Create {
        who: usize,
        pages: u32,
    },
    Map {
        who: usize,
        object: usize,
        slot: u64,
        offset: u64,
        pages: u64,
        write: bool,
    },
    Cow {
        who: usize,
        object: usize,
        offset: u64,
        pages: u64,
    },
    Write {
        who: usize,
        slot: u64,
        page: u64,
        byte: u8,
    },
    Read {
        who: usize,
        slot: u64,
        page: u64,
    },
    Unmap {
        who: usize,
        slot: u64,
        page: u64,
        pages: u64,
    },
    Protect {
        who: usize,
        slot: u64,
        page: u64,
        pages: u64,
        write: bool,
    },
    Close {
        who: usize,
        object: usize,
    },
    Give {
        who: usize,
        object: usize,
        read_only: bool,
        moving: bool,
    },
}

fn mem_op() -> impl Strategy<Value = MemOp> {
    let who = 0usize..2;
    prop_oneof![
        2 => (who.clone(), 1u32..5).prop_map(|(who, pages)| MemOp::Create { who, pages }),
        4 => (who.clone(), 0usize..8, 0u64..4, 0u64..5, 1u64..5, any::<bool>()).prop_map(
            |(who, object, slot, offset, pages, write)| MemOp::Map { who, object, slot, offset, pages, write }
        ),
        2 => (who.clone(), 0usize..8, 0u64..4, 1u64..5)
            .prop_map(|(who, object, offset, pages)| MemOp::Cow { who, object, offset, pages }),
        5 => (who.clone(), 0u64..4, 0u64..5, any::<u8>())
            .prop_map(|(who, slot, page, byte)| MemOp::Write { who, slot, page, byte }),
        2 => (who.clone(), 0u64..4, 0u64..5).prop_map(|(who, slot, page)| MemOp::Read { who, slot, page }),
        2 => (who.clone(), 0u64..4, 0u64..5, 1u64..4)
            .prop_map(|(who, slot, page, pages)| MemOp::Unmap { who, slot, page, pages }),
        1 => (who.clone(), 0u64..4, 0u64..5, 1u64..4, any::<bool>())
            .prop_map(|(who, slot, page, pages, write)| MemOp::Protect { who, slot, page, pages, write }),
        2 => (who.clone(), 0usize..8).prop_map(|(who, object)| MemOp::Close { who, object }),
        2 => (who, 0usize..8, any::<bool>(), any::<bool>())
            .prop_map(|(who, object, read_only, moving)| MemOp::Give { who, object, read_only, moving }),
    ]
}

/// A range of `d`'s pages from `offset` of `pages` pages, brought inside
/// the object (whose size `t` asks) unless `pages` is 4, the odd case left
/// as it is, so that refusals happen too.
fn fit(w: &mut World, t: ThreadId, d: Descriptor, offset: u64, pages: u64) -> (u64, u64) {
    let Ok((size, _)) = w.memory_info(t, d) else {
        return (offset, pages);
    };
    if pages == 4 || size == 0 {
        return (offset, pages);
    }
    let offset = offset % size;
    (offset, 1 + (pages - 1) % (size - offset))
}

/// Where slot `slot` of the random test maps: 16 pages each, apart.
fn slot_address(slot: u64) -> u64 {
    AT + slot * 0x10_0000
}

/// The memory objects `p` holds, in descriptor order.
fn objects_of(w: &World, t: ThreadId) -> Vec<Descriptor> {
    let p = w.process_of(t);
    (1..=64)
        .map(Descriptor)
        .filter(|d| {
            w.reference(p, *d)
                .and_then(|r| w.k.objects.get(r.object))
                .is_some_and(|o| o.memory().is_some())
        })
        .collect()
}

fn apply(f: &mut Fixture, op: &MemOp) {
    // The two actors: the fixture's client and its server.
    let threads = [f.c(0), f.s()];
    let pick = |objects: &[Descriptor], i: usize| objects.get(i % objects.len().max(1)).copied();
    match *op {
        MemOp::Create { who, pages } => {
            let _ = f.w.memory_create(threads[who], pages);
        }
        MemOp::Map {
            who,
            object,
            slot,
            offset,
            pages,
            write,
        } => {
            let t = threads[who];
            if let Some(d) = pick(&objects_of(&f.w, t), object) {
                let protection = if write { RW } else { READ };
                // Mostly a range inside the object; sometimes past its end.
                let (offset, pages) = fit(&mut f.w, t, d, offset, pages);
                let _ = f.w.memory_map(
                    t,
                    d,
                    slot_address(slot),
                    offset * PAGE,
                    pages * PAGE,
                    protection,
                );
            }
        }
        MemOp::Cow {
            who,
            object,
            offset,
            pages,
        } => {
            let t = threads[who];
            if let Some(d) = pick(&objects_of(&f.w, t), object) {
                let (offset, pages) = fit(&mut f.w, t, d, offset, pages);
                let _ = f.w.memory_cow(t, d, offset * PAGE, pages * PAGE);
            }
        }
        MemOp::Write {
            who,
            slot,
            page,
            byte,
        } => {
            let t = threads[who];
            // A page of one of the process's mappings (slot picks which).
            let p = f.w.process_of(t);
            let regions =
                f.w.k
                    .processes
                    .get(p)
                    .map(|q| q.regions.clone())
                    .unwrap_or_default();
            let Some(region) = regions.get(slot as usize % regions.len().max(1)) else {
                return;
            };
            let at = region.start + (page % region.pages) * PAGE + u64::from(byte);
            let p = f.w.process_of(t);
            let writable =
                f.w.k
                    .processes
                    .get(p)
                    .and_then(|q| q.region_at(at))
                    .is_some_and(|(_, r)| r.protection & WRITE != 0);
            // Only writes the mapping allows: a fault would end the process.
            if writable {
                let mirror = shadow_write(&f.w, t, at, byte);
                assert!(f.w.user_write(t, at, &[byte]));
                for (thread, address) in mirror {
                    assert_eq!(f.w.user_read(thread, address, 1), Some(vec![byte]));
                }
            }
        }
        MemOp::Read { who, slot, page } => {
            let t = threads[who];
            let at = slot_address(slot) + page * PAGE;
            let space = f.w.space(f.w.process_of(t));
            if f.w.m.page(space, at).is_some() {
                assert!(f.w.user_read(t, at, 16).is_some());
            }
        }
        MemOp::Unmap {
            who,
            slot,
            page,
            pages,
        } => {
            let t = threads[who];
            let _ = f.w.unmap(t, slot_address(slot) + page * PAGE, pages * PAGE);
        }
        MemOp::Protect {
            who,
            slot,
            page,
            pages,
            write,
        } => {
            let t = threads[who];
            let protection = if write { RW } else { READ };
            let _ = f.w.protect(
                t,
                slot_address(slot) + page * PAGE,
                pages * PAGE,
                protection,
            );
        }
        MemOp::Close { who, object } => {
            let t = threads[who];
            if let Some(d) = pick(&objects_of(&f.w, t), object) {
                let _ = f.w.close(t, d);
            }
        }
        MemOp::Give {
            who,
            object,
            read_only,
            moving,
        } => {
            let t = threads[who];
            if let Some(d) = pick(&objects_of(&f.w, t), object) {
                let p = f.w.process_of(t);
                let held = f.w.reference(p, d).map_or(Rights::NONE, |r| r.rights);
                let rights = if read_only {
                    held.intersection(Rights::MAP_READ.union(Rights::TRANSFER))
                } else {
                    held
                };
                let slot = if moving {
                    DescriptorSlot::moving(d, rights)
                } else {
                    DescriptorSlot::copy(d, rights)
                };
                give(f, who == 1, slot);
            }
        }
    }
}

/// Passes `slot` between the two actors through the fixture's door: the
/// client in a call, the server in its reply to one. Either way both end
/// up able to run again.
fn give(f: &mut Fixture, from_server: bool, slot: DescriptorSlot) {
    let (s, c) = (f.s(), f.c(0));
    let slots = [slot];
    let data: &[u8] = b"d";
    let call = if from_server {
        msg(SBUF, data, 128)
    } else {
        msg(SBUF, data, 128).slots(&slots)
    };
    // Queued first, so a refused SEND leaves the server free.
    if f.w.send(c, USER_FN, REF, call).is_some() {
        return;
    }
    let _ = f.w.receive(s, OWNER, RBUF, 512);
    if f.w.holding(s) == crate::thread::Holding::Nothing {
        let _ = f.w.resume(c);
        return;
    }
    let answer = if from_server {
        msg(RBUF, &[], 64).slots(&slots)
    } else {
        msg(RBUF, &[], 64)
    };
    if f.w.reply(s, 0, answer) != Some(TrapArgs::default()) {
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, &[], 0)),
            Some(TrapArgs::default())
        );
    }
    let _ = f.w.resume(c);
}

/// The other places the byte written at `at` by `t` must show up: every
/// mapping, in either client, of the same object page (found from the
/// core's records before the write, which may copy).
fn shadow_write(w: &World, t: ThreadId, at: u64, _byte: u8) -> Vec<(ThreadId, u64)> {
    let p = w.process_of(t);
    let Some((_, region)) = w.k.processes.get(p).and_then(|q| q.region_at(at)) else {
        return Vec::new();
    };
    let (object, page) = (region.object, region.page_of(at));
    let offset = at % PAGE;
    let mut mirrors = Vec::new();
    for thread in w.k.threads.ids() {
        let q = w.process_of(thread);
        if mirrors.iter().any(|(other, _)| w.process_of(*other) == q) {
            continue;
        }
        for r in
            w.k.processes
                .get(q)
                .map(|q| q.regions.as_slice())
                .unwrap_or(&[])
        {
            if r.object == object && (r.offset..r.offset + r.pages).contains(&page) {
                mirrors.push((thread, r.address_of(page) + offset));
            }
        }
    }
    mirrors
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random creates, maps, copy-on-write children, writes, unmaps,
    /// protects, closes and transfers by two processes keep every
    /// invariant after each step (frame records against the machine's
    /// frames, shares against holders, mappings against the machine's
    /// tables, charges), and ending both processes gives every frame back.
    #[test]
    fn random_memory_sequences_keep_frames_exact(ops in prop::collection::vec(mem_op(), 1..60)) {
        let mut f = fixture(false, 1);
        let frames = free(&f.w);
        for (i, op) in ops.iter().enumerate() {
            apply(&mut f, op);
            let violations = f.w.violations();
            prop_assert!(violations.is_empty(), "after op {} {:?}:\n{}", i, op, violations.join("\n"));
        }
        let (client, server) = (f.cp(0), f.sp());
        f.w.k.end_process(&mut f.w.m, client, 0);
        f.w.k.end_process(&mut f.w.m, server, 0);
        let init = f.w.init_thread;
        f.w.run(init);
        let violations = f.w.violations();
        prop_assert!(violations.is_empty(), "after teardown:\n{}", violations.join("\n"));
        prop_assert_eq!(free(&f.w), frames);
    }
}
