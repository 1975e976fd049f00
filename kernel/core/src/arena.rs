//! A generational arena: kernel objects, threads and processes live in
//! slots addressed by (index, generation), so a stale id held anywhere
//! (a queue, a blocked thread's state) can never reach a newer tenant of
//! the same slot.

use abi::Error;
use alloc::vec::Vec;
use core::marker::PhantomData;

/// A typed id into an [`Arena`].
pub struct Id<T> {
    index: u32,
    generation: u32,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// The slot index (stable while the entry lives).
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The raw id as one number, for the arch layer's own tables and logs.
    pub const fn to_raw(self) -> u64 {
        (self.generation as u64) << 32 | self.index as u64
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.generation == other.generation
    }
}
impl<T> Eq for Id<T> {}
impl<T> core::hash::Hash for Id<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.to_raw().hash(state)
    }
}
impl<T> core::fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots of `T`, reused after removal with a bumped generation.
pub struct Arena<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> core::fmt::Debug for Arena<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Arena({} live)", self.len)
    }
}

#[cfg(test)]
impl<T: core::fmt::Debug> Arena<T> {
    /// Gives back the slots' spare capacity, so the next insert without a
    /// free slot must allocate (the allocation-failure tests).
    pub(crate) fn release_spare_slots(&mut self) {
        self.slots.shrink_to_fit();
    }

    /// Every slot (its generation and value) and the free list, in order:
    /// what a refused operation must leave exactly as it was (host tests).
    pub(crate) fn describe(&self) -> alloc::string::String {
        use core::fmt::Write;
        let mut text = alloc::string::String::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let _ = writeln!(
                text,
                "  [{index}] gen {}: {:#?}",
                slot.generation, slot.value
            );
        }
        let _ = writeln!(text, "  free {:?}, {} live", self.free, self.len);
        text
    }
}

