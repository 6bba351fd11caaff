//! `recvmsg` with ancillary data, for the callers that want some: fds passed with
//! `SCM_RIGHTS` ([`super::fdpass`]) and the kernel's receive stamps ([`super::stamps`]).

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check_size;

/// A control buffer aligned for `cmsghdr`.
#[repr(C, align(8))]
pub struct ControlBuffer(pub [u8; 128]);

impl ControlBuffer {
    pub fn new() -> ControlBuffer {
        ControlBuffer([0; 128])
    }
}

/// One control message: its level, type, and a pointer to its data and the data's length,
/// valid only during the callback.
pub struct ControlMessage {
    pub level: libc::c_int,
    pub kind: libc::c_int,
    pub data: *const u8,
    pub len: usize,
}

/// One `recvmsg` into `buf`, with up to `control_len` bytes of `control` (at most its size)
/// for ancillary data; `each` sees every control message the kernel returned. Returns the
/// data bytes read and the message flags (`MSG_TRUNC`, `MSG_CTRUNC`).
pub fn receive(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    control: &mut ControlBuffer,
    control_len: usize,
    flags: libc::c_int,
    mut each: impl FnMut(&ControlMessage),
) -> io::Result<(usize, libc::c_int)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = control_len.min(control.0.len()) as _;
    // SAFETY: `message` points at `iov` (covering `buf`) and `control`, both alive and
    // writable for the whole call; the kernel writes at most their stated lengths.
    let result = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, flags) };
    let bytes = check_size(result)?;
    // SAFETY: the kernel filled `message` and `control`; CMSG_FIRSTHDR/NXTHDR only walk
    // within `msg_controllen` bytes of the buffer we own.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(&message) };
    while !header.is_null() {
        // `cmsg_len` is a `size_t` on glibc and a `socklen_t` (u32) on musl: widen it once here.
        // SAFETY: `header` is non-null and points into `control`, as CMSG_FIRSTHDR/NXTHDR
        // guarantee; CMSG_LEN(0) is a pure size computation; CMSG_DATA points inside it.
        let found = unsafe {
            let len = ((*header).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            ControlMessage {
                level: (*header).cmsg_level,
                kind: (*header).cmsg_type,
                data: libc::CMSG_DATA(header),
                len,
            }
        };
        each(&found);
        // SAFETY: as for CMSG_FIRSTHDR above.
        header = unsafe { libc::CMSG_NXTHDR(&message, header) };
    }
    Ok((bytes, message.msg_flags))
}
