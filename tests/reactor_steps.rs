//! Step-the-loop tests: the reactor runs in the test's own thread, one turn at a time, while the
//! test plays Apache and the client on real sockets. The harness keeps the clock: the real one
//! plus whatever time the test skipped, so that no test waits for a timeout to pass.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::harness::{Harness, LIMIT};
use common::upstream::{
    chunk, delta, gate, ok_stream, send, Action, FakeUpstream, Kind, DONE_EVENT, SSE_OK_CHUNKED,
};
use common::*;
use streaming_daemon::backends::{
    Attached, Backend, BackendError, Backends, Command, CommandResult, EventSource, Next, Start,
};
use streaming_daemon::config::{Config, SocketType};
use streaming_daemon::handoff::HandoffData;
use streaming_daemon::reactor::Turn;
use streaming_daemon::sse::EventSink;
use streaming_daemon::sys::socket;
use streaming_daemon::upstream::Upstream;

fn status_line(text: &str) -> String {
    parse_response(text).0
}

#[test]
fn a_mock_stream_is_the_head_eighteen_events_and_done() {
    let mut h = Harness::new("mock", |_| {});
    let (mut client, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"Tell me","user_id":"42"}"#, &server);
    drop(server);
    let body = h.collect(&mut client);
    assert!(body.starts_with(SSE_HEAD), "{body}");
    let events = contents(&body);
    assert_eq!(events.len(), 18);
    assert_eq!(events[0], "Hello from Rust daemon! Prompt: Tell me");
    assert_eq!(events[1], "User ID: 42");
    assert!(body.ends_with("data: {\"content\":\"[DONE-CONTENT]\"}\n\ndata: [DONE]\n\n"));
    h.turn_until(|r| r.connections() == 0);
    let tally = h.reactor.tally();
    assert_eq!(
        (
            tally.handoffs,
            tally.streams_started,
            tally.streams_completed
        ),
        (1, 1, 1)
    );
    assert_eq!(tally.bytes_sent, body.len() as u64);
    assert_eq!(tally.chunks_sent, 18);
}

