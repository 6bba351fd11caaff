//! The log as an operator's tools read it: every line of a real run in slog's text and JSON
//! shapes (checked by the strict reader in `common/slog.rs`, which is itself checked here
//! against the formatter and against hand-written bad lines), upstream words that can neither
//! forge a line nor leak a key, and a stderr nobody reads that must not stall a single stream.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::slog::*;
use common::upstream::{send, upstream_daemon, FakeUpstream, Kind};
use common::*;
use log::kv::Value;
use log::{Level, Record};
use streaming_daemon::config::{LogFormat, SocketType};
use streaming_daemon::logging::format_line;

const LIMIT: Duration = Duration::from_secs(20);

// ---- the reader itself ----

#[test]
fn the_reader_accepts_slog_shapes() {
    let text = check_text_line(
        "time=2026-11-29T12:00:00.000Z level=INFO source=src/conn/mod.rs:123 msg=\"connection ended\" \
         conn=12 backend=mock status=200 bytes=4321 events=19 attachments=0 duration_ms=850 outcome=completed",
    )
    .unwrap();
    assert_eq!(text.msg, "connection ended");
    assert_eq!(text.source, "src/conn/mod.rs:123");
    assert_eq!(text.field("outcome"), Some("completed"));
    assert_eq!(text.fields.len(), 8);
    let quoted = check_text_line(
        "time=2026-11-29T12:00:00.999Z level=DEBUG-4 source=\"/a dir/x.rs:1\" msg=x \
         a=\"\" b=\"x\\ny\" c=\"\\\"\" d=caf\u{e9} e=\"\\x00\\xff\\u00a0\\U000e0001\" f=a\\b\n",
    )
    .unwrap();
    assert_eq!(quoted.source, "/a dir/x.rs:1");
    assert_eq!(quoted.field("b"), Some("x\ny"));
    assert_eq!(quoted.field("c"), Some("\""));
    assert_eq!(quoted.field("f"), Some("a\\b"));

    let json = check_json_line(
        r#"{"time":"2026-11-29T12:00:00.123456789Z","level":"INFO","source":{"function":"streaming_daemon::conn","file":"src/conn/mod.rs","line":123},"msg":"connection ended","conn":12,"ok":true,"ratio":-1.5e-7,"error":"a\nb\u0000\u2028\ufffd"}"#,
    )
    .unwrap();
    assert_eq!(json.function, "streaming_daemon::conn");
    assert_eq!(json.line, 123);
    assert_eq!(json.num_field("conn"), Some("12"));
    assert_eq!(json.field("ok"), Some(&JsonValue::Bool(true)));
    assert_eq!(json.str_field("error"), Some("a\nb\0\u{2028}\u{fffd}"));
    for time in ["2026-11-29T12:00:00Z", "2026-11-29T12:00:00.5Z"] {
        let line = format!(
            r#"{{"time":"{time}","level":"WARN","source":{{"function":"a","file":"b.rs","line":1}},"msg":""}}"#
        );
        check_json_line(&line).unwrap();
    }
}

