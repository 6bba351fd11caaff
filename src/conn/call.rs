//! The upstream side of a connection: one HTTP/1.1 call to the backend's API, relayed.
//!
//! | phase        | event                                        | next                                      |
//! |--------------|----------------------------------------------|-------------------------------------------|
//! | Connecting   | writable, connect succeeded                  | Sending                                   |
//! | Connecting   | connect failed, or connect timeout           | 502, Finishing                            |
//! | Sending      | request written (TLS: handed to rustls)      | AwaitingHead                              |
//! | AwaitingHead | bytes, head incomplete                       | AwaitingHead                              |
//! | AwaitingHead | head `200` event stream                      | Relaying (success head sent)              |
//! | AwaitingHead | other status                                 | 429 or 502, Finishing                     |
//! | AwaitingHead | closed or reset before any byte, on a pooled connection, first try | Connecting a fresh one (retry once) |
//! | AwaitingHead | closed, malformed head                       | 502, Finishing                            |
//! | AwaitingHead | response-head timeout                        | 504, Finishing                            |
//! | Relaying     | bytes                                        | Relaying (events written), or the relay's ending |
//! | Relaying     | client buffer not empty                      | Relaying, paused (upstream not read)      |
//! | Relaying     | client buffer drained                        | Relaying, resumed                         |
//! | Relaying     | EOF, reset or gap timeout                    | the relay's ending / `event: error`       |
//!
//! The relay's ending decides the client's end: `[DONE]`, a silent close, or `event: error`
//! (see `backends::upstream`). The upstream connection goes back to the pool only after a
//! response read to its end; in every other case it is closed, at once when the client leaves.

use std::io;
use std::time::Instant;

use super::{Connection, Context, Ending, State, Step};
use crate::backends::upstream::{
    excerpt, status_outcome, Ending as RelayEnding, Failure, Relay, StatusOutcome,
    Step as RelayStep, Translator, UpstreamRequest,
};
use crate::http::{parse_head, ErrorStatus, HeadParse, SSE_HEAD};
use crate::sse::{self, EventSink, DEFAULT_MAX_LINE};
use crate::upstream::transport::ReadOutcome;

/// Bytes taken from the upstream per read.
const READ_CHUNK: usize = 16 * 1024;
/// Reads per event before other connections get their turn; the rest waits for the next turn.
const READS_PER_TURN: usize = 16;

/// Why an upstream call failed, for logs and the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamEnd {
    Unreachable,
    Status(u16),
    Timeout,
    Cut,
    Error,
    Malformed,
    /// Ended cleanly without signalling completion: no `[DONE]`, no error.
    Incomplete,
}

impl UpstreamEnd {
    fn from_reason(reason: &str) -> UpstreamEnd {
        match reason {
            "upstream_cut" => UpstreamEnd::Cut,
            "upstream_malformed" => UpstreamEnd::Malformed,
            _ => UpstreamEnd::Error,
        }
    }
}

pub(super) struct Call {
    /// Kept until the head arrives, for the one retry on a fresh connection.
    request: Vec<u8>,
    written: usize,
    translator: Option<Box<dyn Translator>>,
    phase: Phase,
    reused: bool,
    retried: bool,
    /// When the current phase began, or when the upstream last sent something.
    since: Instant,
    sent_at: Option<Instant>,
    /// Reading stopped because the client has not taken what was written.
    paused: bool,
    /// More may be readable than one turn took; come back without waiting for an event.
    more: bool,
}

enum Phase {
    Connecting,
    Sending,
    AwaitingHead(Vec<u8>),
    Relaying(Box<Relay>),
}

impl Call {
    pub(super) fn new(request: UpstreamRequest, now: Instant) -> Call {
        Call {
            request: request.request,
            written: 0,
            translator: Some(request.translator),
            phase: Phase::Connecting,
            reused: false,
            retried: false,
            since: now,
            sent_at: None,
            paused: false,
            more: false,
        }
    }

    /// When this call needs attention without an event.
    pub(super) fn deadline(&self, settings: &super::Settings) -> Option<Instant> {
        let timeouts = &settings.upstream;
        match &self.phase {
            _ if self.more => Some(self.since),
            Phase::Connecting => Some(self.since + timeouts.connect_timeout),
            Phase::Sending | Phase::AwaitingHead(_) => {
                Some(self.since + timeouts.response_header_timeout)
            }
            // While paused the client's write stall deadline is the one that counts.
            Phase::Relaying(_) if self.paused => None,
            Phase::Relaying(_) => Some(self.since + timeouts.idle_gap_timeout),
        }
    }

