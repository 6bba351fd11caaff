//! A program run for a local event source ([`Command`]): spawned without a shell, its stdout
//! read through the reactor, bounded in time and in bytes, and always reaped.
//!
//! | phase   | event                                   | next                                      |
//! |---------|-----------------------------------------|-------------------------------------------|
//! | Reading | stdout readable: bytes                  | Reading (kept up to `max_output`)         |
//! | Reading | stdout at EOF, exit status there        | done: `Exited`                            |
//! | Reading | stdout at EOF, not exited yet           | Exiting (status checked every 2 ms)       |
//! | Exiting | exit status there                       | done: `Exited`                            |
//! | any     | the timeout                             | killed, done: `Failed`; reaped now or by the [`Reaper`] |
//! | any     | the connection ends first               | killed, handed to the [`Reaper`]           |
//!
//! The program runs in a process group of its own, and killing means SIGKILL to the whole
//! group, so that what a script started (a `sleep`) goes with it. A killed process is not gone
//! until it is waited for: what `try_wait` does not collect at once, the reactor's [`Reaper`]
//! collects on its next turns, so that no zombie is left behind and the loop never blocks in
//! `wait`.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{self, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::backends::{Command, CommandResult};
use crate::sys::{process::kill_group, socket};

/// How often a program that closed its stdout is checked for its exit status.
const EXIT_POLL: Duration = Duration::from_millis(2);
/// How often killed programs not yet collected are waited for again.
const REAP_POLL: Duration = Duration::from_millis(10);
/// Reads per event before other connections get their turn.
const READS_PER_TURN: usize = 16;
const READ_CHUNK: usize = 4096;

/// Where a running program stands after an event or a timer.
pub enum Progress {
    Running,
    Done(CommandResult),
}

pub struct Child {
    /// The program's path, for log lines.
    pub name: String,
    /// `None` once reaped or handed to the reaper.
    process: Option<process::Child>,
    /// `None` after EOF.
    stdout: Option<ChildStdout>,
    output: Vec<u8>,
    max_output: usize,
    truncated: bool,
    kill_at: Instant,
    /// Stdout is closed: look for the exit status at this time.
    check_exit_at: Option<Instant>,
    /// One turn did not drain stdout: come back at this time (the turn's) without waiting for
    /// an event.
    more_at: Option<Instant>,
}

