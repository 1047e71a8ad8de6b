//! The window of a report in milliseconds, and its UTC weeks (Monday 00:00
//! to Monday 00:00).
//!
//! Pure arithmetic on instants: it never reads a clock.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday: the week of Monday 1969-12-29 is week 0.
const MONDAY_OFFSET_MS: i64 = 3 * DAY_MS;
/// Longer windows get no weekly trend (it would be larger than the report).
pub const MAX_TREND_WEEKS: u64 = 520;

/// The window `since <= t < until` in milliseconds, and its UTC weeks.
pub(crate) struct Span {
    pub since: i64,
    pub until: i64,
    /// Absolute index of the week holding `since`.
    first_week: i64,
    pub first_week_start: i64,
    /// UTC weeks the window touches.
    pub weeks: u64,
    /// Whether weekly points are computed.
    pub trend: bool,
}

/// The absolute index of the UTC week holding `ms`.
pub(crate) fn week_of(ms: i64) -> i64 {
    (ms.saturating_add(MONDAY_OFFSET_MS)).div_euclid(WEEK_MS)
}

/// The start of the UTC day holding `ms`.
pub(crate) fn floor_day(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

pub(crate) fn date_of(ms: i64) -> Date {
    timestamp(ms).to_zoned(TimeZone::UTC).date()
}

impl Span {
    pub(crate) fn new(since: i64, until: i64) -> Self {
        let first_week = week_of(since);
        let weeks = if until > since { u64::try_from(week_of(until - 1) - first_week + 1).unwrap_or(0) } else { 0 };
        Span {
            since,
            until,
            first_week,
            first_week_start: first_week * WEEK_MS - MONDAY_OFFSET_MS,
            weeks,
            trend: weeks <= MAX_TREND_WEEKS,
        }
    }

    /// Whether `ms` lies in the window.
    pub(crate) fn contains(&self, ms: i64) -> bool {
        ms >= self.since && ms < self.until
    }

    /// Length in days (fractional).
    pub(crate) fn days(&self) -> f64 {
        (self.until - self.since).max(0) as f64 / DAY_MS as f64
    }

    /// Weeks of the trend: all of them, or none for a long window.
    pub(crate) fn trend_weeks(&self) -> usize {
        if self.trend { self.weeks as usize } else { 0 }
    }

    /// Index of `ms`'s week among the trend's weeks (0 without a trend).
    pub(crate) fn trend_index(&self, ms: i64) -> u32 {
        if self.trend { u32::try_from(week_of(ms) - self.first_week).unwrap_or(0) } else { 0 }
    }

    /// The Monday each week of the trend starts on.
    pub(crate) fn week_dates(&self) -> Vec<Date> {
        (0..self.trend_weeks()).map(|k| date_of(self.first_week_start + k as i64 * WEEK_MS)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2024-01-01 was a Monday.
        let monday: Timestamp = "2024-01-01T00:00:00Z".parse().expect("valid");
        let sunday: Timestamp = "2023-12-31T23:59:59Z".parse().expect("valid");
        assert_eq!(week_of(monday.as_millisecond()), week_of(sunday.as_millisecond()) + 1);
        let s = Span::new(monday.as_millisecond(), monday.as_millisecond() + WEEK_MS);
        assert_eq!(s.weeks, 1);
        assert_eq!(date_of(s.first_week_start).to_string(), "2024-01-01");
        let s = Span::new(monday.as_millisecond() - 1, monday.as_millisecond() + 1);
        assert_eq!(s.weeks, 2);
    }
}
