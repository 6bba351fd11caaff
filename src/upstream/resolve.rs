//! Name resolution off the event loop.
//!
//! `getaddrinfo` blocks, so one helper thread does it: on a timer so that DNS changes are
//! followed, and at once when the reactor reports a connect failure. (The first lookup happens
//! at start-up, before the loop runs.) Results travel back over a channel and a `mio::Waker` wakes the
//! loop to take them. The loop never waits for a lookup: until a host has addresses, requests
//! to it fail fast with 502.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::Waker;

/// How often every host is looked up again.
const REFRESH: Duration = Duration::from_secs(30);

/// One host to resolve, by its index in the reactor's list of upstream hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub port: u16,
}

/// What a lookup found for host number `index`.
#[derive(Debug)]
pub struct Resolved {
    pub index: usize,
    pub addresses: Result<Vec<SocketAddr>, String>,
}

pub struct Resolver {
    /// Room for one pending request per host: a burst of connect failures during an outage
    /// asks for one lookup, not one per failure.
    requests: SyncSender<usize>,
    results: Receiver<Resolved>,
}

impl Resolver {
    /// Starts the helper thread. Call after the signal mask is set: the thread inherits it.
    pub fn start(hosts: Vec<Host>, waker: Arc<Waker>) -> std::io::Result<Resolver> {
        let (requests, pending) = mpsc::sync_channel::<usize>(hosts.len().max(1));
        let (found, results) = mpsc::channel();
        thread::Builder::new()
            .name("resolver".into())
            .spawn(move || run(&hosts, &pending, &found, &waker))?;
        Ok(Resolver { requests, results })
    }

    /// Asks for host `index` to be looked up again (after a connect failure).
    pub fn refresh(&self, index: usize) {
        // Full means a lookup is already pending, which is as good.
        let _ = self.requests.try_send(index);
    }

    /// Results that have arrived since the last call.
    pub fn take(&self) -> impl Iterator<Item = Resolved> + '_ {
        self.results.try_iter()
    }
}

/// The first lookup is the caller's, at start-up; this thread keeps the addresses fresh.
fn run(hosts: &[Host], pending: &Receiver<usize>, found: &Sender<Resolved>, waker: &Waker) {
    loop {
        // Every host on the timer; a single host as soon as the loop asks.
        let due: Vec<usize> = match pending.recv_timeout(REFRESH) {
            Ok(index) => vec![index],
            Err(RecvTimeoutError::Timeout) => (0..hosts.len()).collect(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        for index in due {
            let Some(host) = hosts.get(index) else {
                continue;
            };
            if !publish(index, host, found, waker) {
                return;
            }
        }
    }
}

/// Looks `host` up and sends the result; false once the reactor is gone.
fn publish(index: usize, host: &Host, found: &Sender<Resolved>, waker: &Waker) -> bool {
    let addresses = lookup(host);
    if found.send(Resolved { index, addresses }).is_err() {
        return false;
    }
    waker.wake().is_ok()
}

pub fn lookup(host: &Host) -> Result<Vec<SocketAddr>, String> {
    match (host.name.as_str(), host.port).to_socket_addrs() {
        Ok(addresses) => {
            let addresses: Vec<_> = addresses.collect();
            if addresses.is_empty() {
                Err(format!("{} has no addresses", host.name))
            } else {
                Ok(addresses)
            }
        }
        Err(e) => Err(format!("cannot resolve {}: {e}", host.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_addresses_resolve_without_dns() {
        let host = Host {
            name: "127.0.0.1".into(),
            port: 8080,
        };
        assert_eq!(
            lookup(&host).unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn a_refresh_is_published_and_wakes_the_loop() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let hosts = vec![
            Host {
                name: "127.0.0.1".into(),
                port: 1,
            },
            Host {
                name: "::1".into(),
                port: 2,
            },
        ];
        let resolver = Resolver::start(hosts, waker).unwrap();
        resolver.refresh(1);
        let mut events = mio::Events::with_capacity(4);
        for _ in 0..100 {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            let found: Vec<_> = resolver
                .take()
                .map(|r| (r.index, r.addresses.unwrap().len()))
                .collect();
            if !found.is_empty() {
                assert_eq!(found, vec![(1, 1)]);
                return;
            }
        }
        panic!("a refresh was not published");
    }
}
