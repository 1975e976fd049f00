//! `cargo xtask bench --peer linux`: Debian's Linux booted in the same QEMU,
//! with the same accelerator and CPU model as the hinge guest, running the
//! `linux-pingpong` ping-pongs as its `/init`, so that under
//! `--accel tcg-icount` both systems are counted in instructions, user and
//! kernel together (`../shared/linux-in-qemu.md`).
//!
//! What it prepares, all cached under `target/linux-peer/`:
//! - the kernel: the package `linux-image-amd64` depends on, downloaded with
//!   `apt-get download` (as root; `apt-get update` first if the package
//!   lists do not name it), its `boot/vmlinuz-*` taken out with
//!   `dpkg-deb`, and the ELF `vmlinux` inside it (the XZ stream of the
//!   bzImage, decompressed by `xz`), which QEMU boots through its PVH
//!   entry much faster than the bzImage under icount;
//! - `/init`: `linux-pingpong` built static for x86_64-unknown-linux-gnu;
//! - the initramfs: a newc cpio with `/init` and `/dev/console` (without
//!   that node Linux gives init no console and nothing is printed).
//!
//! It never touches anything outside the target directory but through apt
//! (which only downloads into the cache), and never runs apt when a kernel
//! is cached.

use super::{Row, System, parse_guest_lines};
use crate::artifacts::{self, Paths};
use crate::cli::Accel;
use crate::exec::{self, Echo};
use crate::qemu::{self, BootMedium, QemuConfig, RunEnd, SerialSink, Verdict};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The meta-package whose dependency is the kernel to boot.
const KERNEL_META_PACKAGE: &str = "linux-image-amd64";

/// The host target `/init` is built for.
const LINUX_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The package (and binary) of `/init`.
const INIT_PACKAGE: &str = "linux-pingpong";

/// The start of an XZ stream (its header magic).
const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];

/// The Linux command line: the serial console, no boot chatter, a panic
/// ends QEMU at once, and the iteration count for init (Linux passes the
/// `key=value` words it does not know to init as its environment).
fn linux_cmdline(iterations: usize) -> String {
    format!(
        "console=ttyS0 quiet panic=-1 {}={iterations}",
        ipc_bench::ITERATIONS_KEY
    )
}

