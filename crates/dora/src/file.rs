//! A report straight from a ledger file, parsed on every core.
//!
//! One thread reads the file in blocks of whole lines; workers parse the
//! blocks (the fast parser first, serde where it declines) and fold them into
//! accumulators that merge at the end. Memory stays at a few blocks plus the
//! compact accumulators, whatever the file's size.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use sluice_core::ledger::{Damage, LedgerError, Line, TornTail, parse_line};

use crate::compute::{Accumulator, FastView, Options};
use crate::fast::{self, FastCommit};
use crate::{Error, Report};

const BLOCK: usize = 4 << 20;

struct Block {
    index: u64,
    bytes: Vec<u8>,
}

/// Reads a ledger file and computes its report, by the ledger reader's
/// rules. The first damaged line (by line number) is the error. A torn tail
/// is skipped: it is returned, and the report says so in its notes.
pub fn report_file(path: &Path, opts: &Options) -> Result<(Report, Option<TornTail>), Error> {
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    report_read(file, path, opts, threads)
}

/// Computes a report from any reader of ledger lines on one thread
/// (standard input, a test buffer); as [`report_file`].
pub fn report_reader<R: BufRead>(
    mut reader: R,
    path: &Path,
    opts: &Options,
) -> Result<(Report, Option<TornTail>), Error> {
    let mut acc = Accumulator::new(opts);
    let mut torn = None;
    let mut bytes = Vec::new();
    let mut line = 0u64;
    loop {
        bytes.clear();
        let n =
            reader.read_until(b'\n', &mut bytes).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        line += 1;
        let terminated = bytes.last() == Some(&b'\n');
        let mut commits = Vec::new();
        match push_line(&mut acc, &bytes, terminated, line, &mut commits) {
            Ok(false) => {}
            Ok(true) => torn = Some(TornTail { path: path.to_path_buf(), line, bytes: n as u64 }),
            Err(damage) => return Err(Error::Damaged { path: path.to_path_buf(), line, damage }),
        }
    }
    Ok(finish(acc, torn))
}

/// The report, with a note of the torn tail skipped.
fn finish(acc: Accumulator<'_>, torn: Option<TornTail>) -> (Report, Option<TornTail>) {
    let mut report = acc.finish();
    if let Some(torn) = &torn {
        report.notes.push(torn.to_string());
    }
    (report, torn)
}

/// Folds one line into `acc`: the fast parser, else the ledger reader's
/// [`parse_line`]. `Ok(true)`: the line is a torn tail, skipped.
fn push_line<'a>(
    acc: &mut Accumulator<'_>,
    bytes: &'a [u8],
    terminated: bool,
    seq: u64,
    commits: &mut Vec<FastCommit<'a>>,
) -> Result<bool, Damage> {
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() {
        return Ok(false);
    }
    if let Some(entry) = fast::parse(trimmed, commits) {
        acc.push(&FastView { entry: &entry, commits }, seq);
        return Ok(false);
    }
    match parse_line(trimmed, terminated)? {
        Line::Entry(entry) => acc.push(&*entry, seq),
        Line::Torn => return Ok(true),
        Line::Blank => {}
    }
    Ok(false)
}

/// A line of a block: (block index, line within the block).
type At = (u64, u64);

struct Done<'o> {
    acc: Accumulator<'o>,
    /// (block index, lines in it) of every block this worker parsed.
    lines: Vec<(u64, u64)>,
    /// The first damaged line this worker met.
    damage: Option<(At, Damage)>,
    /// The torn tail, if the last block ends in one: where, and its length.
    torn: Option<(At, u64)>,
}

/// What a block held besides entries.
#[derive(Default)]
struct Scan {
    lines: u64,
    torn: Option<(u64, u64)>,
}

