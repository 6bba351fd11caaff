//! The JSON object Apache's module forwards from PHP's `X-Handoff-Data` header (SPEC §1.3).
//!
//! Written for PHP's `json_encode`: `null` means absent for every key, `[]` means `{}` wherever
//! an object is expected, `user_id` and `max_tokens` may be integral floats (`42.0`) or decimal
//! strings (`"42"`). A key given twice: the last wins, except that every file any occurrence of
//! `attachments`, `image_paths` or `image_path` names is listed in [`StagedFiles`], so that all of
//! them are deleted (SPEC §4.5). A value that cannot be converted without loss is a bad handoff
//! (400, `bad_json`); `response_headers` never is (see [`super::filter_response_headers`]).

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::content::{messages, ChatMessage};
use super::fields::{
    bad, images, integer, last, last_text, non_empty, number, object, read, stream_mode,
    string_map, strings, text, InlineImage,
};
use super::json::{Json, RawJson};
use super::HandoffError;

/// What a stream needs to know about its request. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoffData {
    /// `""` when absent.
    pub prompt: String,
    pub messages: Vec<ChatMessage>,
    /// 0 when absent.
    pub user_id: i64,
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    pub test_pattern: Option<String>,
    /// `None` for `""` too.
    pub thread_id: Option<String>,
    /// `None` for `""` too.
    pub assistant_id: Option<String>,
    /// Extra fields for a LangGraph run's `input`, in document order, each value as written (a
    /// name given twice keeps its last value, at that value's position).
    pub langgraph_input: Vec<(String, RawJson)>,
    /// The `response_headers` value as written, whatever its type (`None` when absent or
    /// `null`); [`super::filter_response_headers`] makes headers of it.
    pub response_headers: Option<RawJson>,
    /// Another allowed backend for this request; `None` for `""` (the provider).
    pub backend: Option<String>,
    /// A LangGraph profile; `None` for `""` (the default profile).
    pub profile: Option<String>,
    /// A LangGraph stream mode overriding the profile's; `None` for `""` and `[]`.
    pub stream_mode: Option<String>,
    /// Ref → file name relative to `data_dir`, the last occurrence's (names unchecked: that is
    /// the attachments code's job). Iterates in bytewise order of the ref.
    pub attachments: BTreeMap<String, String>,
    /// Ref → MIME type override.
    pub attachment_types: BTreeMap<String, String>,
    pub images: Vec<InlineImage>,
    /// `None` for `""` too.
    pub image_base64: Option<String>,
    /// `None` for `""` too.
    pub image_mime_type: Option<String>,
    /// `None` for `""` too.
    pub image_path: Option<String>,
    pub image_paths: Vec<String>,
    /// An SSE id to resume (SPEC §2.1); `None` for `""`.
    pub resume: Option<String>,
    /// The keys among `lg`, `langgraph_url`, `langgraph_api_key` the handoff gave (not `null`),
    /// in that order. They are ignored: the connection logs one warning naming them.
    pub ignored_keys: Vec<&'static str>,
}

/// Keys that once let a handoff send the LangGraph API key to any URL (the newest Go daemon).
const IGNORED_KEYS: [&str; 3] = ["lg", "langgraph_url", "langgraph_api_key"];

impl HandoffData {
    /// The one warning to log when the handoff gave keys that are ignored; never their values.
    pub fn ignored_keys_warning(&self) -> Option<String> {
        if self.ignored_keys.is_empty() {
            return None;
        }
        Some(format!(
            "handoff keys ignored: {}; the upstream URL and key come only from the configuration",
            self.ignored_keys.join(", ")
        ))
    }
}

/// Every staged file a handoff's data names, however the rest of it turns out: each must be
/// deleted before the connection ends (SPEC §4.5). Duplicates and superseded occurrences are
/// kept; names are as given, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedFiles {
    /// The string values of every `attachments` object, every occurrence, in document order.
    pub attachments: Vec<String>,
    /// The strings of every `image_paths` array and every non-empty `image_path`, in document
    /// order.
    pub image_paths: Vec<String>,
}

impl StagedFiles {
    pub fn is_empty(&self) -> bool {
        self.attachments.is_empty() && self.image_paths.is_empty()
    }
}

/// A parsed payload: the data or why it is refused, and in both cases the files it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHandoff {
    pub data: Result<HandoffData, HandoffError>,
    /// Empty when the payload is not a JSON object: then nothing can be known to be named.
    pub staged: StagedFiles,
}

/// Parses a handoff payload. Leading and trailing NUL bytes are stripped (the module sends a
/// single `\0` when the request had no handoff header); nothing left means all defaults, as do
/// `null` (Go's decoder) and `[]` (PHP's empty array).
pub fn parse_handoff(payload: &[u8]) -> ParsedHandoff {
    let start = payload
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(payload.len());
    let end = payload
        .iter()
        .rposition(|&b| b != 0)
        .map_or(start, |i| i + 1);
    let trimmed = &payload[start..end];
    let refused = |error: HandoffError| ParsedHandoff {
        data: Err(error),
        staged: StagedFiles::default(),
    };
    if trimmed.is_empty() {
        return defaults();
    }
    let raw: &RawValue = match serde_json::from_slice(trimmed) {
        Ok(raw) => raw,
        Err(e) => return refused(bad(format!("not JSON ({e})"))),
    };
    let members = match read(raw.get()) {
        Ok(Json::Object(members)) => members,
        Ok(Json::Null) => return defaults(),
        Ok(Json::Array(items)) if items.is_empty() => return defaults(),
        Ok(other) => return refused(bad(format!("expected a JSON object, not {}", other.kind()))),
        Err(error) => return refused(error),
    };
    ParsedHandoff {
        staged: staged_files(&members),
        data: convert(&members),
    }
}

