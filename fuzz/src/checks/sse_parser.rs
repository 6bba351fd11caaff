//! `sse::SseParser` on an upstream's event stream.
//!
//! - The items and the error are the same however the stream is cut into reads.
//! - Between reads the parser holds no more than its line limit allows
//!   ([`super::wire::sse_held_bound`]), and once a stream ends on a blank line it holds nothing.
//! - No item carries a line end, and none is longer than the limit allows.

use streaming_daemon::sse::{SseError, SseParser, DEFAULT_MAX_LINE};

use super::wire::{lengths, splits, sse_held_bound, Item};

/// The daemon's default, a limit real events fit in, and one most lines break.
const LIMITS: [usize; 3] = [DEFAULT_MAX_LINE, 1000, 40];

pub fn check(data: &[u8]) {
    for max_line in LIMITS {
        let whole = parse(&[data], max_line);
        if whole.error.is_none() && ends_on_blank_line(data) {
            assert_eq!(whole.held, 0, "a parser between events holds nothing");
        }
        for pieces in splits(data) {
            let split = parse(&pieces, max_line);
            assert_eq!(
                (&split.items, &split.error),
                (&whole.items, &whole.error),
                "max_line {max_line}: reads of {:?} differ from one read",
                lengths(&pieces)
            );
        }
    }
}

struct Parsed {
    items: Vec<Item>,
    error: Option<SseError>,
    /// `held_bytes` after the last read.
    held: usize,
}

fn parse(pieces: &[&[u8]], max_line: usize) -> Parsed {
    let mut parser = SseParser::new(max_line);
    let mut items = Vec::new();
    let mut error = None;
    for piece in pieces {
        if let Err(failed) = parser.feed(piece, &mut |item| items.push(Item::from(item))) {
            error = Some(failed);
            break;
        }
        assert!(
            parser.held_bytes() <= sse_held_bound(max_line),
            "max_line {max_line}: the parser holds {} bytes",
            parser.held_bytes()
        );
    }
    for item in &items {
        check_item(item, max_line);
    }
    Parsed {
        items,
        error,
        held: parser.held_bytes(),
    }
}

/// Lines are at most `max_line` bytes, and lossy decoding turns one bad byte into the three of
/// U+FFFD.
fn check_item(item: &Item, max_line: usize) {
    let longest = 3 * max_line;
    match item {
        Item::Event { name, data } => {
            assert!(!name.is_empty() && !name.contains(['\r', '\n']), "{item:?}");
            assert!(!data.contains('\r'), "data lines are joined with LF only");
            assert!(name.len() <= longest.max("message".len()) && data.len() <= longest);
        }
        Item::Comment(text) => {
            assert!(!text.contains(['\r', '\n']), "{item:?}");
            assert!(text.len() <= longest);
        }
    }
}

/// The stream's last line is an empty one, complete: the last event was dispatched and no line
/// is pending.
fn ends_on_blank_line(data: &[u8]) -> bool {
    let rest = match data {
        [rest @ .., b'\r', b'\n'] => rest,
        [rest @ .., b'\r' | b'\n'] => rest,
        _ => return false,
    };
    matches!(rest.last(), Some(b'\r' | b'\n'))
}
