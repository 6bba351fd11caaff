//! One handed-off request, from Apache's Unix connection to the end of the client's stream.
//!
//! The connection composes stages that own what they use: [`receive`] (Apache's connection and
//! the handoff's pieces), [`local`] (a backend's event source) and [`call`] (the upstream
//! connection, request, head and relay). It owns only what must survive any of them, a panic
//! included: the client socket with its output buffer ([`client`]), a program run for a local
//! source, and when the stream started. [`Connection::advance`] makes every transition an event
//! causes; its match arms, in order:
//!
//! | state     | event                                              | next                                              |
//! |-----------|----------------------------------------------------|---------------------------------------------------|
//! | Streaming, Finishing | Tick, detached past its window          | Done (`client_disconnected`)                      |
//! | Streaming, Finishing | ClientGone (EOF, reset), resumable, an event out | the same, detached (SPEC §2.1)           |
//! | Resuming  | Shutdown                                           | Finishing (503)                                   |
//! | Receiving | Apache: more to come                               | Receiving                                         |
//! | Receiving | Apache: failed                                     | Finishing (413 or 500), or Done with no usable client |
//! | Receiving | Apache: complete, the fd is not a stream socket    | Done                                              |
//! | Receiving | Apache: complete, over capacity, draining, bad data, refused by the backend or its attachments | Finishing (503, 400, 413, 415, 500…) |
//! | Receiving | Apache: complete, a `resume` id (resuming on)      | Resuming; Finishing (204) for `-done` or a malformed id |
//! | Receiving | Apache: complete, local backend                    | Streaming (head and first events)                 |
//! | Receiving | Apache: complete, upstream backend                 | Calling, or Attaching when files are to be read   |
//! | Receiving | Tick past the handoff timeout                      | Finishing (500), or Done with no client           |
//! | Receiving | Shutdown                                           | Finishing (503), or Done with no client           |
//! | Attaching | Tick                                               | Attaching (more to read), Calling (all read), Finishing (refused) |
//! | Attaching | Shutdown                                           | Finishing (503)                                   |
//! | Attaching, Calling, Streaming, Finishing | ClientGone          | Done (`client_disconnected`, or `other`)          |
//! | Attaching, Calling, Streaming, Finishing | WriteStalled        | Done (`write_timeout`)                            |
//! | Calling   | Tick past the max stream duration                  | Finishing (504)                                   |
//! | Calling   | Shutdown                                           | Finishing (503)                                   |
//! | Calling   | Upstream or Tick: no head yet                      | Calling                                           |
//! | Calling   | Upstream or Tick: the upstream answered 200        | Streaming (head and first events)                 |
//! | Calling   | Upstream or Tick: the call was refused             | Finishing (429, 502 or 504)                       |
//! | Streaming | Tick past the max stream duration                  | Finishing (`event: error`)                        |
//! | Streaming | Shutdown                                           | Finishing (`event: error`)                        |
//! | Streaming | Tick or Child (local), Tick or Upstream (relay)    | Streaming (events appended)                       |
//! | Streaming | the same: the source ended                         | Finishing (`[DONE]`, `event: error` or nothing)   |
//! | Finishing | Tick, nothing left to write, not detached          | Done                                              |
//! | Finishing | Shutdown                                           | Done                                              |
//! | any       | any other event                                    | unchanged                                         |
//!
//! Resuming moves a client between connections, so the reactor, which owns both, makes those
//! moves through [`resuming`]'s methods rather than by an event:
//!
//! | state     | the reactor                                        | next                                              |
//! |-----------|----------------------------------------------------|---------------------------------------------------|
//! | Resuming  | found no stream, or one that refuses (`answer_not_resumed`, `refused`, `take_back`) | Finishing (204) |
//! | Resuming  | found a kept, ended stream (`resume_kept`)         | Finishing (the replayed tail and its ending)      |
//! | Resuming  | found a running stream (`take_resumer`, `hand_over` to another worker) | Moved                         |
//! | Streaming, Finishing | a resume of this stream (`resume`)      | the same, with the new client                     |
//! | Streaming, Finishing, detached | the replay buffer filled, or the daemon drains (`drop_detached`, `on_drain`) | Done (`client_disconnected`) |
//!
//! Events: `Apache`, `Upstream`, `Child` are socket readiness; `Tick` is time passing or the
//! client having taken everything written; `ClientGone`, `WriteStalled` and `Shutdown` come
//! from the client's socket, its write stall deadline and the reactor. After each transition the
//! bytes a state appended are written to the client (stamped with their SSE ids first when the
//! stream is resumable, [`resumable`]); while the client keeps up and something changed, the
//! connection ticks itself again, a bounded number of rounds per turn.
//!
//! A resumable stream whose client left is *detached*: it goes on producing into its replay
//! buffer, with no client, until a `resume` handoff brings one (the reactor finds the stream and
//! calls [`Connection::resume`]), its window ends, or its buffer fills. A connection whose
//! client went over to another stream is `Moved`: the reactor closes it without counting or
//! logging it, since the stream it joined now speaks for its handoff.

mod attach;
mod call;
mod child;
mod client;
mod local;
mod outbox;
mod receive;
mod repeats;
mod resumable;
mod resuming;

use std::mem::{discriminant, replace, Discriminant};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry};

use crate::attachments::{self, AttachmentRequest, DataDirSlot, Flavour};
use crate::backends::{Attached, BackendError, Backends, Start};
use crate::config::UpstreamTimeouts;
use crate::deadline;
use crate::end::{EndReason, Outcome, Rejection};
use crate::handoff::{filter_response_headers, parse_handoff, HandoffData, HandoffError};
use crate::http::{
    error_response, error_response_with_headers, write_success_head, CustomHeaders, ErrorStatus,
    NO_HEADERS, SSE_HEAD,
};
use crate::resume::{Handover, StreamId};
use crate::sse;
use crate::stats::Tally;
use crate::upstream::Upstream;

