//! The environment lease of the file ledger: one deployment at a time per
//! app and environment.
//!
//! A lease is a small JSON file beside the ledger
//! (`<ledger dir>/leases/<app>.<environment>.json`) naming the deployment
//! that holds the environment, who runs it, and until when. It is read and
//! replaced only under an exclusive lock on a sibling `.lock` file, so two
//! steps started together see one another: one gets the lease, the other is
//! told who holds it. A lease left by a run that died expires; the next
//! deployment takes it over and says so. Only the holder releases it.
//!
//! Names in the path are checked names (`names`), so they carry no path
//! tricks.

use crate::record::write_atomic;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Schema tag of a lease file.
pub const LEASE_SCHEMA: &str = "sluice.lease/v1";

/// Who holds an environment, and until when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub schema: String,
    pub app: String,
    pub environment: String,
    /// The record id of the deployment that holds it.
    pub record_id: String,
    pub version: String,
    /// Who runs it: the actor, and the workflow run or the host and process.
    pub holder: String,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Lease {
    /// "deployment shop-dev-v2-… (release v2, alice, https://…/runs/1) until 12:30:00Z".
    pub fn describe(&self) -> String {
        format!(
            "deployment {} (release {}, {}) until {}",
            self.record_id,
            self.version,
            self.holder,
            self.expires_at.strftime("%Y-%m-%d %H:%M:%SZ")
        )
    }
}

/// What acquiring did.
#[derive(Clone, Debug, PartialEq)]
pub enum Acquired {
    /// The environment was free.
    New,
    /// This deployment held it already; its expiry moved on.
    Renewed,
    /// Another deployment's lease had expired (its run died or forgot to
    /// release it): this one took over.
    TookOver(Lease),
}

/// Why the lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "environment {environment} is held by {}: one promotion per environment at a time; wait for it to end, or for the lease to expire if that run is dead",
        .holder.describe()
    )]
    Held { environment: String, holder: Box<Lease> },
    #[error("cannot use the lease {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the lease {path} is damaged ({reason}); remove it if no deployment is running in this environment")]
    Damaged { path: PathBuf, reason: String },
}

/// The lease file of an app and environment, beside the ledger `ledger`.
pub fn path(ledger: &Path, app: &str, environment: &str) -> PathBuf {
    let dir = match ledger.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    dir.join("leases").join(format!("{app}.{environment}.json"))
}

/// Takes or renews the lease for `want.record_id` until `want.expires_at`,
/// unless another deployment holds an unexpired one.
pub fn acquire(path: &Path, want: &Lease, now: Timestamp) -> Result<Acquired, LeaseError> {
    locked(path, |current| match current {
        None => Ok((Some(want.clone()), Acquired::New)),
        Some(held) if held.record_id == want.record_id => {
            let renewed = Lease { acquired_at: held.acquired_at, ..want.clone() };
            Ok((Some(renewed), Acquired::Renewed))
        }
        Some(held) if held.expires_at > now => {
            Err(LeaseError::Held { environment: held.environment.clone(), holder: Box::new(held) })
        }
        Some(expired) => Ok((Some(want.clone()), Acquired::TookOver(expired))),
    })
}

/// Gives the lease up if `record_id` holds it; anything else is left alone.
/// Returns whether it was released.
pub fn release(path: &Path, record_id: &str) -> Result<bool, LeaseError> {
    locked(path, |current| match current {
        Some(held) if held.record_id == record_id => Ok((None, true)),
        other => Ok((other, false)),
    })
}

/// The lease as it is, without changing it.
pub fn read(path: &Path) -> Result<Option<Lease>, LeaseError> {
    locked(path, |current| Ok((current.clone(), current)))
}

