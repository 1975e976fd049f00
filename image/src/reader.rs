//! Reading a boot archive: [`BootArchive::parse`] checks every rule of the
//! format once, up front, so that the accessors afterwards cannot fail.
//!
//! Everything here treats the input as hostile: every length and offset is
//! checked arithmetic, every slice is taken with `get`, and no input makes it
//! panic (the property tests feed it arbitrary bytes).

use crate::error::ArchiveError;
use crate::format::{
    ArchiveHeader, DIRECTORY_ENTRY_SIZE, DirectoryEntry, FILE_ALIGNMENT, HEADER_SIZE, MAGIC,
    NAME_CAPACITY, VERSION, checksum, decode_name, encode_name,
};
use core::fmt;
use core::iter::FusedIterator;
use zerocopy::FromBytes;

/// A boot archive that passed every check of the format.
#[derive(Clone, Copy)]
pub struct BootArchive<'a> {
    /// Exactly the archive's bytes (`total_size` of them); anything the input
    /// held past them (page padding of a boot module) is left out.
    archive: &'a [u8],
    entry_count: u32,
}

/// One file of a [`BootArchive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveEntry<'a> {
    /// The file's name.
    pub name: &'a str,
    /// The file's bytes.
    pub data: &'a [u8],
    /// Where `data` starts, from the start of the archive (a multiple of 4096).
    pub offset: u64,
}

impl<'a> BootArchive<'a> {
    /// Validates `bytes` as a boot archive, in this order: length of the
    /// header, magic, version, reserved field, declared size against the
    /// bytes present, directory bounds, checksum, then each entry's name,
    /// alignment, place after the directory and bounds, then name uniqueness.
    /// The first broken rule is the error. Bytes past the declared total size
    /// are ignored (a boot module may be padded to a page).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        let Ok((header, _)) = ArchiveHeader::read_from_prefix(bytes) else {
            return Err(ArchiveError::TooShortForHeader {
                available: bytes.len(),
            });
        };
        if header.magic != MAGIC {
            return Err(ArchiveError::BadMagic {
                found: header.magic,
            });
        }
        if header.version.get() != VERSION {
            return Err(ArchiveError::UnsupportedVersion {
                found: header.version.get(),
            });
        }
        if header.reserved.get() != 0 {
            return Err(ArchiveError::ReservedNotZero {
                found: header.reserved.get(),
            });
        }

        let total_size = header.total_size.get();
        let archive = usize::try_from(total_size)
            .ok()
            .and_then(|len| bytes.get(..len))
            .ok_or(ArchiveError::Truncated {
                declared: total_size,
                available: bytes.len(),
            })?;

        let entry_count = header.entry_count.get();
        let directory_end = directory_end(entry_count);
        if directory_end > total_size {
            return Err(ArchiveError::DirectoryOutOfBounds {
                entry_count,
                directory_end,
                total_size,
            });
        }

        let computed = checksum(archive.get(HEADER_SIZE..).unwrap_or_default());
        if computed != header.checksum.get() {
            return Err(ArchiveError::ChecksumMismatch {
                stored: header.checksum.get(),
                computed,
            });
        }

        for index in 0..entry_count {
            decode_entry(archive, entry_count, index)?;
        }
        check_names_unique(archive, entry_count)?;

        Ok(Self {
            archive,
            entry_count,
        })
    }

    /// How many files the archive holds.
    pub fn entry_count(&self) -> u32 {
        self.entry_count
    }

    /// The archive's length in bytes, as its header declares.
    pub fn total_size(&self) -> u64 {
        // A slice of the input is never longer than `u64::MAX` bytes.
        self.archive.len() as u64
    }

    /// The archive's bytes, `total_size` of them.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.archive
    }

    /// The files in directory order.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            archive: self.archive,
            next: 0,
            count: self.entry_count,
        }
    }

    /// The bytes of the file called `name`, if there is one.
    ///
    /// Compares each stored name field with `name`'s encoding and decodes
    /// only the match: the kernel looks a program up at every spawn, and
    /// `parse` has already checked every entry.
    pub fn find(&self, name: &str) -> Option<&'a [u8]> {
        let field = encode_name(name).ok()?;
        let index = (0..self.entry_count).find(|&index| {
            directory_record(self.archive, index)
                .and_then(|record| DirectoryEntry::ref_from_bytes(record).ok())
                .is_some_and(|record| record.name == field)
        })?;
        decode_entry(self.archive, self.entry_count, index)
            .ok()
            .map(|entry| entry.data)
    }
}

