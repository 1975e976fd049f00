//! The fake machine: address spaces as maps of 4 KiB pages, frames for
//! memory objects (with their contents), physical device pages, a memory
//! map, a boot archive of four named programs, and the constants every
//! test shares.

use std::collections::{BTreeMap, HashMap};

use abi::kcall::protection;
use abi::process::{
    MAX_ARGUMENT_BYTES, USER_END, USER_IMAGE_BASE, USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP,
};
use abi::{Descriptor, Error};

use crate::boot_info::{MemoryKind, MemoryMap, MemoryRegion};
use crate::machine::{LoadedProgram, Machine, Mapped, PageMapping, UserStart};
use crate::phys::PhysRange;
use crate::process::SpaceId;
use crate::thread::ThreadId;

pub(super) const PAGE: u64 = abi::PAGE_BYTES;
/// One read-only, executable page holding the program's name.
pub(super) const IMAGE: u64 = USER_IMAGE_BASE;
/// A writable data region every program gets; test buffers live here.
pub(super) const DATA: u64 = 0x0100_0000;
pub(super) const DATA_PAGES: u64 = 16;
pub(super) const DATA_END: u64 = DATA + DATA_PAGES * PAGE;
pub(super) const STACK_BOTTOM: u64 = USER_STACK_TOP - USER_STACK_SIZE;
/// Page tables under a program's pages: a page table each for the image,
/// the data and the stack (three 2 MiB regions), a directory for the image
/// with the data and one for the stack (two 1 GiB regions), and a
/// directory-pointer table for each of those (two 512 GiB regions).
pub(super) const PROGRAM_TABLES: u64 = 3 + 2 + 2;
/// Bytes `load_program` maps (and the kernel charges) per program, page
/// tables included.
pub(super) const PROGRAM_BYTES: u64 =
    PAGE + DATA_PAGES * PAGE + USER_STACK_SIZE + PROGRAM_TABLES * PAGE;
/// A user address nothing is ever mapped at.
pub(super) const UNMAPPED: u64 = 0x0700_0000;
pub(super) const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// Frames the fake machine has for memory objects.
pub(super) const FREE_FRAMES: u64 = 4242;
/// Where the fake machine's frames lie (usable RAM of its memory map).
pub(super) const FRAME_BASE: u64 = 0x0200_0000;
/// The fake machine's memory map: usable RAM below 0x9F000 and from 1 MiB
/// to 0x7FE0000, the BIOS area reserved (the RSDP is there), ACPI tables
/// above RAM, and a device page (an I/O APIC) in a hole of the map.
pub(super) const MEMORY_MAP: [(u64, u64, MemoryKind); 5] = [
    (0, 0x9_f000, MemoryKind::Usable),
    (0xe_0000, 0x10_0000, MemoryKind::Reserved),
    (0x10_0000, 0x7fe_0000, MemoryKind::Usable),
    (0x7fe_0000, 0x800_0000, MemoryKind::AcpiReclaimable),
    (0x8000_0000, 0x8010_0000, MemoryKind::KernelAndModules),
];
/// The fake RSDP's address, in the BIOS area.
pub(super) const RSDP: u64 = 0xf_5a60;
/// A device page in no region of the map.
pub(super) const DEVICE: u64 = 0xfec0_0000;
/// The fake machine's timer rate.
pub(super) const TIMER_HZ: u32 = 100;
/// The first process's capabilities (abi::process).
pub(super) const CAP_PROCESS: Descriptor = abi::process::FIRST_PROCESS_CONTROL;
pub(super) const CAP_ARCHIVE: Descriptor = abi::process::FIRST_BOOT_ARCHIVE;
pub(super) const CAP_MACHINE: Descriptor = abi::process::FIRST_MACHINE_CONTROL;

pub(super) const PROGRAMS: [&[u8]; 4] = [b"init", b"server", b"client", b"worker"];
/// The one file of the fake boot archive besides the programs.
pub(super) const ARCHIVE_MANIFEST: &[u8] =
    b"[system]\nname = \"fake\"\n# padding to make offsets matter\n";

/// Send buffer, receive buffer and kernel-call buffer of the harness.
pub(super) const SBUF: u64 = DATA;
pub(super) const RBUF: u64 = DATA + PAGE;
pub(super) const KBUF: u64 = DATA + 0x2000;
pub(super) const KTOTAL: u16 = 1024;

pub(super) const USER_FN: i32 = 0x8000;
pub(super) const SYSTEM_FN: i32 = 0x1000;

