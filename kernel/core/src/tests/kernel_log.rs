//! The kernel log's handover (ABI.md §6.7): LOG_TAKE's refusals changing
//! nothing, one taker at a time, lines of both sources reaching LOG_READ
//! whole and in order, the event signalled when they arrive, a full ring
//! counting what it dropped, a buffer without room for a line refused,
//! COM1 grantable only while the log is taken, and the port given back
//! (unread lines first) when the kernel-log object goes, also by its
//! holder's death. And PROCESS_KILL (§6.7 too): the process a handle
//! names ends, its refusals changing nothing.

use abi::kcall::{IoPortRequest, LogReadReply, LogTakeRequest, MAX_LOG_LINE, REPLY_PAYLOAD_OFFSET};
use abi::process::FIRST_MACHINE_CONTROL;
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights};
use zerocopy::{FromBytes, IntoBytes};

use crate::thread::ThreadId;

use super::fake_machine::{FAKE_LOG_BYTES, KBUF, KTOTAL};
use super::harness::*;

fn refused(w: &mut World, expected: Error, call: impl FnOnce(&mut World) -> Result<(), Error>) {
    let before = w.snapshot();
    assert_eq!(call(w), Err(expected));
    assert_eq!(w.snapshot(), before, "a refusal changed something");
    w.assert_invariants();
}

fn take(w: &mut World, t: ThreadId, event: Descriptor) -> Result<Descriptor, Error> {
    w.new_descriptor(
        t,
        KernelFunction::LogTake,
        FIRST_MACHINE_CONTROL,
        LogTakeRequest::new(event).as_bytes(),
    )
}

/// LOG_READ with a buffer of `total` bytes: (lines, lost, the bytes).
fn read(
    w: &mut World,
    t: ThreadId,
    log: Descriptor,
    total: u16,
) -> Result<(u32, u32, Vec<u8>), Error> {
    let regs = w.kcall_msg(t, KernelFunction::LogRead, log, msg(KBUF, &[], total));
    if let Some(error) = regs.kernel_error() {
        return Err(error);
    }
    let p = w.process_of(t);
    let reply = w.parse_reply(p, KBUF, regs);
    let (header, bytes) = LogReadReply::read_from_prefix(&reply.payload).expect("header");
    assert_eq!(regs.arg0 as usize, bytes.len(), "msgRetVal is the bytes");
    Ok((header.lines, header.lost, bytes.to_vec()))
}

fn debug_write(w: &mut World, t: ThreadId, bytes: &[u8]) {
    let regs = w.kcall(t, KernelFunction::DebugWrite, Descriptor::NULL, bytes);
    assert_eq!(regs.kernel_error(), None);
}

fn event_count(w: &World, t: ThreadId, event: Descriptor) -> u32 {
    let object = w.object_of(w.process_of(t), event);
    match w.k.objects.get(object).map(|o| &o.body) {
        Some(crate::object::ObjectBody::Event(e)) => e.count,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn take_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let (_, client) = w.door_create(t, false);
    refused(&mut w, Error::WrongObjectType, |w| {
        take(w, t, client).map(drop)
    });
    refused(&mut w, Error::BadDescriptor, |w| {
        take(w, t, Descriptor(999)).map(drop)
    });
    let wait_only = w.duplicate(t, event, Rights::WAIT).expect("duplicate");
    refused(&mut w, Error::MissingRight, |w| {
        take(w, t, wait_only).map(drop)
    });
    refused(&mut w, Error::ReservedBits, |w| {
        let mut request = LogTakeRequest::new(event);
        request.reserved = 1;
        w.new_descriptor(
            t,
            KernelFunction::LogTake,
            FIRST_MACHINE_CONTROL,
            request.as_bytes(),
        )
        .map(drop)
    });
    // Not the machine-control capability: the target's kind.
    refused(&mut w, Error::WrongObjectType, |w| {
        w.new_descriptor(
            t,
            KernelFunction::LogTake,
            event,
            LogTakeRequest::new(event).as_bytes(),
        )
        .map(drop)
    });
    let log = take(&mut w, t, event).expect("take");
    assert_eq!(
        w.info(t, log),
        Ok((abi::ObjectKind::KernelLog as u32, Rights::KERNEL_LOG.0))
    );
    // One taker at a time.
    refused(&mut w, Error::LogTaken, |w| take(w, t, event).map(drop));
    // LOG_READ's own refusals: a buffer without room for a line, a request.
    let short = (REPLY_PAYLOAD_OFFSET + size_of::<LogReadReply>() + MAX_LOG_LINE - 1) as u16;
    refused(&mut w, Error::BadSizes, |w| {
        read(w, t, log, short).map(drop)
    });
    refused(&mut w, Error::BadSizes, |w| {
        let regs = w.kcall(t, KernelFunction::LogRead, log, &[0]);
        regs.kernel_error().map_or(Ok(()), Err)
    });
    let no_send = w.duplicate(t, log, Rights::TRANSFER).expect("duplicate");
    refused(&mut w, Error::MissingRight, |w| {
        read(w, t, no_send, KTOTAL).map(drop)
    });
    w.assert_invariants();
}

#[test]
fn lines_go_to_the_ring_whole_and_signal_the_event() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    w.m.kernel_line("before");
    let log = take(&mut w, t, event).expect("take");
    let console_before = w.m.console.clone();
    assert_eq!(event_count(&w, t, event), 0);
    debug_write(&mut w, t, b"echo: half");
    // No whole line yet: nothing to read, nothing signalled.
    assert_eq!(event_count(&w, t, event), 0);
    w.m.kernel_line("between");
    debug_write(&mut w, t, b" and half\n");
    assert_eq!(
        event_count(&w, t, event),
        1,
        "one signal for the trap's lines"
    );
    assert_eq!(w.m.console, console_before, "nothing reaches the port");
    assert_eq!(
        read(&mut w, t, log, KTOTAL),
        Ok((2, 0, b"hinge: between\n| echo: half and half\n".to_vec()))
    );
    assert_eq!(read(&mut w, t, log, KTOTAL), Ok((0, 0, Vec::new())));
    w.assert_invariants();
}

