//! One spare file descriptor, so that a handoff's client fd always finds a free slot.
//!
//! At the open-file limit the kernel cannot install the fds a `recvmsg` carries; it drops them
//! and sets `MSG_CTRUNC`, and that client is lost without a word. So the loop keeps one slot
//! taken by a spare and, when it may be near the limit, frees it just before reading a handoff
//! and takes it back afterwards. When it cannot be taken back the process is at its limit:
//! accepting pauses until it can, and new handoffs wait in the listen backlog instead of being
//! lost. Far from the limit (the usual case) none of this costs a system call.

use std::fs::File;
use std::os::fd::OwnedFd;

/// Descriptors one connection may hold at once: Apache's or the client's, an upstream
/// connection or a child's pipe, and one more for safety.
const FDS_PER_CONNECTION: u64 = 3;
/// Descriptors the process holds besides its connections (listeners, epoll, signalfd, waker,
/// stdio, idle pool connections are counted separately) with room to spare.
const FIXED_FDS: u64 = 64;

pub struct FdReserve {
    spare: Option<OwnedFd>,
    /// The soft `RLIMIT_NOFILE` when the loop started.
    limit: u64,
}

impl FdReserve {
    pub fn new() -> FdReserve {
        let limit = crate::sys::limits::open_files_limit().unwrap_or(0);
        let mut reserve = FdReserve { spare: None, limit };
        reserve.restore();
        reserve
    }

    /// Whether `connections` (plus `idle` pooled upstream connections) may bring the process
    /// near its limit, so that each handoff read must free the spare first.
    pub fn is_tight(&self, connections: usize, idle: usize) -> bool {
        let worst_case = FIXED_FDS + FDS_PER_CONNECTION * connections as u64 + idle as u64;
        self.spare.is_none() || worst_case >= self.limit
    }

    /// Frees the slot for the handoff about to be read.
    /// Frees the spare slot; false if it was already free.
    pub fn release(&mut self) -> bool {
        self.spare.take().is_some()
    }

    /// Takes the slot back; false while the process is at its open-file limit.
    pub fn restore(&mut self) -> bool {
        if self.spare.is_none() {
            // /dev/null opens without touching a disk and never blocks.
            self.spare = File::open("/dev/null").ok().map(OwnedFd::from);
        }
        self.spare.is_some()
    }
}