/// The iterator returned by [`BootArchive::entries`].
#[derive(Clone)]
pub struct Entries<'a> {
    archive: &'a [u8],
    next: u32,
    count: u32,
}

impl<'a> Iterator for Entries<'a> {
    type Item = ArchiveEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.count {
            let index = self.next;
            self.next += 1;
            // `parse` decoded every entry successfully, so this always matches.
            if let Ok(entry) = decode_entry(self.archive, self.count, index) {
                return Some(entry);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, usize::try_from(self.count - self.next).ok())
    }
}

impl FusedIterator for Entries<'_> {}

// The archive's bytes would drown a debug print; its shape is what matters.
impl fmt::Debug for BootArchive<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootArchive")
            .field("total_size", &self.total_size())
            .field("entry_count", &self.entry_count)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entries")
            .field("next", &self.next)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// Where the directory of `entry_count` entries ends; cannot overflow, since
/// `u32::MAX * 64 + 32` is far below `u64::MAX`.
fn directory_end(entry_count: u32) -> u64 {
    HEADER_SIZE as u64 + u64::from(entry_count) * DIRECTORY_ENTRY_SIZE as u64
}

/// The bytes of directory record `index`, if the archive holds them.
fn directory_record(archive: &[u8], index: u32) -> Option<&[u8]> {
    let start = usize::try_from(directory_end(index)).ok()?;
    archive.get(start..start.checked_add(DIRECTORY_ENTRY_SIZE)?)
}

/// Decodes and checks directory entry `index` of `archive` (exactly
/// `total_size` bytes whose directory of `entry_count` entries is known to fit).
fn decode_entry(
    archive: &[u8],
    entry_count: u32,
    index: u32,
) -> Result<ArchiveEntry<'_>, ArchiveError> {
    let total_size = archive.len() as u64;
    let Some(Ok(record)) = directory_record(archive, index).map(DirectoryEntry::ref_from_bytes)
    else {
        return Err(ArchiveError::DirectoryOutOfBounds {
            entry_count: index.saturating_add(1),
            directory_end: directory_end(index.saturating_add(1)),
            total_size,
        });
    };

    let name =
        decode_name(&record.name).map_err(|reason| ArchiveError::InvalidName { index, reason })?;
    let offset = record.offset.get();
    let size = record.size.get();
    if !offset.is_multiple_of(FILE_ALIGNMENT) {
        return Err(ArchiveError::MisalignedEntry { index, offset });
    }
    let directory_end = directory_end(entry_count);
    if offset < directory_end {
        return Err(ArchiveError::EntryOverlapsDirectory {
            index,
            offset,
            directory_end,
        });
    }
    let data = offset
        .checked_add(size)
        .filter(|&end| end <= total_size)
        .and_then(|end| archive.get(usize::try_from(offset).ok()?..usize::try_from(end).ok()?))
        .ok_or(ArchiveError::EntryOutOfBounds {
            index,
            offset,
            size,
            total_size,
        })?;
    Ok(ArchiveEntry { name, data, offset })
}

/// Names are compared as their 48-byte fields: a valid name's field is its
/// bytes then zeros, so equal names have equal fields and vice versa. The
/// quadratic scan needs no allocation; real archives hold a few dozen files.
fn check_names_unique(archive: &[u8], entry_count: u32) -> Result<(), ArchiveError> {
    let name_field = |index| directory_record(archive, index).and_then(|r| r.get(..NAME_CAPACITY));
    for second in 1..entry_count {
        let second_name = name_field(second);
        for first in 0..second {
            if name_field(first) == second_name {
                return Err(ArchiveError::DuplicateName { first, second });
            }
        }
    }
    Ok(())
}
