//! The SSE frames the daemon writes to clients, parsed back.
//!
//! The input is cut at `0xFF` bytes (never UTF-8) into texts, decoded lossily as upstream text
//! is. Each text is written as a content event, an error event or typing events, in turn; a
//! keep-alive and `[DONE]` close the stream. Parsing the whole by the WHATWG rules must give
//! exactly those events back, with the same texts, and every JSON string must be the bytes
//! serde_json would write.

use serde_json::{json, Value};
use streaming_daemon::sse::{done, error_event, push_json_string, EventSink, SseParser};

use super::wire::Item;

/// Typing events written per text: enough to cover escapes, few enough to stay fast.
const TYPED_CHARS: usize = 8;

enum Expected {
    /// An event with this name whose data is this JSON.
    Json {
        name: &'static str,
        value: Value,
    },
    /// An event with this name and data, as text.
    Text {
        name: &'static str,
        data: &'static str,
    },
    Comment(&'static str),
}

pub fn check(data: &[u8]) {
    let mut out = Vec::new();
    let mut expected = Vec::new();
    let mut events = 0;
    for (i, piece) in data.split(|&byte| byte == 0xFF).enumerate() {
        let text = String::from_utf8_lossy(piece);
        same_bytes_as_serde_json(&text);
        match i % 3 {
            0 => {
                let mut sink = EventSink::new(&mut out);
                sink.content(&text);
                events += sink.events();
                expected.push(Expected::Json {
                    name: "message",
                    value: json!({ "content": text }),
                });
            }
            1 => {
                error_event(&mut out, &text);
                expected.push(Expected::Json {
                    name: "error",
                    value: json!({ "error": text }),
                });
            }
            _ => {
                let mut sink = EventSink::new(&mut out);
                for (index, character) in text.char_indices().take(TYPED_CHARS) {
                    sink.typing(character, index);
                    expected.push(Expected::Json {
                        name: "message",
                        value: json!({ "char": character.to_string(), "index": index }),
                    });
                }
                events += sink.events();
            }
        }
    }
    let mut sink = EventSink::new(&mut out);
    sink.keep_alive();
    events += sink.events();
    expected.push(Expected::Comment("keep-alive"));
    done(&mut out);
    expected.push(Expected::Text {
        name: "message",
        data: "[DONE]",
    });
    // Every frame but the error event and `[DONE]` counts as a chunk.
    let counted = expected
        .iter()
        .filter(|frame| {
            !matches!(
                frame,
                Expected::Json { name: "error", .. } | Expected::Text { .. }
            )
        })
        .count();
    assert_eq!(
        events as usize, counted,
        "the sinks counted every event they wrote"
    );

    let mut parsed = Vec::new();
    let mut parser = SseParser::new(out.len() + 1);
    parser
        .feed(&out, &mut |item| parsed.push(Item::from(item)))
        .expect("our own frames are within the limit");
    assert_eq!(parsed.len(), expected.len(), "one item per frame written");
    for (item, expected) in parsed.iter().zip(&expected) {
        match (item, expected) {
            (Item::Event { name, data }, Expected::Json { name: want, value }) => {
                assert_eq!(name, want);
                let decoded: Value = serde_json::from_str(data)
                    .unwrap_or_else(|error| panic!("not JSON ({error}): {data:?}"));
                assert_eq!(&decoded, value);
            }
            (
                Item::Event { name, data },
                Expected::Text {
                    name: want,
                    data: text,
                },
            ) => {
                assert_eq!((name.as_str(), data.as_str()), (*want, *text));
            }
            (Item::Comment(text), Expected::Comment(want)) => assert_eq!(text, want),
            (item, _) => panic!("unexpected {item:?}"),
        }
    }
}

/// `push_json_string` promises serde_json's bytes: the same escapes, the rest as UTF-8.
fn same_bytes_as_serde_json(text: &str) {
    let mut ours = Vec::new();
    push_json_string(&mut ours, text);
    let theirs = serde_json::to_string(text).expect("a string always serialises");
    assert_eq!(ours, theirs.as_bytes());
}
