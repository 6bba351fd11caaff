//! Resumable streams in the loop (SPEC §2.1, §6.5): this worker's streams by id, the streams
//! kept after they ended, and routing a `resume` handoff to the stream it names, wherever it
//! runs.
//!
//! | a `resume` handoff on this worker names        | what happens                                         |
//! |------------------------------------------------|------------------------------------------------------|
//! | a stream no worker has                          | 204 (`unknown`)                                      |
//! | a stream of this worker, running               | the stream decides: taken over, or refused with 204  |
//! | a stream of this worker, kept after it ended   | the handoff's connection replays it, or answers 204  |
//! | a stream of another worker                     | the client goes to that worker (its inbox and waker), which does the above; if it is gone, 204 here |
//!
//! The client that goes over leaves its connection `Moved`, closed without a count or a line:
//! the stream now speaks for its handoff (see `src/conn/resuming.rs` for the accounting).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Instant;

use crate::conn::{Ask, Connection, Kept, Step, Tokens};
use crate::deadline;
use crate::end::NotResumed;
use crate::resume::{Handover, StreamId};
use crate::stats::Shared;

use super::token::{self, Key, Side};
use super::{caught, Entry, Lifecycle, Occupant, Reactor};

/// This worker's resumable streams.
pub(super) struct Resumables {
    /// This worker's index in the daemon's directory.
    index: usize,
    /// Clients other workers pass on for streams of this one.
    inbox: Receiver<Handover>,
    streams: HashMap<StreamId, Held>,
    /// When each kept stream goes, earliest first (an entry whose stream is gone is skipped).
    expiries: BinaryHeap<Reverse<(Instant, StreamId)>>,
}

enum Held {
    /// Running in this slab entry.
    Live(Key),
    /// Ended with its client there; kept until the time given.
    Kept(Box<(Kept, Instant)>),
}

impl Resumables {
    /// Joins the daemon's directory: other workers reach this one through `waker`.
    pub(super) fn join(shared: &Shared, waker: Arc<mio::Waker>) -> Resumables {
        let (sender, inbox) = mpsc::channel::<Handover>();
        let index = shared.resume().join(Box::new(move |handover| {
            sender.send(handover).map_err(|refused| refused.0)?;
            let _ = waker.wake();
            Ok(())
        }));
        Resumables {
            index,
            inbox,
            streams: HashMap::new(),
            expiries: BinaryHeap::new(),
        }
    }

    /// When the next kept stream goes.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.peek().map(|Reverse((at, _))| *at)
    }
}

impl Reactor {
    /// A stream became resumable in entry `key`.
    pub(super) fn enter_stream(&mut self, key: Key, id: StreamId) {
        self.resumables.streams.insert(id, Held::Live(key));
        self.tally
            .shared()
            .resume()
            .insert(id, self.resumables.index);
    }

    /// The connection carrying stream `id` is closing: the stream is kept for its window, or
    /// forgotten.
    pub(super) fn stream_closed(&mut self, id: StreamId, conn: &mut Connection, now: Instant) {
        let serving = self.lifecycle == Lifecycle::Serving;
        match conn.keep_for_resume().filter(|_| serving) {
            Some((kept, window)) => {
                let expires = deadline::after(now, window);
                self.kept_bytes_changed(0, kept.held_bytes());
                self.resumables.expiries.push(Reverse((expires, id)));
                let held = Held::Kept(Box::new((kept, expires)));
                self.resumables.streams.insert(id, held);
            }
            None => self.forget_stream(&id),
        }
    }

    fn forget_stream(&mut self, id: &StreamId) {
        if let Some(Held::Kept(kept)) = self.resumables.streams.remove(id) {
            self.kept_bytes_changed(kept.0.held_bytes(), 0);
        }
        self.tally.shared().resume().remove(id);
    }

    /// Kept streams count in the memory budget like connection buffers.
    fn kept_bytes_changed(&mut self, before: usize, now: usize) {
        self.held_bytes = self.held_bytes + now - before;
        self.tally.shared().held_changed(before, now);
    }

    /// Drops the kept streams whose window is over.
    pub(super) fn expire_kept(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.resumables.expiries.peek().copied() {
            if at > now {
                return;
            }
            self.resumables.expiries.pop();
            let expired = matches!(
                self.resumables.streams.get(&id),
                Some(Held::Kept(kept)) if kept.1 == at
            );
            if expired {
                self.forget_stream(&id);
            }
        }
    }

    /// The daemon drains: no resume can come any more. Detached streams end, kept ones go.
    pub(super) fn drop_resumables(&mut self, now: Instant) {
        let ids: Vec<(StreamId, Option<Key>)> = self
            .resumables
            .streams
            .iter()
            .map(|(id, held)| match held {
                Held::Live(key) => (*id, Some(*key)),
                Held::Kept(_) => (*id, None),
            })
            .collect();
        for (id, key) in ids {
            match key {
                Some(key) => self.dispatch(key, now, |conn, ctx| conn.on_drain(ctx)),
                None => self.forget_stream(&id),
            }
        }
        self.resumables.expiries.clear();
    }

