//! The RAM file server's client side (ABI.md §7a.6, `abi::file`): the
//! protocol declared once with [`crate::interface!`] (the stub
//! [`FileClient`], the trait [`FileServer`] `servers/ramfs` implements),
//! and over it [`Files`] (paths as the namespace names them, `/tmp/...`),
//! [`File`] (a file with the position, `seek` and `close` the stateless
//! protocol leaves to the client, decision D79) and the streams
//! ([`Files::read_stream`], [`Files::write_stream`]): a pipe end whose
//! other end the server pumps to or from the file (decision D80).
//!
//! This module must never pass a pipe end on except through procman
//! (PIPE_GRANT to the server's pid as USAGE names it).

use abi::file::{
    DirectoryEntry, FILE_LIST, FILE_MKDIR, FILE_OPEN, FILE_READ, FILE_RMDIR, FILE_STAT,
    FILE_STREAM, FILE_TRUNCATE, FILE_UNLINK, FILE_USAGE, FILE_WRITE, FileError, FileId, ListReply,
    ListRequest, MAX_TRANSFER, MOUNT, OpenReply, OpenRequest, PathRequest, ReadRequest, StatReply,
    StreamReply, StreamRequest, TruncateRequest, UsageReply, WRITE_APPEND, WriteReply,
    WriteRequest,
};
use abi::stream::{READ_END, WRITE_END};
use abi::{Descriptor, Error};
use alloc::string::String;
use alloc::vec::Vec;
use zerocopy::FromBytes;

use crate::client::CallError;
use crate::descriptor::OwnedDescriptor;
use crate::event::Event;
use crate::interface::{ClientError, InterfaceError};
use crate::pipe::{PipeReader, PipeWriter, pipe};
use crate::stream::StreamError;

crate::interface! {
    /// Calls the RAM file server through a client reference to its door
    /// (procman's OPEN of `abi::file::MOUNT`).
    pub client FileClient;
    /// The RAM file server's side (`servers/ramfs`).
    pub server FileServer;
    error FileError;

    /// OPEN: the file at the path in `bytes`, made or emptied as the
    /// flags ask.
    fn open(FILE_OPEN) request(header: OpenRequest, bytes) reply(header: OpenReply);
    /// READ: the reply's bytes are the file's at the offset.
    fn read(FILE_READ) request(header: ReadRequest) reply(bytes);
    /// WRITE: the request's bytes at the offset (or the end).
    fn write(FILE_WRITE) request(header: WriteRequest, bytes) reply(header: WriteReply);
    /// TRUNCATE: the file's new size.
    fn truncate(FILE_TRUNCATE) request(header: TruncateRequest) reply();
    /// STAT of the path in `bytes`.
    fn stat(FILE_STAT) request(header: PathRequest, bytes) reply(header: StatReply);
    /// UNLINK of the file at the path in `bytes`.
    fn unlink(FILE_UNLINK) request(header: PathRequest, bytes) reply();
    /// MKDIR of the path in `bytes`.
    fn mkdir(FILE_MKDIR) request(header: PathRequest, bytes) reply();
    /// RMDIR of the empty directory at the path in `bytes`.
    fn rmdir(FILE_RMDIR) request(header: PathRequest, bytes) reply();
    /// LIST of the directory at the path in `bytes`: `DirectoryEntry`
    /// records follow the reply's header.
    fn list(FILE_LIST) request(header: ListRequest, bytes) reply(header: ListReply, bytes);
    /// STREAM: the file at the path in `bytes` through a pipe end granted
    /// to the server; slot 0 of the reply is the stream's done event.
    fn stream(FILE_STREAM)
        request(header: StreamRequest, bytes)
        reply(header: StreamReply, descriptors: 1);
    /// USAGE: the store's use, its limits and the server's pid.
    fn usage(FILE_USAGE) request() reply(header: UsageReply);
}

impl InterfaceError for FileError {
    const BAD_REQUEST: Self = FileError::BadRequest;
    const UNKNOWN_FUNCTION: Self = FileError::UnknownFunction;
    const REPLY_DOES_NOT_FIT: Self = FileError::ReplyDoesNotFit;

    fn number(self) -> u32 {
        self as u32
    }

    fn from_number(number: u32) -> Option<Self> {
        FileError::from_number(number)
    }

    fn name(self) -> &'static str {
        FileError::name(self)
    }
}

/// Why a file operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// The path is not under `/tmp`.
    NotUnderMount,
    /// The file server answered with an error (or could not be called).
    File(ClientError<FileError>),
    /// procman refused something the call needed (OPEN of `/tmp`, a pipe).
    Stream(StreamError),
}

