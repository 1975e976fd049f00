//! [`X86Machine`]: the [`Machine`] the portable kernel runs on, made of
//! x86_64 address spaces, thread contexts on kernel stacks, and the boot
//! archive. It moves bytes and page-table entries as the core asks; every
//! decision about them is the core's.

use alloc::vec::Vec;

use abi::process::{USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP};
use abi::{Error, PAGE_BYTES, PAGE_SIZE};
use kernel_core::boot_info::MemoryMap;
use kernel_core::kcall::devices::IoRange;
use kernel_core::machine::{
    CopyFault, LoadedProgram, Machine, Mapped, MessageCopy, PageMapping, UserStart,
};
use kernel_core::process::SpaceId;
use kernel_core::thread::ThreadId;
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::address_space::AddressSpace;
use super::fpu::{self, FpuState};
use super::kernel_stack::KernelStack;
use super::trap::TrapFrame;
use super::{cpu, gdt, ioapic, kernel_lock, memory, paging};

/// The user-mode RFLAGS of a new thread: IF plus the always-one bit 1.
const USER_RFLAGS: u64 = 0x202;

/// A thread's machine state: its kernel stack (traps and SYSCALLs run on
/// it) and where its registers are saved.
pub(super) struct Context {
    stack: KernelStack,
    /// The space to run in (0: the kernel's own tables, for the idle context).
    pub(super) space: SpaceId,
    /// The saved registers: at the top of the stack for user threads.
    pub(super) frame: *mut TrapFrame,
}

impl Context {
    fn new(space: SpaceId, frame: TrapFrame) -> Result<Self, Error> {
        let stack = KernelStack::allocate()?;
        // SAFETY: the area of a stack just mapped for this context alone.
        unsafe { stack.fpu_area().write(fpu::INITIAL) };
        let frame_pointer = (stack.top() - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
        // SAFETY: the frame fits at the top of the freshly mapped stack,
        // which is 16-byte aligned, as is TrapFrame's size.
        unsafe { frame_pointer.write(frame) };
        Ok(Context {
            stack,
            space,
            frame: frame_pointer,
        })
    }

    pub(super) fn stack_top(&self) -> u64 {
        self.stack.top()
    }
}

impl Context {
    /// Where this thread's x87/MMX/SSE state is kept while it does not run.
    pub(super) fn fpu_area(&self) -> *mut FpuState {
        self.stack.fpu_area()
    }
}

impl X86Machine {
    /// Gives CPU `cpu`'s x87/MMX/SSE registers to the thread whose saved
    /// state is at `area` (a live context's [`Context::fpu_area`]): the
    /// current owner's are saved first. Nothing to do when it already owns
    /// them, the common case of a thread that trapped and resumes.
    ///
    /// A CPU's owner is always the thread it runs (or none: the state is
    /// saved when the CPU goes idle, [`X86Machine::save_fpu`]), so a thread
    /// that runs nowhere has its state in memory, ready for any CPU.
    #[inline]
    pub(super) fn load_fpu(&mut self, cpu: usize, area: *mut FpuState) {
        let Some(owner) = self.fpu_owner.get_mut(cpu) else {
            return;
        };
        if area == *owner {
            return;
        }
        if !owner.is_null() {
            // SAFETY: the owner's context is alive (destroy_thread forgets
            // the owner first), so its area is mapped and used by nothing
            // else while this CPU's registers hold its state.
            fpu::save(unsafe { &mut **owner });
        }
        // SAFETY: `area` is a live context's own area (the caller's).
        fpu::restore(unsafe { &*area });
        *owner = area;
    }

    /// CPU `cpu` goes idle: its owner's x87/MMX/SSE state goes to memory,
    /// where another CPU that resumes the thread finds it.
    pub(super) fn save_fpu(&mut self, cpu: usize) {
        if let Some(owner) = self.fpu_owner.get_mut(cpu)
            && !owner.is_null()
        {
            // SAFETY: as in `load_fpu`.
            fpu::save(unsafe { &mut **owner });
            *owner = core::ptr::null_mut();
        }
    }
}

struct Space {
    tables: AddressSpace,
    /// Where MAP_ANONYMOUS looks for room next.
    next_map: u64,
    /// The I/O ports its threads may use (IO_PORT_GRANT).
    io_ports: PortRanges,
}

/// Port ranges, as the core grants them (at most `MAX_IO_RANGES`).
#[derive(Clone, Copy, Default)]
struct PortRanges {
    ranges: [IoRange; abi::kcall::MAX_IO_RANGES],
    count: usize,
}

impl PortRanges {
    fn of(ranges: &[IoRange]) -> Self {
        let mut this = PortRanges::default();
        for (slot, range) in this.ranges.iter_mut().zip(ranges) {
            *slot = *range;
            this.count += 1;
        }
        this
    }

