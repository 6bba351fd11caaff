//! The reader: one mio loop over every client end in flight, so that 15,000 streams cost one
//! thread and one fd each.
//!
//! | stream state | event                          | next                                   |
//! |--------------|--------------------------------|----------------------------------------|
//! | (none)       | the pacer hands it over        | Reading (registered, deadline queued)  |
//! | Reading      | readable: bytes                | Reading (fed to its [`Response`])      |
//! | Reading      | readable: end of stream        | ended: judged by its response          |
//! | Reading      | readable: read error           | ended: `reset`                         |
//! | Reading      | its deadline passed            | ended: `timeout`                       |
//!
//! Every ending closes the fd, stores a [`Record`] and sends the pacer a permit. Tokens follow
//! the daemon's scheme (`reactor::token`): slab slot plus generation, so an event for a stream
//! that has ended is skipped. New streams are taken in only after an event batch, so no slot
//! is reused within one.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use streaming_daemon::reactor::token::{self, Key, Side};
use streaming_daemon::reactor::Slab;
use streaming_daemon::sys::socket;

use super::pacer::Handed;
use super::stream::{Response, Verdict};
use super::summary::{Failure, Record};

/// The pacer's waker: a fixed token in the daemon's scheme (3 to 15 are free for those).
pub const WAKER: Token = Token(3);
/// Reads per stream per turn before others get theirs; a stream cut off is run again next turn.
const READS_PER_TURN: usize = 16;
const READ_BUFFER: usize = 64 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

struct Stream {
    client: OwnedFd,
    started: Instant,
    handoff: Duration,
    response: Response,
}

enum Ending {
    Closed,
    Reset,
    Timeout,
}

/// What the reader hands back when every stream has ended.
pub struct Finished {
    pub records: Vec<Record>,
    pub peak_in_flight: u64,
}

pub struct Reader {
    poll: Poll,
    streams: Slab<Stream>,
    /// Deadlines in handoff order. All streams share one `-timeout` and the pacer starts them
    /// in order, so the queue is sorted; entries for streams that already ended are skipped.
    deadlines: VecDeque<(Instant, Key)>,
    /// Streams cut off at `READS_PER_TURN`: still readable, and epoll will not say so again.
    again: Vec<Key>,
    handed: Receiver<Handed>,
    pacer_done: bool,
    permits: Sender<()>,
    timeout: Duration,
    records: Vec<Record>,
    started: u64,
    failed: u64,
    peak_in_flight: u64,
    next_progress: Instant,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(
        poll: Poll,
        handed: Receiver<Handed>,
        permits: Sender<()>,
        timeout: Duration,
        streams: u64,
    ) -> Reader {
        Reader {
            poll,
            streams: Slab::new(),
            deadlines: VecDeque::new(),
            again: Vec::new(),
            handed,
            pacer_done: false,
            permits,
            timeout,
            records: Vec::with_capacity(streams.min(1 << 20) as usize),
            started: 0,
            failed: 0,
            peak_in_flight: 0,
            next_progress: Instant::now() + PROGRESS_EVERY,
            buf: vec![0; READ_BUFFER],
        }
    }

    /// Runs until the pacer is done and every stream has ended. Each stream ends by its
    /// `-timeout` at the latest, and the pacer after `-n` handoffs, so this loop is bounded.
    pub fn run(mut self) -> io::Result<Finished> {
        let mut events = Events::with_capacity(1024);
        while !(self.pacer_done && self.streams.is_empty()) {
            let wait = self.wait(Instant::now());
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for key in std::mem::take(&mut self.again) {
                self.read(key);
            }
            for event in events.iter() {
                if let Some((key, Side::Client)) = token::decode(event.token()) {
                    self.read(key);
                }
            }
            // Every turn, not only on a wake: it is one `try_recv` when nothing is waiting.
            self.take_handed();
            let now = Instant::now();
            self.expire(now);
            self.progress(now);
        }
        self.say_progress();
        Ok(Finished {
            records: self.records,
            peak_in_flight: self.peak_in_flight,
        })
    }

