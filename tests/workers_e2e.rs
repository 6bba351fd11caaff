//! Several workers in one daemon (SPEC §6.5): the limits, the counts and the metrics are the
//! daemon's, not a worker's; a drain, a second signal and a reload reach every worker; the
//! `-benchmark` summary adds them up.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

fn metrics_address(daemon: &mut Daemon) -> SocketAddr {
    let line = daemon.wait_for_log("msg=\"metrics listening\"", LIMIT);
    line.split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .trim_end_matches("/metrics")
        .parse()
        .unwrap()
}

fn scrape(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    parse_response(&response).2
}

fn value(body: &str, series: &str) -> u64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series}"))
        .parse()
        .unwrap()
}

/// The names of the daemon's threads.
fn threads(daemon: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", daemon.pid()))
        .unwrap()
        .map(|task| {
            let comm = task.unwrap().path().join("comm");
            std::fs::read_to_string(comm).unwrap().trim().to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn many_streams_over_three_workers_are_counted_once_each() {
    let mut daemon = Daemon::start(
        "workers-count",
        &[
            "-workers=3",
            "-metrics-addr=127.0.0.1:0",
            "-message-delay=5ms",
        ],
    );
    let address = metrics_address(&mut daemon);
    assert!(threads(&daemon).contains(&"worker-2".to_string()));
    let line = daemon.wait_for_log("streaming-daemon started", LIMIT);
    assert!(line.contains("workers=3"), "{line}");
    // 60 streams at once, in three waves of handoffs.
    let clients: Vec<_> = (0..60).map(|_| daemon.open_stream()).collect();
    for mut client in clients {
        let mut rest = String::new();
        client.read_to_string(&mut rest).unwrap();
        assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    }
    eventually(LIMIT, "every stream to be counted", || {
        value(
            &scrape(address),
            "daemon_stream_outcomes_total{outcome=\"completed\"}",
        ) == 60
    });
    let body = scrape(address);
    assert_eq!(value(&body, "daemon_connections_total"), 60);
    assert_eq!(value(&body, "daemon_handoffs_total"), 60);
    assert_eq!(value(&body, "daemon_active_streams"), 0);
    assert_eq!(value(&body, "daemon_active_connections"), 0);
    let peak = value(&body, "daemon_peak_streams");
    assert!((1..=60).contains(&peak), "{peak}");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

#[test]
fn max_connections_is_the_daemons_whatever_worker_takes_a_handoff() {
    let daemon = Daemon::start(
        "workers-limit",
        &["-workers=2", "-max-connections=2", "-message-delay=2s"],
    );
    let held: Vec<_> = (0..2).map(|_| daemon.open_stream()).collect();
    // Whichever worker each lands on, the daemon is full.
    for _ in 0..6 {
        let response = daemon.request(b"{}");
        assert!(
            response.starts_with("HTTP/1.1 503 Service Unavailable"),
            "{response}"
        );
    }
    drop(held);
}

#[test]
fn a_drain_and_a_second_signal_reach_every_worker() {
    let mut daemon = Daemon::start("workers-drain", &["-workers=2", "-message-delay=10ms"]);
    let streams: Vec<_> = (0..8).map(|_| daemon.open_stream()).collect();
    daemon.signal(libc::SIGTERM);
    for mut client in streams {
        let mut rest = String::new();
        client.read_to_string(&mut rest).unwrap();
        assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    }
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    assert!(!daemon.socket.exists(), "the socket path is removed");

    let mut daemon = Daemon::start("workers-stop", &["-workers=2", "-message-delay=10s"]);
    let streams: Vec<_> = (0..6).map(|_| daemon.open_stream()).collect();
    daemon.signal(libc::SIGTERM);
    daemon.wait_for_log("draining", LIMIT);
    daemon.signal(libc::SIGTERM);
    for mut client in streams {
        let mut rest = String::new();
        client.read_to_string(&mut rest).unwrap();
        assert!(
            rest.ends_with("data: {\"error\":\"server shutting down\"}\n\n"),
            "{rest}"
        );
    }
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

#[test]
fn a_reload_reaches_every_worker() {
    let config =
        std::env::temp_dir().join(format!("sd-workers-reload-{}.yaml", std::process::id()));
    std::fs::write(&config, "server:\n  max_connections: 100\n").unwrap();
    let mut daemon = Daemon::start(
        "workers-reload",
        &[
            "-workers=2",
            "-message-delay=2s",
            "-config",
            config.to_str().unwrap(),
        ],
    );
    std::fs::write(&config, "server:\n  max_connections: 1\n").unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log("configuration reloaded", LIMIT);
    let held = daemon.open_stream();
    // Every worker now admits one connection at most, daemon-wide.
    for _ in 0..6 {
        let response = daemon.request(b"{}");
        assert!(
            response.starts_with("HTTP/1.1 503 Service Unavailable"),
            "{response}"
        );
    }
    drop(held);
    let _ = std::fs::remove_file(&config);
}

#[test]
fn the_benchmark_summary_adds_up_every_worker() {
    let mut daemon = Daemon::start(
        "workers-bench",
        &["-workers=2", "-benchmark", "-message-delay=0"],
    );
    let clients: Vec<_> = (0..12).map(|_| daemon.open_stream()).collect();
    for mut client in clients {
        let mut rest = String::new();
        client.read_to_string(&mut rest).unwrap();
    }
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    let summary = daemon.stdout();
    assert!(summary.contains("Total started: 12\n"), "{summary}");
    assert!(summary.contains("Total completed: 12\n"), "{summary}");
}