#[derive(Debug)]
pub(super) struct Page {
    pub(super) protection: u32,
    /// Allocated on first write; reads as zeros before.
    pub(super) bytes: Option<Box<[u8; PAGE as usize]>>,
    /// A memory object's page (`map_page`): the frame shown, and whether it
    /// is mapped cacheable. Its bytes are the frame's, and unmapping it
    /// frees nothing.
    pub(super) borrowed: Option<(u64, bool)>,
}

type PageBytes = Box<[u8; PAGE as usize]>;

/// Address spaces as maps of pages, thread contexts, console and verdicts.
#[derive(Debug, Default)]
pub(super) struct FakeMachine {
    pub(super) spaces: BTreeMap<SpaceId, BTreeMap<u64, Page>>,
    /// Where each space's next kernel-placed mapping is searched from.
    pub(super) hints: BTreeMap<SpaceId, u64>,
    pub(super) next_space: SpaceId,
    pub(super) contexts: HashMap<ThreadId, (SpaceId, UserStart)>,
    /// Registers set by `set_user_registers` (else a context's start state).
    pub(super) registers: HashMap<ThreadId, abi::upcall::UserRegisters>,
    pub(super) console: Vec<u8>,
    /// The kernel log once taken (a small ring, so tests overflow it).
    pub(super) log: crate::log::KernelLog<FAKE_LOG_BYTES>,
    pub(super) verdicts: Vec<bool>,
    /// `debug_exit` answers NOT_PERMITTED (the kernel was not booted for tests).
    pub(super) debug_exit_refused: bool,
    /// Contract violations (double destroy, unknown space, ...).
    pub(super) anomalies: Vec<String>,
    /// Frames handed out for memory objects, with their contents.
    pub(super) frames: BTreeMap<u64, PageBytes>,
    /// Frames given back, handed out again first.
    pub(super) free_list: Vec<u64>,
    /// The next frame never handed out.
    pub(super) next_frame: u64,
    /// At most this many frames handed out at once (tests of running out).
    pub(super) frame_limit: Option<u64>,
    /// Physical pages outside RAM (device memory, firmware): what a direct
    /// mapping reads.
    pub(super) physical: BTreeMap<u64, PageBytes>,
    /// The memory map.
    pub(super) memory_map: MemoryMap,
    /// The I/O ports each space may use, as last set.
    pub(super) io_ports: BTreeMap<SpaceId, Vec<crate::kcall::devices::IoRange>>,
    /// Interrupt lines routed and unmasked.
    pub(super) unmasked_lines: std::collections::BTreeSet<u8>,
    /// Lines ever routed.
    pub(super) routed_lines: std::collections::BTreeSet<u8>,
    /// `interrupt_route` answers NOT_PERMITTED (no interrupt controller).
    pub(super) no_interrupt_controller: bool,
}

/// The fake machine's log ring: small, so tests fill it cheaply.
pub(super) const FAKE_LOG_BYTES: usize = 512;

/// Page addresses covering `[address, address + length)`.
pub(super) fn pages_of(address: u64, length: u64) -> impl Iterator<Item = u64> {
    let first = address & !(PAGE - 1);
    let end = address.saturating_add(length);
    (first..end).step_by(PAGE as usize)
}

impl FakeMachine {
    pub(super) fn new() -> Self {
        let mut memory_map = MemoryMap::new();
        for (start, end, kind) in MEMORY_MAP {
            memory_map.push(MemoryRegion {
                range: PhysRange { start, end },
                kind,
            });
        }
        let mut machine = Self {
            next_space: 1,
            next_frame: FRAME_BASE,
            memory_map,
            ..Self::default()
        };
        let mut rsdp = [0u8; 20];
        rsdp[..8].copy_from_slice(crate::rsdp::SIGNATURE);
        machine.poke_physical(RSDP, &rsdp);
        machine
    }

    /// A line of the kernel's own (what the arch layer's `kprintln!`
    /// writes), to the port or the ring.
    pub(super) fn kernel_line(&mut self, line: &str) {
        let console = &mut self.console;
        self.log.write(
            crate::log::Source::Kernel,
            format!("hinge: {line}\n").as_bytes(),
            |piece| console.extend_from_slice(piece),
        );
    }

