//! SIGHUP (SPEC §6.2): what a freshly loaded configuration changes, and the configuration a
//! reload applies. Keys are reported by name only, never with their values (a value may be an
//! API key).
//!
//! Keys that shape the listener, the threads or the backends set up at start-up need a
//! restart: a reload names them in a warning and keeps their running values. Every other key
//! applies to connections accepted from then on.

use std::collections::BTreeMap;

use super::{
    BackendConfig, Config, LangGraphConfig, LangGraphProfileSpec, LoggingConfig, MetricsConfig,
    MockConfig, OpenAiConfig, ServerConfig, TypingConfig, UpstreamTimeouts,
};

/// What a reload does.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadPlan {
    /// Changed keys that take effect for connections accepted from now on, in key order.
    pub applied: Vec<String>,
    /// Changed keys that need a restart; `config` keeps their running values.
    pub needs_restart: Vec<String>,
    /// The configuration to run with from now on: the loaded one, except for restart-only keys.
    pub config: Config,
}

/// Keys (or, ending in `.`, sections) that only a restart changes.
const RESTART_ONLY: &[&str] = &[
    "server.socket_path",
    "server.socket_mode",
    "server.socket_type",
    "server.workers",
    "backend.provider",
    "backend.allowed",
    "metrics.",
    "-benchmark",
];

fn needs_restart(key: &str) -> bool {
    RESTART_ONLY
        .iter()
        .any(|restart| match restart.strip_suffix('.') {
            Some(section) => key
                .strip_prefix(section)
                .is_some_and(|rest| rest.starts_with('.')),
            None => key == *restart,
        })
}

/// Compares the `running` configuration with a `loaded` one (already validated) and builds the
/// configuration to apply.
pub fn plan_reload(running: &Config, loaded: Config) -> ReloadPlan {
    let (needs_restart, applied): (Vec<String>, Vec<String>) = changed_keys(running, &loaded)
        .into_iter()
        .partition(|key| needs_restart(key));
    let mut config = loaded;
    config.server.socket_path = running.server.socket_path.clone();
    config.server.socket_mode = running.server.socket_mode;
    config.server.socket_type = running.server.socket_type;
    config.server.workers = running.server.workers;
    config.backend.provider = running.backend.provider.clone();
    config.backend.allowed = running.backend.allowed.clone();
    config.metrics = running.metrics.clone();
    config.benchmark = running.benchmark;
    ReloadPlan {
        applied,
        needs_restart,
        config,
    }
}

/// Collects the names of changed keys.
struct Changes(Vec<String>);

impl Changes {
    fn check<T: PartialEq>(&mut self, key: &str, old: &T, new: &T) {
        if old != new {
            self.0.push(key.to_string());
        }
    }
}

/// Every key whose value differs, by dotted name. Each struct is destructured without `..`, so
/// a new setting fails to compile until it is compared here.
fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let mut changes = Changes(Vec::new());
    let Config {
        server,
        backend,
        metrics,
        logging,
        benchmark,
        // Not a key: the environment a process sees does not change.
        go_runtime_vars: _,
        config_file: _,
    } = old;
    server_changes(&mut changes, server, &new.server);
    backend_changes(&mut changes, backend, &new.backend);
    let MetricsConfig {
        enabled,
        listen_addr,
    } = metrics;
    changes.check("metrics.enabled", enabled, &new.metrics.enabled);
    changes.check("metrics.listen_addr", listen_addr, &new.metrics.listen_addr);
    let LoggingConfig { level, format } = logging;
    changes.check("logging.level", level, &new.logging.level);
    changes.check("logging.format", format, &new.logging.format);
    changes.check("-benchmark", benchmark, &new.benchmark);
    changes.0
}

