//! The langgraph backend: runs on the LangGraph Platform API, streamed (SPEC §4.4).
//!
//! `backend.langgraph` is the default profile; `backend.langgraph.profiles.<name>` adds named
//! ones, each with its own API, key, assistant, stream mode and output. A handoff's `profile`
//! picks one (`""` or absent: the default); an unknown name is refused before anything is sent.
//! Profiles on the same upstream (same origin and TLS settings) share a target.
//!
//! [`build_request`] writes `POST {base}/runs/stream` (stateless) or
//! `POST {base}/threads/{thread_id}/runs/stream` with a JSON body; [`LangGraphTranslator`]
//! reads the streamed events back, or, with `output: raw`, the relay passes them on as they are.
//!
//! Values in `langgraph_input` and content-parts arrays reach the upstream as the client wrote
//! them, byte for byte (`1234567` stays `1234567`, `1.50` stays `1.50`, `2.5e3` stays `2.5e3`):
//! the handoff keeps them as JSON text ([`crate::handoff::RawJson`]) and the body is written
//! out around them.
//!
//! Attachments: the target message's content comes from `crate::attachments`, shaped by the
//! profile's `content_format` ([`Backend::accept`] gives it as the [`Flavour`]).

mod translate;

use std::collections::BTreeMap;
use std::time::Instant;

use super::upstream::{
    push_messages, request_error, Origin, Output, RequestBytes, Roles, Target, UpstreamRequest,
    USER_AGENT,
};
use super::{Accepted, Attached, Backend, BackendError, Start};
use crate::attachments::{BodyPlan, Flavour};
use crate::config::{Config, LangGraphOutput, LangGraphProfile};
use crate::handoff::HandoffData;

pub use translate::{LangGraphTranslator, StreamMode};

pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    let settings = &config.backend.langgraph;
    let mut targets = Vec::new();
    let default = Profile::new("", settings.default_profile(), &mut targets)?;
    let mut named = BTreeMap::new();
    for (name, resolved) in settings.named_profiles() {
        named.insert(
            name.to_string(),
            Profile::new(name, resolved, &mut targets)?,
        );
    }
    Ok(Box::new(LangGraph {
        default,
        named,
        targets,
    }))
}

struct LangGraph {
    /// `backend.langgraph` itself.
    default: Profile,
    /// `backend.langgraph.profiles`, by name.
    named: BTreeMap<String, Profile>,
    /// The distinct upstreams of all profiles; `Profile::target` indexes it.
    targets: Vec<Target>,
}

struct Profile {
    settings: LangGraphProfile,
    origin: Origin,
    /// Index into `LangGraph::targets`.
    target: usize,
}

impl Profile {
    /// One profile set up: its API base parsed, its target shared with any profile in
    /// `targets` on the same upstream. `name` is `""` for the default profile.
    fn new(
        name: &str,
        settings: LangGraphProfile,
        targets: &mut Vec<Target>,
    ) -> Result<Profile, BackendError> {
        let key = match name {
            "" => "backend.langgraph".to_string(),
            name => format!("backend.langgraph.profiles.{name}"),
        };
        let origin = Origin::parse(&settings.api_base, settings.api_socket.clone())
            .map_err(|e| BackendError::Setup(format!("{key}.api_base: {e}")))?;
        if settings.output == LangGraphOutput::Translate
            && StreamMode::parse(&settings.stream_mode) == StreamMode::Other
        {
            log::warn!(
                "{key}.stream_mode {:?} carries no message text: clients will get empty streams; \
                 use messages-tuple or messages, or output: raw",
                settings.stream_mode
            );
        }
        let target = Target {
            origin: origin.clone(),
            ca_file: settings.ca_file.clone(),
            insecure_ssl: settings.insecure_ssl,
        }
        .index_in(targets);
        Ok(Profile {
            settings,
            origin,
            target,
        })
    }
}

