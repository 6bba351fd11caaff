//! Opening one name beneath `data_dir`, and deleting it as soon as it is open (SPEC §4.5
//! "Opening" and "Deletion").
//!
//! 1. The parent directories: one `openat2` with the strict resolve flags, or a walk of
//!    `openat(O_PATH | O_NOFOLLOW)` that checks each component is a directory and no link.
//! 2. The last component is looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` first, so that a
//!    FIFO, a device or a directory is refused without ever being opened.
//! 3. A regular file is opened `O_RDONLY | O_NOFOLLOW | O_NONBLOCK` (resolve flags again) and
//!    `fstat` must still call it regular: something swapped in between is refused too.
//! 4. It is unlinked from its parent's fd, but only if the name still points at the file that
//!    was opened (same `st_dev`/`st_ino`): a file another process put there since is left.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::dir::{DataDir, Method};
use super::names::split_parent;
use crate::sys::at;

/// What one name turned out to be.
#[derive(Debug)]
pub(crate) enum Opened {
    /// A regular file, open; `deleted` says whether its name is gone.
    File {
        fd: OwnedFd,
        size: u64,
        deleted: Result<(), io::Error>,
    },
    /// `ENOENT`, or a parent that is not a directory: skipped.
    Missing(io::Error),
    /// Any other open error (`EACCES`, …): skipped.
    Unreadable(io::Error),
    /// A symbolic link somewhere in the name: refused, left.
    Symlink(io::Error),
    /// A FIFO, a directory, a device or a socket: refused, left.
    NotRegular,
    /// Resolved outside the directory: refused.
    Escape(io::Error),
}

/// The flags a file is opened with: no link, no waiting on a FIFO's writer.
const FILE_FLAGS: i32 = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;

fn classify(error: io::Error) -> Opened {
    match error.raw_os_error() {
        Some(libc::ELOOP) => Opened::Symlink(error),
        Some(libc::EXDEV) => Opened::Escape(error),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Opened::Missing(error),
        // Opening a Unix socket.
        Some(libc::ENXIO) => Opened::NotRegular,
        _ => Opened::Unreadable(error),
    }
}

/// The directory a name's last component lives in.
enum Parent<'a> {
    Base(BorrowedFd<'a>),
    Sub(OwnedFd),
}

impl Parent<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Parent::Base(fd) => *fd,
            Parent::Sub(fd) => fd.as_fd(),
        }
    }
}

fn open_parent<'a>(dir: &'a DataDir, parent: Option<&str>) -> Result<Parent<'a>, Opened> {
    let Some(parent) = parent else {
        return Ok(Parent::Base(dir.fd()));
    };
    match dir.method() {
        Method::Openat2 => at::openat2(
            dir.fd(),
            parent.as_bytes(),
            libc::O_PATH | libc::O_DIRECTORY,
            at::RESOLVE_STRICT,
        )
        .map(Parent::Sub)
        .map_err(classify),
        Method::Walk => {
            let mut current: Option<OwnedFd> = None;
            for component in parent.split('/') {
                let base = current.as_ref().map_or(dir.fd(), |fd| fd.as_fd());
                // O_PATH | O_NOFOLLOW opens a link itself, so that it can be recognised.
                let next = at::openat(base, component.as_bytes(), libc::O_PATH | libc::O_NOFOLLOW)
                    .map_err(classify)?;
                let stat = at::fstat(next.as_fd()).map_err(classify)?;
                if stat.is_symlink() {
                    return Err(Opened::Symlink(io::Error::from_raw_os_error(libc::ELOOP)));
                }
                if !stat.is_dir() {
                    return Err(Opened::Missing(io::Error::from_raw_os_error(libc::ENOTDIR)));
                }
                current = Some(next);
            }
            Ok(current.map_or(Parent::Base(dir.fd()), Parent::Sub))
        }
    }
}

