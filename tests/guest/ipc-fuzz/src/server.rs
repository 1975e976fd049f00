//! A server thread: serves [`SERVE`], the door both processes' racing
//! threads call (through clients in their fodder), with real held
//! messages: RECEIVE, REPLY and REPLY_RECEIVE into and from a buffer of
//! its own or the shared arena, replies of every shape (fitting, too
//! large, from unmapped memory, with descriptors, errors), answers
//! abandoned by receiving again, and exits while holding a message.
//!
//! The oracle here: every message's cookie is 0 or one a fuzzer server set
//! (ABI.md §5); a tracked call's slots arrived with exactly the rights its
//! manifest asked for, and (when CLOCK shows no other thread ran) the
//! references installed hold exactly those rights.

use alloc::boxed::Box;

use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE, message_extent};
use abi::{Descriptor, Error, MessageSizes, Rights, TrapArgs};
use ipc_fuzz::{
    LAST_FODDER, MANIFEST_SLOTS, Manifest, REPLY_MAGIC, REQUEST_MAGIC, SERVE, TRACKED, Violation,
};
use userlib::raw::{self, Buffer};

use crate::context::{Context, Returned, returned, words};
use crate::shared::{ABRUPT_EXITS, ARENA_SIZE};
use crate::worker::{End, manifest_at};

/// What the thread holds: a received message it has not answered.
#[derive(Clone, Copy, Debug)]
struct Held {
    /// The caller's total size: the reply's budget.
    budget: u16,
    /// The request's nonce, for a tracked call received in its own buffer.
    nonce: Option<u64>,
    /// Replies to it that failed.
    failures: u32,
}

/// A server thread's state.
#[derive(Debug)]
struct Server<'a> {
    cx: &'a mut Context,
    buffer: Box<Buffer>,
    held: Option<Held>,
}

/// Serves until the process stops (or the thread decides to exit).
pub fn run(cx: &mut Context) -> End {
    let mut server = Server {
        cx,
        buffer: Box::new(Buffer::new()),
        held: None,
    };
    server.run()
}

