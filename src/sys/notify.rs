//! sd_notify without libsystemd: one datagram per message to `$NOTIFY_SOCKET`.
//!
//! The protocol is a datagram of `KEY=value` lines sent to the Unix socket named by
//! `$NOTIFY_SOCKET`: a path, or an abstract name when it starts with `@`. Without the variable
//! every message is dropped, so callers never need to ask whether systemd is there.
//!
//! Sending never blocks and never fails the caller: the socket is non-blocking, a full queue or a
//! vanished service manager drops the message, and the first failure is logged once (a service
//! manager that went away would otherwise fill the log).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{check, socket};

/// Where messages go: the socket we send from and the service manager's address.
struct Target {
    socket: OwnedFd,
    address: (libc::sockaddr_un, libc::socklen_t),
    /// Shown in the one warning about a failed send.
    name: OsString,
}

/// Sends sd_notify messages; a no-op when `$NOTIFY_SOCKET` was not set. `Sync`, so one notifier
/// can be shared by every worker.
pub struct Notifier {
    target: Option<Target>,
    /// Set by the first failed send, so that only that one is logged.
    failed: AtomicBool,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or a no-op one when it is unset or empty. A value we
    /// cannot use (not a path or `@name`, too long) is logged once and gives a no-op notifier:
    /// not being able to tell systemd is never a reason not to serve.
    pub fn from_env() -> Notifier {
        match Notifier::from_value(std::env::var_os("NOTIFY_SOCKET").as_deref()) {
            Ok(notifier) => notifier,
            Err(e) => {
                log::warn!(error:% = e; "systemd will not be told about readiness or status");
                Notifier::disabled()
            }
        }
    }

    /// A notifier for a `$NOTIFY_SOCKET` value: `None` or empty gives a no-op notifier.
    pub fn from_value(value: Option<&OsStr>) -> Result<Notifier, NotifyError> {
        let Some(name) = value.filter(|v| !v.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        Notifier::to_socket(name)
    }

    /// A notifier that sends to `name`: an absolute path, or an abstract name starting with `@`.
    pub fn to_socket(name: &OsStr) -> Result<Notifier, NotifyError> {
        use std::os::unix::ffi::OsStrExt;
        let bad = |reason: String| NotifyError::BadAddress(name.to_os_string(), reason);
        if !matches!(name.as_bytes().first(), Some(b'/' | b'@')) {
            return Err(bad(
                "it is neither an absolute path nor an @abstract name".into()
            ));
        }
        let address = socket::unix_address_of(name).map_err(|e| bad(e.to_string()))?;
        let socket = socket::unix_datagram().map_err(NotifyError::Socket)?;
        Ok(Notifier {
            target: Some(Target {
                socket,
                address,
                name: name.to_os_string(),
            }),
            failed: AtomicBool::new(false),
        })
    }

    /// A notifier that drops every message.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            failed: AtomicBool::new(false),
        }
    }

    /// Whether messages go anywhere (`$NOTIFY_SOCKET` was set).
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `message` (newline-separated `KEY=value` lines) as one datagram. Returns whether
    /// it was sent; `false` when disabled or when the send failed (logged the first time only).
    pub fn send(&self, message: &str) -> bool {
        let Some(target) = &self.target else {
            return false;
        };
        match socket::send_to(target.socket.as_fd(), message.as_bytes(), &target.address) {
            Ok(_) => true,
            Err(e) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "cannot notify systemd at {}: {e}; this and later notifications are dropped, this is logged once",
                        target.name.to_string_lossy()
                    );
                }
                false
            }
        }
    }

    /// `READY=1`: start-up is complete, or a reload is done (or refused).
    pub fn ready(&self) -> bool {
        self.send("READY=1")
    }

    /// `STATUS=…`, one line shown by `systemctl status`. Line breaks become spaces: a newline
    /// would start another `KEY=value` field.
    pub fn status(&self, text: &str) -> bool {
        self.send(&format!("STATUS={}", text.replace(['\n', '\r'], " ")))
    }

    /// `STOPPING=1`: a drain began.
    pub fn stopping(&self) -> bool {
        self.send("STOPPING=1")
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` that `Type=notify-reload` asks for.
    pub fn reloading(&self) -> bool {
        match monotonic_usec() {
            Ok(usec) => self.send(&reloading_message(usec)),
            // Without the timestamp systemd 253+ would reject the message; send it bare.
            Err(_) => self.send("RELOADING=1"),
        }
    }

    /// `WATCHDOG=1`: the event loop is alive.
    pub fn watchdog(&self) -> bool {
        self.send("WATCHDOG=1")
    }

    /// `MAINPID=<pid>` with `READY=1`: the new process of an upgrade is ready and is now the
    /// service's main process (the unit needs `NotifyAccess=all` for systemd to take it).
    pub fn main_pid_ready(&self, pid: u32) -> bool {
        self.send(&format!("MAINPID={pid}\nREADY=1"))
    }

    #[cfg(test)]
    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub enum NotifyError {
    BadAddress(OsString, String),
    Socket(io::Error),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::BadAddress(name, reason) => write!(
                f,
                "NOTIFY_SOCKET={:?} cannot be used: {reason}",
                name.to_string_lossy()
            ),
            NotifyError::Socket(e) => write!(f, "cannot create the sd_notify socket: {e}"),
        }
    }
}

impl std::error::Error for NotifyError {}

fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` against.
pub fn monotonic_usec() -> io::Result<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is valid for writes.
    check(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) })?;
    Ok((now.tv_sec as u64).saturating_mul(1_000_000) + now.tv_nsec as u64 / 1_000)
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set and
/// `$WATCHDOG_PID` is unset or names this process; `None` means no watchdog.
pub fn watchdog_interval_from_env() -> Option<Duration> {
    watchdog_interval(
        std::env::var_os("WATCHDOG_USEC").as_deref(),
        std::env::var_os("WATCHDOG_PID").as_deref(),
        std::process::id(),
    )
}

