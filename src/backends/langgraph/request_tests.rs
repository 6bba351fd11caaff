use serde_json::{json, Value};

use super::*;
use crate::backends::upstream::testing::request_parts;
use crate::config::Config;
use crate::handoff::{parse_handoff_data, ChatMessage, Content, RawJson};

fn settings(api_key: Option<&str>) -> LangGraphProfile {
    let mut settings = Config::default().backend.langgraph.default_profile();
    settings.api_key = api_key.map(str::to_string);
    settings
}

fn origin() -> Origin {
    Origin::parse("https://lg.example.com/v1", None).unwrap()
}

fn build(settings: &LangGraphProfile, data: &HandoffData) -> (String, Vec<String>, Value) {
    let mut notes = Vec::new();
    let (line, headers, body) = request_parts(
        &build_request(settings, &origin(), data, None, &mut notes)
            .unwrap()
            .whole(),
    );
    assert!(notes.is_empty(), "{notes:?}");
    (line, headers, serde_json::from_str(&body).unwrap())
}

#[test]
fn stateless_prompt_request_byte_for_byte() {
    let data = HandoffData {
        prompt: "Hi".into(),
        ..HandoffData::default()
    };
    let mut notes = Vec::new();
    let request = build_request(&settings(Some("lgk-1")), &origin(), &data, None, &mut notes)
        .unwrap()
        .whole();
    // Members in the SPEC's order (§4.4, A.3 P1).
    let body = r#"{"assistant_id":"agent","input":{"messages":[{"type":"human","content":"Hi"}]},"stream_mode":["messages-tuple"],"stream_subgraphs":false,"on_disconnect":"cancel","on_completion":"delete"}"#;
    let expected = format!(
        "POST /v1/runs/stream HTTP/1.1\r\nHost: lg.example.com\r\n\
         Content-Type: application/json\r\nAccept: text/event-stream\r\n\
         User-Agent: streaming-daemon/{}\r\nX-Api-Key: lgk-1\r\n\
         Accept-Encoding: identity\r\nContent-Length: {}\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    assert_eq!(String::from_utf8(request).unwrap(), expected);
}

#[test]
fn thread_runs_encode_the_id_and_keep_the_thread() {
    for (thread, segment) in [
        ("t-1", "t-1"),
        ("a b/c?d#e%f", "a%20b%2Fc%3Fd%23e%25f"),
        ("...", "..."),
        (".a", ".a"),
        ("a/..", "a%2F.."),
        ("thé", "th%C3%A9"),
    ] {
        let data = HandoffData {
            thread_id: Some(thread.into()),
            assistant_id: Some("helper".into()),
            ..HandoffData::default()
        };
        let (line, _, body) = build(&settings(None), &data);
        assert_eq!(
            line,
            format!("POST /v1/threads/{segment}/runs/stream HTTP/1.1")
        );
        assert_eq!(body["assistant_id"], "helper");
        assert!(body.get("on_completion").is_none(), "{body}");
        assert_eq!(body["on_disconnect"], "cancel");
    }
}

#[test]
fn dot_segment_thread_ids_are_refused_before_any_request() {
    let mut config = Config::default();
    config.backend.langgraph.api_base = "http://langgraph.internal/api".into();
    let mut backend = create(&config).unwrap();
    for thread in [".", ".."] {
        let data = HandoffData {
            thread_id: Some(thread.into()),
            ..HandoffData::default()
        };
        let error =
            build_request(&settings(None), &origin(), &data, None, &mut Vec::new()).unwrap_err();
        assert_eq!(
            error,
            BackendError::BadRequest(format!(
                "thread_id {thread:?} cannot name a thread: in a URL path it means another path"
            ))
        );
        let started = backend.start(data, None, Instant::now());
        assert!(
            matches!(started, Err(BackendError::BadRequest(_))),
            "{thread}"
        );
    }
}

#[test]
fn roles_map_to_message_types() {
    let roles = [
        ("system", "system"),
        ("user", "human"),
        ("assistant", "ai"),
        ("tool", "tool"),
    ];
    let data = HandoffData {
        prompt: "ignored".into(),
        messages: roles
            .iter()
            .map(|(role, _)| ChatMessage {
                role: (*role).into(),
                content: Content::Text(format!("from {role}")),
            })
            .collect(),
        ..HandoffData::default()
    };
    let (_, _, body) = build(&settings(None), &data);
    let want: Vec<Value> = roles
        .iter()
        .map(|(role, kind)| json!({"type": kind, "content": format!("from {role}")}))
        .collect();
    assert_eq!(body["input"]["messages"], Value::Array(want));
}

#[test]
fn hello_when_there_is_nothing_to_ask_and_no_key_header() {
    let (_, headers, body) = build(&settings(Some("")), &HandoffData::default());
    assert_eq!(
        body["input"]["messages"],
        json!([{"type": "human", "content": "Hello"}])
    );
    assert!(!headers.iter().any(|h| h.starts_with("X-Api-Key")));
    assert!(!headers.iter().any(|h| h.starts_with("Authorization")));
}

#[test]
fn stream_mode_comes_from_the_settings() {
    let mut settings = settings(None);
    settings.stream_mode = "messages".into();
    let (_, _, body) = build(&settings, &HandoffData::default());
    assert_eq!(body["stream_mode"], json!(["messages"]));
    assert_eq!(body["stream_subgraphs"], false);
}

#[test]
fn input_numbers_and_nesting_are_forwarded_exactly() {
    let handoff = br#"{"prompt":"p","langgraph_input":{"n":1234567,"price":1.50,"big":12345678901234567890,"huge":123456789012345678901234567890,"tiny":1e-400,"neg":-0.0,"nested":{"list":[1,2.50e3,{"deep":true}],"s":"x"},"none":null}}"#;
    let data = parse_handoff_data(handoff).unwrap();
    let mut notes = Vec::new();
    let request = build_request(&settings(None), &origin(), &data, None, &mut notes)
        .unwrap()
        .whole();
    let (_, _, body) = request_parts(&request);
    for exact in [
        r#""n":1234567"#,
        r#""price":1.50"#,
        r#""big":12345678901234567890"#,
        r#""huge":123456789012345678901234567890"#,
        r#""tiny":1e-400"#,
        r#""neg":-0.0"#,
        r#""nested":{"list":[1,2.50e3,{"deep":true}],"s":"x"}"#,
        r#""none":null"#,
    ] {
        assert!(body.contains(exact), "{exact} not in {body}");
    }
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["input"]["messages"][0]["content"], "p");
}

