//! `messages`: the conversation, each message's content a string or an OpenAI content-parts
//! array (`[{"type":"text","text":…},{"type":"image_url","image_url":{"url":…}}]`).
//!
//! A parts array is kept as the client wrote it: openai sends it upstream as given, langgraph
//! as the message's content list. Only its shape is checked (objects with a string `type`, a
//! string `text` in text parts), so that a malformed one is a 400 here rather than a 502 later.

use super::fields::{bad, last, last_text, object, read, text};
use super::json::{Json, RawJson};
use super::HandoffError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `""` when absent or `null`.
    pub role: String,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `""` when absent or `null`.
    Text(String),
    Parts(ContentParts),
}

impl Default for Content {
    fn default() -> Self {
        Content::Text(String::new())
    }
}

impl Content {
    /// The words of the message: the string, or the text parts joined without a separator.
    pub fn text(&self) -> &str {
        match self {
            Content::Text(text) => text,
            Content::Parts(parts) => parts.text(),
        }
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Content::Text(text.to_string())
    }
}

/// An OpenAI content-parts array, exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentParts {
    raw: RawJson,
    /// The text parts' texts, joined: what the mock backend shows.
    text: String,
}

impl ContentParts {
    /// Checks that `json` is a content-parts array; `key` names it in the error.
    pub fn parse(key: &str, json: &str) -> Result<ContentParts, HandoffError> {
        let Json::Array(items) = read(json)? else {
            return Err(bad(format!(
                "{key} must be a string or an array of content parts"
            )));
        };
        let mut joined = String::new();
        for (i, item) in items.iter().enumerate() {
            let part = format!("{key}[{i}]");
            let members = object(&part, read(item)?)?;
            let kind = match last(&members, "type")? {
                Some(kind) => text(&format!("{part}.type"), kind)?,
                None => return Err(bad(format!("{part}.type must be a string"))),
            };
            if kind == "text" {
                match last(&members, "text")? {
                    Some(value) => joined.push_str(&text(&format!("{part}.text"), value)?),
                    None => return Err(bad(format!("{part}.text must be a string"))),
                }
            }
        }
        Ok(ContentParts {
            raw: RawJson::parse(json).map_err(|_| bad("not JSON (malformed value)".into()))?,
            text: joined,
        })
    }

    /// The array's JSON text as the client wrote it.
    pub fn json(&self) -> &str {
        self.raw.get()
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `messages`: an array of `{role, content}` objects (`[]` counts as an empty object).
pub(super) fn messages(value: Json<'_>) -> Result<Vec<ChatMessage>, HandoffError> {
    let Json::Array(items) = value else {
        return Err(bad(format!(
            "messages must be an array, not {}",
            value.kind()
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| message(i, item))
        .collect()
}

fn message(i: usize, item: &str) -> Result<ChatMessage, HandoffError> {
    let key = format!("messages[{i}]");
    let members = object(&key, read(item)?)?;
    let role = match last(&members, "role")? {
        Some(role) => text(&format!("{key}.role"), role)?,
        None => String::new(),
    };
    let content_key = format!("{key}.content");
    let content = match last_text(&members, "content") {
        None => Content::default(),
        Some(json) => match read(json)? {
            Json::Null => Content::default(),
            Json::String(text) => Content::Text(text),
            Json::Array(_) => Content::Parts(ContentParts::parse(&content_key, json)?),
            other => {
                return Err(bad(format!(
                    "{content_key} must be a string or an array of content parts, not {}",
                    other.kind()
                )))
            }
        },
    };
    Ok(ChatMessage { role, content })
}
