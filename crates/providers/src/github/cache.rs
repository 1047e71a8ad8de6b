//! A small on-disk cache for conditional requests: per URL, the last `ETag`,
//! `Link` header and body. A `304 Not Modified` answer is served from here,
//! so an unchanged page costs nothing against the rate limit.
//!
//! Holds response bodies only, never a request header: the token is never
//! written here. Entries beyond [`MAX_ENTRIES`] are dropped oldest first.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Most entries kept; enough for every page one promotion reads.
pub const MAX_ENTRIES: usize = 256;

/// One cached answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub url: String,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub body: String,
}

/// The cache directory.
#[derive(Clone, Debug)]
pub struct EtagCache {
    dir: PathBuf,
}

impl EtagCache {
    pub fn new(dir: &Path) -> EtagCache {
        EtagCache { dir: dir.to_owned() }
    }

    fn file(&self, url: &str) -> PathBuf {
        self.dir.join(format!("{:016x}.json", fnv1a(url.as_bytes())))
    }

    /// The cached answer for `url`, if any (a damaged entry is a miss).
    pub fn get(&self, url: &str) -> Option<Entry> {
        let bytes = std::fs::read(self.file(url)).ok()?;
        serde_json::from_slice::<Entry>(&bytes).ok().filter(|e| e.url == url)
    }

    /// Stores an answer; a cache that cannot be written only costs requests,
    /// so failures are ignored.
    pub fn put(&self, entry: &Entry) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(json) = serde_json::to_vec(entry) {
            let _ = sluice_core::record::write_atomic(&self.file(&entry.url), &json);
        }
        self.trim();
    }

    fn trim(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= MAX_ENTRIES {
            return;
        }
        files.sort();
        for (_, path) in &files[..files.len() - MAX_ENTRIES] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// FNV-1a: a stable file name for a URL (std's hasher may change between
/// Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_finds_by_url_and_keeps_at_most_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = EtagCache::new(dir.path());
        let entry = |i: usize| Entry {
            url: format!("http://x/{i}"),
            etag: format!("W/\"{i}\""),
            link: None,
            body: "[]".into(),
        };
        cache.put(&entry(1));
        assert_eq!(cache.get("http://x/1"), Some(entry(1)));
        assert_eq!(cache.get("http://x/2"), None);
        for i in 0..MAX_ENTRIES + 5 {
            cache.put(&entry(i));
        }
        let count = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(count, MAX_ENTRIES);
    }
}
