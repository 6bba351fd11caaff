//! Taking handoffs from the listener: accepting, admitting over or under capacity, pausing when
//! out of descriptors or when too many refusals are pending, and reading a handoff at once.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::conn::{Connection, Ready, Tokens};
use crate::deadline;
use crate::sys::socket;
use crate::upstream::Upstream;

use super::listener::Listener;
use super::token::{self, Key, Side};
use super::{caught, Entry, Occupant, Reactor};

/// Handoffs accepted over capacity are received and answered 503; at most this many at once.
/// Beyond, the daemon stops accepting until the count drops: the backlog fills, Apache's
/// connect fails and Apache answers 503 itself. A connection is never accepted and then closed
/// unread (its client would just see the connection die).
const MAX_PENDING_REFUSALS: usize = 1024;
/// Accepts per turn, so that a burst of handoffs cannot starve running streams.
const ACCEPTS_PER_TURN: usize = 512;
/// Pause before accepting again when the process is out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Reactor {
    pub(super) fn accept(&mut self, now: Instant) {
        if !self.listener_ready || self.accept_paused_until.is_some_and(|t| now < t) {
            return;
        }
        self.accept_paused_until = None;
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                return;
            };
            if self.refusals_full() {
                if !self.refusals_full {
                    self.refusals_full = true;
                    log::warn!(
                        "over capacity with {MAX_PENDING_REFUSALS} refusals pending: not accepting \
                         until they are done (Apache answers 503 meanwhile)"
                    );
                }
                return;
            }
            self.refusals_full = false;
            if !self.reserve.restore() {
                self.pause_accepting(now);
                return;
            }
            let apache = match socket::accept(listener.fd()) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.listener_ready = false;
                    return;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    self.pause_accepting(now);
                    return;
                }
                // The peer gave up before we got to it: nothing to do.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED) | Some(libc::EINTR)
                    ) =>
                {
                    continue;
                }
                // Anything else (ENOBUFS, ENOMEM...) would repeat at once: back off as for
                // EMFILE rather than spin.
                Err(e) => {
                    log::warn!(error:% = e, pause_ms = ACCEPT_BACKOFF.as_millis() as u64; "accept failed; pausing accepts");
                    self.accept_paused_until = Some(deadline::after(now, ACCEPT_BACKOFF));
                    return;
                }
            };
            if caught(|| self.admit(apache, now)).is_err() {
                self.panicked("accepting a handoff");
            }
        }
    }

    /// Out of file descriptors: new handoffs wait in the backlog for a while rather than spin.
    pub(super) fn pause_accepting(&mut self, now: Instant) {
        log::warn!(
            "out of file descriptors with {} connection(s) open; pausing accepts for {:?}",
            self.conns.len(),
            ACCEPT_BACKOFF
        );
        self.accept_paused_until = Some(deadline::after(now, ACCEPT_BACKOFF));
    }

    /// Reads a handoff with the spare descriptor's slot free for the client fd it carries.
    pub(super) fn receive_handoff(&mut self, key: Key, now: Instant) {
        let idle: usize = self.upstreams.iter().map(Upstream::idle_connections).sum();
        if !self.reserve.is_tight(self.conns.len(), idle) {
            self.dispatch(key, now, |conn, ctx| conn.on_ready(Ready::Apache, ctx));
            return;
        }
        self.reserve.release();
        self.dispatch(key, now, |conn, ctx| conn.on_ready(Ready::Apache, ctx));
        if !self.reserve.restore() {
            self.pause_accepting(now);
        }
    }

    /// Over `max_connections` or the memory budget: new handoffs are answered 503.
    fn over_capacity(&self) -> bool {
        // Daemon-wide: every worker's connections and buffers count.
        let shared = self.tally.shared();
        let over_memory = self
            .mem_limit
            .is_some_and(|limit| shared.held_bytes() as u64 > limit);
        shared.connections() >= self.max_connections || over_memory
    }

    /// Over capacity with as many refusals pending as allowed: accepting waits.
    pub(super) fn refusals_full(&self) -> bool {
        self.tally.shared().refusing() >= MAX_PENDING_REFUSALS && self.over_capacity()
    }

    fn admit(&mut self, apache: OwnedFd, now: Instant) {
        let over_capacity = self.over_capacity();
        self.admit_as(apache, over_capacity, now);
    }

    /// Takes every handoff queued in the backlog, until it is empty, admitted whatever the
    /// limits: the daemon is draining, so each is answered 503 once received. Returns how many.
    pub(super) fn accept_backlog(&mut self, listener: &Listener, now: Instant) -> usize {
        let mut taken = 0;
        loop {
            let apache = match socket::accept(listener.fd()) {
                Ok(apache) => apache,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return taken,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED) | Some(libc::EINTR)
                    ) =>
                {
                    continue
                }
                // Out of descriptors: the spare one makes room for one more at a time (each is
                // answered and closed at once).
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
                        && self.reserve.release() =>
                {
                    continue
                }
                Err(e) => {
                    log::error!(
                        taken = taken,
                        error:% = e;
                        "cannot take the rest of the queued handoffs"
                    );
                    return taken;
                }
            };
            taken += 1;
            if caught(|| self.admit_as(apache, false, now)).is_err() {
                self.panicked("accepting a queued handoff");
            }
            self.reserve.restore();
        }
    }

    fn admit_as(&mut self, apache: OwnedFd, over_capacity: bool, now: Instant) {
        if over_capacity {
            self.tally.connection_rejected();
            self.tally.shared().refusal_started();
        } else {
            self.tally.connection_accepted();
        }
        let id = self.tally.shared().next_id();
        let key = self.conns.next_key();
        let tokens = Tokens {
            apache: token::connection_token(key, Side::Apache),
            client: token::connection_token(key, Side::Client),
            upstream: token::connection_token(key, Side::Upstream),
            child: token::connection_token(key, Side::Child),
        };
        let ctx = (self.poll.registry(), self.settings.clone(), now);
        let provider = self.backends.provider();
        match Connection::accept(id, apache, tokens, over_capacity, provider, ctx) {
            Ok(conn) => {
                let key = self.conns.insert(Entry {
                    occupant: Occupant::Handoff(conn),
                    armed: None,
                    held: 0,
                });
                self.tally.shared().connection_opened();
                // Apache sends the handoff right after connecting, so it is usually here
                // already: reading now saves the client a whole turn of the loop.
                self.receive_handoff(key, now);
            }
            Err(e) => {
                log::error!(conn = id, error:% = e; "cannot register a handoff connection");
                if over_capacity {
                    self.tally.shared().refusal_done();
                }
            }
        }
    }
}
