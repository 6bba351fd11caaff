//! End-to-end: handoff data as PHP's `json_encode` writes it reaches the mock backend, and data
//! that cannot be converted gets a complete 400 with the reason (SPEC §1.3, §3.3).

mod common;

use common::*;

fn daemon(name: &str) -> Daemon {
    Daemon::start(name, &["-message-delay", "0"])
}

/// The 18 events of a complete mock stream after the exact 119-byte head.
fn stream(daemon: &Daemon, data: &str) -> Vec<String> {
    let body = daemon.request(data.as_bytes());
    assert!(body.starts_with(SSE_HEAD), "{data}: {body:?}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{data}: {body:?}");
    let events = contents(&body);
    assert_eq!(events.len(), 18, "{data}");
    events
}

#[test]
fn what_php_sends_streams() {
    let daemon = daemon("e2e-php");
    // null for unset values, [] for empty objects, numbers as strings or floats, keys given
    // twice, keys this daemon ignores, the newer keys left empty.
    let events = stream(
        &daemon,
        r#"{"prompt":"first","user_id":"42","max_tokens":256.0,"timestamp":1700000000.25,
            "model":null,"thread_id":null,"test_pattern":null,"attachments":[],
            "attachment_types":[],"langgraph_input":[],"response_headers":[],"images":[],
            "image_paths":[],"image_path":"","backend":"","profile":"","stream_mode":[],
            "resume":"","unknown":{"x":[1,2]},"prompt":"PHP says hi"}"#,
    );
    assert_eq!(events[0], "Hello from Rust daemon! Prompt: PHP says hi");
    assert_eq!(events[1], "User ID: 42");

    for (user_id, shown) in [
        ("42.0", "42"),
        ("4.2e1", "42"),
        ("-7", "-7"),
        ("\"9223372036854775807\"", "9223372036854775807"),
        ("null", "0"),
    ] {
        let events = stream(&daemon, &format!(r#"{{"prompt":"p","user_id":{user_id}}}"#));
        assert_eq!(events[1], format!("User ID: {shown}"), "{user_id}");
    }

    // PHP's empty array, and null, as the whole data: all defaults.
    for data in ["[]", "null"] {
        assert_eq!(stream(&daemon, data)[1], "User ID: 0", "{data}");
    }
}

#[test]
fn a_messages_handoff_shows_its_words_on_the_mock() {
    let daemon = daemon("e2e-parts");
    let events = stream(
        &daemon,
        r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"What is "},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw=="}},{"type":"text","text":"in this image?"}]}]}"#,
    );
    assert_eq!(
        events[0],
        "Hello from Rust daemon! Prompt: What is in this image?"
    );
}

#[test]
fn data_that_cannot_be_converted_gets_400_with_the_reason() {
    let daemon = daemon("e2e-bad-data");
    for (data, reason) in [
        ("{\"prompt\":", "not JSON ("),
        (
            r#"{"user_id":"abc"}"#,
            "user_id must be a whole number (42, 42.0 or \"42\") within the signed 64-bit range",
        ),
        (
            r#"{"user_id":4.5}"#,
            "user_id must be a whole number (42, 42.0 or \"42\") within the signed 64-bit range",
        ),
        (r#"{"prompt":5}"#, "prompt must be a string, not a number"),
        (
            r#"{"stream_mode":["a","b"]}"#,
            "stream_mode must be one mode (a string or an array of one string), not 2 modes",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
            "messages[0].content[0].text must be a string",
        ),
        (
            r#"{"attachments":{"a":1}}"#,
            "attachments.a must be a string, not a number",
        ),
        ("[1]", "expected a JSON object, not an array"),
    ] {
        let response = daemon.request(data.as_bytes());
        let (status, headers, body) = parse_response(&response);
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{data}");
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            ["Content-Type", "Content-Length", "Connection"],
            "{data}"
        );
        assert_eq!(headers[1].1, body.len().to_string());
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid request data: {reason}")),
            "{data}: {message}"
        );
    }
    // The daemon goes on streaming afterwards.
    assert_eq!(
        stream(&daemon, r#"{"prompt":"ok"}"#)[0],
        "Hello from Rust daemon! Prompt: ok"
    );
}
