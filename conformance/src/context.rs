//! [`Context`]: what a case builds on, and cleans up after it.
//!
//! A case runs on its own thread of the runner (the first process, which
//! holds the three kernel capabilities as its descriptors 1-3, ABI.md §7;
//! userlib's DOOR_CREATE and SPAWN send to its process-control
//! capability). Its fixtures: doors (live, or dead: the owner reference
//! closed, so that a SEND that passes every check before step 11 of ABI.md
//! §4.1 fails with PEER_DIED instead of waiting), events, duplicates, threads of
//! the runner ([`Job`]), the [`TestPages`] (read-only, writable-then-
//! unmapped), and peers (`conformance-peer` processes). Whatever a case
//! opens through the context is closed, unmapped or ended when the case is
//! over, so that every case starts from the same state.
//!
//! [`Context::settle`] waits until every other thread of the system is
//! blocked: after it, a job that has not finished is blocked, which is how a
//! case checks that a caller "stays blocked" without a clock.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::kcall::protection;
use abi::{Descriptor, DescriptorSlot, Error, MessageSizes, Rights, TrapArgs};
use spin::Mutex;
use userlib::OwnedDescriptor;
use userlib::kernel::{self, DescriptorInfo, DoorKind};
use userlib::raw::{RawPages, Refused};

use crate::expect::Observed;
use crate::peer::{self, Peer};

/// Why a case could not be set up (a fixture failed): the case fails with
/// this reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed(pub String);

impl From<Refused> for Failed {
    fn from(refused: Refused) -> Self {
        Failed(format!("not trapped: {refused}"))
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed(format!("a kernel function failed: {}", error.name()))
    }
}

/// The stack of a job thread.
const JOB_STACK: usize = 32 * 1024;

/// `arg0=... arg1=... (NAME) arg2=... arg3=...`.
pub fn describe_registers(registers: &TrapArgs) -> String {
    let mut text = format!("arg0={:#x} arg1={:#x}", registers.arg0, registers.arg1);
    if registers.arg0 == 0xffff_ffff
        && let Some(error) = u32::try_from(registers.arg1)
            .ok()
            .and_then(Error::from_number)
    {
        text.push_str(&format!(" ({})", error.name()));
    }
    text.push_str(&format!(
        " arg2={:#x} arg3={:#x}",
        registers.arg2, registers.arg3
    ));
    text
}

/// A door's two references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Door {
    /// The owner reference (RECEIVE | TRANSFER).
    pub owner: Descriptor,
    /// A client reference (SEND | TRANSFER | DUPLICATE).
    pub client: Descriptor,
}

/// A closure running on a thread of the runner; its value once it returns.
#[derive(Debug)]
pub struct Job<T> {
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> Job<T> {
    /// The value, if the job finished (after [`Context::settle`], `None`
    /// means the job is blocked).
    pub fn take(&self) -> Option<T> {
        self.slot.lock().take()
    }

    /// Whether it finished.
    pub fn finished(&self) -> bool {
        self.slot.lock().is_some()
    }
}

/// Three pages at an address the kernel chose: `read_only` (mapped READ,
/// filled before), `writable` (READ | WRITE) and `unmapped` right after it.
/// Rust code never references them: they are userlib's [`RawPages`],
/// reached through the kernel (msgPtr) and copies only. The context keeps
/// them mapped until the case is over.
#[derive(Clone, Debug)]
pub struct TestPages {
    pages: Arc<RawPages>,
    /// A page mapped READ only.
    pub read_only: u64,
    /// A page mapped READ | WRITE, followed by `unmapped`.
    pub writable: u64,
    /// A page that is not mapped.
    pub unmapped: u64,
}

impl TestPages {
    /// Copies `bytes` to `address`, which must lie (with its length) in the
    /// writable page; returns whether it did.
    pub fn write(&self, address: u64, bytes: &[u8]) -> bool {
        let end = address.saturating_add(bytes.len() as u64);
        address >= self.writable && end <= self.writable + PAGE && self.pages.write(address, bytes)
    }

    /// The `length` bytes at `address`, which must lie in the writable or
    /// the read-only page.
    pub fn read(&self, address: u64, length: usize) -> Option<Vec<u8>> {
        let end = address.saturating_add(length as u64);
        let inside = |page: u64| address >= page && end <= page + PAGE;
        if !inside(self.writable) && !inside(self.read_only) {
            return None;
        }
        self.pages.snapshot(address, length)
    }

    /// UNMAPs a range of the test pages.
    pub fn unmap(&self, address: u64, length: u64) -> Result<(), Failed> {
        Ok(self.pages.unmap(address, length)?)
    }

