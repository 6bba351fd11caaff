//! The openai backend: any OpenAI-compatible chat-completions API, streamed (SPEC §4.3).
//!
//! [`build_request`] writes `POST {base}/chat/completions` with a JSON body; [`translator`]
//! reads the streamed chunks back.

mod translate;

use std::time::Instant;

use super::upstream::{
    push_messages, request_error, Origin, Output, RequestBytes, Roles, Target, Translator,
    UpstreamRequest, USER_AGENT,
};
use super::{Accepted, Attached, Backend, BackendError, Start};
use crate::attachments::{BodyPlan, Flavour};
use crate::config::{Config, OpenAiConfig};
use crate::handoff::HandoffData;
use crate::http::RequestError;

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

    fn start(
        &mut self,
        request: HandoffData,
        attached: Option<Attached>,
        _now: Instant,
    ) -> Result<Start, BackendError> {
        let call = upstream_request(
            &self.settings,
            &self.default_model,
            &self.targets[0].origin,
            &request,
            attached.as_ref(),
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
    attached: Option<&Attached>,
) -> Result<UpstreamRequest, RequestError> {
    let RequestBytes { bytes, streamed } =
        build_request(config, default_model, origin, request, attached)?;
    Ok(UpstreamRequest {
        request: bytes,
        body: streamed,
        target: 0,
        output: Output::Translate(translator()),
        notes: Vec::new(),
    })
}

/// The HTTP request for one handoff. Fails only when a header value would need a line break:
/// a handoff's `test_pattern` (the client's fault: 400) or the configured key (ours: 500).
pub fn build_request(
    config: &OpenAiConfig,
    default_model: &str,
    origin: &Origin,
    request: &HandoffData,
    attached: Option<&Attached>,
) -> Result<RequestBytes, RequestError> {
    let body = request_body(default_model, request, attached);
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
    RequestBytes::post_json(
        &origin.join(ENDPOINT),
        &origin.host_header(),
        &headers,
        body,
    )
}

/// A fresh translator for one response.
pub fn translator() -> Box<dyn Translator> {
    Box::new(OpenAiTranslator)
}

/// `{"model":…,"messages":[…],"stream":true}` plus `max_tokens` when the handoff gave one.
fn request_body(
    default_model: &str,
    request: &HandoffData,
    attached: Option<&Attached>,
) -> BodyPlan {
    let model = request
        .model
        .as_deref()
        .filter(|model| !model.is_empty())
        .unwrap_or(default_model);
    let mut body = BodyPlan::new();
    body.push(b"{\"model\":");
    body.push_json_string(model);
    body.push(b",\"messages\":[");
    push_messages(&mut body, request, attached, &ROLES);
    body.push(b"],\"stream\":true");
    if let Some(max_tokens) = request.max_tokens {
        body.push(format!(",\"max_tokens\":{max_tokens}").as_bytes());
    }
    body.push(b"}");
    body
}

/// OpenAI names roles as the handoff does.
const ROLES: Roles = Roles {
    key: "role",
    name: |role| role,
};

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod stream_tests;
