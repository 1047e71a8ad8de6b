//! The routing state: weight, upstreams, epochs and generation.
//!
//! Readers (every proxied request) take one short `RwLock` read to clone the
//! chosen pool's `Arc`; writers (the admin API) are serialized by a mutex and
//! publish a whole new immutable `Routing` snapshot, so a change such as
//! promote is atomic for every request: a request sees either the state
//! before or the state after, never a mix. In-flight requests keep the pool
//! they picked and finish normally.
//!
//! A pool's stats live in its `Pool`; replacing a pool's upstream builds a new
//! `Pool` with fresh stats and the next epoch of that pool name.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use sluice_core::router_api::{PoolStatsView, PoolView, PoolsStats, StateView, StatsView};

use crate::stats::PoolStats;
use crate::upstream::Upstream;

/// Which of the two pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolName {
    /// The current release.
    Stable,
    /// The release being rolled out.
    Candidate,
}

impl PoolName {
    /// `"stable"` or `"candidate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Candidate => "candidate",
        }
    }
}

pub(crate) struct Pool {
    pub(crate) name: PoolName,
    pub(crate) upstream: Upstream,
    pub(crate) epoch: u64,
    pub(crate) stats: PoolStats,
}

impl Pool {
    fn new(name: PoolName, upstream: Upstream, epoch: u64) -> Arc<Self> {
        Arc::new(Self { name, upstream, epoch, stats: PoolStats::new() })
    }
}

/// One immutable published state.
pub(crate) struct Routing {
    generation: u64,
    weight: u8,
    stable: Arc<Pool>,
    candidate: Option<Arc<Pool>>,
}

/// Last epoch handed out per pool name; only touched by writers.
struct Epochs {
    stable: u64,
    candidate: u64,
}

/// Errors of a requested state change; none of them changes anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Weight outside 0..=100.
    #[error("candidate_weight must be an integer from 0 to 100, got {0}")]
    WeightOutOfRange(u8),
    /// A positive weight, or promote, without a candidate upstream.
    #[error("{0}: no candidate upstream is configured")]
    NoCandidate(&'static str),
}

/// Shared routing state; cheap to clone, safe to use from any task.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    routing: RwLock<Arc<Routing>>,
    writer: Mutex<Epochs>,
}

/// A change of upstreams: `None` leaves a field as it is; `candidate:
/// Some(None)` removes the candidate.
#[derive(Debug, Clone, Default)]
pub struct UpstreamsUpdate {
    /// New stable upstream.
    pub stable: Option<Upstream>,
    /// New candidate upstream, or `Some(None)` to remove it.
    pub candidate: Option<Option<Upstream>>,
}

impl Control {
    pub(crate) fn new(stable: Upstream, candidate: Option<Upstream>, weight: u8) -> Result<Self, ControlError> {
        check_weight(weight, candidate.is_some())?;
        let epochs = Epochs { stable: 1, candidate: u64::from(candidate.is_some()) };
        let routing = Routing {
            generation: 1,
            weight,
            stable: Pool::new(PoolName::Stable, stable, 1),
            candidate: candidate.map(|up| Pool::new(PoolName::Candidate, up, 1)),
        };
        Ok(Self { inner: Arc::new(Inner { routing: RwLock::new(Arc::new(routing)), writer: Mutex::new(epochs) }) })
    }