#[test]
fn a_payload_split_across_reads_is_collected_to_end_of_stream() {
    let mut h = Harness::new("split", |_| {});
    let (mut client, server) = tcp_pair();
    let apache = socket::unix_connect(&h.path, SocketType::Stream).unwrap();
    let payload = format!(r#"{{"prompt":"{}","user_id":7}}"#, "p".repeat(40_000));
    let (first, rest) = payload.as_bytes().split_at(100);
    streaming_daemon::sys::fdpass::send_with_fd(
        &apache,
        first,
        std::os::fd::AsRawFd::as_raw_fd(&server),
    )
    .unwrap();
    drop(server);
    // Let the daemon read the first piece on its own before the rest arrives.
    for _ in 0..3 {
        h.turn();
    }
    let mut rest = rest;
    while !rest.is_empty() {
        let n = blocking_send(&apache, rest);
        rest = &rest[n..];
        h.turn();
    }
    drop(apache);
    let body = h.collect(&mut client);
    let events = contents(&body);
    assert_eq!(
        events[0],
        format!("Hello from Rust daemon! Prompt: {}...", "p".repeat(50))
    );
    assert_eq!(events[1], "User ID: 7");
}

#[test]
fn bad_json_gets_400_and_too_much_data_gets_413() {
    let mut h = Harness::new("bad", |c| c.server.max_handoff_bytes = 1000);
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{\"prompt\":", &server);
    drop(server);
    let response = h.collect(&mut client);
    let (status, headers, body) = parse_response(&response);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(headers.contains(&("Content-Type".into(), "application/json".into())));
    assert!(headers.contains(&("Content-Length".into(), body.len().to_string())));
    assert!(
        body.starts_with("{\"error\":\"invalid request data: not JSON"),
        "{body}"
    );

    let (mut client, server) = tcp_pair();
    h.hand_off(br#"{"user_id":"abc"}"#, &server);
    drop(server);
    assert_eq!(
        status_line(&h.collect(&mut client)),
        "HTTP/1.1 400 Bad Request"
    );

    let (mut client, server) = tcp_pair();
    h.hand_off(&vec![b' '; 1001], &server);
    drop(server);
    let response = h.collect(&mut client);
    assert_eq!(status_line(&response), "HTTP/1.1 413 Payload Too Large");
    h.turn_until(|r| r.connections() == 0);
    assert_eq!(h.reactor.tally().rejections, 3);
    assert_eq!(h.reactor.tally().streams_started, 0);
}

#[test]
fn a_handoff_without_an_fd_is_closed() {
    let mut h = Harness::new("nofd", |_| {});
    let apache = socket::unix_connect(&h.path, SocketType::Stream).unwrap();
    blocking_send(&apache, b"{}");
    socket::set_nonblocking(apache.as_fd()).unwrap();
    drop(apache);
    h.turn_until(|r| r.tally().rejections == 1);
    assert_eq!(h.reactor.connections(), 0);
}

#[test]
fn an_fd_that_is_not_a_stream_socket_is_rejected() {
    let mut h = Harness::new("badfd", |_| {});
    let file = std::fs::File::open("/dev/null").unwrap();
    h.hand_off(b"{}", &file);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    h.hand_off(b"{}", &udp);
    h.turn_until(|r| r.tally().rejections == 2);
    assert_eq!(h.reactor.connections(), 0);
    assert_eq!(h.reactor.tally().streams_started, 0);
}

#[test]
fn extra_fds_are_closed_and_the_first_is_served() {
    let mut h = Harness::new("extra", |_| {});
    let (mut client, server) = tcp_pair();
    let (mut other_client, other_server) = tcp_pair();
    let apache = socket::unix_connect(&h.path, SocketType::Stream).unwrap();
    send_fds(&apache, &[server.as_fd(), other_server.as_fd()]);
    drop((server, other_server, apache));
    let body = h.collect(&mut client);
    assert!(body.ends_with("data: [DONE]\n\n"));
    // The extra fd was closed by the daemon: its client sees end of stream with no bytes.
    assert_eq!(read_to_end(&mut other_client, LIMIT), "");
}

#[test]
fn truncated_control_data_closes_every_fd() {
    let mut h = Harness::new("ctrunc", |_| {});
    let pairs: Vec<_> = (0..20).map(|_| tcp_pair()).collect();
    let apache = socket::unix_connect(&h.path, SocketType::Stream).unwrap();
    let fds: Vec<_> = pairs.iter().map(|(_, server)| server.as_fd()).collect();
    send_fds(&apache, &fds);
    drop(apache);
    h.turn_until(|r| r.tally().rejections == 1);
    assert_eq!(h.reactor.tally().streams_started, 0);
    // Every fd the daemon received was closed: no client gets a byte, each sees the end.
    for (mut client, server) in pairs {
        drop(server);
        assert_eq!(read_to_end(&mut client, LIMIT), "");
    }
}

/// Sends the start of a handoff with its fd and keeps Apache's end open: it never completes.
fn unfinished_handoff(h: &Harness) -> (TcpStream, std::os::fd::OwnedFd) {
    let (client, server) = tcp_pair();
    let apache = socket::unix_connect(&h.path, SocketType::Stream).unwrap();
    streaming_daemon::sys::fdpass::send_with_fd(
        &apache,
        b"{\"prompt\"",
        std::os::fd::AsRawFd::as_raw_fd(&server),
    )
    .unwrap();
    (client, apache)
}

#[test]
fn a_handoff_that_never_finishes_times_out_with_500() {
    let mut h = Harness::new("timeout", |_| {});
    let (mut client, apache) = unfinished_handoff(&h);
    h.turn_until(|r| r.connections() == 1);
    for _ in 0..3 {
        h.turn();
    }
    let mut received = Vec::new();
    assert!(read_available(&mut client, &mut received).is_some() && received.is_empty());
    // The default handoff timeout is 5 s.
    h.skip(Duration::from_millis(4900));
    h.turn();
    assert!(read_available(&mut client, &mut received).is_some() && received.is_empty());
    h.skip(Duration::from_millis(100));
    let response = h.collect(&mut client);
    assert_eq!(status_line(&response), "HTTP/1.1 500 Internal Server Error");
    drop(apache);
    h.turn_until(|r| r.connections() == 0);
    assert_eq!(h.reactor.tally().rejections, 1);
}

#[test]
fn deadlines_that_tie_all_fire_in_the_same_turn() {
    let mut h = Harness::new("tie", |_| {});
    h.frozen = Some(Instant::now());
    // Both handoffs are accepted in the same turn, at the same (frozen) time.
    let (mut first, first_apache) = unfinished_handoff(&h);
    let (mut second, second_apache) = unfinished_handoff(&h);
    h.turn_until(|r| r.connections() == 2);
    h.skip(Duration::from_secs(5));
    h.turn();
    for client in [&mut first, &mut second] {
        let mut received = Vec::new();
        read_available(client, &mut received);
        assert!(
            String::from_utf8_lossy(&received).starts_with("HTTP/1.1 500 "),
            "{received:?}"
        );
    }
    drop((first_apache, second_apache));
}

#[test]
fn seqpacket_handoffs_stream_and_oversized_ones_get_413() {
    let mut h = Harness::new("seq", |c| {
        c.server.socket_type = SocketType::SeqPacket;
        c.server.max_handoff_bytes = 100;
    });
    let (mut client, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"seq"}"#, &server);
    drop(server);
    let body = h.collect(&mut client);
    assert_eq!(contents(&body)[0], "Hello from Rust daemon! Prompt: seq");

    let (mut client, server) = tcp_pair();
    h.hand_off(&[b' '; 101], &server);
    drop(server);
    assert_eq!(
        status_line(&h.collect(&mut client)),
        "HTTP/1.1 413 Payload Too Large"
    );
}

#[test]
fn over_the_connection_limit_clients_get_503_with_retry_after() {
    let mut h = Harness::new("limit", |c| {
        c.server.max_connections = 1;
        c.backend.mock.message_delay = Duration::from_secs(5);
    });
    let (mut first, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    let (mut second, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let response = h.collect(&mut second);
    let (status, headers, body) = parse_response(&response);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(headers.contains(&("Retry-After".into(), "1".into())));
    assert_eq!(body, "{\"error\":\"server at capacity; retry shortly\"}\n");
    assert_eq!(h.reactor.tally().rejected, 1);
    // The first stream is untouched.
    let mut received = Vec::new();
    assert!(read_available(&mut first, &mut received).is_some());
    assert!(received.starts_with(SSE_HEAD.as_bytes()));
}

#[test]
fn a_client_that_goes_away_is_cleaned_up_at_once() {
    let mut h = Harness::new("gone", |c| {
        c.backend.mock.message_delay = Duration::from_secs(5)
    });
    let (client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    drop(client);
    h.turn_until(|r| r.connections() == 0);
    assert_eq!(h.reactor.tally().streams_failed, 1);
}

#[test]
fn the_max_stream_duration_ends_the_stream_with_an_error_event() {
    let mut h = Harness::new("maxdur", |c| {
        c.backend.mock.message_delay = Duration::from_secs(1);
        c.server.max_stream_duration = Duration::from_secs(60);
    });
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    h.skip(Duration::from_secs(60));
    let body = h.collect(&mut client);
    assert!(
        body.ends_with("event: error\ndata: {\"error\":\"maximum stream duration exceeded\"}\n\n"),
        "{body}"
    );
    assert!(!body.contains("[DONE]"));
    assert!(contents(&body).len() < 18);
}

#[test]
fn a_client_that_reads_nothing_is_dropped_after_the_write_timeout() {
    let mut h = Harness::with_backend("stall", Config::default(), Box::new(Firehose));
    let (client, server) = socket::unix_pair(SocketType::Stream).unwrap();
    socket::set_send_buffer(server.as_fd(), 4096).unwrap();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    for _ in 0..3 {
        h.turn();
    }
    // The default write timeout is 30 s: just short of it, the stream is still there.
    h.skip(Duration::from_millis(29_900));
    h.turn();
    assert_eq!(h.reactor.connections(), 1);
    h.skip(Duration::from_millis(100));
    h.turn_until(|r| r.connections() == 0);
    assert_eq!(h.reactor.tally().streams_failed, 1);
    drop(client);
}

#[test]
fn over_the_memory_budget_new_handoffs_get_503() {
    let config = {
        let mut c = Config::default();
        c.server.mem_limit = Some(16 * 1024);
        c
    };
    let mut h = Harness::with_backend("memlimit", config, Box::new(Firehose));
    // A client that reads nothing leaves most of a 64 KiB event in the daemon's buffer.
    let (stalled, server) = socket::unix_pair(SocketType::Stream).unwrap();
    socket::set_send_buffer(server.as_fd(), 4096).unwrap();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    let (mut refused, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let response = h.collect(&mut refused);
    let (status, headers, _) = parse_response(&response);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(headers.contains(&("Retry-After".into(), "1".into())));
    assert_eq!(h.reactor.tally().rejected, 1);
    drop(stalled);
    h.turn_until(|r| r.connections() == 0);
}

#[test]
fn a_source_that_is_always_due_neither_recurses_nor_hogs_the_loop() {
    let mut h = Harness::with_backend("trickle", Config::default(), Box::new(Trickle));
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let body = h.collect(&mut client);
    assert_eq!(contents(&body).len(), TRICKLE_EVENTS);
    assert!(body.ends_with("data: [DONE]\n\n"));
}

const TRICKLE_EVENTS: usize = 100_000;

/// Tiny events with no delay at all: the client keeps up, so it is always due.
struct Trickle;

impl Backend for Trickle {
    fn name(&self) -> &'static str {
        "trickle"
    }
    fn start(
        &mut self,
        _: HandoffData,
        _: Option<Attached>,
        _: Instant,
    ) -> Result<Start, BackendError> {
        Ok(Start::Local(Box::new(TrickleStream(0))))
    }
}

struct TrickleStream(usize);

impl EventSource for TrickleStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        sink.content("t");
        self.0 += 1;
        if self.0 == TRICKLE_EVENTS {
            Next::Complete
        } else {
            Next::After(Duration::ZERO)
        }
    }
}

#[test]
fn a_stream_that_ends_on_an_events_last_round_still_closes() {
    // Each event's handling runs a bounded number of rounds; a stream whose end falls on the
    // last of them must still be closed (it once waited for a tick that never came). After
    // its first event the source pauses, so that the burst that ends it is handled on a timer,
    // long after the client socket's first writable event.
    for burst in 1..=140 {
        let backend = Box::new(PauseThenBurst(burst));
        let mut h = Harness::with_backend("burst", Config::default(), backend);
        let (mut client, server) = tcp_pair();
        h.hand_off(b"{}", &server);
        drop(server);
        let body = h.collect(&mut client);
        assert_eq!(contents(&body).len(), 1 + burst, "a burst of {burst}");
        h.turn_until(|r| r.connections() == 0);
    }
}

/// One event, a pause of a millisecond, then its number of events with no delay.
struct PauseThenBurst(usize);

impl Backend for PauseThenBurst {
    fn name(&self) -> &'static str {
        "burst"
    }
    fn start(
        &mut self,
        _: HandoffData,
        _: Option<Attached>,
        _: Instant,
    ) -> Result<Start, BackendError> {
        Ok(Start::Local(Box::new(PauseThenBurstStream {
            sent: 0,
            burst: self.0,
        })))
    }
}

struct PauseThenBurstStream {
    sent: usize,
    burst: usize,
}

impl EventSource for PauseThenBurstStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        sink.content("b");
        self.sent += 1;
        match self.sent {
            1 => Next::After(Duration::from_millis(1)),
            sent if sent == 1 + self.burst => Next::Complete,
            _ => Next::After(Duration::ZERO),
        }
    }
}

