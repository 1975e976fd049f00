//! The table: every case, one module per area (the `<AREA>` of the ID).
//! A case's ID never changes and is never reused; a new case takes the
//! next free number of its area.

pub mod kit;

mod buf;
mod cookie;
mod death;
mod devices;
mod func;
mod kcall;
mod memory;
mod order;
mod procman;
mod recv;
mod reply;
mod rrecv;
mod send;
mod size;
mod slot;
mod smo;
mod trap;

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
    ("DEV", devices::CASES),
    ("SMO", smo::CASES),
];

mod ret;

/// Every case, in run order.
pub fn all() -> impl Iterator<Item = &'static Case> {
    AREAS.iter().flat_map(|(_, cases)| cases.iter())
}
