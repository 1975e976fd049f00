//! Physical address ranges and page arithmetic.

/// The size of the smallest page frame (4 KiB).
pub const PAGE_SIZE: u64 = abi::PAGE_BYTES;

/// A half-open range `[start, end)` of physical addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysRange {
    /// The first address in the range.
    pub start: u64,
    /// One past the last address in the range.
    pub end: u64,
}

impl PhysRange {
    /// The range `[start, start + len)`, saturating at the top of the address space.
    pub const fn from_start_len(start: u64, len: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(len),
        }
    }

    /// The number of bytes in the range (0 when `end <= start`).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `address` lies in the range.
    pub const fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }

    /// The largest page-aligned range inside this one (possibly empty).
    pub const fn shrink_to_pages(&self) -> Self {
        let start = align_up(self.start, PAGE_SIZE);
        let end = align_down(self.end, PAGE_SIZE);
        if start >= end {
            Self { start, end: start }
        } else {
            Self { start, end }
        }
    }

    /// The smallest page-aligned range holding this one.
    pub const fn grow_to_pages(&self) -> Self {
        Self {
            start: align_down(self.start, PAGE_SIZE),
            end: align_up(self.end, PAGE_SIZE),
        }
    }
}

/// Rounds `value` down to a multiple of `align` (a power of two).
pub const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// Rounds `value` up to a multiple of `align` (a power of two), saturating at
/// the largest multiple below `u64::MAX`.
pub const fn align_up(value: u64, align: u64) -> u64 {
    match value.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => align_down(u64::MAX, align),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_alignment_shrinks_and_grows() {
        let r = PhysRange {
            start: 0x1001,
            end: 0x3fff,
        };
        assert_eq!(
            r.shrink_to_pages(),
            PhysRange {
                start: 0x2000,
                end: 0x3000
            }
        );
        assert_eq!(
            r.grow_to_pages(),
            PhysRange {
                start: 0x1000,
                end: 0x4000
            }
        );
        let tiny = PhysRange {
            start: 0x1001,
            end: 0x1fff,
        };
        assert!(tiny.shrink_to_pages().is_empty());
        assert_eq!(align_up(u64::MAX, PAGE_SIZE), 0xffff_ffff_ffff_f000);
    }

    #[test]
    fn overlap_is_symmetric_and_half_open() {
        let a = PhysRange { start: 0, end: 10 };
        let b = PhysRange { start: 10, end: 20 };
        let c = PhysRange { start: 9, end: 11 };
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&c) && c.overlaps(&a) && b.overlaps(&c));
    }
}
