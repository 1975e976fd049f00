//! Request and reply layouts of the kernel functions (range `0x0-0x3FF`).
//!
//! A kernel function is an ordinary SEND: its request struct is the message
//! data, its reply is written into the same buffer as a server's would be:
//! `msgRetVal` (word 0), `msgErrno` (word 1, 0 on success), then the reply
//! struct at offset 8, and new descriptors in the reply's slots. A kernel
//! function that fails returns the kernel-error registers instead
//! (`arg0 = -1`, `arg1 = error`, `arg3 = 0`). Every reserved field must be zero.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::descriptor::{Descriptor, Rights};

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
    /// Bytes, a non-zero multiple of [`crate::PAGE_SIZE`].
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

/// MEMORY_CREATE: an anonymous memory object of `pages` zero-filled pages.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MemoryCreateRequest {
    /// The object's size in pages (of [`crate::PAGE_SIZE`]), at least 1.
    pub pages: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// MEMORY_MAP: `length` bytes of the target memory object from `offset`,
/// mapped at `address` (0: the kernel chooses) with `protection`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MemoryMapRequest {
    /// Page-aligned user address, or 0 to let the kernel choose.
    pub address: u64,
    /// Page-aligned offset into the object.
    pub offset: u64,
    /// Bytes, a non-zero multiple of [`crate::PAGE_SIZE`], within the object.
    pub length: u64,
    /// [`protection`] bits: READ at least, and no bit the reference's
    /// memory rights do not allow.
    pub protection: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// MEMORY_COW: the pages of the target memory object in
/// `[offset, offset + length)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MemoryRangeRequest {
    /// Page-aligned offset into the object.
    pub offset: u64,
    /// Bytes, a non-zero multiple of [`crate::PAGE_SIZE`], within the object.
    pub length: u64,
}

/// MEMORY_INFO's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MemoryInfo {
    /// The object's size in pages.
    pub pages: u64,
    /// [`memory_flags`] bits.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
}

/// The flags of [`MemoryInfo`].
pub mod memory_flags {
    /// The object is a direct physical range (MEMORY_DIRECT).
    pub const DIRECT: u32 = 1 << 0;
    /// The object's pages are supplied by a pager (PAGER_CREATE).
    pub const SPECIAL: u32 = 1 << 1;
}

/// PAGER_CREATE: a special memory object of `pages` pages, each supplied
/// by the pager behind the target door the first time it is touched.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PagerCreateRequest {
    /// The object's size in pages (of [`crate::PAGE_SIZE`]), at least 1.
    pub pages: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Delivered with every page request for the object (arg1 and
    /// [`PageRequest::cookie`]), so the pager knows which object it serves.
    pub cookie: u64,
}

/// The data of a PAGE_REQUEST the kernel delivers to a pager's door.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PageRequest {
    /// The object's cookie (PAGER_CREATE).
    pub cookie: u64,
    /// The byte offset of the missing page in the object (page-aligned).
    pub offset: u64,
    /// The access that faulted first ([`protection`] bits: READ, WRITE or
    /// EXECUTE).
    pub access: u32,
    /// How many pagers forwarded the request before this one (0: it comes
    /// straight from the fault).
    pub hops: u32,
}

/// How a pager answers a PAGE_REQUEST: the word after msgRetVal and
/// msgErrno in its REPLY (at [`REPLY_PAYLOAD_OFFSET`]).
pub mod page_supply {
    /// The bytes after the [`super::PageSupply`] header start the page; the
    /// rest of it is zero.
    pub const DATA: u32 = 1;
    /// The page is the frame of page `offset` of the pager's memory object
    /// `descriptor` (shared copy-on-write from then on).
    pub const FRAME: u32 = 2;
    /// The request goes on to the pager behind the door `descriptor`.
    pub const FORWARD: u32 = 3;
}

