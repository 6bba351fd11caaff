//! The built binary's command line: help, version, and the exit codes and messages an operator
//! sees for configuration mistakes. None of these runs reaches the daemon itself.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::daemon_binary;
use streaming_daemon::config::{self, Config, Invocation};

/// Every flag operators may use: SPEC §5's, the Go daemon's, and ours.
const FLAGS: &[&str] = &[
    "-config",
    "-socket",
    "-socket-mode",
    "-socket-type",
    "-max-connections",
    "-backend",
    "-metrics-addr",
    "-pprof-addr",
    "-benchmark",
    "-max-stream-duration-ms",
    "-memlimit",
    "-gc-percent",
    "-message-delay",
    "-openai-base",
    "-openai-socket",
    "-http2-enabled",
    "-langgraph-base",
    "-langgraph-socket",
    "-langgraph-assistant",
    "-help",
    "-h",
    "-version",
    "-log-level",
    "-log-format",
    "-max-handoff-bytes",
    "-handoff-timeout",
    "-write-timeout",
    "-shutdown-timeout",
    "-fortune-path",
    "-data-dir",
    "-workers",
    "-resume-window",
];

fn daemon(args: &[&str]) -> Output {
    Command::new(daemon_binary())
        .args(args)
        .env_clear()
        .output()
        .expect("the built binary runs")
}

fn daemon_with_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(daemon_binary())
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("the built binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file under the system temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "streaming-daemon-cli-test-{}-{}.yaml",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("temp dir is writable");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn help_lists_every_flag_and_exits_0() {
    for spelling in ["-help", "-h", "--help"] {
        let output = daemon(&[spelling]);
        assert_eq!(output.status.code(), Some(0), "{spelling}");
        let usage = text(&output.stdout);
        for flag in FLAGS {
            let listed = usage.lines().any(|line| {
                line.trim_start()
                    .split([' ', ','])
                    .any(|word| word == *flag)
            });
            assert!(listed, "{spelling} does not list {flag}:\n{usage}");
        }
        assert!(usage.contains("(default 50000)"), "defaults are shown");
        assert!(output.stderr.is_empty());
    }
}

#[test]
fn version_prints_name_and_version() {
    let output = daemon(&["-version"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        format!("streaming-daemon {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_flag_prints_the_error_then_the_usage_and_exits_2() {
    let output = daemon(&["-socket=/tmp/x.sock", "-no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("streaming-daemon: flag provided but not defined: -no-such-flag\nUsage: streaming-daemon"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    let output = daemon(&["-max-connections", "many"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("invalid value \"many\" for flag -max-connections"));
}

#[test]
fn an_unknown_key_exits_2_naming_file_line_and_key() {
    let file = TempFile::new("server:\n  socket_path: /run/x.sock\n  max_conections: 10\n");
    let output = daemon(&["-config", &file.0.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "streaming-daemon: {}:3:3: server.max_conections: unknown key; did you mean server.max_connections?\n",
            file.0.display()
        ),
        "one line, no usage text"
    );
}

#[test]
fn a_bad_environment_variable_exits_2_naming_it() {
    let output = Command::new(daemon_binary())
        .env_clear()
        .env("OPENAI_API_KEY", "sk-must-not-leak")
        .env("OPENAI_INSECURE_SSL", "sometimes")
        .output()
        .expect("the built binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(
            "streaming-daemon: environment variable OPENAI_INSECURE_SSL=\"sometimes\": "
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-must-not-leak"));
}

#[test]
fn the_shipped_example_validates_to_the_defaults() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml");
    let args = vec![OsString::from("-config"), example.clone().into_os_string()];
    match config::load(args, &|_| None) {
        Ok(Invocation::Run(loaded)) => assert_eq!(
            loaded,
            Config {
                config_file: Some(example),
                ..Config::default()
            }
        ),
        Ok(other) => panic!("{other:?}"),
        Err(error) => panic!("config/example.yaml does not load: {error}"),
    }
}

#[test]
fn durations_beyond_gos_maximum_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("-shutdown-timeout", "3000000000000000h"),
        ("-handoff-timeout", "9223372036854775807s"),
        ("-resume-window", "2562047h47m16.854775808s"),
    ] {
        let output = daemon(&[flag, value]);
        assert_eq!(output.status.code(), Some(2), "{flag}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.starts_with(&format!(
                "streaming-daemon: invalid value {value:?} for flag {flag}: must be at most \
                 2562047h47m16.854775807s (Go's longest duration)\nUsage: streaming-daemon"
            )),
            "{stderr}"
        );
    }
    let file = TempFile::new("server:\n  handoff_timeout_ms: 9223372036854775\n");
    let output = daemon(&["-config", &file.0.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "streaming-daemon: {}:2:23: server.handoff_timeout_ms must be at most 9223372036854 (Go's longest \
             duration, about 292 years)\n",
            file.0.display()
        )
    );
}