/// Emits 64 KiB events as fast as the client takes them.
struct Firehose;

impl Backend for Firehose {
    fn name(&self) -> &'static str {
        "firehose"
    }
    fn start(
        &mut self,
        _: HandoffData,
        _: Option<Attached>,
        _: Instant,
    ) -> Result<Start, BackendError> {
        Ok(Start::Local(Box::new(FirehoseStream)))
    }
}

struct FirehoseStream;

impl EventSource for FirehoseStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        sink.content(&"x".repeat(64 * 1024));
        Next::After(Duration::ZERO)
    }
}

#[test]
fn drain_lets_streams_finish_and_refuses_new_work() {
    let mut h = Harness::new("drain", |c| {
        c.backend.mock.message_delay = Duration::from_millis(10)
    });
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    let now = h.now();
    h.reactor.begin_drain(now);
    assert!(
        !h.path.exists(),
        "the socket file goes when draining starts"
    );
    let body = h.collect(&mut client);
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(h.turn(), Turn::Finished);
}

#[test]
fn the_drain_deadline_ends_streams_with_an_error_event() {
    let mut h = Harness::new("deadline", |c| {
        c.backend.mock.message_delay = Duration::from_secs(5);
    });
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    let now = h.now();
    h.reactor.begin_drain(now);
    // The default shutdown timeout is 120 s.
    h.skip(Duration::from_secs(119));
    h.turn();
    assert_eq!(h.reactor.connections(), 1);
    h.skip(Duration::from_secs(1));
    let body = h.collect(&mut client);
    assert!(
        body.ends_with("event: error\ndata: {\"error\":\"server shutting down\"}\n\n"),
        "{body}"
    );
    assert_eq!(h.turn(), Turn::Finished);
}

