//! Host tests of the IPC core: a fake [`Machine`] (address spaces as maps of
//! 4 KiB pages), a harness that drives [`Kernel::trap`] thread by thread,
//! one test per rule of DESIGN.md §4-5 and the ABI, a leak check, and a
//! property test that throws random traps at several threads of several
//! processes and checks the kernel's invariants after each one.
//!
//! Expected values are written out from the ABI, never computed by the code
//! under test. A test that found a bug in the core carries
//! `#[ignore = "BUG: ..."]` until the core is fixed.

use std::collections::{BTreeMap, HashMap, HashSet};

use abi::descriptor::MAX_DESCRIPTORS;
use abi::function::Function;
use abi::kcall::{
    DescriptorInfo, DescriptorRequest, DoorCreateRequest, ExitRequest, KernelCounters, MapReply,
    MapRequest, SpawnRequest, ThreadCreateRequest, protection,
};
use abi::message::descriptor_offset;
use abi::process::{
    MAX_ARGUMENT_BYTES, USER_END, USER_IMAGE_BASE, USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP,
};
use abi::trap::REPLY_DELIVERED;
use abi::{
    Descriptor, DescriptorSlot, Error, KernelFunction, MessageSizes, ObjectKind, Rights, TrapArgs,
};
use proptest::prelude::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::descriptor_table::Reference;
use crate::machine::{LoadedProgram, Machine, UserStart};
use crate::object::{OBJECT_COST, ObjectBody, ObjectId};
use crate::process::{DESCRIPTOR_COST, ProcessId, SpaceId};
use crate::state::Kernel;
use crate::thread::{Holding, THREAD_COST, ThreadId, ThreadState};

// ----- the fake machine -----

const PAGE: u64 = 4096;
/// One read-only, executable page holding the program's name.
const IMAGE: u64 = USER_IMAGE_BASE;
/// A writable data region every program gets; test buffers live here.
const DATA: u64 = 0x0100_0000;
const DATA_PAGES: u64 = 16;
const DATA_END: u64 = DATA + DATA_PAGES * PAGE;
const STACK_BOTTOM: u64 = USER_STACK_TOP - USER_STACK_SIZE;
/// Bytes `load_program` maps (and the kernel charges) per program.
const PROGRAM_BYTES: u64 = PAGE + DATA_PAGES * PAGE + USER_STACK_SIZE;
/// A user address nothing is ever mapped at.
const UNMAPPED: u64 = 0x0700_0000;
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
const FREE_FRAMES: u64 = 4242;
/// The first process's capabilities (abi::process).
const CAP_PROCESS: Descriptor = abi::process::FIRST_PROCESS_CONTROL;
const CAP_ARCHIVE: Descriptor = abi::process::FIRST_BOOT_ARCHIVE;
const CAP_MACHINE: Descriptor = abi::process::FIRST_MACHINE_CONTROL;

const PROGRAMS: [&[u8]; 4] = [b"init", b"server", b"client", b"worker"];
/// The one file of the fake boot archive besides the programs.
const ARCHIVE_MANIFEST: &[u8] = b"[system]\nname = \"fake\"\n# padding to make offsets matter\n";

/// Send buffer, receive buffer and kernel-call buffer of the harness.
const SBUF: u64 = DATA;
const RBUF: u64 = DATA + 0x1000;
const KBUF: u64 = DATA + 0x2000;
const KTOTAL: u16 = 1024;

const USER_FN: i32 = 0x8000;
const SYSTEM_FN: i32 = 0x1000;

#[derive(Debug)]
struct Page {
    protection: u32,
    /// Allocated on first write; reads as zeros before.
    bytes: Option<Box<[u8; PAGE as usize]>>,
}

/// Address spaces as maps of pages, thread contexts, console and verdicts.
#[derive(Debug, Default)]
struct FakeMachine {
    spaces: BTreeMap<SpaceId, BTreeMap<u64, Page>>,
    /// Where each space's next kernel-placed mapping is searched from.
    hints: BTreeMap<SpaceId, u64>,
    next_space: SpaceId,
    contexts: HashMap<ThreadId, (SpaceId, UserStart)>,
    console: Vec<u8>,
    verdicts: Vec<bool>,
    /// `debug_exit` answers NOT_PERMITTED (the kernel was not booted for tests).
    debug_exit_refused: bool,
    /// Contract violations (double destroy, unknown space, ...).
    anomalies: Vec<String>,
}

/// Page addresses covering `[address, address + length)`.
fn pages_of(address: u64, length: u64) -> impl Iterator<Item = u64> {
    let first = address & !(PAGE - 1);
    let end = address.saturating_add(length);
    (first..end).step_by(PAGE as usize)
}

impl FakeMachine {
    fn new() -> Self {
        Self {
            next_space: 1,
            ..Self::default()
        }
    }

    /// The rule of `Machine::check_user`: a non-empty range must lie in the
    /// user half above page 0 and be mapped, readable, and writable for `write`.
    fn access(&self, space: SpaceId, address: u64, length: u64, write: bool) -> Result<(), Error> {
        if length == 0 {
            return Ok(());
        }
        let end = address.checked_add(length).ok_or(Error::BadBuffer)?;
        if address < PAGE || end > USER_END {
            return Err(Error::BadBuffer);
        }
        let map = self.spaces.get(&space).ok_or(Error::BadBuffer)?;
        for page in pages_of(address, length) {
            let ok = map.get(&page).is_some_and(|p| {
                p.protection & protection::ALL != 0
                    && (!write || p.protection & protection::WRITE != 0)
            });
            if !ok {
                return Err(Error::BadBuffer);
            }
        }
        Ok(())
    }

    /// Reads mapped memory regardless of protection.
    fn copy_out(&self, space: SpaceId, address: u64, buffer: &mut [u8]) -> Result<(), Error> {
        let map = self.spaces.get(&space).ok_or(Error::BadBuffer)?;
        for (i, byte) in buffer.iter_mut().enumerate() {
            let at = address.checked_add(i as u64).ok_or(Error::BadBuffer)?;
            let page = map.get(&(at & !(PAGE - 1))).ok_or(Error::BadBuffer)?;
            *byte = page.bytes.as_ref().map_or(0, |b| b[(at % PAGE) as usize]);
        }
        Ok(())
    }

    /// Writes mapped memory regardless of protection.
    fn copy_in(&mut self, space: SpaceId, address: u64, data: &[u8]) -> Result<(), Error> {
        let map = self.spaces.get_mut(&space).ok_or(Error::BadBuffer)?;
        for (i, byte) in data.iter().enumerate() {
            let at = address.checked_add(i as u64).ok_or(Error::BadBuffer)?;
            let page = map.get_mut(&(at & !(PAGE - 1))).ok_or(Error::BadBuffer)?;
            page.bytes
                .get_or_insert_with(|| Box::new([0; PAGE as usize]))[(at % PAGE) as usize] = *byte;
        }
        Ok(())
    }

    fn range_is_free(&self, space: SpaceId, address: u64, length: u64) -> bool {
        self.spaces
            .get(&space)
            .is_some_and(|map| map.range(address..address + length).next().is_none())
    }

    fn insert_pages(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        let map = self.spaces.get_mut(&space).ok_or(Error::InvalidArgument)?;
        for page in pages_of(address, length) {
            map.insert(
                page,
                Page {
                    protection,
                    bytes: None,
                },
            );
        }
        Ok(())
    }

    fn mapped_bytes(&self, space: SpaceId) -> u64 {
        self.spaces
            .get(&space)
            .map_or(0, |map| map.len() as u64 * PAGE)
    }

    fn page_protection(&self, space: SpaceId, address: u64) -> Option<u32> {
        self.spaces
            .get(&space)
            .and_then(|map| map.get(&(address & !(PAGE - 1))))
            .map(|p| p.protection)
    }
}

impl Machine for FakeMachine {
    fn check_user(
        &self,
        space: SpaceId,
        address: u64,
        length: usize,
        write: bool,
    ) -> Result<(), Error> {
        self.access(space, address, length as u64, write)
    }

    fn read_user(&self, space: SpaceId, address: u64, buffer: &mut [u8]) -> Result<(), Error> {
        self.access(space, address, buffer.len() as u64, false)?;
        self.copy_out(space, address, buffer)
    }

    fn write_user(&mut self, space: SpaceId, address: u64, data: &[u8]) -> Result<(), Error> {
        self.access(space, address, data.len() as u64, true)?;
        self.copy_in(space, address, data)
    }

    fn create_space(&mut self) -> Result<SpaceId, Error> {
        let space = self.next_space;
        self.next_space += 1;
        self.spaces.insert(space, BTreeMap::new());
        Ok(space)
    }

    fn destroy_space(&mut self, space: SpaceId) {
        if self.spaces.remove(&space).is_none() {
            self.anomalies
                .push(format!("destroy_space({space}) of an unknown space"));
        }
    }

    fn map_anonymous(
        &mut self,
        space: SpaceId,
        address: Option<u64>,
        length: u64,
        protection: u32,
    ) -> Result<u64, Error> {
        if !self.spaces.contains_key(&space) {
            return Err(Error::InvalidArgument);
        }
        if length == 0 || !length.is_multiple_of(PAGE) {
            return Err(Error::InvalidArgument);
        }
        let at = match address {
            Some(at) => {
                let fits = at.is_multiple_of(PAGE)
                    && at >= PAGE
                    && at.checked_add(length).is_some_and(|end| end <= USER_END);
                if !fits || !self.range_is_free(space, at, length) {
                    return Err(Error::BadAddressRange);
                }
                at
            }
            None => {
                let map = self.spaces.get(&space).ok_or(Error::InvalidArgument)?;
                let hint = self.hints.get(&space).copied().unwrap_or(USER_MAP_BASE);
                let at = crate::placement::place(hint, length, |start, end| {
                    map.range(start..end).next().map(|(page, _)| *page)
                })
                .ok_or(Error::BadAddressRange)?;
                self.hints
                    .insert(space, crate::placement::next_hint(at, length));
                at
            }
        };
        self.insert_pages(space, at, length, protection)?;
        Ok(at)
    }

    fn unmap(&mut self, space: SpaceId, address: u64, length: u64) -> Result<u64, Error> {
        let map = self.spaces.get_mut(&space).ok_or(Error::InvalidArgument)?;
        let mut freed = 0;
        for page in pages_of(address, length) {
            if map.remove(&page).is_some() {
                freed += PAGE;
            }
        }
        Ok(freed)
    }

    fn protect(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        let map = self.spaces.get_mut(&space).ok_or(Error::InvalidArgument)?;
        if pages_of(address, length).any(|page| !map.contains_key(&page)) {
            return Err(Error::BadAddressRange);
        }
        for page in pages_of(address, length) {
            if let Some(p) = map.get_mut(&page) {
                p.protection = protection;
            }
        }
        Ok(())
    }

    fn read_archive(
        &self,
        name: &[u8],
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<(u64, usize), Error> {
        let file: &[u8] = match name {
            b"system.toml" => ARCHIVE_MANIFEST,
            _ => return Err(Error::InvalidArgument),
        };
        Ok(crate::machine::read_file_window(file, offset, buffer))
    }

    fn load_program(
        &mut self,
        space: SpaceId,
        name: &[u8],
        arguments: &[u8],
    ) -> Result<LoadedProgram, Error> {
        if !PROGRAMS.contains(&name) || arguments.len() > MAX_ARGUMENT_BYTES {
            return Err(Error::InvalidArgument);
        }
        if !self.spaces.get(&space).is_some_and(BTreeMap::is_empty) {
            self.anomalies
                .push(format!("load_program into a used or unknown space {space}"));
            return Err(Error::InvalidArgument);
        }
        self.insert_pages(space, IMAGE, PAGE, protection::READ | protection::EXECUTE)?;
        self.copy_in(space, IMAGE, name)?;
        self.insert_pages(
            space,
            DATA,
            DATA_PAGES * PAGE,
            protection::READ | protection::WRITE,
        )?;
        self.insert_pages(
            space,
            STACK_BOTTOM,
            USER_STACK_SIZE,
            protection::READ | protection::WRITE,
        )?;
        let arguments_at = (USER_STACK_TOP - arguments.len() as u64) & !15;
        self.copy_in(space, arguments_at, arguments)?;
        Ok(LoadedProgram {
            start: UserStart {
                entry: IMAGE,
                stack_pointer: arguments_at - 16,
                arg0: arguments_at,
                arg1: arguments.len() as u64,
                arg2: 0,
            },
            memory_bytes: PROGRAM_BYTES,
        })
    }

    fn create_thread(
        &mut self,
        thread: ThreadId,
        space: SpaceId,
        start: UserStart,
    ) -> Result<(), Error> {
        if !self.spaces.contains_key(&space) {
            return Err(Error::InvalidArgument);
        }
        if self.contexts.insert(thread, (space, start)).is_some() {
            self.anomalies
                .push(format!("create_thread({thread:?}) twice"));
        }
        Ok(())
    }

    fn destroy_thread(&mut self, thread: ThreadId) {
        if self.contexts.remove(&thread).is_none() {
            self.anomalies
                .push(format!("destroy_thread({thread:?}) of an unknown context"));
        }
    }

    fn console_write(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }

    fn debug_exit(&mut self, success: bool) -> Result<(), Error> {
        if self.debug_exit_refused {
            return Err(Error::NotPermitted);
        }
        self.verdicts.push(success);
        Ok(())
    }

    fn free_frames(&self) -> u64 {
        FREE_FRAMES
    }
}

// ----- the harness -----

/// A message buffer as the harness writes it: data, then slots at the
/// aligned offset, inside `total` bytes at `buf`.
#[derive(Clone, Copy, Debug)]
struct Msg<'a> {
    buf: u64,
    data: &'a [u8],
    slots: &'a [DescriptorSlot],
    total: u16,
}

fn msg(buf: u64, data: &[u8], total: u16) -> Msg<'_> {
    Msg {
        buf,
        data,
        slots: &[],
        total,
    }
}

impl<'a> Msg<'a> {
    fn slots(self, slots: &'a [DescriptorSlot]) -> Self {
        Msg { slots, ..self }
    }

    fn sizes(&self) -> MessageSizes {
        sizes(self.total, self.data.len() as u16, self.slots.len() as u8)
    }
}

fn sizes(total: u16, data: u16, count: u8) -> MessageSizes {
    match MessageSizes::from_fields(total, data, count) {
        Ok(s) => s,
        Err(e) => panic!("sizes {total}/{data}/{count}: {e}"),
    }
}

fn err(e: Error) -> Option<TrapArgs> {
    Some(TrapArgs::error(e))
}

/// The registers of a completed SEND whose reply had `data` bytes and `count` slots.
fn replied(ret_val: u32, errno: u32, data: u16, count: u8) -> Option<TrapArgs> {
    Some(TrapArgs::replied(ret_val, errno, sizes(0, data, count)))
}

/// A kernel function's successful return: msgRetVal, msgErrno 0, 8 + payload bytes.
fn kernel_ok(ret_val: u32, payload: u16, count: u8) -> Option<TrapArgs> {
    replied(ret_val, 0, 8 + payload, count)
}

/// A kernel reply read back from the caller's buffer.
#[derive(Debug)]
struct KReply {
    regs: TrapArgs,
    payload: Vec<u8>,
    slots: Vec<DescriptorSlot>,
}

/// A spawned process: its first thread and init's handle on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Child {
    process: ProcessId,
    thread: ThreadId,
    handle: Descriptor,
}

/// The kernel, the fake machine, and the first process (holding the capabilities).
#[derive(Debug)]
struct World {
    k: Kernel,
    m: FakeMachine,
    init: ProcessId,
    init_thread: ThreadId,
}

impl World {
    fn new() -> Self {
        let mut m = FakeMachine::new();
        let mut k = Kernel::new();
        let init = match k.spawn_initial(&mut m, b"init", &[]) {
            Ok(p) => p,
            Err(e) => panic!("spawn_initial: {e}"),
        };
        let Some(init_thread) = k.current() else {
            panic!("spawn_initial left no current thread")
        };
        World {
            k,
            m,
            init,
            init_thread,
        }
    }

    fn process_of(&self, t: ThreadId) -> ProcessId {
        match self.k.threads.get(t) {
            Some(th) => th.process,
            None => panic!("thread {t:?} is gone"),
        }
    }

    fn space(&self, p: ProcessId) -> SpaceId {
        match self.k.processes.get(p) {
            Some(p) => p.space,
            None => panic!("process {p:?} is gone"),
        }
    }

    fn alive(&self, t: ThreadId) -> bool {
        self.k.threads.contains(t)
    }

    fn process_alive(&self, p: ProcessId) -> bool {
        self.k.processes.contains(p)
    }

    fn state(&self, t: ThreadId) -> ThreadState {
        match self.k.threads.get(t) {
            Some(th) => th.state,
            None => panic!("thread {t:?} is gone"),
        }
    }

    fn holding(&self, t: ThreadId) -> Holding {
        match self.k.threads.get(t) {
            Some(th) => th.holding,
            None => panic!("thread {t:?} is gone"),
        }
    }

    fn runnable(&self, t: ThreadId) -> bool {
        self.k
            .threads
            .get(t)
            .is_some_and(|th| matches!(th.state, ThreadState::Ready | ThreadState::Running))
    }

    fn poke(&mut self, p: ProcessId, address: u64, bytes: &[u8]) {
        let space = self.space(p);
        if let Err(e) = self.m.copy_in(space, address, bytes) {
            panic!("poke {address:#x}: {e}");
        }
    }

    fn peek(&self, p: ProcessId, address: u64, length: usize) -> Vec<u8> {
        let mut bytes = vec![0; length];
        if let Err(e) = self.m.copy_out(self.space(p), address, &mut bytes) {
            panic!("peek {address:#x}: {e}");
        }
        bytes
    }

    fn fill(&mut self, p: ProcessId, address: u64, length: usize, byte: u8) {
        self.poke(p, address, &vec![byte; length]);
    }

    fn slot_at(&self, p: ProcessId, address: u64) -> DescriptorSlot {
        match DescriptorSlot::read_from_bytes(&self.peek(p, address, 16)) {
            Ok(slot) => slot,
            Err(_) => panic!("slot at {address:#x}"),
        }
    }

    /// Writes the data and slots of `m` (where they are mapped).
    fn write_msg(&mut self, p: ProcessId, m: Msg<'_>) {
        let space = self.space(p);
        let _ = self.m.copy_in(space, m.buf, m.data);
        let at = m.buf + u64::from(descriptor_offset(m.data.len() as u16));
        for (i, slot) in m.slots.iter().enumerate() {
            let _ = self.m.copy_in(space, at + 16 * i as u64, slot.as_bytes());
        }
    }

    fn reference(&self, p: ProcessId, d: Descriptor) -> Option<Reference> {
        self.k
            .processes
            .get(p)
            .and_then(|p| p.table.get(d).ok())
            .copied()
    }

    fn object_of(&self, p: ProcessId, d: Descriptor) -> ObjectId {
        match self.reference(p, d) {
            Some(r) => r.object,
            None => panic!("descriptor {d:?} is not open in {p:?}"),
        }
    }

    fn open_descriptors(&self, p: ProcessId) -> usize {
        self.k.processes.get(p).map_or(0, |p| p.table.open())
    }

    fn charged(&self, p: ProcessId) -> u64 {
        self.k.processes.get(p).map_or(0, |p| p.charged)
    }

    /// Makes `t` the current thread, as a scheduler decision would.
    fn run(&mut self, t: ThreadId) {
        if self.k.current == Some(t) {
            return;
        }
        let state = self.state(t);
        assert!(
            matches!(state, ThreadState::Ready | ThreadState::Running),
            "thread {t:?} cannot run: {state:?}"
        );
        if let Some(previous) = self.k.current.take() {
            self.k.make_ready(previous);
        }
        self.k.scheduler.remove(t);
        self.k.current = Some(t);
        if let Some(th) = self.k.threads.get_mut(t) {
            th.state = ThreadState::Running;
        }
    }

    /// Runs one trap by `t`; returns its registers if it returns at once.
    fn trap(&mut self, t: ThreadId, args: TrapArgs) -> Option<TrapArgs> {
        self.run(t);
        if let Some(stale) = self.k.take_resume(t) {
            panic!("thread {t:?} had an unread result {stale:?}");
        }
        self.k.trap(&mut self.m, args);
        self.k.take_resume(t)
    }

