//! The daemon's running counts, kept by the reactor and updated where things happen.
//!
//! These are the numbers the `-benchmark` summary and the SIGHUP report print, and the gauges
//! the metrics endpoint shows.

use std::time::Duration;

use crate::handoff::HandoffError;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub accepted: u64,
    /// Handoffs refused with 503 because of the connection limit or the memory budget.
    pub rejected: u64,
    pub handoffs: u64,
    pub handoff_errors: u64,
    pub active_streams: usize,
    pub peak_streams: usize,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    /// Every byte written to clients, heads and error responses included.
    pub bytes_sent: u64,
    pub chunks_sent: u64,
}

impl Tally {
    pub fn connection_accepted(&mut self) {
        self.accepted += 1;
    }

    pub fn connection_rejected(&mut self) {
        self.rejected += 1;
    }

    pub fn handoff_succeeded(&mut self, _took: Duration) {
        self.handoffs += 1;
    }

    pub fn handoff_failed(&mut self, _error: &HandoffError) {
        self.handoff_errors += 1;
    }

    pub fn stream_started(&mut self) {
        self.streams_started += 1;
        self.active_streams += 1;
        self.peak_streams = self.peak_streams.max(self.active_streams);
    }

    pub fn stream_ended(&mut self, completed: bool, _took: Duration) {
        self.active_streams = self.active_streams.saturating_sub(1);
        if completed {
            self.streams_completed += 1;
        } else {
            self.streams_failed += 1;
        }
    }

    pub fn bytes_sent(&mut self, bytes: usize) {
        self.bytes_sent += bytes as u64;
    }

    pub fn chunks_sent(&mut self, chunks: u32) {
        self.chunks_sent += u64::from(chunks);
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
