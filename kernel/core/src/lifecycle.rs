//! Creating and ending processes and threads, and closing references.

use abi::kcall::DEFAULT_PRIORITY;
use abi::{Descriptor, Error, Rights, TrapArgs};

use crate::descriptor_table::Reference;
use crate::kernel::Kernel;
use crate::machine::{Machine, UserStart};
use crate::object::{Capability, ObjectBody, ObjectId};
use crate::process::{DESCRIPTOR_COST, Process, ProcessId};
use crate::thread::{Holding, THREAD_COST, Thread, ThreadId, ThreadState};

/// Kernel memory a spawned process may be charged by default.
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
/// Kernel memory the first process may be charged.
pub const FIRST_PROCESS_MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

impl Kernel {
    /// Starts the first process from the boot archive, with `arguments` as
    /// its argument bytes (the kernel passes its command line) and the three
    /// kernel capabilities as its descriptors 1-3 (`abi::process`); it
    /// becomes the current thread. Everything else it may pass on.
    pub fn spawn_initial(
        &mut self,
        machine: &mut impl Machine,
        name: &[u8],
        arguments: &[u8],
    ) -> Result<ProcessId, Error> {
        let install = |kernel: &mut Kernel, process: ProcessId| {
            for capability in [
                Capability::ProcessControl,
                Capability::BootArchive,
                Capability::MachineControl,
            ] {
                let object = kernel.create_object(process, ObjectBody::Capability(capability))?;
                if let Err(error) = kernel.install_reference(process, object, Rights::CAPABILITY) {
                    kernel.retain(object);
                    kernel.release(object);
                    return Err(error);
                }
            }
            Ok(abi::process::FIRST_PROCESS_DESCRIPTORS)
        };
        let (process, thread) = self.create_process(
            machine,
            name,
            arguments,
            FIRST_PROCESS_MEMORY_LIMIT,
            abi::process::FIRST_PROCESS_DESCRIPTORS as usize,
            install,
        )?;
        self.scheduler.remove(thread);
        self.current = Some(thread);
        if let Some(t) = self.threads.get_mut(thread) {
            t.state = ThreadState::Running;
        }
        self.reschedule();
        Ok(process)
    }

    /// Creates a process running `name`, installs its `descriptors` initial
    /// descriptors through `install` (which returns how many it installed)
    /// and makes its first thread ready.
    pub(crate) fn create_process(
        &mut self,
        machine: &mut impl Machine,
        name: &[u8],
        arguments: &[u8],
        limit: u64,
        descriptors: usize,
        install: impl FnOnce(&mut Kernel, ProcessId) -> Result<u32, Error>,
    ) -> Result<(ProcessId, ThreadId), Error> {
        // The first thread's heap too, before the machine makes the space.
        self.threads.reserve(1)?;
        self.scheduler.reserve(DEFAULT_PRIORITY as u8)?;
        let process = self.create_empty_process(machine, limit, descriptors, 1)?;
        let result = (|| {
            let space = self.process(process)?.space;
            // The program before the descriptors: a program that cannot be
            // loaded refuses the call before any descriptor moved.
            let loaded = machine.load_program(space, name, arguments)?;
            let p = self.process_mut(process)?;
            p.charge(loaded.memory_bytes)?;
            let descriptors = install(self, process)?;
            let start = UserStart {
                arg2: u64::from(descriptors),
                ..loaded.start
            };
            self.create_thread(machine, process, start, DEFAULT_PRIORITY as u8, u64::MAX)
        })();
        match result {
            Ok(thread) => Ok((process, thread)),
            Err(error) => {
                self.discard_process(machine, process);
                Err(error)
            }
        }
    }

    /// Creates a process with an empty address space and no thread, with
    /// heap room for `descriptors` references and `threads` threads. A
    /// failure leaves nothing behind; a later one is undone with
    /// [`Kernel::discard_process`].
    pub(crate) fn create_empty_process(
        &mut self,
        machine: &mut impl Machine,
        limit: u64,
        descriptors: usize,
        threads: usize,
    ) -> Result<ProcessId, Error> {
        // Room for this process's exit entry (and every live one's) before
        // anything exists, so ending it, even on a failure path, never
        // allocates.
        self.exited
            .try_reserve(self.processes.len() + 1)
            .map_err(|_| Error::OutOfMemory)?;
        // Then every other piece of heap the process needs, before the
        // machine makes its space: a heap that cannot grow refuses the
        // call with nothing changed.
        let mut new = Process::new(0, limit);
        new.table.reserve(descriptors)?;
        new.threads
            .try_reserve(threads)
            .map_err(|_| Error::OutOfMemory)?;
        self.processes.reserve(1)?;
        new.space = machine.create_space()?;
        let space = new.space;
        match self.processes.insert(new) {
            Ok(process) => Ok(process),
            Err(error) => {
                machine.destroy_space(space);
                Err(error)
            }
        }
    }