#[test]
fn a_handoff_completing_during_drain_gets_503() {
    let mut h = Harness::new("drain503", |c| {
        c.backend.mock.message_delay = Duration::from_secs(5)
    });
    let (mut client, server) = tcp_pair();
    let apache = socket::unix_connect(&h.path, SocketType::Stream).unwrap();
    streaming_daemon::sys::fdpass::send_with_fd(
        &apache,
        b"{}",
        std::os::fd::AsRawFd::as_raw_fd(&server),
    )
    .unwrap();
    drop(server);
    h.turn_until(|r| r.connections() == 1);
    let now = h.now();
    h.reactor.begin_drain(now);
    drop(apache);
    let response = h.collect(&mut client);
    assert_eq!(status_line(&response), "HTTP/1.1 503 Service Unavailable");
    assert_eq!(h.turn(), Turn::Finished);
}

/// Panics on demand, to show a panic is confined to its connection.
struct Fragile;

impl Backend for Fragile {
    fn name(&self) -> &'static str {
        "fragile"
    }
    fn start(
        &mut self,
        request: HandoffData,
        _: Option<Attached>,
        _: Instant,
    ) -> Result<Start, BackendError> {
        if request.prompt == "panic at start" {
            panic!("deliberate panic at start");
        }
        if request.prompt == "panic at once" {
            return Ok(Start::Local(Box::new(FragileStream {
                prompt: request.prompt,
                produced: 1,
            })));
        }
        Ok(Start::Local(Box::new(FragileStream {
            prompt: request.prompt,
            produced: 0,
        })))
    }
}

