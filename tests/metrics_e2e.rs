//! The metrics endpoint of the real binary: exact counts after a known workload, a strict
//! exposition-format check, health, and the bounds on scrape connections.

mod common;

#[path = "../src/metrics/exposition_check.rs"]
#[allow(dead_code)]
mod exposition_check;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

fn start() -> (Daemon, SocketAddr) {
    let mut daemon = Daemon::start(
        "metrics",
        &["-metrics-addr", "127.0.0.1:0", "-message-delay", "0"],
    );
    let line = daemon.wait_for_log("msg=\"metrics listening\"", LIMIT);
    let address = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    (daemon, address)
}

fn get(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn scrape(address: SocketAddr) -> String {
    let response = get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, headers, body) = parse_response(&response);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&(
            "Content-Type".into(),
            "text/plain; version=0.0.4; charset=utf-8".into()
        )),
        "{headers:?}"
    );
    body
}

fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series}"))
        .parse()
        .unwrap()
}

#[test]
fn counters_match_a_known_workload() {
    let (mut daemon, address) = start();
    let fresh = scrape(address);
    exposition_check::check(&fresh).unwrap();
    // Go's five words on Go's two counters, ours on ours: all there from the start, at 0.
    for reason in [
        "client_disconnected",
        "timeout",
        "canceled",
        "network",
        "other",
    ] {
        for family in ["daemon_handoff_errors_total", "daemon_stream_errors_total"] {
            let series = format!("{family}{{reason=\"{reason}\"}}");
            assert_eq!(value(&fresh, &series), 0.0, "{series}");
        }
    }
    for reason in [
        "too_large",
        "no_fd",
        "bad_fd",
        "ctrunc",
        "timeout",
        "network",
        "other",
        "bad_json",
        "bad_attachment",
        "unknown_profile",
        "unknown_backend",
    ] {
        let series = format!("daemon_handoff_rejections_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&fresh, &series), 0.0, "{series}");
    }

    let mut bytes = 0;
    for i in 0..5 {
        let body = daemon.request(format!(r#"{{"prompt":"n{i}"}}"#).as_bytes());
        assert!(body.ends_with("data: [DONE]\n\n"));
        bytes += body.len();
    }
    let bad = daemon.request(b"{");
    bytes += bad.len();
    eventually(LIMIT, "all six connections to close", || {
        daemon.count_log("outcome=") == 6
    });

    let body = scrape(address);
    exposition_check::check(&body).unwrap();
    assert_eq!(value(&body, "daemon_connections_total"), 6.0);
    // Bad data arrives whole: a handoff, then rejected after receipt (Go counted it as a
    // stream error, `other`).
    assert_eq!(value(&body, "daemon_handoffs_total"), 6.0);
    assert_eq!(
        value(
            &body,
            "daemon_handoff_rejections_total{reason=\"bad_json\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&body, "daemon_stream_errors_total{reason=\"other\"}"),
        1.0
    );
    assert_eq!(
        value(&body, "daemon_handoff_errors_total{reason=\"other\"}"),
        0.0
    );
    assert_eq!(
        value(&body, "daemon_stream_outcomes_total{outcome=\"completed\"}"),
        5.0
    );
    assert_eq!(value(&body, "daemon_chunks_sent_total"), 90.0);
    assert_eq!(value(&body, "daemon_bytes_sent_total"), bytes as f64);
    assert_eq!(value(&body, "daemon_stream_duration_seconds_count"), 5.0);
    assert_eq!(value(&body, "daemon_handoff_duration_seconds_count"), 6.0);
    assert_eq!(
        value(&body, "daemon_backend_requests_total{backend=\"mock\"}"),
        5.0
    );
    // A local backend's time to first byte: from its start to its first content event.
    assert_eq!(
        value(&body, "daemon_backend_ttfb_seconds_count{backend=\"mock\"}"),
        5.0
    );
    assert_eq!(value(&body, "daemon_active_streams"), 0.0);
    assert_eq!(value(&body, "daemon_active_connections"), 0.0);
    assert_eq!(value(&body, "daemon_peak_streams"), 1.0);
    assert!(value(&body, "process_open_fds") > 0.0);
    assert!(value(&body, "process_resident_memory_bytes") > 0.0);
}

#[test]
fn health_and_other_routes() {
    let (_daemon, address) = start();
    let (status, headers, body) = parse_response(&get(address, "GET /healthz HTTP/1.1\r\n\r\n"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains(&("Content-Type".into(), "application/json".into())));
    assert_eq!(
        body,
        r#"{"status":"ok","active_streams":0,"active_connections":0}"#
    );
    assert!(get(address, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(get(
        address,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    )
    .starts_with("HTTP/1.1 405 "));
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert!(get(address, &huge).starts_with("HTTP/1.1 431 "));
}

#[test]
fn a_silent_scrape_connection_does_not_block_others() {
    let (_daemon, address) = start();
    let _silent = TcpStream::connect(address).unwrap();
    let mut partial = TcpStream::connect(address).unwrap();
    partial.write_all(b"GET /metr").unwrap();
    let body = scrape(address);
    assert!(body.contains("daemon_active_streams 0"));
}

#[test]
fn a_client_that_half_closes_after_its_request_is_answered() {
    let (_daemon, address) = start();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}