    /// Writes physical memory outside the frames (firmware, devices).
    pub(super) fn poke_physical(&mut self, address: u64, bytes: &[u8]) {
        for (i, byte) in bytes.iter().enumerate() {
            let at = address + i as u64;
            self.physical
                .entry(at & !(PAGE - 1))
                .or_insert_with(|| Box::new([0; PAGE as usize]))[(at % PAGE) as usize] = *byte;
        }
    }

    /// The bytes of a borrowed page's frame (a memory object's frame, or
    /// physical memory outside them).
    fn frame_bytes(&self, frame: u64) -> Option<&PageBytes> {
        self.frames
            .get(&frame)
            .or_else(|| self.physical.get(&frame))
    }

    fn frame_bytes_mut(&mut self, frame: u64) -> &mut PageBytes {
        if self.frames.contains_key(&frame) {
            return self
                .frames
                .entry(frame)
                .or_insert_with(|| Box::new([0; PAGE as usize]));
        }
        self.physical
            .entry(frame)
            .or_insert_with(|| Box::new([0; PAGE as usize]))
    }

    /// The rule of `Machine::check_user`: a non-empty range must lie in the
    /// user half above page 0 and be mapped, readable, and writable for `write`.
    pub(super) fn access(
        &self,
        space: SpaceId,
        address: u64,
        length: u64,
        write: bool,
    ) -> Result<(), Error> {
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
    pub(super) fn copy_out(
        &self,
        space: SpaceId,
        address: u64,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let map = self.spaces.get(&space).ok_or(Error::BadBuffer)?;
        for (i, byte) in buffer.iter_mut().enumerate() {
            let at = address.checked_add(i as u64).ok_or(Error::BadBuffer)?;
            let page = map.get(&(at & !(PAGE - 1))).ok_or(Error::BadBuffer)?;
            let bytes = match page.borrowed {
                Some((frame, _)) => self.frame_bytes(frame),
                None => page.bytes.as_ref(),
            };
            *byte = bytes.map_or(0, |b| b[(at % PAGE) as usize]);
        }
        Ok(())
    }

    /// Writes mapped memory regardless of protection.
    pub(super) fn copy_in(
        &mut self,
        space: SpaceId,
        address: u64,
        data: &[u8],
    ) -> Result<(), Error> {
        for (i, byte) in data.iter().enumerate() {
            let at = address.checked_add(i as u64).ok_or(Error::BadBuffer)?;
            let map = self.spaces.get_mut(&space).ok_or(Error::BadBuffer)?;
            let page = map.get_mut(&(at & !(PAGE - 1))).ok_or(Error::BadBuffer)?;
            match page.borrowed {
                Some((frame, _)) => self.frame_bytes_mut(frame)[(at % PAGE) as usize] = *byte,
                None => {
                    page.bytes
                        .get_or_insert_with(|| Box::new([0; PAGE as usize]))
                        [(at % PAGE) as usize] = *byte
                }
            }
        }
        Ok(())
    }

    pub(super) fn range_is_free(&self, space: SpaceId, address: u64, length: u64) -> bool {
        self.spaces
            .get(&space)
            .is_some_and(|map| map.range(address..address + length).next().is_none())
    }

    pub(super) fn insert_pages(
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
                    borrowed: None,
                },
            );
        }
        Ok(())
    }

    /// The bytes of pages the mappings own and of page tables in `space`
    /// (what the kernel must have charged the process for them; a memory
    /// object's pages are charged to the object).
    pub(super) fn mapped_bytes(&self, space: SpaceId) -> u64 {
        self.spaces.get(&space).map_or(0, |map| {
            map.values().filter(|p| p.borrowed.is_none()).count() as u64 * PAGE
        }) + self.table_bytes(space)
    }

    /// The page mapped at `address` of `space`.
    pub(super) fn page(&self, space: SpaceId, address: u64) -> Option<&Page> {
        self.spaces
            .get(&space)
            .and_then(|map| map.get(&(address & !(PAGE - 1))))
    }

    /// Where the next mapping of `length` bytes placed by the machine goes.
    fn place(&self, space: SpaceId, length: u64) -> Result<u64, Error> {
        let map = self.spaces.get(&space).ok_or(Error::InvalidArgument)?;
        let hint = self.hints.get(&space).copied().unwrap_or(USER_MAP_BASE);
        crate::placement::place(hint, length, |start, end| {
            map.range(start..end).next().map(|(page, _)| *page)
        })
        .ok_or(Error::BadAddressRange)
    }

    /// The page tables a real machine would hold for `space`'s pages (the
    /// x86_64 shape, emptied tables freed).
    pub(super) fn table_bytes(&self, space: SpaceId) -> u64 {
        self.spaces
            .get(&space)
            .map_or(0, |map| crate::page_tables::occupied(map.keys().copied()))
    }

    pub(super) fn page_protection(&self, space: SpaceId, address: u64) -> Option<u32> {
        self.spaces
            .get(&space)
            .and_then(|map| map.get(&(address & !(PAGE - 1))))
            .map(|p| p.protection)
    }
}

