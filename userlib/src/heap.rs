//! The global allocator: `talc`, growing with MAP_ANONYMOUS whenever it
//! runs out (at least 256 KiB at a time, at an address the kernel
//! chooses). Memory is never given back to the kernel.

use core::alloc::Layout;

use abi::kcall::protection;
use talc::{OomHandler, Span, Talc, Talck};

use crate::kernel;

/// The least the heap grows by.
const GROWTH: usize = 256 * 1024;
const PAGE: usize = abi::PAGE_SIZE;

/// Maps more memory when talc runs out; remembers the last arena so that
/// memory the kernel places right above it extends it instead of starting
/// a new one.
struct MapOnDemand {
    last: Span,
}

impl OomHandler for MapOnDemand {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        // Room for the allocation at any alignment, plus talc's own
        // bookkeeping (about 1 KiB in the first arena, a word in others).
        let bytes = layout
            .size()
            .checked_add(layout.align())
            .and_then(|bytes| bytes.checked_add(PAGE))
            .ok_or(())?
            .max(GROWTH)
            .next_multiple_of(PAGE);
        let address = kernel::map_anonymous(0, bytes as u64, protection::READ | protection::WRITE)
            .map_err(|_| ())?;
        crate::raw::note_rust_memory(address, bytes as u64);
        let base = core::ptr::with_exposed_provenance_mut::<u8>(address as usize);
        let fresh = Span::from_base_size(base, bytes);
        if let Some((last_base, last_acme)) = talc.oom_handler.last.get_base_acme()
            && last_acme == base
        {
            let grown = Span::new(last_base, base.wrapping_add(bytes));
            // SAFETY: `grown` is the last arena plus the memory just mapped
            // right above it, for the heap alone (readable, writable, and
            // not part of any other arena).
            talc.oom_handler.last = unsafe { talc.extend(talc.oom_handler.last, grown) };
            return Ok(());
        }
        // SAFETY: the memory was just mapped, readable and writable, for the
        // heap alone; it overlaps no other arena.
        talc.oom_handler.last = unsafe { talc.claim(fresh) }?;
        Ok(())
    }
}

/// Gives way to other threads while the heap is locked by one of them
/// (a preempted lock holder cannot finish while we spin).
struct YieldWhileLocked;

impl spin::relax::RelaxStrategy for YieldWhileLocked {
    fn relax() {
        let _ = kernel::yield_now();
    }
}

#[global_allocator]
static HEAP: Talck<spin::mutex::Mutex<(), YieldWhileLocked>, MapOnDemand> =
    Talc::new(MapOnDemand {
        last: Span::empty(),
    })
    .lock();
