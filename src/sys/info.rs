//! System constants the metrics need: the unit of CPU times and the page size.

use std::io;

/// `sysconf(_SC_CLK_TCK)`: the unit of the CPU times in `/proc/<pid>/stat`.
pub fn ticks_per_second() -> io::Result<u64> {
    // SAFETY: sysconf only reads a system constant; it has no pointer arguments.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    positive(ticks, "sysconf(_SC_CLK_TCK)")
}

/// `sysconf(_SC_PAGESIZE)`: the unit of the memory sizes in `/proc/<pid>/stat`.
pub fn page_size() -> io::Result<u64> {
    // SAFETY: as above, a constant query without pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    positive(size, "sysconf(_SC_PAGESIZE)")
}

fn positive(value: libc::c_long, what: &str) -> io::Result<u64> {
    u64::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, format!("{what} gave {value}")))
}
