//! Shared memory objects (ABI.md §6.5): SMO_SHARE, SMO_CLAIM, SMO_PASS,
//! SMO_READ, SMO_WRITE and PROCESS_ID between spawned processes named by
//! the ids init gives them (PROCESS_SET_COOKIE, as procman does); every
//! refusal with its own error and nothing changed (memory bytes included);
//! copy-on-write in the owner's region; the ends of owners and targets, a
//! process killed between the chunks of a long copy; and a property test
//! of random sequences against a model of the SMO table and the bytes.

use std::collections::BTreeMap;

use abi::kcall::protection::{READ, WRITE};
use abi::kcall::{
    CookieRequest, MemoryMapRequest, ProcessIdReply, SmoCopyRequest, SmoPassRequest, SmoReply,
    SmoRequest, SmoShareRequest, smo,
};
use abi::{Descriptor, Error, KernelFunction, PAGE_SIZE};
use proptest::prelude::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::machine::Machine;
use crate::process::ProcessId;
use crate::thread::ThreadId;

use super::fake_machine::*;
use super::harness::*;

/// Where the tests keep the bytes they share (in every program's data).
const SHARED: u64 = DATA + 0x4000;
/// Where the tests copy to and from (in every program's data).
const LOCAL: u64 = DATA + 0x8000;
/// Where a test maps a memory object.
const AT: u64 = 0x2000_0000;

/// Three spawned processes with ids 1, 2, 3 (init has none).
struct Three {
    w: World,
    kids: [Child; 3],
}

fn three() -> Three {
    let mut w = World::new();
    let kids = [
        w.spawn_ok(b"server", &[]),
        w.spawn_ok(b"client", &[]),
        w.spawn_ok(b"worker", &[]),
    ];
    for (i, kid) in kids.iter().enumerate() {
        set_id(&mut w, kid.handle, i as u64 + 1);
    }
    Three { w, kids }
}

impl Three {
    fn t(&self, i: usize) -> ThreadId {
        self.kids[i].thread
    }
    fn p(&self, i: usize) -> ProcessId {
        self.kids[i].process
    }
}

fn set_id(w: &mut World, handle: Descriptor, id: u64) {
    let init = w.init_thread;
    w.kcall_ok(
        init,
        KernelFunction::ProcessSetCookie,
        handle,
        CookieRequest::new(id).as_bytes(),
    );
}

fn result(regs: abi::TrapArgs) -> Result<(), Error> {
    regs.kernel_error().map_or(Ok(()), Err)
}

fn share(
    w: &mut World,
    t: ThreadId,
    target: u64,
    address: u64,
    size: u64,
    permissions: u32,
) -> Result<u32, Error> {
    let request = SmoShareRequest::new(target, address, size, permissions);
    let regs = w.kcall(
        t,
        KernelFunction::SmoShare,
        Descriptor::NULL,
        request.as_bytes(),
    );
    result(regs)?;
    let p = w.process_of(t);
    let reply = w.parse_reply(p, KBUF, regs);
    match SmoReply::read_from_bytes(&reply.payload) {
        Ok(r) => Ok(r.id),
        Err(_) => panic!("SMO_SHARE's reply is {} bytes", reply.payload.len()),
    }
}

fn share_ok(w: &mut World, t: ThreadId, target: u64, address: u64, size: u64, perms: u32) -> u32 {
    match share(w, t, target, address, size, perms) {
        Ok(id) => id,
        Err(e) => panic!("SMO_SHARE: {e}"),
    }
}

fn claim(w: &mut World, t: ThreadId, id: u32) -> Result<(), Error> {
    let request = SmoRequest::new(id);
    result(w.kcall(
        t,
        KernelFunction::SmoClaim,
        Descriptor::NULL,
        request.as_bytes(),
    ))
}

fn pass(w: &mut World, t: ThreadId, id: u32, target: u64) -> Result<(), Error> {
    let request = SmoPassRequest::new(id, target);
    result(w.kcall(
        t,
        KernelFunction::SmoPass,
        Descriptor::NULL,
        request.as_bytes(),
    ))
}

fn read_mem(
    w: &mut World,
    t: ThreadId,
    id: u32,
    off: u64,
    size: u64,
    dest: u64,
) -> Result<(), Error> {
    let request = SmoCopyRequest::new(id, off, size, dest);
    result(w.kcall(
        t,
        KernelFunction::SmoRead,
        Descriptor::NULL,
        request.as_bytes(),
    ))
}

fn write_mem(
    w: &mut World,
    t: ThreadId,
    id: u32,
    off: u64,
    size: u64,
    src: u64,
) -> Result<(), Error> {
    let request = SmoCopyRequest::new(id, off, size, src);
    result(w.kcall(
        t,
        KernelFunction::SmoWrite,
        Descriptor::NULL,
        request.as_bytes(),
    ))
}

