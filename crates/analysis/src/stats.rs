//! The statistics behind the checks: the normal distribution, fixed-sample
//! tests (two proportions, Mann-Whitney U) and the sequential tests that let
//! an analysis look after every interval without raising its false-fail rate.
//!
//! Pure functions of counts; no I/O, no randomness, no allocation beyond what
//! a test needs. Nothing here knows about checks or configs.
//!
//! # Sequential tests
//!
//! An analysis looks at the data after every interval and may stop at any
//! look. A fixed-sample p-value checked that often would reject a healthy
//! candidate far more often than alpha. The tests here are *test
//! supermartingales*: under the null hypothesis their likelihood ratio `M_t`
//! has expectation at most 1 at every look, so by Ville's inequality
//! `P(M_t >= 1/alpha for some t) <= alpha`, however often and however long one
//! looks. `1/M_t` (capped at 1) is an always-valid p-value.
//!
//! * [`BernoulliMixture`]: H0 `p <= p0` for a rate of "bad" events (errors,
//!   or requests slower than a latency limit). A mixture of Wald likelihood
//!   ratios against [`ALTERNATIVE_MULTIPLIERS`] alternatives `p1 > p0`, equal
//!   weights. Exact for independent requests: each component is a
//!   supermartingale under every `p <= p0`, so the mixture is too.
//! * [`sequential_rate_excess`]: H0 `p_cand <= p_stable + delta` for two
//!   error rates, the comparison with stable. A mixture likelihood over the
//!   maximum likelihood under the null (universal inference): exact for
//!   independent requests at any rate, however stable's rate is unknown.
//! * [`normal_mixture_log_lr`]: the one-sided mixture SPRT (mSPRT, Robbins;
//!   Johari et al. 2017) for an asymptotically normal estimate, mixing the
//!   alternative effect over a half-normal prior of scale `tau`. Used for the
//!   latency comparison, on the Mann-Whitney effect (and by
//!   [`sequential_two_proportion`], the error-rate comparison's former
//!   test); valid as the normal approximation is, which is why comparisons
//!   need `min_samples` before they may decide.

use crate::Histogram;
use std::f64::consts::{FRAC_2_SQRT_PI, LN_2, PI, SQRT_2};

// ---------------------------------------------------------------------------
// The normal distribution.

/// The error function.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return -erf(-x);
    }
    if x < 2.5 { erf_series(x) } else { 1.0 - erfcx_cf(x) * (-x * x).exp() }
}

/// The complementary error function, `1 - erf(x)`, accurate in the tail.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 { 1.0 - erf_series(x) } else { erfcx_cf(x) * (-x * x).exp() }
}

/// The scaled complementary error function, `exp(x²) · erfc(x)`, for `x >= 0`
/// without overflow (it tends to `1 / (x √π)`).
pub fn erfcx(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 2.5 { (x * x).exp() * erfc(x) } else { erfcx_cf(x) }
}

/// `erf(x) = 2/√π · exp(-x²) · Σ 2ⁿ x²ⁿ⁺¹ / (1·3·…·(2n+1))`: positive terms,
/// no cancellation, for `0 <= x < 2.5`.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut k = 1.0;
    while term > sum * 1e-17 {
        term *= 2.0 * x2 / (2.0 * k + 1.0);
        sum += term;
        k += 1.0;
    }
    FRAC_2_SQRT_PI * (-x2).exp() * sum
}

