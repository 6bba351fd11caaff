//! A deterministic mix of kinds in set proportions, written `name=weight,name=weight`.
//!
//! Item `i` (the i-th stream, the i-th upstream request) gets its kind from `i` alone: one cycle
//! of `Σ weight` items holds exactly `weight` of each kind, spread evenly by a smooth weighted
//! round robin (the kind furthest behind its share goes next), and the cycles repeat. So the
//! count of each kind among the first `n` items is known before a run, and bursts of one kind
//! do not happen by construction.
//!
//! The `handoff` load generator mixes client behaviours with it and the benchmarks' fake
//! upstream (`examples/fake_openai.rs`, which includes this file) mixes its answers.

/// Longest cycle accepted: the whole cycle is kept, one byte per item.
pub const MAX_CYCLE: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    names: &'static [&'static str],
    weights: Vec<u64>,
    /// One cycle of kinds, as indices into `names`.
    cycle: Vec<u8>,
}

impl Mix {
    /// Every item of the kind `names[0]`.
    pub fn only_first(names: &'static [&'static str]) -> Mix {
        let mut weights = vec![0; names.len()];
        weights[0] = 1;
        Mix::from_weights(names, weights)
    }

    /// Reads `name=weight,…`: names from `names`, each at most once, whole weights (0 allowed)
    /// adding up to between 1 and [`MAX_CYCLE`]. Names left out have weight 0.
    pub fn parse(spec: &str, names: &'static [&'static str]) -> Result<Mix, String> {
        let mut weights: Vec<Option<u64>> = vec![None; names.len()];
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, weight)) = part.split_once('=') else {
                return Err(format!("{part:?} is not name=weight"));
            };
            let name = name.trim();
            let Some(index) = names.iter().position(|n| *n == name) else {
                return Err(format!(
                    "unknown kind {name:?}; known: {}",
                    names.join(", ")
                ));
            };
            let weight: u64 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{name}: {weight:?} is not a whole number"))?;
            if weights[index].replace(weight).is_some() {
                return Err(format!("{name} is given twice"));
            }
        }
        let weights: Vec<u64> = weights.into_iter().map(Option::unwrap_or_default).collect();
        let total = weights
            .iter()
            .try_fold(0u64, |sum, &w| sum.checked_add(w))
            .unwrap_or(u64::MAX);
        if total == 0 {
            return Err("the weights add up to 0; give at least one kind a weight".into());
        }
        if total > MAX_CYCLE {
            return Err(format!("the weights add up to {total}, over {MAX_CYCLE}"));
        }
        Ok(Mix::from_weights(names, weights))
    }

    /// `weights` is one per name, adding up to between 1 and `MAX_CYCLE`.
    fn from_weights(names: &'static [&'static str], weights: Vec<u64>) -> Mix {
        let total: u64 = weights.iter().sum();
        let mut credit = vec![0i64; weights.len()];
        let mut cycle = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, &w) in credit.iter_mut().zip(&weights) {
                *c += w as i64;
            }
            // The first of the largest credits: ties go to the kind named first.
            let mut pick = 0;
            for (k, &c) in credit.iter().enumerate() {
                if c > credit[pick] {
                    pick = k;
                }
            }
            credit[pick] -= total as i64;
            cycle.push(pick as u8);
        }
        Mix {
            names,
            weights,
            cycle,
        }
    }

    /// The kind of item `i`, as an index into the names.
    pub fn kind(&self, i: u64) -> usize {
        usize::from(self.cycle[(i % self.cycle.len() as u64) as usize])
    }

    /// Whether any item at all is of this kind.
    pub fn has(&self, kind: usize) -> bool {
        self.weights[kind] > 0
    }

    /// How many of the first `n` items are of each kind, in the order of the names.
    #[cfg(test)]
    pub fn counts(&self, n: u64) -> Vec<u64> {
        let len = self.cycle.len() as u64;
        let mut counts: Vec<u64> = self.weights.iter().map(|w| w * (n / len)).collect();
        for &kind in &self.cycle[..(n % len) as usize] {
            counts[usize::from(kind)] += 1;
        }
        counts
    }

    /// The mix as it would be written, with every kind: `a=1,b=0`.
    pub fn spec(&self) -> String {
        let parts: Vec<String> = self
            .names
            .iter()
            .zip(&self.weights)
            .map(|(name, weight)| format!("{name}={weight}"))
            .collect();
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["read", "close", "reset"];

    #[test]
    fn each_cycle_holds_each_weight_spread_out() {
        let mix = Mix::parse("read=6,close=3,reset=1", NAMES).unwrap();
        let kinds: Vec<usize> = (0..10).map(|i| mix.kind(i)).collect();
        assert_eq!(kinds.iter().filter(|&&k| k == 0).count(), 6);
        assert_eq!(kinds.iter().filter(|&&k| k == 1).count(), 3);
        assert_eq!(kinds.iter().filter(|&&k| k == 2).count(), 1);
        // No two closes in a row: they are spread over the cycle.
        assert!(kinds.windows(2).all(|w| w != [1, 1]), "{kinds:?}");
        // The next cycle repeats the first.
        assert!((0..10).all(|i| mix.kind(i) == mix.kind(i + 10)));
    }

    #[test]
    fn counts_match_the_kinds_for_any_prefix() {
        let mix = Mix::parse(" reset = 2 , read=5", NAMES).unwrap();
        for n in 0..40 {
            let mut expected = vec![0u64; 3];
            for i in 0..n {
                expected[mix.kind(i)] += 1;
            }
            assert_eq!(mix.counts(n), expected, "n = {n}");
        }
        assert_eq!(mix.counts(7_000_000), vec![5_000_000, 0, 2_000_000]);
        assert_eq!(mix.spec(), "read=5,close=0,reset=2");
        assert!(mix.has(0) && !mix.has(1) && mix.has(2));
    }

    #[test]
    fn only_first_is_all_of_the_first_kind() {
        let mix = Mix::only_first(NAMES);
        assert!((0..5).all(|i| mix.kind(i) == 0));
        assert_eq!(mix.counts(3), vec![3, 0, 0]);
        assert_eq!(mix, Mix::parse("read=1", NAMES).unwrap());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let error = |spec| Mix::parse(spec, NAMES).unwrap_err();
        assert!(error("read=1,nope=2").contains("known: read, close, reset"));
        assert!(error("read").contains("name=weight"));
        assert!(error("read=x").contains("whole number"));
        assert!(error("read=-1").contains("whole number"));
        assert!(error("read=1,read=2").contains("twice"));
        assert!(error("read=0,close=0").contains("add up to 0"));
        assert!(error("").contains("add up to 0"));
        assert!(error("read=100000,close=1").contains("over 100000"));
        assert!(error("read=18446744073709551615,close=1").contains("over"));
    }
}
