use serde_json::{json, Value};

use super::*;
use crate::backends::upstream::testing::request_parts;
use crate::config::Config;
use crate::handoff::ChatMessage;

fn config(api_key: Option<&str>) -> OpenAiConfig {
    let mut config = Config::default().backend.openai;
    config.api_key = api_key.map(str::to_string);
    config
}

fn origin() -> Origin {
    Origin::parse("https://api.example.com/v1", None).unwrap()
}

/// The request line, the header lines and the body as JSON.
fn parts(request: &[u8]) -> (String, Vec<String>, Value) {
    let (request_line, headers, body) = request_parts(request);
    (request_line, headers, serde_json::from_str(&body).unwrap())
}

fn build(config: &OpenAiConfig, data: &HandoffData) -> (String, Vec<String>, Value) {
    parts(
        &build_request(config, "gpt-4o-mini", &origin(), data, None)
            .unwrap()
            .whole(),
    )
}

#[test]
fn prompt_request_byte_for_byte() {
    let data = HandoffData {
        prompt: "Hi".into(),
        ..HandoffData::default()
    };
    let request = build_request(
        &config(Some("sk-test")),
        "gpt-4o-mini",
        &origin(),
        &data,
        None,
    )
    .unwrap()
    .whole();
    let body =
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let expected = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\n\
         Content-Type: application/json\r\nAccept: text/event-stream\r\n\
         User-Agent: streaming-daemon/{}\r\nAuthorization: Bearer sk-test\r\n\
         Accept-Encoding: identity\r\nContent-Length: {}\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    assert_eq!(String::from_utf8(request).unwrap(), expected);
}

#[test]
fn messages_take_precedence_over_the_prompt() {
    let data = HandoffData {
        prompt: "ignored".into(),
        messages: vec![
            ChatMessage {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: "Say \"hi\"\n😀".into(),
            },
        ],
        model: Some("gpt-4o".into()),
        max_tokens: Some(64),
        ..HandoffData::default()
    };
    let (_, _, body) = build(&config(None), &data);
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say \"hi\"\n😀"}
            ],
            "stream": true,
            "max_tokens": 64
        })
    );
}

#[test]
fn hello_when_there_is_nothing_to_ask() {
    let (_, _, body) = build(&config(None), &HandoffData::default());
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": true
        })
    );
    // An empty model in the handoff means the default too.
    let data = HandoffData {
        model: Some(String::new()),
        ..HandoffData::default()
    };
    assert_eq!(build(&config(None), &data).2["model"], "gpt-4o-mini");
}

#[test]
fn authorization_only_with_a_key() {
    for key in [None, Some("")] {
        let (_, headers, _) = build(&config(key), &HandoffData::default());
        assert!(
            !headers.iter().any(|h| h.starts_with("Authorization")),
            "{headers:?}"
        );
    }
    let (_, headers, _) = build(&config(Some("sk-abc")), &HandoffData::default());
    assert!(headers.contains(&"Authorization: Bearer sk-abc".to_string()));
}

#[test]
fn test_pattern_header_when_set() {
    let data = HandoffData {
        test_pattern: Some("slow-tokens".into()),
        ..HandoffData::default()
    };
    let (_, headers, _) = build(&config(None), &data);
    assert!(headers.contains(&"X-Test-Pattern: slow-tokens".to_string()));
    let (_, headers, _) = build(&config(None), &HandoffData::default());
    assert!(!headers.iter().any(|h| h.starts_with("X-Test-Pattern")));
}

#[test]
fn header_injection_is_refused() {
    let data = HandoffData {
        test_pattern: Some("x\r\nX-Injected: yes".into()),
        ..HandoffData::default()
    };
    let error = build_request(&config(None), "m", &origin(), &data, None).unwrap_err();
    assert_eq!(error, RequestError::BadHeaderValue("X-Test-Pattern".into()));

    let error = build_request(
        &config(Some("sk-a\nb")),
        "m",
        &origin(),
        &HandoffData::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(error, RequestError::BadHeaderValue("Authorization".into()));
    assert!(!error.to_string().contains("sk-a"));
}

#[test]
fn origin_decides_target_and_host() {
    let local = Origin::parse("http://127.0.0.1:8080", None).unwrap();
    let request = build_request(&config(None), "m", &local, &HandoffData::default(), None)
        .unwrap()
        .whole();
    let (request_line, headers, _) = parts(&request);
    assert_eq!(request_line, "POST /chat/completions HTTP/1.1");
    assert_eq!(headers[0], "Host: 127.0.0.1:8080");
}

#[test]
fn upstream_request_pairs_request_and_translator() {
    let upstream =
        upstream_request(&config(None), "m", &origin(), &HandoffData::default(), None).unwrap();
    assert!(upstream
        .request
        .starts_with(b"POST /v1/chat/completions HTTP/1.1\r\n"));
}

#[test]
fn a_content_parts_array_goes_upstream_exactly_as_written() {
    let handoff = br#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":[ {"type":"text","text":"What is this?","extra":1.50},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw==","detail":"low"}} ]}],"max_tokens":"256"}"#;
    let data = crate::handoff::parse_handoff_data(handoff).unwrap();
    let request = build_request(&config(None), "gpt-4o-mini", &origin(), &data, None)
        .unwrap()
        .whole();
    let (_, _, body) = request_parts(&request);
    assert_eq!(
        body,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"S"},{"role":"user","content":[ {"type":"text","text":"What is this?","extra":1.50},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw==","detail":"low"}} ]}],"stream":true,"max_tokens":256}"#
    );
}

#[test]
fn max_tokens_from_php_is_forwarded_as_an_integer() {
    for handoff in [
        &br#"{"max_tokens":100}"#[..],
        br#"{"max_tokens":100.0}"#,
        br#"{"max_tokens":1e2}"#,
        br#"{"max_tokens":"100"}"#,
    ] {
        let data = crate::handoff::parse_handoff_data(handoff).unwrap();
        let (_, _, body) = build(&config(None), &data);
        assert_eq!(
            body["max_tokens"],
            json!(100),
            "{}",
            String::from_utf8_lossy(handoff)
        );
    }
    let data = crate::handoff::parse_handoff_data(br#"{"max_tokens":null}"#).unwrap();
    assert!(build(&config(None), &data).2.get("max_tokens").is_none());
}