    /// The registers a blocked thread was woken with.
    fn resume(&mut self, t: ThreadId) -> Option<TrapArgs> {
        self.k.take_resume(t)
    }

    fn send(
        &mut self,
        t: ThreadId,
        function: i32,
        target: Descriptor,
        m: Msg<'_>,
    ) -> Option<TrapArgs> {
        let p = self.process_of(t);
        self.write_msg(p, m);
        self.trap(
            t,
            TrapArgs::send(Function(function), target, m.buf, m.sizes()),
        )
    }

    fn receive(&mut self, t: ThreadId, door: Descriptor, buf: u64, total: u16) -> Option<TrapArgs> {
        self.trap(t, TrapArgs::receive(door, buf, total))
    }

    fn reply(&mut self, t: ThreadId, cookie: u64, m: Msg<'_>) -> Option<TrapArgs> {
        let p = self.process_of(t);
        self.write_msg(p, m);
        self.trap(t, TrapArgs::reply(cookie, m.buf, m.sizes(), false))
    }

    fn reply_receive(&mut self, t: ThreadId, cookie: u64, m: Msg<'_>) -> Option<TrapArgs> {
        let p = self.process_of(t);
        self.write_msg(p, m);
        self.trap(t, TrapArgs::reply(cookie, m.buf, m.sizes(), true))
    }

    /// A kernel function that must return at once.
    fn kcall_msg(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        m: Msg<'_>,
    ) -> TrapArgs {
        match self.send(t, f as i32, target, m) {
            Some(regs) => regs,
            None => panic!("{f:?} by {t:?} did not return"),
        }
    }

    fn kcall(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        data: &[u8],
    ) -> TrapArgs {
        self.kcall_msg(t, f, target, msg(KBUF, data, KTOTAL))
    }

    fn parse_reply(&self, p: ProcessId, buf: u64, regs: TrapArgs) -> KReply {
        let s = MessageSizes::from_bits(regs.arg3);
        let data = self.peek(p, buf, usize::from(s.data_size()));
        assert_eq!(
            data.get(..4).map(<[u8]>::to_vec),
            Some(regs.arg0.to_le_bytes()[..4].to_vec()),
            "word 0 of the reply is msgRetVal"
        );
        let payload = data.get(8..).map_or_else(Vec::new, <[u8]>::to_vec);
        let at = buf + u64::from(descriptor_offset(s.data_size()));
        let slots = (0..u64::from(s.descriptor_count()))
            .map(|i| self.slot_at(p, at + 16 * i))
            .collect();
        KReply {
            regs,
            payload,
            slots,
        }
    }

    /// A kernel function that must succeed.
    fn kcall_ok(
        &mut self,
        t: ThreadId,
        f: KernelFunction,
        target: Descriptor,
        data: &[u8],
    ) -> KReply {
        let regs = self.kcall(t, f, target, data);
        if let Some(e) = regs.kernel_error() {
            panic!("{f:?} by {t:?} failed: {e}");
        }
        let p = self.process_of(t);
        self.parse_reply(p, KBUF, regs)
    }

    fn door_create(&mut self, t: ThreadId, system: bool) -> (Descriptor, Descriptor) {
        let request = DoorCreateRequest {
            system: u32::from(system),
            security_type: 7,
        };
        let reply = self.kcall_ok(
            t,
            KernelFunction::DoorCreate,
            CAP_PROCESS,
            request.as_bytes(),
        );
        assert_eq!(reply.slots.len(), 2);
        assert_eq!(reply.slots[0].rights, Rights::DOOR_OWNER.0);
        assert_eq!(reply.slots[1].rights, Rights::DOOR_CLIENT.0);
        (
            Descriptor(reply.slots[0].descriptor),
            Descriptor(reply.slots[1].descriptor),
        )
    }

    fn event_create(&mut self, t: ThreadId) -> Descriptor {
        let reply = self.kcall_ok(t, KernelFunction::EventCreate, Descriptor::NULL, &[]);
        assert_eq!(reply.slots.len(), 1);
        Descriptor(reply.slots[0].descriptor)
    }

    fn duplicate(
        &mut self,
        t: ThreadId,
        d: Descriptor,
        rights: Rights,
    ) -> Result<Descriptor, Error> {
        let request = DescriptorRequest {
            descriptor: d.0,
            rights: rights.0,
        };
        let regs = self.kcall(
            t,
            KernelFunction::Duplicate,
            Descriptor::NULL,
            request.as_bytes(),
        );
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        assert_eq!(reply.slots.len(), 1);
        assert_eq!(reply.slots[0].rights, rights.0);
        Ok(Descriptor(reply.slots[0].descriptor))
    }

    fn close(&mut self, t: ThreadId, d: Descriptor) -> TrapArgs {
        let request = DescriptorRequest {
            descriptor: d.0,
            rights: 0,
        };
        self.kcall(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            request.as_bytes(),
        )
    }

    fn info(&mut self, t: ThreadId, d: Descriptor) -> Result<(u32, u32), Error> {
        let request = DescriptorRequest {
            descriptor: d.0,
            rights: 0,
        };
        let regs = self.kcall(
            t,
            KernelFunction::DescriptorInfo,
            Descriptor::NULL,
            request.as_bytes(),
        );
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        let p = self.process_of(t);
        let reply = self.parse_reply(p, KBUF, regs);
        match DescriptorInfo::read_from_bytes(&reply.payload) {
            Ok(info) => Ok((info.kind, info.rights)),
            Err(_) => panic!("DESCRIPTOR_INFO payload {:?}", reply.payload),
        }
    }

    fn thread_create(&mut self, t: ThreadId) -> ThreadId {
        let request = ThreadCreateRequest {
            entry: IMAGE,
            stack_top: USER_STACK_TOP - 0x8000,
            argument: 0,
            priority: abi::kcall::DEFAULT_PRIORITY,
            reserved: 0,
        };
        let reply = self.kcall_ok(
            t,
            KernelFunction::ThreadCreate,
            Descriptor::NULL,
            request.as_bytes(),
        );
        assert_eq!(reply.slots.len(), 1);
        let p = self.process_of(t);
        let object = self.object_of(p, Descriptor(reply.slots[0].descriptor));
        match self.k.objects.get(object).map(|o| &o.body) {
            Some(ObjectBody::Thread(thread)) => *thread,
            other => panic!("THREAD_CREATE handle names {other:?}"),
        }
    }

    fn exit_process(&mut self, t: ThreadId, code: u32) {
        let p = self.process_of(t);
        let request = ExitRequest { code, reserved: 0 };
        let result = self.send(
            t,
            KernelFunction::ProcessExit as i32,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL),
        );
        assert_eq!(result, None, "PROCESS_EXIT returned");
        assert!(
            !self.process_alive(p),
            "PROCESS_EXIT left the process alive"
        );
    }

    fn exit_thread(&mut self, t: ThreadId, code: u32) {
        let request = ExitRequest { code, reserved: 0 };
        let result = self.send(
            t,
            KernelFunction::ThreadExit as i32,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL),
        );
        assert_eq!(result, None, "THREAD_EXIT returned");
        assert!(!self.alive(t), "THREAD_EXIT left the thread alive");
    }

    /// SPAWN by init.
    fn spawn(
        &mut self,
        name: &[u8],
        args: &[u8],
        slots: &[DescriptorSlot],
    ) -> Result<Child, Error> {
        let header = SpawnRequest {
            name_length: name.len() as u32,
            argument_length: args.len() as u32,
        };
        let mut data = header.as_bytes().to_vec();
        data.extend_from_slice(name);
        data.extend_from_slice(args);
        let t = self.init_thread;
        let regs = self.kcall_msg(
            t,
            KernelFunction::Spawn,
            CAP_PROCESS,
            msg(KBUF, &data, KTOTAL).slots(slots),
        );
        if let Some(e) = regs.kernel_error() {
            return Err(e);
        }
        assert_eq!(regs, kernel_ok(0, 0, 1).unwrap_or_default());
        let reply = self.parse_reply(self.init, KBUF, regs);
        let handle = Descriptor(reply.slots[0].descriptor);
        let object = self.object_of(self.init, handle);
        let process = match self.k.objects.get(object).map(|o| &o.body) {
            Some(ObjectBody::Process(p)) => *p,
            other => panic!("SPAWN handle names {other:?}"),
        };
        let thread = match self.k.processes.get(process).map(|p| p.threads.as_slice()) {
            Some([t]) => *t,
            other => panic!("spawned process threads {other:?}"),
        };
        Ok(Child {
            process,
            thread,
            handle,
        })
    }

    fn spawn_ok(&mut self, name: &[u8], slots: &[DescriptorSlot]) -> Child {
        match self.spawn(name, &[], slots) {
            Ok(child) => child,
            Err(e) => panic!("SPAWN {:?}: {e}", String::from_utf8_lossy(name)),
        }
    }

    /// One complete call: `server` receives on `owner`, `client` sends
    /// `function` through `via`, `server` replies with `cookie`. Returns
    /// the registers the server received.
    fn round_trip(
        &mut self,
        client: ThreadId,
        via: Descriptor,
        function: i32,
        server: ThreadId,
        owner: Descriptor,
        cookie: u64,
    ) -> TrapArgs {
        assert_eq!(self.receive(server, owner, RBUF, 512), None);
        assert_eq!(
            self.send(client, function, via, msg(SBUF, b"ping", 64)),
            None
        );
        let Some(received) = self.resume(server) else {
            panic!("the server received nothing")
        };
        assert_eq!(
            self.reply(server, cookie, msg(RBUF, &[], 0)),
            Some(TrapArgs::default())
        );
        assert_eq!(self.resume(client), replied(0, 0, 0, 0));
        received
    }

    fn counters(&self) -> (KernelCounters, usize, usize) {
        (
            self.k.counters(),
            self.m.spaces.len(),
            self.m.contexts.len(),
        )
    }

    fn assert_invariants(&mut self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "invariants broken:\n{}",
            violations.join("\n")
        );
    }

    /// Every rule the kernel's state must keep between traps.
    fn violations(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        // The run queues, read by draining and refilling them in order.
        let mut queued = Vec::new();
        while let Some(t) = self.k.scheduler.pick() {
            queued.push(t);
        }
        for &t in &queued {
            let priority = self.k.threads.get(t).map_or(0, |th| th.priority);
            self.k.scheduler.enqueue(t, priority);
        }
        let k = &self.k;
        let queued_set: HashSet<ThreadId> = queued.iter().copied().collect();
        if queued_set.len() != queued.len() {
            v.push(format!("a thread is queued twice: {queued:?}"));
        }
        for &t in &queued {
            match k.threads.get(t) {
                None => v.push(format!("dead thread {t:?} in the run queue")),
                Some(th) if th.state != ThreadState::Ready => {
                    v.push(format!("queued thread {t:?} is {:?}", th.state));
                }
                Some(_) => {}
            }
        }
        if k.current.is_none() && !queued.is_empty() {
            v.push(format!("idle with ready threads {queued:?}"));
        }
        if k.handoff.is_some() {
            v.push(format!("handoff left set: {:?}", k.handoff));
        }
        if let Some(c) = k.current {
            match k.threads.get(c) {
                None => v.push(format!("current thread {c:?} is dead")),
                Some(th) if th.state != ThreadState::Running => {
                    v.push(format!("current thread {c:?} is {:?}", th.state));
                }
                Some(_) => {}
            }
            if queued_set.contains(&c) {
                v.push(format!("current thread {c:?} is also queued"));
            }
        }

        // Threads and what they are blocked on.
        let mut blocked_on: HashMap<ObjectId, u32> = HashMap::new();
        for t in k.threads.ids() {
            let Some(th) = k.threads.get(t) else { continue };
            match k.processes.get(th.process) {
                None => v.push(format!("thread {t:?} of dead process {:?}", th.process)),
                Some(p) if !p.threads.contains(&t) => {
                    v.push(format!("thread {t:?} missing from its process's list"));
                }
                Some(_) => {}
            }
            match th.state {
                ThreadState::Ready if !queued_set.contains(&t) => {
                    v.push(format!("ready thread {t:?} is in no run queue"));
                }
                ThreadState::Running if k.current != Some(t) => {
                    v.push(format!("thread {t:?} is Running but not current"));
                }
                ThreadState::Sending(call) => {
                    *blocked_on.entry(call.door).or_default() += 1;
                    if call.sizes.layout().is_err() {
                        v.push(format!("sender {t:?} holds invalid sizes"));
                    }
                    match k.objects.get(call.door).map(|o| &o.body) {
                        Some(ObjectBody::Door(d)) => {
                            let n = d.senders.iter().filter(|s| **s == t).count();
                            if n != 1 {
                                v.push(format!("sender {t:?} is queued {n} times on its door"));
                            }
                            if d.owner.is_none() {
                                v.push(format!("sender {t:?} waits on a dead door"));
                            }
                        }
                        other => v.push(format!("sender {t:?} sends to {other:?}")),
                    }
                }
                ThreadState::AwaitingReply { call, server } => {
                    let expected = Holding::Call {
                        caller: t,
                        door: call.door,
                    };
                    if k.threads.get(server).map(|s| s.holding) != Some(expected) {
                        v.push(format!(
                            "caller {t:?} awaits {server:?}, which does not hold its call"
                        ));
                    }
                }
                ThreadState::Receiving { door, .. } => {
                    *blocked_on.entry(door).or_default() += 1;
                    match k.objects.get(door).map(|o| &o.body) {
                        Some(ObjectBody::Door(d)) => {
                            let n = d.receivers.iter().filter(|r| **r == t).count();
                            if n != 1 {
                                v.push(format!("receiver {t:?} is queued {n} times"));
                            }
                            if d.owner != Some(th.process) {
                                v.push(format!("receiver {t:?} does not own its door"));
                            }
                        }
                        other => v.push(format!("receiver {t:?} receives on {other:?}")),
                    }
                }
                ThreadState::Waiting { event, .. } => {
                    *blocked_on.entry(event).or_default() += 1;
                    match k.objects.get(event).map(|o| &o.body) {
                        Some(ObjectBody::Event(e)) => {
                            let n = e.waiters.iter().filter(|w| **w == t).count();
                            if n != 1 {
                                v.push(format!("waiter {t:?} is queued {n} times"));
                            }
                        }
                        other => v.push(format!("waiter {t:?} waits on {other:?}")),
                    }
                }
                _ => {}
            }
            if let Holding::Call { caller, door } = th.holding {
                match k.threads.get(caller).map(|c| c.state) {
                    Some(ThreadState::AwaitingReply { call, server })
                        if server == t && call.door == door => {}
                    other => v.push(format!(
                        "server {t:?} holds a call from {caller:?}, which is {other:?}"
                    )),
                }
            }
        }

        // Tables, charges, and references per object.
        let mut referenced: HashMap<ObjectId, u32> = HashMap::new();
        let mut receive_refs: HashMap<ObjectId, Vec<ProcessId>> = HashMap::new();
        for p in k.processes.ids() {
            let Some(process) = k.processes.get(p) else {
                continue;
            };
            let mut open = 0u64;
            for d in 1..=MAX_DESCRIPTORS {
                let Ok(r) = process.table.get(Descriptor(d)) else {
                    continue;
                };
                open += 1;
                *referenced.entry(r.object).or_default() += 1;
                if !k.objects.contains(r.object) {
                    v.push(format!("{p:?} descriptor {d} names a freed object"));
                }
                if r.rights.has_reserved_bits() {
                    v.push(format!("{p:?} descriptor {d} has reserved rights"));
                }
                if r.rights.contains(Rights::RECEIVE) {
                    receive_refs.entry(r.object).or_default().push(p);
                }
            }
            if open != process.table.open() as u64 {
                v.push(format!(
                    "{p:?} table counts {} open, holds {open}",
                    process.table.open()
                ));
            }
            let mut seen = HashSet::new();
            for &t in &process.threads {
                if !seen.insert(t) {
                    v.push(format!("{p:?} lists thread {t:?} twice"));
                }
                if k.threads.get(t).map(|th| th.process) != Some(p) {
                    v.push(format!("{p:?} lists thread {t:?}, not its own"));
                }
            }
            let objects = k
                .objects
                .ids()
                .filter(|o| k.objects.get(*o).is_some_and(|o| o.charged_to == p))
                .count() as u64;
            let expected = self.m.mapped_bytes(process.space)
                + DESCRIPTOR_COST * open
                + THREAD_COST * process.threads.len() as u64
                + OBJECT_COST * objects;
            if process.charged != expected {
                v.push(format!(
                    "{p:?} is charged {} bytes, holds {expected}",
                    process.charged
                ));
            }
        }
        for o in k.objects.ids() {
            let Some(object) = k.objects.get(o) else {
                continue;
            };
            let expected =
                referenced.get(&o).copied().unwrap_or(0) + blocked_on.get(&o).copied().unwrap_or(0);
            if object.references != expected || expected == 0 {
                v.push(format!(
                    "object {o:?} ({:?}) counts {} references, has {expected}",
                    object.kind(),
                    object.references
                ));
            }
            let owners = receive_refs.remove(&o).unwrap_or_default();
            match &object.body {
                ObjectBody::Door(d) => {
                    let expected_owners: Vec<ProcessId> = d.owner.into_iter().collect();
                    if owners != expected_owners {
                        v.push(format!(
                            "door {o:?} owner {:?}, RECEIVE references in {owners:?}",
                            d.owner
                        ));
                    }
                    for s in &d.senders {
                        if !matches!(k.threads.get(*s).map(|t| t.state),
                            Some(ThreadState::Sending(call)) if call.door == o)
                        {
                            v.push(format!(
                                "door {o:?} queues {s:?}, which is not sending to it"
                            ));
                        }
                    }
                    for r in &d.receivers {
                        if !matches!(k.threads.get(*r).map(|t| t.state),
                            Some(ThreadState::Receiving { door, .. }) if door == o)
                        {
                            v.push(format!(
                                "door {o:?} lists receiver {r:?}, not receiving on it"
                            ));
                        }
                    }
                }
                ObjectBody::Event(e) => {
                    for w in &e.waiters {
                        if !matches!(k.threads.get(*w).map(|t| t.state),
                            Some(ThreadState::Waiting { event, .. }) if event == o)
                        {
                            v.push(format!("event {o:?} lists waiter {w:?}, not waiting on it"));
                        }
                    }
                    if !e.waiters.is_empty() && e.count > 0 {
                        v.push(format!("event {o:?} has count {} and waiters", e.count));
                    }
                }
                _ => {
                    if !owners.is_empty() {
                        v.push(format!("non-door {o:?} has RECEIVE references"));
                    }
                }
            }
        }
        for (o, owners) in receive_refs {
            v.push(format!(
                "dangling RECEIVE references to {o:?} in {owners:?}"
            ));
        }

        // The machine mirrors the kernel.
        let spaces: HashSet<SpaceId> = k
            .processes
            .ids()
            .filter_map(|p| k.processes.get(p).map(|p| p.space))
            .collect();
        let machine_spaces: HashSet<SpaceId> = self.m.spaces.keys().copied().collect();
        if spaces != machine_spaces {
            v.push(format!(
                "spaces: kernel {spaces:?}, machine {machine_spaces:?}"
            ));
        }
        let threads: HashSet<ThreadId> = k.threads.ids().collect();
        let contexts: HashSet<ThreadId> = self.m.contexts.keys().copied().collect();
        if threads != contexts {
            v.push(format!(
                "threads: kernel {threads:?}, machine contexts {contexts:?}"
            ));
        }
        v.extend(self.m.anomalies.iter().cloned());
        v
    }
}

// ----- fixtures -----

/// The owner reference in a fixture's server, and the client reference in
/// each fixture client.
const OWNER: Descriptor = Descriptor(1);
const REF: Descriptor = Descriptor(1);

/// A door created by init, its owner moved to `server`, a copy of the
/// client reference in each client (init keeps its own).
#[derive(Debug)]
struct Fixture {
    w: World,
    server: Child,
    clients: Vec<Child>,
    /// Init's own client reference to the door.
    init_ref: Descriptor,
    function: i32,
}

