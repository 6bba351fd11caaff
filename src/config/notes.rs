//! What to tell the operator once logging is up: settings accepted for compatibility that do
//! nothing, and choices that weaken security or will make requests fail. Notes are built from
//! the configuration alone and never quote a secret.

use std::fmt;

use super::validate::KNOWN_STREAM_MODES;
use super::Config;

/// One line for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupNote {
    /// `Info` for facts, `Warn` for what the operator should change.
    pub level: log::Level,
    pub message: String,
}

impl StartupNote {
    fn info(message: impl Into<String>) -> StartupNote {
        StartupNote {
            level: log::Level::Info,
            message: message.into(),
        }
    }

    fn warn(message: impl Into<String>) -> StartupNote {
        StartupNote {
            level: log::Level::Warn,
            message: message.into(),
        }
    }
}

impl fmt::Display for StartupNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Config {
    /// Notes to log once, at start-up, each at its level (`log::log!(note.level, "{note}")`).
    pub fn startup_notes(&self) -> Vec<StartupNote> {
        let mut notes = Vec::new();
        if !self.go_runtime_vars.is_empty() {
            let verbs = if self.go_runtime_vars.len() == 1 {
                "is set but has"
            } else {
                "are set but have"
            };
            notes.push(StartupNote::info(format!(
                "{} {verbs} no effect: this daemon has no garbage collector; \
                 server.mem_limit (-memlimit) is a budget for connection buffers here",
                self.go_runtime_vars.join(" and ")
            )));
        }
        if let Some(percent) = self.server.gc_percent {
            notes.push(StartupNote::warn(format!(
                "server.gc_percent ({percent}) has no effect: this daemon has no garbage collector; \
                 bound its memory with server.mem_limit"
            )));
        }
        if self.server.pprof_addr.is_some() {
            notes.push(StartupNote::warn(
                "server.pprof_addr has no effect: Go's pprof profiler does not exist here; profile with \
                 perf or similar",
            ));
        }
        self.http2_note(&mut notes);
        self.stream_mode_notes(&mut notes);
        self.upstream_notes(&mut notes);
        notes
    }

    fn http2_note(&self, notes: &mut Vec<StartupNote>) {
        let langgraph = &self.backend.langgraph;
        let mut keys: Vec<String> = [
            (
                "backend.openai.http2_enabled",
                self.backend.openai.http2_enabled,
            ),
            ("backend.langgraph.http2_enabled", langgraph.http2_enabled),
        ]
        .into_iter()
        .filter(|&(_, on)| on)
        .map(|(key, _)| key.to_string())
        .collect();
        keys.extend(
            langgraph
                .profiles
                .iter()
                .filter(|(_, spec)| spec.http2_enabled == Some(true))
                .map(|(name, _)| format!("backend.langgraph.profiles.{name}.http2_enabled")),
        );
        if !keys.is_empty() {
            let verb = if keys.len() == 1 { "has" } else { "have" };
            notes.push(StartupNote::warn(format!(
                "{} {verb} no effect: the daemon speaks HTTP/1.1 to upstreams, with a keep-alive pool",
                keys.join(" and ")
            )));
        }
    }

    /// A mode LangGraph may not know is a warning, not an error (SPEC §5).
    fn stream_mode_notes(&self, notes: &mut Vec<StartupNote>) {
        let langgraph = &self.backend.langgraph;
        let written = std::iter::once((
            "backend.langgraph.stream_mode".to_string(),
            Some(&langgraph.stream_mode),
        ))
        .chain(langgraph.profiles.iter().map(|(name, spec)| {
            (
                format!("backend.langgraph.profiles.{name}.stream_mode"),
                spec.stream_mode.as_ref(),
            )
        }));
        for (key, mode) in written {
            if let Some(mode) = mode.filter(|mode| !KNOWN_STREAM_MODES.contains(&mode.as_str())) {
                notes.push(StartupNote::warn(format!(
                    "{key} {mode:?} is not a LangGraph stream mode we know ({}); the server may refuse it",
                    KNOWN_STREAM_MODES.join(", ")
                )));
            }
        }
    }

    /// Unverified TLS and missing keys, for the upstream backends handoffs can reach.
    fn upstream_notes(&self, notes: &mut Vec<StartupNote>) {
        let backend = &self.backend;
        let mut insecure: Vec<(String, &str)> = Vec::new();
        for name in backend.allowed_backends() {
            let (key_var, api_key, insecure_ssl) = match name {
                "openai" => (
                    "OPENAI_API_KEY",
                    &backend.openai.api_key,
                    backend.openai.insecure_ssl,
                ),
                "langgraph" => (
                    "LANGGRAPH_API_KEY",
                    &backend.langgraph.api_key,
                    backend.langgraph.insecure_ssl,
                ),
                "typing" if backend.typing.use_api && backend.openai.api_key.is_none() => {
                    notes.push(StartupNote::warn(
                        "backend.typing.use_api is on but no OpenAI key is set: the typing backend types \
                         fortune quotes; set OPENAI_API_KEY (or backend.openai.api_key)",
                    ));
                    continue;
                }
                _ => continue,
            };
            if insecure_ssl {
                insecure.push((format!("backend.{name}.insecure_ssl"), name));
            }
            if name == "langgraph" {
                insecure.extend(
                    backend
                        .langgraph
                        .profiles
                        .iter()
                        .filter(|(_, spec)| spec.insecure_ssl == Some(true))
                        .map(|(profile, _)| {
                            (
                                format!("backend.langgraph.profiles.{profile}.insecure_ssl"),
                                name,
                            )
                        }),
                );
            }
            if api_key.is_none() {
                notes.push(StartupNote::warn(format!(
                    "no API key for the {name} backend: set {key_var} (or backend.{name}.api_key); \
                     requests go out without one"
                )));
            }
        }
        for (key, name) in insecure {
            notes.push(StartupNote::warn(format!(
                "INSECURE: {key} is on: the {name} upstream's TLS certificate is NOT verified, so \
                 anyone on the path can read prompts, answers and the API key"
            )));
        }
    }
}
