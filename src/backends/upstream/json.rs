//! Upstream event data parsed as JSON, without losing text to a lone surrogate escape.
//!
//! Models stream text token by token, and some servers escape each token's UTF-16 on its own:
//! a character outside the BMP split between two chunks arrives as `"\ud83d"` in one and
//! `"\ude00"` in the next, and a broken model can emit any lone surrogate. serde_json refuses
//! the whole chunk for it, so its text would be skipped while the stream still ends with
//! `[DONE]`: a silent loss. [`parse`] tries serde_json as it is, and only when that fails
//! rewrites each lone surrogate escape as `\uFFFD` (U+FFFD REPLACEMENT CHARACTER, as a lossy
//! UTF-16 decoder does) and tries again. The fast path costs nothing extra.

use serde_json::Value;

/// What a lone surrogate escape becomes.
const REPLACEMENT: &str = "\\uFFFD";

/// `data` as JSON; a lone surrogate escape in a string reads as U+FFFD. When `data` is bad JSON
/// for another reason, the error is serde_json's on the text as it came.
pub fn parse(data: &str) -> serde_json::Result<Value> {
    let error = match serde_json::from_str(data) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    match replace_lone_surrogates(data) {
        Some(repaired) => serde_json::from_str(&repaired).map_err(|_| error),
        None => Err(error),
    }
}

/// `json` with every `\uXXXX` escape of a lone surrogate (a high one not followed by a low
/// one, a low one not after a high one) replaced by `\uFFFD`; `None` when there is none.
/// Escapes are found by walking them from the left, so `\\ud800` (an escaped backslash, then
/// text) is left alone. Backslashes outside strings are not JSON anyway: the parse that
/// follows refuses them.
fn replace_lone_surrogates(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let mut out: Option<String> = None;
    // Bytes up to here are copied to `out` (or need no copy while `out` is `None`).
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escaped_unit(bytes, i) else {
            // `\"`, `\\`, `\n`…: two bytes, whatever the second is.
            i += 2;
            continue;
        };
        let pair = is_high(unit) && escaped_unit(bytes, i + 6).is_some_and(is_low);
        if pair {
            i += 12;
        } else if is_high(unit) || is_low(unit) {
            let repaired = out.get_or_insert_with(|| String::with_capacity(json.len()));
            repaired.push_str(&json[copied..i]);
            repaired.push_str(REPLACEMENT);
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    let mut repaired = out?;
    repaired.push_str(&json[copied..]);
    Some(repaired)
}

/// The UTF-16 code unit of a `\uXXXX` escape starting at `at`, if one does.
fn escaped_unit(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at + 6)?;
    if escape[..2] != *b"\\u" {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

fn is_high(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(json: &str) -> String {
        match parse(json) {
            Ok(Value::String(text)) => text,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn lone_surrogates_read_as_replacement_characters() {
        let cases = [
            (r#""\ud800""#, "\u{FFFD}"),
            (r#""a\ud800b""#, "a\u{FFFD}b"),
            (r#""\udc00""#, "\u{FFFD}"),
            (r#""x\uDBFF""#, "x\u{FFFD}"),
            (r#""\ud800\u0041""#, "\u{FFFD}A"),
            (r#""\ud800\n""#, "\u{FFFD}\n"),
            (r#""\ud800\ud800\udc00""#, "\u{FFFD}\u{10000}"),
            (r#""\udc00\ud83d\ude00\ud83d""#, "\u{FFFD}😀\u{FFFD}"),
            (r#""é\ud800é""#, "é\u{FFFD}é"),
        ];
        for (json, expected) in cases {
            assert!(serde_json::from_str::<Value>(json).is_err(), "{json}");
            assert_eq!(text(json), expected, "{json}");
        }
    }

    #[test]
    fn valid_text_and_pairs_are_untouched() {
        for (json, expected) in [
            (r#""\ud83d\ude00""#, "😀"),
            (r#""\\ud800""#, "\\ud800"),
            (r#""\\\ud83d\ude00""#, "\\😀"),
            (r#""\"\u00e9""#, "\"é"),
        ] {
            assert_eq!(text(json), expected, "{json}");
            assert_eq!(replace_lone_surrogates(json), None, "{json}");
        }
    }

    #[test]
    fn other_errors_are_reported_on_the_text_as_it_came() {
        for json in [r#"{"a":"\ud800"#, r#"{not json"#, r#""\ud800\u12""#, "\"\\"] {
            let error = parse(json).unwrap_err();
            assert_eq!(
                error.to_string(),
                serde_json::from_str::<Value>(json).unwrap_err().to_string(),
                "{json}"
            );
        }
    }

    #[test]
    fn surrogates_in_keys_and_nested_strings_are_repaired_too() {
        let value = parse(r#"{"k\udc01":["\ud801"],"ok":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(value["k\u{FFFD}"][0], "\u{FFFD}");
        assert_eq!(value["ok"], "😀");
    }
}
