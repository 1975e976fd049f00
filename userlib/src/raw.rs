//! The raw trap layer: four registers in, four registers out, nothing
//! decoded in between, so that a test (the conformance suite, the IPC test
//! programs, the fuzzer) compares every bit the kernel returns, and can
//! make traps that [`crate::ipc`] would never let through.
//!
//! It is the only raw layer, and it is safe: before a trap it checks what
//! the kernel could reach (msgTotalSize bytes from msgPtr, nothing when
//! `arg3`'s reserved half is set) and refuses ([`Refused`]) a trap that
//! could reach memory Rust code uses. What a trap may reach:
//! - a [`Buffer`]: a page of the heap that the call borrows exclusively
//!   (msgTotalSize is at most 4095 bytes, so no offset-0 trap can leave it);
//! - [`RawPages`]: pages mapped for raw traps, which no Rust reference ever
//!   covers (the program reaches them through copies only), parts of which
//!   a test may protect or unmap;
//! - anything outside the memory Rust code uses, which userlib knows: the
//!   image's writable segment, the first thread's stack, and the hull of
//!   the mappings userlib made for the heap and thread stacks. The null
//!   page, the kernel half, non-canonical addresses and read-only image
//!   pages are all outside it (the kernel must refuse to write read-only
//!   pages, ABI.md §1.2).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use abi::kcall::protection;
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset};
use abi::process::{USER_STACK_SIZE, USER_STACK_TOP};
use abi::{Descriptor, Error, Function, MessageSizes, PAGE_BYTES, PAGE_SIZE, TrapArgs};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::{arch, kernel};

/// A trap this layer did not make: the kernel could have reached memory
/// Rust code uses. It names the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// msgPtr.
    pub address: u64,
    /// The bytes from msgPtr the kernel could have touched.
    pub length: u64,
}

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "a raw trap on {} bytes at {:#x} could reach memory Rust code uses",
            self.length, self.address
        )
    }
}

/// The bytes from `args.arg2` the kernel may read or write: msgTotalSize,
/// or none when `arg3`'s reserved half is set (the kernel refuses such a
/// trap before it looks at the buffer).
pub fn reach(args: &TrapArgs) -> u64 {
    if args.arg3 >> 32 != 0 {
        return 0;
    }
    u64::from(MessageSizes::from_bits(args.arg3).total_size())
}

/// The lowest and highest-plus-one address of the mappings userlib turned
/// into Rust memory (heap arenas, thread stacks); empty while `LOW > HIGH`.
static RUST_LOW: AtomicU64 = AtomicU64::new(u64::MAX);
static RUST_HIGH: AtomicU64 = AtomicU64::new(0);

/// Records a mapping userlib hands to Rust code (the heap, a thread
/// stack), so that no raw trap reaches it.
pub(crate) fn note_rust_memory(base: u64, length: u64) {
    RUST_LOW.fetch_min(base, Ordering::SeqCst);
    RUST_HIGH.fetch_max(base.saturating_add(length), Ordering::SeqCst);
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Whether `[address, address + length)` lies outside every byte Rust code
/// may use (see the module documentation), so that a trap reaching it
/// cannot change what a Rust reference sees.
pub fn is_foreign(address: u64, length: u64) -> bool {
    if length == 0 {
        return true;
    }
    let Some(end) = address.checked_add(length) else {
        return false;
    };
    let range = address..end;
    let first_stack = USER_STACK_TOP - USER_STACK_SIZE..USER_STACK_TOP;
    let mappings = RUST_LOW.load(Ordering::SeqCst)..RUST_HIGH.load(Ordering::SeqCst);
    !overlaps(&range, &arch::writable_image())
        && !overlaps(&range, &first_stack)
        && !overlaps(&range, &mappings)
}

/// A trap with any registers. The kernel's reach (see [`reach`]) must lie
/// in `pages` or outside Rust memory ([`is_foreign`]); otherwise the trap
/// is not made.
pub fn trap_at(args: TrapArgs, pages: Option<&RawPages>) -> Result<TrapArgs, Refused> {
    let length = reach(&args);
    let refused = Refused {
        address: args.arg2,
        length,
    };
    let end = args.arg2.checked_add(length).ok_or(refused)?;
    // The parts of the reach below and above `pages` must be foreign.
    let outside = match pages {
        Some(pages) => [
            args.arg2..end.min(pages.base),
            args.arg2.max(pages.end())..end,
        ],
        None => [args.arg2..end, 0..0],
    };
    if !outside
        .iter()
        .all(|part| part.is_empty() || is_foreign(part.start, part.end - part.start))
    {
        return Err(refused);
    }
    // SAFETY: every byte the kernel may touch is in `pages` (which no Rust
    // reference covers, and which the borrow keeps mapped for raw use) or
    // outside the memory Rust code uses (checked above).
    Ok(unsafe { arch::trap(args) })
}

// `align` takes a literal only: it is `PAGE_SIZE`.
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE]);
const _: () = assert!(core::mem::align_of::<Page>() == PAGE_SIZE);

