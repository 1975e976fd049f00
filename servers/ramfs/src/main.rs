//! The RAM file server (ABI.md §7a.6): registers its door as `/tmp` with
//! procman and serves `userlib::file`'s interface over one
//! [`ramfs::store::Store`] (1 MiB, 256 nodes). Its main thread answers
//! calls; [`MAX_STREAMS`] worker threads, made at start, pump the streams
//! (a pipe end granted by the caller, to or from a file) and signal each
//! stream's done event when it is finished.
//!
//! It must never block its main thread on a pipe (only workers touch
//! pipes), never keep a pipe end of a refused STREAM (it would hold the
//! caller's pipe open), and never let a request's contents panic it.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use abi::Rights;
use abi::file::{
    DirectoryEntry, FileError, FileId, ListReply, ListRequest, MAX_LIST_ENTRIES, MAX_NAME,
    MAX_STREAMS, MAX_TRANSFER, MOUNT, OPEN_FLAGS, OpenReply, OpenRequest, PathRequest, ReadRequest,
    SECURITY_TYPE, STORE_BYTES, STORE_NODES, StatReply, StreamReply, StreamRequest,
    TruncateRequest, UsageReply, WRITE_APPEND, WriteReply, WriteRequest,
};
use abi::stream::{PipeEndRequest, READ_END, WRITE_END};
use ramfs::store::Store;
use userlib::file::FileServer;
use userlib::interface::{Call, Refusal};
use userlib::pipe::{PipeReader, PipeWriter};
use userlib::procman::PROCMAN;
use userlib::{Event, Startup, kernel, println};
use zerocopy::IntoBytes;

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// Spinning on the store's lock gives the CPU to the holder.
struct YieldWhileLocked;

impl spin::relax::RelaxStrategy for YieldWhileLocked {
    fn relax() {
        let _ = kernel::yield_now();
    }
}

type Locked<T> = spin::mutex::Mutex<T, YieldWhileLocked>;

/// The bytes a worker moves at once (a pipe's capacity).
const PUMP_BYTES: usize = 4096;
/// A worker's stack: the pump buffer and the calls under it.
const WORKER_STACK: usize = 32 * 1024;

/// Which way a stream runs.
enum Pump {
    /// The pipe into the file, from `offset` on (`None`: each piece at
    /// the end).
    IntoFile {
        reader: PipeReader,
        offset: Option<u64>,
    },
    /// The file into the pipe, then end of file.
    FromFile { writer: PipeWriter },
}

/// A stream handed to a worker.
struct Job {
    id: FileId,
    pump: Pump,
    done: Event,
}

/// One worker: whether it pumps, the job it was given, its wake-up.
struct Worker {
    busy: AtomicBool,
    job: Locked<Option<Job>>,
    wake: Event,
}

struct Ramfs {
    store: Arc<Locked<Store>>,
    workers: Vec<Arc<Worker>>,
    pid: u32,
}

fn path(length: u32, bytes: &[u8]) -> Result<&[u8], Refusal<FileError>> {
    if length as usize != bytes.len() {
        return Err(FileError::BadRequest.into());
    }
    Ok(bytes)
}

/// Runs the streams given to `worker`, one after the other, for ever.
fn work(store: Arc<Locked<Store>>, worker: Arc<Worker>) {
    let mut buffer = [0u8; PUMP_BYTES];
    loop {
        if worker.wake.wait().is_err() {
            return;
        }
        let Some(job) = worker.job.lock().take() else {
            continue;
        };
        match job.pump {
            Pump::IntoFile { reader, mut offset } => {
                // Until end of file, a broken ring or a full store; the
                // pieces already written stay (each WRITE is whole).
                while let Ok(n) = reader.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let written = store.lock().write(job.id, offset, &buffer[..n]);
                    match written {
                        Ok((at, _)) => offset = offset.map(|_| at + n as u64),
                        Err(_) => break,
                    }
                }
                // Closing the read end tells a writer still writing
                // (broken pipe).
                drop(reader);
            }
            Pump::FromFile { writer } => {
                let mut offset = 0u64;
                loop {
                    let n = match store.lock().read(job.id, offset, PUMP_BYTES) {
                        Ok(piece) => {
                            buffer[..piece.len()].copy_from_slice(piece);
                            piece.len()
                        }
                        Err(_) => 0,
                    };
                    if n == 0 || writer.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    offset += n as u64;
                }
                drop(writer);
            }
        }
        // D80: the stream is finished (and a written file complete) once
        // this is signalled, after the end was closed.
        let _ = job.done.signal();
        drop(job.done);
        worker.busy.store(false, Ordering::Release);
    }
}

impl Ramfs {
    /// Gives up the server's reference of a refused STREAM's end.
    fn give_back(pipe: u32, end: u32) {
        let _ = PROCMAN.pipe_close(PipeEndRequest::new(pipe, end));
    }