fn process_id(w: &mut World, t: ThreadId) -> u64 {
    let reply = w.kcall_ok(t, KernelFunction::ProcessId, Descriptor::NULL, &[]);
    match ProcessIdReply::read_from_bytes(&reply.payload) {
        Ok(r) => r.id,
        Err(_) => panic!("PROCESS_ID's reply is {} bytes", reply.payload.len()),
    }
}

/// The bytes every process's memory shows where tests look.
fn memory(w: &World, ps: &[ProcessId]) -> Vec<Vec<u8>> {
    ps.iter()
        .flat_map(|p| [w.peek(*p, SHARED, PAGE_SIZE), w.peek(*p, LOCAL, PAGE_SIZE)])
        .collect()
}

/// A refused call must leave everything as it was, memory included.
fn refused(s: &mut Three, expected: Error, call: impl FnOnce(&mut World) -> Result<(), Error>) {
    let ps = [s.p(0), s.p(1), s.p(2)];
    let (before, bytes) = (s.w.snapshot(), memory(&s.w, &ps));
    assert_eq!(call(&mut s.w), Err(expected));
    assert_eq!(s.w.snapshot(), before, "a refused call changed something");
    assert_eq!(memory(&s.w, &ps), bytes, "a refused call changed memory");
    s.w.assert_invariants();
}

#[test]
fn a_process_learns_its_id_from_process_id() {
    let mut s = three();
    let init = s.w.init_thread;
    assert_eq!(process_id(&mut s.w, init), 0, "init was given none");
    for i in 0..3 {
        let t = s.t(i);
        assert_eq!(process_id(&mut s.w, t), i as u64 + 1);
    }
    let t = s.t(0);
    let regs =
        s.w.kcall(t, KernelFunction::ProcessId, Descriptor::NULL, &[1]);
    assert_eq!(regs.kernel_error(), Some(Error::BadSizes));
}

#[test]
fn the_target_reads_and_writes_the_owners_bytes() {
    let mut s = three();
    let (a, b) = (s.t(0), s.t(1));
    s.w.poke(s.p(0), SHARED, b"the owner's bytes");
    let charged = s.w.charged(s.p(0));
    let id = share_ok(&mut s.w, a, 2, SHARED, 17, smo::READ | smo::WRITE);
    assert!(id < smo::ID_LIMIT);
    assert_eq!(
        s.w.charged(s.p(0)),
        charged + smo::COST,
        "charged to its creator"
    );
    s.w.assert_invariants();
    assert_eq!(read_mem(&mut s.w, b, id, 0, 17, LOCAL), Ok(()));
    assert_eq!(s.w.peek(s.p(1), LOCAL, 17), b"the owner's bytes");
    s.w.poke(s.p(1), LOCAL + 100, b"TARGET");
    assert_eq!(write_mem(&mut s.w, b, id, 4, 6, LOCAL + 100), Ok(()));
    assert_eq!(s.w.peek(s.p(0), SHARED, 17), b"the TARGETs bytes");
    // A size of 0 inside the SMO copies nothing and succeeds.
    assert_eq!(read_mem(&mut s.w, b, id, 17, 0, LOCAL), Ok(()));
    assert_eq!(claim(&mut s.w, a, id), Ok(()));
    assert_eq!(s.w.charged(s.p(0)), charged, "the charge goes with it");
    assert_eq!(s.w.k.smo_count(), 0);
    s.w.assert_invariants();
}

