//! Freeze windows: weekly windows (`Fri 15:00` to `Mon 08:00`) and holidays
//! (whole days), each on the wall clock of an IANA time zone.
//!
//! Semantics: a window is in force from the first instant its zone's clock
//! reaches the start until the first instant it reaches the end. A time inside
//! a daylight-saving gap (02:30 on the spring-forward night) is reached when
//! the gap ends; a time inside a fold (02:30 on the fall-back night, which
//! happens twice) is reached the first time. So every occurrence is one
//! unbroken stretch of time whose length follows the clock (a Friday-to-Monday
//! window over the spring change is an hour shorter), and a window never opens
//! again because the clock fell back.
//!
//! Windows that touch or overlap chain: the freeze ends when no window is in
//! force any more, and that end is what the gate reports.
//!
//! Never looks a zone up: callers resolve names (`sluice_core::config`) and
//! pass [`TimeZone`]s, so this stays free of I/O.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp, Zoned};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A weekday and a wall-clock time, written `Fri 15:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WeekTime {
    pub weekday: Weekday,
    pub time: Time,
}

const WEEKDAYS: [(Weekday, &str, &[&str]); 7] = [
    (Weekday::Monday, "Mon", &["mon", "monday"]),
    (Weekday::Tuesday, "Tue", &["tue", "tues", "tuesday"]),
    (Weekday::Wednesday, "Wed", &["wed", "wednesday"]),
    (Weekday::Thursday, "Thu", &["thu", "thur", "thurs", "thursday"]),
    (Weekday::Friday, "Fri", &["fri", "friday"]),
    (Weekday::Saturday, "Sat", &["sat", "saturday"]),
    (Weekday::Sunday, "Sun", &["sun", "sunday"]),
];

impl WeekTime {
    /// Parses `Fri 15:00`, `friday 8:30`: a weekday (English, full or
    /// abbreviated, any case) and a 24-hour `HH:MM`.
    pub fn parse(text: &str) -> Result<WeekTime, String> {
        let hint = "write a weekday and a 24-hour time, e.g. \"Fri 15:00\"";
        let (day, time) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{text:?} is not a week time; {hint}"))?;
        let lower = day.to_ascii_lowercase();
        let weekday = WEEKDAYS
            .iter()
            .find(|(_, _, names)| names.contains(&lower.as_str()))
            .map(|(w, _, _)| *w)
            .ok_or_else(|| format!("{day:?} is not a weekday; {hint}"))?;
        let (h, m) = time.trim().split_once(':').ok_or_else(|| format!("{time:?} is not a time; {hint}"))?;
        let hour = h.parse::<i8>().ok().filter(|h| (0..24).contains(h));
        let minute = m.parse::<i8>().ok().filter(|v| (0..60).contains(v) && m.len() == 2);
        match (hour, minute) {
            (Some(hour), Some(minute)) => Ok(WeekTime { weekday, time: Time::constant(hour, minute, 0, 0) }),
            _ => Err(format!("{time:?} is not a time from 00:00 to 23:59; {hint}")),
        }
    }
}

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = WEEKDAYS.iter().find(|(w, _, _)| *w == self.weekday).map_or("?", |(_, short, _)| short);
        write!(f, "{day} {:02}:{:02}", self.time.hour(), self.time.minute())
    }
}

impl TryFrom<String> for WeekTime {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        WeekTime::parse(&text)
    }
}

impl From<WeekTime> for String {
    fn from(w: WeekTime) -> String {
        w.to_string()
    }
}

/// One day or an inclusive run of days, written `2026-12-24` or
/// `2026-12-24..2027-01-01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Days {
    pub first: Date,
    pub last: Date,
}

impl Days {
    pub fn parse(text: &str) -> Result<Days, String> {
        let hint = "write a date as YYYY-MM-DD, or a run of days as \"2026-12-24..2027-01-01\"";
        let date = |s: &str| s.trim().parse::<Date>().map_err(|e| format!("{s:?} is not a date ({e}); {hint}"));
        let (first, last) = match text.split_once("..") {
            Some((a, b)) => (date(a)?, date(b)?),
            None => (date(text)?, date(text)?),
        };
        if last < first {
            return Err(format!("{text:?} ends before it starts; {hint}"));
        }
        Ok(Days { first, last })
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last { write!(f, "{}", self.first) } else { write!(f, "{}..{}", self.first, self.last) }
    }
}

