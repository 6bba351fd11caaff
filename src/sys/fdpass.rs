//! Passing file descriptors over Unix sockets with `SCM_RIGHTS`.
//!
//! Receiving fails closed: every fd the kernel hands us is wrapped in an `OwnedFd` before
//! anything else happens, so no path can leak one.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::check_size;
use super::message::{receive, ControlBuffer};

/// Room for this many fds in one message; Apache sends one, more is a surprise we still clean up.
const MAX_FDS_PER_MESSAGE: usize = 8;

/// What one `recvmsg` returned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Data bytes read; zero with no fds means end of stream.
    pub bytes: usize,
    /// `MSG_TRUNC`: the message was longer than the buffer (seqpacket) and the rest is gone.
    pub truncated: bool,
    /// `MSG_CTRUNC`: control data did not fit; some fds were dropped by the kernel.
    pub control_truncated: bool,
}

/// One non-blocking `recvmsg` with `MSG_CMSG_CLOEXEC`. Data goes into `buf`; every fd received
/// is appended to `fds`, owned.
pub fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<Received> {
    let mut control = ControlBuffer::new();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let room = unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MESSAGE * mem::size_of::<RawFd>()) as u32) };
    debug_assert!(room as usize <= control.0.len());
    // Exactly the room for MAX_FDS_PER_MESSAGE, so that more is reported as MSG_CTRUNC.
    let flags = libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT;
    let (bytes, flags) = receive(socket, buf, &mut control, room as usize, flags, |found| {
        if found.level == libc::SOL_SOCKET && found.kind == libc::SCM_RIGHTS {
            let data = found.data.cast::<RawFd>();
            for i in 0..found.len / mem::size_of::<RawFd>() {
                // SAFETY: `i` stays inside the message's data; each fd was just installed in
                // our table by the kernel and nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(data.add(i).read_unaligned()) });
            }
        }
    })?;
    Ok(Received {
        bytes,
        truncated: flags & libc::MSG_TRUNC != 0,
        control_truncated: flags & libc::MSG_CTRUNC != 0,
    })
}

/// Sends `data` with `fd` attached as one `SCM_RIGHTS` message, as Apache's module does.
/// Returns how many data bytes were sent (the fd travels with the first byte).
pub fn send_with_fd(socket: &impl AsFd, data: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut control = ControlBuffer::new();
    // SAFETY: pure size computations.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32),
            libc::CMSG_LEN(mem::size_of::<RawFd>() as u32),
        )
    };
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: all-zero is a valid msghdr.
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = space as _;
    // SAFETY: the control buffer holds `space` bytes, enough for one cmsghdr carrying one fd;
    // CMSG_FIRSTHDR is non-null because msg_controllen >= sizeof(cmsghdr).
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = len as _;
        libc::CMSG_DATA(header).cast::<RawFd>().write_unaligned(fd);
    }
    // SAFETY: `message` references `iov` (over `data`, only read by the kernel) and `control`,
    // both alive for the call.
    let result = unsafe { libc::sendmsg(socket.as_fd().as_raw_fd(), &message, libc::MSG_NOSIGNAL) };
    check_size(result)
}
