//! Compaction: the logical half runs in apply, the physical half in bounded steps.
//!
//! Applying Compact(rev) only checks the revision, records it (reads below it fail from then
//! on) and keeps the events of `rev` itself for watchers that start there. `step` then walks the
//! key index from a cursor, a bounded number of keys per call, dropping revisions that no read
//! can reach any more. Reads at or above the compacted revision, hashes and snapshots give the
//! same answers whatever the physical progress, so replicas agree however the runtime paces it.

use std::ops::Bound;

use bytes::Bytes;

use super::revision::Revision;
use super::store::{CompactJob, Mvcc, is_tombstone};
use crate::error::KvError;
use crate::proto::{Event, EventType, KeyValue};

/// Records a compaction step may remove per key of its budget. A step's time goes mostly to
/// removing records (~3 µs each on a 2-core VM, cache misses and frees), and a key with a long
/// history has many: 1,000 keys of 90 revisions each took 300 ms in one step.
const RECORDS_PER_BUDGET_KEY: usize = 4;

impl Mvcc {
    /// The logical half of Compact(rev).
    pub(crate) fn compact(&mut self, rev: i64) -> Result<(), KvError> {
        if rev <= self.compact_rev {
            return Err(KvError::Compacted);
        }
        if rev > self.current_rev {
            return Err(KvError::FutureRevision);
        }
        self.compact_events = self.events_at(rev);
        self.compact_rev = rev;
        // A newer compaction subsumes an unfinished older one: restart the walk at `rev`.
        self.job = Some(CompactJob { rev, cursor: None });
        Ok(())
    }

    /// The events of revision `rev`, with previous versions, read from the records.
    fn events_at(&self, rev: i64) -> Vec<Event> {
        self.records
            .range_from(Revision::new(rev, 0))
            .take_while(|(r, _)| r.main() == rev)
            .map(|(r, kv)| self.event_of(r, &kv, true))
            .collect()
    }

    /// The watch event of the record `kv` written at `rev`.
    pub(crate) fn event_of(&self, rev: Revision, kv: &KeyValue, with_prev: bool) -> Event {
        let ty = if is_tombstone(kv) {
            EventType::Delete
        } else {
            EventType::Put
        };
        let prev_kv = if with_prev {
            self.get(&kv.key, rev.main() - 1)
        } else {
            None
        };
        Event {
            r#type: ty as i32,
            kv: Some(kv.clone()),
            prev_kv,
        }
    }

    /// Does up to `budget_keys` keys of physical compaction, and stops early once it has
    /// removed `budget_keys * RECORDS_PER_BUDGET_KEY` records (keys with long histories).
    /// Returns whether work remains.
    pub(crate) fn compact_step(&mut self, budget_keys: usize) -> bool {
        let Some(job) = self.job.take() else {
            return false;
        };
        let budget_keys = budget_keys.max(1);
        let records_max = budget_keys.saturating_mul(RECORDS_PER_BUDGET_KEY);
        let lower = match &job.cursor {
            Some(c) => Bound::Excluded(c.clone()),
            None => Bound::Unbounded,
        };
        let keys: Vec<Bytes> = self
            .index
            .range((lower, Bound::Unbounded))
            .take(budget_keys)
            .map(|(k, _)| k.clone())
            .collect();
        let mut removed = Vec::new();
        let mut visited = 0;
        for key in &keys {
            let ki = self.index.get_mut(key).expect("key listed just now");
            let removed_before = removed.len();
            ki.compact(job.rev, &mut removed);
            if ki.is_empty() {
                self.index.remove(key);
            } else if removed.len() > removed_before {
                self.share_surviving_key(key);
            }
            visited += 1;
            if removed.len() >= records_max {
                break;
            }
        }
        self.remove_records(removed);
        if visited == keys.len() && keys.len() < budget_keys {
            self.compaction_done_rev = job.rev;
            return false;
        }
        self.job = Some(CompactJob {
            rev: job.rev,
            cursor: Some(keys[visited - 1].clone()),
        });
        true
    }

    /// Makes the index hold `key` through the oldest surviving record's key. The index keeps
    /// the key it was first given, a slice of the write request that created it; once that
    /// revision is compacted, the slice alone would keep the whole request (its value too)
    /// in memory for as long as the key lives.
    fn share_surviving_key(&mut self, key: &Bytes) {
        let (held, ki) = self.index.get_key_value(key).expect("key listed just now");
        let oldest = ki
            .oldest()
            .expect("a key index left after compaction is not empty");
        let survivor = self.record(oldest).key;
        if held.as_ptr() == survivor.as_ptr() {
            return;
        }
        let ki = self.index.remove(key).expect("key listed just now");
        self.index.insert(survivor, ki);
    }

    /// Removes records in revision order, the log's own order, rather than key by key.
    fn remove_records(&mut self, mut removed: Vec<Revision>) {
        removed.sort_unstable();
        let mut freed = 0u64;
        self.records
            .remove_sorted(&removed, |kv| freed += Mvcc::record_bytes(&kv));
        self.data_bytes = self.data_bytes.saturating_sub(freed);
    }

    /// Hashes every revision at or below `rev` that compaction keeps, key by key.
    pub(crate) fn hash_kv(&self, rev: i64) -> Result<(u32, i64), KvError> {
        let rev = if rev <= 0 { self.current_rev } else { rev };
        if rev > self.current_rev {
            return Err(KvError::FutureRevision);
        }
        if rev < self.compact_rev {
            return Err(KvError::Compacted);
        }
        let mut h = crc32fast::Hasher::new();
        for (key, ki) in &self.index {
            ki.for_each_surviving(self.compact_rev, |r| {
                if r.main() > rev {
                    return;
                }
                let kv = self.record(r);
                h.update(&(key.len() as u64).to_le_bytes());
                h.update(key);
                h.update(&r.main().to_le_bytes());
                h.update(&r.sub().to_le_bytes());
                h.update(&kv.create_revision.to_le_bytes());
                h.update(&kv.version.to_le_bytes());
                h.update(&kv.lease.to_le_bytes());
                h.update(&(kv.value.len() as u64).to_le_bytes());
                h.update(&kv.value);
            });
        }
        Ok((h.finalize(), rev))
    }
}
