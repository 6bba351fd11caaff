//! Profiles (SPEC §4.4): the requests of test vectors A.3 P1 to P8, byte for byte where the
//! vector gives bytes. P9 (the allow-list) is in `backends::set`'s tests.

use std::time::Instant;

use super::*;
use crate::backends::upstream::testing::request_parts;
use crate::backends::upstream::Relay;
use crate::config::{ContentFormat, LangGraphProfileSpec};
use crate::handoff::{parse_handoff_data, HandoffError};
use crate::http::{parse_head, HeadParse};
use crate::sse::{EventSink, DEFAULT_MAX_LINE};

/// A.3's configuration. (`claude` also sets `content_format: anthropic` there; that matters
/// only to attachments, P7.)
fn config() -> Config {
    let mut config = Config::default();
    config.backend.provider = "langgraph".into();
    let langgraph = &mut config.backend.langgraph;
    langgraph.api_base = "http://127.0.0.1:18001".into();
    langgraph.api_key = Some("top-key".into());
    langgraph.assistant_id = "agent".into();
    langgraph.stream_mode = "messages-tuple".into();
    langgraph.profiles.insert(
        "sales".into(),
        LangGraphProfileSpec {
            api_base: Some("http://127.0.0.1:18002".into()),
            api_key: Some("sales-key".into()),
            assistant_id: Some("sales-agent".into()),
            ..LangGraphProfileSpec::default()
        },
    );
    langgraph.profiles.insert(
        "claude".into(),
        LangGraphProfileSpec {
            assistant_id: Some("claude-agent".into()),
            content_format: Some(ContentFormat::Anthropic),
            ..LangGraphProfileSpec::default()
        },
    );
    config
}

/// The call a handoff (JSON as the client sends it) starts on A.3's configuration.
fn call_for(config: &Config, handoff: &str) -> Result<UpstreamRequest, BackendError> {
    let mut backend = create(config).unwrap();
    let data = parse_handoff_data(handoff.as_bytes()).unwrap();
    match backend.start(data, None, Instant::now())? {
        Start::Upstream(call) => Ok(call),
        Start::Local(_) => panic!("langgraph calls an upstream"),
    }
}

fn call(handoff: &str) -> UpstreamRequest {
    call_for(&config(), handoff).unwrap()
}

fn text(call: &UpstreamRequest) -> String {
    String::from_utf8(call.request.clone()).unwrap()
}

fn expected_request(target: &str, host: &str, key: &str, body: &str) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/json\r\nAccept: text/event-stream\r\n\
         User-Agent: streaming-daemon/{}\r\nX-Api-Key: {key}\r\n\
         Accept-Encoding: identity\r\nContent-Length: {}\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    )
}

const P1_BODY: &str = r#"{"assistant_id":"agent","input":{"messages":[{"type":"human","content":"hi"}]},"stream_mode":["messages-tuple"],"stream_subgraphs":false,"on_disconnect":"cancel","on_completion":"delete"}"#;