impl FsError {
    /// Its error number (0 for a path not under `/tmp`, which no server
    /// answered).
    pub fn errno(&self) -> u32 {
        match self {
            FsError::NotUnderMount => 0,
            FsError::File(error) => error.errno(),
            FsError::Stream(error) => error.errno(),
        }
    }

    /// The error's stable name (`FILE_NOT_FOUND`, `PM_NO_SUCH_NAME`, ...).
    pub fn name(&self) -> String {
        let number = match self {
            FsError::NotUnderMount => return String::from("not under /tmp"),
            FsError::File(ClientError::Interface(error)) => return String::from(error.name()),
            FsError::File(ClientError::Kernel(error) | ClientError::ServerKernel(error)) => {
                return String::from(error.name());
            }
            FsError::File(other) => other.errno(),
            FsError::Stream(StreamError::BrokenPipe) => return String::from("PM_BROKEN_PIPE"),
            FsError::Stream(error) => error.errno(),
        };
        abi::procman::ProcmanError::from_number(number)
            .map(|e| String::from(e.name()))
            .or_else(|| Error::from_number(number).map(|e| String::from(e.name())))
            .unwrap_or_else(|| alloc::format!("error {number:#x}"))
    }
}

impl From<ClientError<FileError>> for FsError {
    fn from(error: ClientError<FileError>) -> Self {
        FsError::File(error)
    }
}

impl From<StreamError> for FsError {
    fn from(error: StreamError) -> Self {
        FsError::Stream(error)
    }
}

impl From<CallError> for FsError {
    fn from(error: CallError) -> Self {
        FsError::Stream(StreamError::Call(error))
    }
}

