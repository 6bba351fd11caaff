//! Logging to stderr: `text` (the line simple_logger writes: time, level, target, message) or
//! `json`, one object per line. Key fields given to a log call (`conn = 7, outcome = "…"`)
//! follow the message as `key=value` in text and are members of the object in JSON.
//!
//! Written here rather than through simple_logger: it prints with `eprintln!`, which panics when
//! stderr is a closed pipe, and a panic in every log call would take the daemon down with its
//! log reader. A failed log write is dropped instead.
//!
//! The level lives in one place, `log::max_level`, so `set_level` can change it at run time.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};

use crate::config::{LogFormat, LoggingConfig};

#[derive(Debug)]
pub enum LoggingError {
    /// Logging was set up twice in one process.
    AlreadyInitialized,
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::AlreadyInitialized => {
                f.write_str("logging was already set up in this process")
            }
        }
    }
}

impl std::error::Error for LoggingError {}

pub fn init(config: &LoggingConfig) -> Result<(), LoggingError> {
    log::set_boxed_logger(Box::new(StderrLogger {
        format: config.format,
    }))
    .map_err(|_| LoggingError::AlreadyInitialized)?;
    set_level(config.level);
    Ok(())
}

/// Changes the level of every later record.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

struct StderrLogger {
    format: LogFormat,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now();
        let line = match self.format {
            LogFormat::Text => text_line(record, now),
            LogFormat::Json => json_line(record, now),
        };
        // One write_all of the whole line on unbuffered stderr: lines from different threads
        // never interleave (writes up to PIPE_BUF are atomic on pipes). Errors are dropped.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// `2026-02-03T04:05:06.789Z INFO  [streaming_daemon::conn] message key=value`
fn text_line(record: &Record<'_>, now: SystemTime) -> String {
    let mut line = format!(
        "{} {:<5} [{}] {}",
        rfc3339_utc(now),
        record.level(),
        record.target(),
        record.args()
    );
    let _ = record.key_values().visit(&mut TextFields(&mut line));
    line.push('\n');
    line
}

fn json_line(record: &Record<'_>, now: SystemTime) -> String {
    let mut line = format!(
        "{{\"time\":\"{}\",\"level\":\"{}\",\"message\":{},\"target\":{}",
        rfc3339_utc(now),
        record.level(),
        json_string(&record.args().to_string()),
        json_string(record.target()),
    );
    if let Some(file) = record.file() {
        let source = match record.line() {
            Some(number) => format!("{file}:{number}"),
            None => file.to_string(),
        };
        line.push_str(&format!(",\"source\":{}", json_string(&source)));
    }
    let _ = record.key_values().visit(&mut JsonFields(&mut line));
    line.push_str("}\n");
    line
}

fn json_string(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    crate::sse::push_json_string(&mut out, text);
    String::from_utf8_lossy(&out).into_owned()
}

/// ` key=value` for each field; values with spaces or quotes are quoted; empty ones left out.
struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let value = value.to_string();
        if value.is_empty() {
            return Ok(());
        }
        let plain = !value.contains([' ', '"', '\\', '=']);
        let shown = if plain { value } else { json_string(&value) };
        self.0.push_str(&format!(" {key}={shown}"));
        Ok(())
    }
}

/// `,"key":value` for each field: numbers as numbers, everything else as strings.
struct JsonFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let shown = match (value.to_u64(), value.to_i64(), value.to_f64()) {
            (Some(n), _, _) => n.to_string(),
            (None, Some(n), _) => n.to_string(),
            (None, None, Some(n)) if n.is_finite() => n.to_string(),
            _ => json_string(&value.to_string()),
        };
        self.0
            .push_str(&format!(",{}:{shown}", json_string(key.as_str())));
        Ok(())
    }
}

/// `2026-02-03T04:05:06.789Z`, computed here to avoid a date crate for one format.
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let in_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`,
/// restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_516), (2026, 3, 4));
        let time = UNIX_EPOCH + Duration::from_millis(1_772_598_896_789);
        assert_eq!(rfc3339_utc(time), "2026-03-04T04:34:56.789Z");
    }

    #[test]
    fn one_json_object_per_line() {
        let time = UNIX_EPOCH + Duration::from_secs(86_400);
        let line = json_line(
            &Record::builder()
                .args(format_args!("quote \" and\nnewline"))
                .level(log::Level::Warn)
                .target("streaming_daemon::x")
                .file(Some("src/x.rs"))
                .line(Some(42))
                .build(),
            time,
        );
        assert_eq!(
            line,
            "{\"time\":\"1970-01-02T00:00:00.000Z\",\"level\":\"WARN\",\"message\":\"quote \\\" and\\nnewline\",\
             \"target\":\"streaming_daemon::x\",\"source\":\"src/x.rs:42\"}\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(parsed["message"], "quote \" and\nnewline");
    }

    #[test]
    fn key_fields_follow_the_message() {
        let fields: &[(&str, Value<'_>)] = &[
            ("conn", Value::from(7u64)),
            ("outcome", Value::from("completed")),
            ("error", Value::from("")),
            ("detail", Value::from("two words")),
        ];
        let record = Record::builder()
            .args(format_args!("connection ended"))
            .level(log::Level::Info)
            .target("t")
            .key_values(&fields)
            .build();
        let time = UNIX_EPOCH;
        assert_eq!(
            text_line(&record, time),
            "1970-01-01T00:00:00.000Z INFO  [t] connection ended conn=7 outcome=completed detail=\"two words\"\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json_line(&record, time)).unwrap();
        assert_eq!(parsed["conn"], 7);
        assert_eq!(parsed["outcome"], "completed");
        assert_eq!(parsed["error"], "");
        assert_eq!(parsed["detail"], "two words");
    }
}
