//! Why a byte string is not a valid compiled policy: one variant per rule,
//! each carrying the numbers that show what was wrong.

use super::format::{HEADER_SIZE, MAGIC, MAX_DOMAINS, VERSION};
use crate::format::NameError;
use crate::header;
use core::fmt;

/// Which record a [`PolicyError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// The header (for strings: the system name).
    Header,
    /// Entry `index` of the type table (type number `index + 1`).
    Type {
        /// Its index in the type table.
        index: u8,
    },
    /// Record `index` of the domain table (for strings: its name).
    Domain {
        /// Its index in the domain table.
        index: u8,
    },
    /// Record `index` of the program table (for strings: its name).
    Program {
        /// Its index in the program table.
        index: u8,
    },
    /// The argument bytes of program `index`.
    Arguments {
        /// The program's index in the program table.
        index: u8,
    },
    /// Entry `index` of the prefix table.
    Prefix {
        /// Its index in the prefix table.
        index: u16,
    },
    /// Record `index` of the device table.
    Device {
        /// Its index in the device table.
        index: u16,
    },
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Header => f.write_str("the header"),
            Self::Type { index } => write!(f, "type {index}"),
            Self::Domain { index } => write!(f, "domain {index}"),
            Self::Program { index } => write!(f, "program {index}"),
            Self::Arguments { index } => write!(f, "the arguments of program {index}"),
            Self::Prefix { index } => write!(f, "prefix {index}"),
            Self::Device { index } => write!(f, "device {index}"),
        }
    }
}

/// Which type bitmap of a domain a [`PolicyError::UnknownType`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeList {
    /// `create_types`.
    Create,
    /// `open_types`.
    Open,
}

impl fmt::Display for TypeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "create_types",
            Self::Open => "open_types",
        })
    }
}