struct FragileStream {
    prompt: String,
    produced: u32,
}

impl EventSource for FragileStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        self.produced += 1;
        if self.prompt.starts_with("panic") && self.produced == 2 {
            panic!("deliberate panic mid-stream");
        }
        sink.content("tick");
        if self.produced == 3 {
            Next::Complete
        } else {
            Next::After(Duration::from_millis(10))
        }
    }
}

#[test]
fn a_panic_closes_only_its_own_connection() {
    let mut h = Harness::with_backend("panic", Config::default(), Box::new(Fragile));
    let (mut healthy, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"fine"}"#, &server);
    drop(server);
    let (mut at_start, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"panic at start"}"#, &server);
    drop(server);
    let (mut later, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"panic later"}"#, &server);
    drop(server);
    // The first events are asked for right after the head is prepared, before anything is
    // written: a panic there still gets the 500.
    let (mut at_once, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"panic at once"}"#, &server);
    drop(server);

    let response = h.collect(&mut at_start);
    assert_eq!(status_line(&response), "HTTP/1.1 500 Internal Server Error");
    let response = h.collect(&mut at_once);
    assert_eq!(status_line(&response), "HTTP/1.1 500 Internal Server Error");
    let cut = h.collect(&mut later);
    assert!(
        cut.starts_with(SSE_HEAD) && !cut.contains("[DONE]"),
        "{cut}"
    );
    let body = h.collect(&mut healthy);
    assert!(
        body.ends_with("data: {\"content\":\"tick\"}\n\ndata: [DONE]\n\n"),
        "{body}"
    );
    h.turn_until(|r| r.connections() == 0);
}

#[test]
fn a_socketpair_client_is_served_like_a_tcp_one() {
    let mut h = Harness::new("pair", |_| {});
    let (client, server) = socket::unix_pair(SocketType::Stream).unwrap();
    h.hand_off(b"\0", &server);
    drop(server);
    let mut client = std::os::unix::net::UnixStream::from(client);
    client.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    loop {
        assert!(started.elapsed() < LIMIT);
        h.turn();
        let mut buf = [0u8; 4096];
        match std::io::Read::read(&mut client, &mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    let body = String::from_utf8(received).unwrap();
    assert_eq!(contents(&body)[0], "Hello from Rust daemon! Prompt: ");
    let _ = client.write(b"");
}

/// Runs the handoff's prompt with `sh -c` (10 bytes of output kept, 300 ms allowed) and says
/// what came of it in one content event: the general program mechanism, without typing.
struct Shell;

impl Backend for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }
    fn start(
        &mut self,
        request: HandoffData,
        _: Option<Attached>,
        _: Instant,
    ) -> Result<Start, BackendError> {
        Ok(Start::Local(Box::new(ShellStream {
            script: Some(request.prompt),
            result: None,
        })))
    }
}

struct ShellStream {
    script: Option<String>,
    result: Option<CommandResult>,
}

impl EventSource for ShellStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        if let Some(script) = self.script.take() {
            return Next::Run(Command {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), script],
                timeout: Duration::from_millis(300),
                max_output: 10,
            });
        }
        let said = match self.result.take() {
            Some(CommandResult::Exited {
                success,
                stdout,
                truncated,
            }) => format!(
                "success={success} truncated={truncated} stdout={}",
                String::from_utf8_lossy(&stdout)
            ),
            Some(CommandResult::Failed(why)) => format!("failed: {why}"),
            None => "no result".to_string(),
        };
        sink.content(&said);
        Next::Complete
    }

    fn on_command(&mut self, result: CommandResult) {
        self.result = Some(result);
    }
}

/// The children of this process (the reactor runs in the test's thread), zombies included.
fn children() -> String {
    // SAFETY: (test) gettid takes nothing and cannot fail.
    let tid = unsafe { libc::gettid() };
    std::fs::read_to_string(format!("/proc/self/task/{tid}/children")).unwrap_or_default()
}

fn run_shell(h: &mut Harness, script: &str) -> String {
    let (mut client, server) = tcp_pair();
    let data = serde_json::json!({ "prompt": script }).to_string();
    h.hand_off(data.as_bytes(), &server);
    drop(server);
    let body = h.collect(&mut client);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    contents(&body).concat()
}

