//! The handoff listener: a Unix socket of the configured type, bound at the configured path or
//! passed to us (socket activation, or the process we replace in an upgrade).
//!
//! Whether we *own the path* decides what happens to the socket file: we own it when we bound
//! it, or when the process we replace owned it and said so (`STREAMING_DAEMON_SOCKET_OWNER=1`).
//! An owner unlinks the file on drain (`unlink_path`, so that new connects fail at once while
//! the fd still accepts what is queued) or when dropped; a listener handed to a successor gives
//! ownership up (`release_path`) and leaves the file alone. A listener systemd passed us is
//! never chmodded nor unlinked: the socket unit owns it.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::SocketType;
use crate::sys::activation::{self, Problem};
use crate::sys::socket::{self, Connecting};
use crate::sys::umask;

/// `listen()` caps this at the kernel's `somaxconn`; asking for more costs nothing. Apache
/// turns a full backlog into a 503 at once, so we want the largest we can get.
const BACKLOG: i32 = 65_535;
/// How long a live daemon may take to answer the stale-socket probe (SPEC §6.1).
const PROBE_LIMIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum ListenError {
    NotASocket(PathBuf),
    InUse(PathBuf),
    Probe(PathBuf, io::Error),
    RemoveStale(PathBuf, io::Error),
    Bind(PathBuf, io::Error),
    Chmod(PathBuf, io::Error),
    /// A passed listener that is not a listening Unix socket of the configured type.
    Inherited(SocketType, Problem),
    /// `STREAMING_DAEMON_SOCKET_OWNER=1`, but the passed listener is not bound at the path.
    NotBoundThere {
        bound: PathBuf,
        configured: PathBuf,
    },
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::NotASocket(path) => write!(
                f,
                "{} exists and is not a socket; remove it or choose another -socket path",
                path.display()
            ),
            ListenError::InUse(path) => write!(
                f,
                "another daemon is already listening on {}; stop it or choose another -socket path",
                path.display()
            ),
            ListenError::Probe(path, e) => {
                write!(f, "cannot tell whether {} is in use: {e}", path.display())
            }
            ListenError::RemoveStale(path, e) => {
                write!(f, "cannot remove the stale socket {}: {e}", path.display())
            }
            ListenError::Bind(path, e) => write!(
                f,
                "cannot listen on {}: {e} (does the directory exist and is it writable?)",
                path.display()
            ),
            ListenError::Chmod(path, e) => {
                write!(f, "cannot set the mode of {}: {e}", path.display())
            }
            ListenError::Inherited(socket_type, problem) => write!(
                f,
                "the passed handoff listener must be a listening Unix socket of type {}: {problem}",
                socket_type.as_str()
            ),
            ListenError::NotBoundThere { bound, configured } => write!(
                f,
                "the passed handoff listener is bound at {}, not at the configured {}; the socket \
                 file is left alone",
                bound.display(),
                configured.display()
            ),
        }
    }
}

impl std::error::Error for ListenError {}

pub struct Listener {
    fd: OwnedFd,
    socket_type: SocketType,
    /// Where the socket is bound (empty when unnamed; `@name` when abstract).
    path: PathBuf,
    /// Device and inode of the socket file while we own the path, so that we never remove a
    /// file that another process put at the same path since.
    owned: Option<(u64, u64)>,
}

