//! MSG-MEM: memory objects (ABI.md §1.5, §6, §6.2, §9 D14-D16): creating
//! them, mapping them no wider than the reference's memory rights, in this
//! process and in the peer after a transfer, UNMAP and PROTECT over their
//! mappings, an object living while mapped, copy-on-write children from
//! both sides (user writes and kernel writes), direct physical ranges on
//! the machine-control capability with the ACPI RSDP read through one, and
//! every refusal changing nothing (the kernel's counters, free frames
//! included, read right before and after the refused trap).
//!
//! Mappings at fixed addresses lie at [`MAP_AT`] and above, far from
//! anything the kernel places for Rust code, so the runner's and the
//! peer's copies may reach them (`userlib::raw::is_foreign`).

use alloc::vec::Vec;

use abi::kcall::protection::{EXECUTE, READ, WRITE};
use abi::kcall::{
    DescriptorRequest, DirectRequest, MemoryCreateRequest, MemoryMapRequest, MemoryRangeRequest,
    PHYSICAL_END, memory_flags,
};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, PAGE_BYTES, Rights};
use userlib::kernel;
use userlib::raw::RawPages;
use zerocopy::IntoBytes;

use super::kit;
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value};
use crate::peer::{Peer, Step, fault};

const PAGE: u64 = PAGE_BYTES;
const RW: u32 = READ | WRITE;

/// Where the cases map memory objects at fixed addresses.
const MAP_AT: u64 = 0x0000_5000_0000_0000;
/// A second place, 1 MiB above.
const MAP_AT2: u64 = MAP_AT + 0x10_0000;

/// A physical address in usable RAM on every machine the suite boots on
/// (QEMU's RAM above 1 MiB): RAM the kernel owns.
const KERNEL_RAM: u64 = 0x10_0000;

/// The peer's descriptor for the first object a case gives it.
const PEER_OBJECT: u32 = 2;

/// Offset of `free_frames` in a COUNTERS reply (8 + 5 fields of 8).
const FREE_FRAMES_AT: u16 = 48;

/// DESCRIPTOR_INFO's reply bytes for `kind` and `rights`.
const fn info_reply(kind: ObjectKind, rights: Rights) -> [u8; 16] {
    let kind = (kind as u32).to_le_bytes();
    let rights = rights.0.to_le_bytes();
    [
        0, 0, 0, 0, 0, 0, 0, 0, kind[0], kind[1], kind[2], kind[3], rights[0], rights[1],
        rights[2], rights[3],
    ]
}

const MEMORY_INFO: [u8; 16] = info_reply(ObjectKind::Memory, Rights::MEMORY);
const DIRECT_INFO: [u8; 16] = info_reply(ObjectKind::Memory, Rights::DIRECT_MEMORY);

/// The ACPI RSDP's signature (ACPI 6.5, 5.2.5.3).
const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";

/// The first bytes of a successful kernel reply: msgRetVal 0, msgErrno 0.
const OK_HEADER: [u8; 8] = [0; 8];

/// A new anonymous memory object of `pages` pages, closed when the case ends.
pub(super) fn create(context: &mut Context, pages: u32) -> Result<Descriptor, Failed> {
    let object = kernel::memory_create(pages)?;
    Ok(context.adopt(object.into_raw()))
}

/// A mapping of `object` (unmapped when dropped).
pub(super) fn map(
    object: Descriptor,
    address: u64,
    offset: u64,
    length: u64,
    protection: u32,
) -> Result<RawPages, Failed> {
    Ok(RawPages::map_object(
        object, address, offset, length, protection,
    )?)
}

/// `length` bytes at `address` of `pages`.
pub(super) fn read(pages: &RawPages, address: u64, length: usize) -> Vec<u8> {
    pages.snapshot(address, length).unwrap_or_default()
}

/// The kernel's free frames now.
pub(super) fn free_frames() -> Result<u64, Failed> {
    Ok(kernel::counters()?.free_frames)
}

/// The observation of a kernel function's whole reply buffer.
pub(super) fn observed(context: &Context, call: kit::Call) -> crate::expect::Observed {
    context.observe_buffer(call.registers, call.msg_ptr, call.bytes)
}

/// MEMORY_MAP's request bytes.
fn map_request(address: u64, offset: u64, length: u64, protection: u32) -> Vec<u8> {
    Vec::from(MemoryMapRequest::new(address, offset, length, protection).as_bytes())
}

/// The peer, holding `object` with `rights` as its descriptor 2.
fn peer_with(context: &mut Context, object: Descriptor, rights: Rights) -> Result<Peer, Failed> {
    context.peer(&[DescriptorSlot::copy(object, rights)])
}

/// The peer's MEMORY_MAP of its descriptor 2.
fn peer_map(
    peer: &Peer,
    address: u64,
    length: u64,
    protection: u32,
) -> Result<crate::peer::StepResult, Failed> {
    peer.trap(Step::send(
        KernelFunction::MemoryMap.function(),
        PEER_OBJECT,
        &map_request(address, 0, length, protection),
        &[],
        64,
    ))
}

/// The RSDP's physical address, from MACHINE_INFO.
fn rsdp() -> Result<u64, Failed> {
    let rsdp = kernel::machine_info()?.rsdp;
    if rsdp == 0 {
        return Err(Failed(alloc::string::String::from(
            "MACHINE_INFO reports no RSDP",
        )));
    }
    Ok(rsdp)
}

/// A COW child of all of `parent`'s `pages` pages.
pub(super) fn cow(
    context: &mut Context,
    parent: Descriptor,
    pages: u64,
) -> Result<Descriptor, Failed> {
    let child = kernel::memory_cow(parent, 0, pages * PAGE)?;
    Ok(context.adopt(child.into_raw()))
}

