//! Turns the bootloader's memory map into the page-aligned, sorted, disjoint
//! list of physical ranges the kernel may hand out.
//!
//! Firmware maps are unsorted, may overlap (a usable region overlapping a
//! reserved one) and end with zero entries, and the PVH path does not mark the
//! kernel image, the boot archive or its own structures as used. So the rule
//! is conservative: a byte is usable only if some region says "usable", no
//! region says anything else, and it lies in no reserved range we name.

use crate::boot_info::{MemoryKind, MemoryMap};
use crate::phys::PhysRange;

/// How many disjoint usable ranges are kept.
pub const MAX_USABLE_RANGES: usize = 256;

/// Memory below this address is never handed out: it holds the real-mode
/// IVT, the BIOS data area, the EBDA and option ROMs, and boot structures.
pub const LOW_MEMORY_FLOOR: u64 = 0x10_0000;

/// Sorted, disjoint, page-aligned physical ranges of free RAM.
#[derive(Clone, Copy, Debug)]
pub struct UsableRanges {
    ranges: [PhysRange; MAX_USABLE_RANGES],
    len: usize,
    dropped: usize,
}

impl UsableRanges {
    /// Computes the usable ranges of `map`, minus every `reserved` range and
    /// everything below `floor`.
    pub fn compute(map: &MemoryMap, reserved: &[PhysRange], floor: u64) -> Self {
        let mut usable = Self {
            ranges: [PhysRange::default(); MAX_USABLE_RANGES],
            len: 0,
            dropped: 0,
        };
        // Merge first, align after: two touching usable regions may share a page.
        for region in map
            .regions()
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable)
        {
            usable.add(region.range);
        }
        let floor = crate::phys::align_up(floor, crate::phys::PAGE_SIZE);
        let mut i = 0;
        while i < usable.len {
            let mut range = usable.ranges[i].shrink_to_pages();
            range.start = range.start.max(floor);
            if range.is_empty() {
                usable.delete(i);
            } else {
                usable.ranges[i] = range;
                i += 1;
            }
        }
        for region in map
            .regions()
            .iter()
            .filter(|r| r.kind != MemoryKind::Usable)
        {
            usable.exclude(region.range.grow_to_pages());
        }
        for hole in reserved {
            usable.exclude(hole.grow_to_pages());
        }
        usable
    }

    /// The ranges, sorted by address.
    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// How many ranges were lost because the list was full.
    pub const fn dropped(&self) -> usize {
        self.dropped
    }

    /// The total number of usable bytes.
    pub fn total_bytes(&self) -> u64 {
        self.ranges().iter().map(PhysRange::len).sum()
    }

    /// Adds `range`, merging it with any range it overlaps or touches.
    fn add(&mut self, mut range: PhysRange) {
        if range.is_empty() {
            return;
        }
        // Absorb every existing range that overlaps or touches the new one.
        let mut i = 0;
        while i < self.len {
            let r = self.ranges[i];
            if r.start <= range.end && range.start <= r.end {
                range.start = range.start.min(r.start);
                range.end = range.end.max(r.end);
                self.delete(i);
            } else {
                i += 1;
            }
        }
        let at = self
            .ranges()
            .iter()
            .position(|r| r.start > range.start)
            .unwrap_or(self.len);
        self.insert(at, range);
    }

    /// Removes every address of `hole` (page-aligned by the caller), splitting a
    /// range when the hole lies inside it.
    pub fn exclude(&mut self, hole: PhysRange) {
        if hole.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.len {
            let r = self.ranges[i];
            if !r.overlaps(&hole) {
                i += 1;
                continue;
            }
            let left = PhysRange {
                start: r.start,
                end: hole.start.max(r.start),
            };
            let right = PhysRange {
                start: hole.end.min(r.end),
                end: r.end,
            };
            match (left.is_empty(), right.is_empty()) {
                (true, true) => self.delete(i),
                (false, true) => {
                    self.ranges[i] = left;
                    i += 1;
                }
                (true, false) => {
                    self.ranges[i] = right;
                    i += 1;
                }
                (false, false) => {
                    self.ranges[i] = left;
                    self.insert(i + 1, right);
                    i += 2;
                }
            }
        }
    }

    fn delete(&mut self, at: usize) {
        self.ranges.copy_within(at + 1..self.len, at);
        self.len -= 1;
    }

    /// Inserts at `at`; when full, the smallest range is dropped (and counted).
    fn insert(&mut self, at: usize, range: PhysRange) {
        if self.len == MAX_USABLE_RANGES {
            self.dropped += 1;
            let smallest = self
                .ranges()
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.len())
                .map(|(i, r)| (i, r.len()));
            match smallest {
                Some((i, len)) if len < range.len() => {
                    self.delete(i);
                    let at = if i < at { at - 1 } else { at };
                    self.insert(at, range);
                }
                _ => {}
            }
            return;
        }
        self.ranges.copy_within(at..self.len, at + 1);
        self.ranges[at] = range;
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot_info::MemoryRegion;
    use crate::phys::PAGE_SIZE;
    use proptest::prelude::*;

    fn region(start: u64, end: u64, kind: MemoryKind) -> MemoryRegion {
        MemoryRegion {
            range: PhysRange { start, end },
            kind,
        }
    }

    /// A typical QEMU e820 map (q35, 256 MiB), unsorted as microvm gives it.
    fn qemu_map() -> MemoryMap {
        let mut map = MemoryMap::new();
        map.push(region(0x10_0000, 0x1000_0000, MemoryKind::Usable));
        map.push(region(0, 0x9_fc00, MemoryKind::Usable));
        map.push(region(0x9_fc00, 0xa_0000, MemoryKind::Reserved));
        map.push(region(0xf_0000, 0x10_0000, MemoryKind::Reserved));
        map.push(region(0xfeff_c000, 0xff00_0000, MemoryKind::Reserved));
        map.push(region(0, 0, MemoryKind::Usable));
        map
    }

    #[test]
    fn qemu_map_minus_kernel_and_archive() {
        let kernel = PhysRange {
            start: 0x20_0000,
            end: 0x2f_3123,
        };
        let archive = PhysRange {
            start: 0x7ff_0000,
            end: 0x800_0010,
        };
        let usable = UsableRanges::compute(&qemu_map(), &[kernel, archive], LOW_MEMORY_FLOOR);
        assert_eq!(
            usable.ranges(),
            &[
                PhysRange {
                    start: 0x10_0000,
                    end: 0x20_0000
                },
                PhysRange {
                    start: 0x2f_4000,
                    end: 0x7ff_0000
                },
                PhysRange {
                    start: 0x800_1000,
                    end: 0x1000_0000
                },
            ]
        );
    }

    #[test]
    fn overlapping_reserved_region_wins_over_usable() {
        let mut map = MemoryMap::new();
        map.push(region(0x10_0000, 0x40_0000, MemoryKind::Usable));
        map.push(region(0x20_0800, 0x20_0900, MemoryKind::AcpiNvs));
        let usable = UsableRanges::compute(&map, &[], 0);
        assert_eq!(
            usable.ranges(),
            &[
                PhysRange {
                    start: 0x10_0000,
                    end: 0x20_0000
                },
                PhysRange {
                    start: 0x20_1000,
                    end: 0x40_0000
                },
            ]
        );
    }

    #[test]
    fn touching_usable_regions_merge() {
        let mut map = MemoryMap::new();
        map.push(region(0x20_0000, 0x30_0000, MemoryKind::Usable));
        map.push(region(0x10_0000, 0x20_0000, MemoryKind::Usable));
        map.push(region(0x30_0000, 0x30_0800, MemoryKind::Usable));
        let usable = UsableRanges::compute(&map, &[], 0);
        assert_eq!(
            usable.ranges(),
            &[PhysRange {
                start: 0x10_0000,
                end: 0x30_0000
            }]
        );
    }

    #[test]
    fn overflow_keeps_the_largest_ranges() {
        let mut map = MemoryMap::new();
        map.push(region(0, 0x1000_0000, MemoryKind::Usable));
        // Punch more holes than the list can hold ranges.
        let holes: Vec<PhysRange> = (0..(MAX_USABLE_RANGES as u64 + 10))
            .map(|i| PhysRange {
                start: (2 * i + 1) * PAGE_SIZE,
                end: (2 * i + 2) * PAGE_SIZE,
            })
            .collect();
        let usable = UsableRanges::compute(&map, &holes, 0);
        assert_eq!(usable.ranges().len(), MAX_USABLE_RANGES);
        assert!(usable.dropped() > 0);
        let last = usable.ranges().last().copied().unwrap_or_default();
        assert_eq!(last.end, 0x1000_0000, "the big tail range survives");
    }

    fn arb_kind() -> impl Strategy<Value = MemoryKind> {
        prop_oneof![
            3 => Just(MemoryKind::Usable),
            1 => Just(MemoryKind::Reserved),
            1 => Just(MemoryKind::AcpiNvs),
            1 => Just(MemoryKind::BootloaderReclaimable),
        ]
    }

    proptest! {
        /// Every page the result reports is usable per the map and outside every
        /// reserved range; every page that is so is reported (checked page by
        /// page against a direct evaluation of the rule).
        #[test]
        fn result_matches_the_rule_page_by_page(
            regions in prop::collection::vec((0u64..64, 0u64..64, arb_kind()), 0..12),
            reserved in prop::collection::vec((0u64..64, 0u64..16), 0..4),
            floor in 0u64..8,
        ) {
            let unit = 0x800; // half a page, so that alignment matters
            let mut map = MemoryMap::new();
            for (a, b, kind) in &regions {
                map.push(region(a * unit, (a + b) * unit, *kind));
            }
            let reserved: Vec<PhysRange> =
                reserved.iter().map(|(a, b)| PhysRange { start: a * unit, end: (a + b) * unit }).collect();
            let usable = UsableRanges::compute(&map, &reserved, floor * unit);
            let r = usable.ranges();
            for pair in r.windows(2) {
                prop_assert!(pair[0].end < pair[1].start, "sorted, disjoint, not touching");
            }
            for range in r {
                prop_assert!(range.start % PAGE_SIZE == 0 && range.end % PAGE_SIZE == 0);
                prop_assert!(!range.is_empty());
            }
            for page in 0..(128 * unit / PAGE_SIZE) {
                let p = PhysRange { start: page * PAGE_SIZE, end: (page + 1) * PAGE_SIZE };
                let covered_usable = map.regions().iter().any(|m| {
                    m.kind == MemoryKind::Usable && m.range.start <= p.start && p.end <= m.range.end
                });
                // A page straddling two touching usable regions is also usable.
                let covered_usable = covered_usable || {
                    let mut at = p.start;
                    let mut progress = true;
                    while at < p.end && progress {
                        progress = false;
                        for m in map.regions().iter().filter(|m| m.kind == MemoryKind::Usable) {
                            if m.range.start <= at && at < m.range.end {
                                at = m.range.end;
                                progress = true;
                            }
                        }
                    }
                    at >= p.end
                };
                let expected = covered_usable
                    && p.start >= crate::phys::align_up(floor * unit, PAGE_SIZE)
                    && !map.regions().iter().any(|m| m.kind != MemoryKind::Usable && m.range.overlaps(&p))
                    && !reserved.iter().any(|h| h.overlaps(&p));
                let reported = r.iter().any(|x| x.start <= p.start && p.end <= x.end);
                prop_assert_eq!(expected, reported, "page {:#x}", p.start);
            }
        }
    }
}
