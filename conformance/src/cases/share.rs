//! MSG-SHARE: share-points (ABI.md §7a.1 "Share-points", seed 000
//! "Trivial Share-Point", decision D23): the meta-structure procman writes,
//! the lock event handed to writers, a read-only attach the kernel maps
//! read-only (a write ends the writer), and userlib's guard: blocking in
//! EVENT_WAIT, bounds, the sequence word.
//!
//! Cases that use userlib's `SharePoint` observe its result as registers:
//! arg0 0 for success, else -1 with arg1 the `ShareError` number.

use abi::kcall::protection;
use abi::portal::{
    PortalReply, REPLY_CREATED, REPLY_READ_ONLY, REPLY_SHARE_POINT, SHARE_POINT, SharePointHeader,
};
use abi::procman::ProcmanError;
use abi::{Descriptor, Error, ObjectKind, Rights, TrapArgs};
use userlib::portal::{ShareError, SharePoint};

use super::portal::{
    PAGE, RW, capture_spec, completed, create_share, granted, granted_call, map, observe, peer_map,
    peer_portal, peer_slot, procman_rights, refusal, refused, reply_of, share_spec, unlink,
};
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::Expect;

/// A `SharePoint` result as registers.
fn result(outcome: Result<(), ShareError>) -> TrapArgs {
    match outcome {
        Ok(()) => TrapArgs::default(),
        Err(e) => TrapArgs {
            arg0: u64::from(u32::MAX),
            arg1: u64::from(e.number()),
            arg2: 0,
            arg3: 0,
        },
    }
}

/// The expectation of a `SharePoint` operation that succeeds.
const fn done(what: &'static str) -> Expect {
    Expect::registers(what, 0, 0, 0, 0)
}

/// The expectation of a `SharePoint` operation refused with `number`.
const fn share_error(what: &'static str, number: u32) -> Expect {
    Expect::registers(what, u32::MAX as u64, number as u64, 0, 0)
}