    pub(super) fn is_paused(&self) -> bool {
        self.paused
    }

    /// The request kept for a retry and a response head being collected, for the memory
    /// budget. (rustls' and the relay's small buffers are not counted.)
    pub(super) fn held_bytes(&self) -> usize {
        let head = match &self.phase {
            Phase::AwaitingHead(head) => head.capacity(),
            _ => 0,
        };
        self.request.capacity() + head
    }
}

impl Connection {
    pub(super) fn start_call(&mut self, request: UpstreamRequest, ctx: &mut Context<'_>) -> Step {
        // Counted when the attempt starts, so that connect failures (counted as errors) never
        // outnumber requests.
        ctx.tally.backend_request();
        for note in &request.notes {
            log::warn!("conn={} {note}", self.id);
        }
        self.state = State::Calling(Box::new(Call::new(request, ctx.now)));
        self.open_upstream(false, ctx)
    }

    fn call(&mut self) -> Option<&mut Call> {
        match &mut self.state {
            State::Calling(call) => Some(call),
            _ => None,
        }
    }

    /// Takes a pooled connection (unless `fresh`) or starts connecting a new one.
    fn open_upstream(&mut self, fresh: bool, ctx: &mut Context<'_>) -> Step {
        let Some(upstream) = ctx.upstream.as_deref_mut() else {
            return self.fail_before_head(
                UpstreamEnd::Unreachable,
                "no upstream API is configured",
                ctx,
            );
        };
        let (mut transport, reused) = match upstream.open(ctx.now, fresh) {
            Ok(opened) => opened,
            Err(e) => {
                log::warn!("conn={} {e}", self.id);
                return self.connect_failed("the upstream API cannot be reached", ctx);
            }
        };
        if let Err(e) = transport.register(ctx.registry, self.upstream_token) {
            log::error!(
                "conn={} cannot register the upstream connection: {e}",
                self.id
            );
            return self.fail_before_head(
                UpstreamEnd::Unreachable,
                "the upstream API cannot be reached",
                ctx,
            );
        }
        self.upstream = Some(transport);
        let now = ctx.now;
        let Some(call) = self.call() else {
            return Step::Continue;
        };
        call.reused = reused;
        call.written = 0;
        call.since = now;
        if reused {
            call.phase = Phase::Sending;
            return self.send_request(ctx);
        }
        call.phase = Phase::Connecting;
        Step::Continue
    }

    pub(super) fn on_upstream_ready(
        &mut self,
        readable: bool,
        writable: bool,
        closed: bool,
        ctx: &mut Context<'_>,
    ) -> Step {
        let connecting = matches!(self.call().map(|c| &c.phase), Some(Phase::Connecting));
        let Some(upstream) = self.upstream.as_mut() else {
            return Step::Continue;
        };
        // TLS records wait for a connected socket; a refused connect is `finish_connect`'s to
        // report, as unreachable.
        if !connecting {
            if let Err(e) = upstream.flush_tls() {
                return self.upstream_broke(e, ctx);
            }
        }
        let Some(call) = self.call() else {
            return Step::Continue;
        };
        match &call.phase {
            Phase::Connecting if writable || closed => self.finish_connect(ctx),
            Phase::Connecting => Step::Continue,
            Phase::Sending => self.send_request(ctx),
            Phase::AwaitingHead(_) => self.read_head(ctx),
            Phase::Relaying(_) if (readable || closed) && !call.paused => self.relay(ctx),
            Phase::Relaying(_) => Step::Continue,
        }
    }

