//! [`Message`]: building a message in a buffer and reading one that
//! arrived in it (seed 004's figure, `abi::message`):
//!
//! ```text
//! +0                      data (data_size bytes)
//! descriptor_offset       padding to 8, then descriptor_count 16-byte slots
//! extent .. capacity      room for the reply
//! ```
//!
//! One buffer serves the request and its reply: [`crate::call`] sends the
//! message with the whole buffer as msgTotalSize, then the message
//! describes the reply. Replies that follow the convention of the kernel and
//! of [`crate::serve`] start with msgRetVal and msgErrno; [`Message::payload`]
//! is what follows them.
//!
//! A message is either *outgoing* (its slots name this process's
//! descriptors to copy or move) or *arrived* (its slots name descriptors the
//! kernel just installed in this process, which [`Message::take_descriptor`]
//! hands out as [`OwnedDescriptor`]s).

use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::message::{MAX_TOTAL_SIZE, SLOT_SIZE, descriptor_offset, message_extent};
use abi::{Descriptor, DescriptorSlot, MessageSizes, Rights, TransferMode};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::descriptor::OwnedDescriptor;
use crate::ipc::capacity_of;

/// The largest buffer a message can use: 4095 bytes (12-bit msgTotalSize).
pub const CAPACITY: usize = MAX_TOTAL_SIZE as usize;

/// Why a message could not be built or taken in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Data, padding and slots would not fit in the buffer.
    Full,
    /// A message carries at most 255 descriptor slots.
    TooManyDescriptors,
    /// Sizes that arrived do not fit this buffer.
    BadSizes,
}

impl core::fmt::Display for MessageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MessageError::Full => "the message does not fit its buffer",
            MessageError::TooManyDescriptors => "a message carries at most 255 descriptors",
            MessageError::BadSizes => "the message's sizes do not fit its buffer",
        })
    }
}

/// A buffer of the largest message size, for [`Message::new`].
#[derive(Clone)]
pub struct MessageBuffer(pub [u8; CAPACITY]);

impl MessageBuffer {
    /// A zeroed buffer.
    pub const fn new() -> Self {
        MessageBuffer([0; CAPACITY])
    }
}

impl Default for MessageBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for MessageBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MessageBuffer({CAPACITY} bytes)")
    }
}

impl AsRef<[u8]> for MessageBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for MessageBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// A message in a buffer `B`: its own [`MessageBuffer`] (the default, 4 KiB
/// inline) or any `&mut [u8]`/`Box<[u8]>` the caller provides. Only the
/// first 4095 bytes of a larger buffer are used.
#[derive(Debug)]
pub struct Message<B = MessageBuffer> {
    buffer: B,
    data_size: u16,
    descriptor_count: u8,
    arrived: bool,
}

impl Message<MessageBuffer> {
    /// An empty message in its own 4095-byte buffer.
    pub const fn new() -> Self {
        Message {
            buffer: MessageBuffer::new(),
            data_size: 0,
            descriptor_count: 0,
            arrived: false,
        }
    }
}

impl Default for Message<MessageBuffer> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Message<B> {
    /// An empty message in `buffer`.
    pub fn over(buffer: B) -> Self {
        Message {
            buffer,
            data_size: 0,
            descriptor_count: 0,
            arrived: false,
        }
    }

    /// Gives the buffer back.
    pub fn into_buffer(self) -> B {
        self.buffer
    }

    /// The buffer's usable size: msgTotalSize of every call made with it.
    pub fn capacity(&self) -> u16 {
        capacity_of(self.buffer.as_ref())
    }

    /// The whole usable buffer.
    pub fn buffer(&self) -> &[u8] {
        let capacity = usize::from(self.capacity());
        &self.buffer.as_ref()[..capacity]
    }

