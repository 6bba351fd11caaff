use super::*;
use crate::splits::for_each_split;
use crate::sse::{SseItem, DEFAULT_MAX_LINE};

/// Relays each event's data as content, except the words `done` (Complete), `bad` (Skip) and
/// `err` (Fail); a silent end is complete when `silent_end_completes`.
struct Words {
    silent_end_completes: bool,
}

impl Translator for Words {
    fn on_item(&mut self, item: &SseItem<'_>, sink: &mut EventSink<'_>) -> Flow {
        match item {
            SseItem::Event { data: "done", .. } => Flow::Complete,
            SseItem::Event { data: "bad", .. } => Flow::Skip("bad word".into()),
            SseItem::Event { data: "err", .. } => Flow::Fail(Failure::upstream_error("err".into())),
            SseItem::Event { data, .. } => {
                sink.content(data);
                Flow::Continue
            }
            SseItem::Comment(_) => Flow::Continue,
        }
    }

    fn on_clean_end(&mut self) -> End {
        if self.silent_end_completes {
            End::Complete
        } else {
            End::Incomplete
        }
    }
}

fn head(chunked: bool, content_length: Option<u64>, connection_close: bool) -> Head {
    Head {
        status: 200,
        reason: "OK".into(),
        content_length,
        chunked,
        connection_close,
        retry_after: None,
        content_type: Some("text/event-stream".into()),
        content_encoding: None,
    }
}

