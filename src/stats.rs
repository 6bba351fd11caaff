//! The daemon's running counts, kept by the reactor and updated where things happen.
//!
//! Two audiences: the `-benchmark` summary and SIGHUP report (always counted here, cheaply),
//! and the Prometheus metrics (updated through the same calls unless `-benchmark` turned them
//! off). This is the one place that maps what happened to metric labels.

use std::time::Duration;

use crate::conn::{Ending, UpstreamEnd};
use crate::handoff::HandoffError;
use crate::metrics::{self, Gauges, HandoffErrorReason, Metrics, StreamErrorReason};

#[derive(Debug, Default)]
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
    /// `None` in `-benchmark` mode.
    metrics: Option<Metrics>,
    backend: Option<metrics::Backend>,
}

impl Tally {
    /// Counts for a daemon running `backend`; `with_metrics` false skips metric updates.
    pub fn new(backend: &str, with_metrics: bool) -> Tally {
        Tally {
            metrics: with_metrics.then(Metrics::new),
            backend: metrics::Backend::ALL
                .into_iter()
                .find(|b| b.as_str() == backend),
            ..Tally::default()
        }
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// A handoff connection from Apache; `over_capacity` ones will be answered 503.
    pub fn connection_accepted(&mut self, over_capacity: bool) {
        if over_capacity {
            self.connection_rejected();
            return;
        }
        self.accepted += 1;
        if let Some(m) = &mut self.metrics {
            m.connection_accepted();
        }
    }

    pub fn connection_rejected(&mut self) {
        self.rejected += 1;
        if let Some(m) = &mut self.metrics {
            m.connection_rejected();
        }
    }

    pub fn handoff_succeeded(&mut self, took: Duration) {
        self.handoffs += 1;
        if let Some(m) = &mut self.metrics {
            m.handoff_succeeded(took);
        }
    }

    pub fn handoff_failed(&mut self, error: &HandoffError) {
        self.handoff_errors += 1;
        if let Some(m) = &mut self.metrics {
            m.handoff_failed(handoff_reason(error));
        }
    }

    pub fn stream_started(&mut self) {
        self.streams_started += 1;
        self.active_streams += 1;
        self.peak_streams = self.peak_streams.max(self.active_streams);
        if let Some(m) = &mut self.metrics {
            m.stream_started();
        }
    }

    /// A local backend started producing, or an upstream request was sent.
    pub fn backend_request(&mut self) {
        if let (Some(m), Some(backend)) = (&mut self.metrics, self.backend) {
            m.backend_request(backend);
        }
    }

    /// From an upstream request sent to the first byte of its response.
    pub fn backend_ttfb(&mut self, took: Duration) {
        if let (Some(m), Some(backend)) = (&mut self.metrics, self.backend) {
            m.backend_ttfb(backend, took);
        }
    }

    /// Any upstream failure, and every upstream event that could not be understood.
    pub fn backend_error(&mut self) {
        if let (Some(m), Some(backend)) = (&mut self.metrics, self.backend) {
            m.backend_error(backend);
        }
    }

    pub fn stream_ended(&mut self, ending: &Ending, took: Duration) {
        self.active_streams = self.active_streams.saturating_sub(1);
        let error = stream_reason(ending);
        if error.is_none() {
            self.streams_completed += 1;
        } else {
            self.streams_failed += 1;
        }
        if let Some(m) = &mut self.metrics {
            m.stream_ended(took, error);
            if let Some(backend) = self.backend {
                m.backend_duration(backend, took);
                if let Ending::BackendFailed(_) = ending {
                    m.backend_error(backend);
                }
            }
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

    /// The gauges the metrics endpoint shows; `connections` counts handoffs and streams.
    pub fn gauges(&self, connections: usize) -> Gauges {
        Gauges {
            active_connections: connections as u64,
            active_streams: self.active_streams as u64,
            peak_streams: self.peak_streams as u64,
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

fn handoff_reason(error: &HandoffError) -> HandoffErrorReason {
    match error {
        HandoffError::TooLarge { .. } => HandoffErrorReason::TooLarge,
        HandoffError::ControlTruncated => HandoffErrorReason::Ctrunc,
        HandoffError::NoFd => HandoffErrorReason::NoFd,
        HandoffError::BadFd { .. } => HandoffErrorReason::BadFd,
        HandoffError::BadJson { .. } => HandoffErrorReason::BadJson,
        HandoffError::TimedOut => HandoffErrorReason::Timeout,
        HandoffError::Receive { .. } => HandoffErrorReason::Network,
    }
}

/// `None` for a stream that delivered the whole answer.
fn stream_reason(ending: &Ending) -> Option<StreamErrorReason> {
    match ending {
        Ending::Completed => None,
        Ending::ClientGone => Some(StreamErrorReason::ClientDisconnected),
        Ending::WriteStalled => Some(StreamErrorReason::Timeout),
        Ending::MaxDuration => Some(StreamErrorReason::MaxDuration),
        Ending::ShutDown => Some(StreamErrorReason::Canceled),
        Ending::Panicked => Some(StreamErrorReason::Panic),
        Ending::BackendFailed(_) => Some(StreamErrorReason::Other),
        Ending::Upstream(why) => Some(match why {
            UpstreamEnd::Unreachable => StreamErrorReason::UpstreamUnreachable,
            UpstreamEnd::Status(_) => StreamErrorReason::UpstreamStatus,
            UpstreamEnd::Timeout => StreamErrorReason::UpstreamTimeout,
            UpstreamEnd::Cut => StreamErrorReason::UpstreamCut,
            UpstreamEnd::Error | UpstreamEnd::Malformed => StreamErrorReason::UpstreamError,
            UpstreamEnd::Incomplete => StreamErrorReason::UpstreamIncomplete,
        }),
        Ending::Rejected(_) | Ending::Refused(_) | Ending::ClientMisbehaved => {
            Some(StreamErrorReason::Other)
        }
    }
}
