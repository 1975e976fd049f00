//! The running system: the portable [`Kernel`] joined to this machine
//! ([`X86Machine`]) behind one lock. The trap path enters here once
//! ([`handle`]): the saved registers become a call on the kernel, and the
//! thread the kernel picks next is switched to; nothing in the trap path
//! calls out of `arch` except into `kernel_core`.

use abi::{Error, TrapArgs};
use kernel_core::boot_info::BootInfo;
use kernel_core::kernel::Kernel;
use kernel_core::memory_object::Fault;
use kernel_core::process::ProcessId;
use kernel_core::thread::ThreadId;
use x86_64::structures::paging::PhysFrame;

use super::machine::{Context, X86Machine, idle_context};
use super::trap::{TrapFrame, UserFault};
use super::{cpu, syscall};

/// The kernel and its machine, behind one lock (taken only with interrupts off).
pub struct System {
    kernel: Kernel,
    machine: X86Machine,
    idle: Context,
    /// The context whose registers the current trap saved.
    running: Option<ThreadId>,
    /// The first process; its exit status is the system's verdict.
    init: ProcessId,
    init_status: Option<u32>,
}

// SAFETY: the raw frame pointers point into kernel stacks owned by the
// system itself; it is only touched under SYSTEM's lock, with interrupts off.
unsafe impl Send for System {}

static SYSTEM: spin::Mutex<Option<System>> = spin::Mutex::new(None);

/// Starts user space with the archive's `init` program. Returns only if
/// there is none (or it cannot start).
pub fn start_user_space(
    kernel_pml4: PhysFrame,
    archive: image::BootArchive<'static>,
    init: &str,
    info: &BootInfo,
    qemu_exit: bool,
) -> Result<(), Error> {
    let command_line = info.command_line.as_str();
    let rsdp = super::acpi::find_rsdp(info.rsdp);
    let mut machine = X86Machine::new(kernel_pml4, archive, qemu_exit, info.memory_map, rsdp);
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
    super::trap::enter(frame)
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
        let (frame, stack_top, space) = (context.frame, context.stack_top(), context.space);
        // The idle loop leaves the x87/SSE registers alone: they stay the
        // last user thread's until another one runs.
        if self.running.is_some() {
            self.machine.load_fpu(context.fpu_area());
        }
        self.deliver_resume(frame);
        syscall::set_kernel_stack(stack_top);
        self.machine.activate(space);
        frame
    }

    /// Writes the running thread's pending return registers (if any) into
    /// `frame`, its saved registers.
    fn deliver_resume(&mut self, frame: *mut TrapFrame) {
        if let Some(thread) = self.running
            && let Some(registers) = self.kernel.take_resume(thread)
        {
            // SAFETY: the frame is this thread's saved registers, on its own
            // stack, not in use by anyone while it is not running; no other
            // reference to it is alive (see `trap_entry_dispatch`).
            let frame = unsafe { &mut *frame };
            frame.rax = registers.arg0;
            frame.rdi = registers.arg1;
            frame.rsi = registers.arg2;
            frame.rdx = registers.arg3;
        }
    }

    /// Records where the interrupted context's registers were saved.
    fn save(&mut self, frame: *mut TrapFrame) {
        match self.running.and_then(|t| self.machine.context_mut(t)) {
            Some(context) => context.frame = frame,
            None => self.idle.frame = frame,
        }
    }
}

/// What the trap dispatcher hands over: values read from the saved frame,
/// never a reference to it (the switch below may rewrite that frame).
pub enum Event {
    /// A SYSCALL from user mode, with its four argument registers.
    Syscall(TrapArgs),
    /// The preemption timer.
    Tick,
    /// An ISA interrupt line a driver holds (already masked and ended).
    Interrupt(u8),
    /// A CPU exception in user mode: the process ends.
    UserFault(UserFault),
    /// A page fault in user mode: the kernel core resolves it (a write to
    /// a copy-on-write page) or the process ends. (The same payload as
    /// `UserFault`, so the event stays as small as a SYSCALL's.)
    PageFault(UserFault),
}

/// Runs the kernel for one trap and returns the frame to resume.
pub fn handle(frame: *mut TrapFrame, event: Event) -> *mut TrapFrame {
    let mut guard = SYSTEM.lock();
    let Some(system) = guard.as_mut() else {
        return frame;
    };
    // Contexts retired by the previous trap are not the one we run on now.
    system.machine.free_retired();
    system.save(frame);
    match event {
        Event::Syscall(args) => system.kernel.trap(&mut system.machine, args),
        Event::Tick => system.kernel.tick(),
        Event::Interrupt(line) => system.kernel.interrupt(&mut system.machine, line),
        Event::UserFault(f) => {
            kprintln!(
                "user fault: {} at rip {:#x} (error code {:#x}, cr2 {:#x}); process ended",
                super::trap::exception_name(f.vector),
                f.rip,
                f.error_code,
                x86_64::registers::control::Cr2::read_raw()
            );
            system.kernel.fault(&mut system.machine);
        }
        Event::PageFault(f) => match system
            .kernel
            .page_fault(&mut system.machine, f.page_fault())
        {
            // Resolved, or the thread waits for its pager (another runs).
            Fault::Resolved | Fault::Waiting => {}
            unresolved => {
                kprintln!(
                    "user fault: {} at rip {:#x} (error code {:#x}, cr2 {:#x}): {}; process ended",
                    super::trap::exception_name(f.vector),
                    f.rip,
                    f.error_code,
                    f.address,
                    unresolved.reason()
                );
                system.kernel.fault(&mut system.machine);
            }
        },
    }
    while let Some((process, code)) = system.kernel.pop_exited() {
        // A failed page request ends processes: its log comes with their
        // ends, off the path of a trap that ended none.
        while let Some((cookie, failure)) = system.kernel.pop_pager_failure() {
            let errno = match failure {
                kernel_core::pager::PagerFailure::ErrorReply(errno) => {
                    Error::from_number(errno).map_or("an unknown error", Error::name)
                }
                _ => "-",
            };
            kprintln!(
                "process (manager cookie {cookie}) ended: {} ({errno})",
                failure.reason()
            );
        }
        if process == system.init {
            system.init_status = Some(code);
        }
    }
    // Lines this trap logged (the core's or ours above) wake the reader.
    system.kernel.log_signal(&mut system.machine);
    if system.kernel.process_count() == 0 {
        let status = system.init_status.unwrap_or(u32::MAX);
        kprintln!("all processes have exited (init: status {status})");
        drop(guard);
        cpu::stop(status == 0);
    }
    let next = system.kernel.current();
    if next.is_some() && next == system.running {
        // The trapping thread runs on (a call that neither blocked nor
        // handed the CPU over, a tick that preempted no one): its stack,
        // address space and FPU registers are the loaded ones, so only
        // its return registers change.
        system.deliver_resume(frame);
        return frame;
    }
    system.switch()
}
