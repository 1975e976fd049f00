//! Kernel functions on the caller's address space: MAP_ANONYMOUS, UNMAP and
//! PROTECT. Ranges and protections are checked here; the page tables are
//! the machine's business. UNMAP and PROTECT cover mappings of memory
//! objects too (`crate::memory_object` keeps those).

use abi::Error;
use abi::kcall::{MapReply, MapRequest, protection};
use abi::process::USER_END;
use zerocopy::IntoBytes;

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::page_tables;
use crate::phys::PAGE_SIZE;

/// A page-aligned, non-empty range inside user space.
pub(super) fn check_range(address: u64, length: u64) -> Result<(), Error> {
    let aligned = address.is_multiple_of(PAGE_SIZE) && length.is_multiple_of(PAGE_SIZE);
    let end = address.checked_add(length).ok_or(Error::BadAddressRange)?;
    if !aligned || length == 0 {
        return Err(Error::InvalidArgument);
    }
    if end > USER_END {
        return Err(Error::BadAddressRange);
    }
    Ok(())
}

pub(super) fn check_protection(bits: u32, reserved: u32) -> Result<(), Error> {
    if reserved != 0 || bits & !protection::ALL != 0 {
        return Err(Error::ReservedBits);
    }
    Ok(())
}

/// The protection of memory being mapped: defined bits only, and READ,
/// since x86_64 page tables cannot express a present page that is not
/// readable (ABI.md §6, "Memory").
pub(super) fn check_map_protection(bits: u32, reserved: u32) -> Result<(), Error> {
    check_protection(bits, reserved)?;
    if bits & protection::READ == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// MAP_ANONYMOUS: zeroed private memory, charged to the caller first with
/// the most page tables it can need; what the tables did not take is given
/// back once it is mapped.
pub(super) fn map_anonymous(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: MapRequest = call.request()?;
    check_map_protection(r.protection, r.reserved)?;
    check_range(r.address, r.length)?;
    let mut at = (r.address != 0).then_some(r.address);
    // Holes of special mappings look free to the machine: the core
    // chooses (or checks) the place then (ABI.md §6.4).
    let chosen = kernel.maps_special(call.process);
    if chosen {
        at = Some(kernel.find_room_clear(machine, call.process, at, r.length)?);
    }
    let tables = page_tables::bound(at, r.length);
    let charge = r.length.checked_add(tables).ok_or(Error::OutOfMemory)?;
    kernel.process_mut(call.process)?.charge(charge)?;
    let mapped = machine.map_anonymous(call.space, at, r.length, r.protection);
    let unused = match mapped {
        Ok(mapped) => {
            if chosen && r.address == 0 {
                machine.placed(call.space, mapped.address, r.length);
            }
            tables.saturating_sub(mapped.table_bytes)
        }
        Err(_) => charge,
    };
    if let Some(p) = kernel.processes.get_mut(call.process) {
        p.uncharge(unused);
    }
    let reply = MapReply {
        address: mapped?.address,
    };
    kernel.reply_to(machine, call, KernelReply::payload(reply.as_bytes()))
}

/// Refuses a range that holds part of the call's own message buffer: the
/// reply could not be written after the change, and a refused request must
/// change nothing (issue 15, finding 10).
fn keep_the_buffer(call: &Call<'_>, address: u64, length: u64) -> Result<(), Error> {
    let buffer_end = call
        .buffer
        .saturating_add(u64::from(call.layout.total_size));
    let end = address.saturating_add(length);
    if call.layout.total_size > 0 && address < buffer_end && call.buffer < end {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// UNMAP: frees whatever anonymous memory is mapped in the range and
/// uncharges it; mappings of memory objects in it go (their frames stay
/// the objects').
pub(super) fn unmap(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: MapRequest = call.request()?;
    check_protection(r.protection, r.reserved)?;
    if r.protection != 0 {
        return Err(Error::ReservedBits);
    }
    check_range(r.address, r.length)?;
    keep_the_buffer(call, r.address, r.length)?;
    kernel.unmap_range(machine, call.process, r.address, r.length)?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// PROTECT: new protection for a wholly mapped range; over a memory
/// object's mapping, no wider than the reference it was mapped through
/// allowed.
pub(super) fn protect(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: MapRequest = call.request()?;
    check_map_protection(r.protection, r.reserved)?;
    check_range(r.address, r.length)?;
    if r.protection & protection::WRITE == 0 {
        keep_the_buffer(call, r.address, r.length)?;
    }
    kernel.protect_range(machine, call.process, r.address, r.length, r.protection)?;
    kernel.reply_to(machine, call, NO_REPLY)
}
