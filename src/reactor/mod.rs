//! The event loop: the only owner of `mio::Poll`, the connections, the timers and the counts.
//!
//! One [`Reactor::turn`] is one poll plus the dispatch of everything it returned, then of every
//! deadline that has passed; tests step it turn by turn, and [`Reactor::turn_at`] lets them
//! say what time it is. Connections never see each other: each handler borrows what it needs
//! through a [`Context`] and returns a [`Step`].

mod accept;
mod housekeeping;
mod lifecycle;
mod listener;
mod metrics_endpoint;
mod reload;
mod reserve;
mod resume;
mod scrape;
mod slab;
mod timers;
pub mod token;
mod upgrade;
mod workers;

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};

pub use housekeeping::METRICS_RETRY;
pub use listener::{ListenError, Listener};
pub use reload::ReloadSource;
/// Shared with the `handoff` load generator, whose reader loop keys its streams the same way.
pub use slab::Slab;
pub use upgrade::UpgradeSource;
pub use workers::{Control, Follower};

use crate::attachments::{DataDirSlot, Sweeper};
use crate::backends::{Backends, DaemonWide};
use crate::config::Config;
use crate::config::UpstreamTimeouts;
use crate::conn::{
    report_data_dir, Admission, Buffers, Connection, Context, End, Ready, Reaper, Settings, Step,
    FILE_BYTES_PER_TURN,
};
use crate::end::{EndReason, Outcome};
use crate::metrics::ProcessReader;
use crate::stats::Tally;
use crate::sys::notify::Notifier;
use crate::sys::signals::SignalFd;
use crate::upstream::prepare::PreparedUpstream;
use crate::upstream::Upstream;
use reserve::FdReserve;
use scrape::Scrape;
use timers::Timers;
use token::{Key, Side};

const EVENTS_PER_POLL: usize = 1024;

enum Occupant {
    Handoff(Connection),
    Scrape(Scrape),
}

struct Entry {
    occupant: Occupant,
    /// The earliest deadline this entry has in the timer heap.
    armed: Option<Instant>,
    /// Bytes the connection held after its last handler call, for the memory budget.
    held: usize,
}

