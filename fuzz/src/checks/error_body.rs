//! An upstream's error body as the operator's log sees it: `backends::upstream::ErrorBody`
//! (decoded, bounded) and `excerpt` (cut to 4 KiB, API keys redacted).
//!
//! An input that starts with `HTTP/` is the whole response; any other input is the body of a
//! close-delimited `500`.
//!
//! - The excerpt and whether collecting finished are the same however the body is cut.
//! - An excerpt is bounded, and no API key of the shapes it redacts is left in it whole.

use streaming_daemon::backends::upstream::{excerpt, ErrorBody, EXCERPT_LIMIT};
use streaming_daemon::http::{parse_head, Head, HeadParse};

use super::wire::{lengths, splits};

const ERROR_HEAD: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\n\r\n";

/// What `excerpt` redacts: a key after one of these prefixes, at the start of a word...
const KEY_PREFIXES: [&str; 3] = ["sk-", "lsv2_", "Bearer "];
/// ...of at least this many key characters.
const MIN_KEY: usize = 8;

pub fn check(data: &[u8]) {
    let response = if data.starts_with(b"HTTP/") {
        data.to_vec()
    } else {
        [ERROR_HEAD, data].concat()
    };
    let (head, body) = match parse_head(&response) {
        Ok(HeadParse::Complete(head, len)) => (head, &response[len..]),
        _ => return,
    };
    let whole = collect(&head, &[body]);
    for pieces in splits(body) {
        assert_eq!(
            collect(&head, &pieces),
            whole,
            "reads of {:?} differ from one read",
            lengths(&pieces)
        );
    }
    check_excerpt(&whole.0);
    check_excerpt(&excerpt(data));
}

fn collect(head: &Head, pieces: &[&[u8]]) -> (String, bool) {
    let mut body = ErrorBody::new(head);
    for piece in pieces {
        if body.feed(piece) {
            break;
        }
    }
    (body.excerpt(), body.is_finished())
}

fn check_excerpt(text: &str) {
    // Each redaction puts 10 bytes where at least 8 were; a cut adds "…".
    assert!(
        text.len() <= EXCERPT_LIMIT * 2,
        "an excerpt of {} bytes",
        text.len()
    );
    for prefix in KEY_PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let starts_word = !text[..at].ends_with(char::is_alphanumeric);
            let key = text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_*".contains(*c))
                .count();
            assert!(
                !starts_word || key < MIN_KEY,
                "a key left in the excerpt at {at}: {text:?}"
            );
        }
    }
}
