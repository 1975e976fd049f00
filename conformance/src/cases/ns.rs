//! MSG-NS: procman's namespace as a person looks at it, and each
//! process's working directory (ABI.md §7a.8, decisions D93, D95, D96):
//! NAME_LIST's kinds and owners (doors, directories, the `/tmp` mount,
//! sockets), its paging, its refusals changing nothing; CHDIR and GETCWD,
//! the directory a child inherits at SPAWN, and a refused CHDIR changing
//! nothing.

use abi::Descriptor;
use abi::TrapArgs;
use abi::namespace::{
    ENTRY_CONNECTED, KIND_DIRECTORY, KIND_DOOR, KIND_MOUNT, KIND_SOCKET, NAME_LIST, NameListEntry,
    NameListReply, NameListRequest,
};
use abi::procman::{NameRequest, ProcmanError};
use abi::stream::{STDERR, StdStream};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::client::CallError;
use userlib::pipe::pipe;
use userlib::procman::{self, PROCMAN};
use userlib::socket::Socket;
use userlib::stream::StreamError;

use zerocopy::{FromBytes, IntoBytes};

use super::kit;
use super::pipe::{fail, ok, read_all, refused, snapshot, unchanged, unit};
use crate::case::Case;
use crate::context::Failed;
use crate::expect::Expect;

/// The security type `test` (the manifest's third), which the runner's
/// domain may create.
const TEST_TYPE: u32 = 3;

fn listing(directory: &str) -> Result<Vec<NameListEntry>, Failed> {
    procman::name_list(directory).map_err(|e| Failed(format!("NAME_LIST {directory}: {e}")))
}

fn find<'a>(entries: &'a [NameListEntry], name: &str) -> Option<&'a NameListEntry> {
    entries.iter().find(|e| e.name() == name.as_bytes())
}

