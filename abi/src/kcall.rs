//! Request and reply layouts of the kernel functions (range `0x0-0x3FF`).
//!
//! A kernel function is an ordinary SEND: its request struct is the message
//! data, its reply is written into the same buffer as a server's would be:
//! `msgRetVal` (word 0), `msgErrno` (word 1, 0 on success), then the reply
//! struct at offset 8, and new descriptors in the reply's slots. A kernel
//! function that fails returns the kernel-error registers instead
//! (`arg0 = -1`, `arg1 = error`, `arg3 = 0`). Every reserved field must be zero.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Offset of a kernel reply's payload: after msgRetVal and msgErrno.
pub const REPLY_PAYLOAD_OFFSET: usize = 8;

/// CLOSE, DUPLICATE, DESCRIPTOR_INFO: one descriptor, plus rights for DUPLICATE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DescriptorRequest {
    /// The descriptor operated on.
    pub descriptor: u32,
    /// DUPLICATE: the rights of the copy (a subset); otherwise zero.
    pub rights: u32,
}

/// DESCRIPTOR_INFO's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DescriptorInfo {
    /// An [`crate::ObjectKind`] number.
    pub kind: u32,
    /// The reference's rights.
    pub rights: u32,
}

/// THREAD_CREATE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ThreadCreateRequest {
    /// The user address the thread starts at.
    pub entry: u64,
    /// The thread's initial stack pointer (user address, 16-byte aligned).
    pub stack_top: u64,
    /// Passed to the thread in rdi.
    pub argument: u64,
    /// 0 (lowest) to [`MAX_PRIORITY`]; at most the creator's own priority.
    pub priority: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// The highest thread priority.
pub const MAX_PRIORITY: u32 = 31;
/// The priority of a process's first thread.
pub const DEFAULT_PRIORITY: u32 = 16;

/// THREAD_EXIT, PROCESS_EXIT, DEBUG_EXIT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ExitRequest {
    /// The exit status (DEBUG_EXIT: 0 = success, anything else = failure).
    pub code: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Page protection bits for MAP_ANONYMOUS and PROTECT.
pub mod protection {
    /// Readable.
    pub const READ: u32 = 1 << 0;
    /// Writable (implies readable on x86_64).
    pub const WRITE: u32 = 1 << 1;
    /// Executable.
    pub const EXECUTE: u32 = 1 << 2;
    /// Every defined bit.
    pub const ALL: u32 = READ | WRITE | EXECUTE;
}

/// MAP_ANONYMOUS, UNMAP, PROTECT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MapRequest {
    /// Page-aligned user address; for MAP_ANONYMOUS, 0 lets the kernel choose.
    pub address: u64,
    /// Bytes, a non-zero multiple of 4096.
    pub length: u64,
    /// [`protection`] bits (UNMAP: zero).
    pub protection: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// MAP_ANONYMOUS's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MapReply {
    /// Where the memory was mapped.
    pub address: u64,
}

/// DOOR_CREATE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DoorCreateRequest {
    /// 0 = user door (USER_BASE functions), 1 = system door (SYSTEM_BASE).
    pub system: u32,
    /// The security type procman assigns; the kernel only stores it.
    pub security_type: u32,
}

/// SPAWN: followed in the data by `name_length` bytes of the boot-archive
/// entry name, then `argument_length` argument bytes (see
/// [`crate::process`]). The data size must be exactly
/// `8 + name_length + argument_length`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SpawnRequest {
    /// Length of the name that follows.
    pub name_length: u32,
    /// Length of the argument bytes after the name.
    pub argument_length: u32,
}

/// PROCESS_SET_COOKIE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct CookieRequest {
    /// The cookie the process's NULL-target process-manager calls will carry.
    pub cookie: u64,
}

/// ARCHIVE_READ: followed in the data by `name_length` bytes of the name.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ArchiveReadRequest {
    /// Where in the file to start.
    pub offset: u64,
    /// Length of the name that follows.
    pub name_length: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// ARCHIVE_READ's reply payload, followed by the bytes read (as many as fit
/// the caller's buffer after it, and no more than the file has).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ArchiveReadReply {
    /// The file's whole size.
    pub size: u64,
}

/// The data of a PROCESS_EXITED notice.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessExitNotice {
    /// The ended process's process-manager cookie (PROCESS_SET_COOKIE).
    pub cookie: u64,
    /// Its exit status (`u32::MAX` when it faulted).
    pub status: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// COUNTERS' reply payload: what the kernel holds right now.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct KernelCounters {
    /// Live processes.
    pub processes: u64,
    /// Live threads.
    pub threads: u64,
    /// Live kernel objects of every kind.
    pub objects: u64,
    /// Open descriptors in every table.
    pub descriptors: u64,
    /// Kernel memory charged to processes, in bytes.
    pub charged_bytes: u64,
    /// Free physical frames.
    pub free_frames: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_fixed() {
        assert_eq!(core::mem::size_of::<DescriptorRequest>(), 8);
        assert_eq!(core::mem::size_of::<ThreadCreateRequest>(), 32);
        assert_eq!(core::mem::size_of::<MapRequest>(), 24);
        assert_eq!(core::mem::size_of::<KernelCounters>(), 48);
    }
}
