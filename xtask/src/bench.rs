//! `cargo xtask bench`: IPC round trips timed inside the guest, next to
//! Linux ping-pongs timed on this host in the same run (DESIGN §7).
//!
//! The guest side is the `ipc-bench` program (`programs/ipc-bench`), booted
//! via PVH as the first process with `init=ipc-bench qemu-exit
//! bench-iterations=N` (the first process gets the kernel command line as
//! its arguments) and its partner `ipc-bench-server`. It prints one line
//! per row in the format its library (`ipc_bench`) defines,
//!
//! ```text
//! bench: name=roundtrip-64 payload=64 descriptors=0 iterations=10000 median=5176 p10=5176 p90=5176
//! ```
//!
//! then `bench: done`, and ends QEMU with DEBUG_EXIT(0).
//!
//! The Linux side is the `linux-pingpong` crate: pipe, socketpair and
//! futex ping-pongs and a null system call, timed the same way (RDTSC
//! around each round trip, the same warm-up, the same percentiles). It
//! always runs on this host (`linux` rows, host TSC cycles), and with
//! `--peer linux` also as the `/init` of Debian's Linux booted in the same
//! QEMU, accelerator and CPU model ([`peer`]; `linux-vm` rows, in the
//! guest's unit).
//!
//! Units: the guest's TSC counts instructions under `--accel tcg-icount`
//! (`-icount shift=0`: exact and repeatable, the path length) and cycles
//! under KVM. Ratios are guest median over Linux median for rows that do
//! the same thing in the same unit: under tcg-icount that is the Linux VM
//! (instructions with instructions), never the host's cycles.
//!
//! Under tcg-icount the bench also judges the path-length targets
//! ([`targets`]), and `--plot FILE.svg` draws every row of the guest's
//! unit ([`plot`]).

mod peer;
mod plot;
mod scaling;

use crate::artifacts::{self, Paths};
use crate::cli::{Accel, BenchArgs, Peer};
use crate::deps::{self, HostPackage};
use crate::exec::Echo;
use crate::qemu::{self, BootMedium, CapturedRun, QemuConfig, RunEnd, SerialSink, Verdict};
use anyhow::{Context, Result, bail};
use image::cmdline;
use ipc_bench::{DONE, ERROR, ITERATIONS_KEY, LINE_PREFIX, WARM_UP};
use serde::Serialize;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// The boot-archive name of the guest bench program.
const GUEST_PROGRAM: &str = "ipc-bench";

/// Which side of the comparison a row was measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// hinge, in QEMU.
    Guest,
    /// Linux on this host (host TSC cycles).
    Linux,
    /// Linux in the same QEMU as the guest (`--peer linux`).
    #[serde(rename = "linux-vm")]
    LinuxVm,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Guest => "guest",
            Self::Linux => "linux",
            Self::LinuxVm => "linux-vm",
        }
    }
}

/// What a row's numbers count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Guest TSC ticks under `-icount shift=0`: one per instruction.
    Instructions,
    /// TSC ticks of the CPU (the host's, or the guest's under KVM).
    Cycles,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Instructions => "instructions",
            Self::Cycles => "cycles",
        }
    }
}

/// One measured row, as printed and as written to the JSON file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub system: System,
    pub payload_bytes: u32,
    pub descriptors: u32,
    pub unit: Unit,
    pub median: u64,
    pub p10: u64,
    pub p90: u64,
    pub iterations: u64,
}

/// The JSON file: the accelerator and every row.
#[derive(Debug, Serialize)]
struct Report<'a> {
    accel: &'a str,
    rows: &'a [Row],
}

