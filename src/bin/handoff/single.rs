//! One handoff, printed as it streams.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use streaming_daemon::config::SocketType;
use streaming_daemon::sys::{fdpass, socket};

use crate::args::Options;

/// Hands one connection to the daemon and copies its response to stdout. Returns whether the
/// stream ended with the completion marker.
pub fn run(options: &Options) -> io::Result<bool> {
    let (mut client, handed): (Box<dyn Read>, OwnedFd) = if options.socketpair {
        let (ours, theirs) = socket::unix_pair(SocketType::Stream)?;
        let ours = UnixStream::from(ours);
        ours.set_read_timeout(Some(options.timeout))?;
        (Box::new(ours), theirs)
    } else {
        let (ours, theirs) = tcp_pair()?;
        ours.set_read_timeout(Some(options.timeout))?;
        (Box::new(ours), OwnedFd::from(theirs))
    };
    send_handoff(options, &handed)?;
    // The daemon holds its own copy now; ours must go so that its close ends the stream.
    drop(handed);

    let started = Instant::now();
    let mut stdout = io::stdout().lock();
    let mut tail = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                stdout.write_all(&buf[..n])?;
                stdout.flush()?;
                tail.extend_from_slice(&buf[..n]);
                let keep = tail.len().saturating_sub(64);
                tail.drain(..keep);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no end of stream within {:?}", options.timeout),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
        if started.elapsed() > options.timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "stream exceeded -timeout",
            ));
        }
    }
    Ok(tail.ends_with(streaming_daemon::sse::DONE))
}

/// Sends the handoff as Apache's module does: connect, the data with the fd attached, the rest
/// of a long payload with plain sends, then close.
pub fn send_handoff(options: &Options, handed: &OwnedFd) -> io::Result<()> {
    let apache = connect(options)?;
    hand_off(apache, handoff_data(options), handed)
}

/// Connects to the daemon's socket, blocking, with the socket type `-seqpacket` asks for.
pub fn connect(options: &Options) -> io::Result<OwnedFd> {
    let socket_type = if options.seqpacket {
        SocketType::SeqPacket
    } else {
        SocketType::Stream
    };
    socket::unix_connect(&options.socket, socket_type).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot connect to {}: {e}", options.socket.display()),
        )
    })
}

/// What goes over the wire: no data at all is sent as a single NUL byte, as Apache does.
pub fn handoff_data(options: &Options) -> &[u8] {
    if options.data.is_empty() {
        b"\0"
    } else {
        options.data.as_bytes()
    }
}

/// Sends `data` with `handed` attached on a connected `apache` socket, then closes it.
pub fn hand_off(apache: OwnedFd, data: &[u8], handed: &OwnedFd) -> io::Result<()> {
    let sent = fdpass::send_with_fd(&apache, data, handed.as_raw_fd())?;
    let mut apache = UnixStream::from(apache);
    apache.write_all(&data[sent..])
}

fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let ours = TcpStream::connect(listener.local_addr()?)?;
    let (theirs, _) = listener.accept()?;
    Ok((ours, theirs))
}