/// The Linux VM's rows, in the guest's unit for `accel`.
pub fn rows(paths: &Paths, accel: Accel, iterations: usize) -> Result<Vec<Row>> {
    if accel == Accel::Kvm {
        bail!(
            "--peer linux needs --accel tcg-icount (or tcg): a stock Linux guest does not boot \
             under this machine's nested KVM (../shared/linux-in-qemu.md)"
        );
    }
    let cache = paths.target.join("linux-peer");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let vmlinux = kernel(&cache)?;
    let init = build_init(paths)?;
    let initramfs = cache.join("initramfs.cpio");
    let init_bytes = std::fs::read(&init).with_context(|| format!("reading {}", init.display()))?;
    artifacts::write_file(&initramfs, &initramfs_bytes(&init_bytes)?)?;

    let config = QemuConfig {
        medium: BootMedium::Pvh {
            kernel: vmlinux,
            archive: initramfs,
            cmdline: linux_cmdline(iterations),
            bios: None,
        },
        accel,
        smp: 1,
        memory: "256M".to_owned(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    eprintln!("bench: booting Linux with the ping-pongs as init");
    // Boot (~5 s under icount) and ten rows of warm-up and measured rounds.
    let timeout = Duration::from_secs(180) + Duration::from_millis(100) * iterations as u32;
    let run = qemu::run_captured(&config, None, Some(timeout), false)?;
    let failure = |reason: String| {
        anyhow::anyhow!(
            "the Linux VM failed: {reason}\n--- serial log ---\n{}",
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
    let unit = super::unit_of(accel);
    let mut rows = parse_guest_lines(&run.serial, unit).map_err(|e| failure(format!("{e:#}")))?;
    for row in &mut rows {
        row.system = System::LinuxVm;
    }
    if rows.is_empty() {
        return Err(failure("it printed no row".to_owned()));
    }
    Ok(rows)
}

/// The cached `vmlinux`, fetched and extracted first if it is not there.
fn kernel(cache: &Path) -> Result<PathBuf> {
    let vmlinux = cache.join("vmlinux");
    if vmlinux.is_file() {
        return Ok(vmlinux);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "--peer linux fetches Debian's {KERNEL_META_PACKAGE} with apt the first time, which \
             needs root; run it as root once (the kernel is then cached as {})",
            vmlinux.display()
        );
    }
    let package = match kernel_package() {
        Ok(package) => package,
        Err(_) => {
            eprintln!("bench: apt-get update (the package lists do not name the kernel)");
            exec::run(Command::new("apt-get").arg("update"), Echo::OnFailure)?;
            kernel_package()?
        }
    };
    eprintln!(
        "bench: downloading {package} (once; cached in {})",
        cache.display()
    );
    exec::run(
        Command::new("apt-get")
            .current_dir(cache)
            // apt's download user cannot write into the target directory.
            .args(["-o", "APT::Sandbox::User=root", "download", &package]),
        Echo::OnFailure,
    )?;
    let deb = std::fs::read_dir(cache)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&package) && name.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download left no {package}*.deb"))?;
    let bzimage = extract_bzimage(&deb, cache)?;
    let bytes =
        std::fs::read(&bzimage).with_context(|| format!("reading {}", bzimage.display()))?;
    let elf = decompress_vmlinux(&bytes)?;
    artifacts::write_file(&vmlinux, &elf)?;
    Ok(vmlinux)
}

/// The real kernel package: `Depends: linux-image-6.1.0-NN-amd64`.
fn kernel_package() -> Result<String> {
    let output = exec::capture(Command::new("apt-cache").args(["depends", KERNEL_META_PACKAGE]))?;
    let text = String::from_utf8_lossy(&output.stdout);
    depends_on_kernel(&text).with_context(|| {
        format!("`apt-cache depends {KERNEL_META_PACKAGE}` names no kernel package:\n{text}")
    })
}

/// The `linux-image-*` package an `apt-cache depends` listing names.
fn depends_on_kernel(listing: &str) -> Option<String> {
    listing.lines().find_map(|line| {
        let package = line.trim().strip_prefix("Depends:")?.trim();
        (package.starts_with("linux-image-") && package != KERNEL_META_PACKAGE)
            .then(|| package.to_owned())
    })
}

/// `boot/vmlinuz-*` of the package, written into `cache`.
fn extract_bzimage(deb: &Path, cache: &Path) -> Result<PathBuf> {
    let tree = cache.join("package");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree)?;
    exec::run(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree),
        Echo::OnFailure,
    )?;
    let boot = tree.join("boot");
    let bzimage = std::fs::read_dir(&boot)
        .with_context(|| format!("{} has no boot/ directory", deb.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("vmlinuz-"))
        })
        .with_context(|| format!("{} has no boot/vmlinuz-*", deb.display()))?;
    let kept = cache.join("vmlinuz");
    std::fs::copy(&bzimage, &kept)?;
    let _ = std::fs::remove_dir_all(&tree);
    Ok(kept)
}

/// The ELF kernel inside a bzImage: its XZ stream, decompressed by `xz`
/// (`--single-stream`: the bzImage goes on after the stream).
fn decompress_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>> {
    let start = bzimage
        .windows(XZ_MAGIC.len())
        .position(|window| window == XZ_MAGIC)
        .context("the bzImage holds no XZ stream (not an XZ-compressed kernel)")?;
    let mut child = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start xz (Debian's xz-utils)")?;
    let mut stdin = child.stdin.take().context("xz's stdin was not piped")?;
    let stream = bzimage[start..].to_vec();
    // Fed from a thread: xz writes its output while it reads.
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &stream));
    let output = child.wait_with_output().context("waiting for xz")?;
    // xz stops reading at the stream's end: a broken pipe after it is fine.
    let _ = feeder.join();
    if !output.status.success() {
        bail!(
            "xz could not decompress the kernel ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if !output.stdout.starts_with(b"\x7fELF") {
        bail!("the bzImage's XZ stream is not an ELF kernel");
    }
    Ok(output.stdout)
}

