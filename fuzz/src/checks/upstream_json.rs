//! `backends::upstream::json::parse`, the lenient re-parse of upstream event data.
//!
//! - What serde_json parses, it parses to the same value.
//! - What only the re-parse accepts had a lone surrogate escape, now U+FFFD somewhere in it.
//! - What neither accepts fails with serde_json's own error on the text as it came.
//! - A value it gives serialises and parses back to itself.

use serde_json::Value;
use streaming_daemon::backends::upstream::json;

pub fn check(data: &[u8]) {
    // Event data reaches the translators lossily decoded, so every input is some event's data.
    let text = String::from_utf8_lossy(data);
    let strict = serde_json::from_str::<Value>(&text);
    let lenient = json::parse(&text);
    match (&strict, &lenient) {
        (Ok(strict), Ok(lenient)) => assert_eq!(strict, lenient),
        (Ok(_), Err(error)) => panic!("serde_json parses it, the re-parse fails: {error}"),
        (Err(_), Ok(value)) => {
            assert!(
                has_replacement(value),
                "repaired without a U+FFFD: {value:?}"
            );
            assert!(
                text.to_ascii_lowercase().contains("\\ud"),
                "no surrogate escape"
            );
        }
        (Err(strict), Err(lenient)) => assert_eq!(strict.to_string(), lenient.to_string()),
    }
    if let Ok(value) = lenient {
        let text = serde_json::to_string(&value).expect("a value serialises");
        let back: Value = serde_json::from_str(&text).expect("what serde_json wrote parses");
        assert_eq!(back, value);
    }
}

/// U+FFFD in a string or a key anywhere in `value`.
fn has_replacement(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\u{FFFD}'),
        Value::Array(items) => items.iter().any(has_replacement),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\u{FFFD}') || has_replacement(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}