/// `cargo xtask bench`.
pub fn bench_command(args: &BenchArgs) -> Result<ExitCode> {
    if args.scaling {
        return scaling_command(args);
    }
    let paths = Paths::locate()?;
    let accel = effective(args.accel);
    qemu::check_accel(accel)?;
    deps::ensure_packages(&[HostPackage::Qemu])?;
    let iterations = args.iterations as usize;

    eprintln!("bench: building the kernel and the programs");
    let manifest = artifacts::build(&paths, Echo::OnFailure)?;
    if !manifest
        .parsed
        .programs
        .iter()
        .any(|program| program.name == GUEST_PROGRAM)
    {
        bail!(
            "{} has no [[program]] named {GUEST_PROGRAM:?}",
            paths.manifest().display()
        );
    }
    let archive = artifacts::write_boot_archive(&paths, &manifest)?;

    let config = QemuConfig {
        medium: BootMedium::Pvh {
            kernel: paths.kernel_elf(),
            archive,
            cmdline: guest_cmdline(iterations),
            bios: qemu::fast_pvh_firmware(accel),
        },
        accel,
        smp: 1,
        memory: "256M".to_owned(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    eprintln!(
        "bench: booting {GUEST_PROGRAM} under {}{}",
        accel.name(),
        if accel == Accel::Kvm {
            " (minutes under a nested KVM)"
        } else {
            ""
        }
    );
    let run = qemu::run_captured(&config, None, Some(guest_timeout(iterations)), false)?;
    // A failed guest still gets the Linux baselines printed, then fails the command.
    let (mut rows, mut guest_failure) = match guest_rows(&run, unit_of(accel)) {
        Ok(rows) => (rows, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    // The share-point rows need procman: a second boot, procman first.
    eprintln!("bench: booting {PORTAL_PROGRAM} under procman");
    let portal_config = QemuConfig {
        medium: match config.medium {
            BootMedium::Pvh {
                kernel,
                archive,
                bios,
                ..
            } => BootMedium::Pvh {
                kernel,
                archive,
                cmdline: portal_cmdline(),
                bios,
            },
            other => other,
        },
        ..config
    };
    let portal_run = qemu::run_captured(&portal_config, None, Some(guest_timeout(0)), false)?;
    match guest_rows(&portal_run, unit_of(accel)) {
        Ok(portal_rows) => rows.extend(portal_rows),
        Err(error) => guest_failure = Some(error),
    }
    if let Some(error) = &guest_failure {
        eprintln!("error: {error:#}");
    }

    eprintln!("bench: Linux baselines on this host");
    rows.extend(host_rows(iterations)?);
    let peer_failure = match args.peer {
        None => None,
        Some(Peer::Linux) => match peer::rows(&paths, accel, iterations) {
            Ok(peer_rows) => {
                rows.extend(peer_rows);
                None
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                Some(error)
            }
        },
    };

    print!("{}", render(accel, &rows));
    for row in rows.iter().filter(|row| row.name.starts_with("move-1mib-")) {
        if row.median > 0 {
            println!(
                "{}: {:.3} bytes moved per one of the {} (1 MiB over the median)",
                row.name,
                row.payload_bytes as f64 / row.median as f64,
                row.unit.name()
            );
        }
    }
    if guest_failure.is_some() || peer_failure.is_some() {
        eprintln!("bench: rows are missing (see the error above); no JSON or plot written");
        return Ok(ExitCode::FAILURE);
    }
    if let Some(path) = &args.plot {
        plot::write_svg(path, accel, &rows)?;
        eprintln!("bench: wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let report = Report {
            accel: accel.name(),
            rows: &rows,
        };
        let mut text = serde_json::to_string_pretty(&report).context("encoding the JSON report")?;
        text.push('\n');
        artifacts::write_file(path, text.as_bytes())?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--scaling`: the pairs boot (see `scaling.rs`).
fn scaling_command(args: &BenchArgs) -> Result<ExitCode> {
    let paths = Paths::locate()?;
    let accel = match effective(args.accel) {
        Accel::TcgIcount => {
            eprintln!(
                "bench: tcg-icount runs one CPU at a time; scaling is measured under tcg (multi-threaded)"
            );
            Accel::Tcg
        }
        other => other,
    };
    qemu::check_accel(accel)?;
    deps::ensure_packages(&[HostPackage::Qemu])?;
    let iterations = args.iterations as usize;
    eprintln!("bench: building the kernel and the programs");
    let manifest = artifacts::build(&paths, Echo::OnFailure)?;
    let archive = artifacts::write_boot_archive(&paths, &manifest)?;
    let config = QemuConfig {
        medium: BootMedium::Pvh {
            kernel: paths.kernel_elf(),
            archive,
            cmdline: format!("{} {}", guest_cmdline(iterations), ipc_bench::SCALING_KEY),
            bios: qemu::fast_pvh_firmware(accel),
        },
        accel,
        smp: scaling::CPUS,
        memory: "256M".to_owned(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    eprintln!(
        "bench: booting {GUEST_PROGRAM} (scaling) under {} with {} CPUs",
        accel.name(),
        scaling::CPUS
    );
    // Seven round-trip runs of `iterations` each, some of them contended.
    let timeout = guest_timeout(iterations * 7);
    let run = qemu::run_captured(&config, None, Some(timeout), false)?;
    if !matches!(run.end, RunEnd::Exited(Verdict::Success)) {
        bail!(
            "the scaling run failed ({:?})\n--- serial log ---\n{}",
            run.end,
            run.log()
        );
    }
    let (rate, lines) = scaling::parse(&run.serial)
        .with_context(|| format!("--- serial log ---\n{}", run.log()))?;
    print!(
        "{}",
        scaling::render(accel.name(), &scaling::summarize(rate, &lines))
    );
    Ok(ExitCode::SUCCESS)
}

/// The ping-pongs on this host, in host cycles.
fn host_rows(iterations: usize) -> Result<Vec<Row>> {
    Ok(linux_pingpong::baselines(iterations, WARM_UP)?
        .into_iter()
        .map(|measured| Row {
            name: measured.name,
            system: System::Linux,
            payload_bytes: measured.payload_bytes,
            descriptors: 0,
            unit: Unit::Cycles,
            median: measured.stats.median,
            p10: measured.stats.p10,
            p90: measured.stats.p90,
            iterations: iterations as u64,
        })
        .collect())
}

/// `auto` means TCG, as everywhere in xtask.
fn effective(accel: Accel) -> Accel {
    match accel {
        Accel::Auto => Accel::Tcg,
        other => other,
    }
}

fn unit_of(accel: Accel) -> Unit {
    match accel {
        Accel::TcgIcount => Unit::Instructions,
        Accel::Kvm | Accel::Tcg | Accel::Auto => Unit::Cycles,
    }
}

/// The kernel command line: the bench as the first process, verdict to
/// QEMU, and the iteration count for the bench.
fn guest_cmdline(iterations: usize) -> String {
    format!(
        "{}={GUEST_PROGRAM} {} {ITERATIONS_KEY}={iterations}",
        cmdline::INIT_KEY,
        cmdline::QEMU_EXIT
    )
}

/// The kernel command line of the share-point rows' boot: procman starts
/// `portal-bench`, whose status ends the machine.
fn portal_cmdline() -> String {
    format!(
        "{}={} run={PORTAL_PROGRAM} {}",
        cmdline::INIT_KEY,
        cmdline::DEFAULT_INIT,
        cmdline::QEMU_EXIT
    )
}

/// The program of the share-point rows.
const PORTAL_PROGRAM: &str = "portal-bench";

/// Generous: 10,000 iterations take a few seconds under tcg-icount, but
/// about 200 s under this machine kind's nested KVM, where every trap and
/// address-space switch costs hundreds of thousands of cycles.
fn guest_timeout(iterations: usize) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(50) * iterations as u32
}

/// The rows of a finished guest run; an error (with the serial log) unless
/// the guest reported success, printed `bench: done` and at least one row.
fn guest_rows(run: &CapturedRun, unit: Unit) -> Result<Vec<Row>> {
    let failure = |reason: String| -> anyhow::Error {
        anyhow::anyhow!(
            "the guest bench failed: {reason}\n--- serial log ---\n{}",
            run.log()
        )
    };
    match &run.end {
        RunEnd::Exited(Verdict::Success) => {}
        RunEnd::Exited(verdict) => return Err(failure(verdict.describe())),
        RunEnd::TimedOut(limit) => {
            return Err(failure(format!("timed out after {} s", limit.as_secs())));
        }
        RunEnd::Matched(line) => return Err(failure(format!("stopped at {line:?}"))),
    }
    let rows =
        parse_guest_lines(&run.serial, unit).map_err(|error| failure(format!("{error:#}")))?;
    if rows.is_empty() {
        return Err(failure("it printed no row".to_owned()));
    }
    Ok(rows)
}

/// The rows in the guest's serial output; an error for a `bench: error`
/// line, a malformed row, or a missing `bench: done`.
fn parse_guest_lines(serial: &str, unit: Unit) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut done = false;
    for line in serial.lines() {
        let Some(at) = line.find(LINE_PREFIX) else {
            continue;
        };
        let text = line[at + LINE_PREFIX.len()..].trim();
        if text == DONE {
            done = true;
        } else if text.starts_with("name=") {
            rows.push(parse_guest_row(text, unit).with_context(|| format!("in {line:?}"))?);
        } else if text.starts_with(ERROR) {
            bail!("the guest reported: {text}");
        }
    }
    if !done {
        bail!("the guest never printed \"{LINE_PREFIX}{DONE}\"");
    }
    Ok(rows)
}

/// One `name=... payload=... ...` row.
fn parse_guest_row(text: &str, unit: Unit) -> Result<Row> {
    let field = |key: &str| -> Result<&str> {
        text.split_ascii_whitespace()
            .filter_map(|word| word.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, value)| value)
            .with_context(|| format!("no {key}="))
    };
    let number = |key: &str| -> Result<u64> {
        let value = field(key)?;
        value
            .parse()
            .with_context(|| format!("{key}={value} is not a number"))
    };
    Ok(Row {
        name: field("name")?.to_owned(),
        system: System::Guest,
        payload_bytes: u32::try_from(number("payload")?).context("payload too large")?,
        descriptors: u32::try_from(number("descriptors")?).context("descriptors too large")?,
        unit,
        median: number("median")?,
        p10: number("p10")?,
        p90: number("p90")?,
        iterations: number("iterations")?,
    })
}

/// What a row measures, for pairing guest rows with Linux rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The cheapest trap: guest `trap-null`, Linux `syscall-*`.
    Trap,
    /// A request and a reply of this many bytes between two processes,
    /// no descriptors; 0 stands for the smallest message there is (a pipe
    /// cannot carry an empty one, so its 1-byte row counts as 0).
    Message(u32),
}

fn kind_of(row: &Row) -> Option<Kind> {
    match row.system {
        System::Guest if row.name.starts_with("trap-") => Some(Kind::Trap),
        System::Guest if row.name.starts_with("roundtrip-") && row.descriptors == 0 => {
            Some(Kind::Message(row.payload_bytes))
        }
        System::Guest => None,
        System::Linux | System::LinuxVm if row.name.starts_with("syscall-") => Some(Kind::Trap),
        System::Linux | System::LinuxVm if row.payload_bytes <= 1 => Some(Kind::Message(0)),
        System::Linux | System::LinuxVm => Some(Kind::Message(row.payload_bytes)),
    }
}

/// What a stream row measures (ABI.md §7a.3 against Linux's pipes and
/// socketpairs): `(socket, moves a MiB, payload)`. Guest
/// `pingpong-pipe-N` / `pingpong-socket-N` pair with Linux `pipe-N` /
/// `socketpair-N`, and `move-1mib-pipe` / `move-1mib-socket` with Linux
/// `move-1mib-pipe` / `move-1mib-socketpair`.
fn stream_kind(row: &Row) -> Option<(bool, bool, u32)> {
    let name = row.name.as_str();
    match row.system {
        System::Guest => match name {
            "move-1mib-pipe" => Some((false, true, row.payload_bytes)),
            "move-1mib-socket" => Some((true, true, row.payload_bytes)),
            _ if name.starts_with("pingpong-pipe-") => Some((false, false, row.payload_bytes)),
            _ if name.starts_with("pingpong-socket-") => Some((true, false, row.payload_bytes)),
            _ => None,
        },
        System::Linux | System::LinuxVm => match name {
            "move-1mib-pipe" => Some((false, true, row.payload_bytes)),
            "move-1mib-socketpair" => Some((true, true, row.payload_bytes)),
            _ if name.starts_with("pipe-") => Some((false, false, row.payload_bytes)),
            _ if name.starts_with("socketpair-") => Some((true, false, row.payload_bytes)),
            _ => None,
        },
    }
}

/// Every (guest, Linux) pair that measures the same kind of thing in the
/// same unit (instructions are never divided by cycles).
fn comparisons(rows: &[Row]) -> Vec<(&Row, &Row)> {
    let guests = rows.iter().filter(|row| row.system == System::Guest);
    guests
        .flat_map(|guest| {
            rows.iter()
                .filter(move |linux| {
                    linux.system != System::Guest
                        && linux.unit == guest.unit
                        && ((kind_of(guest).is_some() && kind_of(guest) == kind_of(linux))
                            || (stream_kind(guest).is_some()
                                && stream_kind(guest) == stream_kind(linux)))
                })
                .map(move |linux| (guest, linux))
        })
        .collect()
}

/// The report: every row, the ratios and, under tcg-icount, the target.
fn render(accel: Accel, rows: &[Row]) -> String {
    let mut out = String::new();
    let iterations = rows.first().map_or(0, |row| row.iterations);
    let _ = writeln!(
        out,
        "\nIPC round trips, {iterations} measured after {WARM_UP} warm-up each: guest{} under {} \
         ({}), linux on this host (host cycles, both processes on one CPU)\n",
        if rows.iter().any(|row| row.system == System::LinuxVm) {
            " and linux-vm (Debian's Linux in the same QEMU)"
        } else {
            ""
        },
        accel.name(),
        unit_of(accel).name()
    );
    let header = [
        "system", "name", "bytes", "desc", "unit", "median", "p10", "p90",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.system.name().to_owned(),
                row.name.clone(),
                row.payload_bytes.to_string(),
                row.descriptors.to_string(),
                row.unit.name().to_owned(),
                row.median.to_string(),
                row.p10.to_string(),
                row.p90.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let text_columns = [0, 1, 4];
    let mut push_line = |line: &[String]| {
        let mut text = String::new();
        for (column, (cell, width)) in line.iter().zip(widths).enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            if text_columns.contains(&column) {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "{cell:>width$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    push_line(&header.map(str::to_owned));
    for line in &cells {
        push_line(line);
    }

    let pairs = comparisons(rows);
    if !pairs.is_empty() {
        let _ = writeln!(out, "\nratios, guest median / linux median (same unit):");
        let width = pairs
            .iter()
            .map(|(guest, linux)| {
                guest.name.len() + linux.name.len() + linux.system.name().len() + 5
            })
            .max()
            .unwrap_or(0);
        for (guest, linux) in pairs {
            let label = format!("{} / {} {}", guest.name, linux.system.name(), linux.name);
            let _ = writeln!(
                out,
                "  {label:<width$}  {}",
                ratio(guest.median, linux.median)
            );
        }
    }
    if unit_of(accel) == Unit::Instructions {
        let _ = writeln!(out, "\ntargets (instructions):");
        for target in targets(rows) {
            let _ = writeln!(out, "  {:<8} {}", target.verdict.name(), target.description);
        }
    }
    out
}

/// The path-length targets (issue: "an IPC fast path"): instructions
/// under tcg-icount, user and kernel together.
const TRAP_NULL_TARGET: u64 = 150;
const ROUNDTRIP_64_TARGET: u64 = 1_000;
/// One descriptor each way may add at most this to an empty round trip.
const DESCRIPTOR_TARGET: u64 = 300;
/// What a copy of N bytes may cost: one instruction per 8 bytes (a
/// `rep movsq` counts one instruction per iteration under icount).
const COPY_BYTES_PER_INSTRUCTION: u64 = 8;
/// Every round trip at least this many times shorter than Linux's pipe
/// ping-pong of the same size.
const LINUX_PIPE_FACTOR: u64 = 10;

/// How a target came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetVerdict {
    Met,
    Missed,
    /// A row it needs was not measured (the Linux rows need `--peer linux`).
    Unmeasured,
}

impl TargetVerdict {
    fn name(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "MISSED",
            Self::Unmeasured => "unknown",
        }
    }

    fn of(measured: Option<u64>, limit: Option<u64>) -> Self {
        match (measured, limit) {
            (Some(value), Some(limit)) if value <= limit => Self::Met,
            (Some(_), Some(_)) => Self::Missed,
            _ => Self::Unmeasured,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    verdict: TargetVerdict,
    description: String,
}

/// Every target, judged on `rows` (instructions).
fn targets(rows: &[Row]) -> Vec<Target> {
    let median = |system: System, name: &str| {
        rows.iter()
            .find(|row| row.system == system && row.name == name)
            .map(|row| row.median)
    };
    let guest = |name: &str| median(System::Guest, name);
    let shown = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut targets = Vec::new();
    let mut push = |measured: Option<u64>, limit: Option<u64>, what: String| {
        targets.push(Target {
            verdict: TargetVerdict::of(measured, limit),
            description: format!("{what}: {} (at most {})", shown(measured), shown(limit)),
        });
    };
    push(
        guest("trap-null"),
        Some(TRAP_NULL_TARGET),
        "trap-null".to_owned(),
    );
    push(
        guest("roundtrip-64"),
        Some(ROUNDTRIP_64_TARGET),
        "roundtrip-64".to_owned(),
    );
    let copies = 2 * 4000 / COPY_BYTES_PER_INSTRUCTION;
    push(
        guest("roundtrip-4000"),
        guest("roundtrip-64").map(|base| base + copies),
        format!("roundtrip-4000, roundtrip-64 plus two 4000-byte copies ({copies})"),
    );
    push(
        guest("roundtrip-desc"),
        guest("roundtrip-0").map(|base| base + DESCRIPTOR_TARGET),
        format!("roundtrip-desc, roundtrip-0 plus {DESCRIPTOR_TARGET}"),
    );
    for (ours, pipe) in [
        ("roundtrip-0", "pipe-1"),
        ("roundtrip-64", "pipe-64"),
        ("roundtrip-4000", "pipe-4000"),
    ] {
        push(
            guest(ours),
            median(System::LinuxVm, pipe).map(|linux| linux / LINUX_PIPE_FACTOR),
            format!("{ours}, a {LINUX_PIPE_FACTOR}th of linux-vm {pipe}"),
        );
    }
    targets
}

fn ratio(guest: u64, linux: u64) -> String {
    if linux == 0 {
        return "-".to_owned();
    }
    format!("{:.2}", guest as f64 / linux as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "\
hinge: starting ipc-bench
bench: name=rdtsc-empty payload=0 descriptors=0 iterations=100 median=3 p10=3 p90=3
bench: name=trap-null payload=0 descriptors=0 iterations=100 median=560 p10=560 p90=561
bench: name=roundtrip-0 payload=0 descriptors=0 iterations=100 median=3260 p10=3260 p90=3300
bench: name=roundtrip-64 payload=64 descriptors=0 iterations=100 median=5176 p10=5100 p90=5200
bench: name=roundtrip-desc payload=0 descriptors=1 iterations=100 median=6161 p10=6161 p90=6161
bench: done
";

    fn linux(name: &str, payload_bytes: u32, median: u64) -> Row {
        Row {
            name: name.to_owned(),
            system: System::Linux,
            payload_bytes,
            descriptors: 0,
            unit: Unit::Cycles,
            median,
            p10: median,
            p90: median,
            iterations: 100,
        }
    }

    #[test]
    fn guest_lines_become_rows() {
        let rows = parse_guest_lines(SERIAL, Unit::Instructions).expect("rows");
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[3],
            Row {
                name: "roundtrip-64".to_owned(),
                system: System::Guest,
                payload_bytes: 64,
                descriptors: 0,
                unit: Unit::Instructions,
                median: 5176,
                p10: 5100,
                p90: 5200,
                iterations: 100,
            }
        );
        assert_eq!(rows[4].descriptors, 1);
    }

    #[test]
    fn a_guest_run_must_finish_and_rows_must_be_whole() {
        let unfinished = SERIAL.replace("bench: done\n", "");
        assert!(parse_guest_lines(&unfinished, Unit::Cycles).is_err());
        let failed = format!("{SERIAL}bench: error roundtrip-64: SEND failed: PEER_DIED\n");
        let error = parse_guest_lines(&failed, Unit::Cycles).expect_err("error line");
        assert!(format!("{error:#}").contains("PEER_DIED"));
        let broken = "bench: name=x payload=0 descriptors=0 iterations=1 median=a p10=1 p90=1\nbench: done\n";
        assert!(parse_guest_lines(broken, Unit::Cycles).is_err());
        let missing = "bench: name=x payload=0 iterations=1 median=1 p10=1 p90=1\nbench: done\n";
        assert!(parse_guest_lines(missing, Unit::Cycles).is_err());
    }

    #[test]
    fn rows_pair_with_the_linux_rows_that_do_the_same_in_the_same_unit() {
        let mut rows = parse_guest_lines(SERIAL, Unit::Instructions).expect("rows");
        rows.extend([
            linux("pipe-1", 1, 10_000),
            linux("pipe-64", 64, 11_000),
            linux("socketpair-0", 0, 12_000),
            linux("futex-0", 0, 8_000),
            linux("syscall-getppid", 0, 200),
        ]);
        // Host cycles never pair with guest instructions.
        assert!(comparisons(&rows).is_empty());
        for row in rows.iter_mut().filter(|row| row.system == System::Linux) {
            row.system = System::LinuxVm;
            row.unit = Unit::Instructions;
        }
        let pairs: Vec<(&str, &str)> = comparisons(&rows)
            .into_iter()
            .map(|(guest, linux)| (guest.name.as_str(), linux.name.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("trap-null", "syscall-getppid"),
                ("roundtrip-0", "pipe-1"),
                ("roundtrip-0", "socketpair-0"),
                ("roundtrip-0", "futex-0"),
                ("roundtrip-64", "pipe-64"),
            ]
        );
        let text = render(Accel::TcgIcount, &rows);
        assert!(text.contains("roundtrip-64 / linux-vm pipe-64"), "{text}");
        assert!(text.contains("0.47"), "{text}");
        assert!(!render(Accel::Kvm, &rows).contains("targets"));
    }

    #[test]
    fn stream_rows_pair_with_the_linux_pipe_and_socketpair_rows() {
        let vm = |name: &str, payload: u32| Row {
            system: System::LinuxVm,
            unit: Unit::Instructions,
            ..linux(name, payload, 1_000)
        };
        let guest = |name: &str, payload: u32| Row {
            system: System::Guest,
            ..vm(name, payload)
        };
        let rows = [
            guest("pingpong-pipe-64", 64),
            guest("move-1mib-socket", 1 << 20),
            vm("pipe-64", 64),
            vm("socketpair-64", 64),
            vm("move-1mib-pipe", 1 << 20),
            vm("move-1mib-socketpair", 1 << 20),
        ];
        let pairs: Vec<(&str, &str)> = comparisons(&rows)
            .into_iter()
            .map(|(guest, linux)| (guest.name.as_str(), linux.name.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("pingpong-pipe-64", "pipe-64"),
                ("move-1mib-socket", "move-1mib-socketpair"),
            ]
        );
    }

    #[test]
    fn targets_are_judged_exactly_at_their_limits() {
        let guest = |name: &str, median: u64| Row {
            system: System::Guest,
            unit: Unit::Instructions,
            ..linux(name, 0, median)
        };
        let vm = |name: &str, median: u64| Row {
            system: System::LinuxVm,
            unit: Unit::Instructions,
            ..linux(name, 0, median)
        };
        let rows = [
            guest("trap-null", 150),
            guest("roundtrip-0", 900),
            guest("roundtrip-64", 1001),
            guest("roundtrip-4000", 2001),
            guest("roundtrip-desc", 1200),
            vm("pipe-1", 9000),
            vm("pipe-64", 10_000),
        ];
        let verdicts: Vec<TargetVerdict> = targets(&rows).iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            [
                TargetVerdict::Met,        // 150 <= 150
                TargetVerdict::Missed,     // 1001 > 1000
                TargetVerdict::Met,        // 2001 <= 1001 + 1000
                TargetVerdict::Met,        // 1200 <= 900 + 300
                TargetVerdict::Met,        // 900 <= 9000 / 10
                TargetVerdict::Missed,     // 1001 > 10000 / 10
                TargetVerdict::Unmeasured, // no linux-vm pipe-4000
            ]
        );
        let text = render(Accel::TcgIcount, &rows);
        assert!(
            text.contains("MISSED   roundtrip-64: 1001 (at most 1000)"),
            "{text}"
        );
    }

    #[test]
    fn the_json_report_has_the_documented_shape() {
        let rows = [linux("pipe-64", 64, 11_000)];
        let report = Report {
            accel: "kvm",
            rows: &rows,
        };
        let value = serde_json::to_value(&report).expect("json");
        assert_eq!(value["accel"], "kvm");
        let row = &value["rows"][0];
        assert_eq!(row["name"], "pipe-64");
        assert_eq!(row["system"], "linux");
        assert_eq!(row["payload_bytes"], 64);
        assert_eq!(row["descriptors"], 0);
        assert_eq!(row["unit"], "cycles");
        assert_eq!(row["median"], 11_000);
        assert_eq!(row["p10"], 11_000);
        assert_eq!(row["p90"], 11_000);
        assert_eq!(row["iterations"], 100);
        assert_eq!(row.as_object().map(|fields| fields.len()), Some(9));
    }

    #[test]
    fn the_guest_is_booted_as_the_first_process_with_a_verdict_and_the_count() {
        let line = guest_cmdline(1234);
        assert_eq!(
            cmdline::value(&line, cmdline::INIT_KEY),
            Some(GUEST_PROGRAM)
        );
        assert!(cmdline::has_word(&line, cmdline::QEMU_EXIT));
        assert_eq!(ipc_bench::iterations(&line), Ok(1234));
        assert_eq!(unit_of(Accel::TcgIcount), Unit::Instructions);
        assert_eq!(unit_of(effective(Accel::Auto)), Unit::Cycles);
    }
}
