//! The daemon's running counts, kept by the reactor and updated where things happen.
//!
//! Two audiences: the `-benchmark` summary and SIGHUP report (always counted here, cheaply),
//! and the Prometheus metrics (updated through the same calls unless `-benchmark` turned them
//! off). This is the one place that maps what happened to metric labels.

mod shared;

use std::sync::Arc;
use std::time::Duration;

use crate::end::{EndReason, ResumeResult};
use crate::metrics::{self, Gauges, Metrics};

pub use shared::Shared;

#[derive(Debug, Default)]
pub struct Tally {
    pub accepted: u64,
    /// Handoffs refused with 503 because of the connection limit or the memory budget.
    pub rejected: u64,
    /// Handoffs received whole (fd and data), whatever came of them.
    pub handoffs: u64,
    /// Handoffs rejected, at receipt or after it.
    pub rejections: u64,
    /// This worker's streams; the daemon-wide count and peak are in [`Shared`].
    pub active_streams: usize,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    /// Every byte written to clients, heads and error responses included.
    pub bytes_sent: u64,
    pub chunks_sent: u64,
    /// Panics caught and confined to one connection or scrape.
    pub panics: u64,
    /// `None` in `-benchmark` mode.
    metrics: Option<Arc<Metrics>>,
    /// What this worker shares with the daemon's others.
    shared: Arc<Shared>,
}

impl Tally {
    /// Counts for a daemon of one loop; `with_metrics` false (`-benchmark`) skips metric
    /// updates.
    pub fn new(with_metrics: bool) -> Tally {
        Tally::for_worker(with_metrics, Shared::new())
    }

    /// Counts for one of the daemon's workers: its metrics join those a scrape sums.
    pub fn for_worker(with_metrics: bool, shared: Arc<Shared>) -> Tally {
        let metrics = with_metrics.then(|| Arc::new(Metrics::new()));
        if let Some(metrics) = &metrics {
            shared.register_metrics(Arc::clone(metrics));
        }
        Tally {
            metrics,
            shared,
            ..Tally::default()
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Every worker's metrics (`None` in `-benchmark` mode): what a scrape renders, summed.
    pub fn all_metrics(&self) -> Option<Vec<Arc<Metrics>>> {
        self.metrics.as_ref().map(|_| self.shared.all_metrics())
    }

    /// An Apache connection was admitted.
    pub fn connection_accepted(&mut self) {
        self.accepted += 1;
        if let Some(m) = &self.metrics {
            m.connection_accepted();
        }
    }

    /// An Apache connection arrived over the connection limit or the memory budget; it will be
    /// answered 503 and nothing else is counted for it.
    pub fn connection_rejected(&mut self) {
        self.rejected += 1;
        if let Some(m) = &self.metrics {
            m.connection_rejected();
        }
    }

    /// The handoff arrived whole and its fd is a stream socket.
    pub fn handoff_received(&mut self, took: Duration) {
        self.handoffs += 1;
        if let Some(m) = &self.metrics {
            m.handoff_received(took);
        }
    }

    pub fn stream_started(&mut self) {
        self.streams_started += 1;
        self.active_streams += 1;
        self.shared.stream_started();
    }

    /// A connection ended; `streamed` is how long its stream ran, if one started (on
    /// `backend`).
    pub fn ended(&mut self, reason: EndReason, streamed: Option<Duration>, backend: Option<&str>) {
        if let EndReason::Rejected(_) = reason {
            self.rejections += 1;
        }
        if streamed.is_some() {
            self.active_streams = self.active_streams.saturating_sub(1);
            self.shared.stream_ended();
            if reason.is_completed() {
                self.streams_completed += 1;
            } else {
                self.streams_failed += 1;
            }
        }
        if let Some(m) = &self.metrics {
            m.ended(reason, streamed);
            if let (Some(took), Some(backend)) = (streamed, label(backend)) {
                m.backend_duration(backend, took);
            }
        }
    }

    /// A `resume` handoff took a stream over or resumed it (one answered 204 is counted as
    /// its ending, by [`Tally::ended`]).
    pub fn resumed(&mut self, result: ResumeResult) {
        if let Some(m) = &self.metrics {
            m.resumed(result);
        }
    }

    pub fn reloaded(&mut self, result: metrics::ReloadResult) {
        if let Some(m) = &self.metrics {
            m.reloaded(result);
        }
    }

    /// A panic was caught and confined to one connection or scrape.
    pub fn panicked(&mut self) {
        self.panics += 1;
        if let Some(m) = &self.metrics {
            m.panicked();
        }
    }

    /// A local backend started producing, or an upstream request was sent.
    pub fn backend_request(&mut self, backend: &str) {
        if let (Some(m), Some(backend)) = (&self.metrics, label(Some(backend))) {
            m.backend_request(backend);
        }
    }

    /// From an upstream request sent to the first byte of its response.
    pub fn backend_ttfb(&mut self, backend: &str, took: Duration) {
        if let (Some(m), Some(backend)) = (&self.metrics, label(Some(backend))) {
            m.backend_ttfb(backend, took);
        }
    }

    /// Any upstream failure, and every upstream event that could not be understood.
    pub fn backend_error(&mut self, backend: &str) {
        if let (Some(m), Some(backend)) = (&self.metrics, label(Some(backend))) {
            m.backend_error(backend);
        }
    }

    pub fn bytes_sent(&mut self, bytes: usize) {
        self.bytes_sent += bytes as u64;
        if let Some(m) = &self.metrics {
            m.bytes_sent(bytes as u64);
        }
    }

    pub fn chunks_sent(&mut self, chunks: u32) {
        self.chunks_sent += u64::from(chunks);
        if let Some(m) = &self.metrics {
            m.chunks_sent(u64::from(chunks));
        }
    }

    /// The gauges the metrics endpoint shows, over every worker.
    pub fn gauges(&self) -> Gauges {
        let shared = &self.shared;
        Gauges {
            active_connections: shared.connections() as u64,
            active_streams: shared.active_streams() as u64,
            peak_streams: shared.peak_streams() as u64,
            buffered_bytes: shared.held_bytes() as u64,
            log_lines_dropped: crate::logging::lines_dropped(),
            detached_streams: shared.detached_streams() as u64,
        }
    }

    /// The `-benchmark` summary of every worker's tally, printed to stdout at exit.
    pub fn benchmark_summary(tallies: &[&Tally]) -> String {
        let sum = |count: fn(&Tally) -> u64| tallies.iter().map(|t| count(t)).sum::<u64>();
        let peak = tallies.first().map_or(0, |t| t.shared.peak_streams());
        format!(
            "\n=== Benchmark Summary ===\nPeak concurrent streams: {}\nTotal started: {}\n\
             Total completed: {}\nTotal failed: {}\nTotal bytes sent: {}\n=========================\n",
            peak,
            sum(|t| t.streams_started),
            sum(|t| t.streams_completed),
            sum(|t| t.streams_failed),
            sum(|t| t.bytes_sent)
        )
    }
}

/// The `backend` label for a backend's name (tests' own backends have none).
fn label(backend: Option<&str>) -> Option<metrics::Backend> {
    let name = backend?;
    metrics::Backend::ALL
        .into_iter()
        .find(|b| b.as_str() == name)
}
