//! Memory portals (seed 000) as a process-manager protocol: functions
//! `0x410-0x41F` sent to the NULL target, the portal request with its
//! classes, share, server chain and morphology, and the share-point's
//! governing meta-structure ([`SharePointHeader`]).
//!
//! The seed's `struct portal_req` holds pointers (`identifier`, the chain's
//! `name` and `message`) and a flexible frame array. A message carries no
//! pointers, so here each of them is an **offset and a length into the
//! message data** (counted from the start of the [`PortalRequest`] header);
//! the bytes themselves follow the header. [`PortalRequest::encode`] lays
//! them out. ABI.md §7a.1.
//!
//! This module holds numbers and layouts only; procman keeps the table and
//! `userlib::portal` the only way user code touches a share-point.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::Function;
use crate::kcall::protection;

/// The portal request: create or capture a portal ([`PortalRequest`] and
/// the bytes its offsets name) -> [`PortalReply`]; slot 0 the memory
/// object (absent for an unsized portal), slot 1 a share-point's lock
/// event (when the capture may write).
pub const PORTAL: Function = Function(0x410);
/// Size an unsized named portal once (`ftruncate`): [`PortalSizeRequest`] +
/// identifier. Only its creator.
pub const PORTAL_SIZE: Function = Function(0x411);
/// Drop the caller's capture of a named portal: `NameRequest` + identifier.
pub const PORTAL_RELEASE: Function = Function(0x412);
/// Remove a named portal's name (its creator only): `NameRequest` + identifier.
pub const PORTAL_UNLINK: Function = Function(0x413);
/// procman's portal table in numbers: empty request -> [`PortalTableReply`].
pub const PORTAL_TABLE: Function = Function(0x414);

/// Portal classes (seed 000 "Class"): a request names one or a meaningful
/// combination of them (ABI.md §7a.1 lists which).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(transparent)]
pub struct PortalClass(pub u32);

impl PortalClass {
    /// Shared between processes under an identifier.
    pub const SHARE: PortalClass = PortalClass(1 << 0);
    /// A physical range (MMIO, firmware tables): privileged.
    pub const DIRECT: PortalClass = PortalClass(1 << 1);
    /// Anonymous zero-filled memory.
    pub const ANON: PortalClass = PortalClass(1 << 2);
    /// A copy-on-write child of a named portal's memory.
    pub const COW: PortalClass = PortalClass(1 << 3);
    /// Memory whose pages a chain of servers (pagers) supplies: privileged.
    pub const SPECIAL: PortalClass = PortalClass(1 << 4);
    /// Every defined class.
    pub const ALL: PortalClass = PortalClass(0x1f);
    /// The classes only privileged domains are given (`portal_classes` in
    /// the manifest decides; these two are never in an unprivileged
    /// domain's list in the shipped manifest).
    pub const PRIVILEGED: PortalClass = PortalClass(Self::DIRECT.0 | Self::SPECIAL.0);

    /// The manifest's names of the classes, in bit order.
    pub const NAMES: [(&'static str, PortalClass); 5] = [
        ("share", PortalClass::SHARE),
        ("direct", PortalClass::DIRECT),
        ("anon", PortalClass::ANON),
        ("cow", PortalClass::COW),
        ("special", PortalClass::SPECIAL),
    ];

    /// Whether every class of `other` is in `self`.
    pub const fn contains(self, other: PortalClass) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub const fn with(self, other: PortalClass) -> PortalClass {
        PortalClass(self.0 | other.0)
    }

    /// The class named `name` in the manifest.
    pub fn from_name(name: &str) -> Option<PortalClass> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, class)| *class)
    }
}

/// `PortalShare::share_type` bit: a share-point: procman writes the
/// [`SharePointHeader`] into the first bytes and hands out a lock event.
pub const SHARE_POINT: u32 = 1 << 0;
/// `PortalShare::share_type` bit (the creator's choice): other processes
/// may capture it read-only only.
pub const OTHERS_READ_ONLY: u32 = 1 << 1;
/// `PortalShare::share_type` bit (the creator's choice): only processes of
/// the creator's domain may capture it.
pub const DOMAIN_ONLY: u32 = 1 << 2;
/// Every defined share-type bit.
pub const SHARE_TYPE_ALL: u32 = SHARE_POINT | OTHERS_READ_ONLY | DOMAIN_ONLY;

/// The most bytes a portal may hold (64 MiB, a process's default charge).
pub const MAX_PORTAL_BYTES: u64 = 64 << 20;
/// The most frames a morphology may list (a DIRECT range, one entry a page).
pub const MAX_FRAMES: u32 = 256;
/// Named portals one process may have created at once (each costs procman
/// a descriptor, and a share-point one more for its lock event).
pub const MAX_PORTALS_PER_PROCESS: usize = 16;
/// Named portals one process may hold captured at once.
pub const MAX_CAPTURES_PER_PROCESS: usize = 64;