/// Wraps SSE text in one chunk per event, then the last chunk.
fn chunked_body(events: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        body.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

fn words(silent_end_completes: bool) -> Output {
    Output::Translate(Box::new(Words {
        silent_end_completes,
    }))
}

/// What the client got, the events counted, the ending (from the feeds, else from EOF), skips,
/// and reusability.
struct Run {
    client: String,
    events: u32,
    ending: Ending,
    skipped: usize,
    reusable: bool,
}

fn run(head: &Head, pieces: &[&[u8]], eof: bool, silent_end_completes: bool) -> Option<Run> {
    run_with(
        head,
        pieces,
        eof,
        words(silent_end_completes),
        DEFAULT_MAX_LINE,
    )
}

fn run_with(
    head: &Head,
    pieces: &[&[u8]],
    eof: bool,
    output: Output,
    max_line: usize,
) -> Option<Run> {
    let mut relay = Relay::new(head, output, max_line);
    let mut out = Vec::new();
    let mut events = 0;
    let mut scratch = Vec::new();
    let mut skipped = 0;
    let mut ending = None;
    for piece in pieces {
        let mut sink = EventSink::new(&mut out);
        let fed = relay.feed(piece, &mut scratch, &mut sink);
        events += sink.events();
        skipped += fed.skipped.len();
        if let Step::Ended(end) = fed.step {
            ending = Some(end);
            break;
        }
    }
    let ending = match ending {
        Some(ending) => ending,
        None if eof => relay.on_eof(),
        None => return None,
    };
    Some(Run {
        client: String::from_utf8(out).unwrap(),
        events,
        ending,
        skipped,
        reusable: relay.is_reusable(),
    })
}

fn contents(words: &[&str]) -> String {
    let mut out = Vec::new();
    let mut sink = EventSink::new(&mut out);
    for word in words {
        sink.content(word);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn complete_then_clean_framed_end_is_complete_and_reusable() {
    let body = chunked_body(&["data: a\n\n", "data: done\n\n", "data: b\n\n"]);
    for_each_split(&body, |pieces| {
        let run = run(&head(true, None, false), pieces, false, false).unwrap();
        assert_eq!(run.ending, Ending::Complete);
        assert_eq!(run.client, contents(&["a", "b"]));
        assert!(run.reusable);
    });
}

#[test]
fn clean_end_without_completion_asks_the_translator() {
    let body = chunked_body(&["data: a\n\n"]);
    let strict = run(&head(true, None, false), &[&body], false, false).unwrap();
    assert_eq!(strict.ending, Ending::Incomplete);
    assert!(strict.reusable);
    let lenient = run(&head(true, None, false), &[&body], false, true).unwrap();
    assert_eq!(lenient.ending, Ending::Complete);
}

#[test]
fn cut_after_completion_is_still_a_failure() {
    let body = b"c\r\ndata: done\n\n\r\n5\r\ndata:";
    let run = run(&head(true, None, false), &[body], true, false).unwrap();
    match run.ending {
        Ending::Failed(failure) => {
            assert_eq!(failure.outcome, Outcome::UpstreamCut);
            assert_eq!(
                failure.message,
                "the upstream connection closed before the answer was complete"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(!run.reusable);
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let body = b"data: a\n\ndata: done\n\n";
    for_each_split(body, |pieces| {
        let run = run(&head(false, None, false), pieces, true, false).unwrap();
        assert_eq!(run.ending, Ending::Complete);
        assert_eq!(run.client, contents(&["a"]));
        assert!(!run.reusable);
    });
}

#[test]
fn length_body_and_connection_close() {
    let body = b"data: a\n\n";
    let kept = run(&head(false, Some(9), false), &[body], false, false).unwrap();
    assert_eq!((kept.ending, kept.reusable), (Ending::Incomplete, true));
    let closing = run(&head(false, Some(9), true), &[body], false, false).unwrap();
    assert!(!closing.reusable);
    // Bytes after the body: the connection is out of step, never reuse it.
    let extra = run(
        &head(false, Some(9), false),
        &[b"data: a\n\nX"],
        false,
        false,
    )
    .unwrap();
    assert_eq!(extra.ending, Ending::Incomplete);
    assert!(!extra.reusable);
}

#[test]
fn failure_stops_translation_at_once() {
    let body = chunked_body(&["data: a\n\ndata: err\n\ndata: after\n\n"]);
    for_each_split(&body, |pieces| {
        let run = run(&head(true, None, false), pieces, false, false).unwrap();
        assert_eq!(run.client, contents(&["a"]));
        assert_eq!(
            run.ending,
            Ending::Failed(Failure::upstream_error("err".into()))
        );
        assert!(!run.reusable);
    });
}

#[test]
fn skipped_events_are_reported_and_the_stream_goes_on() {
    let body = chunked_body(&[
        "data: bad\n\n",
        "data: a\n\n",
        "data: bad\n\n",
        "data: done\n\n",
    ]);
    for_each_split(&body, |pieces| {
        let run = run(&head(true, None, false), pieces, false, false).unwrap();
        assert_eq!(run.skipped, 2);
        assert_eq!(run.client, contents(&["a"]));
        assert_eq!(run.ending, Ending::Complete);
    });
}

#[test]
fn broken_framing_is_a_cut_and_an_oversized_line_an_error() {
    let bad = run(
        &head(true, None, false),
        &[b"5\r\ndata:X\r\n"],
        false,
        false,
    )
    .unwrap();
    assert!(matches!(bad.ending, Ending::Failed(ref f) if f.outcome == Outcome::UpstreamCut));
    let mut relay = Relay::new(&head(false, None, false), words(false), 8);
    let mut out = Vec::new();
    let fed = relay.feed(
        b"data: 123456789",
        &mut Vec::new(),
        &mut EventSink::new(&mut out),
    );
    assert!(
        matches!(fed.step, Step::Ended(Ending::Failed(ref f)) if f.outcome == Outcome::UpstreamError)
    );
}

#[test]
fn content_before_a_framing_error_is_relayed() {
    let body = b"a\r\ndata: a\n\n\r\nzz\r\n";
    let run = run(&head(true, None, false), &[body], false, false).unwrap();
    assert_eq!(run.client, contents(&["a"]));
    assert!(matches!(run.ending, Ending::Failed(_)));
}

#[test]
fn an_ended_relay_repeats_its_ending() {
    let mut relay = Relay::new(&head(false, Some(0), false), words(true), DEFAULT_MAX_LINE);
    let mut out = Vec::new();
    // An empty body is complete from the start; the first feed reports it.
    let fed = relay.feed(b"", &mut Vec::new(), &mut EventSink::new(&mut out));
    assert_eq!(fed.step, Step::Ended(Ending::Complete));
    let again = relay.feed(
        b"data: x\n\n",
        &mut Vec::new(),
        &mut EventSink::new(&mut out),
    );
    assert_eq!(again.step, Step::Ended(Ending::Complete));
    assert_eq!(relay.on_eof(), Ending::Complete);
    assert!(out.is_empty());
}

/// LangGraph's events as a server sends them: CRLF line ends, a heartbeat, an error event that
/// raw output passes on like any other.
const RAW_EVENTS: [&str; 4] = [
    "event: metadata\r\ndata: {\"run_id\":\"r-1\"}\r\n\r\n",
    ": heartbeat\r\n\r\n",
    "event: messages\r\nid: 3\r\ndata: [{\"content\":\"Hi\",\"type\":\"AIMessageChunk\"},{}]\r\n\r\n",
    "event: error\r\ndata: {\"error\":\"ValueError\",\"message\":\"boom\"}\r\n\r\n",
];

#[test]
fn raw_events_pass_as_received_and_a_clean_end_adds_nothing() {
    let body = chunked_body(&RAW_EVENTS);
    for_each_split(&body, |pieces| {
        let run = run_with(&head(true, None, false), pieces, false, Output::Raw, 64).unwrap();
        assert_eq!(run.client, RAW_EVENTS.concat(), "{pieces:?}");
        assert_eq!(run.events, 4);
        assert_eq!(run.ending, Ending::CompleteRaw);
        assert_eq!(run.skipped, 0);
        assert!(run.reusable);
    });
}

#[test]
fn raw_close_delimited_end_is_complete_and_an_unfinished_event_is_dropped() {
    let mut body = RAW_EVENTS[..2].concat();
    body.push_str("event: messages\r\ndata: [");
    for_each_split(body.as_bytes(), |pieces| {
        let run = run_with(&head(false, None, false), pieces, true, Output::Raw, 64).unwrap();
        assert_eq!(run.client, RAW_EVENTS[..2].concat());
        assert_eq!(run.ending, Ending::CompleteRaw);
        assert!(!run.reusable);
    });
}

#[test]
fn raw_cut_mid_event_drops_the_partial_event_and_fails() {
    let body = chunked_body(&RAW_EVENTS);
    // Cut inside the third event.
    let cut = body.len() - RAW_EVENTS[3].len() - 40;
    let run = run_with(
        &head(true, None, false),
        &[&body[..cut]],
        true,
        Output::Raw,
        64,
    )
    .unwrap();
    assert_eq!(run.client, RAW_EVENTS[..2].concat());
    let Ending::Failed(failure) = run.ending else {
        panic!("expected a failure, got {:?}", run.ending);
    };
    assert_eq!(failure.outcome, Outcome::UpstreamCut);
    assert!(!run.reusable);
}

#[test]
fn raw_broken_framing_is_a_cut_after_the_events_before_it() {
    let mut body = chunked_body(&RAW_EVENTS[..1]);
    body.truncate(body.len() - 5); // without the last chunk
    body.extend_from_slice(b"zz\r\n");
    let run = run_with(&head(true, None, false), &[&body], false, Output::Raw, 64).unwrap();
    assert_eq!(run.client, RAW_EVENTS[0]);
    assert!(matches!(run.ending, Ending::Failed(ref f) if f.outcome == Outcome::UpstreamCut));
}

#[test]
fn raw_lines_over_the_limit_are_an_upstream_error() {
    let body = chunked_body(&RAW_EVENTS);
    let run = run_with(&head(true, None, false), &[&body], false, Output::Raw, 40).unwrap();
    // The first two events fit; the third's data line does not.
    assert_eq!(run.client, RAW_EVENTS[..2].concat());
    let Ending::Failed(failure) = run.ending else {
        panic!("expected a failure, got {:?}", run.ending);
    };
    assert_eq!(failure.outcome, Outcome::UpstreamError);
    assert_eq!(
        failure.message,
        "the upstream API sent a malformed response"
    );
    assert!(failure.detail.contains("40 bytes"), "{}", failure.detail);
}

#[test]
fn raw_relay_holds_only_an_unfinished_event() {
    let mut relay = Relay::new(&head(false, None, false), Output::Raw, DEFAULT_MAX_LINE);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    relay.feed(
        RAW_EVENTS[0].as_bytes(),
        &mut scratch,
        &mut EventSink::new(&mut out),
    );
    assert_eq!(relay.held_bytes(), 0);
    relay.feed(b"data: par", &mut scratch, &mut EventSink::new(&mut out));
    assert!(relay.held_bytes() >= 9);
    // An empty body is complete at once, with nothing added.
    let mut empty = Relay::new(&head(false, Some(0), false), Output::Raw, DEFAULT_MAX_LINE);
    let fed = empty.feed(b"", &mut scratch, &mut EventSink::new(&mut out));
    assert_eq!(fed.step, Step::Ended(Ending::CompleteRaw));
    assert_eq!(empty.on_eof(), Ending::CompleteRaw);
}

#[test]
fn typed_output_is_translated_into_a_typists_sink_and_ends_as_translated() {
    let output = Output::Typed(
        Box::new(Words {
            silent_end_completes: false,
        }),
        |_| std::time::Duration::ZERO,
    );
    let pace = output.pace().expect("typed output has a pace");
    let now = std::time::Instant::now();
    let mut typist = crate::backends::upstream::Typist::new(pace, now);
    let body = chunked_body(&[
        "data: h\u{e9}\n\n",
        ": comment\n\n",
        "data: done\n\n",
        "data: !\n\n",
    ]);
    let mut relay = Relay::new(&head(true, None, false), output, DEFAULT_MAX_LINE);
    let fed = relay.feed(&body, &mut Vec::new(), &mut typist.sink());
    assert_eq!(fed.step, Step::Ended(Ending::Complete));
    assert!(relay.is_reusable());
    assert_eq!(typist.backlog(), "h\u{e9}!".len());
    let mut out = Vec::new();
    let mut sink = EventSink::new(&mut out);
    while typist.type_due(now, &mut sink) == crate::backends::upstream::Typed::Char {}
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "data: {\"char\":\"h\",\"index\":0}\n\ndata: {\"char\":\"\u{e9}\",\"index\":1}\n\n\
         data: {\"char\":\"!\",\"index\":3}\n\n"
    );
    assert!(Output::Raw.pace().is_none());
}
