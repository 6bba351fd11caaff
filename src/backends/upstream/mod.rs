//! What upstream backends (openai, langgraph) give the reactor, and the rules it follows with it.
//!
//! A backend turns a handoff into an [`UpstreamRequest`]: the complete HTTP request bytes, the
//! [`Target`] to send them to (by index) and what to do with the response ([`Output`]: a
//! [`Translator`], or the events as received). Everything here is sans-I/O; the reactor
//! connects, writes, reads, keeps time and owns the pools.
//!
//! ## What the reactor does, step by step
//! 1. Connect to the request's target (`Backends::targets()[request.target]`: its [`Origin`],
//!    TCP or its Unix socket, TLS when `https`), write `request` until none is left.
//! 2. Append what it reads to a head buffer and call [`crate::http::parse_head`] until it is
//!    complete (a head error, a cut or the response-head timeout: 502 / 502 / 504).
//! 3. [`status_outcome`]: `Reject` → write its error response to the client and close the client
//!    (the upstream's error body goes to the log: feed an [`ErrorBody`] what follows the head,
//!    bounded in time, and log its `excerpt()`);
//!    `Stream` → write [`crate::http::SSE_HEAD`], build a [`Relay`] with the request's `output`
//!    and feed it the bytes that followed the head, even when there are none (an empty body
//!    ends on that first feed).
//! 4. Feed every read to [`Relay::feed`]; it writes content events to the client's sink. On
//!    `Step::Ended(ending)`, or at EOF through [`Relay::on_eof`], finish the client stream by the
//!    ending (below). Skipped events: log each at warn, count `daemon_backend_errors_total`.
//! 5. Pool the upstream connection only when [`Relay::is_reusable`]; otherwise close it. If the
//!    client goes away, close the upstream connection at once.
//!
//! `Output::Typed` (the typing backend's `use_api`) changes steps 4 and 5: make a [`Typist`]
//! with [`Output::pace`] when the head arrives and feed the relay its [`Typist::sink`] instead
//! of the client's; ask [`Typist::type_due`] whenever [`Typist::due`] has come and the client
//! has taken the last character; read the upstream only while [`Typist::is_backed_up`] is
//! false (the idle gap counts only while reading). On `Step::Ended`, release the upstream
//! connection as in 5 at once, give the ending to [`Typist::body_ended`], and finish the client
//! stream by the ending it hands back: at once for a failure, after the last character's pause
//! otherwise.
//!
//! | ending                        | client gets                                     | upstream connection         |
//! |-------------------------------|-------------------------------------------------|-----------------------------|
//! | `Ending::Complete`            | `data: [DONE]`, then close                      | pooled if `is_reusable()`   |
//! | `Ending::CompleteRaw`         | close, nothing added (outcome `completed`)      | pooled if `is_reusable()`   |
//! | `Ending::Incomplete`          | close, without `[DONE]` and without an error    | pooled if `is_reusable()`   |
//! | `Ending::Failed(failure)`     | `event: error` with `failure.message`, close    | closed                      |
//!
//! ## The translator contract
//! - `on_item` is called for every SSE item of a `200` response, in order, including comments.
//!   It appends client events to the sink and says how the answer stands ([`Flow`]). It never
//!   writes `[DONE]` or `event: error`: the reactor does, once, by the ending.
//! - `Flow::Complete` means the upstream signalled the end of the answer. It is sticky (later
//!   items are still passed on and may still add content), but `[DONE]` is written only when the
//!   body then ends cleanly: a body cut after the signal is still a failure (SPEC §4.3).
//! - `Flow::Fail` ends the stream at once; nothing more is fed. Its `message` is for the client
//!   and must not carry the upstream's raw words; `detail` (cut by [`excerpt`]) is for the log.
//! - `Flow::Skip` is an event that could not be understood (malformed JSON): the stream goes on.
//! - `on_clean_end` is asked only when the body ended cleanly and no `Complete` was seen: may a
//!   silent end count as complete? OpenAI says no, LangGraph (no end event) says yes.
//! - A translator keeps no reference to the sink and does no I/O and no logging: the reactor
//!   logs with the connection's id.

mod error_body;
mod excerpt;
pub mod json;
mod messages;
mod origin;
mod relay;
mod status;
#[cfg(test)]
pub mod testing;
mod typist;

pub use error_body::ErrorBody;
pub use excerpt::{excerpt, EXCERPT_LIMIT};
pub use messages::{push_messages, Roles};
pub use origin::{Origin, OriginError, Scheme};
pub use relay::{Ending, Fed, Relay, Step};
pub use status::{status_outcome, StatusOutcome};
pub use typist::{Pace, Typed, Typist, BACKLOG_LIMIT};

use super::BackendError;
use crate::attachments::{Body, BodyPlan};
use crate::end::Outcome;
use crate::http::{build_request, build_request_head, RequestError};
use crate::sse::{EventSink, SseItem};

/// Sent with every upstream request.
pub const USER_AGENT: &str = concat!("streaming-daemon/", env!("CARGO_PKG_VERSION"));
/// What is asked when a handoff has neither messages nor a prompt (SPEC §1.3).
pub const FALLBACK_PROMPT: &str = "Hello";

/// The upstream API a backend calls, and how far to trust its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub origin: Origin,
    /// Extra CA certificates to trust for this upstream.
    pub ca_file: Option<std::path::PathBuf>,
    /// Skip certificate verification (testing only).
    pub insecure_ssl: bool,
}

