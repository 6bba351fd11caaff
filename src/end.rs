//! How a handoff or a stream ended: the one vocabulary for the log's `outcome=` and for every
//! metric label about endings (SPEC §7.2). It imports nothing of ours, so that the connection,
//! the handoff parser, the counters and the metrics can all speak it without knowing each other.
//!
//! Each ending is decided once, where it happens, as an [`EndReason`]; logs print its
//! `Display`, and metrics derive their labels from it by the total `match`es below, so a new
//! way of ending does not compile until every reader handles it.

use std::fmt;

/// Every way an Apache connection taken from the listener can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The handoff was received and answered: a stream, or a 503 while draining. Counted in
    /// `daemon_stream_outcomes_total`.
    Stream(Outcome),
    /// The handoff was rejected. Counted in `daemon_handoff_rejections_total`.
    Rejected(Rejection),
    /// Accepted over `max_connections` or the memory budget, answered 503: counted only in
    /// `daemon_connections_rejected_total` (SPEC §7.3).
    OverCapacity,
    /// A `resume` handoff answered `204 No Content` (SPEC §2.1): counted only in
    /// `daemon_resumes_total{result}`.
    NotResumed(NotResumed),
}

/// How a stream ended (SPEC §7.2); the words are the log's `outcome=` and the label values of
/// `daemon_stream_outcomes_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole answer was delivered: `[DONE]` written (raw output: the body ended cleanly).
    Completed,
    /// The client went away: `EPIPE`, `ECONNRESET` or end of file on its socket.
    ClientDisconnected,
    /// A `resume` handoff took the stream over: this client was closed, or had left (SPEC
    /// §2.1). The stream goes on with the new client, whose outcome is the stream's.
    ResumedElsewhere,
    /// The client accepted no bytes for `write_timeout`.
    WriteTimeout,
    /// The stream ran longer than `max_stream_duration_ms`.
    MaxDuration,
    /// Shutdown: the drain deadline or a second signal ended it, or it had not started (503).
    Canceled,
    /// Upstream connect refused or reset, no address, TLS handshake or certificate failure.
    UpstreamUnreachable,
    /// The upstream answered a status other than 200.
    UpstreamStatus,
    /// Upstream connect, response head or body gap timeout.
    UpstreamTimeout,
    /// The upstream body ended mid-way (connection closed, broken framing).
    UpstreamCut,
    /// An error object in the upstream stream, an unparseable head, an SSE line over the limit.
    UpstreamError,
    /// The upstream ended cleanly without signalling completion: no `[DONE]`.
    UpstreamIncomplete,
    /// A panic in this connection's handling closed it.
    Panic,
    /// Any other socket error writing to the client.
    Network,
    /// Anything else; should stay at 0.
    Other,
}

/// Why a handoff was rejected (SPEC §7.2); the words are the log's `outcome=` and the label
/// values of `daemon_handoff_rejections_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Data over `max_handoff_bytes`, or `MSG_TRUNC`.
    TooLarge,
    /// Apache's message carried no fd.
    NoFd,
    /// The fd is not a stream socket.
    BadFd,
    /// `MSG_CTRUNC`: every fd received was closed.
    Ctrunc,
    /// Apache neither finished nor closed within the handoff timeout.
    Timeout,
    /// `recvmsg` failed; `reset` when the peer reset or broke the connection (`ECONNRESET`,
    /// `EPIPE`), which Go counts as a client disconnect.
    Network { reset: bool },
    /// Anything else during receipt, e.g. a panic; should stay at 0.
    Other,
    /// Not JSON, or a value that cannot be converted.
    BadJson,
    /// An attachment was refused.
    BadAttachment,
    /// An unknown LangGraph profile.
    UnknownProfile,
    /// A `backend` the configuration does not allow.
    UnknownBackend,
}

/// How a `resume` handoff was answered (SPEC §2.1); the label values of
/// `daemon_resumes_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeResult {
    /// A detached stream got its client back.
    Resumed,
    /// A stream still attached to a client went over to the new one.
    TakenOver,
    /// Answered 204: see [`NotResumed`].
    Not(NotResumed),
}