/// A pager's REPLY to a PAGE_REQUEST, after msgRetVal and msgErrno.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PageSupply {
    /// [`page_supply`]: DATA, FRAME or FORWARD.
    pub how: u32,
    /// FRAME: the pager's memory object; FORWARD: the next pager's door;
    /// DATA: zero.
    pub descriptor: u32,
    /// FRAME: the byte offset of the page in that object (page-aligned);
    /// otherwise zero.
    pub offset: u64,
}

/// A PAGE_REQUEST travels through at most this many FORWARDs.
pub const MAX_PAGER_HOPS: u32 = 8;

/// The page data a DATA supply can carry (the most message data, less the
/// reply header and the [`PageSupply`]).
pub const PAGE_SUPPLY_DATA: usize = 4095 - REPLY_PAYLOAD_OFFSET - 16;

/// MEMORY_DIRECT: a memory object over the physical range
/// `[physical, physical + length)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DirectRequest {
    /// Page-aligned physical address.
    pub physical: u64,
    /// Bytes, a non-zero multiple of [`crate::PAGE_SIZE`].
    pub length: u64,
}

/// The physical addresses MEMORY_DIRECT accepts end at or below this
/// (x86_64's architectural limit of 52 physical address bits).
pub const PHYSICAL_END: u64 = 1 << 52;

/// MACHINE_INFO's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct MachineInfo {
    /// The physical address of the ACPI RSDP (from the boot path, or found
    /// in the BIOS area), 0 when there is none.
    pub rsdp: u64,
}

/// IO_PORT_GRANT: lets `process` use the I/O ports `[first, first + count)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct IoPortRequest {
    /// A process handle of the caller's (it needs SEND), or 0 for the
    /// caller's own process.
    pub process: u32,
    /// The first port.
    pub first: u16,
    /// How many ports, at least 1; `first + count` at most 65,536.
    pub count: u16,
}

/// The most port ranges one process may be granted (IO_PORT_GRANT).
pub const MAX_IO_RANGES: usize = 8;

/// The I/O ports the kernel keeps for its own console (COM1): never granted.
pub const KERNEL_CONSOLE_PORTS: core::ops::Range<u32> = 0x3f8..0x400;

/// INTERRUPT_CREATE: delivers ISA interrupt `line` to `event`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct InterruptRequest {
    /// An ISA interrupt line, below [`ISA_INTERRUPT_LINES`].
    pub line: u32,
    /// An event of the caller's with the SIGNAL right: each delivery
    /// signals it once.
    pub event: u32,
}

/// The interrupt lines INTERRUPT_CREATE accepts: the 16 ISA lines.
pub const ISA_INTERRUPT_LINES: u32 = 16;

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

/// PROCESS_MAP: maps `length` bytes of the memory object `memory` (a
/// descriptor of the caller's) from `offset` at `address` in the target
/// process, with `protection`: the child may never PROTECT it wider
/// (ABI.md §6.8).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessMapRequest {
    /// Where in the target (page-aligned, not 0: the loader places).
    pub address: u64,
    /// Where in the object (page-aligned).
    pub offset: u64,
    /// How many bytes (page-aligned, not 0).
    pub length: u64,
    /// The caller's descriptor of the memory object.
    pub memory: u32,
    /// Protection bits (`protection`), READ among them.
    pub protection: u32,
}

/// PROCESS_START: the created process's first thread starts at `entry`
/// with rsp = `stack_pointer`, rdi = `argument_address`, rsi =
/// `argument_length` and rdx = the number of descriptors PROCESS_CREATE
/// gave it (ABI.md §7).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessStartRequest {
    /// The user address the thread starts at.
    pub entry: u64,
    /// Its initial stack pointer (user address, 16-byte aligned).
    pub stack_pointer: u64,
    /// Passed in rdi: where the argument bytes are in the process.
    pub argument_address: u64,
    /// Passed in rsi: how many argument bytes there are.
    pub argument_length: u64,
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

