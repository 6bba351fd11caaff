//! Idle keep-alive connections, per upstream origin.
//!
//! A connection comes back only after its response was read completely. Idle ones are taken
//! newest first (the most likely to be alive), expire after the idle timeout, are capped per
//! origin, and are probed on a sweep so that those the peer closed are dropped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::transport::{ReadOutcome, Transport};

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

    /// The newest idle connection to `origin` that has not expired.
    pub fn take(&mut self, origin: usize, now: Instant) -> Option<Transport> {
        let idle = self.origins.get_mut(origin)?;
        while let Some(entry) = idle.pop_back() {
            if now.saturating_duration_since(entry.since) < self.idle_timeout {
                return Some(entry.transport);
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
        let mut scratch = Vec::new();
        for idle in &mut self.origins {
            idle.retain_mut(|entry| {
                scratch.clear();
                let fresh = now.saturating_duration_since(entry.since) < self.idle_timeout;
                fresh
                    && matches!(
                        entry.transport.read(&mut scratch, 1),
                        Ok(ReadOutcome::WouldBlock)
                    )
            });
        }
        (self.idle() > 0).then(|| now + SWEEP_INTERVAL.min(self.idle_timeout))
    }
}

/// How often idle connections are probed.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Transport, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let transport = Transport::connect_tcp(listener.local_addr().unwrap(), None).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (transport, peer)
    }

    #[test]
    fn newest_first_capped_and_expiring() {
        let start = Instant::now();
        let mut pool = Pool::new(1, 2, Duration::from_secs(90));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (transport, peer) = pair();
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
    fn the_sweep_drops_connections_the_peer_closed() {
        let start = Instant::now();
        let mut pool = Pool::new(1, 8, Duration::from_secs(90));
        let (open, _open_peer) = pair();
        let (closed, closed_peer) = pair();
        pool.put(0, open, start);
        pool.put(0, closed, start);
        drop(closed_peer);
        // The FIN travels over loopback; sweep until it is seen, bounded.
        for _ in 0..200 {
            pool.sweep(start);
            if pool.idle() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.sweep(start + Duration::from_secs(91)), None);
        assert_eq!(pool.idle(), 0);
    }
}
