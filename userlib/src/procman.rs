//! The process manager's client side: names, objects, programs. procman's
//! protocol (ABI.md §7a, `abi::procman`) is declared here once with
//! [`crate::interface!`]: the declaration gives the client stub
//! [`ProcmanClient`] ([`PROCMAN`], whose calls are NULL-target SENDs the
//! kernel routes to procman, which knows the caller by its cookie) and the
//! trait [`ProcmanServer`] that procman implements. The functions below are
//! the stub's methods with the headers built from names, returning the
//! untyped [`CallError`] (an error reply keeps its number).

use abi::namespace::{
    CHDIR, DirectoryReply, GETCWD, NAME_LIST, NameListEntry, NameListReply, NameListRequest,
};
use abi::portal::{
    PORTAL, PORTAL_RELEASE, PORTAL_SIZE, PORTAL_TABLE, PORTAL_UNLINK, PortalReply, PortalRequest,
    PortalSizeRequest, PortalTableReply,
};
use abi::procman::{
    CONSOLE_LOG, CREATE_OBJECT, CreateObjectRequest, DEVICE_INTERRUPT, DEVICE_PORTS,
    InterruptLineRequest, IoPortsRequest, KILL, KillRequest, LIST, ListReply, NameRequest, OPEN,
    PROCESS_LIST, ProcessEntry, ProcessListReply, ProcessListRequest, ProcessReply, ProcmanError,
    SPAWN, SpawnProgramRequest, UNLINK, WAIT, WaitReply, WaitRequest,
};
use abi::signal::{
    GROUP_OF, GroupReply, GroupRequest, JobReply, NEW_SESSION, SAVE_AND_END, SET_GROUP, SIGNAL,
    SIGNAL_ACTION, SetGroupRequest, SignalActionReply, SignalActionRequest, SignalRequest,
    WAIT_JOB,
};
use abi::stream::{
    PIPE_CLOSE, PIPE_CREATE, PIPE_GRANT, PIPE_OPEN, PipeEndRequest, PipeGrantRequest, PipeReply,
    SOCKET_CLOSE, SOCKET_CONNECT, SOCKET_CREATE, STDIO, STDIO_OPEN, STREAM_TABLE, SocketReply,
    SocketRequest, StdStream, StdioOpenReply, StdioOpenRequest, StdioReply, StreamTableReply,
};
use abi::{Descriptor, DescriptorSlot, Error};
use alloc::string::String;
use alloc::vec::Vec;

use crate::client::CallError;
use crate::descriptor::OwnedDescriptor;
use crate::interface::{InterfaceError, Replied};

