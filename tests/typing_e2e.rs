//! The typing backend end to end: the real binary typing answers, with fake `fortune` scripts
//! written here, and the pauses between events kept by the reactor's timers; and typing answers
//! from a fake OpenAI-compatible API (`use_api`). A fortune that is slow past its timeout, fails
//! or is missing, the rate limit, and `use_api`'s pauses and backlog are step tests on the
//! reactor's clock (`typing_steps.rs`).

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::upstream::{
    delta, ok_stream, send, wait_for_log_count, FakeUpstream, Kind, DONE_EVENT, FINISH_CHUNK,
    ROLE_CHUNK,
};
use common::*;
use streaming_daemon::config::SocketType;

const LIMIT: Duration = Duration::from_secs(20);
const INTRO: &str = "I don't know anything about that, but ";
/// `sleep`'s arguments in the slow scripts: unusual enough to find their processes by, one per
/// test because tests run at the same time.
const LEAVE_SLEEP: &str = "30.4322";

/// A directory of this test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sd-typing-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A `#!/bin/sh` fortune that appends its arguments to `calls`, then runs `body`.
    fn fortune(&self, body: &str) -> PathBuf {
        let path = self.0.join("fortune");
        let calls = self.calls_path();
        let script = format!("#!/bin/sh\necho \"$@\" >> '{}'\n{body}\n", calls.display());
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn calls_path(&self) -> PathBuf {
        self.0.join("calls")
    }

    /// The arguments of every call so far, one line each.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.calls_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn daemon(name: &str, fortune: &Path) -> Daemon {
    Daemon::start(
        name,
        &[
            "-backend",
            "typing",
            "-fortune-path",
            fortune.to_str().unwrap(),
        ],
    )
}

