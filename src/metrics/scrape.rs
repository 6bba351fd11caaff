//! The scrape endpoint without its socket: parse a request head, build the whole response.
//!
//! The reactor owns the connection, its buffer and its 10 s deadline. It appends what it reads
//! and calls [`parse_request`] on all bytes so far; once that gives anything but `Incomplete`,
//! it calls [`respond`] with [`ScrapeParse::reply`], writes the response and closes. Every
//! response carries `Connection: close` and `Content-Length`, so the peer needs nothing else.
//!
//! | request | response |
//! |---|---|
//! | `GET /metrics` | 200, `text/plain; version=0.0.4; charset=utf-8`, the exposition |
//! | `GET /healthz` | 200, `application/json`, `{"status":"ok","active_streams":N,"active_connections":M}` |
//! | `HEAD` of either | the same head (length included), no body |
//! | `GET` or `HEAD` of another path | 404 |
//! | any other method | 405 with `Allow: GET, HEAD` |
//! | not HTTP/1.x | 400 |
//! | head over 8 KiB, or over 32 header lines | 431 |
//!
//! A query string is ignored for routing: `/metrics?x=1` is `/metrics`.

use super::process::ProcessStats;
use super::record::{Gauges, Metrics};
use std::io::Write;

/// The largest request head accepted; Prometheus sends a few hundred bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// Header lines parsed; more is answered 431 like an oversized head.
const MAX_HEADERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    /// Answered like GET, without the body: monitoring probes use it.
    Head,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Metrics,
    Healthz,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeParse {
    /// The head has not ended yet and is under the limit: read more.
    Incomplete,
    /// `head_len` bytes made the head; anything after it (a body) is ignored.
    Complete {
        method: Method,
        path: Path,
        head_len: usize,
    },
    BadRequest,
    TooLarge,
}

/// The answer to give, decided from the request alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Metrics { head_only: bool },
    Healthz { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
    HeadTooLarge,
}

/// What the responses show, lent by the reactor for the moment of responding.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Every worker's numbers, summed when rendered.
    pub metrics: &'a [&'a Metrics],
    pub gauges: Gauges,
    /// `None` when `/proc` could not be read: the `process_*` series are left out.
    pub process: Option<&'a ProcessStats>,
}

/// Parses the bytes received so far. Pass the whole buffer each time.
pub fn parse_request(received: &[u8]) -> ScrapeParse {
    let bounded = &received[..received.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bounded) {
        Ok(httparse::Status::Complete(head_len)) => ScrapeParse::Complete {
            method: match request.method {
                Some("GET") => Method::Get,
                Some("HEAD") => Method::Head,
                _ => Method::Other,
            },
            path: route(request.path.unwrap_or("")),
            head_len,
        },
        Ok(httparse::Status::Partial) if bounded.len() < MAX_HEAD => ScrapeParse::Incomplete,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            ScrapeParse::TooLarge
        }
        Err(_) => ScrapeParse::BadRequest,
    }
}

fn route(target: &str) -> Path {
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    match path {
        "/metrics" => Path::Metrics,
        "/healthz" => Path::Healthz,
        _ => Path::Unknown,
    }
}

