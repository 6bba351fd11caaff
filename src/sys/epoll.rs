//! The one registration mio cannot express: the shared handoff listener with `EPOLLEXCLUSIVE`,
//! so that a connection wakes one worker's loop rather than all of them (SPEC §6.5).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Adds `fd` to the epoll instance `epoll` for readability, edge-triggered like every mio
/// registration, waking only one of the epoll instances that wait on it; events carry `token`
/// as mio's do. Remove it with mio's `deregister` (`EPOLL_CTL_DEL`).
pub fn add_exclusive(epoll: &impl AsRawFd, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32,
        u64: token as u64,
    };
    // SAFETY: `epoll` (borrowed: it owns its fd) and `fd` are open for the duration of the
    // call; `event` is a valid, initialised epoll_event that the kernel only reads.
    let result = unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            &mut event,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixListener;
    use std::time::Duration;

    #[test]
    fn a_connection_wakes_the_registered_poll_with_its_token() {
        let path = std::env::temp_dir().join(format!("sd-epoll-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        add_exclusive(&poll, listener.as_fd(), 7).unwrap();
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        let tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        assert_eq!(tokens, [7]);
        // Adding it twice is refused: EEXIST, not a silent second registration.
        assert!(add_exclusive(&poll, listener.as_fd(), 7).is_err());
        let _ = std::fs::remove_file(&path);
    }
}