fn fixture(system: bool, clients: usize) -> Fixture {
    let mut w = World::new();
    let init = w.init_thread;
    let (owner, client_ref) = w.door_create(init, system);
    let server = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    );
    let clients = (0..clients)
        .map(|_| {
            w.spawn_ok(
                b"client",
                &[DescriptorSlot::copy(client_ref, Rights::DOOR_CLIENT)],
            )
        })
        .collect();
    Fixture {
        w,
        server,
        clients,
        init_ref: client_ref,
        function: if system { SYSTEM_FN } else { USER_FN },
    }
}

impl Fixture {
    fn s(&self) -> ThreadId {
        self.server.thread
    }

    fn c(&self, i: usize) -> ThreadId {
        self.clients[i].thread
    }

    fn sp(&self) -> ProcessId {
        self.server.process
    }

    fn cp(&self, i: usize) -> ProcessId {
        self.clients[i].process
    }
}

/// Registers of a message delivered with `cookie`, `data` bytes and `count`
/// slots from a `total`-byte buffer into the server's RBUF.
fn received(function: i32, cookie: u64, total: u16, data: u16, count: u8) -> Option<TrapArgs> {
    Some(TrapArgs::received(
        Function(function),
        cookie,
        RBUF,
        sizes(total, data, count),
    ))
}

fn pattern(n: usize) -> Vec<u8> {
    (1..=n).map(|i| i as u8).collect()
}

// ----- 1. SEND, RECEIVE, REPLY -----

#[test]
fn send_to_a_waiting_receiver_delivers_at_once_and_hands_off() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let sp = f.sp();
    f.w.fill(sp, RBUF, 256, 0xee);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 256), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    let data = pattern(20);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, &data, 64)), None);
    assert_eq!(f.w.k.current(), Some(s), "direct handoff to the receiver");
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 20, 0));
    assert_eq!(f.w.peek(sp, RBUF, 20), data);
    assert_eq!(
        f.w.peek(sp, RBUF + 24, 64),
        vec![0xee; 64],
        "nothing past the message"
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { server, .. } if server == s));
    assert_eq!(f.w.resume(c), None);
    f.w.assert_invariants();
}

#[test]
fn reply_delivers_ret_val_and_errno_by_data_size() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let reply_data = pattern(20);
    // (data size, msgRetVal, msgErrno) as the ABI defines them.
    let cases: [(u16, u32, u32); 6] = [
        (0, 0, 0),
        (3, 0, 0),
        (4, 0x0403_0201, 0),
        (7, 0x0403_0201, 0),
        (8, 0x0403_0201, 0x0807_0605),
        (20, 0x0403_0201, 0x0807_0605),
    ];
    for (n, ret_val, errno) in cases {
        f.w.fill(cp, SBUF, 64, 0xcc);
        assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
        assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"question", 64)), None);
        assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 8, 0));
        let data = &reply_data[..usize::from(n)];
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, data, 32)),
            Some(TrapArgs::default()),
            "REPLY returns all zeros (data {n})"
        );
        assert_eq!(f.w.k.current(), Some(s), "the replier keeps running");
        assert_eq!(f.w.state(c), ThreadState::Ready);
        assert_eq!(f.w.resume(c), replied(ret_val, errno, n, 0), "data {n}");
        assert_eq!(f.w.peek(cp, SBUF, usize::from(n)), data);
        // Past the reply (data and padding) the caller's buffer is as it was.
        let end = usize::from(n).div_ceil(8) * 8;
        let mut before = [0xcc; 64];
        before[..8].copy_from_slice(b"question");
        assert_eq!(
            f.w.peek(cp, SBUF + end as u64, 64 - end),
            before[end..].to_vec(),
            "nothing written past the reply (data {n})"
        );
    }
    f.w.assert_invariants();
}

#[test]
fn reply_receive_with_an_empty_queue_hands_back_to_the_caller() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"ping", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 4, 0));
    assert_eq!(f.w.reply_receive(s, 0, msg(RBUF, b"pong", 512)), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    assert_eq!(
        f.w.k.current(),
        Some(c),
        "direct handoff back to the caller"
    );
    assert_eq!(f.w.resume(c), replied(0x676e_6f70, 0, 4, 0));
    f.w.assert_invariants();
}

#[test]
fn reply_receive_with_a_queued_caller_receives_it_at_once() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"first", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"second", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 5, 0)
    );
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 512)),
        received(USER_FN, 0, 64, 6, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 6), b"second");
    assert_eq!(f.w.resume(c0), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

// ----- 2. cookies -----

#[test]
fn reply_cookie_is_stored_in_the_callers_reference_and_delivered_with_the_next_call() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let first =
        f.w.round_trip(c, REF, USER_FN, s, OWNER, 0xdead_beef_0000_0001);
    assert_eq!(first.arg1, 0, "a new reference's cookie is 0");
    assert_eq!(
        f.w.reference(cp, REF).map(|r| r.cookie),
        Some(0xdead_beef_0000_0001)
    );
    let second = f.w.round_trip(c, REF, USER_FN, s, OWNER, u64::MAX);
    assert_eq!(second.arg1, 0xdead_beef_0000_0001);
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(u64::MAX));
    let third = f.w.round_trip(c, REF, USER_FN, s, OWNER, 5);
    assert_eq!(third.arg1, u64::MAX, "cookies are 64 bits wide");
    f.w.assert_invariants();
}

#[test]
fn a_duplicated_reference_has_its_own_cookie() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    f.w.round_trip(c, REF, USER_FN, s, OWNER, 41);
    let Ok(copy) = f.w.duplicate(c, REF, Rights::DOOR_CLIENT) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!(f.w.round_trip(c, copy, USER_FN, s, OWNER, 99).arg1, 0);
    assert_eq!(f.w.round_trip(c, REF, USER_FN, s, OWNER, 41).arg1, 41);
    assert_eq!(f.w.round_trip(c, copy, USER_FN, s, OWNER, 99).arg1, 99);
    assert_eq!(f.w.reference(cp, copy).map(|r| r.cookie), Some(99));
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(41));
    f.w.assert_invariants();
}

#[test]
fn a_copied_reference_starts_at_cookie_zero_and_a_moved_one_keeps_its_cookie() {
    // Door A: server S, client C. Door B: owned by X, C holds a reference.
    let mut w = World::new();
    let init = w.init_thread;
    let (a_owner, a_client) = w.door_create(init, false);
    let (b_owner, b_client) = w.door_create(init, false);
    let s = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(a_owner, Rights::DOOR_OWNER)],
    );
    let x = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(b_owner, Rights::DOOR_OWNER)],
    );
    let c = w.spawn_ok(
        b"client",
        &[
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(b_client, Rights::DOOR_CLIENT),
        ],
    );
    let (a, b) = (Descriptor(1), Descriptor(2));
    w.round_trip(c.thread, a, USER_FN, s.thread, OWNER, 77);
    let Ok(a2) = w.duplicate(c.thread, a, Rights::DOOR_CLIENT) else {
        panic!("DUPLICATE failed")
    };
    w.round_trip(c.thread, a2, USER_FN, s.thread, OWNER, 88);
    // C passes a copy of `a` (cookie 77) and moves `a2` (cookie 88) to X.
    assert_eq!(w.receive(x.thread, OWNER, RBUF, 512), None);
    let slots = [
        DescriptorSlot::copy(a, Rights::DOOR_CLIENT),
        DescriptorSlot::moving(a2, Rights::DOOR_CLIENT),
    ];
    assert_eq!(
        w.send(c.thread, USER_FN, b, msg(SBUF, &[], 64).slots(&slots)),
        None
    );
    assert_eq!(w.resume(x.thread), received(USER_FN, 0, 64, 0, 2));
    let copied = Descriptor(w.slot_at(x.process, RBUF).descriptor);
    let moved = Descriptor(w.slot_at(x.process, RBUF + 16).descriptor);
    assert_eq!((copied, moved), (Descriptor(2), Descriptor(3)));
    assert_eq!(w.reference(x.process, copied).map(|r| r.cookie), Some(0));
    assert_eq!(w.reference(x.process, moved).map(|r| r.cookie), Some(88));
    assert_eq!(w.reference(c.process, a2), None, "moved away");
    assert_eq!(
        w.reference(c.process, a).map(|r| r.cookie),
        Some(77),
        "the original keeps its own"
    );
    assert_eq!(
        w.reply(x.thread, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(w.resume(c.thread), replied(0, 0, 0, 0));
    // X calls S through both.
    assert_eq!(
        w.round_trip(x.thread, copied, USER_FN, s.thread, OWNER, 1)
            .arg1,
        0
    );
    assert_eq!(
        w.round_trip(x.thread, moved, USER_FN, s.thread, OWNER, 2)
            .arg1,
        88
    );
    w.assert_invariants();
}

// ----- 3. queueing -----

#[test]
fn send_without_a_receiver_blocks_the_caller() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"hello", 64)), None);
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_ne!(f.w.k.current(), Some(c));
    assert_eq!(f.w.resume(c), None);
    f.w.assert_invariants();
}

#[test]
fn queued_senders_are_received_in_fifo_order() {
    let mut f = fixture(false, 3);
    let s = f.s();
    for i in 0..3 {
        let data = vec![b'a' + i as u8; 10 + i];
        assert_eq!(f.w.send(f.c(i), USER_FN, REF, msg(SBUF, &data, 64)), None);
    }
    for i in 0..3 {
        assert_eq!(
            f.w.receive(s, OWNER, RBUF, 512),
            received(USER_FN, 0, 64, 10 + i as u16, 0),
            "message {i}"
        );
        assert_eq!(f.w.peek(f.sp(), RBUF, 10 + i), vec![b'a' + i as u8; 10 + i]);
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, &[], 0)),
            Some(TrapArgs::default())
        );
        assert_eq!(f.w.resume(f.c(i)), replied(0, 0, 0, 0));
    }
    f.w.assert_invariants();
}

// ----- 4. reply too large -----

#[test]
fn reply_larger_than_the_callers_buffer_fails_the_replier_and_keeps_the_caller_blocked() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"12345678", 16)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 16, 8, 0));
    let big = pattern(24);
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &big, 64)),
        err(Error::ReplyTooLarge)
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    assert!(matches!(f.w.holding(s), Holding::Call { caller, .. } if caller == c));
    assert_eq!(f.w.resume(c), None);
    // 17 bytes of data occupy 24 with padding: still too large.
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &big[..17], 64)),
        err(Error::ReplyTooLarge)
    );
    assert_eq!(
        f.w.reply(s, 3, msg(RBUF, &big[..16], 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0x0403_0201, 0x0807_0605, 16, 0));
    assert_eq!(f.w.peek(cp, SBUF, 16), big[..16].to_vec());
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(3));
    f.w.assert_invariants();
}

// ----- 5. receive buffer too small -----

#[test]
fn receive_buffer_smaller_than_the_queued_message_leaves_it_queued() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let data = pattern(100);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, &data, 128)), None);
    let too_small = Some(TrapArgs::receive_too_small(sizes(128, 100, 0)));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 64), too_small);
    // Without descriptors there is no padding (ABI.md D13): 100 bytes need 100.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 99), too_small);
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 100),
        received(USER_FN, 0, 128, 100, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 100), data);
    f.w.assert_invariants();
}

#[test]
fn a_message_too_big_for_a_blocked_receiver_wakes_it_with_the_sizes_and_stays_queued() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 32), None);
    let data = pattern(100);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, &data, 128)), None);
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::receive_too_small(sizes(128, 100, 0)))
    );
    assert!(matches!(f.w.state(c), ThreadState::Sending(_)));
    assert_eq!(f.w.resume(c), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 128),
        received(USER_FN, 0, 128, 100, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 100), data);
    f.w.assert_invariants();
}

#[test]
fn a_too_small_receiver_does_not_hold_up_a_capable_one() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 32), None);
    assert_eq!(f.w.receive(s2, OWNER, RBUF + 0x800, 512), None);
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, &pattern(100), 128)),
        None
    );
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::receive_too_small(sizes(128, 100, 0)))
    );
    assert_eq!(
        f.w.resume(s2),
        Some(TrapArgs::received(
            Function(USER_FN),
            0,
            RBUF + 0x800,
            sizes(128, 100, 0)
        )),
        "the receiver whose buffer fits gets the message"
    );
    f.w.assert_invariants();
}

// ----- 6. nothing to reply -----

#[test]
fn reply_with_nothing_pending_is_nothing_to_reply() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 64)),
        err(Error::NothingToReply)
    );
    f.w.round_trip(c, REF, USER_FN, s, OWNER, 0);
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    // A client never holds a message.
    assert_eq!(
        f.w.reply(c, 0, msg(SBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

// ----- 7. abandon -----

#[test]
fn receiving_again_without_replying_abandons_the_previous_caller() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"one", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"two", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 3, 0)
    );
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 3, 0)
    );
    assert_eq!(f.w.peek(f.sp(), RBUF, 3), b"two");
    assert_eq!(f.w.resume(c0), err(Error::Abandoned));
    assert_eq!(f.w.state(c0), ThreadState::Ready);
    // Abandoned even when the new RECEIVE blocks.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.resume(c1), err(Error::Abandoned));
    // A RECEIVE that fails its checks abandons nothing.
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"three", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(
        f.w.receive(s, Descriptor(9), RBUF, 512),
        err(Error::BadDescriptor)
    );
    assert!(matches!(f.w.state(c0), ThreadState::AwaitingReply { .. }));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c0), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

// ----- 8. death -----

#[test]
fn server_exit_fails_its_queued_and_in_service_callers_with_peer_died() {
    let mut f = fixture(false, 3);
    let s = f.s();
    let sp = f.sp();
    for i in 0..3 {
        assert_eq!(f.w.send(f.c(i), USER_FN, REF, msg(SBUF, b"x", 64)), None);
    }
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 1, 0)
    );
    f.w.exit_process(s, 9);
    for i in 0..3 {
        assert_eq!(f.w.resume(f.c(i)), err(Error::PeerDied), "caller {i}");
        assert_eq!(f.w.state(f.c(i)), ThreadState::Ready);
    }
    assert!(f.w.k.take_exited().contains(&(sp, 9)));
    // Nothing can call the dead door any more.
    assert_eq!(
        f.w.send(f.c(0), USER_FN, REF, msg(SBUF, b"x", 64)),
        err(Error::PeerDied)
    );
    f.w.assert_invariants();
}

#[test]
fn client_death_while_queued_removes_the_call_from_the_queue() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let helper = f.w.thread_create(c0);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"doomed", 64)), None);
    f.w.exit_process(helper, 1);
    assert!(!f.w.alive(c0));
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        None,
        "the dead call is not delivered"
    );
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"alive", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(f.w.peek(f.sp(), RBUF, 5), b"alive");
    f.w.assert_invariants();
}

#[test]
fn client_death_in_service_makes_reply_caller_gone() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let helper = f.w.thread_create(c);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"x", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    f.w.exit_process(helper, 1);
    assert!(matches!(f.w.holding(s), Holding::Cancelled { .. }));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"late", 64)),
        err(Error::CallerGone)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"late", 64)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_ignores_caller_gone_and_receives() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let h0 = f.w.thread_create(c0);
    let h1 = f.w.thread_create(c1);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"first", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"second", 64)), None);
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 5, 0)
    );
    f.w.exit_process(h0, 1);
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, b"late", 512)),
        received(USER_FN, 0, 64, 6, 0)
    );
    // And with nothing queued it blocks.
    f.w.exit_process(h1, 1);
    assert_eq!(f.w.reply_receive(s, 0, msg(RBUF, &[], 512)), None);
    assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
    f.w.assert_invariants();
}

#[test]
fn closing_the_owner_reference_fails_queued_and_later_callers() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"x", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"y", 64)), None);
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.resume(c0), err(Error::PeerDied));
    assert_eq!(f.w.resume(c1), err(Error::PeerDied));
    assert_eq!(
        f.w.send(c0, USER_FN, REF, msg(SBUF, b"x", 64)),
        err(Error::PeerDied)
    );
    f.w.assert_invariants();
}

#[test]
fn closing_the_owner_reference_wakes_its_waiting_receivers_with_peer_died() {
    let mut f = fixture(false, 1);
    let s = f.s();
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s2, OWNER, RBUF, 512), None);
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.resume(s2), err(Error::PeerDied));
    f.w.assert_invariants();
}

// ----- 9. RECEIVE's descriptor -----

#[test]
fn receive_on_a_client_reference_is_not_owner() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(f.w.receive(c, REF, SBUF, 64), err(Error::NotOwner));
    f.w.assert_invariants();
}

#[test]
fn receive_on_an_event_is_wrong_object_type() {
    let mut f = fixture(false, 1);
    let s = f.s();
    let e = f.w.event_create(s);
    assert_eq!(f.w.receive(s, e, RBUF, 64), err(Error::WrongObjectType));
    f.w.assert_invariants();
}

#[test]
fn receive_on_a_bad_descriptor_is_bad_descriptor() {
    let mut f = fixture(false, 1);
    let s = f.s();
    for d in [0, 2, 77, MAX_DESCRIPTORS, MAX_DESCRIPTORS + 1, u32::MAX] {
        assert_eq!(
            f.w.receive(s, Descriptor(d), RBUF, 64),
            err(Error::BadDescriptor),
            "{d}"
        );
    }
    f.w.assert_invariants();
}

// ----- 10. function ranges -----

/// Sends `function` from client 0; if it queued, serves it and checks the
/// server saw that very number.
fn accepted(f: &mut Fixture, function: i32) -> bool {
    let (s, c) = (f.s(), f.c(0));
    match f.w.send(c, function, REF, msg(SBUF, &[], 8)) {
        None => {
            assert_eq!(
                f.w.receive(s, OWNER, RBUF, 64),
                received(function, 0, 8, 0, 0)
            );
            assert_eq!(
                f.w.reply(s, 0, msg(RBUF, &[], 0)),
                Some(TrapArgs::default())
            );
            assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
            true
        }
        Some(regs) => {
            // A function that must go to a kernel object of another kind is
            // WRONG_OBJECT_TYPE; anything else the door refuses.
            let wrong_kind = KernelFunction::from_number(function).is_some_and(|f| {
                matches!(
                    f,
                    KernelFunction::EventSignal
                        | KernelFunction::EventWait
                        | KernelFunction::ProcessSetCookie
                        | KernelFunction::DoorCreate
                        | KernelFunction::Spawn
                        | KernelFunction::ManagerRegister
                        | KernelFunction::ArchiveRead
                        | KernelFunction::DebugExit
                )
            });
            let expected = if wrong_kind {
                Error::WrongObjectType
            } else {
                Error::FunctionOutOfRange
            };
            assert_eq!(regs, TrapArgs::error(expected), "{function:#x}");
            false
        }
    }
}

#[test]
fn a_user_door_accepts_only_user_functions() {
    let mut f = fixture(false, 1);
    for function in [0x8000, 0x8001, 0x1234_5678, i32::MAX] {
        assert!(accepted(&mut f, function), "{function:#x}");
    }
    for function in [0x1000, 0x4000, 0x7fff, 0x400, 0x800, 0xfff] {
        assert!(!accepted(&mut f, function), "{function:#x}");
    }
    for kf in [
        KernelFunction::Close,
        KernelFunction::Counters,
        KernelFunction::DoorCreate,
    ] {
        assert!(!accepted(&mut f, kf as i32), "{kf:?}");
    }
    f.w.assert_invariants();
}

#[test]
fn a_system_door_accepts_only_system_functions() {
    let mut f = fixture(true, 1);
    assert_eq!(f.function, SYSTEM_FN);
    for function in [0x1000, 0x4000, 0x7fff] {
        assert!(accepted(&mut f, function), "{function:#x}");
    }
    for function in [0x8000, 0x8001, i32::MAX, 0x400, 0xfff] {
        assert!(!accepted(&mut f, function), "{function:#x}");
    }
    for kf in [KernelFunction::Close, KernelFunction::Yield] {
        assert!(!accepted(&mut f, kf as i32), "{kf:?}");
    }
    f.w.assert_invariants();
}

