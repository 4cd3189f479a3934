//! The rules that turn records into a log. The writer and replay share them, so what the
//! writer accepts is exactly what replay rebuilds.

use std::collections::VecDeque;

use super::record::Record;
use super::segment::Placed;
use super::types::{Entry, HardState, SnapshotMarker};

/// Where entries are kept: all of them (replay) or only their terms (the writer).
pub(crate) trait LogStore: Clone {
    /// (first, last) index, or `None` when empty.
    fn bounds(&self) -> Option<(u64, u64)>;
    fn term_at(&self, index: u64) -> Option<u64>;
    /// Drops `index` and everything after it.
    fn truncate_from(&mut self, index: u64);
    /// Drops everything up to and including `index`.
    fn drop_through(&mut self, index: u64);
    fn clear(&mut self);
    /// Appends right after the last entry (or starts the log).
    fn push(&mut self, entry: &Entry);
}

/// Entries and the state records around them.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogState<S> {
    store: S,
    snapshot: SnapshotMarker,
    hard_state: Option<HardState>,
    /// False while replaying a log whose oldest segments were purged: its first entries may
    /// follow a gap (or be truncated into it) until a snapshot marker ties them to the
    /// snapshot.
    anchored: bool,
}

impl<S: LogStore> LogState<S> {
    pub(crate) fn new(store: S, anchored: bool) -> Self {
        Self {
            store,
            snapshot: SnapshotMarker::default(),
            hard_state: None,
            anchored,
        }
    }

    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn snapshot(&self) -> Option<SnapshotMarker> {
        (self.snapshot != SnapshotMarker::default()).then_some(self.snapshot)
    }

    pub(crate) fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }

    pub(crate) fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = Some(hs);
    }

    /// The last (index, term): the last entry, else the snapshot.
    pub(crate) fn last(&self) -> (u64, u64) {
        match self.store.bounds() {
            Some((_, last)) => (last, self.store.term_at(last).unwrap_or(0)),
            None => (self.snapshot.index(), self.snapshot.term()),
        }
    }

    /// Applies a snapshot marker. An equal marker is a no-op; an older one is an error.
    pub(crate) fn apply_marker(&mut self, m: SnapshotMarker) -> Result<(), &'static str> {
        if m == self.snapshot {
            return Ok(());
        }
        if m.index() <= self.snapshot.index() {
            return Err("snapshot marker goes back");
        }
        let was_empty = self.store.bounds().is_none();
        match (self.store.bounds(), self.store.term_at(m.index())) {
            (None, _) => {}
            (Some(_), Some(t)) if t == m.term() => self.store.drop_through(m.index()),
            (Some(_), Some(_)) => self.store.clear(),
            // The log starts after the marker (a purged prefix): keep it.
            (Some((first, _)), None) if m.index() < first => {}
            (Some(_), None) => self.store.clear(),
        }
        self.snapshot = m;
        // Unanchored and empty, the marker says nothing about entries in purged segments.
        if !self.anchored && !was_empty {
            self.anchored = self
                .store
                .bounds()
                .is_none_or(|(first, _)| first == m.index() + 1);
        }
        Ok(())
    }

    /// Drops `index` and everything after it, ahead of new entries.
    pub(crate) fn truncate(&mut self, index: u64) -> Result<(), &'static str> {
        if index <= self.snapshot.index() {
            return Err("truncation below the snapshot");
        }
        match self.store.bounds() {
            Some((first, last)) if first <= index && index <= last => {
                self.store.truncate_from(index);
                Ok(())
            }
            // Unanchored: the truncation reaches into the purged part of the log.
            Some((first, _)) if !self.anchored && index < first => {
                self.store.clear();
                Ok(())
            }
            None if !self.anchored => Ok(()),
            _ => Err("truncation outside the log"),
        }
    }

    /// Appends one entry right after the log (or, unanchored, anywhere after the snapshot).
    pub(crate) fn push(&mut self, entry: &Entry) -> Result<(), &'static str> {
        let ok = match self.store.bounds() {
            Some((_, last)) => entry.index() == last + 1,
            None if self.anchored => entry.index() == self.snapshot.index() + 1,
            None => entry.index() > self.snapshot.index(),
        };
        if !ok {
            return Err("entry index does not follow the log");
        }
        self.store.push(entry);
        Ok(())
    }

    /// The range a batch's first entry may start at: `(lowest, highest)`.
    pub(crate) fn first_entry_range(&self) -> (u64, u64) {
        match self.store.bounds() {
            Some((first, last)) => (first.max(self.snapshot.index() + 1), last + 1),
            None => (self.snapshot.index() + 1, self.snapshot.index() + 1),
        }
    }

    /// True once the entries are known to follow the snapshot without a gap. An unanchored
    /// replay is complete too if its entries start right after the last snapshot marker (or
    /// there are none): purging never removes entries past the latest durable marker.
    pub(crate) fn is_anchored(&self) -> bool {
        self.anchored
    }
}

