//! `cargo xtask test`, the CI command: every check the project has, each
//! counted, closing with the one line `N passed, M failed`.
//!
//! Steps, in order (a failed step does not stop the later ones):
//! 1. host dependencies: the Rust target and QEMU (1 test);
//! 2. `cargo fmt --check`, host clippy, kernel clippy for the target, and
//!    clippy of userlib and the user programs for the target (1 test each);
//! 3. `cargo test --workspace --no-fail-fast` (every test it runs counts);
//! 4. the kernel and boot-archive build (1 test);
//! 5. the boot cases of [`BOOT_CASES`] under QEMU via PVH (1 test each);
//! 6. the ABI conformance suite under QEMU via PVH, with one CPU and then
//!    with four (each case is 1 test each time, see `crate::conformance`).
//!
//! The boots of steps 5 and 6 run `--jobs` at a time (default: the host's
//! CPUs), each its own QEMU; their lines come out in the order above.

use crate::artifacts::{
    self, GUEST_TARGET, KERNEL_CORE_PACKAGE, KERNEL_PACKAGE, Paths, SystemManifest,
};
use crate::cli::{Accel, TestArgs};
use crate::deps::{self, HostPackage};
use crate::exec::{self, Echo};
use crate::qemu::{self, BootMedium, CapturedRun, QemuConfig, RunEnd, SerialSink, Verdict};
use anyhow::Result;
use image::cmdline;
use regex::Regex;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, mpsc};
use std::time::{Duration, Instant};

/// One boot of the kernel in QEMU and what it must show.
#[derive(Debug)]
struct BootCase {
    name: &'static str,
    /// Kernel command-line words before `qemu-exit` (e.g. `init=NAME`).
    cmdline: BootWords,
    archive: ArchiveDamage,
    expected: Verdict,
    /// Each must appear somewhere in the serial log.
    log_must_contain: &'static [&'static str],
    /// Each regex must match a line of the serial log (`^...$`: a whole line).
    log_must_match: &'static [&'static str],
    /// How long the boot may take before it counts as hung.
    timeout: BootTimeout,
    /// Guest memory (QEMU's `-m`).
    memory: &'static str,
    /// Processors (QEMU's `-smp`).
    smp: u32,
    /// Lines typed at the shell's prompts on the serial console, one per
    /// prompt, then ^D (`serial::Typist`); none: nothing is typed.
    input: &'static [&'static str],
    /// With input: the session exactly, from the first prompt on, without
    /// user output (`| `) and the kernel's lines.
    session: &'static [&'static str],
}

/// ipc-test's command line: under KVM its signal stress sends fewer
/// interruptions (`signal-interruptions=`, see tests/guest/ipc-test's
/// `signals`), each of which costs a few traps there.
const IPC_TEST_WORDS: BootWords = BootWords {
    tcg: "init=ipc-test",
    kvm: "init=ipc-test signal-interruptions=2000",
};

/// A boot case's command-line words per accelerator: a case whose length
/// is set by a count (the fuzzer's traps) asks for less where traps are slow.
#[derive(Clone, Copy, Debug)]
struct BootWords {
    /// TCG (the reference, and `auto`) and TCG with icount.
    tcg: &'static str,
    /// This machine kind's nested KVM.
    kvm: &'static str,
}

impl BootWords {
    const fn both(words: &'static str) -> Self {
        BootWords {
            tcg: words,
            kvm: words,
        }
    }

    fn for_accel(self, accel: Accel) -> &'static str {
        match accel {
            Accel::Kvm => self.kvm,
            Accel::Auto | Accel::Tcg | Accel::TcgIcount => self.tcg,
        }
    }
}

/// A boot case's time limit per accelerator.
#[derive(Clone, Copy, Debug)]
struct BootTimeout {
    /// TCG (the reference, and `auto`) and TCG with icount.
    tcg: Duration,
    /// This machine kind's nested KVM, whose traps are far slower than TCG's.
    kvm: Duration,
}

impl BootTimeout {
    fn for_accel(self, accel: Accel) -> Duration {
        match accel {
            Accel::Kvm => self.kvm,
            Accel::Auto | Accel::Tcg | Accel::TcgIcount => self.tcg,
        }
    }
}

