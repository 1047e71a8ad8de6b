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

use crate::compute::{Accumulator, FastView, Options};
use crate::fast::{self, FastCommit};
use crate::read::parse_line;
use crate::{Error, Report};

const BLOCK: usize = 4 << 20;

struct Block {
    index: u64,
    bytes: Vec<u8>,
}

/// Reads a ledger file and computes its report. The first damaged line (by
/// line number) is the error.
pub fn report_file(path: &Path, opts: &Options) -> Result<Report, Error> {
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    report_read(file, path, opts, threads)
}

/// Computes a report from any reader of ledger lines on one thread
/// (standard input, a test buffer).
pub fn report_reader<R: BufRead>(reader: R, path: &Path, opts: &Options) -> Result<Report, Error> {
    let mut acc = Accumulator::new(opts);
    for (line, bytes) in reader.split(b'\n').enumerate() {
        let bytes = bytes.map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let line = line as u64 + 1;
        let mut commits = Vec::new();
        push_line(&mut acc, &bytes, path, line, line, &mut commits)?;
    }
    Ok(acc.finish())
}

/// Folds one line into `acc`: the fast parser, else serde (which names the
/// error of a damaged line).
fn push_line<'a>(
    acc: &mut Accumulator<'_>,
    bytes: &'a [u8],
    path: &Path,
    line: u64,
    seq: u64,
    commits: &mut Vec<FastCommit<'a>>,
) -> Result<(), Error> {
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() {
        return Ok(());
    }
    if let Some(entry) = fast::parse(trimmed, commits) {
        acc.push(&FastView { entry: &entry, commits }, seq);
    } else if let Some(entry) = parse_line(trimmed, path, line)? {
        acc.push(&entry, seq);
    }
    Ok(())
}

struct Done<'o> {
    acc: Accumulator<'o>,
    /// (block index, lines in it) of every block this worker parsed.
    lines: Vec<(u64, u64)>,
    /// The first error, with its line counted within its block.
    error: Option<(u64, Error)>,
}

fn report_read<R: Read>(mut file: R, path: &Path, opts: &Options, threads: usize) -> Result<Report, Error> {
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    // Parsed blocks come back to be filled again: no fresh pages to fault in.
    let (spare_tx, spare_rx) = channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let spare = spare_tx.clone();
                s.spawn(move || work(&rx, &spare, path, opts))
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
        let mut errors = Vec::new();
        for w in workers {
            match w.join() {
                Ok(done) => {
                    lines.extend(done.lines);
                    errors.extend(done.error);
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
        if !errors.is_empty() {
            // Line numbers: the lines of all blocks before the error's block.
            lines.sort_unstable();
            let first = errors
                .into_iter()
                .map(|(block, e)| {
                    let before: u64 = lines.iter().take_while(|l| l.0 < block).map(|l| l.1).sum();
                    e.shift_line(before)
                })
                .min_by_key(|e| e.line().unwrap_or(u64::MAX));
            if let Some(e) = first {
                return Err(e);
            }
        }
        Ok(merged.unwrap_or_else(|| Accumulator::new(opts)).finish())
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
/// starts, without looking for the line's end first. Returns the number of
/// lines.
fn scan_text(acc: &mut Accumulator<'_>, text: &str, path: &Path, block: u64) -> Result<u64, Error> {
    let b = text.as_bytes();
    let mut commits = Vec::new();
    let (mut pos, mut line) = (0usize, 0u64);
    while pos < b.len() {
        line += 1;
        let seq = (block << 32) | line;
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
        push_line(acc, &b[pos..eol], path, line, seq, &mut Vec::new())?;
        pos = eol + 1;
    }
    Ok(line)
}

/// A block with invalid UTF-8 somewhere: line by line.
fn scan_lines(acc: &mut Accumulator<'_>, bytes: &[u8], path: &Path, block: u64) -> Result<u64, Error> {
    let mut line = 0;
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for text in body.split(|&b| b == b'\n') {
        line += 1;
        push_line(acc, text, path, line, (block << 32) | line, &mut Vec::new())?;
    }
    Ok(line)
}

/// Parses blocks until the channel closes. After a damaged line it only
/// counts lines, so that the reader never blocks and later line numbers
/// stay right.
fn work<'o>(rx: &Mutex<Receiver<Block>>, spare: &Sender<Vec<u8>>, path: &Path, opts: &'o Options) -> Done<'o> {
    let mut done = Done { acc: Accumulator::new(opts), lines: Vec::new(), error: None };
    loop {
        let block = {
            let Ok(guard) = rx.lock() else { break };
            match guard.recv() {
                Ok(b) => b,
                Err(_) => break,
            }
        };
        let bytes = block.bytes.as_slice();
        if done.error.is_some() {
            done.lines.push((block.index, count_lines(bytes)));
            continue;
        }
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => scan_text(&mut done.acc, text, path, block.index),
            Err(_) => scan_lines(&mut done.acc, bytes, path, block.index),
        };
        match result {
            Ok(lines) => done.lines.push((block.index, lines)),
            Err(e) => {
                done.lines.push((block.index, count_lines(bytes)));
                done.error = Some((block.index, e));
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
        let report = report_read(text.as_bytes(), Path::new("mem"), &opts, 3).expect("valid");
        assert_eq!(report.groups[0].counts.deployments, 199_999);
        let single = report_reader(text.as_bytes(), Path::new("mem"), &opts).expect("valid");
        assert_eq!(report, single);

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
}
