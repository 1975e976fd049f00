//! `cargo xtask conformance`: boots the ABI conformance suite
//! (`conformance/`) as the first process (`init=conformance qemu-exit`),
//! reads its one line per case from the serial console, and reports every
//! case of the table — also those the guest never reached, as failures.
//!
//! The guest runs every case; `--filter` selects which results are shown,
//! counted and decide the exit status (the kernel command line carries no
//! filter to the guest). `--json FILE` writes every case of the table with
//! its status, selected or not. `cargo xtask test` runs the same boot via
//! PVH as one of its steps, each case counting as one test.
//!
//! The suite boots twice: first the runner as the first process, for every
//! area that speaks to the kernel alone; then `init=procman
//! run=conformance-portals qemu-exit`, the same runner started by procman
//! (its argument `procman` selects the areas that speak procman's portal
//! protocol, `conformance::cases::needs_procman`). The two runs' lines are
//! read as one: their closing lines add up, and the verdict is the first
//! failing run's.
//!
//! Guest line formats (see `conformance::runner`), one case per line:
//! `ok   <ID> §<section> <rule>`, `FAIL <ID> §<section> <rule> -- <details>`,
//! then `<N> passed, <M> failed`.

use crate::artifacts::{self, Paths};
use crate::cli::{Accel, BootPath, ConformanceArgs};
use crate::deps::{self, HostPackage};
use crate::exec::Echo;
use crate::limine::{self, LimineDir};
use crate::qemu::{
    self, BootMedium, CapturedRun, IsoFirmware, QemuConfig, RunEnd, SerialSink, Verdict,
};
use ::conformance::Case;
use anyhow::{Context, Result, bail};
use image::cmdline;
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Duration;

/// The boot-archive name (and package) of the runner.
const GUEST_PROGRAM: &str = "conformance";
/// Its helper process, which must be in the archive too.
const PEER_PROGRAM: &str = ::conformance::peer::PROGRAM;
/// The runner as procman starts it, for the areas under procman.
const PROCMAN_PROGRAM: &str = ::conformance::cases::PROCMAN_PROGRAM;

/// How long a run may take before QEMU is stopped. The guest itself
/// reports a case that can never finish and moves on, so this only catches
/// a kernel that stops answering; nested KVM is much slower than TCG here.
pub fn default_timeout(accel: Accel) -> Duration {
    match accel {
        Accel::Kvm => Duration::from_secs(900),
        _ => Duration::from_secs(300),
    }
}

/// What happened to one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// The guest's details.
    Fail(String),
    /// The guest never printed the case's line; why.
    NotRun(String),
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail(_) => "fail",
            Self::NotRun(_) => "not-run",
        }
    }
}

/// The case lines and the closing line of a guest run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GuestLines {
    /// By case ID.
    pub results: BTreeMap<String, Status>,
    /// `N passed, M failed`, if printed.
    pub summary: Option<(u64, u64)>,
    /// Case IDs the guest printed that the table does not have (a stale build).
    pub unknown: Vec<String>,
}

/// Reads the guest's lines out of the serial log.
pub fn parse_guest(serial: &str, cases: &[&Case]) -> GuestLines {
    static LINE: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^(ok|FAIL)\s+(MSG-[A-Z]+-\d{3})\s(.*)$").ok());
    static SUMMARY: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^(\d+) passed, (\d+) failed$").ok());
    let mut lines = GuestLines::default();
    let (Some(line_re), Some(summary_re)) = (LINE.as_ref(), SUMMARY.as_ref()) else {
        return lines;
    };
    for line in serial.lines() {
        let line = line.trim_end();
        if let Some(captures) = line_re.captures(line) {
            let id = captures[2].to_owned();
            let status = if &captures[1] == "ok" {
                Status::Pass
            } else {
                let rest = &captures[3];
                let details = rest.split_once(" -- ").map_or(rest, |(_, details)| details);
                Status::Fail(details.to_owned())
            };
            if !cases.iter().any(|case| case.id == id) {
                lines.unknown.push(id.clone());
            }
            lines.results.insert(id, status);
        } else if let Some(captures) = summary_re.captures(line) {
            let number = |group: usize| captures[group].parse::<u64>().unwrap_or(0);
            // One closing line per boot: they add up.
            let (passed, failed) = lines.summary.unwrap_or((0, 0));
            lines.summary = Some((passed + number(1), failed + number(2)));
        }
    }
    lines
}

