//! The server: start-up, then one method per function of procman's
//! interface (`userlib::procman::ProcmanServer`), served by its generated
//! dispatch.

use abi::kcall::ProcessExitNotice;
use abi::kcall::protection;
use abi::namespace::{
    CREATE_MOUNT, DirectoryReply, MAX_NAME_ENTRIES, NameListEntry, NameListReply, NameListRequest,
};
use abi::portal::{
    PortalReply, PortalRequest, PortalSizeRequest, PortalTableReply, REPLY_CREATED,
    REPLY_READ_ONLY, REPLY_SHARE_POINT, SHARE_POINT_HEADER_SIZE,
};
use abi::procman::{
    CREATE_SYSTEM, CreateObjectRequest, InterruptLineRequest, IoPortsRequest, KILLED, KillRequest,
    ListReply, MAX_PROCESS_ENTRIES, NameRequest, PROCESS_ENDED, PROCESS_RUNNING, ProcessEntry,
    ProcessListReply, ProcessListRequest, ProcessReply, ProcmanError, SpawnProgramRequest,
    WaitReply, WaitRequest,
};
use abi::stream::{
    CREATOR, PIPE_CAPACITY, PIPE_PAGES, PipeEndRequest, PipeGrantRequest, PipeReply, READ_END,
    READER_DIED, READERS_GONE, RingHeader, SOCKET_CAPACITY, SOCKET_PAGES, SOCKET_RING_B_HEADER,
    STREAM_PIPE, STREAM_SOCKET, SocketReply, SocketRequest, StdStream, StdioOpenReply,
    StdioOpenRequest, StdioReply, StreamTableReply, WRITE_END, WRITER_DIED, WRITERS_GONE, field,
};
use abi::{Descriptor, DescriptorSlot, KernelFunction, PAGE_BYTES, Rights};
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use image::{CompiledPolicy, ProgramPolicy};
use procman::directories::WorkingDirectories;
use procman::listing;
use procman::namespace::{self, NameEntry, Namespace};
use procman::policy::{self, CreateRequest};
use procman::portals::{Caller, Memory, Plan, PortalTable};
use procman::processes::{ProcessTable, WaitPlan, Watch};
use procman::signals::{self as signal_rules, Delivery};
use procman::sockets::{self, SocketEntry, SocketTable, SocketsReleased, StdioTable};
use procman::streams::{PipeEntry, PipeTable, Released};
use userlib::descriptor::OwnedDescriptor;
use userlib::interface::{Arrived, Call, Refusal};
use userlib::kernel::{self, DoorKind};
use userlib::loader::{BuildError, LoadError, ProgramImage};
use userlib::procman::ProcmanServer;
use userlib::raw::RawPages;
use userlib::{Message, Request, Response, Startup, println};
use zerocopy::FromBytes;
use zerocopy::IntoBytes;

use abi::signal::{
    CHLD, CONT, GroupReply, GroupRequest, JOB_CONTINUED, JOB_EXITED, JOB_RUNNING, JOB_STOPPED,
    JobReply, SAVE, SAVE_TIMED_OUT, SetGroupRequest, SignalActionReply, SignalActionRequest,
    SignalRequest, action, terminated_status,
};

extern crate alloc;

/// What procman holds; `'p` is the life of the compiled policy's bytes,
/// which `main` keeps for as long as procman serves.
struct Procman<'p> {
    policy: CompiledPolicy<'p>,
    namespace: Namespace,
    processes: ProcessTable,
    portals: PortalTable,
    pipes: PipeTable,
    /// Each live pipe's header page, mapped here: procman sets the ring's
    /// flags and wakes its waiters when a side goes (ABI.md §7a.3).
    pipe_headers: BTreeMap<u32, RawPages>,
    sockets: SocketTable,
    /// Each live socket's header page (both rings' headers), mapped here.
    socket_headers: BTreeMap<u32, RawPages>,
    /// The standard streams SPAWN gave each process.
    stdio: StdioTable,
    /// Each process's working directory (CHDIR, GETCWD; SPAWN hands it on).
    directories: WorkingDirectories,
    /// Each program's image once one process ran it, by program index.
    images: BTreeMap<usize, ProgramImage>,
    /// The process whose exit status ends the system (`run=NAME`).
    verdict: Option<u32>,
}

/// What a method returns: the reply's header, or the refusal.
type Answer<T> = Result<T, Refusal<ProcmanError>>;

/// What a start's refusal tells the caller.
fn refusal(error: LoadError) -> Refusal<ProcmanError> {
    match error {
        LoadError::NotInArchive => Refusal::Interface(ProcmanError::NoSuchProgram),
        LoadError::NotAProgram(_) => Refusal::Interface(ProcmanError::BadProgram),
        LoadError::ArgumentsTooLong => Refusal::Kernel(abi::Error::InvalidArgument),
        LoadError::Kernel(error) => Refusal::Kernel(error),
    }
}

fn text(bytes: &[u8]) -> Result<&str, ProcmanError> {
    core::str::from_utf8(bytes).map_err(|_| ProcmanError::BadName)
}

/// The name of an OPEN, UNLINK or LIST request.
fn name_of(header: NameRequest, bytes: &[u8]) -> Result<&str, ProcmanError> {
    if header.reserved != 0 || bytes.len() != header.name_length as usize {
        return Err(ProcmanError::BadRequest);
    }
    text(bytes)
}

impl<'p> Procman<'p> {
    /// Starts `program` with `descriptors` (and its manifest arguments unless
    /// `arguments` are given) and records it: procman loads it itself
    /// (ABI.md §7a.5), from its image, built the first time the program
    /// runs. The refusal says whether the descriptors already moved (into
    /// a child that never ran, and ended).
    fn start(
        &mut self,
        program: ProgramPolicy<'p>,
        arguments: Option<&[u8]>,
        descriptors: &[DescriptorSlot],
    ) -> Result<u32, BuildError> {
        let arguments = arguments.unwrap_or(program.arguments());
        let image = match self.images.entry(program.index()) {
            Entry::Occupied(image) => image.into_mut(),
            Entry::Vacant(slot) => {
                let image = ProgramImage::read(program.name()).map_err(|error| {
                    if let LoadError::NotAProgram(reason) = error {
                        println!(
                            "procman: {} is not a program this system runs: {reason:?}",
                            program.name()
                        );
                    }
                    BuildError {
                        error,
                        moved: false,
                    }
                })?;
                slot.insert(image)
            }
        };
        let unstarted = image.build(descriptors, arguments)?;
        let handle = unstarted.handle.descriptor();
        let pid = self
            .processes
            .add(program.index(), program.domain_index(), handle.0);
        // The cookie before the first thread, so its first call is known.
        let started =
            kernel::process_set_cookie(handle, u64::from(pid)).and_then(|()| unstarted.start());
        match started {
            // The table keeps the handle's number; it is closed when the
            // process ends.
            Ok(handle) => {
                let _ = handle.into_raw();
                Ok(pid)
            }
            // It never ran, and its handle is closed: it is gone.
            Err(error) => {
                let _ = self.processes.exited(pid, u32::MAX);
                Err(BuildError {
                    error: LoadError::Kernel(error),
                    moved: true,
                })
            }
        }
    }

