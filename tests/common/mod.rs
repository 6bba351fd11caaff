//! Helpers shared by the integration tests: playing Apache's part, and reading what the
//! daemon writes. Every wait here is bounded.
#![allow(dead_code)]

pub mod harness;
pub mod slog;
pub mod upstream;

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use streaming_daemon::config::SocketType;
use streaming_daemon::sys::{fdpass, socket};

pub const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n";

/// A socket path no other test (or test process) uses.
pub fn temp_socket_path(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("sd-{name}-{}-{n}.sock", std::process::id()))
}

/// A connected loopback TCP pair: (the client's end, the end Apache would hand off).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Connects to the daemon as Apache's module does and sends `data` with `fd` attached, then
/// closes (the daemon reads to end of stream).
pub fn hand_off(path: &Path, socket_type: SocketType, data: &[u8], fd: &impl AsFd) {
    let apache = socket::unix_connect(path, socket_type).unwrap();
    send_all_with_fd(&apache, data, fd);
}

/// Sends `data` with `fd` on the first byte, the rest with plain sends, as Apache does.
pub fn send_all_with_fd(apache: &OwnedFd, data: &[u8], fd: &impl AsFd) {
    let sent = fdpass::send_with_fd(apache, data, fd.as_fd().as_raw_fd()).unwrap();
    let mut rest = &data[sent..];
    while !rest.is_empty() {
        let n = blocking_send(apache, rest);
        rest = &rest[n..];
    }
}

/// Sends one message carrying several fds (Apache never does; the daemon must cope).
pub fn send_fds(apache: &impl AsFd, fds: &[std::os::fd::BorrowedFd<'_>]) {
    let fds: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let bytes = (fds.len() * 4) as u32;
    let mut control = [0u64; 64];
    let data = b"{}";
    // SAFETY: (test) the msghdr points at live buffers; the cmsg is built inside `control`.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        };
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = libc::CMSG_SPACE(bytes) as _;
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(bytes) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(header).cast::<i32>(),
            fds.len(),
        );
        assert_eq!(libc::sendmsg(apache.as_fd().as_raw_fd(), &message, 0), 2);
    }
}

