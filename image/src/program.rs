//! Checking a program image before anything is mapped: a static ELF64
//! executable for x86_64 whose loadable segments all lie in the user half.
//! The `elf` crate parses; this module decides what is acceptable. Both
//! loaders use it (the kernel's, for the first process, and procman's, for
//! every other): it must never panic or read past the image, whatever
//! bytes it is given.

use abi::process::{USER_END, USER_IMAGE_BASE};
use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;

/// The most loadable segments a program may have.
pub const MAX_SEGMENTS: usize = 8;

/// One loadable segment, checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Where it starts in memory (not necessarily page-aligned).
    pub address: u64,
    /// Bytes in memory (the tail past `file_size` is zero).
    pub memory_size: u64,
    /// Offset of its bytes in the file.
    pub file_offset: u64,
    /// Bytes taken from the file.
    pub file_size: u64,
    /// Mapped writable.
    pub writable: bool,
    /// Mapped executable.
    pub executable: bool,
}

/// A program ready to be mapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramPlan {
    /// The entry point.
    pub entry: u64,
    /// The loadable segments.
    pub segments: [Segment; MAX_SEGMENTS],
    /// How many of `segments` are used.
    pub segment_count: usize,
}

/// Why an image is not a program this system runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramError {
    /// Not an ELF file the parser reads (header, program headers).
    Malformed,
    /// Not a 64-bit x86_64 static executable (ET_EXEC).
    NotAnExecutable,
    /// A loadable segment outside the user half or below the image base,
    /// or whose numbers overflow.
    SegmentOutOfRange,
    /// A segment with more file bytes than memory, or bytes past the
    /// image's end.
    SegmentTruncated,
    /// A segment both writable and executable.
    WritableAndExecutable,
    /// Two segments in one page (a page has one protection).
    SegmentsShareAPage,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// No loadable segment, or an entry point outside every executable one.
    NoEntry,
}

impl From<ProgramError> for abi::Error {
    /// The kernel's loader refuses every one of them the same way
    /// (SPAWN's INVALID_ARGUMENT, ABI.md §6).
    fn from(_: ProgramError) -> Self {
        abi::Error::InvalidArgument
    }
}

/// Checks `image` and plans its mapping.
pub fn plan(image: &[u8]) -> Result<ProgramPlan, ProgramError> {
    let file =
        ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| ProgramError::Malformed)?;
    let header = file.ehdr;
    if header.class != elf::file::Class::ELF64
        || header.e_machine != EM_X86_64
        || header.e_type != ET_EXEC
    {
        return Err(ProgramError::NotAnExecutable);
    }
    let mut plan = ProgramPlan {
        entry: header.e_entry,
        ..ProgramPlan::default()
    };
    let segments = file.segments().ok_or(ProgramError::Malformed)?;
    let mut entry_is_executable = false;
    for header in segments.iter().filter(|s| s.p_type == PT_LOAD) {
        let end = header
            .p_vaddr
            .checked_add(header.p_memsz)
            .ok_or(ProgramError::SegmentOutOfRange)?;
        let file_end = header
            .p_offset
            .checked_add(header.p_filesz)
            .ok_or(ProgramError::SegmentTruncated)?;
        let writable = header.p_flags & PF_W != 0;
        let executable = header.p_flags & PF_X != 0;
        if header.p_vaddr < USER_IMAGE_BASE || end > USER_END {
            return Err(ProgramError::SegmentOutOfRange);
        }
        if header.p_filesz > header.p_memsz || file_end > image.len() as u64 {
            return Err(ProgramError::SegmentTruncated);
        }
        if writable && executable {
            return Err(ProgramError::WritableAndExecutable);
        }
        let segment = Segment {
            address: header.p_vaddr,
            memory_size: header.p_memsz,
            file_offset: header.p_offset,
            file_size: header.p_filesz,
            writable,
            executable,
        };
        // Segments may not share a page: each page gets one set of permissions.
        let first_page = segment.address & !0xfff;
        for other in &plan.segments[..plan.segment_count] {
            let other_last_page = (other.address + other.memory_size.max(1) - 1) & !0xfff;
            let other_first_page = other.address & !0xfff;
            let last_page = (end.max(segment.address + 1) - 1) & !0xfff;
            if first_page <= other_last_page && other_first_page <= last_page {
                return Err(ProgramError::SegmentsShareAPage);
            }
        }
        if executable && segment.address <= plan.entry && plan.entry < end {
            entry_is_executable = true;
        }
        let slot = plan
            .segments
            .get_mut(plan.segment_count)
            .ok_or(ProgramError::TooManySegments)?;
        *slot = segment;
        plan.segment_count += 1;
    }
    if plan.segment_count == 0 || !entry_is_executable {
        return Err(ProgramError::NoEntry);
    }
    Ok(plan)
}

