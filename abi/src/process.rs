//! How a process starts: its address-space layout and first thread's registers.
//!
//! A program is a static, non-relocatable ELF64 for x86_64 linked at or
//! above [`USER_IMAGE_BASE`]. The kernel maps its PT_LOAD segments with the
//! segment's permissions (never writable and executable at once), maps a
//! stack of [`USER_STACK_SIZE`] bytes ending at [`USER_STACK_TOP`], copies
//! the argument bytes to the top of that stack and starts the first thread
//! at the ELF entry with:
//!
//! | register | value |
//! | --- | --- |
//! | rdi | address of the argument bytes (on the stack) |
//! | rsi | length of the argument bytes |
//! | rdx | number of initial descriptors: they are `1..=rdx` |
//! | rsp | 16-byte aligned, below the arguments |
//!
//! Every other general-purpose register is zero, RFLAGS has only IF set.
//!
//! The first process (the one the kernel starts) gets the kernel command
//! line as its argument bytes and three capabilities as its descriptors:
//! [`FIRST_PROCESS_CONTROL`], [`FIRST_BOOT_ARCHIVE`], [`FIRST_MACHINE_CONTROL`].

/// The size of a page, the unit of MAP_ANONYMOUS, UNMAP and PROTECT and
/// of every mapping the kernel makes for a process.
pub const PAGE_SIZE: usize = 4096;
/// [`PAGE_SIZE`] as an address difference.
pub const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// The lowest address a program may be linked at.
pub const USER_IMAGE_BASE: u64 = 0x40_0000;
/// One past the highest user address (the lower half of the 48-bit space,
/// minus one guard page).
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;
/// The top of the first thread's stack.
pub const USER_STACK_TOP: u64 = 0x0000_7fff_fff0_0000;
/// The size of the first thread's stack.
pub const USER_STACK_SIZE: u64 = 256 * 1024;
/// The most argument bytes SPAWN passes.
pub const MAX_ARGUMENT_BYTES: usize = 1024;
/// Where MAP_ANONYMOUS places memory when the caller lets the kernel choose.
pub const USER_MAP_BASE: u64 = 0x0000_1000_0000_0000;

/// The first process's process-control capability (DOOR_CREATE, SPAWN,
/// MANAGER_REGISTER are sent to it).
pub const FIRST_PROCESS_CONTROL: crate::Descriptor = crate::Descriptor(1);
/// The first process's boot-archive capability (ARCHIVE_READ).
pub const FIRST_BOOT_ARCHIVE: crate::Descriptor = crate::Descriptor(2);
/// The first process's machine-control capability (DEBUG_EXIT).
pub const FIRST_MACHINE_CONTROL: crate::Descriptor = crate::Descriptor(3);
/// How many descriptors the first process starts with.
pub const FIRST_PROCESS_DESCRIPTORS: u32 = 3;
