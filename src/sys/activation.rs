//! Socket activation: listeners passed to us as fds 3, 4, … by systemd or by the process we
//! replace in an upgrade (SPEC §6.3, §6.4).
//!
//! The protocol: `LISTEN_PID` is the pid the fds are meant for (a child that inherited the
//! environment must not take them), `LISTEN_FDS` how many there are, from fd 3 on, and
//! `LISTEN_FDNAMES` their names, `:`-separated (`FileDescriptorName=` in the socket unit). We
//! use `handoff` (else the first fd), `metrics` and `upgrade`; any other fd is closed.
//!
//! `take_from_env` must run before any thread starts: it removes the variables from the
//! environment, and changing the environment while another thread may read it (libc's resolver
//! does) is undefined behaviour. Removing them also means a second call finds nothing, so the
//! fds are taken once, and no program we start later sees fds meant for us.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{check, socket};
use crate::config::SocketType;

/// The first passed fd, after stdin, stdout and stderr.
const FIRST_FD: RawFd = 3;
/// More than any unit of ours passes; a larger `LISTEN_FDS` is a broken environment.
const MAX_FDS: usize = 64;

/// The variables of the protocol, as found in the environment.
#[derive(Debug, Default, Clone)]
pub struct ListenVars {
    pub pid: Option<OsString>,
    pub fds: Option<OsString>,
    pub names: Option<OsString>,
    /// `STREAMING_DAEMON_SOCKET_OWNER`: `1` when the process we replace owned the socket path
    /// (it bound it), so that we now unlink it on drain.
    pub socket_owner: Option<OsString>,
}

/// The environment variables read, and removed, by `ListenVars::take_from_env`.
pub const VARIABLES: [&str; 4] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "STREAMING_DAEMON_SOCKET_OWNER",
];

impl ListenVars {
    /// Reads the variables and removes them from the environment. Call it before any thread
    /// starts (see the module comment).
    pub fn take_from_env() -> ListenVars {
        let [pid, fds, names, socket_owner] = VARIABLES.map(|name| {
            let value = std::env::var_os(name);
            std::env::remove_var(name);
            value
        });
        ListenVars {
            pid,
            fds,
            names,
            socket_owner,
        }
    }
}

/// Which passed fd is which, before any of them is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The handoff listener and its name.
    pub handoff: (RawFd, String),
    pub metrics: Option<RawFd>,
    pub upgrade: Option<RawFd>,
    /// Passed but not ours to use: closed, with a warning.
    pub unused: Vec<(RawFd, String)>,
    pub socket_owner: bool,
}

/// Reads the variables: `Ok(None)` when nothing was passed to this process.
pub fn parse(vars: &ListenVars, our_pid: u32) -> Result<Option<Layout>, ActivationError> {
    let Some(pid) = &vars.pid else {
        return Ok(None);
    };
    let pid: u32 = number(pid).ok_or_else(|| bad("LISTEN_PID", pid))?;
    if pid != our_pid {
        log::debug!(listen_pid = pid, pid = our_pid; "LISTEN_PID is not ours: nothing was passed to us");
        return Ok(None);
    }
    let count = match &vars.fds {
        None => 0,
        Some(fds) => number(fds).ok_or_else(|| bad("LISTEN_FDS", fds))?,
    } as usize;
    if count == 0 {
        return Ok(None);
    }
    if count > MAX_FDS {
        return Err(ActivationError::TooMany(count));
    }
    let names: Vec<String> = match &vars.names {
        None => vec!["unknown".to_string(); count],
        Some(names) => names
            .to_str()
            .ok_or_else(|| bad("LISTEN_FDNAMES", names))?
            .split(':')
            .map(str::to_string)
            .collect(),
    };
    if names.len() != count {
        return Err(ActivationError::NameCount {
            names: names.len(),
            fds: count,
        });
    }

    let mut named: Vec<(RawFd, String)> = (FIRST_FD..).zip(names).collect();
    let mut take = |wanted: &str| {
        let index = named.iter().position(|(_, name)| name == wanted)?;
        Some(named.remove(index))
    };
    let handoff = take("handoff");
    let metrics = take("metrics").map(|(fd, _)| fd);
    let upgrade = take("upgrade").map(|(fd, _)| fd);
    let handoff = match handoff {
        Some(handoff) => handoff,
        // Unnamed (LISTEN_FDNAMES absent, or a socket unit without FileDescriptorName=): the
        // first fd that is not one of the others.
        None if !named.is_empty() => named.remove(0),
        None => return Err(ActivationError::NoHandoff),
    };
    Ok(Some(Layout {
        handoff,
        metrics,
        upgrade,
        unused: named,
        socket_owner: vars.socket_owner.as_deref() == Some(OsStr::new("1")),
    }))
}

