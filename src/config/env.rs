//! Environment variables (SPEC §4.3, §4.4): they override the file and are overridden by flags.
//! A variable set to the empty string counts as unset, as it did for the Go daemon.
//! `SSL_CERT_FILE` is not read here: the TLS code reads it where it loads the CA bundle.

use super::setting::{self, Setter};
use super::{Config, ConfigError};

/// Variables that hold secrets: their values are never quoted, even in errors (their setters
/// cannot fail, so this is a second line of defence).
const SECRET_VARS: &[&str] = &["OPENAI_API_KEY", "LANGGRAPH_API_KEY"];

pub const VARS: &[(&str, Setter)] = &[
    ("OPENAI_API_BASE", setting::openai_api_base),
    ("OPENAI_API_KEY", setting::openai_api_key),
    ("OPENAI_API_SOCKET", setting::openai_api_socket),
    ("OPENAI_INSECURE_SSL", setting::openai_insecure_ssl),
    ("OPENAI_HTTP2_ENABLED", setting::openai_http2_enabled),
    ("LANGGRAPH_API_BASE", setting::langgraph_api_base),
    ("LANGGRAPH_API_KEY", setting::langgraph_api_key),
    ("LANGGRAPH_API_SOCKET", setting::langgraph_api_socket),
    ("LANGGRAPH_ASSISTANT_ID", setting::langgraph_assistant_id),
    ("LANGGRAPH_STREAM_MODE", setting::langgraph_stream_mode),
    ("LANGGRAPH_HTTP2_ENABLED", setting::langgraph_http2_enabled),
    ("LANGGRAPH_INSECURE_SSL", setting::langgraph_insecure_ssl),
];

pub fn apply(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for &(var, set) in VARS {
        let Some(value) = env(var).filter(|value| !value.is_empty()) else {
            continue;
        };
        set(config, &value).map_err(|message| ConfigError::Env {
            var,
            value: Some(value.clone()).filter(|_| !SECRET_VARS.contains(&var)),
            message,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_vars(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| value.to_string())
        };
        let mut config = Config::default();
        apply(&mut config, &lookup).map(|()| config)
    }

    #[test]
    fn every_variable_sets_its_setting() {
        let config = apply_vars(&[
            ("OPENAI_API_BASE", "http://127.0.0.1:8080/v1"),
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_API_SOCKET", "/run/openai.sock"),
            ("OPENAI_INSECURE_SSL", "true"),
            ("OPENAI_HTTP2_ENABLED", "1"),
            ("LANGGRAPH_API_BASE", "https://lg.example/v1"),
            ("LANGGRAPH_API_KEY", "lgk-test"),
            ("LANGGRAPH_API_SOCKET", "/run/lg.sock"),
            ("LANGGRAPH_ASSISTANT_ID", "helper"),
            ("LANGGRAPH_STREAM_MODE", "messages"),
            ("LANGGRAPH_HTTP2_ENABLED", "yes"),
            ("LANGGRAPH_INSECURE_SSL", "on"),
        ])
        .expect("valid");
        let openai = &config.backend.openai;
        assert_eq!(openai.api_base, "http://127.0.0.1:8080/v1");
        assert_eq!(openai.api_key.as_deref(), Some("sk-test"));
        assert_eq!(
            openai.api_socket.as_deref(),
            Some(std::path::Path::new("/run/openai.sock"))
        );
        assert!(openai.insecure_ssl && openai.http2_enabled);
        let langgraph = &config.backend.langgraph;
        assert_eq!(langgraph.api_base, "https://lg.example/v1");
        assert_eq!(langgraph.api_key.as_deref(), Some("lgk-test"));
        assert_eq!(
            langgraph.api_socket.as_deref(),
            Some(std::path::Path::new("/run/lg.sock"))
        );
        assert_eq!(langgraph.assistant_id, "helper");
        assert_eq!(langgraph.stream_mode, "messages");
        assert!(langgraph.insecure_ssl && langgraph.http2_enabled);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars: Vec<(&str, &str)> = VARS.iter().map(|&(var, _)| (var, "")).collect();
        assert_eq!(apply_vars(&vars), Ok(Config::default()));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let error = apply_vars(&[("OPENAI_INSECURE_SSL", "maybe")]).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "environment variable OPENAI_INSECURE_SSL=\"maybe\": expected true or false (also yes/no, on/off, 1/0)"
        );
        let error = apply_vars(&[("LANGGRAPH_API_SOCKET", "lg.sock")]).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "environment variable LANGGRAPH_API_SOCKET=\"lg.sock\": must be an absolute path (starting with /)"
        );
    }
}
