//! `cargo xtask fuzz`: boots `ipc-test` in its fuzz-only mode (via PVH,
//! `init=ipc-test fuzz-seed=S fuzz-traps=N fuzz-seconds=T qemu-exit`) with
//! a fresh seed each run, printed before anything else, so that a failure
//! is reproduced with `--seed`. The guest runs the two racing `ipc-fuzz`
//! processes (see `tests/guest/ipc-fuzz`) and the fuzz checks of
//! `ipc-test`; this command shows the guest's lines as they come, then
//! reads its `fuzz-result:` lines and its checks and prints one verdict:
//! the seed, the traps each process made, the violations (the first with
//! its trap number), whether the counters came back, and the time.

use crate::artifacts::{self, Paths};
use crate::cli::{Accel, FuzzArgs};
use crate::deps::{self, HostPackage};
use crate::exec::Echo;
use crate::qemu::{self, BootMedium, CapturedRun, QemuConfig, RunEnd, SerialSink, Verdict};
use anyhow::Result;
use image::cmdline;
use ipc_fuzz::{RESULT_PREFIX, SECONDS_KEY, SEED_KEY, TRAPS_KEY};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The primary's random traps when neither `--traps` nor `--seconds` is given.
pub const DEFAULT_TRAPS: u64 = ipc_fuzz::DEFAULT_TRAPS;

/// What the run is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub seed: u64,
    /// The primary's random traps (`u64::MAX`: until the time limit).
    pub traps: u64,
    /// The guest-time limit (0: none).
    pub seconds: u64,
    pub accel: Accel,
}

impl Plan {
    /// The plan of `args`, with `fresh` as the seed if none is given.
    pub fn of(args: &FuzzArgs, fresh: u64) -> Self {
        let seconds = args.seconds.unwrap_or(0);
        let traps = args.traps.unwrap_or(if seconds != 0 {
            u64::MAX
        } else {
            DEFAULT_TRAPS
        });
        Plan {
            seed: args.seed.unwrap_or(fresh),
            traps,
            seconds,
            accel: match args.accel {
                Accel::Auto => Accel::Tcg,
                other => other,
            },
        }
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> String {
        format!(
            "{}=ipc-test {SEED_KEY}={:#x} {TRAPS_KEY}={} {SECONDS_KEY}={} {}",
            cmdline::INIT_KEY,
            self.seed,
            self.traps,
            self.seconds,
            cmdline::QEMU_EXIT
        )
    }

    /// The command that runs this plan again.
    pub fn reproduce(&self) -> String {
        let mut command = format!("cargo xtask fuzz --seed {:#x}", self.seed);
        if self.traps != u64::MAX {
            command.push_str(&format!(" --traps {}", self.traps));
        }
        if self.seconds != 0 {
            command.push_str(&format!(" --seconds {}", self.seconds));
        }
        if self.accel != Accel::Tcg {
            command.push_str(&format!(" --accel {}", self.accel.name()));
        }
        command
    }

    /// How long QEMU may run before the run counts as hung: the time
    /// limit, or the traps at a pace far below the measured one (TCG:
    /// about 20,000 of the primary's traps a second with the partner
    /// racing it; this machine kind's nested KVM: about 350), plus the
    /// boot and the teardown.
    pub fn host_timeout(&self) -> Duration {
        let slowest_pace = match self.accel {
            Accel::Kvm => 100,
            _ => 4_000,
        };
        let running = if self.seconds != 0 {
            self.seconds.saturating_mul(2)
        } else {
            self.traps / slowest_pace
        };
        Duration::from_secs(running.saturating_add(300))
    }
}

/// A seed from the clock and the process id, never 0.
pub fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |time| time.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32);
    // splitmix64's finaliser.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)).max(1)
}

/// One `fuzz-result:` line of the guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessResult {
    pub role: String,
    pub traps: u64,
    pub calls: u64,
    pub violations: u64,
    pub ticks: u64,
    /// The first violation (its kind, trap number, slot and registers), or `none`.
    pub first: String,
}

/// Reads the `fuzz-result:` lines of a serial log.
pub fn parse_results(serial: &str) -> Vec<ProcessResult> {
    serial
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix(RESULT_PREFIX))
        .map(|rest| {
            let mut result = ProcessResult::default();
            let (fields, first) = rest.split_once(" first=").unwrap_or((rest, ""));
            result.first = first.to_owned();
            for (key, value) in fields
                .split_ascii_whitespace()
                .filter_map(|word| word.split_once('='))
            {
                let number = || ipc_fuzz::parse_number(value).unwrap_or(0);
                match key {
                    "role" => result.role = value.to_owned(),
                    "traps" => result.traps = number(),
                    "calls" => result.calls = number(),
                    "violations" => result.violations = number(),
                    "ticks" => result.ticks = number(),
                    _ => {}
                }
            }
            result
        })
        .collect()
}