/// `image` cut to what a loader reads: the ELF header, the program
/// headers and the loadable segments' file bytes, with the section header
/// table dropped (its offset, count and string-table index zeroed). Debug
/// information, symbols and every other section go, which is most of a
/// user program's file; the boot archive carries this, and the program's
/// full ELF stays in `target/` to place a faulting address. The result
/// plans exactly as `image` does; an image [`plan`] refuses is refused
/// the same way. (Host side only: the `no_std` part never allocates.)
#[cfg(any(feature = "std", test))]
pub fn loadable_part(image: &[u8]) -> Result<Vec<u8>, ProgramError> {
    let plan = plan(image)?;
    let file =
        ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| ProgramError::Malformed)?;
    let header = file.ehdr;
    let headers_end = header
        .e_phoff
        .checked_add(u64::from(header.e_phnum) * u64::from(header.e_phentsize))
        .ok_or(ProgramError::Malformed)?;
    let keep = plan.segments[..plan.segment_count]
        .iter()
        .map(|s| s.file_offset + s.file_size)
        .fold(headers_end.max(u64::from(header.e_ehsize)), u64::max);
    let keep = usize::try_from(keep).map_err(|_| ProgramError::Malformed)?;
    let mut out = image.get(..keep).ok_or(ProgramError::Malformed)?.to_vec();
    // e_shoff (8 bytes at 0x28), e_shnum and e_shstrndx (2 bytes at 0x3c
    // and 0x3e): no section header table.
    for range in [0x28..0x30, 0x3c..0x3e, 0x3e..0x40] {
        if let Some(field) = out.get_mut(range) {
            field.fill(0);
        }
    }
    if self::plan(&out) != Ok(plan) {
        return Err(ProgramError::Malformed);
    }
    Ok(out)
}

impl Segment {
    /// The first page it touches.
    pub const fn first_page(&self) -> u64 {
        self.address & !(abi::PAGE_BYTES - 1)
    }

    /// How many pages it touches (at least one).
    pub const fn pages(&self) -> u64 {
        let end = self.address + self.memory_size;
        let last = if self.memory_size == 0 {
            self.first_page()
        } else {
            (end - 1) & !(abi::PAGE_BYTES - 1)
        };
        (last - self.first_page()) / abi::PAGE_BYTES + 1
    }

