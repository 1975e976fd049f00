//! `yes [WORDS]`: writes WORDS (or `y`) and a line end to stdout, again and
//! again, until a write fails (a broken pipe: its reader is gone) or it is
//! ended (^C at a terminal). Each line is one write, so a reader never sees
//! half of one. It must never read anything or need any right.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use userlib::{Startup, stdio};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

fn run(startup: Startup) -> i32 {
    let words = core::str::from_utf8(startup.arguments)
        .unwrap_or("")
        .trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace());
    let mut line: Vec<u8> = if words.is_empty() {
        b"y".to_vec()
    } else {
        words.as_bytes().to_vec()
    };
    line.push(b'\n');
    loop {
        if stdio::stdout().write_all(&line).is_err() {
            return 0;
        }
    }
}
