//! Responses written to clients: the fixed success head and complete error responses.

/// The success head, byte for byte what the Go daemon sends (119 bytes). No length and no
/// chunking: the body ends when the daemon closes the socket.
pub const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n";

/// Statuses the daemon answers with before a stream's head was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    InternalServerError,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

impl ErrorStatus {
    pub fn code(self) -> u16 {
        match self {
            ErrorStatus::BadRequest => 400,
            ErrorStatus::PayloadTooLarge => 413,
            ErrorStatus::TooManyRequests => 429,
            ErrorStatus::InternalServerError => 500,
            ErrorStatus::BadGateway => 502,
            ErrorStatus::ServiceUnavailable => 503,
            ErrorStatus::GatewayTimeout => 504,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            ErrorStatus::BadRequest => "Bad Request",
            ErrorStatus::PayloadTooLarge => "Payload Too Large",
            ErrorStatus::TooManyRequests => "Too Many Requests",
            ErrorStatus::InternalServerError => "Internal Server Error",
            ErrorStatus::BadGateway => "Bad Gateway",
            ErrorStatus::ServiceUnavailable => "Service Unavailable",
            ErrorStatus::GatewayTimeout => "Gateway Timeout",
        }
    }
}

/// Names a custom header may not take (SPEC §2 rule 4): the success head's own headers, and
/// those that would change how the body is framed or decoded.
const BLOCKED: [&str; 7] = [
    "Content-Type",
    "Cache-Control",
    "Connection",
    "X-Accel-Buffering",
    "Transfer-Encoding",
    "Content-Length",
    "Content-Encoding",
];

/// Why a header cannot be added to a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRefusal {
    /// The name is not an HTTP token.
    BadName,
    /// The name is one the daemon's heads set themselves, or one about the body's framing.
    Blocked,
    /// The value has a control character (other than HTAB) or DEL: it could end the line.
    BadValue,
}

/// Extra header lines for a response head (a handoff's `response_headers`, SPEC §2), in order.
/// Only [`CustomHeaders::push`] adds one, and it refuses whatever could break the head or
/// contradict it, so every head written with these is well formed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders {
    lines: Vec<(String, String)>,
}

/// No extra headers, for heads that carry none.
pub static NO_HEADERS: CustomHeaders = CustomHeaders { lines: Vec::new() };