#[test]
fn p1_the_default_profile() {
    let call = call(r#"{"prompt":"hi"}"#);
    assert_eq!(
        text(&call),
        expected_request("/runs/stream", "127.0.0.1:18001", "top-key", P1_BODY)
    );
    assert_eq!(call.target, 0);
    assert!(call.notes.is_empty());
    assert!(matches!(call.output, Output::Translate(_)));
}

#[test]
fn p2_a_named_profile_on_its_own_server() {
    let call = call(r#"{"prompt":"hi","profile":"sales"}"#);
    let body = P1_BODY.replace(r#""agent""#, r#""sales-agent""#);
    assert_eq!(
        text(&call),
        expected_request("/runs/stream", "127.0.0.1:18002", "sales-key", &body)
    );
    assert_eq!(call.target, 1);
}

#[test]
fn p3_handoff_assistant_and_stream_mode_override_the_profiles() {
    let call =
        call(r#"{"prompt":"hi","profile":"claude","assistant_id":"x","stream_mode":"updates"}"#);
    let body = P1_BODY
        .replace(r#""agent""#, r#""x""#)
        .replace(r#"["messages-tuple"]"#, r#"["updates"]"#);
    assert_eq!(
        text(&call),
        expected_request("/runs/stream", "127.0.0.1:18001", "top-key", &body)
    );
    // claude inherits the default profile's server: the same target.
    assert_eq!(call.target, 0);
    // Without the override, the profile's own assistant.
    let (_, _, body) = request_parts(
        &call_for(&config(), r#"{"profile":"claude"}"#)
            .unwrap()
            .request,
    );
    assert!(
        body.starts_with(r#"{"assistant_id":"claude-agent","#),
        "{body}"
    );
}

#[test]
fn p4_stream_mode_as_a_one_element_array_or_empty() {
    for (value, mode) in [
        (r#"["messages"]"#, r#"["messages"]"#),
        ("[]", r#"["messages-tuple"]"#),
        (r#""""#, r#"["messages-tuple"]"#),
        ("null", r#"["messages-tuple"]"#),
    ] {
        let call = call(&format!(r#"{{"prompt":"hi","stream_mode":{value}}}"#));
        let (_, _, body) = request_parts(&call.request);
        assert!(
            body.contains(&format!(r#""stream_mode":{mode}"#)),
            "{value}: {body}"
        );
    }
    // Two modes: a bad handoff (400, bad_json) before any backend sees it.
    let refused = parse_handoff_data(br#"{"prompt":"hi","stream_mode":["a","b"]}"#);
    assert!(
        matches!(refused, Err(HandoffError::BadJson { .. })),
        "{refused:?}"
    );
}

#[test]
fn p4_the_handoffs_stream_mode_decides_what_is_translated() {
    // messages mode reads `messages/partial` events, which messages-tuple ignores.
    // Close-delimited: what is fed is relayed, whatever comes after.
    let response = "HTTP/1.1 200 OK\r\n\r\n\
        event: messages/partial\r\ndata: [{\"type\":\"ai\",\"id\":\"1\",\"content\":\"Yes\"}]\r\n\r\n";
    for (handoff, events) in [
        (r#"{"stream_mode":"messages"}"#, 1),
        (r#"{"stream_mode":["messages"]}"#, 1),
        (r#"{}"#, 0),
    ] {
        let call = call(handoff);
        let HeadParse::Complete(head, len) = parse_head(response.as_bytes()).unwrap() else {
            panic!("incomplete head");
        };
        let mut relay = Relay::new(&head, call.output, DEFAULT_MAX_LINE);
        let mut out = Vec::new();
        let mut sink = EventSink::new(&mut out);
        relay.feed(&response.as_bytes()[len..], &mut Vec::new(), &mut sink);
        assert_eq!(sink.events(), events, "{handoff}");
    }
}

#[test]
fn p5_an_unknown_profile_sends_nothing() {
    let error = call_for(&config(), r#"{"prompt":"hi","profile":"nope"}"#)
        .err()
        .unwrap();
    assert_eq!(error, BackendError::UnknownProfile("nope".into()));
    assert_eq!(error.client_message(), "unknown LangGraph profile \"nope\"");
    let backend = create(&config()).unwrap();
    let data = parse_handoff_data(br#"{"profile":"nope"}"#).unwrap();
    assert_eq!(backend.accept(&data), Err(error));
}

#[test]
fn p6_a_thread_run_creates_a_missing_thread_in_the_same_request() {
    let call = call(r#"{"prompt":"hi","profile":"sales","thread_id":"t 1"}"#);
    let body = P1_BODY.replace(r#""agent""#, r#""sales-agent""#).replace(
        r#""on_completion":"delete"}"#,
        r#""if_not_exists":"create"}"#,
    );
    assert!(body.ends_with(r#""on_disconnect":"cancel","if_not_exists":"create"}"#));
    assert_eq!(
        text(&call),
        expected_request(
            "/threads/t%201/runs/stream",
            "127.0.0.1:18002",
            "sales-key",
            &body
        )
    );
    assert_eq!(call.target, 1);
}

#[test]
fn p8_keys_that_once_redirected_the_key_change_nothing() {
    let handoff = r#"{"prompt":"hi","lg":"sales","langgraph_url":"http://127.0.0.1:18003","langgraph_api_key":"k2"}"#;
    let data = parse_handoff_data(handoff.as_bytes()).unwrap();
    assert_eq!(
        data.ignored_keys,
        ["lg", "langgraph_url", "langgraph_api_key"]
    );
    let call = call(handoff);
    assert_eq!(
        text(&call),
        expected_request("/runs/stream", "127.0.0.1:18001", "top-key", P1_BODY)
    );
    assert_eq!(call.target, 0);
}

#[test]
fn accept_names_the_profile_and_its_content_format() {
    let backend = create(&config()).unwrap();
    for (handoff, profile, format) in [
        (r#"{}"#, "", ContentFormat::OpenAi),
        (r#"{"profile":""}"#, "", ContentFormat::OpenAi),
        (
            r#"{"profile":"claude"}"#,
            "claude",
            ContentFormat::Anthropic,
        ),
        (r#"{"profile":"sales"}"#, "sales", ContentFormat::OpenAi),
    ] {
        let data = parse_handoff_data(handoff.as_bytes()).unwrap();
        let accepted = backend.accept(&data).unwrap();
        assert_eq!(accepted.profile.as_deref(), Some(profile), "{handoff}");
        assert_eq!(accepted.flavour, Flavour::LangGraph(format), "{handoff}");
    }
}

#[test]
fn output_raw_is_per_profile() {
    let mut config = config();
    config
        .backend
        .langgraph
        .profiles
        .get_mut("sales")
        .unwrap()
        .output = Some(LangGraphOutput::Raw);
    let raw = call_for(&config, r#"{"profile":"sales"}"#).unwrap();
    assert!(matches!(raw.output, Output::Raw));
    let translated = call_for(&config, r#"{}"#).unwrap();
    assert!(matches!(translated.output, Output::Translate(_)));
    // The request is the same whichever the output.
    let (_, _, body) = request_parts(&raw.request);
    assert!(
        body.contains(r#""stream_mode":["messages-tuple"]"#),
        "{body}"
    );
}

#[test]
fn targets_are_shared_by_profiles_on_one_upstream() {
    let backend = create(&config()).unwrap();
    let hosts: Vec<String> = backend
        .targets()
        .iter()
        .map(|target| target.origin.host_header())
        .collect();
    assert_eq!(hosts, ["127.0.0.1:18001", "127.0.0.1:18002"]);
    // A profile on a Unix socket is its own target, even with the default's URL.
    let mut config = config();
    config.backend.langgraph.profiles.insert(
        "local".into(),
        LangGraphProfileSpec {
            api_socket: Some(Some("/run/lg.sock".into())),
            ..LangGraphProfileSpec::default()
        },
    );
    let backend = create(&config).unwrap();
    assert_eq!(backend.targets().len(), 3);
    let call = call_for(&config, r#"{"profile":"local"}"#).unwrap();
    assert_eq!(
        backend.targets()[call.target].origin.unix_socket.as_deref(),
        Some(std::path::Path::new("/run/lg.sock"))
    );
}