/// `exp(x²) · erfc(x)` by its continued fraction (modified Lentz), `x >= 2.5`:
/// `erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`.
fn erfcx_cf(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..500 {
        let a = f64::from(k) / 2.0;
        d = x + a * d;
        if d == 0.0 {
            d = TINY;
        }
        d = 1.0 / d;
        c = x + a / c;
        if c == 0.0 {
            c = TINY;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    1.0 / (f * PI.sqrt())
}

/// The standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// `P(Z <= x)` for a standard normal `Z`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

/// `P(Z > x)`, accurate far into the upper tail.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / SQRT_2)
}

/// `ln P(Z <= x)`, finite far into the lower tail.
pub fn normal_log_cdf(x: f64) -> f64 {
    if x > 0.0 {
        (-normal_sf(x)).ln_1p()
    } else if x >= -5.0 {
        normal_cdf(x).ln()
    } else {
        (0.5 * erfcx(-x / SQRT_2)).ln() - 0.5 * x * x
    }
}

/// The `p` quantile of the standard normal (`-inf` at 0, `+inf` at 1, NaN
/// outside 0..=1): Acklam's rational approximation refined by one Halley step.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        return -normal_quantile(1.0 - p);
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let x = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step against the accurate CDF.
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

// ---------------------------------------------------------------------------
// Fixed-sample tests (for evidence and reference; the engine decides with the
// sequential tests below).

/// A z statistic with its one-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZTest {
    pub z: f64,
    /// `P(Z >= z)`: small when the first sample is worse.
    pub p_value: f64,
}

/// One-sided two-proportion z-test of H0 `p1 - p2 <= delta` against
/// H1 `p1 - p2 > delta`, with `x` events out of `n` trials per sample.
///
/// With `delta == 0` the variance is pooled (the classic test, as
/// statsmodels' `proportions_ztest`); otherwise it is the unpooled Wald
/// variance (statsmodels' `test_proportions_2indep(method="wald")`). `None`
/// when a sample is empty or the variance is zero.
pub fn two_proportion_z_test(x1: u64, n1: u64, x2: u64, n2: u64, delta: f64) -> Option<ZTest> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1.min(n1) as f64 / n1f, x2.min(n2) as f64 / n2f);
    let var = if delta == 0.0 {
        let p = (x1.min(n1) + x2.min(n2)) as f64 / (n1f + n2f);
        p * (1.0 - p) * (1.0 / n1f + 1.0 / n2f)
    } else {
        p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f
    };
    if var.is_nan() || var <= 0.0 {
        return None;
    }
    let z = (p1 - p2 - delta) / var.sqrt();
    Some(ZTest { z, p_value: normal_sf(z) })
}

/// The Mann-Whitney U statistic of sample `x` against sample `y`, with what
/// its normal approximation needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// `U₁`: pairs with `x > y`, plus half the tied pairs.
    pub u: f64,
    pub n_x: u64,
    pub n_y: u64,
    /// `Σ (t³ - t)` over groups of tied values.
    pub tie_term: f64,
}

impl MannWhitney {
    /// `E[U]` under H0 (same distribution): `n_x·n_y / 2`.
    pub fn mean(&self) -> f64 {
        self.n_x as f64 * self.n_y as f64 / 2.0
    }

    /// `Var[U]` under H0 with the tie correction:
    /// `n_x·n_y/12 · ((N+1) - Σ(t³-t) / (N(N-1)))`.
    pub fn variance(&self) -> f64 {
        let (nx, ny) = (self.n_x as f64, self.n_y as f64);
        let n = nx + ny;
        if n < 2.0 {
            return 0.0;
        }
        (nx * ny / 12.0 * ((n + 1.0) - self.tie_term / (n * (n - 1.0)))).max(0.0)
    }

    /// The effect `P(X > Y) + P(X = Y)/2` estimated by `U / (n_x·n_y)`; 0.5
    /// when neither tends to be larger.
    pub fn effect(&self) -> f64 {
        self.u / (self.n_x as f64 * self.n_y as f64)
    }

    /// The standardised statistic, with or without the continuity correction
    /// of 0.5 towards the mean (scipy's `use_continuity`).
    pub fn z(&self, continuity: bool) -> f64 {
        let sd = self.variance().sqrt();
        let num = self.u - self.mean() - if continuity { 0.5 } else { 0.0 };
        if sd > 0.0 { num / sd } else { 0.0 }
    }

    /// One-sided p-value for "x tends to be larger than y", by the normal
    /// approximation; equals scipy's
    /// `mannwhitneyu(x, y, alternative="greater", method="asymptotic")`.
    pub fn p_greater(&self, continuity: bool) -> f64 {
        if self.variance() > 0.0 { normal_sf(self.z(continuity)) } else { 1.0 }
    }
}

