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

/// The A.3 configuration's default profile and a `claude` profile on the same server.
const PROFILES: &str = "  langgraph:\n    api_key: top-key\n    assistant_id: agent\n    \
    stream_mode: messages-tuple\n    profiles:\n      claude:\n        assistant_id: claude-agent\n        \
    content_format: anthropic\n";

#[test]
fn a_profile_on_the_default_server_and_handoff_overrides_shape_the_run() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        (0..6).map(|_| ok_stream(&[&token("ok")])).collect(),
    );
    let mut d = upstream_daemon("lg-profiles", "langgraph", &upstream, PROFILES, &[]);
    let handoffs: [&[u8]; 6] = [
        // P1
        br#"{"prompt":"hi"}"#,
        br#"{"prompt":"hi","profile":"claude"}"#,
        // P3
        br#"{"prompt":"hi","profile":"claude","assistant_id":"x","stream_mode":"updates"}"#,
        // P4
        br#"{"prompt":"hi","stream_mode":["messages"]}"#,
        br#"{"prompt":"hi","stream_mode":[]}"#,
        // P8
        br#"{"prompt":"hi","lg":"sales","langgraph_url":"http://127.0.0.1:18003","langgraph_api_key":"k2"}"#,
    ];
    for handoff in handoffs {
        let body = d.request(handoff);
        assert!(body.starts_with(SSE_HEAD), "{body}");
    }
    let requests = upstream.requests();
    assert_eq!(requests.len(), 6);
    let expect = [
        ("agent", "messages-tuple"),
        ("claude-agent", "messages-tuple"),
        ("x", "updates"),
        ("agent", "messages"),
        ("agent", "messages-tuple"),
        ("agent", "messages-tuple"),
    ];
    for (request, (assistant, mode)) in requests.iter().zip(expect) {
        assert!(
            request
                .head
                .starts_with("POST /v1/runs/stream HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        assert_eq!(request.header("x-api-key").as_deref(), Some("top-key"));
        let json = body_json(request);
        assert_eq!(json["assistant_id"], assistant, "{}", request.body);
        assert_eq!(json["stream_mode"], serde_json::json!([mode]));
        assert!(
            request
                .body
                .ends_with(r#""on_disconnect":"cancel","on_completion":"delete"}"#),
            "{}",
            request.body
        );
    }
    // P8: the request is P1's, and one warning names the keys, never their values.
    assert_eq!(requests[5].body, requests[0].body);
    let line = d.wait_for_log("handoff keys ignored", LIMIT);
    assert!(
        line.contains("lg, langgraph_url, langgraph_api_key"),
        "{line}"
    );
    assert!(!line.contains("k2") && !line.contains("18003"), "{line}");
}

#[test]
fn a_thread_run_creates_a_missing_thread_in_the_same_request() {
    let upstream = FakeUpstream::start(Kind::Plain, vec![ok_stream(&[&token("new thread")])]);
    let d = daemon(
        "lg-new-thread",
        &upstream,
        &[("LANGGRAPH_API_KEY", "top-key")],
    );
    let body = d.request(br#"{"prompt":"hi","thread_id":"t 1"}"#);
    assert_eq!(contents(&body), vec!["new thread"]);
    let requests = upstream.requests();
    // One request: no POST /threads before the run.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0]
            .head
            .starts_with("POST /v1/threads/t%201/runs/stream HTTP/1.1\r\n"),
        "{}",
        requests[0].head
    );
    assert!(
        requests[0]
            .body
            .ends_with(r#""on_disconnect":"cancel","if_not_exists":"create"}"#),
        "{}",
        requests[0].body
    );
}

/// Events as a LangGraph server sends them, for `output: raw`: CRLF line ends, heartbeats, an
/// `id:` line, an error event (passed on like any other).
const RAW_EVENTS: [&str; 5] = [
    "event: metadata\r\ndata: {\"run_id\":\"r-9\",\"attempt\":1}\r\n\r\n",
    ": heartbeat\r\n\r\n",
    "event: messages\r\nid: 4\r\ndata: [{\"content\":\"Hi\",\"type\":\"AIMessageChunk\"},{\"langgraph_step\":1}]\r\n\r\n",
    ": heartbeat\r\n\r\n",
    "event: error\r\ndata: {\"error\":\"ValueError\",\"message\":\"tool said no\"}\r\n\r\n",
];

fn raw_daemon(name: &str, upstream: &FakeUpstream) -> Daemon {
    upstream_daemon(
        name,
        "langgraph",
        upstream,
        "  langgraph:\n    output: raw\n",
        &[],
    )
}

#[test]
fn raw_output_relays_the_upstream_events_byte_for_byte_and_adds_nothing() {
    let upstream = FakeUpstream::start(Kind::Plain, vec![ok_stream(&RAW_EVENTS)]);
    let mut d = raw_daemon("lg-raw", &upstream);
    let body = d.request(br#"{"prompt":"hi"}"#);
    assert_eq!(body, format!("{SSE_HEAD}{}", RAW_EVENTS.concat()));
    let line = d.wait_for_log("msg=\"connection ended\"", LIMIT);
    assert!(line.contains("outcome=completed"), "{line}");
    // Each relayed event is a chunk.
    assert!(line.contains("events=5"), "{line}");
    // The request is the same as for translated output.
    let json = body_json(&upstream.requests()[0]);
    assert_eq!(json["stream_mode"], serde_json::json!(["messages-tuple"]));
}

#[test]
fn raw_output_cut_mid_event_drops_the_partial_event_and_ends_with_an_error() {
    let mut cut = String::from(SSE_OK_CHUNKED);
    for event in &RAW_EVENTS[..2] {
        cut.push_str(&chunk(event));
    }
    cut.push_str(&chunk("event: messages\r\ndata: [{\"content\":\"half"));
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![Action::Send(cut.into_bytes()), Action::Close]],
    );
    let mut d = raw_daemon("lg-raw-cut", &upstream);
    let body = d.request(b"{}");
    let relayed = format!("{SSE_HEAD}{}", RAW_EVENTS[..2].concat());
    assert!(body.starts_with(&relayed), "{body}");
    let rest = &body[relayed.len()..];
    assert!(
        rest.starts_with("event: error\ndata: {\"error\":"),
        "{rest}"
    );
    assert!(!rest.contains("half"), "{rest}");
    assert!(!body.contains("[DONE]"));
    d.wait_for_log("outcome=upstream_cut", LIMIT);
}

#[test]
fn raw_output_maps_an_upstream_error_status_like_translate() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![send(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\n{}",
        )]],
    );
    let d = raw_daemon("lg-raw-500", &upstream);
    let response = d.request(b"{}");
    assert_eq!(parse_response(&response).0, "HTTP/1.1 502 Bad Gateway");
}

