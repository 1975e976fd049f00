//! Shared memory objects (SMOs, seed 002, ABI.md §6.5): Sartoris' sharing
//! by copy. An SMO names a byte range of its owner's address space, a
//! target process and what the target may do (read, write); only the
//! current target copies in or out, through the kernel, and only the owner
//! destroys it. This module owns the SMO table, the id encoding, the
//! lookup of a process by its process id and the rules of each operation;
//! `kcall/smo.rs` decodes the requests.
//!
//! It must never map one process's memory into another (SMOs copy), copy
//! more than `abi::kcall::smo::MAX_COPY` bytes in one call, or change
//! anything when it refuses: every check, both address spaces' included,
//! comes before the first byte moves.

use abi::Error;
use abi::kcall::{SmoCopyRequest, smo};

use crate::arena::Id;
use crate::kernel::Kernel;
use crate::machine::{CopyFault, Machine};
use crate::phys::PAGE_SIZE as PAGE;
use crate::process::ProcessId;

/// An SMO's kernel id.
pub type SmoId = Id<Smo>;

/// Bits of an SMO id that hold its slot; the bits above hold the slot's
/// generation (15 bits), so an id stays below [`smo::ID_LIMIT`].
const SLOT_BITS: u32 = 16;

/// One shared memory object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smo {
    /// The process whose memory it is (and who is charged for it).
    pub owner: ProcessId,
    /// The process that may read or write it now; `None` once that
    /// process ended (nobody may, until the owner claims it).
    pub target: Option<ProcessId>,
    /// Where its bytes start in the owner's space.
    pub address: u64,
    /// How many bytes.
    pub size: u64,
    /// `abi::kcall::smo` permission bits.
    pub permissions: u32,
}

/// Which way an SMO copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// SMO_READ: from the owner's memory into the target's.
    Read,
    /// SMO_WRITE: from the target's memory into the owner's.
    Write,
}

/// The user-visible number of `id`.
pub fn number_of(id: SmoId) -> u32 {
    let generation = (id.to_raw() >> 32) as u32 & (smo::ID_LIMIT >> SLOT_BITS).wrapping_sub(1);
    generation << SLOT_BITS | id.index()
}

impl Kernel {
    /// The live process whose id (procman's, kept as its manager cookie) is
    /// `id`: exactly one must have it (NO_SUCH_PROCESS_ID otherwise, and
    /// always for 0, which means "none given"). A walk by slot: no
    /// allocation, bounded by the process table.
    pub(crate) fn process_by_id(&self, id: u64) -> Result<ProcessId, Error> {
        if id == 0 {
            return Err(Error::NoSuchProcessId);
        }
        let mut found = None;
        for index in 0..self.processes.slot_count() {
            let Some(process) = self.processes.id_at(index) else {
                continue;
            };
            if self
                .processes
                .get(process)
                .is_some_and(|p| p.manager_cookie == id)
            {
                if found.is_some() {
                    return Err(Error::NoSuchProcessId);
                }
                found = Some(process);
            }
        }
        found.ok_or(Error::NoSuchProcessId)
    }

    /// The live SMO numbered `number` (NO_SUCH_SMO otherwise).
    pub(crate) fn smo_by_number(&self, number: u32) -> Result<(SmoId, Smo), Error> {
        let slot = (number & ((1 << SLOT_BITS) - 1)) as usize;
        let id = self.smos.id_at(slot).ok_or(Error::NoSuchSmo)?;
        if number_of(id) != number {
            return Err(Error::NoSuchSmo);
        }
        let smo = *self.smos.get(id).ok_or(Error::NoSuchSmo)?;
        Ok((id, smo))
    }

    /// SMO_SHARE: a new SMO over `[address, address + size)` of `owner`'s
    /// space for the process with id `target`, charged to the owner; its
    /// number. The range need not be mapped yet: each copy checks it.
    pub(crate) fn smo_share(
        &mut self,
        owner: ProcessId,
        target: u64,
        address: u64,
        size: u64,
        permissions: u32,
    ) -> Result<u32, Error> {
        if permissions & !smo::ALL != 0 {
            return Err(Error::ReservedBits);
        }
        if permissions == 0 || size == 0 {
            return Err(Error::InvalidArgument);
        }
        if address
            .checked_add(size)
            .is_none_or(|end| end > abi::process::USER_END)
        {
            return Err(Error::BadAddressRange);
        }
        let target = self.process_by_id(target)?;
        self.process_mut(owner)?.charge(smo::COST)?;
        let inserted = self.smos.insert(Smo {
            owner,
            target: Some(target),
            address,
            size,
            permissions,
        });
        let id = match inserted {
            Ok(id) if id.index() < 1 << SLOT_BITS => id,
            other => {
                if let Ok(id) = other {
                    self.smos.remove(id);
                }
                if let Some(p) = self.processes.get_mut(owner) {
                    p.uncharge(smo::COST);
                }
                return Err(other.err().unwrap_or(Error::TableFull));
            }
        };
        Ok(number_of(id))
    }

    /// SMO_CLAIM: the owner destroys its SMO.
    pub(crate) fn smo_claim(&mut self, caller: ProcessId, number: u32) -> Result<(), Error> {
        let (id, smo) = self.smo_by_number(number)?;
        if smo.owner != caller {
            return Err(Error::NotSmoOwner);
        }
        self.smos.remove(id);
        if let Some(p) = self.processes.get_mut(caller) {
            p.uncharge(smo::COST);
        }
        Ok(())
    }

