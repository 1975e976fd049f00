//! The compiled security policy: the system manifest's `[system] types`,
//! `[[domain]]` and `[[program]]` tables in a small binary form that procman
//! reads without parsing TOML and without allocating. The image builder
//! writes it into the boot archive as [`POLICY_ENTRY`](crate::POLICY_ENTRY)
//! with `compile` (`std` feature); procman reads it with [`CompiledPolicy::parse`], which
//! checks every offset, length, count, name and reference once, up front, so
//! that no accessor can fail or panic afterwards.
//!
//! # Format, version 2
//!
//! All integers are little-endian and every record is unaligned (read through
//! `zerocopy`). The tables follow one another with no gaps, each at an offset
//! computed from the header's counts; the string area fills the rest.
//!
//! | offset | size | what |
//! | --- | --- | --- |
//! | 0 | 32 | [`PolicyHeader`]: magic `HINGEPOL`, version 1, total size, system name, counts |
//! | 32 | 8 × type count | [`StrRef`] per security type: its name; type number = index + 1 |
//! | after the types | 112 × domain count | [`DomainRecord`] per domain, manifest order |
//! | after the domains | 20 × program count | [`ProgramRecord`] per program, manifest order |
//! | after the programs | 8 × prefix count | [`StrRef`] per register prefix; each domain owns a run of them |
//! | after the prefixes | 8 × device count | [`DeviceRecord`] per device; each domain owns a run of them |
//! | after the devices | the rest | the string area: UTF-8 bytes that [`StrRef`]s point into |
//!
//! [`PolicyHeader`] (32 bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | `magic`: `HINGEPOL` |
//! | 8 | 4 | `version`: 2 |
//! | 12 | 4 | `total_size`: the policy's length in bytes, exactly |
//! | 16 | 8 | `system_name`: [`StrRef`], non-empty |
//! | 24 | 1 | `type_count`: 0..=255 |
//! | 25 | 1 | `domain_count`: 0..=64 |
//! | 26 | 1 | `program_count`: 0..=255 |
//! | 27 | 1 | `reserved0`: 0 |
//! | 28 | 2 | `prefix_count`: entries of the prefix table |
//! | 30 | 2 | `device_count`: entries of the device table |
//!
//! [`StrRef`] (8 bytes): `offset` (4, from the start of the string area) and
//! `len` (4); the bytes must lie inside the string area and be UTF-8. Strings
//! may share bytes (the writer stores each distinct string once).
//!
//! [`DomainRecord`] (112 bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | `name`: [`StrRef`], non-empty, unique among domains |
//! | 8 | 1 | `flags`: bit 0 [`DOMAIN_CREATE_OBJECTS`], bit 1 [`DOMAIN_CREATE_SYSTEM_OBJECTS`] (only with bit 0); others 0 |
//! | 9 | 1 | `prefix_count`: its register prefixes |
//! | 10 | 2 | `first_prefix`: index of its first prefix in the prefix table |
//! | 12 | 1 | `portal_classes`: `abi::portal::PortalClass` bits (undefined bits 0) |
//! | 13 | 1 | `device_count`: its device records |
//! | 14 | 2 | `first_device`: index of its first record in the device table |
//! | 16 | 32 | `create_types`: bitmap of type numbers (bit `n % 8` of byte `n / 8` is type `n`; bit 0 and bits past the type count are 0) |
//! | 48 | 32 | `open_types`: bitmap of type numbers, same rules |
//! | 80 | 32 | `spawn`: bitmap of program indexes (bit `i % 8` of byte `i / 8` is program `i`; bits past the program count are 0) |
//!
//! [`DeviceRecord`] (8 bytes): `kind` (1, [`DEVICE_PORTS`]: ports `first..=last`;
//! 2, [`DEVICE_IRQ`]: interrupt line `first` = `last`, at most 15),
//! `reserved0` (1, 0), `first` (2), `last` (2, at least `first`),
//! `reserved1` (2, 0). A domain's port ranges come first, in manifest order,
//! then its lines.
//!
//! [`ProgramRecord`] (20 bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | `name`: [`StrRef`], a valid archive entry name, unique among programs |
//! | 8 | 8 | `arguments`: [`StrRef`], each argument followed by a NUL byte (so empty, or ending in NUL) |
//! | 16 | 1 | `domain`: index of its domain, below the domain count |
//! | 17 | 1 | `flags`: bit 0 [`PROGRAM_START`] (procman starts it at boot); others 0 |
//! | 18 | 2 | `reserved`: 0 |
//!
//! Register prefixes start with `/`. Type names are non-empty and unique.
//! Type number 0 is never a declared type.

mod error;
mod format;
mod reader;

#[cfg(feature = "std")]
mod compile;

#[cfg(feature = "std")]
pub use compile::compile;
pub use error::{PolicyError, Record, TypeList};
pub use format::{
    BITMAP_SIZE, Bitmap, DEVICE_IRQ, DEVICE_PORTS, DEVICE_RECORD_SIZE, DOMAIN_CREATE_OBJECTS,
    DOMAIN_CREATE_SYSTEM_OBJECTS, DOMAIN_RECORD_SIZE, DeviceRecord, DomainRecord, HEADER_SIZE,
    MAGIC, MAX_DOMAINS, PROGRAM_RECORD_SIZE, PROGRAM_START, PolicyHeader, ProgramRecord,
    STR_REF_SIZE, StrRef, VERSION,
};
pub use reader::{CompiledPolicy, DomainPolicy, ProgramPolicy};
