//! Kernel functions that make doors and name the process manager's:
//! DOOR_CREATE and MANAGER_REGISTER (both sent to the process-control
//! capability).

use abi::kcall::{DescriptorRequest, DoorCreateRequest};
use abi::{Descriptor, Error, Rights};

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::object::{Door, ObjectBody};

/// DOOR_CREATE: a door of the caller's, with its owner reference and a
/// client reference.
pub(super) fn create(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let r: DoorCreateRequest = call.request()?;
    if r.system > 1 {
        return Err(Error::InvalidArgument);
    }
    let process = call.process;
    if kernel.process(process)?.table.room() < 2 {
        return Err(Error::TableFull);
    }
    // Room for both references first, so a heap that cannot grow refuses
    // the call before anything is made.
    kernel.process_mut(process)?.table.reserve(2)?;
    let door = Door::new(process, r.system == 1, r.security_type);
    let owner_rights = Rights::DOOR_OWNER;
    let owner = kernel.create_referenced(process, ObjectBody::Door(door), owner_rights)?;
    let object = kernel
        .processes
        .get(process)
        .and_then(|p| p.table.get(owner).ok())
        .map(|r| r.object);
    let client = match object {
        Some(object) => kernel.install_reference(process, object, Rights::DOOR_CLIENT),
        None => Err(Error::InvalidArgument),
    };
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            let _ = kernel.close(machine, process, owner);
            return Err(error);
        }
    };
    let descriptors = [(owner, owner_rights), (client, Rights::DOOR_CLIENT)];
    kernel.reply_to(machine, call, KernelReply::descriptors(&descriptors))
}

/// MANAGER_REGISTER: the caller's door (by its owner reference) becomes the
/// process manager's, which NULL-target 0x400+ calls are routed to.
pub(super) fn manager_register(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: DescriptorRequest = call.request()?;
    if r.rights != 0 {
        return Err(Error::ReservedBits);
    }
    let reference = *kernel
        .process(call.process)?
        .table
        .get(Descriptor(r.descriptor))?;
    kernel.door(reference.object)?;
    if !reference.rights.contains(Rights::RECEIVE) {
        return Err(Error::NotOwner);
    }
    // Room for every notice it may have to hold, so an exit is never lost
    // to a failed allocation.
    kernel
        .door(reference.object)?
        .notices
        .try_reserve(crate::ipc::MAX_NOTICES)
        .map_err(|_| Error::OutOfMemory)?;
    kernel.process_manager = Some(call.process);
    kernel.process_manager_door = Some(reference.object);
    kernel.reply_to(machine, call, NO_REPLY)
}
