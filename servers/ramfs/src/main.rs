//! The RAM file server (placeholder while the store is tested).
#![cfg_attr(target_os = "none", no_std, no_main)]
#[cfg(not(target_os = "none"))]
fn main() {}
userlib::entry!(run);
fn run(_s: userlib::Startup) -> i32 { 0 }
