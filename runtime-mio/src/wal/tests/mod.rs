//! WAL tests: shared helpers and a naive model of the log.

mod basic;
mod bitflip;
mod crash;
mod fuzz_seeds;
mod prop;
mod smoke;
mod snapshot;
mod thread;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::testing::MemFs;
use super::{Batch, Entry, EntryKind, HardState, Recovered, SnapshotMarker, Wal, WalConfig};

/// The WAL directory used with `MemFs`.
pub(crate) fn dir() -> PathBuf {
    PathBuf::from("/data/wal")
}

/// Small segments so a short workload rolls, purges and wastes segment tails.
pub(crate) fn small_config() -> WalConfig {
    WalConfig::default()
        .with_segment_bytes(1024)
        .with_batch_bytes_max(512)
        .with_record_bytes_max(256)
        .with_batch_queue_max(16)
        .with_completion_queue_max(16)
}

/// Payload bytes that differ per entry, so a torn record never looks like another one.
pub(crate) fn data(index: u64, term: u64, len: usize) -> Bytes {
    let seed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ term.wrapping_mul(0xff51_afd7);
    (0..len)
        .map(|i| (seed.rotate_left((i % 64) as u32) as u8) | 1)
        .collect::<Vec<u8>>()
        .into()
}

/// Every fifth entry is a membership change, so every recovery test sees both kinds.
pub(crate) fn kind_of_index(index: u64) -> EntryKind {
    if index % 5 == 0 {
        EntryKind::ConfChange
    } else {
        EntryKind::Normal
    }
}

pub(crate) fn entries(from: u64, to: u64, term: u64, len: usize) -> Vec<Entry> {
    (from..=to)
        .map(|i| Entry::new(i, term, kind_of_index(i), data(i, term, len)))
        .collect()
}

pub(crate) fn open(fs: &MemFs, config: WalConfig) -> (Wal, Recovered) {
    Wal::open(&dir(), config, Box::new(fs.clone())).expect("open wal")
}

pub(crate) fn segment_path(seq: u64) -> PathBuf {
    dir().join(super::segment::file_name(seq))
}

/// Tiny deterministic PRNG for test data (tests must not depend on a global RNG).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_add(0x2545_f491_4f6c_dd1d) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// The obviously-correct model: what replay must return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Model {
    pub(crate) hard_state: Option<HardState>,
    pub(crate) snapshot: Option<SnapshotMarker>,
    pub(crate) entries: Vec<Entry>,
}

impl Model {
    pub(crate) fn apply(&mut self, batch: &Batch) {
        if let Some(m) = batch.snapshot() {
            if self.snapshot != Some(m) {
                let matches = self
                    .entries
                    .iter()
                    .any(|e| e.index() == m.index() && e.term() == m.term());
                if matches {
                    self.entries.retain(|e| e.index() > m.index());
                } else {
                    self.entries.clear();
                }
                self.snapshot = Some(m);
            }
        }
        if let Some(first) = batch.entries().first() {
            self.entries.retain(|e| e.index() < first.index());
            self.entries.extend(batch.entries().iter().cloned());
        }
        if let Some(hs) = batch.hard_state() {
            self.hard_state = Some(hs);
        }
    }

    pub(crate) fn last(&self) -> (u64, u64) {
        match self.entries.last() {
            Some(e) => (e.index(), e.term()),
            None => self.snapshot.map_or((0, 0), |m| (m.index(), m.term())),
        }
    }

    pub(crate) fn first(&self) -> u64 {
        self.entries.first().map_or(self.last().0 + 1, Entry::index)
    }

    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.index() == index)
            .map(Entry::term)
    }

    pub(crate) fn of(recovered: &Recovered) -> Model {
        Model {
            hard_state: recovered.hard_state(),
            snapshot: recovered.snapshot(),
            entries: recovered.entries().to_vec(),
        }
    }
}

/// Removes a directory tree made by a test, ignoring errors.
pub(crate) fn remove_dir(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
}

/// A unique directory under the system temp dir.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "tally-wal-{tag}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}
