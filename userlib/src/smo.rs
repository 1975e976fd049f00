//! Shared memory objects (seed 002, ABI.md §6.5): Sartoris' sharing by
//! copy. A process shares a range of its memory with another process
//! (named by the process id procman gave it); only the SMO's current
//! target reads or writes it, through the kernel, and may pass it on; only
//! its creator destroys it.
//!
//! Two layers: the typed API ([`share`], [`claim`], [`pass`], [`read`],
//! [`write`], [`my_id`]) returns `Result` with the kernel's distinct
//! `abi::Error`, so a caller learns why; the Sartoris functions
//! ([`share_mem`], [`claim_mem`], [`pass_mem`], [`read_mem`],
//! [`write_mem`]) wrap it with Sartoris' return conventions (an id or -1;
//! 0 or -1). Copies larger than `abi::kcall::smo::MAX_COPY` are split into
//! several kernel calls here, so no call holds the CPU long; a copy cut
//! short by an error leaves the chunks before it done.
//!
//! Sartoris' `read_mem` and `write_mem` take raw `void *` buffers; here
//! they take slices (`size` must fit them), so safe Rust never lets the
//! kernel write where Rust does not expect it. The memory a process
//! shares should be memory Rust code does not hold references to (a
//! [`crate::raw::RawPages`] mapping, say): the target may write it at any
//! time.
//!
//! This module must never restate an ABI number: permissions, the copy
//! limit and the errors are `abi`'s.

use abi::Error;
use abi::kcall::smo;

use crate::kernel;

/// A process id, as procman gives them out: SPAWN's reply (the parent
/// learns its child's), [`my_id`] (a process learns its own), and any
/// message a process chooses to send it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId(pub u64);

/// An SMO's number (below `abi::kcall::smo::ID_LIMIT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SmoId(pub u32);

/// What the target may do with an SMO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions(pub u32);

impl Permissions {
    /// The target may read it.
    pub const READ: Permissions = Permissions(smo::READ);
    /// The target may write it.
    pub const WRITE: Permissions = Permissions(smo::WRITE);
    /// Both.
    pub const READ_WRITE: Permissions = Permissions(smo::READ | smo::WRITE);
}

/// This process's id (0: procman gave it none, so no SMO can target it).
pub fn my_id() -> Result<ProcessId, Error> {
    kernel::process_id().map(ProcessId)
}

/// Shares `[address, address + size)` of this process's memory with
/// `target`: the new SMO's id. The range is checked at each copy, not now
/// (a range unmapped later fails copies with `SMO_REGION_GONE`).
pub fn share(
    target: ProcessId,
    address: u64,
    size: u64,
    permissions: Permissions,
) -> Result<SmoId, Error> {
    kernel::smo_share(target.0, address, size, permissions.0).map(SmoId)
}

/// Destroys an SMO this process created.
pub fn claim(id: SmoId) -> Result<(), Error> {
    kernel::smo_claim(id.0)
}

/// Hands an SMO this process is the target of to `target`.
pub fn pass(id: SmoId, target: ProcessId) -> Result<(), Error> {
    kernel::smo_pass(id.0, target.0)
}

/// The chunks a copy of `length` bytes from `offset` is split into:
/// (offset into the SMO, range of the caller's buffer), each at most
/// `MAX_COPY` bytes; an empty copy is one empty chunk (the kernel still
/// checks the SMO, the caller and the bounds).
fn chunks(offset: u64, length: usize) -> impl Iterator<Item = (u64, core::ops::Range<usize>)> {
    let step = smo::MAX_COPY as usize;
    let count = length.div_ceil(step).max(1);
    (0..count).map(move |i| {
        let start = i * step;
        let end = (start + step).min(length);
        (offset.wrapping_add(start as u64), start..end)
    })
}