#[test]
fn a_program_is_run_through_the_loop_bounded_in_bytes_and_time() {
    let mut h = Harness::with_backend("shell", Config::default(), Box::new(Shell));
    assert_eq!(
        run_shell(&mut h, "printf 0123456789abcdef; exit 3"),
        "success=false truncated=true stdout=0123456789"
    );
    // Stdout closed well before the exit: the exit status is still waited for, without blocking.
    assert_eq!(
        run_shell(&mut h, "printf ok; exec >&-; sleep 0.1"),
        "success=true truncated=false stdout=ok"
    );
    let (mut client, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"sleep 5"}"#, &server);
    drop(server);
    h.turn_until(|_| !children().trim().is_empty());
    h.skip(Duration::from_millis(300));
    let body = h.collect(&mut client);
    assert_eq!(
        contents(&body).concat(),
        "failed: did not finish in time and was killed"
    );
    h.turn_until(|_| children().trim().is_empty());
}

#[test]
fn a_stream_that_ends_while_its_program_runs_kills_it() {
    let mut config = Config::default();
    config.server.max_stream_duration = Duration::from_millis(100);
    let mut h = Harness::with_backend("shell-max", config, Box::new(Shell));
    let (mut client, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"sleep 5"}"#, &server);
    drop(server);
    h.turn_until(|_| !children().trim().is_empty());
    h.skip(Duration::from_millis(100));
    let body = h.collect(&mut client);
    assert!(
        body.ends_with("event: error\ndata: {\"error\":\"maximum stream duration exceeded\"}\n\n"),
        "{body}"
    );
    h.turn_until(|_| children().trim().is_empty());
}

/// Counts how often its streams are asked for events; always due.
struct Counted(Arc<AtomicUsize>);

impl Backend for Counted {
    fn name(&self) -> &'static str {
        "counted"
    }
    fn start(
        &mut self,
        _: HandoffData,
        _: Option<Attached>,
        _: Instant,
    ) -> Result<Start, BackendError> {
        Ok(Start::Local(Box::new(CountedStream(self.0.clone()))))
    }
}

struct CountedStream(Arc<AtomicUsize>);

impl EventSource for CountedStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        self.0.fetch_add(1, Ordering::Relaxed);
        sink.content("c");
        Next::After(Duration::ZERO)
    }
}

#[test]
fn a_connection_re_armed_for_now_waits_for_the_next_turn() {
    let asked = Arc::new(AtomicUsize::new(0));
    let backend = Box::new(Counted(asked.clone()));
    let mut h = Harness::with_backend("rearm", Config::default(), backend);
    // Time stands still: the source is due at every turn, and only the turn may stop it.
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    // The client socket's first writable event (it is writable from the start) is a turn
    // of its own.
    h.turn();
    let mut received = Vec::new();
    for _ in 0..5 {
        read_available(&mut client, &mut received);
        let before = asked.load(Ordering::Relaxed);
        h.turn();
        let during = asked.load(Ordering::Relaxed) - before;
        // One connection's rounds per event; its timer, re-armed for "now" while it ran, is
        // not run again in the same turn (that would double it, or never end).
        assert!(
            (1..=64).contains(&during),
            "asked {during} times in one turn"
        );
    }
}

#[test]
fn stale_timer_entries_are_compacted() {
    let mut h = Harness::new("compact", |c| {
        c.backend.mock.message_delay = Duration::from_secs(10)
    });
    // Each stream waits for its next event with an entry in the timer heap; a client that
    // leaves closes its stream at once and leaves that entry behind, stale.
    let mut clients = Vec::new();
    for n in 1..=1500 {
        let (client, server) = socket::unix_pair(SocketType::Stream).unwrap();
        h.hand_off(b"{}", &server);
        clients.push(client);
        if n % 100 == 0 {
            h.turn_until(|r| r.tally().active_streams == n);
        }
    }
    assert!(h.reactor.timer_entries() >= 1500);
    clients.clear();
    h.turn_until(|r| r.connections() == 0);
    h.turn();
    assert!(
        h.reactor.timer_entries() <= 1024,
        "{} stale entries kept",
        h.reactor.timer_entries()
    );
}

/// A reactor with the openai backend, its upstream at `address`.
fn openai_harness(name: &str, address: SocketAddr) -> Harness {
    openai_harness_with(name, address, |_| {})
}

fn openai_harness_with(
    name: &str,
    address: SocketAddr,
    adjust: impl FnOnce(&mut Config),
) -> Harness {
    let mut config = Config::default();
    adjust(&mut config);
    config.backend.provider = "openai".into();
    config.backend.openai.api_base = format!("http://{address}/v1");
    let backends = Backends::create(&config).unwrap();
    let target = backends.targets()[0].clone();
    let timeouts = config.backend.upstream.clone();
    let mut h = Harness::with_backends(name, config, backends);
    h.reactor.attach_upstream(Upstream::new(
        target,
        None,
        timeouts,
        None,
        vec![address],
        0,
    ));
    h
}

fn upstream_address(upstream: &FakeUpstream) -> SocketAddr {
    upstream.base.trim_start_matches("http://").parse().unwrap()
}

