//! MSG-SHM: POSIX-style shared memory in userlib over named portals under
//! `/shm/` (ABI.md §7a.2, seed 003 "shmem"): open and create, sizing once,
//! shared and private mappings, unlink and close.
//!
//! Each case observes a wrapper's result as registers: arg0 0 (or the
//! value) for success, else -1 with arg1 the error number (procman's, or
//! INVALID_ARGUMENT for a name or flags the wrapper refuses itself).

use abi::procman::ProcmanError;
use abi::{Error, TrapArgs};
use userlib::raw::RawPages;
use userlib::shm::{
    self, MAP_PRIVATE, MAP_SHARED, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE,
    ShmError,
};

use super::portal::{PAGE, snapshot};
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::Expect;

fn result<T>(outcome: &Result<T, ShmError>) -> TrapArgs {
    match outcome {
        Ok(_) => TrapArgs::default(),
        Err(e) => TrapArgs {
            arg0: u64::from(u32::MAX),
            arg1: u64::from(e.errno()),
            arg2: 0,
            arg3: 0,
        },
    }
}

const fn ok(what: &'static str) -> Expect {
    Expect::registers(what, 0, 0, 0, 0)
}

const fn refused(what: &'static str, errno: u32) -> Expect {
    Expect::registers(what, u32::MAX as u64, errno as u64, 0, 0)
}

fn fail(what: &str, e: ShmError) -> Failed {
    Failed(alloc::format!("{what}: {e:?}"))
}

/// `shm_open(name, O_CREAT | O_RDWR)` and `ftruncate(length)`.
fn sized(name: &str, length: u64) -> Result<shm::ShmFd, Failed> {
    let fd = shm::shm_open(name, O_CREAT | O_RDWR).map_err(|e| fail("shm_open", e))?;
    shm::ftruncate(&fd, length).map_err(|e| fail("ftruncate", e))?;
    Ok(fd)
}

/// Where the cases map (fixed, far from the runner's Rust memory, so the
/// mappings can be read through [`RawPages::claim`]): slot `n` of them.
const fn slot(n: u64) -> u64 {
    0x0000_3100_0000_0000 + n * 2 * PAGE
}

/// The bytes mapped at `address` (a mapping the case made), as raw pages
/// that are not unmapped when dropped.
fn at(address: u64) -> Result<RawPages, Failed> {
    RawPages::claim(address, PAGE).map_err(|e| Failed(alloc::format!("{e}")))
}

