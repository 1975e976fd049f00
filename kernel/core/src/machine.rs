//! What the portable kernel needs from the machine: user memory, address
//! spaces, thread contexts, program loading and the console. The x86_64
//! layer implements it with page tables; host tests implement it with
//! plain maps.
//!
//! Memory objects (`crate::memory_object`) are the core's: it decides which
//! frames an object holds, how many objects share each, what each mapping
//! of a page may do and who is charged. The machine only hands out, frees
//! and copies frames, and maps a frame at a page ([`Machine::map_page`]) as
//! one the mapping does not own: unmapping such a page, or destroying its
//! space, leaves the frame alone (the object holds it).

use abi::Error;

use crate::boot_info::MemoryMap;

use crate::process::SpaceId;
use crate::thread::ThreadId;

/// The side of a copy between address spaces that was not accessible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFault {
    /// The range copied from.
    Source,
    /// The range copied to.
    Destination,
}

/// A thread's first user-mode registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserStart {
    /// Instruction pointer.
    pub entry: u64,
    /// Stack pointer.
    pub stack_pointer: u64,
    /// rdi.
    pub arg0: u64,
    /// rsi.
    pub arg1: u64,
    /// rdx.
    pub arg2: u64,
}

/// A loaded program, ready for its first thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadedProgram {
    /// Where the first thread starts (rdi/rsi set to the argument bytes; rdx
    /// left for the kernel to fill with the descriptor count).
    pub start: UserStart,
    /// User memory the program occupies, page tables included (charged to
    /// the process).
    pub memory_bytes: u64,
}

/// What MAP_ANONYMOUS made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// Where the memory was mapped.
    pub address: u64,
    /// Bytes of page tables the mapping allocated (at most
    /// [`crate::page_tables::bound`] of the range).
    pub table_bytes: u64,
}

/// How one page of a memory object is mapped: the frame behind it and
/// what the mapping may do with it (decided by the core: a frame shared by
/// copy-on-write is never writable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageMapping {
    /// The physical address of the frame (or of the device page).
    pub frame: u64,
    /// `abi::kcall::protection` bits, READ always among them.
    pub protection: u32,
    /// RAM, mapped cacheable; device memory (a direct range outside RAM) is
    /// mapped uncached.
    pub cached: bool,
}

/// A user-mode page fault, as the CPU reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The address accessed.
    pub address: u64,
    /// The page was present: the access broke its protection.
    pub present: bool,
    /// The access was a write.
    pub write: bool,
    /// The access was an instruction fetch.
    pub execute: bool,
}

/// One fast-path copy of a message (ABI.md's SEND or REPLY buffer): the
/// sender's whole buffer, checked writable, and the bytes that go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageCopy {
    /// The sender's space.
    pub from_space: SpaceId,
    /// The sender's buffer.
    pub from: u64,
    /// The sender's buffer's whole length (it later takes the reply or the
    /// next message, so it must be writable).
    pub checked: usize,
    /// The receiver's space.
    pub to_space: SpaceId,
    /// The receiver's buffer.
    pub to: u64,
    /// The bytes copied, at most `checked`.
    pub length: usize,
}

/// [`Machine::check_and_copy`] as two calls: the default, and the arch
/// layer's way for buffers that are not one page each.
#[inline(always)]
pub fn check_then_copy<M: Machine + ?Sized>(
    machine: &mut M,
    copy: MessageCopy,
    head: &mut [u8; 8],
) -> Result<(), CopyFault> {
    if copy.checked > 0 {
        machine
            .check_user(copy.from_space, copy.from, copy.checked, true)
            .map_err(|_| CopyFault::Source)?;
    }
    if copy.length > 0 {
        machine.copy_between(
            copy.from_space,
            copy.from,
            copy.to_space,
            copy.to,
            copy.length,
            head,
        )?;
    }
    Ok(())
}

/// Machine services.
pub trait Machine {
    /// Checks that `[address, address + length)` is mapped user memory,
    /// writable when `write` (BAD_BUFFER otherwise).
    fn check_user(
        &self,
        space: SpaceId,
        address: u64,
        length: usize,
        write: bool,
    ) -> Result<(), Error>;
    /// Copies user memory out (BAD_BUFFER when any byte is not readable user memory).
    fn read_user(&self, space: SpaceId, address: u64, buffer: &mut [u8]) -> Result<(), Error>;
    /// Copies into user memory (BAD_BUFFER when any byte is not writable user memory).
    fn write_user(&mut self, space: SpaceId, address: u64, data: &[u8]) -> Result<(), Error>;