#[test]
fn no_upstream_head_within_the_timeout_is_a_504() {
    let (_gate_open, gate) = gate();
    let upstream = FakeUpstream::start(Kind::Plain, vec![vec![Action::WaitFor(gate)]]);
    let mut h = openai_harness("oa-head", upstream_address(&upstream));
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|_| upstream.requests().len() == 1);
    // The default response-head timeout is 60 s.
    h.skip(Duration::from_secs(59));
    h.turn();
    assert_eq!(h.reactor.connections(), 1);
    h.skip(Duration::from_secs(1));
    let response = h.collect(&mut client);
    assert_eq!(status_line(&response), "HTTP/1.1 504 Gateway Timeout");
}

/// Hands off a request and turns the reactor until the client has the `"x"` the upstream's
/// first chunk carries; the client and what it has read so far.
fn stream_until_x(h: &mut Harness) -> (TcpStream, Vec<u8>) {
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let mut received = Vec::new();
    let started = Instant::now();
    while !String::from_utf8_lossy(&received).contains("\"x\"") {
        assert!(started.elapsed() < LIMIT);
        h.turn();
        read_available(&mut client, &mut received);
    }
    (client, received)
}

#[test]
fn an_upstream_silent_past_the_gap_timeout_ends_with_an_error_event() {
    let (_gate_open, gate) = gate();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&delta("\"x\""))).into_bytes()),
            Action::WaitFor(gate),
        ]],
    );
    let mut h = openai_harness("oa-gap", upstream_address(&upstream));
    let (mut client, _) = stream_until_x(&mut h);
    // The default idle gap timeout is 120 s.
    h.skip(Duration::from_secs(119));
    h.turn();
    assert_eq!(h.reactor.connections(), 1);
    h.skip(Duration::from_secs(1));
    let rest = h.collect(&mut client);
    assert!(
        rest.ends_with("event: error\ndata: {\"error\":\"the upstream API stopped sending\"}\n\n"),
        "{rest}"
    );
}

#[test]
fn an_upstream_end_that_arrives_with_its_last_bytes_is_read_at_once() {
    // The last bytes and the end of file come in one readable event: the read that takes the
    // bytes empties the socket, and no later event announces the end, which must still be
    // read now (as a cut: the chunk is unfinished), not found by the idle gap timeout.
    let (release, gate) = gate();
    let (closed, upstream_closed) = mpsc::channel();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&delta("\"x\""))).into_bytes()),
            Action::WaitFor(gate),
            send("40\r\ndata: {\"choices\":[{\"delta\""),
            Action::CloseAndNotify(closed),
        ]],
    );
    let mut h = openai_harness("oa-end", upstream_address(&upstream));
    let (mut client, mut received) = stream_until_x(&mut h);
    release.send(()).unwrap();
    upstream_closed.recv_timeout(LIMIT).unwrap();
    // No time passes on the reactor's clock from here on.
    h.turn_until(|reactor| reactor.connections() == 0);
    read_available(&mut client, &mut received);
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("event: error\n"), "{text}");
    assert!(!text.contains("stopped sending"), "{text}");
}

#[test]
fn an_upstream_that_never_accepts_the_connection_is_unreachable_after_the_connect_timeout() {
    use std::os::fd::AsRawFd;
    // A listener whose accept queue holds one connection, already taken: the kernel drops
    // the daemon's SYN, so its connect neither succeeds nor fails.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: (test) listen on a valid listening socket only changes its backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let address = listener.local_addr().unwrap();
    let _filler = TcpStream::connect(address).unwrap();
    let mut h = openai_harness("oa-connect", address);
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    for _ in 0..3 {
        h.turn();
    }
    // The default connect timeout is 10 s.
    h.skip(Duration::from_secs(10));
    let response = h.collect(&mut client);
    assert_eq!(status_line(&response), "HTTP/1.1 502 Bad Gateway");
}

