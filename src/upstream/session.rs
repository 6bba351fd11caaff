//! One TLS client session, without I/O: records go in as bytes, plaintext and records to send
//! come out.
//!
//! Built on rustls' unbuffered API so that a session owns no buffer while it is idle: the
//! records read from the socket sit in the caller's (one per worker) and are decrypted from
//! there. A session keeps bytes only for what did not fit: the start of a record that has not
//! fully arrived, plaintext the caller had no room for, and records the socket would not take
//! yet (at most one record's worth: [`Session::encrypt`] waits until they are gone). Each is
//! freed once it is used up, so an idle relayed stream holds rustls' keys and state alone
//! (the buffered API keeps a 4 KiB read buffer per connection for its whole life).
//!
//! One rule the API does not say out loud: every call into rustls must get the kept start of a
//! record at the front of its input. While rustls joins a handshake message split over records
//! (a session ticket, say) it holds an offset into those bytes, and panics on a shorter slice.

use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, Error};

/// The most plaintext one record carries.
const RECORD_PLAINTEXT: usize = 16 * 1024;
/// A record's header, nonce, tag and content type, with room to spare: what encrypting adds.
const RECORD_OVERHEAD: usize = 64;
/// The longest record a peer may send (TLS 1.2 allows 2 KiB of expansion past 16 KiB).
pub const RECORD_LIMIT: usize = 5 + RECORD_PLAINTEXT + 2048;
pub struct Session {
    session: UnbufferedClientConnection,
    /// Received records not yet decrypted: the start of one still arriving.
    received: Vec<u8>,
    /// Decrypted bytes the caller had no room for; they go out before anything else.
    plaintext: Vec<u8>,
    /// Records to write to the socket, in order.
    unsent: Vec<u8>,
    /// The peer sent `close_notify`: nothing more will be decrypted.
    peer_closed: bool,
}

