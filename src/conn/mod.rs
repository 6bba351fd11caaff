//! One handed-off request, from Apache's Unix connection to the end of the client's stream.
//!
//! | state     | event                                   | next                                   |
//! |-----------|-----------------------------------------|----------------------------------------|
//! | Receiving | data or fds, more to come               | Receiving                              |
//! | Receiving | handoff complete, admitted              | Streaming (head and first events sent) |
//! | Receiving | handoff complete, bad or not admitted   | Finishing (HTTP error response)        |
//! | Receiving | rejected with no usable client fd       | closed                                 |
//! | Receiving | deadline (handoff timeout)              | Finishing (500) or closed (no fd yet)  |
//! | Receiving | complete, upstream backend              | Calling (see `call.rs` for its phases)  |
//! | Streaming | event time reached, nothing waiting     | Streaming, or Finishing (`[DONE]` / `event: error`) |
//! | Streaming | the source asks to run a program        | Streaming (see `command.rs` for the program's run) |
//! | Streaming | client writable                         | Streaming (flushed; produces if due)   |
//! | Streaming | client sent EOF or reset                | closed (client gone)                   |
//! | Streaming, Calling | max stream duration reached    | Finishing (`event: error`, or 504 before a head) |
//! | Calling   | the relay ended                         | Finishing (`[DONE]`, silent, or `event: error`) |
//! | Streaming | nothing taken for the write timeout     | closed (write stall)                   |
//! | Finishing | everything written                      | closed (the outcome it carries)        |
//! | Finishing | nothing taken for the write timeout     | closed (write stall)                   |
//! | any       | shutdown deadline                       | one last try to write `event: error` or 503, closed |
//!
//! The sockets (and a running program) live in the connection, not in the states, so that a
//! panic in the middle of a transition still leaves the client socket to answer with a 500, and
//! the program to be killed and reaped when the reactor closes the connection.

mod call;
mod child;
mod command;
mod outbox;
mod receive;

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry};

use crate::backends::{Backend, BackendError, EventSource, Next, Start};
use crate::config::{SocketType, UpstreamTimeouts};
use crate::handoff::{parse_handoff_data, HandoffError};
use crate::http::{error_response, ErrorStatus, SSE_HEAD};
use crate::sse::{self, EventSink};
use crate::stats::Tally;
use crate::sys::socket;
use crate::upstream::transport::Transport;
use crate::upstream::Upstream;

pub use call::UpstreamEnd;
pub use child::Reaper;
pub use outbox::{Flushed, Outbox};
use receive::{Received, Receiver};

/// Rounds of production for one connection per turn: a source that is always due (no delay)
/// must neither keep the loop to itself nor recurse.
const PRODUCTION_ROUNDS_PER_TURN: usize = 64;
/// TCP keepalive on client sockets, so that dead peers are noticed during long streams.
const CLIENT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Bytes a client may send after its request before we stop listening to it. Apache has read
/// the request; anything more is at best a pipelined request we will not answer.
const CLIENT_INPUT_LIMIT: usize = 64 * 1024;

/// The per-connection settings, derived once from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub socket_type: SocketType,
    pub max_handoff_bytes: usize,
    pub handoff_timeout: Duration,
    pub write_timeout: Duration,
    pub max_stream_duration: Option<Duration>,
    pub upstream: UpstreamTimeouts,
}

/// Whether a completed handoff may start streaming, decided by the reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Open,
    /// The connection limit or the memory budget is reached: 503 with `Retry-After`.
    Full,
    /// The daemon is draining: 503.
    ShuttingDown,
}

