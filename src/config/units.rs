//! The text forms of numbers the Go daemon's operators already write: Go durations (`1.5s`),
//! integers with Go's and YAML 1.1's base prefixes (`0660` is octal), booleans, and memory sizes
//! with binary units (`768MiB`).
//!
//! Every parser returns a message that says what was expected without repeating the input: the
//! caller knows where the text came from (file position, flag, variable) and decides whether to
//! quote it.

use std::time::Duration;

/// Parses an integer the way Go's `strconv.ParseInt(s, 0, 64)` does, which is also how YAML 1.1
/// reads plain integers: `0x1F` hex, `0o17` and `017` octal, `0b101` binary, else decimal.
pub fn parse_int(text: &str) -> Result<i64, String> {
    const EXPECTED: &str = "expected a whole number (0x, 0o or a leading 0 select hex or octal)";
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (radix, digits) = split_radix(unsigned);
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return Err(EXPECTED.to_string());
    }
    let magnitude = i128::from_str_radix(digits, radix).map_err(|_| EXPECTED.to_string())?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| "the number is too large".to_string())
}

fn split_radix(unsigned: &str) -> (u32, &str) {
    let lower = unsigned.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (16, &unsigned[2..]),
        Some("0o") => (8, &unsigned[2..]),
        Some("0b") => (2, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => (10, unsigned),
    }
}

/// A Unix permission mode: Go's base-prefixed integer (so `0660` and `0o660` are octal, while
/// `660` is decimal and too large), at most `0777`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let value = parse_int(text).map_err(|_| {
        "expected a permission mode in octal with a leading 0, e.g. 0660".to_string()
    })?;
    match u32::try_from(value) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{value} is not a permission mode (largest 0777); write it in octal with a leading 0, \
             e.g. 0660"
        )),
    }
}

/// Go's `strconv.ParseBool` words plus YAML 1.1's `yes/no/on/off`, any letter case.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "on" => Ok(true),
        "false" | "f" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false (also yes/no, on/off, 1/0)".to_string()),
    }
}

/// Go's `strconv.ParseBool`, exactly: what environment variables take (SPEC §5).
pub fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("expected true or false (also 1/0, t/f, TRUE/FALSE, True/False)".to_string()),
    }
}

/// Go's longest duration, `time.Duration(math.MaxInt64)`: 2562047h47m16.854775807s. No
/// configured duration may be longer, so none can overflow a deadline (SPEC §3.1, §5).
pub const MAX_DURATION: Duration = Duration::new(9_223_372_036, 854_775_807);

/// The most milliseconds a `*_ms` key may hold: whole milliseconds of `MAX_DURATION`.
pub const MAX_MILLIS: u64 = 9_223_372_036_854;

/// A whole number of milliseconds, as the `*_ms` keys hold, at most `MAX_MILLIS`.
pub fn parse_millis(text: &str) -> Result<Duration, String> {
    let too_long =
        || format!("must be at most {MAX_MILLIS} (Go's longest duration, about 292 years)");
    let value = parse_int(text).map_err(|message| {
        if message == "the number is too large" {
            too_long()
        } else {
            "expected a whole number of milliseconds".to_string()
        }
    })?;
    let millis = u64::try_from(value).map_err(|_| "a duration cannot be negative".to_string())?;
    if millis > MAX_MILLIS {
        return Err(too_long());
    }
    Ok(Duration::from_millis(millis))
}

/// Go's `time.ParseDuration` syntax: `0`, or a sequence of decimal numbers with units
/// `ns us µs ms s m h`, e.g. `1.5s`, `200ms`, `1m30s`. Negative durations are refused because no
/// setting has a meaning for them.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str =
        "expected a duration such as 200ms, 1.5s or 1m30s (units ns, us, ms, s, m, h)";
    let mut rest = text.trim();
    if let Some(unsigned) = rest.strip_prefix('+') {
        rest = unsigned;
    } else if rest.starts_with('-') {
        return Err("a duration cannot be negative".to_string());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(EXPECTED.to_string());
    }
    let too_long = || {
        format!(
            "must be at most {} (Go's longest duration)",
            format_go_duration(MAX_DURATION)
        )
    };
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{EXPECTED}; a unit is missing"))?;
        let (number, after_number) = rest.split_at(number_len);
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(EXPECTED.to_string()),
        };
        let nanos = decimal_times(number, unit_nanos).map_err(|overflow| {
            if overflow {
                too_long()
            } else {
                EXPECTED.to_string()
            }
        })?;
        total_nanos = total_nanos.saturating_add(nanos);
        rest = after_unit;
    }
    if total_nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| too_long())?;
    // The remainder is below 10^9, so it always fits.
    let subsec = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

