//! The metrics endpoint on the reactor's clock: half-sent requests cannot keep scrapes out,
//! and the endpoint answers through a drain without holding up the exit.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::harness::Harness;
use common::*;
use streaming_daemon::reactor::Turn;

/// Opens a metrics connection and sends `request` (all of it, or part of one).
fn send(address: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request).unwrap();
    stream.set_nonblocking(true).unwrap();
    stream
}

/// Turns the loop until `stream` has a whole response (the daemon closes after it).
fn response(h: &mut Harness, stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    h.turn_until(|_| {
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    });
    String::from_utf8(received).unwrap()
}

/// The daemon closed this connection (without answering it).
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[test]
fn sixteen_half_sent_requests_cannot_keep_a_scrape_out() {
    let (mut h, address) = Harness::with_metrics("half-sent", |_| {});
    let mut stalled: Vec<TcpStream> = (0..16).map(|_| send(address, b"GET /metr")).collect();
    for _ in 0..5 {
        h.turn();
    }
    // The seventeenth gets its answer at once: the oldest idle one made room.
    let mut health = send(address, b"GET /healthz HTTP/1.1\r\n\r\n");
    let answer = response(&mut h, &mut health);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        closed(&mut stalled[0]),
        "the oldest half-sent request was not closed"
    );
    // The rest are closed once their 2 s for a request head is up.
    h.skip(Duration::from_secs(2));
    h.turn();
    h.turn();
    for (i, stream) in stalled.iter_mut().enumerate() {
        assert!(closed(stream), "half-sent request {i} is still open");
    }
}

#[test]
fn the_endpoint_answers_during_a_drain_and_never_holds_up_the_exit() {
    let (mut h, address) = Harness::with_metrics("drain-metrics", |c| {
        c.backend.mock.message_delay = Duration::from_secs(1);
    });
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    let now = h.now();
    h.reactor.begin_drain(now);
    let mut health = send(address, b"GET /healthz HTTP/1.1\r\n\r\n");
    let answer = response(&mut h, &mut health);
    assert!(
        answer.ends_with(r#"{"status":"ok","active_streams":1,"active_connections":1}"#),
        "{answer}"
    );
    // A scrape that never finishes its request does not keep the daemon alive.
    let mut idle = send(address, b"GET /");
    h.turn();
    let body = h.collect_skipping(&mut client, Duration::from_secs(1));
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(h.turn(), Turn::Finished);
    assert!(closed(&mut idle));
}

#[test]
fn a_metrics_port_that_was_busy_is_bound_on_a_later_try() {
    let mut h = Harness::new("metrics-retry", |_| {});
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let now = h.now();
    h.reactor.retry_metrics_bind(address, now);
    h.skip(Duration::from_secs(30));
    h.turn();
    // Still busy: tried, and tried again 30 s later once it is free.
    drop(taken);
    h.turn();
    assert!(TcpStream::connect(address).is_err());
    h.skip(Duration::from_secs(30));
    h.turn();
    let mut health = send(address, b"GET /healthz HTTP/1.1\r\n\r\n");
    let answer = response(&mut h, &mut health);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}