#[test]
fn share_refusals_change_nothing() {
    let mut s = three();
    let a = s.t(0);
    let ok = SmoShareRequest::new(2, SHARED, 16, smo::READ);
    let raw = |w: &mut World, request: &[u8]| {
        result(w.kcall(a, KernelFunction::SmoShare, Descriptor::NULL, request))
    };
    refused(&mut s, Error::ReservedBits, |w| {
        raw(w, ok.with_reserved(1).as_bytes())
    });
    refused(&mut s, Error::ReservedBits, |w| {
        share(w, a, 2, SHARED, 16, 4).map(|_| ())
    });
    refused(&mut s, Error::BadSizes, |w| raw(w, &ok.as_bytes()[..24]));
    refused(&mut s, Error::FunctionOutOfRange, |w| {
        result(w.kcall(a, KernelFunction::SmoShare, Descriptor(1), ok.as_bytes()))
    });
    refused(&mut s, Error::InvalidArgument, |w| {
        share(w, a, 2, SHARED, 16, 0).map(|_| ())
    });
    refused(&mut s, Error::InvalidArgument, |w| {
        share(w, a, 2, SHARED, 0, 1).map(|_| ())
    });
    refused(&mut s, Error::BadAddressRange, |w| {
        share(w, a, 2, u64::MAX - 4, 16, 1).map(|_| ())
    });
    refused(&mut s, Error::BadAddressRange, |w| {
        share(w, a, 2, KERNEL_HALF, 16, 1).map(|_| ())
    });
    refused(&mut s, Error::BadAddressRange, |w| {
        share(w, a, 2, abi::process::USER_END - 8, 16, 1).map(|_| ())
    });
    for id in [0, 4, u64::MAX] {
        refused(&mut s, Error::NoSuchProcessId, |w| {
            share(w, a, id, SHARED, 16, 1).map(|_| ())
        });
    }
    // An id two live processes have names neither.
    let handle = s.kids[2].handle;
    set_id(&mut s.w, handle, 2);
    refused(&mut s, Error::NoSuchProcessId, |w| {
        share(w, a, 2, SHARED, 16, 1).map(|_| ())
    });
    set_id(&mut s.w, handle, 3);
    // Past the creator's limit.
    let p = s.p(0);
    let charged = s.w.charged(p);
    if let Some(q) = s.w.k.processes.get_mut(p) {
        q.limit = charged + smo::COST - 1;
    }
    refused(&mut s, Error::OutOfMemory, |w| {
        share(w, a, 2, SHARED, 16, 1).map(|_| ())
    });
}

#[test]
fn claim_and_pass_refusals_change_nothing() {
    let mut s = three();
    let (a, b, c) = (s.t(0), s.t(1), s.t(2));
    let id = share_ok(&mut s.w, a, 2, SHARED, 64, smo::READ);
    refused(&mut s, Error::NoSuchSmo, |w| claim(w, a, id ^ 1));
    refused(&mut s, Error::NoSuchSmo, |w| claim(w, a, id + (1 << 16)));
    refused(&mut s, Error::NotSmoOwner, |w| claim(w, b, id));
    refused(&mut s, Error::ReservedBits, |w| {
        let request = SmoRequest::new(id).with_reserved(1);
        result(w.kcall(
            a,
            KernelFunction::SmoClaim,
            Descriptor::NULL,
            request.as_bytes(),
        ))
    });
    refused(&mut s, Error::NotSmoTarget, |w| pass(w, a, id, 3));
    refused(&mut s, Error::NotSmoTarget, |w| pass(w, c, id, 3));
    refused(&mut s, Error::NoSuchProcessId, |w| pass(w, b, id, 9));
    refused(&mut s, Error::NoSuchSmo, |w| pass(w, b, id ^ 1, 3));
    refused(&mut s, Error::ReservedBits, |w| {
        let request = SmoPassRequest::new(id, 3).with_reserved(1);
        result(w.kcall(
            b,
            KernelFunction::SmoPass,
            Descriptor::NULL,
            request.as_bytes(),
        ))
    });
    assert_eq!(claim(&mut s.w, a, id), Ok(()));
    refused(&mut s, Error::NoSuchSmo, |w| claim(w, a, id));
}

