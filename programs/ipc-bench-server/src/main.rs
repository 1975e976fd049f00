//! ipc-bench-server: the server half of `ipc-bench`'s round trips.
//!
//! It starts with the owner reference of the bench door as descriptor 1
//! (ipc-bench moves it in) and answers every call with the message it
//! received: same data size (the bytes are still in the buffer, so they go
//! back unchanged), same descriptor count, every descriptor slot turned
//! into a MOVE, so a descriptor that arrived goes straight back to the
//! caller and this process's table never grows. The loop is the raw trap
//! (`userlib::ipc::reply_receive`), not `userlib::serve`, so a measured
//! round trip is the kernel's path plus a handful of user instructions.
//!
//! Its buffer is one page-aligned 4095-byte buffer (the largest message),
//! so a 4000-byte message never straddles a page.
//!
//! Started with the argument `pager`, it is instead the pager of the
//! `pager-fault` row: it serves its door with `userlib::pager::PagerServer`,
//! answering each PAGE_REQUEST with a computed pattern
//! ([`ipc_bench::pager_pattern`] of the object's cookie and the page's
//! offset), which ipc-bench reads back and checks.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use abi::kcall::PageRequest;
use abi::message::{MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset};
use abi::{MessageSizes, TransferMode};
use userlib::ipc::{self, Received};
use userlib::pager::{Pager, PagerServer, Supply};
use userlib::{Startup, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The offset of a slot's `mode` field (`abi::DescriptorSlot`).
const SLOT_MODE_OFFSET: usize = 8;

fn run(mut startup: Startup) -> i32 {
    let Some(door) = startup.take_descriptor(1) else {
        println!("ipc-bench-server: started without a door (descriptor 1)");
        return 1;
    };
    if startup.arguments == ipc_bench::PAGER_ARGUMENT {
        let error = userlib::serve(
            &door,
            &mut PagerServer(PatternPager {
                page: [0; ipc_bench::PAGER_PATTERN_BYTES],
            }),
        );
        println!("ipc-bench-server: the pager's door failed: {error}");
        return 1;
    }
    let door = door.descriptor();
    let mut page = userlib::raw::Buffer::new();
    let buffer = &mut page.bytes_mut()[..usize::from(MAX_TOTAL_SIZE)];
    let mut received = match ipc::receive(door, buffer) {
        Ok(received) => received,
        Err(error) => {
            println!("ipc-bench-server: RECEIVE failed: {error}");
            return 1;
        }
    };
    loop {
        let sizes = echo_sizes(buffer, received);
        received = match ipc::reply_receive(0, buffer, sizes) {
            Ok(received) => received,
            // The client ends the machine with DEBUG_EXIT; the door dying
            // first (it exited instead) ends us here.
            Err(error) => {
                println!("ipc-bench-server: REPLY_RECEIVE failed: {error}");
                return 1;
            }
        };
    }
}

/// Serves pages of the computed pattern.
#[derive(Debug)]
struct PatternPager {
    page: [u8; ipc_bench::PAGER_PATTERN_BYTES],
}

impl Pager for PatternPager {
    fn page(&mut self, request: &PageRequest) -> Supply<'_> {
        for (index, byte) in self.page.iter_mut().enumerate() {
            *byte = ipc_bench::pager_pattern(request.cookie, request.offset, index);
        }
        Supply::Data(&self.page)
    }
}

/// Prepares the reply to `received`, which lies in `buffer`: the same data
/// and every slot sent back by MOVE. Returns the reply's sizes, the whole
/// buffer being the next receive buffer.
fn echo_sizes(buffer: &mut [u8], received: Received) -> MessageSizes {
    let data_size = received.sizes.data_size();
    let count = received.sizes.descriptor_count();
    let first = usize::from(descriptor_offset(data_size));
    for index in 0..usize::from(count) {
        let at = first + index * usize::from(SLOT_SIZE) + SLOT_MODE_OFFSET;
        if let Some(mode) = buffer.get_mut(at..at + 4) {
            mode.copy_from_slice(&(TransferMode::Move as u32).to_le_bytes());
        }
    }
    MessageSizes::new()
        .with_total_size(MAX_TOTAL_SIZE)
        .with_data_size(data_size)
        .with_descriptor_count(count)
}