    /// A trap whose buffer may lie in the test pages (or outside the
    /// memory Rust code uses).
    pub fn trap(&self, args: TrapArgs) -> Result<TrapArgs, Failed> {
        Ok(self.pages.trap(args)?)
    }
}

const PAGE: u64 = abi::PAGE_BYTES;

/// A case's fixtures and the checks it made along the way.
#[derive(Debug, Default)]
pub struct Context {
    problems: Vec<String>,
    vars: Vec<(&'static str, u64)>,
    descriptors: Vec<Descriptor>,
    peers: Vec<Peer>,
    /// The process ids of the peers procman started (continued at the end).
    procman_pids: Vec<u32>,
    mappings: Vec<Arc<RawPages>>,
    unmap_at_end: Vec<(u64, u64)>,
    smos: Vec<u32>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// The failed checks so far.
    pub fn take_problems(&mut self) -> Vec<String> {
        core::mem::take(&mut self.problems)
    }

    /// Records a failed check unless `ok`.
    pub fn check(&mut self, ok: bool, what: &str) {
        if !ok {
            self.problems.push(String::from(what));
        }
    }

    /// Records a failed check with this text.
    pub fn fail(&mut self, what: String) {
        self.problems.push(what);
    }

    /// Checks a trap's registers exactly.
    pub fn check_registers(&mut self, what: &str, actual: &TrapArgs, expected: &TrapArgs) {
        if actual != expected {
            self.problems.push(format!(
                "{what}: expected {}, got {}",
                describe_registers(expected),
                describe_registers(actual)
            ));
        }
    }

    /// Binds `$name` for the expectation.
    pub fn bind(&mut self, name: &'static str, value: u64) {
        self.vars.push((name, value));
    }

    /// An observation of registers alone.
    pub fn observe(&self, registers: TrapArgs) -> Observed {
        Observed {
            registers,
            vars: self.vars.clone(),
            ..Observed::default()
        }
    }

    /// An observation of one value in arg0 (the other registers zero): a
    /// count, a status or a yes (1) / no (0) a case computed.
    pub fn observe_value(&self, value: u64) -> Observed {
        self.observe(TrapArgs {
            arg0: value,
            ..TrapArgs::default()
        })
    }

    /// An observation of registers, msgPtr and buffer bytes.
    pub fn observe_buffer(&self, registers: TrapArgs, msg_ptr: u64, buffer: Vec<u8>) -> Observed {
        Observed {
            registers,
            msg_ptr,
            buffer,
            vars: self.vars.clone(),
        }
    }

    /// Remembers `descriptor` to close it when the case ends.
    pub fn adopt(&mut self, descriptor: Descriptor) -> Descriptor {
        self.descriptors.push(descriptor);
        descriptor
    }

    /// Forgets `descriptor` (it was moved away or closed by the case).
    pub fn forget(&mut self, descriptor: Descriptor) {
        self.descriptors.retain(|d| *d != descriptor);
    }

    /// A new door of `kind` (DOOR_CREATE).
    pub fn door(&mut self, kind: DoorKind) -> Result<Door, Failed> {
        let door = kernel::door_create(kind, 0)?;
        let owner = self.adopt(door.owner.into_raw());
        let client = self.adopt(door.client.into_raw());
        Ok(Door { owner, client })
    }

    /// A user door.
    pub fn user_door(&mut self) -> Result<Door, Failed> {
        self.door(DoorKind::User)
    }

    /// A client reference to a door of `kind` whose owner reference is
    /// already closed: every SEND that passes ABI.md §4.1 steps 1-10 fails
    /// with PEER_DIED (step 11) instead of waiting for a server.
    pub fn dead_door(&mut self, kind: DoorKind) -> Result<Descriptor, Failed> {
        let door = self.door(kind)?;
        self.close(door.owner)?;
        Ok(door.client)
    }

    /// A new event (EVENT_CREATE).
    pub fn event(&mut self) -> Result<Descriptor, Failed> {
        let event = kernel::event_create()?;
        Ok(self.adopt(event.into_raw()))
    }

    /// A DUPLICATE of `descriptor` with `rights`.
    pub fn duplicate(
        &mut self,
        descriptor: Descriptor,
        rights: Rights,
    ) -> Result<Descriptor, Failed> {
        let copy = kernel::duplicate(descriptor, rights)?;
        Ok(self.adopt(copy.into_raw()))
    }

    /// CLOSEs `descriptor`.
    pub fn close(&mut self, descriptor: Descriptor) -> Result<(), Failed> {
        self.forget(descriptor);
        kernel::close(descriptor)?;
        Ok(())
    }

    /// DESCRIPTOR_INFO of `descriptor`.
    pub fn info(&self, descriptor: Descriptor) -> Result<DescriptorInfo, Error> {
        kernel::descriptor_info(descriptor)
    }

    /// The `count` lowest free descriptor numbers of the runner's table, in
    /// order, found by opening `count` events and closing them (ABI.md
    /// §1.4: a new reference takes the lowest free number).
    pub fn lowest_free(&mut self, count: usize) -> Result<Vec<u32>, Failed> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(kernel::event_create()?);
        }
        let numbers = events.iter().map(|event| event.descriptor().0).collect();
        drop(events);
        Ok(numbers)
    }

