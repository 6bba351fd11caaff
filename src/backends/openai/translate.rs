//! Streamed chat-completion chunks to client content events.
//!
//! | event data                                   | client gets                | flow      |
//! |----------------------------------------------|----------------------------|-----------|
//! | `[DONE]`                                     | nothing                    | Complete  |
//! | `choices[0].delta.content` non-empty string  | one content event          | Continue  |
//! | `choices[0].finish_reason` non-null          | (its content, if any)      | Complete  |
//! | role-only, usage (`choices: []`), tool calls | nothing                    | Continue  |
//! | an object with a non-null `error`            | `event: error` (by relay)  | Fail      |
//! | `event: error`, whatever its data            | `event: error` (by relay)  | Fail      |
//! | not JSON, or not an object                   | nothing                    | Skip      |
//! | a comment                                    | nothing                    | Continue  |
//!
//! Content is decoded by serde_json (surrogate-pair escapes such as `\uD83D\uDE00` become the
//! character) and re-escaped by the sink, so the client decodes the same text. A lone surrogate
//! escape becomes U+FFFD instead of costing the whole chunk (see `upstream::json`).

use serde_json::Value;

use crate::backends::upstream::{excerpt, json, End, Failure, Flow, Translator};
use crate::sse::{EventSink, SseItem};

/// Stateless: whether completion was signalled is the relay's to remember.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiTranslator;

impl Translator for OpenAiTranslator {
    fn on_item(&mut self, item: &SseItem<'_>, sink: &mut EventSink<'_>) -> Flow {
        let SseItem::Event { name, data } = *item else {
            return Flow::Continue;
        };
        if name == "error" {
            return Flow::Fail(Failure::upstream_error(excerpt(data.as_bytes())));
        }
        if data.trim() == "[DONE]" {
            return Flow::Complete;
        }
        let chunk = match json::parse(data) {
            Ok(Value::Object(chunk)) => chunk,
            Ok(_) => {
                return Flow::Skip(format!(
                    "upstream event is not a JSON object: {}",
                    excerpt(data.as_bytes())
                ))
            }
            Err(error) => {
                return Flow::Skip(format!(
                    "upstream event is not valid JSON ({error}): {}",
                    excerpt(data.as_bytes())
                ))
            }
        };
        if chunk.get("error").is_some_and(|error| !error.is_null()) {
            return Flow::Fail(Failure::upstream_error(excerpt(data.as_bytes())));
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| choices.first())
        else {
            return Flow::Continue;
        };
        let content = choice
            .get("delta")
            .and_then(|delta| delta.get("content"))
            .and_then(Value::as_str);
        if let Some(text) = content.filter(|text| !text.is_empty()) {
            sink.content(text);
        }
        // The last chunk may carry both content and the finish reason: content first.
        match choice.get("finish_reason") {
            Some(reason) if !reason.is_null() => Flow::Complete,
            _ => Flow::Continue,
        }
    }

    /// OpenAI always signals the end (`finish_reason`, `[DONE]`); a silent end is a cut answer.
    fn on_clean_end(&mut self) -> End {
        End::Incomplete
    }
}
