//! MSG-RAMFS: the RAM file server under `/tmp` (ABI.md §7a.6): files and
//! directories, the stateless ids (D79), files as streams and when a
//! written stream's bytes are in the file (D80), the byte budget and the
//! node limit (D81), every refusal, each changing nothing.
//!
//! Each case observes a result as registers: arg0 a value (or 0) for
//! success, else -1 with arg1 the error number. A refusal is checked
//! against USAGE and procman's stream table before and after. Every case
//! removes what it made, so the next starts from the same store.

use abi::file::{
    APPEND, CREATE, EXCLUSIVE, FileError, KIND_DIRECTORY, KIND_FILE, MAX_TRANSFER, OpenRequest,
    PathRequest, ReadRequest, STORE_BYTES, STORE_NODES, StreamRequest, TRUNCATE, UsageReply,
    WriteRequest,
};
use abi::stream::{READ_END, StreamTableReply, WRITE_END};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::file::{Files, FsError};
use userlib::pipe::pipe;

use super::pipe::{counted, pattern, read_exactly, registers, table};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;

fn files() -> Result<Files, Failed> {
    Files::connect().map_err(|e| Failed(format!("open /tmp: {}", e.name())))
}

fn fail(what: &str, e: FsError) -> Failed {
    Failed(format!("{what}: {}", e.name()))
}

const fn refused(what: &'static str, error: FileError) -> Expect {
    Expect::registers(what, u32::MAX as u64, error as u64, 0, 0)
}

/// What must not move when a request is refused.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    usage: UsageReply,
    streams: StreamTableReply,
}

fn snapshot(context: &mut Context, files: &Files) -> Result<Snapshot, Failed> {
    context.settle();
    Ok(Snapshot {
        usage: files.usage().map_err(|e| fail("USAGE", e))?,
        streams: table()?,
    })
}

/// `call`'s refusal, observed, with nothing changed.
fn refusal<T>(
    context: &mut Context,
    files: &Files,
    call: impl FnOnce(&Files) -> Result<T, FsError>,
) -> Outcome {
    let before = snapshot(context, files)?;
    let outcome = call(files);
    let after = snapshot(context, files)?;
    if after != before {
        context.fail(format!(
            "the refusal changed something: before {before:?}, after {after:?}"
        ));
    }
    Ok(context.observe(registers(&outcome, |_| 0)))
}

/// The whole file at `path`.
fn contents(files: &Files, path: &str) -> Result<Vec<u8>, Failed> {
    let mut file = files.open(path, 0).map_err(|e| fail("OPEN", e))?;
    let mut out = Vec::new();
    let mut piece = [0u8; 1024];
    loop {
        let n = file.read(&mut piece).map_err(|e| fail("READ", e))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&piece[..n]);
    }
}

/// Makes the file at `path` holding `bytes`.
fn make(files: &Files, path: &str, bytes: &[u8]) -> Result<(), Failed> {
    let mut file = files
        .open(path, CREATE | TRUNCATE)
        .map_err(|e| fail("OPEN", e))?;
    file.write_all(bytes).map_err(|e| fail("WRITE", e))
}

