//! The daemon's numbers, and the events that change them.
//!
//! The reactor owns one `Metrics` and calls the method named for what just happened, where it
//! happened. Per Apache connection taken from the listener it calls exactly one of
//! `connection_accepted` (admitted) and `connection_rejected` (over `server.max_connections`
//! or the memory budget: the handoff is still received and the client gets 503); for an
//! admitted one, `handoff_received` once the handoff is complete, and `ended` once with how the
//! connection ended. So the books balance (SPEC §7.3): once idle, `connections` = `handoffs` +
//! receive-stage rejections, and `handoffs` = Σ outcomes + after-receipt rejections + the
//! `resume` handoffs answered 204 (`resumes{result="done"|"unknown"|"mismatch"}`, counted by
//! `ended` like any ending). A handoff that resumes a stream carries it on (`resumed` counts
//! `resumes{result="resumed"|"taken_over"}` when it does): the stream's outcome becomes its
//! own, and the handoff the stream ran for until then ends as `resumed_elsewhere`.
//!
//! Gauges are not kept here: the reactor already counts its live connections, so it passes its
//! counts in at render time (`Gauges`) and no second copy can drift.

use std::time::Duration;

use super::counter::Counter;
use super::histogram::Histogram;
use super::labels::{Backend, LabelValue, ReloadResult};
use crate::end::{EndReason, GoCounter, GoReason, Outcome, Rejection, ResumeResult};

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
    /// Streams whose client left, kept running for a `resume` (SPEC §2.1).
    pub detached_streams: u64,
}

