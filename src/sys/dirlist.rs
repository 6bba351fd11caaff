//! Listing a directory given by fd (`fdopendir`/`readdir`), for walks that must not follow
//! symbolic links from a path: the old-file sweep of `data_dir`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, IntoRawFd};

use super::at::openat;

/// Closes the `DIR` stream (and with it its fd) whatever happens.
struct DirStream(*mut libc::DIR);

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful `fdopendir` and is closed exactly once.
        unsafe { libc::closedir(self.0) };
    }
}

/// The names in the directory `dir` (an `O_PATH` fd is fine), without `.` and `..`, at most
/// `limit` of them. `dir` itself is left open and its offset untouched: the listing reads
/// through a fresh fd.
pub fn list(dir: BorrowedFd<'_>, limit: usize) -> io::Result<Vec<Vec<u8>>> {
    let readable = openat(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY)?;
    let raw = readable.into_raw_fd();
    // SAFETY: `raw` is an open directory fd we own; on success the stream owns it.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let error = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Err(error);
    }
    let stream = DirStream(stream);
    let mut names = Vec::new();
    while names.len() < limit {
        // readdir returns NULL both at the end and on error; errno tells them apart.
        // SAFETY: `__errno_location` returns this thread's errno slot.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream.0` is a live DIR stream used by this thread only.
        let entry = unsafe { libc::readdir(stream.0) };
        if entry.is_null() {
            let error = io::Error::last_os_error();
            if error.raw_os_error().unwrap_or(0) != 0 {
                return Err(error);
            }
            break;
        }
        // SAFETY: `entry` is non-null and its `d_name` is NUL-terminated; it stays valid until
        // the next readdir on this stream, and the bytes are copied before then.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn lists_every_name_but_dot_entries_up_to_the_limit() {
        let dir = std::env::temp_dir().join(format!("sd-sys-dirlist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let fd = super::super::at::open_dir_path(&dir).unwrap();
        let mut names = list(fd.as_fd(), 10).unwrap();
        names.sort();
        assert_eq!(names, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(list(fd.as_fd(), 2).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
