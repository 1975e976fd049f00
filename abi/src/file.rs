//! The RAM file server's protocol (ABI.md §7a.6): files and directories
//! under `/tmp`, whose door the server registers with procman as the name
//! [`MOUNT`]. Function numbers, request and reply layouts, flags, limits
//! and the [`FileError`] numbers live here; the typed interface over them
//! is `userlib::file`, the server `servers/ramfs`.
//!
//! The protocol is stateless (decision D79): OPEN resolves a path (making
//! or truncating the file as its flags ask) and answers a [`FileId`];
//! READ, WRITE and TRUNCATE name that id and an explicit offset. A file
//! position, `seek` and `close` are the client's (`userlib::file::File`),
//! so the server keeps nothing per client and a client that dies leaves
//! nothing behind. A file as a byte stream is STREAM (decision D80).
//!
//! This module must never hold code that touches a file: only numbers and
//! layouts.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::function::{Function, USER_BASE};

/// The name the RAM file server registers: every path under it is a file
/// or directory of the server (`/tmp/a` is the server's `/a`).
pub const MOUNT: &str = "/tmp";

/// The security type of the server's door: the manifest's `files`, its
/// fifth type (`image/system.toml`).
pub const SECURITY_TYPE: u32 = 5;

/// OPEN: [`OpenRequest`], then the path -> [`OpenReply`].
pub const FILE_OPEN: Function = Function(USER_BASE | 0x490);
/// READ: [`ReadRequest`] -> the bytes (msgRetVal their number; 0 at or
/// past the end).
pub const FILE_READ: Function = Function(USER_BASE | 0x491);
/// WRITE: [`WriteRequest`], then the bytes -> [`WriteReply`].
pub const FILE_WRITE: Function = Function(USER_BASE | 0x492);
/// TRUNCATE: [`TruncateRequest`] -> nothing.
pub const FILE_TRUNCATE: Function = Function(USER_BASE | 0x493);
/// STAT: [`PathRequest`], then the path -> [`StatReply`].
pub const FILE_STAT: Function = Function(USER_BASE | 0x494);
/// UNLINK: [`PathRequest`], then the path of a file -> nothing.
pub const FILE_UNLINK: Function = Function(USER_BASE | 0x495);
/// MKDIR: [`PathRequest`], then the path -> nothing.
pub const FILE_MKDIR: Function = Function(USER_BASE | 0x496);
/// RMDIR: [`PathRequest`], then the path of an empty directory -> nothing.
pub const FILE_RMDIR: Function = Function(USER_BASE | 0x497);
/// LIST: [`ListRequest`], then a directory's path -> [`ListReply`], then
/// `count` [`DirectoryEntry`] records.
pub const FILE_LIST: Function = Function(USER_BASE | 0x498);
/// STREAM: [`StreamRequest`], then the path -> [`StreamReply`]; slot 0:
/// the stream's done event (WAIT).
pub const FILE_STREAM: Function = Function(USER_BASE | 0x499);
/// USAGE: empty -> [`UsageReply`]: what the store holds and its limits.
pub const FILE_USAGE: Function = Function(USER_BASE | 0x49A);

/// OPEN flag: make the file when it does not exist (its directory must).
pub const CREATE: u32 = 1 << 0;
/// OPEN flag: empty the file.
pub const TRUNCATE: u32 = 1 << 1;
/// OPEN flag: refuse with `FILE_EXISTS` when the file exists (with CREATE).
pub const EXCLUSIVE: u32 = 1 << 2;
/// OPEN and STREAM flag: every write goes at the file's end.
pub const APPEND: u32 = 1 << 3;
/// Every OPEN flag.
pub const OPEN_FLAGS: u32 = CREATE | TRUNCATE | EXCLUSIVE | APPEND;
/// WRITE flag: write at the file's end, whatever the offset says.
pub const WRITE_APPEND: u32 = 1 << 0;

/// The longest path a request may carry (bytes, after the mount point).
pub const MAX_PATH: usize = 255;
/// The longest name of one directory entry (bytes).
pub const MAX_NAME: usize = 48;
/// The bytes every file together may hold (decision D81).
pub const STORE_BYTES: u64 = 1 << 20;
/// The files and directories the store may hold, the root included.
pub const STORE_NODES: u32 = 256;
/// Streams the server pumps at once (one worker thread each).
pub const MAX_STREAMS: u32 = 8;
/// The most bytes one READ or WRITE moves (a message's room).
pub const MAX_TRANSFER: usize = 3072;
/// The most entries one LIST reply carries.
pub const MAX_LIST_ENTRIES: usize = 48;

/// [`StatReply::kind`], [`DirectoryEntry::kind`]: a file.
pub const KIND_FILE: u32 = 1;
/// [`StatReply::kind`], [`DirectoryEntry::kind`]: a directory.
pub const KIND_DIRECTORY: u32 = 2;

