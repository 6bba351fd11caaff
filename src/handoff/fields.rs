//! Conversions of one handoff value to the type its key needs (SPEC §1.3), lenient where PHP's
//! `json_encode` is (`[]` for an empty object, numbers held as strings, `42.0`), strict where
//! a value cannot be converted without loss.
//!
//! Every converter gets a value that is present and not `null` (the caller has already taken
//! `null` as absent) and fails with the `bad_json` reason the client is told.

use std::collections::BTreeMap;

use super::json::{self, Json};
use super::HandoffError;

pub(super) fn bad(reason: String) -> HandoffError {
    HandoffError::BadJson { reason }
}

/// Reads a nested value. serde_json has validated the whole payload, so this cannot fail in
/// practice; if it ever did, the data is refused rather than guessed at.
pub(super) fn read(text: &str) -> Result<Json<'_>, HandoffError> {
    json::read(text).map_err(|_| bad("not JSON (malformed value)".to_string()))
}

/// The text of the last member named `key`: a key given twice keeps its last value, as with
/// Go's decoder.
pub(super) fn last_text<'a>(members: &[(String, &'a str)], key: &str) -> Option<&'a str> {
    members
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, text)| *text)
}

/// The last member named `key`, or `None` when it is absent or `null`.
pub(super) fn last<'a>(
    members: &[(String, &'a str)],
    key: &str,
) -> Result<Option<Json<'a>>, HandoffError> {
    match last_text(members, key).map(read).transpose()? {
        None | Some(Json::Null) => Ok(None),
        value => Ok(value),
    }
}

pub(super) fn text(key: &str, value: Json<'_>) -> Result<String, HandoffError> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(bad(format!("{key} must be a string, not {}", other.kind()))),
    }
}

/// A string where `""` means the same as absent (`backend`, `profile`, `resume`...).
pub(super) fn non_empty(key: &str, value: Json<'_>) -> Result<Option<String>, HandoffError> {
    text(key, value).map(|s| Some(s).filter(|s| !s.is_empty()))
}

/// `user_id`, `max_tokens`: an integer, an integral number (`42.0`, `4.2e1`) or a decimal string
/// (`"42"`, `"-7"`), within the signed 64-bit range.
pub(super) fn integer(key: &str, value: Json<'_>) -> Result<i64, HandoffError> {
    let parsed = match &value {
        Json::Number(text) => integral(text),
        Json::String(s) => decimal(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        bad(format!(
            "{key} must be a whole number (42, 42.0 or \"42\") within the signed 64-bit range"
        ))
    })
}

/// `timestamp`: any number (PHP's `microtime(true)` is a float); the value is not used.
pub(super) fn number(key: &str, value: Json<'_>) -> Result<(), HandoffError> {
    match value {
        Json::Number(_) => Ok(()),
        other => Err(bad(format!("{key} must be a number, not {}", other.kind()))),
    }
}

/// An object's members in document order; `[]` is PHP's empty object.
pub(super) fn object<'a>(
    key: &str,
    value: Json<'a>,
) -> Result<Vec<(String, &'a str)>, HandoffError> {
    match value {
        Json::Object(members) => Ok(members),
        Json::Array(items) if items.is_empty() => Ok(Vec::new()),
        other => Err(bad(format!(
            "{key} must be an object, not {}",
            other.kind()
        ))),
    }
}

/// An object whose every value is a string (`attachments`, `attachment_types`): a name given
/// twice keeps its last value.
pub(super) fn string_map(
    key: &str,
    value: Json<'_>,
) -> Result<BTreeMap<String, String>, HandoffError> {
    let mut map = BTreeMap::new();
    for (name, text) in object(key, value)? {
        let value = text_member(key, &name, text)?;
        map.insert(name, value);
    }
    Ok(map)
}

fn text_member(key: &str, name: &str, text: &str) -> Result<String, HandoffError> {
    match read(text)? {
        Json::String(s) => Ok(s),
        other => Err(bad(format!(
            "{key}.{name} must be a string, not {}",
            other.kind()
        ))),
    }
}

