//! Deadlines computed without overflow: a configured duration can be as large as Go allows
//! (about 292 years), and `Instant + Duration` panics past what the platform can represent.

use std::time::{Duration, Instant};

/// Later than any daemon runs, and representable on every platform: about 30 years.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `from + by`, or "never" (30 years on) when that cannot be represented or is further away.
pub fn after(from: Instant, by: Duration) -> Instant {
    from.checked_add(by.min(FAR)).unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_duration_is_far_away_but_does_not_panic() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > after(now, Duration::from_secs(3600 * 24 * 365)));
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