    /// A process ended: free what it held here (its names, its watches of
    /// others), wake its waiters, and end the system if it was the one the
    /// command line named.
    fn ended(&mut self, pid: u32, status: u32) {
        reaper::forget(pid);
        if let Some(ended) = self.processes.exited(pid, status) {
            self.notify_parent(pid, JOB_EXITED);
            if let Some(handle) = ended.handle {
                let _ = kernel::close(Descriptor(handle));
            }
            // Each waiter's own event, once for each WAIT that handed it out.
            for watch in ended.watches {
                for _ in 0..watch.waits {
                    let _ = kernel::event_signal(Descriptor(watch.event));
                }
                let _ = kernel::close(Descriptor(watch.event));
            }
            for event in ended.abandoned {
                let _ = kernel::close(Descriptor(event));
            }
        }
        for entry in self.namespace.remove_owned_by(pid) {
            let _ = kernel::close(Descriptor(entry.descriptor));
        }
        // Its captures go, and the names of the portals it created; those
        // who captured them keep the memory (decision D24).
        for descriptor in self.portals.exited(pid).descriptors {
            let _ = kernel::close(Descriptor(descriptor));
        }
        let released = self.pipes.exited(pid);
        for &pipe in &released.touched {
            self.free_dead_lock(pipe, pid);
        }
        self.apply(released);
        let released = self.sockets.exited(pid);
        for &port in &released.touched {
            for header in [0, SOCKET_RING_B_HEADER] {
                self.free_dead_socket_lock(port, header, pid);
            }
        }
        self.apply_sockets(released);
        self.stdio.exited(pid);
        self.directories.exited(pid);
        if self.verdict == Some(pid) {
            println!("procman: process {pid} ended with status {status}; stopping");
            let _ = kernel::debug_exit(status);
        }
    }

    /// The memory a portal plan asks for.
    fn make(memory: Memory) -> Result<Option<OwnedDescriptor>, abi::Error> {
        match memory {
            Memory::Anonymous { pages } => kernel::memory_create(pages).map(Some),
            Memory::Direct { physical, length } => {
                kernel::memory_direct(physical, length).map(Some)
            }
            Memory::Unsized => Ok(None),
        }
    }

    /// A new named portal: its memory, a share-point's header and lock
    /// event, the caller's copies; recorded only once all of it exists
    /// (dropping what was made on a refusal closes it).
    fn create_portal(&mut self, call: &mut Call<'_>, plan: Plan) -> Answer<PortalReply> {
        let Plan::Create {
            name,
            memory,
            header,
            frames,
            mut entry,
            rights,
        } = plan
        else {
            return Err(ProcmanError::BadRequest.into());
        };
        let object = Self::make(memory)?;
        let mut lock = None;
        if let (Some(header), Some(object)) = (header, &object) {
            // The governing meta-structure, written once by procman before
            // anyone else can see the share-point.
            let page = RawPages::map_object(
                object.descriptor(),
                0,
                0,
                PAGE_BYTES,
                protection::READ | protection::WRITE,
            )?;
            let mut bytes = alloc::vec::Vec::from(header.as_bytes());
            for frame in &frames {
                bytes.extend_from_slice(&frame.to_le_bytes());
            }
            debug_assert!(bytes.len() >= SHARE_POINT_HEADER_SIZE);
            page.write(page.base(), &bytes);
            drop(page);
            lock = Some(kernel::event_create()?);
        }
        let writes = rights.contains(Rights::MAP_WRITE);
        if let Some(object) = &object {
            call.push_copy(object.descriptor(), rights)
                .map_err(|_| ProcmanError::BadRequest)?;
        }
        if let Some(event) = &lock
            && writes
        {
            call.push_copy(
                event.descriptor(),
                Rights(Rights::SIGNAL.0 | Rights::WAIT.0),
            )
            .map_err(|_| ProcmanError::BadRequest)?;
        }
        let reply = PortalReply {
            length: entry.length,
            data_offset: entry.data_offset,
            flags: REPLY_CREATED
                | if header.is_some() {
                    REPLY_SHARE_POINT
                } else {
                    0
                }
                | if writes { 0 } else { REPLY_READ_ONLY },
        };
        entry.object = object.map(|o| o.into_raw().0);
        entry.lock_event = lock.map(|e| e.into_raw().0);
        self.portals.insert(name, entry);
        Ok(reply)
    }

    /// A ring word of `pipe`'s header page.
    fn ring_word(&self, pipe: u32, offset: u64) -> Option<&core::sync::atomic::AtomicU32> {
        let page = self.pipe_headers.get(&pipe)?;
        page.word(page.base() + offset)
    }

    /// The ring lock of `pipe`, if `pid` (which ended) holds it: released
    /// as its holder would have, so the other holders go on (ABI.md §7a.3).
    fn free_dead_lock(&self, pipe: u32, pid: u32) {
        let (Some(owner), Some(lock), Some(entry)) = (
            self.ring_word(pipe, field::LOCK_OWNER),
            self.ring_word(pipe, field::LOCK),
            self.pipes.get(pipe),
        ) else {
            return;
        };
        if owner
            .compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && lock.fetch_sub(1, Ordering::Release) > 1
        {
            let _ = kernel::event_signal(Descriptor(entry.lock));
        }
    }

    /// Sets the flags of the sides that went and wakes whoever waits on
    /// the other side; closes the pipes nobody holds any more.
    fn apply(&mut self, released: Released) {
        for side in &released.sides {
            let writers = side.end == WRITE_END;
            let (flag, waiting) = if writers {
                (WRITERS_GONE, field::READERS_WAITING)
            } else {
                (READERS_GONE, field::WRITERS_WAITING)
            };
            let event = |e: &PipeEntry| if writers { e.data } else { e.room };
            let Some(event) = self.pipes.get(side.pipe).map(event).or_else(|| {
                released
                    .freed
                    .iter()
                    .find(|(p, _)| *p == side.pipe)
                    .map(|(_, e)| event(e))
            }) else {
                continue;
            };
            if let Some(flags) = self.ring_word(side.pipe, field::FLAGS) {
                flags.fetch_or(flag, Ordering::SeqCst);
            }
            // Every announced waiter; one that announces itself after this
            // swap sees the flag in its last look before waiting.
            let waiters = self
                .ring_word(side.pipe, waiting)
                .map_or(0, |w| w.swap(0, Ordering::SeqCst));
            for _ in 0..waiters {
                let _ = kernel::event_signal(Descriptor(event));
            }
        }
        for (pipe, entry) in released.freed {
            self.pipe_headers.remove(&pipe);
            for descriptor in entry.descriptors() {
                let _ = kernel::close(Descriptor(descriptor));
            }
        }
    }

    /// A ring word of the socket at `port`: ring A's header at 0, ring B's
    /// at `SOCKET_RING_B_HEADER`.
    fn socket_word(
        &self,
        port: u32,
        header: u64,
        offset: u64,
    ) -> Option<&core::sync::atomic::AtomicU32> {
        let page = self.socket_headers.get(&port)?;
        page.word(page.base() + header + offset)
    }

    /// A socket ring's lock, if `pid` (which ended) holds it: released.
    fn free_dead_socket_lock(&self, port: u32, header: u64, pid: u32) {
        let lock_event = self.sockets.get(port).map(|e| {
            if header == 0 {
                e.events[2]
            } else {
                e.events[5]
            }
        });
        let (Some(owner), Some(lock), Some(event)) = (
            self.socket_word(port, header, field::LOCK_OWNER),
            self.socket_word(port, header, field::LOCK),
            lock_event,
        ) else {
            return;
        };
        if owner
            .compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && lock.fetch_sub(1, Ordering::Release) > 1
        {
            let _ = kernel::event_signal(Descriptor(event));
        }
    }

