//! A process's descriptor table: descriptor numbers to references (object,
//! rights, cookie).
//!
//! Descriptor 0 is the NULL target and never allocated; new references take
//! the lowest free number, as POSIX file descriptors do, so numbers stay
//! small and predictable. Each installation gets a fresh generation, so the
//! kernel can tell "the reference a caller used" from a later reference that
//! reused its number (a reply's cookie must land on the former only).

use abi::descriptor::MAX_DESCRIPTORS;
use abi::{Descriptor, Error, Rights};
use alloc::vec::Vec;

use crate::object::ObjectId;

/// One reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The object referred to.
    pub object: ObjectId,
    /// What the holder may do with it.
    pub rights: Rights,
    /// Set by the door's server when it replies to a call made through this
    /// reference; delivered to the server with every call. Starts at 0.
    pub cookie: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    reference: Reference,
    generation: u64,
}

/// The table.
#[derive(Debug, Default)]
pub struct DescriptorTable {
    /// `entries[i]` is descriptor `i + 1`.
    entries: Vec<Option<Entry>>,
    /// Open descriptors (at most MAX_DESCRIPTORS: 32 bits keep the table,
    /// which every process holds, at five words).
    open: u32,
    /// Every entry below this index is in use, so the search for the lowest
    /// free one starts here: filling a table is linear, not quadratic.
    lowest_hole: u32,
    /// The next installation's generation. 64 bits never wrap (a table
    /// installing a reference every nanosecond would take 584 years), so a
    /// generation names one installation for the table's whole life: a
    /// reply's cookie can never land on a later reference at the same number.
    next_generation: u64,
}

