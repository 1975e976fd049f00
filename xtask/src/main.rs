//! `cargo xtask ...`: the one entry point for building, imaging, booting,
//! debugging, testing and fuzzing hinge on a development machine or in CI.
//!
//! It owns the host-side workflow: which cargo commands build what, where the
//! artifacts go ([`artifacts::Paths`] is the single source of every path),
//! how the Limine ISO is assembled, how QEMU is invoked and how its exit
//! status becomes a verdict. The formats it writes (boot archive, manifest,
//! `limine.conf`) belong to the `image` crate and the verdict numbers to
//! `abi`; xtask must never restate them. It must never write into the source
//! tree or into a Limine checkout: everything it produces lives under the
//! cargo target directory.

mod artifacts;
mod bench;
mod cli;
mod conformance;
mod deps;
mod exec;
mod fuzz;
mod gdb;
mod limine;
mod qemu;
mod serial;
mod test;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build => artifacts::Paths::locate().and_then(|paths| {
            artifacts::build(&paths, exec::Echo::Live)?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Image(args) => artifacts::image_command(&args),
        Command::Run(args) => qemu::run_command(&args),
        Command::Gdb(args) => gdb::gdb_command(&args),
        Command::Test(args) => test::test_command(&args),
        Command::Bench(args) => bench::bench_command(&args),
        Command::Conformance(args) => conformance::conformance_command(&args),
        Command::Fuzz(args) => fuzz::fuzz_command(&args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}
