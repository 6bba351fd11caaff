//! The daemon's life in the loop: signals, the drain (what happens to queued and arriving
//! handoffs), the shutdown deadline, and when the loop is done.

use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::unix::SourceFd;

use crate::conn::Step;
use crate::deadline;
use crate::sys::signals::{self, Signal};

use super::workers::Control;
use super::{Lifecycle, Reactor, Turn};

impl Reactor {
    /// Stops taking handoffs and lets streams finish until the shutdown timeout (SPEC §1.4).
    ///
    /// When the daemon owns the socket path, the path goes first (new connects fail at once and
    /// Apache answers 503 itself), then every handoff already queued in the backlog is taken and
    /// answered 503, then the listener closes: no queued client is dropped with nothing. A
    /// listener from systemd, or one an upgraded process has taken over, is only no longer
    /// accepted from: its queue is theirs.
    pub fn begin_drain(&mut self, now: Instant) {
        if let Lifecycle::Draining { .. } = self.lifecycle {
            return;
        }
        // First: handoffs taken from here on are answered 503.
        self.lifecycle = Lifecycle::Draining {
            deadline: deadline::after(now, self.shutdown_timeout),
        };
        self.notifier.stopping();
        self.tell_followers(|| Control::Drain);
        // No resume can come while draining (handoffs get 503): streams kept for one go.
        self.drop_resumables(now);
        let Some(mut listener) = self.listener.take() else {
            return;
        };
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&listener.fd().as_raw_fd()));
        if self.is_follower() {
            // The leader removes the path and answers what is queued; the log is its to write.
            return;
        }
        let path = listener.path().display().to_string();
        if listener.owns_path() {
            if let Err(e) = listener.unlink_path() {
                log::warn!(path = path.as_str(), error:% = e; "cannot remove the socket file");
            }
            let queued = self.accept_backlog(&listener, now);
            log::info!(
                path = path.as_str(),
                queued_answered_503 = queued,
                connections = self.tally.shared().connections(),
                shutdown_timeout_ms = self.shutdown_timeout.as_millis() as u64;
                "draining: socket removed, queued handoffs answered, streams may finish"
            );
        } else {
            log::info!(
                path = path.as_str(),
                connections = self.tally.shared().connections(),
                shutdown_timeout_ms = self.shutdown_timeout.as_millis() as u64;
                "draining: stopped accepting; queued handoffs are left to the socket's owner"
            );
        }
    }

    /// Ends every connection now, telling streaming clients why.
    /// Scrapes are left to finish: the exit closes them (`check_lifecycle`).
    pub fn end_all(&mut self, now: Instant) {
        self.begin_drain(now);
        for key in self.conns.keys() {
            if self.scrapes.contains(&key) {
                continue;
            }
            self.dispatch(key, now, |conn, ctx| {
                conn.on_shutdown(ctx);
                Step::Close
            });
            // In case the handler panicked before it could say so.
            self.close(key, now);
        }
    }

    pub(super) fn handle_signals(&mut self, now: Instant) {
        loop {
            let Some(signals) = &self.signals else { return };
            match signals.next() {
                Ok(Some(Signal::Terminate)) => match self.lifecycle {
                    Lifecycle::Serving => self.begin_drain(now),
                    Lifecycle::Draining { .. } => {
                        log::info!(
                            connections = self.tally.shared().connections();
                            "second stop signal: ending every connection now"
                        );
                        self.tell_followers(|| Control::EndAll);
                        self.end_all(now);
                    }
                },
                Ok(Some(Signal::Hangup)) => self.begin_reload(),
                Ok(Some(Signal::Upgrade)) => self.begin_upgrade(now),
                Ok(Some(Signal::Ignored(signal))) => {
                    log::info!(signal = signals::name(signal); "signal ignored")
                }
                Ok(None) => return,
                Err(e) => {
                    log::error!(error:% = e; "reading signals failed");
                    return;
                }
            }
        }
    }

    pub(super) fn check_lifecycle(&mut self, now: Instant) -> Turn {
        match self.lifecycle {
            Lifecycle::Serving => Turn::Running,
            Lifecycle::Draining { deadline } => {
                if now >= deadline && self.connections() > 0 {
                    log::info!(
                        connections = self.connections();
                        "shutdown timeout reached: ending the remaining streams with an error event"
                    );
                    self.end_all(now);
                }
                // The metrics endpoint answers throughout the drain (operators watch it empty);
                // open scrapes never hold up the exit. The leader serves them until every
                // worker is done (a follower wakes it when its loop ends).
                let done = self.connections() == 0
                    && (self.is_follower() || self.tally.shared().connections() == 0);
                if done {
                    self.close_scrapes(now);
                    self.finished();
                    Turn::Finished
                } else {
                    Turn::Running
                }
            }
        }
    }
}