    /// The whole usable buffer, for raw [`crate::ipc`] calls (then
    /// [`Message::set_arrived`] adopts what arrived).
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        let capacity = usize::from(self.capacity());
        &mut self.buffer.as_mut()[..capacity]
    }

    /// msgDataSize.
    pub fn data_size(&self) -> u16 {
        self.data_size
    }

    /// msgDescN.
    pub fn descriptor_count(&self) -> u8 {
        self.descriptor_count
    }

    /// The bytes the message occupies: data, padding and slots.
    pub fn extent(&self) -> u16 {
        message_extent(self.data_size, self.descriptor_count)
    }

    /// The message's `arg3`: the whole buffer as total size, the data size
    /// and the descriptor count.
    pub fn sizes(&self) -> MessageSizes {
        MessageSizes::new()
            .with_total_size(self.capacity())
            .with_data_size(self.data_size)
            .with_descriptor_count(self.descriptor_count)
    }

    /// Whether the slots name descriptors that arrived with the message.
    pub fn is_arrived(&self) -> bool {
        self.arrived
    }

    /// Empties the message (the buffer's bytes are left as they are).
    /// Descriptors that arrived and were not taken stay open: see
    /// [`Message::discard`].
    pub fn clear(&mut self) {
        self.data_size = 0;
        self.descriptor_count = 0;
        self.arrived = false;
    }

    /// Adopts the sizes of a message the kernel wrote into the buffer (a
    /// reply or a received message): its data size and descriptor count;
    /// the slots now name descriptors of this process.
    pub fn set_arrived(&mut self, sizes: MessageSizes) -> Result<(), MessageError> {
        if message_extent(sizes.data_size(), sizes.descriptor_count()) > self.capacity() {
            return Err(MessageError::BadSizes);
        }
        self.data_size = sizes.data_size();
        self.descriptor_count = sizes.descriptor_count();
        self.arrived = true;
        Ok(())
    }

    /// Sets the data size, keeping the slots after the data (they move
    /// with the padding, which is zeroed). Bytes the data grows over keep
    /// whatever the buffer held, so this both adopts bytes already written
    /// into the buffer and makes room to write through
    /// [`Message::data_mut`]. Turns an arrived message into an outgoing one.
    pub fn set_data_size(&mut self, size: u16) -> Result<&mut Self, MessageError> {
        if message_extent(size, self.descriptor_count) > self.capacity() {
            return Err(MessageError::Full);
        }
        let old_slots = usize::from(descriptor_offset(self.data_size));
        let new_slots = usize::from(descriptor_offset(size));
        let slot_bytes = usize::from(self.descriptor_count) * usize::from(SLOT_SIZE);
        let new_size = usize::from(size);
        // Without slots there is no padding (ABI.md D13), so nothing moves.
        if slot_bytes > 0 {
            let buffer = self.buffer_mut();
            buffer.copy_within(old_slots..old_slots + slot_bytes, new_slots);
            // Padding is zero so that no stale byte travels with the message.
            buffer[new_size..new_slots].fill(0);
        }
        self.data_size = size;
        self.arrived = false;
        Ok(self)
    }

    /// Appends `bytes` to the data (slots already pushed move up).
    pub fn push_data(&mut self, bytes: &[u8]) -> Result<&mut Self, MessageError> {
        let at = usize::from(self.data_size);
        let size = u16::try_from(at + bytes.len()).map_err(|_| MessageError::Full)?;
        self.set_data_size(size)?;
        self.buffer_mut()[at..at + bytes.len()].copy_from_slice(bytes);
        Ok(self)
    }

    /// Appends a value's bytes to the data.
    pub fn push<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<&mut Self, MessageError> {
        self.push_data(value.as_bytes())
    }

    /// Appends a descriptor slot. Turns an arrived message into an
    /// outgoing one.
    pub fn push_descriptor(&mut self, slot: DescriptorSlot) -> Result<&mut Self, MessageError> {
        let count = self
            .descriptor_count
            .checked_add(1)
            .ok_or(MessageError::TooManyDescriptors)?;
        if message_extent(self.data_size, count) > self.capacity() {
            return Err(MessageError::Full);
        }
        let at = slot_at(self.data_size, self.descriptor_count);
        self.buffer_mut()[at..at + usize::from(SLOT_SIZE)].copy_from_slice(slot.as_bytes());
        self.descriptor_count = count;
        self.arrived = false;
        Ok(self)
    }

    /// Appends a slot that copies `descriptor` with `rights` (a subset of
    /// the rights it holds; RECEIVE can never be copied).
    pub fn push_copy(
        &mut self,
        descriptor: Descriptor,
        rights: Rights,
    ) -> Result<&mut Self, MessageError> {
        self.push_descriptor(DescriptorSlot::copy(descriptor, rights))
    }

    /// Appends a slot that moves `descriptor` with `rights`: the message
    /// owns it from now on. Once sent it leaves this process; if the message
    /// is never sent, [`Message::discard`] closes it; if this push fails, the
    /// descriptor is closed (dropped).
    pub fn push_move(
        &mut self,
        descriptor: OwnedDescriptor,
        rights: Rights,
    ) -> Result<&mut Self, MessageError> {
        let slot = DescriptorSlot::moving(descriptor.descriptor(), rights);
        self.push_descriptor(slot)?;
        let _ = descriptor.into_raw();
        Ok(self)
    }

    /// The message data.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.data_size)]
    }

    /// The message data, for writing in place.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let size = usize::from(self.data_size);
        &mut self.buffer.as_mut()[..size]
    }

    /// A value read from the data at `offset`, if it lies within the data.
    pub fn read<T: FromBytes>(&self, offset: usize) -> Option<T> {
        let bytes = self.data().get(offset..)?;
        T::read_from_prefix(bytes).ok().map(|(value, _)| value)
    }

    /// A reply's payload: the data after msgRetVal and msgErrno (empty if
    /// the data is shorter).
    pub fn payload(&self) -> &[u8] {
        self.data().get(REPLY_PAYLOAD_OFFSET..).unwrap_or_default()
    }

    /// A value read from a reply's payload at `offset`.
    pub fn read_payload<T: FromBytes>(&self, offset: usize) -> Option<T> {
        self.read(REPLY_PAYLOAD_OFFSET.checked_add(offset)?)
    }

    /// Slot `index`, as it lies in the buffer.
    pub fn descriptor_slot(&self, index: usize) -> Option<DescriptorSlot> {
        if index >= usize::from(self.descriptor_count) {
            return None;
        }
        let at = slot_at(self.data_size, index as u8);
        DescriptorSlot::read_from_bytes(&self.buffer.as_ref()[at..at + usize::from(SLOT_SIZE)]).ok()
    }

    /// Takes ownership of the descriptor that arrived in slot `index`.
    /// `None` if the message is not an arrived one, the slot does not
    /// exist, or it was taken already (taking clears the slot's descriptor).
    pub fn take_descriptor(&mut self, index: usize) -> Option<OwnedDescriptor> {
        if !self.arrived {
            return None;
        }
        let slot = self.descriptor_slot(index)?;
        let descriptor = OwnedDescriptor::from_raw(Descriptor(slot.descriptor))?;
        let at = slot_at(self.data_size, index as u8);
        self.buffer_mut()[at..at + 4].fill(0);
        Some(descriptor)
    }

    /// Abandons the message and releases what it holds: an arrived
    /// message's descriptors that were not taken are closed; an outgoing
    /// message's moved descriptors (which it owns, see
    /// [`Message::push_move`]) are closed. Then the message is empty.
    pub fn discard(&mut self) {
        for index in 0..usize::from(self.descriptor_count) {
            let Some(slot) = self.descriptor_slot(index) else {
                continue;
            };
            let owned = self.arrived || slot.mode == TransferMode::Move as u32;
            if owned
                && let Some(descriptor) = OwnedDescriptor::from_raw(Descriptor(slot.descriptor))
            {
                drop(descriptor);
            }
        }
        self.clear();
    }
}

