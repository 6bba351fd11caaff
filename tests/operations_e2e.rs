//! Running under systemd and being operated: sd_notify messages, socket activation, SIGHUP
//! reloads and SIGUSR2 upgrades, with the real binary.

mod common;

use std::ffi::OsString;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use streaming_daemon::config::SocketType;
use streaming_daemon::sys::spawn;

const LIMIT: Duration = Duration::from_secs(20);

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
struct FakeSystemd {
    socket: UnixDatagram,
    path: PathBuf,
}

impl FakeSystemd {
    fn new(name: &str) -> FakeSystemd {
        let path = temp_socket_path(name);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        FakeSystemd { socket, path }
    }

    /// The next message, waiting at most `LIMIT`.
    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a message from the daemon");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Messages until one starts with `prefix` (bounded), which is returned.
    fn until(&self, prefix: &str) -> String {
        for _ in 0..1000 {
            let message = self.next();
            if message.starts_with(prefix) {
                return message;
            }
        }
        panic!("no {prefix} message");
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn systemd_hears_ready_watchdog_status_reloading_and_stopping() {
    let systemd = FakeSystemd::new("notify");
    let notify = systemd.path.to_str().unwrap().to_string();
    let mut daemon = Daemon::start_with_env(
        temp_socket_path("ops-notify"),
        &["-message-delay", "2s"],
        &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "200000")],
    );
    assert_eq!(systemd.next(), "READY=1");
    // The watchdog is pinged from the loop, every WATCHDOG_USEC / 2.
    let first = Instant::now();
    systemd.until("WATCHDOG=1");
    systemd.until("WATCHDOG=1");
    systemd.until("WATCHDOG=1");
    assert!(first.elapsed() >= Duration::from_millis(150));
    let _stream = daemon.open_stream();
    assert_eq!(systemd.until("STATUS="), "STATUS=1 streams, 1 connections");
    // Without -config there is nothing to reload, but `systemctl reload` must return.
    reload_as_notify_reload_wants(&daemon, &systemd);
    daemon.wait_for_log("nothing to reload", LIMIT);
    daemon.signal(libc::SIGTERM);
    assert_eq!(systemd.until("STOPPING=1"), "STOPPING=1");
}

/// `CLOCK_MONOTONIC` in microseconds, read here rather than through the daemon's own code: the
/// clock systemd compares `MONOTONIC_USEC=` against.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: (test) `now` is valid for writes.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) },
        0
    );
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

/// Sends SIGHUP and checks what `Type=notify-reload` (systemd 253+) needs to see the reload
/// through: `RELOADING=1` with a `MONOTONIC_USEC=` no older than the signal (systemd ignores an
/// older one and the reload times out), then `READY=1`.
fn reload_as_notify_reload_wants(daemon: &Daemon, systemd: &FakeSystemd) {
    let signalled = monotonic_usec();
    daemon.signal(libc::SIGHUP);
    let reloading = systemd.until("RELOADING=1");
    let heard = monotonic_usec();
    let usec: u64 = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("not RELOADING=1 with MONOTONIC_USEC=: {reloading:?}"));
    assert!(
        (signalled..=heard).contains(&usec),
        "MONOTONIC_USEC={usec} is not between the signal ({signalled}) and its receipt ({heard})"
    );
    assert_eq!(systemd.until("READY=1"), "READY=1");
}

