//! One upstream connection's byte pipe: TCP or a Unix socket, with or without TLS.
//!
//! Reads and writes are non-blocking and classified the same way as the client side. With TLS,
//! records are read into the worker's record buffer until the socket would block or plaintext
//! came out of them, and decrypted from there ([`Session`]). Plaintext or a partial record the
//! session keeps produces no new epoll event, so every read takes it first, and a connection
//! holding any, or records not yet written ([`Transport::holds_bytes`]), is not pooled. A pooled connection is checked
//! again before it carries another request ([`Transport::check_idle`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::session::{Session, RECORD_LIMIT};

/// The most the record buffer may hold while a handshake message spanning records is joined
/// (rustls allows 64 KiB for one message, plus the records' headers).
const HANDSHAKE_LIMIT: usize = 64 * 1024 + 2 * RECORD_LIMIT;
/// Socket reads one TLS read may make while records bring no plaintext (session tickets, say):
/// a peer sending those without end must not hold the loop.
const SOCKET_READS_PER_CALL: usize = 16;

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

impl Socket {
    /// Reads, noting in `emptied` whether the read took all the kernel had: one that returns
    /// less than asked for, or would block. Edge-triggered epoll announces the next bytes with
    /// a new event, so the read that would only say `WouldBlock` can be skipped.
    fn read_noting(&mut self, buf: &mut [u8], emptied: &mut bool) -> io::Result<usize> {
        let result = self.read(buf);
        *emptied = match &result {
            Ok(n) => *n < buf.len(),
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        result
    }
}

pub struct Transport {
    socket: Socket,
    tls: Option<Box<Session>>,
    /// Set once the non-blocking connect is known to have succeeded.
    connected: bool,
    /// The last read went to the socket and emptied it (see [`Socket::read_noting`]).
    emptied: bool,
}

/// How a read went.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Plaintext bytes were read. Zero only with TLS, when records came without plaintext and
    /// the read stopped at its bound: read again.
    Data(usize),
    WouldBlock,
    /// The peer closed cleanly (TLS: after close_notify, or a plain EOF).
    Closed,
}

