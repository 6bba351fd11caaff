//! `server.data_dir`, opened once (SPEC §4.5 "Directory").
//!
//! The directory is held as an `O_PATH` fd, so a rename or a symlink swapped in for its path
//! later changes nothing: every file is opened relative to this fd. `openat2` is probed once;
//! where it cannot be used, names are walked one directory at a time instead.
//!
//! | slot state | on `retry(now)`                            | requests naming files get |
//! |------------|--------------------------------------------|---------------------------|
//! | `Off`      | nothing                                    | 400                       |
//! | `Open`     | nothing                                    | checked                   |
//! | `Failed`   | reopen when 10 s passed since the last try | 500                       |

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys::at;

/// A directory that cannot be opened is tried again at most this often.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Mode of a directory the daemon creates.
const CREATE_MODE: u32 = 0o770;

/// How names are opened beneath the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`.
    Openat2,
    /// `openat(O_NOFOLLOW)` one component at a time, checking each: kernels before 5.6, or a
    /// seccomp filter that refuses `openat2`.
    Walk,
}

/// The open data directory.
#[derive(Debug)]
pub struct DataDir {
    fd: OwnedFd,
    configured: PathBuf,
    canonical: PathBuf,
    method: Method,
}

/// Worth a line in the log when the directory was opened.
#[derive(Debug)]
pub enum DirNote {
    /// It was missing and was created with mode 0770.
    Created,
    /// PHP, usually in the daemon's group, cannot stage files in it.
    NotGroupWritable { mode: u32 },
    /// Anyone on the machine can stage (or swap) files in it.
    WorldWritable { mode: u32 },
    /// `openat2` cannot be used; names are walked one directory at a time.
    NoOpenat2(io::Error),
}

impl fmt::Display for DirNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirNote::Created => write!(f, "data_dir was missing and was created with mode 0770"),
            DirNote::NotGroupWritable { mode } => write!(
                f,
                "data_dir (mode {:04o}) is not group-writable: PHP cannot stage attachment files \
                 in it unless it runs as the daemon's user; make it group-writable for PHP's group",
                mode & 0o7777
            ),
            DirNote::WorldWritable { mode } => write!(
                f,
                "data_dir (mode {:04o}) is world-writable: any local user can stage files for \
                 requests; restrict it to the daemon's and PHP's group (chmod o-w)",
                mode & 0o7777
            ),
            DirNote::NoOpenat2(error) => write!(
                f,
                "openat2 is not available ({error}); attachment names are checked one directory \
                 at a time instead"
            ),
        }
    }
}

impl DirNote {
    /// Warnings are about permissions the operator should fix; the rest is information.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            DirNote::NotGroupWritable { .. } | DirNote::WorldWritable { .. }
        )
    }
}

/// The directory could not be opened.
#[derive(Debug)]
pub struct DirError {
    pub path: PathBuf,
    pub error: io::Error,
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot open data_dir {}: {}; requests that name attachment files get 500 until it \
             can be opened (tried again every {} s)",
            self.path.display(),
            self.error,
            RETRY_INTERVAL.as_secs()
        )
    }
}

impl std::error::Error for DirError {}

impl DataDir {
    /// Opens `path` (creating it with mode 0770 when missing), records its canonical path and
    /// probes `openat2` on it.
    pub fn open(path: &Path) -> Result<(DataDir, Vec<DirNote>), DirError> {
        Self::open_with(path, None)
    }

