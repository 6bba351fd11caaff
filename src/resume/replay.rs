//! A stream's replay buffer (SPEC §2.1): its latest events, bounded in bytes, from which a
//! client that comes back gets every event after the last one it saw. It keeps each event's
//! block as it came and writes its `id:` line again on the way out (the line is a function of
//! the stream and the number), so the bound counts the events' own bytes.
//!
//! While the client is there, the oldest events make room for new ones: they are kept only in
//! case the client's connection drops with some of them still in flight. From the moment the
//! client leaves ([`Replay::protect`]), the events produced after that point are what it will
//! miss: older events still make room, but once only those are left and the next event does
//! not fit, the buffer is full ([`Full`]) and the stream must be dropped. An event larger than
//! the whole budget is never held; the events before it can no longer be replayed either.
//!
//! Events are numbered as the stamper numbers them, from 1; the completion marker takes the
//! number after the last event's. After a gap (an event that was refused), nothing before it can
//! be replayed.

use std::collections::VecDeque;

use super::stamp::write_id;

/// The replay buffer cannot hold an event produced after the client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

pub struct Replay {
    /// The events held, oldest first, one after the other; `bytes[..start]` are evicted.
    bytes: Vec<u8>,
    start: usize,
    /// Each held event's length, oldest first, with [`DONE_BIT`] set for the completion marker.
    lens: VecDeque<u32>,
    /// The number of the oldest event held; the next event's number when none is.
    first: u64,
    /// The number the next event will have.
    next: u64,
    /// At most this many bytes of events are held.
    limit: usize,
    /// Events numbered from this one on may not be evicted: the client left before them.
    keep_from: Option<u64>,
}

/// Marks the completion marker's length in `lens`: no event is 2 GiB long.
const DONE_BIT: u32 = 1 << 31;

fn length(entry: u32) -> usize {
    (entry & !DONE_BIT) as usize
}

impl Replay {
    /// An empty buffer holding at most `limit` bytes of events.
    pub fn new(limit: usize) -> Replay {
        Replay {
            bytes: Vec::new(),
            start: 0,
            lens: VecDeque::new(),
            first: 1,
            next: 1,
            limit,
            keep_from: None,
        }
    }

    /// Adds event `number` (the next one; the completion marker when `done`) with its block,
    /// evicting older events to make room. `Full` when the events after the client left no
    /// longer fit: nothing was added.
    pub fn push(&mut self, number: u64, done: bool, event: &[u8]) -> Result<(), Full> {
        if number != self.next {
            // Events went missing (one that did not fit): none before this one can be replayed.
            self.clear_through(number.saturating_sub(1));
        }
        let protected = |replay: &Replay| replay.keep_from.is_some_and(|from| replay.first >= from);
        if event.len() > self.limit {
            if self.keep_from.is_some() {
                return Err(Full);
            }
            self.clear_through(number);
            return Ok(());
        }
        while self.len() + event.len() > self.limit {
            if protected(self) {
                return Err(Full);
            }
            self.evict_oldest();
        }
        self.append(event, done);
        self.next = number + 1;
        Ok(())
    }

    /// The client left: every event from the next one on must be kept until it comes back.
    pub fn protect(&mut self) {
        self.keep_from = Some(self.next);
    }

    /// A client is there again: events may make room for newer ones again.
    pub fn unprotect(&mut self) {
        self.keep_from = None;
    }

    /// How many events follow event `seen`; `None` when some of them are no longer held, or
    /// when `seen` is an event that never was.
    pub fn count_after(&self, seen: u64) -> Option<u32> {
        let skip = self.skip_for(seen)?;
        Some(u32::try_from(self.lens.len() - skip).unwrap_or(u32::MAX))
    }