/// The server's path for a namespace path: `/tmp` is `/`, `/tmp/a` is
/// `/a`; `None` for a path not under `/tmp`.
pub fn server_path(path: &str) -> Option<&str> {
    match path.strip_prefix(MOUNT)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// `path` made absolute against `directory` (an absolute path, the
/// working directory), as a Unix kernel resolves a name: a path starting
/// with `/` ignores `directory`; empty and `.` components go, `..` goes up
/// one, never above `/` (decision D95). The result is absolute and clean
/// (no empty, `.` or `..` component, no trailing `/`), `/` for the root.
pub fn resolve(directory: &str, path: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    let start = if path.starts_with('/') { "" } else { directory };
    for name in start.split('/').chain(path.split('/')) {
        match name {
            "" | "." => {}
            ".." => {
                names.pop();
            }
            name => names.push(name),
        }
    }
    let mut out = String::with_capacity(path.len() + directory.len() + 1);
    if names.is_empty() {
        out.push('/');
    }
    for name in names {
        out.push('/');
        out.push_str(name);
    }
    out
}

/// `path` made absolute against this process's working directory, which
/// procman keeps (GETCWD, asked only for a relative path).
pub fn absolute(path: &str) -> Result<String, FsError> {
    if path.starts_with('/') {
        return Ok(resolve("/", path));
    }
    let directory = crate::procman::getcwd()?;
    Ok(resolve(&directory, path))
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// `KIND_FILE` or `KIND_DIRECTORY`.
    pub kind: u32,
    /// A file's bytes, a directory's entries.
    pub size: u64,
}

/// The file server, reached through `/tmp`.
#[derive(Debug)]
pub struct Files {
    client: FileClient,
    _door: OwnedDescriptor,
}

/// A stream's done event: signalled once the server has pumped the whole
/// stream (a written file holds every byte the pipe carried).
#[derive(Debug)]
pub struct StreamDone(Event);

impl StreamDone {
    /// Waits until the server finished the stream.
    pub fn wait(&self) -> Result<(), Error> {
        self.0.wait().map(drop)
    }
}

fn length(path: &str) -> u32 {
    // A path longer than a message is refused by the call itself.
    u32::try_from(path.len()).unwrap_or(u32::MAX)
}

impl Files {
    /// Opens `/tmp` through procman. The server may not have registered
    /// it yet when both start at boot, so a missing name is asked for
    /// again a while (yielding between), as echo-client does.
    pub fn connect() -> Result<Files, FsError> {
        let no_such_name = abi::procman::ProcmanError::NoSuchName as u32;
        let mut tries = 0;
        let door = loop {
            match crate::procman::open(MOUNT) {
                Ok(door) => break door,
                Err(CallError::Server(code)) if code == no_such_name && tries < 1000 => {
                    tries += 1;
                    let _ = crate::kernel::yield_now();
                }
                Err(error) => return Err(error.into()),
            }
        };
        Ok(Files {
            client: FileClient::new(door.descriptor()),
            _door: door,
        })
    }

    /// The server's stub.
    pub fn client(&self) -> &FileClient {
        &self.client
    }

    /// The server's path for `path`, relative ones resolved against the
    /// working directory first.
    fn path(&self, path: &str) -> Result<String, FsError> {
        let path = absolute(path)?;
        server_path(&path)
            .map(String::from)
            .ok_or(FsError::NotUnderMount)
    }

    /// Opens the file at `path` (`/tmp/...`) with OPEN's flags.
    pub fn open(&self, path: &str, flags: u32) -> Result<File<'_>, FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        let reply = self
            .client
            .open(OpenRequest::new(flags, length(path)), path.as_bytes())?;
        Ok(File {
            files: self,
            id: reply.header.id,
            position: 0,
            append: flags & abi::file::APPEND != 0,
        })
    }

    /// STAT of `path`.
    pub fn stat(&self, path: &str) -> Result<StatReply, FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        Ok(self
            .client
            .stat(PathRequest::new(length(path)), path.as_bytes())?
            .header)
    }

    /// UNLINK of the file at `path`.
    pub fn unlink(&self, path: &str) -> Result<(), FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        self.client
            .unlink(PathRequest::new(length(path)), path.as_bytes())?;
        Ok(())
    }

    /// MKDIR of `path`.
    pub fn mkdir(&self, path: &str) -> Result<(), FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        self.client
            .mkdir(PathRequest::new(length(path)), path.as_bytes())?;
        Ok(())
    }

    /// RMDIR of `path`.
    pub fn rmdir(&self, path: &str) -> Result<(), FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        self.client
            .rmdir(PathRequest::new(length(path)), path.as_bytes())?;
        Ok(())
    }

    /// Every entry of the directory at `path`, in name order.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        let mut entries = Vec::new();
        loop {
            let skip = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            let reply = self
                .client
                .list(ListRequest::new(skip, length(path)), path.as_bytes())?;
            // The records follow the header unaligned: each is copied out.
            let bytes = reply.bytes();
            let size = core::mem::size_of::<DirectoryEntry>();
            if bytes.len() % size != 0 {
                return Err(FsError::File(ClientError::BadReply));
            }
            let records = bytes.chunks_exact(size);
            let count = records.len();
            for chunk in records {
                let record = DirectoryEntry::read_from_bytes(chunk)
                    .map_err(|_| FsError::File(ClientError::BadReply))?;
                let name = record
                    .name
                    .get(..record.name_length as usize)
                    .ok_or(FsError::File(ClientError::BadReply))?;
                entries.push(Entry {
                    name: String::from_utf8_lossy(name).into(),
                    kind: record.kind,
                    size: record.size,
                });
            }
            if reply.header.more == 0 || count == 0 {
                return Ok(entries);
            }
        }
    }

    /// USAGE.
    pub fn usage(&self) -> Result<UsageReply, FsError> {
        Ok(self.client.usage()?.header)
    }

    fn stream(&self, path: &str, flags: u32, pipe: u32, end: u32) -> Result<StreamDone, FsError> {
        let mut reply = self.client.stream(
            StreamRequest::new(flags, pipe, end, length(path)),
            path.as_bytes(),
        )?;
        let done = reply
            .take_descriptor(0)
            .ok_or(FsError::File(ClientError::BadReply))?;
        Ok(StreamDone(Event::from_descriptor(done)))
    }

    /// The file at `path` as a stream to read: a pipe's read end the
    /// server fills with the file's bytes, then end of file.
    pub fn read_stream(&self, path: &str) -> Result<(PipeReader, StreamDone), FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        let pid = self.usage()?.pid;
        let (reader, writer) = pipe()?;
        writer.grant(pid)?;
        let done = self.stream(path, 0, writer.pipe(), WRITE_END)?;
        // The server holds the write end now; ours would keep the reader
        // from ever seeing end of file.
        writer.close()?;
        Ok((reader, done))
    }

    /// The file at `path` as a stream to write (OPEN's flags: CREATE,
    /// TRUNCATE, EXCLUSIVE, APPEND): a pipe's write end the server drains
    /// into the file until end of file.
    pub fn write_stream(
        &self,
        path: &str,
        flags: u32,
    ) -> Result<(PipeWriter, StreamDone), FsError> {
        let path = self.path(path)?;
        let path = path.as_str();
        let pid = self.usage()?.pid;
        let (reader, writer) = pipe()?;
        reader.grant(pid)?;
        let done = self.stream(path, flags, reader.pipe(), READ_END)?;
        reader.close()?;
        Ok((writer, done))
    }
}

/// An open file: its id and the client's position in it.
#[derive(Debug)]
pub struct File<'f> {
    files: &'f Files,
    id: FileId,
    position: u64,
    append: bool,
}

