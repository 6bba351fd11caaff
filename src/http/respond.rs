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

/// A complete JSON error response: `{"error":"<message>"}\n` with its length, and
/// `Retry-After` when the caller has one to pass on.
pub fn error_response(status: ErrorStatus, message: &str, retry_after: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 16);
    body.extend_from_slice(b"{\"error\":");
    crate::sse::push_json_string(&mut body, message);
    body.extend_from_slice(b"}\n");

    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status.code(), status.reason()).as_bytes());
    out.extend_from_slice(b"Content-Type: application/json\r\n");
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    if let Some(value) = retry_after.filter(|v| is_safe_header_value(v)) {
        out.extend_from_slice(format!("Retry-After: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
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

    #[test]
    fn success_head_is_the_go_daemons_119_bytes() {
        assert_eq!(SSE_HEAD.len(), 119);
    }

    #[test]
    fn error_response_is_complete_and_measured() {
        let response = error_response(ErrorStatus::ServiceUnavailable, "busy", Some("1"));
        let text = String::from_utf8(response).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
             Content-Length: 17\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{\"error\":\"busy\"}\n"
        );
    }

    #[test]
    fn retry_after_with_line_breaks_is_dropped() {
        let response = error_response(ErrorStatus::TooManyRequests, "slow down", Some("1\r\nX: y"));
        let text = String::from_utf8(response).unwrap();
        assert!(!text.contains("Retry-After"));
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
    }
}