/// Why a `resume` handoff was answered `204 No Content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotResumed {
    /// The client has the whole stream: `<stream>-done`, or nothing follows its event.
    Done,
    /// A malformed id, a stream that is not (or no longer) kept, or events no longer held.
    Unknown,
    /// The stream is another user's.
    Mismatch,
}

/// When a rejection happened, which decides how it is counted (SPEC §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The handoff never arrived whole: not counted in `daemon_handoffs_total`.
    Receive,
    /// The handoff arrived and was counted, then refused.
    AfterReceipt,
}

/// The Go daemon's label values for its two error counters (its `classifyError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoReason {
    ClientDisconnected,
    Timeout,
    Canceled,
    Network,
    Other,
}

/// Which of the Go daemon's two error counters an ending goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoCounter {
    /// `daemon_handoff_errors_total`
    HandoffErrors(GoReason),
    /// `daemon_stream_errors_total`
    StreamErrors(GoReason),
}

impl EndReason {
    /// The Go error counter this ending adds to, if any.
    pub fn go_counter(self) -> Option<GoCounter> {
        match self {
            EndReason::Stream(outcome) => outcome.go_reason().map(GoCounter::StreamErrors),
            EndReason::Rejected(rejection) => Some(match rejection.stage() {
                Stage::Receive => GoCounter::HandoffErrors(rejection.go_reason()),
                Stage::AfterReceipt => GoCounter::StreamErrors(rejection.go_reason()),
            }),
            EndReason::OverCapacity | EndReason::NotResumed(_) => None,
        }
    }

    pub fn is_completed(self) -> bool {
        self == EndReason::Stream(Outcome::Completed)
    }
}

impl Outcome {
    pub const ALL: [Outcome; 15] = [
        Outcome::Completed,
        Outcome::ClientDisconnected,
        Outcome::ResumedElsewhere,
        Outcome::WriteTimeout,
        Outcome::MaxDuration,
        Outcome::Canceled,
        Outcome::UpstreamUnreachable,
        Outcome::UpstreamStatus,
        Outcome::UpstreamTimeout,
        Outcome::UpstreamCut,
        Outcome::UpstreamError,
        Outcome::UpstreamIncomplete,
        Outcome::Panic,
        Outcome::Network,
        Outcome::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::ClientDisconnected => "client_disconnected",
            Outcome::ResumedElsewhere => "resumed_elsewhere",
            Outcome::WriteTimeout => "write_timeout",
            Outcome::MaxDuration => "max_duration",
            Outcome::Canceled => "canceled",
            Outcome::UpstreamUnreachable => "upstream_unreachable",
            Outcome::UpstreamStatus => "upstream_status",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::UpstreamCut => "upstream_cut",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamIncomplete => "upstream_incomplete",
            Outcome::Panic => "panic",
            Outcome::Network => "network",
            Outcome::Other => "other",
        }
    }

    /// The position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Go's label for a stream that did not complete; `None` for a completed one, and for one
    /// a resume took over (the stream went on: that is no error).
    pub fn go_reason(self) -> Option<GoReason> {
        Some(match self {
            Outcome::Completed | Outcome::ResumedElsewhere => return None,
            Outcome::ClientDisconnected => GoReason::ClientDisconnected,
            Outcome::WriteTimeout | Outcome::MaxDuration | Outcome::UpstreamTimeout => {
                GoReason::Timeout
            }
            Outcome::Canceled => GoReason::Canceled,
            Outcome::UpstreamUnreachable | Outcome::UpstreamCut | Outcome::Network => {
                GoReason::Network
            }
            Outcome::UpstreamStatus
            | Outcome::UpstreamError
            | Outcome::UpstreamIncomplete
            | Outcome::Panic
            | Outcome::Other => GoReason::Other,
        })
    }
}