impl DescriptorTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
            open: 0,
            lowest_hole: 0,
            next_generation: 0,
        }
    }

    /// Number of open descriptors.
    pub const fn open(&self) -> usize {
        self.open as usize
    }

    /// How many more references fit.
    pub const fn room(&self) -> usize {
        (MAX_DESCRIPTORS - self.open) as usize
    }

    fn slot(descriptor: Descriptor) -> Option<usize> {
        (descriptor.0 >= 1 && descriptor.0 <= MAX_DESCRIPTORS).then(|| descriptor.0 as usize - 1)
    }

    /// Installs `reference` at the lowest free descriptor.
    pub fn install(&mut self, reference: Reference) -> Result<Descriptor, Error> {
        // The counter moves only once the install succeeds: a refused
        // install changes nothing.
        let generation = self.next_generation;
        let entry = Some(Entry {
            reference,
            generation,
        });
        let hole = self
            .entries
            .iter()
            .skip(self.lowest_hole as usize)
            .position(Option::is_none)
            .map(|offset| self.lowest_hole as usize + offset);
        let index = match hole {
            Some(index) => {
                self.entries[index] = entry;
                index
            }
            None if self.entries.len() < MAX_DESCRIPTORS as usize => {
                self.entries
                    .try_reserve(1)
                    .map_err(|_| Error::OutOfMemory)?;
                self.entries.push(entry);
                self.entries.len() - 1
            }
            None => return Err(Error::TableFull),
        };
        self.next_generation = generation.saturating_add(1);
        self.open += 1;
        // Below MAX_DESCRIPTORS, so it fits.
        self.lowest_hole = index as u32 + 1;
        Ok(Descriptor(index as u32 + 1))
    }

    /// Makes sure `count` more references can be installed without
    /// allocating (OUT_OF_MEMORY when the heap cannot grow), so a transfer
    /// checked beforehand cannot fail halfway.
    pub fn reserve(&mut self, count: usize) -> Result<(), Error> {
        // Free entries below the end are reused first.
        let holes = self.entries.len() - self.open as usize;
        self.entries
            .try_reserve(count.saturating_sub(holes))
            .map_err(|_| Error::OutOfMemory)
    }

    /// Whether `count` installs fit without allocating (reused holes or
    /// spare capacity): the fast path takes no heap.
    pub fn has_room_reserved(&self, count: usize) -> bool {
        self.entries.capacity() - self.open as usize >= count
    }

    /// Gives back the spare capacity (the allocation-failure tests).
    #[cfg(test)]
    pub(crate) fn release_spare_entries(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// The reference behind `descriptor` (`BAD_DESCRIPTOR` if not open).
    pub fn get(&self, descriptor: Descriptor) -> Result<&Reference, Error> {
        Self::slot(descriptor)
            .and_then(|i| self.entries.get(i))
            .and_then(Option::as_ref)
            .map(|e| &e.reference)
            .ok_or(Error::BadDescriptor)
    }

    /// The reference behind `descriptor` and the generation of its
    /// installation (for [`DescriptorTable::set_cookie`] later), in one
    /// lookup.
    pub fn get_with_generation(&self, descriptor: Descriptor) -> Result<(Reference, u64), Error> {
        Self::slot(descriptor)
            .and_then(|i| self.entries.get(i))
            .and_then(Option::as_ref)
            .map(|e| (e.reference, e.generation))
            .ok_or(Error::BadDescriptor)
    }

    /// Sets the cookie of the reference at `descriptor` if it is still the
    /// installation `generation` of a reference to `object`; returns whether
    /// it was.
    pub fn set_cookie(
        &mut self,
        descriptor: Descriptor,
        generation: u64,
        object: ObjectId,
        cookie: u64,
    ) -> bool {
        match Self::slot(descriptor)
            .and_then(|i| self.entries.get_mut(i))
            .and_then(Option::as_mut)
        {
            Some(entry) if entry.generation == generation && entry.reference.object == object => {
                entry.reference.cookie = cookie;
                true
            }
            _ => false,
        }
    }

    /// Removes and returns the reference at `descriptor`.
    pub fn remove(&mut self, descriptor: Descriptor) -> Result<Reference, Error> {
        let index = Self::slot(descriptor).ok_or(Error::BadDescriptor)?;
        let entry = self
            .entries
            .get_mut(index)
            .and_then(Option::take)
            .ok_or(Error::BadDescriptor)?;
        self.open -= 1;
        // A slot index, below MAX_DESCRIPTORS.
        self.lowest_hole = self.lowest_hole.min(index as u32);
        while self.entries.last().is_some_and(Option::is_none) {
            self.entries.pop();
        }
        Ok(entry.reference)
    }

    /// Removes every reference (process exit), without allocating: the
    /// table's own storage is handed over.
    pub fn drain(&mut self) -> impl Iterator<Item = Reference> + use<> {
        self.open = 0;
        self.lowest_hole = 0;
        core::mem::take(&mut self.entries)
            .into_iter()
            .flatten()
            .map(|e| e.reference)
    }

    /// The descriptors numbers that the next `count` installations will take.
    pub fn next_free(&self, count: usize) -> impl Iterator<Item = Descriptor> + '_ {
        let holes = self
            .entries
            .iter()
            .enumerate()
            .skip(self.lowest_hole as usize)
            .filter(|(_, e)| e.is_none())
            .map(|(i, _)| i);
        holes
            .chain(self.entries.len()..MAX_DESCRIPTORS as usize)
            .take(count)
            .map(|i| Descriptor(i as u32 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::object::Object;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn object() -> ObjectId {
        let mut arena: Arena<Object> = Arena::new();
        arena
            .insert(Object::dummy())
            .expect("a test arena has room")
    }

    /// An object other than [`object`]'s.
    fn other_object() -> ObjectId {
        let mut arena: Arena<Object> = Arena::new();
        let _first = arena.insert(Object::dummy());
        arena
            .insert(Object::dummy())
            .expect("a test arena has room")
    }

    fn reference(rights: u32) -> Reference {
        Reference {
            object: object(),
            rights: Rights(rights),
            cookie: 0,
        }
    }

    #[test]
    fn lowest_free_number_is_reused_and_zero_is_never_used() {
        let mut table = DescriptorTable::new();
        let a = table.install(reference(1)).unwrap_or_default();
        let b = table.install(reference(2)).unwrap_or_default();
        assert_eq!((a, b), (Descriptor(1), Descriptor(2)));
        assert!(table.remove(a).is_ok());
        assert_eq!(
            table.next_free(2).collect::<Vec<_>>(),
            vec![Descriptor(1), Descriptor(3)]
        );
        assert_eq!(table.install(reference(3)), Ok(Descriptor(1)));
        assert_eq!(table.get(Descriptor::NULL), Err(Error::BadDescriptor));
        assert_eq!(
            table.get(Descriptor(MAX_DESCRIPTORS + 1)),
            Err(Error::BadDescriptor)
        );
        assert_eq!(table.remove(Descriptor(9)), Err(Error::BadDescriptor));
    }

    #[test]
    fn table_full_at_the_limit() {
        let mut table = DescriptorTable::new();
        for i in 1..=MAX_DESCRIPTORS {
            assert_eq!(table.install(reference(0)), Ok(Descriptor(i)));
        }
        assert_eq!(table.room(), 0);
        assert_eq!(table.install(reference(0)), Err(Error::TableFull));
        assert_eq!(table.next_free(1).count(), 0);
    }

    #[test]
    fn cookies_land_only_on_the_same_installation() {
        let mut table = DescriptorTable::new();
        let d = table.install(reference(1)).unwrap_or_default();
        let generation = table.get_with_generation(d).map_or(u64::MAX, |(_, g)| g);
        assert!(table.set_cookie(d, generation, object(), 42));
        assert_eq!(table.get(d).map(|r| r.cookie), Ok(42));
        assert!(table.remove(d).is_ok());
        let again = table.install(reference(1)).unwrap_or_default();
        assert_eq!(again, d);
        assert!(
            !table.set_cookie(d, generation, object(), 7),
            "a reused number is a new reference"
        );
        assert_eq!(table.get(d).map(|r| r.cookie), Ok(0));
    }

    /// Issue 15, finding 1: with 32-bit generations, 2^32 installations
    /// later the same number and generation came back, and a late reply's
    /// cookie landed on a reference to another door.
    #[test]
    fn generations_do_not_repeat_past_32_bits() {
        let mut table = DescriptorTable::new();
        table.next_generation = u64::from(u32::MAX);
        let d = table.install(reference(1)).unwrap_or_default();
        let generation = table.get_with_generation(d).map_or(0, |(_, g)| g);
        assert!(table.remove(d).is_ok());
        // As if 2^32 installations happened in between.
        table.next_generation = generation + (1 << 32);
        let again = table.install(reference(2)).unwrap_or_default();
        assert_eq!(again, d);
        let later = table.get_with_generation(again).map_or(0, |(_, g)| g);
        assert_eq!(later as u32, generation as u32, "32 bits would repeat");
        assert_ne!(later, generation, "a generation names one installation");
        assert!(!table.set_cookie(d, generation, object(), 7));
        assert_eq!(table.get(d).map(|r| r.cookie), Ok(0));
    }

    /// A cookie lands only on a reference to the object it was meant for,
    /// even with a matching generation.
    #[test]
    fn cookies_land_only_on_a_reference_to_the_same_object() {
        let mut table = DescriptorTable::new();
        let d = table.install(reference(1)).unwrap_or_default();
        let generation = table.get_with_generation(d).map_or(0, |(_, g)| g);
        assert!(!table.set_cookie(d, generation, other_object(), 7));
        assert!(table.set_cookie(d, generation, object(), 8));
        assert_eq!(table.get(d).map(|r| r.cookie), Ok(8));
    }

    proptest! {
        /// Against a model map: install/remove agree on numbers, counts and contents.
        #[test]
        fn table_matches_model(ops in prop::collection::vec((any::<bool>(), 0u32..40), 0..300)) {
            let mut table = DescriptorTable::new();
            let mut model: BTreeMap<u32, u32> = BTreeMap::new();
            for (install, n) in ops {
                if install {
                    let expected = (1..).find(|i| !model.contains_key(i)).unwrap_or(0);
                    let predicted = table.next_free(1).next();
                    let d = table.install(reference(n % 64));
                    prop_assert_eq!(d, Ok(Descriptor(expected)));
                    prop_assert_eq!(predicted, Some(Descriptor(expected)));
                    model.insert(expected, n % 64);
                } else {
                    let result = table.remove(Descriptor(n));
                    match model.remove(&n) {
                        Some(rights) => prop_assert_eq!(result.map(|r| r.rights), Ok(Rights(rights))),
                        None => prop_assert_eq!(result, Err(Error::BadDescriptor)),
                    }
                }
                prop_assert_eq!(table.open(), model.len());
                let free: Vec<Descriptor> = (1..).filter(|i| !model.contains_key(i)).take(3).map(Descriptor).collect();
                prop_assert_eq!(table.next_free(3).collect::<Vec<_>>(), free);
                for (d, rights) in &model {
                    prop_assert_eq!(table.get(Descriptor(*d)).map(|r| r.rights), Ok(Rights(*rights)));
                }
            }
        }
    }
}
