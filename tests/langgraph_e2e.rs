//! The langgraph backend end to end: the real binary relaying from a fake LangGraph server
//! written here, with the quirks of real ones (CRLF line ends, heartbeat comments, no end
//! event, older servers' `end`, tuples of chunks or whole messages, cumulative partial
//! messages, in-stream errors, 422 with a JSON `detail`).

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::upstream::*;
use common::*;
use serde_json::Value;
use streaming_daemon::config::SocketType;

const LIMIT: Duration = Duration::from_secs(20);

fn daemon(name: &str, upstream: &FakeUpstream, env: &[(&str, &str)]) -> Daemon {
    upstream_daemon(name, "langgraph", upstream, "", env)
}

/// One LangGraph event, with the CRLF line ends real servers use.
fn event(name: &str, data: &str) -> String {
    format!("event: {name}\r\ndata: {data}\r\n\r\n")
}

const METADATA: &str = "event: metadata\r\ndata: {\"run_id\":\"r-9\",\"attempt\":1}\r\n\r\n";
const HEARTBEAT: &str = ": heartbeat\r\n\r\n";

fn message(kind: &str, text: &str) -> String {
    let content = serde_json::to_string(text).unwrap();
    format!(
        r#"{{"content":{content},"additional_kwargs":{{}},"response_metadata":{{}},"type":"{kind}","name":null,"id":"lc_run--9","tool_calls":[],"invalid_tool_calls":[],"usage_metadata":null}}"#
    )
}

/// A `messages` event of stream mode messages-tuple: `[message, metadata]`.
fn tuple(kind: &str, text: &str) -> String {
    let meta = r#"{"run_id":"r-9","graph_id":"agent","langgraph_node":"model","langgraph_step":1}"#;
    event("messages", &format!("[{},{meta}]", message(kind, text)))
}

fn token(text: &str) -> String {
    tuple("AIMessageChunk", text)
}

fn body_json(request: &Received) -> Value {
    serde_json::from_str(&request.body).unwrap()
}