/// Mann-Whitney U of `x` against `y` from weighted values `(value, count)`,
/// in any order; `None` when either sample is empty.
pub fn mann_whitney_weighted(x: &[(f64, u64)], y: &[(f64, u64)]) -> Option<MannWhitney> {
    let sorted = |s: &[(f64, u64)]| {
        let mut v: Vec<(f64, u64)> = s.iter().copied().filter(|&(v, c)| c > 0 && !v.is_nan()).collect();
        if !v.is_sorted_by(|a, b| a.0 <= b.0) {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        v
    };
    let (x, y) = (sorted(x), sorted(y));
    let n_x: u64 = x.iter().map(|p| p.1).sum();
    let n_y: u64 = y.iter().map(|p| p.1).sum();
    if n_x == 0 || n_y == 0 {
        return None;
    }
    let (mut i, mut j) = (0, 0);
    let (mut u, mut tie_term, mut y_below) = (0.0f64, 0.0f64, 0.0f64);
    while i < x.len() || j < y.len() {
        let value = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        let mut cx = 0u64;
        while let Some(&(v, c)) = x.get(i) {
            if v != value {
                break;
            }
            cx += c;
            i += 1;
        }
        let mut cy = 0u64;
        while let Some(&(v, c)) = y.get(j) {
            if v != value {
                break;
            }
            cy += c;
            j += 1;
        }
        let (cxf, cyf) = (cx as f64, cy as f64);
        u += cxf * (y_below + cyf / 2.0);
        let t = cxf + cyf;
        tie_term += t * t * t - t;
        y_below += cyf;
    }
    Some(MannWhitney { u, n_x, n_y, tie_term })
}

/// Mann-Whitney U of plain samples (for tests and small data).
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let w = |s: &[f64]| s.iter().map(|&v| (v, 1)).collect::<Vec<_>>();
    mann_whitney_weighted(&w(x), &w(y))
}

/// Mann-Whitney U of two latency histograms, the first one's values divided
/// by `x_scale` first (`x_scale = 1.2` asks "is `x` slower than `y` by more
/// than 20 %?"). Ties are equal bucket values after scaling.
pub fn mann_whitney_histograms(x: &Histogram, y: &Histogram, x_scale: f64) -> Option<MannWhitney> {
    mann_whitney_allowing(x, y, x_scale, 0.0)
}

/// Mann-Whitney U of two latency histograms, allowing the first to be
/// slower by a factor `x_scale` *or* by `slack` (in the histograms' unit),
/// whichever allows more: each value `v` of `x` becomes
/// `min(v / x_scale, v - slack)`, the inverse of `s -> max(s·x_scale, s + slack)`.
/// So "x is no slower than `max(1.2·y, y + 10ms)`" is "the transformed x is
/// not stochastically larger than y".
pub fn mann_whitney_allowing(x: &Histogram, y: &Histogram, x_scale: f64, slack: f64) -> Option<MannWhitney> {
    let scale = if x_scale > 0.0 && x_scale.is_finite() { x_scale } else { 1.0 };
    let slack = if slack.is_finite() { slack.max(0.0) } else { 0.0 };
    let xs: Vec<(f64, u64)> = x.buckets.iter().map(|&(v, c)| ((v as f64 / scale).min(v as f64 - slack), c)).collect();
    let ys: Vec<(f64, u64)> = y.buckets.iter().map(|&(v, c)| (v as f64, c)).collect();
    mann_whitney_weighted(&xs, &ys)
}

// ---------------------------------------------------------------------------
// Sequential tests.

/// The alternatives of [`BernoulliMixture`], as multiples of the limit `p0`
/// (each capped below 1, see [`BernoulliMixture::alternatives`]).
pub const ALTERNATIVE_MULTIPLIERS: [f64; 5] = [1.5, 2.0, 3.0, 5.0, 10.0];