impl Session {
    pub fn new(config: Arc<ClientConfig>, name: ServerName<'static>) -> Result<Session, Error> {
        Ok(Session {
            session: UnbufferedClientConnection::new(config, name)?,
            received: Vec::new(),
            plaintext: Vec::new(),
            unsent: Vec::new(),
            peer_closed: false,
        })
    }

    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Processes the complete records at the start of `records`: their plaintext is appended
    /// to `buf` from `*filled` on (what does not fit is kept, see [`Session::take_plaintext`]),
    /// handshake messages are answered into the unsent records. Returns how many bytes of
    /// `records` were used up; the rest is the start of a record still arriving (or, during the
    /// handshake, of a message spanning records) and must be offered again with what follows.
    pub fn absorb(
        &mut self,
        records: &mut [u8],
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Result<usize, Error> {
        let mut used = 0;
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.session.process_tls_records(&mut records[used..]);
            match state? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record?;
                        discard += record.discard;
                        // Kept plaintext goes out first: later bytes queue behind it.
                        let room = if self.plaintext.is_empty() {
                            buf.len() - *filled
                        } else {
                            0
                        };
                        let (now, later) = record.payload.split_at(room.min(record.payload.len()));
                        buf[*filled..*filled + now.len()].copy_from_slice(now);
                        *filled += now.len();
                        self.plaintext.extend_from_slice(later);
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    // Offered no room, rustls says what the message needs: held exactly.
                    let start = self.unsent.len();
                    let written = match encode.encode(&mut []) {
                        Ok(written) => written,
                        Err(EncodeError::InsufficientSize(e)) => {
                            self.unsent.resize(start + e.required_size, 0);
                            encode.encode(&mut self.unsent[start..]).map_err(general)?
                        }
                        Err(e) => return Err(general(e)),
                    };
                    self.unsent.truncate(start + written);
                }
                // The caller writes the unsent records when the socket takes them.
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::PeerClosed => self.peer_closed = true,
                ConnectionState::BlockedHandshake
                | ConnectionState::WriteTraffic(_)
                | ConnectionState::Closed => return Ok(used + discard),
                // Early data is a server's; rustls may add states.
                other => return Err(Error::General(format!("unexpected TLS state {other:?}"))),
            }
            used += discard;
        }
    }

    /// Encrypts up to one record's worth of `data` into the unsent records; returns how much of
    /// it was taken. Takes nothing while the handshake runs or earlier records wait to be
    /// written, so that what is held stays one record.
    pub fn encrypt(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.is_handshaking() || !self.unsent.is_empty() || data.is_empty() {
            return Ok(0);
        }
        // rustls keeps its place in a handshake message it is joining (a session ticket split
        // over records) as an offset into the received bytes: every call must be given them.
        let mut received = std::mem::take(&mut self.received);
        let encrypted = self.encrypt_after(&mut received, data);
        self.keep_received(&received);
        encrypted
    }

    fn encrypt_after(&mut self, received: &mut Vec<u8>, data: &[u8]) -> Result<usize, Error> {
        // Settles anything rustls has to send first (a key update).
        let used = self.absorb(received, &mut [], &mut 0)?;
        received.drain(..used);
        if !self.unsent.is_empty() {
            return Ok(0);
        }
        let data = &data[..data.len().min(RECORD_PLAINTEXT)];
        let status = self.session.process_tls_records(received);
        let discard = status.discard;
        let encrypted = match status.state? {
            ConnectionState::WriteTraffic(mut traffic) => {
                self.unsent.resize(data.len() + RECORD_OVERHEAD, 0);
                let written = match traffic.encrypt(data, &mut self.unsent) {
                    Ok(n) => n,
                    Err(EncryptError::InsufficientSize(e)) => {
                        self.unsent.resize(e.required_size, 0);
                        traffic.encrypt(data, &mut self.unsent).map_err(general)?
                    }
                    Err(e) => return Err(general(e)),
                };
                self.unsent.truncate(written);
                data.len()
            }
            _ => 0,
        };
        received.drain(..discard);
        Ok(encrypted)
    }

    /// The records to write next.
    pub fn unsent(&self) -> &[u8] {
        &self.unsent
    }

    /// `n` bytes of the unsent records were written.
    pub fn sent(&mut self, n: usize) {
        take_front(&mut self.unsent, n);
    }

    /// Moves kept plaintext into `buf`; returns how many bytes.
    pub fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.plaintext.len());
        buf[..n].copy_from_slice(&self.plaintext[..n]);
        take_front(&mut self.plaintext, n);
        n
    }

    pub fn holds_plaintext(&self) -> bool {
        !self.plaintext.is_empty()
    }

    #[cfg(test)]
    pub fn kept_plaintext_len(&self) -> usize {
        self.plaintext.len()
    }

    /// Bytes received but not yet handed to the caller (kept plaintext, part of a record), or
    /// records not yet written. After a response, the first would be read as the start of the
    /// next one and the second would go out before the next request: either way the
    /// connection must not carry another.
    pub fn holds_bytes(&self) -> bool {
        !self.plaintext.is_empty() || !self.received.is_empty() || !self.unsent.is_empty()
    }

    /// Puts the kept bytes at the front of `records` (grown to hold them, if need be);
    /// returns how many.
    pub fn take_received(&mut self, records: &mut Vec<u8>) -> usize {
        let kept = std::mem::take(&mut self.received);
        if records.len() < kept.len() {
            records.resize(kept.len(), 0);
        }
        records[..kept.len()].copy_from_slice(&kept);
        kept.len()
    }

    /// Keeps the start of a record until the rest arrives (nothing allocated for none).
    pub fn keep_received(&mut self, partial: &[u8]) {
        self.received = partial.to_vec();
    }
}

fn general(e: impl std::fmt::Display) -> Error {
    Error::General(e.to_string())
}

