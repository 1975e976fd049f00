//! The process manager's logic: the name namespace, the security checks
//! (asked of the compiled policy, which `image` reads in place) and the table
//! of processes it started. Everything here is plain data and decisions,
//! tested on the host; `main.rs` is the server that applies them through
//! kernel calls.
//!
//! procman owns every name and every security decision (seed 004, "IPC basic
//! model"). This library must never make a kernel call and must never trust
//! what a caller says about itself: callers are known by the cookie procman
//! gave their process.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod directories;
pub mod listing;
pub mod namespace;
pub mod policy;
pub mod portals;
pub mod processes;
pub mod signals;
pub mod sockets;
pub mod streams;
