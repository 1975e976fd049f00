//! The RAM file server's logic: [`store::Store`], the tree of files and
//! directories with its byte and node limits, portable and host-tested
//! against a model (ABI.md §7a.6). The server (`main.rs`) runs it behind
//! `userlib::file`'s interface; nothing here talks to the kernel or
//! procman, and nothing here may panic on a request's contents.
#![no_std]

extern crate alloc;

pub mod store;
