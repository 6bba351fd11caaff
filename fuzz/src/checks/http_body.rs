//! `http::Body`, the length, close-delimited and chunked body decoder.
//!
//! An input that starts with `HTTP/` is a whole response: its head decides the framing. Any
//! other input is a chunked body (the framing with a grammar to break).
//!
//! - The payload, the bytes used, the end and the error are the same however the body is cut
//!   into reads.
//! - Bytes are left unused only once the body is complete; the payload is never longer than
//!   what it came in, nor than a `Content-Length`.
//! - A close-delimited body is the input itself; a chunked payload re-encoded as chunks decodes
//!   to itself.

use streaming_daemon::http::{parse_head, Body, BodyError, Head, HeadParse};

use super::wire::{cut_points, lengths, splits};

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

pub fn check(data: &[u8]) {
    let (head, body) = if data.starts_with(b"HTTP/") {
        match parse_head(data) {
            Ok(HeadParse::Complete(head, len)) => (head, &data[len..]),
            _ => return,
        }
    } else {
        (head_of(CHUNKED_HEAD), data)
    };
    let whole = decode(&head, &[body]);
    for pieces in splits(body) {
        assert_eq!(
            decode(&head, &pieces),
            whole,
            "reads of {:?} differ from one read",
            lengths(&pieces)
        );
    }

    assert!(whole.payload.len() <= body.len());
    let bodyless = head.status == 204 || head.status == 304;
    if bodyless {
        assert!(whole.complete && whole.payload.is_empty() && whole.used == 0);
    } else if head.chunked {
        if whole.complete {
            reencoded_decodes_to_itself(&head, &whole.payload);
        } else if whole.error.is_none() {
            assert_eq!(whole.eof, Err(BodyError::Cut), "a chunked body cut short");
        }
    } else if let Some(length) = head.content_length {
        assert!(whole.payload.len() as u64 <= length);
        assert_eq!(whole.complete, whole.payload.len() as u64 == length);
        assert_eq!(whole.eof.is_ok(), whole.complete);
    } else {
        assert_eq!(
            whole.payload, body,
            "a close-delimited body is the bytes as they came"
        );
        assert_eq!(whole.eof, Ok(()));
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    payload: Vec<u8>,
    /// Bytes of input used, up to the error if there is one.
    used: usize,
    complete: bool,
    error: Option<BodyError>,
    /// What EOF after the last read would say.
    eof: Result<(), BodyError>,
}

fn decode(head: &Head, pieces: &[&[u8]]) -> Decoded {
    let mut body = Body::new(head);
    let mut payload = Vec::new();
    let mut used = 0;
    let mut error = None;
    for piece in pieces {
        match body.feed(piece, &mut payload) {
            Ok(taken) => {
                assert!(taken <= piece.len());
                if taken < piece.len() {
                    assert!(body.is_complete(), "bytes left over before the end");
                }
                used += taken;
            }
            Err(failed) => {
                error = Some(failed);
                break;
            }
        }
        assert!(payload.len() <= used, "more payload than input");
    }
    let complete = body.is_complete();
    Decoded {
        payload,
        used: if error.is_some() { 0 } else { used },
        complete,
        error,
        eof: body.on_eof(),
    }
}

/// `payload` written as chunks cut where the payload's hash says, with an extension and a
/// trailer, decodes to `payload` using every byte.
fn reencoded_decodes_to_itself(head: &Head, payload: &[u8]) {
    let mut encoded = Vec::new();
    let mut start = 0;
    let mut points = cut_points(payload, payload.len(), 3);
    points.push(payload.len());
    for point in points {
        let chunk = &payload[start..point];
        if !chunk.is_empty() {
            encoded.extend_from_slice(format!("{:X};ext=1\r\n", chunk.len()).as_bytes());
            encoded.extend_from_slice(chunk);
            encoded.extend_from_slice(b"\r\n");
        }
        start = point;
    }
    encoded.extend_from_slice(b"0\r\nTrailer: x\r\n\r\n");
    let decoded = decode(head, &[&encoded]);
    assert_eq!(decoded.payload, payload, "re-encoded: {encoded:?}");
    assert!(decoded.complete && decoded.used == encoded.len() && decoded.error.is_none());
}

fn head_of(bytes: &[u8]) -> Head {
    match parse_head(bytes) {
        Ok(HeadParse::Complete(head, _)) => head,
        other => panic!("the fixed head does not parse: {other:?}"),
    }
}
