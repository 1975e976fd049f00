//! `BootInfo`: what either boot path (Limine or QEMU PVH) tells the kernel,
//! in one shape, so nothing after the entry code knows how it was booted.
//!
//! It is built before the kernel has a heap, so every collection in it has a
//! fixed capacity and records what did not fit instead of failing.

use crate::phys::PhysRange;

/// How many memory-map entries `BootInfo` keeps. QEMU's maps hold about ten.
pub const MAX_MEMORY_REGIONS: usize = 128;

/// How many bytes of the kernel command line `BootInfo` keeps.
pub const MAX_COMMAND_LINE: usize = 256;

/// The boot path that started the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootPath {
    /// The Limine boot protocol.
    Limine {
        /// The base revision the bootloader actually used.
        base_revision: u64,
        /// Whether the bootloader supports the revision the kernel asked for.
        requested_revision_supported: bool,
    },
    /// QEMU's direct PVH boot (`-kernel`/`-initrd`), through our 32-bit stub.
    Pvh,
}

impl BootPath {
    /// The name printed in the boot banner (`limine` or `pvh`).
    pub const fn name(&self) -> &'static str {
        match self {
            BootPath::Limine { .. } => "limine",
            BootPath::Pvh => "pvh",
        }
    }
}

/// What a memory-map region holds, merged from the Limine and e820 vocabularies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Free RAM.
    Usable,
    /// Not RAM the kernel may use (firmware, MMIO holes, unknown types).
    Reserved,
    /// ACPI tables; reclaimable once ACPI is no longer needed (we keep it).
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Defective RAM.
    BadMemory,
    /// Bootloader structures (Limine's responses live here; we keep them).
    BootloaderReclaimable,
    /// The kernel image and boot modules as Limine loaded them.
    KernelAndModules,
    /// A framebuffer.
    Framebuffer,
}

impl MemoryKind {
    /// The kind for an e820 type number (the PVH memory map uses e820 types).
    pub const fn from_e820(kind: u32) -> Self {
        match kind {
            1 => MemoryKind::Usable,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::BadMemory,
            _ => MemoryKind::Reserved,
        }
    }
}

/// One region of the firmware's memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// The addresses the region covers.
    pub range: PhysRange,
    /// What the region holds.
    pub kind: MemoryKind,
}

/// The memory map as the bootloader gave it (unsorted, possibly overlapping).
#[derive(Clone, Copy, Debug)]
pub struct MemoryMap {
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    len: usize,
    dropped: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    /// An empty map.
    pub const fn new() -> Self {
        const EMPTY: MemoryRegion = MemoryRegion {
            range: PhysRange { start: 0, end: 0 },
            kind: MemoryKind::Reserved,
        };
        Self {
            regions: [EMPTY; MAX_MEMORY_REGIONS],
            len: 0,
            dropped: 0,
        }
    }

    /// Records a region; empty regions are ignored (some loaders end their map
    /// with a zero entry), and regions past the capacity are counted in
    /// [`MemoryMap::dropped`].
    pub fn push(&mut self, region: MemoryRegion) {
        if region.range.is_empty() {
            return;
        }
        match self.regions.get_mut(self.len) {
            Some(slot) => {
                *slot = region;
                self.len += 1;
            }
            None => self.dropped += 1,
        }
    }

    /// The recorded regions, in the order they were given.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.len]
    }

    /// How many regions did not fit.
    pub const fn dropped(&self) -> usize {
        self.dropped
    }

    /// The total number of bytes in regions of `kind`.
    pub fn total(&self, kind: MemoryKind) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.range.len())
            .sum()
    }

    /// Whether any RAM (anything but `Reserved`, which also covers MMIO holes)
    /// overlaps `range`: such pages are mapped cacheable, the rest uncached.
    pub fn holds_ram(&self, range: PhysRange) -> bool {
        self.regions()
            .iter()
            .any(|r| r.kind != MemoryKind::Reserved && r.range.overlaps(&range))
    }

    /// One past the highest address of any region of `kind`.
    pub fn top_of(&self, kind: MemoryKind) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.range.end)
            .max()
            .unwrap_or(0)
    }
}

/// The kernel command line, truncated to [`MAX_COMMAND_LINE`] bytes at a
/// character boundary.
#[derive(Clone, Copy, Debug)]
pub struct CommandLine {
    bytes: [u8; MAX_COMMAND_LINE],
    len: usize,
}

impl Default for CommandLine {
    fn default() -> Self {
        Self::new(b"")
    }
}