// Every method runs unfailing: the machine stands for hardware (frames,
// page tables, contexts), not for the kernel heap whose failures the
// allocation-failure tests inject.
impl Machine for FakeMachine {
    fn check_user(
        &self,
        space: SpaceId,
        address: u64,
        length: usize,
        write: bool,
    ) -> Result<(), Error> {
        test_allocator::unfailing(|| self.access(space, address, length as u64, write))
    }

    fn read_user(&self, space: SpaceId, address: u64, buffer: &mut [u8]) -> Result<(), Error> {
        test_allocator::unfailing(|| {
            self.access(space, address, buffer.len() as u64, false)?;
            self.copy_out(space, address, buffer)
        })
    }

    fn write_user(&mut self, space: SpaceId, address: u64, data: &[u8]) -> Result<(), Error> {
        test_allocator::unfailing(|| {
            self.access(space, address, data.len() as u64, true)?;
            self.copy_in(space, address, data)
        })
    }

    fn create_space(&mut self) -> Result<SpaceId, Error> {
        test_allocator::unfailing(|| {
            let space = self.next_space;
            self.next_space += 1;
            self.spaces.insert(space, BTreeMap::new());
            Ok(space)
        })
    }

    fn destroy_space(&mut self, space: SpaceId) {
        test_allocator::unfailing(|| {
            self.io_ports.remove(&space);
            if self.spaces.remove(&space).is_none() {
                self.anomalies
                    .push(format!("destroy_space({space}) of an unknown space"));
            }
        })
    }

