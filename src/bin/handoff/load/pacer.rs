//! The pacing thread: makes each client pair, hands one end to the daemon, and passes the other
//! end to the reader.
//!
//! At most `-c` streams are in flight. The first `-c` handoffs are spread evenly over
//! `-ramp-up`; after that each new handoff waits for a permit, which the reader sends whenever
//! a stream ends. A handoff that fails uses no permit, nor does a `nofd` one (it has no
//! client). The thread ends after `-n` handoffs, or as soon as the reader is gone (its channels
//! disconnect). Stream `i` behaves as the `-faults` mix says for `i` ([`Fault`]).

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::Waker;
use streaming_daemon::config::SocketType;
use streaming_daemon::sys::{socket, stamps};

use super::fault::{self, Fault};
use super::summary::{Failure, Record};
use crate::args::{LoadOptions, Options};
use crate::mix::Mix;
use crate::single;

/// What the pacer tells the reader, in handoff order.
pub enum Handed {
    /// The daemon has the other end; `client` is ours to read, non-blocking.
    Stream {
        client: OwnedFd,
        /// Just before connecting to the daemon's socket: every stream time counts from here.
        started: Instant,
        /// The same moment by the wall clock, which the kernel's arrival stamps use.
        started_wall: SystemTime,
        handoff: Duration,
        fault: Fault,
    },
    /// A stream that is over already: it never reached the daemon, or it had no client.
    Ended(Record),
}

/// How a stream's client pair is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Loopback TCP through the load listener.
    Tcp,
    /// An `AF_UNIX` stream socketpair.
    Pair,
    /// A socketpair whose daemon end has the smallest send buffer the kernel allows (a few
    /// KiB), so that a client that never reads stalls the daemon's writes early.
    SmallPair,
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
    faults: Mix,
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
        // `reset` streams use TCP whatever the transport.
        let reset = load.faults.has(Fault::Reset.index());
        let listener = if options.socketpair && !reset {
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
            faults: load.faults.clone(),
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
            let handed = self.one(Fault::from_index(self.faults.kind(i)));
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

    fn one(&mut self, fault: Fault) -> Handed {
        if fault == Fault::NoFd {
            return self.no_fd();
        }
        let transport = match fault {
            Fault::Reset => Transport::Tcp,
            Fault::NoRead => Transport::SmallPair,
            _ if self.options.socketpair => Transport::Pair,
            _ => Transport::Tcp,
        };
        let (client, theirs) = match self.pair(transport) {
            Ok(pair) => pair,
            Err(e) => return self.failed(fault, Failure::Pair, e),
        };
        // Without stamps the stream has no arrival time, only a read time.
        let _ = stamps::enable(client.as_fd());
        let started = Instant::now();
        let started_wall = SystemTime::now();
        let apache = match single::connect(&self.options) {
            Ok(apache) => apache,
            Err(e) => return self.failed(fault, Failure::Connect, e),
        };
        let data = match fault {
            Fault::BadJson => fault::BAD_JSON,
            _ => single::handoff_data(&self.options),
        };
        if let Err(e) = single::hand_off(apache, data, &theirs) {
            return self.failed(fault, Failure::Handoff, e);
        }
        let handoff = started.elapsed();
        // The daemon holds its own copy now; ours must go so that its close ends the stream.
        drop(theirs);
        let client = match fault {
            Fault::HalfClose => match shut_sending_side(client, transport) {
                Ok(client) => client,
                Err(e) => return self.failed(fault, Failure::Handoff, e),
            },
            _ => client,
        };
        Handed::Stream {
            client,
            started,
            started_wall,
            handoff,
            fault,
        }
    }

    /// A handoff without an fd, as a broken Apache module might send: the data, then close.
    fn no_fd(&mut self) -> Handed {
        let started = Instant::now();
        let sent = single::connect(&self.options).map(UnixStream::from);
        let sent =
            sent.and_then(|mut apache| apache.write_all(single::handoff_data(&self.options)));
        match sent {
            Ok(()) => Handed::Ended(Record {
                handoff: Some(started.elapsed()),
                ..Record::unstreamed(Fault::NoFd, None)
            }),
            Err(e) => self.failed(Fault::NoFd, Failure::Connect, e),
        }
    }

    /// (our non-blocking end, the end for the daemon).
    fn pair(&self, transport: Transport) -> io::Result<(OwnedFd, OwnedFd)> {
        let listener = match (transport, &self.listener) {
            (Transport::Tcp, Some(listener)) => listener,
            (Transport::Tcp, None) => {
                return Err(io::Error::other("no load listener for a TCP pair"))
            }
            (Transport::Pair | Transport::SmallPair, _) => {
                let (ours, theirs) = socket::unix_pair(SocketType::Stream)?;
                socket::set_nonblocking(ours.as_fd())?;
                if transport == Transport::SmallPair {
                    // The kernel raises this to its minimum.
                    socket::set_send_buffer(theirs.as_fd(), 1)?;
                }
                return Ok((ours, theirs));
            }
        };
        // Our end connects, so the ephemeral port is ours; the daemon closes first, so the
        // TIME_WAIT state lands on its end, whose port is the listener's, and ours is free at once.
        // (A `close` stream closes first and leaves TIME_WAIT here; Linux reuses such loopback
        // ports for new connects, `net.ipv4.tcp_tw_reuse`, 2 by default.)
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
    fn failed(&mut self, fault: Fault, failure: Failure, error: io::Error) -> Handed {
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
        Handed::Ended(Record::unstreamed(fault, Some(failure)))
    }
}

/// `shutdown(SHUT_WR)` on our end: the client says it will send nothing more, and reads on.
fn shut_sending_side(client: OwnedFd, transport: Transport) -> io::Result<OwnedFd> {
    Ok(match transport {
        Transport::Tcp => {
            let client = TcpStream::from(client);
            client.shutdown(Shutdown::Write)?;
            client.into()
        }
        Transport::Pair | Transport::SmallPair => {
            let client = UnixStream::from(client);
            client.shutdown(Shutdown::Write)?;
            client.into()
        }
    })
}

fn stranger(peer: SocketAddr) -> io::Error {
    io::Error::other(format!(
        "the load listener accepted a connection from {peer}, not from this tool"
    ))
}