impl Rejection {
    pub const ALL: [Rejection; 11] = [
        Rejection::TooLarge,
        Rejection::NoFd,
        Rejection::BadFd,
        Rejection::Ctrunc,
        Rejection::Timeout,
        Rejection::Network { reset: false },
        Rejection::Other,
        Rejection::BadJson,
        Rejection::BadAttachment,
        Rejection::UnknownProfile,
        Rejection::UnknownBackend,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::NoFd => "no_fd",
            Rejection::BadFd => "bad_fd",
            Rejection::Ctrunc => "ctrunc",
            Rejection::Timeout => "timeout",
            Rejection::Network { .. } => "network",
            Rejection::Other => "other",
            Rejection::BadJson => "bad_json",
            Rejection::BadAttachment => "bad_attachment",
            Rejection::UnknownProfile => "unknown_profile",
            Rejection::UnknownBackend => "unknown_backend",
        }
    }

    /// The position in [`Rejection::ALL`].
    pub fn index(self) -> usize {
        match self {
            Rejection::TooLarge => 0,
            Rejection::NoFd => 1,
            Rejection::BadFd => 2,
            Rejection::Ctrunc => 3,
            Rejection::Timeout => 4,
            Rejection::Network { .. } => 5,
            Rejection::Other => 6,
            Rejection::BadJson => 7,
            Rejection::BadAttachment => 8,
            Rejection::UnknownProfile => 9,
            Rejection::UnknownBackend => 10,
        }
    }

    pub fn stage(self) -> Stage {
        match self {
            Rejection::TooLarge
            | Rejection::NoFd
            | Rejection::BadFd
            | Rejection::Ctrunc
            | Rejection::Timeout
            | Rejection::Network { .. }
            | Rejection::Other => Stage::Receive,
            Rejection::BadJson
            | Rejection::BadAttachment
            | Rejection::UnknownProfile
            | Rejection::UnknownBackend => Stage::AfterReceipt,
        }
    }

    pub fn go_reason(self) -> GoReason {
        match self {
            Rejection::Timeout => GoReason::Timeout,
            Rejection::Network { reset: true } => GoReason::ClientDisconnected,
            Rejection::Network { reset: false } => GoReason::Network,
            Rejection::TooLarge
            | Rejection::NoFd
            | Rejection::BadFd
            | Rejection::Ctrunc
            | Rejection::Other
            | Rejection::BadJson
            | Rejection::BadAttachment
            | Rejection::UnknownProfile
            | Rejection::UnknownBackend => GoReason::Other,
        }
    }
}

impl ResumeResult {
    pub const ALL: [ResumeResult; 5] = [
        ResumeResult::Resumed,
        ResumeResult::TakenOver,
        ResumeResult::Not(NotResumed::Done),
        ResumeResult::Not(NotResumed::Unknown),
        ResumeResult::Not(NotResumed::Mismatch),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResumeResult::Resumed => "resumed",
            ResumeResult::TakenOver => "taken_over",
            ResumeResult::Not(NotResumed::Done) => "done",
            ResumeResult::Not(NotResumed::Unknown) => "unknown",
            ResumeResult::Not(NotResumed::Mismatch) => "mismatch",
        }
    }

    /// The position in [`ResumeResult::ALL`].
    pub fn index(self) -> usize {
        match self {
            ResumeResult::Resumed => 0,
            ResumeResult::TakenOver => 1,
            ResumeResult::Not(NotResumed::Done) => 2,
            ResumeResult::Not(NotResumed::Unknown) => 3,
            ResumeResult::Not(NotResumed::Mismatch) => 4,
        }
    }
}

impl NotResumed {
    /// The log's `outcome=` for a handoff answered 204.
    pub fn as_str(self) -> &'static str {
        match self {
            NotResumed::Done => "resume_done",
            NotResumed::Unknown => "resume_unknown",
            NotResumed::Mismatch => "resume_mismatch",
        }
    }
}

impl GoReason {
    pub const ALL: [GoReason; 5] = [
        GoReason::ClientDisconnected,
        GoReason::Timeout,
        GoReason::Canceled,
        GoReason::Network,
        GoReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GoReason::ClientDisconnected => "client_disconnected",
            GoReason::Timeout => "timeout",
            GoReason::Canceled => "canceled",
            GoReason::Network => "network",
            GoReason::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Stream(outcome) => f.write_str(outcome.as_str()),
            EndReason::Rejected(rejection) => f.write_str(rejection.as_str()),
            EndReason::OverCapacity => f.write_str("over_capacity"),
            EndReason::NotResumed(why) => f.write_str(why.as_str()),
        }
    }
}

