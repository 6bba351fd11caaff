//! Resumable streams (SPEC §2.1) on the stepped loop: the synthetic clock paces the mock's
//! events and skips past the resume window, so no test waits for either. Two reactors sharing
//! one daemon's counts show a resume reaching the worker that runs the stream.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::harness::{Harness, LIMIT};
use common::*;
use streaming_daemon::config::Config;
use streaming_daemon::reactor::Reactor;

const EVENT_GAP: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(30);

fn resumable(c: &mut Config) {
    c.server.resume_window = WINDOW;
    c.backend.mock.message_delay = EVENT_GAP;
}

/// The reactor's metrics, rendered as a scrape would.
fn metrics(reactor: &Reactor) -> String {
    let tally = reactor.tally();
    let all = tally.all_metrics().unwrap();
    let refs: Vec<_> = all.iter().map(|m| m.as_ref()).collect();
    let mut out = Vec::new();
    streaming_daemon::metrics::render(&refs, tally.gauges(), None, &mut out);
    String::from_utf8(out).unwrap()
}

fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
        .parse()
        .unwrap()
}

/// Complete SSE blocks after the head.
fn blocks(body: &str) -> Vec<String> {
    let rest = body.split_once("\r\n\r\n").map_or("", |(_, rest)| rest);
    let mut blocks: Vec<String> = rest.split_inclusive("\n\n").map(str::to_string).collect();
    if blocks.last().is_some_and(|b| !b.ends_with("\n\n")) {
        blocks.pop();
    }
    blocks
}

/// The last `id:` a client received.
fn last_id(body: &str) -> String {
    body.lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id")
        .to_string()
}