/// The QEMU boot tests. Each boots via PVH with the `qemu-exit` word, so the
/// kernel ends QEMU with its verdict; add a case by adding a row.
const BOOT_CASES: &[BootCase] = &[
    // The default system (procman starts echo and echo-client); procman
    // stops the machine with echo-client's exit status.
    BootCase {
        name: "smoke: procman, echo and echo-client",
        cmdline: BootWords::both("run=echo-client"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &[
            "hinge: ready",
            "boot path: pvh",
            "starting procman",
            "echo: registered /srv/echo",
            "echo-client: all checks passed",
        ],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: BOOT_TIMEOUT,
            kvm: Duration::from_secs(300),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    BootCase {
        name: "truncated boot archive",
        cmdline: BootWords::both(""),
        archive: ArchiveDamage::TruncatedToHalf,
        expected: Verdict::Failure,
        log_must_contain: &["boot archive rejected: truncated"],
        log_must_match: &[],
        timeout: SHORT_BOOT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    BootCase {
        name: "boot archive with bad magic",
        cmdline: BootWords::both(""),
        archive: ArchiveDamage::FirstByteChanged,
        expected: Verdict::Failure,
        log_must_contain: &["boot archive rejected: bad magic"],
        log_must_match: &[],
        timeout: SHORT_BOOT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // A kernel stack overflow runs into the guard page below the stack:
    // reported as a double fault, not silent corruption.
    BootCase {
        name: "kernel stack overflow hits its guard page (selftest=kernel-stack-overflow)",
        cmdline: BootWords::both("selftest=kernel-stack-overflow"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Failure,
        log_must_contain: &["self-test: overflowing the kernel stack"],
        log_must_match: &[
            r"CPU exception 8 double fault \(#DF\) in kernel mode",
            r"kernel stack overflow: cr2 0x[0-9a-f]+ is a guard page below the stack of slot \d+$",
        ],
        timeout: SHORT_BOOT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // SMAP and SMEP (issue 15, finding 9): the kernel reading or executing a
    // user page by its user address must fault in kernel mode. The CPU
    // models used (TCG `max`, KVM `host`) have both.
    BootCase {
        name: "SMAP stops the kernel reading user memory (selftest=kernel-reads-user-memory)",
        cmdline: BootWords::both("selftest=kernel-reads-user-memory"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Failure,
        log_must_contain: &[
            "user memory protections: smep on, smap on",
            "self-test: the kernel reads user memory at",
        ],
        log_must_match: &[r"CPU exception 14 page fault \(#PF\) in kernel mode, error code 0x1$"],
        timeout: SHORT_BOOT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    BootCase {
        name: "SMEP stops the kernel executing user memory (selftest=kernel-executes-user-memory)",
        cmdline: BootWords::both("selftest=kernel-executes-user-memory"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Failure,
        log_must_contain: &[
            "user memory protections: smep on, smap on",
            "self-test: the kernel executes user memory at",
        ],
        log_must_match: &[r"CPU exception 14 page fault \(#PF\) in kernel mode, error code 0x11$"],
        timeout: SHORT_BOOT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // tests/guest/ipc-test as the first process: an event passed along three
    // processes, YIELD, the stress of interruptions in IPC (the ABI's rules
    // one trap at a time, and the death of a process in each phase of a
    // call, are the conformance suite's, step 6). The stress sends 100,000
    // interruptions under TCG (about a second); under nested KVM, where a
    // trap costs some 0.75 ms, 2,000 (IPC_TEST_WORDS).
    BootCase {
        name: "in-guest IPC test (init=ipc-test)",
        cmdline: IPC_TEST_WORDS,
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting ipc-test"],
        log_must_match: &[r"^ipc-test: \d+ passed, 0 failed$"],
        timeout: IPC_TEST_TIMEOUT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // ipc-test's fuzz-only mode: two racing ipc-fuzz processes with the
    // fixed seed ipc_fuzz::TEST_SEED (`cargo xtask fuzz` runs them with a
    // fresh one) and their oracle. The primary makes 100,000 random traps
    // under TCG; under nested KVM, where a trap costs some 0.75 ms, it makes
    // ipc_fuzz::TEST_TRAPS_KVM so the case stays short (a run that short is
    // not required to reach every racing action; the TCG run is).
    BootCase {
        name: "in-guest fuzzer, fixed seed (init=ipc-test fuzz-seed=...)",
        cmdline: BootWords {
            tcg: "init=ipc-test fuzz-seed=0x1bad5eedcafef00d fuzz-traps=100000",
            kvm: "init=ipc-test fuzz-seed=0x1bad5eedcafef00d fuzz-traps=10000",
        },
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &[
            "starting ipc-test",
            "ipc-test: fuzz only: seed 0x1bad5eedcafef00d",
        ],
        log_must_match: &[r"^ipc-test: 14 passed, 0 failed$"],
        timeout: FUZZ_TEST_TIMEOUT,
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // Issue 15, exhaustion end to end: in a small machine, memory,
    // descriptors, doors, threads and processes are taken until refused
    // (OUT_OF_MEMORY or TABLE_FULL, never a panic), every request is refused
    // with nothing changed while memory is gone, and once all is given back
    // the counters are back and a door is still served.
    BootCase {
        name: "exhaustion end to end (init=exhaust-test, 64 MiB)",
        cmdline: BootWords::both("init=exhaust-test"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting exhaust-test"],
        log_must_match: &[r"^exhaust-test: \d+ passed, 0 failed$"],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(900),
        },
        memory: "64M",
        smp: 1,
        input: &[],
        session: &[],
    },
    // Pagers end to end (ABI.md §6.4): two pagers in a chain (DATA and
    // FORWARD from the first, FRAME from the second) serve one special
    // object read by two threads at once; a reader of a refused page ends;
    // the object's end gives everything back.
    BootCase {
        name: "pagers end to end (init=pager-test)",
        cmdline: BootWords::both("init=pager-test"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting pager-test"],
        log_must_match: &[r"^pager-test: \d+ passed, 0 failed$"],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // procman's policy from processes in several domains, names that vanish
    // with their owner, and a churn of 1,300 spawn / open / exit cycles after
    // which the kernel's counters are back.
    BootCase {
        name: "procman policy and lifecycle (run=procman-test)",
        cmdline: BootWords::both("run=procman-test"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting procman"],
        log_must_match: &[r"^procman-test: \d+ passed, 0 failed$"],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // Streams end to end (ABI.md §7a.3, issue 10): a producer | filter |
    // consumer chain over pipes and a client and server over a socket, 1 MiB
    // each, byte-exact; several writers whose PIPE_BUF records stay whole;
    // standard streams; 1,000 socket cycles that give everything back.
    BootCase {
        name: "streams end to end (run=stream-test)",
        cmdline: BootWords::both("run=stream-test"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting procman", "stream-child: hello"],
        log_must_match: &[r"^stream-test: \d+ passed, 0 failed$"],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(900),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[],
        session: &[],
    },
    // Four CPUs (issue 14): each application processor comes online on
    // its own tables and stacks, its timer ticks, and every CPU runs user
    // threads under the kernel lock (ABI.md §6.9).
    BootCase {
        name: "four CPUs online, the smoke test on them (--smp 4)",
        cmdline: BootWords::both("run=echo-client"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &[
            "hinge: cpu 1 online (apic id 1)",
            "hinge: cpu 2 online (apic id 2)",
            "hinge: cpu 3 online (apic id 3)",
            "hinge: smp: 4 cpus online, 4 with their timer ticking",
            "echo-client: all checks passed",
        ],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: BOOT_TIMEOUT,
            kvm: Duration::from_secs(300),
        },
        memory: BOOT_MEMORY,
        smp: SMP_CPUS,
        input: &[],
        session: &[],
    },
    // The IPC test on four CPUs: its checks, the UNMAP seen by a thread on
    // another CPU and the stress test (every CPU dispatches user threads,
    // the counters come back); the kernel's last lines count each CPU's
    // dispatches.
    BootCase {
        name: "in-guest IPC test and stress test on four CPUs (init=ipc-test, --smp 4)",
        cmdline: IPC_TEST_WORDS,
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting ipc-test", "hinge: smp: 4 cpus online"],
        log_must_match: &[
            r"^ipc-test: \d+ passed, 0 failed$",
            r"^hinge: cpu 3: [1-9]\d* user thread dispatches$",
        ],
        timeout: IPC_TEST_TIMEOUT,
        memory: BOOT_MEMORY,
        smp: SMP_CPUS,
        input: &[],
        session: &[],
    },
    // The pagers and procman's lifecycle with four CPUs (issue 14): the
    // pager, the readers and the victims run wherever they are woken.
    BootCase {
        name: "pagers end to end on four CPUs (init=pager-test, --smp 4)",
        cmdline: BootWords::both("init=pager-test"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting pager-test", "hinge: smp: 4 cpus online"],
        log_must_match: &[r"^pager-test: \d+ passed, 0 failed$"],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: SMP_CPUS,
        input: &[],
        session: &[],
    },
    BootCase {
        name: "procman policy and lifecycle on four CPUs (run=procman-test, --smp 4)",
        cmdline: BootWords::both("run=procman-test"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["starting procman", "hinge: smp: 4 cpus online"],
        log_must_match: &[r"^procman-test: \d+ passed, 0 failed$"],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: SMP_CPUS,
        input: &[],
        session: &[],
    },
    // The scaling bench's pairs (`cargo xtask bench --scaling`), briefly:
    // each pair count runs, each client on the CPU it was pinned to.
    BootCase {
        name: "the scaling bench's pairs, each on its own CPU (init=ipc-bench bench-scaling, --smp 4)",
        cmdline: BootWords::both("init=ipc-bench bench-scaling bench-iterations=100"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["hinge: smp: 4 cpus online"],
        log_must_match: &[
            r"^bench: scaling pairs=1 pair=0 cpu=0 round-trips=100 ticks=[1-9]\d*$",
            r"^bench: scaling pairs=2 pair=1 cpu=1 round-trips=100 ticks=[1-9]\d*$",
            r"^bench: scaling pairs=4 pair=3 cpu=3 round-trips=100 ticks=[1-9]\d*$",
            r"^bench: done$",
        ],
        timeout: IPC_TEST_TIMEOUT,
        memory: BOOT_MEMORY,
        smp: SMP_CPUS,
        input: &[],
        session: &[],
    },
    // The console server and the shell (issue 11): procman starts the
    // console (`run=console`), which takes COM1 and the kernel's log over
    // and starts the shell; xtask types each line at the next prompt and
    // ^D at the end, so the session's transcript is exact. The machine
    // ends with the session's status (the console's, procman's run=).
    BootCase {
        name: "a scripted session at the shell's prompt (run=console, typed input)",
        cmdline: BootWords::both("run=console"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &[
            "console: COM1 is served by the console server",
            "echo-client: all checks passed",
        ],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[
            "echo hello",
            "ls /",
            "ls /srv",
            "ps",
            "ipc-bench",
            "echo $?",
            "echo-client",
            "echo $?",
            "kill 1",
            "nosuch",
            "echo done",
        ],
        session: &[
            "hinge$ echo hello",
            "hello",
            "hinge$ ls /",
            "KIND   TYPE       PID PROGRAM      NAME",
            "dir                                dev/",
            "dir                                sock/",
            "dir                                srv/",
            "mount  files        2 ramfs        tmp",
            "hinge$ ls /srv",
            "KIND   TYPE       PID PROGRAM      NAME",
            "door   echo         1 echo         echo",
            "hinge$ ps",
            "  PID PARENT DOMAIN   STATE        NAME",
            "    1      0 servers  running      echo",
            "    2      0 files    running      ramfs",
            "    3      0 console  running      console",
            "    4      3 shell    running      shell",
            "hinge$ ipc-bench",
            "shell: ipc-bench: PM_SPAWN_DENIED",
            "hinge$ echo $?",
            "1",
            "hinge$ echo-client",
            "echo-client: opened /srv/echo",
            "echo-client: ECHO 0 bytes: ok",
            "echo-client: ECHO 64 bytes: ok",
            "echo-client: ECHO 1024 bytes: ok",
            "echo-client: COUNT call 1: cookie 0: ok",
            "echo-client: COUNT call 2: cookie 1: ok",
            "echo-client: COUNT call 3: cookie 2: ok",
            "echo-client: RETURN_DESCRIPTORS: event came back as descriptor 12: ok",
            "echo-client: unknown function 0x807f: error reply 0x1000: ok",
            "echo-client: COUNT with data: error reply 0x1002: ok",
            "echo-client: all checks passed",
            "hinge$ echo $?",
            "0",
            "hinge$ kill 1",
            "shell: kill 1: PM_NOT_PARENT",
            "hinge$ nosuch",
            "shell: nosuch: PM_NO_SUCH_PROGRAM",
            "hinge$ echo done",
            "done",
            "hinge$ ",
        ],
    },
    // Files, pipelines and redirects at the prompt (ABI.md §7a.6, D80):
    // the RAM file server under /tmp, the utilities, `|`, `<`, `>`, `>>`,
    // `cd` and `pwd`. Each redirect's file is complete when the line
    // ends, so the sizes `ls /tmp` shows are exact: a is "hello\n" then
    // "more\n", c is wc's "6\n", y is three "y\n", n is echo-client's line
    // count (12) and "\n". The utilities write to the shell's terminal
    // (they inherit its streams) unless redirected. After `cd /tmp`,
    // `cat a`, `wc -c a` and (after `cd ..`) `head -n 1 tmp/a` take
    // relative names (D95). The background job writes to a file, so the
    // prompt still stands alone for the typist; it is reported once, before
    // the next prompt if the shell learned its end by then, else by `wait`
    // (the `?` lines; its process ids follow from the processes the lines
    // before started).
    BootCase {
        name: "files, pipelines and redirects at the shell's prompt (run=console, typed input)",
        cmdline: BootWords::both("run=console"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &[
            "console: COM1 is served by the console server",
            "cat: /tmp/nope: FILE_NOT_FOUND",
        ],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[
            "ls /tmp",
            "echo hello > /tmp/a",
            "cat /tmp/a",
            "cat /tmp/a > /tmp/b",
            "cat < /tmp/a | wc -c > /tmp/c",
            "yes | head -n 3 > /tmp/y",
            "echo more >> /tmp/a",
            "echo-client | wc -l > /tmp/n",
            "ls /tmp",
            "cd /tmp",
            "pwd",
            "cat < nope",
            "cat /tmp/nope",
            "echo $?",
            "cat < a | wc -c",
            "cat a",
            "wc -c a",
            "cd ..",
            "head -n 1 tmp/a",
            "yes | head -n 3",
            "yes | head -n 2 > tmp/bg &",
            "wait",
            "cat tmp/bg",
            "echo done",
        ],
        session: &[
            "hinge$ ls /tmp",
            "hinge$ echo hello > /tmp/a",
            "hinge$ cat /tmp/a",
            "hello",
            "hinge$ cat /tmp/a > /tmp/b",
            "hinge$ cat < /tmp/a | wc -c > /tmp/c",
            "hinge$ yes | head -n 3 > /tmp/y",
            "hinge$ echo more >> /tmp/a",
            "hinge$ echo-client | wc -l > /tmp/n",
            "hinge$ ls /tmp",
            "file      11 a",
            "file       6 b",
            "file       2 c",
            "file       3 n",
            "file       6 y",
            "hinge$ cd /tmp",
            "hinge$ pwd",
            "/tmp",
            "hinge$ cat < nope",
            "shell: /tmp/nope: FILE_NOT_FOUND",
            "hinge$ cat /tmp/nope",
            "cat: /tmp/nope: FILE_NOT_FOUND",
            "shell: cat exited with status 1",
            "hinge$ echo $?",
            "1",
            "hinge$ cat < a | wc -c",
            "11",
            "hinge$ cat a",
            "hello",
            "more",
            "hinge$ wc -c a",
            "11 a",
            "hinge$ cd ..",
            "hinge$ head -n 1 tmp/a",
            "hello",
            "hinge$ yes | head -n 3",
            "y",
            "y",
            "y",
            "hinge$ yes | head -n 2 > tmp/bg &",
            "[1] 22",
            "?[1]  Done  yes | head -n 2 > tmp/bg",
            "hinge$ wait",
            "?[1]  Done  yes | head -n 2 > tmp/bg",
            "hinge$ cat tmp/bg",
            "y",
            "y",
            "hinge$ echo done",
            "done",
            "hinge$ ",
        ],
    },
    // Four CPUs at the prompt (issue 14, ABI.md §6.9): `cpus` lists each
    // online CPU's dispatch count (CPU_COUNTERS); the counts vary from run
    // to run, so the session checks the table's size: a header, a row per
    // CPU and the summary.
    BootCase {
        name: "cpus at the shell's prompt lists the four CPUs (run=console, 4 cpus)",
        cmdline: BootWords::both("run=console"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["smp: 4 cpus online"],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 4,
        input: &["cpus | wc -l", "cpus | head -n 1"],
        session: &[
            "hinge$ cpus | wc -l",
            "6",
            "hinge$ cpus | head -n 1",
            "  CPU  DISPATCHES",
            "hinge$ ",
        ],
    },
    // The terminal's control keys (issue 11, ABI.md §7a.7): `yes` runs on
    // the console's pty until xtask types ^C after its third `y` line
    // (never by timing); ^C sends INT to the foreground group, `yes`'s
    // (D87), and flushes what it wrote and no one read (D74), so the
    // session is exact but for how many `y` lines came before the key took
    // effect. `echo $?` shows 130 (128 + INT), `ps` shows `yes` exited
    // with it, and ^D at the prompt ends the session, whose status ends
    // the machine.
    BootCase {
        name: "^C ends a running yes at the console's pty; ^D ends the session (run=console)",
        cmdline: BootWords::both("run=console"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["console: COM1 is served by the console server"],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &["yes", "@after 3 y ^C", "echo $?", "ps", "@key ^D"],
        session: &[
            "hinge$ yes",
            "*y",
            "^C",
            "shell: yes exited with status 130",
            "hinge$ echo $?",
            "130",
            "hinge$ ps",
            "  PID PARENT DOMAIN   STATE        NAME",
            "    1      0 servers  running      echo",
            "    2      0 files    running      ramfs",
            "    3      0 console  running      console",
            "    4      3 shell    running      shell",
            "    5      4 tools    exited 130   yes",
            "hinge$ ",
        ],
    },
    // Job control at the console (issue 12, ABI.md §7a.7, D86-D89): ^Z,
    // typed after `yes`'s third line, stops its group and flushes its
    // unread output, so the shell's Stopped line follows ^Z at once;
    // `jobs` lists it, `fg` makes it the foreground group again and
    // continues it, and ^C after three more lines ends it with 130. A
    // second `yes` stopped the same way is killed from the table (`kill
    // %1`: TERM, then CONT since it is stopped); its end is shown once,
    // before the next prompt or by `wait` (the `?` lines: when procman
    // has the death notice is the scheduler's). Keys wait for lines, never
    // for time.
    BootCase {
        name: "^Z stops yes, jobs lists it, fg resumes it, ^C ends it; kill %1 ends a stopped job (run=console)",
        cmdline: BootWords::both("run=console"),
        archive: ArchiveDamage::Intact,
        expected: Verdict::Success,
        log_must_contain: &["console: COM1 is served by the console server"],
        log_must_match: &[],
        timeout: BootTimeout {
            tcg: Duration::from_secs(120),
            kvm: Duration::from_secs(600),
        },
        memory: BOOT_MEMORY,
        smp: 1,
        input: &[
            "yes",
            "@after 3 y ^Z",
            "echo $?",
            "jobs",
            "fg",
            "@after 3 y ^C",
            "echo $?",
            "jobs",
            "yes",
            "@after 2 y ^Z",
            "kill %1",
            "wait",
            "fg",
            "echo done",
            "@key ^D",
        ],
        session: &[
            "hinge$ yes",
            "*y",
            "^Z",
            "[1]+ Stopped  yes",
            "hinge$ echo $?",
            "148",
            "hinge$ jobs",
            "[1]+ Stopped  yes",
            "hinge$ fg",
            "yes",
            "*y",
            "^C",
            "shell: yes exited with status 130",
            "hinge$ echo $?",
            "130",
            "hinge$ jobs",
            "hinge$ yes",
            "*y",
            "^Z",
            "[1]+ Stopped  yes",
            "hinge$ kill %1",
            "?[1]  Exit 143  yes",
            "hinge$ wait",
            "?[1]  Exit 143  yes",
            "hinge$ fg",
            "shell: fg: no current job",
            "hinge$ echo done",
            "done",
            "hinge$ ",
        ],
    },
];

/// The CPUs of the multiprocessor boot cases and conformance run.
const SMP_CPUS: u32 = 4;

/// Guest memory for the boot cases (as `cargo xtask run`'s default).
const BOOT_MEMORY: &str = "256M";

/// How long one boot case may take before it counts as hung.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The limits of a boot that only starts the kernel (the self-tests and
/// damaged archives): a minute under TCG; under this machine's nested KVM
/// the firmware and the initrd load alone take 15-45 s, more on a loaded
/// host, so three.
const SHORT_BOOT: BootTimeout = BootTimeout {
    tcg: BOOT_TIMEOUT,
    kvm: Duration::from_secs(180),
};

/// The IPC test's limit (the fuzzer is a case of its own, see
/// [`FUZZ_TEST_TIMEOUT`]).
const IPC_TEST_TIMEOUT: BootTimeout = BootTimeout {
    tcg: Duration::from_secs(60),
    kvm: Duration::from_secs(300),
};

/// The fuzzer case's limit. Measured for the whole boot: about 8 s under
/// TCG for the primary's 100,000 traps (some 300,000 traps in all with the
/// partner's, the servers' and the oracle's); under nested KVM a trap
/// costs about 0.75 ms, which is why that case asks for fewer traps.
const FUZZ_TEST_TIMEOUT: BootTimeout = BootTimeout {
    tcg: Duration::from_secs(60),
    kvm: Duration::from_secs(300),
};

/// What is done to the boot archive before a boot case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArchiveDamage {
    Intact,
    /// Only the first half of the bytes.
    TruncatedToHalf,
    /// The first magic byte changed (`H` becomes `h`).
    FirstByteChanged,
}

impl ArchiveDamage {
    /// The file-name label of a damaged copy.
    fn label(self) -> Option<&'static str> {
        match self {
            Self::Intact => None,
            Self::TruncatedToHalf => Some("truncated"),
            Self::FirstByteChanged => Some("bad-magic"),
        }
    }

    fn apply(self, archive: &[u8]) -> Vec<u8> {
        match self {
            Self::Intact => archive.to_vec(),
            Self::TruncatedToHalf => archive[..archive.len() / 2].to_vec(),
            Self::FirstByteChanged => {
                let mut damaged = archive.to_vec();
                if let Some(first) = damaged.first_mut() {
                    *first ^= 0x20;
                }
                damaged
            }
        }
    }

    /// The archive file to boot with: the real one, or a damaged copy written next to it.
    fn prepare(self, paths: &Paths) -> Result<PathBuf> {
        let intact = paths.boot_archive();
        let Some(label) = self.label() else {
            return Ok(intact);
        };
        let bytes = std::fs::read(&intact)?;
        let damaged = paths.broken_archive(label);
        artifacts::write_file(&damaged, &self.apply(&bytes))?;
        Ok(damaged)
    }
}

/// The running count, and the per-step lines, each with the time since the
/// previous line (where a run's minutes go, e.g. under nested KVM).
#[derive(Debug)]
struct Tally {
    passed: u64,
    failed: u64,
    since: Instant,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            passed: 0,
            failed: 0,
            since: Instant::now(),
        }
    }
}

impl Tally {
    /// Seconds since the previous line, and restarts the clock.
    fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let seconds = now.duration_since(self.since).as_secs_f64();
        self.since = now;
        seconds
    }

    fn pass(&mut self, tests: u64, line: impl Display) {
        self.passed += tests;
        let seconds = self.lap();
        print_line(true, line, seconds, "");
    }

    fn fail(&mut self, tests: u64, line: impl Display, details: &str) {
        self.failed += tests;
        let seconds = self.lap();
        print_line(false, line, seconds, details);
    }

    /// A QEMU step's outcome, with the seconds it took on its worker (the
    /// steps overlap, so the time since the previous line would mislead).
    fn report(&mut self, outcome: Outcome, seconds: f64) {
        self.passed += outcome.passed;
        self.failed += outcome.failed;
        print_line(outcome.failed == 0, outcome.line, seconds, &outcome.details);
        self.lap();
    }

    /// A step that is one test: passes if `result` is `Ok`.
    fn record(&mut self, line: impl Display, result: Result<()>) {
        match result {
            Ok(()) => self.pass(1, line),
            Err(error) => self.fail(1, line, &format!("{error:#}")),
        }
    }
}

/// One step's line: `ok` or `FAIL`, the step, its seconds, and under a
/// failure its details, indented.
fn print_line(ok: bool, line: impl Display, seconds: f64, details: &str) {
    if ok {
        println!("ok   {line} [{seconds:.1} s]");
    } else {
        println!("FAIL {line} [{seconds:.1} s]");
        for detail in details.lines() {
            println!("    {detail}");
        }
    }
}

/// `cargo xtask test`.
pub fn test_command(args: &TestArgs) -> Result<ExitCode> {
    let paths = Paths::locate()?;
    let mut tally = Tally::default();

    // Only what the steps below use: every boot here is PVH, so neither
    // the ISO tools nor OVMF are needed (`run` asks for those itself).
    let needed = [HostPackage::Qemu];
    let packages: Vec<_> = needed.iter().map(|package| package.apt_name()).collect();
    tally.record(
        format!(
            "host dependencies ({GUEST_TARGET}, {})",
            packages.join(", ")
        ),
        deps::ensure_rust_target(&paths).and_then(|()| deps::ensure_packages(&needed)),
    );

    if let Some(wanted) = &args.boot_case {
        return boot_cases_only(&paths, args.accel, wanted, workers(args), tally);
    }

    let lint_steps: [(&str, &[&str]); 3] = [
        // rustfmt colours its diff even into a pipe unless told not to.
        (
            "formatting",
            &["fmt", "--all", "--check", "--", "--color=never"],
        ),
        (
            "clippy (host)",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "clippy (kernel, bare metal)",
            &[
                "clippy",
                "--package",
                KERNEL_PACKAGE,
                "--package",
                KERNEL_CORE_PACKAGE,
                "--target",
                GUEST_TARGET,
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    for (name, cargo_args) in lint_steps {
        let mut cargo = exec::cargo(&paths);
        cargo.args(cargo_args);
        let line = format!("{name} (cargo {})", cargo_args.join(" "));
        tally.record(line, exec::run(&mut cargo, Echo::OnFailure));
    }
    // The user programs are linted as they are built: for the guest target.
    match SystemManifest::load(&paths) {
        Ok(manifest) => {
            let mut cargo_args = vec!["clippy", "--target", GUEST_TARGET, "--package", "userlib"];
            for package in manifest.program_packages() {
                cargo_args.extend(["--package", package]);
            }
            cargo_args.extend(["--", "-D", "warnings"]);
            let mut cargo = exec::cargo(&paths);
            cargo.args(&cargo_args);
            let line = "clippy (user programs, bare metal)".to_owned();
            tally.record(line, exec::run(&mut cargo, Echo::OnFailure));
        }
        Err(error) => tally.record("clippy (user programs, bare metal)".to_owned(), Err(error)),
    }

    run_host_tests(&paths, &mut tally);

    let build = artifacts::build(&paths, Echo::OnFailure)
        .and_then(|manifest| artifacts::write_boot_archive(&paths, &manifest));
    let built = build.is_ok();
    let archive = build.as_ref().ok().cloned();
    tally.record("kernel and boot archive build", build.map(|_| ()));

    let ready = boot_readiness(built, args.accel);
    let mut jobs: Vec<QemuJob> = BOOT_CASES
        .iter()
        .map(|case| {
            let ready = ready.clone();
            let paths = &paths;
            let job: QemuJob = Box::new(move || boot_case_outcome(paths, case, args.accel, ready));
            job
        })
        .collect();
    // The suite with one CPU, then with four (every trap through the
    // kernel lock while the other CPUs run threads, ABI.md §6.9).
    for smp in [1, SMP_CPUS] {
        let archive = archive.clone();
        let paths = &paths;
        jobs.push(Box::new(move || {
            let suite = crate::conformance::test_step(paths, args.accel, smp, archive);
            Outcome {
                passed: suite.passed,
                failed: suite.failed,
                line: suite.line,
                details: suite.details,
            }
        }));
    }
    // The two suites are the longest boots: they start first, so the
    // short cases fill the other workers meanwhile.
    let suites = BOOT_CASES.len()..jobs.len();
    let start_order: Vec<usize> = suites.clone().chain(0..suites.start).collect();
    run_qemu_jobs(jobs, &start_order, workers(args), &mut tally);

    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask test --boot-case TEXT`: the build and the boot cases whose
/// name contains `wanted`, nothing else.
fn boot_cases_only(
    paths: &Paths,
    accel: Accel,
    wanted: &str,
    workers: usize,
    mut tally: Tally,
) -> Result<ExitCode> {
    let build = artifacts::build(paths, Echo::OnFailure)
        .and_then(|manifest| artifacts::write_boot_archive(paths, &manifest));
    let built = build.is_ok();
    tally.record("kernel and boot archive build", build.map(|_| ()));
    let ready = boot_readiness(built, accel);
    let jobs: Vec<QemuJob> = BOOT_CASES
        .iter()
        .filter(|case| case.name.contains(wanted))
        .map(|case| {
            let ready = ready.clone();
            let job: QemuJob = Box::new(move || boot_case_outcome(paths, case, accel, ready));
            job
        })
        .collect();
    let start_order: Vec<usize> = (0..jobs.len()).collect();
    run_qemu_jobs(jobs, &start_order, workers, &mut tally);
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One QEMU step (a boot case, or a conformance suite of two boots), run
/// on a worker thread; its outcome is printed in the table's order.
type QemuJob<'a> = Box<dyn FnOnce() -> Outcome + Send + 'a>;

/// What one QEMU step counted: tests passed and failed, its line, and the
/// details printed under a failure.
#[derive(Debug)]
struct Outcome {
    passed: u64,
    failed: u64,
    line: String,
    details: String,
}

/// How many QEMU boots run at once: `--jobs`, or the host's CPUs. Each
/// boot is CPU-bound on the host (TCG translates; this machine kind's
/// nested KVM spends its time in the host kernel), so more than the CPUs
/// would only stretch every boot's time.
fn workers(args: &TestArgs) -> usize {
    args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |jobs| jobs as usize,
    )
}

/// Whether boots can run at all: the build worked and the accelerator is
/// usable; the reason every boot fails, not run, if not.
fn boot_readiness(built: bool, accel: Accel) -> Result<(), String> {
    if !built {
        return Err("not run: the kernel or the boot archive did not build".to_owned());
    }
    qemu::check_accel(accel).map_err(|problem| format!("not run: {problem:#}"))
}

/// Boots one case and judges it: one test.
fn boot_case_outcome(
    paths: &Paths,
    case: &BootCase,
    accel: Accel,
    ready: Result<(), String>,
) -> Outcome {
    let line = format!("boot: {} (pvh, {})", case.name, accel.name());
    let failure = match ready
        .and_then(|()| run_boot_case(paths, case, accel).map_err(|error| format!("{error:#}")))
    {
        Ok(run) => match judge(case, &run) {
            Ok(()) => None,
            Err(reason) => Some(format!("{reason}\n{}", run.log())),
        },
        Err(reason) => Some(reason),
    };
    Outcome {
        passed: u64::from(failure.is_none()),
        failed: u64::from(failure.is_some()),
        line,
        details: failure.unwrap_or_default(),
    }
}

/// Runs `jobs` on `workers` threads, starting them in `start_order`, and
/// reports each outcome in the jobs' own order as soon as every earlier one
/// is in (so the output reads the same at any `--jobs`), with the seconds
/// the job itself took.
fn run_qemu_jobs(jobs: Vec<QemuJob>, start_order: &[usize], workers: usize, tally: &mut Tally) {
    let count = jobs.len();
    let slots: Vec<Mutex<Option<QemuJob>>> =
        jobs.into_iter().map(|job| Mutex::new(Some(job))).collect();
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, Outcome, f64)>();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, count.max(1)) {
            let sender = sender.clone();
            let (slots, next) = (&slots, &next);
            scope.spawn(move || {
                while let Some(&index) = start_order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let job = slots[index].lock().ok().and_then(|mut slot| slot.take());
                    let Some(job) = job else { continue };
                    let started = Instant::now();
                    let outcome = job();
                    let seconds = started.elapsed().as_secs_f64();
                    if sender.send((index, outcome, seconds)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let mut done: Vec<Option<(Outcome, f64)>> = (0..count).map(|_| None).collect();
        let mut printed = 0;
        for (index, outcome, seconds) in receiver {
            done[index] = Some((outcome, seconds));
            while let Some((outcome, seconds)) = done.get_mut(printed).and_then(Option::take) {
                tally.report(outcome, seconds);
                printed += 1;
            }
        }
    });
}

/// `cargo test --workspace`, each test it ran added to the tally. Without
/// `--no-fail-fast` cargo would stop at the first failing test binary and
/// leave the other crates' tests uncounted.
fn run_host_tests(paths: &Paths, tally: &mut Tally) {
    let mut cargo = exec::cargo(paths);
    cargo.args(["test", "--workspace", "--no-fail-fast"]);
    let output = match exec::capture(&mut cargo) {
        Ok(output) => output,
        Err(error) => return tally.fail(1, "host tests", &format!("{error:#}")),
    };
    let text = exec::combined_output(&output);
    let counts = count_test_results(&text);
    let line = format!("host tests ({})", tested_crates(&text).join(", "));
    if output.status.success() && counts.failed == 0 {
        tally.pass(counts.passed, format!("{line}: {} passed", counts.passed));
    } else {
        // A build failure runs no test at all; it still counts as one failure.
        let failed = counts.failed.max(1);
        tally.passed += counts.passed;
        tally.fail(
            failed,
            format!("{line}: {failed} failed, {} passed", counts.passed),
            &text,
        );
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TestCounts {
    passed: u64,
    failed: u64,
}

/// Sums the `test result: ok. N passed; M failed; ...` lines of cargo test's output.
fn count_test_results(output: &str) -> TestCounts {
    static RESULT: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed;").ok()
    });
    let mut counts = TestCounts::default();
    let Some(result) = RESULT.as_ref() else {
        return counts;
    };
    for captures in result.captures_iter(output) {
        let number = |group| {
            captures
                .get(group)
                .and_then(|m| m.as_str().parse::<u64>().ok())
        };
        counts.passed += number(1).unwrap_or(0);
        counts.failed += number(2).unwrap_or(0);
    }
    counts
}

/// The crates whose unit tests or doc tests cargo ran, from its
/// `Running unittests src/lib.rs (target/debug/deps/NAME-HASH)` and
/// `Doc-tests NAME` lines.
fn tested_crates(output: &str) -> Vec<String> {
    let mut crates: Vec<String> = output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("Doc-tests ") {
                return Some(name.trim().to_owned());
            }
            let binary = line.strip_prefix("Running unittests ")?.rsplit_once('(')?.1;
            let file = Path::new(binary.trim_end_matches(')'))
                .file_name()?
                .to_str()?;
            Some(file.rsplit_once('-')?.0.to_owned())
        })
        .collect();
    crates.sort();
    crates.dedup();
    crates
}

fn run_boot_case(paths: &Paths, case: &BootCase, accel: Accel) -> Result<CapturedRun> {
    let case_words = case.cmdline.for_accel(accel);
    let words = if case_words.is_empty() {
        cmdline::QEMU_EXIT.to_owned()
    } else {
        format!("{case_words} {}", cmdline::QEMU_EXIT)
    };
    let config = QemuConfig {
        medium: BootMedium::Pvh {
            kernel: paths.kernel_elf(),
            archive: case.archive.prepare(paths)?,
            cmdline: words,
            bios: qemu::fast_pvh_firmware(accel),
        },
        accel,
        smp: case.smp,
        memory: case.memory.to_owned(),
        serial: SerialSink::Stdio,
        wait_for_gdb: false,
    };
    let timeout = Some(case.timeout.for_accel(accel));
    if case.input.is_empty() {
        return qemu::run_captured(&config, None, timeout, false);
    }
    let input = case.input.iter().map(|line| (*line).to_owned()).collect();
    qemu::run_typed(&config, input, None, timeout, false)
}

/// Whether a boot run is what the case expects; the reason if not.
fn judge(case: &BootCase, run: &CapturedRun) -> Result<(), String> {
    match &run.end {
        RunEnd::Exited(verdict) if *verdict == case.expected => {}
        RunEnd::Exited(verdict) => {
            return Err(format!(
                "expected: {}\ngot:      {}",
                case.expected.describe(),
                verdict.describe()
            ));
        }
        RunEnd::TimedOut(limit) => return Err(format!("timed out after {} s", limit.as_secs())),
        RunEnd::Matched(line) => return Err(format!("stopped early at {line:?}")),
    }
    let mut missing: Vec<String> = case
        .log_must_contain
        .iter()
        .filter(|wanted| !run.serial.contains(**wanted))
        .map(|wanted| format!("{wanted:?}"))
        .collect();
    for pattern in case.log_must_match {
        // Lines end in "\r\n" on the serial port.
        let lines = || run.serial.lines().map(str::trim_end);
        let matched = Regex::new(pattern).is_ok_and(|line| lines().any(|text| line.is_match(text)));
        if !matched {
            missing.push(format!("a line matching {pattern:?}"));
        }
    }
    if !missing.is_empty() {
        return Err(format!("the serial log lacks {}", missing.join(", ")));
    }
    if !case.input.is_empty() && !session_matches(case.session, &run.session) {
        return Err(format!(
            "the session differs:\nexpected:\n{}\ngot:\n{}",
            case.session.join("\n"),
            run.session.join("\n")
        ));
    }
    Ok(())
}

/// Whether a session is the one expected, line for line, except that an
/// expected line `*TEXT` stands for one or more lines reading `TEXT` (a
/// program's output whose length a ^C cut: how many lines came before the
/// key took effect is not the test's to fix), and that the expected lines
/// `?TEXT` of one text are *one* line reading `TEXT` shown at exactly one
/// of their places: a report whose moment is the scheduler's, not the
/// session's (a background job that ended is shown before the next prompt
/// when the shell has learned it by then, else by the `wait` typed at that
/// prompt; either way once, D89).
fn session_matches(expected: &[&str], got: &[String]) -> bool {
    let mut shown = Vec::new();
    matches_from(expected, got, &mut shown, expected)
}

/// [`session_matches`] from `expected` on, with `shown` the `?` lines
/// taken so far; `whole` to check each `?` text was taken exactly once.
fn matches_from<'a>(
    expected: &[&'a str],
    got: &[String],
    shown: &mut Vec<&'a str>,
    whole: &[&'a str],
) -> bool {
    let Some((first, rest)) = expected.split_first() else {
        return got.is_empty()
            && whole
                .iter()
                .filter_map(|line| line.strip_prefix('?'))
                .all(|text| shown.iter().filter(|taken| **taken == text).count() == 1);
    };
    if let Some(repeated) = first.strip_prefix('*') {
        let run = got.iter().take_while(|line| *line == repeated).count();
        // At least one; then the rest must match after some of them.
        return (1..=run).any(|taken| matches_from(rest, &got[taken..], shown, whole));
    }
    if let Some(once) = first.strip_prefix('?') {
        if got.first().is_some_and(|line| line == once) && !shown.contains(&once) {
            shown.push(once);
            if matches_from(rest, &got[1..], shown, whole) {
                return true;
            }
            shown.pop();
        }
        return matches_from(rest, got, shown, whole);
    }
    got.split_first()
        .is_some_and(|(line, others)| line == first && matches_from(rest, others, shown, whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ArchiveBuilder, ArchiveError, BootArchive};

    #[test]
    fn a_session_matches_exactly_but_for_repeated_lines() {
        let got = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
        let expected = ["$ yes", "*y", "^C", "$ "];
        assert!(session_matches(
            &expected,
            &got(&["$ yes", "y", "^C", "$ "])
        ));
        assert!(session_matches(
            &expected,
            &got(&["$ yes", "y", "y", "y", "^C", "$ "])
        ));
        assert!(
            !session_matches(&expected, &got(&["$ yes", "^C", "$ "])),
            "one at least"
        );
        assert!(!session_matches(
            &expected,
            &got(&["$ yes", "y", "n", "^C", "$ "])
        ));
        assert!(!session_matches(&expected, &got(&["$ yes", "y", "^C"])));
        assert!(session_matches(&["a", "b"], &got(&["a", "b"])));
        assert!(!session_matches(&["a", "b"], &got(&["a", "b", "c"])));
    }

    #[test]
    fn a_report_line_is_shown_once_at_one_of_its_places() {
        let got = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
        let expected = ["$ kill %1", "?[1] Done", "$ wait", "?[1] Done", "$ "];
        for early in [true, false] {
            let lines = if early {
                got(&["$ kill %1", "[1] Done", "$ wait", "$ "])
            } else {
                got(&["$ kill %1", "$ wait", "[1] Done", "$ "])
            };
            assert!(session_matches(&expected, &lines), "early {early}");
        }
        assert!(
            !session_matches(&expected, &got(&["$ kill %1", "$ wait", "$ "])),
            "never shown"
        );
        assert!(
            !session_matches(
                &expected,
                &got(&["$ kill %1", "[1] Done", "$ wait", "[1] Done", "$ "])
            ),
            "shown twice"
        );
        assert!(!session_matches(
            &expected,
            &got(&["$ kill %1", "[1] Exit", "$ wait", "$ "])
        ));
    }

    #[test]
    fn every_boot_case_script_parses() {
        for case in BOOT_CASES {
            for entry in case.input {
                assert!(
                    crate::serial::Keys::parse(entry).is_ok(),
                    "{}: {entry}",
                    case.name
                );
            }
        }
    }

    const CARGO_TEST_OUTPUT: &str = "\
   Compiling image v0.1.0 (/work/main/image)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 3.1s
     Running unittests src/lib.rs (target/debug/deps/abi-0f1e2d3c4b5a6978)

running 1 test
test debug_exit::tests::verdicts ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running unittests src/lib.rs (target/debug/deps/image-1234abcd1234abcd)
test result: ok. 17 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
     Running tests/archive.rs (target/debug/deps/archive-5fefb2b6f3e545ac)
test result: FAILED. 22 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.4s
     Running unittests src/main.rs (target/debug/deps/xtask-99aa88bb77cc66dd)
test result: ok. 30 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.2s
   Doc-tests image
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn sums_every_result_line() {
        assert_eq!(
            count_test_results(CARGO_TEST_OUTPUT),
            TestCounts {
                passed: 70,
                failed: 2
            }
        );
        assert_eq!(
            count_test_results("error[E0308]: mismatched types"),
            TestCounts::default()
        );
    }

    #[test]
    fn names_the_tested_crates() {
        assert_eq!(tested_crates(CARGO_TEST_OUTPUT), ["abi", "image", "xtask"]);
    }

    fn finished(verdict: Verdict, serial: &str) -> CapturedRun {
        CapturedRun {
            session: Vec::new(),
            end: RunEnd::Exited(verdict),
            serial: serial.to_owned(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_boot_case_needs_its_verdict_and_every_log_line() {
        let smoke = &BOOT_CASES[0];
        let good_log = "hinge 0.1\nboot path: pvh\nhinge: ready\nhinge: starting procman\n\
                        echo: registered /srv/echo\necho-client: all checks passed\n";
        assert_eq!(judge(smoke, &finished(Verdict::Success, good_log)), Ok(()));

        let wrong_verdict = judge(smoke, &finished(Verdict::Failure, good_log));
        assert!(wrong_verdict.is_err_and(|reason| reason.contains("status 35")));

        let missing = judge(
            smoke,
            &finished(Verdict::Success, &good_log.replace("boot path: pvh\n", "")),
        );
        assert_eq!(
            missing,
            Err("the serial log lacks \"boot path: pvh\"".to_owned())
        );

        let hung = CapturedRun {
            session: Vec::new(),
            end: RunEnd::TimedOut(BOOT_TIMEOUT),
            serial: good_log.to_owned(),
            stderr: String::new(),
        };
        assert_eq!(judge(smoke, &hung), Err("timed out after 60 s".to_owned()));
    }

    #[test]
    fn the_ipc_test_case_wants_its_closing_line_with_nothing_failed() {
        let case = BOOT_CASES
            .iter()
            .find(|case| case.cmdline.tcg == "init=ipc-test")
            .expect("the ipc-test boot case");
        let log = |closing: &str| {
            format!("hinge: starting ipc-test\nok   a check\n{closing}\r\nhinge: end\n")
        };
        let run = |closing: &str| judge(case, &finished(Verdict::Success, &log(closing)));
        assert_eq!(run("ipc-test: 76 passed, 0 failed"), Ok(()));
        assert!(run("ipc-test: 66 passed, 10 failed").is_err());
        assert!(run("ipc-test: 76 passed, 0 failed, 1 lost").is_err());
        assert!(run("FAIL x: expected ipc-test: 76 passed, 0 failed").is_err());
        let failed = judge(
            case,
            &finished(Verdict::Failure, &log("ipc-test: 75 passed, 1 failed")),
        );
        assert!(failed.is_err_and(|reason| reason.contains("status 35")));
    }

    #[test]
    fn the_fuzzer_case_runs_the_fixed_seed_with_each_accelerators_trap_count() {
        let case = BOOT_CASES
            .iter()
            .find(|case| case.cmdline.tcg.contains(ipc_fuzz::SEED_KEY))
            .expect("the fuzzer's boot case");
        let parse = |accel| ipc_fuzz::parse_command_line(case.cmdline.for_accel(accel));
        let seed = ipc_fuzz::TEST_SEED;
        assert_eq!(parse(Accel::Tcg), Ok(Some((seed, ipc_fuzz::TEST_TRAPS, 0))));
        assert_eq!(parse(Accel::TcgIcount), parse(Accel::Tcg));
        assert_eq!(parse(Accel::Auto), parse(Accel::Tcg));
        let kvm = Some((seed, ipc_fuzz::TEST_TRAPS_KVM, 0));
        assert_eq!(parse(Accel::Kvm), Ok(kvm));
        const { assert!(ipc_fuzz::TEST_TRAPS_KVM < ipc_fuzz::TEST_TRAPS) };
        let seed_line = format!("ipc-test: fuzz only: seed {seed:#x}");
        assert!(case.log_must_contain.iter().any(|line| *line == seed_line));
        assert_eq!(
            cmdline::value(case.cmdline.kvm, cmdline::INIT_KEY),
            Some("ipc-test")
        );
    }

    #[test]
    fn every_boot_case_has_a_name_and_expects_some_log() {
        for case in BOOT_CASES {
            assert!(!case.name.is_empty());
            assert!(!case.log_must_contain.is_empty(), "{}", case.name);
        }
        assert_eq!(BOOT_CASES[0].expected, Verdict::of_exit_code(Some(33)));
        assert_eq!(BOOT_CASES[1].expected, Verdict::of_exit_code(Some(35)));
    }

    #[test]
    fn damaged_archives_fail_with_the_error_the_boot_case_expects() {
        // The kernel prints "boot archive rejected: {error}", so the boot
        // cases' expected lines must be how the parser words these errors.
        let archive = ArchiveBuilder::new()
            .add("system.toml", b"[system]\nname = \"hinge\"\n".as_slice())
            .expect("valid name")
            .build();
        assert!(BootArchive::parse(&ArchiveDamage::Intact.apply(&archive)).is_ok());

        let truncated = ArchiveDamage::TruncatedToHalf.apply(&archive);
        let error = BootArchive::parse(&truncated).expect_err("truncated");
        assert!(matches!(error, ArchiveError::Truncated { .. }));
        let kernel_line = format!("boot archive rejected: {error}");
        assert!(
            kernel_line.starts_with(BOOT_CASES[1].log_must_contain[0]),
            "{kernel_line}"
        );

        let bad_magic = ArchiveDamage::FirstByteChanged.apply(&archive);
        let error = BootArchive::parse(&bad_magic).expect_err("bad magic");
        assert!(matches!(error, ArchiveError::BadMagic { found } if &found == b"hINGEARC"));
        let kernel_line = format!("boot archive rejected: {error}");
        assert!(
            kernel_line.starts_with(BOOT_CASES[2].log_must_contain[0]),
            "{kernel_line}"
        );
    }
}
