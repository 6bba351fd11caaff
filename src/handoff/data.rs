//! The JSON object Apache's module forwards from PHP's `X-Handoff-Data` header.

use serde_json::{Map, Value};

use super::HandoffError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// What a stream needs to know about its request. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandoffData {
    pub prompt: String,
    pub messages: Vec<ChatMessage>,
    pub user_id: i64,
    pub model: Option<String>,
    pub max_tokens: Option<u64>,
    pub test_pattern: Option<String>,
    pub thread_id: Option<String>,
    pub assistant_id: Option<String>,
    /// Extra fields for a LangGraph run's `input`, kept as given (numbers stay exact).
    pub langgraph_input: Option<Map<String, Value>>,
}

/// Parses a handoff payload. Leading and trailing NUL bytes are stripped (the module sends a
/// single `\0` when the request had no handoff header); nothing left means all defaults.
pub fn parse_handoff_data(payload: &[u8]) -> Result<HandoffData, HandoffError> {
    let start = payload
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(payload.len());
    let end = payload
        .iter()
        .rposition(|&b| b != 0)
        .map_or(start, |i| i + 1);
    let trimmed = &payload[start..end];
    if trimmed.is_empty() {
        return Ok(HandoffData::default());
    }
    let value: Value =
        serde_json::from_slice(trimmed).map_err(|e| bad(format!("not JSON ({e})")))?;
    let Value::Object(mut object) = value else {
        return Err(bad("expected a JSON object".to_string()));
    };
    let mut data = HandoffData::default();
    if let Some(v) = object.remove("prompt") {
        data.prompt = string_field("prompt", v)?;
    }
    if let Some(v) = object.remove("messages") {
        data.messages = messages_field(v)?;
    }
    if let Some(v) = object.remove("user_id") {
        data.user_id = user_id_field(v)?;
    }
    if let Some(v) = object.remove("model") {
        data.model = optional(v, |v| string_field("model", v))?;
    }
    if let Some(v) = object.remove("max_tokens") {
        data.max_tokens = optional(v, |v| {
            v.as_u64()
                .ok_or_else(|| bad("max_tokens must be a non-negative integer".to_string()))
        })?;
    }
    if let Some(v) = object.remove("timestamp") {
        optional(v, |v| {
            v.as_i64()
                .map(|_| ())
                .ok_or_else(|| bad("timestamp must be an integer".to_string()))
        })?;
    }
    if let Some(v) = object.remove("test_pattern") {
        data.test_pattern = optional(v, |v| string_field("test_pattern", v))?;
    }
    if let Some(v) = object.remove("thread_id") {
        data.thread_id = optional(v, |v| string_field("thread_id", v))?.filter(|s| !s.is_empty());
    }
    if let Some(v) = object.remove("assistant_id") {
        data.assistant_id =
            optional(v, |v| string_field("assistant_id", v))?.filter(|s| !s.is_empty());
    }
    if let Some(v) = object.remove("langgraph_input") {
        data.langgraph_input = optional(v, |v| match v {
            Value::Object(map) => Ok(map),
            _ => Err(bad("langgraph_input must be an object".to_string())),
        })?;
    }
    Ok(data)
}

fn bad(reason: String) -> HandoffError {
    HandoffError::BadJson { reason }
}

/// `null` counts as absent, as it did for the Go daemon's decoder.
fn optional<T>(
    value: Value,
    parse: impl FnOnce(Value) -> Result<T, HandoffError>,
) -> Result<Option<T>, HandoffError> {
    match value {
        Value::Null => Ok(None),
        other => parse(other).map(Some),
    }
}

fn string_field(key: &str, value: Value) -> Result<String, HandoffError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        _ => Err(bad(format!("{key} must be a string"))),
    }
}

/// PHP sessions often hold ids as strings, so `"42"` is as good as `42`.
fn user_id_field(value: Value) -> Result<i64, HandoffError> {
    let parsed = match &value {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| bad("user_id must be an integer or a numeric string".to_string()))
}

