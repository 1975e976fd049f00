//! Function numbers (`arg0` of SEND) and the ranges that route them.
//!
//! | range | meaning |
//! | --- | --- |
//! | `0x0000-0x03FF` | kernel functions, including RECEIVE, REPLY, REPLY_RECEIVE |
//! | `0x0400-0x0FFF` | process-manager functions (NULL target -> procman) |
//! | `0x1000-0x7FFF` | SYSTEM_BASE: the only numbers a *system* door accepts |
//! | `0x8000-0x7FFFFFFF` | USER_BASE: the only numbers a *user* door accepts |
//! | `-1` | INVALID: never accepted; the value of `arg0` on every error return |
//! | other negatives | invalid as well |

/// The function number of a call, as carried in the low 32 bits of `arg0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Function(pub i32);

/// `-1`: never a valid function; `arg0` of every failed trap.
pub const INVALID: Function = Function(-1);
/// Waits for a message on an owned door.
pub const RECEIVE: Function = Function(0x001);
/// Answers the message this thread received.
pub const REPLY: Function = Function(0x002);
/// REPLY, then RECEIVE, in one trap.
pub const REPLY_RECEIVE: Function = Function(0x003);

/// First kernel function number.
pub const KERNEL_BASE: i32 = 0x0000;
/// First process-manager function number.
pub const PROCESS_MANAGER_BASE: i32 = 0x0400;
/// First number a system door accepts.
pub const SYSTEM_BASE: i32 = 0x1000;
/// First number a user door accepts.
pub const USER_BASE: i32 = 0x8000;

/// The range a function number falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionRange {
    /// `0x0-0x3FF`: handled by the kernel.
    Kernel,
    /// `0x400-0xFFF`: handled by the process manager.
    ProcessManager,
    /// `0x1000-0x7FFF`: system doors.
    System,
    /// `0x8000+`: user doors.
    User,
    /// Negative numbers, `-1` included.
    Invalid,
}

impl Function {
    /// `arg0` for this function: its 32 bits, the upper half zero.
    pub const fn bits(self) -> u64 {
        self.0 as u32 as u64
    }

    /// The range this number falls in.
    pub const fn range(self) -> FunctionRange {
        match self.0 {
            i32::MIN..=-1 => FunctionRange::Invalid,
            KERNEL_BASE..PROCESS_MANAGER_BASE => FunctionRange::Kernel,
            PROCESS_MANAGER_BASE..SYSTEM_BASE => FunctionRange::ProcessManager,
            SYSTEM_BASE..USER_BASE => FunctionRange::System,
            USER_BASE..=i32::MAX => FunctionRange::User,
        }
    }

    /// The kernel function this number names, if any.
    pub const fn kernel_function(self) -> Option<KernelFunction> {
        KernelFunction::from_number(self.0)
    }
}

macro_rules! kernel_functions {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal, $label:literal; )*) => {
        /// The kernel functions (range `0x0-0x3FF`). RECEIVE, REPLY and
        /// REPLY_RECEIVE are listed here too: they are the trap's own operations.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum KernelFunction {
            $( $(#[doc = $doc])* $name = $value, )*
        }

        impl KernelFunction {
            /// Every kernel function, in numeric order.
            pub const ALL: &'static [KernelFunction] = &[$(KernelFunction::$name),*];

            /// Each number of the kernel range: its index in [`Self::ALL`],
            /// or `u8::MAX` when unused. A table, so finding a function
            /// (or refusing an unused number) costs the same however many
            /// functions there are and wherever they lie in the range.
            const INDEX: [u8; PROCESS_MANAGER_BASE as usize] = {
                let mut index = [u8::MAX; PROCESS_MANAGER_BASE as usize];
                let mut i = 0;
                while i < Self::ALL.len() {
                    index[Self::ALL[i] as usize] = i as u8;
                    i += 1;
                }
                index
            };

            /// The kernel function with this number.
            pub const fn from_number(value: i32) -> Option<KernelFunction> {
                if value < 0 || value >= PROCESS_MANAGER_BASE {
                    return None;
                }
                match Self::INDEX[value as usize] {
                    u8::MAX => None,
                    i => Some(Self::ALL[i as usize]),
                }
            }

            /// The stable name used in ABI.md.
            pub const fn name(self) -> &'static str {
                match self {
                    $( KernelFunction::$name => $label, )*
                }
            }

            /// The function number.
            pub const fn function(self) -> Function {
                Function(self as i32)
            }
        }
    };
}

