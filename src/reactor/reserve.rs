//! One spare file descriptor, so that a handoff's client fd always finds a free slot.
//!
//! At the open-file limit the kernel cannot install the fds a `recvmsg` carries; it drops them
//! and sets `MSG_CTRUNC`, and that client is lost without a word. So the loop keeps one slot
//! taken by a spare, frees it just before reading a handoff, and takes it back afterwards. When
//! it cannot be taken back the process is at its limit: accepting pauses until it can, and new
//! handoffs wait in the listen backlog instead of being lost.

use std::fs::File;
use std::os::fd::OwnedFd;

pub struct FdReserve {
    spare: Option<OwnedFd>,
}

impl FdReserve {
    pub fn new() -> FdReserve {
        let mut reserve = FdReserve { spare: None };
        reserve.restore();
        reserve
    }

    /// Frees the slot for the handoff about to be read.
    pub fn release(&mut self) {
        self.spare = None;
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