/// A page-aligned, page-sized message buffer on the heap: one byte more
/// than the largest msgTotalSize, so any trap from its offset 0 stays in it.
pub struct Buffer {
    page: Box<Page>,
}

impl core::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Buffer({:#x})", self.address())
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Self::filled(0)
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        Buffer {
            page: Box::new(Page(self.page.0)),
        }
    }
}

impl Buffer {
    /// A zeroed buffer.
    pub fn new() -> Self {
        Self::filled(0)
    }

    /// A buffer whose every byte is `byte`.
    pub fn filled(byte: u8) -> Self {
        Buffer {
            page: Box::new(Page([byte; PAGE_SIZE])),
        }
    }

    /// The user address of its first byte (msgPtr for offset 0).
    pub fn address(&self) -> u64 {
        self.page.0.as_ptr().expose_provenance() as u64
    }

    /// Every byte.
    pub fn bytes(&self) -> &[u8] {
        &self.page.0
    }

    /// Every byte, for writing.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.page.0
    }

    /// The first `length` bytes (at most the page), copied.
    pub fn snapshot(&self, length: usize) -> Vec<u8> {
        self.page.0[..length.min(PAGE_SIZE)].to_vec()
    }

    /// Sets every byte to `byte`.
    pub fn fill(&mut self, byte: u8) -> &mut Self {
        self.page.0.fill(byte);
        self
    }

    /// Writes `bytes` at `offset` (cut at the end of the page).
    pub fn put(&mut self, offset: usize, bytes: &[u8]) -> &mut Self {
        let end = offset.saturating_add(bytes.len()).min(PAGE_SIZE);
        if let Some(place) = self.page.0.get_mut(offset.min(end)..end) {
            let length = place.len();
            place.copy_from_slice(&bytes[..length]);
        }
        self
    }

    /// Writes `value`'s bytes at `offset` (cut at the end of the page).
    pub fn put_value<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        offset: usize,
        value: &T,
    ) -> &mut Self {
        self.put(offset, value.as_bytes())
    }

    /// Reads a `T` at `offset`.
    pub fn get<T: FromBytes>(&self, offset: usize) -> Option<T> {
        let bytes = self.page.0.get(offset..)?;
        T::read_from_prefix(bytes).ok().map(|(value, _)| value)
    }

    /// Writes a descriptor slot at `offset`.
    pub fn put_slot(&mut self, offset: usize, slot: DescriptorSlot) -> &mut Self {
        self.put(offset, slot.as_bytes())
    }

    /// Writes slot `index` of a message with `data_size` bytes of data.
    pub fn put_slot_of(&mut self, data_size: u16, index: usize, slot: DescriptorSlot) -> &mut Self {
        self.put_slot(slot_offset(data_size, index), slot)
    }

    /// Slot `index` of a message with `data_size` bytes of data.
    pub fn slot(&self, data_size: u16, index: usize) -> Option<DescriptorSlot> {
        self.get(slot_offset(data_size, index))
    }

    /// A trap with `arg2` = this buffer's address + `offset`; refused when
    /// the buffer `arg3` describes would not lie inside the page.
    pub fn trap(
        &mut self,
        offset: usize,
        arg0: u64,
        arg1: u64,
        arg3: u64,
    ) -> Result<TrapArgs, Refused> {
        let args = TrapArgs {
            arg0,
            arg1,
            arg2: self.address() + offset as u64,
            arg3,
        };
        let length = reach(&args);
        if (offset as u64).saturating_add(length) > PAGE_BYTES {
            return Err(Refused {
                address: args.arg2,
                length,
            });
        }
        // SAFETY: the kernel reads and writes at most `length` bytes from
        // arg2, all inside this page (checked above), which `&mut self`
        // borrows exclusively for the whole trap.
        Ok(unsafe { arch::trap(args) })
    }

    /// A trap with `arg2` = this buffer's address: it always fits the page.
    pub fn trap_from_start(&mut self, arg0: u64, arg1: u64, arg3: u64) -> TrapArgs {
        self.trap_here(TrapArgs {
            arg0,
            arg1,
            arg2: 0,
            arg3,
        })
    }

    /// A trap from offset 0 (`args.arg2` is replaced), which always fits the page.
    fn trap_here(&mut self, args: TrapArgs) -> TrapArgs {
        let args = TrapArgs {
            arg2: self.address(),
            ..args
        };
        // SAFETY: msgTotalSize is 12 bits, so the kernel touches at most
        // 4095 bytes from arg2, inside this page, which `&mut self` borrows
        // exclusively for the whole trap.
        unsafe { arch::trap(args) }
    }

    /// SEND of `function` to `target` from offset 0; `arg3` as given.
    pub fn send(&mut self, function: Function, target: Descriptor, arg3: u64) -> TrapArgs {
        let sizes = MessageSizes::from_bits(arg3);
        self.trap_here(TrapArgs::send(function, target, 0, sizes))
    }

    /// RECEIVE on `door` into this buffer, offering `total` bytes.
    pub fn receive(&mut self, door: Descriptor, total: u16) -> TrapArgs {
        self.trap_here(TrapArgs::receive(door, 0, total))
    }

    /// REPLY from offset 0, storing `cookie`; `arg3` as given.
    pub fn reply(&mut self, cookie: u64, arg3: u64) -> TrapArgs {
        let sizes = MessageSizes::from_bits(arg3);
        self.trap_here(TrapArgs::reply(cookie, 0, sizes, false))
    }

    /// REPLY_RECEIVE from (and into) offset 0, storing `cookie`.
    pub fn reply_receive(&mut self, cookie: u64, arg3: u64) -> TrapArgs {
        let sizes = MessageSizes::from_bits(arg3);
        self.trap_here(TrapArgs::reply_receive(cookie, 0, sizes))
    }

    /// A kernel function from offset 0: `request` is the message data,
    /// `total` the buffer size offered for the reply.
    pub fn kernel_call(
        &mut self,
        function: abi::KernelFunction,
        target: Descriptor,
        request: &[u8],
        total: u16,
    ) -> TrapArgs {
        self.put(0, request);
        let data = u16::try_from(request.len()).unwrap_or(u16::MAX);
        let sizes = MessageSizes::of(total, data, 0);
        self.send(function.function(), target, sizes.into_bits())
    }
}

