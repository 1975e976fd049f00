//! Links the program with userlib's linker script when building for the guest.
fn main() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../userlib/link.ld");
    println!("cargo:rerun-if-changed={script}");
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}
