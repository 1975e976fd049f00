//! Booting hinge in QEMU: the machine and boot medium as a [`QemuConfig`],
//! its translation into a QEMU command line, running QEMU attached to the
//! terminal or with the serial console piped through us, and turning QEMU's
//! exit status into a verdict (the numbers come from `abi::debug_exit`).
//!
//! Every QEMU command line has the same spine, in this order:
//! `-machine q35 -m MEM -smp N -no-reboot -display none`, the accelerator,
//! `-serial ...`, `-device isa-debug-exit,...`, then the boot medium (PVH:
//! `-kernel ELF -initrd ARCHIVE -append CMDLINE`; Limine: firmware and
//! `-cdrom ISO`), then `-s -S` when gdb will attach.

use crate::artifacts::{self, Paths};
use crate::cli::{Accel, BootPath, Firmware, RunArgs};
use crate::deps::{self, HostPackage};
use crate::exec::{self, Echo};
use crate::limine::{self, LimineDir};
use crate::serial::{self, Watch, WatchEnd};
use abi::debug_exit;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// A SeaBIOS replacement that starts a PVH kernel in a fraction of SeaBIOS's
/// time under this machine's nested KVM (DESIGN §3).
const QBOOT: &str = "/usr/share/qemu/qboot.rom";

/// Everything needed to start one QEMU.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub medium: BootMedium,
    pub accel: Accel,
    pub smp: u32,
    pub memory: String,
    pub serial: SerialSink,
    /// Start halted with a gdb stub on TCP port 1234 (`-s -S`).
    pub wait_for_gdb: bool,
}

/// What QEMU boots.
#[derive(Clone, Debug)]
pub enum BootMedium {
    /// Direct PVH boot of the kernel ELF with the archive as initrd.
    Pvh {
        kernel: PathBuf,
        archive: PathBuf,
        cmdline: String,
        /// A replacement for SeaBIOS, if any (see [`fast_pvh_firmware`]).
        bios: Option<PathBuf>,
    },
    /// The Limine ISO as a CD-ROM.
    Iso { iso: PathBuf, firmware: IsoFirmware },
}

/// The firmware that starts Limine from the ISO.
#[derive(Clone, Debug)]
pub enum IsoFirmware {
    /// QEMU's default SeaBIOS.
    SeaBios,
    /// OVMF for UEFI, with the drive options it needs.
    Uefi(OvmfDrives),
}

/// Where the guest's COM1 goes.
#[derive(Clone, Debug)]
pub enum SerialSink {
    /// QEMU's stdout (the terminal, or our pipe).
    Stdio,
    /// A file, while gdb owns the terminal.
    File(PathBuf),
}

/// OVMF as Debian installs it: one combined image, or code plus a template
/// of the variable store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ovmf {
    /// `OVMF.fd`: code and variables in one image, loaded with `-bios`.
    Combined(PathBuf),
    /// `OVMF_CODE*.fd` and the matching `OVMF_VARS*.fd`, as pflash drives.
    Split {
        code: PathBuf,
        vars_template: PathBuf,
    },
}

/// The OVMF options for one boot: `-bios` for a combined image, or two
/// pflash drives with a writable copy of the variable store.
#[derive(Clone, Debug)]
pub enum OvmfDrives {
    Bios(PathBuf),
    Pflash { code: PathBuf, vars: PathBuf },
}

impl Ovmf {
    /// The OVMF that Debian's `ovmf` package installed, if any.
    pub fn locate() -> Option<Self> {
        Self::locate_under(Path::new("/usr/share"))
    }

    fn locate_under(share: &Path) -> Option<Self> {
        let combined = share.join("ovmf").join("OVMF.fd");
        if combined.is_file() {
            return Some(Self::Combined(combined));
        }
        let dir = share.join("OVMF");
        [
            ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
            ("OVMF_CODE.fd", "OVMF_VARS.fd"),
        ]
        .into_iter()
        .map(|(code, vars)| (dir.join(code), dir.join(vars)))
        .find(|(code, vars)| code.is_file() && vars.is_file())
        .map(|(code, vars_template)| Self::Split {
            code,
            vars_template,
        })
    }

