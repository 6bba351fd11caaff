//! The openai backend: any OpenAI-compatible chat-completions API, streamed (SPEC §4.3).
//!
//! [`build_request`] writes `POST {base}/chat/completions` with a JSON body; [`translator`]
//! reads the streamed chunks back.

mod translate;

use std::time::Instant;

use super::upstream::{
    request_error, Origin, Output, Target, Translator, UpstreamRequest, FALLBACK_PROMPT, USER_AGENT,
};
use super::{Accepted, Backend, BackendError, Start};
use crate::attachments::Flavour;
use crate::config::{Config, OpenAiConfig};
use crate::handoff::{Content, HandoffData};
use crate::http::{build_request as build_http_request, RequestError};
use crate::sse::push_json_string;

pub use translate::OpenAiTranslator;

const ENDPOINT: &str = "/chat/completions";

pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    let settings = &config.backend.openai;
    let origin = Origin::parse(&settings.api_base, settings.api_socket.clone())
        .map_err(|e| BackendError::Setup(format!("backend.openai.api_base: {e}")))?;
    Ok(Box::new(OpenAi {
        targets: [Target {
            origin,
            ca_file: settings.ca_file.clone(),
            insecure_ssl: settings.insecure_ssl,
        }],
        settings: settings.clone(),
        default_model: config.backend.default_model.clone(),
    }))
}

struct OpenAi {
    /// One: the API the settings name.
    targets: [Target; 1],
    settings: OpenAiConfig,
    default_model: String,
}

impl Backend for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn targets(&self) -> &[Target] {
        &self.targets
    }

    fn accept(&self, _request: &HandoffData) -> Result<Accepted, BackendError> {
        Ok(Accepted {
            profile: None,
            flavour: Flavour::OpenAi,
        })
    }

    fn start(&mut self, request: HandoffData, _now: Instant) -> Result<Start, BackendError> {
        let call = upstream_request(
            &self.settings,
            &self.default_model,
            &self.targets[0].origin,
            &request,
        )
        .map_err(request_error)?;
        Ok(Start::Upstream(call))
    }
}

/// The request and translator for one handoff; its `target` is 0, the one API.
pub fn upstream_request(
    config: &OpenAiConfig,
    default_model: &str,
    origin: &Origin,
    request: &HandoffData,
) -> Result<UpstreamRequest, RequestError> {
    Ok(UpstreamRequest {
        request: build_request(config, default_model, origin, request)?,
        target: 0,
        output: Output::Translate(translator()),
        notes: Vec::new(),
    })
}

/// The complete HTTP request for one handoff. Fails only when a header value would need a line
/// break: a handoff's `test_pattern` (the client's fault: 400) or the configured key (ours: 500).
pub fn build_request(
    config: &OpenAiConfig,
    default_model: &str,
    origin: &Origin,
    request: &HandoffData,
) -> Result<Vec<u8>, RequestError> {
    let body = request_body(default_model, request);
    let authorization = config
        .api_key
        .as_deref()
        .filter(|key| !key.is_empty())
        .map(|key| format!("Bearer {key}"));
    let mut headers: Vec<(&str, &str)> = vec![
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
        ("User-Agent", USER_AGENT),
    ];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization));
    }
    if let Some(pattern) = request.test_pattern.as_deref().filter(|p| !p.is_empty()) {
        headers.push(("X-Test-Pattern", pattern));
    }
    build_http_request(
        "POST",
        &origin.join(ENDPOINT),
        &origin.host_header(),
        &headers,
        &body,
    )
}

/// A fresh translator for one response.
pub fn translator() -> Box<dyn Translator> {
    Box::new(OpenAiTranslator)
}

/// `{"model":…,"messages":[…],"stream":true}` plus `max_tokens` when the handoff gave one.
fn request_body(default_model: &str, request: &HandoffData) -> Vec<u8> {
    let model = request
        .model
        .as_deref()
        .filter(|model| !model.is_empty())
        .unwrap_or(default_model);
    let mut body = Vec::with_capacity(128 + request.prompt.len());
    body.extend_from_slice(b"{\"model\":");
    push_json_string(&mut body, model);
    body.extend_from_slice(b",\"messages\":[");
    if request.messages.is_empty() {
        let prompt = match request.prompt.as_str() {
            "" => FALLBACK_PROMPT,
            prompt => prompt,
        };
        push_message(&mut body, "user", &Content::from(prompt));
    } else {
        for (i, message) in request.messages.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            push_message(&mut body, &message.role, &message.content);
        }
    }
    body.extend_from_slice(b"],\"stream\":true");
    if let Some(max_tokens) = request.max_tokens {
        body.extend_from_slice(format!(",\"max_tokens\":{max_tokens}").as_bytes());
    }
    body.push(b'}');
    body
}

/// One message; a content-parts array goes upstream exactly as the client wrote it.
fn push_message(body: &mut Vec<u8>, role: &str, content: &Content) {
    body.extend_from_slice(b"{\"role\":");
    push_json_string(body, role);
    body.extend_from_slice(b",\"content\":");
    match content {
        Content::Text(text) => push_json_string(body, text),
        Content::Parts(parts) => body.extend_from_slice(parts.json().as_bytes()),
    }
    body.push(b'}');
}

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod stream_tests;
