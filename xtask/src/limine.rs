//! The Limine boot path on the host side: finding a Limine binary checkout,
//! compiling its `limine` host tool, and assembling the hybrid BIOS/UEFI ISO
//! with xorriso and `limine bios-install`. The paths inside the ISO and the
//! text of `limine.conf` come from `image::limine_conf`.
//!
//! Limine's binaries come from no package registry, so they are never
//! fetched here: the user points at a checkout. Nothing is ever written into
//! that checkout; the tool and the ISO tree live under `target/hinge/`.

use crate::artifacts::{Paths, write_file};
use crate::exec::{self, Echo};
use anyhow::{Context, Result, bail};
use image::limine_conf;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The one-line way to obtain the binaries, for messages and the README.
pub const HOW_TO_GET: &str = "git clone https://github.com/limine-bootloader/limine.git \
                              --branch=v8.x-binary --depth=1 <dir>, then pass --limine-dir <dir> \
                              (or set LIMINE_DIR)";

/// The files of a checkout that the ISO and the host tool are made from.
const BIOS_STAGE: &str = "limine-bios.sys";
const BIOS_CD_IMAGE: &str = "limine-bios-cd.bin";
const UEFI_CD_IMAGE: &str = "limine-uefi-cd.bin";
const UEFI_LOADER: &str = "BOOTX64.EFI";
const HOST_TOOL_SOURCE: &str = "limine.c";
const REQUIRED_FILES: [&str; 5] = [
    BIOS_STAGE,
    BIOS_CD_IMAGE,
    UEFI_CD_IMAGE,
    UEFI_LOADER,
    HOST_TOOL_SOURCE,
];

/// A directory known to hold every file of a Limine binary release that we use.
#[derive(Clone, Debug)]
pub struct LimineDir {
    dir: PathBuf,
}

impl LimineDir {
    /// Checks that `dir` holds the Limine files the ISO needs.
    pub fn open(dir: &Path) -> Result<Self> {
        let missing: Vec<&str> = REQUIRED_FILES
            .into_iter()
            .filter(|file| !dir.join(file).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} is not a Limine binary checkout (missing {}); get one with: {HOW_TO_GET}",
                dir.display(),
                missing.join(", ")
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The `limine` host tool, compiled from the checkout's `limine.c` into
/// [`Paths::limine_tool`] when missing or older than its source.
pub fn host_tool(paths: &Paths, limine: &LimineDir) -> Result<PathBuf> {
    let tool = paths.limine_tool();
    let source = limine.file(HOST_TOOL_SOURCE);
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let up_to_date = match (modified(&tool), modified(&source)) {
        (Some(built), Some(written)) => built >= written,
        _ => false,
    };
    if !up_to_date {
        let dir = tool
            .parent()
            .context("the Limine tool path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cc = Command::new("cc");
        cc.args(["-O2", "-std=c99"])
            .arg(&source)
            .arg("-o")
            .arg(&tool);
        exec::run(&mut cc, Echo::OnFailure).context("compiling the Limine host tool")?;
    }
    Ok(tool)
}

/// Builds [`Paths::iso`] from the kernel, the boot archive and the Limine
/// files, with `cmdline` as the kernel command line, and makes it
/// BIOS-bootable. The kernel and archive must already be built.
pub fn build_iso(paths: &Paths, limine: &LimineDir, cmdline: &str) -> Result<PathBuf> {
    let tool = host_tool(paths, limine)?;
    let root = paths.iso_root();
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }

    let config = limine_conf::render(
        &limine_conf::boot_path(limine_conf::KERNEL_FILE),
        &limine_conf::boot_path(limine_conf::ARCHIVE_FILE),
        cmdline,
    )?;
    write_file(&root.join(limine_conf::CONFIG_FILE), config.as_bytes())?;
    let limine_files = root.join(limine_conf::LIMINE_DIR);
    let copies = [
        (paths.kernel_elf(), root.join(limine_conf::KERNEL_FILE)),
        (paths.boot_archive(), root.join(limine_conf::ARCHIVE_FILE)),
        (limine.file(BIOS_STAGE), limine_files.join(BIOS_STAGE)),
        (limine.file(BIOS_CD_IMAGE), limine_files.join(BIOS_CD_IMAGE)),
        (limine.file(UEFI_CD_IMAGE), limine_files.join(UEFI_CD_IMAGE)),
        (
            limine.file(UEFI_LOADER),
            root.join("EFI").join("BOOT").join(UEFI_LOADER),
        ),
    ];
    for (from, to) in &copies {
        copy_file(from, to)?;
    }

    let iso = paths.iso();
    let mut xorriso = Command::new("xorriso");
    xorriso
        .args(["-as", "mkisofs", "-R", "-r", "-J"])
        .args([
            "-b",
            &format!("{}/{BIOS_CD_IMAGE}", limine_conf::LIMINE_DIR),
        ])
        .args(["-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"])
        .args(["-hfsplus", "-apm-block-size", "2048"])
        .args([
            "--efi-boot",
            &format!("{}/{UEFI_CD_IMAGE}", limine_conf::LIMINE_DIR),
        ])
        .args([
            "-efi-boot-part",
            "--efi-boot-image",
            "--protective-msdos-label",
        ])
        .arg(&root)
        .arg("-o")
        .arg(&iso);
    exec::run(&mut xorriso, Echo::OnFailure).context("making the ISO")?;

    let mut install = Command::new(&tool);
    install.arg("bios-install").arg(&iso);
    exec::run(&mut install, Echo::OnFailure).context("making the ISO BIOS-bootable")?;
    Ok(iso)
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_checkout_is_refused_with_what_is_missing_and_how_to_get_it() {
        let dir = std::env::temp_dir().join(format!("xtask-limine-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join(BIOS_STAGE), b"").expect("write");
        let error = LimineDir::open(&dir).expect_err("incomplete");
        let message = error.to_string();
        assert!(message.contains("missing limine-bios-cd.bin"), "{message}");
        assert!(!message.contains(BIOS_STAGE), "{message}");
        assert!(message.contains("--branch=v8.x-binary"), "{message}");
        for file in REQUIRED_FILES {
            std::fs::write(dir.join(file), b"").expect("write");
        }
        assert!(LimineDir::open(&dir).is_ok());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