fn report_read<R: Read>(
    mut file: R,
    path: &Path,
    opts: &Options,
    threads: usize,
) -> Result<(Report, Option<TornTail>), Error> {
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    // Parsed blocks come back to be filled again: no fresh pages to fault in.
    let (spare_tx, spare_rx) = channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let spare = spare_tx.clone();
                s.spawn(move || work(&rx, &spare, opts))
            })
            .collect();
        drop(spare_tx);

        let mut read_error = None;
        let mut carry: Vec<u8> = Vec::new();
        let mut index = 0u64;
        loop {
            let mut buf = match spare_rx.try_recv() {
                Ok(mut spare) => {
                    spare.clear();
                    spare.extend_from_slice(&carry);
                    spare
                }
                Err(_) => std::mem::take(&mut carry),
            };
            carry.clear();
            let start = buf.len();
            buf.resize(start + BLOCK, 0);
            let n = match read_full(&mut file, &mut buf[start..]) {
                Ok(n) => n,
                Err(source) => {
                    read_error = Some(Error::Read { path: path.to_path_buf(), source });
                    break;
                }
            };
            buf.truncate(start + n);
            if buf.is_empty() {
                break;
            }
            let eof = n == 0;
            // Every block but the last ends in a newline: only the file's
            // last line can lack one.
            if !eof {
                match buf.iter().rposition(|&b| b == b'\n') {
                    Some(cut) => carry = buf.split_off(cut + 1),
                    None => {
                        // One line longer than a block: read on.
                        carry = buf;
                        continue;
                    }
                }
            }
            if tx.send(Block { index, bytes: buf }).is_err() || eof {
                break;
            }
            index += 1;
        }
        drop(tx);

        let mut merged: Option<Accumulator<'_>> = None;
        let mut lines = Vec::new();
        let mut damaged = Vec::new();
        let mut torn = None;
        for w in workers {
            match w.join() {
                Ok(done) => {
                    lines.extend(done.lines);
                    damaged.extend(done.damage);
                    torn = torn.or(done.torn);
                    match &mut merged {
                        Some(m) => m.merge(done.acc),
                        None => merged = Some(done.acc),
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        if let Some(e) = read_error {
            return Err(e);
        }
        // Line numbers: the lines of all blocks before the line's block.
        lines.sort_unstable();
        let line_of = |(block, line): At| line + lines.iter().take_while(|l| l.0 < block).map(|l| l.1).sum::<u64>();
        if let Some((line, damage)) =
            damaged.into_iter().map(|(at, damage)| (line_of(at), damage)).min_by_key(|(line, _)| *line)
        {
            return Err(LedgerError::Damaged { path: path.to_path_buf(), line, damage });
        }
        let torn = torn.map(|(at, bytes)| TornTail { path: path.to_path_buf(), line: line_of(at), bytes });
        Ok(finish(merged.unwrap_or_else(|| Accumulator::new(opts)), torn))
    })
}

/// Fills `buf` as far as the reader goes; 0 only at the end of the file.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn count_lines(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

/// A block of valid UTF-8: the fast parser reads each object where it
/// starts, without looking for the line's end first.
fn scan_text(acc: &mut Accumulator<'_>, text: &str, block: u64) -> Result<Scan, (u64, Damage)> {
    let b = text.as_bytes();
    let mut commits = Vec::new();
    let mut scan = Scan::default();
    let mut pos = 0usize;
    while pos < b.len() {
        scan.lines += 1;
        let seq = (block << 32) | scan.lines;
        if let Some((entry, end)) = fast::parse_at(text, pos, &mut commits) {
            let mut j = end;
            while let Some(b' ' | b'\t' | b'\r') = b.get(j) {
                j += 1;
            }
            if j == b.len() || b[j] == b'\n' {
                acc.push(&FastView { entry: &entry, commits: &commits }, seq);
                pos = j + 1;
                continue;
            }
        }
        let eol = b[pos..].iter().position(|&c| c == b'\n').map_or(b.len(), |k| pos + k);
        let line = &b[pos..eol];
        match push_line(acc, line, eol < b.len(), seq, &mut Vec::new()) {
            Ok(false) => {}
            Ok(true) => scan.torn = Some((scan.lines, line.len() as u64)),
            Err(damage) => return Err((scan.lines, damage)),
        }
        pos = eol + 1;
    }
    Ok(scan)
}

/// A block with invalid UTF-8 somewhere: line by line.
fn scan_lines(acc: &mut Accumulator<'_>, bytes: &[u8], block: u64) -> Result<Scan, (u64, Damage)> {
    let mut scan = Scan::default();
    let terminated = bytes.last() == Some(&b'\n');
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut rest = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = rest.next() {
        scan.lines += 1;
        let last = rest.peek().is_none();
        match push_line(acc, line, !last || terminated, (block << 32) | scan.lines, &mut Vec::new()) {
            Ok(false) => {}
            Ok(true) => scan.torn = Some((scan.lines, line.len() as u64)),
            Err(damage) => return Err((scan.lines, damage)),
        }
    }
    Ok(scan)
}

/// Parses blocks until the channel closes. After a damaged line it only
/// counts lines, so that the reader never blocks and later line numbers
/// stay right.
fn work<'o>(rx: &Mutex<Receiver<Block>>, spare: &Sender<Vec<u8>>, opts: &'o Options) -> Done<'o> {
    let mut done = Done { acc: Accumulator::new(opts), lines: Vec::new(), damage: None, torn: None };
    loop {
        let block = {
            let Ok(guard) = rx.lock() else { break };
            match guard.recv() {
                Ok(b) => b,
                Err(_) => break,
            }
        };
        let bytes = block.bytes.as_slice();
        if done.damage.is_some() {
            done.lines.push((block.index, count_lines(bytes)));
            continue;
        }
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => scan_text(&mut done.acc, text, block.index),
            Err(_) => scan_lines(&mut done.acc, bytes, block.index),
        };
        match result {
            Ok(scan) => {
                done.lines.push((block.index, scan.lines));
                if let Some((line, len)) = scan.torn {
                    done.torn = Some(((block.index, line), len));
                }
            }
            Err((line, damage)) => {
                done.lines.push((block.index, count_lines(bytes)));
                done.damage = Some(((block.index, line), damage));
            }
        }
        let _ = spare.send(block.bytes);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_boundaries_and_line_numbers() {
        // Blocks of whole lines: a damaged line deep in the input is named
        // by its number whatever block and thread it landed in.
        let good = r#"{"schema":"sluice.ledger/v1","id":"d","app":"a","environment":"prd","version":"1","strategy":"canary","started_at":"2024-01-01T00:00:00Z","finished_at":"2024-01-01T00:10:00Z","outcome":"promoted"}"#;
        let mut text = String::new();
        for i in 1..=200_000u32 {
            if i == 150_001 {
                text.push_str("{damaged\n");
            } else if i % 1000 == 0 {
                // Not for the fast parser: an escape.
                text.push_str(&good.replace("\"d\"", "\"d\\u0041\""));
                text.push('\n');
            } else {
                text.push_str(good);
                text.push('\n');
            }
        }
        let opts = Options::default();
        let err = report_read(text.as_bytes(), Path::new("mem"), &opts, 2).expect_err("damaged line");
        assert_eq!(err.line(), Some(150_001));

        let text = text.replace("{damaged\n", "\n");
        let (report, torn) = report_read(text.as_bytes(), Path::new("mem"), &opts, 3).expect("valid");
        assert_eq!((report.groups[0].counts.deployments, torn), (199_999, None));
        let single = report_reader(text.as_bytes(), Path::new("mem"), &opts).expect("valid");
        assert_eq!(report, single.0);

        // Invalid UTF-8 in one block: that block goes line by line, and the
        // damaged line is still named.
        let mut bytes = text.into_bytes();
        let at = bytes.len() / 3;
        let start = at + bytes[at..].iter().position(|&b| b == b'\n').expect("a newline") + 1;
        let line = bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        bytes[start + 5] = 0xff;
        let err = report_read(bytes.as_slice(), Path::new("mem"), &opts, 2).expect_err("invalid UTF-8");
        assert_eq!(err.line(), Some(line));
        let err = report_reader(bytes.as_slice(), Path::new("mem"), &opts).expect_err("invalid UTF-8");
        assert_eq!(err.line(), Some(line));
    }

    #[test]
    fn a_torn_tail_is_skipped_by_both_readers_as_by_the_ledger_reader() {
        let good = r#"{"schema":"sluice.ledger/v1","id":"d","app":"a","environment":"prd","version":"1","strategy":"canary","started_at":"2024-01-01T00:00:00Z","finished_at":"2024-01-01T00:10:00Z","outcome":"promoted"}"#;
        let opts = Options::default();
        // Two blocks of whole lines, then the tail.
        let lines = BLOCK / good.len() + 100;
        let whole: String = (0..lines).map(|_| format!("{good}\n")).collect();
        let (want, _) = report_reader(whole.as_bytes(), Path::new("mem"), &opts).expect("valid");
        // Cut anywhere in a last line (one longer than a block too, and one
        // with invalid UTF-8, which the block reader takes line by line).
        let long = good.replace(r#""id":"d""#, &format!(r#""id":"{}""#, "x".repeat(BLOCK + 10)));
        let torn_at = lines as u64 + 1;
        let tails = [&good[..1], &good[..good.len() / 2], &good[..good.len() - 1], &long[..long.len() - 3]];
        for (k, tail) in tails.into_iter().enumerate() {
            let bytes = if k % 2 == 0 { tail.as_bytes().to_vec() } else { [tail.as_bytes(), b"\xff"].concat() };
            let mut text = whole.clone().into_bytes();
            text.extend_from_slice(&bytes);
            let mut reader = sluice_core::ledger::LedgerReader::new(text.as_slice(), "mem");
            assert_eq!(reader.by_ref().filter(Result::is_ok).count(), lines);
            let expected = reader.torn().cloned().expect("torn");
            assert_eq!((expected.line, expected.bytes), (torn_at, bytes.len() as u64));

            let (report, torn) = report_read(text.as_slice(), Path::new("mem"), &opts, 2).expect("read");
            assert_eq!(torn.as_ref(), Some(&expected));
            assert_eq!(report.groups, want.groups);
            assert_eq!(report.notes.last(), Some(&expected.to_string()));
            let (report, torn) = report_reader(text.as_slice(), Path::new("mem"), &opts).expect("read");
            assert_eq!((report.groups, torn.as_ref()), (want.groups.clone(), Some(&expected)));
        }
        // The same bytes followed by a newline are damage, on line 50,001.
        let text = format!("{whole}{}\n", &good[..good.len() / 2]);
        let err = report_read(text.as_bytes(), Path::new("mem"), &opts, 2).expect_err("damaged");
        assert_eq!(err.line(), Some(torn_at));
        assert_eq!(report_reader(text.as_bytes(), Path::new("mem"), &opts).expect_err("damaged").line(), Some(torn_at));
        // A whole last entry without its newline counts.
        let text = format!("{whole}{good}");
        let (report, torn) = report_read(text.as_bytes(), Path::new("mem"), &opts, 2).expect("valid");
        assert_eq!((report.groups[0].counts.deployments, torn), (lines as u64 + 1, None));
    }
}
