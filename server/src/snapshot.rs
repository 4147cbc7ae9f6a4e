//! Snapshots: `POST /api/v1/admin/tsdb/snapshot` and
//! `GET /api/v1/snapshots/<name>.tar`.
//!
//! A snapshot is a directory `<data>/snapshots/<name>/` as Prometheus makes
//! it: every block hard-linked (copied where links fail), plus the head
//! written as one more block unless `skip_head=true`. Emberlens adds
//! `profiles/` (the stored profiles, hard-linked: `<id>.pb.gz`) and
//! `emberlens.json`, a manifest naming the blocks and their time ranges and
//! the profiles (id, type, labels, time, file).
//! Unpacked, the directory opens in Prometheus and in `promtool tsdb`.
//!
//! Names are Prometheus's (`20060102T150405Z-<16 hex digits>`); downloads
//! accept only names of that shape, so a name can never leave the
//! snapshots directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use emberlens_tsdb::meta::Compaction;
use emberlens_tsdb::writer::{BlockWriter, WriteError};

use crate::profiles::store::ProfileStore;
use crate::store::wal::WalError;
use crate::store::{DirSink, StoreError, Tsdb};
use crate::web::format_rfc3339;

/// Whether `name` has the shape of a snapshot name.
pub fn valid_name(name: &str) -> bool {
    let Some((time, hex)) = name.split_once('-') else {
        return false;
    };
    let t = time.as_bytes();
    t.len() == 16
        && t[..8].iter().all(u8::is_ascii_digit)
        && t[8] == b'T'
        && t[9..15].iter().all(u8::is_ascii_digit)
        && t[15] == b'Z'
        && !hex.is_empty()
        && hex.len() <= 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The snapshots directory of a data directory.
pub fn snapshots_dir(data: &Path) -> PathBuf {
    data.join("snapshots")
}

/// Creates a snapshot, with `profiles`' stored profiles; returns its name.
pub fn create(
    db: &Tsdb,
    profiles: Option<&ProfileStore>,
    skip_head: bool,
) -> Result<String, StoreError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = format_rfc3339((now.as_secs() * 1000) as i64)
        .replace(['-', ':'], "")
        .replace(".000", "");
    // Eight random-enough bytes: the clock's nanoseconds mixed with the pid
    // and the data directory's path (names need to be unique, not secret).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(now.as_nanos(), std::process::id(), db.dir()), &mut h);
    let name = format!("{stamp}-{:016x}", std::hash::Hasher::finish(&h));
    let dir = snapshots_dir(db.dir()).join(&name);
    let io = |p: &Path, e| StoreError::Wal(WalError::io(p, e));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut blocks = Vec::new();
    let all = db.blocks_db();
    for b in all.blocks() {
        let m = b.meta();
        link_tree(&db.dir().join(&m.ulid), &dir.join(&m.ulid))?;
        blocks.push(m.clone());
    }
    if !skip_head {
        let (min, max) = db.head().time_range();
        if min <= max {
            let id = crate::store::new_ulid();
            let block_dir = dir.join(&id);
            let mut w = BlockWriter::new(&id, DirSink::new(&block_dir));
            let written = db
                .head()
                .write_block(min, max.saturating_add(1), &mut w)
                .and_then(|()| w.finish(Compaction::default()))
                .and_then(|(meta, sink)| sink.close().map(|()| meta));
            match written {
                Ok(meta) => blocks.push(meta),
                Err(WriteError::Empty) => {
                    let _ = std::fs::remove_dir_all(&block_dir);
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&block_dir);
                    return Err(StoreError::Write(e.to_string()));
                }
            }
        }
    }
    let profiles_dir = dir.join("profiles");
    std::fs::create_dir_all(&profiles_dir).map_err(|e| io(&profiles_dir, e))?;
    let stored = match profiles {
        Some(store) => store
            .snapshot_into(&profiles_dir)
            .map_err(|e| StoreError::Write(e.to_string()))?,
        None => Vec::new(),
    };
    let manifest = serde_json::json!({
        "format": "emberlens-snapshot",
        "version": 1,
        "name": name,
        "createdAt": format_rfc3339(now.as_millis() as i64),
        "generator": format!("emberlens {}", env!("CARGO_PKG_VERSION")),
        "blocks": blocks.iter().map(|m| serde_json::json!({
            "ulid": m.ulid,
            "minTime": m.min_time,
            "maxTime": m.max_time,
            "numSeries": m.stats.num_series,
            "numSamples": m.stats.num_samples,
        })).collect::<Vec<_>>(),
        "profiles": stored.iter().map(|m| serde_json::json!({
            "id": m.id,
            "type": m.type_name,
            "labels": m.labels,
            "time": format_rfc3339(m.time_ms),
            "timeMs": m.time_ms,
            "sampleTypes": m.sample_types,
            "file": format!("profiles/{}", m.file_name()),
            "size": m.size,
        })).collect::<Vec<_>>(),
        "views": [],
        "dashboards": [],
    });
    let p = dir.join("emberlens.json");
    std::fs::write(&p, format!("{manifest:#}\n")).map_err(|e| io(&p, e))?;
    Ok(name)
}

/// Hard-links (or copies) every file of `from` into `to`.
fn link_tree(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io = |p: &Path, e| StoreError::Wal(WalError::io(p, e));
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let e = e.map_err(|e| io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().map_err(|err| io(&src, err))?.is_dir() {
            link_tree(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|err| io(&dst, err))?;
        }
    }
    Ok(())
}

/// Writes the snapshot directory `dir` as a tar to `out`: files sorted by
/// path, directories first, paths relative to the snapshot.
pub fn write_tar(dir: &Path, out: impl Write) -> std::io::Result<()> {
    let mut archive = tar::Builder::new(out);
    archive.mode(tar::HeaderMode::Deterministic);
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    for (rel, is_dir) in files {
        let full = dir.join(&rel);
        if is_dir {
            archive.append_dir(&rel, &full)?;
        } else {
            let mut f = std::fs::File::open(&full)?;
            archive.append_file(&rel, &mut f)?;
        }
    }
    archive.into_inner()?.flush()
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        if e.file_type()?.is_dir() {
            out.push((r.clone(), true));
            collect(root, &r, out)?;
        } else {
            out.push((r, false));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("20171210T211224Z-2be650b6d019eb54"));
        assert!(!valid_name("../../etc/passwd"));
        assert!(!valid_name("20171210T211224Z-2BE6"));
        assert!(!valid_name("20171210T211224Z-"));
        assert!(!valid_name("20171210T211224Z-2be6/.."));
        assert!(!valid_name("2017121xT211224Z-2be6"));
    }
}