/// The most bytes one DEBUG_WRITE may carry (`BAD_SIZES` beyond): the
/// kernel writes them to a polled serial port with interrupts off, so a
/// write is kept short (256 bytes take about 22 ms at 115200 baud).
pub const MAX_DEBUG_WRITE: usize = 256;

/// What the kernel console shows before each line of user output
/// (DEBUG_WRITE), so that no program can pass a line off as the kernel's:
/// the kernel's own lines start with `hinge: `.
pub const USER_OUTPUT_MARK: &str = "| ";

/// LOG_TAKE: the kernel's lines go to its log ring from now on, and each
/// time lines arrive `event` is signalled (ABI.md §6.7).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct LogTakeRequest {
    /// An event of the caller's with the SIGNAL right.
    pub event: u32,
    /// Zero.
    pub reserved: u32,
}

impl LogTakeRequest {
    /// LOG_TAKE's request: lines arriving signal `event`.
    pub const fn new(event: Descriptor) -> Self {
        LogTakeRequest {
            event: event.0,
            reserved: 0,
        }
    }
}

/// LOG_READ's reply header; the lines follow it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct LogReadReply {
    /// Whole lines in the reply (each ends with `\n`); msgRetVal holds
    /// their bytes.
    pub lines: u32,
    /// Lines the ring dropped, oldest first, since the last LOG_READ
    /// (it never blocks the kernel: a full ring makes room).
    pub lost: u32,
}

/// The bytes of the kernel's log ring (LOG_TAKE): lines beyond it push
/// the oldest out, counted as lost.
pub const LOG_RING_BYTES: usize = 16384;

/// The longest line of the kernel log, its `\n` included: a longer one is
/// cut into lines of this length.
pub const MAX_LOG_LINE: usize = 256;

/// The most line bytes one LOG_READ returns; its buffer must have room for
/// the reply header and [`MAX_LOG_LINE`] bytes (`BAD_SIZES` otherwise).
pub const MAX_LOG_READ: usize = 2048;

/// THREAD_AFFINITY's request: the CPUs the calling thread may run on.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct AffinityRequest {
    /// A bit per CPU index (bit 0: the boot CPU); bits of CPUs that are
    /// not online are ignored, but at least one online CPU must be named
    /// (NO_SUCH_CPU).
    pub mask: u64,
}

impl AffinityRequest {
    /// The CPUs of `mask`.
    pub const fn new(mask: u64) -> Self {
        AffinityRequest { mask }
    }
}

/// CPU_COUNTERS's request: which CPU.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct CpuRequest {
    /// The CPU's index (0: the boot CPU; NO_SUCH_CPU past the last online).
    pub cpu: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

impl CpuRequest {
    /// CPU `cpu`.
    pub const fn new(cpu: u32) -> Self {
        CpuRequest { cpu, reserved: 0 }
    }
}

/// CPU_COUNTERS's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct CpuCountersReply {
    /// How many times the CPU switched to a user thread since boot (a trap
    /// that returns to the thread that made it is no switch).
    pub dispatches: u64,
    /// How many CPUs are online (run user threads).
    pub online: u32,
    /// The index of the CPU the caller ran on when it called.
    pub caller_cpu: u32,
    /// How many CPUs ran a user thread at the call, the caller's included.
    pub running: u32,
    /// How many threads were ready to run and running nowhere at the call.
    /// (With `running` 1, zero means every other thread of the system was
    /// blocked: the conformance runner's sentinel waits for that.)
    pub ready: u32,
}

/// CLOCK's reply payload: the kernel's monotonic clock.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ClockReply {
    /// Timer ticks since the first process started; never decreases. A
    /// thread can be preempted only at a tick, so two readings that agree
    /// prove nothing else ran on the CPU between them but what the thread
    /// itself handed it to.
    pub ticks: u64,
    /// Ticks per second.
    pub hz: u32,
    /// Zero.
    pub reserved: u32,
}

