//! A metrics scrape: one bounded HTTP request on the metrics listener, answered and closed.
//!
//! | phase   | event                                         | next                            |
//! |---------|-----------------------------------------------|---------------------------------|
//! | Reading | bytes, head not complete, under 8 KiB         | Reading                         |
//! | Reading | head complete (or malformed, or too big)      | Writing (the response)          |
//! | Reading | end of stream after a whole request           | Writing (a half-close is fine)  |
//! | Writing | everything written                            | closed                          |
//! | Reading | 2 s since accept                              | closed                          |
//! | any     | peer gone, or 10 s since accept               | closed                          |
//!
//! A scrape still reading is idle from the daemon's point of view: when all slots are taken,
//! the oldest idle one is closed to make room, so that half-sent requests cannot keep
//! Prometheus (or a liveness probe) out.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::conn::{Flushed, Outbox};
use crate::deadline;
use crate::metrics::scrape::{self, Snapshot, MAX_HEAD};
use crate::metrics::{Gauges, Metrics, ProcessStats};
use crate::stats::Tally;

/// Time for the whole request head to arrive.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole life of a scrape, from accept to the last byte written.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Scrape {
    stream: TcpStream,
    received: Vec<u8>,
    outbox: Outbox,
    accepted_at: Instant,
    responded: bool,
}

/// What the reactor has for a scrape to render.
pub struct View<'a> {
    pub tally: &'a Tally,
    pub gauges: Gauges,
    /// `None` when `/proc` could not be read: the daemon's own series are rendered anyway.
    pub process: Option<ProcessStats>,
}

impl Scrape {
    pub fn new(stream: TcpStream, now: Instant) -> Scrape {
        Scrape {
            stream,
            received: Vec::new(),
            outbox: Outbox::default(),
            accepted_at: now,
            responded: false,
        }
    }

    pub fn deadline(&self) -> Instant {
        let limit = if self.responded {
            SCRAPE_TIMEOUT
        } else {
            HEAD_TIMEOUT
        };
        deadline::after(self.accepted_at, limit)
    }

    /// Still waiting for its request.
    pub fn is_idle(&self) -> bool {
        !self.responded
    }

    /// Handles readiness; returns true when the scrape is over and may be closed.
    /// `view` is asked for only when a response is due.
    pub fn on_ready<'a>(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        view: impl FnOnce() -> View<'a>,
    ) -> bool {
        if self.responded {
            return !matches!(
                self.outbox
                    .flush(std::os::fd::AsFd::as_fd(&self.stream), now)
                    .0,
                Flushed::Blocked
            );
        }
        let mut ended = false;
        let mut buf = [0u8; 2048];
        loop {
            match self.stream.read(&mut buf) {
                // A client may half-close after its request (`nc -N`): answer what came, if
                // it is a whole request.
                Ok(0) if self.received.is_empty() => return true,
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => {
                    let room = (MAX_HEAD + 1).saturating_sub(self.received.len());
                    self.received.extend_from_slice(&buf[..n.min(room)]);
                    if room <= n {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        let parsed = scrape::parse_request(&self.received);
        let Some(reply) = parsed.reply() else {
            // An incomplete request from a peer that has stopped sending will not complete.
            return ended;
        };
        self.received = Vec::new();
        self.responded = true;
        let view = view();
        // Every worker's, summed; in `-benchmark` mode none are kept: zeros.
        let all = view
            .tally
            .all_metrics()
            .unwrap_or_else(|| vec![Arc::new(Metrics::new())]);
        let workers: Vec<&Metrics> = all.iter().map(|m| &**m).collect();
        out.clear();
        let snapshot = Snapshot {
            metrics: &workers,
            gauges: view.gauges,
            process: view.process.as_ref(),
        };
        scrape::respond(reply, snapshot, out);
        self.send(out, now)
    }

    /// After a panic while serving it: a 500 if nothing was answered yet (one try).
    pub fn fail(&mut self) {
        if !self.responded {
            self.responded = true;
            let _ = self
                .stream
                .write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    }

    fn send(&mut self, bytes: &[u8], now: Instant) -> bool {
        let fd = std::os::fd::AsFd::as_fd(&self.stream);
        !matches!(self.outbox.write(fd, bytes, now).0, Flushed::Blocked)
    }
}
