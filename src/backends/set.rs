//! The backends a daemon runs: the provider, and every backend `backend.allowed` lists, each set
//! up once; a handoff's `backend` key picks one per request (SPEC §4). Only these are set up, so
//! that a handoff cannot spend an API key the operator does not use.
//!
//! Their upstream APIs are gathered into one list of distinct [`Target`]s (two langgraph profiles
//! on one server, or openai and langgraph behind one proxy, share an entry), and every
//! [`UpstreamRequest`] that [`Backends::start`] returns names its target by its index in
//! [`Backends::targets`]: the reactor keeps one upstream (pool, TLS settings, resolver) per
//! entry.
//!
//! Order of the checks (SPEC §1.2): the data, then `backend` ([`Backends::choose`]), then the
//! backend's own (`profile`), then attachments; only then is a request built
//! ([`Backends::start`]).

use std::time::Instant;

use super::upstream::{Target, UpstreamRequest};
use super::{build, Attached, Backend, BackendError, DaemonWide, Start};
use crate::attachments::Flavour;
use crate::config::Config;
use crate::handoff::HandoffData;

pub struct Backends {
    /// The provider first, then the other allowed backends in the order `allowed` gives.
    entries: Vec<Entry>,
    /// Every distinct upstream the entries call.
    targets: Vec<Target>,
}

struct Entry {
    backend: Box<dyn Backend>,
    /// The backend's own target indices, mapped to indices into `Backends::targets`.
    targets: Vec<usize>,
}

/// The backend (and profile) a handoff runs on, decided before anything is read or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// For the `backend` metric label and the connection's log line.
    pub backend: &'static str,
    /// The LangGraph profile (`""`: the default profile); `None` for other backends.
    pub profile: Option<String>,
    /// How attachments must be shaped for this backend and profile.
    pub flavour: Flavour,
    /// Which entry.
    index: usize,
}

/// What [`Backends::start`] started, and on which backend.
pub struct Started {
    /// For the `backend` metric label and the connection's log line.
    pub backend: &'static str,
    /// The LangGraph profile (`""`: the default profile); `None` for other backends.
    pub profile: Option<String>,
    /// An upstream request's `target` indexes [`Backends::targets`].
    pub start: Start,
}

impl Backends {
    /// Sets up the provider and every backend `backend.allowed` lists. Configuration validation
    /// has refused unknown names already; one here is an `UnknownProvider` error all the same.
    pub fn create(config: &Config) -> Result<Backends, BackendError> {
        Backends::create_with(config, &DaemonWide::default())
    }

    /// The same, for one of the daemon's workers: what backends share across workers comes
    /// from `wide`.
    pub fn create_with(config: &Config, wide: &DaemonWide) -> Result<Backends, BackendError> {
        let mut backends = Backends {
            entries: Vec::new(),
            targets: Vec::new(),
        };
        for name in config.backend.allowed_backends() {
            let mut backend = build(name, config)?;
            backend.share(wide);
            backends.push(backend);
        }
        Ok(backends)
    }

    /// One backend alone, as the provider: for tests that bring a backend of their own.
    pub fn single(backend: Box<dyn Backend>) -> Backends {
        let mut backends = Backends {
            entries: Vec::new(),
            targets: Vec::new(),
        };
        backends.push(backend);
        backends
    }

    fn push(&mut self, backend: Box<dyn Backend>) {
        let targets = backend
            .targets()
            .iter()
            .map(|target| target.index_in(&mut self.targets))
            .collect();
        self.entries.push(Entry { backend, targets });
    }

    /// Every distinct upstream API the backends call; an [`UpstreamRequest::target`] from
    /// [`Backends::start`] is an index into it. Empty when only local backends run.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The name of `backend.provider`.
    pub fn provider(&self) -> &'static str {
        self.entries
            .first()
            .map_or("", |entry| entry.backend.name())
    }

    /// The names of the backends set up, the provider first.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .map(|entry| entry.backend.name())
            .collect()
    }

    /// Logs what each backend has to say about its settings (langgraph: a line per profile).
    /// Call it once the backends are in use: at start-up, and when a reload is applied.
    pub fn announce(&self) {
        for entry in &self.entries {
            entry.backend.announce();
        }
    }

    /// The backend the handoff's `backend` key picks (`None`: the provider) and what it
    /// decides before anything is read or sent (langgraph's profile). The connection calls it
    /// before attachments are checked, which need its [`Choice::flavour`].
    pub fn choose(&self, request: &HandoffData) -> Result<Choice, BackendError> {
        let index = match request.backend.as_deref() {
            None | Some("") => 0,
            Some(name) => self
                .entries
                .iter()
                .position(|entry| entry.backend.name() == name)
                .ok_or_else(|| BackendError::UnknownBackend(name.to_string()))?,
        };
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| BackendError::Internal("no backend is set up".to_string()))?;
        let accepted = entry.backend.accept(request)?;
        Ok(Choice {
            backend: entry.backend.name(),
            profile: accepted.profile,
            flavour: accepted.flavour,
            index,
        })
    }

    /// Starts the answer to one handoff on the backend it picks: [`Backends::choose`], then
    /// that backend's start. An upstream request's `target` is an index into
    /// [`Backends::targets`].
    pub fn start(
        &mut self,
        request: HandoffData,
        attached: Option<Attached>,
        now: Instant,
    ) -> Result<Started, BackendError> {
        let Choice {
            backend,
            profile,
            index,
            ..
        } = self.choose(&request)?;
        let entry = &mut self.entries[index];
        let start = match entry.backend.start(request, attached, now)? {
            Start::Upstream(call) => Start::Upstream(UpstreamRequest {
                target: *entry.targets.get(call.target).ok_or_else(|| {
                    BackendError::Internal(format!(
                        "the {backend} backend named upstream {} of {}",
                        call.target,
                        entry.targets.len()
                    ))
                })?,
                ..call
            }),
            local => local,
        };
        Ok(Started {
            backend,
            profile,
            start,
        })
    }
}

#[cfg(test)]
mod tests;