impl<T> Arena<T> {
    /// An empty arena.
    pub const fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` and returns its id; OUT_OF_MEMORY when the kernel
    /// heap cannot grow (then nothing changes). Room for the slot's later
    /// removal is reserved here too, so [`Arena::remove`] never allocates.
    pub fn insert(&mut self, value: T) -> Result<Id<T>, Error> {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            self.len += 1;
            return Ok(Id {
                index,
                generation: slot.generation,
                _marker: PhantomData,
            });
        }
        let index = u32::try_from(self.slots.len()).map_err(|_| Error::OutOfMemory)?;
        self.slots.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        let needed = self.slots.len() + 1 - self.free.len();
        self.free
            .try_reserve(needed)
            .map_err(|_| Error::OutOfMemory)?;
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        self.len += 1;
        Ok(Id {
            index,
            generation: 0,
            _marker: PhantomData,
        })
    }

    /// Makes sure the next `count` inserts cannot fail for want of heap
    /// (OUT_OF_MEMORY now otherwise, with nothing changed), so an operation
    /// can take its heap before it takes anything else.
    pub fn reserve(&mut self, count: usize) -> Result<(), Error> {
        let new_slots = count.saturating_sub(self.free.len());
        self.slots
            .try_reserve(new_slots)
            .map_err(|_| Error::OutOfMemory)?;
        // Room in the free list for every slot's removal (see `insert`).
        let needed = (self.slots.len() + new_slots).saturating_sub(self.free.len());
        self.free
            .try_reserve(needed)
            .map_err(|_| Error::OutOfMemory)
    }

    /// Removes the entry, if `id` is still live.
    pub fn remove(&mut self, id: Id<T>) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation || slot.value.is_none() {
            return None;
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        slot.value.take()
    }

    /// The entry, if `id` is still live.
    pub fn get(&self, id: Id<T>) -> Option<&T> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation == id.generation {
            slot.value.as_ref()
        } else {
            None
        }
    }

    /// The entry, if `id` is still live.
    pub fn get_mut(&mut self, id: Id<T>) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation == id.generation {
            slot.value.as_mut()
        } else {
            None
        }
    }

    /// Two different live entries at once, mutably (the IPC fast path's
    /// two threads); None if either is not live or they are the same.
    pub fn get_pair_mut(&mut self, a: Id<T>, b: Id<T>) -> Option<(&mut T, &mut T)> {
        let [first, second] = self
            .slots
            .get_disjoint_mut([a.index as usize, b.index as usize])
            .ok()?;
        if first.generation != a.generation || second.generation != b.generation {
            return None;
        }
        Some((first.value.as_mut()?, second.value.as_mut()?))
    }

    /// Whether `id` is live.
    pub fn contains(&self, id: Id<T>) -> bool {
        self.get(id).is_some()
    }

    /// Number of live entries.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is live.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the highest slot index ever used: [`Arena::id_at`] of every
    /// index below it visits every live entry, without borrowing the arena
    /// across the walk (so the walker may change entries as it goes).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The id of the live entry in slot `index`, if there is one.
    pub fn id_at(&self, index: usize) -> Option<Id<T>> {
        let slot = self.slots.get(index)?;
        slot.value.as_ref()?;
        Some(Id {
            index: index as u32,
            generation: slot.generation,
            _marker: PhantomData,
        })
    }

    /// Ids of every live entry.
    pub fn ids(&self) -> impl Iterator<Item = Id<T>> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| Id {
                index: i as u32,
                generation: s.generation,
                _marker: PhantomData,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_never_reach_new_tenants() {
        let mut arena = Arena::new();
        let a = arena.insert("a").expect("a test arena has room");
        assert_eq!(arena.remove(a), Some("a"));
        let b = arena.insert("b").expect("a test arena has room");
        assert_eq!(a.index(), b.index());
        assert_eq!(arena.get(a), None);
        assert_eq!(arena.remove(a), None);
        assert_eq!(arena.get(b), Some(&"b"));
        assert_eq!(arena.len(), 1);
        assert_eq!(arena.ids().collect::<Vec<_>>(), vec![b]);
    }

    #[test]
    fn pairs_are_two_live_entries_in_the_order_asked() {
        let mut arena = Arena::new();
        let ids: Vec<_> = (0..4)
            .map(|n| arena.insert(n).expect("a test arena has room"))
            .collect();
        let gone = ids[3];
        assert_eq!(arena.remove(gone), Some(3));
        for &a in &ids[..3] {
            for &b in &ids[..3] {
                let pair = arena.get_pair_mut(a, b).map(|(x, y)| (*x, *y));
                if a == b {
                    assert_eq!(pair, None, "the same entry twice");
                } else {
                    assert_eq!(pair, Some((a.index() as i32, b.index() as i32)));
                }
            }
            assert_eq!(arena.get_pair_mut(a, gone).map(|_| ()), None);
            assert_eq!(arena.get_pair_mut(gone, a).map(|_| ()), None);
        }
        // A new tenant of the freed slot is not the stale id.
        let new = arena.insert(9).expect("a test arena has room");
        assert_eq!(arena.get_pair_mut(ids[0], gone).map(|_| ()), None);
        let (x, y) = arena.get_pair_mut(new, ids[0]).expect("both live");
        *x += 1;
        *y += 1;
        assert_eq!(arena.get(new), Some(&10));
        assert_eq!(arena.get(ids[0]), Some(&1));
    }

    #[test]
    fn removal_never_needs_to_allocate() {
        let mut arena = Arena::new();
        let ids: Vec<_> = (0..100)
            .map(|n| arena.insert(n).expect("a test arena has room"))
            .collect();
        // Room for every slot's index in the free list was reserved on insert.
        assert!(arena.free.capacity() >= arena.slots.len());
        let capacity = arena.free.capacity();
        for id in ids {
            assert!(arena.remove(id).is_some());
        }
        assert_eq!(arena.free.capacity(), capacity);
        assert_eq!(arena.len(), 0);
    }
}