/// `number` (digits with at most one `.`) times `unit`, truncated to whole nanoseconds as Go
/// does. Fails with `true` when the product overflows, `false` when `number` is malformed.
fn decimal_times(number: &str, unit: u128) -> Result<u128, bool> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(false);
    }
    // Only digits are left: a parse failure is an overflow.
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| true)?
    };
    let mut result = whole_value.checked_mul(unit).ok_or(true)?;
    // Digits past the 18th cannot add a nanosecond for any unit up to an hour.
    let mut scale = unit;
    for digit in fraction.bytes().take(18) {
        scale /= 10;
        result = result
            .checked_add(u128::from(digit - b'0') * scale)
            .ok_or(true)?;
    }
    Ok(result)
}

/// Formats a duration as Go's `Duration.String` would for the values our defaults use
/// (`50ms`, `5s`, `2m0s`, `0s`), so that `-help` shows defaults in the syntax the flags take.
pub fn format_go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let total_secs = duration.as_secs();
    let (hours, minutes) = (total_secs / 3600, total_secs / 60 % 60);
    let seconds = trim_fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// `value / unit` as a decimal without trailing zeros, e.g. 1_500 / 1_000 -> "1.5".
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A memory size: digits, optional spaces, and a binary unit (`B`, `K`/`KB`/`KiB`, `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB`, `T`/`TB`/`TiB`, any letter case). Bare digits are bytes, as in Go's
/// `GOMEMLIMIT`. Zero is refused: no size setting has a use for it.
pub fn parse_size(text: &str) -> Result<u64, String> {
    const EXPECTED: &str =
        "expected a size such as 512MiB or 64 KiB (units B, KiB, MiB, GiB, TiB; K/KB, M/MB... are binary too)";
    let trimmed = text.trim();
    let digits_len = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_len);
    if digits.is_empty() {
        return Err(EXPECTED.to_string());
    }
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(EXPECTED.to_string()),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| "the size is too large".to_string())?;
    let bytes = count
        .checked_mul(1u64 << shift)
        .ok_or_else(|| "the size is too large".to_string())?;
    if bytes == 0 {
        return Err("a size must be greater than zero".to_string());
    }
    Ok(bytes)
}

