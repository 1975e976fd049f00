//! MSG-PORTAL: memory portals as procman's protocol (ABI.md §7a.1, seed
//! 000): the classes and their combinations, the policy's
//! `portal_classes`, the creator's choices, names, the table's
//! bookkeeping, the death of a creator and of a capturer, and a churn of
//! 1,000 cycles that leaves the kernel's counters and procman's table
//! where they were.
//!
//! These cases run in the second boot (`init=procman
//! run=conformance-portals`): the runner is in the `tests` domain (every
//! class, names under `/shm/`), its peers (started through procman) in
//! `users` (SHARE, ANON, COW). Every refusal is made twice and the second
//! is measured: procman's table and the kernel's COUNTERS must not move
//! (the first warms procman's heap, whose growth is not the request's).

use alloc::format;
use alloc::vec::Vec;

use abi::kcall::{DescriptorRequest, KernelCounters, MapRequest, MemoryMapRequest, protection};
use abi::message::descriptor_offset;
use abi::portal::{
    DOMAIN_ONLY, MAX_PORTALS_PER_PROCESS, OTHERS_READ_ONLY, PORTAL, PORTAL_RELEASE, PORTAL_UNLINK,
    PortalClass, PortalReply, PortalRequest, PortalSpec, PortalTableReply, REPLY_CREATED,
};
use abi::procman::{NameRequest, ProcmanError};
use abi::{Descriptor, Error, KernelFunction, MessageSizes, Rights, TrapArgs};
use userlib::kernel;
use userlib::raw::RawPages;
use zerocopy::{FromBytes, IntoBytes};

use super::kit;
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;
use crate::peer::{Peer, Step, StepResult, fault};

/// READ | WRITE.
pub const RW: u32 = protection::READ | protection::WRITE;
/// A page.
pub const PAGE: u64 = abi::PAGE_BYTES;
/// The buffer every portal call offers.
pub const TOTAL: u16 = 512;

/// The pager door the SPECIAL cases register (the runner owns it).
const SPECIAL_PAGER: &str = "/srv/conformance-pager";

/// A pager door whose owner reference the case closes.
const GONE_PAGER: &str = "/srv/conformance-pager-gone";

/// A 2-page SPECIAL request (5,000 bytes) served by [`SPECIAL_PAGER`].
fn special_spec(message: &'static [u8]) -> PortalSpec<'static> {
    special_spec_of(SPECIAL_PAGER, message)
}

/// A 2-page SPECIAL request (5,000 bytes) served by `pager`.
fn special_spec_of(pager: &'static str, message: &'static [u8]) -> PortalSpec<'static> {
    PortalSpec {
        classes: PortalClass::SPECIAL,
        prot: RW,
        length: 5000,
        chain_name: pager.as_bytes(),
        chain_message: message,
        ..PortalSpec::default()
    }
}

/// A PORTAL error reply with `error`.
pub const fn refusal(error: ProcmanError) -> Expect {
    Expect::replied("PORTAL", u32::MAX, error as u32, 8, 0)
}

/// A PORTAL reply with `slots` descriptors.
pub const fn granted(slots: u8) -> Expect {
    Expect::replied("PORTAL", 0, 0, 24, slots)
}

/// The request data for `spec`.
pub fn encode(spec: &PortalSpec<'_>) -> Vec<u8> {
    let mut out = alloc::vec![0u8; 2048];
    let length = PortalRequest::encode(spec, &mut out).unwrap_or(0);
    out.truncate(length);
    out
}

/// PORTAL from the runner with these bytes.
pub fn send_bytes(function: abi::Function, data: &[u8]) -> Result<kit::Call, Failed> {
    kit::send(function, Descriptor::NULL, data, &[], TOTAL)
}

/// PORTAL from the runner for `spec`.
pub fn send(spec: &PortalSpec<'_>) -> Result<kit::Call, Failed> {
    send_bytes(PORTAL, &encode(spec))
}

/// A name-carrying portal call (RELEASE, UNLINK) from the runner.
pub fn send_name(function: abi::Function, name: &str) -> Result<kit::Call, Failed> {
    let mut data = Vec::from(NameRequest::new(name.as_bytes()).as_bytes());
    data.extend_from_slice(name.as_bytes());
    send_bytes(function, &data)
}

/// Reply slot `index` of a completed call: (descriptor, rights).
pub fn slot(registers: &TrapArgs, bytes: &[u8], index: usize) -> (Descriptor, u32) {
    let sizes = MessageSizes::from_bits(registers.arg3);
    if index >= usize::from(sizes.descriptor_count()) {
        return (Descriptor::NULL, 0);
    }
    let at = usize::from(descriptor_offset(sizes.data_size())) + 16 * index;
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    (Descriptor(word(at)), word(at + 4))
}

/// The reply payload of a completed PORTAL call.
pub fn reply_of(bytes: &[u8]) -> PortalReply {
    bytes
        .get(8..24)
        .and_then(|b| PortalReply::read_from_bytes(b).ok())
        .unwrap_or_default()
}

/// The call's observation.
pub fn observe(context: &Context, call: &kit::Call) -> crate::expect::Observed {
    context.observe_buffer(call.registers, call.msg_ptr, call.bytes.clone())
}