use attach::{Attaching, Loaded};
use call::Call;
use child::Child;
use client::{Client, Input};
use local::Local;
use receive::{Received, Receiver};
use repeats::Repeats;
use resumable::Resumable;

pub use attach::report_dir as report_data_dir;
pub use child::Reaper;
pub use outbox::{Flushed, Outbox};
pub use receive::Limits;
pub use resumable::{Kept, ResumeSettings};

/// Rounds of work for one connection per event: a source that is always due (no delay) or an
/// upstream that always has more must neither keep the loop to itself nor recurse.
const ROUNDS_PER_EVENT: usize = 64;

/// The per-connection settings, derived from the configuration. A connection keeps the ones it
/// was accepted with: a reload applies to connections accepted after it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub handoff: Limits,
    pub handoff_timeout: Duration,
    pub write_timeout: Duration,
    pub max_stream_duration: Option<Duration>,
    pub upstream: UpstreamTimeouts,
    /// The longest upstream SSE line or event.
    pub max_line: usize,
    /// `server.max_attachment_bytes`.
    pub attachments: attachments::Limits,
    /// Streams are resumable (SPEC §2.1): `server.resume_window_ms` is not 0.
    pub resume: Option<ResumeSettings>,
}

impl Settings {
    pub fn from_config(config: &crate::config::Config) -> Settings {
        let server = &config.server;
        Settings {
            handoff: Limits {
                socket_type: server.socket_type,
                max_handoff_bytes: server.max_handoff_bytes,
            },
            handoff_timeout: server.handoff_timeout,
            write_timeout: server.write_timeout,
            max_stream_duration: Some(server.max_stream_duration).filter(|d| !d.is_zero()),
            upstream: config.backend.upstream.clone(),
            max_line: config.backend.upstream.sse_max_line_bytes,
            attachments: attachments::Limits {
                max_total: server.max_attachment_bytes,
            },
            resume: (!server.resume_window.is_zero()).then_some(ResumeSettings {
                window: server.resume_window,
                buffer: server.resume_buffer_bytes,
            }),
        }
    }
}

/// Whether a handoff completing now may start, decided by the reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Open,
    /// The daemon is draining: 503.
    ShuttingDown,
}

/// Buffers shared by every connection of a reactor, so that an idle connection holds none.
#[derive(Default)]
pub struct Buffers {
    /// What a transition has for the client: heads, events, error responses.
    pub out: Vec<u8>,
    /// `out` with the SSE ids of a resumable stream's events added.
    pub stamped: Vec<u8>,
    /// Handoff data, `max_handoff_bytes + 1` long.
    pub handoff: Box<[u8]>,
    /// Bytes read from upstreams, and their decoded bodies.
    pub read: Vec<u8>,
    pub decode: Vec<u8>,
    /// TLS records read from upstreams, decrypted from here into `read`.
    pub records: Vec<u8>,
    /// Attachment bytes (files read, bodies encoded) this loop turn may still produce: set
    /// each turn to [`FILE_BYTES_PER_TURN`], it bounds a turn's file work however many
    /// uploads run at once. A connection left without is due again next turn.
    pub file_bytes_left: usize,
}

/// Attachment bytes one loop turn produces at most, over all connections: four slices, which
/// encode in well under a millisecond, so that 50 concurrent uploads do not hold up the
/// other streams' turns (SPEC §10).
pub const FILE_BYTES_PER_TURN: usize = 4 * attachments::SLICE;

/// What a connection's handlers borrow from the reactor for one call.
pub struct Context<'a> {
    pub now: Instant,
    pub registry: &'a Registry,
    pub buffers: &'a mut Buffers,
    pub backends: &'a mut Backends,
    /// One per entry of `backends.targets()`, in that order.
    pub upstreams: &'a mut [Upstream],
    pub admission: Admission,
    pub tally: &'a mut Tally,
    /// Killed programs of local backends, collected by the reactor.
    pub reaper: &'a mut Reaper,
    /// `server.data_dir`, where attachment files are staged.
    pub data_dir: &'a mut DataDirSlot,
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

/// What the reactor should do after a handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// The connection is over: close it ([`Connection::end`] says how it ended).
    Close,
    /// The handoff asks to resume a stream: the reactor finds it ([`Connection::resume_ask`]).
    Resume,
}

/// How a connection ended, for its log line and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub reason: EndReason,
    /// What went wrong, for the log's `error=`.
    pub error: Option<String>,
}

impl End {
    fn new(reason: impl Into<EndReason>, error: Option<String>) -> End {
        End {
            reason: reason.into(),
            error,
        }
    }
}

enum State {
    /// Reading Apache's message: data and the client's fd.
    Receiving(Receiver),
    /// An upstream backend's attachments are being read.
    Attaching(Box<Attaching>),
    /// The backend's upstream is being asked; nothing written to the client yet.
    Calling(Box<Call>),
    /// The success head is out; events come from the source.
    Streaming(Source),
    /// The last bytes (an error response, `[DONE]`, `event: error`) are being written.
    Finishing(End),
    /// The handoff asks to resume a stream; the reactor is looking for it.
    Resuming(Ask),
    /// The client went over to the stream it resumed, which now speaks for this handoff.
    Moved,
    Done(End),
    /// Only while a transition is in progress (or after a panic interrupted one).
    Transitioning,
}

enum Source {
    Local(Box<Local>),
    Relay(Box<Call>),
}

/// What a `resume` handoff asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub stream: StreamId,
    /// The last event the client has.
    pub seen: u64,
    pub user_id: i64,
}