    /// SMO_PASS: the current target hands the SMO to the process with id
    /// `target`.
    pub(crate) fn smo_pass(
        &mut self,
        caller: ProcessId,
        number: u32,
        target: u64,
    ) -> Result<(), Error> {
        let (id, smo) = self.smo_by_number(number)?;
        if smo.target != Some(caller) {
            return Err(Error::NotSmoTarget);
        }
        let target = self.process_by_id(target)?;
        if let Some(s) = self.smos.get_mut(id) {
            s.target = Some(target);
        }
        Ok(())
    }

    /// SMO_READ and SMO_WRITE: copies `size` bytes between `offset` of the
    /// SMO and the caller's `address` (the request's reserved field is the
    /// decoder's to check). Every check is made first, in the
    /// order of ABI.md §6.5, so a refusal changes nothing; then a
    /// copy-on-write page on the receiving side is copied, as for a
    /// message, and the bytes move page by page through both spaces.
    pub(crate) fn smo_copy(
        &mut self,
        machine: &mut impl Machine,
        caller: ProcessId,
        direction: Direction,
        request: SmoCopyRequest,
    ) -> Result<(), Error> {
        let SmoCopyRequest {
            id: number,
            offset,
            size,
            address,
            ..
        } = request;
        let (_, smo) = self.smo_by_number(number)?;
        if smo.target != Some(caller) {
            return Err(Error::NotSmoTarget);
        }
        let needed = match direction {
            Direction::Read => smo::READ,
            Direction::Write => smo::WRITE,
        };
        if smo.permissions & needed == 0 {
            return Err(Error::MissingRight);
        }
        if size > smo::MAX_COPY {
            return Err(Error::InvalidArgument);
        }
        if offset.checked_add(size).is_none_or(|end| end > smo.size) {
            return Err(Error::SmoOutOfBounds);
        }
        if size == 0 {
            return Ok(());
        }
        let length = size as usize;
        let shared = smo.address + offset;
        let caller_space = self.process(caller)?.space;
        let owner_space = self.process(smo.owner)?.space;
        // The caller's buffer first (its own mistake), then the owner's
        // memory; each side is checked whole, without side effects.
        let (caller_ok, owner_ok) = match direction {
            Direction::Read => (
                self.kernel_may_write(machine, caller, address, length),
                machine
                    .check_user(owner_space, shared, length, false)
                    .is_ok(),
            ),
            Direction::Write => (
                machine
                    .check_user(caller_space, address, length, false)
                    .is_ok(),
                self.kernel_may_write(machine, smo.owner, shared, length),
            ),
        };
        if !caller_ok {
            return Err(Error::BadBuffer);
        }
        if !owner_ok {
            return Err(Error::SmoRegionGone);
        }
        let (from_space, from, to_space, to) = match direction {
            Direction::Read => (owner_space, shared, caller_space, address),
            Direction::Write => (caller_space, address, owner_space, shared),
        };
        // Copy-on-write pages of the receiving range get their copies now
        // (only a machine out of frames fails here).
        self.check_writable(machine, to_space, to, length)
            .map_err(|_| Error::OutOfMemory)?;
        let mut head = [0u8; 8];
        machine
            .copy_between(from_space, from, to_space, to, length, &mut head)
            .map_err(|fault| match (fault, direction) {
                (CopyFault::Source, Direction::Read)
                | (CopyFault::Destination, Direction::Write) => Error::SmoRegionGone,
                _ => Error::BadBuffer,
            })
    }

    /// Whether the kernel may write `[address, address + length)` of
    /// `process`'s space: each page writable user memory, or copy-on-write
    /// memory a mapping allows writes to. Changes nothing (the copies come
    /// later, from [`Kernel::check_writable`]).
    fn kernel_may_write(
        &self,
        machine: &impl Machine,
        process: ProcessId,
        address: u64,
        length: usize,
    ) -> bool {
        let Ok(p) = self.process(process) else {
            return false;
        };
        let Some(end) = address.checked_add(length as u64) else {
            return false;
        };
        let mut at = address;
        while at < end {
            let page_end = (at & !(PAGE - 1)).saturating_add(PAGE).min(end);
            let chunk = (page_end - at) as usize;
            let writable = machine.check_user(p.space, at, chunk, true).is_ok()
                || (machine.check_user(p.space, at, chunk, false).is_ok()
                    && p.region_at(at)
                        .is_some_and(|(_, r)| r.protection & abi::kcall::protection::WRITE != 0));
            if !writable {
                return false;
            }
            at = page_end;
        }
        true
    }

    /// A process ends: the SMOs it owns go (their charge with it), and
    /// those it is the target of are left with no target until their owner
    /// claims them. A walk by slot: ending a process never allocates.
    pub(crate) fn end_smos_of(&mut self, process: ProcessId) {
        for index in 0..self.smos.slot_count() {
            let Some(id) = self.smos.id_at(index) else {
                continue;
            };
            let Some(s) = self.smos.get_mut(id) else {
                continue;
            };
            if s.target == Some(process) {
                s.target = None;
            }
            if s.owner == process {
                self.smos.remove(id);
            }
        }
    }

    /// Live SMOs (for leak checks).
    pub fn smo_count(&self) -> usize {
        self.smos.len()
    }
}