/// Every case of the table with its status in `run`.
pub fn statuses(
    run: &CapturedRun,
    cases: &[&'static Case],
) -> (Vec<(&'static Case, Status)>, GuestLines) {
    let lines = parse_guest(&run.serial, cases);
    let missing = match &run.end {
        RunEnd::TimedOut(limit) => format!(
            "the guest was stopped after {} s before this case ended",
            limit.as_secs()
        ),
        RunEnd::Exited(verdict) => {
            format!("the guest ended before this case: {}", verdict.describe())
        }
        RunEnd::Matched(line) => format!("the run stopped at {line:?}"),
    };
    let statuses = cases
        .iter()
        .map(|case| {
            let status = lines
                .results
                .get(case.id)
                .cloned()
                .unwrap_or_else(|| Status::NotRun(missing.clone()));
            (*case, status)
        })
        .collect();
    (statuses, lines)
}

/// The kernel command line of a conformance boot.
fn guest_cmdline() -> String {
    format!(
        "{}={GUEST_PROGRAM} {}",
        cmdline::INIT_KEY,
        cmdline::QEMU_EXIT
    )
}

/// The kernel command line of the second boot: procman first, which starts
/// the runner for the areas under procman.
fn procman_cmdline() -> String {
    format!(
        "{}={} run={PROCMAN_PROGRAM} {}",
        cmdline::INIT_KEY,
        cmdline::DEFAULT_INIT,
        cmdline::QEMU_EXIT
    )
}

/// Two runs read as one: the serial logs one after the other, the end the
/// first one's unless it succeeded.
fn merge(first: CapturedRun, second: CapturedRun) -> CapturedRun {
    let end = if first.end == RunEnd::Exited(Verdict::Success) {
        second.end
    } else {
        first.end
    };
    CapturedRun {
        session: Vec::new(),
        end,
        serial: first.serial + &second.serial,
        stderr: first.stderr + &second.stderr,
    }
}

/// Builds the kernel and the programs, writes the archive (and the ISO for
/// a Limine boot) and boots the suite; the captured run.
pub fn boot_suite(
    paths: &Paths,
    boot: BootPath,
    limine_dir: Option<&Path>,
    accel: Accel,
    smp: u32,
    timeout: Duration,
) -> Result<CapturedRun> {
    qemu::check_accel(accel)?;
    let mut packages = vec![HostPackage::Qemu];
    if boot == BootPath::Limine {
        packages.extend([HostPackage::Xorriso, HostPackage::Mtools]);
    }
    deps::ensure_packages(&packages)?;
    let manifest = artifacts::build(paths, Echo::OnFailure)?;
    for program in [GUEST_PROGRAM, PEER_PROGRAM, PROCMAN_PROGRAM] {
        if !manifest.parsed.programs.iter().any(|p| p.name == program) {
            bail!(
                "{} has no [[program]] named {program:?}",
                paths.manifest().display()
            );
        }
    }
    let archive = artifacts::write_boot_archive(paths, &manifest)?;
    let mut runs = Vec::new();
    for command_line in [guest_cmdline(), procman_cmdline()] {
        let medium = match boot {
            BootPath::Pvh => pvh_medium(paths, archive.clone(), accel, command_line),
            BootPath::Limine => {
                let dir = limine_dir.with_context(|| {
                    format!(
                        "--boot limine needs the Limine binaries: {}",
                        limine::HOW_TO_GET
                    )
                })?;
                let limine = LimineDir::open(dir)?;
                let iso = limine::build_iso(paths, &limine, &command_line)?;
                BootMedium::Iso {
                    iso,
                    firmware: IsoFirmware::SeaBios,
                }
            }
        };
        runs.push(run_suite(medium, accel, smp, timeout)?);
    }
    let second = runs.pop().context("two runs")?;
    let first = runs.pop().context("two runs")?;
    Ok(merge(first, second))
}

/// The suite booted via PVH from an archive already written.
fn pvh_medium(paths: &Paths, archive: PathBuf, accel: Accel, cmdline: String) -> BootMedium {
    BootMedium::Pvh {
        kernel: paths.kernel_elf(),
        archive,
        cmdline,
        bios: qemu::fast_pvh_firmware(accel),
    }
}

fn run_suite(medium: BootMedium, accel: Accel, smp: u32, timeout: Duration) -> Result<CapturedRun> {
    let config = QemuConfig {
        medium,
        accel,
        smp,
        memory: "256M".to_owned(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    qemu::run_captured(&config, None, Some(timeout), false)
}

/// What a run says beyond its case lines; a clean run has no problems.
fn run_problems(
    run: &CapturedRun,
    lines: &GuestLines,
    failed: usize,
    filtered: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !lines.unknown.is_empty() {
        problems.push(format!(
            "the guest printed IDs the table lacks (stale build?): {}",
            lines.unknown.join(", ")
        ));
    }
    if lines.summary.is_none() {
        problems.push(format!(
            "the guest never printed its closing line ({}); the log follows:\n{}",
            describe_end(&run.end),
            run.log()
        ));
    }
    // A filtered run is judged on its selected cases only.
    if !filtered && (run.end == RunEnd::Exited(Verdict::Success)) != (failed == 0) {
        problems.push(format!(
            "the guest's verdict ({}) disagrees with its case lines",
            describe_end(&run.end)
        ));
    }
    problems
}

/// One case in the JSON report.
#[derive(Debug, Serialize)]
struct JsonCase<'a> {
    id: &'a str,
    rule: &'a str,
    section: &'a str,
    decisions: &'a [&'a str],
    expected: String,
    selected: bool,
    status: &'static str,
    details: Option<&'a str>,
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    accel: &'a str,
    boot: &'a str,
    filter: Option<&'a str>,
    guest_verdict: String,
    guest_summary: Option<(u64, u64)>,
    selected: usize,
    passed: usize,
    failed: usize,
    cases: Vec<JsonCase<'a>>,
}

/// `cargo xtask conformance`.
pub fn conformance_command(args: &ConformanceArgs) -> Result<ExitCode> {
    let paths = Paths::locate()?;
    let accel = match args.accel {
        Accel::Auto => Accel::Tcg,
        other => other,
    };
    let timeout = args.timeout.unwrap_or_else(|| default_timeout(accel));
    eprintln!(
        "conformance: building, then booting {GUEST_PROGRAM} ({}, {})",
        boot_name(args.boot),
        accel.name()
    );
    let run = boot_suite(
        &paths,
        args.boot,
        args.limine.limine_dir.as_deref(),
        accel,
        args.smp,
        timeout,
    )?;
    // The guest's whole serial log, for a failure the case lines do not
    // explain (a server's panic, a dead procman).
    let log_path = paths.hinge_dir().join("conformance.log");
    if let Err(error) = std::fs::write(&log_path, run.log()) {
        eprintln!("conformance: cannot write {}: {error}", log_path.display());
    }
    let cases: Vec<&'static Case> = ::conformance::cases::all().collect();
    let (statuses, lines) = statuses(&run, &cases);
    let selected = |case: &Case| {
        args.filter
            .as_ref()
            .is_none_or(|filter| filter.is_match(case.id))
    };

    let (mut passed, mut failed) = (0usize, 0usize);
    for (case, status) in statuses.iter().filter(|(case, _)| selected(case)) {
        match status {
            Status::Pass => {
                passed += 1;
                println!("ok   {} §{} {}", case.id, case.section, case.rule);
            }
            Status::Fail(details) | Status::NotRun(details) => {
                failed += 1;
                let label = if matches!(status, Status::Fail(_)) {
                    "FAIL"
                } else {
                    "FAIL (not run)"
                };
                println!("{label} {} §{} {}", case.id, case.section, case.rule);
                for detail in details.split("; ") {
                    println!("    {detail}");
                }
            }
        }
    }
    let verdict = describe_end(&run.end);
    let problems = run_problems(&run, &lines, failed, args.filter.is_some());
    for problem in &problems {
        eprintln!("conformance: {problem}");
    }
    if let Some(filter) = &args.filter {
        println!(
            "(filter {:?}: {} of {} cases)",
            filter.as_str(),
            passed + failed,
            cases.len()
        );
    }
    println!("{passed} passed, {failed} failed");

    if let Some(path) = &args.json {
        let report = JsonReport {
            accel: accel.name(),
            boot: boot_name(args.boot),
            filter: args.filter.as_ref().map(Regex::as_str),
            guest_verdict: verdict,
            guest_summary: lines.summary,
            selected: passed + failed,
            passed,
            failed,
            cases: statuses
                .iter()
                .map(|(case, status)| JsonCase {
                    id: case.id,
                    rule: case.rule,
                    section: case.section,
                    decisions: case.decisions,
                    expected: case.expect.describe(),
                    selected: selected(case),
                    status: status.name(),
                    details: match status {
                        Status::Pass => None,
                        Status::Fail(details) | Status::NotRun(details) => Some(details.as_str()),
                    },
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&report).context("encoding the JSON report")?;
        text.push('\n');
        artifacts::write_file(path, text.as_bytes())?;
        eprintln!("conformance: wrote {}", path.display());
    }
    Ok(if failed == 0 && problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn boot_name(boot: BootPath) -> &'static str {
    match boot {
        BootPath::Pvh => "pvh",
        BootPath::Limine => "limine",
    }
}

/// How a run ended, in words.
fn describe_end(end: &RunEnd) -> String {
    match end {
        RunEnd::Exited(verdict) => verdict.describe(),
        RunEnd::TimedOut(limit) => format!("stopped after {} s", limit.as_secs()),
        RunEnd::Matched(line) => format!("stopped at {line:?}"),
    }
}

/// The conformance step of `cargo xtask test`: how many cases passed and
/// failed (a case the guest never reached fails), a line, and the details.
#[derive(Debug)]
pub struct StepOutcome {
    pub passed: u64,
    pub failed: u64,
    pub line: String,
    pub details: String,
}

/// Boots the suite via PVH under `accel` from the boot `archive` the test's
/// build step wrote (`None`: it did not build, and every case fails, not
/// run) and counts its cases; a run that ends unclean (no closing line, a
/// guest verdict that disagrees with the case lines, unknown IDs) counts
/// one failure more.
pub fn test_step(paths: &Paths, accel: Accel, smp: u32, archive: Option<PathBuf>) -> StepOutcome {
    let cases: Vec<&'static Case> = ::conformance::cases::all().collect();
    let line = format!(
        "conformance suite (pvh, {}, {smp} cpu{}, {} cases)",
        accel.name(),
        if smp == 1 { "" } else { "s" },
        cases.len()
    );
    let booted = match archive {
        Some(archive) => run_suite(
            pvh_medium(paths, archive.clone(), accel, guest_cmdline()),
            accel,
            smp,
            default_timeout(accel),
        )
        .and_then(|first| {
            let second = run_suite(
                pvh_medium(paths, archive, accel, procman_cmdline()),
                accel,
                smp,
                default_timeout(accel),
            )?;
            Ok(merge(first, second))
        }),
        None => Err(anyhow::anyhow!(
            "the kernel or the boot archive did not build"
        )),
    };
    let run = match booted {
        Ok(run) => run,
        Err(error) => {
            return StepOutcome {
                passed: 0,
                failed: cases.len() as u64,
                line,
                details: format!("not run: {error:#}"),
            };
        }
    };
    let (statuses, lines) = statuses(&run, &cases);
    let mut details = String::new();
    let (mut passed, mut failed) = (0, 0);
    for (case, status) in &statuses {
        match status {
            Status::Pass => passed += 1,
            Status::Fail(reason) | Status::NotRun(reason) => {
                failed += 1;
                details.push_str(&format!("{} {}: {reason}\n", status.name(), case.id));
            }
        }
    }
    let problems = run_problems(&run, &lines, failed, false);
    if !problems.is_empty() {
        failed += 1;
        details.push_str(&problems.join("\n"));
    }
    StepOutcome {
        passed: passed as u64,
        failed: failed as u64,
        line: format!("{line}: {passed} passed, {failed} failed"),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<&'static Case> {
        ::conformance::cases::all().collect()
    }

    #[test]
    fn guest_lines_are_read_back() {
        let cases = table();
        let first = cases[0].id;
        let second = cases[1].id;
        let serial = format!(
            "hinge: ready\nconformance: 2 cases\nok   {first} §1 a rule\nFAIL {second} §1 another -- SEND: arg1 expected 0x7, got 0x8; more\nhinge: user fault: x\nok   MSG-NOPE-999 §1 stale\n1 passed, 1 failed\n"
        );
        let lines = parse_guest(&serial, &cases);
        assert_eq!(lines.results.get(first), Some(&Status::Pass));
        assert_eq!(
            lines.results.get(second),
            Some(&Status::Fail(
                "SEND: arg1 expected 0x7, got 0x8; more".to_owned()
            ))
        );
        assert_eq!(lines.summary, Some((1, 1)));
        assert_eq!(lines.unknown, ["MSG-NOPE-999"]);
    }

    #[test]
    fn cases_the_guest_never_reached_are_not_run() {
        let cases = table();
        let run = CapturedRun {
            session: Vec::new(),
            end: RunEnd::TimedOut(Duration::from_secs(5)),
            serial: format!("ok   {} §1 rule\n", cases[0].id),
            stderr: String::new(),
        };
        let (statuses, lines) = statuses(&run, &cases);
        assert_eq!(statuses.len(), cases.len());
        assert_eq!(statuses[0].1, Status::Pass);
        assert!(matches!(&statuses[1].1, Status::NotRun(why) if why.contains("5 s")));
        assert_eq!(lines.summary, None);
    }

    #[test]
    fn the_command_line_boots_the_runner_with_qemu_exit() {
        assert_eq!(guest_cmdline(), "init=conformance qemu-exit");
        assert_eq!(
            procman_cmdline(),
            "init=procman run=conformance-portals qemu-exit"
        );
    }

    #[test]
    fn two_runs_read_as_one() {
        let cases = table();
        let ok = |id: &str| format!("ok   {id} §1 rule\n");
        let first = CapturedRun {
            session: Vec::new(),
            end: RunEnd::Exited(Verdict::Success),
            serial: ok(cases[0].id) + "1 passed, 0 failed\n",
            stderr: String::new(),
        };
        let second = CapturedRun {
            session: Vec::new(),
            end: RunEnd::Exited(Verdict::Success),
            serial: ok(cases[1].id) + &ok(cases[2].id) + "2 passed, 0 failed\n",
            stderr: String::new(),
        };
        let run = merge(first, second);
        let lines = parse_guest(&run.serial, &cases);
        assert_eq!(lines.summary, Some((3, 0)));
        assert_eq!(lines.results.len(), 3);
        assert_eq!(run.end, RunEnd::Exited(Verdict::Success));
    }
}
