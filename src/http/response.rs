//! Upstream response heads: parsed from the bytes received so far, keeping only what the daemon
//! acts on.
//!
//! The I/O side appends what it reads to one buffer and calls [`parse_head`] on all of it after
//! every read. `Incomplete` means read more; `Complete(head, len)` means the body starts at
//! `len`; an error means the upstream is broken (the client gets 502) and the connection must be
//! closed, never pooled.
//!
//! Interim `1xx` heads (`100 Continue`, `103 Early Hints`) are skipped: `len` covers them too.
//! Framing is decided strictly, because a response we frame wrongly would poison a pooled
//! connection for the next request: `Content-Length` together with `chunked`, two different
//! lengths, or a transfer coding we cannot decode are errors, not guesses.

use std::fmt;

/// The largest head accepted, interim heads included.
pub const MAX_HEAD: usize = 16 * 1024;
/// Header lines per head; more is an error like an oversized head.
pub const MAX_HEADERS: usize = 64;
/// `Retry-After` is passed to clients; anything longer than a date is not a real value.
const MAX_RETRY_AFTER: usize = 64;
/// `Content-Type` is only looked at, never passed on; a bound keeps a hostile one small.
const MAX_CONTENT_TYPE: usize = 256;
/// `Content-Encoding` is only looked at and logged; codings past this length are not kept.
const MAX_CONTENT_ENCODING: usize = 256;

