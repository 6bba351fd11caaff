//! A metrics scrape: one bounded HTTP request on the metrics listener, answered and closed.
//!
//! | state      | event                               | next                     |
//! |------------|-------------------------------------|--------------------------|
//! | Reading    | bytes, head not complete, under 8 KiB | Reading                |
//! | Reading    | head complete, malformed or too big | Writing (the response)   |
//! | Writing    | everything written                  | closed                   |
//! | any        | peer gone, or 10 s since accept     | closed                   |

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::conn::{Flushed, Outbox};
use crate::metrics::scrape::{self, Snapshot, MAX_HEAD};
use crate::metrics::{Gauges, Metrics, ProcessStats};
use crate::stats::Tally;

/// The whole life of a scrape, from accept to the last byte written.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Scrape {
    stream: TcpStream,
    received: Vec<u8>,
    outbox: Outbox,
    accepted_at: Instant,
    responded: bool,
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
        self.accepted_at + SCRAPE_TIMEOUT
    }

    /// Handles readiness; returns true when the scrape is over and may be closed.
    pub fn on_ready(
        &mut self,
        now: Instant,
        scratch: &mut Vec<u8>,
        tally: &Tally,
        gauges: Gauges,
    ) -> bool {
        if self.responded {
            return !matches!(
                self.outbox.flush(self.stream.as_fd(), now).0,
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
        let fallback;
        let metrics = match tally.metrics() {
            Some(metrics) => metrics,
            None => {
                fallback = Metrics::new();
                &fallback
            }
        };
        let process = ProcessStats::read()
            .map_err(|e| log::warn!("cannot read /proc for process metrics: {e}"))
            .ok();
        scratch.clear();
        let snapshot = Snapshot {
            metrics,
            gauges,
            process: process.as_ref(),
        };
        scrape::respond(reply, snapshot, scratch);
        !matches!(
            self.outbox.write(self.stream.as_fd(), scratch, now).0,
            Flushed::Blocked
        )
    }
}
