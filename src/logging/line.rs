//! One log record as one line, in the shapes of Go's slog handlers with `AddSource`:
//!
//! ```text
//! time=2026-11-29T12:00:00.000Z level=INFO source=src/conn/mod.rs:123 msg="connection ended" conn=12 outcome=completed
//! {"time":"2026-11-29T12:00:00.123456789Z","level":"INFO","source":{"function":"streaming_daemon::conn","file":"src/conn/mod.rs","line":123},"msg":"connection ended","conn":12,"outcome":"completed"}
//! ```
//!
//! Key fields (`log::info!(conn = 7, outcome = "x"; "connection ended")`) follow `msg` in the
//! order given; numbers and booleans are bare in JSON; an empty `error` field is left out.
//! Secrets are masked in the message and every value before anything is quoted.

use std::borrow::Cow;
use std::time::SystemTime;

use log::kv::{Key, Value, VisitSource};
use log::{Level, Record};

use super::clock::{push_rfc3339_millis, push_rfc3339_nano};
use super::mask::Secrets;
use super::quote::{push_json_string, push_text_value};
use crate::config::LogFormat;

/// slog's level names. `log`'s trace is slog's level -8, which slog calls `DEBUG-4`.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "DEBUG-4",
    }
}

/// `record` as one line, newline included.
pub fn format_record(
    record: &Record<'_>,
    format: LogFormat,
    now: SystemTime,
    secrets: &Secrets,
) -> Vec<u8> {
    let message = match record.args().as_str() {
        Some(fixed) => Cow::Borrowed(fixed),
        None => Cow::Owned(record.args().to_string()),
    };
    let message = secrets.mask(message.as_bytes());
    let mut out = Vec::with_capacity(160 + message.len());
    match format {
        LogFormat::Text => push_text_head(&mut out, record, now, &message),
        LogFormat::Json => push_json_head(&mut out, record, now, &message),
    }
    let mut fields = Fields {
        out: &mut out,
        format,
        secrets,
    };
    // `Fields` never fails; a source that fails part-way keeps the fields it gave.
    let _ = record.key_values().visit(&mut fields);
    match format {
        LogFormat::Text => out.push(b'\n'),
        LogFormat::Json => out.extend_from_slice(b"}\n"),
    }
    out
}

/// `time=… level=… source=file:line msg=…`
fn push_text_head(out: &mut Vec<u8>, record: &Record<'_>, now: SystemTime, message: &[u8]) {
    out.extend_from_slice(b"time=");
    push_rfc3339_millis(out, now);
    out.extend_from_slice(b" level=");
    out.extend_from_slice(level_name(record.level()).as_bytes());
    if let Some(file) = record.file() {
        out.extend_from_slice(b" source=");
        let source = format!("{file}:{}", record.line().unwrap_or(0));
        push_text_value(out, source.as_bytes());
    }
    out.extend_from_slice(b" msg=");
    push_text_value(out, message);
}

/// `{"time":…,"level":…,"source":{"function":…,"file":…,"line":…},"msg":…` (no closing brace)
fn push_json_head(out: &mut Vec<u8>, record: &Record<'_>, now: SystemTime, message: &[u8]) {
    out.extend_from_slice(b"{\"time\":\"");
    push_rfc3339_nano(out, now);
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(level_name(record.level()).as_bytes());
    out.push(b'"');
    if let Some(file) = record.file() {
        out.extend_from_slice(b",\"source\":{");
        if let Some(function) = record.module_path() {
            out.extend_from_slice(b"\"function\":");
            push_json_string(out, function.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"file\":");
        push_json_string(out, file.as_bytes());
        if let Some(line) = record.line() {
            out.extend_from_slice(format!(",\"line\":{line}").as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"msg\":");
    push_json_string(out, message);
}

/// Appends each key field in the line's format.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    format: LogFormat,
    secrets: &'a Secrets,
}

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        // A field given as `None` is not there (`suppressed` when nothing was).
        if is_none(&value) {
            return Ok(());
        }
        let (text, number) = render(&value);
        if key.as_str() == "error" && text.is_empty() {
            return Ok(());
        }
        let masked = self.secrets.mask(text.as_bytes());
        // A number that held a secret is written as the string that replaced it.
        let number = number && matches!(masked, Cow::Borrowed(_));
        let key = key.as_str().as_bytes();
        match self.format {
            LogFormat::Text => {
                self.out.push(b' ');
                push_text_value(self.out, key);
                self.out.push(b'=');
                push_text_value(self.out, &masked);
            }
            LogFormat::Json => {
                self.out.push(b',');
                push_json_string(self.out, key);
                self.out.push(b':');
                if number {
                    self.out.extend_from_slice(&masked);
                } else {
                    push_json_string(self.out, &masked);
                }
            }
        }
        Ok(())
    }
}

