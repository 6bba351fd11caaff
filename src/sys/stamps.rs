//! When received bytes reached the socket: the kernel's receive timestamps (`SO_TIMESTAMPNS`).
//!
//! The load generator reads 15,000 sockets in one thread, so the time it reads a first byte
//! includes its own queueing; the kernel's stamp is when the byte arrived, which is the
//! daemon's part of the time to first byte.

use std::io;
use std::mem;
use std::os::fd::BorrowedFd;
use std::time::{Duration, SystemTime};

use super::message::{receive, ControlBuffer};
use super::socket;

/// Has the kernel stamp what this socket receives (wall-clock time).
pub fn enable(fd: BorrowedFd<'_>) -> io::Result<()> {
    socket::set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// One non-blocking receive, with the arrival time of the last bytes read when the kernel
/// stamped them (`enable` was called, and the socket family stamps).
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let mut control = ControlBuffer::new();
    let mut stamp = None;
    let room = control.0.len();
    let (bytes, _) = receive(fd, buf, &mut control, room, libc::MSG_DONTWAIT, |found| {
        if found.level == libc::SOL_SOCKET
            && found.kind == libc::SCM_TIMESTAMPNS
            && found.len >= mem::size_of::<libc::timespec>()
        {
            // SAFETY: the message's data holds a timespec (its length was checked).
            let time = unsafe { found.data.cast::<libc::timespec>().read_unaligned() };
            let since_epoch = Duration::new(time.tv_sec as u64, time.tv_nsec as u32);
            stamp = SystemTime::UNIX_EPOCH.checked_add(since_epoch);
        }
    })?;
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
