//! Streamed LangGraph run events to client content events.
//!
//! | event (stream mode)                           | client gets                          | flow      |
//! |-----------------------------------------------|--------------------------------------|-----------|
//! | `messages` (messages-tuple): `[message, meta]`| the AI message's text, if any        | Continue  |
//! | `messages/partial` (messages): `[message, …]` | what is new in each AI message's text| Continue  |
//! | `error`, whatever its data                    | `event: error` (by the relay)        | Fail      |
//! | `end` (older servers)                         | nothing                              | Complete  |
//! | a comment (`: heartbeat`)                     | `: keep-alive`                       | Continue  |
//! | `metadata`, `values`, `updates`, `messages/metadata`, `messages/complete`, others | nothing | Continue |
//! | a content event whose data is not JSON of the expected shape | nothing               | Skip      |
//! | the body ends cleanly (what current servers do) | `[DONE]` (by the relay)            | (on_clean_end: Complete) |
//!
//! AI messages are those of type `AIMessageChunk` (a token stream) or `ai` (a node returning
//! whole messages); human, system and tool messages echoed by a graph are not the answer. A
//! message's text is its `content` string, or the `text` of its text blocks when `content` is a
//! list (Anthropic-style models). A lone surrogate escape in it becomes U+FFFD instead of
//! costing the whole event (see `upstream::json`).
//!
//! ## `messages/partial`
//! Each event repeats a message's whole text so far; the client must get only what is new. The
//! text last seen is kept per message id (for the last [`TRACKED_MESSAGES`] ids). When the new
//! text extends the old one, the suffix is sent. When it does not (a server that rewrote the
//! text), the client cannot be asked to take back what it has: the part after the longest
//! common prefix is sent, so nothing is sent twice and nothing new is lost. A shorter text that
//! is a prefix of the old one sends nothing.

use serde_json::Value;

use crate::backends::upstream::{excerpt, json, End, Failure, Flow, Translator};
use crate::sse::{EventSink, SseItem};

/// Messages whose partial text is remembered at once. A run streams one message at a time;
/// a few more cover interleaved nodes, and the bound keeps a strange stream from growing this.
pub const TRACKED_MESSAGES: usize = 8;

/// `backend.langgraph.stream_mode`, as far as the translator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// `messages-tuple`: `messages` events with `[message, metadata]`.
    MessagesTuple,
    /// `messages`: `messages/partial` events with cumulative text.
    Messages,
    /// `values`, `updates`: state snapshots, no message text to relay.
    Other,
}

impl StreamMode {
    pub fn parse(mode: &str) -> StreamMode {
        match mode {
            "messages-tuple" => StreamMode::MessagesTuple,
            "messages" => StreamMode::Messages,
            _ => StreamMode::Other,
        }
    }
}

pub struct LangGraphTranslator {
    mode: StreamMode,
    /// `(message id, text sent so far)`, oldest first.
    partial: Vec<(String, String)>,
}

impl LangGraphTranslator {
    pub fn new(mode: StreamMode) -> LangGraphTranslator {
        LangGraphTranslator {
            mode,
            partial: Vec::new(),
        }
    }

    /// `[message, metadata]`: the message's text, when it is the AI's.
    fn tuple(&mut self, data: &str, sink: &mut EventSink<'_>) -> Flow {
        let items = match parse_array(data) {
            Ok(items) => items,
            Err(skip) => return skip,
        };
        match items.first() {
            Some(message @ Value::Object(_)) => {
                if is_ai(message) {
                    send(sink, &text_of(message));
                }
                Flow::Continue
            }
            _ => Flow::Skip(format!(
                "upstream messages event is not a [message, metadata] pair: {}",
                excerpt(data.as_bytes())
            )),
        }
    }

