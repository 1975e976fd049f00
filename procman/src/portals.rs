//! The memory-portal table (seed 000): each named portal's identifier, its
//! creator, the processes that captured it and procman's descriptor for its
//! memory object; and the decisions on every portal request, made before
//! anything changes ([`PortalTable::plan`]), so the server acts only on a
//! request that passed every check and a refusal changes nothing.
//!
//! The seed keeps the table "in kernel space"; here it is procman's, since
//! procman owns every name and every security decision (DESIGN, seed 004).
//! This module never makes a kernel call and never trusts what a caller
//! says about itself: callers are the process ids procman gave them.

use abi::portal::{
    self, DOMAIN_ONLY, MAX_CAPTURES_PER_PROCESS, MAX_FRAMES, MAX_PORTAL_BYTES,
    MAX_PORTALS_PER_PROCESS, OTHERS_READ_ONLY, PORTAL_REQUEST_SIZE, PortalClass, PortalRequest,
    SHARE_POINT, SHARE_TYPE_ALL, SharePointHeader,
};
use abi::procman::ProcmanError;
use abi::{PAGE_SIZE, Rights};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::namespace::check_name;

const PAGE: u64 = PAGE_SIZE as u64;

/// Who asks, as procman knows it.
pub struct Caller<'a> {
    /// Its process id.
    pub pid: u32,
    /// Its domain's index.
    pub domain: usize,
    /// The portal classes its domain may ask for.
    pub classes: PortalClass,
    /// Whether its domain may register a name (a `register` prefix starts it).
    pub may_register: &'a dyn Fn(&str) -> bool,
}

impl core::fmt::Debug for Caller<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Caller")
            .field("pid", &self.pid)
            .field("domain", &self.domain)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

/// One named portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalEntry {
    /// The process that created it; its end (or UNLINK) removes the name.
    pub creator: u32,
    /// The creator's domain (for [`DOMAIN_ONLY`]).
    pub creator_domain: usize,
    /// Its share-type bits.
    pub share_type: u32,
    /// The creator's protection: no capture is wider.
    pub prot: u32,
    /// A physical range rather than anonymous memory.
    pub direct: bool,
    /// procman's descriptor for the memory object (`None`: unsized).
    pub object: Option<u32>,
    /// Bytes of the memory object.
    pub length: u64,
    /// Where a share-point's data starts (0 otherwise).
    pub data_offset: u32,
    /// procman's descriptor for a share-point's lock event.
    pub lock_event: Option<u32>,
    /// The processes holding a capture (the creator's creation is one).
    pub captures: BTreeSet<u32>,
}

/// Memory to make for a new portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// `pages` anonymous zero-filled pages (MEMORY_CREATE).
    Anonymous {
        /// Pages.
        pages: u32,
    },
    /// A physical range (MEMORY_DIRECT).
    Direct {
        /// Its first byte.
        physical: u64,
        /// Its length.
        length: u64,
    },
    /// None yet: a named portal sized later (PORTAL_SIZE).
    Unsized,
}

/// What a portal request asks procman to do, once every check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Private memory: make it and move it to the caller; nothing is recorded.
    Private {
        /// The memory.
        memory: Memory,
        /// The rights the caller gets.
        rights: Rights,
    },
    /// A new named portal: make the memory (and, for a share-point, write
    /// its header and make its lock event), record it, hand out a copy.
    Create {
        /// Its identifier.
        name: String,
        /// The memory.
        memory: Memory,
        /// The header to write, for a share-point.
        header: Option<SharePointHeader>,
        /// The frames after the header.
        frames: Vec<u64>,
        /// The entry to record once the memory exists (its `object`,
        /// `lock_event` filled in by the server).
        entry: PortalEntry,
        /// The rights the caller gets.
        rights: Rights,
    },
    /// A private special object (PAGER_CREATE) whose pages the server
    /// registered as `pager` in procman's namespace supplies, moved to the
    /// caller; nothing is recorded (decision D25).
    Special {
        /// The chain's first server: a name of procman's namespace.
        pager: String,
        /// Pages of the object.
        pages: u32,
        /// The chain's message, as the object's cookie (every PAGE_REQUEST
        /// carries it): its bytes little-endian, zero-padded to 8.
        cookie: u64,
        /// The rights the caller gets.
        rights: Rights,
    },
    /// A capture of a named portal: hand out a copy of its object.
    Capture {
        /// Its identifier.
        name: String,
        /// The rights the caller gets.
        rights: Rights,
        /// Whether the caller gets the share-point's lock event.
        lock: bool,
    },
    /// A private copy-on-write child of a named portal's memory.
    Cow {
        /// Its identifier.
        name: String,
        /// Bytes of the child (from offset 0).
        length: u64,
        /// The rights the caller gets.
        rights: Rights,
    },
}