/// What a handler borrows from the reactor for one call.
pub struct Context<'a> {
    pub now: Instant,
    pub registry: &'a Registry,
    /// Shared per reactor: handoff data and outgoing frames are built here, so that an idle
    /// connection holds no buffer.
    pub scratch: &'a mut Vec<u8>,
    /// Shared per reactor, `max_handoff_bytes + 1` long.
    pub handoff_buf: &'a mut [u8],
    pub backend: &'a mut dyn Backend,
    /// The backend's upstream API, when it has one.
    pub upstream: Option<&'a mut Upstream>,
    /// Shared per reactor: bytes read from upstreams, and their decoded bodies.
    pub read_buf: &'a mut Vec<u8>,
    pub decode_buf: &'a mut Vec<u8>,
    pub settings: &'a Settings,
    pub admission: Admission,
    pub tally: &'a mut Tally,
    /// Killed programs of local backends, collected by the reactor.
    pub reaper: &'a mut Reaper,
}

/// The tokens of a connection's sockets.
#[derive(Debug, Clone, Copy)]
pub struct Tokens {
    pub apache: mio::Token,
    pub client: mio::Token,
    pub upstream: mio::Token,
    /// The stdout of a program a local backend runs.
    pub child: mio::Token,
}

/// Which socket an event is for and what it is ready to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    Apache,
    Client {
        readable: bool,
        writable: bool,
        closed: bool,
    },
    Upstream {
        readable: bool,
        writable: bool,
        closed: bool,
    },
    /// A program's stdout is readable or closed.
    Child,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The whole answer and `[DONE]` were written.
    Completed,
    ClientGone,
    WriteStalled,
    MaxDuration,
    ShutDown,
    Rejected(HandoffError),
    /// Refused with a 503 (limit, memory or shutdown) after a good handoff.
    Refused(Admission),
    BackendFailed(String),
    Panicked,
    /// The client sent far more than a request's worth of bytes after its request.
    ClientMisbehaved,
    /// The upstream call did not deliver a complete answer.
    Upstream(UpstreamEnd),
}

impl Ending {
    pub fn label(&self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::ClientGone => "client_disconnected",
            Ending::WriteStalled => "write_timeout",
            Ending::MaxDuration => "max_duration",
            Ending::ShutDown => "shutdown",
            Ending::Rejected(_) => "handoff_rejected",
            Ending::Refused(_) => "refused",
            Ending::BackendFailed(_) => "backend_error",
            Ending::Panicked => "panic",
            Ending::ClientMisbehaved => "client_protocol",
            Ending::Upstream(UpstreamEnd::Unreachable) => "upstream_unreachable",
            Ending::Upstream(UpstreamEnd::Status(_)) => "upstream_status",
            Ending::Upstream(UpstreamEnd::Timeout) => "upstream_timeout",
            Ending::Upstream(UpstreamEnd::Cut) => "upstream_cut",
            Ending::Upstream(UpstreamEnd::Error) => "upstream_error",
            Ending::Upstream(UpstreamEnd::Malformed) => "upstream_malformed",
            Ending::Upstream(UpstreamEnd::Incomplete) => "upstream_incomplete",
        }
    }
}

/// What the reactor should do after a handler returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Continue,
    Close(Ending),
}

enum State {
    Receiving(Receiver),
    Streaming(Streaming),
    /// Waiting for, or relaying, the backend's upstream API.
    Calling(Box<call::Call>),
    /// Writing the last bytes, then closing with the ending it carries.
    Finishing(Ending),
    /// Only while a transition is in progress (or after a panic interrupted one).
    Transitioning,
}

struct Streaming {
    source: Box<dyn EventSource>,
    /// When the source wants to be asked next; `None` once it is due and waits for the
    /// client to take what was written.
    next_at: Option<Instant>,
}