crate::interface! {
    /// Calls procman. Use [`PROCMAN`]: procman is reached through the NULL
    /// target.
    pub client ProcmanClient;
    /// procman's side of the protocol (`procman/src/server.rs`). The
    /// kernel's PROCESS_EXITED notices arrive at `other_function`.
    pub server ProcmanServer;
    error ProcmanError;

    /// CREATE_OBJECT: a door of `header.security_type` (a system door with
    /// `CREATE_SYSTEM`), registered under the name in `bytes` unless they
    /// are empty. Reply slot 0: the owner reference (moved), slot 1: a
    /// client reference.
    fn create_object(CREATE_OBJECT)
        request(header: CreateObjectRequest, bytes)
        reply(descriptors: 2);
    /// OPEN: reply slot 0 is a client reference to the object registered
    /// under the name in `bytes`.
    /// For `/sock/<port>` it is SOCKET_CONNECT of that port: msgRetVal
    /// the port, slots 0-6 as SOCKET_CONNECT's (ABI.md §7a.8).
    fn open(OPEN) request(header: NameRequest, bytes) reply(descriptors: 1..=7);
    /// UNLINK: removes the name in `bytes`, which the caller registered.
    fn unlink(UNLINK) request(header: NameRequest, bytes) reply();
    /// LIST: the entries of the directory in `bytes`; the reply's bytes
    /// are each entry's name and `\n`.
    fn list(LIST) request(header: NameRequest, bytes) reply(header: ListReply, bytes);
    /// SPAWN: starts the program whose name and then arguments are `bytes`;
    /// the request's descriptors become the child's 1..=n. msgRetVal and
    /// the reply's header carry its process id.
    fn spawn(SPAWN)
        request(header: SpawnProgramRequest, bytes, descriptors: 0..=255)
        reply(header: ProcessReply);
    /// WAIT: whether process `header.pid` ended (and its status); while it
    /// runs, reply slot 0 is the caller's own exit event for it.
    fn wait(WAIT) request(header: WaitRequest) reply(header: WaitReply, descriptors: 0..=1);
    /// PORTAL (ABI.md §7a.1): create or capture a memory portal described
    /// by `header` and the bytes its offsets name. Reply slot 0: the
    /// memory object (none for an unsized portal); slot 1: a share-point's
    /// lock event, for a capture that may write.
    fn portal(PORTAL)
        request(header: PortalRequest, bytes)
        reply(header: PortalReply, descriptors: 0..=2);
    /// PORTAL_SIZE: gives the unsized portal named in `bytes` its memory.
    fn portal_size(PORTAL_SIZE) request(header: PortalSizeRequest, bytes) reply();
    /// PORTAL_RELEASE: drops the caller's capture of the portal in `bytes`.
    fn portal_release(PORTAL_RELEASE) request(header: NameRequest, bytes) reply();
    /// PORTAL_UNLINK: removes the name of a portal the caller created.
    fn portal_unlink(PORTAL_UNLINK) request(header: NameRequest, bytes) reply();
    /// PORTAL_TABLE: procman's portal table in numbers.
    fn portal_table(PORTAL_TABLE) request() reply(header: PortalTableReply);
    /// PIPE_CREATE (ABI.md §7a.3): a pipe whose read and write ends the
    /// caller holds. Reply slots: the ring's memory object, its data, room
    /// and lock events.
    fn pipe_create(PIPE_CREATE) request() reply(header: PipeReply, descriptors: 4);
    /// PIPE_CLOSE: gives up one reference of an end.
    fn pipe_close(PIPE_CLOSE) request(header: PipeEndRequest) reply();
    /// PIPE_GRANT: gives another process one reference of an end.
    fn pipe_grant(PIPE_GRANT) request(header: PipeGrantRequest) reply();
    /// PIPE_OPEN: the descriptors of an end granted to the caller (slots
    /// as PIPE_CREATE's).
    fn pipe_open(PIPE_OPEN) request(header: PipeEndRequest) reply(header: PipeReply, descriptors: 4);
    /// STREAM_TABLE: procman's pipe and socket tables in numbers.
    fn stream_table(STREAM_TABLE) request() reply(header: StreamTableReply);
    /// STDIO (ABI.md §7a.3): the caller's standard streams, as SPAWN gave
    /// them.
    fn stdio(STDIO) request() reply(header: StdioReply);
    /// STDIO_OPEN: the descriptors of one standard stream (a pipe end's
    /// four or a socket side's seven).
    fn stdio_open(STDIO_OPEN)
        request(header: StdioOpenRequest)
        reply(header: StdioOpenReply, descriptors: 0..=7);
    /// SOCKET_CREATE: a socket at a port (0: a free one); the caller holds
    /// its creator side. Reply slots: the memory object, ring A's data,
    /// room and lock events, ring B's.
    fn socket_create(SOCKET_CREATE)
        request(header: SocketRequest)
        reply(header: SocketReply, descriptors: 7);
    /// SOCKET_CONNECT: the caller becomes the socket's one connector.
    fn socket_connect(SOCKET_CONNECT)
        request(header: SocketRequest)
        reply(header: SocketReply, descriptors: 7);
    /// SOCKET_CLOSE: gives up one reference of the caller's side.
    fn socket_close(SOCKET_CLOSE) request(header: SocketRequest) reply();
    /// DEVICE_PORTS (ABI.md §7a.4): procman grants the caller the ports
    /// of `header`, which its domain's `io_ports` must cover.
    fn device_ports(DEVICE_PORTS) request(header: IoPortsRequest) reply();
    /// DEVICE_INTERRUPT (ABI.md §7a.4): the interrupt line of `header`,
    /// which its domain's `irqs` must name. Reply slot 0: the interrupt
    /// object, slot 1: the event it signals (WAIT).
    fn device_interrupt(DEVICE_INTERRUPT)
        request(header: InterruptLineRequest)
        reply(descriptors: 2);
    /// CONSOLE_LOG (ABI.md §7a.4): the kernel's log, for the domain that
    /// drives COM1. Reply slot 0: the kernel-log object, slot 1: the event
    /// its lines signal (WAIT).
    fn console_log(CONSOLE_LOG) request() reply(descriptors: 2);
    /// PROCESS_LIST (ABI.md §7a.4): the processes after `header.after`,
    /// as `ProcessEntry` records after the reply's header.
    fn process_list(PROCESS_LIST)
        request(header: ProcessListRequest)
        reply(header: ProcessListReply, bytes);
    /// KILL (ABI.md §7a.4): ends a process the caller started.
    fn kill(KILL) request(header: KillRequest) reply();
    /// SIGNAL (ABI.md §7a.9): a signal to a process or a process group.
    fn signal(SIGNAL) request(header: SignalRequest) reply();
    /// SIGNAL_ACTION: the caller's disposition of a signal; the previous.
    fn signal_action(SIGNAL_ACTION)
        request(header: SignalActionRequest)
        reply(header: SignalActionReply);
    /// SET_GROUP: moves the caller or its child into a process group.
    fn set_group(SET_GROUP) request(header: SetGroupRequest) reply();
    /// NEW_SESSION: the caller leads a new session and group.
    fn new_session(NEW_SESSION) request() reply(header: GroupReply);
    /// GROUP_OF: a process's group and session.
    fn group_of(GROUP_OF) request(header: GroupRequest) reply(header: GroupReply);
    /// WAIT_JOB: whether a process ended or is stopped; while it runs,
    /// slot 0 is the caller's own event for it (signalled when it ends or
    /// stops).
    fn wait_job(WAIT_JOB) request(header: GroupRequest) reply(header: JobReply, descriptors: 0..=1);
    /// SAVE_AND_END: asks a process to save and end (the signal SAVE);
    /// procman ends it past the bound.
    fn save_and_end(SAVE_AND_END) request(header: GroupRequest) reply();
    /// NAME_LIST (ABI.md §7a.8): the entries of the directory in `bytes`
    /// from the `header.skip`th, as `NameListEntry` records (kind, owner,
    /// type) after the reply's header.
    fn name_list(NAME_LIST)
        request(header: NameListRequest, bytes)
        reply(header: NameListReply, bytes);
    /// CHDIR (ABI.md §7a.8): the caller's working directory becomes the
    /// path in `bytes`.
    fn chdir(CHDIR) request(header: NameRequest, bytes) reply();
    /// GETCWD (ABI.md §7a.8): the caller's working directory, its bytes
    /// after the reply's header.
    fn getcwd(GETCWD) request() reply(header: DirectoryReply, bytes);
}

