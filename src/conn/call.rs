//! The calling stage: one HTTP/1.1 call to the backend's upstream API, relayed to the client.
//! It owns the upstream connection, the request, the response head being read and the relay,
//! and its deadlines; it is fed events and time and appends what the client should get to
//! `out`, never touching the client itself.
//!
//! | phase        | event                                                   | next                                     |
//! |--------------|---------------------------------------------------------|------------------------------------------|
//! | Opening      | any                                                     | Sending (pooled), Connecting (new), or refused 502 |
//! | Connecting   | Upstream writable or closed: connected                  | Sending                                  |
//! | Connecting   | Upstream writable or closed: failed; Tick past the connect timeout | refused 502 (`upstream_unreachable`) |
//! | Sending      | Upstream: request written                               | AwaitingHead                             |
//! | Sending      | Upstream or Tick: a streamed body's slice written, more to come | Sending (next slice next turn)   |
//! | Sending      | a streamed body's file changed size                     | refused 500 (`other`)                    |
//! | Sending, AwaitingHead | Tick past the response-head timeout            | refused 504 (`upstream_timeout`)         |
//! | AwaitingHead | Upstream (or Tick, when a read was cut short): incomplete head | AwaitingHead                      |
//! | AwaitingHead | a `200` event-stream head                               | Relaying: `out` = the success head and the first events |
//! | AwaitingHead | `408` on a pooled connection, first try                 | Opening a fresh one (once): the server timed the idle connection out |
//! | AwaitingHead | another status, its body already whole                  | refused 429 or 502 (`upstream_status`), body logged |
//! | AwaitingHead | another status, more body to come                       | ReadingError                             |
//! | ReadingError | Upstream or Tick: the body ended, 4 KiB held, closed, or 1 s passed | refused 429 or 502 (`upstream_status`), body logged |
//! | AwaitingHead | malformed head                                          | refused 502 (`upstream_error`)           |
//! | AwaitingHead | closed or reset before a head, pooled connection, nothing received | Opening a fresh one (once)    |
//! | AwaitingHead | closed or reset before a head, otherwise                | refused 502 (`upstream_cut`; `upstream_unreachable` during a TLS handshake) |
//! | Relaying     | Upstream, Drained or Tick, the client clear: bytes      | Relaying (events appended), or Done      |
//! | Relaying     | Upstream while the client is behind                     | Relaying, not read (backpressure)        |
//! | Relaying     | end of body, in-stream error, cut, bad framing          | Done: `[DONE]`, nothing, or `event: error` |
//! | Relaying     | Tick past the idle gap timeout                          | Done: `event: error` (`upstream_timeout`) |
//! | Relaying, typed | any, the client clear, a character due               | Relaying: one `{"char","index"}` event    |
//! | Relaying, typed | Upstream or Tick, more than 64 KiB untyped           | Relaying, not read (backpressure; no idle gap) |
//! | Relaying, typed | the body ended cleanly, complete or not              | Typing, the upstream connection released (pooled if reusable) |
//! | Relaying, typed | in-stream error, cut, bad framing, idle gap          | Done: `event: error` at once, untyped text dropped |
//! | Typing       | Tick, the client clear, a character due                 | Typing: one event                        |
//! | Typing       | Tick, the client clear, all typed, last pause over      | Done: `[DONE]` or nothing, by the body's end |
//! | Typing       | Tick, otherwise                                         | Typing                                   |
//! | Connecting   | other events before the connect timeout                 | Connecting                               |
//! | Sending      | Tick before the response-head timeout                   | Sending                                  |
//! | Done         | any                                                     | Done                                     |
//!
//! "Typed" is a call whose output is `Output::Typed` (the typing backend's `use_api`, SPEC §4.2):
//! the relay's text goes to a [`Typist`] that types it to the client one character per event, in
//! its own time. The upstream connection is released as soon as the body ends, so it is pooled
//! while the rest is typed.
//!
//! The upstream connection goes back to the pool only after a response read to its end; in
//! every other case it is closed, at once when the call is dropped (the client left).

use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use crate::attachments::{self, Body, SLICE};
use crate::backends::upstream::{
    status_outcome, Ending as RelayEnding, ErrorBody, Failure, Output, Relay, StatusOutcome,
    Step as RelayStep, Typed, Typist, UpstreamRequest, EXCERPT_LIMIT,
};
use crate::config::UpstreamTimeouts;
use crate::deadline;
use crate::end::Outcome;
use crate::http::{parse_head, write_success_head, CustomHeaders, ErrorStatus, Head, HeadParse};
use crate::sse::{self, EventSink};
use crate::stats::Tally;
use crate::upstream::transport::{ReadOutcome, Transport};
use crate::upstream::Upstream;

