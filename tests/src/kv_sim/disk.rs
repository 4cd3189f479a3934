//! One member's simulated disk: what survives a crash is what reached it.

use tally_core::{Entry, HardState, Persist, Recovered, Snapshot};

/// The durable hard state, snapshot and log of one member.
#[derive(Debug, Clone, Default)]
pub(crate) struct Disk {
    hard_state: HardState,
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl Disk {
    /// Writes a `Persist` in the documented order (snapshot, entries, hard state).
    /// `entry_limit` models a crash part-way through: only that many entries reach the disk,
    /// and the hard state does not.
    pub(crate) fn write(&mut self, persist: &Persist, entry_limit: Option<usize>) {
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

    /// A snapshot this member took of its own store: the log before it is purged.
    pub(crate) fn save_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta().index();
        if index <= self.snapshot.meta().index() {
            return;
        }
        self.entries.retain(|e| e.index() > index);
        self.snapshot = snapshot;
    }

    /// What a restarting member reads back.
    pub(crate) fn recover(&self) -> Recovered {
        // Entries must continue the snapshot; a gap (a torn write after a snapshot install)
        // ends the recovered log.
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

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}