/// Opens `name` (already checked by `names::is_relative_name`) beneath `dir` and deletes it
/// once open.
pub(crate) fn open_and_delete(dir: &DataDir, name: &str) -> Opened {
    let (parent, leaf) = split_parent(name);
    let parent = match open_parent(dir, parent) {
        Ok(parent) => parent,
        Err(opened) => return opened,
    };
    let leaf = leaf.as_bytes();
    let before = match at::fstatat_nofollow(parent.fd(), leaf) {
        Ok(stat) => stat,
        Err(error) => return classify(error),
    };
    if before.is_symlink() {
        return Opened::Symlink(io::Error::from_raw_os_error(libc::ELOOP));
    }
    if !before.is_regular() {
        return Opened::NotRegular;
    }
    let opened = match dir.method() {
        Method::Openat2 => at::openat2(parent.fd(), leaf, FILE_FLAGS, at::RESOLVE_STRICT),
        Method::Walk => at::openat(parent.fd(), leaf, FILE_FLAGS),
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(error) => return classify(error),
    };
    let stat = match at::fstat(fd.as_fd()) {
        Ok(stat) => stat,
        Err(error) => return Opened::Unreadable(error),
    };
    if !stat.is_regular() {
        return Opened::NotRegular;
    }
    let deleted = delete(parent.fd(), leaf, &stat);
    Opened::File {
        fd,
        size: stat.size,
        deleted,
    }
}

/// Unlinks `leaf` if it is still the file `opened` describes. A name already gone counts as
/// deleted.
fn delete(parent: BorrowedFd<'_>, leaf: &[u8], opened: &at::Stat) -> Result<(), io::Error> {
    match at::fstatat_nofollow(parent, leaf) {
        Ok(now) if now.same_file(opened) => match at::unlinkat(parent, leaf) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
        Ok(_) => Err(io::Error::other(
            "another file took its name after it was opened",
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::testing::TempDir;
    use std::os::unix::fs::symlink;

    fn both_methods(test: impl Fn(&DataDir, &TempDir)) {
        for method in [Method::Openat2, Method::Walk] {
            let temp = TempDir::new(&format!("open-{method:?}"));
            let (dir, _) = DataDir::open_with(temp.path(), Some(method)).unwrap();
            test(&dir, &temp);
        }
    }

    #[test]
    fn a_regular_file_is_opened_and_deleted_and_stays_readable() {
        both_methods(|dir, temp| {
            temp.write("sub/deeper/f.txt", b"content");
            let Opened::File { fd, size, deleted } = open_and_delete(dir, "sub/deeper/f.txt")
            else {
                panic!("opened");
            };
            assert_eq!(size, 7);
            assert!(deleted.is_ok());
            assert!(!temp.exists("sub/deeper/f.txt"));
            assert!(temp.exists("sub/deeper"));
            let mut buf = [0u8; 16];
            assert_eq!(at::pread(fd.as_fd(), &mut buf, 0).unwrap(), 7);
        });
    }

    #[test]
    fn links_anywhere_are_refused_and_left() {
        both_methods(|dir, temp| {
            temp.write("t.png", b"x");
            temp.mkdir("real");
            temp.write("real/f.txt", b"x");
            symlink("/etc/hostname", temp.path().join("host.txt")).unwrap();
            symlink("t.png", temp.path().join("in.png")).unwrap();
            symlink("real", temp.path().join("linkdir")).unwrap();
            symlink("/etc", temp.path().join("etc")).unwrap();
            for name in ["host.txt", "in.png", "linkdir/f.txt", "etc/hostname"] {
                assert!(
                    matches!(open_and_delete(dir, name), Opened::Symlink(_)),
                    "{name}"
                );
            }
            for name in [
                "t.png",
                "real/f.txt",
                "host.txt",
                "in.png",
                "linkdir",
                "etc",
            ] {
                assert!(temp.exists_nofollow(name), "{name} left");
            }
        });
    }

    #[test]
    fn fifos_directories_and_sockets_are_refused_unopened_and_left() {
        both_methods(|dir, temp| {
            temp.mkfifo("f.txt");
            temp.mkdir("d.txt");
            let _listener =
                std::os::unix::net::UnixListener::bind(temp.path().join("s.txt")).unwrap();
            for name in ["f.txt", "d.txt", "s.txt"] {
                assert!(
                    matches!(open_and_delete(dir, name), Opened::NotRegular),
                    "{name}"
                );
                assert!(temp.exists_nofollow(name), "{name} left");
            }
        });
    }

    #[test]
    fn missing_files_and_parents_that_are_files_are_skipped() {
        both_methods(|dir, temp| {
            temp.write("file", b"x");
            assert!(matches!(
                open_and_delete(dir, "gone.png"),
                Opened::Missing(_)
            ));
            assert!(matches!(
                open_and_delete(dir, "nodir/a.png"),
                Opened::Missing(_)
            ));
            assert!(matches!(
                open_and_delete(dir, "file/a.png"),
                Opened::Missing(_)
            ));
            assert!(temp.exists("file"));
        });
    }
}
