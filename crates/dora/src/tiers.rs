//! DORA 2024 tiers for one application's metrics.
//!
//! The 2024 report describes four clusters of respondents (Accelerate State
//! of DevOps 2024, "software delivery performance levels"):
//!
//! | cluster | deployment frequency | change lead time | change fail rate | recovery time |
//! |---|---|---|---|---|
//! | elite | on demand (multiple deploys per day) | < 1 day | 5% | < 1 hour |
//! | high | once per day – once per week | 1 day – 1 week | 20% | < 1 day |
//! | medium | once per week – once per month | 1 week – 1 month | 10% | < 1 day |
//! | low | once per month – once every 6 months | 1 – 6 months | 40% | 1 week – 1 month |
//!
//! They are clusters, not thresholds, and not monotonic: the medium cluster
//! fails less often (10%) than the high one (20%), and high and medium share
//! "< 1 day" of recovery. A metric's tier here is **the best cluster whose
//! figure for that metric the value matches or beats**; anything worse than
//! every cluster but low is low. So the change fail rate is never "medium"
//! on its own (a rate that beats 10% also beats high's 20%), and a recovery
//! time between 1 day and 1 week is "low" (it misses the "< 1 day" of high and
//! medium). The rework rate has no 2024 tiers.

use crate::report::Tier;

const HOUR: f64 = 3_600.0;
const DAY: f64 = 24.0 * HOUR;
const WEEK: f64 = 7.0 * DAY;
/// "One month" in the report's ranges.
const MONTH: f64 = 30.0 * DAY;

/// From deployments per day (calendar days). Elite: at least one per day on
/// average (on demand); high: at least one per week; medium: at least one per
/// 30 days; else low.
pub fn deployment_frequency(per_day: f64) -> Tier {
    if per_day >= 1.0 {
        Tier::Elite
    } else if per_day * 7.0 >= 1.0 {
        Tier::High
    } else if per_day * 30.0 >= 1.0 {
        Tier::Medium
    } else {
        Tier::Low
    }
}

/// From the median change lead time in seconds. Elite: < 1 day; high: ≤ 7
/// days; medium: ≤ 30 days; else low.
pub fn change_lead_time(median_seconds: f64) -> Tier {
    if median_seconds < DAY {
        Tier::Elite
    } else if median_seconds <= WEEK {
        Tier::High
    } else if median_seconds <= MONTH {
        Tier::Medium
    } else {
        Tier::Low
    }
}

/// From the change fail rate (a fraction). Elite: ≤ 5%; high: ≤ 20%; else
/// low. Medium (10%) is never the best match on this metric alone.
pub fn change_fail_rate(rate: f64) -> Tier {
    if rate <= 0.05 {
        Tier::Elite
    } else if rate <= 0.20 {
        Tier::High
    } else {
        Tier::Low
    }
}

/// From the median recovery time in seconds. Elite: < 1 hour; high: < 1 day
/// (medium shares it); else low.
pub fn recovery_time(median_seconds: f64) -> Tier {
    if median_seconds < HOUR {
        Tier::Elite
    } else if median_seconds < DAY {
        Tier::High
    } else {
        Tier::Low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(deployment_frequency(1.0), Tier::Elite);
        assert_eq!(deployment_frequency(0.99), Tier::High);
        assert_eq!(deployment_frequency(1.0 / 7.0), Tier::High);
        assert_eq!(deployment_frequency(0.1), Tier::Medium);
        assert_eq!(deployment_frequency(1.0 / 30.0), Tier::Medium);
        assert_eq!(deployment_frequency(0.03), Tier::Low);
        assert_eq!(deployment_frequency(0.0), Tier::Low);

        assert_eq!(change_lead_time(DAY - 1.0), Tier::Elite);
        assert_eq!(change_lead_time(DAY), Tier::High);
        assert_eq!(change_lead_time(WEEK), Tier::High);
        assert_eq!(change_lead_time(WEEK + 1.0), Tier::Medium);
        assert_eq!(change_lead_time(MONTH + 1.0), Tier::Low);

        assert_eq!(change_fail_rate(0.0), Tier::Elite);
        assert_eq!(change_fail_rate(0.05), Tier::Elite);
        assert_eq!(change_fail_rate(0.10), Tier::High);
        assert_eq!(change_fail_rate(0.20), Tier::High);
        assert_eq!(change_fail_rate(0.21), Tier::Low);

        assert_eq!(recovery_time(HOUR - 1.0), Tier::Elite);
        assert_eq!(recovery_time(HOUR), Tier::High);
        assert_eq!(recovery_time(DAY), Tier::Low);
    }
}