use super::repeats::{Repeatable, Repeats};

/// Bytes taken from the upstream per read.
const READ_CHUNK: usize = 16 * 1024;
/// Reads per advance before other connections get their turn; the rest waits for the next turn.
const READS_PER_ADVANCE: usize = 16;
/// What a TLS session holds beyond what is counted (SPEC §3.4): rustls' state and buffers.
const TLS_SESSION_ESTIMATE: usize = 16 * 1024;
/// How long a refused answer's body is waited for, for the log, before the client is answered.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(1);

pub struct Call {
    /// Kept until the head arrives, for the one retry on a fresh connection: the whole request,
    /// or its head when `body` streams the body.
    request: Vec<u8>,
    written: usize,
    /// A body with file content, produced a slice at a time as the upstream takes it. Boxed,
    /// as `typist` below: most calls have neither, and every relayed stream pays the size.
    body: Option<Box<Body>>,
    /// The slice of `body` being written, and how much of it is written.
    slice: Vec<u8>,
    slice_written: usize,
    /// The body has more, but this turn's slice is spent: the deadline brings the call back.
    body_due: bool,
    transport: Option<Transport>,
    /// Until the head: then it moves into the relay.
    output: Option<Output>,
    phase: Phase,
    attempt: Attempt,
    /// When the current phase began, or when the upstream last sent something.
    since: Instant,
    /// When the first attempt's request was sent: time to first byte counts from there.
    sent_at: Option<Instant>,
    /// The upstream socket may have more to read: no read since its last readable event has
    /// said `WouldBlock` or emptied the socket.
    readable: bool,
    /// An event said the upstream closed its side. Its end of file is read only by a read
    /// after the data, which no further event announces: an emptied socket is then read again.
    hung_up: bool,
    /// The longest SSE line or event accepted from the upstream.
    max_line: usize,
    /// Which of the reactor's upstreams the request is for, and that upstream's generation
    /// when the call began: after a reload replaced it, the call is not sent to another one.
    target: usize,
    generation: u64,
}

enum Phase {
    Opening,
    Connecting,
    Sending,
    AwaitingHead(Vec<u8>),
    /// A refused answer's body, read (briefly) for the log before the client is answered.
    ReadingError(Box<ErrorAnswer>),
    Relaying(Box<Relaying>),
    /// A typed answer's body has ended and its upstream connection is released: the rest of
    /// the text is being typed, then the stream ends by the body's ending.
    Typing(Box<Typist>),
    Done,
}

struct Relaying {
    relay: Relay,
    /// Typed output: the relay's text goes here, and from here to the client.
    typist: Option<Box<Typist>>,
}

impl Relaying {
    /// Reading the upstream waits while a typed answer has too much text left to type.
    fn is_backed_up(&self) -> bool {
        self.typist.as_deref().is_some_and(Typist::is_backed_up)
    }
}

struct ErrorAnswer {
    head: Head,
    body: ErrorBody,
    refusal: Refusal,
}

/// Which connection this request is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A new connection.
    Fresh,
    /// A pooled one, which the server may have closed meanwhile: one retry allowed.
    Pooled,
    /// The retry, on a new connection.
    Retry,
}

/// What the stage is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Upstream {
        readable: bool,
        writable: bool,
        closed: bool,
    },
    /// Time passed, or the client took everything written.
    Tick,
}

/// What the stage did.
pub enum Step {
    /// Whatever was appended to `out` goes to the client; the call goes on.
    Continue,
    /// Before any head: answer the client with this and end.
    Refused(Refusal),
    /// After the head: the stream is over; `out` ends with its last bytes.
    Ended {
        outcome: Outcome,
        error: Option<String>,
    },
}

/// An error response for the client, and why.
pub struct Refusal {
    pub status: ErrorStatus,
    /// For the client: plain words, never the upstream's body or a key.
    pub message: String,
    /// The upstream's `Retry-After`, passed on with a 429.
    pub retry_after: Option<String>,
    pub outcome: Outcome,
    /// For the log.
    pub error: String,
}

