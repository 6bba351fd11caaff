//! A fixed-bucket histogram of durations, kept in integer nanoseconds.
//!
//! The bounds are the Go client's `ExponentialBuckets(start, 2, 15)`. Every start the daemon
//! uses is a whole number of nanoseconds, and doubling keeps it whole, so bounds, bucket
//! placement and the sum are exact: no float rounding decides which bucket an observation lands
//! in, and `le` renders as the same short decimals the Go daemon produced (`0.0001`, `1.6384`).

use std::time::Duration;

/// Finite buckets per histogram; the `+Inf` bucket comes on top.
pub const BUCKETS: usize = 15;

#[derive(Debug, Clone)]
pub struct Histogram {
    first_bound_nanos: u64,
    /// Observations per bucket, not cumulative: `counts[i]` holds values in
    /// `(bound(i-1), bound(i)]`, and `counts[BUCKETS]` those above the last bound.
    counts: [u64; BUCKETS + 1],
    /// u128 because stream durations summed over days at full load overflow u64 nanoseconds.
    sum_nanos: u128,
}

impl Histogram {
    /// Buckets at `first_bound_nanos × 2^i` for i in 0..15, inclusive upper bounds as in
    /// Prometheus.
    pub const fn doubling_from(first_bound_nanos: u64) -> Histogram {
        Histogram {
            first_bound_nanos,
            counts: [0; BUCKETS + 1],
            sum_nanos: 0,
        }
    }

    pub fn observe(&mut self, duration: Duration) {
        let nanos = duration.as_nanos();
        let slot = (0..BUCKETS)
            .find(|&i| nanos <= u128::from(self.bound_nanos(i)))
            .unwrap_or(BUCKETS);
        self.counts[slot] = self.counts[slot].wrapping_add(1);
        self.sum_nanos = self.sum_nanos.wrapping_add(nanos);
    }

    /// The upper bound of finite bucket `i`, in nanoseconds.
    pub fn bound_nanos(&self, i: usize) -> u64 {
        self.first_bound_nanos << i
    }

    /// Cumulative counts for the finite buckets, in bound order; the `+Inf` bucket is `count()`.
    pub fn cumulative(&self) -> [u64; BUCKETS] {
        let mut running = 0u64;
        let mut out = [0u64; BUCKETS];
        for (slot, count) in out.iter_mut().zip(self.counts) {
            running = running.wrapping_add(count);
            *slot = running;
        }
        out
    }

    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |total, &c| total.wrapping_add(c))
    }

    pub fn sum_nanos(&self) -> u128 {
        self.sum_nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_from_the_start() {
        let h = Histogram::doubling_from(100_000);
        assert_eq!(h.bound_nanos(0), 100_000);
        assert_eq!(h.bound_nanos(14), 1_638_400_000);
    }

    #[test]
    fn a_value_on_a_bound_lands_in_that_bucket() {
        let mut h = Histogram::doubling_from(1_000_000);
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_nanos(1_000_001));
        h.observe(Duration::ZERO);
        let cumulative = h.cumulative();
        assert_eq!(cumulative[0], 2);
        assert_eq!(cumulative[1], 3);
    }

    #[test]
    fn values_above_the_last_bound_count_only_in_inf() {
        let mut h = Histogram::doubling_from(10_000_000);
        h.observe(Duration::from_secs(1000));
        assert_eq!(h.cumulative()[BUCKETS - 1], 0);
        assert_eq!(h.count(), 1);
        assert_eq!(h.sum_nanos(), 1_000_000_000_000);
    }
}