impl Entry {
    fn deadline(&self) -> Option<Instant> {
        match &self.occupant {
            Occupant::Handoff(conn) => conn.deadline(),
            Occupant::Scrape(scrape) => Some(scrape.deadline()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Serving,
    /// No longer accepting; streams may finish until the deadline.
    Draining {
        deadline: Instant,
    },
}

/// What a turn left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Running,
    /// Drained: no listener and no connections are left.
    Finished,
}

pub struct Reactor {
    poll: Poll,
    events: Events,
    listener: Option<Listener>,
    listener_ready: bool,
    /// Accepting stopped because `MAX_PENDING_REFUSALS` are pending (logged once per episode).
    refusals_full: bool,
    accept_paused_until: Option<Instant>,
    metrics_listener: Option<TcpListener>,
    /// The scrapes in progress, oldest first (at most `MAX_SCRAPES`).
    scrapes: Vec<Key>,
    /// Metrics connections turned away, logged in summary.
    scrape_refusals: metrics_endpoint::Summary,
    /// Made at the first scrape: only the worker serving metrics needs one (it runs a thread).
    process: Option<ProcessReader>,
    reserve: FdReserve,
    signals: Option<SignalFd>,
    conns: Slab<Entry>,
    timers: Timers,
    /// Reused by every turn for the timers that are due.
    due_timers: Vec<(Key, Instant)>,
    backends: Backends,
    /// What connections accepted from now on run with (a reload replaces it).
    settings: Rc<Settings>,
    shutdown_timeout: Duration,
    max_connections: usize,
    mem_limit: Option<u64>,
    held_bytes: usize,
    buffers: Buffers,
    /// One per entry of `backends.targets()`, in that order.
    upstreams: Vec<Upstream>,
    /// The loop's one waker (mio allows one per `Poll`), shared with the resolver thread.
    waker: std::sync::Arc<mio::Waker>,
    /// Programs of local backends killed but not yet waited for.
    reaper: Reaper,
    /// `server.data_dir`: off until [`Reactor::open_data_dir`].
    data_dir: DataDirSlot,
    /// Removes old files from it (`server.data_max_age_ms`).
    sweeper: Sweeper,
    tally: Tally,
    lifecycle: Lifecycle,
    /// The configuration running now (a reload replaces it).
    config: Config,
    /// Tells systemd how things stand; a no-op when not run by it.
    notifier: Notifier,
    reloading: reload::Reloading,
    upgrading: upgrade::Upgrading,
    housekeeping: housekeeping::Housekeeping,
    /// The last generation given to an upstream (a reload makes a new one).
    upstream_generation: u64,
    /// What every worker's backends share: a reload builds the new ones with it.
    backends_wide: DaemonWide,
    /// The only worker, the leader of several, or one of its followers.
    role: workers::Role,
    /// This worker's resumable streams, running and kept.
    resumables: resume::Resumables,
    turns: workers::Turns,
}

impl Reactor {
    /// The daemon's only worker, or its leader (see [`Reactor::lead`]).
    pub fn new(
        config: &Config,
        listener: Listener,
        metrics_listener: Option<TcpListener>,
        signals: Option<SignalFd>,
        backends: Backends,
    ) -> io::Result<Reactor> {
        let tally = Tally::new(!config.benchmark);
        Reactor::build(config, listener, metrics_listener, signals, backends, tally)
    }

    /// Another worker of the daemon whose counts are `shared`: no signals, no metrics
    /// listener; see [`Reactor::follow`].
    pub fn worker(
        config: &Config,
        listener: Listener,
        backends: Backends,
        shared: std::sync::Arc<crate::stats::Shared>,
    ) -> io::Result<Reactor> {
        let tally = Tally::for_worker(!config.benchmark, shared);
        Reactor::build(config, listener, None, None, backends, tally)
    }

    fn build(
        config: &Config,
        listener: Listener,
        mut metrics_listener: Option<TcpListener>,
        signals: Option<SignalFd>,
        backends: Backends,
        tally: Tally,
    ) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        // Every worker waits on the one listener; each connection wakes only one of them.
        crate::sys::epoll::add_exclusive(&poll, listener.fd(), token::LISTENER.0)?;
        if let Some(metrics_listener) = &mut metrics_listener {
            poll.registry().register(
                metrics_listener,
                token::METRICS_LISTENER,
                Interest::READABLE,
            )?;
        }
        if let Some(signals) = &signals {
            poll.registry().register(
                &mut SourceFd(&signals.raw_fd()),
                token::SIGNALS,
                Interest::READABLE,
            )?;
        }
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), token::WAKER)?);
        let server = &config.server;
        let settings = Rc::new(Settings::from_config(config));
        let buffers = Buffers {
            out: Vec::with_capacity(16 * 1024),
            stamped: Vec::new(),
            handoff: vec![0; server.max_handoff_bytes + 1].into_boxed_slice(),
            read: Vec::new(),
            decode: Vec::new(),
            records: Vec::new(),
            file_bytes_left: FILE_BYTES_PER_TURN,
        };
        let now = Instant::now();
        let resumables = resume::Resumables::join(tally.shared(), waker.clone());
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            listener: Some(listener),
            // Handoffs may have queued before the first poll; edge-triggered polling would
            // not report them.
            listener_ready: true,
            refusals_full: false,
            accept_paused_until: None,
            metrics_listener,
            scrapes: Vec::new(),
            scrape_refusals: metrics_endpoint::Summary::new(metrics_endpoint::REFUSAL_LOG_INTERVAL),
            process: None,
            reserve: FdReserve::new(),
            signals,
            conns: Slab::new(),
            timers: Timers::new(now),
            due_timers: Vec::new(),
            backends,
            settings,
            shutdown_timeout: server.shutdown_timeout,
            max_connections: server.max_connections,
            mem_limit: server.mem_limit,
            held_bytes: 0,
            buffers,
            upstreams: Vec::new(),
            waker,
            reaper: Reaper::default(),
            data_dir: DataDirSlot::open(None, now).0,
            sweeper: Sweeper::default(),
            turns: workers::Turns::new(tally.shared().register_turns()),
            tally,
            role: workers::Role::default(),
            backends_wide: DaemonWide::default(),
            resumables,
            lifecycle: Lifecycle::Serving,
            config: config.clone(),
            notifier: Notifier::disabled(),
            reloading: reload::Reloading::default(),
            upgrading: upgrade::Upgrading::default(),
            housekeeping: housekeeping::Housekeeping::default(),
            upstream_generation: 0,
        })
    }

    /// Where systemd hears from this loop: `STATUS=`, `STOPPING=1`, the watchdog, reloads.
    pub fn set_notifier(&mut self, notifier: Notifier) {
        self.notifier = notifier;
    }

    /// How to load the configuration again on SIGHUP.
    pub fn set_reload_source(&mut self, source: ReloadSource) {
        self.reloading = reload::Reloading::new(Some(source));
    }

    /// What to start on SIGUSR2.
    pub fn set_upgrade_source(&mut self, source: UpgradeSource) {
        self.upgrading = upgrade::Upgrading::new(Some(source));
    }

    /// Opens `server.data_dir` (creating it when missing) and says how that went, and starts
    /// sweeping it when `data_max_age_ms` asks: at start-up.
    pub fn open_data_dir(&mut self, now: Instant) {
        let server = &self.config.server;
        let path = server.data_dir.as_deref();
        let (slot, result) = DataDirSlot::open(path, now);
        // Said once, by the leader: every worker opens the same directory.
        if !self.is_follower() {
            report_data_dir(path, &result);
            self.sweeper.configure(path, server.data_max_age);
        }
        self.data_dir = slot;
    }

    /// A new generation for an upstream about to be attached.
    fn next_upstream_generation(&mut self) -> u64 {
        self.upstream_generation += 1;
        self.upstream_generation
    }

    /// The one waker of this loop, for the resolver thread.
    pub fn waker(&self) -> std::sync::Arc<mio::Waker> {
        self.waker.clone()
    }

    /// The upstream APIs of `backends.targets()`, prepared in that order: connections to them
    /// are made and pooled by this loop, and a resolver thread each keeps their addresses.
    pub fn attach_upstreams(
        &mut self,
        prepared: Vec<PreparedUpstream>,
        timeouts: &UpstreamTimeouts,
    ) -> Result<(), String> {
        self.upstreams = self.make_upstreams(prepared, timeouts)?;
        Ok(())
    }

    fn make_upstreams(
        &mut self,
        prepared: Vec<PreparedUpstream>,
        timeouts: &UpstreamTimeouts,
    ) -> Result<Vec<Upstream>, String> {
        prepared
            .into_iter()
            .map(|prepared| {
                let generation = self.next_upstream_generation();
                prepared.into_upstream(timeouts.clone(), self.waker.clone(), generation)
            })
            .collect()
    }

    /// What the backends of every worker share; reloads build the new ones with it too.
    pub fn share_backends(&mut self, wide: DaemonWide) {
        self.backends_wide = wide;
    }

    /// One line per LangGraph profile (never its key), at start-up.
    pub fn announce_backends(&self) {
        self.backends.announce();
    }

    /// Tests bring an upstream of their own (no resolver, no TLS).
    pub fn attach_upstream(&mut self, upstream: Upstream) {
        self.upstreams.push(upstream);
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Its counts, once its loop is done (a worker's, for the `-benchmark` summary).
    pub fn into_tally(self) -> Tally {
        self.tally
    }

    /// Entries in the timer heap, stale ones included (for tests: it must stay near one per
    /// connection).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Handoffs in progress plus client streams (scrapes do not count).
    pub fn connections(&self) -> usize {
        self.conns.len() - self.scrapes.len()
    }

    /// Runs until drained.
    pub fn run(&mut self) -> io::Result<()> {
        while self.turn(None)? == Turn::Running {}
        Ok(())
    }

    /// One poll (waiting at most `max_wait`, or until the next deadline) and its dispatch, on
    /// the real clock: read before the poll to know how long to wait, and again after it.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<Turn> {
        self.poll_once(Instant::now(), max_wait)?;
        Ok(self.dispatch_at(Instant::now()))
    }

    /// One turn at a time the caller chooses: the poll waits as if it were `now`, and every
    /// event and deadline is handled as at `now`. Tests step time with it.
    pub fn turn_at(&mut self, now: Instant, max_wait: Option<Duration>) -> io::Result<Turn> {
        self.poll_once(now, max_wait)?;
        Ok(self.dispatch_at(now))
    }

    fn poll_once(&mut self, now: Instant, max_wait: Option<Duration>) -> io::Result<()> {
        let timeout = self.poll_timeout(now, max_wait);
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Handles what the last poll returned, then every deadline due at `now`.
    fn dispatch_at(&mut self, now: Instant) -> Turn {
        self.turns.turned();
        self.buffers.file_bytes_left = FILE_BYTES_PER_TURN;
        let ready: Vec<(mio::Token, bool, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                let closed = e.is_read_closed() || e.is_error();
                (e.token(), e.is_readable(), e.is_writable(), closed)
            })
            .collect();
        for (token, readable, writable, closed) in ready {
            match token {
                token::LISTENER => self.listener_ready = true,
                token::METRICS_LISTENER => self.accept_scrapes(now),
                token::SIGNALS => self.handle_signals(now),
                token::WAKER => {
                    for upstream in &mut self.upstreams {
                        upstream.take_resolved();
                    }
                    self.take_reload();
                    self.take_control(now);
                    self.take_handovers(now);
                }
                token::UPGRADE => self.on_upgrade_pipe(now),
                other => {
                    let Some((key, side)) = token::decode(other) else {
                        continue;
                    };
                    let ready = match side {
                        Side::Apache => {
                            self.receive_handoff(key, now);
                            continue;
                        }
                        Side::Client => Ready::Client {
                            readable,
                            writable,
                            closed,
                        },
                        Side::Scrape => {
                            self.serve_scrape(key, now);
                            continue;
                        }
                        Side::Upstream => Ready::Upstream {
                            readable,
                            writable,
                            closed,
                        },
                        Side::Child => Ready::Child,
                    };
                    self.dispatch(key, now, |conn, ctx| conn.on_ready(ready, ctx));
                }
            }
        }
        self.accept(now);
        self.fire_timers(now);
        self.expire_kept(now);
        for upstream in &mut self.upstreams {
            upstream.sweep(now);
        }
        self.reaper.reap();
        if self.housekeeping_at().is_some_and(|at| now >= at) {
            self.housekeeping(now);
        }
        self.check_lifecycle(now)
    }

    fn poll_timeout(&self, now: Instant, max_wait: Option<Duration>) -> Option<Duration> {
        let accept_pending =
            self.listener.is_some() && self.listener_ready && !self.refusals_full();
        let accept_at = if accept_pending {
            Some(self.accept_paused_until.unwrap_or(now))
        } else {
            None
        };
        let drain_at = match self.lifecycle {
            Lifecycle::Draining { deadline } => Some(deadline),
            Lifecycle::Serving => None,
        };
        let sweep_at = self.upstreams.iter().filter_map(Upstream::sweep_at).min();
        let reap_at = self.reaper.next_check(now);
        let wake_at = [
            self.timers.earliest(),
            accept_at,
            drain_at,
            sweep_at,
            reap_at,
            self.housekeeping_at(),
            self.resumables.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min();
        let until_wake = wake_at.map(|at| at.saturating_duration_since(now));
        match (until_wake, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs one handler of one connection, isolating panics, then applies its step.
    fn dispatch(
        &mut self,
        key: Key,
        now: Instant,
        handler: impl FnOnce(&mut Connection, &mut Context<'_>) -> Step,
    ) {
        let admission = self.admission();
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let Occupant::Handoff(conn) = &mut entry.occupant else {
            return;
        };
        let mut ctx = Context {
            now,
            registry: self.poll.registry(),
            buffers: &mut self.buffers,
            backends: &mut self.backends,
            upstreams: &mut self.upstreams,
            admission,
            tally: &mut self.tally,
            reaper: &mut self.reaper,
            data_dir: &mut self.data_dir,
        };
        // A panic unwinds out of one connection's handler only. What it shares stays usable:
        // the pool is changed only by whole `take`/`put` calls (a transport taken and then lost
        // in the unwind is just closed); counters are single integer updates, and a stream's
        // end is counted by `close` from what survives in the connection (its start time, its
        // client), so the books still balance; the backend's own state is changed by plain
        // assignments (the typing rate limit) that are never left half done; the shared
        // buffers are cleared before each use. The connection itself is answered (500 if no
        // byte had gone out) and closed.
        let step = match caught(|| handler(conn, &mut ctx)) {
            Ok(step) => step,
            Err(()) => {
                log::error!(conn = conn.id; "panicked; closing this connection only");
                ctx.tally.panicked();
                if caught(|| conn.on_panic(&mut ctx)).is_err() {
                    log::error!(conn = conn.id; "panicked again while answering with 500");
                }
                Step::Close
            }
        };
        let entered = conn.take_unentered();
        let held = conn.held_bytes();
        self.held_bytes = self.held_bytes + held - entry.held;
        self.tally.shared().held_changed(entry.held, held);
        entry.held = held;
        if let Some(id) = entered {
            self.enter_stream(key, id);
        }
        match step {
            Step::Continue => self.rearm(key, now),
            Step::Close => self.close(key, now),
            Step::Resume => self.route_resume(key, now),
        }
    }

    /// A panic outside a handler (in a deadline, say): confined to the connection `key`,
    /// which is answered as after a handler's panic and closed.
    fn abort(&mut self, key: Key, now: Instant, during: &str) {
        self.panicked(during);
        let is_scrape = self
            .conns
            .get_mut(key)
            .is_some_and(|entry| matches!(entry.occupant, Occupant::Scrape(_)));
        if is_scrape {
            self.close(key, now);
            return;
        }
        self.dispatch(key, now, |conn, ctx| {
            conn.on_panic(ctx);
            Step::Close
        });
        // Closed by the handler's step, unless that panicked too.
        self.close(key, now);
    }

    fn panicked(&mut self, during: &str) {
        log::error!(during = during; "panicked; the daemon goes on");
        self.tally.panicked();
    }

    /// An entry's deadline; a panic computing it closes that entry only.
    fn deadline_of(&mut self, key: Key, now: Instant) -> Option<Instant> {
        let entry = self.conns.get_mut(key)?;
        match caught(|| entry.deadline()) {
            Ok(deadline) => deadline,
            Err(()) => {
                self.abort(key, now, "computing a connection's deadline");
                None
            }
        }
    }

    fn admission(&self) -> Admission {
        match self.lifecycle {
            Lifecycle::Draining { .. } => Admission::ShuttingDown,
            Lifecycle::Serving => Admission::Open,
        }
    }

    /// Removes a connection, counts how it ended and logs its line.
    fn close(&mut self, key: Key, now: Instant) {
        let Some(entry) = self.conns.remove(key) else {
            return;
        };
        self.held_bytes -= entry.held;
        self.tally.shared().held_changed(entry.held, 0);
        let mut conn = match entry.occupant {
            Occupant::Handoff(conn) => conn,
            Occupant::Scrape(_) => {
                self.scrapes.retain(|&k| k != key);
                return;
            }
        };
        self.tally.shared().connection_closed();
        if conn.is_moved() {
            // Its client went over to the stream it resumed, which speaks for it now.
            return;
        }
        if conn.is_over_capacity() {
            self.tally.shared().refusal_done();
        }
        if conn.is_detached() {
            self.tally.shared().detached_stream_gone();
        }
        // Every connection leaves through here, so no program outlives its stream.
        let registry = self.poll.registry();
        let reaper = &mut self.reaper;
        if caught(|| conn.release_child(registry, reaper)).is_err() {
            self.panicked("ending a connection's program");
        }
        let end = caught(|| conn.end()).unwrap_or_else(|()| End {
            reason: EndReason::Stream(Outcome::Panic),
            error: Some("a panic while closing".into()),
        });
        let tally = &mut self.tally;
        let backend = conn.backend();
        if caught(|| tally.ended(end.reason, conn.streamed(now), Some(backend))).is_err() {
            self.panicked("counting a connection's end");
        }
        if caught(|| conn.log_end(&end, now)).is_err() {
            self.panicked("logging a connection's end");
        }
        if let Some(id) = conn.resumable_id() {
            if caught(|| self.stream_closed(id, &mut conn, now)).is_err() {
                self.panicked("keeping a stream for a resume");
            }
        }
    }

    /// Makes sure the timer heap will wake us for this connection's deadline.
    fn rearm(&mut self, key: Key, now: Instant) {
        let Some(deadline) = self.deadline_of(key, now) else {
            return;
        };
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        if entry.armed.is_none_or(|armed| deadline < armed) {
            entry.armed = Some(deadline);
            self.timers.push(key, deadline);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        // Only what was due when the turn began: a connection that asks to run again at once
        // (more to read, always due) is re-armed at `now` and waits for the next turn, so that
        // per-turn limits hold and every other source gets its turn first.
        let mut due = std::mem::take(&mut self.due_timers);
        due.clear();
        while let Some(popped) = self.timers.pop_due(now) {
            due.push(popped);
        }
        for &(key, at) in &due {
            let Some(entry) = self.conns.get_mut(key) else {
                continue;
            };
            if entry.armed == Some(at) {
                entry.armed = None;
            }
            let is_scrape = matches!(entry.occupant, Occupant::Scrape(_));
            let due = self.deadline_of(key, now).is_some_and(|d| d <= now);
            if due && is_scrape {
                log::debug!("metrics scrape timed out");
                self.close(key, now);
            } else if due {
                self.dispatch(key, now, |conn, ctx| conn.on_timer(ctx));
            } else {
                self.rearm(key, now);
            }
        }
        self.due_timers = due;
        if self.timers.len() > 2 * self.conns.len() + 1024 {
            self.compact_timers(now);
        }
    }

    fn compact_timers(&mut self, now: Instant) {
        let mut live = Vec::with_capacity(self.conns.len());
        for key in self.conns.keys() {
            let deadline = self.deadline_of(key, now);
            if let Some(entry) = self.conns.get_mut(key) {
                entry.armed = deadline;
                if let Some(at) = deadline {
                    live.push((key, at));
                }
            }
        }
        self.timers.compact(live.into_iter());
    }
}

/// Runs `f`, catching a panic: the caller confines it to what `f` was doing for one connection
/// or scrape. (The panic hook has logged it with its backtrace.)
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| ())
}