/// Where slot `index` lies after `data_size` bytes of data.
pub fn slot_offset(data_size: u16, index: usize) -> usize {
    usize::from(descriptor_offset(data_size & MAX_TOTAL_SIZE)) + index * usize::from(SLOT_SIZE)
}

/// Pages mapped for raw traps. No Rust reference ever covers them: the
/// kernel reaches them through msgPtr, the program through the copies
/// [`RawPages::write`] and [`RawPages::read`] only, so a trap may reach any
/// part of them, and a test may protect or unmap parts ([`RawPages::protect`],
/// [`RawPages::unmap`]) to see how the kernel treats such memory. The whole
/// range is unmapped when they are dropped.
///
/// An unmapped part stays theirs: userlib never maps Rust memory at a
/// fixed address, and the kernel keeps an unmapped guard page beside every
/// mapping it places (ABI.md §6), so no kernel-chosen mapping lands in a
/// hole between two of their mapped pages.
///
/// Copies are volatile, byte by byte: the kernel writes these pages while
/// other threads' traps run, and a test that copies from two threads at
/// once gets the bytes in some order, as it would from the kernel.
#[derive(Debug)]
pub struct RawPages {
    base: u64,
    length: u64,
    /// Whether dropping them unmaps them (not for claimed ranges).
    owned: bool,
}

impl RawPages {
    /// `count` readable and writable pages where the kernel chooses.
    pub fn map(count: u64) -> Result<Self, Error> {
        Self::map_at(0, count)
    }

    /// `count` readable and writable pages at `address` (0: the kernel
    /// chooses).
    pub fn map_at(address: u64, count: u64) -> Result<Self, Error> {
        let length = count
            .checked_mul(PAGE_BYTES)
            .ok_or(Error::InvalidArgument)?;
        let base = kernel::map_anonymous(address, length, protection::READ | protection::WRITE)?;
        Ok(RawPages {
            base,
            length,
            owned: true,
        })
    }

