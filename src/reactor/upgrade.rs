//! SIGUSR2: a zero-downtime upgrade, as nginx and HAProxy do it (SPEC §6.3).
//!
//! | state     | event                                         | next                                      |
//! |-----------|-----------------------------------------------|-------------------------------------------|
//! | Serving   | SIGUSR2                                       | Starting: the executable started with our listeners as fds 3, 4… and a pipe |
//! | Serving   | SIGUSR2, draining or no listener              | Serving (a warning)                       |
//! | Starting  | the pipe says `READY=1`                       | handed over: stop accepting without unlinking, drain, exit |
//! | Starting  | the pipe closes without it, or 30 s pass      | Serving: the new process killed and reaped, an error logged |
//! | Starting  | SIGUSR2                                       | Starting (a warning)                      |
//!
//! The new process binds nothing: it takes the very listeners, so handoffs queued meanwhile
//! wait in the one backlog for whichever process accepts next, and none is refused or lost.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::Interest;

use crate::deadline;
use crate::sys::spawn::{self, Child};

use super::{token, Lifecycle, Reactor};

/// How long the new process has to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Enough for `READY=1\n`; anything longer is not what we wait for.
const MESSAGE_LIMIT: usize = 64;
/// How often a killed new process not yet collected is waited for again.
const REAP_POLL: Duration = Duration::from_millis(10);

/// What the new process is started as: the path we were started from (made absolute at
/// start-up, so a binary replaced on disk is the new version) and our arguments.
pub struct UpgradeSource {
    pub executable: PathBuf,
    pub args: Vec<OsString>,
}

#[derive(Default)]
pub(super) struct Upgrading {
    source: Option<UpgradeSource>,
    running: Option<Successor>,
    /// New processes killed after a failed upgrade, until reaped.
    failed: Vec<Child>,
    /// When to wait for them again: a SIGKILL is not instant, and nothing else may wake the
    /// loop (without systemd there is no housekeeping on the clock), which would leave a zombie.
    reap_at: Option<Instant>,
}

struct Successor {
    child: Child,
    pipe: std::fs::File,
    said: Vec<u8>,
    until: Instant,
}

impl Upgrading {
    pub(super) fn new(source: Option<UpgradeSource>) -> Upgrading {
        Upgrading {
            source,
            running: None,
            failed: Vec::new(),
            reap_at: None,
        }
    }

    /// When the upgrade needs attention without an event: the new process's time limit, or
    /// collecting a killed one.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let until = self.running.as_ref().map(|successor| successor.until);
        until.into_iter().chain(self.reap_at).min()
    }
}

impl Reactor {
    /// SIGUSR2: starts the successor (step tests call it directly, as they call
    /// [`Reactor::begin_drain`]).
    pub fn begin_upgrade(&mut self, now: Instant) {
        if self.upgrading.running.is_some() {
            log::warn!("SIGUSR2 ignored: an upgrade is already under way");
            return;
        }
        if !matches!(self.lifecycle, Lifecycle::Serving) {
            log::warn!("SIGUSR2 ignored: the daemon is draining");
            return;
        }
        let (Some(source), Some(listener)) = (&self.upgrading.source, &self.listener) else {
            log::warn!("SIGUSR2 ignored: this process cannot start its successor");
            return;
        };
        let (ready_read, ready_write) = match spawn::upgrade_pipe() {
            Ok(pipe) => pipe,
            Err(e) => return log::error!(error:% = e; "upgrade failed: no pipe; still serving"),
        };
        let mut fds = vec![("handoff", listener.fd())];
        if let Some(metrics) = &self.metrics_listener {
            fds.push(("metrics", metrics.as_fd()));
        }
        fds.push(("upgrade", ready_write.as_fd()));
        let mut env = Vec::new();
        if listener.owns_path() {
            env.push((
                OsString::from("STREAMING_DAEMON_SOCKET_OWNER"),
                OsString::from("1"),
            ));
        }
        let child = match spawn::spawn(&source.executable, &source.args, &env, &fds) {
            Ok(child) => child,
            Err(e) => return log::error!(error:% = e; "upgrade failed; still serving"),
        };
        // Only the new process holds the write end now: its end of file means it is gone.
        drop(ready_write);
        let pipe = std::fs::File::from(ready_read);
        let registered = self.poll.registry().register(
            &mut SourceFd(&pipe.as_raw_fd()),
            token::UPGRADE,
            Interest::READABLE,
        );
        log::info!(
            pid = child.id(),
            executable:% = source.executable.display();
            "upgrade: new process started; waiting for it to be ready"
        );
        self.upgrading.running = Some(Successor {
            child,
            pipe,
            said: Vec::new(),
            until: deadline::after(now, READY_WITHIN),
        });
        if let Err(e) = registered {
            self.upgrade_failed(now, &format!("cannot watch its pipe: {e}"));
        }
    }

    /// The new process wrote to its pipe, or closed it.
    pub(super) fn on_upgrade_pipe(&mut self, now: Instant) {
        let Some(successor) = &mut self.upgrading.running else {
            return;
        };
        let mut buf = [0u8; MESSAGE_LIMIT];
        let closed = loop {
            match successor.pipe.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    let room = MESSAGE_LIMIT.saturating_sub(successor.said.len());
                    successor.said.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if successor.said.windows(8).any(|w| w == b"READY=1\n") {
            self.hand_over(now);
        } else if closed {
            self.upgrade_failed(now, "it ended or closed its pipe without saying READY=1");
        }
    }

    /// The new process is ready: it accepts from the same listeners from now on. Ours stop
    /// accepting without unlinking, the streams finish, and the process exits; systemd hears
    /// only from the new one.
    fn hand_over(&mut self, now: Instant) {
        let Some(successor) = self.upgrading.running.take() else {
            return;
        };
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&successor.pipe.as_raw_fd()));
        log::info!(
            pid = successor.child.id(),
            connections = self.tally.shared().connections();
            "upgrade: the new process is ready; handing over and draining"
        );
        if let Some(listener) = &mut self.listener {
            listener.release_path();
        }
        if let Some(mut metrics) = self.metrics_listener.take() {
            let _ = self.poll.registry().deregister(&mut metrics);
        }
        self.notifier = crate::sys::notify::Notifier::disabled();
        self.begin_drain(now);
    }

    fn upgrade_failed(&mut self, now: Instant, why: &str) {
        let Some(mut successor) = self.upgrading.running.take() else {
            return;
        };
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&successor.pipe.as_raw_fd()));
        log::error!(pid = successor.child.id(), error = why; "upgrade failed; still serving");
        let _ = successor.child.kill();
        self.upgrading.failed.push(successor.child);
        self.reap_failed_upgrades(now);
    }

    /// The new process's time is up, and killed ones are collected.
    pub(super) fn check_upgrade(&mut self, now: Instant) {
        if self
            .upgrading
            .running
            .as_ref()
            .is_some_and(|successor| now >= successor.until)
        {
            self.upgrade_failed(now, "it was not ready within 30 s");
        }
        self.reap_failed_upgrades(now);
    }

    fn reap_failed_upgrades(&mut self, now: Instant) {
        let upgrading = &mut self.upgrading;
        upgrading
            .failed
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        upgrading.reap_at = (!upgrading.failed.is_empty()).then(|| deadline::after(now, REAP_POLL));
    }
}
