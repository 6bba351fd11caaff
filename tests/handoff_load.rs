//! End to end: the `handoff` load generator against the real daemon binary.
//!
//! The daemon runs at `-log-level info` because its "streaming-daemon started" line, which the test waits
//! for, is an info line; a thread drains the rest of its stderr so that it never blocks.
//!
//! The fault tests (`-faults`) check both sides: the load generator's own verdicts, and the
//! daemon's metrics, where each fault must land on its outcome and every handoff be accounted
//! for (SPEC 7.3), as the soak (`benches/soak.sh`) checks at scale.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{daemon_binary, eventually, temp_socket_path};
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

/// One scrape of the daemon's `/metrics`: `(name{labels}, value)` for every sample.
fn scrape(address: &str) -> Vec<(String, f64)> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &[(String, f64)], name: &str) -> u64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v as u64)
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
}

/// Every fault kind, ten streams each: the load generator says each behaved as planned (or was
/// late: completed by the daemon first), and the daemon's counters agree stream for stream.
#[test]
fn every_fault_lands_on_its_outcome_and_every_handoff_is_accounted_for() {
    // 100 ms between the mock's events: a closing client is gone long before the stream could
    // end, and a client that never reads fills its small buffer and meets the write timeout.
    let mut daemon = common::Daemon::start(
        "faults",
        &[
            "-metrics-addr",
            "127.0.0.1:0",
            "-message-delay",
            "100ms",
            "-write-timeout",
            "500ms",
            "-data-dir=",
        ],
    );
    let line = daemon.wait_for_log("msg=\"metrics listening\"", LIMIT);
    let address = line
        .split("url=http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();

    let mix = "read=1,close=1,reset=1,noread=1,halfclose=1,badjson=1,nofd=1";
    let (run, json) = load(
        &daemon.socket,
        "faults",
        &["-n", "70", "-c", "70", "-faults", mix, "-timeout", "10s"],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}\n{json:#}");
    assert_eq!(json["failed"]["total"], 0, "{json:#}");
    let faults = &json["faults"];
    assert_eq!(faults["mix"], mix);
    let planned = |kind: &str| faults[kind]["as_planned"].as_u64().unwrap();
    let late = |kind: &str| faults[kind]["late"].as_u64().unwrap();
    for kind in [
        "read",
        "close",
        "reset",
        "noread",
        "halfclose",
        "badjson",
        "nofd",
    ] {
        assert_eq!(faults[kind]["streams"], 10, "{kind}: {json:#}");
        assert_eq!(planned(kind) + late(kind), 10, "{kind}: {json:#}");
    }
    for kind in ["read", "halfclose", "badjson", "nofd"] {
        assert_eq!(late(kind), 0, "{kind}: {json:#}");
    }
    assert_eq!(json["statuses"]["400"], 10, "{json:#}");
    assert!(stderr.contains("; faults: read 10, close 10"), "{stderr}");

    // Closing clients are noticed at the daemon's next write: wait until all is counted.
    eventually(LIMIT, "every connection ended", || {
        let samples = scrape(&address);
        value(&samples, "daemon_active_connections") == 0
            && value(&samples, "daemon_connections_total") == 70
    });
    let samples = scrape(&address);
    let outcome = |o: &str| {
        value(
            &samples,
            &format!("daemon_stream_outcomes_total{{outcome=\"{o}\"}}"),
        )
    };
    let rejection = |r: &str| {
        value(
            &samples,
            &format!("daemon_handoff_rejections_total{{reason=\"{r}\"}}"),
        )
    };
    let late_ones = late("close") + late("reset") + late("noread");
    assert_eq!(outcome("completed"), 20 + late_ones);
    assert_eq!(
        outcome("client_disconnected"),
        planned("close") + planned("reset")
    );
    assert_eq!(outcome("write_timeout"), planned("noread"));
    assert_eq!(rejection("bad_json"), 10);
    assert_eq!(rejection("no_fd"), 10);
    // SPEC 7.3: nothing is lost between the stages.
    let outcomes: u64 = samples
        .iter()
        .filter(|(n, _)| n.starts_with("daemon_stream_outcomes_total{"))
        .map(|(_, v)| *v as u64)
        .sum();
    assert_eq!(outcomes, 50);
    assert_eq!(value(&samples, "daemon_handoffs_total"), 60);
    assert_eq!(value(&samples, "daemon_connections_rejected_total"), 0);
    assert_eq!(value(&samples, "daemon_panics_total"), 0);
}

#[test]
fn a_fault_that_does_not_happen_as_planned_fails_the_run() {
    // The default 30 s write timeout never comes within the tool's 1 s per stream.
    let daemon = common::Daemon::start("noread", &["-message-delay", "100ms", "-data-dir="]);
    let (run, json) = load(
        &daemon.socket,
        "noread",
        &[
            "-n", "3", "-c", "3", "-faults", "noread=1", "-timeout", "1s",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{json:#}");
    assert_eq!(json["failed"]["timeout"], 3, "{json:#}");
    assert_eq!(
        json["faults"]["noread"],
        serde_json::json!({"streams": 3, "as_planned": 0, "late": 0, "failed": 3})
    );
}

#[test]
fn a_stream_the_daemon_completes_first_is_late_not_failed() {
    // Without delays the whole mock answer goes out in one write, which even the smallest
    // buffer takes: the daemon completes the stream of a client that never reads.
    let daemon = Daemon::start("late");
    let (run, json) = load(
        &daemon.socket,
        "late",
        &[
            "-n", "4", "-c", "4", "-faults", "noread=1", "-timeout", "5s",
        ],
    );
    assert!(run.status.success(), "{json:#}");
    assert_eq!(
        json["faults"]["noread"],
        serde_json::json!({"streams": 4, "as_planned": 0, "late": 4, "failed": 0})
    );
    // They read only once the daemon had hung up: no time to first byte is made up for them.
    assert!(json["ttfb_ms"].is_null(), "{json:#}");
    assert!(json["duration_ms"]["max"].is_number(), "{json:#}");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("faults: noread 4 (4 late)"),
        "{run:?}"
    );
    daemon.stop();
}

#[test]
fn bad_fault_flags_are_usage_errors() {
    let socket = temp_socket_path("unused");
    for args in [
        &["-n", "5", "-faults", "read=1,sometimes=2"][..],
        &["-faults", "read=1"],
        &["-n", "5", "-fault-bytes", "0"],
    ] {
        let run = handoff(&socket, args);
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("-faults") || stderr.contains("-fault-bytes"),
            "{args:?}: {stderr}"
        );
    }
}