fn remove(files: &Files, path: &str) {
    let _ = files.unlink(path);
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-RAMFS-001",
        rule: "OPEN with CREATE makes a file under /tmp; WRITE at an offset and READ at one give its bytes back; STAT names a file of that size; USAGE counts its bytes and node",
        section: "7a.6",
        decisions: &["D79"],
        expect: counted("READ of the whole file", 11),
        run: |context| {
            let files = files()?;
            let before = files.usage().map_err(|e| fail("USAGE", e))?;
            let mut file = files
                .open("/tmp/r001", CREATE | EXCLUSIVE)
                .map_err(|e| fail("OPEN", e))?;
            file.write_all(b"hello world")
                .map_err(|e| fail("WRITE", e))?;
            file.seek(6);
            file.write_all(b"WORLD").map_err(|e| fail("WRITE", e))?;
            file.seek(0);
            let mut out = [0u8; 64];
            let read = file.read(&mut out);
            context.check(
                out[..11] == *b"hello WORLD",
                "the bytes read are not the bytes written",
            );
            let stat = files.stat("/tmp/r001").map_err(|e| fail("STAT", e))?;
            context.check(
                stat.kind == KIND_FILE && stat.size == 11 && stat.id == file.id(),
                "STAT does not say a file of 11 bytes with OPEN's id",
            );
            let during = files.usage().map_err(|e| fail("USAGE", e))?;
            context.check(
                during.bytes == before.bytes + 11 && during.nodes == before.nodes + 1,
                "USAGE did not count 11 bytes and one node",
            );
            remove(&files, "/tmp/r001");
            let after = files.usage().map_err(|e| fail("USAGE", e))?;
            context.check(after == before, "UNLINK did not give the bytes back");
            Ok(context.observe(registers(&read, |n| *n as u64)))
        },
    },
    Case {
        id: "MSG-RAMFS-002",
        rule: "OPEN without CREATE of a missing file is FILE_NOT_FOUND, and changes nothing",
        section: "7a.6",
        decisions: &[],
        expect: refused("OPEN", FileError::NotFound),
        run: |context| {
            let files = files()?;
            refusal(context, &files, |files| {
                files.open("/tmp/r002-missing", TRUNCATE).map(drop)
            })
        },
    },
    Case {
        id: "MSG-RAMFS-003",
        rule: "a path that is not absolute, has an empty, . or .. component, a trailing /, a name over MAX_NAME or is not UTF-8 is FILE_BAD_PATH for every call, changing nothing",
        section: "7a.6",
        decisions: &[],
        expect: refused("the last bad path's MKDIR", FileError::BadPath),
        run: |context| {
            let files = files()?;
            let long = format!("/{}", "n".repeat(abi::file::MAX_NAME + 1));
            let bad: [&[u8]; 6] = [b"a", b"/a/", b"//a", b"/./a", b"/a/..", b"/\xff"];
            let bad_path = FileError::BadPath as u32;
            for path in bad.iter().copied().chain([long.as_bytes()]) {
                let client = files.client();
                let length = path.len() as u32;
                let answers = [
                    client
                        .open(OpenRequest::new(CREATE, length), path)
                        .map(drop),
                    client.stat(PathRequest::new(length), path).map(drop),
                    client.unlink(PathRequest::new(length), path).map(drop),
                    client.rmdir(PathRequest::new(length), path).map(drop),
                ];
                context.check(
                    answers
                        .iter()
                        .all(|a| a.is_err_and(|e| e.errno() == bad_path)),
                    "a bad path was not FILE_BAD_PATH for OPEN, STAT, UNLINK or RMDIR",
                );
            }
            refusal(context, &files, |files| {
                let path = long.as_bytes();
                files
                    .client()
                    .mkdir(PathRequest::new(path.len() as u32), path)
                    .map(drop)
                    .map_err(FsError::File)
            })
        },
    },
    Case {
        id: "MSG-RAMFS-004",
        rule: "a WRITE at an offset past the file's end is FILE_BAD_OFFSET (no holes) and writes nothing",
        section: "7a.6",
        decisions: &["D79"],
        expect: refused("WRITE past the end", FileError::BadOffset),
        run: |context| {
            let files = files()?;
            make(&files, "/tmp/r004", b"abc")?;
            let id = files
                .open("/tmp/r004", 0)
                .map_err(|e| fail("OPEN", e))?
                .id();
            let outcome = refusal(context, &files, |files| {
                files
                    .client()
                    .write(WriteRequest::new(id, 4, 0), b"x")
                    .map(drop)
                    .map_err(FsError::File)
            });
            context.check(
                contents(&files, "/tmp/r004")? == b"abc",
                "the refused WRITE changed the file",
            );
            remove(&files, "/tmp/r004");
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-005",
        rule: "the id of an unlinked file is FILE_STALE for READ, WRITE and TRUNCATE, even once its node holds a new file",
        section: "7a.6",
        decisions: &["D79"],
        expect: refused("READ through the old id", FileError::Stale),
        run: |context| {
            let files = files()?;
            make(&files, "/tmp/r005a", b"old")?;
            let old = files
                .open("/tmp/r005a", 0)
                .map_err(|e| fail("OPEN", e))?
                .id();
            files.unlink("/tmp/r005a").map_err(|e| fail("UNLINK", e))?;
            make(&files, "/tmp/r005b", b"new")?;
            let client = files.client();
            let stale = FileError::Stale as u32;
            context.check(
                client
                    .write(WriteRequest::new(old, 0, 0), b"x")
                    .is_err_and(|e| e.errno() == stale)
                    && client
                        .truncate(abi::file::TruncateRequest::new(old, 0))
                        .is_err_and(|e| e.errno() == stale),
                "WRITE or TRUNCATE through a stale id was not FILE_STALE",
            );
            let outcome = refusal(context, &files, |files| {
                files
                    .client()
                    .read(ReadRequest::new(old, 0, 16))
                    .map(drop)
                    .map_err(FsError::File)
            });
            context.check(
                contents(&files, "/tmp/r005b")? == b"new",
                "the new file changed",
            );
            remove(&files, "/tmp/r005b");
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-006",
        rule: "the files together hold at most STORE_BYTES: the WRITE that would pass it is FILE_NO_SPACE and writes none of its bytes, and a TRUNCATE that would is refused the same way",
        section: "7a.6",
        decisions: &["D81"],
        expect: refused("the WRITE past the budget", FileError::NoSpace),
        run: |context| {
            let files = files()?;
            let used = files.usage().map_err(|e| fail("USAGE", e))?.bytes;
            let room = (STORE_BYTES - used) as usize;
            let mut file = files
                .open("/tmp/r006", CREATE | TRUNCATE)
                .map_err(|e| fail("OPEN", e))?;
            // Fill to one byte short of the budget.
            let piece = [0x5Au8; MAX_TRANSFER];
            let mut left = room - 1;
            while left > 0 {
                let n = left.min(MAX_TRANSFER);
                file.write_all(&piece[..n]).map_err(|e| fail("WRITE", e))?;
                left -= n;
            }
            let id = file.id();
            let size = (room - 1) as u64;
            context.check(
                files
                    .client()
                    .truncate(abi::file::TruncateRequest::new(id, size + 2))
                    .is_err_and(|e| e.errno() == FileError::NoSpace as u32),
                "a TRUNCATE past the budget was not FILE_NO_SPACE",
            );
            let outcome = refusal(context, &files, |files| {
                files
                    .client()
                    .write(WriteRequest::new(id, size, 0), b"ab")
                    .map(drop)
                    .map_err(FsError::File)
            });
            let last = files
                .client()
                .write(WriteRequest::new(id, size, 0), b"a")
                .map(|reply| reply.header.size);
            context.check(
                last == Ok(room as u64),
                "the last byte of the budget could not be written",
            );
            remove(&files, "/tmp/r006");
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-007",
        rule: "the store holds at most STORE_NODES files and directories (the root included): the OPEN with CREATE past it is FILE_TOO_MANY_NODES, changing nothing",
        section: "7a.6",
        decisions: &["D81"],
        expect: refused("the OPEN past the limit", FileError::TooManyNodes),
        run: |context| {
            let files = files()?;
            files.mkdir("/tmp/r007").map_err(|e| fail("MKDIR", e))?;
            let nodes = files.usage().map_err(|e| fail("USAGE", e))?.nodes;
            let mut made = Vec::new();
            for i in 0..STORE_NODES - nodes {
                let path = format!("/tmp/r007/f{i}");
                files.open(&path, CREATE).map_err(|e| fail("OPEN", e))?;
                made.push(path);
            }
            let outcome = refusal(context, &files, |files| {
                files.open("/tmp/r007/one-more", CREATE).map(drop)
            });
            context.check(
                files
                    .mkdir("/tmp/r007/dir")
                    .is_err_and(|e| e.errno() == FileError::TooManyNodes as u32),
                "a MKDIR past the limit was not FILE_TOO_MANY_NODES",
            );
            for path in &made {
                remove(&files, path);
            }
            let _ = files.rmdir("/tmp/r007");
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-008",
        rule: "LIST gives a directory's entries in name order with their kinds and sizes; RMDIR of a directory with entries is FILE_NOT_EMPTY, of the root FILE_ROOT_DIRECTORY, of a file FILE_NOT_DIRECTORY; MKDIR of a name taken is FILE_EXISTS",
        section: "7a.6",
        decisions: &[],
        expect: refused("RMDIR of a directory with entries", FileError::NotEmpty),
        run: |context| {
            let files = files()?;
            files.mkdir("/tmp/r008").map_err(|e| fail("MKDIR", e))?;
            files.mkdir("/tmp/r008/sub").map_err(|e| fail("MKDIR", e))?;
            make(&files, "/tmp/r008/b", b"12345")?;
            make(&files, "/tmp/r008/a", b"")?;
            let listed: Vec<(String, u32, u64)> = files
                .list("/tmp/r008")
                .map_err(|e| fail("LIST", e))?
                .into_iter()
                .map(|e| (e.name, e.kind, e.size))
                .collect();
            context.check(
                listed
                    == [
                        (String::from("a"), KIND_FILE, 0),
                        (String::from("b"), KIND_FILE, 5),
                        (String::from("sub"), KIND_DIRECTORY, 0),
                    ],
                "LIST did not give a, b, sub with their kinds and sizes",
            );
            let errno = |r: Result<(), FsError>| r.err().map(|e| e.errno());
            context.check(
                errno(files.rmdir("/tmp")) == Some(FileError::RootDirectory as u32)
                    && errno(files.rmdir("/tmp/r008/b")) == Some(FileError::NotDirectory as u32)
                    && errno(files.mkdir("/tmp/r008/sub")) == Some(FileError::Exists as u32),
                "RMDIR of the root or a file, or MKDIR of a taken name, was not refused as documented",
            );
            let outcome = refusal(context, &files, |files| files.rmdir("/tmp/r008"));
            remove(&files, "/tmp/r008/a");
            remove(&files, "/tmp/r008/b");
            let _ = files.rmdir("/tmp/r008/sub");
            context.check(
                files.rmdir("/tmp/r008").is_ok(),
                "RMDIR of the emptied directory failed",
            );
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-009",
        rule: "OPEN and UNLINK of a directory are FILE_IS_DIRECTORY; a path through a file is FILE_NOT_DIRECTORY; a missing directory on the way is FILE_NOT_FOUND",
        section: "7a.6",
        decisions: &[],
        expect: refused("UNLINK of a directory", FileError::IsDirectory),
        run: |context| {
            let files = files()?;
            files.mkdir("/tmp/r009").map_err(|e| fail("MKDIR", e))?;
            make(&files, "/tmp/r009/f", b"x")?;
            let errno = |r: Result<(), FsError>| r.err().map(|e| e.errno());
            context.check(
                errno(files.open("/tmp/r009", CREATE).map(drop))
                    == Some(FileError::IsDirectory as u32)
                    && errno(files.open("/tmp/r009/f/g", CREATE).map(drop))
                        == Some(FileError::NotDirectory as u32)
                    && errno(files.open("/tmp/r009/none/g", CREATE).map(drop))
                        == Some(FileError::NotFound as u32),
                "OPEN of a directory, through a file, or through a missing directory was not refused as documented",
            );
            let outcome = refusal(context, &files, |files| files.unlink("/tmp/r009"));
            remove(&files, "/tmp/r009/f");
            let _ = files.rmdir("/tmp/r009");
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-010",
        rule: "malformed requests are FILE_BAD_REQUEST: an undefined OPEN flag, EXCLUSIVE without CREATE, a path length that does not match the bytes, a READ over MAX_TRANSFER, a WRITE flag other than APPEND, a reserved field set",
        section: "7a.6",
        decisions: &[],
        expect: refused("READ over MAX_TRANSFER", FileError::BadRequest),
        run: |context| {
            let files = files()?;
            make(&files, "/tmp/r010", b"abc")?;
            let id = files
                .open("/tmp/r010", 0)
                .map_err(|e| fail("OPEN", e))?
                .id();
            let client = files.client();
            let bad = FileError::BadRequest as u32;
            let path = b"/r010";
            let answers = [
                client.open(OpenRequest::new(1 << 9, 5), path).map(drop),
                client.open(OpenRequest::new(EXCLUSIVE, 5), path).map(drop),
                client.open(OpenRequest::new(0, 4), path).map(drop),
                client.write(WriteRequest::new(id, 0, 2), b"x").map(drop),
                client
                    .stat(
                        PathRequest {
                            path_length: 5,
                            reserved: 1,
                        },
                        path,
                    )
                    .map(drop),
            ];
            context.check(
                answers.iter().all(|a| a.is_err_and(|e| e.errno() == bad)),
                "a malformed request was not FILE_BAD_REQUEST",
            );
            let outcome = refusal(context, &files, |files| {
                files
                    .client()
                    .read(ReadRequest::new(id, 0, MAX_TRANSFER as u32 + 1))
                    .map(drop)
                    .map_err(FsError::File)
            });
            context.check(
                contents(&files, "/tmp/r010")? == b"abc",
                "a refused request changed the file",
            );
            remove(&files, "/tmp/r010");
            outcome
        },
    },
    Case {
        id: "MSG-RAMFS-011",
        rule: "STREAM through a read end granted to the server writes the pipe's bytes into the file; once the stream's done event is signalled, after the last write end closed, the file holds every byte (TRUNCATE empties it first, APPEND adds at its end)",
        section: "7a.6",
        decisions: &["D80"],
        expect: counted("the file's size after both streams", 9000),
        run: |context| {
            let files = files()?;
            make(&files, "/tmp/r011", b"old contents")?;
            let first = pattern(1, 6000);
            let (writer, done) = files
                .write_stream("/tmp/r011", CREATE | TRUNCATE)
                .map_err(|e| fail("STREAM", e))?;
            writer
                .write_all(&first)
                .map_err(|e| fail("pipe write", e.into()))?;
            drop(writer);
            done.wait()?;
            context.check(
                contents(&files, "/tmp/r011")? == first,
                "the file does not hold exactly the stream's bytes",
            );
            let second = pattern(7, 3000);
            let (writer, done) = files
                .write_stream("/tmp/r011", APPEND)
                .map_err(|e| fail("STREAM", e))?;
            writer
                .write_all(&second)
                .map_err(|e| fail("pipe write", e.into()))?;
            drop(writer);
            done.wait()?;
            let all = contents(&files, "/tmp/r011")?;
            context.check(
                all[..6000] == first[..] && all[6000..] == second[..],
                "APPEND did not add the second stream at the end",
            );
            let size = files.stat("/tmp/r011").map(|s| s.size);
            context.check(
                files.usage().is_ok_and(|u| u.streams == 0),
                "a stream is still counted after its done event",
            );
            remove(&files, "/tmp/r011");
            Ok(context.observe(registers(&size, |n| *n)))
        },
    },
    Case {
        id: "MSG-RAMFS-012",
        rule: "STREAM through a write end granted to the server gives the file's bytes through the pipe, then end of file (0)",
        section: "7a.6",
        decisions: &["D80"],
        expect: counted("the read after the file's bytes", 0),
        run: |context| {
            let files = files()?;
            let bytes = pattern(3, 10_000);
            make(&files, "/tmp/r012", &bytes)?;
            let (reader, done) = files
                .read_stream("/tmp/r012")
                .map_err(|e| fail("STREAM", e))?;
            let got = read_exactly(&reader, bytes.len())?;
            context.check(got == bytes, "the pipe did not carry the file's bytes");
            let mut more = [0u8; 16];
            let end = reader.read(&mut more).map_err(|e| fail("read", e.into()));
            done.wait()?;
            remove(&files, "/tmp/r012");
            Ok(
                context.observe(registers(&end.map_err(|_| FsError::NotUnderMount), |n| {
                    *n as u64
                })),
            )
        },
    },
    Case {
        id: "MSG-RAMFS-013",
        rule: "STREAM of a pipe end not granted to the server is FILE_BAD_PIPE; a refused STREAM of a granted end (a missing file) gives the server's reference back: procman's stream table and USAGE are as before the grant",
        section: "7a.6",
        decisions: &["D80"],
        expect: refused("STREAM of an end never granted", FileError::BadPipe),
        run: |context| {
            let files = files()?;
            let pid = files.usage().map_err(|e| fail("USAGE", e))?.pid;
            let (reader, writer) = pipe().map_err(|e| fail("pipe()", e.into()))?;
            let before = snapshot(context, &files)?;
            writer
                .grant(pid)
                .map_err(|e| fail("PIPE_GRANT", e.into()))?;
            let path = b"/r013-missing";
            let missing = files.client().stream(
                StreamRequest::new(0, writer.pipe(), WRITE_END, path.len() as u32),
                path,
            );
            context.check(
                missing.is_err_and(|e| e.errno() == FileError::NotFound as u32),
                "STREAM of a missing file was not FILE_NOT_FOUND",
            );
            let after = snapshot(context, &files)?;
            context.check(
                after == before,
                "the refused STREAM kept the server's reference of the end",
            );
            let pipe_number = reader.pipe();
            let outcome = refusal(context, &files, |files| {
                files
                    .client()
                    .stream(
                        StreamRequest::new(CREATE, pipe_number, READ_END, 5),
                        b"/r013",
                    )
                    .map(drop)
                    .map_err(FsError::File)
            });
            context.check(
                files
                    .stat("/tmp/r013")
                    .is_err_and(|e| e.errno() == FileError::NotFound as u32),
                "a refused STREAM made its file",
            );
            outcome
        },
    },
];