/// Drops the first `n` bytes, freeing the allocation once nothing is left.
fn take_front(bytes: &mut Vec<u8>, n: usize) {
    if n >= bytes.len() {
        *bytes = Vec::new();
    } else {
        bytes.drain(..n);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::upstream::testing::{server_config, server_config_from, test_client_config};

    /// A session whose handshake with an in-memory rustls server is done, and that server.
    fn connected() -> (Session, rustls::ServerConnection) {
        connected_to(server_config())
    }

    fn connected_to(config: Arc<rustls::ServerConfig>) -> (Session, rustls::ServerConnection) {
        let (mut client, server, mut after) = handshake(config);
        let used = client.absorb(&mut after, &mut [], &mut 0).unwrap();
        assert_eq!(used, after.len());
        (client, server)
    }

    /// Runs the handshake in memory; returns the records the server sent after it (TLS 1.3
    /// session tickets) without giving them to the session.
    fn handshake(
        config: Arc<rustls::ServerConfig>,
    ) -> (Session, rustls::ServerConnection, Vec<u8>) {
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = Session::new(test_client_config(), name).unwrap();
        let mut server = rustls::ServerConnection::new(config).unwrap();
        for _ in 0..10 {
            client.absorb(&mut [], &mut [], &mut 0).unwrap();
            let to_server = client.unsent().to_vec();
            client.sent(to_server.len());
            let mut rest = &to_server[..];
            while !rest.is_empty() {
                server.read_tls(&mut rest).unwrap();
                server.process_new_packets().unwrap();
            }
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                return (client, server, to_client);
            }
            let used = client.absorb(&mut to_client, &mut [], &mut 0).unwrap();
            assert_eq!(used, to_client.len(), "handshake records come whole here");
        }
        panic!("no handshake in 10 rounds");
    }

    /// What the server sends as records: small events, then one larger than a record.
    fn sent_by(server: &mut rustls::ServerConnection, plaintext: &[u8]) -> Vec<u8> {
        server.writer().write_all(plaintext).unwrap();
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        wire
    }

    /// Feeds `pieces` as reads would bring them, keeping what `absorb` leaves as the caller
    /// does, into a read buffer of `room` bytes; returns all plaintext in order.
    fn read_all(session: &mut Session, pieces: &[&[u8]], room: usize) -> Vec<u8> {
        let mut carried: Vec<u8> = Vec::new();
        let mut plaintext = Vec::new();
        let mut buf = vec![0u8; room];
        for piece in pieces {
            let mut records = [carried.as_slice(), piece].concat();
            let mut filled = session.take_plaintext(&mut buf);
            let used = session.absorb(&mut records, &mut buf, &mut filled).unwrap();
            plaintext.extend_from_slice(&buf[..filled]);
            carried = records[used..].to_vec();
            loop {
                let n = session.take_plaintext(&mut buf);
                if n == 0 {
                    break;
                }
                plaintext.extend_from_slice(&buf[..n]);
            }
        }
        assert!(carried.is_empty(), "every record was whole in the end");
        plaintext
    }

    fn answer() -> Vec<u8> {
        let mut answer = b"data: one\n\ndata: two\n\n".to_vec();
        answer.extend(std::iter::repeat_n(b'x', 20_000));
        answer
    }

    #[test]
    fn records_cut_anywhere_decrypt_to_the_same_plaintext_with_tls_1_3_and_1_2() {
        let answer = answer();
        let tls12 = server_config_from("server.pem", "server.key", &[&rustls::version::TLS12]);
        for config in [server_config(), tls12] {
            let (mut session, mut server) = connected_to(config.clone());
            let wire = sent_by(&mut server, &answer);
            let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
            assert_eq!(read_all(&mut session, &bytewise, RECORD_LIMIT), answer);
            // Each cut needs a fresh session: records decrypt once, in order.
            let step = (wire.len() / 97).max(1);
            for at in (1..wire.len()).step_by(step).chain([1, 4, 5, 6]) {
                let (mut session, mut server) = connected_to(config.clone());
                let wire = sent_by(&mut server, &answer);
                let at = at.min(wire.len() - 1);
                let pieces = [&wire[..at], &wire[at..]];
                let plaintext = read_all(&mut session, &pieces, RECORD_LIMIT);
                assert_eq!(plaintext, answer, "cut at {at}");
            }
        }
    }

    #[test]
    fn plaintext_without_room_is_kept_in_order_and_then_freed() {
        let answer = answer();
        let (mut session, mut server) = connected();
        let wire = sent_by(&mut server, &answer);
        assert_eq!(read_all(&mut session, &[&wire], 7), answer);
        assert!(!session.holds_plaintext());
        assert_eq!(session.plaintext.capacity(), 0, "freed once taken");

        // Records offered while plaintext is kept queue behind it, even with room to spare.
        let (mut session, mut server) = connected();
        let mut first = sent_by(&mut server, b"first ");
        let mut second = sent_by(&mut server, b"second");
        let mut buf = [0u8; 3];
        let mut filled = 0;
        session.absorb(&mut first, &mut buf, &mut filled).unwrap();
        assert_eq!(
            (&buf[..filled], session.holds_plaintext()),
            (&b"fir"[..], true)
        );
        let mut room = [0u8; 64];
        let mut filled = 0;
        session.absorb(&mut second, &mut room, &mut filled).unwrap();
        assert_eq!(filled, 0, "nothing may pass what is kept");
        assert_eq!(session.take_plaintext(&mut room), 9);
        assert_eq!(&room[..9], b"st second");
    }

    #[test]
    fn a_session_ticket_split_over_records_is_joined_across_reads_and_writes() {
        let mut config = (*server_config()).clone();
        config.max_fragment_size = Some(64);
        let (mut session, mut server, tickets) = handshake(Arc::new(config));
        let first = 5 + usize::from(u16::from_be_bytes([tickets[3], tickets[4]]));
        assert!(first < tickets.len(), "the tickets span records");
        // The ticket's first record arrives alone and is kept, half joined.
        let mut part = tickets[..first].to_vec();
        let used = session.absorb(&mut part, &mut [], &mut 0).unwrap();
        session.keep_received(&part[used..]);
        // A write in between must see the kept bytes (rustls once panicked here: it holds an
        // offset into them).
        assert_eq!(session.encrypt(b"request").unwrap(), 7);
        let mut wire = session.unsent();
        while !wire.is_empty() {
            server.read_tls(&mut wire).unwrap();
        }
        assert!(session.holds_bytes(), "a record not yet written");
        let len = session.unsent().len();
        session.sent(len);
        server.process_new_packets().unwrap();
        let mut request = [0u8; 16];
        let n = std::io::Read::read(&mut server.reader(), &mut request).unwrap();
        assert_eq!(&request[..n], b"request");
        // The rest of the tickets, then an answer, read with what was kept.
        let mut records = Vec::new();
        let kept = session.take_received(&mut records);
        records.truncate(kept);
        records.extend_from_slice(&tickets[first..]);
        records.extend_from_slice(&sent_by(&mut server, b"answer"));
        let mut buf = [0u8; 16];
        let mut filled = 0;
        let used = session.absorb(&mut records, &mut buf, &mut filled).unwrap();
        assert_eq!((used, &buf[..filled]), (records.len(), &b"answer"[..]));
        assert!(!session.holds_bytes());
    }

    #[test]
    fn a_request_is_encrypted_a_record_at_a_time_once_the_last_is_written() {
        let (mut session, mut server) = connected();
        let request = vec![b'r'; 40_000];
        let mut taken = 0;
        let mut received = Vec::new();
        while taken < request.len() {
            let n = session.encrypt(&request[taken..]).unwrap();
            assert!(n > 0 && n <= RECORD_PLAINTEXT);
            assert_eq!(
                session.encrypt(&request[taken + n..]).unwrap(),
                0,
                "one record held"
            );
            taken += n;
            let mut wire = session.unsent();
            while !wire.is_empty() {
                server.read_tls(&mut wire).unwrap();
            }
            let len = session.unsent().len();
            session.sent(len);
            server.process_new_packets().unwrap();
            let mut chunk = vec![0u8; 64 * 1024];
            let n = std::io::Read::read(&mut server.reader(), &mut chunk).unwrap();
            received.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(received, request);
        assert_eq!(session.unsent.capacity(), 0, "freed once written");
    }

    #[test]
    fn close_notify_after_the_last_plaintext_is_seen() {
        let (mut session, mut server) = connected();
        let mut wire = sent_by(&mut server, b"last");
        server.send_close_notify();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        assert_eq!(read_all(&mut session, &[&wire], 64), b"last");
        assert!(session.peer_closed());
    }

    #[test]
    fn bytes_that_are_not_records_are_an_error() {
        let (mut session, _server) = connected();
        let mut junk = b"HTTP/1.1 408 Request Timeout\r\n\r\n".to_vec();
        assert!(session.absorb(&mut junk, &mut [0u8; 64], &mut 0).is_err());
    }
}
