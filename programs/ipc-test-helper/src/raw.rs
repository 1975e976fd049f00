//! The raw trap layer of the IPC tests: the four registers in, the four
//! registers out, with no decoding in between, so that a test can compare
//! every bit the kernel returns with what ABI.md says.
//!
//! Calls that name a [`Buffer`] are safe: the buffer is 4096 bytes and
//! `msgTotalSize` is a 12-bit field (at most 4095), so whatever total the
//! kernel honours stays inside memory the call borrows exclusively. Calls
//! with any other address go through the `unsafe` [`trap_at`].

use abi::function::Function;
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset};
use abi::{Descriptor, Error, KernelFunction, MessageSizes, TrapArgs};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// The size of a [`Buffer`]: one more than the largest `msgTotalSize`.
pub const BUFFER_SIZE: usize = 4096;

/// A message buffer that any `msgTotalSize` fits in.
#[derive(Clone)]
#[repr(C, align(16))]
pub struct Buffer {
    bytes: [u8; BUFFER_SIZE],
}

impl core::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Buffer({BUFFER_SIZE} bytes)")
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Buffer {
    /// A zeroed buffer.
    pub const fn new() -> Self {
        Buffer {
            bytes: [0; BUFFER_SIZE],
        }
    }

    /// The user address the kernel gets for this buffer.
    pub fn address(&mut self) -> u64 {
        self.bytes.as_mut_ptr().expose_provenance() as u64
    }

    /// All the bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// All the bytes, for writing.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Writes `value` at `offset` (ignored if it would not fit; offsets
    /// are constants of the callers).
    pub fn put<T: IntoBytes + Immutable + ?Sized>(&mut self, offset: usize, value: &T) {
        let bytes = value.as_bytes();
        if let Some(place) = self.bytes.get_mut(offset..offset + bytes.len()) {
            place.copy_from_slice(bytes);
        }
    }

    /// Reads a `T` at `offset`.
    pub fn get<T: FromBytes>(&self, offset: usize) -> Option<T> {
        let bytes = self.bytes.get(offset..)?;
        T::read_from_prefix(bytes).ok().map(|(value, _)| value)
    }

    /// Writes slot `index` of a message with `data_size` bytes of data.
    pub fn put_slot(&mut self, data_size: u16, index: usize, slot: DescriptorSlot) {
        self.put(slot_offset(data_size, index), &slot);
    }

    /// Slot `index` of a message with `data_size` bytes of data.
    pub fn slot(&self, data_size: u16, index: usize) -> Option<DescriptorSlot> {
        self.get(slot_offset(data_size, index))
    }
}

/// Where slot `index` lies after `data_size` bytes of data.
pub fn slot_offset(data_size: u16, index: usize) -> usize {
    usize::from(descriptor_offset(data_size & MAX_TOTAL_SIZE)) + index * usize::from(SLOT_SIZE)
}

/// `arg3` with these sizes (each value masked to its field).
pub fn sizes(total: u16, data: u16, count: u8) -> u64 {
    MessageSizes::new()
        .with_total_size(total & MAX_TOTAL_SIZE)
        .with_data_size(data & MAX_TOTAL_SIZE)
        .with_descriptor_count(count)
        .into_bits()
}

/// `arg0` for a function number: its 32 bits, upper half zero.
pub fn function_bits(function: Function) -> u64 {
    u64::from(function.0 as u32)
}

/// The registers a failed trap returns: -1, the error, zeros.
pub fn error(error: Error) -> TrapArgs {
    TrapArgs::error(error)
}

/// The registers a completed SEND returns: msgRetVal, msgErrno, 0, and
/// the reply's data size and descriptor count (total 0).
pub fn replied(ret_val: u32, errno: u32, data: u16, count: u8) -> TrapArgs {
    TrapArgs {
        arg0: u64::from(ret_val),
        arg1: u64::from(errno),
        arg2: 0,
        arg3: sizes(0, data, count),
    }
}

/// A trap on `buffer`: `arg2` is the buffer's address.
pub fn trap(arg0: u64, arg1: u64, buffer: &mut Buffer, arg3: u64) -> TrapArgs {
    let args = TrapArgs {
        arg0,
        arg1,
        arg2: buffer.address(),
        arg3,
    };
    // SAFETY: msgTotalSize is 12 bits, so the kernel reads or writes at
    // most 4095 bytes from `arg2`, all inside `buffer` (4096 bytes), which
    // this call borrows exclusively for the whole trap.
    unsafe { invoke(args) }
}

/// A trap with any registers, `arg2` included.
///
/// # Safety
/// Whatever memory the kernel may read or write at `args.arg2` (up to
/// `msgTotalSize` bytes) must not be memory that Rust code uses: null, the
/// kernel half, unmapped pages, or pages the caller mapped for the test and
/// accesses only through raw pointers.
pub unsafe fn trap_at(args: TrapArgs) -> TrapArgs {
    // SAFETY: the caller vouches for the memory at `arg2`.
    unsafe { invoke(args) }
}

/// SEND of `function` to `target` with the message in `buffer`.
pub fn send(function: Function, target: Descriptor, buffer: &mut Buffer, arg3: u64) -> TrapArgs {
    trap(function_bits(function), u64::from(target.0), buffer, arg3)
}

/// RECEIVE on `door` into `buffer`, offering `total` bytes.
pub fn receive(door: Descriptor, buffer: &mut Buffer, total: u16) -> TrapArgs {
    trap(
        function_bits(abi::function::RECEIVE),
        u64::from(door.0),
        buffer,
        sizes(total, 0, 0),
    )
}

/// REPLY with the message in `buffer`, storing `cookie`.
pub fn reply(cookie: u64, buffer: &mut Buffer, arg3: u64) -> TrapArgs {
    trap(function_bits(abi::function::REPLY), cookie, buffer, arg3)
}

/// REPLY_RECEIVE with the message in `buffer`, storing `cookie`.
pub fn reply_receive(cookie: u64, buffer: &mut Buffer, arg3: u64) -> TrapArgs {
    trap(
        function_bits(abi::function::REPLY_RECEIVE),
        cookie,
        buffer,
        arg3,
    )
}

/// A kernel function: `request` is the message data, `total` the buffer
/// size offered for the reply.
pub fn kernel(
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
    total: u16,
    buffer: &mut Buffer,
) -> TrapArgs {
    buffer.put(0, request);
    let data = u16::try_from(request.len()).unwrap_or(u16::MAX);
    send(function.function(), target, buffer, sizes(total, data, 0))
}

/// Whether `result` is exactly the failure `error`.
pub fn failed_with(result: &TrapArgs, error: Error) -> bool {
    *result == TrapArgs::error(error)
}

/// Whether `result` is a completed SEND (not a kernel failure).
pub fn completed(result: &TrapArgs) -> bool {
    !(result.arg0 == 0xffff_ffff && MessageSizes::from_bits(result.arg3).data_size() == 0)
}

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
unsafe fn invoke(args: TrapArgs) -> TrapArgs {
    // SAFETY: passed on from the callers, which document the buffer.
    unsafe { abi::trap::invoke(args) }
}

/// The host has no kernel: every trap fails (the programs only
/// type-check there).
#[cfg(not(target_os = "none"))]
unsafe fn invoke(args: TrapArgs) -> TrapArgs {
    let _ = args;
    TrapArgs::error(Error::InvalidFunction)
}
