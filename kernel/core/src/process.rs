//! Processes: an address space, a descriptor table, threads, and the
//! kernel memory charged to them.

use abi::Error;
use alloc::vec::Vec;

use crate::arena::Id;
use crate::descriptor_table::DescriptorTable;
use crate::thread::ThreadId;

/// A process's id.
pub type ProcessId = Id<Process>;

/// The arch layer's handle on an address space.
pub type SpaceId = u64;

/// Kernel memory charged per open descriptor.
pub const DESCRIPTOR_COST: u64 = 32;

/// A process.
#[derive(Debug)]
pub struct Process {
    /// Its address space.
    pub space: SpaceId,
    /// Its references.
    pub table: DescriptorTable,
    /// Its live threads.
    pub threads: Vec<ThreadId>,
    /// Kernel memory charged, in bytes.
    pub charged: u64,
    /// The most kernel memory it may be charged.
    pub limit: u64,
    /// Delivered with its NULL-target process-manager calls; set by the
    /// process manager (PROCESS_SET_COOKIE, or its reply to such a call), so
    /// procman knows who calls without trusting the caller.
    pub manager_cookie: u64,
    /// Its mappings of memory objects, in address order, never overlapping.
    pub regions: Vec<crate::memory_object::Region>,
    /// The I/O ports it may use (IO_PORT_GRANT).
    pub io_ports: crate::kcall::devices::IoPorts,
    /// `Some(n)` while a process PROCESS_CREATE made has no thread yet
    /// (`n`: its initial descriptors, its first thread's rdx): a loader
    /// may map into it and start it once (ABI.md §6.8).
    pub unstarted: Option<u32>,
    /// Suspended (PROCESS_SUSPEND): none of its threads runs; one made
    /// ready waits, held out of the run queues, for PROCESS_RESUME.
    pub suspended: bool,
}

impl Process {
    /// A process with an empty table and no threads.
    pub fn new(space: SpaceId, limit: u64) -> Self {
        Self {
            space,
            table: DescriptorTable::new(),
            threads: Vec::new(),
            charged: 0,
            limit,
            manager_cookie: 0,
            regions: Vec::new(),
            io_ports: crate::kcall::devices::IoPorts::default(),
            unstarted: None,
            suspended: false,
        }
    }

    /// Charges `bytes`, or fails with OUT_OF_MEMORY past the limit.
    pub fn charge(&mut self, bytes: u64) -> Result<(), Error> {
        let total = self.charged.checked_add(bytes).ok_or(Error::OutOfMemory)?;
        if total > self.limit {
            return Err(Error::OutOfMemory);
        }
        self.charged = total;
        Ok(())
    }

    /// The mapping of a memory object that holds `address`, and its index.
    pub fn region_at(&self, address: u64) -> Option<(usize, &crate::memory_object::Region)> {
        let index = self.regions.partition_point(|r| r.end() <= address);
        self.regions
            .get(index)
            .filter(|r| r.start <= address)
            .map(|r| (index, r))
    }

    /// Returns `bytes` of charge.
    pub fn uncharge(&mut self, bytes: u64) {
        self.charged = self.charged.saturating_sub(bytes);
    }
}