/// Whether a field was given as `None`.
fn is_none(value: &Value<'_>) -> bool {
    struct Null(bool);
    impl<'v> log::kv::VisitValue<'v> for Null {
        fn visit_any(&mut self, _: Value<'_>) -> Result<(), log::kv::Error> {
            Ok(())
        }
        fn visit_null(&mut self) -> Result<(), log::kv::Error> {
            self.0 = true;
            Ok(())
        }
    }
    let mut null = Null(false);
    let _ = value.visit(&mut null);
    null.0
}

/// A value's text, and whether JSON writes it bare (a number or a boolean).
fn render<'v>(value: &Value<'v>) -> (Cow<'v, str>, bool) {
    if let Some(text) = value.to_borrowed_str() {
        return (Cow::Borrowed(text), false);
    }
    if let Some(n) = value.to_u64() {
        return (Cow::Owned(n.to_string()), true);
    }
    if let Some(n) = value.to_i64() {
        return (Cow::Owned(n.to_string()), true);
    }
    if let Some(b) = value.to_bool() {
        return (Cow::Borrowed(if b { "true" } else { "false" }), true);
    }
    if let Some(f) = value.to_f64() {
        return match f {
            f if f.is_nan() => (Cow::Borrowed("NaN"), false),
            f if f.is_infinite() => (Cow::Borrowed(if f > 0.0 { "+Inf" } else { "-Inf" }), false),
            // Go's encoding/json switches to an exponent at the same magnitudes.
            f if f != 0.0 && (f.abs() < 1e-6 || f.abs() >= 1e21) => {
                (Cow::Owned(format!("{f:e}")), true)
            }
            f => (Cow::Owned(f.to_string()), true),
        };
    }
    (Cow::Owned(value.to_string()), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn time() -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(1_795_953_600_123_456_700)
    }

    fn line(record: &Record<'_>, format: LogFormat, secrets: &Secrets) -> String {
        String::from_utf8(format_record(record, format, time(), secrets)).unwrap()
    }

    fn both(record: &Record<'_>) -> (String, String) {
        let none = Secrets::none();
        (
            line(record, LogFormat::Text, &none),
            line(record, LogFormat::Json, &none),
        )
    }

    #[test]
    fn the_connection_end_line() {
        let fields: &[(&str, Value<'_>)] = &[
            ("conn", Value::from(12u64)),
            ("backend", Value::from("mock")),
            ("status", Value::from(200u16)),
            ("outcome", Value::from("completed")),
            ("error", Value::from("")),
            ("delta", Value::from(-3i64)),
            ("ok", Value::from(true)),
            ("ratio", Value::from(0.25f64)),
            ("tiny", Value::from(1.5e-7f64)),
            ("detail", Value::from("two words")),
        ];
        let record = Record::builder()
            .args(format_args!("connection ended"))
            .level(Level::Info)
            .target("streaming_daemon::conn")
            .module_path(Some("streaming_daemon::conn"))
            .file(Some("src/conn/mod.rs"))
            .line(Some(123))
            .key_values(&fields)
            .build();
        let (text, json) = both(&record);
        assert_eq!(
            text,
            "time=2026-11-29T12:00:00.123Z level=INFO source=src/conn/mod.rs:123 \
             msg=\"connection ended\" conn=12 backend=mock status=200 outcome=completed \
             delta=-3 ok=true ratio=0.25 tiny=1.5e-7 detail=\"two words\"\n"
        );
        assert_eq!(
            json,
            "{\"time\":\"2026-11-29T12:00:00.1234567Z\",\"level\":\"INFO\",\
             \"source\":{\"function\":\"streaming_daemon::conn\",\"file\":\"src/conn/mod.rs\",\"line\":123},\
             \"msg\":\"connection ended\",\"conn\":12,\"backend\":\"mock\",\"status\":200,\
             \"outcome\":\"completed\",\"delta\":-3,\"ok\":true,\"ratio\":0.25,\"tiny\":1.5e-7,\
             \"detail\":\"two words\"}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["tiny"].as_f64(), Some(1.5e-7));
    }

    #[test]
    fn levels_as_slog_names_them() {
        let names: Vec<_> = [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ]
        .into_iter()
        .map(level_name)
        .collect();
        assert_eq!(names, ["DEBUG-4", "DEBUG", "INFO", "WARN", "ERROR"]);
    }

    #[test]
    fn hostile_values_cannot_forge_a_line() {
        let forged = "x\ntime=2026-01-01T00:00:00.000Z level=ERROR msg=forged";
        let fields: &[(&str, Value<'_>)] = &[
            ("body", Value::from(forged)),
            ("quote", Value::from("\" injected=\"1")),
            ("ctl", Value::from("\u{1b}[31mred\r\u{2028}")),
            ("bad key\n", Value::from(1u64)),
        ];
        let message = format!("upstream said {forged}");
        // One statement: the record borrows the temporary `format_args!` makes.
        let (text, json) = both(
            &Record::builder()
                .args(format_args!("{message}"))
                .level(Level::Warn)
                .file(Some("src/x.rs"))
                .line(Some(7))
                .key_values(&fields)
                .build(),
        );
        for written in [&text, &json] {
            assert_eq!(written.matches('\n').count(), 1, "{written}");
            assert!(written.ends_with('\n'));
            assert!(!written.contains(['\r', '\u{2028}', '\u{1b}']));
        }
        assert_eq!(
            text,
            "time=2026-11-29T12:00:00.123Z level=WARN source=src/x.rs:7 \
             msg=\"upstream said x\\ntime=2026-01-01T00:00:00.000Z level=ERROR msg=forged\" \
             body=\"x\\ntime=2026-01-01T00:00:00.000Z level=ERROR msg=forged\" \
             quote=\"\\\" injected=\\\"1\" ctl=\"\\x1b[31mred\\r\\u2028\" \"bad key\\n\"=1\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["msg"], message);
        assert_eq!(parsed["body"], forged);
        assert_eq!(parsed["ctl"], "\u{1b}[31mred\r\u{2028}");
        assert_eq!(parsed["bad key\n"], 1);
    }

    #[test]
    fn secrets_are_masked_in_the_message_and_every_value() {
        let secrets = Secrets::new(vec!["k3y-NO-prefix".into(), "4242".into(), "ab".into()]);
        let fields: &[(&str, Value<'_>)] = &[
            ("body", Value::from("{\"error\":\"bad key k3y-NO-prefix\"}")),
            ("port", Value::from(4242u64)),
            ("short", Value::from("ab")),
            ("word", Value::from("abc")),
        ];
        let record = Record::builder()
            .args(format_args!("rejected k3y-NO-prefix"))
            .level(Level::Error)
            .key_values(&fields)
            .build();
        let text = line(&record, LogFormat::Text, &secrets);
        assert_eq!(
            text,
            "time=2026-11-29T12:00:00.123Z level=ERROR msg=\"rejected [REDACTED]\" \
             body=\"{\\\"error\\\":\\\"bad key [REDACTED]\\\"}\" port=[REDACTED] short=[REDACTED] word=abc\n"
        );
        let json = line(&record, LogFormat::Json, &secrets);
        assert!(!json.contains("k3y-NO-prefix") && !json.contains("4242"));
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["port"], "[REDACTED]");
        assert_eq!(parsed["word"], "abc");
    }

    #[test]
    fn an_empty_error_and_a_none_are_left_out_and_other_empty_values_kept() {
        let none: Option<u32> = None;
        let fields: &[(&str, Value<'_>)] = &[
            ("error", Value::from("")),
            ("suppressed", log::kv::ToValue::to_value(&none)),
            ("note", Value::from("")),
            ("error", Value::from("boom")),
        ];
        let record = Record::builder()
            .args(format_args!(""))
            .level(Level::Debug)
            .key_values(&fields)
            .build();
        let (text, json) = both(&record);
        assert_eq!(
            text,
            "time=2026-11-29T12:00:00.123Z level=DEBUG msg=\"\" note=\"\" error=boom\n"
        );
        assert_eq!(
            json,
            "{\"time\":\"2026-11-29T12:00:00.1234567Z\",\"level\":\"DEBUG\",\"msg\":\"\",\"note\":\"\",\"error\":\"boom\"}\n"
        );
    }

    #[test]
    fn values_logged_with_display_or_debug() {
        let error = std::io::Error::other("disk on fire");
        let path = std::path::Path::new("/tmp/a b");
        let fields: &[(&str, Value<'_>)] = &[
            ("error", Value::from_display(&error)),
            ("path", Value::from_debug(&path)),
            ("big", Value::from(u128::MAX)),
            ("nan", Value::from(f64::NAN)),
        ];
        let record = Record::builder()
            .args(format_args!("x"))
            .level(Level::Info)
            .key_values(&fields)
            .build();
        let (text, json) = both(&record);
        assert!(
            text.ends_with(
                " msg=x error=\"disk on fire\" path=\"\\\"/tmp/a b\\\"\" \
                 big=340282366920938463463374607431768211455 nan=NaN\n"
            ),
            "{text}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["error"], "disk on fire");
        assert_eq!(parsed["nan"], "NaN");
    }
}
