//! The running system: the portable [`Kernel`] joined to this machine
//! ([`X86Machine`]) behind the kernel lock (`kernel_lock.rs`), which every
//! CPU takes to enter. The trap path enters here once ([`handle`]): the
//! saved registers become a call on the kernel, and the thread the kernel
//! picks next for this CPU is switched to; nothing in the trap path calls
//! out of `arch` except into `kernel_core`. It must never touch the system
//! without the lock, nor let the lock go itself (`trap_restore` does, on
//! the resumed context's stack).

use abi::Error;
use kernel_core::boot_info::BootInfo;
use kernel_core::kernel::Kernel;
use kernel_core::memory_object::Fault;
use kernel_core::process::ProcessId;
use kernel_core::thread::ThreadId;
use x86_64::structures::paging::PhysFrame;

use core::cell::UnsafeCell;

use alloc::vec::Vec;

use super::machine::{Context, X86Machine, idle_context};
use super::trap::{TrapFrame, UserFault};
use super::{cpu, kernel_lock, smp, syscall};

/// The kernel and its machine, behind the kernel lock (`kernel_lock.rs`).
pub struct System {
    kernel: Kernel,
    machine: X86Machine,
    /// Each CPU's own part, by CPU index.
    cpus: Vec<CpuState>,
    /// The first process; its exit status is the system's verdict.
    init: ProcessId,
    init_status: Option<u32>,
}

/// What the system keeps for one CPU.
struct CpuState {
    /// Its idle context (its ring-0 halt loop).
    idle: Context,
    /// The context whose registers its current trap saved.
    running: Option<ThreadId>,
    /// The top of the kernel stack it switched to last: its next trap
    /// lands there, so that stack is not freed until it switches away.
    stack_top: u64,
    /// Whether it runs a user thread (`smp::set_busy` was told so).
    busy: bool,
}

/// The system, reached only by the CPU holding the kernel lock.
struct SystemCell(UnsafeCell<Option<System>>);

// SAFETY: the cell is only touched by the CPU holding the kernel lock (see
// `locked`), so never by two CPUs at once; the raw frame pointers in it
// point into kernel stacks the system owns.
unsafe impl Sync for SystemCell {}

static SYSTEM: SystemCell = SystemCell(UnsafeCell::new(None));

/// The system. Called once per kernel entry, right after
/// `kernel_lock::acquire`, and the borrow ends before the lock goes (in
/// `trap_restore`, after the Rust code returned).
fn locked() -> &'static mut Option<System> {
    // SAFETY: this CPU holds the kernel lock, so no other CPU is in here;
    // each entry takes this borrow once and drops it before it returns.
    unsafe { &mut *SYSTEM.0.get() }
}

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
    let cpus = (smp::online() as usize).clamp(1, smp::MAX_CPUS);
    kernel_lock::acquire();
    let mut machine = X86Machine::new(kernel_pml4, archive, qemu_exit, info.memory_map, rsdp, cpus);
    let mut kernel = Kernel::new();
    kernel.set_cpu_count(cpus)?;
    kernel.enter(0);
    let init = kernel.spawn_initial(&mut machine, init.as_bytes(), command_line.as_bytes())?;
    let mut states = Vec::new();
    for _ in 0..cpus {
        states.push(CpuState {
            idle: idle_context()?,
            running: None,
            stack_top: 0,
            busy: false,
        });
    }
    let system = locked().insert(System {
        kernel,
        machine,
        cpus: states,
        init,
        init_status: None,
    });
    system.kernel.leave();
    let frame = system.switch(0);
    super::trap::enter(frame)
}

impl System {
    /// Picks the context CPU `cpu` runs, delivers its pending registers,
    /// switches stacks and address space, and returns the frame to restore.
    fn switch(&mut self, cpu: usize) -> *mut TrapFrame {
        let next = self.kernel.current();
        let Some(state) = self.cpus.get_mut(cpu) else {
            cpu::fatal(format_args!("cpu {cpu} has no state"));
        };
        let found = next.and_then(|t| self.machine.context(t));
        state.running = next.filter(|_| found.is_some());
        let context = found.unwrap_or(&state.idle);
        let (frame, stack_top, space, fpu_area) = (
            context.frame,
            context.stack_top(),
            context.space,
            context.fpu_area(),
        );
        state.stack_top = stack_top;
        let running = state.running;
        // The shared busy mask changes only when the CPU goes idle or
        // stops being idle, not at each switch between two threads.
        let busy = running.is_some();
        let busy_changed = state.busy != busy;
        state.busy = busy;
        if busy {
            self.machine.load_fpu(cpu, fpu_area);
        } else {
            // Idle: the last thread's x87/SSE registers go to memory, so
            // that any CPU may resume it.
            self.machine.save_fpu(cpu);
        }
        self.deliver_resume(running, frame);
        syscall::set_kernel_stack(stack_top);
        self.machine.activate(cpu, space);
        if busy_changed {
            smp::set_busy(cpu, busy);
        }
        if busy {
            smp::count_dispatch(cpu);
        }
        frame
    }

