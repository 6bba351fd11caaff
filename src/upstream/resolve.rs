//! Name resolution off the event loop.
//!
//! `getaddrinfo` blocks, so one helper thread does it: once for every upstream host at
//! start-up, again on a timer so that DNS changes are followed, and at once when the reactor
//! reports a connect failure. Results travel back over a channel and a `mio::Waker` wakes the
//! loop to take them. The loop never waits for a lookup: until a host has addresses, requests
//! to it fail fast with 502.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
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
    requests: Sender<usize>,
    results: Receiver<Resolved>,
}

impl Resolver {
    /// Starts the helper thread. Call after the signal mask is set: the thread inherits it.
    pub fn start(hosts: Vec<Host>, waker: Arc<Waker>) -> std::io::Result<Resolver> {
        let (requests, pending) = mpsc::channel::<usize>();
        let (found, results) = mpsc::channel();
        thread::Builder::new()
            .name("resolver".into())
            .spawn(move || run(&hosts, &pending, &found, &waker))?;
        Ok(Resolver { requests, results })
    }

    /// Asks for host `index` to be looked up again (after a connect failure).
    pub fn refresh(&self, index: usize) {
        let _ = self.requests.send(index);
    }

    /// Results that have arrived since the last call.
    pub fn take(&self) -> impl Iterator<Item = Resolved> + '_ {
        self.results.try_iter()
    }
}

fn run(hosts: &[Host], pending: &Receiver<usize>, found: &Sender<Resolved>, waker: &Waker) {
    loop {
        for (index, host) in hosts.iter().enumerate() {
            if !publish(index, host, found, waker) {
                return;
            }
        }
        // Refresh everything on the timer; single hosts as soon as the loop asks.
        loop {
            match pending.recv_timeout(REFRESH) {
                Ok(index) => {
                    if let Some(host) = hosts.get(index) {
                        if !publish(index, host, found, waker) {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
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
    fn the_thread_publishes_and_wakes_the_loop() {
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
        let mut events = mio::Events::with_capacity(4);
        let mut seen = Vec::new();
        for _ in 0..100 {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            seen.extend(
                resolver
                    .take()
                    .map(|r| (r.index, r.addresses.unwrap().len())),
            );
            if seen.len() == 2 {
                break;
            }
        }
        assert_eq!(seen, vec![(0, 1), (1, 1)]);
        resolver.refresh(1);
        for _ in 0..100 {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            if resolver.take().any(|r| r.index == 1) {
                return;
            }
        }
        panic!("a refresh was not published");
    }
}