/// A length field of a request: the length of `bytes`, or `u32::MAX`
/// (which no kernel check accepts) for a slice longer than a message.
pub(crate) fn length_of(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}

/// Writes `header`, then each of `tails`, at the start of `out`; the bytes
/// written, or `None` (and `out` unspecified) when they do not fit.
pub(crate) fn encode_into(header: &[u8], tails: &[&[u8]], out: &mut [u8]) -> Option<usize> {
    let mut at = 0;
    for part in core::iter::once(header).chain(tails.iter().copied()) {
        let end = at + part.len();
        out.get_mut(at..end)?.copy_from_slice(part);
        at = end;
    }
    Some(at)
}

impl ClockReply {
    /// The clock reading `ticks` of a timer running at `hz`.
    pub const fn new(ticks: u64, hz: u32) -> Self {
        ClockReply {
            ticks,
            hz,
            reserved: 0,
        }
    }
}

impl DescriptorRequest {
    /// A request naming `descriptor`, with `rights` (zero but for DUPLICATE).
    pub const fn new(descriptor: Descriptor, rights: Rights) -> Self {
        DescriptorRequest {
            descriptor: descriptor.0,
            rights: rights.0,
        }
    }
}

/// CLOSE's request.
pub const fn close(descriptor: Descriptor) -> DescriptorRequest {
    DescriptorRequest::new(descriptor, Rights::NONE)
}

/// DUPLICATE's request: a copy of `descriptor` with `rights`.
pub const fn duplicate(descriptor: Descriptor, rights: Rights) -> DescriptorRequest {
    DescriptorRequest::new(descriptor, rights)
}

/// DESCRIPTOR_INFO's request.
pub const fn descriptor_info(descriptor: Descriptor) -> DescriptorRequest {
    DescriptorRequest::new(descriptor, Rights::NONE)
}

/// MANAGER_REGISTER's request: the owner reference of procman's door.
pub const fn manager_register(door: Descriptor) -> DescriptorRequest {
    DescriptorRequest::new(door, Rights::NONE)
}

impl ThreadCreateRequest {
    /// A thread starting at `entry` with `stack_top`, `argument` in rdi,
    /// at `priority`.
    pub const fn new(entry: u64, stack_top: u64, argument: u64, priority: u32) -> Self {
        ThreadCreateRequest {
            entry,
            stack_top,
            argument,
            priority,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        ThreadCreateRequest { reserved, ..self }
    }
}

impl ExitRequest {
    /// THREAD_EXIT, PROCESS_EXIT or DEBUG_EXIT with `code`.
    pub const fn new(code: u32) -> Self {
        ExitRequest { code, reserved: 0 }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        ExitRequest { reserved, ..self }
    }
}

impl MapRequest {
    /// A range of `length` bytes at `address` with `protection` bits.
    pub const fn new(address: u64, length: u64, protection: u32) -> Self {
        MapRequest {
            address,
            length,
            protection,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        MapRequest { reserved, ..self }
    }
}

/// MAP_ANONYMOUS's request (`address` 0: the kernel chooses).
pub const fn map_anonymous(address: u64, length: u64, protection: u32) -> MapRequest {
    MapRequest::new(address, length, protection)
}

/// UNMAP's request.
pub const fn unmap(address: u64, length: u64) -> MapRequest {
    MapRequest::new(address, length, 0)
}

/// PROTECT's request.
pub const fn protect(address: u64, length: u64, protection: u32) -> MapRequest {
    MapRequest::new(address, length, protection)
}

impl MemoryCreateRequest {
    /// MEMORY_CREATE's request: `pages` pages.
    pub const fn new(pages: u32) -> Self {
        MemoryCreateRequest { pages, reserved: 0 }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        MemoryCreateRequest { reserved, ..self }
    }
}

impl PageRequest {
    /// The PAGE_REQUEST the kernel builds: page `offset` of the object whose
    /// pager gave it `cookie`, asked for `access` after `hops` forwards.
    pub const fn new(cookie: u64, offset: u64, access: u32, hops: u32) -> Self {
        PageRequest {
            cookie,
            offset,
            access,
            hops,
        }
    }
}

impl PagerCreateRequest {
    /// PAGER_CREATE's request: `pages` pages, `cookie` for the pager.
    pub const fn new(pages: u32, cookie: u64) -> Self {
        PagerCreateRequest {
            pages,
            reserved: 0,
            cookie,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        PagerCreateRequest { reserved, ..self }
    }
}

impl PageSupply {
    /// A DATA supply (the page's first bytes follow the header).
    pub const fn data() -> Self {
        PageSupply {
            how: page_supply::DATA,
            descriptor: 0,
            offset: 0,
        }
    }