    /// Appends every event after event `seen` to `out`, each with its `id:` line (`prefix` is
    /// the stream's); returns how many, or `None` as [`Replay::count_after`].
    pub fn write_after(&self, seen: u64, prefix: &[u8; 37], out: &mut Vec<u8>) -> Option<u32> {
        let skip = self.skip_for(seen)?;
        let mut at = self.start
            + self
                .lens
                .iter()
                .take(skip)
                .map(|&entry| length(entry))
                .sum::<usize>();
        let mut number = seen;
        for &entry in self.lens.iter().skip(skip) {
            number += 1;
            let len = length(entry);
            write_id(out, prefix, number, entry & DONE_BIT != 0);
            out.extend_from_slice(&self.bytes[at..at + len]);
            at += len;
        }
        Some(u32::try_from(self.lens.len() - skip).unwrap_or(u32::MAX))
    }

    /// How many held events come before event `seen + 1`.
    fn skip_for(&self, seen: u64) -> Option<usize> {
        if seen >= self.next || seen.saturating_add(1) < self.first {
            return None;
        }
        usize::try_from(seen + 1 - self.first).ok()
    }

    /// The number of the last event held or evicted (0 before the first).
    pub fn last(&self) -> u64 {
        self.next - 1
    }

    /// Bytes of events held.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated, for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.bytes.capacity() + self.lens.capacity() * std::mem::size_of::<u32>()
    }

    /// Frees what the held events do not use: nothing more will be added.
    pub fn shrink(&mut self) {
        self.compact();
        self.bytes.shrink_to_fit();
        self.lens.shrink_to_fit();
    }

    fn evict_oldest(&mut self) {
        if let Some(entry) = self.lens.pop_front() {
            self.start += length(entry);
            self.first += 1;
        }
        if self.lens.is_empty() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    /// Drops every event up to `number` included: they can no longer be replayed.
    fn clear_through(&mut self, number: u64) {
        self.bytes.clear();
        self.start = 0;
        self.lens.clear();
        self.first = number + 1;
        self.next = number + 1;
    }

    fn append(&mut self, event: &[u8], done: bool) {
        let needed = self.len() + event.len();
        if self.bytes.len() + event.len() > self.bytes.capacity() {
            self.compact();
            // Grow by half rather than double, and never past the limit: the buffer is paid
            // per stream.
            let capacity = self.bytes.capacity();
            let wanted = needed
                .max(capacity + capacity / 2)
                .min(self.limit.max(needed));
            self.bytes.reserve_exact(wanted - self.bytes.len());
        }
        self.bytes.extend_from_slice(event);
        // An event is at most `limit` bytes, and a limit is far below 2 GiB.
        let len = u32::try_from(event.len()).unwrap_or(u32::MAX) & !DONE_BIT;
        self.lens.push_back(if done { len | DONE_BIT } else { len });
    }

    /// Moves the held events to the front.
    fn compact(&mut self) {
        if self.start > 0 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resume::stamp::id_prefix;
    use crate::resume::StreamId;

    const PREFIX: [u8; 37] = *b"id: 00000000000000000000000000000000-";

    fn event(n: u64, size: usize) -> Vec<u8> {
        let mut e = format!("data: {n} ").into_bytes();
        e.resize(size - 2, b'x');
        e.extend_from_slice(b"\n\n");
        e
    }

    fn filled(limit: usize, events: u64, size: usize) -> Replay {
        let mut replay = Replay::new(limit);
        for n in 1..=events {
            replay.push(n, false, &event(n, size)).unwrap();
        }
        replay
    }

    /// What a replay after `seen` writes: `id:` lines and blocks.
    fn tail(replay: &Replay, seen: u64) -> Option<(u32, String)> {
        let mut out = Vec::new();
        let events = replay.write_after(seen, &PREFIX, &mut out)?;
        assert_eq!(replay.count_after(seen), Some(events));
        Some((events, String::from_utf8(out).unwrap()))
    }

    fn stamped(numbers: impl IntoIterator<Item = u64>, size: usize) -> String {
        numbers
            .into_iter()
            .map(|n| {
                let mut out = Vec::new();
                write_id(&mut out, &PREFIX, n, false);
                out.extend_from_slice(&event(n, size));
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    #[test]
    fn every_event_after_the_one_seen_comes_back_in_order_with_its_id() {
        let mut replay = filled(1000, 5, 20);
        assert_eq!(tail(&replay, 2), Some((3, stamped(3..=5, 20))));
        assert_eq!(tail(&replay, 5), Some((0, String::new())));
        assert_eq!(tail(&replay, 0).unwrap().0, 5);
        assert_eq!(replay.last(), 5);
        replay.push(6, true, b"data: [DONE]\n\n").unwrap();
        let zeros = "0".repeat(32);
        assert_eq!(
            tail(&replay, 5),
            Some((1, format!("id: {zeros}-done\ndata: [DONE]\n\n")))
        );
        assert_eq!(id_prefix(StreamId::from_bytes([0; 16])), PREFIX);
    }

    #[test]
    fn an_event_that_never_was_has_no_tail() {
        let replay = filled(1000, 5, 20);
        assert_eq!(tail(&replay, 6), None);
        assert_eq!(tail(&replay, u64::MAX), None);
        assert_eq!(tail(&Replay::new(10), 1), None);
        assert_eq!(tail(&Replay::new(10), 0), Some((0, String::new())));
    }

    #[test]
    fn while_attached_the_oldest_events_make_room() {
        // 100 bytes hold five 20-byte events: the sixth evicts the first.
        let mut replay = filled(100, 6, 20);
        assert_eq!(replay.len(), 100);
        assert_eq!(tail(&replay, 0), None, "event 1 is gone");
        assert_eq!(tail(&replay, 1).unwrap().0, 5);
        for n in 7..=50 {
            replay.push(n, false, &event(n, 20)).unwrap();
        }
        assert_eq!(tail(&replay, 45), Some((5, stamped(46..=50, 20))));
        assert!(
            replay.held_bytes() <= 100 + 64 * 4 + 16,
            "{}",
            replay.held_bytes()
        );
    }

    #[test]
    fn after_the_client_left_older_events_make_room_then_it_is_full() {
        let mut replay = filled(100, 4, 20);
        replay.protect();
        // Event 5 fits; 6 and 7 evict 1 and 2; 8, 9 evict 3, 4.
        for n in 5..=9 {
            replay.push(n, false, &event(n, 20)).unwrap();
        }
        assert_eq!(tail(&replay, 4).unwrap().0, 5);
        assert_eq!(replay.push(10, false, &event(10, 20)), Err(Full));
        // Nothing was added: the tail is unchanged.
        assert_eq!(tail(&replay, 4).unwrap().0, 5);
        replay.unprotect();
        replay.push(10, false, &event(10, 20)).unwrap();
        assert_eq!(tail(&replay, 5).unwrap().0, 5);
    }

    #[test]
    fn an_event_over_the_limit_is_not_held() {
        let mut replay = filled(100, 3, 20);
        replay.push(4, false, &event(4, 150)).unwrap();
        assert!(replay.is_empty());
        assert_eq!(tail(&replay, 3), None, "event 4 cannot be replayed");
        assert_eq!(tail(&replay, 4).unwrap().0, 0);
        replay.push(5, false, &event(5, 20)).unwrap();
        assert_eq!(tail(&replay, 4).unwrap().0, 1);
        replay.protect();
        assert_eq!(replay.push(6, false, &event(6, 101)), Err(Full));
    }

    #[test]
    fn after_a_gap_nothing_before_it_is_replayed() {
        let mut replay = filled(1000, 3, 20);
        replay.push(6, false, &event(6, 20)).unwrap();
        assert_eq!(tail(&replay, 3), None);
        assert_eq!(tail(&replay, 5), Some((1, stamped([6], 20))));
        assert_eq!(replay.last(), 6);
    }

    #[test]
    fn shrinking_keeps_the_events() {
        let mut replay = filled(1000, 40, 20);
        for _ in 0..30 {
            replay.evict_oldest();
        }
        replay.shrink();
        assert!(replay.held_bytes() < 300, "{}", replay.held_bytes());
        assert_eq!(tail(&replay, 30), Some((10, stamped(31..=40, 20))));
    }
}