/// Runs `f` on the current lease under the exclusive lock, and writes (or
/// removes) what it returns when that differs.
fn locked<T>(
    path: &Path,
    f: impl FnOnce(Option<Lease>) -> Result<(Option<Lease>, T), LeaseError>,
) -> Result<T, LeaseError> {
    let io = |source| LeaseError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let lock_path = path.with_extension("lock");
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io)?;
    lock.lock().map_err(io)?;
    let current = match std::fs::read(path) {
        Ok(bytes) => Some(
            serde_json::from_slice::<Lease>(&bytes)
                .map_err(|e| LeaseError::Damaged { path: path.to_owned(), reason: e.to_string() })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    if let Some(lease) = &current
        && lease.schema != LEASE_SCHEMA
    {
        return Err(LeaseError::Damaged {
            path: path.to_owned(),
            reason: format!("schema {:?} is not {LEASE_SCHEMA:?}", lease.schema),
        });
    }
    let before = current.clone();
    let (next, out) = f(current)?;
    if next != before {
        match &next {
            Some(lease) => {
                let mut json = serde_json::to_vec_pretty(lease).map_err(|e| io(std::io::Error::other(e)))?;
                json.push(b'\n');
                write_atomic(path, &json).map_err(io)?;
            }
            None => std::fs::remove_file(path).map_err(io)?,
        }
    }
    lock.unlock().map_err(io)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn lease(id: &str, now: Timestamp, seconds: i64) -> Lease {
        Lease {
            schema: LEASE_SCHEMA.into(),
            app: "shop".into(),
            environment: "dev".into(),
            record_id: id.into(),
            version: "v2".into(),
            holder: "alice (pid 1)".into(),
            acquired_at: now,
            expires_at: now + jiff::SignedDuration::from_secs(seconds),
        }
    }

    #[test]
    fn one_holder_at_a_time_renewals_takeover_and_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path(&dir.path().join("ledger.jsonl"), "shop", "dev");
        let t0: Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        assert_eq!(acquire(&path, &lease("a", t0, 60), t0).expect("free"), Acquired::New);
        let later = t0 + jiff::SignedDuration::from_secs(30);
        assert_eq!(acquire(&path, &lease("a", later, 60), later).expect("own"), Acquired::Renewed);
        let held = read(&path).expect("read").expect("held");
        assert_eq!((held.acquired_at, held.expires_at), (t0, later + jiff::SignedDuration::from_secs(60)));
        match acquire(&path, &lease("b", later, 60), later) {
            Err(e @ LeaseError::Held { .. }) => {
                let text = e.to_string();
                assert!(text.contains("held by deployment a (release v2, alice (pid 1))"), "{text}");
                assert!(text.contains("until 2026-11-23 10:01:30Z"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!release(&path, "b").expect("release"), "only the holder releases");
        let expired = t0 + jiff::SignedDuration::from_secs(120);
        match acquire(&path, &lease("b", expired, 60), expired).expect("expired") {
            Acquired::TookOver(old) => assert_eq!(old.record_id, "a"),
            other => panic!("{other:?}"),
        }
        assert!(release(&path, "b").expect("release"));
        assert_eq!(read(&path).expect("read"), None);
    }

    #[test]
    fn concurrent_acquirers_get_one_lease() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Arc::new(path(&dir.path().join("ledger.jsonl"), "shop", "dev"));
        let now = Timestamp::now();
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (path, barrier) = (Arc::clone(&path), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    acquire(&path, &lease(&format!("r{i}"), now, 60), now).is_ok()
                })
            })
            .collect();
        let winners = handles.into_iter().map(|h| h.join().expect("thread")).filter(|ok| *ok).count();
        assert_eq!(winners, 1);
    }

    #[test]
    fn a_damaged_lease_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path(&dir.path().join("ledger.jsonl"), "shop", "dev");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        std::fs::write(&path, b"{ not json").expect("write");
        let err = acquire(&path, &lease("a", Timestamp::now(), 60), Timestamp::now()).expect_err("damaged");
        assert!(err.to_string().contains("remove it if no deployment is running"), "{err}");
    }
}
