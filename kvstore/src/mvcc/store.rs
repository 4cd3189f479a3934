//! The MVCC store: the key index, the revision-ordered records and the write path.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::key_index::KeyIndex;
use super::revision::{RangeEnd, Revision};
use super::revlog::RevLog;
use crate::lease::Lessor;
use crate::proto::{Event, EventType, KeyValue};

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
    pub(crate) fn get(&self, key: &[u8], at: i64) -> Option<&KeyValue> {
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
        let upper = match end {
            RangeEnd::Single => {
                if let Some((k, ki)) = self.index.get_key_value(key) {
                    if let Some(rev) = ki.get(at) {
                        visit(k, rev);
                    }
                }
                return;
            }
            RangeEnd::Unbounded => Bound::Unbounded,
            RangeEnd::To(e) => {
                if e <= key {
                    return;
                }
                Bound::Excluded(e.as_ref())
            }
        };
        let bounds = (Bound::Included(key.as_ref()), upper);
        for (k, ki) in self.index.range::<[u8], _>(bounds) {
            if let Some(rev) = ki.get(at) {
                if !visit(k, rev) {
                    return;
                }
            }
        }
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

    pub(crate) fn record(&self, rev: Revision) -> &KeyValue {
        self.records
            .get(&rev)
            .expect("every indexed revision has a record")
    }
}

/// One write request in progress: every change takes revision `main` and the next `sub`.
#[derive(Debug)]
pub(crate) struct WriteTxn<'a> {
    mvcc: &'a mut Mvcc,
    lessor: &'a mut Lessor,
    main: i64,
    sub: i64,
    /// Without watchers there is no one to tell: skip building events.
    collect_events: bool,
    events: Vec<Event>,
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn begin(mvcc: &'a mut Mvcc, lessor: &'a mut Lessor, collect_events: bool) -> Self {
        let main = mvcc.current_rev + 1;
        WriteTxn {
            mvcc,
            lessor,
            main,
            sub: 0,
            collect_events,
            events: Vec::new(),
        }
    }

    pub(crate) fn mvcc(&self) -> &Mvcc {
        self.mvcc
    }

    /// The revision reads inside this txn see: its own changes once it has any.
    pub(crate) fn read_rev(&self) -> i64 {
        if self.sub > 0 {
            self.main
        } else {
            self.main - 1
        }
    }

    /// Writes `key` = `value` with `lease`; returns the previous version.
    pub(crate) fn put(&mut self, key: Bytes, value: Bytes, lease: i64) -> Option<KeyValue> {
        let at = self.read_rev();
        let rev = Revision::new(self.main, self.sub);
        self.sub += 1;
        // One index walk for both the previous version and the new revision: with a large
        // index each walk is a chain of cache misses.
        let Mvcc { index, records, .. } = &mut *self.mvcc;
        let key_index = index.entry(key.clone()).or_insert_with(KeyIndex::new);
        let prev = key_index.get(at).and_then(|r| records.get(&r)).cloned();
        key_index.put(rev);
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (self.main, 1),
        };
        let kv = KeyValue {
            key: key.clone(),
            create_revision,
            mod_revision: self.main,
            version,
            value,
            lease,
        };
        if let Some(p) = &prev {
            if p.lease != 0 && p.lease != lease {
                self.lessor.detach(p.lease, &key);
            }
        } else {
            self.mvcc.live_keys += 1;
        }
        if lease != 0 {
            self.lessor.attach(lease, key.clone());
        }
        self.mvcc.data_bytes += Mvcc::record_bytes(&kv);
        if self.collect_events {
            self.events.push(Event {
                r#type: EventType::Put as i32,
                kv: Some(kv.clone()),
                prev_kv: prev.clone(),
            });
        }
        self.mvcc.records.insert(rev, kv);
        prev
    }

    /// Deletes every key of the range; returns how many, and the deleted versions in key order
    /// when `keep_prev` is set.
    ///
    /// One ordered walk of the index does it all: deleting a whole prefix of a large store is
    /// one apply, and random lookups per key (index, then record) made that apply stall the
    /// loop for over a second at a few hundred thousand keys (check perf's closing delete). The
    /// previous record is only read when someone needs it: the caller, a watcher, or a lease.
    pub(crate) fn delete_range(
        &mut self,
        key: &Bytes,
        end: &RangeEnd,
        keep_prev: bool,
    ) -> (u64, Vec<KeyValue>) {
        let at = self.read_rev();
        let upper = match end {
            RangeEnd::Single => Bound::Included(key.as_ref()),
            RangeEnd::Unbounded => Bound::Unbounded,
            RangeEnd::To(e) if e <= key => return (0, Vec::new()),
            RangeEnd::To(e) => Bound::Excluded(e.as_ref()),
        };
        let WriteTxn {
            mvcc,
            lessor,
            main,
            sub,
            collect_events,
            events,
        } = self;
        let Mvcc {
            index,
            records,
            live_keys,
            data_bytes,
            ..
        } = &mut **mvcc;
        let read_prev = keep_prev || *collect_events || lessor.has_leases();
        let mut count = 0u64;
        let mut deleted = Vec::new();
        for (k, key_index) in index.range_mut::<[u8], _>((Bound::Included(key.as_ref()), upper)) {
            let Some(prev_rev) = key_index.get(at) else {
                continue;
            };
            count += 1;
            let rev = Revision::new(*main, *sub);
            *sub += 1;
            let tomb = KeyValue {
                key: k.clone(),
                mod_revision: *main,
                ..KeyValue::default()
            };
            *live_keys -= 1;
            *data_bytes += Mvcc::record_bytes(&tomb);
            if read_prev {
                let prev = records
                    .get(&prev_rev)
                    .expect("every indexed revision has a record")
                    .clone();
                if prev.lease != 0 {
                    lessor.detach(prev.lease, k);
                }
                if *collect_events {
                    events.push(Event {
                        r#type: EventType::Delete as i32,
                        kv: Some(tomb.clone()),
                        prev_kv: Some(prev.clone()),
                    });
                }
                if keep_prev {
                    deleted.push(prev);
                }
            }
            records.insert(rev, tomb);
            key_index.tombstone(rev);
        }
        (count, deleted)
    }

    /// Ends the txn: the revision advances when anything changed. Returns the store's revision
    /// and the events of this revision, in sub-revision order.
    pub(crate) fn end(self) -> (i64, Vec<Event>) {
        if self.sub > 0 {
            self.mvcc.current_rev = self.main;
        }
        (self.mvcc.current_rev, self.events)
    }
}