pub struct Connection {
    pub id: u64,
    accepted_at: Instant,
    /// The Unix connection from Apache, closed as soon as the handoff is complete.
    apache: Option<OwnedFd>,
    client: Option<OwnedFd>,
    client_token: mio::Token,
    client_registered: bool,
    /// The connection to the backend's API, while a call is in progress.
    upstream: Option<Transport>,
    upstream_token: mio::Token,
    /// The program a local source asked for, while it runs.
    /// Boxed: most connections never run one, and a connection's size is paid 50,000 times.
    child: Option<Box<child::Child>>,
    child_token: mio::Token,
    /// `max_stream_duration` from the stream's start.
    ends_at: Option<Instant>,
    outbox: Outbox,
    state: State,
    head_sent: bool,
    streaming_since: Option<Instant>,
    /// Counted against the connection limit but refused once received.
    over_capacity: bool,
    client_bytes_read: usize,
    bytes_sent: u64,
    events_sent: u32,
    status: u16,
}

impl Connection {
    /// A new connection from Apache, registered for reading.
    pub fn accept(
        id: u64,
        apache: OwnedFd,
        tokens: Tokens,
        over_capacity: bool,
        registry: &Registry,
        now: Instant,
    ) -> io::Result<Connection> {
        registry.register(
            &mut SourceFd(&apache.as_raw_fd()),
            tokens.apache,
            Interest::READABLE,
        )?;
        Ok(Connection {
            id,
            accepted_at: now,
            apache: Some(apache),
            client: None,
            client_token: tokens.client,
            client_registered: false,
            upstream: None,
            upstream_token: tokens.upstream,
            child: None,
            child_token: tokens.child,
            ends_at: None,
            outbox: Outbox::default(),
            state: State::Receiving(Receiver::default()),
            head_sent: false,
            streaming_since: None,
            over_capacity,
            client_bytes_read: 0,
            bytes_sent: 0,
            events_sent: 0,
            status: 0,
        })
    }

    pub fn is_streaming(&self) -> bool {
        self.streaming_since.is_some()
    }

    pub fn is_receiving(&self) -> bool {
        matches!(self.state, State::Receiving(_))
    }

    pub fn held_bytes(&self) -> usize {
        self.outbox.held_bytes()
            + self.child.as_ref().map_or(0, |child| child.held_bytes())
            + match &self.state {
                State::Receiving(receiver) => receiver.held_bytes(),
                State::Calling(call) => call.held_bytes(),
                _ => 0,
            }
    }

    /// The earliest moment this connection needs attention without any socket event.
    pub fn deadline(&self, settings: &Settings) -> Option<Instant> {
        let stall = self
            .outbox
            .stalled_since()
            .map(|t| t + settings.write_timeout);
        let own = match &self.state {
            State::Receiving(_) => Some(self.accepted_at + settings.handoff_timeout),
            State::Streaming(streaming) => {
                let due = if self.outbox.is_empty() {
                    streaming.next_at
                } else {
                    None
                };
                earliest(due, self.ends_at)
            }
            State::Calling(call) => earliest(call.deadline(settings), self.ends_at),
            State::Finishing(_) | State::Transitioning => None,
        };
        // A program's timeout runs whether or not the client keeps up, and in any state: a
        // stream that ends while it runs ends it at the latest then.
        let child = self.child.as_ref().map(|child| child.deadline());
        earliest(earliest(own, child), stall)
    }