/// The `(char, index)` pairs of typing events.
fn typed(frames: &[String]) -> Vec<(String, usize)> {
    frames
        .iter()
        .filter_map(|f| f.strip_prefix("data: {"))
        .map(|json| {
            let value: serde_json::Value =
                serde_json::from_str(&format!("{{{}", json.trim_end())).unwrap();
            (
                value["char"].as_str().unwrap().to_string(),
                value["index"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn text(typed: &[(String, usize)]) -> String {
    typed.iter().map(|(c, _)| c.as_str()).collect()
}

/// Hands off a client and reads the whole stream, with arrival times; also returns when the
/// handoff was sent, before which the daemon cannot have started.
fn timed_request(d: &Daemon, data: &[u8]) -> (Instant, String, Vec<(Instant, String)>) {
    let (mut client, server) = tcp_pair();
    let sent = Instant::now();
    hand_off(&d.socket, SocketType::Stream, data, &server);
    drop(server);
    let (head, frames) = read_frames_timed(&mut client, LIMIT);
    (sent, head, frames)
}

/// SPEC §4.2's pause after a character.
fn pause(c: char) -> Duration {
    Duration::from_millis(match c {
        '\n' => 100,
        '.' | '!' | '?' => 150,
        ',' | ':' => 80,
        ' ' => 30,
        _ => 25,
    })
}

/// The daemon's children, zombies included.
fn children(d: &Daemon) -> String {
    std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", d.pid()))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Whether a slow script's `sleep` still runs anywhere.
fn sleep_running(seconds: &str) -> bool {
    let wanted = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == wanted.as_bytes())
    })
}

#[test]
fn a_quote_is_typed_one_character_at_a_time_with_the_reactors_pauses() {
    let scratch = Scratch::new("quote");
    let fortune = scratch.fortune("echo 'Brevity, wit.'\necho '\t\t-- Polonius'");
    let d = daemon("ty-quote", &fortune);
    let (sent, head, frames) = timed_request(&d, br#"{"prompt":"What is wit?"}"#);
    assert_eq!(head, SSE_HEAD);
    let answer = format!("{INTRO}brevity, wit.");
    let events: Vec<String> = frames.iter().map(|(_, f)| f.clone()).collect();
    let typed = typed(&events);
    assert_eq!(text(&typed), answer);
    let indexes: Vec<usize> = typed.iter().map(|(_, i)| *i).collect();
    let want: Vec<usize> = answer.char_indices().map(|(i, _)| i).collect();
    assert_eq!(indexes, want);
    assert_eq!(events.last().unwrap(), "data: [DONE]\n\n");
    assert_eq!(scratch.calls(), ["literature"]);

    // Event k cannot leave before the pauses after characters 0..k have passed since the
    // stream began, which was after the handoff was sent. Lower bounds only: a busy machine
    // may be later, never earlier.
    let mut due = Duration::ZERO;
    for ((arrived, _), c) in frames.iter().zip(answer.chars()) {
        assert!(
            arrived.duration_since(sent) >= due,
            "{c:?} after {:?}, due no earlier than {due:?}",
            arrived.duration_since(sent)
        );
        due += pause(c);
    }
    let (done_at, _) = frames.last().unwrap();
    assert!(done_at.duration_since(sent) >= due, "[DONE] came early");
}

#[test]
fn the_fixed_prompt_needs_no_fortune_and_a_client_may_leave_mid_answer() {
    let scratch = Scratch::new("fixed");
    let fortune = scratch.fortune("echo 'Unused.'");
    let mut d = daemon("ty-fixed", &fortune);
    let (mut client, server) = tcp_pair();
    hand_off(
        &d.socket,
        SocketType::Stream,
        br#"{"prompt":"Tell me about streaming"}"#,
        &server,
    );
    drop(server);
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    // The first word, then leave.
    while data_frames(&String::from_utf8_lossy(&seen)).len() < 5 {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8(seen).unwrap();
    assert!(
        text(&typed(&data_frames(&seen))).starts_with("When "),
        "{seen}"
    );
    drop(client);
    d.wait_for_log("outcome=client_disconnected", LIMIT);
    assert!(scratch.calls().is_empty());
}

#[test]
fn a_client_leaving_while_fortune_runs_gets_it_killed_and_reaped() {
    let scratch = Scratch::new("leave");
    let fortune = scratch.fortune(&format!("sleep {LEAVE_SLEEP}\necho 'Never read.'"));
    let mut d = daemon("ty-leave", &fortune);
    let (mut client, server) = tcp_pair();
    hand_off(&d.socket, SocketType::Stream, b"{}", &server);
    drop(server);
    let mut head = vec![0u8; SSE_HEAD.len()];
    client.read_exact(&mut head).unwrap();
    eventually(LIMIT, "fortune to run", || scratch.calls().len() == 1);
    drop(client);
    d.wait_for_log("outcome=client_disconnected", LIMIT);
    eventually(LIMIT, "the fortune to be reaped", || {
        children(&d).is_empty()
    });
    eventually(LIMIT, "the script's sleep to be killed too", || {
        !sleep_running(LEAVE_SLEEP)
    });
}

/// The frames of a whole response body, head excluded.
fn data_frames(response: &str) -> Vec<String> {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    body.split_inclusive("\n\n")
        .filter(|f| f.ends_with("\n\n"))
        .map(str::to_string)
        .collect()
}

// ---- `backend.typing.use_api` ----

/// The daemon typing from `upstream`'s API, with `typing` under `backend.typing` (after
/// `use_api: true`) and `env` (the key).
fn api_daemon(name: &str, upstream: &FakeUpstream, typing: &str, env: &[(&str, &str)]) -> Daemon {
    let config = std::env::temp_dir().join(format!("sd-{name}-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "backend:\n  provider: typing\n  default_model: m-backend\n  typing:\n    use_api: true\n{typing}"
        ),
    )
    .unwrap();
    let base = format!("{}/v1", upstream.base);
    let args = ["-config", config.to_str().unwrap(), "-openai-base", &base];
    let daemon = Daemon::start_with_env(temp_socket_path(name), &args, env);
    let _ = std::fs::remove_file(&config);
    daemon
}

/// The `(char, index)` pairs and the last frame of a whole response.
fn typed_response(response: &str) -> (Vec<(String, usize)>, String) {
    let frames = data_frames(response);
    let last = frames.last().cloned().unwrap_or_default();
    let chars: Vec<String> = frames
        .into_iter()
        .filter(|f| f.starts_with("data: {"))
        .collect();
    (typed(&chars), last)
}

/// A request's JSON body as the fake received it.
fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

#[test]
fn api_answers_are_typed_as_they_stream_with_the_models_in_order() {
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            ok_stream(&[
                ROLE_CHUNK,
                &delta(r#""H\u00e9""#),
                &delta(r#""!""#),
                FINISH_CHUNK,
                DONE_EVENT,
            ]),
            ok_stream(&[&delta(r#""Ok""#), DONE_EVENT]),
        ],
    );
    let mut d = api_daemon(
        "ty-api",
        &upstream,
        "    default_model: m-typing\n",
        &[("OPENAI_API_KEY", "sk-typing-e2e")],
    );
    let line = d.wait_for_log(
        "typing backend types answers from the OpenAI-compatible API",
        LIMIT,
    );
    assert!(
        line.contains(&format!("api_base={}/v1", upstream.base)) && line.contains("model=m-typing"),
        "{line}"
    );
    assert!(!line.contains("sk-typing-e2e"));
    // Even the prompt with a fixed answer is asked of the API.
    let response = d.request(br#"{"prompt":"Tell me about streaming","model":"m-handoff"}"#);
    assert!(response.starts_with(SSE_HEAD), "{response}");
    let (chars, last) = typed_response(&response);
    let want: Vec<(String, usize)> = [("H", 0), ("\u{e9}", 1), ("!", 3)]
        .map(|(c, i)| (c.to_string(), i))
        .to_vec();
    assert_eq!(chars, want);
    assert_eq!(last, "data: [DONE]\n\n");

    let response = d.request(
        br#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}"#,
    );
    let (chars, last) = typed_response(&response);
    assert_eq!(text(&chars), "Ok");
    assert_eq!(last, "data: [DONE]\n\n");

    let requests = upstream.requests();
    assert!(
        requests[0]
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        requests[0].head
    );
    assert_eq!(
        requests[0].header("authorization").as_deref(),
        Some("Bearer sk-typing-e2e")
    );
    let first = json(&requests[0].body);
    assert_eq!(first["model"], "m-handoff");
    assert_eq!(first["stream"], true);
    assert_eq!(
        first["messages"],
        serde_json::json!([{"role": "user", "content": "Tell me about streaming"}])
    );
    let second = json(&requests[1].body);
    assert_eq!(second["model"], "m-typing");
    assert_eq!(
        second["messages"],
        serde_json::json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"}
        ])
    );
    // One connection, pooled between the two answers.
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn api_statuses_reach_the_client_and_the_backend_default_model_is_the_last_resort() {
    let body = r#"{"error":{"message":"slow down","type":"rate_limit"}}"#;
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            vec![send(&format!(
                "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 3\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            ))],
            ok_stream(&[&delta(r#"".""#), DONE_EVENT]),
        ],
    );
    let mut d = api_daemon("ty-api-429", &upstream, "", &[("OPENAI_API_KEY", "sk-t")]);
    let response = d.request(b"{}");
    let (line, headers, rest) = parse_response(&response);
    assert_eq!(line, "HTTP/1.1 429 Too Many Requests");
    assert!(
        headers.contains(&("Retry-After".into(), "3".into())),
        "{headers:?}"
    );
    assert!(
        !rest.contains("slow down"),
        "the upstream's words stay in the log"
    );
    let (chars, last) = typed_response(&d.request(b"{}"));
    assert_eq!(text(&chars), ".");
    assert_eq!(last, "data: [DONE]\n\n");
    assert_eq!(json(&upstream.requests()[1].body)["model"], "m-backend");
    // The log (and the metrics) name the backend the client chose: typing.
    wait_for_log_count(&mut d, "msg=\"connection ended\"", 2);
    let ended: Vec<&String> = d
        .log
        .iter()
        .filter(|l| l.contains("msg=\"connection ended\""))
        .collect();
    for (line, want) in ended.iter().zip([
        ["backend=typing", "status=429", "outcome=upstream_status"],
        ["backend=typing", "status=200", "outcome=completed"],
    ]) {
        assert!(want.iter().all(|part| line.contains(part)), "{line}");
    }
    assert!(ended[1].contains(" events=1 "), "{}", ended[1]);
}

#[test]
fn without_an_openai_key_it_warns_at_start_up_and_types_fortune_quotes() {
    let scratch = Scratch::new("api-nokey");
    let fortune = scratch.fortune("echo 'Keys open doors.'");
    let upstream = FakeUpstream::start(Kind::Plain, vec![]);
    let typing = format!("    fortune_path: {}\n", fortune.display());
    let mut d = api_daemon("ty-api-nokey", &upstream, &typing, &[]);
    d.wait_for_log(
        "backend.typing.use_api is on but no OpenAI key is set: the typing backend types fortune quotes",
        LIMIT,
    );
    let (chars, last) = typed_response(&d.request(b"{}"));
    assert_eq!(text(&chars), format!("{INTRO}keys open doors."));
    assert_eq!(last, "data: [DONE]\n\n");
    assert_eq!(scratch.calls(), ["literature"]);
    assert!(upstream.requests().is_empty());
}
