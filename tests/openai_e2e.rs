//! The openai backend end to end: the real binary relaying from fake upstreams written here
//! (plain TCP, TLS with the committed test CA, a Unix socket), on every edge of the protocol.

mod common;

use std::io::Read;
use std::time::Duration;

use common::upstream::*;
use common::*;
use streaming_daemon::config::SocketType;

const LIMIT: Duration = Duration::from_secs(20);

/// A daemon running the openai backend in front of `upstream`.
fn daemon(name: &str, upstream: &FakeUpstream, yaml: &str, env: &[(&str, &str)]) -> Daemon {
    upstream_daemon(name, "openai", upstream, yaml, env)
}

#[test]
fn a_normal_stream_is_relayed_with_done() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![ok_stream(&[
            ROLE_CHUNK,
            &delta("\"Hello! \""),
            &delta("\"You said hi\""),
            FINISH_CHUNK,
            USAGE_CHUNK,
            DONE_EVENT,
        ])],
    );
    let d = daemon(
        "oa-normal",
        &upstream,
        "",
        &[("OPENAI_API_KEY", "sk-test-123")],
    );
    let body = d.request(br#"{"prompt":"hi","user_id":1,"max_tokens":7,"test_pattern":"normal"}"#);
    assert!(body.starts_with(SSE_HEAD), "{body}");
    assert_eq!(contents(&body), vec!["Hello! ", "You said hi"]);
    assert!(body.ends_with("data: [DONE]\n\n"));

    let request = &upstream.requests()[0];
    assert!(
        request
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer sk-test-123")
    );
    assert_eq!(request.header("x-test-pattern").as_deref(), Some("normal"));
    assert_eq!(
        request.header("accept").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(
        request.header("accept-encoding").as_deref(),
        Some("identity")
    );
    let json: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(json["model"], "gpt-4o-mini");
    assert_eq!(json["stream"], true);
    assert_eq!(json["max_tokens"], 7);
    assert_eq!(json["messages"][0]["content"], "hi");
}

#[test]
fn content_edges_unicode_big_and_tiny_chunks() {
    let big = "x".repeat(4096);
    let big_json = format!("\"{big}\"");
    let tiny: Vec<String> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
        .chars()
        .map(|c| delta(&format!("\"{c}\"")))
        .collect();
    let mut tiny_events: Vec<&str> = tiny.iter().map(String::as_str).collect();
    tiny_events.push(DONE_EVENT);
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            ok_stream(&[
                &delta(r#""caf\u00e9 \ud83d\ude00 \"q\" \\ \n""#),
                DONE_EVENT,
            ]),
            ok_stream(&[
                &delta(&big_json),
                &delta(&big_json),
                &delta(&big_json),
                DONE_EVENT,
            ]),
            ok_stream(&tiny_events),
            // A lone surrogate escape: the text still arrives, with U+FFFD in its place.
            ok_stream(&[&delta(r#""lone \ud83d!""#), DONE_EVENT]),
        ],
    );
    let d = daemon("oa-edges", &upstream, "", &[]);
    assert_eq!(contents(&d.request(b"{}")), vec!["café 😀 \"q\" \\ \n"]);
    assert_eq!(
        contents(&d.request(b"{}")),
        vec![big.clone(), big.clone(), big]
    );
    let body = d.request(b"{}");
    assert_eq!(contents(&body).len(), 50);
    assert_eq!(
        contents(&body).concat(),
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
    );
    assert!(body.ends_with("data: [DONE]\n\n"));
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["lone \u{FFFD}!"], "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
    // No key configured: no Authorization header at all.
    assert_eq!(upstream.requests()[0].header("authorization"), None);
}

#[test]
fn completion_signals_and_their_absence() {
    let cut_mid_chunk = {
        let mut body = String::from(SSE_OK_CHUNKED);
        body.push_str(&chunk(&delta("\"partial\"")));
        body.push_str("40\r\ndata: {\"choices\"");
        vec![Action::Send(body.into_bytes()), Action::Close]
    };
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            // finish_reason without [DONE]: complete.
            ok_stream(&[&delta("\"a\""), FINISH_CHUNK]),
            // a clean end with no completion signal: no [DONE], no error.
            ok_stream(&[&delta("\"b\"")]),
            cut_mid_chunk,
            // malformed JSON in one event is skipped.
            ok_stream(&[&delta("\"c\""), "data: {not json\n\n", &delta("\"d\""), DONE_EVENT]),
            // an in-stream error object.
            ok_stream(&[&delta("\"e\""), "data: {\"error\":{\"message\":\"upstream exploded\",\"type\":\"server_error\"}}\n\n"]),
        ],
    );
    let mut d = daemon("oa-completion", &upstream, "", &[]);
    let body = d.request(b"{}");
    assert!(
        body.ends_with("data: {\"content\":\"a\"}\n\ndata: [DONE]\n\n"),
        "{body}"
    );
    let body = d.request(b"{}");
    assert!(body.ends_with("data: {\"content\":\"b\"}\n\n"), "{body}");
    let body = d.request(b"{}");
    assert!(body.contains("data: {\"content\":\"partial\"}"));
    assert!(body.ends_with("event: error\ndata: {\"error\":\"the upstream connection closed before the answer was complete\"}\n\n"), "{body}");
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["c", "d"]);
    assert!(body.ends_with("data: [DONE]\n\n"));
    let body = d.request(b"{}");
    assert!(body.contains("event: error\n"), "{body}");
    assert!(
        !body.contains("exploded"),
        "the upstream's words stay in the log: {body}"
    );
    assert!(!body.contains("[DONE]"));
    d.wait_for_log("upstream exploded", LIMIT);
}

