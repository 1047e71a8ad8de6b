//! A fast path for parsing ledger lines as sluice writes them.
//!
//! serde_json spends most of a large report's time on generic parsing. This
//! parser reads the exact shape of a `sluice.ledger/v1` line — known keys,
//! strings without escapes, timestamps as `YYYY-MM-DDTHH:MM:SS[.f]Z` — borrowing
//! from the line and allocating nothing. It is conservative: it answers
//! `None` for anything else (an escape, an unknown or repeated key, another
//! timestamp form, a missing field, damage), and the caller then hands the
//! line to the ledger reader's [`parse_line`](sluice_core::ledger::parse_line),
//! which decides (an entry, a torn tail, or damage it names). So it never
//! accepts a line the ledger reader would refuse, nor reads one differently
//! (tests check both).

use jiff::Timestamp;
use sluice_core::ledger::{ChangeKind, LEDGER_SCHEMA, LedgerOutcome};

/// A ledger line read in place. Commits go to a buffer the caller reuses.
#[derive(Debug)]
pub(crate) struct FastEntry<'a> {
    pub id: &'a str,
    pub app: &'a str,
    pub environment: &'a str,
    pub version: &'a str,
    pub commit: Option<&'a str>,
    pub change: ChangeKind,
    pub incident: Option<&'a str>,
    pub strategy: &'a str,
    pub triggered_by: Option<&'a str>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: LedgerOutcome,
    pub reason: Option<&'a str>,
}

/// One commit of a line: (SHA, time, merge).
pub(crate) type FastCommit<'a> = (&'a str, Timestamp, bool);

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    /// Whitespace within a line: a newline ends the line, so it is not skipped.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters. The input is a
    /// `str` and quotes are ASCII, so the slice is valid UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let mut k = 0;
        // Eight bytes at a time while none is a quote, a backslash or a control.
        while let Some(chunk) = rest.get(k..k + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            const ONES: u64 = 0x0101_0101_0101_0101;
            const HIGH: u64 = 0x8080_8080_8080_8080;
            let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
            if zero(x ^ (ONES * u64::from(b'"')))
                | zero(x ^ (ONES * u64::from(b'\\')))
                | (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
                != 0
            {
                break;
            }
            k += 8;
        }
        loop {
            match *rest.get(k)? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => k += 1,
            }
        }
        self.i = start + k + 1;
        self.s.get(start..start + k)
    }

    fn word(&mut self, w: &[u8]) -> bool {
        self.ws();
        if self.b.get(self.i..).is_some_and(|r| r.starts_with(w)) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.word(b"null") { Some(None) } else { self.string().map(Some) }
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.word(b"true") {
            Some(true)
        } else if self.word(b"false") {
            Some(false)
        } else {
            None
        }
    }

    fn timestamp(&mut self) -> Option<Timestamp> {
        parse_timestamp(self.string()?)
    }

    /// After a member: `,` (more) or the closing `}` (done).
    fn next_member(&mut self) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(true)
            }
            b'}' => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    fn commit(&mut self) -> Option<FastCommit<'a>> {
        self.eat(b'{')?;
        let (mut sha, mut time, mut merge) = (None, None, None);
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let fresh = match key {
                "sha" => sha.replace(self.string()?).is_none(),
                "time" => time.replace(self.timestamp()?).is_none(),
                "merge" => merge.replace(self.boolean()?).is_none(),
                _ => return None,
            };
            if !fresh {
                return None;
            }
            if !self.next_member()? {
                break;
            }
        }
        Some((sha?, time?, merge.unwrap_or(false)))
    }
}

const REQUIRED: u32 = (1 << 0) // schema
    | (1 << 1) // id
    | (1 << 2) // app
    | (1 << 3) // environment
    | (1 << 4) // version
    | (1 << 9) // strategy
    | (1 << 11) // started_at
    | (1 << 12) // finished_at
    | (1 << 13); // outcome

