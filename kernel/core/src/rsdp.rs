//! Finding the ACPI RSDP by its signature, for boot paths that do not hand
//! it over (ACPI 6.5, 5.2.5.1: on a 16-byte boundary in the first KiB of the
//! EBDA or in 0xE0000-0xFFFFF, with a valid checksum over its first 20 bytes).

/// The RSDP's signature.
pub const SIGNATURE: &[u8; 8] = b"RSD PTR ";

/// The offset in `area` of the first valid RSDP, searching 16-byte boundaries.
pub fn find(area: &[u8]) -> Option<usize> {
    (0..area.len()).step_by(16).find(|&at| {
        area.get(at..at + 20).is_some_and(|candidate| {
            candidate.starts_with(SIGNATURE)
                && candidate.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsdp_at(area: &mut [u8], at: usize) {
        area[at..at + 8].copy_from_slice(SIGNATURE);
        area[at + 9..at + 15].copy_from_slice(b"BOCHS ");
        let sum = area[at..at + 20]
            .iter()
            .fold(0u8, |s, b| s.wrapping_add(*b));
        area[at + 8] = 0u8.wrapping_sub(sum);
    }

    #[test]
    fn finds_only_aligned_checksummed_signatures() {
        let mut area = vec![0u8; 0x2_0000];
        area[0x101..0x109].copy_from_slice(SIGNATURE); // unaligned: ignored
        area[0x200..0x208].copy_from_slice(SIGNATURE); // bad checksum: ignored
        area[0x200 + 9] = 1;
        rsdp_at(&mut area, 0xf5a0);
        assert_eq!(find(&area), Some(0xf5a0));
        assert_eq!(
            find(&area[..0xf5a0 + 19]),
            None,
            "a cut-off candidate is not read past the end"
        );
        assert_eq!(find(&[]), None);
    }
}
