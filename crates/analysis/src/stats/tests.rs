use super::*;
use proptest::prelude::*;

#[allow(clippy::approx_constant, clippy::excessive_precision, clippy::type_complexity)]
mod reference;

/// `a` and `b` agree to a relative `tol` (absolute near zero).
fn close(a: f64, b: f64, tol: f64) -> bool {
    if a == b {
        return true;
    }
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

#[track_caller]
fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(close(got, want, tol), "{what}: got {got:e}, scipy says {want:e}");
}

#[test]
fn error_functions_match_scipy() {
    for &(x, e, ec, ecx) in reference::ERF {
        assert_close(&format!("erf({x})"), erf(x), e, 1e-13);
        assert_close(&format!("erfc({x})"), erfc(x), ec, 1e-12);
        if x >= 0.0 {
            assert_close(&format!("erfcx({x})"), erfcx(x), ecx, 1e-12);
        }
    }
}

#[test]
fn normal_distribution_matches_scipy() {
    for &(x, cdf, sf, log_cdf) in reference::NORMAL {
        assert_close(&format!("cdf({x})"), normal_cdf(x), cdf, 1e-12);
        assert_close(&format!("sf({x})"), normal_sf(x), sf, 1e-12);
        assert_close(&format!("log_cdf({x})"), normal_log_cdf(x), log_cdf, 1e-12);
    }
    for &(p, x) in reference::QUANTILE {
        assert_close(&format!("quantile({p})"), normal_quantile(p), x, 1e-12);
    }
    assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(1.0), f64::INFINITY);
    assert!(normal_quantile(1.5).is_nan());
    assert!((normal_pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-15);
}

#[test]
fn mann_whitney_matches_scipy() {
    for &(x, y, u, p_cont, p_plain) in reference::MANN_WHITNEY {
        let mw = mann_whitney(x, y).expect("samples");
        assert_close("U", mw.u, u, 1e-12);
        assert_close("p (continuity)", mw.p_greater(true), p_cont, 1e-10);
        assert_close("p (no continuity)", mw.p_greater(false), p_plain, 1e-10);
    }
}

#[test]
fn mann_whitney_of_histograms_equals_that_of_samples() {
    let x = Histogram::from_pairs([(100, 3), (200, 5), (450, 2)]);
    let y = Histogram::from_pairs([(100, 4), (300, 2), (450, 1), (900, 1)]);
    let expand = |h: &Histogram| -> Vec<f64> {
        h.buckets.iter().flat_map(|&(v, c)| std::iter::repeat_n(v as f64, c as usize)).collect()
    };
    let from_hist = mann_whitney_histograms(&x, &y, 1.0).expect("data");
    let from_samples = mann_whitney(&expand(&x), &expand(&y)).expect("data");
    assert_eq!(from_hist, from_samples);
    // Scaling x by 1/2 makes it faster: U falls.
    let scaled = mann_whitney_histograms(&x, &y, 2.0).expect("data");
    assert!(scaled.u < from_hist.u);
    assert!(mann_whitney_histograms(&x, &Histogram::default(), 1.0).is_none());
}

#[test]
fn two_proportion_z_test_matches_statsmodels() {
    for &(x1, n1, x2, n2, delta, z, p) in reference::TWO_PROPORTIONS {
        let t = two_proportion_z_test(x1, n1, x2, n2, delta).expect("variance");
        assert_close("z", t.z, z, 1e-10);
        assert_close("p", t.p_value, p, 1e-9);
    }
    assert_eq!(two_proportion_z_test(0, 100, 0, 100, 0.0), None);
    assert_eq!(two_proportion_z_test(1, 0, 0, 100, 0.0), None);
}

#[test]
fn bernoulli_mixture_matches_binomial_likelihoods() {
    for &(p0, x, n, ln_m) in reference::BERNOULLI_MIXTURE {
        assert_close(&format!("ln M({p0}, {x}/{n})"), BernoulliMixture::new(p0).log_lr(x, n), ln_m, 1e-11);
    }
    assert_eq!(BernoulliMixture::new(0.0).log_lr(1, 10), f64::INFINITY);
    assert_eq!(BernoulliMixture::new(0.0).log_lr(0, 10), 0.0);
    assert_eq!(BernoulliMixture::new(1.0).log_lr(10, 10), f64::NEG_INFINITY);
    assert_eq!(BernoulliMixture::new(0.01).log_lr(0, 0), 0.0);
    // All alternatives lie strictly between p0 and 1.
    for p0 in [1e-6, 0.01, 0.3, 0.5, 0.9, 0.999] {
        for &p1 in BernoulliMixture::new(p0).alternatives() {
            assert!(p0 < p1 && p1 < 1.0, "{p0} -> {p1}");
        }
    }
}