    /// As [`DataDir::open`], with the probe's answer forced (tests of the walk).
    pub(crate) fn open_with(
        path: &Path,
        forced: Option<Method>,
    ) -> Result<(DataDir, Vec<DirNote>), DirError> {
        let failed = |error| DirError {
            path: path.to_path_buf(),
            error,
        };
        let mut notes = Vec::new();
        let fd = match at::open_dir_path(path) {
            Ok(fd) => fd,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match at::mkdir(path, CREATE_MODE) {
                    Ok(()) => {
                        // The umask took bits away; the spec'd mode is the point.
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(
                            path,
                            std::fs::Permissions::from_mode(CREATE_MODE),
                        )
                        .map_err(failed)?;
                        notes.push(DirNote::Created);
                    }
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(failed(error)),
                }
                at::open_dir_path(path).map_err(failed)?
            }
            Err(error) => return Err(failed(error)),
        };
        let stat = at::fstat(fd.as_fd()).map_err(failed)?;
        if stat.mode & 0o020 == 0 {
            notes.push(DirNote::NotGroupWritable { mode: stat.mode });
        }
        if stat.mode & 0o002 != 0 {
            notes.push(DirNote::WorldWritable { mode: stat.mode });
        }
        let canonical = canonical_path(&fd, path);
        let method = match forced {
            Some(method) => method,
            None => match at::openat2(
                fd.as_fd(),
                b".",
                libc::O_PATH | libc::O_DIRECTORY,
                at::RESOLVE_STRICT,
            ) {
                Ok(_) => Method::Openat2,
                Err(error) => {
                    notes.push(DirNote::NoOpenat2(error));
                    Method::Walk
                }
            },
        };
        Ok((
            DataDir {
                fd,
                configured: path.to_path_buf(),
                canonical,
                method,
            },
            notes,
        ))
    }

    /// The path as configured.
    pub fn configured(&self) -> &Path {
        &self.configured
    }

    /// The path with every symbolic link resolved, as it was when opened.
    pub fn canonical(&self) -> &Path {
        &self.canonical
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What the kernel says the open fd is, else what the path resolves to now, else the path.
fn canonical_path(fd: &OwnedFd, path: &Path) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .filter(|p| p.is_absolute())
        .or_else(|| std::fs::canonicalize(path).ok())
        .unwrap_or_else(|| path.to_path_buf())
}

/// What requests that name files can use right now.
#[derive(Debug, Clone, Copy)]
pub enum DirAccess<'a> {
    /// `data_dir: ""`: 400.
    Off,
    /// Not opened yet: 500.
    Unavailable,
    Open(&'a DataDir),
}

/// The data directory as one worker holds it: off, open, or failed and waiting to be retried.
#[derive(Debug)]
pub struct DataDirSlot {
    state: SlotState,
}

#[derive(Debug)]
enum SlotState {
    Off,
    Open(DataDir),
    Failed { path: PathBuf, next_try: Instant },
}

impl DataDirSlot {
    /// Opens the configured directory (`None`: files are off). The result is for the log: notes
    /// when it opened, the error when it did not.
    pub fn open(
        configured: Option<&Path>,
        now: Instant,
    ) -> (DataDirSlot, Result<Vec<DirNote>, DirError>) {
        let Some(path) = configured else {
            return (
                DataDirSlot {
                    state: SlotState::Off,
                },
                Ok(Vec::new()),
            );
        };
        let mut slot = DataDirSlot {
            state: SlotState::Failed {
                path: path.to_path_buf(),
                next_try: now,
            },
        };
        let result = slot.try_open(path, now);
        (slot, result)
    }

    /// A slot holding an already open directory.
    pub fn from_open(dir: DataDir) -> DataDirSlot {
        DataDirSlot {
            state: SlotState::Open(dir),
        }
    }

    fn try_open(&mut self, path: &Path, now: Instant) -> Result<Vec<DirNote>, DirError> {
        match DataDir::open(path) {
            Ok((dir, notes)) => {
                self.state = SlotState::Open(dir);
                Ok(notes)
            }
            Err(error) => {
                self.state = SlotState::Failed {
                    path: path.to_path_buf(),
                    next_try: now.checked_add(RETRY_INTERVAL).unwrap_or(now),
                };
                Err(error)
            }
        }
    }

