//! `handoff::filter_response_headers` on a handoff's `response_headers` value (the input is the
//! value's JSON text), and the response heads written with what it keeps.
//!
//! - What is kept and what is dropped, with why, is exactly what the rules of SPEC §2 give,
//!   worked out here on the members found by a reader of our own: in document order, strings
//!   trimmed of SP and HTAB, numbers as written, booleans; `bad_type`, `bad_name`, `blocked`,
//!   `bad_value`; a later valid member of the same name (ASCII case-insensitively) replaces an
//!   earlier one; the first over 32 headers or 8192 bytes of lines, and every one after, `limit`.
//! - A value that is not an object gives no headers (and a warning unless `null` or `[]`); so
//!   does an object with a name that is not text (an escaped lone surrogate), and a member
//!   whose string value is not text is `bad_type`.
//! - The success head and an error response written with the headers parse back with every
//!   header in order; an error response's own `Retry-After` replaces a custom one.
//! - The warning's `dropped` field is bounded and never holds a value.

use streaming_daemon::handoff::{filter_response_headers, DropReason, RawJson, ResponseHeaders};
use streaming_daemon::http::{error_response_with_headers, write_success_head, ErrorStatus};

use super::wire::complete_response;

const MAX_HEADERS: usize = 32;
const MAX_HEADER_BYTES: usize = 8192;
/// Names the daemon's heads set themselves, or that are about the body's framing.
const BLOCKED: [&str; 7] = [
    "content-type",
    "cache-control",
    "connection",
    "x-accel-buffering",
    "transfer-encoding",
    "content-length",
    "content-encoding",
];
/// The success head's own lines.
const SSE_HEAD_LINES: usize = 4;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = RawJson::parse(text) else {
        return;
    };
    let filtered = filter_response_headers(Some(&value));

    match members(value.get()) {
        Some(members) => {
            assert_eq!(filtered.not_an_object, None);
            let (kept, dropped) = expected(&members);
            let got: Vec<(&str, &str)> = filtered.headers.iter().collect();
            let want: Vec<(&str, &str)> = kept
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            assert_eq!(got, want, "kept headers");
            let got: Vec<(&str, DropReason)> = filtered
                .dropped
                .iter()
                .map(|(name, reason)| (name.as_str(), *reason))
                .collect();
            let want: Vec<(&str, DropReason)> = dropped
                .iter()
                .map(|(name, reason)| (name.as_str(), *reason))
                .collect();
            assert_eq!(got, want, "dropped members");
        }
        None => {
            assert!(filtered.headers.is_empty() && filtered.dropped.is_empty());
            let trimmed = value.get().trim_matches([' ', '\t', '\n', '\r']);
            // `null` and `[]` say nothing; anything else, an object whose names cannot be read
            // included, gets a warning.
            let silent = trimmed == "null" || is_empty_array(trimmed);
            assert_eq!(filtered.not_an_object.is_none(), silent, "{trimmed:?}");
        }
    }

    assert!(filtered.headers.len() <= MAX_HEADERS);
    assert!(filtered.headers.line_bytes() <= MAX_HEADER_BYTES);
    heads_parse_back(&filtered);
    if let Some(field) = filtered.dropped_field() {
        // 40 entries of a reason, a name cut to 64 bytes and "...", then "and N more".
        assert!(field.len() <= 40 * (9 + 1 + 64 + 3 + 2) + 32, "{field}");
    }
    if let Some(warning) = filtered.not_an_object_warning() {
        assert!(warning.len() < 200, "{warning}");
    }
}

/// The top-level members of an object, in document order with repeats, each value as its
/// text: `None` when the value is not an object, or one whose names cannot all be decoded. The
/// text is one value serde_json accepted.
fn members(text: &str) -> Option<Vec<(String, &str)>> {
    let bytes = text.as_bytes();
    let mut i = skip_space(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(bytes, i + 1);
    let mut members = Vec::new();
    if bytes[i] == b'}' {
        return Some(members);
    }
    loop {
        let end = string_end(bytes, i);
        // A name serde_json cannot decode (an escaped lone surrogate: valid JSON, not text)
        // makes the whole value unreadable, as the daemon's reader reads names the same way.
        let name: String = serde_json::from_str(&text[i..end]).ok()?;
        i = skip_space(bytes, end);
        assert_eq!(bytes[i], b':');
        let start = skip_space(bytes, i + 1);
        let end = value_end(bytes, start);
        members.push((name, &text[start..end]));
        i = skip_space(bytes, end);
        match bytes[i] {
            b',' => i = skip_space(bytes, i + 1),
            b'}' => return Some(members),
            other => panic!("{:?} after a member", other as char),
        }
    }
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Just past the string that starts at `i`.
fn string_end(bytes: &[u8], i: usize) -> usize {
    assert_eq!(bytes[i], b'"');
    let mut j = i + 1;
    while bytes[j] != b'"' {
        j += if bytes[j] == b'\\' { 2 } else { 1 };
    }
    j + 1
}

/// Just past the value that starts at `i`.
fn value_end(bytes: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match bytes.get(j) {
            Some(b'"') => {
                j = string_end(bytes, j);
                if depth == 0 {
                    return j;
                }
                continue;
            }
            Some(b'{' | b'[') => depth += 1,
            Some(b'}' | b']') if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') | None if depth == 0 => {
                return j
            }
            _ => {}
        }
        j += 1;
    }
}

