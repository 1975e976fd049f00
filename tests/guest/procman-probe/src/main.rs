//! procman-probe: makes one process-manager request and exits with its
//! outcome, so procman-test can prove what a domain may and may not do. The
//! manifest lists this one binary under several names, one per security
//! domain (`probe-users`, `probe-servers`, ...).
//!
//! Argument: `ACTION:OPERAND`, one of `create:NAME`, `create-system:NAME`,
//! `create-type:TYPE:NAME`, `create-anonymous:TYPE`, `open:NAME`,
//! `unlink:NAME`, `spawn:PROGRAM`, `hold:NAME` (create NAME, then wait on
//! the event passed as descriptor 1 before exiting, so that procman-test can
//! see the name while the probe lives and see it vanish when it ends).
//! Exit status: 0 when the request succeeded, else the error number it got
//! (a procman error, or a kernel error), 2 for a malformed argument.
#![cfg_attr(target_os = "none", no_std, no_main)]

use userlib::{CallError, Startup, procman};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

const MALFORMED: i32 = 2;

fn status(result: Result<(), CallError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(CallError::Server(code)) => code as i32,
        Err(CallError::Kernel(error)) => error as i32,
    }
}

fn run(mut startup: Startup) -> i32 {
    let Ok(argument) = core::str::from_utf8(startup.arguments) else {
        return MALFORMED;
    };
    let Some((action, operand)) = argument.split_once(':') else {
        return MALFORMED;
    };
    let result = match action {
        "create" => procman::create_object(Some(operand), false, echo::SECURITY_TYPE).map(drop),
        "create-system" => {
            procman::create_object(Some(operand), true, echo::SECURITY_TYPE).map(drop)
        }
        "create-type" => {
            let Some((kind, name)) = operand.split_once(':') else {
                return MALFORMED;
            };
            let Ok(kind) = kind.parse() else {
                return MALFORMED;
            };
            procman::create_object(Some(name), false, kind).map(drop)
        }
        "create-anonymous" => {
            let Ok(kind) = operand.parse() else {
                return MALFORMED;
            };
            procman::create_object(None, false, kind).map(drop)
        }
        "open" => procman::open(operand).map(drop),
        "unlink" => procman::unlink(operand),
        "spawn" => procman::spawn(operand, b"", &[]).map(drop),
        "hold" => {
            let Some(release) = startup.take_descriptor(1) else {
                return MALFORMED;
            };
            match procman::create_object(Some(operand), false, echo::SECURITY_TYPE) {
                Ok(_object) => userlib::kernel::event_wait(release.descriptor())
                    .map(drop)
                    .map_err(CallError::Kernel),
                Err(error) => Err(error),
            }
        }
        _ => return MALFORMED,
    };
    status(result)
}
