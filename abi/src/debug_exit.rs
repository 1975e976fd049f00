//! The QEMU `isa-debug-exit` convention through which the kernel (and, via a
//! machine-control capability, the conformance runner) reports a test verdict.
//!
//! QEMU exits with status `(value << 1) | 1` when `value` is written to the
//! device's port, so no verdict can be confused with QEMU's own status 0 or 1.

/// The I/O port of the `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const PORT: u16 = 0xf4;

/// The value written for "every check passed".
pub const SUCCESS: u32 = 0x10;

/// The value written for "something failed" (a failed check, a panic, a fatal boot error).
pub const FAILURE: u32 = 0x11;

/// The exit status of the QEMU process after `value` was written to [`PORT`].
pub const fn qemu_exit_status(value: u32) -> i32 {
    ((value << 1) | 1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_map_to_distinct_statuses_that_qemu_never_uses_itself() {
        assert_eq!(qemu_exit_status(SUCCESS), 33);
        assert_eq!(qemu_exit_status(FAILURE), 35);
        for status in [qemu_exit_status(SUCCESS), qemu_exit_status(FAILURE)] {
            assert!(status != 0 && status != 1);
        }
    }
}