/// What the stage borrows for one call.
pub struct Io<'a> {
    pub now: Instant,
    pub registry: &'a Registry,
    pub token: Token,
    pub upstream: Option<&'a mut Upstream>,
    /// Shared per reactor: bytes read from the upstream, and their decoded body.
    pub read_buf: &'a mut Vec<u8>,
    /// Shared per reactor: TLS records read from the upstream, before decryption.
    pub records_buf: &'a mut Vec<u8>,
    pub decode_buf: &'a mut Vec<u8>,
    /// What this loop turn may still produce of attachment bodies (shared by all connections).
    pub file_bytes_left: &'a mut usize,
    pub tally: &'a mut Tally,
    /// The client has taken everything written: the upstream may be read.
    pub client_clear: bool,
    /// Client events appended, for the connection's count.
    pub events: u32,
    /// The connection's repeated warnings.
    pub repeats: &'a mut Repeats,
    /// The handoff's custom headers, for the success head.
    pub headers: &'a CustomHeaders,
    /// The backend the call is for: the metrics' `backend` label.
    pub backend: &'static str,
    pub conn: u64,
}

impl Call {
    /// A call about to open its connection (on its first event, at once: its deadline is now),
    /// to the upstream of `generation` at `request.target`.
    pub fn new(
        request: UpstreamRequest,
        generation: u64,
        now: Instant,
        max_line: usize,
        conn: u64,
    ) -> Call {
        for note in &request.notes {
            log::warn!(conn = conn, note = note.as_str(); "handoff data partly ignored");
        }
        Call {
            request: request.request,
            written: 0,
            body: request.body.map(Box::new),
            slice: Vec::new(),
            slice_written: 0,
            body_due: false,
            transport: None,
            output: Some(request.output),
            phase: Phase::Opening,
            attempt: Attempt::Fresh,
            since: now,
            sent_at: None,
            readable: false,
            hung_up: false,
            max_line,
            target: request.target,
            generation,
        }
    }

    /// Which of the reactor's upstreams the request is for.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The success head has been appended: the client's stream has begun.
    pub fn has_begun(&self) -> bool {
        matches!(
            self.phase,
            Phase::Relaying(_) | Phase::Typing(_) | Phase::Done
        )
    }

    /// When the call needs attention without an event.
    pub fn deadline(&self, timeouts: &UpstreamTimeouts, client_clear: bool) -> Option<Instant> {
        match &self.phase {
            Phase::Opening => Some(self.since),
            Phase::Connecting => Some(deadline::after(self.since, timeouts.connect_timeout)),
            Phase::Sending if self.body_due => Some(self.since),
            // A read cut short by the per-advance cap comes back next turn.
            Phase::AwaitingHead(_) if self.readable => Some(self.since),
            Phase::Sending | Phase::AwaitingHead(_) => Some(deadline::after(
                self.since,
                timeouts.response_header_timeout,
            )),
            Phase::ReadingError(_) => Some(deadline::after(self.since, ERROR_BODY_WAIT)),
            // While the client is behind, its write stall deadline is the one that counts.
            Phase::Relaying(_) | Phase::Typing(_) if !client_clear => None,
            Phase::Relaying(relaying) => {
                let typing = relaying.typist.as_deref().and_then(Typist::due);
                let reading = if relaying.is_backed_up() {
                    None
                } else if self.readable {
                    Some(self.since)
                } else {
                    Some(deadline::after(self.since, timeouts.idle_gap_timeout))
                };
                typing.into_iter().chain(reading).min()
            }
            Phase::Typing(typist) => typist.due(),
            Phase::Done => None,
        }
    }

    /// Bytes held for the memory budget: the request kept for a retry (and a streamed body's
    /// JSON and slice), a response head being collected, the relay's partial line and event,
    /// the text left to type, and a fixed estimate for a TLS session's state and record
    /// buffers.
    pub fn held_bytes(&self) -> usize {
        let phase = match &self.phase {
            Phase::AwaitingHead(head) => head.capacity(),
            Phase::Relaying(relaying) => {
                relaying.relay.held_bytes()
                    + relaying.typist.as_deref().map_or(0, Typist::held_bytes)
            }
            Phase::Typing(typist) => typist.held_bytes(),
            Phase::ReadingError(_) => EXCERPT_LIMIT,
            _ => 0,
        };
        let tls = match &self.transport {
            Some(transport) if transport.is_tls() => TLS_SESSION_ESTIMATE,
            _ => 0,
        };
        let body = self.body.as_deref().map_or(0, Body::held_bytes) + self.slice.capacity();
        self.request.capacity() + body + phase + tls
    }