    /// A FRAME supply: page `offset` of the pager's memory object `descriptor`.
    pub const fn frame(descriptor: crate::Descriptor, offset: u64) -> Self {
        PageSupply {
            how: page_supply::FRAME,
            descriptor: descriptor.0,
            offset,
        }
    }

    /// A FORWARD to the pager behind the door `descriptor`.
    pub const fn forward(descriptor: crate::Descriptor) -> Self {
        PageSupply {
            how: page_supply::FORWARD,
            descriptor: descriptor.0,
            offset: 0,
        }
    }
}

impl MemoryMapRequest {
    /// MEMORY_MAP's request: `length` bytes of the object from `offset` at
    /// `address` (0: the kernel chooses) with `protection`.
    pub const fn new(address: u64, offset: u64, length: u64, protection: u32) -> Self {
        MemoryMapRequest {
            address,
            offset,
            length,
            protection,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        MemoryMapRequest { reserved, ..self }
    }
}

impl MemoryRangeRequest {
    /// MEMORY_COW's request: the object's bytes `[offset, offset + length)`.
    pub const fn new(offset: u64, length: u64) -> Self {
        MemoryRangeRequest { offset, length }
    }
}

impl DirectRequest {
    /// MEMORY_DIRECT's request: the physical range `[physical, physical + length)`.
    pub const fn new(physical: u64, length: u64) -> Self {
        DirectRequest { physical, length }
    }
}

impl IoPortRequest {
    /// IO_PORT_GRANT's request: `count` ports from `first` for the process
    /// `process` names (`Descriptor::NULL`: the caller's own).
    pub const fn new(process: Descriptor, first: u16, count: u16) -> Self {
        IoPortRequest {
            process: process.0,
            first,
            count,
        }
    }
}

impl InterruptRequest {
    /// INTERRUPT_CREATE's request: ISA `line` signals `event`.
    pub const fn new(line: u32, event: Descriptor) -> Self {
        InterruptRequest {
            line,
            event: event.0,
        }
    }
}

impl DoorCreateRequest {
    /// A user door (or, with `system`, a system door) of `security_type`.
    pub const fn new(system: bool, security_type: u32) -> Self {
        Self::with_kind_number(system as u32, security_type)
    }

    /// A request whose kind field is `system`, any number (0 and 1 are the
    /// defined ones; others make a malformed request).
    pub const fn with_kind_number(system: u32, security_type: u32) -> Self {
        DoorCreateRequest {
            system,
            security_type,
        }
    }
}

impl ProcessMapRequest {
    /// Map `length` bytes of `memory` from `offset` at `address` with
    /// `protection`.
    pub const fn new(
        memory: Descriptor,
        address: u64,
        offset: u64,
        length: u64,
        protection: u32,
    ) -> Self {
        ProcessMapRequest {
            address,
            offset,
            length,
            memory: memory.0,
            protection,
        }
    }
}

impl ProcessStartRequest {
    /// Start at `entry` with `stack_pointer`, the argument bytes at
    /// `argument_address` (`argument_length` of them).
    pub const fn new(
        entry: u64,
        stack_pointer: u64,
        argument_address: u64,
        argument_length: u64,
    ) -> Self {
        ProcessStartRequest {
            entry,
            stack_pointer,
            argument_address,
            argument_length,
        }
    }
}

impl CookieRequest {
    /// PROCESS_SET_COOKIE's request.
    pub const fn new(cookie: u64) -> Self {
        CookieRequest { cookie }
    }
}

impl SpawnRequest {
    /// The header announcing `name` and `arguments`.
    pub fn new(name: &[u8], arguments: &[u8]) -> Self {
        Self::with_lengths(length_of(name), length_of(arguments))
    }

