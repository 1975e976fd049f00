//! The table: every case, one module per area (the `<AREA>` of the ID).
//! A case's ID never changes and is never reused; a new case takes the
//! next free number of its area.

pub mod kit;

mod buf;
mod cons;
mod cookie;
mod death;
mod devices;
mod func;
mod job;
mod kcall;
mod load;
mod memory;
mod ns;
mod order;
mod pager;
mod pipe;
mod portal;
mod procman;
mod psig;
mod pty;
mod ramfs;
mod recv;
mod reply;
mod rrecv;
mod send;
mod share;
mod shell;
mod shm;
mod sig;
mod size;
mod slot;
mod smo;
mod smp;
mod sock;
mod stdio;
mod trap;
mod upcalls;

use crate::case::Case;

/// The areas in the order the runner runs them: (area, its cases).
pub static AREAS: &[(&str, &[Case])] = &[
    ("TRAP", trap::CASES),
    ("FUNC", func::CASES),
    ("PROCMAN", procman::CASES),
    ("SIZE", size::CASES),
    ("BUF", buf::CASES),
    ("SLOT", slot::CASES),
    ("SEND", send::CASES),
    ("RECV", recv::CASES),
    ("REPLY", reply::CASES),
    ("RRECV", rrecv::CASES),
    ("RET", ret::CASES),
    ("COOKIE", cookie::CASES),
    ("DEATH", death::CASES),
    ("ORDER", order::CASES),
    ("KCALL", kcall::CASES),
    ("MEM", memory::CASES),
    ("PAGER", pager::CASES),
    ("DEV", devices::CASES),
    ("PORTAL", portal::CASES),
    ("SHARE", share::CASES),
    ("SHM", shm::CASES),
    ("SMO", smo::CASES),
    ("PIPE", pipe::CASES),
    ("SOCK", sock::CASES),
    ("STDIO", stdio::CASES),
    ("LOAD", load::CASES),
    ("CONS", cons::CASES),
    ("PTY", pty::CASES),
    ("RAMFS", ramfs::CASES),
    ("SHELL", shell::CASES),
    ("NS", ns::CASES),
    ("SMP", smp::CASES),
    ("SIG", sig::CASES),
    ("UPCALL", upcalls::CASES),
    ("PSIG", psig::CASES),
    ("JOB", job::CASES),
];

/// The areas that speak procman's protocol (portals, pipes, device
/// grants): they run in the second boot, where procman starts the runner
/// ([`PROCMAN_PROGRAM`]).
pub const PROCMAN_AREAS: &[&str] = &[
    "PORTAL", "SHARE", "SHM", "PIPE", "SOCK", "STDIO", "CONS", "PTY", "RAMFS", "SHELL", "PSIG",
    "NS", "JOB",
];

/// The runner's manifest entry when procman starts it (argument `procman`).
pub const PROCMAN_PROGRAM: &str = "conformance-portals";

/// Cases of a procman area that need the machine-control capability,
/// which only the first boot's runner holds: the kernel log's handover
/// (LOG_TAKE, LOG_READ; ABI.md §6.7), which the console server gets
/// through procman.
pub const FIRST_BOOT_CASES: &[&str] = &[
    "MSG-CONS-016",
    "MSG-CONS-017",
    "MSG-CONS-018",
    "MSG-CONS-019",
    "MSG-CONS-020",
    "MSG-CONS-021",
    "MSG-CONS-022",
    "MSG-CONS-023",
    "MSG-CONS-024",
    "MSG-CONS-025",
];

/// Whether case `id` runs under procman ([`PROCMAN_AREAS`], but for
/// [`FIRST_BOOT_CASES`]).
pub fn needs_procman(id: &str) -> bool {
    if FIRST_BOOT_CASES.contains(&id) {
        return false;
    }
    PROCMAN_AREAS.iter().any(|area| {
        id.strip_prefix("MSG-")
            .and_then(|rest| rest.strip_prefix(area))
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

mod ret;

/// Every case, in run order.
pub fn all() -> impl Iterator<Item = &'static Case> {
    AREAS.iter().flat_map(|(_, cases)| cases.iter())
}
