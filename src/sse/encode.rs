//! Encoding of the SSE frames the daemon writes to its clients.
//!
//! Every frame is appended to a caller's buffer, so that the reactor can write frames straight
//! from one shared scratch buffer and keep nothing per connection unless a write would block.

/// The completion marker: sent only when the whole answer was delivered.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Appends events to a buffer and counts them (each one is a chunk in the metrics), or, made
/// with [`EventSink::text`], collects only the text of content events.
pub struct EventSink<'a> {
    out: Out<'a>,
    events: u32,
}

/// Where a sink's events go.
enum Out<'a> {
    /// Encoded as SSE frames for a client.
    Frames(&'a mut Vec<u8>),
    /// The text of content (and typing) events, appended as it is, for a typist to type out
    /// later (the typing backend's `use_api`, SPEC §4.2); nothing else is kept.
    Text(&'a mut String),
}

impl<'a> EventSink<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        EventSink {
            out: Out::Frames(out),
            events: 0,
        }
    }

    /// A sink that appends the text of content events to `text` and drops every other event:
    /// comments, keep-alives and verbatim bytes are for a client, not for a typist. Nothing is
    /// counted: the typist counts the events it types.
    pub fn text(text: &'a mut String) -> Self {
        EventSink {
            out: Out::Text(text),
            events: 0,
        }
    }

    /// `data: {"content":"<text>"}` with `text` escaped as a JSON string.
    pub fn content(&mut self, text: &str) {
        match &mut self.out {
            Out::Frames(out) => {
                out.extend_from_slice(b"data: {\"content\":");
                push_json_string(out, text);
                out.extend_from_slice(b"}\n\n");
                self.events += 1;
            }
            Out::Text(collected) => collected.push_str(text),
        }
    }

    /// The typing backend's event: one character and its byte offset in the answer.
    pub fn typing(&mut self, character: char, index: usize) {
        match &mut self.out {
            Out::Frames(out) => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(b"data: {\"char\":");
                push_json_string(out, character.encode_utf8(&mut utf8));
                out.extend_from_slice(b",\"index\":");
                out.extend_from_slice(index.to_string().as_bytes());
                out.extend_from_slice(b"}\n\n");
                self.events += 1;
            }
            Out::Text(collected) => collected.push(character),
        }
    }

    /// A comment line that keeps proxies between us and the client from timing out.
    pub fn keep_alive(&mut self) {
        if let Some(out) = self.frames() {
            out.extend_from_slice(b": keep-alive\n\n");
            self.events += 1;
        }
    }

    /// An upstream event passed on exactly as it came (`output: raw`): its bytes, counted as
    /// one event.
    pub fn verbatim_event(&mut self, bytes: &[u8]) {
        if let Some(out) = self.frames() {
            out.extend_from_slice(bytes);
            self.events += 1;
        }
    }

    /// Upstream bytes that belong to no event (a blank line between events), passed on as they
    /// came and not counted.
    pub fn verbatim(&mut self, bytes: &[u8]) {
        if let Some(out) = self.frames() {
            out.extend_from_slice(bytes);
        }
    }

    /// How many events were appended through this sink (none by a text sink).
    pub fn events(&self) -> u32 {
        self.events
    }

    fn frames(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.out {
            Out::Frames(out) => Some(out),
            Out::Text(_) => None,
        }
    }
}

/// Appends the completion marker.
pub fn done(out: &mut Vec<u8>) {
    out.extend_from_slice(DONE);
}

/// `event: error` with a JSON message: ends a stream whose headers were already sent.
pub fn error_event(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"event: error\ndata: {\"error\":");
    push_json_string(out, message);
    out.extend_from_slice(b"}\n\n");
}

/// Appends `text` as a JSON string literal, quotes included. Only `"`, `\\` and control
/// characters are escaped; everything else is copied as UTF-8 in runs, which is what makes this
/// cheaper than a general serializer on the hot path of every event.
pub fn push_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most text needs no escape at all. A fold without an early exit compiles to SIMD, so the
    // check costs a fraction of a byte-by-byte walk.
    let needs_escape = bytes.iter().fold(false, |found, &b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let short: Option<&[u8]> = match byte {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        match short {
            Some(escape) => out.extend_from_slice(escape),
            None => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut EventSink)) -> (String, u32) {
        let mut out = Vec::new();
        let mut sink = EventSink::new(&mut out);
        f(&mut sink);
        let events = sink.events();
        (String::from_utf8(out).unwrap(), events)
    }

    #[test]
    fn content_event_is_escaped_json() {
        let (text, events) =
            encoded(|s| s.content("a \"quoted\" \\ line\nwith\ttab and \u{1} é 😀"));
        assert_eq!(
            text,
            "data: {\"content\":\"a \\\"quoted\\\" \\\\ line\\nwith\\ttab and \\u0001 é 😀\"}\n\n"
        );
        assert_eq!(events, 1);
        let json = text.strip_prefix("data: ").unwrap().trim_end();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            value["content"],
            "a \"quoted\" \\ line\nwith\ttab and \u{1} é 😀"
        );
    }

    #[test]
    fn typing_event_carries_char_and_byte_index() {
        let (text, _) = encoded(|s| {
            s.typing('"', 0);
            s.typing('é', 17);
        });
        assert_eq!(
            text,
            "data: {\"char\":\"\\\"\",\"index\":0}\n\ndata: {\"char\":\"é\",\"index\":17}\n\n"
        );
    }

    #[test]
    fn done_and_error_frames_are_exact() {
        let mut out = Vec::new();
        done(&mut out);
        error_event(&mut out, "server shutting down");
        assert_eq!(
            out,
            b"data: [DONE]\n\nevent: error\ndata: {\"error\":\"server shutting down\"}\n\n"
        );
    }

    #[test]
    fn every_string_round_trips_through_a_json_parser() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", b as char)).collect();
        samples.extend(
            ["", "plain", "é😀\u{2028}", "\"\\\"", "\u{7f}\u{0}\u{1f}end"].map(String::from),
        );
        for text in samples {
            let mut out = Vec::new();
            push_json_string(&mut out, &text);
            let decoded: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(decoded, text);
            let expected = serde_json::to_string(&text).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "same bytes as serde_json"
            );
        }
    }

    #[test]
    fn a_text_sink_collects_only_the_text_and_counts_nothing() {
        let mut text = String::from("so far: ");
        let mut sink = EventSink::text(&mut text);
        sink.content("caf\u{e9} \"q\"\n");
        sink.keep_alive();
        sink.verbatim_event(b"data: raw\n\n");
        sink.verbatim(b"\n");
        sink.typing('\u{1F600}', 3);
        sink.content("");
        assert_eq!(sink.events(), 0);
        assert_eq!(text, "so far: caf\u{e9} \"q\"\n\u{1F600}");
    }

    #[test]
    fn keep_alive_is_a_comment() {
        let (text, events) = encoded(|s| s.keep_alive());
        assert_eq!(text, ": keep-alive\n\n");
        assert_eq!(events, 1);
    }
}
