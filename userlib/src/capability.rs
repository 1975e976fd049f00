//! The kernel capabilities this process holds: the authority to create doors
//! and processes, to read the boot archive, to control the machine. The
//! first process starts with all three (`abi::process`); others hold them
//! only if someone passed them on. The runtime finds them among the initial
//! descriptors, and the wrappers in [`crate::kernel`] send to them.

use core::sync::atomic::{AtomicU32, Ordering};

use abi::{Descriptor, ObjectKind};

static PROCESS_CONTROL: AtomicU32 = AtomicU32::new(0);
static BOOT_ARCHIVE: AtomicU32 = AtomicU32::new(0);
static MACHINE_CONTROL: AtomicU32 = AtomicU32::new(0);

fn slot(kind: ObjectKind) -> Option<&'static AtomicU32> {
    match kind {
        ObjectKind::ProcessControl => Some(&PROCESS_CONTROL),
        ObjectKind::BootArchive => Some(&BOOT_ARCHIVE),
        ObjectKind::MachineControl => Some(&MACHINE_CONTROL),
        _ => None,
    }
}

/// Records which of the initial descriptors `1..=count` are capabilities
/// (called by the runtime before main).
#[cfg(target_os = "none")]
pub(crate) fn find(count: u32) {
    for number in 1..=count {
        let descriptor = Descriptor(number);
        if let Ok(info) = crate::kernel::descriptor_info(descriptor)
            && let Some(kind) = info.kind
        {
            remember(kind, descriptor);
        }
    }
}

/// Remembers `descriptor` as this process's capability of `kind` (for a
/// capability that arrived later, in a message).
pub fn remember(kind: ObjectKind, descriptor: Descriptor) {
    if let Some(slot) = slot(kind) {
        slot.store(descriptor.0, Ordering::Relaxed);
    }
}

/// This process's capability of `kind`, or the NULL descriptor when it has
/// none (the kernel then refuses the call with FUNCTION_OUT_OF_RANGE).
pub fn of(kind: ObjectKind) -> Descriptor {
    slot(kind).map_or(Descriptor::NULL, |slot| {
        Descriptor(slot.load(Ordering::Relaxed))
    })
}