/// The body with the stream's random id replaced, to compare two streams.
fn normalized(body: &str) -> String {
    body.lines()
        .map(|l| match l.strip_prefix("id: ") {
            Some(id) => format!("id: S{}", &id[32..]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turns (each moving the clock by one event gap) until the client has `events` events.
fn read_events(h: &mut Harness, client: &mut TcpStream, received: &mut Vec<u8>, events: usize) {
    let started = Instant::now();
    while blocks(&String::from_utf8_lossy(received)).len() < events {
        assert!(started.elapsed() < LIMIT, "only {received:?}");
        h.skip(EVENT_GAP);
        h.turn();
        assert!(read_available(client, received).is_some(), "closed early");
    }
}

fn open(h: &mut Harness, data: &str) -> TcpStream {
    let (client, server) = tcp_pair();
    h.hand_off(data.as_bytes(), &server);
    client
}

/// A client that reads `k` events and closes; the stream goes on detached.
fn detach_after(h: &mut Harness, data: &str, k: usize) -> String {
    let mut client = open(h, data);
    let mut received = Vec::new();
    read_events(h, &mut client, &mut received, k);
    drop(client);
    // The next write meets the closed socket, the one after fails: the stream detaches.
    h.turn_until_skipping(EVENT_GAP, |r| r.tally().gauges().detached_streams == 1);
    String::from_utf8(received).unwrap()
}

#[test]
fn a_stream_resumed_after_its_client_left_is_the_undisturbed_stream() {
    let mut h = Harness::new("resume-mock", resumable);
    let data = r#"{"prompt":"hi","user_id":7}"#;
    let mut whole = open(&mut h, data);
    let undisturbed = h.collect_skipping(&mut whole, EVENT_GAP);
    assert!(undisturbed.contains("retry: 1000\nid: "), "{undisturbed}");
    assert!(
        undisturbed.ends_with("-done\ndata: [DONE]\n\n"),
        "{undisturbed}"
    );

    let first = detach_after(&mut h, data, 3);
    let id = last_id(&first);
    assert!(id.ends_with("-3"), "{id}");
    let mut second = open(&mut h, &format!(r#"{{"resume":"{id}","user_id":"7"}}"#));
    let rest = h.collect_skipping(&mut second, EVENT_GAP);
    assert!(rest.starts_with(SSE_HEAD), "{rest}");
    // What the first client had, up to its third event, then what the second got.
    let joined = format!(
        "{SSE_HEAD}{}{}",
        blocks(&first)[..3].concat(),
        &rest[SSE_HEAD.len()..]
    );
    assert_eq!(normalized(&joined), normalized(&undisturbed));
    assert!(
        rest[SSE_HEAD.len()..].starts_with(&format!("id: {}-4\n", &id[..32])),
        "{rest}"
    );

    h.turn_until(|r| r.connections() == 0);
    let text = metrics(&h.reactor);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"resumed\"}"), 1);
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"resumed_elsewhere\"}"
        ),
        1
    );
    assert_eq!(
        value(&text, "daemon_stream_outcomes_total{outcome=\"completed\"}"),
        2
    );
    assert_eq!(value(&text, "daemon_handoffs_total"), 3);
    assert_eq!(value(&text, "daemon_detached_streams"), 0);
    assert_eq!(value(&text, "daemon_active_streams"), 0);
}

/// A resume handoff for `id` from `user`; returns the client.
fn resume(h: &mut Harness, id: &str, user: i64) -> TcpStream {
    open(h, &format!(r#"{{"resume":"{id}","user_id":{user}}}"#))
}

const NO_CONTENT: &str =
    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[test]
fn a_stream_still_attached_is_taken_over_and_its_old_client_closed() {
    let mut h = Harness::new("resume-take", resumable);
    let mut old = open(&mut h, r#"{"user_id":7}"#);
    let mut received = Vec::new();
    read_events(&mut h, &mut old, &mut received, 2);
    let id = last_id(&String::from_utf8(received.clone()).unwrap());
    let mut new = resume(&mut h, &id, 7);
    // The old client sees its stream end, without [DONE]; the new one gets the rest.
    let started = Instant::now();
    while read_available(&mut old, &mut received).is_some() {
        assert!(started.elapsed() < LIMIT);
        h.turn();
    }
    let old_body = String::from_utf8(received).unwrap();
    assert!(!old_body.contains("[DONE]"), "{old_body}");
    let rest = h.collect_skipping(&mut new, EVENT_GAP);
    assert!(rest.starts_with(SSE_HEAD), "{rest}");
    assert!(
        rest[SSE_HEAD.len()..].starts_with(&format!("id: {}-3\n", &id[..32])),
        "{rest}"
    );
    assert!(rest.ends_with("-done\ndata: [DONE]\n\n"), "{rest}");
    assert_eq!(contents(&rest).len(), 16);
    h.turn_until(|r| r.connections() == 0);
    let text = metrics(&h.reactor);
    assert_eq!(
        value(&text, "daemon_resumes_total{result=\"taken_over\"}"),
        1
    );
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"resumed_elsewhere\"}"
        ),
        1
    );
    assert_eq!(
        value(&text, "daemon_stream_outcomes_total{outcome=\"completed\"}"),
        1
    );
    assert_eq!(value(&text, "daemon_handoffs_total"), 2);
    assert_eq!(
        value(&text, "daemon_stream_errors_total{reason=\"other\"}"),
        0
    );
}

#[test]
fn done_unknown_malformed_and_another_users_ids_get_204() {
    let mut h = Harness::new("resume-204", resumable);
    let first = detach_after(&mut h, r#"{"user_id":7}"#, 2);
    let id = last_id(&first);
    let stream = &id[..32];
    let cases = [
        (format!("{stream}-done"), 7, "done"),
        (format!("{}-1", "0".repeat(32)), 7, "unknown"),
        (format!("{stream}-x"), 7, "unknown"),
        (format!("{stream}-99"), 7, "unknown"),
        (id.clone(), 8, "mismatch"),
    ];
    for (asked, user, _) in &cases {
        let mut client = resume(&mut h, asked, *user);
        assert_eq!(h.collect(&mut client), NO_CONTENT, "{asked}");
    }
    let text = metrics(&h.reactor);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"done\"}"), 1);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"unknown\"}"), 3);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"mismatch\"}"), 1);
    // Another user's attempt changed nothing: the stream is still there for its own.
    assert_eq!(value(&text, "daemon_detached_streams"), 1);
    let mut owner = resume(&mut h, &id, 7);
    let rest = h.collect_skipping(&mut owner, EVENT_GAP);
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    h.turn_until(|r| r.connections() == 0);
    let text = metrics(&h.reactor);
    // SPEC 7.3 with resumes: every handoff ended once.
    let outcomes: u64 = ["completed", "resumed_elsewhere"]
        .iter()
        .map(|o| {
            value(
                &text,
                &format!("daemon_stream_outcomes_total{{outcome=\"{o}\"}}"),
            )
        })
        .sum();
    let refused: u64 = ["done", "unknown", "mismatch"]
        .iter()
        .map(|r| value(&text, &format!("daemon_resumes_total{{result=\"{r}\"}}")))
        .sum();
    assert_eq!(value(&text, "daemon_handoffs_total"), outcomes + refused);
    assert_eq!(
        value(&text, "daemon_stream_errors_total{reason=\"other\"}"),
        0
    );
}

