//! The typing backend on the reactor's clock: its pauses, the fortune timeout and the
//! daemon-wide rate limit of fortune calls are stepped through, not waited for; so are answers
//! typed from an API (`use_api`): their pauses, the pooling of their upstream connection and
//! the 64 KiB backlog that stops reading it. (The real binary typing real answers is
//! `typing_e2e.rs`.)

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::harness::{Harness, LIMIT};
use common::upstream::{
    chunk, delta, gate, ok_stream, Action, FakeUpstream, Kind, DONE_EVENT, FINISH_CHUNK,
    LAST_CHUNK, ROLE_CHUNK, SSE_OK_CHUNKED,
};
use common::*;
use streaming_daemon::backends::Backends;
use streaming_daemon::config::Config;
use streaming_daemon::upstream::Upstream;

const INTRO: &str = "I don't know anything about that, but ";
/// The longest pause after a character (after `.`, `!` or `?`): one turn per character.
const LONGEST_PAUSE: Duration = Duration::from_millis(150);

/// A `#!/bin/sh` fortune in a directory of this test's own, appending each call to `calls`.
struct Fortune {
    dir: PathBuf,
}

impl Fortune {
    fn new(name: &str, body: &str) -> Fortune {
        let dir =
            std::env::temp_dir().join(format!("sd-typing-steps-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let calls = dir.join("calls");
        let script = format!("#!/bin/sh\necho \"$@\" >> '{}'\n{body}\n", calls.display());
        let path = dir.join("fortune");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fortune { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("fortune")
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for Fortune {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn typing(name: &str, fortune: &Path) -> Harness {
    let fortune = fortune.to_path_buf();
    Harness::new(name, move |c| {
        c.backend.provider = "typing".into();
        c.backend.typing.fortune_path = fortune;
    })
}

/// The characters a typing stream typed.
fn typed(body: &str) -> String {
    data_lines(body)
        .iter()
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|event| event["char"].as_str().map(str::to_string))
        .collect()
}

/// The children of this process (the reactor runs in the test's thread), zombies included.
fn children() -> String {
    // SAFETY: (test) gettid takes nothing and cannot fail.
    let tid = unsafe { libc::gettid() };
    std::fs::read_to_string(format!("/proc/self/task/{tid}/children")).unwrap_or_default()
}

#[test]
fn a_slow_fortune_is_killed_at_its_timeout_and_a_saying_is_typed() {
    let fortune = Fortune::new("slow", "sleep 30.4323\necho 'Too late.'");
    let mut h = typing("ty-step-slow", &fortune.path());
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|_| !children().trim().is_empty());
    // Just short of the 500 ms timeout nothing is typed yet.
    h.skip(Duration::from_millis(499));
    h.turn();
    let mut received = Vec::new();
    read_available(&mut client, &mut received);
    assert_eq!(String::from_utf8_lossy(&received), SSE_HEAD);
    h.skip(Duration::from_millis(1));
    let rest = h.collect_skipping(&mut client, LONGEST_PAUSE);
    let answer = typed(&rest);
    assert!(
        answer.starts_with(INTRO) && !answer.contains("late"),
        "{answer}"
    );
    assert!(rest.ends_with("data: [DONE]\n\n"));
    h.turn_until(|_| children().trim().is_empty());
}

#[test]
fn fortune_is_called_at_most_once_per_ten_milliseconds() {
    let fortune = Fortune::new("rate", "echo 'Go.'");
    let mut h = typing("ty-step-rate", &fortune.path());
    h.frozen = Some(Instant::now());
    // Twenty streams start at the same instant: one may call fortune, the rest type a saying.
    let mut clients: Vec<_> = (0..20)
        .map(|_| {
            let (client, server) = tcp_pair();
            h.hand_off(b"{}", &server);
            client
        })
        .collect();
    h.turn_until(|r| r.tally().streams_started == 20);
    // The clock skips while streams are read below: let the program finish in real time first
    // (its exit status is looked for every 2 ms of the reactor's time).
    h.turn_until_skipping(Duration::from_millis(2), |_| children().trim().is_empty());
    // Ten milliseconds later, one more may.
    h.skip(Duration::from_millis(10));
    let (client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    clients.push(client);
    h.turn_until(|r| r.tally().streams_started == 21);
    h.turn_until_skipping(Duration::from_millis(2), |_| {
        fortune.calls() == 2 && children().trim().is_empty()
    });
    let mut quoted = 0;
    for client in &mut clients {
        let body = h.collect_skipping(client, LONGEST_PAUSE);
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        let answer = typed(&body);
        assert!(answer.starts_with(INTRO), "{answer}");
        if answer == format!("{INTRO}go.") {
            quoted += 1;
        }
    }
    assert_eq!((fortune.calls(), quoted), (2, 2));
}

#[test]
fn each_character_waits_for_its_pause() {
    let fortune = Fortune::new("pace", "echo 'Go.'");
    let mut h = typing("ty-step-pace", &fortune.path());
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    h.hand_off(br#"{"prompt":"Tell me about streaming"}"#, &server);
    drop(server);
    let mut received = Vec::new();
    h.turn_until(|r| r.tally().streams_started == 1);
    for _ in 0..3 {
        h.turn();
    }
    read_available(&mut client, &mut received);
    // The fixed answer starts "When": one character at once, then one per pause of 25 ms.
    assert_eq!(typed(&String::from_utf8_lossy(&received)), "W");
    for (pause_ms, expected) in [(24, "W"), (1, "Wh"), (25, "Whe"), (25, "When")] {
        h.skip(Duration::from_millis(pause_ms));
        h.turn();
        read_available(&mut client, &mut received);
        assert_eq!(typed(&String::from_utf8_lossy(&received)), expected);
    }
}

#[test]
fn a_failing_fortune_types_a_saying() {
    let fortune = Fortune::new("failing", "echo 'Half a quote'\nexit 1");
    let mut h = typing("ty-step-failing", &fortune.path());
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|_| fortune.calls() == 1 && children().trim().is_empty());
    let body = h.collect_skipping(&mut client, LONGEST_PAUSE);
    let answer = typed(&body);
    assert!(
        answer.starts_with(INTRO) && !answer.contains("Half"),
        "{answer}"
    );
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(h.reactor.tally().streams_completed, 1);
}

#[test]
fn a_missing_fortune_types_a_saying() {
    let mut h = typing("ty-step-missing", Path::new("/nonexistent/fortune"));
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let body = h.collect_skipping(&mut client, LONGEST_PAUSE);
    assert!(typed(&body).starts_with(INTRO), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
}

// ---- `backend.typing.use_api`: answers typed from a (fake) OpenAI-compatible API ----

/// A reactor typing from the API at `upstream` (plain TCP), with metrics served at the
/// returned address.
fn typing_api(name: &str, upstream: &FakeUpstream) -> (Harness, SocketAddr) {
    let address = upstream_address(upstream);
    let adjust = |c: &mut Config| {
        c.backend.provider = "typing".into();
        c.backend.typing.use_api = true;
        c.backend.openai.api_key = Some("sk-steps".into());
        c.backend.openai.api_base = format!("http://{address}/v1");
    };
    let mut config = Config::default();
    adjust(&mut config);
    let target = Backends::create(&config).unwrap().targets()[0].clone();
    let (mut h, metrics) = Harness::with_metrics(name, adjust);
    h.reactor.attach_upstream(Upstream::new(
        target,
        None,
        config.backend.upstream.clone(),
        None,
        vec![address],
        0,
    ));
    (h, metrics)
}

fn upstream_address(upstream: &FakeUpstream) -> SocketAddr {
    upstream.base.trim_start_matches("http://").parse().unwrap()
}

/// The body of a `GET /metrics`, the loop turned until the whole response is in.
fn scrape(h: &mut Harness, metrics: SocketAddr) -> String {
    let mut stream = TcpStream::connect(metrics).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    h.turn_until(|_| read_available(&mut stream, &mut received).is_none());
    String::from_utf8(received).unwrap()
}

/// The value of an unlabelled or fully labelled series in a scrape.
fn series(scrape: &str, name: &str) -> u64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
        .parse()
        .unwrap()
}

/// Turns the loop (the clock as it stands) until the client has received `wanted` (checked on
/// what was typed so far), and a few turns more in which nothing else may come.
fn typed_exactly(h: &mut Harness, client: &mut TcpStream, received: &mut Vec<u8>, wanted: &str) {
    h.turn_until(|_| {
        read_available(client, received);
        typed(&String::from_utf8_lossy(received)).len() >= wanted.len()
    });
    for _ in 0..5 {
        h.turn();
    }
    read_available(client, received);
    assert_eq!(typed(&String::from_utf8_lossy(received)), wanted);
}

#[test]
fn api_answers_are_typed_with_the_pauses_and_done_follows_the_last_one() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            ok_stream(&[
                ROLE_CHUNK,
                &delta("\"H\u{e9}\""),
                &delta("\".\""),
                FINISH_CHUNK,
                DONE_EVENT,
            ]),
            ok_stream(&[&delta("\"ok\""), DONE_EVENT]),
        ],
    );
    let (mut h, metrics) = typing_api("ty-api-pace", &upstream);
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    // The fixed prompt too comes from the API.
    h.hand_off(br#"{"prompt":"Tell me about streaming"}"#, &server);
    drop(server);
    let mut received = Vec::new();
    typed_exactly(&mut h, &mut client, &mut received, "H");
    // The body has ended: its connection is back in the pool while the rest is typed, so a
    // second stream now takes it.
    let (mut second, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let mut second_received = Vec::new();
    typed_exactly(&mut h, &mut second, &mut second_received, "o");
    assert_eq!(upstream.connections(), 1, "the connection was pooled");

    for (pause_ms, expected) in [(24, "H"), (1, "H\u{e9}"), (24, "H\u{e9}"), (1, "H\u{e9}.")] {
        h.skip(Duration::from_millis(pause_ms));
        typed_exactly(&mut h, &mut client, &mut received, expected);
    }
    // `[DONE]` waits for the pause after the last character: 150 ms after a `.`.
    h.skip(Duration::from_millis(149));
    for _ in 0..5 {
        h.turn();
    }
    read_available(&mut client, &mut received);
    assert!(!String::from_utf8_lossy(&received).contains("[DONE]"));
    h.skip(Duration::from_millis(1));
    let rest = h.collect(&mut client);
    let body = format!("{}{rest}", String::from_utf8(received).unwrap());
    assert_eq!(
        body,
        format!(
            "{SSE_HEAD}data: {{\"char\":\"H\",\"index\":0}}\n\ndata: {{\"char\":\"\u{e9}\",\"index\":1}}\n\n\
             data: {{\"char\":\".\",\"index\":3}}\n\ndata: [DONE]\n\n"
        )
    );
    let rest = h.collect_skipping(&mut second, LONGEST_PAUSE);
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");

    let tally = h.reactor.tally();
    assert_eq!((tally.streams_completed, tally.chunks_sent), (2, 5));
    let scrape = scrape(&mut h, metrics);
    assert_eq!(
        series(&scrape, "daemon_backend_requests_total{backend=\"typing\"}"),
        2
    );
}

/// Bytes the kernel holds unread on this process's connections to `peer`: what the reactor (in
/// the test's thread) has not read of the upstream's answer. The fake upstream's own end, in
/// this process too, has the reactor's port as its peer, so it is not counted.
fn unread_from(peer: SocketAddr) -> usize {
    let SocketAddr::V4(peer) = peer else {
        panic!("the fake upstream listens on 127.0.0.1");
    };
    let mut unread = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: (test) an all-zero sockaddr_in is a valid value.
        let mut address: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: (test) getpeername writes at most `len` bytes to `address`; an fd that is not
        // a connected socket (or was closed meanwhile) makes it fail, and is skipped.
        let got = unsafe {
            libc::getpeername(
                fd,
                (&mut address as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        let matches = got == 0
            && address.sin_family == libc::AF_INET as libc::sa_family_t
            && u16::from_be(address.sin_port) == peer.port()
            && u32::from_be(address.sin_addr.s_addr) == u32::from(*peer.ip());
        if !matches {
            continue;
        }
        let mut queued: libc::c_int = 0;
        // SAFETY: (test) FIONREAD writes one int, the bytes waiting to be read.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) } == 0 {
            unread += usize::try_from(queued).unwrap_or(0);
        }
    }
    unread
}

#[test]
fn more_than_64_kib_untyped_stops_reading_the_upstream_until_typing_catches_up() {
    // 66,000 characters: the last event takes the queue over the 64 KiB limit by 464 (text is
    // queued a whole event at a time, so no read boundary can do it earlier). Then, once the
    // test opens the gate, the end of the answer, which must not be read until typing has
    // brought the backlog to the limit.
    let mut first: String = (0..65)
        .map(|_| delta(&format!("\"{}\"", "a".repeat(1000))))
        .collect();
    first.push_str(&delta(&format!("\"{}\"", "a".repeat(536))));
    first.push_str(&delta(&format!("\"{}\"", "a".repeat(464))));
    let (first_sent, first_was_sent) = gate();
    let (open, held) = gate();
    let (rest_sent, rest_was_sent) = gate();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&first)).into_bytes()),
            Action::Notify(first_sent),
            Action::WaitFor(held),
            Action::Send(
                format!(
                    "{}{}{LAST_CHUNK}",
                    chunk(&delta("\"END\"")),
                    chunk(DONE_EVENT)
                )
                .into_bytes(),
            ),
            Action::Notify(rest_sent),
        ]],
    );
    let address = upstream_address(&upstream);
    let (mut h, _) = typing_api("ty-api-backlog", &upstream);
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.turn_until(|_| first_was_sent.try_recv().is_ok());
    let mut received = Vec::new();
    typed_exactly(&mut h, &mut client, &mut received, "a");
    open.send(()).unwrap();
    h.turn_until(|_| rest_was_sent.try_recv().is_ok());
    // The end is there to read, and stays unread. Not waiting on the upstream, the stream
    // outlives the idle gap timeout (120 s) too.
    h.skip(Duration::from_secs(121));
    for _ in 0..50 {
        h.turn();
    }
    assert!(unread_from(address) > 0, "the upstream was read");
    read_available(&mut client, &mut received);
    assert_eq!(typed(&String::from_utf8_lossy(&received)), "aa");
    // Typing 464 characters brings the backlog to the limit: then reading resumes at once.
    let started = Instant::now();
    while unread_from(address) > 0 {
        assert!(started.elapsed() < LIMIT, "reading did not resume");
        h.skip(Duration::from_millis(25));
        h.turn();
        read_available(&mut client, &mut received);
    }
    let received = String::from_utf8(received).unwrap();
    let typed_so_far = typed(&received).len();
    assert_eq!(
        typed_so_far, 464,
        "read again after {typed_so_far} characters"
    );
    assert!(!received.contains("error"), "{received}");
}

