//! Files named relative to a directory fd: `openat2` with resolve flags, `openat`, `fstatat`,
//! `unlinkat`, `mkdir` and `pread`.
//!
//! Attachment files live in a directory other processes (PHP) write to, so a name is never
//! trusted to stay what it was: everything here works on directory fds and single names, never
//! on paths the kernel resolves from the root, and nothing follows a symbolic link unless asked.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{check, check_size};

/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`: stay under the directory,
/// follow no link of any kind.
pub const RESOLVE_STRICT: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// `struct open_how` of `linux/openat2.h`; libc's is `#[non_exhaustive]`, so it cannot be built.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

// `mode_t` is `u32` on Linux; the casts keep `Stat::mode` one type wherever it is not.
#[allow(clippy::unnecessary_cast)]
const S_IFMT: u32 = libc::S_IFMT as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFREG: u32 = libc::S_IFREG as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFDIR: u32 = libc::S_IFDIR as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFLNK: u32 = libc::S_IFLNK as u32;

/// What `fstat` says about a file, the fields the daemon looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub size: u64,
    /// Last modification, seconds since the epoch (may be negative).
    pub mtime: i64,
    /// Nanoseconds to add to `mtime`.
    pub mtime_nsec: i64,
}

impl Stat {
    // The `stat` field types differ between targets (musl, 32-bit): the casts are no-ops only
    // on some of them.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(raw: &libc::stat) -> Stat {
        Stat {
            dev: raw.st_dev as u64,
            ino: raw.st_ino as u64,
            mode: raw.st_mode as u32,
            size: u64::try_from(raw.st_size).unwrap_or(0),
            mtime: raw.st_mtime as i64,
            mtime_nsec: raw.st_mtime_nsec as i64,
        }
    }

    fn is_kind(&self, kind: u32) -> bool {
        self.mode & S_IFMT == kind
    }

    pub fn is_regular(&self) -> bool {
        self.is_kind(S_IFREG)
    }

    pub fn is_dir(&self) -> bool {
        self.is_kind(S_IFDIR)
    }

    pub fn is_symlink(&self) -> bool {
        self.is_kind(S_IFLNK)
    }

    /// When the file was last modified.
    pub fn modified(&self) -> std::time::SystemTime {
        use std::time::{Duration, UNIX_EPOCH};
        let nanos = Duration::from_nanos(self.mtime_nsec.clamp(0, 999_999_999) as u64);
        let whole = Duration::from_secs(self.mtime.unsigned_abs());
        let seconds = if self.mtime >= 0 {
            UNIX_EPOCH.checked_add(whole)
        } else {
            UNIX_EPOCH.checked_sub(whole)
        };
        seconds
            .and_then(|t| t.checked_add(nanos))
            .unwrap_or(UNIX_EPOCH)
    }

    /// The same file: device and inode match.
    pub fn same_file(&self, other: &Stat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// A name as the kernel wants it; a NUL byte inside is `EINVAL`, never a cut name.
fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Wraps the fd a successful open returned.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`: a handle on a directory that can only be
/// used as the base of `*at` calls (no read permission needed).
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let path = c_name(path.as_os_str().as_bytes())?;
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    let fd = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    Ok(owned(fd))
}

/// `mkdir(path, mode)`; the umask applies, as always.
pub fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    let path = c_name(path.as_os_str().as_bytes())?;
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    check(unsafe { libc::mkdir(path.as_ptr(), mode as libc::mode_t) }).map(|_| ())
}

/// `mkfifo(path, mode)`: tests stage FIFOs where files are expected.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let path = c_name(path.as_os_str().as_bytes())?;
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    check(unsafe { libc::mkfifo(path.as_ptr(), mode as libc::mode_t) }).map(|_| ())
}

/// `openat2(dir, name, { flags | O_CLOEXEC, 0, resolve })`. `ENOSYS` on kernels before 5.6, and
/// `EPERM` where a seccomp filter refuses the call.
pub fn openat2(dir: BorrowedFd<'_>, name: &[u8], flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `name` is NUL-terminated and `how` a properly laid out `open_how`, both alive for
    // the call; the size passed is the struct's.
    let result = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd =
        libc::c_int::try_from(result).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    Ok(owned(fd))
}

/// `openat(dir, name, flags | O_CLOEXEC)`.
pub fn openat(dir: BorrowedFd<'_>, name: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    let fd =
        check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) })?;
    Ok(owned(fd))
}

/// `fstat(fd)`; works on `O_PATH` fds too.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: all-zero is a valid `stat`; the kernel fills it.
    let mut raw: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `raw` is a writable `stat` alive for the call.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut raw) })?;
    Ok(Stat::from_raw(&raw))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: a symbolic link is described, not followed.
pub fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Stat> {
    let name = c_name(name)?;
    // SAFETY: all-zero is a valid `stat`; the kernel fills it.
    let mut raw: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `raw` writable, both alive for the call.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut raw,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(Stat::from_raw(&raw))
}

/// `unlinkat(dir, name, 0)`: removes a non-directory entry (a directory is `EISDIR`).
pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(|_| ())
}

/// One `pread` into `buf` at `offset`, retried on `EINTR`. Zero means end of file.
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes for the whole call.
        let result =
            unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset) };
        match check_size(result) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sd-sys-at-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("temp dir is writable");
        dir
    }

    #[test]
    fn open_stat_read_and_unlink_through_a_directory_fd() {
        let dir = temp_dir("basic");
        std::fs::write(dir.join("f.txt"), b"hello").unwrap();
        std::os::unix::fs::symlink("f.txt", dir.join("link")).unwrap();
        let base = open_dir_path(&dir).unwrap();

        let file = openat2(base.as_fd(), b"f.txt", libc::O_RDONLY, RESOLVE_STRICT).unwrap();
        let stat = fstat(file.as_fd()).unwrap();
        assert!(stat.is_regular());
        assert_eq!(stat.size, 5);
        let mut buf = [0u8; 8];
        assert_eq!(pread(file.as_fd(), &mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert_eq!(pread(file.as_fd(), &mut buf, 5).unwrap(), 0);

        let link = fstatat_nofollow(base.as_fd(), b"link").unwrap();
        assert!(link.is_symlink());
        let error = openat2(base.as_fd(), b"link", libc::O_RDONLY, RESOLVE_STRICT).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));
        let error = openat(base.as_fd(), b"link", libc::O_RDONLY | libc::O_NOFOLLOW).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));

        let error = openat2(base.as_fd(), b"../x", libc::O_RDONLY, RESOLVE_STRICT).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EXDEV));

        assert!(fstatat_nofollow(base.as_fd(), b"f.txt")
            .unwrap()
            .same_file(&stat));
        unlinkat(base.as_fd(), b"f.txt").unwrap();
        // The open fd still reads the unlinked file.
        assert_eq!(pread(file.as_fd(), &mut buf, 0).unwrap(), 5);
        assert_eq!(
            fstatat_nofollow(base.as_fd(), b"f.txt").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_nul_byte_in_a_name_is_refused_not_cut() {
        let dir = temp_dir("nul");
        std::fs::write(dir.join("a"), b"x").unwrap();
        let base = open_dir_path(&dir).unwrap();
        let error = openat(base.as_fd(), b"a\0b", libc::O_RDONLY).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
        assert!(unlinkat(base.as_fd(), b"a\0").is_err());
        assert!(dir.join("a").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
