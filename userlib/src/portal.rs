//! Memory portals and share-points (seed 000; ABI.md §7a.1): the client
//! side of procman's portal protocol, and [`SharePoint`], the only way user
//! code touches a share-point: a lock guard ([`SharePoint::lock`]) whose
//! reads and writes are bounds-checked and typed, and a read-only attach
//! that the kernel maps read-only (procman hands the memory object out
//! without MAP_WRITE, so a write faults; it is not a convention).
//!
//! The lock is the header's `lock` word together with a kernel event
//! procman hands out with the share-point (decision D23): a locker that
//! raises the word from 0 holds it, any other blocks in EVENT_WAIT, and an
//! unlocker that leaves waiters signals the event once. Nobody spins, so a
//! waiter can never keep the holder from running on one CPU.
//!
//! This module must never write a share-point outside a guard, and never
//! restate a number or layout of the protocol (they are `abi::portal`'s).

use abi::kcall::protection;
use abi::portal::{
    PortalReply, PortalRequest, PortalSizeRequest, PortalSpec, PortalTableReply, REPLY_READ_ONLY,
    SHARE_POINT, SHARE_POINT_HEADER_SIZE, SharePointHeader,
};
use abi::procman::NameRequest;
use abi::{Error, PAGE_BYTES};
use alloc::string::String;
use core::sync::atomic::Ordering;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::client::CallError;
use crate::descriptor::OwnedDescriptor;
use crate::kernel;
use crate::procman::PROCMAN;
use crate::raw::RawPages;

/// What a PORTAL request brought back.
#[derive(Debug)]
pub struct Portal {
    /// The memory object (none for an unsized portal).
    pub object: Option<OwnedDescriptor>,
    /// A share-point's lock event (a capture that may write).
    pub lock: Option<OwnedDescriptor>,
    /// The reply's payload.
    pub reply: PortalReply,
}

/// PORTAL: create or capture a portal as `spec` says.
pub fn request(spec: &PortalSpec<'_>) -> Result<Portal, CallError> {
    let header = PortalRequest::new(spec);
    let mut bytes = alloc::vec![0; PortalRequest::tail_length(spec)];
    PortalRequest::encode_tail(spec, &mut bytes).ok_or(CallError::Kernel(Error::BadSizes))?;
    let mut reply = PROCMAN.portal(header, &bytes)?;
    let object = if reply.descriptor_count() > 0 {
        reply.take_descriptor(0)
    } else {
        None
    };
    let lock = if reply.descriptor_count() > 1 {
        reply.take_descriptor(1)
    } else {
        None
    };
    Ok(Portal {
        object,
        lock,
        reply: reply.header,
    })
}

/// PORTAL_SIZE: gives the unsized portal `name` (which this process
/// created) `length` bytes.
pub fn size(name: &str, length: u64) -> Result<(), CallError> {
    PROCMAN.portal_size(
        PortalSizeRequest::new(name.as_bytes(), length),
        name.as_bytes(),
    )?;
    Ok(())
}

/// PORTAL_RELEASE: drops this process's capture of `name`.
pub fn release(name: &str) -> Result<(), CallError> {
    PROCMAN.portal_release(NameRequest::new(name.as_bytes()), name.as_bytes())?;
    Ok(())
}

/// PORTAL_UNLINK: removes the name of a portal this process created.
pub fn unlink(name: &str) -> Result<(), CallError> {
    PROCMAN.portal_unlink(NameRequest::new(name.as_bytes()), name.as_bytes())?;
    Ok(())
}

/// PORTAL_TABLE: procman's portal table in numbers.
pub fn table() -> Result<PortalTableReply, CallError> {
    Ok(PROCMAN.portal_table()?.header)
}

