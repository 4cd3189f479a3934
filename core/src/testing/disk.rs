//! The simulated disk and state machine of one simulated node.

use alloc::vec::Vec;
use bytes::Bytes;

use crate::action::Persist;
use crate::types::{Entry, EntryKind, HardState, Recovered, Snapshot};

/// What survives a crash: the durable hard state, snapshot and log.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    hard_state: HardState,
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl Disk {
    /// Writes a `Persist` in the documented order. `entry_limit` models a crash part-way
    /// through: only that many entries reach the disk, and the hard state does not.
    pub fn write(&mut self, persist: &Persist, entry_limit: Option<usize>) {
        if let Some(snapshot) = persist.snapshot() {
            // A snapshot from the leader replaces the whole log.
            self.snapshot = snapshot.clone();
            self.entries.clear();
        }
        let entries = persist.entries();
        let count = entry_limit.unwrap_or(entries.len()).min(entries.len());
        if let Some(first) = entries.first() {
            if count > 0 {
                let keep = self.entries.partition_point(|e| e.index() < first.index());
                self.entries.truncate(keep);
                self.entries.extend(entries[..count].iter().cloned());
            }
        }
        if entry_limit.is_none() {
            if let Some(hard_state) = persist.hard_state() {
                self.hard_state = *hard_state;
            }
        }
    }

    /// A snapshot the application took: the log before it is purged.
    pub fn save_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta().index();
        if index <= self.snapshot.meta().index() {
            return;
        }
        self.entries.retain(|e| e.index() > index);
        self.snapshot = snapshot;
    }

    /// What a restart recovers: the hard state, snapshot and the entries that continue it.
    pub fn recover(&self) -> Recovered {
        // Entries must continue the snapshot; a gap (possible after a torn write that
        // followed a snapshot install) ends the recovered log.
        let mut entries = Vec::new();
        let mut expected = self.snapshot.meta().index() + 1;
        for entry in &self.entries {
            if entry.index() < expected {
                continue;
            }
            if entry.index() != expected {
                break;
            }
            entries.push(entry.clone());
            expected += 1;
        }
        Recovered::new(self.hard_state, self.snapshot.clone(), entries)
    }

    /// The newest durable snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Whether nothing was ever written: no hard state, snapshot or entry.
    pub fn is_empty(&self) -> bool {
        self.hard_state == HardState::default()
            && self.snapshot == Snapshot::default()
            && self.entries.is_empty()
    }
}

/// A state machine that folds applied payloads into a hash chain, so two members agree on
/// their state exactly when they applied the same entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StateMachine {
    applied: u64,
    hash: u64,
}

impl StateMachine {
    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn apply(&mut self, entry: &Entry) {
        assert_eq!(
            entry.index(),
            self.applied + 1,
            "entries must be applied in order without gaps"
        );
        self.applied = entry.index();
        let kind = if entry.kind() == EntryKind::Normal {
            1
        } else {
            2
        };
        self.hash = chain_hash(self.hash, entry.index(), kind, entry.data());
    }

    pub(crate) fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.hash.to_le_bytes());
        Bytes::from(out)
    }

    pub(crate) fn decode(data: &[u8]) -> StateMachine {
        if data.len() != 16 {
            return StateMachine::default();
        }
        let applied = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let hash = u64::from_le_bytes(data[8..].try_into().expect("8 bytes"));
        StateMachine { applied, hash }
    }
}

/// A 64-bit multiply-rotate hash over the previous hash, the index, the kind and the payload,
/// eight bytes at a time (the simulated state machine must not dominate benchmarks).
fn chain_hash(previous: u64, index: u64, kind: u8, data: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mix = |hash: u64, word: u64| (hash ^ word).wrapping_mul(K).rotate_left(29);
    let mut hash = mix(
        mix(previous, index),
        u64::from(kind) | (data.len() as u64) << 8,
    );
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        hash = mix(hash, u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(hash, u64::from_le_bytes(tail))
}