    /// The drives for one boot; the variable store is copied fresh each time
    /// so that no boot depends on what the previous one wrote.
    fn drives(&self, paths: &Paths) -> Result<OvmfDrives> {
        match self {
            Self::Combined(image) => Ok(OvmfDrives::Bios(image.clone())),
            Self::Split {
                code,
                vars_template,
            } => {
                let vars = paths.ovmf_vars();
                let template = std::fs::read(vars_template)
                    .with_context(|| format!("reading {}", vars_template.display()))?;
                artifacts::write_file(&vars, &template)?;
                Ok(OvmfDrives::Pflash {
                    code: code.clone(),
                    vars,
                })
            }
        }
    }
}

/// Under KVM, qboot instead of SeaBIOS for a PVH boot, when installed.
/// The one place that decides it: drop this if the kernel ever misses the
/// ACPI tables (the RSDP) under qboot.
pub fn fast_pvh_firmware(accel: Accel) -> Option<PathBuf> {
    let qboot = Path::new(QBOOT);
    (accel == Accel::Kvm && qboot.is_file()).then(|| qboot.to_path_buf())
}

/// `auto` means TCG: the reference accelerator for tests (DESIGN §3).
fn effective_accel(accel: Accel) -> Accel {
    match accel {
        Accel::Auto => Accel::Tcg,
        other => other,
    }
}

/// Fails with a clear reason if `accel` cannot be used on this host.
pub fn check_accel(accel: Accel) -> Result<()> {
    if effective_accel(accel) == Accel::Kvm {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .context("--accel kvm needs a usable /dev/kvm; use --accel tcg on this host")?;
    }
    Ok(())
}

/// The QEMU arguments for `config` (see the module docs for the order).
pub fn arguments(config: &QemuConfig) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |words: &[&str]| args.extend(words.iter().map(OsString::from));
    push(&[
        "-machine",
        "q35",
        "-m",
        &config.memory,
        "-smp",
        &config.smp.to_string(),
    ]);
    push(&["-no-reboot", "-display", "none"]);
    match effective_accel(config.accel) {
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host,-arch-capabilities"]),
        Accel::TcgIcount => push(&["-accel", "tcg", "-icount", "shift=0"]),
        // `max`: every feature TCG emulates, SMEP, SMAP and UMIP among them,
        // so the kernel's protections are on in tests as on current hardware
        // (the default qemu64 model has none of them).
        // Several CPUs run on as many host threads (QEMU's default for an
        // x86 guest on an x86 host, said explicitly).
        Accel::Tcg | Accel::Auto if config.smp > 1 => {
            push(&["-accel", "tcg,thread=multi", "-cpu", "max"])
        }
        Accel::Tcg | Accel::Auto => push(&["-accel", "tcg", "-cpu", "max"]),
    }
    match &config.serial {
        SerialSink::Stdio => push(&["-serial", "stdio"]),
        SerialSink::File(path) => push(&["-serial", &format!("file:{}", path.display())]),
    }
    let debug_exit = format!("isa-debug-exit,iobase={:#x},iosize=0x04", debug_exit::PORT);
    push(&["-device", &debug_exit]);

    match &config.medium {
        BootMedium::Pvh {
            kernel,
            archive,
            cmdline,
            bios,
        } => {
            if let Some(bios) = bios {
                push(&["-bios", &bios.display().to_string()]);
            }
            push(&["-kernel", &kernel.display().to_string()]);
            push(&["-initrd", &archive.display().to_string()]);
            push(&["-append", cmdline]);
        }
        BootMedium::Iso { iso, firmware } => {
            match firmware {
                // Without a VGA device SeaBIOS and Limine skip the display and boot much faster.
                IsoFirmware::SeaBios => push(&["-vga", "none"]),
                IsoFirmware::Uefi(OvmfDrives::Bios(image)) => {
                    push(&["-bios", &image.display().to_string()]);
                }
                IsoFirmware::Uefi(OvmfDrives::Pflash { code, vars }) => {
                    let code = drive_file(code);
                    let vars = drive_file(vars);
                    push(&[
                        "-drive",
                        &format!("if=pflash,format=raw,readonly=on,file={code}"),
                    ]);
                    push(&["-drive", &format!("if=pflash,format=raw,file={vars}")]);
                }
            }
            push(&["-cdrom", &iso.display().to_string()]);
        }
    }
    if config.wait_for_gdb {
        push(&["-s", "-S"]);
    }
    args
}

