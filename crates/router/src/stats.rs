//! Per-pool counters and latency histograms, cheap to record on the hot path.
//!
//! Each pool's stats are split into cache-line padded shards; a thread always
//! records into "its" shard, so the tokio workers do not fight over one cache
//! line or one lock. A snapshot sums the shards. Stats are never reset in
//! place: a pool whose upstream changes gets a fresh `PoolStats` and a new
//! epoch (see `state`), so a snapshot is always cumulative within its epoch.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use sluice_core::router_api::LatencySummary;

/// Lowest and highest trackable latency (µs) and significant digits.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 60_000_000;
const SIGFIG: u8 = 2;

/// Upper bound on shards; more threads than this share shards.
const MAX_SHARDS: usize = 64;

#[repr(align(128))]
struct Shard {
    requests: AtomicU64,
    responses_5xx: AtomicU64,
    connect_errors: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// The live, recording side of one pool's stats.
pub(crate) struct PoolStats {
    shards: Box<[Shard]>,
}

/// Summed counters and the merged histogram at one instant.
pub(crate) struct Snapshot {
    pub(crate) requests: u64,
    pub(crate) responses_5xx: u64,
    pub(crate) connect_errors: u64,
    pub(crate) latency_us: Histogram<u64>,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("constant histogram bounds are valid")
}

fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2).clamp(1, MAX_SHARDS)
}

/// This thread's shard index, assigned round-robin on first use.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|cell| {
        let mut index = cell.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Relaxed);
            cell.set(index);
        }
        index
    })
}

impl PoolStats {
    pub(crate) fn new() -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard {
                requests: AtomicU64::new(0),
                responses_5xx: AtomicU64::new(0),
                connect_errors: AtomicU64::new(0),
                latency_us: Mutex::new(new_histogram()),
            })
            .collect();
        Self { shards }
    }

    fn shard(&self) -> &Shard {
        &self.shards[shard_index() % self.shards.len()]
    }

    /// A request was routed to this pool.
    pub(crate) fn record_request(&self) {
        self.shard().requests.fetch_add(1, Relaxed);
    }

    /// The upstream answered with a response head after `latency`.
    pub(crate) fn record_response(&self, status: u16, latency: Duration) {
        let shard = self.shard();
        if status >= 500 {
            shard.responses_5xx.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        shard.latency_us.lock().unwrap_or_else(PoisonError::into_inner).saturating_record(us.max(LOWEST_US));
    }

    /// The upstream could not be reached (or gave no response head): the
    /// router answered 502 itself. Counted as a connect error and a 5xx.
    pub(crate) fn record_connect_error(&self) {
        let shard = self.shard();
        shard.connect_errors.fetch_add(1, Relaxed);
        shard.responses_5xx.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot { requests: 0, responses_5xx: 0, connect_errors: 0, latency_us: new_histogram() };
        for shard in &self.shards {
            snap.requests += shard.requests.load(Relaxed);
            snap.responses_5xx += shard.responses_5xx.load(Relaxed);
            snap.connect_errors += shard.connect_errors.load(Relaxed);
            let hist = shard.latency_us.lock().unwrap_or_else(PoisonError::into_inner);
            snap.latency_us.add(&*hist).expect("shards share the same bounds");
        }
        snap
    }
}

impl Snapshot {
    pub(crate) fn summary(&self) -> LatencySummary {
        let h = &self.latency_us;
        if h.is_empty() {
            return LatencySummary { count: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };
        }
        LatencySummary {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }

    /// `(highest equivalent value of the bucket in µs, count)` for every
    /// non-empty bucket, ascending: subtract two snapshots of one epoch
    /// bucket by bucket to get the interval in between.
    pub(crate) fn buckets(&self) -> Vec<(u64, u64)> {
        self.latency_us.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_counters_and_latency() {
        let stats = PoolStats::new();
        for ms in [1, 2, 3, 100] {
            stats.record_request();
            stats.record_response(200, Duration::from_millis(ms));
        }
        stats.record_request();
        stats.record_response(503, Duration::from_micros(0));
        stats.record_request();
        stats.record_connect_error();
        let snap = stats.snapshot();
        assert_eq!(snap.requests, 6);
        assert_eq!(snap.responses_5xx, 2);
        assert_eq!(snap.connect_errors, 1);
        let summary = snap.summary();
        assert_eq!(summary.count, 5);
        assert!((99_000..=101_000).contains(&summary.max), "{summary:?}");
        assert!((1_990..=2_010).contains(&summary.p50), "{summary:?}");
        let buckets = snap.buckets();
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 5);
        assert_eq!(buckets[0], (1, 1), "0µs is clamped to 1µs");
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn records_from_many_threads_sum_up() {
        let stats = PoolStats::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        stats.record_request();
                        stats.record_response(200, Duration::from_micros(250));
                    }
                });
            }
        });
        let snap = stats.snapshot();
        assert_eq!(snap.requests, 8000);
        assert_eq!(snap.summary().count, 8000);
    }

    #[test]
    fn empty_summary_is_zero() {
        let snap = PoolStats::new().snapshot();
        assert_eq!(snap.summary().count, 0);
        assert!(snap.buckets().is_empty());
    }

    #[test]
    fn saturates_beyond_sixty_seconds() {
        let stats = PoolStats::new();
        stats.record_response(200, Duration::from_secs(3600));
        assert!(stats.snapshot().summary().max >= HIGHEST_US);
    }
}