#[test]
fn upstream_statuses_become_client_statuses() {
    let error = |code: &str, extra: &str| {
        let body = r#"{"error":{"message":"nope sk-secret-key","type":"x"}}"#;
        vec![send(&format!("HTTP/1.1 {code}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}", body.len()))]
    };
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            error("401 Unauthorized", ""),
            error("429 Too Many Requests", "retry-after: 7\r\n"),
            error("500 Internal Server Error", ""),
        ],
    );
    let mut d = daemon(
        "oa-status",
        &upstream,
        "",
        &[("OPENAI_API_KEY", "sk-secret-key")],
    );
    let response = d.request(b"{}");
    assert_eq!(status(&response), "HTTP/1.1 502 Bad Gateway");
    assert!(!response.contains("nope"));
    let response = d.request(b"{}");
    let (line, headers, _) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 429 Too Many Requests");
    assert!(
        headers.contains(&("Retry-After".into(), "7".into())),
        "{headers:?}"
    );
    assert_eq!(status(&d.request(b"{}")), "HTTP/1.1 502 Bad Gateway");
    // The upstream's words are logged, with the key it echoed masked...
    d.wait_for_log("nope sk-<redacted>", LIMIT);
    // ...and once every connection has ended, no line can still bring the key.
    wait_for_log_count(&mut d, "msg=\"connection ended\"", 3);
    assert!(
        d.log.iter().all(|l| !l.contains("sk-secret-key")),
        "the key leaked into the log"
    );
}

#[test]
fn a_compressed_answer_is_a_502_not_an_empty_stream() {
    // A gzip member (of an SSE event): what a server that ignores Accept-Encoding sends.
    let gzipped: &[u8] =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x4b\x49\x2c\x49\xb4\x52\x50\x8a\x77\
        \xf1\xf7\x73\x8d\xe5\xe2\x02\x00\x6e\x7c\x3c\x5c\x0e\x00\x00\x00";
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n\
         content-length: {}\r\n\r\n",
        gzipped.len()
    )
    .into_bytes();
    response.extend_from_slice(gzipped);
    let upstream = FakeUpstream::start(Kind::Plain, vec![vec![Action::Send(response)]]);
    let mut d = daemon("oa-gzip", &upstream, "", &[]);
    let response = d.request(b"{}");
    let (line, _, body) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 502 Bad Gateway", "{response}");
    assert_eq!(
        body,
        "{\"error\":\"the upstream API sent a compressed answer the daemon cannot read\"}\n"
    );
    assert_eq!(
        upstream.requests()[0].header("accept-encoding").as_deref(),
        Some("identity")
    );
    let end = d.wait_for_log("msg=\"connection ended\"", LIMIT);
    assert!(end.contains("status=502"), "{end}");
    assert!(end.contains("outcome=upstream_status"), "{end}");
}

/// The response-head, idle-gap and connect timeouts are step tests on a synthetic clock
/// (reactor_steps.rs); here, an upstream nobody listens for.
#[test]
fn an_unreachable_upstream_is_a_502() {
    // Nothing listens on the port of a listener we just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::env::temp_dir().join(format!("sd-oa-unreach-{}.yaml", std::process::id()));
    std::fs::write(&config, "backend:\n  provider: openai\n").unwrap();
    let base = format!("http://127.0.0.1:{port}/v1");
    let unreachable = Daemon::start_at(
        temp_socket_path("oa-unreach"),
        &["-config", config.to_str().unwrap(), "-openai-base", &base],
    );
    assert_eq!(
        status(&unreachable.request(b"{}")),
        "HTTP/1.1 502 Bad Gateway"
    );
    let _ = std::fs::remove_file(&config);
}

