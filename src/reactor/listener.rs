//! The handoff listener: a Unix socket of the configured type at the configured path.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::SocketType;
use crate::sys::socket;

/// `listen()` caps this at the kernel's `somaxconn`; asking for more costs nothing. Apache
/// turns a full backlog into a 503 at once, so we want the largest we can get.
const BACKLOG: i32 = 65_535;

#[derive(Debug)]
pub enum ListenError {
    NotASocket(PathBuf),
    InUse(PathBuf),
    Probe(PathBuf, io::Error),
    RemoveStale(PathBuf, io::Error),
    Bind(PathBuf, io::Error),
    Chmod(PathBuf, io::Error),
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
        }
    }
}

impl std::error::Error for ListenError {}

pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
    /// Device and inode of the socket file we created, so that we never remove a file that
    /// another process put at the same path since.
    identity: (u64, u64),
}

impl Listener {
    /// Checks the path (a live daemon there is an error; a stale socket is removed), listens,
    /// and applies `mode` to the socket file.
    pub fn bind(path: &Path, socket_type: SocketType, mode: u32) -> Result<Listener, ListenError> {
        clear_stale(path, socket_type)?;
        let fd = socket::unix_listener(path, socket_type, BACKLOG)
            .map_err(|e| ListenError::Bind(path.to_path_buf(), e))?;
        let listener_path = path.to_path_buf();
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| ListenError::Chmod(listener_path.clone(), e))?;
        let metadata =
            fs::metadata(path).map_err(|e| ListenError::Bind(listener_path.clone(), e))?;
        Ok(Listener {
            fd,
            path: listener_path,
            identity: (metadata.dev(), metadata.ino()),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    /// The socket file goes with the listener: new handoffs fail fast (Apache retries, then 503)
    /// instead of queueing on a socket nobody accepts from.
    fn drop(&mut self) {
        let ours =
            fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            if let Err(e) = fs::remove_file(&self.path) {
                log::warn!("could not remove {}: {e}", self.path.display());
            }
        }
    }
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
    match socket::unix_connect(path, socket_type) {
        Ok(_) => Err(ListenError::InUse(path.to_path_buf())),
        Err(e) => match e.raw_os_error() {
            Some(libc::ECONNREFUSED) => {
                log::info!("removing stale socket {}", path.display());
                fs::remove_file(path).map_err(|e| ListenError::RemoveStale(path.to_path_buf(), e))
            }
            // A listener of the other socket type, or one with a full backlog, is alive.
            Some(libc::EPROTOTYPE) | Some(libc::EAGAIN) => {
                Err(ListenError::InUse(path.to_path_buf()))
            }
            Some(libc::ENOENT) => Ok(()),
            _ => Err(ListenError::Probe(path.to_path_buf(), e)),
        },
    }
}
