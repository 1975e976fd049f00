//! Checking a program image before anything is mapped: a static ELF64
//! executable for x86_64 whose loadable segments all lie in the user half.
//! The `elf` crate parses; this module decides what is acceptable.

use abi::Error;
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

/// Checks `image` and plans its mapping. Every refusal is INVALID_ARGUMENT:
/// the program is not something this kernel runs.
pub fn plan(image: &[u8]) -> Result<ProgramPlan, Error> {
    let file =
        ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| Error::InvalidArgument)?;
    let header = file.ehdr;
    if header.class != elf::file::Class::ELF64
        || header.e_machine != EM_X86_64
        || header.e_type != ET_EXEC
    {
        return Err(Error::InvalidArgument);
    }
    let mut plan = ProgramPlan {
        entry: header.e_entry,
        ..ProgramPlan::default()
    };
    let segments = file.segments().ok_or(Error::InvalidArgument)?;
    let mut entry_is_executable = false;
    for header in segments.iter().filter(|s| s.p_type == PT_LOAD) {
        let end = header
            .p_vaddr
            .checked_add(header.p_memsz)
            .ok_or(Error::InvalidArgument)?;
        let file_end = header
            .p_offset
            .checked_add(header.p_filesz)
            .ok_or(Error::InvalidArgument)?;
        let writable = header.p_flags & PF_W != 0;
        let executable = header.p_flags & PF_X != 0;
        if header.p_vaddr < USER_IMAGE_BASE
            || end > USER_END
            || header.p_filesz > header.p_memsz
            || file_end > image.len() as u64
            || (writable && executable)
        {
            return Err(Error::InvalidArgument);
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
                return Err(Error::InvalidArgument);
            }
        }
        if executable && segment.address <= plan.entry && plan.entry < end {
            entry_is_executable = true;
        }
        let slot = plan
            .segments
            .get_mut(plan.segment_count)
            .ok_or(Error::InvalidArgument)?;
        *slot = segment;
        plan.segment_count += 1;
    }
    if plan.segment_count == 0 || !entry_is_executable {
        return Err(Error::InvalidArgument);
    }
    Ok(plan)
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
    fn refuses_what_it_cannot_run_safely() {
        let cases: [(u64, &[SegmentSpec]); 6] = [
            (0x40_1000, &[(0x40_1000, 0x1000, 0x1000, RWX)]), // W+X
            (0x1000, &[(0x1000, 0x1000, 0x1000, RX)]),        // below the image base
            (0x40_1000, &[(0x7fff_ffff_f000, 0x2000, 0, RX)]), // past the user half
            (0x40_1000, &[(0x40_1000, 0x10, 0x20, RX)]),      // file bigger than memory
            (0x50_0000, &[(0x40_1000, 0x1000, 0x1000, RX)]),  // entry outside the text
            (
                0x40_1000,
                &[(0x40_1000, 0x800, 0x800, RX), (0x40_1800, 0x10, 0, RW)],
            ), // shared page
        ];
        for (entry, segments) in cases {
            assert_eq!(
                plan(&elf(entry, segments)),
                Err(Error::InvalidArgument),
                "{segments:?}"
            );
        }
        assert_eq!(plan(b"not an elf"), Err(Error::InvalidArgument));
        assert_eq!(plan(&[]), Err(Error::InvalidArgument));
    }
}
