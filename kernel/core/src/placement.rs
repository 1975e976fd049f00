//! Where MAP_ANONYMOUS puts memory when the caller names no address
//! (ABI.md §6, "Memory"): the policy, shared by every machine; the machine
//! only answers which page is mapped.
//!
//! Must never cost more than what is mapped: each miss jumps past the
//! mapped page in the way, whatever distance the search covers.

use abi::process::{USER_MAP_BASE, USER_STACK_SIZE, USER_STACK_TOP};

const PAGE: u64 = crate::phys::PAGE_SIZE;

/// The end of the map area: the stack lies above it.
pub const MAP_AREA_END: u64 = USER_STACK_TOP - USER_STACK_SIZE;

/// The address for `length` bytes (page multiple): the lowest from `hint`
/// up, else from [`USER_MAP_BASE`] up, where the range and a guard page on
/// either side are unmapped, below [`MAP_AREA_END`]. `first_mapped(start,
/// end)` is the machine's lowest mapped page in `[start, end)`.
pub fn place(
    hint: u64,
    length: u64,
    first_mapped: impl Fn(u64, u64) -> Option<u64>,
) -> Option<u64> {
    search(hint, length, &first_mapped).or_else(|| search(USER_MAP_BASE, length, &first_mapped))
}

fn search(from: u64, length: u64, first_mapped: &impl Fn(u64, u64) -> Option<u64>) -> Option<u64> {
    let mut candidate = from.max(USER_MAP_BASE);
    loop {
        let end = candidate
            .checked_add(length)?
            .checked_add(PAGE)
            .filter(|&end| end <= MAP_AREA_END)?;
        match first_mapped(candidate - PAGE, end) {
            None => return Some(candidate),
            Some(mapped) => candidate = mapped + 2 * PAGE,
        }
    }
}

/// The hint after a mapping the kernel placed at `address`: the next search
/// starts past it and its guard page.
pub const fn next_hint(address: u64, length: u64) -> u64 {
    address + length + PAGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use std::collections::BTreeSet;

    fn first_in(mapped: &BTreeSet<u64>) -> impl Fn(u64, u64) -> Option<u64> + '_ {
        |start, end| mapped.range(start..end).next().copied()
    }

    #[test]
    fn an_empty_area_places_at_the_hint_or_the_base() {
        let mapped = BTreeSet::new();
        assert_eq!(place(0, PAGE, first_in(&mapped)), Some(USER_MAP_BASE));
        let hint = USER_MAP_BASE + 10 * PAGE;
        assert_eq!(place(hint, PAGE, first_in(&mapped)), Some(hint));
    }

    #[test]
    fn a_guard_page_stays_free_on_either_side() {
        let mapped: BTreeSet<u64> = [USER_MAP_BASE + 3 * PAGE].into();
        // Three pages at the base would leave no guard below the mapped
        // page: they go past it and its guard.
        let at = place(0, 3 * PAGE, first_in(&mapped));
        assert_eq!(at, Some(USER_MAP_BASE + 5 * PAGE));
        // Two fit below it, with a free page between.
        assert_eq!(place(0, 2 * PAGE, first_in(&mapped)), Some(USER_MAP_BASE));
    }

    #[test]
    fn a_hint_past_the_free_room_falls_back_to_the_bottom() {
        let mapped = BTreeSet::new();
        let hint = MAP_AREA_END - PAGE;
        assert_eq!(
            place(hint, 4 * PAGE, first_in(&mapped)),
            Some(USER_MAP_BASE)
        );
        assert_eq!(place(0, MAP_AREA_END, first_in(&mapped)), None);
    }

    #[test]
    fn the_search_costs_what_is_mapped_not_the_distance() {
        // 100 pages mapped one apart; the free room lies above all of them.
        let mapped: BTreeSet<u64> = (0..100).map(|i| USER_MAP_BASE + 2 * i * PAGE).collect();
        let asked = Cell::new(0u32);
        let first = |start, end| {
            asked.set(asked.get() + 1);
            first_in(&mapped)(start, end)
        };
        let at = place(0, 1 << 30, first);
        assert_eq!(at, Some(USER_MAP_BASE + 2 * 99 * PAGE + 2 * PAGE));
        assert!(asked.get() <= 101, "{} questions", asked.get());
    }

    #[test]
    fn lengths_near_the_top_do_not_overflow() {
        let mapped = BTreeSet::new();
        assert_eq!(
            place(u64::MAX - PAGE, u64::MAX - PAGE, first_in(&mapped)),
            None
        );
    }
}
