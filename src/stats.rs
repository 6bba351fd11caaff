//! The daemon's running counts, kept by the reactor and updated where things happen.
//!
//! Two audiences: the `-benchmark` summary and SIGHUP report (always counted here, cheaply),
//! and the Prometheus metrics (updated through the same calls unless `-benchmark` turned them
//! off). This is the one place that maps what happened to metric labels.

use std::time::Duration;

use crate::end::EndReason;
use crate::metrics::{self, Gauges, Metrics};

#[derive(Debug, Default)]
pub struct Tally {
    pub accepted: u64,
    /// Handoffs refused with 503 because of the connection limit or the memory budget.
    pub rejected: u64,
    /// Handoffs received whole (fd and data), whatever came of them.
    pub handoffs: u64,
    /// Handoffs rejected, at receipt or after it.
    pub rejections: u64,
    pub active_streams: usize,
    pub peak_streams: usize,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    /// Every byte written to clients, heads and error responses included.
    pub bytes_sent: u64,
    pub chunks_sent: u64,
    /// Panics caught and confined to one connection or scrape.
    pub panics: u64,
    /// `None` in `-benchmark` mode.
    metrics: Option<Metrics>,
}

impl Tally {
    /// Counts for one loop; `with_metrics` false (`-benchmark`) skips metric updates.
    pub fn new(with_metrics: bool) -> Tally {
        Tally {
            metrics: with_metrics.then(Metrics::new),
            ..Tally::default()
        }
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// An Apache connection was admitted.
    pub fn connection_accepted(&mut self) {
        self.accepted += 1;
        if let Some(m) = &mut self.metrics {
            m.connection_accepted();
        }
    }

    /// An Apache connection arrived over the connection limit or the memory budget; it will be
    /// answered 503 and nothing else is counted for it.
    pub fn connection_rejected(&mut self) {
        self.rejected += 1;
        if let Some(m) = &mut self.metrics {
            m.connection_rejected();
        }
    }

    /// The handoff arrived whole and its fd is a stream socket.
    pub fn handoff_received(&mut self, took: Duration) {
        self.handoffs += 1;
        if let Some(m) = &mut self.metrics {
            m.handoff_received(took);
        }
    }

    pub fn stream_started(&mut self) {
        self.streams_started += 1;
        self.active_streams += 1;
        self.peak_streams = self.peak_streams.max(self.active_streams);
    }

    /// A connection ended; `streamed` is how long its stream ran, if one started (on
    /// `backend`).
    pub fn ended(&mut self, reason: EndReason, streamed: Option<Duration>, backend: Option<&str>) {
        if let EndReason::Rejected(_) = reason {
            self.rejections += 1;
        }
        if streamed.is_some() {
            self.active_streams = self.active_streams.saturating_sub(1);
            if reason.is_completed() {
                self.streams_completed += 1;
            } else {
                self.streams_failed += 1;
            }
        }
        if let Some(m) = &mut self.metrics {
            m.ended(reason, streamed);
            if let (Some(took), Some(backend)) = (streamed, label(backend)) {
                m.backend_duration(backend, took);
            }
        }
    }

    pub fn reloaded(&mut self, result: metrics::ReloadResult) {
        if let Some(m) = &mut self.metrics {
            m.reloaded(result);
        }
    }

    /// A panic was caught and confined to one connection or scrape.
    pub fn panicked(&mut self) {
        self.panics += 1;
        if let Some(m) = &mut self.metrics {
            m.panicked();
        }
    }

    /// A local backend started producing, or an upstream request was sent.
    pub fn backend_request(&mut self, backend: &str) {
        if let (Some(m), Some(backend)) = (&mut self.metrics, label(Some(backend))) {
            m.backend_request(backend);
        }
    }

    /// From an upstream request sent to the first byte of its response.
    pub fn backend_ttfb(&mut self, backend: &str, took: Duration) {
        if let (Some(m), Some(backend)) = (&mut self.metrics, label(Some(backend))) {
            m.backend_ttfb(backend, took);
        }
    }

    /// Any upstream failure, and every upstream event that could not be understood.
    pub fn backend_error(&mut self, backend: &str) {
        if let (Some(m), Some(backend)) = (&mut self.metrics, label(Some(backend))) {
            m.backend_error(backend);
        }
    }

    pub fn bytes_sent(&mut self, bytes: usize) {
        self.bytes_sent += bytes as u64;
        if let Some(m) = &mut self.metrics {
            m.bytes_sent(bytes as u64);
        }
    }

    pub fn chunks_sent(&mut self, chunks: u32) {
        self.chunks_sent += u64::from(chunks);
        if let Some(m) = &mut self.metrics {
            m.chunks_sent(u64::from(chunks));
        }
    }

    /// The gauges the metrics endpoint shows; `connections` counts handoffs and streams,
    /// `buffered` the bytes held in connection buffers.
    pub fn gauges(&self, connections: usize, buffered: usize) -> Gauges {
        Gauges {
            active_connections: connections as u64,
            active_streams: self.active_streams as u64,
            peak_streams: self.peak_streams as u64,
            buffered_bytes: buffered as u64,
            log_lines_dropped: crate::logging::lines_dropped(),
        }
    }

    /// The `-benchmark` summary, printed to stdout at exit.
    pub fn benchmark_summary(&self) -> String {
        format!(
            "\n=== Benchmark Summary ===\nPeak concurrent streams: {}\nTotal started: {}\n\
             Total completed: {}\nTotal failed: {}\nTotal bytes sent: {}\n=========================\n",
            self.peak_streams,
            self.streams_started,
            self.streams_completed,
            self.streams_failed,
            self.bytes_sent
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
