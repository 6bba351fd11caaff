//! One stream's response accounting, sans I/O: fed the bytes its client end receives, it follows
//! the response head, counts SSE events and notices `[DONE]` and `event: error`.
//!
//! | state  | fed                                         | next                          |
//! |--------|---------------------------------------------|-------------------------------|
//! | Head   | bytes without the blank line ending a head  | Head (buffered, bounded)      |
//! | Head   | the blank line; status 200                  | Events                        |
//! | Head   | the blank line; any other status            | Body (only counted)           |
//! | Head   | more than `MAX_HEAD` bytes, or not HTTP     | Body with status 0            |
//! | Events | lines; a blank line ends an event           | Events                        |
//! | Body   | anything                                    | Body                          |
//!
//! Memory stays small and fixed per stream (15,000 of them live at once): the head is kept
//! only until it is complete, and of each SSE line only the first `LINE_PREFIX` bytes, which is
//! all it takes to tell a field's name and `data: [DONE]` apart.

use std::time::Instant;

/// Longest response head accepted; the daemon's are under 200 bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How much of an SSE line is kept: enough for `event: error` and `data: [DONE]`.
const LINE_PREFIX: usize = 32;
/// Status recorded for a head that is not valid HTTP.
pub const MALFORMED_STATUS: u16 = 0;

/// How a stream's response ended, judged when the daemon closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Status 200, `[DONE]` seen, no `event: error`.
    Complete,
    /// Any status but 200 ([`MALFORMED_STATUS`] for a head that is not HTTP).
    Status(u16),
    /// The stream carried `event: error`.
    ErrorEvent,
    /// It ended before a complete head, or after a 200 head without `[DONE]`.
    Incomplete,
}

enum State {
    Head(Vec<u8>),
    Events(Lines),
    Body,
}

/// The line being read and the event it belongs to.
#[derive(Default)]
struct Lines {
    /// The first `LINE_PREFIX` bytes of the current line.
    prefix: Vec<u8>,
    /// The current line is longer than `prefix` holds.
    long: bool,
    /// The current event has a `data` field.
    has_data: bool,
    /// The current event's only data so far is `[DONE]`.
    is_done: bool,
    /// The current event is `event: error`.
    is_error: bool,
}

pub struct Response {
    state: State,
    status: Option<u16>,
    bytes: u64,
    first_byte: Option<Instant>,
    events: u64,
    done: bool,
    error_event: bool,
}

impl Response {
    pub fn new() -> Response {
        Response {
            state: State::Head(Vec::new()),
            status: None,
            bytes: 0,
            first_byte: None,
            events: 0,
            done: false,
            error_event: false,
        }
    }

    /// Takes the next bytes the client end received, at `now`.
    pub fn feed(&mut self, data: &[u8], now: Instant) {
        if data.is_empty() {
            return;
        }
        self.first_byte.get_or_insert(now);
        self.bytes += data.len() as u64;
        self.advance(data);
    }

    fn advance(&mut self, data: &[u8]) {
        match std::mem::replace(&mut self.state, State::Body) {
            State::Head(mut head) => {
                let searched_from = head.len().saturating_sub(3);
                head.extend_from_slice(data);
                match memchr::memmem::find(&head[searched_from..], b"\r\n\r\n") {
                    Some(at) => {
                        let end = searched_from + at + 4;
                        let status = parse_status(&head[..end]).unwrap_or(MALFORMED_STATUS);
                        self.status = Some(status);
                        if status == 200 {
                            self.state = State::Events(Lines::default());
                            self.advance(&head[end..]);
                        }
                    }
                    None if head.len() > MAX_HEAD => self.status = Some(MALFORMED_STATUS),
                    None => self.state = State::Head(head),
                }
            }
            State::Events(mut lines) => {
                self.read_lines(&mut lines, data);
                self.state = State::Events(lines);
            }
            State::Body => {}
        }
    }

    /// SSE lines end in `\n` (the daemon never sends a bare `\r`); a `\r` before it is dropped.
    fn read_lines(&mut self, lines: &mut Lines, mut data: &[u8]) {
        while !data.is_empty() {
            let (part, ended) = match memchr::memchr(b'\n', data) {
                Some(at) => (&data[..at], Some(at + 1)),
                None => (data, None),
            };
            let room = LINE_PREFIX - lines.prefix.len();
            lines
                .prefix
                .extend_from_slice(&part[..part.len().min(room)]);
            lines.long |= part.len() > room;
            match ended {
                Some(next) => {
                    self.end_line(lines);
                    data = &data[next..];
                }
                None => break,
            }
        }
    }

    fn end_line(&mut self, lines: &mut Lines) {
        let mut line = lines.prefix.as_slice();
        if !lines.long {
            line = line.strip_suffix(b"\r").unwrap_or(line);
        }
        if line.is_empty() && !lines.long {
            if lines.is_error {
                self.error_event = true;
            } else if lines.is_done {
                self.done = true;
            } else if lines.has_data {
                self.events += 1;
            }
            lines.has_data = false;
            lines.is_done = false;
            lines.is_error = false;
        } else if let Some(value) = field(line, b"data") {
            lines.is_done = !lines.has_data && !lines.long && value == b"[DONE]";
            lines.has_data = true;
        } else if let Some(value) = field(line, b"event") {
            lines.is_error = !lines.long && value == b"error";
        }
        lines.prefix.clear();
        lines.long = false;
    }

