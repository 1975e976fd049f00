//! The on-disk layout of a boot archive, version 2: the header, the directory
//! entries, the alignment of file data and the rules for entry names. The
//! reader and the builder both take every number from here.

use core::fmt;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The first eight bytes of every boot archive.
pub const MAGIC: [u8; 8] = *b"HINGEARC";

/// The format version this crate reads and writes.
pub const VERSION: u32 = 2;

/// The size of [`ArchiveHeader`] in bytes; the directory starts here.
pub const HEADER_SIZE: usize = 32;

/// The size of one [`DirectoryEntry`] in bytes.
pub const DIRECTORY_ENTRY_SIZE: usize = 64;

/// The capacity of an entry's name field in bytes.
pub const NAME_CAPACITY: usize = 48;

/// Every file starts at a multiple of this, so the kernel and procman can map
/// a program's pages straight out of the archive.
pub const FILE_ALIGNMENT: u64 = abi::PAGE_BYTES;

/// The archive header at offset 0.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ArchiveHeader {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// Always [`VERSION`].
    pub version: U32,
    /// How many [`DirectoryEntry`] records follow the header.
    pub entry_count: U32,
    /// The length of the whole archive in bytes, directory and files included.
    pub total_size: U64,
    /// The low 32 bits of the XXH64 (seed 0) of bytes `HEADER_SIZE..total_size`.
    pub checksum: U32,
    /// Always zero.
    pub reserved: U32,
}

/// One record of the directory that follows the header.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DirectoryEntry {
    /// The file's name: UTF-8, at least one byte, no NUL inside, NUL-padded.
    pub name: [u8; NAME_CAPACITY],
    /// Where the file's bytes start, from the start of the archive; a multiple
    /// of [`FILE_ALIGNMENT`].
    pub offset: U64,
    /// The file's length in bytes.
    pub size: U64,
}

const _: () = assert!(size_of::<ArchiveHeader>() == HEADER_SIZE);
const _: () = assert!(size_of::<DirectoryEntry>() == DIRECTORY_ENTRY_SIZE);

/// Why a name cannot be an archive entry's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The name has no bytes.
    Empty,
    /// The name is longer than [`NAME_CAPACITY`] bytes.
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The name contains a NUL byte (on disk: a non-NUL byte after the padding started).
    InteriorNul,
    /// The name is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the name is empty"),
            Self::TooLong { len } => {
                write!(
                    f,
                    "the name is {len} bytes long, more than the {NAME_CAPACITY} that fit"
                )
            }
            Self::InteriorNul => f.write_str("the name contains a NUL byte"),
            Self::NotUtf8 => f.write_str("the name is not valid UTF-8"),
        }
    }
}

/// Checks that `name` can be stored in a [`DirectoryEntry`].
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > NAME_CAPACITY {
        Err(NameError::TooLong { len: name.len() })
    } else if name.as_bytes().contains(&0) {
        Err(NameError::InteriorNul)
    } else {
        Ok(())
    }
}

/// The on-disk form of a name that [`validate_name`] accepted: its bytes, then NUL padding.
pub fn encode_name(name: &str) -> Result<[u8; NAME_CAPACITY], NameError> {
    validate_name(name)?;
    let mut field = [0u8; NAME_CAPACITY];
    field[..name.len()].copy_from_slice(name.as_bytes());
    Ok(field)
}

/// Reads a name field: the bytes before the first NUL (all of them if there is
/// none), which must be non-empty UTF-8 and followed only by NULs.
pub fn decode_name(field: &[u8; NAME_CAPACITY]) -> Result<&str, NameError> {
    let len = field
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(NAME_CAPACITY);
    let (name, padding) = field.split_at(len);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if padding.iter().any(|&byte| byte != 0) {
        return Err(NameError::InteriorNul);
    }
    core::str::from_utf8(name).map_err(|_| NameError::NotUtf8)
}

/// The low 32 bits of the XXH64 (seed 0) of `bytes`, as stored in
/// [`ArchiveHeader::checksum`]. Version 1 stored a CRC-32: the same check
/// against a damaged module, at four times the kernel's instructions per
/// byte.
pub fn checksum(bytes: &[u8]) -> u32 {
    // The low half of the hash, by definition of the field.
    xxhash_rust::xxh64::xxh64(bytes, 0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_field() {
        for name in ["a", "system.toml", "é", &"x".repeat(NAME_CAPACITY)] {
            let field = encode_name(name).expect("valid name");
            assert_eq!(decode_name(&field), Ok(name));
        }
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("a\0b"), Err(NameError::InteriorNul));
        let long = "x".repeat(NAME_CAPACITY + 1);
        assert_eq!(
            validate_name(&long),
            Err(NameError::TooLong {
                len: NAME_CAPACITY + 1
            })
        );

        let mut field = [0u8; NAME_CAPACITY];
        assert_eq!(decode_name(&field), Err(NameError::Empty));
        field[..3].copy_from_slice(b"a\0b");
        assert_eq!(decode_name(&field), Err(NameError::InteriorNul));
        field[..3].copy_from_slice(&[0xff, 0xfe, 0]);
        assert_eq!(decode_name(&field), Err(NameError::NotUtf8));
    }

    #[test]
    fn checksum_is_the_low_half_of_xxh64() {
        // XXH64's published value for no input, seed 0: 0xEF46DB3751D8E999.
        assert_eq!(checksum(b""), 0x51d8_e999);
    }
}
