//! Line coverage from an lcov tracefile (`.info`: `cargo llvm-cov --lcov`,
//! c8, Jest, gcov via lcov) or a Cobertura XML report (coverage.py,
//! `cargo llvm-cov --cobertura`, Istanbul, .NET Coverlet), judged against a
//! minimum line rate.
//!
//! lcov: lines are counted from `DA:<line>,<hits>` records, merged per file
//! (a tracefile may list a file more than once, e.g. one record a test
//! binary); a record without `DA` lines counts its `LF`/`LH` summary.
//! Cobertura: the report's own `lines-covered` / `lines-valid` totals, else
//! the `<line>` elements of its classes (not those repeated under
//! `<methods>`), else its `line-rate`.
//!
//! Never reads files: the caller passes the text.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The report's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Lcov,
    Cobertura,
}

impl Format {
    /// Cobertura is XML; anything else is taken as lcov.
    pub fn sniff(text: &str) -> Format {
        if text.trim_start().starts_with('<') { Format::Cobertura } else { Format::Lcov }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Lcov => "lcov",
            Format::Cobertura => "Cobertura",
        }
    }
}

/// One file's lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCoverage {
    pub path: String,
    pub valid: u64,
    pub covered: u64,
}

/// A report's totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    pub format: Format,
    /// Lines that count and lines run at least once; `None` when the report
    /// gives only a rate.
    pub lines: Option<(u64, u64)>,
    /// Covered over valid, 0.0 to 1.0; `None` for a report without lines.
    pub rate: Option<f64>,
    /// Per file, when the report lists files.
    pub files: Vec<FileCoverage>,
}

/// The gate's view of a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgment {
    pub passed: bool,
    pub detail: String,
}

/// Parses a report in `format`, or in the format its text shows.
pub fn parse(text: &str, format: Option<Format>) -> Result<Coverage, String> {
    match format.unwrap_or_else(|| Format::sniff(text)) {
        Format::Lcov => parse_lcov(text),
        Format::Cobertura => parse_cobertura(text),
    }
}

#[derive(Default)]
struct LcovFile {
    lines: BTreeMap<u64, bool>,
    summary: Option<(u64, u64)>,
}

fn parse_lcov(text: &str) -> Result<Coverage, String> {
    let mut files: BTreeMap<String, LcovFile> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut found: Option<u64> = None;
    let mut hit: Option<u64> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let bad = |what: &str| format!("line {}: {line:?} is not {what}", n + 1);
        let Some((tag, value)) = line.split_once(':') else {
            if line == "end_of_record" {
                if let (Some(path), Some(f), Some(h)) = (current.take(), found.take(), hit.take()) {
                    let file = files.entry(path).or_default();
                    let (vf, vh) = file.summary.unwrap_or((0, 0));
                    file.summary = Some((vf.max(f), vh.max(h)));
                }
                found = None;
                hit = None;
            } else if !line.is_empty() {
                return Err(bad("an lcov record (TAG:value or end_of_record)"));
            }
            continue;
        };
        match tag {
            "SF" => {
                current = Some(value.to_owned());
                files.entry(value.to_owned()).or_default();
            }
            "DA" => {
                let mut parts = value.split(',');
                let number = parts.next().and_then(|p| p.trim().parse::<u64>().ok());
                // Some gcov versions write negative counts; only > 0 is a hit.
                let count = parts.next().and_then(|p| p.trim().parse::<i64>().ok());
                let (Some(number), Some(count), Some(path)) = (number, count, current.as_ref()) else {
                    return Err(bad("DA:<line>,<hits> inside an SF record"));
                };
                let covered = files.entry(path.clone()).or_default().lines.entry(number).or_insert(false);
                *covered |= count > 0;
            }
            "LF" => found = Some(value.trim().parse().map_err(|_| bad("LF:<lines found>"))?),
            "LH" => hit = Some(value.trim().parse().map_err(|_| bad("LH:<lines hit>"))?),
            // TN, FN, FNDA, FNF, FNH, BRDA, BRF, BRH, VER, ...: not line coverage.
            _ => {}
        }
    }
    let files: Vec<FileCoverage> = files
        .into_iter()
        .map(|(path, f)| {
            let (valid, covered) = if f.lines.is_empty() {
                f.summary.unwrap_or((0, 0))
            } else {
                (f.lines.len() as u64, f.lines.values().filter(|c| **c).count() as u64)
            };
            FileCoverage { path, valid, covered: covered.min(valid) }
        })
        .collect();
    Ok(totals(Format::Lcov, None, None, files))
}

fn totals(format: Format, summary: Option<(u64, u64)>, rate: Option<f64>, files: Vec<FileCoverage>) -> Coverage {
    let from_files = (files.iter().map(|f| f.valid).sum::<u64>(), files.iter().map(|f| f.covered).sum::<u64>());
    let lines = summary.filter(|(valid, _)| *valid > 0).or(Some(from_files).filter(|(valid, _)| *valid > 0));
    let rate = match lines {
        Some((valid, covered)) => Some(covered as f64 / valid as f64),
        None => rate,
    };
    Coverage { format, lines, rate, files }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    match e.try_get_attribute(name) {
        Ok(Some(a)) => a
            .normalized_value(XmlVersion::Implicit1_0)
            .map(|v| Some(v.trim().to_owned()))
            .map_err(|err| format!("attribute {name}: {err}")),
        Ok(None) => Ok(None),
        Err(err) => Err(format!("attribute {name}: {err}")),
    }
}

