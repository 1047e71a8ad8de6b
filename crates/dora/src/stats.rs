//! Percentiles without sorting: linear interpolation between the closest
//! ranks (Hyndman & Fan type 7, the default of numpy and R, and what
//! BigQuery's `PERCENTILE_CONT` used by Four Keys computes).
//!
//! For `n` sorted values `x[0..n]` and a fraction `p = num/den`:
//! `h = (n-1)·p`, `q = x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])`. The rank is
//! computed in integers so that hand-worked figures come out exactly.

/// The `num/den` quantile of `values` (any order; reorders them). `None`
/// when empty.
pub fn quantile(values: &mut [i64], num: u64, den: u64) -> Option<f64> {
    let n = values.len() as u64;
    if n == 0 || den == 0 {
        return None;
    }
    let scaled = (n - 1) * num;
    let lo = usize::try_from(scaled / den).ok()?;
    let rem = scaled % den;
    let (_, &mut x_lo, right) = values.select_nth_unstable(lo);
    if rem == 0 || right.is_empty() {
        return Some(x_lo as f64);
    }
    let x_hi = right.iter().copied().min().unwrap_or(x_lo);
    Some(x_lo as f64 + (x_hi - x_lo) as f64 * rem as f64 / den as f64)
}

/// Median and 90th percentile.
pub fn median_p90(values: &mut [i64]) -> Option<(f64, f64)> {
    Some((quantile(values, 1, 2)?, quantile(values, 9, 10)?))
}

/// The median of each of `n_buckets` buckets (weeks or days), in seconds, of
/// `values` (ms) paired with their bucket in `buckets`: a counting sort by
/// bucket, then a median per bucket; `None` for a bucket without values.
pub fn bucket_medians(values: &[i64], buckets: &[u32], n_buckets: usize) -> Vec<Option<f64>> {
    let mut offsets = vec![0usize; n_buckets + 1];
    for &b in buckets {
        if let Some(o) = offsets.get_mut(b as usize + 1) {
            *o += 1;
        }
    }
    for k in 1..offsets.len() {
        offsets[k] += offsets[k - 1];
    }
    let mut fill = offsets.clone();
    let mut sorted = vec![0i64; values.len()];
    for (&v, &b) in values.iter().zip(buckets) {
        if let Some(pos) = fill.get_mut(b as usize) {
            sorted[*pos] = v;
            *pos += 1;
        }
    }
    (0..n_buckets).map(|k| quantile(&mut sorted[offsets[k]..offsets[k + 1]], 1, 2).map(|m| m / 1000.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type7() {
        assert_eq!(median_p90(&mut []), None);
        assert_eq!(median_p90(&mut [7]), Some((7.0, 7.0)));
        // n=2: median h=0.5 → 15; p90 h=0.9 → 10 + 0.9·10 = 19.
        assert_eq!(median_p90(&mut [20, 10]), Some((15.0, 19.0)));
        // n=5 sorted 1,2,3,4,100: median x[2]=3; p90 h=3.6 → 4 + 0.6·96 = 61.6
        let (m, p) = median_p90(&mut [100, 3, 1, 4, 2]).expect("non-empty");
        assert_eq!(m, 3.0);
        assert!((p - 61.6).abs() < 1e-9);
        // n=11: p90 h=9 exactly.
        let mut v: Vec<i64> = (0..11).rev().collect();
        assert_eq!(median_p90(&mut v), Some((5.0, 9.0)));
    }
}