    /// `[message, …]` with each message's whole text so far: send what is new.
    fn partial(&mut self, data: &str, sink: &mut EventSink<'_>) -> Flow {
        let items = match parse_array(data) {
            Ok(items) => items,
            Err(skip) => return skip,
        };
        for message in items.iter().filter(|m| is_ai(m)) {
            let id = message.get("id").and_then(Value::as_str).unwrap_or("");
            let text = text_of(message);
            let old = self.remember(id, &text);
            send(sink, &text[common_prefix(&old, &text)..]);
        }
        Flow::Continue
    }

    /// Records `text` as the latest for `id`; returns the text recorded before (empty if none).
    fn remember(&mut self, id: &str, text: &str) -> String {
        if let Some(entry) = self.partial.iter_mut().find(|(known, _)| known == id) {
            return std::mem::replace(&mut entry.1, text.to_string());
        }
        if self.partial.len() == TRACKED_MESSAGES {
            self.partial.remove(0);
        }
        self.partial.push((id.to_string(), text.to_string()));
        String::new()
    }
}

impl Translator for LangGraphTranslator {
    fn on_item(&mut self, item: &SseItem<'_>, sink: &mut EventSink<'_>) -> Flow {
        let (name, data) = match *item {
            // Heartbeats during a long silent step: keep the client's proxies patient too.
            SseItem::Comment(_) => {
                sink.keep_alive();
                return Flow::Continue;
            }
            SseItem::Event { name, data } => (name, data),
        };
        match (name, self.mode) {
            ("error", _) => Flow::Fail(Failure::upstream_error(excerpt(data.as_bytes()))),
            ("end", _) => Flow::Complete,
            ("messages", StreamMode::MessagesTuple) => self.tuple(data, sink),
            ("messages/partial", StreamMode::Messages) => self.partial(data, sink),
            _ => Flow::Continue,
        }
    }

    /// Current servers send no end event: a body that ends cleanly is the whole answer.
    fn on_clean_end(&mut self) -> End {
        End::Complete
    }
}

fn parse_array(data: &str) -> Result<Vec<Value>, Flow> {
    match json::parse(data) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(Flow::Skip(format!(
            "upstream messages event is not a JSON array: {}",
            excerpt(data.as_bytes())
        ))),
        Err(error) => Err(Flow::Skip(format!(
            "upstream messages event is not valid JSON ({error}): {}",
            excerpt(data.as_bytes())
        ))),
    }
}

fn is_ai(message: &Value) -> bool {
    matches!(
        message.get("type").and_then(Value::as_str),
        Some("AIMessageChunk" | "ai")
    )
}

/// A message's text: its `content` string, or its text blocks joined.
fn text_of(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| match block {
                Value::String(text) => Some(text.as_str()),
                Value::Object(_) if block.get("type").and_then(Value::as_str) == Some("text") => {
                    block.get("text").and_then(Value::as_str)
                }
                _ => None,
            })
            .collect(),
        _ => String::new(),
    }
}

fn send(sink: &mut EventSink<'_>, text: &str) {
    if !text.is_empty() {
        sink.content(text);
    }
}

/// The length in bytes of the longest common prefix of `a` and `b`, on a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes_end_on_character_boundaries() {
        assert_eq!(common_prefix("Hello", "Hello there"), 5);
        assert_eq!(common_prefix("", "abc"), 0);
        assert_eq!(common_prefix("abc", "ab"), 2);
        // 'é' and 'è' share their first UTF-8 byte; the prefix must not split it.
        assert_eq!(common_prefix("caé", "caè"), 2);
    }

    #[test]
    fn tracking_is_bounded() {
        let mut translator = LangGraphTranslator::new(StreamMode::Messages);
        let mut out = Vec::new();
        for i in 0..100 {
            let data = format!(r#"[{{"type":"ai","id":"id-{i}","content":"same"}}]"#);
            let item = SseItem::Event {
                name: "messages/partial",
                data: &data,
            };
            translator.on_item(&item, &mut EventSink::new(&mut out));
        }
        assert_eq!(translator.partial.len(), TRACKED_MESSAGES);
        // The newest ids are the ones kept.
        assert_eq!(translator.partial[TRACKED_MESSAGES - 1].0, "id-99");
    }
}
