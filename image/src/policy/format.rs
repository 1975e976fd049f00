//! The records of the compiled policy, version 1 (the layout is tabled in
//! [`crate::policy`]). The reader and the writer take every number from here.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The first eight bytes of every compiled policy.
pub const MAGIC: [u8; 8] = *b"HINGEPOL";

/// The format version this crate reads and writes (2: the device table).
pub const VERSION: u32 = 2;

/// The size of [`PolicyHeader`] in bytes; the type table starts here.
pub const HEADER_SIZE: usize = 32;

/// The size of one [`StrRef`] (a type table or prefix table entry).
pub const STR_REF_SIZE: usize = 8;

/// The size of one [`DomainRecord`].
pub const DOMAIN_RECORD_SIZE: usize = 112;

/// The size of one [`ProgramRecord`].
pub const PROGRAM_RECORD_SIZE: usize = 20;

/// The size of one [`DeviceRecord`].
pub const DEVICE_RECORD_SIZE: usize = 8;

/// [`DeviceRecord::kind`]: I/O ports `first..=last` (`io_ports`).
pub const DEVICE_PORTS: u8 = 1;

/// [`DeviceRecord::kind`]: interrupt line `first` (= `last`, at most
/// [`MAX_IRQ`]; `irqs`).
pub const DEVICE_IRQ: u8 = 2;

/// The highest interrupt line a [`DEVICE_IRQ`] record names.
pub const MAX_IRQ: u16 = 15;

/// The size of a [`Bitmap`]: one bit for each of 256 numbers.
pub const BITMAP_SIZE: usize = 32;

/// The most domains a policy holds.
pub const MAX_DOMAINS: usize = 64;

/// [`DomainRecord::flags`]: the domain may create IPC objects.
pub const DOMAIN_CREATE_OBJECTS: u8 = 1 << 0;

/// [`DomainRecord::flags`]: the domain may create *system* IPC objects (only
/// together with [`DOMAIN_CREATE_OBJECTS`]).
pub const DOMAIN_CREATE_SYSTEM_OBJECTS: u8 = 1 << 1;

/// [`ProgramRecord::flags`]: procman starts the program at boot.
pub const PROGRAM_START: u8 = 1 << 0;

/// A set of numbers 0..=255: bit `n % 8` of byte `n / 8` is number `n`.
pub type Bitmap = [u8; BITMAP_SIZE];

/// Whether `number` is in `bitmap`.
pub(crate) fn bitmap_contains(bitmap: &Bitmap, number: u32) -> bool {
    usize::try_from(number / 8)
        .ok()
        .and_then(|byte| bitmap.get(byte))
        .is_some_and(|byte| byte & (1 << (number % 8)) != 0)
}

/// A string in the string area: `len` bytes at `offset` from its start.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct StrRef {
    /// Where the string starts, from the start of the string area.
    pub offset: U32,
    /// The string's length in bytes.
    pub len: U32,
}

/// The header at offset 0.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct PolicyHeader {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// Always [`VERSION`].
    pub version: U32,
    /// The policy's length in bytes, exactly.
    pub total_size: U32,
    /// The system's name (`[system] name`).
    pub system_name: StrRef,
    /// Entries of the type table.
    pub type_count: u8,
    /// Records of the domain table, at most [`MAX_DOMAINS`].
    pub domain_count: u8,
    /// Records of the program table.
    pub program_count: u8,
    /// Always zero.
    pub reserved0: u8,
    /// Entries of the prefix table.
    pub prefix_count: U16,
    /// Records of the device table.
    pub device_count: U16,
}

/// One security domain.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DomainRecord {
    /// The domain's name.
    pub name: StrRef,
    /// [`DOMAIN_CREATE_OBJECTS`], [`DOMAIN_CREATE_SYSTEM_OBJECTS`].
    pub flags: u8,
    /// How many register prefixes the domain has.
    pub prefix_count: u8,
    /// The index of its first register prefix in the prefix table.
    pub first_prefix: U16,
    /// The portal classes it may ask procman for (`abi::portal::PortalClass`
    /// bits; the manifest's `portal_classes`).
    pub portal_classes: u8,
    /// How many device records the domain has.
    pub device_count: u8,
    /// The index of its first record in the device table.
    pub first_device: U16,
    /// The type numbers it may give the objects it creates.
    pub create_types: Bitmap,
    /// The type numbers of the objects it may open.
    pub open_types: Bitmap,
    /// The indexes of the programs it may spawn.
    pub spawn: Bitmap,
}

/// One program.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ProgramRecord {
    /// The program's archive entry name.
    pub name: StrRef,
    /// Its argument bytes: each argument followed by a NUL byte.
    pub arguments: StrRef,
    /// The index of its domain.
    pub domain: u8,
    /// [`PROGRAM_START`].
    pub flags: u8,
    /// Always zero.
    pub reserved: U16,
}

/// One device a domain's processes may ask procman for: an I/O port range
/// or an interrupt line.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DeviceRecord {
    /// [`DEVICE_PORTS`] or [`DEVICE_IRQ`].
    pub kind: u8,
    /// Always zero.
    pub reserved0: u8,
    /// The first port, or the line.
    pub first: U16,
    /// The last port (inclusive), or the line again.
    pub last: U16,
    /// Always zero.
    pub reserved1: U16,
}

const _: () = assert!(size_of::<DeviceRecord>() == DEVICE_RECORD_SIZE);
const _: () = assert!(size_of::<PolicyHeader>() == HEADER_SIZE);
const _: () = assert!(size_of::<StrRef>() == STR_REF_SIZE);
const _: () = assert!(size_of::<DomainRecord>() == DOMAIN_RECORD_SIZE);
const _: () = assert!(size_of::<ProgramRecord>() == PROGRAM_RECORD_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_bits_are_little_endian_within_bytes() {
        let mut bitmap = [0u8; BITMAP_SIZE];
        bitmap[0] = 0b0000_0010;
        bitmap[31] = 0b1000_0000;
        assert!(bitmap_contains(&bitmap, 1));
        assert!(bitmap_contains(&bitmap, 255));
        assert!(!bitmap_contains(&bitmap, 0));
        assert!(!bitmap_contains(&bitmap, 8));
        assert!(!bitmap_contains(&bitmap, 256));
        assert!(!bitmap_contains(&bitmap, u32::MAX));
    }
}
