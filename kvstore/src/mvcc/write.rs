//! The write path: one write request's changes at one revision, which may be made over several
//! steps.
//!
//! Records and key-index entries are written at revision `main` (the store's current revision
//! plus one) as the request runs. Readers read at the current revision, so they do not see
//! them. Everything else a reader could observe (the current revision, the live-key and size
//! figures, which keys a lease holds, the events for watchers) is held in [`Staged`] and
//! published by [`WriteTxn::end`] alone.

use std::ops::Bound;

use bytes::Bytes;

use super::key_index::KeyIndex;
use super::revision::{RangeEnd, Revision};
use super::store::Mvcc;
use crate::lease::Lessor;
use crate::proto::{Event, EventType, KeyValue};

/// A change to a lease's key set, made when the write is published.
#[derive(Debug)]
enum LeaseChange {
    Attach(i64, Bytes),
    Detach(i64, Bytes),
}

/// What a write request has changed so far and not yet published.
#[derive(Debug)]
pub(crate) struct Staged {
    main: i64,
    sub: i64,
    /// The write request's bytes: a put's record keeps a slice of them rather than a copy of
    /// its key and value (empty when the request came another way).
    request: Bytes,
    /// Without watchers there is no one to tell: skip building events.
    collect_events: bool,
    events: Vec<Event>,
    lease_changes: Vec<LeaseChange>,
    live_keys_added: u64,
    live_keys_removed: u64,
    data_bytes_added: u64,
}

/// A DeleteRange in progress: where it resumes and what it found so far.
#[derive(Debug, Default)]
pub(crate) struct DeleteProgress {
    /// The first key not yet visited; `None` before the first step.
    next_key: Option<Bytes>,
    count: u64,
    deleted: Vec<KeyValue>,
}

impl DeleteProgress {
    /// How many keys were deleted, and their previous versions when asked for.
    pub(crate) fn finish(self) -> (u64, Vec<KeyValue>) {
        (self.count, self.deleted)
    }
}

/// A lease revoke in progress: the last of the lease's keys deleted so far.
#[derive(Debug, Default)]
pub(crate) struct LeaseKeysProgress {
    last_deleted: Option<Bytes>,
}

/// One write request in progress: every change takes revision `main` and the next `sub`.
#[derive(Debug)]
pub(crate) struct WriteTxn<'a> {
    mvcc: &'a mut Mvcc,
    lessor: &'a mut Lessor,
    staged: Staged,
}

impl<'a> WriteTxn<'a> {
    /// Begins a write at the next revision; `request`: the write request's bytes, which the
    /// keys and values written are slices of (or empty).
    pub(crate) fn begin(
        mvcc: &'a mut Mvcc,
        lessor: &'a mut Lessor,
        collect_events: bool,
        request: Bytes,
    ) -> Self {
        let main = mvcc.current_rev + 1;
        WriteTxn {
            mvcc,
            lessor,
            staged: Staged {
                main,
                sub: 0,
                request,
                collect_events,
                events: Vec::new(),
                lease_changes: Vec::new(),
                live_keys_added: 0,
                live_keys_removed: 0,
                data_bytes_added: 0,
            },
        }
    }

    /// Takes up a write that [`WriteTxn::suspend`] set aside.
    pub(crate) fn resume(mvcc: &'a mut Mvcc, lessor: &'a mut Lessor, staged: Staged) -> Self {
        assert_eq!(
            staged.main,
            mvcc.current_rev + 1,
            "a suspended write resumes on the store it began on (current revision {})",
            mvcc.current_rev
        );
        WriteTxn {
            mvcc,
            lessor,
            staged,
        }
    }

    /// Sets the write aside unpublished, to [`resume`](WriteTxn::resume) in a later step.
    pub(crate) fn suspend(self) -> Staged {
        self.staged
    }

    pub(crate) fn mvcc(&self) -> &Mvcc {
        self.mvcc
    }

    /// The revision reads inside this txn see: its own changes once it has any.
    pub(crate) fn read_rev(&self) -> i64 {
        if self.staged.sub > 0 {
            self.staged.main
        } else {
            self.staged.main - 1
        }
    }

