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

/// What the client got, the ending (from the feeds, else from EOF), skips, and reusability.
struct Run {
    client: String,
    ending: Ending,
    skipped: usize,
    reusable: bool,
}

fn run(head: &Head, pieces: &[&[u8]], eof: bool, silent_end_completes: bool) -> Option<Run> {
    let mut relay = Relay::new(
        head,
        Box::new(Words {
            silent_end_completes,
        }),
        DEFAULT_MAX_LINE,
    );
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut skipped = 0;
    let mut ending = None;
    for piece in pieces {
        let fed = relay.feed(piece, &mut scratch, &mut EventSink::new(&mut out));
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
    let mut relay = Relay::new(
        &head(false, None, false),
        Box::new(Words {
            silent_end_completes: false,
        }),
        8,
    );
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
    let mut relay = Relay::new(
        &head(false, Some(0), false),
        Box::new(Words {
            silent_end_completes: true,
        }),
        DEFAULT_MAX_LINE,
    );
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
