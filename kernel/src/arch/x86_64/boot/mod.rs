//! The two boot paths. Each converts what its loader provides into one
//! `BootInfo` and calls `crate::boot::kernel_main` (the only call out of
//! `arch` into the rest of the binary); nothing past that point knows which
//! path ran.
pub mod limine;
pub mod pvh;
pub mod pvh_entry;

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// The virtual range the kernel image occupies (from the linker script).
pub fn kernel_virtual_range() -> (u64, u64) {
    // Taking the address of an extern static is safe; only addresses are used.
    (
        &raw const __kernel_start as u64,
        &raw const __kernel_end as u64,
    )
}