/// A granted PORTAL whose reply slots are adopted by the case: the call
/// and the descriptors.
pub fn granted_call(
    context: &mut Context,
    spec: &PortalSpec<'_>,
) -> Result<(kit::Call, Vec<Descriptor>), Failed> {
    let call = send(spec)?;
    let count = MessageSizes::from_bits(call.registers.arg3).descriptor_count();
    let mut descriptors = Vec::new();
    for index in 0..usize::from(count) {
        let (descriptor, _) = slot(&call.registers, &call.bytes, index);
        descriptors.push(context.adopt(descriptor));
    }
    Ok((call, descriptors))
}

/// What must not move when a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// procman's table.
    pub table: PortalTableReply,
    /// The kernel's counters.
    pub counters: KernelCounters,
}

/// procman's table and the kernel's counters now.
pub fn snapshot(context: &mut Context) -> Result<Snapshot, Failed> {
    context.settle();
    let table = userlib::portal::table().map_err(|e| Failed(format!("PORTAL_TABLE: {e}")))?;
    Ok(Snapshot {
        table,
        counters: kernel::counters()?,
    })
}

/// Checks nothing moved since `before`.
pub fn unchanged(context: &mut Context, before: &Snapshot) -> Result<(), Failed> {
    let after = snapshot(context)?;
    if after != *before {
        context.fail(format!(
            "the refusal changed something: before {before:?}, after {after:?}"
        ));
    }
    Ok(())
}

/// `call` made twice; the second is observed, with nothing changed by it.
pub fn refused_twice(
    context: &mut Context,
    call: impl Fn() -> Result<kit::Call, Failed>,
) -> Outcome {
    call()?;
    let before = snapshot(context)?;
    let observed = call()?;
    unchanged(context, &before)?;
    Ok(observe(context, &observed))
}

/// A refusal of `spec` from the runner, checked to change nothing.
pub fn refused(context: &mut Context, spec: PortalSpec<'static>) -> Outcome {
    refused_twice(context, || send(&spec))
}

/// A named share (SHARE | ANON, created) of `length` bytes.
pub fn share_spec(name: &'static str, length: u64, share_type: u32) -> PortalSpec<'static> {
    PortalSpec::new_share(name.as_bytes(), length, share_type)
}

/// A capture (SHARE) of `name` with `prot`.
pub fn capture_spec(name: &str, prot: u32) -> PortalSpec<'_> {
    PortalSpec::capture(name.as_bytes(), prot)
}

/// Anonymous private memory of `length` bytes.
pub const fn anon_spec(length: u64) -> PortalSpec<'static> {
    PortalSpec {
        classes: PortalClass::ANON,
        prot: RW,
        length,
        identifier: &[],
        share_type: 0,
        create: false,
        chain_name: &[],
        chain_message: &[],
        address: 0,
        morphology_length: 0,
        frames: &[],
    }
}

/// Creates the named share and unlinks it when the case ends (closing
/// procman's references); returns the runner's object.
pub fn create_share(
    context: &mut Context,
    name: &'static str,
    length: u64,
    share_type: u32,
) -> Result<Descriptor, Failed> {
    let (call, descriptors) = granted_call(context, &share_spec(name, length, share_type))?;
    match descriptors.first() {
        Some(object) if call.registers.arg0 == 0 => Ok(*object),
        _ => Err(Failed(format!(
            "creating {name} failed: {}",
            crate::context::describe_registers(&call.registers)
        ))),
    }
}

/// Unlinks `name` (the case's own portal), whatever it answers.
pub fn unlink(name: &str) {
    let _ = userlib::portal::unlink(name);
}

/// The runner maps `length` bytes of `object` with `prot`.
pub fn map(object: Descriptor, length: u64, prot: u32) -> Result<RawPages, Failed> {
    Ok(RawPages::map_object(object, 0, 0, length, prot)?)
}

/// The peer runs PORTAL for `spec`: its step result.
pub fn peer_portal(peer: &Peer, spec: &PortalSpec<'_>) -> Result<StepResult, Failed> {
    peer.trap(Step::send(PORTAL, 0, &encode(spec), &[], TOTAL))
}

/// The peer's descriptor in reply slot `index` of its step.
pub fn peer_slot(result: &StepResult, index: usize) -> (Descriptor, u32) {
    slot(&result.registers, &result.snapshot, index)
}

/// The peer maps `length` bytes of its `object` with `prot`: the address
/// (0 when refused) and the registers.
pub fn peer_map(
    peer: &Peer,
    object: Descriptor,
    length: u64,
    prot: u32,
) -> Result<(u64, TrapArgs), Failed> {
    let request = MemoryMapRequest::new(0, 0, length, prot);
    let result = peer.trap(Step::send(
        KernelFunction::MemoryMap.function(),
        object.0,
        request.as_bytes(),
        &[],
        64,
    ))?;
    let address = result
        .snapshot
        .get(8..16)
        .map_or(0, |b| u64::from_le_bytes(core::array::from_fn(|i| b[i])));
    let address = if result.registers.arg0 == 0 {
        address
    } else {
        0
    };
    Ok((address, result.registers))
}

/// The peer runs a kernel function on its descriptor (CLOSE, UNMAP).
pub fn peer_kcall(
    peer: &Peer,
    function: KernelFunction,
    target: Descriptor,
    data: &[u8],
) -> Result<TrapArgs, Failed> {
    Ok(peer
        .trap(Step::send(function.function(), target.0, data, &[], 64))?
        .registers)
}

