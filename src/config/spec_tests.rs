//! `load` end to end for the keys the whole SPEC adds: the newest Go daemon's keys, profiles,
//! pending features, duration limits, the relative `-socket`, bounded reads, notes and reload.

use std::time::{Duration, Instant};

use super::tests::{from_text, messages, run, TempFile};
use super::*;

/// Written for these tests with every key the newest Go daemon's configuration has, in its
/// shapes: `data_dir`, named profiles with each of their keys, `typing.use_api` and
/// `typing.default_model`.
const NEWEST_GO_STYLE: &str = "\
server:
  socket_path: /var/run/streaming-daemon.sock
  socket_mode: 0660
  max_connections: 50000
  max_stream_duration_ms: 300000
  data_dir: /run/handoff-data    # PHP writes attachments here

backend:
  provider: langgraph
  default_model: gpt-4o-mini
  openai:
    api_base: https://api.openai.com/v1
    http2_enabled: true
    insecure_ssl: false
  langgraph:
    api_key: lgk-top-secret
    api_base: http://127.0.0.1:18001
    assistant_id: agent
    stream_mode: messages-tuple
    http2_enabled: false
    insecure_ssl: false
    profiles:
      sales:
        api_key: lgk-sales-secret
        api_base: http://127.0.0.1:18002
        api_socket: /run/sales-langgraph.sock
        assistant_id: sales-agent
        stream_mode: messages
        content_format: openai
        http2_enabled: false
        insecure_ssl: false
      claude:
        assistant_id: claude-agent
        content_format: anthropic
  mock:
    message_delay_ms: 50
  typing:
    use_api: false
    default_model: gpt-4o-mini

metrics:
  enabled: true
  listen_addr: 127.0.0.1:9090

logging:
  level: info
  format: text
";

#[test]
fn every_key_of_the_newest_go_config_loads() {
    let config = from_text(NEWEST_GO_STYLE).expect("every key is known and valid");
    assert_eq!(validate::check(&config), Ok(()));
    assert_eq!(
        config.server.data_dir.as_deref(),
        Some(std::path::Path::new("/run/handoff-data"))
    );
    assert!(!config.backend.typing.use_api);
    assert_eq!(
        config.backend.typing.default_model.as_deref(),
        Some("gpt-4o-mini")
    );
    let langgraph = &config.backend.langgraph;
    let sales = langgraph.profile("sales").expect("sales is a profile");
    assert_eq!(sales.api_key.as_deref(), Some("lgk-sales-secret"));
    assert_eq!(
        sales.api_socket.as_deref(),
        Some(std::path::Path::new("/run/sales-langgraph.sock"))
    );
    assert_eq!(sales.stream_mode, "messages");
    let claude = langgraph.profile("claude").expect("claude is a profile");
    assert_eq!(claude.api_base, "http://127.0.0.1:18001");
    assert_eq!(claude.api_key.as_deref(), Some("lgk-top-secret"));
    assert_eq!(claude.content_format, ContentFormat::Anthropic);

    // The whole file loads as it is, with the flag that names it.
    let file = TempFile::new(NEWEST_GO_STYLE);
    let config = run(&[&file.flag()], &[]).expect("the newest Go daemon's file loads");
    let names: Vec<&String> = config.backend.langgraph.profiles.keys().collect();
    assert_eq!(names, ["claude", "sales"]);
    assert_eq!(config.backend.provider, "langgraph");
}

