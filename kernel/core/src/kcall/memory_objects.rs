//! Kernel functions on memory objects: MEMORY_CREATE, MEMORY_MAP,
//! MEMORY_COW, MEMORY_INFO, MEMORY_DIRECT (sent to the machine-control
//! capability) and PAGER_CREATE (sent to the pager's door). Each decodes and checks its whole request before it acts,
//! in the order ABI.md §6 gives: reserved fields (RESERVED_BITS), the
//! request's shape and bounds (INVALID_ARGUMENT, KERNEL_RAM), the
//! reference's memory rights (MISSING_RIGHT), then what the work needs
//! (BAD_ADDRESS_RANGE, TABLE_FULL, OUT_OF_MEMORY), so a refused request
//! changes nothing. The model is `crate::memory_object`.

use abi::kcall::{
    DirectRequest, MapReply, MemoryCreateRequest, MemoryInfo, MemoryMapRequest, MemoryRangeRequest,
    PHYSICAL_END, PagerCreateRequest, memory_flags,
};
use abi::{Error, Rights};
use zerocopy::IntoBytes;

use super::memory::{check_map_protection, check_range};
use super::{Call, KernelReply};
use crate::descriptor_table::Reference;
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::memory_object::MemoryObject;
use crate::object::Object;
use crate::phys::PAGE_SIZE as PAGE;

/// The target memory object and the caller's reference to it.
fn target_memory<'k>(
    kernel: &'k Kernel,
    call: &Call<'_>,
) -> Result<(Reference, &'k MemoryObject), Error> {
    let reference = call.target()?;
    let memory = kernel
        .objects
        .get(reference.object)
        .and_then(Object::memory)
        .ok_or(Error::WrongObjectType)?;
    Ok((reference, memory))
}

/// A page-aligned, non-empty range of an object of `size` pages: its first
/// page and its page count (INVALID_ARGUMENT otherwise).
pub(super) fn object_range(offset: u64, length: u64, size: u64) -> Result<(u64, u64), Error> {
    if !offset.is_multiple_of(PAGE) || !length.is_multiple_of(PAGE) || length == 0 {
        return Err(Error::InvalidArgument);
    }
    let (first, pages) = (offset / PAGE, length / PAGE);
    if first.checked_add(pages).is_none_or(|end| end > size) {
        return Err(Error::InvalidArgument);
    }
    Ok((first, pages))
}

/// MEMORY_CREATE: an anonymous object of zeroed pages, charged to the
/// caller; its reference (rights `MEMORY`) in reply slot 0.
pub(super) fn create(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: MemoryCreateRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    if r.pages == 0 {
        return Err(Error::InvalidArgument);
    }
    let descriptor = kernel.create_anonymous(machine, call.process, u64::from(r.pages))?;
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::MEMORY)]),
    )
}

/// MEMORY_MAP: maps part of the target object into the caller's space, no
/// wider than the reference's memory rights allow.
pub(super) fn map(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: MemoryMapRequest = call.request()?;
    check_map_protection(r.protection, r.reserved)?;
    check_range(r.address, r.length)?;
    let (reference, memory) = target_memory(kernel, call)?;
    let (first, pages) = object_range(r.offset, r.length, memory.pages())?;
    let allowed = reference.rights.protection();
    if r.protection & !allowed != 0 {
        return Err(Error::MissingRight);
    }
    let address = kernel.map_object(
        machine,
        call.process,
        reference.object,
        (r.address != 0).then_some(r.address),
        first,
        pages,
        r.protection,
        allowed,
    )?;
    let reply = MapReply { address };
    kernel.reply_to(machine, call, KernelReply::payload(reply.as_bytes()))
}

/// MEMORY_COW: a copy-on-write child of part of the target (anonymous)
/// object; needs MAP_READ (a holder that may read the pages may copy
/// them); its reference (rights `MEMORY`) in reply slot 0.
pub(super) fn cow(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: MemoryRangeRequest = call.request()?;
    let (reference, memory) = target_memory(kernel, call)?;
    let (first, pages) = object_range(r.offset, r.length, memory.pages())?;
    if memory.is_direct() || memory.special().is_some() {
        return Err(Error::InvalidArgument);
    }
    if !reference.rights.contains(Rights::MAP_READ) {
        return Err(Error::MissingRight);
    }
    let child = kernel.create_cow(machine, call.process, reference.object, first, pages)?;
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(child, Rights::MEMORY)]),
    )
}

/// MEMORY_INFO: the target object's size and kind; needs no right.
pub(super) fn info(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    call.no_request()?;
    let (_, memory) = target_memory(kernel, call)?;
    let info = MemoryInfo {
        pages: memory.pages(),
        flags: if memory.is_direct() {
            memory_flags::DIRECT
        } else if memory.special().is_some() {
            memory_flags::SPECIAL
        } else {
            0
        },
        reserved: 0,
    };
    kernel.reply_to(machine, call, KernelReply::payload(info.as_bytes()))
}

/// MEMORY_DIRECT (machine-control capability): an object over a physical
/// range, refused with KERNEL_RAM when the range holds RAM the kernel
/// owns; its reference (rights `DIRECT_MEMORY`) in reply slot 0.
pub(super) fn direct(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: DirectRequest = call.request()?;
    if !r.physical.is_multiple_of(PAGE) || !r.length.is_multiple_of(PAGE) || r.length == 0 {
        return Err(Error::InvalidArgument);
    }
    if r.physical
        .checked_add(r.length)
        .is_none_or(|end| end > PHYSICAL_END)
    {
        return Err(Error::InvalidArgument);
    }
    let descriptor = kernel.create_direct(machine, call.process, r.physical, r.length / PAGE)?;
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::DIRECT_MEMORY)]),
    )
}

/// PAGER_CREATE (a door with SEND: the pager's): a special object whose
/// pages the pager behind the door supplies when they are first touched,
/// charged to the caller like an anonymous one; its reference (rights
/// `MEMORY`) in reply slot 0. A closed door is PEER_DIED.
pub(super) fn pager_create(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: PagerCreateRequest = call.request()?;
    if r.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    if r.pages == 0 {
        return Err(Error::InvalidArgument);
    }
    let door = call.target()?.object;
    if kernel.door(door)?.owner.is_none() {
        return Err(Error::PeerDied);
    }
    let descriptor =
        kernel.create_special(machine, call.process, door, u64::from(r.pages), r.cookie)?;
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::MEMORY)]),
    )
}