/// [`parse_handoff`] without the staged files.
pub fn parse_handoff_data(payload: &[u8]) -> Result<HandoffData, HandoffError> {
    parse_handoff(payload).data
}

fn defaults() -> ParsedHandoff {
    ParsedHandoff {
        data: Ok(HandoffData::default()),
        staged: StagedFiles::default(),
    }
}

fn convert(members: &[(String, &str)]) -> Result<HandoffData, HandoffError> {
    let get = |key: &str| last(members, key);
    let mut data = HandoffData::default();
    if let Some(v) = get("prompt")? {
        data.prompt = text("prompt", v)?;
    }
    if let Some(v) = get("messages")? {
        data.messages = messages(v)?;
    }
    if let Some(v) = get("user_id")? {
        data.user_id = integer("user_id", v)?;
    }
    if let Some(v) = get("model")? {
        data.model = Some(text("model", v)?);
    }
    if let Some(v) = get("max_tokens")? {
        data.max_tokens = Some(integer("max_tokens", v)?);
    }
    if let Some(v) = get("timestamp")? {
        number("timestamp", v)?;
    }
    if let Some(v) = get("test_pattern")? {
        data.test_pattern = Some(text("test_pattern", v)?);
    }
    if let Some(v) = get("thread_id")? {
        data.thread_id = non_empty("thread_id", v)?;
    }
    if let Some(v) = get("assistant_id")? {
        data.assistant_id = non_empty("assistant_id", v)?;
    }
    if let Some(v) = get("langgraph_input")? {
        data.langgraph_input = raw_members("langgraph_input", v)?;
    }
    if get("response_headers")?.is_some() {
        // Any value: the filter decides what it makes of it and never refuses the handoff.
        data.response_headers = last_text(members, "response_headers")
            .map(raw_json)
            .transpose()?;
    }
    if let Some(v) = get("backend")? {
        data.backend = non_empty("backend", v)?;
    }
    if let Some(v) = get("profile")? {
        data.profile = non_empty("profile", v)?;
    }
    if let Some(v) = get("stream_mode")? {
        data.stream_mode = stream_mode(v)?;
    }
    if let Some(v) = get("attachments")? {
        data.attachments = string_map("attachments", v)?;
    }
    if let Some(v) = get("attachment_types")? {
        data.attachment_types = string_map("attachment_types", v)?;
    }
    if let Some(v) = get("images")? {
        data.images = images(v)?;
    }
    if let Some(v) = get("image_base64")? {
        data.image_base64 = non_empty("image_base64", v)?;
    }
    if let Some(v) = get("image_mime_type")? {
        data.image_mime_type = non_empty("image_mime_type", v)?;
    }
    if let Some(v) = get("image_path")? {
        data.image_path = non_empty("image_path", v)?;
    }
    if let Some(v) = get("image_paths")? {
        data.image_paths = strings("image_paths", v)?;
    }
    if let Some(v) = get("resume")? {
        data.resume = non_empty("resume", v)?;
    }
    for key in IGNORED_KEYS {
        if get(key)?.is_some() {
            data.ignored_keys.push(key);
        }
    }
    Ok(data)
}

/// An object's members with their values as written; a name given twice keeps its last value.
fn raw_members(key: &str, value: Json<'_>) -> Result<Vec<(String, RawJson)>, HandoffError> {
    let members = object(key, value)?;
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    let mut out = Vec::with_capacity(members.len());
    for (name, text) in members.iter().rev() {
        if seen.insert(name.as_str()) {
            out.push((name.clone(), raw_json(text)?));
        }
    }
    out.reverse();
    Ok(out)
}

fn raw_json(text: &str) -> Result<RawJson, HandoffError> {
    RawJson::parse(text).map_err(|_| bad("not JSON (malformed value)".to_string()))
}

/// Every file name any occurrence of the file keys gives, read leniently: whatever else is
/// wrong with the data, a name that can be read is a file to delete.
fn staged_files(members: &[(String, &str)]) -> StagedFiles {
    let mut staged = StagedFiles::default();
    let string = |text: &str| match read(text) {
        Ok(Json::String(s)) => Some(s),
        _ => None,
    };
    for (key, text) in members {
        if !matches!(key.as_str(), "attachments" | "image_paths" | "image_path") {
            continue;
        }
        match (key.as_str(), read(text)) {
            ("attachments", Ok(Json::Object(files))) => staged
                .attachments
                .extend(files.iter().filter_map(|(_, name)| string(name))),
            ("image_paths", Ok(Json::Array(paths))) => staged
                .image_paths
                .extend(paths.iter().filter_map(|path| string(path))),
            ("image_path", Ok(Json::String(path))) if !path.is_empty() => {
                staged.image_paths.push(path);
            }
            _ => {}
        }
    }
    staged
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
