//! `cargo xtask bench --scaling`: N independent client/server pairs at
//! once (N = 1, 2, 4), each pinned to a CPU of its own, booted with four
//! CPUs under KVM or multi-threaded TCG (`ipc-bench` with `bench-scaling`,
//! see its crate documentation). Prints round trips per second per pair
//! and the scaling factor: the pairs' total rate over one pair's.
//!
//! Under tcg-icount QEMU runs one virtual CPU at a time, so there is
//! nothing to scale: the command measures under TCG instead.

use anyhow::{Result, bail};
use ipc_bench::{DONE, ERROR, LINE_PREFIX, PairLine, TSC_RATE_KEY};
use std::fmt::Write as _;

/// CPUs the scaling boot gets.
pub const CPUS: u32 = 4;

/// The scaling factor a run must reach per pair (issue 14's target).
pub const TARGET_PER_PAIR: f64 = 0.8;

/// One pair count's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// Pairs that ran at once.
    pub pairs: usize,
    /// Round trips per second of each pair, in pair order.
    pub per_pair: Vec<f64>,
    /// All pairs' rates together over the one-pair rate.
    pub factor: f64,
}

/// The pair lines and the TSC rate of a guest's serial output; an error
/// for a `bench: error` line or a run that did not finish.
pub fn parse(serial: &str) -> Result<(u64, Vec<PairLine>)> {
    let mut rate = None;
    let mut pairs = Vec::new();
    let mut done = false;
    for line in serial.lines() {
        let Some(at) = line.find(LINE_PREFIX) else {
            continue;
        };
        let text = line[at + LINE_PREFIX.len()..].trim();
        if text == DONE {
            done = true;
        } else if text.starts_with(ERROR) {
            bail!("the guest reported: {text}");
        } else if let Some(value) = text.strip_prefix(TSC_RATE_KEY) {
            rate = Some(value.parse::<u64>()?);
        } else if text.starts_with("scaling ") {
            match PairLine::parse(text) {
                Some(pair) => pairs.push(pair),
                None => bail!("malformed pair line {line:?}"),
            }
        }
    }
    if !done {
        bail!("the guest never printed \"{LINE_PREFIX}{DONE}\"");
    }
    match rate {
        Some(rate) if rate > 0 && !pairs.is_empty() => Ok((rate, pairs)),
        _ => bail!("the guest printed no TSC rate or no pair"),
    }
}

/// Each pair count's rates and factor, in the order the guest ran them.
pub fn summarize(rate: u64, lines: &[PairLine]) -> Vec<Scaling> {
    let mut counts: Vec<usize> = lines.iter().map(|l| l.pairs).collect();
    counts.dedup();
    let per_second =
        |line: &PairLine| line.round_trips as f64 * rate as f64 / line.ticks.max(1) as f64;
    let mut results: Vec<Scaling> = counts
        .into_iter()
        .map(|pairs| Scaling {
            pairs,
            per_pair: lines
                .iter()
                .filter(|l| l.pairs == pairs)
                .map(per_second)
                .collect(),
            factor: 0.0,
        })
        .collect();
    let single = results
        .iter()
        .find(|s| s.pairs == 1)
        .and_then(|s| s.per_pair.first().copied())
        .unwrap_or(0.0);
    for result in &mut results {
        let total: f64 = result.per_pair.iter().sum();
        result.factor = if single > 0.0 { total / single } else { 0.0 };
    }
    results
}

/// The table `cargo xtask bench --scaling` prints.
pub fn render(accel: &str, results: &[Scaling]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "IPC scaling under {accel} with {CPUS} CPUs: N pairs of 64-byte round trips at once, each pair on a CPU of its own"
    );
    let _ = writeln!(
        text,
        "pairs  round trips per second per pair          scaling  target"
    );
    for result in results {
        let rates: Vec<String> = result.per_pair.iter().map(|r| format!("{r:.0}")).collect();
        let target = TARGET_PER_PAIR * result.pairs as f64;
        let verdict = if result.factor >= target {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(
            text,
            "{:>5}  {:<40} {:>6.2}x  {verdict} (at least {target:.1}x)",
            result.pairs,
            rates.join(" "),
            result.factor
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pairs: usize, pair: usize, ticks: u64) -> PairLine {
        PairLine {
            pairs,
            pair,
            cpu: pair as u32,
            round_trips: 1000,
            ticks,
        }
    }

    #[test]
    fn the_factor_is_the_total_rate_over_one_pair() {
        let lines = [
            line(1, 0, 1000),
            line(2, 0, 1000),
            line(2, 1, 2000),
            line(4, 0, 4000),
            line(4, 1, 4000),
            line(4, 2, 4000),
            line(4, 3, 4000),
        ];
        let results = summarize(1000, &lines);
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].per_pair, vec![1000.0]);
        assert!((results[0].factor - 1.0).abs() < 1e-9);
        assert!((results[1].factor - 1.5).abs() < 1e-9);
        assert!((results[2].factor - 1.0).abs() < 1e-9);
        let table = render("tcg", &results);
        assert!(table.contains("1.50x  MISSED (at least 1.6x)"), "{table}");
        assert!(table.contains("1.00x  met (at least 0.8x)"), "{table}");
    }

    #[test]
    fn a_run_must_finish_with_a_rate_and_pairs() {
        let good = "x\nbench: tsc ticks-per-second=1000\nbench: scaling pairs=1 pair=0 cpu=0 round-trips=10 ticks=20\nbench: done\n";
        let (rate, lines) = parse(good).expect("a whole run");
        assert_eq!((rate, lines.len()), (1000, 1));
        assert!(parse("bench: tsc ticks-per-second=1000\n").is_err());
        assert!(parse("bench: error scaling: pair 0 of 1 failed\nbench: done\n").is_err());
        assert!(parse("bench: scaling pairs=1\nbench: done\n").is_err());
    }
}
