//! Receiving a handoff: data and fds from Apache's Unix connection, read until it is complete.
//!
//! On a stream socket the payload may arrive in several reads (the fd travels with the first),
//! so everything is collected until end of stream. On a seqpacket socket one message is the
//! whole handoff. Every fd is owned the moment it arrives; the first is the client, extras are
//! closed at once.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::Settings;
use crate::config::SocketType;
use crate::handoff::HandoffError;
use crate::sys::fdpass;

#[derive(Default)]
pub struct Receiver {
    /// Data from earlier reads when the handoff arrived in pieces; empty (and unallocated) in
    /// the usual case where one event brings everything.
    partial: Vec<u8>,
    client: Option<OwnedFd>,
}

pub enum Received {
    /// Waiting for more.
    More,
    /// Complete: the data is the first `len` bytes of the handoff buffer.
    Complete { client: OwnedFd, len: usize },
    /// Rejected; the client fd, when one arrived and may still be answered.
    Failed {
        error: HandoffError,
        client: Option<OwnedFd>,
    },
}

impl Receiver {
    pub fn held_bytes(&self) -> usize {
        self.partial.capacity()
    }

    /// Reads until the handoff is complete or the socket would block. `buf` is the reactor's
    /// shared handoff buffer, `max_handoff_bytes + 1` long so that excess is detectable.
    pub fn receive(
        &mut self,
        apache: BorrowedFd<'_>,
        settings: &Settings,
        buf: &mut [u8],
    ) -> Received {
        let limit = settings.max_handoff_bytes;
        let mut filled = self.partial.len();
        buf[..filled].copy_from_slice(&self.partial);
        self.partial = Vec::new();
        loop {
            let mut fds = Vec::new();
            let result = fdpass::recv_with_fds(apache, &mut buf[filled..], &mut fds);
            let got_fds = !fds.is_empty();
            self.keep_first(fds);
            match result {
                Ok(received) if received.control_truncated => {
                    self.client = None;
                    return self.fail(HandoffError::ControlTruncated);
                }
                Ok(received) => match settings.socket_type {
                    SocketType::SeqPacket => {
                        if received.truncated || received.bytes > limit {
                            return self.fail(HandoffError::TooLarge { limit });
                        }
                        return self.complete(received.bytes);
                    }
                    SocketType::Stream => {
                        if received.bytes == 0 && !got_fds {
                            return self.complete(filled);
                        }
                        filled += received.bytes;
                        if filled > limit {
                            return self.fail(HandoffError::TooLarge { limit });
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if filled > 0 {
                        self.partial = buf[..filled].to_vec();
                    }
                    return Received::More;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return self.fail(HandoffError::Receive {
                        reason: e.to_string(),
                    })
                }
            }
        }
    }

    /// Takes the client fd for a reply (a timeout after the fd arrived gets a 500).
    pub fn take_client(&mut self) -> Option<OwnedFd> {
        self.client.take()
    }

    fn keep_first(&mut self, fds: Vec<OwnedFd>) {
        for fd in fds {
            if self.client.is_none() {
                self.client = Some(fd);
            } else {
                log::warn!("handoff carried more than one fd; closing the extra ones");
            }
        }
    }

    fn complete(&mut self, len: usize) -> Received {
        match self.client.take() {
            Some(client) => Received::Complete { client, len },
            None => Received::Failed {
                error: HandoffError::NoFd,
                client: None,
            },
        }
    }

    fn fail(&mut self, error: HandoffError) -> Received {
        Received::Failed {
            error,
            client: self.client.take(),
        }
    }
}
