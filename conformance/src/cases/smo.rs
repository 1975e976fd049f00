//! MSG-SMO: shared memory objects (ABI.md §6.5, §9 D29-D31), Sartoris'
//! sharing by copy: the runner shares its own pages with peers it named
//! (PROCESS_SET_COOKIE on their handles gives them ids, as procman does;
//! the runner, started by nobody, has id 0 and is never a target), the
//! peers copy in and out through the kernel into memory they mapped
//! themselves, pass SMOs on, and end; every refusal is checked to change
//! nothing: the kernel's counters (objects, descriptors, charged bytes,
//! free frames) around the refused trap, and for copies the bytes on both
//! sides.
//!
//! The peers' own memory lies at [`PEER_AT`], the runner's memory-object
//! mappings at [`RUNNER_AT`], both in the area the MEM cases use for fixed
//! mappings (far from anything the kernel places for Rust code).

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::kcall::protection::{READ, WRITE};
use abi::kcall::{SmoCopyRequest, SmoPassRequest, SmoRequest, SmoShareRequest, map_anonymous, smo};
use abi::{Descriptor, Error, KernelFunction, PAGE_BYTES};
use userlib::kernel;
use userlib::raw::RawPages;
use zerocopy::IntoBytes;

use super::kit;
use super::kit::{measured, refused};
use super::memory::{counters_call, cow, create, free_frames, map, observed, read, warm_up};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value};
use crate::peer::{Peer, Step, StepResult, fault};

const PAGE: u64 = PAGE_BYTES;
const RW: u32 = READ | WRITE;
const BOTH: u32 = smo::READ | smo::WRITE;

/// The id the runner gives its (first) peer, and a second one.
const PEER_ID: u64 = 0x5a01;
const OTHER_ID: u64 = 0x5a02;

/// Where a peer maps memory of its own (MAP_ANONYMOUS at a fixed address).
const PEER_AT: u64 = 0x0000_5000_4000_0000;
/// Where the runner maps memory objects for these cases.
const RUNNER_AT: u64 = 0x0000_5000_8000_0000;

/// The first bytes of a successful kernel reply: msgRetVal 0, msgErrno 0.
const OK_HEADER: [u8; 8] = [0; 8];

/// A peer with id `id` and `pages` pages of its own memory at [`PEER_AT`].
fn named_peer(context: &mut Context, id: u64, pages: u64) -> Result<Peer, Failed> {
    let peer = context.peer(&[])?;
    kernel::process_set_cookie(peer.process, id)?;
    let request = map_anonymous(PEER_AT, pages * PAGE, RW);
    let mapped = peer_call(&peer, KernelFunction::MapAnonymous, request.as_bytes())?;
    if let Some(error) = mapped.registers.kernel_error() {
        return Err(Failed(format!(
            "the peer's MAP_ANONYMOUS at {PEER_AT:#x} failed: {}",
            error.name()
        )));
    }
    Ok(peer)
}

/// `pages` pages of the runner's own memory holding `content` at its start.
fn runner_pages(
    context: &mut Context,
    pages: u64,
    content: &[u8],
) -> Result<Arc<RawPages>, Failed> {
    let memory = context.map_pages(pages)?;
    memory.write(memory.base(), content);
    Ok(memory)
}

/// SMO_SHARE by the runner that must succeed (claimed when the case ends).
fn share(
    context: &mut Context,
    target: u64,
    address: u64,
    size: u64,
    permissions: u32,
) -> Result<u32, Failed> {
    let id = kernel::smo_share(target, address, size, permissions)?;
    Ok(context.adopt_smo(id))
}

/// The peer traps kernel function `function` with `request` (NULL target).
fn peer_call(peer: &Peer, function: KernelFunction, request: &[u8]) -> Result<StepResult, Failed> {
    peer.trap(Step::send(function.function(), 0, request, &[], 64))
}

/// The peer's SMO_READ of `size` bytes at `offset` into its `address`.
fn peer_read(
    peer: &Peer,
    id: u32,
    offset: u64,
    size: u64,
    address: u64,
) -> Result<StepResult, Failed> {
    let request = SmoCopyRequest::new(id, offset, size, address);
    peer_call(peer, KernelFunction::SmoRead, request.as_bytes())
}

/// The peer's SMO_WRITE of `size` bytes from its `address` to `offset`.
fn peer_write(
    peer: &Peer,
    id: u32,
    offset: u64,
    size: u64,
    address: u64,
) -> Result<StepResult, Failed> {
    let request = SmoCopyRequest::new(id, offset, size, address);
    peer_call(peer, KernelFunction::SmoWrite, request.as_bytes())
}