#[test]
fn a_token_stream_with_heartbeats_and_no_end_event_completes() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![ok_stream(&[
            METADATA,
            HEARTBEAT,
            &token("Hello"),
            &token(" from"),
            HEARTBEAT,
            &token(" the graph."),
        ])],
    );
    let mut d = daemon(
        "lg-tokens",
        &upstream,
        &[("LANGGRAPH_API_KEY", "lgk-secret-1")],
    );
    let body = d.request(br#"{"prompt":"hi","test_pattern":"tokens"}"#);
    assert!(body.starts_with(SSE_HEAD), "{body}");
    assert_eq!(contents(&body), vec!["Hello", " from", " the graph."]);
    assert_eq!(body.matches(": keep-alive\n\n").count(), 2, "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");

    let request = &upstream.requests()[0];
    assert!(
        request
            .head
            .starts_with("POST /v1/runs/stream HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert_eq!(request.header("x-api-key").as_deref(), Some("lgk-secret-1"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("x-test-pattern").as_deref(), Some("tokens"));
    let json = body_json(request);
    assert_eq!(json["assistant_id"], "agent");
    assert_eq!(json["stream_mode"], serde_json::json!(["messages-tuple"]));
    assert_eq!(json["stream_subgraphs"], false);
    assert_eq!(json["on_disconnect"], "cancel");
    assert_eq!(json["on_completion"], "delete");
    assert_eq!(
        json["input"]["messages"],
        serde_json::json!([{"type": "human", "content": "hi"}])
    );
    // Once the connection has ended, no line can still bring the key.
    d.wait_for_log("msg=\"connection ended\"", LIMIT);
    assert!(
        d.log.iter().all(|l| !l.contains("lgk-secret-1")),
        "the key leaked into the log"
    );
}

#[test]
fn thread_runs_encode_the_id_and_assistants_come_from_handoff_or_settings() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![ok_stream(&[&token("a")]), ok_stream(&[&token("b")])],
    );
    let d = daemon(
        "lg-thread",
        &upstream,
        &[("LANGGRAPH_ASSISTANT_ID", "configured")],
    );
    let handoff = br#"{"thread_id":"user 42/chat?x=1#y%","assistant_id":"chosen","messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}"#;
    assert_eq!(contents(&d.request(handoff)), vec!["a"]);
    assert_eq!(contents(&d.request(br#"{"thread_id":"t1"}"#)), vec!["b"]);

    let requests = upstream.requests();
    assert!(
        requests[0].head.starts_with(
            "POST /v1/threads/user%2042%2Fchat%3Fx%3D1%23y%25/runs/stream HTTP/1.1\r\n"
        ),
        "{}",
        requests[0].head
    );
    let first = body_json(&requests[0]);
    assert_eq!(first["assistant_id"], "chosen");
    assert!(first.get("on_completion").is_none());
    let types: Vec<&str> = first["input"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["system", "human", "ai"]);
    assert!(requests[1]
        .head
        .starts_with("POST /v1/threads/t1/runs/stream HTTP/1.1\r\n"));
    assert_eq!(body_json(&requests[1])["assistant_id"], "configured");
}

#[test]
fn a_dot_segment_thread_id_is_a_400_before_any_request() {
    let upstream = FakeUpstream::start(Kind::Plain, vec![ok_stream(&[&token("fine")])]);
    let mut d = daemon("lg-dots", &upstream, &[]);
    for thread in [".", ".."] {
        let handoff = format!(r#"{{"prompt":"p","thread_id":"{thread}"}}"#);
        let response = d.request(handoff.as_bytes());
        let (line, _, body) = parse_response(&response);
        assert_eq!(line, "HTTP/1.1 400 Bad Request", "{thread}: {response}");
        assert!(body.contains("thread_id"), "{body}");
    }
    wait_for_log_count(&mut d, "outcome=bad_json", 2);
    let ends: Vec<&String> = d
        .log
        .iter()
        .filter(|l| l.contains("outcome=bad_json"))
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(
        ends.iter()
            .all(|l| l.contains("msg=\"connection ended\"") && l.contains("status=400")),
        "{ends:?}"
    );
    // A good request afterwards is the first the upstream sees: the refused ones sent nothing.
    assert_eq!(
        contents(&d.request(br#"{"thread_id":"t.1"}"#)),
        vec!["fine"]
    );
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0]
            .head
            .starts_with("POST /v1/threads/t.1/runs/stream HTTP/1.1\r\n"),
        "{}",
        requests[0].head
    );
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn whole_messages_and_an_older_servers_end_event_over_a_unix_socket() {
    let upstream = FakeUpstream::start(
        Kind::Unix,
        vec![
            ok_stream(&[
                METADATA,
                &tuple("human", "echoed question"),
                &tuple("ai", "Echo: hi"),
                &tuple("ai", "Second whole message."),
            ]),
            ok_stream(&[&token("old server"), &event("end", "null")]),
        ],
    );
    let d = daemon("lg-whole", &upstream, &[]);
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["Echo: hi", "Second whole message."]);
    assert!(body.ends_with("data: [DONE]\n\n"));
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["old server"]);
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        upstream.requests()[0].header("host").as_deref(),
        Some("api.internal")
    );
    assert_eq!(
        body_json(&upstream.requests()[0])["input"]["messages"][0]["content"],
        "Hello"
    );
}

#[test]
fn partial_messages_in_messages_mode_send_only_what_is_new() {
    let partial = |text: &str| event("messages/partial", &format!("[{}]", message("ai", text)));
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![ok_stream(&[
            METADATA,
            &event("messages/metadata", r#"{"lc_run--9":{"metadata":{}}}"#),
            &partial("Hello"),
            &partial("Hello "),
            &partial("Hello there"),
            &partial("Hello there!"),
        ])],
    );
    let d = daemon(
        "lg-partial",
        &upstream,
        &[("LANGGRAPH_STREAM_MODE", "messages")],
    );
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["Hello", " ", "there", "!"]);
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        body_json(&upstream.requests()[0])["stream_mode"],
        serde_json::json!(["messages"])
    );
}