#[test]
fn the_spec_profile_example_resolves_as_its_table_says() {
    let config = from_text(
        "backend: {provider: langgraph, langgraph: {api_base: \"http://127.0.0.1:18001\", api_key: top-key, \
         assistant_id: agent, stream_mode: messages-tuple, profiles: {sales: {api_base: \"http://127.0.0.1:18002\", \
         api_key: sales-key, assistant_id: sales-agent}, claude: {assistant_id: claude-agent, content_format: \
         anthropic}}}}\n",
    )
    .expect("loads");
    let langgraph = &config.backend.langgraph;
    let default = langgraph.profile("").expect("the default profile");
    assert_eq!(
        (
            default.api_base.as_str(),
            default.api_key.as_deref(),
            default.assistant_id.as_str(),
            default.stream_mode.as_str()
        ),
        (
            "http://127.0.0.1:18001",
            Some("top-key"),
            "agent",
            "messages-tuple"
        )
    );
    let sales = langgraph.profile("sales").expect("known");
    assert_eq!(
        (
            sales.api_base.as_str(),
            sales.api_key.as_deref(),
            sales.assistant_id.as_str()
        ),
        ("http://127.0.0.1:18002", Some("sales-key"), "sales-agent")
    );
    let claude = langgraph.profile("claude").expect("known");
    assert_eq!(
        (
            claude.api_base.as_str(),
            claude.api_key.as_deref(),
            claude.content_format
        ),
        (
            "http://127.0.0.1:18001",
            Some("top-key"),
            ContentFormat::Anthropic
        )
    );
    assert_eq!(langgraph.profile("nope"), None);
    let names: Vec<&str> = langgraph
        .named_profiles()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["claude", "sales"]);
}

#[test]
fn profiles_inherit_what_flags_and_environment_set() {
    let file = TempFile::new(
        "backend:\n  langgraph:\n    api_socket: /run/file.sock\n    profiles:\n      a: {assistant_id: x}\n      \
         b: {api_base: 'http://127.0.0.1:2'}\n",
    );
    let mut config = Config::default();
    file::apply_file(&mut config, &file.0).expect("loads");
    // As `load` does after the file: environment, then flags.
    env::apply(&mut config, &|name: &str| {
        (name == "LANGGRAPH_API_KEY").then(|| "lgk-env".to_string())
    })
    .expect("valid");
    flags::parse(vec!["-langgraph-socket=/run/flag.sock".into()])
        .and_then(|command_line| command_line.apply(&mut config))
        .expect("valid");
    let a = config.backend.langgraph.profile("a").expect("known");
    assert_eq!(a.api_key.as_deref(), Some("lgk-env"));
    assert_eq!(a.api_socket, Some("/run/flag.sock".into()));
    let b = config.backend.langgraph.profile("b").expect("known");
    assert_eq!(b.api_socket, None, "its own api_base: no inherited socket");
}

#[test]
fn every_recognised_key_loads_and_takes_effect() {
    let keys = TempFile::new(
        "server:\n  workers: 1\n  resume_window_ms: 0\n  data_max_age_ms: 0\n  data_dir: /srv/x\nbackend:\n  \
         provider: typing\n  allowed: [typing, mock, langgraph]\n  langgraph:\n    content_format: openai\n    \
         output: raw\n    profiles:\n      sales: {output: translate, content_format: openai}\n  typing:\n    use_api: true\n    default_model: m\n  upstream:\n    \
         sse_max_line_bytes: 256KiB\n",
    );
    let config =
        run(&[&keys.flag(), "-workers=1", "-resume-window=0"], &[]).expect("every key loads");
    assert_eq!(config.server.worker_count(), 1);
    assert_eq!(
        config.backend.allowed_backends(),
        ["typing", "mock", "langgraph"]
    );
    assert!(config.backend.typing.use_api);
    let config = run(&["-resume-window", "30s", "-workers", "3"], &[]).expect("resuming loads");
    assert_eq!(config.server.resume_window, Duration::from_secs(30));
    assert_eq!(config.server.worker_count(), 3);
}

