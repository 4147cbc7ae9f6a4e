//! The profile store: `<data dir>/profiles/`.
//!
//! Layout:
//! - `<id>.pb.gz`: one gzipped pprof per stored profile, exactly the bytes
//!   the target served when it served gzip (what Go's `net/http/pprof`
//!   does), gzipped by us otherwise. `<id>` is a ULID, so ids sort by time.
//! - `index.jsonl`: one JSON object per line, [`ProfileMeta`], appended
//!   when a profile is stored. Retention rewrites it (temp file + rename).
//!
//! Writes are atomic: a profile is written to `<id>.pb.gz.tmp`, synced,
//! renamed, and only then appended to the index. A crash can lose the last
//! index lines (the index is not synced on each append); their files are
//! then orphans, and start-up deletes them along with any `*.tmp` left
//! over. A torn last index line is skipped with a warning, so is a line
//! whose file is gone.
//!
//! Retention follows the TSDB's `--storage.tsdb.retention.time`: profiles
//! older than `now - retention` are deleted by [`ProfileStore::apply_retention`]
//! (run with the TSDB's compaction timer).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use emberlens_model::{Labels, Matcher};
use serde::{Deserialize, Serialize};

/// The index file's name.
pub const INDEX_FILE: &str = "index.jsonl";

/// One stored profile, as the index and the API describe it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// ULID; the file is `<id>.pb.gz`.
    pub id: String,
    /// Profile type name (`process_cpu`, `memory`, … or a custom name);
    /// also the `__name__` label.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The target's labels plus `__name__`.
    pub labels: BTreeMap<String, String>,
    /// When the scrape started, milliseconds since the epoch.
    pub time_ms: i64,
    /// The profile's own `duration_nanos`, in milliseconds.
    #[serde(default)]
    pub duration_ms: i64,
    /// The sample types, `type/unit`.
    #[serde(default)]
    pub sample_types: Vec<String>,
    /// The period type, `type/unit` (empty when absent).
    #[serde(default)]
    pub period_type: String,
    /// Size of the stored (gzipped) file in bytes.
    pub size: u64,
}

impl ProfileMeta {
    /// The file name under the store's directory.
    pub fn file_name(&self) -> String {
        format!("{}.pb.gz", self.id)
    }

