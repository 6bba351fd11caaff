use super::*;
use crate::splits::for_each_split;

/// An item copied out of the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Event(String, String),
    Comment(String),
}

fn event(name: &str, data: &str) -> Item {
    Item::Event(name.into(), data.into())
}

fn comment(text: &str) -> Item {
    Item::Comment(text.into())
}

fn parse(max_line: usize, pieces: &[&[u8]]) -> (Vec<Item>, Option<SseError>) {
    let mut parser = SseParser::new(max_line);
    let mut items = Vec::new();
    for piece in pieces {
        let fed = parser.feed(piece, &mut |item| {
            items.push(match item {
                SseItem::Event { name, data } => event(name, data),
                SseItem::Comment(text) => comment(text),
            })
        });
        if let Err(error) = fed {
            return (items, Some(error));
        }
    }
    (items, None)
}

/// `input` gives `expected` however it is cut.
fn assert_items(input: &[u8], expected: &[Item]) {
    for_each_split(input, |pieces| {
        let (items, error) = parse(DEFAULT_MAX_LINE, pieces);
        assert_eq!(error, None, "{pieces:?}");
        assert_eq!(items, expected, "{pieces:?}");
    });
}

#[test]
fn openai_style_stream() {
    let input = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
        data: {\"choices\":[]}\n\ndata: [DONE]\n\n";
    assert_items(
        input,
        &[
            event(
                "message",
                "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}",
            ),
            event("message", "{\"choices\":[]}"),
            event("message", "[DONE]"),
        ],
    );
}

#[test]
fn langgraph_style_stream_with_crlf_and_heartbeats() {
    let input = b"event: metadata\r\ndata: {\"run_id\":\"r1\",\"attempt\":1}\r\n\r\n\
        : heartbeat\r\n\r\n\
        event: messages\r\ndata: [{\"content\":\"woke up\",\"type\":\"ai\"},{}]\r\n\r\n";
    assert_items(
        input,
        &[
            event("metadata", "{\"run_id\":\"r1\",\"attempt\":1}"),
            comment("heartbeat"),
            event("messages", "[{\"content\":\"woke up\",\"type\":\"ai\"},{}]"),
        ],
    );
}

#[test]
fn all_three_line_ends_mean_the_same() {
    let expected = [event("a", "1\n2"), event("message", "3")];
    assert_items(b"event: a\ndata: 1\ndata: 2\n\ndata: 3\n\n", &expected);
    assert_items(
        b"event: a\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n",
        &expected,
    );
    assert_items(b"event: a\rdata: 1\rdata: 2\r\rdata: 3\r\r", &expected);
    assert_items(b"event: a\r\ndata: 1\rdata: 2\n\r\ndata: 3\n\r", &expected);
}

#[test]
fn crlf_split_between_feeds_is_one_line_end() {
    // Were the LF taken as a second line end, the blank line would dispatch "a" alone.
    let (items, error) = parse(DEFAULT_MAX_LINE, &[b"data: a\r", b"\ndata: b\n\n"]);
    assert_eq!(error, None);
    assert_eq!(items, [event("message", "a\nb")]);
    // An empty feed in between does not forget the CR.
    let (items, _) = parse(DEFAULT_MAX_LINE, &[b"data: a\r", b"", b"\ndata: b\n\n"]);
    assert_eq!(items, [event("message", "a\nb")]);
    // A lone CR followed by CR is two line ends.
    let (items, _) = parse(DEFAULT_MAX_LINE, &[b"data: a\r", b"\rdata: b\n\n"]);
    assert_eq!(items, [event("message", "a"), event("message", "b")]);
}

#[test]
fn comments_do_not_disturb_the_event_around_them() {
    assert_items(
        b"data: a\n:keep\n: one space\n:  two spaces\ndata: b\n\n",
        &[
            comment("keep"),
            comment("one space"),
            comment(" two spaces"),
            event("message", "a\nb"),
        ],
    );
    assert_items(b":\n\n", &[comment("")]);
}

#[test]
fn field_rules() {
    assert_items(
        b"data:  two spaces\ndata:none\ndata\ndata:\n\n",
        &[event("message", " two spaces\nnone\n\n")],
    );
    // id, retry and unknown fields are ignored; `event:` empty means message.
    assert_items(
        b"id: 7\nretry: 100\nfoo: bar\nevent:\ndata: x\n\n",
        &[event("message", "x")],
    );
    // The last event line wins; names do not leak into the next event.
    assert_items(
        b"event: a\nevent: b\ndata: 1\n\ndata: 2\n\n",
        &[event("b", "1"), event("message", "2")],
    );
    // `Data` is not `data`.
    assert_items(b"Data: x\n\n", &[]);
}

#[test]
fn events_without_data_are_not_dispatched() {
    assert_items(
        b"event: ping\n\nevent: x\nid: 1\n\ndata: after\n\n",
        &[event("message", "after")],
    );
    assert_items(b"data:\n\n", &[event("message", "")]);
    assert_items(b"\n\n\n", &[]);
}

#[test]
fn an_event_without_its_blank_line_is_not_dispatched() {
    assert_items(b"data: a\n\ndata: cut", &[event("message", "a")]);
    assert_items(b"data: a\n\ndata: b\n", &[event("message", "a")]);
}

#[test]
fn bom_only_at_the_start() {
    assert_items(b"\xEF\xBB\xBFdata: a\n\n", &[event("message", "a")]);
    assert_items(
        b"data: a\n\n\xEF\xBB\xBFdata: b\n\n",
        &[event("message", "a")],
    );
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_items(b"data: a\xFFb\n\n", &[event("message", "a\u{FFFD}b")]);
    assert_items("data: é😀\n\n".as_bytes(), &[event("message", "é😀")]);
}

#[test]
fn line_limit_holds_however_the_line_arrives() {
    let fits = [b"data: ".as_slice(), &[b'x'; 10], b"\n\n"].concat();
    for_each_split(&fits, |pieces| {
        let (items, error) = parse(16, pieces);
        assert_eq!(error, None);
        assert_eq!(items, [event("message", "xxxxxxxxxx")]);
    });
    let long = [b"data: ".as_slice(), &[b'x'; 11], b"\n\n"].concat();
    for_each_split(&long, |pieces| {
        let (items, error) = parse(16, pieces);
        assert_eq!(
            error,
            Some(SseError::LineTooLong { limit: 16 }),
            "{pieces:?}"
        );
        assert!(items.is_empty());
    });
    // A line that never ends is refused as soon as it is too long, not when it ends.
    let (_, error) = parse(16, &[&[b'x'; 17]]);
    assert_eq!(error, Some(SseError::LineTooLong { limit: 16 }));
}

#[test]
fn event_data_limit_holds_however_the_event_arrives() {
    // 10 + 1 + 5 = 16 fits; one more byte does not.
    let fits = b"data: 0123456789\ndata: abcde\n\n";
    for_each_split(fits, |pieces| {
        assert_eq!(parse(16, pieces).1, None, "{pieces:?}");
    });
    let over = b"data: 0123456789\ndata: abcdef\n\n";
    for_each_split(over, |pieces| {
        assert_eq!(
            parse(16, pieces).1,
            Some(SseError::EventTooLarge { limit: 16 }),
            "{pieces:?}"
        );
    });
}

#[test]
fn nothing_is_held_between_events() {
    let mut parser = SseParser::new(DEFAULT_MAX_LINE);
    let mut count = 0;
    let mut emit = |_: SseItem<'_>| count += 1;
    parser.feed(b"event: a\ndata: first ha", &mut emit).unwrap();
    assert!(parser.line.capacity() > 0 && parser.name.capacity() > 0);
    parser.feed(b"lf\ndata: more\n", &mut emit).unwrap();
    assert!(parser.data.capacity() > 0);
    parser.feed(b"\n", &mut emit).unwrap();
    assert_eq!(
        (
            parser.line.capacity(),
            parser.name.capacity(),
            parser.data.capacity()
        ),
        (0, 0, 0)
    );
    // An event inside one input is never copied into the parser at all.
    parser
        .feed(b"event: b\ndata: x\n\n: c\n", &mut emit)
        .unwrap();
    assert_eq!(
        (
            parser.line.capacity(),
            parser.name.capacity(),
            parser.data.capacity()
        ),
        (0, 0, 0)
    );
    assert_eq!(count, 3);
}
