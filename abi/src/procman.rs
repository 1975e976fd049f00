//! The process manager's protocol: functions `0x400-0xFFF`, sent to the NULL
//! target (the kernel routes them to procman's door, with the caller's
//! manager cookie so procman knows who asks).
//!
//! Requests are the message data (a fixed header, then the variable bytes it
//! announces); replies follow the usual convention: msgRetVal, msgErrno, the
//! payload at offset 8, descriptors in the reply slots. A refusal is an error
//! reply (`msgRetVal = -1`, `msgErrno` = a [`ProcmanError`] number, or an
//! [`crate::Error`] number when a kernel call procman made for the caller
//! failed).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::Function;

/// Create a door (optionally named); slot 0 of the reply is its owner
/// reference, moved to the caller. `CreateObjectRequest` + name.
pub const CREATE_OBJECT: Function = Function(0x400);
/// Open a name; slot 0 of the reply is a client reference. `NameRequest` + name.
pub const OPEN: Function = Function(0x401);
/// Remove a name the caller registered. `NameRequest` + name.
pub const UNLINK: Function = Function(0x402);
/// List a directory: `NameRequest` + directory (`/` for the root) ->
/// `ListReply` then the entries' names, each followed by `\n`.
pub const LIST: Function = Function(0x403);
/// Start a program of the boot archive: `SpawnProgramRequest` + name +
/// argument bytes; the request's descriptor slots become the child's
/// descriptors 1..=n. -> `ProcessReply`.
pub const SPAWN: Function = Function(0x404);
/// Learn whether a process ended: `WaitRequest` -> `WaitReply`; while it
/// runs, slot 0 of the reply is the caller's own event for it (no other
/// process is given it), signalled when it ends.
pub const WAIT: Function = Function(0x405);

/// Ask for the use of I/O ports `[first, first + count)`, which the
/// caller's domain's `io_ports` must cover: procman grants them to the
/// caller with IO_PORT_GRANT (ABI.md §7a.4). `IoPortsRequest`.
pub const DEVICE_PORTS: Function = Function(0x450);
/// Ask for interrupt line `line`, which the caller's domain's `irqs` must
/// name: procman makes an event and an interrupt object for it
/// (INTERRUPT_CREATE) and moves both to the caller (ABI.md §7a.4).
/// `InterruptLineRequest` -> slot 0: the interrupt object, slot 1: the event.
pub const DEVICE_INTERRUPT: Function = Function(0x451);

/// Take the kernel's log over for the console driver, whose domain's
/// `io_ports` must cover COM1 (0x3F8-0x3FF): procman makes an event,
/// sends LOG_TAKE on it and moves both to the caller (ABI.md §7a.4, §6.7).
/// Empty request -> slot 0: the kernel-log object, slot 1: the event.
pub const CONSOLE_LOG: Function = Function(0x452);

/// List the processes procman knows, in process-id order from the first
/// after `after`: `ProcessListRequest` -> `ProcessListReply`, then `count`
/// `ProcessEntry` records (ABI.md §7a.4).
pub const PROCESS_LIST: Function = Function(0x453);

/// End a process the caller started: `KillRequest`. procman sends
/// PROCESS_KILL with [`KILLED`] (ABI.md §7a.4, §6.7).
pub const KILL: Function = Function(0x454);

/// The status of a process KILL ended.
pub const KILLED: u32 = 0xFFFF_FFFE;

/// The most entries one PROCESS_LIST reply carries.
pub const MAX_PROCESS_ENTRIES: usize = 32;

/// [`ProcessEntry::state`]: it runs.
pub const PROCESS_RUNNING: u32 = 1;
/// [`ProcessEntry::state`]: it ended; its status is kept for WAIT.
pub const PROCESS_ENDED: u32 = 2;

/// PROCESS_LIST's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessListRequest {
    /// List processes with ids above this one (0: from the first).
    pub after: u32,
    /// Zero.
    pub reserved: u32,
}

impl ProcessListRequest {
    /// PROCESS_LIST from the first id above `after`.
    pub const fn new(after: u32) -> Self {
        ProcessListRequest { after, reserved: 0 }
    }
}

/// PROCESS_LIST's reply header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessListReply {
    /// Entries after this header.
    pub count: u32,
    /// 1: more processes follow the last entry (ask again after its id).
    pub more: u32,
}

