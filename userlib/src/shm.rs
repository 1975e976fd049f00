//! POSIX-style shared memory (seed 003 "shmem", `sys/mman.h`) over named
//! memory portals under `/shm/` (ABI.md §7a.2): [`shm_open`] creates or
//! captures a portal, [`ftruncate`] sizes it once, [`mmap`] maps it
//! (`MAP_SHARED`: the portal's memory; `MAP_PRIVATE`: a copy-on-write
//! child), [`munmap`] unmaps, [`close`] drops the capture and
//! [`shm_unlink`] removes the name.
//!
//! A shm name is POSIX's `/name` (one component); its portal is
//! `/shm/name`. Errors are the refusals procman and the kernel give
//! ([`CallError`]); this module adds [`ShmError::BadName`] and
//! [`ShmError::BadFlags`] for what never reaches them.

use abi::kcall::protection;
use abi::portal::{PortalClass, PortalSpec};
use abi::procman::ProcmanError;
use alloc::string::String;

use crate::client::CallError;
use crate::kernel;
use crate::portal::{self, page_round};

/// Open for reading only.
pub const O_RDONLY: u32 = 0;
/// Open for reading and writing.
pub const O_RDWR: u32 = 2;
/// Create the object if it does not exist.
pub const O_CREAT: u32 = 0x40;
/// With [`O_CREAT`]: fail if it exists.
pub const O_EXCL: u32 = 0x80;

/// Pages may be read.
pub const PROT_READ: u32 = protection::READ;
/// Pages may be written.
pub const PROT_WRITE: u32 = protection::WRITE;
/// Changes are shared with every other mapping of the object.
pub const MAP_SHARED: u32 = 0x01;
/// Changes are private (a copy-on-write child of the object).
pub const MAP_PRIVATE: u32 = 0x02;

/// The directory shm names live in.
pub const SHM_DIRECTORY: &str = "/shm";

/// Why a shm call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmError {
    /// procman or the kernel refused.
    Call(CallError),
    /// Not `/name` with one non-empty component.
    BadName,
    /// Undefined flag bits, or neither / both of MAP_SHARED and MAP_PRIVATE.
    BadFlags,
}

impl ShmError {
    /// Its error number: the refusal's, or INVALID_ARGUMENT for a bad name
    /// or flags (they never reach procman).
    pub fn errno(&self) -> u32 {
        match self {
            ShmError::Call(e) => e.errno(),
            ShmError::BadName | ShmError::BadFlags => abi::Error::InvalidArgument as u32,
        }
    }
}

impl From<CallError> for ShmError {
    fn from(error: CallError) -> Self {
        ShmError::Call(error)
    }
}

impl From<abi::Error> for ShmError {
    fn from(error: abi::Error) -> Self {
        ShmError::Call(CallError::Kernel(error))
    }
}

/// An open shm object: its portal's name and how it was opened.
#[derive(Debug, PartialEq, Eq)]
pub struct ShmFd {
    portal: String,
    writable: bool,
}

impl ShmFd {
    /// The portal's identifier (`/shm/name`).
    pub fn portal(&self) -> &str {
        &self.portal
    }
}

fn portal_name(name: &str) -> Result<String, ShmError> {
    let component = name.strip_prefix('/').ok_or(ShmError::BadName)?;
    if component.is_empty() || component.contains('/') {
        return Err(ShmError::BadName);
    }
    let mut portal = String::from(SHM_DIRECTORY);
    portal.push('/');
    portal.push_str(component);
    Ok(portal)
}

fn prot_of(writable: bool) -> u32 {
    if writable {
        PROT_READ | PROT_WRITE
    } else {
        PROT_READ
    }
}

fn capture(portal: &str, prot: u32) -> Result<portal::Portal, CallError> {
    portal::request(&PortalSpec::capture(portal.as_bytes(), prot))
}

/// Opens (with [`O_CREAT`], creates: unsized until [`ftruncate`]) the shm
/// object `name`.
pub fn shm_open(name: &str, flags: u32) -> Result<ShmFd, ShmError> {
    if flags & !(O_RDWR | O_CREAT | O_EXCL) != 0 {
        return Err(ShmError::BadFlags);
    }
    let portal = portal_name(name)?;
    let writable = flags & O_RDWR != 0;
    let prot = prot_of(writable);
    if flags & O_CREAT != 0 {
        let created = portal::request(&PortalSpec::new_share(portal.as_bytes(), 0, 0));
        match created {
            Ok(_) => return Ok(ShmFd { portal, writable }),
            Err(CallError::Server(errno))
                if errno == ProcmanError::NameExists as u32 && flags & O_EXCL == 0 => {}
            Err(e) => return Err(e.into()),
        }
    }
    capture(&portal, prot)?;
    Ok(ShmFd { portal, writable })
}

/// Sizes the object (once, by its creator): `ftruncate(fd, length)`.
pub fn ftruncate(fd: &ShmFd, length: u64) -> Result<(), ShmError> {
    portal::size(&fd.portal, length)?;
    Ok(())
}

/// Maps `length` bytes of the object from its start (`address` 0: where
/// the kernel chooses) and returns the address. `MAP_SHARED` maps the
/// object itself, `MAP_PRIVATE` a copy-on-write child of it.
pub fn mmap(address: u64, length: u64, prot: u32, flags: u32, fd: &ShmFd) -> Result<u64, ShmError> {
    let shared = flags == MAP_SHARED;
    if !shared && flags != MAP_PRIVATE {
        return Err(ShmError::BadFlags);
    }
    if prot & PROT_WRITE != 0 && shared && !fd.writable {
        return Err(ShmError::Call(CallError::Server(
            ProcmanError::PortalProtDenied as u32,
        )));
    }
    let object = if shared {
        capture(&fd.portal, prot)?
    } else {
        portal::request(&PortalSpec {
            classes: PortalClass::COW,
            prot: prot | PROT_READ,
            identifier: fd.portal.as_bytes(),
            ..PortalSpec::default()
        })?
    };
    let object = object.object.ok_or(ShmError::Call(CallError::Server(
        ProcmanError::PortalUnsized as u32,
    )))?;
    let address = kernel::memory_map(object.descriptor(), address, 0, page_round(length), prot)?;
    // The mapping holds the object; the descriptor goes.
    Ok(address)
}

/// Unmaps `[address, address + length)`.
pub fn munmap(address: u64, length: u64) -> Result<(), ShmError> {
    kernel::unmap(address, page_round(length))?;
    Ok(())
}

/// Closes the object: drops this process's capture (its mappings stay).
pub fn close(fd: ShmFd) -> Result<(), ShmError> {
    portal::release(&fd.portal)?;
    Ok(())
}

/// Removes the name (its creator only); mappings and open objects keep the memory.
pub fn shm_unlink(name: &str) -> Result<(), ShmError> {
    portal::unlink(&portal_name(name)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_component_under_shm() {
        assert_eq!(portal_name("/a").as_deref(), Ok("/shm/a"));
        assert_eq!(portal_name("a"), Err(ShmError::BadName));
        assert_eq!(portal_name("/"), Err(ShmError::BadName));
        assert_eq!(portal_name("/a/b"), Err(ShmError::BadName));
        assert_eq!(shm_open("/a", 0x1000), Err(ShmError::BadFlags));
    }
}
