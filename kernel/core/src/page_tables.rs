//! What a process's page tables cost. The kernel charges the tables a
//! mapping makes to the process that asked for it (issue 15, finding 3:
//! sparse mappings used to make the kernel allocate tables no limit
//! covered). Before mapping it charges [`bound`], the most the mapping can
//! add; the machine reports what it really allocated and the rest is given
//! back. Unmapping frees tables left empty, and UNMAP's freed bytes count
//! them.
//!
//! The shape is x86_64's four levels of 512-entry, 4 KiB tables: a page
//! table per 2 MiB, a directory per 1 GiB, a directory-pointer table per
//! 512 GiB of user space that holds a page; the top table (PML4) belongs to
//! the space itself and is not counted here.

use crate::phys::PAGE_SIZE;

/// The span of user address space one table of each counted level maps.
const SPANS: [u64; 3] = [1 << 21, 1 << 30, 1 << 39];

/// The most table bytes mapping `length` bytes at `address` can add: every
/// table the range touches, as if none existed yet. Without an address
/// (the kernel places the mapping) the range may straddle one more
/// boundary of each span.
pub fn bound(address: Option<u64>, length: u64) -> u64 {
    if length == 0 {
        return 0;
    }
    let tables: u64 = SPANS
        .iter()
        .map(|span| match address {
            Some(start) => {
                let last = start.saturating_add(length - 1);
                last / span - start / span + 1
            }
            None => length.div_ceil(*span) + 1,
        })
        .sum();
    tables.saturating_mul(PAGE_SIZE)
}

/// The table bytes that map exactly the pages in `pages` (page addresses in
/// ascending order): one table of each level per span holding a page.
pub fn occupied(pages: impl IntoIterator<Item = u64>) -> u64 {
    let mut last = [u64::MAX; 3];
    let mut tables = 0;
    for page in pages {
        for (level, span) in SPANS.iter().enumerate() {
            let region = page / span;
            if region != last[level] {
                last[level] = region;
                tables += 1;
            }
        }
    }
    tables * PAGE_SIZE
}

/// The first index in `range` whose word of `table` is not zero (an entry
/// in use: a user-half entry is zero or present), `None` if all are zero.
///
/// Most of a process's tables are sparse, and walking them was a tenth of
/// a KVM boot's time: eight words are skipped per step when their OR is
/// zero. `range` must lie within the table.
pub fn first_in_use(table: &[u64; 512], range: core::ops::Range<usize>) -> Option<usize> {
    let mut index = range.start;
    while index < range.end {
        if index.is_multiple_of(8) && index + 8 <= range.end {
            let chunk = &table[index..index + 8];
            if chunk.iter().fold(0, |any, &word| any | word) == 0 {
                index += 8;
                continue;
            }
        }
        if table[index] != 0 {
            return Some(index);
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn one_page_needs_three_tables() {
        assert_eq!(bound(Some(0x40_0000), PAGE_SIZE), 3 * PAGE_SIZE);
        assert_eq!(occupied([0x40_0000]), 3 * PAGE_SIZE);
        assert_eq!(bound(None, PAGE_SIZE), 6 * PAGE_SIZE);
        assert_eq!(bound(Some(0x40_0000), 0), 0);
    }

    #[test]
    fn pages_a_gigabyte_apart_need_tables_each() {
        // The sparse pattern of the finding: one page per GiB.
        let pages: Vec<u64> = (0..8).map(|i| GIB + i * GIB).collect();
        assert_eq!(occupied(pages.iter().copied()), (8 + 8 + 1) * PAGE_SIZE);
        // Pages within one 2 MiB share all three.
        assert_eq!(occupied([2 * MIB, 2 * MIB + PAGE_SIZE]), 3 * PAGE_SIZE);
    }

    #[test]
    fn a_range_across_boundaries_counts_each_table() {
        // 4 MiB from 1 MiB below a 1 GiB boundary: 3 page tables, 2
        // directories, 1 directory-pointer table.
        assert_eq!(bound(Some(GIB - MIB), 4 * MIB), 6 * PAGE_SIZE);
        assert_eq!(
            bound(Some(u64::MAX - PAGE_SIZE + 1), PAGE_SIZE),
            3 * PAGE_SIZE
        );
    }

    #[test]
    fn first_in_use_finds_the_first_entry_of_the_range() {
        let mut table = [0u64; 512];
        assert_eq!(first_in_use(&table, 0..512), None);
        table[7] = 1;
        table[8] = 1;
        table[511] = 1;
        assert_eq!(first_in_use(&table, 0..512), Some(7));
        assert_eq!(first_in_use(&table, 8..512), Some(8));
        assert_eq!(first_in_use(&table, 9..511), None);
        assert_eq!(first_in_use(&table, 9..512), Some(511));
        assert_eq!(first_in_use(&table, 5..5), None);
        assert_eq!(first_in_use(&table, 0..7), None);
    }

    proptest! {
        /// The chunked scan finds what a scan of every entry finds.
        #[test]
        fn first_in_use_is_the_first_nonzero_word(
            used in prop::collection::btree_set(0usize..512, 0..12),
            start in 0usize..=512,
            length in 0usize..=512,
        ) {
            let mut table = [0u64; 512];
            for &index in &used {
                table[index] = (index as u64) << 12 | 1;
            }
            let end = (start + length).min(512);
            let expected = (start..end).find(|&index| table[index] != 0);
            prop_assert_eq!(first_in_use(&table, start..end), expected);
        }

        /// Whatever is already mapped, a mapping adds at most its bound.
        #[test]
        fn a_mapping_adds_at_most_its_bound(
            existing in prop::collection::btree_set(0u64..1 << 24, 0..40),
            start in 0u64..1 << 24,
            pages in 1u64..2048,
            placed in any::<bool>(),
        ) {
            let existing: BTreeSet<u64> = existing.into_iter().map(|p| p * PAGE_SIZE).collect();
            let start = start * PAGE_SIZE;
            let mut after = existing.clone();
            after.extend((0..pages).map(|i| start + i * PAGE_SIZE));
            let added = occupied(after) - occupied(existing);
            let address = (!placed).then_some(start);
            prop_assert!(added <= bound(address, pages * PAGE_SIZE));
        }
    }
}