/// Parses a whole trimmed line; `None` means "let serde decide".
pub(crate) fn parse<'a>(line: &'a [u8], commits: &mut Vec<FastCommit<'a>>) -> Option<FastEntry<'a>> {
    let s = std::str::from_utf8(line).ok()?;
    let (entry, end) = parse_at(s, 0, commits)?;
    (s[end..].trim_ascii().is_empty()).then_some(entry)
}

/// Parses the object that starts at `pos` of `s` (on one line: a newline
/// inside it declines). Returns it and the index just after its `}`.
pub(crate) fn parse_at<'a>(
    s: &'a str,
    pos: usize,
    commits: &mut Vec<FastCommit<'a>>,
) -> Option<(FastEntry<'a>, usize)> {
    commits.clear();
    let mut p = P { s, b: s.as_bytes(), i: pos };
    p.eat(b'{')?;
    let mut seen = 0u32;
    let mut e = FastEntry {
        id: "",
        app: "",
        environment: "",
        version: "",
        commit: None,
        change: ChangeKind::Planned,
        incident: None,
        strategy: "",
        triggered_by: None,
        started_at: Timestamp::UNIX_EPOCH,
        finished_at: Timestamp::UNIX_EPOCH,
        outcome: LedgerOutcome::Promoted,
        reason: None,
    };
    loop {
        let key = p.string()?;
        p.eat(b':')?;
        let bit = match key {
            "schema" => {
                if p.string()? != LEDGER_SCHEMA {
                    return None;
                }
                0
            }
            "id" => {
                e.id = p.string()?;
                1
            }
            "app" => {
                e.app = p.string()?;
                2
            }
            "environment" => {
                e.environment = p.string()?;
                3
            }
            "version" => {
                e.version = p.string()?;
                4
            }
            "commit" => {
                e.commit = p.opt_string()?;
                5
            }
            "commits" => {
                p.eat(b'[')?;
                if p.peek()? == b']' {
                    p.i += 1;
                } else {
                    loop {
                        commits.push(p.commit()?);
                        match p.peek()? {
                            b',' => p.i += 1,
                            b']' => {
                                p.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                6
            }
            "change" => {
                e.change = match p.string()? {
                    "planned" => ChangeKind::Planned,
                    "hotfix" => ChangeKind::Hotfix,
                    _ => return None,
                };
                7
            }
            "incident" => {
                e.incident = p.opt_string()?;
                8
            }
            "strategy" => {
                e.strategy = p.string()?;
                9
            }
            "triggered_by" => {
                e.triggered_by = p.opt_string()?;
                10
            }
            "started_at" => {
                e.started_at = p.timestamp()?;
                11
            }
            "finished_at" => {
                e.finished_at = p.timestamp()?;
                12
            }
            "outcome" => {
                e.outcome = match p.string()? {
                    "promoted" => LedgerOutcome::Promoted,
                    "rolled_back" => LedgerOutcome::RolledBack,
                    "reverted" => LedgerOutcome::Reverted,
                    "failed" => LedgerOutcome::Failed,
                    "abandoned" => LedgerOutcome::Abandoned,
                    _ => return None,
                };
                13
            }
            "reason" => {
                e.reason = p.opt_string()?;
                14
            }
            _ => return None,
        };
        if seen & (1 << bit) != 0 {
            return None;
        }
        seen |= 1 << bit;
        if !p.next_member()? {
            break;
        }
    }
    (seen & REQUIRED == REQUIRED).then_some((e, p.i))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

/// `YYYY-MM-DDTHH:MM:SS[.fffffffff]Z` and nothing else.
pub(crate) fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, min, sec) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let nanos = match &b[19..] {
        [b'Z'] => 0,
        [b'.', frac @ .., b'Z'] if (1..=9).contains(&frac.len()) => digits(frac)? * 10u32.pow(9 - frac.len() as u32),
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let dim = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > dim || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m, d) = (i64::from(year) - i64::from(month <= 2), i64::from(month), i64::from(day));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
    Timestamp::new(secs, i32::try_from(nanos).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timestamps() {
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-02-29T23:59:59.5Z",
            "1970-01-01T00:00:00.000000001Z",
            "0001-01-01T00:00:00Z",
            "9999-12-30T21:59:59.999999999Z",
            "1969-12-31T23:59:59Z",
            "2000-02-29T12:00:00Z",
        ] {
            let want: Timestamp = s.parse().expect("jiff parses it");
            assert_eq!(parse_timestamp(s), Some(want), "{s}");
        }
        for s in [
            "2023-02-29T00:00:00Z",
            // Past jiff's range (it ends at 9999-12-30T22:00:00Z).
            "9999-12-31T23:59:59Z",
            "1900-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "+2024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    use sluice_core::ledger::{CommitInfo, LedgerEntry, Line};

    /// What the fast parser read, as a `LedgerEntry`, to compare with serde.
    fn to_entry(e: &FastEntry<'_>, commits: &[FastCommit<'_>]) -> LedgerEntry {
        LedgerEntry {
            schema: LEDGER_SCHEMA.to_owned(),
            id: e.id.to_owned(),
            app: e.app.to_owned(),
            environment: e.environment.to_owned(),
            version: e.version.to_owned(),
            commit: e.commit.map(str::to_owned),
            commits: commits
                .iter()
                .map(|&(sha, time, merge)| CommitInfo { sha: sha.to_owned(), time, merge })
                .collect(),
            change: e.change,
            incident: e.incident.map(str::to_owned),
            strategy: e.strategy.to_owned(),
            triggered_by: e.triggered_by.map(str::to_owned),
            started_at: e.started_at,
            finished_at: e.finished_at,
            outcome: e.outcome,
            reason: e.reason.map(str::to_owned),
            unanalysed: false,
            targets: Vec::new(),
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![4 => "[a-z0-9._-]{0,12}", 1 => any::<String>()]
    }

    fn entry() -> impl Strategy<Value = LedgerEntry> {
        let ts = (0i64..4_000_000_000, prop_oneof![Just(0i32), 0i32..1_000_000_000])
            .prop_map(|(s, n)| Timestamp::new(s, n).expect("in range"));
        (
            (text(), text(), text(), text(), proptest::option::of(text())),
            proptest::collection::vec((text(), ts.clone(), any::<bool>()), 0..3),
            (any::<bool>(), proptest::option::of(text()), text(), proptest::option::of(text())),
            (ts.clone(), ts, 0usize..5, proptest::option::of(text())),
        )
            .prop_map(
                |((id, app, env, version, commit), commits, (hotfix, incident, strategy, by), (s, f, o, reason))| {
                    LedgerEntry {
                        schema: LEDGER_SCHEMA.to_owned(),
                        id,
                        app,
                        environment: env,
                        version,
                        commit,
                        commits: commits
                            .into_iter()
                            .map(|(sha, time, merge)| CommitInfo { sha, time, merge })
                            .collect(),
                        change: if hotfix { ChangeKind::Hotfix } else { ChangeKind::Planned },
                        incident,
                        strategy,
                        triggered_by: by,
                        started_at: s,
                        finished_at: f,
                        outcome: [
                            LedgerOutcome::Promoted,
                            LedgerOutcome::RolledBack,
                            LedgerOutcome::Reverted,
                            LedgerOutcome::Failed,
                            LedgerOutcome::Abandoned,
                        ][o],
                        reason,
                        unanalysed: false,
                        targets: Vec::new(),
                    }
                },
            )
    }

    /// The fast parser's answer must be the ledger reader's, or no answer.
    fn agrees(line: &[u8]) -> Result<bool, TestCaseError> {
        let mut commits = Vec::new();
        let Some(fast) = parse(line.trim_ascii(), &mut commits) else {
            return Ok(false);
        };
        // Whether the line had its newline or not: a whole entry is one.
        for terminated in [true, false] {
            match sluice_core::ledger::parse_line(line, terminated) {
                Ok(Line::Entry(entry)) => prop_assert_eq!(&to_entry(&fast, &commits), &*entry),
                other => prop_assert!(
                    false,
                    "fast accepted what the ledger reader reads as {:?}: {}",
                    other,
                    String::from_utf8_lossy(line)
                ),
            }
        }
        Ok(true)
    }

    #[test]
    fn declines_what_it_does_not_know() {
        let good = r#"{"schema":"sluice.ledger/v1","id":"d","app":"a","environment":"prd","version":"1","strategy":"canary","started_at":"2024-01-01T00:00:00Z","finished_at":"2024-01-01T00:10:00Z","outcome":"promoted"}"#;
        let mut c = Vec::new();
        assert!(parse(good.as_bytes(), &mut c).is_some());
        for bad in [
            good.replace(r#""app":"a""#, r#""app":"a","app":"b""#),
            good.replace(r#""app":"a""#, r#""app":"a","extra":1"#),
            good.replace(r#""app":"a""#, r#""app":"a","commits":null"#),
            good.replace(r#""app":"a""#, r#""app":"a","change":null"#),
            good.replace(
                r#""app":"a""#,
                r#""app":"a","commits":[{"sha":"x","time":"2024-01-01T00:00:00Z","merge":null}]"#,
            ),
            good.replace(r#""app":"a""#, r#""app":"a","commits":[{"sha":"x","time":"2024-01-01T00:00:00Z",}]"#),
            good.replace(
                r#""app":"a""#,
                r#""app":"a
""#,
            ),
            good.replace(r#""app":"a","#, ""),
            good.replace("v1", "v2"),
            good.replace("}", ",}"),
            format!("{good} x"),
            format!("{good}}}"),
            good.replace("promoted", "Promoted"),
            good.replace(r#""version":"1""#, r#""version":1"#),
            good.replace("00:10:00Z", "00:10:00+00:00"),
        ] {
            assert!(parse(bad.as_bytes(), &mut Vec::new()).is_none(), "{bad}");
        }
        // Extensions it does know and serde accepts.
        let more =
            good.replace(r#""app":"a""#, r#""app":"a","commit":null,"commits":[],"incident":"INC-1","reason":null"#);
        let e = parse(more.as_bytes(), &mut c).expect("known fields");
        assert_eq!((e.commit, e.incident, e.reason), (None, Some("INC-1"), None));
    }

    proptest! {
        #[test]
        fn reads_what_serde_writes_as_serde_reads_it(e in entry()) {
            let line = serde_json::to_string(&e).expect("serialise");
            let read = agrees(line.as_bytes())?;
            // Plain text is always read by the fast path.
            let plain = |s: &str| !s.contains(['"', '\\']) && !s.chars().any(char::is_control);
            let all_plain = [&e.id, &e.app, &e.environment, &e.version, &e.strategy].iter().all(|s| plain(s))
                && e.commits.iter().all(|c| plain(&c.sha))
                && [&e.commit, &e.incident, &e.triggered_by, &e.reason].iter().all(|s| s.as_deref().is_none_or(plain));
            if all_plain {
                prop_assert!(read, "fast path declined a plain line: {}", line);
            }
        }

        #[test]
        fn damaged_lines_are_left_to_serde(e in entry(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut line = serde_json::to_vec(&e).expect("serialise");
            let i = at.index(line.len());
            if cut { line.truncate(i); } else { line[i] = byte; }
            agrees(&line)?;
        }

        #[test]
        fn timestamps_agree_with_jiff(secs in -62_135_596_800i64..253_402_207_200, nanos in 0i32..1_000_000_000, coarse in any::<bool>()) {
            let nanos = if coarse { 0 } else { nanos };
            let t = Timestamp::new(secs, nanos).expect("in range");
            let s = t.to_string();
            prop_assert_eq!(parse_timestamp(&s), Some(t));
        }

        #[test]
        fn never_accepts_what_jiff_refuses(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z") {
            if let Some(t) = parse_timestamp(&s) {
                prop_assert_eq!(s.parse::<Timestamp>().ok(), Some(t));
            }
        }
    }
}