/// A `resume` handoff's client on its way to the stream it resumes, with the handoff's
/// identity: the stream speaks for that handoff from then on.
pub struct Resumer {
    client: Client,
    id: u64,
    accepted_at: Instant,
    ask: Ask,
    headers: Option<Box<CustomHeaders>>,
}

/// What the connection does after a transition's bytes.
enum Round {
    Again(Event),
    Stop(Step),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Apache,
    Upstream {
        readable: bool,
        writable: bool,
        closed: bool,
    },
    Child,
    /// Time passed, or the client took everything written.
    Tick,
    ClientGone(Outcome, Option<String>),
    WriteStalled,
    Shutdown,
}

pub struct Connection {
    pub id: u64,
    /// The settings this connection was accepted with.
    settings: Rc<Settings>,
    accepted_at: Instant,
    tokens: Tokens,
    /// Accepted over the connection limit or the memory budget: answered 503 once received.
    over_capacity: bool,
    /// The last event ran out of rounds with work left: due again next turn, whatever the
    /// state (one finishing waits for a tick, not for a socket).
    cut_short: bool,
    /// The client's fd as the handoff brought it, until it is checked and becomes `client`.
    /// Here rather than in the receiving stage, so that a panic still finds it to answer.
    arrived: Option<OwnedFd>,
    /// Once the handoff delivered it and it proved a stream socket.
    client: Option<Client>,
    /// The program a local source asked for, while it runs. Boxed: most connections never run
    /// one, and a connection's size is paid 50,000 times.
    program: Option<Box<Child>>,
    /// When the stream started for the current client (a resume brings another): for its
    /// duration, the max duration (unless resumable, which keeps its own start) and the active
    /// count.
    started: Option<Instant>,
    /// Warnings that may repeat, said once each.
    repeats: Repeats,
    /// The handoff's `response_headers` that passed the filter, for the success head and the
    /// error responses that follow the parsing of the data (SPEC §2, §3.3). Boxed: most
    /// handoffs have none.
    headers: Option<Box<CustomHeaders>>,
    /// The backend the request runs on, once chosen (the provider until then): the `backend`
    /// of its log line and metrics.
    backend: &'static str,
    /// The LangGraph profile it runs with (`""`: the default), for the log line.
    profile: Option<Box<str>>,
    /// Attached files and inline images sent upstream, for the log line.
    attachments: u32,
    /// With resuming on, from the backend's start. Boxed: only then is it paid for.
    resumable: Option<Box<Resumable>>,
    state: State,
}

impl Connection {
    /// A new connection from Apache, registered for reading.
    pub fn accept(
        id: u64,
        apache: OwnedFd,
        tokens: Tokens,
        over_capacity: bool,
        backend: &'static str,
        ctx: (&Registry, Rc<Settings>, Instant),
    ) -> std::io::Result<Connection> {
        let (registry, settings, now) = ctx;
        registry.register(
            &mut SourceFd(&apache.as_raw_fd()),
            tokens.apache,
            Interest::READABLE,
        )?;
        let receiver = Receiver::new(apache, deadline::after(now, settings.handoff_timeout));
        Ok(Connection {
            id,
            settings,
            accepted_at: now,
            tokens,
            over_capacity,
            arrived: None,
            cut_short: false,
            client: None,
            program: None,
            started: None,
            repeats: Repeats::default(),
            headers: None,
            backend,
            profile: None,
            attachments: 0,
            resumable: None,
            state: State::Receiving(receiver),
        })
    }

    /// A `resume` handoff another worker received, for a stream this worker runs: its client
    /// is registered here, and the connection waits for the reactor to find the stream.
    pub fn handed_over(
        handover: Handover,
        tokens: Tokens,
        registry: &Registry,
        settings: Rc<Settings>,
    ) -> Connection {
        let ask = Ask {
            stream: handover.stream,
            seen: handover.seen,
            user_id: handover.user_id,
        };
        let client = match Client::adopt(handover.client, registry, tokens.client) {
            Ok(client) => Some(client),
            Err(e) => {
                log::warn!(conn = handover.conn, error:% = e; "cannot take over a resuming client");
                None
            }
        };
        Connection {
            id: handover.conn,
            settings,
            accepted_at: handover.accepted_at,
            tokens,
            over_capacity: false,
            arrived: None,
            cut_short: false,
            client,
            program: None,
            started: None,
            repeats: Repeats::default(),
            headers: handover.headers,
            backend: handover.backend,
            profile: None,
            attachments: 0,
            resumable: None,
            state: State::Resuming(ask),
        }
    }

    /// The backend the request runs on (the provider until one was chosen).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Accepted over capacity: it is answered 503.
    pub fn is_over_capacity(&self) -> bool {
        self.over_capacity
    }

    /// How long its stream has run for the current client, if one started.
    pub fn streamed(&self, now: Instant) -> Option<Duration> {
        self.started.map(|t| now.saturating_duration_since(t))
    }

    pub fn held_bytes(&self) -> usize {
        self.client.as_ref().map_or(0, Client::held_bytes)
            + self.program.as_ref().map_or(0, |child| child.held_bytes())
            + self.resumable.as_ref().map_or(0, |r| r.held_bytes())
            + match &self.state {
                State::Receiving(receiver) => receiver.held_bytes(),
                State::Attaching(attaching) => attaching.held_bytes(),
                State::Calling(call) | State::Streaming(Source::Relay(call)) => call.held_bytes(),
                _ => 0,
            }
    }

