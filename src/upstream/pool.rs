//! Idle keep-alive connections, per upstream origin.
//!
//! A connection comes back only after its response was read completely. Idle ones are taken
//! newest first (the most likely to be alive), expire after the idle timeout, are capped per
//! origin, and are probed on a sweep so that those the peer closed are dropped. Each is probed
//! again when taken: one the upstream closed or wrote to while it sat idle (a `408`, junk) would
//! hand that to the next client as its answer, so it is closed and the next one tried.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::transport::Transport;

struct Idle {
    transport: Transport,
    since: Instant,
}

pub struct Pool {
    origins: Vec<VecDeque<Idle>>,
    max_idle_per_origin: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub fn new(origins: usize, max_idle_per_origin: usize, idle_timeout: Duration) -> Pool {
        Pool {
            origins: (0..origins).map(|_| VecDeque::new()).collect(),
            max_idle_per_origin,
            idle_timeout,
        }
    }

    pub fn idle(&self) -> usize {
        self.origins.iter().map(VecDeque::len).sum()
    }

    /// The newest idle connection to `origin` that has not expired and on which the upstream
    /// has sent nothing since its last response; the others met on the way are closed.
    pub fn take(&mut self, origin: usize, now: Instant) -> Option<Transport> {
        let idle = self.origins.get_mut(origin)?;
        while let Some(mut entry) = idle.pop_back() {
            if now.saturating_duration_since(entry.since) >= self.idle_timeout {
                continue;
            }
            match entry.transport.check_idle() {
                Ok(()) => return Some(entry.transport),
                Err(stale) => log::debug!(reason:% = stale; "closing a pooled upstream connection"),
            }
        }
        None
    }

    /// Keeps a connection whose response was read completely (the caller deregistered it).
    pub fn put(&mut self, origin: usize, transport: Transport, now: Instant) {
        if self.idle_timeout.is_zero() {
            return;
        }
        let Some(idle) = self.origins.get_mut(origin) else {
            return;
        };
        if idle.len() >= self.max_idle_per_origin {
            idle.pop_front();
        }
        if self.max_idle_per_origin > 0 {
            idle.push_back(Idle {
                transport,
                since: now,
            });
        }
    }

    /// Drops expired connections and those the peer closed or wrote to unasked. Returns when
    /// the next sweep is worth doing, if any connection is left.
    pub fn sweep(&mut self, now: Instant) -> Option<Instant> {
        for idle in &mut self.origins {
            idle.retain_mut(|entry| {
                now.saturating_duration_since(entry.since) < self.idle_timeout
                    && entry.transport.check_idle().is_ok()
            });
        }
        (self.idle() > 0).then(|| now + self.sweep_interval())
    }

    /// How often idle connections are probed: a short idle timeout is kept to within itself.
    pub fn sweep_interval(&self) -> Duration {
        SWEEP_INTERVAL.min(self.idle_timeout)
    }
}

/// How often idle connections are probed.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::upstream::testing::{tcp_pair, wait_readable};

    #[test]
    fn newest_first_capped_and_expiring() {
        let start = Instant::now();
        let mut pool = Pool::new(1, 2, Duration::from_secs(90));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (transport, peer) = tcp_pair();
            peers.push(peer);
            pool.put(0, transport, start);
        }
        assert_eq!(pool.idle(), 2, "the cap keeps the newest two");
        assert!(pool.take(0, start).is_some());
        assert!(
            pool.take(0, start + Duration::from_secs(91)).is_none(),
            "expired"
        );
        assert_eq!(pool.idle(), 0);
        assert!(pool.take(5, start).is_none(), "unknown origin");
    }

    #[test]
    fn connections_the_upstream_wrote_to_or_closed_while_idle_are_never_taken() {
        let start = Instant::now();
        let mut pool = Pool::new(1, 8, Duration::from_secs(90));
        let (clean, mut clean_peer) = tcp_pair();
        let (mut written, mut written_peer) = tcp_pair();
        let (mut closed, closed_peer) = tcp_pair();
        written_peer
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .unwrap();
        drop(closed_peer);
        wait_readable(&mut written);
        wait_readable(&mut closed);
        // The clean one is the oldest: the newer, stale ones are met first.
        pool.put(0, clean, start);
        pool.put(0, written, start);
        pool.put(0, closed, start);

        let mut taken = pool.take(0, start).expect("the clean connection");
        assert_eq!(pool.idle(), 0, "the stale ones were closed on the way");
        assert_eq!(taken.write(b"x", &mut Vec::new()).unwrap(), 1);
        clean_peer
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut byte = [0u8; 1];
        clean_peer.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x", "the connection taken is the clean one");

        let (mut lone, mut lone_peer) = tcp_pair();
        lone_peer.write_all(b"junk").unwrap();
        wait_readable(&mut lone);
        pool.put(0, lone, start);
        assert!(pool.take(0, start).is_none(), "no clean connection: none");
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn the_sweep_drops_connections_the_peer_closed_or_wrote_to() {
        let start = Instant::now();
        let mut pool = Pool::new(1, 8, Duration::from_secs(90));
        let (open, _open_peer) = tcp_pair();
        let (mut closed, closed_peer) = tcp_pair();
        let (mut written, mut written_peer) = tcp_pair();
        drop(closed_peer);
        written_peer.write_all(b"junk").unwrap();
        wait_readable(&mut closed);
        wait_readable(&mut written);
        pool.put(0, open, start);
        pool.put(0, closed, start);
        pool.put(0, written, start);
        assert!(pool.sweep(start).is_some());
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.sweep(start + Duration::from_secs(91)), None);
        assert_eq!(pool.idle(), 0);
    }
}