    /// The call's deadline passed (or it had more to read than one turn took).
    pub(super) fn on_call_timer(&mut self, ctx: &mut Context<'_>) -> Step {
        let now = ctx.now;
        let settings = ctx.settings;
        let Some(call) = self.call() else {
            return Step::Continue;
        };
        if call.more {
            call.more = false;
            return match call.phase {
                Phase::AwaitingHead(_) => self.read_head(ctx),
                Phase::Relaying(_) => self.relay(ctx),
                Phase::Connecting | Phase::Sending => Step::Continue,
            };
        }
        if call.deadline(settings).is_none_or(|at| now < at) {
            return Step::Continue;
        }
        match call.phase {
            Phase::Connecting => {
                log::warn!("conn={} upstream connect timed out", self.id);
                self.connect_failed("the upstream API could not be reached in time", ctx)
            }
            Phase::Sending | Phase::AwaitingHead(_) => {
                log::warn!(
                    "conn={} no upstream response head within the timeout",
                    self.id
                );
                self.upstream = None;
                ctx.tally.backend_error();
                self.status = ErrorStatus::GatewayTimeout.code();
                let ending = Ending::Upstream(UpstreamEnd::Timeout);
                self.respond_error(
                    ErrorStatus::GatewayTimeout,
                    "the upstream API did not answer in time",
                    None,
                    ending,
                    ctx,
                )
            }
            Phase::Relaying(_) => {
                log::warn!(
                    "conn={} upstream sent nothing within the idle gap timeout",
                    self.id
                );
                self.upstream = None;
                ctx.tally.backend_error();
                let ending = Ending::Upstream(UpstreamEnd::Timeout);
                self.end_with_error(ending, "the upstream API stopped sending", ctx)
            }
        }
    }

    /// The client took everything written: read the upstream again if the call was waiting.
    pub(super) fn resume_call(&mut self, ctx: &mut Context<'_>) -> Step {
        let now = ctx.now;
        match self.call() {
            Some(call) if call.paused => {
                call.paused = false;
                // The gap timeout counts upstream silence, not the time we chose not to read.
                call.since = now;
                self.relay(ctx)
            }
            _ => Step::Continue,
        }
    }

    fn finish_connect(&mut self, ctx: &mut Context<'_>) -> Step {
        let Some(upstream) = self.upstream.as_mut() else {
            return Step::Continue;
        };
        match upstream.check_connected() {
            Ok(true) => {
                let now = ctx.now;
                if let Some(call) = self.call() {
                    call.phase = Phase::Sending;
                    call.since = now;
                }
                self.send_request(ctx)
            }
            Ok(false) => Step::Continue,
            Err(e) => {
                log::warn!("conn={} upstream connect failed: {e}", self.id);
                self.connect_failed("the upstream API cannot be reached", ctx)
            }
        }
    }

    fn send_request(&mut self, ctx: &mut Context<'_>) -> Step {
        let (Some(upstream), State::Calling(call)) = (self.upstream.as_mut(), &mut self.state)
        else {
            return Step::Continue;
        };
        while call.written < call.request.len() {
            match upstream.write(&call.request[call.written..]) {
                Ok(0) => return Step::Continue,
                Ok(n) => call.written += n,
                Err(e) => return self.upstream_broke(e, ctx),
            }
        }
        match upstream.flush_tls() {
            Ok(_) => {}
            Err(e) => return self.upstream_broke(e, ctx),
        }
        call.phase = Phase::AwaitingHead(Vec::new());
        call.since = ctx.now;
        // Time to first byte counts from the first attempt, even when the request is retried on
        // a fresh connection.
        if call.sent_at.is_none() {
            call.sent_at = Some(ctx.now);
        }
        // The answer may be there already (or TLS has handshake records to read).
        self.read_head(ctx)
    }

    fn read_head(&mut self, ctx: &mut Context<'_>) -> Step {
        for _ in 0..READS_PER_TURN {
            let (Some(upstream), State::Calling(call)) = (self.upstream.as_mut(), &mut self.state)
            else {
                return Step::Continue;
            };
            let Phase::AwaitingHead(head) = &mut call.phase else {
                return Step::Continue;
            };
            let before = head.len();
            match upstream.read(head, READ_CHUNK) {
                Ok(ReadOutcome::Data(_)) => {
                    if before == 0 {
                        if let Some(sent) = call.sent_at {
                            ctx.tally
                                .backend_ttfb(ctx.now.saturating_duration_since(sent));
                        }
                    }
                    match parse_head(head) {
                        Ok(HeadParse::Incomplete) => {}
                        Ok(HeadParse::Complete(parsed, len)) => {
                            let rest = head.split_off(len);
                            return self.on_head(parsed, rest, ctx);
                        }
                        Err(e) => {
                            log::warn!("conn={} bad upstream response head: {e}", self.id);
                            return self.fail_before_head(
                                UpstreamEnd::Malformed,
                                "the upstream API sent a malformed response",
                                ctx,
                            );
                        }
                    }
                }
                Ok(ReadOutcome::WouldBlock) => return Step::Continue,
                Ok(ReadOutcome::Closed) => {
                    let nothing = before == 0;
                    return self.closed_before_head(nothing, None, ctx);
                }
                Err(e) => {
                    let nothing = before == 0;
                    return self.closed_before_head(nothing, Some(e), ctx);
                }
            }
        }
        self.more_to_read(ctx)
    }