#[test]
fn reloads_applied_and_refused_both_end_with_ready_as_notify_reload_needs() {
    let systemd = FakeSystemd::new("notify-reload");
    let notify = systemd.path.to_str().unwrap().to_string();
    let file = ConfigFile::new("notify-reload", "logging:\n  level: info\n");
    let mut daemon = Daemon::start_with_env(
        temp_socket_path("ops-notify-reload"),
        &["-config", file.0.to_str().unwrap(), "-message-delay", "0"],
        &[("NOTIFY_SOCKET", &notify)],
    );
    assert_eq!(systemd.next(), "READY=1");
    file.write("logging:\n  level: debug\n");
    reload_as_notify_reload_wants(&daemon, &systemd);
    daemon.wait_for_log("configuration reloaded", LIMIT);
    // Refused, the reload must still end, or `systemctl reload` hangs until its timeout.
    file.write("logging:\n  level: loud\n");
    reload_as_notify_reload_wants(&daemon, &systemd);
    daemon.wait_for_log("configuration reload refused", LIMIT);
    daemon.signal(libc::SIGTERM);
    assert_eq!(systemd.until("STOPPING=1"), "STOPPING=1");
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

/// Runs the daemon binary with `fds` passed as systemd passes them, its stderr in `log`.
fn start_activated(
    args: &[&str],
    fds: &[(&str, std::os::fd::BorrowedFd<'_>)],
    log: &Path,
) -> spawn::Child {
    // A shell that execs the daemon keeps its pid, which LISTEN_PID names.
    let mut argv: Vec<OsString> = vec![
        "-c".into(),
        "exec \"$0\" \"$@\" 2>>\"$DAEMON_LOG\"".into(),
        daemon_binary().into(),
    ];
    argv.extend(args.iter().map(OsString::from));
    let env = [(OsString::from("DAEMON_LOG"), log.as_os_str().to_owned())];
    spawn::spawn(Path::new("/bin/sh"), &argv, &env, fds).unwrap()
}

fn wait_exit(child: &mut spawn::Child) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < LIMIT {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    panic!("the daemon did not exit");
}

#[test]
fn a_socket_passed_by_systemd_is_served_and_left_in_place() {
    let path = temp_socket_path("ops-activated");
    let listener = UnixListener::bind(&path).unwrap();
    let log = std::env::temp_dir().join(format!("sd-ops-activated-{}.log", std::process::id()));
    let mut child = start_activated(
        &["-socket", "/nonexistent/unused.sock", "-metrics-addr="],
        &[("handoff", listener.as_fd())],
        &log,
    );
    // Handed off on the path systemd bound, which the daemon never bound itself.
    let (mut client, server) = tcp_pair();
    hand_off(&path, SocketType::Stream, b"{}", &server);
    drop(server);
    assert!(read_to_end(&mut client, LIMIT).ends_with("data: [DONE]\n\n"));
    // SAFETY: (test) signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(wait_exit(&mut child), Some(0));
    // Not the daemon's to unlink: systemd keeps listening there for the next start.
    assert!(path.exists());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("socket passed to us"), "{text}");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_passed_socket_of_the_wrong_type_exits_2_naming_both_types() {
    let path = temp_socket_path("ops-wrong-type");
    let listener =
        streaming_daemon::sys::socket::unix_listener(&path, SocketType::SeqPacket, 16).unwrap();
    let log = std::env::temp_dir().join(format!("sd-ops-wrong-{}.log", std::process::id()));
    let mut child = start_activated(
        &["-socket-type", "stream", "-metrics-addr="],
        &[("handoff", listener.as_fd())],
        &log,
    );
    assert_eq!(wait_exit(&mut child), Some(2));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("SOCK_STREAM") && text.contains("SOCK_SEQPACKET"),
        "{text}"
    );
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&path);
}

/// A config file of the test's own, rewritten at will.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path = std::env::temp_dir().join(format!("sd-ops-{name}-{}.yaml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sighup_reloads_level_and_budget_and_refuses_an_invalid_file() {
    let file = ConfigFile::new("reload", "logging:\n  level: info\n");
    let mut daemon = Daemon::start(
        "ops-reload",
        &["-config", file.0.to_str().unwrap(), "-message-delay", "0"],
    );
    file.write("logging:\n  level: debug\nserver:\n  mem_limit: 64MiB\n  socket_mode: 0600\n");
    daemon.signal(libc::SIGHUP);
    let reloaded = daemon.wait_for_log("configuration reloaded", LIMIT);
    assert!(
        reloaded.contains("logging.level") && reloaded.contains("server.mem_limit"),
        "{reloaded}"
    );
    let restart = daemon.wait_for_log("need a restart", LIMIT);
    assert!(restart.contains("server.socket_mode"), "{restart}");
    // Debug lines appear from now on: a handoff without data logs one.
    assert!(daemon.request(b"\0").ends_with("data: [DONE]\n\n"));
    daemon.wait_for_log("handoff without data", LIMIT);

    file.write("logging:\n  level: loud\n");
    daemon.signal(libc::SIGHUP);
    let refused = daemon.wait_for_log("configuration reload refused", LIMIT);
    assert!(refused.contains(":2:"), "the file and line: {refused}");
    // Nothing changed: still serving, still at debug.
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

/// The address the daemon logged for its metrics listener (started with `-metrics-addr
/// 127.0.0.1:0`).
fn metrics_address(daemon: &mut Daemon) -> std::net::SocketAddr {
    let line = daemon.wait_for_log("msg=\"metrics listening\"", LIMIT);
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches('"').strip_suffix("/metrics"))
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"))
}