    /// Sets a ring's `flags` and signals `event` once for each waiter
    /// announced in its header word `waiting`; one that announces itself
    /// after the swap sees the flag in its last look before waiting.
    fn side_gone(page: &RawPages, header: u64, flags: u32, waiting: u64, event: u32) {
        if let Some(word) = page.word(page.base() + header + field::FLAGS) {
            word.fetch_or(flags, Ordering::SeqCst);
        }
        let waiters = page
            .word(page.base() + header + waiting)
            .map_or(0, |w| w.swap(0, Ordering::SeqCst));
        for _ in 0..waiters {
            let _ = kernel::event_signal(Descriptor(event));
        }
    }

    /// For each socket side that went: the ring it writes gets its
    /// writers gone (its reader wakes), the ring it reads its readers gone
    /// (its writer wakes), each with the died flag when it ended without
    /// closing; then closes the sockets nobody holds.
    fn apply_sockets(&mut self, released: SocketsReleased) {
        for side in &released.sides {
            let entry = self.sockets.get(side.port).copied().or_else(|| {
                released
                    .freed
                    .iter()
                    .find(|(p, _)| *p == side.port)
                    .map(|(_, e)| *e)
            });
            let (Some(entry), Some(page)) = (entry, self.socket_headers.get(&side.port)) else {
                continue;
            };
            // Ring A: creator -> connector; ring B: connector -> creator.
            let (writes, reads) = if side.side == CREATOR {
                (0, SOCKET_RING_B_HEADER)
            } else {
                (SOCKET_RING_B_HEADER, 0)
            };
            let events = |header: u64| {
                if header == 0 {
                    [entry.events[0], entry.events[1]]
                } else {
                    [entry.events[3], entry.events[4]]
                }
            };
            let died = |flag: u32| if side.died { flag } else { 0 };
            Self::side_gone(
                page,
                writes,
                WRITERS_GONE | died(WRITER_DIED),
                field::READERS_WAITING,
                events(writes)[0],
            );
            Self::side_gone(
                page,
                reads,
                READERS_GONE | died(READER_DIED),
                field::WRITERS_WAITING,
                events(reads)[1],
            );
        }
        for (port, entry) in released.freed {
            self.socket_headers.remove(&port);
            for descriptor in entry.descriptors() {
                let _ = kernel::close(Descriptor(descriptor));
            }
        }
    }

    /// Puts a socket's descriptors in the reply: its memory (read-write,
    /// no TRANSFER: sides move only through procman) and its six events.
    fn push_socket(call: &mut Call<'_>, entry: &SocketEntry) -> Result<(), ProcmanError> {
        call.push_copy(
            Descriptor(entry.object),
            Rights(Rights::MAP_READ.0 | Rights::MAP_WRITE.0),
        )
        .map_err(|_| ProcmanError::BadRequest)?;
        for event in entry.events {
            call.push_copy(Descriptor(event), Rights(Rights::SIGNAL.0 | Rights::WAIT.0))
                .map_err(|_| ProcmanError::BadRequest)?;
        }
        Ok(())
    }