fn server_changes(changes: &mut Changes, old: &ServerConfig, new: &ServerConfig) {
    let ServerConfig {
        socket_path,
        socket_mode,
        socket_type,
        max_connections,
        max_stream_duration,
        max_handoff_bytes,
        handoff_timeout,
        write_timeout,
        shutdown_timeout,
        mem_limit,
        pprof_addr,
        gc_percent,
        data_dir,
        max_attachment_bytes,
        data_max_age,
        workers,
        resume_window,
        resume_buffer_bytes,
    } = old;
    changes.check("server.socket_path", socket_path, &new.socket_path);
    changes.check("server.socket_mode", socket_mode, &new.socket_mode);
    changes.check("server.socket_type", socket_type, &new.socket_type);
    changes.check(
        "server.max_connections",
        max_connections,
        &new.max_connections,
    );
    changes.check(
        "server.max_stream_duration_ms",
        max_stream_duration,
        &new.max_stream_duration,
    );
    changes.check(
        "server.max_handoff_bytes",
        max_handoff_bytes,
        &new.max_handoff_bytes,
    );
    changes.check(
        "server.handoff_timeout_ms",
        handoff_timeout,
        &new.handoff_timeout,
    );
    changes.check("server.write_timeout_ms", write_timeout, &new.write_timeout);
    changes.check(
        "server.shutdown_timeout_ms",
        shutdown_timeout,
        &new.shutdown_timeout,
    );
    changes.check("server.mem_limit", mem_limit, &new.mem_limit);
    changes.check("server.pprof_addr", pprof_addr, &new.pprof_addr);
    changes.check("server.gc_percent", gc_percent, &new.gc_percent);
    changes.check("server.data_dir", data_dir, &new.data_dir);
    changes.check(
        "server.max_attachment_bytes",
        max_attachment_bytes,
        &new.max_attachment_bytes,
    );
    changes.check("server.data_max_age_ms", data_max_age, &new.data_max_age);
    changes.check("server.workers", workers, &new.workers);
    changes.check("server.resume_window_ms", resume_window, &new.resume_window);
    changes.check(
        "server.resume_buffer_bytes",
        resume_buffer_bytes,
        &new.resume_buffer_bytes,
    );
}

fn backend_changes(changes: &mut Changes, old: &BackendConfig, new: &BackendConfig) {
    let BackendConfig {
        provider,
        allowed,
        default_model,
        openai,
        langgraph,
        mock,
        typing,
        upstream,
    } = old;
    changes.check("backend.provider", provider, &new.provider);
    changes.check("backend.allowed", allowed, &new.allowed);
    changes.check("backend.default_model", default_model, &new.default_model);

    let OpenAiConfig {
        api_key,
        api_base,
        api_socket,
        http2_enabled,
        insecure_ssl,
        ca_file,
    } = openai;
    let new_openai = &new.openai;
    changes.check("backend.openai.api_key", api_key, &new_openai.api_key);
    changes.check("backend.openai.api_base", api_base, &new_openai.api_base);
    changes.check(
        "backend.openai.api_socket",
        api_socket,
        &new_openai.api_socket,
    );
    changes.check(
        "backend.openai.http2_enabled",
        http2_enabled,
        &new_openai.http2_enabled,
    );
    changes.check(
        "backend.openai.insecure_ssl",
        insecure_ssl,
        &new_openai.insecure_ssl,
    );
    changes.check("backend.openai.ca_file", ca_file, &new_openai.ca_file);

    langgraph_changes(changes, langgraph, &new.langgraph);

    let MockConfig { message_delay } = mock;
    changes.check(
        "backend.mock.message_delay_ms",
        message_delay,
        &new.mock.message_delay,
    );

    let TypingConfig {
        fortune_path,
        use_api,
        default_model,
    } = typing;
    changes.check(
        "backend.typing.fortune_path",
        fortune_path,
        &new.typing.fortune_path,
    );
    changes.check("backend.typing.use_api", use_api, &new.typing.use_api);
    changes.check(
        "backend.typing.default_model",
        default_model,
        &new.typing.default_model,
    );

    let UpstreamTimeouts {
        connect_timeout,
        response_header_timeout,
        idle_gap_timeout,
        pool_idle_timeout,
        pool_max_idle_per_origin,
        sse_max_line_bytes,
    } = upstream;
    let new_upstream = &new.upstream;
    for (key, old, new) in [
        (
            "backend.upstream.connect_timeout_ms",
            connect_timeout,
            &new_upstream.connect_timeout,
        ),
        (
            "backend.upstream.response_header_timeout_ms",
            response_header_timeout,
            &new_upstream.response_header_timeout,
        ),
        (
            "backend.upstream.idle_gap_timeout_ms",
            idle_gap_timeout,
            &new_upstream.idle_gap_timeout,
        ),
        (
            "backend.upstream.pool_idle_timeout_ms",
            pool_idle_timeout,
            &new_upstream.pool_idle_timeout,
        ),
    ] {
        changes.check(key, old, new);
    }
    changes.check(
        "backend.upstream.pool_max_idle_per_origin",
        pool_max_idle_per_origin,
        &new_upstream.pool_max_idle_per_origin,
    );
    changes.check(
        "backend.upstream.sse_max_line_bytes",
        sse_max_line_bytes,
        &new_upstream.sse_max_line_bytes,
    );
}

