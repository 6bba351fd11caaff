//! Test support for the upstream side: real connected sockets (TCP, Unix, TLS over TCP) with a
//! peer the test drives, and a bounded wait for what the peer sent to reach our socket, so that
//! no test has to sleep and hope.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::tls::{client_config, Trust};
use super::transport::{ReadOutcome, Transport};

/// The bound on every wait here.
const LIMIT: Duration = Duration::from_secs(10);

fn certs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
}

/// A connected TCP transport and the upstream's end of it.
pub fn tcp_pair() -> (Transport, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let transport = Transport::connect_tcp(listener.local_addr().unwrap(), None).unwrap();
    // The client side is established once the server side is accepted.
    let (peer, _) = listener.accept().unwrap();
    (transport, peer)
}

/// A connected Unix-socket transport and the upstream's end of it.
pub fn unix_pair() -> (Transport, UnixStream) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("sd-unit-up-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let transport = Transport::connect_unix(&path, None).unwrap();
    let (peer, _) = listener.accept().unwrap();
    let _ = std::fs::remove_file(&path);
    (transport, peer)
}

/// Waits until the transport's socket has something to read or has reached its end (what the
/// peer did has arrived), failing the test after [`LIMIT`].
pub fn wait_readable(transport: &mut Transport) {
    let mut poll = Poll::new().unwrap();
    transport.register(poll.registry(), Token(1)).unwrap();
    let mut events = Events::with_capacity(4);
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "nothing arrived within {LIMIT:?}");
        poll.poll(&mut events, Some(left)).unwrap();
        if events.iter().any(|e| e.is_readable() || e.is_read_closed()) {
            break;
        }
    }
    transport.deregister(poll.registry()).unwrap();
}

/// What the TLS peer does next.
pub enum PeerAction {
    /// Writes these bytes as application data.
    Plaintext(Vec<u8>),
    /// Sends a `close_notify` alert (and keeps the TCP connection open).
    CloseNotify,
    /// Writes these bytes on the TCP connection as they are: not a TLS record.
    Raw(Vec<u8>),
    /// Closes the TCP connection without `close_notify`.
    Drop,
}

/// The upstream's end of a TLS connection, run by a thread that obeys [`TlsPeer::act`].
pub struct TlsPeer {
    actions: Sender<PeerAction>,
    done: Receiver<()>,
}

impl TlsPeer {
    /// Has the peer do `action` and waits until it is done (its bytes are written).
    pub fn act(&self, action: PeerAction) {
        self.actions.send(action).unwrap();
        self.done.recv_timeout(LIMIT).unwrap();
    }
}

/// Client settings that trust the test CA.
pub fn test_client_config() -> Arc<rustls::ClientConfig> {
    client_config_trusting("ca.pem")
}

/// Client settings that trust the CA in `tests/certs/<ca>`.
pub fn client_config_trusting(ca: &str) -> Arc<rustls::ClientConfig> {
    let trust = Trust {
        cert_file: Some(certs_dir().join(ca)),
        ..Trust::default()
    };
    client_config(&trust).unwrap()
}

/// A TLS transport whose handshake is complete and whose first exchange (`ping`, `pong`) is
/// read, so that it is idle and clean, and the peer at its other end.
pub fn tls_pair() -> (Transport, TlsPeer) {
    tls_pair_with(test_client_config(), server_config())
}

/// [`tls_pair`] with these client and server settings.
pub fn tls_pair_with(
    config: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
) -> (Transport, TlsPeer) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut transport =
        Transport::connect_tcp(listener.local_addr().unwrap(), Some((&config, "localhost")))
            .unwrap();
    let (socket, _) = listener.accept().unwrap();
    let (actions, orders) = mpsc::channel();
    let (report, done) = mpsc::channel();
    std::thread::spawn(move || serve_tls(socket, server, &orders, &report));

    let mut poll = Poll::new().unwrap();
    transport.register(poll.registry(), Token(1)).unwrap();
    let mut events = Events::with_capacity(4);
    let mut received = Vec::new();
    let mut records = Vec::new();
    let mut sent = 0;
    let deadline = Instant::now() + LIMIT;
    while received != b"pong" {
        // Nothing is taken until the handshake is done.
        sent += transport.write(&b"ping"[sent..], &mut records).unwrap();
        let mut buf = [0u8; 64];
        match transport.read_to(&mut buf, &mut records).unwrap() {
            ReadOutcome::Data(n) => received.extend_from_slice(&buf[..n]),
            ReadOutcome::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "no TLS exchange within {LIMIT:?}");
                poll.poll(&mut events, Some(left)).unwrap();
            }
            ReadOutcome::Closed => panic!("the TLS peer closed during the first exchange"),
        }
    }
    transport.deregister(poll.registry()).unwrap();
    (transport, TlsPeer { actions, done })
}

fn serve_tls(
    socket: TcpStream,
    config: Arc<rustls::ServerConfig>,
    orders: &Receiver<PeerAction>,
    report: &Sender<()>,
) {
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let mut ping = [0u8; 4];
    stream.read_exact(&mut ping).unwrap();
    stream.write_all(b"pong").unwrap();
    stream.flush().unwrap();
    for action in orders {
        match action {
            PeerAction::Plaintext(bytes) => {
                stream.write_all(&bytes).unwrap();
                stream.flush().unwrap();
            }
            PeerAction::CloseNotify => {
                stream.conn.send_close_notify();
                stream.flush().unwrap();
            }
            PeerAction::Raw(bytes) => stream.sock.write_all(&bytes).unwrap(),
            PeerAction::Drop => {
                drop(stream);
                let _ = report.send(());
                return;
            }
        }
        let _ = report.send(());
    }
}

/// The test server's settings: `server.pem` for `localhost`, TLS 1.3 and 1.2.
pub fn server_config() -> Arc<rustls::ServerConfig> {
    server_config_from("server.pem", "server.key", rustls::DEFAULT_VERSIONS)
}

/// A server presenting `tests/certs/<cert>` with `<key>`, speaking only `versions`.
pub fn server_config_from(
    cert: &str,
    key: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_file_iter(certs_dir().join(cert))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs_dir().join(key)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}
