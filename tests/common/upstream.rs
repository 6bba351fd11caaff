//! A fake upstream API for the tests: plain TCP, TLS (with the committed test certificate) or
//! a Unix socket. Each request it receives takes the next scripted response from a queue; it
//! records every request and counts connections. Keep-alive: one connection may serve several
//! requests in turn.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One step of a scripted response.
pub enum Action {
    Send(Vec<u8>),
    /// Write the bytes one at a time, each on its own.
    SendBytewise(Vec<u8>),
    /// Block until the test sends on the paired channel (or drops it).
    WaitFor(Receiver<()>),
    /// Tell the test that every action before this one is done (its bytes written).
    Notify(Sender<()>),
    /// Close the connection.
    Close,
    /// Close the connection, then tell the test: its end of file is on its way.
    CloseAndNotify(Sender<()>),
}

pub fn send(text: &str) -> Action {
    Action::Send(text.as_bytes().to_vec())
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Vec<Action>>,
    requests: Vec<Received>,
    connections: usize,
    /// Connections that ended because the daemon closed them.
    closed_by_peer: usize,
}

pub struct FakeUpstream {
    shared: Arc<Mutex<Shared>>,
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`, or the Unix socket path.
    pub base: String,
    pub socket_path: Option<PathBuf>,
}

pub enum Kind {
    Plain,
    Tls,
    Unix,
}

impl FakeUpstream {
    pub fn start(kind: Kind, script: Vec<Vec<Action>>) -> FakeUpstream {
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            ..Shared::default()
        }));
        let (base, socket_path) = match kind {
            Kind::Plain | Kind::Tls => {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = listener.local_addr().unwrap().port();
                let tls = matches!(kind, Kind::Tls);
                let for_thread = shared.clone();
                std::thread::spawn(move || {
                    for stream in listener.incoming() {
                        let Ok(stream) = stream else { return };
                        let _ = stream.set_nodelay(true);
                        let shared = for_thread.clone();
                        std::thread::spawn(move || {
                            if tls {
                                let config = server_tls_config();
                                let Ok(connection) = rustls::ServerConnection::new(config) else {
                                    return;
                                };
                                serve(rustls::StreamOwned::new(connection, stream), &shared);
                            } else {
                                serve(stream, &shared);
                            }
                        });
                    }
                });
                let base = if tls {
                    format!("https://localhost:{port}")
                } else {
                    format!("http://127.0.0.1:{port}")
                };
                (base, None)
            }
            Kind::Unix => {
                let path = super::temp_socket_path("upstream");
                let listener = UnixListener::bind(&path).unwrap();
                let for_thread = shared.clone();
                std::thread::spawn(move || {
                    for stream in listener.incoming() {
                        let Ok(stream) = stream else { return };
                        let shared = for_thread.clone();
                        std::thread::spawn(move || serve(stream, &shared));
                    }
                });
                ("http://api.internal".to_string(), Some(path))
            }
        };
        FakeUpstream {
            shared,
            base,
            socket_path,
        }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().unwrap().requests.clone()
    }

    pub fn connections(&self) -> usize {
        self.shared.lock().unwrap().connections
    }

    pub fn closed_by_peer(&self) -> usize {
        self.shared.lock().unwrap().closed_by_peer
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A paired gate: the fake waits on the receiver until the test opens it.
pub fn gate() -> (Sender<()>, Receiver<()>) {
    mpsc::channel()
}

fn serve(mut stream: impl Read + Write, shared: &Mutex<Shared>) {
    shared.lock().unwrap().connections += 1;
    let mut pending = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut pending) {
            Some(request) => request,
            None => {
                shared.lock().unwrap().closed_by_peer += 1;
                return;
            }
        };
        let script = {
            let mut shared = shared.lock().unwrap();
            shared.requests.push(request);
            shared.script.pop_front()
        };
        let Some(script) = script else { return };
        for action in script {
            let written = match action {
                Action::Send(bytes) => stream.write_all(&bytes).and_then(|_| stream.flush()),
                Action::SendBytewise(bytes) => bytes
                    .chunks(1)
                    .try_for_each(|byte| stream.write_all(byte).and_then(|_| stream.flush())),
                Action::WaitFor(gate) => {
                    let _ = gate.recv();
                    Ok(())
                }
                Action::Notify(done) => {
                    let _ = done.send(());
                    Ok(())
                }
                Action::Close => return,
                Action::CloseAndNotify(done) => {
                    drop(stream);
                    let _ = done.send(());
                    return;
                }
            };
            if written.is_err() {
                shared.lock().unwrap().closed_by_peer += 1;
                return;
            }
        }
    }
}

/// Reads one request (head and `Content-Length` body); `None` at end of stream. The head is
/// looked for once: a body of many megabytes is not scanned again at every read.
fn read_request(stream: &mut impl Read, pending: &mut Vec<u8>) -> Option<Received> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Option<(usize, String, usize)> = None;
    loop {
        if head.is_none() {
            if let Some(end) = super::find(pending, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&pending[..end]).to_string();
                let length: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                head = Some((end, text, length));
            }
        }
        if let Some((end, text, length)) = &head {
            if pending.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&pending[end + 4..end + 4 + length]).to_string();
                pending.drain(..end + 4 + length);
                return Some(Received {
                    head: text.clone(),
                    body,
                });
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

pub fn certs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
}

fn server_tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_file_iter(certs_dir().join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs_dir().join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// A chunked `200 text/event-stream` head.
pub const SSE_OK_CHUNKED: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n";

/// One chunk of a chunked body.
pub fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

pub const LAST_CHUNK: &str = "0\r\n\r\n";

/// An OpenAI streaming chunk carrying `content` (already JSON-escaped by the caller).
pub fn delta(content_json: &str) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content_json}}},\"finish_reason\":null}}]}}\n\n"
    )
}

pub const ROLE_CHUNK: &str =
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
pub const FINISH_CHUNK: &str =
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
pub const USAGE_CHUNK: &str =
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9,\"total_tokens\":14}}\n\n";
pub const DONE_EVENT: &str = "data: [DONE]\n\n";

/// The daemon running `provider` (`openai` or `langgraph`) in front of `upstream`; `yaml` adds
/// settings under `backend:` (timeouts, say) through a config file.
pub fn upstream_daemon(
    name: &str,
    provider: &str,
    upstream: &FakeUpstream,
    yaml: &str,
    env: &[(&str, &str)],
) -> super::Daemon {
    let config = std::env::temp_dir().join(format!("sd-{name}-{}.yaml", std::process::id()));
    std::fs::write(&config, format!("backend:\n  provider: {provider}\n{yaml}")).unwrap();
    let base = format!("{}/v1", upstream.base);
    let base_flag = format!("-{provider}-base");
    let socket_flag = format!("-{provider}-socket");
    let mut args = vec!["-config", config.to_str().unwrap(), &base_flag, &base];
    let socket;
    if let Some(path) = &upstream.socket_path {
        socket = path.to_str().unwrap().to_string();
        args.extend([socket_flag.as_str(), &socket]);
    }
    let daemon = super::Daemon::start_with_env(super::temp_socket_path(name), &args, env);
    let _ = std::fs::remove_file(&config);
    daemon
}

/// A chunked `200` event stream with one chunk per event, then the last chunk.
pub fn ok_stream(events: &[&str]) -> Vec<Action> {
    let mut body = String::from(SSE_OK_CHUNKED);
    for event in events {
        body.push_str(&chunk(event));
    }
    body.push_str(LAST_CHUNK);
    vec![Action::Send(body.into_bytes())]
}

/// The status line of a response.
pub fn status(response: &str) -> String {
    super::parse_response(response).0
}

/// Waits (bounded) until the daemon has logged at least `count` lines containing `needle`: for
/// a line that recurs (`msg="connection ended"`), where `Daemon::wait_for_log` finds the first.
pub fn wait_for_log_count(daemon: &mut super::Daemon, needle: &str, count: usize) {
    let what = format!("{count} log line(s) with {needle:?}");
    super::eventually(Duration::from_secs(20), &what, || {
        daemon.count_log(needle) >= count
    });
}

/// Waits a moment for something the fake records from another thread.
pub fn wait_until(limit: Duration, what: &str, condition: impl FnMut() -> bool) {
    super::eventually(limit, what, condition);
}
