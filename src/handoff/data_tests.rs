use super::*;
use crate::handoff::{Content, InlineImage};

fn parse(payload: &str) -> HandoffData {
    match parse_handoff_data(payload.as_bytes()) {
        Ok(data) => data,
        Err(error) => panic!("{payload} was refused: {error}"),
    }
}

fn reason(payload: &str) -> String {
    match parse_handoff_data(payload.as_bytes()) {
        Err(HandoffError::BadJson { reason }) => reason,
        other => panic!("expected a bad handoff for {payload}, got {other:?}"),
    }
}

fn raw(text: &str) -> RawJson {
    RawJson::parse(text).unwrap()
}

#[test]
fn empty_and_nul_payloads_mean_defaults() {
    for payload in [&b""[..], b"\0", b"\0\0\0", b"null", b"[]", b"{}", b" { } "] {
        assert_eq!(
            parse_handoff(payload),
            ParsedHandoff {
                data: Ok(HandoffData::default()),
                staged: StagedFiles::default()
            },
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn nul_bytes_around_json_are_stripped() {
    let data = parse_handoff_data(b"\0{\"prompt\":\"hi\"}\0\0").unwrap();
    assert_eq!(data.prompt, "hi");
}

#[test]
fn every_known_key_is_read() {
    let data = parse(
        r#"{"prompt":"p","messages":[{"role":"user","content":"c"}],"user_id":7,
            "model":"m","max_tokens":12,"timestamp":1700000000,"test_pattern":"t",
            "thread_id":"th/1","assistant_id":"a","langgraph_input":{"n":1234567},
            "response_headers":{"X-A":"1"},"backend":"openai","profile":"sales",
            "stream_mode":"updates","attachments":{"a":"a.txt"},
            "attachment_types":{"a":"text/plain"},
            "images":[{"base64":"QQ==","mime_type":"image/png"}],
            "image_base64":"R0lGODlh","image_mime_type":"image/gif",
            "image_path":"/run/handoff-data/x.png","image_paths":["/run/handoff-data/y.png"],
            "resume":"0123abcd-4","lg":"x","langgraph_url":"http://evil","langgraph_api_key":"k",
            "unknown":{"ignored":true}}"#,
    );
    let want = HandoffData {
        prompt: "p".into(),
        messages: vec![ChatMessage {
            role: "user".into(),
            content: Content::Text("c".into()),
        }],
        user_id: 7,
        model: Some("m".into()),
        max_tokens: Some(12),
        test_pattern: Some("t".into()),
        thread_id: Some("th/1".into()),
        assistant_id: Some("a".into()),
        langgraph_input: vec![("n".into(), raw("1234567"))],
        response_headers: Some(raw(r#"{"X-A":"1"}"#)),
        backend: Some("openai".into()),
        profile: Some("sales".into()),
        stream_mode: Some("updates".into()),
        attachments: [("a".to_string(), "a.txt".to_string())].into(),
        attachment_types: [("a".to_string(), "text/plain".to_string())].into(),
        images: vec![InlineImage {
            base64: "QQ==".into(),
            mime_type: Some("image/png".into()),
        }],
        image_base64: Some("R0lGODlh".into()),
        image_mime_type: Some("image/gif".into()),
        image_path: Some("/run/handoff-data/x.png".into()),
        image_paths: vec!["/run/handoff-data/y.png".into()],
        resume: Some("0123abcd-4".into()),
        ignored_keys: vec!["lg", "langgraph_url", "langgraph_api_key"],
    };
    assert_eq!(data, want);
}

#[test]
fn null_means_absent_for_every_key() {
    let keys = [
        "prompt",
        "messages",
        "user_id",
        "model",
        "max_tokens",
        "timestamp",
        "test_pattern",
        "thread_id",
        "assistant_id",
        "langgraph_input",
        "response_headers",
        "backend",
        "profile",
        "stream_mode",
        "attachments",
        "attachment_types",
        "images",
        "image_base64",
        "image_mime_type",
        "image_path",
        "image_paths",
        "resume",
        "lg",
        "langgraph_url",
        "langgraph_api_key",
    ];
    let all = keys
        .iter()
        .map(|key| format!("\"{key}\":null"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(parse(&format!("{{{all}}}")), HandoffData::default());
    for key in keys {
        assert_eq!(
            parse(&format!("{{\"{key}\":null}}")),
            HandoffData::default(),
            "{key}"
        );
    }
}

#[test]
fn an_empty_array_is_an_empty_object_for_every_object_key() {
    let data = parse(
        r#"{"langgraph_input":[],"attachments":[],"attachment_types":[],"messages":[[]],
            "images":[],"image_paths":[]}"#,
    );
    assert_eq!(data.langgraph_input, vec![]);
    assert!(data.attachments.is_empty());
    assert!(data.attachment_types.is_empty());
    // A message that is PHP's empty array: no role, no content.
    assert_eq!(
        data.messages,
        vec![ChatMessage {
            role: String::new(),
            content: Content::Text(String::new()),
        }]
    );
    // response_headers keeps its value as written; the filter makes nothing of `[]`.
    let data = parse(r#"{"response_headers":[]}"#);
    assert_eq!(data.response_headers, Some(raw("[]")));
}

#[test]
fn what_php_sends_streams() {
    let data = parse(
        r#"{"prompt":"Hi","user_id":"42","max_tokens":256.0,"timestamp":1700000000.25,
            "model":null,"thread_id":null,"attachments":[],"attachment_types":[],
            "langgraph_input":[],"response_headers":[],"images":[],"image_paths":[],
            "backend":"","profile":"","stream_mode":[],"resume":"","image_path":"",
            "image_base64":"","image_mime_type":""}"#,
    );
    assert_eq!(
        data,
        HandoffData {
            prompt: "Hi".into(),
            user_id: 42,
            max_tokens: Some(256),
            response_headers: Some(raw("[]")),
            ..HandoffData::default()
        }
    );
}

#[test]
fn integers_may_be_integral_numbers_or_decimal_strings() {
    for (value, want) in [
        ("42", 42),
        ("42.0", 42),
        ("4.2e1", 42),
        ("4.2E+1", 42),
        ("\"42\"", 42),
        ("\"-3\"", -3),
        ("-3", -3),
        ("-0.0", 0),
        ("9223372036854775807", i64::MAX),
        ("\"-9223372036854775808\"", i64::MIN),
    ] {
        assert_eq!(
            parse(&format!("{{\"user_id\":{value}}}")).user_id,
            want,
            "{value}"
        );
        assert_eq!(
            parse(&format!("{{\"max_tokens\":{value}}}")).max_tokens,
            Some(want),
            "{value}"
        );
    }
    let refused =
        "user_id must be a whole number (42, 42.0 or \"42\") within the signed 64-bit range";
    for value in [
        "\"abc\"",
        "4.5",
        "\"4.2\"",
        "\"42.0\"",
        "\" 42\"",
        "\"+42\"",
        "\"\"",
        "true",
        "[]",
        "{}",
        "1e19",
        "9223372036854775808",
        "\"9223372036854775808\"",
    ] {
        assert_eq!(
            reason(&format!("{{\"user_id\":{value}}}")),
            refused,
            "{value}"
        );
        assert!(reason(&format!("{{\"max_tokens\":{value}}}")).starts_with("max_tokens must be"));
    }
}

#[test]
fn timestamp_is_any_number() {
    for value in ["1700000000", "1700000000.123456", "1.7e9", "null"] {
        assert_eq!(
            parse(&format!("{{\"timestamp\":{value}}}")),
            HandoffData::default()
        );
    }
    assert_eq!(
        reason(r#"{"timestamp":"1700000000"}"#),
        "timestamp must be a number, not a string"
    );
}

#[test]
fn values_that_cannot_be_converted_are_bad_handoffs() {
    for (payload, want) in [
        (r#"{"prompt":5}"#, "prompt must be a string, not a number"),
        (r#"{"model":true}"#, "model must be a string, not a boolean"),
        (
            r#"{"thread_id":{}}"#,
            "thread_id must be a string, not an object",
        ),
        (
            r#"{"backend":["openai"]}"#,
            "backend must be a string, not an array",
        ),
        (r#"{"profile":1}"#, "profile must be a string, not a number"),
        (r#"{"resume":1}"#, "resume must be a string, not a number"),
        (
            r#"{"test_pattern":1}"#,
            "test_pattern must be a string, not a number",
        ),
        (
            r#"{"messages":"hi"}"#,
            "messages must be an array, not a string",
        ),
        (
            r#"{"messages":{}}"#,
            "messages must be an array, not an object",
        ),
        (
            r#"{"messages":[1]}"#,
            "messages[0] must be an object, not a number",
        ),
        (
            r#"{"messages":[{"role":"user","content":3}]}"#,
            "messages[0].content must be a string or an array of content parts, not a number",
        ),
        (
            r#"{"messages":[{"role":1,"content":"x"}]}"#,
            "messages[0].role must be a string, not a number",
        ),
        (
            r#"{"langgraph_input":[1]}"#,
            "langgraph_input must be an object, not an array",
        ),
        (
            r#"{"langgraph_input":"x"}"#,
            "langgraph_input must be an object, not a string",
        ),
        (
            r#"{"attachments":{"a":5}}"#,
            "attachments.a must be a string, not a number",
        ),
        (
            r#"{"attachments":{"a":null}}"#,
            "attachments.a must be a string, not null",
        ),
        (
            r#"{"attachments":"a.txt"}"#,
            "attachments must be an object, not a string",
        ),
        (
            r#"{"attachment_types":{"a":["text/plain"]}}"#,
            "attachment_types.a must be a string, not an array",
        ),
        (
            r#"{"images":{}}"#,
            "images must be an array of objects, not an object",
        ),
        (
            r#"{"images":["QQ=="]}"#,
            "images[0] must be an object, not a string",
        ),
        (
            r#"{"images":[{"mime_type":"image/png"}]}"#,
            "images[0].base64 must be a string",
        ),
        (
            r#"{"images":[{"base64":null}]}"#,
            "images[0].base64 must be a string",
        ),
        (
            r#"{"images":[{"base64":"QQ==","mime_type":1}]}"#,
            "images[0].mime_type must be a string, not a number",
        ),
        (
            r#"{"image_base64":1}"#,
            "image_base64 must be a string, not a number",
        ),
        (
            r#"{"image_path":["/x"]}"#,
            "image_path must be a string, not an array",
        ),
        (
            r#"{"image_paths":"/x"}"#,
            "image_paths must be an array of strings, not a string",
        ),
        (
            r#"{"image_paths":["/x",null]}"#,
            "image_paths[1] must be a string, not null",
        ),
        ("[1,2]", "expected a JSON object, not an array"),
        ("\"x\"", "expected a JSON object, not a string"),
        ("5", "expected a JSON object, not a number"),
    ] {
        assert_eq!(reason(payload), want, "{payload}");
    }
}

#[test]
fn stream_mode_is_one_string() {
    for (value, want) in [
        ("\"updates\"", Some("updates")),
        ("[\"messages\"]", Some("messages")),
        ("[]", None),
        ("\"\"", None),
        ("[\"\"]", None),
        ("null", None),
    ] {
        assert_eq!(
            parse(&format!("{{\"stream_mode\":{value}}}"))
                .stream_mode
                .as_deref(),
            want,
            "{value}"
        );
    }
    assert_eq!(
        reason(r#"{"stream_mode":["a","b"]}"#),
        "stream_mode must be one mode (a string or an array of one string), not 2 modes"
    );
    assert_eq!(
        reason(r#"{"stream_mode":[5]}"#),
        "stream_mode must be a string, not a number"
    );
    assert_eq!(
        reason(r#"{"stream_mode":{}}"#),
        "stream_mode must be a string, not an object"
    );
}

#[test]
fn invalid_json_is_a_bad_handoff_with_the_reason() {
    for payload in [
        &b"{\"prompt\":"[..],
        b"hello",
        b"{\"a\":1}x",
        b"{\"prompt\":\"\xff\"}",
    ] {
        match parse_handoff(payload) {
            ParsedHandoff {
                data: Err(HandoffError::BadJson { reason }),
                staged,
            } => {
                assert!(reason.starts_with("not JSON ("), "{reason}");
                assert!(staged.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_key_given_twice_keeps_its_last_value() {
    let data = parse(r#"{"prompt":"a","user_id":1,"prompt":"b","user_id":"2"}"#);
    assert_eq!((data.prompt.as_str(), data.user_id), ("b", 2));
    // The earlier value is not looked at: only the last must convert.
    assert_eq!(parse(r#"{"user_id":"abc","user_id":3}"#).user_id, 3);
    assert!(reason(r#"{"user_id":3,"user_id":"abc"}"#).starts_with("user_id"));
    // null as the last occurrence is absence.
    assert_eq!(parse(r#"{"prompt":"a","prompt":null}"#).prompt, "");
    // Inside a message too.
    let data = parse(r#"{"messages":[{"role":"user","content":"a","content":"b"}]}"#);
    assert_eq!(data.messages[0].content, Content::Text("b".into()));
}

#[test]
fn langgraph_input_keeps_values_as_written_and_its_last_duplicate() {
    let data = parse(
        r#"{"langgraph_input":{"a":1,"b":{"x":2.50e3, "y":[1,2]},"a":12345678901234567890,"c":null}}"#,
    );
    assert_eq!(
        data.langgraph_input,
        vec![
            ("b".to_string(), raw(r#"{"x":2.50e3, "y":[1,2]}"#)),
            ("a".to_string(), raw("12345678901234567890")),
            ("c".to_string(), raw("null")),
        ]
    );
}

#[test]
fn attachments_keep_the_last_value_and_every_name_for_deletion() {
    let parsed = parse_handoff(
        br#"{"attachments":{"x":"first.txt"},"image_path":"/d/p1.png",
             "attachments":{"a":"one.txt","b":"b.png","a":"two.txt"},
             "image_paths":["/d/q.png"],"image_path":"/d/p2.png"}"#,
    );
    let data = parsed.data.unwrap();
    assert_eq!(
        data.attachments,
        [
            ("a".to_string(), "two.txt".to_string()),
            ("b".to_string(), "b.png".to_string())
        ]
        .into()
    );
    assert_eq!(data.image_path.as_deref(), Some("/d/p2.png"));
    assert_eq!(data.image_paths, vec!["/d/q.png".to_string()]);
    assert_eq!(
        parsed.staged,
        StagedFiles {
            attachments: vec![
                "first.txt".into(),
                "one.txt".into(),
                "b.png".into(),
                "two.txt".into()
            ],
            image_paths: vec!["/d/p1.png".into(), "/d/q.png".into(), "/d/p2.png".into()],
        }
    );
}

#[test]
fn a_refused_handoff_still_names_its_files() {
    let parsed = parse_handoff(
        br#"{"user_id":"abc","attachments":{"a":"a.txt","n":5,"b":"b.txt"},
             "image_paths":["/d/y.png",7],"image_path":"/d/x.png","attachment_types":{"a":1}}"#,
    );
    assert!(matches!(parsed.data, Err(HandoffError::BadJson { .. })));
    assert_eq!(
        parsed.staged,
        StagedFiles {
            attachments: vec!["a.txt".into(), "b.txt".into()],
            image_paths: vec!["/d/y.png".into(), "/d/x.png".into()],
        }
    );
    assert!(parse_handoff(b"[1]").staged.is_empty());
}

#[test]
fn images_and_their_types() {
    let data = parse(
        r#"{"images":[{"base64":"QQ=="},{"base64":"Qg==","mime_type":null},
                      {"base64":"Qw==","mime_type":""},{"base64":"RA==","mime_type":"image/webp","x":1}]}"#,
    );
    let image = |b: &str, m: Option<&str>| InlineImage {
        base64: b.into(),
        mime_type: m.map(str::to_string),
    };
    assert_eq!(
        data.images,
        vec![
            image("QQ==", None),
            image("Qg==", None),
            image("Qw==", None),
            image("RA==", Some("image/webp")),
        ]
    );
}

#[test]
fn content_may_be_a_parts_array_kept_as_written() {
    let parts = r#"[ {"type":"text","text":"What is "},{"type":"image_url","image_url":{"url":"data:image/png;base64,QQ=="}},{"type":"text","text":"this?","n":1.50} ]"#;
    let data = parse(&format!(
        r#"{{"messages":[{{"role":"user","content":{parts}}},{{"role":"user","content":[]}}]}}"#
    ));
    let Content::Parts(first) = &data.messages[0].content else {
        panic!("{:?}", data.messages[0]);
    };
    assert_eq!(first.json(), parts.trim());
    assert_eq!(first.text(), "What is this?");
    assert_eq!(data.messages[0].content.text(), "What is this?");
    let Content::Parts(empty) = &data.messages[1].content else {
        panic!("{:?}", data.messages[1]);
    };
    assert_eq!((empty.json(), empty.text()), ("[]", ""));

    for (content, want) in [
        (
            "[1]",
            "messages[0].content[0] must be an object, not a number",
        ),
        ("[{}]", "messages[0].content[0].type must be a string"),
        (
            "[{\"type\":5}]",
            "messages[0].content[0].type must be a string, not a number",
        ),
        (
            "[{\"type\":\"text\"}]",
            "messages[0].content[0].text must be a string",
        ),
        (
            "[{\"type\":\"text\",\"text\":[\"x\"]}]",
            "messages[0].content[0].text must be a string, not an array",
        ),
        (
            "{}",
            "messages[0].content must be a string or an array of content parts, not an object",
        ),
    ] {
        assert_eq!(
            reason(&format!(
                r#"{{"messages":[{{"role":"user","content":{content}}}]}}"#
            )),
            want,
            "{content}"
        );
    }
}

#[test]
fn ignored_keys_are_named_once_and_null_ones_are_not() {
    let data = parse(r#"{"langgraph_api_key":"k","lg":null,"langgraph_url":5}"#);
    assert_eq!(
        data.ignored_keys,
        vec!["langgraph_url", "langgraph_api_key"]
    );
    assert_eq!(
        data.ignored_keys_warning().as_deref(),
        Some(
            "handoff keys ignored: langgraph_url, langgraph_api_key; the upstream URL and key \
             come only from the configuration"
        )
    );
    assert_eq!(parse("{}").ignored_keys_warning(), None);
}

#[test]
fn response_headers_of_any_type_never_refuse_the_handoff() {
    for value in [
        r#""X-A: 1""#,
        "42",
        "true",
        r#"[1]"#,
        r#"{"X-A":{"deep":[1]}}"#,
    ] {
        let data = parse(&format!(r#"{{"prompt":"hi","response_headers":{value}}}"#));
        assert_eq!(data.response_headers, Some(raw(value)), "{value}");
        assert_eq!(data.prompt, "hi");
    }
}

#[test]
fn deep_nesting_is_answered_not_a_crash() {
    let depth = 20_000;
    let payload = format!(
        "{{\"langgraph_input\":{{\"a\":{}{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    // serde_json's own recursion limit may refuse it; either way there is an answer.
    let _ = parse_handoff(payload.as_bytes());
    let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(parse_handoff_data(payload.as_bytes()).is_err());
}
