//! A counter one thread writes and any thread may read: the worker that owns a `Metrics` adds
//! to it, and whichever worker serves a scrape reads every worker's.
//!
//! With a single writer, an add is a plain load and store (no locked instruction on the hot
//! path); readers see the value before or after an add, never a torn one. Counters wrap
//! instead of panicking: Prometheus reads a wrap as a reset, which is harmless.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n`. Only the owning thread calls this.
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Replaces the value. Only the owning thread calls this.
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The sum of one counter over every worker's copy of it.
pub fn total<'a, T: 'a>(workers: &[&'a T], counter: impl Fn(&'a T) -> &'a Counter) -> u64 {
    workers
        .iter()
        .fold(0u64, |sum, worker| sum.wrapping_add(counter(worker).get()))
}

/// The sums of an array of labelled counters over every worker.
pub fn totals<'a, T: 'a, const N: usize>(
    workers: &[&'a T],
    counters: impl Fn(&'a T) -> &'a [Counter; N],
) -> [u64; N] {
    let mut sums = [0u64; N];
    for worker in workers {
        for (sum, counter) in sums.iter_mut().zip(counters(worker)) {
            *sum = sum.wrapping_add(counter.get());
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_wrap_and_totals_sum_every_worker() {
        let a = Counter::new();
        a.add(u64::MAX);
        a.add(2);
        assert_eq!(a.get(), 1);
        let b = [Counter::new(), Counter::new()];
        let c = [Counter::new(), Counter::new()];
        b[0].add(3);
        c[0].add(4);
        c[1].add(5);
        assert_eq!(totals(&[&b, &c], |w| w), [7, 5]);
        assert_eq!(total(&[&b, &c], |w| &w[0]), 7);
    }
}
