//! The big kernel lock (ABI.md §6.9) and the one thing a CPU does without
//! it: leaving an address space another CPU is about to change (the TLB
//! shootdown's "stall").
//!
//! Every entry into the kernel core takes the lock ([`acquire`], from
//! `system::handle`), and the exit to user mode or to the idle loop lets
//! it go in `trap_restore` (trap.rs), *after* the stack switch: a thread's
//! kernel stack is free for another CPU to resume it on only once this
//! CPU stands on another one. It must never be taken by an idle CPU that
//! has nothing to do (idle timer ticks return without it, see trap.rs),
//! nor held while waiting for anything but a stall acknowledgement.
//!
//! The lock-free parts, and why each is safe:
//! - The lock word: test-and-test-and-set, not a FIFO ticket lock. Under
//!   virtualisation with more virtual CPUs than host cores (CI's two
//!   cores run four), a FIFO lock makes every waiter wait for the next
//!   ticket's holder even while the host has descheduled it (lock-waiter
//!   preemption: the four-CPU tests crawled); with this one any waiter
//!   that runs takes it. No waiter starves for good: the holder lets go at
//!   every exit, and nothing needs the lock at a set time (the clock is
//!   the boot CPU's tick count, which only has to grow).
//! - The stall requests: a CPU waiting for the lock may be the one the
//!   holder waits for (the holder wants it out of an address space it is
//!   unmapping). A waiter therefore serves its stall request while it
//!   spins; interrupts are off in the kernel, so the holder also sends an
//!   IPI to a CPU that runs in user mode, whose trap brings it here. A CPU
//!   only loads a user address space while it holds the lock
//!   (`system::switch`), so once it acknowledged it holds no translation
//!   of the space until the holder let the lock go.
//! - Sleeping waiters: a waiter that has not got the lock after
//!   [`SPINS_BEFORE_SLEEP`] tries halts until the release wakes it (see
//!   [`sleep_until_released`] for why no wake-up is lost), so that a host
//!   running more virtual CPUs than it has cores can run the holder.
//! - [`LOADED`]: written by its own CPU only (under the lock, or in the
//!   stall it serves while the holder waits for exactly that), read by the
//!   holder under the lock.

use core::sync::atomic::{AtomicU64, Ordering};

use super::smp::MAX_CPUS;
use super::{memory, paging, smp, syscall};

/// The lock word: bit 0 ([`HELD`]) while a CPU holds the lock, and bit
/// `1 + i` while CPU `i` is halted waiting for it ([`sleeper_bit`]).
/// `trap_restore` lets go with one locked decrement, which leaves zero
/// unless a CPU sleeps, and then wakes the sleepers: the release and the
/// question "is anyone asleep" are one atomic step, so no wake-up is lost.
#[unsafe(no_mangle)]
static KERNEL_LOCK: AtomicU64 = AtomicU64::new(0);

/// The lock word's held bit.
const HELD: u64 = 1;

/// CPU `cpu`'s bit in the lock word while it sleeps on it; none for the
/// last CPU index (the word has 63 such bits), which only spins.
fn sleeper_bit(cpu: usize) -> Option<u64> {
    (cpu < 63).then(|| 1u64 << (cpu + 1))
}

/// The address space whose tables each CPU has loaded (0: the kernel's
/// own, which maps no user page).
static LOADED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The space each CPU is asked to leave (0: none), cleared as the answer.
static STALL: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Takes the kernel lock on this CPU, serving stall requests while it
/// waits; `trap_restore` lets it go when this CPU leaves the kernel.
#[inline]
pub fn acquire() {
    if !try_take() {
        wait_and_take();
    }
    syscall::set_holds_lock(true);
    let cpu = syscall::cpu_index() as usize % MAX_CPUS;
    let generation = KERNEL_TLB_GENERATION.load(Ordering::Acquire);
    if SEEN_GENERATION[cpu].load(Ordering::Relaxed) != generation {
        flush_everything();
        SEEN_GENERATION[cpu].store(generation, Ordering::Relaxed);
    }
}