    /// Runs `work` on a new thread of the runner.
    pub fn job<T, F>(&mut self, work: F) -> Result<Job<T>, Failed>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let result = slot.clone();
        let thread = userlib::spawn_thread(
            move || {
                let value = work();
                *result.lock() = Some(value);
            },
            JOB_STACK,
        )?;
        // The handle is not needed: the thread runs on without it.
        drop(thread);
        Ok(Job { slot })
    }

    /// [`Context::job`], keeping the thread's handle (SEND: THREAD_INTERRUPT
    /// may be sent to it), which the context closes at the end.
    pub fn job_with_handle<T, F>(&mut self, work: F) -> Result<(Job<T>, Descriptor), Failed>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let result = slot.clone();
        let thread = userlib::spawn_thread(
            move || {
                let value = work();
                *result.lock() = Some(value);
            },
            JOB_STACK,
        )?;
        let handle = self.adopt(thread.into_raw());
        Ok((Job { slot }, handle))
    }

    /// Waits until every other thread in the system is blocked.
    pub fn settle(&mut self) {
        crate::runner::settle();
    }

    /// Maps the three [`TestPages`]; the read-only page holds
    /// `read_only_content` (then zeros).
    pub fn test_pages(&mut self, read_only_content: &[u8]) -> Result<TestPages, Failed> {
        if read_only_content.len() as u64 > PAGE {
            return Err(Failed(String::from("read-only content larger than a page")));
        }
        let pages = self.map_pages(3)?;
        let base = pages.base();
        pages.write(base, read_only_content);
        pages.protect(base, PAGE, protection::READ)?;
        pages.unmap(base + 2 * PAGE, PAGE)?;
        Ok(TestPages {
            pages,
            read_only: base,
            writable: base + PAGE,
            unmapped: base + 2 * PAGE,
        })
    }

    /// `count` fresh READ | WRITE pages, unmapped when the case ends. Like
    /// the test pages, Rust code reaches them only through copies and the
    /// kernel.
    pub fn map_pages(&mut self, count: u64) -> Result<Arc<RawPages>, Failed> {
        let pages = Arc::new(RawPages::map(count)?);
        self.mappings.push(pages.clone());
        Ok(pages)
    }

    /// Starts a peer whose descriptors 2, 3, ... are `initial` (descriptor 1
    /// is its control door).
    pub fn peer(&mut self, initial: &[DescriptorSlot]) -> Result<Peer, Failed> {
        let door = kernel::door_create(DoorKind::User, 0)?;
        let owner = door.owner.into_raw();
        let mut slots = Vec::with_capacity(initial.len() + 1);
        slots.push(DescriptorSlot::moving(owner, Rights::DOOR_OWNER));
        slots.extend_from_slice(initial);
        let spawned = kernel::spawn(peer::PROGRAM, &[], &slots);
        let process = match spawned {
            Ok(process) => process,
            Err(error) => {
                // The move did not happen: the owner reference is still ours.
                let _ = OwnedDescriptor::from_raw(owner);
                return Err(Failed(format!(
                    "SPAWN {} failed: {}",
                    peer::PROGRAM,
                    error.name()
                )));
            }
        };
        let peer = Peer {
            control: self.adopt(door.client.into_raw()),
            process: self.adopt(process.into_raw()),
        };
        self.peers.push(Peer {
            control: peer.control,
            process: peer.process,
        });
        // Until it waits for its first command: its start-up (its heap's
        // first mapping) must not land inside what a case measures next.
        self.settle();
        Ok(peer)
    }

    /// Starts a peer the way procman does (ABI.md §7a.5): built from
    /// `image` (the peer program's, `userlib::loader`) with PROCESS_CREATE,
    /// PROCESS_MAP and PROCESS_START, its descriptors 2, 3, ... `initial`
    /// (descriptor 1 is its control door).
    pub fn loaded_peer(
        &mut self,
        image: &userlib::loader::ProgramImage,
        initial: &[DescriptorSlot],
    ) -> Result<Peer, Failed> {
        let door = kernel::door_create(DoorKind::User, 0)?;
        let owner = door.owner.into_raw();
        let mut slots = Vec::with_capacity(initial.len() + 1);
        slots.push(DescriptorSlot::moving(owner, Rights::DOOR_OWNER));
        slots.extend_from_slice(initial);
        let built = image.build(&slots, &[]).map_err(|refused| {
            if !refused.moved {
                let _ = OwnedDescriptor::from_raw(owner);
            }
            Failed(format!("loading {}: {:?}", peer::PROGRAM, refused.error))
        })?;
        let process = built
            .start()
            .map_err(|e| Failed(format!("PROCESS_START {}: {}", peer::PROGRAM, e.name())))?;
        let peer = self.adopt_peer(door.client.into_raw(), process.into_raw());
        self.settle();
        Ok(peer)
    }

    /// Starts a peer through procman (the runner booted by procman has no
    /// kernel capabilities): a control door from CREATE_OBJECT, its owner
    /// reference moved to the child by procman's SPAWN. Returns the peer
    /// (no process handle: procman keeps it) and its process id.
    pub fn procman_peer(&mut self) -> Result<(Peer, u32), Failed> {
        self.procman_peer_with_streams([abi::stream::StdStream::NONE; 3])
    }

    /// [`Context::procman_peer`] with standard streams (ends the runner
    /// holds, as SPAWN takes them).
    pub fn procman_peer_with_streams(
        &mut self,
        streams: [abi::stream::StdStream; 3],
    ) -> Result<(Peer, u32), Failed> {
        let door = userlib::procman::create_object(None, false, PEER_DOOR_TYPE)
            .map_err(|e| Failed(format!("CREATE_OBJECT for the peer's door: {e}")))?;
        let owner = door.owner.into_raw();
        let slots = [DescriptorSlot::moving(owner, Rights::DOOR_OWNER)];
        let pid = match userlib::procman::spawn_with_streams(peer::PROGRAM, &[], &slots, streams) {
            Ok(pid) => pid,
            Err(error) => {
                let _ = OwnedDescriptor::from_raw(owner);
                return Err(Failed(format!("procman SPAWN {}: {error}", peer::PROGRAM)));
            }
        };
        let peer = Peer {
            control: self.adopt(door.client.into_raw()),
            process: Descriptor::NULL,
        };
        self.peers.push(peer);
        self.procman_pids.push(pid);
        self.settle();
        Ok((peer, pid))
    }

    /// A process the case SPAWNed itself with the owner reference of a
    /// control door as descriptor 1 (a `conformance-peer`): it is driven and
    /// ended like one [`Context::peer`] started.
    pub fn adopt_peer(&mut self, control: Descriptor, process: Descriptor) -> Peer {
        let peer = Peer {
            control: self.adopt(control),
            process: self.adopt(process),
        };
        self.peers.push(peer);
        peer
    }

    /// Claims the SMO `id` (one the runner made) when the case ends, if it
    /// is still there.
    pub fn adopt_smo(&mut self, id: u32) -> u32 {
        self.smos.push(id);
        id
    }

    /// UNMAPs `[address, address + length)` when the case ends, whatever
    /// of it is mapped then (for a case that maps at fixed addresses).
    pub fn unmap_at_end(&mut self, address: u64, length: u64) {
        self.unmap_at_end.push((address, length));
    }

    /// Ends what the case left behind: peers exit, descriptors close,
    /// mappings go; then waits until the system is idle again.
    pub fn finish(&mut self) {
        for id in core::mem::take(&mut self.smos) {
            let _ = kernel::smo_claim(id);
        }
        // A stopped peer would never answer its EXIT: it continues first.
        for pid in core::mem::take(&mut self.procman_pids) {
            let _ = userlib::signal::kill(pid, abi::signal::CONT);
        }
        for peer in core::mem::take(&mut self.peers) {
            if !peer.process.is_null() {
                let _ = kernel::process_resume(peer.process);
            }
            let _ = peer.exit();
        }
        for descriptor in core::mem::take(&mut self.descriptors).into_iter().rev() {
            let _ = kernel::close(descriptor);
        }
        // Dropping the last reference unmaps them.
        self.mappings.clear();
        for (address, length) in core::mem::take(&mut self.unmap_at_end) {
            let _ = kernel::unmap(address, length);
        }
        self.settle();
    }
}

/// The security type of the peer's control door when procman makes it
/// (the manifest's `test`, type 3; the runner's domain may create it).
pub const PEER_DOOR_TYPE: u32 = 3;

/// The data size and descriptor count of a completed SEND's `arg3`.
pub fn reply_sizes(registers: &TrapArgs) -> (u16, u8) {
    let sizes = MessageSizes::from_bits(registers.arg3);
    (sizes.data_size(), sizes.descriptor_count())
}