/// Copies `dest.len()` bytes at `offset` of the SMO into `dest`.
pub fn read(id: SmoId, offset: u64, dest: &mut [u8]) -> Result<(), Error> {
    for (at, range) in chunks(offset, dest.len()) {
        kernel::smo_read(id.0, at, &mut dest[range])?;
    }
    Ok(())
}

/// Copies `src` to `offset` of the SMO.
pub fn write(id: SmoId, offset: u64, src: &[u8]) -> Result<(), Error> {
    for (at, range) in chunks(offset, src.len()) {
        kernel::smo_write(id.0, at, &src[range])?;
    }
    Ok(())
}

/// Sartoris' failure value.
const FAILED: i32 = -1;

/// A non-negative `int` as a count or offset (`None` for a negative one).
fn natural(value: i32) -> Option<u64> {
    u64::try_from(value).ok()
}

/// Sartoris' `share_mem`: shares `size` bytes at `addr` with
/// `target_task` for `perms` (`abi::kcall::smo` bits); the SMO's id, or -1.
pub fn share_mem(target_task: i32, addr: *const u8, size: i32, perms: i32) -> i32 {
    let (Some(target), Some(size), Ok(perms)) =
        (natural(target_task), natural(size), u32::try_from(perms))
    else {
        return FAILED;
    };
    match share(ProcessId(target), addr as u64, size, Permissions(perms)) {
        Ok(SmoId(id)) => i32::try_from(id).unwrap_or(FAILED),
        Err(_) => FAILED,
    }
}

/// Sartoris' `claim_mem`: destroys the SMO; 0, or -1.
pub fn claim_mem(smo_id: i32) -> i32 {
    match u32::try_from(smo_id).map(|id| claim(SmoId(id))) {
        Ok(Ok(())) => 0,
        _ => FAILED,
    }
}

/// Sartoris' `pass_mem`: makes `target_task` the SMO's target; 0, or -1.
pub fn pass_mem(smo_id: i32, target_task: i32) -> i32 {
    let (Ok(id), Some(target)) = (u32::try_from(smo_id), natural(target_task)) else {
        return FAILED;
    };
    match pass(SmoId(id), ProcessId(target)) {
        Ok(()) => 0,
        Err(_) => FAILED,
    }
}

/// The first `size` bytes of a buffer of `length`, if `size` is a
/// non-negative `int` that fits.
fn within(size: i32, length: usize) -> Option<usize> {
    usize::try_from(size).ok().filter(|size| *size <= length)
}

/// Sartoris' `read_mem`: copies `size` bytes at `off` of the SMO into
/// `dest` (which must hold them); 0, or -1.
pub fn read_mem(smo_id: i32, off: i32, size: i32, dest: &mut [u8]) -> i32 {
    let (Ok(id), Some(off), Some(size)) = (
        u32::try_from(smo_id),
        natural(off),
        within(size, dest.len()),
    ) else {
        return FAILED;
    };
    match read(SmoId(id), off, &mut dest[..size]) {
        Ok(()) => 0,
        Err(_) => FAILED,
    }
}

