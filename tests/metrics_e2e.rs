//! The metrics endpoint of the real binary: exact counts after a known workload, a strict
//! exposition-format check, health, and the bounds on scrape connections.

mod common;

#[path = "../src/metrics/exposition_check.rs"]
#[allow(dead_code)]
mod exposition_check;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use streaming_daemon::config::SocketType;
use streaming_daemon::sys::{fdpass, socket};

const LIMIT: Duration = Duration::from_secs(20);

fn start() -> (Daemon, SocketAddr) {
    start_mock("metrics", &["-message-delay", "0"])
}

/// The mock daemon with `args`, serving metrics on a free port.
fn start_mock(name: &str, args: &[&str]) -> (Daemon, SocketAddr) {
    let mut args = args.to_vec();
    args.extend(["-metrics-addr", "127.0.0.1:0"]);
    let daemon = Daemon::start(name, &args);
    with_metrics_address(daemon)
}

/// The daemon and the address its log says metrics are served on.
fn with_metrics_address(mut daemon: Daemon) -> (Daemon, SocketAddr) {
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

// ---------------------------------------------------------------------------------------------
// Go's labels, one provoked ending at a time (SPEC §7.2): each run drives the real binary into
// known endings, then checks that the Go counters and ours moved by exactly that, and nothing
// else did.

/// Every sample of a scrape, by series (name and labels).
fn samples(address: SocketAddr) -> BTreeMap<String, f64> {
    scrape(address)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The four families that say how connections ended: Go's two and ours.
const ENDINGS: [&str; 4] = [
    "daemon_stream_errors_total{",
    "daemon_handoff_errors_total{",
    "daemon_stream_outcomes_total{",
    "daemon_handoff_rejections_total{",
];

/// The ending series that differ between two scrapes, and by how much.
fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(series, _)| ENDINGS.iter().any(|family| series.starts_with(family)))
        .filter_map(|(series, value)| {
            let was = before.get(series).copied().unwrap_or(0.0);
            (*value != was).then(|| (series.clone(), value - was))
        })
        .collect()
}

/// Asserts that exactly `expected` moved, each by its amount: `("family", "label", n)`.
fn assert_moved(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    expected: &[(&str, &str, f64)],
) {
    let expected: BTreeMap<String, f64> = expected
        .iter()
        .map(|(family, label, n)| {
            let name = match *family {
                "daemon_stream_outcomes_total" => "outcome",
                _ => "reason",
            };
            (format!("{family}{{{name}=\"{label}\"}}"), *n)
        })
        .collect();
    assert_eq!(moved(before, after), expected);
}

/// The sum of a labelled family.
fn sum(samples: &BTreeMap<String, f64>, family: &str) -> f64 {
    let prefix = format!("{family}{{");
    samples
        .iter()
        .filter(|(series, _)| series.starts_with(&prefix))
        .map(|(_, value)| value)
        .sum()
}

/// Polls the scrape (bounded) until no connection is active and `ended` connections have
/// ended since `before` (each once: in an outcome or a rejection); returns that scrape.
fn wait_until_ended(
    address: SocketAddr,
    before: &BTreeMap<String, f64>,
    ended: f64,
) -> BTreeMap<String, f64> {
    wait_until_ended_with(address, before, ended, 0.0)
}

/// Like `wait_until_ended`, with `active` connections left running.
fn wait_until_ended_with(
    address: SocketAddr,
    before: &BTreeMap<String, f64>,
    ended: f64,
    active: f64,
) -> BTreeMap<String, f64> {
    let endings = |s: &BTreeMap<String, f64>| {
        sum(s, "daemon_stream_outcomes_total") + sum(s, "daemon_handoff_rejections_total")
    };
    let mut last = BTreeMap::new();
    eventually(LIMIT, &format!("{ended} connections to end"), || {
        last = samples(address);
        last["daemon_active_connections"] == active && endings(&last) - endings(before) >= ended
    });
    last
}

/// The rejections that come after the handoff was received and counted (SPEC §7.2).
const AFTER_STAGE: [&str; 4] = [
    "bad_json",
    "bad_attachment",
    "unknown_profile",
    "unknown_backend",
];

fn after_stage(s: &BTreeMap<String, f64>) -> f64 {
    AFTER_STAGE
        .iter()
        .map(|r| s[&format!("daemon_handoff_rejections_total{{reason=\"{r}\"}}")])
        .sum()
}

fn receive_stage(s: &BTreeMap<String, f64>) -> f64 {
    sum(s, "daemon_handoff_rejections_total") - after_stage(s)
}

