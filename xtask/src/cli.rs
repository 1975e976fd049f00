//! The command line of `cargo xtask`: subcommands and their options. Only
//! parsing lives here; each subcommand's module does the work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use regex::Regex;
use std::path::PathBuf;
use std::time::Duration;

/// Build, boot and test the hinge microkernel.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the kernel and the manifest's programs for x86_64-unknown-none.
    Build,
    /// Build, then write target/hinge/boot.archive (and target/hinge/hinge.iso
    /// when Limine binaries are given).
    Image(ImageArgs),
    /// Build, image and boot in QEMU; the serial console is this terminal.
    Run(RunArgs),
    /// Boot via PVH under TCG, halted at the first instruction, and attach gdb.
    Gdb(GdbArgs),
    /// The CI command: dependencies, formatting, lints, host tests and QEMU boot tests.
    Test(TestArgs),
    /// Time IPC round trips in the guest (RDTSC, booted as `init=ipc-bench`)
    /// and pipe, socketpair and futex ping-pongs on this Linux host; print
    /// both and their ratios.
    Bench(BenchArgs),
    /// Boot the ABI conformance suite (`init=conformance`): one line per
    /// case, then `N passed, M failed`.
    Conformance(ConformanceArgs),
    /// Boot the IPC fuzzer with a fresh seed (printed first): two racing
    /// ipc-fuzz processes and their oracle, then the seed, traps,
    /// violations and counters.
    Fuzz(FuzzArgs),
}

/// Where the Limine binaries are (a checkout of a Limine `v8.x-binary` branch).
#[derive(Debug, Args)]
pub struct LimineArgs {
    /// A Limine binary checkout (limine-bios.sys, limine-*-cd.bin, BOOTX64.EFI, limine.c).
    #[arg(long, env = "LIMINE_DIR", value_name = "DIR")]
    pub limine_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub limine: LimineArgs,
    /// Kernel command-line words to write into limine.conf.
    #[arg(long, default_value = "", value_name = "WORDS")]
    pub cmdline: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// How to boot [default: limine when Limine binaries are found, else pvh].
    #[arg(long)]
    pub boot: Option<BootPath>,
    #[command(flatten)]
    pub limine: LimineArgs,
    /// The firmware for a Limine boot (UEFI uses OVMF).
    #[arg(long, value_enum, default_value_t = Firmware::Bios)]
    pub firmware: Firmware,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// The kernel command line: by default procman starts the serial
    /// console and its shell (`run=console`); other words replace it (e.g.
    /// "init=ipc-test qemu-exit", or "run=console qemu-exit").
    #[arg(long, default_value = "run=console", value_name = "WORDS")]
    pub cmdline: String,
    /// Pipe the serial console through xtask (no terminal takeover), which
    /// enables --until and --timeout.
    #[arg(long)]
    pub headless: bool,
    /// With --headless: exit 0 as soon as a serial line matches REGEX.
    #[arg(long, requires = "headless", value_name = "REGEX", value_parser = parse_regex)]
    pub until: Option<Regex>,
    /// With --headless: give up (non-zero exit, log printed) after SECS seconds.
    #[arg(long, requires = "headless", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    /// Type FILE's lines at the shell's prompts on the serial console, one
    /// per prompt (never by timing), then ^D; pipes the console through
    /// xtask like --headless.
    #[arg(long, value_name = "FILE")]
    pub input: Option<std::path::PathBuf>,
}

/// The virtual machine's shape.
#[derive(Debug, Args)]
pub struct MachineArgs {
    /// The QEMU accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    pub accel: Accel,
    /// The number of CPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=255))]
    pub smp: u32,
    /// The guest's memory, in QEMU's syntax.
    #[arg(long, default_value = "256M")]
    pub memory: String,
}

#[derive(Debug, Args)]
pub struct GdbArgs {
    /// Extra kernel command-line words.
    #[arg(long, default_value = "", value_name = "WORDS")]
    pub cmdline: String,
    /// The guest's memory, in QEMU's syntax.
    #[arg(long, default_value = "256M")]
    pub memory: String,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The accelerator for the QEMU boot tests.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Only build and run the boot cases whose name contains TEXT (no
    /// lints, host tests or conformance): to repeat one case.
    #[arg(long, value_name = "TEXT")]
    pub boot_case: Option<String>,
    /// QEMU boots run at once (each is one busy host thread, or one per
    /// CPU of a `--smp 4` guest under TCG); default: the host's CPUs.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The QEMU accelerator: tcg-icount counts instructions (exact and
    /// repeatable), kvm counts cycles; auto and tcg count the host's cycles
    /// spent emulating, which mean little.
    #[arg(long, value_enum, default_value_t = Accel::TcgIcount)]
    pub accel: Accel,
    /// Also write every row as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measured round trips per row, in the guest and on Linux (each row
    /// warms up with 1,000 more first).
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=ipc_bench::MAX_ITERATIONS as i64))]
    pub iterations: u32,
    /// Also boot another system in the same QEMU, accelerator and CPU
    /// model and measure its ping-pongs there (linux: Debian's kernel,
    /// fetched with apt as root the first time and cached under target/).
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub peer: Option<Peer>,
    /// Also draw every row of the guest's unit as an SVG bar chart (log scale).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Instead of the rows: N = 1, 2, 4 client/server pairs at once, each
    /// on a CPU of its own (four CPUs; KVM, or TCG multi-threaded: under
    /// tcg-icount one CPU runs at a time), round trips per second per pair
    /// and the scaling factor.
    #[arg(long, conflicts_with_all = ["peer", "plot", "json"])]
    pub scaling: bool,
}