#[test]
fn a_response_written_one_byte_at_a_time_is_relayed() {
    let mut body = String::from(SSE_OK_CHUNKED);
    // CRLF line ends in one event, LF in the others.
    body.push_str(&chunk(&format!(
        "{ROLE_CHUNK}{}",
        delta("\"one \"").replace('\n', "\r\n")
    )));
    body.push_str(&chunk(&format!(
        "{}{DONE_EVENT}",
        delta(r#""byte \ud83d\ude00""#)
    )));
    body.push_str(LAST_CHUNK);
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![Action::SendBytewise(body.into_bytes())]],
    );
    let d = daemon("oa-bytewise", &upstream, "", &[]);
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["one ", "byte 😀"]);
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[test]
fn sequential_streams_reuse_one_upstream_connection() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        (0..3)
            .map(|i| ok_stream(&[&delta(&format!("\"n{i}\"")), DONE_EVENT]))
            .collect(),
    );
    let d = daemon("oa-keepalive", &upstream, "", &[]);
    for i in 0..3 {
        assert_eq!(contents(&d.request(b"{}")), vec![format!("n{i}")]);
    }
    assert_eq!(upstream.requests().len(), 3);
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn a_pooled_connection_the_server_closed_is_retried_on_a_fresh_one() {
    let mut first = ok_stream(&[&delta("\"first\""), DONE_EVENT]);
    // After answering, the server closes without saying so: the pooled connection is dead.
    first.push(Action::Close);
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![first, ok_stream(&[&delta("\"second\""), DONE_EVENT])],
    );
    let d = daemon("oa-retry", &upstream, "", &[]);
    assert_eq!(contents(&d.request(b"{}")), vec!["first"]);
    assert_eq!(contents(&d.request(b"{}")), vec!["second"]);
    assert_eq!(upstream.connections(), 2);
}

#[test]
fn a_pooled_connection_the_upstream_wrote_to_while_idle_is_not_reused() {
    let ca = certs_dir().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let stray_408 = "HTTP/1.1 408 Request Timeout\r\n\r\n";
    let stray_event = delta("\"not for you\"");
    for kind in [Kind::Plain, Kind::Tls] {
        let name = match kind {
            Kind::Tls => "oa-stray-tls",
            _ => "oa-stray",
        };
        // Each response is followed, once the daemon has pooled its connection, by bytes nobody
        // asked for: they must never become the next client's answer.
        let mut gates = Vec::new();
        let mut written = Vec::new();
        let mut answer = |text: &str, stray: &str| {
            let (open, held) = gate();
            let (done, wrote) = gate();
            gates.push(open);
            written.push(wrote);
            let mut actions = ok_stream(&[&delta(&format!("\"{text}\"")), DONE_EVENT]);
            actions.extend([
                Action::WaitFor(held),
                Action::Send(stray.as_bytes().to_vec()),
                Action::Notify(done),
            ]);
            actions
        };
        let script = vec![
            answer("first", stray_408),
            answer("second", &stray_event),
            ok_stream(&[&delta("\"third\""), DONE_EVENT]),
        ];
        let upstream = FakeUpstream::start(kind, script);
        let d = daemon(name, &upstream, "", &[("SSL_CERT_FILE", ca)]);
        for (i, text) in ["first", "second", "third"].iter().enumerate() {
            let body = d.request(b"{}");
            assert_eq!(contents(&body), vec![text.to_string()], "{name}: {body}");
            assert!(body.ends_with("data: [DONE]\n\n"), "{name}: {body}");
            if let (Some(open), Some(wrote)) = (gates.get(i), written.get(i)) {
                // The client's stream has ended: its upstream connection is idle in the pool.
                open.send(()).unwrap();
                wrote.recv_timeout(LIMIT).unwrap();
            }
        }
        assert_eq!(upstream.requests().len(), 3, "{name}");
        assert_eq!(
            upstream.connections(),
            3,
            "{name}: one fresh connection per stray"
        );
    }
}

