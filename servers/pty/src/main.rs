//! The standalone pty server: serves pairs whose masters are other
//! processes (PTY_MASTER_WRITE and PTY_MASTER_READ), for terminals that are
//! not the console and for the conformance suite. Its door is the owner
//! reference its spawner gave as descriptor 1, or else one it registers as
//! `/dev/ptmx`. The console server runs the same service in its own
//! process, its COM1 being the master of its first pair.
//!
//! It must never exit while its door is served: its death is every pair's
//! hang-up (the slaves read end of file, their writes fail).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use userlib::{Event, Startup, println, procman};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The security type of the pty door (its number in the manifest's `types`).
const SECURITY_TYPE: u32 = pty::service::PTY_SECURITY_TYPE;
/// Threads serving the door: one may wait for room in a slave's input
/// while the others answer.
const DOOR_THREADS: usize = 3;

fn run(mut startup: Startup) -> i32 {
    let service = pty::service::Service::new();
    let owner = match startup.take_descriptor(1) {
        Some(owner) => owner,
        None => match procman::create_object(Some("/dev/ptmx"), false, SECURITY_TYPE) {
            // The client reference is not needed: masters open the name.
            Ok(object) => object.owner,
            Err(error) => {
                println!("pty: cannot register /dev/ptmx: {error}");
                return 1;
            }
        },
    };
    if let Err(error) = pty::service::serve(&service, owner, DOOR_THREADS) {
        println!("pty: cannot start a thread: {error}");
        return 1;
    }
    println!("pty: serving");
    // The door threads serve for ever; this thread waits on an event
    // nobody signals.
    match Event::create().and_then(|idle| idle.wait()) {
        Ok(_) | Err(_) => 1,
    }
}