    /// The labels as [`Labels`].
    pub fn label_set(&self) -> Labels {
        Labels::from_pairs(self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ProfileStoreError {
    /// A file operation failed.
    #[error("profile store: {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No profile has this id.
    #[error("no profile with id {0:?}")]
    NotFound(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileStoreError + '_ {
    move |source| ProfileStoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What the store holds, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfileStoreStats {
    /// Stored profiles.
    pub profiles: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Profiles deleted by retention since start.
    pub deleted: u64,
}

/// The store; cheap to share behind an `Arc`. Methods do file IO: call
/// them from blocking threads.
#[derive(Debug)]
pub struct ProfileStore {
    dir: PathBuf,
    retention_ms: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Sorted by id (so by time of storing).
    metas: Vec<ProfileMeta>,
    deleted: u64,
}

impl ProfileStore {
    /// Opens (creating) `<data_dir>/profiles` and loads its index.
    pub fn open(data_dir: &Path, retention_ms: i64) -> Result<Self, ProfileStoreError> {
        let dir = data_dir.join("profiles");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let index = dir.join(INDEX_FILE);
        let text = match std::fs::read_to_string(&index) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&index)(e)),
        };
        let mut metas = Vec::new();
        let mut seen = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<ProfileMeta>(line) {
                Ok(m) if valid_id(&m.id) && dir.join(m.file_name()).is_file() => {
                    if seen.insert(m.id.clone()) {
                        metas.push(m);
                    }
                }
                Ok(m) => {
                    tracing::warn!(index = %index.display(), line = n + 1, id = %m.id, "profile index entry without its file; skipped")
                }
                Err(e) => {
                    tracing::warn!(index = %index.display(), line = n + 1, error = %e, "unreadable profile index line; skipped")
                }
            }
        }
        metas.sort_by(|a, b| a.id.cmp(&b.id));
        // Orphans: files the index does not name (a crash before the index
        // append) and temporary files.
        let known: HashSet<String> = metas.iter().map(ProfileMeta::file_name).collect();
        for e in std::fs::read_dir(&dir).map_err(io(&dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let orphan =
                name.ends_with(".tmp") || (name.ends_with(".pb.gz") && !known.contains(&name));
            if orphan {
                tracing::info!(file = %name, "removing an unindexed profile file");
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(ProfileStore {
            dir,
            retention_ms,
            inner: Mutex::new(Inner { metas, deleted: 0 }),
        })
    }

    /// The store's directory (`<data>/profiles`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores one profile: `bytes` as served (gzipped or raw protobuf, already
    /// decoded as `profile` by the caller), with `labels` and the scrape time.
    pub fn append(
        &self,
        type_name: &str,
        labels: &Labels,
        time_ms: i64,
        bytes: &[u8],
        profile: &emberlens_pprof::Profile,
    ) -> Result<ProfileMeta, ProfileStoreError> {
        let gz;
        let data = if emberlens_pprof::is_gzip(bytes) {
            bytes
        } else {
            gz = emberlens_pprof::gzip(bytes);
            &gz
        };
        let id = crate::store::new_ulid();
        let mut map: BTreeMap<String, String> = labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        map.insert("__name__".to_string(), type_name.to_string());
        let meta = ProfileMeta {
            id,
            type_name: type_name.to_string(),
            labels: map,
            time_ms,
            duration_ms: profile.duration_nanos / 1_000_000,
            sample_types: profile.sample_type_names(),
            period_type: profile
                .period_type
                .as_ref()
                .map(|vt| profile.value_type_name(vt))
                .unwrap_or_default(),
            size: data.len() as u64,
        };
        let path = self.dir.join(meta.file_name());
        let tmp = self.dir.join(format!("{}.tmp", meta.file_name()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path)(e));
        }
        let line = serde_json::to_string(&meta).map_err(|e| io(&path)(e.into()))?;
        let index = self.dir.join(INDEX_FILE);
        let mut inner = self.inner.lock().map_err(|_| poisoned(&index))?;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            let _ = std::fs::remove_file(&path);
            return Err(io(&index)(e));
        }
        // ULIDs from one process are increasing; keep the list sorted anyway.
        let at = inner.metas.partition_point(|m| m.id < meta.id);
        inner.metas.insert(at, meta.clone());
        Ok(meta)
    }

    /// Profiles with `start_ms <= time <= end_ms` whose labels match every
    /// matcher of at least one of `selectors` (all profiles when
    /// `selectors` is empty), oldest first.
    pub fn list(&self, selectors: &[Vec<Matcher>], start_ms: i64, end_ms: i64) -> Vec<ProfileMeta> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        inner
            .metas
            .iter()
            .filter(|m| m.time_ms >= start_ms && m.time_ms <= end_ms)
            .filter(|m| {
                if selectors.is_empty() {
                    return true;
                }
                let labels = m.label_set();
                selectors
                    .iter()
                    .any(|sel| sel.iter().all(|matcher| matcher.matches_labels(&labels)))
            })
            .cloned()
            .collect()
    }

    /// One profile's description.
    pub fn meta(&self, id: &str) -> Option<ProfileMeta> {
        let inner = self.inner.lock().ok()?;
        let i = inner
            .metas
            .binary_search_by(|m| m.id.as_str().cmp(id))
            .ok()?;
        inner.metas.get(i).cloned()
    }

    /// The stored (gzipped) bytes of profile `id`.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, ProfileStoreError> {
        let meta = self
            .meta(id)
            .ok_or_else(|| ProfileStoreError::NotFound(id.to_string()))?;
        let path = self.dir.join(meta.file_name());
        std::fs::read(&path).map_err(io(&path))
    }