#[test]
fn a_detached_stream_is_dropped_when_its_window_ends() {
    let mut h = Harness::new("resume-window", |c| {
        resumable(c);
        c.backend.mock.message_delay = Duration::from_secs(10);
    });
    let first = detach_after(&mut h, r#"{"user_id":7}"#, 2);
    let id = last_id(&first);
    assert_eq!(h.reactor.connections(), 1);
    h.skip(WINDOW);
    h.turn_until(|r| r.connections() == 0);
    let text = metrics(&h.reactor);
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"client_disconnected\"}"
        ),
        1
    );
    assert_eq!(value(&text, "daemon_detached_streams"), 0);
    assert_eq!(value(&text, "daemon_buffered_bytes"), 0);
    let mut late = resume(&mut h, &id, 7);
    assert_eq!(h.collect(&mut late), NO_CONTENT);
}

#[test]
fn a_detached_stream_whose_replay_buffer_fills_is_dropped() {
    let mut h = Harness::new("resume-full", |c| {
        resumable(c);
        c.server.resume_buffer_bytes = 600;
    });
    let first = detach_after(&mut h, r#"{"user_id":7}"#, 2);
    let id = last_id(&first);
    // Events of about 130 bytes: a few more than fit in 600 come well before the stream's
    // end (18 events) or the window's (30 s), either of which would end it too.
    for _ in 0..12 {
        h.skip(EVENT_GAP);
        h.turn();
    }
    assert_eq!(h.reactor.connections(), 0, "dropped when full");
    let text = metrics(&h.reactor);
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"client_disconnected\"}"
        ),
        1
    );
    assert_eq!(value(&text, "daemon_detached_streams"), 0);
    let mut late = resume(&mut h, &id, 7);
    assert_eq!(h.collect(&mut late), NO_CONTENT);
}

#[test]
fn a_completed_stream_is_kept_for_the_window_then_forgotten() {
    let mut h = Harness::new("resume-kept", resumable);
    let mut client = open(&mut h, r#"{"user_id":7}"#);
    let body = h.collect_skipping(&mut client, EVENT_GAP);
    let id = last_id(&body);
    assert!(id.ends_with("-done"));
    let stream = &id[..32];
    h.turn_until(|r| r.connections() == 0);
    assert!(
        h.reactor.tally().gauges().buffered_bytes > 0,
        "the record counts in mem_limit"
    );
    // A browser that missed the end comes back with event 16: it gets 17, 18 and [DONE].
    let mut late = resume(&mut h, &format!("{stream}-16"), 7);
    let rest = h.collect(&mut late);
    let expected: String = blocks(&body)[16..].concat();
    assert_eq!(rest, format!("{SSE_HEAD}{expected}"));
    // One that saw every event but not the marker gets the marker: now it knows it is whole.
    let mut all = resume(&mut h, &format!("{stream}-18"), 7);
    assert_eq!(
        h.collect(&mut all),
        format!("{SSE_HEAD}id: {stream}-done\ndata: [DONE]\n\n")
    );
    // With [DONE] there is nothing to resume.
    let mut done = resume(&mut h, &id, 7);
    assert_eq!(h.collect(&mut done), NO_CONTENT);
    h.skip(WINDOW);
    h.turn_until(|r| r.tally().gauges().buffered_bytes == 0);
    let mut gone = resume(&mut h, &format!("{stream}-16"), 7);
    assert_eq!(h.collect(&mut gone), NO_CONTENT);
    let text = metrics(&h.reactor);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"resumed\"}"), 2);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"done\"}"), 1);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"unknown\"}"), 1);
    assert_eq!(
        value(&text, "daemon_stream_outcomes_total{outcome=\"completed\"}"),
        3
    );
}

