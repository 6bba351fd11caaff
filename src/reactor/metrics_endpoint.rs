//! The metrics endpoint inside the loop: accepting scrapes (keeping a slot free for a new one),
//! serving them, and closing them when the daemon is done. Scrapes are bounded connections of
//! their own kind in the slab; they never count as connections and never delay the exit.

use std::io;
use std::time::{Duration, Instant};

use mio::Interest;

use super::scrape::{Scrape, View};
use super::token::{self, Key, Side};
use super::{caught, Entry, Occupant, Reactor};
use crate::metrics::ProcessReader;

/// Scrapes in progress at once. Prometheus sends one at a time; the rest is headroom for
/// health checks and people with curl.
const MAX_SCRAPES: usize = 16;
/// At most one line per this long about metrics connections turned away: one line per refused
/// connection would let a flood of them flood the log.
pub(super) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Events worth a log line, summarised: the first one is said at once, then at most one line
/// per interval with how many happened since the last line.
pub(super) struct Summary {
    interval: Duration,
    unsaid: u64,
    said_at: Option<Instant>,
}

impl Summary {
    pub(super) fn new(interval: Duration) -> Summary {
        Summary {
            interval,
            unsaid: 0,
            said_at: None,
        }
    }

    /// Counts one event; returns how many to report when a line is due.
    pub(super) fn note(&mut self, now: Instant) -> Option<u64> {
        self.unsaid += 1;
        let due = self
            .said_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
        if !due {
            return None;
        }
        self.said_at = Some(now);
        Some(std::mem::take(&mut self.unsaid))
    }
}

impl Reactor {
    pub(super) fn accept_scrapes(&mut self, now: Instant) {
        loop {
            let Some(listener) = &self.metrics_listener else {
                return;
            };
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of fds or similar: the backlog keeps the rest, and scrapes are never
                    // worth spinning for.
                    log::warn!(error:% = e; "metrics accept failed");
                    return;
                }
            };
            if self.scrapes.len() >= MAX_SCRAPES && !self.make_room_for_a_scrape(now) {
                self.refused_a_scrape(now);
                continue;
            }
            let key = self.conns.next_key();
            let registered = self.poll.registry().register(
                &mut stream,
                token::connection_token(key, Side::Scrape),
                Interest::READABLE | Interest::WRITABLE,
            );
            if let Err(e) = registered {
                log::warn!(error:% = e; "cannot register a metrics connection");
                continue;
            }
            let key = self.conns.insert(Entry {
                occupant: Occupant::Scrape(Scrape::new(stream, now)),
                armed: None,
                held: 0,
            });
            self.scrapes.push(key);
            self.rearm(key, now);
        }
    }

    /// Closes the oldest scrape still waiting for its request, if there is one.
    fn make_room_for_a_scrape(&mut self, now: Instant) -> bool {
        // `scrapes` is in the order they were accepted.
        let conns = &mut self.conns;
        let oldest_idle = self.scrapes.iter().copied().find(|&key| {
            matches!(
                conns.get_mut(key).map(|entry| &entry.occupant),
                Some(Occupant::Scrape(scrape)) if scrape.is_idle()
            )
        });
        let Some(key) = oldest_idle else {
            return false;
        };
        log::debug!("closing the oldest idle metrics connection to make room for a new one");
        self.close(key, now);
        true
    }

    fn refused_a_scrape(&mut self, now: Instant) {
        if let Some(refused) = self.scrape_refusals.note(now) {
            log::warn!(
                refused = refused,
                in_progress = self.scrapes.len();
                "metrics connections refused: every scrape slot is busy answering"
            );
        }
    }

    pub(super) fn serve_scrape(&mut self, key: Key, now: Instant) {
        let process = &*self.process.get_or_insert_with(ProcessReader::new);
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let Occupant::Scrape(scrape) = &mut entry.occupant else {
            return;
        };
        let gauges = self.tally.gauges();
        let (out, tally) = (&mut self.buffers.out, &self.tally);
        let view = || View {
            tally,
            gauges,
            process: process
                .read()
                .map_err(|e| log::warn!(error:% = e; "cannot read /proc for process metrics"))
                .ok(),
        };
        match caught(|| scrape.on_ready(now, out, view)) {
            Ok(false) => self.rearm(key, now),
            Ok(true) => self.close(key, now),
            Err(()) => {
                if let Some(Entry {
                    occupant: Occupant::Scrape(scrape),
                    ..
                }) = self.conns.get_mut(key)
                {
                    let _ = caught(|| scrape.fail());
                }
                self.abort(key, now, "serving a metrics scrape");
            }
        }
    }

    /// The daemon is done: scrapes in progress are closed, whatever they wait for.
    pub(super) fn close_scrapes(&mut self, now: Instant) {
        for key in std::mem::take(&mut self.scrapes) {
            self.close(key, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_events_makes_one_line_per_interval() {
        let start = Instant::now();
        let mut summary = Summary::new(Duration::from_secs(60));
        assert_eq!(summary.note(start), Some(1));
        let said: Vec<_> = (1..=1000)
            .filter_map(|i| summary.note(start + Duration::from_millis(i * 100)))
            .collect();
        // 100 s of events, one every 100 ms: a line at 60 s, none before or after.
        assert_eq!(said, [600]);
    }
}