    /// Tries the failed directory again when its retry is due; `None` when nothing was tried.
    /// Call it before [`DataDirSlot::access`] for a request that names files.
    pub fn retry(&mut self, now: Instant) -> Option<Result<Vec<DirNote>, DirError>> {
        let SlotState::Failed { path, next_try } = &self.state else {
            return None;
        };
        if now < *next_try {
            return None;
        }
        let path = path.clone();
        Some(self.try_open(&path, now))
    }

    /// When the next retry is due, while the directory is not open.
    pub fn next_retry(&self) -> Option<Instant> {
        match &self.state {
            SlotState::Failed { next_try, .. } => Some(*next_try),
            _ => None,
        }
    }

    pub fn access(&self) -> DirAccess<'_> {
        match &self.state {
            SlotState::Off => DirAccess::Off,
            SlotState::Open(dir) => DirAccess::Open(dir),
            SlotState::Failed { .. } => DirAccess::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::testing::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_directory_is_created_group_writable() {
        let parent = TempDir::new("dir-create");
        let path = parent.path().join("data");
        let (dir, notes) = DataDir::open(&path).expect("created");
        assert!(notes.iter().any(|n| matches!(n, DirNote::Created)));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o770);
        assert!(!notes
            .iter()
            .any(|n| matches!(n, DirNote::NotGroupWritable { .. })));
        assert_eq!(dir.configured(), path);
        assert_eq!(dir.canonical(), std::fs::canonicalize(&path).unwrap());
        assert_eq!(dir.method(), Method::Openat2);
    }

    #[test]
    fn permissions_are_warned_about() {
        let parent = TempDir::new("dir-modes");
        let path = parent.path().join("data");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_, notes) = DataDir::open(&path).unwrap();
        assert!(notes
            .iter()
            .any(|n| matches!(n, DirNote::NotGroupWritable { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (_, notes) = DataDir::open(&path).unwrap();
        let texts: Vec<String> = notes.iter().map(ToString::to_string).collect();
        assert!(
            notes
                .iter()
                .any(|n| matches!(n, DirNote::WorldWritable { .. })),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains("mode 0777")), "{texts:?}");
    }

    #[test]
    fn a_symlinked_path_records_its_canonical_target() {
        let parent = TempDir::new("dir-canonical");
        let real = parent.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (dir, _) = DataDir::open(&link).unwrap();
        assert_eq!(dir.configured(), link);
        assert_eq!(dir.canonical(), std::fs::canonicalize(&real).unwrap());
    }

    #[test]
    fn a_slot_retries_a_failed_directory_at_most_every_ten_seconds() {
        let parent = TempDir::new("dir-retry");
        // A regular file where the directory should be: cannot be opened nor created.
        let path = parent.path().join("data");
        std::fs::write(&path, b"").unwrap();
        let start = Instant::now();
        let (mut slot, result) = DataDirSlot::open(Some(&path), start);
        let error = result.expect_err("a file is not a directory");
        assert!(
            error.to_string().contains("tried again every 10 s"),
            "{error}"
        );
        assert!(matches!(slot.access(), DirAccess::Unavailable));
        assert_eq!(slot.next_retry(), Some(start + RETRY_INTERVAL));
        assert!(slot.retry(start + Duration::from_secs(9)).is_none());

        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(slot.retry(start + Duration::from_secs(9)).is_none());
        assert!(matches!(slot.access(), DirAccess::Unavailable));
        let notes = slot.retry(start + RETRY_INTERVAL).expect("tried");
        assert!(notes.is_ok());
        assert!(matches!(slot.access(), DirAccess::Open(_)));
        assert!(slot.retry(start + RETRY_INTERVAL * 5).is_none());
        assert_eq!(slot.next_retry(), None);
    }

    #[test]
    fn an_empty_data_dir_turns_files_off() {
        let (mut slot, result) = DataDirSlot::open(None, Instant::now());
        assert!(result.expect("nothing to open").is_empty());
        assert!(matches!(slot.access(), DirAccess::Off));
        assert!(slot.retry(Instant::now()).is_none());
    }
}
