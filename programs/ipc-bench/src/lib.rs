//! What the guest bench (`src/main.rs`) and `cargo xtask bench` share: the
//! kernel command-line word that sets the iteration count, the shape of
//! the lines the bench prints, and the percentiles both sides compute (the
//! xtask uses the same ones for its Linux baselines). Plain `no_std` code,
//! tested on the host.
//!
//! A row line, one per measured row:
//!
//! ```text
//! bench: name=roundtrip-64 payload=64 descriptors=0 iterations=10000 median=M p10=A p90=B
//! ```
//!
//! then `bench: done` (or `bench: error REASON` on a failure).
//!
//! With [`SCALING_KEY`] on the command line the bench measures instead N
//! independent client/server pairs at once (N = 1, 2, 4, as many as there
//! are CPUs), one line per pair and the TSC's rate:
//!
//! ```text
//! bench: scaling pairs=N pair=I cpu=C round-trips=K ticks=T
//! bench: tsc ticks-per-second=F
//! ```
#![no_std]

/// The kernel command-line word `bench-iterations=N`: the first process
/// gets the kernel command line as its argument bytes.
pub const ITERATIONS_KEY: &str = "bench-iterations";

/// Measured calls per row without [`ITERATIONS_KEY`].
pub const DEFAULT_ITERATIONS: usize = 10_000;

/// The most measured calls per row (the samples of a row stay in memory).
pub const MAX_ITERATIONS: usize = 1_000_000;

/// Unmeasured calls before each row's measured ones.
pub const WARM_UP: usize = 1_000;

/// What every line of the bench starts with.
pub const LINE_PREFIX: &str = "bench: ";

/// The last line of a run that measured every row (after [`LINE_PREFIX`]).
pub const DONE: &str = "done";

/// The start of the line that reports a failure (after [`LINE_PREFIX`]).
pub const ERROR: &str = "error";

/// Why the iteration count on the command line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadIterations;

impl core::fmt::Display for BadIterations {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{ITERATIONS_KEY} must be a whole number from 1 to {MAX_ITERATIONS}"
        )
    }
}

/// The iteration count a kernel command line asks for (the last
/// `bench-iterations=N` word), [`DEFAULT_ITERATIONS`] without one.
pub fn iterations(command_line: &str) -> Result<usize, BadIterations> {
    match image::cmdline::value(command_line, ITERATIONS_KEY) {
        None => Ok(DEFAULT_ITERATIONS),
        Some(text) => match text.parse::<usize>() {
            Ok(count) if (1..=MAX_ITERATIONS).contains(&count) => Ok(count),
            _ => Err(BadIterations),
        },
    }
}

/// One measured row, displayed as its line (with [`LINE_PREFIX`]): the
/// guest bench and the Linux ping-pong VM print rows through this, and
/// `cargo xtask bench` reads them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowLine<'a> {
    pub name: &'a str,
    pub payload: u32,
    pub descriptors: u32,
    pub iterations: usize,
    pub stats: Percentiles,
}

impl core::fmt::Display for RowLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{LINE_PREFIX}name={} payload={} descriptors={} iterations={} median={} p10={} p90={}",
            self.name,
            self.payload,
            self.descriptors,
            self.iterations,
            self.stats.median,
            self.stats.p10,
            self.stats.p90
        )
    }
}

/// Nearest-rank percentiles of one row's samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentiles {
    pub median: u64,
    pub p10: u64,
    pub p90: u64,
}

impl Percentiles {
    /// The percentiles of `sorted` (ascending); zeros if it is empty. The
    /// p-th percentile is the smallest sample with at least p% of the
    /// samples at or below it.
    pub fn of_sorted(sorted: &[u64]) -> Self {
        let rank = |percent: usize| {
            let index = (percent * sorted.len()).div_ceil(100).saturating_sub(1);
            sorted.get(index).copied().unwrap_or(0)
        };
        Percentiles {
            median: rank(50),
            p10: rank(10),
            p90: rank(90),
        }
    }
}

/// The kernel command-line word that makes the bench measure N pairs at
/// once (`cargo xtask bench --scaling`) instead of its rows.
pub const SCALING_KEY: &str = "bench-scaling";

/// The pair counts of a scaling run (those with more pairs than CPUs are
/// left out).
pub const PAIR_COUNTS: [usize; 3] = [1, 2, 4];

/// The message size of a scaling run's round trips.
pub const SCALING_PAYLOAD: u16 = 64;

