//! Passing file descriptors over Unix sockets with `SCM_RIGHTS`.
//!
//! Receiving fails closed: every fd the kernel hands us is wrapped in an `OwnedFd` before
//! anything else happens, so no path can leak one.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::check_size;

/// Room for this many fds in one message; Apache sends one, more is a surprise we still clean up.
const MAX_FDS_PER_MESSAGE: usize = 8;

/// A control buffer aligned for `cmsghdr`, with room for `MAX_FDS_PER_MESSAGE` fds.
#[repr(C, align(8))]
struct ControlBuffer([u8; 128]);

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
    let mut control = ControlBuffer([0; 128]);
    // SAFETY: CMSG_SPACE is a pure size computation.
    let needed =
        unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MESSAGE * mem::size_of::<RawFd>()) as u32) };
    debug_assert!(needed as usize <= control.0.len());

    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    // Exactly the room for MAX_FDS_PER_MESSAGE, so that more is reported as MSG_CTRUNC.
    message.msg_controllen = (needed as usize).min(control.0.len()) as _;

    // SAFETY: `message` points at `iov` (covering `buf`) and `control`, both alive and
    // writable for the whole call; the kernel writes at most their stated lengths.
    let result = unsafe {
        libc::recvmsg(
            socket.as_raw_fd(),
            &mut message,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    };
    let bytes = check_size(result)?;

    // SAFETY: the kernel filled `message` and `control`; CMSG_FIRSTHDR/NXTHDR only walk
    // within `msg_controllen` bytes of the buffer we own.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(&message) };
    while !header.is_null() {
        // `cmsg_len` is a `size_t` on glibc and a `socklen_t` (u32) on musl: widen it once here.
        // SAFETY: `header` is non-null and points into `control`, as CMSG_FIRSTHDR/NXTHDR
        // guarantee.
        let (level, kind, len) = unsafe {
            (
                (*header).cmsg_level,
                (*header).cmsg_type,
                (*header).cmsg_len as usize,
            )
        };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a pure size computation.
            let data_len = len.saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
            let count = data_len / mem::size_of::<RawFd>();
            // SAFETY: CMSG_DATA points at `data_len` bytes of fds inside `control`.
            let data = unsafe { libc::CMSG_DATA(header) }.cast::<RawFd>();
            for i in 0..count {
                // SAFETY: `i < count` keeps the unaligned read inside the cmsg's data; each fd
                // was just installed in our table by the kernel and nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(data.add(i).read_unaligned()) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR above.
        header = unsafe { libc::CMSG_NXTHDR(&message, header) };
    }

    Ok(Received {
        bytes,
        truncated: message.msg_flags & libc::MSG_TRUNC != 0,
        control_truncated: message.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

/// Sends `data` with `fd` attached as one `SCM_RIGHTS` message, as Apache's module does.
/// Returns how many data bytes were sent (the fd travels with the first byte).
pub fn send_with_fd(socket: &impl AsFd, data: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut control = ControlBuffer([0; 128]);
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