/// One try: test, then test-and-set (waiters spin on a shared line).
#[inline(always)]
fn try_take() -> bool {
    let word = KERNEL_LOCK.load(Ordering::Relaxed);
    word & HELD == 0
        && KERNEL_LOCK
            .compare_exchange(word, word | HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
}

/// The lock was held: spins, serving stall requests, and halts after
/// [`SPINS_BEFORE_SLEEP`] tries, until it takes the lock.
#[cold]
#[inline(never)]
fn wait_and_take() {
    let mut tries = 0u32;
    loop {
        serve_stall();
        core::hint::spin_loop();
        if try_take() {
            return;
        }
        tries += 1;
        if tries == SPINS_BEFORE_SLEEP {
            tries = 0;
            sleep_until_released();
        }
    }
}

/// Tries of the lock word before a waiter halts. A holder that runs lets
/// go well within them (a trap's work); one that does not is most likely
/// descheduled by the host (more virtual CPUs than host cores), and a
/// waiter that spins then only keeps it from the core it needs: the
/// four-CPU conformance suite spent half of CPU 0's time here under KVM.
const SPINS_BEFORE_SLEEP: u32 = 1_000;

/// Halts this CPU until the lock is let go or a stall request comes for
/// it (or at once, if either happened already).
///
/// No wake-up is lost: the sleeper sets its bit in the lock word with a
/// locked operation, which also tells it whether the lock is still held;
/// a release after that leaves the bit in the word and so wakes it
/// (`trap_restore`). A stall request is posted with a locked operation
/// before [`stall_others`] reads the word, and read by the sleeper after
/// it set its bit: locked operations are totally ordered, so either the
/// sleeper sees the request and does not halt, or the requester sees the
/// bit and wakes it. [`WAKE_VECTOR`](super::trap::WAKE_VECTOR) ends the
/// halt even if it arrived first.
fn sleep_until_released() {
    let cpu = syscall::cpu_index() as usize % MAX_CPUS;
    let Some(bit) = sleeper_bit(cpu) else {
        return;
    };
    let word = KERNEL_LOCK.fetch_or(bit, Ordering::SeqCst);
    if word & HELD != 0 && STALL[cpu].load(Ordering::SeqCst) == 0 {
        SLEEPS.fetch_add(1, Ordering::Relaxed);
        super::cpu::halt_until_woken();
    }
    KERNEL_LOCK.fetch_and(!bit, Ordering::SeqCst);
}

/// How many times a CPU halted waiting for the lock (the boot log's
/// last lines report it).
static SLEEPS: AtomicU64 = AtomicU64::new(0);

/// How many times a CPU halted waiting for the lock since boot.
pub fn sleeps() -> u64 {
    SLEEPS.load(Ordering::Relaxed)
}

/// Wakes every CPU halted on the lock (`trap_restore` calls it after the
/// release, when one is): each retries, and one takes the lock.
pub extern "C" fn wake_sleepers() {
    let mut sleepers = KERNEL_LOCK.load(Ordering::SeqCst) >> 1;
    while sleepers != 0 {
        let cpu = sleepers.trailing_zeros() as usize;
        sleepers &= sleepers - 1;
        smp::wake(cpu);
    }
}

/// Bumped whenever a kernel mapping goes (a kernel stack freed, whose
/// slot may be mapped again to other frames). Its pages are global, so
/// other CPUs' TLBs may still hold them; each CPU flushes its TLB when it
/// next takes the lock and sees a new generation. Until then it touches
/// no kernel stack but the one it runs on, which is alive (freeing waits
/// until no CPU stands on a stack, `machine::free_retired`).
static KERNEL_TLB_GENERATION: AtomicU64 = AtomicU64::new(0);
/// The generation each CPU flushed for last.
static SEEN_GENERATION: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// A kernel mapping was removed (this CPU already flushed its own entry):
/// every other CPU flushes before it next uses a kernel stack.
pub fn kernel_mapping_removed() {
    KERNEL_TLB_GENERATION.fetch_add(1, Ordering::Release);
}

/// Drops every TLB entry of this CPU, global ones included (clearing
/// CR4.PGE and setting it again, Intel SDM vol. 3, 4.10.4.1).
fn flush_everything() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let flags = Cr4::read();
    if flags.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: only the global-pages bit changes, and back at once; the
        // page tables are untouched.
        unsafe {
            Cr4::write(flags - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(flags);
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}

/// Records that this CPU loaded `space`'s tables (under the lock).
pub fn loaded(space: u64) {
    loaded_on(syscall::cpu_index() as usize, space);
}

/// [`loaded`], by the CPU `cpu` (the running one) that knows its index.
#[inline]
pub fn loaded_on(cpu: usize, space: u64) {
    LOADED[cpu % MAX_CPUS].store(space, Ordering::Release);
}

/// The space whose tables this CPU has loaded.
pub fn loaded_here() -> u64 {
    LOADED[syscall::cpu_index() as usize % MAX_CPUS].load(Ordering::Acquire)
}

/// Leaves `space` if this CPU was asked to (see the module comment).
pub fn serve_stall() {
    let cpu = syscall::cpu_index() as usize % MAX_CPUS;
    let space = STALL[cpu].load(Ordering::Acquire);
    if space == 0 {
        return;
    }
    if LOADED[cpu].load(Ordering::Relaxed) == space
        && let Some(pml4) = memory::kernel_pml4()
    {
        // SAFETY: the kernel's own tables map everything the kernel uses;
        // user pages are not global, so the CR3 write drops every
        // translation of `space` from this CPU's TLB.
        unsafe { paging::activate(pml4) };
        LOADED[cpu].store(0, Ordering::Release);
    }
    STALL[cpu].store(0, Ordering::Release);
}

/// Makes every other CPU that has `space` loaded leave it, and waits until
/// each did: from then until this CPU lets the lock go, no other CPU holds
/// or can load a translation of `space`, so its entries may change and its
/// frames be freed. Called with the lock held; nothing to do with one CPU.
pub fn stall_others(space: u64) {
    if space == 0 {
        return;
    }
    let me = syscall::cpu_index() as usize;
    let online = smp::online() as usize;
    let mut waiting = 0u64;
    for cpu in (0..online.min(MAX_CPUS)).filter(|&c| c != me) {
        if LOADED[cpu].load(Ordering::Acquire) == space {
            // Posted with a locked operation before the sleepers are read
            // (see `sleep_until_released`). A CPU halted on the lock is in
            // `wait_and_take`, which serves the request once woken and
            // cannot leave while we hold the lock; any other is kicked
            // into the kernel, whose lock wait serves it.
            STALL[cpu].swap(space, Ordering::SeqCst);
            if sleeper_bit(cpu).is_some_and(|bit| KERNEL_LOCK.load(Ordering::SeqCst) & bit != 0) {
                smp::wake(cpu);
            } else {
                smp::kick(cpu);
            }
            waiting |= 1 << cpu;
        }
    }
    while waiting != 0 {
        let cpu = waiting.trailing_zeros() as usize;
        if STALL[cpu].load(Ordering::Acquire) == 0 {
            waiting &= !(1 << cpu);
        } else {
            core::hint::spin_loop();
        }
    }
    // (The caller flushes its own TLB for the pages it changes.)
}