    pub fn advance(
        &mut self,
        event: Event,
        timeouts: &UpstreamTimeouts,
        io: &mut Io<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        if let Event::Upstream {
            readable, closed, ..
        } = event
        {
            self.readable |= readable;
            self.hung_up |= closed;
        }
        let now = io.now;
        match (&self.phase, event) {
            (Phase::Opening, _) => self.open(io, out),
            (
                Phase::Connecting,
                Event::Upstream {
                    writable, closed, ..
                },
            ) if writable || closed => self.finish_connect(io, out),
            (Phase::Connecting, Event::Tick)
                if now >= deadline::after(self.since, timeouts.connect_timeout) =>
            {
                log::warn!(conn = io.conn; "upstream connect timed out");
                self.unreachable("the upstream API could not be reached in time", io)
            }
            (Phase::Connecting, _) => Step::Continue,
            (Phase::Sending | Phase::AwaitingHead(_), Event::Tick)
                if now >= deadline::after(self.since, timeouts.response_header_timeout) =>
            {
                log::warn!(conn = io.conn; "no upstream response head within the timeout");
                self.refuse(
                    ErrorStatus::GatewayTimeout,
                    "the upstream API did not answer in time",
                    Outcome::UpstreamTimeout,
                    "no response head within the timeout".to_string(),
                    io,
                )
            }
            (Phase::Sending, Event::Upstream { .. }) => match self.flush_tls(io) {
                Ok(()) => self.send(io, out),
                Err(e) => self.closed_before_head(Some(e), io, out),
            },
            (Phase::Sending, Event::Tick) if self.body_due => self.send(io, out),
            (Phase::Sending, Event::Tick) => Step::Continue,
            (Phase::AwaitingHead(_), _) => match self.flush_tls(io) {
                Ok(()) => self.read_head(io, out),
                Err(e) => self.closed_before_head(Some(e), io, out),
            },
            (Phase::ReadingError(_), Event::Tick)
                if now >= deadline::after(self.since, ERROR_BODY_WAIT) =>
            {
                self.refuse_after_body(io)
            }
            (Phase::ReadingError(_), _) => self.read_error_body(io),
            (Phase::Relaying(_), _) if !io.client_clear => match self.flush_tls(io) {
                Ok(()) => Step::Continue,
                Err(e) => self.end_relay(broken_mid_answer(&e), io, out),
            },
            (Phase::Relaying(relaying), Event::Tick)
                if !self.readable
                    && !relaying.is_backed_up()
                    && now >= deadline::after(self.since, timeouts.idle_gap_timeout) =>
            {
                log::warn!(conn = io.conn; "upstream silent past the idle gap timeout");
                io.tally.backend_error(io.backend);
                self.close_transport();
                self.phase = Phase::Done;
                sse::error_event(out, "the upstream API stopped sending");
                Step::Ended {
                    outcome: Outcome::UpstreamTimeout,
                    error: Some("no upstream bytes within the idle gap timeout".to_string()),
                }
            }
            (Phase::Relaying(_), _) => match self.flush_tls(io) {
                Ok(()) => self.relay(io, out),
                Err(e) => self.end_relay(broken_mid_answer(&e), io, out),
            },
            (Phase::Typing(_), _) => self.type_rest(io, out),
            (Phase::Done, _) => Step::Continue,
        }
    }

    /// Takes a pooled connection (unless this is the retry) or starts connecting a new one.
    fn open(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        if self.attempt == Attempt::Fresh {
            // Counted when the attempt starts, so that connect failures (counted as errors)
            // never outnumber requests.
            io.tally.backend_request(io.backend);
        }
        let Some(upstream) = io.upstream.as_deref_mut() else {
            return self.refuse(
                ErrorStatus::BadGateway,
                "the upstream API cannot be reached",
                Outcome::UpstreamUnreachable,
                "no upstream API is configured".to_string(),
                io,
            );
        };
        if upstream.generation() != self.generation {
            return self.refuse(
                ErrorStatus::BadGateway,
                "the upstream API changed; retry",
                Outcome::UpstreamUnreachable,
                "a reload replaced the upstream this call was for".to_string(),
                io,
            );
        }
        let fresh = self.attempt == Attempt::Retry;
        let (mut transport, reused) = match upstream.open(io.now, fresh) {
            Ok(opened) => opened,
            Err(e) => {
                log::warn!(conn = io.conn, error:% = e; "cannot open an upstream connection");
                return self.unreachable("the upstream API cannot be reached", io);
            }
        };
        if let Err(e) = transport.register(io.registry, io.token) {
            log::error!(conn = io.conn, error:% = e; "cannot register the upstream connection");
            return self.refuse(
                ErrorStatus::BadGateway,
                "the upstream API cannot be reached",
                Outcome::UpstreamUnreachable,
                format!("cannot register the upstream connection: {e}"),
                io,
            );
        }
        self.transport = Some(transport);
        self.written = 0;
        if let Some(body) = self.body.as_mut() {
            body.rewind();
        }
        self.slice.clear();
        self.slice_written = 0;
        self.body_due = false;
        self.since = io.now;
        self.readable = false;
        self.hung_up = false;
        if reused {
            self.attempt = Attempt::Pooled;
            self.phase = Phase::Sending;
            return self.send(io, out);
        }
        self.phase = Phase::Connecting;
        Step::Continue
    }

