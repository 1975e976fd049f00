//! Descriptors (a process's numbers for its references) and rights.

/// A descriptor: an index into the calling process's descriptor table,
/// carried in the low 32 bits of `arg1` (the upper 32 bits are reserved and
/// must be zero). Descriptor 0 is the NULL target and is never allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Descriptor(pub u32);

impl Descriptor {
    /// The NULL target: kernel functions, and process-manager functions
    /// routed to procman.
    pub const NULL: Descriptor = Descriptor(0);

    /// Whether this is the NULL target.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}

/// The most descriptors one process may hold open at once; valid
/// descriptors are `1..=MAX_DESCRIPTORS`.
pub const MAX_DESCRIPTORS: u32 = 1024;

/// The rights a reference carries. Bits outside [`Rights::ALL`] are
/// reserved and must be zero wherever rights are passed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rights(pub u32);

impl Rights {
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// SEND through this reference (to a door), or invoke kernel functions on
    /// the object it names.
    pub const SEND: Rights = Rights(1 << 0);
    /// RECEIVE from the door: only the owner reference has it, and it can be
    /// moved but never copied, so a door has exactly one owner.
    pub const RECEIVE: Rights = Rights(1 << 1);
    /// Pass the reference on in a message.
    pub const TRANSFER: Rights = Rights(1 << 2);
    /// Make a copy of the reference with DUPLICATE.
    pub const DUPLICATE: Rights = Rights(1 << 3);
    /// Signal an event.
    pub const SIGNAL: Rights = Rights(1 << 4);
    /// Wait on an event.
    pub const WAIT: Rights = Rights(1 << 5);
    /// Map a memory object readable (MEMORY_MAP with READ), and make a
    /// copy-on-write child of it (MEMORY_COW). The memory rights live in
    /// bits 16-18, apart from the IPC rights of the low byte (ABI.md §9 D14).
    pub const MAP_READ: Rights = Rights(1 << 16);
    /// Map a memory object writable (MEMORY_MAP and PROTECT with WRITE).
    pub const MAP_WRITE: Rights = Rights(1 << 17);
    /// Map a memory object executable (MEMORY_MAP and PROTECT with EXECUTE).
    pub const MAP_EXECUTE: Rights = Rights(1 << 18);
    /// Every defined right: bits 0-5 and 16-18.
    pub const ALL: Rights = Rights(0x3f | 0x7 << 16);

    /// The rights of a door's owner reference as DOOR_CREATE returns it.
    pub const DOOR_OWNER: Rights = Rights(Rights::RECEIVE.0 | Rights::TRANSFER.0);
    /// The rights of a new client reference to a door.
    pub const DOOR_CLIENT: Rights =
        Rights(Rights::SEND.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);
    /// The rights of a new event reference.
    pub const EVENT: Rights =
        Rights(Rights::SIGNAL.0 | Rights::WAIT.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);
    /// The rights of a new thread or process handle. SEND is what kernel
    /// functions on the handle (PROCESS_SET_COOKIE) need, so a holder can
    /// pass the handle on without the power to use it.
    pub const HANDLE: Rights = Rights(Rights::SEND.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);
    /// The rights of a new interrupt object's reference (INTERRUPT_CREATE):
    /// SEND is what INTERRUPT_ACK needs.
    pub const INTERRUPT: Rights = Rights(Rights::SEND.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);
    /// The rights of a new kernel-log object's reference (LOG_TAKE): SEND
    /// is what LOG_READ needs.
    pub const KERNEL_LOG: Rights =
        Rights(Rights::SEND.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);
    /// The rights of the kernel capabilities the first process starts with.
    pub const CAPABILITY: Rights =
        Rights(Rights::SEND.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);
    /// The rights of a new anonymous memory object's reference (MEMORY_CREATE,
    /// MEMORY_COW): every memory right, TRANSFER and DUPLICATE.
    pub const MEMORY: Rights = Rights(
        Rights::MAP_READ.0
            | Rights::MAP_WRITE.0
            | Rights::MAP_EXECUTE.0
            | Rights::TRANSFER.0
            | Rights::DUPLICATE.0,
    );
    /// The rights of a new direct (physical) memory object's reference
    /// (MEMORY_DIRECT): device memory is mapped for reading and writing,
    /// never executed.
    pub const DIRECT_MEMORY: Rights =
        Rights(Rights::MAP_READ.0 | Rights::MAP_WRITE.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0);

