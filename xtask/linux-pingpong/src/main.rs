//! `/init` of the Linux VM that `cargo xtask bench --peer linux` boots (a
//! static x86_64-unknown-linux-gnu build): measures every ping-pong of the
//! library, prints each row in the guest bench's line format on the
//! console, then `bench: done` (or `bench: error ...`), and ends the
//! machine with the verdict through QEMU's `isa-debug-exit` device, as
//! the hinge bench does. Run on a host (not as process 1) it prints the
//! same rows and exits with the verdict as its status.
//!
//! It must never return as process 1: Linux panics when init exits.

use anyhow::anyhow;
use ipc_bench::{DONE, ERROR, LINE_PREFIX, RowLine, WARM_UP};
use std::process::ExitCode;

fn main() -> ExitCode {
    let passed = match measure() {
        Ok(()) => {
            println!("{LINE_PREFIX}{DONE}");
            true
        }
        Err(error) => {
            println!("{LINE_PREFIX}{ERROR} {error:#}");
            false
        }
    };
    if std::process::id() == 1 {
        end_machine(passed);
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn measure() -> anyhow::Result<()> {
    // Linux hands init the words of its command line it does not know
    // itself: `key=value` ones as environment variables, the others as
    // arguments. Together they are the command line `ipc_bench` reads.
    let words: Vec<String> =
        std::env::args_os()
            .skip(1)
            .map(|word| word.to_string_lossy().into_owned())
            .chain(std::env::vars_os().map(|(key, value)| {
                format!("{}={}", key.to_string_lossy(), value.to_string_lossy())
            }))
            .collect();
    let iterations = ipc_bench::iterations(&words.join(" ")).map_err(|error| anyhow!("{error}"))?;
    for row in linux_pingpong::baselines(iterations, WARM_UP)? {
        let line = RowLine {
            name: &row.name,
            payload: row.payload_bytes,
            descriptors: 0,
            iterations,
            stats: row.stats,
        };
        println!("{line}");
    }
    Ok(())
}

/// Ends the VM: the verdict to `isa-debug-exit` (QEMU exits with it), or,
/// without that device, a power-off.
fn end_machine(passed: bool) -> ! {
    use abi::debug_exit::{FAILURE, PORT, SUCCESS};
    let value = if passed { SUCCESS } else { FAILURE };
    // SAFETY: asks for access to the debug-exit device's four ports only.
    if unsafe { libc::ioperm(PORT.into(), 4, 1) } == 0 {
        // SAFETY: the port was granted just above; writing it ends QEMU
        // and touches no memory of this process.
        unsafe {
            core::arch::asm!("out dx, eax", in("dx") PORT, in("eax") value, options(nomem, nostack));
        }
    }
    // SAFETY: powers the machine off; nothing of this process is needed after.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    loop {
        std::thread::park();
    }
}