/// The value of `series` (name and labels, exactly) in a scrape of `address`.
fn scraped(address: std::net::SocketAddr, series: &str) -> f64 {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{response}"))
        .parse()
        .unwrap()
}

const RELOADS_OK: &str = "daemon_config_reloads_total{result=\"ok\"}";
const RELOADS_ERROR: &str = "daemon_config_reloads_total{result=\"error\"}";

#[test]
fn a_reload_applies_max_connections_and_message_delay_to_new_handoffs_and_is_counted() {
    // A 1 s delay keeps the first stream running (18 events) while the test works.
    let file = ConfigFile::new(
        "reload-budget",
        "server:\n  max_connections: 2\nbackend:\n  mock:\n    message_delay_ms: 1000\n",
    );
    let mut daemon = Daemon::start(
        "ops-reload-budget",
        &[
            "-config",
            file.0.to_str().unwrap(),
            "-metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let metrics = metrics_address(&mut daemon);
    assert_eq!(
        (
            scraped(metrics, RELOADS_OK),
            scraped(metrics, RELOADS_ERROR)
        ),
        (0.0, 0.0)
    );
    let running = daemon.open_stream();

    // At 2 the next handoff would be admitted; at 1 the running stream fills the budget.
    file.write("server:\n  max_connections: 1\nbackend:\n  mock:\n    message_delay_ms: 0\n");
    daemon.signal(libc::SIGHUP);
    let reloaded = daemon.wait_for_log("configuration reloaded", LIMIT);
    assert!(reloaded.contains("server.max_connections"), "{reloaded}");
    let turned_away = daemon.request(b"{}");
    let (status, headers, _) = parse_response(&turned_away);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable", "{turned_away}");
    assert!(
        headers.contains(&("Retry-After".into(), "1".into())),
        "{headers:?}"
    );
    assert_eq!(
        (
            scraped(metrics, RELOADS_OK),
            scraped(metrics, RELOADS_ERROR)
        ),
        (1.0, 0.0)
    );

    // Once the running stream is gone there is room again, and the new handoff runs with the
    // reloaded delay of 0: its 18 events arrive at once (at the old 1 s it would take 17 s,
    // beyond read_to_end's bound).
    drop(running);
    daemon.wait_for_log("outcome=client_disconnected", LIMIT);
    let started = Instant::now();
    let body = daemon.request(b"{}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(contents(&body).len(), 18);
    assert!(started.elapsed() < Duration::from_secs(10), "{body}");

    // A refused reload changes nothing and is counted as an error.
    file.write("server:\n  max_connections: zero\n");
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log("configuration reload refused", LIMIT);
    eventually(LIMIT, "the refused reload to be counted", || {
        scraped(metrics, RELOADS_ERROR) == 1.0
    });
    assert_eq!(scraped(metrics, RELOADS_OK), 1.0);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
}

#[test]
fn a_stream_running_across_a_reload_keeps_its_settings_while_a_new_one_gets_the_new_ones() {
    use common::upstream::{
        chunk, delta, gate, ok_stream, Action, FakeUpstream, Kind, DONE_EVENT, LAST_CHUNK,
        SSE_OK_CHUNKED,
    };
    use std::io::Read;
    // A 4 KiB delta: within the default sse_max_line_bytes (256 KiB), over the reloaded 1 KiB.
    let big = "x".repeat(4096);
    let big_delta = delta(&format!("\"{big}\""));
    let (release, released) = gate();
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![
            // The stream accepted before the reload: one event, then the big line once the
            // test has reloaded.
            vec![
                Action::Send(format!("{SSE_OK_CHUNKED}{}", chunk(&delta("\"a\""))).into_bytes()),
                Action::WaitFor(released),
                Action::Send(
                    format!("{}{}{LAST_CHUNK}", chunk(&big_delta), chunk(DONE_EVENT)).into_bytes(),
                ),
            ],
            // The stream accepted after it: the same big line.
            ok_stream(&[&big_delta, DONE_EVENT]),
        ],
    );
    let base = format!(
        "backend:\n  provider: openai\n  openai:\n    api_base: {}/v1\n",
        upstream.base
    );
    let file = ConfigFile::new("reload-running", &base);
    let mut daemon = Daemon::start_with_env(
        temp_socket_path("ops-reload-running"),
        &["-config", file.0.to_str().unwrap()],
        &[("OPENAI_API_KEY", "sk-test-reload")],
    );
    let (mut before, server) = tcp_pair();
    hand_off(
        &daemon.socket,
        SocketType::Stream,
        b"{\"prompt\":\"hi\"}",
        &server,
    );
    drop(server);
    before.set_read_timeout(Some(LIMIT)).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&received, b"data: {\"content\":\"a\"}").is_none() {
        let n = before
            .read(&mut buf)
            .expect("the first event within the limit");
        assert!(n > 0, "{}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }

    file.write(&format!(
        "{base}  upstream:\n    sse_max_line_bytes: 1KiB\n"
    ));
    daemon.signal(libc::SIGHUP);
    let reloaded = daemon.wait_for_log("configuration reloaded", LIMIT);
    assert!(
        reloaded.contains("backend.upstream.sse_max_line_bytes"),
        "{reloaded}"
    );
    // Accepted now: the 1 KiB limit ends it at the big line.
    let after = daemon.request(b"{\"prompt\":\"hi\"}");
    assert!(!after.contains(&big), "{after}");
    assert!(!after.ends_with("data: [DONE]\n\n"), "{after}");
    assert!(after.contains("event: error\n"), "{after}");
    daemon.wait_for_log("event-stream line over 1024 bytes", LIMIT);

    // Accepted before: still under the limit it started with, so the big line passes.
    release.send(()).unwrap();
    received.extend_from_slice(read_to_end(&mut before, LIMIT).as_bytes());
    let body = String::from_utf8(received).unwrap();
    assert_eq!(contents(&body), vec!["a".to_string(), big]);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(upstream.requests().len(), 2);
}

/// The pid a log line names as `pid=N`.
fn pid_in(line: &str) -> i32 {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"))
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn an_upgrade_under_steady_load_loses_no_handoff_and_keeps_the_socket() {
    let mut old = Daemon::start("ops-upgrade", &["-message-delay", "10ms"]);
    let socket = old.socket.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    let load = {
        let (socket, stop, completed) = (socket.clone(), stop.clone(), completed.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                assert!(socket.exists(), "the socket path disappeared");
                let (mut client, server) = tcp_pair();
                hand_off(&socket, SocketType::Stream, b"{}", &server);
                drop(server);
                let body = read_to_end(&mut client, LIMIT);
                if body.ends_with("data: [DONE]\n\n") {
                    completed.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(body);
                }
            }
            failures
        })
    };
    eventually(LIMIT, "some streams before the upgrade", || {
        completed.load(Ordering::Relaxed) > 5
    });
    old.signal(libc::SIGUSR2);
    let started = old.wait_for_log("new process started", LIMIT);
    let new_pid = pid_in(&started);
    old.wait_for_log("handing over", LIMIT);
    assert_eq!(old.wait_exit(LIMIT), 0);
    let before = completed.load(Ordering::Relaxed);
    eventually(LIMIT, "streams served by the new process", || {
        completed.load(Ordering::Relaxed) > before + 5
    });
    stop.store(true, Ordering::Relaxed);
    let failures = load.join().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(socket.exists());
    // SAFETY: (test) the new process was started by ours for this test.
    unsafe { libc::kill(new_pid, libc::SIGTERM) };
    eventually(LIMIT, "the new process to exit", || !alive(new_pid));
    assert!(
        !socket.exists(),
        "the new process owned the path and removed it"
    );
}

#[test]
fn under_systemd_the_upgraded_process_reports_its_pid_and_the_old_one_stays_quiet() {
    let systemd = FakeSystemd::new("notify-upgrade");
    let notify = systemd.path.to_str().unwrap().to_string();
    let mut old = Daemon::start_with_env(
        temp_socket_path("ops-notify-upgrade"),
        &["-message-delay", "0"],
        &[("NOTIFY_SOCKET", &notify)],
    );
    assert_eq!(systemd.next(), "READY=1");
    old.signal(libc::SIGUSR2);
    let new_pid = pid_in(&old.wait_for_log("new process started", LIMIT));
    // NotifyAccess=all lets systemd take this from a process that is not yet the main one.
    assert_eq!(
        systemd.until("MAINPID="),
        format!("MAINPID={new_pid}\nREADY=1")
    );
    assert_eq!(old.wait_exit(LIMIT), 0);
    // Everything the old process sent is queued by now. Its drain must not say STOPPING=1 (nor
    // anything after the hand-over): systemd would take the service for stopping.
    systemd.socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut after = Vec::new();
    while let Ok(n) = systemd.socket.recv(&mut buf) {
        after.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        assert!(after.len() < 1000, "{after:?}");
    }
    assert!(
        after.iter().all(|message| message.starts_with("STATUS=")),
        "{after:?}"
    );
    systemd.socket.set_nonblocking(false).unwrap();
    // The new process serves, and it is the one systemd hears stopping.
    assert!(old.request(b"{}").ends_with("data: [DONE]\n\n"));
    // SAFETY: (test) the new process was started by ours for this test.
    assert_eq!(unsafe { libc::kill(new_pid, libc::SIGTERM) }, 0);
    assert_eq!(systemd.until("STOPPING=1"), "STOPPING=1");
    eventually(LIMIT, "the new process to exit", || !alive(new_pid));
}

#[test]
fn a_new_binary_that_fails_leaves_the_old_one_serving() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("sd-ops-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("streaming-daemon");
    // A link, not a copy: a copy's write descriptor can be inherited by a child another test
    // thread forks at that moment, and executing the file then fails with ETXTBSY.
    if std::fs::hard_link(daemon_binary(), &program).is_err() {
        std::fs::copy(daemon_binary(), &program).unwrap();
    }
    let mut daemon = Daemon::start_program(&program, "ops-bad-upgrade", &["-message-delay", "0"]);
    // The "new version" put in place: it starts and dies at once.
    std::fs::remove_file(&program).unwrap();
    std::fs::write(&program, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    daemon.signal(libc::SIGUSR2);
    let failed = daemon.wait_for_log("upgrade failed", LIMIT);
    assert!(failed.contains("READY=1"), "{failed}");
    assert!(daemon.socket.exists());
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LIMIT), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_busy_metrics_port_does_not_stop_the_daemon() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut daemon = Daemon::start(
        "ops-busy-metrics",
        &["-metrics-addr", &address, "-message-delay", "0"],
    );
    let line = daemon.wait_for_log("cannot listen for metrics", LIMIT);
    assert!(line.contains("level=ERROR"), "{line}");
    assert!(daemon.request(b"{}").ends_with("data: [DONE]\n\n"));
    // The port is still the other listener's.
    assert!(TcpStream::connect(&address).is_ok());
    drop(taken);
}
