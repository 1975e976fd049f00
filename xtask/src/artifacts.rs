//! What gets built and where it lands. [`Paths`] is the single source of
//! every artifact path; [`build`] runs the cargo builds for the bare-metal
//! target and [`write_boot_archive`] packs the manifest and programs.
//!
//! Layout under the cargo target directory:
//! - `x86_64-unknown-none/release/kernel`: the kernel ELF (also each program's ELF, by package)
//! - `hinge/boot.archive`: the boot archive
//! - `hinge/hinge.iso`, `hinge/iso-root/`: the Limine ISO and its staging tree
//! - `hinge/limine-tool/limine`: the Limine host tool, compiled from the checkout's `limine.c`
//! - `hinge/broken-*.archive`: deliberately damaged archives for the boot tests
//! - `hinge/gdb-serial.log`: the serial console during `cargo xtask gdb`
//! - `hinge/ovmf-vars.fd`: a fresh copy of OVMF's variable store for a UEFI boot

use crate::cli::ImageArgs;
use crate::exec::Echo;
use crate::{deps, exec, limine};
use anyhow::{Context, Result};
use image::{ArchiveBuilder, MANIFEST_ENTRY, Manifest, POLICY_ENTRY};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The target every guest binary is built for.
pub const GUEST_TARGET: &str = "x86_64-unknown-none";

/// The cargo package (and binary) of the kernel.
pub const KERNEL_PACKAGE: &str = "kernel";

/// The kernel's portable core, linted for the guest target beside the kernel.
pub const KERNEL_CORE_PACKAGE: &str = "kernel-core";

/// Where the workspace and its artifacts are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The workspace root (where the top `Cargo.toml` is).
    pub workspace: PathBuf,
    /// The cargo target directory, absolute.
    pub target: PathBuf,
}

impl Paths {
    /// The workspace this xtask was built from, and its target directory:
    /// `$CARGO_TARGET_DIR` if set, else `<workspace>/target`.
    pub fn locate() -> Result<Self> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => std::path::absolute(&dir)
                .with_context(|| format!("resolving CARGO_TARGET_DIR {dir:?}"))?,
            _ => workspace.join("target"),
        };
        Ok(Self { workspace, target })
    }

    /// The system manifest in the source tree.
    pub fn manifest(&self) -> PathBuf {
        self.workspace.join("image").join("system.toml")
    }

    /// The release ELF of `package` built for [`GUEST_TARGET`].
    pub fn guest_elf(&self, package: &str) -> PathBuf {
        self.target.join(GUEST_TARGET).join("release").join(package)
    }

    /// The kernel ELF.
    pub fn kernel_elf(&self) -> PathBuf {
        self.guest_elf(KERNEL_PACKAGE)
    }

    /// The directory of everything xtask itself produces.
    pub fn hinge_dir(&self) -> PathBuf {
        self.target.join("hinge")
    }

    /// The boot archive.
    pub fn boot_archive(&self) -> PathBuf {
        self.hinge_dir().join("boot.archive")
    }

    /// A damaged copy of the boot archive, for the boot tests.
    pub fn broken_archive(&self, damage: &str) -> PathBuf {
        self.hinge_dir().join(format!("broken-{damage}.archive"))
    }

    /// The bootable Limine ISO.
    pub fn iso(&self) -> PathBuf {
        self.hinge_dir().join("hinge.iso")
    }

    /// The tree the ISO is made from.
    pub fn iso_root(&self) -> PathBuf {
        self.hinge_dir().join("iso-root")
    }

    /// The Limine host tool (`limine bios-install`).
    pub fn limine_tool(&self) -> PathBuf {
        self.hinge_dir().join("limine-tool").join("limine")
    }

    /// A writable copy of OVMF's variable store, for firmware that needs one.
    pub fn ovmf_vars(&self) -> PathBuf {
        self.hinge_dir().join("ovmf-vars.fd")
    }

    /// Where the serial console goes while gdb owns the terminal.
    pub fn gdb_serial_log(&self) -> PathBuf {
        self.hinge_dir().join("gdb-serial.log")
    }
}

/// The system manifest, as text (what goes into the archive) and parsed.
#[derive(Debug)]
pub struct SystemManifest {
    pub text: String,
    pub parsed: Manifest,
}

impl SystemManifest {
    pub fn load(paths: &Paths) -> Result<Self> {
        let path = paths.manifest();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let parsed =
            Manifest::parse(&text).with_context(|| format!("{} is malformed", path.display()))?;
        Ok(Self { text, parsed })
    }

    /// Each distinct package that builds a program, in manifest order.
    pub fn program_packages(&self) -> Vec<&str> {
        let mut packages: Vec<&str> = Vec::new();
        for program in &self.parsed.programs {
            if !packages.contains(&program.package.as_str()) {
                packages.push(&program.package);
            }
        }
        packages
    }
}

/// Builds the kernel, then every program the manifest names, all in release
/// mode for [`GUEST_TARGET`]. Each package is its own cargo invocation, so
/// the kernel's features never unify with a program's.
pub fn build(paths: &Paths, echo: Echo) -> Result<SystemManifest> {
    deps::ensure_rust_target(paths)?;
    let manifest = SystemManifest::load(paths)?;
    for package in std::iter::once(KERNEL_PACKAGE).chain(manifest.program_packages()) {
        let mut cargo = exec::cargo(paths);
        cargo.args([
            "build",
            "--release",
            "--package",
            package,
            "--target",
            GUEST_TARGET,
        ]);
        exec::run(&mut cargo, echo)
            .with_context(|| format!("building {package} for {GUEST_TARGET}"))?;
    }
    Ok(manifest)
}

/// Packs the manifest text, its compiled policy (what procman reads) and
/// each program's ELF (under its manifest name) into [`Paths::boot_archive`].
pub fn write_boot_archive(paths: &Paths, manifest: &SystemManifest) -> Result<PathBuf> {
    let mut archive = ArchiveBuilder::new()
        .add(MANIFEST_ENTRY, manifest.text.as_bytes())?
        .add(POLICY_ENTRY, image::policy::compile(&manifest.parsed))?;
    for program in &manifest.parsed.programs {
        let elf_path = paths.guest_elf(&program.package);
        let elf = std::fs::read(&elf_path).with_context(|| {
            format!(
                "reading program {:?} from {}",
                program.name,
                elf_path.display()
            )
        })?;
        // What a loader reads, no more: debug information and symbols stay
        // in target/ (about three quarters of each file), so the archive
        // every boot loads is a fraction of the size.
        let loadable = image::program::loadable_part(&elf).map_err(|error| {
            anyhow::anyhow!(
                "program {:?} ({}) is not a program hinge runs: {error:?}",
                program.name,
                elf_path.display()
            )
        })?;
        archive = archive.add(&program.name, loadable)?;
    }
    let path = paths.boot_archive();
    write_file(&path, &archive.build())?;
    Ok(path)
}

/// Writes `bytes` to `path`, creating its directory.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// `cargo xtask image`.
pub fn image_command(args: &ImageArgs) -> Result<ExitCode> {
    let paths = Paths::locate()?;
    let manifest = build(&paths, Echo::Live)?;
    println!("kernel:       {}", paths.kernel_elf().display());
    println!(
        "boot archive: {}",
        write_boot_archive(&paths, &manifest)?.display()
    );
    if let Some(dir) = &args.limine.limine_dir {
        let limine = limine::LimineDir::open(dir)?;
        deps::ensure_packages(&[deps::HostPackage::Xorriso, deps::HostPackage::Mtools])?;
        println!(
            "iso:          {}",
            limine::build_iso(&paths, &limine, &args.cmdline)?.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