    /// Writes `running`'s pending return registers (if any) into `frame`,
    /// its saved registers.
    fn deliver_resume(&mut self, running: Option<ThreadId>, frame: *mut TrapFrame) {
        if let Some(thread) = running
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

    /// Records where CPU `cpu`'s interrupted context's registers were saved.
    /// Only the idle context's move: a user thread enters the kernel from
    /// user mode alone (the kernel runs with interrupts off and never takes
    /// a trap into here from kernel mode), so its entry always pushes its
    /// registers at the top of its own kernel stack, where `Context::new`
    /// put its frame; nothing needs recording for it on every trap.
    fn save(&mut self, cpu: usize, frame: *mut TrapFrame) {
        let Some(state) = self.cpus.get_mut(cpu) else {
            return;
        };
        match state.running {
            Some(_thread) =>
            {
                #[cfg(debug_assertions)]
                if let Some(context) = self.machine.context(_thread) {
                    debug_assert_eq!(context.frame, frame, "a user frame moved");
                }
            }
            None => state.idle.frame = frame,
        }
    }
}

/// What the trap dispatcher hands over: values read from the saved frame,
/// never a reference to it (the switch below may rewrite that frame).
pub enum Event {
    /// A SYSCALL from user mode, with its four argument registers.
    Syscall(abi::trap::Call),
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
    /// The timer of a CPU other than the boot CPU, running a thread.
    SecondaryTick,
    /// Another CPU's KICK_VECTOR: take ready work, or the thread that ran
    /// here was taken away.
    Kick,
}

/// Runs the kernel for one trap and returns the frame to resume.
pub fn handle(frame: *mut TrapFrame, event: Event) -> *mut TrapFrame {
    let cpu = syscall::cpu_index() as usize;
    kernel_lock::acquire();
    smp::answered(cpu);
    let Some(system) = locked().as_mut() else {
        return frame;
    };
    system.kernel.enter(cpu);
    // A SYSCALL comes from a user thread, whose frame never moves: only
    // other traps may have interrupted the idle context.
    if !matches!(event, Event::Syscall(_)) {
        system.save(cpu, frame);
    }
    match event {
        Event::Syscall(call) => {
            if system.kernel.trap_decoded(&mut system.machine, Ok(call)) {
                // The IPC fast path handed the CPU to the partner and did
                // nothing else (no end, log, wake-up or signal): only the
                // switch is left.
                system.kernel.leave();
                return system.switch(cpu);
            }
        }
        Event::Tick => system.kernel.tick(),
        Event::SecondaryTick => system.kernel.tick_secondary(),
        Event::Kick => system.kernel.schedule(),
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
    // Contexts retired by earlier traps, unless a CPU may stand on one (the
    // one this trap runs on is this CPU's `stack_top`, not yet switched).
    let cpus = &system.cpus;
    system
        .machine
        .free_retired(|top| cpus.iter().any(|c| c.stack_top == top));
    // The thread this CPU returns to enters its upcall handler if a
    // signal waits for it (a bad handler stack ends its process instead).
    system.kernel.prepare_return(&mut system.machine);
    while let Some((cookie, address)) = system.kernel.pop_upcall_failure() {
        kprintln!(
            "process (manager cookie {cookie}) ended: its upcall frame at {address:#x} is not writable user stack"
        );
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
        smp::report_dispatches();
        cpu::stop(status == 0);
    }
    // This CPU's thread was taken away (it ended while this CPU was on
    // its way in) or it was woken to take ready work: it picks one.
    if system.kernel.current().is_none() {
        system.kernel.schedule();
    }
    let next = system.kernel.current();
    system.kernel.leave();
    let mut kicks = system.kernel.take_kicks();
    while kicks != 0 {
        let other = kicks.trailing_zeros() as usize;
        kicks &= kicks - 1;
        if other != cpu {
            smp::kick(other);
        }
    }
    // Both asks are a load or two; the run queue itself is looked at only
    // when some other CPU is idle (with one CPU, never).
    let ready = system.kernel.ready_count();
    if ready != 0 {
        let idle = smp::idle_others(cpu);
        if idle != 0 {
            smp::wake_idle(idle, ready, system.kernel.wanted_cpus());
        }
    }
    let running = system.cpus.get(cpu).and_then(|c| c.running);
    if next.is_some() && next == running {
        // The trapping thread runs on (a call that neither blocked nor
        // handed the CPU over, a tick that preempted no one): its stack
        // and FPU registers are the loaded ones, and its address space
        // too unless another CPU's unmap made this one leave it.
        if let Some(space) = next
            .and_then(|t| system.machine.context(t))
            .map(|c| c.space)
            && kernel_lock::loaded_here() != space
        {
            system.machine.activate(cpu, space);
        }
        system.deliver_resume(running, frame);
        return frame;
    }
    system.switch(cpu)
}
