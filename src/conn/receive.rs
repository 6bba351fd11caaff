//! The receiving stage: data and fds from Apache's Unix connection, read until the handoff is
//! complete, within the handoff timeout.
//!
//! On a stream socket the payload may arrive in several reads (the fd travels with the first),
//! so everything is collected until end of stream. On a seqpacket socket one message is the
//! whole handoff. Every fd is owned the moment it arrives; the first is the client, kept in the
//! connection's slot (so that a panic here still finds it to answer), extras are closed at
//! once. Pieces are appended once each, so a handoff in many small pieces costs linear time.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use crate::config::SocketType;
use crate::handoff::HandoffError;
use crate::sys::fdpass;

/// What the stage needs to know of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub socket_type: SocketType,
    pub max_handoff_bytes: usize,
}

pub struct Receiver {
    /// The Unix connection from Apache; closed with the receiver, as soon as it is done.
    apache: OwnedFd,
    /// Data from earlier reads when the handoff arrived in pieces; empty (and unallocated) in
    /// the usual case where one event brings everything.
    partial: Vec<u8>,
    /// When the handoff must be complete.
    deadline: Instant,
    /// Bytes copied so far, to show that pieces cost linear time.
    #[cfg(test)]
    copied: usize,
}

pub enum Received {
    /// Waiting for more.
    More,
    /// Complete, with the client's fd in the slot: the data is the first `len` bytes of the
    /// handoff buffer.
    Complete { len: usize },
    /// Rejected; the client's fd stays in the slot when one arrived and may still be answered.
    Failed(HandoffError),
}

impl Receiver {
    pub fn new(apache: OwnedFd, deadline: Instant) -> Receiver {
        Receiver {
            apache,
            partial: Vec::new(),
            deadline,
            #[cfg(test)]
            copied: 0,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn held_bytes(&self) -> usize {
        self.partial.capacity()
    }

    /// Reads until the handoff is complete or the socket would block. `buf` is the reactor's
    /// shared handoff buffer, `max_handoff_bytes + 1` long so that excess is detectable;
    /// `client` is the connection's slot for the client's fd.
    pub fn receive(
        &mut self,
        limits: Limits,
        buf: &mut [u8],
        client: &mut Option<OwnedFd>,
    ) -> Received {
        let limit = limits.max_handoff_bytes;
        let mut filled = 0;
        loop {
            let room = buf.len().saturating_sub(self.partial.len());
            let mut fds = Vec::new();
            let result =
                fdpass::recv_with_fds(self.apache.as_fd(), &mut buf[filled..room], &mut fds);
            let got_fds = !fds.is_empty();
            keep_first(fds, client);
            match result {
                Ok(received) if received.control_truncated => {
                    *client = None;
                    return Received::Failed(HandoffError::ControlTruncated);
                }
                Ok(received) => match limits.socket_type {
                    SocketType::SeqPacket => {
                        if received.truncated || received.bytes > limit {
                            return Received::Failed(HandoffError::TooLarge { limit });
                        }
                        return self.complete(buf, received.bytes, client);
                    }
                    SocketType::Stream => {
                        if received.bytes == 0 && !got_fds {
                            return self.complete(buf, filled, client);
                        }
                        filled += received.bytes;
                        if self.partial.len() + filled > limit {
                            return Received::Failed(HandoffError::TooLarge { limit });
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.partial.extend_from_slice(&buf[..filled]);
                    #[cfg(test)]
                    {
                        self.copied += filled;
                    }
                    return Received::More;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let reset =
                        matches!(e.raw_os_error(), Some(libc::ECONNRESET) | Some(libc::EPIPE));
                    return Received::Failed(HandoffError::Receive {
                        reason: e.to_string(),
                        reset,
                    });
                }
            }
        }
    }

    /// The data is what earlier reads kept, then the first `filled` bytes of `buf`: put it all
    /// at the front of `buf`.
    fn complete(&mut self, buf: &mut [u8], filled: usize, client: &Option<OwnedFd>) -> Received {
        if client.is_none() {
            return Received::Failed(HandoffError::NoFd);
        }
        let kept = self.partial.len();
        if kept > 0 {
            buf.copy_within(..filled, kept);
            buf[..kept].copy_from_slice(&self.partial);
            #[cfg(test)]
            {
                self.copied += filled + kept;
            }
            self.partial = Vec::new();
        }
        Received::Complete { len: kept + filled }
    }
}

/// The first fd is the client's; extras are closed at once.
fn keep_first(fds: Vec<OwnedFd>, client: &mut Option<OwnedFd>) {
    for fd in fds {
        if client.is_none() {
            *client = Some(fd);
        } else {
            log::warn!("handoff carried more than one fd; closing the extra ones");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{fdpass, socket};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_handoff_in_many_small_pieces_is_copied_in_linear_time() {
        let (apache, daemon_end) = socket::unix_pair(SocketType::Stream).unwrap();
        socket::set_nonblocking(daemon_end.as_fd()).unwrap();
        let (client, _peer) = socket::unix_pair(SocketType::Stream).unwrap();
        let limits = Limits {
            socket_type: SocketType::Stream,
            max_handoff_bytes: 64 * 1024,
        };
        let mut buf = vec![0u8; limits.max_handoff_bytes + 1];
        let mut slot = None;
        let mut receiver = Receiver::new(daemon_end, Instant::now());
        let payload: Vec<u8> = (0..20_000).map(|i| b'a' + (i % 26) as u8).collect();
        fdpass::send_with_fd(&apache, &payload[..1], client.as_raw_fd()).unwrap();
        for byte in &payload[1..] {
            assert!(matches!(
                receiver.receive(limits, &mut buf, &mut slot),
                Received::More
            ));
            socket::send(apache.as_fd(), std::slice::from_ref(byte)).unwrap();
        }
        drop(apache);
        let Received::Complete { len } = receiver.receive(limits, &mut buf, &mut slot) else {
            panic!("not complete");
        };
        assert_eq!(&buf[..len], &payload[..]);
        assert!(slot.is_some());
        // Each byte is kept once as it arrives and moved once at the end: quadratic copying
        // would be about 200 million here.
        assert!(
            receiver.copied <= 2 * payload.len(),
            "{} bytes copied",
            receiver.copied
        );
    }
}