    fn current(&self) -> Arc<Routing> {
        Arc::clone(&self.inner.routing.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Picks the pool for one request by the current weight.
    pub(crate) fn pick(&self) -> Arc<Pool> {
        let routing = self.inner.routing.read().unwrap_or_else(PoisonError::into_inner);
        match &routing.candidate {
            Some(candidate) if chance(routing.weight) => Arc::clone(candidate),
            _ => Arc::clone(&routing.stable),
        }
    }

    /// Runs `change` on the current state under the writer lock and publishes
    /// the result (with the next generation) if it returns a new state.
    fn update(
        &self,
        change: impl FnOnce(&Routing, &mut Epochs) -> Result<Option<Routing>, ControlError>,
    ) -> Result<StateView, ControlError> {
        let mut epochs = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        let Some(mut next) = change(&current, &mut epochs)? else {
            return Ok(view(&current));
        };
        next.generation = current.generation + 1;
        let next = Arc::new(next);
        *self.inner.routing.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        Ok(view(&next))
    }

    /// The current state.
    pub fn state(&self) -> StateView {
        view(&self.current())
    }

    /// Sets the candidate weight (0..=100). A positive weight needs a
    /// candidate. Setting the weight it already has changes nothing.
    pub fn set_weight(&self, weight: u8) -> Result<StateView, ControlError> {
        self.update(|cur, _| {
            check_weight(weight, cur.candidate.is_some())?;
            if weight == cur.weight {
                return Ok(None);
            }
            Ok(Some(Routing { weight, ..cur.clone_shallow() }))
        })
    }

    /// Replaces the stable and/or candidate upstream. A pool whose upstream
    /// changes starts new stats under the next epoch; an unchanged upstream
    /// keeps its stats. Removing the candidate also sets the weight to 0.
    pub fn set_upstreams(&self, update: UpstreamsUpdate) -> Result<StateView, ControlError> {
        self.update(|cur, epochs| {
            let mut next = cur.clone_shallow();
            let mut changed = false;
            if let Some(up) = update.stable
                && up != cur.stable.upstream
            {
                epochs.stable += 1;
                next.stable = Pool::new(PoolName::Stable, up, epochs.stable);
                changed = true;
            }
            match update.candidate {
                Some(None) if cur.candidate.is_some() => {
                    next.candidate = None;
                    next.weight = 0;
                    changed = true;
                }
                Some(Some(up)) if cur.candidate.as_ref().is_none_or(|c| c.upstream != up) => {
                    epochs.candidate += 1;
                    next.candidate = Some(Pool::new(PoolName::Candidate, up, epochs.candidate));
                    changed = true;
                }
                _ => {}
            }
            Ok(changed.then_some(next))
        })
    }

    /// Makes the candidate upstream the stable one (with new stats and the
    /// next stable epoch), removes the candidate and sets the weight to 0, in
    /// one step.
    pub fn promote(&self) -> Result<StateView, ControlError> {
        self.update(|cur, epochs| {
            let candidate = cur.candidate.as_ref().ok_or(ControlError::NoCandidate("cannot promote"))?;
            epochs.stable += 1;
            Ok(Some(Routing {
                generation: cur.generation,
                weight: 0,
                stable: Pool::new(PoolName::Stable, candidate.upstream.clone(), epochs.stable),
                candidate: None,
            }))
        })
    }

    /// A snapshot of both pools' stats.
    pub fn stats(&self) -> StatsView {
        let routing = self.current();
        StatsView {
            at: jiff::Timestamp::now(),
            generation: routing.generation,
            candidate_weight: routing.weight,
            pools: PoolsStats {
                stable: pool_stats(&routing.stable),
                candidate: routing.candidate.as_deref().map(pool_stats),
            },
        }
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Control").field(&self.state()).finish()
    }
}

impl Routing {
    fn clone_shallow(&self) -> Self {
        Self {
            generation: self.generation,
            weight: self.weight,
            stable: Arc::clone(&self.stable),
            candidate: self.candidate.clone(),
        }
    }
}

fn check_weight(weight: u8, has_candidate: bool) -> Result<(), ControlError> {
    if weight > 100 {
        return Err(ControlError::WeightOutOfRange(weight));
    }
    if weight > 0 && !has_candidate {
        return Err(ControlError::NoCandidate("cannot send traffic to the candidate"));
    }
    Ok(())
}

fn view(routing: &Routing) -> StateView {
    let pool = |p: &Pool| PoolView { upstream: p.upstream.as_str().to_owned(), epoch: p.epoch };
    StateView {
        candidate_weight: routing.weight,
        stable: pool(&routing.stable),
        candidate: routing.candidate.as_deref().map(pool),
        generation: routing.generation,
    }
}

fn pool_stats(pool: &Pool) -> PoolStatsView {
    let snap = pool.stats.snapshot();
    PoolStatsView {
        upstream: pool.upstream.as_str().to_owned(),
        epoch: pool.epoch,
        requests: snap.requests,
        responses_5xx: snap.responses_5xx,
        connect_errors: snap.connect_errors,
        latency_us: snap.summary(),
        latency_histogram: snap.buckets(),
    }
}

/// True with probability `percent`/100, from a per-thread xorshift64*.
fn chance(percent: u8) -> bool {
    match percent {
        0 => false,
        100.. => true,
        p => {
            thread_local! {
                static STATE: Cell<u64> = Cell::new(
                    std::collections::hash_map::RandomState::new().hash_one(0u8) | 1,
                );
            }
            let x = STATE.with(|s| {
                let mut x = s.get();
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                s.set(x);
                x.wrapping_mul(0x2545_F491_4F6C_DD1D)
            });
            // Lemire's multiply-shift maps the high 32 bits onto 0..100.
            ((x >> 32) * 100) >> 32 < u64::from(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(port: u16) -> Upstream {
        Upstream::parse(&format!("http://127.0.0.1:{port}")).expect("valid")
    }

    #[test]
    fn chance_bounds_and_rate() {
        assert!((0..1000).all(|_| !chance(0)));
        assert!((0..1000).all(|_| chance(100)));
        let hits = (0..100_000).filter(|_| chance(30)).count();
        assert!((28_500..31_500).contains(&hits), "{hits}");
        let hits = (0..100_000).filter(|_| chance(1)).count();
        assert!((700..1_300).contains(&hits), "{hits}");
    }

    #[test]
    fn initial_state() {
        let c = Control::new(up(1), None, 0).expect("valid");
        let s = c.state();
        assert_eq!(s.generation, 1);
        assert_eq!(s.stable.epoch, 1);
        assert_eq!(s.candidate, None);
        assert_eq!(
            Control::new(up(1), None, 5).err(),
            Some(ControlError::NoCandidate("cannot send traffic to the candidate"))
        );
    }

    #[test]
    fn weights_validate_and_bump_generation_only_on_change() {
        let c = Control::new(up(1), Some(up(2)), 0).expect("valid");
        assert_eq!(c.set_weight(101), Err(ControlError::WeightOutOfRange(101)));
        assert_eq!(c.set_weight(255), Err(ControlError::WeightOutOfRange(255)));
        assert_eq!(c.state().generation, 1);
        assert_eq!(c.set_weight(30).expect("ok").generation, 2);
        assert_eq!(c.set_weight(30).expect("ok").generation, 2);
        assert_eq!(c.set_weight(100).expect("ok").candidate_weight, 100);
    }

    #[test]
    fn upstream_change_resets_stats_and_bumps_epoch() {
        let c = Control::new(up(1), Some(up(2)), 50).expect("valid");
        c.pick().stats.record_request();
        let s = c.set_upstreams(UpstreamsUpdate { stable: Some(up(1)), candidate: Some(Some(up(3))) }).expect("ok");
        assert_eq!(s.stable.epoch, 1, "same upstream keeps its epoch");
        assert_eq!(s.candidate.as_ref().map(|c| c.epoch), Some(2));
        assert_eq!(s.generation, 2);
        let removed = c.set_upstreams(UpstreamsUpdate { stable: None, candidate: Some(None) }).expect("ok");
        assert_eq!(removed.candidate, None);
        assert_eq!(removed.candidate_weight, 0);
        let back = c.set_upstreams(UpstreamsUpdate { stable: None, candidate: Some(Some(up(3))) }).expect("ok");
        assert_eq!(back.candidate.map(|c| c.epoch), Some(3));
        let stats = c.stats();
        assert_eq!(stats.pools.candidate.map(|p| p.requests), Some(0));
    }

    #[test]
    fn promote_moves_candidate_to_stable() {
        let c = Control::new(up(1), Some(up(2)), 40).expect("valid");
        let s = c.promote().expect("ok");
        assert_eq!(s.stable.upstream, "http://127.0.0.1:2");
        assert_eq!(s.stable.epoch, 2);
        assert_eq!(s.candidate, None);
        assert_eq!(s.candidate_weight, 0);
        assert_eq!(s.generation, 2);
        assert_eq!(c.promote(), Err(ControlError::NoCandidate("cannot promote")));
        assert_eq!(c.state(), s);
    }

    #[test]
    fn pick_follows_weight() {
        let c = Control::new(up(1), Some(up(2)), 0).expect("valid");
        assert!((0..100).all(|_| c.pick().name == PoolName::Stable));
        c.set_weight(100).expect("ok");
        assert!((0..100).all(|_| c.pick().name == PoolName::Candidate));
    }
}