#[test]
fn normal_mixture_matches_numerical_integration() {
    for &(d, v, tau, ln_l) in reference::NORMAL_MIXTURE {
        assert_close(&format!("ln Λ({d}, {v}, {tau})"), normal_mixture_log_lr(d, v, tau), ln_l, 1e-9);
    }
    // Far in either tail it stays finite.
    assert!(normal_mixture_log_lr(-10.0, 1e-6, 0.1).is_finite());
    assert!(normal_mixture_log_lr(10.0, 1e-6, 0.1).is_finite());
    assert_eq!(normal_mixture_log_lr(0.1, 0.0, 0.1), 0.0);
}

#[test]
fn expected_samples_follow_the_documented_formula() {
    // The engine docs' example: 5 % errors against a limit of 1 %.
    let n = expected_samples_to_reject(0.05, 0.01, 0.01).expect("rejectable");
    assert!((n - 150.8).abs() < 0.5, "{n}");
    // A candidate failing everything: a handful of requests.
    let n = expected_samples_to_reject(1.0, 0.01, 0.01).expect("rejectable");
    assert!(n < 3.0, "{n}");
    assert_eq!(expected_samples_to_reject(0.01, 0.01, 0.01), None);
    assert_eq!(expected_samples_to_reject(0.5, 0.0, 0.01), None);
}

#[test]
fn always_valid_p_value_and_rejection() {
    let t = Sequential { statistic: 0.0, log_lr: (200.0f64).ln() };
    assert!((t.p_value() - 0.005).abs() < 1e-15);
    assert!(t.rejects(0.01));
    assert!(!t.rejects(0.001));
    assert_eq!(Sequential { statistic: 0.0, log_lr: -3.0 }.p_value(), 1.0);
}

/// splitmix64 uniform in (0, 1), for the Monte Carlo checks below.
fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// How often [`sequential_rate_excess`] ever rejects at `alpha` over `runs`
/// seeded canaries whose candidate sits exactly on the null's boundary
/// (`p_c = p_s + delta`), looking after every 20 candidate requests (and 9
/// times as many stable ones) up to 1,000.
fn boundary_rejections(p_s: f64, delta: f64, alpha: f64, runs: u32) -> u32 {
    let mut seed = 0x5EED_u64 ^ (p_s * 1e6) as u64;
    let mut rejected = 0;
    for _ in 0..runs {
        let (mut xc, mut xs) = (0u64, 0u64);
        for look in 1..=50u64 {
            xc += (0..20).filter(|_| uniform(&mut seed) < p_s + delta).count() as u64;
            xs += (0..180).filter(|_| uniform(&mut seed) < p_s).count() as u64;
            if sequential_rate_excess(xc, 20 * look, xs, 180 * look, delta).expect("data").rejects(alpha) {
                rejected += 1;
                break;
            }
        }
    }
    rejected
}

#[test]
fn rate_excess_keeps_its_false_reject_rate_on_the_boundary_at_low_rates_too() {
    // At alpha = 0.05, 1,000 runs: a valid test rejects about 50 times at
    // most (it is conservative, so far fewer); a normal approximation breaks
    // down at rates near zero, this one must not.
    for (p_s, delta) in [(0.0, 0.01), (0.001, 0.01), (0.04, 0.01), (0.0, 0.0), (0.02, 0.05)] {
        let n = boundary_rejections(p_s, delta, 0.05, 1000);
        assert!(n <= 50, "stable {p_s}, tolerance {delta}: {n} of 1000 rejected at alpha 0.05");
    }
}

#[test]
fn near_alternatives_keep_the_false_reject_rate_on_the_boundary() {
    // The sample-ratio check's alternatives, from 1.1 times the limit: a
    // share exactly at the band's edge (25 %), looked at every 100
    // requests up to 6,000, rejected at alpha 0.05 in at most about 50 of
    // 1,000 runs (a valid test; it is conservative, so far fewer).
    let test = BernoulliMixture::with_multipliers(0.25, &[1.1, 1.2, 1.35, 1.5, 2.0, 3.0]);
    assert_eq!(test.alternatives().len(), 6);
    let mut seed = 0x5A17_u64;
    let mut rejected = 0;
    for _ in 0..1000 {
        let mut x = 0u64;
        for look in 1..=60u64 {
            x += (0..100).filter(|_| uniform(&mut seed) < 0.25).count() as u64;
            if test.log_lr(x, 100 * look) >= (1.0f64 / 0.05).ln() {
                rejected += 1;
                break;
            }
        }
    }
    assert!(rejected <= 50, "{rejected} of 1000 rejected at alpha 0.05");
    // Multipliers at or below 1 are no alternatives.
    assert_eq!(BernoulliMixture::with_multipliers(0.25, &[0.5, 1.0]).alternatives().len(), 0);
}

#[test]
fn rate_excess_needs_far_fewer_requests_than_the_normal_mixture_at_low_rates() {
    // 5 % errors against stable without errors + 1 point, the typical path
    // (5 % of the requests fail, stable 9 times the traffic), at the
    // cumulative share of the built-in checks' alpha (0.01 / 3 / 2).
    let alpha = 0.01 / 6.0;
    let first = |test: &dyn Fn(u64, u64) -> Sequential| {
        (1..3_000u64).find(|&n| test((0.05 * n as f64).round() as u64, n).rejects(alpha)).unwrap_or(u64::MAX)
    };
    let new = first(&|x, n| sequential_rate_excess(x, n, 0, 9 * n, 0.01).expect("data"));
    let old = first(&|x, n| sequential_two_proportion(x, n, 0, 9 * n, 0.01).expect("data"));
    assert!(new <= 260, "{new}");
    assert!(old >= 2 * new, "old {old}, new {new}");
    // A candidate failing everything is caught within a handful of requests.
    assert!(sequential_rate_excess(5, 5, 0, 45, 0.01).expect("data").rejects(alpha));
}

