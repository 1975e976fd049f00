//! What every racing thread carries: its generator, its counts, the number
//! of its current trap, the bracket every trap goes through ("every call
//! ends exactly once") and the oracle's checks that need no more than one
//! result (rights within what a kind of reference can hold, the return
//! conventions, cookies of the family).

use core::sync::atomic::Ordering;

use abi::function::Function;
use abi::{Descriptor, Error, KernelFunction, MessageSizes, ObjectKind, Rights, TrapArgs, trap};
use ipc_fuzz::{
    BOOT_ARCHIVE, COUNTED_ERRORS, FuzzReport, PROCESS_CONTROL, Violation, is_family_cookie,
};
use userlib::kernel::{self, DescriptorInfo};

use crate::rng::Rng;
use crate::shared::Shared;

/// A racing thread's own state.
#[derive(Debug)]
pub struct Context {
    /// The process's shared state.
    pub shared: &'static Shared,
    /// The slot it runs in.
    pub slot: usize,
    /// Its generator.
    pub rng: Rng,
    /// Its counts, added to the shared report when it ends.
    pub counts: FuzzReport,
    /// The number of the trap it is at.
    pub trap: u64,
    /// Traps started and ended.
    started: u64,
    ended: u64,
    /// Whether its traps count as the racing threads' progress (a worker's).
    progress: bool,
}

impl Context {
    /// The context of the thread in `slot` (its `incarnation`-th thread).
    pub fn new(shared: &'static Shared, slot: usize, incarnation: u64) -> Self {
        let stream = (shared.role as u64) << 56 | (slot as u64) << 48 | incarnation;
        Context {
            shared,
            slot,
            rng: Rng::stream(shared.args.seed, stream),
            counts: FuzzReport::default(),
            trap: 0,
            started: 0,
            ended: 0,
            progress: slot < shared.workers,
        }
    }

    /// Runs `trap` (one trap, whose registers are `entry`) and counts its
    /// start and its end: a trap that returns twice shows as more ends than
    /// starts. While it runs the slot shows the trap's number and
    /// registers, so a call that never ends can be named.
    pub fn bracket<R>(&mut self, entry: TrapArgs, trap: impl FnOnce() -> R) -> R {
        let slot = &self.shared.slots[self.slot];
        slot.enter(self.trap, &entry);
        self.started += 1;
        self.counts.kernel_traps += 1;
        let result = trap();
        self.ended += 1;
        slot.leave();
        if self.progress {
            self.shared.progress.fetch_add(1, Ordering::Relaxed);
        }
        if self.ended != self.started {
            self.violation(
                Violation::DoubleReturn,
                entry,
                [self.started, self.ended, 0, 0],
            );
            self.ended = self.started;
        }
        result
    }

    /// Records a violation at the current trap.
    pub fn violation(&mut self, kind: Violation, entry: TrapArgs, result: [u64; 4]) {
        self.shared
            .violation(kind, self.slot, self.trap, entry, result);
    }

    /// CLOCK's tick count (None if it failed).
    pub fn clock(&mut self) -> Option<u64> {
        let entry = entry_of(KernelFunction::Clock, Descriptor::NULL);
        self.bracket(entry, kernel::clock)
            .ok()
            .map(|clock| clock.ticks)
    }

    /// DESCRIPTOR_INFO of `descriptor`, its result checked against the
    /// rights a reference of its kind can hold.
    pub fn info(&mut self, descriptor: u32) -> Result<DescriptorInfo, Error> {
        let entry = entry_of(KernelFunction::DescriptorInfo, Descriptor(descriptor));
        let info = self.bracket(entry, || kernel::descriptor_info(Descriptor(descriptor)));
        if let Ok(info) = info {
            self.counts.rights_checked += 1;
            if !self.rights_possible(descriptor, info) {
                let kind = info.kind.map_or(0, |kind| kind as u64);
                self.violation(
                    Violation::Rights,
                    entry,
                    [kind, u64::from(info.rights.0), u64::from(descriptor), 0],
                );
            }
        }
        info
    }

    /// Whether a reference of `info`'s kind can hold its rights in this
    /// process (ABI.md §1.5: rights are only ever reduced). A door
    /// reference is an owner's (RECEIVE and at most TRANSFER) or a
    /// client's (at most SEND, TRANSFER, DUPLICATE), a memory object's at
    /// most the rights MEMORY_CREATE gives; capabilities exist
    /// only where they were given, as given (SEND only: they can be
    /// neither copied nor passed on); no fuzzer ever gets machine control.
    pub fn rights_possible(&self, descriptor: u32, info: DescriptorInfo) -> bool {
        let rights = info.rights;
        match info.kind {
            Some(ObjectKind::UserDoor | ObjectKind::SystemDoor) => {
                if rights.contains(Rights::RECEIVE) {
                    Rights::DOOR_OWNER.contains(rights)
                } else {
                    Rights::DOOR_CLIENT.contains(rights)
                }
            }
            Some(ObjectKind::Event) => Rights::EVENT.contains(rights),
            Some(ObjectKind::Thread | ObjectKind::Process) => Rights::HANDLE.contains(rights),
            // A random MEMORY_CREATE or MEMORY_COW (no capability needed).
            Some(ObjectKind::Memory) => Rights::MEMORY.contains(rights),
            Some(ObjectKind::ProcessControl) => {
                self.shared.capabilities
                    && descriptor == PROCESS_CONTROL.0
                    && rights == Rights::SEND
            }
            Some(ObjectKind::BootArchive) => {
                self.shared.capabilities && descriptor == BOOT_ARCHIVE.0 && rights == Rights::SEND
            }
            // Interrupt and kernel-log objects come from machine control,
            // which no fuzzer holds.
            Some(ObjectKind::MachineControl | ObjectKind::Interrupt | ObjectKind::KernelLog)
            | None => false,
        }
    }

