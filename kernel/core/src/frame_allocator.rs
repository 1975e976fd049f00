//! The physical frame allocator: one bit per 4 KiB frame between the lowest
//! and highest usable address, set when the frame is free.
//!
//! A bitmap (rather than a free list threaded through the frames) keeps the
//! bookkeeping in one place that the host can test, detects double frees, and
//! serves contiguous runs for the kernel heap. The search starts at a hint
//! word, so the common single-frame allocation does not rescan used memory.

use crate::memory_map::UsableRanges;
use crate::phys::{PAGE_SIZE, PhysRange};

/// Why a frame could not be returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The address is not 4 KiB aligned.
    Unaligned,
    /// The address is outside every range the allocator manages.
    NotManaged,
    /// The frame is already free.
    DoubleFree,
}

/// A bitmap allocator over the frames of a set of usable ranges.
#[derive(Debug)]
pub struct FrameAllocator<'a> {
    /// Physical address of the frame that bit 0 describes.
    base: u64,
    /// Number of frames the bitmap covers (free or not).
    frames: u64,
    bitmap: &'a mut [u64],
    /// The usable ranges, so that a frame in a gap is never taken back.
    usable: &'a [PhysRange],
    free_frames: u64,
    managed_frames: u64,
    /// The word where the next single-frame search starts.
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// How many bitmap words are needed to cover `ranges`.
    pub fn bitmap_words_for(ranges: &[PhysRange]) -> usize {
        match (ranges.first(), ranges.last()) {
            (Some(first), Some(last)) => {
                let frames = (last.end - first.start) / PAGE_SIZE;
                frames.div_ceil(64) as usize
            }
            _ => 0,
        }
    }

    /// An allocator handing out exactly the frames of `usable`, with its own
    /// bookkeeping stored in `bitmap` (at least [`Self::bitmap_words_for`]
    /// words; the caller keeps the bitmap's own frames out of `usable`, see
    /// [`Self::place_bitmap`]).
    pub fn new(bitmap: &'a mut [u64], usable: &'a [PhysRange]) -> Self {
        let base = usable.first().map_or(0, |r| r.start);
        let end = usable.last().map_or(0, |r| r.end);
        let frames = ((end - base) / PAGE_SIZE).min(bitmap.len() as u64 * 64);
        bitmap.fill(0);
        let mut allocator = Self {
            base,
            frames,
            bitmap,
            usable,
            free_frames: 0,
            managed_frames: 0,
            hint: 0,
        };
        for range in usable {
            let first = (range.start - base) / PAGE_SIZE;
            let last = ((range.end - base) / PAGE_SIZE).min(frames);
            for frame in first..last {
                allocator.set_free(frame, true);
            }
            allocator.managed_frames += last.saturating_sub(first);
        }
        allocator.free_frames = allocator.managed_frames;
        allocator
    }

    /// Chooses where the bitmap for `usable` will live: the start of the first
    /// range big enough to hold it. Returns the bitmap's range, which the caller
    /// removes from the usable set before calling [`Self::new`] (the bitmap still
    /// spans those frames; they are simply never free).
    pub fn place_bitmap(usable: &UsableRanges) -> Option<PhysRange> {
        let bytes = Self::bitmap_words_for(usable.ranges()) as u64 * 8;
        let bytes = crate::phys::align_up(bytes.max(1), PAGE_SIZE);
        usable
            .ranges()
            .iter()
            .find(|r| r.len() >= bytes)
            .map(|r| PhysRange::from_start_len(r.start, bytes))
    }

    /// Allocates one frame and returns its physical address.
    pub fn allocate(&mut self) -> Option<u64> {
        let words = self.bitmap.len();
        for step in 0..words {
            let index = (self.hint + step) % words;
            let word = self.bitmap[index];
            if word != 0 {
                let bit = word.trailing_zeros() as u64;
                let frame = index as u64 * 64 + bit;
                if frame >= self.frames {
                    continue;
                }
                self.set_free(frame, false);
                self.free_frames -= 1;
                self.hint = index;
                return Some(self.base + frame * PAGE_SIZE);
            }
        }
        None
    }

    /// Allocates `count` physically contiguous frames whose first address is a
    /// multiple of `align` bytes (a power of two, at least 4 KiB).
    pub fn allocate_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || !align.is_power_of_two() || align < PAGE_SIZE {
            return None;
        }
        let mut frame = 0;
        while frame + count <= self.frames {
            let address = self.base + frame * PAGE_SIZE;
            if !address.is_multiple_of(align) {
                frame = (crate::phys::align_up(address, align) - self.base) / PAGE_SIZE;
                continue;
            }
            match (frame..frame + count).find(|&f| !self.is_free(f)) {
                Some(used) => frame = used + 1,
                None => {
                    for f in frame..frame + count {
                        self.set_free(f, false);
                    }
                    self.free_frames -= count;
                    return Some(address);
                }
            }
        }
        None
    }

    /// Returns a frame to the allocator.
    pub fn free(&mut self, address: u64) -> Result<(), FreeError> {
        if !address.is_multiple_of(PAGE_SIZE) {
            return Err(FreeError::Unaligned);
        }
        let frame = match address.checked_sub(self.base) {
            Some(offset) if offset / PAGE_SIZE < self.frames => offset / PAGE_SIZE,
            _ => return Err(FreeError::NotManaged),
        };
        if !self.is_managed(address) {
            return Err(FreeError::NotManaged);
        }
        if self.is_free(frame) {
            return Err(FreeError::DoubleFree);
        }
        self.set_free(frame, true);
        self.free_frames += 1;
        Ok(())
    }

    /// Frames currently free.
    pub const fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames the allocator manages (free or allocated).
    pub const fn managed_frames(&self) -> u64 {
        self.managed_frames
    }

    /// Whether `address` lies in one of the usable ranges (sorted, so a binary search).
    fn is_managed(&self, address: u64) -> bool {
        let after = self.usable.partition_point(|r| r.start <= address);
        after > 0 && self.usable[after - 1].contains(address)
    }

    fn is_free(&self, frame: u64) -> bool {
        self.bitmap[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    fn set_free(&mut self, frame: u64, free: bool) {
        let word = &mut self.bitmap[(frame / 64) as usize];
        if free {
            *word |= 1 << (frame % 64);
        } else {
            *word &= !(1 << (frame % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ranges() -> Vec<PhysRange> {
        vec![
            PhysRange {
                start: 0x10_0000,
                end: 0x10_5000,
            },
            PhysRange {
                start: 0x20_0000,
                end: 0x20_3000,
            },
        ]
    }

    #[test]
    fn hands_out_every_usable_frame_once_then_none() {
        let usable = ranges();
        let mut bitmap = vec![0; FrameAllocator::bitmap_words_for(&usable)];
        let mut allocator = FrameAllocator::new(&mut bitmap, &usable);
        assert_eq!(allocator.managed_frames(), 8);
        let mut seen = BTreeSet::new();
        while let Some(frame) = allocator.allocate() {
            assert!(
                usable.iter().any(|r| r.contains(frame)),
                "{frame:#x} is usable"
            );
            assert!(seen.insert(frame), "{frame:#x} handed out twice");
        }
        assert_eq!(seen.len(), 8);
        assert_eq!(allocator.free_frames(), 0);
    }

    #[test]
    fn free_detects_misuse() {
        let usable = ranges();
        let mut bitmap = vec![0; FrameAllocator::bitmap_words_for(&usable)];
        let mut allocator = FrameAllocator::new(&mut bitmap, &usable);
        let frame = allocator.allocate().unwrap_or_default();
        assert_eq!(allocator.free(frame + 1), Err(FreeError::Unaligned));
        assert_eq!(allocator.free(0x1000), Err(FreeError::NotManaged));
        assert_eq!(allocator.free(0x4000_0000), Err(FreeError::NotManaged));
        assert_eq!(allocator.free(frame), Ok(()));
        assert_eq!(allocator.free(frame), Err(FreeError::DoubleFree));
        // A frame in the gap between ranges is not the allocator's to take.
        assert_eq!(allocator.free(0x15_0000), Err(FreeError::NotManaged));
    }

    #[test]
    fn contiguous_runs_respect_alignment_and_gaps() {
        let usable = ranges();
        let mut bitmap = vec![0; FrameAllocator::bitmap_words_for(&usable)];
        let mut allocator = FrameAllocator::new(&mut bitmap, &usable);
        assert_eq!(allocator.allocate_contiguous(5, 0x1000), Some(0x10_0000));
        assert_eq!(
            allocator.allocate_contiguous(4, 0x1000),
            None,
            "the gap breaks runs"
        );
        assert_eq!(allocator.allocate_contiguous(2, 0x2000), Some(0x20_0000));
        assert_eq!(
            allocator.allocate_contiguous(1, 0x3000),
            None,
            "alignment must be a power of two"
        );
        assert_eq!(allocator.allocate_contiguous(0, 0x1000), None);
        assert_eq!(allocator.free_frames(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate,
        Contiguous(u64, u32),
        Free(usize),
    }

    proptest! {
        /// Against a model set of allocated frames: no frame is handed out twice,
        /// every frame comes from a usable range, frees of allocated frames
        /// succeed, and the free count always matches.
        #[test]
        fn allocator_matches_model(
            spans in prop::collection::vec((0u64..40, 1u64..30), 1..5),
            ops in prop::collection::vec(prop_oneof![
                4 => Just(Op::Allocate),
                1 => (1u64..6, 0u32..3).prop_map(|(c, a)| Op::Contiguous(c, a)),
                3 => (0usize..1000).prop_map(Op::Free),
            ], 0..200),
        ) {
            // Build sorted, disjoint, non-touching ranges from the spans.
            let mut usable = Vec::new();
            let mut at = 0x10_0000u64;
            for (gap, len) in spans {
                at += (gap + 1) * PAGE_SIZE;
                usable.push(PhysRange { start: at, end: at + len * PAGE_SIZE });
                at += len * PAGE_SIZE;
            }
            let mut bitmap = vec![0; FrameAllocator::bitmap_words_for(&usable)];
            let mut allocator = FrameAllocator::new(&mut bitmap, &usable);
            let total: u64 = usable.iter().map(|r| r.len() / PAGE_SIZE).sum();
            let mut allocated: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Allocate => match allocator.allocate() {
                        Some(f) => {
                            prop_assert!(usable.iter().any(|r| r.contains(f)));
                            prop_assert!(!allocated.contains(&f));
                            allocated.push(f);
                        }
                        None => prop_assert_eq!(allocated.len() as u64, total),
                    },
                    Op::Contiguous(count, align_shift) => {
                        let align = PAGE_SIZE << align_shift;
                        if let Some(first) = allocator.allocate_contiguous(count, align) {
                            prop_assert_eq!(first % align, 0);
                            for i in 0..count {
                                let f = first + i * PAGE_SIZE;
                                prop_assert!(usable.iter().any(|r| r.contains(f)));
                                prop_assert!(!allocated.contains(&f));
                                allocated.push(f);
                            }
                        }
                    }
                    Op::Free(i) => {
                        if !allocated.is_empty() {
                            let f = allocated.swap_remove(i % allocated.len());
                            prop_assert_eq!(allocator.free(f), Ok(()));
                            prop_assert_eq!(allocator.free(f), Err(FreeError::DoubleFree));
                        }
                    }
                }
                prop_assert_eq!(allocator.free_frames(), total - allocated.len() as u64);
            }
        }
    }
}
