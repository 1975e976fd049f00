//! What the threads of one fuzzer process share: the arena (and which of
//! its pages are mapped how), the thread slots, the trap counter, the
//! fodder's door references and the report.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use abi::kcall::protection;
use abi::{Error, PAGE_BYTES, TrapArgs};
use ipc_fuzz::{FirstViolation, FuzzArguments, FuzzReport, LAST_FODDER, Role, Violation};
use spin::{Mutex, MutexGuard};
use userlib::raw::RawPages;
use userlib::{kernel, println};

/// Takes `mutex`, yielding while another thread holds it (it may have been
/// preempted, and spinning would only wait for the next timer tick).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    loop {
        if let Some(guard) = mutex.try_lock() {
            return guard;
        }
        let _ = kernel::yield_now();
    }
}

/// Where the arena lies: far from everything else, followed by unmapped memory.
pub const ARENA_BASE: u64 = 0x0000_2000_0000_0000;
/// The arena's pages.
pub const ARENA_PAGES: usize = 8;
/// The arena's size in bytes.
pub const ARENA_SIZE: u64 = ARENA_PAGES as u64 * PAGE_BYTES;

/// How an arena page is mapped, as far as this process's own UNMAP,
/// PROTECT and MAP_ANONYMOUS calls on it (all made under the arena's lock)
/// have left it. The program writes and reads only `Writable` pages (and
/// reads `ReadOnly` ones), under the lock, so a page another thread
/// unmaps never faults it; the kernel meanwhile writes replies and
/// received messages into whatever is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Mapped readable and writable.
    Writable,
    /// Mapped without WRITE.
    ReadOnly,
    /// Not mapped (or mapped by a random trap the table does not know of:
    /// never touched either way).
    Unmapped,
}

/// The pages most random buffers point into: userlib's [`RawPages`] at a
/// fixed address, written only through copies (and by the kernel).
#[derive(Debug)]
pub struct Arena {
    pages: RawPages,
    state: Mutex<[Page; ARENA_PAGES]>,
}

impl Arena {
    /// Maps the arena.
    pub fn map() -> Result<Self, Error> {
        let pages = RawPages::map_at(ARENA_BASE, ARENA_PAGES as u64)?;
        Ok(Arena {
            pages,
            state: Mutex::new([Page::Writable; ARENA_PAGES]),
        })
    }

    /// The pages, for `userlib::raw::trap_at`.
    pub fn pages(&self) -> &RawPages {
        &self.pages
    }

    /// The first address.
    pub fn base(&self) -> u64 {
        self.pages.base()
    }

    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.pages.end()
    }

    /// Whether `[address, address + length)` lies in the arena.
    pub fn contains(&self, address: u64, length: u64) -> bool {
        self.pages.contains(address, length)
    }

    fn page_of(&self, address: u64) -> usize {
        ((address - self.base()) / PAGE_BYTES) as usize
    }

    /// Writes the part of `bytes` at `address` that lies in writable pages
    /// of the arena.
    pub fn write(&self, address: u64, bytes: &[u8]) {
        let state = lock(&self.state);
        let mut at = address;
        let mut rest = bytes;
        while !rest.is_empty() {
            let next_page = (at | (PAGE_BYTES - 1)).wrapping_add(1);
            let length = (next_page.wrapping_sub(at)).min(rest.len() as u64) as usize;
            let (here, after) = rest.split_at(length);
            if self.contains(at, 1) && state[self.page_of(at)] == Page::Writable {
                self.pages.write_clipped(at, here);
            }
            at = at.wrapping_add(length as u64);
            rest = after;
        }
    }

    /// Reads `out.len()` bytes at `address` if they lie in readable pages.
    pub fn read(&self, address: u64, out: &mut [u8]) -> bool {
        let state = lock(&self.state);
        let length = out.len() as u64;
        if length == 0 || !self.contains(address, length) {
            return false;
        }
        let readable = (self.page_of(address)..=self.page_of(address + length - 1))
            .all(|page| state[page] != Page::Unmapped);
        readable && self.pages.read(address, out)
    }

    /// Reads the `u32` at `address`, if it lies in readable arena pages.
    pub fn read_u32(&self, address: u64) -> Option<u32> {
        let mut bytes = [0u8; 4];
        self.read(address, &mut bytes)
            .then(|| u32::from_le_bytes(bytes))
    }

    /// UNMAP of `count` pages from page `first` (under the lock, so no copy
    /// of this program's touches them meanwhile).
    pub fn unmap(&self, first: usize, count: usize) -> Result<(), Error> {
        let mut state = lock(&self.state);
        let (first, count) = clamp(first, count);
        let address = self.base() + first as u64 * PAGE_BYTES;
        kernel::unmap(address, count as u64 * PAGE_BYTES)?;
        state[first..first + count].fill(Page::Unmapped);
        Ok(())
    }

    /// PROTECT of `count` pages from page `first`.
    pub fn protect(&self, first: usize, count: usize, bits: u32) -> Result<(), Error> {
        let mut state = lock(&self.state);
        let (first, count) = clamp(first, count);
        let address = self.base() + first as u64 * PAGE_BYTES;
        kernel::protect(address, count as u64 * PAGE_BYTES, bits)?;
        let page = if bits & protection::WRITE != 0 {
            Page::Writable
        } else {
            Page::ReadOnly
        };
        state[first..first + count].fill(page);
        Ok(())
    }

    /// Makes page `index` writable again: maps it if it is unmapped (after
    /// an UNMAP, in case a random MAP_ANONYMOUS mapped it meanwhile),
    /// PROTECTs it if it is read-only.
    pub fn restore(&self, index: usize) -> Result<(), Error> {
        let mut state = lock(&self.state);
        let index = index % ARENA_PAGES;
        let address = self.base() + index as u64 * PAGE_BYTES;
        match state[index] {
            Page::Writable => return Ok(()),
            Page::ReadOnly => {
                kernel::protect(address, PAGE_BYTES, protection::READ | protection::WRITE)?
            }
            Page::Unmapped => {
                kernel::unmap(address, PAGE_BYTES)?;
                kernel::map_anonymous(address, PAGE_BYTES, protection::READ | protection::WRITE)?;
            }
        }
        state[index] = Page::Writable;
        Ok(())
    }
}