fn is_empty_array(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|inside| inside.trim_matches([' ', '\t', '\n', '\r']).is_empty())
}

/// What SPEC §2's rules keep and drop, in document order.
#[allow(clippy::type_complexity)]
fn expected(members: &[(String, &str)]) -> (Vec<(String, String)>, Vec<(String, DropReason)>) {
    // Each member on its own: its header value, or why it has none.
    let judged: Vec<Result<String, DropReason>> = members
        .iter()
        .map(|(name, text)| {
            let value = header_value(text)?;
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(DropReason::BadName);
            }
            if BLOCKED.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(DropReason::Blocked);
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(DropReason::BadValue);
            }
            Ok(value)
        })
        .collect();
    let mut outcome: Vec<Result<String, DropReason>> = Vec::with_capacity(members.len());
    for (index, judgement) in judged.iter().enumerate() {
        let replaced = judgement.is_ok()
            && members[index + 1..]
                .iter()
                .zip(&judged[index + 1..])
                .any(|((later, _), j)| j.is_ok() && later.eq_ignore_ascii_case(&members[index].0));
        outcome.push(match judgement {
            Ok(_) if replaced => Err(DropReason::Duplicate),
            other => other.clone(),
        });
    }
    let mut kept = Vec::new();
    let mut bytes = 0;
    let mut full = false;
    for (index, result) in outcome.iter_mut().enumerate() {
        if let Ok(value) = result {
            let line = members[index].0.len() + value.len() + 4;
            full = full || kept.len() == MAX_HEADERS || bytes + line > MAX_HEADER_BYTES;
            if full {
                *result = Err(DropReason::Limit);
            } else {
                bytes += line;
                kept.push((members[index].0.clone(), value.clone()));
            }
        }
    }
    let dropped = members
        .iter()
        .zip(outcome)
        .filter_map(|((name, _), result)| result.err().map(|reason| (name.clone(), reason)))
        .collect();
    (kept, dropped)
}

/// A member's value as a header value: strings trimmed of SP and HTAB, numbers as written,
/// booleans; anything else is `bad_type`.
fn header_value(text: &str) -> Result<String, DropReason> {
    match text.as_bytes().first() {
        Some(b'"') => {
            // A string with an escaped lone surrogate is valid JSON but not text: no value.
            let decoded: String = serde_json::from_str(text).map_err(|_| DropReason::BadType)?;
            Ok(decoded.trim_matches([' ', '\t']).to_string())
        }
        Some(b'-' | b'0'..=b'9') => Ok(text.to_string()),
        Some(b't' | b'f') => Ok(text.to_string()),
        _ => Err(DropReason::BadType),
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn heads_parse_back(filtered: &ResponseHeaders) {
    let custom: Vec<(&str, &str)> = filtered.headers.iter().collect();

    // The success head has no Content-Length (the stream runs until close): parsed here.
    let mut head = Vec::new();
    write_success_head(&mut head, &filtered.headers);
    let mut lines = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut lines);
    assert_eq!(
        parsed.parse(&head),
        Ok(httparse::Status::Complete(head.len()))
    );
    assert_eq!(parsed.code, Some(200));
    let extra: Vec<(&str, &[u8])> = parsed.headers[SSE_HEAD_LINES..]
        .iter()
        .map(|header| (header.name, header.value))
        .collect();
    let want: Vec<(&str, &[u8])> = custom
        .iter()
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    assert_eq!(extra, want, "the success head's custom headers");

    let bytes =
        error_response_with_headers(ErrorStatus::BadRequest, "bad", Some("1"), &filtered.headers);
    let response = complete_response(&bytes, false);
    assert_eq!(response.status, 400);
    let retry_after: Vec<&(String, Vec<u8>)> = response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .collect();
    assert_eq!(retry_after.len(), 1, "one Retry-After");
    assert_eq!(retry_after[0].1, b"1");
    for (name, value) in custom {
        if !name.eq_ignore_ascii_case("retry-after") {
            let name = name.to_ascii_lowercase();
            assert_eq!(response.header(&name), Some(value.as_bytes()), "{name}");
        }
    }
}