    fn ranges(&self) -> &[IoRange] {
        &self.ranges[..self.count]
    }
}

/// The machine side of the kernel.
pub(super) struct X86Machine {
    kernel_pml4: PhysFrame,
    archive: image::BootArchive<'static>,
    /// Address spaces by id; slot 0 stays empty (id 0 is the kernel's own).
    spaces: Vec<Option<Space>>,
    /// Thread contexts by the thread's arena index, with its full id.
    contexts: Vec<Option<(u64, Context)>>,
    /// Contexts of threads that ended while their stack was in use; freed
    /// at the next trap, which runs on another stack.
    retired: Vec<Context>,
    qemu_exit: bool,
    /// By CPU, the saved-state area of the thread whose x87/MMX/SSE state
    /// that CPU holds (null: none's): where the registers go when another
    /// thread takes them. An area names its context while the context lives.
    fpu_owner: Vec<*mut FpuState>,
    /// The firmware's memory map (the core decides direct ranges with it).
    memory_map: MemoryMap,
    /// The ACPI RSDP's physical address, if the machine has one.
    rsdp: Option<u64>,
    /// By CPU, the space whose ports that CPU's TSS's I/O bitmap opens
    /// (`PORTS_STALE`: re-open at its next switch), and those ports.
    ports_space: Vec<SpaceId>,
    ports_open: Vec<PortRanges>,
}

/// A CPU's `ports_space` after a grant changed some space's ports: its
/// bitmap is rewritten at its next switch to a thread.
const PORTS_STALE: SpaceId = SpaceId::MAX;

impl X86Machine {
    /// A machine with no address spaces or threads yet.
    pub(super) fn new(
        kernel_pml4: PhysFrame,
        archive: image::BootArchive<'static>,
        qemu_exit: bool,
        memory_map: MemoryMap,
        rsdp: Option<u64>,
        cpus: usize,
    ) -> Self {
        X86Machine {
            kernel_pml4,
            archive,
            spaces: alloc::vec![None],
            contexts: Vec::new(),
            retired: Vec::new(),
            qemu_exit,
            fpu_owner: alloc::vec![core::ptr::null_mut(); cpus],
            memory_map,
            rsdp,
            ports_space: alloc::vec![0; cpus],
            ports_open: alloc::vec![PortRanges::default(); cpus],
        }
    }

    /// Frees the contexts retired by earlier traps, except those whose
    /// kernel stack a CPU may still stand on (`in_use`: a CPU resumed it,
    /// or runs its thread in user mode, whose next trap lands there).
    pub(super) fn free_retired(&mut self, in_use: impl Fn(u64) -> bool) {
        if !self.retired.is_empty() {
            self.retired.retain(|context| in_use(context.stack_top()));
        }
    }

    /// Loads, on CPU `cpu`, the page tables of `space`, or the kernel's own
    /// for the idle context (space 0).
    #[inline]
    pub(super) fn activate(&mut self, cpu: usize, space: SpaceId) {
        match self.space(space) {
            Ok(s) => {
                s.tables.activate();
                kernel_lock::loaded_on(cpu, space);
                // Drivers only: most spaces open no port, and then the
                // bitmap is left alone.
                let (ports_space, open) = (
                    self.ports_space.get(cpu).copied().unwrap_or(0),
                    self.ports_open.get(cpu).map_or(0, |o| o.count),
                );
                if space != ports_space && (s.io_ports.count != 0 || open != 0) {
                    let ports = s.io_ports;
                    self.open_ports(cpu, space, ports);
                }
            }
            Err(_) => {
                // SAFETY: the kernel's own tables map everything the idle loop touches.
                unsafe { paging::activate(self.kernel_pml4) };
                kernel_lock::loaded(0);
            }
        }
    }

