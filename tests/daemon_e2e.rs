//! End-to-end: the built `streaming-daemon` binary, handed real loopback TCP and socketpair fds
//! over its Unix socket, as Apache would.

mod common;

use std::time::Duration;

use common::*;
use streaming_daemon::config::SocketType;
use streaming_daemon::sys::socket;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn streams_over_loopback_tcp_and_socketpairs() {
    let daemon = Daemon::start("e2e-happy", &["-message-delay", "1ms"]);
    let body = daemon.request(br#"{"prompt":"Hi","user_id":3}"#);
    assert!(body.starts_with(SSE_HEAD));
    let events = contents(&body);
    assert_eq!(events.len(), 18);
    assert_eq!(events[0], "Hello from Rust daemon! Prompt: Hi");
    assert!(body.ends_with("data: [DONE]\n\n"));

    let (client, server) = unix_pair();
    hand_off(&daemon.socket, SocketType::Stream, b"\0", &server);
    drop(server);
    let mut client = std::os::unix::net::UnixStream::from(client);
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut client, &mut body).unwrap();
    assert_eq!(contents(&body)[1], "User ID: 0");
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[test]
fn seqpacket_mode_serves_seqpacket_handoffs() {
    let daemon = Daemon::start(
        "e2e-seq",
        &["-socket-type", "seqpacket", "-message-delay", "0"],
    );
    let (mut client, server) = tcp_pair();
    hand_off(
        &daemon.socket,
        SocketType::SeqPacket,
        br#"{"prompt":"seq"}"#,
        &server,
    );
    drop(server);
    let body = read_to_end(&mut client, LIMIT);
    assert_eq!(contents(&body)[0], "Hello from Rust daemon! Prompt: seq");
    // A stream-socket client cannot talk to a seqpacket daemon (Apache then answers 503).
    let refused = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EPROTOTYPE));
}