/// Descriptors procman closes when a portal's name goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Memory objects and lock events.
    pub descriptors: Vec<u32>,
}

/// The table of named portals.
#[derive(Debug, Default)]
pub struct PortalTable {
    entries: BTreeMap<String, PortalEntry>,
}

/// The rights a capture with `prot` gets (who holds the object may pass
/// it on or copy it, never widen it).
pub fn rights_for(prot: u32) -> Rights {
    Rights(Rights::for_protection(prot).0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0)
}

fn pages_for(bytes: u64) -> Result<u32, ProcmanError> {
    if bytes == 0 || bytes > MAX_PORTAL_BYTES {
        return Err(ProcmanError::PortalBadLength);
    }
    u32::try_from(bytes.div_ceil(PAGE)).map_err(|_| ProcmanError::PortalBadLength)
}

/// A request's variable part `[offset, offset + length)`, offsets counted
/// from the header's start; `bytes` are the data after the header.
fn part(bytes: &[u8], offset: u32, length: u32) -> Result<&[u8], ProcmanError> {
    if length == 0 {
        return if offset == 0 {
            Ok(&[])
        } else {
            Err(ProcmanError::BadRequest)
        };
    }
    let start = (offset as usize)
        .checked_sub(PORTAL_REQUEST_SIZE)
        .ok_or(ProcmanError::BadRequest)?;
    let end = start
        .checked_add(length as usize)
        .ok_or(ProcmanError::BadRequest)?;
    bytes.get(start..end).ok_or(ProcmanError::BadRequest)
}

/// A DIRECT morphology's range: contiguous, page-aligned frames.
fn direct_range(frames: &[u64]) -> Result<(u64, u64), ProcmanError> {
    let first = *frames.first().ok_or(ProcmanError::PortalBadMorphology)?;
    for (i, frame) in frames.iter().enumerate() {
        let expected = first.checked_add(i as u64 * PAGE);
        if !frame.is_multiple_of(PAGE) || Some(*frame) != expected {
            return Err(ProcmanError::PortalBadMorphology);
        }
    }
    Ok((first, frames.len() as u64 * PAGE))
}

/// The most bytes of a SPECIAL request's chain message: it becomes the
/// special object's 8-byte cookie.
pub const MAX_CHAIN_MESSAGE: usize = 8;

/// A SPECIAL request, once its classes passed the policy (ABI.md §7a.1,
/// decision D25): SPECIAL alone, private (no identifier, no share type,
/// create 0, no frames), a chain whose first server is a name and whose
/// message fits the cookie; a length as for ANON.
fn plan_special(
    header: &PortalRequest,
    chain_name: &[u8],
    chain_message: &[u8],
    identifier: &[u8],
    frames: &[u64],
) -> Result<Plan, ProcmanError> {
    if header.classes != PortalClass::SPECIAL {
        return Err(ProcmanError::PortalBadClass);
    }
    let share = header.share;
    if share.create != 0
        || share.share_type != 0
        || !identifier.is_empty()
        || !frames.is_empty()
        || chain_name.is_empty()
        || chain_message.len() > MAX_CHAIN_MESSAGE
    {
        return Err(ProcmanError::BadRequest);
    }
    let prot = header.prot;
    if !portal::prot_is_valid(prot) {
        return Err(ProcmanError::PortalBadProt);
    }
    if !header.morphology.address.is_multiple_of(PAGE) {
        return Err(ProcmanError::PortalBadMorphology);
    }
    let pager = core::str::from_utf8(chain_name).map_err(|_| ProcmanError::BadName)?;
    check_name(pager)?;
    let pages = pages_for(header.length)?;
    check_morphology_length(header.morphology.length, u64::from(pages) * PAGE)?;
    let mut cookie = [0u8; 8];
    cookie[..chain_message.len()].copy_from_slice(chain_message);
    Ok(Plan::Special {
        pager: pager.to_string(),
        pages,
        cookie: u64::from_le_bytes(cookie),
        rights: rights_for(prot),
    })
}

