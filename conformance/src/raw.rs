//! The raw trap: four registers in, four registers out, with nothing in
//! between, so that a case compares every bit the kernel returns.
//!
//! [`Buffer::trap`] is safe: a buffer is one page, and the call refuses
//! registers whose msgPtr and msgTotalSize would let the kernel reach past
//! it. Any other address goes through [`trap_at`], whose callers vouch for
//! the memory (null, the kernel half, unmapped pages, or the test pages of
//! `context::TestPages`, which Rust code never references).

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use abi::function::Function;
use abi::{Descriptor, DescriptorSlot, MessageSizes, TrapArgs};
use zerocopy::IntoBytes;

use crate::context::Failed;

/// The size of a [`Buffer`]: one page, one more byte than the largest
/// msgTotalSize.
pub const PAGE_SIZE: usize = 4096;

#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE]);

/// A page-aligned, page-sized message buffer on the heap.
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

impl Buffer {
    /// A buffer whose every byte is `byte`.
    pub fn filled(byte: u8) -> Self {
        Buffer {
            page: Box::new(Page([byte; PAGE_SIZE])),
        }
    }

    /// The user address of its first byte.
    pub fn address(&self) -> u64 {
        self.page.0.as_ptr().expose_provenance() as u64
    }

    /// Every byte.
    pub fn bytes(&self) -> &[u8] {
        &self.page.0
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

    /// Writes a descriptor slot at `offset`.
    pub fn put_slot(&mut self, offset: usize, slot: DescriptorSlot) -> &mut Self {
        self.put(offset, slot.as_bytes())
    }

    /// A trap with `arg2` = this buffer's address + `offset`. Refused (a
    /// setup failure, no trap) if the buffer `arg3` describes would not lie
    /// inside the page.
    pub fn trap(
        &mut self,
        offset: usize,
        arg0: u64,
        arg1: u64,
        arg3: u64,
    ) -> Result<TrapArgs, Failed> {
        // The kernel only touches memory when arg3's reserved half is zero;
        // then it touches at most msgTotalSize bytes from msgPtr.
        let total = if arg3 >> 32 == 0 {
            usize::from(MessageSizes::from_bits(arg3).total_size())
        } else {
            0
        };
        if offset.saturating_add(total) > PAGE_SIZE {
            return Err(Failed(format!(
                "a buffer of {total} bytes at offset {offset} does not fit a page"
            )));
        }
        let args = TrapArgs {
            arg0,
            arg1,
            arg2: self.address() + offset as u64,
            arg3,
        };
        // SAFETY: the kernel reads and writes at most msgTotalSize bytes
        // from arg2, all inside this page (checked above), which `&mut self`
        // borrows exclusively for the whole trap.
        Ok(unsafe { invoke(args) })
    }

    /// SEND of `function` to `target` from offset 0.
    pub fn send(
        &mut self,
        function: Function,
        target: Descriptor,
        arg3: u64,
    ) -> Result<TrapArgs, Failed> {
        self.trap(0, function_bits(function), u64::from(target.0), arg3)
    }

    /// RECEIVE on `door` into this buffer, offering `total` bytes.
    pub fn receive(&mut self, door: Descriptor, total: u16) -> Result<TrapArgs, Failed> {
        self.trap(
            0,
            function_bits(abi::function::RECEIVE),
            u64::from(door.0),
            crate::expect::sizes(total, 0, 0),
        )
    }

    /// REPLY from offset 0, storing `cookie`.
    pub fn reply(&mut self, cookie: u64, arg3: u64) -> Result<TrapArgs, Failed> {
        self.trap(0, function_bits(abi::function::REPLY), cookie, arg3)
    }

    /// REPLY_RECEIVE from (and into) offset 0, storing `cookie`.
    pub fn reply_receive(&mut self, cookie: u64, arg3: u64) -> Result<TrapArgs, Failed> {
        self.trap(0, function_bits(abi::function::REPLY_RECEIVE), cookie, arg3)
    }
}

/// `arg0` for a function number.
pub const fn function_bits(function: Function) -> u64 {
    crate::expect::function_bits(function.0)
}

/// A trap with any registers.
///
/// # Safety
/// The kernel may read or write up to msgTotalSize bytes at `args.arg2`: that
/// memory must be null, in the kernel half, unmapped, or pages that Rust code
/// only reaches through raw pointers (the test pages).
pub unsafe fn trap_at(args: TrapArgs) -> TrapArgs {
    // SAFETY: passed on to the caller.
    unsafe { invoke(args) }
}

/// The trap itself.
///
/// # Safety
/// As [`abi::trap::invoke`].
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
unsafe fn invoke(args: TrapArgs) -> TrapArgs {
    // SAFETY: passed on from the callers, which document the buffer.
    unsafe { abi::trap::invoke(args) }
}

/// The host has no kernel: every trap fails (the suite only type-checks and
/// tests its table there).
///
/// # Safety
/// None needed; it touches no memory.
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
unsafe fn invoke(args: TrapArgs) -> TrapArgs {
    let _ = args;
    TrapArgs::error(abi::Error::InvalidFunction)
}