/// The offset of slot `index` after `data_size` bytes of data.
fn slot_at(data_size: u16, index: u8) -> usize {
    usize::from(descriptor_offset(data_size)) + usize::from(index) * usize::from(SLOT_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_slots_follow_the_layout() {
        let mut message = Message::new();
        assert_eq!(message.capacity(), 4095);
        assert!(message.push_data(b"hello").is_ok());
        assert!(message.push(&7u32).is_ok());
        assert!(message.push_copy(Descriptor(3), Rights::SEND).is_ok());
        assert_eq!(
            (
                message.data_size(),
                message.descriptor_count(),
                message.extent()
            ),
            (9, 1, 32)
        );
        assert_eq!(
            message.sizes(),
            MessageSizes::from_fields(4095, 9, 1).unwrap_or_default()
        );
        assert_eq!(&message.buffer()[16..20], &3u32.to_le_bytes());
        assert_eq!(message.read::<u32>(5), Some(7));
        assert_eq!(message.read::<u32>(6), None);
        assert_eq!(
            message.descriptor_slot(0),
            Some(DescriptorSlot::copy(Descriptor(3), Rights::SEND))
        );
        assert_eq!(message.descriptor_slot(1), None);
    }

    #[test]
    fn pushing_data_after_slots_moves_them() {
        let mut buffer = [0xaau8; 64];
        let mut message = Message::over(&mut buffer[..]);
        assert!(message.push_data(&[1, 2]).is_ok());
        assert!(message.push_copy(Descriptor(4), Rights::SEND).is_ok());
        assert!(message.push_copy(Descriptor(5), Rights::TRANSFER).is_ok());
        assert!(message.push_data(&[3; 7]).is_ok());
        assert_eq!(message.data(), &[1, 2, 3, 3, 3, 3, 3, 3, 3]);
        assert_eq!(message.extent(), 16 + 32);
        assert_eq!(message.descriptor_slot(0).map(|s| s.descriptor), Some(4));
        assert_eq!(message.descriptor_slot(1).map(|s| s.descriptor), Some(5));
        // The padding between data and slots is zero, not stale bytes.
        assert_eq!(&message.buffer()[9..16], &[0; 7]);
        assert!(message.set_data_size(1).is_ok());
        assert_eq!(message.descriptor_slot(1).map(|s| s.descriptor), Some(5));
        assert_eq!(message.extent(), 8 + 32);
    }

    #[test]
    fn setting_the_data_size_adopts_bytes_in_place() {
        let mut buffer = *b"written in place\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa";
        let mut message = Message::over(&mut buffer[..]);
        assert!(message.set_data_size(7).is_ok());
        assert_eq!(message.data(), b"written");
        // No slots, so no padding (ABI.md D13): the byte after the data stays.
        assert_eq!(&message.buffer()[7..8], b" ");
        assert_eq!(message.extent(), 7);
        assert_eq!(message.sizes().total_size(), 24);
    }

    #[test]
    fn a_full_buffer_refuses_more() {
        let mut buffer = [0u8; 40];
        let mut message = Message::over(&mut buffer[..]);
        assert!(message.push_data(&[0; 25]).is_ok());
        // 25 bytes of data put the slot at 32: 48 > 40.
        assert_eq!(
            message.push_copy(Descriptor(1), Rights::SEND).map(|_| ()),
            Err(MessageError::Full)
        );
        assert!(message.push_data(&[0; 15]).is_ok());
        assert_eq!(message.push_data(&[0]).map(|_| ()), Err(MessageError::Full));
        assert_eq!(message.extent(), 40);

        let mut big = Message::new();
        assert_eq!(
            big.push_data(&[0; CAPACITY + 1]).map(|_| ()),
            Err(MessageError::Full)
        );
        for index in 0..255 {
            assert!(big.push_copy(Descriptor(index), Rights::NONE).is_ok());
        }
        assert_eq!(
            big.push_copy(Descriptor(1), Rights::NONE).map(|_| ()),
            Err(MessageError::TooManyDescriptors)
        );
    }

    #[test]
    fn arrived_descriptors_are_taken_once() {
        let mut message = Message::new();
        assert!(message.push(&[0u32, 0, 42]).is_ok());
        assert!(message.push_copy(Descriptor(9), Rights::SEND).is_ok());
        // Outgoing slots name our own descriptors: nothing to take.
        assert!(message.take_descriptor(0).is_none());
        let sizes = message.sizes();
        assert!(message.set_arrived(sizes).is_ok());
        assert_eq!(message.payload(), &42u32.to_le_bytes());
        assert_eq!(message.read_payload::<u32>(0), Some(42));
        let taken = message.take_descriptor(0);
        assert_eq!(taken.as_ref().map(|d| d.descriptor()), Some(Descriptor(9)));
        let _ = taken.map(OwnedDescriptor::into_raw);
        assert!(message.take_descriptor(0).is_none());
        assert!(message.take_descriptor(1).is_none());
        assert_eq!(
            message.set_arrived(MessageSizes::from_fields(0, 4090, 1).unwrap_or_default()),
            Err(MessageError::BadSizes)
        );
    }

    #[test]
    fn payload_of_a_short_reply_is_empty() {
        let mut message = Message::new();
        assert!(message.push(&[1u8, 2, 3]).is_ok());
        assert!(message.payload().is_empty());
        assert_eq!(message.read_payload::<u8>(0), None);
    }
}