/// A file as OPEN names it: its node and the node's generation, so an id
/// of an unlinked file never reaches a file made later in its place.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileId {
    /// The node's number.
    pub node: u32,
    /// How many times the node was reused before.
    pub generation: u32,
}

/// OPEN's request header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct OpenRequest {
    /// [`OPEN_FLAGS`] bits.
    pub flags: u32,
    /// The path's length in bytes (the bytes after this header).
    pub path_length: u32,
}

impl OpenRequest {
    /// OPEN of a path of `path_length` bytes with `flags`.
    pub const fn new(flags: u32, path_length: u32) -> Self {
        OpenRequest { flags, path_length }
    }
}

/// OPEN's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct OpenReply {
    /// The file.
    pub id: FileId,
    /// Its size after OPEN.
    pub size: u64,
}

/// READ's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ReadRequest {
    /// The file.
    pub id: FileId,
    /// Where to start.
    pub offset: u64,
    /// At most this many bytes (at most [`MAX_TRANSFER`]).
    pub length: u32,
    /// Zero.
    pub reserved: u32,
}

impl ReadRequest {
    /// READ of `length` bytes at `offset`.
    pub const fn new(id: FileId, offset: u64, length: u32) -> Self {
        ReadRequest {
            id,
            offset,
            length,
            reserved: 0,
        }
    }
}

/// WRITE's request header (the bytes follow).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WriteRequest {
    /// The file.
    pub id: FileId,
    /// Where to write (at most the file's size: no holes); ignored with
    /// [`WRITE_APPEND`].
    pub offset: u64,
    /// [`WRITE_APPEND`] or 0.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
}

impl WriteRequest {
    /// WRITE at `offset` (or at the end with [`WRITE_APPEND`]).
    pub const fn new(id: FileId, offset: u64, flags: u32) -> Self {
        WriteRequest {
            id,
            offset,
            flags,
            reserved: 0,
        }
    }
}

/// WRITE's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WriteReply {
    /// Where the bytes went.
    pub offset: u64,
    /// The file's size after the write.
    pub size: u64,
}

/// TRUNCATE's request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct TruncateRequest {
    /// The file.
    pub id: FileId,
    /// Its new size (a larger one adds zero bytes).
    pub size: u64,
}

impl TruncateRequest {
    /// TRUNCATE to `size`.
    pub const fn new(id: FileId, size: u64) -> Self {
        TruncateRequest { id, size }
    }
}

/// STAT's, UNLINK's, MKDIR's and RMDIR's request header (the path follows).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct PathRequest {
    /// The path's length in bytes.
    pub path_length: u32,
    /// Zero.
    pub reserved: u32,
}

impl PathRequest {
    /// A request naming a path of `path_length` bytes.
    pub const fn new(path_length: u32) -> Self {
        PathRequest {
            path_length,
            reserved: 0,
        }
    }
}

/// STAT's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StatReply {
    /// [`KIND_FILE`] or [`KIND_DIRECTORY`].
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// A file's bytes, a directory's entries.
    pub size: u64,
    /// The node (a directory's [`FileId`] opens nothing).
    pub id: FileId,
}

/// LIST's request header (the directory's path follows).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ListRequest {
    /// Skip this many entries (names in byte order).
    pub skip: u32,
    /// The path's length in bytes.
    pub path_length: u32,
}

impl ListRequest {
    /// LIST of a path of `path_length` bytes from entry `skip`.
    pub const fn new(skip: u32, path_length: u32) -> Self {
        ListRequest { skip, path_length }
    }
}

/// LIST's reply header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ListReply {
    /// Entries after this header.
    pub count: u32,
    /// 1: more entries follow the last one (ask again with a larger skip).
    pub more: u32,
}

/// One entry of a LIST reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct DirectoryEntry {
    /// [`KIND_FILE`] or [`KIND_DIRECTORY`].
    pub kind: u32,
    /// The name's length.
    pub name_length: u32,
    /// A file's bytes, a directory's entries.
    pub size: u64,
    /// The name, zero after `name_length` bytes.
    pub name: [u8; MAX_NAME],
}

/// STREAM's request header (the path follows).
///
/// The caller made a pipe and granted the server one end of it
/// (PIPE_GRANT to the pid USAGE names): the write end to read the file
/// (the server pumps the file into the pipe, then closes its end), the
/// read end to write it (the server pumps the pipe into the file until
/// end of file).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StreamRequest {
    /// Writing: [`CREATE`], [`TRUNCATE`], [`EXCLUSIVE`], [`APPEND`] as
    /// OPEN's; reading: 0.
    pub flags: u32,
    /// The pipe.
    pub pipe: u32,
    /// The end granted to the server: `WRITE_END` to read the file,
    /// `READ_END` to write it.
    pub end: u32,
    /// The path's length in bytes.
    pub path_length: u32,
}

impl StreamRequest {
    /// STREAM of a path of `path_length` bytes through `end` of `pipe`.
    pub const fn new(flags: u32, pipe: u32, end: u32, path_length: u32) -> Self {
        StreamRequest {
            flags,
            pipe,
            end,
            path_length,
        }
    }
}