/// Why an idle connection must not carry another request.
#[derive(Debug)]
pub enum Stale {
    /// The peer closed: an end of stream, or a TLS `close_notify`.
    Closed,
    /// The peer sent bytes nobody asked for (a `408 Request Timeout`, junk, TLS records): the
    /// next response read on this connection would start with them.
    Unasked,
    /// The socket failed, or the TLS session did (a bad record).
    Broken(io::Error),
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::Closed => write!(f, "the upstream closed it while it was idle"),
            Stale::Unasked => write!(f, "the upstream sent bytes on it while it was idle"),
            Stale::Broken(e) => write!(f, "it failed while idle: {e}"),
        }
    }
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
                let session = Session::new(config.clone(), name).map_err(io::Error::other)?;
                Some(Box::new(session))
            }
        };
        Ok(Transport {
            socket,
            tls,
            connected: false,
            emptied: false,
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

    /// Writes what the socket takes of `data` (TLS: encrypts up to a record of it once the
    /// handshake is done and earlier records are out). Returns the bytes of `data` accepted;
    /// the rest must be offered again after the next event. `records` as for
    /// [`Transport::flush_tls`].
    pub fn write(&mut self, data: &[u8], records: &mut Vec<u8>) -> io::Result<usize> {
        if self.tls.is_none() {
            return match self.socket.write(data) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => Err(e),
            };
        }
        if !self.flush_tls(records)? {
            return Ok(0);
        }
        let Some(tls) = &mut self.tls else {
            return Ok(0);
        };
        let accepted = tls.encrypt(data).map_err(invalid_data)?;
        self.send_records()?;
        Ok(accepted)
    }

    /// Moves TLS along: while the handshake runs, reads and answers the server's records (read
    /// into `records`, as for [`Transport::read_to`]); then writes the records waiting to go.
    /// True when nothing is left to write.
    pub fn flush_tls(&mut self, records: &mut Vec<u8>) -> io::Result<bool> {
        let Some(tls) = &self.tls else {
            return Ok(true);
        };
        if tls.is_handshaking() {
            // The handshake moves on only as the server's records are read. Any plaintext that
            // comes with its end is kept by the session for the first read.
            self.read_tls(&mut [], records)?;
        }
        self.send_records()
    }

    /// Reads plaintext into `buf`: a buffer kept at its size is not zeroed again for every read.
    /// With TLS the records are read into `records` first, shared by every connection of a
    /// worker (grown to a record's size once); plain connections leave it alone.
    pub fn read_to(&mut self, buf: &mut [u8], records: &mut Vec<u8>) -> io::Result<ReadOutcome> {
        self.emptied = false;
        if self.tls.is_some() {
            return self.read_tls(buf, records);
        }
        match self.socket.read_noting(buf, &mut self.emptied) {
            Ok(0) => Ok(ReadOutcome::Closed),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// After a read: nothing is left to read until the socket's next readable event. True
    /// only when that read reached the socket and emptied it, and the session keeps no
    /// plaintext and has not seen the peer close.
    pub fn is_drained(&self) -> bool {
        self.emptied
            && self
                .tls
                .as_ref()
                .is_none_or(|tls| !tls.holds_plaintext() && !tls.peer_closed())
    }

    /// Decrypts into `buf`: kept plaintext first, else records until some plaintext comes out,
    /// the peer closes (`Closed` after `close_notify`), the socket would block, or
    /// [`SOCKET_READS_PER_CALL`] reads brought no plaintext (`Data(0)`).
    fn read_tls(&mut self, buf: &mut [u8], records: &mut Vec<u8>) -> io::Result<ReadOutcome> {
        let Some(tls) = &mut self.tls else {
            return Ok(ReadOutcome::Closed);
        };
        let given = tls.take_plaintext(buf);
        if given > 0 {
            return Ok(ReadOutcome::Data(given));
        }
        let mut filled = tls.take_received(records);
        let mut plain = 0;
        let mut reads = 0;
        let result = loop {
            match tls.absorb(&mut records[..filled], buf, &mut plain) {
                Ok(used) => {
                    records.copy_within(used..filled, 0);
                    filled -= used;
                }
                // What was decrypted before the failure goes out first; rustls keeps the error
                // for the next read.
                Err(_) if plain > 0 => break Ok(ReadOutcome::Data(plain)),
                Err(e) => break Err(invalid_data(e)),
            }
            // Handshake replies and key updates go out even while we only read.
            if let Err(e) = send_records(tls, &mut self.socket) {
                break Err(e);
            }
            if plain > 0 || tls.holds_plaintext() {
                break Ok(ReadOutcome::Data(plain));
            }
            if tls.peer_closed() {
                break Ok(ReadOutcome::Closed);
            }
            if reads == SOCKET_READS_PER_CALL {
                break Ok(ReadOutcome::Data(0));
            }
            // A record's worth from the start of the buffer, so that one read decrypts to at
            // most a record's worth of plaintext; more only while a handshake message that
            // spans records is joined (complete records rustls cannot use up yet).
            let limit = if filled < RECORD_LIMIT {
                RECORD_LIMIT
            } else {
                filled + RECORD_LIMIT
            };
            if limit > HANDSHAKE_LIMIT {
                break Err(invalid_data("a TLS handshake message is too large"));
            }
            if records.len() < limit {
                records.resize(limit, 0);
            }
            reads += 1;
            match self
                .socket
                .read_noting(&mut records[filled..limit], &mut self.emptied)
            {
                // A TLS peer ends with close_notify; a bare end of stream may be a truncation,
                // so it is an error, never a clean end of a close-delimited body.
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the TLS connection ended without close_notify",
                    ))
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Ok(ReadOutcome::WouldBlock)
                }
                Err(e) => break Err(e),
            }
        };
        tls.keep_received(&records[..filled]);
        result
    }

    /// Writes the session's unsent records; true when none are left.
    fn send_records(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => Ok(true),
            Some(tls) => send_records(tls, &mut self.socket),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The TLS handshake has not finished: a failure now means the upstream could not be
    /// reached (a refused certificate, say), not that an answer was cut.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// May this idle connection carry another request? Only if the peer sent nothing at all
    /// since the last response, not even an end of stream: a non-blocking read must say
    /// `WouldBlock`. With TLS any record counts, even one without plaintext (a late session
    /// ticket): telling it from the start of a stray response would mean holding a partial
    /// record, and a fresh connection is cheaper than a wrong answer. What is read here is
    /// thrown away with the connection.
    pub fn check_idle(&mut self) -> Result<(), Stale> {
        // Enough for an alert record; any byte makes the connection stale.
        let mut probe = [0u8; 256];
        let Some(tls) = &mut self.tls else {
            return match self.socket.read(&mut probe[..1]) {
                Ok(0) => Err(Stale::Closed),
                Ok(_) => Err(Stale::Unasked),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                Err(e) => Err(Stale::Broken(e)),
            };
        };
        // What arrived with the last response is already in the session.
        if tls.peer_closed() {
            return Err(Stale::Closed);
        }
        if tls.holds_bytes() {
            return Err(Stale::Unasked);
        }
        match self.socket.read(&mut probe) {
            Ok(0) => Err(Stale::Closed),
            Ok(n) => {
                let absorbed = tls.absorb(&mut probe[..n], &mut [], &mut 0);
                match absorbed {
                    Err(e) => Err(Stale::Broken(invalid_data(e))),
                    Ok(_) if tls.peer_closed() => Err(Stale::Closed),
                    Ok(_) => Err(Stale::Unasked),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(Stale::Broken(e)),
        }
    }

    /// TLS bytes that make the connection unfit for another request: received ones that no
    /// epoll event will announce or that would be read as the start of the next response, or
    /// records of this request not yet written.
    pub fn holds_bytes(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.holds_bytes())
    }
}

/// Writes unsent TLS records until none are left (true) or the socket would block (false).
fn send_records(tls: &mut Session, socket: &mut Socket) -> io::Result<bool> {
    while !tls.unsent().is_empty() {
        match socket.write(tls.unsent()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => tls.sent(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn invalid_data(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::upstream::testing::{
        client_config_trusting, server_config_from, tcp_pair, test_client_config, tls_pair,
        tls_pair_with, unix_pair, wait_readable, PeerAction,
    };

    const STRAY: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\r\n";

    #[test]
    fn an_idle_plain_connection_is_clean_until_the_peer_writes_or_closes() {
        let (mut quiet, _quiet_peer) = tcp_pair();
        assert!(quiet.check_idle().is_ok());
        assert!(quiet.check_idle().is_ok(), "checking takes nothing away");

        let (mut written, mut peer) = tcp_pair();
        peer.write_all(STRAY).unwrap();
        wait_readable(&mut written);
        assert!(matches!(written.check_idle(), Err(Stale::Unasked)));

        let (mut closed, peer) = tcp_pair();
        drop(peer);
        wait_readable(&mut closed);
        assert!(matches!(closed.check_idle(), Err(Stale::Closed)));
    }

    #[test]
    fn an_idle_unix_connection_is_checked_the_same_way() {
        let (mut quiet, _quiet_peer) = unix_pair();
        assert!(quiet.check_idle().is_ok());

        let (mut written, mut peer) = unix_pair();
        peer.write_all(b"x").unwrap();
        wait_readable(&mut written);
        assert!(matches!(written.check_idle(), Err(Stale::Unasked)));

        let (mut closed, peer) = unix_pair();
        drop(peer);
        wait_readable(&mut closed);
        assert!(matches!(closed.check_idle(), Err(Stale::Closed)));
    }

    #[test]
    fn an_idle_tls_connection_is_stale_after_plaintext_close_notify_junk_or_eof() {
        let (mut quiet, _quiet_peer) = tls_pair();
        assert!(quiet.check_idle().is_ok());
        assert!(quiet.check_idle().is_ok());

        let (mut written, peer) = tls_pair();
        peer.act(PeerAction::Plaintext(STRAY.to_vec()));
        wait_readable(&mut written);
        assert!(matches!(written.check_idle(), Err(Stale::Unasked)));

        let (mut notified, peer) = tls_pair();
        peer.act(PeerAction::CloseNotify);
        wait_readable(&mut notified);
        assert!(matches!(notified.check_idle(), Err(Stale::Closed)));

        // An upstream that answers in the clear: not a TLS record.
        let (mut junk, peer) = tls_pair();
        peer.act(PeerAction::Raw(STRAY.to_vec()));
        wait_readable(&mut junk);
        let stale = junk.check_idle();
        assert!(matches!(stale, Err(Stale::Broken(_))), "{stale:?}");

        let (mut cut, peer) = tls_pair();
        peer.act(PeerAction::Drop);
        wait_readable(&mut cut);
        assert!(matches!(cut.check_idle(), Err(Stale::Closed)));
    }

    #[test]
    fn a_short_read_drains_the_socket_a_full_one_does_not() {
        let (mut transport, mut peer) = tcp_pair();
        let mut buf = [0u8; 64];
        let mut records = Vec::new();
        peer.write_all(&[b'a'; 10]).unwrap();
        wait_readable(&mut transport);
        assert_eq!(
            transport.read_to(&mut buf, &mut records).unwrap(),
            ReadOutcome::Data(10)
        );
        assert!(transport.is_drained(), "10 of 64: the kernel had no more");

        peer.write_all(&[b'b'; 100]).unwrap();
        wait_readable(&mut transport);
        assert_eq!(
            transport.read_to(&mut buf, &mut records).unwrap(),
            ReadOutcome::Data(64)
        );
        assert!(!transport.is_drained(), "a full buffer may have left some");
        assert_eq!(
            transport.read_to(&mut buf, &mut records).unwrap(),
            ReadOutcome::Data(36)
        );
        assert!(transport.is_drained());
        assert_eq!(
            transport.read_to(&mut buf, &mut records).unwrap(),
            ReadOutcome::WouldBlock
        );
    }

    #[test]
    fn tls_plaintext_kept_by_the_session_is_not_drained() {
        let (mut transport, peer) = tls_pair();
        peer.act(PeerAction::Plaintext(vec![b'c'; 100]));
        wait_readable(&mut transport);
        let mut small = [0u8; 40];
        let mut records = Vec::new();
        let mut read = 0;
        // The record may be read in parts, each one more event away; bounded either way.
        for _ in 0..50 {
            match transport.read_to(&mut small, &mut records).unwrap() {
                ReadOutcome::Data(n) => {
                    read += n;
                    if read < 100 {
                        assert!(!transport.is_drained(), "{read} of 100 read: more is due");
                    }
                }
                ReadOutcome::WouldBlock => wait_readable(&mut transport),
                ReadOutcome::Closed => panic!("closed"),
            }
            if read == 100 {
                break;
            }
        }
        assert_eq!(read, 100);
        // The last part came out of the session, not the socket: the next read asks the socket.
        assert!(!transport.is_drained());
        assert_eq!(
            transport.read_to(&mut small, &mut records).unwrap(),
            ReadOutcome::WouldBlock
        );
        assert!(transport.is_drained());
    }

    #[test]
    fn tls_close_notify_ends_reading_cleanly_after_the_last_plaintext() {
        let (mut transport, peer) = tls_pair();
        peer.act(PeerAction::Plaintext(b"tail".to_vec()));
        peer.act(PeerAction::CloseNotify);
        let mut buf = [0u8; 64];
        let mut records = Vec::new();
        let mut received = Vec::new();
        for _ in 0..50 {
            match transport.read_to(&mut buf, &mut records).unwrap() {
                ReadOutcome::Data(n) => {
                    received.extend_from_slice(&buf[..n]);
                    if transport.holds_bytes() || !transport.is_drained() {
                        continue;
                    }
                    wait_readable(&mut transport);
                }
                ReadOutcome::WouldBlock => wait_readable(&mut transport),
                ReadOutcome::Closed => break,
            }
        }
        assert_eq!(received, b"tail");
        assert_eq!(
            transport.read_to(&mut buf, &mut records).unwrap(),
            ReadOutcome::Closed,
            "the end stays the end"
        );
        assert!(
            !transport.is_drained(),
            "a closed peer has no event to wait for"
        );
    }

    /// Reads until `expected.len()` plaintext bytes came, within a bounded number of reads.
    fn read_exactly(transport: &mut Transport, expected: usize) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let mut records = Vec::new();
        let mut received = Vec::new();
        for _ in 0..1000 {
            if received.len() >= expected {
                break;
            }
            match transport.read_to(&mut buf, &mut records).unwrap() {
                ReadOutcome::Data(n) => received.extend_from_slice(&buf[..n]),
                ReadOutcome::WouldBlock => wait_readable(transport),
                ReadOutcome::Closed => panic!("closed after {} bytes", received.len()),
            }
        }
        received
    }

    #[test]
    fn a_certificate_message_larger_than_a_record_buffer_is_joined() {
        // A 29 KB certificate: its handshake message spans records and outgrows one record's
        // worth of read buffer, which grows for it.
        let server =
            server_config_from("big-server.pem", "big-server.key", rustls::DEFAULT_VERSIONS);
        let (mut transport, peer) = tls_pair_with(client_config_trusting("big-ca.pem"), server);
        peer.act(PeerAction::Plaintext(b"after a big handshake".to_vec()));
        assert_eq!(read_exactly(&mut transport, 21), b"after a big handshake");
    }

    #[test]
    fn a_tls_1_2_upstream_is_spoken_to_as_well() {
        let server = server_config_from("server.pem", "server.key", &[&rustls::version::TLS12]);
        let (mut transport, peer) = tls_pair_with(test_client_config(), server);
        let answer = vec![b'z'; 50_000];
        peer.act(PeerAction::Plaintext(answer.clone()));
        assert_eq!(read_exactly(&mut transport, answer.len()), answer);
        assert!(
            transport.check_idle().is_ok(),
            "clean after the whole answer"
        );
    }

    #[test]
    fn one_read_decrypts_at_most_a_record_whatever_the_buffer_grew_to() {
        let (mut transport, peer) = tls_pair();
        peer.act(PeerAction::Plaintext(vec![b'p'; 100_000]));
        wait_readable(&mut transport);
        // A worker's record buffer that a big handshake grew.
        let mut records = vec![0u8; 150_000];
        let mut buf = [0u8; 16 * 1024];
        assert!(matches!(
            transport.read_to(&mut buf, &mut records).unwrap(),
            ReadOutcome::Data(_)
        ));
        let kept = transport.tls.as_ref().unwrap().kept_plaintext_len();
        assert!(kept <= RECORD_LIMIT - buf.len(), "{kept} bytes kept");
        let rest = read_exactly(&mut transport, 100_000 - buf.len());
        assert_eq!(rest.len(), 100_000 - buf.len());
    }
}
