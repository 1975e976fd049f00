//! Small CPU operations: halting, the QEMU exit port, control registers,
//! and the two ways the kernel stops (a verdict under test, a halt otherwise).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::{hlt, interrupts, port::Port};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Stops this CPU for good: interrupts off, then `hlt` (an NMI can still wake
/// it, hence the loop).
pub fn halt_forever() -> ! {
    interrupts::disable();
    loop {
        hlt();
    }
}

/// Writes `value` to QEMU's `isa-debug-exit` port. Under QEMU this does not
/// return; elsewhere the write is ignored and the CPU halts.
pub fn exit_qemu(value: u32) -> ! {
    let mut port = Port::<u32>::new(abi::debug_exit::PORT);
    // SAFETY: the debug-exit port only ends the virtual machine; on hardware
    // without the device the write goes nowhere.
    unsafe { port.write(value) };
    halt_forever()
}

/// Turns on the paging features the kernel relies on: no-execute pages
/// (EFER.NXE, needed before any page table with bit 63 set is live), write
/// protection in ring 0 (CR0.WP, so read-only user pages stay read-only when
/// the kernel copies into them) and global pages (CR4.PGE).
pub fn enable_paging_features() {
    // SAFETY: setting NXE, WP and PGE changes no mapping and no pointer; the
    // current page tables have no NX bits the CPU could suddenly honour wrongly,
    // since our own tables are built for exactly these settings.
    unsafe {
        Efer::update(|flags| *flags |= EferFlags::NO_EXECUTE_ENABLE);
        Cr0::update(|flags| *flags |= Cr0Flags::WRITE_PROTECT);
        Cr4::update(|flags| *flags |= Cr4Flags::PAGE_GLOBAL);
    }
}

/// The idle context's code: wait for interrupts forever, in ring 0 with
/// interrupts enabled (the timer takes the CPU back to the scheduler).
pub extern "C" fn idle_loop() -> ! {
    loop {
        interrupts::enable_and_hlt();
    }
}

/// Waits for the next interrupt with interrupts enabled, then disables them
/// again: the kernel is non-preemptible, so interrupts are only taken here.
pub fn wait_for_interrupt() {
    interrupts::enable_and_hlt();
    interrupts::disable();
}

/// Set from the `qemu-exit` command-line word: report verdicts through
/// QEMU's debug-exit device instead of halting.
static QEMU_EXIT: AtomicBool = AtomicBool::new(false);

/// Reads the stop behaviour from the command line; the boot paths call this
/// first, so that even their own fatal errors end a test run promptly.
pub fn configure_stop(command_line: &kernel_core::boot_info::CommandLine) {
    QEMU_EXIT.store(
        command_line.has_word(image::cmdline::QEMU_EXIT),
        Ordering::Relaxed,
    );
}

/// Stops the kernel: under `qemu-exit`, QEMU exits with the verdict;
/// otherwise the CPU halts.
pub fn stop(success: bool) -> ! {
    if QEMU_EXIT.load(Ordering::Relaxed) {
        let value = if success {
            abi::debug_exit::SUCCESS
        } else {
            abi::debug_exit::FAILURE
        };
        exit_qemu(value)
    }
    halt_forever()
}

/// Reports a condition the kernel cannot boot past, then stops with failure.
pub fn fatal(reason: fmt::Arguments<'_>) -> ! {
    kprintln!("FATAL: {reason}");
    stop(false)
}

/// Whether the command line asked for verdicts through QEMU's exit device.
pub fn qemu_exit() -> bool {
    QEMU_EXIT.load(Ordering::Relaxed)
}
