//! `load` end to end: every source, their precedence, the example files, and start-up notes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const EXAMPLE: &str = include_str!("../../config/example.yaml");

/// Written for these tests with every construct of the Go daemon's example file: comments after
/// values, commented-out keys, `0660`, `typing: {}`, `http2_enabled: true`, provider openai.
const GO_STYLE: &str = "\
# Go daemon style configuration
server:
  socket_path: /var/run/streaming-daemon.sock
  socket_mode: 0660
  max_connections: 50000
  max_stream_duration_ms: 300000  # ms, 0 = none
  # pprof_addr: localhost:6060  # profiling
  # mem_limit: 768MiB            # soft limit

backend:
  # providers: langgraph, mock, openai, typing
  provider: openai
  default_model: gpt-4o-mini

  openai:
    # api_key: sk-...
    api_base: https://api.openai.com/v1
    # api_socket: /var/run/openai-proxy.sock  # unix socket
    http2_enabled: true
    insecure_ssl: false

  langgraph:
    # api_key: lgk_...
    api_base: https://api.langchain.com/v1
    assistant_id: agent
    stream_mode: messages-tuple
    http2_enabled: true
    insecure_ssl: false

  mock:
    message_delay_ms: 50

  typing: {}

metrics:
  enabled: true
  listen_addr: 127.0.0.1:9090

logging:
  level: info    # debug, info, warn, error
  format: text   # text, json
";

/// A file under the system temp directory, removed when dropped.
pub(super) struct TempFile(pub(super) PathBuf);

impl TempFile {
    pub(super) fn new(text: impl AsRef<[u8]>) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "streaming-daemon-config-test-{}-{}.yaml",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("temp dir is writable");
        TempFile(path)
    }

    pub(super) fn flag(&self) -> String {
        format!("-config={}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let lookup = |name: &str| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.to_string())
    };
    match load(args, &lookup)? {
        Invocation::Run(config) => Ok(config),
        other => panic!("expected a configuration, got {other:?}"),
    }
}

pub(super) fn messages(config: &Config) -> Vec<String> {
    config
        .startup_notes()
        .into_iter()
        .map(|note| note.message)
        .collect()
}

pub(super) fn from_text(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    file::apply_text(&mut config, "example.yaml", text).map(|()| config)
}

#[test]
fn our_example_loads_to_exactly_the_defaults() {
    assert_eq!(from_text(EXAMPLE), Ok(Config::default()));
}

#[test]
fn our_example_documents_every_key() {
    for (key, _) in file::KEYS {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        assert!(
            EXAMPLE.contains(&format!(" {leaf}:")),
            "config/example.yaml lacks {key}"
        );
    }
    let profiles = &EXAMPLE[EXAMPLE.find("    # profiles:").expect("a profile example")..];
    for (key, _) in profile::PROFILE_KEYS {
        assert!(
            profiles.contains(&format!("#     {key}:")),
            "config/example.yaml's profile example lacks {key}"
        );
    }
}

#[test]
fn the_go_daemons_example_loads_unchanged() {
    let config = from_text(GO_STYLE).expect("loads");
    let mut expected = Config::default();
    expected.backend.provider = "openai".to_string();
    expected.backend.openai.http2_enabled = true;
    expected.backend.langgraph.http2_enabled = true;
    assert_eq!(config, expected);
    assert_eq!(
        messages(&config),
        [
            "backend.openai.http2_enabled and backend.langgraph.http2_enabled have no effect: the daemon speaks \
             HTTP/1.1 to upstreams, with a keep-alive pool",
            "no API key for the openai backend: set OPENAI_API_KEY (or backend.openai.api_key); requests go out \
             without one",
        ]
    );
}

#[test]
fn nothing_given_means_the_defaults() {
    assert_eq!(run(&[], &[]), Ok(Config::default()));
}