#[test]
fn copy_refusals_change_nothing() {
    let mut s = three();
    let (a, b, c) = (s.t(0), s.t(1), s.t(2));
    s.w.poke(s.p(0), SHARED, &[0x5a; PAGE_SIZE]);
    s.w.poke(s.p(1), LOCAL, &[0xa5; PAGE_SIZE]);
    let read_only = share_ok(&mut s.w, a, 2, SHARED, PAGE, smo::READ);
    let write_only = share_ok(&mut s.w, a, 2, SHARED, PAGE, smo::WRITE);
    refused(&mut s, Error::NoSuchSmo, |w| {
        read_mem(w, b, 12345, 0, 1, LOCAL)
    });
    refused(&mut s, Error::NotSmoTarget, |w| {
        read_mem(w, c, read_only, 0, 1, LOCAL)
    });
    refused(&mut s, Error::NotSmoTarget, |w| {
        read_mem(w, a, read_only, 0, 1, LOCAL)
    });
    refused(&mut s, Error::MissingRight, |w| {
        write_mem(w, b, read_only, 0, 1, LOCAL)
    });
    refused(&mut s, Error::MissingRight, |w| {
        read_mem(w, b, write_only, 0, 1, LOCAL)
    });
    refused(&mut s, Error::InvalidArgument, |w| {
        read_mem(w, b, read_only, 0, smo::MAX_COPY + 1, LOCAL)
    });
    refused(&mut s, Error::SmoOutOfBounds, |w| {
        read_mem(w, b, read_only, 0xfff, 2, LOCAL)
    });
    refused(&mut s, Error::SmoOutOfBounds, |w| {
        read_mem(w, b, read_only, 0x1001, 0, LOCAL)
    });
    refused(&mut s, Error::SmoOutOfBounds, |w| {
        read_mem(w, b, read_only, u64::MAX, 2, LOCAL)
    });
    refused(&mut s, Error::ReservedBits, |w| {
        let request = SmoCopyRequest::new(read_only, 0, 1, LOCAL).with_reserved(1);
        result(w.kcall(
            b,
            KernelFunction::SmoRead,
            Descriptor::NULL,
            request.as_bytes(),
        ))
    });
    // The caller's buffer: unmapped, running into unmapped memory, read-only.
    refused(&mut s, Error::BadBuffer, |w| {
        read_mem(w, b, read_only, 0, 16, UNMAPPED)
    });
    refused(&mut s, Error::BadBuffer, |w| {
        read_mem(w, b, read_only, 0, PAGE, DATA_END - PAGE / 2)
    });
    refused(&mut s, Error::BadBuffer, |w| {
        read_mem(w, b, read_only, 0, 16, IMAGE)
    });
    refused(&mut s, Error::BadBuffer, |w| {
        write_mem(w, b, write_only, 0, 16, UNMAPPED)
    });
    refused(&mut s, Error::BadBuffer, |w| {
        write_mem(w, b, write_only, 0, 16, KERNEL_HALF)
    });
    // The owner's memory gone from under the SMO, or read-only for a write.
    let gone = share_ok(&mut s.w, a, 2, UNMAPPED, 0x100, smo::READ | smo::WRITE);
    refused(&mut s, Error::SmoRegionGone, |w| {
        read_mem(w, b, gone, 0, 16, LOCAL)
    });
    refused(&mut s, Error::SmoRegionGone, |w| {
        write_mem(w, b, gone, 0, 16, LOCAL)
    });
    let straddling = share_ok(&mut s.w, a, 2, DATA_END - 8, 16, smo::READ | smo::WRITE);
    refused(&mut s, Error::SmoRegionGone, |w| {
        read_mem(w, b, straddling, 0, 16, LOCAL)
    });
    assert_eq!(read_mem(&mut s.w, b, straddling, 0, 8, LOCAL), Ok(()));
    let code = share_ok(&mut s.w, a, 2, IMAGE, 16, smo::READ | smo::WRITE);
    refused(&mut s, Error::SmoRegionGone, |w| {
        write_mem(w, b, code, 0, 16, LOCAL)
    });
    assert_eq!(read_mem(&mut s.w, b, code, 0, 1, LOCAL), Ok(()));
}

#[test]
fn unmapping_after_sharing_fails_the_copy_and_never_faults() {
    let mut s = three();
    let (a, b) = (s.t(0), s.t(1));
    let d = s.w.memory_ok(a, 1);
    assert_eq!(s.w.memory_map(a, d, AT, 0, PAGE, READ | WRITE), Ok(AT));
    let id = share_ok(&mut s.w, a, 2, AT, PAGE, smo::READ | smo::WRITE);
    assert_eq!(write_mem(&mut s.w, b, id, 0, 8, LOCAL), Ok(()));
    assert!(s.w.unmap(a, AT, PAGE).is_ok());
    refused(&mut s, Error::SmoRegionGone, |w| {
        read_mem(w, b, id, 0, 8, LOCAL)
    });
    // Mapped again (the SMO names addresses, not frames): it works again.
    assert_eq!(s.w.memory_map(a, d, AT, 0, PAGE, READ), Ok(AT));
    assert_eq!(read_mem(&mut s.w, b, id, 0, 8, LOCAL), Ok(()));
    refused(&mut s, Error::SmoRegionGone, |w| {
        write_mem(w, b, id, 0, 8, LOCAL)
    });
}

#[test]
fn pass_hands_the_target_on() {
    let mut s = three();
    let (a, b, c) = (s.t(0), s.t(1), s.t(2));
    s.w.poke(s.p(0), SHARED, b"passed on");
    let id = share_ok(&mut s.w, a, 2, SHARED, 9, smo::READ);
    assert_eq!(pass(&mut s.w, b, id, 3), Ok(()));
    s.w.assert_invariants();
    refused(&mut s, Error::NotSmoTarget, |w| {
        read_mem(w, b, id, 0, 9, LOCAL)
    });
    assert_eq!(read_mem(&mut s.w, c, id, 0, 9, LOCAL), Ok(()));
    assert_eq!(s.w.peek(s.p(2), LOCAL, 9), b"passed on");
    // To the owner itself, then back.
    assert_eq!(pass(&mut s.w, c, id, 1), Ok(()));
    assert_eq!(read_mem(&mut s.w, a, id, 0, 9, LOCAL), Ok(()));
    assert_eq!(pass(&mut s.w, a, id, 2), Ok(()));
    assert_eq!(read_mem(&mut s.w, b, id, 0, 9, LOCAL), Ok(()));
}