/// Sartoris' `write_mem`: copies `size` bytes of `src` to `off` of the
/// SMO; 0, or -1.
pub fn write_mem(smo_id: i32, off: i32, size: i32, src: &[u8]) -> i32 {
    let (Ok(id), Some(off), Some(size)) =
        (u32::try_from(smo_id), natural(off), within(size, src.len()))
    else {
        return FAILED;
    };
    match write(SmoId(id), off, &src[..size]) {
        Ok(()) => 0,
        Err(_) => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use abi::kcall::{SmoCopyRequest, SmoShareRequest};
    use abi::{KernelFunction, TrapArgs};
    use zerocopy::FromBytes;

    use super::*;
    use crate::fake_kernel;

    #[test]
    fn a_long_read_is_split_into_calls_of_at_most_max_copy() {
        let seen = alloc::rc::Rc::new(core::cell::RefCell::new(Vec::new()));
        let log = seen.clone();
        let mut dest = alloc::vec![0u8; 2 * smo::MAX_COPY as usize + 10];
        let base = dest.as_ptr() as u64;
        let result = fake_kernel::run(
            move |call| {
                assert_eq!(call.function(), KernelFunction::SmoRead.function());
                let request = SmoCopyRequest::read_from_bytes(call.data()).unwrap_or_default();
                log.borrow_mut().push(request);
                call.reply_ok(&[], &[])
            },
            || read(SmoId(7), 100, &mut dest),
        );
        assert_eq!(result, Ok(()));
        let max = smo::MAX_COPY;
        assert_eq!(
            *seen.borrow(),
            alloc::vec![
                SmoCopyRequest::new(7, 100, max, base),
                SmoCopyRequest::new(7, 100 + max, max, base + max),
                SmoCopyRequest::new(7, 100 + 2 * max, 10, base + 2 * max),
            ]
        );
    }

    #[test]
    fn a_refused_chunk_stops_the_copy_with_its_error() {
        let calls = alloc::rc::Rc::new(core::cell::Cell::new(0));
        let count = calls.clone();
        let src = alloc::vec![1u8; 3 * smo::MAX_COPY as usize];
        let result = fake_kernel::run(
            move |_| {
                count.set(count.get() + 1);
                if count.get() == 2 {
                    TrapArgs::error(Error::NoSuchSmo)
                } else {
                    TrapArgs::replied(0, 0, abi::MessageSizes::new().with_data_size(8))
                }
            },
            || write(SmoId(3), 0, &src),
        );
        assert_eq!(result, Err(Error::NoSuchSmo));
        assert_eq!(calls.get(), 2, "nothing after the refused chunk");
        // The Sartoris form says -1 for the same.
        let calls = alloc::rc::Rc::new(core::cell::Cell::new(0));
        let count = calls.clone();
        let status = fake_kernel::run(
            move |_| {
                count.set(count.get() + 1);
                TrapArgs::error(Error::NotSmoTarget)
            },
            || write_mem(3, 0, 5, &src),
        );
        assert_eq!((status, calls.get()), (-1, 1));
    }

    #[test]
    fn sartoris_forms_refuse_what_no_int_can_mean_without_a_trap() {
        let trapped = alloc::rc::Rc::new(core::cell::Cell::new(false));
        let flag = trapped.clone();
        let mut buffer = [0u8; 8];
        let results = fake_kernel::run(
            move |call| {
                flag.set(true);
                call.reply_ok(&[], &[])
            },
            || {
                [
                    share_mem(-2, core::ptr::null(), 8, 1),
                    share_mem(2, core::ptr::null(), -8, 1),
                    share_mem(2, core::ptr::null(), 8, -1),
                    claim_mem(-1),
                    pass_mem(-1, 2),
                    pass_mem(1, -2),
                    read_mem(1, 0, 9, &mut buffer),
                    read_mem(1, -1, 4, &mut buffer),
                    write_mem(1, 0, -4, &buffer),
                ]
            },
        );
        assert_eq!(results, [-1; 9]);
        assert!(!trapped.get(), "none of them reached the kernel");
    }

    #[test]
    fn share_mem_returns_the_kernels_id_and_sends_the_request() {
        let sent = alloc::rc::Rc::new(core::cell::RefCell::new(None));
        let log = sent.clone();
        let id = fake_kernel::run(
            move |call| {
                *log.borrow_mut() = SmoShareRequest::read_from_bytes(call.data()).ok();
                call.reply_ok(&[42, 0, 0, 0, 0, 0, 0, 0], &[])
            },
            || share_mem(5, 0x1234 as *const u8, 100, 3),
        );
        assert_eq!(id, 42);
        assert_eq!(
            *sent.borrow(),
            Some(SmoShareRequest::new(5, 0x1234, 100, 3))
        );
    }
}