/// What the guest's lines say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub results: Vec<ProcessResult>,
    /// `ipc-test: N passed, M failed`.
    pub checks: Option<(u64, u64)>,
    /// The checks that failed, as printed.
    pub failed_checks: Vec<String>,
    /// Whether the counters check passed.
    pub counters_back: bool,
}

/// Reads a run's serial log.
pub fn findings(serial: &str) -> Findings {
    let mut findings = Findings {
        results: parse_results(serial),
        ..Findings::default()
    };
    for line in serial.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("ipc-test: ")
            && let Some((passed, failed)) = rest.split_once(" passed, ")
            && let (Ok(passed), Some(Ok(failed))) = (
                passed.parse::<u64>(),
                failed.strip_suffix(" failed").map(str::parse::<u64>),
            )
        {
            findings.checks = Some((passed, failed));
        } else if line.starts_with("FAIL ") {
            findings.failed_checks.push(line.to_owned());
        } else if line.starts_with("ok   fuzz: COUNTERS back") {
            findings.counters_back = true;
        }
    }
    findings
}

/// Why a run failed (empty: it passed).
pub fn problems(end: &RunEnd, findings: &Findings) -> Vec<String> {
    let mut problems = Vec::new();
    match end {
        RunEnd::Exited(Verdict::Success) => {}
        RunEnd::Exited(verdict) => problems.push(verdict.describe()),
        RunEnd::TimedOut(limit) => problems.push(format!(
            "the guest did not finish within {} s: a hang (a call that never ends, a kernel that stops scheduling) or a slow host",
            limit.as_secs()
        )),
        RunEnd::Matched(line) => problems.push(format!("stopped at {line:?}")),
    }
    match findings.checks {
        Some((_, 0)) => {}
        Some((_, failed)) => problems.push(format!("{failed} fuzz checks failed")),
        None => problems.push("ipc-test never printed its closing line".to_owned()),
    }
    if findings.results.len() != 2 {
        problems.push(format!(
            "{} of the 2 fuzzer processes reported",
            findings.results.len()
        ));
    }
    for result in &findings.results {
        if result.violations != 0 {
            problems.push(format!(
                "the {} saw {} violations, the first: {}",
                result.role, result.violations, result.first
            ));
        }
    }
    if !findings.counters_back {
        problems.push("the kernel's counters did not come back (or were not checked)".to_owned());
    }
    problems
}