impl Server<'_> {
    fn run(&mut self) -> End {
        let shared = self.cx.shared;
        loop {
            self.cx.trap = shared.current_trap();
            if shared.stopping() {
                if self.held.is_some() {
                    self.error_reply();
                }
                return End::Reap;
            }
            let Some(held) = self.held else {
                self.receive();
                continue;
            };
            match self.cx.rng.below(100) {
                // Receive again without answering: the caller gets ABANDONED.
                0..8 => {
                    self.cx.counts.abandoned += 1;
                    self.receive();
                }
                // Exit holding it: the caller gets PEER_DIED.
                8 if shared
                    .abrupt_exits
                    .load(core::sync::atomic::Ordering::SeqCst)
                    < ABRUPT_EXITS =>
                {
                    self.cx.counts.server_exits += 1;
                    return End::Abrupt;
                }
                8..16 => self.bad_reply(held),
                _ => {
                    let (sizes, place) = self.build_reply(held);
                    if place == Place::Own && self.cx.rng.chance(50) {
                        self.reply_receive(sizes);
                    } else {
                        self.reply(sizes, place);
                    }
                }
            }
        }
    }

    /// RECEIVE on the served door, into this thread's buffer or (now and
    /// then) the arena; a small total now and then.
    fn receive(&mut self) {
        let total = if self.cx.rng.chance(90) {
            MAX_TOTAL_SIZE
        } else {
            self.cx.rng.below(u64::from(MAX_TOTAL_SIZE)) as u16
        };
        let arena = self.cx.rng.chance(20);
        let before = self.cx.clock();
        let shared = self.cx.shared;
        let (args, result) = if arena {
            let address =
                shared.arena.base() + self.cx.rng.below(ARENA_SIZE - u64::from(MAX_TOTAL_SIZE));
            let args = TrapArgs::receive(SERVE, address, total);
            let result = self
                .cx
                .bracket(args, || raw::trap_at(args, Some(shared.arena.pages())));
            let Ok(result) = result else {
                return;
            };
            (args, result)
        } else {
            let args = TrapArgs::receive(SERVE, self.buffer.address(), total);
            let buffer = &mut self.buffer;
            let result = self.cx.bracket(args, || buffer.receive(SERVE, total));
            (args, result)
        };
        self.cx.counts.server_traps += 1;
        // Whatever was held is answered (ABANDONED) once the RECEIVE passes
        // its checks; if it did not, the next RECEIVE abandons it.
        self.held = None;
        self.received(args, result, arena, before);
    }

    /// What a RECEIVE or REPLY_RECEIVE returned.
    fn received(&mut self, args: TrapArgs, result: TrapArgs, arena: bool, before: Option<u64>) {
        match returned(args, result) {
            Returned::Received => {
                self.cx.counts.received += 1;
                self.cx.check_cookie(args, result);
                let sizes = MessageSizes::from_bits(result.arg3);
                let nonce = if arena {
                    None
                } else {
                    self.check_request(args, result, before)
                };
                self.held = Some(Held {
                    budget: sizes.total_size(),
                    nonce,
                    failures: 0,
                });
                if !arena {
                    for index in 0..usize::from(sizes.descriptor_count()) {
                        if let Some(slot) = self.buffer.slot(sizes.data_size(), index) {
                            self.cx.close_arrival(slot.descriptor);
                        }
                    }
                }
            }
            Returned::Failed(_) => {}
            _ => self
                .cx
                .violation(Violation::Convention, args, words(result)),
        }
    }

    /// A tracked call's slots: the rights granted are the rights asked
    /// for, and, if no tick came since before the RECEIVE (so nothing ran
    /// between the delivery and these checks but this thread), the
    /// references installed hold exactly them. Returns the call's nonce.
    fn check_request(
        &mut self,
        args: TrapArgs,
        result: TrapArgs,
        before: Option<u64>,
    ) -> Option<u64> {
        let sizes = MessageSizes::from_bits(result.arg3);
        if result.arg0 != TRACKED.bits() || usize::from(sizes.data_size()) < size_of::<Manifest>() {
            return None;
        }
        let manifest = manifest_at(&self.buffer, 0, REQUEST_MAGIC)?;
        let count = usize::from(sizes.descriptor_count());
        if manifest.count as usize != count || count > MANIFEST_SLOTS {
            self.cx.violation(
                Violation::Transfer,
                args,
                [u64::from(manifest.count), count as u64, result.arg3, 1],
            );
            return Some(manifest.nonce);
        }
        let mut slots = [DescriptorSlot::copy(Descriptor::NULL, Rights::NONE); MANIFEST_SLOTS];
        for (index, slot) in slots.iter_mut().enumerate().take(count) {
            *slot = self
                .buffer
                .slot(sizes.data_size(), index)
                .unwrap_or(DescriptorSlot::copy(Descriptor::NULL, Rights(u32::MAX)));
            self.cx.counts.rights_checked += 1;
            if slot.rights != manifest.rights[index] {
                self.cx.violation(
                    Violation::Transfer,
                    args,
                    [
                        index as u64,
                        u64::from(manifest.rights[index]),
                        u64::from(slot.rights),
                        result.arg3,
                    ],
                );
            }
        }
        let mut installed = [None; MANIFEST_SLOTS];
        for (index, slot) in slots.iter().enumerate().take(count) {
            installed[index] = Some(self.cx.info(slot.descriptor));
        }
        if before.is_some() && self.cx.clock() == before {
            for (index, slot) in slots.iter().enumerate().take(count) {
                let holds = match installed[index] {
                    Some(Ok(info)) => info.rights.0 == slot.rights,
                    _ => false,
                };
                self.cx.counts.rights_checked += 1;
                if !holds {
                    let seen = match installed[index] {
                        Some(Ok(info)) => u64::from(info.rights.0),
                        Some(Err(error)) => 0x1_0000_0000 | u64::from(error as u32),
                        None => u64::MAX,
                    };
                    self.cx.violation(
                        Violation::Transfer,
                        args,
                        [
                            index as u64,
                            u64::from(slot.descriptor),
                            u64::from(slot.rights),
                            seen,
                        ],
                    );
                }
            }
        }
        Some(manifest.nonce)
    }

    /// Writes a reply to `held` into this thread's buffer (or, now and
    /// then, for a request that is not tracked, the arena); its sizes and
    /// where it lies.
    fn build_reply(&mut self, held: Held) -> (MessageSizes, Place) {
        let budget = held.budget;
        if held.failures >= 2 || budget < 8 {
            return (self.put_error(budget), Place::Own);
        }
        if let Some(nonce) = held.nonce {
            return (self.tracked_reply(budget, nonce), Place::Own);
        }
        // A random reply: random data with random first words, a few slots.
        let data = self.cx.rng.below(u64::from(budget.min(512)) + 1) as u16;
        let count = if self.cx.rng.chance(80) {
            0
        } else {
            1 + self.cx.rng.below(2) as u8
        };
        let count = if message_extent(data, count) > budget {
            0
        } else {
            count
        };
        let mut bytes = [0u8; 512];
        for chunk in bytes[..usize::from(data)].chunks_mut(8) {
            let word = self.cx.rng.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        if data >= 8 && self.cx.rng.chance(30) {
            bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        if count == 0 && self.cx.rng.chance(15) {
            // Replies from the arena never carry a manifest (the bytes are
            // random), and another thread may have unmapped the page.
            let shared = self.cx.shared;
            let address =
                shared.arena.base() + self.cx.rng.below(ARENA_SIZE - u64::from(MAX_TOTAL_SIZE));
            shared.arena.write(address, &bytes[..usize::from(data)]);
            return (MessageSizes::of(data, data, 0), Place::Arena(address));
        }
        self.buffer.put(0, &bytes[..usize::from(data)]);
        for index in 0..usize::from(count) {
            let slot = self.random_slot();
            self.buffer.put_slot_of(data, index, slot);
        }
        let total = message_extent(data, count);
        (MessageSizes::of(total, data, count), Place::Own)
    }

    /// A reply to a tracked call: its nonce and the rights of the slots it
    /// carries (copies of fodder descriptors, with rights they were just
    /// seen to hold).
    fn tracked_reply(&mut self, budget: u16, nonce: u64) -> MessageSizes {
        const DATA: u16 = (REPLY_PAYLOAD_OFFSET + size_of::<Manifest>()) as u16;
        if DATA > budget {
            return self.put_error(budget);
        }
        let mut count = self.cx.rng.below(3) as usize;
        if message_extent(DATA, count as u8) > budget {
            count = 0;
        }
        let mut manifest = Manifest {
            magic: REPLY_MAGIC,
            count: count as u32,
            reserved: 0,
            nonce,
            rights: [0; MANIFEST_SLOTS],
        };
        for index in 0..count {
            let descriptor = 1 + self.cx.rng.below(u64::from(LAST_FODDER)) as u32;
            let held = self
                .cx
                .info(descriptor)
                .map_or(Rights::ALL, |info| info.rights);
            let mask = self.cx.rng.next() as u32;
            let rights = Rights(held.0 & mask & !Rights::RECEIVE.0);
            manifest.rights[index] = rights.0;
            self.buffer.put_slot_of(
                DATA,
                index,
                DescriptorSlot::copy(Descriptor(descriptor), rights),
            );
        }
        self.buffer.put_value(0, &[0u32, 0u32]);
        self.buffer.put_value(REPLY_PAYLOAD_OFFSET, &manifest);
        MessageSizes::of(message_extent(DATA, count as u8), DATA, count as u8)
    }

    /// An error reply (-1, a server error number), or an empty one if the
    /// caller has no room for 8 bytes.
    fn put_error(&mut self, budget: u16) -> MessageSizes {
        if budget < 8 {
            return MessageSizes::of(0, 0, 0);
        }
        self.buffer
            .put_value(0, &[u32::MAX, abi::error::FIRST_SERVER_ERROR]);
        MessageSizes::of(8, 8, 0)
    }

    /// A slot of a random reply: any fodder descriptor, any rights, copied
    /// or moved (the REPLY fails when the slot is wrong).
    fn random_slot(&mut self) -> DescriptorSlot {
        let descriptor = self.cx.rng.below(u64::from(LAST_FODDER) + 1) as u32;
        let rights = Rights(self.cx.rng.below(u64::from(Rights::ALL.0) + 1) as u32 & Rights::ALL.0);
        if self.cx.rng.chance(80) {
            DescriptorSlot::copy(Descriptor(descriptor), rights)
        } else {
            DescriptorSlot::moving(Descriptor(descriptor), rights)
        }
    }

    /// A reply that should fail: larger than the caller's buffer, or from
    /// an address that is not readable memory (null, kernel half).
    fn bad_reply(&mut self, held: Held) {
        let budget = held.budget;
        if budget < MAX_TOTAL_SIZE && self.cx.rng.chance(50) {
            let data = budget + 1 + self.cx.rng.below(u64::from(MAX_TOTAL_SIZE - budget)) as u16;
            self.buffer.fill(0);
            self.reply(MessageSizes::of(data, data, 0), Place::Own);
        } else {
            let address = self
                .cx
                .rng
                .pick(&[0, 0xffff_8000_0000_0000, 0x0000_8000_0000_0000]);
            let data = self.cx.rng.below(u64::from(budget) + 1) as u16;
            self.reply(
                MessageSizes::of(data.max(1), data, 0),
                Place::Arena(address),
            );
        }
    }

    /// Answers what it holds with an error reply (at the end).
    fn error_reply(&mut self) {
        let budget = self.held.map_or(0, |held| held.budget);
        let sizes = self.put_error(budget);
        self.reply(sizes, Place::Own);
    }

    /// REPLY from this thread's buffer or from `place`.
    fn reply(&mut self, sizes: MessageSizes, place: Place) {
        let cookie = self.cx.cookie();
        let shared = self.cx.shared;
        let (args, result) = match place {
            Place::Own => {
                let args = TrapArgs::reply(cookie, self.buffer.address(), sizes, false);
                let buffer = &mut self.buffer;
                let result = self
                    .cx
                    .bracket(args, || buffer.reply(cookie, sizes.into_bits()));
                (args, result)
            }
            Place::Arena(address) => {
                let args = TrapArgs::reply(cookie, address, sizes, false);
                let result = self
                    .cx
                    .bracket(args, || raw::trap_at(args, Some(shared.arena.pages())));
                let Ok(result) = result else {
                    return;
                };
                (args, result)
            }
        };
        self.cx.counts.server_traps += 1;
        match returned(args, result) {
            Returned::Replied => {
                self.cx.counts.replied += 1;
                self.held = None;
            }
            Returned::Failed(number) => self.reply_failed(number),
            _ => {
                self.cx
                    .violation(Violation::Convention, args, words(result));
                self.held = None;
            }
        }
    }

    /// After a refused reply: the message is still held unless it is gone.
    fn reply_failed(&mut self, number: u64) {
        match Error::from_number(number as u32) {
            Some(Error::CallerGone | Error::NothingToReply) => self.held = None,
            _ => {
                if let Some(held) = &mut self.held {
                    held.failures += 1;
                }
            }
        }
    }

    /// REPLY_RECEIVE from (and into) this thread's buffer.
    fn reply_receive(&mut self, sizes: MessageSizes) {
        let cookie = self.cx.cookie();
        let extent = message_extent(sizes.data_size(), sizes.descriptor_count());
        let total = if self.cx.rng.chance(90) {
            MAX_TOTAL_SIZE
        } else {
            extent.max(1) + self.cx.rng.below(u64::from(MAX_TOTAL_SIZE - extent.max(1))) as u16
        };
        let sizes = MessageSizes::of(total, sizes.data_size(), sizes.descriptor_count());
        let before = self.cx.clock();
        let args = TrapArgs::reply_receive(cookie, self.buffer.address(), sizes);
        let buffer = &mut self.buffer;
        let result = self
            .cx
            .bracket(args, || buffer.reply_receive(cookie, sizes.into_bits()));
        self.cx.counts.server_traps += 1;
        match returned(args, result) {
            Returned::Received => {
                self.cx.counts.replied += 1;
                self.held = None;
                self.received(args, result, false, before);
            }
            Returned::Failed(number) => {
                if result.arg2 == abi::trap::REPLY_DELIVERED {
                    self.cx.counts.replied += 1;
                    self.held = None;
                } else {
                    self.reply_failed(number);
                }
            }
            _ => {
                self.cx
                    .violation(Violation::Convention, args, words(result));
                self.held = None;
            }
        }
    }
}

/// Where a reply lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The thread's own buffer.
    Own,
    /// An address that is not the thread's buffer (the arena, or memory
    /// that is not readable at all).
    Arena(u64),
}