impl LangGraph {
    /// The profile a handoff's `profile` names, with its name; `None` and `""` are the default
    /// profile (named `""`).
    fn select(&self, request: &HandoffData) -> Result<(&str, &Profile), BackendError> {
        match request.profile.as_deref() {
            None | Some("") => Ok(("", &self.default)),
            Some(name) => self
                .named
                .get_key_value(name)
                .map(|(name, profile)| (name.as_str(), profile))
                .ok_or_else(|| BackendError::UnknownProfile(name.to_string())),
        }
    }
}

impl Backend for LangGraph {
    fn name(&self) -> &'static str {
        "langgraph"
    }

    fn targets(&self) -> &[Target] {
        &self.targets
    }

    fn announce(&self) {
        let profiles = std::iter::once(("", &self.default)).chain(
            self.named
                .iter()
                .map(|(name, profile)| (name.as_str(), profile)),
        );
        for (name, profile) in profiles {
            let settings = &profile.settings;
            let socket = settings
                .api_socket
                .as_ref()
                .map(|path| path.display().to_string());
            // Never the key: an operator checks which API and assistant each profile reaches.
            log::info!(
                profile = name,
                api_base = settings.api_base.as_str(),
                api_socket = socket.as_deref(),
                assistant_id = settings.assistant_id.as_str(),
                stream_mode = settings.stream_mode.as_str(),
                output = settings.output.as_str();
                "LangGraph profile"
            );
        }
    }

    fn accept(&self, request: &HandoffData) -> Result<Accepted, BackendError> {
        let (name, profile) = self.select(request)?;
        Ok(Accepted {
            profile: Some(name.to_string()),
            flavour: Flavour::LangGraph(profile.settings.content_format),
        })
    }

    fn start(
        &mut self,
        request: HandoffData,
        attached: Option<Attached>,
        _now: Instant,
    ) -> Result<Start, BackendError> {
        let (_, profile) = self.select(&request)?;
        let attached = attached.as_ref();
        let mut call = upstream_request(&profile.settings, &profile.origin, &request, attached)?;
        call.target = profile.target;
        Ok(Start::Upstream(call))
    }
}

/// The request for one handoff with one profile's settings, and what to do with its response;
/// its `target` is 0 (the caller knows which target `origin` is).
pub fn upstream_request(
    settings: &LangGraphProfile,
    origin: &Origin,
    request: &HandoffData,
    attached: Option<&Attached>,
) -> Result<UpstreamRequest, BackendError> {
    let mut notes = Vec::new();
    let output = match settings.output {
        LangGraphOutput::Translate => Output::Translate(Box::new(LangGraphTranslator::new(
            StreamMode::parse(stream_mode(settings, request)),
        ))),
        LangGraphOutput::Raw => Output::Raw,
    };
    let RequestBytes { bytes, streamed } =
        build_request(settings, origin, request, attached, &mut notes)?;
    Ok(UpstreamRequest {
        request: bytes,
        body: streamed,
        target: 0,
        output,
        notes,
    })
}

/// The run's stream mode: the handoff's, else the profile's.
fn stream_mode<'a>(settings: &'a LangGraphProfile, request: &'a HandoffData) -> &'a str {
    request
        .stream_mode
        .as_deref()
        .filter(|mode| !mode.is_empty())
        .unwrap_or(&settings.stream_mode)
}

/// The HTTP request for one handoff; what was ignored in it is added to `notes`.
/// Fails with `BadRequest` (the client's fault: 400) for a `thread_id` that cannot be a path
/// segment or a `test_pattern` that cannot be a header, and with `Internal` (ours: 500) for a
/// configured key that cannot be one.
pub fn build_request(
    settings: &LangGraphProfile,
    origin: &Origin,
    request: &HandoffData,
    attached: Option<&Attached>,
    notes: &mut Vec<String>,
) -> Result<RequestBytes, BackendError> {
    let target = match &request.thread_id {
        Some(thread) => origin.join(&format!("/threads/{}/runs/stream", thread_segment(thread)?)),
        None => origin.join("/runs/stream"),
    };
    let body = request_body(settings, request, attached, notes);
    let mut headers: Vec<(&str, &str)> = vec![
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
        ("User-Agent", USER_AGENT),
    ];
    if let Some(key) = settings.api_key.as_deref().filter(|key| !key.is_empty()) {
        headers.push(("X-Api-Key", key));
    }
    if let Some(pattern) = request.test_pattern.as_deref().filter(|p| !p.is_empty()) {
        headers.push(("X-Test-Pattern", pattern));
    }
    RequestBytes::post_json(&target, &origin.host_header(), &headers, body).map_err(request_error)
}

