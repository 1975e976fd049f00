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

/// The protections against the kernel touching user memory that this CPU
/// has, as [`enable_user_memory_protections`] turned them on.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserMemoryProtections {
    /// SMEP: the kernel cannot execute user pages.
    pub smep: bool,
    /// SMAP: the kernel cannot read or write user pages by their user
    /// addresses (it reaches user memory only through the direct map).
    pub smap: bool,
    /// UMIP: user code cannot read the descriptor-table registers (SGDT,
    /// SIDT, SLDT, SMSW, STR), which would reveal kernel addresses.
    pub umip: bool,
}

/// Turns on SMEP, SMAP and UMIP where CPUID leaf 7 reports them (Intel SDM
/// vol. 3, 4.6 and 2.5). The kernel never dereferences a user address, so
/// they cost nothing and turn a kernel bug that would follow a user pointer
/// into a fault instead of an exploit.
pub fn enable_user_memory_protections() -> UserMemoryProtections {
    // CPUID leaf 7 subleaf 0: EBX bit 7 SMEP, bit 20 SMAP; ECX bit 2 UMIP.
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let have = UserMemoryProtections {
        smep: leaf7.ebx & (1 << 7) != 0,
        smap: leaf7.ebx & (1 << 20) != 0,
        umip: leaf7.ecx & (1 << 2) != 0,
    };
    let mut wanted = Cr4Flags::empty();
    wanted.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, have.smep);
    wanted.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, have.smap);
    wanted.set(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION, have.umip);
    // SAFETY: the kernel executes no user page, reaches user memory only
    // through the direct map and runs with RFLAGS.AC clear (SYSCALL's FMASK
    // and the trap entry clear it), so none of these
    // changes what the kernel can do; the CPU reports each bit as supported.
    unsafe { Cr4::update(|flags| *flags |= wanted) };
    have
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

/// Halts with interrupts enabled until an interrupt of
/// [`WAKE_VECTOR`](super::trap::WAKE_VECTOR)'s priority class arrives,
/// then disables them again. Every lower class is masked meanwhile (the
/// task priority, CR8) and stays pending: the caller is inside a trap and
/// must take no other interrupt. One pending already ends the halt at once
/// (STI's shadow covers the HLT).
pub fn halt_until_woken() {
    let mask_below_wake = u64::from(super::trap::WAKE_VECTOR >> 4) - 1;
    // SAFETY: CR8 only sets which interrupt classes are delivered, and is
    // set back to 0 (all) before the return; the interrupt taken runs the
    // WAKE (or spurious) handler, which takes no lock and touches nothing
    // but the local APIC.
    unsafe {
        core::arch::asm!(
            "mov cr8, {mask}",
            "sti",
            "hlt",
            "cli",
            "mov cr8, {all}",
            mask = in(reg) mask_below_wake,
            all = in(reg) 0u64,
        );
    }
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
