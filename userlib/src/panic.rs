//! The panic handler: `panic in <program>: <message> at <file>:<line>` on
//! the kernel console, then PROCESS_EXIT with [`PANIC_EXIT_CODE`].

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::kernel;
use crate::print::DebugOutput;
use crate::runtime::program_name;

/// The exit code of a process that panicked.
const PANIC_EXIT_CODE: u32 = 101;

/// Set by the first panic: a panic while reporting one (or in a second
/// thread) exits at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let mut output = DebugOutput::new();
        let _ = write!(output, "panic in {}: {}", program_name(), info.message());
        if let Some(location) = info.location() {
            let _ = write!(output, " at {}:{}", location.file(), location.line());
        }
        let _ = output.write_str("\n");
        output.flush();
    }
    kernel::process_exit(PANIC_EXIT_CODE)
}