/// `{"assistant_id":…,"input":{"messages":[…],<langgraph_input fields>},"stream_mode":[…],
/// "stream_subgraphs":false,"on_disconnect":"cancel"}`, plus `"on_completion":"delete"` for a run
/// without a thread and `"if_not_exists":"create"` for a thread run (SPEC §4.4, A.3 P1 and P6).
/// The handoff's `assistant_id` and `stream_mode` override the profile's. Written out rather than built as a `Value`, so that a
/// content-parts array and every `langgraph_input` value go upstream exactly as the client
/// wrote them, and the members come in the order the SPEC gives.
fn request_body(
    settings: &LangGraphProfile,
    request: &HandoffData,
    attached: Option<&Attached>,
    notes: &mut Vec<String>,
) -> BodyPlan {
    let assistant = request
        .assistant_id
        .as_deref()
        .unwrap_or(&settings.assistant_id);
    let mut body = BodyPlan::new();
    body.push(b"{\"assistant_id\":");
    body.push_json_string(assistant);
    body.push(b",\"input\":{\"messages\":[");
    push_messages(&mut body, request, attached, &ROLES);
    body.push(b"]");
    for (key, value) in &request.langgraph_input {
        if key == "messages" {
            notes.push(
                "langgraph_input.messages was ignored: the run's messages come from the \
                 handoff's messages or prompt"
                    .to_string(),
            );
            continue;
        }
        body.push(b",");
        body.push_json_string(key);
        body.push(b":");
        body.push(value.get().as_bytes());
    }
    body.push(b"},\"stream_mode\":[");
    body.push_json_string(stream_mode(settings, request));
    body.push(b"],\"stream_subgraphs\":false");
    // The client left: stop the run rather than pay for an answer nobody reads.
    body.push(b",\"on_disconnect\":\"cancel\"");
    if request.thread_id.is_none() {
        // A stateless run's thread is of no use to anyone afterwards.
        body.push(b",\"on_completion\":\"delete\"");
    } else {
        // A thread seen for the first time is created by the run itself: no extra round trip
        // (the newest Go daemon first POSTs /threads).
        body.push(b",\"if_not_exists\":\"create\"");
    }
    body.push(b"}");
    body
}

/// LangChain message types: OpenAI-style roles mapped, anything else passed on unchanged.
const ROLES: Roles = Roles {
    key: "type",
    name: message_type,
};

/// OpenAI-style roles to LangChain message types; anything else is passed on unchanged.
fn message_type(role: &str) -> &str {
    match role {
        "user" => "human",
        "assistant" => "ai",
        other => other,
    }
}

/// The thread id as the path segment that names it. `.` and `..` are refused: they are dot
/// segments, which URL normalisation (ours, a proxy's, the server's) resolves to another path,
/// `/threads/../runs/stream` to `/runs/stream`, say; percent-encoding them does not help,
/// since `%2E` is `.` to a normaliser.
fn thread_segment(thread: &str) -> Result<String, BackendError> {
    if thread == "." || thread == ".." {
        return Err(BackendError::BadRequest(format!(
            "thread_id {thread:?} cannot name a thread: in a URL path it means another path"
        )));
    }
    Ok(path_segment(thread))
}

/// Percent-encodes `text` as one path segment: everything but RFC 3986's unreserved characters,
/// so that a `/`, `?`, `#` or `%` in a thread id cannot change which resource is asked for.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod stream_tests;