#[test]
fn an_owners_end_destroys_its_smos_a_targets_end_leaves_them_targetless() {
    let mut s = three();
    let (a, b, c) = (s.t(0), s.t(1), s.t(2));
    let by_b = share_ok(&mut s.w, b, 3, SHARED, 8, smo::READ);
    let for_b = share_ok(&mut s.w, a, 2, SHARED, 8, smo::READ);
    let charged = s.w.charged(s.p(0));
    assert_eq!(s.w.k.smo_count(), 2);
    s.w.exit_process(b, 0);
    s.w.assert_invariants();
    assert_eq!(s.w.k.smo_count(), 1, "b's SMO went with b");
    assert_eq!(
        read_mem(&mut s.w, c, by_b, 0, 8, LOCAL),
        Err(Error::NoSuchSmo)
    );
    // a's SMO stays, aimed at nobody: no one may read or pass it.
    assert_eq!(s.w.charged(s.p(0)), charged);
    assert_eq!(
        read_mem(&mut s.w, a, for_b, 0, 8, LOCAL),
        Err(Error::NotSmoTarget)
    );
    assert_eq!(pass(&mut s.w, c, for_b, 3), Err(Error::NotSmoTarget));
    // A new process given the ended one's id inherits nothing.
    let d = s.w.spawn_ok(b"worker", &[]);
    set_id(&mut s.w, d.handle, 2);
    assert_eq!(
        read_mem(&mut s.w, d.thread, for_b, 0, 8, LOCAL),
        Err(Error::NotSmoTarget)
    );
    assert_eq!(claim(&mut s.w, a, for_b), Ok(()));
    assert_eq!(s.w.charged(s.p(0)), charged - smo::COST);
    assert_eq!(s.w.k.smo_count(), 0);
    s.w.assert_invariants();
}

#[test]
fn a_write_into_a_copy_on_write_page_copies_it_first() {
    let mut s = three();
    let (a, b) = (s.t(0), s.t(1));
    let parent = s.w.memory_ok(a, 2);
    assert_eq!(
        s.w.memory_map(a, parent, AT, 0, 2 * PAGE, READ | WRITE),
        Ok(AT)
    );
    assert!(s.w.user_write(a, AT, b"parent page"));
    let child = match s.w.memory_cow(a, parent, 0, 2 * PAGE) {
        Ok(d) => d,
        Err(e) => panic!("MEMORY_COW: {e}"),
    };
    let child_at = AT + 0x10_0000;
    let request = MemoryMapRequest::new(child_at, 0, 2 * PAGE, READ | WRITE);
    let regs =
        s.w.kcall(a, KernelFunction::MemoryMap, child, request.as_bytes());
    assert_eq!(regs.kernel_error(), None);
    let id = share_ok(&mut s.w, a, 2, child_at, 2 * PAGE, smo::WRITE);
    let frames = s.w.m.free_frames();
    s.w.poke(s.p(1), LOCAL, b"CHILD");
    assert_eq!(write_mem(&mut s.w, b, id, 0, 5, LOCAL), Ok(()));
    assert_eq!(s.w.m.free_frames(), frames - 1, "one page copied, no more");
    assert_eq!(s.w.peek(s.p(0), child_at, 11), b"CHILDt page");
    assert_eq!(
        s.w.peek(s.p(0), AT, 11),
        b"parent page",
        "the parent keeps its bytes"
    );
    s.w.assert_invariants();
}