/// The process manager: its functions are sent to the NULL target.
pub const PROCMAN: ProcmanClient = ProcmanClient::new(Descriptor::NULL);

impl InterfaceError for ProcmanError {
    const BAD_REQUEST: Self = ProcmanError::BadRequest;
    const UNKNOWN_FUNCTION: Self = ProcmanError::UnknownFunction;
    // ABI.md §7a: a reply that does not fit is a malformed request.
    const REPLY_DOES_NOT_FIT: Self = ProcmanError::BadRequest;

    fn number(self) -> u32 {
        self as u32
    }

    fn from_number(number: u32) -> Option<Self> {
        ProcmanError::from_number(number)
    }

    fn name(self) -> &'static str {
        ProcmanError::name(self)
    }
}

/// The references CREATE_OBJECT returns.
#[derive(Debug)]
pub struct Object {
    /// The owner reference (RECEIVE).
    pub owner: OwnedDescriptor,
    /// A client reference (SEND), to keep or pass on.
    pub client: OwnedDescriptor,
}

/// Bytes whose length a request header can carry (a `u32`).
fn checked(bytes: &[u8]) -> Result<&[u8], CallError> {
    u32::try_from(bytes.len())
        .map(|_| bytes)
        .map_err(|_| CallError::Kernel(Error::BadSizes))
}

fn take<R>(reply: &mut Replied<R>, index: usize) -> Result<OwnedDescriptor, CallError> {
    reply
        .take_descriptor(index)
        .ok_or(CallError::Kernel(Error::BadSizes))
}

