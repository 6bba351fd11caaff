//! The open-file limit: every stream holds a client fd, and an upstream stream a second one.

use std::io;

use super::check;

/// The soft and hard `RLIMIT_NOFILE` after trying to raise the soft limit to `wanted`
/// (never above the hard limit, never lowered).
pub fn raise_open_files(wanted: u64) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    let target = wanted.min(limit.rlim_max);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target as libc::rlim_t,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) })?;
        limit.rlim_cur = raised.rlim_cur;
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// The current soft `RLIMIT_NOFILE`.
pub fn open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    Ok(limit.rlim_cur)
}
