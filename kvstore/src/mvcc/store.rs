//! The MVCC store: the key index, the revision-ordered records and the write path.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::key_index::KeyIndex;
use super::revision::{RangeEnd, Revision};
use super::revlog::RevLog;
use crate::proto::{Event, KeyValue};

/// Approximate bookkeeping bytes per stored record, for the Status RPC's size figures.
pub(crate) const RECORD_OVERHEAD_BYTES: u64 = 96;

/// A record is the `KeyValue` written at its revision; a tombstone has version 0.
pub(crate) fn is_tombstone(kv: &KeyValue) -> bool {
    kv.version == 0
}

/// The physical half of a compaction, done in bounded steps.
#[derive(Clone, Debug)]
pub(crate) struct CompactJob {
    pub(crate) rev: i64,
    /// The last key already compacted; `None` before the first step.
    pub(crate) cursor: Option<Bytes>,
}

#[derive(Clone, Debug)]
pub(crate) struct Mvcc {
    pub(crate) index: BTreeMap<Bytes, KeyIndex>,
    pub(crate) records: RevLog,
    pub(crate) current_rev: i64,
    pub(crate) compact_rev: i64,
    /// The events of revision `compact_rev`, with their previous versions, kept so that a watch
    /// from exactly the compacted revision replays it as etcd does.
    pub(crate) compact_events: Vec<Event>,
    pub(crate) job: Option<CompactJob>,
    pub(crate) compaction_done_rev: i64,
    pub(crate) live_keys: u64,
    pub(crate) data_bytes: u64,
}

impl Mvcc {
    pub(crate) fn new() -> Self {
        Mvcc {
            index: BTreeMap::new(),
            records: RevLog::new(),
            // etcd starts at revision 1: the first write is revision 2.
            current_rev: 1,
            compact_rev: 0,
            compact_events: Vec::new(),
            job: None,
            compaction_done_rev: 0,
            live_keys: 0,
            data_bytes: 0,
        }
    }

    pub(crate) fn record_bytes(kv: &KeyValue) -> u64 {
        (kv.key.len() + kv.value.len()) as u64 + RECORD_OVERHEAD_BYTES
    }

    /// The version of `key` visible at `at`.
    pub(crate) fn get(&self, key: &[u8], at: i64) -> Option<KeyValue> {
        let rev = self.index.get(key)?.get(at)?;
        self.records.get(&rev)
    }

    /// Visits every key of the range that exists at `at`, in key order, with its revision;
    /// stops when `visit` returns false.
    pub(crate) fn visit_range(
        &self,
        key: &Bytes,
        end: &RangeEnd,
        at: i64,
        mut visit: impl FnMut(&Bytes, Revision) -> bool,
    ) {
        if *end == RangeEnd::Single {
            // One lookup instead of a range walk: most ranges name one key.
            if let Some((k, ki)) = self.index.get_key_value(key) {
                if let Some(rev) = ki.get(at) {
                    visit(k, rev);
                }
            }
            return;
        }
        self.walk_range(key, end, at, |k, rev| rev.is_none_or(|rev| visit(k, rev)));
    }

    /// Walks the index from `from` (inclusive) towards `end`, calling `visit` for every key it
    /// holds with the key's revision at `at` (`None`: the key did not exist then), until
    /// `visit` returns false. Unlike [`Mvcc::visit_range`], keys absent at `at` are visited
    /// too, so that a caller bounding its work per call counts every step of the walk.
    pub(crate) fn walk_range(
        &self,
        from: &[u8],
        end: &RangeEnd,
        at: i64,
        mut visit: impl FnMut(&Bytes, Option<Revision>) -> bool,
    ) {
        let upper = match end {
            RangeEnd::Single => Bound::Included(from),
            RangeEnd::Unbounded => Bound::Unbounded,
            RangeEnd::To(e) => {
                if e.as_ref() <= from {
                    return;
                }
                Bound::Excluded(e.as_ref())
            }
        };
        for (k, ki) in self.index.range::<[u8], _>((Bound::Included(from), upper)) {
            if !visit(k, ki.get(at)) {
                return;
            }
        }
    }

    /// [`Mvcc::walk_range`] downwards: the keys of `key..end` at or below `down_from` (the
    /// range's last key when `None`), highest first.
    pub(crate) fn walk_range_down(
        &self,
        key: &[u8],
        end: &RangeEnd,
        down_from: Option<&[u8]>,
        at: i64,
        mut visit: impl FnMut(&Bytes, Option<Revision>) -> bool,
    ) {
        let upper = match (down_from, end) {
            (Some(k), _) => Bound::Included(k),
            (None, RangeEnd::Single) => Bound::Included(key),
            (None, RangeEnd::Unbounded) => Bound::Unbounded,
            (None, RangeEnd::To(e)) => Bound::Excluded(e.as_ref()),
        };
        let empty = match upper {
            Bound::Included(u) => u < key,
            Bound::Excluded(u) => u <= key,
            Bound::Unbounded => false,
        };
        if empty {
            return;
        }
        for (k, ki) in self
            .index
            .range::<[u8], _>((Bound::Included(key), upper))
            .rev()
        {
            if !visit(k, ki.get(at)) {
                return;
            }
        }
    }

    pub(crate) fn record(&self, rev: Revision) -> KeyValue {
        self.records
            .get(&rev)
            .expect("every indexed revision has a record")
    }
}
