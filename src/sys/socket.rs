//! Unix listeners of either socket type, accepting, and the socket calls of a stream's life.

use std::ffi::OsStr;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

use super::{check, check_size};
use crate::config::SocketType;

fn kind(socket_type: SocketType) -> libc::c_int {
    match socket_type {
        SocketType::Stream => libc::SOCK_STREAM,
        SocketType::SeqPacket => libc::SOCK_SEQPACKET,
    }
}

fn unix_address(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    unix_address_from(OsStr::as_bytes(path.as_os_str()), false)
}

/// The address of a Unix socket named the way `$NOTIFY_SOCKET` names one: a filesystem path, or
/// an abstract name (Linux) when it starts with `@`.
pub fn unix_address_of(name: &OsStr) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    match name.as_bytes().split_first() {
        Some((b'@', rest)) => unix_address_from(rest, true),
        _ => unix_address_from(name.as_bytes(), false),
    }
}

/// A path is NUL-terminated and counted with its NUL; an abstract name starts with a NUL byte
/// and is counted exactly, so `@x` and `@x\0` are different names.
fn unix_address_from(
    bytes: &[u8],
    is_abstract: bool,
) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut address: libc::sockaddr_un = unsafe { mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let offset = usize::from(is_abstract);
    // Room for the leading NUL of an abstract name, or the trailing NUL of a path.
    if bytes.len() + 1 > address.sun_path.len() || (!is_abstract && bytes.contains(&0)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path must be under {} bytes and contain no NUL",
                address.sun_path.len()
            ),
        ));
    }
    for (slot, byte) in address.sun_path[offset..].iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let length = mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((address, length as libc::socklen_t))
}

fn new_unix_socket(socket_type: SocketType) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the new fd is owned at once.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_UNIX,
            kind(socket_type) | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking listening Unix socket bound at `path`.
pub fn unix_listener(path: &Path, socket_type: SocketType, backlog: i32) -> io::Result<OwnedFd> {
    let socket = unix_bound(path, socket_type)?;
    listen(socket.as_fd(), backlog)?;
    Ok(socket)
}

/// A non-blocking Unix socket bound at `path` but not yet listening: until `listen`, a connect to
/// it is refused, whatever the file's mode.
pub fn unix_bound(path: &Path, socket_type: SocketType) -> io::Result<OwnedFd> {
    let socket = new_unix_socket(socket_type)?;
    let (address, length) = unix_address(path)?;
    // SAFETY: `address` is a valid sockaddr_un of `length` bytes.
    check(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_un).cast(),
            length,
        )
    })?;
    Ok(socket)
}

pub fn listen(socket: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    check(unsafe { libc::listen(socket.as_raw_fd(), backlog) })?;
    Ok(())
}

/// An unbound, non-blocking Unix datagram socket, for sending to a named one (sd_notify).
pub fn unix_datagram() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the new fd is owned at once.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One non-blocking datagram to `address` that never raises SIGPIPE.
pub fn send_to(
    socket: BorrowedFd<'_>,
    data: &[u8],
    address: &(libc::sockaddr_un, libc::socklen_t),
) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of its length; `address.0` is a valid sockaddr_un of
    // `address.1` bytes.
    check_size(unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            (&address.0 as *const libc::sockaddr_un).cast(),
            address.1,
        )
    })
}

/// How a non-blocking connect began.
#[derive(Debug)]
pub enum Connecting {
    Connected(OwnedFd),
    /// `EINPROGRESS`: wait for it with `wait_connected`.
    InProgress(OwnedFd),
}

/// Starts a non-blocking connect to a Unix socket. A listener with a full backlog answers
/// `EAGAIN` at once instead of making us wait for room.
pub fn unix_connect_nonblocking(path: &Path, socket_type: SocketType) -> io::Result<Connecting> {
    let socket = new_unix_socket(socket_type)?;
    let (address, length) = unix_address(path)?;
    // SAFETY: `address` is a valid sockaddr_un of `length` bytes.
    let result = check(unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_un).cast(),
            length,
        )
    });
    match result {
        Ok(_) => Ok(Connecting::Connected(socket)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Connecting::InProgress(socket)),
        Err(e) => Err(e),
    }
}

