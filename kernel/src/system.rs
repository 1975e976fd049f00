//! The running system: the portable `Kernel` joined to this machine. It
//! implements `Machine` with x86_64 address spaces and thread contexts,
//! loads programs from the boot archive, and turns every trap into a call
//! on the kernel followed by a switch to whatever thread runs next.

use alloc::vec::Vec;

use abi::process::{USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP};
use abi::{Error, TrapArgs};
use kernel::machine::{CopyFault, LoadedProgram, Machine, UserStart};
use kernel::process::SpaceId;
use kernel::state::Kernel;
use kernel::thread::ThreadId;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use crate::arch::x86_64::address_space::AddressSpace;
use crate::arch::x86_64::kernel_stack::KernelStack;
use crate::arch::x86_64::trap::TrapFrame;
use crate::arch::x86_64::{gdt, syscall};
use crate::memory;

/// The user-mode RFLAGS of a new thread: IF plus the always-one bit 1.
const USER_RFLAGS: u64 = 0x202;

/// A thread's machine state: its kernel stack (traps and SYSCALLs run on
/// it) and where its registers are saved.
struct Context {
    stack: KernelStack,
    /// The space to run in (0: the kernel's own tables, for the idle context).
    space: SpaceId,
    /// The saved registers: at the top of the stack for user threads.
    frame: *mut TrapFrame,
}

impl Context {
    fn new(space: SpaceId, frame: TrapFrame) -> Result<Self, Error> {
        let stack = KernelStack::allocate()?;
        let frame_pointer = (stack.top() - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
        // SAFETY: the frame fits at the top of the freshly mapped stack,
        // which is page-aligned, as is TrapFrame's size to 16 bytes.
        unsafe { frame_pointer.write(frame) };
        Ok(Context {
            stack,
            space,
            frame: frame_pointer,
        })
    }

    fn stack_top(&self) -> u64 {
        self.stack.top()
    }
}

struct Space {
    tables: AddressSpace,
    /// Where MAP_ANONYMOUS looks for room next.
    next_map: u64,
}

/// The machine side of the kernel.
pub struct ArchMachine {
    kernel_pml4: PhysFrame,
    archive: image::BootArchive<'static>,
    /// Address spaces; a space's id is its index + 1 (0 is the kernel's own).
    spaces: Vec<Option<Space>>,
    /// Thread contexts by the thread's arena index, with its full id.
    contexts: Vec<Option<(u64, Context)>>,
    /// Contexts of threads that ended while their stack was in use; freed
    /// at the next trap, which runs on another stack.
    retired: Vec<Context>,
    qemu_exit: bool,
}

/// The kernel and its machine, behind one lock (taken only with interrupts off).
pub struct System {
    kernel: Kernel,
    machine: ArchMachine,
    idle: Context,
    /// The context whose registers the current trap saved.
    running: Option<ThreadId>,
    /// The first process; its exit status is the system's verdict.
    init: kernel::process::ProcessId,
    init_status: Option<u32>,
}

// SAFETY: the raw frame pointers point into kernel stacks owned by the
// system itself; it is only touched under SYSTEM's lock, with interrupts off.
unsafe impl Send for System {}

static SYSTEM: spin::Mutex<Option<System>> = spin::Mutex::new(None);

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

impl ArchMachine {
    fn space(&self, space: SpaceId) -> Result<&Space, Error> {
        let index = usize::try_from(space)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .ok_or(Error::BadBuffer)?;
        self.spaces
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(Error::BadBuffer)
    }

    fn space_mut(&mut self, space: SpaceId) -> Result<&mut Space, Error> {
        let index = usize::try_from(space)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .ok_or(Error::InvalidArgument)?;
        self.spaces
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidArgument)
    }

    /// The context of `thread`, if it has one.
    fn context(&self, thread: ThreadId) -> Option<&Context> {
        match self.contexts.get(thread.index() as usize) {
            Some(Some((raw, context))) if *raw == thread.to_raw() => Some(context),
            _ => None,
        }
    }

    fn context_mut(&mut self, thread: ThreadId) -> Option<&mut Context> {
        match self.contexts.get_mut(thread.index() as usize) {
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
            let chunk = (4096 - (at % 4096) as usize).min(length - done);
            let physical = tables.translate(at, write).ok_or(Error::BadBuffer)?;
            each(physical, done, chunk);
            done += chunk;
        }
        Ok(())
    }