    fn finish_connect(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        let Some(transport) = self.transport.as_mut() else {
            return Step::Continue;
        };
        match transport.check_connected() {
            Ok(true) => {
                self.phase = Phase::Sending;
                self.since = io.now;
                self.send(io, out)
            }
            Ok(false) => Step::Continue,
            Err(e) => {
                log::warn!(conn = io.conn, error:% = e; "upstream connect failed");
                self.unreachable("the upstream API cannot be reached", io)
            }
        }
    }

    fn send(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        let Some(transport) = self.transport.as_mut() else {
            return Step::Continue;
        };
        while self.written < self.request.len() {
            match transport.write(&self.request[self.written..], io.records_buf) {
                Ok(0) => return Step::Continue,
                Ok(n) => self.written += n,
                Err(e) => return self.closed_before_head(Some(e), io, out),
            }
        }
        self.body_due = false;
        let mut sliced = false;
        while let Some(body) = self.body.as_mut() {
            if self.slice_written == self.slice.len() {
                if body.is_done() {
                    break;
                }
                if sliced || *io.file_bytes_left == 0 {
                    // One slice per connection per turn, and a few per turn in all: reading
                    // and encoding files must not hold up the loop.
                    self.body_due = true;
                    self.since = io.now;
                    return Step::Continue;
                }
                self.slice.clear();
                self.slice_written = 0;
                let room = SLICE.min(*io.file_bytes_left);
                match body.fill_vec(&mut self.slice, room) {
                    Ok(produced) => *io.file_bytes_left -= produced.min(*io.file_bytes_left),
                    Err(refusal) => return self.body_failed(&refusal, io),
                }
                sliced = true;
            }
            match transport.write(&self.slice[self.slice_written..], io.records_buf) {
                Ok(0) => return Step::Continue,
                Ok(n) => {
                    self.slice_written += n;
                    // Sending counts as life: the response-head timeout starts at the last byte.
                    self.since = io.now;
                }
                Err(e) => return self.closed_before_head(Some(e), io, out),
            }
        }
        if let Err(e) = transport.flush_tls(io.records_buf) {
            return self.closed_before_head(Some(e), io, out);
        }
        self.phase = Phase::AwaitingHead(Vec::new());
        self.since = io.now;
        // Time to first byte counts from the first attempt, even when the request is retried on
        // a fresh connection.
        self.sent_at.get_or_insert(io.now);
        // The answer may be there already (or TLS has handshake records to read).
        self.readable = true;
        self.read_head(io, out)
    }

    fn read_head(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        for _ in 0..READS_PER_ADVANCE {
            let (Some(transport), Phase::AwaitingHead(head)) =
                (self.transport.as_mut(), &mut self.phase)
            else {
                return Step::Continue;
            };
            let before = head.len();
            // Into the worker's buffer: a call waiting for its head holds only the bytes that
            // came, not a read's worth of room.
            match read_upstream(transport, io) {
                Ok(ReadOutcome::Data(n)) => {
                    head.extend_from_slice(&io.read_buf[..n]);
                    if before == 0 && n > 0 {
                        if let Some(sent) = self.sent_at {
                            io.tally
                                .backend_ttfb(io.backend, io.now.saturating_duration_since(sent));
                        }
                    }
                    match parse_head(head) {
                        Ok(HeadParse::Incomplete) => {}
                        Ok(HeadParse::Complete(parsed, len)) => {
                            let rest = head.split_off(len);
                            return self.on_head(parsed, rest, io, out);
                        }
                        Err(e) => {
                            log::warn!(conn = io.conn, error:% = e; "bad upstream response head");
                            return self.refuse(
                                ErrorStatus::BadGateway,
                                "the upstream API sent a malformed response",
                                Outcome::UpstreamError,
                                format!("bad response head: {e}"),
                                io,
                            );
                        }
                    }
                }
                Ok(ReadOutcome::WouldBlock) => {
                    self.readable = false;
                    return Step::Continue;
                }
                Ok(ReadOutcome::Closed) => return self.closed_before_head(None, io, out),
                Err(e) => return self.closed_before_head(Some(e), io, out),
            }
        }
        // Cut short: `readable` stays set and the deadline brings the call back next turn.
        self.since = io.now;
        Step::Continue
    }