/// The seed's `share`: which portal, of what type, created or captured.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalShare {
    /// Where the identifier starts in the message data (0 when none).
    pub identifier_offset: u32,
    /// Its length (0: no identifier).
    pub identifier_length: u32,
    /// [`SHARE_POINT`], [`OTHERS_READ_ONLY`], [`DOMAIN_ONLY`].
    pub share_type: u32,
    /// 1: create the named portal; 0: capture an existing one.
    pub create: u32,
}

/// The seed's `sp_req_chain`: the chain of servers of a SPECIAL portal.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalChain {
    /// Where the first server's name starts in the message data.
    pub name_offset: u32,
    /// Its length (0: no chain).
    pub name_length: u32,
    /// Where the message for the chain starts.
    pub message_offset: u32,
    /// Its length.
    pub message_length: u32,
}

/// The seed's `morphology`: where the caller will map it and, for DIRECT,
/// the physical frames.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalMorphology {
    /// Where the caller means to map it (0: anywhere); page-aligned.
    /// Recorded in a share-point's header, never mapped by procman.
    pub address: u64,
    /// The bytes of memory behind the portal (pages), or 0 to take
    /// `PortalRequest::length` rounded up.
    pub length: u64,
    /// Where the frame list (little-endian `u64` physical addresses, one a
    /// page, contiguous) starts in the message data.
    pub frame_offset: u32,
    /// Frames in the list (DIRECT only).
    pub frame_count: u32,
}

/// PORTAL's header (72 bytes); the identifier, chain name, chain message
/// and frame list follow it where its offsets say.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalRequest {
    /// [`PortalClass`] bits.
    pub classes: PortalClass,
    /// Protection the caller wants (READ, WRITE, EXECUTE): the memory
    /// rights of the object it gets.
    pub prot: u32,
    /// Bytes wanted (for a share-point: the data after the header; 0 when
    /// capturing or for an unsized named portal).
    pub length: u64,
    /// The share.
    pub share: PortalShare,
    /// The server chain.
    pub chain: PortalChain,
    /// The morphology.
    pub morphology: PortalMorphology,
}

/// The parts of a portal request, as [`PortalRequest::encode`] takes them.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortalSpec<'a> {
    /// Classes.
    pub classes: PortalClass,
    /// Protection.
    pub prot: u32,
    /// Bytes wanted.
    pub length: u64,
    /// The identifier (empty: none).
    pub identifier: &'a [u8],
    /// Share-type bits.
    pub share_type: u32,
    /// Create (true) or capture.
    pub create: bool,
    /// The chain's first server (empty: none).
    pub chain_name: &'a [u8],
    /// The chain's message.
    pub chain_message: &'a [u8],
    /// Where the caller means to map it.
    pub address: u64,
    /// Morphology length (0: from `length`).
    pub morphology_length: u64,
    /// Physical frames (DIRECT).
    pub frames: &'a [u64],
}

impl<'a> PortalSpec<'a> {
    /// Creating the named share `identifier` (SHARE | ANON) of `length`
    /// bytes, read-write, with the creator's `share_type` bits.
    pub fn new_share(identifier: &'a [u8], length: u64, share_type: u32) -> Self {
        PortalSpec {
            classes: PortalClass::SHARE.with(PortalClass::ANON),
            prot: protection::READ | protection::WRITE,
            length,
            identifier,
            share_type,
            create: true,
            ..PortalSpec::default()
        }
    }

    /// Capturing the named share `identifier` with `prot`.
    pub fn capture(identifier: &'a [u8], prot: u32) -> Self {
        PortalSpec {
            classes: PortalClass::SHARE,
            prot,
            identifier,
            ..PortalSpec::default()
        }
    }
}

/// The size of [`PortalRequest`]: the variable bytes start here.
pub const PORTAL_REQUEST_SIZE: usize = core::mem::size_of::<PortalRequest>();

