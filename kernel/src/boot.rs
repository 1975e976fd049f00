//! `kernel_main`: the boot sequence after either entry path (the loader
//! entries in `arch::x86_64::boot` call it once, with the `BootInfo` they
//! built): the banner, memory, the boot archive, interrupts and the timer,
//! then the first user program.

use core::sync::atomic::Ordering;

use kernel_core::boot_info::{BootInfo, BootPath, MemoryKind};

use crate::arch::x86_64::boot::limine;
use crate::arch::x86_64::cpu::{self, fatal, stop};
use crate::arch::x86_64::{
    acpi, fpu, gdt, idt, ioapic, kernel_stack, lapic, memory, pic, selftest, smp, syscall, system,
    trap,
};

/// Timer frequency: the scheduler's preemption tick.
const TIMER_HZ: u32 = 100;
/// How many ticks the boot waits for to prove the timer runs.
const BOOT_TICKS: u64 = 10;

const MIB: u64 = 1024 * 1024;

/// The boot sequence shared by both boot paths.
pub fn kernel_main(info: &BootInfo) -> ! {
    cpu::configure_stop(&info.command_line);
    gdt::init();
    // GS before the IDT: the trap path reads the CPU's index through GS.
    syscall::init();
    idt::init();

    kprintln!("hinge microkernel {}", env!("CARGO_PKG_VERSION"));
    match info.path {
        BootPath::Limine {
            base_revision,
            requested_revision_supported,
        } => kprintln!(
            "boot path: limine (base revision {base_revision}{})",
            if requested_revision_supported {
                ""
            } else {
                ", requested revision unsupported"
            }
        ),
        BootPath::Pvh => kprintln!("boot path: pvh"),
    }
    kprintln!("command line: \"{}\"", info.command_line.as_str());
    print_memory_map(info);

    let summary = match memory::init(info) {
        Ok(summary) => summary,
        Err(error) => fatal(format_args!("memory setup failed: {error}")),
    };
    fpu::enable();
    let protections = cpu::enable_user_memory_protections();
    kprintln!(
        "user memory protections: smep {}, smap {}, umip {}",
        on_off(protections.smep),
        on_off(protections.smap),
        on_off(protections.umip)
    );
    kprintln!(
        "frames: {} MiB usable in {} ranges, {} frames free; kernel heap {} KiB",
        summary.usable_bytes / MIB,
        summary.usable_ranges,
        summary.free_frames,
        summary.heap_bytes / 1024
    );

    let archive = check_boot_archive(info);
    pic::remap_and_mask();
    lapic::init(info.direct_map_offset);
    let processors = report_platform(info);

    let timer = lapic::start_timer(TIMER_HZ);
    while trap::TIMER_TICKS.load(Ordering::Relaxed) < BOOT_TICKS {
        cpu::wait_for_interrupt();
    }
    kprintln!(
        "lapic timer: {} Hz, {} counts per 10 ms ({}), {} ticks",
        timer.hz,
        timer.counts_per_10ms,
        if timer.calibrated {
            "calibrated against the PIT"
        } else {
            "PIT silent, estimated"
        },
        trap::TIMER_TICKS.load(Ordering::Relaxed)
    );

    start_application_processors(info, &processors);
    kprintln!("ready");
    let selftest = image::cmdline::value(info.command_line.as_str(), image::cmdline::SELFTEST_KEY);
    match selftest {
        Some(image::cmdline::SELFTEST_KERNEL_STACK_OVERFLOW) => kernel_stack::overflow_one(),
        Some(image::cmdline::SELFTEST_KERNEL_READS_USER_MEMORY) => {
            selftest::kernel_reads_user_memory()
        }
        Some(image::cmdline::SELFTEST_KERNEL_EXECUTES_USER_MEMORY) => {
            selftest::kernel_executes_user_memory()
        }
        Some(other) => kprintln!("no self-test {other:?}; booting normally"),
        None => {}
    }
    let init = image::cmdline::value(info.command_line.as_str(), image::cmdline::INIT_KEY)
        .unwrap_or(image::cmdline::DEFAULT_INIT);
    match (archive.find(init), memory::kernel_pml4()) {
        (Some(_), Some(pml4)) => {
            kprintln!("starting {init}");
            let qemu_exit = cpu::qemu_exit();
            if let Err(error) = system::start_user_space(pml4, archive, init, info, qemu_exit) {
                fatal(format_args!("{init} could not start: {error}"));
            }
        }
        _ => kprintln!("no program {init:?} in the boot archive: nothing to run"),
    }
    if cpu::qemu_exit() {
        stop(true);
    }
    loop {
        cpu::wait_for_interrupt();
    }
}