/// Runs the allocations a case measures once beforehand, so that the kernel
/// heap and its arenas have room and no growth of them shows in the frame
/// counts measured after: a 2-page object, mapped, a copy-on-write child
/// written, everything closed again.
pub(super) fn warm_up(context: &mut Context) -> Result<(), Failed> {
    let parent = create(context, 2)?;
    let child = cow(context, parent, 2)?;
    {
        let pages = map(child, MAP_AT + 0x4000_0000, 0, 2 * PAGE, RW)?;
        pages.write(pages.base(), b"warm");
    }
    context.close(child)?;
    context.close(parent)?;
    Ok(())
}

/// COUNTERS trapped from a fresh buffer.
pub(super) fn counters_call() -> Result<kit::Call, Failed> {
    kit::send(
        KernelFunction::Counters.function(),
        Descriptor::NULL,
        &[],
        &[],
        64,
    )
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-MEM-001",
        rule: "MEMORY_CREATE (2 pages) replies one slot: the new memory object at the lowest free number with MEMORY = MAP_READ | MAP_WRITE | MAP_EXECUTE | TRANSFER | DUPLICATE",
        section: "6",
        decisions: &["D14"],
        expect: Expect::replied("MEMORY_CREATE", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("object"),
                    rights: Rights::MEMORY.0,
                    mode: None,
                },
            ),
        ]),
        run: |context| {
            let object = context.lowest_free(1)?[0];
            context.bind("object", u64::from(object));
            let request = MemoryCreateRequest::new(2);
            let call = kit::send(
                KernelFunction::MemoryCreate.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                context.adopt(Descriptor(object));
            }
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-002",
        rule: "DESCRIPTOR_INFO of a new memory object says kind 9 (memory object) with MEMORY rights",
        section: "1.5",
        decisions: &["D14"],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&MEMORY_INFO))]),
        run: |context| {
            let object = create(context, 1)?;
            let request = DescriptorRequest::new(object, Rights::NONE);
            let call = kit::send(
                KernelFunction::DescriptorInfo.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-003",
        rule: "MEMORY_CREATE takes its frames at once: 3 pages leave exactly 3 fewer free frames, one more object and one more descriptor",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("MEMORY_CREATE", 0, 0, 8, 1),
        run: |context| {
            warm_up(context)?;
            let object = context.lowest_free(1)?[0];
            let request = MemoryCreateRequest::new(3);
            let m = kit::measured(
                KernelFunction::MemoryCreate,
                Descriptor::NULL,
                request.as_bytes(),
                64,
            )?;
            if m.call.registers.kernel_error().is_none() {
                context.adopt(Descriptor(object));
            }
            let (b, a) = (m.before, m.after);
            context.check(
                a.free_frames + 3 == b.free_frames,
                &alloc::format!(
                    "free frames went from {} to {}",
                    b.free_frames,
                    a.free_frames
                ),
            );
            context.check(
                (a.objects, a.descriptors) == (b.objects + 1, b.descriptors + 1),
                &alloc::format!("objects and descriptors went from {b:?} to {a:?}"),
            );
            context.check(
                a.charged_bytes >= b.charged_bytes + 3 * PAGE,
                "the creator was not charged for the pages",
            );
            Ok(context.observe(m.call.registers))
        },
    },
    Case {
        id: "MSG-MEM-004",
        rule: "MEMORY_INFO, sent to the object, replies MemoryInfo{pages, flags}: 3 pages, flags 0 (anonymous)",
        section: "6",
        decisions: &[],
        expect: Expect::replied("MEMORY_INFO", 0, 0, 24, 0).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (8, Field::Quad(Value::Is(3))),
            (16, Field::Word(Value::Is(0))),
            (20, Field::Word(Value::Is(0))),
        ]),
        run: |context| {
            let object = create(context, 3)?;
            let call = kit::send(KernelFunction::MemoryInfo.function(), object, &[], &[], 64)?;
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-005",
        rule: "MEMORY_MAP at a free address replies MapReply{address}, and a new object's pages read as zeros",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("MEMORY_MAP", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (8, Field::Quad(Value::Is(MAP_AT))),
        ]),
        run: |context| {
            let object = create(context, 2)?;
            let call = kit::send(
                KernelFunction::MemoryMap.function(),
                object,
                &map_request(MAP_AT, 0, 2 * PAGE, READ),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                let pages = RawPages::claim(MAP_AT, 2 * PAGE)?;
                let bytes = read(&pages, MAP_AT, 2 * PAGE as usize);
                context.check(
                    bytes.len() == 2 * PAGE as usize && bytes.iter().all(|b| *b == 0),
                    "the new object's pages are not all zero",
                );
                kernel::unmap(MAP_AT, 2 * PAGE)?;
            }
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-006",
        rule: "MEMORY_MAP with address 0 maps where the kernel chooses: a page-aligned address in the map area (at or above USER_MAP_BASE)",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("MEMORY_MAP", 0, 0, 16, 0)
            .with_buffer(&[(8, Field::Quad(Value::Var("address")))]),
        run: |context| {
            let object = create(context, 1)?;
            let call = kit::send(
                KernelFunction::MemoryMap.function(),
                object,
                &map_request(0, 0, PAGE, RW),
                &[],
                64,
            )?;
            let address = call
                .bytes
                .get(8..16)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
            context.check(
                address >= abi::process::USER_MAP_BASE && address.is_multiple_of(PAGE),
                &alloc::format!("the kernel placed the mapping at {address:#x}"),
            );
            context.bind("address", address);
            if call.registers.kernel_error().is_none() {
                kernel::unmap(address, PAGE)?;
            }
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-007",
        rule: "two mappings of one object show the same frames: bytes written through one are read through the other (the second maps the object's second page alone)",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("the second MEMORY_MAP", 0, 0, 16, 0)
            .with_buffer(&[(8, Field::Quad(Value::Is(MAP_AT2)))]),
        run: |context| {
            let object = create(context, 2)?;
            let first = map(object, MAP_AT, 0, 2 * PAGE, RW)?;
            first.write(MAP_AT + PAGE + 12, b"one object");
            let call = kit::send(
                KernelFunction::MemoryMap.function(),
                object,
                &map_request(MAP_AT2, PAGE, PAGE, READ),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                let second = RawPages::claim(MAP_AT2, PAGE)?;
                context.check(
                    read(&second, MAP_AT2 + 12, 10) == b"one object",
                    "the second mapping does not show the bytes written through the first",
                );
                kernel::unmap(MAP_AT2, PAGE)?;
            }
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-008",
        rule: "a memory object travels in a message: the peer, given it with MAP_READ | MAP_WRITE | TRANSFER, maps it, reads what the runner wrote, and the runner reads what the peer wrote",
        section: "6.2",
        decisions: &["D14"],
        expect: Expect::replied("the peer's MEMORY_MAP", 0, 0, 16, 0)
            .with_buffer(&[(8, Field::Quad(Value::Is(MAP_AT)))]),
        run: |context| {
            let object = create(context, 1)?;
            let mine = map(object, MAP_AT2, 0, PAGE, RW)?;
            mine.write(MAP_AT2, b"from the runner");
            let rights = Rights::MAP_READ
                .union(Rights::MAP_WRITE)
                .union(Rights::TRANSFER);
            let peer = peer_with(context, object, rights)?;
            let mapped = peer_map(&peer, MAP_AT, PAGE, RW)?;
            if mapped.registers.kernel_error().is_none() {
                let seen = peer.access(MAP_AT, b"", 15)?;
                context.check(
                    seen.bytes == b"from the runner",
                    &alloc::format!("the peer read {:?}", seen.bytes),
                );
                peer.access(MAP_AT + 100, b"from the peer", 0)?;
                context.check(
                    read(&mine, MAP_AT2 + 100, 13) == b"from the peer",
                    "the runner does not see the peer's write",
                );
            }
            Ok(context.observe_buffer(mapped.registers, mapped.msg_ptr, mapped.snapshot))
        },
    },
    Case {
        id: "MSG-MEM-009",
        rule: "rights are attenuated on the way: the peer, given the object with MAP_READ | TRANSFER, is refused a READ | WRITE mapping with MISSING_RIGHT",
        section: "1.5",
        decisions: &["D14"],
        expect: Expect::error("the peer's MEMORY_MAP", Error::MissingRight),
        run: |context| {
            let object = create(context, 1)?;
            let peer = peer_with(context, object, Rights::MAP_READ.union(Rights::TRANSFER))?;
            let mapped = peer_map(&peer, MAP_AT, PAGE, RW)?;
            Ok(context.observe(mapped.registers))
        },
    },
    Case {
        id: "MSG-MEM-010",
        rule: "the peer's READ mapping of an object it holds with MAP_READ alone is read-only in fact: its write there faults and ends it (the control call fails with PEER_DIED), the runner's bytes unchanged",
        section: "6.2",
        decisions: &["D14"],
        expect: Expect::error("the ACCESS control call", Error::PeerDied),
        run: |context| {
            let object = create(context, 1)?;
            let mine = map(object, MAP_AT2, 0, PAGE, RW)?;
            mine.write(MAP_AT2, b"kept");
            let peer = peer_with(context, object, Rights::MAP_READ.union(Rights::TRANSFER))?;
            let mapped = peer_map(&peer, MAP_AT, PAGE, READ)?;
            context.check_registers(
                "the peer's READ mapping",
                &mapped.registers,
                &kit::replied(0, 0, 16, 0),
            );
            let write = peer.access(MAP_AT, b"overwritten", 0)?;
            context.check(
                read(&mine, MAP_AT2, 4) == b"kept",
                "the runner's bytes changed",
            );
            Ok(context.observe(write.registers))
        },
    },
    Case {
        id: "MSG-MEM-011",
        rule: "MEMORY_MAP with EXECUTE through a reference without MAP_EXECUTE (a DUPLICATE with MAP_READ | MAP_WRITE) is MISSING_RIGHT and changes nothing",
        section: "6",
        decisions: &["D14"],
        expect: Expect::error("MEMORY_MAP", Error::MissingRight),
        run: |context| {
            let object = create(context, 1)?;
            let copy = context.duplicate(object, Rights::MAP_READ.union(Rights::MAP_WRITE))?;
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                copy,
                &map_request(MAP_AT, 0, PAGE, READ | EXECUTE),
            )
        },
    },
    Case {
        id: "MSG-MEM-012",
        rule: "MEMORY_MAP of a range past the object's end (pages 1-2 of a 2-page object) is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::InvalidArgument),
        run: |context| {
            let object = create(context, 2)?;
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                object,
                &map_request(MAP_AT, PAGE, 2 * PAGE, READ),
            )
        },
    },
    Case {
        id: "MSG-MEM-013",
        rule: "MEMORY_MAP with an offset that is not page-aligned is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::InvalidArgument),
        run: |context| {
            let object = create(context, 2)?;
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                object,
                &map_request(MAP_AT, 8, PAGE, READ),
            )
        },
    },
    Case {
        id: "MSG-MEM-014",
        rule: "MEMORY_MAP over a page already mapped is BAD_ADDRESS_RANGE and changes nothing (the mapping there keeps its bytes)",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::BadAddressRange),
        run: |context| {
            let object = create(context, 2)?;
            let first = map(object, MAP_AT + PAGE, 0, PAGE, RW)?;
            first.write(MAP_AT + PAGE, b"here");
            let observed = kit::refused(
                context,
                KernelFunction::MemoryMap,
                object,
                &map_request(MAP_AT, 0, 2 * PAGE, READ),
            );
            context.check(
                read(&first, MAP_AT + PAGE, 4) == b"here",
                "the mapping in the way changed",
            );
            observed
        },
    },
    Case {
        id: "MSG-MEM-015",
        rule: "MEMORY_MAP with a protection without READ (WRITE alone) is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::InvalidArgument),
        run: |context| {
            let object = create(context, 1)?;
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                object,
                &map_request(MAP_AT, 0, PAGE, WRITE),
            )
        },
    },
    Case {
        id: "MSG-MEM-016",
        rule: "MEMORY_MAP with its reserved field set is RESERVED_BITS and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::ReservedBits),
        run: |context| {
            let object = create(context, 1)?;
            let request = MemoryMapRequest::new(MAP_AT, 0, PAGE, READ).with_reserved(1);
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                object,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-017",
        rule: "MEMORY_MAP sent to an event (not a memory object) is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                event,
                &map_request(MAP_AT, 0, PAGE, READ),
            )
        },
    },
    Case {
        id: "MSG-MEM-018",
        rule: "MEMORY_MAP sent to the NULL target is FUNCTION_OUT_OF_RANGE (it takes a memory object)",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_MAP", Error::FunctionOutOfRange),
        run: |context| {
            kit::refused(
                context,
                KernelFunction::MemoryMap,
                Descriptor::NULL,
                &map_request(MAP_AT, 0, PAGE, READ),
            )
        },
    },
    Case {
        id: "MSG-MEM-019",
        rule: "MEMORY_CREATE of 0 pages is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_CREATE", Error::InvalidArgument),
        run: |context| {
            let request = MemoryCreateRequest::new(0);
            kit::refused(
                context,
                KernelFunction::MemoryCreate,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-020",
        rule: "MEMORY_CREATE with its reserved field set is RESERVED_BITS and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_CREATE", Error::ReservedBits),
        run: |context| {
            let request = MemoryCreateRequest::new(1).with_reserved(1);
            kit::refused(
                context,
                KernelFunction::MemoryCreate,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-021",
        rule: "MEMORY_CREATE past the creator's memory limit (2^20 pages, 4 GiB) is OUT_OF_MEMORY: no frame taken, nothing changed",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_CREATE", Error::OutOfMemory),
        run: |context| {
            let request = MemoryCreateRequest::new(1 << 20);
            kit::refused(
                context,
                KernelFunction::MemoryCreate,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-022",
        rule: "MEMORY_CREATE sent to an object (the machine-control capability) is FUNCTION_OUT_OF_RANGE (it takes the NULL target)",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_CREATE", Error::FunctionOutOfRange),
        run: |context| {
            let request = MemoryCreateRequest::new(1);
            kit::refused(
                context,
                KernelFunction::MemoryCreate,
                abi::process::FIRST_MACHINE_CONTROL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-023",
        rule: "a mapping holds its object: after CLOSE of the only descriptor the frames stay and the bytes read back; the UNMAP of the last mapping gives the frames back",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("the UNMAP of the last mapping", 0, 0, 8, 0),
        run: |context| {
            warm_up(context)?;
            let before = free_frames()?;
            let object = create(context, 2)?;
            let pages = map(object, MAP_AT, 0, 2 * PAGE, RW)?;
            pages.write(MAP_AT + PAGE, b"still here");
            let mapped = free_frames()?;
            context.close(object)?;
            let held = free_frames()?;
            context.check(
                held == mapped,
                &alloc::format!("CLOSE took free frames from {mapped} to {held}"),
            );
            context.check(
                read(&pages, MAP_AT + PAGE, 10) == b"still here",
                "the bytes went with the descriptor",
            );
            let request = abi::kcall::unmap(MAP_AT, 2 * PAGE);
            let call = kit::send(
                KernelFunction::Unmap.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            core::mem::forget(pages);
            let after = free_frames()?;
            context.check(
                after == before,
                &alloc::format!("after the UNMAP {after} frames free, {before} before"),
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-MEM-024",
        rule: "UNMAP of an object's mapping frees none of its frames: mapped again, the object shows the bytes it had",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("the second MEMORY_MAP", 0, 0, 16, 0)
            .with_buffer(&[(8, Field::Quad(Value::Is(MAP_AT2)))]),
        run: |context| {
            let object = create(context, 1)?;
            {
                let pages = map(object, MAP_AT, 0, PAGE, RW)?;
                pages.write(MAP_AT + 40, b"survives");
            }
            let held = free_frames()?;
            let call = kit::send(
                KernelFunction::MemoryMap.function(),
                object,
                &map_request(MAP_AT2, 0, PAGE, READ),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                let again = RawPages::claim(MAP_AT2, PAGE)?;
                context.check(
                    read(&again, MAP_AT2 + 40, 8) == b"survives",
                    "the object lost its bytes",
                );
                kernel::unmap(MAP_AT2, PAGE)?;
            }
            let after = free_frames()?;
            context.check(
                after == held,
                &alloc::format!("free frames went from {held} to {after}"),
            );
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-025",
        rule: "UNMAP of the middle page of a 3-page mapping leaves both ends mapped, each with its bytes",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("UNMAP", 0, 0, 8, 0),
        run: |context| {
            let object = create(context, 3)?;
            let pages = map(object, MAP_AT, 0, 3 * PAGE, RW)?;
            pages.write(MAP_AT, b"first");
            pages.write(MAP_AT + 2 * PAGE, b"third");
            let request = abi::kcall::unmap(MAP_AT + PAGE, PAGE);
            let call = kit::send(
                KernelFunction::Unmap.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            context.check(
                read(&pages, MAP_AT, 5) == b"first"
                    && read(&pages, MAP_AT + 2 * PAGE, 5) == b"third",
                "an end of the mapping lost its bytes",
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-MEM-026",
        rule: "PROTECT narrows an object's mapping to READ and widens it back to READ | WRITE, what its reference allowed: a write then works",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("the widening PROTECT", 0, 0, 8, 0),
        run: |context| {
            let object = create(context, 1)?;
            let pages = map(object, MAP_AT, 0, PAGE, RW)?;
            pages.protect(MAP_AT, PAGE, READ)?;
            let request = abi::kcall::protect(MAP_AT, PAGE, RW);
            let call = kit::send(
                KernelFunction::Protect.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                pages.write(MAP_AT, b"writable");
                context.check(
                    read(&pages, MAP_AT, 8) == b"writable",
                    "the write did not land",
                );
            }
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-MEM-027",
        rule: "PROTECT past what the mapping's reference allowed (mapped through a DUPLICATE with MAP_READ alone, asked READ | WRITE) is MISSING_RIGHT and changes nothing",
        section: "6.2",
        decisions: &["D14"],
        expect: Expect::error("PROTECT", Error::MissingRight),
        run: |context| {
            let object = create(context, 1)?;
            let copy = context.duplicate(object, Rights::MAP_READ)?;
            let _pages = map(copy, MAP_AT, 0, PAGE, READ)?;
            let request = abi::kcall::protect(MAP_AT, PAGE, RW);
            kit::refused(
                context,
                KernelFunction::Protect,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-028",
        rule: "MEMORY_COW replies one slot: the child at the lowest free number with MEMORY rights; it takes no frame (free frames unchanged)",
        section: "6",
        decisions: &["D15"],
        expect: Expect::replied("MEMORY_COW", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("child"),
                    rights: Rights::MEMORY.0,
                    mode: None,
                },
            ),
        ]),
        run: |context| {
            warm_up(context)?;
            let parent = create(context, 2)?;
            let child = context.lowest_free(1)?[0];
            context.bind("child", u64::from(child));
            let request = MemoryRangeRequest::new(0, 2 * PAGE);
            let m = kit::measured(KernelFunction::MemoryCow, parent, request.as_bytes(), 64)?;
            if m.call.registers.kernel_error().is_none() {
                context.adopt(Descriptor(child));
            }
            context.check(
                m.after.free_frames == m.before.free_frames,
                &alloc::format!(
                    "free frames went from {} to {}",
                    m.before.free_frames,
                    m.after.free_frames
                ),
            );
            Ok(observed(context, m.call))
        },
    },
    Case {
        id: "MSG-MEM-029",
        rule: "a copy-on-write child shows its parent's bytes, including bytes written after it was mapped until either side writes that page",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::replied("the child's MEMORY_MAP", 0, 0, 16, 0)
            .with_buffer(&[(8, Field::Quad(Value::Is(MAP_AT2)))]),
        run: |context| {
            let parent = create(context, 2)?;
            let mine = map(parent, MAP_AT, 0, 2 * PAGE, RW)?;
            mine.write(MAP_AT + PAGE, b"parent's");
            let child = cow(context, parent, 2)?;
            let call = kit::send(
                KernelFunction::MemoryMap.function(),
                child,
                &map_request(MAP_AT2, 0, 2 * PAGE, READ),
                &[],
                64,
            )?;
            if call.registers.kernel_error().is_none() {
                let theirs = RawPages::claim(MAP_AT2, 2 * PAGE)?;
                context.check(
                    read(&theirs, MAP_AT2 + PAGE, 8) == b"parent's",
                    "the child does not show its parent's bytes",
                );
                kernel::unmap(MAP_AT2, 2 * PAGE)?;
            }
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-030",
        rule: "a write to a copy-on-write child's page is resolved by the kernel (the writer goes on): it takes exactly one frame for the copy, and the parent keeps its bytes",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::replied("COUNTERS after the write", 0, 0, 56, 0)
            .with_buffer(&[(FREE_FRAMES_AT, Field::Quad(Value::Var("free")))]),
        run: |context| {
            warm_up(context)?;
            let parent = create(context, 2)?;
            let mine = map(parent, MAP_AT, 0, 2 * PAGE, RW)?;
            mine.write(MAP_AT, b"parent's");
            let child = cow(context, parent, 2)?;
            let theirs = map(child, MAP_AT2, 0, 2 * PAGE, RW)?;
            let before = free_frames()?;
            context.bind("free", before - 1);
            theirs.write(MAP_AT2, b"child's!");
            let call = counters_call()?;
            context.check(
                read(&theirs, MAP_AT2, 8) == b"child's!",
                "the child's write did not land",
            );
            context.check(
                read(&mine, MAP_AT, 8) == b"parent's",
                "the parent saw the child's write",
            );
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-031",
        rule: "a write to the parent after MEMORY_COW copies too: exactly one frame, and the child keeps the old bytes",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::replied("COUNTERS after the write", 0, 0, 56, 0)
            .with_buffer(&[(FREE_FRAMES_AT, Field::Quad(Value::Var("free")))]),
        run: |context| {
            warm_up(context)?;
            let parent = create(context, 1)?;
            let mine = map(parent, MAP_AT, 0, PAGE, RW)?;
            mine.write(MAP_AT, b"before");
            let child = cow(context, parent, 1)?;
            let theirs = map(child, MAP_AT2, 0, PAGE, READ)?;
            let before = free_frames()?;
            context.bind("free", before - 1);
            mine.write(MAP_AT, b"after!");
            let call = counters_call()?;
            context.check(
                read(&mine, MAP_AT, 6) == b"after!",
                "the parent's write did not land",
            );
            context.check(
                read(&theirs, MAP_AT2, 6) == b"before",
                "the child saw the parent's write",
            );
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-032",
        rule: "copy-on-write from both sides in two processes: the peer writes its child's mapping without changing the runner's parent, and the runner's write to the parent leaves the peer's child as it was",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::replied(
            "the peer's read of its child after the runner's write (ACCESS)",
            0,
            0,
            28,
            0,
        )
        .with_buffer(&[(0, Field::Bytes(b"peer's copy!old tail"))]),
        run: |context| {
            let parent = create(context, 1)?;
            let mine = map(parent, MAP_AT2, 0, PAGE, RW)?;
            mine.write(MAP_AT2, b"original....old tail");
            let child = cow(context, parent, 1)?;
            let peer = peer_with(context, child, Rights::MEMORY)?;
            let mapped = peer_map(&peer, MAP_AT, PAGE, RW)?;
            context.check_registers(
                "the peer's MEMORY_MAP",
                &mapped.registers,
                &kit::replied(0, 0, 16, 0),
            );
            peer.access(MAP_AT, b"peer's copy!", 0)?;
            context.check(
                read(&mine, MAP_AT2, 12) == b"original....",
                "the runner's parent saw the peer's write",
            );
            mine.write(MAP_AT2 + 12, b"new tail");
            let seen = peer.access(MAP_AT, b"", 20)?;
            Ok(context.observe_buffer(seen.registers, 0, seen.bytes))
        },
    },
    Case {
        id: "MSG-MEM-033",
        rule: "a kernel reply written into a copy-on-write page copies it first, as a user write would: COUNTERS with its buffer in the parent's mapping replies there, and the child keeps the old bytes",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::replied("COUNTERS (msgPtr in the parent's mapping)", 0, 0, 56, 0)
            .with_buffer(&[(0, Field::Bytes(&OK_HEADER))]),
        run: |context| {
            let parent = create(context, 1)?;
            let mine = map(parent, MAP_AT, 0, PAGE, RW)?;
            mine.write(MAP_AT, &[0x77; 64]);
            let child = cow(context, parent, 1)?;
            let theirs = map(child, MAP_AT2, 0, PAGE, READ)?;
            let sizes = abi::MessageSizes::of(64, 0, 0);
            let registers = mine.trap(abi::TrapArgs::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                MAP_AT,
                sizes,
            ))?;
            context.check(
                read(&theirs, MAP_AT2, 64) == [0x77; 64],
                "the child saw the kernel's reply",
            );
            Ok(context.observe_buffer(registers, MAP_AT, read(&mine, MAP_AT, 64)))
        },
    },
    Case {
        id: "MSG-MEM-034",
        rule: "MEMORY_COW through a reference without MAP_READ (MAP_WRITE | TRANSFER) is MISSING_RIGHT and changes nothing",
        section: "6",
        decisions: &["D14"],
        expect: Expect::error("MEMORY_COW", Error::MissingRight),
        run: |context| {
            let object = create(context, 1)?;
            let copy = context.duplicate(object, Rights::MAP_WRITE.union(Rights::TRANSFER))?;
            let request = MemoryRangeRequest::new(0, PAGE);
            kit::refused(context, KernelFunction::MemoryCow, copy, request.as_bytes())
        },
    },
    Case {
        id: "MSG-MEM-035",
        rule: "MEMORY_COW of a range past the object's end is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_COW", Error::InvalidArgument),
        run: |context| {
            let object = create(context, 1)?;
            let request = MemoryRangeRequest::new(0, 2 * PAGE);
            kit::refused(
                context,
                KernelFunction::MemoryCow,
                object,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-036",
        rule: "MEMORY_COW of a direct object (the RSDP's page) is INVALID_ARGUMENT and changes nothing",
        section: "6.2",
        decisions: &["D15", "D16"],
        expect: Expect::error("MEMORY_COW", Error::InvalidArgument),
        run: |context| {
            let page = rsdp()? & !(PAGE - 1);
            let direct = kernel::memory_direct(page, PAGE)?;
            let direct = context.adopt(direct.into_raw());
            let request = MemoryRangeRequest::new(0, PAGE);
            kit::refused(
                context,
                KernelFunction::MemoryCow,
                direct,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-037",
        rule: "MACHINE_INFO, sent to the machine-control capability, replies MachineInfo{rsdp}: the ACPI RSDP's physical address, non-zero and 16-byte aligned",
        section: "6",
        decisions: &["D16"],
        expect: Expect::replied("MACHINE_INFO", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&OK_HEADER)),
            (8, Field::Quad(Value::Var("rsdp"))),
        ]),
        run: |context| {
            let call = kit::send(
                KernelFunction::MachineInfo.function(),
                abi::process::FIRST_MACHINE_CONTROL,
                &[],
                &[],
                64,
            )?;
            let rsdp = call
                .bytes
                .get(8..16)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
            context.check(
                rsdp != 0 && rsdp.is_multiple_of(16),
                &alloc::format!("the RSDP is at {rsdp:#x}"),
            );
            context.bind("rsdp", rsdp);
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-038",
        rule: "the RSDP is read through a direct mapping: MEMORY_DIRECT of the page MACHINE_INFO names, mapped READ, shows the signature \"RSD PTR \" at the RSDP",
        section: "6.2",
        decisions: &["D16"],
        expect: Expect::replied(
            "MEMORY_MAP of the RSDP's page, then the bytes at the RSDP",
            0,
            0,
            16,
            0,
        )
        .with_buffer(&[(0, Field::Bytes(RSDP_SIGNATURE))]),
        run: |context| {
            let rsdp = rsdp()?;
            let page = rsdp & !(PAGE - 1);
            let direct = kernel::memory_direct(page, PAGE)?;
            let direct = context.adopt(direct.into_raw());
            let call = kit::send(
                KernelFunction::MemoryMap.function(),
                direct,
                &map_request(MAP_AT, 0, PAGE, READ),
                &[],
                64,
            )?;
            let mut bytes = Vec::new();
            if call.registers.kernel_error().is_none() {
                let pages = RawPages::claim(MAP_AT, PAGE)?;
                bytes = read(&pages, MAP_AT + (rsdp - page), 8);
                kernel::unmap(MAP_AT, PAGE)?;
            }
            let at = MAP_AT + (rsdp - page);
            Ok(context.observe_buffer(call.registers, at, bytes))
        },
    },
    Case {
        id: "MSG-MEM-039",
        rule: "a direct object takes no frame: MEMORY_DIRECT and MEMORY_MAP of the RSDP's page leave free frames unchanged, and MEMORY_INFO says 1 page, flags DIRECT",
        section: "6.2",
        decisions: &["D16"],
        expect: Expect::replied("MEMORY_INFO", 0, 0, 24, 0).with_buffer(&[
            (8, Field::Quad(Value::Is(1))),
            (16, Field::Word(Value::Is(memory_flags::DIRECT as u64))),
        ]),
        run: |context| {
            let page = rsdp()? & !(PAGE - 1);
            let request = DirectRequest::new(page, PAGE);
            let direct = context.lowest_free(1)?[0];
            let m = kit::measured(
                KernelFunction::MemoryDirect,
                abi::process::FIRST_MACHINE_CONTROL,
                request.as_bytes(),
                64,
            )?;
            if let Some(error) = m.call.registers.kernel_error() {
                return Err(Failed(alloc::format!("MEMORY_DIRECT: {}", error.name())));
            }
            let direct = context.adopt(Descriptor(direct));
            context.check(
                m.after.free_frames == m.before.free_frames,
                &alloc::format!(
                    "MEMORY_DIRECT took free frames from {} to {}",
                    m.before.free_frames,
                    m.after.free_frames
                ),
            );
            // Mapped and unmapped again, the page tables come and go; no
            // frame of the object's.
            let before = free_frames()?;
            drop(map(direct, MAP_AT, 0, PAGE, READ)?);
            let after = free_frames()?;
            context.check(
                after == before,
                &alloc::format!("a mapping of it took free frames from {before} to {after}"),
            );
            let call = kit::send(KernelFunction::MemoryInfo.function(), direct, &[], &[], 64)?;
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-040",
        rule: "a direct object's reference holds DIRECT_MEMORY = MAP_READ | MAP_WRITE | TRANSFER | DUPLICATE (never MAP_EXECUTE)",
        section: "1.5",
        decisions: &["D16"],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&DIRECT_INFO))]),
        run: |context| {
            let page = rsdp()? & !(PAGE - 1);
            let direct = kernel::memory_direct(page, PAGE)?;
            let direct = context.adopt(direct.into_raw());
            let request = DescriptorRequest::new(direct, Rights::NONE);
            let call = kit::send(
                KernelFunction::DescriptorInfo.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-041",
        rule: "MEMORY_DIRECT of a page of usable RAM (physical 1 MiB) is KERNEL_RAM and changes nothing",
        section: "6.2",
        decisions: &["D16"],
        expect: Expect::error("MEMORY_DIRECT", Error::KernelRam),
        run: |context| {
            let request = DirectRequest::new(KERNEL_RAM, PAGE);
            kit::refused(
                context,
                KernelFunction::MemoryDirect,
                abi::process::FIRST_MACHINE_CONTROL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-042",
        rule: "MEMORY_DIRECT of a physical address that is not page-aligned is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_DIRECT", Error::InvalidArgument),
        run: |context| {
            let page = rsdp()? & !(PAGE - 1);
            let request = DirectRequest::new(page + 16, PAGE);
            kit::refused(
                context,
                KernelFunction::MemoryDirect,
                abi::process::FIRST_MACHINE_CONTROL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-043",
        rule: "MEMORY_DIRECT of a range ending past 2^52 (the architectural physical limit) is INVALID_ARGUMENT and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_DIRECT", Error::InvalidArgument),
        run: |context| {
            let request = DirectRequest::new(PHYSICAL_END - PAGE, 2 * PAGE);
            kit::refused(
                context,
                KernelFunction::MemoryDirect,
                abi::process::FIRST_MACHINE_CONTROL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-044",
        rule: "MEMORY_DIRECT from a process that holds no machine-control capability (the peer), sent to the NULL target, is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &["D16"],
        expect: Expect::error("the peer's MEMORY_DIRECT", Error::FunctionOutOfRange),
        run: |context| {
            let page = rsdp()? & !(PAGE - 1);
            let peer = context.peer(&[])?;
            let request = DirectRequest::new(page, PAGE);
            let result = peer.trap(Step::send(
                KernelFunction::MemoryDirect.function(),
                0,
                request.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-MEM-045",
        rule: "MEMORY_DIRECT sent to the process-control capability is WRONG_OBJECT_TYPE and changes nothing",
        section: "6",
        decisions: &["D16"],
        expect: Expect::error("MEMORY_DIRECT", Error::WrongObjectType),
        run: |context| {
            let page = rsdp()? & !(PAGE - 1);
            let request = DirectRequest::new(page, PAGE);
            kit::refused(
                context,
                KernelFunction::MemoryDirect,
                abi::process::FIRST_PROCESS_CONTROL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-MEM-046",
        rule: "MACHINE_INFO sent to the NULL target is FUNCTION_OUT_OF_RANGE, even from the first process",
        section: "6",
        decisions: &["D16"],
        expect: Expect::error("MACHINE_INFO", Error::FunctionOutOfRange),
        run: |context| kit::refused(context, KernelFunction::MachineInfo, Descriptor::NULL, &[]),
    },
    Case {
        id: "MSG-MEM-047",
        rule: "MEMORY_INFO needs no right: through a DUPLICATE with TRANSFER alone it answers the size",
        section: "6.2",
        decisions: &["D14"],
        expect: Expect::replied("MEMORY_INFO", 0, 0, 24, 0)
            .with_buffer(&[(8, Field::Quad(Value::Is(2)))]),
        run: |context| {
            let object = create(context, 2)?;
            let copy = context.duplicate(object, Rights::TRANSFER)?;
            let call = kit::send(KernelFunction::MemoryInfo.function(), copy, &[], &[], 64)?;
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-048",
        rule: "MEMORY_INFO sent to an event is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_INFO", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            kit::refused(context, KernelFunction::MemoryInfo, event, &[])
        },
    },
    Case {
        id: "MSG-MEM-049",
        rule: "a process's end unmaps its mappings and closes its references: the object the runner shares keeps its bytes, the one only the peer held gives its frames back",
        section: "6.2",
        decisions: &[],
        expect: Expect::replied("COUNTERS after the peer's end", 0, 0, 56, 0),
        run: |context| {
            let shared = create(context, 1)?;
            let mine = map(shared, MAP_AT2, 0, PAGE, RW)?;
            mine.write(MAP_AT2, b"shared");
            let only_theirs = kernel::memory_create(2)?.into_raw();
            let peer = context.peer(&[
                DescriptorSlot::copy(shared, Rights::MEMORY),
                DescriptorSlot::moving(only_theirs, Rights::MEMORY),
            ])?;
            let mapped = peer_map(&peer, MAP_AT, PAGE, RW)?;
            context.check_registers(
                "the peer's MEMORY_MAP",
                &mapped.registers,
                &kit::replied(0, 0, 16, 0),
            );
            peer.access(MAP_AT + 8, b"and the peer's", 0)?;
            let alive = kernel::counters()?;
            peer.exit()?;
            context.settle();
            let call = counters_call()?;
            let ended = kernel::counters()?;
            context.check(
                ended.free_frames >= alive.free_frames + 2,
                &alloc::format!(
                    "the peer's end gave back {} frames: not its object's 2",
                    ended.free_frames.saturating_sub(alive.free_frames)
                ),
            );
            context.check(
                ended.objects < alive.objects,
                "the object only the peer held is still there",
            );
            context.check(
                read(&mine, MAP_AT2, 22) == b"shared\0\0and the peer's",
                "the shared object lost bytes",
            );
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-050",
        rule: "20 rounds of create, map, copy-on-write child, writes on both sides, unmap and close end with free frames, objects, descriptors and charged bytes exactly where they started",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::replied("COUNTERS after the rounds", 0, 0, 56, 0).with_buffer(&[
            (24, Field::Quad(Value::Var("objects"))),
            (32, Field::Quad(Value::Var("descriptors"))),
            (40, Field::Quad(Value::Var("charged"))),
            (FREE_FRAMES_AT, Field::Quad(Value::Var("free"))),
        ]),
        run: |context| {
            warm_up(context)?;
            let before = kernel::counters()?;
            context.bind("objects", before.objects);
            context.bind("descriptors", before.descriptors);
            context.bind("charged", before.charged_bytes);
            context.bind("free", before.free_frames);
            for round in 0..20u32 {
                let parent = kernel::memory_create(1 + round % 3)?;
                let mine = map(parent.descriptor(), MAP_AT, 0, PAGE, RW)?;
                mine.write(MAP_AT, &round.to_le_bytes());
                let child = kernel::memory_cow(parent.descriptor(), 0, PAGE)?;
                let theirs = map(child.descriptor(), MAP_AT2, 0, PAGE, RW)?;
                theirs.write(MAP_AT2 + 4, b"child");
                mine.write(MAP_AT + 4, b"parnt");
                // Read without allocating: the runner's heap must not grow
                // between the two counts.
                let mut bytes = [0u8; 4];
                theirs.read(MAP_AT2, &mut bytes);
                context.check(
                    bytes == round.to_le_bytes(),
                    "the child lost its parent's bytes",
                );
                drop((mine, theirs, child, parent));
            }
            let call = counters_call()?;
            Ok(observed(context, call))
        },
    },
    Case {
        id: "MSG-MEM-051",
        rule: "MEMORY_INFO with request data (it takes none) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_INFO", Error::BadSizes),
        run: |context| {
            let object = create(context, 1)?;
            kit::refused(context, KernelFunction::MemoryInfo, object, &[0; 8])
        },
    },
    Case {
        id: "MSG-MEM-052",
        rule: "MACHINE_INFO with request data (it takes none) is BAD_SIZES",
        section: "6",
        decisions: &["D16"],
        expect: Expect::error("MACHINE_INFO", Error::BadSizes),
        run: |context| {
            kit::refused(
                context,
                KernelFunction::MachineInfo,
                abi::process::FIRST_MACHINE_CONTROL,
                &[0; 8],
            )
        },
    },
    Case {
        id: "MSG-MEM-053",
        rule: "MEMORY_COW with a buffer too small for its reply (20 bytes for the 24 of msgRetVal, msgErrno and one slot) is BAD_SIZES and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("MEMORY_COW", Error::BadSizes),
        run: |context| {
            let object = create(context, 1)?;
            let request = MemoryRangeRequest::new(0, PAGE);
            let m = kit::measured(KernelFunction::MemoryCow, object, request.as_bytes(), 20)?;
            context.check(
                m.before == m.after,
                &alloc::format!(
                    "the refused MEMORY_COW changed the counters: {:?} to {:?}",
                    m.before,
                    m.after
                ),
            );
            Ok(context.observe(m.call.registers))
        },
    },
    Case {
        id: "MSG-MEM-054",
        rule: "a peer killed after its write into a copy-on-write child (one page copied, one still shared) loses nothing of the runner's: the parent keeps its bytes, and once the child is closed free frames, objects, processes and charged bytes are exactly where they started",
        section: "6.2",
        decisions: &["D15"],
        expect: Expect::error("a call to the dead peer", Error::PeerDied),
        run: |context| {
            // One peer's life and one copy-on-write round first, so that no
            // growth of the kernel's heap or arenas shows in the counts.
            warm_up(context)?;
            context.peer(&[])?.exit()?;
            let before = kernel::counters()?;
            let parent = kernel::memory_create(2)?;
            let mine = map(parent.descriptor(), MAP_AT2, 0, 2 * PAGE, RW)?;
            mine.write(MAP_AT2, b"parent page 0");
            mine.write(MAP_AT2 + PAGE, b"parent page 1");
            let child = kernel::memory_cow(parent.descriptor(), 0, 2 * PAGE)?;
            let peer = peer_with(context, child.descriptor(), Rights::MEMORY)?;
            let mapped = peer_map(&peer, MAP_AT, 2 * PAGE, RW)?;
            context.check_registers(
                "the peer's MEMORY_MAP",
                &mapped.registers,
                &kit::replied(0, 0, 16, 0),
            );
            let copied = kernel::counters()?.free_frames;
            peer.access(MAP_AT + 8, b"peer", 0)?;
            context.check(
                kernel::counters()?.free_frames + 1 == copied,
                "the peer's write did not copy exactly one page",
            );
            peer.fault(fault::INVALID_OPCODE)?;
            context.settle();
            let after_call = kit::send(kit::USER_CALL, peer.control, &[], &[], 0)?;
            context.check(
                read(&mine, MAP_AT2, 13) == b"parent page 0"
                    && read(&mine, MAP_AT2 + PAGE, 13) == b"parent page 1",
                "the parent's bytes changed",
            );
            drop((mine, child, parent));
            context.close(peer.control)?;
            context.close(peer.process)?;
            let after = kernel::counters()?;
            context.check(
                after.free_frames == before.free_frames
                    && after.objects == before.objects
                    && after.processes == before.processes
                    && after.charged_bytes == before.charged_bytes,
                &alloc::format!("something leaked: before {before:?}, after {after:?}"),
            );
            Ok(context.observe(after_call.registers))
        },
    },
];