impl PortalTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&PortalEntry> {
        self.entries.get(name)
    }

    /// Named portals.
    pub fn portals(&self) -> usize {
        self.entries.len()
    }

    /// Capture records.
    pub fn captures(&self) -> usize {
        self.entries.values().map(|e| e.captures.len()).sum()
    }

    /// Descriptors procman holds for portals.
    pub fn descriptors(&self) -> usize {
        self.entries
            .values()
            .map(|e| usize::from(e.object.is_some()) + usize::from(e.lock_event.is_some()))
            .sum()
    }

    /// Portals `pid` created.
    pub fn created_by(&self, pid: u32) -> usize {
        self.entries.values().filter(|e| e.creator == pid).count()
    }

    /// Portals `pid` holds a capture of.
    pub fn captured_by(&self, pid: u32) -> usize {
        self.entries
            .values()
            .filter(|e| e.captures.contains(&pid))
            .count()
    }

    fn may_capture_one_more(&self, pid: u32, name: &str) -> Result<(), ProcmanError> {
        let already = self
            .entries
            .get(name)
            .is_some_and(|e| e.captures.contains(&pid));
        if !already && self.captured_by(pid) >= MAX_CAPTURES_PER_PROCESS {
            return Err(ProcmanError::TooManyCaptures);
        }
        Ok(())
    }

    /// Decides a PORTAL request (`header`, then `bytes`, the data after it)
    /// from `caller`, in the order of ABI.md §7a.1; nothing changes.
    pub fn plan(
        &self,
        caller: &Caller<'_>,
        header: &PortalRequest,
        bytes: &[u8],
    ) -> Result<Plan, ProcmanError> {
        // 1. The request's shape.
        let share = header.share;
        if share.create > 1 || share.share_type & !SHARE_TYPE_ALL != 0 {
            return Err(ProcmanError::BadRequest);
        }
        let identifier = part(bytes, share.identifier_offset, share.identifier_length)?;
        let chain_name = part(bytes, header.chain.name_offset, header.chain.name_length)?;
        let chain_message = part(
            bytes,
            header.chain.message_offset,
            header.chain.message_length,
        )?;
        let morphology = header.morphology;
        if morphology.frame_count > MAX_FRAMES {
            return Err(ProcmanError::PortalBadMorphology);
        }
        let frame_bytes = part(bytes, morphology.frame_offset, morphology.frame_count * 8)?;
        let frames: Vec<u64> = frame_bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();

        // 2. The classes: defined, then allowed to the domain, then served.
        let classes = header.classes;
        if classes.0 == 0 || classes.0 & !PortalClass::ALL.0 != 0 {
            return Err(ProcmanError::PortalBadClass);
        }
        if !caller.classes.contains(classes) {
            return Err(ProcmanError::PortalClassDenied);
        }
        if classes.contains(PortalClass::SPECIAL) {
            return plan_special(header, chain_name, chain_message, identifier, &frames);
        }
        if !chain_name.is_empty() || !chain_message.is_empty() {
            // A chain belongs to SPECIAL alone.
            return Err(ProcmanError::BadRequest);
        }

        // 3. The combination.
        let share_class = classes.contains(PortalClass::SHARE);
        let anon = classes.contains(PortalClass::ANON);
        let direct = classes.contains(PortalClass::DIRECT);
        let cow = classes.contains(PortalClass::COW);
        let create = share.create == 1;
        let kind = match (share_class, anon, direct, cow, create) {
            (false, true, false, false, false) => Kind::PrivateAnon,
            (false, false, true, false, false) => Kind::PrivateDirect,
            (true, true, false, false, true) => Kind::CreateAnon,
            (true, false, true, false, true) => Kind::CreateDirect,
            (true, false, false, false, false) => Kind::Capture,
            (false, false, false, true, false) => Kind::Cow,
            _ => return Err(ProcmanError::PortalBadClass),
        };
        let named = !matches!(kind, Kind::PrivateAnon | Kind::PrivateDirect);
        if named == identifier.is_empty()
            || (!create && share.share_type != 0)
            || (!matches!(kind, Kind::PrivateDirect | Kind::CreateDirect) && !frames.is_empty())
        {
            return Err(ProcmanError::BadRequest);
        }

        // 4. The protection.
        let prot = header.prot;
        if !portal::prot_is_valid(prot) || (direct && prot & abi::kcall::protection::EXECUTE != 0) {
            return Err(ProcmanError::PortalBadProt);
        }
        let rights = rights_for(prot);
        if !morphology.address.is_multiple_of(PAGE) {
            return Err(ProcmanError::PortalBadMorphology);
        }

        // 5. The identifier.
        let name = if named {
            let name = core::str::from_utf8(identifier).map_err(|_| ProcmanError::BadName)?;
            check_name(name)?;
            Some(name)
        } else {
            None
        };

        match kind {
            Kind::PrivateAnon | Kind::PrivateDirect => {
                let memory = if kind == Kind::PrivateAnon {
                    if !frames.is_empty() {
                        return Err(ProcmanError::PortalBadMorphology);
                    }
                    let pages = pages_for(header.length)?;
                    check_morphology_length(morphology.length, u64::from(pages) * PAGE)?;
                    Memory::Anonymous { pages }
                } else {
                    let (physical, length) = direct_range(&frames)?;
                    if header.length != 0 && header.length != length {
                        return Err(ProcmanError::PortalBadLength);
                    }
                    check_morphology_length(morphology.length, length)?;
                    Memory::Direct { physical, length }
                };
                Ok(Plan::Private { memory, rights })
            }
            Kind::CreateAnon | Kind::CreateDirect => {
                let name = name.ok_or(ProcmanError::BadRequest)?;
                if !(caller.may_register)(name) {
                    return Err(ProcmanError::NameDenied);
                }
                if self.entries.contains_key(name) {
                    return Err(ProcmanError::NameExists);
                }
                let share_point = share.share_type & SHARE_POINT != 0;
                let frame_count = frames.len() as u32;
                let data_offset = if share_point {
                    SharePointHeader::data_offset(frame_count)
                } else {
                    0
                };
                let (memory, bytes, data_length) = if kind == Kind::CreateAnon {
                    if header.length == 0 && !share_point {
                        (Memory::Unsized, 0, 0)
                    } else {
                        let pages = pages_for(
                            header
                                .length
                                .checked_add(data_offset)
                                .ok_or(ProcmanError::PortalBadLength)?,
                        )?;
                        if header.length == 0 {
                            return Err(ProcmanError::PortalBadLength);
                        }
                        let bytes = u64::from(pages) * PAGE;
                        (Memory::Anonymous { pages }, bytes, header.length)
                    }
                } else {
                    let (physical, length) = direct_range(&frames)?;
                    let room = length.saturating_sub(data_offset);
                    let data_length = if header.length == 0 {
                        room
                    } else {
                        header.length
                    };
                    if data_length > room || (!share_point && data_length != length) {
                        return Err(ProcmanError::PortalBadLength);
                    }
                    (Memory::Direct { physical, length }, length, data_length)
                };
                if memory != Memory::Unsized {
                    check_morphology_length(morphology.length, bytes)?;
                } else if morphology.length != 0 {
                    return Err(ProcmanError::PortalBadMorphology);
                }
                if self.created_by(caller.pid) >= MAX_PORTALS_PER_PROCESS {
                    return Err(ProcmanError::TooManyPortals);
                }
                self.may_capture_one_more(caller.pid, name)?;
                let header = share_point.then_some(SharePointHeader {
                    lock: 0,
                    prot,
                    length: data_length,
                    morphology_length: bytes,
                    frame_count,
                    sequence: 0,
                });
                let entry = PortalEntry {
                    creator: caller.pid,
                    creator_domain: caller.domain,
                    share_type: share.share_type,
                    prot,
                    direct: kind == Kind::CreateDirect,
                    object: None,
                    length: bytes,
                    data_offset: data_offset as u32,
                    lock_event: None,
                    captures: BTreeSet::from([caller.pid]),
                };
                Ok(Plan::Create {
                    name: name.to_string(),
                    memory,
                    header,
                    frames,
                    entry,
                    rights,
                })
            }
            Kind::Capture | Kind::Cow => {
                let name = name.ok_or(ProcmanError::BadRequest)?;
                let entry = self.entries.get(name).ok_or(ProcmanError::NoSuchName)?;
                if header.length != 0 || morphology.length != 0 {
                    return Err(ProcmanError::PortalBadLength);
                }
                let stranger = caller.pid != entry.creator;
                if entry.share_type & DOMAIN_ONLY != 0
                    && stranger
                    && caller.domain != entry.creator_domain
                {
                    return Err(ProcmanError::PortalCaptureDenied);
                }
                if kind == Kind::Cow {
                    if entry.direct {
                        // Physical memory is never copied (ABI.md §6.2).
                        return Err(ProcmanError::PortalBadClass);
                    }
                    if entry.object.is_none() {
                        return Err(ProcmanError::PortalUnsized);
                    }
                    // The copy is the caller's own: any protection it asks.
                    return Ok(Plan::Cow {
                        name: name.to_string(),
                        length: entry.length,
                        rights,
                    });
                }
                let wider = prot & !entry.prot != 0;
                let written_by_stranger = stranger
                    && entry.share_type & OTHERS_READ_ONLY != 0
                    && prot & abi::kcall::protection::WRITE != 0;
                if wider || written_by_stranger {
                    return Err(ProcmanError::PortalProtDenied);
                }
                self.may_capture_one_more(caller.pid, name)?;
                Ok(Plan::Capture {
                    name: name.to_string(),
                    rights,
                    lock: entry.lock_event.is_some() && prot & abi::kcall::protection::WRITE != 0,
                })
            }
        }
    }

    /// Records a portal [`Plan::Create`] made: `entry` with the memory
    /// object's and lock event's descriptors.
    pub fn insert(&mut self, name: String, entry: PortalEntry) {
        self.entries.insert(name, entry);
    }

    /// Records `pid`'s capture of `name` (once however often it captures).
    pub fn record_capture(&mut self, name: &str, pid: u32) {
        if let Some(entry) = self.entries.get_mut(name) {
            entry.captures.insert(pid);
        }
    }

    /// PORTAL_SIZE by `pid`: checks, then the pages to make; nothing changes.
    pub fn plan_size(&self, pid: u32, name: &str, length: u64) -> Result<u32, ProcmanError> {
        check_name(name)?;
        let entry = self.entries.get(name).ok_or(ProcmanError::NoSuchName)?;
        if entry.creator != pid {
            return Err(ProcmanError::NotNameOwner);
        }
        if entry.object.is_some() {
            return Err(ProcmanError::PortalSized);
        }
        pages_for(length)
    }

    /// Records the memory object PORTAL_SIZE made for `name`.
    pub fn sized(&mut self, name: &str, object: u32, pages: u32) {
        if let Some(entry) = self.entries.get_mut(name) {
            entry.object = Some(object);
            entry.length = u64::from(pages) * PAGE;
        }
    }

    /// PORTAL_RELEASE: `pid` drops its capture of `name`.
    pub fn release(&mut self, pid: u32, name: &str) -> Result<(), ProcmanError> {
        check_name(name)?;
        let entry = self.entries.get_mut(name).ok_or(ProcmanError::NoSuchName)?;
        if entry.captures.remove(&pid) {
            Ok(())
        } else {
            Err(ProcmanError::PortalNotCaptured)
        }
    }

    /// PORTAL_UNLINK: the creator removes the name; procman's descriptors
    /// to close. Captures keep their memory (their own references).
    pub fn unlink(&mut self, pid: u32, name: &str) -> Result<Released, ProcmanError> {
        check_name(name)?;
        let entry = self.entries.get(name).ok_or(ProcmanError::NoSuchName)?;
        if entry.creator != pid {
            return Err(ProcmanError::NotNameOwner);
        }
        let entry = self.entries.remove(name).ok_or(ProcmanError::NoSuchName)?;
        Ok(released(&[entry]))
    }

    /// Process `pid` ended: its captures go, and the names of the portals
    /// it created (decision D24); procman's descriptors to close.
    pub fn exited(&mut self, pid: u32) -> Released {
        for entry in self.entries.values_mut() {
            entry.captures.remove(&pid);
        }
        let mut gone = Vec::new();
        self.entries.retain(|_, entry| {
            if entry.creator == pid {
                gone.push(entry.clone());
                false
            } else {
                true
            }
        });
        released(&gone)
    }
}

fn released(entries: &[PortalEntry]) -> Released {
    Released {
        descriptors: entries
            .iter()
            .flat_map(|e| e.object.into_iter().chain(e.lock_event))
            .collect(),
    }
}

/// A morphology length must be 0 (take the memory's) or exactly the memory's.
fn check_morphology_length(asked: u64, bytes: u64) -> Result<(), ProcmanError> {
    if asked == 0 || asked == bytes {
        Ok(())
    } else {
        Err(ProcmanError::PortalBadMorphology)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    PrivateAnon,
    PrivateDirect,
    CreateAnon,
    CreateDirect,
    Capture,
    Cow,
}

#[cfg(test)]
mod tests;
