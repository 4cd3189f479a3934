//! Snapshot files: the state machine's bytes plus Raft metadata, written atomically and
//! checksummed.
//!
//! Layout (little-endian): magic `TALLYSNP`, version `u32`, reserved `u32`, index `u64`,
//! term `u64`, voter count `u32` and voter ids `u64`, learner count `u32` and learner ids `u64`,
//! data length `u64`, data, CRC32 of everything before it `u32`.
//!
//! A snapshot as large as the store is streamed to its file
//! ([`SnapshotStore::save_streamed`]): its length goes in the head, so the head is written last,
//! and the checksum of the head is combined with the body's, computed as it streamed.
//!
//! Order of operations for the runtime: [`SnapshotStore::save`], then append a batch with the
//! matching [`super::SnapshotMarker`] to the WAL; once that is durable (the WAL then purges its
//! old segments), call [`SnapshotStore::retain`] with the marker's index.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::SnapshotError;
use super::fs::{Fs, FsFile};
use super::record::{read_u32, read_u64};

const MAGIC: &[u8; 8] = b"TALLYSNP";
const FORMAT_VERSION: u32 = 1;
const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";
pub(super) const FIXED_BYTES: u64 = 8 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + 4;

/// Limits for the snapshot store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    snapshot_bytes_max: u64,
    snapshot_files_max: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            snapshot_bytes_max: 8 << 30,
            snapshot_files_max: 3,
        }
    }
}

impl SnapshotConfig {
    /// Largest snapshot file accepted on save or load.
    #[must_use]
    pub fn with_snapshot_bytes_max(mut self, bytes: u64) -> Self {
        self.snapshot_bytes_max = bytes;
        self
    }
    /// How many snapshot files `retain` keeps (at least 1).
    #[must_use]
    pub fn with_snapshot_files_max(mut self, files: usize) -> Self {
        self.snapshot_files_max = files.max(1);
        self
    }
    /// Largest snapshot file.
    pub fn snapshot_bytes_max(&self) -> u64 {
        self.snapshot_bytes_max
    }
    /// Snapshot files kept.
    pub fn snapshot_files_max(&self) -> usize {
        self.snapshot_files_max
    }
}

/// What a snapshot covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    index: u64,
    term: u64,
    voters: Vec<u64>,
    learners: Vec<u64>,
}

impl SnapshotMeta {
    /// Metadata for a snapshot at (index, term) with this membership.
    pub fn new(index: u64, term: u64, voters: Vec<u64>, learners: Vec<u64>) -> Self {
        Self {
            index,
            term,
            voters,
            learners,
        }
    }
    /// Last index covered.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// Term of that entry.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// Voting members' node ids.
    pub fn voters(&self) -> &[u64] {
        &self.voters
    }
    /// Learners' node ids.
    pub fn learners(&self) -> &[u64] {
        &self.learners
    }
}

/// A loaded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    meta: SnapshotMeta,
    data: Bytes,
}

impl Snapshot {
    /// The metadata.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }
    /// The state machine's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }
    /// Splits into metadata and data.
    pub fn into_parts(self) -> (SnapshotMeta, Bytes) {
        (self.meta, self.data)
    }
}

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

pub(super) fn file_name(index: u64, term: u64) -> String {
    format!("{index:016x}-{term:016x}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (i, t) = stem.split_once('-')?;
    if i.len() != 16 || t.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(i, 16).ok()?,
        u64::from_str_radix(t, 16).ok()?,
    ))
}

fn put_ids(out: &mut Vec<u8>, ids: &[u64]) {
    // Membership lists are tiny; a list longer than u32::MAX cannot reach here.
    let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
}

/// The file's head: everything before the data.
pub(super) fn head(meta: &SnapshotMeta, data_bytes: u64) -> Vec<u8> {
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&meta.index.to_le_bytes());
    head.extend_from_slice(&meta.term.to_le_bytes());
    put_ids(&mut head, &meta.voters);
    put_ids(&mut head, &meta.learners);
    head.extend_from_slice(&data_bytes.to_le_bytes());
    head
}

/// Bytes a [`BodyWriter`] gathers before writing them to the file.
const BODY_CHUNK_BYTES: usize = 1 << 20;
/// Bytes a [`BodyWriter`] writes between fdatasyncs: a snapshot of hundreds of megabytes left
/// to the kernel's writeback reaches the disk in bursts that the WAL's fdatasync waits behind
/// (see `Prealloc::step`); syncing as it goes bounds what is queued in front of the WAL.
const BODY_SYNC_BYTES: u64 = 4 << 20;

/// Streams a snapshot's body into its file (see [`SnapshotStore::save_streamed`]), a chunk at
/// a time, checksumming as it goes.
pub struct BodyWriter<'a> {
    file: &'a mut dyn FsFile,
    /// File offset of the next write.
    at: u64,
    buf: Vec<u8>,
    hasher: crc32fast::Hasher,
    /// Bytes the body may still take under `snapshot_bytes_max`.
    bytes_left: u64,
    too_large: bool,
}

