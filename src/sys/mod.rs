//! Thin, safe wrappers over the libc calls that std and mio do not offer: fd passing, Unix
//! listeners of both socket types, socket options, signals, resource limits, killing a spawned
//! program's process group, the umask, bounded whole-file reads, files opened and removed beneath
//! a directory fd without following links (attachments), system constants, random bytes, and
//! talking to systemd: sd_notify, socket activation and starting an upgrade's new process with
//! our listeners, and glibc's mmap threshold. Every `unsafe` block in the daemon lives here.

pub mod activation;
pub mod at;
pub mod dirlist;
pub mod epoll;
pub mod fdpass;
pub mod file;
pub mod info;
pub mod limits;
pub mod malloc;
mod message;
pub mod notify;
pub mod process;
pub mod random;
pub mod signals;
pub mod socket;
pub mod spawn;
pub mod stamps;
pub mod umask;

use std::io;

/// Turns a libc return value into a `Result`, reading `errno` on -1.
fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn check_size(result: libc::ssize_t) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result as usize)
    }
}
