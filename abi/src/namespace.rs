//! procman's namespace as a person looks at it, and each process's working
//! directory (ABI.md §7a.8, decisions D93-D96): NAME_LIST, which lists a
//! directory with each entry's kind and owner, and CHDIR / GETCWD, the
//! working directory procman keeps for each process and SPAWN hands on.
//! Only numbers and layouts live here; procman decides, `userlib` asks.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::Function;

/// List a directory of procman's namespace with kinds and owners:
/// `NameListRequest` + directory (`/` for the root) -> `NameListReply`,
/// then `count` [`NameListEntry`] records, in name order from the
/// `skip`th entry.
pub const NAME_LIST: Function = Function(0x49B);
/// Set the caller's working directory: `NameRequest` + an absolute path
/// (`/`, or clean components: no empty, `.` or `..` one, no trailing
/// `/`), at most [`MAX_DIRECTORY`] bytes. procman does not look the path
/// up: the directory's server is the one that knows it.
pub const CHDIR: Function = Function(0x49C);
/// The caller's working directory: empty request -> `DirectoryReply`,
/// then the path's bytes.
pub const GETCWD: Function = Function(0x49D);

/// The longest working directory, in bytes (a file path's bound,
/// `file::MAX_PATH`).
pub const MAX_DIRECTORY: usize = crate::file::MAX_PATH;

/// The most entries one NAME_LIST reply carries.
pub const MAX_NAME_ENTRIES: usize = 16;

/// The longest entry name a [`NameListEntry`] carries whole (a name's
/// bound, procman's `MAX_NAME`).
pub const ENTRY_NAME_BYTES: usize = 128;

/// [`NameListEntry::kind`]: a door registered with CREATE_OBJECT (a
/// server's object).
pub const KIND_DOOR: u32 = 1;
/// [`NameListEntry::kind`]: a directory, implied by the names under it.
pub const KIND_DIRECTORY: u32 = 2;
/// [`NameListEntry::kind`]: a door registered with [`CREATE_MOUNT`]: its
/// server resolves the names under it (`/tmp`, the RAM file server).
pub const KIND_MOUNT: u32 = 3;
/// [`NameListEntry::kind`]: a socket of procman's registry,
/// `/sock/<port>` (ABI.md §7a.3); the owner is its creator.
pub const KIND_SOCKET: u32 = 4;

/// [`NameListEntry::flags`]: a system door (`CREATE_SYSTEM`).
pub const ENTRY_SYSTEM: u32 = 1 << 0;
/// [`NameListEntry::flags`]: a socket that has had its connector.
pub const ENTRY_CONNECTED: u32 = 1 << 1;

/// CREATE_OBJECT flag (beside `procman::CREATE_SYSTEM`): the door is a
/// mount point, whose server resolves the names under it; NAME_LIST shows
/// it as [`KIND_MOUNT`]. It changes nothing else.
pub const CREATE_MOUNT: u32 = 1 << 1;

/// The directory under which procman names sockets (`/sock/<port>`): no
/// CREATE_OBJECT may register a name there (`PM_NAME_RESERVED`), and OPEN
/// of `/sock/<port>` is SOCKET_CONNECT of that port.
pub const SOCKET_DIRECTORY: &str = "/sock";

/// NAME_LIST's request, followed by the directory's bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct NameListRequest {
    /// Entries of the listing to pass over (0: from the first).
    pub skip: u32,
    /// Length of the directory that follows.
    pub name_length: u32,
}

impl NameListRequest {
    /// NAME_LIST of `directory`, from its `skip`th entry.
    pub fn new(skip: u32, directory: &[u8]) -> Self {
        NameListRequest {
            skip,
            name_length: crate::kcall::length_of(directory),
        }
    }

    /// Writes the whole request data, header then `directory`, into
    /// `out`; its length, or `None` when it does not fit.
    pub fn encode(skip: u32, directory: &[u8], out: &mut [u8]) -> Option<usize> {
        crate::kcall::encode_into(Self::new(skip, directory).as_bytes(), &[directory], out)
    }
}

/// NAME_LIST's reply header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct NameListReply {
    /// Entries after this header.
    pub count: u32,
    /// 1: more entries follow the last one (ask again with `skip` past it).
    pub more: u32,
}

/// One entry of a NAME_LIST reply (208 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct NameListEntry {
    /// [`KIND_DOOR`], [`KIND_DIRECTORY`], [`KIND_MOUNT`] or [`KIND_SOCKET`].
    pub kind: u32,
    /// [`ENTRY_SYSTEM`], [`ENTRY_CONNECTED`].
    pub flags: u32,
    /// The owner's process id: the registering process, a socket's
    /// creator; 0 for a directory.
    pub owner: u32,
    /// The length of the name in `name`.
    pub name_length: u32,
    /// A door's security type (its number in the manifest's `types`); 0
    /// for a directory or a socket.
    pub security_type: u32,
    /// Zero.
    pub reserved: u32,
    /// The security type's name in the manifest, NUL-padded.
    pub type_name: [u8; 16],
    /// The owner's program name, NUL-padded (cut at 48 bytes).
    pub program: [u8; 48],
    /// The entry's name in the directory (one component), NUL-padded.
    pub name: [u8; ENTRY_NAME_BYTES],
}

impl NameListEntry {
    /// An entry of `kind` named `name` (cut at [`ENTRY_NAME_BYTES`]), with
    /// no owner, type or flags yet.
    pub fn new(kind: u32, name: &[u8]) -> Self {
        let mut entry = NameListEntry {
            kind,
            flags: 0,
            owner: 0,
            name_length: 0,
            security_type: 0,
            reserved: 0,
            type_name: [0; 16],
            program: [0; 48],
            name: [0; ENTRY_NAME_BYTES],
        };
        let length = name.len().min(ENTRY_NAME_BYTES);
        entry.name[..length].copy_from_slice(&name[..length]);
        entry.name_length = length as u32;
        entry
    }

    /// The name's bytes (as many as `name_length` says, within the field).
    pub fn name(&self) -> &[u8] {
        let length = (self.name_length as usize).min(ENTRY_NAME_BYTES);
        &self.name[..length]
    }
}

/// GETCWD's reply header, followed by the directory's bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DirectoryReply {
    /// The path's length.
    pub length: u32,
    /// Zero.
    pub reserved: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_numbers() {
        assert_eq!(size_of::<NameListEntry>(), 216);
        assert!(8 + 8 + MAX_NAME_ENTRIES * size_of::<NameListEntry>() <= 4095);
        for f in [NAME_LIST, CHDIR, GETCWD] {
            assert_eq!(f.range(), crate::FunctionRange::ProcessManager);
        }
        assert_eq!(CREATE_MOUNT & crate::procman::CREATE_SYSTEM, 0);
    }

    #[test]
    fn encoders_round_trip() {
        let mut out = [0u8; 32];
        assert_eq!(NameListRequest::encode(3, b"/dev", &mut out), Some(12));
        assert_eq!(&out[..12], b"\x03\0\0\0\x04\0\0\0/dev");
        assert_eq!(NameListRequest::encode(0, b"/dev", &mut out[..11]), None);
        let entry = NameListEntry::new(KIND_SOCKET, b"5000");
        assert_eq!(entry.name(), b"5000");
        let long = [b'x'; 200];
        assert_eq!(
            NameListEntry::new(KIND_DOOR, &long).name().len(),
            ENTRY_NAME_BYTES
        );
    }
}
