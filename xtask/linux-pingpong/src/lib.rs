//! Linux's IPC ping-pongs (pipe, `AF_UNIX` socketpair, futex, a null system
//! call), measured exactly the way the guest bench measures hinge's round
//! trips: RDTSC around each round trip, the same warm-up, the same
//! nearest-rank percentiles (`ipc_bench`).
//!
//! One body of code, two uses, so the two sides can never drift apart:
//! - `cargo xtask bench` runs [`baselines`] on the host (host TSC cycles);
//! - `cargo xtask bench --peer linux` builds `src/main.rs` as a static
//!   `/init`, boots Debian's Linux with it in the same QEMU, accelerator and
//!   CPU model as the guest, and reads its rows back (under
//!   `--accel tcg-icount` both sides then count instructions).
//!
//! It only measures: it never writes a file, and the forked partners make
//! nothing but system calls.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod pingpong;

pub use ipc_bench::Percentiles;

/// One measured ping-pong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
    /// `pipe-64`, `socketpair-0`, `futex-0`, `syscall-getppid`, ...
    pub name: String,
    /// Bytes each way (a pipe's smallest message is one byte).
    pub payload_bytes: u32,
    pub stats: Percentiles,
}

/// Every ping-pong, each `warm_up` rounds and then `iterations` measured,
/// with both processes pinned to one CPU.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub fn baselines(iterations: usize, warm_up: usize) -> anyhow::Result<Vec<Measured>> {
    pingpong::baselines(iterations, warm_up)
}

/// Always an error: the ping-pongs need Linux on x86_64.
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub fn baselines(_iterations: usize, _warm_up: usize) -> anyhow::Result<Vec<Measured>> {
    anyhow::bail!("the Linux ping-pongs need an x86_64 Linux host")
}