/// The `sales` profile of A.3 on a server of its own, besides the default one.
fn sales_daemon(name: &str, default: &FakeUpstream, sales: &FakeUpstream, yaml: &str) -> Daemon {
    let profiles = format!(
        "{PROFILES}      sales:\n        api_base: {}\n        api_key: sales-key\n        \
         assistant_id: sales-agent\n{yaml}",
        sales.base
    );
    upstream_daemon(name, "langgraph", default, &profiles, &[])
}

// Needs the connection integration: the reactor keeps one upstream per `Backends::targets()`
// entry and sends each request to `request.target`.
#[test]
fn p2_p6_a_profile_on_its_own_server_gets_its_key_and_its_thread_runs() {
    let default = FakeUpstream::start(Kind::Plain, vec![ok_stream(&[&token("default")])]);
    let sales = FakeUpstream::start(
        Kind::Plain,
        vec![
            ok_stream(&[&token("sales")]),
            ok_stream(&[&token("thread")]),
        ],
    );
    let d = sales_daemon("lg-sales", &default, &sales, "");
    assert_eq!(
        contents(&d.request(br#"{"prompt":"hi","profile":"sales"}"#)),
        vec!["sales"]
    );
    assert_eq!(
        contents(&d.request(br#"{"prompt":"hi","profile":"sales","thread_id":"t 1"}"#)),
        vec!["thread"]
    );
    assert_eq!(contents(&d.request(br#"{"prompt":"hi"}"#)), vec!["default"]);
    let requests = sales.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0]
        .head
        .starts_with("POST /runs/stream HTTP/1.1\r\n"));
    assert_eq!(
        requests[0].header("x-api-key").as_deref(),
        Some("sales-key")
    );
    assert_eq!(body_json(&requests[0])["assistant_id"], "sales-agent");
    assert!(requests[1]
        .head
        .starts_with("POST /threads/t%201/runs/stream HTTP/1.1\r\n"));
    assert!(requests[1]
        .body
        .ends_with(r#""on_disconnect":"cancel","if_not_exists":"create"}"#));
    let requests = default.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-api-key").as_deref(), Some("top-key"));
}

// Needs the connection integration: `BackendError::UnknownProfile` answered 400 with
// `client_message()`, reason `unknown_profile`.
#[test]
fn p5_an_unknown_profile_is_a_400_and_no_request() {
    let upstream = FakeUpstream::start(Kind::Plain, vec![ok_stream(&[&token("fine")])]);
    let mut d = upstream_daemon("lg-no-profile", "langgraph", &upstream, PROFILES, &[]);
    let response = d.request(br#"{"prompt":"hi","profile":"nope"}"#);
    let (line, _, body) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        body,
        "{\"error\":\"unknown LangGraph profile \\\"nope\\\"\"}\n"
    );
    d.wait_for_log("outcome=unknown_profile", LIMIT);
    assert!(upstream.requests().is_empty());
}

// Needs the connection integration: the reactor runs `Backends::start`, and
// `BackendError::UnknownBackend` is answered 400, reason `unknown_backend`.
#[test]
fn p9_only_allowed_backends_run() {
    let upstream = FakeUpstream::start(Kind::Plain, vec![]);
    let mut d = daemon("lg-not-allowed", &upstream, &[]);
    let response = d.request(br#"{"prompt":"hi","backend":"typing"}"#);
    let (line, _, body) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        body,
        "{\"error\":\"backend \\\"typing\\\" is not allowed\"}\n"
    );
    d.wait_for_log("outcome=unknown_backend", LIMIT);
    assert!(upstream.requests().is_empty());

    let allowed = upstream_daemon(
        "lg-allowed",
        "langgraph",
        &upstream,
        "  allowed: [langgraph, typing]\n",
        &[],
    );
    // The typing stream's first characters are enough: the whole answer takes seconds to type.
    let (mut client, server) = tcp_pair();
    hand_off(
        &allowed.socket,
        SocketType::Stream,
        br#"{"prompt":"Tell me about streaming","backend":"typing"}"#,
        &server,
    );
    drop(server);
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let expected = format!("{SSE_HEAD}data: {{\"char\":\"W\",\"index\":0}}\n\n");
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while seen.len() < expected.len() {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).starts_with(&expected),
        "{seen:?}"
    );
    assert!(upstream.requests().is_empty());
}

// Needs the connection integration: the daemon calls `Backends::announce` at start-up.
#[test]
fn one_info_line_per_profile_at_start_up_without_keys() {
    let default = FakeUpstream::start(Kind::Plain, vec![]);
    let sales = FakeUpstream::start(Kind::Plain, vec![]);
    let mut d = sales_daemon("lg-announce", &default, &sales, "");
    let line = d.wait_for_log("msg=\"LangGraph profile\" profile=\"\"", LIMIT);
    assert!(line.contains("assistant_id=agent"), "{line}");
    for (profile, assistant) in [("claude", "claude-agent"), ("sales", "sales-agent")] {
        let line = d.wait_for_log(&format!("profile={profile} "), LIMIT);
        assert!(line.contains("msg=\"LangGraph profile\""), "{line}");
        assert!(
            line.contains(&format!("assistant_id={assistant}")),
            "{line}"
        );
    }
    assert!(d
        .log
        .iter()
        .all(|l| !l.contains("sales-key") && !l.contains("top-key")));
}