impl Target {
    /// Its index in `targets`, where it is added if no equal target is there yet: requests
    /// to equal targets share one upstream (pool, TLS settings, resolver).
    pub fn index_in(&self, targets: &mut Vec<Target>) -> usize {
        match targets.iter().position(|known| known == self) {
            Some(index) => index,
            None => {
                targets.push(self.clone());
                targets.len() - 1
            }
        }
    }
}

/// One upstream call: what to send, where, and how to read the answer.
pub struct UpstreamRequest {
    /// The HTTP/1.1 request: head and body, or the head alone when `body` streams the body.
    pub request: Vec<u8>,
    /// A body that carries file content, produced as the request is written (SPEC §4.5).
    pub body: Option<Body>,
    /// Where to send it. From a backend's `start`: an index into its own `Backend::targets`;
    /// from `Backends::start`: an index into `Backends::targets`.
    pub target: usize,
    pub output: Output,
    /// What the backend noticed about the handoff and let pass (an ignored field, say): the
    /// reactor logs each at warn with the connection id.
    pub notes: Vec<String>,
}

/// What becomes of a `200` response's body.
pub enum Output {
    /// Parsed as SSE and turned into our events by the translator; `[DONE]` on completion.
    Translate(Box<dyn Translator>),
    /// Each complete event passed on exactly as received; nothing added (LangGraph's
    /// `output: raw`, SPEC §4.4).
    Raw,
    /// Translated as `Translate`, but the text of the content events is typed out one
    /// character per event with these pauses (the typing backend's `use_api`, SPEC §4.2): the
    /// relay writes into a [`Typist`]'s sink, and the typist writes to the client.
    Typed(Box<dyn Translator>, Pace),
}

impl Output {
    /// The pauses, when the answer is to be typed: make a [`Typist`] with them.
    pub fn pace(&self) -> Option<Pace> {
        match self {
            Output::Typed(_, pace) => Some(*pace),
            Output::Translate(_) | Output::Raw => None,
        }
    }
}

impl From<Box<dyn Translator>> for Output {
    fn from(translator: Box<dyn Translator>) -> Output {
        Output::Translate(translator)
    }
}

/// A request as it is sent: whole, or its head with the body to be streamed after it.
#[derive(Debug)]
pub struct RequestBytes {
    /// The whole request, or only its head when `streamed` is set.
    pub bytes: Vec<u8>,
    pub streamed: Option<Body>,
}

impl RequestBytes {
    /// A `POST` of a JSON body: one piece when the body holds no file content (most requests),
    /// else the head with a `Content-Length` computed beforehand and the body streamed.
    pub fn post_json(
        target: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: BodyPlan,
    ) -> Result<RequestBytes, RequestError> {
        match body.into_bytes() {
            Ok(bytes) => Ok(RequestBytes {
                bytes: build_request("POST", target, host, headers, &bytes)?,
                streamed: None,
            }),
            Err(plan) => Ok(RequestBytes {
                bytes: build_request_head("POST", target, host, headers, plan.len(), 0)?,
                streamed: Some(plan.finish()),
            }),
        }
    }

    /// Every byte, the streamed body produced to its end: for tests.
    #[cfg(test)]
    pub fn whole(mut self) -> Vec<u8> {
        if let Some(mut body) = self.streamed.take() {
            while body
                .fill_vec(&mut self.bytes, crate::attachments::SLICE)
                .expect("body")
                > 0
            {}
        }
        self.bytes
    }
}

/// Why a request could not be built, as a start error: a handoff's `test_pattern` that cannot
/// be a header is the client's fault (400); anything else, such as a key with a line break, is
/// ours (500).
pub fn request_error(error: RequestError) -> BackendError {
    match error {
        RequestError::BadHeaderValue(name) if name == "X-Test-Pattern" => {
            BackendError::BadRequest("test_pattern cannot be sent as a header".to_string())
        }
        other => BackendError::Internal(other.to_string()),
    }
}

/// Turns one upstream response's SSE items into client events. See the module docs.
pub trait Translator {
    fn on_item(&mut self, item: &SseItem<'_>, sink: &mut EventSink<'_>) -> Flow;

    /// The body ended cleanly without any `Flow::Complete`: is the answer complete anyway?
    fn on_clean_end(&mut self) -> End;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The upstream signalled that the answer is complete.
    Complete,
    /// This event was not understood and was skipped; the text says why, for the log.
    Skip(String),
    /// The upstream reported an error in the stream.
    Fail(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Complete,
    Incomplete,
}

/// Why a stream ends with `event: error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the client's `event: error`: plain words, no upstream body, no secrets.
    pub message: String,
    /// For the operator's log at warn: what the upstream said or did, cut to 4 KiB.
    pub detail: String,
    /// How the stream ends: `UpstreamError` (an in-stream error object, a line or event over
    /// the limit) or `UpstreamCut` (closed mid-body, broken framing).
    pub outcome: Outcome,
}

impl Failure {
    /// The upstream sent an error object in a `200` stream.
    pub fn upstream_error(detail: String) -> Failure {
        Failure {
            message: "the upstream API reported an error during the answer".to_string(),
            detail,
            outcome: Outcome::UpstreamError,
        }
    }
}