/// A size in the largest binary unit that divides it exactly, e.g. `64KiB`, `768MiB`.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_go_and_yaml_1_1_prefixes() {
        assert_eq!(parse_int("50000"), Ok(50_000));
        assert_eq!(parse_int("0660"), Ok(0o660));
        assert_eq!(parse_int("0o660"), Ok(0o660));
        assert_eq!(parse_int("0O17"), Ok(0o17));
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("0"), Ok(0));
        for bad in ["", "abc", "12abc", "0x", "089", "1.5", "--1", "1_000"] {
            assert!(parse_int(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_int("99999999999999999999"),
            Err("the number is too large".to_string())
        );
    }

    #[test]
    fn modes_are_octal_with_a_leading_zero_and_at_most_0777() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert_eq!(parse_mode("0777"), Ok(0o777));
        assert_eq!(
            parse_mode("660"),
            Err(
                "660 is not a permission mode (largest 0777); write it in octal with a leading 0, \
                 e.g. 0660"
                    .to_string()
            )
        );
        assert_eq!(
            parse_mode("rw"),
            Err("expected a permission mode in octal with a leading 0, e.g. 0660".to_string())
        );
        assert!(parse_mode("-1").is_err());
    }

    #[test]
    fn booleans_accept_go_and_yaml_words() {
        for word in ["true", "True", "TRUE", "t", "1", "yes", "on", "Yes", "ON"] {
            assert_eq!(parse_bool(word), Ok(true), "{word}");
        }
        for word in ["false", "False", "f", "0", "no", "off", "Off"] {
            assert_eq!(parse_bool(word), Ok(false), "{word}");
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("200ms"), Ok(ms(200)));
        assert_eq!(parse_go_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_go_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_go_duration("1667ms"), Ok(ms(1667)));
        assert_eq!(parse_go_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_go_duration("1h1m1s1ms1us1ns"),
            Ok(Duration::new(3661, 1_001_001))
        );
        assert_eq!(parse_go_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_go_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_go_duration("+1s"), Ok(ms(1000)));
        assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_go_duration("-1s"),
            Err("a duration cannot be negative".to_string())
        );
        assert_eq!(
            parse_go_duration("50"),
            Err(
                "expected a duration such as 200ms, 1.5s or 1m30s (units ns, us, ms, s, m, h); \
                 a unit is missing"
                    .to_string()
            )
        );
        for bad in ["", "s", "1x", "1.2.3s", ".s", "1 s", "ms"] {
            assert!(
                parse_go_duration(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn durations_stop_at_gos_maximum() {
        let max = "2562047h47m16.854775807s";
        assert_eq!(parse_go_duration(max), Ok(MAX_DURATION));
        assert_eq!(parse_go_duration("9223372036854775807ns"), Ok(MAX_DURATION));
        assert_eq!(format_go_duration(MAX_DURATION), max);
        let refused = Err(format!("must be at most {max} (Go's longest duration)"));
        for text in [
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "9223372036854775807s",
            "3000000000000000h",
            "99999999999999999999999999999999999999999h",
            "2562047h2562047h",
        ] {
            assert_eq!(parse_go_duration(text), refused, "{text}");
        }
        assert_eq!(
            parse_millis("9223372036854"),
            Ok(Duration::from_millis(MAX_MILLIS))
        );
        let refused = Err(
            "must be at most 9223372036854 (Go's longest duration, about 292 years)".to_string(),
        );
        assert_eq!(parse_millis("9223372036855"), refused);
        assert_eq!(parse_millis("9223372036854775807"), refused);
        assert_eq!(parse_millis("99999999999999999999"), refused);
    }

    #[test]
    fn go_booleans_are_exactly_strconv_parse_bool() {
        for word in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(word), Ok(true), "{word}");
        }
        for word in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(word), Ok(false), "{word}");
        }
        for word in ["yes", "no", "on", "off", "tRUE", "FaLsE", " true", "", "2"] {
            assert!(parse_go_bool(word).is_err(), "{word:?}");
        }
    }

    #[test]
    fn durations_format_as_go_prints_them() {
        let ms = Duration::from_millis;
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(ms(50)), "50ms");
        assert_eq!(format_go_duration(ms(1500)), "1.5s");
        assert_eq!(format_go_duration(ms(5000)), "5s");
        assert_eq!(format_go_duration(ms(120_000)), "2m0s");
        assert_eq!(format_go_duration(ms(90_500)), "1m30.5s");
        assert_eq!(format_go_duration(Duration::from_secs(3601)), "1h0m1s");
        assert_eq!(format_go_duration(Duration::from_nanos(1500)), "1.5µs");
        for text in ["50ms", "1.5s", "2m0s", "1h0m1s", "1.5µs", "0s"] {
            let parsed = parse_go_duration(text).expect("formatted durations parse back");
            assert_eq!(format_go_duration(parsed), text);
        }
    }

    #[test]
    fn millis() {
        assert_eq!(parse_millis("300000"), Ok(Duration::from_millis(300_000)));
        assert_eq!(parse_millis("0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_millis("-5"),
            Err("a duration cannot be negative".to_string())
        );
        assert_eq!(
            parse_millis("5s"),
            Err("expected a whole number of milliseconds".to_string())
        );
    }

    #[test]
    fn sizes_are_binary() {
        assert_eq!(parse_size("768MiB"), Ok(768 << 20));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(
            parse_size("0MiB"),
            Err("a size must be greater than zero".to_string())
        );
        assert_eq!(
            parse_size("99999999TiB"),
            Err("the size is too large".to_string())
        );
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(768 << 20), "768MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(3 << 40), "3TiB");
        for bad in ["", "MiB", "1.5GiB", "12 XB", "-1MiB", "1 Mi B"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
