//! Why a byte string is not a valid boot archive: one variant per rule, each
//! carrying the numbers that show what was wrong.

use crate::format::{FILE_ALIGNMENT, HEADER_SIZE, MAGIC, NameError, VERSION};
use crate::header;
use core::fmt;

/// The reason [`BootArchive::parse`](crate::BootArchive::parse) refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// The input is shorter than the header.
    TooShortForHeader {
        /// The input's length in bytes.
        available: usize,
    },
    /// The first eight bytes are not [`MAGIC`].
    BadMagic {
        /// The eight bytes found instead.
        found: [u8; 8],
    },
    /// The header's version is not [`VERSION`].
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The header's reserved field is not zero.
    ReservedNotZero {
        /// The value found.
        found: u32,
    },
    /// The header declares more bytes than the input holds.
    Truncated {
        /// The header's total size.
        declared: u64,
        /// The input's length in bytes.
        available: usize,
    },
    /// The header and directory do not fit in the declared total size.
    DirectoryOutOfBounds {
        /// The header's entry count.
        entry_count: u32,
        /// Where the directory ends.
        directory_end: u64,
        /// The header's total size.
        total_size: u64,
    },
    /// The checksum over bytes 32..total size does not match the header's.
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes present.
        computed: u32,
    },
    /// A directory entry's name is not a valid name.
    InvalidName {
        /// The entry's index in the directory.
        index: u32,
        /// What is wrong with it.
        reason: NameError,
    },
    /// A directory entry's offset is not a multiple of [`FILE_ALIGNMENT`].
    MisalignedEntry {
        /// The entry's index in the directory.
        index: u32,
        /// The entry's offset.
        offset: u64,
    },
    /// A directory entry's bytes reach past the declared total size.
    EntryOutOfBounds {
        /// The entry's index in the directory.
        index: u32,
        /// The entry's offset.
        offset: u64,
        /// The entry's size.
        size: u64,
        /// The header's total size.
        total_size: u64,
    },
    /// A directory entry's bytes start inside the header or the directory.
    EntryOverlapsDirectory {
        /// The entry's index in the directory.
        index: u32,
        /// The entry's offset.
        offset: u64,
        /// Where the directory ends.
        directory_end: u64,
    },
    /// Two directory entries have the same name.
    DuplicateName {
        /// The index of the first entry with the name.
        first: u32,
        /// The index of the later entry with the same name.
        second: u32,
    },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShortForHeader { available } => {
                header::write_too_short(f, "header", HEADER_SIZE, available)
            }
            Self::BadMagic { found } => header::write_bad_magic(f, &MAGIC, &found),
            Self::UnsupportedVersion { found } => {
                header::write_unsupported_version(f, "version", found, VERSION)
            }
            Self::ReservedNotZero { found } => {
                write!(f, "reserved header field is {found:#x}, must be 0")
            }
            Self::Truncated {
                declared,
                available,
            } => write!(
                f,
                "truncated: header declares {declared} bytes but only {available} are present"
            ),
            Self::DirectoryOutOfBounds {
                entry_count,
                directory_end,
                total_size,
            } => write!(
                f,
                "directory out of bounds: header and {entry_count} entries end at byte \
                 {directory_end}, past the declared total size of {total_size} bytes"
            ),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (header says {stored:#010x}, contents hash to {computed:#010x})"
            ),
            Self::InvalidName { index, reason } => {
                write!(f, "entry {index} has an invalid name: {reason}")
            }
            Self::MisalignedEntry { index, offset } => write!(
                f,
                "entry {index} is misaligned: offset {offset:#x} is not a multiple of {FILE_ALIGNMENT}"
            ),
            Self::EntryOutOfBounds {
                index,
                offset,
                size,
                total_size,
            } => write!(
                f,
                "entry {index} out of bounds: {size} bytes at offset {offset} reach past the \
                 declared total size of {total_size} bytes"
            ),
            Self::EntryOverlapsDirectory {
                index,
                offset,
                directory_end,
            } => write!(
                f,
                "entry {index} overlaps the directory: offset {offset} is before its end at \
                 byte {directory_end}"
            ),
            Self::DuplicateName { first, second } => {
                write!(
                    f,
                    "duplicate name: entries {first} and {second} have the same name"
                )
            }
        }
    }
}

impl core::error::Error for ArchiveError {}