#[test]
fn an_answer_cut_mid_way_ends_with_an_error_at_once_and_the_rest_untyped() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&delta("\"abc\""))).into_bytes()),
            Action::Close,
        ]],
    );
    let (mut h, _) = typing_api("ty-api-cut", &upstream);
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    // The clock stands still: only the first character is due before the cut is read.
    let body = h.collect(&mut client);
    assert_eq!(
        body,
        format!(
            "{SSE_HEAD}data: {{\"char\":\"a\",\"index\":0}}\n\nevent: error\ndata: {{\"error\":\"the \
             upstream connection closed before the answer was complete\"}}\n\n"
        )
    );
    assert_eq!(h.reactor.tally().streams_failed, 1);
}

#[test]
fn a_silent_upstream_still_times_out_while_its_text_is_typed() {
    let (_open, held) = gate();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![
            Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&delta("\"xy\""))).into_bytes()),
            Action::WaitFor(held),
        ]],
    );
    let (mut h, _) = typing_api("ty-api-gap", &upstream);
    h.frozen = Some(Instant::now());
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    let mut received = Vec::new();
    typed_exactly(&mut h, &mut client, &mut received, "x");
    h.skip(Duration::from_millis(25));
    typed_exactly(&mut h, &mut client, &mut received, "xy");
    // The default idle gap timeout is 120 s, counted from the last read.
    h.skip(Duration::from_secs(119));
    for _ in 0..5 {
        h.turn();
    }
    assert_eq!(h.reactor.connections(), 1);
    h.skip(Duration::from_secs(1));
    let rest = h.collect(&mut client);
    assert_eq!(
        rest,
        "event: error\ndata: {\"error\":\"the upstream API stopped sending\"}\n\n"
    );
}