#[test]
fn environment_booleans_are_gos_parse_bool_exactly() {
    for var in [
        "OPENAI_INSECURE_SSL",
        "OPENAI_HTTP2_ENABLED",
        "LANGGRAPH_HTTP2_ENABLED",
        "LANGGRAPH_INSECURE_SSL",
    ] {
        let output = daemon_with_env(&[], &[(var, "yes")]);
        assert_eq!(output.status.code(), Some(2), "{var}");
        assert_eq!(
            text(&output.stderr),
            format!(
                "streaming-daemon: environment variable {var}=\"yes\": expected true or false (also 1/0, t/f, \
                 TRUE/FALSE, True/False)\n"
            )
        );
    }
}

#[test]
fn an_endless_config_file_exits_2_at_once() {
    let output = daemon(&["-config", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "streaming-daemon: cannot read the configuration file /dev/zero: it is larger than 1048576 bytes, the most \
         this file may hold; check the -config path\n"
    );
}

/// The TLS set-up happens before anything binds, so these runs end there. The notes are
/// logged first, each at its level.
#[test]
fn an_endless_ca_file_exits_2_and_go_runtime_variables_are_noted() {
    let socket = std::env::temp_dir().join(format!("sd-cli-ca-{}.sock", std::process::id()));
    let socket = socket.display().to_string();
    let output = daemon_with_env(
        &["-backend", "openai", "-socket", &socket, "-metrics-addr="],
        &[("SSL_CERT_FILE", "/dev/zero"), ("GOGC", "off")],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "cannot read CA certificates from /dev/zero: it is larger than 16777216 bytes, the most this file may hold"
        ),
        "{stderr}"
    );
    let note = stderr
        .lines()
        .find(|line| line.contains("GOGC is set but has no effect"))
        .unwrap_or_else(|| panic!("no GOGC note in {stderr}"));
    assert!(note.contains("INFO"), "{note}");

    let file = TempFile::new(
        "backend:\n  provider: langgraph\n  langgraph:\n    api_base: https://127.0.0.1:1\n    ca_file: /dev/zero\n",
    );
    let output = daemon(&[
        "-config",
        &file.0.display().to_string(),
        "-socket",
        &socket,
        "-metrics-addr=",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr)
        .contains("cannot read CA certificates from /dev/zero: it is larger than"));
    assert!(!std::path::Path::new(&socket).exists(), "nothing was bound");
}

#[test]
fn the_newest_go_style_keys_load_in_the_binary() {
    let file = TempFile::new(
        "server:\n  data_dir: /run/handoff-data\n  socket_path: /nonexistent-dir/x.sock\nbackend:\n  typing:\n    \
         use_api: false\n    default_model: gpt-4o-mini\n  langgraph:\n    profiles: {}\n",
    );
    // The configuration is valid, so the daemon gets as far as binding, which fails: exit 1, not 2.
    let output = daemon(&["-config", &file.0.display().to_string(), "-metrics-addr="]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot listen on /nonexistent-dir/x.sock"),
        "{stderr}"
    );
}
