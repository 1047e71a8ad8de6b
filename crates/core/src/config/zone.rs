//! Time zones by IANA name, for freeze windows and holidays, with a "did you
//! mean" for a misspelt one.
//!
//! Never falls back to UTC or the machine's zone: an unknown name is an error.

/// Resolves an IANA time zone name: from the system's database, else from
/// the copy compiled into sluice (for machines without /usr/share/zoneinfo).
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    use jiff::tz::TimeZoneDatabase;
    if let Ok(tz) = jiff::tz::db().get(name) {
        return Ok(tz);
    }
    let bundled = TimeZoneDatabase::bundled();
    if let Ok(tz) = bundled.get(name) {
        return Ok(tz);
    }
    let lower = name.to_ascii_lowercase();
    let near = bundled
        .available()
        .map(|n| n.as_str().to_owned())
        .map(|n| (edit_distance(&n.to_ascii_lowercase(), &lower), n))
        .filter(|(d, _)| *d <= 3)
        .min();
    let hint = match near {
        Some((_, n)) => format!("did you mean {n:?}?"),
        None => "use an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"".into(),
    };
    Err(format!("unknown time zone {name:?}; {hint}"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
