//! Writing Prometheus text exposition format 0.0.4, line by line.
//!
//! Values are written from integers only: counts as they are, durations from integer
//! nanoseconds as exact decimal seconds. No float is formatted, so no output depends on float
//! printing, and every value is something Prometheus's parser accepts.

use std::fmt;
use std::io::Write;

/// The kinds of metric families the daemon exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric family's fixed description.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Count(u64),
    /// A duration or an instant in nanoseconds, written as seconds.
    Nanos(u128),
}

/// `# HELP` and `# TYPE`: once per family, before its samples.
pub fn header(out: &mut Vec<u8>, family: &Family) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(family.name.as_bytes());
    out.push(b' ');
    for &b in family.help.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(family.name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(family.kind.as_str().as_bytes());
    out.push(b'\n');
}

/// One sample line: `name[suffix]{label="value",...} value`.
pub fn sample(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &[(&str, &str)], value: Value) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        for (i, (label, label_value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(label.as_bytes());
            out.extend_from_slice(b"=\"");
            push_label_value(out, label_value);
            out.push(b'"');
        }
        out.push(b'}');
    }
    // Writing into a Vec cannot fail.
    let _ = match value {
        Value::Count(n) => writeln!(out, " {n}"),
        Value::Nanos(nanos) => writeln!(out, " {}", Seconds(nanos)),
    };
}

/// Label values escape backslash, double quote and line feed; nothing else.
pub fn push_label_value(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Nanoseconds shown as decimal seconds, exact and as short as possible: `100000` → `0.0001`,
/// `2000000000` → `2`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub u128);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NANOS_PER_SECOND: u128 = 1_000_000_000;
        write!(f, "{}", self.0 / NANOS_PER_SECOND)?;
        let mut fraction = self.0 % NANOS_PER_SECOND;
        if fraction == 0 {
            return Ok(());
        }
        let mut width = 9;
        while fraction.is_multiple_of(10) {
            fraction /= 10;
            width -= 1;
        }
        write!(f, ".{fraction:0width$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(nanos: u128) -> String {
        Seconds(nanos).to_string()
    }

    #[test]
    fn seconds_are_exact_short_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(100_000), "0.0001");
        assert_eq!(seconds(1_638_400_000), "1.6384");
        assert_eq!(seconds(163_840_000_000), "163.84");
        assert_eq!(seconds(16_384_000_000), "16.384");
        assert_eq!(seconds(2_000_000_000), "2");
        assert_eq!(seconds(1), "0.000000001");
        assert_eq!(
            seconds(u128::MAX),
            "340282366920938463463374607431.768211455"
        );
    }

    #[test]
    fn le_bounds_match_the_go_clients_float_printing() {
        // Go prints bucket bounds with strconv 'g', shortest: the f64 nearest to each bound.
        for first in [100_000u64, 1_000_000, 10_000_000] {
            for i in 0..15 {
                let nanos = first << i;
                let text = seconds(u128::from(nanos));
                let go_value = first as f64 / 1e9 * f64::from(1u32 << i);
                assert_eq!(text, go_value.to_string(), "bound {nanos} ns");
            }
        }
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut out = Vec::new();
        push_label_value(&mut out, "a\\b\"c\nd\te");
        assert_eq!(out, b"a\\\\b\\\"c\\nd\te");
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut out = Vec::new();
        header(
            &mut out,
            &Family {
                name: "x",
                help: "a\\b\n\"c\"",
                kind: Kind::Gauge,
            },
        );
        assert_eq!(out, b"# HELP x a\\\\b\\n\"c\"\n# TYPE x gauge\n");
    }

    #[test]
    fn samples_with_and_without_labels() {
        let mut out = Vec::new();
        sample(&mut out, "x", "_total", &[], Value::Count(u64::MAX));
        sample(
            &mut out,
            "y",
            "_bucket",
            &[("a", "1"), ("le", "+Inf")],
            Value::Nanos(1_500_000_000),
        );
        assert_eq!(
            out,
            b"x_total 18446744073709551615\ny_bucket{a=\"1\",le=\"+Inf\"} 1.5\n"
        );
    }
}