    /// A pooled connection the server had closed fails before any byte: retry once, fresh.
    fn closed_before_head(
        &mut self,
        nothing_received: bool,
        error: Option<io::Error>,
        ctx: &mut Context<'_>,
    ) -> Step {
        let retry =
            nothing_received && self.call().is_some_and(|call| call.reused && !call.retried);
        self.upstream = None;
        if retry {
            log::debug!(
                "conn={} pooled upstream connection was closed; retrying on a fresh one",
                self.id
            );
            if let Some(call) = self.call() {
                call.retried = true;
            }
            return self.open_upstream(true, ctx);
        }
        let why = error.map_or_else(|| "closed".to_string(), |e| e.to_string());
        log::warn!(
            "conn={} upstream connection {why} before a complete response head",
            self.id
        );
        self.fail_before_head(
            UpstreamEnd::Cut,
            "the upstream API closed the connection without an answer",
            ctx,
        )
    }

    fn on_head(&mut self, head: crate::http::Head, rest: Vec<u8>, ctx: &mut Context<'_>) -> Step {
        match status_outcome(&head) {
            StatusOutcome::Reject {
                status,
                message,
                retry_after,
            } => {
                log::warn!(
                    "conn={} upstream answered {} {}: {}",
                    self.id,
                    head.status,
                    head.reason,
                    excerpt(&rest)
                );
                self.upstream = None;
                ctx.tally.backend_error();
                let ending = Ending::Upstream(UpstreamEnd::Status(head.status));
                self.respond_error(status, &message, retry_after.as_deref(), ending, ctx)
            }
            StatusOutcome::Stream => {
                let Some(call) = self.call() else {
                    return Step::Continue;
                };
                let Some(translator) = call.translator.take() else {
                    return Step::Continue;
                };
                call.phase =
                    Phase::Relaying(Box::new(Relay::new(&head, translator, DEFAULT_MAX_LINE)));
                call.request = Vec::new();
                self.status = 200;
                self.head_sent = true;
                ctx.scratch.clear();
                ctx.scratch.extend_from_slice(SSE_HEAD);
                // Fed even when empty: an empty body ends on this first feed.
                match self.feed_relay(&rest, ctx) {
                    Some(ending) => self.finish_relay(ending, ctx),
                    None => {
                        let outcome = self.send_scratch(ctx);
                        match self.after_write(outcome, ctx) {
                            Step::Continue => self.relay(ctx),
                            close => close,
                        }
                    }
                }
            }
        }
    }

    /// Reads the upstream while the client keeps up, relaying every chunk.
    fn relay(&mut self, ctx: &mut Context<'_>) -> Step {
        // Only a call with a body to relay reads here; the head is `read_head`'s.
        if self.relay_mut().is_none() {
            return Step::Continue;
        }
        for _ in 0..READS_PER_TURN {
            if !self.outbox.is_empty() {
                if let Some(call) = self.call() {
                    call.paused = true;
                }
                return Step::Continue;
            }
            let Some(upstream) = self.upstream.as_mut() else {
                return Step::Continue;
            };
            ctx.read_buf.clear();
            let outcome = upstream.read(ctx.read_buf, READ_CHUNK);
            let ending = match outcome {
                Ok(ReadOutcome::Data(_)) => {
                    let now = ctx.now;
                    if let Some(call) = self.call() {
                        call.since = now;
                    }
                    ctx.scratch.clear();
                    let input = std::mem::take(ctx.read_buf);
                    let ending = self.feed_relay(&input, ctx);
                    *ctx.read_buf = input;
                    ending
                }
                Ok(ReadOutcome::WouldBlock) => return Step::Continue,
                Ok(ReadOutcome::Closed) => {
                    ctx.scratch.clear();
                    self.relay_mut().map(Relay::on_eof)
                }
                Err(e) => {
                    ctx.scratch.clear();
                    Some(broken_mid_answer(&e))
                }
            };
            if let Some(ending) = ending {
                return self.finish_relay(ending, ctx);
            }
            let outcome = self.send_scratch(ctx);
            if let Step::Close(ending) = self.after_write(outcome, ctx) {
                return Step::Close(ending);
            }
        }
        self.more_to_read(ctx)
    }