/// A path as the value of a `-drive file=` option, where a comma must be doubled.
fn drive_file(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

fn qemu_command(config: &QemuConfig) -> Command {
    let mut command = Command::new(QEMU);
    command.args(arguments(config));
    command
}

/// What QEMU's exit status says about the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel wrote `debug_exit::SUCCESS`.
    Success,
    /// The kernel wrote `debug_exit::FAILURE`.
    Failure,
    /// QEMU exited with a status that is no verdict.
    Inconclusive(i32),
    /// QEMU was ended by a signal.
    Signalled,
}

impl Verdict {
    /// The verdict of a QEMU exit code (`None`: killed by a signal).
    pub fn of_exit_code(code: Option<i32>) -> Self {
        const SUCCESS: i32 = debug_exit::qemu_exit_status(debug_exit::SUCCESS);
        const FAILURE: i32 = debug_exit::qemu_exit_status(debug_exit::FAILURE);
        match code {
            Some(SUCCESS) => Self::Success,
            Some(FAILURE) => Self::Failure,
            Some(other) => Self::Inconclusive(other),
            None => Self::Signalled,
        }
    }

    /// One sentence for the user.
    pub fn describe(self) -> String {
        let success = debug_exit::qemu_exit_status(debug_exit::SUCCESS);
        let failure = debug_exit::qemu_exit_status(debug_exit::FAILURE);
        match self {
            Self::Success => format!("hinge reported success (QEMU exit status {success})"),
            Self::Failure => format!("hinge reported failure (QEMU exit status {failure})"),
            Self::Inconclusive(0) => {
                "QEMU exited with status 0 and no verdict: the guest reset or \
                                   powered off (a triple fault ends QEMU this way under \
                                   -no-reboot), or QEMU was interrupted"
                    .to_owned()
            }
            Self::Inconclusive(code) => format!(
                "QEMU exited with status {code}, which is no verdict \
                 ({success} = success, {failure} = failure)"
            ),
            Self::Signalled => "QEMU was ended by a signal".to_owned(),
        }
    }

    pub fn exit_code(self) -> ExitCode {
        if self == Self::Success {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Runs QEMU with the terminal as its stdin and stdout, until it exits.
pub fn run_attached(config: &QemuConfig) -> Result<Verdict> {
    let mut command = qemu_command(config);
    let status = command
        .status()
        .with_context(|| format!("cannot start {QEMU}"))?;
    Ok(Verdict::of_exit_code(status.code()))
}

/// Starts QEMU in the background (for gdb), its stdin detached.
pub fn spawn_detached(config: &QemuConfig) -> Result<Child> {
    qemu_command(config)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))
}

/// How a piped QEMU run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// QEMU exited by itself.
    Exited(Verdict),
    /// A serial line matched `--until` (QEMU was then stopped).
    Matched(String),
    /// The time limit passed (QEMU was then stopped).
    TimedOut(Duration),
}

/// A piped QEMU run: how it ended and what it printed.
#[derive(Clone, Debug)]
pub struct CapturedRun {
    pub end: RunEnd,
    /// The serial console, one line each.
    pub serial: String,
    /// QEMU's own messages.
    pub stderr: String,
    /// With typed input: the session's lines from the first prompt on,
    /// neither user output nor the kernel's (`serial::Typist`).
    pub session: Vec<String>,
}