fn number<T: std::str::FromStr>(value: &OsStr) -> Option<T> {
    value.to_str()?.parse().ok()
}

fn bad(name: &'static str, value: &OsStr) -> ActivationError {
    ActivationError::BadVariable {
        name,
        value: value.to_string_lossy().into_owned(),
    }
}

/// The listeners passed to us, owned, close-on-exec and non-blocking, and checked.
#[derive(Debug)]
pub struct Activation {
    /// A listening Unix socket of the configured type.
    pub handoff: OwnedFd,
    /// Its `LISTEN_FDNAMES` name, for the start-up line.
    pub handoff_name: String,
    /// A listening TCP socket, used instead of binding `metrics.listen_addr`.
    pub metrics: Option<OwnedFd>,
    /// The write end of the upgrade pipe: write `READY=1\n` to it once ready, then close it.
    pub upgrade: Option<OwnedFd>,
    /// `STREAMING_DAEMON_SOCKET_OWNER=1`: we own the socket path (SPEC §1.4, §6.3).
    pub socket_owner: bool,
}

/// Takes the fds passed to this process, if any: reads and removes `LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES` and `STREAMING_DAEMON_SOCKET_OWNER`, then checks that the handoff fd is a
/// listening Unix socket of `socket_type`, the metrics one a listening TCP socket and the upgrade
/// one a pipe. Any error is a start-up error (exit 2). Call it once, before any thread starts.
pub fn take_from_env(socket_type: SocketType) -> Result<Option<Activation>, ActivationError> {
    let vars = ListenVars::take_from_env();
    let Some(layout) = parse(&vars, std::process::id())? else {
        return Ok(None);
    };
    // SAFETY: LISTEN_PID names this process, so the fds from 3 on were left open for us by our
    // parent across exec; the variables are gone from the environment now, so nothing else in
    // this process takes them, and `claim` checks that each one is open.
    unsafe { claim(layout, socket_type) }.map(Some)
}