/// Mixture SPRT for a Bernoulli rate: H0 `p <= p0` against `p > p0`.
///
/// `M = Σ_k w_k Π_i (p_k/p0)^{x_i} ((1-p_k)/(1-p0))^{1-x_i}` with equal
/// weights over `p_k = min(m_k·p0, 1 - (1-p0)/m_k)`, `m_k` in
/// [`ALTERNATIVE_MULTIPLIERS`]. Each factor has expectation
/// `p/p0·p_k + (1-p)(1-p_k)/(1-p0) <= 1` whenever `p <= p0`, so `M` is a test
/// supermartingale for the whole composite null: rejecting when
/// `M >= 1/alpha` keeps the false-reject rate at most alpha for any number
/// of looks. It depends on the data only through the counts.
#[derive(Clone, Debug, PartialEq)]
pub struct BernoulliMixture {
    p0: f64,
    alternatives: Vec<f64>,
}

impl BernoulliMixture {
    pub fn new(p0: f64) -> Self {
        Self::with_multipliers(p0, &ALTERNATIVE_MULTIPLIERS)
    }

    /// The same test over other alternatives, `multipliers` of `p0` (each
    /// above 1, capped the same way): nearer ones give it power just
    /// beyond the limit, at a little of its power far beyond it.
    pub fn with_multipliers(p0: f64, multipliers: &[f64]) -> Self {
        let p0 = if p0.is_nan() { 0.0 } else { p0.clamp(0.0, 1.0) };
        let alternatives = if p0 > 0.0 && p0 < 1.0 {
            multipliers.iter().filter(|&&m| m > 1.0).map(|&m| (m * p0).min(1.0 - (1.0 - p0) / m)).collect()
        } else {
            Vec::new()
        };
        Self { p0, alternatives }
    }

    /// The limit of the null hypothesis.
    pub fn p0(&self) -> f64 {
        self.p0
    }

    /// The alternative rates mixed over.
    pub fn alternatives(&self) -> &[f64] {
        &self.alternatives
    }

    /// `ln M` after `events` out of `trials` (events above trials count as
    /// trials). With `p0 = 0` any event is infinitely strong evidence; with
    /// `p0 = 1` nothing is.
    pub fn log_lr(&self, events: u64, trials: u64) -> f64 {
        let x = events.min(trials) as f64;
        let rest = (trials - events.min(trials)) as f64;
        if self.p0 <= 0.0 {
            return if x > 0.0 { f64::INFINITY } else { 0.0 };
        }
        if self.p0 >= 1.0 {
            return f64::NEG_INFINITY;
        }
        let ln_w = -(self.alternatives.len() as f64).ln();
        let terms: Vec<f64> = self
            .alternatives
            .iter()
            .map(|&p1| ln_w + x * (p1 / self.p0).ln() + rest * ((1.0 - p1) / (1.0 - self.p0)).ln())
            .collect();
        log_sum_exp(&terms)
    }
}

/// The typical number of observations the [`BernoulliMixture`] test needs
/// to reject `p <= p0` at level `alpha` when the true rate is `p`:
/// `(ln(1/alpha) + ln K) / D(p)`, where `K` is the number of alternatives and
/// `D(p) = max_k p·ln(p_k/p0) + (1-p)·ln((1-p_k)/(1-p0))` the expected growth
/// of the best component's log-likelihood ratio per observation. `None` when
/// the test cannot reject (`p` not above `p0`, or `p0` outside (0, 1)).
///
/// This is the `n_test` of the time-to-detect formula in the engine docs.
pub fn expected_samples_to_reject(p: f64, p0: f64, alpha: f64) -> Option<f64> {
    let test = BernoulliMixture::new(p0);
    if test.alternatives.is_empty() || !(p > test.p0 && p <= 1.0 && alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let gain = |p1: f64| {
        let bad = p * (p1 / test.p0).ln();
        let good = if p < 1.0 { (1.0 - p) * ((1.0 - p1) / (1.0 - test.p0)).ln() } else { 0.0 };
        bad + good
    };
    let drift = test.alternatives.iter().map(|&p1| gain(p1)).fold(f64::NEG_INFINITY, f64::max);
    (drift > 0.0).then(|| (-alpha.ln() + (test.alternatives.len() as f64).ln()) / drift)
}

/// `ln` of the one-sided normal mixture likelihood ratio (mSPRT) for an
/// estimate `d` of `θ - θ0` with variance `v`, mixing `θ - θ0 > 0` over a
/// half-normal prior of scale `tau`:
///
/// `Λ = 2·√(v/(v+τ²)) · exp(τ²d²/(2v(v+τ²))) · Φ(τd/√(v(v+τ²)))`.
///
/// Negative `d` (the data favour H0) gives a ratio below 1. `v <= 0` or
/// non-finite input gives 0 (no evidence).
pub fn normal_mixture_log_lr(d: f64, v: f64, tau: f64) -> f64 {
    if !(v > 0.0 && tau > 0.0 && d.is_finite() && v.is_finite()) {
        return 0.0;
    }
    let s = v + tau * tau;
    let z = tau * d / (v * s).sqrt();
    let base = LN_2 + 0.5 * (v / s).ln();
    if z >= 0.0 {
        base + 0.5 * z * z + normal_log_cdf(z)
    } else {
        // exp(z²/2)·Φ(z) = erfcx(-z/√2)/2, without overflow or underflow.
        base + (0.5 * erfcx(-z / SQRT_2)).ln()
    }
}

/// The state of one sequential test after a look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sequential {
    /// The test statistic for people: z for normal tests, the observed rate
    /// for Bernoulli tests.
    pub statistic: f64,
    /// `ln M`, the log likelihood ratio of the mixture.
    pub log_lr: f64,
}

