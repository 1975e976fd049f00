//! `cargo xtask gdb`: boot the kernel via PVH under TCG, halted before its
//! first instruction with QEMU's gdb stub listening, and attach gdb with the
//! kernel's symbols. The serial console goes to a file because gdb owns the
//! terminal.

use crate::artifacts::{self, Paths};
use crate::cli::{Accel, GdbArgs};
use crate::deps::{self, HostPackage};
use crate::exec::{self, Echo};
use crate::qemu::{self, BootMedium, QemuConfig, SerialSink, Verdict};
use anyhow::{Context, Result, bail};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

/// The TCP port of QEMU's gdb stub under `-s`.
const GDB_PORT: u16 = 1234;

/// `cargo xtask gdb`.
pub fn gdb_command(args: &GdbArgs) -> Result<ExitCode> {
    let paths = Paths::locate()?;
    deps::ensure_packages(&[HostPackage::Qemu])?;
    let manifest = artifacts::build(&paths, Echo::Live)?;
    let archive = artifacts::write_boot_archive(&paths, &manifest)?;
    let kernel = paths.kernel_elf();
    let serial_log = paths.gdb_serial_log();
    let config = QemuConfig {
        medium: BootMedium::Pvh {
            kernel: kernel.clone(),
            archive,
            cmdline: args.cmdline.clone(),
            bios: None,
        },
        accel: Accel::Tcg,
        smp: 1,
        memory: args.memory.clone(),
        serial: SerialSink::File(serial_log.clone()),
        wait_for_gdb: true,
    };

    // Symbols first, so gdb knows the architecture before it connects.
    let mut gdb = Command::new("gdb");
    gdb.arg("-ex")
        .arg(format!("symbol-file {}", kernel.display()))
        .arg("-ex")
        .arg(format!("target remote :{GDB_PORT}"));

    let mut qemu = qemu::spawn_detached(&config)?;
    wait_for_stub(&mut qemu)?;
    println!("QEMU is halted with its gdb stub on port {GDB_PORT}");
    println!("serial console: {}", serial_log.display());
    if exec::find_in_path("gdb").is_none() {
        println!(
            "gdb is not installed; attach with: {}",
            exec::describe(&gdb)
        );
        let status = qemu.wait().context("waiting for QEMU")?;
        return Ok(report(Verdict::of_exit_code(status.code())));
    }

    let gdb_status = gdb.status().context("cannot start gdb");
    // gdb is done (or never started): QEMU has no one left to serve.
    let _ = qemu.kill();
    qemu.wait().context("waiting for QEMU to stop")?;
    Ok(if gdb_status?.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Waits until QEMU listens on [`GDB_PORT`], so gdb's first `target remote`
/// does not race QEMU's start. It watches the kernel's socket table instead of
/// probing the port, because a probe connection would count as a gdb session.
fn wait_for_stub(qemu: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = qemu.try_wait().context("checking on QEMU")? {
            bail!("QEMU exited before gdb could attach ({status})");
        }
        let tables = ["/proc/net/tcp", "/proc/net/tcp6"].map(std::fs::read_to_string);
        if tables
            .iter()
            .flatten()
            .any(|table| listens_on(table, GDB_PORT))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("QEMU did not open its gdb stub on port {GDB_PORT} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a `/proc/net/tcp` table has a socket listening on local `port`
/// (`local_address` is `HEXADDR:HEXPORT`, state `0A` is LISTEN).
fn listens_on(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let local = fields.next().and_then(|address| address.rsplit_once(':'));
        let state = fields.nth(1);
        local.is_some_and(|(_, hex)| u16::from_str_radix(hex, 16) == Ok(port))
            && state == Some("0A")
    })
}

fn report(verdict: Verdict) -> ExitCode {
    println!("{}", verdict.describe());
    verdict.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP_TABLE: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:04D2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F90 0100007F:04D2 01 00000000:00000000 00:00000000 00000000     0        0 2 1
";

    #[test]
    fn finds_the_listening_stub_only() {
        assert!(listens_on(TCP_TABLE, 1234));
        // Port 8080 (0x1F90) has a connection, not a listener; 1235 has nothing.
        assert!(!listens_on(TCP_TABLE, 8080));
        assert!(!listens_on(TCP_TABLE, 1235));
        assert!(!listens_on("", 1234));
    }
}
