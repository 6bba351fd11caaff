//! The daemon's numbers, and the events that change them.
//!
//! The reactor owns one `Metrics` and calls the method named for what just happened, where it
//! happened. Per Apache connection taken from the listener it calls exactly one of
//! `connection_accepted` (admitted) and `connection_rejected` (over `server.max_connections`
//! or the memory budget: the handoff is still received and the client gets 503); for an
//! admitted one, `handoff_received` once the handoff is complete, and `ended` once with how the
//! connection ended. So the books balance (SPEC §7.3): once idle, `connections` = `handoffs` +
//! receive-stage rejections, and `handoffs` = Σ outcomes + after-receipt rejections.
//!
//! Gauges are not kept here: the reactor already counts its live connections, so it passes its
//! counts in at render time (`Gauges`) and no second copy can drift.

use std::time::Duration;

use super::histogram::Histogram;
use super::labels::{Backend, LabelValue, ReloadResult};
use crate::end::{EndReason, GoCounter, GoReason, Outcome, Rejection};

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
    /// Bytes held in connection buffers, counted against `server.mem_limit`.
    pub buffered_bytes: u64,
    /// Log lines dropped because the log queue was full (a counter kept by the logger).
    pub log_lines_dropped: u64,
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
    pub(super) handoff_errors: [u64; GoReason::ALL.len()],
    pub(super) stream_errors: [u64; GoReason::ALL.len()],
    pub(super) stream_outcomes: [u64; Outcome::ALL.len()],
    pub(super) handoff_rejections: [u64; Rejection::ALL.len()],
    pub(super) panics: u64,
    pub(super) reloads: [u64; ReloadResult::ALL.len()],
    pub(super) bytes_sent: u64,
    pub(super) chunks_sent: u64,
    pub(super) handoff_duration: Histogram,
    pub(super) stream_duration: Histogram,
    pub(super) backend_requests: [u64; Backend::ALL.len()],
    pub(super) backend_errors: [u64; Backend::ALL.len()],
    pub(super) backend_duration: [Histogram; Backend::ALL.len()],
    pub(super) backend_ttfb: [Histogram; Backend::ALL.len()],
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
            handoff_errors: [0; GoReason::ALL.len()],
            stream_errors: [0; GoReason::ALL.len()],
            stream_outcomes: [0; Outcome::ALL.len()],
            handoff_rejections: [0; Rejection::ALL.len()],
            panics: 0,
            reloads: [0; ReloadResult::ALL.len()],
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

    /// The handoff is complete: the fd received and validated, Apache's connection closed;
    /// `duration` runs from accepting Apache's connection. Whatever happens next (bad data,
    /// a stream) is counted by [`Metrics::ended`].
    pub fn handoff_received(&mut self, duration: Duration) {
        bump(&mut self.handoffs, 1);
        self.handoff_duration.observe(duration);
    }

    /// An admitted connection ended. `streamed` is how long its stream ran, when one started:
    /// every stream's duration is observed, failed ones too. A rejected handoff's time is not,
    /// as in the Go daemon: 5 s timeouts would swamp the histogram.
    pub fn ended(&mut self, reason: EndReason, streamed: Option<Duration>) {
        if let Some(duration) = streamed {
            self.stream_duration.observe(duration);
        }
        match reason {
            EndReason::Stream(outcome) => bump(&mut self.stream_outcomes[outcome.index()], 1),
            EndReason::Rejected(rejection) => {
                bump(&mut self.handoff_rejections[rejection.index()], 1)
            }
            EndReason::OverCapacity => {}
        }
        match reason.go_counter() {
            Some(GoCounter::HandoffErrors(go)) => bump(&mut self.handoff_errors[go.index()], 1),
            Some(GoCounter::StreamErrors(go)) => bump(&mut self.stream_errors[go.index()], 1),
            None => {}
        }
    }

    /// A SIGHUP reload was applied, or refused.
    pub fn reloaded(&mut self, result: ReloadResult) {
        bump(&mut self.reloads[result.index()], 1);
    }

    /// A panic was caught and confined to one connection or scrape.
    pub fn panicked(&mut self) {
        bump(&mut self.panics, 1);
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
}

fn bump(counter: &mut u64, by: u64) {
    *counter = counter.wrapping_add(by);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(counts: &[u64]) -> u64 {
        counts.iter().sum()
    }

    #[test]
    fn each_ending_lands_on_our_counter_and_on_gos() {
        let mut m = Metrics::new();
        m.ended(
            EndReason::Stream(Outcome::Completed),
            Some(Duration::from_secs(1)),
        );
        m.ended(
            EndReason::Stream(Outcome::WriteTimeout),
            Some(Duration::from_secs(1)),
        );
        m.ended(EndReason::Rejected(Rejection::Ctrunc), None);
        m.ended(EndReason::Rejected(Rejection::BadJson), None);
        m.ended(EndReason::OverCapacity, None);
        assert_eq!(m.stream_outcomes[Outcome::Completed.index()], 1);
        assert_eq!(m.stream_outcomes[Outcome::WriteTimeout.index()], 1);
        assert_eq!(m.stream_errors[GoReason::Timeout.index()], 1);
        assert_eq!(m.stream_errors[GoReason::Other.index()], 1);
        assert_eq!(m.handoff_errors[GoReason::Other.index()], 1);
        assert_eq!(sum(&m.handoff_rejections), 2);
        assert_eq!(m.stream_duration.count(), 2);
    }

    #[test]
    fn labelled_updates_touch_only_their_slot() {
        let mut m = Metrics::new();
        m.ended(EndReason::Rejected(Rejection::Ctrunc), None);
        m.backend_error(Backend::Langgraph);
        assert_eq!(sum(&m.handoff_rejections), 1);
        assert_eq!(m.handoff_rejections[Rejection::Ctrunc.index()], 1);
        assert_eq!(m.backend_errors, [0, 0, 0, 1]);
    }
}