    /// `length` bytes of the memory object `object` from `offset`, mapped
    /// at `address` (0: where the kernel chooses) with `protection`
    /// (MEMORY_MAP); unmapped when dropped. The range was mapped just now,
    /// so no Rust reference covers it.
    pub fn map_object(
        object: Descriptor,
        address: u64,
        offset: u64,
        length: u64,
        protection: u32,
    ) -> Result<Self, Error> {
        let base = kernel::memory_map(object, address, offset, length, protection)?;
        Ok(RawPages {
            base,
            length,
            owned: true,
        })
    }

    /// A range outside the memory Rust code uses ([`is_foreign`]), mapped
    /// or not, by whatever means (a test of MAP_ANONYMOUS itself), to copy
    /// into and out of; dropping it unmaps nothing.
    pub fn claim(base: u64, length: u64) -> Result<Self, Refused> {
        if !is_foreign(base, length) {
            return Err(Refused {
                address: base,
                length,
            });
        }
        Ok(RawPages {
            base,
            length,
            owned: false,
        })
    }

    /// The first address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.base + self.length
    }

    /// Whether `[address, address + length)` lies in them.
    pub fn contains(&self, address: u64, length: u64) -> bool {
        address >= self.base
            && address
                .checked_add(length)
                .is_some_and(|end| end <= self.end())
    }

    /// Copies `bytes` to `address`, all or nothing; whether it did. The
    /// pages there must be mapped writable, or the process faults.
    pub fn write(&self, address: u64, bytes: &[u8]) -> bool {
        if !self.contains(address, bytes.len() as u64) {
            return false;
        }
        self.write_clipped(address, bytes);
        true
    }

    /// Copies the part of `bytes` that lands in these pages to `address`.
    pub fn write_clipped(&self, address: u64, bytes: &[u8]) {
        for (index, byte) in bytes.iter().enumerate() {
            let at = address.wrapping_add(index as u64);
            if self.contains(at, 1) {
                let pointer = core::ptr::with_exposed_provenance_mut::<u8>(at as usize);
                // SAFETY: `at` lies in these pages, which no Rust reference
                // covers (so nothing observes the write but the kernel and
                // these volatile copies) and which `self` keeps reserved.
                unsafe { pointer.write_volatile(*byte) };
            }
        }
    }

    /// Copies `out.len()` bytes from `address` into `out`, all or nothing;
    /// whether it did. The pages there must be mapped, or the process faults.
    pub fn read(&self, address: u64, out: &mut [u8]) -> bool {
        if !self.contains(address, out.len() as u64) {
            return false;
        }
        for (index, byte) in out.iter_mut().enumerate() {
            let pointer =
                core::ptr::with_exposed_provenance::<u8>((address + index as u64) as usize);
            // SAFETY: as in `write_clipped`: memory of these pages, only
            // ever accessed through copies.
            *byte = unsafe { pointer.read_volatile() };
        }
        true
    }

    /// Copies `bytes` to `address` at once (not byte by byte), all or
    /// nothing; whether it did. For memory shared with other processes
    /// whose writers a lock excludes (a share-point under its guard); the
    /// pages must be mapped writable, or the process faults.
    pub fn copy_in(&self, address: u64, bytes: &[u8]) -> bool {
        if !self.contains(address, bytes.len() as u64) {
            return false;
        }
        let pointer = core::ptr::with_exposed_provenance_mut::<u8>(address as usize);
        // SAFETY: `[address, address + len)` lies in these pages, which no
        // Rust reference covers and `self` keeps mapped; `bytes` is Rust
        // memory, so the two do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pointer, bytes.len()) };
        true
    }

    /// Copies `out.len()` bytes from `address` at once, all or nothing;
    /// whether it did (see [`RawPages::copy_in`]).
    pub fn copy_out(&self, address: u64, out: &mut [u8]) -> bool {
        if !self.contains(address, out.len() as u64) {
            return false;
        }
        let pointer = core::ptr::with_exposed_provenance::<u8>(address as usize);
        // SAFETY: as in `copy_in`, the other way.
        unsafe { core::ptr::copy_nonoverlapping(pointer, out.as_mut_ptr(), out.len()) };
        true
    }

    /// The 32-bit word at `address` as an atomic, if it lies in these pages
    /// and is 4-aligned: for a lock word shared with other processes,
    /// which touch it atomically too. A read-only mapping allows loads only.
    pub fn word(&self, address: u64) -> Option<&AtomicU32> {
        if !self.contains(address, 4) || !address.is_multiple_of(4) {
            return None;
        }
        let pointer = core::ptr::with_exposed_provenance_mut::<u32>(address as usize);
        // SAFETY: the word lies in these pages, is aligned, and stays
        // mapped while the returned reference borrows `self`; every access
        // to it (here and in the processes sharing it) is atomic.
        Some(unsafe { AtomicU32::from_ptr(pointer) })
    }

    /// The `length` bytes at `address`, if they lie in these pages.
    pub fn snapshot(&self, address: u64, length: usize) -> Option<Vec<u8>> {
        let mut bytes = alloc::vec![0u8; length];
        self.read(address, &mut bytes).then_some(bytes)
    }

    /// PROTECT of a range of these pages.
    pub fn protect(&self, address: u64, length: u64, protection: u32) -> Result<(), Error> {
        if !self.contains(address, length) {
            return Err(Error::BadAddressRange);
        }
        kernel::protect(address, length, protection)
    }

    /// UNMAP of a range of these pages (it stays theirs: see the type).
    pub fn unmap(&self, address: u64, length: u64) -> Result<(), Error> {
        if !self.contains(address, length) {
            return Err(Error::BadAddressRange);
        }
        kernel::unmap(address, length)
    }

    /// A trap with any registers whose buffer may lie in these pages; see
    /// [`trap_at`].
    pub fn trap(&self, args: TrapArgs) -> Result<TrapArgs, Refused> {
        trap_at(args, Some(self))
    }
}