/// A page range inside the arena.
fn clamp(first: usize, count: usize) -> (usize, usize) {
    let first = first % ARENA_PAGES;
    (first, count.clamp(1, ARENA_PAGES - first))
}

/// What a thread slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    /// No thread: the coordinator may start one.
    Free = 0,
    /// A thread runs in it.
    Running = 1,
    /// Its thread is done and waits on the reaper door to exit.
    Reaping = 2,
}

/// What a slot's thread does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotKind {
    /// Random traps and racing actions.
    Worker = 0,
    /// Serves [`ipc_fuzz::SERVE`].
    Server = 1,
}

/// One thread's place: what the coordinator knows of it.
#[derive(Debug)]
pub struct Slot {
    state: AtomicU32,
    /// [`SlotKind`] number.
    pub kind: AtomicU32,
    /// How many threads this slot has had.
    pub incarnation: AtomicU64,
    /// The top of the current thread's stack (0: unknown), for unmapping it
    /// once the thread is reaped.
    pub stack_top: AtomicU64,
    /// Whether the thread is inside a trap now.
    pub in_trap: AtomicBool,
    /// The number of its current (or last) trap.
    pub trap: AtomicU64,
    /// That trap's registers on entry.
    pub entry: [AtomicU64; 4],
}

impl Slot {
    const fn new() -> Self {
        Slot {
            state: AtomicU32::new(SlotState::Free as u32),
            kind: AtomicU32::new(SlotKind::Worker as u32),
            incarnation: AtomicU64::new(0),
            stack_top: AtomicU64::new(0),
            in_trap: AtomicBool::new(false),
            trap: AtomicU64::new(0),
            entry: [const { AtomicU64::new(0) }; 4],
        }
    }

    /// The state.
    pub fn state(&self) -> SlotState {
        match self.state.load(Ordering::SeqCst) {
            1 => SlotState::Running,
            2 => SlotState::Reaping,
            _ => SlotState::Free,
        }
    }

    /// Sets the state.
    pub fn set_state(&self, state: SlotState) {
        self.state.store(state as u32, Ordering::SeqCst);
    }

    /// The kind of thread.
    pub fn kind(&self) -> SlotKind {
        if self.kind.load(Ordering::SeqCst) == SlotKind::Server as u32 {
            SlotKind::Server
        } else {
            SlotKind::Worker
        }
    }

    /// Records that the thread enters trap `number` with `args`.
    pub fn enter(&self, number: u64, args: &TrapArgs) {
        let words = [args.arg0, args.arg1, args.arg2, args.arg3];
        for (cell, word) in self.entry.iter().zip(words) {
            cell.store(word, Ordering::Relaxed);
        }
        self.trap.store(number, Ordering::Relaxed);
        self.in_trap.store(true, Ordering::SeqCst);
    }

    /// Records that the trap returned.
    pub fn leave(&self) {
        self.in_trap.store(false, Ordering::SeqCst);
    }

    /// The registers of the current trap.
    pub fn entry(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.entry[i].load(Ordering::Relaxed))
    }
}

/// Thread slots: racing workers and server threads.
pub const SLOTS: usize = 8;
/// At most this many threads exit without being reaped (their stacks stay
/// mapped): server threads that exit holding a message.
pub const ABRUPT_EXITS: u32 = 48;
/// Violations printed as they happen (all are counted).
const PRINTED_VIOLATIONS: u64 = 5;

