//! A fast local OpenAI-compatible upstream for benchmarks and the soak (never for production).
//! Keep-alive, one thread per connection, plain HTTP or TLS with the test certificate under
//! `tests/certs`. Prints its address on stdout.
//!
//!     cargo run --release --example fake_openai -- -listen 127.0.0.1:0 -events 100 -delay-ms 100 [-tls]
//!         [-mix ok=90,429=2,500=2,cut=2,stall=2,malformed=2] [-stall-ms 2000] [-head-delay-ms 0]
//!
//! `-head-delay-ms` waits that long before every answer's head, as a model thinks before its
//! first token.
//!
//! Each `POST …/chat/completions` gets an answer of the kind `-mix` gives its request number
//! (0, 1, 2… in arrival order; the same smooth weighted round robin as `handoff -faults`, so
//! the count of each kind among the first n requests is known in advance):
//!
//! | kind        | answer                                                                                      |
//! |-------------|---------------------------------------------------------------------------------------------|
//! | `ok`        | chunked `200` event stream: `-events` content chunks `-delay-ms` apart, a `finish_reason` chunk, `[DONE]` |
//! | `429`       | `429` with `Retry-After: 1` and a JSON error body; the connection is kept                    |
//! | `500`       | `500` with a JSON error body; the connection is kept                                          |
//! | `cut`       | `200`, two content chunks, then half a chunk and the connection closes                       |
//! | `stall`     | `200`, one content chunk, then silence for `-stall-ms`, then the connection closes           |
//! | `malformed` | as `ok`, after the [`MALFORMED_EVENTS`]: events whose data is not a JSON object               |
//!
//! `GET /stats` answers `{"requests":N,"ok":N,"429":N,…}`: the answers begun so far, per kind.

#[allow(dead_code)] // shared with the `handoff` load generator, which uses more of it
#[path = "../src/bin/handoff/mix.rs"]
mod mix;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mix::Mix;

/// The answer kinds `-mix` names, in the order `/stats` lists them.
const KINDS: &[&str] = &["ok", "429", "500", "cut", "stall", "malformed"];
const TOO_MANY: usize = 1;
const SERVER_ERROR: usize = 2;
const CUT: usize = 3;
const STALL: usize = 4;
const MALFORMED: usize = 5;

/// The events a `malformed` answer begins with: complete SSE events whose data is not a JSON
/// object (cut-off JSON, an array). The daemon skips each and counts it as a backend error.
const MALFORMED_EVENTS: [&str; 2] = [
    "data: {\"id\":\"b\",\"choices\":[{\"delta\":{\"content\":\"bro\n\n",
    "data: [1,2,3]\n\n",
];

struct Options {
    listen: String,
    events: usize,
    delay: Duration,
    tls: bool,
    mix: Mix,
    stall: Duration,
    head_delay: Duration,
}

/// Shared by every connection's thread.
struct Shared {
    options: Options,
    /// Completion requests so far: the next one's number.
    requests: AtomicU64,
    /// Answers begun, per kind.
    served: [AtomicU64; KINDS.len()],
}

fn main() -> io::Result<()> {
    let options = parse();
    let listener = TcpListener::bind(&options.listen)?;
    println!("{}", listener.local_addr()?);
    io::stdout().flush()?;
    let tls = options.tls.then(server_config);
    let shared = Arc::new(Shared {
        options,
        requests: AtomicU64::new(0),
        served: Default::default(),
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = match tls {
                    Some(config) => match rustls::ServerConnection::new(config) {
                        Ok(connection) => {
                            serve(rustls::StreamOwned::new(connection, stream), &shared)
                        }
                        Err(_) => Ok(()),
                    },
                    None => serve(stream, &shared),
                };
            })?;
    }
    Ok(())
}

