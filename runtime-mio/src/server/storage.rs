//! The glue between the core's `Persist` actions and the WAL and snapshot files.
//!
//! Layout, as etcd's: `<data-dir>/member/wal/` and `<data-dir>/member/snap/`.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tally_core::{
    ConfState, Entry, EntryKind, HardState, Persist, Recovered, Snapshot, SnapshotMeta,
};

use super::payload;
use crate::wal::{self, Batch, SnapshotConfig, SnapshotStore, StdFs, Wal, WalConfig};

/// Why the data directory could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    Wal(wal::WalError),
    Snapshot(wal::SnapshotError),
    /// The WAL points at a snapshot whose bytes are not a tally snapshot.
    BadSnapshot(PathBuf),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Wal(e) => write!(f, "write-ahead log: {e}"),
            StorageError::Snapshot(e) => write!(f, "snapshot: {e}"),
            StorageError::BadSnapshot(dir) => {
                write!(f, "snapshot in {} is not a tally snapshot", dir.display())
            }
        }
    }
}

impl std::error::Error for StorageError {}

impl From<wal::WalError> for StorageError {
    fn from(e: wal::WalError) -> Self {
        StorageError::Wal(e)
    }
}

impl From<wal::SnapshotError> for StorageError {
    fn from(e: wal::SnapshotError) -> Self {
        StorageError::Snapshot(e)
    }
}

/// What opening the data directory found.
#[derive(Debug)]
pub struct Opened {
    pub(super) wal: Wal,
    pub(super) snapshots: SnapshotStore,
    /// `None` for an empty data directory (a new member). Its snapshot carries no bytes: they
    /// stay in the file, read once into the store through `snapshot`.
    pub(super) recovered: Option<Recovered>,
    /// The recovered snapshot's file, open to stream into the store.
    pub(super) snapshot: Option<wal::SnapshotReader>,
}

pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("wal")
}

pub fn snap_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("snap")
}

/// Where a member keeps its files, and how many snapshot files it keeps.
#[derive(Debug, Clone)]
pub struct Layout {
    wal_dir: PathBuf,
    snap_dir: PathBuf,
    snapshot_files_max: Option<usize>,
}

impl Layout {
    /// etcd's layout under `--data-dir`, with `--wal-dir` and `--max-snapshots` if given.
    pub fn of(flags: &super::flags::Flags) -> Layout {
        Layout {
            wal_dir: flags
                .wal_dir()
                .cloned()
                .unwrap_or_else(|| wal_dir(flags.data_dir())),
            snap_dir: snap_dir(flags.data_dir()),
            snapshot_files_max: flags.max_snapshots(),
        }
    }
}

pub fn open(layout: &Layout) -> Result<Opened, StorageError> {
    let (wal, found) = Wal::open(&layout.wal_dir, WalConfig::default(), Box::new(StdFs))?;
    let mut snapshot_config = SnapshotConfig::default();
    if let Some(files) = layout.snapshot_files_max {
        snapshot_config = snapshot_config.with_snapshot_files_max(files);
    }
    let snapshots = SnapshotStore::open(&layout.snap_dir, snapshot_config, Box::new(StdFs))?;
    let report = found.report();
    if report.truncated_bytes() > 0 {
        if let Some((file, offset)) = report.truncated_at() {
            eprintln!(
                "tallyd: WAL recovery truncated a torn tail of {} bytes in {} at offset {offset}",
                report.truncated_bytes(),
                file.display()
            );
        }
    }
    let (hard_state, marker, entries, _report) = found.into_parts();
    if hard_state.is_none() && marker.is_none() && entries.is_empty() {
        return Ok(Opened {
            wal,
            snapshots,
            recovered: None,
            snapshot: None,
        });
    }
    // Only the snapshot's meta goes to the core: a store-sized buffer read at start, next to
    // the store built from it, doubled a restarting member's peak memory.
    let (snapshot, reader) = match marker {
        Some(marker) if marker.index() > 0 => {
            let reader = snapshots.open_reader(marker.index(), marker.term())?;
            let meta = reader.meta();
            let conf = ConfState::new(meta.voters(), meta.learners());
            let meta = SnapshotMeta::new(meta.index(), meta.term(), conf);
            (Snapshot::new(meta, Bytes::new()), Some(reader))
        }
        _ => (Snapshot::default(), None),
    };
    let entries = entries
        .into_iter()
        .map(|e| {
            let kind = match e.kind() {
                Some(kind) => core_kind(kind),
                // The first WAL format did not record the kind: tell it from the payload.
                None => payload::kind_of(e.data()),
            };
            Entry::new(e.index(), e.term(), kind, e.into_data())
        })
        .collect();
    let hard_state = hard_state.map_or_else(HardState::default, |h| {
        HardState::new(h.term(), h.vote(), h.commit())
    });
    let recovered = Recovered::new(hard_state, snapshot, entries);
    Ok(Opened {
        wal,
        snapshots,
        recovered: Some(recovered),
        snapshot: reader,
    })
}