    fn checked_stream(&mut self, header: &StreamRequest, bytes: &[u8]) -> Result<(), FileError> {
        if header.path_length as usize != bytes.len() {
            return Err(FileError::BadRequest);
        }
        let flags = match header.end {
            // The server writes the pipe: the file is read.
            WRITE_END if header.flags != 0 => return Err(FileError::BadRequest),
            WRITE_END => 0,
            READ_END if header.flags & !OPEN_FLAGS != 0 => return Err(FileError::BadRequest),
            READ_END => header.flags,
            _ => return Err(FileError::BadPipe),
        };
        self.store.lock().check_open(bytes, flags)
    }

    fn idle_worker(&self) -> Option<&Arc<Worker>> {
        self.workers.iter().find(|worker| {
            worker
                .busy
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }
}

impl FileServer for Ramfs {
    fn open(
        &mut self,
        _call: &mut Call<'_>,
        header: OpenRequest,
        bytes: &[u8],
    ) -> Result<OpenReply, Refusal<FileError>> {
        let path = path(header.path_length, bytes)?;
        let (id, size) = self.store.lock().open(path, header.flags)?;
        Ok(OpenReply { id, size })
    }

    fn read(&mut self, call: &mut Call<'_>, header: ReadRequest) -> Result<(), Refusal<FileError>> {
        if header.reserved != 0 || header.length as usize > MAX_TRANSFER {
            return Err(FileError::BadRequest.into());
        }
        let store = self.store.lock();
        let data = store.read(header.id, header.offset, header.length as usize)?;
        if data.len() > call.room() {
            return Err(FileError::ReplyDoesNotFit.into());
        }
        call.push_bytes(data)
            .map_err(|_| FileError::ReplyDoesNotFit)?;
        call.set_value(data.len() as u32);
        Ok(())
    }

    fn write(
        &mut self,
        _call: &mut Call<'_>,
        header: WriteRequest,
        bytes: &[u8],
    ) -> Result<WriteReply, Refusal<FileError>> {
        if header.reserved != 0 || header.flags & !WRITE_APPEND != 0 {
            return Err(FileError::BadRequest.into());
        }
        let offset = (header.flags & WRITE_APPEND == 0).then_some(header.offset);
        let (offset, size) = self.store.lock().write(header.id, offset, bytes)?;
        Ok(WriteReply { offset, size })
    }

    fn truncate(
        &mut self,
        _call: &mut Call<'_>,
        header: TruncateRequest,
    ) -> Result<(), Refusal<FileError>> {
        self.store.lock().truncate(header.id, header.size)?;
        Ok(())
    }

    fn stat(
        &mut self,
        _call: &mut Call<'_>,
        header: PathRequest,
        bytes: &[u8],
    ) -> Result<StatReply, Refusal<FileError>> {
        if header.reserved != 0 {
            return Err(FileError::BadRequest.into());
        }
        let stat = self.store.lock().stat(path(header.path_length, bytes)?)?;
        Ok(StatReply {
            kind: stat.kind,
            reserved: 0,
            size: stat.size,
            id: stat.id,
        })
    }

    fn unlink(
        &mut self,
        _call: &mut Call<'_>,
        header: PathRequest,
        bytes: &[u8],
    ) -> Result<(), Refusal<FileError>> {
        if header.reserved != 0 {
            return Err(FileError::BadRequest.into());
        }
        self.store.lock().unlink(path(header.path_length, bytes)?)?;
        Ok(())
    }

    fn mkdir(
        &mut self,
        _call: &mut Call<'_>,
        header: PathRequest,
        bytes: &[u8],
    ) -> Result<(), Refusal<FileError>> {
        if header.reserved != 0 {
            return Err(FileError::BadRequest.into());
        }
        self.store.lock().mkdir(path(header.path_length, bytes)?)?;
        Ok(())
    }

    fn rmdir(
        &mut self,
        _call: &mut Call<'_>,
        header: PathRequest,
        bytes: &[u8],
    ) -> Result<(), Refusal<FileError>> {
        if header.reserved != 0 {
            return Err(FileError::BadRequest.into());
        }
        self.store.lock().rmdir(path(header.path_length, bytes)?)?;
        Ok(())
    }

    fn list(
        &mut self,
        call: &mut Call<'_>,
        header: ListRequest,
        bytes: &[u8],
    ) -> Result<ListReply, Refusal<FileError>> {
        let entries = self.store.lock().list(path(header.path_length, bytes)?)?;
        let header_room = core::mem::size_of::<ListReply>();
        let fit = call.room().saturating_sub(header_room) / core::mem::size_of::<DirectoryEntry>();
        let rest = entries.get(header.skip as usize..).unwrap_or_default();
        let count = rest.len().min(fit).min(MAX_LIST_ENTRIES);
        for (name, stat) in &rest[..count] {
            let mut record = DirectoryEntry {
                kind: stat.kind,
                name_length: name.len() as u32,
                size: stat.size,
                name: [0; MAX_NAME],
            };
            let length = name.len().min(MAX_NAME);
            record.name[..length].copy_from_slice(&name.as_bytes()[..length]);
            call.push_bytes(record.as_bytes())
                .map_err(|_| FileError::ReplyDoesNotFit)?;
        }
        if count == 0 && !rest.is_empty() {
            return Err(FileError::ReplyDoesNotFit.into());
        }
        Ok(ListReply {
            count: count as u32,
            more: u32::from(count < rest.len()),
        })
    }

    fn stream(
        &mut self,
        call: &mut Call<'_>,
        header: StreamRequest,
        bytes: &[u8],
    ) -> Result<StreamReply, Refusal<FileError>> {
        let refuse = |error: FileError| {
            if header.end == READ_END || header.end == WRITE_END {
                Ramfs::give_back(header.pipe, header.end);
            }
            Refusal::Interface(error)
        };
        self.checked_stream(&header, bytes).map_err(refuse)?;
        let worker = self
            .idle_worker()
            .cloned()
            .ok_or_else(|| refuse(FileError::TooManyStreams))?;
        let release = |error: Refusal<FileError>| {
            worker.busy.store(false, Ordering::Release);
            error
        };
        let done = Event::create().map_err(|error| {
            release(refuse(FileError::BadPipe));
            Refusal::Kernel(error)
        })?;
        // procman's PIPE_OPEN succeeds only for an end granted to us.
        let pump = if header.end == READ_END {
            PipeReader::open(header.pipe).map(|reader| Pump::IntoFile {
                reader,
                offset: (header.flags & abi::file::APPEND == 0).then_some(0),
            })
        } else {
            PipeWriter::open(header.pipe).map(|writer| Pump::FromFile { writer })
        };
        let pump = pump.map_err(|_| release(refuse(FileError::BadPipe)))?;
        let flags = if header.end == READ_END {
            header.flags
        } else {
            0
        };
        // Checked above; a call between could not have run (one thread
        // answers calls), but a worker may have filled the store.
        let opened = self.store.lock().open(bytes, flags);
        let (id, size) = opened.map_err(|error| release(Refusal::Interface(error)))?;
        // The caller's reference is a duplicate moved with the reply: the
        // worker may finish the stream and close its own before the reply
        // leaves (a copy would then name a closed descriptor).
        let for_caller = done
            .descriptor()
            .duplicate(Rights(Rights::WAIT.0 | Rights::TRANSFER.0))
            .map_err(|error| release(Refusal::Kernel(error)))?;
        call.push_move(for_caller, Rights::WAIT)
            .map_err(|_| release(FileError::ReplyDoesNotFit.into()))?;
        *worker.job.lock() = Some(Job { id, pump, done });
        let _ = worker.wake.signal();
        Ok(StreamReply { id, size })
    }

    fn usage(&mut self, _call: &mut Call<'_>) -> Result<UsageReply, Refusal<FileError>> {
        let store = self.store.lock();
        let streams = self
            .workers
            .iter()
            .filter(|worker| worker.busy.load(Ordering::Acquire))
            .count();
        Ok(UsageReply {
            bytes: store.bytes(),
            byte_limit: STORE_BYTES,
            nodes: store.nodes(),
            node_limit: STORE_NODES,
            streams: streams as u32,
            pid: self.pid,
        })
    }
}

fn run(_startup: Startup) -> i32 {
    let pid = kernel::process_id().unwrap_or(0) as u32;
    let store = Arc::new(Locked::new(Store::new(STORE_BYTES, STORE_NODES)));
    let mut workers = Vec::new();
    for _ in 0..MAX_STREAMS {
        let worker = match Event::create() {
            Ok(wake) => Arc::new(Worker {
                busy: AtomicBool::new(false),
                job: Locked::new(None),
                wake,
            }),
            Err(error) => {
                println!("ramfs: no event for a worker: {error}");
                return 1;
            }
        };
        let (store, mine) = (store.clone(), worker.clone());
        if let Err(error) = userlib::spawn_thread(move || work(store, mine), WORKER_STACK) {
            println!("ramfs: cannot start a worker: {error}");
            return 1;
        }
        workers.push(worker);
    }
    let door = match userlib::procman::create_mount(MOUNT, SECURITY_TYPE) {
        Ok(object) => {
            drop(object.client);
            object.owner
        }
        Err(error) => {
            println!("ramfs: cannot register {MOUNT}: {error}");
            return 1;
        }
    };
    let error = Ramfs {
        store,
        workers,
        pid,
    }
    .serve(&door);
    println!("ramfs: stopped: {error}");
    1
}