fn print_memory_map(info: &BootInfo) {
    let map = &info.memory_map;
    kprintln!(
        "memory map: {} regions{}, {} MiB usable, top of RAM {:#x}",
        map.regions().len(),
        if map.dropped() > 0 {
            " (some dropped)"
        } else {
            ""
        },
        map.total(MemoryKind::Usable) / MIB,
        map.top_of(MemoryKind::Usable)
    );
    for region in map.regions() {
        kprintln!(
            "  [{:#014x}-{:#014x}) {:?}",
            region.range.start,
            region.range.end,
            region.kind
        );
    }
}

/// Validates the boot archive; a missing or malformed one stops the boot
/// with the reason, since nothing can run without it.
fn check_boot_archive(info: &BootInfo) -> image::BootArchive<'static> {
    let Some(bytes) = memory::boot_archive_bytes(info) else {
        fatal(format_args!(
            "boot archive missing: the boot loader passed no module"
        ));
    };
    match image::BootArchive::parse(bytes) {
        Ok(archive) => {
            kprintln!(
                "boot archive: {} bytes, {} entries",
                archive.total_size(),
                archive.entry_count()
            );
            for entry in archive.entries() {
                kprintln!("  {} ({} bytes)", entry.name, entry.data.len());
            }
            archive
        }
        Err(error) => {
            kprintln!("boot archive rejected: {error}");
            stop(false)
        }
    }
}

/// Starts the other CPUs (Limine's parked ones, or the MADT's) and waits
/// until each has taken two timer ticks: its timer runs and its idle loop
/// wakes from `hlt` for it.
fn start_application_processors(info: &BootInfo, madt: &[acpi::Processor]) {
    let processors = match (info.path, limine::parked_processors()) {
        (BootPath::Limine { .. }, Some((cpus, bsp))) => smp::Processors::Limine(cpus, bsp),
        _ => smp::Processors::Madt(madt),
    };
    let online = smp::start_application_processors(processors);
    if online == 1 {
        return;
    }
    let deadline = trap::TIMER_TICKS.load(Ordering::Relaxed) + 100;
    while (1..online as usize).any(|cpu| smp::ticks(cpu) < 2)
        && trap::TIMER_TICKS.load(Ordering::Relaxed) < deadline
    {
        cpu::wait_for_interrupt();
    }
    let ticking = (0..online as usize)
        .filter(|&cpu| smp::ticks(cpu) >= 2)
        .count();
    kprintln!("smp: {online} cpus online, {ticking} with their timer ticking");
}

/// Reports the MADT's processors and I/O APICs, sets up the I/O APICs,
/// and returns the processors.
fn report_platform(info: &BootInfo) -> alloc::vec::Vec<acpi::Processor> {
    match acpi::discover(info.rsdp) {
        Ok(platform) => {
            kprint!(
                "hinge: acpi: {} processor(s), apic ids",
                platform.processors.len()
            );
            for processor in &platform.processors {
                kprint!(
                    " {}{}",
                    processor.apic_id,
                    if processor.usable { "" } else { " (off)" }
                );
            }
            kprint!("; {} I/O APIC(s)", platform.io_apics.len());
            for io in &platform.io_apics {
                kprint!(" [id {} at {:#x}, gsi {}]", io.id, io.address, io.gsi_base);
            }
            kprint!(
                "; local APIC at {:#x} (this CPU: id {})\n",
                platform.local_apic_address,
                lapic::id()
            );
            ioapic::init(&platform, info.direct_map_offset);
            platform.processors
        }
        Err(error) => {
            kprintln!("acpi: unavailable ({error}); continuing without it");
            alloc::vec::Vec::new()
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off (the CPU lacks it)" }
}
