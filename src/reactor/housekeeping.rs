//! What the loop does on the clock rather than on events: systemd's watchdog ping and status
//! line (sent from the loop itself, so that a wedged loop stops pinging and gets restarted),
//! binding the metrics listener again after a failed bind, and the upgrade's time limit.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::Interest;

use crate::deadline;
use crate::sys::notify::{StatusThrottle, STATUS_INTERVAL};

use super::{token, Reactor};

/// How often a metrics listener that could not be bound is tried again (as the Go daemon).
pub const METRICS_RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Housekeeping {
    /// Half of systemd's `WATCHDOG_USEC`, and when the next ping is due.
    watchdog: Option<(Duration, Instant)>,
    status: StatusThrottle,
    /// When the next `STATUS=` check is due (only under systemd).
    status_at: Option<Instant>,
    /// The metrics address to bind, and when to try next.
    metrics_bind: Option<(SocketAddr, Instant)>,
}

impl Housekeeping {
    fn due_at(&self) -> Option<Instant> {
        [
            self.watchdog.map(|(_, at)| at),
            self.status_at,
            self.metrics_bind.map(|(_, at)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Reactor {
    /// Pings systemd's watchdog every `interval` from the loop.
    pub fn set_watchdog(&mut self, interval: Duration, now: Instant) {
        self.housekeeping.watchdog = Some((interval, now));
    }

    /// The metrics listener could not be bound: try again every 30 s, serving meanwhile.
    pub fn retry_metrics_bind(&mut self, address: SocketAddr, now: Instant) {
        self.housekeeping.metrics_bind = Some((address, deadline::after(now, METRICS_RETRY)));
    }

    /// When the loop must wake for its housekeeping, if anything is on the clock.
    pub(super) fn housekeeping_at(&self) -> Option<Instant> {
        [self.housekeeping.due_at(), self.upgrading.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn housekeeping(&mut self, now: Instant) {
        if let Some((interval, at)) = self.housekeeping.watchdog {
            if now >= at {
                // A worker whose loop is stuck stops the pings: systemd restarts the daemon.
                if self.every_loop_turned() {
                    self.notifier.watchdog();
                } else {
                    log::warn!("a worker's event loop has not turned since the last watchdog check: not pinging");
                }
                self.housekeeping.watchdog = Some((interval, deadline::after(now, interval)));
            }
        }
        if self.notifier.is_enabled() && self.housekeeping.status_at.is_none_or(|at| now >= at) {
            let shared = self.tally.shared();
            let streams = shared.active_streams() as u64;
            let connections = shared.connections() as u64;
            if let Some(status) = self.housekeeping.status.due(now, streams, connections) {
                self.notifier.status(&status);
            }
            self.housekeeping.status_at = Some(deadline::after(now, STATUS_INTERVAL));
        }
        if let Some((address, at)) = self.housekeeping.metrics_bind {
            if now >= at {
                self.bind_metrics(address, now);
            }
        }
        self.check_upgrade(now);
    }

    fn bind_metrics(&mut self, address: SocketAddr, now: Instant) {
        let mut listener = match mio::net::TcpListener::bind(address) {
            Ok(listener) => listener,
            Err(e) => {
                log::error!(address:% = address, error:% = e; "cannot listen for metrics; retrying in 30 s");
                self.retry_metrics_bind(address, now);
                return;
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut listener,
            token::METRICS_LISTENER,
            Interest::READABLE,
        ) {
            log::error!(error:% = e; "cannot watch the metrics listener; retrying in 30 s");
            self.retry_metrics_bind(address, now);
            return;
        }
        let bound = listener.local_addr().unwrap_or(address);
        log::info!(url = format!("http://{bound}/metrics").as_str(); "metrics listening");
        self.metrics_listener = Some(listener);
        self.housekeeping.metrics_bind = None;
    }
}