impl From<Outcome> for EndReason {
    fn from(outcome: Outcome) -> EndReason {
        EndReason::Stream(outcome)
    }
}

impl From<Rejection> for EndReason {
    fn from(rejection: Rejection) -> EndReason {
        EndReason::Rejected(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_indexes_itself() {
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(outcome.index(), i, "{outcome:?}");
        }
        for (i, rejection) in Rejection::ALL.iter().enumerate() {
            assert_eq!(rejection.index(), i, "{rejection:?}");
        }
        for (i, reason) in GoReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
        }
        for (i, result) in ResumeResult::ALL.iter().enumerate() {
            assert_eq!(result.index(), i, "{result:?}");
        }
    }

    #[test]
    fn the_go_classification_follows_the_spec_tables() {
        use GoReason::*;
        // SPEC §7.2, the outcomes table: every outcome, with its Go `reason` (None: not counted).
        let outcomes = [
            (Outcome::Completed, None),
            (Outcome::ClientDisconnected, Some(ClientDisconnected)),
            (Outcome::ResumedElsewhere, None),
            (Outcome::WriteTimeout, Some(Timeout)),
            (Outcome::MaxDuration, Some(Timeout)),
            (Outcome::Canceled, Some(Canceled)),
            (Outcome::UpstreamUnreachable, Some(Network)),
            (Outcome::UpstreamStatus, Some(Other)),
            (Outcome::UpstreamTimeout, Some(Timeout)),
            (Outcome::UpstreamCut, Some(Network)),
            (Outcome::UpstreamError, Some(Other)),
            (Outcome::UpstreamIncomplete, Some(Other)),
            (Outcome::Panic, Some(Other)),
            (Outcome::Network, Some(Network)),
            (Outcome::Other, Some(Other)),
        ];
        assert_eq!(outcomes.len(), Outcome::ALL.len(), "an outcome is missing");
        for (outcome, reason) in outcomes {
            assert_eq!(
                EndReason::Stream(outcome).go_counter(),
                reason.map(GoCounter::StreamErrors),
                "{outcome:?}"
            );
        }
        // The rejections table: receive-stage ones are Go's handoff errors, after-stage ones its
        // stream errors.
        let handoff = GoCounter::HandoffErrors;
        let stream = GoCounter::StreamErrors;
        let rejections = [
            (Rejection::TooLarge, handoff(Other)),
            (Rejection::NoFd, handoff(Other)),
            (Rejection::BadFd, handoff(Other)),
            (Rejection::Ctrunc, handoff(Other)),
            (Rejection::Timeout, handoff(Timeout)),
            (
                Rejection::Network { reset: true },
                handoff(ClientDisconnected),
            ),
            (Rejection::Network { reset: false }, handoff(Network)),
            (Rejection::Other, handoff(Other)),
            (Rejection::BadJson, stream(Other)),
            (Rejection::BadAttachment, stream(Other)),
            (Rejection::UnknownProfile, stream(Other)),
            (Rejection::UnknownBackend, stream(Other)),
        ];
        // `Network` is there twice, once per `reset`.
        assert_eq!(
            rejections.len(),
            Rejection::ALL.len() + 1,
            "a rejection is missing"
        );
        for (rejection, counter) in rejections {
            assert_eq!(
                EndReason::Rejected(rejection).go_counter(),
                Some(counter),
                "{rejection:?}"
            );
        }
        // Neither a stream nor an error: a 503 over capacity, a `resume` answered 204.
        assert_eq!(EndReason::OverCapacity.go_counter(), None);
        for why in [NotResumed::Done, NotResumed::Unknown, NotResumed::Mismatch] {
            assert_eq!(EndReason::NotResumed(why).go_counter(), None, "{why:?}");
        }
    }

    #[test]
    fn a_rejections_word_is_its_reason() {
        assert_eq!(
            EndReason::Rejected(Rejection::Network { reset: true }).to_string(),
            "network"
        );
        assert_eq!(
            EndReason::Stream(Outcome::WriteTimeout).to_string(),
            "write_timeout"
        );
        assert_eq!(
            EndReason::NotResumed(NotResumed::Mismatch).to_string(),
            "resume_mismatch"
        );
    }
}