    /// Counts a kernel error of a random trap.
    pub fn count_error(&mut self, number: u64) {
        self.counts.errors[(number as usize).min(COUNTED_ERRORS - 1)] += 1;
    }

    /// Checks the cookie a RECEIVE delivered (ABI.md §5): only fuzzer
    /// servers REPLY on the doors a fuzzer receives from, and they store
    /// family cookies only, so any other value came from somewhere else.
    pub fn check_cookie(&mut self, entry: TrapArgs, result: TrapArgs) {
        self.counts.cookies_checked += 1;
        if !is_family_cookie(self.shared.key, result.arg1) {
            self.violation(Violation::Cookie, entry, words(result));
        }
    }

    /// A family cookie for a REPLY.
    pub fn cookie(&mut self) -> u64 {
        ipc_fuzz::family_cookie(self.shared.key, self.rng.next() as u32)
    }

    /// Closes `descriptor` if a message brought it in above the fodder and
    /// it is not kept (racing: another thread may have taken the number
    /// meanwhile, which is one more CLOSE racing its use).
    pub fn close_arrival(&mut self, descriptor: u32) {
        if descriptor > ipc_fuzz::LAST_FODDER && !ipc_fuzz::is_kept(descriptor) {
            let entry = entry_of(KernelFunction::Close, Descriptor(descriptor));
            if self
                .bracket(entry, || kernel::close(Descriptor(descriptor)))
                .is_ok()
            {
                self.counts.closed_arrivals += 1;
            }
        }
    }
}

/// The registers of a userlib kernel call, for the record: the function
/// and the target (the buffer is on that call's stack).
pub fn entry_of(function: KernelFunction, target: Descriptor) -> TrapArgs {
    TrapArgs {
        arg0: function.function().bits(),
        arg1: u64::from(target.0),
        arg2: 0,
        arg3: 0,
    }
}

/// The four registers as words.
pub fn words(args: TrapArgs) -> [u64; 4] {
    [args.arg0, args.arg1, args.arg2, args.arg3]
}

/// Which trap operation `arg0` asks for, if its upper half is clear.
pub fn operation(arg0: u64) -> Option<KernelFunction> {
    (arg0 >> 32 == 0)
        .then(|| Function(arg0 as u32 as i32).kernel_function())
        .flatten()
}

/// What the return conventions (ABI.md §3) say about one trap's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    /// A kernel-detected failure with this error number.
    Failed(u64),
    /// A completed SEND.
    Completed,
    /// A RECEIVE or REPLY_RECEIVE that delivered a message.
    Received,
    /// A REPLY that was accepted.
    Replied,
    /// A result no convention allows.
    Broken,
}

/// Classifies `result`, the return of a trap entered with `args`.
pub fn returned(args: TrapArgs, result: TrapArgs) -> Returned {
    let sizes = MessageSizes::from_bits(result.arg3);
    let op = operation(args.arg0);
    let receives = matches!(
        op,
        Some(KernelFunction::Receive | KernelFunction::ReplyReceive)
    );
    let upper_clear = result.arg0 >> 32 == 0 && result.arg3 >> 32 == 0;
    // A kernel failure: arg0 = -1 with no reply data. (A server's error
    // reply also has msgRetVal -1, with 8 bytes of data at least; a
    // RECEIVE never delivers function -1, and its RECEIVE_BUFFER_TOO_SMALL
    // carries the queued message's sizes.)
    if result.arg0 == 0xffff_ffff && (receives || sizes.data_size() == 0) {
        let number = result.arg1;
        let arg2_ok = result.arg2 == 0
            || (op == Some(KernelFunction::ReplyReceive) && result.arg2 == trap::REPLY_DELIVERED);
        let arg3_ok =
            result.arg3 == 0 || (receives && number == Error::ReceiveBufferTooSmall as u64);
        return if upper_clear && arg2_ok && arg3_ok && Error::from_number(number as u32).is_some() {
            Returned::Failed(number)
        } else {
            Returned::Broken
        };
    }
    match op {
        Some(KernelFunction::Reply) => {
            if result == TrapArgs::default() {
                Returned::Replied
            } else {
                Returned::Broken
            }
        }
        Some(KernelFunction::Receive | KernelFunction::ReplyReceive) => {
            // The function of a call through a user door (or a notice):
            // never a trap operation's number, never negative.
            let function = result.arg0 as u32;
            let plausible = function >= 0x80 && function <= i32::MAX as u32;
            if upper_clear && plausible && result.arg2 == args.arg2 && sizes.layout().is_ok() {
                Returned::Received
            } else {
                Returned::Broken
            }
        }
        _ => {
            if upper_clear && result.arg2 == 0 && sizes.total_size() == 0 {
                Returned::Completed
            } else {
                Returned::Broken
            }
        }
    }
}