/// A system `cargo xtask bench --peer` measures beside hinge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// Debian's Linux (`linux-image-amd64`), booted through PVH.
    Linux,
}

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Show, count and judge only the cases whose ID matches REGEX (the
    /// guest still runs every case).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub filter: Option<Regex>,
    /// Also write every case of the table, with its status, as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How to boot.
    #[arg(long, value_enum, default_value_t = BootPath::Pvh)]
    pub boot: BootPath,
    #[command(flatten)]
    pub limine: LimineArgs,
    /// The QEMU accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Stop QEMU after SECS seconds [default: 300, 900 under KVM].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    /// The number of CPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: u32,
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// The seed, decimal or 0x hexadecimal [default: a fresh one, printed first].
    #[arg(long, value_name = "S", value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// The primary fuzzer's random traps [default: 1000000, or as many as
    /// fit with --seconds].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub traps: Option<u64>,
    /// Stop after T seconds of guest time even if the traps are not all made.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: Option<u64>,
    /// The QEMU accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BootPath {
    /// A hybrid BIOS/UEFI ISO booted by Limine (the product's boot path).
    Limine,
    /// QEMU's direct PVH boot of the kernel ELF, the archive as initrd.
    Pvh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF, from Debian's `ovmf` package.
    Uefi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// TCG for now: the reference for tests.
    Auto,
    /// KVM with `-cpu host,-arch-capabilities` (needs /dev/kvm).
    Kvm,
    /// QEMU's software emulator.
    Tcg,
    /// TCG with `-icount shift=0`: one TSC tick per instruction, repeatable counts.
    TcgIcount,
}

impl Accel {
    /// The name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
            Self::TcgIcount => "tcg-icount",
        }
    }
}

fn parse_regex(text: &str) -> Result<Regex, regex::Error> {
    Regex::new(text)
}

