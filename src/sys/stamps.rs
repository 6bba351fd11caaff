//! When received bytes reached the socket: the kernel's receive timestamps (`SO_TIMESTAMPNS`).
//!
//! The load generator reads 15,000 sockets in one thread, so the time it reads a first byte
//! includes its own queueing; the kernel's stamp is when the byte arrived, which is the
//! daemon's part of the time to first byte.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime};

use super::{check_size, socket};

/// A control buffer aligned for `cmsghdr`, with room for one `timespec`.
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

/// Has the kernel stamp what this socket receives (wall-clock time).
pub fn enable(fd: BorrowedFd<'_>) -> io::Result<()> {
    socket::set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// One non-blocking receive, with the arrival time of the last bytes read when the kernel
/// stamped them (`enable` was called, and the socket family stamps).
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let mut control = ControlBuffer([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = control.0.len() as _;
    // SAFETY: `message` points at `iov` (covering `buf`) and `control`, both alive and
    // writable for the whole call; the kernel writes at most their stated lengths.
    let result = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut message, libc::MSG_DONTWAIT) };
    let bytes = check_size(result)?;
    let mut stamp = None;
    // SAFETY: the kernel filled `message` and `control`; CMSG_FIRSTHDR/NXTHDR only walk
    // within `msg_controllen` bytes of the buffer we own.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(&message) };
    while !header.is_null() {
        // SAFETY: `header` is non-null and points into `control`.
        let (level, kind) = unsafe { ((*header).cmsg_level, (*header).cmsg_type) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one timespec in its data, inside
            // `control`; the read is unaligned-safe.
            let time = unsafe {
                libc::CMSG_DATA(header)
                    .cast::<libc::timespec>()
                    .read_unaligned()
            };
            let since_epoch = Duration::new(time.tv_sec as u64, time.tv_nsec as u32);
            stamp = SystemTime::UNIX_EPOCH.checked_add(since_epoch);
        }
        // SAFETY: as for CMSG_FIRSTHDR above.
        header = unsafe { libc::CMSG_NXTHDR(&message, header) };
    }
    Ok((bytes, stamp))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn bytes_received_on_loopback_tcp_carry_their_arrival_time() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        enable(receiver.as_fd()).unwrap();
        let before = SystemTime::now();
        sender.write_all(b"first").unwrap();
        let mut buf = [0u8; 16];
        // Non-blocking: bounded retries until the bytes are there.
        let mut received = None;
        for _ in 0..1000 {
            match recv(receiver.as_fd(), &mut buf) {
                Ok(got) => {
                    received = Some(got);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        }
        let (n, stamp) = received.expect("the bytes arrived within 10 s");
        assert_eq!(&buf[..n], b"first");
        let stamp = stamp.expect("loopback TCP is stamped");
        assert!(
            stamp >= before - Duration::from_secs(1),
            "{stamp:?} {before:?}"
        );
        assert!(stamp <= SystemTime::now());
    }
}