/// `cargo xtask fuzz`.
pub fn fuzz_command(args: &FuzzArgs) -> Result<ExitCode> {
    let plan = Plan::of(args, fresh_seed());
    let traps = if plan.traps == u64::MAX {
        "no trap limit".to_owned()
    } else {
        format!("{} traps", plan.traps)
    };
    let limit = if plan.seconds == 0 {
        String::new()
    } else {
        format!(", at most {} s of guest time", plan.seconds)
    };
    println!(
        "fuzz: seed {:#x}, {traps}{limit}, {} (reproduce: {})",
        plan.seed,
        plan.accel.name(),
        plan.reproduce()
    );
    let paths = Paths::locate()?;
    qemu::check_accel(plan.accel)?;
    deps::ensure_packages(&[HostPackage::Qemu])?;
    let manifest = artifacts::build(&paths, Echo::OnFailure)?;
    let archive = artifacts::write_boot_archive(&paths, &manifest)?;
    let config = QemuConfig {
        medium: BootMedium::Pvh {
            kernel: paths.kernel_elf(),
            archive,
            cmdline: plan.cmdline(),
            bios: qemu::fast_pvh_firmware(plan.accel),
        },
        accel: plan.accel,
        smp: 1,
        memory: "256M".to_owned(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    let started = Instant::now();
    let run: CapturedRun = qemu::run_captured(&config, None, Some(plan.host_timeout()), true)?;
    let elapsed = started.elapsed().as_secs_f64();
    let findings = findings(&run.serial);
    let problems = problems(&run.end, &findings);

    println!("fuzz: seed {:#x}", plan.seed);
    for result in &findings.results {
        println!(
            "fuzz: {}: {} traps ({} random), {} violations, {} ticks; first violation: {}",
            result.role, result.traps, result.calls, result.violations, result.ticks, result.first
        );
    }
    println!(
        "fuzz: counters back: {}; checks: {}; {elapsed:.0} s",
        if findings.counters_back { "yes" } else { "no" },
        findings
            .checks
            .map_or("none".to_owned(), |(passed, failed)| {
                format!("{passed} passed, {failed} failed")
            }),
    );
    if problems.is_empty() {
        println!("fuzz: passed (seed {:#x})", plan.seed);
        return Ok(ExitCode::SUCCESS);
    }
    for check in &findings.failed_checks {
        println!("fuzz: {check}");
    }
    for problem in &problems {
        println!("fuzz: FAIL {problem}");
    }
    if !run.stderr.trim().is_empty() {
        println!("--- qemu stderr ---\n{}", run.stderr);
    }
    println!(
        "fuzz: failed (seed {:#x}); reproduce with: {} (the seed fixes every thread's choices; \
         the timer's interleavings vary from run to run, so a race may take a few runs, or \
         --accel tcg-icount, whose timer counts instructions)",
        plan.seed,
        plan.reproduce()
    );
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seed: Option<u64>, traps: Option<u64>, seconds: Option<u64>) -> FuzzArgs {
        FuzzArgs {
            seed,
            traps,
            seconds,
            accel: Accel::Tcg,
        }
    }

    #[test]
    fn a_plan_takes_a_fresh_seed_unless_one_is_given() {
        let plan = Plan::of(&args(None, None, None), 77);
        assert_eq!(
            (plan.seed, plan.traps, plan.seconds),
            (77, DEFAULT_TRAPS, 0)
        );
        let plan = Plan::of(&args(Some(5), Some(10), None), 77);
        assert_eq!((plan.seed, plan.traps), (5, 10));
        // Only a time limit: as many traps as fit.
        let plan = Plan::of(&args(None, None, Some(60)), 1);
        assert_eq!((plan.traps, plan.seconds), (u64::MAX, 60));
        assert_ne!(fresh_seed(), 0);
    }

    #[test]
    fn the_command_line_carries_the_plan_to_ipc_test() {
        let plan = Plan::of(&args(Some(0x1f), Some(500), Some(9)), 0);
        let line = plan.cmdline();
        assert_eq!(
            ipc_fuzz::parse_command_line(&line),
            Ok(Some((0x1f, 500, 9)))
        );
        assert!(cmdline::has_word(&line, cmdline::QEMU_EXIT));
        assert_eq!(cmdline::value(&line, cmdline::INIT_KEY), Some("ipc-test"));
        assert_eq!(
            plan.reproduce(),
            "cargo xtask fuzz --seed 0x1f --traps 500 --seconds 9"
        );
    }

    #[test]
    fn the_host_timeout_follows_the_traps_or_the_time_limit() {
        let plan = Plan::of(&args(Some(1), Some(10_000_000), None), 0);
        assert_eq!(plan.host_timeout(), Duration::from_secs(2_500 + 300));
        let plan = Plan::of(&args(Some(1), None, Some(100)), 0);
        assert_eq!(plan.host_timeout(), Duration::from_secs(500));
    }

    const LOG: &str = "\
ipc-test: fuzz only: seed 0x5, 100 traps, 0 s limit (0: none)\r
fuzz-result: role=primary seed=0x5 traps=100 calls=76 violations=0 ticks=12 first=none\r
fuzz-result: role=partner seed=0x5 traps=300 calls=220 violations=2 ticks=12 first=\"rights grew\"@trap7/slot1 entry=[0x12,0x0,0x0,0x0] result=[0x3,0x3f,0x4,0x0]\r
ok   fuzz: COUNTERS back to the starting values once both fuzzers are gone\r
FAIL fuzz: rights never grew: expected none, got 2\r
ipc-test: 13 passed, 1 failed\r
";

    #[test]
    fn the_guest_lines_are_read() {
        let found = findings(LOG);
        assert_eq!(found.results.len(), 2);
        assert_eq!(found.results[0].role, "primary");
        assert_eq!(found.results[0].traps, 100);
        assert_eq!(found.results[1].violations, 2);
        assert!(found.results[1].first.starts_with("\"rights grew\"@trap7"));
        assert_eq!(found.checks, Some((13, 1)));
        assert!(found.counters_back);
        assert_eq!(found.failed_checks.len(), 1);
        let problems = problems(&RunEnd::Exited(Verdict::Success), &found);
        assert!(problems.iter().any(|p| p.contains("1 fuzz checks failed")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("partner saw 2 violations"))
        );
    }

    #[test]
    fn a_clean_run_has_no_problems_and_a_hang_has_one() {
        let clean = LOG
            .replace("violations=2", "violations=0")
            .replace("FAIL fuzz: rights never grew: expected none, got 2\r\n", "")
            .replace("13 passed, 1 failed", "14 passed, 0 failed");
        let found = findings(&clean);
        assert_eq!(
            problems(&RunEnd::Exited(Verdict::Success), &found),
            Vec::<String>::new()
        );
        let hung = problems(&RunEnd::TimedOut(Duration::from_secs(9)), &found);
        assert_eq!(hung.len(), 1);
        assert!(hung[0].contains("within 9 s"));
    }
}