/// One pair of a scaling run: `round_trips` 64-byte round trips by a
/// client pinned to CPU `cpu`, in `ticks` of the TSC, while `pairs` pairs
/// ran at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairLine {
    pub pairs: usize,
    pub pair: usize,
    pub cpu: u32,
    pub round_trips: usize,
    pub ticks: u64,
}

impl core::fmt::Display for PairLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{LINE_PREFIX}scaling pairs={} pair={} cpu={} round-trips={} ticks={}",
            self.pairs, self.pair, self.cpu, self.round_trips, self.ticks
        )
    }
}

impl PairLine {
    /// The line `text` (without [`LINE_PREFIX`]) if it is a pair line.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.strip_prefix("scaling ")?.split(' ');
        let mut field = |key: &str| -> Option<u64> {
            words
                .next()?
                .strip_prefix(key)?
                .strip_prefix('=')?
                .parse()
                .ok()
        };
        Some(PairLine {
            pairs: usize::try_from(field("pairs")?).ok()?,
            pair: usize::try_from(field("pair")?).ok()?,
            cpu: u32::try_from(field("cpu")?).ok()?,
            round_trips: usize::try_from(field("round-trips")?).ok()?,
            ticks: field("ticks")?,
        })
    }
}

/// The TSC's ticks per second as the guest measured them against the
/// kernel's clock (`bench: tsc ticks-per-second=F`).
pub const TSC_RATE_KEY: &str = "tsc ticks-per-second=";

/// The argument that makes `ipc-bench-server` the pager of the
/// `pager-fault` row.
pub const PAGER_ARGUMENT: &[u8] = b"pager";

/// The bytes of each page the bench pager supplies (the rest is zero).
pub const PAGER_PATTERN_BYTES: usize = 64;

/// Byte `index` of the page at `offset` of the special object `cookie`, as
/// the bench pager computes it and ipc-bench checks it.
pub const fn pager_pattern(cookie: u64, offset: u64, index: usize) -> u8 {
    (cookie as u8)
        .wrapping_mul(13)
        .wrapping_add((offset >> 12) as u8)
        .wrapping_add((index as u8).wrapping_mul(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::format;

    #[test]
    fn a_row_line_is_the_documented_format() {
        let line = RowLine {
            name: "roundtrip-64",
            payload: 64,
            descriptors: 0,
            iterations: 10_000,
            stats: Percentiles {
                median: 5176,
                p10: 5100,
                p90: 5200,
            },
        };
        assert_eq!(
            format!("{line}"),
            "bench: name=roundtrip-64 payload=64 descriptors=0 iterations=10000 median=5176 p10=5100 p90=5200"
        );
    }

    #[test]
    fn the_iteration_count_comes_from_the_command_line() {
        assert_eq!(
            iterations("init=ipc-bench qemu-exit"),
            Ok(DEFAULT_ITERATIONS)
        );
        assert_eq!(iterations("bench-iterations=500 qemu-exit"), Ok(500));
        assert_eq!(
            iterations("bench-iterations=5 bench-iterations=7"),
            Ok(7),
            "the last word wins"
        );
        assert_eq!(iterations("bench-iterations=0"), Err(BadIterations));
        assert_eq!(iterations("bench-iterations=many"), Err(BadIterations));
        assert_eq!(iterations("bench-iterations=1000001"), Err(BadIterations));
        assert_eq!(iterations("xbench-iterations=3"), Ok(DEFAULT_ITERATIONS));
    }

    #[test]
    fn a_pair_line_reads_back() {
        let line = PairLine {
            pairs: 4,
            pair: 2,
            cpu: 2,
            round_trips: 10_000,
            ticks: 123_456_789,
        };
        let text = format!("{line}");
        assert_eq!(
            text,
            "bench: scaling pairs=4 pair=2 cpu=2 round-trips=10000 ticks=123456789"
        );
        assert_eq!(PairLine::parse(&text[LINE_PREFIX.len()..]), Some(line));
        assert_eq!(PairLine::parse("scaling pairs=4 pair=2"), None);
        assert_eq!(PairLine::parse("name=trap-null payload=0"), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: [u64; 100] = core::array::from_fn(|index| index as u64 + 1);
        assert_eq!(
            Percentiles::of_sorted(&samples),
            Percentiles {
                median: 50,
                p10: 10,
                p90: 90
            }
        );
        assert_eq!(
            Percentiles::of_sorted(&[7]),
            Percentiles {
                median: 7,
                p10: 7,
                p90: 7
            }
        );
        assert_eq!(Percentiles::of_sorted(&[]).median, 0);
        let even = [1, 2, 3, 4];
        assert_eq!(Percentiles::of_sorted(&even).median, 2);
    }
}
