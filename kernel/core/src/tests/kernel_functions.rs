//! The kernel functions, one group per object kind.

use abi::kcall::{
    ClockReply, DescriptorRequest, DoorCreateRequest, ExitRequest, KernelCounters, MAX_DEBUG_WRITE,
    MapReply, MapRequest, SpawnRequest, ThreadCreateRequest, protection,
};
use abi::process::{MAX_ARGUMENT_BYTES, USER_END, USER_MAP_BASE, USER_STACK_TOP};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

use crate::machine::UserStart;
use crate::object::{OBJECT_COST, ObjectBody};
use crate::process::DESCRIPTOR_COST;
use crate::thread::{THREAD_COST, ThreadState};

use super::fake_machine::*;
use super::harness::*;

// 14. kernel functions

#[test]
fn close_removes_the_descriptor_and_frees_the_last_reference() {
    let mut w = World::new();
    let t = w.init_thread;
    let objects = w.k.counters().objects;
    let e = w.event_create(t);
    assert_eq!(w.k.counters().objects, objects + 1);
    let request = DescriptorRequest::new(e, Rights(1));
    assert_eq!(
        w.kcall(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            request.as_bytes()
        ),
        TrapArgs::error(Error::ReservedBits)
    );
    assert_eq!(
        w.kcall(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            &e.0.to_le_bytes()
        ),
        TrapArgs::error(Error::BadSizes)
    );
    assert_eq!(Some(w.close(t, e)), kernel_ok(0, 0, 0));
    assert_eq!(w.k.counters().objects, objects);
    assert_eq!(w.info(t, e), Err(Error::BadDescriptor));
    assert_eq!(w.close(t, e), TrapArgs::error(Error::BadDescriptor));
    assert_eq!(
        w.close(t, Descriptor::NULL),
        TrapArgs::error(Error::BadDescriptor)
    );
    // A kernel function takes no descriptor slots.
    let e = w.event_create(t);
    let request = DescriptorRequest::new(e, Rights::NONE);
    let slots = [DescriptorSlot::copy(e, Rights::SIGNAL)];
    assert_eq!(
        w.kcall_msg(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL).slots(&slots)
        ),
        TrapArgs::error(Error::BadSizes)
    );
    assert!(w.reference(w.init, e).is_some());
    // CLOSE takes the NULL target.
    assert_eq!(
        w.kcall(t, KernelFunction::Close, e, request.as_bytes()),
        TrapArgs::error(Error::FunctionOutOfRange)
    );
    w.assert_invariants();
}