    /// Undoes a process whose creation failed halfway: it ends, and its
    /// end is neither reported nor remembered.
    pub(crate) fn discard_process(&mut self, machine: &mut impl Machine, process: ProcessId) {
        self.end_process(machine, process, u32::MAX);
        self.exited.retain(|(p, _)| *p != process);
    }

    /// Heap room for one more thread of `process` at `priority` (its
    /// record, its place in the process's list and in the run queue), so
    /// that [`Kernel::create_thread`] cannot then fail for want of heap.
    pub(crate) fn reserve_thread(&mut self, process: ProcessId, priority: u8) -> Result<(), Error> {
        self.process_mut(process)?
            .threads
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        self.threads.reserve(1)?;
        self.scheduler.reserve(priority)
    }

    /// Creates a ready thread in `process` that may run on the CPUs of
    /// `affinity` (queued on one of them: a queued thread always waits
    /// where it may run).
    pub(crate) fn create_thread(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        start: UserStart,
        priority: u8,
        affinity: u64,
    ) -> Result<ThreadId, Error> {
        let p = self.process_mut(process)?;
        // Room in the process's thread list first, so nothing below has
        // to be undone for it.
        p.threads.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        p.charge(THREAD_COST)?;
        let space = p.space;
        let created = self.scheduler.admit(priority).and_then(|()| {
            let created = self
                .threads
                .insert(Thread {
                    process,
                    space,
                    priority,
                    base_priority: priority,
                    state: ThreadState::Ready,
                    holding: Holding::Nothing,
                    resume: None,
                    affinity,
                    signals: crate::thread::SignalState::default(),
                    held: false,
                })
                .and_then(|thread| match machine.create_thread(thread, space, start) {
                    Ok(()) => Ok(thread),
                    Err(error) => {
                        self.threads.remove(thread);
                        Err(error)
                    }
                });
            if created.is_err() {
                self.scheduler.dismiss(priority);
            }
            created
        });
        let thread = match created {
            Ok(thread) => thread,
            Err(error) => {
                if let Some(p) = self.processes.get_mut(process) {
                    p.uncharge(THREAD_COST);
                }
                return Err(error);
            }
        };
        if let Some(p) = self.processes.get_mut(process) {
            p.threads.push(thread);
        }
        self.make_ready(thread);
        Ok(thread)
    }

    /// Installs a new reference to `object` in `process` (charging it).
    pub(crate) fn install_reference(
        &mut self,
        process: ProcessId,
        object: ObjectId,
        rights: Rights,
    ) -> Result<Descriptor, Error> {
        let p = self.process_mut(process)?;
        p.charge(DESCRIPTOR_COST)?;
        match p.table.install(Reference {
            object,
            rights,
            cookie: 0,
        }) {
            Ok(descriptor) => {
                self.retain(object);
                Ok(descriptor)
            }
            Err(error) => {
                p.uncharge(DESCRIPTOR_COST);
                Err(error)
            }
        }
    }

    /// Closes `descriptor` in `process`.
    pub(crate) fn close(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        descriptor: Descriptor,
    ) -> Result<(), Error> {
        let p = self.process_mut(process)?;
        let reference = p.table.remove(descriptor)?;
        p.uncharge(DESCRIPTOR_COST);
        self.drop_reference(machine, reference);
        Ok(())
    }

    /// Lets go of a reference that left a table: closing an owner reference
    /// kills the door, failing everyone queued or waiting on it; the last
    /// reference to a memory object that nothing maps frees its frames.
    pub(crate) fn drop_reference(&mut self, machine: &mut impl Machine, reference: Reference) {
        if reference.rights.contains(Rights::RECEIVE)
            && let Ok(door) = self.door(reference.object)
        {
            door.owner = None;
            let senders = core::mem::take(&mut door.senders);
            let receivers = core::mem::take(&mut door.receivers);
            for thread in senders.into_iter().chain(receivers) {
                self.release(reference.object);
                self.wake(thread, TrapArgs::error(Error::PeerDied));
            }
            // Calls being served through the door fail too: the door is
            // gone, so its server's later REPLY finds CALLER_GONE. A walk
            // by slot, not a collected list: a death never allocates
            // (ABI.md §8).
            for index in 0..self.threads.slot_count() {
                let Some(server) = self.threads.id_at(index) else {
                    continue;
                };
                let Some(s) = self.threads.get_mut(server) else {
                    continue;
                };
                let Holding::Call { caller, door } = s.holding else {
                    continue;
                };
                if door != reference.object {
                    continue;
                }
                s.holding = Holding::Cancelled {
                    door: reference.object,
                };
                self.wake(caller, TrapArgs::error(Error::PeerDied));
            }
            if self.process_manager_door == Some(reference.object) {
                self.process_manager_door = None;
            }
            self.fail_door_page_requests(machine, reference.object);
        }
        self.release_with(machine, reference.object);
    }