/// CREATE_OBJECT: a new door of `security_type`, a system door when
/// `system`, registered under `name` when given.
pub fn create_object(
    name: Option<&str>,
    system: bool,
    security_type: u32,
) -> Result<Object, CallError> {
    let name = checked(name.unwrap_or("").as_bytes())?;
    let header = CreateObjectRequest::new(system, security_type, name);
    let mut reply = PROCMAN.create_object(header, name)?;
    let owner = take(&mut reply, 0)?;
    let client = take(&mut reply, 1)?;
    Ok(Object { owner, client })
}

/// CREATE_OBJECT with `CREATE_MOUNT`: a user door of `security_type`
/// registered as `name`, a mount point whose server resolves the names
/// under it (NAME_LIST shows it as `KIND_MOUNT`).
pub fn create_mount(name: &str, security_type: u32) -> Result<Object, CallError> {
    let name = checked(name.as_bytes())?;
    let header = CreateObjectRequest::new(false, security_type, name)
        .with_flags(abi::namespace::CREATE_MOUNT);
    let mut reply = PROCMAN.create_object(header, name)?;
    let owner = take(&mut reply, 0)?;
    let client = take(&mut reply, 1)?;
    Ok(Object { owner, client })
}

/// OPEN: a client reference to the object registered as `name`.
pub fn open(name: &str) -> Result<OwnedDescriptor, CallError> {
    let name = checked(name.as_bytes())?;
    let mut reply = PROCMAN.open(NameRequest::new(name), name)?;
    take(&mut reply, 0)
}

/// UNLINK: removes `name`, which this process registered.
pub fn unlink(name: &str) -> Result<(), CallError> {
    let name = checked(name.as_bytes())?;
    PROCMAN.unlink(NameRequest::new(name), name)?;
    Ok(())
}

/// LIST: the entries of `directory` (subdirectories end with `/`) and
/// whether the list was cut short.
pub fn list(directory: &str) -> Result<(Vec<String>, bool), CallError> {
    let directory = checked(directory.as_bytes())?;
    let reply = PROCMAN.list(NameRequest::new(directory), directory)?;
    let names =
        core::str::from_utf8(reply.bytes()).map_err(|_| CallError::Kernel(Error::BadSizes))?;
    Ok((
        names.split_terminator('\n').map(String::from).collect(),
        reply.header.truncated != 0,
    ))
}

/// SPAWN: starts `program` with `arguments`; `descriptors` become its
/// descriptors 1..=n. Returns its process id.
pub fn spawn(
    program: &str,
    arguments: &[u8],
    descriptors: &[DescriptorSlot],
) -> Result<u32, CallError> {
    let program = checked(program.as_bytes())?;
    let arguments = checked(arguments)?;
    let header = SpawnProgramRequest::new(program, arguments);
    let mut bytes = alloc::vec![0; program.len() + arguments.len()];
    SpawnProgramRequest::encode_tail(program, arguments, &mut bytes)
        .ok_or(CallError::Kernel(Error::BadSizes))?;
    let reply = PROCMAN.spawn(header, &bytes, descriptors)?;
    Ok(reply.header.pid)
}

/// SPAWN with standard streams: as [`spawn`], the child's stdin, stdout
/// and stderr being `streams` (ends the caller holds: a pipe's read end
/// for stdin, write ends for the others, or its side of a socket; see
/// [`crate::stdio`]).
pub fn spawn_with_streams(
    program: &str,
    arguments: &[u8],
    descriptors: &[DescriptorSlot],
    streams: [StdStream; 3],
) -> Result<u32, CallError> {
    let program = checked(program.as_bytes())?;
    let arguments = checked(arguments)?;
    let header = SpawnProgramRequest::new(program, arguments).with_streams(streams);
    let mut bytes = Vec::with_capacity(program.len() + arguments.len());
    bytes.extend_from_slice(program);
    bytes.extend_from_slice(arguments);
    let reply = PROCMAN.spawn(header, &bytes, descriptors)?;
    Ok(reply.header.pid)
}

/// WAIT: blocks until process `pid` ends and returns its exit status.
pub fn wait(pid: u32) -> Result<u32, CallError> {
    loop {
        let mut reply = PROCMAN.wait(WaitRequest::new(pid))?;
        if reply.header.exited != 0 {
            return Ok(reply.header.status);
        }
        let event = take(&mut reply, 0)?;
        drop(reply);
        crate::kernel::event_wait(event.descriptor())?;
    }
}

