//! The built binary's command line: help, version, and the exit codes and messages an operator
//! sees for configuration mistakes. None of these runs reaches the daemon itself.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

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
];

fn daemon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streaming-daemon"))
        .args(args)
        .env_clear()
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
    let output = Command::new(env!("CARGO_BIN_EXE_streaming-daemon"))
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
    let args = vec![OsString::from("-config"), example.into_os_string()];
    match config::load(args, &|_| None) {
        Ok(Invocation::Run(loaded)) => assert_eq!(loaded, Config::default()),
        Ok(other) => panic!("{other:?}"),
        Err(error) => panic!("config/example.yaml does not load: {error}"),
    }
}
