//! The typing backend with `use_api` (SPEC §4.2): an OpenAI response played through the relay
//! into a `Typist`'s sink, typed out to the client one character per event as the reactor does
//! it: reads stop while the typist is backed up, and a few characters are typed between reads
//! (how many, the input decides). The input is read as `openai_relay` reads it: a whole
//! response when it starts with `HTTP/`, else the body of a `200` event stream.
//!
//! - The typing backend's call types its answer (`Output::Typed`).
//! - The client gets only `{"char","index"}` events: one character each, `index` the byte
//!   offset of that character in the answer; the characters are the text the openai translator
//!   gives for the same response (all of it, or a prefix when the stream failed).
//! - The typist ends with the relay's ending, once, after the last character; typing is
//!   bounded by the answer's characters.
//! - The same client bytes for every way of cutting the response into reads, unless it failed
//!   (a failure drops what was not typed yet, which depends on the reads).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use serde_json::Value;
use streaming_daemon::backends::upstream::{
    status_outcome, Ending, Output, Pace, Relay, Step, Typed, Typist,
};
use streaming_daemon::backends::{self, openai, Start};
use streaming_daemon::config::Config;
use streaming_daemon::handoff::HandoffData;
use streaming_daemon::http::{parse_head, HeadParse};
use streaming_daemon::sse::{EventSink, SseParser, DEFAULT_MAX_LINE};

use super::wire::{lengths, splits, Item};

const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";

/// What a response came to.
#[derive(Debug, PartialEq, Eq)]
enum Played {
    /// No head, a bad one, or a status the daemon does not relay: nothing is typed.
    NotRelayed,
    Typed {
        client: Vec<u8>,
        ending: Ending,
    },
}

pub fn check(data: &[u8]) {
    let response: Cow<[u8]> = if data.starts_with(b"HTTP/") {
        Cow::Borrowed(data)
    } else {
        Cow::Owned([STREAM_HEAD, data].concat())
    };
    let pace = typing_pace();
    let between = usize::from(data.first().copied().unwrap_or(0) % 8);
    let reference = untyped(&response);
    let whole = play(&[&response], pace, between);
    agrees(&whole, reference.as_ref());
    for pieces in splits(&response) {
        let played = play(&pieces, pace, between);
        agrees(&played, reference.as_ref());
        if !matches!(
            &whole,
            Played::Typed {
                ending: Ending::Failed(_),
                ..
            }
        ) {
            assert_eq!(played, whole, "reads of {:?} differ", lengths(&pieces));
        }
    }
}

/// The typing backend's pauses, from the call it makes with an OpenAI key and `use_api`.
fn typing_pace() -> Pace {
    let mut config = Config::default();
    config.backend.provider = "typing".to_string();
    config.backend.typing.use_api = true;
    config.backend.openai.api_key = Some("sk-fuzz".to_string());
    let mut backend = backends::create(&config).expect("the typing backend");
    let handoff = HandoffData {
        prompt: "hi".to_string(),
        ..HandoffData::default()
    };
    match backend.start(handoff, None, Instant::now()) {
        Ok(Start::Upstream(call)) => match call.output {
            Output::Typed(_, pace) => pace,
            _ => panic!("use_api with a key must type its answer"),
        },
        _ => panic!("use_api with a key calls the API"),
    }
}

/// The head of `response` when the daemon relays it, and the bytes after it.
fn relayed_head(response: &[u8]) -> Option<(Relay, &[u8])> {
    match parse_head(response) {
        Ok(HeadParse::Complete(head, len)) => {
            if status_outcome(&head).response().is_some() {
                return None;
            }
            Some((
                Relay::new(&head, openai::translator(), DEFAULT_MAX_LINE),
                &response[len..],
            ))
        }
        _ => None,
    }
}

/// The answer's text and ending without a typist: what the translator gives.
fn untyped(response: &[u8]) -> Option<(String, Ending)> {
    let (mut relay, body) = relayed_head(response)?;
    let mut text = String::new();
    let mut scratch = Vec::new();
    let fed = relay.feed(body, &mut scratch, &mut EventSink::text(&mut text));
    let ending = match fed.step {
        Step::Ended(ending) => ending,
        _ => relay.on_eof(),
    };
    Some((text, ending))
}

