//! The window of a report in milliseconds, its UTC weeks (Monday 00:00 to
//! Monday 00:00) and, for a short window, its UTC days: the buckets of the
//! trends.
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
/// Windows that touch at most this many UTC days also get a daily trend.
pub const MAX_DAILY_DAYS: u64 = 31;

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
    /// Start of the UTC day holding `since`.
    pub first_day_start: i64,
    /// UTC days the window touches.
    pub days: u64,
    /// Whether daily points are computed.
    pub daily: bool,
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
        let first_day_start = floor_day(since);
        let days = if until > since {
            u64::try_from((floor_day(until - 1) - first_day_start) / DAY_MS + 1).unwrap_or(0)
        } else {
            0
        };
        Span {
            since,
            until,
            first_week,
            first_week_start: first_week * WEEK_MS - MONDAY_OFFSET_MS,
            weeks,
            trend: weeks <= MAX_TREND_WEEKS,
            first_day_start,
            days,
            daily: days <= MAX_DAILY_DAYS,
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

    /// The Monday each week of the trend starts on, and the share of the
    /// week inside the window.
    pub(crate) fn week_dates(&self) -> Vec<(Date, f64)> {
        (0..self.trend_weeks())
            .map(|k| {
                let start = self.first_week_start + k as i64 * WEEK_MS;
                (date_of(start), self.coverage(start, WEEK_MS))
            })
            .collect()
    }

    /// Days of the daily trend: all of them for a short window, else none.
    pub(crate) fn trend_days(&self) -> usize {
        if self.daily { self.days as usize } else { 0 }
    }

    /// Index of `ms`'s UTC day among the daily trend's days, when the window
    /// has one.
    pub(crate) fn day_index(&self, ms: i64) -> Option<u32> {
        if self.daily { u32::try_from((floor_day(ms) - self.first_day_start) / DAY_MS).ok() } else { None }
    }

    /// Each day of the daily trend, and the share of the day inside the
    /// window.
    pub(crate) fn day_dates(&self) -> Vec<(Date, f64)> {
        (0..self.trend_days())
            .map(|k| {
                let start = self.first_day_start + k as i64 * DAY_MS;
                (date_of(start), self.coverage(start, DAY_MS))
            })
            .collect()
    }

    /// The share of `[start, start + len)` inside the window.
    fn coverage(&self, start: i64, len: i64) -> f64 {
        let inside = (start + len).min(self.until) - start.max(self.since);
        inside.clamp(0, len) as f64 / len as f64
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

    #[test]
    fn short_windows_have_days_and_partial_buckets_say_so() {
        let monday: Timestamp = "2024-01-01T00:00:00Z".parse().expect("valid");
        let m = monday.as_millisecond();
        // Monday noon to Thursday 06:00: four days, the first and last partial.
        let s = Span::new(m + DAY_MS / 2, m + 3 * DAY_MS + DAY_MS / 4);
        assert_eq!((s.days, s.trend_days()), (4, 4));
        let days = s.day_dates();
        assert_eq!(days[0].0.to_string(), "2024-01-01");
        assert_eq!(days.iter().map(|d| d.1).collect::<Vec<_>>(), [0.5, 1.0, 1.0, 0.25]);
        assert_eq!(s.day_index(m + DAY_MS / 2), Some(0));
        assert_eq!(s.day_index(m + 3 * DAY_MS + 1), Some(3));
        assert_eq!(s.week_dates(), vec![(days[0].0, 2.75 / 7.0)]);
        // 31 days still daily; 32 not.
        assert!(Span::new(m, m + 31 * DAY_MS).daily);
        let long = Span::new(m, m + 32 * DAY_MS);
        assert!(!long.daily && long.day_dates().is_empty() && long.day_index(m).is_none());
    }
}
