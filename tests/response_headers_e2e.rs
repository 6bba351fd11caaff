//! A handoff's `response_headers` on the wire (SPEC §2, vectors RH1, RH2, RH7, RH11, RH12): on
//! the success head in the JSON's order, filtered, and on the error responses that follow the
//! parsing of the data, never on a 400.

mod common;

use std::time::Duration;

use common::upstream::{upstream_daemon, Action, FakeUpstream, Kind};
use common::*;

const LIMIT: Duration = Duration::from_secs(20);
/// SPEC's `H0`: the success head without its blank line.
const H0: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n";

fn head(response: &str) -> &str {
    let end = response.find("\r\n\r\n").expect("a whole head") + 4;
    &response[..end]
}

#[test]
fn custom_headers_go_on_the_success_head_in_order_and_filtered() {
    let mut d = Daemon::start("rh-mock", &["-message-delay", "0"]);
    let rh1 = d.request(br#"{"prompt":"hi","response_headers":{"X-Request-Id":"abc-123"}}"#);
    assert_eq!(head(&rh1), format!("{H0}X-Request-Id: abc-123\r\n\r\n"));
    assert!(rh1.ends_with("data: [DONE]\n\n"));

    let rh2 = d.request(
        br#"{"prompt":"hi","response_headers":{"Content-Type":"text/html","CONTENT-LENGTH":"1","content-encoding":"gzip","Transfer-Encoding":"chunked","Cache-Control":"max-age=1","Connection":"keep-alive","X-Accel-Buffering":"yes","X-Ok":"v"}}"#,
    );
    assert_eq!(head(&rh2), format!("{H0}X-Ok: v\r\n\r\n"));
    let warning = d.wait_for_log("response headers dropped", LIMIT);
    assert_eq!(warning.matches("blocked:").count(), 7, "{warning}");
    assert!(
        !warning.contains("text/html"),
        "values are never logged: {warning}"
    );

    // Not an object: none, the exact 119 bytes, a warning, and the stream runs.
    let rh7 = d.request(br#"{"prompt":"hi","response_headers":"X-A: 1"}"#);
    assert_eq!(head(&rh7), format!("{H0}\r\n"));
    assert_eq!(head(&rh7).len(), 119);
    d.wait_for_log("response headers ignored", LIMIT);

    // A 400 never carries them.
    let bad = d.request(br#"{"user_id":"abc","response_headers":{"X-Request-Id":"abc-123"}}"#);
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(!bad.contains("X-Request-Id"), "{bad}");
}

#[test]
fn an_upstream_failure_answers_with_the_custom_headers() {
    let body = r#"{"error":{"message":"boom"}}"#;
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![Action::Send(
            format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )]],
    );
    let d = upstream_daemon("rh-upstream", "openai", &upstream, "", &[]);
    let response = d.request(br#"{"prompt":"hi","response_headers":{"X-Request-Id":"abc-123"}}"#);
    let (status, headers, _) = parse_response(&response);
    assert_eq!(status, "HTTP/1.1 502 Bad Gateway");
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "Content-Length",
            "Connection",
            "X-Request-Id"
        ]
    );
}

#[test]
fn over_capacity_the_503_carries_them_after_its_own_retry_after() {
    let d = Daemon::start(
        "rh-busy",
        &["-max-connections", "1", "-message-delay", "10s"],
    );
    let _held = d.open_stream();
    let response =
        d.request(br#"{"prompt":"hi","response_headers":{"Retry-After":"9","X-Id":"r"}}"#);
    assert!(
        response
            .starts_with("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"),
        "{response}"
    );
    assert!(
        head(&response).ends_with("Connection: close\r\nRetry-After: 1\r\nX-Id: r\r\n\r\n"),
        "{response}"
    );
}