impl BodyWriter<'_> {
    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let written = self.put(&buf);
        self.buf = buf;
        self.buf.clear();
        written
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(self.at, bytes)?;
        self.hasher.update(bytes);
        let before = self.at;
        self.at += bytes.len() as u64;
        if before / BODY_SYNC_BYTES != self.at / BODY_SYNC_BYTES {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl io::Write for BodyWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let len = bytes.len() as u64;
        if len > self.bytes_left {
            self.too_large = true;
            return Err(io::Error::other("snapshot larger than snapshot_bytes_max"));
        }
        self.bytes_left -= len;
        if self.buf.len() + bytes.len() > BODY_CHUNK_BYTES {
            self.flush_buf()?;
        }
        if bytes.len() >= BODY_CHUNK_BYTES {
            self.put(bytes)?;
        } else {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(BODY_CHUNK_BYTES);
            }
            self.buf.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()
    }
}

impl fmt::Debug for BodyWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter").field("at", &self.at).finish()
    }
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
        let name = file_name(meta.index, meta.term);
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
        let ids_bytes = 8 * (meta.voters.len() + meta.learners.len());
        // The head ends with the data length; its own length is known now.
        let head_bytes = head(meta, 0).len();
        let body_at = (head_bytes + prefix_bytes) as u64;
        let mut file = self.fs.create(tmp).map_err(io("create snapshot"))?;
        let mut body = BodyWriter {
            file: file.as_mut(),
            at: body_at,
            buf: Vec::new(),
            hasher: crc32fast::Hasher::new(),
            bytes_left: self
                .config
                .snapshot_bytes_max
                .saturating_sub(FIXED_BYTES + ids_bytes as u64 + prefix_bytes as u64),
            too_large: false,
        };
        let written = write_body(&mut body).and_then(|()| body.flush_buf());
        let (body_bytes, body_crc, too_large) = (body.at - body_at, body.hasher, body.too_large);
        if too_large {
            return Err(SnapshotError::TooLarge {
                bytes: FIXED_BYTES + ids_bytes as u64 + prefix_bytes as u64 + body_bytes,
                max: self.config.snapshot_bytes_max,
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
            max: self.config.snapshot_bytes_max,
        })?;
        let mut data = vec![0u8; len];
        let read = reader.read_next(&mut data)?;
        assert_eq!(read, len, "one part holds the whole data");
        Ok(Snapshot {
            meta: reader.meta().clone(),
            data: Bytes::from(data),
        })
    }

    /// Keeps the newest `snapshot_files_max` files and removes older ones, but never one at or
    /// above `durable_marker_index` (the WAL may still point at it). Returns how many went.
    pub fn retain(&self, durable_marker_index: u64) -> Result<usize, SnapshotError> {
        let found = self.list()?;
        let keep_from = found.len().saturating_sub(self.config.snapshot_files_max);
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

/// Decodes the head at the start of `buf` (a prefix of the file, up to its checksum) of a file
/// whose checksum is at `crc_at`: the meta, and where the data starts.
pub(super) fn decode_head(
    buf: &[u8],
    crc_at: u64,
) -> Result<(SnapshotMeta, usize), (u64, &'static str)> {
    if buf.len() < 32 {
        return Err((0, "file shorter than a snapshot header"));
    }
    if &buf[..8] != MAGIC {
        return Err((0, "bad snapshot magic"));
    }
    if read_u32(buf, 8) != FORMAT_VERSION {
        return Err((8, "unsupported snapshot format version"));
    }
    let index = read_u64(buf, 16);
    let term = read_u64(buf, 24);
    let mut at = 32;
    let voters = read_ids(buf, &mut at)?;
    let learners = read_ids(buf, &mut at)?;
    if at + 8 > buf.len() {
        return Err((at as u64, "snapshot header runs past the end"));
    }
    let data_len = read_u64(buf, at);
    at += 8;
    if Some(crc_at) != (at as u64).checked_add(data_len) {
        return Err((
            (at - 8) as u64,
            "snapshot data length does not match the file",
        ));
    }
    Ok((SnapshotMeta::new(index, term, voters, learners), at))
}

fn read_ids(buf: &[u8], at: &mut usize) -> Result<Vec<u64>, (u64, &'static str)> {
    if *at + 4 > buf.len() {
        return Err((*at as u64, "snapshot header runs past the end"));
    }
    let n = read_u32(buf, *at) as usize;
    *at += 4;
    if n > (buf.len() - *at) / 8 {
        return Err(((*at - 4) as u64, "membership list runs past the end"));
    }
    let ids = (0..n).map(|i| read_u64(buf, *at + 8 * i)).collect();
    *at += 8 * n;
    Ok(ids)
}