#[test]
fn a_client_that_leaves_closes_the_upstream_connection() {
    let (open, held) = gate();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&delta("\"x\""))).into_bytes()),
            Action::WaitFor(held),
        ]],
    );
    let mut d = daemon("oa-leave", &upstream, "", &[]);
    let baseline = d.open_fds();
    drop(d.open_stream());
    d.wait_for_log("outcome=client_disconnected", LIMIT);
    eventually(LIMIT, "fds back to the baseline", || {
        d.open_fds() == baseline
    });
    // Let the fake go on: its next read finds the connection closed by the daemon.
    open.send(()).unwrap();
    wait_until(LIMIT, "the upstream to see its connection closed", || {
        upstream.closed_by_peer() == 1
    });
}

#[test]
fn a_slow_client_does_not_make_the_daemon_buffer_a_fast_upstream() {
    // 8 MiB of content, far more than the kernel buffers between us and the client.
    let piece = delta(&format!("\"{}\"", "y".repeat(8000)));
    let mut body = String::from(SSE_OK_CHUNKED);
    for _ in 0..1024 {
        body.push_str(&chunk(&piece));
    }
    body.push_str(&chunk(DONE_EVENT));
    body.push_str(LAST_CHUNK);
    let upstream = FakeUpstream::start(Kind::Plain, vec![vec![Action::Send(body.into_bytes())]]);
    let d = daemon("oa-slow", &upstream, "", &[]);
    let rss = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .unwrap()
    };
    let before = rss();
    let (mut client, server) = tcp_pair();
    hand_off(&d.socket, SocketType::Stream, b"{}", &server);
    drop(server);
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let mut peak = before;
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("{e}"),
        }
        if total % (256 * 1024) < 4096 {
            peak = peak.max(rss());
        }
    }
    assert!(total > 8_000_000, "got {total} bytes");
    assert!(
        peak < before + 4 * 1024,
        "RSS grew from {before} kB to {peak} kB while relaying 8 MiB"
    );
}

#[test]
fn tls_upstreams_are_verified_against_the_configured_ca() {
    let ca = certs_dir().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let upstream = FakeUpstream::start(
        Kind::Tls,
        vec![
            ok_stream(&[&delta("\"secure\""), DONE_EVENT]),
            ok_stream(&[&delta("\"again\""), DONE_EVENT]),
        ],
    );
    let d = daemon("oa-tls", &upstream, "", &[("SSL_CERT_FILE", ca)]);
    assert_eq!(contents(&d.request(b"{}")), vec!["secure"]);
    assert_eq!(contents(&d.request(b"{}")), vec!["again"]);
    assert_eq!(upstream.connections(), 1, "TLS connections are pooled too");
}

