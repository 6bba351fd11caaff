//! `backend.typing.use_api` (SPEC §4.2): every answer, whatever the prompt, typed from a
//! streamed chat-completions call made with the resolved openai settings (base, key, socket,
//! TLS): the request of SPEC §4.3, with the model from the handoff, else
//! `backend.typing.default_model`, else `backend.default_model`. The reactor sends and relays it
//! as it does openai's; `Output::Typed` makes it type the text as it streams in, with the
//! typist's pauses.
//!
//! With no OpenAI key the backend types fortune quotes instead, as the Go daemon did; the
//! start-up warning about it is `Config::startup_notes`'.

use super::pace::pause_after;
use crate::backends::openai;
use crate::backends::upstream::{request_error, Origin, Output, Target, UpstreamRequest};
use crate::backends::BackendError;
use crate::config::{Config, OpenAiConfig};
use crate::handoff::HandoffData;

pub struct Api {
    /// One: the API the openai settings name.
    targets: [Target; 1],
    settings: OpenAiConfig,
    /// The model when the handoff names none.
    default_model: String,
}

impl Api {
    /// The API to type from: `Some` when `use_api` is on and an OpenAI key is set.
    pub fn from_config(config: &Config) -> Result<Option<Api>, BackendError> {
        let backend = &config.backend;
        let settings = &backend.openai;
        if !backend.typing.use_api || settings.api_key.is_none() {
            return Ok(None);
        }
        let origin = Origin::parse(&settings.api_base, settings.api_socket.clone())
            .map_err(|e| BackendError::Setup(format!("backend.openai.api_base: {e}")))?;
        let default_model = backend
            .typing
            .default_model
            .clone()
            .filter(|model| !model.is_empty())
            .unwrap_or_else(|| backend.default_model.clone());
        Ok(Some(Api {
            targets: [Target {
                origin,
                ca_file: settings.ca_file.clone(),
                insecure_ssl: settings.insecure_ssl,
            }],
            settings: settings.clone(),
            default_model,
        }))
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The call for one handoff, to target 0. Attachments are not sent: typing is a local
    /// flavour, and the connection has dealt with them.
    pub fn request(&self, request: &HandoffData) -> Result<UpstreamRequest, BackendError> {
        let mut call = openai::upstream_request(
            &self.settings,
            &self.default_model,
            &self.targets[0].origin,
            request,
            None,
        )
        .map_err(request_error)?;
        call.output = Output::Typed(openai::translator(), pause_after);
        Ok(call)
    }

    /// Which API the answers come from, and the default model; never the key.
    pub fn announce(&self) {
        let socket = self
            .settings
            .api_socket
            .as_ref()
            .map(|path| path.display().to_string());
        log::info!(
            api_base = self.settings.api_base.as_str(),
            api_socket = socket.as_deref(),
            model = self.default_model.as_str();
            "typing backend types answers from the OpenAI-compatible API"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::Value;

    use crate::backends::typing::{create, pace::pause_after, text::FIXED_PROMPT};
    use crate::backends::upstream::testing::request_parts;
    use crate::backends::{Backend, Start};
    use crate::config::Config;
    use crate::handoff::HandoffData;

    fn config(use_api: bool, key: Option<&str>, typing_model: Option<&str>) -> Config {
        let mut config = Config::default();
        config.backend.provider = "typing".into();
        config.backend.default_model = "m-backend".into();
        config.backend.typing.use_api = use_api;
        config.backend.typing.default_model = typing_model.map(str::to_string);
        config.backend.openai.api_key = key.map(str::to_string);
        config.backend.openai.api_base = "https://api.example.com/v1".into();
        config
    }

    fn handoff(prompt: &str, model: Option<&str>) -> HandoffData {
        HandoffData {
            prompt: prompt.into(),
            model: model.map(str::to_string),
            ..HandoffData::default()
        }
    }

    /// The request line, headers and JSON body the backend would send, checking that the
    /// answer is typed with the typist's pauses.
    fn sent(backend: &mut dyn Backend, data: HandoffData) -> (String, Vec<String>, Value) {
        let Ok(Start::Upstream(call)) = backend.start(data, None, Instant::now()) else {
            panic!("use_api with a key calls the API");
        };
        assert_eq!(call.target, 0);
        assert!(call.body.is_none());
        let pace = call.output.pace().expect("typed output");
        for c in ['a', ' ', '.', '\n', ','] {
            assert_eq!(pace(c), pause_after(c), "{c:?}");
        }
        let (line, headers, body) = request_parts(&call.request);
        (line, headers, serde_json::from_str(&body).unwrap())
    }

    #[test]
    fn every_prompt_is_a_streamed_chat_completion_with_the_openai_settings() {
        let mut backend = create(&config(true, Some("sk-typing"), None)).unwrap();
        let targets = backend.targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].origin.host, "api.example.com");
        assert!(!targets[0].insecure_ssl);
        // The fixed prompt too: with the API on, fortune and the fixed answer are not used.
        let (line, headers, body) = sent(backend.as_mut(), handoff(FIXED_PROMPT, None));
        assert_eq!(line, "POST /v1/chat/completions HTTP/1.1");
        assert!(headers.contains(&"Authorization: Bearer sk-typing".to_string()));
        assert!(headers.contains(&"Accept: text/event-stream".to_string()));
        assert_eq!(body["stream"], true);
        assert_eq!(body["model"], "m-backend");
        assert_eq!(
            body["messages"],
            serde_json::json!([{"role": "user", "content": FIXED_PROMPT}])
        );
    }

    #[test]
    fn the_model_is_the_handoffs_else_typings_else_the_backend_default() {
        let mut typing_model = create(&config(true, Some("k"), Some("m-typing"))).unwrap();
        let (_, _, body) = sent(typing_model.as_mut(), handoff("x", Some("m-handoff")));
        assert_eq!(body["model"], "m-handoff");
        let (_, _, body) = sent(typing_model.as_mut(), handoff("x", None));
        assert_eq!(body["model"], "m-typing");
        let (_, _, body) = sent(typing_model.as_mut(), handoff("x", Some("")));
        assert_eq!(body["model"], "m-typing", "an empty model is none");
        let mut empty = config(true, Some("k"), None);
        empty.backend.typing.default_model = Some(String::new());
        let (_, _, body) = sent(create(&empty).unwrap().as_mut(), handoff("x", None));
        assert_eq!(body["model"], "m-backend");
    }

    #[test]
    fn the_socket_and_tls_settings_make_the_target() {
        let mut settings = config(true, Some("k"), None);
        settings.backend.openai.api_socket = Some("/run/llm.sock".into());
        settings.backend.openai.insecure_ssl = true;
        settings.backend.openai.ca_file = Some("/etc/llm-ca.pem".into());
        let backend = create(&settings).unwrap();
        let target = &backend.targets()[0];
        assert_eq!(
            target.origin.unix_socket.as_deref(),
            Some("/run/llm.sock".as_ref())
        );
        assert!(target.insecure_ssl);
        assert_eq!(target.ca_file.as_deref(), Some("/etc/llm-ca.pem".as_ref()));
    }

    #[test]
    fn without_a_key_or_without_use_api_it_types_fortune_quotes() {
        for settings in [
            config(true, None, Some("m")),
            config(false, Some("k"), None),
        ] {
            let mut backend = create(&settings).unwrap();
            assert!(backend.targets().is_empty());
            let started = backend.start(handoff("x", None), None, Instant::now());
            assert!(matches!(started, Ok(Start::Local(_))));
        }
    }

    #[test]
    fn a_bad_api_base_is_a_setup_error_only_when_the_api_is_used() {
        let mut settings = config(true, Some("k"), None);
        settings.backend.openai.api_base = "ftp://nope".into();
        let error = create(&settings).err().expect("refused");
        assert!(
            error.to_string().contains("backend.openai.api_base"),
            "{error}"
        );
        settings.backend.openai.api_key = None;
        assert!(create(&settings).is_ok());
    }
}
