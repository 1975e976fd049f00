//! The message buffer (seed 004's figure) and `arg3`, its sizes.
//!
//! ```text
//! msgPtr                          +0  message data (msgDataSize bytes)
//!                                     padding up to the next multiple of 8
//!                                     (only when msgDescN > 0)
//! msgPtr + descriptor_offset          msgDescN descriptor slots, 16 bytes each
//!                                     space reserved for the reply
//! msgPtr + msgTotalSize               end of the buffer (at most 4095 bytes)
//! ```
//!
//! Offsets are relative to `msgPtr`; `msgPtr` itself needs no alignment.

use bitfield_struct::bitfield;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Error;
use crate::descriptor::{Descriptor, Rights};

/// The largest buffer: `msgTotalSize` has 12 bits.
pub const MAX_TOTAL_SIZE: u16 = 4095;
/// Descriptor slots start at a multiple of this, relative to `msgPtr`.
pub const DESCRIPTOR_ALIGNMENT: u16 = 8;
/// The size of one descriptor slot.
pub const SLOT_SIZE: u16 = 16;

/// `arg3`: total size (bits 31-20), data size (19-8), descriptor count
/// (7-0). Bits 63-32 are reserved and must be zero.
#[bitfield(u64)]
#[derive(PartialEq, Eq, Hash)]
pub struct MessageSizes {
    /// `msgDescN`: the number of descriptor slots.
    #[bits(8)]
    pub descriptor_count: u8,
    /// `msgDataSize`: bytes of message data.
    #[bits(12)]
    pub data_size: u16,
    /// `msgTotalSize`: bytes in the whole buffer.
    #[bits(12)]
    pub total_size: u16,
    /// Reserved, zero.
    #[bits(32)]
    pub reserved: u32,
}

/// Where things lie in a validated buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLayout {
    /// Bytes of data at offset 0.
    pub data_size: u16,
    /// Offset of the first descriptor slot (`data_size` rounded up to 8).
    pub descriptor_offset: u16,
    /// Number of slots.
    pub descriptor_count: u8,
    /// Offset one past the last slot (the bytes the message occupies).
    pub used: u16,
    /// The whole buffer.
    pub total_size: u16,
}

/// The offset of the first descriptor slot after `data_size` bytes of data.
pub const fn descriptor_offset(data_size: u16) -> u16 {
    data_size.div_ceil(DESCRIPTOR_ALIGNMENT) * DESCRIPTOR_ALIGNMENT
}

/// The bytes a message with this much data and this many slots occupies.
/// The padding before the slots exists only when there are slots, so a
/// message without descriptors may use the whole buffer for data.
pub const fn message_extent(data_size: u16, descriptor_count: u8) -> u16 {
    if descriptor_count == 0 {
        data_size
    } else {
        descriptor_offset(data_size) + descriptor_count as u16 * SLOT_SIZE
    }
}

/// `arg3` with these sizes, each cut to its field's width: the register
/// value of [`MessageSizes::of`].
pub const fn sizes(total_size: u16, data_size: u16, descriptor_count: u8) -> u64 {
    MessageSizes::of(total_size, data_size, descriptor_count).into_bits()
}

impl MessageSizes {
    /// Sizes from their three fields, each cut to its field's width (a
    /// value above 4095 keeps its low 12 bits): for tests that build sizes
    /// the kernel must refuse, and for constants.
    pub const fn of(total_size: u16, data_size: u16, descriptor_count: u8) -> Self {
        Self::new()
            .with_total_size(total_size & MAX_TOTAL_SIZE)
            .with_data_size(data_size & MAX_TOTAL_SIZE)
            .with_descriptor_count(descriptor_count)
    }

    /// Sizes from their three fields. Fails with `BAD_SIZES` when a value
    /// does not fit its field (data and total are 12 bits).
    pub fn from_fields(
        total_size: u16,
        data_size: u16,
        descriptor_count: u8,
    ) -> Result<Self, Error> {
        Self::new()
            .with_total_size_checked(total_size)
            .and_then(|s| s.with_data_size_checked(data_size))
            .map(|s| s.with_descriptor_count(descriptor_count))
            .map_err(|()| Error::BadSizes)
    }

    /// Validates the sizes of a message (SEND, REPLY, REPLY_RECEIVE): no
    /// reserved bits, and data, padding and slots within the total.
    pub fn layout(self) -> Result<MessageLayout, Error> {
        if self.reserved() != 0 {
            return Err(Error::ReservedBits);
        }
        let used = message_extent(self.data_size(), self.descriptor_count());
        if used > self.total_size() {
            return Err(Error::BadSizes);
        }
        Ok(MessageLayout {
            data_size: self.data_size(),
            descriptor_offset: descriptor_offset(self.data_size()),
            descriptor_count: self.descriptor_count(),
            used,
            total_size: self.total_size(),
        })
    }
}

/// How a slot passes its descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum TransferMode {
    /// The receiver gets a new reference; the sender keeps its own.
    Copy = 0,
    /// The reference leaves the sender's table for the receiver's.
    Move = 1,
}

/// One descriptor slot.
///
/// Sent: `descriptor` is the sender's descriptor, `rights` the rights to
/// grant (a subset of those it holds), `mode` a [`TransferMode`].
/// Delivered: the kernel rewrites `descriptor` with the receiver's new
/// descriptor and `rights` with the rights granted; `mode` is unchanged.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct DescriptorSlot {
    /// The descriptor.
    pub descriptor: u32,
    /// The rights granted.
    pub rights: u32,
    /// A [`TransferMode`] number.
    pub mode: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// A slot's fields after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRequest {
    /// The sender's descriptor.
    pub descriptor: Descriptor,
    /// The rights to grant.
    pub rights: Rights,
    /// Copy or move.
    pub mode: TransferMode,
}