/// The writer's store: index bounds and runs of equal terms.
#[derive(Clone, Debug, Default)]
pub(crate) struct TermRuns {
    bounds: Option<(u64, u64)>,
    /// (first index, term) of each run, ascending.
    runs: Vec<(u64, u64)>,
}

impl LogStore for TermRuns {
    fn bounds(&self) -> Option<(u64, u64)> {
        self.bounds
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        let (first, last) = self.bounds?;
        if index < first || index > last {
            return None;
        }
        let at = self.runs.partition_point(|&(start, _)| start <= index);
        self.runs.get(at.checked_sub(1)?).map(|&(_, t)| t)
    }

    fn truncate_from(&mut self, index: u64) {
        match self.bounds {
            Some((first, _)) if index <= first => self.clear(),
            Some((first, last)) if index <= last => {
                self.bounds = Some((first, index - 1));
                self.runs.retain(|&(start, _)| start < index);
            }
            _ => {}
        }
    }

    fn drop_through(&mut self, index: u64) {
        match self.bounds {
            Some((_, last)) if index >= last => self.clear(),
            Some((first, last)) if index >= first => {
                let term = self.term_at(index + 1).unwrap_or(0);
                self.runs.retain(|&(start, _)| start > index + 1);
                self.runs.insert(0, (index + 1, term));
                self.bounds = Some((index + 1, last));
            }
            _ => {}
        }
    }

    fn clear(&mut self) {
        self.bounds = None;
        self.runs.clear();
    }

    fn push(&mut self, entry: &Entry) {
        let (i, t) = (entry.index(), entry.term());
        self.bounds = Some(match self.bounds {
            Some((first, _)) => (first, i),
            None => (i, i),
        });
        if self.runs.last().is_none_or(|&(_, term)| term != t) {
            self.runs.push((i, t));
        }
    }
}

/// Replay's store: the entries themselves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entries(VecDeque<Entry>);

impl LogStore for Entries {
    fn bounds(&self) -> Option<(u64, u64)> {
        Some((self.0.front()?.index(), self.0.back()?.index()))
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        let first = self.0.front()?.index();
        let at = usize::try_from(index.checked_sub(first)?).ok()?;
        self.0.get(at).map(Entry::term)
    }

    fn truncate_from(&mut self, index: u64) {
        if let Some(first) = self.0.front().map(Entry::index) {
            let keep = usize::try_from(index.saturating_sub(first)).unwrap_or(usize::MAX);
            self.0.truncate(keep);
        }
    }