#[test]
fn duplicate_makes_a_reference_with_equal_or_fewer_rights() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let e = f.w.event_create(c);
    let Ok(same) = f.w.duplicate(c, e, Rights::EVENT) else {
        panic!("DUPLICATE failed")
    };
    let Ok(signal) = f.w.duplicate(c, e, Rights::SIGNAL) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!((same, signal), (Descriptor(3), Descriptor(4)));
    assert_eq!(f.w.object_of(cp, signal), f.w.object_of(cp, e));
    assert_eq!(
        f.w.info(c, signal),
        Ok((ObjectKind::Event as u32, Rights::SIGNAL.0))
    );
    assert_eq!(
        f.w.duplicate(c, signal, Rights::SIGNAL),
        Err(Error::MissingRight)
    );
    assert_eq!(
        f.w.duplicate(c, e, Rights::SEND),
        Err(Error::RightsExceeded)
    );
    assert_eq!(
        f.w.duplicate(c, e, Rights(1 << 7)),
        Err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.duplicate(c, Descriptor(40), Rights::NONE),
        Err(Error::BadDescriptor)
    );
    // The owner reference carries no DUPLICATE right: a door has one owner.
    assert_eq!(
        f.w.duplicate(s, OWNER, Rights::TRANSFER),
        Err(Error::MissingRight)
    );
    // The copy works with the rights it was given, and only those.
    assert_eq!(
        Some(f.w.kcall(c, KernelFunction::EventSignal, signal, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.kcall(c, KernelFunction::EventWait, signal, &[]),
        TrapArgs::error(Error::MissingRight)
    );
    f.w.assert_invariants();
}

#[test]
fn descriptor_info_reports_kind_and_rights() {
    let mut w = World::new();
    let t = w.init_thread;
    let (owner, client) = w.door_create(t, false);
    let (system_owner, _) = w.door_create(t, true);
    let e = w.event_create(t);
    let child = w.spawn_ok(b"worker", &[]);
    let request = ThreadCreateRequest::new(IMAGE, USER_STACK_TOP - 0x4000, 0, 1);
    let reply = w.kcall_ok(
        t,
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    let thread_handle = Descriptor(reply.slots[0].descriptor);
    let handle_rights = Rights::SEND
        .union(Rights::TRANSFER)
        .union(Rights::DUPLICATE)
        .0;
    assert_eq!(
        w.info(t, owner),
        Ok((ObjectKind::UserDoor as u32, Rights::DOOR_OWNER.0))
    );
    assert_eq!(
        w.info(t, client),
        Ok((ObjectKind::UserDoor as u32, Rights::DOOR_CLIENT.0))
    );
    assert_eq!(
        w.info(t, system_owner),
        Ok((ObjectKind::SystemDoor as u32, Rights::DOOR_OWNER.0))
    );
    assert_eq!(
        w.info(t, e),
        Ok((ObjectKind::Event as u32, Rights::EVENT.0))
    );
    assert_eq!(
        w.info(t, child.handle),
        Ok((ObjectKind::Process as u32, handle_rights))
    );
    assert_eq!(
        w.info(t, thread_handle),
        Ok((ObjectKind::Thread as u32, handle_rights))
    );
    let request = DescriptorRequest::new(e, Rights::NONE);
    assert_eq!(
        Some(w.kcall(
            t,
            KernelFunction::DescriptorInfo,
            Descriptor::NULL,
            request.as_bytes()
        )),
        kernel_ok(0, 8, 0)
    );
    let request = DescriptorRequest::new(e, Rights(2));
    assert_eq!(
        w.kcall(
            t,
            KernelFunction::DescriptorInfo,
            Descriptor::NULL,
            request.as_bytes()
        ),
        TrapArgs::error(Error::ReservedBits)
    );
    w.assert_invariants();
}

#[test]
fn events_count_signals_and_wake_a_waiter() {
    let mut w = World::new();
    let t = w.init_thread;
    let waiter = w.thread_create(t);
    let e = w.event_create(t);
    let object = w.object_of(w.init, e);
    let count = |w: &World| match w.k.objects.get(object).map(|o| &o.body) {
        Some(ObjectBody::Event(e)) => e.count,
        other => panic!("not an event: {other:?}"),
    };
    for _ in 0..2 {
        assert_eq!(
            Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
            kernel_ok(0, 0, 0)
        );
    }
    assert_eq!(count(&w), 2);
    // msgRetVal of EVENT_WAIT is the count left.
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventWait, e, &[])),
        kernel_ok(1, 0, 0)
    );
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventWait, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(count(&w), 0);
    let wait_buf = KBUF + 0x800;
    w.fill(w.init, wait_buf, 16, 0xff);
    assert_eq!(
        w.send(
            waiter,
            KernelFunction::EventWait as i32,
            e,
            msg(wait_buf, &[], 64)
        ),
        None
    );
    assert!(matches!(w.state(waiter), ThreadState::Waiting { .. }));
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(waiter), kernel_ok(0, 0, 0));
    assert_eq!(w.state(waiter), ThreadState::Ready);
    assert_eq!(
        w.peek(w.init, wait_buf, 8),
        vec![0; 8],
        "the reply landed in the waiter's buffer"
    );
    assert_eq!(count(&w), 0, "the signal went to the waiter");
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(count(&w), 1);
    w.assert_invariants();
}