    fn map_range(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        flags: PageTableFlags,
    ) -> Result<(), Error> {
        let tables = &mut self.space_mut(space)?.tables;
        let mut at = address;
        while at < address + length {
            if let Err(error) = tables.map_zeroed(at, flags) {
                tables.unmap_range(address, at);
                return Err(error);
            }
            at += 4096;
        }
        Ok(())
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

impl Machine for ArchMachine {
    fn check_user(
        &self,
        space: SpaceId,
        address: u64,
        length: usize,
        write: bool,
    ) -> Result<(), Error> {
        // Most messages lie in one page: one walk, no loop.
        if length > 0 && (address & 0xfff) + length as u64 <= 4096 {
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
            let chunk = (4096 - (s % 4096) as usize)
                .min(4096 - (d % 4096) as usize)
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

    fn create_space(&mut self) -> Result<SpaceId, Error> {
        self.spaces.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        let tables = AddressSpace::new(self.kernel_pml4)?;
        let space = Some(Space {
            tables,
            next_map: USER_MAP_BASE,
        });
        let index = match self.spaces.iter().position(Option::is_none) {
            Some(index) => {
                self.spaces[index] = space;
                index
            }
            None => {
                self.spaces.push(space);
                self.spaces.len() - 1
            }
        };
        Ok(index as SpaceId + 1)
    }

    fn destroy_space(&mut self, space: SpaceId) {
        let index = usize::try_from(space).ok().and_then(|s| s.checked_sub(1));
        if let Some(space) = index
            .and_then(|i| self.spaces.get_mut(i))
            .and_then(Option::take)
        {
            // We may be running on it: move to the kernel's own tables first.
            // SAFETY: the kernel tables map everything the kernel uses.
            unsafe { crate::arch::x86_64::paging::activate(self.kernel_pml4) };
            space.tables.destroy();
        }
    }

    fn map_anonymous(
        &mut self,
        space: SpaceId,
        address: Option<u64>,
        length: u64,
        protection: u32,
    ) -> Result<u64, Error> {
        let flags = page_flags(protection);
        let Some(address) = address else {
            let s = self.space(space)?;
            let address = kernel::placement::place(s.next_map, length, |start, end| {
                s.tables.first_mapped(start, end)
            })
            .ok_or(Error::BadAddressRange)?;
            self.map_range(space, address, length, flags)?;
            self.space_mut(space)?.next_map = kernel::placement::next_hint(address, length);
            return Ok(address);
        };
        if !self.range_is_free(space, address, length)? {
            return Err(Error::BadAddressRange);
        }
        self.map_range(space, address, length, flags)?;
        Ok(address)
    }

    fn unmap(&mut self, space: SpaceId, address: u64, length: u64) -> Result<u64, Error> {
        let end = address.checked_add(length).ok_or(Error::BadAddressRange)?;
        Ok(self.space_mut(space)?.tables.unmap_range(address, end))
    }

    fn protect(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error> {
        if self.range_is_free(space, address, 4096)?
            || !(0..length / 4096).all(|i| {
                self.space(space)
                    .is_ok_and(|s| s.tables.translate(address + i * 4096, false).is_some())
            })
        {
            return Err(Error::BadAddressRange);
        }
        let flags = page_flags(protection);
        let tables = &mut self.space_mut(space)?.tables;
        for i in 0..length / 4096 {
            tables.set_flags(address + i * 4096, flags)?;
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
        let plan = kernel::program::plan(image)?;
        let mut memory_bytes = 0;
        for segment in &plan.segments[..plan.segment_count] {
            let first = segment.address & !0xfff;
            let end = (segment.address + segment.memory_size).next_multiple_of(4096);
            let mut flags = PageTableFlags::empty();
            if segment.writable {
                flags |= PageTableFlags::WRITABLE;
            }
            if !segment.executable {
                flags |= PageTableFlags::NO_EXECUTE;
            }
            // Map writable first to copy the file bytes, then set the final flags.
            self.map_range(space, first, end - first, PageTableFlags::WRITABLE)?;
            let start = segment.file_offset as usize;
            let bytes = image
                .get(start..start + segment.file_size as usize)
                .ok_or(Error::InvalidArgument)?;
            self.write_user(space, segment.address, bytes)?;
            let tables = &mut self.space_mut(space)?.tables;
            let mut page = first;
            while page < end {
                tables.set_flags(page, flags)?;
                page += 4096;
            }
            memory_bytes += end - first;
        }
        let stack_bottom = USER_STACK_TOP - USER_STACK_SIZE;
        self.map_range(
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
        Ok(kernel::machine::read_file_window(file, offset, buffer))
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
        // ends all its threads), so destroy_thread never allocates.
        self.retired
            .try_reserve(self.contexts.len())
            .map_err(|_| Error::OutOfMemory)?;
        let context = Context::new(space, frame)?;
        let previous = self.contexts[index].replace((thread.to_raw(), context));
        if let Some((_, context)) = previous {
            self.retired.push(context);
        }
        Ok(())
    }

    fn destroy_thread(&mut self, thread: ThreadId) {
        let slot = self.contexts.get_mut(thread.index() as usize);
        if let Some(slot) = slot
            && slot
                .as_ref()
                .is_some_and(|(raw, _)| *raw == thread.to_raw())
            && let Some((_, context)) = slot.take()
        {
            self.retired.push(context);
        }
    }

    fn console_write(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            kprint!("{}", chunk.valid());
            if !chunk.invalid().is_empty() {
                kprint!("\u{fffd}");
            }
        }
    }

    fn debug_exit(&mut self, success: bool) -> Result<(), Error> {
        if !self.qemu_exit {
            return Err(Error::NotPermitted);
        }
        crate::start::stop(success)
    }

    fn free_frames(&self) -> u64 {
        memory::FRAMES
            .lock()
            .as_ref()
            .map_or(0, |f| f.free_frames())
    }
}

/// The idle context: a ring-0 loop that waits for interrupts.
fn idle_context() -> Result<Context, Error> {
    let frame = TrapFrame {
        rip: crate::arch::x86_64::cpu::idle_loop as *const () as u64,
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

/// Starts user space with the archive's `init` program. Returns only if
/// there is none (or it cannot start).
pub fn start_user_space(
    kernel_pml4: PhysFrame,
    archive: image::BootArchive<'static>,
    init: &str,
    command_line: &str,
    qemu_exit: bool,
) -> Result<(), Error> {
    let mut machine = ArchMachine {
        kernel_pml4,
        archive,
        spaces: Vec::new(),
        contexts: Vec::new(),
        retired: Vec::new(),
        qemu_exit,
    };
    let mut kernel = Kernel::new();
    let init = kernel.spawn_initial(&mut machine, init.as_bytes(), command_line.as_bytes())?;
    let system = System {
        kernel,
        machine,
        idle: idle_context()?,
        running: None,
        init,
        init_status: None,
    };
    *SYSTEM.lock() = Some(system);
    let frame = {
        let mut guard = SYSTEM.lock();
        let Some(system) = guard.as_mut() else {
            return Err(Error::InvalidArgument);
        };
        system.switch()
    };
    crate::arch::x86_64::trap::enter(frame)
}

impl System {
    /// Picks the context to run, delivers its pending registers, switches
    /// stacks and address space, and returns the frame to restore.
    fn switch(&mut self) -> *mut TrapFrame {
        let next = self.kernel.current();
        self.running = next;
        let context = match next.and_then(|t| self.machine.context(t)) {
            Some(context) => context,
            None => {
                self.running = None;
                &self.idle
            }
        };
        if let Some(thread) = next
            && let Some(registers) = self.kernel.take_resume(thread)
        {
            // SAFETY: the frame is this thread's saved registers, on its own
            // stack, not in use by anyone while it is not running.
            let frame = unsafe { &mut *context.frame };
            frame.rax = registers.arg0;
            frame.rdi = registers.arg1;
            frame.rsi = registers.arg2;
            frame.rdx = registers.arg3;
        }
        syscall::set_kernel_stack(context.stack_top());
        match self.machine.space(context.space) {
            Ok(space) => space.tables.activate(),
            // SAFETY: the kernel's own tables map everything the idle loop touches.
            Err(_) => unsafe { crate::arch::x86_64::paging::activate(self.machine.kernel_pml4) },
        }
        context.frame
    }

    /// Records where the interrupted context's registers were saved.
    fn save(&mut self, frame: *mut TrapFrame) {
        match self.running.and_then(|t| self.machine.context_mut(t)) {
            Some(context) => context.frame = frame,
            None => self.idle.frame = frame,
        }
    }
}

/// What the trap dispatcher hands over.
pub enum Event<'a> {
    /// A SYSCALL from user mode.
    Syscall(&'a TrapFrame),
    /// The preemption timer.
    Tick,
    /// A CPU exception in user mode: the process ends.
    UserFault(&'a TrapFrame),
}

/// Runs the kernel for one trap and returns the frame to resume.
pub fn handle(frame: *mut TrapFrame, event: Event<'_>) -> *mut TrapFrame {
    let mut guard = SYSTEM.lock();
    let Some(system) = guard.as_mut() else {
        return frame;
    };
    // Contexts retired by the previous trap are not the one we run on now.
    system.machine.retired.clear();
    system.save(frame);
    match event {
        Event::Syscall(f) => {
            let args = TrapArgs {
                arg0: f.rax,
                arg1: f.rdi,
                arg2: f.rsi,
                arg3: f.rdx,
            };
            system.kernel.trap(&mut system.machine, args);
        }
        Event::Tick => system.kernel.tick(),
        Event::UserFault(f) => {
            kprintln!(
                "user fault: {} at rip {:#x} (error code {:#x}, cr2 {:#x}); process ended",
                crate::arch::x86_64::trap::exception_name(f.vector),
                f.rip,
                f.error_code,
                x86_64::registers::control::Cr2::read_raw()
            );
            system.kernel.fault(&mut system.machine);
        }
    }
    while let Some((process, code)) = system.kernel.pop_exited() {
        if process == system.init {
            system.init_status = Some(code);
        }
    }
    if system.kernel.process_count() == 0 {
        let status = system.init_status.unwrap_or(u32::MAX);
        kprintln!("all processes have exited (init: status {status})");
        drop(guard);
        crate::start::stop(status == 0);
    }
    system.switch()
}