/// Why a share-point operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// procman or the kernel refused.
    Call(CallError),
    /// The access leaves the share-point's data.
    OutOfBounds,
    /// A lock on a read-only attach (it has no lock event and cannot write).
    ReadOnly,
    /// The portal is not a share-point (no header, no lock event).
    NotASharePoint,
    /// A read-only read found a writer inside each of its tries.
    Busy,
}

impl ShareError {
    /// A number for it: the refusal's error number for [`ShareError::Call`],
    /// else 1 (out of bounds), 2 (read-only), 3 (not a share-point), 4 (busy).
    pub fn number(&self) -> u32 {
        match self {
            ShareError::Call(e) => e.errno(),
            ShareError::OutOfBounds => 1,
            ShareError::ReadOnly => 2,
            ShareError::NotASharePoint => 3,
            ShareError::Busy => 4,
        }
    }
}

impl From<CallError> for ShareError {
    fn from(error: CallError) -> Self {
        ShareError::Call(error)
    }
}

impl From<Error> for ShareError {
    fn from(error: Error) -> Self {
        ShareError::Call(CallError::Kernel(error))
    }
}

/// A read-only reader's tries before [`ShareError::Busy`]; it YIELDs
/// between them, and gives up rather than spin (decision D23).
pub const READ_TRIES: u32 = 64;

/// A share-point mapped into this process.
#[derive(Debug)]
pub struct SharePoint {
    name: String,
    pages: RawPages,
    lock: Option<OwnedDescriptor>,
    data: u64,
    length: u64,
}

/// The lock of a share-point, held: reads and writes of its data.
#[derive(Debug)]
pub struct SharePointGuard<'a> {
    point: &'a SharePoint,
}

impl SharePoint {
    /// Creates share-point `name` with `length` data bytes (SHARE | ANON),
    /// with the creator's `share_type` choices (`OTHERS_READ_ONLY`,
    /// `DOMAIN_ONLY`), and maps it read-write.
    pub fn create(name: &str, length: u64, share_type: u32) -> Result<SharePoint, ShareError> {
        let spec = PortalSpec::new_share(name.as_bytes(), length, share_type | SHARE_POINT);
        Self::map(name, request(&spec)?, protection::READ | protection::WRITE)
    }

    /// Captures share-point `name` read-write.
    pub fn attach(name: &str) -> Result<SharePoint, ShareError> {
        Self::capture(name, protection::READ | protection::WRITE)
    }

    /// Captures share-point `name` read-only: the kernel maps it read-only
    /// and this process gets no lock event.
    pub fn attach_read_only(name: &str) -> Result<SharePoint, ShareError> {
        Self::capture(name, protection::READ)
    }

    fn capture(name: &str, prot: u32) -> Result<SharePoint, ShareError> {
        let spec = PortalSpec::capture(name.as_bytes(), prot);
        let portal = request(&spec)?;
        Self::map(name, portal, prot)
    }

    fn map(name: &str, portal: Portal, prot: u32) -> Result<SharePoint, ShareError> {
        let release = || {
            let _ = release(name);
        };
        let Some(object) = portal.object else {
            release();
            return Err(ShareError::NotASharePoint);
        };
        if portal.reply.data_offset == 0 {
            release();
            return Err(ShareError::NotASharePoint);
        }
        let pages = match RawPages::map_object(object.descriptor(), 0, 0, portal.reply.length, prot)
        {
            Ok(pages) => pages,
            Err(e) => {
                release();
                return Err(e.into());
            }
        };
        // The mapping holds the object; the descriptor is not needed.
        drop(object);
        let mut header = [0u8; SHARE_POINT_HEADER_SIZE];
        pages.read(pages.base(), &mut header);
        let header = SharePointHeader::read_from_bytes(&header).unwrap_or_default();
        let data = u64::from(portal.reply.data_offset);
        // The header is procman's; still, never trust it past the mapping.
        let length = header.length.min(portal.reply.length.saturating_sub(data));
        Ok(SharePoint {
            name: String::from(name),
            pages,
            lock: portal.lock,
            data,
            length,
        })
    }

