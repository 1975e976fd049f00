//! MSG-LOAD: building a process from outside (ABI.md §6.8, §7a.5, §9
//! D57-D61): PROCESS_CREATE, PROCESS_MAP and PROCESS_START, sent by the
//! runner (the first process, holding the process-control and
//! boot-archive capabilities), and the peer program loaded with them by
//! `userlib::loader`, procman's own loader. Every refusal is checked to
//! change nothing (the kernel's counters around the trap).

use alloc::format;
use alloc::vec::Vec;

use abi::kcall::protection::{EXECUTE, READ, WRITE};
use abi::kcall::{ProcessMapRequest, ProcessStartRequest};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, PAGE_BYTES, Rights};
use userlib::kernel;
use userlib::loader::ProgramImage;
use zerocopy::IntoBytes;

use super::kit::{self, measured, refused};
use super::memory::{create, observed};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;
use crate::peer::{self, Step};

const PAGE: u64 = PAGE_BYTES;
/// Where these cases map into the processes they build.
const CHILD_AT: u64 = 0x0000_5000_c000_0000;
/// A start that PROCESS_START accepts (the process would fault at once:
/// nothing the cases build is ever started with it).
const START: ProcessStartRequest = ProcessStartRequest::new(CHILD_AT, CHILD_AT + PAGE, 0, 0);

/// The process-control capability.
fn control() -> Descriptor {
    userlib::capability::of(ObjectKind::ProcessControl)
}

/// An empty process built by the runner, its handle closed when the case
/// ends (which ends the process).
fn empty_process(context: &mut Context) -> Result<Descriptor, Failed> {
    let handle = kernel::process_create(&[])?;
    Ok(context.adopt(handle.into_raw()))
}

/// The peer program's image.
fn peer_image() -> Result<ProgramImage, Failed> {
    ProgramImage::read(peer::PROGRAM)
        .map_err(|e| Failed(format!("loading {}: {e:?}", peer::PROGRAM)))
}

fn map_request(memory: Descriptor, address: u64, length: u64, protection: u32) -> Vec<u8> {
    Vec::from(ProcessMapRequest::new(memory, address, 0, length, protection).as_bytes())
}