#[test]
fn invalid_and_unknown_function_numbers_are_invalid_function() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for function in [-1, -2, i32::MIN] {
        assert_eq!(
            f.w.send(c, function, REF, msg(SBUF, &[], 8)),
            err(Error::InvalidFunction)
        );
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(SBUF, &[], 8)),
            err(Error::InvalidFunction)
        );
    }
    for function in [0x0, 0x4, 0x13, 0x100, 0x3ff] {
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(KBUF, &[], 64)),
            err(Error::InvalidFunction),
            "{function:#x}"
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_process_manager_function_without_a_process_manager_is_peer_died() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for function in [0x400, 0x401, 0xfff] {
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(SBUF, &[], 8)),
            err(Error::PeerDied)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_door_function_on_the_null_target_is_function_out_of_range() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for function in [0x1000, 0x7fff, 0x8000, i32::MAX] {
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(SBUF, &[], 8)),
            err(Error::FunctionOutOfRange)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn send_needs_an_open_door_descriptor_with_the_send_right() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(
        f.w.send(c, USER_FN, Descriptor(5), msg(SBUF, &[], 8)),
        err(Error::BadDescriptor)
    );
    let e = f.w.event_create(c);
    assert_eq!(
        f.w.send(c, USER_FN, e, msg(SBUF, &[], 8)),
        err(Error::WrongObjectType)
    );
    let Ok(mute) = f.w.duplicate(c, REF, Rights::TRANSFER) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!(
        f.w.send(c, USER_FN, mute, msg(SBUF, &[], 8)),
        err(Error::MissingRight)
    );
    // The owner reference has no SEND right.
    assert_eq!(
        f.w.send(s, USER_FN, OWNER, msg(SBUF, &[], 8)),
        err(Error::MissingRight)
    );
    f.w.assert_invariants();
}

// ----- 11. descriptor transfer -----

/// Client 0 sends `slots` (after one byte of data) to the waiting server;
/// returns the server's RECEIVE registers.
fn send_slots(f: &mut Fixture, slots: &[DescriptorSlot]) -> Option<TrapArgs> {
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    match f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(slots)) {
        None => f.w.resume(s),
        Some(error) => {
            // The server still waits; the caller got the error at once.
            assert!(matches!(f.w.state(s), ThreadState::Receiving { .. }));
            Some(error)
        }
    }
}

#[test]
fn a_copied_descriptor_stays_with_the_sender_and_a_moved_one_leaves() {
    let mut f = fixture(false, 1);
    let (s, c, sp, cp) = (f.s(), f.c(0), f.sp(), f.cp(0));
    let e1 = f.w.event_create(c);
    let e2 = f.w.event_create(c);
    let slots = [
        DescriptorSlot::copy(e1, Rights::EVENT),
        DescriptorSlot::moving(e2, Rights::EVENT),
    ];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 2));
    assert_eq!(f.w.open_descriptors(cp), 2, "REF and e1");
    assert!(f.w.reference(cp, e1).is_some());
    assert_eq!(f.w.reference(cp, e2), None);
    assert_eq!(f.w.open_descriptors(sp), 3, "OWNER and two events");
    let (o1, o2) = (f.w.object_of(cp, e1), f.w.object_of(sp, Descriptor(3)));
    assert_eq!(f.w.object_of(sp, Descriptor(2)), o1);
    assert_eq!(f.w.k.objects.get(o1).map(|o| o.references), Some(2));
    assert_eq!(f.w.k.objects.get(o2).map(|o| o.references), Some(1));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn delivered_slots_carry_the_receivers_descriptor_and_the_granted_rights() {
    let mut f = fixture(false, 1);
    let (s, c, sp, cp) = (f.s(), f.c(0), f.sp(), f.cp(0));
    let e1 = f.w.event_create(c);
    let e2 = f.w.event_create(c);
    let signal_only = Rights::SIGNAL;
    let wait_transfer = Rights::WAIT.union(Rights::TRANSFER);
    let slots = [
        DescriptorSlot::copy(e1, signal_only),
        DescriptorSlot::moving(e2, wait_transfer),
    ];
    assert_eq!(send_slots(&mut f, &slots), received(USER_FN, 0, 128, 1, 2));
    assert_eq!(f.w.peek(sp, RBUF, 1), b"d");
    assert_eq!(
        f.w.slot_at(sp, RBUF + 8),
        DescriptorSlot::copy(Descriptor(2), signal_only)
    );
    assert_eq!(
        f.w.slot_at(sp, RBUF + 24),
        DescriptorSlot::moving(Descriptor(3), wait_transfer)
    );
    assert_eq!(
        f.w.reference(sp, Descriptor(2)).map(|r| r.rights),
        Some(signal_only)
    );
    assert_eq!(
        f.w.reference(sp, Descriptor(3)).map(|r| r.rights),
        Some(wait_transfer)
    );
    assert_eq!(
        f.w.reference(cp, e1).map(|r| r.rights),
        Some(Rights::EVENT),
        "the sender keeps its rights"
    );
    // The sender's own buffer is not rewritten.
    assert_eq!(f.w.slot_at(cp, SBUF + 8), slots[0]);
    // Attenuated rights stick: without TRANSFER the server cannot pass it on.
    assert_eq!(
        f.w.info(s, Descriptor(2)),
        Ok((ObjectKind::Event as u32, signal_only.0))
    );
    let back = [DescriptorSlot::copy(Descriptor(2), signal_only)];
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&back)),
        err(Error::NotTransferable)
    );
    let back = [DescriptorSlot::copy(Descriptor(3), Rights::WAIT)];
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"ok", 64).slots(&back)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 2, 1));
    assert_eq!(
        f.w.slot_at(cp, SBUF + 8),
        DescriptorSlot::copy(e2, Rights::WAIT),
        "lowest free number"
    );
    assert_eq!(f.w.reference(cp, e2).map(|r| r.rights), Some(Rights::WAIT));
    f.w.assert_invariants();
}

#[test]
fn a_slot_granting_rights_the_sender_lacks_is_rights_exceeded() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::copy(e, Rights::SEND)];
    assert_eq!(send_slots(&mut f, &slots), err(Error::RightsExceeded));
    let with_receive = Rights::EVENT.union(Rights::RECEIVE);
    for slot in [
        DescriptorSlot::moving(e, Rights::SEND),
        DescriptorSlot::copy(e, with_receive),
        DescriptorSlot::moving(e, with_receive),
    ] {
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&[slot])),
            err(Error::RightsExceeded)
        );
    }
    assert_eq!(
        f.w.reference(f.cp(0), e).map(|r| r.rights),
        Some(Rights::EVENT)
    );
    f.w.assert_invariants();
}

#[test]
fn a_descriptor_without_transfer_right_is_not_transferable() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let Ok(kept) = f.w.duplicate(c, e, Rights::SIGNAL.union(Rights::WAIT)) else {
        panic!("DUPLICATE failed")
    };
    let slots = [DescriptorSlot::copy(kept, Rights::SIGNAL)];
    assert_eq!(send_slots(&mut f, &slots), err(Error::NotTransferable));
    let slots = [DescriptorSlot::moving(kept, Rights::NONE)];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        err(Error::NotTransferable)
    );
    assert!(f.w.reference(f.cp(0), kept).is_some());
    f.w.assert_invariants();
}

#[test]
fn copying_a_receive_right_is_not_transferable() {
    // A second door, owned by the fixture's client, passed to the server.
    let mut f = fixture(false, 1);
    let init = f.w.init_thread;
    let (owner2, _client2) = f.w.door_create(init, false);
    // Init cannot copy the owner reference to a child either.
    assert_eq!(
        f.w.spawn(
            b"client",
            &[],
            &[DescriptorSlot::copy(owner2, Rights::DOOR_OWNER)]
        ),
        Err(Error::NotTransferable)
    );
    let child = match f.w.spawn(
        b"client",
        &[],
        &[
            DescriptorSlot::copy(f.init_ref, Rights::DOOR_CLIENT),
            DescriptorSlot::moving(owner2, Rights::DOOR_OWNER),
        ],
    ) {
        Ok(child) => child,
        Err(e) => panic!("SPAWN: {e}"),
    };
    // The child (a client of the fixture's door) holds an owner reference.
    let owner_in_child = Descriptor(2);
    assert_eq!(
        f.w.info(child.thread, owner_in_child),
        Ok((ObjectKind::UserDoor as u32, Rights::DOOR_OWNER.0))
    );
    let s = f.s();
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    let slots = [DescriptorSlot::copy(owner_in_child, Rights::DOOR_OWNER)];
    assert_eq!(
        f.w.send(
            child.thread,
            USER_FN,
            REF,
            msg(SBUF, b"d", 128).slots(&slots)
        ),
        err(Error::NotTransferable)
    );
    let slots = [DescriptorSlot::moving(owner_in_child, Rights::TRANSFER)];
    assert_eq!(
        f.w.send(
            child.thread,
            USER_FN,
            REF,
            msg(SBUF, b"d", 128).slots(&slots)
        ),
        err(Error::NotTransferable)
    );
    // Moving it works, and the server becomes the door's owner.
    let slots = [DescriptorSlot::moving(owner_in_child, Rights::DOOR_OWNER)];
    assert_eq!(
        f.w.send(
            child.thread,
            USER_FN,
            REF,
            msg(SBUF, b"d", 128).slots(&slots)
        ),
        None
    );
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 128, 1, 1));
    assert_eq!(
        f.w.slot_at(f.sp(), RBUF + 8),
        DescriptorSlot::moving(Descriptor(2), Rights::DOOR_OWNER)
    );
    let door = f.w.object_of(f.sp(), Descriptor(2));
    assert!(matches!(
        f.w.k.objects.get(door).map(|o| &o.body),
        Some(ObjectBody::Door(d)) if d.owner == Some(f.server.process)
    ));
    f.w.assert_invariants();
}

#[test]
fn a_descriptor_moved_twice_or_moved_and_copied_is_duplicate_slot() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let cases = [
        [
            DescriptorSlot::moving(e, Rights::EVENT),
            DescriptorSlot::moving(e, Rights::EVENT),
        ],
        [
            DescriptorSlot::moving(e, Rights::EVENT),
            DescriptorSlot::copy(e, Rights::SIGNAL),
        ],
        [
            DescriptorSlot::copy(e, Rights::SIGNAL),
            DescriptorSlot::moving(e, Rights::EVENT),
        ],
    ];
    assert_eq!(send_slots(&mut f, &cases[0]), err(Error::DuplicateSlot));
    for slots in &cases[1..] {
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(slots)),
            err(Error::DuplicateSlot)
        );
    }
    assert!(f.w.reference(f.cp(0), e).is_some());
    // Copied twice is fine: two new references.
    let slots = [
        DescriptorSlot::copy(e, Rights::SIGNAL),
        DescriptorSlot::copy(e, Rights::WAIT),
    ];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    let s = f.s();
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 128, 1, 2));
    assert_eq!(
        f.w.slot_at(f.sp(), RBUF + 8),
        DescriptorSlot::copy(Descriptor(2), Rights::SIGNAL)
    );
    assert_eq!(
        f.w.slot_at(f.sp(), RBUF + 24),
        DescriptorSlot::copy(Descriptor(3), Rights::WAIT)
    );
    f.w.assert_invariants();
}

#[test]
fn a_slot_with_an_unknown_mode_is_bad_slot() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    for mode in [2, 3, u32::MAX] {
        let slot = DescriptorSlot {
            mode,
            ..DescriptorSlot::copy(e, Rights::SIGNAL)
        };
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&[slot])),
            err(Error::BadSlot)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_slot_with_reserved_bits_is_reserved_bits() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    let reserved = DescriptorSlot {
        reserved: 1,
        ..DescriptorSlot::copy(e, Rights::SIGNAL)
    };
    let undefined_right = DescriptorSlot {
        rights: 1 << 6,
        ..DescriptorSlot::copy(e, Rights::SIGNAL)
    };
    for slot in [reserved, undefined_right] {
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&[slot])),
            err(Error::ReservedBits)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_slot_naming_no_descriptor_is_bad_descriptor() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for d in [0, 7, MAX_DESCRIPTORS + 1] {
        let slots = [DescriptorSlot::copy(Descriptor(d), Rights::NONE)];
        assert_eq!(
            f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
            err(Error::BadDescriptor)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn slots_are_checked_again_at_delivery() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let helper = f.w.thread_create(c);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::moving(e, Rights::EVENT)];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    // Another thread of the caller closes the descriptor before delivery.
    assert_eq!(f.w.close(helper, e), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        None,
        "the bad call is not delivered"
    );
    assert_eq!(f.w.resume(c), err(Error::BadDescriptor));
    assert_eq!(f.w.open_descriptors(f.sp()), 1);
    f.w.assert_invariants();
}

/// Fills `t`'s process table with events up to MAX_DESCRIPTORS.
fn fill_table(w: &mut World, t: ThreadId) {
    let p = w.process_of(t);
    while w.open_descriptors(p) < MAX_DESCRIPTORS as usize {
        w.event_create(t);
    }
    assert_eq!(
        w.kcall(t, KernelFunction::EventCreate, Descriptor::NULL, &[]),
        TrapArgs::error(Error::TableFull)
    );
}

#[test]
fn a_full_receiver_table_is_table_full_for_a_sender_meeting_a_waiting_receiver() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    fill_table(&mut f.w, s);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::moving(e, Rights::EVENT)];
    assert_eq!(send_slots(&mut f, &slots), err(Error::TableFull));
    assert_eq!(f.w.reference(cp, e).map(|r| r.rights), Some(Rights::EVENT));
    assert_eq!(f.w.open_descriptors(cp), 2);
    // The receiver still waits and takes a message without descriptors.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"plain", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 5, 0));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn a_full_receiver_table_is_table_full_for_a_queued_sender() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    fill_table(&mut f.w, s);
    let e = f.w.event_create(c);
    let slots = [DescriptorSlot::copy(e, Rights::SIGNAL)];
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 128).slots(&slots)),
        None
    );
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.resume(c), err(Error::TableFull));
    assert_eq!(f.w.reference(cp, e).map(|r| r.rights), Some(Rights::EVENT));
    f.w.assert_invariants();
}

#[test]
fn descriptors_travel_through_three_processes() {
    // A calls B's door, B calls C's door; an event created by A ends in C.
    let mut w = World::new();
    let init = w.init_thread;
    let (b_owner, b_client) = w.door_create(init, false);
    let (c_owner, c_client) = w.door_create(init, false);
    let b = w.spawn_ok(
        b"server",
        &[
            DescriptorSlot::moving(b_owner, Rights::DOOR_OWNER),
            DescriptorSlot::moving(c_client, Rights::DOOR_CLIENT),
        ],
    );
    let c = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(c_owner, Rights::DOOR_OWNER)],
    );
    let a = w.spawn_ok(
        b"client",
        &[DescriptorSlot::moving(b_client, Rights::DOOR_CLIENT)],
    );
    let event = w.event_create(a.thread);
    let object = w.object_of(a.process, event);

    assert_eq!(w.receive(b.thread, Descriptor(1), RBUF, 512), None);
    let slots = [DescriptorSlot::moving(event, Rights::EVENT)];
    assert_eq!(
        w.send(
            a.thread,
            USER_FN,
            Descriptor(1),
            msg(SBUF, b"", 64).slots(&slots)
        ),
        None
    );
    assert_eq!(w.resume(b.thread), received(USER_FN, 0, 64, 0, 1));
    let in_b = Descriptor(w.slot_at(b.process, RBUF).descriptor);
    assert_eq!(in_b, Descriptor(3));
    assert_eq!(
        w.reply(b.thread, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(w.resume(a.thread), replied(0, 0, 0, 0));
    assert_eq!(w.open_descriptors(a.process), 1);

    assert_eq!(w.receive(c.thread, Descriptor(1), RBUF, 512), None);
    let slots = [DescriptorSlot::copy(
        in_b,
        Rights::WAIT.union(Rights::TRANSFER),
    )];
    assert_eq!(
        w.send(
            b.thread,
            USER_FN,
            Descriptor(2),
            msg(SBUF, b"", 64).slots(&slots)
        ),
        None
    );
    assert_eq!(w.resume(c.thread), received(USER_FN, 0, 64, 0, 1));
    let in_c = Descriptor(w.slot_at(c.process, RBUF).descriptor);
    assert_eq!(in_c, Descriptor(2));
    assert_eq!(w.object_of(b.process, in_b), object);
    assert_eq!(w.object_of(c.process, in_c), object);
    assert_eq!(w.k.objects.get(object).map(|o| o.references), Some(2));
    assert_eq!(
        w.reply(c.thread, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(w.resume(b.thread), replied(0, 0, 0, 0));

    // The same event: B signals, C consumes.
    let signal = w.kcall(b.thread, KernelFunction::EventSignal, in_b, &[]);
    assert_eq!(Some(signal), kernel_ok(0, 0, 0));
    let wait = w.kcall(c.thread, KernelFunction::EventWait, in_c, &[]);
    assert_eq!(Some(wait), kernel_ok(0, 0, 0));
    // C was given WAIT only.
    assert_eq!(
        w.kcall(c.thread, KernelFunction::EventSignal, in_c, &[]),
        TrapArgs::error(Error::MissingRight)
    );
    w.assert_invariants();
}

// ----- 12. buffers -----

#[test]
fn inaccessible_buffers_are_bad_buffer() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let bad = [
        (UNMAPPED, 64),
        (0, 64),
        (8, 16),
        (KERNEL_HALF, 64),
        (USER_END - 16, 64),
        (u64::MAX - 8, 64),
        (IMAGE, 64),            // read-only: the reply must land there
        (DATA_END - 16, 64),    // crosses into an unmapped page
        (STACK_BOTTOM - 8, 16), // just below the stack
    ];
    for (buf, total) in bad {
        let send = TrapArgs::send(Function(USER_FN), REF, buf, sizes(total, 0, 0));
        assert_eq!(f.w.trap(c, send), err(Error::BadBuffer), "SEND {buf:#x}");
        let kernel = TrapArgs::send(
            KernelFunction::Counters.function(),
            Descriptor::NULL,
            buf,
            sizes(total, 0, 0),
        );
        assert_eq!(
            f.w.trap(c, kernel),
            err(Error::BadBuffer),
            "COUNTERS {buf:#x}"
        );
        assert_eq!(
            f.w.receive(s, OWNER, buf, total),
            err(Error::BadBuffer),
            "RECEIVE {buf:#x}"
        );
    }
    assert!(f.w.runnable(c) && f.w.runnable(s));
    f.w.assert_invariants();
}

#[test]
fn a_reply_buffer_must_be_readable_but_may_be_read_only() {
    let mut f = fixture(false, 1);
    let (s, c, sp) = (f.s(), f.c(0), f.sp());
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    for buf in [UNMAPPED, 0, KERNEL_HALF, DATA_END - 8] {
        assert_eq!(
            f.w.reply(s, 0, msg(buf, &[], 16)),
            err(Error::BadBuffer),
            "{buf:#x}"
        );
    }
    // The image page is read-only and holds the program's name.
    assert_eq!(f.w.peek(sp, IMAGE, 6), b"server");
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, IMAGE, sizes(8, 6, 0), false)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0x7672_6573, 0, 6, 0));
    assert_eq!(f.w.peek(f.cp(0), SBUF, 6), b"server");
    f.w.assert_invariants();
}

#[test]
fn a_message_without_data_needs_no_buffer() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, 0, 0), None);
    let empty = TrapArgs::send(Function(USER_FN), REF, 0, sizes(0, 0, 0));
    assert_eq!(f.w.trap(c, empty), None);
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::received(Function(USER_FN), 0, 0, sizes(0, 0, 0)))
    );
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, 0, sizes(0, 0, 0), false)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    // A null buffer cannot take a message with data.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"abc", 8)), None);
    assert_eq!(
        f.w.receive(s, OWNER, 0, 0),
        Some(TrapArgs::receive_too_small(sizes(8, 3, 0)))
    );
    f.w.assert_invariants();
}

// ----- 13. sizes and reserved bits -----