    /// A standard stream `pid` may give a child as stream `index`: a pipe
    /// end it holds (read for stdin, write for the others) or a side of a
    /// socket it holds.
    fn check_stream(&self, pid: u32, index: usize, stream: StdStream) -> Result<(), ProcmanError> {
        sockets::check_stream_kind(stream)?;
        match stream.kind {
            STREAM_PIPE => self
                .pipes
                .check_holds(pid, stream.number, stream_end(index)),
            STREAM_SOCKET => self.sockets.side_of(pid, stream.number).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Puts `entry`'s descriptors in the reply: the ring's memory (map it
    /// read-write; no TRANSFER: ends move only through procman, which so
    /// always knows who holds them) and its three events.
    fn push_pipe(call: &mut Call<'_>, entry: &PipeEntry) -> Result<(), ProcmanError> {
        let events = Rights(Rights::SIGNAL.0 | Rights::WAIT.0);
        call.push_copy(
            Descriptor(entry.object),
            Rights(Rights::MAP_READ.0 | Rights::MAP_WRITE.0),
        )
        .map_err(|_| ProcmanError::BadRequest)?;
        for event in [entry.data, entry.room, entry.lock] {
            call.push_copy(Descriptor(event), events)
                .map_err(|_| ProcmanError::BadRequest)?;
        }
        Ok(())
    }

    /// SOCKET_CONNECT of `port` for `pid` (SOCKET_CONNECT, or OPEN of
    /// `/sock/<port>`): the seven descriptors and msgRetVal the port.
    fn connect_socket(
        &mut self,
        call: &mut Call<'_>,
        pid: u32,
        port: u32,
    ) -> Result<(), ProcmanError> {
        let entry = self.sockets.connect(pid, port)?;
        if let Err(e) = Self::push_socket(call, &entry) {
            self.sockets.unconnect(pid, port);
            return Err(e);
        }
        call.set_value(port);
        Ok(())
    }

    /// A NAME_LIST record for `listed`, with its owner's program and its
    /// type's name from the manifest.
    fn name_record(&self, listed: &listing::Listed) -> NameListEntry {
        let mut record = NameListEntry::new(listed.kind, listed.name.as_bytes());
        record.flags = listed.flags;
        record.owner = listed.owner;
        record.security_type = listed.security_type;
        if let Some(program) = self
            .processes
            .get(listed.owner)
            .and_then(|process| self.policy.program_at(process.program))
        {
            copy_padded(&mut record.program, program.name().as_bytes());
        }
        if let Some(name) = self.policy.type_name(listed.security_type) {
            copy_padded(&mut record.type_name, name.as_bytes());
        }
        record
    }

    /// The caller's process id and domain, from the cookie procman set.
    /// Signals each watch's event once for each WAIT that handed it out.
    fn wake(watches: &[Watch]) {
        for watch in watches {
            for _ in 0..watch.waits {
                let _ = kernel::event_signal(Descriptor(watch.event));
            }
        }
    }

    /// What `signal` does to process `pid` (§7a.9, D71), every check made.
    fn deliver(&mut self, pid: u32, signal: u32, info: u64) {
        let Some(record) = self.processes.get(pid) else {
            return;
        };
        let Some(handle) = record.handle.map(Descriptor) else {
            return;
        };
        match signal_rules::plan(&record.signals, signal) {
            Delivery::Nothing => {}
            // Its end reaches procman as every end does (the notice).
            Delivery::Terminate(status) => {
                let _ = kernel::process_kill(handle, status);
            }
            Delivery::Stop(stop) => {
                if kernel::process_suspend(handle).is_ok() {
                    let watches = self.processes.stopped(pid, stop);
                    Self::wake(&watches);
                    self.notify_parent(pid, JOB_STOPPED);
                }
            }
            Delivery::Continue { catch } => {
                self.resume(pid, handle);
                if catch {
                    let _ = userlib::upcall::interrupt(handle, CONT, info);
                }
            }
            Delivery::Catch => {
                let _ = userlib::upcall::interrupt(handle, signal, info);
            }
        }
    }

    /// A stopped process runs again (CONT, SAVE_AND_END); its parent learns it.
    fn resume(&mut self, pid: u32, handle: Descriptor) {
        if self.processes.continued(pid) {
            let _ = kernel::process_resume(handle);
            self.notify_parent(pid, JOB_CONTINUED);
        }
    }

    /// CHLD to `child`'s parent when it catches it (its default is to
    /// ignore): info is the child's pid and its new `JOB_*` state (D83).
    fn notify_parent(&mut self, child: u32, state: u32) {
        let Some(parent) = self.processes.get(child).map(|r| r.parent) else {
            return;
        };
        let Some(record) = self.processes.get(parent).filter(|r| r.status.is_none()) else {
            return;
        };
        if record.signals.action(CHLD) != action::CATCH {
            return;
        }
        if let Some(handle) = record.handle {
            let info = u64::from(child) | u64::from(state) << 32;
            let _ = userlib::upcall::interrupt(Descriptor(handle), CHLD, info);
        }
    }

    /// WAIT's and WAIT_JOB's common part: the status of an ended process,
    /// or (None) the caller's own event for it pushed in reply slot 0.
    fn watch(
        &mut self,
        call: &mut Call<'_>,
        waiter: u32,
        pid: u32,
    ) -> Result<Option<u32>, Refusal<ProcmanError>> {
        let plan = self.processes.plan_wait(waiter, pid)?;
        let event = match plan {
            WaitPlan::Ended(status) => return Ok(Some(status)),
            // The caller's own event: no other process is ever given it.
            WaitPlan::Watching(event) => Descriptor(event),
            WaitPlan::NewWatch => kernel::event_create()?.into_raw(),
        };
        // A refusal from here on closes the event if it was made for it.
        let refuse = |e: ProcmanError| {
            if plan == WaitPlan::NewWatch {
                let _ = kernel::close(event);
            }
            e
        };
        call.push_copy(event, Rights(Rights::WAIT.0 | Rights::TRANSFER.0))
            .map_err(|_| refuse(ProcmanError::BadRequest))?;
        self.processes
            .record_wait(waiter, pid, event.0)
            .map_err(refuse)?;
        Ok(None)
    }

    fn caller(&self, call: &Call<'_>) -> Result<(u32, usize), ProcmanError> {
        let pid = u32::try_from(call.cookie()).map_err(|_| ProcmanError::UnknownCaller)?;
        match self.processes.get(pid) {
            Some(record) if record.status.is_none() => Ok((pid, record.domain)),
            _ => Err(ProcmanError::UnknownCaller),
        }
    }
}

/// The pipe end standard stream `index` takes: stdin reads, the others write.
fn stream_end(index: usize) -> u32 {
    if index == 0 { READ_END } else { WRITE_END }
}

impl ProcmanServer for Procman<'_> {
    fn create_object(
        &mut self,
        call: &mut Call<'_>,
        header: CreateObjectRequest,
        bytes: &[u8],
    ) -> Answer<()> {
        let (pid, domain) = self.caller(call)?;
        if header.reserved != 0
            || header.flags & !(CREATE_SYSTEM | CREATE_MOUNT) != 0
            || bytes.len() != header.name_length as usize
        {
            return Err(ProcmanError::BadRequest.into());
        }
        let name = if bytes.is_empty() {
            None
        } else {
            Some(text(bytes)?)
        };
        let system = header.flags & CREATE_SYSTEM != 0;
        let create = CreateRequest {
            system,
            name,
            security_type: header.security_type,
            caller: pid,
        };
        policy::check_create(&self.policy, domain, create, &self.namespace)?;
        let kind = if system {
            DoorKind::System
        } else {
            DoorKind::User
        };
        let door = kernel::door_create(kind, header.security_type)?;
        let keep = door.client.duplicate(Rights::DOOR_CLIENT)?;
        if call.push_move(door.owner, Rights::DOOR_OWNER).is_err()
            || call.push_move(door.client, Rights::DOOR_CLIENT).is_err()
        {
            return Err(ProcmanError::BadRequest.into());
        }
        match name {
            Some(name) => {
                let entry = NameEntry {
                    descriptor: keep.into_raw().0,
                    owner: pid,
                    security_type: header.security_type,
                    system,
                    mount: header.flags & CREATE_MOUNT != 0,
                };
                if let Err(e) = self.namespace.insert(name, entry) {
                    let _ = kernel::close(Descriptor(entry.descriptor));
                    return Err(e.into());
                }
            }
            None => drop(keep),
        }
        Ok(())
    }

    fn open(&mut self, call: &mut Call<'_>, header: NameRequest, bytes: &[u8]) -> Answer<()> {
        let (pid, domain) = self.caller(call)?;
        let name = name_of(header, bytes)?;
        // `/sock/<port>` is the socket's name: OPEN connects (D96).
        if namespace::is_socket_name(name) {
            namespace::check_name(name)?;
            let port = namespace::socket_port(name).ok_or(ProcmanError::NoSuchName)?;
            self.connect_socket(call, pid, port)?;
            return Ok(());
        }
        let entry = *self.namespace.lookup(name)?;
        policy::check_open(&self.policy, domain, entry.security_type)?;
        call.push_copy(Descriptor(entry.descriptor), Rights::DOOR_CLIENT)
            .map_err(|_| ProcmanError::BadRequest)?;
        Ok(())
    }

    fn unlink(&mut self, call: &mut Call<'_>, header: NameRequest, bytes: &[u8]) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        let name = name_of(header, bytes)?;
        let entry = self.namespace.unlink(name, pid)?;
        let _ = kernel::close(Descriptor(entry.descriptor));
        Ok(())
    }

    fn list(
        &mut self,
        call: &mut Call<'_>,
        header: NameRequest,
        bytes: &[u8],
    ) -> Answer<ListReply> {
        self.caller(call)?;
        let directory = name_of(header, bytes)?;
        // Sockets are named `/sock/<port>` (ABI.md §7a.3), beside whatever
        // the namespace holds there.
        let mut names = match self.namespace.list(directory) {
            Err(ProcmanError::NoSuchName) if directory == "/sock" && self.sockets.sockets() > 0 => {
                Vec::new()
            }
            other => other?,
        };
        if directory == "/sock" {
            names.extend(self.sockets.ports().map(|p| alloc::format!("{p}")));
        } else if directory == "/"
            && self.sockets.sockets() > 0
            && !names.iter().any(|n| n == "sock/")
        {
            names.push(alloc::string::String::from("sock/"));
            names.sort();
        }
        // The header has its place in the reply already.
        let room = call.room();
        let mut text: Vec<u8> = Vec::new();
        let mut truncated = 0;
        for name in &names {
            if text.len() + name.len() + 1 > room {
                truncated = 1;
                break;
            }
            text.extend_from_slice(name.as_bytes());
            text.push(b'\n');
        }
        call.push_bytes(&text)
            .map_err(|_| ProcmanError::BadRequest)?;
        Ok(ListReply {
            count: names.len() as u32,
            truncated,
        })
    }

    fn spawn(
        &mut self,
        call: &mut Call<'_>,
        header: SpawnProgramRequest,
        bytes: &[u8],
        descriptors: &mut Arrived<'_>,
    ) -> Answer<ProcessReply> {
        let (parent, domain) = self.caller(call)?;
        let name_end = header.name_length as usize;
        if bytes.len() != name_end.saturating_add(header.argument_length as usize) {
            return Err(ProcmanError::BadRequest.into());
        }
        let (name, arguments) = bytes
            .split_at_checked(name_end)
            .ok_or(ProcmanError::BadRequest)?;
        let name = text(name).map_err(|_| ProcmanError::NoSuchProgram)?;
        let program = policy::check_spawn(&self.policy, domain, name)?;
        // The caller's descriptors arrived in procman's table; move them on.
        let slots: Vec<DescriptorSlot> = (0..descriptors.len())
            .filter_map(|index| descriptors.slot(index))
            .map(|slot| DescriptorSlot::moving(Descriptor(slot.descriptor), Rights(slot.rights)))
            .collect();
        let streams = header.streams;
        for (index, stream) in streams.iter().enumerate() {
            self.check_stream(parent, index, *stream)?;
        }
        let given = (!arguments.is_empty()).then_some(arguments);
        let started = self.start(program, given, &slots);
        if started.as_ref().is_ok() || started.as_ref().is_err_and(|e| e.moved) {
            for index in 0..descriptors.len() {
                // Moved into the child: forget them without closing.
                if let Some(moved) = descriptors.take(index) {
                    let _ = moved.into_raw();
                }
            }
        }
        let pid = started.map_err(|e| refusal(e.error))?;
        if let Some(record) = self.processes.get_mut(pid) {
            record.parent = parent;
        }
        // Its group, session and ignored signals are its parent's (§7a.9).
        self.processes.inherit(pid, parent);
        // The child is recorded but not served before this reply: its
        // first call (its start-up's STDIO) finds its streams.
        for (index, stream) in streams.iter().enumerate() {
            match stream.kind {
                STREAM_PIPE => self
                    .pipes
                    .grant_stream(stream.number, stream_end(index), pid),
                STREAM_SOCKET => self.sockets.grant_stream(parent, stream.number, pid),
                _ => {}
            }
        }
        self.stdio.insert(pid, streams);
        self.directories.inherit(parent, pid);
        call.set_value(pid);
        Ok(ProcessReply::new(pid))
    }

    fn wait(&mut self, call: &mut Call<'_>, header: WaitRequest) -> Answer<WaitReply> {
        let (waiter, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        // The status is in the reply; msgRetVal stays 0, since a status
        // of -1 (a fault) would read as an error reply.
        Ok(match self.watch(call, waiter, header.pid)? {
            Some(status) => WaitReply { exited: 1, status },
            None => WaitReply {
                exited: 0,
                status: 0,
            },
        })
    }

    fn portal(
        &mut self,
        call: &mut Call<'_>,
        header: PortalRequest,
        bytes: &[u8],
    ) -> Answer<PortalReply> {
        let (pid, domain) = self.caller(call)?;
        let domain_policy = policy::domain(&self.policy, domain)?;
        let may_register = |name: &str| domain_policy.may_register(name);
        let caller = Caller {
            pid,
            domain,
            classes: domain_policy.portal_classes(),
            may_register: &may_register,
        };
        let plan = self.portals.plan(&caller, &header, bytes)?;
        let read_only = |rights: Rights| {
            if rights.contains(Rights::MAP_WRITE) {
                0
            } else {
                REPLY_READ_ONLY
            }
        };
        match plan {
            Plan::Private { memory, rights } => {
                let object = Self::make(memory)?.ok_or(ProcmanError::BadRequest)?;
                let length = kernel::memory_info(object.descriptor())?.pages * PAGE_BYTES;
                call.push_move(object, rights)
                    .map_err(|_| ProcmanError::BadRequest)?;
                Ok(PortalReply {
                    length,
                    data_offset: 0,
                    flags: REPLY_CREATED | read_only(rights),
                })
            }
            Plan::Special {
                pager,
                pages,
                cookie,
                rights,
            } => {
                // The chain's first server, as OPEN would find it for the caller.
                let entry = *self.namespace.lookup(&pager)?;
                policy::check_open(&self.policy, domain, entry.security_type)?;
                // Its door's owner closed it: no pager serves the chain.
                let object = kernel::pager_create(Descriptor(entry.descriptor), pages, cookie)
                    .map_err(|e| match e {
                        abi::Error::PeerDied => Refusal::Interface(ProcmanError::PortalNoPager),
                        e => Refusal::Kernel(e),
                    })?;
                call.push_move(object, rights)
                    .map_err(|_| ProcmanError::BadRequest)?;
                Ok(PortalReply {
                    length: u64::from(pages) * PAGE_BYTES,
                    data_offset: 0,
                    flags: REPLY_CREATED | read_only(rights),
                })
            }
            Plan::Create { .. } => self.create_portal(call, plan),
            Plan::Capture { name, rights, lock } => {
                let entry = self
                    .portals
                    .get(&name)
                    .ok_or(ProcmanError::NoSuchName)?
                    .clone();
                if let Some(object) = entry.object {
                    call.push_copy(Descriptor(object), rights)
                        .map_err(|_| ProcmanError::BadRequest)?;
                }
                if let (true, Some(event)) = (lock, entry.lock_event) {
                    call.push_copy(Descriptor(event), Rights(Rights::SIGNAL.0 | Rights::WAIT.0))
                        .map_err(|_| ProcmanError::BadRequest)?;
                }
                self.portals.record_capture(&name, pid);
                Ok(PortalReply {
                    length: entry.length,
                    data_offset: entry.data_offset,
                    flags: if entry.lock_event.is_some() {
                        REPLY_SHARE_POINT
                    } else {
                        0
                    } | read_only(rights),
                })
            }
            Plan::Cow {
                name,
                length,
                rights,
            } => {
                let entry = self.portals.get(&name).ok_or(ProcmanError::NoSuchName)?;
                let object = entry.object.ok_or(ProcmanError::PortalUnsized)?;
                let data_offset = entry.data_offset;
                let child = kernel::memory_cow(Descriptor(object), 0, length)?;
                call.push_move(child, rights)
                    .map_err(|_| ProcmanError::BadRequest)?;
                Ok(PortalReply {
                    length,
                    data_offset,
                    flags: REPLY_CREATED | read_only(rights),
                })
            }
        }
    }

    fn portal_size(
        &mut self,
        call: &mut Call<'_>,
        header: PortalSizeRequest,
        bytes: &[u8],
    ) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 || bytes.len() != header.identifier_length as usize {
            return Err(ProcmanError::BadRequest.into());
        }
        let name = text(bytes)?;
        let pages = self.portals.plan_size(pid, name, header.length)?;
        let object = kernel::memory_create(pages)?;
        self.portals.sized(name, object.into_raw().0, pages);
        Ok(())
    }

    fn portal_release(
        &mut self,
        call: &mut Call<'_>,
        header: NameRequest,
        bytes: &[u8],
    ) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        let name = name_of(header, bytes)?;
        self.portals.release(pid, name)?;
        Ok(())
    }

    fn portal_unlink(
        &mut self,
        call: &mut Call<'_>,
        header: NameRequest,
        bytes: &[u8],
    ) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        let name = name_of(header, bytes)?;
        for descriptor in self.portals.unlink(pid, name)?.descriptors {
            let _ = kernel::close(Descriptor(descriptor));
        }
        Ok(())
    }

