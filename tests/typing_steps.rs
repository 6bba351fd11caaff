//! The typing backend on the reactor's clock: its pauses, the fortune timeout and the
//! daemon-wide rate limit of fortune calls are stepped through, not waited for. (The real
//! binary typing real answers is `typing_e2e.rs`.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::harness::Harness;
use common::*;

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