impl PortalRequest {
    /// The header for `spec`, its offsets laid out as [`PortalRequest::encode`]
    /// writes the bytes: identifier, chain name, chain message, frames.
    pub fn new(spec: &PortalSpec<'_>) -> Self {
        let mut at = PORTAL_REQUEST_SIZE as u32;
        let mut place = |length: usize| {
            let length = u32::try_from(length).unwrap_or(u32::MAX);
            let offset = if length == 0 { 0 } else { at };
            at = at.saturating_add(length);
            (offset, length)
        };
        let (identifier_offset, identifier_length) = place(spec.identifier.len());
        let (name_offset, name_length) = place(spec.chain_name.len());
        let (message_offset, message_length) = place(spec.chain_message.len());
        let (frame_offset, frame_bytes) = place(spec.frames.len() * 8);
        PortalRequest {
            classes: spec.classes,
            prot: spec.prot,
            length: spec.length,
            share: PortalShare {
                identifier_offset,
                identifier_length,
                share_type: spec.share_type,
                create: u32::from(spec.create),
            },
            chain: PortalChain {
                name_offset,
                name_length,
                message_offset,
                message_length,
            },
            morphology: PortalMorphology {
                address: spec.address,
                length: spec.morphology_length,
                frame_offset,
                frame_count: frame_bytes / 8,
            },
        }
    }

    /// Writes the whole request data into `out`; its length, or `None`
    /// when it does not fit.
    pub fn encode(spec: &PortalSpec<'_>, out: &mut [u8]) -> Option<usize> {
        let header = Self::new(spec);
        let at = crate::kcall::encode_into(header.as_bytes(), &[], out)?;
        let tail = Self::encode_tail(spec, out.get_mut(at..)?)?;
        Some(at + tail)
    }

    /// How many bytes follow the header for `spec` (what
    /// [`PortalRequest::encode_tail`] writes).
    pub fn tail_length(spec: &PortalSpec<'_>) -> usize {
        spec.identifier.len()
            + spec.chain_name.len()
            + spec.chain_message.len()
            + spec.frames.len() * 8
    }

    /// Writes the bytes that follow the header (identifier, chain name,
    /// chain message, frames), for a sender that passes header and bytes
    /// apart; their length, or `None` when they do not fit `out`.
    pub fn encode_tail(spec: &PortalSpec<'_>, out: &mut [u8]) -> Option<usize> {
        let mut at = crate::kcall::encode_into(
            spec.identifier,
            &[spec.chain_name, spec.chain_message],
            out,
        )?;
        for frame in spec.frames {
            out.get_mut(at..at + 8)?
                .copy_from_slice(&frame.to_le_bytes());
            at += 8;
        }
        Some(at)
    }

    /// The bytes `[offset, offset + length)` of the message data `data`
    /// (which starts with this header), when they lie wholly after the
    /// header; an empty slice for length 0 with offset 0.
    pub fn part(data: &[u8], offset: u32, length: u32) -> Option<&[u8]> {
        if length == 0 {
            return (offset == 0).then_some(&[][..]);
        }
        let start = offset as usize;
        if start < PORTAL_REQUEST_SIZE {
            return None;
        }
        data.get(start..start.checked_add(length as usize)?)
    }
}

/// PORTAL's reply payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalReply {
    /// Bytes of the memory object (0: an unsized portal, no object).
    pub length: u64,
    /// Where a share-point's data starts in the object (0 otherwise).
    pub data_offset: u32,
    /// [`REPLY_CREATED`], [`REPLY_SHARE_POINT`], [`REPLY_READ_ONLY`].
    pub flags: u32,
}

/// [`PortalReply::flags`]: this request created the portal.
pub const REPLY_CREATED: u32 = 1 << 0;
/// [`PortalReply::flags`]: the portal is a share-point.
pub const REPLY_SHARE_POINT: u32 = 1 << 1;
/// [`PortalReply::flags`]: the object came without MAP_WRITE.
pub const REPLY_READ_ONLY: u32 = 1 << 2;

/// PORTAL_SIZE: the identifier follows.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalSizeRequest {
    /// Length of the identifier that follows.
    pub identifier_length: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The portal's size in bytes (rounded up to pages).
    pub length: u64,
}

impl PortalSizeRequest {
    /// PORTAL_SIZE's header for `identifier` and `length`.
    pub fn new(identifier: &[u8], length: u64) -> Self {
        PortalSizeRequest {
            identifier_length: crate::kcall::length_of(identifier),
            reserved: 0,
            length,
        }
    }
}

/// PORTAL_TABLE's reply payload: procman's whole portal table.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PortalTableReply {
    /// Named portals.
    pub portals: u32,
    /// Capture records (a process and a portal it captured).
    pub captures: u32,
    /// Descriptors procman holds for portals (memory objects, lock events).
    pub descriptors: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

impl PortalTableReply {
    /// PORTAL_TABLE's reply: the counts of procman's portal table.
    pub const fn new(portals: u32, captures: u32, descriptors: u32) -> Self {
        PortalTableReply {
            portals,
            captures,
            descriptors,
            reserved: 0,
        }
    }
}