/// What the peer reads of its own memory at `address`.
fn peer_bytes(peer: &Peer, address: u64, length: usize) -> Result<Vec<u8>, Failed> {
    Ok(peer.access(address, b"", length)?.bytes)
}

/// The observation of a peer's step, its buffer included.
fn step_observed(context: &Context, result: StepResult) -> crate::expect::Observed {
    context.observe_buffer(result.registers, result.msg_ptr, result.snapshot)
}

/// The peer's `function` with `request`, which must be refused and change
/// nothing: the kernel's counters around it (the same control path warmed
/// first with a PROCESS_ID step), the runner's `memory` and the peer's
/// first page.
fn peer_refused(
    context: &mut Context,
    peer: &Peer,
    function: KernelFunction,
    request: &[u8],
    memory: &RawPages,
) -> Outcome {
    peer_call(peer, KernelFunction::ProcessId, &[])?;
    let runner_before = read(memory, memory.base(), PAGE as usize);
    let peer_before = peer_bytes(peer, PEER_AT, 256)?;
    let before = kernel::counters()?;
    let result = peer_call(peer, function, request)?;
    let after = kernel::counters()?;
    context.check(
        before == after,
        &format!(
            "a refused {} changed the kernel's counters from {before:?} to {after:?}",
            function.name()
        ),
    );
    context.check(
        read(memory, memory.base(), PAGE as usize) == runner_before,
        "a refused call changed the runner's memory",
    );
    context.check(
        peer_bytes(peer, PEER_AT, 256)? == peer_before,
        "a refused call changed the peer's memory",
    );
    Ok(context.observe(result.registers))
}

/// A runner's SMO_SHARE request for `target`, refused with nothing changed.
fn share_refused(context: &mut Context, request: SmoShareRequest) -> Outcome {
    refused(
        context,
        KernelFunction::SmoShare,
        Descriptor::NULL,
        request.as_bytes(),
    )
}