/// Writes a snapshot file (atomically; it is fsynced before this returns).
pub fn save_snapshot(store: &SnapshotStore, snapshot: &Snapshot) -> Result<(), StorageError> {
    store.save(&file_meta(snapshot), snapshot.data())?;
    Ok(())
}

/// The snapshot file's metadata for a core snapshot.
pub fn file_meta(snapshot: &Snapshot) -> wal::SnapshotMeta {
    let meta = snapshot.meta();
    wal::SnapshotMeta::new(
        meta.index(),
        meta.term(),
        meta.conf().voters().to_vec(),
        meta.conf().learners().to_vec(),
    )
}

/// Turns a core `Persist` into a WAL batch. A snapshot from the leader is written to its file
/// first (synchronously: it is rare, and the WAL marker must never point at a missing file).
pub fn to_batch(persist: Persist, store: &SnapshotStore) -> Result<Batch, StorageError> {
    if let Some(snapshot) = persist.snapshot().filter(|s| s.meta().index() > 0) {
        save_snapshot(store, snapshot)?;
    }
    Ok(batch_of(persist))
}

fn wal_kind(kind: EntryKind) -> wal::EntryKind {
    match kind {
        EntryKind::Normal => wal::EntryKind::Normal,
        EntryKind::ConfChange => wal::EntryKind::ConfChange,
        // The core's kinds are open for extension; each needs its own WAL kind first.
        other => panic!("the core's entry kind {other:?} has no WAL kind"),
    }
}

fn core_kind(kind: wal::EntryKind) -> EntryKind {
    match kind {
        wal::EntryKind::Normal => EntryKind::Normal,
        wal::EntryKind::ConfChange => EntryKind::ConfChange,
    }
}

/// The WAL batch of a core `Persist` whose snapshot, if any, is in its file already.
pub fn batch_of(persist: Persist) -> Batch {
    let (hard_state, snapshot, entries) = persist.into_parts();
    let mut batch = Batch::new().with_entries(
        entries
            .into_iter()
            .map(|e| wal::Entry::new(e.index(), e.term(), wal_kind(e.kind()), e.data().clone()))
            .collect(),
    );
    if let Some(snapshot) = snapshot.filter(|s| s.meta().index() > 0) {
        batch = batch.with_snapshot(wal::SnapshotMarker::new(
            snapshot.meta().index(),
            snapshot.meta().term(),
        ));
    }
    if let Some(hs) = hard_state {
        batch = batch.with_hard_state(wal::HardState::new(hs.term(), hs.vote(), hs.commit()));
    }
    batch
}

/// A marker batch recording a locally taken snapshot, once its file is durable.
pub fn marker_batch(index: u64, term: u64) -> Batch {
    Batch::new().with_snapshot(wal::SnapshotMarker::new(index, term))
}
