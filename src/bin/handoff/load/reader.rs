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
//! Faults (`-faults`, see [`Fault`]) change the reading:
//!
//! | fault     | event                                             | next                          |
//! |-----------|---------------------------------------------------|-------------------------------|
//! | `close`   | `-fault-bytes` read and nothing left unread        | ended by us: close (FIN)      |
//! | `reset`   | `-fault-bytes` read (never more) and a peek finds bytes unread | ended by us: close (RST) |
//! | `noread`  | readable: bytes                                   | nothing: they stay unread     |
//! | `noread`  | the daemon hung up                                | Reading what it had sent      |
//!
//! Every ending closes the fd, stores a [`Record`] and sends the pacer a permit. Tokens follow
//! the daemon's scheme (`reactor::token`): slab slot plus generation, so an event for a stream
//! that has ended is skipped. New streams are taken in only after an event batch, so no slot
//! is reused within one.

use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use streaming_daemon::reactor::token::{self, Key, Side};
use streaming_daemon::reactor::Slab;
use streaming_daemon::sys::{socket, stamps};

use super::fault::Fault;
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
    started_wall: SystemTime,
    /// When the first bytes reached the client socket, by the kernel's stamp.
    first_arrival: Option<SystemTime>,
    handoff: Duration,
    response: Response,
    fault: Fault,
    /// A `noread` stream whose daemon hung up: what it sent is read now, to judge it.
    hung_up: bool,
}

enum Ending {
    /// The daemon closed the stream (end of file).
    Closed,
    Reset,
    Timeout,
    /// We closed it as its fault planned (`close`, `reset`).
    Planned,
}