    /// Copies `length` bytes from one user range to another (possibly in
    /// another space), page by page, and puts the first (up to) 8 bytes in
    /// `head` too (msgRetVal and msgErrno come from there). On a fault it
    /// says which side was not accessible; bytes before the fault may have
    /// been copied. The default bounces through a small buffer; the arch
    /// layer copies page to page.
    fn copy_between(
        &mut self,
        from_space: SpaceId,
        from: u64,
        to_space: SpaceId,
        to: u64,
        length: usize,
        head: &mut [u8; 8],
    ) -> Result<(), CopyFault> {
        let mut bounce = [0u8; 256];
        let mut done = 0;
        while done < length {
            let chunk = (length - done).min(bounce.len());
            self.read_user(from_space, from + done as u64, &mut bounce[..chunk])
                .map_err(|_| CopyFault::Source)?;
            if done == 0 {
                let n = chunk.min(8);
                head[..n].copy_from_slice(&bounce[..n]);
            }
            self.write_user(to_space, to + done as u64, &bounce[..chunk])
                .map_err(|_| CopyFault::Destination)?;
            done += chunk;
        }
        Ok(())
    }

    /// The IPC fast path's one step over a sender's buffer: checks that
    /// the whole buffer (`copy.checked` bytes) is writable user memory,
    /// then copies its first `copy.length` bytes to the receiver as
    /// [`Machine::copy_between`] does. The arch layer
    /// walks a one-page buffer once for both; the default is the two
    /// calls.
    #[inline(always)]
    fn check_and_copy(&mut self, copy: MessageCopy, head: &mut [u8; 8]) -> Result<(), CopyFault> {
        check_then_copy(self, copy, head)
    }

    /// Creates an empty user address space.
    fn create_space(&mut self) -> Result<SpaceId, Error>;
    /// Frees an address space and every user page in it.
    fn destroy_space(&mut self, space: SpaceId);
    /// Maps `length` bytes of zeroed memory at `address` (or where the machine
    /// chooses when `None`); returns the address and the page-table bytes it
    /// allocated. A failure leaves no page of the range mapped.
    fn map_anonymous(
        &mut self,
        space: SpaceId,
        address: Option<u64>,
        length: u64,
        protection: u32,
    ) -> Result<Mapped, Error>;
    /// Unmaps whatever is mapped in the range and frees the page tables left
    /// empty; returns the bytes freed, pages and tables. The frames of pages
    /// mapped with [`Machine::map_page`] are not freed nor counted: they
    /// belong to a memory object.
    fn unmap(&mut self, space: SpaceId, address: u64, length: u64) -> Result<u64, Error>;
    /// Changes the protection of a fully mapped range (BAD_ADDRESS_RANGE,
    /// changing nothing, when a page in it is not mapped). Pages mapped with
    /// [`Machine::map_page`] stay the object's and keep their caching.
    fn protect(
        &mut self,
        space: SpaceId,
        address: u64,
        length: u64,
        protection: u32,
    ) -> Result<(), Error>;
    /// Loads the boot-archive program `name` into `space` with `arguments`.
    fn load_program(
        &mut self,
        space: SpaceId,
        name: &[u8],
        arguments: &[u8],
    ) -> Result<LoadedProgram, Error>;