#[test]
fn sizes_that_do_not_fit_the_total_are_bad_sizes() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    // (total, data, slots): data (+ padding + slots, when there are slots) > total.
    for (total, data, count) in [
        (16, 20, 0),
        (3, 4, 0),
        (47, 13, 2),
        (16, 1, 1),
        (0, 1, 0),
        (15, 0, 1),
    ] {
        let args = TrapArgs::send(Function(USER_FN), REF, SBUF, sizes(total, data, count));
        assert_eq!(
            f.w.trap(c, args),
            err(Error::BadSizes),
            "{total}/{data}/{count}"
        );
        let kernel = TrapArgs::send(
            KernelFunction::Counters.function(),
            Descriptor::NULL,
            KBUF,
            sizes(total, data, count),
        );
        assert_eq!(
            f.w.trap(c, kernel),
            err(Error::BadSizes),
            "kernel {total}/{data}/{count}"
        );
    }
    // RECEIVE takes a total only.
    let receive = TrapArgs::receive(OWNER, RBUF, 64);
    for arg3 in [receive.arg3 | 1, receive.arg3 | 1 << 8] {
        assert_eq!(
            f.w.trap(s, TrapArgs { arg3, ..receive }),
            err(Error::BadSizes)
        );
    }
    // REPLY's sizes follow the same rule.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let reply = TrapArgs::reply(0, RBUF, sizes(8, 9, 0), false);
    assert_eq!(f.w.trap(s, reply), err(Error::BadSizes));
    let reply = TrapArgs::reply(0, RBUF, sizes(8, 9, 0), true);
    assert_eq!(f.w.trap(s, reply), err(Error::BadSizes));
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    f.w.assert_invariants();
}

#[test]
fn reserved_bits_in_the_registers_are_reserved_bits() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let send = TrapArgs::send(Function(USER_FN), REF, SBUF, sizes(64, 0, 0));
    let kernel = TrapArgs::send(
        KernelFunction::Counters.function(),
        Descriptor::NULL,
        KBUF,
        sizes(64, 0, 0),
    );
    for base in [send, kernel] {
        for bad in [
            TrapArgs {
                arg0: base.arg0 | 1 << 32,
                ..base
            },
            TrapArgs {
                arg0: u64::MAX,
                ..base
            },
            TrapArgs {
                arg1: base.arg1 | 1 << 32,
                ..base
            },
            TrapArgs {
                arg1: base.arg1 | 1 << 63,
                ..base
            },
            TrapArgs {
                arg3: base.arg3 | 1 << 32,
                ..base
            },
            TrapArgs {
                arg3: base.arg3 | 1 << 63,
                ..base
            },
        ] {
            assert_eq!(f.w.trap(c, bad), err(Error::ReservedBits), "{bad:x?}");
        }
    }
    let receive = TrapArgs::receive(OWNER, RBUF, 64);
    for bad in [
        TrapArgs {
            arg0: receive.arg0 | 1 << 40,
            ..receive
        },
        TrapArgs {
            arg1: receive.arg1 | 1 << 32,
            ..receive
        },
        TrapArgs {
            arg3: receive.arg3 | 1 << 32,
            ..receive
        },
    ] {
        assert_eq!(f.w.trap(s, bad), err(Error::ReservedBits), "{bad:x?}");
    }
    // REPLY: arg1 is a full 64-bit cookie, arg3's upper half is reserved.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let reply = TrapArgs::reply(u64::MAX, RBUF, sizes(8, 0, 0), false);
    for bad in [
        TrapArgs {
            arg3: reply.arg3 | 1 << 32,
            ..reply
        },
        TrapArgs {
            arg0: reply.arg0 | 1 << 32,
            ..reply
        },
    ] {
        assert_eq!(f.w.trap(s, bad), err(Error::ReservedBits), "{bad:x?}");
    }
    assert_eq!(f.w.trap(s, reply), Some(TrapArgs::default()));
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    assert_eq!(
        f.w.reference(f.cp(0), REF).map(|r| r.cookie),
        Some(u64::MAX)
    );
    f.w.assert_invariants();
}

// ----- 14. kernel functions -----

#[test]
fn close_removes_the_descriptor_and_frees_the_last_reference() {
    let mut w = World::new();
    let t = w.init_thread;
    let objects = w.k.counters().objects;
    let e = w.event_create(t);
    assert_eq!(w.k.counters().objects, objects + 1);
    let request = DescriptorRequest {
        descriptor: e.0,
        rights: 1,
    };
    assert_eq!(
        w.kcall(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            request.as_bytes()
        ),
        TrapArgs::error(Error::ReservedBits)
    );
    assert_eq!(
        w.kcall(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            &e.0.to_le_bytes()
        ),
        TrapArgs::error(Error::BadSizes)
    );
    assert_eq!(Some(w.close(t, e)), kernel_ok(0, 0, 0));
    assert_eq!(w.k.counters().objects, objects);
    assert_eq!(w.info(t, e), Err(Error::BadDescriptor));
    assert_eq!(w.close(t, e), TrapArgs::error(Error::BadDescriptor));
    assert_eq!(
        w.close(t, Descriptor::NULL),
        TrapArgs::error(Error::BadDescriptor)
    );
    // A kernel function takes no descriptor slots.
    let e = w.event_create(t);
    let request = DescriptorRequest {
        descriptor: e.0,
        rights: 0,
    };
    let slots = [DescriptorSlot::copy(e, Rights::SIGNAL)];
    assert_eq!(
        w.kcall_msg(
            t,
            KernelFunction::Close,
            Descriptor::NULL,
            msg(KBUF, request.as_bytes(), KTOTAL).slots(&slots)
        ),
        TrapArgs::error(Error::BadSizes)
    );
    assert!(w.reference(w.init, e).is_some());
    // CLOSE takes the NULL target.
    assert_eq!(
        w.kcall(t, KernelFunction::Close, e, request.as_bytes()),
        TrapArgs::error(Error::FunctionOutOfRange)
    );
    w.assert_invariants();
}

#[test]
fn duplicate_makes_a_reference_with_equal_or_fewer_rights() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let e = f.w.event_create(c);
    let Ok(same) = f.w.duplicate(c, e, Rights::EVENT) else {
        panic!("DUPLICATE failed")
    };
    let Ok(signal) = f.w.duplicate(c, e, Rights::SIGNAL) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!((same, signal), (Descriptor(3), Descriptor(4)));
    assert_eq!(f.w.object_of(cp, signal), f.w.object_of(cp, e));
    assert_eq!(
        f.w.info(c, signal),
        Ok((ObjectKind::Event as u32, Rights::SIGNAL.0))
    );
    assert_eq!(
        f.w.duplicate(c, signal, Rights::SIGNAL),
        Err(Error::MissingRight)
    );
    assert_eq!(
        f.w.duplicate(c, e, Rights::SEND),
        Err(Error::RightsExceeded)
    );
    assert_eq!(
        f.w.duplicate(c, e, Rights(1 << 7)),
        Err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.duplicate(c, Descriptor(40), Rights::NONE),
        Err(Error::BadDescriptor)
    );
    // The owner reference carries no DUPLICATE right: a door has one owner.
    assert_eq!(
        f.w.duplicate(s, OWNER, Rights::TRANSFER),
        Err(Error::MissingRight)
    );
    // The copy works with the rights it was given, and only those.
    assert_eq!(
        Some(f.w.kcall(c, KernelFunction::EventSignal, signal, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.kcall(c, KernelFunction::EventWait, signal, &[]),
        TrapArgs::error(Error::MissingRight)
    );
    f.w.assert_invariants();
}

#[test]
fn descriptor_info_reports_kind_and_rights() {
    let mut w = World::new();
    let t = w.init_thread;
    let (owner, client) = w.door_create(t, false);
    let (system_owner, _) = w.door_create(t, true);
    let e = w.event_create(t);
    let child = w.spawn_ok(b"worker", &[]);
    let request = ThreadCreateRequest {
        entry: IMAGE,
        stack_top: USER_STACK_TOP - 0x4000,
        argument: 0,
        priority: 1,
        reserved: 0,
    };
    let reply = w.kcall_ok(
        t,
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    let thread_handle = Descriptor(reply.slots[0].descriptor);
    let handle_rights = Rights::TRANSFER.union(Rights::DUPLICATE).0;
    assert_eq!(
        w.info(t, owner),
        Ok((ObjectKind::UserDoor as u32, Rights::DOOR_OWNER.0))
    );
    assert_eq!(
        w.info(t, client),
        Ok((ObjectKind::UserDoor as u32, Rights::DOOR_CLIENT.0))
    );
    assert_eq!(
        w.info(t, system_owner),
        Ok((ObjectKind::SystemDoor as u32, Rights::DOOR_OWNER.0))
    );
    assert_eq!(
        w.info(t, e),
        Ok((ObjectKind::Event as u32, Rights::EVENT.0))
    );
    assert_eq!(
        w.info(t, child.handle),
        Ok((ObjectKind::Process as u32, handle_rights))
    );
    assert_eq!(
        w.info(t, thread_handle),
        Ok((ObjectKind::Thread as u32, handle_rights))
    );
    let request = DescriptorRequest {
        descriptor: e.0,
        rights: 0,
    };
    assert_eq!(
        Some(w.kcall(
            t,
            KernelFunction::DescriptorInfo,
            Descriptor::NULL,
            request.as_bytes()
        )),
        kernel_ok(0, 8, 0)
    );
    let request = DescriptorRequest {
        descriptor: e.0,
        rights: 2,
    };
    assert_eq!(
        w.kcall(
            t,
            KernelFunction::DescriptorInfo,
            Descriptor::NULL,
            request.as_bytes()
        ),
        TrapArgs::error(Error::ReservedBits)
    );
    w.assert_invariants();
}

#[test]
fn events_count_signals_and_wake_a_waiter() {
    let mut w = World::new();
    let t = w.init_thread;
    let waiter = w.thread_create(t);
    let e = w.event_create(t);
    let object = w.object_of(w.init, e);
    let count = |w: &World| match w.k.objects.get(object).map(|o| &o.body) {
        Some(ObjectBody::Event(e)) => e.count,
        other => panic!("not an event: {other:?}"),
    };
    for _ in 0..2 {
        assert_eq!(
            Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
            kernel_ok(0, 0, 0)
        );
    }
    assert_eq!(count(&w), 2);
    // msgRetVal of EVENT_WAIT is the count left.
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventWait, e, &[])),
        kernel_ok(1, 0, 0)
    );
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventWait, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(count(&w), 0);
    let wait_buf = KBUF + 0x800;
    w.fill(w.init, wait_buf, 16, 0xff);
    assert_eq!(
        w.send(
            waiter,
            KernelFunction::EventWait as i32,
            e,
            msg(wait_buf, &[], 64)
        ),
        None
    );
    assert!(matches!(w.state(waiter), ThreadState::Waiting { .. }));
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(waiter), kernel_ok(0, 0, 0));
    assert_eq!(w.state(waiter), ThreadState::Ready);
    assert_eq!(
        w.peek(w.init, wait_buf, 8),
        vec![0; 8],
        "the reply landed in the waiter's buffer"
    );
    assert_eq!(count(&w), 0, "the signal went to the waiter");
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(count(&w), 1);
    w.assert_invariants();
}

#[test]
fn event_functions_check_target_data_and_rights() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let e = f.w.event_create(c);
    for kf in [KernelFunction::EventSignal, KernelFunction::EventWait] {
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, &[]),
            TrapArgs::error(Error::FunctionOutOfRange)
        );
        assert_eq!(
            f.w.kcall(c, kf, REF, &[]),
            TrapArgs::error(Error::WrongObjectType)
        );
        assert_eq!(
            f.w.kcall(c, kf, Descriptor(30), &[]),
            TrapArgs::error(Error::BadDescriptor)
        );
        assert_eq!(f.w.kcall(c, kf, e, b"x"), TrapArgs::error(Error::BadSizes));
    }
    assert_eq!(
        f.w.kcall(c, KernelFunction::EventCreate, Descriptor::NULL, b"x"),
        TrapArgs::error(Error::BadSizes)
    );
    f.w.assert_invariants();
}

fn map_request(address: u64, length: u64, protection: u32) -> MapRequest {
    MapRequest {
        address,
        length,
        protection,
        reserved: 0,
    }
}

