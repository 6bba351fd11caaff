//! A stream's replay buffer (SPEC §2.1): its latest stamped events, bounded in bytes, from
//! which a client that comes back gets every event after the last one it saw.
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

/// The replay buffer cannot hold an event produced after the client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

pub struct Replay {
    /// The events held, oldest first, one after the other; `bytes[..start]` are evicted.
    bytes: Vec<u8>,
    start: usize,
    /// Each held event's length, oldest first.
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

/// The events after a given one, ready to be written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail<'a> {
    pub bytes: &'a [u8],
    pub events: u32,
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

    /// Adds event `number` (the next one) with its stamped bytes, evicting older events to make
    /// room. `Full` when the events after the client left no longer fit: nothing was added.
    pub fn push(&mut self, number: u64, event: &[u8]) -> Result<(), Full> {
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
        self.append(event);
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

    /// Every event after event `seen`; `None` when some of them are no longer held, or when
    /// `seen` is an event that never was.
    pub fn after(&self, seen: u64) -> Option<Tail<'_>> {
        if seen >= self.next || seen.saturating_add(1) < self.first {
            return None;
        }
        let skip = usize::try_from(seen + 1 - self.first).ok()?;
        let skipped: usize = self.lens.iter().take(skip).map(|&len| len as usize).sum();
        let events = u32::try_from(self.lens.len() - skip).unwrap_or(u32::MAX);
        Some(Tail {
            bytes: &self.bytes[self.start + skipped..],
            events,
        })
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
        if let Some(len) = self.lens.pop_front() {
            self.start += len as usize;
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

    fn append(&mut self, event: &[u8]) {
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
        // An event is at most `limit` bytes, and a limit is far below 4 GiB.
        self.lens
            .push_back(u32::try_from(event.len()).unwrap_or(u32::MAX));
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

    fn event(n: u64, size: usize) -> Vec<u8> {
        let mut e = format!("id: s-{n}\ndata: ").into_bytes();
        e.resize(size - 2, b'x');
        e.extend_from_slice(b"\n\n");
        e
    }

    fn filled(limit: usize, events: u64, size: usize) -> Replay {
        let mut replay = Replay::new(limit);
        for n in 1..=events {
            replay.push(n, &event(n, size)).unwrap();
        }
        replay
    }

    #[test]
    fn every_event_after_the_one_seen_comes_back_in_order() {
        let replay = filled(1000, 5, 20);
        let tail = replay.after(2).unwrap();
        assert_eq!(tail.events, 3);
        assert_eq!(
            tail.bytes,
            [event(3, 20), event(4, 20), event(5, 20)].concat()
        );
        assert_eq!(
            replay.after(5).unwrap(),
            Tail {
                bytes: &[],
                events: 0
            }
        );
        assert_eq!(replay.after(0).unwrap().events, 5);
        assert_eq!(replay.last(), 5);
    }

    #[test]
    fn an_event_that_never_was_has_no_tail() {
        let replay = filled(1000, 5, 20);
        assert_eq!(replay.after(6), None);
        assert_eq!(replay.after(u64::MAX), None);
        assert_eq!(Replay::new(10).after(1), None);
        assert_eq!(Replay::new(10).after(0).unwrap().events, 0);
    }

    #[test]
    fn while_attached_the_oldest_events_make_room() {
        // 100 bytes hold five 20-byte events: the sixth evicts the first.
        let mut replay = filled(100, 6, 20);
        assert_eq!(replay.len(), 100);
        assert_eq!(replay.after(0), None, "event 1 is gone");
        assert_eq!(replay.after(1).unwrap().events, 5);
        for n in 7..=50 {
            replay.push(n, &event(n, 20)).unwrap();
        }
        assert_eq!(
            replay.after(45).unwrap().bytes,
            [46, 47, 48, 49, 50].map(|n| event(n, 20)).concat()
        );
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
            replay.push(n, &event(n, 20)).unwrap();
        }
        assert_eq!(replay.after(4).unwrap().events, 5);
        assert_eq!(replay.push(10, &event(10, 20)), Err(Full));
        // Nothing was added: the tail is unchanged.
        assert_eq!(replay.after(4).unwrap().events, 5);
        replay.unprotect();
        replay.push(10, &event(10, 20)).unwrap();
        assert_eq!(replay.after(5).unwrap().events, 5);
    }

    #[test]
    fn an_event_over_the_limit_is_not_held() {
        let mut replay = filled(100, 3, 20);
        replay.push(4, &event(4, 150)).unwrap();
        assert!(replay.is_empty());
        assert_eq!(replay.after(3), None, "event 4 cannot be replayed");
        assert_eq!(replay.after(4).unwrap().events, 0);
        replay.push(5, &event(5, 20)).unwrap();
        assert_eq!(replay.after(4).unwrap().events, 1);
        replay.protect();
        assert_eq!(replay.push(6, &event(6, 101)), Err(Full));
    }

    #[test]
    fn after_a_gap_nothing_before_it_is_replayed() {
        let mut replay = filled(1000, 3, 20);
        replay.push(6, &event(6, 20)).unwrap();
        assert_eq!(replay.after(3), None);
        assert_eq!(replay.after(5).unwrap().events, 1);
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
        assert_eq!(
            replay.after(30).unwrap().bytes,
            (31..=40).map(|n| event(n, 20)).collect::<Vec<_>>().concat()
        );
    }
}