/// One process in a PROCESS_LIST reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ProcessEntry {
    /// Its process id.
    pub pid: u32,
    /// The id of the process that SPAWNed it (0: procman started it).
    pub parent: u32,
    /// [`PROCESS_RUNNING`] or [`PROCESS_ENDED`].
    pub state: u32,
    /// Its exit status once ended (0 while it runs).
    pub status: u32,
    /// Its security domain's name, NUL-padded (cut at 16 bytes).
    pub domain: [u8; 16],
    /// Its program's name in the boot archive, NUL-padded.
    pub name: [u8; 48],
}

/// KILL's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct KillRequest {
    /// The process to end.
    pub pid: u32,
    /// Zero.
    pub reserved: u32,
}

impl KillRequest {
    /// KILL of `pid`.
    pub const fn new(pid: u32) -> Self {
        KillRequest { pid, reserved: 0 }
    }
}

/// COM1's ports: the domain whose `io_ports` cover them all drives the
/// serial console and may take the kernel's log (CONSOLE_LOG).
pub const CONSOLE_PORTS: (u16, u16) = (0x3f8, 8);

/// The highest interrupt line DEVICE_INTERRUPT accepts (ISA lines 0-15).
pub const MAX_INTERRUPT_LINE: u32 = 15;

/// CREATE_OBJECT flag: a system door (SYSTEM_BASE functions) instead of a user door.
pub const CREATE_SYSTEM: u32 = 1 << 0;

/// CREATE_OBJECT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct CreateObjectRequest {
    /// [`CREATE_SYSTEM`] or 0.
    pub flags: u32,
    /// The security type (its number in the manifest's `types`, from 1).
    pub security_type: u32,
    /// Length of the name that follows (0: an anonymous object).
    pub name_length: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// OPEN, UNLINK, LIST.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct NameRequest {
    /// Length of the name that follows.
    pub name_length: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// LIST's reply payload, followed by the names.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ListReply {
    /// Entries in the directory.
    pub count: u32,
    /// 1 when not every name fit the caller's buffer.
    pub truncated: u32,
}

/// SPAWN.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SpawnProgramRequest {
    /// Length of the program name that follows.
    pub name_length: u32,
    /// Length of the argument bytes after the name.
    pub argument_length: u32,
    /// The child's standard input, output and error (streams 0, 1, 2;
    /// ABI.md §7a.3): a pipe or socket end the caller holds, or none.
    pub streams: [crate::stream::StdStream; 3],
}

/// SPAWN's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ProcessReply {
    /// The process id procman gave the child.
    pub pid: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// WAIT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WaitRequest {
    /// The process.
    pub pid: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// WAIT's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WaitReply {
    /// 1 when the process has ended (then `status` is its exit status).
    pub exited: u32,
    /// The exit status (`u32::MAX` when it faulted).
    pub status: u32,
}

/// DEVICE_PORTS.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct IoPortsRequest {
    /// The first port.
    pub first: u16,
    /// How many ports (at least 1; `first + count` at most 0x10000).
    pub count: u16,
    /// Reserved, zero.
    pub reserved: u32,
}

/// DEVICE_INTERRUPT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct InterruptLineRequest {
    /// The ISA interrupt line, 0..=[`MAX_INTERRUPT_LINE`].
    pub line: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

impl IoPortsRequest {
    /// DEVICE_PORTS's request for `count` ports from `first`.
    pub const fn new(first: u16, count: u16) -> Self {
        IoPortsRequest {
            first,
            count,
            reserved: 0,
        }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        IoPortsRequest { reserved, ..self }
    }
}

impl InterruptLineRequest {
    /// DEVICE_INTERRUPT's request for `line`.
    pub const fn new(line: u32) -> Self {
        InterruptLineRequest { line, reserved: 0 }
    }

    /// The same request with its reserved field set (a malformed request).
    pub const fn with_reserved(self, reserved: u32) -> Self {
        InterruptLineRequest { reserved, ..self }
    }
}

impl CreateObjectRequest {
    /// CREATE_OBJECT's header: a user door (with `system`, a system door)
    /// of `security_type`, registered as `name` (empty: anonymous).
    pub fn new(system: bool, security_type: u32, name: &[u8]) -> Self {
        CreateObjectRequest {
            flags: if system { CREATE_SYSTEM } else { 0 },
            security_type,
            name_length: crate::kcall::length_of(name),
            reserved: 0,
        }
    }

