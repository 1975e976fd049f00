//! The global allocator of kernel-core's host tests: it wraps the system
//! allocator, counts the allocations made on the current thread while
//! [`count`] runs, and makes the Nth one of them fail (return null) while
//! [`fail_at`] runs, so a test can run a kernel operation with its first,
//! second, ... allocation failing and check that the kernel refuses it
//! with OUT_OF_MEMORY and nothing changed. Allocations inside
//! [`unfailing`] (the fake machine's own bookkeeping, which stands for
//! hardware) are neither counted nor failed.
//!
//! Linking this crate installs the allocator (`#[global_allocator]` is
//! here), so only test binaries may depend on it; it must never reach the
//! kernel. Its state is per thread, so tests running in parallel do not
//! see each other's allocations, and reading that state never allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a failed allocation prints where it came from ([`trace_failures`]).
static TRACE: AtomicBool = AtomicBool::new(false);

/// Makes each failed allocation print its backtrace to stderr (for finding
/// which allocation of an operation a test failed at).
pub fn trace_failures(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

/// What the allocator does on one thread.
#[derive(Clone, Copy, Debug)]
struct State {
    /// Inside [`count`] or [`fail_at`]: allocations are counted.
    counting: bool,
    /// Allocations counted so far.
    count: u64,
    /// The allocation (1-based, in `count`'s numbering) that fails; 0: none.
    fail_at: u64,
    /// Whether that allocation came (and failed).
    failed: bool,
    /// Depth of [`unfailing`] calls: above 0, nothing is counted or failed.
    exempt: u32,
}

const IDLE: State = State {
    counting: false,
    count: 0,
    fail_at: 0,
    failed: false,
    exempt: 0,
};

thread_local! {
    // A const-initialised Cell of a type without Drop: reading it never
    // allocates and never registers a destructor, so the allocator can use it.
    static STATE: Cell<State> = const { Cell::new(IDLE) };
}

/// The allocator; installed for every binary that links this crate.
#[derive(Debug)]
pub struct TestAllocator;

#[global_allocator]
static ALLOCATOR: TestAllocator = TestAllocator;

impl TestAllocator {
    /// Counts one allocation on this thread; true when it must fail.
    fn allocation_fails() -> bool {
        STATE
            .try_with(|cell| {
                let mut state = cell.get();
                if !state.counting || state.exempt > 0 {
                    return false;
                }
                state.count += 1;
                let fails = state.count == state.fail_at;
                state.failed |= fails;
                cell.set(state);
                if fails && TRACE.load(Ordering::Relaxed) {
                    unfailing(|| {
                        let trace = std::backtrace::Backtrace::force_capture();
                        eprintln!(
                            "test-allocator: allocation {} fails at\n{trace}",
                            state.count
                        );
                    });
                }
                fails
            })
            .unwrap_or(false)
    }
}

// SAFETY: every call is passed to `System` unchanged, or answered with null
// (a failed allocation, which GlobalAlloc allows) before reaching it.
unsafe impl GlobalAlloc for TestAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::allocation_fails() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::allocation_fails() {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (this allocator hands out no other).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growth can fail like a new allocation (a failed realloc leaves
        // the old block to its owner); a shrink never does.
        if new_size > layout.size() && Self::allocation_fails() {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with `layout`; the caller's
        // contract for `new_size` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What one [`fail_at`] run saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The allocations counted (on this thread, outside [`unfailing`]).
    pub allocations: u64,
    /// Whether the allocation that was to fail came, and failed.
    pub failed: bool,
}

/// Runs `f` with the `n`th allocation it makes on this thread (1-based;
/// every other one succeeds) failing; `n == 0` fails none. Nested calls
/// are not supported (the inner one panics).
pub fn fail_at<R>(n: u64, f: impl FnOnce() -> R) -> (R, Run) {
    let outer = STATE.with(Cell::get);
    assert!(
        !outer.counting,
        "test-allocator: fail_at or count inside another"
    );
    STATE.with(|cell| {
        cell.set(State {
            counting: true,
            count: 0,
            fail_at: n,
            failed: false,
            exempt: 0,
        });
    });
    let result = f();
    let state = STATE.with(|cell| cell.replace(outer));
    (
        result,
        Run {
            allocations: state.count,
            failed: state.failed,
        },
    )
}

/// Runs `f` and returns with its result the allocations it made on this
/// thread (outside [`unfailing`]).
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let (result, run) = fail_at(0, f);
    (result, run.allocations)
}

/// Runs `f` with its allocations neither counted nor failed: for the code
/// under a test that stands for something other than the kernel's heap.
pub fn unfailing<R>(f: impl FnOnce() -> R) -> R {
    let enter = |delta: i32| {
        STATE.with(|cell| {
            let mut state = cell.get();
            state.exempt = state.exempt.saturating_add_signed(delta);
            cell.set(state);
        });
    };
    enter(1);
    let result = f();
    enter(-1);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_allocations_only_and_fails_the_one_asked_for() {
        let ((), n) = count(|| {
            let a = Box::new(1u64);
            let b = vec![1u8; 100];
            std::hint::black_box((a, b));
            std::thread::spawn(|| std::hint::black_box(Box::new(3u32)))
                .join()
                .ok();
        });
        // Two boxes here; the spawned thread's own allocations are its own.
        assert!(n >= 2);
        let ((), none) = count(|| ());
        assert_eq!(none, 0);

        let (results, run) = fail_at(2, || {
            let mut first: Vec<u64> = Vec::new();
            let mut second: Vec<u64> = Vec::new();
            let mut third: Vec<u64> = Vec::new();
            [
                first.try_reserve(1).is_ok(),
                second.try_reserve(1).is_ok(),
                third.try_reserve(1).is_ok(),
            ]
        });
        assert_eq!(results, [true, false, true]);
        assert_eq!(
            run,
            Run {
                allocations: 3,
                failed: true
            }
        );

        let (grown, run) = fail_at(2, || {
            let mut v: Vec<u64> = Vec::new();
            let first = v.try_reserve_exact(1).is_ok();
            v.push(1);
            // The growth is a realloc: it fails, and the old block stays.
            let grew = v.try_reserve_exact(100).is_ok();
            (first, grew, v)
        });
        assert_eq!((grown.0, grown.1, grown.2), (true, false, vec![1]));
        assert!(run.failed);

        let (ok, run) = fail_at(1, || unfailing(|| Vec::<u8>::new().try_reserve(8).is_ok()));
        assert!(ok);
        assert_eq!(
            run,
            Run {
                allocations: 0,
                failed: false
            }
        );
    }
}