/// The governing meta-structure at the start of every share-point (seed
/// 000 "Trivial Share-Point"), written by procman when it creates one. The
/// frame list (`frame_count` little-endian `u64`s) follows it; the data
/// starts at the next 16-byte boundary ([`SharePointHeader::data_offset`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SharePointHeader {
    /// The lock: a count of holders and waiters (0 free). A locker that
    /// raises it from 0 holds the lock; any other waits on the lock event
    /// procman handed out with the share-point; an unlocker that leaves it
    /// above 0 signals that event once. Decision D23.
    pub lock: u32,
    /// The creator's protection (READ, WRITE, EXECUTE).
    pub prot: u32,
    /// Data bytes: the share-point proper, after the header.
    pub length: u64,
    /// The morphology's length: bytes of the memory object.
    pub morphology_length: u64,
    /// Frames listed after the header (DIRECT share-points).
    pub frame_count: u32,
    /// Even while no writer holds the lock, odd while one writes: lets a
    /// read-only attacher (who cannot take the lock) tell a torn read.
    pub sequence: u32,
}

/// The size of [`SharePointHeader`].
pub const SHARE_POINT_HEADER_SIZE: usize = core::mem::size_of::<SharePointHeader>();

impl SharePointHeader {
    /// Where the data starts for a header with `frame_count` frames: the
    /// next 16-byte boundary after the header and its frame list.
    pub const fn data_offset(frame_count: u32) -> u64 {
        let end = SHARE_POINT_HEADER_SIZE as u64 + 8 * frame_count as u64;
        (end + 15) & !15
    }
}

/// Whether `prot` is a protection a portal request may name: READ, with
/// WRITE and EXECUTE optional.
pub const fn prot_is_valid(prot: u32) -> bool {
    prot & !protection::ALL == 0 && prot & protection::READ != 0
}

const _: () = assert!(PORTAL_REQUEST_SIZE == 72);
const _: () = assert!(SHARE_POINT_HEADER_SIZE == 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_lay_their_bytes_after_the_header() {
        let spec = PortalSpec {
            classes: PortalClass::SHARE.with(PortalClass::DIRECT),
            prot: protection::READ,
            length: 8192,
            identifier: b"/shm/x",
            share_type: SHARE_POINT,
            create: true,
            chain_name: b"/srv/pager",
            chain_message: b"m",
            address: 0x10_0000,
            morphology_length: 8192,
            frames: &[0xe0000, 0xe1000],
        };
        let mut out = [0u8; 256];
        let length = PortalRequest::encode(&spec, &mut out).expect("fits");
        assert_eq!(length, 72 + 6 + 10 + 1 + 16);
        let (header, _) = PortalRequest::read_from_prefix(&out).expect("header");
        assert_eq!(header.share.identifier_offset, 72);
        assert_eq!(
            PortalRequest::part(&out[..length], 72, 6),
            Some(&b"/shm/x"[..])
        );
        assert_eq!(header.chain.name_offset, 78);
        assert_eq!(header.chain.message_offset, 88);
        assert_eq!(header.morphology.frame_offset, 89);
        assert_eq!(header.morphology.frame_count, 2);
        assert_eq!(&out[89..97], &0xe0000u64.to_le_bytes());
        assert_eq!(header.share.create, 1);
        assert_eq!(PortalRequest::encode(&spec, &mut out[..100]), None);
        // Parts inside the header, past the data, or with an offset and no
        // length are refused.
        assert_eq!(PortalRequest::part(&out[..length], 8, 4), None);
        assert_eq!(PortalRequest::part(&out[..length], 100, 6), None);
        assert_eq!(PortalRequest::part(&out[..length], 72, 0), None);
        assert_eq!(PortalRequest::part(&out[..length], 0, 0), Some(&[][..]));
        assert_eq!(
            PortalRequest::part(&out[..length], u32::MAX, u32::MAX),
            None
        );
    }

    #[test]
    fn share_point_data_starts_at_a_16_byte_boundary() {
        assert_eq!(SharePointHeader::data_offset(0), 32);
        assert_eq!(SharePointHeader::data_offset(1), 48);
        assert_eq!(SharePointHeader::data_offset(2), 48);
        assert_eq!(SharePointHeader::data_offset(3), 64);
        for n in 0..MAX_FRAMES {
            assert_eq!(SharePointHeader::data_offset(n) % 16, 0);
        }
    }

    #[test]
    fn classes_by_name() {
        assert_eq!(PortalClass::from_name("cow"), Some(PortalClass::COW));
        assert_eq!(PortalClass::from_name("Cow"), None);
        let all = PortalClass::NAMES
            .iter()
            .fold(PortalClass(0), |a, (_, c)| a.with(*c));
        assert_eq!(all, PortalClass::ALL);
        assert!(prot_is_valid(protection::READ | protection::WRITE));
        assert!(!prot_is_valid(protection::WRITE));
        assert!(!prot_is_valid(protection::READ | 8));
    }
}