/// The usual fixture: a peer with id [`PEER_ID`] and one page at
/// [`PEER_AT`], the runner's page holding `content`, shared with the peer
/// (`size` bytes, `permissions`).
fn shared(
    context: &mut Context,
    content: &[u8],
    size: u64,
    permissions: u32,
) -> Result<(Peer, Arc<RawPages>, u32), Failed> {
    let peer = named_peer(context, PEER_ID, 1)?;
    let memory = runner_pages(context, 1, content)?;
    let id = share(context, PEER_ID, memory.base(), size, permissions)?;
    Ok((peer, memory, id))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SMO-001",
        rule: "SMO_SHARE with a named peer as target replies SmoReply{id} (an id below 2^31, reserved 0) and charges the runner 64 bytes, making no object or descriptor",
        section: "6.5",
        decisions: &["D31"],
        expect: Expect::replied("SMO_SHARE", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (8, Field::Word(Value::Var("id"))),
            (12, Field::Word(Value::Is(0))),
        ]),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            let memory = runner_pages(context, 1, b"shared")?;
            let request = SmoShareRequest::new(PEER_ID, memory.base(), 6, smo::READ);
            // Warm the kernel's SMO table once, so its growth is not counted.
            let warm = share(context, PEER_ID, memory.base(), 6, smo::READ)?;
            kernel::smo_claim(warm)?;
            let m = measured(
                KernelFunction::SmoShare,
                Descriptor::NULL,
                request.as_bytes(),
                64,
            )?;
            let id = m
                .call
                .bytes
                .get(8..12)
                .map_or(u32::MAX, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            if m.call.registers.kernel_error().is_none() {
                context.adopt_smo(id);
            }
            context.bind("id", u64::from(id));
            context.check(
                id < smo::ID_LIMIT,
                &format!("the id {id:#x} is not below 2^31"),
            );
            let (b, a) = (m.before, m.after);
            context.check(
                a.charged_bytes == b.charged_bytes + smo::COST
                    && (a.objects, a.descriptors, a.free_frames)
                        == (b.objects, b.descriptors, b.free_frames),
                &format!("the counters went from {b:?} to {a:?}"),
            );
            Ok(observed(context, m.call))
        },
    },
    Case {
        id: "MSG-SMO-002",
        rule: "PROCESS_ID replies the caller's process id: the peer gets the id the runner set on its handle (0x5a01), the runner, which nobody named, 0",
        section: "6.5",
        decisions: &["D29"],
        expect: Expect::replied("the peer's PROCESS_ID", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (8, Field::Quad(Value::Is(PEER_ID))),
        ]),
        run: |context| {
            let peer = named_peer(context, PEER_ID, 1)?;
            let own = kernel::process_id()?;
            context.check(own == 0, &format!("the runner's PROCESS_ID is {own:#x}"));
            let result = peer_call(&peer, KernelFunction::ProcessId, &[])?;
            Ok(step_observed(context, result))
        },
    },
    Case {
        id: "MSG-SMO-003",
        rule: "the target's SMO_READ copies the owner's bytes into the target's own memory (its offset 4, 9 bytes) and replies msgRetVal 0 with no payload",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::replied("the peer's SMO_READ", 0, 0, 8, 0)
            .with_buffer(&[(0, Field::Bytes(&OK_HEADER))]),
        run: |context| {
            let (peer, _memory, id) = shared(context, b"the runner's bytes", 18, smo::READ)?;
            let result = peer_read(&peer, id, 4, 9, PEER_AT + 100)?;
            let got = peer_bytes(&peer, PEER_AT + 100, 9)?;
            context.check(got == b"runner's ", &format!("the peer holds {got:?}"));
            Ok(step_observed(context, result))
        },
    },
    Case {
        id: "MSG-SMO-004",
        rule: "the target's SMO_WRITE copies bytes of its own memory into the owner's (at offset 4), the bytes around them untouched",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::replied("the peer's SMO_WRITE", 0, 0, 8, 0),
        run: |context| {
            let (peer, memory, id) = shared(context, b"the runner's bytes", 18, smo::WRITE)?;
            peer.access(PEER_AT, b"PEER'S", 0)?;
            let result = peer_write(&peer, id, 4, 6, PEER_AT)?;
            let got = read(&memory, memory.base(), 18);
            context.check(
                got == b"the PEER'S's bytes",
                &format!("the runner holds {got:?}"),
            );
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-SMO-005",
        rule: "SMO_PASS hands the SMO on: after the peer passes it to a second peer, the second reads it and the first's SMO_READ is NOT_SMO_TARGET",
        section: "6.5",
        decisions: &[],
        expect: Expect::error(
            "the first peer's SMO_READ after the pass",
            Error::NotSmoTarget,
        ),
        run: |context| {
            let (first, _memory, id) = shared(context, b"passed on", 9, smo::READ)?;
            let second = named_peer(context, OTHER_ID, 1)?;
            let request = SmoPassRequest::new(id, OTHER_ID);
            let passed = peer_call(&first, KernelFunction::SmoPass, request.as_bytes())?;
            context.check(
                passed.registers.kernel_error().is_none(),
                &format!(
                    "SMO_PASS: {}",
                    crate::context::describe_registers(&passed.registers)
                ),
            );
            let read_by_second = peer_read(&second, id, 0, 9, PEER_AT)?;
            context.check(
                read_by_second.registers.kernel_error().is_none()
                    && peer_bytes(&second, PEER_AT, 9)? == b"passed on",
                "the new target could not read the SMO",
            );
            let result = peer_read(&first, id, 0, 9, PEER_AT)?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-SMO-006",
        rule: "SMO_CLAIM by the owner replies msgRetVal 0 and gives back the 64 bytes; the target's SMO_READ afterwards is NO_SUCH_SMO",
        section: "6.5",
        decisions: &["D31"],
        expect: Expect::replied("SMO_CLAIM", 0, 0, 8, 0),
        run: |context| {
            let (peer, _memory, id) = shared(context, b"claimed", 7, smo::READ)?;
            let request = SmoRequest::new(id);
            let m = measured(
                KernelFunction::SmoClaim,
                Descriptor::NULL,
                request.as_bytes(),
                64,
            )?;
            context.check(
                m.after.charged_bytes + smo::COST == m.before.charged_bytes,
                &format!(
                    "charged bytes went from {} to {}",
                    m.before.charged_bytes, m.after.charged_bytes
                ),
            );
            let after = peer_read(&peer, id, 0, 7, PEER_AT)?;
            context.check(
                after.registers.kernel_error() == Some(Error::NoSuchSmo),
                &format!(
                    "the read after the claim: {}",
                    crate::context::describe_registers(&after.registers)
                ),
            );
            Ok(observed(context, m.call))
        },
    },
    Case {
        id: "MSG-SMO-007",
        rule: "one SMO_READ copies up to 65,536 bytes (16 pages, page by page through both spaces), every byte arriving",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::replied("the peer's SMO_READ of 65,536 bytes", 0, 0, 8, 0),
        run: |context| {
            let peer = named_peer(context, PEER_ID, 16)?;
            let memory = context.map_pages(16)?;
            let pattern = kit::pattern(7, smo::MAX_COPY as usize);
            memory.write(memory.base(), &pattern);
            let id = share(context, PEER_ID, memory.base(), smo::MAX_COPY, smo::READ)?;
            let result = peer_read(&peer, id, 0, smo::MAX_COPY, PEER_AT)?;
            for page in 0..16usize {
                let at = page * PAGE as usize;
                let got = peer_bytes(&peer, PEER_AT + at as u64, 64)?;
                context.check(
                    got == pattern[at..at + 64],
                    &format!("page {page} of the copy differs"),
                );
            }
            let last = peer_bytes(&peer, PEER_AT + smo::MAX_COPY - 16, 16)?;
            context.check(
                last == pattern[pattern.len() - 16..],
                "the copy's last bytes differ",
            );
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-SMO-008",
        rule: "an SMO_WRITE into a copy-on-write page of the owner copies the page first: exactly one frame taken, the parent object's bytes unchanged",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::replied("the peer's SMO_WRITE", 0, 0, 8, 0),
        run: |context| {
            warm_up(context)?;
            let peer = named_peer(context, PEER_ID, 1)?;
            let parent = create(context, 2)?;
            let parent_pages = map(parent, RUNNER_AT, 0, 2 * PAGE, RW)?;
            parent_pages.write(RUNNER_AT, b"parent's bytes");
            let child = cow(context, parent, 2)?;
            let child_at = RUNNER_AT + 0x10_0000;
            let child_pages = map(child, child_at, 0, 2 * PAGE, RW)?;
            let id = share(context, PEER_ID, child_at, 2 * PAGE, smo::WRITE)?;
            peer.access(PEER_AT, b"CHILD", 0)?;
            let frames = free_frames()?;
            let result = peer_write(&peer, id, 0, 5, PEER_AT)?;
            let taken = frames.saturating_sub(free_frames()?);
            context.check(taken == 1, &format!("the write took {taken} frames"));
            context.check(
                read(&child_pages, child_at, 14) == b"CHILDt's bytes",
                "the child does not hold the written bytes over the parent's",
            );
            context.check(
                read(&parent_pages, RUNNER_AT, 14) == b"parent's bytes",
                "the parent's bytes changed",
            );
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-SMO-009",
        rule: "an owner's end destroys its SMOs: a peer's SMO shared with a second peer is NO_SUCH_SMO to the second once the first exited",
        section: "6.5",
        decisions: &["D31"],
        expect: Expect::error("the second peer's SMO_READ", Error::NoSuchSmo),
        run: |context| {
            let owner = named_peer(context, PEER_ID, 1)?;
            let target = named_peer(context, OTHER_ID, 1)?;
            let request = SmoShareRequest::new(OTHER_ID, PEER_AT, 64, smo::READ);
            let made = peer_call(&owner, KernelFunction::SmoShare, request.as_bytes())?;
            let id = made
                .snapshot
                .get(8..12)
                .map_or(u32::MAX, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            let before = peer_read(&target, id, 0, 8, PEER_AT)?;
            context.check(
                before.registers.kernel_error().is_none(),
                "the target could not read while the owner lived",
            );
            owner.exit()?;
            context.settle();
            let result = peer_read(&target, id, 0, 8, PEER_AT)?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-SMO-010",
        rule: "a target's end leaves the SMO to its owner, aimed at nobody: a new process given the ended target's id is NOT_SMO_TARGET, and the owner's SMO_CLAIM still replies 0",
        section: "6.5",
        decisions: &["D31"],
        expect: Expect::replied("the runner's SMO_CLAIM", 0, 0, 8, 0),
        run: |context| {
            let (peer, _memory, id) = shared(context, b"orphan", 6, smo::READ)?;
            peer.exit()?;
            context.settle();
            let heir = named_peer(context, PEER_ID, 1)?;
            let tried = peer_read(&heir, id, 0, 6, PEER_AT)?;
            context.check(
                tried.registers.kernel_error() == Some(Error::NotSmoTarget),
                &format!(
                    "a new process with the ended target's id read it: {}",
                    crate::context::describe_registers(&tried.registers)
                ),
            );
            let request = SmoRequest::new(id);
            let call = kit::send(
                KernelFunction::SmoClaim.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SMO-011",
        rule: "a target killed between two chunks of a long copy into a copy-on-write region loses nothing of anyone else: the chunk written is the owner's, the next never came, and once the owner claims, unmaps and closes, free frames are exactly where they started",
        section: "6.5",
        decisions: &["D30", "D31"],
        expect: Expect::replied("COUNTERS after the cleanup", 0, 0, 56, 0)
            .with_buffer(&[(48, Field::Quad(Value::Var("frames")))]),
        run: |context| {
            warm_up(context)?;
            let frames = free_frames()?;
            let peer = named_peer(context, PEER_ID, 2)?;
            peer.access(PEER_AT, &[0xbb; 64], 0)?;
            {
                let parent = kernel::memory_create(4)?;
                let parent_pages =
                    RawPages::map_object(parent.descriptor(), RUNNER_AT, 0, 4 * PAGE, RW)?;
                parent_pages.write(RUNNER_AT, b"parent");
                let child = kernel::memory_cow(parent.descriptor(), 0, 4 * PAGE)?;
                let child_at = RUNNER_AT + 0x10_0000;
                let child_pages =
                    RawPages::map_object(child.descriptor(), child_at, 0, 4 * PAGE, RW)?;
                let id = kernel::smo_share(PEER_ID, child_at, 4 * PAGE, smo::WRITE)?;
                let first = peer_write(&peer, id, 0, 2 * PAGE, PEER_AT)?;
                context.check(
                    first.registers.kernel_error().is_none(),
                    "the first chunk failed",
                );
                let died = peer.fault(fault::INVALID_OPCODE)?;
                context.check(
                    died.kernel_error() == Some(Error::PeerDied),
                    "the peer did not die of its fault",
                );
                context.settle();
                context.check(
                    read(&child_pages, child_at, 4) == [0xbb; 4]
                        && read(&child_pages, child_at + 2 * PAGE, 4) == [0; 4],
                    "the owner's region does not hold exactly the first chunk",
                );
                context.check(
                    read(&parent_pages, RUNNER_AT, 6) == b"parent",
                    "the parent's bytes changed",
                );
                kernel::smo_claim(id)?;
            }
            context.bind("frames", frames);
            Ok(observed(context, counters_call()?))
        },
    },
    Case {
        id: "MSG-SMO-012",
        rule: "SMO_SHARE with its reserved field set is RESERVED_BITS, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::ReservedBits),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            share_refused(
                context,
                SmoShareRequest::new(PEER_ID, PEER_AT, 8, smo::READ).with_reserved(1),
            )
        },
    },
    Case {
        id: "MSG-SMO-013",
        rule: "SMO_SHARE with a permission bit other than READ and WRITE (4) is RESERVED_BITS, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::ReservedBits),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            share_refused(context, SmoShareRequest::new(PEER_ID, PEER_AT, 8, 4))
        },
    },
    Case {
        id: "MSG-SMO-014",
        rule: "SMO_SHARE with no permission is INVALID_ARGUMENT, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::InvalidArgument),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            share_refused(context, SmoShareRequest::new(PEER_ID, PEER_AT, 8, 0))
        },
    },
    Case {
        id: "MSG-SMO-015",
        rule: "SMO_SHARE of 0 bytes is INVALID_ARGUMENT, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::InvalidArgument),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            share_refused(
                context,
                SmoShareRequest::new(PEER_ID, PEER_AT, 0, smo::READ),
            )
        },
    },
    Case {
        id: "MSG-SMO-016",
        rule: "SMO_SHARE of a range that wraps past 2^64 is BAD_ADDRESS_RANGE, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::BadAddressRange),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            share_refused(
                context,
                SmoShareRequest::new(PEER_ID, u64::MAX - 7, 16, smo::READ),
            )
        },
    },
    Case {
        id: "MSG-SMO-017",
        rule: "SMO_SHARE of a range in the kernel half (or ending past the user half) is BAD_ADDRESS_RANGE, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::BadAddressRange),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            let end = abi::process::USER_END;
            let straddling = share_refused(
                context,
                SmoShareRequest::new(PEER_ID, end - 8, 16, smo::READ),
            )?;
            context.check(
                straddling.registers.kernel_error() == Some(Error::BadAddressRange),
                "a range ending past the user half was not BAD_ADDRESS_RANGE",
            );
            share_refused(
                context,
                SmoShareRequest::new(PEER_ID, 0xffff_8000_0000_0000, 16, smo::READ),
            )
        },
    },
    Case {
        id: "MSG-SMO-018",
        rule: "SMO_SHARE for process id 0 (never given) is NO_SUCH_PROCESS_ID, changing nothing",
        section: "6.5",
        decisions: &["D29"],
        expect: Expect::error("SMO_SHARE", Error::NoSuchProcessId),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            share_refused(context, SmoShareRequest::new(0, PEER_AT, 8, smo::READ))
        },
    },
    Case {
        id: "MSG-SMO-019",
        rule: "SMO_SHARE for the id of a process that ended is NO_SUCH_PROCESS_ID, changing nothing",
        section: "6.5",
        decisions: &["D29"],
        expect: Expect::error("SMO_SHARE", Error::NoSuchProcessId),
        run: |context| {
            let peer = named_peer(context, PEER_ID, 1)?;
            peer.exit()?;
            context.settle();
            share_refused(
                context,
                SmoShareRequest::new(PEER_ID, PEER_AT, 8, smo::READ),
            )
        },
    },
    Case {
        id: "MSG-SMO-020",
        rule: "SMO_SHARE for an id two live processes were given names neither: NO_SUCH_PROCESS_ID, changing nothing",
        section: "6.5",
        decisions: &["D29"],
        expect: Expect::error("SMO_SHARE", Error::NoSuchProcessId),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            named_peer(context, PEER_ID, 1)?;
            share_refused(
                context,
                SmoShareRequest::new(PEER_ID, PEER_AT, 8, smo::READ),
            )
        },
    },
    Case {
        id: "MSG-SMO-021",
        rule: "SMO_SHARE with 24 bytes of request (it takes 32) is BAD_SIZES, changing nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::BadSizes),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            let request = SmoShareRequest::new(PEER_ID, PEER_AT, 8, smo::READ);
            refused(
                context,
                KernelFunction::SmoShare,
                Descriptor::NULL,
                &request.as_bytes()[..24],
            )
        },
    },
    Case {
        id: "MSG-SMO-022",
        rule: "SMO_SHARE sent to an object (the runner's process-control capability) instead of the NULL target is FUNCTION_OUT_OF_RANGE, changing nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("SMO_SHARE", Error::FunctionOutOfRange),
        run: |context| {
            named_peer(context, PEER_ID, 1)?;
            let request = SmoShareRequest::new(PEER_ID, PEER_AT, 8, smo::READ);
            refused(
                context,
                KernelFunction::SmoShare,
                abi::process::FIRST_PROCESS_CONTROL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMO-023",
        rule: "SMO_CLAIM of an id no SMO has is NO_SUCH_SMO, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("SMO_CLAIM", Error::NoSuchSmo),
        run: |context| {
            refused(
                context,
                KernelFunction::SmoClaim,
                Descriptor::NULL,
                SmoRequest::new(0x7654_3210).as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMO-024",
        rule: "a second SMO_CLAIM of the same id is NO_SUCH_SMO, changing nothing (an id claimed names nothing)",
        section: "6.5",
        decisions: &["D31"],
        expect: Expect::error("the second SMO_CLAIM", Error::NoSuchSmo),
        run: |context| {
            let (_peer, _memory, id) = shared(context, b"twice", 5, smo::READ)?;
            kernel::smo_claim(id)?;
            refused(
                context,
                KernelFunction::SmoClaim,
                Descriptor::NULL,
                SmoRequest::new(id).as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMO-025",
        rule: "SMO_READ by the owner of an SMO it shared with another process is NOT_SMO_TARGET: only the target copies",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the runner's SMO_READ", Error::NotSmoTarget),
        run: |context| {
            let (_peer, memory, id) = shared(context, b"not yours", 9, BOTH)?;
            let request = SmoCopyRequest::new(id, 0, 9, memory.base() + 64);
            refused(
                context,
                KernelFunction::SmoRead,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMO-026",
        rule: "SMO_PASS by the owner, which is not the target, is NOT_SMO_TARGET, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the runner's SMO_PASS", Error::NotSmoTarget),
        run: |context| {
            let (_peer, _memory, id) = shared(context, b"stays", 5, smo::READ)?;
            let request = SmoPassRequest::new(id, PEER_ID);
            refused(
                context,
                KernelFunction::SmoPass,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMO-027",
        rule: "SMO_CLAIM by the target, which did not make the SMO, is NOT_SMO_OWNER, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_CLAIM", Error::NotSmoOwner),
        run: |context| {
            let (peer, memory, id) = shared(context, b"owned", 5, BOTH)?;
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoClaim,
                SmoRequest::new(id).as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-028",
        rule: "SMO_WRITE to an SMO shared for READ alone is MISSING_RIGHT, the owner's bytes unchanged",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_WRITE", Error::MissingRight),
        run: |context| {
            let (peer, memory, id) = shared(context, b"read only", 9, smo::READ)?;
            let request = SmoCopyRequest::new(id, 0, 9, PEER_AT);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoWrite,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-029",
        rule: "SMO_READ of an SMO shared for WRITE alone is MISSING_RIGHT, the target's bytes unchanged",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_READ", Error::MissingRight),
        run: |context| {
            let (peer, memory, id) = shared(context, b"write only", 10, smo::WRITE)?;
            let request = SmoCopyRequest::new(id, 0, 10, PEER_AT);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoRead,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-030",
        rule: "SMO_READ of 65,537 bytes (one more than a call may copy) is INVALID_ARGUMENT, changing nothing",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::error("the peer's SMO_READ", Error::InvalidArgument),
        run: |context| {
            let peer = named_peer(context, PEER_ID, 17)?;
            let memory = context.map_pages(17)?;
            let id = share(context, PEER_ID, memory.base(), 17 * PAGE, smo::READ)?;
            let request = SmoCopyRequest::new(id, 0, smo::MAX_COPY + 1, PEER_AT);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoRead,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-031",
        rule: "SMO_READ of bytes past the SMO's end (offset 60 + 8 bytes of a 64-byte SMO) is SMO_OUT_OF_BOUNDS, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_READ", Error::SmoOutOfBounds),
        run: |context| {
            let (peer, memory, id) = shared(context, b"bounded", 64, smo::READ)?;
            let request = SmoCopyRequest::new(id, 60, 8, PEER_AT);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoRead,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-032",
        rule: "SMO_WRITE at an offset whose sum with the size wraps past 2^64 is SMO_OUT_OF_BOUNDS, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_WRITE", Error::SmoOutOfBounds),
        run: |context| {
            let (peer, memory, id) = shared(context, b"wrapping", 64, smo::WRITE)?;
            let request = SmoCopyRequest::new(id, u64::MAX - 3, 8, PEER_AT);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoWrite,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-033",
        rule: "SMO_READ into a buffer of the target's that runs into unmapped memory is BAD_BUFFER, nothing of it written",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_READ", Error::BadBuffer),
        run: |context| {
            let (peer, memory, id) = shared(context, b"no room", 64, smo::READ)?;
            // The peer's one page ends 16 bytes after the buffer starts.
            let request = SmoCopyRequest::new(id, 0, 64, PEER_AT + PAGE - 16);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoRead,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-034",
        rule: "SMO_READ after the owner unmapped the shared range is SMO_REGION_GONE, never a fault of the kernel or of either process",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::error("the peer's SMO_READ", Error::SmoRegionGone),
        run: |context| {
            let peer = named_peer(context, PEER_ID, 1)?;
            let memory = context.map_pages(2)?;
            let id = share(context, PEER_ID, memory.base() + PAGE, PAGE, BOTH)?;
            kernel::unmap(memory.base() + PAGE, PAGE)?;
            let request = SmoCopyRequest::new(id, 0, 16, PEER_AT);
            let observed = peer_refused(
                context,
                &peer,
                KernelFunction::SmoRead,
                request.as_bytes(),
                &memory,
            )?;
            let alive = peer_call(&peer, KernelFunction::ProcessId, &[])?;
            context.check(alive.registers.kernel_error().is_none(), "the peer is gone");
            Ok(observed)
        },
    },
    Case {
        id: "MSG-SMO-035",
        rule: "SMO_WRITE after the owner made the shared range read-only (PROTECT READ) is SMO_REGION_GONE, the owner's bytes unchanged; SMO_READ still works",
        section: "6.5",
        decisions: &["D30"],
        expect: Expect::error("the peer's SMO_WRITE", Error::SmoRegionGone),
        run: |context| {
            let (peer, memory, id) = shared(context, b"frozen", 64, BOTH)?;
            kernel::protect(memory.base(), PAGE, READ)?;
            let request = SmoCopyRequest::new(id, 0, 6, PEER_AT);
            let observed = peer_refused(
                context,
                &peer,
                KernelFunction::SmoWrite,
                request.as_bytes(),
                &memory,
            )?;
            let read_back = peer_read(&peer, id, 0, 6, PEER_AT + 512)?;
            context.check(
                read_back.registers.kernel_error().is_none()
                    && peer_bytes(&peer, PEER_AT + 512, 6)? == b"frozen",
                "SMO_READ of the read-only range failed",
            );
            kernel::protect(memory.base(), PAGE, RW)?;
            Ok(observed)
        },
    },
    Case {
        id: "MSG-SMO-036",
        rule: "SMO_PASS by the target to an id no live process has is NO_SUCH_PROCESS_ID, the target unchanged",
        section: "6.5",
        decisions: &["D29"],
        expect: Expect::error("the peer's SMO_PASS", Error::NoSuchProcessId),
        run: |context| {
            let (peer, memory, id) = shared(context, b"kept", 4, smo::READ)?;
            let request = SmoPassRequest::new(id, 0x5a77);
            let observed = peer_refused(
                context,
                &peer,
                KernelFunction::SmoPass,
                request.as_bytes(),
                &memory,
            )?;
            let still = peer_read(&peer, id, 0, 4, PEER_AT)?;
            context.check(
                still.registers.kernel_error().is_none(),
                "the peer is no longer the target",
            );
            Ok(observed)
        },
    },
    Case {
        id: "MSG-SMO-037",
        rule: "PROCESS_ID with request data (it takes none) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("PROCESS_ID", Error::BadSizes),
        run: |context| {
            refused(
                context,
                KernelFunction::ProcessId,
                Descriptor::NULL,
                &[0; 8],
            )
        },
    },
    Case {
        id: "MSG-SMO-038",
        rule: "SMO_READ with its reserved field set is RESERVED_BITS, changing nothing",
        section: "6.5",
        decisions: &[],
        expect: Expect::error("the peer's SMO_READ", Error::ReservedBits),
        run: |context| {
            let (peer, memory, id) = shared(context, b"reserved", 8, smo::READ)?;
            let request = SmoCopyRequest::new(id, 0, 8, PEER_AT).with_reserved(1);
            peer_refused(
                context,
                &peer,
                KernelFunction::SmoRead,
                request.as_bytes(),
                &memory,
            )
        },
    },
    Case {
        id: "MSG-SMO-039",
        rule: "an owner killed between two chunks of a target's long copy loses nothing of the target: the target's next SMO_READ is NO_SUCH_SMO, the chunk it read stays and its bytes past it are untouched; once both peers ended, free frames are where they started",
        section: "6.5",
        decisions: &["D30", "D31"],
        expect: Expect::error("the target's second SMO_READ", Error::NoSuchSmo),
        run: |context| {
            // Two named peers started and ended once first, so the kernel's
            // tables have room for them and no growth shows in the frames.
            for id in [PEER_ID, OTHER_ID] {
                let warm = named_peer(context, id, 2)?;
                warm.exit()?;
            }
            context.settle();
            let frames = free_frames()?;
            let owner = named_peer(context, PEER_ID, 2)?;
            let target = named_peer(context, OTHER_ID, 2)?;
            owner.access(PEER_AT, &[0x0a; 64], 0)?;
            owner.access(PEER_AT + PAGE, &[0x0b; 64], 0)?;
            target.access(PEER_AT + PAGE, &[0xcc; 64], 0)?;
            let request = SmoShareRequest::new(OTHER_ID, PEER_AT, 2 * PAGE, smo::READ);
            let made = peer_call(&owner, KernelFunction::SmoShare, request.as_bytes())?;
            let id = made
                .snapshot
                .get(8..12)
                .map_or(u32::MAX, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            let first = peer_read(&target, id, 0, PAGE, PEER_AT)?;
            context.check(
                first.registers.kernel_error().is_none(),
                "the first chunk failed",
            );
            let died = owner.fault(fault::INVALID_OPCODE)?;
            context.check(
                died.kernel_error() == Some(Error::PeerDied),
                "the owner did not die of its fault",
            );
            context.settle();
            let result = peer_read(&target, id, PAGE, PAGE, PEER_AT + PAGE)?;
            context.check(
                peer_bytes(&target, PEER_AT, 64)? == [0x0a; 64]
                    && peer_bytes(&target, PEER_AT + PAGE, 64)? == [0xcc; 64],
                "the target's memory is not exactly its first chunk and its own bytes",
            );
            target.exit()?;
            context.settle();
            let after = free_frames()?;
            context.check(
                after == frames,
                &format!("free frames went from {frames} to {after}"),
            );
            Ok(context.observe(result.registers))
        },
    },
];