    /// A header announcing these lengths, whatever follows it (a request
    /// whose lengths disagree with its data size is malformed).
    pub const fn with_lengths(name_length: u32, argument_length: u32) -> Self {
        SpawnRequest {
            name_length,
            argument_length,
        }
    }

    /// Writes the whole request data, header, `name`, then `arguments`,
    /// into `out`; its length, or `None` when it does not fit.
    pub fn encode(name: &[u8], arguments: &[u8], out: &mut [u8]) -> Option<usize> {
        encode_into(
            Self::new(name, arguments).as_bytes(),
            &[name, arguments],
            out,
        )
    }
}

impl ArchiveReadRequest {
    /// The header reading `name` from `offset`.
    pub fn new(name: &[u8], offset: u64) -> Self {
        Self::with_name_length(length_of(name), offset)
    }

    /// A header announcing `name_length` bytes of name, whatever follows it.
    pub const fn with_name_length(name_length: u32, offset: u64) -> Self {
        ArchiveReadRequest {
            offset,
            name_length,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        ArchiveReadRequest { reserved, ..self }
    }

    /// Writes the whole request data, header then `name`, into `out`; its
    /// length, or `None` when it does not fit.
    pub fn encode(name: &[u8], offset: u64, out: &mut [u8]) -> Option<usize> {
        encode_into(Self::new(name, offset).as_bytes(), &[name], out)
    }
}

/// Shared memory objects (SMOs, ABI.md §6.5): Sartoris' sharing by copy.
pub mod smo {
    /// The target may read the SMO (SMO_READ).
    pub const READ: u32 = 1 << 0;
    /// The target may write the SMO (SMO_WRITE).
    pub const WRITE: u32 = 1 << 1;
    /// Every permission bit; the others are reserved.
    pub const ALL: u32 = READ | WRITE;
    /// The most bytes one SMO_READ or SMO_WRITE copies, so no call holds
    /// the CPU long; `userlib` splits larger copies into such calls.
    pub const MAX_COPY: u64 = 64 * 1024;
    /// Kernel memory an SMO costs its creator.
    pub const COST: u64 = 64;
    /// SMO ids are below this (31 bits: a Sartoris `int`, never -1).
    pub const ID_LIMIT: u32 = 1 << 31;
}

/// SMO_SHARE: share `[address, address + size)` of the caller's memory
/// with the process whose id is `target`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SmoShareRequest {
    /// The target's process id (procman's, §6.5).
    pub target: u64,
    /// Where the shared bytes start in the caller's space (any alignment).
    pub address: u64,
    /// How many bytes, non-zero.
    pub size: u64,
    /// [`smo`] permission bits, at least one.
    pub permissions: u32,
    /// Zero.
    pub reserved: u32,
}

/// SMO_SHARE's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SmoReply {
    /// The new SMO's id (below [`smo::ID_LIMIT`]).
    pub id: u32,
    /// Zero.
    pub reserved: u32,
}

/// SMO_CLAIM: the SMO `id`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SmoRequest {
    /// The SMO's id.
    pub id: u32,
    /// Zero.
    pub reserved: u32,
}

/// SMO_PASS: SMO `id` gets the process `target` as its target.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SmoPassRequest {
    /// The new target's process id.
    pub target: u64,
    /// The SMO's id.
    pub id: u32,
    /// Zero.
    pub reserved: u32,
}

/// SMO_READ and SMO_WRITE: `size` bytes at `offset` of SMO `id`, to or
/// from the caller's `address`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SmoCopyRequest {
    /// The SMO's id.
    pub id: u32,
    /// Zero.
    pub reserved: u32,
    /// Offset into the SMO.
    pub offset: u64,
    /// Bytes, at most [`smo::MAX_COPY`].
    pub size: u64,
    /// The caller's buffer: written by SMO_READ, read by SMO_WRITE.
    pub address: u64,
}