    /// How long the next poll may sleep: until the earliest deadline or progress line.
    fn wait(&self, now: Instant) -> Duration {
        if !self.again.is_empty() {
            return Duration::ZERO;
        }
        let mut until = self.next_progress;
        if let Some(&(deadline, _)) = self.deadlines.front() {
            until = until.min(deadline);
        }
        until.saturating_duration_since(now)
    }

    fn take_handed(&mut self) {
        loop {
            match self.handed.try_recv() {
                Ok(Handed::Stream {
                    client,
                    started,
                    handoff,
                }) => {
                    self.started += 1;
                    self.add(client, started, handoff);
                }
                Ok(Handed::Failed(record)) => {
                    self.started += 1;
                    self.failed += 1;
                    self.records.push(record);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.pacer_done = true;
                    break;
                }
            }
        }
        self.peak_in_flight = self.peak_in_flight.max(self.streams.len() as u64);
    }

    fn add(&mut self, client: OwnedFd, started: Instant, handoff: Duration) {
        let key = self.streams.next_key();
        let raw = client.as_raw_fd();
        let registered = self.poll.registry().register(
            &mut SourceFd(&raw),
            token::connection_token(key, Side::Client),
            Interest::READABLE,
        );
        let stream = Stream {
            client,
            started,
            handoff,
            response: Response::new(),
        };
        let key = self.streams.insert(stream);
        match registered {
            // Edge-triggered registration reports data that arrived before it, so nothing
            // the daemon sent early is missed.
            Ok(()) => self.deadlines.push_back((started + self.timeout, key)),
            // Counted as a read error: the stream cannot be read.
            Err(_) => self.end(key, Ending::Reset),
        }
    }

    /// Drains the stream until `WouldBlock`, its end, or `READS_PER_TURN`.
    fn read(&mut self, key: Key) {
        for _ in 0..READS_PER_TURN {
            let Some(stream) = self.streams.get_mut(key) else {
                return;
            };
            match socket::recv(stream.client.as_fd(), &mut self.buf) {
                Ok(0) => return self.end(key, Ending::Closed),
                Ok(n) => stream.response.feed(&self.buf[..n], Instant::now()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.end(key, Ending::Reset),
            }
        }
        self.again.push(key);
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, key)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            self.end(key, Ending::Timeout);
        }
    }

    /// Closes the stream (if it has not ended already), records it and frees a permit.
    fn end(&mut self, key: Key, ending: Ending) {
        let Some(stream) = self.streams.remove(key) else {
            return;
        };
        let now = Instant::now();
        let raw = stream.client.as_raw_fd();
        // Closing the fd would remove it from epoll too; deregistering says so explicitly.
        let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        drop(stream.client);
        let response = &stream.response;
        let (failure, duration) = match ending {
            Ending::Closed => {
                let failure = match response.verdict() {
                    Verdict::Complete => None,
                    Verdict::Status(status) => Some(Failure::Status(status)),
                    Verdict::ErrorEvent => Some(Failure::ErrorEvent),
                    Verdict::Incomplete => Some(Failure::Incomplete),
                };
                (failure, Some(now.saturating_duration_since(stream.started)))
            }
            Ending::Reset => (Some(Failure::Reset), None),
            Ending::Timeout => (Some(Failure::Timeout), None),
        };
        self.failed += u64::from(failure.is_some());
        self.records.push(Record {
            handoff: Some(stream.handoff),
            ttfb: response
                .first_byte()
                .map(|at| at.saturating_duration_since(stream.started)),
            duration,
            status: response.status(),
            bytes: response.bytes(),
            events: response.events(),
            failure,
        });
        // The pacer may be finished and gone; then nobody needs the permit.
        let _ = self.permits.send(());
    }

    fn progress(&mut self, now: Instant) {
        if now >= self.next_progress {
            self.say_progress();
            self.next_progress = now + PROGRESS_EVERY;
        }
    }

    fn say_progress(&self) {
        eprintln!(
            "handoff: {} started, {} in flight, {} done, {} failed",
            self.started,
            self.streams.len(),
            self.records.len(),
            self.failed
        );
    }
}
