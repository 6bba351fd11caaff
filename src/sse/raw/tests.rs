use super::*;
use crate::splits::for_each_split;
use crate::sse::DEFAULT_MAX_LINE;

/// What the client got and how many events were counted, and the error that stopped the feed.
fn run(max_line: usize, pieces: &[&[u8]]) -> (Vec<u8>, u32, Option<SseError>) {
    let mut events = RawEvents::new(max_line);
    let mut out = Vec::new();
    let mut counted = 0;
    for piece in pieces {
        let mut sink = EventSink::new(&mut out);
        let fed = events.feed(piece, &mut sink);
        counted += sink.events();
        if let Err(error) = fed {
            return (out, counted, Some(error));
        }
    }
    (out, counted, None)
}

/// `input` gives `expected` bytes and `count` events however it is cut.
fn assert_relayed(input: &[u8], expected: &[u8], count: u32) {
    for_each_split(input, |pieces| {
        let (out, counted, error) = run(DEFAULT_MAX_LINE, pieces);
        assert_eq!(error, None, "{pieces:?}");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected),
            "{pieces:?}"
        );
        assert_eq!(counted, count, "{pieces:?}");
    });
}

/// A LangGraph server's stream: CRLF line ends, heartbeat comments, several fields per event.
const LANGGRAPH: &[u8] = b"event: metadata\r\ndata: {\"run_id\":\"r-1\"}\r\n\r\n\
    : heartbeat\r\n\r\n\
    event: messages\r\nid: 7\r\ndata: [{\"content\":\"Hi\",\"type\":\"AIMessageChunk\"},{}]\r\n\r\n\
    : heartbeat\r\n\r\n\
    event: end\r\ndata: null\r\n\r\n";

#[test]
fn every_byte_comes_through_and_each_event_counts_once() {
    assert_relayed(LANGGRAPH, LANGGRAPH, 5);
}

#[test]
fn every_line_end_style_is_kept() {
    // LF, CR, CRLF and a mix within one event; a comment inside an event is part of it; a UTF-8
    // BOM and bytes that are not UTF-8 pass as they are.
    let input = b"\xEF\xBB\xBFdata: a\n\ndata: b\r\rdata: c\r\n\r\n: note\ndata: d\r\nid: 1\r\r\n\
        data: \xff\xfe\n\n";
    assert_relayed(input, input, 5);
}

#[test]
fn blank_lines_between_events_pass_through_uncounted() {
    let input = b"\n\r\ndata: a\n\n\n\n\r\ndata: b\r\n\r\n\r\n";
    assert_relayed(input, input, 2);
}

#[test]
fn an_event_is_passed_on_when_its_blank_line_arrives_and_not_before() {
    let first = b"event: x\r\ndata: 1\r\n\r\n".len();
    let second = first + b": heartbeat\r\n\r\n".len();
    let input = b"event: x\r\ndata: 1\r\n\r\n: heartbeat\r\n\r\ndata: 2\n\n";
    // Fed byte by byte, a CRLF event goes out with the CR of its blank line (a CR alone ends a
    // line), and the LF follows it uncounted.
    let released = [first - 1, second - 1, input.len()];
    let mut events = RawEvents::new(DEFAULT_MAX_LINE);
    let mut out = Vec::new();
    let mut counted = 0;
    let mut seen = Vec::new();
    for (i, byte) in input.iter().enumerate() {
        let mut sink = EventSink::new(&mut out);
        events.feed(std::slice::from_ref(byte), &mut sink).unwrap();
        if sink.events() > 0 {
            counted += sink.events();
            seen.push(i + 1);
        }
        // Nothing of an event goes out before its end.
        let sent = out.len();
        assert!(
            [0, first - 1, first, second - 1, second, input.len()].contains(&sent),
            "{sent} after byte {i}"
        );
    }
    assert_eq!(seen, released);
    assert_eq!(counted, 3);
    assert_eq!(out, input);
}

#[test]
fn a_cr_at_the_end_of_an_input_ends_the_event_and_its_lf_follows_uncounted() {
    let mut events = RawEvents::new(DEFAULT_MAX_LINE);
    let mut out = Vec::new();
    let mut sink = EventSink::new(&mut out);
    events.feed(b"data: x\r\n\r", &mut sink).unwrap();
    assert_eq!(sink.events(), 1);
    let mut sink = EventSink::new(&mut out);
    events.feed(b"\ndata: y\r", &mut sink).unwrap();
    assert_eq!(sink.events(), 0);
    assert_eq!(out, b"data: x\r\n\r\n");
    // This CR ends a non-blank line: the LF after it is part of the open event, and the event is
    // not over until its blank line.
    let mut sink = EventSink::new(&mut out);
    events.feed(b"\n", &mut sink).unwrap();
    assert_eq!(sink.events(), 0);
    let mut sink = EventSink::new(&mut out);
    events.feed(b"\r\n", &mut sink).unwrap();
    assert_eq!(sink.events(), 1);
    assert_eq!(out, b"data: x\r\n\r\ndata: y\r\n\r\n");
}

