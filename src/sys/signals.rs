//! Signals delivered into the event loop through a `signalfd`.
//!
//! The signals are blocked for the process and read from a descriptor the reactor polls, so no
//! handler runs at an arbitrary point and no global state is needed. Block them before any
//! thread is spawned: threads inherit the mask. Children get a clean mask from `std::process`.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, check_size};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain and exit.
    Terminate,
    /// SIGHUP: reload the configuration.
    Hangup,
    /// SIGUSR2: start an upgraded process and hand it the listeners.
    Upgrade,
    /// A signal whose default action would end the daemon at once, without a drain
    /// (SIGUSR1, SIGALRM, SIGIO, SIGPWR, SIGPROF, SIGVTALRM, SIGXCPU): the Go daemon ignores
    /// them, and so do we, with a line in the log.
    Ignored(libc::c_int),
}

/// Every signal read from the descriptor instead of taking its default action.
const HANDLED: [libc::c_int; 11] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR2,
    libc::SIGUSR1,
    libc::SIGALRM,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGPROF,
    libc::SIGVTALRM,
    libc::SIGXCPU,
];

pub struct SignalFd {
    fd: OwnedFd,
}

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a sigset we own.
    unsafe {
        let mut set: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in HANDLED {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks the handled signals in the calling thread, so that none of them is delivered to it
/// (with its default action) instead of to the descriptor. Threads started after `SignalFd::new`
/// inherit the mask; one started before must call this itself.
pub fn block_in_this_thread() -> io::Result<()> {
    let set = handled_set();
    // SAFETY: `set` is initialised; the old mask is not needed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result != 0 {
        return Err(io::Error::from_raw_os_error(result));
    }
    Ok(())
}

/// The signal's name, for log lines.
pub fn name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGALRM => "SIGALRM",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGPROF => "SIGPROF",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGXCPU => "SIGXCPU",
        _ => "signal",
    }
}

impl SignalFd {
    /// Blocks the handled signals for the calling thread and opens a descriptor that becomes
    /// readable when one is pending.
    pub fn new() -> io::Result<SignalFd> {
        block_in_this_thread()?;
        let set = handled_set();
        // SAFETY: `set` is initialised; the new fd is owned at once.
        let fd =
            check(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        // SAFETY: `fd` was just created and is owned by nothing else.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next pending signal, or `None` once there are no more.
    pub fn next(&self) -> io::Result<Option<Signal>> {
        loop {
            // SAFETY: all-zero is a valid signalfd_siginfo.
            let mut info: libc::signalfd_siginfo = unsafe { mem::zeroed() };
            let size = mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is valid for writes of `size` bytes.
            let result = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            match check_size(result) {
                Ok(n) if n == size => match info.ssi_signo as libc::c_int {
                    libc::SIGTERM | libc::SIGINT => return Ok(Some(Signal::Terminate)),
                    libc::SIGHUP => return Ok(Some(Signal::Hangup)),
                    libc::SIGUSR2 => return Ok(Some(Signal::Upgrade)),
                    other => return Ok(Some(Signal::Ignored(other))),
                },
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
