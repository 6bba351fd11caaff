//! What the workers of one daemon share (SPEC §6.5): the daemon-wide counts behind
//! `max_connections`, `mem_limit` and the pending 503s, the live stream count and its peak,
//! connection ids, every worker's metrics (the worker serving a scrape sums them), each
//! worker's loop turns (the watchdog pings only while every loop turns), and the directory of
//! resumable streams with the count of those whose client left (SPEC §2.1).
//!
//! Each count is one atomic that every worker updates where the event happens; nothing here
//! waits. Admission reads them without a lock, so two workers admitting at the same moment may
//! both see room for one: the limit can be passed by at most one connection per worker.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::metrics::Metrics;
use crate::resume::Directory;

#[derive(Debug, Default)]
pub struct Shared {
    /// Handoffs in progress plus client streams, over every worker (scrapes do not count).
    connections: AtomicUsize,
    /// Bytes held in connection buffers, over every worker.
    held_bytes: AtomicUsize,
    /// Handoffs accepted over capacity whose 503 is not done yet.
    refusing: AtomicUsize,
    active_streams: AtomicUsize,
    peak_streams: AtomicUsize,
    /// The last connection id given out.
    last_id: AtomicU64,
    /// Every worker's metrics, in the order the workers were made.
    metrics: Mutex<Vec<Arc<Metrics>>>,
    /// Every worker's count of loop turns, in the same order.
    turns: Mutex<Vec<Arc<AtomicU64>>>,
    /// Which worker runs each resumable stream, and how to reach each worker.
    resume: Directory,
    /// Streams whose client left, kept for a resume.
    detached: AtomicUsize,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared::default())
    }

    /// A worker's metrics, to be summed by scrapes from now on.
    pub fn register_metrics(&self, metrics: Arc<Metrics>) {
        lock(&self.metrics).push(metrics);
    }

    pub fn all_metrics(&self) -> Vec<Arc<Metrics>> {
        lock(&self.metrics).clone()
    }

    /// A worker's turn counter, which the watchdog reads.
    pub fn register_turns(&self) -> Arc<AtomicU64> {
        let turns = Arc::new(AtomicU64::new(0));
        lock(&self.turns).push(Arc::clone(&turns));
        turns
    }

    /// Every worker's turns so far, in worker order.
    pub fn turns(&self) -> Vec<u64> {
        lock(&self.turns)
            .iter()
            .map(|turns| turns.load(Ordering::Relaxed))
            .collect()
    }

    pub fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::Relaxed)
    }

    /// A worker's connections hold `now` bytes where they held `before`.
    pub fn held_changed(&self, before: usize, now: usize) {
        if now > before {
            self.held_bytes.fetch_add(now - before, Ordering::Relaxed);
        } else if before > now {
            self.held_bytes.fetch_sub(before - now, Ordering::Relaxed);
        }
    }

    pub fn refusing(&self) -> usize {
        self.refusing.load(Ordering::Relaxed)
    }

    pub fn refusal_started(&self) {
        self.refusing.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refusal_done(&self) {
        self.refusing.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn active_streams(&self) -> usize {
        self.active_streams.load(Ordering::Relaxed)
    }

    /// The daemon-wide peak of concurrent streams.
    pub fn peak_streams(&self) -> usize {
        self.peak_streams.load(Ordering::Relaxed)
    }

    pub fn stream_started(&self) {
        let now = self.active_streams.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_streams.fetch_max(now, Ordering::Relaxed);
    }

    pub fn stream_ended(&self) {
        self.active_streams.fetch_sub(1, Ordering::Relaxed);
    }

    /// Which worker runs each resumable stream.
    pub fn resume(&self) -> &Directory {
        &self.resume
    }

    pub fn detached_streams(&self) -> usize {
        self.detached.load(Ordering::Relaxed)
    }

    pub fn stream_detached(&self) {
        self.detached.fetch_add(1, Ordering::Relaxed);
    }

    /// A detached stream got a client back, or was dropped.
    pub fn detached_stream_gone(&self) {
        self.detached.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lists are only pushed to and copied: a panic elsewhere cannot leave them half changed.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