/// Waits up to `limit` for a connect in progress: `Ok(true)` connected, `Ok(false)` no answer
/// yet, `Err` the connect's error.
pub fn wait_connected(socket: BorrowedFd<'_>, limit: Duration) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = limit.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `entry` is one valid pollfd for the duration of the call.
    let ready = check(unsafe { libc::poll(&mut entry, 1, millis) })?;
    if ready == 0 {
        return Ok(false);
    }
    match get_int_option(socket, libc::SOL_SOCKET, libc::SO_ERROR)? {
        0 => Ok(true),
        error => Err(io::Error::from_raw_os_error(error)),
    }
}

/// Connects to a Unix socket, blocking. Used to probe for a live daemon and by the `handoff` tool.
pub fn unix_connect(path: &Path, socket_type: SocketType) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the new fd is owned at once.
    let fd =
        check(unsafe { libc::socket(libc::AF_UNIX, kind(socket_type) | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just created and is owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let (address, length) = unix_address(path)?;
    // SAFETY: `address` is a valid sockaddr_un of `length` bytes.
    check(unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_un).cast(),
            length,
        )
    })?;
    Ok(socket)
}

/// Accepts one connection, non-blocking and close-on-exec.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers are allowed; the new fd is owned at once.
    let fd = check(unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just returned by accept4 and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn get_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut length = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `length` are valid for writes of the sizes given.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut length,
        )
    })?;
    Ok(value)
}

pub(super) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `SO_TYPE`: fails for anything that is not a socket (a pipe, a file).
pub fn socket_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    get_int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE)
}

/// `SO_DOMAIN`: `AF_UNIX`, `AF_INET`, `AF_INET6`…
pub fn socket_domain(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    get_int_option(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)
}

/// `SO_ACCEPTCONN`: whether `listen` was called on the socket.
pub fn is_listening(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(get_int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0)
}

/// The path a Unix socket is bound to: `None` when unnamed; an abstract name starts with `@`.
pub fn unix_local_name(fd: BorrowedFd<'_>) -> io::Result<Option<std::ffi::OsString>> {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut address: libc::sockaddr_un = unsafe { mem::zeroed() };
    let mut length = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `address` is valid for writes of `length` bytes, which the kernel updates.
    check(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut address as *mut libc::sockaddr_un).cast(),
            &mut length,
        )
    })?;
    if address.sun_family != libc::AF_UNIX as libc::sa_family_t {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a Unix socket",
        ));
    }
    let used = (length as usize)
        .saturating_sub(mem::size_of::<libc::sa_family_t>())
        .min(address.sun_path.len());
    let bytes: Vec<u8> = address.sun_path[..used].iter().map(|c| *c as u8).collect();
    Ok(match bytes.split_first() {
        None => None,
        Some((0, name)) => {
            let mut text = b"@".to_vec();
            text.extend_from_slice(name);
            Some(std::ffi::OsString::from_vec(text))
        }
        Some(_) => {
            let end = memchr::memchr(0, &bytes).unwrap_or(bytes.len());
            Some(std::ffi::OsString::from_vec(bytes[..end].to_vec()))
        }
    })
}

/// Sets close-on-exec, so that the fd never leaks into a program we start.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a valid fd.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    if flags & libc::FD_CLOEXEC == 0 {
        // SAFETY: as above.
        check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    }
    Ok(())
}

/// Makes sure the fd is non-blocking (Apache's flags travel with it, but a test tool's may not).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a valid fd.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    }
    Ok(())
}

/// TCP keepalive so that dead peers are noticed during long streams. Fails on non-TCP sockets,
/// which callers treat as harmless.
pub fn enable_keepalive(fd: BorrowedFd<'_>, idle: Duration) -> io::Result<()> {
    let seconds = idle.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, seconds)?;
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, seconds)
}

/// Shrinks the kernel send buffer; tests use it to make writes block early.
pub fn set_send_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int_option(
        fd,
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        bytes.min(i32::MAX as usize) as libc::c_int,
    )
}

/// One non-blocking send that never raises SIGPIPE.
pub fn send(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of its length.
    check_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    })
}

/// One non-blocking receive.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    check_size(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    })
}

/// A connected pair of Unix sockets (tests and the load generator hand one end to the daemon).
pub fn unix_pair(socket_type: SocketType) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind(socket_type) | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both fds were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