#[test]
fn the_reader_rejects_what_slog_would_not_write() {
    let head = "time=2026-11-29T12:00:00.000Z level=INFO source=src/a.rs:1";
    let bad_text = [
        // time, level and source shapes
        "time=2026-11-29T12:00:00.00Z level=INFO source=src/a.rs:1 msg=x".to_string(),
        "time=2026-11-29T12:00:00.000+01:00 level=INFO source=src/a.rs:1 msg=x".into(),
        "time=2026-13-29T12:00:00.000Z level=INFO source=src/a.rs:1 msg=x".into(),
        "time=2026-11-29T12:00:00.000Z level=TRACE source=src/a.rs:1 msg=x".into(),
        "time=2026-11-29T12:00:00.000Z level=INFO source=src/a.rs msg=x".into(),
        "time=2026-11-29T12:00:00.000Z level=INFO source=src/a.rs:0 msg=x".into(),
        "time=2026-11-29T12:00:00.000Z level=INFO msg=x".into(),
        "level=INFO time=2026-11-29T12:00:00.000Z source=src/a.rs:1 msg=x".into(),
        // quoting
        format!("{head} msg=two words"),
        format!("{head} msg=\"one\""),
        format!("{head} msg=x k="),
        format!("{head} msg=x k=a\tb"),
        format!("{head} msg=\"a\nb\""),
        format!("{head} msg=\"a\\x0ab\""),
        format!("{head} msg=\"a \\u00E9\""),
        format!("{head} msg=\"a \\u0041\""),
        format!("{head} msg=\"a \\'\""),
        format!("{head} msg=\"open"),
        format!("{head} msg=\"a b\"c"),
        // layout and keys
        format!("{head} msg=x "),
        format!("{head}  msg=x"),
        format!("{head} msg=x k=1 k=2"),
        format!("{head} msg=x msg=y"),
        format!("{head} msg=x error=\"\""),
    ];
    for line in &bad_text {
        assert!(check_text_line(line).is_err(), "accepted {line:?}");
    }

    let source = r#""source":{"function":"a::b","file":"src/a.rs","line":1}"#;
    let good = format!(r#"{{"time":"2026-11-29T12:00:00.1Z","level":"INFO",{source},"msg":"m"}}"#);
    check_json_line(&good).unwrap();
    let bad_json = [
        good.replace("00.1Z", "00.10Z"),
        good.replace("00.1Z", "00.1234567890Z"),
        good.replace("00.1Z", "00.1+00:00"),
        good.replace(r#""level":"INFO","#, ""),
        good.replace(r#""level":"INFO""#, r#""level":"info""#),
        good.replace(r#""msg":"m""#, r#""msg": "m""#),
        good.replace(r#""msg":"m""#, r#""msg":"a\/b""#),
        good.replace(r#""msg":"m""#, r#""msg":"\u0041""#),
        good.replace(r#""msg":"m""#, r#""msg":"\b""#),
        good.replace(r#""msg":"m""#, "\"msg\":\"\u{2028}\""),
        good.replace(r#""msg":"m""#, "\"msg\":\"a\tb\""),
        good.replace(r#""msg":"m""#, r#""msg":"\u000A""#),
        good.replace(r#""msg":"m""#, r#""msg":"m","error":"""#),
        good.replace(r#""msg":"m""#, r#""msg":"m","k":1,"k":2"#),
        good.replace(r#""msg":"m""#, r#""msg":"m","k":01"#),
        good.replace(r#""msg":"m""#, r#""msg":"m","k":null"#),
        good.replace(r#""function":"a::b","#, ""),
        good.replace(r#""function":"a::b""#, r#""function":"a b""#),
        good.replace(r#""line":1"#, r#""line":"1""#),
        format!("{good} "),
        format!(r#"{{"level":"INFO","time":"2026-11-29T12:00:00Z",{source},"msg":"m"}}"#),
    ];
    for line in &bad_json {
        assert!(check_json_line(line).is_err(), "accepted {line:?}");
    }
}

/// Strings from an alphabet of everything that needs care, through the daemon's formatter and
/// back through the reader: same message, same values, in both formats.
#[test]
fn formatted_lines_read_back_exactly() {
    const ALPHABET: [char; 22] = [
        'a',
        'Z',
        '0',
        ' ',
        '=',
        '"',
        '\\',
        ':',
        '\n',
        '\r',
        '\t',
        '\0',
        '\u{7}',
        '\u{7f}',
        '\u{e9}',
        '\u{a0}',
        '\u{85}',
        '\u{2028}',
        '\u{202e}',
        '\u{fffd}',
        '\u{1f600}',
        '\u{e0001}',
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |below: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % below as u64) as usize
    };
    let now = UNIX_EPOCH + Duration::from_nanos(1_795_953_600_120_000_000);
    for _ in 0..2000 {
        let mut word = || -> String {
            (0..random(8))
                .map(|_| ALPHABET[random(ALPHABET.len())])
                .collect()
        };
        let (message, value) = (word(), word());
        let fields = [
            ("value", Value::from(value.as_str())),
            ("n", Value::from(7u64)),
            ("on", Value::from(false)),
        ];
        let line = |format| {
            let bytes = format_line(
                &Record::builder()
                    .args(format_args!("{message}"))
                    .level(Level::Trace)
                    .module_path(Some("streaming_daemon::x"))
                    .file(Some("src/x.rs"))
                    .line(Some(9))
                    .key_values(&fields)
                    .build(),
                format,
                now,
            );
            String::from_utf8(bytes).unwrap()
        };
        let text = line(LogFormat::Text);
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        let read = check_text_line(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (read.msg.as_str(), read.level.as_str()),
            (message.as_str(), "DEBUG-4")
        );
        assert_eq!(read.time, "2026-11-29T12:00:00.120Z");
        assert_eq!(read.field("value"), Some(value.as_str()));
        assert_eq!(
            (read.field("n"), read.field("on")),
            (Some("7"), Some("false"))
        );

        let json = line(LogFormat::Json);
        assert_eq!(json.matches('\n').count(), 1, "{json:?}");
        let read = check_json_line(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.msg, message);
        assert_eq!(read.time, "2026-11-29T12:00:00.12Z");
        assert_eq!(read.str_field("value"), Some(value.as_str()));
        assert_eq!(read.num_field("n"), Some("7"));
        assert_eq!(read.field("on"), Some(&JsonValue::Bool(false)));
    }
}

// ---- the real daemon ----

/// A run with a good stream, a handoff without data and a bad JSON handoff, stopped with
/// SIGTERM: every line it wrote, to the last one, is slog-shaped.
fn every_line_of_a_run(format: &str) -> Vec<String> {
    let mut daemon = Daemon::start(
        &format!("log-{format}"),
        &[
            "-log-format",
            format,
            "-log-level",
            "debug",
            "-message-delay",
            "0",
        ],
    );
    assert!(daemon
        .request(br#"{"prompt":"hi\nthere","user_id":3}"#)
        .ends_with("data: [DONE]\n\n"));
    assert!(daemon.request(b"\0").ends_with("data: [DONE]\n\n"));
    let rejected = daemon.request(b"{\"prompt\": \"unterminated\n");
    assert_eq!(parse_response(&rejected).0, "HTTP/1.1 400 Bad Request");
    eventually(LIMIT, "three connection-ended lines", || {
        daemon.count_log("connection ended") == 3
    });
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    if let Err(e) = check_lines(format, &daemon.log) {
        panic!("{e}\nthe log:\n{}", daemon.log.join("\n"));
    }
    // The last line is written although the process exits right after logging it.
    let last = daemon.log.last().cloned().unwrap_or_default();
    assert!(last.contains("drained; exiting"), "{last}");
    daemon.log.clone()
}

#[test]
fn every_text_line_of_a_run_is_slog_shaped() {
    let log = every_line_of_a_run("text");
    let ends: Vec<TextLine> = log
        .iter()
        .filter_map(|l| check_text_line(l).ok())
        .filter(|l| l.msg == "connection ended")
        .collect();
    let outcomes: Vec<_> = ends.iter().map(|l| l.field("outcome").unwrap()).collect();
    assert_eq!(outcomes, ["completed", "completed", "bad_json"]);
    for end in &ends {
        assert_eq!(end.level, "INFO");
        assert!(end.source.starts_with("src/conn/"), "{end:?}");
        assert_eq!(end.field("backend"), Some("mock"));
        assert!(end.field("conn").unwrap().parse::<u64>().is_ok());
    }
    assert!(ends[2].field("error").unwrap().contains("not JSON"));
    assert_eq!(ends[0].field("error"), None);
}

#[test]
fn every_json_line_of_a_run_is_slog_shaped() {
    let log = every_line_of_a_run("json");
    let ends: Vec<JsonLine> = log
        .iter()
        .filter_map(|l| check_json_line(l).ok())
        .filter(|l| l.msg == "connection ended")
        .collect();
    let outcomes: Vec<_> = ends
        .iter()
        .map(|l| l.str_field("outcome").unwrap())
        .collect();
    assert_eq!(outcomes, ["completed", "completed", "bad_json"]);
    for end in &ends {
        assert!(
            end.function.starts_with("streaming_daemon::conn"),
            "{end:?}"
        );
        assert!(end.file.starts_with("src/conn/"), "{end:?}");
        assert_eq!(
            end.num_field("status"),
            Some(if end == &ends[2] { "400" } else { "200" })
        );
    }
}

/// An upstream that echoes the API key (no `sk-` prefix to recognise it by) and tries to start
/// a line of its own: the key is masked, the newline escaped.
#[test]
fn upstream_words_neither_forge_lines_nor_leak_the_key() {
    const KEY: &str = "k3y-plain-0123456789";
    let forged = "time=2026-01-01T00:00:00.000Z level=ERROR source=src/x.rs:1 msg=forged";
    let body = format!("bad key {KEY}\n{forged}\r\n\u{1b}[2J");
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![send(&format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ))]],
    );
    let mut daemon = upstream_daemon(
        "log-upstream",
        "openai",
        &upstream,
        "",
        &[("OPENAI_API_KEY", KEY)],
    );
    let response = daemon.request(b"{}");
    assert_eq!(parse_response(&response).0, "HTTP/1.1 502 Bad Gateway");
    // After this line, every line about the upstream's answer has been written.
    daemon.wait_for_log("connection ended", LIMIT);
    if let Err(e) = check_lines("text", &daemon.log) {
        panic!("{e}");
    }
    assert!(
        daemon.log.iter().all(|l| !l.contains(KEY)),
        "{:#?}",
        daemon.log
    );
    assert!(daemon.log.iter().all(|l| !l.starts_with(&forged[..20])));
    // In the message or a key field, whichever the call site uses: the words, unquoted, are
    // the upstream's with only the key replaced.
    let echoed = check_text_line(&daemon.wait_for_log("bad key", LIMIT)).unwrap();
    let expected = format!("bad key [REDACTED]\n{forged}\r\n\u{1b}[2J");
    let values = std::iter::once(&echoed.msg).chain(echoed.fields.iter().map(|(_, v)| v));
    assert!(
        values.into_iter().any(|v| v.ends_with(&expected)),
        "{echoed:?}"
    );
}

/// The daemon with stderr to a pipe the test reads only until start-up is over; killed when
/// dropped.
struct Unread {
    child: Child,
    socket: PathBuf,
}

impl Drop for Unread {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Starts the daemon, reads stderr until it listens, and returns it with the metrics address
/// and the unread rest of its stderr.
fn start_unread(args: &[&str]) -> (Unread, SocketAddr, BufReader<std::process::ChildStderr>) {
    let socket = temp_socket_path("log-unread");
    let mut child = Command::new(daemon_binary())
        .arg("-socket")
        .arg(&socket)
        .args(["-metrics-addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("SSL_CERT_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the daemon binary starts");
    let stderr = child.stderr.take().unwrap();
    let daemon = Unread { child, socket };
    let (sender, started) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut metrics = None;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some((_, rest)) = line.split_once("url=http://") {
                metrics = rest.split('/').next().and_then(|a| a.parse().ok());
            }
            if line.contains("streaming-daemon started") {
                let _ = sender.send((metrics, reader));
                return;
            }
        }
    });
    let (metrics, reader) = started
        .recv_timeout(LIMIT)
        .expect("the daemon listens and says so");
    (
        daemon,
        metrics.expect("the metrics address is logged"),
        reader,
    )
}

/// One mock stream handed off over loopback TCP; its whole response.
fn stream_once(socket: &std::path::Path) -> String {
    let (mut client, server) = tcp_pair();
    hand_off(socket, SocketType::Stream, b"{}", &server);
    drop(server);
    read_to_end(&mut client, LIMIT)
}

fn healthz(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Runs the load generator for `streams` mock streams; true when every one ended with [DONE].
fn drive(socket: &std::path::Path, streams: u32) -> bool {
    let mut load = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("-socket")
        .arg(socket)
        .args(["-n", &streams.to_string(), "-c", "32", "-timeout", "20s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the handoff binary starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = load.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = load.kill();
            let _ = load.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A wedged log reader (a full pipe) must not freeze streams: lines are dropped and counted
/// instead, and the next line after the pipe drains says how many.
#[test]
fn an_unread_stderr_pipe_does_not_stall_streams() {
    let (mut daemon, metrics, stderr) =
        start_unread(&["-log-level", "debug", "-message-delay", "0"]);
    // At least one ~180-byte line per stream: far more than the pipe (64 KiB) and the log
    // queue (1 MiB) together hold, while nobody reads.
    assert!(
        drive(&daemon.socket, 10_000),
        "streams stalled or failed while stderr was not read"
    );
    let health = healthz(metrics);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(stream_once(&daemon.socket).ends_with("data: [DONE]\n\n"));

    // Read at last: the queue drains, and the next line that fits brings the notice.
    let lines = read_lines(stderr);
    let mut seen = Vec::new();
    let deadline = Instant::now() + LIMIT;
    let notice = loop {
        assert!(stream_once(&daemon.socket).ends_with("data: [DONE]\n\n"));
        while let Ok(line) = lines.try_recv() {
            seen.push(line);
        }
        if let Some(notice) = seen.iter().find(|l| l.contains("log lines dropped")) {
            break notice.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no notice; {} lines read",
            seen.len()
        );
    };
    let notice = check_text_line(&notice).unwrap();
    assert_eq!(
        (notice.level.as_str(), notice.msg.as_str()),
        ("WARN", "log lines dropped")
    );
    let count: u64 = notice.field("count").unwrap().parse().unwrap();
    assert!(count > 0);
    // Stop it; every line that came through the pipe is whole and slog-shaped.
    // SAFETY: (test) signalling our own child process.
    assert_eq!(
        unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) },
        0
    );
    wait_for_line(&lines, &mut seen, "drained; exiting", LIMIT);
    if let Err(e) = check_lines("text", &seen) {
        panic!("{e}");
    }
    let status = daemon.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