    /// A handoff in entry `key` asks to resume a stream: finds it, here or on another worker.
    pub(super) fn route_resume(&mut self, key: Key, now: Instant) {
        let Some(ask) = self.resume_ask(key) else {
            return;
        };
        let owner = self.tally.shared().resume().owner(&ask.stream);
        match owner {
            Some(worker) if worker == self.resumables.index => self.resume_here(key, ask, now),
            Some(worker) => self.resume_elsewhere(key, worker, now),
            None => self.not_resumed(key, NotResumed::Unknown, now),
        }
    }

    fn resume_ask(&mut self, key: Key) -> Option<Ask> {
        match &self.conns.get_mut(key)?.occupant {
            Occupant::Handoff(conn) => conn.resume_ask(),
            Occupant::Scrape(_) => None,
        }
    }

    fn not_resumed(&mut self, key: Key, why: NotResumed, now: Instant) {
        self.dispatch(key, now, |conn, ctx| conn.answer_not_resumed(why, ctx));
    }

    /// The stream is this worker's: running, kept, or gone meanwhile.
    fn resume_here(&mut self, key: Key, ask: Ask, now: Instant) {
        let stream_key = match self.resumables.streams.get(&ask.stream) {
            None => return self.not_resumed(key, NotResumed::Unknown, now),
            Some(Held::Kept(_)) => return self.resume_kept(key, ask.stream, now),
            Some(Held::Live(stream_key)) => *stream_key,
        };
        let running = stream_key != key
            && self
                .conns
                .get_mut(stream_key)
                .is_some_and(|entry| matches!(entry.occupant, Occupant::Handoff(_)));
        if !running {
            return self.not_resumed(key, NotResumed::Unknown, now);
        }
        let mut taken = None;
        self.dispatch(key, now, |conn, _| {
            taken = conn.take_resumer();
            Step::Continue
        });
        let Some(resumer) = taken else {
            return self.not_resumed(key, NotResumed::Unknown, now);
        };
        let mut refused = None;
        self.dispatch(stream_key, now, |stream, ctx| {
            match stream.resume(resumer, ctx) {
                Ok(step) => step,
                Err(back) => {
                    refused = Some(back);
                    Step::Continue
                }
            }
        });
        match refused {
            Some((resumer, why)) => {
                self.dispatch(key, now, |conn, ctx| conn.refused(resumer, why, ctx));
            }
            // The client went over: the handoff lives on in the stream.
            None => self.close(key, now),
        }
    }

    /// The stream ended and is kept: the handoff's own connection replays it.
    fn resume_kept(&mut self, key: Key, id: StreamId, now: Instant) {
        // Taken out while the connection reads it, and put back: other clients may come too.
        let Some(held) = self.resumables.streams.remove(&id) else {
            return self.not_resumed(key, NotResumed::Unknown, now);
        };
        if let Held::Kept(kept) = &held {
            self.dispatch(key, now, |conn, ctx| conn.resume_kept(&kept.0, id, ctx));
        }
        self.resumables.streams.insert(id, held);
    }

    /// The stream runs on another worker: the client goes there.
    fn resume_elsewhere(&mut self, key: Key, worker: usize, now: Instant) {
        let mut handover = None;
        self.dispatch(key, now, |conn, ctx| {
            handover = conn.hand_over(ctx.registry);
            Step::Continue
        });
        let Some(handover) = handover else {
            return self.not_resumed(key, NotResumed::Unknown, now);
        };
        match self.tally.shared().resume().send(worker, handover) {
            Ok(()) => {
                log::debug!(worker = worker; "resuming client passed to the stream's worker");
                self.close(key, now);
            }
            Err(handover) => {
                self.dispatch(key, now, |conn, ctx| conn.take_back(handover, ctx));
            }
        }
    }

    /// Clients other workers passed on for streams of this one.
    pub(super) fn take_handovers(&mut self, now: Instant) {
        while let Ok(handover) = self.resumables.inbox.try_recv() {
            if caught(|| self.take_handover(handover, now)).is_err() {
                self.panicked("taking a resuming client from another worker");
            }
        }
    }

    fn take_handover(&mut self, handover: Handover, now: Instant) {
        let key = self.conns.next_key();
        let tokens = Tokens {
            apache: token::connection_token(key, Side::Apache),
            client: token::connection_token(key, Side::Client),
            upstream: token::connection_token(key, Side::Upstream),
            child: token::connection_token(key, Side::Child),
        };
        let ask = (handover.stream, handover.seen, handover.user_id);
        let conn = Connection::handed_over(
            handover,
            tokens,
            self.poll.registry(),
            self.settings.clone(),
        );
        let key = self.conns.insert(Entry {
            occupant: Occupant::Handoff(conn),
            armed: None,
            held: 0,
        });
        // The worker it came from no longer counts it.
        self.tally.shared().connection_opened();
        let (stream, seen, user_id) = ask;
        self.resume_here(
            key,
            Ask {
                stream,
                seen,
                user_id,
            },
            now,
        );
    }
}