impl ScrapeParse {
    /// The reply to send, or `None` while the head is incomplete.
    pub fn reply(self) -> Option<Reply> {
        match self {
            ScrapeParse::Incomplete => None,
            ScrapeParse::BadRequest => Some(Reply::BadRequest),
            ScrapeParse::TooLarge => Some(Reply::HeadTooLarge),
            ScrapeParse::Complete {
                method: Method::Other,
                ..
            } => Some(Reply::MethodNotAllowed),
            ScrapeParse::Complete { method, path, .. } => {
                let head_only = method == Method::Head;
                Some(match path {
                    Path::Metrics => Reply::Metrics { head_only },
                    Path::Healthz => Reply::Healthz { head_only },
                    Path::Unknown => Reply::NotFound,
                })
            }
        }
    }
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// Appends the complete response for `reply` to `out`.
pub fn respond(reply: Reply, snapshot: Snapshot<'_>, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    let (status, content_type, extra, head_only) = match reply {
        Reply::Metrics { head_only } => {
            super::render(
                snapshot.metrics,
                snapshot.gauges,
                snapshot.process,
                &mut body,
            );
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                "",
                head_only,
            )
        }
        Reply::Healthz { head_only } => {
            // Writing into a Vec cannot fail.
            let _ = write!(
                body,
                "{{\"status\":\"ok\",\"active_streams\":{},\"active_connections\":{}}}",
                snapshot.gauges.active_streams, snapshot.gauges.active_connections
            );
            ("200 OK", "application/json", "", head_only)
        }
        Reply::NotFound => {
            body.extend_from_slice(b"not found: try /metrics or /healthz\n");
            ("404 Not Found", PLAIN, "", false)
        }
        Reply::MethodNotAllowed => {
            body.extend_from_slice(b"method not allowed: use GET\n");
            (
                "405 Method Not Allowed",
                PLAIN,
                "Allow: GET, HEAD\r\n",
                false,
            )
        }
        Reply::BadRequest => {
            body.extend_from_slice(b"bad request: not an HTTP/1.x request\n");
            ("400 Bad Request", PLAIN, "", false)
        }
        Reply::HeadTooLarge => {
            body.extend_from_slice(b"request head too large\n");
            ("431 Request Header Fields Too Large", PLAIN, "", false)
        }
    };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.extend_from_slice(&body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &[u8] =
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nUser-Agent: Prometheus/2.53.0\r\nAccept: text/plain\r\n\r\n";

    fn answer(reply: Reply) -> String {
        let metrics = Metrics::new();
        let gauges = Gauges {
            active_connections: 7,
            active_streams: 5,
            peak_streams: 9,
            buffered_bytes: 0,
            log_lines_dropped: 0,
            detached_streams: 0,
        };
        let mut out = Vec::new();
        respond(
            reply,
            Snapshot {
                metrics: &[&metrics],
                gauges,
                process: None,
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    fn split_response(response: &str) -> (&str, &str) {
        response.split_once("\r\n\r\n").unwrap()
    }

    fn content_length(head: &str) -> usize {
        let line = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap();
        line.parse().unwrap()
    }

    #[test]
    fn a_whole_scrape_request_routes_to_metrics() {
        let parsed = parse_request(SCRAPE);
        assert_eq!(
            parsed,
            ScrapeParse::Complete {
                method: Method::Get,
                path: Path::Metrics,
                head_len: SCRAPE.len()
            }
        );
        assert_eq!(parsed.reply(), Some(Reply::Metrics { head_only: false }));
    }

    #[test]
    fn byte_by_byte_is_incomplete_until_the_last_byte() {
        for end in 0..SCRAPE.len() {
            assert_eq!(
                parse_request(&SCRAPE[..end]),
                ScrapeParse::Incomplete,
                "at {end}"
            );
        }
        assert_eq!(
            parse_request(SCRAPE).reply(),
            Some(Reply::Metrics { head_only: false })
        );
    }

    #[test]
    fn bytes_after_the_head_are_ignored() {
        let mut with_body = SCRAPE.to_vec();
        with_body.extend_from_slice(b"garbage");
        assert!(
            matches!(parse_request(&with_body), ScrapeParse::Complete { head_len, .. } if head_len == SCRAPE.len())
        );
    }

    #[test]
    fn routing_ignores_the_query_but_not_the_path() {
        let reply = |head: &[u8]| parse_request(head).reply();
        assert_eq!(
            reply(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"),
            Some(Reply::Metrics { head_only: false })
        );
        assert_eq!(
            reply(b"GET /healthz HTTP/1.0\r\n\r\n"),
            Some(Reply::Healthz { head_only: false })
        );
        assert_eq!(
            reply(b"HEAD /healthz?probe HTTP/1.1\r\n\r\n"),
            Some(Reply::Healthz { head_only: true })
        );
        assert_eq!(
            reply(b"GET /metrics/ HTTP/1.1\r\n\r\n"),
            Some(Reply::NotFound)
        );
        assert_eq!(reply(b"GET / HTTP/1.1\r\n\r\n"), Some(Reply::NotFound));
        assert_eq!(
            reply(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Reply::MethodNotAllowed)
        );
        assert_eq!(
            reply(b"get /metrics HTTP/1.1\r\n\r\n"),
            Some(Reply::MethodNotAllowed)
        );
    }

    #[test]
    fn garbage_is_a_bad_request() {
        assert_eq!(
            parse_request(b"\x16\x03\x01\x02\x00"),
            ScrapeParse::BadRequest
        );
        assert_eq!(
            parse_request(b"GET /metrics SPDY/3\r\n\r\n"),
            ScrapeParse::BadRequest
        );
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n"),
            ScrapeParse::BadRequest
        );
    }

    #[test]
    fn an_oversized_head_is_too_large_even_before_it_ends() {
        let mut head = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
        head.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse_request(&head), ScrapeParse::Incomplete);
        head.push(b'a');
        assert_eq!(parse_request(&head), ScrapeParse::TooLarge);
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&head), ScrapeParse::TooLarge);
        assert_eq!(parse_request(&head).reply(), Some(Reply::HeadTooLarge));
    }

    #[test]
    fn too_many_header_lines_is_too_large() {
        let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            head.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&head), ScrapeParse::TooLarge);
    }

    #[test]
    fn healthz_reports_the_gauges_as_json() {
        let response = answer(Reply::Healthz { head_only: false });
        let (head, body) = split_response(&response);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
        assert!(head.ends_with("Connection: close"));
        assert_eq!(
            body,
            r#"{"status":"ok","active_streams":5,"active_connections":7}"#
        );
        assert_eq!(content_length(head), body.len());
    }

    #[test]
    fn metrics_are_served_with_the_exposition_content_type_and_length() {
        let response = answer(Reply::Metrics { head_only: false });
        let (head, body) = split_response(&response);
        assert!(head.starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        ));
        assert_eq!(content_length(head), body.len());
        assert!(body.contains("\ndaemon_active_streams 5\n"));
    }

    #[test]
    fn head_gets_the_get_head_without_a_body() {
        let full = answer(Reply::Metrics { head_only: false });
        let head_only = answer(Reply::Metrics { head_only: true });
        assert_eq!(format!("{}\r\n\r\n", split_response(&full).0), head_only);
    }

    #[test]
    fn error_replies_are_complete_and_closed() {
        for (reply, status) in [
            (Reply::NotFound, "404 Not Found"),
            (Reply::MethodNotAllowed, "405 Method Not Allowed"),
            (Reply::BadRequest, "400 Bad Request"),
            (Reply::HeadTooLarge, "431 Request Header Fields Too Large"),
        ] {
            let response = answer(reply);
            let (head, body) = split_response(&response);
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{head}"
            );
            assert!(head.ends_with("Connection: close"));
            assert_eq!(content_length(head), body.len());
            assert_eq!(
                head.contains("Allow: GET, HEAD"),
                reply == Reply::MethodNotAllowed
            );
        }
    }
}