    fn portal_table(&mut self, call: &mut Call<'_>) -> Answer<PortalTableReply> {
        self.caller(call)?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(PortalTableReply::new(
            count(self.portals.portals()),
            count(self.portals.captures()),
            count(self.portals.descriptors()),
        ))
    }

    fn pipe_create(&mut self, call: &mut Call<'_>) -> Answer<PipeReply> {
        let (pid, _) = self.caller(call)?;
        self.pipes.check_create(pid)?;
        // Everything is made before anything is recorded: a failure drops
        // (closes) what was made, and the table is unchanged.
        let object = kernel::memory_create(PIPE_PAGES)?;
        let header = RawPages::map_object(
            object.descriptor(),
            0,
            0,
            PAGE_BYTES,
            protection::READ | protection::WRITE,
        )?;
        header.write(header.base(), RingHeader::new(PIPE_CAPACITY).as_bytes());
        let data = kernel::event_create()?;
        let room = kernel::event_create()?;
        let lock = kernel::event_create()?;
        let entry = PipeEntry {
            object: object.descriptor().0,
            data: data.descriptor().0,
            room: room.descriptor().0,
            lock: lock.descriptor().0,
        };
        Self::push_pipe(call, &entry)?;
        let entry = PipeEntry {
            object: object.into_raw().0,
            data: data.into_raw().0,
            room: room.into_raw().0,
            lock: lock.into_raw().0,
        };
        let pipe = self.pipes.insert(pid, entry);
        self.pipe_headers.insert(pipe, header);
        call.set_value(pipe);
        Ok(PipeReply {
            pipe,
            capacity: PIPE_CAPACITY,
        })
    }