pub fn blocking_send(fd: &OwnedFd, data: &[u8]) -> usize {
    loop {
        match socket::send(fd.as_fd(), data) {
            Ok(n) => return n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

/// Closes `stream` with a reset, as a connection that dropped mid-stream is seen: the peer's
/// next read or write fails at once.
pub fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: (test) setsockopt reads `size_of::<linger>()` bytes from a live local value;
    // the fd is open for the duration of the call.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "SO_LINGER: {}", io::Error::last_os_error());
    drop(stream);
}

/// Reads what is available without blocking; `None` at end of stream.
pub fn read_available(stream: &mut TcpStream, into: &mut Vec<u8>) -> Option<()> {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Reads until end of stream, failing the test after `limit`.
pub fn read_to_end(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 8192];
    loop {
        assert!(
            started.elapsed() < limit,
            "no end of stream within {limit:?}; got {:?}",
            String::from_utf8_lossy(&out)
        );
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "read failed after {:?}: {e}; got {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8(out).unwrap()
}

/// Reads until end of stream, noting when each SSE frame (up to its blank line) was complete:
/// returns the response head and `(arrival, frame)` pairs. Fails the test after `limit`.
pub fn read_frames_timed(
    stream: &mut TcpStream,
    limit: Duration,
) -> (String, Vec<(Instant, String)>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut head = None;
    let mut frames = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        assert!(
            started.elapsed() < limit,
            "no end of stream within {limit:?}"
        );
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read failed: {e}"),
        };
        let arrived = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        if head.is_none() {
            let Some(end) = find(&pending, b"\r\n\r\n") else {
                continue;
            };
            let rest = pending.split_off(end + 4);
            head = Some(String::from_utf8(std::mem::replace(&mut pending, rest)).unwrap());
        }
        while let Some(end) = find(&pending, b"\n\n") {
            let rest = pending.split_off(end + 2);
            let frame = std::mem::replace(&mut pending, rest);
            frames.push((arrived, String::from_utf8(frame).unwrap()));
        }
    }
    (head.unwrap_or_default(), frames)
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `data:` payloads of an SSE body, in order.
pub fn data_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// The content strings of a mock or openai stream.
pub fn contents(body: &str) -> Vec<String> {
    data_lines(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v["content"].as_str().map(str::to_string))
        .collect()
}

/// Splits a complete error response into (status line, headers, body).
pub fn parse_response(text: &str) -> (String, Vec<(String, String)>, String) {
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (status, headers, body.to_string())
}

pub fn unix_pair() -> (OwnedFd, OwnedFd) {
    socket::unix_pair(SocketType::Stream).unwrap()
}

/// The daemon binary under test: `$STREAMING_DAEMON_BIN` when set (CI points it at the static
/// musl build), else the one cargo built for this test run.
pub fn daemon_binary() -> PathBuf {
    std::env::var_os("STREAMING_DAEMON_BIN")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_streaming-daemon")))
}

/// The real daemon binary, started for one test and stopped when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub socket: PathBuf,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line seen so far.
    pub log: Vec<String>,
}

/// The data directory the test daemon on `socket` stages attachments in (created by it).
pub fn data_dir_of(socket: &Path) -> PathBuf {
    let mut path = socket.as_os_str().to_owned();
    path.push(".data");
    PathBuf::from(path)
}

impl Daemon {
    /// Starts `streaming-daemon` on a fresh socket with `args` and waits until it listens.
    pub fn start(name: &str, args: &[&str]) -> Daemon {
        Daemon::start_at(temp_socket_path(name), args)
    }

    pub fn start_at(socket: PathBuf, args: &[&str]) -> Daemon {
        Daemon::start_with_env(socket, args, &[])
    }

    /// Starts with extra environment variables (API keys, `SSL_CERT_FILE`).
    pub fn start_with_env(socket: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut daemon = Daemon::spawn_with_env(&socket, args, env);
        daemon.wait_for_log("streaming-daemon started", Duration::from_secs(10));
        daemon
    }

    /// Starts without waiting for anything (for start-up failures).
    pub fn spawn(socket: &Path, args: &[&str]) -> Daemon {
        Daemon::spawn_with_env(socket, args, &[])
    }

    pub fn spawn_with_env(socket: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn_command(Daemon::command(socket, args, env))
    }

    /// Starts with at most `max_open_files` descriptors (soft and hard limit), and waits until
    /// it listens.
    pub fn start_limited(name: &str, args: &[&str], max_open_files: u64) -> Daemon {
        use std::os::unix::process::CommandExt;
        let socket = temp_socket_path(name);
        let mut command = Daemon::command(&socket, args, &[]);
        // SAFETY: (test) setrlimit is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: max_open_files,
                    rlim_max: max_open_files,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        let mut daemon = Daemon::spawn_command(command);
        daemon.wait_for_log("streaming-daemon started", Duration::from_secs(10));
        daemon
    }

    /// Starts the daemon binary found at `program` (a copy, say, that a test replaces to
    /// see what an upgrade does with it) and waits until it listens.
    pub fn start_program(program: &Path, name: &str, args: &[&str]) -> Daemon {
        let mut command = Daemon::command(&temp_socket_path(name), args, &[]);
        let mut from = std::process::Command::new(program);
        from.args(command.get_args())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => from.env(key, value),
                None => from.env_remove(key),
            };
        }
        command = from;
        let mut daemon = Daemon::spawn_command(command);
        daemon.wait_for_log("streaming-daemon started", Duration::from_secs(10));
        daemon
    }

    fn command(socket: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut command = std::process::Command::new(daemon_binary());
        command
            .arg("-socket")
            .arg(socket)
            .args(["-metrics-addr="])
            // Not the default under /run: each daemon stages in a directory of its own. A test's
            // own `-data-dir` comes later and wins.
            .arg(format!("-data-dir={}", data_dir_of(socket).display()))
            // One loop unless the test asks for more: which worker takes a connection is the
            // kernel's choice, and most tests count per-loop things (pooled connections, one
            // turn's accepts). tests/workers_e2e.rs runs several.
            .arg("-workers=1")
            .args(args)
            .env_remove("OPENAI_API_KEY")
            .env_remove("SSL_CERT_FILE")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    fn spawn_command(mut command: std::process::Command) -> Daemon {
        let socket = command
            .get_args()
            .nth(1)
            .map(PathBuf::from)
            .expect("the socket is the second argument");
        let mut child = command.spawn().expect("the daemon binary starts");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            socket,
            lines,
            log: Vec::new(),
        }
    }

    /// Where this daemon takes attachment files from, unless the test gave its own.
    pub fn data_dir(&self) -> PathBuf {
        data_dir_of(&self.socket)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?} within {limit:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Counts log lines containing `needle`, after collecting what has arrived.
    pub fn count_log(&mut self, needle: &str) -> usize {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.iter().filter(|l| l.contains(needle)).count()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: (test) sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it logged last, bounded: a process it started (an upgrade) may go on
                // writing to the same pipe.
                let drain_until = Instant::now() + Duration::from_secs(1);
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                    if Instant::now() >= drain_until {
                        break;
                    }
                }
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the daemon printed to stdout (after it exited).
    pub fn stdout(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out).unwrap();
        }
        out
    }

    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Hands off a loopback TCP connection with `{}` and reads the success head: the stream is
    /// running when this returns.
    pub fn open_stream(&self) -> TcpStream {
        let (mut client, server) = tcp_pair();
        hand_off(&self.socket, SocketType::Stream, b"{}", &server);
        drop(server);
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = vec![0u8; SSE_HEAD.len()];
        client.read_exact(&mut head).unwrap();
        assert_eq!(head, SSE_HEAD.as_bytes());
        client
    }

    /// Hands off a loopback TCP connection with `data` and reads the whole response.
    pub fn request(&self, data: &[u8]) -> String {
        let (mut client, server) = tcp_pair();
        hand_off(&self.socket, SocketType::Stream, data, &server);
        drop(server);
        read_to_end(&mut client, Duration::from_secs(20))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir_all(data_dir_of(&self.socket));
    }
}

/// Waits until `condition` holds, checking every few milliseconds, failing after `limit`.
pub fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