impl Child {
    /// Starts `command` with stdout piped (stdin and stderr to /dev/null) and registers the
    /// pipe with `token`. This waits only for the exec itself (std learns of an exec failure
    /// through a pipe), never for the program.
    pub fn spawn(
        command: &Command,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> io::Result<Child> {
        let mut process = process::Command::new(&command.program)
            .args(&command.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let child = Child {
            name: command.program.display().to_string(),
            stdout: process.stdout.take(),
            process: Some(process),
            output: Vec::new(),
            max_output: command.max_output,
            truncated: false,
            kill_at: now + command.timeout,
            check_exit_at: None,
            more_at: None,
        };
        // On failure `child` is dropped, which kills the program.
        let Some(stdout) = &child.stdout else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        socket::set_nonblocking(std::os::fd::AsFd::as_fd(stdout))?;
        registry.register(
            &mut SourceFd(&stdout.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(child)
    }

    /// When this program needs attention without an event.
    pub fn deadline(&self) -> Instant {
        [self.check_exit_at, self.more_at]
            .into_iter()
            .flatten()
            .fold(self.kill_at, Instant::min)
    }

    /// Bytes held for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.output.capacity()
    }

    /// Stdout is readable (or closed): read what is there.
    pub fn on_readable(&mut self, registry: &Registry, now: Instant) -> Progress {
        self.more_at = None;
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_TURN {
            let Some(stdout) = self.stdout.as_mut() else {
                return self.check_exit(now);
            };
            match stdout.read(&mut buf) {
                Ok(0) => {
                    self.close_stdout(registry);
                    return self.check_exit(now);
                }
                Ok(n) => self.keep(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Running,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A pipe read fails only if something is badly wrong: treat it as the end.
                Err(_) => {
                    self.close_stdout(registry);
                    return self.check_exit(now);
                }
            }
        }
        self.more_at = Some(now);
        Progress::Running
    }

    /// The deadline passed: kill on timeout, or look for the exit status, or read on.
    pub fn on_timer(&mut self, registry: &Registry, now: Instant, reaper: &mut Reaper) -> Progress {
        if now >= self.kill_at {
            self.close_stdout(registry);
            if let Some(process) = self.process.take() {
                reaper.adopt(process);
            }
            return Progress::Done(CommandResult::Failed(
                "did not finish in time and was killed".to_string(),
            ));
        }
        if self.more_at.is_some() {
            return self.on_readable(registry, now);
        }
        if self.check_exit_at.is_some_and(|at| now >= at) {
            return self.check_exit(now);
        }
        Progress::Running
    }

    /// Ends the program early (its connection is closing): killed and left to the reaper.
    pub fn abandon(mut self, registry: &Registry, reaper: &mut Reaper) {
        self.close_stdout(registry);
        if let Some(process) = self.process.take() {
            reaper.adopt(process);
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max_output.saturating_sub(self.output.len());
        let kept = bytes.len().min(room);
        self.output.extend_from_slice(&bytes[..kept]);
        self.truncated |= kept < bytes.len();
    }

    fn close_stdout(&mut self, registry: &Registry) {
        if let Some(stdout) = self.stdout.take() {
            // Closing the fd would drop the registration too; deregistering says so plainly.
            let _ = registry.deregister(&mut SourceFd(&stdout.as_raw_fd()));
        }
    }

    /// After EOF: done if the program has exited, otherwise look again shortly.
    fn check_exit(&mut self, now: Instant) -> Progress {
        let Some(process) = self.process.as_mut() else {
            return Progress::Done(CommandResult::Failed("was not running".to_string()));
        };
        match process.try_wait() {
            Ok(Some(status)) => {
                self.process = None;
                self.check_exit_at = None;
                if let Some(signal) = status.signal() {
                    return Progress::Done(CommandResult::Failed(format!(
                        "was killed by signal {signal}"
                    )));
                }
                Progress::Done(CommandResult::Exited {
                    success: status.success(),
                    stdout: std::mem::take(&mut self.output),
                    truncated: self.truncated,
                })
            }
            Ok(None) => {
                self.check_exit_at = Some(now + EXIT_POLL);
                Progress::Running
            }
            Err(e) => {
                self.process = None;
                Progress::Done(CommandResult::Failed(format!(
                    "exit status unavailable: {e}"
                )))
            }
        }
    }
}

impl Drop for Child {
    /// A safety net for paths that did not hand the program to the reaper: never leave it
    /// running. (It may stay a zombie until the daemon exits; the normal paths reap it.)
    fn drop(&mut self) {
        if let Some(process) = &self.process {
            let _ = kill_group(process.id());
        }
    }
}

/// Killed programs waiting to be collected, owned by the reactor.
#[derive(Default)]
pub struct Reaper {
    killed: Vec<process::Child>,
}

impl Reaper {
    /// Kills `process` (with its group) and collects it now if it is already gone, later if not.
    pub fn adopt(&mut self, mut process: process::Child) {
        let _ = kill_group(process.id());
        if !matches!(process.try_wait(), Ok(Some(_)) | Err(_)) {
            self.killed.push(process);
        }
    }

    /// Collects every killed program that has died since.
    pub fn reap(&mut self) {
        self.killed
            .retain_mut(|process| matches!(process.try_wait(), Ok(None)));
    }

    /// When to call [`Reaper::reap`] again, if anything is left to collect.
    pub fn next_check(&self, now: Instant) -> Option<Instant> {
        (!self.killed.is_empty()).then(|| now + REAP_POLL)
    }
}