/// DEVICE_PORTS: asks procman for the use of the `count` ports from
/// `first` (the caller's domain's `io_ports` must cover them); then
/// [`crate::device`] reaches them.
pub fn device_ports(first: u16, count: u16) -> Result<(), CallError> {
    PROCMAN.device_ports(IoPortsRequest::new(first, count))?;
    Ok(())
}

/// An interrupt line procman handed over: the interrupt object
/// ([`crate::kernel::interrupt_ack`] after each delivery is served) and
/// the event each delivery signals.
#[derive(Debug)]
pub struct InterruptLine {
    /// The interrupt object (rights `INTERRUPT`).
    pub interrupt: OwnedDescriptor,
    /// The event the line signals (WAIT).
    pub event: OwnedDescriptor,
}

/// DEVICE_INTERRUPT: asks procman for interrupt `line` (the caller's
/// domain's `irqs` must name it).
pub fn device_interrupt(line: u32) -> Result<InterruptLine, CallError> {
    let mut reply = PROCMAN.device_interrupt(InterruptLineRequest::new(line))?;
    let interrupt = take(&mut reply, 0)?;
    let event = take(&mut reply, 1)?;
    Ok(InterruptLine { interrupt, event })
}

/// The kernel's log, handed to the console driver: the kernel-log object
/// ([`crate::kernel::log_read`]; its last CLOSE gives COM1 back to the
/// kernel) and the event arriving lines signal.
#[derive(Debug)]
pub struct KernelLog {
    /// The kernel-log object (rights `KERNEL_LOG`).
    pub log: OwnedDescriptor,
    /// The event the arriving lines signal (WAIT).
    pub event: OwnedDescriptor,
}

/// PROCESS_LIST, all pages: every process procman knows, by id.
pub fn processes() -> Result<Vec<ProcessEntry>, CallError> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let reply = PROCMAN.process_list(ProcessListRequest::new(after))?;
        let bytes = reply.bytes();
        for record in bytes.chunks_exact(size_of::<ProcessEntry>()) {
            let entry: ProcessEntry = zerocopy::FromBytes::read_from_bytes(record)
                .map_err(|_| CallError::Kernel(Error::BadSizes))?;
            after = entry.pid;
            entries.push(entry);
        }
        if reply.header.more == 0 || reply.header.count == 0 {
            return Ok(entries);
        }
    }
}

/// NAME_LIST: every entry of `directory`, with kinds and owners (as many
/// calls as its pages take).
pub fn name_list(directory: &str) -> Result<Vec<NameListEntry>, CallError> {
    let directory = checked(directory.as_bytes())?;
    let mut entries = Vec::new();
    loop {
        let skip = u32::try_from(entries.len()).map_err(|_| CallError::Kernel(Error::BadSizes))?;
        let reply = PROCMAN.name_list(NameListRequest::new(skip, directory), directory)?;
        for record in reply.bytes().chunks_exact(size_of::<NameListEntry>()) {
            let entry: NameListEntry = zerocopy::FromBytes::read_from_bytes(record)
                .map_err(|_| CallError::Kernel(Error::BadSizes))?;
            entries.push(entry);
        }
        if reply.header.more == 0 || reply.header.count == 0 {
            return Ok(entries);
        }
    }
}

/// CHDIR: this process's working directory becomes `path` (absolute and
/// clean: `file::resolve` makes it so). Children SPAWNed after start in it.
pub fn chdir(path: &str) -> Result<(), CallError> {
    let path = checked(path.as_bytes())?;
    PROCMAN.chdir(NameRequest::new(path), path)?;
    Ok(())
}

/// GETCWD: this process's working directory.
pub fn getcwd() -> Result<String, CallError> {
    let reply = PROCMAN.getcwd()?;
    let path =
        core::str::from_utf8(reply.bytes()).map_err(|_| CallError::Kernel(Error::BadSizes))?;
    Ok(String::from(path))
}

/// KILL: ends process `pid`, which this process started.
pub fn kill(pid: u32) -> Result<(), CallError> {
    PROCMAN.kill(KillRequest::new(pid))?;
    Ok(())
}

/// CONSOLE_LOG: asks procman for the kernel's log (the caller's domain's
/// `io_ports` must cover COM1).
pub fn console_log() -> Result<KernelLog, CallError> {
    let mut reply = PROCMAN.console_log()?;
    let log = take(&mut reply, 0)?;
    let event = take(&mut reply, 1)?;
    Ok(KernelLog { log, event })
}
