//! Logging to stderr in Go slog's shapes (SPEC §8), without ever blocking the event loop.
//!
//! A log call formats its line on the calling thread (`line`: slog's TextHandler or
//! JSONHandler with `AddSource`, secrets masked, every value quoted so that nothing can forge a
//! line) and copies it into one bounded queue (`queue`, 1 MiB); one writer thread empties the
//! queue to stderr with blocking writes. A full queue drops lines and counts them
//! (`lines_dropped`); a closed stderr loses lines silently. Nothing here panics on the OS.
//!
//! Log with key fields, which follow `msg` in the order given:
//! `log::info!(conn = 7, outcome = "completed"; "connection ended")`.
//!
//! Logging is process-wide by nature (the `log` facade holds one logger), so its state is one
//! static; level, format and secrets can change at run time (`reconfigure`, `set_secrets`).

mod clock;
mod line;
mod mask;
mod printable;
mod queue;
mod quote;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use log::kv::Value;
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::{LogFormat, LoggingConfig};
use crate::sys::signals;

pub use mask::{MASK, MIN_ANYWHERE as MIN_SECRET_BYTES};

/// Bytes of formatted lines waiting for stderr, at most, shared by every thread.
pub const QUEUE_BYTES: usize = 1 << 20;

/// How long `Log::flush` waits, as `flush` at exit does.
const FLUSH_LIMIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum LoggingError {
    /// Logging was set up twice in one process.
    AlreadyInitialized,
    /// The thread that writes to stderr could not be started.
    WriterThread(io::Error),
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::AlreadyInitialized => {
                f.write_str("logging was already set up in this process")
            }
            LoggingError::WriterThread(e) => write!(
                f,
                "cannot start the log writer thread: {e}; check the process and memory limits"
            ),
        }
    }
}

impl std::error::Error for LoggingError {}

static LOGGER: Logger = Logger {
    started: AtomicBool::new(false),
    json: AtomicBool::new(false),
    secrets: RwLock::new(mask::Secrets::none()),
    queue: queue::Queue::new(QUEUE_BYTES),
};

struct Logger {
    /// Set by the first `init`.
    started: AtomicBool,
    /// The format of later lines: JSON when set, text otherwise.
    json: AtomicBool,
    secrets: RwLock<mask::Secrets>,
    queue: queue::Queue,
}

/// Starts the writer thread and installs the logger with `config`'s level and format.
pub fn init(config: &LoggingConfig) -> Result<(), LoggingError> {
    if LOGGER.started.swap(true, Ordering::SeqCst) {
        return Err(LoggingError::AlreadyInitialized);
    }
    LOGGER.set_format(config.format);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(write_to_stderr)
        .map_err(LoggingError::WriterThread)?;
    log::set_logger(&LOGGER).map_err(|_| LoggingError::AlreadyInitialized)?;
    set_level(config.level);
    Ok(())
}

/// Changes the level of every later record.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

/// Changes the level and format of every later line (a reload).
pub fn reconfigure(level: LevelFilter, format: LogFormat) {
    LOGGER.set_format(format);
    set_level(level);
}

/// Replaces the secrets masked in every later line (the API keys in use; again on a reload).
/// A secret of `MIN_SECRET_BYTES` or more is masked wherever it occurs, a shorter one only
/// where a whole message or value equals it (see `mask`); a warning says when there is one.
pub fn set_secrets(secrets: Vec<String>) {
    let secrets = mask::Secrets::new(secrets);
    let short = secrets.short_count();
    *LOGGER
        .secrets
        .write()
        .unwrap_or_else(PoisonError::into_inner) = secrets;
    if short > 0 {
        log::warn!(
            count = short,
            min_bytes = MIN_SECRET_BYTES;
            "short secrets are masked in logs only where a whole value equals them"
        );
    }
}

/// Waits at most `limit` until every queued line has been written to stderr (at exit);
/// returns whether it was.
pub fn flush(limit: Duration) -> bool {
    LOGGER.queue.flush(limit)
}

/// Lines dropped because the queue was full, since start: `daemon_log_lines_dropped_total`.
pub fn lines_dropped() -> u64 {
    LOGGER.queue.dropped()
}

/// `record` as the logger would queue it now: one line in `format`, secrets masked.
pub fn format_line(record: &Record<'_>, format: LogFormat, now: SystemTime) -> Vec<u8> {
    let secrets = LOGGER
        .secrets
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    line::format_record(record, format, now, &secrets)
}

impl Logger {
    fn set_format(&self, format: LogFormat) {
        self.json
            .store(matches!(format, LogFormat::Json), Ordering::Relaxed);
    }

    fn format(&self) -> LogFormat {
        if self.json.load(Ordering::Relaxed) {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let format = self.format();
        let line = format_line(record, format, SystemTime::now());
        self.queue
            .push(&line, |count| dropped_notice(format, count));
    }

    fn flush(&self) {
        self.queue.flush(FLUSH_LIMIT);
    }
}

/// `level=WARN msg="log lines dropped" count=<n>`, with a time and source like any line.
fn dropped_notice(format: LogFormat, count: u64) -> Vec<u8> {
    let fields = [("count", Value::from(count))];
    let record = Record::builder()
        .args(format_args!("log lines dropped"))
        .level(Level::Warn)
        .target(module_path!())
        .module_path(Some(module_path!()))
        .file(Some(file!()))
        .line(Some(line!()))
        .key_values(&fields)
        .build();
    line::format_record(&record, format, SystemTime::now(), &mask::Secrets::none())
}

/// The writer thread: empties the queue to stderr, forever.
fn write_to_stderr() {
    // Threads inherit the signal mask of their creator, and this one starts before the daemon
    // blocks the signals it reads from a signalfd. Blocking them here too keeps the kernel
    // from delivering a SIGTERM or SIGHUP to this thread, where its default action would end
    // the process with no drain.
    let _ = signals::block_in_this_thread();
    let mut batch = Vec::new();
    // Not `stderr().lock()`: that would hold stderr while waiting for lines, and a panic
    // message or an `eprintln!` elsewhere would then wait forever. `Stderr` locks for each
    // `write_all`.
    let mut stderr = io::stderr();
    loop {
        // A failed write (stderr closed) loses its batch; there is nowhere to report it.
        let _ = LOGGER.queue.write_batch(&mut stderr, &mut batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dropped_notice_is_a_warning_with_its_count() {
        let text = String::from_utf8(dropped_notice(LogFormat::Text, 42)).unwrap();
        assert!(text.starts_with("time="), "{text}");
        assert!(
            text.contains(" level=WARN source=src/logging/mod.rs:"),
            "{text}"
        );
        assert!(
            text.ends_with(" msg=\"log lines dropped\" count=42\n"),
            "{text}"
        );
        let json = String::from_utf8(dropped_notice(LogFormat::Json, 7)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["level"], "WARN");
        assert_eq!(parsed["msg"], "log lines dropped");
        assert_eq!(parsed["count"], 7);
        assert_eq!(parsed["source"]["function"], "streaming_daemon::logging");
    }
}
