//! The client's socket once a handoff delivered it: validated, registered, and written through
//! one outbox. Everything the client is sent (a head, events, an error response) goes through
//! here, so what has been written is known even after a panic.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::outbox::{Flushed, Outbox};
use crate::deadline;
use crate::end::Outcome;
use crate::handoff::HandoffError;
use crate::sys::socket;

/// TCP keepalive on client sockets, so that dead peers are noticed during long streams.
const CLIENT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Bytes a client may send after its request before we stop listening to it. Apache has read
/// the request; anything more is at best a pipelined request we will not answer.
const CLIENT_INPUT_LIMIT: usize = 64 * 1024;

/// How a failed read or write on the client's socket ends its stream (SPEC §7.2, Go's
/// `classifyError`): a peer that reset or broke the connection went away; any other socket
/// error (`ENOTCONN`, `ETIMEDOUT`, `EHOSTUNREACH`, ...) is a network error.
pub fn gone(error: &io::Error) -> Outcome {
    match error.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::WriteZero => {
            Outcome::ClientDisconnected
        }
        _ => Outcome::Network,
    }
}

pub struct Client {
    fd: OwnedFd,
    outbox: Outbox,
    /// Every byte the socket took: heads, events and error responses.
    bytes_sent: u64,
    /// SSE events written (or queued) for this client.
    events: u32,
    bytes_read: usize,
    /// The client shut its sending side down (end of file): nothing more to read, but the
    /// stream goes on while it can be written (a half-close is not a goodbye).
    input_closed: bool,
    /// The status of the answer begun (200 for a stream); 0 until one is.
    status: u16,
}

/// What reading the client's side said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Nothing more to read for now.
    Quiet,
    /// End of file: the client shut its sending side. Whether it also went away only a write
    /// can tell.
    Closed,
    /// The socket failed: how that ends the stream ([`gone`]).
    Failed(Outcome),
    /// The client sent far more than a request's worth after its request.
    Flooded,
}

impl Client {
    /// Takes the fd a handoff brought: it must be a stream socket. It is made non-blocking,
    /// given keepalive (best effort: a socketpair has no TCP options) and registered readable
    /// (to notice the client leaving) and writable (to resume blocked writes). Edge-triggered,
    /// so this is the only registration it ever needs.
    pub fn adopt(fd: OwnedFd, registry: &Registry, token: Token) -> Result<Client, HandoffError> {
        match socket::socket_type(fd.as_fd()) {
            Ok(libc::SOCK_STREAM) => {}
            Ok(other) => {
                return Err(HandoffError::BadFd {
                    reason: format!("socket type {other}, not SOCK_STREAM"),
                })
            }
            Err(e) => {
                return Err(HandoffError::BadFd {
                    reason: e.to_string(),
                })
            }
        }
        let bad_fd = |e: io::Error| HandoffError::BadFd {
            reason: e.to_string(),
        };
        socket::set_nonblocking(fd.as_fd()).map_err(bad_fd)?;
        let _ = socket::enable_keepalive(fd.as_fd(), CLIENT_KEEPALIVE);
        registry
            .register(
                &mut SourceFd(&fd.as_raw_fd()),
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(bad_fd)?;
        Ok(Client {
            fd,
            outbox: Outbox::default(),
            bytes_sent: 0,
            events: 0,
            bytes_read: 0,
            input_closed: false,
            status: 0,
        })
    }

    /// Moves the socket's events to `token` (a resumed stream takes the client over).
    pub fn retoken(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.reregister(
            &mut SourceFd(&self.fd.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Gives the socket up, deregistered, for another worker's loop. Nothing may have been
    /// written to it.
    pub fn into_fd(self, registry: &Registry) -> OwnedFd {
        // Closing would deregister it too; moving it to another epoll instance does not.
        let _ = registry.deregister(&mut SourceFd(&self.fd.as_raw_fd()));
        self.fd
    }

    /// Writes `data` after anything already waiting. Returns how it went and the bytes the
    /// socket took in this call.
    pub fn send(&mut self, data: &[u8], now: Instant) -> (Flushed, usize) {
        let (outcome, written) = self.outbox.write(self.fd.as_fd(), data, now);
        self.bytes_sent += written as u64;
        (outcome, written)
    }

    /// Writes what is waiting, after a writable event.
    pub fn flush(&mut self, now: Instant) -> (Flushed, usize) {
        let (outcome, written) = self.outbox.flush(self.fd.as_fd(), now);
        self.bytes_sent += written as u64;
        (outcome, written)
    }

    /// Reads and discards what the client sends.
    pub fn read_input(&mut self) -> Input {
        if self.input_closed {
            return Input::Closed;
        }
        let mut discard = [0u8; 2048];
        loop {
            match socket::recv(self.fd.as_fd(), &mut discard) {
                Ok(0) => {
                    self.input_closed = true;
                    return Input::Closed;
                }
                Ok(n) => {
                    self.bytes_read += n;
                    if self.bytes_read > CLIENT_INPUT_LIMIT {
                        return Input::Flooded;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Quiet,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Input::Failed(gone(&e)),
            }
        }
    }

    /// Nothing waits to be written: the client has taken everything.
    pub fn is_clear(&self) -> bool {
        self.outbox.is_empty()
    }

    /// An answer with this status begins: its head is about to be written.
    pub fn answer(&mut self, status: u16) {
        self.status = status;
    }

    /// Bytes of an answer have been written or queued, so no other answer can be given any
    /// more. (A head merely prepared, as when a panic cut the transition short, does not count.)
    pub fn has_answered(&self) -> bool {
        self.bytes_sent > 0 || !self.outbox.is_empty()
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// When the client will have taken nothing for `write_timeout`, while bytes wait.
    pub fn stall_deadline(&self, write_timeout: Duration) -> Option<Instant> {
        self.outbox
            .stalled_since()
            .map(|since| deadline::after(since, write_timeout))
    }

    pub fn count_events(&mut self, events: u32) {
        self.events = self.events.saturating_add(events);
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    pub fn events(&self) -> u32 {
        self.events
    }

    /// Bytes held for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.outbox.held_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_or_broken_pipe_is_a_disconnect_and_any_other_error_is_network() {
        for errno in [libc::EPIPE, libc::ECONNRESET] {
            let error = io::Error::from_raw_os_error(errno);
            assert_eq!(gone(&error), Outcome::ClientDisconnected, "{error}");
        }
        for errno in [
            libc::ENOTCONN,
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::EINVAL,
        ] {
            let error = io::Error::from_raw_os_error(errno);
            assert_eq!(gone(&error), Outcome::Network, "{error}");
        }
    }
}
