//! Environment variables (SPEC §4.3, §4.4, §5): they override the file and are overridden by
//! flags. A variable set to the empty string counts as unset, as it did for the Go daemon.
//! Booleans take exactly Go's `strconv.ParseBool` words, as the Go daemon read them.
//! `SSL_CERT_FILE` is not read here: the TLS code reads it where it loads the CA bundle.

use super::setting::{self, Setter};
use super::units::parse_go_bool;
use super::{Config, ConfigError};

/// Go runtime variables an operator may carry over from the Go daemon's unit file. They do
/// nothing here; `Config::startup_notes` says so once.
const GO_RUNTIME_VARS: &[&str] = &["GOMEMLIMIT", "GOGC"];

/// How a variable's text is read before its setter sees it.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// Go's `strconv.ParseBool`: stricter than the file, which also takes YAML's yes/no/on/off.
    GoBool,
}

/// Variables that hold secrets: their values are never quoted, even in errors (their setters'
/// errors do not quote them either; this is a second line of defence).
const SECRET_VARS: &[&str] = &["OPENAI_API_KEY", "LANGGRAPH_API_KEY"];

const VARS: &[(&str, Setter, Kind)] = &[
    ("OPENAI_API_BASE", setting::openai_api_base, Kind::Text),
    ("OPENAI_API_KEY", setting::openai_api_key, Kind::Text),
    ("OPENAI_API_SOCKET", setting::openai_api_socket, Kind::Text),
    (
        "OPENAI_INSECURE_SSL",
        setting::openai_insecure_ssl,
        Kind::GoBool,
    ),
    (
        "OPENAI_HTTP2_ENABLED",
        setting::openai_http2_enabled,
        Kind::GoBool,
    ),
    (
        "LANGGRAPH_API_BASE",
        setting::langgraph_api_base,
        Kind::Text,
    ),
    ("LANGGRAPH_API_KEY", setting::langgraph_api_key, Kind::Text),
    (
        "LANGGRAPH_API_SOCKET",
        setting::langgraph_api_socket,
        Kind::Text,
    ),
    (
        "LANGGRAPH_ASSISTANT_ID",
        setting::langgraph_assistant_id,
        Kind::Text,
    ),
    (
        "LANGGRAPH_STREAM_MODE",
        setting::langgraph_stream_mode,
        Kind::Text,
    ),
    (
        "LANGGRAPH_HTTP2_ENABLED",
        setting::langgraph_http2_enabled,
        Kind::GoBool,
    ),
    (
        "LANGGRAPH_INSECURE_SSL",
        setting::langgraph_insecure_ssl,
        Kind::GoBool,
    ),
];

pub fn apply(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for &(var, set, kind) in VARS {
        let Some(value) = env(var).filter(|value| !value.is_empty()) else {
            continue;
        };
        let checked = match kind {
            Kind::Text => Ok(value.clone()),
            Kind::GoBool => parse_go_bool(&value).map(|on| on.to_string()),
        };
        checked
            .and_then(|text| set(config, &text))
            .map_err(|message| ConfigError::Env {
                var,
                value: Some(value.clone()).filter(|_| !SECRET_VARS.contains(&var)),
                message,
            })?;
    }
    config.go_runtime_vars = GO_RUNTIME_VARS
        .iter()
        .copied()
        .filter(|var| env(var).is_some_and(|value| !value.is_empty()))
        .collect();
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
            ("LANGGRAPH_HTTP2_ENABLED", "T"),
            ("LANGGRAPH_INSECURE_SSL", "TRUE"),
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
        let mut vars: Vec<(&str, &str)> = VARS.iter().map(|&(var, _, _)| (var, "")).collect();
        vars.extend([("GOMEMLIMIT", ""), ("GOGC", "")]);
        assert_eq!(apply_vars(&vars), Ok(Config::default()));
    }

    #[test]
    fn booleans_take_exactly_gos_words() {
        for (word, on) in [
            ("1", true),
            ("t", true),
            ("True", true),
            ("F", false),
            ("FALSE", false),
            ("0", false),
        ] {
            let config = apply_vars(&[("OPENAI_INSECURE_SSL", word)]).expect("valid");
            assert_eq!(config.backend.openai.insecure_ssl, on, "{word}");
        }
        for var in [
            "OPENAI_INSECURE_SSL",
            "OPENAI_HTTP2_ENABLED",
            "LANGGRAPH_HTTP2_ENABLED",
            "LANGGRAPH_INSECURE_SSL",
        ] {
            for word in ["yes", "on", "off", "tRUE", " 1"] {
                let error = apply_vars(&[(var, word)]).expect_err("refused");
                assert_eq!(
                    error.to_string(),
                    format!(
                        "environment variable {var}={word:?}: expected true or false (also 1/0, t/f, TRUE/FALSE, \
                         True/False)"
                    )
                );
            }
        }
    }

    #[test]
    fn go_runtime_variables_are_noted_not_refused() {
        let config = apply_vars(&[("GOGC", "off"), ("GOMEMLIMIT", "768MiB")]).expect("valid");
        assert_eq!(config.go_runtime_vars, ["GOMEMLIMIT", "GOGC"]);
        let config = apply_vars(&[("GOGC", "100")]).expect("valid");
        assert_eq!(config.go_runtime_vars, ["GOGC"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let error = apply_vars(&[("OPENAI_INSECURE_SSL", "maybe")]).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "environment variable OPENAI_INSECURE_SSL=\"maybe\": expected true or false (also 1/0, t/f, \
             TRUE/FALSE, True/False)"
        );
        let error = apply_vars(&[("LANGGRAPH_API_SOCKET", "lg.sock")]).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "environment variable LANGGRAPH_API_SOCKET=\"lg.sock\": must be an absolute path (starting with /)"
        );
    }
}