    /// Data bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Where the share-point is mapped (its header first).
    pub fn base(&self) -> u64 {
        self.pages.base()
    }

    /// The governing meta-structure as it is now (each field read once).
    pub fn header(&self) -> SharePointHeader {
        let mut bytes = [0u8; SHARE_POINT_HEADER_SIZE];
        self.pages.read(self.pages.base(), &mut bytes);
        SharePointHeader::read_from_bytes(&bytes).unwrap_or_default()
    }

    /// Whether this attach may write (it has the lock event).
    pub fn writable(&self) -> bool {
        self.lock.is_some()
    }

    fn header_word(&self, field_offset: u64) -> Option<&core::sync::atomic::AtomicU32> {
        self.pages.word(self.pages.base() + field_offset)
    }

    /// Takes the lock, blocking in EVENT_WAIT while another holds it.
    pub fn lock(&self) -> Result<SharePointGuard<'_>, ShareError> {
        let event = self.lock.as_ref().ok_or(ShareError::ReadOnly)?;
        let lock = self.header_word(0).ok_or(ShareError::NotASharePoint)?;
        if lock.fetch_add(1, Ordering::Acquire) != 0 {
            // The holder's unlock signals once for us (a signal before we
            // wait is counted, so none is lost).
            if let Err(e) = kernel::event_wait(event.descriptor()) {
                lock.fetch_sub(1, Ordering::Release);
                return Err(e.into());
            }
        }
        if let Some(sequence) = self.header_word(SEQUENCE_OFFSET) {
            sequence.fetch_add(1, Ordering::AcqRel);
        }
        Ok(SharePointGuard { point: self })
    }

    /// Reads a `T` at data offset `offset` without the lock (a read-only
    /// attach cannot take it): retried while a writer holds the lock or
    /// wrote in between, YIELDing between tries, [`ShareError::Busy`]
    /// after [`READ_TRIES`].
    pub fn read_consistent<T: FromBytes + IntoBytes>(&self, offset: u64) -> Result<T, ShareError> {
        let sequence = self
            .header_word(SEQUENCE_OFFSET)
            .ok_or(ShareError::NotASharePoint)?;
        for _ in 0..READ_TRIES {
            let before = sequence.load(Ordering::Acquire);
            if before.is_multiple_of(2) {
                let value = self.read_at::<T>(offset)?;
                core::sync::atomic::fence(Ordering::Acquire);
                if sequence.load(Ordering::Acquire) == before {
                    return Ok(value);
                }
            }
            kernel::yield_now()?;
        }
        Err(ShareError::Busy)
    }

    fn span(&self, offset: u64, length: usize) -> Result<u64, ShareError> {
        let end = offset
            .checked_add(length as u64)
            .ok_or(ShareError::OutOfBounds)?;
        if end > self.length {
            return Err(ShareError::OutOfBounds);
        }
        Ok(self.pages.base() + self.data + offset)
    }

    fn read_at<T: FromBytes + IntoBytes>(&self, offset: u64) -> Result<T, ShareError> {
        let mut value = T::new_zeroed();
        let at = self.span(offset, core::mem::size_of::<T>())?;
        self.pages.copy_out(at, value.as_mut_bytes());
        Ok(value)
    }
}

/// Where `sequence` lies in the header.
const SEQUENCE_OFFSET: u64 = core::mem::offset_of!(SharePointHeader, sequence) as u64;

