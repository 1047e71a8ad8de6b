//! A latency histogram as sorted `(value_us, count)` buckets.
//!
//! The one representation of a latency distribution in sluice: what the
//! embedded router exports, what an interval records and what the latency
//! checks judge. Every operation keeps the buckets sorted by value, with no
//! duplicate values and no empty buckets; a histogram read from a hand-edited
//! record that breaks this is normalised before it is used, never trusted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Latencies in microseconds, as sorted `(bucket value, count)` pairs.
///
/// Produced from the embedded router's HDR histogram (one pair per recorded
/// bucket), or from Prometheus/CloudWatch buckets. Two snapshots of the same
/// source subtract bucket by bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Histogram {
    pub buckets: Vec<(u64, u64)>,
}

impl Histogram {
    /// Builds a histogram from pairs in any order, merging equal values.
    /// Empty buckets are dropped.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut pairs: Vec<(u64, u64)> = pairs.into_iter().filter(|&(_, count)| count > 0).collect();
        pairs.sort_unstable_by_key(|&(value, _)| value);
        let mut buckets: Vec<(u64, u64)> = Vec::with_capacity(pairs.len());
        for (value, count) in pairs {
            match buckets.last_mut() {
                Some((last, total)) if *last == value => *total = total.saturating_add(count),
                _ => buckets.push((value, count)),
            }
        }
        Self { buckets }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, c)| c).sum()
    }

    /// Whether there is no observation at all.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|&(_, c)| c == 0)
    }

    /// The value at quantile `q` (0..=1), or `None` when empty.
    ///
    /// Nearest rank: the smallest bucket value with at least `ceil(q * n)`
    /// observations at or below it (`q = 0` gives the minimum, `q = 1` the
    /// maximum). `q` outside 0..=1 is clamped; NaN gives `None`.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if q.is_nan() {
            return None;
        }
        let hist = self.normalized();
        let n = hist.count();
        if n == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // ceil(q * n) computed in f64 is exact enough for any realistic n; the
        // small epsilon keeps 0.99 * 100 at rank 99 despite rounding.
        let rank = ((q * n as f64) - 1e-9).ceil().clamp(1.0, n as f64) as u64;
        let mut seen = 0u64;
        for &(value, count) in &hist.buckets {
            seen += count;
            if seen >= rank {
                return Some(value);
            }
        }
        hist.buckets.last().map(|&(value, _)| value)
    }

    /// Observations with a value strictly above `value`.
    pub fn count_above(&self, value: u64) -> u64 {
        self.buckets.iter().filter(|&&(v, _)| v > value).map(|&(_, c)| c).sum()
    }

    /// What was added since `earlier` (bucket-wise, never below zero).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let now = self.normalized();
        let before = earlier.normalized();
        let mut j = 0;
        let mut buckets = Vec::with_capacity(now.buckets.len());
        for &(value, count) in &now.buckets {
            while j < before.buckets.len() && before.buckets[j].0 < value {
                j += 1;
            }
            let old = match before.buckets.get(j) {
                Some(&(v, c)) if v == value => c,
                _ => 0,
            };
            let added = count.saturating_sub(old);
            if added > 0 {
                buckets.push((value, added));
            }
        }
        Histogram { buckets }
    }

    /// Adds another histogram's observations.
    pub fn merge(&mut self, other: &Histogram) {
        if other.is_empty() {
            return;
        }
        let mine = std::mem::take(&mut self.buckets);
        if !(other.is_normalized() && Histogram::is_normalized_slice(&mine)) {
            *self = Histogram::from_pairs(mine.into_iter().chain(other.buckets.iter().copied()));
            return;
        }
        // Both sorted: one linear merge.
        let theirs = &other.buckets;
        let mut merged = Vec::with_capacity(mine.len().max(theirs.len()));
        let (mut i, mut j) = (0, 0);
        while i < mine.len() || j < theirs.len() {
            match (mine.get(i), theirs.get(j)) {
                (Some(&(a, ca)), Some(&(b, cb))) if a == b => {
                    merged.push((a, ca.saturating_add(cb)));
                    i += 1;
                    j += 1;
                }
                (Some(&(a, ca)), Some(&(b, _))) if a < b => {
                    merged.push((a, ca));
                    i += 1;
                }
                (Some(&pair), None) => {
                    merged.push(pair);
                    i += 1;
                }
                (_, Some(&pair)) => {
                    merged.push(pair);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
    }

    /// Sorted by value, no duplicate values, no empty buckets.
    pub fn is_normalized(&self) -> bool {
        Histogram::is_normalized_slice(&self.buckets)
    }

    fn is_normalized_slice(buckets: &[(u64, u64)]) -> bool {
        buckets.windows(2).all(|w| w[0].0 < w[1].0) && buckets.iter().all(|&(_, c)| c > 0)
    }

    /// This histogram with its invariant restored, without copying when it holds.
    pub(crate) fn normalized(&self) -> Cow<'_, Histogram> {
        if self.is_normalized() {
            Cow::Borrowed(self)
        } else {
            Cow::Owned(Histogram::from_pairs(self.buckets.iter().copied()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn from_pairs_sorts_merges_and_drops_empty() {
        let h = Histogram::from_pairs([(300, 1), (100, 2), (300, 4), (200, 0)]);
        assert_eq!(h.buckets, vec![(100, 2), (300, 5)]);
        assert_eq!(h.count(), 7);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        // 1..=100 once each.
        let h = Histogram::from_pairs((1..=100).map(|v| (v, 1)));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(0.995), Some(100));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(7.0), Some(100));
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(Histogram::default().quantile(0.5), None);
        let skew = Histogram::from_pairs([(10, 98), (5_000, 2)]);
        assert_eq!(skew.quantile(0.98), Some(10));
        assert_eq!(skew.quantile(0.99), Some(5_000));
    }

    #[test]
    fn quantile_of_unsorted_buckets_is_still_right() {
        let h = Histogram { buckets: vec![(300, 1), (100, 1), (200, 1)] };
        assert_eq!(h.quantile(0.5), Some(200));
    }

    #[test]
    fn since_subtracts_and_saturates() {
        let before = Histogram::from_pairs([(100, 2), (200, 5)]);
        let after = Histogram::from_pairs([(100, 3), (200, 4), (400, 1)]);
        assert_eq!(after.since(&before).buckets, vec![(100, 1), (400, 1)]);
        assert_eq!(after.since(&Histogram::default()), after);
    }

    #[test]
    fn count_above_is_strict() {
        let h = Histogram::from_pairs([(100, 2), (200, 5), (300, 1)]);
        assert_eq!(h.count_above(200), 1);
        assert_eq!(h.count_above(199), 6);
    }

    fn pairs() -> impl Strategy<Value = Vec<(u64, u64)>> {
        prop::collection::vec((0u64..50, 0u64..20), 0..30)
    }

    proptest! {
        #[test]
        fn merge_adds_counts_and_stays_normalized(a in pairs(), b in pairs()) {
            let mut h = Histogram::from_pairs(a.clone());
            let other = Histogram { buckets: b.clone() };
            h.merge(&other);
            prop_assert!(h.is_normalized());
            let total: u64 = a.iter().chain(b.iter()).map(|p| p.1).sum();
            prop_assert_eq!(h.count(), total);
            prop_assert_eq!(h, Histogram::from_pairs(a.into_iter().chain(b)));
        }

        #[test]
        fn since_undoes_merge(a in pairs(), b in pairs()) {
            let earlier = Histogram::from_pairs(a);
            let added = Histogram::from_pairs(b);
            let mut later = earlier.clone();
            later.merge(&added);
            prop_assert_eq!(later.since(&earlier), added);
        }

        #[test]
        fn quantile_is_monotone(a in pairs(), q1 in 0.0f64..=1.0, q2 in 0.0f64..=1.0) {
            let h = Histogram::from_pairs(a);
            let (lo, hi) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            prop_assert!(h.quantile(lo) <= h.quantile(hi));
        }
    }
}