    /// The same header with `flags` added (`namespace::CREATE_MOUNT`).
    pub const fn with_flags(mut self, flags: u32) -> Self {
        self.flags |= flags;
        self
    }

    /// Writes the whole request data, header then `name`, into `out`; its
    /// length, or `None` when it does not fit.
    pub fn encode(system: bool, security_type: u32, name: &[u8], out: &mut [u8]) -> Option<usize> {
        let header = Self::new(system, security_type, name);
        crate::kcall::encode_into(header.as_bytes(), &[name], out)
    }
}

impl NameRequest {
    /// OPEN's, UNLINK's or LIST's header for `name`.
    pub fn new(name: &[u8]) -> Self {
        NameRequest {
            name_length: crate::kcall::length_of(name),
            reserved: 0,
        }
    }

    /// Writes the whole request data, header then `name`, into `out`; its
    /// length, or `None` when it does not fit.
    pub fn encode(name: &[u8], out: &mut [u8]) -> Option<usize> {
        crate::kcall::encode_into(Self::new(name).as_bytes(), &[name], out)
    }
}

impl SpawnProgramRequest {
    /// SPAWN's header for `program` and `arguments`.
    pub fn new(program: &[u8], arguments: &[u8]) -> Self {
        SpawnProgramRequest {
            name_length: crate::kcall::length_of(program),
            argument_length: crate::kcall::length_of(arguments),
            streams: [crate::stream::StdStream::NONE; 3],
        }
    }

    /// The same header giving the child `streams` as its standard input,
    /// output and error.
    pub const fn with_streams(mut self, streams: [crate::stream::StdStream; 3]) -> Self {
        self.streams = streams;
        self
    }

    /// Writes the whole request data, header, `program`, then `arguments`,
    /// into `out`; its length, or `None` when it does not fit.
    pub fn encode(program: &[u8], arguments: &[u8], out: &mut [u8]) -> Option<usize> {
        let header = Self::new(program, arguments);
        crate::kcall::encode_into(header.as_bytes(), &[program, arguments], out)
    }

    /// Writes the bytes that follow the header (`program`, then
    /// `arguments`), for a sender that passes header and bytes apart;
    /// their length, or `None` when they do not fit `out`.
    pub fn encode_tail(program: &[u8], arguments: &[u8], out: &mut [u8]) -> Option<usize> {
        crate::kcall::encode_into(program, &[arguments], out)
    }
}

impl ProcessReply {
    /// SPAWN's reply: the child's process id `pid`.
    pub const fn new(pid: u32) -> Self {
        ProcessReply { pid, reserved: 0 }
    }
}

impl WaitRequest {
    /// WAIT's request for process `pid`.
    pub const fn new(pid: u32) -> Self {
        WaitRequest { pid, reserved: 0 }
    }
}

macro_rules! procman_errors {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal, $label:literal; )*) => {
        /// Procman's refusals, numbered from 0x1100 (within the server range).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum ProcmanError {
            $( $(#[doc = $doc])* $name = $value, )*
        }

        impl ProcmanError {
            /// Every error, in numeric order.
            pub const ALL: &'static [ProcmanError] = &[$(ProcmanError::$name),*];

            /// The error with this number.
            pub const fn from_number(value: u32) -> Option<ProcmanError> {
                match value {
                    $( $value => Some(ProcmanError::$name), )*
                    _ => None,
                }
            }

            /// The stable name used in ABI.md.
            pub const fn name(self) -> &'static str {
                match self {
                    $( ProcmanError::$name => $label, )*
                }
            }
        }
    };
}