impl TryFrom<String> for Days {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Days::parse(&text)
    }
}

impl From<Days> for String {
    fn from(d: Days) -> String {
        d.to_string()
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Weekly { from: WeekTime, to: WeekTime },
    Days(Days),
}

#[derive(Clone, Debug)]
struct Entry {
    label: String,
    kind: Kind,
    tz: TimeZone,
}

/// One stretch of time a window is in force: `start <= t < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Occurrence {
    start: Timestamp,
    end: Timestamp,
}

/// The freeze windows of an environment, with their zones resolved.
#[derive(Clone, Debug, Default)]
pub struct Calendar {
    entries: Vec<Entry>,
}

/// Whether a freeze is in force, and the evidence.
#[derive(Clone, Debug, PartialEq)]
pub enum FreezeStatus {
    /// No window is in force; `next` is the nearest one to come.
    Open { next: Option<Upcoming> },
    /// `windows` are in force now; the freeze lasts until `until` (in the
    /// zone of the window that ends it), after `then` (windows that follow
    /// without a gap) have ended too.
    Frozen { windows: Vec<String>, until: Zoned, then: Vec<String> },
}

/// The next window to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Upcoming {
    pub window: String,
    pub starts: Zoned,
}

impl Calendar {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a weekly window; `from` and `to` must differ. `zone` is the name
    /// `tz` was resolved from, for messages.
    pub fn weekly(
        &mut self,
        name: Option<&str>,
        from: WeekTime,
        to: WeekTime,
        zone: &str,
        tz: TimeZone,
    ) -> Result<(), String> {
        if from == to {
            return Err(format!(
                "the window starts and ends at {from}: give it a length, e.g. from = \"Fri 15:00\", to = \"Mon 08:00\""
            ));
        }
        let span = format!("{from} to {to} {zone}");
        let label = match name {
            Some(name) => format!("{name} ({span})"),
            None => span,
        };
        self.entries.push(Entry { label, kind: Kind::Weekly { from, to }, tz });
        Ok(())
    }

    /// Adds holidays: whole days on the clock of `zone`.
    pub fn days(&mut self, days: Days, zone: &str, tz: TimeZone) {
        let label = if days.first == days.last {
            format!("holiday {days} {zone}")
        } else {
            format!("holidays {} to {} {zone}", days.first, days.last)
        };
        self.entries.push(Entry { label, kind: Kind::Days(days), tz });
    }

    /// Whether a freeze is in force at `now`, until when, and what comes next.
    pub fn status(&self, now: Timestamp) -> FreezeStatus {
        let in_force: Vec<(usize, Occurrence)> =
            self.entries.iter().enumerate().filter_map(|(i, e)| e.occurrence_at(now).map(|o| (i, o))).collect();
        let Some(&(mut last, first)) = in_force.iter().max_by_key(|(_, o)| o.end) else {
            let next = self
                .entries
                .iter()
                .filter_map(|e| e.next_start(now).map(|t| (e, t)))
                .min_by_key(|(_, t)| *t)
                .map(|(e, t)| Upcoming { window: e.label.clone(), starts: t.to_zoned(e.tz.clone()) });
            return FreezeStatus::Open { next };
        };
        let mut until = first.end;
        let mut then = Vec::new();
        // Follow windows that start before the current one ends; bounded, as
        // a calendar that never opens (a window every day) would loop.
        for _ in 0..64 {
            let Some((i, o)) = self
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.occurrence_at(until).map(|o| (i, o)))
                .max_by_key(|(_, o)| o.end)
            else {
                break;
            };
            if !then.contains(&self.entries[i].label) && !in_force.iter().any(|(j, _)| *j == i) {
                then.push(self.entries[i].label.clone());
            }
            last = i;
            until = o.end;
        }
        FreezeStatus::Frozen {
            windows: in_force.iter().map(|(i, _)| self.entries[*i].label.clone()).collect(),
            until: until.to_zoned(self.entries[last].tz.clone()),
            then,
        }
    }
}

impl FreezeStatus {
    pub fn is_frozen(&self) -> bool {
        matches!(self, FreezeStatus::Frozen { .. })
    }