impl CapturedRun {
    /// The serial console and QEMU's messages, for a failure report.
    pub fn log(&self) -> String {
        let mut log = self.serial.clone();
        if !self.stderr.trim().is_empty() {
            log.push_str("--- qemu stderr ---\n");
            log.push_str(&self.stderr);
        }
        log
    }
}

/// Runs QEMU with its serial console piped through us until it exits, a line
/// matches `until`, or `timeout` passes; QEMU is killed in the latter two.
pub fn run_captured(
    config: &QemuConfig,
    until: Option<&Regex>,
    timeout: Option<Duration>,
    echo: bool,
) -> Result<CapturedRun> {
    capture_run(qemu_command(config), until, timeout, echo, None)
}

/// [`run_captured`], typing `input`'s lines into the serial console, each
/// at the shell's next prompt (`serial::Typist`), then ^D.
pub fn run_typed(
    config: &QemuConfig,
    input: Vec<String>,
    until: Option<&Regex>,
    timeout: Option<Duration>,
    echo: bool,
) -> Result<CapturedRun> {
    capture_run(qemu_command(config), until, timeout, echo, Some(input))
}

/// [`run_captured`] for any command that behaves like QEMU.
fn capture_run(
    mut command: Command,
    until: Option<&Regex>,
    timeout: Option<Duration>,
    echo: bool,
    input: Option<Vec<String>>,
) -> Result<CapturedRun> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;
    let stdout = child.stdout.take().context("QEMU's stdout was not piped")?;
    let stderr = child.stderr.take().context("QEMU's stderr was not piped")?;
    let typist = match input {
        Some(lines) => {
            let stdin = child.stdin.take().context("QEMU's stdin was not piped")?;
            Some(serial::Typist::new(lines, shell::PROMPT, Box::new(stdin)))
        }
        None => None,
    };
    let (lines, transcript) = serial::spawn_console_reader(stdout, typist);
    let stderr = serial::spawn_collector(stderr, echo);

    let watch = Watch {
        until,
        deadline: timeout.map(|limit| Instant::now() + limit),
        echo,
    };
    let mut log = String::new();
    let end = match serial::watch(&lines, &watch, &mut log) {
        WatchEnd::Matched(line) => {
            stop(&mut child)?;
            RunEnd::Matched(line)
        }
        WatchEnd::TimedOut => {
            stop(&mut child)?;
            RunEnd::TimedOut(timeout.unwrap_or_default())
        }
        WatchEnd::Closed => {
            let status = child
                .wait()
                .with_context(|| format!("waiting for {QEMU}"))?;
            RunEnd::Exited(Verdict::of_exit_code(status.code()))
        }
    };
    let stderr = stderr.join().unwrap_or_default();
    // The reader ends with QEMU's stdout (it exited or was stopped).
    let session = transcript.join().unwrap_or_default();
    Ok(CapturedRun {
        end,
        serial: log,
        stderr,
        session,
    })
}

fn stop(child: &mut Child) -> Result<()> {
    // Killing fails only if QEMU already exited, which is what we want anyway.
    let _ = child.kill();
    child
        .wait()
        .with_context(|| format!("waiting for {QEMU} to stop"))?;
    Ok(())
}

/// Decides the boot path: the requested one, or Limine when its binaries are
/// given and PVH (with a notice) when not.
fn choose_boot(
    requested: Option<BootPath>,
    limine_dir: Option<&Path>,
) -> Result<(BootPath, Option<LimineDir>)> {
    match (requested, limine_dir) {
        (Some(BootPath::Pvh), _) => Ok((BootPath::Pvh, None)),
        (Some(BootPath::Limine) | None, Some(dir)) => {
            Ok((BootPath::Limine, Some(LimineDir::open(dir)?)))
        }
        (Some(BootPath::Limine), None) => {
            bail!(
                "--boot limine needs the Limine binaries: {}",
                limine::HOW_TO_GET
            )
        }
        (None, None) => {
            eprintln!(
                "note: no Limine binaries given, booting via PVH; for Limine: {}",
                limine::HOW_TO_GET
            );
            Ok((BootPath::Pvh, None))
        }
    }
}

