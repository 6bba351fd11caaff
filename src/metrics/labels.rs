//! The label values the daemon's metrics can carry. Every value below is rendered from the first
//! scrape on (at 0 until it happens), so dashboards can `rate()` and alert on it from the start.
//!
//! `daemon_handoff_errors_total{reason}`: one per rejected handoff from Apache.
//!
//! | reason | what happened |
//! |---|---|
//! | `too_large` | the handoff data exceeded `server.max_handoff_bytes` (stream socket) or arrived with `MSG_TRUNC` (seqpacket); the client got 413 |
//! | `bad_json` | the handoff data was not a JSON object, or a known key had the wrong type; the client got 400 |
//! | `no_fd` | Apache's message carried no file descriptor |
//! | `bad_fd` | the received descriptor is not a stream socket (`getsockopt(SO_TYPE)` failed or gave another type) |
//! | `ctrunc` | the control data was truncated (`MSG_CTRUNC`); every descriptor received was closed |
//! | `timeout` | Apache neither finished nor closed within the handoff timeout; the client got 500 if its descriptor had arrived |
//! | `network` | `recvmsg` failed, e.g. the peer reset the connection |
//! | `other` | anything not listed above; should stay at 0, so a rise is worth a look in the log |
//!
//! `daemon_stream_errors_total{reason}`: one per client stream that did not end with the whole
//! answer delivered.
//!
//! | reason | what happened |
//! |---|---|
//! | `client_disconnected` | the client went away: `EPIPE`, `ECONNRESET` or end of file on its socket |
//! | `timeout` | the client accepted no bytes for `write_timeout` (30 s) |
//! | `canceled` | the daemon shut down: the drain deadline or a second signal ended the stream, or it had not started yet |
//! | `network` | any other socket error writing to the client |
//! | `max_duration` | the stream ran longer than `server.max_stream_duration_ms` |
//! | `upstream_unreachable` | the upstream could not be reached: connect, TLS handshake or name resolution failed |
//! | `upstream_status` | the upstream answered with a status other than 200 |
//! | `upstream_timeout` | no upstream response head in time, or too long a gap between upstream body bytes |
//! | `upstream_cut` | the upstream body ended mid-way (connection closed or broken framing) |
//! | `upstream_error` | the upstream sent an error object in its stream, or a response head we could not parse |
//! | `upstream_incomplete` | the upstream ended cleanly without signalling completion; the client got no `[DONE]` |
//! | `panic` | a panic in this connection's handling closed it |
//! | `other` | anything not listed above; should stay at 0 |
//!
//! `backend` on `daemon_backend_*`: `mock`, `typing`, `openai`, `langgraph`. A daemon runs one
//! backend, yet all four are rendered: the set of series then never changes with the
//! configuration, and a dashboard shared by daemons running different backends needs no
//! `absent()` guards. It costs about 150 lines per scrape.

/// A label value set: a small enum that indexes fixed arrays of numbers, so that updating a
/// labelled series is an array index and never a string or a map lookup.
pub trait LabelValue: Copy + 'static {
    /// The label's name in the exposition, e.g. `reason`.
    const NAME: &'static str;
    /// Every value, in the order of `index`.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// The position of `self` in `ALL`.
    fn index(self) -> usize;
}

/// Why a handoff from Apache was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffErrorReason {
    TooLarge,
    BadJson,
    NoFd,
    BadFd,
    Ctrunc,
    Timeout,
    Network,
    Other,
}

impl HandoffErrorReason {
    pub const ALL: [HandoffErrorReason; 8] = [
        HandoffErrorReason::TooLarge,
        HandoffErrorReason::BadJson,
        HandoffErrorReason::NoFd,
        HandoffErrorReason::BadFd,
        HandoffErrorReason::Ctrunc,
        HandoffErrorReason::Timeout,
        HandoffErrorReason::Network,
        HandoffErrorReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HandoffErrorReason::TooLarge => "too_large",
            HandoffErrorReason::BadJson => "bad_json",
            HandoffErrorReason::NoFd => "no_fd",
            HandoffErrorReason::BadFd => "bad_fd",
            HandoffErrorReason::Ctrunc => "ctrunc",
            HandoffErrorReason::Timeout => "timeout",
            HandoffErrorReason::Network => "network",
            HandoffErrorReason::Other => "other",
        }
    }
}