impl SharePointGuard<'_> {
    /// The `T` at data offset `offset`.
    pub fn read<T: FromBytes + IntoBytes>(&self, offset: u64) -> Result<T, ShareError> {
        self.point.read_at(offset)
    }

    /// Writes `value` at data offset `offset`.
    pub fn write<T: IntoBytes + Immutable>(
        &self,
        offset: u64,
        value: &T,
    ) -> Result<(), ShareError> {
        self.write_bytes(offset, value.as_bytes())
    }

    /// Copies `out.len()` data bytes from `offset`.
    pub fn read_bytes(&self, offset: u64, out: &mut [u8]) -> Result<(), ShareError> {
        let at = self.point.span(offset, out.len())?;
        self.point.pages.copy_out(at, out);
        Ok(())
    }

    /// Writes `bytes` at data offset `offset`.
    pub fn write_bytes(&self, offset: u64, bytes: &[u8]) -> Result<(), ShareError> {
        let at = self.point.span(offset, bytes.len())?;
        self.point.pages.copy_in(at, bytes);
        Ok(())
    }
}

impl Drop for SharePointGuard<'_> {
    fn drop(&mut self) {
        if let Some(sequence) = self.point.header_word(SEQUENCE_OFFSET) {
            sequence.fetch_add(1, Ordering::AcqRel);
        }
        if let (Some(lock), Some(event)) = (self.point.header_word(0), &self.point.lock)
            && lock.fetch_sub(1, Ordering::Release) > 1
        {
            let _ = kernel::event_signal(event.descriptor());
        }
    }
}

impl Drop for SharePoint {
    /// Unmaps it (the pages' drop) and drops this process's capture.
    fn drop(&mut self) {
        let _ = release(&self.name);
    }
}

/// Bytes of a whole number of pages covering `length`.
pub fn page_round(length: u64) -> u64 {
    length.div_ceil(PAGE_BYTES) * PAGE_BYTES
}

/// Whether a PORTAL reply's object came without MAP_WRITE.
pub fn is_read_only(reply: &PortalReply) -> bool {
    reply.flags & REPLY_READ_ONLY != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_kernel::{self, FakeCall};
    use abi::portal::{PORTAL, PortalClass, REPLY_CREATED};
    use abi::{Descriptor, DescriptorSlot, Rights, TrapArgs};

    #[test]
    fn a_portal_request_goes_to_procman_with_its_bytes_after_the_header() {
        let portal = fake_kernel::run(
            |call: &mut FakeCall| {
                assert_eq!(call.function(), PORTAL);
                assert_eq!(call.target(), Descriptor::NULL);
                let data = call.data().to_vec();
                let (header, _) = PortalRequest::read_from_prefix(&data).expect("a header");
                assert_eq!(header.classes, PortalClass::SHARE);
                assert_eq!(header.share.identifier_offset, 72);
                assert_eq!(PortalRequest::part(&data, 72, 7), Some(&b"/shm/sp"[..]));
                let reply = PortalReply {
                    length: 4096,
                    data_offset: 32,
                    flags: REPLY_CREATED,
                };
                let mut payload = alloc::vec![0u8; 8];
                payload.extend_from_slice(reply.as_bytes());
                let sizes = call.write_reply(
                    &payload,
                    &[
                        DescriptorSlot::moving(Descriptor(5), Rights::MEMORY),
                        DescriptorSlot::moving(Descriptor(6), Rights::SIGNAL),
                    ],
                );
                TrapArgs::replied(0, 0, sizes)
            },
            || request(&PortalSpec::capture(b"/shm/sp", protection::READ)),
        );
        let portal = portal.expect("granted");
        assert_eq!(portal.reply.data_offset, 32);
        assert_eq!(
            portal.object.map(OwnedDescriptor::into_raw),
            Some(Descriptor(5))
        );
        assert_eq!(
            portal.lock.map(OwnedDescriptor::into_raw),
            Some(Descriptor(6))
        );
        assert_eq!(page_round(1), PAGE_BYTES);
        assert_eq!(page_round(PAGE_BYTES), PAGE_BYTES);
    }

    #[test]
    fn share_errors_have_distinct_numbers() {
        let all = [
            ShareError::OutOfBounds,
            ShareError::ReadOnly,
            ShareError::NotASharePoint,
            ShareError::Busy,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.number(), b.number());
            }
        }
    }
}