impl Sequential {
    /// The always-valid p-value `min(1, 1/M)`.
    pub fn p_value(&self) -> f64 {
        (-self.log_lr).exp().min(1.0)
    }

    /// Whether the test rejects H0 at level `alpha`: `M >= 1/alpha`.
    pub fn rejects(&self, alpha: f64) -> bool {
        alpha > 0.0 && self.log_lr >= -alpha.ln()
    }
}

/// Mixing scale of the error-rate comparison: excess error rates of a few
/// percentage points over the tolerance are what it is tuned to catch.
pub const COMPARE_ERROR_TAU: f64 = 0.03;

/// Mixing scale of the latency comparison, on the Mann-Whitney effect
/// `P(candidate slower) - 1/2`.
pub const COMPARE_LATENCY_TAU: f64 = 0.1;

/// Sequential test of H0 `p_cand - p_stable <= delta` on cumulative counts,
/// by a normal approximation (the engine uses [`sequential_rate_excess`],
/// which is exact and needs less than half the requests at low rates; this
/// stays for its statistic and for comparison).
///
/// The estimate `d = p̂_c - p̂_s - delta` is judged by [`normal_mixture_log_lr`]
/// with the unpooled variance evaluated at Agresti-Caffo adjusted rates
/// `(x+1)/(n+2)`, so that zero errors in both pools still has a variance.
/// The statistic is `z = d/√v`.
pub fn sequential_two_proportion(xc: u64, nc: u64, xs: u64, ns: u64, delta: f64) -> Option<Sequential> {
    if nc == 0 || ns == 0 {
        return None;
    }
    let rate = |x: u64, n: u64| x.min(n) as f64 / n as f64;
    let adjusted = |x: u64, n: u64| (x.min(n) as f64 + 1.0) / (n as f64 + 2.0);
    let (ac, as_) = (adjusted(xc, nc), adjusted(xs, ns));
    let v = ac * (1.0 - ac) / nc as f64 + as_ * (1.0 - as_) / ns as f64;
    let d = rate(xc, nc) - rate(xs, ns) - delta;
    Some(Sequential { statistic: d / v.sqrt(), log_lr: normal_mixture_log_lr(d, v, COMPARE_ERROR_TAU) })
}

/// The candidate's alternatives of [`sequential_rate_excess`], as multiples
/// of the tolerance (the excesses that matter, most of the prior's weight),
/// and the high rates that catch a candidate far worse (the rest).
pub const EXCESS_MULTIPLIERS: [f64; 5] = [1.5, 2.0, 3.0, 5.0, 10.0];
/// Ratio of the geometric grid from the highest multiple of the tolerance to
/// 95 % (see [`EXCESS_MULTIPLIERS`]).
const EXCESS_HIGH_RATIO: f64 = 1.6;
/// The prior weight of [`EXCESS_MULTIPLIERS`] (the rest on the grid above).
const EXCESS_NEAR_WEIGHT: f64 = 0.8;
/// The prior weight of "stable has no errors" in [`sequential_rate_excess`];
/// the rest is spread over a geometric grid of rates.
const STABLE_ZERO_WEIGHT: f64 = 1.0 / 3.0;

