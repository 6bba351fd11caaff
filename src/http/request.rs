//! Requests the daemon sends upstream: one complete HTTP/1.1 request in one buffer, so that the
//! I/O side only has to write bytes until none are left.
//!
//! Every piece that ends up in the head is checked first. A value that could end a header line
//! (CR, LF) or confuse a parser (other control bytes, NUL) is refused, never cleaned up: a
//! request we cannot write exactly as asked is a request we do not send. `Host` and
//! `Content-Length` are written here and nowhere else, so a caller cannot frame a request twice.
//! `Accept-Encoding: identity` is written here too, on every request: the daemon decodes no
//! content coding, so it must never be sent a compressed body.

use std::fmt;

/// Header names the builder writes itself; passing them in is a caller bug.
const OWN_HEADERS: [&str; 4] = [
    "host",
    "accept-encoding",
    "content-length",
    "transfer-encoding",
];

/// Asks for the body as it is: a compressed one would be unreadable (and empty to the client).
const ACCEPT_IDENTITY: &str = "Accept-Encoding: identity\r\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The method is not an HTTP token.
    BadMethod,
    /// The target is not an origin-form path (`/…`) of visible ASCII.
    BadTarget,
    /// The header name is empty or not an HTTP token.
    BadHeaderName(String),
    /// The value of this header holds a line break or another control byte. The value itself is
    /// not kept: it may be a secret.
    BadHeaderValue(String),
    /// `Host`, `Accept-Encoding`, `Content-Length` and `Transfer-Encoding` are the builder's.
    ReservedHeader(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::BadMethod => write!(f, "the request method is not a valid HTTP token"),
            RequestError::BadTarget => write!(
                f,
                "the request path must start with '/' and hold only visible ASCII; \
                 check the API base URL"
            ),
            RequestError::BadHeaderName(name) => {
                write!(f, "{name:?} is not a valid HTTP header name")
            }
            RequestError::BadHeaderValue(name) => write!(
                f,
                "the value for the {name} header holds a line break or control character; \
                 it was refused rather than sent"
            ),
            RequestError::ReservedHeader(name) => write!(
                f,
                "the {name} header is written by the request builder and cannot be passed in"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// Writes `method target HTTP/1.1`, `Host`, `headers` in order, `Accept-Encoding: identity`,
/// `Content-Length` (always, so that even an empty body is framed) and `body` into one buffer.
pub fn build_request(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<u8>, RequestError> {
    let mut out = build_request_head(method, target, host, headers, body.len() as u64, body.len())?;
    out.extend_from_slice(body);
    Ok(out)
}

/// The head alone, for a body of `content_length` bytes written after it (streamed); `room`
/// more bytes are reserved in the buffer.
pub fn build_request_head(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    content_length: u64,
    room: usize,
) -> Result<Vec<u8>, RequestError> {
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(RequestError::BadMethod);
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::BadTarget);
    }
    check_value("Host", host)?;
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(RequestError::BadHeaderName((*name).to_string()));
        }
        if OWN_HEADERS.iter().any(|own| name.eq_ignore_ascii_case(own)) {
            return Err(RequestError::ReservedHeader((*name).to_string()));
        }
        check_value(name, value)?;
    }

    let head_len: usize = method.len()
        + target.len()
        + host.len()
        + headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>()
        + ACCEPT_IDENTITY.len()
        + 64;
    let mut out = Vec::with_capacity(head_len + room);
    for piece in [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"] {
        out.extend_from_slice(piece.as_bytes());
    }
    for (name, value) in headers {
        for piece in [*name, ": ", *value, "\r\n"] {
            out.extend_from_slice(piece.as_bytes());
        }
    }
    out.extend_from_slice(ACCEPT_IDENTITY.as_bytes());
    out.extend_from_slice(format!("Content-Length: {content_length}\r\n\r\n").as_bytes());
    Ok(out)
}

/// RFC 9110 field values: visible characters, spaces and tabs; UTF-8 beyond ASCII passes (it is
/// opaque to HTTP), control bytes do not.
fn check_value(name: &str, value: &str) -> Result<(), RequestError> {
    let fine = value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if fine {
        Ok(())
    } else {
        Err(RequestError::BadHeaderValue(name.to_string()))
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_complete_and_measured() {
        let request = build_request(
            "POST",
            "/v1/chat/completions",
            "api.example.com",
            &[("Accept", "text/event-stream"), ("X-Empty", "")],
            b"{}",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\n\
             Accept: text/event-stream\r\nX-Empty: \r\nAccept-Encoding: identity\r\n\
             Content-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn line_breaks_in_values_are_refused_not_cleaned() {
        for value in ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b", "a\x7fb"] {
            let error =
                build_request("POST", "/", "h", &[("X-Test-Pattern", value)], b"").unwrap_err();
            assert_eq!(error, RequestError::BadHeaderValue("X-Test-Pattern".into()));
            assert!(!error.to_string().contains(value));
        }
        assert_eq!(
            build_request("POST", "/", "h\r\nX: y", &[], b"").unwrap_err(),
            RequestError::BadHeaderValue("Host".into())
        );
    }

    #[test]
    fn tabs_and_utf8_in_values_pass() {
        let request = build_request("POST", "/", "h", &[("X-Note", "a\tb é")], b"").unwrap();
        assert!(String::from_utf8(request)
            .unwrap()
            .contains("X-Note: a\tb é\r\n"));
    }

    #[test]
    fn bad_names_methods_and_targets_are_refused() {
        let bad_name = build_request("POST", "/", "h", &[("X Bad", "v")], b"");
        assert_eq!(
            bad_name.unwrap_err(),
            RequestError::BadHeaderName("X Bad".into())
        );
        let empty_name = build_request("POST", "/", "h", &[("", "v")], b"");
        assert_eq!(
            empty_name.unwrap_err(),
            RequestError::BadHeaderName("".into())
        );
        assert_eq!(
            build_request("PO ST", "/", "h", &[], b"").unwrap_err(),
            RequestError::BadMethod
        );
        for target in ["v1/chat", "/a b", "/a\r\n", ""] {
            assert_eq!(
                build_request("POST", target, "h", &[], b"").unwrap_err(),
                RequestError::BadTarget
            );
        }
    }

    #[test]
    fn framing_headers_cannot_be_passed_in() {
        for name in [
            "Host",
            "accept-encoding",
            "content-length",
            "Transfer-Encoding",
        ] {
            assert_eq!(
                build_request("POST", "/", "h", &[(name, "1")], b"").unwrap_err(),
                RequestError::ReservedHeader(name.into())
            );
        }
    }
}