    /// Reads from the boot-archive file `name` at `offset` into `buffer`;
    /// returns the file's size and the bytes read (INVALID_ARGUMENT when
    /// there is no such file).
    fn read_archive(
        &self,
        name: &[u8],
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<(u64, usize), Error>;

    /// A zeroed frame for a memory object (OUT_OF_MEMORY when there is none).
    fn allocate_frame(&mut self) -> Result<u64, Error>;
    /// Gives back a frame from [`Machine::allocate_frame`], mapped nowhere.
    fn free_frame(&mut self, frame: u64);
    /// Writes `bytes` into frame `frame` (one from
    /// [`Machine::allocate_frame`]) at `offset`, inside the page.
    fn write_frame(&mut self, frame: u64, offset: usize, bytes: &[u8]);
    /// Copies the page at frame `from` to frame `to`.
    fn copy_frame(&mut self, from: u64, to: u64);
    /// Where `length` bytes can be mapped in `space`: at `address`, when
    /// the range is free (BAD_ADDRESS_RANGE otherwise), or, for `None`,
    /// where MAP_ANONYMOUS would place them (`crate::placement`). Changes
    /// nothing; [`Machine::placed`] tells the machine a placed range was used.
    fn find_room(&self, space: SpaceId, address: Option<u64>, length: u64) -> Result<u64, Error>;
    /// A range [`Machine::find_room`] placed is now mapped: the next
    /// placement starts past it.
    fn placed(&mut self, space: SpaceId, address: u64, length: u64);
    /// Maps `page` at the unmapped, page-aligned user `address` as a page the
    /// mapping does not own; returns the bytes of page tables it allocated
    /// (BAD_ADDRESS_RANGE when something is mapped there, OUT_OF_MEMORY).
    fn map_page(&mut self, space: SpaceId, address: u64, page: PageMapping) -> Result<u64, Error>;
    /// Points the page mapped at `address` with [`Machine::map_page`] at
    /// `page` (another frame, another protection), dropping any stale
    /// translation of it (BAD_ADDRESS_RANGE when nothing is mapped there).
    fn remap_page(&mut self, space: SpaceId, address: u64, page: PageMapping) -> Result<(), Error>;
    /// The firmware's memory map, as the kernel booted with it.
    fn memory_map(&self) -> &MemoryMap;
    /// The physical address of the ACPI RSDP, if the machine has one.
    fn rsdp(&self) -> Option<u64>;

    /// Prepares a thread context that will enter user mode at `start` in `space`.
    fn create_thread(
        &mut self,
        thread: ThreadId,
        space: SpaceId,
        start: UserStart,
    ) -> Result<(), Error>;
    /// The user-mode registers `thread` resumes with (its saved trap frame,
    /// before any pending trap return is written into it).
    fn user_registers(&self, thread: ThreadId) -> Option<abi::upcall::UserRegisters>;
    /// Makes `thread` resume with exactly `registers` (checked by the
    /// caller: user addresses, user flags) in user mode, every general
    /// register included (so not through SYSRET, which loses RCX and R11).
    fn set_user_registers(&mut self, thread: ThreadId, registers: &abi::upcall::UserRegisters);
    /// Frees a thread context. This may be the thread whose trap is being
    /// handled (THREAD_EXIT, PROCESS_EXIT, a fault): the machine must keep
    /// that context's stack until it has switched away from it.
    fn destroy_thread(&mut self, thread: ThreadId);

    /// Writes user output (DEBUG_WRITE, already marked) to the kernel
    /// console, or to the log ring while it is taken.
    fn console_write(&mut self, bytes: &[u8]);
    /// The kernel's lines and user output go to the log ring from now on
    /// (`crate::log`, LOG_TAKE), not to the serial port.
    fn log_take(&mut self);
    /// The serial port is the kernel's again: what the ring holds is
    /// written there first.
    fn log_give_back(&mut self);
    /// Copies whole lines from the ring's head into `out`, leaving them
    /// there.
    fn log_peek(&mut self, out: &mut [u8]) -> crate::log::Peeked;
    /// Takes `bytes` of lines a peek returned out of the ring.
    fn log_consume(&mut self, bytes: usize);
    /// Whether lines entered the ring since the last call.
    fn log_arrived(&mut self) -> bool;
    /// Ends the machine with a verdict; NOT_PERMITTED when the kernel was not
    /// booted for tests (then nothing happens).
    fn debug_exit(&mut self, success: bool) -> Result<(), Error>;
    /// How many times CPU `cpu` switched to a user thread (CPU_COUNTERS);
    /// a machine that does not count reports 0.
    fn dispatches(&self, cpu: usize) -> u64 {
        let _ = cpu;
        0
    }
    /// Free physical frames.
    fn free_frames(&self) -> u64;
    /// The preemption timer's ticks per second.
    fn timer_hz(&self) -> u32;

    /// Lets `space`'s threads use exactly the I/O ports of `ranges` with
    /// `in` / `out` (every other port faults), from now on: at once if
    /// `space` is the one running.
    fn set_io_ports(&mut self, space: SpaceId, ranges: &[crate::kcall::devices::IoRange]);
    /// Routes ISA interrupt `line` to this CPU, unmasked. NOT_PERMITTED
    /// when the machine has no interrupt controller to route it with.
    /// When it fires, the machine masks it, ends the interrupt and tells
    /// the kernel ([`crate::kernel::Kernel::interrupt`]).
    fn interrupt_route(&mut self, line: u8) -> Result<(), Error>;
    /// Unmasks a routed `line` again (its delivery was acknowledged).
    fn interrupt_unmask(&mut self, line: u8);
    /// Masks `line` for good (no interrupt object holds it any more).
    fn interrupt_mask(&mut self, line: u8);
}

/// What ARCHIVE_READ answers for `file`: its size, and how many of its
/// bytes from `offset` were copied into `buffer` (none from past the end).
pub fn read_file_window(file: &[u8], offset: u64, buffer: &mut [u8]) -> (u64, usize) {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(file.len());
    let count = buffer.len().min(file.len() - start);
    buffer[..count].copy_from_slice(&file[start..start + count]);
    (file.len() as u64, count)
}

#[cfg(test)]
mod tests {
    use super::read_file_window;

    #[test]
    fn a_file_window_stops_at_the_end_of_the_file_and_of_the_buffer() {
        let file = b"0123456789";
        let mut buffer = [0u8; 4];
        assert_eq!(read_file_window(file, 0, &mut buffer), (10, 4));
        assert_eq!(&buffer, b"0123");
        assert_eq!(read_file_window(file, 8, &mut buffer), (10, 2));
        assert_eq!(&buffer[..2], b"89");
        for past in [10, 11, u64::MAX] {
            assert_eq!(read_file_window(file, past, &mut buffer), (10, 0));
        }
        assert_eq!(read_file_window(b"", 0, &mut buffer), (0, 0));
    }
}
