//! Every error the kernel reports, as one numbered, named, documented value.
//!
//! A failed trap returns `arg0 = -1` (`INVALID`), `arg1 = error number`,
//! and data size 0 in `arg3` (ABI.md §3 lists the two exceptions' arg2 and
//! arg3). A server's error reply uses the same first two words
//! (`msgRetVal = -1`, `msgErrno = n`) but always carries at least 8 bytes
//! of data, so `arg3`'s data size tells the two apart (ABI.md §3).
//!
//! Kernel errors are numbered 1-255. Servers' own error numbers start at
//! [`FIRST_SERVER_ERROR`] so they never collide with these.

/// The first error number servers may define for themselves.
pub const FIRST_SERVER_ERROR: u32 = 0x1000;

macro_rules! errors {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal, $label:literal, $text:literal; )*) => {
        /// A kernel error. `as u32` gives the number carried in `arg1`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Error {
            $( $(#[doc = $doc])* $name = $value, )*
        }

        impl Error {
            /// Every error, in numeric order.
            pub const ALL: &'static [Error] = &[$(Error::$name),*];

            /// The error with number `value`, if there is one.
            pub const fn from_number(value: u32) -> Option<Error> {
                match value {
                    $( $value => Some(Error::$name), )*
                    _ => None,
                }
            }

            /// The error's stable name, as written in ABI.md (e.g. `BAD_DESCRIPTOR`).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Error::$name => $label, )*
                }
            }

            /// A one-line, human-readable description.
            pub const fn description(self) -> &'static str {
                match self {
                    $( Error::$name => $text, )*
                }
            }
        }
    };
}