impl File<'_> {
    /// The file's id.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Reads at the position, at most `out.len()` bytes; 0 at the end.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, FsError> {
        let want = out.len().min(MAX_TRANSFER) as u32;
        let reply = self
            .files
            .client
            .read(ReadRequest::new(self.id, self.position, want))?;
        let bytes = reply.bytes();
        let n = bytes.len().min(out.len());
        out[..n].copy_from_slice(&bytes[..n]);
        self.position += n as u64;
        Ok(n)
    }

    /// Writes all of `bytes` at the position (at the end when opened
    /// with APPEND), in pieces of at most `MAX_TRANSFER`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        for piece in bytes.chunks(MAX_TRANSFER) {
            let flags = if self.append { WRITE_APPEND } else { 0 };
            let reply = self
                .files
                .client
                .write(WriteRequest::new(self.id, self.position, flags), piece)?;
            self.position = reply.header.offset + piece.len() as u64;
        }
        Ok(())
    }

    /// Moves the position (a position past the end reads nothing; a write
    /// there is refused, FILE_BAD_OFFSET).
    pub fn seek(&mut self, position: u64) {
        self.position = position;
    }

    /// The position.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// TRUNCATE to `size`.
    pub fn truncate(&self, size: u64) -> Result<(), FsError> {
        self.files
            .client
            .truncate(TruncateRequest::new(self.id, size))?;
        Ok(())
    }

    /// Closes the file: the server keeps nothing per open file, so this
    /// only forgets the id.
    pub fn close(self) {}
}

/// The descriptor a stub calls through, for tests that build their own.
pub fn client(door: Descriptor) -> FileClient {
    FileClient::new(door)
}

impl embedded_io::Error for FsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            FsError::Stream(error) => embedded_io::Error::kind(error),
            FsError::File(ClientError::Interface(FileError::NotFound)) => {
                embedded_io::ErrorKind::NotFound
            }
            FsError::File(ClientError::Interface(FileError::NoSpace)) => {
                embedded_io::ErrorKind::OutOfMemory
            }
            _ => embedded_io::ErrorKind::Other,
        }
    }
}

impl embedded_io::ErrorType for File<'_> {
    type Error = FsError;
}

impl embedded_io::Read for File<'_> {
    fn read(&mut self, out: &mut [u8]) -> Result<usize, FsError> {
        File::read(self, out)
    }
}

impl embedded_io::Write for File<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, FsError> {
        let piece = &bytes[..bytes.len().min(MAX_TRANSFER)];
        // The inherent write_all (the trait's would call this again).
        File::write_all(self, piece)?;
        Ok(piece.len())
    }

    fn flush(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn relative_names_resolve_against_the_directory() {
        for (directory, path, resolved) in [
            ("/tmp", "a", "/tmp/a"),
            ("/tmp", "./a", "/tmp/a"),
            ("/tmp/d", "../a", "/tmp/a"),
            ("/tmp", "../../../a", "/a"),
            ("/tmp", "..", "/"),
            ("/tmp", ".", "/tmp"),
            ("/tmp", "", "/tmp"),
            ("/tmp", "/srv//echo/", "/srv/echo"),
            ("/", "tmp/a/", "/tmp/a"),
            ("/", "..", "/"),
        ] {
            assert_eq!(resolve(directory, path), resolved, "{directory} + {path}");
        }
        assert_eq!(server_path(&resolve("/tmp/d", "../a")), Some("/a"));
    }

    fn clean(path: &str) -> bool {
        path == "/"
            || (path.starts_with('/')
                && path[1..]
                    .split('/')
                    .all(|name| !name.is_empty() && name != "." && name != ".."))
    }

    proptest! {
        /// Whatever the directory and the path: the result is absolute and
        /// clean (it never leaves `/`), resolving it again changes nothing
        /// whatever the directory, and an absolute path ignores the
        /// directory.
        #[test]
        fn resolution_stays_under_the_root_and_is_idempotent(
            directory in prop::collection::vec(prop::sample::select(vec!["a", "b", ".", "..", ""]), 0..6),
            path in prop::collection::vec(prop::sample::select(vec!["a", "b", ".", "..", ""]), 0..8),
            absolute in any::<bool>(),
        ) {
            let directory = resolve("/", &directory.join("/"));
            prop_assert!(clean(&directory));
            let path = alloc::format!("{}{}", if absolute { "/" } else { "" }, path.join("/"));
            let resolved = resolve(&directory, &path);
            prop_assert!(clean(&resolved), "{} + {} = {}", directory, path, resolved);
            prop_assert_eq!(&resolve("/elsewhere", &resolved), &resolved);
            prop_assert_eq!(&resolve(&directory, &resolved), &resolved);
            if absolute {
                prop_assert_eq!(resolve("/x/y", &path), resolved);
            }
        }
    }
}
