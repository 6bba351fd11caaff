//! `http::parse_head` on an upstream's response head, as the reactor calls it: on all bytes
//! received so far, after every read.
//!
//! - A complete head is at most `MAX_HEAD` bytes, ends where it says (the same head from exactly
//!   those bytes), and every shorter prefix of it is still incomplete: no read before the last
//!   could have seen an error or another head.
//! - `Incomplete` only under `MAX_HEAD`; `TooLarge` only at or over it.
//! - The kept values stay within their bounds; framing is never ambiguous.
//! - A status the daemon does not relay becomes a complete, measured error response.

use streaming_daemon::backends::upstream::{status_outcome, StatusOutcome};
use streaming_daemon::http::response::MAX_HEAD;
use streaming_daemon::http::{parse_head, Head, HeadError, HeadParse};

use super::wire::{complete_response, cut_points, error_json};

/// Prefixes this short or shorter are all tried; longer ones at a few points.
const EVERY_PREFIX_UP_TO: usize = 256;

pub fn check(data: &[u8]) {
    let result = parse_head(data);
    match &result {
        Ok(HeadParse::Incomplete) => assert!(data.len() < MAX_HEAD, "incomplete at the limit"),
        Ok(HeadParse::Complete(head, len)) => {
            let len = *len;
            assert!(len <= data.len() && len <= MAX_HEAD, "head of {len} bytes");
            assert_eq!(parse_head(&data[..len]), result, "the head ends at {len}");
            let prefixes: Vec<usize> = if len <= EVERY_PREFIX_UP_TO {
                (0..len).collect()
            } else {
                let mut some = cut_points(data, len - 1, 4);
                some.push(len - 1);
                some
            };
            for end in prefixes {
                assert_eq!(
                    parse_head(&data[..end]),
                    Ok(HeadParse::Incomplete),
                    "a prefix of {end} bytes of a {len}-byte head"
                );
            }
            check_head(head);
        }
        Err(HeadError::TooLarge) => assert!(data.len() >= MAX_HEAD, "too large under the limit"),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

fn check_head(head: &Head) {
    // Three digits, and interim (1xx) heads are skipped, never returned.
    assert!(
        head.status <= 999 && !(100..=199).contains(&head.status),
        "status {}",
        head.status
    );
    assert!(
        !(head.chunked && head.content_length.is_some()),
        "ambiguous framing"
    );
    if let Some(value) = &head.retry_after {
        assert!(!value.is_empty() && value.len() <= 64);
        assert!(
            value.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{value:?}"
        );
    }
    if let Some(value) = &head.content_type {
        assert!(value.len() <= 256);
    }
    if let Some(value) = &head.content_encoding {
        // Its doc: "for logs, lossily decoded and cut to at most 256 bytes".
        assert!(
            !value.is_empty() && value.len() <= 256,
            "a content coding of {} bytes",
            value.len()
        );
    }
    let outcome = status_outcome(head);
    match (&outcome, outcome.response()) {
        (StatusOutcome::Stream, None) => assert_eq!(head.status, 200),
        (
            StatusOutcome::Reject {
                status,
                message,
                retry_after,
            },
            Some(bytes),
        ) => {
            let response = complete_response(&bytes, false);
            assert_eq!(response.status, status.code());
            assert_eq!(&error_json(response.body), message);
            if let Some(value) = response.header("retry-after") {
                assert_eq!(Some(value), retry_after.as_deref().map(str::as_bytes));
            }
        }
        (outcome, response) => panic!("{outcome:?} with response {response:?}"),
    }
}