    /// The connection closed or failed before a complete head. A pooled connection the server
    /// had closed fails before any byte: retry once, on a fresh one.
    fn closed_before_head(
        &mut self,
        error: Option<io::Error>,
        io: &mut Io<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        let nothing_received = match &self.phase {
            Phase::AwaitingHead(head) => head.is_empty(),
            _ => true,
        };
        let handshaking = self
            .transport
            .as_ref()
            .is_some_and(Transport::is_handshaking);
        self.close_transport();
        if nothing_received && self.attempt == Attempt::Pooled {
            log::debug!(conn = io.conn; "pooled upstream connection was closed; retrying on a fresh one");
            self.attempt = Attempt::Retry;
            self.phase = Phase::Opening;
            return self.open(io, out);
        }
        let why = error.map_or_else(|| "closed".to_string(), |e| e.to_string());
        if handshaking {
            log::warn!(conn = io.conn, error = why.as_str(); "upstream TLS handshake failed");
            return self.unreachable("the upstream API cannot be reached securely", io);
        }
        log::warn!(
            conn = io.conn,
            error = why.as_str();
            "upstream connection ended before a complete response head"
        );
        self.refuse(
            ErrorStatus::BadGateway,
            "the upstream API closed the connection without an answer",
            Outcome::UpstreamCut,
            format!("upstream connection {why} before a complete response head"),
            io,
        )
    }

    fn on_head(&mut self, head: Head, rest: Vec<u8>, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        // A server that timed out the idle connection may say so with a 408 just as the
        // request goes out on it: that says nothing about the request, so try once more.
        if head.status == 408 && self.attempt == Attempt::Pooled {
            log::debug!(conn = io.conn; "pooled upstream connection answered 408; retrying on a fresh one");
            self.close_transport();
            self.attempt = Attempt::Retry;
            self.phase = Phase::Opening;
            return self.open(io, out);
        }
        match status_outcome(&head) {
            StatusOutcome::Reject {
                status,
                message,
                retry_after,
            } => {
                io.tally.backend_error(io.backend);
                let mut body = ErrorBody::new(&head);
                body.feed(&rest);
                let refusal = Refusal {
                    status,
                    message,
                    retry_after,
                    outcome: Outcome::UpstreamStatus,
                    error: format!("upstream answered {}", head.status),
                };
                self.phase = Phase::ReadingError(Box::new(ErrorAnswer {
                    head,
                    body,
                    refusal,
                }));
                self.since = io.now;
                if self.is_error_body_done() {
                    return self.refuse_after_body(io);
                }
                self.read_error_body(io)
            }
            StatusOutcome::Stream => {
                let Some(output) = self.output.take() else {
                    return Step::Continue;
                };
                let typist = output
                    .pace()
                    .map(|pace| Box::new(Typist::new(pace, io.now)));
                let relay = Relay::new(&head, output, self.max_line);
                self.phase = Phase::Relaying(Box::new(Relaying { relay, typist }));
                self.request = Vec::new();
                // No retry any more: the files can close.
                self.body = None;
                self.slice = Vec::new();
                self.since = io.now;
                write_success_head(out, io.headers);
                // Fed even when empty: an empty body ends on this first feed.
                match self.feed(&rest, io, out) {
                    Some(ending) => self.end_relay(ending, io, out),
                    None => Step::Continue,
                }
            }
        }
    }

    fn is_error_body_done(&self) -> bool {
        matches!(&self.phase, Phase::ReadingError(answer) if answer.body.is_finished())
    }

    /// Reads a refused answer's body for the log until it is whole (or 4 KiB are held), the
    /// connection ends or would block; then answers the client.
    fn read_error_body(&mut self, io: &mut Io<'_>) -> Step {
        for _ in 0..READS_PER_ADVANCE {
            let (Some(transport), Phase::ReadingError(answer)) =
                (self.transport.as_mut(), &mut self.phase)
            else {
                return self.refuse_after_body(io);
            };
            match read_upstream(transport, io) {
                Ok(ReadOutcome::Data(n)) => {
                    if answer.body.feed(&io.read_buf[..n]) {
                        return self.refuse_after_body(io);
                    }
                }
                Ok(ReadOutcome::WouldBlock) => return Step::Continue,
                Ok(ReadOutcome::Closed) | Err(_) => return self.refuse_after_body(io),
            }
        }
        Step::Continue
    }

