//! Committed entries on their way into the store, applied a bounded number of keys per loop
//! turn.
//!
//! The core hands entries over in `Apply` actions; they wait here, in order, and each turn
//! applies them until [`APPLY_KEYS_PER_TURN_MAX`] keys were visited. An entry whose apply is
//! larger (a DeleteRange of a whole prefix) stays first in the queue, applied in part, and the
//! next turn goes on with it: ticks, heartbeats and client and peer I/O happen in between. The
//! store shows nothing of such an entry until its last step, and the entries behind it wait.
//!
//! [`ApplyQueue::applied_index`] is the last index applied completely. Everything that needs
//! the applied state (linearizable reads, the Status RPC, snapshots, lease expiry) goes by it,
//! not by the core's own applied index, which counts entries once they are handed over.

use std::collections::VecDeque;

use tally_core::Entry;

/// Keys the store may visit applying entries in one loop turn; every entry counts as at least
/// one. At this budget a DeleteRange of a million keys takes about a hundred turns of a few
/// milliseconds each, instead of one turn longer than a heartbeat.
pub(super) const APPLY_KEYS_PER_TURN_MAX: usize = 10_000;

/// Entries that may wait here. At it, the loop stops taking actions from the core until the
/// queue has room: the committed entries stay in the core's log (which holds them anyway),
/// so a restart replaying a million entries applies them a budget a turn, answering peers and
/// clients in between, and the queue's own slots stay few. One `Apply` may overshoot it by
/// up to [`APPLY_BATCH_BYTES_MAX`] of entries.
pub(super) const APPLY_QUEUE_ENTRIES_MAX: usize = 2 * APPLY_KEYS_PER_TURN_MAX;

/// Bytes of entries the core hands over in one `Apply` (at least one entry, whatever its
/// size): under load a turn's batch is far smaller; in a replay it keeps the overshoot of
/// [`APPLY_QUEUE_ENTRIES_MAX`] to a few thousand entries.
pub(super) const APPLY_BATCH_BYTES_MAX: u64 = 1 << 20;

/// A backlog at least this long is worth giving back once applied: a restart replaying its
/// log fills the queue, and the replay frees what the store's rebuilt parts replaced.
pub(super) const APPLY_BACKLOG_RELEASE_ENTRIES: usize = 10_000;

/// The committed entries not yet applied completely, oldest first.
#[derive(Debug)]
pub(super) struct ApplyQueue {
    entries: VecDeque<Entry>,
    /// The longest the queue has been since it was last empty.
    backlog_peak: usize,
    /// The last index applied completely.
    applied_index: u64,
    /// Keys this turn may still visit.
    keys_left: usize,
}

impl ApplyQueue {
    /// An empty queue after `applied_index`, the index the store was recovered at.
    pub(super) fn new(applied_index: u64) -> Self {
        ApplyQueue {
            entries: VecDeque::new(),
            backlog_peak: 0,
            applied_index,
            keys_left: APPLY_KEYS_PER_TURN_MAX,
        }
    }

    /// A new loop turn: the key budget starts over.
    pub(super) fn begin_turn(&mut self) {
        self.keys_left = APPLY_KEYS_PER_TURN_MAX;
    }

    /// Whether more entries wait than one turn's budget can apply: a replay, or a member
    /// falling behind.
    pub(super) fn is_backlogged(&self) -> bool {
        self.entries.len() > APPLY_KEYS_PER_TURN_MAX
    }