/// `x·ln p + (n-x)·ln(1-p)` with `0·ln 0 = 0`.
fn bernoulli_log_likelihood(x: f64, n: f64, p: f64) -> f64 {
    let bad = if x > 0.0 { x * p.ln() } else { 0.0 };
    let good = if n - x > 0.0 { (n - x) * (-p).ln_1p() } else { 0.0 };
    bad + good
}

/// The derivative of [`bernoulli_log_likelihood`] in `p`.
fn bernoulli_score(x: f64, n: f64, p: f64) -> f64 {
    let bad = if x > 0.0 { x / p } else { 0.0 };
    let good = if n - x > 0.0 { (n - x) / (1.0 - p) } else { 0.0 };
    bad - good
}

/// `ln Σ w·exp(ll(p))` over a prior of `(rate, weight)`.
fn log_marginal(x: f64, n: f64, prior: impl Iterator<Item = (f64, f64)>) -> f64 {
    let terms: Vec<f64> = prior.map(|(p, w)| w.ln() + bernoulli_log_likelihood(x, n, p)).collect();
    log_sum_exp(&terms)
}

/// The candidate's prior in [`sequential_rate_excess`] for a tolerance.
fn excess_alternatives(delta: f64) -> impl Iterator<Item = (f64, f64)> {
    let base = delta.max(0.001);
    let near = EXCESS_MULTIPLIERS
        .iter()
        .map(move |&c| ((c * base).min(1.0 - (1.0 - base) / c), EXCESS_NEAR_WEIGHT / EXCESS_MULTIPLIERS.len() as f64));
    let top = 10.0 * base;
    let steps = if top < 0.95 { ((0.95 / top).ln() / EXCESS_HIGH_RATIO.ln()).floor() as i32 } else { 0 };
    let w = (1.0 - EXCESS_NEAR_WEIGHT) / f64::from(steps.max(1));
    let high = (1..=steps).map(move |k| (top * EXCESS_HIGH_RATIO.powi(k), w));
    near.chain(high)
}

/// Stable's prior in [`sequential_rate_excess`]: no errors at all, or a rate
/// on a geometric grid from 0.05 % to 95 % (ratio 1.25).
fn stable_prior() -> impl Iterator<Item = (f64, f64)> {
    const LOW: f64 = 0.0005;
    const RATIO: f64 = 1.25;
    let steps = ((0.95f64 / LOW).ln() / RATIO.ln()).floor() as i32 + 1;
    let w = (1.0 - STABLE_ZERO_WEIGHT) / f64::from(steps);
    std::iter::once((0.0, STABLE_ZERO_WEIGHT)).chain((0..steps).map(move |k| (LOW * RATIO.powi(k), w)))
}

