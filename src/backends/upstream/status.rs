//! What the client gets for an upstream's response status (SPEC §3.3). Only a `200` event stream
//! is relayed; anything else becomes a complete error response before any success head, so that
//! the client sees a real HTTP status instead of an empty stream. A `200` whose body has a
//! content coding (`gzip`) is not readable either: the daemon asks for `identity` and decodes
//! none, and relaying it would give the client an empty stream.

use crate::http::{error_response, ErrorStatus, Head};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// `200` with a body to relay: write the success head and start a relay.
    Stream,
    /// Answer the client with [`StatusOutcome::response`] and close. The upstream connection may
    /// be pooled only if its body is read to the end first; closing it is always correct.
    Reject {
        status: ErrorStatus,
        /// For the client: what happened, never the upstream's body.
        message: String,
        /// The upstream's `Retry-After`, passed through on 429 only.
        retry_after: Option<String>,
    },
}

impl StatusOutcome {
    /// The complete error response for a `Reject`; `None` for `Stream`.
    pub fn response(&self) -> Option<Vec<u8>> {
        match self {
            StatusOutcome::Stream => None,
            StatusOutcome::Reject {
                status,
                message,
                retry_after,
            } => Some(error_response(*status, message, retry_after.as_deref())),
        }
    }
}

pub fn status_outcome(head: &Head) -> StatusOutcome {
    let code = head.status;
    let message = match code {
        200 if head.content_encoding.is_some() => {
            "the upstream API sent a compressed answer the daemon cannot read".to_string()
        }
        200 if is_not_a_stream(head.content_type.as_deref()) => {
            "the upstream API did not answer with an event stream".to_string()
        }
        200 => return StatusOutcome::Stream,
        429 => {
            return StatusOutcome::Reject {
                status: ErrorStatus::TooManyRequests,
                message: "the upstream API is rate limiting requests; retry later".to_string(),
                retry_after: head.retry_after.clone(),
            }
        }
        401 | 403 => format!(
            "the upstream API refused the daemon's credentials (HTTP {code}); \
             the operator must check the API key"
        ),
        404 => format!("the upstream API has no such endpoint or model (HTTP {code})"),
        400..=499 => format!("the upstream API rejected the request (HTTP {code})"),
        500..=599 => format!("the upstream API failed (HTTP {code})"),
        _ => format!("the upstream API gave an unexpected response (HTTP {code})"),
    };
    StatusOutcome::Reject {
        status: ErrorStatus::BadGateway,
        message,
        retry_after: None,
    }
}

/// A `200` that is plainly a whole document (an error page, a non-streamed completion) rather
/// than a stream. A missing or unusual type is given the benefit of the doubt: some compatible
/// servers label their streams loosely.
fn is_not_a_stream(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim();
    ["application/json", "text/html"]
        .iter()
        .any(|document| essence.eq_ignore_ascii_case(document))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, retry_after: Option<&str>, content_type: Option<&str>) -> Head {
        Head {
            status,
            reason: String::new(),
            content_length: None,
            chunked: true,
            connection_close: false,
            retry_after: retry_after.map(str::to_string),
            content_type: content_type.map(str::to_string),
            content_encoding: None,
        }
    }

    fn rejected(outcome: &StatusOutcome) -> (u16, &str, Option<&str>) {
        match outcome {
            StatusOutcome::Reject {
                status,
                message,
                retry_after,
            } => (status.code(), message, retry_after.as_deref()),
            StatusOutcome::Stream => panic!("expected a rejection"),
        }
    }

    #[test]
    fn ok_event_streams_are_relayed() {
        for content_type in [
            Some("text/event-stream; charset=utf-8"),
            Some("text/event-stream"),
            Some("text/plain"),
            None,
        ] {
            assert_eq!(
                status_outcome(&head(200, None, content_type)),
                StatusOutcome::Stream
            );
            assert_eq!(StatusOutcome::Stream.response(), None);
        }
    }

    #[test]
    fn rate_limits_pass_through_with_retry_after() {
        let outcome = status_outcome(&head(429, Some("1"), Some("application/json")));
        assert_eq!(
            rejected(&outcome),
            (
                429,
                "the upstream API is rate limiting requests; retry later",
                Some("1")
            )
        );
        let response = String::from_utf8(outcome.response().unwrap()).unwrap();
        assert!(response.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(response.contains("\r\nRetry-After: 1\r\n"));
        let without = status_outcome(&head(429, None, None));
        assert_eq!(rejected(&without).2, None);
    }

    #[test]
    fn other_failures_are_bad_gateway_without_retry_after() {
        let cases = [
            (401, "refused the daemon's credentials (HTTP 401)"),
            (403, "refused the daemon's credentials (HTTP 403)"),
            (404, "no such endpoint or model (HTTP 404)"),
            (400, "rejected the request (HTTP 400)"),
            (422, "rejected the request (HTTP 422)"),
            (500, "failed (HTTP 500)"),
            (503, "failed (HTTP 503)"),
            (204, "unexpected response (HTTP 204)"),
            (302, "unexpected response (HTTP 302)"),
        ];
        for (code, part) in cases {
            let outcome = status_outcome(&head(code, Some("5"), None));
            let (status, message, retry_after) = rejected(&outcome);
            assert_eq!(status, 502, "{code}");
            assert!(message.contains(part), "{code}: {message}");
            assert_eq!(retry_after, None, "{code}");
            let response = String::from_utf8(outcome.response().unwrap()).unwrap();
            assert!(response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
            assert!(!response.contains("Retry-After"));
        }
    }

    #[test]
    fn an_encoded_ok_is_a_bad_gateway_that_does_not_name_the_coding() {
        let mut encoded = head(200, None, Some("text/event-stream"));
        encoded.content_encoding = Some("x-secret-coding".to_string());
        let outcome = status_outcome(&encoded);
        assert_eq!(
            rejected(&outcome),
            (
                502,
                "the upstream API sent a compressed answer the daemon cannot read",
                None
            )
        );
        let response = String::from_utf8(outcome.response().unwrap()).unwrap();
        assert!(response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(!response.contains("x-secret-coding"));
        // An error status stays what it is, whatever its body's coding.
        let mut limited = head(429, Some("3"), None);
        limited.content_encoding = Some("gzip".to_string());
        assert_eq!(rejected(&status_outcome(&limited)).0, 429);
    }

    #[test]
    fn ok_documents_are_not_streams() {
        for content_type in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "text/html",
        ] {
            let outcome = status_outcome(&head(200, None, Some(content_type)));
            assert_eq!(
                rejected(&outcome),
                (
                    502,
                    "the upstream API did not answer with an event stream",
                    None
                )
            );
        }
    }
}