/// An array of strings (`image_paths`).
pub(super) fn strings(key: &str, value: Json<'_>) -> Result<Vec<String>, HandoffError> {
    let Json::Array(items) = value else {
        return Err(bad(format!(
            "{key} must be an array of strings, not {}",
            value.kind()
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match read(item)? {
            Json::String(s) => Ok(s),
            other => Err(bad(format!(
                "{key}[{i}] must be a string, not {}",
                other.kind()
            ))),
        })
        .collect()
}

/// `stream_mode`: a string, or an array of exactly one string; `[]` and `""` leave the
/// profile's mode.
pub(super) fn stream_mode(value: Json<'_>) -> Result<Option<String>, HandoffError> {
    const KEY: &str = "stream_mode";
    match value {
        Json::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [one] => non_empty(KEY, read(one)?),
            more => Err(bad(format!(
                "{KEY} must be one mode (a string or an array of one string), not {} modes",
                more.len()
            ))),
        },
        other => non_empty(KEY, other),
    }
}

/// One entry of `images`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineImage {
    /// Base64 as given; checked by the attachments code (SPEC §4.5).
    pub base64: String,
    /// `None` when absent, `null` or `""` (then `image/jpeg`).
    pub mime_type: Option<String>,
}

/// `images`: an array of `{"base64":string,"mime_type":string}`.
pub(super) fn images(value: Json<'_>) -> Result<Vec<InlineImage>, HandoffError> {
    let Json::Array(items) = value else {
        return Err(bad(format!(
            "images must be an array of objects, not {}",
            value.kind()
        )));
    };
    let mut images = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = format!("images[{i}]");
        let members = object(&key, read(item)?)?;
        let base64 = match last(&members, "base64")? {
            Some(value) => text(&format!("{key}.base64"), value)?,
            None => return Err(bad(format!("{key}.base64 must be a string"))),
        };
        let mime_type = match last(&members, "mime_type")? {
            Some(value) => non_empty(&format!("{key}.mime_type"), value)?,
            None => None,
        };
        images.push(InlineImage { base64, mime_type });
    }
    Ok(images)
}

/// A JSON number's text as an `i64` when it has no fraction and fits: `42`, `42.0`, `4.2e1`,
/// `-0.0`, `1e18`. Worked out on the digits, never through an `f64`, which would round
/// `9007199254740993.0` to a neighbour.
fn integral(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent_value(exponent)?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    if whole.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let Some(first) = digits.iter().position(|&d| d != b'0') else {
        return Some(0);
    };
    let last = digits.iter().rposition(|&d| d != b'0')?;
    // The decimal point sits after `point` digits; every non-zero digit must come before it.
    let point = i64::try_from(whole.len()).ok()?.saturating_add(exponent);
    let first = i64::try_from(first).ok()?;
    if i64::try_from(last).ok()? >= point || point - first > 19 {
        return None;
    }
    let mut magnitude: i128 = 0;
    for i in first..point {
        let digit = usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .map_or(0, |d| d - b'0');
        magnitude = magnitude * 10 + i128::from(digit);
    }
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// An exponent's value, clamped far beyond any that could leave an `i64` (a 128 KiB payload
/// has fewer digits than the clamp).
fn exponent_value(text: &str) -> Option<i64> {
    const CLAMP: i64 = 1 << 40;
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = digits
        .bytes()
        .fold(0i64, |acc, b| (acc * 10 + i64::from(b - b'0')).min(CLAMP));
    Some(if negative { -value } else { value })
}

/// A decimal string, `-?[0-9]+`, within range. No sign `+`, no spaces: PHP's integer-to-string
/// never writes them.
fn decimal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numbers() {
        for (text, want) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("-0.0", Some(0)),
            ("0e999999999999999999999", Some(0)),
            ("42", Some(42)),
            ("42.0", Some(42)),
            ("42.000", Some(42)),
            ("4.2e1", Some(42)),
            ("4.2E+1", Some(42)),
            ("420e-1", Some(42)),
            ("0.42e2", Some(42)),
            ("-7", Some(-7)),
            ("1e18", Some(1_000_000_000_000_000_000)),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775807.0", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("-9.223372036854775808e18", Some(i64::MIN)),
            ("9007199254740993.0", Some(9_007_199_254_740_993)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("1e19", None),
            ("1e999999999999999999999", None),
            ("4.5", None),
            ("42.01", None),
            ("4.25e1", None),
            ("1e-1", None),
            ("1e-999999999999999999", None),
            ("0.5", None),
        ] {
            assert_eq!(integral(text), want, "{text}");
        }
    }

    #[test]
    fn decimal_strings() {
        for (text, want) in [
            ("42", Some(42)),
            ("-42", Some(-42)),
            ("007", Some(7)),
            ("-0", Some(0)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("", None),
            ("-", None),
            ("+42", None),
            (" 42", None),
            ("42 ", None),
            ("4.2", None),
            ("42.0", None),
            ("1e3", None),
            ("abc", None),
            ("٤٢", None),
        ] {
            assert_eq!(decimal(text), want, "{text:?}");
        }
    }
}
