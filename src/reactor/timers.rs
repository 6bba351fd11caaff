//! Connection deadlines: a min-heap with lazy invalidation.
//!
//! Each connection has at most one deadline that matters, kept in the connection; the heap only
//! says when to look. An entry whose connection is gone or whose deadline moved is skipped when
//! it comes up. A connection is pushed again only when its deadline moves earlier than the
//! entry it already has, so the heap stays near one entry per connection; `compact` rebuilds it
//! if stale entries ever pile up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::token::Key;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    slot: u32,
    generation: u32,
}

pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    pub fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn push(&mut self, key: Key, at: Instant) {
        self.heap.push(Reverse(Entry {
            at,
            slot: key.slot,
            generation: key.generation,
        }));
    }

    pub fn earliest(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.at)
    }

    /// The next entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Key, Instant)> {
        let Reverse(entry) = self.heap.peek()?;
        if entry.at > now {
            return None;
        }
        let Reverse(entry) = self.heap.pop()?;
        Some((
            Key {
                slot: entry.slot,
                generation: entry.generation,
            },
            entry.at,
        ))
    }

    /// Replaces every entry with the given live deadlines.
    pub fn compact(&mut self, live: impl Iterator<Item = (Key, Instant)>) {
        self.heap = live
            .map(|(key, at)| {
                Reverse(Entry {
                    at,
                    slot: key.slot,
                    generation: key.generation,
                })
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_out_in_time_order_when_due() {
        let start = Instant::now();
        let mut timers = Timers::new();
        let a = Key {
            slot: 1,
            generation: 0,
        };
        let b = Key {
            slot: 2,
            generation: 0,
        };
        timers.push(a, start + Duration::from_millis(20));
        timers.push(b, start + Duration::from_millis(10));
        assert_eq!(timers.earliest(), Some(start + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(start), None);
        let later = start + Duration::from_millis(25);
        assert_eq!(timers.pop_due(later).map(|(k, _)| k), Some(b));
        assert_eq!(timers.pop_due(later).map(|(k, _)| k), Some(a));
        assert_eq!(timers.pop_due(later), None);
    }
}