/// Issue 15, finding 10: a waiter whose buffer went away while it waited
/// wakes with BAD_BUFFER, and the signal goes to the next waiter or is
/// counted instead of being used up.
#[test]
fn a_signal_is_not_lost_on_a_waiter_whose_buffer_went_away() {
    let mut w = World::new();
    let t = w.init_thread;
    let (lost, next) = (w.thread_create(t), w.thread_create(t));
    let e = w.event_create(t);
    let object = w.object_of(w.init, e);
    let count = |w: &World| match w.k.objects.get(object).map(|o| &o.body) {
        Some(ObjectBody::Event(e)) => e.count,
        other => panic!("not an event: {other:?}"),
    };
    let reply = w.kcall_ok(
        t,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        MapRequest::new(0, PAGE, protection::READ | protection::WRITE).as_bytes(),
    );
    let Ok(page) = MapReply::read_from_bytes(&reply.payload).map(|r| r.address) else {
        panic!("MAP_ANONYMOUS payload {:?}", reply.payload)
    };
    for (thread, buffer) in [(lost, page), (next, KBUF + 0x800)] {
        let waiting = w.send(
            thread,
            KernelFunction::EventWait as i32,
            e,
            msg(buffer, &[], 64),
        );
        assert_eq!(waiting, None);
    }
    w.kcall_ok(
        t,
        KernelFunction::Unmap,
        Descriptor::NULL,
        MapRequest::new(page, PAGE, 0).as_bytes(),
    );
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(lost), err(Error::BadBuffer));
    assert_eq!(w.resume(next), kernel_ok(0, 0, 0), "the signal went on");
    assert_eq!(count(&w), 0);
    // With nobody else waiting, the signal is counted.
    let reply = w.kcall_ok(
        t,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        MapRequest::new(page, PAGE, protection::READ | protection::WRITE).as_bytes(),
    );
    assert_eq!(reply.regs, kernel_ok(0, 8, 0).unwrap_or_default());
    assert_eq!(
        w.send(
            lost,
            KernelFunction::EventWait as i32,
            e,
            msg(page, &[], 64)
        ),
        None
    );
    w.kcall_ok(
        t,
        KernelFunction::Unmap,
        Descriptor::NULL,
        MapRequest::new(page, PAGE, 0).as_bytes(),
    );
    w.kcall_ok(t, KernelFunction::EventSignal, e, &[]);
    assert_eq!(w.resume(lost), err(Error::BadBuffer));
    assert_eq!(count(&w), 1);
    w.assert_invariants();
}

/// Issue 15, finding 10: UNMAP of the request's own buffer, or PROTECT that
/// takes WRITE from it, would leave no room for the reply: refused, with
/// nothing changed.
#[test]
fn unmap_and_protect_keep_the_requests_own_buffer() {
    let mut w = World::new();
    let t = w.init_thread;
    let charged = w.charged(w.init);
    let own = KBUF & !(PAGE - 1);
    for (function, request) in [
        (KernelFunction::Unmap, MapRequest::new(own, PAGE, 0)),
        (
            KernelFunction::Unmap,
            MapRequest::new(own - PAGE, 2 * PAGE, 0),
        ),
        (
            KernelFunction::Protect,
            MapRequest::new(own, PAGE, protection::READ),
        ),
    ] {
        assert_eq!(
            w.kcall(t, function, Descriptor::NULL, request.as_bytes()),
            TrapArgs::error(Error::InvalidArgument),
            "{function:?}"
        );
        assert_eq!(
            w.m.page_protection(w.space(w.init), KBUF),
            Some(protection::READ | protection::WRITE)
        );
        assert_eq!(w.charged(w.init), charged);
    }
    // Keeping WRITE is fine.
    w.kcall_ok(
        t,
        KernelFunction::Protect,
        Descriptor::NULL,
        MapRequest::new(own, PAGE, protection::READ | protection::WRITE).as_bytes(),
    );
    w.assert_invariants();
}

/// CLOCK: the ticks the kernel took and the machine's rate; it takes no data.
#[test]
fn clock_counts_the_ticks_taken() {
    let mut w = World::new();
    let t = w.init_thread;
    let read = |w: &mut World| {
        let reply = w.kcall_ok(t, KernelFunction::Clock, Descriptor::NULL, &[]);
        assert_eq!(reply.regs, kernel_ok(0, 16, 0).unwrap_or_default());
        ClockReply::read_from_bytes(&reply.payload).unwrap_or_default()
    };
    assert_eq!(read(&mut w), ClockReply::new(0, TIMER_HZ));
    for _ in 0..3 {
        w.k.tick();
    }
    assert_eq!(read(&mut w).ticks, 3);
    assert_eq!(
        w.kcall(t, KernelFunction::Clock, Descriptor::NULL, &[0; 8]),
        TrapArgs::error(Error::BadSizes)
    );
    w.assert_invariants();
}

#[test]
fn event_functions_check_target_data_and_rights() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    for kf in [KernelFunction::EventSignal, KernelFunction::EventWait] {
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, &[]),
            TrapArgs::error(Error::FunctionOutOfRange)
        );
        assert_eq!(
            f.w.kcall(c, kf, REF, &[]),
            TrapArgs::error(Error::WrongObjectType)
        );
        assert_eq!(
            f.w.kcall(c, kf, Descriptor(30), &[]),
            TrapArgs::error(Error::BadDescriptor)
        );
        assert_eq!(f.w.kcall(c, kf, e, b"x"), TrapArgs::error(Error::BadSizes));
    }
    assert_eq!(
        f.w.kcall(c, KernelFunction::EventCreate, Descriptor::NULL, b"x"),
        TrapArgs::error(Error::BadSizes)
    );
    f.w.assert_invariants();
}

