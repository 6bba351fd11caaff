//! An upstream response played through what the reactor does with it: the head parsed on all
//! bytes so far after each read, the status checked, then `backends::upstream::Relay` (body
//! framing, SSE parsing, a backend's translator) fed every read, EOF after the last.
//!
//! An input that starts with `HTTP/` is the whole response; any other input is the body of a
//! close-delimited `200` event stream (the shape a fuzzer mutates best).
//!
//! - The client's bytes, the skipped events and the ending are the same however the response
//!   is cut into reads.
//! - The translator writes only content events (`{"content":"<non-empty text>"}`) and
//!   keep-alive comments, as many as its sinks counted: `[DONE]` and `event: error` are the
//!   reactor's, once, by the ending.
//! - An ending is sticky; a failure's client message is one of the fixed ones, never the
//!   upstream's words; log texts are bounded.
//! - The relay holds no more than its line limit allows between reads.
//! - `output: raw` (no translator): the client gets the upstream's events byte for byte, so for
//!   a bare body what it gets is a prefix of the input, ending where an event or blank line
//!   ends; a clean end is `CompleteRaw`, never `Complete`.

use std::borrow::Cow;

use serde_json::Value;
use streaming_daemon::backends::upstream::{
    status_outcome, Ending, Output, Relay, Step, Translator, EXCERPT_LIMIT,
};
use streaming_daemon::http::{parse_head, HeadError, HeadParse};
use streaming_daemon::sse::{EventSink, SseParser, DEFAULT_MAX_LINE};

use super::wire::{complete_response, lengths, splits, sse_held_bound, Item};

const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";

/// The daemon's default, and one some real events break.
const LIMITS: [usize; 2] = [DEFAULT_MAX_LINE, 300];

/// What a client may be told when a stream fails: fixed words, never the upstream's.
const FAILURE_MESSAGES: [&str; 3] = [
    "the upstream API reported an error during the answer",
    "the upstream API sent a malformed response",
    "the upstream connection closed before the answer was complete",
];

/// A log text (a skip reason, a failure's detail) is an excerpt of at most 4 KiB, grown a
/// little by redaction, plus a sentence: never the whole of a large event.
const LOG_TEXT_LIMIT: usize = 2 * EXCERPT_LIMIT;

/// How one response went.
#[derive(Debug, PartialEq, Eq)]
enum Played {
    /// The head never completed.
    NoHead,
    HeadError(HeadError),
    /// A status the daemon does not relay: the client got this response.
    Rejected(Vec<u8>),
    Relayed {
        client: Vec<u8>,
        skipped: Vec<String>,
        ending: Ending,
    },
}

/// Runs every check on `data` with translators from `translator`.
pub fn check(data: &[u8], translator: &dyn Fn() -> Box<dyn Translator>) {
    check_output(data, &|| Output::Translate(translator()));
}

/// Runs every check on `data` with `output: raw`.
pub fn check_raw(data: &[u8]) {
    check_output(data, &|| Output::Raw);
    if data.starts_with(b"HTTP/") {
        return;
    }
    // A bare input is the whole body: the client's bytes are the input's, up to an event end.
    let response = [STREAM_HEAD, data].concat();
    if let Played::Relayed { client, ending, .. } =
        play(&[&response], &|| Output::Raw, DEFAULT_MAX_LINE)
    {
        assert!(
            data.starts_with(&client),
            "raw output is not the upstream's bytes"
        );
        assert!(
            client.is_empty() || client.ends_with(b"\n") || client.ends_with(b"\r"),
            "raw output ends inside a line"
        );
        assert_ne!(ending, Ending::Complete, "raw output never adds [DONE]");
        if ending == Ending::CompleteRaw {
            // What is left is at most one event without its blank line: never sent.
            let mut rest = &data[client.len()..];
            if client.ends_with(b"\r") && rest.starts_with(b"\n") {
                rest = &rest[1..];
            }
            assert!(!ends_an_event(rest), "a clean end kept back a whole event");
        }
    }
}

/// Whether `bytes` holds a blank line (`\n`, `\r\n` or `\r` after a line end, or first).
fn ends_an_event(bytes: &[u8]) -> bool {
    let mut line_len = 0;
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'\r' | b'\n') {
            if line_len == 0 {
                return true;
            }
            line_len = 0;
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            line_len += 1;
        }
        i += 1;
    }
    false
}