#[test]
fn an_error_event_ends_the_stream_with_an_error_and_no_done() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![ok_stream(&[
            METADATA,
            &token("partial"),
            &event(
                "error",
                r#"{"error":"ValueError","message":"boom: internal graph detail"}"#,
            ),
        ])],
    );
    let mut d = daemon("lg-error", &upstream, &[]);
    let body = d.request(b"{}");
    assert_eq!(contents(&body), vec!["partial"]);
    assert!(
        body.ends_with(
            "event: error\ndata: {\"error\":\"the upstream API reported an error during the answer\"}\n\n"
        ),
        "{body}"
    );
    assert!(!body.contains("[DONE]"));
    assert!(!body.contains("boom"));
    d.wait_for_log("boom: internal graph detail", LIMIT);
    d.wait_for_log("outcome=upstream_error", LIMIT);
}

#[test]
fn an_unknown_assistant_422_becomes_a_502_without_the_detail() {
    let detail = r#"{"detail":"Invalid assistant: 'nope'. Must be either:\n- A valid assistant UUID, or\n- One of the registered graphs: agent"}"#;
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![send(&format!(
            "HTTP/1.1 422 Unprocessable Entity\r\nserver: uvicorn\r\ncontent-length: {}\r\n\
             content-type: application/json\r\n\r\n{detail}",
            detail.len()
        ))]],
    );
    let mut d = daemon("lg-422", &upstream, &[]);
    let response = d.request(br#"{"assistant_id":"nope"}"#);
    let (line, _, body) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 502 Bad Gateway");
    assert!(body.contains("HTTP 422"), "{body}");
    assert!(!response.contains("Invalid assistant"));
    d.wait_for_log("Invalid assistant", LIMIT);
}

#[test]
fn input_numbers_reach_the_graph_exactly_and_a_messages_key_is_ignored() {
    let upstream = FakeUpstream::start(Kind::Plain, vec![ok_stream(&[&token("ok")])]);
    let mut d = daemon("lg-numbers", &upstream, &[]);
    let handoff = br#"{"prompt":"p","langgraph_input":{"count":1234567,"price":1.50,"big":12345678901234567890,"nested":{"ids":[1,20000000000000000001],"ratio":0.1},"messages":[{"type":"human","content":"smuggled"}]}}"#;
    assert_eq!(contents(&d.request(handoff)), vec!["ok"]);
    let body = &upstream.requests()[0].body;
    for exact in [
        r#""count":1234567"#,
        r#""price":1.50"#,
        r#""big":12345678901234567890"#,
        r#""nested":{"ids":[1,20000000000000000001],"ratio":0.1}"#,
    ] {
        assert!(body.contains(exact), "{exact} not in {body}");
    }
    assert!(!body.contains("smuggled"));
    let line = d.wait_for_log("langgraph_input.messages was ignored", LIMIT);
    assert!(line.contains("conn="), "{line}");
}

#[test]
fn a_heartbeat_reaches_the_client_while_the_graph_is_still_silent() {
    let (open, held) = gate();
    let head_and_heartbeat = format!("{SSE_OK_CHUNKED}{}{}", chunk(METADATA), chunk(HEARTBEAT));
    let rest = format!("{}{LAST_CHUNK}", chunk(&token("woke up")));
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(head_and_heartbeat.into_bytes()),
            Action::WaitFor(held),
            Action::Send(rest.into_bytes()),
        ]],
    );
    let d = daemon("lg-heartbeat", &upstream, &[]);
    let (mut client, server) = tcp_pair();
    hand_off(&d.socket, SocketType::Stream, b"{}", &server);
    drop(server);
    // The graph says nothing more until the gate opens: the keep-alive must arrive before.
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(": keep-alive\n\n") {
        assert!(started.elapsed() < LIMIT, "no keep-alive: {seen:?}");
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    open.send(()).unwrap();
    let rest = read_to_end(&mut client, LIMIT);
    let body = format!("{}{rest}", String::from_utf8_lossy(&seen));
    assert_eq!(contents(&body), vec!["woke up"]);
    assert!(body.ends_with("data: [DONE]\n\n"));
}