impl Drop for RawPages {
    fn drop(&mut self) {
        if self.owned {
            let _ = kernel::unmap(self.base, self.length);
        }
    }
}

/// The time-stamp counter, for benchmarks.
#[inline(always)]
pub fn timestamp() -> u64 {
    arch::timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_follows_the_reserved_half() {
        let args = TrapArgs::send(
            Function(0x8000),
            Descriptor(1),
            0,
            MessageSizes::of(64, 8, 0),
        );
        assert_eq!(reach(&args), 64);
        assert_eq!(
            reach(&TrapArgs {
                arg3: args.arg3 | 1 << 40,
                ..args
            }),
            0
        );
    }

    #[test]
    fn rust_memory_is_not_foreign() {
        note_rust_memory(0x1000_0000_0000, 0x40000);
        assert!(!is_foreign(0x1000_0000_0000 + 0x100, 16));
        assert!(!is_foreign(0x1000_0000_0000 - 8, 16));
        assert!(!is_foreign(USER_STACK_TOP - 64, 16));
        assert!(!is_foreign(u64::MAX - 4, 16));
        assert!(is_foreign(0, 4095));
        assert!(is_foreign(0xffff_8000_0000_0000, 4095));
        assert!(is_foreign(0x1000_0000_0000 + 0x40000, 16));
        assert!(is_foreign(0x1000_0000_0000, 0));
    }

    #[test]
    fn buffer_traps_stay_in_the_page() {
        let mut buffer = Buffer::new();
        let sizes = MessageSizes::of(16, 0, 0).into_bits();
        assert!(buffer.trap(PAGE_SIZE - 16, 0x8000, 1, sizes).is_ok());
        assert!(buffer.trap(PAGE_SIZE - 15, 0x8000, 1, sizes).is_err());
        assert!(buffer.trap(PAGE_SIZE, 0x8000, 1, sizes | 1 << 32).is_ok());
        assert_eq!(slot_offset(13, 1), 32);
        buffer.put_value(4090, &0x0102_0304_0506_0708u64);
        assert_eq!(&buffer.bytes()[4090..], &[8, 7, 6, 5, 4, 3]);
    }

    #[test]
    fn foreign_traps_outside_rust_memory_only() {
        note_rust_memory(0x1000_0000_0000, 0x40000);
        let at = |arg2: u64| TrapArgs {
            arg2,
            ..TrapArgs::send(
                Function(0x8000),
                Descriptor(1),
                0,
                MessageSizes::of(64, 0, 0),
            )
        };
        assert!(trap_at(at(0x1000_0000_0000), None).is_err());
        assert!(trap_at(at(u64::MAX - 8), None).is_err());
    }
}