    /// Whether the queue holds [`APPLY_QUEUE_ENTRIES_MAX`] entries or more: take no more from
    /// the core until it has room.
    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= APPLY_QUEUE_ENTRIES_MAX
    }

    /// Queues the entries of an `Apply`, which follow the queued ones without a gap.
    pub(super) fn push(&mut self, entries: Vec<Entry>) {
        let last = self.last_index();
        if let Some(first) = entries.first() {
            assert_eq!(
                first.index(),
                last + 1,
                "the core hands over entries in order: {} follows {last}",
                first.index()
            );
        }
        self.entries.extend(entries);
        self.backlog_peak = self.backlog_peak.max(self.entries.len());
    }

    /// `true` once when the queue has emptied after a backlog of at least
    /// [`APPLY_BACKLOG_RELEASE_ENTRIES`]: it has given its buffer back, and the loop should ask
    /// for a heap trim.
    #[must_use]
    pub(super) fn poll_backlog_released(&mut self) -> bool {
        if !self.entries.is_empty() {
            return false;
        }
        let large = self.backlog_peak >= APPLY_BACKLOG_RELEASE_ENTRIES;
        self.backlog_peak = 0;
        if large {
            self.entries.shrink_to_fit();
        }
        large
    }

    /// A snapshot at `index` was installed: it replaces the queued entries, all at or below it.
    pub(super) fn supersede(&mut self, index: u64) {
        assert!(
            self.last_index() <= index,
            "a snapshot at {index} is installed while entries up to {} wait to be applied",
            self.last_index()
        );
        self.entries.clear();
        self.applied_index = index;
    }

    /// The next entry to apply, taken out of the queue, if any waits and this turn has keys
    /// left. Give it back with [`ApplyQueue::applied`] or [`ApplyQueue::put_back`].
    #[must_use]
    pub(super) fn take_next(&mut self) -> Option<Entry> {
        if self.keys_left == 0 {
            return None;
        }
        self.entries.pop_front()
    }

    /// The entry just taken is applied completely.
    pub(super) fn applied(&mut self, entry: &Entry) {
        assert_eq!(
            entry.index(),
            self.applied_index + 1,
            "entries are applied in order"
        );
        self.applied_index = entry.index();
    }

    /// The entry just taken is applied in part: it goes first again, and the turn's keys are
    /// spent.
    pub(super) fn put_back(&mut self, entry: Entry) {
        assert_eq!(entry.index(), self.applied_index + 1, "the first entry");
        assert_eq!(
            self.keys_left, 0,
            "an entry stops only when the keys ran out"
        );
        self.entries.push_front(entry);
    }

    /// The keys this turn may still visit, for the store to take its share off.
    pub(super) fn keys_left_mut(&mut self) -> &mut usize {
        &mut self.keys_left
    }

    /// The last index applied completely.
    pub(super) fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Whether entries wait (the loop then turns again without waiting for events).
    pub(super) fn has_work(&self) -> bool {
        !self.entries.is_empty()
    }

    fn last_index(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.applied_index, |e| e.index())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tally_core::EntryKind;

    use super::*;

    fn entries(from: u64, to: u64) -> Vec<Entry> {
        (from..=to)
            .map(|i| Entry::new(i, 1, EntryKind::Normal, Bytes::new()))
            .collect()
    }

    #[test]
    fn a_large_backlog_is_given_back_once_applied() {
        let mut q = ApplyQueue::new(0);
        let last = APPLY_BACKLOG_RELEASE_ENTRIES as u64;
        q.push(entries(1, last));
        assert!(!q.poll_backlog_released(), "not while entries wait");
        q.begin_turn();
        while let Some(e) = q.take_next() {
            q.applied(&e);
            *q.keys_left_mut() = 1;
        }
        assert!(q.poll_backlog_released());
        assert_eq!(q.entries.capacity(), 0, "the buffer went back");
        assert!(!q.poll_backlog_released(), "once");
        q.push(entries(last + 1, last + 10));
        while let Some(e) = q.take_next() {
            q.applied(&e);
        }
        assert!(!q.poll_backlog_released(), "a short backlog is kept");
    }

    #[test]
    fn entries_come_out_in_order_and_a_partial_one_stays_first() {
        let mut q = ApplyQueue::new(4);
        q.push(entries(5, 7));
        let e = q.take_next().expect("5");
        assert_eq!(e.index(), 5);
        *q.keys_left_mut() = 0;
        q.put_back(e);
        assert!(q.take_next().is_none(), "no keys left this turn");
        assert_eq!(q.applied_index(), 4);
        q.begin_turn();
        for want in 5..=7 {
            let e = q.take_next().expect("an entry");
            assert_eq!(e.index(), want);
            q.applied(&e);
        }
        assert_eq!(q.applied_index(), 7);
        assert!(!q.has_work());
    }

    #[test]
    fn a_snapshot_replaces_the_waiting_entries() {
        let mut q = ApplyQueue::new(0);
        q.push(entries(1, 3));
        q.supersede(10);
        assert!(!q.has_work());
        assert_eq!(q.applied_index(), 10);
        q.push(entries(11, 11));
        assert_eq!(q.take_next().map(|e| e.index()), Some(11));
    }

    #[test]
    #[should_panic(expected = "in order")]
    fn a_gap_is_refused() {
        let mut q = ApplyQueue::new(0);
        q.push(entries(2, 3));
    }
}