#[test]
fn a_large_answer_over_tls_arrives_whole_and_in_order() {
    // 2.4 MB in full 16 KiB records: reads that end inside a record, and records whose
    // plaintext is more than the read buffer has room for.
    let pieces: Vec<String> = (0..300)
        .map(|i| {
            char::from(b'a' + (i % 26) as u8)
                .to_string()
                .repeat(8000 + i)
        })
        .collect();
    let events: Vec<String> = pieces.iter().map(|p| delta(&format!("\"{p}\""))).collect();
    let mut body: Vec<&str> = events.iter().map(String::as_str).collect();
    body.push(DONE_EVENT);
    let upstream = FakeUpstream::start(Kind::Tls, vec![ok_stream(&body)]);
    let ca = certs_dir().join("ca.pem");
    let d = daemon(
        "oa-tls-large",
        &upstream,
        "",
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    assert_eq!(contents(&d.request(b"{}")), pieces);
}

#[test]
fn a_certificate_the_daemon_does_not_trust_is_an_unreachable_upstream() {
    let untrusted = FakeUpstream::start(Kind::Tls, vec![ok_stream(&[DONE_EVENT])]);
    // Trust only the server's own certificate, not the CA that issued it.
    let mut d = daemon(
        "oa-tls-bad",
        &untrusted,
        "",
        &[(
            "SSL_CERT_FILE",
            certs_dir().join("server.pem").to_str().unwrap(),
        )],
    );
    let response = d.request(b"{}");
    let (line, _, body) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 502 Bad Gateway", "{response}");
    assert!(
        !body.contains("certificate"),
        "the details stay in the log: {body}"
    );
    let end = d.wait_for_log("msg=\"connection ended\"", LIMIT);
    assert!(end.contains("status=502"), "{end}");
    assert!(end.contains("outcome=upstream_unreachable"), "{end}");
    let warning = d.wait_for_log("upstream TLS handshake failed", LIMIT);
    assert!(warning.contains("level=WARN"), "{warning}");
    assert!(warning.contains("invalid peer certificate"), "{warning}");
    assert!(
        untrusted.requests().is_empty(),
        "no request crossed the refused handshake"
    );

    // Switching verification off lets the same server through.
    let d = daemon(
        "oa-tls-insecure",
        &untrusted,
        "",
        &[("OPENAI_INSECURE_SSL", "true")],
    );
    assert!(d.request(b"{}").ends_with("data: [DONE]\n\n"));
}

#[test]
fn a_unix_socket_upstream_is_used_with_the_urls_host_and_path() {
    let upstream = FakeUpstream::start(
        Kind::Unix,
        vec![ok_stream(&[&delta("\"via unix\""), DONE_EVENT])],
    );
    let d = daemon("oa-unix", &upstream, "", &[]);
    assert_eq!(contents(&d.request(b"{}")), vec!["via unix"]);
    let request = &upstream.requests()[0];
    assert!(request
        .head
        .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
    assert_eq!(request.header("host").as_deref(), Some("api.internal"));
}

#[test]
fn tls_edges_big_requests_refused_connects_and_truncation() {
    let ca = certs_dir().join("ca.pem");
    let ca = ca.to_str().unwrap();
    // A close-delimited body cut without TLS close_notify is a cut, not a clean end.
    let close_delimited = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n{}",
        delta("\"part\"")
    );
    let upstream = FakeUpstream::start(
        Kind::Tls,
        vec![
            ok_stream(&[&delta("\"big\""), DONE_EVENT]),
            vec![send(&close_delimited), Action::Close],
        ],
    );
    // A request larger than what rustls buffers before its handshake ends (64 KiB).
    let big = format!(r#"{{"prompt":"{}"}}"#, "p".repeat(100_000));
    let base = format!("{}/v1", upstream.base);
    let d = Daemon::start_with_env(
        temp_socket_path("oa-tls-big"),
        &[
            "-backend",
            "openai",
            "-openai-base",
            &base,
            "-max-handoff-bytes",
            "256KiB",
        ],
        &[("SSL_CERT_FILE", ca)],
    );
    assert_eq!(contents(&d.request(big.as_bytes())), vec!["big"]);
    assert!(upstream.requests()[0].body.len() > 100_000);
    let body = d.request(b"{}");
    assert!(body.contains("data: {\"content\":\"part\"}"), "{body}");
    assert!(body.ends_with("data: {\"error\":\"the upstream connection failed before the answer was complete\"}\n\n"), "{body}");

    // A refused TLS connect is an unreachable upstream, not a cut.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("https://127.0.0.1:{port}/v1");
    let mut refused = Daemon::start_with_env(
        temp_socket_path("oa-tls-refused"),
        &["-backend", "openai", "-openai-base", &base],
        &[("SSL_CERT_FILE", ca)],
    );
    assert_eq!(status(&refused.request(b"{}")), "HTTP/1.1 502 Bad Gateway");
    refused.wait_for_log("outcome=upstream_unreachable", LIMIT);
}

#[test]
fn a_bad_ca_file_is_a_configuration_error_before_anything_binds() {
    let config = std::env::temp_dir().join(format!("sd-oa-badca-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        "backend:\n  provider: openai\n  openai:\n    api_base: https://127.0.0.1:1/v1\n    ca_file: /nonexistent/ca.pem\n",
    )
    .unwrap();
    let socket = temp_socket_path("oa-badca");
    let mut d = Daemon::spawn(&socket, &["-config", config.to_str().unwrap()]);
    assert_eq!(d.wait_exit(LIMIT), 2);
    d.wait_for_log(
        "cannot read CA certificates from /nonexistent/ca.pem",
        LIMIT,
    );
    assert_eq!(
        d.count_log("cannot read CA certificates from /nonexistent/ca.pem"),
        1
    );
    assert!(!socket.exists(), "nothing was bound");
    let _ = std::fs::remove_file(&config);
}

#[test]
fn a_warning_that_repeats_within_a_stream_is_logged_once_and_counted() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![ok_stream(&[
            "data: {not json\n\n",
            "data: {still not\n\n",
            "data: {nor this\n\n",
            &delta("\"ok\""),
            DONE_EVENT,
        ])],
    );
    let mut d = daemon("oa-repeats", &upstream, "", &[]);
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["ok"]);
    let end = d.wait_for_log("msg=\"connection ended\"", LIMIT);
    assert!(end.contains(" suppressed=2"), "{end}");
    assert_eq!(d.count_log("skipped an upstream event"), 1);
}
