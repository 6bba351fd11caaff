//! The pacing thread: makes each client pair, hands one end to the daemon, and passes the other
//! end to the reader.
//!
//! At most `-c` streams are in flight. The first `-c` handoffs are spread evenly over
//! `-ramp-up`; after that each new handoff waits for a permit, which the reader sends whenever
//! a stream ends. A handoff that fails uses no permit. The thread ends after `-n` handoffs, or
//! as soon as the reader is gone (its channels disconnect).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;
use streaming_daemon::config::SocketType;
use streaming_daemon::sys::socket;

use super::summary::{Failure, Record};
use crate::args::{LoadOptions, Options};
use crate::single;

/// What the pacer tells the reader, in handoff order.
pub enum Handed {
    /// The daemon has the other end; `client` is ours to read, non-blocking.
    Stream {
        client: OwnedFd,
        /// Just before connecting to the daemon's socket: every stream time counts from here.
        started: Instant,
        handoff: Duration,
    },
    /// The stream never reached the daemon.
    Failed(Record),
}

pub struct Pacer {
    options: Options,
    streams: u64,
    concurrency: u64,
    ramp_up: Duration,
    /// One listener for the whole run (`None` with `-socketpair`): each stream connects to it
    /// and accepts its own connection, so no listener is made per pair.
    listener: Option<TcpListener>,
    handed: Sender<Handed>,
    waker: Arc<Waker>,
    permits: Receiver<()>,
    /// Failure classes whose first error was already printed.
    reported: Vec<&'static str>,
}

impl Pacer {
    pub fn new(
        options: &Options,
        load: &LoadOptions,
        handed: Sender<Handed>,
        waker: Arc<Waker>,
        permits: Receiver<()>,
    ) -> io::Result<Pacer> {
        let listener = if options.socketpair {
            None
        } else {
            Some(TcpListener::bind("127.0.0.1:0")?)
        };
        Ok(Pacer {
            options: options.clone(),
            streams: load.streams,
            concurrency: load.concurrency,
            ramp_up: load.ramp_up,
            listener,
            handed,
            waker,
            permits,
            reported: Vec::new(),
        })
    }

    pub fn run(mut self) {
        let start = Instant::now();
        let mut permits = self.concurrency;
        for i in 0..self.streams {
            if i < self.concurrency {
                let due = start + self.ramp_up.mul_f64(i as f64 / self.concurrency as f64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            while permits == 0 {
                match self.permits.recv() {
                    Ok(()) => permits += 1,
                    Err(_) => return,
                }
            }
            let handed = self.one();
            if matches!(handed, Handed::Stream { .. }) {
                permits -= 1;
            }
            if self.handed.send(handed).is_err() {
                return;
            }
            // A failed wake leaves the message for the reader's next periodic turn.
            let _ = self.waker.wake();
        }
        // The reader notices the disconnection on its next turn; wake it for that turn.
        drop(self.handed);
        let _ = self.waker.wake();
    }

    fn one(&mut self) -> Handed {
        let (client, theirs) = match self.pair() {
            Ok(pair) => pair,
            Err(e) => return self.failed(Failure::Pair, e),
        };
        let started = Instant::now();
        let apache = match single::connect(&self.options) {
            Ok(apache) => apache,
            Err(e) => return self.failed(Failure::Connect, e),
        };
        if let Err(e) = single::hand_off(apache, single::handoff_data(&self.options), &theirs) {
            return self.failed(Failure::Handoff, e);
        }
        let handoff = started.elapsed();
        // The daemon holds its own copy now; ours must go so that its close ends the stream.
        drop(theirs);
        Handed::Stream {
            client,
            started,
            handoff,
        }
    }

    /// (our non-blocking end, the end for the daemon).
    fn pair(&self) -> io::Result<(OwnedFd, OwnedFd)> {
        let Some(listener) = &self.listener else {
            let (ours, theirs) = socket::unix_pair(SocketType::Stream)?;
            socket::set_nonblocking(ours.as_fd())?;
            return Ok((ours, theirs));
        };
        // Our end connects, so the ephemeral port is ours; the daemon closes first, so the
        // TIME_WAIT state lands on its end, whose port is the listener's, and ours is free at once.
        let ours = TcpStream::connect(listener.local_addr()?)?;
        // Loopback connects complete in the backlog, so this accept does not wait.
        let (theirs, peer) = listener.accept()?;
        if peer != ours.local_addr()? {
            return Err(stranger(peer));
        }
        ours.set_nonblocking(true)?;
        Ok((ours.into(), theirs.into()))
    }

    /// Says the first error of each class (the rest are only counted) and makes the record.
    fn failed(&mut self, failure: Failure, error: io::Error) -> Handed {
        let class = failure.class();
        if !self.reported.contains(&class) {
            self.reported.push(class);
            let hint = if error.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                "; out of loopback ports? try -socketpair"
            } else {
                ""
            };
            eprintln!("handoff: {class} failure: {error}{hint} (more are only counted)");
        }
        Handed::Failed(Record::failed(failure))
    }
}

fn stranger(peer: SocketAddr) -> io::Error {
    io::Error::other(format!(
        "the load listener accepted a connection from {peer}, not from this tool"
    ))
}