#[test]
fn durations_are_bounded_by_gos_maximum() {
    for (flag, value) in [
        ("-shutdown-timeout", "3000000000000000h"),
        ("-handoff-timeout", "9223372036854775807s"),
        ("-write-timeout", "2562047h47m16.854775808s"),
        ("-message-delay", "106751992d"),
        ("-resume-window", "9999999999h"),
        ("-max-stream-duration-ms", "9223372036855"),
    ] {
        let error = run(&[flag, value], &[]).expect_err("refused");
        assert!(error.usage().is_some(), "{flag}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("invalid value {value:?} for flag {flag}: ")),
            "{message}"
        );
    }
    let longest = "2562047h47m16.854775807s";
    let config = run(
        &[
            "-shutdown-timeout",
            longest,
            "-handoff-timeout",
            longest,
            "-write-timeout",
            longest,
            "-max-stream-duration-ms=9223372036854",
        ],
        &[],
    )
    .expect("Go's maximum itself is fine");
    let now = Instant::now();
    for duration in [
        config.server.shutdown_timeout,
        config.server.handoff_timeout,
        config.server.write_timeout,
        config.server.max_stream_duration,
    ] {
        assert!(duration <= units::MAX_DURATION);
        assert!(
            now.checked_add(duration).is_some(),
            "{duration:?} overflows a deadline"
        );
    }
}

#[test]
fn a_relative_socket_flag_is_made_absolute() {
    let cwd = std::env::current_dir().expect("a working directory");
    for (given, expected) in [
        ("run/x.sock", cwd.join("run/x.sock")),
        ("./x.sock", cwd.join("x.sock")),
        ("/abs/x.sock", PathBuf::from("/abs/x.sock")),
    ] {
        let config = run(&["-socket", given], &[]).expect("accepted");
        assert_eq!(config.server.socket_path, expected, "{given}");
        assert!(config.server.socket_path.is_absolute());
    }
    let file = TempFile::new("server:\n  socket_path: run/x.sock\n");
    let message = run(&[&file.flag()], &[]).expect_err("refused").to_string();
    assert!(
        message.ends_with("server.socket_path must be an absolute path (starting with /)"),
        "{message}"
    );
}

#[test]
fn config_files_are_read_with_a_bound() {
    assert_eq!(
        run(&["-config=/dev/zero"], &[]).expect_err("refused").to_string(),
        "cannot read the configuration file /dev/zero: it is larger than 1048576 bytes, the most this file may \
         hold; check the -config path"
    );
    let binary = TempFile::new(b"server:\n  socket_path: /x\xff\n");
    assert_eq!(
        run(&[&binary.flag()], &[]).expect_err("refused").to_string(),
        format!(
            "cannot read the configuration file {}: it is not UTF-8 text, so it cannot be YAML; check the -config \
             path",
            binary.0.display()
        )
    );
    // Just under the bound: a long comment is fine.
    let mut big = "#".repeat(file::MAX_FILE_BYTES as usize - 30);
    big.push_str("\nserver:\n  max_connections: 7\n");
    let big = TempFile::new(&big);
    assert_eq!(
        run(&[&big.flag()], &[]).map(|config| config.server.max_connections),
        Ok(7)
    );
}

#[test]
fn go_runtime_variables_get_one_info_note() {
    let config = run(&[], &[("GOMEMLIMIT", "768MiB"), ("GOGC", "50")]).expect("loads");
    let notes = config.startup_notes();
    assert_eq!(
        notes,
        [StartupNote {
            level: log::Level::Info,
            message: "GOMEMLIMIT and GOGC are set but have no effect: this daemon has no garbage collector; \
                      server.mem_limit (-memlimit) is a budget for connection buffers here"
                .into(),
        }]
    );
    let config = run(&[], &[("GOGC", ""), ("GOMEMLIMIT", "1GiB")]).expect("loads");
    assert_eq!(
        messages(&config),
        ["GOMEMLIMIT is set but has no effect: this daemon has no garbage collector; server.mem_limit \
          (-memlimit) is a budget for connection buffers here"]
    );
}

#[test]
fn unknown_stream_modes_are_warnings_not_errors() {
    let config = run(&[], &[("LANGGRAPH_STREAM_MODE", "events")]).expect("loads");
    assert!(config.startup_notes().is_empty());
    let config = run(&[], &[("LANGGRAPH_STREAM_MODE", "my-mode")]).expect("loads");
    assert_eq!(config.backend.langgraph.stream_mode, "my-mode");
    let notes = config.startup_notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].level, log::Level::Warn);
    assert!(
        notes[0].message.starts_with(
            "backend.langgraph.stream_mode \"my-mode\" is not a LangGraph stream mode we know"
        ),
        "{}",
        notes[0]
    );
}

