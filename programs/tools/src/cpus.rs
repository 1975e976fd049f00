//! `cpus`: how many CPUs are online and how many times each has switched
//! to a user thread since boot (CPU_COUNTERS, ABI.md §6.9), so that a
//! person at the prompt sees every CPU run threads. The table's layout is
//! here, host-tested; the kernel calls are in [`run`]. It reads counters
//! and changes nothing.

use alloc::format;
use alloc::string::String;

/// One CPU's row: its index and its dispatch count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuRow {
    /// The CPU's index (0: the boot CPU).
    pub cpu: u32,
    /// Switches to a user thread since boot.
    pub dispatches: u64,
}

/// The table: a header, a row per CPU (the one `cpus` ran on marked),
/// and a summary line.
pub fn table(rows: &[CpuRow], caller_cpu: u32, running: u32, ready: u32) -> String {
    let mut text = String::from("  CPU  DISPATCHES\n");
    for row in rows {
        let mark = if row.cpu == caller_cpu {
            "  (this one)"
        } else {
            ""
        };
        text.push_str(&format!("{:5} {:11}{mark}\n", row.cpu, row.dispatches));
    }
    text.push_str(&format!(
        "{} online, {running} running a thread, {ready} ready\n",
        rows.len()
    ));
    text
}

/// Reads every online CPU's counters and prints the table; the status.
pub fn run(words: &[&str]) -> Result<(), crate::Stop> {
    if !words.is_empty() {
        return Err(crate::Stop::Failed(String::from("usage: cpus"), 2));
    }
    let failed = |e: abi::Error| crate::Stop::Failed(format!("CPU_COUNTERS: {}", e.name()), 1);
    let first = userlib::kernel::cpu_counters(0).map_err(failed)?;
    let mut rows = alloc::vec::Vec::new();
    for cpu in 0..first.online {
        let counters = userlib::kernel::cpu_counters(cpu).map_err(failed)?;
        rows.push(CpuRow {
            cpu,
            dispatches: counters.dispatches,
        });
    }
    let text = table(&rows, first.caller_cpu, first.running, first.ready);
    crate::put(&mut userlib::stdio::stdout(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_cpu_and_the_caller_marked() {
        let rows = [
            CpuRow {
                cpu: 0,
                dispatches: 1234,
            },
            CpuRow {
                cpu: 1,
                dispatches: 7,
            },
        ];
        assert_eq!(
            table(&rows, 1, 2, 0),
            "  CPU  DISPATCHES\n    0        1234\n    1           7  (this one)\n2 online, 2 running a thread, 0 ready\n"
        );
    }
}