/// `cargo xtask run`.
pub fn run_command(args: &RunArgs) -> Result<ExitCode> {
    let paths = Paths::locate()?;
    if args.firmware == Firmware::Uefi && args.boot == Some(BootPath::Pvh) {
        bail!("--firmware uefi needs --boot limine: a PVH boot starts the kernel without firmware");
    }
    let (boot, limine_dir) = choose_boot(args.boot, args.limine.limine_dir.as_deref())?;
    if args.firmware == Firmware::Uefi && boot == BootPath::Pvh {
        bail!(
            "--firmware uefi needs the Limine boot path: {}",
            limine::HOW_TO_GET
        );
    }
    check_accel(args.machine.accel)?;

    let mut packages = vec![HostPackage::Qemu];
    if boot == BootPath::Limine {
        packages.extend([HostPackage::Xorriso, HostPackage::Mtools]);
    }
    if args.firmware == Firmware::Uefi {
        packages.push(HostPackage::Ovmf);
    }
    deps::ensure_packages(&packages)?;

    let manifest = artifacts::build(&paths, Echo::Live)?;
    let archive = artifacts::write_boot_archive(&paths, &manifest)?;
    let medium = match limine_dir {
        None => BootMedium::Pvh {
            kernel: paths.kernel_elf(),
            archive,
            cmdline: args.cmdline.clone(),
            bios: fast_pvh_firmware(args.machine.accel),
        },
        Some(limine_dir) => {
            let iso = limine::build_iso(&paths, &limine_dir, &args.cmdline)?;
            let firmware = match args.firmware {
                Firmware::Bios => IsoFirmware::SeaBios,
                Firmware::Uefi => {
                    let ovmf = Ovmf::locate().context("OVMF is not installed (package ovmf)")?;
                    IsoFirmware::Uefi(ovmf.drives(&paths)?)
                }
            };
            BootMedium::Iso { iso, firmware }
        }
    };
    let config = QemuConfig {
        medium,
        accel: args.machine.accel,
        smp: args.machine.smp,
        memory: args.machine.memory.clone(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    eprintln!("running: {}", exec::describe(&qemu_command(&config)));

    let input = match &args.input {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .map(String::from)
                .collect(),
        ),
        None => None,
    };
    if !args.headless && input.is_none() {
        let verdict = run_attached(&config)?;
        if verdict != Verdict::Success {
            eprintln!("{}", verdict.describe());
        }
        return Ok(verdict.exit_code());
    }
    let run = match input {
        Some(lines) => run_typed(&config, lines, args.until.as_ref(), args.timeout, true)?,
        None => run_captured(&config, args.until.as_ref(), args.timeout, true)?,
    };
    Ok(match (&run.end, &args.until) {
        (RunEnd::Matched(_), _) => ExitCode::SUCCESS,
        (RunEnd::TimedOut(limit), _) => {
            eprintln!(
                "timed out after {} s; the log follows:\n{}",
                limit.as_secs(),
                run.log()
            );
            ExitCode::FAILURE
        }
        (RunEnd::Exited(verdict), Some(until)) => {
            eprintln!(
                "no serial line matched {:?} before: {}",
                until.as_str(),
                verdict.describe()
            );
            ExitCode::FAILURE
        }
        (RunEnd::Exited(verdict), None) => {
            if *verdict != Verdict::Success {
                eprintln!("{}", verdict.describe());
            }
            verdict.exit_code()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(config: &QemuConfig) -> Vec<String> {
        arguments(config)
            .iter()
            .map(|word| word.to_string_lossy().into_owned())
            .collect()
    }

    fn pvh(accel: Accel) -> QemuConfig {
        QemuConfig {
            medium: BootMedium::Pvh {
                kernel: "k.elf".into(),
                archive: "boot.archive".into(),
                cmdline: "qemu-exit".into(),
                bios: None,
            },
            accel,
            smp: 2,
            memory: "256M".into(),
            serial: SerialSink::Stdio,
            wait_for_gdb: false,
        }
    }

    fn has_sequence(words: &[String], sequence: &[&str]) -> bool {
        words
            .windows(sequence.len())
            .any(|window| window == sequence)
    }

    #[test]
    fn exit_statuses_map_to_verdicts() {
        assert_eq!(Verdict::of_exit_code(Some(33)), Verdict::Success);
        assert_eq!(Verdict::of_exit_code(Some(35)), Verdict::Failure);
        assert_eq!(Verdict::of_exit_code(Some(0)), Verdict::Inconclusive(0));
        assert_eq!(Verdict::of_exit_code(Some(1)), Verdict::Inconclusive(1));
        assert_eq!(Verdict::of_exit_code(None), Verdict::Signalled);
        assert_eq!(Verdict::Success.exit_code(), ExitCode::SUCCESS);
        for failing in [
            Verdict::Failure,
            Verdict::Inconclusive(0),
            Verdict::Signalled,
        ] {
            assert_eq!(failing.exit_code(), ExitCode::FAILURE);
        }
        assert!(
            Verdict::Inconclusive(7)
                .describe()
                .contains("33 = success, 35 = failure")
        );
    }

    #[test]
    fn a_pvh_command_line_has_the_common_spine_and_the_boot_files() {
        let words = words(&pvh(Accel::Auto));
        let expected = [
            "-machine",
            "q35",
            "-m",
            "256M",
            "-smp",
            "2",
            "-no-reboot",
            "-display",
            "none",
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-serial",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel",
            "k.elf",
            "-initrd",
            "boot.archive",
            "-append",
            "qemu-exit",
        ];
        assert_eq!(words, expected);
    }

    #[test]
    fn accelerators_have_their_options() {
        assert!(has_sequence(
            &words(&pvh(Accel::Tcg)),
            &["-accel", "tcg,thread=multi", "-cpu", "max"]
        ));
        let mut one = pvh(Accel::Tcg);
        one.smp = 1;
        assert!(has_sequence(
            &words(&one),
            &["-accel", "tcg", "-cpu", "max"]
        ));
        assert!(has_sequence(
            &words(&pvh(Accel::TcgIcount)),
            &["-accel", "tcg", "-icount", "shift=0"]
        ));
        assert!(has_sequence(
            &words(&pvh(Accel::Kvm)),
            &["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
        ));
    }

    #[test]
    fn iso_boots_pick_their_firmware_and_gdb_halts_the_guest() {
        let mut config = pvh(Accel::Tcg);
        config.medium = BootMedium::Iso {
            iso: "h.iso".into(),
            firmware: IsoFirmware::SeaBios,
        };
        config.wait_for_gdb = true;
        config.serial = SerialSink::File("serial.log".into());
        let seabios = words(&config);
        assert!(has_sequence(&seabios, &["-vga", "none", "-cdrom", "h.iso"]));
        assert!(has_sequence(&seabios, &["-serial", "file:serial.log"]));
        assert!(seabios.ends_with(&["-s".into(), "-S".into()]));
        assert!(!seabios.contains(&"-kernel".into()));

        config.medium = BootMedium::Iso {
            iso: "h.iso".into(),
            firmware: IsoFirmware::Uefi(OvmfDrives::Bios("/usr/share/ovmf/OVMF.fd".into())),
        };
        assert!(has_sequence(
            &words(&config),
            &["-bios", "/usr/share/ovmf/OVMF.fd", "-cdrom"]
        ));

        config.medium = BootMedium::Iso {
            iso: "h.iso".into(),
            firmware: IsoFirmware::Uefi(OvmfDrives::Pflash {
                code: "/a,b/CODE.fd".into(),
                vars: "vars.fd".into(),
            }),
        };
        let uefi = words(&config);
        assert!(uefi.contains(&"if=pflash,format=raw,readonly=on,file=/a,,b/CODE.fd".into()));
        assert!(uefi.contains(&"if=pflash,format=raw,file=vars.fd".into()));
    }

    #[test]
    fn qboot_replaces_seabios_only_under_kvm() {
        assert_eq!(fast_pvh_firmware(Accel::Tcg), None);
        assert_eq!(fast_pvh_firmware(Accel::Auto), None);
        assert_eq!(
            fast_pvh_firmware(Accel::Kvm).is_some(),
            Path::new(QBOOT).is_file()
        );
    }

    #[test]
    fn ovmf_is_found_in_either_debian_layout() {
        let share = std::env::temp_dir().join(format!("xtask-ovmf-test-{}", std::process::id()));
        let split = share.join("OVMF");
        std::fs::create_dir_all(&split).expect("temp dir");
        assert_eq!(Ovmf::locate_under(&share), None);
        for file in ["OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"] {
            std::fs::write(split.join(file), b"").expect("write");
        }
        assert_eq!(
            Ovmf::locate_under(&share),
            Some(Ovmf::Split {
                code: split.join("OVMF_CODE_4M.fd"),
                vars_template: split.join("OVMF_VARS_4M.fd"),
            })
        );
        std::fs::create_dir_all(share.join("ovmf")).expect("temp dir");
        std::fs::write(share.join("ovmf").join("OVMF.fd"), b"").expect("write");
        assert_eq!(
            Ovmf::locate_under(&share),
            Some(Ovmf::Combined(share.join("ovmf/OVMF.fd")))
        );
        std::fs::remove_dir_all(&share).expect("cleanup");
    }

    #[test]
    fn the_boot_path_follows_the_limine_binaries() {
        assert!(matches!(choose_boot(None, None), Ok((BootPath::Pvh, None))));
        assert!(matches!(
            choose_boot(Some(BootPath::Pvh), Some(Path::new("/x"))),
            Ok((BootPath::Pvh, None))
        ));
        let error = choose_boot(Some(BootPath::Limine), None).expect_err("no binaries");
        assert!(error.to_string().contains("git clone"), "{error}");
        assert!(choose_boot(None, Some(Path::new("/nonexistent/limine"))).is_err());
    }

    /// A shell script standing in for QEMU.
    fn fake_qemu(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_captured_run_maps_the_exit_status_and_keeps_both_logs() {
        let run = capture_run(
            fake_qemu("echo 'hinge: ready'; echo 'qemu: warning' >&2; exit 33"),
            None,
            Some(Duration::from_secs(30)),
            false,
            None,
        )
        .expect("sh runs");
        assert_eq!(run.end, RunEnd::Exited(Verdict::Success));
        assert_eq!(
            run.log(),
            "hinge: ready\n--- qemu stderr ---\nqemu: warning\n"
        );

        let run = capture_run(fake_qemu("exit 35"), None, None, false, None).expect("sh runs");
        assert_eq!(run.end, RunEnd::Exited(Verdict::Failure));
        assert_eq!(run.log(), "");
    }

    #[test]
    fn a_captured_run_stops_at_the_until_line() {
        let until = Regex::new("^hinge: ready$").expect("regex");
        let started = Instant::now();
        let run = capture_run(
            fake_qemu("echo booting; echo 'hinge: ready'; exec sleep 30"),
            Some(&until),
            Some(Duration::from_secs(20)),
            false,
            None,
        )
        .expect("sh runs");
        assert_eq!(run.end, RunEnd::Matched("hinge: ready".into()));
        assert_eq!(run.serial, "booting\nhinge: ready\n");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the fake QEMU was killed"
        );
    }

    #[test]
    fn a_captured_run_times_out_with_the_log_so_far() {
        let until = Regex::new("ready").expect("regex");
        let run = capture_run(
            fake_qemu("echo 'stuck in boot'; exec sleep 30"),
            Some(&until),
            Some(Duration::from_millis(300)),
            false,
            None,
        )
        .expect("sh runs");
        assert_eq!(run.end, RunEnd::TimedOut(Duration::from_millis(300)));
        assert_eq!(run.serial, "stuck in boot\n");
    }
}
