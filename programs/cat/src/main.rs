//! `cat`: see `programs/tools` (its logic and arguments, host-tested).
//! It reads its standard input or the files under `/tmp` its arguments
//! name and writes its standard output; it must never outlive its
//! output's readers.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

fn run(startup: userlib::Startup) -> i32 {
    tools::main("cat", startup.arguments)
}
