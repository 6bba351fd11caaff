//! Connections in a generational slab: slots are reused, keys are not.

use super::token::{Key, GENERATION_MASK};

struct Slot<T> {
    generation: u32,
    entry: Option<T>,
}

pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key the next `insert` will return (connections register their sockets with it
    /// before they are stored).
    pub fn next_key(&self) -> Key {
        match self.free.last() {
            Some(&slot) => Key {
                slot,
                generation: self.slots[slot as usize].generation,
            },
            None => Key {
                slot: self.slots.len() as u32,
                generation: 0,
            },
        }
    }

    pub fn insert(&mut self, value: T) -> Key {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let cell = &mut self.slots[slot as usize];
        cell.entry = Some(value);
        self.len += 1;
        Key {
            slot,
            generation: cell.generation,
        }
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        let cell = self.slots.get_mut(key.slot as usize)?;
        if cell.generation != key.generation {
            return None;
        }
        cell.entry.as_mut()
    }

    /// Takes the value out; the slot's generation moves on so old keys no longer match.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        let cell = self.slots.get_mut(key.slot as usize)?;
        if cell.generation != key.generation {
            return None;
        }
        let value = cell.entry.take()?;
        cell.generation = cell.generation.wrapping_add(1) & GENERATION_MASK;
        self.free.push(key.slot);
        self.len -= 1;
        Some(value)
    }

    pub fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, cell)| cell.entry.is_some())
            .map(|(slot, cell)| Key {
                slot: slot as u32,
                generation: cell.generation,
            })
            .collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|cell| cell.entry.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_the_old_key() {
        let mut slab = Slab::new();
        let first = slab.insert("first");
        assert_eq!(slab.remove(first), Some("first"));
        let expected = slab.next_key();
        let second = slab.insert("second");
        assert_eq!(second, expected);
        assert_eq!(second.slot, first.slot);
        assert_ne!(second.generation, first.generation);
        assert!(slab.get_mut(first).is_none());
        assert_eq!(slab.remove(first), None);
        assert_eq!(slab.get_mut(second).copied(), Some("second"));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.keys(), vec![second]);
    }
}