/// Everything the threads share.
#[derive(Debug)]
pub struct Shared {
    /// The arguments.
    pub args: FuzzArguments,
    /// The role.
    pub role: Role,
    /// The cookie key (from the seed).
    pub key: u32,
    /// Whether the two capabilities are held.
    pub capabilities: bool,
    /// Random traps to draw (the partner: until told to stop).
    pub budget: u64,
    /// Racing workers (slots 0..workers); server threads follow.
    pub workers: usize,
    /// Server threads.
    pub servers: usize,
    /// The arena.
    pub arena: Arena,
    /// Set when the threads must finish.
    pub stop: AtomicBool,
    /// Traps drawn so far (the next trap's number).
    pub next_trap: AtomicU64,
    /// Traps of the workers that returned: the coordinator's sign of progress.
    pub progress: AtomicU64,
    /// The slots.
    pub slots: [Slot; SLOTS],
    /// The fodder's door references with SEND (for the random SENDs).
    doors: [AtomicU32; LAST_FODDER as usize],
    door_count: AtomicUsize,
    /// The slot whose thread took the reaper's call last.
    pub reaped_slot: AtomicU32,
    /// Threads that exited without being reaped.
    pub abrupt_exits: AtomicU32,
    /// The threads' counts, added as each ends, and every violation.
    report: Mutex<FuzzReport>,
}

impl Shared {
    /// The shared state of a run.
    pub fn new(args: FuzzArguments, role: Role, arena: Arena, workers: usize) -> Self {
        Shared {
            args,
            role,
            key: ipc_fuzz::cookie_key(args.seed),
            capabilities: args.capabilities(),
            budget: match role {
                Role::Primary => args.traps,
                Role::Partner => u64::MAX,
            },
            workers,
            servers: SERVERS,
            arena,
            stop: AtomicBool::new(false),
            next_trap: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            slots: [const { Slot::new() }; SLOTS],
            doors: [const { AtomicU32::new(0) }; LAST_FODDER as usize],
            door_count: AtomicUsize::new(0),
            reaped_slot: AtomicU32::new(u32::MAX),
            abrupt_exits: AtomicU32::new(0),
            report: Mutex::new(FuzzReport {
                role: role as u32,
                workers: workers as u32,
                ..FuzzReport::default()
            }),
        }
    }

    /// Whether the threads must finish.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Tells every thread to finish.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Replaces the list of door references.
    pub fn set_doors(&self, doors: &[u32]) {
        for (cell, door) in self.doors.iter().zip(doors) {
            cell.store(*door, Ordering::Relaxed);
        }
        self.door_count
            .store(doors.len().min(self.doors.len()), Ordering::SeqCst);
    }

    /// A door reference of the fodder (by `index`, any number), if there is one.
    pub fn door(&self, index: u64) -> Option<u32> {
        let count = self.door_count.load(Ordering::SeqCst);
        (count > 0).then(|| self.doors[(index % count as u64) as usize].load(Ordering::Relaxed))
    }

    /// The report so far.
    pub fn report(&self) -> FuzzReport {
        *lock(&self.report)
    }

    /// Adds a thread's counts.
    pub fn add(&self, counts: &FuzzReport) {
        lock(&self.report).add(counts);
    }

    /// Records a violation seen by `slot` at trap `trap` (printed, with the
    /// seed, the first few times).
    pub fn violation(
        &self,
        kind: Violation,
        slot: usize,
        trap: u64,
        entry: TrapArgs,
        result: [u64; 4],
    ) {
        let seen = {
            let mut report = lock(&self.report);
            let seen = report.violation_count();
            if seen == 0 {
                report.first = FirstViolation {
                    kind: kind as u32,
                    slot: slot as u32,
                    trap,
                    entry: [entry.arg0, entry.arg1, entry.arg2, entry.arg3],
                    result,
                };
            }
            report.violations[kind as usize] += 1;
            seen
        };
        if seen < PRINTED_VIOLATIONS {
            println!(
                "{}[{}]: VIOLATION {} at trap {trap} (seed {:#x}, slot {slot}): entry [{:#x},{:#x},{:#x},{:#x}] result [{:#x},{:#x},{:#x},{:#x}]",
                ipc_fuzz::PROGRAM,
                self.role.name(),
                kind.name(),
                self.args.seed,
                entry.arg0,
                entry.arg1,
                entry.arg2,
                entry.arg3,
                result[0],
                result[1],
                result[2],
                result[3]
            );
        }
    }

    /// The trap number to blame for something not tied to one trap.
    pub fn current_trap(&self) -> u64 {
        self.next_trap.load(Ordering::SeqCst)
    }
}

/// Server threads per process.
pub const SERVERS: usize = 2;
