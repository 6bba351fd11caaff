//! The reactor in the test's own thread, stepped one turn at a time while the test plays Apache
//! and the client on real sockets. The harness keeps the reactor's clock: the real one plus
//! whatever time the test skipped (or a frozen instant), so that no test waits for a timeout.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use streaming_daemon::backends::{Backend, Backends};
use streaming_daemon::config::{Config, SocketType};
use streaming_daemon::reactor::{Listener, Reactor, Turn};

use super::{hand_off, read_available, temp_socket_path};

pub const LIMIT: Duration = Duration::from_secs(10);

pub struct Harness {
    pub reactor: Reactor,
    pub path: PathBuf,
    socket_type: SocketType,
    /// Time the test has skipped: the reactor's clock runs this far ahead of the real one.
    skipped: Duration,
    /// A clock that does not move unless the test moves it, when set.
    pub frozen: Option<Instant>,
}

impl Harness {
    pub fn new(name: &str, adjust: impl FnOnce(&mut Config)) -> Harness {
        let mut config = Config::default();
        config.backend.mock.message_delay = Duration::ZERO;
        adjust(&mut config);
        let backends = Backends::create(&config).unwrap();
        Harness::build(name, config, backends, None)
    }

    pub fn with_backend(name: &str, config: Config, backend: Box<dyn Backend>) -> Harness {
        Harness::build(name, config, Backends::single(backend), None)
    }

    pub fn with_backends(name: &str, config: Config, backends: Backends) -> Harness {
        Harness::build(name, config, backends, None)
    }

    /// A mock reactor serving metrics too; returns the metrics address.
    pub fn with_metrics(name: &str, adjust: impl FnOnce(&mut Config)) -> (Harness, SocketAddr) {
        let mut config = Config::default();
        config.backend.mock.message_delay = Duration::ZERO;
        adjust(&mut config);
        let backends = Backends::create(&config).unwrap();
        let metrics = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = metrics.local_addr().unwrap();
        (
            Harness::build(name, config, backends, Some(metrics)),
            address,
        )
    }

    /// Two workers of one daemon (they share its counts and its directory of resumable
    /// streams), each on a socket of its own so that the test chooses which one a handoff
    /// reaches. The first is the leader.
    pub fn workers(name: &str, adjust: impl Fn(&mut Config)) -> (Harness, Harness) {
        let mut config = Config::default();
        config.backend.mock.message_delay = Duration::ZERO;
        adjust(&mut config);
        let first = Harness::build(
            &format!("{name}-1"),
            config.clone(),
            Backends::create(&config).unwrap(),
            None,
        );
        config.server.socket_path = temp_socket_path(&format!("{name}-2"));
        let listener =
            Listener::bind(&config.server.socket_path, config.server.socket_type, 0o600).unwrap();
        let shared = first.reactor.tally().shared().clone();
        let backends = Backends::create(&config).unwrap();
        let reactor = Reactor::worker(&config, listener, backends, shared).unwrap();
        let second = Harness {
            reactor,
            path: config.server.socket_path.clone(),
            socket_type: config.server.socket_type,
            skipped: Duration::ZERO,
            frozen: None,
        };
        (first, second)
    }

    fn build(
        name: &str,
        mut config: Config,
        backends: Backends,
        metrics: Option<mio::net::TcpListener>,
    ) -> Harness {
        config.server.socket_path = temp_socket_path(name);
        let listener =
            Listener::bind(&config.server.socket_path, config.server.socket_type, 0o600).unwrap();
        let reactor = Reactor::new(&config, listener, metrics, None, backends).unwrap();
        Harness {
            reactor,
            path: config.server.socket_path.clone(),
            socket_type: config.server.socket_type,
            skipped: Duration::ZERO,
            frozen: None,
        }
    }

    /// What time it is for the reactor.
    pub fn now(&self) -> Instant {
        self.frozen.unwrap_or_else(Instant::now) + self.skipped
    }

    /// Moves the reactor's clock forward, as if `by` had passed.
    pub fn skip(&mut self, by: Duration) {
        self.skipped += by;
    }

    pub fn turn(&mut self) -> Turn {
        let now = self.now();
        self.reactor
            .turn_at(now, Some(Duration::from_millis(5)))
            .unwrap()
    }

    pub fn hand_off(&self, data: &[u8], fd: &impl AsFd) {
        hand_off(&self.path, self.socket_type, data, fd);
    }

    /// Turns the loop until the client's stream ends; returns what the client received.
    pub fn collect(&mut self, client: &mut TcpStream) -> String {
        self.collect_skipping(client, Duration::ZERO)
    }

    /// Like `collect`, but every turn also moves the clock by `step`: for streams paced by
    /// the reactor's timers, whose pauses the test need not wait for.
    pub fn collect_skipping(&mut self, client: &mut TcpStream, step: Duration) -> String {
        let started = Instant::now();
        let mut received = Vec::new();
        loop {
            assert!(
                started.elapsed() < LIMIT,
                "stream did not end: {:?}",
                String::from_utf8_lossy(&received)
            );
            self.skip(step);
            self.turn();
            if read_available(client, &mut received).is_none() {
                return String::from_utf8(received).unwrap();
            }
        }
    }

    pub fn turn_until(&mut self, done: impl FnMut(&Reactor) -> bool) {
        self.turn_until_skipping(Duration::ZERO, done)
    }

    /// Like `turn_until`, moving the clock by `step` every turn.
    pub fn turn_until_skipping(&mut self, step: Duration, mut done: impl FnMut(&Reactor) -> bool) {
        let started = Instant::now();
        while !done(&self.reactor) {
            assert!(
                started.elapsed() < LIMIT,
                "condition not reached in {LIMIT:?}"
            );
            self.skip(step);
            self.turn();
        }
    }
}