impl CustomHeaders {
    /// Whether `name: value` may be added to a head (the same rules [`CustomHeaders::push`]
    /// applies).
    pub fn check(name: &str, value: &str) -> Result<(), HeaderRefusal> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HeaderRefusal::BadName);
        }
        if BLOCKED.iter().any(|b| b.eq_ignore_ascii_case(name)) {
            return Err(HeaderRefusal::Blocked);
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeaderRefusal::BadValue);
        }
        Ok(())
    }

    /// Adds `name: value` after the others. The value is written as given: trimming is the
    /// caller's policy.
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), HeaderRefusal> {
        CustomHeaders::check(name, value)?;
        self.lines.push((name.to_string(), value.to_string()));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The bytes these lines take in a head: `name: value\r\n` each.
    pub fn line_bytes(&self) -> usize {
        self.lines.iter().map(|(n, v)| line_len(n, v)).sum()
    }

    /// Appends the lines, leaving out one named `except` (ASCII case-insensitively).
    fn write(&self, out: &mut Vec<u8>, except: Option<&str>) {
        for (name, value) in &self.lines {
            if except.is_some_and(|e| e.eq_ignore_ascii_case(name)) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The length of the head line `name: value\r\n`.
pub fn line_len(name: &str, value: &str) -> usize {
    name.len() + value.len() + 4
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Appends the success head with `headers` before its blank line: exactly [`SSE_HEAD`] when
/// there are none.
pub fn write_success_head(out: &mut Vec<u8>, headers: &CustomHeaders) {
    let (lines, blank) = SSE_HEAD.split_at(SSE_HEAD.len() - 2);
    out.extend_from_slice(lines);
    headers.write(out, None);
    out.extend_from_slice(blank);
}

/// A complete JSON error response: `{"error":"<message>"}\n` with its length, and
/// `Retry-After` when the caller has one to pass on.
pub fn error_response(status: ErrorStatus, message: &str, retry_after: Option<&str>) -> Vec<u8> {
    error_response_with_headers(status, message, retry_after, &CustomHeaders::default())
}

/// [`error_response`] with custom headers (SPEC §3.3): after `Connection` and `Retry-After`; a
/// custom `Retry-After` is left out when the response carries its own.
pub fn error_response_with_headers(
    status: ErrorStatus,
    message: &str,
    retry_after: Option<&str>,
    headers: &CustomHeaders,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 16);
    body.extend_from_slice(b"{\"error\":");
    crate::sse::push_json_string(&mut body, message);
    body.extend_from_slice(b"}\n");

    let mut out = Vec::with_capacity(body.len() + 160 + headers.line_bytes());
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status.code(), status.reason()).as_bytes());
    out.extend_from_slice(b"Content-Type: application/json\r\n");
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"Connection: close\r\n");
    let retry_after = retry_after.filter(|v| is_safe_header_value(v));
    if let Some(value) = retry_after {
        out.extend_from_slice(format!("Retry-After: {value}\r\n").as_bytes());
    }
    headers.write(&mut out, retry_after.map(|_| "Retry-After"));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

/// A value passed through from elsewhere must not be able to inject header lines.
fn is_safe_header_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> CustomHeaders {
        let mut headers = CustomHeaders::default();
        for (name, value) in lines {
            headers.push(name, value).unwrap();
        }
        headers
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn success_head_is_the_go_daemons_119_bytes() {
        assert_eq!(SSE_HEAD.len(), 119);
        let mut out = b"before".to_vec();
        write_success_head(&mut out, &CustomHeaders::default());
        assert_eq!(&out[..6], b"before");
        assert_eq!(&out[6..], SSE_HEAD);
    }

    #[test]
    fn custom_headers_go_before_the_blank_line_of_the_success_head() {
        let mut out = Vec::new();
        let custom = headers(&[("X-Request-Id", "abc-123"), ("x-b", "caf\u{e9}\tz")]);
        write_success_head(&mut out, &custom);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
             Connection: close\r\nX-Accel-Buffering: no\r\nX-Request-Id: abc-123\r\n\
             x-b: caf\u{e9}\tz\r\n\r\n"
        );
        assert_eq!(custom.line_bytes(), 23 + 14);
        assert_eq!(custom.len(), 2);
    }

    #[test]
    fn error_response_is_complete_and_measured() {
        let response = error_response(ErrorStatus::ServiceUnavailable, "busy", Some("1"));
        assert_eq!(
            text(response),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
             Content-Length: 17\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{\"error\":\"busy\"}\n"
        );
    }

    #[test]
    fn error_response_carries_custom_headers_after_retry_after_but_never_a_second_one() {
        let custom = headers(&[("Retry-After", "9"), ("X-Id", "r"), ("retry-after", "8")]);
        let response = error_response_with_headers(
            ErrorStatus::ServiceUnavailable,
            "busy",
            Some("1"),
            &custom,
        );
        assert_eq!(
            text(response),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
             Content-Length: 17\r\nConnection: close\r\nRetry-After: 1\r\nX-Id: r\r\n\r\n\
             {\"error\":\"busy\"}\n"
        );
        // Without a Retry-After of its own, the response has nothing to contradict.
        let response = error_response_with_headers(ErrorStatus::BadGateway, "down", None, &custom);
        assert_eq!(
            text(response),
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n\
             Content-Length: 17\r\nConnection: close\r\nRetry-After: 9\r\nX-Id: r\r\n\
             retry-after: 8\r\n\r\n{\"error\":\"down\"}\n"
        );
    }

    #[test]
    fn retry_after_with_line_breaks_is_dropped() {
        let response = error_response(ErrorStatus::TooManyRequests, "slow down", Some("1\r\nX: y"));
        let text = text(response);
        assert!(!text.contains("Retry-After"));
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        // Then a custom one is not contradicting anything.
        let custom = headers(&[("Retry-After", "5")]);
        let response = error_response_with_headers(
            ErrorStatus::TooManyRequests,
            "slow down",
            Some("1\r\nX: y"),
            &custom,
        );
        assert!(String::from_utf8(response)
            .unwrap()
            .contains("\r\nRetry-After: 5\r\n"));
    }

    #[test]
    fn only_safe_headers_can_be_added() {
        for name in [
            "X Bad",
            "X:C",
            "",
            "X-\u{e9}",
            "Content-Type ",
            "X\r\nY",
            "(x)",
            "a/b",
        ] {
            assert_eq!(
                CustomHeaders::check(name, "v"),
                Err(HeaderRefusal::BadName),
                "{name:?}"
            );
        }
        for name in [
            "Content-Type",
            "CONTENT-LENGTH",
            "content-encoding",
            "Transfer-Encoding",
            "Cache-Control",
            "Connection",
            "x-accel-buffering",
        ] {
            assert_eq!(
                CustomHeaders::check(name, "v"),
                Err(HeaderRefusal::Blocked),
                "{name}"
            );
        }
        for value in ["a\u{1}b", "a\nb", "a\rb", "a\u{7f}b", "\0"] {
            assert_eq!(
                CustomHeaders::check("X-V", value),
                Err(HeaderRefusal::BadValue),
                "{value:?}"
            );
        }
        for (name, value) in [
            ("X-Tab", "a\tb"),
            ("X-Empty", ""),
            ("X-Utf8", "caf\u{e9}"),
            ("!#$%&'*+-.^_`|~09azAZ", "v"),
            ("Retry-After", "1"),
        ] {
            assert_eq!(CustomHeaders::check(name, value), Ok(()), "{name}");
        }
        let mut custom = CustomHeaders::default();
        assert_eq!(custom.push("X\nY", "v"), Err(HeaderRefusal::BadName));
        assert!(custom.is_empty());
    }
}
