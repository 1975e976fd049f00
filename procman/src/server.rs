//! The server: start-up, the request loop and one handler per function.

use abi::kcall::ProcessExitNotice;
use abi::procman::{
    CREATE_OBJECT, CREATE_SYSTEM, CreateObjectRequest, LIST, ListReply, NameRequest, OPEN,
    ProcessReply, ProcmanError, SPAWN, SpawnProgramRequest, UNLINK, WAIT, WaitReply, WaitRequest,
};
use abi::{Descriptor, DescriptorSlot, KernelFunction, Rights};
use alloc::vec::Vec;
use image::{CompiledPolicy, ProgramPolicy};
use procman::namespace::{NameEntry, Namespace};
use procman::policy::{self, CreateRequest};
use procman::processes::{ProcessTable, WaitPlan};
use userlib::kernel::{self, DoorKind};
use userlib::message::Message;
use userlib::server::{Request, Response, Server, serve};
use userlib::{Startup, println};
use zerocopy::FromBytes;

extern crate alloc;

/// What procman holds; `'p` is the life of the compiled policy's bytes,
/// which `main` keeps for as long as procman serves.
struct Procman<'p> {
    policy: CompiledPolicy<'p>,
    namespace: Namespace,
    processes: ProcessTable,
    /// The process whose exit status ends the system (`run=NAME`).
    verdict: Option<u32>,
}

fn error(e: ProcmanError) -> Response {
    Response::Error(e as u32)
}

fn kernel_error(e: abi::Error) -> Response {
    Response::Error(e as u32)
}

/// The fixed header of a request, and the bytes after it.
fn split<T: FromBytes>(data: &[u8]) -> Option<(T, &[u8])> {
    let (header, rest) = T::read_from_prefix(data).ok()?;
    Some((header, rest))
}

fn text(bytes: &[u8]) -> Result<&str, ProcmanError> {
    core::str::from_utf8(bytes).map_err(|_| ProcmanError::BadName)
}

impl<'p> Procman<'p> {
    /// Starts `program` with `descriptors` (and its manifest arguments unless
    /// `arguments` are given) and records it.
    fn start(
        &mut self,
        program: ProgramPolicy<'p>,
        arguments: Option<&[u8]>,
        descriptors: &[DescriptorSlot],
    ) -> Result<u32, Response> {
        let arguments = arguments.unwrap_or(program.arguments());
        let handle = kernel::spawn(program.name(), arguments, descriptors).map_err(kernel_error)?;
        // The table keeps the handle's number; it is closed when the process ends.
        let handle = handle.into_raw();
        let pid = self
            .processes
            .add(program.index(), program.domain_index(), handle.0);
        if let Err(e) = kernel::process_set_cookie(handle, u64::from(pid)) {
            // PEER_DIED: it ended before its cookie was set, so its exit
            // notice named no one; its status is unknown (-1).
            println!("procman: process {pid} ended before its cookie was set: {e}");
            self.ended(pid, u32::MAX);
        }
        Ok(pid)
    }