    fn pipe_close(&mut self, call: &mut Call<'_>, header: PipeEndRequest) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        let released = self.pipes.close(pid, header.pipe, header.end)?;
        self.apply(released);
        Ok(())
    }

    fn pipe_grant(&mut self, call: &mut Call<'_>, header: PipeGrantRequest) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let alive = self
            .processes
            .get(header.pid)
            .is_some_and(|record| record.status.is_none());
        self.pipes
            .grant(pid, header.pipe, header.end, header.pid, alive)?;
        Ok(())
    }

    fn pipe_open(&mut self, call: &mut Call<'_>, header: PipeEndRequest) -> Answer<PipeReply> {
        let (pid, _) = self.caller(call)?;
        let entry = self.pipes.open(pid, header.pipe, header.end)?;
        if let Err(e) = Self::push_pipe(call, &entry) {
            self.pipes.unopen(pid, header.pipe, header.end);
            return Err(e.into());
        }
        call.set_value(header.pipe);
        Ok(PipeReply {
            pipe: header.pipe,
            capacity: PIPE_CAPACITY,
        })
    }

    fn stream_table(&mut self, call: &mut Call<'_>) -> Answer<StreamTableReply> {
        self.caller(call)?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(StreamTableReply {
            pipes: count(self.pipes.pipes()),
            ends: count(self.pipes.ends()),
            descriptors: count(self.pipes.descriptors() + self.sockets.descriptors()),
            sockets: count(self.sockets.sockets()),
            socket_ends: count(self.sockets.ends()),
            stdio: count(self.stdio.len()),
        })
    }

    fn stdio(&mut self, call: &mut Call<'_>) -> Answer<StdioReply> {
        let (pid, _) = self.caller(call)?;
        Ok(StdioReply {
            streams: self.stdio.streams(pid),
        })
    }