    fn map_anonymous(
        &mut self,
        space: SpaceId,
        address: Option<u64>,
        length: u64,
        protection: u32,
    ) -> Result<Mapped, Error> {
        test_allocator::unfailing(|| {
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
                    let at = self.place(space, length)?;
                    self.hints
                        .insert(space, crate::placement::next_hint(at, length));
                    at
                }
            };
            let tables_before = self.table_bytes(space);
            self.insert_pages(space, at, length, protection)?;
            Ok(Mapped {
                address: at,
                table_bytes: self.table_bytes(space) - tables_before,
            })
        })
    }

    fn unmap(&mut self, space: SpaceId, address: u64, length: u64) -> Result<u64, Error> {
        test_allocator::unfailing(|| {
            let tables_before = self.table_bytes(space);
            let map = self.spaces.get_mut(&space).ok_or(Error::InvalidArgument)?;
            // What is mapped in the range, not every address of it: an UNMAP
            // may cover terabytes.
            let end = address.saturating_add(length);
            let pages: Vec<u64> = map.range(address..end).map(|(page, _)| *page).collect();
            let mut owned = 0;
            for page in &pages {
                if map.remove(page).is_some_and(|p| p.borrowed.is_none()) {
                    owned += 1;
                }
            }
            Ok(owned * PAGE + tables_before - self.table_bytes(space))
        })
    }

    fn protect(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        test_allocator::unfailing(|| {
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
        })
    }

    fn read_archive(
        &self,
        name: &[u8],
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<(u64, usize), Error> {
        test_allocator::unfailing(|| {
            let file: &[u8] = match name {
                b"system.toml" => ARCHIVE_MANIFEST,
                _ => return Err(Error::InvalidArgument),
            };
            Ok(crate::machine::read_file_window(file, offset, buffer))
        })
    }

    fn load_program(
        &mut self,
        space: SpaceId,
        name: &[u8],
        arguments: &[u8],
    ) -> Result<LoadedProgram, Error> {
        test_allocator::unfailing(|| {
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
                memory_bytes: self.mapped_bytes(space),
            })
        })
    }

    fn create_thread(
        &mut self,
        thread: ThreadId,
        space: SpaceId,
        start: UserStart,
    ) -> Result<(), Error> {
        test_allocator::unfailing(|| {
            if !self.spaces.contains_key(&space) {
                return Err(Error::InvalidArgument);
            }
            if self.contexts.insert(thread, (space, start)).is_some() {
                self.anomalies
                    .push(format!("create_thread({thread:?}) twice"));
            }
            Ok(())
        })
    }

    fn user_registers(&self, thread: ThreadId) -> Option<abi::upcall::UserRegisters> {
        if let Some(r) = self.registers.get(&thread) {
            return Some(*r);
        }
        let (_, start) = self.contexts.get(&thread)?;
        Some(abi::upcall::UserRegisters {
            rip: start.entry,
            rsp: start.stack_pointer,
            rdi: start.arg0,
            rsi: start.arg1,
            rdx: start.arg2,
            rflags: abi::upcall::FORCED_RFLAGS,
            ..Default::default()
        })
    }

    fn set_user_registers(&mut self, thread: ThreadId, registers: &abi::upcall::UserRegisters) {
        test_allocator::unfailing(|| {
            if !self.contexts.contains_key(&thread) {
                self.anomalies.push(format!(
                    "set_user_registers({thread:?}) of an unknown context"
                ));
            }
            self.registers.insert(thread, *registers);
        })
    }

    fn destroy_thread(&mut self, thread: ThreadId) {
        test_allocator::unfailing(|| {
            self.registers.remove(&thread);
            if self.contexts.remove(&thread).is_none() {
                self.anomalies
                    .push(format!("destroy_thread({thread:?}) of an unknown context"));
            }
        })
    }

    fn console_write(&mut self, bytes: &[u8]) {
        test_allocator::unfailing(|| {
            let console = &mut self.console;
            self.log.write(crate::log::Source::User, bytes, |piece| {
                console.extend_from_slice(piece)
            });
        })
    }

    fn log_take(&mut self) {
        self.log.take();
    }

    fn log_give_back(&mut self) {
        test_allocator::unfailing(|| {
            let console = &mut self.console;
            self.log.give_back(|piece| console.extend_from_slice(piece));
        })
    }

    fn log_peek(&mut self, out: &mut [u8]) -> crate::log::Peeked {
        self.log.peek(out)
    }

    fn log_consume(&mut self, bytes: usize) {
        self.log.consume(bytes);
    }

    fn log_arrived(&mut self) -> bool {
        self.log.take_arrived()
    }

    fn debug_exit(&mut self, success: bool) -> Result<(), Error> {
        test_allocator::unfailing(|| {
            if self.debug_exit_refused {
                return Err(Error::NotPermitted);
            }
            self.verdicts.push(success);
            Ok(())
        })
    }

    fn free_frames(&self) -> u64 {
        test_allocator::unfailing(|| FREE_FRAMES - self.frames.len() as u64)
    }

    fn allocate_frame(&mut self) -> Result<u64, Error> {
        test_allocator::unfailing(|| {
            let limit = self.frame_limit.unwrap_or(FREE_FRAMES).min(FREE_FRAMES);
            if self.frames.len() as u64 >= limit {
                return Err(Error::OutOfMemory);
            }
            let frame = match self.free_list.pop() {
                Some(frame) => frame,
                None => {
                    let frame = self.next_frame;
                    self.next_frame += PAGE;
                    frame
                }
            };
            self.frames.insert(frame, Box::new([0; PAGE as usize]));
            Ok(frame)
        })
    }

    fn free_frame(&mut self, frame: u64) {
        test_allocator::unfailing(|| {
            let mapped = self
                .spaces
                .values()
                .flat_map(BTreeMap::values)
                .any(|p| p.borrowed.is_some_and(|(f, _)| f == frame));
            if mapped {
                self.anomalies
                    .push(format!("free_frame({frame:#x}) of a frame still mapped"));
            }
            if self.frames.remove(&frame).is_none() {
                self.anomalies
                    .push(format!("free_frame({frame:#x}) of a frame not handed out"));
                return;
            }
            self.free_list.push(frame);
        })
    }

    fn write_frame(&mut self, frame: u64, offset: usize, bytes: &[u8]) {
        match self.frames.get_mut(&frame) {
            Some(target) if offset + bytes.len() <= target.len() => {
                target[offset..offset + bytes.len()].copy_from_slice(bytes);
            }
            _ => self.anomalies.push(format!(
                "write_frame to {frame:#x}, not handed out or too long"
            )),
        }
    }

    fn copy_frame(&mut self, from: u64, to: u64) {
        test_allocator::unfailing(|| {
            let Some(bytes) = self.frames.get(&from).cloned() else {
                self.anomalies
                    .push(format!("copy_frame from {from:#x}, not handed out"));
                return;
            };
            match self.frames.get_mut(&to) {
                Some(target) => *target = bytes,
                None => self
                    .anomalies
                    .push(format!("copy_frame to {to:#x}, not handed out")),
            }
        })
    }

    fn find_room(&self, space: SpaceId, address: Option<u64>, length: u64) -> Result<u64, Error> {
        test_allocator::unfailing(|| {
            if !self.spaces.contains_key(&space) || length == 0 || !length.is_multiple_of(PAGE) {
                return Err(Error::InvalidArgument);
            }
            match address {
                Some(at) => {
                    let fits = at.is_multiple_of(PAGE)
                        && at >= PAGE
                        && at.checked_add(length).is_some_and(|end| end <= USER_END);
                    if !fits || !self.range_is_free(space, at, length) {
                        return Err(Error::BadAddressRange);
                    }
                    Ok(at)
                }
                None => self.place(space, length),
            }
        })
    }

    fn placed(&mut self, space: SpaceId, address: u64, length: u64) {
        test_allocator::unfailing(|| {
            self.hints
                .insert(space, crate::placement::next_hint(address, length));
        })
    }

    fn map_page(&mut self, space: SpaceId, address: u64, page: PageMapping) -> Result<u64, Error> {
        test_allocator::unfailing(|| {
            let kernel_ram = MEMORY_MAP.iter().any(|(start, end, kind)| {
                matches!(kind, MemoryKind::Usable | MemoryKind::KernelAndModules)
                    && (*start..*end).contains(&page.frame)
            });
            if kernel_ram && !self.frames.contains_key(&page.frame) {
                self.anomalies.push(format!(
                    "map_page of frame {:#x}: kernel RAM not handed out",
                    page.frame
                ));
            }
            if page.protection & protection::READ == 0 || page.protection & !protection::ALL != 0 {
                self.anomalies
                    .push(format!("map_page with protection {:#x}", page.protection));
            }
            let tables_before = self.table_bytes(space);
            let map = self.spaces.get_mut(&space).ok_or(Error::InvalidArgument)?;
            if !address.is_multiple_of(PAGE) || !(PAGE..USER_END).contains(&address) {
                return Err(Error::BadAddressRange);
            }
            if map.contains_key(&address) {
                return Err(Error::BadAddressRange);
            }
            map.insert(
                address,
                Page {
                    protection: page.protection,
                    bytes: None,
                    borrowed: Some((page.frame, page.cached)),
                },
            );
            Ok(self.table_bytes(space) - tables_before)
        })
    }

    fn remap_page(&mut self, space: SpaceId, address: u64, page: PageMapping) -> Result<(), Error> {
        test_allocator::unfailing(|| {
            let entry = self
                .spaces
                .get_mut(&space)
                .and_then(|map| map.get_mut(&address));
            match entry {
                Some(entry) if entry.borrowed.is_some() => {
                    entry.protection = page.protection;
                    entry.borrowed = Some((page.frame, page.cached));
                    Ok(())
                }
                _ => {
                    self.anomalies
                        .push(format!("remap_page at {address:#x}: no object page there"));
                    Err(Error::BadAddressRange)
                }
            }
        })
    }

    fn memory_map(&self) -> &MemoryMap {
        test_allocator::unfailing(|| &self.memory_map)
    }

    fn rsdp(&self) -> Option<u64> {
        test_allocator::unfailing(|| Some(RSDP))
    }

    fn timer_hz(&self) -> u32 {
        test_allocator::unfailing(|| TIMER_HZ)
    }

    fn set_io_ports(&mut self, space: SpaceId, ranges: &[crate::kcall::devices::IoRange]) {
        if !self.spaces.contains_key(&space) {
            self.anomalies
                .push(format!("set_io_ports on unknown space {space}"));
        }
        self.io_ports.insert(space, ranges.to_vec());
    }

    fn interrupt_route(&mut self, line: u8) -> Result<(), Error> {
        if self.no_interrupt_controller {
            return Err(Error::NotPermitted);
        }
        self.routed_lines.insert(line);
        self.unmasked_lines.insert(line);
        Ok(())
    }

    fn interrupt_unmask(&mut self, line: u8) {
        if !self.routed_lines.contains(&line) {
            self.anomalies
                .push(format!("unmask of line {line}, never routed"));
        }
        self.unmasked_lines.insert(line);
    }

    fn interrupt_mask(&mut self, line: u8) {
        self.unmasked_lines.remove(&line);
    }
}
