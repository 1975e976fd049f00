//! The host tools hinge needs beyond the Rust toolchain, and installing them
//! when they are missing: the bare-metal Rust target through rustup (which
//! does not add a toolchain file's targets by itself) and Debian packages
//! through apt-get when running as root. Without root it prints the exact
//! command instead of guessing at sudo.

use crate::artifacts::{GUEST_TARGET, Paths};
use crate::exec::{self, Echo};
use crate::qemu;
use anyhow::{Result, bail};
use std::process::Command;

/// A Debian package that some xtask command needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostPackage {
    /// `qemu-system-x86_64`.
    Qemu,
    /// OVMF, the UEFI firmware for `--firmware uefi`.
    Ovmf,
    /// `xorriso`, which makes the Limine ISO.
    Xorriso,
    /// `mtools`, which xorriso's EFI boot image handling may call on.
    Mtools,
}

impl HostPackage {
    /// The package's name in Debian.
    pub fn apt_name(self) -> &'static str {
        match self {
            Self::Qemu => "qemu-system-x86",
            Self::Ovmf => "ovmf",
            Self::Xorriso => "xorriso",
            Self::Mtools => "mtools",
        }
    }

    fn is_installed(self) -> bool {
        match self {
            Self::Qemu => exec::find_in_path(qemu::QEMU).is_some(),
            Self::Ovmf => qemu::Ovmf::locate().is_some(),
            Self::Xorriso => exec::find_in_path("xorriso").is_some(),
            Self::Mtools => exec::find_in_path("mformat").is_some(),
        }
    }
}

/// Adds [`GUEST_TARGET`] to the workspace's pinned toolchain if it lacks it.
pub fn ensure_rust_target(paths: &Paths) -> Result<()> {
    let Some(rustup) = exec::find_in_path("rustup") else {
        eprintln!("note: rustup is not on PATH; assuming the {GUEST_TARGET} target is installed");
        return Ok(());
    };
    // Run in the workspace so rustup picks the toolchain rust-toolchain.toml pins.
    let mut list = Command::new(&rustup);
    list.current_dir(&paths.workspace)
        .args(["target", "list", "--installed"]);
    let installed = exec::capture(&mut list)?;
    if !installed.status.success() {
        bail!(
            "`{}` failed:\n{}",
            exec::describe(&list),
            exec::combined_output(&installed)
        );
    }
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == GUEST_TARGET)
    {
        return Ok(());
    }
    println!("installing the {GUEST_TARGET} Rust target");
    let mut add = Command::new(&rustup);
    add.current_dir(&paths.workspace)
        .args(["target", "add", GUEST_TARGET]);
    exec::run(&mut add, Echo::Live)
}

/// Makes sure every package in `packages` is installed: with apt-get when
/// running as root, otherwise by failing with the command to run.
pub fn ensure_packages(packages: &[HostPackage]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|package| !package.is_installed())
        .map(|package| package.apt_name())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing.join(" ");
    if !running_as_root() {
        bail!(
            "missing host packages: {names}; as root, run: \
             apt-get update && apt-get install -y --no-install-recommends {names}"
        );
    }
    println!("installing {names} with apt-get");
    let apt = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        exec::run(&mut command, Echo::Live)
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)?;

    let still_missing: Vec<&str> = packages
        .iter()
        .filter(|package| !package.is_installed())
        .map(|package| package.apt_name())
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "apt-get installed {names}, but {} is still not usable",
            still_missing.join(" ")
        );
    }
    Ok(())
}

/// Whether this process's effective user is root, from `/proc/self/status`.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| effective_uid(&status))
        == Some(0)
}

/// The effective UID in the text of `/proc/<pid>/status` (`Uid: real effective saved fs`).
fn effective_uid(status: &str) -> Option<u32> {
    let uids = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_uid() {
        assert_eq!(
            effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\n"),
            Some(0)
        );
        assert_eq!(effective_uid("Uid:\t0\t1000\t1000\t1000\n"), Some(1000));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn package_names_are_debian_names() {
        let all = [
            HostPackage::Qemu,
            HostPackage::Ovmf,
            HostPackage::Xorriso,
            HostPackage::Mtools,
        ];
        let names: Vec<_> = all.iter().map(|package| package.apt_name()).collect();
        assert_eq!(names, ["qemu-system-x86", "ovmf", "xorriso", "mtools"]);
    }
}
