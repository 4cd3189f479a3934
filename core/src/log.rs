//! The in-memory Raft log: entries since the last compaction, the newest snapshot, and the
//! commit / apply / persist cursors.
//!
//! Invariants (checked by `assert_invariants`):
//! - entries are contiguous from `offset_index + 1`;
//! - `offset_index <= snapshot index <= committed <= last_index` once any snapshot is installed;
//! - `applied <= committed`, and `applied <= persisted` unless a snapshot is being installed.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::types::{Entry, EntryKind, Snapshot};

/// An entry as the log keeps it: its index is its position, so a slot is 48 bytes, not the
/// 56 of an [`Entry`]. A log holds up to a store's worth of entries between snapshots.
#[derive(Debug)]
struct Slot {
    term: u64,
    data: Bytes,
    kind: EntryKind,
}

impl Slot {
    fn of(entry: Entry) -> Slot {
        Slot {
            term: entry.term(),
            kind: entry.kind(),
            data: entry.into_data(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// Entries `offset_index + 1 ..`, in order.
    entries: VecDeque<Slot>,
    /// Index and term of the entry just before `entries[0]`.
    offset_index: u64,
    offset_term: u64,
    snapshot: Snapshot,
    /// A snapshot received from the leader, waiting to be persisted and handed to the app.
    snapshot_to_install: bool,
    committed: u64,
    applied: u64,
    /// The longest prefix of this log known to be durable.
    persisted: u64,
    /// First index not yet handed to the application in a `Persist` action.
    unstable_from: u64,
    /// The snapshot has not yet been handed to the application in a `Persist` action.
    snapshot_unstable: bool,
    /// How much of the `Persist` in flight still describes this log: truncations and snapshot
    /// installs since it was taken lower this, so its acknowledgement never vouches for entries
    /// that replaced the ones it wrote (the ABA race).
    persist_clip: u64,
}

impl RaftLog {
    /// A log that starts from `snapshot` with `entries` after it. `durable` says whether this
    /// state is already on disk (a restart) or still has to be persisted (a bootstrap).
    pub(crate) fn new(snapshot: Snapshot, entries: Vec<Entry>, durable: bool) -> Self {
        let offset_index = snapshot.meta().index();
        let offset_term = snapshot.meta().term();
        let last = offset_index + entries.len() as u64;
        for (position, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index(),
                offset_index + 1 + position as u64,
                "a log's entries are contiguous after its snapshot"
            );
        }
        RaftLog {
            entries: entries.into_iter().map(Slot::of).collect(),
            offset_index,
            offset_term,
            snapshot,
            snapshot_to_install: false,
            committed: offset_index,
            applied: offset_index,
            persisted: if durable { last } else { 0 },
            unstable_from: if durable { last + 1 } else { offset_index + 1 },
            snapshot_unstable: false,
            persist_clip: u64::MAX,
        }
    }

    pub(crate) fn first_index(&self) -> u64 {
        self.offset_index + 1
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.offset_index + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.offset_term, |slot| slot.term)
    }

    pub(crate) fn committed(&self) -> u64 {
        self.committed
    }

    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    pub(crate) fn persisted(&self) -> u64 {
        self.persisted
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The term of entry `index`, or `None` if it is compacted away or beyond the log.
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index == self.offset_index {
            return Some(self.offset_term);
        }
        if index < self.offset_index {
            return None;
        }
        self.slot(index).map(|slot| slot.term)
    }

    fn slot(&self, index: u64) -> Option<&Slot> {
        let position = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(position).ok()?)
    }

    /// Entry `index` (its data shared, not copied), or `None` if compacted or beyond the log.
    pub(crate) fn entry(&self, index: u64) -> Option<Entry> {
        self.slot(index)
            .map(|slot| Entry::new(index, slot.term, slot.kind, slot.data.clone()))
    }

    /// The size [`Entry::size_bytes`] gives entry `index`, without building it.
    pub(crate) fn entry_size_bytes(&self, index: u64) -> Option<usize> {
        self.slot(index)
            .map(|slot| Entry::size_bytes_of(slot.data.len()))
    }

    pub(crate) fn matches(&self, index: u64, term: u64) -> bool {
        self.term(index) == Some(term)
    }

    /// Whether a candidate with this last entry is at least as up to date as this log.
    pub(crate) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Entries in [low, high) up to `bytes_max` (at least one entry if any is in range).
    /// Returns `None` if `low` is compacted.
    pub(crate) fn slice(&self, low: u64, high: u64, bytes_max: u64) -> Option<Vec<Entry>> {
        if low <= self.offset_index {
            return None;
        }
        let high = high.min(self.last_index() + 1);
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for index in low..high {
            let entry = self.entry(index)?;
            bytes += entry.size_bytes() as u64;
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(entry);
        }
        Some(out)
    }

