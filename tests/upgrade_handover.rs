//! The upgrade's building blocks together, across a real fork and exec (SPEC §6.3, §6.4):
//! `sys::spawn` passes the listeners and the upgrade pipe as fds 3, 4, 5 with `LISTEN_*`, and
//! `sys::activation` plus `Listener::inherited` take them in the new process.
//!
//! The new process is this test binary again, running only `new_process_side` (which does
//! nothing unless started that way): it takes the fds, accepts the connection that was queued
//! before it started, answers it, writes `READY=1` to the pipe and exits.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use streaming_daemon::config::SocketType;
use streaming_daemon::reactor::Listener;
use streaming_daemon::sys::{activation, socket, spawn};

/// Set in the new process's environment: run `new_process_side` for real.
const CHILD: &str = "SD_HANDOVER_TEST_CHILD";
const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn a_new_process_takes_the_listeners_and_serves_what_was_queued() {
    let path = std::env::temp_dir().join(format!("sd-handover-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut listener = Listener::bind(&path, SocketType::Stream, 0o660).unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_port = metrics.local_addr().unwrap().port();
    let (ready_read, ready_write) = spawn::upgrade_pipe().unwrap();

    // Queued in the backlog before the new process exists: it must be served, not lost.
    let mut client = UnixStream::connect(&path).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();

    let exe = std::env::current_exe().unwrap();
    let args: Vec<OsString> = [
        "--exact",
        "new_process_side",
        "--nocapture",
        "--test-threads=1",
    ]
    .map(OsString::from)
    .to_vec();
    let env = [
        (OsString::from(CHILD), OsString::from(&path)),
        (
            OsString::from("STREAMING_DAEMON_SOCKET_OWNER"),
            OsString::from("1"),
        ),
    ];
    let mut child = spawn::spawn(
        &exe,
        &args,
        &env,
        &[
            ("handoff", listener.fd()),
            ("metrics", metrics.as_fd()),
            ("upgrade", ready_write.as_fd()),
        ],
    )
    .unwrap();
    // Only the child holds the write end now: its exit ends the pipe.
    drop(ready_write);

    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert_eq!(
        answer,
        format!("served by {} metrics {metrics_port}", child.id())
    );

    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the new process did not exit");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(status.success(), "the new process failed: {status:?}");
    let mut ready = String::new();
    std::fs::File::from(ready_read)
        .read_to_string(&mut ready)
        .unwrap();
    assert_eq!(ready, "READY=1\n");

    // The new process owns the path now: our listener leaves the file alone…
    listener.release_path();
    drop(listener);
    // …and the new process, which claimed it, removed it when its listener went away.
    assert!(
        !path.exists(),
        "the new process owned and removed the socket file"
    );
}

/// The new process. A no-op in a normal test run.
#[test]
fn new_process_side() {
    let Some(path) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let activation = activation::take_from_env(SocketType::Stream)
        .expect("the passed fds are valid")
        .expect("LISTEN_PID names this process");
    for name in activation::VARIABLES {
        assert_eq!(std::env::var_os(name), None, "{name} is removed once read");
    }
    assert_eq!(activation.handoff_name, "handoff");
    assert!(activation.socket_owner);
    let metrics = std::net::TcpListener::from(activation.metrics.expect("metrics is passed"));
    let metrics_port = metrics.local_addr().unwrap().port();

    let mut listener = Listener::inherited(activation.handoff, SocketType::Stream).unwrap();
    listener.claim_path(&path).unwrap();
    // The listener is non-blocking now, and the connection was queued before we started.
    let client: OwnedFd = socket::accept(listener.fd()).expect("the queued connection is there");
    let mut client = UnixStream::from(client);
    client.set_nonblocking(false).unwrap();
    write!(
        client,
        "served by {} metrics {metrics_port}",
        std::process::id()
    )
    .unwrap();
    drop(client);

    let mut ready = std::fs::File::from(activation.upgrade.expect("upgrade is passed"));
    ready.write_all(b"READY=1\n").unwrap();
    drop(ready);
    drop(listener);
}