    /// Its file bytes in `image` (which [`plan`] checked it lies in).
    pub fn bytes<'i>(&self, image: &'i [u8]) -> &'i [u8] {
        let start = self.file_offset as usize;
        image
            .get(start..start.saturating_add(self.file_size as usize))
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 x86_64 executable with the given (vaddr, memsz, filesz, flags) segments.
    fn elf(entry: u64, segments: &[SegmentSpec]) -> Vec<u8> {
        let phoff = 64u64;
        let data_at = phoff + 56 * segments.len() as u64;
        let mut out = vec![0u8; data_at as usize];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // 64-bit
        out[5] = 1; // little-endian
        out[6] = 1; // version
        out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&phoff.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for (i, (vaddr, memsz, filesz, flags)) in segments.iter().enumerate() {
            let at = (phoff + 56 * i as u64) as usize;
            let offset = out.len() as u64;
            out[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            out[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            out[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            out[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
            out[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
            out.extend(std::iter::repeat_n(0xcc, *filesz as usize));
        }
        out
    }

    /// (vaddr, memsz, filesz, flags) of one segment.
    type SegmentSpec = (u64, u64, u64, u32);

    const RX: u32 = 5;
    const RW: u32 = 6;
    const RWX: u32 = 7;

    #[test]
    fn accepts_a_text_and_data_program() {
        let image = elf(
            0x40_1000,
            &[(0x40_1000, 0x800, 0x800, RX), (0x40_2000, 0x2000, 0x10, RW)],
        );
        let plan = plan(&image);
        assert!(plan.is_ok(), "{plan:?}");
        let plan = plan.unwrap_or_default();
        assert_eq!(plan.segment_count, 2);
        assert!(
            plan.segments[0].executable
                && !plan.segments[1].executable
                && plan.segments[1].writable
        );
    }

    #[test]
    fn refuses_what_it_cannot_run_safely_each_with_its_reason() {
        let cases: [(u64, &[SegmentSpec], ProgramError); 6] = [
            (
                0x40_1000,
                &[(0x40_1000, 0x1000, 0x1000, RWX)],
                ProgramError::WritableAndExecutable,
            ),
            (
                0x1000,
                &[(0x1000, 0x1000, 0x1000, RX)],
                ProgramError::SegmentOutOfRange,
            ),
            (
                0x40_1000,
                &[(0x7fff_ffff_f000, 0x2000, 0, RX)],
                ProgramError::SegmentOutOfRange,
            ),
            (
                0x40_1000,
                &[(0x40_1000, 0x10, 0x20, RX)],
                ProgramError::SegmentTruncated,
            ),
            (
                0x50_0000,
                &[(0x40_1000, 0x1000, 0x1000, RX)],
                ProgramError::NoEntry,
            ),
            (
                0x40_1000,
                &[(0x40_1000, 0x800, 0x800, RX), (0x40_1800, 0x10, 0, RW)],
                ProgramError::SegmentsShareAPage,
            ),
        ];
        for (entry, segments, reason) in cases {
            assert_eq!(plan(&elf(entry, segments)), Err(reason), "{segments:?}");
        }
        let nine: Vec<SegmentSpec> = (0..9u64)
            .map(|i| (0x40_0000 + i * 0x1000, 0x10, 0x10, RX))
            .collect();
        assert_eq!(
            plan(&elf(0x40_0000, &nine)),
            Err(ProgramError::TooManySegments)
        );
        let mut relocatable = elf(0x40_1000, &[(0x40_1000, 0x10, 0x10, RX)]);
        relocatable[16] = 1; // ET_REL
        assert_eq!(plan(&relocatable), Err(ProgramError::NotAnExecutable));
        assert_eq!(plan(b"not an elf"), Err(ProgramError::Malformed));
        assert_eq!(plan(&[]), Err(ProgramError::Malformed));
        // The kernel's loader refuses them all alike.
        assert_eq!(
            abi::Error::from(ProgramError::NoEntry),
            abi::Error::InvalidArgument
        );
    }

    #[test]
    fn a_segment_counts_the_pages_it_touches() {
        let segment = |address, memory_size| Segment {
            address,
            memory_size,
            ..Segment::default()
        };
        assert_eq!(segment(0x40_1000, 0x1000).pages(), 1);
        assert_eq!(segment(0x40_1000, 0x1001).pages(), 2);
        assert_eq!(segment(0x40_1ff0, 0x20).pages(), 2);
        assert_eq!(segment(0x40_1ff0, 0).pages(), 1);
        assert_eq!(segment(0x40_1ff0, 0x20).first_page(), 0x40_1000);
    }

    /// What every accepted plan promises its loader.
    fn check_promises(image: &[u8], plan: &ProgramPlan) {
        assert!(plan.segment_count >= 1 && plan.segment_count <= MAX_SEGMENTS);
        let used = &plan.segments[..plan.segment_count];
        assert!(used.iter().any(|s| s.executable
            && s.address <= plan.entry
            && plan.entry < s.address + s.memory_size));
        for (i, s) in used.iter().enumerate() {
            assert!(s.address >= USER_IMAGE_BASE);
            assert!(s.address + s.memory_size <= USER_END);
            assert!(s.file_size <= s.memory_size);
            assert!(!(s.writable && s.executable));
            assert_eq!(s.bytes(image).len() as u64, s.file_size);
            for other in &used[..i] {
                let (a, b) = (s.first_page(), s.first_page() + s.pages() * abi::PAGE_BYTES);
                let (c, d) = (
                    other.first_page(),
                    other.first_page() + other.pages() * abi::PAGE_BYTES,
                );
                assert!(b <= c || d <= a, "{s:?} and {other:?} share a page");
            }
        }
    }

    #[test]
    fn the_loadable_part_drops_sections_and_plans_the_same() {
        let mut image = elf(
            0x40_1000,
            &[(0x40_1000, 0x800, 0x80, RX), (0x40_3000, 0x2000, 0x10, RW)],
        );
        let loadable_end = image.len();
        // Debug sections and a section header table after the segments.
        image.extend(std::iter::repeat_n(0xab, 5000));
        let shoff = image.len() as u64;
        image.extend([0u8; 64]); // one SHT_NULL section header
        image[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        image[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        image[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
        assert!(plan(&image).is_ok());
        let cut = loadable_part(&image);
        assert!(cut.is_ok(), "{cut:?}");
        let cut = cut.unwrap_or_default();
        assert_eq!(cut.len(), loadable_end);
        assert_eq!(plan(&cut), plan(&image));
        assert_eq!(&cut[0x28..0x30], &[0; 8]);
        let bad = elf(0x50_0000, &[(0x40_1000, 0x1000, 0x1000, RX)]);
        assert_eq!(loadable_part(&bad), Err(ProgramError::NoEntry));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever the bytes: the loadable part is refused exactly when
        /// the image is, and plans the same when it is not.
        #[test]
        fn the_loadable_part_plans_as_the_image(
            edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..8),
            tail in 0usize..300,
        ) {
            let mut image = elf(
                0x40_1000,
                &[(0x40_1000, 0x800, 0x80, RX), (0x40_3000, 0x2000, 0x10, RW)],
            );
            image.extend(std::iter::repeat_n(0x5a, tail));
            for (at, byte) in edits {
                if let Some(b) = image.get_mut(at) {
                    *b = byte;
                }
            }
            match (plan(&image), loadable_part(&image)) {
                (Ok(p), Ok(cut)) => {
                    proptest::prop_assert_eq!(plan(&cut), Ok(p));
                    proptest::prop_assert!(cut.len() <= image.len());
                }
                (Err(e), Err(f)) => proptest::prop_assert_eq!(e, f),
                // A plan whose headers cannot be cut cleanly is refused as
                // malformed, never panics.
                (Ok(_), Err(f)) => proptest::prop_assert_eq!(f, ProgramError::Malformed),
                (Err(e), Ok(_)) => proptest::prop_assert!(false, "refused {e:?} but cut"),
            }
        }

        /// Any bytes at all: a refusal or a plan that keeps its promises,
        /// never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(p) = plan(&bytes) {
                check_promises(&bytes, &p);
            }
        }

        /// A valid program with bytes overwritten (in its headers, mostly):
        /// the same.
        #[test]
        fn corrupted_programs_never_panic(
            edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 1..12),
            cut in 0usize..500,
        ) {
            let mut image = elf(
                0x40_1000,
                &[(0x40_1000, 0x800, 0x80, RX), (0x40_3000, 0x2000, 0x10, RW)],
            );
            for (at, byte) in edits {
                if let Some(b) = image.get_mut(at) {
                    *b = byte;
                }
            }
            image.truncate(cut.max(1).min(image.len()));
            if let Ok(p) = plan(&image) {
                check_promises(&image, &p);
            }
        }
    }
}
