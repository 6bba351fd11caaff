//! Backends: what turns a handoff into the events of a stream.
//!
//! A backend is sans-I/O. It turns a handoff into either an [`EventSource`] that the reactor
//! asks for events whenever their time has come (mock, typing), or an upstream request plus what
//! to do with its response (openai, langgraph: see [`upstream`]); the reactor does all the
//! connecting, waiting and writing. An event source may also ask the reactor to run a program
//! and hand it the output ([`Next::Run`], see [`Command`]): typing's `fortune`.
//!
//! The reactor holds a [`Backends`]: the provider and every backend `backend.allowed` lists,
//! and the upstream APIs they call. A handoff's `backend` key picks one per request (SPEC §4).
//! Adding a backend is one new file here and one line in [`REGISTRY`].

mod command;
pub mod langgraph;
mod mock;
pub mod openai;
mod set;
mod typing;
pub mod upstream;

use std::fmt;
use std::time::{Duration, Instant};

use crate::attachments::Flavour;
use crate::config::Config;
use crate::end::Rejection;
use crate::handoff::HandoffData;
use crate::sse::EventSink;

pub use command::{Command, CommandResult};
pub use set::{Backends, Choice, Started};

/// Every backend the daemon can run, by the name `backend.provider` and `-backend` use.
pub const REGISTRY: &[(&str, Constructor)] = &[
    ("langgraph", langgraph::create),
    ("mock", mock::create),
    ("openai", openai::create),
    ("typing", typing::create),
];

type Constructor = fn(&Config) -> Result<Box<dyn Backend>, BackendError>;

/// `Send`: a reload builds the next backends on a helper thread and hands them to the loop.
pub trait Backend: Send {
    /// The name used in logs and in the `backend` metric label.
    fn name(&self) -> &'static str;

    /// Every upstream API this backend may call (langgraph: one per distinct profile target),
    /// in a fixed order: an [`upstream::UpstreamRequest`] from [`Backend::start`] names one by
    /// its index here. Empty for local backends.
    fn targets(&self) -> &[upstream::Target] {
        &[]
    }

    /// Takes what this backend shares with the same backend on the daemon's other workers
    /// (typing: the `fortune` rate limit). Called once, right after it is made.
    fn share(&mut self, wide: &DaemonWide) {
        let _ = wide;
    }

    /// Logs, at info, what an operator should see about this backend's settings (langgraph:
    /// one line per profile, never a key). Called once the backend is in use: at start-up and
    /// after a reload is applied.
    fn announce(&self) {}

    /// What this backend decides about a handoff before any file is read or request sent
    /// (SPEC §1.2): langgraph refuses an unknown `profile` here. Cheap; [`Backend::start`]
    /// checks the same again.
    fn accept(&self, request: &HandoffData) -> Result<Accepted, BackendError> {
        let _ = request;
        Ok(Accepted {
            profile: None,
            flavour: Flavour::Local,
        })
    }

    /// Starts producing the answer to one handoff, with what it attached when it attached
    /// anything (only upstream backends are given that). `now` is the reactor's clock, so that
    /// whatever a backend decides by time (a rate limit) is decided without reading a clock.
    fn start(
        &mut self,
        request: HandoffData,
        attached: Option<Attached>,
        now: Instant,
    ) -> Result<Start, BackendError>;
}

/// What a handoff attached, checked, loaded and shaped for the backend (SPEC §4.5): the
/// content of its target message.
#[derive(Debug)]
pub struct Attached {
    /// `Some(i)`: `messages[i]`; `None`: the user message made from `prompt`.
    pub target: Option<usize>,
    pub content: crate::attachments::Content,
}

/// What the backends of every worker share: made once per daemon, given to each worker's
/// [`Backends`] (see [`Backends::create_with`]).
#[derive(Debug, Clone, Default)]
pub struct DaemonWide {
    /// SPEC §4.2: at most one `fortune` call per 10 ms across the daemon.
    fortune_calls: std::sync::Arc<typing::CallGate>,
}

/// What [`Backend::accept`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The LangGraph profile the request runs with (`""`: the default profile); `None` for
    /// backends without profiles.
    pub profile: Option<String>,
    /// How attachments must be shaped for this backend (and profile).
    pub flavour: Flavour,
}