#[test]
fn map_anonymous_unmap_and_protect_check_their_arguments() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let rw = protection::READ | protection::WRITE;
    let charged = f.w.charged(cp);
    let reply = f.w.kcall_ok(
        c,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        MapRequest::new(0, 2 * PAGE, rw).as_bytes(),
    );
    assert_eq!(reply.regs, kernel_ok(0, 8, 0).unwrap_or_default());
    let Ok(mapped) = MapReply::read_from_bytes(&reply.payload) else {
        panic!("MAP_ANONYMOUS payload {:?}", reply.payload)
    };
    assert_eq!(mapped.address, USER_MAP_BASE);
    // Two pages, and a page table, directory and directory-pointer table
    // (nothing else lies in USER_MAP_BASE's 512 GiB).
    assert_eq!(f.w.charged(cp), charged + 2 * PAGE + 3 * PAGE);
    // The new memory works as a message buffer.
    let at = mapped.address;
    assert_eq!(
        f.w.send(
            c,
            KernelFunction::Counters as i32,
            Descriptor::NULL,
            msg(at + PAGE, &[], 64)
        ),
        kernel_ok(0, 48, 0)
    );
    let fixed = 0x0200_0000;
    let reply = f.w.kcall_ok(
        c,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        MapRequest::new(fixed, PAGE, rw).as_bytes(),
    );
    assert_eq!(
        MapReply::read_from_bytes(&reply.payload)
            .ok()
            .map(|r| r.address),
        Some(fixed)
    );

    let map = |f: &mut Fixture, kf: KernelFunction, r: MapRequest| {
        f.w.kcall(c, kf, Descriptor::NULL, r.as_bytes())
    };
    for kf in [
        KernelFunction::MapAnonymous,
        KernelFunction::Unmap,
        KernelFunction::Protect,
    ] {
        let p = if kf == KernelFunction::Unmap {
            0
        } else {
            protection::READ
        };
        let cases = [
            (MapRequest::new(at + 1, PAGE, p), Error::InvalidArgument),
            (MapRequest::new(at, 0, p), Error::InvalidArgument),
            (MapRequest::new(at, 100, p), Error::InvalidArgument),
            (
                MapRequest::new(USER_END - PAGE, 2 * PAGE, p),
                Error::BadAddressRange,
            ),
            (
                MapRequest::new(!(PAGE - 1), PAGE, p),
                Error::BadAddressRange,
            ),
            (MapRequest::new(at, PAGE, 1 << 3), Error::ReservedBits),
            (
                MapRequest::new(at, PAGE, p).with_reserved(1),
                Error::ReservedBits,
            ),
        ];
        for (request, error) in cases {
            assert_eq!(
                map(&mut f, kf, request),
                TrapArgs::error(error),
                "{kf:?} {request:x?}"
            );
        }
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, &[0; 8]),
            TrapArgs::error(Error::BadSizes),
            "{kf:?} short request"
        );
    }
    assert_eq!(
        map(
            &mut f,
            KernelFunction::Unmap,
            MapRequest::new(at, PAGE, protection::READ)
        ),
        TrapArgs::error(Error::ReservedBits),
        "UNMAP takes no protection"
    );
    // Mapped memory is always readable: no protection without READ.
    for kf in [KernelFunction::MapAnonymous, KernelFunction::Protect] {
        for bits in [0, protection::WRITE, protection::EXECUTE] {
            let before = f.w.charged(cp);
            assert_eq!(
                map(&mut f, kf, MapRequest::new(at, PAGE, bits)),
                TrapArgs::error(Error::InvalidArgument),
                "{kf:?} with protection {bits:#x}"
            );
            assert_eq!(f.w.charged(cp), before);
        }
    }
    // Mapping over existing memory fails and charges nothing.
    let before = f.w.charged(cp);
    assert_eq!(
        map(
            &mut f,
            KernelFunction::MapAnonymous,
            MapRequest::new(DATA, PAGE, rw)
        ),
        TrapArgs::error(Error::BadAddressRange)
    );
    assert_eq!(f.w.charged(cp), before);
    // PROTECT read-only: the kernel can no longer reply into it.
    assert_eq!(
        Some(map(
            &mut f,
            KernelFunction::Protect,
            MapRequest::new(at, 2 * PAGE, protection::READ)
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.m.page_protection(f.w.space(cp), at),
        Some(protection::READ)
    );
    assert_eq!(
        f.w.send(
            c,
            KernelFunction::Counters as i32,
            Descriptor::NULL,
            msg(at, &[], 64)
        ),
        err(Error::BadBuffer)
    );
    assert_eq!(
        map(
            &mut f,
            KernelFunction::Protect,
            MapRequest::new(UNMAPPED, PAGE, protection::READ)
        ),
        TrapArgs::error(Error::BadAddressRange)
    );
    // UNMAP returns the charge.
    assert_eq!(
        Some(map(
            &mut f,
            KernelFunction::Unmap,
            MapRequest::new(at, 2 * PAGE, 0)
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(f.w.charged(cp), before - 2 * PAGE - 3 * PAGE);
    assert_eq!(
        f.w.send(
            c,
            KernelFunction::Counters as i32,
            Descriptor::NULL,
            msg(at, &[], 64)
        ),
        err(Error::BadBuffer)
    );
    f.w.assert_invariants();
}

/// Issue 15, finding 3: page tables are charged. Sparse single pages, one
/// per GiB, each cost a page and two tables (three for the first); the
/// process runs into its limit counting them, and UNMAP gives them back.
#[test]
fn page_tables_are_charged_and_sparse_mappings_hit_the_limit() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let gib = 1u64 << 30;
    // A limit a few hundred pages above what the process holds, so that the
    // sparse pages below run into it after a hundred or so.
    let limit = f.w.charged(cp) + 320 * PAGE;
    if let Some(p) = f.w.k.processes.get_mut(cp) {
        p.limit = limit;
    }
    let start = f.w.charged(cp);
    // A 512 GiB region of its own: the first page needs all three tables.
    let base = 1024 * gib;
    let mut mapped = 0u64;
    loop {
        let request = MapRequest::new(base + mapped * gib, PAGE, protection::READ);
        let regs = f.w.kcall(
            c,
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            request.as_bytes(),
        );
        if regs == TrapArgs::error(Error::OutOfMemory) {
            break;
        }
        assert_eq!(Some(regs), kernel_ok(0, 8, 0));
        mapped += 1;
        assert_eq!(
            f.w.charged(cp),
            start + mapped * PAGE + (2 * mapped + 1) * PAGE,
            "page {mapped}: the page and its tables"
        );
    }
    // Without the tables the limit would have allowed three times as many.
    assert!(
        mapped > 50 && mapped < (limit - start) / PAGE / 2,
        "{mapped} pages mapped"
    );
    f.w.assert_invariants();
    let request = MapRequest::new(base, mapped * gib, 0);
    f.w.kcall_ok(
        c,
        KernelFunction::Unmap,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(f.w.charged(cp), start);
    f.w.assert_invariants();
}

#[test]
fn memory_past_the_process_limit_is_out_of_memory() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let before = f.w.charged(cp);
    let request = MapRequest::new(0, crate::lifecycle::DEFAULT_MEMORY_LIMIT, protection::READ);
    assert_eq!(
        f.w.kcall(
            c,
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            request.as_bytes()
        ),
        TrapArgs::error(Error::OutOfMemory)
    );
    assert_eq!(f.w.charged(cp), before);
    assert_eq!(f.w.m.mapped_bytes(f.w.space(cp)), PROGRAM_BYTES);
    f.w.assert_invariants();
}

#[test]
fn capability_functions_need_the_capability() {
    // The client's descriptor 1 is its door reference, not a capability;
    // sending to NULL is sending to no capability at all.
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let door = DoorCreateRequest::new(false, 0);
    assert_eq!(
        f.w.kcall(c, KernelFunction::DoorCreate, CAP_PROCESS, door.as_bytes()),
        TrapArgs::error(Error::WrongObjectType)
    );
    let spawn = encoded(|out| SpawnRequest::encode(b"client", &[], out));
    assert_eq!(
        f.w.kcall(c, KernelFunction::Spawn, CAP_PROCESS, &spawn),
        TrapArgs::error(Error::WrongObjectType)
    );
    let exit = ExitRequest::new(0);
    assert_eq!(
        f.w.kcall(c, KernelFunction::DebugExit, CAP_MACHINE, exit.as_bytes()),
        TrapArgs::error(Error::BadDescriptor)
    );
    let null =
        f.w.kcall(c, KernelFunction::DebugExit, Descriptor::NULL, &[0; 8]);
    assert_eq!(null, TrapArgs::error(Error::FunctionOutOfRange));
    assert!(f.w.m.verdicts.is_empty());
    // The capability holder may.
    let t = f.w.init_thread;
    assert_eq!(
        Some(f.w.kcall(t, KernelFunction::DebugExit, CAP_MACHINE, exit.as_bytes())),
        kernel_ok(0, 0, 0)
    );
    let fail = ExitRequest::new(3);
    assert_eq!(
        Some(f.w.kcall(t, KernelFunction::DebugExit, CAP_MACHINE, fail.as_bytes())),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(f.w.m.verdicts, vec![true, false]);
    f.w.m.debug_exit_refused = true;
    assert_eq!(
        f.w.kcall(t, KernelFunction::DebugExit, CAP_MACHINE, exit.as_bytes()),
        TrapArgs::error(Error::NotPermitted)
    );
    let bad_kind = DoorCreateRequest::with_kind_number(2, 0);
    assert_eq!(
        f.w.kcall(
            t,
            KernelFunction::DoorCreate,
            CAP_PROCESS,
            bad_kind.as_bytes()
        ),
        TrapArgs::error(Error::InvalidArgument)
    );
    f.w.assert_invariants();
}

#[test]
fn counters_report_what_the_kernel_holds() {
    let mut f = fixture(false, 2);
    let c = f.c(0);
    let expected = KernelCounters {
        free_frames: FREE_FRAMES,
        ..f.w.k.counters()
    };
    assert_eq!(expected.processes, 4);
    assert_eq!(expected.threads, 4);
    let reply =
        f.w.kcall_ok(c, KernelFunction::Counters, Descriptor::NULL, &[]);
    assert_eq!(reply.regs, kernel_ok(0, 48, 0).unwrap_or_default());
    assert_eq!(
        KernelCounters::read_from_bytes(&reply.payload).ok(),
        Some(expected)
    );
    assert_eq!(
        f.w.kcall(c, KernelFunction::Counters, Descriptor::NULL, b"x"),
        TrapArgs::error(Error::BadSizes)
    );
    f.w.assert_invariants();
}

#[test]
fn a_kernel_reply_that_does_not_fit_the_buffer_is_bad_sizes() {
    let mut w = World::new();
    let t = w.init_thread;
    let e = w.event_create(t);
    let open = w.open_descriptors(w.init);
    let objects = w.k.counters().objects;
    let dup = DescriptorRequest::new(e, Rights::SIGNAL);
    let door = DoorCreateRequest::new(false, 0);
    let info = DescriptorRequest::new(e, Rights::NONE);
    let cases: [(KernelFunction, &[u8], u16); 6] = [
        (KernelFunction::Duplicate, dup.as_bytes(), 23),
        (KernelFunction::DoorCreate, door.as_bytes(), 39),
        (KernelFunction::DescriptorInfo, info.as_bytes(), 15),
        (KernelFunction::Counters, &[], 55),
        (KernelFunction::EventCreate, &[], 23),
        (KernelFunction::Yield, &[], 7),
    ];
    for (kf, data, total) in cases {
        let target = if kf == KernelFunction::DoorCreate {
            CAP_PROCESS
        } else {
            Descriptor::NULL
        };
        assert_eq!(
            w.kcall_msg(t, kf, target, msg(KBUF, data, total)),
            TrapArgs::error(Error::BadSizes),
            "{kf:?}"
        );
    }
    assert_eq!(w.open_descriptors(w.init), open);
    assert_eq!(w.k.counters().objects, objects);
    // One byte more and they fit.
    for (kf, data, total) in cases {
        let target = if kf == KernelFunction::DoorCreate {
            CAP_PROCESS
        } else {
            Descriptor::NULL
        };
        let regs = w.kcall_msg(t, kf, target, msg(KBUF, data, total + 1));
        assert_eq!(regs.kernel_error(), None, "{kf:?}");
    }
    w.assert_invariants();
}

#[test]
fn thread_create_starts_a_ready_thread_and_thread_exit_ends_it() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let before = f.w.k.counters();
    let charged = f.w.charged(cp);
    let (entry, stack_top) = (IMAGE + 0x10, USER_STACK_TOP - PAGE);
    let request = ThreadCreateRequest::new(entry, stack_top, 77, 16);
    let reply = f.w.kcall_ok(
        c,
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(reply.regs, kernel_ok(0, 0, 1).unwrap_or_default());
    let handle = Descriptor(reply.slots[0].descriptor);
    let Some(ObjectBody::Thread(t2)) =
        f.w.k
            .objects
            .get(f.w.object_of(cp, handle))
            .map(|o| &o.body)
    else {
        panic!("not a thread handle")
    };
    let t2 = *t2;
    assert_eq!(f.w.state(t2), ThreadState::Ready);
    assert_eq!(f.w.process_of(t2), cp);
    assert_eq!(
        f.w.m.contexts.get(&t2).map(|(_, start)| *start),
        Some(UserStart {
            entry: IMAGE + 0x10,
            stack_pointer: USER_STACK_TOP - PAGE,
            arg0: 77,
            arg1: 0,
            arg2: 0
        })
    );
    assert_eq!(f.w.k.counters().threads, before.threads + 1);
    assert_eq!(
        f.w.charged(cp),
        charged + THREAD_COST + OBJECT_COST + DESCRIPTOR_COST
    );
    let bad = [
        ThreadCreateRequest::new(entry, stack_top, 77, 17),
        ThreadCreateRequest::new(entry, stack_top, 77, 99),
        ThreadCreateRequest::new(entry, USER_STACK_TOP - 8, 77, 16),
        ThreadCreateRequest::new(USER_END, stack_top, 77, 16),
        ThreadCreateRequest::new(entry, KERNEL_HALF, 77, 16),
    ];
    for r in bad {
        assert_eq!(
            f.w.kcall(
                c,
                KernelFunction::ThreadCreate,
                Descriptor::NULL,
                r.as_bytes()
            ),
            TrapArgs::error(Error::InvalidArgument),
            "{r:x?}"
        );
    }
    let reserved = request.with_reserved(1);
    assert_eq!(
        f.w.kcall(
            c,
            KernelFunction::ThreadCreate,
            Descriptor::NULL,
            reserved.as_bytes()
        ),
        TrapArgs::error(Error::ReservedBits)
    );
    // The new thread runs and exits; the process lives on.
    f.w.exit_thread(t2, 5);
    assert!(!f.w.m.contexts.contains_key(&t2));
    assert!(f.w.process_alive(cp));
    assert_eq!(
        f.w.charged(cp),
        charged + OBJECT_COST + DESCRIPTOR_COST,
        "the handle remains"
    );
    assert!(f.w.k.take_exited().is_empty());
    // The last thread's exit ends the process with its code.
    f.w.exit_thread(c, 6);
    assert!(!f.w.process_alive(cp));
    assert_eq!(f.w.k.take_exited(), vec![(cp, 6)]);
    f.w.assert_invariants();
}

#[test]
fn exit_requests_check_their_data() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for kf in [KernelFunction::ThreadExit, KernelFunction::ProcessExit] {
        let reserved = ExitRequest::new(0).with_reserved(1);
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, reserved.as_bytes()),
            TrapArgs::error(Error::ReservedBits)
        );
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, &[0; 4]),
            TrapArgs::error(Error::BadSizes)
        );
    }
    assert!(f.w.alive(c));
    f.w.assert_invariants();
}