#[test]
fn map_anonymous_unmap_and_protect_check_their_arguments() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let rw = protection::READ | protection::WRITE;
    let charged = f.w.charged(cp);
    let reply = f.w.kcall_ok(
        c,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        map_request(0, 2 * PAGE, rw).as_bytes(),
    );
    assert_eq!(reply.regs, kernel_ok(0, 8, 0).unwrap_or_default());
    let Ok(mapped) = MapReply::read_from_bytes(&reply.payload) else {
        panic!("MAP_ANONYMOUS payload {:?}", reply.payload)
    };
    assert_eq!(mapped.address, USER_MAP_BASE);
    assert_eq!(f.w.charged(cp), charged + 2 * PAGE);
    // The new memory works as a message buffer.
    let at = mapped.address;
    assert_eq!(
        f.w.send(
            c,
            KernelFunction::Counters as i32,
            Descriptor::NULL,
            msg(at + PAGE, &[], 64)
        ),
        kernel_ok(0, 48, 0)
    );
    let fixed = 0x0200_0000;
    let reply = f.w.kcall_ok(
        c,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        map_request(fixed, PAGE, rw).as_bytes(),
    );
    assert_eq!(
        MapReply::read_from_bytes(&reply.payload)
            .ok()
            .map(|r| r.address),
        Some(fixed)
    );

    let map = |f: &mut Fixture, kf: KernelFunction, r: MapRequest| {
        f.w.kcall(c, kf, Descriptor::NULL, r.as_bytes())
    };
    for kf in [
        KernelFunction::MapAnonymous,
        KernelFunction::Unmap,
        KernelFunction::Protect,
    ] {
        let p = if kf == KernelFunction::Unmap {
            0
        } else {
            protection::READ
        };
        let cases = [
            (map_request(at + 1, PAGE, p), Error::InvalidArgument),
            (map_request(at, 0, p), Error::InvalidArgument),
            (map_request(at, 100, p), Error::InvalidArgument),
            (
                map_request(USER_END - PAGE, 2 * PAGE, p),
                Error::BadAddressRange,
            ),
            (map_request(!(PAGE - 1), PAGE, p), Error::BadAddressRange),
            (map_request(at, PAGE, 1 << 3), Error::ReservedBits),
            (
                MapRequest {
                    reserved: 1,
                    ..map_request(at, PAGE, p)
                },
                Error::ReservedBits,
            ),
        ];
        for (request, error) in cases {
            assert_eq!(
                map(&mut f, kf, request),
                TrapArgs::error(error),
                "{kf:?} {request:x?}"
            );
        }
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, &[0; 8]),
            TrapArgs::error(Error::BadSizes),
            "{kf:?} short request"
        );
    }
    assert_eq!(
        map(
            &mut f,
            KernelFunction::Unmap,
            map_request(at, PAGE, protection::READ)
        ),
        TrapArgs::error(Error::ReservedBits),
        "UNMAP takes no protection"
    );
    // Mapped memory is always readable: no protection without READ.
    for kf in [KernelFunction::MapAnonymous, KernelFunction::Protect] {
        for bits in [0, protection::WRITE, protection::EXECUTE] {
            let before = f.w.charged(cp);
            assert_eq!(
                map(&mut f, kf, map_request(at, PAGE, bits)),
                TrapArgs::error(Error::InvalidArgument),
                "{kf:?} with protection {bits:#x}"
            );
            assert_eq!(f.w.charged(cp), before);
        }
    }
    // Mapping over existing memory fails and charges nothing.
    let before = f.w.charged(cp);
    assert_eq!(
        map(
            &mut f,
            KernelFunction::MapAnonymous,
            map_request(DATA, PAGE, rw)
        ),
        TrapArgs::error(Error::BadAddressRange)
    );
    assert_eq!(f.w.charged(cp), before);
    // PROTECT read-only: the kernel can no longer reply into it.
    assert_eq!(
        Some(map(
            &mut f,
            KernelFunction::Protect,
            map_request(at, 2 * PAGE, protection::READ)
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.m.page_protection(f.w.space(cp), at),
        Some(protection::READ)
    );
    assert_eq!(
        f.w.send(
            c,
            KernelFunction::Counters as i32,
            Descriptor::NULL,
            msg(at, &[], 64)
        ),
        err(Error::BadBuffer)
    );
    assert_eq!(
        map(
            &mut f,
            KernelFunction::Protect,
            map_request(UNMAPPED, PAGE, protection::READ)
        ),
        TrapArgs::error(Error::BadAddressRange)
    );
    // UNMAP returns the charge.
    assert_eq!(
        Some(map(
            &mut f,
            KernelFunction::Unmap,
            map_request(at, 2 * PAGE, 0)
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(f.w.charged(cp), before - 2 * PAGE);
    assert_eq!(
        f.w.send(
            c,
            KernelFunction::Counters as i32,
            Descriptor::NULL,
            msg(at, &[], 64)
        ),
        err(Error::BadBuffer)
    );
    f.w.assert_invariants();
}

#[test]
fn memory_past_the_process_limit_is_out_of_memory() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let before = f.w.charged(cp);
    let request = map_request(0, crate::lifecycle::DEFAULT_MEMORY_LIMIT, protection::READ);
    assert_eq!(
        f.w.kcall(
            c,
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            request.as_bytes()
        ),
        TrapArgs::error(Error::OutOfMemory)
    );
    assert_eq!(f.w.charged(cp), before);
    assert_eq!(f.w.m.mapped_bytes(f.w.space(cp)), PROGRAM_BYTES);
    f.w.assert_invariants();
}

#[test]
fn capability_functions_need_the_capability() {
    // The client's descriptor 1 is its door reference, not a capability;
    // sending to NULL is sending to no capability at all.
    let mut f = fixture(false, 1);
    let c = f.c(0);
    let door = DoorCreateRequest {
        system: 0,
        security_type: 0,
    };
    assert_eq!(
        f.w.kcall(c, KernelFunction::DoorCreate, CAP_PROCESS, door.as_bytes()),
        TrapArgs::error(Error::WrongObjectType)
    );
    let mut spawn = SpawnRequest {
        name_length: 6,
        argument_length: 0,
    }
    .as_bytes()
    .to_vec();
    spawn.extend_from_slice(b"client");
    assert_eq!(
        f.w.kcall(c, KernelFunction::Spawn, CAP_PROCESS, &spawn),
        TrapArgs::error(Error::WrongObjectType)
    );
    let exit = ExitRequest {
        code: 0,
        reserved: 0,
    };
    assert_eq!(
        f.w.kcall(c, KernelFunction::DebugExit, CAP_MACHINE, exit.as_bytes()),
        TrapArgs::error(Error::BadDescriptor)
    );
    let null =
        f.w.kcall(c, KernelFunction::DebugExit, Descriptor::NULL, &[0; 8]);
    assert_eq!(null, TrapArgs::error(Error::FunctionOutOfRange));
    assert!(f.w.m.verdicts.is_empty());
    // The capability holder may.
    let t = f.w.init_thread;
    assert_eq!(
        Some(f.w.kcall(t, KernelFunction::DebugExit, CAP_MACHINE, exit.as_bytes())),
        kernel_ok(0, 0, 0)
    );
    let fail = ExitRequest {
        code: 3,
        reserved: 0,
    };
    assert_eq!(
        Some(f.w.kcall(t, KernelFunction::DebugExit, CAP_MACHINE, fail.as_bytes())),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(f.w.m.verdicts, vec![true, false]);
    f.w.m.debug_exit_refused = true;
    assert_eq!(
        f.w.kcall(t, KernelFunction::DebugExit, CAP_MACHINE, exit.as_bytes()),
        TrapArgs::error(Error::NotPermitted)
    );
    let bad_kind = DoorCreateRequest {
        system: 2,
        security_type: 0,
    };
    assert_eq!(
        f.w.kcall(
            t,
            KernelFunction::DoorCreate,
            CAP_PROCESS,
            bad_kind.as_bytes()
        ),
        TrapArgs::error(Error::InvalidArgument)
    );
    f.w.assert_invariants();
}

#[test]
fn counters_report_what_the_kernel_holds() {
    let mut f = fixture(false, 2);
    let c = f.c(0);
    let expected = KernelCounters {
        free_frames: FREE_FRAMES,
        ..f.w.k.counters()
    };
    assert_eq!(expected.processes, 4);
    assert_eq!(expected.threads, 4);
    let reply =
        f.w.kcall_ok(c, KernelFunction::Counters, Descriptor::NULL, &[]);
    assert_eq!(reply.regs, kernel_ok(0, 48, 0).unwrap_or_default());
    assert_eq!(
        KernelCounters::read_from_bytes(&reply.payload).ok(),
        Some(expected)
    );
    assert_eq!(
        f.w.kcall(c, KernelFunction::Counters, Descriptor::NULL, b"x"),
        TrapArgs::error(Error::BadSizes)
    );
    f.w.assert_invariants();
}

#[test]
fn a_kernel_reply_that_does_not_fit_the_buffer_is_bad_sizes() {
    let mut w = World::new();
    let t = w.init_thread;
    let e = w.event_create(t);
    let open = w.open_descriptors(w.init);
    let objects = w.k.counters().objects;
    let dup = DescriptorRequest {
        descriptor: e.0,
        rights: Rights::SIGNAL.0,
    };
    let door = DoorCreateRequest {
        system: 0,
        security_type: 0,
    };
    let info = DescriptorRequest {
        descriptor: e.0,
        rights: 0,
    };
    let cases: [(KernelFunction, &[u8], u16); 6] = [
        (KernelFunction::Duplicate, dup.as_bytes(), 23),
        (KernelFunction::DoorCreate, door.as_bytes(), 39),
        (KernelFunction::DescriptorInfo, info.as_bytes(), 15),
        (KernelFunction::Counters, &[], 55),
        (KernelFunction::EventCreate, &[], 23),
        (KernelFunction::Yield, &[], 7),
    ];
    for (kf, data, total) in cases {
        let target = if kf == KernelFunction::DoorCreate {
            CAP_PROCESS
        } else {
            Descriptor::NULL
        };
        assert_eq!(
            w.kcall_msg(t, kf, target, msg(KBUF, data, total)),
            TrapArgs::error(Error::BadSizes),
            "{kf:?}"
        );
    }
    assert_eq!(w.open_descriptors(w.init), open);
    assert_eq!(w.k.counters().objects, objects);
    // One byte more and they fit.
    for (kf, data, total) in cases {
        let target = if kf == KernelFunction::DoorCreate {
            CAP_PROCESS
        } else {
            Descriptor::NULL
        };
        let regs = w.kcall_msg(t, kf, target, msg(KBUF, data, total + 1));
        assert_eq!(regs.kernel_error(), None, "{kf:?}");
    }
    w.assert_invariants();
}

#[test]
fn thread_create_starts_a_ready_thread_and_thread_exit_ends_it() {
    let mut f = fixture(false, 1);
    let (c, cp) = (f.c(0), f.cp(0));
    let before = f.w.k.counters();
    let charged = f.w.charged(cp);
    let request = ThreadCreateRequest {
        entry: IMAGE + 0x10,
        stack_top: USER_STACK_TOP - 0x1000,
        argument: 77,
        priority: 16,
        reserved: 0,
    };
    let reply = f.w.kcall_ok(
        c,
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(reply.regs, kernel_ok(0, 0, 1).unwrap_or_default());
    let handle = Descriptor(reply.slots[0].descriptor);
    let Some(ObjectBody::Thread(t2)) =
        f.w.k
            .objects
            .get(f.w.object_of(cp, handle))
            .map(|o| &o.body)
    else {
        panic!("not a thread handle")
    };
    let t2 = *t2;
    assert_eq!(f.w.state(t2), ThreadState::Ready);
    assert_eq!(f.w.process_of(t2), cp);
    assert_eq!(
        f.w.m.contexts.get(&t2).map(|(_, start)| *start),
        Some(UserStart {
            entry: IMAGE + 0x10,
            stack_pointer: USER_STACK_TOP - 0x1000,
            arg0: 77,
            arg1: 0,
            arg2: 0
        })
    );
    assert_eq!(f.w.k.counters().threads, before.threads + 1);
    assert_eq!(
        f.w.charged(cp),
        charged + THREAD_COST + OBJECT_COST + DESCRIPTOR_COST
    );
    let bad = [
        ThreadCreateRequest {
            priority: 17,
            ..request
        },
        ThreadCreateRequest {
            priority: 99,
            ..request
        },
        ThreadCreateRequest {
            stack_top: USER_STACK_TOP - 8,
            ..request
        },
        ThreadCreateRequest {
            entry: USER_END,
            ..request
        },
        ThreadCreateRequest {
            stack_top: KERNEL_HALF,
            ..request
        },
    ];
    for r in bad {
        assert_eq!(
            f.w.kcall(
                c,
                KernelFunction::ThreadCreate,
                Descriptor::NULL,
                r.as_bytes()
            ),
            TrapArgs::error(Error::InvalidArgument),
            "{r:x?}"
        );
    }
    let reserved = ThreadCreateRequest {
        reserved: 1,
        ..request
    };
    assert_eq!(
        f.w.kcall(
            c,
            KernelFunction::ThreadCreate,
            Descriptor::NULL,
            reserved.as_bytes()
        ),
        TrapArgs::error(Error::ReservedBits)
    );
    // The new thread runs and exits; the process lives on.
    f.w.exit_thread(t2, 5);
    assert!(!f.w.m.contexts.contains_key(&t2));
    assert!(f.w.process_alive(cp));
    assert_eq!(
        f.w.charged(cp),
        charged + OBJECT_COST + DESCRIPTOR_COST,
        "the handle remains"
    );
    assert!(f.w.k.take_exited().is_empty());
    // The last thread's exit ends the process with its code.
    f.w.exit_thread(c, 6);
    assert!(!f.w.process_alive(cp));
    assert_eq!(f.w.k.take_exited(), vec![(cp, 6)]);
    f.w.assert_invariants();
}

#[test]
fn exit_requests_check_their_data() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for kf in [KernelFunction::ThreadExit, KernelFunction::ProcessExit] {
        let reserved = ExitRequest {
            code: 0,
            reserved: 1,
        };
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, reserved.as_bytes()),
            TrapArgs::error(Error::ReservedBits)
        );
        assert_eq!(
            f.w.kcall(c, kf, Descriptor::NULL, &[0; 4]),
            TrapArgs::error(Error::BadSizes)
        );
    }
    assert!(f.w.alive(c));
    f.w.assert_invariants();
}

#[test]
fn yield_returns_and_requeues_the_caller() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(
        f.w.trap(
            c,
            TrapArgs::send(
                KernelFunction::Yield.function(),
                Descriptor::NULL,
                KBUF,
                sizes(64, 0, 0)
            )
        ),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.kcall(c, KernelFunction::Yield, Descriptor::NULL, b"x"),
        TrapArgs::error(Error::BadSizes)
    );
    f.w.assert_invariants();
}

#[test]
fn debug_write_reaches_the_console() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    assert_eq!(
        Some(f.w.kcall(
            c,
            KernelFunction::DebugWrite,
            Descriptor::NULL,
            b"hello, hinge"
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(f.w.m.console, b"hello, hinge");
    f.w.assert_invariants();
}

#[test]
fn spawn_passes_arguments_and_descriptors_and_checks_its_request() {
    let mut w = World::new();
    let t = w.init_thread;
    let (owner, client) = w.door_create(t, false);
    let e = w.event_create(t);
    let child = match w.spawn(
        b"worker",
        b"hello",
        &[
            DescriptorSlot::moving(owner, Rights::DOOR_OWNER),
            DescriptorSlot::copy(e, Rights::SIGNAL),
        ],
    ) {
        Ok(child) => child,
        Err(e) => panic!("SPAWN: {e}"),
    };
    let Some((_, start)) = w.m.contexts.get(&child.thread).copied() else {
        panic!("no context for the child")
    };
    assert_eq!(start.entry, IMAGE);
    assert_eq!(
        (start.arg1, start.arg2),
        (5, 2),
        "argument length, descriptor count"
    );
    assert_eq!(w.peek(child.process, start.arg0, 5), b"hello");
    assert_eq!(
        w.reference(child.process, Descriptor(1)).map(|r| r.rights),
        Some(Rights::DOOR_OWNER)
    );
    assert_eq!(
        w.reference(child.process, Descriptor(2)).map(|r| r.rights),
        Some(Rights::SIGNAL)
    );
    // Moved: the number is free again, and the handle took it (lowest free).
    assert_eq!(child.handle, owner);
    assert!(w.reference(w.init, e).is_some(), "copied");
    let door = w.object_of(w.init, client);
    assert!(matches!(
        w.k.objects.get(door).map(|o| &o.body),
        Some(ObjectBody::Door(d)) if d.owner == Some(child.process)
    ));
    assert!(
        !(1..=64).any(|d| matches!(
            w.reference(child.process, Descriptor(d))
                .and_then(|r| w.k.objects.get(r.object))
                .map(|o| &o.body),
            Some(ObjectBody::Capability(_))
        )),
        "a spawned process holds no capability unless given one"
    );

    // An unknown program: nothing is created and nothing moves.
    let before = w.counters();
    let open = w.open_descriptors(w.init);
    assert_eq!(
        w.spawn(
            b"nonesuch",
            &[],
            &[DescriptorSlot::moving(e, Rights::EVENT)]
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(w.counters(), before);
    assert_eq!(w.open_descriptors(w.init), open);
    assert!(w.reference(w.init, e).is_some());
    assert!(
        w.k.take_exited().is_empty(),
        "a process that never started did not exit"
    );
    // Malformed requests.
    let spawn_data = |name_length: u32, argument_length: u32, tail: &[u8]| {
        let mut data = SpawnRequest {
            name_length,
            argument_length,
        }
        .as_bytes()
        .to_vec();
        data.extend_from_slice(tail);
        data
    };
    for data in [
        spawn_data(0, 0, &[]),
        spawn_data(6, 0, b"work"),
        spawn_data(6, 1, b"worker"),
        spawn_data(6, 0, b"worker!"),
        spawn_data(u32::MAX, u32::MAX, b"worker"),
        vec![6, 0, 0],
    ] {
        assert_eq!(
            w.kcall(t, KernelFunction::Spawn, CAP_PROCESS, &data),
            TrapArgs::error(Error::BadSizes),
            "{data:?}"
        );
    }
    let too_long = vec![b'a'; MAX_ARGUMENT_BYTES + 1];
    let mut data = spawn_data(6, too_long.len() as u32, b"worker");
    data.extend_from_slice(&too_long);
    let regs = w.kcall_msg(
        t,
        KernelFunction::Spawn,
        CAP_PROCESS,
        msg(DATA + 0x4000, &data, 2048),
    );
    assert_eq!(regs, TrapArgs::error(Error::InvalidArgument));
    assert_eq!(w.counters(), before);
    w.assert_invariants();
}

// ----- 15. no leaks -----

#[test]
fn a_churn_of_spawns_calls_and_exits_leaves_nothing_behind() {
    let mut w = World::new();
    let init = w.init_thread;
    let before = w.counters();
    let charged = w.charged(w.init);
    let open = w.open_descriptors(w.init);
    for round in 0..4 {
        let (owner, client) = w.door_create(init, round % 2 == 1);
        let function = if round % 2 == 1 { SYSTEM_FN } else { USER_FN };
        let server = w.spawn_ok(
            b"server",
            &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
        );
        let c1 = w.spawn_ok(
            b"client",
            &[DescriptorSlot::copy(client, Rights::DOOR_CLIENT)],
        );
        let last = if round % 2 == 0 {
            DescriptorSlot::copy(client, Rights::DOOR_CLIENT)
        } else {
            DescriptorSlot::moving(client, Rights::DOOR_CLIENT)
        };
        let c2 = w.spawn_ok(b"client", &[last]);
        // A call that carries an event to the server and one back.
        let e = w.event_create(c1.thread);
        assert_eq!(w.receive(server.thread, OWNER, RBUF, 512), None);
        let slots = [DescriptorSlot::moving(e, Rights::EVENT)];
        assert_eq!(
            w.send(
                c1.thread,
                function,
                REF,
                msg(SBUF, b"take", 64).slots(&slots)
            ),
            None
        );
        assert_eq!(w.resume(server.thread), received(function, 0, 64, 4, 1));
        let back = [DescriptorSlot::copy(Descriptor(2), Rights::WAIT)];
        assert_eq!(
            w.reply(server.thread, 9, msg(RBUF, b"back", 64).slots(&back)),
            Some(TrapArgs::default())
        );
        assert_eq!(w.resume(c1.thread), replied(0x6b63_6162, 0, 4, 1));
        // c1: a second thread blocked on the event, a third queued on the door.
        let waiter = w.thread_create(c1.thread);
        assert_eq!(
            w.send(
                waiter,
                KernelFunction::EventWait as i32,
                Descriptor(2),
                msg(KBUF + 0x800, &[], 64)
            ),
            None
        );
        let caller = w.thread_create(c1.thread);
        assert_eq!(
            w.send(caller, function, REF, msg(SBUF + 0x800, b"q", 64)),
            None
        );
        // The server takes c1's second call; c2's call queues behind it.
        assert_eq!(
            w.receive(server.thread, OWNER, RBUF, 512),
            received(function, 9, 64, 1, 0)
        );
        assert_eq!(w.resume(caller), None);
        let c2_helper = w.thread_create(c2.thread);
        assert_eq!(w.send(c2.thread, function, REF, msg(SBUF, b"q2", 64)), None);
        match round {
            0 => {
                w.exit_process(server.thread, 0);
                assert_eq!(w.resume(caller), err(Error::PeerDied));
                assert_eq!(w.resume(c2.thread), err(Error::PeerDied));
                w.exit_process(c1.thread, 0);
                w.exit_process(c2.thread, 0);
            }
            1 => {
                w.exit_process(c1.thread, 0);
                // c2's call is still queued: another thread ends its process.
                w.exit_process(c2_helper, 0);
                assert_eq!(
                    w.reply(server.thread, 0, msg(RBUF, &[], 0)),
                    err(Error::CallerGone)
                );
                let helper = w.thread_create(server.thread);
                assert_eq!(w.receive(helper, OWNER, RBUF + 0x800, 64), None);
                w.exit_process(server.thread, 0);
            }
            2 => {
                // The server closes its door with callers queued, then exits.
                assert_eq!(Some(w.close(server.thread, OWNER)), kernel_ok(0, 0, 0));
                assert_eq!(w.resume(c2.thread), err(Error::PeerDied));
                w.exit_process(c2.thread, 0);
                w.exit_process(server.thread, 0);
                assert_eq!(w.resume(caller), err(Error::PeerDied));
                w.exit_process(c1.thread, 0);
            }
            _ => {
                // Everything dies at once, in spawn order.
                w.exit_process(server.thread, 0);
                assert_eq!(w.resume(caller), err(Error::PeerDied));
                assert_eq!(w.resume(c2.thread), err(Error::PeerDied));
                let t = w.thread_create(c2.thread);
                w.exit_thread(c2.thread, 0);
                w.exit_process(t, 0);
                w.exit_process(c1.thread, 0);
            }
        }
        for child in [server, c1, c2] {
            assert_eq!(Some(w.close(init, child.handle)), kernel_ok(0, 0, 0));
        }
        if round % 2 == 0 {
            // The client reference was copied: init still holds it.
            assert_eq!(Some(w.close(init, client)), kernel_ok(0, 0, 0));
        }
        // Spawn failures leave nothing either.
        assert_eq!(w.spawn(b"nonesuch", b"x", &[]), Err(Error::InvalidArgument));
        let _ = w.k.take_exited();
        w.assert_invariants();
    }
    assert_eq!(w.counters(), before);
    assert_eq!(w.charged(w.init), charged);
    assert_eq!(w.open_descriptors(w.init), open);
}

#[test]
fn a_server_thread_exiting_with_a_held_message_fails_its_caller() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s2, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s2), received(USER_FN, 0, 64, 1, 0));
    f.w.exit_thread(s2, 0);
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    // The door itself lives on with the server's other thread.
    f.w.round_trip(c, REF, USER_FN, s, OWNER, 0);
    f.w.assert_invariants();
}

#[test]
fn a_fault_ends_the_whole_process_and_fails_its_callers() {
    // ABI.md §7: a CPU exception in user mode ends the whole process.
    let mut f = fixture(false, 2);
    let (s, c0, c1, sp) = (f.s(), f.c(0), f.c(1), f.sp());
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"a", 64)), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"b", 64)), None);
    assert_eq!(
        f.w.receive(s2, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 1, 0)
    );
    f.w.run(s);
    f.w.k.fault(&mut f.w.m);
    assert!(!f.w.process_alive(sp));
    assert_eq!(f.w.k.take_exited(), vec![(sp, u32::MAX)]);
    assert_eq!(f.w.resume(c0), err(Error::PeerDied));
    assert_eq!(f.w.resume(c1), err(Error::PeerDied));
    assert!(f.w.k.current().is_some(), "another thread runs");
    f.w.assert_invariants();
}

// ----- ABI.md: check order, REPLY_RECEIVE, scheduling, limits, procman -----

#[test]
fn send_checks_run_in_the_documented_order() {
    // ABI.md §4.1: each pair breaks two checks; the earlier one must win.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let e = f.w.event_create(c);
    let Ok(mute) = f.w.duplicate(c, REF, Rights::TRANSFER) else {
        panic!("DUPLICATE failed")
    };
    let bad_slot = [DescriptorSlot {
        mode: 2,
        ..DescriptorSlot::copy(e, Rights::SIGNAL)
    }];
    let send = |function: i32, target: Descriptor, buf: u64, s: MessageSizes| {
        TrapArgs::send(Function(function), target, buf, s)
    };
    let cases = [
        // 1 before 2
        (
            TrapArgs {
                arg1: 1 << 40,
                ..send(USER_FN, REF, SBUF, sizes(8, 9, 0))
            },
            Error::ReservedBits,
        ),
        // 2 before 3
        (send(-1, REF, SBUF, sizes(8, 9, 0)), Error::BadSizes),
        // 3 before 5
        (
            send(-1, Descriptor(50), SBUF, sizes(8, 0, 0)),
            Error::InvalidFunction,
        ),
        // 4 before 9
        (
            send(USER_FN, Descriptor::NULL, UNMAPPED, sizes(8, 0, 0)),
            Error::FunctionOutOfRange,
        ),
        // 5 before 9
        (
            send(USER_FN, Descriptor(50), UNMAPPED, sizes(8, 0, 0)),
            Error::BadDescriptor,
        ),
        // 6 before 7
        (
            send(SYSTEM_FN, e, SBUF, sizes(8, 0, 0)),
            Error::WrongObjectType,
        ),
        // 7 before 8
        (
            send(SYSTEM_FN, mute, SBUF, sizes(8, 0, 0)),
            Error::FunctionOutOfRange,
        ),
        // 8 before 9
        (
            send(USER_FN, mute, UNMAPPED, sizes(8, 0, 0)),
            Error::MissingRight,
        ),
    ];
    for (args, error) in cases {
        assert_eq!(f.w.trap(c, args), err(error), "{args:x?}");
    }
    // 9 before 10
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(IMAGE, b"d", 64).slots(&bad_slot)),
        err(Error::BadBuffer)
    );
    // 10 before 11
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 64).slots(&bad_slot)),
        err(Error::BadSlot)
    );
    assert_eq!(
        f.w.send(c, USER_FN, REF, msg(SBUF, b"d", 64)),
        err(Error::PeerDied)
    );
    f.w.assert_invariants();
}

#[test]
fn receive_checks_run_in_the_documented_order() {
    // ABI.md §4.2: reserved bits, descriptor, door, RECEIVE right, buffer.
    let mut f = fixture(false, 1);
    let s = f.s();
    let e = f.w.event_create(s);
    let receive = TrapArgs::receive(Descriptor(50), UNMAPPED, 64);
    assert_eq!(
        f.w.trap(
            s,
            TrapArgs {
                arg1: 1 << 33,
                ..receive
            }
        ),
        err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.receive(s, Descriptor(50), UNMAPPED, 64),
        err(Error::BadDescriptor)
    );
    assert_eq!(f.w.receive(s, e, UNMAPPED, 64), err(Error::WrongObjectType));
    let c = f.c(0);
    assert_eq!(f.w.receive(c, REF, UNMAPPED, 64), err(Error::NotOwner));
    assert_eq!(f.w.receive(s, OWNER, UNMAPPED, 64), err(Error::BadBuffer));
    f.w.assert_invariants();
}