fn parse() -> Options {
    let mut options = Options {
        listen: "127.0.0.1:0".into(),
        events: 100,
        delay: Duration::from_millis(100),
        tls: false,
        mix: Mix::only_first(KINDS),
        stall: Duration::from_secs(2),
        head_delay: Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    let fail = |message: String| -> ! {
        eprintln!("fake_openai: {message}");
        std::process::exit(2);
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match flag.trim_start_matches('-') {
            "listen" => options.listen = value(),
            "events" => options.events = value().parse().unwrap_or(options.events),
            "delay-ms" => options.delay = Duration::from_millis(value().parse().unwrap_or(100)),
            "tls" => options.tls = true,
            "mix" => {
                options.mix =
                    Mix::parse(&value(), KINDS).unwrap_or_else(|e| fail(format!("-mix: {e}")))
            }
            "stall-ms" => options.stall = milliseconds("-stall-ms", &value()),
            "head-delay-ms" => options.head_delay = milliseconds("-head-delay-ms", &value()),
            other => fail(format!("unknown flag -{other}")),
        }
    }
    options
}

fn milliseconds(flag: &str, value: &str) -> Duration {
    match value.parse() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => {
            eprintln!("fake_openai: {flag}: {value:?}");
            std::process::exit(2);
        }
    }
}

fn serve(stream: impl Read + Write, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        // The request head, then its Content-Length body.
        let mut request_line = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if request_line.is_empty() {
                request_line = line;
            } else if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        // The body is not looked at: read and dropped as it comes (a request may carry many
        // megabytes of attachments).
        let read = io::copy(&mut (&mut reader).take(length as u64), &mut io::sink())?;
        if read < length as u64 {
            return Ok(());
        }
        let stream = reader.get_mut();
        if request_line.starts_with("GET /stats ") {
            write_json(stream, "200 OK", &stats(shared))?;
            continue;
        }
        let number = shared.requests.fetch_add(1, Ordering::Relaxed);
        let kind = shared.options.mix.kind(number);
        shared.served[kind].fetch_add(1, Ordering::Relaxed);
        let options = &shared.options;
        if !options.head_delay.is_zero() {
            std::thread::sleep(options.head_delay);
        }
        match kind {
            TOO_MANY => write_json(
                stream,
                "429 Too Many Requests\r\nRetry-After: 1",
                "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}",
            )?,
            SERVER_ERROR => write_json(
                stream,
                "500 Internal Server Error",
                "{\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}",
            )?,
            CUT => {
                write_head(stream)?;
                write_chunk(stream, &content(0))?;
                write_chunk(stream, &content(1))?;
                // Half of a chunk: its size line promises more than ever comes.
                let event = content(2);
                let half = &event[..event.len() / 2];
                stream.write_all(format!("{:x}\r\n{half}", event.len()).as_bytes())?;
                stream.flush()?;
                return Ok(());
            }
            STALL => {
                write_head(stream)?;
                write_chunk(stream, &content(0))?;
                std::thread::sleep(options.stall);
                return Ok(());
            }
            // OK and MALFORMED
            _ => {
                write_head(stream)?;
                if kind == MALFORMED {
                    for event in MALFORMED_EVENTS {
                        write_chunk(stream, event)?;
                    }
                }
                for i in 0..options.events {
                    write_chunk(stream, &content(i))?;
                    if !options.delay.is_zero() {
                        std::thread::sleep(options.delay);
                    }
                }
                write_chunk(stream, "data: {\"id\":\"b\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")?;
                stream.write_all(b"0\r\n\r\n")?;
                stream.flush()?;
            }
        }
    }
}

fn content(i: usize) -> String {
    format!(
        "data: {{\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn stats(shared: &Shared) -> String {
    let mut json = format!("{{\"requests\":{}", shared.requests.load(Ordering::Relaxed));
    for (name, served) in KINDS.iter().zip(&shared.served) {
        json.push_str(&format!(",\"{name}\":{}", served.load(Ordering::Relaxed)));
    }
    json.push('}');
    json
}

fn write_head(stream: &mut impl Write) -> io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    )
}

/// A complete response with a JSON body; `status` may carry extra header lines after it.
fn write_json(stream: &mut impl Write, status: &str, body: &str) -> io::Result<()> {
    stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    stream.flush()
}

fn write_chunk(stream: &mut impl Write, data: &str) -> io::Result<()> {
    stream.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())?;
    stream.flush()
}

fn server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs");
    let certs: Vec<_> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("test certificate: {e}"));
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))
        .unwrap_or_else(|e| panic!("test key: {e}"));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
    .unwrap_or_else(|e| panic!("TLS set-up: {e}"));
    Arc::new(config)
}