    fn drop_through(&mut self, index: u64) {
        while self.0.front().is_some_and(|e| e.index() <= index) {
            self.0.pop_front();
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn push(&mut self, entry: &Entry) {
        self.0.push_back(entry.clone());
    }
}

/// Replay of logical batches read from segments.
#[derive(Debug)]
pub(crate) struct Replay {
    log: LogState<Entries>,
}

/// What replay rebuilt: hard state, snapshot marker, entries after it.
pub(crate) type Replayed = (Option<HardState>, Option<SnapshotMarker>, Vec<Entry>);

impl Replay {
    /// `purged`: the first segment is not segment 1, so the log may start after a gap.
    pub(crate) fn new(purged: bool) -> Self {
        Self {
            log: LogState::new(Entries::default(), !purged),
        }
    }

    /// Applies one complete logical batch. Errors give the record offset and the reason.
    pub(crate) fn apply_batch(&mut self, batch: &[Placed]) -> Result<(), (u64, &'static str)> {
        for (offset, record) in batch {
            let result = match record {
                Record::Entry(e) => self.log.push(e),
                Record::HardState(hs) => {
                    self.log.set_hard_state(*hs);
                    Ok(())
                }
                Record::Snapshot(m) => self.log.apply_marker(*m),
                Record::Truncate(index) => self.log.truncate(*index),
            };
            result.map_err(|why| (*offset, why))?;
        }
        Ok(())
    }

    /// The writer's view of the same log.
    pub(crate) fn writer_state(&self) -> LogState<TermRuns> {
        let mut runs = TermRuns::default();
        for e in &self.log.store().0 {
            runs.push(e);
        }
        let mut state = LogState::new(runs, true);
        state.snapshot = self.log.snapshot;
        state.hard_state = self.log.hard_state;
        state
    }

    /// Ends replay. Fails if entries still follow a gap after the snapshot.
    pub(crate) fn finish(self) -> Result<Replayed, &'static str> {
        let first = self.log.store().bounds().map(|(first, _)| first);
        if !self.log.is_anchored() && first.is_some_and(|f| f != self.log.snapshot.index() + 1) {
            return Err("the log does not connect to a snapshot: a purged segment is missing");
        }
        let snapshot = self.log.snapshot();
        let hard_state = self.log.hard_state();
        Ok((hard_state, snapshot, self.log.store.0.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn e(i: u64, t: u64) -> Entry {
        Entry::new(i, t, crate::wal::EntryKind::Normal, Bytes::new())
    }

    #[test]
    fn term_runs_follow_entries() {
        let mut runs = TermRuns::default();
        let mut all = Entries::default();
        for (i, t) in [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)] {
            runs.push(&e(i, t));
            all.push(&e(i, t));
        }
        let check = |runs: &TermRuns, all: &Entries| {
            assert_eq!(runs.bounds(), all.bounds());
            for i in 0..10 {
                assert_eq!(runs.term_at(i), all.term_at(i), "index {i}");
            }
        };
        check(&runs, &all);
        runs.drop_through(3);
        all.drop_through(3);
        check(&runs, &all);
        runs.truncate_from(6);
        all.truncate_from(6);
        check(&runs, &all);
        runs.push(&e(6, 4));
        all.push(&e(6, 4));
        check(&runs, &all);
        runs.drop_through(6);
        all.drop_through(6);
        check(&runs, &all);
    }

    #[test]
    fn marker_rules() {
        let mut log = LogState::new(TermRuns::default(), true);
        for i in 1..=5 {
            log.push(&e(i, 1)).expect("push");
        }
        log.apply_marker(SnapshotMarker::new(3, 1)).expect("marker");
        assert_eq!(log.store().bounds(), Some((4, 5)));
        assert!(log.apply_marker(SnapshotMarker::new(2, 1)).is_err());
        // A marker with a different term at an index in the log drops the whole log.
        log.apply_marker(SnapshotMarker::new(4, 9)).expect("marker");
        assert_eq!(log.store().bounds(), None);
        assert_eq!(log.last(), (4, 9));
        assert!(log.push(&e(6, 9)).is_err());
        log.push(&e(5, 9)).expect("push");
    }
}