#[test]
fn precedence_flags_over_env_over_file_over_defaults() {
    let file = TempFile::new("backend:\n  openai:\n    api_base: http://file.example/v1\n");
    let env = [("OPENAI_API_BASE", "http://env.example/v1")];
    let flag = "-openai-base=http://flag.example/v1";
    let base =
        |config: Result<Config, ConfigError>| config.map(|config| config.backend.openai.api_base);

    assert_eq!(
        base(run(&[&file.flag()], &[])),
        Ok("http://file.example/v1".into()),
        "file over defaults"
    );
    assert_eq!(
        base(run(&[], &env)),
        Ok("http://env.example/v1".into()),
        "env over defaults"
    );
    assert_eq!(
        base(run(&[&file.flag()], &env)),
        Ok("http://env.example/v1".into()),
        "env over file"
    );
    assert_eq!(
        base(run(&[flag], &[])),
        Ok("http://flag.example/v1".into()),
        "flag over defaults"
    );
    assert_eq!(
        base(run(&[&file.flag(), flag], &[])),
        Ok("http://flag.example/v1".into()),
        "flag over file"
    );
    assert_eq!(
        base(run(&[flag], &env)),
        Ok("http://flag.example/v1".into()),
        "flag over env"
    );
    assert_eq!(
        base(run(&[&file.flag(), flag], &env)),
        Ok("http://flag.example/v1".into()),
        "flag over both"
    );
    let empty_env = [("OPENAI_API_BASE", "")];
    assert_eq!(
        base(run(&[&file.flag()], &empty_env)),
        Ok("http://file.example/v1".into()),
        "empty env is unset"
    );
}

#[test]
fn a_file_keeps_defaults_for_keys_it_omits() {
    let file = TempFile::new("server:\n  socket_path: /run/other.sock\n");
    let config = run(&[&file.flag()], &[]).expect("loads");
    assert_eq!(
        config.server.max_connections, 50_000,
        "the Go daemon reset this to 0"
    );
    assert_eq!(config.server.socket_path, PathBuf::from("/run/other.sock"));
}

#[test]
fn flags_turn_off_what_the_file_turns_on() {
    let file = TempFile::new("metrics:\n  enabled: true\n  listen_addr: 127.0.0.1:9999\n");
    let config = run(&[&file.flag(), "-metrics-addr="], &[]).expect("loads");
    assert!(!config.metrics.enabled);
}