/// PROCESS_ID's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessIdReply {
    /// The caller's process id (0: procman gave it none).
    pub id: u64,
}

impl SmoShareRequest {
    /// SMO_SHARE's request.
    pub const fn new(target: u64, address: u64, size: u64, permissions: u32) -> Self {
        SmoShareRequest {
            target,
            address,
            size,
            permissions,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        SmoShareRequest { reserved, ..self }
    }
}

impl SmoReply {
    /// SMO_SHARE's reply: the new SMO's `id`.
    pub const fn new(id: u32) -> Self {
        SmoReply { id, reserved: 0 }
    }
}

impl SmoRequest {
    /// SMO_CLAIM's request.
    pub const fn new(id: u32) -> Self {
        SmoRequest { id, reserved: 0 }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        SmoRequest { reserved, ..self }
    }
}

impl SmoPassRequest {
    /// SMO_PASS's request.
    pub const fn new(id: u32, target: u64) -> Self {
        SmoPassRequest {
            target,
            id,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        SmoPassRequest { reserved, ..self }
    }
}

impl SmoCopyRequest {
    /// SMO_READ's or SMO_WRITE's request.
    pub const fn new(id: u32, offset: u64, size: u64, address: u64) -> Self {
        SmoCopyRequest {
            id,
            reserved: 0,
            offset,
            size,
            address,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        SmoCopyRequest { reserved, ..self }
    }
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
        assert_eq!(core::mem::size_of::<AffinityRequest>(), 8);
        assert_eq!(core::mem::size_of::<CpuRequest>(), 8);
        assert_eq!(core::mem::size_of::<CpuCountersReply>(), 24);
        assert_eq!(core::mem::size_of::<MemoryCreateRequest>(), 8);
        assert_eq!(core::mem::size_of::<MemoryMapRequest>(), 32);
        assert_eq!(core::mem::size_of::<MemoryRangeRequest>(), 16);
        assert_eq!(core::mem::size_of::<MemoryInfo>(), 16);
        assert_eq!(core::mem::size_of::<DirectRequest>(), 16);
        assert_eq!(core::mem::size_of::<IoPortRequest>(), 8);
        assert_eq!(core::mem::size_of::<InterruptRequest>(), 8);
        assert_eq!(core::mem::size_of::<MachineInfo>(), 8);
        assert_eq!(core::mem::size_of::<PagerCreateRequest>(), 16);
        assert_eq!(core::mem::size_of::<PageRequest>(), 24);
        assert_eq!(core::mem::size_of::<PageSupply>(), 16);
        assert_eq!(PAGE_SUPPLY_DATA, 4071);
        assert_eq!(core::mem::size_of::<SmoShareRequest>(), 32);
        assert_eq!(core::mem::size_of::<SmoReply>(), 8);
        assert_eq!(core::mem::size_of::<SmoRequest>(), 8);
        assert_eq!(core::mem::size_of::<SmoPassRequest>(), 16);
        assert_eq!(core::mem::size_of::<SmoCopyRequest>(), 32);
        assert_eq!(core::mem::size_of::<ProcessIdReply>(), 8);
    }

    #[test]
    fn constructors_fill_every_field() {
        assert_eq!(
            duplicate(Descriptor(7), Rights::SEND),
            DescriptorRequest {
                descriptor: 7,
                rights: 1
            }
        );
        assert_eq!(close(Descriptor(3)).rights, 0);
        assert_eq!(
            unmap(0x1000, 0x2000),
            MapRequest {
                address: 0x1000,
                length: 0x2000,
                protection: 0,
                reserved: 0
            }
        );
        assert_eq!(DoorCreateRequest::new(true, 9).system, 1);
        assert_eq!(ExitRequest::new(4).with_reserved(1).reserved, 1);
    }