/// PROCESS_MAP to `handle` that must be refused with nothing changed.
fn map_refused(
    context: &mut Context,
    handle: Descriptor,
    memory: Descriptor,
    address: u64,
    length: u64,
    protection: u32,
) -> Outcome {
    refused(
        context,
        KernelFunction::ProcessMap,
        handle,
        &map_request(memory, address, length, protection),
    )
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-LOAD-001",
        rule: "PROCESS_CREATE replies msgRetVal 0 and the handle of a new process in slot 0 (kind PROCESS, rights HANDLE): one more process, no more threads",
        section: "6.8",
        decisions: &["D61"],
        expect: Expect::replied("PROCESS_CREATE", 0, 0, 8, 1),
        run: |context| {
            empty_process(context)?;
            let closer = empty_process(context)?;
            context.close(closer)?;
            let m = measured(KernelFunction::ProcessCreate, control(), &[], 64)?;
            let (b, a) = (m.before, m.after);
            let slot_at = abi::message::descriptor_offset(8) as usize;
            let handle = m
                .call
                .bytes
                .get(slot_at..slot_at + 4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            if m.call.registers.kernel_error().is_none() {
                context.adopt(Descriptor(handle));
            }
            let info = kit::info(Descriptor(handle));
            context.check(
                info == Ok((ObjectKind::Process as u32, Rights::HANDLE.0)),
                &format!("DESCRIPTOR_INFO of the handle: {info:?}"),
            );
            context.check(
                a.processes == b.processes + 1 && a.threads == b.threads,
                &format!("the counters went from {b:?} to {a:?}"),
            );
            Ok(context.observe(m.call.registers))
        },
    },
    Case {
        id: "MSG-LOAD-002",
        rule: "PROCESS_CREATE with request bytes is BAD_SIZES, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_CREATE", Error::BadSizes),
        run: |context| refused(context, KernelFunction::ProcessCreate, control(), &[0; 8]),
    },
    Case {
        id: "MSG-LOAD-003",
        rule: "a process the runner built from the peer's ELF with PROCESS_CREATE, PROCESS_MAP and PROCESS_START (procman's loader) runs: it serves its control door, and its descriptor 2 is the event the runner gave it (DESCRIPTOR_INFO kind EVENT)",
        section: "7a.5",
        decisions: &["D60", "D61"],
        expect: Expect::replied(
            "the loaded peer's DESCRIPTOR_INFO of its descriptor 2",
            0,
            0,
            16,
            0,
        ),
        run: |context| {
            let image = peer_image()?;
            let event = context.event()?;
            let peer =
                context.loaded_peer(&image, &[DescriptorSlot::copy(event, Rights::EVENT)])?;
            let request = abi::kcall::descriptor_info(Descriptor(2));
            let result = peer.trap(Step::send(
                KernelFunction::DescriptorInfo.function(),
                0,
                request.as_bytes(),
                &[],
                64,
            ))?;
            let kind = result
                .snapshot
                .get(8..12)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            context.check(
                kind == ObjectKind::Event as u32,
                &format!("its descriptor 2 is of kind {kind}"),
            );
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-LOAD-004",
        rule: "the loaded peer's PROTECT of its text (mapped READ | EXECUTE by the loader, whose reference allowed every right) to READ | WRITE is MISSING_RIGHT: a process never widens what its loader mapped",
        section: "6.8",
        decisions: &["D58"],
        expect: Expect::error("the loaded peer's PROTECT of its text", Error::MissingRight),
        run: |context| {
            let image = peer_image()?;
            let text = image
                .layout()
                .segments()
                .iter()
                .find(|s| s.protection & EXECUTE != 0)
                .copied()
                .ok_or_else(|| Failed(format!("{} has no text", peer::PROGRAM)))?;
            let peer = context.loaded_peer(&image, &[])?;
            let request = abi::kcall::protect(text.address, PAGE, READ | WRITE);
            let result = peer.trap(Step::send(
                KernelFunction::Protect.function(),
                0,
                request.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-LOAD-005",
        rule: "PROCESS_MAP with a protection without READ is INVALID_ARGUMENT, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_MAP", Error::InvalidArgument),
        run: |context| {
            let handle = empty_process(context)?;
            let memory = create(context, 1)?;
            map_refused(context, handle, memory, CHILD_AT, PAGE, WRITE)
        },
    },
    Case {
        id: "MSG-LOAD-006",
        rule: "PROCESS_MAP at address 0 is INVALID_ARGUMENT (the loader places), nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_MAP", Error::InvalidArgument),
        run: |context| {
            let handle = empty_process(context)?;
            let memory = create(context, 1)?;
            map_refused(context, handle, memory, 0, PAGE, READ)
        },
    },
    Case {
        id: "MSG-LOAD-007",
        rule: "PROCESS_MAP naming a descriptor that is not a memory object (an event) is WRONG_OBJECT_TYPE, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_MAP", Error::WrongObjectType),
        run: |context| {
            let handle = empty_process(context)?;
            let event = context.event()?;
            map_refused(context, handle, event, CHILD_AT, PAGE, READ)
        },
    },
    Case {
        id: "MSG-LOAD-008",
        rule: "PROCESS_MAP with WRITE through a memory reference without MAP_WRITE is MISSING_RIGHT, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_MAP", Error::MissingRight),
        run: |context| {
            let handle = empty_process(context)?;
            let memory = create(context, 1)?;
            let read_only = context.duplicate(memory, Rights(Rights::MAP_READ.0))?;
            map_refused(context, handle, read_only, CHILD_AT, PAGE, READ | WRITE)
        },
    },
    Case {
        id: "MSG-LOAD-009",
        rule: "PROCESS_MAP over a page the process already maps is BAD_ADDRESS_RANGE, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_MAP", Error::BadAddressRange),
        run: |context| {
            let handle = empty_process(context)?;
            let memory = create(context, 2)?;
            kernel::process_map(handle, memory, CHILD_AT, 0, PAGE, READ)?;
            map_refused(context, handle, memory, CHILD_AT, 2 * PAGE, READ)
        },
    },
    Case {
        id: "MSG-LOAD-010",
        rule: "PROCESS_MAP to a process that has started (the loaded peer) is PROCESS_STARTED, nothing changed: a process is built before it runs, never after",
        section: "6.8",
        decisions: &["D57"],
        expect: Expect::error("PROCESS_MAP", Error::ProcessStarted),
        run: |context| {
            let image = peer_image()?;
            let peer = context.loaded_peer(&image, &[])?;
            let memory = create(context, 1)?;
            map_refused(context, peer.process, memory, CHILD_AT, PAGE, READ)
        },
    },
    Case {
        id: "MSG-LOAD-011",
        rule: "a second PROCESS_START of a process is PROCESS_STARTED, nothing changed",
        section: "6.8",
        decisions: &["D57"],
        expect: Expect::error("PROCESS_START", Error::ProcessStarted),
        run: |context| {
            let image = peer_image()?;
            let peer = context.loaded_peer(&image, &[])?;
            refused(
                context,
                KernelFunction::ProcessStart,
                peer.process,
                START.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-LOAD-012",
        rule: "PROCESS_START with a stack pointer that is not 16-byte aligned is INVALID_ARGUMENT, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_START", Error::InvalidArgument),
        run: |context| {
            let handle = empty_process(context)?;
            let request = ProcessStartRequest::new(CHILD_AT, CHILD_AT + 8, 0, 0);
            refused(
                context,
                KernelFunction::ProcessStart,
                handle,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-LOAD-013",
        rule: "PROCESS_MAP through a process handle without SEND is MISSING_RIGHT, nothing changed",
        section: "6.8",
        decisions: &[],
        expect: Expect::error("PROCESS_MAP", Error::MissingRight),
        run: |context| {
            let handle = empty_process(context)?;
            let no_send = context.duplicate(handle, Rights(Rights::DUPLICATE.0))?;
            let memory = create(context, 1)?;
            map_refused(context, no_send, memory, CHILD_AT, PAGE, READ)
        },
    },
    Case {
        id: "MSG-LOAD-014",
        rule: "closing the last handle of a process that never started ends it: processes, threads, objects, descriptors, charged bytes and free frames are back exactly where they were before PROCESS_CREATE, though it mapped a memory object the runner closed",
        section: "6.8",
        decisions: &["D59"],
        expect: Expect::replied("the COUNTERS after the CLOSE", 0, 0, 8 + 48, 0),
        run: |context| {
            // Once beforehand, so no growth of the kernel's tables shows.
            for _ in 0..2 {
                let handle = kernel::process_create(&[])?;
                let memory = kernel::memory_create(2)?;
                kernel::process_map(
                    handle.descriptor(),
                    memory.descriptor(),
                    CHILD_AT,
                    0,
                    2 * PAGE,
                    READ,
                )?;
            }
            let before = kernel::counters()?;
            {
                let handle = kernel::process_create(&[])?;
                let memory = kernel::memory_create(2)?;
                kernel::process_map(
                    handle.descriptor(),
                    memory.descriptor(),
                    CHILD_AT,
                    0,
                    2 * PAGE,
                    READ,
                )?;
                drop(memory);
                let during = kernel::counters()?;
                context.check(
                    during.processes == before.processes + 1,
                    &format!("while built: {during:?}"),
                );
            }
            let call = super::memory::counters_call()?;
            let after = kernel::counters()?;
            context.check(
                after == before,
                &format!("the counters went from {before:?} to {after:?}"),
            );
            Ok(observed(context, call))
        },
    },
];