fn number<T: std::str::FromStr>(e: &BytesStart<'_>, name: &str) -> Result<Option<T>, String> {
    match attr(e, name)? {
        Some(v) => v.parse().map(Some).map_err(|_| format!("attribute {name}={v:?} is not a number")),
        None => Ok(None),
    }
}

fn parse_cobertura(text: &str) -> Result<Coverage, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut root: Option<(Option<u64>, Option<u64>, Option<f64>)> = None;
    let mut files: BTreeMap<String, BTreeMap<u64, bool>> = BTreeMap::new();
    let mut class: Option<String> = None;
    let mut methods_depth = 0u32;
    let line_of = |pos: u64| text[..(pos as usize).min(text.len())].matches('\n').count() + 1;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not valid XML at line {}: {e}", line_of(reader.error_position())))?;
        let at = |message: String| format!("line {}: {message}", line_of(reader.buffer_position()));
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.local_name().as_ref() {
                    "class" => class = None,
                    "methods" => methods_depth = methods_depth.saturating_sub(1),
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match e.local_name().as_ref() {
            "coverage" if root.is_none() => {
                root = Some((
                    number(e, "lines-valid").map_err(at)?,
                    number(e, "lines-covered").map_err(at)?,
                    number(e, "line-rate").map_err(at)?,
                ));
            }
            "class" => {
                let name = attr(e, "filename").map_err(at)?.or(attr(e, "name").map_err(at)?).unwrap_or_default();
                files.entry(name.clone()).or_default();
                class = (!empty).then_some(name);
            }
            "methods" if !empty => methods_depth += 1,
            "line" if methods_depth == 0 => {
                if let Some(file) = &class {
                    let (Some(n), Some(hits)) =
                        (number::<u64>(e, "number").map_err(at)?, number::<f64>(e, "hits").map_err(at)?)
                    else {
                        return Err(at("a <line> needs number and hits".into()));
                    };
                    let covered = files.entry(file.clone()).or_default().entry(n).or_insert(false);
                    *covered |= hits > 0.0;
                }
            }
            _ => {}
        }
    }
    let Some((valid, covered, rate)) = root else {
        return Err("not a Cobertura report: there is no <coverage> element".into());
    };
    let files = files
        .into_iter()
        .map(|(path, lines)| FileCoverage {
            path,
            valid: lines.len() as u64,
            covered: lines.values().filter(|c| **c).count() as u64,
        })
        .collect();
    let summary = valid.zip(covered).map(|(v, c)| (v, c.min(v)));
    Ok(totals(Format::Cobertura, summary, rate.filter(|r: &f64| (0.0..=1.0).contains(r)), files))
}

/// A rate as a percentage with one decimal, rounded down so that 79.96% is
/// never shown as a passing "80.0%".
pub fn percent(rate: f64) -> String {
    format!("{:.1}%", (rate * 1000.0).floor() / 10.0)
}

/// Judges a report against a minimum line rate (0.0 to 1.0). A report
/// without lines blocks: no data is never a pass.
pub fn judge(coverage: &Coverage, min: f64) -> Judgment {
    let format = coverage.format.name();
    let Some(rate) = coverage.rate else {
        return Judgment {
            passed: false,
            detail: format!(
                "the {format} report is empty (no lines): the tests that write it did not run or found no code; check that step"
            ),
        };
    };
    let lines = match coverage.lines {
        Some((valid, covered)) => format!("{covered} of {valid} lines, {format}"),
        None => format!("{format} line-rate"),
    };
    if rate >= min {
        return Judgment {
            passed: true,
            detail: format!("line coverage {} ({lines}), at least {} required", percent(rate), percent(min)),
        };
    }
    let mut worst: Vec<&FileCoverage> = coverage.files.iter().filter(|f| f.covered < f.valid).collect();
    worst.sort_by(|a, b| (b.valid - b.covered).cmp(&(a.valid - a.covered)).then(a.path.cmp(&b.path)));
    let mut detail = format!("line coverage {} ({lines}) is below the required {}", percent(rate), percent(min));
    if let (Some((valid, _)), false) = (coverage.lines, worst.is_empty()) {
        let needed = (min * valid as f64).ceil() as u64;
        let covered = coverage.lines.map_or(0, |(_, c)| c);
        detail.push_str(&format!(
            "; {} more lines need to run; most uncovered: {}",
            needed.saturating_sub(covered),
            worst
                .iter()
                .take(3)
                .map(|f| format!("{} ({} of {} uncovered)", f.path, f.valid - f.covered, f.valid))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Judgment { passed: false, detail }
}

#[cfg(test)]
mod tests;