fn parse_seed(text: &str) -> Result<u64, String> {
    ipc_fuzz::parse_number(text)
        .ok_or_else(|| format!("{text:?} is not a decimal or 0x hexadecimal number"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("the timeout must be at least 1 second".to_owned()),
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(error) => Err(format!(
            "{text:?} is not a whole number of seconds: {error}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args).map(|cli| cli.command) {
            Ok(Command::Run(run)) => run,
            other => panic!("expected a run command, got {other:?}"),
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults() {
        let run = run_args(&["run"]);
        assert_eq!(run.boot, None);
        assert_eq!(run.firmware, Firmware::Bios);
        assert_eq!(run.machine.accel, Accel::Auto);
        assert_eq!(run.machine.smp, 1);
        assert_eq!(run.machine.memory, "256M");
        // The console server and its shell.
        assert_eq!(run.cmdline, "run=console");
        assert!(!run.headless);
        assert!(run.until.is_none() && run.timeout.is_none() && run.input.is_none());
    }

    #[test]
    fn run_accepts_every_option() {
        let run = run_args(&[
            "run",
            "--boot",
            "limine",
            "--limine-dir",
            "/opt/limine",
            "--firmware",
            "uefi",
            "--accel",
            "tcg-icount",
            "--smp",
            "2",
            "--memory",
            "1G",
            "--cmdline",
            "qemu-exit verbose",
            "--headless",
            "--until",
            "hinge: ready",
            "--timeout",
            "30",
        ]);
        assert_eq!(run.boot, Some(BootPath::Limine));
        assert_eq!(run.limine.limine_dir, Some(PathBuf::from("/opt/limine")));
        assert_eq!(run.firmware, Firmware::Uefi);
        assert_eq!(run.machine.accel, Accel::TcgIcount);
        assert_eq!(run.machine.smp, 2);
        assert_eq!(run.machine.memory, "1G");
        assert_eq!(run.cmdline, "qemu-exit verbose");
        assert!(run.headless);
        assert!(
            run.until
                .is_some_and(|until| until.is_match("x hinge: ready"))
        );
        assert_eq!(run.timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn until_and_timeout_need_headless() {
        assert!(parse(&["run", "--until", "ready"]).is_err());
        assert!(parse(&["run", "--timeout", "5"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["run", "--headless", "--until", "("]).is_err());
        assert!(parse(&["run", "--headless", "--timeout", "0"]).is_err());
        assert!(parse(&["run", "--headless", "--timeout", "soon"]).is_err());
        assert!(parse(&["run", "--smp", "0"]).is_err());
        assert!(parse(&["run", "--accel", "hvf"]).is_err());
        assert!(parse(&["run", "--boot", "grub"]).is_err());
    }

    #[test]
    fn accelerator_names_are_their_command_line_spelling() {
        for accel in Accel::value_variants() {
            let spelled = accel
                .to_possible_value()
                .map(|value| value.get_name().to_owned());
            assert_eq!(spelled.as_deref(), Some(accel.name()));
        }
    }

    #[test]
    fn bench_defaults_to_icount_and_ten_thousand_iterations() {
        match parse(&["bench"]).map(|cli| cli.command) {
            Ok(Command::Bench(bench)) => {
                assert_eq!(bench.accel, Accel::TcgIcount);
                assert_eq!(bench.json, None);
                assert_eq!(bench.iterations, 10_000);
            }
            other => panic!("expected a bench command, got {other:?}"),
        }
        match parse(&[
            "bench",
            "--accel",
            "kvm",
            "--json",
            "out.json",
            "--iterations",
            "500",
        ])
        .map(|cli| cli.command)
        {
            Ok(Command::Bench(bench)) => {
                assert_eq!(bench.accel, Accel::Kvm);
                assert_eq!(bench.json, Some(PathBuf::from("out.json")));
                assert_eq!(bench.iterations, 500);
            }
            other => panic!("expected a bench command, got {other:?}"),
        }
        assert!(parse(&["bench", "--iterations", "0"]).is_err());
        assert!(parse(&["bench", "--iterations", "lots"]).is_err());
    }

    #[test]
    fn conformance_defaults_and_options() {
        match parse(&["conformance"]).map(|cli| cli.command) {
            Ok(Command::Conformance(suite)) => {
                assert!(suite.filter.is_none() && suite.json.is_none() && suite.timeout.is_none());
                assert_eq!((suite.boot, suite.accel), (BootPath::Pvh, Accel::Tcg));
            }
            other => panic!("expected a conformance command, got {other:?}"),
        }
        match parse(&[
            "conformance",
            "--filter",
            "MSG-SIZE-",
            "--json",
            "c.json",
            "--boot",
            "limine",
            "--accel",
            "kvm",
            "--timeout",
            "60",
        ])
        .map(|cli| cli.command)
        {
            Ok(Command::Conformance(suite)) => {
                assert!(
                    suite
                        .filter
                        .is_some_and(|f| f.is_match("MSG-SIZE-007") && !f.is_match("MSG-SLOT-001"))
                );
                assert_eq!(suite.json, Some(PathBuf::from("c.json")));
                assert_eq!((suite.boot, suite.accel), (BootPath::Limine, Accel::Kvm));
                assert_eq!(suite.timeout, Some(Duration::from_secs(60)));
            }
            other => panic!("expected a conformance command, got {other:?}"),
        }
        assert!(parse(&["conformance", "--filter", "("]).is_err());
    }

    #[test]
    fn fuzz_defaults_and_options() {
        match parse(&["fuzz"]).map(|cli| cli.command) {
            Ok(Command::Fuzz(fuzz)) => {
                assert_eq!((fuzz.seed, fuzz.traps, fuzz.seconds), (None, None, None));
                assert_eq!(fuzz.accel, Accel::Tcg);
            }
            other => panic!("expected a fuzz command, got {other:?}"),
        }
        match parse(&[
            "fuzz",
            "--seed",
            "0xBEEF",
            "--traps",
            "10000000",
            "--seconds",
            "60",
            "--accel",
            "kvm",
        ])
        .map(|cli| cli.command)
        {
            Ok(Command::Fuzz(fuzz)) => {
                assert_eq!(fuzz.seed, Some(0xbeef));
                assert_eq!(fuzz.traps, Some(10_000_000));
                assert_eq!(fuzz.seconds, Some(60));
                assert_eq!(fuzz.accel, Accel::Kvm);
            }
            other => panic!("expected a fuzz command, got {other:?}"),
        }
        assert!(parse(&["fuzz", "--seed", "soon"]).is_err());
        assert!(parse(&["fuzz", "--traps", "0"]).is_err());
        assert!(parse(&["fuzz", "--seconds", "0"]).is_err());
    }

    #[test]
    fn test_defaults_to_tcg() {
        match parse(&["test"]).map(|cli| cli.command) {
            Ok(Command::Test(test)) => assert_eq!(test.accel, Accel::Tcg),
            other => panic!("expected a test command, got {other:?}"),
        }
        match parse(&["test", "--accel", "kvm"]).map(|cli| cli.command) {
            Ok(Command::Test(test)) => assert_eq!(test.accel, Accel::Kvm),
            other => panic!("expected a test command, got {other:?}"),
        }
    }
}