    /// The memory rights a mapping with `protection` (`kcall::protection`
    /// bits) needs: MAP_READ for READ, MAP_WRITE for WRITE, MAP_EXECUTE for
    /// EXECUTE.
    pub const fn for_protection(protection: u32) -> Rights {
        let mut rights = 0;
        if protection & crate::kcall::protection::READ != 0 {
            rights |= Rights::MAP_READ.0;
        }
        if protection & crate::kcall::protection::WRITE != 0 {
            rights |= Rights::MAP_WRITE.0;
        }
        if protection & crate::kcall::protection::EXECUTE != 0 {
            rights |= Rights::MAP_EXECUTE.0;
        }
        Rights(rights)
    }

    /// The widest protection these rights allow a mapping (the inverse of
    /// [`Rights::for_protection`]).
    pub const fn protection(self) -> u32 {
        let mut protection = 0;
        if self.contains(Rights::MAP_READ) {
            protection |= crate::kcall::protection::READ;
        }
        if self.contains(Rights::MAP_WRITE) {
            protection |= crate::kcall::protection::WRITE;
        }
        if self.contains(Rights::MAP_EXECUTE) {
            protection |= crate::kcall::protection::EXECUTE;
        }
        protection
    }

    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The intersection.
    pub const fn intersection(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// Whether a reserved bit is set.
    pub const fn has_reserved_bits(self) -> bool {
        self.0 & !Rights::ALL.0 != 0
    }
}

/// The kinds of object a descriptor can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ObjectKind {
    /// A door (IPC object) of kind user: accepts USER_BASE functions.
    UserDoor = 1,
    /// A door of kind system: accepts SYSTEM_BASE functions.
    SystemDoor = 2,
    /// A counting event.
    Event = 3,
    /// A thread.
    Thread = 4,
    /// A process.
    Process = 5,
    /// The capability to create doors and processes and to become the
    /// process manager (DOOR_CREATE, SPAWN, MANAGER_REGISTER).
    ProcessControl = 6,
    /// The capability to read the boot archive (ARCHIVE_READ).
    BootArchive = 7,
    /// The capability to control the machine (DEBUG_EXIT, MACHINE_INFO,
    /// MEMORY_DIRECT, IO_PORT_GRANT, INTERRUPT_CREATE).
    MachineControl = 8,
    /// A memory object: a set of frames with a size (anonymous, a
    /// copy-on-write child, or a direct physical range).
    Memory = 9,
    /// An interrupt line delivered to an event (INTERRUPT_CREATE): its
    /// holder acknowledges each delivery (INTERRUPT_ACK); closing the last
    /// reference masks the line again.
    Interrupt = 10,
    /// The kernel's log, taken over from COM1 (LOG_TAKE): its holder reads
    /// the lines (LOG_READ); closing the last reference gives COM1 back to
    /// the kernel.
    KernelLog = 11,
}

impl ObjectKind {
    /// The kind with this number.
    pub const fn from_number(value: u32) -> Option<ObjectKind> {
        match value {
            1 => Some(ObjectKind::UserDoor),
            2 => Some(ObjectKind::SystemDoor),
            3 => Some(ObjectKind::Event),
            4 => Some(ObjectKind::Thread),
            5 => Some(ObjectKind::Process),
            6 => Some(ObjectKind::ProcessControl),
            7 => Some(ObjectKind::BootArchive),
            8 => Some(ObjectKind::MachineControl),
            9 => Some(ObjectKind::Memory),
            10 => Some(ObjectKind::Interrupt),
            11 => Some(ObjectKind::KernelLog),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_algebra() {
        let r = Rights::SEND.union(Rights::TRANSFER);
        assert!(r.contains(Rights::SEND));
        assert!(!r.contains(Rights::RECEIVE));
        assert!(r.contains(Rights::NONE));
        assert_eq!(
            r.intersection(Rights::TRANSFER.union(Rights::WAIT)),
            Rights::TRANSFER
        );
        assert!(!Rights::ALL.has_reserved_bits());
        assert!(Rights(1 << 6).has_reserved_bits());
        assert!(Rights(1 << 15).has_reserved_bits());
        assert!(Rights(1 << 19).has_reserved_bits());
        assert!(!Rights::MEMORY.has_reserved_bits());
        assert!(Descriptor::NULL.is_null() && !Descriptor(1).is_null());
        for protection in 0..8 {
            assert_eq!(Rights::for_protection(protection).protection(), protection);
        }
        assert_eq!(Rights::DIRECT_MEMORY.protection(), 3);
        assert_eq!(Rights::SEND.protection(), 0);
        for n in 1..=9 {
            assert_eq!(ObjectKind::from_number(n).map(|k| k as u32), Some(n));
        }
        assert_eq!(ObjectKind::from_number(0), None);
    }
}