/// Owns the fds of `layout`, closes the unused ones and checks the rest.
///
/// # Safety
/// Every fd in `layout` must be open and owned by nothing else in this process.
unsafe fn claim(layout: Layout, socket_type: SocketType) -> Result<Activation, ActivationError> {
    let own = |fd: RawFd, name: &str| -> Result<OwnedFd, ActivationError> {
        // SAFETY: F_GETFD only reads the flags of `fd`; it fails with EBADF if it is not open.
        check(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map_err(|error| {
            ActivationError::NotOpen {
                fd,
                name: name.to_string(),
                error,
            }
        })?;
        // SAFETY: open (just checked) and owned by nothing else (the caller's promise).
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // Ours from now on: never inherited by a program we start, never blocking the loop.
        socket::set_cloexec(owned.as_fd())
            .and_then(|()| socket::set_nonblocking(owned.as_fd()))
            .map_err(|error| ActivationError::Flags {
                fd,
                name: name.to_string(),
                error,
            })?;
        Ok(owned)
    };
    for (fd, name) in &layout.unused {
        log::warn!(
            fd = *fd,
            name = name.as_str();
            "closing a passed fd: only handoff, metrics and upgrade are used"
        );
        // SAFETY: the caller's promise; owning it closes it now.
        drop(unsafe { OwnedFd::from_raw_fd(*fd) });
    }
    let (handoff_fd, handoff_name) = layout.handoff;
    // All owned before any check, so that an error closes every one of them.
    let handoff = own(handoff_fd, &handoff_name);
    let metrics = layout.metrics.map(|fd| own(fd, "metrics")).transpose();
    let upgrade = layout.upgrade.map(|fd| own(fd, "upgrade")).transpose();
    let (handoff, metrics, upgrade) = (handoff?, metrics?, upgrade?);

    check_handoff(handoff.as_fd(), socket_type).map_err(|problem| ActivationError::Handoff {
        fd: handoff_fd,
        name: handoff_name.clone(),
        problem,
    })?;
    if let Some(metrics) = &metrics {
        check_metrics(metrics.as_fd()).map_err(|problem| ActivationError::Metrics {
            fd: metrics.as_raw_fd(),
            problem,
        })?;
    }
    if let Some(upgrade) = &upgrade {
        check_upgrade(upgrade.as_fd()).map_err(|problem| ActivationError::Upgrade {
            fd: upgrade.as_raw_fd(),
            problem,
        })?;
    }
    Ok(Activation {
        handoff,
        handoff_name,
        metrics,
        upgrade,
        socket_owner: layout.socket_owner,
    })
}

/// What is wrong with a passed fd.
#[derive(Debug)]
pub enum Problem {
    /// A socket call on it failed: not a socket at all (a file, a pipe).
    NotASocket(io::Error),
    /// A socket of another family (`AF_INET` where `AF_UNIX` was wanted…).
    Domain {
        expected: &'static str,
        found: libc::c_int,
    },
    /// A socket of another type than the configured one.
    Type {
        expected: &'static str,
        found: libc::c_int,
    },
    /// A socket nobody called `listen` on (a connected socket).
    NotListening,
    NotAPipe,
    Stat(io::Error),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotASocket(e) => write!(f, "it is not a socket ({e})"),
            Problem::Domain { expected, found } => {
                write!(f, "it is an {} socket, not {expected}", domain_name(*found))
            }
            Problem::Type { expected, found } => {
                write!(f, "it is a {} socket, not {expected}", type_name(*found))
            }
            Problem::NotListening => write!(f, "it is a socket that is not listening"),
            Problem::NotAPipe => write!(f, "it is not a pipe"),
            Problem::Stat(e) => write!(f, "cannot inspect it: {e}"),
        }
    }
}

/// The handoff fd must be a listening `AF_UNIX` socket of `socket_type`.
pub fn check_handoff(fd: BorrowedFd<'_>, socket_type: SocketType) -> Result<(), Problem> {
    expect_domain(fd, &[libc::AF_UNIX], "AF_UNIX")?;
    let expected = match socket_type {
        SocketType::Stream => libc::SOCK_STREAM,
        SocketType::SeqPacket => libc::SOCK_SEQPACKET,
    };
    let found = socket::socket_type(fd).map_err(Problem::NotASocket)?;
    if found != expected {
        return Err(Problem::Type {
            expected: type_name(expected),
            found,
        });
    }
    expect_listening(fd)
}

/// The metrics fd must be a listening TCP socket.
pub fn check_metrics(fd: BorrowedFd<'_>) -> Result<(), Problem> {
    expect_domain(fd, &[libc::AF_INET, libc::AF_INET6], "AF_INET or AF_INET6")?;
    let found = socket::socket_type(fd).map_err(Problem::NotASocket)?;
    if found != libc::SOCK_STREAM {
        return Err(Problem::Type {
            expected: "SOCK_STREAM",
            found,
        });
    }
    expect_listening(fd)
}

/// The upgrade fd must be a pipe (its write end).
pub fn check_upgrade(fd: BorrowedFd<'_>) -> Result<(), Problem> {
    // SAFETY: all-zero is a valid stat buffer.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `status` is valid for writes; `fd` is open.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut status) }).map_err(Problem::Stat)?;
    if status.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(Problem::NotAPipe);
    }
    Ok(())
}