/// The reason [`CompiledPolicy::parse`](super::CompiledPolicy::parse)
/// refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
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
    /// The header's total size is not the input's length.
    SizeMismatch {
        /// The header's total size.
        declared: u32,
        /// The input's length in bytes.
        available: usize,
    },
    /// A reserved field is not zero.
    ReservedNotZero {
        /// The record that holds it.
        record: Record,
        /// The value found.
        found: u32,
    },
    /// The header declares more than [`MAX_DOMAINS`] domains.
    TooManyDomains {
        /// The header's domain count.
        count: u8,
    },
    /// The tables the header's counts announce end past the total size.
    TablesOutOfBounds {
        /// Where the tables end.
        tables_end: u64,
        /// The header's total size.
        total_size: u32,
    },
    /// A string reaches past the end of the string area.
    StringOutOfBounds {
        /// The record whose string it is.
        record: Record,
        /// The string's offset in the string area.
        offset: u32,
        /// The string's length.
        len: u32,
        /// The string area's length.
        strings_size: u32,
    },
    /// A string is not valid UTF-8.
    StringNotUtf8 {
        /// The record whose string it is.
        record: Record,
    },
    /// The system name, a type name or a domain name is empty.
    EmptyName {
        /// The record whose name it is.
        record: Record,
    },
    /// Two types, two domains or two programs have the same name.
    DuplicateName {
        /// The later record with the name.
        record: Record,
        /// The index of the first record with the name, in the same table.
        first: u8,
    },
    /// A program's name cannot be a boot archive entry's name.
    InvalidProgramName {
        /// The program's index.
        index: u8,
        /// What is wrong with it.
        reason: NameError,
    },
    /// A register prefix does not start with `/`.
    PrefixNotAbsolute {
        /// The prefix's index in the prefix table.
        index: u16,
    },
    /// A flags field has a bit this version does not define.
    UnknownFlags {
        /// The record that holds it.
        record: Record,
        /// The flags found.
        found: u8,
    },
    /// A domain may create system objects but not objects.
    SystemObjectsWithoutObjects {
        /// The domain's index.
        index: u8,
    },
    /// A domain's run of register prefixes reaches past the prefix table.
    PrefixesOutOfBounds {
        /// The domain's index.
        index: u8,
        /// Its first prefix.
        first: u16,
        /// Its prefix count.
        count: u8,
        /// The prefix table's length.
        prefix_count: u16,
    },
    /// A domain's run of device records reaches past the device table.
    DevicesOutOfBounds {
        /// The domain's index.
        index: u8,
        /// Its first device record.
        first: u16,
        /// Its device count.
        count: u8,
        /// The device table's length.
        device_count: u16,
    },
    /// A device record of an unknown kind, ending before it starts, or an
    /// interrupt line past 15 or given as a range.
    BadDevice {
        /// The record's index in the device table.
        index: u16,
    },
    /// A domain's type bitmap holds type 0 or a number past the type count.
    UnknownType {
        /// The domain's index.
        index: u8,
        /// The bitmap.
        list: TypeList,
        /// The lowest bad type number.
        number: u32,
    },
    /// A domain's spawn bitmap holds a number past the program count.
    UnknownSpawnProgram {
        /// The domain's index.
        index: u8,
        /// The lowest bad program index.
        program: u32,
    },
    /// A program's domain index is past the domain count.
    UnknownDomain {
        /// The program's index.
        index: u8,
        /// Its domain index.
        domain: u8,
        /// The header's domain count.
        domain_count: u8,
    },
    /// A program's argument bytes are not empty and do not end with NUL.
    UnterminatedArguments {
        /// The program's index.
        index: u8,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShortForHeader { available } => {
                header::write_too_short(f, "policy header", HEADER_SIZE, available)
            }
            Self::BadMagic { found } => header::write_bad_magic(f, &MAGIC, &found),
            Self::UnsupportedVersion { found } => {
                header::write_unsupported_version(f, "policy version", found, VERSION)
            }
            Self::SizeMismatch {
                declared,
                available,
            } => write!(
                f,
                "size mismatch: header declares {declared} bytes but {available} are present"
            ),
            Self::ReservedNotZero { record, found } => {
                write!(f, "a reserved field of {record} is {found:#x}, must be 0")
            }
            Self::TooManyDomains { count } => write!(
                f,
                "too many domains: {count}, at most {MAX_DOMAINS} are allowed"
            ),
            Self::TablesOutOfBounds {
                tables_end,
                total_size,
            } => write!(
                f,
                "tables out of bounds: they end at byte {tables_end}, past the total size of \
                 {total_size} bytes"
            ),
            Self::StringOutOfBounds {
                record,
                offset,
                len,
                strings_size,
            } => write!(
                f,
                "string of {record} out of bounds: {len} bytes at offset {offset} reach past the \
                 {strings_size}-byte string area"
            ),
            Self::StringNotUtf8 { record } => write!(f, "string of {record} is not valid UTF-8"),
            Self::EmptyName { record } => write!(f, "the name of {record} is empty"),
            Self::DuplicateName { record, first } => write!(
                f,
                "duplicate name: {record} has the same name as the one at index {first}"
            ),
            Self::InvalidProgramName { index, reason } => {
                write!(f, "program {index} has an invalid name: {reason}")
            }
            Self::PrefixNotAbsolute { index } => {
                write!(f, "prefix {index} does not start with '/'")
            }
            Self::UnknownFlags { record, found } => {
                write!(f, "unknown flags {found:#04x} in {record}")
            }
            Self::SystemObjectsWithoutObjects { index } => write!(
                f,
                "domain {index} may create system objects but not objects"
            ),
            Self::DevicesOutOfBounds {
                index,
                first,
                count,
                device_count,
            } => write!(
                f,
                "devices of domain {index} out of bounds: {count} from index {first} reach past \
                 the {device_count}-entry device table"
            ),
            Self::BadDevice { index } => write!(
                f,
                "device {index} is neither a port range (first <= last) nor one interrupt line 0..=15"
            ),
            Self::PrefixesOutOfBounds {
                index,
                first,
                count,
                prefix_count,
            } => write!(
                f,
                "prefixes of domain {index} out of bounds: {count} from index {first} reach past \
                 the {prefix_count}-entry prefix table"
            ),
            Self::UnknownType {
                index,
                list,
                number,
            } => write!(
                f,
                "domain {index}'s {list} holds type number {number}, which is not a type"
            ),
            Self::UnknownSpawnProgram { index, program } => write!(
                f,
                "domain {index}'s spawn holds program index {program}, which is not a program"
            ),
            Self::UnknownDomain {
                index,
                domain,
                domain_count,
            } => write!(
                f,
                "program {index} is in domain {domain}, but there are only {domain_count} domains"
            ),
            Self::UnterminatedArguments { index } => write!(
                f,
                "the arguments of program {index} do not end with a NUL byte"
            ),
        }
    }
}

impl core::error::Error for PolicyError {}