    fn stdio_open(
        &mut self,
        call: &mut Call<'_>,
        header: StdioOpenRequest,
    ) -> Answer<StdioOpenReply> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let stream = self.stdio.check_open(pid, header.stream)?;
        let reply = if stream.kind == STREAM_PIPE {
            let end = stream_end(header.stream as usize);
            let entry = self.pipes.open(pid, stream.number, end)?;
            if let Err(e) = Self::push_pipe(call, &entry) {
                self.pipes.unopen(pid, stream.number, end);
                return Err(e.into());
            }
            StdioOpenReply {
                kind: STREAM_PIPE,
                number: stream.number,
                end,
                capacity: PIPE_CAPACITY,
            }
        } else {
            let (entry, side) = self.sockets.open(pid, stream.number)?;
            if let Err(e) = Self::push_socket(call, &entry) {
                self.sockets.unopen(pid, stream.number);
                return Err(e.into());
            }
            StdioOpenReply {
                kind: STREAM_SOCKET,
                number: stream.number,
                end: side,
                capacity: SOCKET_CAPACITY,
            }
        };
        self.stdio.opened(pid, header.stream);
        call.set_value(stream.number);
        Ok(reply)
    }

    fn socket_create(&mut self, call: &mut Call<'_>, header: SocketRequest) -> Answer<SocketReply> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let port = self.sockets.check_create(pid, header.port)?;
        // Everything is made before anything is recorded: a failure drops
        // (closes) what was made, and the table is unchanged.
        let object = kernel::memory_create(SOCKET_PAGES)?;
        let page = RawPages::map_object(
            object.descriptor(),
            0,
            0,
            PAGE_BYTES,
            protection::READ | protection::WRITE,
        )?;
        let ring = RingHeader::new(SOCKET_CAPACITY);
        page.write(page.base(), ring.as_bytes());
        page.write(page.base() + SOCKET_RING_B_HEADER, ring.as_bytes());
        let mut events = Vec::with_capacity(6);
        for _ in 0..6 {
            events.push(kernel::event_create()?);
        }
        let raw = |i: usize| events.get(i).map_or(0, |e| e.descriptor().0);
        let entry = SocketEntry {
            object: object.descriptor().0,
            events: [raw(0), raw(1), raw(2), raw(3), raw(4), raw(5)],
        };
        Self::push_socket(call, &entry)?;
        let _ = object.into_raw();
        for event in events {
            let _ = event.into_raw();
        }
        self.sockets.insert(pid, port, entry);
        self.socket_headers.insert(port, page);
        call.set_value(port);
        Ok(SocketReply {
            port,
            side: CREATOR,
            capacity: SOCKET_CAPACITY,
            reserved: 0,
        })
    }

    fn socket_connect(
        &mut self,
        call: &mut Call<'_>,
        header: SocketRequest,
    ) -> Answer<SocketReply> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        self.connect_socket(call, pid, header.port)?;
        Ok(SocketReply {
            port: header.port,
            side: abi::stream::CONNECTOR,
            capacity: SOCKET_CAPACITY,
            reserved: 0,
        })
    }

    fn socket_close(&mut self, call: &mut Call<'_>, header: SocketRequest) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let released = self.sockets.close(pid, header.port)?;
        self.apply_sockets(released);
        Ok(())
    }

    fn device_ports(&mut self, call: &mut Call<'_>, header: IoPortsRequest) -> Answer<()> {
        let (pid, domain) = self.caller(call)?;
        policy::check_ports(&self.policy, domain, header)?;
        let handle = self
            .processes
            .get(pid)
            .and_then(|record| record.handle)
            .ok_or(ProcmanError::UnknownCaller)?;
        // The kernel's own refusals (KERNEL_DEVICE, TABLE_FULL) reach the
        // caller as they are; a refused grant changes nothing.
        kernel::io_port_grant(Descriptor(handle), header.first, header.count)?;
        Ok(())
    }

    fn device_interrupt(
        &mut self,
        call: &mut Call<'_>,
        header: InterruptLineRequest,
    ) -> Answer<()> {
        let (_, domain) = self.caller(call)?;
        policy::check_interrupt(&self.policy, domain, header)?;
        // The interrupt object holds its own reference to the event, so
        // both can move to the caller; on a refusal, dropping them closes
        // procman's (nothing is left behind).
        let event = kernel::event_create()?;
        let interrupt = kernel::interrupt_create(header.line, event.descriptor())?;
        if call.push_move(interrupt, Rights::INTERRUPT).is_err()
            || call
                .push_move(event, Rights(Rights::WAIT.0 | Rights::TRANSFER.0))
                .is_err()
        {
            return Err(ProcmanError::BadRequest.into());
        }
        Ok(())
    }

    fn console_log(&mut self, call: &mut Call<'_>) -> Answer<()> {
        let (_, domain) = self.caller(call)?;
        policy::check_console(&self.policy, domain)?;
        // As for an interrupt: the kernel-log object holds the event, both
        // move to the caller, and a refusal (LOG_TAKEN) closes what was made.
        let event = kernel::event_create()?;
        let log = kernel::log_take(event.descriptor())?;
        if call.push_move(log, Rights::KERNEL_LOG).is_err()
            || call
                .push_move(event, Rights(Rights::WAIT.0 | Rights::TRANSFER.0))
                .is_err()
        {
            return Err(ProcmanError::BadRequest.into());
        }
        Ok(())
    }

    fn process_list(
        &mut self,
        call: &mut Call<'_>,
        header: ProcessListRequest,
    ) -> Answer<ProcessListReply> {
        self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let mut count = 0u32;
        let mut more = 0;
        for (pid, record) in self.processes.after(header.after) {
            if count as usize == MAX_PROCESS_ENTRIES {
                more = 1;
                break;
            }
            let mut entry = ProcessEntry {
                pid,
                parent: record.parent,
                state: if record.status.is_some() {
                    PROCESS_ENDED
                } else {
                    PROCESS_RUNNING
                },
                status: record.status.unwrap_or(0),
                domain: [0; 16],
                name: [0; 48],
            };
            if let Some(program) = self.policy.program_at(record.program) {
                copy_padded(&mut entry.name, program.name().as_bytes());
                copy_padded(&mut entry.domain, program.domain().name().as_bytes());
            }
            call.push_bytes(entry.as_bytes())
                .map_err(|_| ProcmanError::BadRequest)?;
            count += 1;
        }
        Ok(ProcessListReply { count, more })
    }

    fn kill(&mut self, call: &mut Call<'_>, header: KillRequest) -> Answer<()> {
        let (caller, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let record = self
            .processes
            .get(header.pid)
            .ok_or(ProcmanError::NoSuchProcess)?;
        let handle = record.handle.ok_or(ProcmanError::NoSuchProcess)?;
        // The caller's descendants, not only its children (D73).
        if !self.processes.is_ancestor(caller, header.pid) {
            return Err(ProcmanError::NotParent.into());
        }
        // Its end reaches procman as any end does: the PROCESS_EXITED
        // notice, with the status KILLED.
        kernel::process_kill(Descriptor(handle), KILLED)?;
        Ok(())
    }

    fn signal(&mut self, call: &mut Call<'_>, header: SignalRequest) -> Answer<()> {
        let (caller, _) = self.caller(call)?;
        // Every target checked (and permitted) before the first delivery.
        let targets = self.processes.signal_targets(caller, &header)?;
        for pid in targets {
            self.deliver(pid, header.signal, header.info);
        }
        Ok(())
    }

    fn signal_action(
        &mut self,
        call: &mut Call<'_>,
        header: SignalActionRequest,
    ) -> Answer<SignalActionReply> {
        let (caller, _) = self.caller(call)?;
        let previous = self
            .processes
            .set_action(caller, header.signal, header.action)?;
        Ok(SignalActionReply {
            previous,
            reserved: 0,
        })
    }

    fn set_group(&mut self, call: &mut Call<'_>, header: SetGroupRequest) -> Answer<()> {
        let (caller, _) = self.caller(call)?;
        self.processes.set_group(caller, header.pid, header.group)?;
        Ok(())
    }

    fn new_session(&mut self, call: &mut Call<'_>) -> Answer<GroupReply> {
        let (caller, _) = self.caller(call)?;
        let (group, session) = self.processes.new_session(caller)?;
        Ok(GroupReply { group, session })
    }

    fn group_of(&mut self, call: &mut Call<'_>, header: GroupRequest) -> Answer<GroupReply> {
        let (caller, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let pid = if header.pid == 0 { caller } else { header.pid };
        let (group, session) = self.processes.group_of(pid)?;
        Ok(GroupReply { group, session })
    }

    fn wait_job(&mut self, call: &mut Call<'_>, header: GroupRequest) -> Answer<JobReply> {
        let (waiter, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let stopped = self
            .processes
            .get(header.pid)
            .filter(|r| r.status.is_none())
            .and_then(|r| r.signals.stopped);
        if let Some(signal) = stopped {
            return Ok(JobReply {
                state: JOB_STOPPED,
                status: signal,
            });
        }
        Ok(match self.watch(call, waiter, header.pid)? {
            Some(status) => JobReply {
                state: JOB_EXITED,
                status,
            },
            None => JobReply {
                state: JOB_RUNNING,
                status: 0,
            },
        })
    }

    fn save_and_end(&mut self, call: &mut Call<'_>, header: GroupRequest) -> Answer<()> {
        let (caller, _) = self.caller(call)?;
        if header.reserved != 0 {
            return Err(ProcmanError::BadRequest.into());
        }
        let pid = header.pid;
        let record = self
            .processes
            .get(pid)
            .filter(|r| r.status.is_none())
            .ok_or(ProcmanError::NoSuchProcess)?;
        let handle = Descriptor(record.handle.ok_or(ProcmanError::NoSuchProcess)?);
        if !self.processes.may_signal(caller, pid) {
            return Err(ProcmanError::SignalDenied.into());
        }
        match record.signals.action(SAVE) {
            // It will not save: ended at once, as past the bound (D85).
            action::IGNORE => kernel::process_kill(handle, SAVE_TIMED_OUT)?,
            action::CATCH => {
                // The bound first: without room for it, nothing is asked.
                reaper::arm(pid, handle)?;
                self.resume(pid, handle);
                let _ = userlib::upcall::interrupt(handle, SAVE, 0);
            }
            _ => kernel::process_kill(handle, terminated_status(SAVE))?,
        }
        Ok(())
    }

    fn name_list(
        &mut self,
        call: &mut Call<'_>,
        header: NameListRequest,
        bytes: &[u8],
    ) -> Answer<NameListReply> {
        self.caller(call)?;
        if bytes.len() != header.name_length as usize {
            return Err(ProcmanError::BadRequest.into());
        }
        let directory = text(bytes)?;
        let entries = listing::list_directory(&self.namespace, self.sockets.listing(), directory)?;
        // As many as the caller's buffer holds, at most MAX_NAME_ENTRIES.
        let fit = call.room() / size_of::<NameListEntry>();
        let (page, mut more) = listing::page(&entries, header.skip, fit.min(MAX_NAME_ENTRIES));
        if page.is_empty() && more {
            // Not even one entry fits: the caller's buffer is too small.
            return Err(ProcmanError::BadRequest.into());
        }
        let mut count = 0u32;
        for listed in page {
            if call
                .push_bytes(self.name_record(listed).as_bytes())
                .is_err()
            {
                more = true;
                break;
            }
            count += 1;
        }
        Ok(NameListReply {
            count,
            more: u32::from(more),
        })
    }

    fn chdir(&mut self, call: &mut Call<'_>, header: NameRequest, bytes: &[u8]) -> Answer<()> {
        let (pid, _) = self.caller(call)?;
        if header.reserved != 0 || bytes.len() != header.name_length as usize {
            return Err(ProcmanError::BadRequest.into());
        }
        let path = core::str::from_utf8(bytes).map_err(|_| ProcmanError::BadDirectory)?;
        namespace::check_directory(path)?;
        self.directories.set(pid, path);
        Ok(())
    }

    fn getcwd(&mut self, call: &mut Call<'_>) -> Answer<DirectoryReply> {
        let (pid, _) = self.caller(call)?;
        let path = self.directories.get(pid);
        call.push_bytes(path.as_bytes())
            .map_err(|_| ProcmanError::BadRequest)?;
        Ok(DirectoryReply {
            length: path.len() as u32,
            reserved: 0,
        })
    }

    /// The kernel's PROCESS_EXITED notices; any other function is unknown.
    fn other_function(
        &mut self,
        request: &mut Request<'_>,
        _reply: &mut Message<&mut [u8]>,
    ) -> Response {
        if request.function() != KernelFunction::ProcessExited.function() {
            return Response::Error(ProcmanError::UnknownFunction as u32);
        }
        // Cookie 0: a process that ended before procman gave it an id
        // (one it was building); nothing here is its.
        if let Ok(notice) = ProcessExitNotice::read_from_bytes(request.data())
            && let Ok(pid) = u32::try_from(notice.cookie)
            && pid != 0
        {
            self.ended(pid, notice.status);
        }
        Response::Reply(0)
    }
}

/// `bytes` at the start of `field`, cut to fit, the rest NUL.
fn copy_padded(field: &mut [u8], bytes: &[u8]) {
    let length = bytes.len().min(field.len());
    field[..length].copy_from_slice(&bytes[..length]);
}

/// procman's entry: set up, start the manifest's programs, serve forever.
pub fn main(startup: Startup) -> i32 {
    let door = match kernel::door_create(DoorKind::System, 0) {
        Ok(door) => door,
        Err(e) => {
            println!("procman: cannot create its door: {e}");
            return 1;
        }
    };
    if let Err(e) = kernel::manager_register(door.owner.descriptor()) {
        println!("procman: cannot register as the process manager: {e}");
        return 1;
    }
    // The policy is read in place: `bytes` outlive the serving loop below.
    let Ok(bytes) = kernel::archive_read_all(image::POLICY_ENTRY) else {
        println!("procman: the system policy is unusable: the boot archive has no system.policy");
        return 1;
    };
    let policy = match CompiledPolicy::parse(&bytes) {
        Ok(policy) => policy,
        Err(reason) => {
            println!("procman: the system policy is unusable: {reason}");
            return 1;
        }
    };
    let mut procman = Procman {
        policy,
        namespace: Namespace::new(),
        processes: ProcessTable::new(),
        portals: PortalTable::new(),
        pipes: PipeTable::new(),
        pipe_headers: BTreeMap::new(),
        sockets: SocketTable::new(),
        socket_headers: BTreeMap::new(),
        stdio: StdioTable::new(),
        directories: WorkingDirectories::new(),
        images: BTreeMap::new(),
        verdict: None,
    };
    let command_line = core::str::from_utf8(startup.arguments).unwrap_or("");
    let run = image::cmdline::value(command_line, "run");
    for program in policy.programs() {
        let name = program.name();
        if !program.starts_at_boot() && run != Some(name) {
            continue;
        }
        match procman.start(program, None, &[]) {
            Ok(pid) => {
                println!("procman: started {name} as process {pid}");
                if run == Some(name) {
                    procman.verdict = Some(pid);
                }
            }
            Err(_) => println!("procman: could not start {name}"),
        }
    }
    if let Some(name) = run
        && procman.verdict.is_none()
    {
        println!("procman: run={name}: no such program in the manifest");
        let _ = kernel::debug_exit(1);
    }
    let error = procman.serve(&door.owner);
    println!("procman: serving stopped: {error}");
    1
}

/// The bound of SAVE_AND_END (ABI.md §7a.9, D85): a thread of procman,
/// started at the first SAVE_AND_END of a process that catches SAVE,
/// holds a copy of each such process's handle with its deadline
/// (`SAVE_BOUND_TICKS` from the request) and ends it with `SAVE_TIMED_OUT`
/// past it. While no deadline is armed it waits on an event; while one
/// is, it polls CLOCK and yields (the kernel has no timed wait). The main
/// thread takes a slot back when its process ends; each slot's handle is
/// taken with one atomic swap, so exactly one of the two threads closes it.
mod reaper {
    use super::*;
    use core::sync::atomic::{AtomicU32, AtomicU64};

    /// Saves pending at once; past it SAVE_AND_END is refused.
    const SLOTS: usize = 16;
    static HANDLES: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
    static PIDS: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
    static DEADLINES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
    /// The reaper's wake-up event (0: not started yet).
    static WAKE: AtomicU32 = AtomicU32::new(0);

    /// Arms the bound for `pid`: a copy of its handle, its deadline.
    pub(super) fn arm(pid: u32, handle: Descriptor) -> Result<(), Refusal<ProcmanError>> {
        if PIDS.iter().any(|p| p.load(Ordering::Acquire) == pid) {
            return Ok(()); // armed already: the first deadline stands
        }
        let slot = HANDLES
            .iter()
            .position(|h| h.load(Ordering::Acquire) == 0)
            .ok_or(ProcmanError::TooManySaves)?;
        start()?;
        let now = kernel::clock()?.ticks;
        let copy = kernel::duplicate(handle, Rights::SEND)?.into_raw();
        DEADLINES[slot].store(now + abi::signal::SAVE_BOUND_TICKS, Ordering::Release);
        PIDS[slot].store(pid, Ordering::Release);
        HANDLES[slot].store(copy.0, Ordering::Release);
        let _ = kernel::event_signal(Descriptor(WAKE.load(Ordering::Acquire)));
        Ok(())
    }

    /// `pid` ended: its slot (if any) is free again.
    pub(super) fn forget(pid: u32) {
        for slot in 0..SLOTS {
            if PIDS[slot].load(Ordering::Acquire) == pid {
                let handle = HANDLES[slot].swap(0, Ordering::AcqRel);
                PIDS[slot].store(0, Ordering::Release);
                if handle != 0 {
                    let _ = kernel::close(Descriptor(handle));
                }
            }
        }
    }

    fn start() -> Result<(), abi::Error> {
        if WAKE.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let event = kernel::event_create()?.into_raw();
        WAKE.store(event.0, Ordering::Release);
        let thread = userlib::thread::spawn_thread(move || run(event), 16 * 1024);
        match thread {
            Ok(thread) => {
                let _ = thread.into_raw();
                Ok(())
            }
            Err(error) => {
                WAKE.store(0, Ordering::Release);
                let _ = kernel::close(event);
                Err(error)
            }
        }
    }

    fn run(event: Descriptor) {
        loop {
            if HANDLES.iter().all(|h| h.load(Ordering::Acquire) == 0) {
                let _ = kernel::event_wait(event);
                continue;
            }
            let now = kernel::clock().map_or(0, |c| c.ticks);
            for slot in 0..SLOTS {
                if HANDLES[slot].load(Ordering::Acquire) == 0
                    || now < DEADLINES[slot].load(Ordering::Acquire)
                {
                    continue;
                }
                let handle = HANDLES[slot].swap(0, Ordering::AcqRel);
                if handle != 0 {
                    let _ = kernel::process_kill(Descriptor(handle), SAVE_TIMED_OUT);
                    let _ = kernel::close(Descriptor(handle));
                }
            }
            let _ = kernel::yield_now();
        }
    }
}