    /// Logs the refused answer with what was read of its body, and refuses the client.
    fn refuse_after_body(&mut self, io: &mut Io<'_>) -> Step {
        self.close_transport();
        let Phase::ReadingError(answer) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return Step::Continue;
        };
        let ErrorAnswer {
            head,
            body,
            refusal,
        } = *answer;
        log::warn!(
            conn = io.conn,
            status = head.status,
            reason = head.reason.as_str(),
            content_encoding = head.content_encoding.as_deref(),
            body = body.excerpt().as_str();
            "upstream answered an error status"
        );
        Step::Refused(refusal)
    }

    /// Reads the upstream until it would block or something is there for the client (the
    /// connection writes it and comes back when the client has taken it). A typed answer's
    /// next character goes first when it is due; the upstream is not read while too much text
    /// waits to be typed.
    fn relay(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        for _ in 0..READS_PER_ADVANCE {
            let Phase::Relaying(relaying) = &mut self.phase else {
                return Step::Continue;
            };
            if let Some(typist) = relaying.typist.as_mut() {
                if let Some(ending) = type_one(typist, io, out) {
                    return self.end_relay(ending, io, out);
                }
            }
            if !self.readable || !out.is_empty() {
                return Step::Continue;
            }
            if relaying.is_backed_up() {
                // Not waiting on the upstream: its silence counts from when reading resumes.
                self.since = io.now;
                return Step::Continue;
            }
            let Some(transport) = self.transport.as_mut() else {
                return Step::Continue;
            };
            let ending = match read_upstream(transport, io) {
                Ok(ReadOutcome::Data(n)) => {
                    self.since = io.now;
                    // What remains comes with the next readable event: no read to hear
                    // `WouldBlock` (a third of all syscalls when every event is a read).
                    if !self.hung_up && transport.is_drained() {
                        self.readable = false;
                    }
                    let input = std::mem::take(io.read_buf);
                    let ending = self.feed(&input[..n], io, out);
                    *io.read_buf = input;
                    ending
                }
                Ok(ReadOutcome::WouldBlock) => {
                    self.readable = false;
                    // The gap timeout counts upstream silence from now on.
                    self.since = io.now;
                    return Step::Continue;
                }
                Ok(ReadOutcome::Closed) => match &mut self.phase {
                    Phase::Relaying(relaying) => Some(relaying.relay.on_eof()),
                    _ => None,
                },
                Err(e) => Some(broken_mid_answer(&e)),
            };
            if let Some(ending) = ending {
                return self.end_relay(ending, io, out);
            }
        }
        // Cut short: `readable` stays set and the deadline brings the call back next turn.
        Step::Continue
    }

    /// Feeds upstream bytes to the relay, appending client events to `out` (or, typed, the
    /// text to the typist).
    fn feed(&mut self, input: &[u8], io: &mut Io<'_>, out: &mut Vec<u8>) -> Option<RelayEnding> {
        let Phase::Relaying(relaying) = &mut self.phase else {
            return None;
        };
        let Relaying { relay, typist } = &mut **relaying;
        let fed = match typist {
            Some(typist) => relay.feed(input, io.decode_buf, &mut typist.sink()),
            None => {
                let mut sink = EventSink::new(out);
                let fed = relay.feed(input, io.decode_buf, &mut sink);
                let events = sink.events();
                io.events += events;
                io.tally.chunks_sent(events);
                fed
            }
        };
        for reason in fed.skipped {
            if io.repeats.first(Repeatable::SkippedEvent) {
                log::warn!(conn = io.conn, reason = reason.as_str(); "skipped an upstream event");
            }
            io.tally.backend_error(io.backend);
        }
        match fed.step {
            RelayStep::More => None,
            RelayStep::Ended(ending) => Some(ending),
        }
    }

    /// The body ended: keeps or closes the upstream connection, and appends the client's end
    /// by the relay's ending, or, typed, goes on typing what is left first.
    fn end_relay(&mut self, ending: RelayEnding, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        // TLS bytes past the response would be read as the next response; request records not
        // yet written would go out before the next request.
        let leftover = self.transport.as_ref().is_some_and(Transport::holds_bytes);
        let relaying = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Relaying(relaying) => Some(relaying),
            _ => None,
        };
        let reusable = !leftover && relaying.as_ref().is_some_and(|r| r.relay.is_reusable());
        let transport = self.transport.take();
        self.readable = false;
        if let (true, Some(mut transport), Some(upstream)) =
            (reusable, transport, io.upstream.as_deref_mut())
        {
            if transport.deregister(io.registry).is_ok() {
                upstream.release(transport, self.generation, io.now);
            }
        }
        let ending = match relaying.and_then(|relaying| relaying.typist) {
            Some(mut typist) => match typist.body_ended(ending) {
                Some(ending) => ending,
                None => {
                    self.phase = Phase::Typing(typist);
                    return self.type_rest(io, out);
                }
            },
            None => ending,
        };
        self.finish(ending, io, out)
    }

    /// A typed answer whose body has ended: types the next character when it is due, and ends
    /// the stream once everything is typed.
    fn type_rest(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        let Phase::Typing(typist) = &mut self.phase else {
            return Step::Continue;
        };
        if !io.client_clear {
            return Step::Continue;
        }
        match type_one(typist, io, out) {
            Some(ending) => {
                self.phase = Phase::Done;
                self.finish(ending, io, out)
            }
            None => Step::Continue,
        }
    }

    /// Appends the client's end by how the answer ended.
    fn finish(&mut self, ending: RelayEnding, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        let (outcome, error) = match ending {
            RelayEnding::Complete => {
                sse::done(out);
                (Outcome::Completed, None)
            }
            // Raw output: the upstream's events were the answer; nothing is added to them.
            RelayEnding::CompleteRaw => (Outcome::Completed, None),
            RelayEnding::Incomplete => {
                log::info!(conn = io.conn; "upstream ended without signalling completion");
                (Outcome::UpstreamIncomplete, None)
            }
            RelayEnding::Failed(failure) => {
                log::warn!(
                    conn = io.conn,
                    error = failure.detail.as_str();
                    "upstream stream failed"
                );
                io.tally.backend_error(io.backend);
                sse::error_event(out, &failure.message);
                (failure.outcome, Some(failure.detail))
            }
        };
        Step::Ended { outcome, error }
    }

    /// A file could not be read as the body was written (its size changed): 500.
    fn body_failed(&mut self, refusal: &attachments::Refusal, io: &mut Io<'_>) -> Step {
        let detail = refusal.log_detail();
        log::warn!(conn = io.conn, error = detail.as_str(); "attachment could not be sent");
        self.refuse(
            ErrorStatus::InternalServerError,
            &refusal.error.to_string(),
            Outcome::Other,
            detail,
            io,
        )
    }

    /// A connect failed or timed out: the addresses may be stale, and the client gets 502.
    fn unreachable(&mut self, message: &str, io: &mut Io<'_>) -> Step {
        if let Some(upstream) = io.upstream.as_deref() {
            upstream.refresh();
        }
        self.refuse(
            ErrorStatus::BadGateway,
            message,
            Outcome::UpstreamUnreachable,
            message.to_string(),
            io,
        )
    }

    fn refuse(
        &mut self,
        status: ErrorStatus,
        message: &str,
        outcome: Outcome,
        error: String,
        io: &mut Io<'_>,
    ) -> Step {
        io.tally.backend_error(io.backend);
        self.close_transport();
        self.phase = Phase::Done;
        Step::Refused(Refusal {
            status,
            message: message.to_string(),
            retry_after: None,
            outcome,
            error,
        })
    }

    fn flush_tls(&mut self, io: &mut Io<'_>) -> io::Result<()> {
        match self.transport.as_mut() {
            Some(transport) => transport.flush_tls(io.records_buf).map(|_| ()),
            None => Ok(()),
        }
    }

    fn close_transport(&mut self) {
        self.transport = None;
        self.readable = false;
    }
}

/// Types a typed answer's next character if it is due, counting it as a client event; the
/// ending once the typist is done.
fn type_one(typist: &mut Typist, io: &mut Io<'_>, out: &mut Vec<u8>) -> Option<RelayEnding> {
    match typist.type_due(io.now, &mut EventSink::new(out)) {
        Typed::Waiting => None,
        Typed::Char => {
            io.events += 1;
            io.tally.chunks_sent(1);
            None
        }
        Typed::Ended(ending) => Some(ending),
    }
}

/// The upstream connection failed (reset, TLS error) while the answer was being relayed.
/// Reads the upstream into the worker's read buffer, kept at its size between reads so that it
/// is zeroed once, not for every read.
fn read_upstream(transport: &mut Transport, io: &mut Io<'_>) -> io::Result<ReadOutcome> {
    io.read_buf.resize(READ_CHUNK, 0);
    transport.read_to(io.read_buf, io.records_buf)
}

fn broken_mid_answer(error: &io::Error) -> RelayEnding {
    RelayEnding::Failed(Failure {
        message: "the upstream connection failed before the answer was complete".to_string(),
        detail: error.to_string(),
        outcome: Outcome::UpstreamCut,
    })
}