#[test]
fn with_resuming_off_nothing_is_stamped_and_resume_is_ignored() {
    let mut h = Harness::new("resume-off", |c| c.backend.mock.message_delay = EVENT_GAP);
    let mut plain = open(&mut h, r#"{"user_id":7}"#);
    let plain = h.collect_skipping(&mut plain, EVENT_GAP);
    let fake = format!("{}-3", "a".repeat(32));
    let mut asked = resume(&mut h, &fake, 7);
    let asked = h.collect_skipping(&mut asked, EVENT_GAP);
    assert_eq!(
        asked, plain,
        "resume is ignored: a new stream, byte for byte"
    );
    assert!(
        !plain.contains("id:") && !plain.contains("retry:"),
        "{plain}"
    );
    // A client that leaves ends the stream at once, as always.
    let mut client = open(&mut h, r#"{"user_id":7}"#);
    let mut received = Vec::new();
    read_events(&mut h, &mut client, &mut received, 2);
    drop(client);
    h.turn_until_skipping(EVENT_GAP, |r| r.connections() == 0);
    let text = metrics(&h.reactor);
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"client_disconnected\"}"
        ),
        1
    );
    assert_eq!(value(&text, "daemon_resumes_total{result=\"unknown\"}"), 0);
}

#[test]
fn a_drain_drops_detached_streams_and_kept_ones() {
    let mut h = Harness::new("resume-drain", resumable);
    let mut done = open(&mut h, r#"{"user_id":7}"#);
    h.collect_skipping(&mut done, EVENT_GAP);
    detach_after(&mut h, r#"{"user_id":7}"#, 2);
    assert!(h.reactor.tally().gauges().buffered_bytes > 0);
    let now = h.now();
    h.reactor.begin_drain(now);
    h.turn_until(|r| r.connections() == 0);
    let text = metrics(&h.reactor);
    assert_eq!(value(&text, "daemon_detached_streams"), 0);
    assert_eq!(value(&text, "daemon_buffered_bytes"), 0);
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"client_disconnected\"}"
        ),
        1
    );
}

#[test]
fn a_resume_reaching_another_worker_finds_the_stream_where_it_runs() {
    let (mut one, mut two) = Harness::workers("resume-workers", resumable);
    // The stream runs on worker one; its client leaves.
    let first = detach_after(&mut one, r#"{"user_id":7}"#, 3);
    let id = last_id(&first);
    // The resume reaches worker two, which passes the client to worker one.
    let mut second = resume(&mut two, &id, 7);
    let mut rest = Vec::new();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < LIMIT,
            "{:?}",
            String::from_utf8_lossy(&rest)
        );
        two.turn();
        one.skip(EVENT_GAP);
        one.turn();
        if read_available(&mut second, &mut rest).is_none() {
            break;
        }
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.starts_with(SSE_HEAD), "{rest}");
    assert!(
        rest[SSE_HEAD.len()..].starts_with(&format!("id: {}-4\n", &id[..32])),
        "{rest}"
    );
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    let started = Instant::now();
    while one.reactor.connections() + two.reactor.connections() > 0 {
        assert!(started.elapsed() < LIMIT);
        one.turn();
        two.turn();
    }
    // Counted once each, over both workers: two handoffs, two endings.
    let text = metrics(&one.reactor);
    assert_eq!(value(&text, "daemon_handoffs_total"), 2);
    assert_eq!(value(&text, "daemon_resumes_total{result=\"resumed\"}"), 1);
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"resumed_elsewhere\"}"
        ),
        1
    );
    assert_eq!(
        value(&text, "daemon_stream_outcomes_total{outcome=\"completed\"}"),
        1
    );
    assert_eq!(value(&text, "daemon_active_connections"), 0);
    // A stream no worker has is refused where the handoff arrived.
    let mut unknown = resume(&mut two, &format!("{}-1", "0".repeat(32)), 7);
    assert_eq!(two.collect(&mut unknown), NO_CONTENT);
}

#[test]
fn a_resuming_client_gone_before_its_204_ends_as_any_client_that_left() {
    let mut h = Harness::new("resume-gone", resumable);
    let (client, server) = tcp_pair();
    reset(client);
    h.hand_off(
        format!(r#"{{"resume":"{}-done","user_id":7}}"#, "a".repeat(32)).as_bytes(),
        &server,
    );
    drop(server);
    h.turn_until(|r| r.tally().handoffs == 1 && r.connections() == 0);
    let text = metrics(&h.reactor);
    // One ending for one handoff: the client's, not also the resume's.
    assert_eq!(
        value(
            &text,
            "daemon_stream_outcomes_total{outcome=\"client_disconnected\"}"
        ),
        1
    );
    assert_eq!(value(&text, "daemon_resumes_total{result=\"done\"}"), 0);
}