#[test]
fn reply_checks_run_in_the_documented_order() {
    // ABI.md §4.3: reserved bits, sizes, a held message, its caller, the
    // buffer, the caller's total, the slots, the caller's table.
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let reply = TrapArgs::reply(0, UNMAPPED, sizes(64, 0, 0), false);
    assert_eq!(
        f.w.trap(
            s,
            TrapArgs {
                arg3: reply.arg3 | 1 << 32,
                ..reply
            }
        ),
        err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, UNMAPPED, sizes(8, 9, 0), false)),
        err(Error::BadSizes)
    );
    assert_eq!(f.w.trap(s, reply), err(Error::NothingToReply));
    // A held message whose caller died, and a bad buffer: CALLER_GONE.
    let helper = f.w.thread_create(c0);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"q", 16)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 16, 1, 0));
    f.w.exit_process(helper, 0);
    assert_eq!(f.w.trap(s, reply), err(Error::CallerGone));
    // A live caller: bad buffer before too large, too large before slots.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c1, USER_FN, REF, msg(SBUF, b"q", 16)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 16, 1, 0));
    let bad_slot = [DescriptorSlot {
        mode: 2,
        ..DescriptorSlot::copy(Descriptor(1), Rights::NONE)
    }];
    assert_eq!(
        f.w.reply(s, 0, msg(UNMAPPED, &pattern(24), 64)),
        err(Error::BadBuffer)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &pattern(16), 64).slots(&bad_slot)),
        err(Error::ReplyTooLarge)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&bad_slot)),
        err(Error::BadSlot)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c1), replied(0, 0, 0, 0));
    f.w.assert_invariants();
}

#[test]
fn reply_receive_checks_its_sizes_before_the_held_message() {
    let mut f = fixture(false, 1);
    let s = f.s();
    let reply = TrapArgs::reply(0, RBUF, sizes(64, 0, 0), true);
    assert_eq!(
        f.w.trap(
            s,
            TrapArgs {
                arg3: reply.arg3 | 1 << 32,
                ..reply
            }
        ),
        err(Error::ReservedBits)
    );
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, RBUF, sizes(8, 9, 0), true)),
        err(Error::BadSizes)
    );
}

#[test]
fn reply_receive_whose_receive_half_fails_says_the_reply_was_delivered() {
    // ABI.md §4.4: the door died after the message was received.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let s2 = f.w.thread_create(s);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(f.w.close(s2, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    // The door died with the call in service: the caller fails at once
    // (ABI.md §4.1), and the held message is dropped.
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, b"answer!!", 512)),
        Some(TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::error(Error::PeerDied)
        })
    );
    // A failed reply half delivers nothing and says so with arg2 = 0.
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 512)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_on_a_door_freed_during_the_call_is_peer_died() {
    // The owner reference is closed and the caller's process drops its last
    // client reference while the call is in service: the door object is gone.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let (s2, helper) = (f.w.thread_create(s), f.w.thread_create(c));
    let init = f.w.init_thread;
    let init_ref = f.init_ref;
    assert_eq!(
        f.w.close(init, init_ref),
        kernel_ok(0, 0, 0).unwrap_or_default()
    );
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(f.w.close(s2, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.resume(c), err(Error::PeerDied));
    assert_eq!(
        f.w.close(helper, REF),
        kernel_ok(0, 0, 0).unwrap_or_default()
    );
    assert_eq!(
        f.w.reply_receive(s, 0, msg(RBUF, &[], 512)),
        Some(TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::error(Error::PeerDied)
        })
    );
    f.w.assert_invariants();
}

#[test]
fn reply_receive_into_a_buffer_too_small_for_the_next_message_says_the_reply_was_delivered() {
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    assert_eq!(f.w.send(c0, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(
        f.w.send(c1, USER_FN, REF, msg(SBUF, &pattern(100), 128)),
        None
    );
    assert_eq!(
        f.w.receive(s, OWNER, RBUF, 512),
        received(USER_FN, 0, 64, 1, 0)
    );
    let result = f.w.reply_receive(s, 0, msg(RBUF, b"ok", 64));
    assert_eq!(
        f.w.resume(c0),
        replied(0, 0, 2, 0),
        "the reply was delivered"
    );
    assert_eq!(
        result,
        Some(TrapArgs {
            arg2: REPLY_DELIVERED,
            ..TrapArgs::receive_too_small(sizes(128, 100, 0))
        })
    );
}

#[test]
fn reply_to_a_caller_that_outranks_the_server_runs_the_caller_next() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let request = ThreadCreateRequest {
        entry: IMAGE,
        stack_top: USER_STACK_TOP - 0x4000,
        argument: 0,
        priority: 4,
        reserved: 0,
    };
    let reply = f.w.kcall_ok(
        s,
        KernelFunction::ThreadCreate,
        Descriptor::NULL,
        request.as_bytes(),
    );
    let low = match f
        .w
        .k
        .objects
        .get(f.w.object_of(f.sp(), Descriptor(reply.slots[0].descriptor)))
        .map(|o| &o.body)
    {
        Some(ObjectBody::Thread(t)) => *t,
        other => panic!("not a thread: {other:?}"),
    };
    assert_eq!(f.w.receive(low, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(
        f.w.k.current(),
        Some(low),
        "SEND hands off even to a lower priority"
    );
    assert_eq!(f.w.resume(low), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(
        f.w.reply(low, 0, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(
        f.w.k.current(),
        Some(c),
        "the caller (priority 16) outranks the server (4)"
    );
}

#[test]
fn a_caller_whose_buffer_vanished_fails_with_bad_buffer() {
    // ABI.md §4.1: BAD_BUFFER while blocked, when the caller's own memory changed.
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let helper = f.w.thread_create(c);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let unmap = map_request(SBUF, PAGE, 0);
    assert_eq!(
        Some(f.w.kcall(
            helper,
            KernelFunction::Unmap,
            Descriptor::NULL,
            unmap.as_bytes()
        )),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"answer", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), err(Error::BadBuffer));
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 0)),
        err(Error::NothingToReply)
    );
    f.w.assert_invariants();
}

#[test]
fn reply_slot_errors_go_to_the_replier_and_the_caller_stays_blocked() {
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let helper = f.w.thread_create(c);
    let e = f.w.event_create(s);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let bad = [
        (
            DescriptorSlot {
                mode: 2,
                ..DescriptorSlot::copy(e, Rights::SIGNAL)
            },
            Error::BadSlot,
        ),
        (DescriptorSlot::copy(e, Rights::SEND), Error::RightsExceeded),
        (
            DescriptorSlot::copy(Descriptor(9), Rights::NONE),
            Error::BadDescriptor,
        ),
        (
            DescriptorSlot::copy(OWNER, Rights::DOOR_OWNER),
            Error::NotTransferable,
        ),
    ];
    for (slot, error) in bad {
        assert_eq!(
            f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&[slot])),
            err(error)
        );
        assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    }
    // The caller's table is full: TABLE_FULL to the replier.
    fill_table(&mut f.w, helper);
    let slot = [DescriptorSlot::copy(e, Rights::SIGNAL)];
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, &[], 64).slots(&slot)),
        err(Error::TableFull)
    );
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    assert_eq!(f.w.open_descriptors(cp), MAX_DESCRIPTORS as usize);
    assert_eq!(
        f.w.reply(s, 0, msg(RBUF, b"ok", 64)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 2, 0));
    f.w.assert_invariants();
}

#[test]
fn a_reply_cookie_lands_only_on_the_reference_the_caller_used() {
    // ABI.md §4.3: not on a later reference that reused its number.
    let mut f = fixture(false, 1);
    let (s, c, cp) = (f.s(), f.c(0), f.cp(0));
    let helper = f.w.thread_create(c);
    let Ok(via) = f.w.duplicate(c, REF, Rights::DOOR_CLIENT) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, via, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    assert_eq!(
        f.w.close(helper, via),
        kernel_ok(0, 0, 0).unwrap_or_default()
    );
    assert_eq!(
        f.w.duplicate(helper, REF, Rights::DOOR_CLIENT),
        Ok(via),
        "the number is reused"
    );
    assert_eq!(
        f.w.reply(s, 55, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    assert_eq!(f.w.reference(cp, via).map(|r| r.cookie), Some(0));
    assert_eq!(f.w.reference(cp, REF).map(|r| r.cookie), Some(0));
    f.w.assert_invariants();
}

#[test]
fn moving_the_owner_reference_away_fails_waiting_receivers_with_not_owner() {
    // ABI.md §4.2 and D11.
    let mut w = World::new();
    let init = w.init_thread;
    let (owner, client) = w.door_create(init, false);
    let waiter = w.thread_create(init);
    assert_eq!(w.receive(waiter, owner, RBUF + 0x800, 64), None);
    let server = w.spawn_ok(
        b"server",
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
    );
    assert_eq!(w.resume(waiter), err(Error::NotOwner));
    let c = w.spawn_ok(
        b"client",
        &[DescriptorSlot::moving(client, Rights::DOOR_CLIENT)],
    );
    w.round_trip(c.thread, REF, USER_FN, server.thread, OWNER, 1);
    w.assert_invariants();
}

#[test]
fn a_receiver_over_its_memory_limit_makes_the_sender_out_of_memory() {
    // ABI.md §4.1: the receiver's process is over its limit -> OUT_OF_MEMORY to the sender.
    let mut f = fixture(false, 1);
    let (s, c, sp) = (f.s(), f.c(0), f.sp());
    let limit = crate::lifecycle::DEFAULT_MEMORY_LIMIT;
    let pages = (limit - f.w.charged(sp)) / PAGE;
    let request = map_request(0, pages * PAGE, protection::READ);
    let regs = f.w.kcall(
        s,
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        request.as_bytes(),
    );
    assert_eq!(Some(regs), kernel_ok(0, 8, 0));
    let e = loop {
        let e = f.w.event_create(s);
        if limit - f.w.charged(sp) < OBJECT_COST + DESCRIPTOR_COST {
            break e;
        }
    };
    while limit - f.w.charged(sp) >= DESCRIPTOR_COST {
        assert!(f.w.duplicate(s, e, Rights::SIGNAL).is_ok());
    }
    assert_eq!(f.w.duplicate(s, e, Rights::SIGNAL), Err(Error::OutOfMemory));
    assert_eq!(
        f.w.kcall(s, KernelFunction::EventCreate, Descriptor::NULL, &[]),
        TrapArgs::error(Error::OutOfMemory)
    );
    let mine = f.w.event_create(c);
    let slot = [DescriptorSlot::copy(mine, Rights::SIGNAL)];
    assert_eq!(send_slots(&mut f, &slot), err(Error::OutOfMemory));
    // Without descriptors the call goes through.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    f.w.assert_invariants();
}

#[test]
fn process_manager_functions_route_to_procman_and_only_procman_sends_them_to_doors() {
    // ABI.md §2 and D6. Nothing in the trap ABI names procman yet, so the
    // harness sets the kernel's fields: client 0 is procman, and the
    // fixture's door is where NULL-target 0x400 calls go.
    let mut f = fixture(false, 2);
    let (s, c0, c1) = (f.s(), f.c(0), f.c(1));
    let door = f.w.object_of(f.sp(), OWNER);
    f.w.k.process_manager = Some(f.cp(0));
    f.w.k.process_manager_door = Some(door);
    assert!(accepted(&mut f, 0x400), "procman sends its range to a door");
    assert_eq!(
        f.w.send(c1, 0x400, REF, msg(SBUF, &[], 8)),
        err(Error::FunctionOutOfRange),
        "others may not"
    );
    f.w.round_trip(c1, REF, USER_FN, s, OWNER, 33);
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(
        f.w.send(c1, 0x7ff, Descriptor::NULL, msg(SBUF, b"hi", 64)),
        None
    );
    assert_eq!(
        f.w.resume(s),
        received(0x7ff, 0, 64, 2, 0),
        "routed with cookie 0, not that of any reference"
    );
    assert_eq!(
        f.w.reply(s, 7, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c1), replied(0, 0, 0, 0));
    assert_eq!(f.w.reference(f.cp(1), REF).map(|r| r.cookie), Some(33));
    // Procman's door closes: the route is gone.
    assert_eq!(f.w.close(s, OWNER), kernel_ok(0, 0, 0).unwrap_or_default());
    assert_eq!(f.w.k.process_manager_door, None);
    assert_eq!(
        f.w.send(c1, 0x400, Descriptor::NULL, msg(SBUF, &[], 8)),
        err(Error::PeerDied)
    );
    f.w.exit_process(c0, 0);
    assert_eq!(f.w.k.process_manager, None);
    f.w.assert_invariants();
}

#[test]
fn event_signal_wakes_the_longest_waiter_first() {
    let mut w = World::new();
    let t = w.init_thread;
    let e = w.event_create(t);
    let first = w.thread_create(t);
    let second = w.thread_create(t);
    let wait = KernelFunction::EventWait as i32;
    assert_eq!(w.send(first, wait, e, msg(KBUF + 0x400, &[], 64)), None);
    assert_eq!(w.send(second, wait, e, msg(KBUF + 0x800, &[], 64)), None);
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(first), kernel_ok(0, 0, 0));
    assert!(matches!(w.state(second), ThreadState::Waiting { .. }));
    assert_eq!(
        Some(w.kcall(t, KernelFunction::EventSignal, e, &[])),
        kernel_ok(0, 0, 0)
    );
    assert_eq!(w.resume(second), kernel_ok(0, 0, 0));
    w.assert_invariants();
}

// ----- 16. random traps -----

#[derive(Clone, Copy, Debug)]
struct SlotSpec {
    descriptor: u32,
    rights: u32,
    mode: u32,
    reserved: u32,
}

impl SlotSpec {
    fn slot(self) -> DescriptorSlot {
        DescriptorSlot {
            descriptor: self.descriptor,
            rights: self.rights,
            mode: self.mode,
            reserved: self.reserved,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Any registers at all.
    Raw {
        thread: usize,
        args: TrapArgs,
    },
    /// A SEND with well-formed registers and possibly bad slots.
    Send {
        thread: usize,
        function: i32,
        target: u32,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
    },
    Receive {
        thread: usize,
        door: u32,
        total: u16,
    },
    Reply {
        thread: usize,
        cookie: u64,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
        and_receive: bool,
    },
    Kernel {
        thread: usize,
        function: usize,
        a: u32,
        b: u32,
        c: u64,
    },
    /// A call through one of the door references the world starts with,
    /// usually with a function the door accepts.
    Call {
        thread: usize,
        target: u32,
        matching: bool,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
    },
    /// A thread holding a message answers it; else an owner receives.
    Serve {
        pick: usize,
        cookie: u64,
        data: u16,
        slots: Vec<SlotSpec>,
        spare: i32,
        and_receive: bool,
        total: u16,
    },
    NewThread {
        thread: usize,
        priority: u32,
    },
    /// Init spawns a client with copies of some of its references.
    InitSpawn {
        mask: u8,
    },
    Tick,
    /// Only every fourth `thread` value faults, so processes die less often.
    Fault {
        thread: usize,
    },
}

fn slot_spec() -> impl Strategy<Value = SlotSpec> {
    (
        0u32..8,
        prop_oneof![
            Just(Rights::DOOR_CLIENT.0),
            Just(Rights::EVENT.0),
            Just(Rights::DOOR_OWNER.0),
            Just(Rights::SIGNAL.0),
            0u32..64,
            Just(1 << 6),
        ],
        prop_oneof![4 => 0u32..2, 1 => Just(2u32)],
        prop_oneof![9 => Just(0u32), 1 => Just(1u32)],
    )
        .prop_map(|(descriptor, rights, mode, reserved)| SlotSpec {
            descriptor,
            rights,
            mode,
            reserved,
        })
}

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0u64..0x800).prop_map(|o| DATA + o),
        1 => Just(0u64),
        1 => Just(IMAGE),
        1 => Just(UNMAPPED),
        1 => Just(DATA_END - 16),
        1 => Just(USER_END - 16),
        1 => Just(KERNEL_HALF),
        1 => Just(u64::MAX - 3),
        1 => Just(USER_MAP_BASE),
        1 => any::<u64>(),
    ]
}

fn raw_args() -> impl Strategy<Value = TrapArgs> {
    let arg0 = prop_oneof![
        3 => 0u64..0x80,
        1 => Just(0x8000u64),
        1 => Just(0x1000u64),
        1 => Just(0x400u64),
        1 => Just(0xffff_ffffu64),
        1 => any::<u32>().prop_map(u64::from),
        1 => any::<u64>(),
    ];
    let arg1 = prop_oneof![4 => 0u64..8, 1 => any::<u64>()];
    let arg3 = prop_oneof![
        4 => (0u16..4096, 0u16..300, 0u8..4).prop_map(|(t, d, n)| sizes(t, d, n).into_bits()),
        1 => any::<u64>(),
    ];
    (arg0, arg1, address(), arg3).prop_map(|(arg0, arg1, arg2, arg3)| TrapArgs {
        arg0,
        arg1,
        arg2,
        arg3,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let thread = 0usize..64;
    prop_oneof![
        3 => (thread.clone(), raw_args()).prop_map(|(thread, args)| Op::Raw { thread, args }),
        4 => (
            thread.clone(),
            prop_oneof![4 => Just(USER_FN), 2 => Just(SYSTEM_FN), 1 => Just(0x400), 1 => 0i32..0x80, 1 => any::<i32>()],
            prop_oneof![6 => 0u32..8, 1 => any::<u32>()],
            0u16..64,
            prop::collection::vec(slot_spec(), 0..3),
            -16i32..64,
        )
            .prop_map(|(thread, function, target, data, slots, spare)| Op::Send {
                thread, function, target, data, slots, spare,
            }),
        3 => (thread.clone(), 0u32..6, prop_oneof![0u16..200, Just(4095u16)])
            .prop_map(|(thread, door, total)| Op::Receive { thread, door, total }),
        3 => (
            thread.clone(),
            prop_oneof![0u64..4, any::<u64>()],
            0u16..64,
            prop::collection::vec(slot_spec(), 0..2),
            -16i32..64,
            any::<bool>(),
        )
            .prop_map(|(thread, cookie, data, slots, spare, and_receive)| Op::Reply {
                thread, cookie, data, slots, spare, and_receive,
            }),
        4 => (thread.clone(), 0usize..64, any::<u32>(), any::<u32>(), any::<u64>())
            .prop_map(|(thread, function, a, b, c)| Op::Kernel { thread, function, a, b, c }),
        8 => smart_op(),
        1 => Just(Op::Tick),
        1 => thread.prop_map(|thread| Op::Fault { thread }),
    ]
}

fn smart_op() -> impl Strategy<Value = Op> {
    let thread = 0usize..64;
    prop_oneof![
        4 => (
            thread.clone(),
            1u32..4,
            prop_oneof![4 => Just(true), 1 => Just(false)],
            0u16..64,
            prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(slot_spec(), 0..3)],
            0i32..64,
        )
            .prop_map(|(thread, target, matching, data, slots, spare)| Op::Call {
                thread, target, matching, data, slots, spare,
            }),
        4 => (
            thread.clone(),
            prop_oneof![0u64..4, any::<u64>()],
            0u16..64,
            prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(slot_spec(), 0..2)],
            -8i32..64,
            any::<bool>(),
            prop_oneof![4 => 64u16..512, 1 => 0u16..64],
        )
            .prop_map(|(pick, cookie, data, slots, spare, and_receive, total)| Op::Serve {
                pick, cookie, data, slots, spare, and_receive, total,
            }),
        1 => (thread, 0u32..20).prop_map(|(thread, priority)| Op::NewThread { thread, priority }),
        1 => any::<u8>().prop_map(|mask| Op::InitSpawn { mask }),
    ]
}

