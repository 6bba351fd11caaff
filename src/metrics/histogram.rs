//! A fixed-bucket histogram of durations, kept in integer nanoseconds.
//!
//! The bounds are the Go client's `ExponentialBuckets(start, 2, 15)`. Every start the daemon
//! uses is a whole number of nanoseconds, and doubling keeps it whole, so bounds, bucket
//! placement and the sum are exact: no float rounding decides which bucket an observation lands
//! in, and `le` renders as the same short decimals the Go daemon produced (`0.0001`, `1.6384`).

use std::time::Duration;

use super::counter::Counter;

/// Finite buckets per histogram; the `+Inf` bucket comes on top.
pub const BUCKETS: usize = 15;

/// A histogram one worker observes into (single-writer counters, see [`Counter`]).
#[derive(Debug)]
pub struct Histogram {
    first_bound_nanos: u64,
    /// Observations per bucket, not cumulative: `counts[i]` holds values in
    /// `(bound(i-1), bound(i)]`, and `counts[BUCKETS]` those above the last bound.
    counts: [Counter; BUCKETS + 1],
    /// The sum in whole seconds and the nanoseconds beyond them: exact, and summed stream
    /// durations at full load would overflow a u64 of nanoseconds in days.
    sum_seconds: Counter,
    sum_subsec_nanos: Counter,
}

impl Histogram {
    /// Buckets at `first_bound_nanos × 2^i` for i in 0..15, inclusive upper bounds as in
    /// Prometheus.
    pub const fn doubling_from(first_bound_nanos: u64) -> Histogram {
        Histogram {
            first_bound_nanos,
            counts: [const { Counter::new() }; BUCKETS + 1],
            sum_seconds: Counter::new(),
            sum_subsec_nanos: Counter::new(),
        }
    }

    pub fn observe(&self, duration: Duration) {
        let nanos = duration.as_nanos();
        let slot = (0..BUCKETS)
            .find(|&i| nanos <= u128::from(bound_nanos(self.first_bound_nanos, i)))
            .unwrap_or(BUCKETS);
        self.counts[slot].add(1);
        let subsec = self.sum_subsec_nanos.get() + u64::from(duration.subsec_nanos());
        self.sum_seconds
            .add(duration.as_secs().wrapping_add(subsec / NANOS_PER_SECOND));
        self.sum_subsec_nanos.set(subsec % NANOS_PER_SECOND);
    }

    /// What it holds now, as plain numbers.
    #[cfg(test)]
    pub fn totals(&self) -> HistogramTotals {
        let mut totals = HistogramTotals::empty(self.first_bound_nanos);
        totals.add(self);
        totals
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

fn bound_nanos(first_bound_nanos: u64, i: usize) -> u64 {
    first_bound_nanos << i
}

/// A histogram's numbers, summed over workers, for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramTotals {
    first_bound_nanos: u64,
    counts: [u64; BUCKETS + 1],
    sum_nanos: u128,
}

impl HistogramTotals {
    pub fn empty(first_bound_nanos: u64) -> HistogramTotals {
        HistogramTotals {
            first_bound_nanos,
            counts: [0; BUCKETS + 1],
            sum_nanos: 0,
        }
    }

    /// The sum of one histogram over every worker's copy of it.
    pub fn of<'a, T: 'a>(workers: &[&'a T], histogram: impl Fn(&'a T) -> &'a Histogram) -> Self {
        let mut totals = HistogramTotals::empty(0);
        for (i, worker) in workers.iter().enumerate() {
            let h = histogram(worker);
            if i == 0 {
                totals.first_bound_nanos = h.first_bound_nanos;
            }
            totals.add(h);
        }
        totals
    }

    fn add(&mut self, h: &Histogram) {
        for (total, count) in self.counts.iter_mut().zip(&h.counts) {
            *total = total.wrapping_add(count.get());
        }
        let nanos = u128::from(h.sum_seconds.get()) * u128::from(NANOS_PER_SECOND)
            + u128::from(h.sum_subsec_nanos.get());
        self.sum_nanos = self.sum_nanos.wrapping_add(nanos);
    }

    /// The upper bound of finite bucket `i`, in nanoseconds.
    pub fn bound_nanos(&self, i: usize) -> u64 {
        bound_nanos(self.first_bound_nanos, i)
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
        let h = Histogram::doubling_from(100_000).totals();
        assert_eq!(h.bound_nanos(0), 100_000);
        assert_eq!(h.bound_nanos(14), 1_638_400_000);
    }

    #[test]
    fn a_value_on_a_bound_lands_in_that_bucket() {
        let h = Histogram::doubling_from(1_000_000);
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_nanos(1_000_001));
        h.observe(Duration::ZERO);
        let cumulative = h.totals().cumulative();
        assert_eq!(cumulative[0], 2);
        assert_eq!(cumulative[1], 3);
    }

    #[test]
    fn values_above_the_last_bound_count_only_in_inf() {
        let h = Histogram::doubling_from(10_000_000);
        h.observe(Duration::from_secs(1000));
        let h = h.totals();
        assert_eq!(h.cumulative()[BUCKETS - 1], 0);
        assert_eq!(h.count(), 1);
        assert_eq!(h.sum_nanos(), 1_000_000_000_000);
    }

    #[test]
    fn the_sum_carries_nanoseconds_into_seconds_exactly() {
        let h = Histogram::doubling_from(1);
        for _ in 0..3 {
            h.observe(Duration::new(1, 700_000_001));
        }
        assert_eq!(h.totals().sum_nanos(), 5_100_000_003);
    }
}