impl DescriptorSlot {
    /// A slot that copies `descriptor` with `rights`.
    pub const fn copy(descriptor: Descriptor, rights: Rights) -> Self {
        Self {
            descriptor: descriptor.0,
            rights: rights.0,
            mode: TransferMode::Copy as u32,
            reserved: 0,
        }
    }

    /// A slot that moves `descriptor` with `rights`.
    pub const fn moving(descriptor: Descriptor, rights: Rights) -> Self {
        Self {
            descriptor: descriptor.0,
            rights: rights.0,
            mode: TransferMode::Move as u32,
            reserved: 0,
        }
    }

    /// Checks the slot's own fields (not the descriptor it names):
    /// `RESERVED_BITS` for a non-zero reserved field or undefined rights bits,
    /// `BAD_SLOT` for an unknown mode.
    pub const fn request(&self) -> Result<SlotRequest, Error> {
        if self.reserved != 0 || Rights(self.rights).has_reserved_bits() {
            return Err(Error::ReservedBits);
        }
        let mode = match self.mode {
            0 => TransferMode::Copy,
            1 => TransferMode::Move,
            _ => return Err(Error::BadSlot),
        };
        Ok(SlotRequest {
            descriptor: Descriptor(self.descriptor),
            rights: Rights(self.rights),
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slot_is_sixteen_bytes() {
        assert_eq!(core::mem::size_of::<DescriptorSlot>(), SLOT_SIZE as usize);
    }

    #[test]
    fn layout_examples() {
        let l = MessageSizes::from_fields(64, 13, 2).and_then(MessageSizes::layout);
        assert_eq!(
            l,
            Ok(MessageLayout {
                data_size: 13,
                descriptor_offset: 16,
                descriptor_count: 2,
                used: 48,
                total_size: 64
            })
        );
        assert_eq!(
            MessageSizes::from_fields(47, 13, 2).and_then(MessageSizes::layout),
            Err(Error::BadSizes)
        );
        assert_eq!(
            MessageSizes::from_fields(48, 13, 2).map(|s| s.layout().is_ok()),
            Ok(true)
        );
        assert_eq!(MessageSizes::from_fields(4096, 0, 0), Err(Error::BadSizes));
        assert_eq!(
            MessageSizes::from_fields(0, 0, 0)
                .and_then(MessageSizes::layout)
                .map(|l| l.used),
            Ok(0)
        );
        assert_eq!(
            MessageSizes::from_bits(1 << 32).layout(),
            Err(Error::ReservedBits)
        );
    }

    #[test]
    fn bit_positions_match_the_seed() {
        let s = MessageSizes::from_fields(0xabc, 0x123, 0x45).unwrap_or_default();
        assert_eq!(s.into_bits(), 0xabc1_2345);
    }

    #[test]
    fn slot_validation() {
        assert!(
            DescriptorSlot::copy(Descriptor(3), Rights::SEND)
                .request()
                .is_ok()
        );
        let bad_mode = DescriptorSlot {
            mode: 2,
            ..DescriptorSlot::default()
        };
        assert_eq!(bad_mode.request(), Err(Error::BadSlot));
        let reserved = DescriptorSlot {
            reserved: 1,
            ..DescriptorSlot::default()
        };
        assert_eq!(reserved.request(), Err(Error::ReservedBits));
        let undefined_right = DescriptorSlot {
            rights: 1 << 31,
            ..DescriptorSlot::default()
        };
        assert_eq!(undefined_right.request(), Err(Error::ReservedBits));
    }

    proptest! {
        /// `layout` accepts exactly the sizes whose data, padding and slots fit.
        #[test]
        fn layout_accepts_exactly_what_fits(bits in any::<u64>()) {
            let sizes = MessageSizes::from_bits(bits);
            let fits = (bits >> 32) == 0 && {
                let data = (bits >> 8) & 0xfff;
                let count = bits & 0xff;
                let total = (bits >> 20) & 0xfff;
                let extent = if count == 0 { data } else { data.div_ceil(8) * 8 + count * 16 };
                extent <= total
            };
            match sizes.layout() {
                Ok(l) => {
                    prop_assert!(fits);
                    prop_assert_eq!(l.descriptor_offset % DESCRIPTOR_ALIGNMENT, 0);
                    prop_assert!(l.descriptor_offset >= l.data_size && l.descriptor_offset < l.data_size + 8);
                    prop_assert!(l.used <= l.total_size && l.total_size <= MAX_TOTAL_SIZE);
                }
                Err(e) => {
                    prop_assert!(!fits);
                    prop_assert_eq!(e, if bits >> 32 != 0 { Error::ReservedBits } else { Error::BadSizes });
                }
            }
        }

        /// Encoding the three fields and decoding them gives them back.
        #[test]
        fn sizes_round_trip(total in 0u16..4096, data in 0u16..4096, count in any::<u8>()) {
            let s = MessageSizes::from_fields(total, data, count);
            prop_assert!(s.is_ok());
            let s = s.unwrap_or_default();
            prop_assert_eq!((s.total_size(), s.data_size(), s.descriptor_count()), (total, data, count));
            prop_assert_eq!(MessageSizes::from_bits(s.into_bits()), s);
        }
    }
}