    /// Makes CPU `cpu`'s TSS's I/O bitmap (the running CPU's own) open
    /// exactly `ports`, those of `space`.
    fn open_ports(&mut self, cpu: usize, space: SpaceId, ports: PortRanges) {
        let (Some(open), Some(open_space)) =
            (self.ports_open.get_mut(cpu), self.ports_space.get_mut(cpu))
        else {
            return;
        };
        for range in open.ranges() {
            gdt::set_port_access(range.first, range.count, false);
        }
        for range in ports.ranges() {
            gdt::set_port_access(range.first, range.count, true);
        }
        *open_space = space;
        *open = ports;
    }
}

/// The CPU running this (the one holding the kernel lock).
fn this_cpu() -> usize {
    super::syscall::cpu_index() as usize
}

/// The first (up to) 8 bytes of a message at `from`, page by page: the
/// rare case of [`Machine::copy_between`] where they span two pieces.
#[cold]
fn read_head(
    tables: &AddressSpace,
    from: u64,
    length: usize,
    head: &mut [u8; 8],
) -> Result<(), ()> {
    for (index, byte) in head.iter_mut().enumerate().take(length.min(8)) {
        let physical = tables.translate(from + index as u64, false).ok_or(())?;
        // SAFETY: a mapped, readable user byte, through the direct map.
        *byte = unsafe { core::ptr::read(memory::direct_map(physical) as *const u8) };
    }
    Ok(())
}

fn page_flags(protection: u32) -> PageTableFlags {
    let mut flags = PageTableFlags::empty();
    if protection & abi::kcall::protection::WRITE != 0 {
        flags |= PageTableFlags::WRITABLE;
    }
    if protection & abi::kcall::protection::EXECUTE == 0 {
        flags |= PageTableFlags::NO_EXECUTE;
    }
    flags
}

/// The entry flags of a memory object's page: its protection, and
/// uncached (PCD and PWT: UC under the default PAT) for device memory.
fn object_page_flags(page: PageMapping) -> PageTableFlags {
    let mut flags = page_flags(page.protection);
    if !page.cached {
        flags |= PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH;
    }
    flags
}

/// The 4 KiB frame at `physical`, or BAD_ADDRESS_RANGE when it is not a
/// page-aligned physical address.
fn frame_at(physical: u64) -> Result<PhysFrame, Error> {
    PhysAddr::try_new(physical)
        .ok()
        .and_then(|address| PhysFrame::from_start_address(address).ok())
        .ok_or(Error::BadAddressRange)
}

impl X86Machine {
    /// The space with id `space` (its index: one bounds check on the
    /// IPC path; slot 0, the kernel's own, is always empty).
    #[inline]
    fn space(&self, space: SpaceId) -> Result<&Space, Error> {
        self.spaces
            .get(space as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::BadBuffer)
    }

    fn space_mut(&mut self, space: SpaceId) -> Result<&mut Space, Error> {
        self.spaces
            .get_mut(space as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidArgument)
    }

    /// The context of `thread`, if it has one.
    pub(super) fn context(&self, thread: ThreadId) -> Option<&Context> {
        match self.contexts.get(thread.index() as usize) {
            Some(Some((raw, context))) if *raw == thread.to_raw() => Some(context),
            _ => None,
        }
    }

    /// Calls `each(physical, offset, length)` for every page piece of a user range.
    fn for_each_page(
        &self,
        space: SpaceId,
        address: u64,
        length: usize,
        write: bool,
        mut each: impl FnMut(u64, usize, usize),
    ) -> Result<(), Error> {
        let tables = &self.space(space)?.tables;
        let mut done = 0usize;
        while done < length {
            let at = address.checked_add(done as u64).ok_or(Error::BadBuffer)?;
            let chunk = (PAGE_SIZE - (at % PAGE_BYTES) as usize).min(length - done);
            let physical = tables.translate(at, write).ok_or(Error::BadBuffer)?;
            each(physical, done, chunk);
            done += chunk;
        }
        Ok(())
    }

    /// Maps zeroed pages over the range; the bytes of page tables this
    /// allocated. On failure nothing of the range stays mapped (and the
    /// tables it emptied are freed).
    fn map_range(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        flags: PageTableFlags,
    ) -> Result<u64, Error> {
        let tables = &mut self.space_mut(space)?.tables;
        let made_before = tables.tables_made();
        let mut at = address;
        while at < address + length {
            if let Err(error) = tables.map_zeroed(at, flags) {
                // Another CPU's thread may have touched the new pages.
                kernel_lock::stall_others(space);
                tables.unmap_range(address, at);
                return Err(error);
            }
            at += PAGE_BYTES;
        }
        Ok((tables.tables_made() - made_before) * PAGE_BYTES)
    }