proptest! {
    #[test]
    fn rate_excess_never_rejects_within_the_tolerance(
        x in 0u64..200, n in 200u64..5_000, copies in 1u64..10, delta in 0.0f64..0.1,
    ) {
        let t = sequential_rate_excess(x, n, x * copies, n * copies, delta).expect("data");
        prop_assert!(t.log_lr <= 1e-12, "ln M {}", t.log_lr);
        prop_assert!((0.0..=1.0).contains(&t.p_value()));
    }

    #[test]
    fn rate_excess_evidence_grows_with_candidate_errors_beyond_the_tolerance(
        extra in 1u64..60, n in 100u64..1_000, xs in 0u64..50, delta in 0.005f64..0.05,
    ) {
        // Beyond the tolerance (within it the evidence is at most 0 anyway),
        // for tolerances from half a point: below that the prior's
        // alternatives (multiples of the tolerance) sit far from a candidate
        // just above a stable with errors, and one more error can lower the
        // evidence a little (never its validity).
        let x = ((xs as f64 / 9.0 + delta * n as f64).ceil() as u64 + extra).min(n - 1);
        let a = sequential_rate_excess(x, n, xs, 9 * n, delta).expect("data").log_lr;
        let b = sequential_rate_excess(x + 1, n, xs, 9 * n, delta).expect("data").log_lr;
        prop_assert!(b >= a - 1e-9, "{} then {}", a, b);
    }

    #[test]
    fn quantile_inverts_cdf(p in 1e-12f64..(1.0 - 1e-12)) {
        let x = normal_quantile(p);
        prop_assert!(close(normal_cdf(x), p, 1e-9), "p {} x {} cdf {}", p, x, normal_cdf(x));
    }

    #[test]
    fn erf_is_odd_and_bounded(x in -30.0f64..30.0) {
        prop_assert!(erf(x).abs() <= 1.0);
        prop_assert_eq!(erf(-x), -erf(x));
        prop_assert!(close(erf(x) + erfc(x), 1.0, 1e-14));
    }

    #[test]
    fn p_values_are_probabilities(
        x1 in 0u64..500, n1 in 1u64..1000, x2 in 0u64..500, n2 in 1u64..1000, delta in 0.0f64..0.2,
    ) {
        if let Some(t) = two_proportion_z_test(x1, n1, x2, n2, delta) {
            prop_assert!((0.0..=1.0).contains(&t.p_value));
        }
        let s = sequential_two_proportion(x1, n1, x2, n2, delta).expect("non-empty");
        prop_assert!((0.0..=1.0).contains(&s.p_value()));
        let m = BernoulliMixture::new(delta).log_lr(x1, n1);
        prop_assert!(!m.is_nan());
    }

    #[test]
    fn bernoulli_evidence_grows_with_errors(p0 in 0.001f64..0.5, x in 0u64..100, n in 100u64..1000) {
        let test = BernoulliMixture::new(p0);
        prop_assert!(test.log_lr(x + 1, n) > test.log_lr(x, n));
    }

    #[test]
    fn mixture_evidence_grows_with_the_estimate(d in -0.5f64..0.5, step in 0.001f64..0.1, v in 1e-6f64..1e-2) {
        prop_assert!(normal_mixture_log_lr(d + step, v, 0.05) > normal_mixture_log_lr(d, v, 0.05));
    }

    #[test]
    fn identical_histograms_never_look_slower(
        pairs in prop::collection::vec((1u64..10_000, 1u64..500), 1..40), copies in 1u64..5, tolerance in 0.0f64..1.0,
    ) {
        let h = Histogram::from_pairs(pairs);
        let mut stable = Histogram::default();
        for _ in 0..copies {
            stable.merge(&h);
        }
        let (test, mw) = sequential_mann_whitney(&h, &stable, 1.0 + tolerance).expect("data");
        prop_assert!(mw.effect() <= 0.5 + 1e-12);
        prop_assert!(test.log_lr <= 0.0, "ln Λ {}", test.log_lr);
        prop_assert!((0.0..=1.0).contains(&mw.p_greater(true)));
    }

    #[test]
    fn identical_error_rates_never_look_worse(x in 0u64..200, n in 200u64..5_000, copies in 1u64..10, delta in 0.0f64..0.1) {
        let t = sequential_two_proportion(x, n, x * copies, n * copies, delta).expect("data");
        prop_assert!(t.log_lr <= 1e-12, "ln Λ {}", t.log_lr);
        prop_assert!(!t.rejects(0.01));
    }
}
