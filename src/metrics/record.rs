//! The daemon's numbers, and the events that change them.
//!
//! The reactor owns one `Metrics` and calls the method named for what just happened, where it
//! happened. Per Apache connection taken from the listener it calls exactly one of
//! `connection_accepted` (admitted under `server.max_connections`) and `connection_rejected`
//! (over the limit or the memory budget: the handoff is still received and the client gets 503),
//! and, once the handoff ends, exactly one of `handoff_succeeded` and `handoff_failed`. Per
//! client stream it calls `stream_started` once and `stream_ended` once.
//!
//! Gauges are not kept here: the reactor already counts its live connections, so it passes its
//! counts in at render time (`Gauges`) and no second copy can drift.

use std::time::Duration;

use super::histogram::Histogram;
use super::labels::{Backend, HandoffErrorReason, LabelValue, StreamErrorReason};

/// Counts the reactor holds anyway, passed in when rendering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Everything holding an Apache or a client connection: handoffs in progress plus client
    /// streams (an error response still being written counts as a stream). Scrape connections
    /// do not count.
    pub active_connections: u64,
    /// Client streams: from the moment the handoff was accepted until the client socket closes.
    pub active_streams: u64,
    /// The highest `active_streams` seen since start-up.
    pub peak_streams: u64,
}

/// What the `-benchmark` summary prints at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub bytes_sent: u64,
}

/// Every counter and histogram of the daemon, as plain numbers.
///
/// Counters wrap instead of panicking on overflow: Prometheus reads a wrap as a counter reset,
/// which is harmless, while a panic in the loop is not.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub(super) connections: u64,
    pub(super) connections_rejected: u64,
    pub(super) handoffs: u64,
    pub(super) handoff_errors: [u64; HandoffErrorReason::ALL.len()],
    pub(super) stream_errors: [u64; StreamErrorReason::ALL.len()],
    pub(super) bytes_sent: u64,
    pub(super) chunks_sent: u64,
    pub(super) handoff_duration: Histogram,
    pub(super) stream_duration: Histogram,
    pub(super) backend_requests: [u64; Backend::ALL.len()],
    pub(super) backend_errors: [u64; Backend::ALL.len()],
    pub(super) backend_duration: [Histogram; Backend::ALL.len()],
    pub(super) backend_ttfb: [Histogram; Backend::ALL.len()],
    streams_started: u64,
    streams_completed: u64,
}

