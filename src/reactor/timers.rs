//! Connection deadlines: a min-heap with lazy invalidation.
//!
//! Each connection has at most one deadline that matters, kept in the connection; the heap only
//! says when to look. An entry whose connection is gone or whose deadline moved is skipped when
//! it comes up. A connection is pushed again only when its deadline moves earlier than the
//! entry it already has, so the heap stays near one entry per connection; `compact` rebuilds it
//! if stale entries ever pile up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::token::Key;

/// Times are kept as nanoseconds since the heap was made: one integer comparison per step of
/// the heap, and 16 bytes an entry instead of 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: u64,
    slot: u32,
    generation: u32,
}

pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    epoch: Instant,
}

impl Timers {
    /// Deadlines before `epoch` are due at once.
    pub fn new(epoch: Instant) -> Self {
        Timers {
            heap: BinaryHeap::new(),
            epoch,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn push(&mut self, key: Key, at: Instant) {
        let entry = self.entry(key, at);
        self.heap.push(Reverse(entry));
    }

    pub fn earliest(&self) -> Option<Instant> {
        self.heap
            .peek()
            .map(|Reverse(entry)| self.instant(entry.at))
    }

    /// The next entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Key, Instant)> {
        let Reverse(entry) = self.heap.peek()?;
        if entry.at > self.nanos(now) {
            return None;
        }
        let Reverse(entry) = self.heap.pop()?;
        let key = Key {
            slot: entry.slot,
            generation: entry.generation,
        };
        Some((key, self.instant(entry.at)))
    }

    /// Replaces every entry with the given live deadlines.
    pub fn compact(&mut self, live: impl Iterator<Item = (Key, Instant)>) {
        let entries: Vec<_> = live.map(|(key, at)| Reverse(self.entry(key, at))).collect();
        self.heap = BinaryHeap::from(entries);
    }

    fn entry(&self, key: Key, at: Instant) -> Entry {
        Entry {
            at: self.nanos(at),
            slot: key.slot,
            generation: key.generation,
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        // A deadline before the epoch is due at once; one past 584 years is never.
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_in_time_order_when_due() {
        let start = Instant::now();
        let mut timers = Timers::new(start);
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
