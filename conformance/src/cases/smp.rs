//! MSG-SMP: several CPUs (ABI.md §6.9, §9 D52-D56): CPU_COUNTERS and
//! THREAD_AFFINITY with their refusals, a thread moved to each CPU in
//! turn, a call running its server on the caller's CPU, and a
//! copy-on-write copy seen at once by a thread of the same process on
//! another CPU (the TLB shootdown). Every case also holds with one CPU,
//! where the moves are to the one CPU there is.

use alloc::format;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use abi::kcall::{AffinityRequest, CpuCountersReply, CpuRequest, REPLY_PAYLOAD_OFFSET};
use abi::{Descriptor, Error, KernelFunction};
use userlib::kernel;
use userlib::raw::RawPages;
use zerocopy::{FromBytes, IntoBytes};

use super::kit::{self, Answer};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::Expect;

const PAGE: u64 = abi::PAGE_SIZE as u64;
const RW: u32 = abi::kcall::protection::READ | abi::kcall::protection::WRITE;
/// Where MSG-SMP-007 maps the parent, and its copy-on-write child above.
const MAP_AT: u64 = 0x0000_5800_0000_0000;

/// Every CPU.
const ALL_CPUS: u64 = u64::MAX;
/// How many YIELDs a wait for a thread on another CPU may take before the
/// case fails (that thread always runs, so a few suffice).
const MAX_WAIT: u32 = 1_000_000;

pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SMP-001",
        rule: "CPU_COUNTERS of CPU 0 replies msgRetVal 0 and a CpuCountersReply (24 bytes): online at least 1, the caller's CPU below it, at least one CPU running (the caller's), dispatches on CPU 0; COUNTERS is the same before and after",
        section: "6.9",
        decisions: &["D56"],
        expect: Expect::replied("CPU_COUNTERS", 0, 0, 32, 0),
        run: |context| {
            let request = CpuRequest::new(0);
            let m = kit::measured(
                KernelFunction::CpuCounters,
                Descriptor::NULL,
                request.as_bytes(),
                64,
            )?;
            let reply = CpuCountersReply::read_from_prefix(&m.call.bytes[REPLY_PAYLOAD_OFFSET..])
                .map(|(reply, _)| reply)
                .unwrap_or_default();
            context.check(m.before == m.after, "COUNTERS changed around CPU_COUNTERS");
            context.check(reply.online >= 1, &format!("online {}", reply.online));
            context.check(
                reply.caller_cpu < reply.online,
                &format!("caller_cpu {} of {} online", reply.caller_cpu, reply.online),
            );
            context.check(reply.running >= 1, &format!("running {}", reply.running));
            context.check(reply.dispatches >= 1, "CPU 0 never dispatched a thread");
            Ok(context.observe(m.call.registers))
        },
    },
    Case {
        id: "MSG-SMP-002",
        rule: "THREAD_AFFINITY to each online CPU in turn replies msgRetVal 0 on that CPU (CPU_COUNTERS's caller_cpu), which dispatched the thread; back to every CPU at the end",
        section: "6.9",
        decisions: &["D52", "D53"],
        expect: Expect::replied("THREAD_AFFINITY back to every CPU", 0, 0, 8, 0),
        run: |context| {
            let online = kernel::cpu_counters(0)?.online;
            for cpu in 0..online {
                let before = kernel::cpu_counters(cpu)?;
                let moved = before.caller_cpu != cpu;
                let call = affinity(1 << cpu)?;
                context.check(
                    call.registers.arg0 == 0,
                    &format!("THREAD_AFFINITY to CPU {cpu}: {:?}", call.registers),
                );
                let after = kernel::cpu_counters(cpu)?;
                context.check(
                    after.caller_cpu == cpu,
                    &format!(
                        "pinned to CPU {cpu}, the reply came on CPU {}",
                        after.caller_cpu
                    ),
                );
                context.check(
                    !moved || after.dispatches > before.dispatches,
                    &format!("CPU {cpu} took the thread without a dispatch"),
                );
            }
            let call = affinity(ALL_CPUS)?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SMP-003",
        rule: "CPU_COUNTERS of the first CPU index that is not online is NO_SUCH_CPU and changes nothing",
        section: "6.9",
        decisions: &["D56"],
        expect: Expect::error("CPU_COUNTERS", Error::NoSuchCpu),
        run: |context| {
            let online = kernel::cpu_counters(0)?.online;
            let request = CpuRequest::new(online);
            kit::refused(
                context,
                KernelFunction::CpuCounters,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMP-004",
        rule: "THREAD_AFFINITY with a mask naming no online CPU (0, and only bit 63 when fewer than 64 are online) is NO_SUCH_CPU, changes nothing and leaves the caller where it runs",
        section: "6.9",
        decisions: &[],
        expect: Expect::error("THREAD_AFFINITY", Error::NoSuchCpu),
        run: |context| {
            let counters = kernel::cpu_counters(0)?;
            if counters.online < 64 {
                let request = AffinityRequest::new(1 << 63);
                let m = kit::measured(
                    KernelFunction::ThreadAffinity,
                    Descriptor::NULL,
                    request.as_bytes(),
                    64,
                )?;
                context.check(
                    m.call.registers.arg1 == u64::from(Error::NoSuchCpu as u32),
                    &format!("a mask of CPU 63 alone: {:?}", m.call.registers),
                );
            }
            let request = AffinityRequest::new(0);
            let outcome = kit::refused(
                context,
                KernelFunction::ThreadAffinity,
                Descriptor::NULL,
                request.as_bytes(),
            );
            let after = kernel::cpu_counters(0)?;
            context.check(
                after.caller_cpu == counters.caller_cpu || counters.online > 1,
                "a refused THREAD_AFFINITY moved the caller",
            );
            outcome
        },
    },
    Case {
        id: "MSG-SMP-005",
        rule: "CPU_COUNTERS with its reserved field set is RESERVED_BITS and changes nothing",
        section: "6.9",
        decisions: &[],
        expect: Expect::error("CPU_COUNTERS", Error::ReservedBits),
        run: |context| {
            let mut request = CpuRequest::new(0);
            request.reserved = 1;
            kit::refused(
                context,
                KernelFunction::CpuCounters,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SMP-006",
        rule: "a call to a server thread waiting in RECEIVE runs the server on the caller's CPU: the server, unpinned, finds itself on the CPU the caller is pinned to (the last one) and replies msgRetVal 1",
        section: "6.9",
        decisions: &["D54"],
        expect: Expect::replied("the call", 1, 0, 8, 0),
        run: |context| {
            let door = context.user_door()?;
            let caller_cpu = Arc::new(AtomicU32::new(u32::MAX));
            let seen = Arc::clone(&caller_cpu);
            let owner = door.owner;
            let server = context.job(move || -> Result<(), Failed> {
                let (_, mut buffer) = kit::receive(owner, 64)?;
                let here = kernel::cpu_counters(0)?.caller_cpu;
                let same = u32::from(here == seen.load(Ordering::SeqCst));
                let mut data = [0u8; 8];
                data[..4].copy_from_slice(&same.to_le_bytes());
                kit::reply(&mut buffer, &Answer::data(&data))?;
                Ok(())
            })?;
            context.settle();
            let last = kernel::cpu_counters(0)?.online - 1;
            affinity(1 << last)?;
            caller_cpu.store(kernel::cpu_counters(0)?.caller_cpu, Ordering::SeqCst);
            let call = kit::send(kit::USER_CALL, door.client, b"where", &[], 64);
            affinity(ALL_CPUS)?;
            let call = call?;
            kit::finished(context, &server, "the server")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SMP-007",
        rule: "a copy-on-write copy made by a write on one CPU is what a thread of the same process reading the page in a loop on another CPU reads from its next pass on (its old translation is gone when the write returns)",
        section: "6.9",
        decisions: &["D55"],
        expect: Expect::replied("CPU_COUNTERS after the write", 0, 0, 32, 0),
        run: cow_seen_on_another_cpu,
    },
];

/// THREAD_AFFINITY with `mask`, trapped from a fresh buffer.
fn affinity(mask: u64) -> Result<kit::Call, Failed> {
    let request = AffinityRequest::new(mask);
    kit::send(
        KernelFunction::ThreadAffinity.function(),
        Descriptor::NULL,
        request.as_bytes(),
        &[],
        64,
    )
}

/// Yields until `counter` reaches `target`; a failure after [`MAX_WAIT`].
fn wait_for(counter: &AtomicU64, target: u64, what: &str) -> Result<(), Failed> {
    for _ in 0..MAX_WAIT {
        if counter.load(Ordering::SeqCst) >= target {
            return Ok(());
        }
        let _ = kernel::yield_now();
    }
    Err(Failed(format!("{what} did not happen")))
}

/// MSG-SMP-007: the reader, pinned to the last CPU, keeps the page's
/// translation in its TLB; the runner, on CPU 0, writes the page, which
/// copies it (copy-on-write) and maps the copy in place of the shared
/// frame. From its next pass on the reader must read the copy.
fn cow_seen_on_another_cpu(context: &mut Context) -> Outcome {
    const SHARED: u8 = 7;
    const WRITTEN: u8 = 0x55;
    let parent = super::memory::create(context, 1)?;
    let original = super::memory::map(parent, MAP_AT, 0, PAGE, RW)?;
    original.write(original.base(), &[SHARED]);
    let child = super::memory::cow(context, parent, 1)?;
    let copy = super::memory::map(child, MAP_AT + 0x10_0000, 0, PAGE, RW)?;
    let address = copy.base();
    let online = kernel::cpu_counters(0)?.online;
    affinity(1)?;
    let passes = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicU32::new(0));
    let (reader_passes, reader_seen, reader_stop) =
        (Arc::clone(&passes), Arc::clone(&seen), Arc::clone(&stop));
    let reader = context.job(move || -> Result<(), Failed> {
        kernel::set_affinity(1 << (online - 1))?;
        let page = RawPages::claim(address, PAGE)?;
        let mut byte = [0u8; 1];
        while reader_stop.load(Ordering::SeqCst) == 0 {
            page.read(address, &mut byte);
            reader_seen.store(u32::from(byte[0]), Ordering::SeqCst);
            reader_passes.fetch_add(1, Ordering::SeqCst);
            if online == 1 {
                let _ = kernel::yield_now();
            }
        }
        Ok(())
    })?;
    let result = (|| -> Result<kit::Call, Failed> {
        wait_for(&passes, 2, "the reader's first passes")?;
        context.check(
            seen.load(Ordering::SeqCst) == u32::from(SHARED),
            "the reader did not read the shared page",
        );
        copy.write(address, &[WRITTEN]);
        let after_write = passes.load(Ordering::SeqCst);
        wait_for(
            &passes,
            after_write + 2,
            "the reader's passes after the write",
        )?;
        let read = seen.load(Ordering::SeqCst);
        context.check(
            read == u32::from(WRITTEN),
            &format!("after the copy-on-write copy the reader on CPU {} still read {read:#x} (a stale translation), not {WRITTEN:#x}", online - 1),
        );
        let mut original_byte = [0u8; 1];
        original.read(original.base(), &mut original_byte);
        context.check(
            original_byte[0] == SHARED,
            "the write reached the parent's frame",
        );
        kit::send(
            KernelFunction::CpuCounters.function(),
            Descriptor::NULL,
            CpuRequest::new(0).as_bytes(),
            &[],
            64,
        )
    })();
    stop.store(1, Ordering::SeqCst);
    affinity(ALL_CPUS)?;
    kit::finished(context, &reader, "the reader")?;
    Ok(context.observe(result?.registers))
}