fn expect_domain(
    fd: BorrowedFd<'_>,
    wanted: &[libc::c_int],
    expected: &'static str,
) -> Result<(), Problem> {
    let found = socket::socket_domain(fd).map_err(Problem::NotASocket)?;
    if !wanted.contains(&found) {
        return Err(Problem::Domain { expected, found });
    }
    Ok(())
}

fn expect_listening(fd: BorrowedFd<'_>) -> Result<(), Problem> {
    match socket::is_listening(fd) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::NotListening),
        Err(e) => Err(Problem::NotASocket(e)),
    }
}

fn type_name(kind: libc::c_int) -> &'static str {
    match kind {
        libc::SOCK_STREAM => "SOCK_STREAM",
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET",
        libc::SOCK_DGRAM => "SOCK_DGRAM",
        _ => "unknown type of",
    }
}

fn domain_name(domain: libc::c_int) -> &'static str {
    match domain {
        libc::AF_UNIX => "AF_UNIX",
        libc::AF_INET => "AF_INET",
        libc::AF_INET6 => "AF_INET6",
        libc::AF_NETLINK => "AF_NETLINK",
        _ => "unknown family of",
    }
}

/// Why the passed fds cannot be used. Every one is a start-up error (exit 2).
#[derive(Debug)]
pub enum ActivationError {
    BadVariable {
        name: &'static str,
        value: String,
    },
    TooMany(usize),
    NameCount {
        names: usize,
        fds: usize,
    },
    NoHandoff,
    NotOpen {
        fd: RawFd,
        name: String,
        error: io::Error,
    },
    Flags {
        fd: RawFd,
        name: String,
        error: io::Error,
    },
    Handoff {
        fd: RawFd,
        name: String,
        problem: Problem,
    },
    Metrics {
        fd: RawFd,
        problem: Problem,
    },
    Upgrade {
        fd: RawFd,
        problem: Problem,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::BadVariable { name, value } => write!(
                f,
                "{name}={value:?} is not valid; it is set by systemd or by the daemon we replace, \
                 remove it from the environment if neither started us"
            ),
            ActivationError::TooMany(count) => write!(
                f,
                "LISTEN_FDS={count} is more than the {MAX_FDS} fds we accept; pass handoff, metrics and upgrade only"
            ),
            ActivationError::NameCount { names, fds } => write!(
                f,
                "LISTEN_FDNAMES has {names} names for LISTEN_FDS={fds} fds; they must match"
            ),
            ActivationError::NoHandoff => write!(
                f,
                "no handoff listener among the passed fds (only metrics/upgrade); name one \
                 FileDescriptorName=handoff in the socket unit"
            ),
            ActivationError::NotOpen { fd, name, error } => write!(
                f,
                "passed fd {fd} ({name:?}) is not open: {error}; check LISTEN_FDS"
            ),
            ActivationError::Flags { fd, name, error } => {
                write!(f, "cannot set the flags of passed fd {fd} ({name:?}): {error}")
            }
            ActivationError::Handoff { fd, name, problem } => match problem {
                Problem::Type { expected, found } => write!(
                    f,
                    "the socket-activated handoff fd {fd} ({name:?}) is a {} socket but -socket-type \
                     asks for {expected}; use ListenStream= for stream or ListenSequentialPacket= \
                     for seqpacket in the socket unit, or change server.socket_type",
                    type_name(*found)
                ),
                _ => write!(
                    f,
                    "the socket-activated handoff fd {fd} ({name:?}) must be a listening Unix socket: {problem}"
                ),
            },
            ActivationError::Metrics { fd, problem } => write!(
                f,
                "the socket-activated metrics fd {fd} must be a listening TCP socket: {problem}"
            ),
            ActivationError::Upgrade { fd, problem } => write!(
                f,
                "the passed upgrade fd {fd} must be the write end of a pipe: {problem}"
            ),
        }
    }
}