/// A copy of more than `MAX_COPY` bytes is several calls (userlib's loop);
/// a process killed between two of them loses nothing of any other
/// process, and every frame comes back once all have ended.
#[test]
fn a_process_killed_between_the_chunks_of_a_copy_loses_nothing_of_others() {
    for kill_owner in [false, true] {
        let mut s = three();
        let (a, b) = (s.t(0), s.t(1));
        let frames = s.w.m.free_frames();
        let size = 3 * smo::MAX_COPY;
        // The owner's region: a copy-on-write child, so each page written
        // is copied first (frames taken in the middle of the copy).
        let pages = (size / PAGE) as u32;
        let parent = s.w.memory_ok(a, pages);
        assert_eq!(s.w.memory_map(a, parent, AT, 0, size, READ | WRITE), Ok(AT));
        assert!(s.w.user_write(a, AT, b"the parent's"));
        let child = match s.w.memory_cow(a, parent, 0, size) {
            Ok(d) => d,
            Err(e) => panic!("MEMORY_COW: {e}"),
        };
        let child_at = AT + 0x100_0000;
        let request = MemoryMapRequest::new(child_at, 0, size, READ | WRITE);
        assert_eq!(
            s.w.kcall(a, KernelFunction::MemoryMap, child, request.as_bytes())
                .kernel_error(),
            None
        );
        // b's source: an anonymous mapping of its own.
        let map = abi::kcall::map_anonymous(0, size, READ | WRITE);
        let reply = s.w.kcall_ok(
            b,
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            map.as_bytes(),
        );
        let source = u64::from_le_bytes(reply.payload[..8].try_into().unwrap_or_default());
        s.w.fill(s.p(1), source, size as usize, 0xbb);
        s.w.poke(s.p(2), LOCAL, b"c's own bytes");
        let id = share_ok(&mut s.w, a, 2, child_at, size, smo::WRITE | smo::READ);
        // The first chunk.
        assert_eq!(write_mem(&mut s.w, b, id, 0, smo::MAX_COPY, source), Ok(()));
        let victim = if kill_owner { s.p(0) } else { s.p(1) };
        // Killed (a fault ends the process) between two chunks.
        let victim_thread = if kill_owner { a } else { b };
        s.w.run(victim_thread);
        s.w.k.fault(&mut s.w.m);
        assert!(!s.w.process_alive(victim));
        s.w.assert_invariants();
        if kill_owner {
            assert_eq!(
                write_mem(
                    &mut s.w,
                    b,
                    id,
                    smo::MAX_COPY,
                    smo::MAX_COPY,
                    source + smo::MAX_COPY
                ),
                Err(Error::NoSuchSmo),
                "the owner's SMO went with it"
            );
            assert_eq!(
                s.w.peek(s.p(1), source, 16),
                vec![0xbb; 16],
                "b's bytes are b's"
            );
        } else {
            assert_eq!(
                s.w.peek(s.p(0), child_at, 4),
                vec![0xbb; 4],
                "the chunk written is the owner's"
            );
            assert_eq!(
                s.w.peek(s.p(0), child_at + smo::MAX_COPY, 4),
                b"\0\0\0\0",
                "the next chunk never came"
            );
            assert_eq!(
                read_mem(&mut s.w, a, id, 0, 4, LOCAL),
                Err(Error::NotSmoTarget)
            );
        }
        assert_eq!(s.w.peek(s.p(2), LOCAL, 13), b"c's own bytes");
        // Everything ends: every frame comes back.
        for i in 0..3 {
            let p = s.p(i);
            s.w.k.end_process(&mut s.w.m, p, 0);
        }
        let init = s.w.init_thread;
        s.w.run(init);
        s.w.assert_invariants();
        assert_eq!(s.w.k.smo_count(), 0);
        assert_eq!(
            s.w.m.free_frames(),
            frames,
            "a frame leaked (owner killed: {kill_owner})"
        );
    }
}

// ----- random sequences against a model -----

/// Where the property test's processes keep their bytes: a window of the
/// data region each has, and an address nothing is mapped at.
const WINDOW: u64 = SHARED;
const WINDOW_SIZE: u64 = 256;
/// How far an SMO reaches from WINDOW (start < 256, size < 264), and a
/// copy from LOCAL (at < 256, size < 64).
const SHARED_REACH: usize = 1024;
const LOCAL_REACH: usize = 512;

