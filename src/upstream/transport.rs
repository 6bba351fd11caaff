//! One upstream connection's byte pipe: TCP or a Unix socket, with or without TLS.
//!
//! Reads and writes are non-blocking and classified the same way as the client side. With TLS,
//! rustls is driven by its own signals: records are read until the socket would block, then
//! plaintext is taken out while the caller has room. Plaintext still inside rustls produces no
//! new epoll event, so every read takes it first, and a connection holding any
//! ([`Transport::has_buffered_plaintext`]) is not pooled.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct Transport {
    socket: Socket,
    tls: Option<Box<ClientConnection>>,
    /// Set once the non-blocking connect is known to have succeeded.
    connected: bool,
}

/// How a read went.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Plaintext bytes were appended.
    Data(usize),
    WouldBlock,
    /// The peer closed cleanly (TLS: after close_notify, or a plain EOF).
    Closed,
}

impl Transport {
    /// Starts a non-blocking TCP connect; TLS when `tls` is given (with the name for SNI and
    /// certificate checks).
    pub fn connect_tcp(
        address: SocketAddr,
        tls: Option<(&Arc<ClientConfig>, &str)>,
    ) -> io::Result<Transport> {
        let stream = TcpStream::connect(address)?;
        let _ = stream.set_nodelay(true);
        Transport::wrap(Socket::Tcp(stream), tls)
    }

    pub fn connect_unix(
        path: &Path,
        tls: Option<(&Arc<ClientConfig>, &str)>,
    ) -> io::Result<Transport> {
        Transport::wrap(Socket::Unix(UnixStream::connect(path)?), tls)
    }

    fn wrap(socket: Socket, tls: Option<(&Arc<ClientConfig>, &str)>) -> io::Result<Transport> {
        let tls = match tls {
            None => None,
            Some((config, host)) => {
                let name = ServerName::try_from(host.to_string()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("bad TLS server name {host:?}: {e}"),
                    )
                })?;
                let mut connection =
                    ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
                // The whole request is queued before the handshake ends; it is already bounded
                // by max_handoff_bytes, so rustls' own 64 KiB cap would only stall it.
                connection.set_buffer_limit(None);
                Some(Box::new(connection))
            }
        };
        Ok(Transport {
            socket,
            tls,
            connected: false,
        })
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match &mut self.socket {
            Socket::Tcp(s) => registry.register(s, token, interest),
            Socket::Unix(s) => registry.register(s, token, interest),
        }
    }

    /// Before the connection goes idle into the pool: no events for a slot that moved on.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match &mut self.socket {
            Socket::Tcp(s) => registry.deregister(s),
            Socket::Unix(s) => registry.deregister(s),
        }
    }

    /// After a writable event on a fresh socket: did the connect succeed? (mio's rule: check
    /// the socket error, then that a peer address exists.)
    pub fn check_connected(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        let (error, peer) = match &self.socket {
            Socket::Tcp(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Socket::Unix(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
        };
        if let Some(e) = error {
            return Err(e);
        }
        match peer {
            Ok(()) => {
                self.connected = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Queues `data` (TLS encrypts it at once) and writes what the socket takes. Returns the
    /// bytes of `data` accepted; the rest must be offered again after a writable event.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => match self.socket.write(data) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => Err(e),
            },
            Some(tls) => {
                let accepted = tls.writer().write(data)?;
                self.flush_tls()?;
                Ok(accepted)
            }
        }
    }

    /// Writes pending TLS records; true when nothing is left to write.
    pub fn flush_tls(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => Ok(true),
            Some(tls) => write_records(tls, &mut self.socket),
        }
    }

    /// Appends up to `limit` plaintext bytes to `out`.
    pub fn read(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<ReadOutcome> {
        let start = out.len();
        out.resize(start + limit, 0);
        let result = self.read_into(&mut out[start..]);
        let n = *result.as_ref().unwrap_or(&0);
        out.truncate(start + n);
        match result {
            Ok(0) => Ok(ReadOutcome::Closed),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
            Err(e) => Err(e),
        }
    }

    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.socket.read(buf);
        };
        loop {
            // Plaintext already decrypted comes first.
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.socket) {
                // A TLS peer ends with close_notify; a bare end of stream may be a truncation,
                // so it is an error, never a clean end of a close-delimited body.
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the TLS connection ended without close_notify",
                    ))
                }
                Ok(_) => {
                    let state = tls
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    // Handshake replies and key updates must go out even while we only read.
                    write_records(tls, &mut self.socket)?;
                    if state.peer_has_closed() && state.plaintext_bytes_to_read() == 0 {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The TLS handshake has not finished: a failure now means the upstream could not be
    /// reached (a refused certificate, say), not that an answer was cut.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// Plaintext rustls holds that no epoll event will announce.
    pub fn has_buffered_plaintext(&mut self) -> bool {
        self.tls.as_mut().is_some_and(|tls| {
            tls.process_new_packets()
                .is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
        })
    }
}

/// Writes pending TLS records until done (true) or the socket would block (false).
fn write_records(tls: &mut ClientConnection, socket: &mut Socket) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