    /// The status of the response head, once it is complete.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn first_byte(&self) -> Option<Instant> {
        self.first_byte
    }

    /// The verdict if the stream ended now.
    pub fn verdict(&self) -> Verdict {
        match self.status {
            None => Verdict::Incomplete,
            Some(200) if self.error_event => Verdict::ErrorEvent,
            Some(200) if self.done => Verdict::Complete,
            Some(200) => Verdict::Incomplete,
            Some(status) => Verdict::Status(status),
        }
    }
}

/// The value of an SSE field line `name: value` or `name:value`, as the SSE spec reads it.
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let value = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => response.code,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD_200: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n";

    fn mock_stream() -> String {
        let mut text = HEAD_200.to_string();
        text.push_str("data: {\"content\":\"Hello\"}\n\n");
        text.push_str(": keep-alive\n\n");
        text.push_str(
            "data: {\"content\":\"a line longer than the kept prefix of thirty-two bytes\"}\n\n",
        );
        text.push_str("data: {\"content\":\"[DONE]\"}\n\n");
        text.push_str("data: [DONE]\n\n");
        text
    }

    /// Feeds `text` whole, byte by byte and split in two at every point; all must agree.
    fn judge_every_way(text: &str) -> (Verdict, u64) {
        let start = Instant::now();
        let mut whole = Response::new();
        whole.feed(text.as_bytes(), start);
        let expected = (whole.verdict(), whole.events());
        assert_eq!(whole.bytes(), text.len() as u64);
        assert_eq!(whole.first_byte(), (!text.is_empty()).then_some(start));

        let mut bytewise = Response::new();
        for byte in text.as_bytes() {
            bytewise.feed(std::slice::from_ref(byte), Instant::now());
        }
        assert_eq!(
            (bytewise.verdict(), bytewise.events()),
            expected,
            "byte by byte"
        );
        assert_eq!(bytewise.bytes(), text.len() as u64);

        for split in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(split);
            let mut halves = Response::new();
            halves.feed(a, start);
            halves.feed(b, start);
            assert_eq!(
                (halves.verdict(), halves.events()),
                expected,
                "split at {split}"
            );
        }
        expected
    }

    #[test]
    fn a_complete_stream_counts_data_events_but_not_comments_or_done() {
        assert_eq!(judge_every_way(&mock_stream()), (Verdict::Complete, 3));
    }

    #[test]
    fn crlf_lines_and_unspaced_fields_are_read_too() {
        let text = format!("{HEAD_200}data:one\r\n\r\ndata:[DONE]\r\n\r\n");
        assert_eq!(judge_every_way(&text), (Verdict::Complete, 1));
    }

    #[test]
    fn an_error_event_fails_the_stream_even_after_done() {
        let text = format!(
            "{HEAD_200}data: x\n\ndata: [DONE]\n\nevent: error\ndata: {{\"error\":\"server shutting down\"}}\n\n"
        );
        assert_eq!(judge_every_way(&text), (Verdict::ErrorEvent, 1));
    }

    #[test]
    fn an_error_response_is_judged_by_its_status() {
        let text = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"error\":\"x\"}\n";
        assert_eq!(judge_every_way(text), (Verdict::Status(400), 0));
    }

    #[test]
    fn a_stream_cut_anywhere_before_its_last_byte_is_incomplete() {
        let full = mock_stream();
        for end in 0..full.len() {
            let mut response = Response::new();
            response.feed(&full.as_bytes()[..end], Instant::now());
            assert_eq!(response.verdict(), Verdict::Incomplete, "cut at {end}");
        }
        assert_eq!(judge_every_way(""), (Verdict::Incomplete, 0));
    }

    #[test]
    fn done_inside_a_longer_line_or_with_more_data_is_not_the_marker() {
        let text = format!("{HEAD_200}data: [DONE] and more\n\ndata: [DONE]\ndata: x\n\n");
        assert_eq!(judge_every_way(&text), (Verdict::Incomplete, 2));
    }

    #[test]
    fn a_head_that_is_not_http_or_too_long_is_malformed() {
        assert_eq!(
            judge_every_way("SSH-2.0-OpenSSH\r\n\r\n"),
            (Verdict::Status(MALFORMED_STATUS), 0)
        );
        let mut endless = Response::new();
        endless.feed(&vec![b'x'; MAX_HEAD + 1], Instant::now());
        assert_eq!(endless.verdict(), Verdict::Status(MALFORMED_STATUS));
    }

    #[test]
    fn first_byte_time_is_the_first_non_empty_feed() {
        let mut response = Response::new();
        let later = Instant::now();
        response.feed(b"", later - std::time::Duration::from_secs(1));
        assert_eq!(response.first_byte(), None);
        response.feed(b"H", later);
        response.feed(b"T", later + std::time::Duration::from_secs(1));
        assert_eq!(response.first_byte(), Some(later));
    }
}
