//! The start of an upstream error response's body, collected for the log (SPEC §3.3: the
//! upstream's raw error body is logged, never sent, cut to 4 KiB).
//!
//! Sans-I/O, like the relay: the calling stage feeds it what it reads after a rejected head
//! (first the bytes that came with the head) until [`ErrorBody::feed`] says it has enough, the
//! connection ends, or its own short deadline passes; then it logs [`ErrorBody::excerpt`].
//! The body is decoded by its framing, so a chunked error reads as its text, not as chunk
//! sizes. At most [`EXCERPT_LIMIT`] bytes (and one more, to know it was cut) are held.

use super::excerpt::{excerpt, EXCERPT_LIMIT};
use crate::http::{Body, Head};

pub struct ErrorBody {
    body: Body,
    /// Decoded payload, at most `EXCERPT_LIMIT + 1` bytes.
    held: Vec<u8>,
    /// Nothing more is worth reading: the body ended or broke, or `held` is full.
    finished: bool,
}

impl ErrorBody {
    /// Collects the body `head` announces.
    pub fn new(head: &Head) -> ErrorBody {
        let body = Body::new(head);
        let finished = body.is_complete();
        ErrorBody {
            body,
            held: Vec::new(),
            finished,
        }
    }

    /// Takes the next bytes read after the head. True when reading can stop: the body ended
    /// by its framing, its framing broke, or enough is held for the log.
    pub fn feed(&mut self, input: &[u8]) -> bool {
        if self.finished {
            return true;
        }
        let mut decoded = Vec::new();
        let framed = self.body.feed(input, &mut decoded);
        let room = (EXCERPT_LIMIT + 1).saturating_sub(self.held.len());
        self.held
            .extend_from_slice(&decoded[..decoded.len().min(room)]);
        self.finished =
            framed.is_err() || self.body.is_complete() || self.held.len() > EXCERPT_LIMIT;
        self.finished
    }

    /// Whether reading can stop (as the last [`ErrorBody::feed`] said).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// What was collected, fit for a log line: cut to [`EXCERPT_LIMIT`] bytes (with `…` when
    /// there was more), keys redacted.
    pub fn excerpt(&self) -> String {
        excerpt(&self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, HeadParse};

    fn head(text: &str) -> Head {
        match parse_head(text.as_bytes()) {
            Ok(HeadParse::Complete(head, _)) => head,
            other => panic!("{other:?}"),
        }
    }

    const ERROR: &str = r#"{"error":{"message":"Incorrect API key provided: sk-abcdefgh1234","type":"invalid_request_error"}}"#;

    #[test]
    fn a_length_body_is_collected_across_reads_until_it_ends() {
        let mut body = ErrorBody::new(&head(&format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\n\r\n",
            ERROR.len()
        )));
        let (first, second) = ERROR.as_bytes().split_at(30);
        assert!(!body.feed(first));
        assert!(!body.is_finished());
        assert!(body.feed(second));
        assert_eq!(
            body.excerpt(),
            r#"{"error":{"message":"Incorrect API key provided: sk-<redacted>","type":"invalid_request_error"}}"#
        );
    }

    #[test]
    fn a_chunked_body_reads_as_its_text() {
        let mut body = ErrorBody::new(&head(
            "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n",
        ));
        assert!(!body.feed(b"6\r\nupstre\r\n"));
        assert!(body.feed(b"8\r\nam broke\r\n0\r\n\r\n"));
        assert_eq!(body.excerpt(), "upstream broke");
    }

    #[test]
    fn collecting_stops_past_the_limit_and_the_excerpt_says_it_was_cut() {
        let mut body = ErrorBody::new(&head("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
        let page = vec![b'x'; 1000];
        let mut reads = 0;
        while !body.feed(&page) {
            reads += 1;
            assert!(reads < 10, "a close-delimited body stops at the limit");
        }
        assert_eq!(body.excerpt(), format!("{}…", "x".repeat(EXCERPT_LIMIT)));
        assert!(body.feed(b"more"), "finished stays finished");
        assert!(body.held.len() <= EXCERPT_LIMIT + 1);
    }

    #[test]
    fn broken_framing_and_bodyless_statuses_finish_with_what_there_is() {
        let mut broken = ErrorBody::new(&head(
            "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n",
        ));
        assert!(broken.feed(b"4\r\noops\r\nzz\r\n"));
        assert_eq!(broken.excerpt(), "oops");
        let empty = ErrorBody::new(&head("HTTP/1.1 204 No Content\r\n\r\n"));
        assert!(empty.is_finished());
        assert_eq!(empty.excerpt(), "");
    }
}