fn play(pieces: &[&[u8]], pace: Pace, between: usize) -> Played {
    // The head is parsed on all bytes so far, as the reactor does.
    let mut received = Vec::new();
    let mut rest = pieces.iter();
    let (mut relay, first) = loop {
        let Some(piece) = rest.next() else {
            return Played::NotRelayed;
        };
        received.extend_from_slice(piece);
        match parse_head(&received) {
            Ok(HeadParse::Incomplete) => continue,
            Ok(HeadParse::Complete(..)) => match relayed_head(&received) {
                Some((relay, after)) => break (relay, after.to_vec()),
                None => return Played::NotRelayed,
            },
            Err(_) => return Played::NotRelayed,
        }
    };

    let mut now = Instant::now();
    let mut typist = Typist::new(pace, now);
    let mut client = Vec::new();
    let mut scratch = Vec::new();
    let mut ending = None;
    let inputs = std::iter::once(first.as_slice()).chain(rest.copied());
    for input in inputs {
        // The reactor reads the upstream only while the typist keeps up.
        while typist.is_backed_up() {
            assert_eq!(type_one(&mut typist, &mut now, &mut client), Typed::Char);
        }
        let fed = relay.feed(input, &mut scratch, &mut typist.sink());
        if let Step::Ended(end) = fed.step {
            ending = Some(end);
            break;
        }
        for _ in 0..between {
            type_one(&mut typist, &mut now, &mut client);
        }
    }
    let ending = ending.unwrap_or_else(|| relay.on_eof());
    if let Some(failed) = typist.body_ended(ending.clone()) {
        assert_eq!(failed, ending);
        assert!(matches!(ending, Ending::Failed(_)));
        assert_eq!(typist.due(), None, "nothing is typed after a failure");
        return Played::Typed { client, ending };
    }
    // Every character left, then the ending, once.
    let left = typist.backlog();
    for _ in 0..=left {
        match type_one(&mut typist, &mut now, &mut client) {
            Typed::Char => {}
            Typed::Ended(end) => {
                assert_eq!(end, ending);
                assert_eq!(typist.due(), None, "done");
                assert_eq!(type_one(&mut typist, &mut now, &mut client), Typed::Waiting);
                return Played::Typed { client, ending };
            }
            Typed::Waiting => panic!("waiting with the body ended"),
        }
    }
    panic!("{left} bytes left to type did not end in as many turns");
}

/// One turn of the typist at its due time (or now, when nothing is due).
fn type_one(typist: &mut Typist, now: &mut Instant, client: &mut Vec<u8>) -> Typed {
    if let Some(due) = typist.due() {
        assert!(
            due <= *now + Duration::from_secs(1),
            "a pause of over a second"
        );
        *now = (*now).max(due);
    }
    typist.type_due(*now, &mut EventSink::new(client))
}

/// The client's events against the translator's text and ending.
fn agrees(played: &Played, reference: Option<&(String, Ending)>) {
    let (client, ending) = match (played, reference) {
        (Played::NotRelayed, None) => return,
        (Played::Typed { client, ending }, Some(_)) => (client, ending),
        (played, reference) => panic!("{played:?} against {reference:?}"),
    };
    let Some((text, reference_ending)) = reference else {
        return;
    };
    assert_eq!(ending, reference_ending, "the ending");
    let mut items = Vec::new();
    SseParser::new(client.len() + 1)
        .feed(client, &mut |item| items.push(Item::from(item)))
        .expect("our own frames are within the limit");
    let mut typed = String::new();
    for item in items {
        let Item::Event { name, data } = item else {
            panic!("a comment to a typed stream: {item:?}");
        };
        assert_eq!(name, "message");
        let value: Value = serde_json::from_str(&data).expect("JSON");
        let object = value.as_object().expect("an object");
        assert_eq!(object.len(), 2, "{data}");
        let character = object["char"].as_str().expect("a string");
        assert_eq!(character.chars().count(), 1, "{data}");
        assert_eq!(object["index"].as_u64(), Some(typed.len() as u64), "{data}");
        typed.push_str(character);
    }
    if matches!(ending, Ending::Failed(_)) {
        assert!(text.starts_with(&typed), "typed {typed:?} of {text:?}");
    } else {
        assert_eq!(&typed, text, "the typed answer");
    }
}