impl Listener {
    /// Checks the path (a live daemon there is an error; a stale socket is removed), binds,
    /// gives the socket file exactly `mode` and listens. We own the path.
    ///
    /// The socket is never reachable with a wider mode: it is bound under a umask of
    /// `0777 & !mode`, so the file is created with `mode` (a default ACL on the directory
    /// overrides the umask, hence the chmod that follows when the mode differs), and `listen`
    /// comes last: until then a connect is refused whatever the mode. The umask is
    /// process-wide: the daemon binds before it starts any thread, and `sys::umask` serialises
    /// binds from several threads (tests). The other way the spec allows, binding a temporary
    /// name and renaming it onto the path, leaves the temporary name as the socket's address
    /// (`ss -x`, `getsockname`, which an upgraded process checks), and a rename silently
    /// replaces a socket another daemon bound meanwhile, where `bind` fails.
    pub fn bind(path: &Path, socket_type: SocketType, mode: u32) -> Result<Listener, ListenError> {
        clear_stale(path, socket_type)?;
        let fd = bind_under_umask(path, socket_type, mode)
            .map_err(|e| ListenError::Bind(path.to_path_buf(), e))?;
        let mut listener = Listener {
            fd,
            socket_type,
            path: path.to_path_buf(),
            owned: None,
        };
        let metadata =
            fs::symlink_metadata(path).map_err(|e| ListenError::Bind(path.to_path_buf(), e))?;
        // Ours from here: a failure below removes the file again (when the listener drops).
        listener.owned = Some((metadata.dev(), metadata.ino()));
        if metadata.permissions().mode() & 0o7777 != mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| ListenError::Chmod(path.to_path_buf(), e))?;
        }
        socket::listen(listener.fd.as_fd(), BACKLOG)
            .map_err(|e| ListenError::Bind(path.to_path_buf(), e))?;
        Ok(listener)
    }

    /// A listener passed to us (socket activation, or an upgrade). Checked to be a listening
    /// Unix socket of `socket_type`; we do not own its path: it is never chmodded nor
    /// unlinked, unless `claim_path` says otherwise.
    pub fn inherited(fd: OwnedFd, socket_type: SocketType) -> Result<Listener, ListenError> {
        activation::check_handoff(fd.as_fd(), socket_type)
            .map_err(|problem| ListenError::Inherited(socket_type, problem))?;
        let path = socket::unix_local_name(fd.as_fd())
            .ok()
            .flatten()
            .map(PathBuf::from)
            .unwrap_or_default();
        Ok(Listener {
            fd,
            socket_type,
            path,
            owned: None,
        })
    }

    /// Takes ownership of the socket file at `path` for an inherited listener, when the process
    /// we replace owned it (`STREAMING_DAEMON_SOCKET_OWNER=1`). The listener must be bound
    /// there.
    pub fn claim_path(&mut self, path: &Path) -> Result<(), ListenError> {
        if self.path != path {
            return Err(ListenError::NotBoundThere {
                bound: self.path.clone(),
                configured: path.to_path_buf(),
            });
        }
        let metadata =
            fs::symlink_metadata(path).map_err(|e| ListenError::Probe(path.to_path_buf(), e))?;
        if !metadata.file_type().is_socket() {
            return Err(ListenError::NotASocket(path.to_path_buf()));
        }
        self.owned = Some((metadata.dev(), metadata.ino()));
        Ok(())
    }

    /// Whether we own the socket path: then a drain unlinks it and accepts what is queued
    /// (SPEC §1.4); otherwise systemd or a successor takes the queued connections.
    pub fn owns_path(&self) -> bool {
        self.owned.is_some()
    }

    /// Drain, step 1: removes the socket file, if we own it and it is still ours, so that new
    /// connects fail at once; the fd stays open to accept what is already queued. We own the
    /// path no more. Returns whether a file was removed.
    pub fn unlink_path(&mut self) -> io::Result<bool> {
        let Some(identity) = self.owned.take() else {
            return Ok(false);
        };
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == identity);
        if !ours {
            return Ok(false);
        }
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Upgrade: the successor owns the path now (it was started with
    /// `STREAMING_DAEMON_SOCKET_OWNER=1`); dropping this listener leaves the file alone.
    pub fn release_path(&mut self) {
        self.owned = None;
    }

    /// The listening fd: to register with the poll, to accept from, and to pass to a
    /// successor (`sys::spawn::spawn` duplicates it into the child).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The same socket for another worker to accept from: a second descriptor, which never
    /// owns the path (the first worker's removes it at the drain).
    pub fn for_another_worker(&self) -> io::Result<Listener> {
        Ok(Listener {
            fd: self.fd.try_clone()?,
            socket_type: self.socket_type,
            path: self.path.clone(),
            owned: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }
}

impl Drop for Listener {
    /// The socket file goes with the listener when we own it: new handoffs fail fast (Apache
    /// retries, then 503) instead of queueing on a socket nobody accepts from.
    fn drop(&mut self) {
        if let Err(e) = self.unlink_path() {
            log::warn!(path:% = self.path.display(), error:% = e; "cannot remove the socket file");
        }
    }
}

/// Binds `path` (not listening yet) with the process umask set to `0777 & !mode` for the
/// duration of the `bind`.
fn bind_under_umask(path: &Path, socket_type: SocketType, mode: u32) -> io::Result<OwnedFd> {
    umask::with_umask(0o777 & !mode, || socket::unix_bound(path, socket_type))
}

/// What the probe of an existing socket file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A listener answered, or could not answer yet: another daemon owns the path.
    InUse,
    /// Nobody listens: the file is left over from a daemon that died.
    Stale,
    /// The file went away meanwhile.
    Gone,
}

/// Classifies a connect error (SPEC §6.1); `None` means we cannot tell.
fn classify(error: &io::Error) -> Option<Probe> {
    match error.raw_os_error()? {
        libc::ECONNREFUSED => Some(Probe::Stale),
        // A full backlog, or a listener of the other socket type: alive.
        libc::EAGAIN | libc::EPROTOTYPE => Some(Probe::InUse),
        libc::ENOENT => Some(Probe::Gone),
        _ => None,
    }
}

/// A non-blocking connect bounded by `limit`: a live daemon that is too busy to answer within
/// it counts as alive, and a hung one cannot hang our start.
fn probe(path: &Path, socket_type: SocketType, limit: Duration) -> io::Result<Probe> {
    let error = match socket::unix_connect_nonblocking(path, socket_type) {
        Ok(Connecting::Connected(_)) => return Ok(Probe::InUse),
        Ok(Connecting::InProgress(socket)) => match socket::wait_connected(socket.as_fd(), limit) {
            // Connected, or no answer within the limit.
            Ok(_) => return Ok(Probe::InUse),
            Err(e) => e,
        },
        Err(e) => e,
    };
    classify(&error).ok_or(error)
}

fn clear_stale(path: &Path, socket_type: SocketType) -> Result<(), ListenError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ListenError::Probe(path.to_path_buf(), e)),
    };
    if !metadata.file_type().is_socket() {
        return Err(ListenError::NotASocket(path.to_path_buf()));
    }
    match probe(path, socket_type, PROBE_LIMIT) {
        Ok(Probe::InUse) => Err(ListenError::InUse(path.to_path_buf())),
        Ok(Probe::Gone) => Ok(()),
        Ok(Probe::Stale) => {
            log::info!(path:% = path.display(); "removing a stale socket");
            match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ListenError::RemoveStale(path.to_path_buf(), e)),
            }
        }
        Err(e) => Err(ListenError::Probe(path.to_path_buf(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn temp_path(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sd-listen-{}-{name}", std::process::id()));
        let _ = fs::remove_file(&path);
        path
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn connects(path: &Path, socket_type: SocketType) -> bool {
        socket::unix_connect(path, socket_type).is_ok()
    }

    #[test]
    fn binding_gives_the_socket_exactly_its_mode_and_restores_the_umask() {
        let before = umask::current();
        for (name, wanted) in [
            ("m600", 0o600),
            ("m666", 0o666),
            ("m660", 0o660),
            ("m777", 0o777),
        ] {
            let path = temp_path(name);
            let listener = Listener::bind(&path, SocketType::Stream, wanted).unwrap();
            assert_eq!(mode(&path), wanted);
            assert!(listener.owns_path());
            assert_eq!(listener.path(), path);
            // The socket's own address is the path (what `ss -x` shows).
            assert_eq!(
                socket::unix_local_name(listener.fd()).unwrap(),
                Some(path.clone().into_os_string())
            );
            assert!(connects(&path, SocketType::Stream));
        }
        assert_eq!(umask::current(), before);
    }

    #[test]
    fn the_file_is_created_with_the_mode_before_any_chmod() {
        let path = temp_path("umask");
        let _fd = bind_under_umask(&path, SocketType::Stream, 0o640).unwrap();
        assert_eq!(mode(&path), 0o640);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_live_listener_of_either_type_is_in_use() {
        for (theirs, ours) in [
            (SocketType::Stream, SocketType::Stream),
            (SocketType::SeqPacket, SocketType::Stream),
            (SocketType::Stream, SocketType::SeqPacket),
        ] {
            let path = temp_path("live");
            let _other = socket::unix_listener(&path, theirs, 8).unwrap();
            let error = Listener::bind(&path, ours, 0o660).err();
            assert!(matches!(error, Some(ListenError::InUse(_))), "{error:?}");
            // Untouched: the other daemon keeps serving.
            assert!(connects(&path, theirs));
            fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn a_listener_with_a_full_backlog_is_in_use_and_the_probe_does_not_wait() {
        let path = temp_path("full");
        let other = socket::unix_bound(&path, SocketType::Stream).unwrap();
        socket::listen(other.as_fd(), 0).unwrap();
        // Fill the backlog with connections nobody accepts; a bounded number of tries.
        let mut queued = Vec::new();
        for _ in 0..16 {
            match socket::unix_connect_nonblocking(&path, SocketType::Stream) {
                Ok(Connecting::Connected(fd)) | Ok(Connecting::InProgress(fd)) => queued.push(fd),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
                    break;
                }
            }
        }
        let start = Instant::now();
        let error = Listener::bind(&path, SocketType::Stream, 0o660).err();
        assert!(matches!(error, Some(ListenError::InUse(_))), "{error:?}");
        assert!(start.elapsed() < PROBE_LIMIT + Duration::from_millis(500));
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let path = temp_path("stale");
        drop(socket::unix_listener(&path, SocketType::Stream, 8).unwrap());
        assert!(path.exists());
        let listener = Listener::bind(&path, SocketType::Stream, 0o600).unwrap();
        assert!(connects(&path, SocketType::Stream));
        assert_eq!(mode(&path), 0o600);
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_never_touched() {
        let path = temp_path("file");
        fs::write(&path, b"keep me").unwrap();
        let error = Listener::bind(&path, SocketType::Stream, 0o660).err();
        assert!(
            matches!(error, Some(ListenError::NotASocket(_))),
            "{error:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"keep me");
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_missing_directory_is_a_bind_error_that_says_so() {
        let path = temp_path("no-such-dir").join("daemon.sock");
        let error = Listener::bind(&path, SocketType::Stream, 0o660)
            .err()
            .unwrap();
        assert!(matches!(error, ListenError::Bind(..)), "{error:?}");
        assert!(error.to_string().contains("does the directory exist"));
    }

    #[test]
    fn unlinking_the_path_keeps_the_fd_accepting_what_is_queued() {
        let path = temp_path("drain");
        let mut listener = Listener::bind(&path, SocketType::Stream, 0o660).unwrap();
        let queued = socket::unix_connect(&path, SocketType::Stream).unwrap();
        assert!(listener.unlink_path().unwrap());
        assert!(!path.exists());
        assert!(!listener.owns_path());
        // New connects fail at once…
        let error = socket::unix_connect(&path, SocketType::Stream).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOENT));
        // …and what was queued is still accepted.
        let accepted = socket::accept(listener.fd()).unwrap();
        assert_eq!(socket::send(queued.as_fd(), b"x").unwrap(), 1);
        let mut buf = [0u8; 1];
        assert_eq!(socket::recv(accepted.as_fd(), &mut buf).unwrap(), 1);
        // Once is enough; nothing is removed twice.
        assert!(!listener.unlink_path().unwrap());
    }

    #[test]
    fn a_released_path_or_a_replaced_file_is_left_alone() {
        let path = temp_path("release");
        let mut listener = Listener::bind(&path, SocketType::Stream, 0o660).unwrap();
        listener.release_path();
        drop(listener);
        assert!(path.exists(), "a successor's socket must stay");
        fs::remove_file(&path).unwrap();

        let mut listener = Listener::bind(&path, SocketType::Stream, 0o660).unwrap();
        fs::remove_file(&path).unwrap();
        let _other = socket::unix_listener(&path, SocketType::Stream, 8).unwrap();
        assert!(!listener.unlink_path().unwrap());
        drop(listener);
        assert!(connects(&path, SocketType::Stream));
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_inherited_listener_never_unlinks_unless_it_claims_the_path() {
        let path = temp_path("inherited");
        let fd = socket::unix_listener(&path, SocketType::SeqPacket, 8).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let mut listener = Listener::inherited(fd, SocketType::SeqPacket).unwrap();
        assert_eq!(listener.path(), path);
        assert!(!listener.owns_path());
        assert!(!listener.unlink_path().unwrap());
        drop(listener);
        assert!(path.exists());
        assert_eq!(mode(&path), 0o640, "never chmodded");

        fs::remove_file(&path).unwrap();
        let fd = socket::unix_listener(&path, SocketType::SeqPacket, 8).unwrap();
        let mut listener = Listener::inherited(fd, SocketType::SeqPacket).unwrap();
        let error = listener.claim_path(&temp_path("elsewhere")).err();
        assert!(
            matches!(error, Some(ListenError::NotBoundThere { .. })),
            "{error:?}"
        );
        assert!(!listener.owns_path());
        listener.claim_path(&path).unwrap();
        assert!(listener.owns_path());
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn an_inherited_fd_of_the_wrong_type_is_refused_naming_the_type() {
        let path = temp_path("inherited-type");
        let fd = socket::unix_listener(&path, SocketType::Stream, 8).unwrap();
        let error = Listener::inherited(fd, SocketType::SeqPacket)
            .err()
            .unwrap();
        let message = error.to_string();
        assert!(
            message.contains("seqpacket") && message.contains("SOCK_STREAM"),
            "{message}"
        );
        // The refused listener's file is not ours to remove.
        assert!(path.exists());
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn connect_errors_are_classified_as_the_spec_says() {
        let probe = |errno| classify(&io::Error::from_raw_os_error(errno));
        assert_eq!(probe(libc::ECONNREFUSED), Some(Probe::Stale));
        assert_eq!(probe(libc::EAGAIN), Some(Probe::InUse));
        assert_eq!(probe(libc::EPROTOTYPE), Some(Probe::InUse));
        assert_eq!(probe(libc::ENOENT), Some(Probe::Gone));
        assert_eq!(probe(libc::EACCES), None);
    }
}