#[test]
fn bad_handoffs_get_their_statuses_and_leave_no_fd_behind() {
    let mut daemon = Daemon::start(
        "e2e-bad",
        &["-message-delay", "0", "-max-handoff-bytes", "1KiB"],
    );
    // Warm up once so that lazily opened descriptors are in the baseline.
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    eventually(LIMIT, "the warm-up stream to close", || {
        daemon.count_log("outcome=completed") == 1
    });
    let baseline = daemon.open_fds();

    let status = |text: String| parse_response(&text).0;
    assert_eq!(
        status(daemon.request(b"not json")),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(daemon.request(br#"{"messages":"x"}"#)),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(daemon.request(&[b' '; 1025])),
        "HTTP/1.1 413 Payload Too Large"
    );

    // (The fd arriving without the rest of the data, answered 500 after the handoff timeout,
    // is a step test on a synthetic clock: reactor_steps.rs.)

    // No fd at all, and fds that are not stream sockets: closed, counted, nobody to answer.
    let apache = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    blocking_send(&apache, b"{}");
    drop(apache);
    let (pipe_read, pipe_write) = pipe();
    hand_off(&daemon.socket, SocketType::Stream, b"{}", &pipe_write);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    hand_off(&daemon.socket, SocketType::Stream, b"{}", &udp);
    drop((pipe_read, pipe_write, udp));

    eventually(LIMIT, "every rejection to be logged", || {
        daemon.count_log("handoff rejected") == 6
    });
    eventually(LIMIT, "fds to return to the baseline", || {
        daemon.open_fds() == baseline
    });
    for reason in [
        "not valid",
        "exceeds 1024 bytes",
        "no client file descriptor",
        "not a stream socket",
    ] {
        assert!(
            daemon.count_log(reason) > 0,
            "no rejection saying {reason:?}"
        );
    }
}

fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (reader, writer) = std::io::pipe().unwrap();
    (reader.into(), writer.into())
}

#[test]
fn over_the_limit_clients_get_503() {
    let daemon = Daemon::start(
        "e2e-limit",
        &["-max-connections", "1", "-message-delay", "2s"],
    );
    let _first = daemon.open_stream();
    let response = daemon.request(b"{}");
    let (status, headers, _) = parse_response(&response);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(headers.contains(&("Retry-After".into(), "1".into())));
}

#[test]
fn sigterm_drains_streams_then_exits_zero() {
    let mut daemon = Daemon::start("e2e-drain", &["-message-delay", "20ms", "-benchmark"]);
    let mut client = daemon.open_stream();
    daemon.signal(libc::SIGTERM);
    daemon.wait_for_log("draining", LIMIT);
    assert!(
        !daemon.socket.exists(),
        "the socket file is removed when draining starts"
    );
    let rest = read_to_end(&mut client, LIMIT);
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    let summary = daemon.stdout();
    assert!(
        summary.starts_with("\n=== Benchmark Summary ===\n"),
        "{summary:?}"
    );
    for line in [
        "Peak concurrent streams: 1",
        "Total started: 1",
        "Total completed: 1",
        "Total failed: 0",
    ] {
        assert!(summary.contains(line), "{summary}");
    }
    assert!(summary.contains(&format!(
        "Total bytes sent: {}",
        SSE_HEAD.len() + rest.len()
    )));
}

#[test]
fn a_zero_shutdown_timeout_ends_streams_at_once_with_an_error_event() {
    let mut daemon = Daemon::start(
        "e2e-deadline",
        &["-message-delay", "10s", "-shutdown-timeout", "0"],
    );
    let mut client = daemon.open_stream();
    daemon.signal(libc::SIGTERM);
    expect_shutdown_error(&mut daemon, &mut client);
}

#[test]
fn a_second_signal_ends_streams_at_once() {
    let mut daemon = Daemon::start("e2e-second", &["-message-delay", "10s"]);
    let mut client = daemon.open_stream();
    daemon.signal(libc::SIGINT);
    daemon.wait_for_log("draining", LIMIT);
    daemon.signal(libc::SIGTERM);
    expect_shutdown_error(&mut daemon, &mut client);
}

/// The rest of a stream that shutdown ended, then a clean exit.
fn expect_shutdown_error(daemon: &mut Daemon, client: &mut std::net::TcpStream) {
    let rest = read_to_end(client, LIMIT);
    let error = "event: error\ndata: {\"error\":\"server shutting down\"}\n\n";
    assert!(rest.ends_with(error), "{rest}");
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

#[test]
fn sighup_reports_counts() {
    let mut daemon = Daemon::start("e2e-hup", &[]);
    daemon.signal(libc::SIGHUP);
    let line = daemon.wait_for_log("SIGHUP received", LIMIT);
    assert!(
        line.contains("active_connections=0 active_streams=0"),
        "{line}"
    );
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_refused() {
    let path = temp_socket_path("e2e-stale");
    // A socket file with no listener behind it, as a crashed daemon leaves.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut daemon = Daemon::start_at(path.clone(), &[]);
    assert!(daemon.count_log("removing a stale socket") == 1);

    let mut second = Daemon::spawn(&path, &[]);
    assert_eq!(second.wait_exit(LIMIT), 1);
    assert!(second.count_log("another daemon is already listening") == 1);
    std::mem::forget(second.child.stdout.take());
    // The first daemon still serves.
    assert!(daemon.request(b"{}").starts_with(SSE_HEAD));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

#[test]
fn a_path_that_is_not_a_socket_is_an_error() {
    let path = temp_socket_path("e2e-file");
    std::fs::write(&path, b"not a socket").unwrap();
    let mut daemon = Daemon::spawn(&path, &[]);
    assert_eq!(daemon.wait_exit(LIMIT), 1);
    assert_eq!(daemon.count_log("exists and is not a socket"), 1);
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn the_socket_gets_the_configured_mode() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start("e2e-mode", &["-socket-mode", "0600"]);
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_client_that_disconnects_is_cleaned_up() {
    let mut daemon = Daemon::start("e2e-gone", &["-message-delay", "10s"]);
    let baseline = daemon.open_fds();
    drop(daemon.open_stream());
    daemon.wait_for_log("outcome=client_disconnected", LIMIT);
    eventually(LIMIT, "fds to return to the baseline", || {
        daemon.open_fds() == baseline
    });
}

// The max stream duration and the write stall timeout are step tests on a synthetic clock
// (reactor_steps.rs): nothing here waits for a timeout to pass.

#[test]
fn out_of_descriptors_the_daemon_pauses_accepting_and_recovers() {
    // Room for the daemon's own descriptors and a handful of streams, no more.
    let mut daemon = Daemon::start_limited("e2e-emfile", &["-message-delay", "1s"], 24);
    let mut held = Vec::new();
    let mut refused_at_once = 0;
    for _ in 0..40 {
        let (client, server) = tcp_pair();
        let apache = socket::unix_connect(&daemon.socket, SocketType::Stream);
        let Ok(apache) = apache else {
            refused_at_once += 1;
            continue;
        };
        send_all_with_fd(&apache, b"{}", &server);
        held.push((client, apache));
        if daemon.count_log("out of file descriptors") > 0 {
            break;
        }
    }
    daemon.wait_for_log("out of file descriptors", LIMIT);
    assert_eq!(
        refused_at_once, 0,
        "the backlog holds what cannot be accepted yet"
    );
    // Streams end, descriptors free up, and the queued handoffs are served. The daemon sees a
    // dropped client at its second write after the drop (the first draws the reset): about two
    // message delays, well within `open_stream`'s read timeout.
    drop(held);
    drop(daemon.open_stream());
    // No client fd was dropped by the kernel for want of a free slot.
    assert_eq!(daemon.count_log("control data was truncated"), 0);
}

#[test]
fn a_closed_log_pipe_does_not_take_the_daemon_down() {
    use std::io::BufRead;
    let socket = temp_socket_path("e2e-logpipe");
    let mut child = std::process::Command::new(daemon_binary())
        .arg("-socket")
        .arg(&socket)
        .args(["-metrics-addr=", "-message-delay", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("streaming-daemon started") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the daemon exited before listening"
        );
    }
    // The log reader goes away (a crashed journald, a `| head`): every later log write fails.
    drop(stderr);
    for _ in 0..3 {
        let (mut client, server) = tcp_pair();
        hand_off(&socket, SocketType::Stream, b"{}", &server);
        drop(server);
        assert!(read_to_end(&mut client, LIMIT).ends_with("data: [DONE]\n\n"));
    }
    // SAFETY: (test) signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut status = None;
    eventually(LIMIT, "the daemon to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// The daemon's scheduling state from /proc (`T` once stopped).
fn process_state(daemon: &Daemon) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", daemon.pid())).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.chars().next().unwrap()
}

#[test]
fn handoffs_queued_when_the_drain_starts_each_get_a_stream_or_a_503() {
    let mut daemon = Daemon::start("e2e-queued", &["-message-delay", "20ms"]);
    let running: Vec<_> = (0..5).map(|_| daemon.open_stream()).collect();
    // Stopped, the daemon cannot accept: hundreds of handoffs pile up in the listen backlog,
    // each already sent by "Apache", as when SIGTERM arrives in a busy moment.
    daemon.signal(libc::SIGSTOP);
    eventually(LIMIT, "the daemon to stop", || {
        process_state(&daemon) == 'T'
    });
    // More than one turn's worth of accepts (512): whichever the first turn after SIGCONT
    // reads first, the signal or the backlog, the drain finds handoffs still queued.
    streaming_daemon::sys::limits::raise_open_files(4096).unwrap();
    let queued: Vec<_> = (0..700)
        .map(|_| {
            let (client, server) = tcp_pair();
            hand_off(&daemon.socket, SocketType::Stream, b"{}", &server);
            client
        })
        .collect();
    daemon.signal(libc::SIGTERM);
    daemon.signal(libc::SIGCONT);
    // Every queued client gets a whole stream (accepted before the drain began) or a 503;
    // none gets nothing.
    let mut refused = 0;
    for (i, mut client) in queued.into_iter().enumerate() {
        let response = read_to_end(&mut client, LIMIT);
        if response.starts_with(SSE_HEAD) {
            assert!(
                response.ends_with("data: [DONE]\n\n"),
                "handoff {i}: {response:?}"
            );
            continue;
        }
        let (status, headers, body) = parse_response(&response);
        assert_eq!(
            status, "HTTP/1.1 503 Service Unavailable",
            "handoff {i}: {response:?}"
        );
        assert!(headers.contains(&("Retry-After".into(), "1".into())));
        assert_eq!(body, "{\"error\":\"server shutting down\"}\n");
        refused += 1;
    }
    assert!(refused >= 700 - 512, "{refused} answered 503");
    for mut client in running {
        assert!(read_to_end(&mut client, LIMIT).ends_with("data: [DONE]\n\n"));
    }
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    assert!(!daemon.socket.exists());
}

#[test]
fn signals_whose_default_would_kill_the_daemon_are_ignored() {
    let mut daemon = Daemon::start("e2e-signals", &["-message-delay", "0"]);
    for signal in [
        libc::SIGUSR1,
        libc::SIGALRM,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGPROF,
        libc::SIGVTALRM,
        libc::SIGXCPU,
    ] {
        daemon.signal(signal);
    }
    daemon.wait_for_log("SIGXCPU", LIMIT);
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    assert_eq!(daemon.count_log("msg=\"signal ignored\""), 7);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

#[test]
fn the_longest_durations_go_allows_never_overflow_a_deadline() {
    let longest = "2562047h47m16s";
    let mut daemon = Daemon::start(
        "e2e-longest",
        &[
            "-message-delay",
            longest,
            "-shutdown-timeout",
            longest,
            "-handoff-timeout",
            longest,
            "-write-timeout",
            longest,
            "-max-stream-duration-ms",
            "9223372036854",
        ],
    );
    // A stream waiting for its next event, a handoff waiting for the rest of its data, a
    // drain: each computes a deadline centuries away.
    let mut streaming = daemon.open_stream();
    let (mut waiting, server) = tcp_pair();
    let apache = socket::unix_connect(&daemon.socket, SocketType::Stream).unwrap();
    streaming_daemon::sys::fdpass::send_with_fd(
        &apache,
        b"{\"prompt\"",
        std::os::fd::AsRawFd::as_raw_fd(&server),
    )
    .unwrap();
    drop(server);
    daemon.signal(libc::SIGTERM);
    daemon.wait_for_log("draining", LIMIT);
    daemon.signal(libc::SIGTERM);
    assert!(read_to_end(&mut streaming, LIMIT)
        .ends_with("event: error\ndata: {\"error\":\"server shutting down\"}\n\n"));
    assert!(read_to_end(&mut waiting, LIMIT).starts_with("HTTP/1.1 503 "));
    drop(apache);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}