/// The peer sends a name-carrying portal call.
pub fn peer_name(peer: &Peer, function: abi::Function, name: &str) -> Result<TrapArgs, Failed> {
    let mut data = Vec::from(NameRequest::new(name.as_bytes()).as_bytes());
    data.extend_from_slice(name.as_bytes());
    Ok(peer
        .trap(Step::send(function, 0, &data, &[], TOTAL))?
        .registers)
}

/// Whether registers are a completed call (msgRetVal 0, no kernel error).
pub fn completed(registers: &TrapArgs) -> bool {
    registers.arg0 == 0 && registers.kernel_error().is_none()
}

const DIRECT_FRAMES: &[u64] = &[0xf_0000];
const GAPPED_FRAMES: &[u64] = &[0xf_0000, 0xf_2000];

/// One cycle of the churn: create, map, share with the peer (capture and
/// map there, a write), a copy-on-write child written by the runner,
/// unmap and close everything on both sides, release and unlink.
fn churn_cycle(peer: &Peer, cycle: u32) -> Result<(), Failed> {
    const NAME: &str = "/shm/churn";
    let fail = |what: &str| Failed(format!("churn cycle {cycle}: {what}"));
    let call = send(&share_spec(NAME, PAGE, 0))?;
    let (object, _) = slot(&call.registers, &call.bytes, 0);
    if !completed(&call.registers) || object == Descriptor::NULL {
        return Err(fail("create refused"));
    }
    let pages = map(object, PAGE, RW)?;
    pages.write(pages.base(), &cycle.to_le_bytes());
    let captured = peer_portal(peer, &capture_spec(NAME, RW))?;
    let (theirs, _) = peer_slot(&captured, 0);
    let (address, registers) = peer_map(peer, theirs, PAGE, RW)?;
    if address == 0 {
        return Err(fail(&format!(
            "the peer's map failed: {}",
            crate::context::describe_registers(&registers)
        )));
    }
    let seen = peer.access(address, b"peer", 4)?;
    if seen.bytes != b"peer" {
        return Err(fail("the peer's write did not read back"));
    }
    let cow = send(&PortalSpec {
        classes: PortalClass::COW,
        prot: RW,
        identifier: NAME.as_bytes(),
        ..PortalSpec::default()
    })?;
    let (child, _) = slot(&cow.registers, &cow.bytes, 0);
    let copy = map(child, PAGE, RW)?;
    copy.write(copy.base(), b"copy");
    let mut shared = [0u8; 4];
    pages.read(pages.base(), &mut shared);
    if &shared != b"peer" {
        return Err(fail("the child's write reached the portal"));
    }
    drop(copy);
    drop(pages);
    kernel::close(child)?;
    kernel::close(object)?;
    let unmap = MapRequest::new(address, PAGE, 0);
    peer_kcall(
        peer,
        KernelFunction::Unmap,
        Descriptor::NULL,
        unmap.as_bytes(),
    )?;
    peer_kcall(
        peer,
        KernelFunction::Close,
        Descriptor::NULL,
        DescriptorRequest::new(theirs, Rights::NONE).as_bytes(),
    )?;
    peer_name(peer, PORTAL_RELEASE, NAME)?;
    userlib::portal::unlink(NAME).map_err(|e| fail(&format!("unlink: {e}")))?;
    Ok(())
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PORTAL-001",
        rule: "ANON alone is private memory: slot 0 a memory object of the pages asked (rounded up) with the rights of the protection, REPLY_CREATED, and procman records nothing",
        section: "7a.1",
        decisions: &[],
        expect: granted(1),
        run: |context| {
            let before = snapshot(context)?;
            let (call, descriptors) = granted_call(context, &anon_spec(5000))?;
            let object = descriptors.first().copied().unwrap_or(Descriptor::NULL);
            let info = kernel::memory_info(object);
            context.check(
                info.map(|i| i.pages) == Ok(2),
                "the object does not hold 2 pages",
            );
            let (_, rights) = slot(&call.registers, &call.bytes, 0);
            context.check(
                rights == procman_rights(RW).0,
                "the object's rights are not MAP_READ | MAP_WRITE | TRANSFER | DUPLICATE",
            );
            let reply = reply_of(&call.bytes);
            context.check(
                reply.length == 2 * PAGE && reply.flags == REPLY_CREATED,
                "the reply is not {length 8192, REPLY_CREATED}",
            );
            let after = userlib::portal::table().map_err(|e| Failed(format!("{e}")))?;
            context.check(
                after == before.table,
                "private memory changed procman's table",
            );
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-002",
        rule: "a request with no class is PM_PORTAL_BAD_CLASS and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadClass),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    classes: PortalClass(0),
                    ..anon_spec(PAGE)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-003",
        rule: "an undefined class bit (bit 5) is PM_PORTAL_BAD_CLASS and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadClass),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    classes: PortalClass(PortalClass::ANON.0 | 1 << 5),
                    ..anon_spec(PAGE)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-004",
        rule: "ANON | DIRECT is a combination that means nothing: PM_PORTAL_BAD_CLASS, nothing changed",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadClass),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    classes: PortalClass::ANON.with(PortalClass::DIRECT),
                    frames: DIRECT_FRAMES,
                    ..anon_spec(0)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-005",
        rule: "SPECIAL whose chain's first server is no name of procman's namespace is PM_NO_SUCH_NAME, and changes nothing",
        section: "7a.1",
        decisions: &["D25"],
        expect: refusal(ProcmanError::NoSuchName),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    classes: PortalClass::SPECIAL,
                    chain_name: b"/srv/no-such-pager",
                    chain_message: b"file 7",
                    ..anon_spec(PAGE)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-006",
        rule: "DIRECT from a domain whose portal_classes lack it (users) is PM_PORTAL_CLASS_DENIED",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalClassDenied),
        run: |context| {
            let (peer, _) = context.procman_peer()?;
            let spec = PortalSpec {
                classes: PortalClass::DIRECT,
                prot: protection::READ,
                frames: DIRECT_FRAMES,
                ..anon_spec(0)
            };
            peer_portal(&peer, &spec)?;
            let before = snapshot(context)?;
            let result = peer_portal(&peer, &spec)?;
            unchanged(context, &before)?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-PORTAL-007",
        rule: "SPECIAL from a domain whose portal_classes lack it is PM_PORTAL_CLASS_DENIED: the policy is asked before the pager",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalClassDenied),
        run: |context| {
            let (peer, _) = context.procman_peer()?;
            let spec = PortalSpec {
                classes: PortalClass::SPECIAL,
                chain_name: b"/srv/pager",
                ..anon_spec(PAGE)
            };
            let result = peer_portal(&peer, &spec)?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-PORTAL-008",
        rule: "ANON of 0 bytes is PM_PORTAL_BAD_LENGTH and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadLength),
        run: |context| refused(context, anon_spec(0)),
    },
    Case {
        id: "MSG-PORTAL-009",
        rule: "ANON past 64 MiB (MAX_PORTAL_BYTES) is PM_PORTAL_BAD_LENGTH and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadLength),
        run: |context| refused(context, anon_spec(abi::portal::MAX_PORTAL_BYTES + 1)),
    },
    Case {
        id: "MSG-PORTAL-010",
        rule: "a protection without READ is PM_PORTAL_BAD_PROT and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadProt),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    prot: protection::WRITE,
                    ..anon_spec(PAGE)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-011",
        rule: "an identifier whose offset points into the 72-byte header is PM_BAD_REQUEST: offsets count from the header's start and name bytes after it",
        section: "7a.1",
        decisions: &["D26"],
        expect: refusal(ProcmanError::BadRequest),
        run: |context| {
            let mut data = encode(&capture_spec("/shm/x", protection::READ));
            if let Ok((mut header, _)) = PortalRequest::read_from_prefix(&data) {
                header.share.identifier_offset = 8;
                data[..72].copy_from_slice(header.as_bytes());
            }
            refused_twice(context, || send_bytes(PORTAL, &data))
        },
    },
    Case {
        id: "MSG-PORTAL-012",
        rule: "an identifier that runs past the message data is PM_BAD_REQUEST and changes nothing",
        section: "7a.1",
        decisions: &["D26"],
        expect: refusal(ProcmanError::BadRequest),
        run: |context| {
            let mut data = encode(&capture_spec("/shm/x", protection::READ));
            if let Ok((mut header, _)) = PortalRequest::read_from_prefix(&data) {
                header.share.identifier_length = 7;
                data[..72].copy_from_slice(header.as_bytes());
            }
            refused_twice(context, || send_bytes(PORTAL, &data))
        },
    },
    Case {
        id: "MSG-PORTAL-013",
        rule: "a server chain on a class other than SPECIAL is PM_BAD_REQUEST and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::BadRequest),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    chain_name: b"/srv/pager",
                    ..anon_spec(PAGE)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-014",
        rule: "share.create other than 0 or 1 is PM_BAD_REQUEST and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::BadRequest),
        run: |context| {
            let mut data = encode(&share_spec("/shm/c2", PAGE, 0));
            if let Ok((mut header, _)) = PortalRequest::read_from_prefix(&data) {
                header.share.create = 2;
                data[..72].copy_from_slice(header.as_bytes());
            }
            refused_twice(context, || send_bytes(PORTAL, &data))
        },
    },
    Case {
        id: "MSG-PORTAL-015",
        rule: "SHARE | ANON with create and a name makes a named portal: slot 0 the object, one portal, one capture and one procman descriptor more in the table",
        section: "7a.1",
        decisions: &[],
        expect: granted(1),
        run: |context| {
            let before = snapshot(context)?;
            let (call, _) = granted_call(context, &share_spec("/shm/c15", PAGE, 0))?;
            let after = snapshot(context)?;
            let grew = PortalTableReply::new(
                before.table.portals + 1,
                before.table.captures + 1,
                before.table.descriptors + 1,
            );
            context.check(after.table == grew, "the table did not grow by one of each");
            unlink("/shm/c15");
            let gone = userlib::portal::table().map_err(|e| Failed(format!("{e}")))?;
            context.check(gone == before.table, "UNLINK did not give the table back");
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-016",
        rule: "creating a portal under no register prefix of the domain is PM_NAME_DENIED and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::NameDenied),
        run: |context| refused(context, share_spec("/elsewhere/p", PAGE, 0)),
    },
    Case {
        id: "MSG-PORTAL-017",
        rule: "creating a portal whose name exists is PM_NAME_EXISTS and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::NameExists),
        run: |context| {
            create_share(context, "/shm/c17", PAGE, 0)?;
            let outcome = refused(context, share_spec("/shm/c17", PAGE, 0));
            unlink("/shm/c17");
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-018",
        rule: "a relative identifier is PM_BAD_NAME (portal names follow the namespace's rules) and changes nothing",
        section: "7a.1",
        decisions: &["D27"],
        expect: refusal(ProcmanError::BadName),
        run: |context| refused(context, share_spec("shm/p", PAGE, 0)),
    },
    Case {
        id: "MSG-PORTAL-019",
        rule: "capturing a name no portal has is PM_NO_SUCH_NAME and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::NoSuchName),
        run: |context| refused(context, capture_spec("/shm/none", protection::READ)),
    },
    Case {
        id: "MSG-PORTAL-020",
        rule: "a capture by another process is the same memory: the peer reads what the runner wrote and the runner what the peer wrote",
        section: "7a.1",
        decisions: &[],
        expect: granted(1),
        run: |context| {
            let object = create_share(context, "/shm/c20", PAGE, 0)?;
            let pages = map(object, PAGE, RW)?;
            pages.write(pages.base(), b"runner");
            let (peer, _) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/c20", RW))?;
            let (theirs, _) = peer_slot(&result, 0);
            let (address, _) = peer_map(&peer, theirs, PAGE, RW)?;
            let seen = peer.access(address, b"", 6)?;
            context.check(
                seen.bytes == b"runner",
                "the peer did not read the runner's bytes",
            );
            peer.access(address + 8, b"peer", 0)?;
            context.check(
                pages.snapshot(pages.base() + 8, 4).as_deref() == Some(&b"peer"[..]),
                "the runner did not read the peer's bytes",
            );
            unlink("/shm/c20");
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-PORTAL-021",
        rule: "OTHERS_READ_ONLY: another process's capture with WRITE is PM_PORTAL_PROT_DENIED, changing nothing",
        section: "7a.1",
        decisions: &["D27"],
        expect: refusal(ProcmanError::PortalProtDenied),
        run: |context| {
            create_share(context, "/shm/c21", PAGE, OTHERS_READ_ONLY)?;
            let (peer, _) = context.procman_peer()?;
            peer_portal(&peer, &capture_spec("/shm/c21", RW))?;
            let before = snapshot(context)?;
            let result = peer_portal(&peer, &capture_spec("/shm/c21", RW))?;
            unchanged(context, &before)?;
            let read = peer_portal(&peer, &capture_spec("/shm/c21", protection::READ))?;
            let (_, rights) = peer_slot(&read, 0);
            context.check(
                completed(&read.registers) && rights == procman_rights(protection::READ).0,
                "a read-only capture was not granted MAP_READ | TRANSFER | DUPLICATE",
            );
            unlink("/shm/c21");
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-PORTAL-022",
        rule: "DOMAIN_ONLY: a capture from another domain is PM_PORTAL_CAPTURE_DENIED, changing nothing",
        section: "7a.1",
        decisions: &["D27"],
        expect: refusal(ProcmanError::PortalCaptureDenied),
        run: |context| {
            create_share(context, "/shm/c22", PAGE, DOMAIN_ONLY)?;
            let (peer, _) = context.procman_peer()?;
            peer_portal(&peer, &capture_spec("/shm/c22", protection::READ))?;
            let before = snapshot(context)?;
            let result = peer_portal(&peer, &capture_spec("/shm/c22", protection::READ))?;
            unchanged(context, &before)?;
            unlink("/shm/c22");
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-PORTAL-023",
        rule: "a capture wider than the creator's own protection is PM_PORTAL_PROT_DENIED, even by the creator",
        section: "7a.1",
        decisions: &["D27"],
        expect: refusal(ProcmanError::PortalProtDenied),
        run: |context| {
            let (call, _) = granted_call(
                context,
                &PortalSpec {
                    prot: protection::READ,
                    ..share_spec("/shm/c23", PAGE, 0)
                },
            )?;
            context.check(completed(&call.registers), "the read-only creation failed");
            let outcome = refused(context, capture_spec("/shm/c23", RW));
            unlink("/shm/c23");
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-024",
        rule: "COW of a named portal is a private copy-on-write child: its writes do not reach the portal, and the portal's later writes do not reach it",
        section: "7a.1",
        decisions: &[],
        expect: granted(1),
        run: |context| {
            let object = create_share(context, "/shm/c24", PAGE, 0)?;
            let pages = map(object, PAGE, RW)?;
            pages.write(pages.base(), b"before");
            let (call, descriptors) = granted_call(
                context,
                &PortalSpec {
                    classes: PortalClass::COW,
                    prot: RW,
                    identifier: b"/shm/c24",
                    ..PortalSpec::default()
                },
            )?;
            let child = descriptors.first().copied().unwrap_or(Descriptor::NULL);
            let copy = map(child, PAGE, RW)?;
            context.check(
                copy.snapshot(copy.base(), 6).as_deref() == Some(&b"before"[..]),
                "the child does not start with the portal's bytes",
            );
            copy.write(copy.base(), b"child!");
            pages.write(pages.base() + 8, b"later");
            context.check(
                pages.snapshot(pages.base(), 6).as_deref() == Some(&b"before"[..]),
                "the child's write reached the portal",
            );
            context.check(
                copy.snapshot(copy.base() + 8, 5).as_deref() == Some(&[0u8; 5][..]),
                "the portal's later write reached the child",
            );
            unlink("/shm/c24");
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-025",
        rule: "COW of an unsized portal is PM_PORTAL_UNSIZED and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalUnsized),
        run: |context| {
            let (call, _) = granted_call(context, &share_spec("/shm/c25", 0, 0))?;
            context.check(
                MessageSizes::from_bits(call.registers.arg3).descriptor_count() == 0,
                "an unsized portal came with a memory object",
            );
            let outcome = refused(
                context,
                PortalSpec {
                    classes: PortalClass::COW,
                    prot: RW,
                    identifier: b"/shm/c25",
                    ..PortalSpec::default()
                },
            );
            unlink("/shm/c25");
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-026",
        rule: "DIRECT (privileged domain) over a firmware page is a direct memory object (MEMORY_INFO flags bit 0) mapped readable",
        section: "7a.1",
        decisions: &[],
        expect: granted(1),
        run: |context| {
            let (call, descriptors) = granted_call(
                context,
                &PortalSpec {
                    classes: PortalClass::DIRECT,
                    prot: protection::READ,
                    frames: DIRECT_FRAMES,
                    ..anon_spec(0)
                },
            )?;
            let object = descriptors.first().copied().unwrap_or(Descriptor::NULL);
            let info = kernel::memory_info(object);
            context.check(
                info.map(|i| (i.pages, i.flags & 1)) == Ok((1, 1)),
                "the object is not one direct page",
            );
            let pages = map(object, PAGE, protection::READ);
            context.check(pages.is_ok(), "the direct page could not be mapped");
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-027",
        rule: "DIRECT frames that are not contiguous are PM_PORTAL_BAD_MORPHOLOGY and change nothing",
        section: "7a.1",
        decisions: &["D26"],
        expect: refusal(ProcmanError::PortalBadMorphology),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    classes: PortalClass::DIRECT,
                    prot: protection::READ,
                    frames: GAPPED_FRAMES,
                    ..anon_spec(0)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-028",
        rule: "DIRECT with EXECUTE is PM_PORTAL_BAD_PROT: device memory is never executed",
        section: "7a.1",
        decisions: &[],
        expect: refusal(ProcmanError::PortalBadProt),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    classes: PortalClass::DIRECT,
                    prot: protection::READ | protection::EXECUTE,
                    frames: DIRECT_FRAMES,
                    ..anon_spec(0)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-029",
        rule: "a morphology address that is not page-aligned is PM_PORTAL_BAD_MORPHOLOGY and changes nothing",
        section: "7a.1",
        decisions: &["D26"],
        expect: refusal(ProcmanError::PortalBadMorphology),
        run: |context| {
            refused(
                context,
                PortalSpec {
                    address: 0x1_0000_0010,
                    ..anon_spec(PAGE)
                },
            )
        },
    },
    Case {
        id: "MSG-PORTAL-030",
        rule: "PORTAL_UNLINK by a process that did not create the portal is PM_NOT_NAME_OWNER; the name stays",
        section: "7a.1",
        decisions: &[],
        expect: Expect::replied(
            "PORTAL_UNLINK",
            u32::MAX,
            ProcmanError::NotNameOwner as u32,
            8,
            0,
        ),
        run: |context| {
            create_share(context, "/shm/c30", PAGE, 0)?;
            let (peer, _) = context.procman_peer()?;
            let before = snapshot(context)?;
            let registers = peer_name(&peer, PORTAL_UNLINK, "/shm/c30")?;
            unchanged(context, &before)?;
            unlink("/shm/c30");
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PORTAL-031",
        rule: "PORTAL_UNLINK by the creator removes the name and procman's references; a capture keeps the memory and its bytes",
        section: "7a.1",
        decisions: &["D24"],
        expect: Expect::replied("PORTAL_UNLINK", 0, 0, 8, 0),
        run: |context| {
            let before = snapshot(context)?;
            let object = create_share(context, "/shm/c31", PAGE, 0)?;
            let (peer, _) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/c31", RW))?;
            let (theirs, _) = peer_slot(&result, 0);
            let (address, _) = peer_map(&peer, theirs, PAGE, RW)?;
            peer.access(address, b"kept", 0)?;
            let call = send_name(PORTAL_UNLINK, "/shm/c31")?;
            let table = userlib::portal::table().map_err(|e| Failed(format!("{e}")))?;
            context.check(table == before.table, "the table did not go back");
            let pages = map(object, PAGE, protection::READ)?;
            context.check(
                pages.snapshot(pages.base(), 4).as_deref() == Some(&b"kept"[..]),
                "the memory did not outlive the name",
            );
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-032",
        rule: "PORTAL_RELEASE of a portal the caller holds no capture of is PM_PORTAL_NOT_CAPTURED and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: Expect::replied(
            "PORTAL_RELEASE",
            u32::MAX,
            ProcmanError::PortalNotCaptured as u32,
            8,
            0,
        ),
        run: |context| {
            create_share(context, "/shm/c32", PAGE, 0)?;
            let released = send_name(PORTAL_RELEASE, "/shm/c32")?;
            context.check(
                completed(&released.registers),
                "the creator's own release failed",
            );
            let outcome = refused_twice(context, || send_name(PORTAL_RELEASE, "/shm/c32"));
            unlink("/shm/c32");
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-033",
        rule: "PORTAL_SIZE of a portal that has its size is PM_PORTAL_SIZED and changes nothing",
        section: "7a.1",
        decisions: &[],
        expect: Expect::replied(
            "PORTAL_SIZE",
            u32::MAX,
            ProcmanError::PortalSized as u32,
            8,
            0,
        ),
        run: |context| {
            create_share(context, "/shm/c33", PAGE, 0)?;
            let name = b"/shm/c33";
            let mut data = Vec::from(abi::portal::PortalSizeRequest::new(name, PAGE).as_bytes());
            data.extend_from_slice(name);
            let outcome = refused_twice(context, || send_bytes(abi::portal::PORTAL_SIZE, &data));
            unlink("/shm/c33");
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-034",
        rule: "a creator's death removes its portal's name (a new capture is PM_NO_SUCH_NAME, the table goes back) while a capture keeps the memory",
        section: "7a.1",
        decisions: &["D24"],
        expect: refusal(ProcmanError::NoSuchName),
        run: |context| {
            let before = snapshot(context)?;
            let (peer, _) = context.procman_peer()?;
            let made = peer_portal(&peer, &share_spec("/shm/peer34", PAGE, 0))?;
            let (theirs, _) = peer_slot(&made, 0);
            let (address, _) = peer_map(&peer, theirs, PAGE, RW)?;
            peer.access(address, b"theirs", 0)?;
            let (_, descriptors) = granted_call(context, &capture_spec("/shm/peer34", RW))?;
            let object = descriptors.first().copied().unwrap_or(Descriptor::NULL);
            peer.exit()?;
            context.settle();
            let call = send(&capture_spec("/shm/peer34", RW))?;
            let table = userlib::portal::table().map_err(|e| Failed(format!("{e}")))?;
            context.check(
                table == before.table,
                "the dead creator's portal is still in the table",
            );
            let pages = map(object, PAGE, protection::READ)?;
            context.check(
                pages.snapshot(pages.base(), 6).as_deref() == Some(&b"theirs"[..]),
                "the capture lost the memory with its creator",
            );
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-035",
        rule: "a process that created 16 named portals is refused a 17th with PM_TOO_MANY_PORTALS, changing nothing",
        section: "7a.1",
        decisions: &["D27"],
        expect: refusal(ProcmanError::TooManyPortals),
        run: |context| {
            const NAMES: [&str; MAX_PORTALS_PER_PROCESS] = [
                "/shm/q0", "/shm/q1", "/shm/q2", "/shm/q3", "/shm/q4", "/shm/q5", "/shm/q6",
                "/shm/q7", "/shm/q8", "/shm/q9", "/shm/q10", "/shm/q11", "/shm/q12", "/shm/q13",
                "/shm/q14", "/shm/q15",
            ];
            for name in NAMES {
                create_share(context, name, PAGE, 0)?;
            }
            let outcome = refused(context, share_spec("/shm/q16", PAGE, 0));
            for name in NAMES {
                unlink(name);
            }
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-036",
        rule: "PORTAL_TABLE counts named portals, captures (a process once per portal) and procman's descriptors",
        section: "7a.1",
        decisions: &[],
        expect: Expect::replied("PORTAL_TABLE", 0, 0, 24, 0),
        run: |context| {
            let before = snapshot(context)?;
            create_share(context, "/shm/c36", PAGE, abi::portal::SHARE_POINT)?;
            let (peer, _) = context.procman_peer()?;
            for _ in 0..3 {
                peer_portal(&peer, &capture_spec("/shm/c36", protection::READ))?;
            }
            let call = send_bytes(abi::portal::PORTAL_TABLE, &[])?;
            let table = call
                .bytes
                .get(8..24)
                .and_then(|b| PortalTableReply::read_from_bytes(b).ok())
                .unwrap_or_default();
            let expected = PortalTableReply::new(
                before.table.portals + 1,
                before.table.captures + 2,
                before.table.descriptors + 2,
            );
            context.check(
                table == expected,
                "the table does not count 1 portal, 2 captures, 2 descriptors more",
            );
            unlink("/shm/c36");
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-037",
        rule: "a process killed while it holds and maps a portal loses nothing of the creator's (bytes, table) and leaks no frame: COUNTERS come back exactly",
        section: "7a.1",
        decisions: &["D24"],
        expect: Expect::error("a call to the dead peer", Error::PeerDied),
        run: |context| {
            // Warm procman and the kernel up with one peer's life first.
            let (warm, _) = context.procman_peer()?;
            warm.exit()?;
            let before = snapshot(context)?;
            let object = create_share(context, "/shm/c37", PAGE, 0)?;
            let pages = map(object, PAGE, RW)?;
            pages.write(pages.base(), b"creator");
            let (peer, _) = context.procman_peer()?;
            let result = peer_portal(&peer, &capture_spec("/shm/c37", RW))?;
            let (theirs, _) = peer_slot(&result, 0);
            let (address, _) = peer_map(&peer, theirs, PAGE, RW)?;
            peer.access(address + 16, b"peer", 0)?;
            peer.fault(fault::INVALID_OPCODE)?;
            context.settle();
            let after_call = kit::send(kit::USER_CALL, peer.control, &[], &[], 0)?;
            context.check(
                pages.snapshot(pages.base(), 7).as_deref() == Some(&b"creator"[..]),
                "the creator's bytes changed",
            );
            drop(pages);
            unlink("/shm/c37");
            context.close(object)?;
            context.close(peer.control)?;
            let after = snapshot(context)?;
            context.check(
                after.table == before.table,
                "procman kept the killed process's capture",
            );
            context.check(
                after.counters.free_frames == before.counters.free_frames
                    && after.counters.objects == before.counters.objects
                    && after.counters.processes == before.counters.processes,
                &format!(
                    "frames or objects leaked: before {:?}, after {:?}",
                    before.counters, after.counters
                ),
            );
            Ok(context.observe(after_call.registers))
        },
    },
    Case {
        id: "MSG-PORTAL-038",
        rule: "1,000 cycles of create / map / share with a peer / copy-on-write write / unmap / close / release / unlink leave COUNTERS and procman's table exactly where they were",
        section: "7a.1",
        decisions: &[],
        expect: Expect::replied("PORTAL_TABLE", 0, 0, 24, 0),
        run: |context| {
            let (peer, _) = context.procman_peer()?;
            churn_cycle(&peer, 0)?;
            let before = snapshot(context)?;
            for cycle in 1..=1000 {
                churn_cycle(&peer, cycle)?;
            }
            let after = snapshot(context)?;
            context.check(
                after == before,
                &format!("the churn moved something: before {before:?}, after {after:?}"),
            );
            let call = send_bytes(abi::portal::PORTAL_TABLE, &[])?;
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-039",
        rule: "SPECIAL naming a pager's door (registered with CREATE_OBJECT) replies a special object (MEMORY_INFO flags SPECIAL, the length rounded to pages) moved to the caller; a peer that touches it waits for a PAGE_REQUEST on that door carrying the chain's message as its cookie, and reads what the pager supplies",
        section: "7a.1",
        decisions: &["D25"],
        expect: granted(1),
        run: |context| {
            let pager = userlib::procman::create_object(Some(SPECIAL_PAGER), false, 3)
                .map_err(|e| Failed(format!("CREATE_OBJECT {SPECIAL_PAGER}: {e}")))?;
            let owner = context.adopt(pager.owner.into_raw());
            context.adopt(pager.client.into_raw());
            let (call, objects) = granted_call(context, &special_spec(b"file 7"))?;
            let object = objects.first().copied().unwrap_or(Descriptor::NULL);
            let info = kernel::memory_info(object);
            context.check(
                info.is_ok_and(|i| i.pages == 2 && i.flags == abi::kcall::memory_flags::SPECIAL),
                &format!("MEMORY_INFO of the object: {info:?}"),
            );
            context.check(
                reply_of(&call.bytes).length == 2 * PAGE,
                &format!("the reply's length is {}", reply_of(&call.bytes).length),
            );
            let (peer, _) = context.procman_peer()?;
            // The rights the portal gave (`prot`'s), passed on whole.
            let (_, rights) = slot(&call.registers, &call.bytes, 0);
            let taken = peer.take(&[abi::DescriptorSlot::copy(object, Rights(rights))])?;
            let peer_object = taken.first().copied().unwrap_or(0);
            super::pager::peer_maps(&peer, peer_object, 2 * PAGE)?;
            let job = super::pager::touch(context, peer, PAGE, &[], 6)?;
            let (served, mut buffer) = super::pager::take_request(context, owner)?;
            let request = buffer.snapshot(24);
            context.check(
                request.get(..8) == Some(&b"file 7\0\0"[..])
                    && request.get(8..16) == Some(&PAGE.to_le_bytes()[..]),
                &format!("the PAGE_REQUEST's cookie and offset: {request:?}"),
            );
            let _ = served;
            kit::reply(
                &mut buffer,
                &kit::Answer::data(&super::pager::supply(
                    abi::kcall::PageSupply::data(),
                    b"paged!",
                )),
            )?;
            let accessed = super::pager::access_result(context, &job)?;
            super::pager::check_read(context, &accessed, b"paged!");
            let _ = userlib::procman::unlink(SPECIAL_PAGER);
            Ok(observe(context, &call))
        },
    },
    Case {
        id: "MSG-PORTAL-040",
        rule: "SPECIAL whose chain's first server is a name whose door's owner closed it is PM_PORTAL_NO_PAGER, and changes nothing",
        section: "7a.1",
        decisions: &["D25"],
        expect: refusal(ProcmanError::PortalNoPager),
        run: |context| {
            let pager = userlib::procman::create_object(Some(GONE_PAGER), false, 3)
                .map_err(|e| Failed(format!("CREATE_OBJECT {GONE_PAGER}: {e}")))?;
            drop(pager.owner);
            context.adopt(pager.client.into_raw());
            let outcome = refused_twice(context, || send(&special_spec_of(GONE_PAGER, b"")));
            let _ = userlib::procman::unlink(GONE_PAGER);
            outcome
        },
    },
    Case {
        id: "MSG-PORTAL-041",
        rule: "SPECIAL with a chain message longer than the 8-byte cookie is PM_BAD_REQUEST, and changes nothing",
        section: "7a.1",
        decisions: &["D25"],
        expect: refusal(ProcmanError::BadRequest),
        run: |context| refused(context, special_spec(b"nine byte")),
    },
];

/// The rights procman grants for `prot` (ABI.md §7a.1).
pub fn procman_rights(prot: u32) -> Rights {
    Rights(Rights::for_protection(prot).0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0)
}