#[test]
fn a_full_ring_counts_the_lines_it_dropped() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let log = take(&mut w, t, event).expect("take");
    // Lines of 64 bytes with the mark: the ring holds FAKE_LOG_BYTES / 64.
    let line = [b'x'; 61];
    let written = 20;
    for _ in 0..written {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        debug_write(&mut w, t, &bytes);
    }
    let kept = FAKE_LOG_BYTES / 64;
    let (lines, lost, bytes) = read(&mut w, t, log, KTOTAL).expect("read");
    assert_eq!(
        (lines as usize, lost as usize),
        (kept.min(KTOTAL as usize / 64 - 1), written - kept)
    );
    assert_eq!(bytes.len(), lines as usize * 64);
    // The rest comes at the next read, with nothing more lost.
    let (rest, lost, _) = read(&mut w, t, log, KTOTAL).expect("read");
    assert_eq!((lines + rest) as usize, kept);
    assert_eq!(lost, 0);
    w.assert_invariants();
}

#[test]
fn com1_is_grantable_only_while_the_log_is_taken() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let grant = |w: &mut World| {
        let regs = w.kcall(
            t,
            KernelFunction::IoPortGrant,
            FIRST_MACHINE_CONTROL,
            IoPortRequest::new(Descriptor::NULL, 0x3f8, 8).as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    };
    refused(&mut w, Error::KernelDevice, grant);
    let log = take(&mut w, t, event).expect("take");
    assert_eq!(grant(&mut w), Ok(()));
    w.close(t, log);
    let child = w.spawn_ok(b"worker", &[]);
    refused(&mut w, Error::KernelDevice, |w| {
        let regs = w.kcall(
            t,
            KernelFunction::IoPortGrant,
            FIRST_MACHINE_CONTROL,
            IoPortRequest::new(child.handle, 0x3f8, 1).as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    });
    w.assert_invariants();
}

#[test]
fn the_port_comes_back_with_unread_lines_when_the_object_goes() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let log = take(&mut w, t, event).expect("take");
    let before = w.counters();
    debug_write(&mut w, t, b"one\n");
    w.m.kernel_line("two");
    debug_write(&mut w, t, b"three");
    let console = w.m.console.len();
    w.close(t, log);
    assert_eq!(&w.m.console[console..], b"| one\nhinge: two\n| three");
    assert!(!w.m.log.is_taken());
    assert_eq!(w.k.kernel_log, None);
    // The object and its hold on the event went.
    assert_eq!(w.counters().0.objects, before.0.objects - 1);
    debug_write(&mut w, t, b"\n");
    assert!(w.m.console.ends_with(b"| three\n"));
    // Taken again, by anyone with the capability.
    take(&mut w, t, event).expect("taken again");
    w.assert_invariants();
}

#[test]
fn the_holders_death_gives_the_port_back() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let log = take(&mut w, t, event).expect("take");
    let c = w.spawn_ok(b"worker", &[DescriptorSlot::copy(log, Rights::KERNEL_LOG)]);
    w.close(t, log);
    assert!(w.m.log.is_taken(), "the child holds the log now");
    debug_write(&mut w, c.thread, b"child\n");
    let console = w.m.console.len();
    w.exit_process(c.thread, 0);
    assert_eq!(&w.m.console[console..], b"| child\n");
    assert!(!w.m.log.is_taken());
    assert_eq!(w.k.kernel_log, None);
    w.assert_invariants();
}

// ----- PROCESS_KILL (the shell's `kill`, through procman) -----

fn kill(w: &mut World, t: ThreadId, handle: Descriptor, code: u32) -> Result<(), Error> {
    let regs = w.kcall(
        t,
        KernelFunction::ProcessKill,
        handle,
        abi::kcall::ExitRequest::new(code).as_bytes(),
    );
    regs.kernel_error().map_or(Ok(()), Err)
}

#[test]
fn process_kill_ends_the_process_and_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let c = w.spawn_ok(b"worker", &[]);
    let event = w.event_create(t);
    refused(&mut w, Error::WrongObjectType, |w| kill(w, t, event, 1));
    let no_send = w
        .duplicate(t, c.handle, Rights::TRANSFER)
        .expect("duplicate");
    refused(&mut w, Error::MissingRight, |w| kill(w, t, no_send, 1));
    refused(&mut w, Error::ReservedBits, |w| {
        let mut request = abi::kcall::ExitRequest::new(1);
        request.reserved = 1;
        let regs = w.kcall(t, KernelFunction::ProcessKill, c.handle, request.as_bytes());
        regs.kernel_error().map_or(Ok(()), Err)
    });
    assert!(w.process_alive(c.process));
    assert_eq!(kill(&mut w, t, c.handle, 0xffff_fffe), Ok(()));
    assert!(!w.process_alive(c.process));
    assert!(!w.alive(c.thread));
    refused(&mut w, Error::PeerDied, |w| kill(w, t, c.handle, 1));
    w.assert_invariants();
}