errors! {
    /// `arg0` is -1, or a kernel function number that does not exist.
    InvalidFunction = 1, "INVALID_FUNCTION", "invalid or unknown function number";
    /// A reserved bit in `arg0`, `arg1` or `arg3`, or a reserved field in a
    /// request or descriptor slot, is not zero.
    ReservedBits = 2, "RESERVED_BITS", "reserved bits are not zero";
    /// The target or argument descriptor is not open in the caller's table.
    BadDescriptor = 3, "BAD_DESCRIPTOR", "no such descriptor";
    /// The descriptor names an object of the wrong kind for this operation.
    WrongObjectType = 4, "WRONG_OBJECT_TYPE", "descriptor names the wrong kind of object";
    /// The function number is outside the range the target accepts.
    FunctionOutOfRange = 5, "FUNCTION_OUT_OF_RANGE", "function number not accepted by this target";
    /// The descriptor lacks a right the operation needs.
    MissingRight = 6, "MISSING_RIGHT", "descriptor lacks the required right";
    /// `msgDataSize`, the padding and `msgDescN` slots do not fit in
    /// `msgTotalSize`, or a size field is not allowed for this operation.
    BadSizes = 7, "BAD_SIZES", "message sizes do not fit the buffer";
    /// The buffer is not entirely mapped user memory with the access the
    /// operation needs (null, kernel half, unmapped, or read-only where the
    /// kernel must write).
    BadBuffer = 8, "BAD_BUFFER", "message buffer is not accessible user memory";
    /// RECEIVE on a descriptor that is not the owner reference of a door.
    NotOwner = 9, "NOT_OWNER", "descriptor is not the owner reference of the object";
    /// REPLY while this thread holds no received, unreplied message.
    NothingToReply = 10, "NOTHING_TO_REPLY", "no received message is waiting for a reply";
    /// The reply does not fit the sender's buffer; the sender stays blocked.
    ReplyTooLarge = 11, "REPLY_TOO_LARGE", "reply does not fit the sender's buffer";
    /// The message does not fit the receive buffer; it stays queued and
    /// `arg3` carries its sizes.
    ReceiveBufferTooSmall = 12, "RECEIVE_BUFFER_TOO_SMALL", "message does not fit the receive buffer";
    /// The object's owner closed it or died while the call was queued or in service.
    PeerDied = 13, "PEER_DIED", "the server or object went away";
    /// The caller of the message being replied to was cancelled (it died).
    CallerGone = 14, "CALLER_GONE", "the caller of this message is gone";
    /// The server thread received another message without replying to this one.
    Abandoned = 15, "ABANDONED", "the server received again without replying";
    /// A descriptor slot has an unknown transfer mode.
    BadSlot = 16, "BAD_SLOT", "malformed descriptor slot";
    /// A descriptor slot grants rights its descriptor does not hold.
    RightsExceeded = 17, "RIGHTS_EXCEEDED", "slot grants rights the sender does not hold";
    /// A descriptor slot names a descriptor without the TRANSFER right, or
    /// tries to copy a RECEIVE right (owner references can only be moved).
    NotTransferable = 18, "NOT_TRANSFERABLE", "descriptor may not be transferred this way";
    /// The receiving table has no room for the transferred descriptors.
    TableFull = 19, "TABLE_FULL", "descriptor table is full";
    /// The process reached its kernel-memory limit, or memory ran out.
    OutOfMemory = 20, "OUT_OF_MEMORY", "kernel memory limit reached";
    /// A kernel function's argument is out of range or inconsistent.
    InvalidArgument = 21, "INVALID_ARGUMENT", "invalid argument";
    /// The same descriptor appears in two slots of one message and one of
    /// them moves it.
    DuplicateSlot = 22, "DUPLICATE_SLOT", "descriptor moved twice in one message";
    /// The kernel refuses the operation in this configuration (DEBUG_EXIT
    /// without `qemu-exit` on the command line).
    NotPermitted = 23, "NOT_PERMITTED", "operation not permitted";
    /// An address range overlaps an existing mapping or leaves the user half.
    BadAddressRange = 24, "BAD_ADDRESS_RANGE", "address range not available";
    /// The operation would block and the caller asked not to.
    WouldBlock = 25, "WOULD_BLOCK", "operation would block";
    /// MEMORY_DIRECT named a physical range that holds RAM the kernel owns
    /// (usable RAM, the kernel image and boot modules, the boot loader's
    /// structures).
    KernelRam = 26, "KERNEL_RAM", "physical range holds RAM the kernel owns";
    /// IO_PORT_GRANT named a port the kernel keeps for its own device (the
    /// COM1 console, `kcall::KERNEL_CONSOLE_PORTS`).
    KernelDevice = 32, "KERNEL_DEVICE", "the kernel keeps this device for itself";
    /// INTERRUPT_CREATE named a line that an interrupt object already holds.
    LineTaken = 33, "LINE_TAKEN", "the interrupt line is already delivered elsewhere";
    /// An SMO function named a process id (procman's, ABI.md §6.5) that no
    /// live process has: 0, an ended process's, or one given to more than
    /// one live process.
    NoSuchProcessId = 48, "NO_SUCH_PROCESS_ID", "no live process has that process id";
    /// No SMO has that id: never created, claimed, or its owner ended.
    NoSuchSmo = 49, "NO_SUCH_SMO", "no such shared memory object";
    /// SMO_READ, SMO_WRITE or SMO_PASS by a process that is not the SMO's
    /// current target.
    NotSmoTarget = 50, "NOT_SMO_TARGET", "the caller is not the SMO's target";
    /// SMO_CLAIM by a process that did not create the SMO.
    NotSmoOwner = 51, "NOT_SMO_OWNER", "the caller did not create the SMO";
    /// SMO_READ or SMO_WRITE of bytes past the SMO's end.
    SmoOutOfBounds = 52, "SMO_OUT_OF_BOUNDS", "range past the end of the SMO";
    /// The owner's memory under the SMO is no longer mapped with the access
    /// the copy needs (unmapped, or made read-only, after sharing).
    SmoRegionGone = 53, "SMO_REGION_GONE", "the SMO's memory is no longer mapped";
    /// THREAD_AFFINITY with a mask naming no online CPU, or CPU_COUNTERS
    /// of a CPU index that is not online (ABI.md §6.9).
    NoSuchCpu = 66, "NO_SUCH_CPU", "no online CPU has that index or mask";
    /// PROCESS_MAP or PROCESS_START on a process that already runs: a
    /// loader builds a process before its first thread, never after
    /// (ABI.md §6.8, D57).
    ProcessStarted = 70, "PROCESS_STARTED", "the process has already started";
    /// LOG_TAKE while a kernel-log object already exists: one reader
    /// holds the kernel's log at a time (ABI.md §6.7, D43).
    LogTaken = 60, "LOG_TAKEN", "the kernel log is already taken";
    /// A blocked SEND, RECEIVE, REPLY_RECEIVE (its receive half) or
    /// EVENT_WAIT was interrupted (THREAD_INTERRUPT, ABI.md §6.10), or a
    /// call that would block found an interruption pending. `arg2` says
    /// what was done: 0 nothing (a SEND withdrawn before any server saw
    /// it), `REPLY_DELIVERED` (REPLY_RECEIVE's reply half), `CALL_RECEIVED`
    /// (a SEND the server had received; its REPLY gets CALLER_GONE).
    Interrupted = 71, "INTERRUPTED", "the call was interrupted before it completed";
    /// UPCALL_RETURN with a frame whose saved RIP or RSP is not a user
    /// address (ABI.md §6.10): nothing changed.
    BadUpcallFrame = 72, "BAD_UPCALL_FRAME", "the upcall frame does not hold user-mode state";
    /// THREAD_INTERRUPT with a signal number above 63 (ABI.md §6.10).
    NoSuchSignal = 73, "NO_SUCH_SIGNAL", "no signal has that number";
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_descriptions_are_distinct() {
        for (i, a) in Error::ALL.iter().enumerate() {
            assert_eq!(Error::from_number(*a as u32), Some(*a));
            assert!((*a as u32) > 0 && (*a as u32) < FIRST_SERVER_ERROR);
            for b in &Error::ALL[i + 1..] {
                assert_ne!(*a as u32, *b as u32);
                assert_ne!(a.name(), b.name());
                assert_ne!(a.description(), b.description());
            }
        }
        assert_eq!(Error::from_number(0), None);
        assert_eq!(Error::from_number(FIRST_SERVER_ERROR), None);
    }
}