fn text(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

/// The runner's own process id (procman's, which PROCESS_ID gives).
fn own_pid() -> Result<u32, Failed> {
    Ok(userlib::kernel::process_id()? as u32)
}

fn call(outcome: Result<(), CallError>) -> Result<(), StreamError> {
    outcome.map_err(StreamError::Call)
}

/// A raw NAME_LIST (its reply dropped): the refusal, if any.
fn raw_list(skip: u32, header_length: u32, directory: &[u8]) -> Result<(), StreamError> {
    let mut header = NameListRequest::new(skip, directory);
    header.name_length = header_length;
    let _reply = PROCMAN.name_list(header, directory)?;
    Ok(())
}

fn getcwd() -> Result<String, Failed> {
    procman::getcwd().map_err(|e| Failed(format!("GETCWD: {e}")))
}

fn chdir(path: &str) -> Result<(), Failed> {
    procman::chdir(path).map_err(|e| Failed(format!("CHDIR {path}: {e}")))
}

/// Reads a pipe to its end.
/// Runs `program arguments` with its stdout a pipe; what it wrote and its
/// status.
pub(super) fn output_of(program: &str, arguments: &str) -> Result<(Vec<u8>, u32), Failed> {
    let (reader, writer) = pipe().map_err(|e| fail("pipe()", e))?;
    let streams = [
        StdStream::NONE,
        StdStream::pipe(writer.pipe()),
        userlib::stdio::inherit(STDERR),
    ];
    let pid = procman::spawn_with_streams(program, arguments.as_bytes(), &[], streams)
        .map_err(|e| Failed(format!("SPAWN {program}: {e}")))?;
    drop(writer);
    let bytes = read_all(&reader)?;
    let status = procman::wait(pid).map_err(|e| Failed(format!("WAIT {pid}: {e}")))?;
    Ok((bytes, status))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-NS-001",
        rule: "NAME_LIST gives each entry its kind and owner: a name the runner registered is a door it owns with its type's name and its program, a directory has no owner, /tmp is the file server's mount, and the root always shows sock",
        section: "7a.8",
        decisions: &["D93", "D96"],
        expect: ok("NAME_LIST"),
        run: |context| {
            let object = procman::create_object(Some("/test/ns/door"), false, TEST_TYPE)
                .map_err(|e| Failed(format!("CREATE_OBJECT: {e}")))?;
            let pid = own_pid()?;
            let entries = listing("/test/ns")?;
            context.check(entries.len() == 1, "/test/ns lists one entry");
            match find(&entries, "door") {
                Some(door) => {
                    context.check(door.kind == KIND_DOOR, "the name is not a door");
                    context.check(door.owner == pid, "the door's owner is not the runner");
                    context.check(door.security_type == TEST_TYPE, "the door's type");
                    context.check(text(&door.type_name) == b"test", "the type's name");
                    context.check(
                        text(&door.program) == crate::cases::PROCMAN_PROGRAM.as_bytes(),
                        "the owner's program",
                    );
                }
                None => context.fail(String::from("/test/ns lacks door")),
            }
            let root = listing("/")?;
            match find(&root, "test") {
                Some(test) => context.check(
                    test.kind == KIND_DIRECTORY && test.owner == 0,
                    "test is not an ownerless directory",
                ),
                None => context.fail(String::from("/ lacks test")),
            }
            context.check(
                find(&root, "sock").is_some_and(|s| s.kind == KIND_DIRECTORY),
                "/ lacks the sock directory",
            );
            let files = userlib::file::Files::connect()
                .map_err(|e| Failed(format!("/tmp: {}", e.name())))?;
            let server = files.usage().map_err(|e| Failed(e.name()))?.pid;
            context.check(
                find(&root, "tmp").is_some_and(|t| t.kind == KIND_MOUNT && t.owner == server),
                "/tmp is not the file server's mount",
            );
            procman::unlink("/test/ns/door").map_err(|e| Failed(format!("UNLINK: {e}")))?;
            drop(object);
            Ok(context.observe(TrapArgs::default()))
        },
    },
    Case {
        id: "MSG-NS-002",
        rule: "NAME_LIST of /sock lists each live socket by port, owned by its creator, flagged connected once it has its connector",
        section: "7a.8",
        decisions: &["D93", "D96"],
        expect: ok("NAME_LIST /sock"),
        run: |context| {
            let socket = Socket::create(7201).map_err(|e| fail("SOCKET_CREATE", e))?;
            let pid = own_pid()?;
            let before = listing("/sock")?;
            match find(&before, "7201") {
                Some(entry) => {
                    context.check(entry.kind == KIND_SOCKET, "7201 is not a socket");
                    context.check(entry.owner == pid, "the socket's owner is not its creator");
                    context.check(entry.flags & ENTRY_CONNECTED == 0, "connected already");
                }
                None => context.fail(String::from("/sock lacks 7201")),
            }
            let (out, status) = output_of("stream-child", "sock-open-send /sock/7201 x")?;
            context.check(
                status == 0,
                &format!("the connector ended with {status} {out:?}"),
            );
            let after = listing("/sock")?;
            context.check(
                find(&after, "7201").is_some_and(|e| e.flags & ENTRY_CONNECTED != 0),
                "7201 is not shown connected",
            );
            socket.close().map_err(|e| fail("SOCKET_CLOSE", e))?;
            context.check(
                find(&listing("/sock")?, "7201").is_none(),
                "a freed socket is still listed",
            );
            Ok(context.observe(TrapArgs::default()))
        },
    },
    Case {
        id: "MSG-NS-003",
        rule: "NAME_LIST pages: with a buffer that holds 3 records, a directory of 10 names gives 3 entries and more, from skip 9 the last one without more, from skip 10 none; paging through gives each name once, in order",
        section: "7a.8",
        decisions: &["D93"],
        expect: Expect::registers("the first and last pages", 3, 1, 0, 0),
        run: |context| {
            let mut objects = Vec::new();
            for i in 0..10 {
                let name = format!("/test/page/n{i:02}");
                objects.push(
                    procman::create_object(Some(&name), false, TEST_TYPE)
                        .map_err(|e| Failed(format!("CREATE_OBJECT {name}: {e}")))?,
                );
            }
            // msgRetVal and msgErrno, the reply's header, three records.
            let room = (16 + 3 * size_of::<NameListEntry>()) as u16;
            let page = |skip: u32| -> Result<(NameListReply, Vec<String>), Failed> {
                let directory = b"/test/page";
                let mut request = NameListRequest::new(skip, directory).as_bytes().to_vec();
                request.extend_from_slice(directory);
                let call = kit::send(NAME_LIST, Descriptor::NULL, &request, &[], room)?;
                if call.registers.arg0 != 0 {
                    return Err(Failed(format!(
                        "NAME_LIST from {skip}: {:?}",
                        call.registers
                    )));
                }
                let payload = call.bytes.get(8..).unwrap_or(&[]);
                let header = NameListReply::read_from_prefix(payload)
                    .map(|(h, _)| h)
                    .map_err(|_| Failed(String::from("no reply header")))?;
                let names = payload
                    .get(8..8 + header.count as usize * size_of::<NameListEntry>())
                    .unwrap_or(&[])
                    .chunks_exact(size_of::<NameListEntry>())
                    .filter_map(|record| NameListEntry::read_from_bytes(record).ok())
                    .map(|e| String::from_utf8_lossy(e.name()).into())
                    .collect();
                Ok((header, names))
            };
            let (first, _) = page(0)?;
            let (last, last_names) = page(9)?;
            let (past, _) = page(10)?;
            context.check(first.more == 1, "the first page says no more");
            context.check(last.more == 0, "the last page says more");
            context.check(
                last_names == ["n09"],
                &format!("the last page {last_names:?}"),
            );
            context.check(past.count == 0 && past.more == 0, "a skip past the end");
            let mut paged = Vec::new();
            loop {
                let (header, names) = page(paged.len() as u32)?;
                paged.extend(names);
                if header.more == 0 || header.count == 0 {
                    break;
                }
            }
            let expected: Vec<String> = (0..10).map(|i| format!("n{i:02}")).collect();
            context.check(paged == expected, &format!("paged names {paged:?}"));
            let whole: Vec<String> = listing("/test/page")?
                .iter()
                .map(|e| String::from_utf8_lossy(e.name()).into())
                .collect();
            context.check(whole == expected, &format!("name_list gave {whole:?}"));
            for i in 0..10 {
                let _ = procman::unlink(&format!("/test/page/n{i:02}"));
            }
            drop(objects);
            Ok(context.observe(TrapArgs {
                arg0: u64::from(first.count),
                arg1: u64::from(last.count),
                ..TrapArgs::default()
            }))
        },
    },
    Case {
        id: "MSG-NS-004",
        rule: "NAME_LIST of a directory that does not exist is PM_NO_SUCH_NAME, a relative one PM_BAD_NAME, a length other than the bytes' PM_BAD_REQUEST; each changes nothing (procman's tables, the kernel's counters, the root's listing)",
        section: "7a.8",
        decisions: &["D93"],
        expect: refused("NAME_LIST", ProcmanError::NoSuchName),
        run: |context| {
            let root = listing("/")?;
            let before = snapshot(context)?;
            let bad_name = raw_list(0, 3, b"tmp");
            let bad_request = raw_list(0, 9, b"/tmp");
            let outcome = raw_list(0, 8, b"/nothing");
            unchanged(context, &before)?;
            context.check(listing("/")? == root, "the root's listing changed");
            context.check(
                unit(&bad_name).arg1 == ProcmanError::BadName as u64,
                &format!("a relative directory: {bad_name:?}"),
            );
            context.check(
                unit(&bad_request).arg1 == ProcmanError::BadRequest as u64,
                &format!("a wrong length: {bad_request:?}"),
            );
            Ok(context.observe(unit(&outcome)))
        },
    },
    Case {
        id: "MSG-NS-005",
        rule: "CHDIR sets the caller's working directory, GETCWD gives it back, and a child SPAWNed after starts in it (its own GETCWD); CHDIR / goes back to the root",
        section: "7a.8",
        decisions: &["D95"],
        expect: ok("the child's directory"),
        run: |context| {
            context.check(getcwd()? == "/", "the runner does not start in /");
            chdir("/tmp/ns")?;
            context.check(getcwd()? == "/tmp/ns", "GETCWD after CHDIR");
            let (out, status) = output_of("stream-child", "cwd")?;
            chdir("/")?;
            context.check(getcwd()? == "/", "CHDIR / does not go back");
            context.check(status == 0, &format!("the child ended with {status}"));
            let same = out == b"/tmp/ns";
            context.check(same, &format!("the child is in {out:?}"));
            Ok(context.observe_value(u64::from(!same)))
        },
    },
    Case {
        id: "MSG-NS-006",
        rule: "CHDIR of a relative path, a path with . or .. or an empty component, a trailing /, or over 255 bytes is PM_BAD_DIRECTORY and changes nothing (GETCWD, procman's tables, the kernel's counters)",
        section: "7a.8",
        decisions: &["D95"],
        expect: refused("CHDIR", ProcmanError::BadDirectory),
        run: |context| {
            chdir("/tmp")?;
            let long = format!("/{}", "d".repeat(255));
            let before = snapshot(context)?;
            for bad in [
                "tmp",
                "/tmp/../x",
                "/tmp/./x",
                "/tmp//x",
                "/tmp/",
                long.as_str(),
            ] {
                let outcome = call(procman::chdir(bad));
                context.check(
                    unit(&outcome).arg1 == ProcmanError::BadDirectory as u64,
                    &format!("CHDIR {bad:?}: {outcome:?}"),
                );
            }
            let outcome: Result<(), StreamError> = (|| {
                PROCMAN.chdir(NameRequest::new(b".."), b"..")?;
                Ok(())
            })();
            unchanged(context, &before)?;
            context.check(getcwd()? == "/tmp", "a refused CHDIR moved the runner");
            chdir("/")?;
            Ok(context.observe(unit(&outcome)))
        },
    },
];