#[derive(Clone, Debug)]
enum Op {
    Share {
        owner: usize,
        target: u64,
        off: u64,
        size: u64,
        perms: u32,
        unmapped: bool,
    },
    Claim {
        caller: usize,
        which: usize,
    },
    Pass {
        caller: usize,
        which: usize,
        target: u64,
    },
    Read {
        caller: usize,
        as_target: bool,
        which: usize,
        off: u64,
        size: u64,
        at: u64,
    },
    Write {
        caller: usize,
        as_target: bool,
        which: usize,
        off: u64,
        size: u64,
        at: u64,
    },
    Poke {
        process: usize,
        at: u64,
        byte: u8,
    },
    Exit {
        process: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..3;
    let id = 0u64..5;
    prop_oneof![
        10 => (
            who.clone(),
            id.clone(),
            0..WINDOW_SIZE,
            0..WINDOW_SIZE + 8,
            0u32..4,
            prop::bool::weighted(0.1)
        )
            .prop_map(|(owner, target, off, size, perms, unmapped)| Op::Share {
                owner,
                target,
                off,
                size,
                perms,
                unmapped
            }),
        10 => (who.clone(), 0usize..8).prop_map(|(caller, which)| Op::Claim { caller, which }),
        10 => (who.clone(), 0usize..8, id).prop_map(|(caller, which, target)| Op::Pass {
            caller,
            which,
            target
        }),
        10 => (
            who.clone(),
            prop::bool::weighted(0.8),
            0usize..8,
            0..80u64,
            0..64u64,
            0..WINDOW_SIZE
        )
            .prop_map(|(caller, as_target, which, off, size, at)| Op::Read {
                caller,
                as_target,
                which,
                off,
                size,
                at
            }),
        10 => (
            who.clone(),
            prop::bool::weighted(0.8),
            0usize..8,
            0..80u64,
            0..64u64,
            0..WINDOW_SIZE
        )
            .prop_map(|(caller, as_target, which, off, size, at)| Op::Write {
                caller,
                as_target,
                which,
                off,
                size,
                at
            }),
        10 => (who.clone(), 0..WINDOW_SIZE, any::<u8>()).prop_map(|(process, at, byte)| Op::Poke {
            process,
            at,
            byte
        }),
        1 => who.prop_map(|process| Op::Exit { process }),
    ]
}

/// The model: each SMO's owner, target, start, size and permissions (by
/// process index; `None` target once it ended), and each process's bytes.
#[derive(Clone, Copy, Debug)]
struct ModelSmo {
    owner: usize,
    target: Option<usize>,
    start: Option<u64>,
    size: u64,
    perms: u32,
}

struct Model {
    smos: BTreeMap<u32, ModelSmo>,
    /// Ids in creation order (what `which` picks from, stale ones too).
    ids: Vec<u32>,
    alive: [bool; 3],
    /// Each process's shared area (from WINDOW) and local buffer (from
    /// LOCAL), as far as any SMO or copy can reach.
    shared: [Vec<u8>; 3],
    local: [Vec<u8>; 3],
}

impl Model {
    fn process(&self, id: u64) -> Result<usize, Error> {
        match id {
            1..=3 if self.alive[id as usize - 1] => Ok(id as usize - 1),
            _ => Err(Error::NoSuchProcessId),
        }
    }

    /// The `which`-th most recent id (stale ones included).
    fn pick(&self, which: usize) -> u32 {
        self.ids
            .iter()
            .rev()
            .nth(which)
            .copied()
            .unwrap_or(0x7fff_0000)
    }

