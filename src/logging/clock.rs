//! Log timestamps in UTC: slog's text time (RFC 3339, exactly three fractional digits) and its
//! JSON time (Go's `RFC3339Nano`: up to nine digits, trailing zeros dropped, none when zero).
//! Computed here to avoid a date crate for two formats.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-29T12:00:00.123Z`
pub fn push_rfc3339_millis(out: &mut Vec<u8>, time: SystemTime) {
    let nanos = push_date_time(out, time);
    out.push(b'.');
    push_digits(out, u64::from(nanos / 1_000_000), 3);
    out.push(b'Z');
}

/// `2026-11-29T12:00:00.123456789Z`, `2026-11-29T12:00:00.5Z`, `2026-11-29T12:00:00Z`
pub fn push_rfc3339_nano(out: &mut Vec<u8>, time: SystemTime) {
    let nanos = push_date_time(out, time);
    if nanos > 0 {
        let mut fraction = nanos;
        let mut digits = 9;
        while fraction.is_multiple_of(10) {
            fraction /= 10;
            digits -= 1;
        }
        out.push(b'.');
        push_digits(out, u64::from(fraction), digits);
    }
    out.push(b'Z');
}

/// Writes `YYYY-MM-DDTHH:MM:SS`; returns the nanoseconds within the second. A clock set before
/// 1970 reads as the epoch.
fn push_date_time(out: &mut Vec<u8>, time: SystemTime) -> u32 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let in_day = seconds % 86_400;
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, in_day / 3600, 2);
    out.push(b':');
    push_digits(out, in_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, in_day % 60, 2);
    since_epoch.subsec_nanos()
}

/// `value` in decimal, left-padded with zeros to at least `width` digits.
fn push_digits(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let written = digits.len() - at;
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(written)));
    out.extend_from_slice(&digits[at..]);
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

    fn millis(time: SystemTime) -> String {
        let mut out = Vec::new();
        push_rfc3339_millis(&mut out, time);
        String::from_utf8(out).unwrap()
    }

    fn nano(time: SystemTime) -> String {
        let mut out = Vec::new();
        push_rfc3339_nano(&mut out, time);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_516), (2026, 3, 4));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
    }

    #[test]
    fn text_time_has_exactly_three_fractional_digits() {
        let time = UNIX_EPOCH + Duration::from_millis(1_772_598_896_789);
        assert_eq!(millis(time), "2026-03-04T04:34:56.789Z");
        assert_eq!(millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let time = UNIX_EPOCH + Duration::new(86_399, 999_999_999);
        assert_eq!(millis(time), "1970-01-01T23:59:59.999Z");
        assert_eq!(
            millis(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn json_time_drops_trailing_zeros() {
        let second = UNIX_EPOCH + Duration::from_secs(1_795_953_600);
        assert_eq!(nano(second), "2026-11-29T12:00:00Z");
        let cases = [
            (123_456_789, "2026-11-29T12:00:00.123456789Z"),
            (500_000_000, "2026-11-29T12:00:00.5Z"),
            (120_000_000, "2026-11-29T12:00:00.12Z"),
            (1, "2026-11-29T12:00:00.000000001Z"),
            (10, "2026-11-29T12:00:00.00000001Z"),
        ];
        for (nanos, expected) in cases {
            assert_eq!(nano(second + Duration::from_nanos(nanos)), expected);
        }
    }
}