/// Builds `/init` static for Linux; its path.
fn build_init(paths: &Paths) -> Result<PathBuf> {
    eprintln!("bench: building {INIT_PACKAGE} (static, {LINUX_TARGET})");
    exec::run(
        exec::cargo(paths)
            .args([
                "build",
                "--release",
                "--package",
                INIT_PACKAGE,
                "--bin",
                INIT_PACKAGE,
                "--target",
                LINUX_TARGET,
            ])
            // For this target only: the host's own builds keep their flags.
            .env(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                "-C target-feature=+crt-static",
            ),
        Echo::OnFailure,
    )?;
    Ok(paths
        .target
        .join(LINUX_TARGET)
        .join("release")
        .join(INIT_PACKAGE))
}

/// One file of the initramfs.
struct CpioEntry<'a> {
    name: &'a str,
    mode: u32,
    /// Major and minor number of a device node.
    device: (u32, u32),
    data: &'a [u8],
}

/// A newc cpio holding `/dev/console` (character device 5:1) and `/init`.
fn initramfs_bytes(init: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    const DIRECTORY: u32 = 0o040_755;
    const CONSOLE: u32 = 0o020_600;
    const EXECUTABLE: u32 = 0o100_755;
    let entries = [
        CpioEntry {
            name: "dev",
            mode: DIRECTORY,
            device: (0, 0),
            data: &[],
        },
        CpioEntry {
            name: "dev/console",
            mode: CONSOLE,
            device: (5, 1),
            data: &[],
        },
        CpioEntry {
            name: "init",
            mode: EXECUTABLE,
            device: (0, 0),
            data: init,
        },
    ];
    let mut out = Vec::new();
    for (inode, entry) in entries.into_iter().enumerate() {
        let size = u32::try_from(entry.data.len()).context("init is over 4 GiB")?;
        let mut writer = cpio::NewcBuilder::new(entry.name)
            .ino(inode as u32 + 1)
            .mode(entry.mode)
            .nlink(if entry.mode == DIRECTORY { 2 } else { 1 })
            .rdev_major(entry.device.0)
            .rdev_minor(entry.device.1)
            .write(&mut out, size);
        writer.write_all(entry.data)?;
        writer.finish()?;
    }
    cpio::newc::trailer(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_comes_from_the_meta_package() {
        let listing = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
        assert_eq!(
            depends_on_kernel(listing).as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(depends_on_kernel("linux-image-amd64\n"), None);
    }

    #[test]
    fn the_vmlinux_is_found_after_the_xz_magic() {
        assert!(decompress_vmlinux(b"no stream here").is_err());
    }

    #[test]
    fn the_initramfs_holds_the_console_and_init() {
        let bytes = initramfs_bytes(b"\x7fELF...").expect("cpio");
        let mut names = Vec::new();
        let mut rest = &bytes[..];
        loop {
            let reader = cpio::NewcReader::new(rest).expect("an entry");
            if reader.entry().is_trailer() {
                break;
            }
            names.push((
                reader.entry().name().to_owned(),
                reader.entry().mode(),
                reader.entry().rdev_major(),
                reader.entry().rdev_minor(),
            ));
            rest = reader.finish().expect("the next entry");
        }
        assert_eq!(
            names,
            [
                ("dev".to_owned(), 0o040_755, 0, 0),
                ("dev/console".to_owned(), 0o020_600, 5, 1),
                ("init".to_owned(), 0o100_755, 0, 0),
            ]
        );
    }

    #[test]
    fn init_gets_the_iteration_count_as_environment() {
        let line = linux_cmdline(1234);
        assert!(line.contains("console=ttyS0"));
        assert_eq!(ipc_bench::iterations(&line), Ok(1234));
    }
}
