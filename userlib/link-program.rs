//! The build script of every user program (named by `build` in its
//! Cargo.toml): links its binaries with userlib's linker script
//! (`userlib/link.ld`) when building for the guest, and does nothing on the
//! host. It must never be the kernel's: the kernel has its own script.
use std::path::{Path, PathBuf};

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // The program sits somewhere below the workspace root, beside userlib.
    let script: Option<PathBuf> = Path::new(&manifest)
        .ancestors()
        .map(|folder| folder.join("userlib/link.ld"))
        .find(|candidate| candidate.is_file());
    let Some(script) = script else {
        panic!("no userlib/link.ld above {manifest}");
    };
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