kernel_functions! {
    /// Wait for a message on an owned door.
    Receive = 0x001, "RECEIVE";
    /// Answer the received message.
    Reply = 0x002, "REPLY";
    /// Answer, then wait for the next message.
    ReplyReceive = 0x003, "REPLY_RECEIVE";
    /// Close a descriptor (NULL target; `DescriptorRequest`).
    Close = 0x010, "CLOSE";
    /// Duplicate a descriptor with equal or fewer rights (NULL target;
    /// `DescriptorRequest`; the copy comes back in reply slot 0).
    Duplicate = 0x011, "DUPLICATE";
    /// Describe a descriptor (NULL target; `DescriptorRequest` ->
    /// `DescriptorInfo`).
    DescriptorInfo = 0x012, "DESCRIPTOR_INFO";
    /// Start a thread in the caller's process (NULL target;
    /// `ThreadCreateRequest`; the thread's descriptor in reply slot 0).
    ThreadCreate = 0x020, "THREAD_CREATE";
    /// End the calling thread (NULL target; `ExitRequest`; no return).
    ThreadExit = 0x021, "THREAD_EXIT";
    /// End the calling process (NULL target; `ExitRequest`; no return).
    ProcessExit = 0x022, "PROCESS_EXIT";
    /// Give up the rest of the time slice (NULL target).
    Yield = 0x023, "YIELD";
    /// Map zeroed anonymous memory (NULL target; `MapRequest` -> `MapReply`).
    MapAnonymous = 0x030, "MAP_ANONYMOUS";
    /// Unmap a range (NULL target; `MapRequest`, protection ignored, must be 0).
    Unmap = 0x031, "UNMAP";
    /// Change the protection of a mapped range (NULL target; `MapRequest`).
    Protect = 0x032, "PROTECT";
    /// Create an anonymous, zero-filled memory object (NULL target;
    /// `MemoryCreateRequest`; the object in reply slot 0).
    MemoryCreate = 0x033, "MEMORY_CREATE";
    /// Map (part of) a memory object into the caller's space (memory-object
    /// target; `MemoryMapRequest` -> `MapReply`).
    MemoryMap = 0x034, "MEMORY_MAP";
    /// Make a copy-on-write child of (part of) a memory object
    /// (memory-object target; `MemoryRangeRequest`; the child in reply slot 0).
    MemoryCow = 0x035, "MEMORY_COW";
    /// Describe a memory object (memory-object target -> `MemoryInfo`).
    MemoryInfo = 0x036, "MEMORY_INFO";
    /// Create a memory object over a physical range, for MMIO
    /// (machine-control capability target; `DirectRequest`; the object in
    /// reply slot 0).
    MemoryDirect = 0x037, "MEMORY_DIRECT";
    /// Create a special memory object whose pages a pager supplies (door
    /// target, SEND right: the pager's door; `PagerCreateRequest`; the
    /// object in reply slot 0).
    PagerCreate = 0x038, "PAGER_CREATE";
    /// Create a counting event (NULL target; its descriptor in reply slot 0).
    EventCreate = 0x040, "EVENT_CREATE";
    /// Add one to an event's count, waking one waiter (event target, SIGNAL right).
    EventSignal = 0x041, "EVENT_SIGNAL";
    /// Wait until an event's count is positive, then take one (event
    /// target, WAIT right; `msgRetVal` is the count left).
    EventWait = 0x042, "EVENT_WAIT";
    /// Write the message data to the kernel console (NULL target).
    DebugWrite = 0x050, "DEBUG_WRITE";
    /// End the machine with a test verdict (machine-control capability
    /// target; `ExitRequest`; only when the kernel was booted with `qemu-exit`).
    DebugExit = 0x051, "DEBUG_EXIT";
    /// Read kernel counters (NULL target -> `KernelCounters`).
    Counters = 0x052, "COUNTERS";
    /// Read the kernel's clock (NULL target -> `ClockReply`): timer ticks
    /// since boot and their rate.
    Clock = 0x053, "CLOCK";
    /// What the kernel knows of the machine from its boot (machine-control
    /// capability target -> `MachineInfo`): the ACPI RSDP's address.
    MachineInfo = 0x054, "MACHINE_INFO";
    /// Create a door (process-control capability target;
    /// `DoorCreateRequest`; reply slot 0 holds the owner reference, slot 1 a
    /// client reference).
    DoorCreate = 0x060, "DOOR_CREATE";
    /// Start a program from the boot archive (process-control capability
    /// target; `SpawnRequest` followed by the name and the arguments; the
    /// message's descriptor slots are transferred into the child as its
    /// descriptors 1..=n; reply slot 0 holds the process descriptor).
    Spawn = 0x070, "SPAWN";
    /// Set the cookie a process's process-manager calls carry (process-handle
    /// target; `CookieRequest`).
    ProcessSetCookie = 0x071, "PROCESS_SET_COOKIE";
    /// Become the process manager: NULL-target process-manager calls from
    /// then on go to the door whose owner reference is named
    /// (process-control capability target; `DescriptorRequest`).
    ManagerRegister = 0x072, "MANAGER_REGISTER";
    /// Read a file of the boot archive (boot-archive capability target;
    /// `ArchiveReadRequest` followed by the name; `ArchiveReadReply` then
    /// the bytes).
    ArchiveRead = 0x073, "ARCHIVE_READ";
    /// Delivered by the kernel to the process manager's door when a process
    /// ends (`ProcessExitNotice`); never sent (INVALID_FUNCTION).
    ProcessExited = 0x080, "PROCESS_EXITED";
    /// Delivered by the kernel to a pager's door when a thread touches a
    /// page of a special memory object that no pager has supplied yet
    /// (`PageRequest`); answered with a `PageSupply` reply; never sent
    /// (INVALID_FUNCTION).
    PageRequest = 0x081, "PAGE_REQUEST";
    /// Let a process use a range of I/O ports with `in` / `out`
    /// (machine-control capability target; `IoPortRequest`).
    IoPortGrant = 0x090, "IO_PORT_GRANT";
    /// Deliver an ISA interrupt line to an event (machine-control
    /// capability target; `InterruptRequest`; reply slot 0 holds the
    /// interrupt object).
    InterruptCreate = 0x091, "INTERRUPT_CREATE";
    /// Acknowledge a delivered interrupt: its line is unmasked again
    /// (interrupt target; empty request).
    InterruptAck = 0x092, "INTERRUPT_ACK";
    /// Take the kernel's log over (machine-control capability target;
    /// `LogTakeRequest`; reply slot 0 holds the kernel-log object): from
    /// then on the kernel writes its lines to a bounded ring instead of
    /// COM1 (ABI.md §6.7).
    LogTake = 0x0C0, "LOG_TAKE";
    /// Read whole lines from the kernel's log ring (kernel-log target;
    /// empty request -> `LogReadReply`, then the lines).
    LogRead = 0x0C1, "LOG_READ";
    /// End a process (process target, SEND; `ExitRequest` with the status
    /// it ends with): as if it had called PROCESS_EXIT (ABI.md §6.7).
    ProcessKill = 0x0C2, "PROCESS_KILL";
    /// Restrict the calling thread to a set of CPUs (NULL target;
    /// `AffinityRequest`): it returns on one of them (ABI.md §6.9).
    ThreadAffinity = 0x0E0, "THREAD_AFFINITY";
    /// One CPU's counters and the caller's CPU (NULL target;
    /// `CpuRequest` -> `CpuCountersReply`; ABI.md §6.9).
    CpuCounters = 0x0E1, "CPU_COUNTERS";
    /// Share a range of the caller's memory with another process, by copy
    /// (NULL target; `SmoShareRequest` -> `SmoReply`): Sartoris'
    /// `share_mem`.
    SmoShare = 0x0A0, "SMO_SHARE";
    /// Destroy an SMO the caller created (NULL target; `SmoRequest`):
    /// Sartoris' `claim_mem`.
    SmoClaim = 0x0A1, "SMO_CLAIM";
    /// Hand an SMO the caller is the target of to another process (NULL
    /// target; `SmoPassRequest`): Sartoris' `pass_mem`.
    SmoPass = 0x0A2, "SMO_PASS";
    /// Copy bytes of an SMO into the caller's memory (NULL target;
    /// `SmoCopyRequest`): Sartoris' `read_mem`.
    SmoRead = 0x0A3, "SMO_READ";
    /// Copy bytes of the caller's memory into an SMO (NULL target;
    /// `SmoCopyRequest`): Sartoris' `write_mem`.
    SmoWrite = 0x0A4, "SMO_WRITE";
    /// The caller's own process id, as procman gave it (NULL target ->
    /// `ProcessIdReply`; 0 when none was given).
    ProcessId = 0x0A5, "PROCESS_ID";
    /// Create an empty process: an address space and a descriptor table,
    /// no thread (process-control capability target; empty request; the
    /// message's descriptor slots are transferred into it as its
    /// descriptors 1..=n; reply slot 0 holds the process handle). ABI.md §6.8.
    ProcessCreate = 0x0D0, "PROCESS_CREATE";
    /// Map (part of) a memory object into a process that has not started,
    /// at a fixed address (process-handle target; `ProcessMapRequest`).
    ProcessMap = 0x0D1, "PROCESS_MAP";
    /// Start a created process's first thread (process-handle target;
    /// `ProcessStartRequest`).
    ProcessStart = 0x0D2, "PROCESS_START";
    /// Interrupt a thread (thread-handle target with SEND, a process
    /// handle with SEND: one of its threads, or NULL: the caller;
    /// `ThreadInterruptRequest{signal, info}`): its blocked call ends with
    /// INTERRUPTED, and a signal is delivered to its upcall (ABI.md §6.10).
    ThreadInterrupt = 0x0B0, "THREAD_INTERRUPT";
    /// Register the calling thread's upcall handler and its stack (NULL
    /// target; `UpcallRegisterRequest`; ABI.md §6.10).
    UpcallRegister = 0x0B1, "UPCALL_REGISTER";
    /// Leave an upcall handler: restore the state its frame saved (NULL
    /// target; `UpcallReturnRequest{frame}`; does not return on success;
    /// ABI.md §6.10).
    UpcallReturn = 0x0B2, "UPCALL_RETURN";
    /// Change the calling thread's signal mask (NULL target;
    /// `SignalMaskRequest{how, mask}` -> `SignalMaskReply{previous, pending}`;
    /// ABI.md §6.10).
    SignalMask = 0x0B3, "SIGNAL_MASK";
    /// Suspend a process: none of its threads runs until PROCESS_RESUME
    /// (process-handle target with SEND; empty request; msgRetVal 1 when it
    /// was suspended already, 0 when this call suspended it; ABI.md §6.10).
    ProcessSuspend = 0x0B4, "PROCESS_SUSPEND";
    /// Resume a suspended process (process-handle target with SEND; empty
    /// request; msgRetVal 1 when it was suspended, 0 when it ran already;
    /// ABI.md §6.10).
    ProcessResume = 0x0B5, "PROCESS_RESUME";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_boundaries() {
        assert_eq!(Function(-1).range(), FunctionRange::Invalid);
        assert_eq!(Function(i32::MIN).range(), FunctionRange::Invalid);
        assert_eq!(Function(0).range(), FunctionRange::Kernel);
        assert_eq!(Function(0x3ff).range(), FunctionRange::Kernel);
        assert_eq!(Function(0x400).range(), FunctionRange::ProcessManager);
        assert_eq!(Function(0xfff).range(), FunctionRange::ProcessManager);
        assert_eq!(Function(0x1000).range(), FunctionRange::System);
        assert_eq!(Function(0x7fff).range(), FunctionRange::System);
        assert_eq!(Function(0x8000).range(), FunctionRange::User);
        assert_eq!(Function(i32::MAX).range(), FunctionRange::User);
    }

    #[test]
    fn kernel_functions_are_kernel_range_and_round_trip() {
        for f in KernelFunction::ALL {
            assert_eq!(f.function().range(), FunctionRange::Kernel);
            assert_eq!(KernelFunction::from_number(*f as i32), Some(*f));
        }
        assert_eq!(RECEIVE.kernel_function(), Some(KernelFunction::Receive));
        assert_eq!(REPLY.kernel_function(), Some(KernelFunction::Reply));
        assert_eq!(
            REPLY_RECEIVE.kernel_function(),
            Some(KernelFunction::ReplyReceive)
        );
        assert_eq!(Function(0).kernel_function(), None);
        // Every number of the kernel range, and around it, against a search.
        for n in -2..PROCESS_MANAGER_BASE + 2 {
            let searched = KernelFunction::ALL.iter().copied().find(|f| *f as i32 == n);
            assert_eq!(KernelFunction::from_number(n), searched, "number {n:#x}");
        }
        assert!(KernelFunction::ALL.len() < usize::from(u8::MAX));
    }
}