/// `watchdog_interval_from_env` with the variables and our pid given.
pub fn watchdog_interval(
    usec: Option<&OsStr>,
    pid: Option<&OsStr>,
    our_pid: u32,
) -> Option<Duration> {
    if let Some(pid) = pid {
        // Set for another process (our parent, before an upgrade handed over): not ours to ping.
        if pid.to_str()?.parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    let usec: u64 = usec?.to_str()?.parse().ok()?;
    if usec == 0 {
        return None;
    }
    // Floored so that an absurd `WatchdogSec=1us` cannot turn the loop into a busy one.
    Some(Duration::from_micros(usec / 2).max(MIN_WATCHDOG_INTERVAL))
}

/// The shortest watchdog interval we keep.
const MIN_WATCHDOG_INTERVAL: Duration = Duration::from_millis(1);

/// When to send `STATUS=<n> streams, <m> connections`: at most every 5 s, and only when the
/// counts changed since the last one sent. Sans-I/O: the loop passes the time and the counts.
#[derive(Debug, Default)]
pub struct StatusThrottle {
    last: Option<(Instant, u64, u64)>,
}

/// The shortest gap between two `STATUS=` messages.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

impl StatusThrottle {
    /// The status text to send now, if any; the throttle then counts it as sent.
    pub fn due(&mut self, now: Instant, streams: u64, connections: u64) -> Option<String> {
        if let Some((at, last_streams, last_connections)) = self.last {
            if (last_streams, last_connections) == (streams, connections)
                || now.saturating_duration_since(at) < STATUS_INTERVAL
            {
                return None;
            }
        }
        self.last = Some((now, streams, connections));
        Some(format!("{streams} streams, {connections} connections"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    use std::path::PathBuf;

    fn temp_path(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sd-notify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Reads one datagram, waiting at most 5 s (the notifier sent it before we read).
    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn every_message_reaches_a_path_socket_as_one_datagram() {
        let path = temp_path("path");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::from_value(Some(path.as_os_str())).unwrap();
        assert!(notifier.is_enabled());

        assert!(notifier.ready());
        assert_eq!(receive(&receiver), "READY=1");
        assert!(notifier.status("3 streams, 4 connections"));
        assert_eq!(receive(&receiver), "STATUS=3 streams, 4 connections");
        assert!(notifier.status("two\nlines"));
        assert_eq!(receive(&receiver), "STATUS=two lines");
        assert!(notifier.stopping());
        assert_eq!(receive(&receiver), "STOPPING=1");
        assert!(notifier.watchdog());
        assert_eq!(receive(&receiver), "WATCHDOG=1");
        assert!(notifier.main_pid_ready(4242));
        assert_eq!(receive(&receiver), "MAINPID=4242\nREADY=1");

        let before = monotonic_usec().unwrap();
        assert!(notifier.reloading());
        let message = receive(&receiver);
        let after = monotonic_usec().unwrap();
        let usec: u64 = message
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("unexpected {message:?}"))
            .parse()
            .unwrap();
        assert!(
            (before..=after).contains(&usec),
            "{before} <= {usec} <= {after}"
        );
        assert!(!notifier.has_failed());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        let name = format!("sd-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier::from_value(Some(OsStr::new(&format!("@{name}")))).unwrap();
        assert!(notifier.ready());
        assert_eq!(receive(&receiver), "READY=1");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        for value in [None, Some(OsStr::new(""))] {
            let notifier = Notifier::from_value(value).unwrap();
            assert!(!notifier.is_enabled());
            assert!(!notifier.ready());
            assert!(!notifier.has_failed());
        }
    }

    #[test]
    fn unusable_addresses_are_refused() {
        for value in [
            "relative/path",
            "vsock:2:1234",
            &format!("/{}", "x".repeat(200)),
        ] {
            let error = Notifier::from_value(Some(OsStr::new(value))).err();
            assert!(
                matches!(error, Some(NotifyError::BadAddress(..))),
                "{value}: {error:?}"
            );
            assert!(error.unwrap().to_string().contains("NOTIFY_SOCKET"));
        }
    }

    #[test]
    fn a_missing_receiver_fails_quietly_and_is_noted_once() {
        let path = temp_path("missing");
        let notifier = Notifier::to_socket(path.as_os_str()).unwrap();
        assert!(!notifier.ready());
        assert!(notifier.has_failed());
        // Still nothing but `false` for the caller.
        assert!(!notifier.watchdog());
    }

    #[test]
    fn a_full_receiver_queue_drops_messages_instead_of_blocking() {
        let path = temp_path("full");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::to_socket(path.as_os_str()).unwrap();
        // The receiver never reads: its queue fills after a few hundred datagrams at most and
        // every later send fails with EAGAIN at once (a blocking send would hang this test).
        let sent = (0..10_000).filter(|_| notifier.watchdog()).count();
        assert!(sent > 0 && sent < 10_000, "sent {sent}");
        assert!(notifier.has_failed());
        assert_eq!(receive(&receiver), "WATCHDOG=1");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_watchdog_pings_at_half_the_interval_for_our_pid_only() {
        let usec = Some(OsStr::new("30000000"));
        assert_eq!(
            watchdog_interval(usec, None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(usec, Some(OsStr::new("7")), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval(usec, Some(OsStr::new("8")), 7), None);
        assert_eq!(watchdog_interval(usec, Some(OsStr::new("x")), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some(OsStr::new("0")), None, 7), None);
        assert_eq!(watchdog_interval(Some(OsStr::new("-5")), None, 7), None);
        assert_eq!(
            watchdog_interval(Some(OsStr::new("1")), None, 7),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn status_is_sent_at_most_every_five_seconds_and_only_on_change() {
        let start = Instant::now();
        let mut throttle = StatusThrottle::default();
        assert_eq!(
            throttle.due(start, 1, 2).as_deref(),
            Some("1 streams, 2 connections")
        );
        assert_eq!(throttle.due(start + Duration::from_secs(1), 5, 5), None);
        assert_eq!(throttle.due(start + Duration::from_secs(6), 1, 2), None);
        assert_eq!(
            throttle
                .due(start + Duration::from_secs(6), 5, 5)
                .as_deref(),
            Some("5 streams, 5 connections")
        );
        assert_eq!(throttle.due(start + Duration::from_secs(10), 6, 6), None);
        assert!(throttle
            .due(start + Duration::from_secs(11), 6, 6)
            .is_some());
    }
}