    pub fn on_ready(&mut self, ready: Ready, ctx: &mut Context<'_>) -> Step {
        match ready {
            Ready::Apache => self.receive(ctx),
            Ready::Client {
                readable,
                writable,
                closed,
            } => {
                if readable || closed {
                    if let Some(ending) = self.read_client() {
                        return Step::Close(ending);
                    }
                }
                if writable {
                    let outcome = self.flush(ctx);
                    let step = self.after_write(outcome, ctx);
                    if step == Step::Continue && self.is_due(ctx.now) {
                        return self.produce(ctx);
                    }
                    return step;
                }
                Step::Continue
            }
            Ready::Upstream {
                readable,
                writable,
                closed,
            } => self.on_upstream_ready(readable, writable, closed, ctx),
            Ready::Child => self.on_child_ready(ctx),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Context<'_>) -> Step {
        let now = ctx.now;
        if let Some(since) = self.outbox.stalled_since() {
            if now >= since + ctx.settings.write_timeout {
                return Step::Close(Ending::WriteStalled);
            }
        }
        match &mut self.state {
            State::Receiving(receiver)
                if now >= self.accepted_at + ctx.settings.handoff_timeout =>
            {
                self.client = receiver.take_client();
                self.reject(HandoffError::TimedOut, ctx)
            }
            State::Calling(_) if self.ends_at.is_some_and(|t| now >= t) => {
                self.upstream = None;
                if self.head_sent {
                    return self.end_with_error(
                        Ending::MaxDuration,
                        "maximum stream duration exceeded",
                        ctx,
                    );
                }
                let message = "maximum stream duration exceeded before the upstream answered";
                self.respond_error(
                    ErrorStatus::GatewayTimeout,
                    message,
                    None,
                    Ending::MaxDuration,
                    ctx,
                )
            }
            State::Calling(_) => self.on_call_timer(ctx),
            State::Streaming(_) => {
                if self.ends_at.is_some_and(|t| now >= t) {
                    return self.end_with_error(
                        Ending::MaxDuration,
                        "maximum stream duration exceeded",
                        ctx,
                    );
                }
                if self.child.is_some() {
                    return self.on_child_timer(ctx);
                }
                if self.is_due(now) {
                    return self.produce(ctx);
                }
                Step::Continue
            }
            _ if self.child.is_some() => self.on_child_timer(ctx),
            _ => Step::Continue,
        }
    }

    /// The drain deadline passed (or a second signal came): end now, telling the client why.
    pub fn on_shutdown(&mut self, ctx: &mut Context<'_>) -> Ending {
        match std::mem::replace(&mut self.state, State::Transitioning) {
            State::Streaming(_) | State::Calling(_) if self.head_sent => {
                self.upstream = None;
                ctx.scratch.clear();
                sse::error_event(ctx.scratch, "server shutting down");
                self.send_scratch(ctx);
                Ending::ShutDown
            }
            State::Streaming(_) | State::Calling(_) => {
                self.upstream = None;
                let status = ErrorStatus::ServiceUnavailable;
                self.respond_error(status, "server shutting down", None, Ending::ShutDown, ctx);
                Ending::ShutDown
            }
            State::Finishing(ending) => ending,
            State::Receiving(mut receiver) => {
                self.client = receiver.take_client();
                if self.client.is_some() {
                    self.respond_error(
                        ErrorStatus::ServiceUnavailable,
                        "server shutting down",
                        None,
                        Ending::ShutDown,
                        ctx,
                    );
                }
                Ending::ShutDown
            }
            State::Transitioning => Ending::ShutDown,
        }
    }

    /// After a panic in this connection's handling: answer 500 if the head was not sent yet.
    pub fn on_panic(&mut self, ctx: &mut Context<'_>) {
        self.state = State::Transitioning;
        if !self.head_sent && self.client.is_some() {
            self.outbox = Outbox::default();
            self.respond_error(
                ErrorStatus::InternalServerError,
                "internal error",
                None,
                Ending::Panicked,
                ctx,
            );
        }
    }

    /// The one line an operator sees for each connection.
    pub fn log_end(&self, ending: &Ending, backend: &str, now: Instant) {
        let took = now.saturating_duration_since(self.accepted_at);
        let error = match ending {
            Ending::Rejected(error) => error.to_string(),
            Ending::BackendFailed(reason) => reason.clone(),
            _ => String::new(),
        };
        // Key fields: `key=value` after the message in text logs, members in JSON logs.
        log::info!(
            conn = self.id,
            backend = backend,
            status = self.status,
            bytes = self.bytes_sent,
            events = self.events_sent,
            duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            outcome = ending.label(),
            error = error.as_str();
            "connection ended"
        );
    }

    /// The connection is being closed: a program still running is killed and left to `reaper`.
    pub fn release_child(&mut self, registry: &Registry, reaper: &mut Reaper) {
        if let Some(child) = self.child.take() {
            child.abandon(registry, reaper);
        }
    }

    pub fn streaming_duration(&self, now: Instant) -> Option<Duration> {
        self.streaming_since
            .map(|t| now.saturating_duration_since(t))
    }

    fn receive(&mut self, ctx: &mut Context<'_>) -> Step {
        let State::Receiving(receiver) = &mut self.state else {
            return Step::Continue;
        };
        let Some(apache) = self.apache.as_ref() else {
            return Step::Continue;
        };
        match receiver.receive(apache.as_fd(), ctx.settings, ctx.handoff_buf) {
            Received::More => Step::Continue,
            Received::Failed { error, client } => {
                self.client = client;
                self.reject(error, ctx)
            }
            Received::Complete { client, len } => {
                self.client = Some(client);
                self.start(len, ctx)
            }
        }
    }

    /// The handoff is complete; its data is the first `len` bytes of `ctx.handoff_buf`.
    fn start(&mut self, len: usize, ctx: &mut Context<'_>) -> Step {
        // Apache's connection is never held during the stream.
        self.apache = None;
        let took = ctx.now.saturating_duration_since(self.accepted_at);
        if let Err(error) = self.prepare_client(ctx) {
            return self.reject(error, ctx);
        }
        let request = match parse_handoff_data(&ctx.handoff_buf[..len]) {
            Ok(request) => request,
            Err(error) => return self.reject(error, ctx),
        };
        ctx.tally.handoff_succeeded(took);
        let admission = if self.over_capacity {
            Admission::Full
        } else {
            ctx.admission
        };
        if admission != Admission::Open {
            // Over-capacity connections were counted when accepted.
            if admission == Admission::Full && !self.over_capacity {
                ctx.tally.connection_rejected();
            }
            let (message, retry) = match admission {
                Admission::ShuttingDown => ("server shutting down; retry shortly", None),
                _ => ("server at capacity; retry shortly", Some("1")),
            };
            return self.respond_error(
                ErrorStatus::ServiceUnavailable,
                message,
                retry,
                Ending::Refused(admission),
                ctx,
            );
        }
        let start = match ctx.backend.start(request, ctx.now) {
            Ok(start) => start,
            Err(error) => return self.refuse_start(error, ctx),
        };
        self.streaming_since = Some(ctx.now);
        self.ends_at = ctx.settings.max_stream_duration.map(|d| ctx.now + d);
        ctx.tally.stream_started();
        match start {
            Start::Local(source) => {
                ctx.tally.backend_request();
                self.stream_locally(source, ctx)
            }
            Start::Upstream(request) => self.start_call(request, ctx),
        }
    }

    /// Local backends write the success head at once, with their first events.
    fn stream_locally(&mut self, source: Box<dyn EventSource>, ctx: &mut Context<'_>) -> Step {
        self.status = 200;
        self.head_sent = true;
        self.state = State::Streaming(Streaming {
            source,
            next_at: Some(ctx.now),
        });
        ctx.scratch.clear();
        ctx.scratch.extend_from_slice(SSE_HEAD);
        self.produce_into_scratch(ctx)
    }

    fn refuse_start(&mut self, error: BackendError, ctx: &mut Context<'_>) -> Step {
        let (status, message) = match &error {
            BackendError::BadRequest(reason) => (
                ErrorStatus::BadRequest,
                format!("invalid request data: {reason}"),
            ),
            _ => {
                log::error!("conn={} backend could not start: {error}", self.id);
                ctx.tally.backend_error();
                (
                    ErrorStatus::InternalServerError,
                    "the backend could not start".to_string(),
                )
            }
        };
        let ending = Ending::BackendFailed(error.to_string());
        self.respond_error(status, &message, None, ending, ctx)
    }

    /// Validates the client fd and registers it: the rest of the connection's life is there.
    fn prepare_client(&mut self, ctx: &mut Context<'_>) -> Result<(), HandoffError> {
        let client = self.client.as_ref().ok_or(HandoffError::NoFd)?;
        match socket::socket_type(client.as_fd()) {
            Ok(libc::SOCK_STREAM) => {}
            Ok(other) => {
                self.client = None;
                return Err(HandoffError::BadFd {
                    reason: format!("socket type {other}, not SOCK_STREAM"),
                });
            }
            Err(e) => {
                self.client = None;
                return Err(HandoffError::BadFd {
                    reason: e.to_string(),
                });
            }
        }
        let bad_fd = |e: io::Error| HandoffError::BadFd {
            reason: e.to_string(),
        };
        if let Err(e) = socket::set_nonblocking(client.as_fd()) {
            self.client = None;
            return Err(bad_fd(e));
        }
        // Best effort: a Unix socketpair (tests, benchmarks) has no TCP options.
        let _ = socket::enable_keepalive(client.as_fd(), CLIENT_KEEPALIVE);
        if let Err(e) = self.register_client(ctx.registry) {
            self.client = None;
            return Err(bad_fd(e));
        }
        Ok(())
    }

    /// Readable to notice the client leaving, writable to resume blocked writes. Edge-triggered,
    /// so this is the only registration the client socket ever needs.
    fn register_client(&mut self, registry: &Registry) -> io::Result<()> {
        if self.client_registered {
            return Ok(());
        }
        let Some(client) = self.client.as_ref() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        registry.register(
            &mut SourceFd(&client.as_raw_fd()),
            self.client_token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.client_registered = true;
        Ok(())
    }

    fn reject(&mut self, error: HandoffError, ctx: &mut Context<'_>) -> Step {
        self.apache = None;
        ctx.tally.handoff_failed(&error);
        log::warn!("conn={} handoff rejected: {error}", self.id);
        if self.client.is_some() && !self.head_sent {
            let (status, message) = (error.client_status(), error.client_message());
            return self.respond_error(status, &message, None, Ending::Rejected(error), ctx);
        }
        Step::Close(Ending::Rejected(error))
    }

    /// Writes a complete error response, then ends with `ending` once it is out.
    fn respond_error(
        &mut self,
        status: ErrorStatus,
        message: &str,
        retry_after: Option<&str>,
        ending: Ending,
        ctx: &mut Context<'_>,
    ) -> Step {
        self.apache = None;
        self.status = status.code();
        self.head_sent = true;
        let response = error_response(status, message, retry_after);
        ctx.scratch.clear();
        ctx.scratch.extend_from_slice(&response);
        self.state = State::Finishing(ending);
        let outcome = self.send_scratch(ctx);
        // What does not fit at once needs writable events to follow.
        if !self.outbox.is_empty() && self.register_client(ctx.registry).is_err() {
            return Step::Close(self.finishing_ending());
        }
        self.after_write(outcome, ctx)
    }

    fn finishing_ending(&mut self) -> Ending {
        match std::mem::replace(&mut self.state, State::Transitioning) {
            State::Finishing(ending) => ending,
            _ => Ending::Completed,
        }
    }

    fn produce(&mut self, ctx: &mut Context<'_>) -> Step {
        ctx.scratch.clear();
        self.produce_into_scratch(ctx)
    }

    /// Asks the source for what is due, appends it to whatever `ctx.scratch` already holds,
    /// and writes the lot; again while the source is due and the client keeps up, a bounded
    /// number of rounds (the timer brings an always-due source back next turn).
    fn produce_into_scratch(&mut self, ctx: &mut Context<'_>) -> Step {
        for _ in 0..PRODUCTION_ROUNDS_PER_TURN {
            if let Step::Close(ending) = self.produce_once(ctx) {
                return Step::Close(ending);
            }
            if !self.is_due(ctx.now) {
                return Step::Continue;
            }
            ctx.scratch.clear();
        }
        Step::Continue
    }

    /// The source wants to be asked and the client has taken everything written.
    fn is_due(&self, now: Instant) -> bool {
        let State::Streaming(streaming) = &self.state else {
            return false;
        };
        self.outbox.is_empty() && streaming.next_at.is_some_and(|t| now >= t)
    }

    fn produce_once(&mut self, ctx: &mut Context<'_>) -> Step {
        let State::Streaming(streaming) = &mut self.state else {
            return Step::Continue;
        };
        let mut sink = EventSink::new(ctx.scratch);
        let next = streaming.source.produce(&mut sink);
        let events = sink.events();
        self.events_sent += events;
        ctx.tally.chunks_sent(events);
        match next {
            Next::After(delay) => streaming.next_at = Some(ctx.now + delay),
            Next::Complete => {
                sse::done(ctx.scratch);
                self.state = State::Finishing(Ending::Completed);
            }
            Next::Fail(message) => {
                sse::error_event(ctx.scratch, &message);
                self.state = State::Finishing(Ending::BackendFailed(message));
            }
            Next::Run(command) => {
                // Not asked again until the program's result is in.
                streaming.next_at = None;
                self.run_command(command, ctx);
            }
        }
        let outcome = self.send_scratch(ctx);
        self.after_write(outcome, ctx)
    }

    fn end_with_error(&mut self, ending: Ending, message: &str, ctx: &mut Context<'_>) -> Step {
        // A program still running has no one to answer any more.
        self.release_child(ctx.registry, ctx.reaper);
        ctx.scratch.clear();
        sse::error_event(ctx.scratch, message);
        self.state = State::Finishing(ending);
        let outcome = self.send_scratch(ctx);
        self.after_write(outcome, ctx)
    }

    /// Writes `ctx.scratch` to the client through the outbox.
    fn send_scratch(&mut self, ctx: &mut Context<'_>) -> Flushed {
        let Some(client) = self.client.as_ref() else {
            return Flushed::Failed(io::ErrorKind::NotConnected.into());
        };
        let (outcome, written) = self.outbox.write(client.as_fd(), ctx.scratch, ctx.now);
        self.count_sent(written, ctx);
        outcome
    }

    fn flush(&mut self, ctx: &mut Context<'_>) -> Flushed {
        let Some(client) = self.client.as_ref() else {
            return Flushed::Failed(io::ErrorKind::NotConnected.into());
        };
        let (outcome, written) = self.outbox.flush(client.as_fd(), ctx.now);
        self.count_sent(written, ctx);
        outcome
    }

    fn count_sent(&mut self, written: usize, ctx: &mut Context<'_>) {
        self.bytes_sent += written as u64;
        ctx.tally.bytes_sent(written);
    }

    /// Decides what follows a write: close when done or failed, produce more when due.
    fn after_write(&mut self, outcome: Flushed, ctx: &mut Context<'_>) -> Step {
        if let Flushed::Failed(error) = outcome {
            log::debug!("conn={} write failed: {error}", self.id);
            return Step::Close(Ending::ClientGone);
        }
        if !self.outbox.is_empty() {
            return Step::Continue;
        }
        match &self.state {
            State::Finishing(_) => Step::Close(self.finishing_ending()),
            State::Calling(call) if call.is_paused() => self.resume_call(ctx),
            _ => Step::Continue,
        }
    }

    /// Reads and discards what the client sends; its end of stream means it is gone.
    fn read_client(&mut self) -> Option<Ending> {
        let client = self.client.as_ref()?;
        let mut discard = [0u8; 2048];
        loop {
            match socket::recv(client.as_fd(), &mut discard) {
                Ok(0) => return Some(Ending::ClientGone),
                Ok(n) => {
                    self.client_bytes_read += n;
                    if self.client_bytes_read > CLIENT_INPUT_LIMIT {
                        return Some(Ending::ClientMisbehaved);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(Ending::ClientGone),
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
