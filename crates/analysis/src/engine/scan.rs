//! Recent windows beside the cumulative one: the change-point scan that
//! keeps a late degradation from being diluted by the good data before it.
//!
//! A statistical check judges the data since the analysis started (the
//! cumulative test) *and* every window that starts at an interval boundary
//! and runs to the latest interval. A candidate that turns bad after 50 s of
//! a 60 s stage fails on the window that starts at the onset, as quickly as
//! one bad from the start: detection time after the onset does not grow
//! with how long the stage has run.
//!
//! # False rollbacks
//!
//! A check's alpha `α_c` (the analysis's `alpha` over its `m` statistical
//! checks) is split in two halves:
//!
//! * the cumulative test rejects at `α_c / 2`;
//! * the windows share the other half. A window starts at every `s`-th
//!   interval (`k = s, 2s, 3s, …`, never at the first one, which is the
//!   cumulative test). With `P` intervals planned (the caller says how many
//!   it means to observe, [`super::Analysis::planned`]), the `J = ⌊(P-1)/s⌋`
//!   starts within the plan get `1/(J+1)` of that half each, a start `j > J`
//!   beyond it (samples that came back late) `1/(j(j+1))`; the shares sum to
//!   one. `s` is 1 up to 65 planned intervals, and grows so that `J <= 64`.
//!   Without a plan (`J = 0`) every start gets `1/(j(j+1))`.
//!
//! Each window's test is the same sequential test as the cumulative one, on
//! the window's data only; under the null hypothesis it is a test
//! supermartingale from its start, so by Ville's inequality it ever rejects
//! with probability at most its share. By the union bound the check as a
//! whole rejects a healthy candidate with probability at most
//! `α_c/2 + α_c/2 = α_c`, however often it looks, and the analysis at most
//! `alpha`. (This is a CUSUM over interval boundaries: the largest
//! log-likelihood ratio over the windows ending now, against a threshold
//! that is the same for every start within the plan.)
//!
//! The price: the cumulative test's threshold rises by `ln 2`, and a window
//! needs `ln(2·m·(J+1)/alpha)` of evidence (`≈ 8.9` for `m = 3`,
//! `alpha = 0.01`, a 60 s stage of 5 s intervals) where the cumulative test
//! needs `ln(2·m/alpha)` (`≈ 6.4`).
//!
//! At most [`MAX_WINDOWS`] windows are kept, the most recent starts; an
//! older one stops being judged, which costs power, never validity.

use super::state::Totals;
use crate::PoolWindow;
use jiff::Timestamp;
use std::collections::VecDeque;

/// The most windows judged at once (and starts within a plan).
pub(crate) const MAX_WINDOWS: usize = 64;

/// The windows of one check.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Intervals between starts.
    spacing: usize,
    /// `J`: starts within the planned intervals.
    planned_starts: usize,
    pub(crate) windows: VecDeque<Window>,
}

/// One window: the data from its start to the latest interval.
#[derive(Debug)]
pub(crate) struct Window {
    /// When its first interval started.
    pub start: Timestamp,
    /// Its share of the check's alpha.
    pub share: f64,
    pub candidate: Totals,
    pub stable: Totals,
}

/// The cumulative test's share of the check's alpha.
pub(crate) const CUMULATIVE_SHARE: f64 = 0.5;

impl Scan {
    /// The windows for an analysis that means to observe `planned`
    /// intervals (`None`: unknown).
    pub(crate) fn new(planned: Option<u32>) -> Scan {
        let later = planned.map_or(0, |p| (p as usize).saturating_sub(1));
        let spacing = later.div_ceil(MAX_WINDOWS).max(1);
        Scan { spacing, planned_starts: later / spacing, windows: VecDeque::new() }
    }

    /// The share of the check's alpha of the `j`-th start (from 1).
    pub(crate) fn share(&self, j: usize) -> f64 {
        let (j, big_j) = (j as f64, self.planned_starts as f64);
        let part = if j <= big_j { 1.0 / (big_j + 1.0) } else { 1.0 / (j * (j + 1.0)) };
        (1.0 - CUMULATIVE_SHARE) * part
    }

    /// Opens the window that starts at interval `index` (counted from 0 over
    /// the analysis), if one starts there.
    pub(crate) fn open(&mut self, index: usize, start: Timestamp) {
        if index == 0 || !index.is_multiple_of(self.spacing) {
            return;
        }
        let share = self.share(index / self.spacing);
        self.windows.push_back(Window { start, share, candidate: Totals::default(), stable: Totals::default() });
        if self.windows.len() > MAX_WINDOWS {
            self.windows.pop_front();
        }
    }

    /// Adds one interval's pools to every open window.
    pub(crate) fn add(&mut self, candidate: Option<&PoolWindow>, stable: Option<&PoolWindow>, latency: bool) {
        for window in &mut self.windows {
            if let Some(c) = candidate {
                window.candidate.add(c, latency);
            }
            if let Some(s) = stable {
                window.stable.add(s, latency);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_the_windows_half_within_and_beyond_the_plan() {
        for planned in [None, Some(1), Some(2), Some(12), Some(65), Some(66), Some(720), Some(100_000)] {
            let scan = Scan::new(planned);
            assert!(scan.planned_starts <= MAX_WINDOWS, "{planned:?}");
            let total: f64 = (1..2_000_000).map(|j| scan.share(j)).sum();
            assert!(total <= 1.0 - CUMULATIVE_SHARE + 1e-12, "{planned:?}: {total}");
            assert!(total > 0.5 - 1e-5, "{planned:?}: {total}");
        }
        // A 60 s stage of 5 s intervals: 11 starts within it, equal shares.
        let scan = Scan::new(Some(12));
        assert_eq!((scan.spacing, scan.planned_starts), (1, 11));
        assert_eq!(scan.share(1), scan.share(11));
        assert!(scan.share(12) < scan.share(11));
    }

    #[test]
    fn windows_open_every_spacing_and_keep_the_most_recent() {
        let t = Timestamp::from_second(1_700_000_000).expect("valid");
        let mut scan = Scan::new(Some(641));
        assert_eq!((scan.spacing, scan.planned_starts), (10, 64));
        for i in 0..2000 {
            scan.open(i, t);
        }
        assert_eq!(scan.windows.len(), MAX_WINDOWS);
    }
}