/// SPEC §7.3, over what happened between two scrapes of an idle daemon; and Go's two counters
/// are the same endings in Go's words.
fn assert_the_books_balance(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) {
    let delta = |f: &dyn Fn(&BTreeMap<String, f64>) -> f64| f(after) - f(before);
    let connections = delta(&|s| s["daemon_connections_total"]);
    let handoffs = delta(&|s| s["daemon_handoffs_total"]);
    let outcomes = delta(&|s| sum(s, "daemon_stream_outcomes_total"));
    let (received, refused) = (delta(&receive_stage), delta(&after_stage));
    assert_eq!(connections, handoffs + received, "{after:#?}");
    assert_eq!(handoffs, outcomes + refused, "{after:#?}");
    assert_eq!(delta(&|s| sum(s, "daemon_handoff_errors_total")), received);
    let not_errors = delta(&|s| {
        s["daemon_stream_outcomes_total{outcome=\"completed\"}"]
            + s["daemon_stream_outcomes_total{outcome=\"resumed_elsewhere\"}"]
    });
    assert_eq!(
        delta(&|s| sum(s, "daemon_stream_errors_total")),
        outcomes - not_errors + refused
    );
}

/// An `AF_UNIX` stream socket that is connected to nothing: a valid handoff fd (a stream
/// socket) on which every write fails with `ENOTCONN`, neither a reset nor a broken pipe.
fn unconnected_socket() -> OwnedFd {
    // SAFETY: (test) socket() takes no pointers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: (test) `fd` is open and owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn client_side_endings_move_exactly_their_go_labels() {
    let (daemon, address) = start_mock(
        "labels-client",
        &["-message-delay", "20ms", "-write-timeout", "200ms"],
    );
    let before = samples(address);

    // Completed: no Go error.
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    // A client that closes, and one that resets, mid-stream: client_disconnected.
    drop(daemon.open_stream());
    reset(daemon.open_stream());
    // A client that reads nothing: its small buffer fills, then the write stall times out.
    let (stalled, theirs) = unix_pair();
    streaming_daemon::sys::socket::set_send_buffer(theirs.as_fd(), 1).unwrap();
    hand_off(&daemon.socket, SocketType::Stream, b"{}", &theirs);
    drop(theirs);
    // A socket error that is neither: Go's `network`.
    hand_off(
        &daemon.socket,
        SocketType::Stream,
        b"{}",
        &unconnected_socket(),
    );

    let after = wait_until_ended(address, &before, 5.0);
    drop(stalled);
    assert_moved(
        &before,
        &after,
        &[
            ("daemon_stream_errors_total", "client_disconnected", 2.0),
            ("daemon_stream_errors_total", "timeout", 1.0),
            ("daemon_stream_errors_total", "network", 1.0),
            ("daemon_stream_outcomes_total", "completed", 1.0),
            ("daemon_stream_outcomes_total", "client_disconnected", 2.0),
            ("daemon_stream_outcomes_total", "write_timeout", 1.0),
            ("daemon_stream_outcomes_total", "network", 1.0),
        ],
    );
    assert_the_books_balance(&before, &after);
}

#[test]
fn a_max_duration_cut_is_a_go_timeout() {
    let (daemon, address) = start_mock(
        "labels-duration",
        &["-message-delay", "10s", "-max-stream-duration-ms", "150"],
    );
    let before = samples(address);
    let mut client = daemon.open_stream();
    let rest = read_to_end(&mut client, LIMIT);
    assert!(
        rest.ends_with("event: error\ndata: {\"error\":\"maximum stream duration exceeded\"}\n\n"),
        "{rest}"
    );
    let after = wait_until_ended(address, &before, 1.0);
    assert_moved(
        &before,
        &after,
        &[
            ("daemon_stream_errors_total", "timeout", 1.0),
            ("daemon_stream_outcomes_total", "max_duration", 1.0),
        ],
    );
    assert_the_books_balance(&before, &after);
}

