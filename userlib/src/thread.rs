//! Threads: [`spawn_thread`] runs a closure on a new thread of this
//! process, on a stack of its own from MAP_ANONYMOUS.

use alloc::boxed::Box;

use abi::Error;
use abi::kcall::{DEFAULT_PRIORITY, protection};

use crate::arch;
use crate::descriptor::OwnedDescriptor;
use crate::kernel;

/// A stack size that suits most threads.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

const PAGE: u64 = abi::PAGE_BYTES;

/// What a new thread runs; boxed twice so that one thin pointer (the
/// thread's argument register) carries it.
type Entry = Box<dyn FnOnce() + Send + 'static>;

/// Starts a thread that runs `entry` on a stack of `stack_size` bytes
/// (rounded up to whole pages), at the default priority, and ends it
/// (THREAD_EXIT 0) when `entry` returns. Returns the thread's descriptor.
///
/// The stack has an unmapped page below it, so an overflow faults. It is
/// not unmapped when the thread ends: nothing tells this process when that
/// happens.
pub fn spawn_thread<F: FnOnce() + Send + 'static>(
    entry: F,
    stack_size: usize,
) -> Result<OwnedDescriptor, Error> {
    let length = u64::try_from(stack_size)
        .ok()
        .and_then(|size| size.max(PAGE).checked_next_multiple_of(PAGE))
        .filter(|length| length.checked_add(PAGE).is_some())
        .ok_or(Error::InvalidArgument)?;
    let base = kernel::map_anonymous(0, length + PAGE, protection::READ | protection::WRITE)?;
    // The guard page; a kernel that cannot unmap part of a mapping leaves
    // it mapped, which costs only the fault on overflow.
    crate::raw::note_rust_memory(base, length + PAGE);
    let _ = kernel::unmap(base, PAGE);
    let stack_top = base + PAGE + length;
    let entry: Box<Entry> = Box::new(Box::new(entry));
    let argument = Box::into_raw(entry).expose_provenance() as u64;
    match kernel::thread_create(
        arch::thread_entry_address(),
        stack_top,
        argument,
        DEFAULT_PRIORITY,
    ) {
        Ok(thread) => Ok(thread),
        Err(error) => {
            // SAFETY: no thread was created, so this is still the only use
            // of the pointer `Box::into_raw` just returned.
            drop(unsafe { reclaim(argument) });
            let _ = kernel::unmap(base + PAGE, length);
            Err(error)
        }
    }
}

/// The entry closure behind a thread argument.
///
/// # Safety
/// `argument` must come from `Box::into_raw` in [`spawn_thread`] and be
/// reclaimed exactly once.
unsafe fn reclaim(argument: u64) -> Box<Entry> {
    let pointer = core::ptr::with_exposed_provenance_mut::<Entry>(argument as usize);
    // SAFETY: the caller guarantees `pointer` came from `Box::into_raw` of
    // a `Box<Entry>` and that nothing else owns it any more.
    unsafe { Box::from_raw(pointer) }
}

/// Where a userlib thread starts (called by the assembly entry stub with
/// THREAD_CREATE's argument).
#[cfg(target_os = "none")]
pub(crate) extern "C" fn thread_main(argument: u64) -> ! {
    // SAFETY: the kernel passes each thread the argument `spawn_thread`
    // gave THREAD_CREATE for it, once; `spawn_thread` let go of it.
    let entry = unsafe { reclaim(argument) };
    entry();
    kernel::thread_exit(0)
}

/// A thread entry that needs no heap: `function(argument)` in a new thread.
#[derive(Debug)]
pub struct RawEntry {
    /// What the thread runs; it must never return.
    pub function: extern "C" fn(u64) -> !,
    /// Its argument.
    pub argument: u64,
}

/// Starts a thread at `priority` running `entry` on the stack that ends at
/// `stack_top` (16-byte aligned, in memory the caller mapped and keeps
/// until the thread ends), without allocating.
pub fn spawn_raw_on(
    entry: &'static RawEntry,
    stack_top: u64,
    priority: u32,
) -> Result<OwnedDescriptor, Error> {
    let argument = core::ptr::from_ref(entry).expose_provenance() as u64;
    kernel::thread_create(
        arch::raw_thread_entry_address(),
        stack_top,
        argument,
        priority,
    )
}

/// Starts a thread at `priority` running `entry` on a fresh stack of
/// `stack_size` bytes, without allocating from the heap in either thread
/// (for a low-priority thread that must never hold the heap's lock).
pub fn spawn_raw(
    entry: &'static RawEntry,
    stack_size: u64,
    priority: u32,
) -> Result<OwnedDescriptor, Error> {
    let length = stack_size
        .max(PAGE)
        .checked_next_multiple_of(PAGE)
        .ok_or(Error::InvalidArgument)?;
    let base = kernel::map_anonymous(0, length, protection::READ | protection::WRITE)?;
    crate::raw::note_rust_memory(base, length);
    let argument = core::ptr::from_ref(entry).expose_provenance() as u64;
    match kernel::thread_create(
        arch::raw_thread_entry_address(),
        base + length,
        argument,
        priority,
    ) {
        Ok(thread) => Ok(thread),
        Err(error) => {
            let _ = kernel::unmap(base, length);
            Err(error)
        }
    }
}