    /// The evidence in one sentence.
    pub fn describe(&self) -> String {
        match self {
            FreezeStatus::Open { next: None } => "no freeze window in force".into(),
            FreezeStatus::Open { next: Some(next) } => {
                format!("no freeze window in force; next: {} from {}", next.window, local(&next.starts))
            }
            FreezeStatus::Frozen { windows, until, then } => {
                let (noun, verb) = if windows.len() == 1 { ("window", "is") } else { ("windows", "are") };
                let mut text = format!(
                    "freeze {noun} {} {verb} in force until {} ({})",
                    windows.join(" and "),
                    local(until),
                    until.timestamp()
                );
                if !then.is_empty() {
                    text.push_str(&format!(", as {} follow without a break", then.join(" and ")));
                }
                text
            }
        }
    }
}

/// `Mon 2026-05-11 08:00 CEST`.
fn local(z: &Zoned) -> String {
    z.strftime("%a %Y-%m-%d %H:%M %Z").to_string()
}

impl Entry {
    /// The occurrences near `t`: the one starting in the week before, in the
    /// current week, and in the week after (each shorter than a week).
    fn occurrences(&self, t: Timestamp) -> Vec<Occurrence> {
        match &self.kind {
            Kind::Weekly { from, to } => {
                let today = t.to_zoned(self.tz.clone()).date();
                let Some(anchor) = shift(today, -i64::from(today.weekday().since(from.weekday))) else {
                    return Vec::new();
                };
                let mut days = i64::from(to.weekday.since(from.weekday));
                if days == 0 && to.time <= from.time {
                    days = 7;
                }
                [-7, 0, 7]
                    .into_iter()
                    .filter_map(|k| {
                        let start_day = shift(anchor, k)?;
                        let end_day = shift(start_day, days)?;
                        Some(Occurrence {
                            start: reached(&self.tz, start_day.to_datetime(from.time))?,
                            end: reached(&self.tz, end_day.to_datetime(to.time))?,
                        })
                    })
                    .collect()
            }
            Kind::Days(days) => (|| {
                Some(vec![Occurrence {
                    start: reached(&self.tz, days.first.to_datetime(Time::midnight()))?,
                    end: reached(&self.tz, shift(days.last, 1)?.to_datetime(Time::midnight()))?,
                }])
            })()
            .unwrap_or_default(),
        }
    }

    fn occurrence_at(&self, t: Timestamp) -> Option<Occurrence> {
        self.occurrences(t).into_iter().find(|o| o.start <= t && t < o.end)
    }

    fn next_start(&self, t: Timestamp) -> Option<Timestamp> {
        self.occurrences(t).into_iter().map(|o| o.start).filter(|s| *s > t).min()
    }
}

fn shift(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Span::new().try_days(days).ok()?).ok()
}

