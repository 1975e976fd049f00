//! Writing a boot archive on the host: files are laid out in the order they
//! were added, each at the next 4096-byte boundary after the previous one;
//! a file identical to an earlier one shares its bytes.

use crate::format::{
    self, ArchiveHeader, DIRECTORY_ENTRY_SIZE, DirectoryEntry, HEADER_SIZE, MAGIC, NAME_CAPACITY,
    NameError, VERSION,
};
use std::fmt;
use zerocopy::IntoBytes;
use zerocopy::little_endian::{U32, U64};

/// Collects named files and writes them as one boot archive.
#[derive(Clone, Debug, Default)]
pub struct ArchiveBuilder {
    files: Vec<PendingFile>,
}

/// A file waiting to be written, its name already in on-disk form.
#[derive(Clone, Debug)]
struct PendingFile {
    name: [u8; NAME_CAPACITY],
    bytes: Vec<u8>,
}

/// Why a file cannot be added to an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The name cannot be stored in a directory entry.
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// A file with this name was already added.
    DuplicateName {
        /// The name as given.
        name: String,
    },
    /// The archive already holds `u32::MAX` files.
    TooManyFiles,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name, reason } => {
                write!(f, "cannot add {name:?} to the boot archive: {reason}")
            }
            Self::DuplicateName { name } => {
                write!(
                    f,
                    "cannot add {name:?} to the boot archive: a file of that name is already in it"
                )
            }
            Self::TooManyFiles => f.write_str("the boot archive cannot hold more files"),
        }
    }
}

impl std::error::Error for BuildError {}

impl ArchiveBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file called `name` holding `bytes`.
    pub fn add(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Result<Self, BuildError> {
        let encoded = format::encode_name(name).map_err(|reason| BuildError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        if self.files.iter().any(|file| file.name == encoded) {
            return Err(BuildError::DuplicateName {
                name: name.to_owned(),
            });
        }
        if u32::try_from(self.files.len()).is_ok_and(|count| count == u32::MAX) {
            return Err(BuildError::TooManyFiles);
        }
        self.files.push(PendingFile {
            name: encoded,
            bytes: bytes.into(),
        });
        Ok(self)
    }

    /// Writes the archive: header, directory, then each file's bytes at the
    /// next 4096-byte boundary, the gaps zero-filled. A file whose bytes
    /// equal an earlier file's is not written again: its entry points at the
    /// earlier bytes (two names for one program cost one copy, and the
    /// kernel checksums every byte at each boot).
    pub fn build(&self) -> Vec<u8> {
        let directory_end = HEADER_SIZE + self.files.len() * DIRECTORY_ENTRY_SIZE;
        let mut archive = vec![0u8; directory_end];
        let mut directory: Vec<DirectoryEntry> = Vec::with_capacity(self.files.len());
        for (index, file) in self.files.iter().enumerate() {
            let earlier = self.files[..index]
                .iter()
                .position(|earlier| !file.bytes.is_empty() && earlier.bytes == file.bytes);
            let offset = match earlier {
                Some(earlier) => directory[earlier].offset.get() as usize,
                None => {
                    let offset = align_to_file_boundary(archive.len());
                    archive.resize(offset, 0);
                    archive.extend_from_slice(&file.bytes);
                    offset
                }
            };
            directory.push(DirectoryEntry {
                name: file.name,
                offset: U64::new(offset as u64),
                size: U64::new(file.bytes.len() as u64),
            });
        }
        archive[HEADER_SIZE..directory_end].copy_from_slice(directory.as_bytes());

        let header = ArchiveHeader {
            magic: MAGIC,
            version: U32::new(VERSION),
            // `add` refuses the file that would not fit in a u32.
            entry_count: U32::new(self.files.len() as u32),
            total_size: U64::new(archive.len() as u64),
            checksum: U32::new(format::checksum(&archive[HEADER_SIZE..])),
            reserved: U32::new(0),
        };
        archive[..HEADER_SIZE].copy_from_slice(header.as_bytes());
        archive
    }
}

/// The next file boundary at or after `offset`, for an in-memory length
/// (which cannot come near `usize::MAX`).
fn align_to_file_boundary(offset: usize) -> usize {
    offset.next_multiple_of(format::FILE_ALIGNMENT as usize)
}