/// Sequential test of H0 `p_cand <= p_stable + delta` on cumulative counts,
/// exact for independent requests at any sample size: a likelihood ratio
/// whose numerator mixes the two pools' likelihoods over a fixed prior and
/// whose denominator is the likelihood's maximum over the whole null
/// hypothesis (Wasserman, Ramdas and Balakrishnan 2020, "universal
/// inference", with a mixture in place of the plug-in).
///
/// `M = [Σ_k w_k L_c(a_k)] · [Σ_j v_j L_s(b_j)] / sup_{p_c <= p_s + delta} L_c(p_c) L_s(p_s)`.
///
/// For every `(p_c, p_s)` in the null the numerator over `L_c(p_c)
/// L_s(p_s)` is a nonnegative martingale of mean 1 (a mixture of likelihood
/// ratios), and the denominator is at least `L_c(p_c) L_s(p_s)`; so `M` is
/// below a martingale of mean 1 and, by Ville's inequality, ever reaches
/// `1/alpha` with probability at most alpha, however often one looks and
/// whatever stable's rate. It needs no normal approximation, so it holds at
/// rates near zero, where the two-proportion z statistic does not.
///
/// The candidate's prior puts 80 % of its weight on `delta·{1.5, 2, 3, 5,
/// 10}` (the excesses that take evidence to see) and the rest on a grid
/// from there to 95 % (ratio 1.6);
/// stable's a third on "no errors" (what a healthy stable usually shows) and
/// the rest on a grid of rates. What the test pays for not knowing stable's
/// rate is `ln 3` when stable has no errors, about `ln 51` otherwise; in
/// return its evidence grows at the full rate `D(p_c || p_s + delta)` per
/// candidate request, where a test that must estimate stable's variance
/// grows far slower at low rates.
///
/// One more candidate error beyond the tolerance never lowers the evidence
/// for tolerances from half a point (checked on a million random cases);
/// with a smaller tolerance and an erring stable the alternatives sit far
/// from the candidate's rate and it can dip a little (validity unchanged).
///
/// The statistic is `z = (p̂_c - p̂_s - delta) / √v`, as
/// [`sequential_two_proportion`]'s, for people.
pub fn sequential_rate_excess(xc: u64, nc: u64, xs: u64, ns: u64, delta: f64) -> Option<Sequential> {
    let statistic = sequential_two_proportion(xc, nc, xs, ns, delta)?.statistic;
    let delta = if delta.is_nan() { 0.0 } else { delta.max(0.0) };
    if delta >= 1.0 {
        return Some(Sequential { statistic, log_lr: f64::NEG_INFINITY });
    }
    let (xc, nc) = (xc.min(nc) as f64, nc as f64);
    let (xs, ns) = (xs.min(ns) as f64, ns as f64);
    let numerator = log_marginal(xc, nc, excess_alternatives(delta)) + log_marginal(xs, ns, stable_prior());
    let (rc, rs) = (xc / nc, xs / ns);
    let denominator = if rc <= rs + delta {
        bernoulli_log_likelihood(xc, nc, rc) + bernoulli_log_likelihood(xs, ns, rs)
    } else {
        // On the boundary p_c = p_s + delta: the log-likelihood is concave in
        // p_s, its maximum between stable's rate and the candidate's less delta.
        let score = |b: f64| bernoulli_score(xc, nc, b + delta) + bernoulli_score(xs, ns, b);
        let (mut lo, mut hi) = (rs, rc - delta);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if score(mid) > 0.0 { lo = mid } else { hi = mid }
        }
        let at = |b: f64| bernoulli_log_likelihood(xc, nc, b + delta) + bernoulli_log_likelihood(xs, ns, b);
        at(lo).max(at(hi)).max(at(0.5 * (lo + hi)))
    };
    Some(Sequential { statistic, log_lr: numerator - denominator })
}

/// Sequential test of H0 "the candidate's latencies, divided by `scale`, are
/// not stochastically larger than stable's", on cumulative histograms: the
/// Mann-Whitney effect `U/(n_c·n_s) - 1/2` with its tie-corrected null
/// variance, judged by [`normal_mixture_log_lr`]. The statistic is the z of U
/// (no continuity correction).
pub fn sequential_mann_whitney(
    candidate: &Histogram,
    stable: &Histogram,
    scale: f64,
) -> Option<(Sequential, MannWhitney)> {
    sequential_mann_whitney_allowing(candidate, stable, scale, 0.0)
}

/// [`sequential_mann_whitney`] with the candidate also allowed `slack`
/// slower (see [`mann_whitney_allowing`]).
pub fn sequential_mann_whitney_allowing(
    candidate: &Histogram,
    stable: &Histogram,
    scale: f64,
    slack: f64,
) -> Option<(Sequential, MannWhitney)> {
    let mw = mann_whitney_allowing(candidate, stable, scale, slack)?;
    let nn = mw.n_x as f64 * mw.n_y as f64;
    let v = mw.variance() / (nn * nn);
    let d = mw.effect() - 0.5;
    Some((Sequential { statistic: mw.z(false), log_lr: normal_mixture_log_lr(d, v, COMPARE_LATENCY_TAU) }, mw))
}

fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests;