/// 0.1 ms: a handoff is one or two `recvmsg` calls.
const HANDOFF_FIRST_BOUND_NANOS: u64 = 100_000;
/// 10 ms: streams and backend requests take seconds.
const DURATION_FIRST_BOUND_NANOS: u64 = 10_000_000;
/// 1 ms: time to first byte from an upstream.
const TTFB_FIRST_BOUND_NANOS: u64 = 1_000_000;

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            connections: 0,
            connections_rejected: 0,
            handoffs: 0,
            handoff_errors: [0; HandoffErrorReason::ALL.len()],
            stream_errors: [0; StreamErrorReason::ALL.len()],
            bytes_sent: 0,
            chunks_sent: 0,
            handoff_duration: Histogram::doubling_from(HANDOFF_FIRST_BOUND_NANOS),
            stream_duration: Histogram::doubling_from(DURATION_FIRST_BOUND_NANOS),
            backend_requests: [0; Backend::ALL.len()],
            backend_errors: [0; Backend::ALL.len()],
            backend_duration: [const { Histogram::doubling_from(DURATION_FIRST_BOUND_NANOS) };
                Backend::ALL.len()],
            backend_ttfb: [const { Histogram::doubling_from(TTFB_FIRST_BOUND_NANOS) };
                Backend::ALL.len()],
            streams_started: 0,
            streams_completed: 0,
        }
    }

    /// An Apache connection was accepted under the connection limit.
    pub fn connection_accepted(&mut self) {
        bump(&mut self.connections, 1);
    }

    /// An Apache connection arrived over the connection limit or the memory budget; its client
    /// will get 503. Not also counted as accepted, as in the Go daemon.
    pub fn connection_rejected(&mut self) {
        bump(&mut self.connections_rejected, 1);
    }

    /// The handoff is complete (fd received and validated, data parsed) and Apache's connection
    /// closed; `duration` runs from accepting Apache's connection.
    pub fn handoff_succeeded(&mut self, duration: Duration) {
        bump(&mut self.handoffs, 1);
        self.handoff_duration.observe(duration);
    }

    /// The handoff was rejected. Its duration is not observed, as in the Go daemon: the
    /// histogram describes working handoffs, and 5 s timeouts would swamp it.
    pub fn handoff_failed(&mut self, reason: HandoffErrorReason) {
        bump(&mut self.handoff_errors[LabelValue::index(reason)], 1);
    }

    /// A client stream began: the handoff was accepted and the client will get an answer.
    pub fn stream_started(&mut self) {
        bump(&mut self.streams_started, 1);
    }

    /// The client socket was closed. `error` is `None` only when the whole answer (`[DONE]`
    /// included) was delivered. Every stream's duration is observed, failed ones too.
    pub fn stream_ended(&mut self, duration: Duration, error: Option<StreamErrorReason>) {
        self.stream_duration.observe(duration);
        match error {
            None => bump(&mut self.streams_completed, 1),
            Some(reason) => bump(&mut self.stream_errors[LabelValue::index(reason)], 1),
        }
    }

    /// Bytes written to a client socket, response heads included.
    pub fn bytes_sent(&mut self, bytes: u64) {
        bump(&mut self.bytes_sent, bytes);
    }

    /// SSE events written to a client (content, typing, `[DONE]` is not one).
    pub fn chunks_sent(&mut self, chunks: u64) {
        bump(&mut self.chunks_sent, chunks);
    }

    /// A backend began answering a stream: an upstream request was sent, or a local backend
    /// started producing events.
    pub fn backend_request(&mut self, backend: Backend) {
        bump(&mut self.backend_requests[LabelValue::index(backend)], 1);
    }

    /// A backend failed: an upstream error of any kind, or a malformed upstream event skipped.
    pub fn backend_error(&mut self, backend: Backend) {
        bump(&mut self.backend_errors[LabelValue::index(backend)], 1);
    }

    /// From sending the upstream request to its first response byte.
    pub fn backend_ttfb(&mut self, backend: Backend, duration: Duration) {
        self.backend_ttfb[LabelValue::index(backend)].observe(duration);
    }

    /// From sending the upstream request to the end of its response (or of the local
    /// backend's events).
    pub fn backend_duration(&mut self, backend: Backend, duration: Duration) {
        self.backend_duration[LabelValue::index(backend)].observe(duration);
    }

    pub fn totals(&self) -> Totals {
        let failed = self
            .stream_errors
            .iter()
            .fold(0u64, |total, &n| total.wrapping_add(n));
        Totals {
            started: self.streams_started,
            completed: self.streams_completed,
            failed,
            bytes_sent: self.bytes_sent,
        }
    }
}

fn bump(counter: &mut u64, by: u64) {
    *counter = counter.wrapping_add(by);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_split_streams_by_outcome() {
        let mut m = Metrics::new();
        for _ in 0..3 {
            m.stream_started();
        }
        m.stream_ended(Duration::from_secs(1), None);
        m.stream_ended(Duration::from_secs(1), Some(StreamErrorReason::Timeout));
        m.stream_ended(Duration::from_secs(1), Some(StreamErrorReason::Panic));
        m.bytes_sent(119);
        assert_eq!(
            m.totals(),
            Totals {
                started: 3,
                completed: 1,
                failed: 2,
                bytes_sent: 119
            }
        );
    }

    #[test]
    fn labelled_updates_touch_only_their_slot() {
        let mut m = Metrics::new();
        m.handoff_failed(HandoffErrorReason::Ctrunc);
        m.backend_error(Backend::Langgraph);
        assert_eq!(m.handoff_errors.iter().sum::<u64>(), 1);
        assert_eq!(
            m.handoff_errors[LabelValue::index(HandoffErrorReason::Ctrunc)],
            1
        );
        assert_eq!(m.backend_errors, [0, 0, 0, 1]);
    }
}