impl CommandLine {
    /// Copies `raw`, stopping at the first NUL, at the capacity, and before
    /// any invalid UTF-8.
    pub fn new(raw: &[u8]) -> Self {
        let raw = raw.split(|&b| b == 0).next().unwrap_or(&[]);
        let raw = &raw[..raw.len().min(MAX_COMMAND_LINE)];
        let valid = match core::str::from_utf8(raw) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let mut bytes = [0; MAX_COMMAND_LINE];
        bytes[..valid].copy_from_slice(&raw[..valid]);
        Self { bytes, len: valid }
    }

    /// The command line as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// Whether the whitespace-separated word `word` is present.
    pub fn has_word(&self, word: &str) -> bool {
        image::cmdline::has_word(self.as_str(), word)
    }
}

/// Everything the kernel learns from its boot path.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// How the kernel was booted.
    pub path: BootPath,
    /// The firmware memory map.
    pub memory_map: MemoryMap,
    /// The virtual address at which physical address 0 is mapped.
    pub direct_map_offset: u64,
    /// Where the kernel image lies in physical memory.
    pub kernel_image: PhysRange,
    /// Where the boot archive lies in physical memory, if one was given.
    pub boot_archive: Option<PhysRange>,
    /// The physical address of the ACPI RSDP, if the boot path gave one.
    pub rsdp: Option<u64>,
    /// The kernel command line.
    pub command_line: CommandLine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_map_ignores_empty_regions_and_counts_overflow() {
        let mut map = MemoryMap::new();
        let r = |s, e| MemoryRegion {
            range: PhysRange { start: s, end: e },
            kind: MemoryKind::Usable,
        };
        map.push(r(0, 0));
        for i in 0..(MAX_MEMORY_REGIONS as u64 + 3) {
            map.push(r(i * 0x1000, (i + 1) * 0x1000));
        }
        assert_eq!(map.regions().len(), MAX_MEMORY_REGIONS);
        assert_eq!(map.dropped(), 3);
        assert_eq!(
            map.total(MemoryKind::Usable),
            MAX_MEMORY_REGIONS as u64 * 0x1000
        );
        assert_eq!(
            map.top_of(MemoryKind::Usable),
            MAX_MEMORY_REGIONS as u64 * 0x1000
        );
        assert_eq!(map.top_of(MemoryKind::AcpiNvs), 0);
    }

    #[test]
    fn ram_detection_ignores_reserved_holes() {
        let mut map = MemoryMap::new();
        let region = |s, e, kind| MemoryRegion {
            range: PhysRange { start: s, end: e },
            kind,
        };
        map.push(region(0x10_0000, 0x800_0000, MemoryKind::Usable));
        map.push(region(0xfeff_c000, 0xff00_0000, MemoryKind::Reserved));
        map.push(region(0x7fe_0000, 0x800_0000, MemoryKind::AcpiReclaimable));
        let two_mib = |s: u64| PhysRange {
            start: s,
            end: s + 0x20_0000,
        };
        assert!(map.holds_ram(two_mib(0)));
        assert!(map.holds_ram(two_mib(0x7e0_0000)));
        assert!(!map.holds_ram(two_mib(0x800_0000)));
        assert!(
            !map.holds_ram(two_mib(0xfee0_0000)),
            "the local APIC page is uncached"
        );
        assert!(!map.holds_ram(two_mib(0xfec0_0000)));
    }

    #[test]
    fn command_line_stops_at_nul_capacity_and_bad_utf8() {
        assert_eq!(
            CommandLine::new(b"qemu-exit foo\0bar").as_str(),
            "qemu-exit foo"
        );
        assert_eq!(
            CommandLine::new(&[b'a'; 400]).as_str().len(),
            MAX_COMMAND_LINE
        );
        assert_eq!(CommandLine::new(b"ok \xff\xfe").as_str(), "ok ");
        // A multi-byte character cut by the capacity is dropped whole.
        let mut long = [b'a'; MAX_COMMAND_LINE + 1];
        long[MAX_COMMAND_LINE - 1..].copy_from_slice("é".as_bytes());
        assert_eq!(CommandLine::new(&long).as_str().len(), MAX_COMMAND_LINE - 1);
        assert!(CommandLine::new(b"x qemu-exit").has_word("qemu-exit"));
        assert!(!CommandLine::new(b"qemu-exits").has_word("qemu-exit"));
    }

    #[test]
    fn e820_types_map_to_kinds() {
        assert_eq!(MemoryKind::from_e820(1), MemoryKind::Usable);
        assert_eq!(MemoryKind::from_e820(2), MemoryKind::Reserved);
        assert_eq!(MemoryKind::from_e820(3), MemoryKind::AcpiReclaimable);
        assert_eq!(MemoryKind::from_e820(4), MemoryKind::AcpiNvs);
        assert_eq!(MemoryKind::from_e820(5), MemoryKind::BadMemory);
        assert_eq!(MemoryKind::from_e820(99), MemoryKind::Reserved);
    }
}
