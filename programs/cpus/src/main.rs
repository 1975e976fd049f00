//! `cpus`: see `programs/tools/src/cpus.rs` (its table, host-tested). It
//! prints each online CPU's dispatch count on its standard output and
//! changes nothing.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

fn run(startup: userlib::Startup) -> i32 {
    tools::main("cpus", startup.arguments)
}
