//! Kernel objects that descriptors name: doors, events, handles on
//! threads and processes, kernel capabilities and memory objects.
//!
//! An object lives while anything refers to it: each descriptor-table
//! reference and each thread blocked on it holds one count. A door is *alive*
//! while its owner reference (the one with RECEIVE) exists; once that is
//! closed the door stays as a record that fails every call with PEER_DIED
//! until its last reference goes. A memory object also counts one
//! reference per mapping of it (`crate::memory_object::Region`).

use abi::ObjectKind;
use alloc::collections::VecDeque;

use crate::arena::Id;
use crate::process::ProcessId;
use crate::thread::ThreadId;

/// An object's id.
pub type ObjectId = Id<Object>;

/// A door: the IPC object of seed 004.
#[derive(Debug)]
pub struct Door {
    /// System doors accept SYSTEM_BASE functions, user doors USER_BASE.
    pub system: bool,
    /// The security type procman assigned (stored, not interpreted).
    pub security_type: u32,
    /// The process holding the owner reference; `None` once it is closed
    /// (the door is dead).
    pub owner: Option<ProcessId>,
    /// Callers waiting to be received, in arrival order.
    pub senders: VecDeque<ThreadId>,
    /// Server threads blocked in RECEIVE, longest waiting first.
    pub receivers: VecDeque<ThreadId>,
    /// Kernel notices waiting to be received (the process manager's door only).
    pub notices: VecDeque<abi::kcall::ProcessExitNotice>,
    /// Page requests waiting to be received (a pager's door): the special
    /// object and its page, each holding a reference to the door and one
    /// to the object (`crate::pager`).
    pub page_requests: VecDeque<(ObjectId, u64)>,
}

impl Door {
    /// A live door owned by `owner`.
    pub fn new(owner: ProcessId, system: bool, security_type: u32) -> Self {
        Door {
            system,
            security_type,
            owner: Some(owner),
            senders: VecDeque::new(),
            receivers: VecDeque::new(),
            notices: VecDeque::new(),
            page_requests: VecDeque::new(),
        }
    }
}

/// A counting event.
#[derive(Debug, Default)]
pub struct Event {
    /// Signals not yet consumed.
    pub count: u32,
    /// Threads blocked in EVENT_WAIT, longest waiting first.
    pub waiters: VecDeque<ThreadId>,
}

/// What an object is.
#[derive(Debug)]
pub enum ObjectBody {
    /// A door.
    Door(Door),
    /// An event.
    Event(Event),
    /// A handle on a thread.
    Thread(ThreadId),
    /// A handle on a process.
    Process(ProcessId),
    /// A kernel capability (the first process's authority, which it may pass on).
    Capability(Capability),
    /// A memory object: frames with a size.
    Memory(crate::memory_object::MemoryObject),
    /// An interrupt line delivered to an event (`crate::kcall::devices`).
    Interrupt(crate::kcall::devices::Interrupt),
    /// The kernel's log, taken over from COM1 (`crate::kcall::log`): the
    /// event each arrival of lines signals.
    KernelLog(ObjectId),
}

/// The kernel capabilities: what used to be "privileged" is holding one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// DOOR_CREATE, SPAWN, PROCESS_CREATE, MANAGER_REGISTER.
    ProcessControl,
    /// ARCHIVE_READ.
    BootArchive,
    /// DEBUG_EXIT, MACHINE_INFO, MEMORY_DIRECT, IO_PORT_GRANT, INTERRUPT_CREATE.
    MachineControl,
}

/// An object and its reference count.
#[derive(Debug)]
pub struct Object {
    /// What it is.
    pub body: ObjectBody,
    /// Descriptor references plus threads blocked on it.
    pub references: u32,
    /// The process charged for the object's memory.
    pub charged_to: ProcessId,
}

/// Kernel memory charged for one object.
pub const OBJECT_COST: u64 = 128;

impl Object {
    /// The kind reported by DESCRIPTOR_INFO.
    pub fn kind(&self) -> ObjectKind {
        match &self.body {
            ObjectBody::Door(door) if door.system => ObjectKind::SystemDoor,
            ObjectBody::Door(_) => ObjectKind::UserDoor,
            ObjectBody::Event(_) => ObjectKind::Event,
            ObjectBody::Thread(_) => ObjectKind::Thread,
            ObjectBody::Process(_) => ObjectKind::Process,
            ObjectBody::Capability(Capability::ProcessControl) => ObjectKind::ProcessControl,
            ObjectBody::Capability(Capability::BootArchive) => ObjectKind::BootArchive,
            ObjectBody::Capability(Capability::MachineControl) => ObjectKind::MachineControl,
            ObjectBody::Memory(_) => ObjectKind::Memory,
            ObjectBody::Interrupt(_) => ObjectKind::Interrupt,
            ObjectBody::KernelLog(_) => ObjectKind::KernelLog,
        }
    }

    /// The door, if this is one.
    pub fn door_mut(&mut self) -> Option<&mut Door> {
        match &mut self.body {
            ObjectBody::Door(door) => Some(door),
            _ => None,
        }
    }

    /// The memory object, if this is one.
    pub fn memory(&self) -> Option<&crate::memory_object::MemoryObject> {
        match &self.body {
            ObjectBody::Memory(memory) => Some(memory),
            _ => None,
        }
    }

    /// The memory object, if this is one.
    pub fn memory_mut(&mut self) -> Option<&mut crate::memory_object::MemoryObject> {
        match &mut self.body {
            ObjectBody::Memory(memory) => Some(memory),
            _ => None,
        }
    }

    /// The event, if this is one.
    pub fn event_mut(&mut self) -> Option<&mut Event> {
        match &mut self.body {
            ObjectBody::Event(event) => Some(event),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn dummy() -> Self {
        let mut processes: crate::arena::Arena<crate::process::Process> =
            crate::arena::Arena::new();
        let owner = processes
            .insert(crate::process::Process::new(0, 0))
            .expect("a test arena has room");
        Object {
            body: ObjectBody::Event(Event::default()),
            references: 0,
            charged_to: owner,
        }
    }
}