impl LabelValue for HandoffErrorReason {
    const NAME: &'static str = "reason";
    const ALL: &'static [Self] = &HandoffErrorReason::ALL;

    fn as_str(self) -> &'static str {
        HandoffErrorReason::as_str(self)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a client stream ended without the whole answer delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamErrorReason {
    ClientDisconnected,
    Timeout,
    Canceled,
    Network,
    MaxDuration,
    UpstreamUnreachable,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamCut,
    UpstreamError,
    UpstreamIncomplete,
    Panic,
    Other,
}

impl StreamErrorReason {
    pub const ALL: [StreamErrorReason; 13] = [
        StreamErrorReason::ClientDisconnected,
        StreamErrorReason::Timeout,
        StreamErrorReason::Canceled,
        StreamErrorReason::Network,
        StreamErrorReason::MaxDuration,
        StreamErrorReason::UpstreamUnreachable,
        StreamErrorReason::UpstreamStatus,
        StreamErrorReason::UpstreamTimeout,
        StreamErrorReason::UpstreamCut,
        StreamErrorReason::UpstreamError,
        StreamErrorReason::UpstreamIncomplete,
        StreamErrorReason::Panic,
        StreamErrorReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamErrorReason::ClientDisconnected => "client_disconnected",
            StreamErrorReason::Timeout => "timeout",
            StreamErrorReason::Canceled => "canceled",
            StreamErrorReason::Network => "network",
            StreamErrorReason::MaxDuration => "max_duration",
            StreamErrorReason::UpstreamUnreachable => "upstream_unreachable",
            StreamErrorReason::UpstreamStatus => "upstream_status",
            StreamErrorReason::UpstreamTimeout => "upstream_timeout",
            StreamErrorReason::UpstreamCut => "upstream_cut",
            StreamErrorReason::UpstreamError => "upstream_error",
            StreamErrorReason::UpstreamIncomplete => "upstream_incomplete",
            StreamErrorReason::Panic => "panic",
            StreamErrorReason::Other => "other",
        }
    }
}

impl LabelValue for StreamErrorReason {
    const NAME: &'static str = "reason";
    const ALL: &'static [Self] = &StreamErrorReason::ALL;

    fn as_str(self) -> &'static str {
        StreamErrorReason::as_str(self)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The backend a request went to, by its configured name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Mock,
    Typing,
    Openai,
    Langgraph,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Mock,
        Backend::Typing,
        Backend::Openai,
        Backend::Langgraph,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Mock => "mock",
            Backend::Typing => "typing",
            Backend::Openai => "openai",
            Backend::Langgraph => "langgraph",
        }
    }
}

impl LabelValue for Backend {
    const NAME: &'static str = "backend";
    const ALL: &'static [Self] = &Backend::ALL;

    fn as_str(self) -> &'static str {
        Backend::as_str(self)
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_set<L: LabelValue + std::fmt::Debug>() {
        let mut seen = Vec::new();
        for (position, value) in L::ALL.iter().enumerate() {
            assert_eq!(value.index(), position, "{value:?} indexes the wrong slot");
            let text = value.as_str();
            assert!(
                !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text:?} is not snake_case"
            );
            assert!(!seen.contains(&text), "{text:?} appears twice");
            seen.push(text);
        }
    }

    #[test]
    fn every_value_is_unique_snake_case_and_indexes_its_own_slot() {
        check_set::<HandoffErrorReason>();
        check_set::<StreamErrorReason>();
        check_set::<Backend>();
    }

    #[test]
    fn the_go_daemons_stream_reasons_are_kept() {
        let names: Vec<_> = StreamErrorReason::ALL.iter().map(|r| r.as_str()).collect();
        for go in [
            "client_disconnected",
            "timeout",
            "canceled",
            "network",
            "other",
        ] {
            assert!(names.contains(&go), "{go} missing");
        }
    }
}