    #[test]
    fn variable_requests_are_header_then_bytes() {
        let mut out = [0u8; 32];
        let length = SpawnRequest::encode(b"echo", b"ab", &mut out);
        assert_eq!(length, Some(14));
        assert_eq!(&out[..14], b"\x04\0\0\0\x02\0\0\0echoab");
        assert_eq!(SpawnRequest::encode(b"echo", b"ab", &mut out[..13]), None);
        let length = ArchiveReadRequest::encode(b"init", 5, &mut out);
        assert_eq!(length, Some(20));
        assert_eq!(&out[..20], b"\x05\0\0\0\0\0\0\0\x04\0\0\0\0\0\0\0init");
    }

    proptest::proptest! {
        /// Every encoder's bytes decode back to the typed values it was given.
        #[test]
        fn encoders_round_trip(
            a in proptest::prelude::any::<u64>(),
            b in proptest::prelude::any::<u64>(),
            c in proptest::prelude::any::<u64>(),
            d in proptest::prelude::any::<u32>(),
            name in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            arguments in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let request = DescriptorRequest::read_from_bytes(duplicate(Descriptor(d), Rights(d)).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.descriptor, r.rights)), Some((d, d)));
            let request = ThreadCreateRequest::read_from_bytes(ThreadCreateRequest::new(a, b, c, d).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.entry, r.stack_top, r.argument, r.priority, r.reserved)), Some((a, b, c, d, 0)));
            let request = MapRequest::read_from_bytes(protect(a, b, d).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.address, r.length, r.protection, r.reserved)), Some((a, b, d, 0)));
            let request = CookieRequest::read_from_bytes(CookieRequest::new(a).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| r.cookie), Some(a));
            let request = MemoryCreateRequest::read_from_bytes(MemoryCreateRequest::new(d).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.pages, r.reserved)), Some((d, 0)));
            let request = MemoryMapRequest::read_from_bytes(MemoryMapRequest::new(a, b, c, d).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.address, r.offset, r.length, r.protection, r.reserved)), Some((a, b, c, d, 0)));
            let request = MemoryRangeRequest::read_from_bytes(MemoryRangeRequest::new(a, b).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.offset, r.length)), Some((a, b)));
            let request = DirectRequest::read_from_bytes(DirectRequest::new(a, b).as_bytes()).ok();
            proptest::prop_assert_eq!(request.map(|r| (r.physical, r.length)), Some((a, b)));
            let mut out = [0u8; 96];
            let length = SpawnRequest::encode(&name, &arguments, &mut out);
            proptest::prop_assert_eq!(length, Some(8 + name.len() + arguments.len()));
            let header = SpawnRequest::read_from_prefix(&out).ok().map(|(h, _)| h).unwrap_or_default();
            proptest::prop_assert_eq!(header.name_length as usize, name.len());
            proptest::prop_assert_eq!(header.argument_length as usize, arguments.len());
            proptest::prop_assert_eq!(&out[8..8 + name.len()], &name[..]);
            proptest::prop_assert_eq!(&out[8 + name.len()..8 + name.len() + arguments.len()], &arguments[..]);
            let length = ArchiveReadRequest::encode(&name, a, &mut out);
            proptest::prop_assert_eq!(length, Some(16 + name.len()));
            let header = ArchiveReadRequest::read_from_prefix(&out).ok().map(|(h, _)| h).unwrap_or_default();
            proptest::prop_assert_eq!((header.offset, header.name_length as usize, header.reserved), (a, name.len(), 0));
            proptest::prop_assert_eq!(&out[16..16 + name.len()], &name[..]);
        }
    }
}