#[test]
fn a_partial_event_is_held_and_never_passed_on() {
    let complete = b"data: a\r\n\r\n";
    let mut input = complete.to_vec();
    input.extend_from_slice(b"event: messages\r\ndata: [{\"content\":\"cut");
    for_each_split(&input, |pieces| {
        let (out, counted, error) = run(DEFAULT_MAX_LINE, pieces);
        assert_eq!(error, None);
        assert_eq!(out, complete, "{pieces:?}");
        assert_eq!(counted, 1);
    });
    let mut events = RawEvents::new(DEFAULT_MAX_LINE);
    let mut out = Vec::new();
    events.feed(&input, &mut EventSink::new(&mut out)).unwrap();
    assert!(events.held_bytes() >= input.len() - complete.len());
}

#[test]
fn whole_events_in_one_input_are_not_copied() {
    let mut events = RawEvents::new(DEFAULT_MAX_LINE);
    let mut out = Vec::new();
    events
        .feed(LANGGRAPH, &mut EventSink::new(&mut out))
        .unwrap();
    assert_eq!(events.held_bytes(), 0);
    // A straddling event is held until it is complete, then freed.
    events
        .feed(b"data: spl", &mut EventSink::new(&mut out))
        .unwrap();
    assert!(events.held_bytes() > 0);
    events
        .feed(b"it\n\n", &mut EventSink::new(&mut out))
        .unwrap();
    assert_eq!(events.held_bytes(), 0);
    assert!(out.ends_with(b"data: split\n\n"));
}

#[test]
fn a_line_over_the_limit_is_an_error_after_the_events_before_it() {
    let limit = 16;
    let fits = b"data: 0123456789\n\n"; // a 16-byte line: at the limit, accepted
    let mut input = fits.to_vec();
    input.extend_from_slice(b"data: 01234567890\n\n");
    for_each_split(&input, |pieces| {
        let (out, counted, error) = run(limit, pieces);
        assert_eq!(error, Some(SseError::LineTooLong { limit }), "{pieces:?}");
        assert_eq!(out, fits);
        assert_eq!(counted, 1);
    });
    // Caught before its line end arrives: a line that never ends cannot grow without bound.
    let (_, _, error) = run(limit, &[b"data: 0123456789abcdef"]);
    assert_eq!(error, Some(SseError::LineTooLong { limit }));
}

#[test]
fn an_event_over_twice_the_limit_is_an_error_even_when_every_line_fits() {
    let limit = 16;
    // Three comment lines of 15 bytes and their line ends: 48 bytes, over 32.
    let input = b": 0123456789abc\n: 0123456789abc\n: 0123456789abc\n\n";
    for_each_split(input, |pieces| {
        let (out, _, error) = run(limit, pieces);
        assert_eq!(
            error,
            Some(SseError::EventTooLarge { limit: 2 * limit }),
            "{pieces:?}"
        );
        assert!(out.is_empty());
    });
    // Two such lines and the blank line: 33 bytes, one too many.
    let (_, _, error) = run(limit, &[b": 0123456789abc\n: 0123456789abc\n\n"]);
    assert_eq!(error, Some(SseError::EventTooLarge { limit: 2 * limit }));
    // 32 bytes exactly: accepted.
    let at_limit = b": 0123456789ab\n: 0123456789abc\n\n";
    assert_eq!(at_limit.len(), 32);
    let (out, counted, error) = run(limit, &[at_limit]);
    assert_eq!((out.as_slice(), counted, error), (&at_limit[..], 1, None));
}

/// An event over its limit with a line over the limit later in it: the error is the event's
/// however the stream is cut (it was the line's when the event came in one read, since the
/// event's size was only checked at its end or at the end of a read).
#[test]
fn the_limit_crossed_first_is_the_error_however_the_stream_is_cut() {
    let limit = 10;
    // Two lines of 8 bytes, then one of 15: the event passes 20 bytes at the third line's
    // third byte, before the line passes 10.
    let input = b"a:123456\nb:123456\nc:1234567890123\n\n";
    for_each_split(input, |pieces| {
        let (out, counted, error) = run(limit, pieces);
        assert_eq!(
            error,
            Some(SseError::EventTooLarge { limit: 2 * limit }),
            "{pieces:?}"
        );
        assert!(out.is_empty() && counted == 0);
    });
    // A line that is over first, in an event that later is too: the line's error.
    let input = b"a:1234567890123\nb:123456\nc:123456\n\n";
    for_each_split(input, |pieces| {
        let (_, _, error) = run(limit, pieces);
        assert_eq!(error, Some(SseError::LineTooLong { limit }), "{pieces:?}");
    });
}

/// The blank line that ends an event counts as one byte of its size, whatever its line end: an
/// event at twice the limit ending in CRLF is passed on whether or not a read ends between the
/// CR and the LF (it was refused when the CRLF came whole).
#[test]
fn an_event_at_the_limit_passes_however_its_crlf_is_cut() {
    let limit = 10;
    // 9 + 10 bytes of lines and the blank line: 20.
    let input = b"a:12345\r\nb:123456\r\n\r\n";
    for_each_split(input, |pieces| {
        let (out, counted, error) = run(limit, pieces);
        assert_eq!(error, None, "{pieces:?}");
        assert_eq!(out, input, "{pieces:?}");
        assert_eq!(counted, 1, "{pieces:?}");
    });
    let over = b"a:123456\r\nb:123456\r\n\r\n";
    for_each_split(over, |pieces| {
        let (_, _, error) = run(limit, pieces);
        assert_eq!(
            error,
            Some(SseError::EventTooLarge { limit: 2 * limit }),
            "{pieces:?}"
        );
    });
}