    /// Gives back the run-queue room an ended thread held: at its own
    /// priority, and at the one it was raised to while serving.
    fn dismiss_thread(&mut self, thread: &Thread) {
        if thread.signals.counted {
            self.attention = self.attention.saturating_sub(1);
        }
        if thread.is_boosted() {
            self.scheduler.dismiss(thread.priority);
        }
        self.scheduler.dismiss(thread.base_priority);
    }

    /// Ends one thread; the last thread's exit ends the process with `code`.
    pub(crate) fn end_thread(&mut self, machine: &mut impl Machine, thread: ThreadId, code: u32) {
        let Some(process) = self.threads.get(thread).map(|t| t.process) else {
            return;
        };
        let last = self
            .processes
            .get(process)
            .is_some_and(|p| p.threads.len() <= 1);
        if last {
            self.end_process(machine, process, code);
            return;
        }
        let served_page = self.holds_page_request(thread);
        self.cancel_thread(thread);
        if let Some(t) = self.threads.remove(thread) {
            self.dismiss_thread(&t);
        }
        machine.destroy_thread(thread);
        if let Some(p) = self.processes.get_mut(process) {
            p.threads.retain(|t| *t != thread);
            p.uncharge(THREAD_COST);
        }
        if served_page {
            self.fail_orphaned_page_requests(machine);
        }
    }

    fn holds_page_request(&self, thread: ThreadId) -> bool {
        matches!(
            self.threads.get(thread).map(|t| t.holding),
            Some(Holding::Page { .. })
        )
    }

    /// Ends a process: its threads stop, its calls are cancelled, its
    /// references are closed and its memory is freed.
    pub(crate) fn end_process(
        &mut self,
        machine: &mut impl Machine,
        process: ProcessId,
        code: u32,
    ) {
        let Some(p) = self.processes.get_mut(process) else {
            return;
        };
        let manager_cookie = p.manager_cookie;
        if core::mem::take(&mut p.suspended) {
            // It no longer needs the slow path's attention (`crate::suspend`).
            self.attention = self.attention.saturating_sub(1);
        }
        let Some(p) = self.processes.get_mut(process) else {
            return;
        };
        // Taken, not copied: ending a process must not allocate.
        let threads = core::mem::take(&mut p.threads);
        // Page requests its threads held fail once it is gone (failing
        // them may end other processes, never this one twice).
        let served_page = threads.iter().any(|t| self.holds_page_request(*t));
        for thread in &threads {
            self.cancel_thread(*thread);
        }
        for thread in threads {
            if let Some(t) = self.threads.remove(thread) {
                self.dismiss_thread(&t);
            }
            machine.destroy_thread(thread);
        }
        self.end_smos_of(process);
        let references = self.processes.get_mut(process).map(|p| p.table.drain());
        for reference in references.into_iter().flatten() {
            self.drop_reference(machine, reference);
        }
        // Objects this process was charged for may outlive it (held by
        // others); they keep no charge, since the process is gone. Its
        // mappings' references go once the space is gone (the frames they
        // show are the objects', never freed with the space).
        if let Some(p) = self.processes.remove(process) {
            machine.destroy_space(p.space);
            for region in p.regions {
                self.release_with(machine, region.object);
            }
        }
        if self.process_manager == Some(process) {
            self.process_manager = None;
        } else {
            let notice = abi::kcall::ProcessExitNotice {
                cookie: manager_cookie,
                status: code,
                reserved: 0,
            };
            self.post_notice(machine, notice);
        }
        self.exited.push((process, code));
        if served_page {
            self.fail_orphaned_page_requests(machine);
        }
    }

    /// Installs the message's slots of a SPAWN into the child, in order, as
    /// descriptors 1..=n.
    pub(crate) fn install_initial_descriptors(
        &mut self,
        parent: ProcessId,
        child: ProcessId,
        slots: &[abi::DescriptorSlot],
    ) -> Result<u32, Error> {
        self.check_slots(parent, slots)?;
        // Heap room first: a moved reference must never be lost halfway.
        self.process_mut(child)?.table.reserve(slots.len())?;
        for slot in slots {
            self.transfer_reference(parent, child, slot.request()?)?;
        }
        Ok(slots.len() as u32)
    }

    /// Creates a handle object on a thread or process and a reference to it.
    pub(crate) fn create_handle(
        &mut self,
        process: ProcessId,
        body: ObjectBody,
    ) -> Result<Descriptor, Error> {
        self.reserve_object(process, 1)?;
        let object = self.create_object(process, body)?;
        match self.install_reference(process, object, Rights::HANDLE) {
            Ok(descriptor) => Ok(descriptor),
            Err(error) => {
                self.retain(object);
                self.release(object);
                Err(error)
            }
        }
    }
}