fn langgraph_changes(changes: &mut Changes, old: &LangGraphConfig, new: &LangGraphConfig) {
    let LangGraphConfig {
        api_key,
        api_base,
        api_socket,
        assistant_id,
        stream_mode,
        http2_enabled,
        insecure_ssl,
        ca_file,
        content_format,
        output,
        profiles,
    } = old;
    changes.check("backend.langgraph.api_key", api_key, &new.api_key);
    changes.check("backend.langgraph.api_base", api_base, &new.api_base);
    changes.check("backend.langgraph.api_socket", api_socket, &new.api_socket);
    changes.check(
        "backend.langgraph.assistant_id",
        assistant_id,
        &new.assistant_id,
    );
    changes.check(
        "backend.langgraph.stream_mode",
        stream_mode,
        &new.stream_mode,
    );
    changes.check(
        "backend.langgraph.http2_enabled",
        http2_enabled,
        &new.http2_enabled,
    );
    changes.check(
        "backend.langgraph.insecure_ssl",
        insecure_ssl,
        &new.insecure_ssl,
    );
    changes.check("backend.langgraph.ca_file", ca_file, &new.ca_file);
    changes.check(
        "backend.langgraph.content_format",
        content_format,
        &new.content_format,
    );
    changes.check("backend.langgraph.output", output, &new.output);
    profile_changes(changes, profiles, &new.profiles);
}

