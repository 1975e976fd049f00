//! The tally of an in-guest test program: counts its checks, prints one
//! line for each (`ok   <name>` or `FAIL <name><separator><why>`), then
//! the closing `<program>: N passed, M failed`, and gives the verdict.
//!
//! `cargo xtask test` reads these lines from the serial console, so their
//! format must never change here without the xtask's matching changing
//! with it. This crate must never decide what a check checks.

#![no_std]

use core::fmt::Display;

use userlib::{kernel, println};

/// How a program's check lines look (each program keeps the form its boot
/// case matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// `<program>: ok   <name>`, `<program>: FAIL <name> -- <why>`.
    Prefixed,
    /// `ok   <name>`, `FAIL <name>: <why>`.
    Bare,
}

/// The checks a program has run so far.
#[derive(Debug)]
pub struct Tally {
    program: &'static str,
    lines: Lines,
    passed: u32,
    failed: u32,
}

impl Tally {
    /// No checks yet for `program` (the name its closing line starts with).
    pub const fn new(program: &'static str, lines: Lines) -> Self {
        Tally {
            program,
            lines,
            passed: 0,
            failed: 0,
        }
    }

    /// Counts and prints the check `name`: passed, or failed because of
    /// what the error says.
    pub fn check(&mut self, name: &str, result: Result<(), impl Display>) {
        let program = self.program;
        match result {
            Ok(()) => {
                self.passed += 1;
                match self.lines {
                    Lines::Prefixed => println!("{program}: ok   {name}"),
                    Lines::Bare => println!("ok   {name}"),
                }
            }
            Err(why) => {
                self.failed += 1;
                match self.lines {
                    Lines::Prefixed => println!("{program}: FAIL {name} -- {why}"),
                    Lines::Bare => println!("FAIL {name}: {why}"),
                }
            }
        }
    }

    /// [`Tally::check`] of a condition: `detail` says why it failed.
    pub fn expect(&mut self, name: &str, holds: bool, detail: impl Display) {
        self.check(name, if holds { Ok(()) } else { Err(detail) });
    }

    /// Counts a failure that has no check line of its own (the program
    /// could not run its checks at all).
    pub fn count_failure(&mut self) {
        self.failed += 1;
    }

    /// How many checks failed so far.
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// Prints the closing line and returns the verdict as an exit status:
    /// 0 when nothing failed, else 1 (the first process's status is the
    /// machine's verdict).
    pub fn summary(&self) -> i32 {
        println!(
            "{}: {} passed, {} failed",
            self.program, self.passed, self.failed
        );
        i32::from(self.failed != 0)
    }

    /// [`Tally::summary`], then DEBUG_EXIT with the verdict; returns the
    /// verdict only when DEBUG_EXIT was refused (no `qemu-exit` on the
    /// command line, or no machine-control capability).
    pub fn exit(&self) -> i32 {
        let verdict = self.summary();
        let error = kernel::debug_exit(verdict.unsigned_abs());
        println!(
            "{}: DEBUG_EXIT refused ({error}); boot with qemu-exit",
            self.program
        );
        verdict
    }
}
