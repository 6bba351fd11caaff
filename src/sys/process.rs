//! Signals to the programs the daemon runs for local backends.

use std::io;

use super::check;

/// Sends SIGKILL to the process group `pid` leads (children are spawned as group leaders), so
/// that whatever a script started dies with it. Only call it while the leader is not yet reaped:
/// until then its pid, and so the group id, cannot belong to anyone else.
pub fn kill_group(pid: u32) -> io::Result<()> {
    // 0 or an overflow would turn into a signal for our own group, or for every process we may
    // signal.
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers; a negative pid names the process group.
    check(unsafe { libc::kill(-pid, libc::SIGKILL) })?;
    Ok(())
}
