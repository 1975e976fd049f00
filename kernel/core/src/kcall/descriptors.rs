//! Kernel functions on descriptors: CLOSE, DUPLICATE and DESCRIPTOR_INFO.
//! They act on the caller's own descriptor table and never on the object
//! behind a descriptor.

use abi::kcall::{DescriptorInfo, DescriptorRequest};
use abi::{Descriptor, Error, Rights};
use zerocopy::IntoBytes;

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;

/// A request naming one descriptor and no rights (the rights field is reserved).
fn descriptor_only(call: &Call<'_>) -> Result<Descriptor, Error> {
    let r: DescriptorRequest = call.request()?;
    if r.rights != 0 {
        return Err(Error::ReservedBits);
    }
    Ok(Descriptor(r.descriptor))
}

/// CLOSE: drops the caller's reference; the object goes with its last one.
pub(super) fn close(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let descriptor = descriptor_only(call)?;
    kernel.close(machine, call.process, descriptor)?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// DUPLICATE: a second reference to the same object with equal or fewer
/// rights, never one that can receive (an owner reference is unique).
pub(super) fn duplicate(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: DescriptorRequest = call.request()?;
    let rights = Rights(r.rights);
    if rights.has_reserved_bits() {
        return Err(Error::ReservedBits);
    }
    let reference = *kernel
        .process(call.process)?
        .table
        .get(Descriptor(r.descriptor))?;
    if !reference.rights.contains(Rights::DUPLICATE) {
        return Err(Error::MissingRight);
    }
    if !reference.rights.contains(rights) {
        return Err(Error::RightsExceeded);
    }
    if rights.contains(Rights::RECEIVE) {
        return Err(Error::NotTransferable);
    }
    let copy = kernel.install_reference(call.process, reference.object, rights)?;
    kernel.reply_to(machine, call, KernelReply::descriptors(&[(copy, rights)]))
}

/// DESCRIPTOR_INFO: the kind of the object and the reference's rights.
pub(super) fn info(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    let descriptor = descriptor_only(call)?;
    let reference = *kernel.process(call.process)?.table.get(descriptor)?;
    let kind = kernel
        .objects
        .get(reference.object)
        .map(|o| o.kind())
        .ok_or(Error::BadDescriptor)?;
    let info = DescriptorInfo {
        kind: kind as u32,
        rights: reference.rights.0,
    };
    kernel.reply_to(machine, call, KernelReply::payload(info.as_bytes()))
}
