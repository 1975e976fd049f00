//! The shell's pipes and file streams (the `System` calls `lib.rs` plans
//! pipelines with): the pipe ends the shell holds, numbered for
//! `shell::StreamId`, the done events of file streams, numbered for
//! `shell::DoneId`, and the RAM file server under `/tmp`, opened at the
//! first use. It must never keep an end the shell closed (a reader would
//! never see end of file) and never name an end to procman that the shell
//! does not hold.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use abi::file::{APPEND, CREATE, KIND_DIRECTORY, TRUNCATE};
use abi::stream::{STDERR, STDIN, STDOUT, StdStream};
use shell::{DoneId, FileInfo, StreamId};
use userlib::file::{Files, FsError, StreamDone};
use userlib::pipe::{PipeReader, PipeWriter, pipe};
use userlib::stream::StreamError;
use userlib::{procman, stdio};

/// A pipe end the shell holds.
enum End {
    Read(PipeReader),
    Write(PipeWriter),
}

impl End {
    fn pipe(&self) -> u32 {
        match self {
            End::Read(reader) => reader.pipe(),
            End::Write(writer) => writer.pipe(),
        }
    }
}

/// What the shell holds of pipes and file streams.
#[derive(Default)]
pub struct Plumbing {
    next: u32,
    ends: BTreeMap<StreamId, End>,
    dones: BTreeMap<DoneId, StreamDone>,
    files: Option<Files>,
}

/// A stream error's name (`PM_BROKEN_PIPE`, procman's refusal, ...).
fn stream_error(error: StreamError) -> String {
    FsError::Stream(error).name()
}

impl Plumbing {
    fn number(&mut self) -> u32 {
        self.next = self.next.wrapping_add(1);
        self.next
    }

    fn keep(&mut self, end: End) -> StreamId {
        let id = self.number();
        self.ends.insert(id, end);
        id
    }

    fn keep_done(&mut self, done: StreamDone) -> DoneId {
        let id = self.number();
        self.dones.insert(id, done);
        id
    }

    fn files(&mut self) -> Result<&Files, String> {
        if self.files.is_none() {
            self.files = Some(Files::connect().map_err(|error| error.name())?);
        }
        self.files.as_ref().ok_or_else(|| String::from("no /tmp"))
    }

    /// PIPE_CREATE: the read end's id, the write end's.
    pub fn pipe(&mut self) -> Result<(StreamId, StreamId), String> {
        let (reader, writer) = pipe().map_err(stream_error)?;
        Ok((self.keep(End::Read(reader)), self.keep(End::Write(writer))))
    }

    /// The file at `path` as a read end.
    pub fn read_file(&mut self, path: &str) -> Result<(StreamId, DoneId), String> {
        let (reader, done) = self.files()?.read_stream(path).map_err(|e| e.name())?;
        Ok((self.keep(End::Read(reader)), self.keep_done(done)))
    }

    /// The file at `path` as a write end (`>` empties it, `>>` appends).
    pub fn write_file(&mut self, path: &str, append: bool) -> Result<(StreamId, DoneId), String> {
        let flags = CREATE | if append { APPEND } else { TRUNCATE };
        let (writer, done) = self
            .files()?
            .write_stream(path, flags)
            .map_err(|e| e.name())?;
        Ok((self.keep(End::Write(writer)), self.keep_done(done)))
    }

    /// SPAWN with these ends as stdin and stdout (the shell's own when
    /// `None`) and the shell's stderr.
    pub fn start(
        &mut self,
        program: &str,
        arguments: &str,
        stdin: Option<StreamId>,
        stdout: Option<StreamId>,
    ) -> Result<u32, String> {
        let stream = |id: Option<StreamId>, own: u32| -> Result<StdStream, String> {
            match id {
                None => Ok(stdio::inherit(own)),
                Some(id) => self
                    .ends
                    .get(&id)
                    .map(|end| StdStream::pipe(end.pipe()))
                    .ok_or_else(|| format!("no stream {id}")),
            }
        };
        let streams = [
            stream(stdin, STDIN)?,
            stream(stdout, STDOUT)?,
            stdio::inherit(STDERR),
        ];
        procman::spawn_with_streams(program, arguments.as_bytes(), &[], streams)
            .map_err(|error| stream_error(StreamError::Call(error)))
    }

    /// Writes to a write end.
    pub fn write_to(&mut self, stream: StreamId, bytes: &[u8]) -> Result<(), String> {
        match self.ends.get(&stream) {
            Some(End::Write(writer)) => writer.write_all(bytes).map_err(stream_error),
            _ => Err(format!("stream {stream} is not a write end")),
        }
    }

    /// Closes an end (dropping it is PIPE_CLOSE).
    pub fn close(&mut self, stream: StreamId) {
        self.ends.remove(&stream);
    }

    /// Waits for a file stream's done event.
    pub fn finish(&mut self, done: DoneId) -> Result<(), String> {
        let done = self
            .dones
            .remove(&done)
            .ok_or_else(|| format!("no file stream {done}"))?;
        done.wait().map_err(|error| String::from(error.name()))
    }

    /// LIST under `/tmp`.
    pub fn list(&mut self, directory: &str) -> Result<Vec<FileInfo>, String> {
        let entries = self.files()?.list(directory).map_err(|e| e.name())?;
        Ok(entries
            .into_iter()
            .map(|entry| FileInfo {
                name: entry.name,
                directory: entry.kind == KIND_DIRECTORY,
                size: entry.size,
            })
            .collect())
    }

    /// STAT under `/tmp`: a directory?
    pub fn is_directory(&mut self, path: &str) -> Result<bool, String> {
        let stat = self.files()?.stat(path).map_err(|e| e.name())?;
        Ok(stat.kind == KIND_DIRECTORY)
    }
}