#[test]
fn bad_handoffs_move_exactly_their_go_labels() {
    let (daemon, address) = start_mock(
        "labels-handoff",
        &[
            "-message-delay",
            "0",
            "-max-handoff-bytes",
            "1KiB",
            "-handoff-timeout",
            "150ms",
        ],
    );
    let before = samples(address);
    let status = |text: String| parse_response(&text).0;

    // Receive stage: Go's handoff errors.
    assert_eq!(
        status(daemon.request(&[b' '; 1025])),
        "HTTP/1.1 413 Payload Too Large"
    );
    let apache = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    blocking_send(&apache, b"{}");
    drop(apache);
    let (pipe_read, pipe_write) = std::io::pipe().unwrap();
    hand_off(&daemon.socket, SocketType::Stream, b"{}", &pipe_write);
    drop((pipe_read, pipe_write));
    let pipes: Vec<_> = (0..12).map(|_| std::io::pipe().unwrap()).collect();
    let apache = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    let fds: Vec<_> = pipes.iter().map(|(reader, _)| reader.as_fd()).collect();
    send_fds(&apache, &fds);
    drop(apache);
    // The fd and part of the data, then Apache says nothing more: 500 after the handoff timeout.
    let (mut waiting, server) = tcp_pair();
    let apache = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    fdpass::send_with_fd(&apache, b"{\"prompt\"", server.as_raw_fd()).unwrap();
    drop(server);
    assert_eq!(
        status(read_to_end(&mut waiting, LIMIT)),
        "HTTP/1.1 500 Internal Server Error"
    );
    drop(apache);
    // After receipt: Go's stream errors.
    assert_eq!(status(daemon.request(b"{")), "HTTP/1.1 400 Bad Request");
    assert_eq!(
        status(daemon.request(br#"{"backend":"openai"}"#)),
        "HTTP/1.1 400 Bad Request"
    );

    let after = wait_until_ended(address, &before, 7.0);
    assert_moved(
        &before,
        &after,
        &[
            ("daemon_handoff_errors_total", "other", 4.0),
            ("daemon_handoff_errors_total", "timeout", 1.0),
            ("daemon_stream_errors_total", "other", 2.0),
            ("daemon_handoff_rejections_total", "too_large", 1.0),
            ("daemon_handoff_rejections_total", "no_fd", 1.0),
            ("daemon_handoff_rejections_total", "bad_fd", 1.0),
            ("daemon_handoff_rejections_total", "ctrunc", 1.0),
            ("daemon_handoff_rejections_total", "timeout", 1.0),
            ("daemon_handoff_rejections_total", "bad_json", 1.0),
            ("daemon_handoff_rejections_total", "unknown_backend", 1.0),
        ],
    );
    assert_eq!(
        after["daemon_handoffs_total"] - before["daemon_handoffs_total"],
        2.0
    );
    assert_the_books_balance(&before, &after);
}

#[test]
fn shutdown_cancels_what_it_ends() {
    // The drain may last 2 s: long enough to scrape it, short enough to wait for its deadline.
    let (mut daemon, address) = start_mock(
        "labels-shutdown",
        &["-message-delay", "10s", "-shutdown-timeout", "2s"],
    );
    let mut streaming = daemon.open_stream();
    // Two handoffs still being received when the signal comes: one whose fd has arrived, one
    // with no fd yet.
    let (mut arriving, server) = tcp_pair();
    let with_fd = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    fdpass::send_with_fd(&with_fd, b"{\"prompt\"", server.as_raw_fd()).unwrap();
    drop(server);
    let without_fd = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    blocking_send(&without_fd, b"{\"prompt\"");
    eventually(LIMIT, "three connections to be active", || {
        samples(address)["daemon_active_connections"] == 3.0
    });
    let before = samples(address);

    daemon.signal(libc::SIGTERM);
    daemon.wait_for_log("draining", LIMIT);
    // The handoff completed during the drain is answered 503: a canceled stream.
    blocking_send(&with_fd, b":\"hi\"}");
    drop(with_fd);
    let refused = read_to_end(&mut arriving, LIMIT);
    assert!(
        refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{refused}"
    );
    let during = wait_until_ended_with(address, &before, 1.0, 2.0);
    assert_moved(
        &before,
        &during,
        &[
            ("daemon_stream_errors_total", "canceled", 1.0),
            ("daemon_stream_outcomes_total", "canceled", 1.0),
        ],
    );

    // The drain deadline ends the stream, canceled too; the daemon then exits (its metrics
    // with it: the log says how the stream ended).
    let rest = read_to_end(&mut streaming, LIMIT);
    assert!(
        rest.ends_with("event: error\ndata: {\"error\":\"server shutting down\"}\n\n"),
        "{rest}"
    );
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    drop(without_fd);
    assert_eq!(daemon.count_log("shutdown timeout reached"), 1);
    assert_eq!(daemon.count_log("outcome=canceled"), 2, "{:#?}", daemon.log);
    // The handoff the deadline caught without its fd: a receive failure, Go's `other`.
    assert_eq!(daemon.count_log("outcome=other"), 1, "{:#?}", daemon.log);
}

/// The openai daemon in front of `upstream_base` (`http://host:port`), serving metrics; `yaml`
/// goes under `backend:`.
fn start_openai(name: &str, upstream_base: &str, yaml: &str) -> (Daemon, SocketAddr) {
    let config = std::env::temp_dir().join(format!("sd-{name}-{}.yaml", std::process::id()));
    std::fs::write(&config, format!("backend:\n  provider: openai\n{yaml}")).unwrap();
    let base = format!("{upstream_base}/v1");
    let daemon = Daemon::start(
        name,
        &[
            "-config",
            config.to_str().unwrap(),
            "-openai-base",
            &base,
            "-metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let _ = std::fs::remove_file(&config);
    with_metrics_address(daemon)
}

#[test]
fn upstream_failures_move_exactly_their_go_labels() {
    use common::upstream::*;
    let cut_mid_chunk = {
        let mut body = String::from(SSE_OK_CHUNKED);
        body.push_str(&chunk(&delta("\"partial\"")));
        body.push_str("40\r\ndata: {\"choices\"");
        vec![Action::Send(body.into_bytes()), Action::Close]
    };
    let (open, held) = gate();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            vec![send(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            )],
            ok_stream(&[
                &delta("\"e\""),
                "data: {\"error\":{\"message\":\"exploded\",\"type\":\"server_error\"}}\n\n",
            ]),
            ok_stream(&[&delta("\"b\"")]),
            cut_mid_chunk,
            // No response head: the response-head timeout.
            vec![Action::WaitFor(held)],
        ],
    );
    let (daemon, address) = start_openai(
        "labels-upstream",
        &upstream.base,
        "  upstream:\n    response_header_timeout_ms: 150\n",
    );
    let before = samples(address);
    assert_eq!(status(&daemon.request(b"{}")), "HTTP/1.1 502 Bad Gateway");
    assert!(daemon.request(b"{}").contains("event: error\n"));
    assert!(daemon
        .request(b"{}")
        .ends_with("data: {\"content\":\"b\"}\n\n"));
    assert!(daemon.request(b"{}").contains("event: error\n"));
    assert_eq!(
        status(&daemon.request(b"{}")),
        "HTTP/1.1 504 Gateway Timeout"
    );
    drop(open);
    let after = wait_until_ended(address, &before, 5.0);
    assert_moved(
        &before,
        &after,
        &[
            ("daemon_stream_errors_total", "other", 3.0),
            ("daemon_stream_errors_total", "network", 1.0),
            ("daemon_stream_errors_total", "timeout", 1.0),
            ("daemon_stream_outcomes_total", "upstream_status", 1.0),
            ("daemon_stream_outcomes_total", "upstream_error", 1.0),
            ("daemon_stream_outcomes_total", "upstream_incomplete", 1.0),
            ("daemon_stream_outcomes_total", "upstream_cut", 1.0),
            ("daemon_stream_outcomes_total", "upstream_timeout", 1.0),
        ],
    );
    assert_the_books_balance(&before, &after);

    // Nothing listens on the port of a listener just closed: unreachable, Go's `network`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (daemon, address) = start_openai(
        "labels-unreachable",
        &format!("http://127.0.0.1:{port}"),
        "",
    );
    let before = samples(address);
    assert_eq!(status(&daemon.request(b"{}")), "HTTP/1.1 502 Bad Gateway");
    let after = wait_until_ended(address, &before, 1.0);
    assert_moved(
        &before,
        &after,
        &[
            ("daemon_stream_errors_total", "network", 1.0),
            ("daemon_stream_outcomes_total", "upstream_unreachable", 1.0),
        ],
    );
}

#[test]
fn the_typing_backend_observes_time_to_first_byte() {
    let dir = std::env::temp_dir().join(format!("sd-labels-typing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fortune = dir.join("fortune");
    std::fs::write(&fortune, "#!/bin/sh\necho 'Hi.'\n").unwrap();
    std::fs::set_permissions(&fortune, std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = Daemon::start(
        "labels-typing",
        &[
            "-backend",
            "typing",
            "-fortune-path",
            fortune.to_str().unwrap(),
            "-metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let (daemon, address) = with_metrics_address(daemon);
    let before = samples(address);
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    let after = wait_until_ended(address, &before, 1.0);
    let _ = std::fs::remove_dir_all(&dir);
    let count = |backend: &str| {
        let series = format!("daemon_backend_ttfb_seconds_count{{backend=\"{backend}\"}}");
        after[&series] - before[&series]
    };
    assert_eq!(count("typing"), 1.0);
    assert_eq!(count("mock"), 0.0);
    assert_moved(
        &before,
        &after,
        &[("daemon_stream_outcomes_total", "completed", 1.0)],
    );
}

#[test]
fn a_call_waiting_for_its_response_head_holds_no_read_room() {
    use common::upstream::*;
    // The upstream takes the request and answers nothing until the test lets it close.
    let (open, held) = gate();
    let upstream = FakeUpstream::start(Kind::Plain, vec![vec![Action::WaitFor(held)]]);
    let (daemon, address) = start_openai("head-wait", &upstream.base, "");
    let (_client, server) = tcp_pair();
    hand_off(&daemon.socket, SocketType::Stream, b"{}", &server);
    drop(server);
    wait_until(LIMIT, "the upstream to have the request", || {
        upstream.requests().len() == 1
    });
    // Counted are the request kept for a retry and nothing for the head not yet come (a
    // read's worth of room, 16 KiB, per waiting call before).
    let buffered = value(&scrape(address), "daemon_buffered_bytes");
    assert!(buffered > 0.0 && buffered < 4096.0, "{buffered}");
    drop(open);
}