#[test]
fn a_client_that_half_closes_after_its_request_still_gets_its_stream() {
    let mut h = Harness::new("halfclose", |c| {
        c.backend.mock.message_delay = Duration::from_millis(1)
    });
    let (mut client, server) = tcp_pair();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    h.hand_off(b"{}", &server);
    drop(server);
    let body = h.collect_skipping(&mut client, Duration::from_millis(1));
    assert_eq!(contents(&body).len(), 18, "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[test]
fn a_client_that_closed_is_noticed_at_the_next_write() {
    let mut h = Harness::new("closed", |c| {
        c.backend.mock.message_delay = Duration::from_secs(1)
    });
    let (client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    drop(client);
    // End of file alone is not a goodbye; the writes that follow find the client gone.
    h.turn_until_skipping(Duration::from_secs(1), |r| r.connections() == 0);
    assert_eq!(h.reactor.tally().streams_failed, 1);
}

#[test]
fn past_1024_pending_refusals_the_daemon_stops_accepting_instead_of_dropping() {
    // Each unfinished handoff costs this process four fds (both ends of Apache's connection and
    // of the client's): raise the soft limit for the run.
    streaming_daemon::sys::limits::raise_open_files(12_000).unwrap();
    let mut h = Harness::new("flood", |c| {
        c.server.max_connections = 1;
        c.backend.mock.message_delay = Duration::from_secs(10);
    });
    h.frozen = Some(Instant::now());
    let (_streaming, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|r| r.tally().active_streams == 1);
    // Handoffs whose fd arrives but whose data never ends: each waits for its timeout, so
    // their 503s stay pending.
    let flood: Vec<_> = (0..1030).map(|_| unfinished_handoff(&h)).collect();
    h.turn_until(|r| r.tally().rejected == 1024);
    for _ in 0..5 {
        h.turn();
    }
    // The other six wait in the backlog, unread but not closed.
    assert_eq!(h.reactor.tally().rejected, 1024);
    assert_eq!(h.reactor.connections(), 1025);
    h.skip(Duration::from_secs(5));
    h.turn_until(|r| r.tally().rejected == 1030);
    h.skip(Duration::from_secs(5));
    h.turn_until(|r| r.connections() == 1);
    for (mut client, apache) in flood {
        drop(apache);
        let response = read_to_end(&mut client, LIMIT);
        assert_eq!(status_line(&response), "HTTP/1.1 503 Service Unavailable");
    }
}

/// An error answer whose body comes after its head: the body is waited for (for the log), at
/// most a second, before the client gets its 502.
#[test]
fn an_error_body_after_its_head_is_read_before_the_client_is_answered() {
    let body = r#"{"error":{"message":"the model is overloaded"}}"#;
    for late in [true, false] {
        let (head_sent, head_was_sent) = gate();
        let (_open, closed_gate) = gate();
        let (open_body, body_gate) = gate();
        let head = format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let upstream = FakeUpstream::start(
            Kind::Plain,
            vec![vec![
                Action::Send(head.into_bytes()),
                Action::Notify(head_sent),
                Action::WaitFor(if late { body_gate } else { closed_gate }),
                Action::Send(body.as_bytes().to_vec()),
            ]],
        );
        let mut h = openai_harness("oa-error-body", upstream_address(&upstream));
        h.frozen = Some(Instant::now());
        let (mut client, server) = tcp_pair();
        h.hand_off(b"{}", &server);
        drop(server);
        h.turn_until(|_| head_was_sent.try_recv().is_ok());
        for _ in 0..5 {
            h.turn();
        }
        let mut received = Vec::new();
        read_available(&mut client, &mut received);
        assert!(received.is_empty(), "answered before the body came");
        if late {
            open_body.send(()).unwrap();
        } else {
            // The body never comes: a second later the client is answered anyway.
            h.skip(Duration::from_secs(1));
        }
        let response = h.collect(&mut client);
        assert_eq!(status_line(&response), "HTTP/1.1 502 Bad Gateway");
    }
}

#[test]
fn a_408_on_a_pooled_connection_is_retried_on_a_fresh_one() {
    let timed_out = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n";
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            ok_stream(&[&delta("\"first\""), DONE_EVENT]),
            vec![Action::Send(timed_out.as_bytes().to_vec()), Action::Close],
            ok_stream(&[&delta("\"second\""), DONE_EVENT]),
        ],
    );
    let mut h = openai_harness("oa-408", upstream_address(&upstream));
    for text in ["first", "second"] {
        let (mut client, server) = tcp_pair();
        h.hand_off(b"{}", &server);
        drop(server);
        let body = h.collect(&mut client);
        assert_eq!(contents(&body), vec![text.to_string()], "{body}");
    }
    assert_eq!(upstream.connections(), 2);
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn a_partial_upstream_line_counts_against_the_memory_budget() {
    let (_open, held) = gate();
    // 100 KB of one SSE line with no line end yet: the relay must hold it.
    let partial = format!(
        "{SSE_OK_CHUNKED}{:x}\r\ndata: {}\r\n",
        100_006,
        "x".repeat(100_000)
    );
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(partial.into_bytes()),
            Action::WaitFor(held),
        ]],
    );
    let mut h = openai_harness_with("oa-budget", upstream_address(&upstream), |c| {
        c.server.mem_limit = Some(64 * 1024);
    });
    let (mut first, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let mut received = Vec::new();
    h.turn_until(|_| {
        read_available(&mut first, &mut received);
        received.len() >= SSE_HEAD.len()
    });
    for _ in 0..5 {
        h.turn();
    }
    let (mut second, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let response = h.collect(&mut second);
    assert_eq!(status_line(&response), "HTTP/1.1 503 Service Unavailable");
}