    /// Writes `key` = `value` with `lease`; returns the previous version.
    pub(crate) fn put(&mut self, key: Bytes, value: Bytes, lease: i64) -> Option<KeyValue> {
        let at = self.read_rev();
        let st = &mut self.staged;
        let rev = Revision::new(st.main, st.sub);
        st.sub += 1;
        // One index walk for both the previous version and the new revision: with a large
        // index each walk is a chain of cache misses.
        let Mvcc { index, records, .. } = &mut *self.mvcc;
        let key_index = index.entry(key.clone()).or_insert_with(KeyIndex::new);
        let prev = key_index.get(at).and_then(|r| records.get(&r));
        key_index.put(rev);
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (st.main, 1),
        };
        let kv = KeyValue {
            key: key.clone(),
            create_revision,
            mod_revision: st.main,
            version,
            value,
            lease,
        };
        if let Some(p) = &prev {
            if p.lease != 0 && p.lease != lease {
                st.lease_changes
                    .push(LeaseChange::Detach(p.lease, key.clone()));
            }
        } else {
            st.live_keys_added += 1;
        }
        if lease != 0 {
            st.lease_changes.push(LeaseChange::Attach(lease, key));
        }
        st.data_bytes_added += Mvcc::record_bytes(&kv);
        if st.collect_events {
            st.events.push(Event {
                r#type: EventType::Put as i32,
                kv: Some(kv.clone()),
                prev_kv: prev.clone(),
            });
        }
        records.insert_within(rev, kv, &st.request);
        prev
    }

    /// Deletes every key of the range, visiting at most `keys_left` keys of the index (each
    /// visit uses one). Returns whether the range is done; if not, call again with the same
    /// `progress` (which holds the count, and the deleted versions in key order when
    /// `keep_prev` is set) to go on where this call stopped.
    ///
    /// One ordered walk of the index does it: random lookups per key (index, then record) are a
    /// chain of cache misses each. The previous record is only read when someone needs it: the
    /// caller, a watcher, or a lease.
    pub(crate) fn delete_range(
        &mut self,
        key: &Bytes,
        end: &RangeEnd,
        keep_prev: bool,
        progress: &mut DeleteProgress,
        keys_left: &mut usize,
    ) -> bool {
        let at = self.read_rev();
        let upper = match end {
            RangeEnd::Single => Bound::Included(key.as_ref()),
            RangeEnd::Unbounded => Bound::Unbounded,
            RangeEnd::To(e) if e <= key => return true,
            RangeEnd::To(e) => Bound::Excluded(e.as_ref()),
        };
        let lower = progress.next_key.as_ref().unwrap_or(key);
        assert!(
            lower >= key,
            "a delete resumes inside its range ({lower:?} is below {key:?})"
        );
        let read_prev = keep_prev || self.staged.collect_events || self.lessor.has_leases();
        let Mvcc { index, records, .. } = &mut *self.mvcc;
        let st = &mut self.staged;
        for (k, key_index) in index.range_mut::<[u8], _>((Bound::Included(lower.as_ref()), upper)) {
            if *keys_left == 0 {
                progress.next_key = Some(k.clone());
                return false;
            }
            *keys_left -= 1;
            let Some(prev_rev) = key_index.get(at) else {
                continue;
            };
            progress.count += 1;
            let rev = Revision::new(st.main, st.sub);
            st.sub += 1;
            let tomb = KeyValue {
                key: k.clone(),
                mod_revision: st.main,
                ..KeyValue::default()
            };
            st.live_keys_removed += 1;
            st.data_bytes_added += Mvcc::record_bytes(&tomb);
            if read_prev {
                let prev = records
                    .get(&prev_rev)
                    .expect("every indexed revision has a record")
                    .clone();
                if prev.lease != 0 {
                    st.lease_changes
                        .push(LeaseChange::Detach(prev.lease, k.clone()));
                }
                if st.collect_events {
                    st.events.push(Event {
                        r#type: EventType::Delete as i32,
                        kv: Some(tomb.clone()),
                        prev_kv: Some(prev.clone()),
                    });
                }
                if keep_prev {
                    progress.deleted.push(prev);
                }
            }
            records.insert(rev, tomb);
            key_index.tombstone(rev);
        }
        progress.next_key = None;
        true
    }

    /// Deletes the keys attached to `lease`, in key order, visiting at most `keys_left` keys.
    /// Returns whether every key is deleted; if not, call again with the same `progress`.
    ///
    /// The lease's key set itself changes only when the write is published, so the keys left
    /// are those after `progress`'s last one.
    pub(crate) fn delete_lease_keys(
        &mut self,
        lease: i64,
        progress: &mut LeaseKeysProgress,
        keys_left: &mut usize,
    ) -> bool {
        while let Some(key) = self.lessor.key_after(lease, progress.last_deleted.as_ref()) {
            if *keys_left == 0 {
                return false;
            }
            let mut one = DeleteProgress::default();
            let done = self.delete_range(&key, &RangeEnd::Single, false, &mut one, keys_left);
            assert!(
                done,
                "deleting one key of lease {lease} stopped with keys left"
            );
            progress.last_deleted = Some(key);
        }
        true
    }

    /// Ends the txn and publishes it: the revision advances when anything changed, and the
    /// size figures and lease key sets take its changes. Returns the store's revision and the
    /// events of this revision, in sub-revision order.
    pub(crate) fn end(self) -> (i64, Vec<Event>) {
        let st = self.staged;
        let m = self.mvcc;
        if st.sub > 0 {
            m.current_rev = st.main;
        }
        assert!(
            m.live_keys + st.live_keys_added >= st.live_keys_removed,
            "a write deletes {} keys, but only {} + {} are live",
            st.live_keys_removed,
            m.live_keys,
            st.live_keys_added
        );
        m.live_keys = m.live_keys + st.live_keys_added - st.live_keys_removed;
        m.data_bytes += st.data_bytes_added;
        for change in st.lease_changes {
            match change {
                LeaseChange::Attach(lease, key) => self.lessor.attach(lease, key),
                LeaseChange::Detach(lease, key) => self.lessor.detach(lease, &key),
            }
        }
        (m.current_rev, st.events)
    }
}
