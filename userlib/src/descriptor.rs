//! [`OwnedDescriptor`]: a descriptor this code owns, closed when dropped.

use core::num::NonZeroU32;

use abi::{Descriptor, Error, Rights};

use crate::kernel::{self, DescriptorInfo};

/// A descriptor (a reference in this process's table) that this value
/// owns: dropping it closes the descriptor (CLOSE), moving it into a message
/// ([`crate::Message::push_move`]) gives it away.
///
/// Exactly one `OwnedDescriptor` should exist per open descriptor; a second
/// one made with [`OwnedDescriptor::from_raw`] would close a number that
/// may by then name another reference.
#[derive(Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct OwnedDescriptor(NonZeroU32);

impl OwnedDescriptor {
    /// Takes ownership of `descriptor`; `None` for NULL (descriptor 0,
    /// never a reference).
    pub fn from_raw(descriptor: Descriptor) -> Option<Self> {
        NonZeroU32::new(descriptor.0).map(OwnedDescriptor)
    }

    /// The descriptor number, still owned by `self`.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor(self.0.get())
    }

    /// Gives up ownership without closing.
    pub fn into_raw(self) -> Descriptor {
        let descriptor = self.descriptor();
        core::mem::forget(self);
        descriptor
    }

    /// A new descriptor for the same object with `rights` (a subset of this
    /// one's; DUPLICATE needs the DUPLICATE right).
    pub fn duplicate(&self, rights: Rights) -> Result<OwnedDescriptor, Error> {
        kernel::duplicate(self.descriptor(), rights)
    }

    /// What the descriptor names and the rights it holds (DESCRIPTOR_INFO).
    pub fn info(&self) -> Result<DescriptorInfo, Error> {
        kernel::descriptor_info(self.descriptor())
    }

    /// Closes the descriptor, reporting the kernel's answer (dropping
    /// closes too, but ignores it).
    pub fn close(self) -> Result<(), Error> {
        kernel::close(self.into_raw())
    }
}

impl Drop for OwnedDescriptor {
    fn drop(&mut self) {
        // Nothing useful can be done with a failed close here; `close`
        // reports it for callers who care.
        let _ = kernel::close(self.descriptor());
    }
}