procman_errors! {
    /// The request's sizes or fields are malformed.
    BadRequest = 0x1100, "PM_BAD_REQUEST";
    /// The caller is not a process procman started.
    UnknownCaller = 0x1101, "PM_UNKNOWN_CALLER";
    /// The caller's domain may not create IPC objects.
    CreateDenied = 0x1102, "PM_CREATE_DENIED";
    /// The caller's domain may not create system objects.
    SystemObjectDenied = 0x1103, "PM_SYSTEM_OBJECT_DENIED";
    /// The caller's domain may not register this name (no allowed prefix).
    NameDenied = 0x1104, "PM_NAME_DENIED";
    /// The name is taken.
    NameExists = 0x1105, "PM_NAME_EXISTS";
    /// The caller's domain may not create objects of this security type.
    TypeDenied = 0x1106, "PM_TYPE_DENIED";
    /// A malformed name (not absolute, empty component, not UTF-8, too long).
    BadName = 0x1107, "PM_BAD_NAME";
    /// No such name.
    NoSuchName = 0x1108, "PM_NO_SUCH_NAME";
    /// The caller's domain may not open objects of this security type.
    OpenDenied = 0x1109, "PM_OPEN_DENIED";
    /// Only the process that registered a name may unlink it.
    NotNameOwner = 0x110A, "PM_NOT_NAME_OWNER";
    /// The caller's domain may not spawn this program.
    SpawnDenied = 0x110B, "PM_SPAWN_DENIED";
    /// No such program in the manifest.
    NoSuchProgram = 0x110C, "PM_NO_SUCH_PROGRAM";
    /// No such process.
    NoSuchProcess = 0x110D, "PM_NO_SUCH_PROCESS";
    /// An unknown process-manager function.
    UnknownFunction = 0x110E, "PM_UNKNOWN_FUNCTION";
    /// The caller already has as many names as one process may (16, ABI.md §7a).
    TooManyObjects = 0x110F, "PM_TOO_MANY_OBJECTS";
    /// The caller already waits for as many running processes as one
    /// process may (16, ABI.md §7a).
    TooManyWaits = 0x1110, "PM_TOO_MANY_WAITS";
    /// A portal request names no class, an undefined class bit, or a
    /// combination that means nothing (ABI.md §7a.1).
    PortalBadClass = 0x1120, "PM_PORTAL_BAD_CLASS";
    /// The caller's domain may not ask for one of the request's classes
    /// (the manifest's `portal_classes`).
    PortalClassDenied = 0x1121, "PM_PORTAL_CLASS_DENIED";
    /// A length that is zero where memory is made, past the portal limit,
    /// or given where none is taken.
    PortalBadLength = 0x1122, "PM_PORTAL_BAD_LENGTH";
    /// A morphology that does not fit the class: an unaligned address,
    /// frames where none are taken, or frames not contiguous and aligned.
    PortalBadMorphology = 0x1123, "PM_PORTAL_BAD_MORPHOLOGY";
    /// The protection asked is wider than the portal's creator allows the
    /// caller (OTHERS_READ_ONLY) or than the creator itself took.
    PortalProtDenied = 0x1124, "PM_PORTAL_PROT_DENIED";
    /// The portal's creator made it for its own domain only.
    PortalCaptureDenied = 0x1125, "PM_PORTAL_CAPTURE_DENIED";
    /// A SPECIAL portal: no pager protocol is available to serve it yet.
    PortalNoPager = 0x1126, "PM_PORTAL_NO_PAGER";
    /// The caller already created as many named portals as one process may (16).
    TooManyPortals = 0x1127, "PM_TOO_MANY_PORTALS";
    /// The caller already holds as many portal captures as one process may (64).
    TooManyCaptures = 0x1128, "PM_TOO_MANY_CAPTURES";
    /// The portal has no memory yet (created unsized and not sized).
    PortalUnsized = 0x1129, "PM_PORTAL_UNSIZED";
    /// PORTAL_SIZE on a portal that has its size already.
    PortalSized = 0x112A, "PM_PORTAL_SIZED";
    /// PORTAL_RELEASE of a portal the caller holds no capture of.
    PortalNotCaptured = 0x112B, "PM_PORTAL_NOT_CAPTURED";
    /// A protection without READ or with undefined bits.
    PortalBadProt = 0x112C, "PM_PORTAL_BAD_PROT";
    /// No live pipe has that number.
    NoSuchPipe = 0x1160, "PM_NO_SUCH_PIPE";
    /// A pipe end other than READ_END (1) or WRITE_END (2).
    PipeBadEnd = 0x1161, "PM_PIPE_BAD_END";
    /// The caller holds no reference of that end (PIPE_CLOSE, PIPE_GRANT).
    NotPipeHolder = 0x1162, "PM_NOT_PIPE_HOLDER";
    /// PIPE_OPEN of an end the caller was not granted (or already opened).
    PipeNotGranted = 0x1163, "PM_PIPE_NOT_GRANTED";
    /// The process already holds as many pipe end references as one may (64).
    TooManyPipeEnds = 0x1164, "PM_TOO_MANY_PIPE_ENDS";
    /// A write to a pipe whose every read end is gone. Never a procman
    /// reply: `userlib::stream` gives it when the ring says READERS_GONE.
    BrokenPipe = 0x1165, "PM_BROKEN_PIPE";
    /// PIPE_GRANT to the caller itself.
    PipeGrantSelf = 0x1166, "PM_PIPE_GRANT_SELF";
    /// A socket port above 65535 (`MAX_PORT`), or 0 where a port is named
    /// (SOCKET_CONNECT, SOCKET_CLOSE).
    SocketBadPort = 0x1167, "PM_SOCKET_BAD_PORT";
    /// SOCKET_CREATE of a port a live socket has.
    PortTaken = 0x1168, "PM_PORT_TAKEN";
    /// SOCKET_CREATE of port 0 when every port from `FIRST_EPHEMERAL_PORT`
    /// is taken.
    NoFreePort = 0x1169, "PM_NO_FREE_PORT";
    /// No live socket has that port.
    NoSuchSocket = 0x116A, "PM_NO_SUCH_SOCKET";
    /// SOCKET_CONNECT to a socket that has had its connector (1 to 1).
    SocketConnected = 0x116B, "PM_SOCKET_CONNECTED";
    /// SOCKET_CONNECT by a holder of the socket's creator side.
    SocketSelfConnect = 0x116C, "PM_SOCKET_SELF_CONNECT";
    /// SOCKET_CLOSE (or a standard stream naming a socket) by a process
    /// that holds no side of it.
    NotSocketEnd = 0x116D, "PM_NOT_SOCKET_END";
    /// The process already holds as many socket end references as one may (16).
    TooManySocketEnds = 0x116E, "PM_TOO_MANY_SOCKET_ENDS";
    /// The other side of a socket ended (died) without closing. Never a
    /// procman reply: `userlib::stream` gives it when the ring says
    /// WRITER_DIED (after the buffered bytes) or READER_DIED.
    PeerDied = 0x116F, "PM_PEER_DIED";
    /// A standard stream of SPAWN with a kind other than NONE, PIPE or
    /// SOCKET, or NONE with a number.
    StdioBadKind = 0x1170, "PM_STDIO_BAD_KIND";
    /// STDIO_OPEN of a stream other than 0, 1, 2.
    StdioBadStream = 0x1171, "PM_STDIO_BAD_STREAM";
    /// STDIO_OPEN of a stream the caller was not given.
    NoStdioStream = 0x1172, "PM_NO_STDIO_STREAM";
    /// STDIO_OPEN of a stream the caller opened already.
    StdioOpened = 0x1173, "PM_STDIO_OPENED";
    /// CREATE_OBJECT of a name under `/sock`, which procman keeps for its
    /// sockets (ABI.md §7a.8, D96).
    NameReserved = 0x11F0, "PM_NAME_RESERVED";
    /// CHDIR of a path that is not absolute, has an empty, `.` or `..`
    /// component or a trailing `/`, is over 255 bytes or not UTF-8.
    BadDirectory = 0x11F1, "PM_BAD_DIRECTORY";
    /// SPAWN of a program whose file in the boot archive is not a program
    /// this system runs (not a static x86_64 ELF executable with sound
    /// segments: `image::program`); procman logs the reason (ABI.md §7a.5).
    BadProgram = 0x11B0, "PM_BAD_PROGRAM";
    /// DEVICE_PORTS: no entry of the caller's domain's `io_ports` covers
    /// the whole range asked for.
    PortsDenied = 0x1190, "PM_PORTS_DENIED";
    /// DEVICE_INTERRUPT: the caller's domain's `irqs` do not name the line.
    InterruptDenied = 0x1191, "PM_INTERRUPT_DENIED";
    /// CONSOLE_LOG: the caller's domain's `io_ports` do not cover COM1.
    ConsoleDenied = 0x1192, "PM_CONSOLE_DENIED";
    /// KILL of a process the caller did not start.
    NotParent = 0x1193, "PM_NOT_PARENT";
    /// SIGNAL or SIGNAL_ACTION of a number above 63, or SIGNAL_ACTION of 0
    /// (ABI.md §7a.9).
    NoSuchSignal = 0x11C0, "PM_NO_SUCH_SIGNAL";
    /// SIGNAL or SAVE_AND_END of a process the caller may not signal: not
    /// itself, not its descendant, not in its session (D70).
    SignalDenied = 0x11C1, "PM_SIGNAL_DENIED";
    /// SIGNAL_ACTION that would ignore or catch KILL or STOP.
    Uncatchable = 0x11C2, "PM_UNCATCHABLE";
    /// SIGNAL_ACTION with an action other than DEFAULT, IGNORE, CATCH.
    BadAction = 0x11C3, "PM_BAD_ACTION";
    /// A group signal to a group with no live member, or SET_GROUP into a
    /// group that does not exist in the process's session.
    NoSuchGroup = 0x11C4, "PM_NO_SUCH_GROUP";
    /// SET_GROUP of a process that is not the caller or its child, or of a
    /// child in another session (D72).
    GroupDenied = 0x11C5, "PM_GROUP_DENIED";
    /// SET_GROUP of a session leader, or NEW_SESSION by a group leader (D72).
    SessionLeader = 0x11C6, "PM_SESSION_LEADER";
    /// SAVE_AND_END of a process that catches SAVE while 16 saves are
    /// pending (their bound held by procman, D85).
    TooManySaves = 0x11C7, "PM_TOO_MANY_SAVES";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_distinct_and_in_the_server_range() {
        for (i, e) in ProcmanError::ALL.iter().enumerate() {
            assert!(*e as u32 >= crate::error::FIRST_SERVER_ERROR);
            assert_eq!(ProcmanError::from_number(*e as u32), Some(*e));
            for other in &ProcmanError::ALL[i + 1..] {
                assert_ne!(e.name(), other.name());
            }
        }
        for f in [
            CREATE_OBJECT,
            OPEN,
            UNLINK,
            LIST,
            SPAWN,
            WAIT,
            DEVICE_PORTS,
            DEVICE_INTERRUPT,
            CONSOLE_LOG,
            PROCESS_LIST,
            KILL,
        ] {
            assert_eq!(f.range(), crate::FunctionRange::ProcessManager);
        }
    }

    #[test]
    fn encoders_round_trip() {
        let mut out = [0u8; 64];
        let length = CreateObjectRequest::encode(true, 3, b"/svc/x", &mut out);
        assert_eq!(length, Some(22));
        let header = CreateObjectRequest::read_from_prefix(&out).map(|(h, _)| h);
        assert_eq!(
            header.ok(),
            Some(CreateObjectRequest {
                flags: CREATE_SYSTEM,
                security_type: 3,
                name_length: 6,
                reserved: 0
            })
        );
        assert_eq!(&out[16..22], b"/svc/x");
        assert_eq!(NameRequest::encode(b"/a", &mut out), Some(10));
        assert_eq!(&out[..10], b"\x02\0\0\0\0\0\0\0/a");
        assert_eq!(SpawnProgramRequest::encode(b"p", b"xy", &mut out), Some(35));
        assert_eq!(&out[..8], b"\x01\0\0\0\x02\0\0\0");
        assert_eq!(&out[8..32], &[0; 24], "no standard streams");
        assert_eq!(&out[32..35], b"pxy");
        assert_eq!(
            SpawnProgramRequest::encode(b"p", b"xy", &mut out[..34]),
            None
        );
        let streams = [
            crate::stream::StdStream::pipe(3),
            crate::stream::StdStream::socket(80),
            crate::stream::StdStream::NONE,
        ];
        let header = SpawnProgramRequest::new(b"p", b"").with_streams(streams);
        assert_eq!(
            &header.as_bytes()[8..24],
            b"\x01\0\0\0\x03\0\0\0\x02\0\0\0\x50\0\0\0"
        );
        assert_eq!(WaitRequest::new(9).as_bytes(), b"\x09\0\0\0\0\0\0\0");
        assert_eq!(
            IoPortsRequest::new(0x2f8, 8).as_bytes(),
            b"\xf8\x02\x08\0\0\0\0\0"
        );
        assert_eq!(
            InterruptLineRequest::new(3).as_bytes(),
            b"\x03\0\0\0\0\0\0\0"
        );
    }
}
