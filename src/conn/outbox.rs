//! The client-bound output path: write now, keep only what the socket would not take.
//!
//! Most writes complete at once, so a connection holds no buffer at all; one is allocated only
//! when a write would block and freed as soon as it drains. Its size is bounded by what the
//! caller appends while it is non-empty, and callers stop producing while it holds anything.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use crate::sys::socket;

/// How a write went, classified once at the socket boundary.
#[derive(Debug)]
pub enum Flushed {
    /// Everything was written.
    Empty,
    /// Some bytes wait for the socket to become writable.
    Blocked,
    /// The peer is gone or the socket failed.
    Failed(io::Error),
}

struct Pending {
    bytes: Vec<u8>,
    sent: usize,
    /// When the client last took bytes (or when the first byte had to wait).
    last_progress: Instant,
}

#[derive(Default)]
pub struct Outbox {
    pending: Option<Box<Pending>>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.pending.is_none()
    }

    /// Bytes held in memory, counted against `server.mem_limit`.
    pub fn held_bytes(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.bytes.capacity())
    }

    /// Since when the client has taken nothing, while bytes are waiting.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.last_progress)
    }

    /// Writes `data` after anything already waiting. Returns the outcome and the bytes the
    /// socket accepted in this call.
    pub fn write(&mut self, fd: BorrowedFd<'_>, data: &[u8], now: Instant) -> (Flushed, usize) {
        if let Some(pending) = self.pending.as_mut() {
            pending.bytes.extend_from_slice(data);
            return self.flush(fd, now);
        }
        let (outcome, written) = write_some(fd, data);
        match outcome {
            Flushed::Blocked => {
                self.pending = Some(Box::new(Pending {
                    bytes: data[written..].to_vec(),
                    sent: 0,
                    last_progress: now,
                }));
            }
            Flushed::Empty | Flushed::Failed(_) => {}
        }
        (outcome, written)
    }

    /// Writes what is waiting until done or the socket would block.
    pub fn flush(&mut self, fd: BorrowedFd<'_>, now: Instant) -> (Flushed, usize) {
        let Some(pending) = self.pending.as_mut() else {
            return (Flushed::Empty, 0);
        };
        let (outcome, written) = write_some(fd, &pending.bytes[pending.sent..]);
        pending.sent += written;
        if written > 0 {
            pending.last_progress = now;
        }
        if let Flushed::Empty = outcome {
            self.pending = None;
        }
        (outcome, written)
    }
}

/// Sends until everything is written, the socket would block, or it fails.
fn write_some(fd: BorrowedFd<'_>, data: &[u8]) -> (Flushed, usize) {
    let mut written = 0;
    while written < data.len() {
        match socket::send(fd, &data[written..]) {
            Ok(0) => return (Flushed::Failed(io::ErrorKind::WriteZero.into()), written),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (Flushed::Blocked, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Flushed::Failed(e), written),
        }
    }
    (Flushed::Empty, written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketType;
    use std::os::fd::AsFd;

    #[test]
    fn a_full_socket_keeps_the_rest_and_drains_later() {
        let (ours, theirs) = socket::unix_pair(SocketType::Stream).unwrap();
        socket::set_nonblocking(ours.as_fd()).unwrap();
        socket::set_send_buffer(ours.as_fd(), 4096).unwrap();
        let now = Instant::now();
        let data = vec![b'x'; 1 << 20];
        let mut outbox = Outbox::default();

        let (outcome, first) = outbox.write(ours.as_fd(), &data, now);
        assert!(matches!(outcome, Flushed::Blocked));
        assert!(first < data.len());
        assert_eq!(outbox.stalled_since(), Some(now));
        assert!(outbox.held_bytes() >= data.len() - first);

        let mut received = vec![0u8; 1 << 16];
        let mut total_received = 0;
        let mut total_sent = first;
        for _ in 0..10_000 {
            total_received += socket::recv(theirs.as_fd(), &mut received).unwrap_or(0);
            let (outcome, n) = outbox.flush(ours.as_fd(), now);
            total_sent += n;
            if let Flushed::Empty = outcome {
                break;
            }
        }
        assert!(outbox.is_empty());
        assert_eq!(outbox.held_bytes(), 0);
        assert_eq!(total_sent, data.len());
        while total_received < data.len() {
            total_received += socket::recv(theirs.as_fd(), &mut received).unwrap();
        }
    }

    #[test]
    fn a_closed_peer_is_a_failure() {
        let (ours, theirs) = socket::unix_pair(SocketType::Stream).unwrap();
        drop(theirs);
        let mut outbox = Outbox::default();
        let (outcome, _) = outbox.write(ours.as_fd(), b"hello", Instant::now());
        assert!(matches!(outcome, Flushed::Failed(_)));
    }
}
