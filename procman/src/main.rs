//! procman, the process manager: the first user process. It owns the name
//! namespace and every security decision, starts the programs the system
//! manifest names, brokers IPC objects (it makes the kernel calls and hands
//! the caller the owner reference), and learns of every process's end.
//!
//! Callers are known only by the cookie procman set on their process when it
//! started them; nothing a caller says about itself is trusted.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod server;

#[cfg(target_os = "none")]
userlib::entry!(server::main);

#[cfg(not(target_os = "none"))]
fn main() {}