    /// Deletes profiles stored before `now_ms - retention`; returns how many.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, ProfileStoreError> {
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        let index = self.dir.join(INDEX_FILE);
        let mut inner = self.inner.lock().map_err(|_| poisoned(&index))?;
        let (old, keep): (Vec<ProfileMeta>, Vec<ProfileMeta>) = std::mem::take(&mut inner.metas)
            .into_iter()
            .partition(|m| m.time_ms < cutoff);
        if old.is_empty() {
            inner.metas = keep;
            return Ok(0);
        }
        // The new index first: a crash after it leaves orphans, removed at start.
        let mut text = String::new();
        for m in &keep {
            if let Ok(line) = serde_json::to_string(m) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let tmp = self.dir.join(format!("{INDEX_FILE}.tmp"));
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &index));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            let mut all = keep;
            all.extend(old);
            all.sort_by(|a, b| a.id.cmp(&b.id));
            inner.metas = all;
            return Err(io(&index)(e));
        }
        inner.metas = keep;
        for m in &old {
            let _ = std::fs::remove_file(self.dir.join(m.file_name()));
        }
        inner.deleted += old.len() as u64;
        Ok(old.len())
    }

    /// Hard-links (copies where links fail) every stored profile into `to`
    /// and returns their descriptions, for a snapshot.
    pub fn snapshot_into(&self, to: &Path) -> Result<Vec<ProfileMeta>, ProfileStoreError> {
        std::fs::create_dir_all(to).map_err(io(to))?;
        let metas = match self.inner.lock() {
            Ok(inner) => inner.metas.clone(),
            Err(_) => return Err(poisoned(&self.dir)),
        };
        let mut out = Vec::with_capacity(metas.len());
        for m in metas {
            let (src, dst) = (self.dir.join(m.file_name()), to.join(m.file_name()));
            if std::fs::hard_link(&src, &dst).is_err() {
                match std::fs::copy(&src, &dst) {
                    Ok(_) => {}
                    // Retention removed it meanwhile: not part of the snapshot.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(&dst)(e)),
                }
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Counts and sizes, for `/metrics`.
    pub fn stats(&self) -> ProfileStoreStats {
        let Ok(inner) = self.inner.lock() else {
            return ProfileStoreStats::default();
        };
        ProfileStoreStats {
            profiles: inner.metas.len() as u64,
            bytes: inner.metas.iter().map(|m| m.size).sum(),
            deleted: inner.deleted,
        }
    }
}

fn poisoned(path: &Path) -> ProfileStoreError {
    ProfileStoreError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other("lock poisoned by a panic"),
    }
}

/// Whether `id` has the shape of a stored id (a ULID: 26 Crockford base32
/// characters), so it cannot name a path outside the store.
pub fn valid_id(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> (emberlens_pprof::Profile, Vec<u8>) {
        let p = emberlens_pprof::Profile {
            sample_type: vec![emberlens_pprof::ValueType { r#type: 1, unit: 2 }],
            string_table: vec!["".into(), "samples".into(), "count".into()],
            duration_nanos: 2_000_000_000,
            ..Default::default()
        };
        let gz = emberlens_pprof::encode_gzip(&p);
        (p, gz)
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "emberlens-profstore-{tag}-{}-{}",
            std::process::id(),
            crate::scrape::now_ms()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn stores_lists_reloads_and_retains() {
        let dir = tmp("basic");
        let (p, gz) = profile();
        let labels = Labels::from_pairs([("job", "a"), ("instance", "h:1")]);
        let store = ProfileStore::open(&dir, 10_000).unwrap();
        let m1 = store
            .append("process_cpu", &labels, 1_000, &gz, &p)
            .unwrap();
        let m2 = store
            .append("memory", &labels, 5_000, &emberlens_pprof::encode(&p), &p)
            .unwrap();
        assert!(valid_id(&m1.id) && m1.id < m2.id);
        assert_eq!(store.read(&m1.id).unwrap(), gz, "gzip stored as served");
        assert!(
            emberlens_pprof::is_gzip(&store.read(&m2.id).unwrap()),
            "raw gzipped"
        );
        assert_eq!(m1.labels["__name__"], "process_cpu");
        assert_eq!(m1.duration_ms, 2_000);
        assert_eq!(m1.sample_types, ["samples/count"]);
        let sel = emberlens_model::parse_selector("{__name__=\"memory\",job=\"a\"}").unwrap();
        assert_eq!(store.list(&[sel], 0, 10_000), vec![m2.clone()]);
        assert_eq!(store.list(&[], 0, 4_999), vec![m1.clone()]);
        drop(store);
        // A torn line, an entry without its file and an orphan file.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("profiles").join(INDEX_FILE))
            .unwrap();
        f.write_all(b"{\"id\":\"01ARZ3NDEKTSV4RRFFQ69G5FAV\",\"type\":\"x\",\"labels\":{},\"time_ms\":1,\"size\":1}\n{\"id\":\"trunc")
            .unwrap();
        std::fs::write(dir.join("profiles/01ARZ3NDEKTSV4RRFFQ69G5FAW.pb.gz"), b"x").unwrap();
        let store = ProfileStore::open(&dir, 10_000).unwrap();
        assert_eq!(
            store.list(&[], i64::MIN, i64::MAX),
            [m1.clone(), m2.clone()]
        );
        assert!(
            !dir.join("profiles/01ARZ3NDEKTSV4RRFFQ69G5FAW.pb.gz")
                .exists()
        );
        assert_eq!(store.apply_retention(12_000).unwrap(), 1);
        assert_eq!(store.list(&[], i64::MIN, i64::MAX), vec![m2.clone()]);
        assert!(!dir.join("profiles").join(m1.file_name()).exists());
        let store = ProfileStore::open(&dir, 10_000).unwrap();
        assert_eq!(store.stats().profiles, 1);
        let snap = dir.join("snap");
        assert_eq!(store.snapshot_into(&snap).unwrap(), vec![m2.clone()]);
        assert_eq!(
            std::fs::read(snap.join(m2.file_name())).unwrap(),
            store.read(&m2.id).unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ids_cannot_name_paths() {
        assert!(valid_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(!valid_id("../../../../etc/passwd"));
        assert!(!valid_id("01ARZ3NDEKTSV4RRFFQ69G5FA/"));
        assert!(!valid_id("01arz3ndektsv4rrffq69g5fav"));
    }
}