/// Unmaps `address` when the case ends.
fn unmap_later(context: &mut Context, address: u64) {
    context.unmap_at_end(address, PAGE);
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SHM-001",
        rule: "shm_open with O_CREAT makes an unsized portal /shm/NAME; mmap before ftruncate is PM_PORTAL_UNSIZED",
        section: "7a.2",
        decisions: &["D28"],
        expect: refused("mmap", ProcmanError::PortalUnsized as u32),
        run: |context| {
            let before = snapshot(context)?;
            let fd = shm::shm_open("/m1", O_CREAT | O_RDWR).map_err(|e| fail("shm_open", e))?;
            let after = snapshot(context)?;
            context.check(
                after.table.portals == before.table.portals + 1 && fd.portal() == "/shm/m1",
                "no portal /shm/m1 appeared",
            );
            let mapped = shm::mmap(slot(1), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd);
            let _ = shm::shm_unlink("/m1");
            Ok(context.observe(result(&mapped)))
        },
    },
    Case {
        id: "MSG-SHM-002",
        rule: "after ftruncate, two MAP_SHARED mappings of the object are the same memory",
        section: "7a.2",
        decisions: &["D28"],
        expect: ok("mmap"),
        run: |context| {
            let fd = sized("/m2", PAGE)?;
            let first = shm::mmap(slot(2), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd);
            let second = shm::mmap(slot(3), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd);
            if let (Ok(a), Ok(b)) = (&first, &second) {
                unmap_later(context, *a);
                unmap_later(context, *b);
                at(*a)?.write(*a, b"shared");
                context.check(
                    at(*b)?.snapshot(*b, 6).as_deref() == Some(&b"shared"[..]),
                    "the second mapping does not see the first's write",
                );
            }
            let _ = shm::shm_unlink("/m2");
            Ok(context.observe(result(&second)))
        },
    },
    Case {
        id: "MSG-SHM-003",
        rule: "a second ftruncate is PM_PORTAL_SIZED: an object is sized once",
        section: "7a.2",
        decisions: &["D28"],
        expect: refused("ftruncate", ProcmanError::PortalSized as u32),
        run: |context| {
            let fd = sized("/m3", PAGE)?;
            let again = shm::ftruncate(&fd, 2 * PAGE);
            let _ = shm::shm_unlink("/m3");
            Ok(context.observe(result(&again)))
        },
    },
    Case {
        id: "MSG-SHM-004",
        rule: "O_CREAT | O_EXCL on an existing name is PM_NAME_EXISTS; O_CREAT alone opens it",
        section: "7a.2",
        decisions: &["D28"],
        expect: refused("shm_open", ProcmanError::NameExists as u32),
        run: |context| {
            let _fd = sized("/m4", PAGE)?;
            let opened = shm::shm_open("/m4", O_CREAT | O_RDWR);
            context.check(opened.is_ok(), "O_CREAT without O_EXCL did not open it");
            let exclusive = shm::shm_open("/m4", O_CREAT | O_EXCL | O_RDWR);
            let _ = shm::shm_unlink("/m4");
            Ok(context.observe(result(&exclusive)))
        },
    },
    Case {
        id: "MSG-SHM-005",
        rule: "shm_open without O_CREAT of a name that does not exist is PM_NO_SUCH_NAME",
        section: "7a.2",
        decisions: &["D28"],
        expect: refused("shm_open", ProcmanError::NoSuchName as u32),
        run: |context| {
            let opened = shm::shm_open("/m5-none", O_RDWR);
            Ok(context.observe(result(&opened)))
        },
    },
    Case {
        id: "MSG-SHM-006",
        rule: "MAP_PRIVATE maps a copy-on-write child: its writes stay private, the shared mapping keeps its bytes",
        section: "7a.2",
        decisions: &["D28"],
        expect: ok("mmap(MAP_PRIVATE)"),
        run: |context| {
            let fd = sized("/m6", PAGE)?;
            let shared = shm::mmap(slot(4), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd)
                .map_err(|e| fail("mmap shared", e))?;
            unmap_later(context, shared);
            at(shared)?.write(shared, b"public");
            let private = shm::mmap(slot(5), PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, &fd);
            if let Ok(private) = private {
                unmap_later(context, private);
                context.check(
                    at(private)?.snapshot(private, 6).as_deref() == Some(&b"public"[..]),
                    "the private mapping does not start with the object's bytes",
                );
                at(private)?.write(private, b"secret");
                context.check(
                    at(shared)?.snapshot(shared, 6).as_deref() == Some(&b"public"[..]),
                    "the private write reached the object",
                );
            }
            let _ = shm::shm_unlink("/m6");
            Ok(context.observe(result(&private)))
        },
    },
    Case {
        id: "MSG-SHM-007",
        rule: "shm_unlink removes the name (a later shm_open is PM_NO_SUCH_NAME) and a mapping keeps the memory",
        section: "7a.2",
        decisions: &["D24", "D28"],
        expect: refused("shm_open after shm_unlink", ProcmanError::NoSuchName as u32),
        run: |context| {
            let fd = sized("/m7", PAGE)?;
            let address = shm::mmap(slot(6), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd)
                .map_err(|e| fail("mmap", e))?;
            unmap_later(context, address);
            at(address)?.write(address, b"stays");
            shm::shm_unlink("/m7").map_err(|e| fail("shm_unlink", e))?;
            let reopened = shm::shm_open("/m7", O_RDWR);
            context.check(
                at(address)?.snapshot(address, 5).as_deref() == Some(&b"stays"[..]),
                "the mapping lost its bytes",
            );
            Ok(context.observe(result(&reopened)))
        },
    },
    Case {
        id: "MSG-SHM-008",
        rule: "a name that is not one component after '/' is refused by the wrapper with INVALID_ARGUMENT; procman's table does not change",
        section: "7a.2",
        decisions: &["D28"],
        expect: refused("shm_open", Error::InvalidArgument as u32),
        run: |context| {
            let before = snapshot(context)?;
            let opened = shm::shm_open("/a/b", O_CREAT | O_RDWR);
            let after = snapshot(context)?;
            context.check(after.table == before.table, "the table changed");
            Ok(context.observe(result(&opened)))
        },
    },
    Case {
        id: "MSG-SHM-009",
        rule: "close drops the process's capture (one capture fewer in procman's table) and its mappings stay usable",
        section: "7a.2",
        decisions: &["D28"],
        expect: ok("close"),
        run: |context| {
            let fd = sized("/m9", PAGE)?;
            let address = shm::mmap(slot(7), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd)
                .map_err(|e| fail("mmap", e))?;
            unmap_later(context, address);
            let before = snapshot(context)?;
            let closed = shm::close(fd);
            let after = snapshot(context)?;
            context.check(
                after.table.captures + 1 == before.table.captures,
                "close did not drop one capture",
            );
            at(address)?.write(address, b"still");
            context.check(
                at(address)?.snapshot(address, 5).as_deref() == Some(&b"still"[..]),
                "the mapping is not usable after close",
            );
            let _ = shm::shm_unlink("/m9");
            Ok(context.observe(result(&closed)))
        },
    },
    Case {
        id: "MSG-SHM-010",
        rule: "an O_RDONLY object cannot be mapped MAP_SHARED with PROT_WRITE: PM_PORTAL_PROT_DENIED",
        section: "7a.2",
        decisions: &["D28"],
        expect: refused("mmap", ProcmanError::PortalProtDenied as u32),
        run: |context| {
            let _creator = sized("/m10", PAGE)?;
            let fd = shm::shm_open("/m10", O_RDONLY).map_err(|e| fail("shm_open", e))?;
            let mapped = shm::mmap(slot(8), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, &fd);
            if let Ok(address) = mapped {
                unmap_later(context, address);
            }
            let _ = shm::shm_unlink("/m10");
            Ok(context.observe(result(&mapped)))
        },
    },
];