    fn range_is_free(&self, space: SpaceId, address: u64, length: u64) -> Result<bool, Error> {
        let end = address.checked_add(length).ok_or(Error::BadAddressRange)?;
        Ok(self
            .space(space)?
            .tables
            .first_mapped(address, end)
            .is_none())
    }
}

impl Machine for X86Machine {
    fn check_user(
        &self,
        space: SpaceId,
        address: u64,
        length: usize,
        write: bool,
    ) -> Result<(), Error> {
        // Most messages lie in one page: one walk, no loop.
        if length > 0 && address % PAGE_BYTES + length as u64 <= PAGE_BYTES {
            let tables = &self.space(space)?.tables;
            return tables
                .translate(address, write)
                .map(|_| ())
                .ok_or(Error::BadBuffer);
        }
        self.for_each_page(space, address, length, write, |_, _, _| {})
    }

    fn read_user(&self, space: SpaceId, address: u64, buffer: &mut [u8]) -> Result<(), Error> {
        self.for_each_page(
            space,
            address,
            buffer.len(),
            false,
            |physical, offset, length| {
                // SAFETY: `physical..+length` is a mapped user page piece, reached
                // through the direct map; the destination is our own buffer.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        memory::direct_map(physical) as *const u8,
                        buffer.as_mut_ptr().add(offset),
                        length,
                    )
                }
            },
        )
    }

    fn write_user(&mut self, space: SpaceId, address: u64, data: &[u8]) -> Result<(), Error> {
        self.for_each_page(
            space,
            address,
            data.len(),
            true,
            |physical, offset, length| {
                // SAFETY: as in read_user, in the other direction; the page is
                // writable user memory.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        data.as_ptr().add(offset),
                        memory::direct_map(physical) as *mut u8,
                        length,
                    )
                }
            },
        )
    }

    #[inline(always)]
    fn copy_between(
        &mut self,
        from_space: SpaceId,
        from: u64,
        to_space: SpaceId,
        to: u64,
        length: usize,
        head: &mut [u8; 8],
    ) -> Result<(), CopyFault> {
        let source = &self
            .space(from_space)
            .map_err(|_| CopyFault::Source)?
            .tables;
        let destination = &self
            .space(to_space)
            .map_err(|_| CopyFault::Destination)?
            .tables;
        let mut done = 0usize;
        while done < length {
            let (s, d) = (from + done as u64, to + done as u64);
            let chunk = (PAGE_SIZE - (s % PAGE_BYTES) as usize)
                .min(PAGE_SIZE - (d % PAGE_BYTES) as usize)
                .min(length - done);
            let s = source.translate(s, false).ok_or(CopyFault::Source)?;
            let d = destination
                .translate(d, true)
                .ok_or(CopyFault::Destination)?;
            let (s, d) = (
                memory::direct_map(s) as *const u8,
                memory::direct_map(d) as *mut u8,
            );
            if done == 0 {
                if chunk >= 8 {
                    // SAFETY: `s` points at `chunk >= 8` readable bytes
                    // (translated just now, through the direct map).
                    *head = unsafe { core::ptr::read_unaligned(s as *const [u8; 8]) };
                } else {
                    // The first 8 bytes span two pages of either buffer.
                    read_head(source, from, length, head).map_err(|_| CopyFault::Source)?;
                }
            }
            // SAFETY: both pieces are mapped user memory of `chunk` bytes,
            // reached through the direct map; `copy` allows them to overlap
            // (a process sending to itself).
            unsafe { core::ptr::copy(s, d, chunk) };
            done += chunk;
        }
        Ok(())
    }

    #[inline(always)]
    fn check_and_copy(&mut self, copy: MessageCopy, head: &mut [u8; 8]) -> Result<(), CopyFault> {
        // The common message: the sender's buffer and the receiver's in
        // one page each. One walk of the sender's page serves the check
        // (writable) and the copy's source.
        let one_page =
            |address: u64, bytes: usize| address % PAGE_BYTES + bytes as u64 <= PAGE_BYTES;
        let MessageCopy {
            from_space,
            from,
            checked,
            to_space,
            to,
            length,
        } = copy;
        if checked == 0 || length > checked || !one_page(from, checked) || !one_page(to, length) {
            return kernel_core::machine::check_then_copy(self, copy, head);
        }
        let source = self.space(from_space).map_err(|_| CopyFault::Source)?;
        let s = source
            .tables
            .translate(from, true)
            .ok_or(CopyFault::Source)?;
        if length == 0 {
            return Ok(());
        }
        let destination = self.space(to_space).map_err(|_| CopyFault::Destination)?;
        let d = destination
            .tables
            .translate(to, true)
            .ok_or(CopyFault::Destination)?;
        let (s, d) = (
            memory::direct_map(s) as *const u8,
            memory::direct_map(d) as *mut u8,
        );
        if length >= 8 {
            // SAFETY: `s` points at `length >= 8` readable bytes of one
            // mapped user page (translated just now, through the direct map).
            *head = unsafe { core::ptr::read_unaligned(s as *const [u8; 8]) };
        } else {
            // SAFETY: as above, `length < 8` bytes; `head` is ours.
            unsafe { core::ptr::copy_nonoverlapping(s, head.as_mut_ptr(), length) };
        }
        // SAFETY: both pieces are mapped user memory of `length` bytes within
        // one page each, reached through the direct map; `copy_bytes` allows
        // them to overlap (a process sending to itself).
        unsafe { memory::copy_bytes(s, d, length) };
        Ok(())
    }

    fn create_space(&mut self) -> Result<SpaceId, Error> {
        self.spaces.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        let tables = AddressSpace::new(self.kernel_pml4)?;
        let space = Some(Space {
            tables,
            next_map: USER_MAP_BASE,
            io_ports: PortRanges::default(),
        });
        let free = self.spaces.iter().skip(1).position(Option::is_none);
        let index = match free {
            Some(offset) => {
                self.spaces[offset + 1] = space;
                offset + 1
            }
            None => {
                self.spaces.push(space);
                self.spaces.len() - 1
            }
        };
        Ok(index as SpaceId)
    }

    fn destroy_space(&mut self, space: SpaceId) {
        kernel_lock::stall_others(space);
        if let Some(space) = self.spaces.get_mut(space as usize).and_then(Option::take) {
            // If we run on it, move to the kernel's own tables first; any
            // other space stays loaded (a thread of it may run on after
            // this trap without a switch).
            if space.tables.is_loaded() {
                // SAFETY: the kernel tables map everything the kernel uses.
                unsafe { paging::activate(self.kernel_pml4) };
                kernel_lock::loaded(0);
            }
            space.tables.destroy();
        }
        let cpu = this_cpu();
        if self.ports_space.get(cpu) == Some(&space) {
            self.open_ports(cpu, 0, PortRanges::default());
        }
        // Another CPU's bitmap that opens its ports closes them at its next
        // switch (the stall above took that CPU out of the space).
        for other in self.ports_space.iter_mut() {
            if *other == space {
                *other = PORTS_STALE;
            }
        }
    }

    fn set_io_ports(&mut self, space: SpaceId, ranges: &[IoRange]) {
        let ports = PortRanges::of(ranges);
        if let Ok(s) = self.space_mut(space) {
            s.io_ports = ports;
            let cpu = this_cpu();
            if self.ports_space.get(cpu) == Some(&space) || kernel_lock::loaded_here() == space {
                self.open_ports(cpu, space, ports);
            }
            // Other CPUs take the change at their next switch (a grant goes
            // to a caller blocked in its call, which resumes by one).
            for (other, open_space) in self.ports_space.iter_mut().enumerate() {
                if other != cpu && *open_space == space {
                    *open_space = PORTS_STALE;
                }
            }
        }
    }

    fn interrupt_route(&mut self, line: u8) -> Result<(), Error> {
        if ioapic::route(line) {
            Ok(())
        } else {
            Err(Error::NotPermitted)
        }
    }

    fn interrupt_unmask(&mut self, line: u8) {
        ioapic::set_masked(line, false);
    }

    fn interrupt_mask(&mut self, line: u8) {
        ioapic::set_masked(line, true);
    }

    fn map_anonymous(
        &mut self,
        space: SpaceId,
        address: Option<u64>,
        length: u64,
        protection: u32,
    ) -> Result<Mapped, Error> {
        let flags = page_flags(protection);
        let Some(address) = address else {
            let s = self.space(space)?;
            let address = kernel_core::placement::place(s.next_map, length, |start, end| {
                s.tables.first_mapped(start, end)
            })
            .ok_or(Error::BadAddressRange)?;
            let table_bytes = self.map_range(space, address, length, flags)?;
            self.space_mut(space)?.next_map = kernel_core::placement::next_hint(address, length);
            return Ok(Mapped {
                address,
                table_bytes,
            });
        };
        if !self.range_is_free(space, address, length)? {
            return Err(Error::BadAddressRange);
        }
        let table_bytes = self.map_range(space, address, length, flags)?;
        Ok(Mapped {
            address,
            table_bytes,
        })
    }

    fn unmap(&mut self, space: SpaceId, address: u64, length: u64) -> Result<u64, Error> {
        let end = address.checked_add(length).ok_or(Error::BadAddressRange)?;
        let s = self.space_mut(space)?;
        kernel_lock::stall_others(space);
        Ok(s.tables.unmap_range(address, end))
    }

    fn protect(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        if self.range_is_free(space, address, PAGE_BYTES)?
            || !(0..length / PAGE_BYTES).all(|i| {
                self.space(space).is_ok_and(|s| {
                    s.tables
                        .translate(address + i * PAGE_BYTES, false)
                        .is_some()
                })
            })
        {
            return Err(Error::BadAddressRange);
        }
        let flags = page_flags(protection);
        let tables = &mut self.space_mut(space)?.tables;
        kernel_lock::stall_others(space);
        for i in 0..length / PAGE_BYTES {
            tables.set_flags(address + i * PAGE_BYTES, flags)?;
        }
        Ok(())
    }

    fn load_program(
        &mut self,
        space: SpaceId,
        name: &[u8],
        arguments: &[u8],
    ) -> Result<LoadedProgram, Error> {
        let name = core::str::from_utf8(name).map_err(|_| Error::InvalidArgument)?;
        let image = self.archive.find(name).ok_or(Error::InvalidArgument)?;
        let plan = image::program::plan(image)?;
        let mut memory_bytes = 0;
        for segment in &plan.segments[..plan.segment_count] {
            let first = segment.address & !(PAGE_BYTES - 1);
            let end = (segment.address + segment.memory_size).next_multiple_of(PAGE_BYTES);
            let mut flags = PageTableFlags::empty();
            if segment.writable {
                flags |= PageTableFlags::WRITABLE;
            }
            if !segment.executable {
                flags |= PageTableFlags::NO_EXECUTE;
            }
            let start = segment.file_offset as usize;
            let bytes = image
                .get(start..start + segment.file_size as usize)
                .ok_or(Error::InvalidArgument)?;
            // Each page mapped with its final flags, the file's bytes
            // copied into its frame: no second walk to change the flags.
            // A failure leaves pages mapped; the kernel then discards the
            // whole space.
            let tables = &mut self.space_mut(space)?.tables;
            let made_before = tables.tables_made();
            let mut page = first;
            while page < end {
                let frame = tables.map_zeroed(page, flags)?;
                // The part of the file that lands in this page.
                let from = page.max(segment.address);
                let to = (page + PAGE_BYTES).min(segment.address + segment.file_size);
                if from < to {
                    let part =
                        &bytes[(from - segment.address) as usize..(to - segment.address) as usize];
                    let physical = frame.start_address().as_u64() + (from - page);
                    // SAFETY: a fresh frame of this space, reached through
                    // the direct map; `part` ends within the page.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            part.as_ptr(),
                            memory::direct_map(physical) as *mut u8,
                            part.len(),
                        );
                    }
                }
                page += PAGE_BYTES;
            }
            memory_bytes += (tables.tables_made() - made_before) * PAGE_BYTES + (end - first);
        }
        let stack_bottom = USER_STACK_TOP - USER_STACK_SIZE;
        memory_bytes += self.map_range(
            space,
            stack_bottom,
            USER_STACK_SIZE,
            PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
        )?;
        memory_bytes += USER_STACK_SIZE;
        let arguments_at = (USER_STACK_TOP - arguments.len() as u64) & !0xf;
        self.write_user(space, arguments_at, arguments)?;
        Ok(LoadedProgram {
            start: UserStart {
                entry: plan.entry,
                stack_pointer: arguments_at - 16,
                arg0: arguments_at,
                arg1: arguments.len() as u64,
                arg2: 0,
            },
            memory_bytes,
        })
    }

    fn read_archive(
        &self,
        name: &[u8],
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<(u64, usize), Error> {
        let name = core::str::from_utf8(name).map_err(|_| Error::InvalidArgument)?;
        let file = self.archive.find(name).ok_or(Error::InvalidArgument)?;
        Ok(kernel_core::machine::read_file_window(file, offset, buffer))
    }

    fn create_thread(
        &mut self,
        thread: ThreadId,
        space: SpaceId,
        start: UserStart,
    ) -> Result<(), Error> {
        let frame = TrapFrame {
            rip: start.entry,
            cs: u64::from(gdt::USER_CODE.0),
            rflags: USER_RFLAGS,
            rsp: start.stack_pointer,
            ss: u64::from(gdt::USER_DATA.0),
            rdi: start.arg0,
            rsi: start.arg1,
            rdx: start.arg2,
            ..TrapFrame::default()
        };
        let index = thread.index() as usize;
        if self.contexts.len() <= index {
            self.contexts
                .try_reserve(index + 1 - self.contexts.len())
                .map_err(|_| Error::OutOfMemory)?;
            self.contexts.resize_with(index + 1, || None);
        }
        // Room to retire every context within one trap (a process's death
        // ends all its threads), beside those kept while a CPU stands on
        // them (one a CPU), so destroy_thread never allocates.
        self.retired
            .try_reserve(self.contexts.len() + self.fpu_owner.len())
            .map_err(|_| Error::OutOfMemory)?;
        let context = Context::new(space, frame)?;
        let previous = self.contexts[index].replace((thread.to_raw(), context));
        if let Some((_, context)) = previous {
            self.retired.push(context);
        }
        Ok(())
    }

    fn user_registers(&self, thread: ThreadId) -> Option<abi::upcall::UserRegisters> {
        let context = self.context(thread)?;
        // SAFETY: a user context's saved frame, on its own kernel stack; the
        // kernel lock is held and no reference to the frame is alive (the
        // trap path only copies values out of it, see `trap_entry_dispatch`).
        let f = unsafe { &*context.frame };
        Some(abi::upcall::UserRegisters {
            rax: f.rax,
            rbx: f.rbx,
            rcx: f.rcx,
            rdx: f.rdx,
            rsi: f.rsi,
            rdi: f.rdi,
            rbp: f.rbp,
            r8: f.r8,
            r9: f.r9,
            r10: f.r10,
            r11: f.r11,
            r12: f.r12,
            r13: f.r13,
            r14: f.r14,
            r15: f.r15,
            rip: f.rip,
            rflags: f.rflags,
            rsp: f.rsp,
        })
    }

    fn set_user_registers(&mut self, thread: ThreadId, r: &abi::upcall::UserRegisters) {
        let Some(context) = self.context(thread) else {
            return;
        };
        // SAFETY: as in `user_registers`; this is the only reference.
        let f = unsafe { &mut *context.frame };
        (f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp) =
            (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp);
        (f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15) =
            (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
        // The core checked RIP and RSP (user addresses) and the flags
        // (user bits, IF set); the segments are always the user's.
        (f.rip, f.rflags, f.rsp) = (r.rip, r.rflags, r.rsp);
        f.cs = u64::from(gdt::USER_CODE.0);
        f.ss = u64::from(gdt::USER_DATA.0);
        // Not a SYSCALL frame any more: IRETQ restores RCX and R11 too.
        f.vector = super::trap::RESTORED_VECTOR;
        f.error_code = 0;
    }

    fn destroy_thread(&mut self, thread: ThreadId) {
        let slot = self.contexts.get_mut(thread.index() as usize);
        if let Some(slot) = slot
            && slot
                .as_ref()
                .is_some_and(|(raw, _)| *raw == thread.to_raw())
            && let Some((_, context)) = slot.take()
        {
            for owner in self.fpu_owner.iter_mut() {
                if *owner == context.fpu_area() {
                    // Its state dies with it; nothing is saved.
                    *owner = core::ptr::null_mut();
                }
            }
            self.retired.push(context);
        }
    }

    fn console_write(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            crate::console::write_user(chunk.valid().as_bytes());
            if !chunk.invalid().is_empty() {
                crate::console::write_user("\u{fffd}".as_bytes());
            }
        }
    }

    fn log_take(&mut self) {
        crate::console::log_take();
    }

    fn log_give_back(&mut self) {
        crate::console::log_give_back();
    }

    fn log_peek(&mut self, out: &mut [u8]) -> kernel_core::log::Peeked {
        crate::console::log_peek(out)
    }

    fn log_consume(&mut self, bytes: usize) {
        crate::console::log_consume(bytes);
    }

    fn log_arrived(&mut self) -> bool {
        crate::console::log_arrived()
    }

    fn debug_exit(&mut self, success: bool) -> Result<(), Error> {
        if !self.qemu_exit {
            return Err(Error::NotPermitted);
        }
        // Lines the console server has not read yet go out first.
        crate::console::log_give_back();
        super::smp::report_dispatches();
        cpu::stop(success)
    }

    fn timer_hz(&self) -> u32 {
        super::lapic::timer_hz()
    }

    fn allocate_frame(&mut self) -> Result<u64, Error> {
        x86_64::structures::paging::FrameAllocator::allocate_frame(&mut memory::ZeroedFrames)
            .map(|frame| frame.start_address().as_u64())
            .ok_or(Error::OutOfMemory)
    }

    fn free_frame(&mut self, frame: u64) {
        if let Ok(frame) = frame_at(frame) {
            memory::free_frame(frame);
        }
    }

    fn write_frame(&mut self, frame: u64, offset: usize, bytes: &[u8]) {
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > PAGE_SIZE)
        {
            return;
        }
        // SAFETY: the frame is one the core allocated for a memory object
        // (RAM, reached through the direct map), and the bytes stay inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (memory::direct_map(frame) as *mut u8).add(offset),
                bytes.len(),
            )
        }
    }

    fn copy_frame(&mut self, from: u64, to: u64) {
        // SAFETY: both are frames of memory objects the core holds (RAM,
        // reached through the direct map), distinct, each a whole page.
        unsafe {
            core::ptr::copy_nonoverlapping(
                memory::direct_map(from) as *const u8,
                memory::direct_map(to) as *mut u8,
                PAGE_SIZE,
            )
        }
    }

    fn find_room(&self, space: SpaceId, address: Option<u64>, length: u64) -> Result<u64, Error> {
        match address {
            Some(address) if self.range_is_free(space, address, length)? => Ok(address),
            Some(_) => Err(Error::BadAddressRange),
            None => {
                let s = self.space(space)?;
                kernel_core::placement::place(s.next_map, length, |start, end| {
                    s.tables.first_mapped(start, end)
                })
                .ok_or(Error::BadAddressRange)
            }
        }
    }

    fn placed(&mut self, space: SpaceId, address: u64, length: u64) {
        if let Ok(s) = self.space_mut(space) {
            s.next_map = kernel_core::placement::next_hint(address, length);
        }
    }

    fn map_page(&mut self, space: SpaceId, address: u64, page: PageMapping) -> Result<u64, Error> {
        let frame = frame_at(page.frame)?;
        let flags = object_page_flags(page);
        self.space_mut(space)?
            .tables
            .map_frame(address, frame, flags)
    }

    fn remap_page(&mut self, space: SpaceId, address: u64, page: PageMapping) -> Result<(), Error> {
        let frame = frame_at(page.frame)?;
        let flags = object_page_flags(page);
        let s = self.space_mut(space)?;
        kernel_lock::stall_others(space);
        s.tables.remap_frame(address, frame, flags)
    }

    fn memory_map(&self) -> &MemoryMap {
        &self.memory_map
    }

    fn rsdp(&self) -> Option<u64> {
        self.rsdp
    }

    fn dispatches(&self, cpu: usize) -> u64 {
        super::smp::dispatches(cpu)
    }

    fn free_frames(&self) -> u64 {
        // A retired context's stack frames count as free already: with
        // several CPUs one may wait (a CPU still stands on it) and be
        // freed at any later entry, which COUNTERS must not show.
        let retired = self.retired.len() as u64 * (super::kernel_stack::STACK_BYTES / PAGE_BYTES);
        memory::FRAMES
            .lock()
            .as_ref()
            .map_or(0, |f| f.free_frames())
            + retired
    }
}

/// The idle context: a ring-0 loop that waits for interrupts.
pub(super) fn idle_context() -> Result<Context, Error> {
    let frame = TrapFrame {
        rip: cpu::idle_loop as *const () as u64,
        cs: u64::from(gdt::KERNEL_CODE.0),
        rflags: USER_RFLAGS,
        ss: u64::from(gdt::KERNEL_DATA.0),
        ..TrapFrame::default()
    };
    let context = Context::new(0, frame)?;
    // The loop runs on the same stack; its first frame is consumed by the
    // IRETQ that starts it, so the stack may start right at the top.
    // SAFETY: the frame was just written at the top of the idle stack.
    unsafe { (*context.frame).rsp = context.stack_top() };
    Ok(context)
}