/// Every counter and histogram of one worker. The worker adds to them; a scrape on any worker
/// reads and sums every worker's ([`Counter`]).
#[derive(Debug)]
pub struct Metrics {
    pub(super) connections: Counter,
    pub(super) connections_rejected: Counter,
    pub(super) handoffs: Counter,
    pub(super) handoff_errors: [Counter; GoReason::ALL.len()],
    pub(super) stream_errors: [Counter; GoReason::ALL.len()],
    pub(super) stream_outcomes: [Counter; Outcome::ALL.len()],
    pub(super) handoff_rejections: [Counter; Rejection::ALL.len()],
    pub(super) panics: Counter,
    pub(super) reloads: [Counter; ReloadResult::ALL.len()],
    pub(super) resumes: [Counter; ResumeResult::ALL.len()],
    pub(super) bytes_sent: Counter,
    pub(super) chunks_sent: Counter,
    pub(super) handoff_duration: Histogram,
    pub(super) stream_duration: Histogram,
    pub(super) backend_requests: [Counter; Backend::ALL.len()],
    pub(super) backend_errors: [Counter; Backend::ALL.len()],
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
            connections: Counter::new(),
            connections_rejected: Counter::new(),
            handoffs: Counter::new(),
            handoff_errors: [const { Counter::new() }; GoReason::ALL.len()],
            stream_errors: [const { Counter::new() }; GoReason::ALL.len()],
            stream_outcomes: [const { Counter::new() }; Outcome::ALL.len()],
            handoff_rejections: [const { Counter::new() }; Rejection::ALL.len()],
            panics: Counter::new(),
            reloads: [const { Counter::new() }; ReloadResult::ALL.len()],
            resumes: [const { Counter::new() }; ResumeResult::ALL.len()],
            bytes_sent: Counter::new(),
            chunks_sent: Counter::new(),
            handoff_duration: Histogram::doubling_from(HANDOFF_FIRST_BOUND_NANOS),
            stream_duration: Histogram::doubling_from(DURATION_FIRST_BOUND_NANOS),
            backend_requests: [const { Counter::new() }; Backend::ALL.len()],
            backend_errors: [const { Counter::new() }; Backend::ALL.len()],
            backend_duration: [const { Histogram::doubling_from(DURATION_FIRST_BOUND_NANOS) };
                Backend::ALL.len()],
            backend_ttfb: [const { Histogram::doubling_from(TTFB_FIRST_BOUND_NANOS) };
                Backend::ALL.len()],
        }
    }

    /// An Apache connection was accepted under the connection limit.
    pub fn connection_accepted(&self) {
        self.connections.add(1);
    }

    /// An Apache connection arrived over the connection limit or the memory budget; its client
    /// will get 503. Not also counted as accepted, as in the Go daemon.
    pub fn connection_rejected(&self) {
        self.connections_rejected.add(1);
    }

    /// The handoff is complete: the fd received and validated, Apache's connection closed;
    /// `duration` runs from accepting Apache's connection. Whatever happens next (bad data,
    /// a stream) is counted by [`Metrics::ended`].
    pub fn handoff_received(&self, duration: Duration) {
        self.handoffs.add(1);
        self.handoff_duration.observe(duration);
    }

    /// An admitted connection ended. `streamed` is how long its stream ran, when one started:
    /// every stream's duration is observed, failed ones too. A rejected handoff's time is not,
    /// as in the Go daemon: 5 s timeouts would swamp the histogram.
    pub fn ended(&self, reason: EndReason, streamed: Option<Duration>) {
        if let Some(duration) = streamed {
            self.stream_duration.observe(duration);
        }
        match reason {
            EndReason::Stream(outcome) => self.stream_outcomes[outcome.index()].add(1),
            EndReason::Rejected(rejection) => self.handoff_rejections[rejection.index()].add(1),
            EndReason::NotResumed(why) => self.resumes[ResumeResult::Not(why).index()].add(1),
            EndReason::OverCapacity => {}
        }
        match reason.go_counter() {
            Some(GoCounter::HandoffErrors(go)) => self.handoff_errors[go.index()].add(1),
            Some(GoCounter::StreamErrors(go)) => self.stream_errors[go.index()].add(1),
            None => {}
        }
    }

    /// A SIGHUP reload was applied, or refused.
    pub fn reloaded(&self, result: ReloadResult) {
        self.reloads[result.index()].add(1);
    }

    /// A `resume` handoff took a stream over or resumed it (SPEC §2.1); one answered 204 is
    /// counted by [`Metrics::ended`].
    pub fn resumed(&self, result: ResumeResult) {
        self.resumes[result.index()].add(1);
    }

    /// A panic was caught and confined to one connection or scrape.
    pub fn panicked(&self) {
        self.panics.add(1);
    }

    /// Bytes written to a client socket, response heads included.
    pub fn bytes_sent(&self, bytes: u64) {
        self.bytes_sent.add(bytes);
    }

    /// SSE events written to a client (content, typing, `[DONE]` is not one).
    pub fn chunks_sent(&self, chunks: u64) {
        self.chunks_sent.add(chunks);
    }

    /// A backend began answering a stream: an upstream request was sent, or a local backend
    /// started producing events.
    pub fn backend_request(&self, backend: Backend) {
        self.backend_requests[LabelValue::index(backend)].add(1);
    }

    /// A backend failed: an upstream error of any kind, or a malformed upstream event skipped.
    pub fn backend_error(&self, backend: Backend) {
        self.backend_errors[LabelValue::index(backend)].add(1);
    }

    /// From sending the upstream request to its first response byte.
    pub fn backend_ttfb(&self, backend: Backend, duration: Duration) {
        self.backend_ttfb[LabelValue::index(backend)].observe(duration);
    }

    /// From sending the upstream request to the end of its response (or of the local
    /// backend's events).
    pub fn backend_duration(&self, backend: Backend, duration: Duration) {
        self.backend_duration[LabelValue::index(backend)].observe(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(counts: &[Counter]) -> u64 {
        counts.iter().map(Counter::get).sum()
    }

    #[test]
    fn each_ending_lands_on_our_counter_and_on_gos() {
        let m = Metrics::new();
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
        m.ended(EndReason::NotResumed(crate::end::NotResumed::Done), None);
        m.ended(
            EndReason::Stream(Outcome::ResumedElsewhere),
            Some(Duration::from_secs(1)),
        );
        assert_eq!(m.stream_outcomes[Outcome::Completed.index()].get(), 1);
        assert_eq!(
            m.stream_outcomes[Outcome::ResumedElsewhere.index()].get(),
            1
        );
        assert_eq!(m.stream_outcomes[Outcome::WriteTimeout.index()].get(), 1);
        assert_eq!(m.stream_errors[GoReason::Timeout.index()].get(), 1);
        assert_eq!(m.stream_errors[GoReason::Other.index()].get(), 1);
        assert_eq!(m.handoff_errors[GoReason::Other.index()].get(), 1);
        assert_eq!(sum(&m.handoff_rejections), 2);
        assert_eq!(sum(&m.resumes), 1, "a 204 is counted as its ending");
        assert_eq!(sum(&m.stream_errors), 2, "a resume is no stream error");
        assert_eq!(m.stream_duration.totals().count(), 3);
    }

    #[test]
    fn labelled_updates_touch_only_their_slot() {
        let m = Metrics::new();
        m.ended(EndReason::Rejected(Rejection::Ctrunc), None);
        m.backend_error(Backend::Langgraph);
        assert_eq!(sum(&m.handoff_rejections), 1);
        assert_eq!(m.handoff_rejections[Rejection::Ctrunc.index()].get(), 1);
        assert_eq!(sum(&m.backend_errors[..3]), 0);
        assert_eq!(m.backend_errors[3].get(), 1);
    }
}
