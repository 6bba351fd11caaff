//! Backends: what turns a handoff into the events of a stream.
//!
//! A backend is sans-I/O. It turns a handoff into either an [`EventSource`] that the reactor
//! asks for events whenever their time has come (mock, typing), or an upstream request plus a
//! translator for its response (openai, langgraph: see [`upstream`]); the reactor does all the
//! connecting, waiting and writing. An event source may also ask the reactor to run a program
//! and hand it the output ([`Next::Run`], see [`Command`]): typing's `fortune`. Adding a backend is one new file here and one line in
//! [`REGISTRY`].

mod command;
pub mod langgraph;
mod mock;
pub mod openai;
mod typing;
pub mod upstream;

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::handoff::HandoffData;
use crate::sse::EventSink;

pub use command::{Command, CommandResult};

/// Every backend the daemon can run, by the name `backend.provider` and `-backend` use.
pub const REGISTRY: &[(&str, Constructor)] = &[
    ("langgraph", langgraph::create),
    ("mock", mock::create),
    ("openai", openai::create),
    ("typing", typing::create),
];

type Constructor = fn(&Config) -> Result<Box<dyn Backend>, BackendError>;

/// `Send`: a reload builds the next backend on a helper thread and hands it to the loop.
pub trait Backend: Send {
    /// The name used in logs and in the `backend` metric label.
    fn name(&self) -> &'static str;

    /// The upstream API this backend calls, if any: the reactor resolves it, connects to it and
    /// keeps its connections pooled.
    fn upstream(&self) -> Option<&upstream::Target> {
        None
    }

    /// Starts producing the answer to one handoff. `now` is the reactor's clock, so that
    /// whatever a backend decides by time (a rate limit) is decided without reading a clock.
    fn start(&mut self, request: HandoffData, now: Instant) -> Result<Start, BackendError>;
}

/// How a stream's answer is produced.
pub enum Start {
    /// Events made here, over time.
    Local(Box<dyn EventSource>),
    /// An HTTP request to [`Backend::upstream`] and the translator for its response.
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
    /// This handoff cannot be turned into a request (the client's fault: 400).
    BadRequest(String),
    /// This handoff cannot be served for a reason of ours (500).
    Internal(String),
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

/// Builds the backend named by `backend.provider`.
pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    let name = config.backend.provider.as_str();
    let (_, constructor) = REGISTRY
        .iter()
        .find(|(known, _)| *known == name)
        .ok_or_else(|| BackendError::UnknownProvider(name.to_string()))?;
    constructor(config)
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