/// What to do with a stream that has something to read.
enum Next {
    /// Read up to this many bytes.
    Read(usize),
    /// Read nothing now (a `noread` stream).
    Wait,
    /// A `close` stream with its bytes read closes once a read finds nothing left.
    CloseWhenDrained,
    /// A `reset` stream with its bytes read closes once bytes wait unread.
    ResetWhenUnread,
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
    fault_bytes: u64,
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
        fault_bytes: u64,
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
            fault_bytes,
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
                    // mio's `is_read_closed` is epoll's EPOLLHUP, or EPOLLRDHUP with EPOLLIN.
                    self.ready(key, event.is_read_closed() || event.is_error());
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
                    started_wall,
                    handoff,
                    fault,
                }) => {
                    self.started += 1;
                    self.add(client, (started, started_wall), handoff, fault);
                }
                Ok(Handed::Ended(record)) => {
                    self.started += 1;
                    self.failed += u64::from(record.failure.is_some());
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

    fn add(
        &mut self,
        client: OwnedFd,
        (started, started_wall): (Instant, SystemTime),
        handoff: Duration,
        fault: Fault,
    ) {
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
            started_wall,
            first_arrival: None,
            handoff,
            response: Response::new(),
            fault,
            hung_up: false,
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

    /// An event for a stream: `hung_up` when the daemon closed its end (or it failed).
    fn ready(&mut self, key: Key, hung_up: bool) {
        if hung_up {
            if let Some(stream) = self.streams.get_mut(key) {
                stream.hung_up = true;
            }
        }
        self.read(key);
    }

    /// Drains the stream until `WouldBlock`, its end, or `READS_PER_TURN`, as its fault allows.
    fn read(&mut self, key: Key) {
        for _ in 0..READS_PER_TURN {
            let Some(stream) = self.streams.get_mut(key) else {
                return;
            };
            let next = next(stream, self.fault_bytes);
            let limit = match next {
                Next::Read(limit) => limit,
                Next::CloseWhenDrained => READ_BUFFER,
                Next::Wait => return,
                Next::ResetWhenUnread => return self.reset_if_unread(key),
            };
            // The first read takes the kernel's arrival stamp too (a peek would take it first).
            let received = if stream.response.first_byte().is_none() {
                stamps::recv(stream.client.as_fd(), &mut self.buf[..limit]).map(|(n, stamp)| {
                    if n > 0 {
                        stream.first_arrival = stamp;
                    }
                    n
                })
            } else {
                socket::recv(stream.client.as_fd(), &mut self.buf[..limit])
            };
            match received {
                Ok(0) => return self.end(key, Ending::Closed),
                Ok(n) => stream.response.feed(&self.buf[..n], Instant::now()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Next::CloseWhenDrained = next {
                        self.end(key, Ending::Planned);
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.end(key, Ending::Reset),
            }
        }
        self.again.push(key);
    }

    /// A `reset` stream that has read its bytes: closing now, with bytes unread, makes the
    /// kernel reset the connection. Until bytes wait, it waits for the next readable event.
    fn reset_if_unread(&mut self, key: Key) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        // A peek needs a `TcpStream`; a duplicate fd lends one without giving ours away.
        let peeked = stream
            .client
            .try_clone()
            .and_then(|fd| TcpStream::from(fd).peek(&mut [0u8; 1]));
        match peeked {
            Ok(0) => self.end(key, Ending::Closed),
            Ok(_) => self.end(key, Ending::Planned),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.again.push(key),
            Err(_) => self.end(key, Ending::Reset),
        }
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
        let (failure, late) = judge(stream.fault, &ending, response);
        let duration = match ending {
            Ending::Closed | Ending::Planned => Some(now.saturating_duration_since(stream.started)),
            Ending::Reset | Ending::Timeout => None,
        };
        self.failed += u64::from(failure.is_some());
        self.records.push(Record {
            fault: stream.fault,
            late,
            handoff: Some(stream.handoff),
            // A client that never read has no time to first byte: it read only after the
            // daemon hung up.
            ttfb: response
                .first_byte()
                .filter(|_| stream.fault != Fault::NoRead)
                .map(|at| at.saturating_duration_since(stream.started)),
            ttfb_arrival: stream
                .first_arrival
                .filter(|_| stream.fault != Fault::NoRead)
                .and_then(|at| at.duration_since(stream.started_wall).ok()),
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

/// What the stream's fault allows now, `fault_bytes` being `-fault-bytes`.
fn next(stream: &Stream, fault_bytes: u64) -> Next {
    let read = stream.response.bytes();
    match stream.fault {
        Fault::NoRead if !stream.hung_up => Next::Wait,
        Fault::Close if read >= fault_bytes => Next::CloseWhenDrained,
        Fault::Reset if read >= fault_bytes => Next::ResetWhenUnread,
        // Never past the planned bytes, so that the rest stays unread.
        Fault::Reset => Next::Read((fault_bytes - read).min(READ_BUFFER as u64) as usize),
        _ => Next::Read(READ_BUFFER),
    }
}

/// (the failure, if the stream did not end as its fault should; whether it was late: the
/// daemon completed it before a planned ending could happen).
fn judge(fault: Fault, ending: &Ending, response: &Response) -> (Option<Failure>, bool) {
    let verdict = response.verdict();
    match ending {
        Ending::Reset => (Some(Failure::Reset), false),
        Ending::Timeout => (Some(Failure::Timeout), false),
        // Closed by us: the head, if it arrived, must have been a stream's.
        Ending::Planned => match response.status() {
            Some(status) if status != 200 => (Some(Failure::Status(status)), false),
            _ => (None, verdict == Verdict::Complete),
        },
        Ending::Closed => match (fault, verdict) {
            (Fault::Close | Fault::Reset | Fault::NoRead, Verdict::Complete) => (None, true),
            // The daemon gave up on a client that never read: whatever it had sent, no [DONE].
            (Fault::NoRead, Verdict::Incomplete) => (None, false),
            (_, Verdict::Status(status)) if status == fault.expected_status() => (None, false),
            (Fault::BadJson, Verdict::Complete) => (Some(Failure::Status(200)), false),
            (_, Verdict::Complete) => (None, false),
            (_, Verdict::Status(status)) => (Some(Failure::Status(status)), false),
            (_, Verdict::ErrorEvent) => (Some(Failure::ErrorEvent), false),
            (_, Verdict::Incomplete) => (Some(Failure::Incomplete), false),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

    fn response(parts: &[&[u8]]) -> Response {
        let mut response = Response::new();
        for part in parts {
            response.feed(part, Instant::now());
        }
        response
    }

    #[test]
    fn planned_endings_pass_unless_the_head_was_an_error() {
        let partial = response(&[HEAD, b"data: x\n\n"]);
        assert_eq!(
            judge(Fault::Close, &Ending::Planned, &partial),
            (None, false)
        );
        assert_eq!(
            judge(Fault::Reset, &Ending::Planned, &response(&[b"HTTP/1.1 2"])),
            (None, false)
        );
        let refused = response(&[b"HTTP/1.1 503 Service Unavailable\r\n\r\n"]);
        assert_eq!(
            judge(Fault::Close, &Ending::Planned, &refused),
            (Some(Failure::Status(503)), false)
        );
        let whole = response(&[HEAD, b"data: x\n\ndata: [DONE]\n\n"]);
        assert_eq!(judge(Fault::Close, &Ending::Planned, &whole), (None, true));
    }

    #[test]
    fn a_stream_the_daemon_completed_first_is_late_for_planned_faults_only() {
        let whole = response(&[HEAD, b"data: [DONE]\n\n"]);
        for fault in [Fault::Close, Fault::Reset, Fault::NoRead] {
            assert_eq!(
                judge(fault, &Ending::Closed, &whole),
                (None, true),
                "{fault:?}"
            );
        }
        for fault in [Fault::Read, Fault::HalfClose] {
            assert_eq!(
                judge(fault, &Ending::Closed, &whole),
                (None, false),
                "{fault:?}"
            );
        }
        assert_eq!(
            judge(Fault::BadJson, &Ending::Closed, &whole),
            (Some(Failure::Status(200)), false)
        );
    }

    #[test]
    fn each_fault_fails_on_what_it_should_not_see() {
        let cut = response(&[HEAD, b"data: x\n\n"]);
        assert_eq!(judge(Fault::NoRead, &Ending::Closed, &cut), (None, false));
        assert_eq!(
            judge(Fault::Read, &Ending::Closed, &cut),
            (Some(Failure::Incomplete), false)
        );
        assert_eq!(
            judge(Fault::Close, &Ending::Closed, &cut),
            (Some(Failure::Incomplete), false)
        );
        let bad = response(&[b"HTTP/1.1 400 Bad Request\r\n\r\n{}"]);
        assert_eq!(judge(Fault::BadJson, &Ending::Closed, &bad), (None, false));
        assert_eq!(
            judge(Fault::Read, &Ending::Closed, &bad),
            (Some(Failure::Status(400)), false)
        );
        assert_eq!(
            judge(Fault::NoRead, &Ending::Closed, &bad),
            (Some(Failure::Status(400)), false)
        );
        let errored = response(&[HEAD, b"event: error\ndata: {}\n\n"]);
        assert_eq!(
            judge(Fault::HalfClose, &Ending::Closed, &errored),
            (Some(Failure::ErrorEvent), false)
        );
        assert_eq!(
            judge(Fault::NoRead, &Ending::Timeout, &cut),
            (Some(Failure::Timeout), false)
        );
        assert_eq!(
            judge(Fault::Reset, &Ending::Reset, &cut),
            (Some(Failure::Reset), false)
        );
    }
}