fn check_output(data: &[u8], output: &dyn Fn() -> Output) {
    let response: Cow<[u8]> = if data.starts_with(b"HTTP/") {
        Cow::Borrowed(data)
    } else {
        Cow::Owned([STREAM_HEAD, data].concat())
    };
    for max_line in LIMITS {
        let whole = play(&[&response], output, max_line);
        for pieces in splits(&response) {
            assert_eq!(
                play(&pieces, output, max_line),
                whole,
                "max_line {max_line}: reads of {:?} differ from one read",
                lengths(&pieces)
            );
        }
    }
}

fn play(pieces: &[&[u8]], output: &dyn Fn() -> Output, max_line: usize) -> Played {
    let raw = matches!(output(), Output::Raw);
    let mut head_buffer = Vec::new();
    let mut relay: Option<Relay> = None;
    let mut client = Vec::new();
    let mut scratch = Vec::new();
    let mut skipped = Vec::new();
    let mut events = 0;
    let mut ending = None;
    for piece in pieces {
        let after_head;
        let input: &[u8] = match relay {
            Some(_) => piece,
            None => {
                head_buffer.extend_from_slice(piece);
                let (head, len) = match parse_head(&head_buffer) {
                    Ok(HeadParse::Complete(head, len)) => (head, len),
                    Ok(HeadParse::Incomplete) => continue,
                    Err(error) => return Played::HeadError(error),
                };
                if let Some(response) = status_outcome(&head).response() {
                    let parsed = complete_response(&response, false);
                    assert!(parsed.status >= 400, "{response:?}");
                    return Played::Rejected(response);
                }
                relay = Some(Relay::new(&head, output(), max_line));
                after_head = head_buffer[len..].to_vec();
                &after_head
            }
        };
        let Some(relay) = relay.as_mut() else {
            continue;
        };
        let mut sink = EventSink::new(&mut client);
        let fed = relay.feed(input, &mut scratch, &mut sink);
        events += sink.events();
        for reason in &fed.skipped {
            assert!(
                reason.len() <= LOG_TEXT_LIMIT,
                "a skip reason of {} bytes",
                reason.len()
            );
        }
        skipped.extend(fed.skipped);
        assert!(
            relay.held_bytes() <= sse_held_bound(max_line),
            "max_line {max_line}: the relay holds {} bytes",
            relay.held_bytes()
        );
        if let Step::Ended(end) = fed.step {
            ending = Some(end);
            break;
        }
    }
    let Some(relay) = relay.as_mut() else {
        return Played::NoHead;
    };
    let ending = match ending {
        Some(ending) => ending,
        None => relay.on_eof(),
    };
    let mut sink = EventSink::new(&mut client);
    let again = relay.feed(b"data: {}\n\n", &mut scratch, &mut sink);
    assert_eq!(
        again.step,
        Step::Ended(ending.clone()),
        "an ending is sticky"
    );
    assert_eq!(sink.events(), 0, "nothing is written after the end");
    assert_eq!(relay.on_eof(), ending, "an ending is sticky");
    if let Ending::Failed(failure) = &ending {
        assert!(
            FAILURE_MESSAGES.contains(&failure.message.as_str()),
            "a client message that is not one of ours: {:?}",
            failure.message
        );
        assert!(failure.detail.len() <= LOG_TEXT_LIMIT);
    }
    if !raw {
        client_events_only(&client, events);
    }
    Played::Relayed {
        client,
        skipped,
        ending,
    }
}

/// What the translators wrote is content events and keep-alive comments, `events` of them.
fn client_events_only(client: &[u8], events: u32) {
    let mut items = Vec::new();
    let mut parser = SseParser::new(client.len() + 1);
    parser
        .feed(client, &mut |item| items.push(Item::from(item)))
        .expect("our own frames are within the limit");
    assert_eq!(items.len(), events as usize, "one frame per event counted");
    for item in &items {
        match item {
            Item::Comment(text) => assert_eq!(text, "keep-alive"),
            Item::Event { name, data } => {
                assert_eq!(name, "message", "a translator wrote {item:?}");
                let value: Value = serde_json::from_str(data)
                    .unwrap_or_else(|error| panic!("not JSON ({error}): {data:?}"));
                let object = value.as_object().expect("an object");
                assert_eq!(object.len(), 1, "{data}");
                let text = object.get("content").and_then(Value::as_str);
                assert!(text.is_some_and(|text| !text.is_empty()), "{data}");
            }
        }
    }
}