    /// The earliest moment this connection needs attention without any socket event.
    pub fn deadline(&self) -> Option<Instant> {
        let settings = &*self.settings;
        let clear = self.client.as_ref().is_none_or(Client::is_clear);
        let stall = self
            .client
            .as_ref()
            .and_then(|c| c.stall_deadline(settings.write_timeout));
        let ends_at = self.ends_at();
        let own = match &self.state {
            State::Receiving(receiver) => Some(receiver.deadline()),
            State::Attaching(attaching) => Some(attaching.deadline()),
            State::Calling(call) | State::Streaming(Source::Relay(call)) => {
                earliest(call.deadline(&settings.upstream, clear), ends_at)
            }
            State::Streaming(Source::Local(local)) => {
                earliest(local.deadline(clear, self.program.as_deref()), ends_at)
            }
            State::Finishing(_)
            | State::Resuming(_)
            | State::Moved
            | State::Done(_)
            | State::Transitioning => None,
        };
        // Any moment past is due at once: when the connection was accepted will do.
        let again = self.cut_short.then_some(self.accepted_at);
        earliest(earliest(earliest(own, stall), self.detached_until()), again)
    }

    pub fn on_ready(&mut self, ready: Ready, ctx: &mut Context<'_>) -> Step {
        let event = match ready {
            Ready::Apache => Event::Apache,
            Ready::Upstream {
                readable,
                writable,
                closed,
            } => Event::Upstream {
                readable,
                writable,
                closed,
            },
            Ready::Child => Event::Child,
            Ready::Client {
                readable,
                writable,
                closed,
            } => match self.on_client_ready(readable || closed, writable, ctx) {
                Some(event) => event,
                None => return Step::Continue,
            },
        };
        self.handle(event, ctx)
    }

    /// A deadline of this connection may have passed.
    pub fn on_timer(&mut self, ctx: &mut Context<'_>) -> Step {
        let write_timeout = self.settings.write_timeout;
        let stalled = self
            .client
            .as_ref()
            .and_then(|c| c.stall_deadline(write_timeout))
            .is_some_and(|at| ctx.now >= at);
        let event = if stalled {
            Event::WriteStalled
        } else {
            Event::Tick
        };
        self.handle(event, ctx)
    }