/// Builds the request data of kernel function `kf` from random numbers.
fn kernel_request(
    kf: KernelFunction,
    a: u32,
    b: u32,
    c: u64,
) -> (Descriptor, Vec<u8>, Vec<DescriptorSlot>) {
    let descriptor = a % 10;
    match kf {
        KernelFunction::Close | KernelFunction::Duplicate | KernelFunction::DescriptorInfo => {
            let rights = if b.is_multiple_of(4) { b } else { b % 64 };
            (
                Descriptor::NULL,
                DescriptorRequest { descriptor, rights }.as_bytes().to_vec(),
                Vec::new(),
            )
        }
        KernelFunction::ThreadCreate => {
            let request = ThreadCreateRequest {
                entry: IMAGE,
                stack_top: USER_STACK_TOP - (c % 8) * 0x1000 - u64::from(b % 2) * 8,
                argument: c,
                priority: a % 20,
                reserved: u32::from(b.is_multiple_of(7)),
            };
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::ThreadExit | KernelFunction::ProcessExit | KernelFunction::DebugExit => {
            let request = ExitRequest {
                code: a,
                reserved: u32::from(b.is_multiple_of(7)),
            };
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::MapAnonymous | KernelFunction::Unmap | KernelFunction::Protect => {
            let address = [0, USER_MAP_BASE, DATA, UNMAPPED, c & !(PAGE - 1)][(a % 5) as usize];
            let request = MapRequest {
                address,
                length: u64::from(b % 4) * PAGE,
                protection: (c % 9) as u32,
                reserved: 0,
            };
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::DoorCreate => {
            let request = DoorCreateRequest {
                system: a % 3,
                security_type: b,
            };
            (Descriptor::NULL, request.as_bytes().to_vec(), Vec::new())
        }
        KernelFunction::Spawn => {
            let name: &[u8] = if a.is_multiple_of(3) {
                b"nonesuch"
            } else {
                b"client"
            };
            let mut data = SpawnRequest {
                name_length: name.len() as u32,
                argument_length: 0,
            }
            .as_bytes()
            .to_vec();
            data.extend_from_slice(name);
            let slots = (0..b % 3)
                .map(|i| DescriptorSlot {
                    descriptor: (b / 3 + i) % 8,
                    rights: [Rights::DOOR_CLIENT.0, Rights::EVENT.0, Rights::DOOR_OWNER.0]
                        [((c >> i) % 3) as usize],
                    mode: ((c >> (8 + i)) % 2) as u32,
                    reserved: 0,
                })
                .collect();
            (Descriptor::NULL, data, slots)
        }
        KernelFunction::EventSignal | KernelFunction::EventWait => {
            (Descriptor(descriptor), Vec::new(), Vec::new())
        }
        KernelFunction::DebugWrite => (Descriptor::NULL, b"x".to_vec(), Vec::new()),
        _ => (
            Descriptor(if b.is_multiple_of(5) { descriptor } else { 0 }),
            Vec::new(),
            Vec::new(),
        ),
    }
}

/// A world of five processes: init (privileged), a server owning a user and
/// a system door, two clients, and threads blocked in various ways.
fn random_world() -> World {
    let mut w = World::new();
    let init = w.init_thread;
    let (a_owner, a_client) = w.door_create(init, false);
    let (b_owner, b_client) = w.door_create(init, true);
    let e = w.event_create(init);
    // Op::InitSpawn relies on these numbers (after init's three capabilities).
    assert_eq!(
        (a_client, b_client, e),
        (Descriptor(5), Descriptor(7), Descriptor(8))
    );
    let server = w.spawn_ok(
        b"server",
        &[
            DescriptorSlot::moving(a_owner, Rights::DOOR_OWNER),
            DescriptorSlot::moving(b_owner, Rights::DOOR_OWNER),
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(e, Rights::EVENT),
        ],
    );
    let c1 = w.spawn_ok(
        b"client",
        &[
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(b_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(e, Rights::EVENT),
        ],
    );
    let c2 = w.spawn_ok(
        b"client",
        &[
            DescriptorSlot::copy(a_client, Rights::DOOR_CLIENT),
            DescriptorSlot::copy(b_client, Rights::DOOR_CLIENT),
        ],
    );
    w.thread_create(server.thread);
    w.thread_create(c1.thread);
    w.thread_create(c2.thread);
    w
}

/// Runs one op; returns without effect when the chosen thread cannot trap.
fn apply(w: &mut World, op: &Op) {
    let threads: Vec<ThreadId> = w.k.threads.ids().filter(|t| w.runnable(*t)).collect();
    let pick = |i: usize| threads.get(i % threads.len().max(1)).copied();
    let buffer = |t: ThreadId| DATA + u64::from(t.index() % 4) * 0x1000;
    let trap = |w: &mut World, t: ThreadId, args: TrapArgs| {
        w.run(t);
        let _ = w.k.take_resume(t);
        w.k.trap(&mut w.m, args);
        let _ = w.k.take_resume(t);
    };
    let total = |data: u16, count: usize, spare: i32| {
        let used = i32::from(descriptor_offset(data)) + 16 * count as i32;
        (used + spare).clamp(0, 4095) as u16
    };
    let write = |w: &mut World, t: ThreadId, buf: u64, data: u16, slots: &[DescriptorSlot]| {
        if let Some(space) = w.k.space_of(t) {
            let bytes: Vec<u8> = (0..data).map(|i| i as u8).collect();
            let _ = w.m.copy_in(space, buf, &bytes);
            let at = buf + u64::from(descriptor_offset(data));
            for (i, slot) in slots.iter().enumerate() {
                let _ = w.m.copy_in(space, at + 16 * i as u64, slot.as_bytes());
            }
        }
    };
    match op {
        Op::Raw { thread, args } => {
            if let Some(t) = pick(*thread) {
                trap(w, t, *args);
            }
        }
        Op::Send {
            thread,
            function,
            target,
            data,
            slots,
            spare,
        } => {
            if let Some(t) = pick(*thread) {
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t);
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(
                    w,
                    t,
                    TrapArgs::send(Function(*function), Descriptor(*target), buf, s),
                );
            }
        }
        Op::Receive {
            thread,
            door,
            total,
        } => {
            if let Some(t) = pick(*thread) {
                let buf = buffer(t) + 0x800;
                trap(w, t, TrapArgs::receive(Descriptor(*door), buf, *total));
            }
        }
        Op::Reply {
            thread,
            cookie,
            data,
            slots,
            spare,
            and_receive,
        } => {
            if let Some(t) = pick(*thread) {
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t) + 0x800;
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(w, t, TrapArgs::reply(*cookie, buf, s, *and_receive));
            }
        }
        Op::Kernel {
            thread,
            function,
            a,
            b,
            c,
        } => {
            if let Some(t) = pick(*thread) {
                let kf = KernelFunction::ALL[function % KernelFunction::ALL.len()];
                let (target, data, slots) = kernel_request(kf, *a, *b, *c);
                let buf = DATA + 0x4000 + u64::from(t.index() % 4) * 0x800;
                write(w, t, buf, data.len() as u16, &slots);
                let used =
                    i32::from(descriptor_offset(data.len() as u16)) + 16 * slots.len() as i32;
                let spare = if c % 11 == 0 { 0 } else { 120 };
                let s = sizes((used + spare) as u16, data.len() as u16, slots.len() as u8);
                trap(w, t, TrapArgs::send(kf.function(), target, buf, s));
            }
        }
        Op::Call {
            thread,
            target,
            matching,
            data,
            slots,
            spare,
        } => {
            if let Some(t) = pick(*thread) {
                // Clients hold A (user) at 1 and B (system) at 2; the server A at 3.
                let function = match (*target == 2) == *matching {
                    true => SYSTEM_FN,
                    false => USER_FN,
                };
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t);
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(
                    w,
                    t,
                    TrapArgs::send(Function(function), Descriptor(*target), buf, s),
                );
            }
        }
        Op::Serve {
            pick: which,
            cookie,
            data,
            slots,
            spare,
            and_receive,
            total: receive_total,
        } => {
            let holders: Vec<ThreadId> = threads
                .iter()
                .copied()
                .filter(|t| w.holding(*t) != Holding::Nothing)
                .collect();
            if let Some(&t) = holders.get(which % holders.len().max(1)) {
                let slots: Vec<DescriptorSlot> = slots.iter().map(|s| s.slot()).collect();
                let buf = buffer(t) + 0x800;
                write(w, t, buf, *data, &slots);
                let s = sizes(total(*data, slots.len(), *spare), *data, slots.len() as u8);
                trap(w, t, TrapArgs::reply(*cookie, buf, s, *and_receive));
            } else {
                let owners: Vec<(ThreadId, Descriptor)> = threads
                    .iter()
                    .flat_map(|t| (1..=3).map(move |d| (*t, Descriptor(d))))
                    .filter(|(t, d)| {
                        w.reference(w.process_of(*t), *d)
                            .is_some_and(|r| r.rights.contains(Rights::RECEIVE))
                    })
                    .collect();
                if let Some(&(t, d)) = owners.get(which % owners.len().max(1)) {
                    let buf = buffer(t) + 0x800;
                    trap(w, t, TrapArgs::receive(d, buf, *receive_total));
                }
            }
        }
        Op::NewThread { thread, priority } => {
            if let Some(t) = pick(*thread) {
                let request = ThreadCreateRequest {
                    entry: IMAGE,
                    stack_top: USER_STACK_TOP - 0x2000,
                    argument: 0,
                    priority: *priority,
                    reserved: 0,
                };
                let buf = DATA + 0x4000 + u64::from(t.index() % 4) * 0x800;
                write(w, t, buf, 32, &[]);
                let _ =
                    w.k.space_of(t)
                        .map(|space| w.m.copy_in(space, buf, request.as_bytes()));
                let s = sizes(64, 32, 0);
                trap(
                    w,
                    t,
                    TrapArgs::send(
                        KernelFunction::ThreadCreate.function(),
                        Descriptor::NULL,
                        buf,
                        s,
                    ),
                );
            }
        }
        Op::InitSpawn { mask } => {
            let t = w.init_thread;
            if w.runnable(t) {
                // Init's own references: A client 5, B client 7, the event 8.
                let candidates = [
                    DescriptorSlot::copy(Descriptor(5), Rights::DOOR_CLIENT),
                    DescriptorSlot::copy(Descriptor(7), Rights::DOOR_CLIENT),
                    DescriptorSlot::copy(Descriptor(8), Rights::EVENT),
                ];
                let slots: Vec<DescriptorSlot> = candidates
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, s)| *s)
                    .collect();
                let mut data = SpawnRequest {
                    name_length: 6,
                    argument_length: 0,
                }
                .as_bytes()
                .to_vec();
                data.extend_from_slice(b"client");
                let buf = DATA + 0x6000;
                let _ = w.k.space_of(t).map(|space| w.m.copy_in(space, buf, &data));
                let at = buf + u64::from(descriptor_offset(data.len() as u16));
                for (i, slot) in slots.iter().enumerate() {
                    let _ =
                        w.k.space_of(t)
                            .map(|space| w.m.copy_in(space, at + 16 * i as u64, slot.as_bytes()));
                }
                let s = sizes(256, data.len() as u16, slots.len() as u8);
                trap(
                    w,
                    t,
                    TrapArgs::send(KernelFunction::Spawn.function(), CAP_PROCESS, buf, s),
                );
            }
        }
        Op::Tick => w.k.tick(),
        Op::Fault { thread } => {
            if thread % 4 != 0 {
                return;
            }
            if let Some(t) = pick(*thread) {
                w.run(t);
                w.k.fault(&mut w.m);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Random traps by random threads never panic the kernel, every state
    /// between traps keeps the invariants, and ending every process frees
    /// everything.
    #[test]
    fn random_traps_keep_the_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let mut w = random_world();
        let violations = w.violations();
        prop_assert!(violations.is_empty(), "initial state: {:?}", violations);
        for (i, op) in ops.iter().enumerate() {
            apply(&mut w, op);
            let violations = w.violations();
            prop_assert!(violations.is_empty(), "after op {} {:?}:\n{}", i, op, violations.join("\n"));
        }
        let processes: Vec<ProcessId> = w.k.processes.ids().collect();
        for p in processes {
            w.k.end_process(&mut w.m, p, 0);
        }
        let violations = w.violations();
        prop_assert!(violations.is_empty(), "after teardown:\n{}", violations.join("\n"));
        prop_assert_eq!(w.k.counters(), KernelCounters::default());
        prop_assert!(w.m.spaces.is_empty() && w.m.contexts.is_empty());
    }
}

// ----- process-manager support: MANAGER_REGISTER, routing, cookies, exit notices, ARCHIVE_READ -----

/// init registers a door of its own as the process manager's.
fn register_manager(w: &mut World) -> Descriptor {
    let (owner, _client) = w.door_create(w.init_thread, true);
    let request = DescriptorRequest {
        descriptor: owner.0,
        rights: 0,
    };
    w.kcall_ok(
        w.init_thread,
        KernelFunction::ManagerRegister,
        CAP_PROCESS,
        request.as_bytes(),
    );
    owner
}

#[test]
fn process_manager_calls_carry_the_cookie_procman_set_and_its_reply_updates_it() {
    let mut w = World::new();
    let owner = register_manager(&mut w);
    let child = w.spawn_ok(b"client", &[]);
    let cookie = abi::kcall::CookieRequest { cookie: 0x1234 };
    w.kcall_ok(
        w.init_thread,
        KernelFunction::ProcessSetCookie,
        child.handle,
        cookie.as_bytes(),
    );
    // The NULL target with a process-manager number reaches procman's door.
    assert_eq!(w.receive(w.init_thread, owner, RBUF, 256), None);
    assert_eq!(
        w.send(
            child.thread,
            0x400,
            Descriptor::NULL,
            msg(SBUF, b"hello", 64)
        ),
        None
    );
    let received = w.resume(w.init_thread);
    let sizes = MessageSizes::from_fields(64, 5, 0).unwrap_or_default();
    assert_eq!(
        received,
        Some(TrapArgs::received(Function(0x400), 0x1234, RBUF, sizes))
    );
    assert_eq!(w.peek(w.init, RBUF, 5), b"hello".to_vec());
    // The reply's cookie becomes the process's cookie.
    assert_eq!(
        w.reply(w.init_thread, 0x5678, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert!(w.resume(child.thread).is_some());
    assert_eq!(w.receive(w.init_thread, owner, RBUF, 256), None);
    assert_eq!(
        w.send(child.thread, 0x401, Descriptor::NULL, msg(SBUF, &[], 64)),
        None
    );
    let again = w.resume(w.init_thread).map(|r| r.arg1);
    assert_eq!(again, Some(0x5678));
    w.assert_invariants();
}

#[test]
fn only_capability_holders_register_a_manager_or_read_the_archive() {
    let mut w = World::new();
    let owner = register_manager(&mut w);
    let child = w.spawn_ok(b"client", &[]);
    let request = DescriptorRequest {
        descriptor: 1,
        rights: 0,
    };
    let regs = w.kcall(
        child.thread,
        KernelFunction::ManagerRegister,
        CAP_PROCESS,
        request.as_bytes(),
    );
    assert_eq!(
        regs,
        TrapArgs::error(Error::BadDescriptor),
        "the child holds no capability"
    );
    let regs = w.kcall(
        child.thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        &[0; 16],
    );
    assert_eq!(
        regs,
        TrapArgs::error(Error::BadDescriptor),
        "the child holds no capability"
    );
    // A client reference cannot become the manager's door.
    let (_, client) = w.door_create(w.init_thread, false);
    let request = DescriptorRequest {
        descriptor: client.0,
        rights: 0,
    };
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ManagerRegister,
        CAP_PROCESS,
        request.as_bytes(),
    );
    assert_eq!(regs, TrapArgs::error(Error::NotOwner));
    // PROCESS_SET_COOKIE wants a process handle.
    let cookie = abi::kcall::CookieRequest { cookie: 1 };
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ProcessSetCookie,
        owner,
        cookie.as_bytes(),
    );
    assert_eq!(regs, TrapArgs::error(Error::WrongObjectType));
    // The notice number is the kernel's to send, never a caller's.
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ProcessExited,
        Descriptor::NULL,
        &[],
    );
    assert_eq!(regs, TrapArgs::error(Error::InvalidFunction));
    w.assert_invariants();
}

#[test]
fn every_process_exit_reaches_the_manager_as_a_notice() {
    let mut w = World::new();
    let owner = register_manager(&mut w);
    let early = w.spawn_ok(b"client", &[]);
    let late = w.spawn_ok(b"worker", &[]);
    for (child, cookie) in [(early, 11u64), (late, 22)] {
        let request = abi::kcall::CookieRequest { cookie };
        w.kcall_ok(
            w.init_thread,
            KernelFunction::ProcessSetCookie,
            child.handle,
            request.as_bytes(),
        );
    }
    // An exit while nobody receives is queued...
    w.exit_process(early.thread, 7);
    let size = size_of::<abi::kcall::ProcessExitNotice>() as u16;
    let sizes = MessageSizes::from_fields(size, size, 0).unwrap_or_default();
    let function = KernelFunction::ProcessExited.function();
    // ...a too-small buffer learns the size and the notice stays...
    assert_eq!(
        w.receive(w.init_thread, owner, RBUF, 8),
        Some(TrapArgs::receive_too_small(sizes))
    );
    assert_eq!(
        w.receive(w.init_thread, owner, RBUF, 64),
        Some(TrapArgs::received(function, 0, RBUF, sizes))
    );
    let notice = abi::kcall::ProcessExitNotice {
        cookie: 11,
        status: 7,
        reserved: 0,
    };
    assert_eq!(
        w.peek(w.init, RBUF, usize::from(size)),
        notice.as_bytes().to_vec()
    );
    // ...any reply to a notice is accepted and discarded.
    assert_eq!(
        w.reply(w.init_thread, 99, msg(RBUF, &[1, 2, 3], 16)),
        Some(TrapArgs::default())
    );
    // An exit while procman waits is delivered at once (REPLY_RECEIVE keeps going).
    assert_eq!(w.receive(w.init_thread, owner, RBUF, 64), None);
    w.exit_process(late.thread, 0);
    assert_eq!(
        w.resume(w.init_thread),
        Some(TrapArgs::received(function, 0, RBUF, sizes))
    );
    let notice = abi::kcall::ProcessExitNotice {
        cookie: 22,
        status: 0,
        reserved: 0,
    };
    assert_eq!(
        w.peek(w.init, RBUF, usize::from(size)),
        notice.as_bytes().to_vec()
    );
    assert_eq!(w.reply_receive(w.init_thread, 0, msg(RBUF, &[], 64)), None);
    w.assert_invariants();
}

#[test]
fn archive_read_returns_the_size_and_what_fits_from_the_offset() {
    let mut w = World::new();
    let name = b"system.toml";
    let mut request = abi::kcall::ArchiveReadRequest {
        offset: 5,
        name_length: name.len() as u32,
        reserved: 0,
    }
    .as_bytes()
    .to_vec();
    request.extend_from_slice(name);
    // A 40-byte buffer (the 27-byte request fits): 8 header + 8 size + 24 bytes of the file.
    let regs = w.kcall_msg(
        w.init_thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        msg(KBUF, &request, 40),
    );
    let sizes = MessageSizes::new().with_data_size(40);
    assert_eq!(regs, TrapArgs::replied(0, 0, sizes));
    let reply = w.peek(w.init, KBUF, 40);
    assert_eq!(
        reply[8..16].to_vec(),
        (ARCHIVE_MANIFEST.len() as u64).to_le_bytes().to_vec()
    );
    assert_eq!(reply[16..40].to_vec(), ARCHIVE_MANIFEST[5..29].to_vec());
    // Past the end: the size and no bytes.
    let mut past = abi::kcall::ArchiveReadRequest {
        offset: 1 << 40,
        name_length: name.len() as u32,
        reserved: 0,
    }
    .as_bytes()
    .to_vec();
    past.extend_from_slice(name);
    let regs = w.kcall_msg(
        w.init_thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        msg(KBUF, &past, 64),
    );
    assert_eq!(
        regs,
        TrapArgs::replied(0, 0, MessageSizes::new().with_data_size(16))
    );
    // No such file.
    let mut missing = abi::kcall::ArchiveReadRequest {
        offset: 0,
        name_length: 4,
        reserved: 0,
    }
    .as_bytes()
    .to_vec();
    missing.extend_from_slice(b"nope");
    let regs = w.kcall_msg(
        w.init_thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        msg(KBUF, &missing, 64),
    );
    assert_eq!(regs, TrapArgs::error(Error::InvalidArgument));
    w.assert_invariants();
}
