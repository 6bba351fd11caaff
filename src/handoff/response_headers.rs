//! A handoff's `response_headers` turned into the custom headers of the response (SPEC §2):
//! members in document order; strings trimmed of SP and HTAB, numbers and booleans as written;
//! bad names, blocked names and bad values dropped; a later name replaces an earlier one
//! (ASCII case-insensitively) at its own position; at most 32 headers and 8192 bytes of lines.
//! Nothing here ever refuses the handoff: what cannot be used is dropped and reported for one
//! warning line.

use std::collections::HashMap;

use super::json::{self, Json, RawJson};
use crate::http::{line_len, CustomHeaders, HeaderRefusal};

/// At most this many custom headers (rule 6).
pub const MAX_HEADERS: usize = 32;
/// At most this many bytes of custom header lines, `name: value\r\n` each (rule 6).
pub const MAX_HEADER_BYTES: usize = 8192;
/// The warning lists at most this many drops (more than [`MAX_HEADERS`], so that a list cut by
/// the count limit is shown whole), and each name up to this many bytes.
const LOGGED_DROPS: usize = 40;
const LOGGED_NAME_BYTES: usize = 64;

/// Why a member did not become a header; the words of the warning line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// `null`, an array or an object.
    BadType,
    /// Not an HTTP token.
    BadName,
    /// A name the daemon's heads set, or one about the body's framing.
    Blocked,
    /// A control character other than HTAB, or DEL.
    BadValue,
    /// A later member of the same name replaced it.
    Duplicate,
    /// Over 32 headers or 8192 bytes of lines.
    Limit,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BadType => "bad_type",
            DropReason::BadName => "bad_name",
            DropReason::Blocked => "blocked",
            DropReason::BadValue => "bad_value",
            DropReason::Duplicate => "duplicate",
            DropReason::Limit => "limit",
        }
    }
}

impl From<HeaderRefusal> for DropReason {
    fn from(refusal: HeaderRefusal) -> Self {
        match refusal {
            HeaderRefusal::BadName => DropReason::BadName,
            HeaderRefusal::Blocked => DropReason::Blocked,
            HeaderRefusal::BadValue => DropReason::BadValue,
        }
    }
}

/// What became of a handoff's `response_headers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    /// For the success head and for the error responses that carry custom headers.
    pub headers: CustomHeaders,
    /// Members left out, in document order, with why.
    pub dropped: Vec<(String, DropReason)>,
    /// What the value was when it was not an object (`null` and `[]` are not reported): a string
    /// or a number, say. There are no headers then.
    pub not_an_object: Option<&'static str>,
}

impl ResponseHeaders {
    /// The `dropped` field of the one warning line: `blocked:Content-Type, bad_name:X Bad`.
    /// Never a value; long names and long lists are cut.
    pub fn dropped_field(&self) -> Option<String> {
        if self.dropped.is_empty() {
            return None;
        }
        let mut field = self
            .dropped
            .iter()
            .take(LOGGED_DROPS)
            .map(|(name, reason)| format!("{}:{}", reason.as_str(), shown(name)))
            .collect::<Vec<_>>()
            .join(", ");
        if self.dropped.len() > LOGGED_DROPS {
            field.push_str(&format!(", and {} more", self.dropped.len() - LOGGED_DROPS));
        }
        Some(field)
    }

    /// The warning for a value that is not an object.
    pub fn not_an_object_warning(&self) -> Option<String> {
        self.not_an_object.map(|kind| {
            format!("response_headers must be an object, not {kind}; no custom headers are sent")
        })
    }
}

/// A name cut to a loggable length on a character boundary.
fn shown(name: &str) -> String {
    if name.len() <= LOGGED_NAME_BYTES {
        return name.to_string();
    }
    let mut end = LOGGED_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}

/// The custom headers a handoff's `response_headers` value gives (`None`: absent or `null`).
pub fn filter_response_headers(value: Option<&RawJson>) -> ResponseHeaders {
    let Some(value) = value else {
        return ResponseHeaders::default();
    };
    let members = match json::read(value.get()) {
        Ok(Json::Object(members)) => members,
        Ok(Json::Null) => Vec::new(),
        Ok(Json::Array(items)) if items.is_empty() => Vec::new(),
        Ok(other) => return not_an_object(other.kind()),
        Err(_) => return not_an_object("malformed JSON"),
    };

    // Each member checked on its own; a valid one replaces an earlier valid one of its name.
    let mut dropped: Vec<(usize, String, DropReason)> = Vec::new();
    let mut kept: Vec<Option<(usize, String, String)>> = Vec::with_capacity(members.len());
    let mut by_name: HashMap<String, usize> = HashMap::with_capacity(members.len());
    for (position, (name, text)) in members.into_iter().enumerate() {
        let value = match json::read(text) {
            Ok(Json::String(s)) => s.trim_matches([' ', '\t']).to_string(),
            Ok(Json::Number(n)) => n.to_string(),
            Ok(Json::Bool(b)) => b.to_string(),
            _ => {
                dropped.push((position, name, DropReason::BadType));
                continue;
            }
        };
        if let Err(refusal) = CustomHeaders::check(&name, &value) {
            dropped.push((position, name, refusal.into()));
            continue;
        }
        if let Some(earlier) = by_name.insert(name.to_ascii_lowercase(), kept.len()) {
            if let Some((at, earlier_name, _)) = kept.get_mut(earlier).and_then(Option::take) {
                dropped.push((at, earlier_name, DropReason::Duplicate));
            }
        }
        kept.push(Some((position, name, value)));
    }

    // The limits, in order: the first header over either and every one after it are dropped.
    let mut headers = CustomHeaders::default();
    let mut bytes = 0;
    let mut full = false;
    for (position, name, value) in kept.into_iter().flatten() {
        let line = line_len(&name, &value);
        full = full || headers.len() == MAX_HEADERS || bytes + line > MAX_HEADER_BYTES;
        if full {
            dropped.push((position, name, DropReason::Limit));
            continue;
        }
        match headers.push(&name, &value) {
            Ok(()) => bytes += line,
            Err(refusal) => dropped.push((position, name, refusal.into())),
        }
    }

    dropped.sort_by_key(|(position, _, _)| *position);
    ResponseHeaders {
        headers,
        dropped: dropped
            .into_iter()
            .map(|(_, name, reason)| (name, reason))
            .collect(),
        not_an_object: None,
    }
}

fn not_an_object(kind: &'static str) -> ResponseHeaders {
    ResponseHeaders {
        not_an_object: Some(kind),
        ..ResponseHeaders::default()
    }
}

#[cfg(test)]
#[path = "response_headers_tests.rs"]
mod tests;