    /// A process ended: free what it held here (its names, its watches of
    /// others), wake its waiters, and end the system if it was the one the
    /// command line named.
    fn ended(&mut self, pid: u32, status: u32) {
        if let Some(ended) = self.processes.exited(pid, status) {
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
        if self.verdict == Some(pid) {
            println!("procman: process {pid} ended with status {status}; stopping");
            let _ = kernel::debug_exit(status);
        }
    }

    fn caller_domain(&self, request: &Request<'_>) -> Result<(u32, usize), Response> {
        let pid =
            u32::try_from(request.cookie()).map_err(|_| error(ProcmanError::UnknownCaller))?;
        match self.processes.get(pid) {
            Some(record) if record.status.is_none() => Ok((pid, record.domain)),
            _ => Err(error(ProcmanError::UnknownCaller)),
        }
    }

    fn create_object(
        &mut self,
        request: &Request<'_>,
        reply: &mut Message<&mut [u8]>,
    ) -> Result<u32, Response> {
        let (pid, domain) = self.caller_domain(request)?;
        let (header, rest): (CreateObjectRequest, _) =
            split(request.data()).ok_or(error(ProcmanError::BadRequest))?;
        if header.reserved != 0
            || header.flags & !CREATE_SYSTEM != 0
            || rest.len() != header.name_length as usize
        {
            return Err(error(ProcmanError::BadRequest));
        }
        let name = if rest.is_empty() {
            None
        } else {
            Some(text(rest).map_err(error)?)
        };
        let system = header.flags & CREATE_SYSTEM != 0;
        let create = CreateRequest {
            system,
            name,
            security_type: header.security_type,
            caller: pid,
        };
        policy::check_create(&self.policy, domain, create, &self.namespace).map_err(error)?;
        let kind = if system {
            DoorKind::System
        } else {
            DoorKind::User
        };
        let door = kernel::door_create(kind, header.security_type).map_err(kernel_error)?;
        let keep = match door.client.duplicate(Rights::DOOR_CLIENT) {
            Ok(keep) => keep,
            Err(e) => return Err(kernel_error(e)),
        };
        if reply.push_move(door.owner, Rights::DOOR_OWNER).is_err()
            || reply.push_move(door.client, Rights::DOOR_CLIENT).is_err()
        {
            return Err(error(ProcmanError::BadRequest));
        }
        match name {
            Some(name) => {
                let entry = NameEntry {
                    descriptor: keep.into_raw().0,
                    owner: pid,
                    security_type: header.security_type,
                    system,
                };
                if let Err(e) = self.namespace.insert(name, entry) {
                    let _ = kernel::close(Descriptor(entry.descriptor));
                    return Err(error(e));
                }
            }
            None => drop(keep),
        }
        Ok(0)
    }

    fn open(
        &mut self,
        request: &Request<'_>,
        reply: &mut Message<&mut [u8]>,
    ) -> Result<u32, Response> {
        let (_, domain) = self.caller_domain(request)?;
        let name = self.name_of(request)?;
        let entry = *self.namespace.lookup(name).map_err(error)?;
        policy::check_open(&self.policy, domain, entry.security_type).map_err(error)?;
        reply
            .push_copy(Descriptor(entry.descriptor), Rights::DOOR_CLIENT)
            .map_err(|_| error(ProcmanError::BadRequest))?;
        Ok(0)
    }

    fn name_of<'r>(&self, request: &'r Request<'_>) -> Result<&'r str, Response> {
        let (header, rest): (NameRequest, _) =
            split(request.data()).ok_or(error(ProcmanError::BadRequest))?;
        if header.reserved != 0 || rest.len() != header.name_length as usize {
            return Err(error(ProcmanError::BadRequest));
        }
        text(rest).map_err(error)
    }

    fn unlink(&mut self, request: &Request<'_>) -> Result<u32, Response> {
        let (pid, _) = self.caller_domain(request)?;
        let name = self.name_of(request)?;
        let entry = self.namespace.unlink(name, pid).map_err(error)?;
        let _ = kernel::close(Descriptor(entry.descriptor));
        Ok(0)
    }

    fn list(
        &mut self,
        request: &Request<'_>,
        reply: &mut Message<&mut [u8]>,
    ) -> Result<u32, Response> {
        self.caller_domain(request)?;
        let directory = self.name_of(request)?;
        let names = self.namespace.list(directory).map_err(error)?;
        let room = usize::from(reply.capacity()).saturating_sub(size_of::<ListReply>());
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
        let header = ListReply {
            count: names.len() as u32,
            truncated,
        };
        reply
            .push(&header)
            .and_then(|m| m.push_data(&text))
            .map_err(|_| error(ProcmanError::BadRequest))?;
        Ok(0)
    }

    fn spawn(
        &mut self,
        request: &mut Request<'_>,
        reply: &mut Message<&mut [u8]>,
    ) -> Result<u32, Response> {
        let (_, domain) = self.caller_domain(request)?;
        let (header, rest): (SpawnProgramRequest, _) =
            split(request.data()).ok_or(error(ProcmanError::BadRequest))?;
        let name_end = header.name_length as usize;
        if rest.len() != name_end.saturating_add(header.argument_length as usize) {
            return Err(error(ProcmanError::BadRequest));
        }
        let name = text(&rest[..name_end]).map_err(|_| error(ProcmanError::NoSuchProgram))?;
        let arguments: Vec<u8> = rest[name_end..].to_vec();
        let program = policy::check_spawn(&self.policy, domain, name).map_err(error)?;
        // The caller's descriptors arrived in procman's table; move them on.
        let mut slots = Vec::new();
        for index in 0..request.descriptor_count() {
            if let Some(slot) = request.descriptor_slot(index) {
                slots.push(DescriptorSlot::moving(
                    Descriptor(slot.descriptor),
                    Rights(slot.rights),
                ));
            }
        }
        let given = (!arguments.is_empty()).then_some(arguments.as_slice());
        let pid = self.start(program, given, &slots)?;
        for index in 0..request.descriptor_count() {
            // Moved into the child: forget them without closing.
            if let Some(moved) = request.take_descriptor(index) {
                let _ = moved.into_raw();
            }
        }
        reply
            .push(&ProcessReply { pid, reserved: 0 })
            .map_err(|_| error(ProcmanError::BadRequest))?;
        Ok(pid)
    }

    fn wait(
        &mut self,
        request: &Request<'_>,
        reply: &mut Message<&mut [u8]>,
    ) -> Result<u32, Response> {
        let (waiter, _) = self.caller_domain(request)?;
        let (header, rest): (WaitRequest, _) =
            split(request.data()).ok_or(error(ProcmanError::BadRequest))?;
        if header.reserved != 0 || !rest.is_empty() {
            return Err(error(ProcmanError::BadRequest));
        }
        let plan = self
            .processes
            .plan_wait(waiter, header.pid)
            .map_err(error)?;
        let event = match plan {
            WaitPlan::Ended(status) => {
                reply
                    .push(&WaitReply { exited: 1, status })
                    .map_err(|_| error(ProcmanError::BadRequest))?;
                // The status is in the reply; msgRetVal stays 0, since a status
                // of -1 (a fault) would read as an error reply.
                return Ok(0);
            }
            // The caller's own event: no other process is ever given it.
            WaitPlan::Watching(event) => Descriptor(event),
            WaitPlan::NewWatch => kernel::event_create().map_err(kernel_error)?.into_raw(),
        };
        // A refusal from here on closes the event if it was made for it.
        let refuse = |e: ProcmanError| {
            if plan == WaitPlan::NewWatch {
                let _ = kernel::close(event);
            }
            error(e)
        };
        reply
            .push(&WaitReply {
                exited: 0,
                status: 0,
            })
            .and_then(|m| m.push_copy(event, Rights(Rights::WAIT.0 | Rights::TRANSFER.0)))
            .map_err(|_| refuse(ProcmanError::BadRequest))?;
        self.processes
            .record_wait(waiter, header.pid, event.0)
            .map_err(refuse)?;
        Ok(0)
    }
}

impl Server for Procman<'_> {
    fn handle(&mut self, request: &mut Request<'_>, reply: &mut Message<&mut [u8]>) -> Response {
        let function = request.function();
        if function == KernelFunction::ProcessExited.function() {
            if let Ok(notice) = ProcessExitNotice::read_from_bytes(request.data())
                && let Ok(pid) = u32::try_from(notice.cookie)
            {
                self.ended(pid, notice.status);
            }
            return Response::Reply(0);
        }
        let result = match function {
            CREATE_OBJECT => self.create_object(request, reply),
            OPEN => self.open(request, reply),
            UNLINK => self.unlink(request),
            LIST => self.list(request, reply),
            SPAWN => self.spawn(request, reply),
            WAIT => self.wait(request, reply),
            _ => Err(error(ProcmanError::UnknownFunction)),
        };
        match result {
            Ok(value) => Response::Reply(value),
            Err(response) => response,
        }
    }
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
    let error = serve(&door.owner, &mut procman);
    println!("procman: serving stopped: {error}");
    1
}
