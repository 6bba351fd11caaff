//! A program a local event source asks the reactor to run for it, and what came of it.
//!
//! The source stays sans-I/O: it returns [`super::Next::Run`] with a [`Command`]; the reactor
//! spawns the program without a shell, reads its stdout through the event loop, enforces the
//! timeout, kills and reaps it, and hands a [`CommandResult`] to
//! [`super::EventSource::on_command`] before asking the source for events again.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// From the spawn to the exit; past it the program is killed and its output is lost.
    pub timeout: Duration,
    /// Stdout bytes kept. The rest is read and dropped, so the program never blocks on a full
    /// pipe and a chatty one costs no memory.
    pub max_output: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    /// The program closed its stdout and exited by itself within the timeout.
    Exited {
        /// Exit status 0.
        success: bool,
        /// At most `max_output` bytes.
        stdout: Vec<u8>,
        /// More was written than `max_output`.
        truncated: bool,
    },
    /// It could not be started, or it was killed when its time was up; the text says which,
    /// for the log.
    Failed(String),
}