impl std::error::Error for ActivationError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;
    use std::path::PathBuf;

    fn vars(pid: &str, fds: &str, names: Option<&str>) -> ListenVars {
        ListenVars {
            pid: Some(pid.into()),
            fds: Some(fds.into()),
            names: names.map(Into::into),
            socket_owner: None,
        }
    }

    #[test]
    fn fds_are_found_by_name_from_fd_3() {
        let layout = parse(&vars("42", "3", Some("metrics:handoff:upgrade")), 42)
            .unwrap()
            .unwrap();
        assert_eq!(layout.handoff, (4, "handoff".to_string()));
        assert_eq!(layout.metrics, Some(3));
        assert_eq!(layout.upgrade, Some(5));
        assert!(layout.unused.is_empty());
        assert!(!layout.socket_owner);
    }

    #[test]
    fn without_a_handoff_name_the_first_other_fd_is_the_handoff_listener() {
        let layout = parse(&vars("42", "1", None), 42).unwrap().unwrap();
        assert_eq!(layout.handoff, (3, "unknown".to_string()));
        assert_eq!((layout.metrics, layout.upgrade), (None, None));

        let layout = parse(
            &vars("42", "3", Some("metrics:streaming-daemon.socket:extra")),
            42,
        )
        .unwrap()
        .unwrap();
        assert_eq!(layout.handoff, (4, "streaming-daemon.socket".to_string()));
        assert_eq!(layout.metrics, Some(3));
        assert_eq!(layout.unused, vec![(5, "extra".to_string())]);
    }

    #[test]
    fn fds_for_another_process_or_none_at_all_are_not_ours() {
        assert_eq!(parse(&vars("41", "1", None), 42).unwrap(), None);
        assert_eq!(parse(&vars("42", "0", None), 42).unwrap(), None);
        assert_eq!(parse(&ListenVars::default(), 42).unwrap(), None);
        let no_count = ListenVars {
            pid: Some("42".into()),
            ..ListenVars::default()
        };
        assert_eq!(parse(&no_count, 42).unwrap(), None);
    }

    #[test]
    fn the_owner_flag_is_read_only_when_it_is_exactly_1() {
        for (value, owner) in [("1", true), ("0", false), ("yes", false)] {
            let mut vars = vars("42", "1", Some("handoff"));
            vars.socket_owner = Some(value.into());
            assert_eq!(parse(&vars, 42).unwrap().unwrap().socket_owner, owner);
        }
    }

    #[test]
    fn broken_variables_are_errors_that_name_them() {
        let cases = [
            (vars("x", "1", None), "LISTEN_PID"),
            (vars("42", "-1", None), "LISTEN_FDS"),
            (
                vars("42", "2", Some("handoff")),
                "LISTEN_FDNAMES has 1 names",
            ),
            (vars("42", "1", Some("a:b")), "LISTEN_FDNAMES has 2 names"),
            (vars("42", "100000", None), "LISTEN_FDS=100000"),
            (
                vars("42", "2", Some("metrics:upgrade")),
                "no handoff listener",
            ),
        ];
        for (vars, expected) in cases {
            let message = parse(&vars, 42).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sd-act-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn clear_flags(fd: BorrowedFd<'_>) {
        // SAFETY: (test) plain fcntl calls on an fd we own.
        unsafe {
            assert_eq!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0), 0);
            assert_eq!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, 0), 0);
        }
    }

    fn flags(fd: BorrowedFd<'_>) -> (bool, bool) {
        // SAFETY: (test) plain fcntl calls on an fd we own.
        unsafe {
            (
                libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) & libc::FD_CLOEXEC != 0,
                libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) & libc::O_NONBLOCK != 0,
            )
        }
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: (test) `fds` has room for both ends, owned at once.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        }
    }

    struct Passed {
        handoff: OwnedFd,
        metrics: Option<OwnedFd>,
        upgrade: Option<OwnedFd>,
    }

    /// Claims real fds the way `take_from_env` does, giving up our ownership of them first.
    fn claim_passed(
        passed: Passed,
        socket_type: SocketType,
    ) -> Result<Activation, ActivationError> {
        let layout = Layout {
            handoff: (passed.handoff.into_raw_fd(), "handoff".into()),
            metrics: passed.metrics.map(IntoRawFd::into_raw_fd),
            upgrade: passed.upgrade.map(IntoRawFd::into_raw_fd),
            unused: Vec::new(),
            socket_owner: false,
        };
        // SAFETY: (test) every fd was just released by its OwnedFd.
        unsafe { claim(layout, socket_type) }
    }

    #[test]
    fn passed_listeners_are_checked_and_made_cloexec_and_nonblocking() {
        let path = temp_path("ok");
        let handoff = socket::unix_listener(&path, SocketType::SeqPacket, 8).unwrap();
        let metrics = OwnedFd::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let (_read, write) = pipe();
        for fd in [handoff.as_fd(), metrics.as_fd(), write.as_fd()] {
            clear_flags(fd);
        }
        let activation = claim_passed(
            Passed {
                handoff,
                metrics: Some(metrics),
                upgrade: Some(write),
            },
            SocketType::SeqPacket,
        )
        .unwrap();
        assert_eq!(activation.handoff_name, "handoff");
        assert_eq!(flags(activation.handoff.as_fd()), (true, true));
        assert_eq!(
            flags(activation.metrics.as_ref().unwrap().as_fd()),
            (true, true)
        );
        assert_eq!(
            flags(activation.upgrade.as_ref().unwrap().as_fd()),
            (true, true)
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_handoff_listener_of_the_other_type_names_both_types() {
        let path = temp_path("type");
        let handoff = socket::unix_listener(&path, SocketType::Stream, 8).unwrap();
        let error = claim_passed(
            Passed {
                handoff,
                metrics: None,
                upgrade: None,
            },
            SocketType::SeqPacket,
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("SOCK_STREAM") && message.contains("SOCK_SEQPACKET"),
            "{message}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    fn only_handoff(handoff: OwnedFd) -> Passed {
        Passed {
            handoff,
            metrics: None,
            upgrade: None,
        }
    }

    #[test]
    fn a_handoff_fd_that_is_not_a_listening_unix_socket_is_refused() {
        let tcp = OwnedFd::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let (connected, _peer) = socket::unix_pair(SocketType::Stream).unwrap();
        let (read, _write) = pipe();
        let cases = [
            (tcp, "AF_INET socket, not AF_UNIX"),
            (connected, "not listening"),
            (read, "not a socket"),
        ];
        for (fd, expected) in cases {
            let message = claim_passed(only_handoff(fd), SocketType::Stream)
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn a_metrics_fd_must_be_tcp_and_an_upgrade_fd_a_pipe() {
        let path = temp_path("kinds");
        let other = temp_path("kinds-other");
        let listener = |path: &PathBuf| socket::unix_listener(path, SocketType::Stream, 8).unwrap();

        let mut passed = only_handoff(listener(&path));
        passed.metrics = Some(listener(&other));
        let message = claim_passed(passed, SocketType::Stream)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("metrics") && message.contains("AF_UNIX"),
            "{message}"
        );

        std::fs::remove_file(&path).unwrap();
        let mut passed = only_handoff(listener(&path));
        passed.upgrade = Some(OwnedFd::from(
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        ));
        let message = claim_passed(passed, SocketType::Stream)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("upgrade") && message.contains("not a pipe"),
            "{message}"
        );

        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&other).unwrap();
    }

    #[test]
    fn a_passed_fd_that_is_not_open_is_an_error() {
        // Above any possible fd (the kernel caps fd numbers at nr_open, 2^30 at most), so it
        // cannot belong to another test thread.
        let layout = Layout {
            handoff: (2_000_000_000, "handoff".into()),
            metrics: None,
            upgrade: None,
            unused: Vec::new(),
            socket_owner: false,
        };
        // SAFETY: (test) no fd has this number; `claim` must find that out before owning it.
        let error = unsafe { claim(layout, SocketType::Stream) }.unwrap_err();
        assert!(matches!(error, ActivationError::NotOpen { .. }), "{error}");
    }
}