/// STREAM's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StreamReply {
    /// The file.
    pub id: FileId,
    /// Its size when the stream started.
    pub size: u64,
}

/// USAGE's reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct UsageReply {
    /// Bytes every file holds together.
    pub bytes: u64,
    /// [`STORE_BYTES`].
    pub byte_limit: u64,
    /// Files and directories, the root included.
    pub nodes: u32,
    /// [`STORE_NODES`].
    pub node_limit: u32,
    /// Streams being pumped now.
    pub streams: u32,
    /// The server's process id (the pid STREAM's pipe end is granted to).
    pub pid: u32,
}

macro_rules! file_errors {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal, $label:literal; )*) => {
        /// The RAM file server's refusals, numbered from 0x11E0.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum FileError {
            $( $(#[doc = $doc])* $name = $value, )*
        }

        impl FileError {
            /// Every error, in numeric order.
            pub const ALL: &'static [FileError] = &[$(FileError::$name),*];

            /// The error with this number.
            pub const fn from_number(value: u32) -> Option<FileError> {
                match value {
                    $( $value => Some(FileError::$name), )*
                    _ => None,
                }
            }

            /// The stable name used in ABI.md.
            pub const fn name(self) -> &'static str {
                match self {
                    $( FileError::$name => $label, )*
                }
            }
        }
    };
}

file_errors! {
    /// A function number the server does not have.
    UnknownFunction = 0x11E0, "FILE_UNKNOWN_FUNCTION";
    /// The caller's buffer has no room for the reply.
    ReplyDoesNotFit = 0x11E1, "FILE_REPLY_DOES_NOT_FIT";
    /// A malformed request: sizes, a reserved field, undefined flags, a
    /// path length that does not match, a READ longer than MAX_TRANSFER.
    BadRequest = 0x11E2, "FILE_BAD_REQUEST";
    /// Not absolute, an empty, `.` or `..` component, a trailing `/`, a
    /// name over MAX_NAME or a path over MAX_PATH bytes, or not UTF-8.
    BadPath = 0x11E3, "FILE_BAD_PATH";
    /// No such file or directory.
    NotFound = 0x11E4, "FILE_NOT_FOUND";
    /// The name is taken (MKDIR, OPEN with EXCLUSIVE).
    Exists = 0x11E5, "FILE_EXISTS";
    /// A component of the path, or LIST's or RMDIR's path, is a file.
    NotDirectory = 0x11E6, "FILE_NOT_DIRECTORY";
    /// OPEN, STREAM or UNLINK of a directory.
    IsDirectory = 0x11E7, "FILE_IS_DIRECTORY";
    /// RMDIR of a directory with entries.
    NotEmpty = 0x11E8, "FILE_NOT_EMPTY";
    /// The bytes would pass STORE_BYTES.
    NoSpace = 0x11E9, "FILE_NO_SPACE";
    /// A new file or directory would pass STORE_NODES.
    TooManyNodes = 0x11EA, "FILE_TOO_MANY_NODES";
    /// A file id whose file was unlinked (or never was).
    Stale = 0x11EB, "FILE_STALE";
    /// A WRITE offset past the file's end (no holes).
    BadOffset = 0x11EC, "FILE_BAD_OFFSET";
    /// RMDIR of the root.
    RootDirectory = 0x11ED, "FILE_ROOT_DIRECTORY";
    /// A STREAM while MAX_STREAMS streams are being pumped.
    TooManyStreams = 0x11EE, "FILE_TOO_MANY_STREAMS";
    /// STREAM of a pipe end that was not granted to the server (procman's
    /// PIPE_OPEN refused), or an end other than READ_END and WRITE_END.
    BadPipe = 0x11EF, "FILE_BAD_PIPE";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::FunctionRange;

    #[test]
    fn errors_are_distinct_and_in_the_block() {
        for (i, e) in FileError::ALL.iter().enumerate() {
            assert!((0x11E0..=0x11FF).contains(&(*e as u32)));
            assert_eq!(FileError::from_number(*e as u32), Some(*e));
            for other in &FileError::ALL[i + 1..] {
                assert_ne!(e.name(), other.name());
            }
        }
    }

    #[test]
    fn functions_are_user_door_numbers() {
        for f in [
            FILE_OPEN,
            FILE_READ,
            FILE_WRITE,
            FILE_TRUNCATE,
            FILE_STAT,
            FILE_UNLINK,
            FILE_MKDIR,
            FILE_RMDIR,
            FILE_LIST,
            FILE_STREAM,
            FILE_USAGE,
        ] {
            assert_eq!(f.range(), FunctionRange::User);
            assert!((0x490..=0x4AF).contains(&(f.0 & 0xFFF)));
        }
        assert_eq!(core::mem::size_of::<DirectoryEntry>(), 64);
    }
}