#[test]
fn help_and_version() {
    let load_args = |args: &[&str]| load(args.iter().map(OsString::from).collect(), &|_| None);
    match load_args(&["-help"]) {
        Ok(Invocation::Help(text)) => assert!(text.starts_with("Usage: streaming-daemon")),
        other => panic!("{other:?}"),
    }
    match load_args(&["-version", "-config=/nonexistent.yaml"]) {
        Ok(Invocation::Version(text)) => assert_eq!(
            text,
            format!("streaming-daemon {}", env!("CARGO_PKG_VERSION"))
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_error_path_has_one_clear_message() {
    let bad_key = TempFile::new("server:\n  socket_path: /run/x.sock\n  max_conections: 10\n");
    let no_metrics_address = TempFile::new("metrics:\n  listen_addr: ''\n");
    let bad_syntax = TempFile::new("server:\n  socket_path: [/a, /b\n");
    let a_list = TempFile::new("server:\n  socket_path: [/a, /b]\n");
    // (arguments, environment, the whole message)
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            vec![bad_key.flag()],
            vec![],
            format!(
                "{}:3:3: server.max_conections: unknown key; did you mean server.max_connections?",
                bad_key.0.display()
            ),
        ),
        (
            vec![bad_syntax.flag()],
            vec![],
            format!(
                "{}:2:16: this flow collection does not close on its line; write it on one line, or use one \
                 `key: value` or `- item` per line",
                bad_syntax.0.display()
            ),
        ),
        (
            vec![a_list.flag()],
            vec![],
            format!(
                "{}:2:16: server.socket_path: expected a single value, found a list",
                a_list.0.display()
            ),
        ),
        (
            vec!["-config=/nonexistent/streaming-daemon.yaml".into()],
            vec![],
            "cannot read the configuration file /nonexistent/streaming-daemon.yaml: No such file or directory (os \
             error 2); check the -config path"
                .into(),
        ),
        (
            vec![no_metrics_address.flag()],
            vec![],
            "metrics are enabled but metrics.listen_addr is empty; set an address such as 127.0.0.1:9090, or disable \
             metrics (metrics.enabled: false or -metrics-addr=)"
                .into(),
        ),
        (
            vec![],
            vec![("LANGGRAPH_API_BASE", "lg.example")],
            "environment variable LANGGRAPH_API_BASE=\"lg.example\": must be a URL starting with http:// or https:// \
             and a host"
                .into(),
        ),
        (
            vec!["-data-dir=relative".into()],
            vec![],
            "invalid value \"relative\" for flag -data-dir: must be an absolute path (starting with /)".into(),
        ),
        (
            vec![],
            vec![("OPENAI_HTTP2_ENABLED", "yes")],
            "environment variable OPENAI_HTTP2_ENABLED=\"yes\": expected true or false (also 1/0, t/f, TRUE/FALSE, \
             True/False)"
                .into(),
        ),
    ];
    for (args, vars, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let error = run(&args, &vars).expect_err("refused");
        assert_eq!(error.to_string(), expected);
        assert!(!error.to_string().contains('\n'), "one line: {error}");
    }
}

#[test]
fn a_bad_flag_is_reported_before_a_bad_file() {
    let error = run(&["-config=/nonexistent.yaml", "-bogus"], &[]).expect_err("refused");
    assert!(error.usage().is_some());
}

#[test]
fn api_keys_never_show_in_debug_output() {
    let config = run(
        &[],
        &[
            ("OPENAI_API_KEY", "sk-very-secret"),
            ("LANGGRAPH_API_KEY", "lgk-very-secret"),
        ],
    )
    .expect("loads");
    assert_eq!(
        config.backend.openai.api_key.as_deref(),
        Some("sk-very-secret")
    );
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    assert!(shown.contains("api_key: Some(<redacted>)"));
}

/// A key read from an env file saved with CRLF line ends carries a `\r`, which no HTTP header
/// can hold: every request failed with a 500. Surrounding whitespace is now dropped wherever a
/// key is written (variables, the file, profiles).
#[test]
fn api_keys_lose_surrounding_whitespace_and_a_crlf_line_end() {
    let config = run(
        &[],
        &[
            ("OPENAI_API_KEY", "sk-very-secret\r"),
            ("LANGGRAPH_API_KEY", " lgk-very-secret\r\n"),
        ],
    )
    .expect("loads");
    assert_eq!(
        config.backend.openai.api_key.as_deref(),
        Some("sk-very-secret")
    );
    assert_eq!(
        config.backend.langgraph.api_key.as_deref(),
        Some("lgk-very-secret")
    );
    // Only whitespace is no key, as an empty value is.
    let config = run(&[], &[("OPENAI_API_KEY", "\r")]).expect("loads");
    assert_eq!(config.backend.openai.api_key, None);

    let config = from_text(
        "backend:\n  openai:\n    api_key: \"sk-file-key\\r\"\n  langgraph:\n    profiles:\n      \
         sales: {api_key: \"\\tsales-key \"}\n",
    )
    .expect("loads");
    assert_eq!(
        config.backend.openai.api_key.as_deref(),
        Some("sk-file-key")
    );
    let sales = config
        .backend
        .langgraph
        .profile("sales")
        .expect("a profile");
    assert_eq!(sales.api_key.as_deref(), Some("sales-key"));
}

/// Any other control character in a key stops the start, naming where the key was set and
/// never quoting it.
#[test]
fn an_api_key_holding_a_control_character_is_refused_at_load() {
    let error = run(&[], &[("LANGGRAPH_API_KEY", "lgk-very\u{1}secret")]).expect_err("refused");
    let message = error.to_string();
    assert_eq!(
        message,
        "environment variable LANGGRAPH_API_KEY: must not hold a control character (byte 0x01 \
         at position 9 of the key): an API key is sent as an HTTP header, which cannot carry one; \
         set the key again without it"
    );

    let error =
        from_text("backend:\n  openai:\n    api_key: \"sk-very\\nsecret\"\n").expect_err("refused");
    let message = error.to_string();
    assert!(
        message.starts_with("example.yaml:3:14: backend.openai.api_key must not hold a control"),
        "{message}"
    );
    assert!(message.contains("0x0a at position 8"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    let error = from_text(
        "backend:\n  langgraph:\n    profiles:\n      sales: {api_key: \"sales\\u007fsecret\"}\n",
    )
    .expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("backend.langgraph.profiles.sales.api_key must not hold a control"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn startup_notes_explain_inert_and_risky_settings() {
    assert!(Config::default().startup_notes().is_empty());
    let mut config = Config::default();
    config.server.gc_percent = Some(100);
    config.server.pprof_addr = Some("localhost:6060".into());
    config.backend.provider = "langgraph".into();
    config.backend.langgraph.insecure_ssl = true;
    config.backend.langgraph.api_key = Some("lgk-secret".into());
    config.backend.openai.insecure_ssl = true; // not the selected backend: no effect, no note
    let notes = messages(&config);
    assert!(config
        .startup_notes()
        .iter()
        .all(|note| note.level == log::Level::Warn));
    assert_eq!(
        notes,
        [
            "server.gc_percent (100) has no effect: this daemon has no garbage collector; bound its memory with \
             server.mem_limit",
            "server.pprof_addr has no effect: Go's pprof profiler does not exist here; profile with perf or similar",
            "INSECURE: backend.langgraph.insecure_ssl is on: the langgraph upstream's TLS certificate is NOT \
             verified, so anyone on the path can read prompts, answers and the API key",
        ]
    );
    assert!(notes.iter().all(|note| !note.contains("lgk-secret")));
}
