//! The langgraph backend: runs on the LangGraph Platform API, streamed (SPEC §4.4).
//!
//! [`build_request`] writes `POST {base}/runs/stream` (stateless) or
//! `POST {base}/threads/{thread_id}/runs/stream` with a JSON body; [`LangGraphTranslator`]
//! reads the streamed events back.
//!
//! Values in `langgraph_input` and content-parts arrays reach the upstream as the client wrote
//! them, byte for byte (`1234567` stays `1234567`, `1.50` stays `1.50`, `2.5e3` stays `2.5e3`):
//! the handoff keeps them as JSON text ([`crate::handoff::RawJson`]) and the body is written
//! out around them.

mod translate;

use std::time::Instant;

use super::upstream::{
    request_error, Origin, Target, UpstreamRequest, FALLBACK_PROMPT, USER_AGENT,
};
use super::{Backend, BackendError, Start};
use crate::config::{Config, LangGraphConfig};
use crate::handoff::{Content, HandoffData};
use crate::http::build_request as build_http_request;
use crate::sse::push_json_string;

pub use translate::{LangGraphTranslator, StreamMode};

pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    let settings = &config.backend.langgraph;
    let origin = Origin::parse(&settings.api_base, settings.api_socket.clone())
        .map_err(|e| BackendError::Setup(format!("backend.langgraph.api_base: {e}")))?;
    if StreamMode::parse(&settings.stream_mode) == StreamMode::Other {
        log::warn!(
            "backend.langgraph.stream_mode {:?} carries no message text: clients will get \
             empty streams; use messages-tuple or messages",
            settings.stream_mode
        );
    }
    Ok(Box::new(LangGraph {
        target: Target {
            origin,
            ca_file: settings.ca_file.clone(),
            insecure_ssl: settings.insecure_ssl,
        },
        settings: settings.clone(),
    }))
}

struct LangGraph {
    target: Target,
    settings: LangGraphConfig,
}

impl Backend for LangGraph {
    fn name(&self) -> &'static str {
        "langgraph"
    }

    fn upstream(&self) -> Option<&Target> {
        Some(&self.target)
    }

    fn start(&mut self, request: HandoffData, _now: Instant) -> Result<Start, BackendError> {
        upstream_request(&self.settings, &self.target.origin, &request).map(Start::Upstream)
    }
}

/// The request and translator for one handoff.
pub fn upstream_request(
    settings: &LangGraphConfig,
    origin: &Origin,
    request: &HandoffData,
) -> Result<UpstreamRequest, BackendError> {
    let mut notes = Vec::new();
    Ok(UpstreamRequest {
        request: build_request(settings, origin, request, &mut notes)?,
        translator: Box::new(LangGraphTranslator::new(StreamMode::parse(
            &settings.stream_mode,
        ))),
        notes,
    })
}

/// The complete HTTP request for one handoff; what was ignored in it is added to `notes`.
/// Fails with `BadRequest` (the client's fault: 400) for a `thread_id` that cannot be a path
/// segment or a `test_pattern` that cannot be a header, and with `Internal` (ours: 500) for a
/// configured key that cannot be one.
pub fn build_request(
    settings: &LangGraphConfig,
    origin: &Origin,
    request: &HandoffData,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>, BackendError> {
    let target = match &request.thread_id {
        Some(thread) => origin.join(&format!("/threads/{}/runs/stream", thread_segment(thread)?)),
        None => origin.join("/runs/stream"),
    };
    let body = request_body(settings, request, notes);
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
    build_http_request("POST", &target, &origin.host_header(), &headers, &body)
        .map_err(request_error)
}

/// `{"assistant_id":…,"input":{"messages":[…],<langgraph_input fields>},"stream_mode":[…],
/// "stream_subgraphs":false,"on_disconnect":"cancel"}`, plus `"on_completion":"delete"` for a run
/// without a thread (SPEC §4.4). Written out rather than built as a `Value`, so that a
/// content-parts array and every `langgraph_input` value go upstream exactly as the client
/// wrote them, and the members come in the order the SPEC gives.
fn request_body(
    settings: &LangGraphConfig,
    request: &HandoffData,
    notes: &mut Vec<String>,
) -> Vec<u8> {
    let assistant = request
        .assistant_id
        .as_deref()
        .unwrap_or(&settings.assistant_id);
    let mut body = Vec::with_capacity(256 + request.prompt.len());
    body.extend_from_slice(b"{\"assistant_id\":");
    push_json_string(&mut body, assistant);
    body.extend_from_slice(b",\"input\":{\"messages\":[");
    push_messages(&mut body, request);
    body.push(b']');
    for (key, value) in &request.langgraph_input {
        if key == "messages" {
            notes.push(
                "langgraph_input.messages was ignored: the run's messages come from the \
                 handoff's messages or prompt"
                    .to_string(),
            );
            continue;
        }
        body.push(b',');
        push_json_string(&mut body, key);
        body.push(b':');
        body.extend_from_slice(value.get().as_bytes());
    }
    body.extend_from_slice(b"},\"stream_mode\":[");
    push_json_string(&mut body, &settings.stream_mode);
    body.extend_from_slice(b"],\"stream_subgraphs\":false");
    // The client left: stop the run rather than pay for an answer nobody reads.
    body.extend_from_slice(b",\"on_disconnect\":\"cancel\"");
    if request.thread_id.is_none() {
        // A stateless run's thread is of no use to anyone afterwards.
        body.extend_from_slice(b",\"on_completion\":\"delete\"");
    }
    body.push(b'}');
    body
}

/// The conversation as LangGraph messages, `{"type":…,"content":…}` each; one human message
/// when the handoff has none. A content-parts array is the message's content list, as given.
fn push_messages(body: &mut Vec<u8>, request: &HandoffData) {
    if request.messages.is_empty() {
        let prompt = match request.prompt.as_str() {
            "" => FALLBACK_PROMPT,
            prompt => prompt,
        };
        push_message(body, "human", &Content::from(prompt));
        return;
    }
    for (i, message) in request.messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        push_message(body, message_type(&message.role), &message.content);
    }
}

fn push_message(body: &mut Vec<u8>, kind: &str, content: &Content) {
    body.extend_from_slice(b"{\"type\":");
    push_json_string(body, kind);
    body.extend_from_slice(b",\"content\":");
    match content {
        Content::Text(text) => push_json_string(body, text),
        Content::Parts(parts) => body.extend_from_slice(parts.json().as_bytes()),
    }
    body.push(b'}');
}

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
mod request_tests;
#[cfg(test)]
mod stream_tests;