#[test]
fn a_messages_key_in_the_input_is_ignored_with_a_note() {
    let data = HandoffData {
        prompt: "real".into(),
        langgraph_input: vec![
            (
                "messages".into(),
                RawJson::parse(r#"[{"type":"human","content":"smuggled"}]"#).unwrap(),
            ),
            ("k".into(), RawJson::parse("1").unwrap()),
        ],
        ..HandoffData::default()
    };
    let mut notes = Vec::new();
    let (_, _, body) = request_parts(
        &build_request(&settings(None), &origin(), &data, None, &mut notes)
            .unwrap()
            .whole(),
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["input"],
        json!({"k": 1, "messages": [{"type": "human", "content": "real"}]})
    );
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("langgraph_input.messages was ignored"));
}

#[test]
fn header_injection_is_refused() {
    let data = HandoffData {
        test_pattern: Some("a\r\nX-Evil: 1".into()),
        ..HandoffData::default()
    };
    let error =
        build_request(&settings(None), &origin(), &data, None, &mut Vec::new()).unwrap_err();
    assert!(matches!(error, BackendError::BadRequest(_)));
    let start_error = build_request(
        &settings(Some("key\nX-Evil: 1")),
        &origin(),
        &HandoffData::default(),
        None,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(start_error, BackendError::Internal(_)));
    assert!(!start_error.to_string().contains("X-Evil"));
}

#[test]
fn the_backend_starts_an_upstream_call_over_a_unix_socket_too() {
    let mut config = Config::default();
    config.backend.langgraph.api_base = "http://langgraph.internal/api".into();
    config.backend.langgraph.api_socket = Some("/run/lg.sock".into());
    let mut backend = create(&config).unwrap();
    assert_eq!(backend.name(), "langgraph");
    let target = &backend.targets()[0];
    assert_eq!(
        target.origin.unix_socket.as_deref(),
        Some(std::path::Path::new("/run/lg.sock"))
    );
    let Ok(Start::Upstream(call)) = backend.start(HandoffData::default(), None, Instant::now())
    else {
        panic!("langgraph calls an upstream");
    };
    assert!(call
        .request
        .starts_with(b"POST /api/runs/stream HTTP/1.1\r\nHost: langgraph.internal\r\n"));
}

#[test]
fn a_bad_base_is_a_setup_error() {
    let mut config = Config::default();
    config.backend.langgraph.api_base = "ftp://nope".into();
    let Err(error) = create(&config) else {
        panic!("an ftp base must be refused");
    };
    assert!(error.to_string().contains("backend.langgraph.api_base"));
}

#[test]
fn a_content_parts_array_is_the_messages_content_list_as_written() {
    let handoff = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"Look"},{"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lGODlh"}}]},{"role":"assistant","content":"Seen."}],"langgraph_input":{"k":2.5e3,"k2":[1, 2],"k":"last"}}"#;
    let data = parse_handoff_data(handoff).unwrap();
    let mut notes = Vec::new();
    let request = build_request(&settings(None), &origin(), &data, None, &mut notes)
        .unwrap()
        .whole();
    let (_, _, body) = request_parts(&request);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        body,
        r#"{"assistant_id":"agent","input":{"messages":[{"type":"human","content":[{"type":"text","text":"Look"},{"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lGODlh"}}]},{"type":"ai","content":"Seen."}],"k2":[1, 2],"k":"last"},"stream_mode":["messages-tuple"],"stream_subgraphs":false,"on_disconnect":"cancel","on_completion":"delete"}"#
    );
}
