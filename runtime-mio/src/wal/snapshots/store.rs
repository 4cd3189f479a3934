//! A directory of snapshot files: saving, listing, loading whole, and retention.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::body::BodyWriter;
use super::config::SnapshotConfig;
use super::format::{FIXED_BYTES, TMP_SUFFIX, file_name, head, parse_name};
use super::meta::{Snapshot, SnapshotMeta};
use crate::wal::error::SnapshotError;
use crate::wal::fs::Fs;

/// A directory of snapshot files.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    config: SnapshotConfig,
    fs: Box<dyn Fs>,
    /// Names the temporary files of incoming snapshots apart: two peers may send the same
    /// snapshot at once (a leader change mid-transfer).
    incoming_seq: std::sync::atomic::AtomicU64,
}

impl SnapshotStore {
    /// Opens (or creates) the store, removing temporary files a crash left behind.
    pub fn open(
        dir: &Path,
        config: SnapshotConfig,
        fs: Box<dyn Fs>,
    ) -> Result<SnapshotStore, SnapshotError> {
        fs.create_dir_all(dir)
            .map_err(|e| SnapshotError::io("create directory", dir, e))?;
        let names = fs
            .list_dir(dir)
            .map_err(|e| SnapshotError::io("list directory", dir, e))?;
        let mut removed = false;
        for name in names.iter().filter(|n| n.ends_with(TMP_SUFFIX)) {
            let path = dir.join(name);
            fs.remove_file(&path)
                .map_err(|e| SnapshotError::io("remove temporary snapshot", path, e))?;
            removed = true;
        }
        if removed {
            fs.sync_dir(dir)
                .map_err(|e| SnapshotError::io("fsync directory", dir, e))?;
        }
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
            config,
            fs,
            incoming_seq: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn config(&self) -> &SnapshotConfig {
        &self.config
    }

    pub(super) fn fs(&self) -> &dyn Fs {
        self.fs.as_ref()
    }

    /// A number no other incoming snapshot of this store has.
    pub(super) fn next_incoming_seq(&self) -> u64 {
        self.incoming_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes a snapshot atomically: temporary file, fdatasync, rename, fsync of the directory.
    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), SnapshotError> {
        self.save_streamed(meta, 0, |body| body.write_all(data), |_| Vec::new())?;
        Ok(())
    }

    /// [`save`](Self::save) for data as large as a store, which need not be in memory at once:
    /// `write_body` streams the data's body, then `prefix(body_bytes)` gives the
    /// `prefix_bytes` bytes that go in front of it (a header that records the body's length).
    /// Returns the data's length (prefix and body).
    pub fn save_streamed(
        &self,
        meta: &SnapshotMeta,
        prefix_bytes: usize,
        write_body: impl FnOnce(&mut BodyWriter<'_>) -> io::Result<()>,
        prefix: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, SnapshotError> {
        let name = file_name(meta.index(), meta.term());
        let tmp = self.dir.join(format!("{name}.tmp"));
        let saved = self.write_streamed(&tmp, meta, prefix_bytes, write_body, prefix);
        if saved.is_err() {
            // Best effort: `open` removes leftovers anyway.
            let _ = self.fs.remove_file(&tmp);
            return saved;
        }
        self.install_tmp(&tmp, &name)?;
        saved
    }

    /// Gives the durable temporary file `tmp` its final `name`, durably.
    pub(super) fn install_tmp(&self, tmp: &Path, name: &str) -> Result<(), SnapshotError> {
        let path = self.dir.join(name);
        self.fs
            .rename(tmp, &path)
            .map_err(|e| SnapshotError::io("rename snapshot", &path, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| SnapshotError::io("fsync directory", &self.dir, e))
    }

    /// The temporary file of [`save_streamed`](Self::save_streamed), written and synced.
    fn write_streamed(
        &self,
        tmp: &Path,
        meta: &SnapshotMeta,
        prefix_bytes: usize,
        write_body: impl FnOnce(&mut BodyWriter<'_>) -> io::Result<()>,
        prefix: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, SnapshotError> {
        let io = |op| move |e| SnapshotError::io(op, tmp, e);
        let ids_bytes = 8 * (meta.voters().len() + meta.learners().len());
        // The head ends with the data length; its own length is known now.
        let head_bytes = head(meta, 0).len();
        let body_at = (head_bytes + prefix_bytes) as u64;
        let mut file = self.fs.create(tmp).map_err(io("create snapshot"))?;
        let mut body = BodyWriter::new(
            file.as_mut(),
            body_at,
            self.config
                .snapshot_bytes_max()
                .saturating_sub(FIXED_BYTES + ids_bytes as u64 + prefix_bytes as u64),
        );
        let written = write_body(&mut body).and_then(|()| body.flush_buf());
        let (body_end, body_crc, too_large) = body.into_end();
        let body_bytes = body_end - body_at;
        if too_large {
            return Err(SnapshotError::TooLarge {
                bytes: FIXED_BYTES + ids_bytes as u64 + prefix_bytes as u64 + body_bytes,
                max: self.config.snapshot_bytes_max(),
            });
        }
        written.map_err(io("write snapshot"))?;
        let prefix = prefix(body_bytes);
        assert_eq!(prefix.len(), prefix_bytes, "the prefix promised its length");
        let data_bytes = (prefix_bytes as u64) + body_bytes;
        let mut front = head(meta, data_bytes);
        front.extend_from_slice(&prefix);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&front);
        hasher.combine(&body_crc);
        let crc = hasher.finalize().to_le_bytes();
        file.write_all_at(0, &front).map_err(io("write snapshot"))?;
        file.write_all_at(body_at + body_bytes, &crc)
            .map_err(io("write snapshot"))?;
        file.sync_data().map_err(io("fdatasync snapshot"))?;
        Ok(data_bytes)
    }

    /// (index, term) of every snapshot file, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, u64)>, SnapshotError> {
        let names = self
            .fs
            .list_dir(&self.dir)
            .map_err(|e| SnapshotError::io("list directory", &self.dir, e))?;
        let mut found: Vec<_> = names.iter().filter_map(|n| parse_name(n)).collect();
        found.sort_unstable();
        Ok(found)
    }

    /// Loads and verifies the snapshot at (index, term) whole: [`Self::open_reader`] read to
    /// its end in one part. (tallyd streams instead; this is for callers that want the bytes.)
    pub fn load(&self, index: u64, term: u64) -> Result<Snapshot, SnapshotError> {
        let mut reader = self.open_reader(index, term)?;
        let len = usize::try_from(reader.data_len()).map_err(|_| SnapshotError::TooLarge {
            bytes: reader.data_len(),
            max: self.config.snapshot_bytes_max(),
        })?;
        let mut data = vec![0u8; len];
        let read = reader.read_next(&mut data)?;
        assert_eq!(read, len, "one part holds the whole data");
        Ok(Snapshot::new(reader.meta().clone(), Bytes::from(data)))
    }

    /// Keeps the newest `snapshot_files_max` files and removes older ones, but never one at or
    /// above `durable_marker_index` (the WAL may still point at it). Returns how many went.
    pub fn retain(&self, durable_marker_index: u64) -> Result<usize, SnapshotError> {
        let found = self.list()?;
        let keep_from = found.len().saturating_sub(self.config.snapshot_files_max());
        let mut removed = 0;
        for &(index, term) in &found[..keep_from] {
            if index >= durable_marker_index {
                break;
            }
            let path = self.dir.join(file_name(index, term));
            self.fs
                .remove_file(&path)
                .map_err(|e| SnapshotError::io("remove snapshot", path, e))?;
            removed += 1;
        }
        if removed > 0 {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| SnapshotError::io("fsync directory", &self.dir, e))?;
        }
        Ok(removed)
    }
}
