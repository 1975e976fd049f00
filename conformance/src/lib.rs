//! The hinge ABI conformance suite: every rule of `abi/ABI.md` about the
//! message format (seed 004) as a [`Case`] with a stable ID, the section it
//! checks and the exact registers and buffer bytes it expects, plus the
//! machinery that runs the cases inside the guest.
//!
//! The crate owns:
//! - [`cases::CASES`], the table (one module per area, see `README.md`);
//! - [`expect`], the language of expectations and the judge that compares an
//!   observation with one, bit for bit;
//! - [`context`], the fixtures a case builds on (doors, events, threads of
//!   the runner, test pages, peers) and [`runner`], which runs every case on
//!   its own thread, detects a case that can never finish, prints one line
//!   per case and the closing `N passed, M failed`;
//! - [`peer`], the protocol with the `conformance-peer` program, the helper
//!   process the runner drives through messages on a control door.
//!
//! Expected values come from `abi` (numbers) and `ABI.md` (rules), never from
//! what the kernel happens to do: a case that disagrees with the kernel
//! fails, it is not weakened. The table builds on the host, where the tests
//! in `tests/` check it against `ABI.md` and `README.md`; the runner and the
//! peer only do real traps when built for `x86_64-unknown-none` (on the host
//! every trap fails with INVALID_FUNCTION, as userlib's do).
//!
//! It must never restate an ABI number (they come from `abi`), never panic in
//! the guest (a panic ends the runner and with it the run), and never depend
//! on the kernel crate.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod case;
pub mod cases;
pub mod context;
pub mod expect;
pub mod peer;
pub mod runner;

pub use case::{Case, Outcome};
pub use context::{Context, Failed};
pub use expect::{Expect, Field, Observed, Value};
