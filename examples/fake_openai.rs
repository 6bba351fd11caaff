//! A fast local OpenAI-compatible upstream for benchmarks (never for production): every request
//! gets a chunked `200` event stream of `-events` content chunks, `-delay-ms` apart, then a
//! `finish_reason` chunk and `[DONE]`. Keep-alive, one thread per connection, plain HTTP or TLS
//! with the test certificate under `tests/certs`. Prints its address on stdout.
//!
//!     cargo run --release --example fake_openai -- -listen 127.0.0.1:0 -events 100 -delay-ms 100 [-tls]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Options {
    listen: String,
    events: usize,
    delay: Duration,
    tls: bool,
}

fn main() -> io::Result<()> {
    let options = parse();
    let listener = TcpListener::bind(&options.listen)?;
    println!("{}", listener.local_addr()?);
    io::stdout().flush()?;
    let tls = options.tls.then(server_config);
    let options = Arc::new(options);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let options = options.clone();
        let tls = tls.clone();
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = match tls {
                    Some(config) => match rustls::ServerConnection::new(config) {
                        Ok(connection) => {
                            serve(rustls::StreamOwned::new(connection, stream), &options)
                        }
                        Err(_) => Ok(()),
                    },
                    None => serve(stream, &options),
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
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match flag.trim_start_matches('-') {
            "listen" => options.listen = value(),
            "events" => options.events = value().parse().unwrap_or(options.events),
            "delay-ms" => options.delay = Duration::from_millis(value().parse().unwrap_or(100)),
            "tls" => options.tls = true,
            other => {
                eprintln!("unknown flag -{other}");
                std::process::exit(2);
            }
        }
    }
    options
}

fn serve(stream: impl Read + Write, options: &Options) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        // The request head, then its Content-Length body.
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")?;
        for i in 0..options.events {
            let event = format!(
                "data: {{\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}]}}\n\n"
            );
            write_chunk(stream, &event)?;
            if !options.delay.is_zero() {
                std::thread::sleep(options.delay);
            }
        }
        write_chunk(stream, "data: {\"id\":\"b\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")?;
        stream.write_all(b"0\r\n\r\n")?;
        stream.flush()?;
    }
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
