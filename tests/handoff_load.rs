//! End to end: the `handoff` load generator against the real daemon binary.
//!
//! The daemon runs at `-log-level info` because its "streaming-daemon started" line, which the test waits
//! for, is an info line; a thread drains the rest of its stderr so that it never blocks.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{daemon_binary, temp_socket_path};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(10);

struct Daemon {
    child: Child,
    socket: PathBuf,
    /// The daemon's stderr lines; disconnected once it has exited and closed stderr.
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(name: &str) -> Daemon {
        let socket = temp_socket_path(name);
        let mut child = Command::new(daemon_binary())
            .arg("-socket")
            .arg(&socket)
            .args([
                "-message-delay",
                "0",
                "-metrics-addr=",
                "-log-level",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Ends when the daemon closes its stderr, i.e. exits.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let daemon = Daemon {
            child,
            socket,
            lines,
        };
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match daemon.lines.recv_timeout(left) {
                Ok(line) if line.contains("streaming-daemon started") => return daemon,
                Ok(_) => {}
                Err(e) => panic!("the daemon did not say it was listening within {LIMIT:?}: {e}"),
            }
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child, which has not been waited for yet.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        // Its stderr closes when it exits: wait on that, bounded, then reap it.
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the daemon ignored SIGTERM"),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "daemon exited with {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // After `stop` this finds the child reaped; after a panic it does not leave it behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn handoff(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("-socket")
        .arg(socket)
        .args(["-timeout", "5s"])
        .args(args)
        .output()
        .unwrap()
}

/// A load run with `-output`: its exit and stderr, and the JSON summary it wrote.
fn load(socket: &Path, name: &str, args: &[&str]) -> (Output, Value) {
    let path = std::env::temp_dir().join(format!("sd-load-{name}-{}.json", std::process::id()));
    let mut args = args.to_vec();
    args.extend(["-output", path.to_str().unwrap()]);
    let run = handoff(socket, &args);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no summary ({e}); stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    let _ = std::fs::remove_file(&path);
    (run, serde_json::from_str(&text).unwrap())
}

#[test]
fn load_runs_over_tcp_and_socketpairs_and_fails_on_bad_data() {
    let daemon = Daemon::start("load");
    let pid = daemon.pid();

    let (run, json) = load(
        &daemon.socket,
        "tcp",
        &["-n", "200", "-c", "50", "-pid", &pid],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("200 streams: 200 ok, 0 failed"), "{stderr}");
    assert_eq!(json["succeeded"], 200, "{json:#}");
    assert_eq!(json["failed"]["total"], 0);
    assert_eq!(json["statuses"]["200"], 200);
    assert_eq!(json["transport"], "tcp");
    assert!(json["events_total"].as_u64().unwrap() >= 200);
    assert!(json["ttfb_ms"]["p99"].is_number());
    let rss = &json["daemon"];
    assert!(rss["rss_baseline_kib"].as_u64().unwrap() > 0, "{json:#}");
    assert!(rss["rss_peak_kib"].as_u64().unwrap() >= rss["rss_baseline_kib"].as_u64().unwrap());
    assert!(rss["rss_per_stream_bytes"].is_u64());
    assert!(rss["cpu_seconds"].is_number());
    assert!(rss["threads_max"].as_u64().unwrap() >= 1);
    let peak = rss["peak_concurrent"].as_u64().unwrap();
    assert!((1..=50).contains(&peak), "{json:#}");

    let (run, json) = load(
        &daemon.socket,
        "pairs",
        &["-n", "200", "-c", "50", "-socketpair"],
    );
    assert!(run.status.success(), "{json:#}");
    assert_eq!(json["succeeded"], 200, "{json:#}");
    assert_eq!(json["transport"], "socketpair");
    assert!(json.get("daemon").is_none());

    let (run, json) = load(
        &daemon.socket,
        "bad",
        &["-n", "20", "-c", "10", "-data", "{"],
    );
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(json["succeeded"], 0, "{json:#}");
    assert_eq!(json["failed"]["status"], 20);
    assert_eq!(json["statuses"]["400"], 20);

    daemon.stop();
}

#[test]
fn an_unreachable_socket_fails_every_stream_as_connect() {
    let missing = temp_socket_path("missing");
    let run = handoff(&missing, &["-n", "5", "-c", "2"]);
    assert_eq!(run.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["failed"]["connect"], 5, "{json:#}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("connect failure"), "{stderr}");
}