    fn copy_check(
        &self,
        caller: usize,
        number: u32,
        off: u64,
        size: u64,
        need: u32,
    ) -> Result<ModelSmo, Error> {
        let smo = *self.smos.get(&number).ok_or(Error::NoSuchSmo)?;
        if smo.target != Some(caller) {
            return Err(Error::NotSmoTarget);
        }
        if smo.perms & need == 0 {
            return Err(Error::MissingRight);
        }
        if off.checked_add(size).is_none_or(|e| e > smo.size) {
            return Err(Error::SmoOutOfBounds);
        }
        if size > 0 && smo.start.is_none() {
            return Err(Error::SmoRegionGone);
        }
        Ok(smo)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random SMO calls by three processes (and their ends) give exactly
    /// the model's results and bytes, keep every invariant after each
    /// step, and leave no SMO, charge or frame behind.
    #[test]
    fn random_smo_sequences_follow_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut s = three();
        let frames = s.w.m.free_frames();
        let ps = [s.p(0), s.p(1), s.p(2)];
        let mut model = Model {
            smos: BTreeMap::new(),
            ids: Vec::new(),
            alive: [true; 3],
            shared: [vec![0; SHARED_REACH], vec![0; SHARED_REACH], vec![0; SHARED_REACH]],
            local: [vec![0; LOCAL_REACH], vec![0; LOCAL_REACH], vec![0; LOCAL_REACH]],
        };
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Share { owner, target, off, size, perms, unmapped } => {
                    if !model.alive[owner] { continue; }
                    let start = if unmapped { UNMAPPED + off } else { WINDOW + off };
                    let expected = if perms & !smo::ALL != 0 {
                        Err(Error::ReservedBits)
                    } else if perms == 0 || size == 0 {
                        Err(Error::InvalidArgument)
                    } else {
                        model.process(target)
                    };
                    let got = share(&mut s.w, s.kids[owner].thread, target, start, size, perms);
                    match (expected, got) {
                        (Ok(t), Ok(number)) => {
                            prop_assert!(!model.smos.contains_key(&number), "number {} reused while live", number);
                            // A window slice past WINDOW_SIZE is still in the data region: mapped.
                            model.smos.insert(number, ModelSmo {
                                owner, target: Some(t),
                                start: (!unmapped).then_some(off), size, perms,
                            });
                            model.ids.push(number);
                        }
                        (Err(e), Err(g)) => prop_assert_eq!(e, g, "op {} {:?}", i, op),
                        (e, g) => prop_assert!(false, "op {} {:?}: expected {:?}, got {:?}", i, op, e, g),
                    }
                }
                Op::Claim { caller, which } => {
                    if !model.alive[caller] { continue; }
                    let number = model.pick(which);
                    let expected = match model.smos.get(&number) {
                        None => Err(Error::NoSuchSmo),
                        Some(m) if m.owner != caller => Err(Error::NotSmoOwner),
                        Some(_) => Ok(()),
                    };
                    let got = claim(&mut s.w, s.kids[caller].thread, number);
                    prop_assert_eq!(got, expected, "op {} {:?}", i, op);
                    if got.is_ok() { model.smos.remove(&number); }
                }
                Op::Pass { caller, which, target } => {
                    if !model.alive[caller] { continue; }
                    let number = model.pick(which);
                    let expected = match model.smos.get(&number) {
                        None => Err(Error::NoSuchSmo),
                        Some(m) if m.target != Some(caller) => Err(Error::NotSmoTarget),
                        Some(_) => model.process(target),
                    };
                    let got = pass(&mut s.w, s.kids[caller].thread, number, target);
                    match expected {
                        Ok(t) => {
                            prop_assert_eq!(got, Ok(()), "op {} {:?}", i, op);
                            if let Some(m) = model.smos.get_mut(&number) { m.target = Some(t); }
                        }
                        Err(e) => prop_assert_eq!(got, Err(e), "op {} {:?}", i, op),
                    }
                }
                Op::Read { caller, as_target, which, off, size, at } | Op::Write { caller, as_target, which, off, size, at } => {
                    let number = model.pick(which);
                    // Mostly the SMO's own target calls, so copies succeed
                    // as often as they are refused.
                    let caller = match model.smos.get(&number).and_then(|m| m.target) {
                        Some(target) if as_target => target,
                        _ => caller,
                    };
                    if !model.alive[caller] { continue; }
                    let write = matches!(op, Op::Write { .. });
                    let need = if write { smo::WRITE } else { smo::READ };
                    let expected = model.copy_check(caller, number, off, size, need);
                    let t = s.kids[caller].thread;
                    let local = LOCAL + at;
                    let got = if write {
                        write_mem(&mut s.w, t, number, off, size, local)
                    } else {
                        read_mem(&mut s.w, t, number, off, size, local)
                    };
                    match expected {
                        Ok(m) => {
                            prop_assert_eq!(got, Ok(()), "op {} {:?}", i, op);
                            if let Some(start) = m.start {
                                let (so, lo, n) = ((start + off) as usize, at as usize, size as usize);
                                if write {
                                    let src = model.local[caller][lo..lo + n].to_vec();
                                    model.shared[m.owner][so..so + n].copy_from_slice(&src);
                                } else {
                                    let src = model.shared[m.owner][so..so + n].to_vec();
                                    model.local[caller][lo..lo + n].copy_from_slice(&src);
                                }
                            }
                        }
                        Err(e) => prop_assert_eq!(got, Err(e), "op {} {:?}", i, op),
                    }
                }
                Op::Poke { process, at, byte } => {
                    if !model.alive[process] { continue; }
                    s.w.poke(ps[process], WINDOW + at, &[byte]);
                    model.shared[process][at as usize] = byte;
                }
                Op::Exit { process } => {
                    if !model.alive[process] { continue; }
                    s.w.k.end_process(&mut s.w.m, ps[process], 0);
                    model.alive[process] = false;
                    model.smos.retain(|_, m| m.owner != process);
                    for m in model.smos.values_mut() {
                        if m.target == Some(process) { m.target = None; }
                    }
                    if s.w.k.current().is_none() {
                        let init = s.w.init_thread;
                        s.w.run(init);
                    }
                }
            }
            let violations = s.w.violations();
            prop_assert!(violations.is_empty(), "after op {} {:?}:\n{}", i, op, violations.join("\n"));
            prop_assert_eq!(s.w.k.smo_count(), model.smos.len());
            for (p, process) in ps.iter().enumerate() {
                if !model.alive[p] { continue; }
                let shared = s.w.peek(*process, WINDOW, SHARED_REACH);
                prop_assert_eq!(&shared[..], &model.shared[p][..], "shared area of {} after op {} {:?}", p, i, op);
                let local = s.w.peek(*process, LOCAL, LOCAL_REACH);
                prop_assert_eq!(&local[..], &model.local[p][..], "local buffer of {} after op {} {:?}", p, i, op);
            }
        }
        for (p, process) in ps.iter().enumerate() {
            if model.alive[p] {
                s.w.k.end_process(&mut s.w.m, *process, 0);
            }
        }
        let init = s.w.init_thread;
        s.w.run(init);
        prop_assert!(s.w.violations().is_empty());
        prop_assert_eq!(s.w.k.smo_count(), 0);
        prop_assert_eq!(s.w.m.free_frames(), frames);
    }
}
