//! Copying the store for a snapshot a slice at a time, so the loop that applies entries never
//! stops for the whole key index (a few hundred milliseconds at a few hundred thousand keys,
//! longer than a heartbeat).
//!
//! The copy is the store as of the revision it began at. The revision log (chunks shared, copy
//! on write), the leases and the alarms are copied at once; the key index a range of keys per
//! step, each key's revisions cut back to that revision ([`KeyIndex::as_of`]). Writes between
//! steps only add revisions, so they change nothing the copy takes. Physical compaction, which
//! removes revisions, waits until the copy is done, and restoring a snapshot into the store
//! abandons the copy.

use std::ops::Bound;

use bytes::Bytes;

use crate::store::KvStore;

/// A copy of the store being taken ([`KvStore::begin_snapshot_copy`]).
#[derive(Debug)]
pub struct SnapshotCopy {
    copy: Box<KvStore>,
    at_rev: i64,
    /// The last key copied; `None` before the first step.
    cursor: Option<Bytes>,
    epoch: u64,
}

/// What a [`KvStore::snapshot_copy_step`] left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum CopyStep {
    /// Keys are left: step again later.
    More,
    /// The copy is complete: take it with [`SnapshotCopy::into_store`].
    Done,
    /// A snapshot was restored into the store meanwhile; the copy is void.
    Abandoned,
}

impl SnapshotCopy {
    /// The finished copy (after [`CopyStep::Done`]).
    pub fn into_store(self) -> Box<KvStore> {
        self.copy
    }
}

impl KvStore {
    /// Begins a copy of the replicated state as it is now, for a snapshot; finish it with
    /// [`snapshot_copy_step`](Self::snapshot_copy_step) between applies. One copy at a time:
    /// until it is done (or [`abandon_snapshot_copy`](Self::abandon_snapshot_copy)ed),
    /// [`compact_step`](Self::compact_step) does nothing.
    pub fn begin_snapshot_copy(&mut self) -> SnapshotCopy {
        assert!(!self.copying, "one snapshot copy at a time");
        self.assert_no_pending_apply("begin_snapshot_copy");
        let index = std::mem::take(&mut self.mvcc.index);
        let copy = self.snapshot_copy();
        self.mvcc.index = index;
        self.copying = true;
        SnapshotCopy {
            copy: Box::new(copy),
            at_rev: self.mvcc.current_rev,
            cursor: None,
            epoch: self.copy_epoch,
        }
    }

    /// Copies up to `keys_max` more keys of the index into `copy`.
    pub fn snapshot_copy_step(&mut self, copy: &mut SnapshotCopy, keys_max: usize) -> CopyStep {
        if copy.epoch != self.copy_epoch {
            return CopyStep::Abandoned;
        }
        assert!(self.copying, "a copy steps only between begin and done");
        let keys_max = keys_max.max(1);
        let lower = match &copy.cursor {
            Some(key) => Bound::Excluded(key.as_ref()),
            None => Bound::Unbounded,
        };
        let mut taken = 0;
        let mut last = None;
        let index = &mut copy.copy.mvcc.index;
        for (key, key_index) in self
            .mvcc
            .index
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take(keys_max)
        {
            taken += 1;
            last = Some(key);
            if let Some(then) = key_index.as_of(copy.at_rev) {
                index.insert(key.clone(), then);
            }
        }
        if taken < keys_max {
            self.copying = false;
            return CopyStep::Done;
        }
        copy.cursor = last.cloned();
        CopyStep::More
    }

    /// Gives up a copy before it is done, so compaction goes on.
    pub fn abandon_snapshot_copy(&mut self, copy: SnapshotCopy) {
        if copy.epoch == self.copy_epoch {
            self.copying = false;
        }
    }
}