fn shared(context: &mut Context, name: &'static str, length: u64) -> Result<SharePoint, Failed> {
    let _ = context;
    SharePoint::create(name, length, 0).map_err(|e| Failed(alloc::format!("{name}: {e:?}")))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SHARE-001",
        rule: "a share-point (SHARE | ANON, SHARE_POINT) comes with slot 0 its object and slot 1 a lock event (SIGNAL | WAIT); the reply says CREATED | SHARE_POINT and data offset 32",
        section: "7a.1",
        decisions: &["D23"],
        expect: granted(2),
        run: |context| {
            let (call, descriptors) =
                granted_call(context, &share_spec("/shm/s1", 100, SHARE_POINT))?;
            let reply = reply_of(&call.bytes);
            context.check(
                reply
                    == PortalReply {
                        length: PAGE,
                        data_offset: 32,
                        flags: REPLY_CREATED | REPLY_SHARE_POINT,
                    },
                "the reply is not {4096, 32, CREATED | SHARE_POINT}",
            );
            let event = descriptors.get(1).copied().unwrap_or(Descriptor::NULL);
            context.check(
                super::kit::info(event)
                    == Ok((ObjectKind::Event as u32, Rights::SIGNAL.0 | Rights::WAIT.0)),
                "slot 1 is not an event with SIGNAL | WAIT",
            );
            unlink("/shm/s1");
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-SHARE-002",
        rule: "procman writes the governing meta-structure before anyone sees it: lock 0, the creator's prot, the data length, the morphology's length, no frames, sequence 0",
        section: "7a.1",
        decisions: &["D23"],
        expect: granted(2),
        run: |context| {
            let (call, descriptors) =
                granted_call(context, &share_spec("/shm/s2", 5000, SHARE_POINT))?;
            let object = descriptors.first().copied().unwrap_or(Descriptor::NULL);
            let pages = map(object, 2 * PAGE, protection::READ)?;
            let bytes = pages.snapshot(pages.base(), 32).unwrap_or_default();
            let header = zerocopy::FromBytes::read_from_bytes(&bytes[..]).ok();
            context.check(
                header
                    == Some(SharePointHeader {
                        lock: 0,
                        prot: RW,
                        length: 5000,
                        morphology_length: 2 * PAGE,
                        frame_count: 0,
                        sequence: 0,
                    }),
                "the header is not what ABI.md §7a.1 says",
            );
            unlink("/shm/s2");
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-SHARE-003",
        rule: "a share-point of 0 data bytes is PM_PORTAL_BAD_LENGTH (it has its size from the start) and changes nothing",
        section: "7a.1",
        decisions: &["D23"],
        expect: refusal(ProcmanError::PortalBadLength),
        run: |context| refused(context, share_spec("/shm/s3", 0, SHARE_POINT)),
    },
    Case {
        id: "MSG-SHARE-004",
        rule: "a read-only attach by another process gets the object alone (no lock event) with MAP_READ | TRANSFER | DUPLICATE, flags SHARE_POINT | READ_ONLY",
        section: "7a.1",
        decisions: &["D23"],
        expect: granted(1),
        run: |context| {
            create_share(context, "/shm/s4", 64, SHARE_POINT)?;
            let (peer, _) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/s4", protection::READ))?;
            let (_, rights) = peer_slot(&result, 0);
            context.check(
                rights == procman_rights(protection::READ).0,
                "the read-only object has other rights",
            );
            let reply = reply_of(&result.snapshot);
            context.check(
                reply.flags == REPLY_SHARE_POINT | REPLY_READ_ONLY && reply.data_offset == 32,
                "the reply's flags are not SHARE_POINT | READ_ONLY",
            );
            unlink("/shm/s4");
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-SHARE-005",
        rule: "a read-only attacher that writes the share-point faults: the kernel maps it read-only, the process ends with status 0xFFFFFFFF and the data is unchanged",
        section: "7a.1",
        decisions: &["D23"],
        expect: Expect::error("the peer's ACCESS (a write)", Error::PeerDied),
        run: |context| {
            let point = shared(context, "/shm/s5", 64)?;
            let guard = point.lock().map_err(|e| Failed(alloc::format!("{e:?}")))?;
            let _ = guard.write(0, &0x1234_5678u32);
            drop(guard);
            let (peer, pid) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/s5", protection::READ))?;
            let (theirs, _) = peer_slot(&result, 0);
            let (address, _) = peer_map(&peer, theirs, PAGE, protection::READ)?;
            let seen = peer.access(address + 32, b"", 4)?;
            context.check(
                seen.bytes == 0x1234_5678u32.to_le_bytes(),
                "the read-only attacher does not read the data",
            );
            let write = peer.access(address + 32, b"evil", 0)?;
            context.settle();
            let status = userlib::procman::wait(pid);
            context.check(status == Ok(u32::MAX), "the writer did not end as faulted");
            let guard = point.lock().map_err(|e| Failed(alloc::format!("{e:?}")))?;
            context.check(guard.read::<u32>(0) == Ok(0x1234_5678), "the data changed");
            drop(guard);
            unlink("/shm/s5");
            Ok(context.observe(write.registers))
        },
    },
    Case {
        id: "MSG-SHARE-006",
        rule: "a read-only attacher mapping the object writable is refused by the kernel with MISSING_RIGHT",
        section: "7a.1",
        decisions: &["D23"],
        expect: Expect::error("the peer's MEMORY_MAP", Error::MissingRight),
        run: |context| {
            create_share(context, "/shm/s6", 64, SHARE_POINT)?;
            let (peer, _) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/s6", protection::READ))?;
            let (theirs, _) = peer_slot(&result, 0);
            let (_, registers) = peer_map(&peer, theirs, PAGE, RW)?;
            unlink("/shm/s6");
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-SHARE-007",
        rule: "a second locker blocks in EVENT_WAIT (the lock word counts it: 2) until the holder's guard drops, then holds the lock and writes",
        section: "7a.1",
        decisions: &["D23"],
        expect: done("the second locker's lock and write"),
        run: |context| {
            let point = alloc::sync::Arc::new(shared(context, "/shm/s7", 64)?);
            let guard = point.lock().map_err(|e| Failed(alloc::format!("{e:?}")))?;
            let other = point.clone();
            let job = context.job(move || other.lock().and_then(|guard| guard.write(0, &7u64)))?;
            context.settle();
            context.check(!job.finished(), "the second locker did not block");
            context.check(
                point.header().lock == 2,
                "the lock word does not count the waiter",
            );
            drop(guard);
            context.settle();
            let outcome = job.take().unwrap_or(Err(ShareError::Busy));
            let check = point.lock().and_then(|g| g.read::<u64>(0));
            context.check(check == Ok(7), "the second locker's write is not there");
            context.check(point.header().lock == 0, "the lock is not free at the end");
            unlink("/shm/s7");
            Ok(context.observe(result(outcome)))
        },
    },
    Case {
        id: "MSG-SHARE-008",
        rule: "a guard's write that leaves the data (a u32 at length - 3) is refused out of bounds and writes nothing",
        section: "7a.1",
        decisions: &["D23"],
        expect: share_error("the guard's write", 1),
        run: |context| {
            let point = shared(context, "/shm/s8", 64)?;
            let guard = point.lock().map_err(|e| Failed(alloc::format!("{e:?}")))?;
            let outcome = guard.write(61, &u32::MAX);
            let tail = guard.read::<[u8; 8]>(56);
            context.check(tail == Ok([0; 8]), "the refused write wrote something");
            drop(guard);
            unlink("/shm/s8");
            Ok(context.observe(result(outcome)))
        },
    },
    Case {
        id: "MSG-SHARE-009",
        rule: "a read-only attach cannot take the lock (no event): refused read-only, while its consistent read sees the data",
        section: "7a.1",
        decisions: &["D23"],
        expect: share_error("the read-only attach's lock", 2),
        run: |context| {
            let point = shared(context, "/shm/s9", 64)?;
            if let Ok(guard) = point.lock() {
                let _ = guard.write(8, &99u32);
            }
            let reader = SharePoint::attach_read_only("/shm/s9")
                .map_err(|e| Failed(alloc::format!("{e:?}")))?;
            context.check(!reader.writable(), "the read-only attach says it may write");
            context.check(
                reader.read_consistent::<u32>(8) == Ok(99),
                "the consistent read does not see the data",
            );
            let outcome = reader.lock().map(drop);
            drop(reader);
            unlink("/shm/s9");
            Ok(context.observe(result(outcome)))
        },
    },
    Case {
        id: "MSG-SHARE-010",
        rule: "a guard makes the sequence word odd while held and even again (+2) when dropped",
        section: "7a.1",
        decisions: &["D23"],
        expect: done("the guard"),
        run: |context| {
            let point = shared(context, "/shm/s10", 64)?;
            let start = point.header().sequence;
            let guard = point.lock().map_err(|e| Failed(alloc::format!("{e:?}")))?;
            let held = point.header().sequence;
            drop(guard);
            let end = point.header().sequence;
            context.check(
                start.is_multiple_of(2) && held == start + 1 && end == start + 2,
                "the sequence is not even, odd, even (+2)",
            );
            unlink("/shm/s10");
            Ok(context.observe(result(Ok(()))))
        },
    },
    Case {
        id: "MSG-SHARE-011",
        rule: "SHARE_POINT on a capture (share type without create) is PM_BAD_REQUEST and changes nothing",
        section: "7a.1",
        decisions: &["D23"],
        expect: refusal(ProcmanError::BadRequest),
        run: |context| {
            create_share(context, "/shm/s11", 64, SHARE_POINT)?;
            let outcome = refused(
                context,
                abi::portal::PortalSpec {
                    share_type: SHARE_POINT,
                    ..capture_spec("/shm/s11", protection::READ)
                },
            );
            unlink("/shm/s11");
            outcome
        },
    },
    Case {
        id: "MSG-SHARE-012",
        rule: "attaching a portal that is not a share-point is refused by userlib (not a share-point) and its capture is released again",
        section: "7a.1",
        decisions: &["D23"],
        expect: share_error("SharePoint::attach", 3),
        run: |context| {
            let (peer, _) = context.procman_peer()?;
            let made = peer_portal(&peer, &share_spec("/shm/s12", PAGE, 0))?;
            context.check(
                completed(&made.registers),
                "the peer could not create /shm/s12",
            );
            let before = super::portal::snapshot(context)?;
            let outcome = SharePoint::attach_read_only("/shm/s12").map(drop);
            let after = super::portal::snapshot(context)?;
            context.check(after.table == before.table, "the capture was kept");
            Ok(context.observe(result(outcome)))
        },
    },
    Case {
        id: "MSG-SHARE-013",
        rule: "a locker in another process waits on the lock event procman handed it, and the holder's guard, dropping the word from 2, signals it awake",
        section: "7a.1",
        decisions: &["D23"],
        expect: Expect::replied("the peer's EVENT_WAIT", 0, 0, 8, 0),
        run: |context| {
            let point = shared(context, "/shm/s13", 64)?;
            let (peer, _) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/s13", RW))?;
            let (theirs, _) = peer_slot(&result, 0);
            let (event, rights) = peer_slot(&result, 1);
            context.check(
                rights == Rights::SIGNAL.0 | Rights::WAIT.0,
                "the writer's capture has no lock event",
            );
            let (address, _) = peer_map(&peer, theirs, PAGE, RW)?;
            let guard = point.lock().map_err(|e| Failed(alloc::format!("{e:?}")))?;
            // The peer's locker: the word goes from 1 to 2, then it waits.
            peer.access(address, &2u32.to_le_bytes(), 0)?;
            let wait = abi::KernelFunction::EventWait.function();
            peer.start(0, &[crate::peer::Step::send(wait, event.0, &[], &[], 64)])?;
            context.settle();
            context.check(peer.join(0)?.is_none(), "the peer's locker did not wait");
            drop(guard);
            let results = super::kit::peer_results(context, &peer, 0)?;
            context.check(
                point.header().lock == 1,
                "the word does not hold the woken locker",
            );
            unlink("/shm/s13");
            let first = results
                .into_iter()
                .next()
                .ok_or_else(|| Failed(alloc::string::String::from("no step ran")))?;
            Ok(context.observe(first.registers))
        },
    },
];