#[test]
fn yield_returns_and_requeues_the_caller() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(
        f.w.trap(
            c,
            TrapArgs::send(
                KernelFunction::Yield.function(),
                Descriptor::NULL,
                KBUF,
                sizes(64, 0, 0)
            )
        ),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.kcall(c, KernelFunction::Yield, Descriptor::NULL, b"x"),
        TrapArgs::error(Error::BadSizes)
    );
    f.w.assert_invariants();
}

#[test]
fn debug_write_reaches_the_console() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(
        Some(f.w.kcall(
            c,
            KernelFunction::DebugWrite,
            Descriptor::NULL,
            b"hello, hinge"
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(f.w.m.console, b"| hello, hinge");
    // A line the program ends later is not marked twice; the next is.
    for text in [&b" and more\nhinge: ready\n"[..], &[b'x'; MAX_DEBUG_WRITE]] {
        assert_eq!(
            f.w.kcall(c, KernelFunction::DebugWrite, Descriptor::NULL, text),
            kernel_ok(0, 0, 0).unwrap_or_default()
        );
    }
    let mut expected = b"| hello, hinge and more\n| hinge: ready\n| ".to_vec();
    expected.extend_from_slice(&[b'x'; MAX_DEBUG_WRITE]);
    assert_eq!(f.w.m.console, expected);
    // Issue 15, finding 4: longer writes are refused and print nothing.
    assert_eq!(
        f.w.kcall(
            c,
            KernelFunction::DebugWrite,
            Descriptor::NULL,
            &[b'y'; MAX_DEBUG_WRITE + 1]
        ),
        TrapArgs::error(Error::BadSizes)
    );
    assert_eq!(f.w.m.console.len(), expected.len());
    f.w.assert_invariants();
}

#[test]
fn spawn_passes_arguments_and_descriptors_and_checks_its_request() {
    let mut w = World::new();
    let t = w.init_thread;
    let (owner, client) = w.door_create(t, false);
    let e = w.event_create(t);
    let child = match w.spawn(
        b"worker",
        b"hello",
        &[
            DescriptorSlot::moving(owner, Rights::DOOR_OWNER),
            DescriptorSlot::copy(e, Rights::SIGNAL),
        ],
    ) {
        Ok(child) => child,
        Err(e) => panic!("SPAWN: {e}"),
    };
    let Some((_, start)) = w.m.contexts.get(&child.thread).copied() else {
        panic!("no context for the child")
    };
    assert_eq!(start.entry, IMAGE);
    assert_eq!(
        (start.arg1, start.arg2),
        (5, 2),
        "argument length, descriptor count"
    );
    assert_eq!(w.peek(child.process, start.arg0, 5), b"hello");
    assert_eq!(
        w.reference(child.process, Descriptor(1)).map(|r| r.rights),
        Some(Rights::DOOR_OWNER)
    );
    assert_eq!(
        w.reference(child.process, Descriptor(2)).map(|r| r.rights),
        Some(Rights::SIGNAL)
    );
    // Moved: the number is free again, and the handle took it (lowest free).
    assert_eq!(child.handle, owner);
    assert!(w.reference(w.init, e).is_some(), "copied");
    let door = w.object_of(w.init, client);
    assert!(matches!(
        w.k.objects.get(door).map(|o| &o.body),
        Some(ObjectBody::Door(d)) if d.owner == Some(child.process)
    ));
    assert!(
        !(1..=64).any(|d| matches!(
            w.reference(child.process, Descriptor(d))
                .and_then(|r| w.k.objects.get(r.object))
                .map(|o| &o.body),
            Some(ObjectBody::Capability(_))
        )),
        "a spawned process holds no capability unless given one"
    );

    // An unknown program: nothing is created and nothing moves.
    let before = w.counters();
    let open = w.open_descriptors(w.init);
    assert_eq!(
        w.spawn(
            b"nonesuch",
            &[],
            &[DescriptorSlot::moving(e, Rights::EVENT)]
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(w.counters(), before);
    assert_eq!(w.open_descriptors(w.init), open);
    assert!(w.reference(w.init, e).is_some());
    assert!(
        w.k.take_exited().is_empty(),
        "a process that never started did not exit"
    );
    // Malformed requests.
    let spawn_data = |name_length: u32, argument_length: u32, tail: &[u8]| {
        let mut data = SpawnRequest::with_lengths(name_length, argument_length)
            .as_bytes()
            .to_vec();
        data.extend_from_slice(tail);
        data
    };
    for data in [
        spawn_data(0, 0, &[]),
        spawn_data(6, 0, b"work"),
        spawn_data(6, 1, b"worker"),
        spawn_data(6, 0, b"worker!"),
        spawn_data(u32::MAX, u32::MAX, b"worker"),
        vec![6, 0, 0],
    ] {
        assert_eq!(
            w.kcall(t, KernelFunction::Spawn, CAP_PROCESS, &data),
            TrapArgs::error(Error::BadSizes),
            "{data:?}"
        );
    }
    let too_long = vec![b'a'; MAX_ARGUMENT_BYTES + 1];
    let mut data = spawn_data(6, too_long.len() as u32, b"worker");
    data.extend_from_slice(&too_long);
    let regs = w.kcall_msg(
        t,
        KernelFunction::Spawn,
        CAP_PROCESS,
        msg(DATA + 0x4000, &data, 2048),
    );
    assert_eq!(regs, TrapArgs::error(Error::InvalidArgument));
    assert_eq!(w.counters(), before);
    w.assert_invariants();
}