/// The first instant at which the clock of `tz` reads `dt` or later.
fn reached(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        // Happens twice: the first time, with the offset before the change.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        // Never happens: the clock jumps past it at the transition, the latest
        // one at or before `dt` read with the old offset.
        AmbiguousOffset::Gap { before, .. } => {
            let late = before.to_timestamp(dt).ok()?.checked_add(SignedDuration::from_nanos(1)).ok()?;
            tz.preceding(late).next().map(|transition| transition.timestamp())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZoneDatabase;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("Europe/Berlin")
    }

    fn wt(text: &str) -> WeekTime {
        WeekTime::parse(text).expect("week time")
    }

    fn days(text: &str) -> Days {
        Days::parse(text).expect("days")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn weekend(tz: TimeZone) -> Calendar {
        let mut c = Calendar::default();
        c.weekly(None, wt("Fri 15:00"), wt("Mon 08:00"), "Europe/Berlin", tz).expect("window");
        c
    }

    fn until(status: &FreezeStatus) -> Timestamp {
        match status {
            FreezeStatus::Frozen { until, .. } => until.timestamp(),
            open => panic!("expected a freeze, got {open:?}"),
        }
    }

    #[test]
    fn week_times_parse_and_print() {
        assert_eq!(wt("friday 8:30").to_string(), "Fri 08:30");
        assert_eq!(wt("  MON 23:59 ").to_string(), "Mon 23:59");
        for bad in ["Fri", "Fri 24:00", "Fri 15:60", "Fri 15:5", "Fryday 15:00", "15:00 Fri", ""] {
            let err = WeekTime::parse(bad).expect_err(bad);
            assert!(err.contains("Fri 15:00"), "{bad}: {err}");
        }
    }

    #[test]
    fn days_parse_one_day_or_a_run() {
        assert_eq!(days("2026-12-24").to_string(), "2026-12-24");
        assert_eq!(days("2026-12-24..2027-01-01").to_string(), "2026-12-24..2027-01-01");
        assert!(Days::parse("2026-12-32").is_err());
        assert!(Days::parse("2027-01-01..2026-12-24").expect_err("backwards").contains("ends before"));
    }

    #[test]
    fn a_weekend_window_wraps_the_week() {
        let c = weekend(berlin());
        // Fri 2026-05-08 is CEST (+02): 15:00 local is 13:00Z.
        assert!(!c.status(at("2026-05-08T12:59:59Z")).is_frozen());
        let friday = c.status(at("2026-05-08T13:00:00Z"));
        assert_eq!(until(&friday), at("2026-05-11T06:00:00Z"));
        assert_eq!(
            friday.describe(),
            "freeze window Fri 15:00 to Mon 08:00 Europe/Berlin is in force until Mon 2026-05-11 08:00 CEST \
             (2026-05-11T06:00:00Z)"
        );
        // Sunday night, past the week's end, is still in the window.
        assert_eq!(until(&c.status(at("2026-05-10T22:30:00Z"))), at("2026-05-11T06:00:00Z"));
        assert!(c.status(at("2026-05-11T05:59:59Z")).is_frozen());
        let monday = c.status(at("2026-05-11T06:00:00Z"));
        assert_eq!(
            monday.describe(),
            "no freeze window in force; next: Fri 15:00 to Mon 08:00 Europe/Berlin from Fri 2026-05-15 15:00 CEST"
        );
    }

    #[test]
    fn a_window_within_one_day_and_one_of_almost_a_week() {
        let tz = TimeZone::get("America/New_York").expect("zone");
        let mut c = Calendar::default();
        c.weekly(Some("release train"), wt("Wed 09:00"), wt("Wed 11:00"), "America/New_York", tz.clone())
            .expect("window");
        // Wed 2026-05-13 09:30 EDT = 13:30Z.
        let status = c.status(at("2026-05-13T13:30:00Z"));
        assert_eq!(until(&status), at("2026-05-13T15:00:00Z"));
        assert!(status.describe().starts_with("freeze window release train (Wed 09:00 to Wed 11:00"));
        let mut c = Calendar::default();
        c.weekly(None, wt("Mon 10:00"), wt("Mon 08:00"), "America/New_York", tz).expect("window");
        // Open only on Mondays from 08:00 to 10:00.
        assert!(!c.status(at("2026-05-11T12:30:00Z")).is_frozen());
        assert_eq!(until(&c.status(at("2026-05-13T12:00:00Z"))), at("2026-05-18T12:00:00Z"));
    }

    #[test]
    fn a_window_may_not_be_empty() {
        let w = wt("Fri 15:00");
        let err = Calendar::default().weekly(None, w, w, "UTC", TimeZone::UTC).expect_err("empty");
        assert!(err.contains("give it a length"), "{err}");
    }

    #[test]
    fn spring_forward_shortens_the_window_by_the_clock() {
        // Berlin springs forward on Sun 2026-03-29 (02:00 CET -> 03:00 CEST):
        // Friday 15:00 is +01, Monday 08:00 is +02.
        let c = weekend(berlin());
        let status = c.status(at("2026-03-27T14:00:00Z"));
        assert_eq!(until(&status), at("2026-03-30T06:00:00Z"));
        assert!(status.describe().contains("Mon 2026-03-30 08:00 CEST"), "{}", status.describe());
        assert!(c.status(at("2026-03-30T05:59:59Z")).is_frozen());
        assert!(!c.status(at("2026-03-30T06:00:00Z")).is_frozen());
    }

    #[test]
    fn fall_back_lengthens_the_window_by_the_clock() {
        // Berlin falls back on Sun 2026-10-25 (03:00 CEST -> 02:00 CET).
        let c = weekend(berlin());
        assert!(!c.status(at("2026-10-23T12:59:59Z")).is_frozen());
        assert_eq!(until(&c.status(at("2026-10-23T13:00:00Z"))), at("2026-10-26T07:00:00Z"));
        assert!(c.status(at("2026-10-26T06:30:00Z")).is_frozen(), "08:00 CET is 07:00Z, not 06:00Z");
    }

    #[test]
    fn a_start_inside_the_spring_gap_is_reached_when_the_gap_ends() {
        // 02:30 never happens on 2026-03-29 in Berlin; the window starts at
        // the jump (01:00Z, 03:00 CEST).
        let mut c = Calendar::default();
        c.weekly(None, wt("Sun 02:30"), wt("Sun 06:00"), "Europe/Berlin", berlin()).expect("window");
        assert!(!c.status(at("2026-03-29T00:59:59Z")).is_frozen());
        assert_eq!(until(&c.status(at("2026-03-29T01:00:00Z"))), at("2026-03-29T04:00:00Z"));
        match c.status(at("2026-03-28T12:00:00Z")) {
            FreezeStatus::Open { next: Some(next) } => assert_eq!(next.starts.timestamp(), at("2026-03-29T01:00:00Z")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_end_inside_the_autumn_fold_is_reached_the_first_time() {
        // 02:30 happens twice on 2026-10-25 in Berlin (00:30Z and 01:30Z).
        let mut c = Calendar::default();
        c.weekly(None, wt("Sat 22:00"), wt("Sun 02:30"), "Europe/Berlin", berlin()).expect("window");
        assert_eq!(until(&c.status(at("2026-10-24T23:00:00Z"))), at("2026-10-25T00:30:00Z"));
        assert!(!c.status(at("2026-10-25T00:30:00Z")).is_frozen());
        // 02:15 CET: the clock shows a time inside the window again, but the
        // window has ended and does not open twice.
        assert!(!c.status(at("2026-10-25T01:15:00Z")).is_frozen());
    }

    #[test]
    fn holidays_are_whole_days_in_their_zone_and_chain_with_windows() {
        let tz = berlin();
        let mut c = weekend(tz.clone());
        c.days(days("2026-12-24"), "Europe/Berlin", tz.clone());
        c.days(days("2026-12-25"), "Europe/Berlin", tz);
        // 2026-12-24 00:00 CET is 2026-12-23T23:00Z.
        assert!(!c.status(at("2026-12-23T22:59:59Z")).is_frozen());
        let status = c.status(at("2026-12-23T23:00:00Z"));
        // Thu 24 (holiday) -> Fri 25 (holiday) -> Fri 15:00 .. Mon 28 08:00.
        assert_eq!(until(&status), at("2026-12-28T07:00:00Z"));
        assert_eq!(
            status.describe(),
            "freeze window holiday 2026-12-24 Europe/Berlin is in force until Mon 2026-12-28 08:00 CET \
             (2026-12-28T07:00:00Z), as holiday 2026-12-25 Europe/Berlin and Fri 15:00 to Mon 08:00 Europe/Berlin \
             follow without a break"
        );
    }

    #[test]
    fn a_run_of_days_ends_at_the_midnight_after_the_last() {
        let tz = TimeZone::get("Asia/Tokyo").expect("zone");
        let mut c = Calendar::default();
        c.days(days("2026-12-29..2027-01-03"), "Asia/Tokyo", tz);
        // 2027-01-04 00:00 JST is 2027-01-03T15:00Z.
        assert_eq!(until(&c.status(at("2026-12-31T12:00:00Z"))), at("2027-01-03T15:00:00Z"));
        assert!(!c.status(at("2027-01-03T15:00:00Z")).is_frozen());
    }

    #[test]
    fn the_bundled_database_knows_the_zones_and_agrees_with_the_system() {
        // The workspace enables jiff's `tzdb-bundle-always`: the IANA
        // database is compiled in for machines without /usr/share/zoneinfo.
        let bundled = TimeZoneDatabase::bundled();
        let tz = bundled.get("Europe/Berlin").expect("Europe/Berlin is bundled");
        let c = weekend(tz);
        assert_eq!(until(&c.status(at("2026-03-27T14:00:00Z"))), at("2026-03-30T06:00:00Z"));
        assert_eq!(until(&c.status(at("2026-10-23T13:00:00Z"))), at("2026-10-26T07:00:00Z"));
        assert!(bundled.get("Mars/Olympus_Mons").is_err());
    }
}
