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
    daemon.signal(libc::SIGHUP);
    let reloading = systemd.until("RELOADING=1");
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(systemd.until("READY=1"), "READY=1");
    daemon.wait_for_log("nothing to reload", LIMIT);
    daemon.signal(libc::SIGTERM);
    assert_eq!(systemd.until("STOPPING=1"), "STOPPING=1");
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
fn a_new_binary_that_fails_leaves_the_old_one_serving() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("sd-ops-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("streaming-daemon");
    std::fs::copy(daemon_binary(), &program).unwrap();
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