/// How a stream's answer is produced.
pub enum Start {
    /// Events made here, over time.
    Local(Box<dyn EventSource>),
    /// An HTTP request to one of the backend's targets, and what to do with its response.
    Upstream(upstream::UpstreamRequest),
}

/// The events of one stream, produced when the reactor asks.
pub trait EventSource {
    /// Appends the events that are due and says what comes next. Called once right after the
    /// success head is written, then whenever the last [`Next::After`] has passed and the client
    /// has taken everything written so far.
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next;

    /// What came of the last [`Next::Run`]. Called exactly once per `Run`, before `produce` is
    /// asked again; a source that never returns `Run` need not implement it.
    fn on_command(&mut self, result: CommandResult) {
        let _ = result;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask again after this long.
    After(Duration),
    /// The whole answer was delivered; the stream ends with `[DONE]`.
    Complete,
    /// The answer cannot be completed; the stream ends with `event: error` and this message.
    Fail(String),
    /// Run this program; its result comes through [`EventSource::on_command`], then `produce`
    /// is asked again at once.
    Run(Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    UnknownProvider(String),
    /// The backend cannot be set up with this configuration.
    Setup(String),
    /// The handoff's `backend` is neither the provider nor in `backend.allowed` (400,
    /// `unknown_backend`).
    UnknownBackend(String),
    /// The handoff's `profile` names no LangGraph profile (400, `unknown_profile`).
    UnknownProfile(String),
    /// This handoff cannot be turned into a request (the client's fault: 400).
    BadRequest(String),
    /// This handoff cannot be served for a reason of ours (500).
    Internal(String),
}

impl BackendError {
    /// Why the handoff is refused, when it is the client's fault: the answer is then 400 with
    /// [`BackendError::client_message`]. `None`: ours (500, counted as a backend error).
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            BackendError::UnknownBackend(_) => Some(Rejection::UnknownBackend),
            BackendError::UnknownProfile(_) => Some(Rejection::UnknownProfile),
            BackendError::BadRequest(_) => Some(Rejection::BadJson),
            BackendError::UnknownProvider(_)
            | BackendError::Setup(_)
            | BackendError::Internal(_) => None,
        }
    }

    /// The `error` of the client's JSON answer (SPEC §3.3): plain words, never a key or the
    /// configuration.
    pub fn client_message(&self) -> String {
        match self {
            BackendError::UnknownBackend(_) | BackendError::UnknownProfile(_) => self.to_string(),
            BackendError::BadRequest(reason) => format!("invalid request data: {reason}"),
            BackendError::UnknownProvider(_)
            | BackendError::Setup(_)
            | BackendError::Internal(_) => "the backend could not start".to_string(),
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::UnknownProvider(name) => write!(
                f,
                "unknown backend {name:?}; available backends: {}",
                available().join(", ")
            ),
            BackendError::Setup(reason) => write!(f, "backend set-up failed: {reason}"),
            BackendError::UnknownBackend(name) => write!(f, "backend {name:?} is not allowed"),
            BackendError::UnknownProfile(name) => {
                write!(f, "unknown LangGraph profile {name:?}")
            }
            BackendError::BadRequest(reason) => {
                write!(f, "the request cannot be sent upstream: {reason}")
            }
            BackendError::Internal(reason) => write!(f, "the backend failed: {reason}"),
        }
    }
}

impl std::error::Error for BackendError {}

pub fn available() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// Builds the backend named `name`.
fn build(name: &str, config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    let (_, constructor) = REGISTRY
        .iter()
        .find(|(known, _)| *known == name)
        .ok_or_else(|| BackendError::UnknownProvider(name.to_string()))?;
    constructor(config)
}

/// Builds the backend named by `backend.provider` alone: what the reactor runs until it holds
/// a [`Backends`].
pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    build(&config.backend.provider, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_provider_lists_the_available_ones() {
        let mut config = Config::default();
        config.backend.provider = "nope".into();
        let error = create(&config).err().unwrap();
        assert_eq!(
            error.to_string(),
            "unknown backend \"nope\"; available backends: langgraph, mock, openai, typing"
        );
    }
}