/// A profile added or removed is named whole; a profile kept is compared key by key, as
/// written (a change to the default profile is reported under its own key).
fn profile_changes(
    changes: &mut Changes,
    old: &BTreeMap<String, LangGraphProfileSpec>,
    new: &BTreeMap<String, LangGraphProfileSpec>,
) {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let prefix = format!("backend.langgraph.profiles.{name}");
        let (Some(old), Some(new)) = (old.get(name), new.get(name)) else {
            changes.0.push(prefix);
            continue;
        };
        let LangGraphProfileSpec {
            api_key,
            api_base,
            api_socket,
            assistant_id,
            stream_mode,
            content_format,
            output,
            http2_enabled,
            insecure_ssl,
            ca_file,
        } = old;
        changes.check(&format!("{prefix}.api_key"), api_key, &new.api_key);
        changes.check(&format!("{prefix}.api_base"), api_base, &new.api_base);
        changes.check(&format!("{prefix}.api_socket"), api_socket, &new.api_socket);
        changes.check(
            &format!("{prefix}.assistant_id"),
            assistant_id,
            &new.assistant_id,
        );
        changes.check(
            &format!("{prefix}.stream_mode"),
            stream_mode,
            &new.stream_mode,
        );
        changes.check(
            &format!("{prefix}.content_format"),
            content_format,
            &new.content_format,
        );
        changes.check(&format!("{prefix}.output"), output, &new.output);
        changes.check(
            &format!("{prefix}.http2_enabled"),
            http2_enabled,
            &new.http2_enabled,
        );
        changes.check(
            &format!("{prefix}.insecure_ssl"),
            insecure_ssl,
            &new.insecure_ssl,
        );
        changes.check(&format!("{prefix}.ca_file"), ca_file, &new.ca_file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn nothing_changed_nothing_to_do() {
        let running = Config::default();
        let plan = plan_reload(&running, Config::default());
        assert!(plan.applied.is_empty() && plan.needs_restart.is_empty());
        assert_eq!(plan.config, running);
    }

    #[test]
    fn applied_keys_take_their_new_values() {
        let running = Config::default();
        let mut loaded = Config::default();
        loaded.logging.level = log::LevelFilter::Debug;
        loaded.server.max_connections = 10;
        loaded.server.data_dir = None;
        loaded.backend.openai.api_key = Some("sk-new-secret".into());
        loaded.backend.langgraph.api_base = "http://127.0.0.1:1".into();
        loaded.backend.upstream.connect_timeout = Duration::from_secs(1);
        let plan = plan_reload(&running, loaded.clone());
        assert_eq!(
            plan.applied,
            [
                "server.max_connections",
                "server.data_dir",
                "backend.openai.api_key",
                "backend.langgraph.api_base",
                "backend.upstream.connect_timeout_ms",
                "logging.level",
            ]
        );
        assert!(plan.needs_restart.is_empty());
        assert_eq!(plan.config, loaded);
        let listed = format!("{:?} {:?}", plan.applied, plan.needs_restart);
        assert!(!listed.contains("secret"), "names only: {listed}");
    }

    #[test]
    fn restart_only_keys_are_named_and_keep_their_running_values() {
        let running = Config::default();
        let mut loaded = Config::default();
        loaded.server.socket_path = PathBuf::from("/run/other.sock");
        loaded.server.socket_mode = 0o600;
        loaded.server.socket_type = super::super::SocketType::SeqPacket;
        loaded.server.workers = NonZeroUsize::new(1);
        loaded.backend.provider = "openai".into();
        loaded.backend.allowed = vec!["typing".into()];
        loaded.metrics.listen_addr = "127.0.0.1:9999".into();
        loaded.metrics.enabled = false;
        loaded.server.write_timeout = Duration::from_secs(7);
        let plan = plan_reload(&running, loaded);
        assert_eq!(
            plan.needs_restart,
            [
                "server.socket_path",
                "server.socket_mode",
                "server.socket_type",
                "server.workers",
                "backend.provider",
                "backend.allowed",
                "metrics.enabled",
                "metrics.listen_addr",
            ]
        );
        assert_eq!(plan.applied, ["server.write_timeout_ms"]);
        let mut expected = Config::default();
        expected.server.write_timeout = Duration::from_secs(7);
        assert_eq!(plan.config, expected);
    }

    #[test]
    fn profiles_are_compared_by_name_and_key() {
        let mut running = Config::default();
        let profiles = &mut running.backend.langgraph.profiles;
        profiles.insert(
            "kept".into(),
            LangGraphProfileSpec {
                api_key: Some("old".into()),
                ..LangGraphProfileSpec::default()
            },
        );
        profiles.insert("dropped".into(), LangGraphProfileSpec::default());
        let mut loaded = running.clone();
        let profiles = &mut loaded.backend.langgraph.profiles;
        profiles.remove("dropped");
        profiles.insert("added".into(), LangGraphProfileSpec::default());
        if let Some(kept) = profiles.get_mut("kept") {
            kept.api_key = Some("new".into());
            kept.api_socket = Some(None);
        }
        let plan = plan_reload(&running, loaded.clone());
        assert_eq!(
            plan.applied,
            [
                "backend.langgraph.profiles.added",
                "backend.langgraph.profiles.dropped",
                "backend.langgraph.profiles.kept.api_key",
                "backend.langgraph.profiles.kept.api_socket",
            ]
        );
        assert_eq!(plan.config, loaded);
    }

    #[test]
    fn restart_sections_match_whole_segments() {
        assert!(needs_restart("metrics.enabled"));
        assert!(!needs_restart("metrics"));
        assert!(!needs_restart("metricsx.enabled"));
        assert!(!needs_restart("server.socket_path_extra"));
    }
}
