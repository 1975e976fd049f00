//! A scripted kernel for host unit tests: the test gives a closure that
//! answers each trap, and the code under test runs against it. The closure
//! sees the trap's registers and the caller's buffer (as the real kernel
//! would) through [`FakeCall`].

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;

use abi::function::Function;
use abi::message::{MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset, message_extent};
use abi::{Descriptor, DescriptorSlot, MessageSizes, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

type Handler = Box<dyn FnMut(&mut FakeCall<'_>) -> TrapArgs>;

std::thread_local! {
    static KERNEL: RefCell<Option<Handler>> = const { RefCell::new(None) };
}

/// Runs `body` with `kernel` answering every trap it makes on this thread.
pub(crate) fn run<R>(
    kernel: impl FnMut(&mut FakeCall<'_>) -> TrapArgs + 'static,
    body: impl FnOnce() -> R,
) -> R {
    KERNEL.with(|k| *k.borrow_mut() = Some(Box::new(kernel)));
    let result = body();
    KERNEL.with(|k| *k.borrow_mut() = None);
    result
}

/// The trap as the fake kernel sees it.
pub(crate) struct FakeCall<'a> {
    pub args: TrapArgs,
    pub buffer: &'a mut [u8],
}

impl FakeCall<'_> {
    pub fn function(&self) -> Function {
        Function(self.args.value())
    }

    pub fn target(&self) -> Descriptor {
        Descriptor(self.args.arg1 as u32)
    }

    pub fn sizes(&self) -> MessageSizes {
        MessageSizes::from_bits(self.args.arg3)
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer[..usize::from(self.sizes().data_size())]
    }

    pub fn slots(&self) -> Vec<DescriptorSlot> {
        let sizes = self.sizes();
        let start = usize::from(descriptor_offset(sizes.data_size()));
        (0..usize::from(sizes.descriptor_count()))
            .filter_map(|index| {
                let at = start + index * usize::from(SLOT_SIZE);
                DescriptorSlot::read_from_bytes(&self.buffer[at..at + 16]).ok()
            })
            .collect()
    }

    /// Writes a message (data, then slots) into the buffer; its sizes.
    pub fn write_reply(&mut self, data: &[u8], slots: &[DescriptorSlot]) -> MessageSizes {
        let count = u8::try_from(slots.len()).unwrap_or(u8::MAX);
        let data_size = u16::try_from(data.len()).unwrap_or(u16::MAX);
        assert!(usize::from(message_extent(data_size, count)) <= self.buffer.len());
        self.buffer[..data.len()].copy_from_slice(data);
        let start = usize::from(descriptor_offset(data_size));
        for (index, slot) in slots.iter().enumerate() {
            let at = start + index * usize::from(SLOT_SIZE);
            self.buffer[at..at + 16].copy_from_slice(slot.as_bytes());
        }
        MessageSizes::new()
            .with_data_size(data_size)
            .with_descriptor_count(count)
    }

    /// A successful kernel-style reply: msgRetVal 0, msgErrno 0, `payload`, `slots`.
    pub fn reply_ok(&mut self, payload: &[u8], slots: &[DescriptorSlot]) -> TrapArgs {
        let mut data = alloc::vec![0u8; 8];
        data.extend_from_slice(payload);
        let sizes = self.write_reply(&data, slots);
        TrapArgs::replied(0, 0, sizes)
    }

    /// Delivers a message to a RECEIVE.
    pub fn deliver(
        &mut self,
        function: Function,
        cookie: u64,
        data: &[u8],
        sender_total: u16,
    ) -> TrapArgs {
        let sizes = self.write_reply(data, &[]).with_total_size(sender_total);
        TrapArgs::received(function, cookie, self.args.arg2, sizes)
    }
}

/// The host trap under test.
pub(crate) fn trap(args: TrapArgs) -> TrapArgs {
    let length = usize::from(MessageSizes::from_bits(args.arg3).total_size());
    assert!(length <= usize::from(MAX_TOTAL_SIZE));
    let buffer: &mut [u8] = if length == 0 {
        &mut []
    } else {
        let address = core::ptr::with_exposed_provenance_mut::<u8>(args.arg2 as usize);
        // SAFETY: userlib's `ipc` passes the address of a live `&mut [u8]`
        // of at least `length` bytes, exclusively borrowed for the trap.
        unsafe { core::slice::from_raw_parts_mut(address, length) }
    };
    let mut call = FakeCall { args, buffer };
    KERNEL.with(|kernel| match kernel.borrow_mut().as_mut() {
        Some(handler) => handler(&mut call),
        None => TrapArgs::error(abi::Error::InvalidFunction),
    })
}