    fn relay_mut(&mut self) -> Option<&mut Relay> {
        match &mut self.call()?.phase {
            Phase::Relaying(relay) => Some(relay),
            _ => None,
        }
    }

    /// Feeds upstream bytes to the relay, appending client events to `ctx.scratch`.
    fn feed_relay(&mut self, input: &[u8], ctx: &mut Context<'_>) -> Option<RelayEnding> {
        let id = self.id;
        let relay = self.relay_mut()?;
        let mut sink = EventSink::new(ctx.scratch);
        let fed = relay.feed(input, ctx.decode_buf, &mut sink);
        let events = sink.events();
        self.events_sent += events;
        ctx.tally.chunks_sent(events);
        for reason in fed.skipped {
            log::warn!("conn={id} skipped an upstream event: {reason}");
            ctx.tally.backend_error();
        }
        match fed.step {
            RelayStep::More => None,
            RelayStep::Ended(ending) => Some(ending),
        }
    }

    /// Appends the client's end by the relay's ending, keeps or closes the upstream
    /// connection, and writes what is left.
    fn finish_relay(&mut self, ending: RelayEnding, ctx: &mut Context<'_>) -> Step {
        // Bytes past the response still inside rustls would be read as the next response.
        let leftover = self
            .upstream
            .as_mut()
            .is_some_and(|u| u.has_buffered_plaintext());
        let reusable = !leftover && self.relay_mut().is_some_and(|relay| relay.is_reusable());
        let ending = match ending {
            RelayEnding::Complete => {
                sse::done(ctx.scratch);
                Ending::Completed
            }
            RelayEnding::Incomplete => {
                log::info!(
                    "conn={} upstream ended without signalling completion",
                    self.id
                );
                Ending::Upstream(UpstreamEnd::Incomplete)
            }
            RelayEnding::Failed(failure) => {
                log::warn!(
                    "conn={} upstream stream failed: {}",
                    self.id,
                    failure.detail
                );
                ctx.tally.backend_error();
                sse::error_event(ctx.scratch, &failure.message);
                Ending::Upstream(UpstreamEnd::from_reason(failure.reason))
            }
        };
        let transport = self.upstream.take();
        if let (true, Some(mut transport), Some(upstream)) =
            (reusable, transport, ctx.upstream.as_deref_mut())
        {
            if transport.deregister(ctx.registry).is_ok() {
                upstream.release(transport, ctx.now);
            }
        }
        self.state = State::Finishing(ending);
        let outcome = self.send_scratch(ctx);
        self.after_write(outcome, ctx)
    }

    fn more_to_read(&mut self, ctx: &mut Context<'_>) -> Step {
        let now = ctx.now;
        if let Some(call) = self.call() {
            call.more = true;
            call.since = now;
        }
        Step::Continue
    }

    fn upstream_broke(&mut self, error: io::Error, ctx: &mut Context<'_>) -> Step {
        let relaying = matches!(self.call().map(|c| &c.phase), Some(Phase::Relaying(_)));
        if relaying {
            ctx.scratch.clear();
            return self.finish_relay(broken_mid_answer(&error), ctx);
        }
        let nothing = !matches!(self.call().map(|c| &c.phase), Some(Phase::AwaitingHead(head)) if !head.is_empty());
        self.closed_before_head(nothing, Some(error), ctx)
    }

    /// A connect failed or timed out: the addresses may be stale, and the client gets 502.
    fn connect_failed(&mut self, message: &str, ctx: &mut Context<'_>) -> Step {
        if let Some(upstream) = ctx.upstream.as_deref() {
            upstream.refresh();
        }
        self.fail_before_head(UpstreamEnd::Unreachable, message, ctx)
    }

    /// Answers the client with 502 when the upstream could not give a head.
    fn fail_before_head(&mut self, why: UpstreamEnd, message: &str, ctx: &mut Context<'_>) -> Step {
        self.upstream = None;
        ctx.tally.backend_error();
        if self.head_sent {
            return self.end_with_error(Ending::Upstream(why), message, ctx);
        }
        self.respond_error(
            ErrorStatus::BadGateway,
            message,
            None,
            Ending::Upstream(why),
            ctx,
        )
    }
}

/// The upstream connection failed (reset, TLS error) while the answer was being relayed.
fn broken_mid_answer(error: &io::Error) -> RelayEnding {
    RelayEnding::Failed(Failure {
        message: "the upstream connection failed before the answer was complete".to_string(),
        detail: error.to_string(),
        reason: "upstream_cut",
    })
}