#[test]
fn notes_cover_profiles_and_allowed_backends() {
    let mut config = Config::default();
    config.backend.allowed = vec!["langgraph".into()];
    config.backend.langgraph.api_key = Some("lgk-secret".into());
    config.backend.langgraph.profiles.insert(
        "lab".into(),
        LangGraphProfileSpec {
            insecure_ssl: Some(true),
            http2_enabled: Some(true),
            stream_mode: Some("odd".into()),
            ..LangGraphProfileSpec::default()
        },
    );
    let notes = messages(&config);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].starts_with("backend.langgraph.profiles.lab.http2_enabled has no effect"));
    assert!(notes[1].starts_with("backend.langgraph.profiles.lab.stream_mode \"odd\" is not"));
    assert!(notes[2].starts_with("INSECURE: backend.langgraph.profiles.lab.insecure_ssl is on"));
    assert!(notes.iter().all(|note| !note.contains("lgk-secret")));
}

#[test]
fn a_reload_reads_the_file_again_and_keeps_restart_only_keys() {
    let file = TempFile::new("server:\n  max_connections: 10\nlogging:\n  level: info\n");
    let args = [file.flag(), "-write-timeout=7s".to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let running = run(&args, &[]).expect("loads");

    std::fs::write(
        &file.0,
        "server:\n  socket_path: /run/moved.sock\n  write_timeout_ms: 1000\nbackend:\n  provider: typing\n  \
         openai:\n    api_key: sk-reloaded-secret\nmetrics:\n  listen_addr: 127.0.0.1:9999\nlogging:\n  level: debug\n",
    )
    .expect("rewritable");
    let loaded = run(&args, &[]).expect("loads");
    let plan = plan_reload(&running, loaded);
    assert_eq!(
        plan.applied,
        [
            "server.max_connections",
            "backend.openai.api_key",
            "logging.level"
        ],
        "a key removed from the file returns to its default; the flag still wins over the file"
    );
    assert_eq!(
        plan.needs_restart,
        [
            "server.socket_path",
            "backend.provider",
            "metrics.listen_addr"
        ]
    );
    let applied = &plan.config;
    assert_eq!(applied.server.max_connections, 50_000);
    assert_eq!(applied.server.write_timeout, Duration::from_secs(7));
    assert_eq!(applied.logging.level, log::LevelFilter::Debug);
    assert_eq!(applied.server.socket_path, running.server.socket_path);
    assert_eq!(applied.backend.provider, "mock");
    assert_eq!(applied.metrics, running.metrics);
    let said = format!("{:?} {:?}", plan.applied, plan.needs_restart);
    assert!(!said.contains("secret"));
}

#[test]
fn workers_default_to_the_cpus_this_process_may_use() {
    let config = Config::default();
    assert_eq!(config.server.workers, None);
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(config.server.worker_count(), cpus);
    assert!(config.server.worker_count() >= 1);
}

#[test]
fn allowed_backends_always_start_with_the_provider() {
    let mut backend = Config::default().backend;
    assert_eq!(backend.allowed_backends(), ["mock"]);
    backend.provider = "openai".into();
    backend.allowed = vec!["typing".into(), "openai".into()];
    assert_eq!(backend.allowed_backends(), ["openai", "typing"]);
    assert!(backend.is_allowed("openai") && backend.is_allowed("typing"));
    assert!(!backend.is_allowed("mock") && !backend.is_allowed(""));
}

#[test]
fn profile_keys_never_show_in_debug_output() {
    let file = TempFile::new(NEWEST_GO_STYLE);
    let mut config = Config::default();
    file::apply_file(&mut config, &file.0).expect("loads");
    let shown = format!(
        "{config:?} {config:#?} {:?}",
        config.backend.langgraph.named_profiles()
    );
    assert!(!shown.contains("secret"), "{shown}");
}
