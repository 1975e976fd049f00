//! The hinge boot image: the boot archive format (one file that carries every
//! user program plus the system manifest to the kernel), the kernel
//! command-line words that the host tools and the kernel share, and, with the
//! `std` feature, the host side: the archive builder, the system manifest
//! parser and the Limine configuration.
//!
//! The `no_std` part is what the kernel and procman link: it validates an
//! archive, the compiled security policy procman enforces
//! ([`policy`]), or a program's ELF image before anything maps it
//! ([`program`]: the kernel's loader of the first process and procman's
//! of every other share it), completely and never panics, whatever bytes it is given. This crate
//! must never trust an archive it did not validate, never allocate in its
//! `no_std` part, and never contain `unsafe` code: the on-disk layout is read
//! through `zerocopy`.
//!
//! The archive format, version 2, all integers little-endian:
//!
//! | offset | size | what |
//! | --- | --- | --- |
//! | 0 | 32 | [`format::ArchiveHeader`]: magic `HINGEARC`, version, entry count, total size, checksum (low 32 bits of the XXH64 of bytes 32..total size), reserved |
//! | 32 | 64 × entry count | [`format::DirectoryEntry`]: NUL-padded UTF-8 name (48 bytes), offset, size |
//! | 4096-aligned | size | each file's bytes; gaps are zero |
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]

pub mod cmdline;
mod error;
pub mod format;
mod header;
pub mod policy;
pub mod program;
mod reader;

#[cfg(feature = "std")]
mod builder;
#[cfg(feature = "std")]
pub mod limine_conf;
#[cfg(feature = "std")]
pub mod manifest;

#[cfg(feature = "std")]
pub use builder::{ArchiveBuilder, BuildError};
pub use error::ArchiveError;
pub use format::NameError;
#[cfg(feature = "std")]
pub use manifest::{Domain, Manifest, ManifestError, PortRange, Program};
pub use policy::{CompiledPolicy, DomainPolicy, PolicyError, ProgramPolicy};
pub use reader::{ArchiveEntry, BootArchive, Entries};

/// The archive entry that holds the system manifest (`image/system.toml`).
pub const MANIFEST_ENTRY: &str = "system.toml";

/// The archive entry that holds the compiled security policy
/// (`policy::compile` of the manifest; read with [`CompiledPolicy::parse`]).
pub const POLICY_ENTRY: &str = "system.policy";