/// What the daemon needs from a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// For logs only; lossily decoded.
    pub reason: String,
    /// `None`: no `Content-Length` header.
    pub content_length: Option<u64>,
    /// The body is chunked (`Transfer-Encoding: chunked`).
    pub chunked: bool,
    /// The server will close the connection after this response: `Connection: close`, or
    /// HTTP/1.0 without `Connection: keep-alive`. Such a connection never returns to the pool.
    pub connection_close: bool,
    /// The raw `Retry-After` value, when it is printable ASCII of at most 64 bytes (it is passed
    /// through to clients, so anything else is dropped).
    pub retry_after: Option<String>,
    /// The raw `Content-Type` value, when it is UTF-8 of at most 256 bytes.
    pub content_type: Option<String>,
    /// The content codings other than `identity` (`gzip`, say), comma-separated, when the body
    /// has any: the daemon cannot read such a body (it asks for `identity`). For logs, lossily
    /// decoded and cut to at most 256 bytes.
    pub content_encoding: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadParse {
    /// The head has not ended yet and is under the limits: read more.
    Incomplete,
    /// The head, and how many bytes it (and any interim heads before it) took.
    Complete(Head, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not an HTTP/1.x response head; httparse's reason.
    Malformed(String),
    /// The head is over [`MAX_HEAD`] bytes.
    TooLarge,
    /// The head has over [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// `Content-Length` is not a number, or two of them differ.
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding: chunked`: the length is ambiguous.
    LengthAndChunked,
    /// A transfer coding other than `chunked` (we never ask for one).
    UnsupportedTransferEncoding,
    /// `101 Switching Protocols`: we never ask for an upgrade.
    UnexpectedUpgrade,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Malformed(reason) => {
                write!(f, "the upstream response head is malformed ({reason})")
            }
            HeadError::TooLarge => write!(
                f,
                "the upstream response head is over {} KiB",
                MAX_HEAD / 1024
            ),
            HeadError::TooManyHeaders => write!(
                f,
                "the upstream response head has over {MAX_HEADERS} header lines"
            ),
            HeadError::BadContentLength => write!(
                f,
                "the upstream response has an invalid or conflicting Content-Length"
            ),
            HeadError::LengthAndChunked => write!(
                f,
                "the upstream response has both Content-Length and chunked encoding"
            ),
            HeadError::UnsupportedTransferEncoding => write!(
                f,
                "the upstream response uses a transfer coding other than chunked"
            ),
            HeadError::UnexpectedUpgrade => {
                write!(f, "the upstream switched protocols without being asked")
            }
        }
    }
}

impl std::error::Error for HeadError {}

/// Parses the bytes received so far. Pass the whole buffer each time.
pub fn parse_head(received: &[u8]) -> Result<HeadParse, HeadError> {
    let mut start = 0;
    loop {
        match parse_one(received, start)? {
            One::Incomplete => return Ok(HeadParse::Incomplete),
            One::Interim(end) => start = end,
            One::Final(head, end) => return Ok(HeadParse::Complete(head, end)),
        }
    }
}

enum One {
    Incomplete,
    /// A `1xx` head ending at this offset.
    Interim(usize),
    Final(Head, usize),
}

/// Parses the head that starts at `start`, within the overall limit.
fn parse_one(received: &[u8], start: usize) -> Result<One, HeadError> {
    let bounded = &received[start..received.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bounded) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if received.len() < MAX_HEAD => return Ok(One::Incomplete),
        Ok(httparse::Status::Partial) => return Err(HeadError::TooLarge),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(other) => return Err(HeadError::Malformed(other.to_string())),
    };
    // httparse fills these in whenever it reports Complete.
    let status = response.code.unwrap_or(0);
    let version = response.version.unwrap_or(1);
    match status {
        101 => return Err(HeadError::UnexpectedUpgrade),
        100..=199 => return Ok(One::Interim(start + len)),
        _ => {}
    }

    let mut head = Head {
        status,
        reason: response.reason.unwrap_or("").to_string(),
        content_length: None,
        chunked: false,
        connection_close: version == 0,
        retry_after: None,
        content_type: None,
        content_encoding: None,
    };
    let mut transfer_encoding = false;
    for header in response.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            content_length(&mut head.content_length, value)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            head.chunked = transfer_codings(head.chunked, value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in tokens(value) {
                if option.eq_ignore_ascii_case(b"close") {
                    head.connection_close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    head.connection_close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            head.retry_after = std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= MAX_RETRY_AFTER
                        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
                })
                .map(str::to_string);
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = std::str::from_utf8(value)
                .ok()
                .filter(|v| v.len() <= MAX_CONTENT_TYPE)
                .map(|v| v.trim().to_string());
        } else if name.eq_ignore_ascii_case("content-encoding") {
            content_codings(&mut head.content_encoding, value);
        }
    }
    if transfer_encoding && !head.chunked {
        return Err(HeadError::UnsupportedTransferEncoding);
    }
    if head.chunked && head.content_length.is_some() {
        return Err(HeadError::LengthAndChunked);
    }
    Ok(One::Final(head, start + len))
}

/// Reads one `Content-Length` value into `seen`. A list of equal values (`5, 5`, which some
/// proxies produce by merging) counts as one; any disagreement is an error.
fn content_length(seen: &mut Option<u64>, value: &[u8]) -> Result<(), HeadError> {
    let mut any = false;
    for item in tokens(value) {
        any = true;
        if !item.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::BadContentLength);
        }
        let parsed = std::str::from_utf8(item)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(HeadError::BadContentLength)?;
        match seen {
            Some(previous) if *previous != parsed => return Err(HeadError::BadContentLength),
            _ => *seen = Some(parsed),
        }
    }
    if any {
        Ok(())
    } else {
        Err(HeadError::BadContentLength)
    }
}

/// Folds one `Transfer-Encoding` value into "is the body chunked". `chunked` must be the last
/// coding and the only real one; `identity` (obsolete) means nothing and is let through.
fn transfer_codings(chunked_before: bool, value: &[u8]) -> Result<bool, HeadError> {
    let mut chunked = chunked_before;
    for coding in tokens(value) {
        if chunked {
            // Anything after `chunked`, including a second `chunked`, is not HTTP/1.1.
            return Err(HeadError::UnsupportedTransferEncoding);
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked = true;
        } else if !coding.eq_ignore_ascii_case(b"identity") {
            return Err(HeadError::UnsupportedTransferEncoding);
        }
    }
    Ok(chunked)
}

/// Adds the codings of one `Content-Encoding` value other than `identity` to `seen`, which
/// never grows past `MAX_CONTENT_ENCODING` bytes: a coding that does not fit whole is cut at a
/// character boundary (a hostile upstream can send one as long as the head, and lossy decoding
/// triples invalid bytes), and nothing is added once it is full.
fn content_codings(seen: &mut Option<String>, value: &[u8]) {
    for coding in tokens(value) {
        if coding.eq_ignore_ascii_case(b"identity") {
            continue;
        }
        let all = seen.get_or_insert_with(String::new);
        let separator = if all.is_empty() { "" } else { ", " };
        let room = MAX_CONTENT_ENCODING.saturating_sub(all.len() + separator.len());
        if room == 0 {
            return;
        }
        let coding = String::from_utf8_lossy(coding);
        let mut end = coding.len().min(room);
        while !coding.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            return;
        }
        all.push_str(separator);
        all.push_str(&coding[..end]);
    }
}

/// The non-empty, trimmed items of a comma-separated header value.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNKED_OK: &[u8] = b"HTTP/1.1 200 OK\r\ndate: Thu, 26 Nov 2026 13:10:28 GMT\r\n\
        server: uvicorn\r\ncache-control: no-cache\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
        transfer-encoding: chunked\r\n\r\ndata: {}";

    fn complete(input: &[u8]) -> (Head, usize) {
        match parse_head(input) {
            Ok(HeadParse::Complete(head, len)) => (head, len),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn chunked_event_stream_head() {
        let (head, len) = complete(CHUNKED_OK);
        assert_eq!(&CHUNKED_OK[len..], b"data: {}");
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert!(head.chunked);
        assert_eq!(head.content_length, None);
        assert!(!head.connection_close);
        assert_eq!(
            head.content_type.as_deref(),
            Some("text/event-stream; charset=utf-8")
        );
    }

    #[test]
    fn every_prefix_is_incomplete_until_the_blank_line() {
        let (_, len) = complete(CHUNKED_OK);
        for end in 0..len {
            assert_eq!(
                parse_head(&CHUNKED_OK[..end]),
                Ok(HeadParse::Incomplete),
                "{end}"
            );
        }
    }

    #[test]
    fn rate_limit_head_keeps_retry_after() {
        let input = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\nretry-after-ms: 1000\r\n\
            content-length: 112\r\ncontent-type: application/json\r\n\r\n";
        let (head, len) = complete(input);
        assert_eq!(len, input.len());
        assert_eq!(head.status, 429);
        assert_eq!(head.retry_after.as_deref(), Some("1"));
        assert_eq!(head.content_length, Some(112));
    }

    #[test]
    fn unusable_retry_after_values_are_dropped() {
        let long = format!("HTTP/1.1 429 x\r\nRetry-After: {}\r\n\r\n", "9".repeat(65));
        assert_eq!(complete(long.as_bytes()).0.retry_after, None);
        let high = b"HTTP/1.1 429 x\r\nRetry-After: \xc3\xa9\r\n\r\n";
        assert_eq!(complete(high).0.retry_after, None);
        let date = b"HTTP/1.1 429 x\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n";
        assert_eq!(
            complete(date).0.retry_after.as_deref(),
            Some("Fri, 31 Dec 1999 23:59:59 GMT")
        );
    }

    #[test]
    fn connection_close_rules() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\n\r\n";
        assert!(complete(close).0.connection_close);
        let old = b"HTTP/1.0 200 OK\r\n\r\n";
        assert!(complete(old).0.connection_close);
        let old_kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n";
        assert!(!complete(old_kept).0.connection_close);
    }

    #[test]
    fn interim_heads_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (head, len) = complete(input);
        assert_eq!(head.status, 200);
        assert_eq!(&input[len..], b"ok");
        assert_eq!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"),
            Ok(HeadParse::Incomplete)
        );
    }

    #[test]
    fn framing_conflicts_are_errors() {
        let cases: [(&[u8], HeadError); 8] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::LengthAndChunked,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                HeadError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
                HeadError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                HeadError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                HeadError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HeadError::UnsupportedTransferEncoding,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::UnsupportedTransferEncoding,
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                HeadError::UnexpectedUpgrade,
            ),
        ];
        for (input, error) in cases {
            assert_eq!(
                parse_head(input),
                Err(error),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn content_codings_other_than_identity_are_kept() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\n\r\n";
        assert_eq!(complete(plain).0.content_encoding, None);
        assert_eq!(complete(CHUNKED_OK).0.content_encoding, None);
        let gzip = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n\r\n";
        assert_eq!(complete(gzip).0.content_encoding.as_deref(), Some("gzip"));
        let several = b"HTTP/1.1 200 OK\r\nContent-Encoding: identity, br\r\n\
            Content-Encoding: GZIP\r\n\r\n";
        assert_eq!(
            complete(several).0.content_encoding.as_deref(),
            Some("br, GZIP")
        );
        let long = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: {}\r\n\r\n",
            vec!["x-coding-name"; 100].join(",")
        );
        let kept = complete(long.as_bytes()).0.content_encoding.unwrap();
        assert!(kept.len() <= MAX_CONTENT_ENCODING, "{kept}");
        assert!(kept.starts_with("x-coding-name, x-coding-name"), "{kept}");
    }

    /// One coding longer than the bound, or one that lossy decoding makes three times longer
    /// (each invalid byte becomes a 3-byte U+FFFD), is cut to the bound, never kept whole.
    #[test]
    fn one_long_coding_is_cut_to_the_bound() {
        let mut whole = b"HTTP/1.1 200 OK\r\nContent-Encoding: ".to_vec();
        whole.extend_from_slice(&[b'x'; 600]);
        whole.extend_from_slice(b"\r\n\r\n");
        let kept = complete(&whole).0.content_encoding.unwrap();
        assert_eq!(kept, "x".repeat(MAX_CONTENT_ENCODING));

        let mut invalid = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, ".to_vec();
        invalid.extend_from_slice(&[0xff; 200]);
        invalid.extend_from_slice(b"\r\n\r\n");
        let kept = complete(&invalid).0.content_encoding.unwrap();
        assert!(kept.len() <= MAX_CONTENT_ENCODING, "{} bytes", kept.len());
        assert!(kept.starts_with("gzip, \u{fffd}"), "{kept}");
        assert_eq!(kept.len(), "gzip, ".len() + 250 / 3 * 3);
    }

    #[test]
    fn equal_lengths_are_one_length() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n";
        assert_eq!(complete(input).0.content_length, Some(5));
    }

    #[test]
    fn limits() {
        let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
        // Exactly at the limit without an end is already too large: there is no room left.
        assert_eq!(parse_head(&big[..MAX_HEAD]), Err(HeadError::TooLarge));

        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"HTTP/2 200\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }
}