fn messages_field(value: Value) -> Result<Vec<ChatMessage>, HandoffError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad("messages must be an array".to_string())),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(mut message) = item else {
                return Err(bad(format!("messages[{i}] must be an object")));
            };
            let mut text = |key: &str| match message.remove(key) {
                None => Ok(String::new()),
                Some(v) => string_field(&format!("messages[{i}].{key}"), v),
            };
            Ok(ChatMessage {
                role: text("role")?,
                content: text("content")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(payload: &str) -> String {
        match parse_handoff_data(payload.as_bytes()) {
            Err(HandoffError::BadJson { reason }) => reason,
            other => panic!("expected a bad handoff, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_nul_payloads_mean_defaults() {
        for payload in [&b""[..], b"\0", b"\0\0\0"] {
            assert_eq!(parse_handoff_data(payload).unwrap(), HandoffData::default());
        }
    }

    #[test]
    fn nul_bytes_around_json_are_stripped() {
        let data = parse_handoff_data(b"\0{\"prompt\":\"hi\"}\0\0").unwrap();
        assert_eq!(data.prompt, "hi");
    }

    #[test]
    fn every_known_key_is_read() {
        let data = parse_handoff_data(
            br#"{"prompt":"p","messages":[{"role":"user","content":"c"}],"user_id":7,
                "model":"m","max_tokens":12,"timestamp":1700000000,"test_pattern":"t",
                "thread_id":"th/1","assistant_id":"a","langgraph_input":{"n":1234567},
                "unknown":{"ignored":true}}"#,
        )
        .unwrap();
        assert_eq!(data.prompt, "p");
        assert_eq!(
            data.messages,
            vec![ChatMessage {
                role: "user".into(),
                content: "c".into()
            }]
        );
        assert_eq!(data.user_id, 7);
        assert_eq!(data.model.as_deref(), Some("m"));
        assert_eq!(data.max_tokens, Some(12));
        assert_eq!(data.test_pattern.as_deref(), Some("t"));
        assert_eq!(data.thread_id.as_deref(), Some("th/1"));
        assert_eq!(data.assistant_id.as_deref(), Some("a"));
        let input = data.langgraph_input.unwrap();
        assert_eq!(serde_json::to_string(&input).unwrap(), r#"{"n":1234567}"#);
    }

    #[test]
    fn user_id_may_be_a_numeric_string() {
        assert_eq!(
            parse_handoff_data(br#"{"user_id":"42"}"#).unwrap().user_id,
            42
        );
        assert_eq!(
            parse_handoff_data(br#"{"user_id":-3}"#).unwrap().user_id,
            -3
        );
        assert_eq!(
            parse_handoff_data(br#"{"user_id":null}"#).unwrap().user_id,
            0
        );
    }

    #[test]
    fn wrong_types_are_bad_handoffs() {
        assert_eq!(
            reason(r#"{"user_id":"abc"}"#),
            "user_id must be an integer or a numeric string"
        );
        assert_eq!(
            reason(r#"{"user_id":1.5}"#),
            "user_id must be an integer or a numeric string"
        );
        assert_eq!(reason(r#"{"prompt":5}"#), "prompt must be a string");
        assert_eq!(reason(r#"{"messages":"hi"}"#), "messages must be an array");
        assert_eq!(
            reason(r#"{"messages":[1]}"#),
            "messages[0] must be an object"
        );
        assert_eq!(
            reason(r#"{"messages":[{"role":"user","content":3}]}"#),
            "messages[0].content must be a string"
        );
        assert_eq!(
            reason(r#"{"max_tokens":-1}"#),
            "max_tokens must be a non-negative integer"
        );
        assert_eq!(
            reason(r#"{"langgraph_input":[]}"#),
            "langgraph_input must be an object"
        );
        assert_eq!(reason("[1,2]"), "expected a JSON object");
    }

    #[test]
    fn invalid_json_is_a_bad_handoff() {
        assert!(reason("{\"prompt\":").starts_with("not JSON"));
        assert!(reason("hello").starts_with("not JSON"));
    }
}