    /// The drain deadline passed (or a second signal came): end now, telling the client why.
    /// The reactor closes the connection right after, whatever is left unwritten.
    pub fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        self.handle(Event::Shutdown, ctx);
    }

    /// After a panic in this connection's handling: answer 500 if no answer had begun. The
    /// reactor closes the connection right after.
    pub fn on_panic(&mut self, ctx: &mut Context<'_>) {
        self.release_program(ctx);
        let reason = if self.over_capacity {
            EndReason::OverCapacity
        } else if self.client.is_some() {
            EndReason::Stream(Outcome::Panic)
        } else {
            EndReason::Rejected(Rejection::Other)
        };
        let end = End::new(reason, Some("a panic in this connection's handling".into()));
        if self.arrived.is_some() {
            let _ = self.adopt_client(ctx);
        }
        let unanswered = self.client.as_ref().is_some_and(|c| !c.has_answered());
        if unanswered {
            ctx.buffers.out.clear();
            let message = "internal error";
            self.respond(ErrorStatus::InternalServerError, message, end.clone(), ctx);
            // One try: the reactor closes the connection right after.
            self.write_out(ctx);
        }
        self.state = State::Done(end);
    }

    /// How the connection ended (or would end if closed now).
    pub fn end(&self) -> End {
        match &self.state {
            State::Done(end) | State::Finishing(end) => end.clone(),
            _ => End::new(Outcome::Canceled, None),
        }
    }

    /// The one line an operator sees for each connection.
    pub fn log_end(&self, end: &End, now: Instant) {
        let backend = self.backend;
        let took = now.saturating_duration_since(self.accepted_at);
        let left = self.resumable.as_ref().and_then(|r| r.left());
        let (status, bytes, events) = match (&self.client, left) {
            (Some(c), _) => (c.status(), c.bytes_sent(), c.events()),
            (None, Some(left)) => (left.status, left.bytes, left.events),
            (None, None) => (0, 0, 0),
        };
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let outcome = end.reason.to_string();
        let error = end.error.as_deref().unwrap_or("");
        let suppressed = Some(self.repeats.suppressed()).filter(|&n| n > 0);
        // Key fields: `key=value` after the message in text logs, members in JSON logs; the
        // logger leaves out an empty `error` and a `None` (`suppressed` when nothing was).
        log::info!(
            conn = self.id,
            backend = backend,
            profile = self.profile.as_deref(),
            status = status,
            bytes = bytes,
            events = events,
            attachments = self.attachments,
            duration_ms = duration_ms,
            outcome = outcome.as_str(),
            error = error,
            suppressed = suppressed;
            "connection ended"
        );
    }

    /// The connection is being closed: a program still running is killed and left to `reaper`.
    pub fn release_child(&mut self, registry: &Registry, reaper: &mut Reaper) {
        if let Some(child) = self.program.take() {
            child.abandon(registry, reaper);
        }
    }

    /// Applies `event`, writes what it produced, and goes on while the client keeps up and
    /// something changes (bounded).
    fn handle(&mut self, event: Event, ctx: &mut Context<'_>) -> Step {
        let mut event = event;
        self.cut_short = false;
        for _ in 0..ROUNDS_PER_EVENT {
            ctx.buffers.out.clear();
            let before = discriminant(&self.state);
            self.advance(event, ctx);
            match self.after_transition(before, true, ctx) {
                Round::Again(next) => event = next,
                Round::Stop(step) => return step,
            }
        }
        // The next round's event is a tick, or a client failure the next write finds again.
        self.cut_short = true;
        Step::Continue
    }

    /// Sends what a transition left in `out` (stamped first when it is the stream's own output,
    /// `fresh`, and the stream is resumable; kept only, when its client left) and says what
    /// comes next.
    fn after_transition(
        &mut self,
        before: Discriminant<State>,
        fresh: bool,
        ctx: &mut Context<'_>,
    ) -> Round {
        match self.state {
            State::Done(_) | State::Moved => return Round::Stop(Step::Close),
            State::Resuming(_) => return Round::Stop(Step::Resume),
            _ => {}
        }
        let wrote = !ctx.buffers.out.is_empty();
        if wrote {
            if fresh && self.stamp(ctx).is_err() {
                let why = "the replay buffer filled before the client came back";
                self.drop_detached(why, ctx);
                return Round::Stop(Step::Close);
            }
            if !self.is_detached() {
                match self.write_out(ctx) {
                    Flushed::Empty => {}
                    Flushed::Blocked => return Round::Stop(Step::Continue),
                    Flushed::Failed(e) => {
                        log::debug!(conn = self.id, error:% = e; "client write failed");
                        return Round::Again(Event::ClientGone(client::gone(&e), None));
                    }
                }
            }
        }
        if !wrote && discriminant(&self.state) == before {
            return Round::Stop(Step::Continue);
        }
        // The client took everything: the stage may go on at once.
        Round::Again(Event::Tick)
    }

    /// Sends what a step outside `advance` put in `out` (a resume's head and replay, a 204),
    /// then goes on as after any transition.
    fn finish_round(&mut self, before: Discriminant<State>, ctx: &mut Context<'_>) -> Step {
        match self.after_transition(before, false, ctx) {
            Round::Stop(step) => step,
            Round::Again(event) => self.handle(event, ctx),
        }
    }

    /// Adds the SSE ids to a resumable stream's output and keeps its events for a replay.
    fn stamp(&mut self, ctx: &mut Context<'_>) -> Result<(), crate::resume::Full> {
        let Some(stream) = self.resumable.as_deref_mut() else {
            return Ok(());
        };
        // Nothing to stamp before the head (an error response), and not the head itself.
        let Some(skip) = stream.take_skip() else {
            return Ok(());
        };
        let Buffers { out, stamped, .. } = &mut *ctx.buffers;
        let skip = skip.min(out.len());
        stamped.clear();
        stamped.extend_from_slice(&out[..skip]);
        let result = stream.stamp(&out[skip..], stamped);
        std::mem::swap(out, stamped);
        result
    }

    fn advance(&mut self, event: Event, ctx: &mut Context<'_>) {
        let now = ctx.now;
        let ends_at = self.ends_at();
        let past_max_duration = ends_at.is_some_and(|at| now >= at);
        self.state = match (replace(&mut self.state, State::Transitioning), event) {
            (state @ (State::Streaming(_) | State::Finishing(_)), Event::Tick)
                if self.detached_until().is_some_and(|at| now >= at) =>
            {
                drop(state);
                self.release_program(ctx);
                let why = "not resumed within resume_window_ms";
                State::Done(End::new(Outcome::ClientDisconnected, Some(why.into())))
            }
            (State::Streaming(source), Event::ClientGone(Outcome::ClientDisconnected, _))
                if self.may_detach(ctx) =>
            {
                self.detach(ctx);
                State::Streaming(source)
            }
            (State::Finishing(end), Event::ClientGone(Outcome::ClientDisconnected, _))
                if self.may_detach(ctx) =>
            {
                self.detach(ctx);
                State::Finishing(end)
            }
            (State::Resuming(_), Event::Shutdown) => {
                let end = End::new(Outcome::Canceled, None);
                self.respond_busy("server shutting down", end, ctx)
            }

            (State::Receiving(mut receiver), Event::Apache) => {
                let limits = self.settings.handoff;
                match receiver.receive(limits, &mut ctx.buffers.handoff, &mut self.arrived) {
                    Received::More => State::Receiving(receiver),
                    Received::Failed(error) => self.reject(error, ctx),
                    Received::Complete { len } => self.start(len, ctx),
                }
            }
            (State::Receiving(receiver), Event::Tick) if now >= receiver.deadline() => {
                self.reject(HandoffError::TimedOut, ctx)
            }
            (State::Receiving(_), Event::Shutdown) => self.refuse_unfinished(ctx),

            (State::Attaching(attaching), Event::Tick) => self.attach(attaching, ctx),
            (State::Attaching(_), Event::Shutdown) => {
                let end = End::new(Outcome::Canceled, None);
                self.respond_busy("server shutting down", end, ctx)
            }

            (
                State::Attaching(_) | State::Calling(_) | State::Streaming(_) | State::Finishing(_),
                Event::ClientGone(outcome, error),
            ) => {
                self.release_program(ctx);
                State::Done(End::new(outcome, error))
            }
            (
                State::Attaching(_) | State::Calling(_) | State::Streaming(_) | State::Finishing(_),
                Event::WriteStalled,
            ) => {
                self.release_program(ctx);
                State::Done(End::new(Outcome::WriteTimeout, None))
            }

            (State::Calling(_), Event::Tick) if past_max_duration => {
                let end = End::new(Outcome::MaxDuration, None);
                let message = "maximum stream duration exceeded before the upstream answered";
                self.respond_accepted(ErrorStatus::GatewayTimeout, message, None, end, ctx)
            }
            (State::Calling(_), Event::Shutdown) => {
                let end = End::new(Outcome::Canceled, None);
                self.respond_busy("server shutting down", end, ctx)
            }
            (State::Calling(call), event @ (Event::Upstream { .. } | Event::Tick)) => {
                self.call(call, event, ctx)
            }

            (State::Streaming(_), Event::Tick) if past_max_duration => self.end_with_error(
                Outcome::MaxDuration,
                "maximum stream duration exceeded",
                ctx,
            ),
            (State::Streaming(_), Event::Shutdown) => {
                self.end_with_error(Outcome::Canceled, "server shutting down", ctx)
            }
            (State::Streaming(Source::Local(local)), Event::Tick) => {
                self.local(local, local::Event::Tick, ctx)
            }
            (State::Streaming(Source::Local(local)), Event::Child) => {
                self.local(local, local::Event::Child, ctx)
            }
            (
                State::Streaming(Source::Relay(call)),
                event @ (Event::Upstream { .. } | Event::Tick),
            ) => self.call(call, event, ctx),

            (State::Finishing(end), Event::Tick) if self.client_clear() && !self.is_detached() => {
                State::Done(end)
            }
            (State::Finishing(end), Event::Shutdown) => State::Done(end),

            (state, _) => state,
        };
    }

    /// The handoff is complete; its data is the first `len` bytes of the handoff buffer.
    fn start(&mut self, len: usize, ctx: &mut Context<'_>) -> State {
        if let Err(error) = self.adopt_client(ctx) {
            return self.reject(error, ctx);
        }
        let data = &ctx.buffers.handoff[..len];
        if data.iter().all(|&b| b == 0) {
            // The newest Go daemon logs each of these at info; they are the usual case.
            log::debug!(conn = self.id; "handoff without data: defaults apply");
        }
        let mut parsed = parse_handoff(data);
        let staged = std::mem::take(&mut parsed.staged);
        // What the attachment check is given deletes its own files; every other file the data
        // names is deleted below, whatever the answer (SPEC §4.5 "Deletion").
        let mut claimed = None;
        let state = self.start_parsed(parsed.data, &mut claimed, ctx);
        if !staged.is_empty() {
            attach::discard_unclaimed(
                &staged,
                claimed.as_ref(),
                ctx.data_dir,
                ctx.now,
                &mut self.repeats,
                self.id,
            );
        }
        state
    }

    /// Decides what becomes of parsed handoff data (SPEC §1.2): capacity, drain, the data,
    /// the backend, the attachments; `claimed` is set to what the attachment check was given.
    fn start_parsed(
        &mut self,
        data: Result<HandoffData, HandoffError>,
        claimed: &mut Option<AttachmentRequest>,
        ctx: &mut Context<'_>,
    ) -> State {
        // First: a 503 carries the response headers too, when the data parses.
        if let Ok(request) = &data {
            self.take_response_headers(request);
        }
        if self.over_capacity {
            let end = End::new(EndReason::OverCapacity, None);
            return self.respond_busy("server at capacity; retry shortly", end, ctx);
        }
        let took = ctx.now.saturating_duration_since(self.accepted_at);
        ctx.tally.handoff_received(took);
        if ctx.admission == Admission::ShuttingDown {
            let end = End::new(Outcome::Canceled, None);
            return self.respond_busy("server shutting down", end, ctx);
        }
        let request = match data {
            Ok(request) => request,
            Err(error) => return self.reject(error, ctx),
        };
        if let Some(warning) = request.ignored_keys_warning() {
            log::warn!(conn = self.id, keys = warning.as_str(); "handoff keys ignored");
        }
        // With resuming off, `resume` is ignored and the request runs as any other.
        if let (Some(resume), Some(_)) = (request.resume.as_deref(), self.settings.resume) {
            return self.ask_resume(resume, request.user_id, ctx);
        }
        let choice = match ctx.backends.choose(&request) {
            Ok(choice) => choice,
            Err(error) => return self.refuse_start(error, ctx),
        };
        self.backend = choice.backend;
        self.profile = choice.profile.map(String::into_boxed_str);
        let wanted = AttachmentRequest::from_handoff(&request);
        if !wanted.attaches_anything() {
            return self.begin(request, None, ctx);
        }
        let wanted = claimed.insert(wanted);
        let limits = self.settings.attachments;
        let checked = attach::check(&request, wanted, ctx.data_dir, limits, ctx.now);
        let mut checked = match checked {
            Ok(checked) => checked,
            Err(refusal) => return self.refuse_attachments(refusal, ctx),
        };
        attach::log_warnings(checked.take_warnings(), &mut self.repeats, self.id);
        if choice.flavour == Flavour::Local {
            let count = checked.count();
            log::info!(conn = self.id, count = count; "attachments ignored by this backend");
            return self.begin(request, None, ctx);
        }
        let attaching = Attaching::new(request, checked, choice.flavour, ctx.now);
        // Most attachments are read in the first slice: no turn is lost waiting for the next.
        self.attach(Box::new(attaching), ctx)
    }

    /// Reads the next slice of the attachments; starts the backend once all are read.
    fn attach(&mut self, attaching: Box<Attaching>, ctx: &mut Context<'_>) -> State {
        let budget = &mut ctx.buffers.file_bytes_left;
        match attaching.load(budget, ctx.now, &mut self.repeats, self.id) {
            Ok(Loaded::More(attaching)) => State::Attaching(attaching),
            Ok(Loaded::Ready(ready)) => {
                let (request, attached) = *ready;
                self.begin(request, attached, ctx)
            }
            Err(refusal) => self.refuse_attachments(refusal, ctx),
        }
    }

    /// Starts the backend on an accepted handoff.
    fn begin(
        &mut self,
        request: HandoffData,
        attached: Option<Attached>,
        ctx: &mut Context<'_>,
    ) -> State {
        let sent = attached.as_ref().map_or(0, |a| a.content.sent());
        let user_id = request.user_id;
        let started = match ctx.backends.start(request, attached, ctx.now) {
            Ok(started) => started,
            Err(error) => return self.refuse_start(error, ctx),
        };
        self.attachments = u32::try_from(sent).unwrap_or(u32::MAX);
        self.backend = started.backend;
        self.started = Some(ctx.now);
        self.resumable_from(user_id, ctx.now);
        ctx.tally.stream_started();
        match started.start {
            Start::Local(source) => {
                ctx.tally.backend_request(self.backend);
                // Local backends answer at once: the head goes out with the first events.
                self.answer(200);
                write_success_head(&mut ctx.buffers.out, self.custom_headers());
                self.began_stream(ctx.buffers.out.len());
                let local = Box::new(Local::new(source, ctx.now));
                self.local(local, local::Event::Tick, ctx)
            }
            Start::Upstream(request) => {
                // Unknown target: the call refuses itself with 502 when it opens.
                let generation = ctx
                    .upstreams
                    .get(request.target)
                    .map_or(0, Upstream::generation);
                let max_line = self.settings.max_line;
                let call = Call::new(request, generation, ctx.now, max_line, self.id);
                State::Calling(Box::new(call))
            }
        }
    }

    /// The attachments refused the handoff (every file is deleted already): 400, 413 or 500.
    fn refuse_attachments(
        &mut self,
        mut refusal: attachments::Refusal,
        ctx: &mut Context<'_>,
    ) -> State {
        attach::log_refusal(&mut refusal, &mut self.repeats, self.id);
        let reason = EndReason::Rejected(refusal.error.rejection());
        let end = End::new(reason, Some(refusal.log_detail()));
        let message = refusal.error.to_string();
        self.respond(refusal.error.status(), &message, end, ctx)
    }

    /// The handoff's `response_headers`, filtered (what was dropped is said once, at warn).
    fn take_response_headers(&mut self, request: &HandoffData) {
        let filtered = filter_response_headers(request.response_headers.as_ref());
        if let Some(warning) = filtered.not_an_object_warning() {
            log::warn!(conn = self.id, problem = warning; "response headers ignored");
        }
        if let Some(dropped) = filtered.dropped_field() {
            log::warn!(conn = self.id, dropped = dropped.as_str(); "response headers dropped");
        }
        if !filtered.headers.is_empty() {
            self.headers = Some(Box::new(filtered.headers));
        }
    }

    fn custom_headers(&self) -> &CustomHeaders {
        self.headers.as_deref().unwrap_or(&NO_HEADERS)
    }

    /// The fd the handoff brought becomes the client, if it is a stream socket.
    fn adopt_client(&mut self, ctx: &mut Context<'_>) -> Result<(), HandoffError> {
        if self.client.is_some() {
            return Ok(());
        }
        let fd = self.arrived.take().ok_or(HandoffError::NoFd)?;
        self.client = Some(Client::adopt(fd, ctx.registry, self.tokens.client)?);
        Ok(())
    }

    /// A handoff failed before it could start: the client, when its fd came and is a socket,
    /// gets the error's status.
    fn reject(&mut self, error: HandoffError, ctx: &mut Context<'_>) -> State {
        log::warn!(conn = self.id, error:% = error; "handoff rejected");
        let reason = if self.over_capacity {
            EndReason::OverCapacity
        } else {
            EndReason::Rejected(error.rejection())
        };
        let end = End::new(reason, Some(error.to_string()));
        if self.arrived.is_some() {
            if let Err(bad) = self.adopt_client(ctx) {
                log::warn!(conn = self.id, error:% = bad; "cannot answer the client");
            }
        }
        if self.client.is_none() {
            return State::Done(end);
        }
        if self.over_capacity {
            return self.respond_busy("server at capacity; retry shortly", end, ctx);
        }
        let message = error.client_message();
        self.respond(error.client_status(), &message, end, ctx)
    }

    /// Shutdown came before the handoff was complete: 503 if its fd is there.
    /// Shutdown came before the handoff was complete: like every handoff taken during the
    /// drain it is answered 503 (outcome `canceled`), if its fd is there to answer.
    fn refuse_unfinished(&mut self, ctx: &mut Context<'_>) -> State {
        if self.adopt_client(ctx).is_err() {
            let error = "shutting down before the handoff was complete";
            return State::Done(End::new(Rejection::Other, Some(error.into())));
        }
        if self.over_capacity {
            let end = End::new(EndReason::OverCapacity, None);
            return self.respond_busy("server at capacity; retry shortly", end, ctx);
        }
        let took = ctx.now.saturating_duration_since(self.accepted_at);
        ctx.tally.handoff_received(took);
        let end = End::new(Outcome::Canceled, None);
        self.respond_busy("server shutting down", end, ctx)
    }

    fn refuse_start(&mut self, error: BackendError, ctx: &mut Context<'_>) -> State {
        let (status, reason) = match error.rejection() {
            Some(rejection) => (ErrorStatus::BadRequest, EndReason::Rejected(rejection)),
            None => {
                log::error!(conn = self.id, error:% = error; "the backend could not start");
                ctx.tally.backend_error(self.backend);
                (
                    ErrorStatus::InternalServerError,
                    EndReason::Stream(Outcome::Other),
                )
            }
        };
        let message = error.client_message();
        let end = End::new(reason, Some(error.to_string()));
        self.respond(status, &message, end, ctx)
    }

    /// Runs the local stage on `event`.
    fn local(
        &mut self,
        mut local: Box<Local>,
        event: local::Event,
        ctx: &mut Context<'_>,
    ) -> State {
        let client_clear = self.client_clear();
        let mut io = local::Io {
            now: ctx.now,
            registry: ctx.registry,
            program: &mut self.program,
            program_token: self.tokens.child,
            reaper: ctx.reaper,
            tally: ctx.tally,
            client_clear,
            events: 0,
            backend: self.backend,
            conn: self.id,
        };
        let step = local.advance(event, &mut io, &mut ctx.buffers.out);
        let events = io.events;
        self.count_events(events);
        match step {
            local::Step::Continue => State::Streaming(Source::Local(local)),
            local::Step::Ended { outcome, error } => {
                self.release_program(ctx);
                State::Finishing(End::new(outcome, error))
            }
        }
    }

    /// Runs the calling stage on `event`; its state is `Calling` until it has begun the
    /// client's stream, `Streaming` after.
    fn call(&mut self, mut call: Box<Call>, event: Event, ctx: &mut Context<'_>) -> State {
        let event = match event {
            Event::Upstream {
                readable,
                writable,
                closed,
            } => call::Event::Upstream {
                readable,
                writable,
                closed,
            },
            _ => call::Event::Tick,
        };
        let had_begun = call.has_begun();
        let mut io = call::Io {
            now: ctx.now,
            registry: ctx.registry,
            token: self.tokens.upstream,
            upstream: ctx.upstreams.get_mut(call.target()),
            read_buf: &mut ctx.buffers.read,
            records_buf: &mut ctx.buffers.records,
            decode_buf: &mut ctx.buffers.decode,
            file_bytes_left: &mut ctx.buffers.file_bytes_left,
            tally: ctx.tally,
            client_clear: self.client.as_ref().is_none_or(Client::is_clear),
            events: 0,
            repeats: &mut self.repeats,
            headers: self.headers.as_deref().unwrap_or(&NO_HEADERS),
            backend: self.backend,
            conn: self.id,
        };
        let step = call.advance(
            event,
            &self.settings.upstream,
            &mut io,
            &mut ctx.buffers.out,
        );
        let events = io.events;
        self.count_events(events);
        if !had_begun && call.has_begun() {
            self.answer(200);
            // The call wrote the success head first, then the first events.
            self.began_stream(SSE_HEAD.len() + self.custom_headers().line_bytes());
        }
        match step {
            call::Step::Continue if call.has_begun() => State::Streaming(Source::Relay(call)),
            call::Step::Continue => State::Calling(call),
            call::Step::Ended { outcome, error } => State::Finishing(End::new(outcome, error)),
            call::Step::Refused(refusal) => {
                let end = End::new(refusal.outcome, Some(refusal.error));
                let retry_after = refusal.retry_after.as_deref();
                self.respond_accepted(refusal.status, &refusal.message, retry_after, end, ctx)
            }
        }
    }

    /// Ends a begun stream with `event: error`.
    fn end_with_error(&mut self, outcome: Outcome, message: &str, ctx: &mut Context<'_>) -> State {
        // A program still running has no one to answer any more.
        self.release_program(ctx);
        sse::error_event(&mut ctx.buffers.out, message);
        State::Finishing(End::new(outcome, Some(message.to_string())))
    }

    /// A complete error response before any head, for a handoff that was refused (400, 413,
    /// 500): without the handoff's custom headers (SPEC §3.3).
    fn respond(
        &mut self,
        status: ErrorStatus,
        message: &str,
        end: End,
        ctx: &mut Context<'_>,
    ) -> State {
        self.answer(status.code());
        let response = error_response(status, message, None);
        ctx.buffers.out.extend_from_slice(&response);
        State::Finishing(end)
    }

    /// 503 with `Retry-After: 1`: over capacity, or shutting down.
    fn respond_busy(&mut self, message: &str, end: End, ctx: &mut Context<'_>) -> State {
        let status = ErrorStatus::ServiceUnavailable;
        self.respond_accepted(status, message, Some("1"), end, ctx)
    }

    /// A complete error response before any head for a handoff whose data was accepted (503,
    /// and the upstream's 429, 502, 504): with the handoff's custom headers.
    fn respond_accepted(
        &mut self,
        status: ErrorStatus,
        message: &str,
        retry_after: Option<&str>,
        end: End,
        ctx: &mut Context<'_>,
    ) -> State {
        self.answer(status.code());
        let response =
            error_response_with_headers(status, message, retry_after, self.custom_headers());
        ctx.buffers.out.extend_from_slice(&response);
        State::Finishing(end)
    }

    /// The client's socket is readable or writable: what that means for the connection.
    fn on_client_ready(
        &mut self,
        readable: bool,
        writable: bool,
        ctx: &mut Context<'_>,
    ) -> Option<Event> {
        let client = self.client.as_mut()?;
        if readable {
            match client.read_input() {
                // A client that shut its sending side (or closed, which looks the same from
                // here) is written to until a write fails: only then is it known to be gone.
                Input::Quiet | Input::Closed => {}
                Input::Failed(outcome) => return Some(Event::ClientGone(outcome, None)),
                Input::Flooded => {
                    let why = "the client sent more than 64 KiB after its request";
                    return Some(Event::ClientGone(Outcome::Other, Some(why.into())));
                }
            }
        }
        if !writable {
            return None;
        }
        let (flushed, written) = client.flush(ctx.now);
        ctx.tally.bytes_sent(written);
        match flushed {
            Flushed::Empty => Some(Event::Tick),
            Flushed::Blocked => None,
            Flushed::Failed(e) => {
                log::debug!(conn = self.id, error:% = e; "client write failed");
                Some(Event::ClientGone(client::gone(&e), None))
            }
        }
    }

    /// Writes what the last transition produced.
    fn write_out(&mut self, ctx: &mut Context<'_>) -> Flushed {
        let Some(client) = self.client.as_mut() else {
            return Flushed::Failed(std::io::ErrorKind::NotConnected.into());
        };
        let (flushed, written) = client.send(&ctx.buffers.out, ctx.now);
        ctx.tally.bytes_sent(written);
        flushed
    }

    fn answer(&mut self, status: u16) {
        if let Some(client) = self.client.as_mut() {
            client.answer(status);
        }
    }

    fn count_events(&mut self, events: u32) {
        if let Some(client) = self.client.as_mut() {
            client.count_events(events);
        }
    }

    fn client_clear(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_clear)
    }

    fn release_program(&mut self, ctx: &mut Context<'_>) {
        self.release_child(ctx.registry, ctx.reaper);
    }

    /// `max_stream_duration` from the stream's start (its first client's, when resumed).
    fn ends_at(&self) -> Option<Instant> {
        let limit = self.settings.max_stream_duration?;
        let started = match &self.resumable {
            Some(stream) => Some(stream.started_at),
            None => self.started,
        };
        started.map(|at| deadline::after(at, limit))
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