    /// The largest index <= `index` whose term is <= `term`: where a follower's log and the
    /// leader's can agree, used to skip a whole term per rejected append.
    pub(crate) fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut index = index.min(self.last_index());
        loop {
            match self.term(index) {
                Some(found) if found <= term => return (index, found),
                Some(_) if index > self.offset_index => index -= 1,
                _ => return (self.offset_index, self.offset_term),
            }
        }
    }

    /// Appends entries that already carry their index and term, contiguous after the last entry.
    pub(crate) fn append(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for entry in entries {
            assert_eq!(
                entry.index(),
                self.last_index() + 1,
                "log append must be contiguous"
            );
            assert!(
                entry.term() >= self.last_term(),
                "log terms must not decrease"
            );
            self.entries.push_back(Slot::of(entry));
        }
    }

    /// Follower side of AppendEntries. Returns the last index the leader's message covers, or
    /// `None` if `prev` does not match. Conflicting uncommitted entries are truncated.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        entries: &[Entry],
    ) -> Option<u64> {
        if !self.matches(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + entries.len() as u64;
        let mut conflict = None;
        for (position, entry) in entries.iter().enumerate() {
            if entry.index() <= self.offset_index {
                continue;
            }
            if !self.matches(entry.index(), entry.term()) {
                conflict = Some(position);
                break;
            }
        }
        if let Some(position) = conflict {
            let first_new = entries[position].index();
            if first_new <= self.committed {
                // Only a faulty leader sends this; refuse rather than rewrite committed history.
                return None;
            }
            self.truncate_from(first_new);
            self.append(entries[position..].iter().cloned());
        }
        Some(last_new)
    }

    /// Drops entries at and after `index`. Durability cursors move back with them, so a later
    /// acknowledgement of the old entries never counts for the new ones.
    fn truncate_from(&mut self, index: u64) {
        assert!(index > self.committed && index > self.offset_index);
        let keep = (index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(index - 1);
        self.unstable_from = self.unstable_from.min(index);
        self.persist_clip = self.persist_clip.min(index - 1);
    }

    /// Raises the commit index to `index`. Callers pass only indexes this log holds: one beyond
    /// it means the commit rule counted entries that are not here.
    pub(crate) fn commit_to(&mut self, index: u64) -> bool {
        let last = self.last_index();
        assert!(
            index <= last,
            "commit index {index} is beyond the last log index {last}: the commit rule counted \
             an entry this log does not hold, or the log was truncated or lost"
        );
        if index > self.committed {
            self.committed = index;
            return true;
        }
        false
    }

    /// Installs a snapshot from the leader, replacing the log. It must be persisted, then
    /// handed to the application, before anything after it is applied.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta().index();
        assert!(index > self.committed);
        self.entries.clear();
        self.offset_index = index;
        self.offset_term = snapshot.meta().term();
        self.snapshot = snapshot;
        self.committed = index;
        self.persisted = 0;
        self.persist_clip = 0;
        self.unstable_from = index + 1;
        self.snapshot_unstable = true;
        self.snapshot_to_install = true;
    }

    /// Takes what must be persisted next: the snapshot if new, and the unstable entries.
    pub(crate) fn take_unstable(&mut self) -> (Option<Snapshot>, Vec<Entry>) {
        let snapshot = if self.snapshot_unstable {
            self.snapshot_unstable = false;
            Some(self.snapshot.clone())
        } else {
            None
        };
        let entries = if self.unstable_from <= self.last_index() {
            (self.unstable_from..=self.last_index())
                .map(|index| self.entry(index).expect("unstable entries are in the log"))
                .collect()
        } else {
            Vec::new()
        };
        self.unstable_from = self.last_index() + 1;
        self.persist_clip = u64::MAX;
        (snapshot, entries)
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.snapshot_unstable || self.unstable_from <= self.last_index()
    }

    /// Records that the `Persist` in flight, which ended at `index`, is durable.
    pub(crate) fn persisted_to(&mut self, index: u64) {
        let index = index.min(self.persist_clip);
        let last = self.last_index();
        assert!(
            index <= last,
            "persisted index {index} is beyond the last log index {last}: the log shrank while \
             the write was in flight without clipping what its acknowledgement vouches for"
        );
        if index > self.persisted {
            self.persisted = index;
        }
    }

    /// Takes the snapshot that must be handed to the application, once it is durable.
    pub(crate) fn take_snapshot_to_apply(&mut self) -> Option<Snapshot> {
        if !self.snapshot_to_install || self.persisted < self.snapshot.meta().index() {
            return None;
        }
        self.snapshot_to_install = false;
        self.applied = self.snapshot.meta().index();
        Some(self.snapshot.clone())
    }

    pub(crate) fn snapshot_install_pending(&self) -> bool {
        self.snapshot_to_install
    }

    /// Committed and durable entries not yet applied, up to `bytes_max` (at least one).
    pub(crate) fn next_to_apply(&self, bytes_max: u64) -> Vec<Entry> {
        if self.snapshot_to_install {
            return Vec::new();
        }
        let high = self.committed.min(self.persisted);
        if high <= self.applied {
            return Vec::new();
        }
        self.slice(self.applied + 1, high + 1, bytes_max)
            .unwrap_or_default()
    }

    pub(crate) fn applied_to(&mut self, index: u64) {
        assert!(index <= self.committed && index >= self.applied);
        self.applied = index;
    }

    pub(crate) fn release_snapshot_data(&mut self, index: u64) -> bool {
        if index == 0 || self.snapshot.meta().index() != index {
            return false;
        }
        self.snapshot = Snapshot::new(self.snapshot.meta().clone(), Bytes::new());
        true
    }

    /// Replaces the snapshot with a newer local one and drops entries up to `keep_after`.
    pub(crate) fn compact(&mut self, snapshot: Snapshot, keep_after: u64) {
        let index = snapshot.meta().index();
        assert!(index <= self.applied && index > self.snapshot.meta().index());
        let drop_to = keep_after.min(index).max(self.offset_index);
        if drop_to > self.offset_index {
            let term = self.term(drop_to).expect("compaction point is in the log");
            let count = (drop_to - self.offset_index) as usize;
            self.entries.drain(..count);
            // The log grows back from here; keeping the old capacity would hold a slot (48
            // bytes) for every entry of the longest log ever kept, on top of the new one.
            self.entries.shrink_to_fit();
            self.offset_index = drop_to;
            self.offset_term = term;
        }
        self.snapshot = snapshot;
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn assert_invariants(&self) {
        let mut term = self.offset_term;
        for slot in &self.entries {
            assert!(slot.term >= term, "log terms never decrease");
            term = slot.term;
        }
        assert!(self.applied <= self.committed);
        assert!(self.committed <= self.last_index());
        assert!(self.offset_index <= self.snapshot.meta().index());
        assert!(self.persisted <= self.last_index());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ConfState, SnapshotMeta};
    use alloc::vec;

    #[test]
    fn compaction_gives_back_the_dropped_entries_slots() {
        let empty = Snapshot::new(
            SnapshotMeta::new(0, 0, ConfState::new(&[1], &[])),
            Bytes::new(),
        );
        let entries: Vec<Entry> = (1..=10_000)
            .map(|i| Entry::new(i, 1, EntryKind::Normal, Bytes::new()))
            .collect();
        let mut log = RaftLog::new(empty, entries, true);
        log.commit_to(10_000);
        log.applied_to(10_000);
        let at = SnapshotMeta::new(9_990, 1, ConfState::new(&[1], &[]));
        log.compact(Snapshot::new(at, Bytes::new()), 9_990);
        assert_eq!(log.first_index(), 9_991);
        assert!(
            log.entries.capacity() < 1_000,
            "capacity {} after compaction",
            log.entries.capacity()
        );
    }

    #[test]
    fn a_slot_leaves_out_the_index() {
        assert_eq!(core::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn entries_come_back_with_their_index_term_kind_and_data() {
        let empty = Snapshot::new(
            SnapshotMeta::new(4, 2, ConfState::new(&[1], &[])),
            Bytes::new(),
        );
        let entries = vec![
            Entry::new(5, 2, EntryKind::Normal, Bytes::from_static(b"a")),
            Entry::new(6, 3, EntryKind::ConfChange, Bytes::from_static(b"bc")),
        ];
        let mut log = RaftLog::new(empty, entries.clone(), false);
        assert_eq!(log.entry(5), Some(entries[0].clone()));
        assert_eq!(log.entry(6), Some(entries[1].clone()));
        assert_eq!(log.entry(4), None);
        assert_eq!(log.entry(7), None);
        assert_eq!(log.term(6), Some(3));
        assert_eq!(log.entry_size_bytes(6), Some(entries[1].size_bytes()));
        assert_eq!(log.slice(5, 7, u64::MAX), Some(entries.clone()));
        assert_eq!(log.take_unstable().1, entries);
    }
}
